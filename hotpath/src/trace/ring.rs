//! The bounded trace ring: one producer (the engine thread), one consumer (the sink thread).

use super::event::{bits_of, TraceEvent};
use crate::domain::reason_codes::{ModeReasonCode, OpenPermissionReasonCode, TradingMode};
use crate::sync::{Arc, AtomicU64, Ordering};

/// Default capacity: at 64 B a record, 64 KiB, allocated once at start-up. A churn run
/// produces a few hundred events a second and the sink drains every few milliseconds, so
/// the ring only fills when the sink thread is starved for seconds.
pub const TRACE_RING_CAPACITY: usize = 1024;

/// Hot-side end. Pushing never blocks and never allocates.
#[derive(Debug)]
pub struct TraceProducer {
    producer: rtrb::Producer<TraceEvent>,
    overflow: Arc<AtomicU64>,
    last_mode: Option<(TradingMode, u64)>,
    last_latch: Option<u64>,
}

/// Cold-side end.
#[derive(Debug)]
pub struct TraceConsumer {
    consumer: rtrb::Consumer<TraceEvent>,
    overflow: Arc<AtomicU64>,
}

/// A ring of `capacity` records (allocated here, never again).
///
/// # Panics
/// If `capacity` is 0.
#[must_use]
pub fn trace_ring(capacity: usize) -> (TraceProducer, TraceConsumer) {
    assert!(capacity > 0, "a trace ring needs room for one record");
    let (producer, consumer) = rtrb::RingBuffer::new(capacity);
    let overflow = Arc::new(AtomicU64::new(0));
    (
        TraceProducer {
            producer,
            overflow: Arc::clone(&overflow),
            last_mode: None,
            last_latch: None,
        },
        TraceConsumer { consumer, overflow },
    )
}

impl TraceProducer {
    /// Pushes `ev`; a full ring drops it and counts one overflow (documented policy: the
    /// order path never waits for the log).
    pub fn push(&mut self, ev: TraceEvent) {
        if self.producer.push(ev).is_err() {
            self.overflow.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Pushes a [`super::TraceKind::ModeChange`] when the mode or its reasons differ from
    /// the last call's (the first call always pushes: it is the start state).
    /// `reasons` iterates the sticky reasons (no allocation: pass the set's iterator).
    pub fn observe_mode(
        &mut self,
        mode: TradingMode,
        reasons: impl Iterator<Item = ModeReasonCode>,
        ts_ms: i64,
    ) {
        let bits = bits_of(reasons.map(|r| r as u32));
        if self.last_mode != Some((mode, bits)) {
            self.last_mode = Some((mode, bits));
            self.push(TraceEvent::mode_change(mode, bits, ts_ms));
        }
    }

    /// Pushes a [`super::TraceKind::LatchChange`] when the latch's codes changed.
    pub fn observe_latch(
        &mut self,
        codes: impl Iterator<Item = OpenPermissionReasonCode>,
        ts_ms: i64,
    ) {
        let bits = bits_of(codes.map(|c| c as u32));
        if self.last_latch != Some(bits) {
            self.last_latch = Some(bits);
            self.push(TraceEvent::latch_change(bits, ts_ms));
        }
    }

    /// Records dropped because the ring was full, since start.
    #[must_use]
    pub fn overflowed(&self) -> u64 {
        self.overflow.load(Ordering::Relaxed)
    }
}

impl TraceConsumer {
    /// The oldest record, if any.
    pub fn pop(&mut self) -> Option<TraceEvent> {
        self.consumer.pop().ok()
    }

    /// Records waiting.
    #[must_use]
    pub fn depth(&self) -> usize {
        self.consumer.slots()
    }

    /// Records dropped because the ring was full, since start.
    #[must_use]
    pub fn overflowed(&self) -> u64 {
        self.overflow.load(Ordering::Relaxed)
    }

    /// Whether the producer is gone (the engine stopped); the sink drains what is left, then ends.
    #[must_use]
    pub fn is_abandoned(&self) -> bool {
        self.consumer.is_abandoned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::TraceKind;

    #[test]
    fn a_full_ring_drops_and_counts_instead_of_blocking() {
        let (mut p, mut c) = trace_ring(2);
        for i in 0..5 {
            p.push(TraceEvent::new(TraceKind::Sent, i, 0));
        }
        assert_eq!(p.overflowed(), 3);
        assert_eq!(c.overflowed(), 3);
        assert_eq!(c.depth(), 2);
        assert_eq!(c.pop().map(|e| e.intent_id), Some(0));
        assert_eq!(c.pop().map(|e| e.intent_id), Some(1));
        assert!(c.pop().is_none());
    }

    #[test]
    fn mode_and_latch_are_pushed_only_on_change() {
        let (mut p, mut c) = trace_ring(8);
        let none = || std::iter::empty();
        let one = || std::iter::once(OpenPermissionReasonCode::ALL[0]);
        p.observe_mode(TradingMode::ReduceOnly, none(), 1);
        p.observe_mode(TradingMode::ReduceOnly, none(), 2);
        p.observe_mode(TradingMode::Active, none(), 3);
        p.observe_latch(one(), 4);
        p.observe_latch(one(), 5);
        p.observe_latch(std::iter::empty(), 6);
        let ts: Vec<i64> = std::iter::from_fn(|| c.pop()).map(|e| e.ts_ms).collect();
        assert_eq!(ts, vec![1, 3, 4, 6]);
    }
}
