//! The trace record: one fixed-size `Copy` value per event, no heap, no text formatting.

use crate::dispatch::{DispatchError, DispatcherError};
use crate::domain::reason_codes::{
    ModeReasonCode, OpenPermissionReasonCode, RejectReasonCode, TradingMode,
};
use crate::gates::chain::{GateName, Rejection};

/// What happened. Every kind names one step of an intent's life or one engine-state change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TraceKind {
    /// A gate refused the intent (`reject`, `gate` set).
    GateReject,
    /// `IntentRecorded` appended to the WAL (`value` = record seq).
    WalRecorded,
    /// The WAL could not record the intent (`reject` = `RecordedBeforeDispatchFailed`).
    WalFailed,
    /// A batch was made durable (`value` = sync latency in ns).
    WalSync,
    /// Written to the venue socket (`value` = tick-to-send latency in ns).
    Sent,
    /// Certainly not sent (refused before the socket); the intent is abandoned.
    SendRefused,
    /// The send failed after the socket may have seen it: in doubt until reconciled.
    SendInDoubt,
    /// Journaled `Abandoned` (the venue never saw it).
    Abandoned,
    /// A risk-reducing intent the WAL refused, dispatched unjournaled (in memory only).
    UnjournaledReduce,
    /// That unjournaled reduce reached the socket.
    UnjournaledSent,
    /// The venue acknowledged the order (`value` = 0).
    VenueAck,
    /// The venue rejected the order (`venue_code` set).
    VenueReject,
    /// A fill report (`value` = cumulative filled qty, 1e-8 units).
    VenueFill,
    /// The venue cancelled the order (`value` = filled qty).
    VenueCancel,
    /// The venue refused a cancel (`venue_code` set).
    CancelRefused,
    /// A cancel request could not be sent.
    CancelNotSent,
    /// An intent was written to the venue a second time (must never happen).
    DuplicateDispatch,
    /// A forbidden order reached the dispatch boundary and was refused there.
    IllegalOrderAttempt,
    /// The trading mode or its reasons changed (`mode` set; `value` = [`ModeReasonCode`] bits).
    ModeChange,
    /// The open-permission latch changed (`value` = [`OpenPermissionReasonCode`] bits).
    LatchChange,
    /// A reconciliation finished cleanly (`value` = in-doubt intents resolved).
    Reconciled,
    /// An execution report could not be journaled.
    ReportNotJournaled,
}

impl TraceKind {
    /// Stable name used as the `event` field of log lines.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::GateReject => "gate_reject",
            Self::WalRecorded => "wal_recorded",
            Self::WalFailed => "wal_failed",
            Self::WalSync => "wal_sync",
            Self::Sent => "sent",
            Self::SendRefused => "send_refused",
            Self::SendInDoubt => "send_in_doubt",
            Self::Abandoned => "abandoned",
            Self::UnjournaledReduce => "unjournaled_reduce",
            Self::UnjournaledSent => "unjournaled_sent",
            Self::VenueAck => "venue_ack",
            Self::VenueReject => "venue_reject",
            Self::VenueFill => "venue_fill",
            Self::VenueCancel => "venue_cancel",
            Self::CancelRefused => "cancel_refused",
            Self::CancelNotSent => "cancel_not_sent",
            Self::DuplicateDispatch => "duplicate_dispatch",
            Self::IllegalOrderAttempt => "illegal_order_attempt",
            Self::ModeChange => "mode_change",
            Self::LatchChange => "latch_change",
            Self::Reconciled => "reconciled",
            Self::ReportNotJournaled => "report_not_journaled",
        }
    }

    /// Events an operator must see even without a log pipeline (the sink echoes them).
    #[must_use]
    pub const fn is_alarm(self) -> bool {
        matches!(
            self,
            Self::WalFailed
                | Self::UnjournaledReduce
                | Self::UnjournaledSent
                | Self::SendInDoubt
                | Self::DuplicateDispatch
                | Self::IllegalOrderAttempt
                | Self::ReportNotJournaled
        )
    }
}

