//! Gates: pure functions of (intent, snapshot, policy, clock) -> accept or an enumerated reject.
