//! Positions, pending exposure and intent classification.
//!
//! Classification is computed here from the position the engine holds and what is already
//! pending — never from what the strategy says an intent is. It is conservative: an intent is
//! reducing only if it reduces even when every pending order on the same side fills first, so a
//! "reduce" can never overshoot into a new position.

use std::collections::BTreeMap;

use crate::domain::instrument::InstrumentName;
use crate::domain::intent::Side;
use crate::domain::units::{Qty, Usd};

/// Intent class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum IntentClass {
    /// Opens or increases exposure (also: flips the position, or cannot be proven reducing).
    Open,
    /// Reduces exposure without closing it.
    Reduce,
    /// Takes the position exactly to zero.
    Close,
}

impl IntentClass {
    /// Stable string form.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Open => "Open",
            Self::Reduce => "Reduce",
            Self::Close => "Close",
        }
    }
    /// Reduce or Close.
    #[must_use]
    pub const fn is_risk_reducing(self) -> bool {
        !matches!(self, Self::Open)
    }
}

/// One instrument's position and resting/in-flight orders, in `amount` units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PositionView {
    /// Signed position (long positive).
    pub position: Qty,
    /// Sum of pending buy amounts (≥ 0).
    pub pending_buy: Qty,
    /// Sum of pending sell amounts (≥ 0).
    pub pending_sell: Qty,
}

/// Portfolio-level figures the limit gates read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PortfolioView {
    /// Gross notional of held positions.
    pub gross_notional_usd: Usd,
    /// Notional reserved by accepted, not yet terminal opens.
    pub pending_notional_usd: Usd,
    /// Realised + unrealised PnL since the daily reset (negative = loss).
    pub daily_pnl_usd: Usd,
}

/// Classifies `side`/`qty` against a position, treating pending orders adversely.
#[must_use]
pub fn classify(side: Side, qty: Qty, view: &PositionView) -> IntentClass {
    // The amount this side can still take off without crossing zero, assuming every pending
    // order on the same side fills first. Overflow ⇒ Open (fail closed).
    let reducible = match side {
        Side::Sell => view.position.checked_sub(view.pending_sell.abs()),
        Side::Buy => view.position.checked_add(view.pending_buy.abs()).map(Qty::neg),
    };
    match reducible {
        Some(room) if room.is_positive() && qty.is_positive() && qty <= room => {
            if qty == room {
                IntentClass::Close
            } else {
                IntentClass::Reduce
            }
        }
        _ => IntentClass::Open,
    }
}

/// A saved state of one instrument's exposure and the portfolio ([`ExposureBook::undo_point`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExposureUndo {
    name: InstrumentName,
    view: Option<PositionView>,
    portfolio: PortfolioView,
}

/// The engine's own ledger of positions and pending exposure, ordered by instrument name. Only
/// an accepted intent changes it (see [`crate::gates::chain::Accepted`]), which is how "reject
/// before side effects" is enforced by type rather than by care.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExposureBook {
    by_instrument: BTreeMap<InstrumentName, PositionView>,
    portfolio: PortfolioView,
}

impl ExposureBook {
    /// Empty book.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets an instrument's position (from reconciliation or fills).
    pub fn set_position(&mut self, name: InstrumentName, position: Qty) {
        self.by_instrument.entry(name).or_default().position = position;
    }

    /// Zeroes every position, pending amount and the portfolio, keeping the entries (a zero
    /// entry reads like an unknown one): a book rebuilt every tick over the same instruments
    /// then allocates no tree node.
    pub fn reset_keep_entries(&mut self) {
        for v in self.by_instrument.values_mut() {
            *v = PositionView::default();
        }
        self.portfolio = PortfolioView::default();
    }

    /// Sets portfolio figures (from the risk engine).
    pub fn set_portfolio(&mut self, portfolio: PortfolioView) {
        self.portfolio = portfolio;
    }

    /// The view of one instrument (zero when unknown).
    #[must_use]
    pub fn view(&self, name: &str) -> PositionView {
        self.by_instrument.get(name).copied().unwrap_or_default()
    }

    /// Portfolio figures.
    #[must_use]
    pub const fn portfolio(&self) -> PortfolioView {
        self.portfolio
    }

    /// Entries in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&InstrumentName, &PositionView)> {
        self.by_instrument.iter()
    }

    /// What [`Self::reserve`] of an intent on `name` can change (that instrument's view and
    /// the portfolio), to put back with [`Self::undo`]. Allocates nothing.
    #[must_use]
    pub fn undo_point(&self, name: InstrumentName) -> ExposureUndo {
        ExposureUndo {
            name,
            view: self.by_instrument.get(&name).copied(),
            portfolio: self.portfolio,
        }
    }

    /// Restores what [`Self::undo_point`] saved (the WAL refused a reserved intent).
    pub fn undo(&mut self, u: ExposureUndo) {
        match u.view {
            Some(v) => {
                self.by_instrument.insert(u.name, v);
            }
            None => {
                self.by_instrument.remove(&u.name);
            }
        }
        self.portfolio = u.portfolio;
    }

    /// Reserves the pending exposure of an accepted intent. Only an `Accepted` (which only the
    /// gate chain constructs) can be reserved.
    pub fn reserve(&mut self, accepted: &crate::gates::chain::Accepted) {
        let entry = self.by_instrument.entry(accepted.instrument).or_default();
        match accepted.side {
            Side::Buy => {
                entry.pending_buy =
                    entry.pending_buy.checked_add(accepted.qty).unwrap_or(Qty::from_raw(i64::MAX));
            }
            Side::Sell => {
                entry.pending_sell =
                    entry.pending_sell.checked_add(accepted.qty).unwrap_or(Qty::from_raw(i64::MAX));
            }
        }
        if !accepted.class.is_risk_reducing() {
            if let Some(notional) = accepted.notional_usd {
                self.portfolio.pending_notional_usd = self
                    .portfolio
                    .pending_notional_usd
                    .checked_add(notional)
                    .unwrap_or(Usd::from_raw(i64::MAX));
            }
        }
    }
}
