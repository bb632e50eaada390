//! What each TradingMode lets through (§2.2.3.4, §2.2.3.6, §2.2.5, ruling 1). The gate
//! classifies an intent from positions and pending exposure (never from the strategy's
//! claim) and asks this table.

use crate::domain::reason_codes::TradingMode;

/// The classes of action the gate distinguishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ActionClass {
    /// A new order that opens or increases exposure.
    Open,
    /// A cancel/replace that raises exposure or strips `reduce_only` protection.
    RiskIncreasingReplace,
    /// A cancel/replace that lowers or keeps exposure and keeps `reduce_only`.
    RiskReducingReplace,
    /// Cancelling a non-protective order (never a reduce-only close/hedge).
    Cancel,
    /// A reduce-only order that closes exposure.
    Close,
    /// A reduce-only hedge that lowers net exposure.
    Hedge,
    /// The emergency-close routine (cancel opens, reduce-only IOC closes, hedge fallback).
    EmergencyClose,
}

/// The permission table for one mode (and the open-permission latch).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModePermissions {
    mode: TradingMode,
    latched: bool,
}

impl ModePermissions {
    /// Permissions of `mode` with the latch clear.
    #[must_use]
    pub const fn for_mode(mode: TradingMode) -> Self {
        Self { mode, latched: false }
    }

    /// Permissions of `mode` with the open-permission latch `latched`.
    #[must_use]
    pub const fn with_latch(mode: TradingMode, latched: bool) -> Self {
        Self { mode, latched }
    }

    /// Whether `action` may be dispatched.
    #[must_use]
    pub const fn permits(self, action: ActionClass) -> bool {
        match action {
            // Opens and risk-increasing replaces: Active only, and never while latched.
            ActionClass::Open | ActionClass::RiskIncreasingReplace => {
                matches!(self.mode, TradingMode::Active) && !self.latched
            }
            // Kill blocks every replace (ruling 1); ReduceOnly allows the risk-reducing ones.
            ActionClass::RiskReducingReplace => !matches!(self.mode, TradingMode::Kill),
            // Containment stays open in every mode while exposure exists (capital supremacy).
            ActionClass::Cancel
            | ActionClass::Close
            | ActionClass::Hedge
            | ActionClass::EmergencyClose => true,
        }
    }

    /// Whether the emergency-close routine may run: true in every mode, Kill included.
    #[must_use]
    pub const fn permits_emergency_close(self) -> bool {
        self.permits(ActionClass::EmergencyClose)
    }

    /// Whether outbound orders must carry `reduce_only = true` (venue fact F-07).
    #[must_use]
    pub const fn requires_reduce_only_flag(self) -> bool {
        !matches!(self.mode, TradingMode::Active)
    }
}
