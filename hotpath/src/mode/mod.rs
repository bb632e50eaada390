//! TradingMode authority: the mode cell, PolicyGuard and the open-permission latch.
