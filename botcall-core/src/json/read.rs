//! A strict, allocation-free JSON reader.
//!
//! [`parse`] validates a whole document once (grammar, UTF-8 escapes, depth,
//! duplicate keys) and hands back a [`Value`] that borrows the input. Walking a
//! validated value afterwards never fails on syntax, so accessors only report
//! *type* problems (`WrongType`, `NotInteger`, `Missing`).
//!
//! Strictness is deliberate: JWT headers and claims are security input, and two
//! parsers that disagree on `{"alg":"ES256","alg":"none"}` are an attack.

use super::JsonError;
use super::swar::{has_byte, has_less, word};

/// Deepest nesting accepted (objects and arrays both count).
pub const MAX_DEPTH: usize = 16;
/// Most members one object may have; bounds the duplicate-key check (O(n²)).
pub const MAX_MEMBERS: usize = 64;
/// Where the first keys of an object being validated start, kept for the
/// duplicate check (messages have fewer members than this).
const KEYS_KEPT: usize = 8;

/// A validated JSON value borrowing its input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Value<'a> {
    /// `null`
    Null,
    /// `true` / `false`
    Bool(bool),
    /// A number, kept as its source text.
    Num(Number<'a>),
    /// A string, kept escaped.
    Str(JsonStr<'a>),
    /// An array.
    Arr(Array<'a>),
    /// An object.
    Obj(Object<'a>),
}

/// A JSON number's source text (validated grammar).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Number<'a>(&'a str);

/// A JSON string's raw content between the quotes, escapes not yet decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JsonStr<'a> {
    raw: &'a str,
    escaped: bool,
}

/// A validated array (source text including brackets).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Array<'a>(&'a str);

/// A validated object (source text including braces); keys are unique.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Object<'a>(&'a str);

/// Validates `input` as one JSON document (whitespace around it allowed).
///
/// # Errors
/// Any grammar error, a lone surrogate escape, a raw control character in a
/// string, nesting deeper than [`MAX_DEPTH`], more than [`MAX_MEMBERS`] members
/// in an object, a duplicate key (compared after unescaping), trailing data.
pub fn parse(input: &str) -> Result<Value<'_>, JsonError> {
    parse_with(input, Limits::WIRE)
}

/// How [`parse_with`] bounds a document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most members one object may have.
    pub max_members: usize,
    /// Refuse a key repeated in one object (an O(n²) check per object).
    /// Off, the caller checks the keys it reads (e.g. into a map, in O(n))
    /// and [`Object::get`] sees the first of equal keys.
    pub unique_keys: bool,
}

impl Limits {
    /// What [`parse`] applies: wire input, assumed hostile.
    pub const WIRE: Limits = Limits {
        max_members: MAX_MEMBERS,
        unique_keys: true,
    };
}

/// As [`parse`], with other [`Limits`]: an operator's file (a keys file
/// listing thousands of agents), not wire input.
///
/// # Errors
/// As [`parse`], with `limits` in place of [`MAX_MEMBERS`] and the
/// duplicate-key check.
pub fn parse_with(input: &str, limits: Limits) -> Result<Value<'_>, JsonError> {
    let mut c = Cursor::new(input);
    c.limits = limits;
    c.ws();
    let v = c.value(0)?;
    c.ws();
    if c.pos != c.s.len() {
        return Err(JsonError::TrailingData);
    }
    Ok(v)
}

/// Parses `input` and requires the top-level value to be an object.
pub fn parse_object(input: &str) -> Result<Object<'_>, JsonError> {
    match parse(input)? {
        Value::Obj(o) => Ok(o),
        _ => Err(JsonError::WrongType("(document)")),
    }
}

impl<'a> Number<'a> {
    /// The number's source text.
    pub fn as_str(&self) -> &'a str {
        self.0
    }
    /// The value as an `i64` if it is written as an integer (no fraction, no
    /// exponent) and fits.
    pub fn as_i64(&self) -> Option<i64> {
        if self.0.bytes().any(|b| matches!(b, b'.' | b'e' | b'E')) {
            return None;
        }
        self.0.parse().ok()
    }
    /// The value as a `u64` under the same rules as [`Number::as_i64`].
    pub fn as_u64(&self) -> Option<u64> {
        if self.0.starts_with('-') {
            return None;
        }
        self.as_i64().map(|v| v as u64)
    }
}

