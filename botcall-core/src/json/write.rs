//! A small JSON writer over a byte [`Sink`]; escapes strings, tracks commas.

use super::{Value, read::JsonStr};

/// The sink is full; the output is incomplete and must be discarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Full;

/// Somewhere bytes go: a fixed slice, a `heapless::Vec`, or (with `alloc`) a `Vec`.
pub trait Sink {
    /// Appends `bytes`, or fails without a partial write guarantee.
    ///
    /// # Errors
    /// [`Full`] when the bytes do not fit.
    fn put(&mut self, bytes: &[u8]) -> Result<(), Full>;
}

/// A cursor over a caller-provided buffer.
#[derive(Debug)]
pub struct SliceSink<'b> {
    buf: &'b mut [u8],
    len: usize,
}

impl<'b> SliceSink<'b> {
    /// Writes from the start of `buf`.
    pub fn new(buf: &'b mut [u8]) -> Self {
        SliceSink { buf, len: 0 }
    }
    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.len
    }
    /// Whether nothing was written.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// The written bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
    /// The written bytes, giving up the borrow.
    pub fn into_bytes(self) -> &'b [u8] {
        &self.buf[..self.len]
    }
}

impl Sink for SliceSink<'_> {
    fn put(&mut self, bytes: &[u8]) -> Result<(), Full> {
        let end = self.len.checked_add(bytes.len()).ok_or(Full)?;
        self.buf
            .get_mut(self.len..end)
            .ok_or(Full)?
            .copy_from_slice(bytes);
        self.len = end;
        Ok(())
    }
}

impl<const N: usize> Sink for heapless::Vec<u8, N> {
    fn put(&mut self, bytes: &[u8]) -> Result<(), Full> {
        self.extend_from_slice(bytes).map_err(|_| Full)
    }
}

#[cfg(feature = "alloc")]
impl Sink for alloc::vec::Vec<u8> {
    fn put(&mut self, bytes: &[u8]) -> Result<(), Full> {
        self.extend_from_slice(bytes);
        Ok(())
    }
}

/// Writes one JSON value. Nesting up to 32 levels; commas are automatic.
#[derive(Debug)]
pub struct Writer<'s, S: Sink + ?Sized> {
    sink: &'s mut S,
    /// Bit `d` set: the container at depth `d` already has an element.
    has_elem: u32,
    depth: u8,
    after_key: bool,
}

impl<'s, S: Sink + ?Sized> Writer<'s, S> {
    /// Starts writing into `sink`.
    pub fn new(sink: &'s mut S) -> Self {
        Writer {
            sink,
            has_elem: 0,
            depth: 0,
            after_key: false,
        }
    }

    fn sep(&mut self) -> Result<(), Full> {
        if self.after_key {
            self.after_key = false;
            return Ok(());
        }
        if self.depth > 0 {
            let bit = 1u32 << (self.depth - 1);
            if self.has_elem & bit != 0 {
                self.sink.put(b",")?;
            }
            self.has_elem |= bit;
        }
        Ok(())
    }

    fn open(&mut self, b: &[u8]) -> Result<&mut Self, Full> {
        self.sep()?;
        if self.depth >= 32 {
            return Err(Full);
        }
        self.sink.put(b)?;
        self.depth += 1;
        self.has_elem &= !(1u32 << (self.depth - 1));
        Ok(self)
    }

    fn close(&mut self, b: &[u8]) -> Result<&mut Self, Full> {
        self.sink.put(b)?;
        self.depth = self.depth.saturating_sub(1);
        Ok(self)
    }

    /// `{`
    pub fn begin_obj(&mut self) -> Result<&mut Self, Full> {
        self.open(b"{")
    }
    /// `}`
    pub fn end_obj(&mut self) -> Result<&mut Self, Full> {
        self.close(b"}")
    }
    /// `[`
    pub fn begin_arr(&mut self) -> Result<&mut Self, Full> {
        self.open(b"[")
    }
    /// `]`
    pub fn end_arr(&mut self) -> Result<&mut Self, Full> {
        self.close(b"]")
    }
    /// An object key (escaped as needed).
    pub fn key(&mut self, k: &str) -> Result<&mut Self, Full> {
        self.sep()?;
        escape_into(self.sink, k)?;
        self.sink.put(b":")?;
        self.after_key = true;
        Ok(self)
    }
    /// A string value, escaped.
    pub fn str(&mut self, v: &str) -> Result<&mut Self, Full> {
        self.sep()?;
        escape_into(self.sink, v)?;
        Ok(self)
    }
    /// A string that is already valid escaped JSON text (from the reader), copied verbatim.
    pub fn json_str(&mut self, v: JsonStr<'_>) -> Result<&mut Self, Full> {
        self.sep()?;
        self.sink.put(b"\"")?;
        self.sink.put(v.raw().as_bytes())?;
        self.sink.put(b"\"")?;
        Ok(self)
    }
    /// Any validated value, copied verbatim.
    pub fn value(&mut self, v: Value<'_>) -> Result<&mut Self, Full> {
        match v {
            Value::Str(s) => self.json_str(s),
            Value::Null => self.raw(b"null"),
            Value::Bool(true) => self.raw(b"true"),
            Value::Bool(false) => self.raw(b"false"),
            Value::Num(n) => self.raw(n.as_str().as_bytes()),
            Value::Arr(a) => self.raw(a.raw().as_bytes()),
            Value::Obj(o) => self.raw(o.raw().as_bytes()),
        }
    }
    fn raw(&mut self, b: &[u8]) -> Result<&mut Self, Full> {
        self.sep()?;
        self.sink.put(b)?;
        Ok(self)
    }
    /// An unsigned integer.
    pub fn u64(&mut self, v: u64) -> Result<&mut Self, Full> {
        let mut buf = [0u8; 20];
        let s = fmt_u64(v, &mut buf);
        self.raw(s)
    }
    /// A signed integer.
    pub fn i64(&mut self, v: i64) -> Result<&mut Self, Full> {
        if v < 0 {
            self.sep()?;
            self.sink.put(b"-")?;
            self.after_key = true; // suppress the separator for the digits
            self.u64(v.unsigned_abs())
        } else {
            self.u64(v as u64)
        }
    }
    /// A boolean.
    pub fn bool(&mut self, v: bool) -> Result<&mut Self, Full> {
        self.raw(if v { b"true" } else { b"false" })
    }
    /// `null`.
    pub fn null(&mut self) -> Result<&mut Self, Full> {
        self.raw(b"null")
    }
    /// `"key": "value"`.
    pub fn field_str(&mut self, k: &str, v: &str) -> Result<&mut Self, Full> {
        self.key(k)?.str(v)
    }
    /// `"key": n`.
    pub fn field_u64(&mut self, k: &str, v: u64) -> Result<&mut Self, Full> {
        self.key(k)?.u64(v)
    }
}

