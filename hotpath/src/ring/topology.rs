//! Thread topology: `Pinned` (one core per spinning stage, busy-spin; a colocated host with
//! isolated cores) or `Compact` (stages share the remaining cores and park when idle; the
//! default on small machines such as this 2-vCPU guest).

use crate::limits::TOPOLOGY_RESERVED_COLD_CORES;
use crate::ring::wait::WaitStrategy;
pub use core_affinity::CoreId;

/// How hot stages map onto cores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Topology {
    /// One core per spinning stage, pinned with `core_affinity`, `WaitStrategy::Spin`.
    Pinned,
    /// No pinning; stages spin briefly, then park (`WaitStrategy::COMPACT_DEFAULT`).
    Compact,
}

impl Topology {
    /// The wait strategy this topology runs its stages with.
    #[must_use]
    pub fn wait_strategy(self) -> WaitStrategy {
        match self {
            Self::Pinned => WaitStrategy::Spin,
            Self::Compact => WaitStrategy::COMPACT_DEFAULT,
        }
    }

    /// The configuration spelling (`pinned` / `compact`).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pinned => "pinned",
            Self::Compact => "compact",
        }
    }
}

/// A topology decision and the sentence the start banner prints about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopologyChoice {
    /// The chosen topology.
    pub topology: Topology,
    /// Why, in one line.
    pub reason: String,
}

/// Chooses the topology for `cores` usable cores and `spinning_stages` stages that would
/// busy-spin. `Pinned` needs one core per spinning stage plus
/// [`TOPOLOGY_RESERVED_COLD_CORES`] for the OS and the cold threads; with fewer, spinning
/// threads would share cores and pay scheduler ticks (8–23 ms p50 measured on this guest),
/// so it returns `Compact`.
#[must_use]
pub fn choose_topology(cores: usize, spinning_stages: usize) -> TopologyChoice {
    let needed = spinning_stages + TOPOLOGY_RESERVED_COLD_CORES;
    if cores < needed {
        TopologyChoice {
            topology: Topology::Compact,
            reason: format!(
                "compact: {cores} cores < {spinning_stages} spinning stages + \
                 {TOPOLOGY_RESERVED_COLD_CORES} reserved for OS/cold threads; stages park when idle"
            ),
        }
    } else {
        TopologyChoice {
            topology: Topology::Pinned,
            reason: format!(
                "pinned: {cores} cores >= {spinning_stages} spinning stages + \
                 {TOPOLOGY_RESERVED_COLD_CORES} reserved; one core per stage, busy-spin"
            ),
        }
    }
}

/// The cores this process may run on (empty when the platform cannot tell).
#[must_use]
pub fn available_cores() -> Vec<CoreId> {
    core_affinity::get_core_ids().unwrap_or_default()
}

/// Which core each of `stages` stages runs on: under `Pinned`, stage `i` gets
/// `cores[TOPOLOGY_RESERVED_COLD_CORES + i]` (the first cores stay with the OS and the cold
/// threads); under `Compact`, or when there are not enough cores, `None` (unpinned).
#[must_use]
pub fn core_plan(topology: Topology, stages: usize, cores: &[CoreId]) -> Vec<Option<CoreId>> {
    let enough = cores.len() >= stages + TOPOLOGY_RESERVED_COLD_CORES;
    (0..stages)
        .map(|i| match topology {
            Topology::Pinned if enough => Some(cores[TOPOLOGY_RESERVED_COLD_CORES + i]),
            Topology::Pinned | Topology::Compact => None,
        })
        .collect()
}

/// Pins the calling thread to `core` (no-op for `None`). Returns whether the thread is now
/// pinned as asked (`false` if the OS refused).
#[must_use]
pub fn pin_current_thread(core: Option<CoreId>) -> bool {
    match core {
        Some(core) => core_affinity::set_for_current(core),
        None => true,
    }
}
