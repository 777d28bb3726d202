//! RESP2, the Redis wire protocol, sans-IO: a command encoder and an
//! incremental reply decoder over bytes that may arrive in any fragments.
//!
//! Every size the peer announces is checked against [`Limits`] before
//! anything is allocated for it; a reply over a limit is an [`RespError`]
//! (the caller drops the connection), never an allocation of the claim.

use std::fmt;

/// One reply. RESP2's nil bulk string and nil array are both [`Reply::Nil`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Reply {
    /// `+OK`.
    Status(String),
    /// `-ERR ...`: the command failed (the connection is fine).
    Error(String),
    Int(i64),
    Bulk(Vec<u8>),
    Nil,
    Array(Vec<Reply>),
}

impl Reply {
    /// The reply as text (status, bulk, integer); empty for the others.
    pub(crate) fn text(&self) -> String {
        match self {
            Reply::Bulk(b) => String::from_utf8_lossy(b).into_owned(),
            Reply::Status(s) => s.clone(),
            Reply::Int(i) => i.to_string(),
            _ => String::new(),
        }
    }

    /// The reply as an integer (integer, or a numeric string); 0 otherwise.
    pub(crate) fn int(&self) -> i64 {
        match self {
            Reply::Int(i) => *i,
            other => other.text().parse().unwrap_or(0),
        }
    }

    /// The elements of an array (nil: none; any other reply: itself).
    pub(crate) fn into_array(self) -> Vec<Reply> {
        match self {
            Reply::Array(v) => v,
            Reply::Nil => Vec::new(),
            other => vec![other],
        }
    }
}

/// Bounds on what one reply may make us hold.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    /// Longest bulk string, bytes.
    pub(crate) bulk: usize,
    /// Most elements of one array.
    pub(crate) array: usize,
    /// Deepest nesting of arrays.
    pub(crate) depth: usize,
    /// Longest status, error or length line, bytes.
    pub(crate) line: usize,
    /// Most bytes of one whole reply (all its elements).
    pub(crate) reply: usize,
}

impl Limits {
    /// The daemon's: its replies are agent records, id pages and envelopes.
    pub(crate) const DEFAULT: Limits = Limits {
        bulk: 16 << 20,
        array: 1 << 20,
        depth: 8,
        line: 64 << 10,
        reply: 64 << 20,
    };
}

/// A reply the decoder cannot accept: the connection must be dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub(crate) enum RespError {
    /// A type byte RESP2 does not have.
    BadType(u8),
    /// A length or integer that is not a number, or a missing `\r\n`.
    BadFormat,
    /// A bulk string longer than [`Limits::bulk`].
    BulkTooLong,
    /// An array longer than [`Limits::array`].
    ArrayTooLong,
    /// Arrays nested deeper than [`Limits::depth`].
    TooDeep,
    /// A line longer than [`Limits::line`].
    LineTooLong,
    /// A reply larger than [`Limits::reply`].
    ReplyTooLarge,
}

impl fmt::Display for RespError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RespError::BadType(b) => write!(f, "RESP: unknown type byte 0x{b:02x}"),
            RespError::BadFormat => f.write_str("RESP: malformed reply"),
            RespError::BulkTooLong => f.write_str("RESP: bulk string over the limit"),
            RespError::ArrayTooLong => f.write_str("RESP: array over the limit"),
            RespError::TooDeep => f.write_str("RESP: arrays nested too deep"),
            RespError::LineTooLong => f.write_str("RESP: line over the limit"),
            RespError::ReplyTooLarge => f.write_str("RESP: reply over the limit"),
        }
    }
}

impl std::error::Error for RespError {}

/// One argument of a command, as bytes.
pub(crate) trait Arg {
    fn put(&self, out: &mut Vec<u8>);
}

impl Arg for [u8] {
    fn put(&self, out: &mut Vec<u8>) {
        bulk(out, self);
    }
}

impl Arg for str {
    fn put(&self, out: &mut Vec<u8>) {
        bulk(out, self.as_bytes());
    }
}

impl Arg for String {
    fn put(&self, out: &mut Vec<u8>) {
        bulk(out, self.as_bytes());
    }
}

