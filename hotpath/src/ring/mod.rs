//! Stages, wait strategies, thread topology and pinning.
