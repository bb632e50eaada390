//! Orders of this process that are live at the venue or in flight, keyed by label.
//!
//! Replaces a `BTreeMap<String, _>` that allocated a `String` and a tree node per order: a
//! `Vec` sorted by label, sized once at start-up ([`LIVE_ORDERS_CAPACITY`]), holding inline
//! [`Label`]s. Insert and remove shift elements (a few hundred at most) and allocate nothing
//! while the count stays within the capacity; iteration is in label order, as the strategy
//! interface promises for open orders.

use hotpath::domain::label::Label;

use super::LiveIntent;

/// Live orders the table holds without growing (the quoter keeps ≤ 64, churn a few dozen).
pub const LIVE_ORDERS_CAPACITY: usize = 4_096;

/// The live-order table.
#[derive(Debug)]
pub struct LiveOrders {
    entries: Vec<(Label, LiveIntent)>,
}

impl Default for LiveOrders {
    fn default() -> Self {
        Self { entries: Vec::with_capacity(LIVE_ORDERS_CAPACITY) }
    }
}

impl LiveOrders {
    fn find(&self, label: &str) -> Result<usize, usize> {
        self.entries.binary_search_by(|(l, _)| l.as_str().cmp(label))
    }

    /// Inserts or replaces the order under `label`.
    pub fn insert(&mut self, label: Label, live: LiveIntent) {
        match self.find(label.as_str()) {
            Ok(at) => self.entries[at].1 = live,
            Err(at) => self.entries.insert(at, (label, live)),
        }
    }

    /// Inserts under a label given as text (reconciliation: labels read back from the WAL).
    /// Returns false for text that is not one of our labels.
    pub fn insert_text(&mut self, label: &str, live: LiveIntent) -> bool {
        let Some(l) = super::tick::label_of(label) else { return false };
        self.insert(l, live);
        true
    }

    /// The order under `label`.
    #[must_use]
    pub fn get(&self, label: &str) -> Option<&LiveIntent> {
        self.find(label).ok().map(|at| &self.entries[at].1)
    }

    /// Removes the order under `label`, if any.
    pub fn remove(&mut self, label: &str) -> Option<LiveIntent> {
        self.find(label).ok().map(|at| self.entries.remove(at).1)
    }

    /// Orders in label order.
    pub fn iter(&self) -> impl Iterator<Item = (&Label, &LiveIntent)> {
        self.entries.iter().map(|(l, v)| (l, v))
    }

    /// The orders, in label order.
    pub fn values(&self) -> impl Iterator<Item = &LiveIntent> {
        self.entries.iter().map(|(_, v)| v)
    }

    /// Number of orders.
    #[must_use]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there is none.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Forgets every order (reconciliation rebuilds the table from the venue).
    pub fn clear(&mut self) {
        self.entries.clear();
    }
}