/// Why a send failed, without the error's text (which would need an allocation to carry).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendErrorClass {
    /// The order's shape or proof was refused at the chokepoint (a wiring bug, never the
    /// venue's doing): counted as an illegal order attempt.
    Illegal,
    /// Rate limit, breaker, in-flight limit or a session that may not trade.
    Throttled,
    /// The connection failed.
    Connection,
    /// No answer in time.
    Timeout,
    /// The venue answered with something that is not the answer.
    UnexpectedReply,
}

impl SendErrorClass {
    /// Classifies a dispatcher error.
    #[must_use]
    pub const fn of(e: &DispatcherError) -> Self {
        use crate::venue::conn::ConnError;
        match e {
            DispatcherError::NotDurable { .. }
            | DispatcherError::TokenMismatch { .. }
            | DispatcherError::Unsupported(_)
            | DispatcherError::Dispatch(
                DispatchError::BadLabel
                | DispatchError::BadAmount
                | DispatchError::BadPrice
                | DispatchError::BadPostOnly
                | DispatchError::MissingId,
            ) => Self::Illegal,
            DispatcherError::Conn(
                ConnError::Throttled { .. }
                | ConnError::BreakerOpen
                | ConnError::InFlightFull
                | ConnError::TradingMethodRefused
                | ConnError::NotAuthenticated,
            )
            | DispatcherError::Dispatch(DispatchError::Conn(
                ConnError::Throttled { .. }
                | ConnError::BreakerOpen
                | ConnError::InFlightFull
                | ConnError::TradingMethodRefused
                | ConnError::NotAuthenticated,
            )) => Self::Throttled,
            DispatcherError::Conn(_) | DispatcherError::Dispatch(DispatchError::Conn(_)) => {
                Self::Connection
            }
            DispatcherError::Timeout(_) => Self::Timeout,
            DispatcherError::UnexpectedReply(_) => Self::UnexpectedReply,
        }
    }

    /// Stable name for the `error` field of log lines.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Illegal => "illegal",
            Self::Throttled => "throttled",
            Self::Connection => "connection",
            Self::Timeout => "timeout",
            Self::UnexpectedReply => "unexpected_reply",
        }
    }
}

/// One trace record. `intent_id` 0 means "no intent" (engine-state events).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceEvent {
    /// What happened.
    pub kind: TraceKind,
    /// The intent hash (printed as 16 hex digits), 0 for none.
    pub intent_id: u64,
    /// Engine clock, epoch ms.
    pub ts_ms: i64,
    /// Registry reject code, when the event is a refusal.
    pub reject: Option<RejectReasonCode>,
    /// The gate that refused.
    pub gate: Option<GateName>,
    /// The new mode of a [`TraceKind::ModeChange`]; the mode the gates saw for a refusal.
    pub mode: Option<TradingMode>,
    /// Send failure class.
    pub error: Option<SendErrorClass>,
    /// Venue error code (Deribit JSON-RPC code), 0 for none.
    pub venue_code: i64,
    /// Kind-specific number (latency ns, qty, code bits); see [`TraceKind`].
    pub value: u64,
}

// The record is copied through the ring by value; keep it within two cache lines.
const _: () = assert!(std::mem::size_of::<TraceEvent>() <= 64);

impl TraceEvent {
    /// An event with no codes.
    #[must_use]
    pub const fn new(kind: TraceKind, intent_id: u64, ts_ms: i64) -> Self {
        Self {
            kind,
            intent_id,
            ts_ms,
            reject: None,
            gate: None,
            mode: None,
            error: None,
            venue_code: 0,
            value: 0,
        }
    }

    /// A gate refusal: AT-902's fields (intent id, gate, the trading mode the gates saw,
    /// reason code) on one record.
    #[must_use]
    pub const fn gate_reject(intent_id: u64, r: &Rejection, mode: TradingMode, ts_ms: i64) -> Self {
        let mut e = Self::new(TraceKind::GateReject, intent_id, ts_ms);
        e.reject = Some(r.code);
        e.gate = Some(r.gate);
        e.mode = Some(mode);
        e
    }

