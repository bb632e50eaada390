//! The Strategy trait (market + positions in, intents out) and reference strategies.