impl<'a> JsonStr<'a> {
    /// Wraps already-plain text (no characters that need escaping).
    /// Returns `None` if `s` holds a quote, a backslash or a control character.
    pub fn from_plain(s: &'a str) -> Option<Self> {
        if s.bytes().any(|b| b == b'"' || b == b'\\' || b < 0x20) {
            None
        } else {
            Some(JsonStr {
                raw: s,
                escaped: false,
            })
        }
    }
    /// The escaped source text between the quotes. Safe to copy verbatim into
    /// another JSON string.
    pub fn raw(&self) -> &'a str {
        self.raw
    }
    /// The text if it holds no escapes (the common case: no copy needed).
    pub fn as_plain(&self) -> Option<&'a str> {
        if self.escaped { None } else { Some(self.raw) }
    }
    /// Whether the source used escape sequences.
    pub fn has_escapes(&self) -> bool {
        self.escaped
    }
    /// Decoded characters.
    pub fn chars(&self) -> Chars<'a> {
        Chars {
            s: self.raw.as_bytes(),
            pos: 0,
        }
    }
    /// Decoded length in UTF-8 bytes.
    pub fn decoded_len(&self) -> usize {
        if self.escaped {
            self.chars().map(char::len_utf8).sum()
        } else {
            self.raw.len()
        }
    }
    /// Whether the decoded text equals `s`.
    pub fn eq_str(&self, s: &str) -> bool {
        if !self.escaped {
            return self.raw == s;
        }
        self.chars().eq(s.chars())
    }
    /// Whether two strings decode to the same text.
    pub fn eq_decoded(&self, other: &JsonStr<'_>) -> bool {
        if !self.escaped && !other.escaped {
            return self.raw == other.raw;
        }
        self.chars().eq(other.chars())
    }
    /// Decodes into `buf`, returning the text.
    ///
    /// # Errors
    /// [`JsonError::TooLong`] if `buf` is too small.
    pub fn decode_into<'b>(&self, buf: &'b mut [u8]) -> Result<&'b str, JsonError> {
        let mut n = 0;
        for ch in self.chars() {
            let l = ch.len_utf8();
            let dst = buf.get_mut(n..n + l).ok_or(JsonError::TooLong)?;
            ch.encode_utf8(dst);
            n += l;
        }
        // Every byte written came from `char::encode_utf8`.
        core::str::from_utf8(&buf[..n]).map_err(|_| JsonError::BadEscape)
    }
    /// Decodes into a fixed-capacity string.
    ///
    /// # Errors
    /// [`JsonError::TooLong`] if the text does not fit in `N` bytes.
    pub fn to_heapless<const N: usize>(&self) -> Result<heapless::String<N>, JsonError> {
        let mut out = heapless::String::new();
        for ch in self.chars() {
            out.push(ch).map_err(|_| JsonError::TooLong)?;
        }
        Ok(out)
    }
    /// Decodes into an owned `String`.
    #[cfg(feature = "alloc")]
    #[allow(clippy::inherent_to_string)] // no `Display`: raw and decoded text differ
    pub fn to_string(&self) -> alloc::string::String {
        match self.as_plain() {
            Some(s) => s.into(),
            None => self.chars().collect(),
        }
    }
}

/// Iterator over the decoded characters of a validated [`JsonStr`].
#[derive(Debug, Clone)]
pub struct Chars<'a> {
    s: &'a [u8],
    pos: usize,
}

impl Chars<'_> {
    /// Skips ahead to the next escape (`\\`), or to the end: the characters
    /// skipped are plain text. Used to pass quickly over text that does not
    /// matter up to the next line end (always an escape inside JSON).
    pub(crate) fn skip_to_escape(&mut self) {
        while let Some(x) = word(self.s, self.pos) {
            if has_byte(x, b'\\') {
                break;
            }
            self.pos += 8;
        }
        while let Some(&b) = self.s.get(self.pos) {
            if b == b'\\' {
                return;
            }
            self.pos += 1;
        }
    }
}

impl Iterator for Chars<'_> {
    type Item = char;
    fn next(&mut self) -> Option<char> {
        let b = *self.s.get(self.pos)?;
        if b.is_ascii() && b != b'\\' {
            // Most JSON text (and all of an SDP) is ASCII.
            self.pos += 1;
            return Some(char::from(b));
        }
        if b != b'\\' {
            // Plain UTF-8: decode only the char starting here. (Re-validating
            // the whole remainder per char made long strings quadratic.)
            let end = self.pos + utf8_width(b);
            let ch = core::str::from_utf8(self.s.get(self.pos..end)?)
                .ok()?
                .chars()
                .next()?;
            self.pos = end;
            return Some(ch);
        }
        let e = *self.s.get(self.pos + 1)?;
        self.pos += 2;
        Some(match e {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                let hi = hex4(self.s.get(self.pos..self.pos + 4)?)?;
                self.pos += 4;
                if (0xD800..0xDC00).contains(&hi) {
                    // Validated: a `\uDC00`-`\uDFFF` escape follows.
                    let lo = hex4(self.s.get(self.pos + 2..self.pos + 6)?)?;
                    self.pos += 6;
                    char::from_u32(0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00))?
                } else {
                    char::from_u32(hi)?
                }
            }
            _ => return None,
        })
    }
}