/// Formats `v` in decimal into `buf`, returning the digits.
pub fn fmt_u64(mut v: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    &buf[i..]
}

/// Writes `s` as a quoted JSON string.
///
/// # Errors
/// [`Full`] if the sink is full.
pub fn escape_into<S: Sink + ?Sized>(sink: &mut S, s: &str) -> Result<(), Full> {
    sink.put(b"\"")?;
    let bytes = s.as_bytes();
    let mut run = 0;
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        // Tokens, ids and SDP lines are mostly plain: skip them by words.
        let plain = super::swar::plain_run(bytes, i);
        if plain > 0 {
            i += plain;
            continue;
        }
        i += 1;
        let esc: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0..=0x1f => b"",
            _ => continue,
        };
        sink.put(&bytes[run..i - 1])?;
        if esc.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            sink.put(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[(b >> 4) as usize],
                HEX[(b & 15) as usize],
            ])?;
        } else {
            sink.put(esc)?;
        }
        run = i;
    }
    sink.put(&bytes[run..])?;
    sink.put(b"\"")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::parse_object;

    #[test]
    fn writes_nested_and_escapes() {
        let mut buf = [0u8; 256];
        let mut sink = SliceSink::new(&mut buf);
        let mut w = Writer::new(&mut sink);
        w.begin_obj().unwrap();
        w.field_str("a", "x\"y\n\u{1}").unwrap();
        w.key("n").unwrap().i64(-42).unwrap();
        w.key("arr").unwrap().begin_arr().unwrap();
        w.u64(1)
            .unwrap()
            .u64(0)
            .unwrap()
            .bool(true)
            .unwrap()
            .null()
            .unwrap();
        w.begin_obj().unwrap().end_obj().unwrap();
        w.end_arr().unwrap();
        w.key("e").unwrap().begin_arr().unwrap().end_arr().unwrap();
        w.end_obj().unwrap();
        let out = core::str::from_utf8(sink.as_bytes()).unwrap();
        assert_eq!(
            out,
            r#"{"a":"x\"y\n\u0001","n":-42,"arr":[1,0,true,null,{}],"e":[]}"#
        );
        let o = parse_object(out).unwrap();
        assert!(o.req_str("a").unwrap().eq_str("x\"y\n\u{1}"));
    }

    #[test]
    fn full_sink_is_an_error() {
        let mut buf = [0u8; 4];
        let mut sink = SliceSink::new(&mut buf);
        assert_eq!(Writer::new(&mut sink).str("hello").err(), Some(Full));
    }

    #[test]
    fn relays_values_verbatim() {
        let src = parse_object(r#"{"c":{"candidate":"x","i":0},"s":"a\u00e9"}"#).unwrap();
        let mut out = heapless::Vec::<u8, 128>::new();
        let mut w = Writer::new(&mut out);
        w.begin_obj().unwrap();
        w.key("c").unwrap().value(src.get("c").unwrap()).unwrap();
        w.key("s").unwrap().value(src.get("s").unwrap()).unwrap();
        w.end_obj().unwrap();
        assert_eq!(
            core::str::from_utf8(&out).unwrap(),
            r#"{"c":{"candidate":"x","i":0},"s":"a\u00e9"}"#
        );
    }

    #[test]
    fn escapes_every_special_byte_at_every_offset() {
        // The word-at-a-time skip must find a quote, backslash, control
        // character or newline wherever it sits, and keep multi-byte text.
        let pad = "abcdefghijklmnopqrstuvwxyz";
        for k in 0..20 {
            for special in ["\"", "\\", "\n", "\u{1}", "é", "\r\n"] {
                let mut text: heapless::String<64> = heapless::String::new();
                text.push_str(&pad[..k]).unwrap();
                text.push_str(special).unwrap();
                text.push_str(&pad[..20 - k]).unwrap();
                let mut buf = [0u8; 128];
                let mut sink = SliceSink::new(&mut buf);
                escape_into(&mut sink, &text).unwrap();
                let out = core::str::from_utf8(sink.as_bytes()).unwrap();
                let mut want: heapless::String<128> = heapless::String::new();
                want.push('"').unwrap();
                for c in text.chars() {
                    match c {
                        '"' => want.push_str("\\\"").unwrap(),
                        '\\' => want.push_str("\\\\").unwrap(),
                        '\n' => want.push_str("\\n").unwrap(),
                        '\r' => want.push_str("\\r").unwrap(),
                        '\u{1}' => want.push_str("\\u0001").unwrap(),
                        c => want.push(c).unwrap(),
                    }
                }
                want.push('"').unwrap();
                assert_eq!(out, want.as_str(), "{text:?}");
            }
        }
    }
}
