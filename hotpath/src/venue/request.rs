//! JSON-RPC request writing into a reusable buffer: after the first few requests the
//! buffer has its working size and building a request does not touch the heap.

use std::io::Write as _;

use super::decimal::Decimal8;

/// Writes one JSON-RPC request at a time.
#[derive(Debug)]
pub struct RequestBuf {
    buf: Vec<u8>,
    first_param: bool,
}

impl Default for RequestBuf {
    fn default() -> Self {
        Self::with_capacity(1024)
    }
}

impl RequestBuf {
    /// A buffer with `capacity` bytes reserved.
    #[must_use]
    pub fn with_capacity(capacity: usize) -> Self {
        Self { buf: Vec::with_capacity(capacity), first_param: true }
    }

    /// Starts `{"jsonrpc":"2.0","id":ID,"method":"METHOD","params":{`.
    pub fn begin(&mut self, id: u64, method: &str) -> &mut Self {
        self.buf.clear();
        self.buf.extend_from_slice(b"{\"jsonrpc\":\"2.0\",\"id\":");
        // Writing into a Vec cannot fail.
        let _ = write!(self.buf, "{id}");
        self.buf.extend_from_slice(b",\"method\":");
        write_json_str(&mut self.buf, method);
        self.buf.extend_from_slice(b",\"params\":{");
        self.first_param = true;
        self
    }

    fn key(&mut self, k: &str) {
        if !self.first_param {
            self.buf.push(b',');
        }
        self.first_param = false;
        write_json_str(&mut self.buf, k);
        self.buf.push(b':');
    }

    /// A string parameter (escaped).
    pub fn str(&mut self, k: &str, v: &str) -> &mut Self {
        self.key(k);
        write_json_str(&mut self.buf, v);
        self
    }

    /// A fixed-point parameter, written as its exact decimal text.
    pub fn dec(&mut self, k: &str, v: Decimal8) -> &mut Self {
        self.key(k);
        let _ = v.write_to(&mut VecFmt(&mut self.buf));
        self
    }

    /// An integer parameter.
    pub fn int(&mut self, k: &str, v: i64) -> &mut Self {
        self.key(k);
        let _ = write!(self.buf, "{v}");
        self
    }

    /// A boolean parameter.
    pub fn bool(&mut self, k: &str, v: bool) -> &mut Self {
        self.key(k);
        self.buf.extend_from_slice(if v { b"true" } else { b"false" });
        self
    }

    /// An array of strings.
    pub fn str_array<S: AsRef<str>>(&mut self, k: &str, items: &[S]) -> &mut Self {
        self.key(k);
        self.buf.push(b'[');
        for (i, s) in items.iter().enumerate() {
            if i > 0 {
                self.buf.push(b',');
            }
            write_json_str(&mut self.buf, s.as_ref());
        }
        self.buf.push(b']');
        self
    }

    /// Closes the request and returns its bytes.
    pub fn finish(&mut self) -> &[u8] {
        self.buf.extend_from_slice(b"}}");
        &self.buf
    }

    /// The bytes written so far.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf
    }
}

struct VecFmt<'a>(&'a mut Vec<u8>);

impl core::fmt::Write for VecFmt<'_> {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

/// Appends `s` as a JSON string literal with the mandatory escapes.
pub fn write_json_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    for &b in s.as_bytes() {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0..=0x1f => {
                let _ = write!(out, "\\u{b:04x}");
            }
            _ => out.push(b),
        }
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_valid_json_with_escapes_and_exact_numbers() {
        let mut r = RequestBuf::default();
        r.begin(7, "private/buy")
            .str("instrument_name", "BTC-25JUL25-110000-C")
            .dec("amount", Decimal8::parse_str("0.1").unwrap())
            .dec("price", Decimal8::parse_str("2.5e-7").unwrap())
            .str("label", "a\"b\\c\n\u{1}")
            .bool("post_only", true)
            .int("n", -3)
            .str_array("channels", &["x", "y"]);
        let bytes = r.finish().to_vec();
        let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(v["id"], 7);
        assert_eq!(v["method"], "private/buy");
        assert_eq!(v["params"]["label"], "a\"b\\c\n\u{1}");
        assert_eq!(v["params"]["price"].as_f64(), Some(2.5e-7));
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(text.contains(r#""amount":0.1,"price":0.00000025,"#), "{text}");
        assert_eq!(v["params"]["channels"][1], "y");
        // Reuse: a second request replaces the first.
        let empty = r.begin(8, "public/test").finish().to_vec();
        assert_eq!(empty, br#"{"jsonrpc":"2.0","id":8,"method":"public/test","params":{}}"#);
    }
}