/// Length of the UTF-8 sequence that `lead` starts (`lead` is a char boundary
/// of valid UTF-8, so it is never a continuation byte).
fn utf8_width(lead: u8) -> usize {
    match lead {
        0x00..=0x7F => 1,
        0xC0..=0xDF => 2,
        0xE0..=0xEF => 3,
        _ => 4,
    }
}

fn hex4(b: &[u8]) -> Option<u32> {
    let mut v = 0u32;
    for &c in b.get(..4)? {
        v = v * 16 + (c as char).to_digit(16)?;
    }
    Some(v)
}

impl<'a> Array<'a> {
    /// The array's source text, brackets included.
    pub fn raw(&self) -> &'a str {
        self.0
    }
    /// Iterates the elements.
    pub fn iter(&self) -> Elements<'a> {
        let mut c = Cursor::new(self.0);
        c.pos = 1;
        Elements { c, first: true }
    }
    /// Number of elements.
    pub fn len(&self) -> usize {
        self.iter().count()
    }
    /// Whether the array is empty.
    pub fn is_empty(&self) -> bool {
        self.iter().next().is_none()
    }
}

/// Iterator over the elements of a validated [`Array`].
#[derive(Debug, Clone)]
pub struct Elements<'a> {
    c: Cursor<'a>,
    first: bool,
}

impl<'a> Iterator for Elements<'a> {
    type Item = Value<'a>;
    fn next(&mut self) -> Option<Value<'a>> {
        self.c.ws();
        if self.c.peek()? == b']' {
            return None;
        }
        if !self.first {
            self.c.pos += 1; // ','
            self.c.ws();
        }
        self.first = false;
        self.c.trusted_value()
    }
}

impl<'a> Object<'a> {
    /// The object's source text, braces included.
    pub fn raw(&self) -> &'a str {
        self.0
    }
    /// Iterates `(key, value)` pairs in source order.
    pub fn iter(&self) -> Members<'a> {
        let mut c = Cursor::new(self.0);
        c.pos = 1;
        Members { c, first: true }
    }
    /// The value of `key`, if present (keys are unique after validation).
    /// The values of other keys are stepped over, not read.
    pub fn get(&self, key: &str) -> Option<Value<'a>> {
        let mut m = self.iter();
        loop {
            if m.next_key()?.eq_str(key) {
                return m.c.trusted_value();
            }
            m.c.skip_trusted_value()?;
        }
    }
    /// A string member; `Ok(None)` if absent.
    ///
    /// # Errors
    /// [`JsonError::WrongType`] if present but not a string.
    pub fn opt_str(&self, key: &'static str) -> Result<Option<JsonStr<'a>>, JsonError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Str(s)) => Ok(Some(s)),
            Some(_) => Err(JsonError::WrongType(key)),
        }
    }
    /// A required string member.
    ///
    /// # Errors
    /// [`JsonError::Missing`] or [`JsonError::WrongType`].
    pub fn req_str(&self, key: &'static str) -> Result<JsonStr<'a>, JsonError> {
        self.opt_str(key)?.ok_or(JsonError::Missing(key))
    }
    /// An integer member; `Ok(None)` if absent.
    ///
    /// # Errors
    /// [`JsonError::WrongType`] for a non-number, [`JsonError::NotInteger`] for
    /// a fraction, an exponent or an out-of-range value.
    pub fn opt_i64(&self, key: &'static str) -> Result<Option<i64>, JsonError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Num(n)) => n.as_i64().map(Some).ok_or(JsonError::NotInteger(key)),
            Some(_) => Err(JsonError::WrongType(key)),
        }
    }
    /// A non-negative integer member; `Ok(None)` if absent.
    ///
    /// # Errors
    /// As [`Object::opt_i64`]; negative values are `NotInteger`.
    pub fn opt_u64(&self, key: &'static str) -> Result<Option<u64>, JsonError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Num(n)) => n.as_u64().map(Some).ok_or(JsonError::NotInteger(key)),
            Some(_) => Err(JsonError::WrongType(key)),
        }
    }
    /// A boolean member; `Ok(None)` if absent.
    ///
    /// # Errors
    /// [`JsonError::WrongType`] if present but not a boolean.
    pub fn opt_bool(&self, key: &'static str) -> Result<Option<bool>, JsonError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(b)),
            Some(_) => Err(JsonError::WrongType(key)),
        }
    }
    /// An object member; `Ok(None)` if absent.
    ///
    /// # Errors
    /// [`JsonError::WrongType`] if present but not an object.
    pub fn opt_obj(&self, key: &'static str) -> Result<Option<Object<'a>>, JsonError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Obj(o)) => Ok(Some(o)),
            Some(_) => Err(JsonError::WrongType(key)),
        }
    }
    /// An array member; `Ok(None)` if absent.
    ///
    /// # Errors
    /// [`JsonError::WrongType`] if present but not an array.
    pub fn opt_arr(&self, key: &'static str) -> Result<Option<Array<'a>>, JsonError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Arr(a)) => Ok(Some(a)),
            Some(_) => Err(JsonError::WrongType(key)),
        }
    }
}

