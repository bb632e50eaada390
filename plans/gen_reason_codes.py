#!/usr/bin/env python3
"""Generates hotpath/src/domain/reason_codes.rs from spec/reason_codes.json.

The registries are closed and ordered; the Rust enums keep the registry's order (the order
/status lists reasons in) and its verbatim string forms. Stoic-specific codes are appended
after the contract's, in EXTENSIONS below, each with a one-line meaning; they never reuse a
contract name. `hotpath/tests/reason_codes_registry.rs` fails when this file and the JSON
disagree, so run `python3 plans/gen_reason_codes.py` after editing either.
"""
import json, pathlib, re

ROOT = pathlib.Path(__file__).resolve().parent.parent
REG = json.loads((ROOT / "spec/reason_codes.json").read_text())

# Ruling 6 (shared/spec/README.md): two ReduceOnly reasons for mechanisms without a code.
MODE_EXTENSIONS_REDUCEONLY = {
    "REDUCEONLY_GROUP_LOCK_TIMEOUT": "An atomic group could not take its group lock in time (ruling 6).",
    "REDUCEONLY_HOTPATH_BACKPRESSURE": "A hot-path ring or the evidence/log queue overflowed; new risk stops until it drains (ruling 6).",
}
# Stoic's own pre-dispatch rejects for checks the issues require and the contract has no code for.
REJECT_EXTENSIONS = {
    "InstrumentUnknown": "Instrument name is malformed (does not parse); an unlisted but well-formed name is InstrumentMetadataMissing.",
    "InstrumentNotAllowed": "Instrument or currency is not on the policy allowlist.",
    "InstrumentNotYetListed": "Instrument's creation time is in the future.",
    "InstrumentMetadataStale": "Instrument metadata older than instrument_cache_ttl_s; opens refused.",
    "PriceOffTick": "Limit price is not a multiple of the instrument's tick size at that price level.",
    "QtyOffStep": "Quantity is not a multiple of the instrument's amount step.",
    "ReduceOnlyWouldIncrease": "reduce_only order would increase (or flip) the position.",
    "OrderNotionalTooLarge": "Order notional above policy max_order_notional_usd.",
    "PositionLimitExceeded": "Position after fill would exceed the per-instrument or total policy cap.",
    "OrderRateLimitExceeded": "Policy max order rate (token bucket) exhausted.",
    "DailyLossLimitBreached": "Realised + unrealised loss for the day reached policy max_daily_loss_usd.",
    "RiskStateNotHealthy": "RiskState is not Healthy; opens refused.",
    "TradingModeReduceOnly": "TradingMode is ReduceOnly; only risk-reducing intents pass.",
    "TradingModeKill": "TradingMode is Kill; only emergency containment passes.",
    "OpenPermissionLatched": "Open-permission latch is set (reconcile required); opens refused.",
    "LiquidityGateBookGapped": "Book for the instrument has a change-id gap and awaits resubscription.",
    "LiquidityGateSpreadTooWide": "Best bid/ask spread wider than policy for an open.",
    "LiquidityGateDepthTooThin": "Book depth at acceptable prices below the order size for an open.",
    "ConfigMissingOrInvalid": "A critical config or policy key is missing or invalid (fail closed).",
    "IntentRingFull": "Gate-to-dispatch ring full; intent handed back, never dropped silently.",
    "DuplicateIntent": "Intent hash already recorded in the WAL; NOOP, no second dispatch.",
    "LimitPriceInvalid": "Limit price is zero, negative or not representable in fixed point.",
    "QtyNotPositive": "Order quantity is zero, negative or not representable in fixed point.",
    "OrderTypeNotAllowed": "Order attribute (post_only, reduce_only, IOC, FOK) not in policy allowed_order_types.",
    "IndexPriceMissing": "Coin-sized order without an index price, so its USD notional cannot be bounded.",
}


def camel(name: str) -> str:
    return "".join(p[:1].upper() + p[1:].lower() for p in re.split(r"[_\s]+", name) if p)


def rust_str(s: str) -> str:
    return json.dumps(s, ensure_ascii=False)


def enum_block(name, doc, variants, extra_methods=""):
    """variants: list of (rust_ident, wire, meaning)."""
    out = [f"/// {doc}", "#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]", f"pub enum {name} {{"]
    for ident, wire, meaning in variants:
        out.append(f"    /// {meaning}")
        out.append(f"    {ident},")
    out.append("}\n")
    out.append(f"impl {name} {{")
    out.append(f"    /// Every code, in registry order.")
    out.append(f"    pub const ALL: [Self; {len(variants)}] = [")
    for ident, _, _ in variants:
        out.append(f"        Self::{ident},")
    out.append("    ];\n")
    out.append("    /// The stable wire form (what `/status`, logs, metrics and the WAL carry).")
    out.append("    #[must_use]")
    out.append("    pub const fn as_str(self) -> &'static str {")
    out.append("        match self {")
    for ident, wire, _ in variants:
        out.append(f"            Self::{ident} => {rust_str(wire)},")
    out.append("        }\n    }\n")
    out.append("    /// The registry's one-line meaning.")
    out.append("    #[must_use]")
    out.append("    pub const fn meaning(self) -> &'static str {")
    out.append("        match self {")
    for ident, _, meaning in variants:
        out.append(f"            Self::{ident} => {rust_str(meaning)},")
    out.append("        }\n    }\n")
    out.append("    /// Parses the wire form; `None` for anything not in the registry.")
    out.append("    #[must_use]")
    out.append("    pub fn from_wire(s: &str) -> Option<Self> {")
    out.append("        Self::ALL.into_iter().find(|c| c.as_str() == s)")
    out.append("    }")
    out.append(extra_methods)
    out.append("}\n")
    out.append(f"impl core::fmt::Display for {name} {{")
    out.append("    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {")
    out.append("        f.write_str(self.as_str())")
    out.append("    }\n}\n")
    out.append(f"impl serde::Serialize for {name} {{")
    out.append("    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {")
    out.append("        s.serialize_str(self.as_str())")
    out.append("    }\n}\n")
    out.append(f"impl<'de> serde::Deserialize<'de> for {name} {{")
    out.append("    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {")
    out.append("        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;")
    out.append(f"        Self::from_wire(&s).ok_or_else(|| serde::de::Error::custom(format!(\"unknown {name} {{s:?}}\")))")
    out.append("    }\n}\n")
    return "\n".join(out)


