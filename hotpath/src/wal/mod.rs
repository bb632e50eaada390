//! The durable intent write-ahead log: segments, framing + CRC32C, group commit, recovery, ledger.
