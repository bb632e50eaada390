//! The feed's hot path through the decoder: every frame is parsed once into a reused
//! simd-json tape (no allocation once the tape and parse buffers have grown to the largest
//! frame), and a `book.*` subscription notification is read straight from that tape into
//! the decoder's level arrays. Any other frame — and any book frame this path does not
//! accept exactly — is turned into the borrowed DOM the general decoder reads
//! ([`to_dom`]), so its result and its errors are the general decoder's.
//!
//! This path accepts only what the general path decodes to the same value; the equivalence
//! is checked over every recorded sample and generated book frames
//! (`tests::tape_and_dom_paths_agree`).

use std::borrow::Cow;

use simd_json::prelude::{TypedValue, ValueAsScalar, ValueIntoString};
use simd_json::value::tape::Value as TapeValue;
use simd_json::{BorrowedValue, StaticNode, ValueType};

use super::messages::{dec_of, int_of, BookKind, Level, LevelAction};

/// A book notification's scalar fields (its levels are in the caller's arrays).
#[derive(Debug, Clone, Copy)]
pub(super) struct BookFrame<'a> {
    pub channel: &'a str,
    pub kind: BookKind,
    pub instrument_name: &'a str,
    pub change_id: u64,
    pub prev_change_id: Option<u64>,
    pub timestamp: i64,
}

/// A scalar tape value as the general decoder's `Static` node (`None` for strings and
/// containers).
fn static_of(v: TapeValue<'_, '_>) -> Option<StaticNode> {
    Some(match v.value_type() {
        ValueType::Null => StaticNode::Null,
        ValueType::Bool => StaticNode::Bool(v.as_bool()?),
        ValueType::I64 => StaticNode::I64(v.as_i64()?),
        ValueType::U64 => StaticNode::U64(v.as_u64()?),
        ValueType::F64 => StaticNode::F64(v.as_f64()?),
        _ => return None,
    })
}

fn is_null(v: TapeValue<'_, '_>) -> bool {
    v.value_type() == ValueType::Null
}

/// The whole value as a borrowed DOM (strings borrow the input, as a direct borrowed parse's
/// do). Allocates: the general path's cost, off the book path.
pub(super) fn to_dom<'i>(v: TapeValue<'_, 'i>) -> BorrowedValue<'i> {
    if let Some(o) = v.as_object() {
        let mut m = simd_json::value::borrowed::Object::with_capacity_and_hasher(
            o.len(),
            simd_json::value::ObjectHasher::default(),
        );
        for (k, x) in &o {
            m.insert(Cow::Borrowed(k), to_dom(x));
        }
        return BorrowedValue::Object(Box::new(m));
    }
    if let Some(a) = v.as_array() {
        return BorrowedValue::Array(Box::new(a.iter().map(to_dom).collect()));
    }
    if let Some(s) = v.into_string() {
        return BorrowedValue::String(Cow::Borrowed(s));
    }
    BorrowedValue::Static(static_of(v).unwrap_or(StaticNode::Null))
}

fn int(v: TapeValue<'_, '_>, field: &'static str) -> Option<i64> {
    int_of(&BorrowedValue::Static(static_of(v)?), field).ok()
}

fn dec(v: TapeValue<'_, '_>, field: &'static str) -> Option<super::Decimal8> {
    dec_of(&BorrowedValue::Static(static_of(v)?), field).ok()
}

