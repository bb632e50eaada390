//! The published TradingMode: one atomic word that any thread reads lock-free and any
//! component may tighten. It never lowers on its own (invariant 5).
//!
//! # Representation
//! One `AtomicU64`: the low 32 bits are the *sticky* [`ReasonSet`] (every reason that has
//! tightened the mode since the last operator relax), the high 32 bits a tighten sequence
//! number. The mode is not stored separately: it is `reasons.mode()`, the most restrictive
//! tier among the sticky reasons, so a mode can never be published without a reason and
//! `mode_reasons` is never empty for a non-Active mode.
//!
//! - `tighten` ORs reasons in and bumps the sequence (a CAS loop: lock-free, never blocks).
//!   OR is monotone, so the mode is monotone: it has `fetch_max` semantics on the tier.
//! - The only way down is [`TradingModeCell::relax_from`], reachable only from
//!   `PolicyGuard::operator_relax`. It is a single compare-exchange against the exact word
//!   the guard validated. Any tighten in between changed the sequence, so the relax fails
//!   instead of erasing a tighten it never saw — even one whose reason bit was already set.
//!
//! # Ordering
//! Tightens are `AcqRel` read-modify-writes and readers load with `Acquire`: a reader that
//! sees a tightened mode also sees everything the tightener wrote before tightening (e.g. the
//! overflow counter that made it tighten). Read-modify-writes on one location are totally
//! ordered, so no interleaving loses a tighten; the loom model `loom_tests/tests/trading_mode.rs`
//! checks that the final mode is the max of all tightens and that reads never go down.

use crate::domain::reason_codes::{ModeReasonCode, TradingMode};
use crate::mode::reasons::ReasonSet;
use crate::sync::{AtomicU64, Ordering};

const MASK_BITS: u32 = 32;
const MASK: u64 = (1 << MASK_BITS) - 1;

/// One observation of the cell: sticky reasons, the mode they imply and the tighten sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModeWord(u64);

impl ModeWord {
    fn new(reasons: ReasonSet, seq: u32) -> Self {
        Self((u64::from(seq) << MASK_BITS) | u64::from(reasons.bits()))
    }

    /// The published mode: the most restrictive tier among the sticky reasons.
    #[must_use]
    pub const fn mode(self) -> TradingMode {
        self.reasons().mode()
    }

    /// Every reason that tightened the mode since the last operator relax.
    #[must_use]
    pub const fn reasons(self) -> ReasonSet {
        ReasonSet::from_bits((self.0 & MASK) as u32)
    }

    /// The `mode_reasons` to publish: the sticky reasons of the winning tier, registry order.
    #[must_use]
    pub const fn mode_reasons(self) -> ReasonSet {
        self.reasons().mode_reasons()
    }

    /// Tighten sequence number (wraps at 2^32; a relax would need 2^32 tightens between its
    /// load and its compare-exchange to be fooled).
    #[must_use]
    pub const fn seq(self) -> u32 {
        (self.0 >> MASK_BITS) as u32
    }
}

/// The published TradingMode, shared by every thread (`Arc<TradingModeCell>`).
#[derive(Debug)]
pub struct TradingModeCell {
    word: AtomicU64,
}

impl TradingModeCell {
    /// The cell at process start: `ReduceOnly` with `REDUCEONLY_OPEN_PERMISSION_LATCHED`,
    /// because the open-permission latch is set at every start (CP-001). Nothing can open
    /// before the first reconciliation and an operator relax.
    #[must_use]
    pub fn new_at_start() -> Self {
        Self::with_reasons(ReasonSet::of(ModeReasonCode::ReduceonlyOpenPermissionLatched))
    }

    /// A cell holding `reasons` (tests, replay).
    #[must_use]
    pub fn with_reasons(reasons: ReasonSet) -> Self {
        Self { word: AtomicU64::new(ModeWord::new(reasons, 0).0) }
    }

    /// The published mode. Lock-free, one `Acquire` load.
    #[inline]
    #[must_use]
    pub fn mode(&self) -> TradingMode {
        self.load().mode()
    }

    /// The whole word (mode, sticky reasons, sequence) from one `Acquire` load.
    #[inline]
    #[must_use]
    pub fn load(&self) -> ModeWord {
        ModeWord(self.word.load(Ordering::Acquire))
    }

    /// Whether an emergency close may run now. Always true: Kill blocks new risk and every
    /// replace, never containment (ruling 1). Exposed so callers state the check explicitly.
    #[must_use]
    pub fn permits_emergency_close(&self) -> bool {
        crate::mode::ModePermissions::for_mode(self.mode()).permits_emergency_close()
    }

    /// Tightens with one reason; returns the word before and after. Never lowers the mode.
    /// Any thread may call it, at any time; this is also the escalation path that always
    /// works when a control ring is full.
    pub fn tighten(&self, reason: ModeReasonCode) -> (ModeWord, ModeWord) {
        self.tighten_all(ReasonSet::of(reason))
    }

    /// Tightens with every reason in `reasons` (one atomic step); returns the word before and
    /// after. The sequence is bumped even when every bit was already set, so a concurrent
    /// operator relax that validated an older word fails rather than erasing this tighten.
    pub fn tighten_all(&self, reasons: ReasonSet) -> (ModeWord, ModeWord) {
        let mut current = self.word.load(Ordering::Acquire);
        loop {
            let seen = ModeWord(current);
            let next = ModeWord::new(seen.reasons().union(reasons), seen.seq().wrapping_add(1));
            match self.word.compare_exchange_weak(
                current,
                next.0,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return (seen, next),
                Err(actual) => current = actual,
            }
        }
    }

    /// Replaces the sticky reasons with `keep` iff the cell still holds exactly `seen`.
    /// Only `PolicyGuard::operator_relax` calls this, after verifying the operator's
    /// capability and that no reason above the target is present.
    ///
    /// # Errors
    /// The current word, when any tighten happened since `seen` was loaded.
    pub(crate) fn relax_from(&self, seen: ModeWord, keep: ReasonSet) -> Result<ModeWord, ModeWord> {
        let next = ModeWord::new(keep, seen.seq().wrapping_add(1));
        self.word
            .compare_exchange(seen.0, next.0, Ordering::AcqRel, Ordering::Acquire)
            .map(|_| next)
            .map_err(ModeWord)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn starts_reduce_only_latched() {
        let cell = TradingModeCell::new_at_start();
        assert_eq!(cell.mode(), TradingMode::ReduceOnly);
        assert_eq!(
            cell.load().mode_reasons().to_vec(),
            vec![ModeReasonCode::ReduceonlyOpenPermissionLatched]
        );
    }

    #[test]
    fn tighten_never_lowers_and_relax_needs_the_seen_word() {
        let cell = TradingModeCell::with_reasons(ReasonSet::EMPTY);
        let (_, after) = cell.tighten(ModeReasonCode::KillRiskstateKill);
        assert_eq!(after.mode(), TradingMode::Kill);
        cell.tighten(ModeReasonCode::ReduceonlyPolicyStale);
        assert_eq!(cell.mode(), TradingMode::Kill);
        let seen = cell.load();
        // A tighten with an already-set bit still invalidates `seen`.
        cell.tighten(ModeReasonCode::KillRiskstateKill);
        assert!(cell.relax_from(seen, ReasonSet::EMPTY).is_err());
        assert_eq!(cell.mode(), TradingMode::Kill);
        let seen = cell.load();
        assert!(cell.relax_from(seen, ReasonSet::EMPTY).is_ok());
        assert_eq!(cell.mode(), TradingMode::Active);
    }
}
