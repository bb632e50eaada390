//! Lend-and-reclaim: one owned value (the trading session) lent to a worker thread for the
//! hot stretch, with work sent to it and results sent back over two `rtrb` SPSC rings, and
//! taken back by its owner whenever cold work needs it.
//!
//! The owner ([`Lender`], the gate thread) and the worker ([`Borrower`], the dispatch thread)
//! never touch the value at the same time: it travels by value through the rings. While it is
//! lent, the owner pushes jobs and pops outputs; to use it again itself (reconnect,
//! reconciliation, emergency close, shutdown) it calls [`Lender::reclaim`], which raises the
//! return flag and drains outputs, in order, until the value comes back behind the last one.
//!
//! # Ordering argument
//! - The value and the jobs share one ring, so the worker sees `Take` before any job pushed
//!   after it, and processes jobs in push order.
//! - The owner pushes no job after raising the flag; a job pushed before it is published
//!   before the flag's `Release` store, so a worker that sees the flag (`Acquire`) and then
//!   drains the job ring sees every job the owner pushed. It processes them all, then pushes
//!   `Returned` behind their outputs: the owner gets every output before the value.
//! - Only the owner starts a return (the worker never gives the value back on its own, so no
//!   job can be stranded in the ring with nobody holding the value). The owner clears the
//!   flag before the next `Take` is pushed, so a worker never sees a stale flag.
//!
//! # Overflow policies
//! - Job ring full: [`Lender::push`] hands the job back (`Err(job)`); callers check
//!   [`Lender::job_slots`] first and refuse work they cannot queue (intents:
//!   `IntentRingFull`, before any WAL record). Nothing is dropped.
//! - Output ring full: the worker stops producing (it does not read its socket) until the
//!   owner drains; outputs are never dropped. `Returned` waits for a slot the same way.
//!
//! The loom model is `loom_tests/tests/lend_ring.rs`.

use crate::sync::{Arc, AtomicBool, Ordering};

/// What the owner sends.
#[derive(Debug)]
pub enum Job<T, J> {
    /// The lent value.
    Take(T),
    /// Work for the holder of the value.
    Work(J),
}

/// What the worker sends back.
#[derive(Debug)]
pub enum Output<T, O> {
    /// A result.
    Done(O),
    /// The value, returned at the owner's request, behind every result of the jobs before.
    Returned(T),
}

#[derive(Debug, Default)]
struct Shared {
    return_requested: AtomicBool,
}

/// The owner's end.
#[derive(Debug)]
pub struct Lender<T, J, O> {
    jobs: rtrb::Producer<Job<T, J>>,
    outputs: rtrb::Consumer<Output<T, O>>,
    shared: Arc<Shared>,
    lent: bool,
}

/// The worker's end.
#[derive(Debug)]
pub struct Borrower<T, J, O> {
    jobs: rtrb::Consumer<Job<T, J>>,
    outputs: rtrb::Producer<Output<T, O>>,
    shared: Arc<Shared>,
}

/// A lend pair with room for `jobs` queued jobs (plus the value) and `outputs` results (plus
/// the returned value). Allocates the two rings once.
#[must_use]
pub fn lend_ring<T, J, O>(jobs: usize, outputs: usize) -> (Lender<T, J, O>, Borrower<T, J, O>) {
    let (jp, jc) = rtrb::RingBuffer::new(jobs + 1);
    let (op, oc) = rtrb::RingBuffer::new(outputs + 1);
    let shared = Arc::new(Shared::default());
    (
        Lender { jobs: jp, outputs: oc, shared: Arc::clone(&shared), lent: false },
        Borrower { jobs: jc, outputs: op, shared },
    )
}

impl<T, J, O> Lender<T, J, O> {
    /// Whether the value is with the worker.
    #[must_use]
    pub fn is_lent(&self) -> bool {
        self.lent
    }