impl<T: Arg + ?Sized> Arg for &T {
    fn put(&self, out: &mut Vec<u8>) {
        (**self).put(out);
    }
}

macro_rules! int_arg {
    ($($t:ty),*) => {$(
        impl Arg for $t {
            fn put(&self, out: &mut Vec<u8>) {
                bulk(out, self.to_string().as_bytes());
            }
        }
    )*};
}
int_arg!(u8, u16, u32, u64, usize, i64);

fn bulk(out: &mut Vec<u8>, b: &[u8]) {
    out.push(b'$');
    out.extend_from_slice(b.len().to_string().as_bytes());
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(b);
    out.extend_from_slice(b"\r\n");
}

/// A command being built: `Cmd::new("SET").arg("k").arg(1)`.
#[derive(Clone, Debug, Default)]
pub(crate) struct Cmd {
    args: Vec<u8>,
    n: usize,
}

impl Cmd {
    pub(crate) fn new(name: &str) -> Self {
        Cmd::default().arg(name)
    }

    pub(crate) fn arg(mut self, a: impl Arg) -> Self {
        a.put(&mut self.args);
        self.n += 1;
        self
    }

    /// Adds the arguments of `other` (a [`Cmd::default`] used as a list).
    pub(crate) fn append(mut self, other: &Cmd) -> Self {
        self.args.extend_from_slice(&other.args);
        self.n += other.n;
        self
    }

    /// Appends the command, as a RESP array of bulk strings, to `out`.
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        out.push(b'*');
        out.extend_from_slice(self.n.to_string().as_bytes());
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&self.args);
    }
}

/// An array being filled: elements still expected, elements so far.
struct Open {
    left: usize,
    items: Vec<Reply>,
}

/// Replies out of a byte stream; feed bytes, take replies.
pub(crate) struct Decoder {
    limits: Limits,
    buf: Vec<u8>,
    /// Bytes of `buf` already consumed into `stack`.
    pos: usize,
    /// The arrays of the reply being decoded, outermost first.
    stack: Vec<Open>,
    /// Bytes of the reply being decoded.
    size: usize,
}

impl Decoder {
    pub(crate) fn new(limits: Limits) -> Self {
        Decoder {
            limits,
            buf: Vec::new(),
            pos: 0,
            stack: Vec::new(),
            size: 0,
        }
    }

