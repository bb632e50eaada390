//! Black-76 pricing on a simple smile, for option marks, LP quotes, ivs and greeks.

/// Standard normal CDF (Abramowitz–Stegun 7.1.26 via erf; |error| < 1.5e-7).
pub fn norm_cdf(x: f64) -> f64 {
    0.5 * (1.0 + erf(x / std::f64::consts::SQRT_2))
}

fn erf(x: f64) -> f64 {
    let sign = if x < 0.0 { -1.0 } else { 1.0 };
    let x = x.abs();
    let t = 1.0 / (1.0 + 0.327_591_1 * x);
    let y = 1.0
        - (((((1.061_405_429 * t - 1.453_152_027) * t) + 1.421_413_741) * t - 0.284_496_736) * t
            + 0.254_829_592)
            * t
            * (-x * x).exp();
    sign * y
}

/// Standard normal density.
pub fn norm_pdf(x: f64) -> f64 {
    (-0.5 * x * x).exp() / (2.0 * std::f64::consts::PI).sqrt()
}

/// Implied vol of the sim's surface: ATM level per currency with a term slope, a put skew
/// and a convex smile in log-moneyness. Floored at 5%.
pub fn surface_iv(atm: f64, forward: f64, strike: f64, years: f64) -> f64 {
    let k = (strike / forward).ln();
    let term = 1.0 + 0.1 * (years.sqrt() - 0.3);
    (atm * term - 0.15 * k + 0.8 * k * k).max(0.05)
}

/// Black-76 result in USD per unit of underlying, with greeks (delta per unit, vega per
/// vol point, theta per day).
#[derive(Debug, Clone, Copy)]
pub struct Priced {
    /// Premium in USD.
    pub usd: f64,
    /// Delta.
    pub delta: f64,
    /// Gamma.
    pub gamma: f64,
    /// Vega (per 1 vol point).
    pub vega: f64,
    /// Theta (per day, USD).
    pub theta: f64,
    /// Rho (per 1%).
    pub rho: f64,
}

/// Black-76 with zero rates (Deribit inverse options settle against the forward).
pub fn black76(call: bool, forward: f64, strike: f64, years: f64, vol: f64) -> Priced {
    let sqrt_t = years.max(1e-9).sqrt();
    let sd = (vol * sqrt_t).max(1e-9);
    let d1 = ((forward / strike).ln() + 0.5 * sd * sd) / sd;
    let d2 = d1 - sd;
    let (usd, delta) = if call {
        (forward * norm_cdf(d1) - strike * norm_cdf(d2), norm_cdf(d1))
    } else {
        (strike * norm_cdf(-d2) - forward * norm_cdf(-d1), norm_cdf(d1) - 1.0)
    };
    let pdf = norm_pdf(d1);
    let gamma = pdf / (forward * sd);
    let vega = forward * pdf * sqrt_t / 100.0;
    let theta = -forward * pdf * vol / (2.0 * sqrt_t) / 365.0;
    let rho =
        if call { strike * years * norm_cdf(d2) } else { -strike * years * norm_cdf(-d2) } / 100.0;
    Priced { usd: usd.max(0.0), delta, gamma, vega, theta, rho }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_call_parity_and_bounds() {
        let (f, k, t, v) = (100_000.0, 105_000.0, 0.1, 0.5);
        let c = black76(true, f, k, t, v);
        let p = black76(false, f, k, t, v);
        assert!((c.usd - p.usd - (f - k)).abs() < 1.0, "parity");
        assert!(c.delta > 0.0 && c.delta < 1.0);
        assert!(p.delta < 0.0 && p.delta > -1.0);
        assert!(surface_iv(0.5, f, 80_000.0, t) > surface_iv(0.5, f, f, t), "put skew");
    }
}
