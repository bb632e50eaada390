//! Maps a venue order or trade back to its ledger intent (contract §1.1.2).
//!
//! Order of evidence: venue order id (the ledger learnt it from the ack) → exact label →
//! parsed label. A parsed label's candidates are the intents with the same `gid12` and
//! `leg_idx`; exactly one ⇒ match (unless its known instrument or side contradicts the venue
//! item, which no order of that intent can do); several ⇒ tie-break in order A) `ih16`,
//! B) instrument, C) side, D) amount, each step narrowing only when it keeps at least one;
//! still several ⇒ ambiguous (the caller goes Degraded and blocks opens).

use std::collections::BTreeMap;

use hotpath::domain::label::{Label, LABEL_PREFIX};
use hotpath::venue::messages::Direction;

use super::model::{AmountRaw, LedgerIntent};

/// Where a venue item belongs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    /// The intent at this index of the matcher's (sorted) intent list.
    Intent(usize),
    /// Our `s4:` prefix, but no ledger intent claims it.
    Unknown,
    /// Not our label (no `s4:` prefix): never touched.
    Foreign,
    /// Several intents remain after every tie-break (their hashes, ascending).
    Ambiguous(Vec<u64>),
}

/// What is known about the venue item being resolved.
#[derive(Debug, Clone, Copy)]
pub struct VenueKey<'a> {
    /// Venue order id ("" when unknown).
    pub order_id: &'a str,
    /// Label ("" when none).
    pub label: &'a str,
    /// Instrument.
    pub instrument: &'a str,
    /// Side.
    pub direction: Direction,
    /// Order amount, when the item is an order (trades carry only a part of it).
    pub amount: Option<AmountRaw>,
}

/// Whether `label` carries our prefix (`s4:`).
#[must_use]
pub fn has_our_prefix(label: &str) -> bool {
    label.strip_prefix(LABEL_PREFIX).is_some_and(|rest| rest.starts_with(':'))
}

/// Index over the ledger intents.
#[derive(Debug)]
pub struct Matcher<'a> {
    intents: &'a [LedgerIntent],
    by_order_id: BTreeMap<&'a str, usize>,
    by_label: BTreeMap<&'a str, usize>,
    by_group: BTreeMap<([u8; 12], u8), Vec<usize>>,
}

impl<'a> Matcher<'a> {
    /// Indexes `intents` (expected sorted by hash, so candidate lists are deterministic).
    #[must_use]
    pub fn new(intents: &'a [LedgerIntent]) -> Self {
        let mut by_order_id = BTreeMap::new();
        let mut by_label = BTreeMap::new();
        let mut by_group: BTreeMap<([u8; 12], u8), Vec<usize>> = BTreeMap::new();
        for (i, it) in intents.iter().enumerate() {
            if let Some(id) = it.venue_order_id.as_deref().filter(|s| !s.is_empty()) {
                by_order_id.entry(id).or_insert(i);
            }
            by_label.entry(it.label.as_str()).or_insert(i);
            if let Ok(parts) = Label::parse(&it.label) {
                by_group.entry((parts.gid12, parts.leg_index)).or_default().push(i);
            }
        }
        Self { intents, by_order_id, by_label, by_group }
    }

    /// The indexed intents.
    #[must_use]
    pub fn intents(&self) -> &'a [LedgerIntent] {
        self.intents
    }

    /// Resolves one venue item.
    #[must_use]
    pub fn resolve(&self, key: &VenueKey<'_>) -> Resolution {
        if !key.order_id.is_empty() {
            if let Some(&i) = self.by_order_id.get(key.order_id) {
                return Resolution::Intent(i);
            }
        }
        if !has_our_prefix(key.label) {
            return Resolution::Foreign;
        }
        if let Some(&i) = self.by_label.get(key.label) {
            return Resolution::Intent(i);
        }
        let Ok(parts) = Label::parse(key.label) else {
            return Resolution::Unknown;
        };
        let Some(candidates) = self.by_group.get(&(parts.gid12, parts.leg_index)) else {
            return Resolution::Unknown;
        };
        if let [only] = candidates.as_slice() {
            let contradicts = self.intents[*only]
                .detail
                .as_ref()
                .is_some_and(|d| d.instrument != key.instrument || d.direction != key.direction);
            return if contradicts { Resolution::Unknown } else { Resolution::Intent(*only) };
        }
        let ih = parts.intent_hash.to_hex16();
        let filters: [&dyn Fn(&LedgerIntent) -> bool; 4] = [
            &|it| Label::parse(&it.label).is_ok_and(|p| p.intent_hash.to_hex16() == ih),
            &|it| it.detail.as_ref().is_some_and(|d| d.instrument == key.instrument),
            &|it| it.detail.as_ref().is_some_and(|d| d.direction == key.direction),
            &|it| key.amount.is_some_and(|a| it.detail.as_ref().is_some_and(|d| d.amount == a)),
        ];
        let mut set: Vec<usize> = candidates.clone();
        for f in filters {
            let next: Vec<usize> = set.iter().copied().filter(|&i| f(&self.intents[i])).collect();
            match next.len() {
                1 => return Resolution::Intent(next[0]),
                0 => {}
                _ => set = next,
            }
        }
        let mut hashes: Vec<u64> = set.iter().map(|&i| self.intents[i].intent_hash).collect();
        hashes.sort_unstable();
        Resolution::Ambiguous(hashes)
    }
}