    /// Lends `value`. Hands it back when it is already lent out (a second value) or the job
    /// ring has no slot (cannot happen while only `reclaim` empties it).
    ///
    /// # Errors
    /// The value, not lent.
    pub fn lend(&mut self, value: T) -> Result<(), T> {
        if self.lent {
            return Err(value);
        }
        self.shared.return_requested.store(false, Ordering::Relaxed);
        match self.jobs.push(Job::Take(value)) {
            Ok(()) => {
                self.lent = true;
                Ok(())
            }
            Err(rtrb::PushError::Full(Job::Take(v))) => Err(v),
            Err(rtrb::PushError::Full(Job::Work(_))) => unreachable!("pushed a Take"),
        }
    }

    /// Free job slots. (No slot needs keeping for the next `Take`: a return drains every
    /// job first, so the ring is empty when the value comes back.)
    #[must_use]
    pub fn job_slots(&self) -> usize {
        self.jobs.slots()
    }

    /// Jobs queued and not yet taken by the worker (the ring's depth, for metrics).
    #[must_use]
    pub fn jobs_queued(&self) -> usize {
        self.jobs.buffer().capacity() - self.jobs.slots()
    }

    /// Outputs the worker pushed and the owner has not applied yet (depth, for metrics).
    #[must_use]
    pub fn outputs_queued(&self) -> usize {
        self.outputs.slots()
    }

    /// Queues a job for the worker. Only while lent.
    ///
    /// # Errors
    /// The job, when the value is not lent or the ring is full (nothing queued).
    pub fn push(&mut self, job: J) -> Result<(), J> {
        if !self.lent || self.job_slots() == 0 {
            return Err(job);
        }
        self.jobs.push(Job::Work(job)).map_err(|rtrb::PushError::Full(j)| match j {
            Job::Work(j) => j,
            Job::Take(_) => unreachable!("pushed a Work"),
        })
    }

    /// The next output, if one is ready. Never yields the value: that comes through
    /// [`Self::reclaim`].
    pub fn pop(&mut self) -> Option<O> {
        match self.outputs.peek() {
            Ok(Output::Done(_)) => match self.outputs.pop() {
                Ok(Output::Done(o)) => Some(o),
                _ => None,
            },
            _ => None,
        }
    }

    /// Whether an output is waiting.
    #[must_use]
    pub fn has_output(&self) -> bool {
        matches!(self.outputs.peek(), Ok(Output::Done(_)))
    }

    /// Takes the value back: raises the return flag, then hands every output to `on_output`
    /// in order until the value arrives behind the last one; `idle` runs while nothing is
    /// ready (the caller's wait strategy) and returns whether to keep waiting — `false` when
    /// the worker is gone (its thread ended), and the value with it. `None` when the value
    /// was not lent or the worker is gone.
    pub fn reclaim(
        &mut self,
        mut on_output: impl FnMut(O),
        mut idle: impl FnMut() -> bool,
    ) -> Option<T> {
        if !self.lent {
            return None;
        }
        self.shared.return_requested.store(true, Ordering::Release);
        loop {
            match self.outputs.pop() {
                Ok(Output::Done(o)) => on_output(o),
                Ok(Output::Returned(v)) => {
                    self.lent = false;
                    return Some(v);
                }
                Err(rtrb::PopError::Empty) => {
                    if !idle() {
                        self.lent = false;
                        return None;
                    }
                }
            }
        }
    }
}

impl<T, J, O> Borrower<T, J, O> {
    /// The next job or lent value, in push order.
    pub fn next_job(&mut self) -> Option<Job<T, J>> {
        self.jobs.pop().ok()
    }

    /// Whether the owner asked for the value back. A holder that sees `true` drains
    /// [`Self::next_job`] (those jobs were pushed before the request) and then gives it back.
    #[must_use]
    pub fn return_requested(&self) -> bool {
        self.shared.return_requested.load(Ordering::Acquire)
    }

    /// Free output slots (one stays reserved for `Returned`).
    #[must_use]
    pub fn output_slots(&self) -> usize {
        self.outputs.slots().saturating_sub(1)
    }

