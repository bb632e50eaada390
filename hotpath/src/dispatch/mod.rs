//! THE dispatch chokepoint: the only module that owns a trading-capable venue client.
