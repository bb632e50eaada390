//! loom model of `hotpath::ring::lend` (the gate thread lending the trading session to the
//! dispatch thread): the rtrb rings are upstream; modelled here is what Stoic adds — the
//! return flag and the rule that the worker drains every job pushed before the request and
//! only then returns the value behind their outputs. Two lend rounds check that a fresh lend
//! never sees the previous round's flag.
#![cfg(loom)]

use hotpath::ring::lend::{lend_ring, Borrower, Job};
use loom::thread;

/// Runs every queued job; `held` must already hold the value when a job arrives.
fn serve(worker: &mut Borrower<u32, u32, u32>, held: &mut Option<u32>) {
    while let Some(job) = worker.next_job() {
        match job {
            Job::Take(v) => *held = Some(v),
            Job::Work(j) => {
                assert!(held.is_some(), "a job arrived before the value it needs");
                worker.push(j).expect("room for every output");
            }
        }
    }
}

#[test]
fn every_output_arrives_before_the_value_and_every_job_runs_once() {
    loom::model(|| {
        let (mut owner, mut worker) = lend_ring::<u32, u32, u32>(2, 4);
        let dispatch = thread::spawn(move || {
            let mut held = None;
            let mut returned = 0;
            while returned < 2 {
                serve(&mut worker, &mut held);
                if held.is_some() && worker.return_requested() {
                    serve(&mut worker, &mut held); // jobs pushed before the request
                    let v = held.take().expect("held");
                    worker.give_back(v).expect("room for the value");
                    returned += 1;
                } else {
                    thread::yield_now();
                }
            }
        });
        for round in 0..2u32 {
            owner.lend(100 + round).expect("lend");
            owner.push(round * 10 + 1).expect("job 1");
            owner.push(round * 10 + 2).expect("job 2");
            let mut got = Vec::new();
            let back = owner.reclaim(
                |o| got.push(o),
                || {
                    thread::yield_now();
                    true
                },
            );
            assert_eq!(back, Some(100 + round), "the value comes back");
            assert_eq!(got, [round * 10 + 1, round * 10 + 2], "every output, in order, before it");
            assert!(!owner.is_lent());
        }
        dispatch.join().unwrap();
    });
}