    /// Adds bytes read from the connection.
    pub(crate) fn feed(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes held (received, not yet returned as replies).
    #[cfg(test)]
    pub(crate) fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The next complete reply, `Ok(None)` if more bytes are needed.
    /// After an `Err` the stream cannot be resynchronized.
    pub(crate) fn next(&mut self) -> Result<Option<Reply>, RespError> {
        let r = self.step();
        // Consumed bytes leave the buffer (parts of an unfinished array
        // live in `stack`).
        if self.pos > 0 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        r
    }

    fn step(&mut self) -> Result<Option<Reply>, RespError> {
        loop {
            let Some(mut item) = self.element()? else {
                return Ok(None);
            };
            // Close every array this element completes.
            loop {
                let Some(top) = self.stack.last_mut() else {
                    self.size = 0;
                    return Ok(Some(item));
                };
                top.items.push(item);
                top.left -= 1;
                if top.left > 0 {
                    break;
                }
                let done = self.stack.pop().map(|o| o.items).unwrap_or_default();
                item = Reply::Array(done);
            }
        }
    }

    /// One complete non-array element, or an array header pushed on the stack
    /// (then loops on to its first element); `None` if bytes are missing.
    fn element(&mut self) -> Result<Option<Reply>, RespError> {
        loop {
            let Some((kind, line, next)) = self.line()? else {
                return Ok(None);
            };
            match kind {
                b'+' | b'-' => {
                    let s = String::from_utf8_lossy(line).into_owned();
                    self.consume(next)?;
                    return Ok(Some(if kind == b'+' {
                        Reply::Status(s)
                    } else {
                        Reply::Error(s)
                    }));
                }
                b':' => {
                    let i = number(line)?;
                    self.consume(next)?;
                    return Ok(Some(Reply::Int(i)));
                }
                b'$' => {
                    let n = number(line)?;
                    if n < 0 {
                        self.consume(next)?;
                        return Ok(Some(Reply::Nil));
                    }
                    let n = usize::try_from(n).map_err(|_| RespError::BulkTooLong)?;
                    if n > self.limits.bulk {
                        return Err(RespError::BulkTooLong);
                    }
                    let end = next + n + 2;
                    if self.buf.len() < end {
                        return Ok(None);
                    }
                    if &self.buf[next + n..end] != b"\r\n" {
                        return Err(RespError::BadFormat);
                    }
                    let b = self.buf[next..next + n].to_vec();
                    self.consume(end)?;
                    return Ok(Some(Reply::Bulk(b)));
                }
                b'*' => {
                    let n = number(line)?;
                    if n < 0 {
                        self.consume(next)?;
                        return Ok(Some(Reply::Nil));
                    }
                    let n = usize::try_from(n).map_err(|_| RespError::ArrayTooLong)?;
                    if n > self.limits.array {
                        return Err(RespError::ArrayTooLong);
                    }
                    if n == 0 {
                        self.consume(next)?;
                        return Ok(Some(Reply::Array(Vec::new())));
                    }
                    if self.stack.len() >= self.limits.depth {
                        return Err(RespError::TooDeep);
                    }
                    self.consume(next)?;
                    // Room grows with what arrives, not with the claim.
                    self.stack.push(Open {
                        left: n,
                        items: Vec::with_capacity(n.min(64)),
                    });
                }
                other => return Err(RespError::BadType(other)),
            }
        }
    }

    /// The type byte, the rest of the line and the offset after its `\r\n`.
    fn line(&self) -> Result<Option<Line<'_>>, RespError> {
        let rest = &self.buf[self.pos..];
        let Some(&kind) = rest.first() else {
            return Ok(None);
        };
        let window = &rest[..rest.len().min(self.limits.line + 2)];
        match window.windows(2).position(|w| w == b"\r\n") {
            Some(i) => Ok(Some((kind, &rest[1..i], self.pos + i + 2))),
            None if rest.len() > self.limits.line + 1 => Err(RespError::LineTooLong),
            None => Ok(None),
        }
    }

    fn consume(&mut self, to: usize) -> Result<(), RespError> {
        self.size += to - self.pos;
        self.pos = to;
        if self.size > self.limits.reply {
            return Err(RespError::ReplyTooLarge);
        }
        Ok(())
    }
}

/// A line's type byte, its text and the offset after its `\r\n`.
type Line<'a> = (u8, &'a [u8], usize);

