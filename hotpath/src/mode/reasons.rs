//! A set of [`ModeReasonCode`]s as a bitmask (bit i = `ModeReasonCode::ALL[i]`), so the hot
//! path can carry, publish and compare reason sets without allocating.

use crate::domain::reason_codes::{ModeReasonCode, TradingMode};

const CODE_COUNT: usize = ModeReasonCode::ALL.len();
const _: () = assert!(CODE_COUNT <= 32, "ReasonSet is a u32 bitmask");

/// Bits of every Kill-tier code.
const KILL_MASK: u32 = {
    let mut mask = 0u32;
    let mut i = 0;
    while i < CODE_COUNT {
        if matches!(ModeReasonCode::ALL[i].tier(), TradingMode::Kill) {
            mask |= 1 << i;
        }
        i += 1;
    }
    mask
};

/// Bits of every code in the registry.
const ALL_MASK: u32 = if CODE_COUNT == 32 { u32::MAX } else { (1u32 << CODE_COUNT) - 1 };

/// A set of mode reasons. Iteration is always in registry order (Kill tier first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ReasonSet(u32);

impl ReasonSet {
    /// No reasons: the mode they imply is `Active`.
    pub const EMPTY: Self = Self(0);

    /// The set holding just `code`.
    #[must_use]
    pub const fn of(code: ModeReasonCode) -> Self {
        Self(1 << code as u32)
    }

    /// The set from raw bits; bits outside the registry are dropped.
    #[must_use]
    pub const fn from_bits(bits: u32) -> Self {
        Self(bits & ALL_MASK)
    }

    /// The raw bitmask (bit i = `ModeReasonCode::ALL[i]`).
    #[must_use]
    pub const fn bits(self) -> u32 {
        self.0
    }

    /// Whether the set is empty.
    #[must_use]
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Number of reasons in the set.
    #[must_use]
    pub const fn len(self) -> usize {
        self.0.count_ones() as usize
    }

    /// Whether `code` is in the set.
    #[must_use]
    pub const fn contains(self, code: ModeReasonCode) -> bool {
        self.0 & (1 << code as u32) != 0
    }

    /// Adds `code`.
    pub fn insert(&mut self, code: ModeReasonCode) {
        self.0 |= 1 << code as u32;
    }

    /// Adds `code` when `present` is true.
    pub fn insert_if(&mut self, present: bool, code: ModeReasonCode) {
        if present {
            self.insert(code);
        }
    }

    /// Union.
    #[must_use]
    pub const fn union(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    /// Reasons in `self` that are not in `other`.
    #[must_use]
    pub const fn difference(self, other: Self) -> Self {
        Self(self.0 & !other.0)
    }

    /// Whether every reason of `other` is in `self`.
    #[must_use]
    pub const fn is_superset(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }

    /// The most restrictive tier present; `Active` for the empty set.
    #[must_use]
    pub const fn mode(self) -> TradingMode {
        if self.0 & KILL_MASK != 0 {
            TradingMode::Kill
        } else if self.0 != 0 {
            TradingMode::ReduceOnly
        } else {
            TradingMode::Active
        }
    }

    /// Only the reasons whose tier is `tier` (empty for `Active`).
    #[must_use]
    pub const fn tier(self, tier: TradingMode) -> Self {
        match tier {
            TradingMode::Active => Self::EMPTY,
            TradingMode::ReduceOnly => Self(self.0 & !KILL_MASK),
            TradingMode::Kill => Self(self.0 & KILL_MASK),
        }
    }

    /// Only the reasons whose tier is strictly more restrictive than `mode`.
    #[must_use]
    pub const fn above(self, mode: TradingMode) -> Self {
        match mode {
            TradingMode::Active => self,
            TradingMode::ReduceOnly => Self(self.0 & KILL_MASK),
            TradingMode::Kill => Self::EMPTY,
        }
    }

    /// The `mode_reasons` rule of `reason_codes.json`: every reason of the winning tier,
    /// none of the losing tier (empty when the set implies `Active`).
    #[must_use]
    pub const fn mode_reasons(self) -> Self {
        self.tier(self.mode())
    }

    /// The reasons in registry order.
    pub fn iter(self) -> impl Iterator<Item = ModeReasonCode> {
        ModeReasonCode::ALL.into_iter().filter(move |c| self.contains(*c))
    }

    /// The reasons in registry order, as a vector (for `/status`, logs and WAL records).
    #[must_use]
    pub fn to_vec(self) -> Vec<ModeReasonCode> {
        self.iter().collect()
    }
}

impl FromIterator<ModeReasonCode> for ReasonSet {
    fn from_iter<I: IntoIterator<Item = ModeReasonCode>>(iter: I) -> Self {
        let mut set = Self::EMPTY;
        for code in iter {
            set.insert(code);
        }
        set
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bit_index_is_registry_position() {
        for (i, code) in ModeReasonCode::ALL.into_iter().enumerate() {
            assert_eq!(ReasonSet::of(code).bits(), 1 << i, "{code}");
            assert_eq!(ReasonSet::of(code).mode(), code.tier(), "{code}");
        }
    }

    #[test]
    fn mode_reasons_are_tier_pure() {
        let set: ReasonSet = [
            ModeReasonCode::ReduceonlyBunkerModeActive,
            ModeReasonCode::KillRiskstateKill,
            ModeReasonCode::ReduceonlyPolicyStale,
        ]
        .into_iter()
        .collect();
        assert_eq!(set.mode(), TradingMode::Kill);
        assert_eq!(set.mode_reasons().to_vec(), vec![ModeReasonCode::KillRiskstateKill]);
        let ro = set.tier(TradingMode::ReduceOnly);
        assert_eq!(
            ro.to_vec(),
            vec![ModeReasonCode::ReduceonlyBunkerModeActive, ModeReasonCode::ReduceonlyPolicyStale]
        );
    }
}