/// Iterator over the members of a validated [`Object`].
#[derive(Debug, Clone)]
pub struct Members<'a> {
    c: Cursor<'a>,
    first: bool,
}

impl<'a> Members<'a> {
    /// The next key, leaving the cursor at its value.
    fn next_key(&mut self) -> Option<JsonStr<'a>> {
        self.c.ws();
        if self.c.peek()? == b'}' {
            return None;
        }
        if !self.first {
            self.c.pos += 1; // ','
            self.c.ws();
        }
        self.first = false;
        let k = match self.c.trusted_value()? {
            Value::Str(k) => k,
            _ => return None,
        };
        self.c.ws();
        self.c.pos += 1; // ':'
        self.c.ws();
        Some(k)
    }
}

impl<'a> Iterator for Members<'a> {
    type Item = (JsonStr<'a>, Value<'a>);
    fn next(&mut self) -> Option<Self::Item> {
        let k = self.next_key()?;
        let v = self.c.trusted_value()?;
        Some((k, v))
    }
}

/// Byte cursor. `value` validates; `trusted_value` re-reads validated text.
#[derive(Debug, Clone)]
struct Cursor<'a> {
    src: &'a str,
    s: &'a [u8],
    pos: usize,
    /// Applied by the validating reads only.
    limits: Limits,
}