/// The book notification in `top`, its levels pushed onto `bids` / `asks` (at most `max`
/// each). `None` when `top` is anything else or would not decode: the caller clears the
/// arrays and takes the general path.
pub(super) fn book_notification<'a>(
    top: TapeValue<'_, 'a>,
    bids: &mut Vec<Level>,
    asks: &mut Vec<Level>,
    max: usize,
) -> Option<BookFrame<'a>> {
    let msg = top.as_object()?;
    if let Some(ver) = msg.get("jsonrpc") {
        if ver.into_string()? != "2.0" {
            return None;
        }
    }
    if msg.get("id").is_some_and(|id| !is_null(id))
        || msg.get("error").is_some()
        || msg.get("result").is_some()
        || msg.get("method")?.into_string()? != "subscription"
    {
        return None;
    }
    let params = msg.get("params")?.as_object()?;
    let channel = params.get("channel")?.into_string()?;
    if !channel.starts_with("book.") {
        return None;
    }
    let data = params.get("data")?.as_object()?;
    let kind = match channel.split('.').count() {
        3 => match data.get("type")?.into_string()? {
            "snapshot" => BookKind::Snapshot,
            "change" => BookKind::Change,
            _ => return None,
        },
        5 => BookKind::TopN,
        _ => return None,
    };
    let instrument_name = data.get("instrument_name")?.into_string()?;
    let change_id = u64::try_from(int(data.get("change_id")?, "change_id")?).ok()?;
    let prev_change_id = match data.get("prev_change_id") {
        None => None,
        Some(v) if is_null(v) => None,
        Some(v) => Some(u64::try_from(int(v, "prev_change_id")?).ok()?),
    };
    if kind == BookKind::Change && prev_change_id.is_none() {
        return None;
    }
    let timestamp = int(data.get("timestamp")?, "timestamp")?;
    levels(data.get("bids")?, kind, bids, max)?;
    levels(data.get("asks")?, kind, asks, max)?;
    Some(BookFrame { channel, kind, instrument_name, change_id, prev_change_id, timestamp })
}

