//! Small helpers: fixed-point units, wall clock, calendar formatting for instrument names.

use std::time::{SystemTime, UNIX_EPOCH};

/// Prices are held as integers of 1e-8 (an option tick of 0.0001 is 10_000 units; a BTC
/// price of 100_000 USD is 1e13 units, far inside i64). Integers make the tick grid, the
/// book keys and quantity conservation exact; floats exist only at the JSON boundary.
pub const PX_SCALE: f64 = 1e8;
/// Amounts are held as integers of 1e-6 (0.1 BTC = 100_000 units; 1e9 USD = 1e15 units).
pub const AMT_SCALE: f64 = 1e6;

/// Converts a wire price into price units, or `None` when it is not finite, not positive
/// or has more precision than 1e-8 allows.
pub fn px_units(p: f64) -> Option<i64> {
    if !p.is_finite() || p <= 0.0 || p > 1e10 {
        return None;
    }
    let scaled = p * PX_SCALE;
    let rounded = scaled.round();
    // Accept the usual float noise of decimal input (0.0165 * 1e8 = 1649999.9999999998).
    if (scaled - rounded).abs() > 1e-6 * scaled.abs().max(1.0) || rounded < 1.0 {
        return None;
    }
    #[allow(clippy::cast_possible_truncation)]
    Some(rounded as i64)
}

/// Converts a wire amount into amount units, or `None` when not finite / not positive /
/// too precise / absurdly large.
pub fn amt_units(a: f64) -> Option<i64> {
    if !a.is_finite() || a <= 0.0 || a > 1e12 {
        return None;
    }
    let scaled = a * AMT_SCALE;
    let rounded = scaled.round();
    if (scaled - rounded).abs() > 1e-6 * scaled.abs().max(1.0) || rounded < 1.0 {
        return None;
    }
    #[allow(clippy::cast_possible_truncation)]
    Some(rounded as i64)
}

/// Price units back to a wire number. Division (not multiplication by 1e-8) gives the
/// correctly rounded decimal, so 1_650_000 prints as 0.0165.
#[allow(clippy::cast_precision_loss)]
pub fn px(u: i64) -> f64 {
    u as f64 / PX_SCALE
}

/// Amount units back to a wire number.
#[allow(clippy::cast_precision_loss)]
pub fn amt(u: i64) -> f64 {
    u as f64 / AMT_SCALE
}

/// Rounds a float to `decimals` places for display (greeks, ivs, PnL).
pub fn round_to(x: f64, decimals: i32) -> f64 {
    if !x.is_finite() {
        return 0.0;
    }
    let m = 10f64.powi(decimals);
    (x * m).round() / m
}

/// Wall clock in microseconds since the epoch.
pub fn wall_us() -> i64 {
    let d = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

/// Days since 1970-01-01 to (year, month 1..=12, day 1..=31). Howard Hinnant's algorithm.
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = u32::try_from(doy - (153 * mp + 2) / 5 + 1).unwrap_or(1);
    let m = u32::try_from(if mp < 10 { mp + 3 } else { mp - 9 }).unwrap_or(1);
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// (year, month, day) to days since 1970-01-01.
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

const MONTHS: [&str; 12] =
    ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"];

/// Deribit expiry code: day without leading zero, upper-case month, two-digit year
/// (`1AUG25`).
pub fn expiry_code(days: i64) -> String {
    let (y, m, d) = civil_from_days(days);
    let mi = usize::try_from(m.saturating_sub(1)).unwrap_or(0).min(11);
    format!("{}{}{:02}", d, MONTHS[mi], y.rem_euclid(100))
}

/// Weekday of a day number, 0 = Monday .. 6 = Sunday (1970-01-01 was a Thursday).
pub fn weekday(days: i64) -> i64 {
    (days + 3).rem_euclid(7)
}

/// Formats a strike without a trailing `.0` (`110000`, `3525`).
#[allow(clippy::cast_possible_truncation)]
pub fn strike_str(k: f64) -> String {
    if (k - k.round()).abs() < 1e-9 {
        format!("{}", k.round() as i64)
    } else {
        format!("{k}").replace('.', "d")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calendar_round_trip_and_codes() {
        // 2025-08-01 is day 20301; BTC-1AUG25 in the protocol notes.
        let d = days_from_civil(2025, 8, 1);
        assert_eq!(d * 86_400_000 + 8 * 3_600_000, 1_754_035_200_000);
        assert_eq!(civil_from_days(d), (2025, 8, 1));
        assert_eq!(expiry_code(d), "1AUG25");
        assert_eq!(weekday(d), 4); // a Friday
    }

    #[test]
    fn units_are_exact_for_decimal_input() {
        assert_eq!(px_units(0.0165), Some(1_650_000));
        assert_eq!(px(1_650_000), 0.0165);
        assert_eq!(amt_units(0.1), Some(100_000));
        assert_eq!(px_units(-1.0), None);
        assert_eq!(px_units(f64::NAN), None);
        assert_eq!(px_units(0.000_000_001), None);
    }
}
