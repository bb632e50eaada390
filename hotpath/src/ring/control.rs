//! The cold → hot control ring: commands from the cold threads (control plane, watchdog,
//! reconciler) to a hot stage (gate or dispatch), polled once per stage turn.
//!
//! # Transport
//! An `rtrb` SPSC ring of [`ControlCommand`] (bounded, [`CONTROL_RING_CAPACITY`] by default,
//! allocated once). rtrb itself is upstream code; what this module adds is the overflow
//! policy and the escalation flags, which are modelled in `loom_tests/tests/control_ring.rs`.
//!
//! # Overflow policy
//! [`ControlSender::try_send`] never blocks and never drops: a full ring hands the command
//! back in [`ControlFull`]. [`ControlSender::send`] applies the policy for the caller:
//! - `TightenMode(r)`: tighten the shared [`TradingModeCell`] directly — an atomic RMW, which
//!   always succeeds; the hot side reads the cell anyway.
//! - `CancelAllOpens` / `EmergencyClose`: set a sticky bit in the escalation word
//!   (`fetch_or`, `Release`); the receiver takes the bits (`swap(0, Acquire)`) at the start of
//!   every drain and delivers them as commands, before the ring's contents.
//! - any overflow also tightens with `REDUCEONLY_HOTPATH_BACKPRESSURE`: a hot stage that is
//!   not draining its control ring must not take new risk.
//!
//! Coalescing and reordering are sound because every command is idempotent and they commute:
//! tightening is a set union, cancelling all opens twice cancels them once, and emergency
//! close is a routine that is (re)started, not a quantity. Delivery is at-least-once.

use crate::domain::reason_codes::ModeReasonCode;
use crate::mode::{ModeWord, TradingModeCell};
use crate::sync::{Arc, AtomicU8, Ordering};
use crossbeam::utils::CachePadded;

/// A command from a cold thread to a hot stage. Every command is idempotent (see module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ControlCommand {
    /// Tighten the mode with this reason (the stage re-reads the cell; the command makes the
    /// stage act on it this turn, e.g. cancel non-reduce-only orders).
    TightenMode(ModeReasonCode),
    /// Cancel every outstanding order that is not reduce-only (never protective closes).
    CancelAllOpens,
    /// Start (or keep running) the emergency-close routine.
    EmergencyClose,
}

/// A full control ring handing the command back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("control ring full; command {0:?} handed back")]
pub struct ControlFull(pub ControlCommand);

/// What [`ControlSender::send`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendOutcome {
    /// The command is in the ring.
    Queued,
    /// The ring was full: the command was escalated (mode cell and/or sticky flag) and the
    /// mode tightened with `REDUCEONLY_HOTPATH_BACKPRESSURE`; the word after escalation.
    Escalated(ModeWord),
}

const FLAG_CANCEL_ALL_OPENS: u8 = 1 << 0;
const FLAG_EMERGENCY_CLOSE: u8 = 1 << 1;

/// The escalation word, on its own cache line (128 B, see `crossbeam::utils::CachePadded`):
/// the cold sender writes it rarely and the hot receiver reads it every turn.
type Escalations = CachePadded<AtomicU8>;

/// The cold end of a control ring. One per ring (SPSC): not `Clone`.
#[derive(Debug)]
pub struct ControlSender {
    producer: rtrb::Producer<ControlCommand>,
    escalations: Arc<Escalations>,
    mode: Arc<TradingModeCell>,
    wake: Option<std::thread::Thread>,
}

/// The hot end of a control ring, polled by [`crate::ring::StageRunner`] every turn.
#[derive(Debug)]
pub struct ControlReceiver {
    consumer: rtrb::Consumer<ControlCommand>,
    escalations: Arc<Escalations>,
}

/// A control ring of `capacity` commands whose sender escalates through `mode` on overflow.
///
/// # Panics
/// If `capacity` is zero.
#[must_use]
pub fn control_ring(
    capacity: usize,
    mode: Arc<TradingModeCell>,
) -> (ControlSender, ControlReceiver) {
    assert!(capacity > 0, "a control ring needs room for one command");
    let (producer, consumer) = rtrb::RingBuffer::new(capacity);
    let escalations = Arc::new(CachePadded::new(AtomicU8::new(0)));
    (
        ControlSender { producer, escalations: Arc::clone(&escalations), mode, wake: None },
        ControlReceiver { consumer, escalations },
    )
}

impl ControlSender {
    /// Unpark `thread` after every send (a `SpinThenPark` stage's thread), so a parked stage
    /// sees a command without waiting out its park timeout.
    pub fn set_wake(&mut self, thread: std::thread::Thread) {
        self.wake = Some(thread);
    }

    /// Pushes `command`; never blocks.
    ///
    /// # Errors
    /// [`ControlFull`] with the command when the ring is full.
    pub fn try_send(&mut self, command: ControlCommand) -> Result<(), ControlFull> {
        self.producer.push(command).map_err(|rtrb::PushError::Full(c)| ControlFull(c))?;
        self.wake_receiver();
        Ok(())
    }

    /// Pushes `command`, or applies the overflow policy (module docs) when the ring is full.
    /// Never blocks, never loses the command's effect.
    pub fn send(&mut self, command: ControlCommand) -> SendOutcome {
        let Err(ControlFull(command)) = self.try_send(command) else {
            return SendOutcome::Queued;
        };
        match command {
            ControlCommand::TightenMode(reason) => {
                self.mode.tighten(reason);
            }
            ControlCommand::CancelAllOpens => {
                self.escalations.fetch_or(FLAG_CANCEL_ALL_OPENS, Ordering::Release);
            }
            ControlCommand::EmergencyClose => {
                self.escalations.fetch_or(FLAG_EMERGENCY_CLOSE, Ordering::Release);
            }
        }
        let (_, after) = self.mode.tighten(ModeReasonCode::ReduceonlyHotpathBackpressure);
        self.wake_receiver();
        SendOutcome::Escalated(after)
    }

    /// Free slots in the ring now.
    #[must_use]
    pub fn slots(&self) -> usize {
        self.producer.slots()
    }

    fn wake_receiver(&self) {
        if let Some(thread) = &self.wake {
            thread.unpark();
        }
    }
}

impl ControlReceiver {
    /// Delivers pending commands to `handle`: first the escalated ones (emergency close, then
    /// cancel-all), then up to `budget` from the ring in FIFO order. Returns how many were
    /// delivered. Never blocks.
    pub fn drain(&mut self, budget: usize, mut handle: impl FnMut(ControlCommand)) -> usize {
        let mut delivered = 0;
        // Cheap check first: the hot stage reads this every turn and it is almost always 0.
        if self.escalations.load(Ordering::Relaxed) != 0 {
            let flags = self.escalations.swap(0, Ordering::Acquire);
            if flags & FLAG_EMERGENCY_CLOSE != 0 {
                handle(ControlCommand::EmergencyClose);
                delivered += 1;
            }
            if flags & FLAG_CANCEL_ALL_OPENS != 0 {
                handle(ControlCommand::CancelAllOpens);
                delivered += 1;
            }
        }
        for _ in 0..budget {
            let Ok(command) = self.consumer.pop() else { break };
            handle(command);
            delivered += 1;
        }
        delivered
    }

    /// Whether anything is waiting (ring or escalation flags).
    #[must_use]
    pub fn has_pending(&self) -> bool {
        !self.consumer.is_empty() || self.escalations.load(Ordering::Acquire) != 0
    }
}
