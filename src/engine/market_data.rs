//! The market-data session: book updates, index prices, gap recovery by resubscribing.

use std::collections::BTreeMap;
use std::time::Duration;

use super::{BookSlot, Engine, EngineError};
use hotpath::domain::units::Price;
use hotpath::strategy::IndexPrices;
use hotpath::venue::conn::Incoming;
use hotpath::venue::messages::{Message, NotificationData};
use hotpath::venue::methods;

impl Engine {
    pub(super) fn poll_md(&mut self) -> Result<(), EngineError> {
        let Some(md) = self.md.as_mut() else { return Ok(()) };
        let books = &mut self.books;
        let index = &mut self.index;
        let clock = &self.clock;
        let health = &mut self.recon.md;
        md.poll(Duration::from_millis(2), &mut |inc| {
            apply_md(&inc, books, index, health, clock.now_ms());
        })?;
        // Gap recovery: resubscribe the book's channel for a fresh snapshot.
        let gapped: Vec<String> = self
            .books
            .values()
            .filter(|s| s.book.resubscribe_needed())
            .map(|s| s.channel.clone())
            .collect();
        for ch in gapped {
            self.on_book_gap();
            let md = self.md.as_mut().ok_or(EngineError::Reconcile("md gone".into()))?;
            let _ = md.call(
                methods::PUBLIC_UNSUBSCRIBE,
                |b| {
                    b.str_array("channels", &[ch.as_str()]);
                },
                Duration::from_secs(5),
                |_| Ok(()),
                &mut |_| {},
            );
            let books = &mut self.books;
            let index = &mut self.index;
            let clock = &self.clock;
            let health = &mut self.recon.md;
            md.subscribe(&[ch.as_str()], Duration::from_secs(5), &mut |inc| {
                apply_md(&inc, books, index, health, clock.now_ms());
            })?;
            for s in self.books.values_mut().filter(|s| s.channel == ch) {
                s.book.resubscribe_sent();
            }
            self.stats.resubscribes += 1;
            println!("resubscribed: {ch} (run_id={})", self.run_id);
        }
        Ok(())
    }
}

pub(super) fn apply_md(
    inc: &Incoming<'_>,
    books: &mut BTreeMap<String, BookSlot>,
    index: &mut IndexPrices,
    health: &mut super::reconcile_service::MdHealth,
    now: i64,
) {
    let Message::Notification(n) = inc.msg else { return };
    match &n.data {
        NotificationData::Book(u) => {
            health.on_event(now, u.timestamp);
            if let Some(slot) = books.get_mut(u.instrument_name) {
                if slot.book.apply(u).is_ok() {
                    slot.last_ms = now;
                }
            }
        }
        NotificationData::PlatformState(p) => health.on_platform_state(p.maintenance),
        NotificationData::PriceIndex { index_name, price, timestamp } => {
            health.on_event(now, *timestamp);
            let p = Some(Price::from_raw(price.raw));
            match *index_name {
                "btc_usd" => index.btc = p,
                "eth_usd" => index.eth = p,
                _ => {}
            }
        }
        _ => {}
    }
}