impl<'a> Cursor<'a> {
    fn new(src: &'a str) -> Self {
        Cursor {
            src,
            s: src.as_bytes(),
            pos: 0,
            limits: Limits::WIRE,
        }
    }
    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }
    /// Skips string bytes that need no look (no quote, backslash or control
    /// character), 8 at a time: SDPs are kilobytes of plain text, and a
    /// validated object is re-read once per member lookup.
    fn skip_plain(&mut self) {
        while let Some(x) = word(self.s, self.pos) {
            if has_byte(x, b'"') || has_byte(x, b'\\') || has_less(x, 0x20) {
                return;
            }
            self.pos += 8;
        }
    }
    /// Moves from just after the opening quote of an already-validated
    /// string to its closing quote; returns whether it holds escapes. Only
    /// quotes stop the 8-byte steps (an SDP has an escaped line end every few
    /// dozen bytes, and no quote): a quote after an odd run of backslashes is
    /// escaped, and the scan goes on past it.
    fn skip_trusted_string(&mut self) -> bool {
        self.skip_string::<true>()
    }
    /// [`Cursor::skip_trusted_string`]; `TRACK`: whether to look for escapes
    /// at all (a value stepped over needs no answer).
    fn skip_string<const TRACK: bool>(&mut self) -> bool {
        let from = self.pos;
        let mut escaped = false;
        loop {
            while let Some(x) = word(self.s, self.pos) {
                if has_byte(x, b'"') {
                    break;
                }
                if TRACK {
                    escaped |= has_byte(x, b'\\');
                }
                self.pos += 8;
            }
            // Bytewise up to the quote in this word (or the end of the text).
            loop {
                match self.peek() {
                    None | Some(b'"') => break,
                    Some(b'\\') => escaped = true,
                    Some(_) => {}
                }
                self.pos += 1;
            }
            if self.pos >= self.s.len() {
                return escaped;
            }
            let mut run = 0;
            while self.pos - run > from && self.s.get(self.pos - run - 1) == Some(&b'\\') {
                run += 1;
            }
            if run % 2 == 0 {
                return escaped;
            }
            self.pos += 1;
        }
    }
    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.pos += 1;
        }
    }
    fn err(&self) -> JsonError {
        if self.pos >= self.s.len() {
            JsonError::Eof
        } else {
            JsonError::Syntax(self.pos)
        }
    }
    fn eat(&mut self, b: u8) -> Result<(), JsonError> {
        if self.peek() == Some(b) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.err())
        }
    }
    fn lit(&mut self, word: &str) -> Result<(), JsonError> {
        let end = self.pos + word.len();
        if self.s.get(self.pos..end) == Some(word.as_bytes()) {
            self.pos = end;
            Ok(())
        } else {
            Err(self.err())
        }
    }
    fn slice(&self, from: usize, to: usize) -> &'a str {
        // Both ends sit on ASCII delimiters we just matched, so they are char
        // boundaries; `get` keeps this panic-free regardless.
        self.src.get(from..to).unwrap_or("")
    }

    /// Validates one value starting at the cursor.
    fn value(&mut self, depth: usize) -> Result<Value<'a>, JsonError> {
        match self.peek() {
            Some(b'{') => self.object(depth + 1),
            Some(b'[') => self.array(depth + 1),
            Some(b'"') => self.string().map(Value::Str),
            Some(b't') => self.lit("true").map(|_| Value::Bool(true)),
            Some(b'f') => self.lit("false").map(|_| Value::Bool(false)),
            Some(b'n') => self.lit("null").map(|_| Value::Null),
            Some(b'-' | b'0'..=b'9') => self.number().map(Value::Num),
            _ => Err(self.err()),
        }
    }

    fn object(&mut self, depth: usize) -> Result<Value<'a>, JsonError> {
        if depth > MAX_DEPTH {
            return Err(JsonError::TooDeep);
        }
        let start = self.pos;
        self.eat(b'{')?;
        self.ws();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(Value::Obj(Object(self.slice(start, self.pos))));
        }
        let mut count = 0;
        let mut keys_at = [0usize; KEYS_KEPT];
        loop {
            self.ws();
            if self.peek() != Some(b'"') {
                return Err(self.err());
            }
            let key_at = self.pos;
            let key = self.string()?;
            count += 1;
            if count > self.limits.max_members {
                return Err(JsonError::TooManyMembers);
            }
            // Compare with every earlier key of this object (already validated):
            // the first few are remembered, so no earlier value (a kilobytes
            // SDP) is read again; past those, the earlier members are re-read.
            if !self.limits.unique_keys {
                // A file's limits: repeated keys are left to the caller.
            } else if count <= KEYS_KEPT {
                for &at in &keys_at[..count - 1] {
                    let mut c = self.clone();
                    c.pos = at;
                    if let Some(Value::Str(k)) = c.trusted_value()
                        && k.eq_decoded(&key)
                    {
                        return Err(JsonError::DuplicateKey);
                    }
                }
                keys_at[count - 1] = key_at;
            } else {
                let mut earlier = Cursor::new(self.slice(start, key_at));
                earlier.pos = 1;
                earlier.limits = self.limits;
                let mut members = Members {
                    c: earlier,
                    first: true,
                };
                while let Some((k, _)) = members.next_partial() {
                    if k.eq_decoded(&key) {
                        return Err(JsonError::DuplicateKey);
                    }
                }
            }
            self.ws();
            self.eat(b':')?;
            self.ws();
            self.value(depth)?;
            self.ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(Value::Obj(Object(self.slice(start, self.pos))));
                }
                _ => return Err(self.err()),
            }
        }
    }

    fn array(&mut self, depth: usize) -> Result<Value<'a>, JsonError> {
        if depth > MAX_DEPTH {
            return Err(JsonError::TooDeep);
        }
        let start = self.pos;
        self.eat(b'[')?;
        self.ws();
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Ok(Value::Arr(Array(self.slice(start, self.pos))));
        }
        loop {
            self.ws();
            self.value(depth)?;
            self.ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    return Ok(Value::Arr(Array(self.slice(start, self.pos))));
                }
                _ => return Err(self.err()),
            }
        }
    }

    fn string(&mut self) -> Result<JsonStr<'a>, JsonError> {
        self.eat(b'"')?;
        let start = self.pos;
        let mut escaped = false;
        loop {
            self.skip_plain();
            let b = self.peek().ok_or(JsonError::Eof)?;
            match b {
                b'"' => {
                    let raw = self.slice(start, self.pos);
                    self.pos += 1;
                    return Ok(JsonStr { raw, escaped });
                }
                b'\\' => {
                    escaped = true;
                    self.pos += 1;
                    match self.peek().ok_or(JsonError::Eof)? {
                        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => self.pos += 1,
                        b'u' => {
                            self.pos += 1;
                            let hi = self.hex_escape()?;
                            if (0xDC00..0xE000).contains(&hi) {
                                return Err(JsonError::BadEscape);
                            }
                            if (0xD800..0xDC00).contains(&hi) {
                                if self.s.get(self.pos..self.pos + 2) != Some(b"\\u") {
                                    return Err(JsonError::BadEscape);
                                }
                                self.pos += 2;
                                let lo = self.hex_escape()?;
                                if !(0xDC00..0xE000).contains(&lo) {
                                    return Err(JsonError::BadEscape);
                                }
                            }
                        }
                        _ => return Err(JsonError::BadEscape),
                    }
                }
                0..=0x1f => return Err(JsonError::ControlChar),
                _ => self.pos += 1,
            }
        }
    }

    fn hex_escape(&mut self) -> Result<u32, JsonError> {
        let digits = self.s.get(self.pos..self.pos + 4).ok_or(JsonError::Eof)?;
        let v = hex4(digits).ok_or(JsonError::BadEscape)?;
        self.pos += 4;
        Ok(v)
    }

    fn digits(&mut self) -> usize {
        let from = self.pos;
        while let Some(b'0'..=b'9') = self.peek() {
            self.pos += 1;
        }
        self.pos - from
    }

    fn number(&mut self) -> Result<Number<'a>, JsonError> {
        let start = self.pos;
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.peek() {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => {
                self.digits();
            }
            _ => return Err(self.err()),
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            if self.digits() == 0 {
                return Err(self.err());
            }
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.pos += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            if self.digits() == 0 {
                return Err(self.err());
            }
        }
        Ok(Number(self.slice(start, self.pos)))
    }

    /// Steps over one value of validated text (a string without looking
    /// for escapes).
    fn skip_trusted_value(&mut self) -> Option<()> {
        if self.peek()? == b'"' {
            self.pos += 1;
            self.skip_string::<false>();
            self.peek()?;
            self.pos += 1;
            return Some(());
        }
        self.trusted_value().map(|_| ())
    }

    /// Reads one value from text that [`Cursor::value`] already accepted.
    fn trusted_value(&mut self) -> Option<Value<'a>> {
        let start = self.pos;
        match self.peek()? {
            b'"' => {
                self.pos += 1;
                let from = self.pos;
                let escaped = self.skip_trusted_string();
                self.peek()?;
                let raw = self.slice(from, self.pos);
                self.pos += 1;
                Some(Value::Str(JsonStr { raw, escaped }))
            }
            b'{' | b'[' => {
                let mut depth = 0usize;
                loop {
                    match self.peek()? {
                        b'{' | b'[' => depth += 1,
                        b'}' | b']' => {
                            depth -= 1;
                            if depth == 0 {
                                self.pos += 1;
                                break;
                            }
                        }
                        b'"' => {
                            self.pos += 1;
                            self.skip_trusted_string();
                            self.peek()?;
                        }
                        _ => {}
                    }
                    self.pos += 1;
                }
                let raw = self.slice(start, self.pos);
                Some(if raw.starts_with('{') {
                    Value::Obj(Object(raw))
                } else {
                    Value::Arr(Array(raw))
                })
            }
            b't' => {
                self.pos += 4;
                Some(Value::Bool(true))
            }
            b'f' => {
                self.pos += 5;
                Some(Value::Bool(false))
            }
            b'n' => {
                self.pos += 4;
                Some(Value::Null)
            }
            _ => {
                while let Some(b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9') = self.peek() {
                    self.pos += 1;
                }
                Some(Value::Num(Number(self.slice(start, self.pos))))
            }
        }
    }
}