fn number(line: &[u8]) -> Result<i64, RespError> {
    std::str::from_utf8(line)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or(RespError::BadFormat)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(bytes: &[u8], limits: Limits) -> Result<Vec<Reply>, RespError> {
        let mut d = Decoder::new(limits);
        d.feed(bytes);
        let mut out = Vec::new();
        while let Some(r) = d.next()? {
            out.push(r);
        }
        Ok(out)
    }

    fn bulk(s: &str) -> Reply {
        Reply::Bulk(s.as_bytes().to_vec())
    }

    const STREAM: &[u8] =
        b"+OK\r\n-NOSCRIPT No matching script\r\n:-42\r\n$5\r\nhel\r\n\r\n$-1\r\n\
*-1\r\n*0\r\n$0\r\n\r\n*3\r\n$7\r\nmessage\r\n$7\r\nbc:ch:d\r\n$2\r\n{}\r\n\
*2\r\n*2\r\n:1\r\n*1\r\n+x\r\n$1\r\ny\r\n";

    fn expected() -> Vec<Reply> {
        vec![
            Reply::Status("OK".into()),
            Reply::Error("NOSCRIPT No matching script".into()),
            Reply::Int(-42),
            bulk("hel\r\n"),
            Reply::Nil,
            Reply::Nil,
            Reply::Array(vec![]),
            bulk(""),
            Reply::Array(vec![bulk("message"), bulk("bc:ch:d"), bulk("{}")]),
            Reply::Array(vec![
                Reply::Array(vec![
                    Reply::Int(1),
                    Reply::Array(vec![Reply::Status("x".into())]),
                ]),
                bulk("y"),
            ]),
        ]
    }

    #[test]
    fn every_reply_type_decodes() {
        assert_eq!(all(STREAM, Limits::DEFAULT).unwrap(), expected());
    }

    #[test]
    fn fragments_split_at_every_offset_give_the_same_replies() {
        for cut in 0..=STREAM.len() {
            let mut d = Decoder::new(Limits::DEFAULT);
            let mut out = Vec::new();
            for part in [&STREAM[..cut], &STREAM[cut..]] {
                d.feed(part);
                while let Some(r) = d.next().unwrap() {
                    out.push(r);
                }
            }
            assert_eq!(out, expected(), "cut at {cut}");
            assert_eq!(d.buffered(), 0);
        }
    }

    #[test]
    fn one_byte_at_a_time_gives_the_same_replies() {
        let mut d = Decoder::new(Limits::DEFAULT);
        let mut out = Vec::new();
        for b in STREAM {
            d.feed(std::slice::from_ref(b));
            while let Some(r) = d.next().unwrap() {
                out.push(r);
            }
        }
        assert_eq!(out, expected());
    }

    #[test]
    fn claimed_sizes_over_the_limits_are_errors_before_any_allocation() {
        let l = Limits::DEFAULT;
        // 2^62 claimed: refused from the header alone.
        assert_eq!(
            all(b"$4611686018427387904\r\n", l),
            Err(RespError::BulkTooLong)
        );
        assert_eq!(
            all(b"*4611686018427387904\r\n", l),
            Err(RespError::ArrayTooLong)
        );
        let small = Limits {
            bulk: 4,
            array: 2,
            depth: 2,
            line: 8,
            reply: 32,
        };
        assert_eq!(all(b"$5\r\n", small), Err(RespError::BulkTooLong));
        assert_eq!(all(b"$4\r\nabcd\r\n", small), Ok(vec![bulk("abcd")]));
        assert_eq!(all(b"*3\r\n", small), Err(RespError::ArrayTooLong));
        assert_eq!(all(b"*1\r\n*1\r\n*1\r\n", small), Err(RespError::TooDeep));
        assert_eq!(all(b"+123456789", small), Err(RespError::LineTooLong));
        assert_eq!(all(b"+1234567\r\n", small).unwrap().len(), 1);
        assert_eq!(
            all(
                b"*2\r\n$4\r\nabcd\r\n*2\r\n$4\r\nabcd\r\n$4\r\nabcd\r\n",
                small
            ),
            Err(RespError::ReplyTooLarge)
        );
    }

    #[test]
    fn malformed_replies_are_errors() {
        let l = Limits::DEFAULT;
        assert_eq!(all(b"?x\r\n", l), Err(RespError::BadType(b'?')));
        assert_eq!(all(b":12a\r\n", l), Err(RespError::BadFormat));
        assert_eq!(all(b"$x\r\n", l), Err(RespError::BadFormat));
        assert_eq!(all(b"$2\r\nabc\r\n", l), Err(RespError::BadFormat));
        // Incomplete is not an error: more bytes may come.
        assert_eq!(all(b"*2\r\n$3\r\nab", l), Ok(vec![]));
    }

    #[test]
    fn commands_encode_as_arrays_of_bulk_strings() {
        let mut out = Vec::new();
        Cmd::new("SET")
            .arg("k")
            .arg(7u64)
            .arg(&b"a\r\nb"[..])
            .encode(&mut out);
        assert_eq!(
            out,
            b"*4\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\n7\r\n$4\r\na\r\nb\r\n"
        );
        // What we encode, we decode.
        let back = all(&out, Limits::DEFAULT).unwrap();
        assert_eq!(
            back,
            vec![Reply::Array(vec![
                bulk("SET"),
                bulk("k"),
                bulk("7"),
                bulk("a\r\nb")
            ])]
        );
    }

    #[test]
    fn replies_read_as_text_and_numbers() {
        assert_eq!(bulk("12").int(), 12);
        assert_eq!(Reply::Int(3).text(), "3");
        assert_eq!(Reply::Nil.text(), "");
        assert_eq!(Reply::Nil.into_array(), vec![]);
    }
}
