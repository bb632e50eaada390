//! Stage runner, wait strategies and topology choice.

use hotpath::domain::reason_codes::ModeReasonCode;
use hotpath::limits::{CONTROL_COMMANDS_PER_TURN_MAX, TOPOLOGY_RESERVED_COLD_CORES};
use hotpath::mode::{ReasonSet, TradingModeCell};
use hotpath::ring::{
    choose_topology, control_ring, core_plan, ControlCommand, IdleAction, Stage, StageExit,
    StageRunner, StopFlag, Topology, WaitStrategy, Waiter,
};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

const PARK: WaitStrategy =
    WaitStrategy::SpinThenPark { spin_iters: 8, park_timeout: Duration::from_micros(200) };

/// A stage with `backlog` events waiting; records commands and turn sizes.
struct Backlog {
    backlog: usize,
    turn_sizes: Vec<usize>,
    commands: Vec<ControlCommand>,
}

impl Stage for Backlog {
    fn turn(&mut self, budget: usize) -> usize {
        let n = self.backlog.min(budget);
        self.backlog -= n;
        self.turn_sizes.push(n);
        n
    }
    fn on_command(&mut self, command: ControlCommand) {
        self.commands.push(command);
    }
}

#[test]
fn each_turn_is_bounded_by_the_work_budget() {
    let mut stage = Backlog { backlog: 1_000, turn_sizes: Vec::new(), commands: Vec::new() };
    let mut runner = StageRunner::new(StopFlag::new(), None, PARK).with_work_budget(64);
    assert_eq!(runner.run_turns(&mut stage, 20), StageExit::TurnLimit { turns: 20 });
    assert_eq!(stage.backlog, 0);
    assert!(stage.turn_sizes.iter().all(|n| *n <= 64));
    assert_eq!(&stage.turn_sizes[..3], &[64, 64, 64]);
}

#[test]
fn stop_flag_and_control_commands_are_checked_every_turn() {
    let cell = Arc::new(TradingModeCell::with_reasons(ReasonSet::EMPTY));
    let (mut tx, rx) = control_ring(64, cell);
    let stop = StopFlag::new();
    let mut runner = StageRunner::new(stop.clone(), Some(rx), PARK);
    let mut stage =
        Backlog { backlog: usize::MAX / 2, turn_sizes: Vec::new(), commands: Vec::new() };
    for _ in 0..CONTROL_COMMANDS_PER_TURN_MAX + 3 {
        tx.send(ControlCommand::TightenMode(ModeReasonCode::ReduceonlyPolicyStale));
    }
    // A never-ending backlog does not starve the mailbox: one turn delivers a full batch.
    assert!(runner.turn_once(&mut stage));
    assert_eq!(stage.commands.len(), CONTROL_COMMANDS_PER_TURN_MAX);
    assert!(runner.turn_once(&mut stage));
    assert_eq!(stage.commands.len(), CONTROL_COMMANDS_PER_TURN_MAX + 3);
    stop.stop();
    assert_eq!(runner.run(&mut stage), StageExit::Stopped { turns: 0 });
}

/// Counts commands through an `Arc` so the test thread can watch a running stage.
struct Counting(Arc<AtomicUsize>);

impl Stage for Counting {
    fn turn(&mut self, _budget: usize) -> usize {
        0
    }
    fn on_command(&mut self, _command: ControlCommand) {
        self.0.fetch_add(1, Ordering::Release);
    }
}

#[test]
fn a_parked_stage_wakes_for_commands_and_stops() {
    let cell = Arc::new(TradingModeCell::with_reasons(ReasonSet::EMPTY));
    let (mut tx, rx) = control_ring(8, cell);
    let stop = StopFlag::new();
    let seen = Arc::new(AtomicUsize::new(0));
    let handle = {
        let (stop, seen) = (stop.clone(), Arc::clone(&seen));
        std::thread::spawn(move || StageRunner::new(stop, Some(rx), PARK).run(&mut Counting(seen)))
    };
    tx.set_wake(handle.thread().clone());
    for n in 1..=20 {
        tx.send(ControlCommand::CancelAllOpens);
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while seen.load(Ordering::Acquire) < n {
            assert!(std::time::Instant::now() < deadline, "stage never woke for command {n}");
            std::thread::sleep(Duration::from_micros(100));
        }
    }
    stop.stop();
    handle.thread().unpark();
    assert!(matches!(handle.join().unwrap(), StageExit::Stopped { .. }));
}

#[test]
fn wait_strategies_spin_then_yield_or_park() {
    let mut w = Waiter::new(WaitStrategy::SpinThenYield { spin_iters: 3 });
    let actions: Vec<_> = (0..5).map(|_| w.idle()).collect();
    assert_eq!(
        actions,
        [
            IdleAction::Spun,
            IdleAction::Spun,
            IdleAction::Spun,
            IdleAction::Yielded,
            IdleAction::Yielded
        ]
    );
    w.reset();
    assert_eq!(w.idle(), IdleAction::Spun);
    let mut p = Waiter::new(WaitStrategy::SpinThenPark {
        spin_iters: 1,
        park_timeout: Duration::from_micros(50),
    });
    assert_eq!((p.idle(), p.idle()), (IdleAction::Spun, IdleAction::Parked));
    assert_eq!(Waiter::new(WaitStrategy::Spin).idle(), IdleAction::Spun);
}

#[test]
fn topology_is_compact_when_cores_cannot_host_every_spinning_stage() {
    let two = choose_topology(2, 4);
    assert_eq!(two.topology, Topology::Compact);
    assert!(two.reason.starts_with("compact: 2 cores < 4 spinning stages"), "{}", two.reason);
    assert_eq!(choose_topology(4, 4).topology, Topology::Compact, "no core left for cold threads");
    let big = choose_topology(4 + TOPOLOGY_RESERVED_COLD_CORES, 4);
    assert_eq!(big.topology, Topology::Pinned);
    assert!(big.reason.starts_with("pinned"));
    assert_eq!(Topology::Pinned.wait_strategy(), WaitStrategy::Spin);
    assert_eq!(Topology::Compact.wait_strategy(), WaitStrategy::COMPACT_DEFAULT);
}

#[test]
fn core_plan_pins_one_stage_per_core_after_the_reserved_ones() {
    let cores: Vec<_> = (0..6).map(|id| core_affinity::CoreId { id }).collect();
    let plan = core_plan(Topology::Pinned, 4, &cores);
    let ids: Vec<_> = plan.iter().map(|c| c.map(|c| c.id)).collect();
    assert_eq!(ids, vec![Some(1), Some(2), Some(3), Some(4)]);
    assert!(core_plan(Topology::Compact, 4, &cores).iter().all(Option::is_none));
    assert!(core_plan(Topology::Pinned, 4, &cores[..3]).iter().all(Option::is_none));
}
