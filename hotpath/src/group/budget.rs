//! Pending-exposure reservation for atomic groups (contract A §5.13): a group's worst-case
//! exposure is reserved, all or nothing, before any leg is dispatched and released when the
//! group reaches a terminal state. The budget is one lock-free word, so groups accepted
//! concurrently from several threads can never jointly exceed the cap.

use crate::domain::reason_codes::RejectReasonCode;
use crate::domain::units::Usd;
use crate::sync::{AtomicI64, Ordering};

/// Compare-and-swap attempts before a reservation gives up under contention (fails closed with
/// the budget code; the caller may retry on its next tick).
pub const RESERVE_CAS_ATTEMPTS_MAX: u32 = 64;

/// The shared budget: `cap` of worst-case USD exposure across every in-flight group.
#[derive(Debug)]
pub struct PendingExposureBudget {
    cap_raw: i64,
    used_raw: AtomicI64,
}

/// Proof of a reservation; hand it back with [`PendingExposureBudget::release`]. Not `Clone`,
/// so a reservation is released at most once.
#[derive(Debug, PartialEq, Eq)]
#[must_use = "a reservation must be released when its group is terminal"]
pub struct Reservation {
    amount_raw: i64,
}

impl Reservation {
    /// The reserved amount.
    #[must_use]
    pub const fn amount(&self) -> Usd {
        Usd::from_raw(self.amount_raw)
    }
}

impl PendingExposureBudget {
    /// A budget of `cap` with nothing reserved.
    #[must_use]
    pub fn new(cap: Usd) -> Self {
        Self { cap_raw: cap.raw().max(0), used_raw: AtomicI64::new(0) }
    }

    /// Currently reserved.
    #[must_use]
    pub fn used(&self) -> Usd {
        Usd::from_raw(self.used_raw.load(Ordering::Acquire))
    }

    /// The cap.
    #[must_use]
    pub const fn cap(&self) -> Usd {
        Usd::from_raw(self.cap_raw)
    }

    /// Reserves `amount` if `used + amount <= cap`.
    ///
    /// # Errors
    /// `PendingExposureBudgetExceeded` on breach, a non-positive amount, overflow or
    /// persistent contention.
    pub fn try_reserve(&self, amount: Usd) -> Result<Reservation, RejectReasonCode> {
        let add = amount.raw();
        if add <= 0 {
            return Err(RejectReasonCode::PendingExposureBudgetExceeded);
        }
        let mut current = self.used_raw.load(Ordering::Acquire);
        for _ in 0..RESERVE_CAS_ATTEMPTS_MAX {
            let next = current
                .checked_add(add)
                .filter(|n| *n <= self.cap_raw)
                .ok_or(RejectReasonCode::PendingExposureBudgetExceeded)?;
            match self.used_raw.compare_exchange_weak(
                current,
                next,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return Ok(Reservation { amount_raw: add }),
                Err(seen) => current = seen,
            }
        }
        Err(RejectReasonCode::PendingExposureBudgetExceeded)
    }

    /// Releases a reservation (consumed, so it cannot be released twice).
    #[allow(clippy::needless_pass_by_value)]
    pub fn release(&self, reservation: Reservation) {
        let previous = self.used_raw.fetch_sub(reservation.amount_raw, Ordering::AcqRel);
        debug_assert!(previous >= reservation.amount_raw, "released more than reserved");
    }
}