fn levels(side: TapeValue<'_, '_>, kind: BookKind, out: &mut Vec<Level>, max: usize) -> Option<()> {
    let items = side.as_array()?;
    if items.len() > max {
        return None;
    }
    for item in &items {
        let l = item.as_array()?;
        let level = match (kind, l.len()) {
            (BookKind::Snapshot | BookKind::Change, 3) => {
                let action = match l.get(0)?.into_string()? {
                    "new" => LevelAction::New,
                    "change" => LevelAction::Change,
                    "delete" => LevelAction::Delete,
                    _ => return None,
                };
                if kind == BookKind::Snapshot && action != LevelAction::New {
                    return None;
                }
                Level { action, price: dec(l.get(1)?, "price")?, amount: dec(l.get(2)?, "amount")? }
            }
            (BookKind::TopN, 2) => Level {
                action: LevelAction::Set,
                price: dec(l.get(0)?, "price")?,
                amount: dec(l.get(1)?, "amount")?,
            },
            _ => return None,
        };
        if level.amount.raw < 0 {
            return None;
        }
        out.push(level);
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::super::messages::{decode_via_dom, LEVELS_PER_SIDE_MAX};
    use super::super::Decoder;

    fn samples() -> Vec<(String, Vec<u8>)> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/fixtures/venue_samples");
        let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
            .expect("samples")
            .filter_map(|e| {
                let p = e.ok()?.path();
                if p.extension()? != "json" {
                    return None;
                }
                Some((p.display().to_string(), std::fs::read(&p).ok()?))
            })
            .collect();
        out.sort();
        out
    }

    /// Book frames the tape path must agree on, accepted or not: every field missing, mistyped,
    /// out of range, and levels of the wrong shape, plus frames that only look like books.
    fn book_variants() -> Vec<String> {
        let change = r#"{"jsonrpc":"2.0","method":"subscription","params":{"channel":"book.BTC-PERPETUAL.100ms","data":{"type":"change","timestamp":1700000000000,"instrument_name":"BTC-PERPETUAL","change_id":12,"prev_change_id":11,"bids":[["new",42000.5,1200.0],["delete",41999.0,0]],"asks":[["change",42001,10]]}}}"#;
        let top_n = r#"{"jsonrpc":"2.0","method":"subscription","params":{"channel":"book.BTC-PERPETUAL.none.10.100ms","data":{"timestamp":1700000000000,"instrument_name":"BTC-PERPETUAL","change_id":12,"bids":[[42000.5,1200.0]],"asks":[[42001,10]]}}}"#;
        let mut v = vec![change.to_owned(), top_n.to_owned()];
        let edits: &[(&str, &str)] = &[
            (r#""type":"change""#, r#""type":"snapshot""#),
            (r#""type":"change""#, r#""type":"other""#),
            (r#""type":"change","#, ""),
            (r#""prev_change_id":11"#, r#""prev_change_id":null"#),
            (r#","prev_change_id":11"#, ""),
            (r#""prev_change_id":11"#, r#""prev_change_id":-1"#),
            (r#""change_id":12"#, r#""change_id":-12"#),
            (r#""change_id":12"#, r#""change_id":12.0"#),
            (r#""change_id":12"#, r#""change_id":12.5"#),
            (r#""change_id":12"#, r#""change_id":"12""#),
            (r#""timestamp":1700000000000"#, r#""timestamp":null"#),
            (r#""instrument_name":"BTC-PERPETUAL""#, r#""instrument_name":7"#),
            (r#"["new",42000.5,1200.0]"#, r#"["new",42000.5,-1]"#),
            (r#"["new",42000.5,1200.0]"#, r#"["new",-42000.5,1]"#),
            (r#"["new",42000.5,1200.0]"#, r#"["add",42000.5,1]"#),
            (r#"["new",42000.5,1200.0]"#, r#"["new",42000.5]"#),
            (r#"["new",42000.5,1200.0]"#, r#"["new","42000.5",1]"#),
            (r#"["new",42000.5,1200.0]"#, r#"["new",0.123456789,1]"#),
            (r#"["new",42000.5,1200.0]"#, r#"["new",1e3,2E-2]"#),
            (r#""bids":[["new",42000.5,1200.0],["delete",41999.0,0]]"#, r#""bids":{}"#),
            (r#""bids":[["new",42000.5,1200.0],["delete",41999.0,0]]"#, r#""bids":[]"#),
            (r#""asks":[["change",42001,10]]"#, r#""asks":null"#),
            (r#""jsonrpc":"2.0""#, r#""jsonrpc":"1.0""#),
            (r#""jsonrpc":"2.0","#, ""),
            (r#""method":"subscription""#, r#""method":"subscription","id":5"#),
            (r#""method":"subscription""#, r#""method":"subscription","id":null"#),
            (r#""method":"subscription""#, r#""method":"heartbeat""#),
            (r#""channel":"book.BTC-PERPETUAL.100ms""#, r#""channel":"book.BTC-PERPETUAL""#),
            (
                r#""channel":"book.BTC-PERPETUAL.100ms""#,
                r#""channel":"ticker.BTC-PERPETUAL.100ms""#,
            ),
            (
                r#""channel":"book.BTC-PERPETUAL.100ms""#,
                r#""channel":"book.BTC\u002dPERPETUAL.100ms""#,
            ),
            (r#""instrument_name":"BTC-PERPETUAL""#, r#""instrument_name":"BTC\"X""#),
            (r#""method":"subscription""#, r#""method":"subscription","result":1"#),
            (r#""method":"subscription""#, r#""method":"subscription","error":{"code":1}"#),
            (r#"{"type""#, r#"{"type":"change","type""#),
        ];
        for (from, to) in edits {
            assert!(change.contains(from), "edit does not apply: {from}");
            v.push(change.replacen(from, to, 1));
        }
        v.push(top_n.replacen("[42000.5,1200.0]", r#"["new",42000.5,1200.0]"#, 1));
        let many: Vec<String> = (0..=LEVELS_PER_SIDE_MAX).map(|i| format!("[{i},1]")).collect();
        v.push(top_n.replacen("[[42000.5,1200.0]]", &format!("[{}]", many.join(",")), 1));
        v.push(r#"{"jsonrpc":"2.0","id":3,"result":["book.BTC-PERPETUAL.100ms"]}"#.to_owned());
        v.push("[1,2]".to_owned());
        v.push("{".to_owned());
        v
    }

    /// Whatever the tape path accepts decodes to exactly the general path's value, and every
    /// other frame (samples of every kind, book frames broken every way) gets the general
    /// path's value or error.
    #[test]
    fn tape_and_dom_paths_agree() {
        let mut frames: Vec<(String, Vec<u8>)> = samples();
        assert!(frames.len() >= 70, "samples missing: {}", frames.len());
        frames.extend(book_variants().into_iter().map(|f| (f.clone(), f.into_bytes())));
        let mut decoder = Decoder::new();
        let mut books = 0;
        for (name, bytes) in &frames {
            let mut a = bytes.clone();
            let mut b = bytes.clone();
            let via_tape = format!("{:?}", decoder.decode(&mut a));
            let (mut bids, mut asks) = (Vec::new(), Vec::new());
            let via_dom =
                format!("{:?}", decode_via_dom(&mut b, &mut bids, &mut asks, LEVELS_PER_SIDE_MAX));
            assert_eq!(via_tape, via_dom, "{name}");
            books += usize::from(
                via_tape.starts_with("Ok(Notification(Notification { channel: \"book."),
            );
        }
        assert!(books >= 8, "book frames decoded: {books}");
    }
}