def items(d):
    return [(k, v) for k, v in d.items() if not k.startswith("_")]


parts = ["// @generated by plans/gen_reason_codes.py from spec/reason_codes.json. Do not edit by hand.",
         "//! The closed reason-code registries (contract v5.2 §2.2.3.5, §2.2.4, §2.2.6) and the",
         "//! enums they are computed over. Free-text reasons do not exist anywhere in Stoic.",
         "#![allow(clippy::too_many_lines)]", ""]

enums = REG["Enums"]
tm = [(k, k, v) for k, v in enums["TradingMode"].items()]
parts.append(enum_block("TradingMode", "How much risk the engine may take, least to most restrictive (derives `Ord`: `max` is the tighter).", tm, """
    /// Whether an intent that opens or increases risk may pass in this mode.
    #[must_use]
    pub const fn allows_open(self) -> bool {
        matches!(self, Self::Active)
    }"""))
rs = [(k, k, v) for k, v in enums["RiskState"].items()]
parts.append(enum_block("RiskState", "Risk state, least to most severe.", rs, """
    /// The mode this risk state forces at the least.
    #[must_use]
    pub const fn forced_mode(self) -> TradingMode {
        match self {
            Self::Healthy => TradingMode::Active,
            Self::Degraded | Self::Maintenance => TradingMode::ReduceOnly,
            Self::Kill => TradingMode::Kill,
        }
    }"""))

mode = REG["ModeReasonCode"]
mv = []
for tier in ("Kill", "ReduceOnly"):
    for k, v in items(mode[tier]):
        mv.append((camel(k), k, v))
    if tier == "ReduceOnly":
        for k, v in MODE_EXTENSIONS_REDUCEONLY.items():
            mv.append((camel(k), k, v))
parts.append(enum_block("ModeReasonCode", "Why TradingMode is not Active (`/api/v1/status.mode_reasons`), Kill tier first, in registry order.", mv, """
    /// The mode this reason forces.
    #[must_use]
    pub const fn tier(self) -> TradingMode {
        if self.as_str().as_bytes()[0] == b'K' {
            TradingMode::Kill
        } else {
            TradingMode::ReduceOnly
        }
    }"""))

op = REG["OpenPermissionReasonCode"]
parts.append(enum_block("OpenPermissionReasonCode", "Why the open-permission latch is set (CP-001); all reconcile-class.", [(camel(k), k, v) for k, v in items(op)]))

rj = REG["RejectReasonCode"]
rv = [(k, k, v) for k, v in rj["contract"].items()]
rv += [(k, k, v) for k, v in rj["extensions_in_status_manifest_not_in_contract"].items()]
rv += [(k, k, v) for k, v in REJECT_EXTENSIONS.items()]
parts.append(enum_block("RejectReasonCode", "Why an intent was rejected before dispatch: contract codes, then status-manifest extensions, then Stoic's own.", rv))

parts.append("/// Number of RejectReasonCodes taken verbatim from the contract registry (the rest are extensions).")
parts.append(f"pub const REJECT_CONTRACT_CODE_COUNT: usize = {len(rj['contract'])};")
parts.append("/// Stoic-specific reject codes (appended after the contract's and the status manifest's).")
parts.append(f"pub const REJECT_STOIC_EXTENSION_COUNT: usize = {len(REJECT_EXTENSIONS)};")
parts.append("/// ReduceOnly reasons added by ruling 6 of shared/spec/README.md.")
parts.append(f"pub const MODE_EXTENSION_COUNT: usize = {len(MODE_EXTENSIONS_REDUCEONLY)};")

out = ROOT / "hotpath/src/domain/reason_codes.rs"
out.write_text("\n".join(parts) + "\n")
# Format like the rest of the tree so `cargo fmt --check` and the regenerate-and-diff step in
# plans/verify.sh agree on one byte-exact form.
import subprocess
subprocess.run(["rustfmt", "--edition", "2021", "--config-path", str(ROOT / "rustfmt.toml"), str(out)], check=True)
print(f"wrote {out.relative_to(ROOT)}: {len(mv)} mode, {len(items(op))} open-permission, {len(rv)} reject codes")