impl<'a> Members<'a> {
    /// Like `next`, over the validated prefix of an object still being parsed
    /// (no closing brace yet): stops at the end of the text.
    fn next_partial(&mut self) -> Option<(JsonStr<'a>, Value<'a>)> {
        self.c.ws();
        self.c.peek()?;
        if !self.first {
            if self.c.peek()? != b',' {
                return None;
            }
            self.c.pos += 1;
            self.c.ws();
        }
        self.first = false;
        self.c.peek()?;
        let k = match self.c.trusted_value()? {
            Value::Str(k) => k,
            _ => return None,
        };
        self.c.ws();
        self.c.pos += 1;
        self.c.ws();
        let v = self.c.trusted_value()?;
        Some((k, v))
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::format;
    use std::string::String;

    #[test]
    fn accepts_plain_documents() {
        let v =
            parse(r#" {"a":1,"b":[true,false,null,"x\n",-0.5e3],"c":{"d":"\u00e9\ud83d\ude00"}} "#)
                .unwrap();
        let Value::Obj(o) = v else { panic!() };
        assert_eq!(o.opt_i64("a"), Ok(Some(1)));
        let arr = o.opt_arr("b").unwrap().unwrap();
        assert_eq!(arr.len(), 5);
        let c = o.opt_obj("c").unwrap().unwrap();
        let d = c.req_str("d").unwrap();
        assert!(d.eq_str("é😀"));
        let mut buf = [0u8; 16];
        assert_eq!(d.decode_into(&mut buf), Ok("é😀"));
        assert_eq!(o.iter().count(), 3);
    }

    #[test]
    fn rejects_duplicates_even_when_escaped() {
        assert_eq!(
            parse(r#"{"alg":"ES256","alg":"none"}"#),
            Err(JsonError::DuplicateKey)
        );
        assert_eq!(
            parse(r#"{"alg":1,"\u0061lg":2}"#),
            Err(JsonError::DuplicateKey)
        );
        assert!(parse(r#"{"a":{"x":1},"b":{"x":1}}"#).is_ok());
    }

    #[test]
    fn rejects_bad_grammar() {
        for bad in [
            "",
            "{",
            "}",
            "{\"a\"}",
            "{\"a\":}",
            "{\"a\":1,}",
            "[1,]",
            "01",
            "1.",
            ".5",
            "1e",
            "-",
            "\"\\x\"",
            "\"\\ud800\"",
            "\"\\udc00\"",
            "\"\\ud800\\u0041\"",
            "tru",
            "nul",
            "\"a\tb\"",
            "{\"a\":1}x",
            "[1 2]",
            "{'a':1}",
            "{\"a\" 1}",
            "\"abc",
        ] {
            assert!(parse(bad).is_err(), "accepted {bad:?}");
        }
    }

    #[test]
    fn bounds_depth_and_members() {
        let mut deep = heapless::String::<64>::new();
        for _ in 0..MAX_DEPTH {
            deep.push('[').unwrap();
        }
        for _ in 0..MAX_DEPTH {
            deep.push(']').unwrap();
        }
        assert!(parse(&deep).is_ok());
        let mut deeper = heapless::String::<64>::new();
        for _ in 0..=MAX_DEPTH {
            deeper.push('[').unwrap();
        }
        for _ in 0..=MAX_DEPTH {
            deeper.push(']').unwrap();
        }
        assert_eq!(parse(&deeper), Err(JsonError::TooDeep));

        let mut many = heapless::String::<2048>::new();
        many.push('{').unwrap();
        for i in 0..=MAX_MEMBERS {
            if i > 0 {
                many.push(',').unwrap();
            }
            core::fmt::Write::write_fmt(&mut many, format_args!("\"k{i}\":0")).unwrap();
        }
        many.push('}').unwrap();
        assert_eq!(parse(&many), Err(JsonError::TooManyMembers));
        // A file's limits: more members, repeated keys left to the caller.
        let file = Limits {
            max_members: MAX_MEMBERS + 1,
            unique_keys: false,
        };
        let Ok(Value::Obj(o)) = parse_with(&many, file) else {
            panic!("refused under file limits");
        };
        assert_eq!(o.iter().count(), MAX_MEMBERS + 1);
        let twice = r#"{"a":1,"a":2}"#;
        assert_eq!(parse(twice), Err(JsonError::DuplicateKey));
        let Ok(Value::Obj(o)) = parse_with(twice, file) else {
            panic!("refused under file limits");
        };
        assert_eq!(o.iter().count(), 2);
        assert_eq!(
            parse_with(r#"{"a":1,}"#, file).map(|_| ()),
            Err(JsonError::Syntax(7))
        );
        let one = Limits {
            max_members: 1,
            unique_keys: true,
        };
        assert_eq!(
            parse_with(r#"{"a":1,"b":2}"#, one),
            Err(JsonError::TooManyMembers)
        );
    }

    #[test]
    fn integers_are_strict() {
        let o =
            parse_object(r#"{"a":1.0,"b":1e3,"c":-5,"d":"5","e":99999999999999999999}"#).unwrap();
        assert_eq!(o.opt_i64("a"), Err(JsonError::NotInteger("a")));
        assert_eq!(o.opt_i64("b"), Err(JsonError::NotInteger("b")));
        assert_eq!(o.opt_i64("c"), Ok(Some(-5)));
        assert_eq!(o.opt_u64("c"), Err(JsonError::NotInteger("c")));
        assert_eq!(o.opt_i64("d"), Err(JsonError::WrongType("d")));
        assert_eq!(o.opt_i64("e"), Err(JsonError::NotInteger("e")));
        assert_eq!(o.opt_i64("zz"), Ok(None));
    }

    #[test]
    fn raw_values_round_trip() {
        let o = parse_object(r#"{"c":{"candidate":"a b","sdpMid":"0"},"s":"x\"y"}"#).unwrap();
        assert_eq!(
            o.opt_obj("c").unwrap().unwrap().raw(),
            r#"{"candidate":"a b","sdpMid":"0"}"#
        );
        assert_eq!(o.req_str("s").unwrap().raw(), r#"x\"y"#);
    }

    #[test]
    fn word_at_a_time_skipping_finds_every_special_byte() {
        // A quote, backslash escape, control character or multi-byte char at
        // every offset around the 8-byte steps, in a string and behind it.
        let mut doc: heapless::String<256> = heapless::String::new();
        for k in 0..24 {
            for (special, ok) in [("\\\"", true), ("\\n", true), ("\u{1}", false), ("é", true)] {
                doc.clear();
                let pad = "abcdefghijklmnopqrstuvwxyz";
                let w = |d: &mut heapless::String<256>, t: &str| d.push_str(t).unwrap();
                w(&mut doc, "{\"s\":\"");
                w(&mut doc, &pad[..k]);
                w(&mut doc, special);
                w(&mut doc, &pad[..24 - k]);
                w(&mut doc, "\",\"t\":[\"");
                w(&mut doc, &pad[..k]);
                w(&mut doc, "\"],\"u\":1}");
                let parsed = parse_object(&doc);
                if !ok {
                    assert_eq!(parsed, Err(JsonError::ControlChar), "{doc:?}");
                    continue;
                }
                let o = parsed.unwrap();
                let s = o.req_str("s").unwrap();
                assert_eq!(s.raw().len(), 24 + special.len(), "{doc:?}");
                assert!(s.raw().ends_with(&pad[..24 - k]));
                assert_eq!(o.opt_arr("t").unwrap().unwrap().len(), 1);
                assert_eq!(o.opt_i64("u"), Ok(Some(1)));
            }
        }
        // An unterminated long string is still an error at the end.
        assert_eq!(parse(r#""abcdefghijklmnopqrstuvwxyz"#), Err(JsonError::Eof));
        assert_eq!(
            parse("\"abcdefghijklmnop\u{1f}qrstuvwxyz\""),
            Err(JsonError::ControlChar)
        );
    }

    #[test]
    fn duplicates_found_past_the_remembered_keys() {
        // More members than KEYS_KEPT: the late duplicate of an early key, and
        // of a late one, are both found.
        let mut o = String::from("{");
        for i in 0..KEYS_KEPT + 3 {
            o += &format!("\"k{i}\":\"v\\\"{i}\",");
        }
        let early = format!("{o}\"k1\":0}}");
        let late = format!("{o}\"k{}\":0}}", KEYS_KEPT + 1);
        let fine = format!("{o}\"z\":0}}");
        assert_eq!(parse(&early), Err(JsonError::DuplicateKey));
        assert_eq!(parse(&late), Err(JsonError::DuplicateKey));
        assert!(parse(&fine).is_ok());
    }

    #[test]
    fn stepping_over_strings_agrees_with_reading_them() {
        // Escaped quotes and backslash runs at every offset of the 8-byte
        // steps: `get` (which steps over other values) finds what the
        // member iterator (which reads them) finds, and `escaped` is exact.
        let pieces = [r#"\""#, r"\\", r#"\\\""#, r"\n", "x", r"\\\\", r#"\"\""#];
        for pad in 0..17 {
            for a in pieces {
                for b in pieces {
                    let filler = "y".repeat(pad);
                    let text = format!(
                        r#"{{"s":"{filler}{a}{filler}{b}","t":"{filler}","u":[{{"v":"{a}"}}],"w":1}}"#
                    );
                    let Ok(Value::Obj(o)) = parse(&text) else {
                        panic!("{text}")
                    };
                    for (k, v) in o.iter() {
                        let key = k.raw();
                        assert_eq!(o.get(key), Some(v), "{key} in {text}");
                        if let Value::Str(s) = v {
                            assert_eq!(s.has_escapes(), s.raw().contains('\\'), "{text}");
                        }
                    }
                    assert_eq!(o.get("w"), Some(Value::Num(Number("1"))));
                    assert_eq!(o.get("nope"), None);
                }
            }
        }
    }
}