    /// Sends a result.
    ///
    /// # Errors
    /// The result, when the ring is full (wait for the owner to drain; never drop it).
    pub fn push(&mut self, out: O) -> Result<(), O> {
        if self.output_slots() == 0 {
            return Err(out);
        }
        self.outputs.push(Output::Done(out)).map_err(|rtrb::PushError::Full(o)| match o {
            Output::Done(o) => o,
            Output::Returned(_) => unreachable!("pushed a Done"),
        })
    }

    /// Returns the value behind every result sent so far.
    ///
    /// # Errors
    /// The value, when the output ring is full (wait for the owner to drain, then retry).
    pub fn give_back(&mut self, value: T) -> Result<(), T> {
        self.outputs.push(Output::Returned(value)).map_err(|rtrb::PushError::Full(o)| match o {
            Output::Returned(v) => v,
            Output::Done(_) => unreachable!("pushed a Returned"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_arrive_in_order_before_the_value_and_a_second_lend_works() {
        let (mut owner, mut worker) = lend_ring::<String, u32, u32>(4, 8);
        assert!(owner.reclaim(|_| {}, || true).is_none(), "nothing lent");
        owner.lend("session".into()).unwrap();
        assert_eq!(owner.lend("second".into()), Err("second".into()));
        for j in 1..=3 {
            owner.push(j).unwrap();
        }
        let mut held = None;
        let worker_turn = |worker: &mut Borrower<String, u32, u32>, held: &mut Option<String>| {
            while let Some(job) = worker.next_job() {
                match job {
                    Job::Take(v) => *held = Some(v),
                    Job::Work(j) => worker.push(j * 10).unwrap(),
                }
            }
            if worker.return_requested() {
                if let Some(v) = held.take() {
                    worker.give_back(v).unwrap();
                }
            }
        };
        worker_turn(&mut worker, &mut held);
        assert_eq!(owner.pop(), Some(10));
        let mut got = Vec::new();
        let mut turns = 0;
        let back = owner.reclaim(
            |o| got.push(o),
            || {
                turns += 1;
                worker_turn(&mut worker, &mut held);
                true
            },
        );
        assert_eq!(back.as_deref(), Some("session"));
        assert_eq!(got, [20, 30]);
        assert!(turns >= 1);
        assert_eq!(owner.push(4), Err(4), "not lent: jobs refused");
        owner.lend("again".into()).unwrap();
        worker_turn(&mut worker, &mut held);
        assert_eq!(held.as_deref(), Some("again"), "a fresh lend does not see the old flag");
    }

    #[test]
    fn a_full_job_ring_hands_the_job_back() {
        let (mut owner, _worker) = lend_ring::<(), u32, u32>(2, 2);
        owner.lend(()).unwrap();
        assert_eq!(owner.job_slots(), 2, "room for two jobs besides the value");
        owner.push(1).unwrap();
        owner.push(2).unwrap();
        assert_eq!(owner.job_slots(), 0);
        assert_eq!(owner.push(3), Err(3));
    }

    #[test]
    fn a_full_output_ring_hands_the_output_back_and_keeps_room_for_the_value() {
        let (mut owner, mut worker) = lend_ring::<(), u32, u32>(2, 2);
        owner.lend(()).unwrap();
        assert!(matches!(worker.next_job(), Some(Job::Take(()))));
        worker.push(1).unwrap();
        worker.push(2).unwrap();
        assert_eq!(worker.push(3), Err(3));
        worker.give_back(()).unwrap();
        let mut got = Vec::new();
        assert_eq!(owner.reclaim(|o| got.push(o), || true), Some(()));
        assert_eq!(got, [1, 2]);
    }

    #[test]
    fn a_worker_that_is_gone_does_not_hang_the_owner() {
        let (mut owner, worker) = lend_ring::<u32, u32, u32>(2, 2);
        owner.lend(7).unwrap();
        drop(worker);
        let mut waits = 0;
        let back = owner.reclaim(
            |_| {},
            || {
                waits += 1;
                waits < 3
            },
        );
        assert_eq!(back, None, "the value went with the worker");
        assert!(!owner.is_lent(), "a new value can be lent");
        owner.lend(8).unwrap();
    }
}