    /// A send that failed, classified.
    #[must_use]
    pub const fn send_failed(
        kind: TraceKind,
        intent_id: u64,
        ts_ms: i64,
        e: &DispatcherError,
    ) -> Self {
        let mut ev = Self::new(kind, intent_id, ts_ms);
        ev.error = Some(SendErrorClass::of(e));
        ev
    }

    /// A mode change to `mode`; `reason_bits` has bit `code as u32` set per sticky reason
    /// (the layout of `mode::ReasonSet::bits`).
    #[must_use]
    pub const fn mode_change(mode: TradingMode, reason_bits: u64, ts_ms: i64) -> Self {
        let mut e = Self::new(TraceKind::ModeChange, 0, ts_ms);
        e.mode = Some(mode);
        e.value = reason_bits;
        e
    }

    /// The latch's codes now as bits (bit `code as u32` per code; 0 = clear).
    #[must_use]
    pub const fn latch_change(code_bits: u64, ts_ms: i64) -> Self {
        let mut e = Self::new(TraceKind::LatchChange, 0, ts_ms);
        e.value = code_bits;
        e
    }

    /// Sets `venue_code`.
    #[must_use]
    pub const fn with_venue_code(mut self, code: i64) -> Self {
        self.venue_code = code;
        self
    }

    /// Sets `value`.
    #[must_use]
    pub const fn with_value(mut self, value: u64) -> Self {
        self.value = value;
        self
    }

    /// Sets `reject`.
    #[must_use]
    pub const fn with_reject(mut self, code: RejectReasonCode) -> Self {
        self.reject = Some(code);
        self
    }

    /// The mode reasons of a [`TraceKind::ModeChange`].
    pub fn mode_reasons(&self) -> impl Iterator<Item = ModeReasonCode> + '_ {
        ModeReasonCode::ALL.into_iter().filter(|c| self.value & (1 << (*c as u32)) != 0)
    }

    /// The latch codes of a [`TraceKind::LatchChange`].
    pub fn latch_codes(&self) -> impl Iterator<Item = OpenPermissionReasonCode> + '_ {
        OpenPermissionReasonCode::ALL.into_iter().filter(|c| self.value & (1 << (*c as u32)) != 0)
    }
}

// Both code sets fit one u64 bit set; a registry that outgrows it must fail the build.
const _: () = assert!(ModeReasonCode::ALL.len() <= 64);
const _: () = assert!(OpenPermissionReasonCode::ALL.len() <= 64);

/// A bit set of code discriminants.
#[must_use]
pub fn bits_of(codes: impl Iterator<Item = u32>) -> u64 {
    codes.fold(0, |acc, c| acc | (1u64 << c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mode_reason_bits_round_trip() {
        let reasons = [ModeReasonCode::ALL[0], ModeReasonCode::ALL[ModeReasonCode::ALL.len() - 1]];
        let bits = bits_of(reasons.iter().map(|r| *r as u32));
        let e = TraceEvent::mode_change(TradingMode::ReduceOnly, bits, 1);
        assert_eq!(e.mode_reasons().collect::<Vec<_>>(), reasons.to_vec());
    }

    #[test]
    fn latch_bits_round_trip() {
        let codes = [OpenPermissionReasonCode::ALL[1]];
        let e = TraceEvent::latch_change(bits_of(codes.iter().map(|c| *c as u32)), 1);
        assert_eq!(e.latch_codes().collect::<Vec<_>>(), codes.to_vec());
        assert_eq!(TraceEvent::latch_change(0, 1).latch_codes().count(), 0);
    }

    #[test]
    fn illegal_sends_are_classified_illegal() {
        assert_eq!(
            SendErrorClass::of(&DispatcherError::Unsupported("market")),
            SendErrorClass::Illegal
        );
        assert_eq!(SendErrorClass::of(&DispatcherError::Timeout("buy")), SendErrorClass::Timeout);
    }
}
