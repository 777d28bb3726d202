//! The TOML subset of the config file, sans-IO: text in, `(key, value)` pairs
//! out, in file order.
//!
//! The file is flat (top-level `key = value` lines), so only what such a file
//! holds is read: comments, bare and quoted keys, basic strings with TOML
//! escapes (TOML 1.1's `\e` and `\xHH` too, which the `toml` crate read),
//! literal strings, integers (`_`, sign, `0x`/`0o`/`0b`), booleans and arrays
//! of strings (multi-line, trailing comma). Anything else valid TOML (tables,
//! dotted keys, inline tables, floats, dates, multi-line strings) is refused
//! with its line number and what it is, as is invalid TOML and a key set
//! twice. It replaces the `toml` crate, which cost the daemon its whole
//! serde/winnow stack for this (docs/dependencies.md).

/// One value of the subset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TomlValue {
    Str(String),
    Int(i64),
    Bool(bool),
    /// An array whose elements are all strings.
    StrArray(Vec<String>),
}

/// Why the file was refused, and on which line (1-based).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TomlError {
    pub(crate) line: usize,
    pub(crate) msg: String,
}

impl std::fmt::Display for TomlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.msg)
    }
}

/// Parses `text`: the top-level pairs in file order, keys unique.
pub(crate) fn parse(text: &str) -> Result<Vec<(String, TomlValue)>, TomlError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut p = Parser {
        s: text.as_bytes(),
        src: text,
        pos: 0,
        line: 1,
    };
    let mut out: Vec<(String, TomlValue, usize)> = Vec::new();
    loop {
        p.skip_blank_lines()?;
        let Some(b) = p.peek() else { break };
        let line = p.line;
        if b == b'[' {
            return Err(p.err(
                "tables (`[name]`) are not supported: every option is a top-level `key = value`",
            ));
        }
        let key = p.key()?;
        p.ws();
        match p.peek() {
            Some(b'.') => {
                return Err(p.err(format!(
                    "dotted keys (`{key}.…`) are not supported: every option is a top-level key"
                )));
            }
            Some(b'=') => p.pos += 1,
            _ => return Err(p.err(format!("expected `=` after the key `{key}`"))),
        }
        p.ws();
        let value = p.value(&key)?;
        p.end_of_line()?;
        if let Some((_, _, first)) = out.iter().find(|(k, _, _)| *k == key) {
            return Err(TomlError {
                line,
                msg: format!("duplicate key `{key}` (first set on line {first})"),
            });
        }
        out.push((key, value, line));
    }
    Ok(out.into_iter().map(|(k, v, _)| (k, v)).collect())
}

struct Parser<'a> {
    s: &'a [u8],
    src: &'a str,
    pos: usize,
    line: usize,
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn err(&self, msg: impl Into<String>) -> TomlError {
        TomlError {
            line: self.line,
            msg: msg.into(),
        }
    }

    /// Spaces and tabs.
    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.pos += 1;
        }
    }

    /// A comment up to (not including) the end of its line.
    fn comment(&mut self) -> Result<(), TomlError> {
        if self.peek() != Some(b'#') {
            return Ok(());
        }
        while let Some(b) = self.peek() {
            match b {
                b'\n' => break,
                b'\r' if self.s.get(self.pos + 1) == Some(&b'\n') => break,
                b'\t' => {}
                0..=0x1f | 0x7f => return Err(self.err("control character in a comment")),
                _ => {}
            }
            self.pos += 1;
        }
        Ok(())
    }

    /// A newline (`\n` or `\r\n`), if one is next.
    fn newline(&mut self) -> Result<bool, TomlError> {
        match self.peek() {
            Some(b'\n') => self.pos += 1,
            Some(b'\r') if self.s.get(self.pos + 1) == Some(&b'\n') => self.pos += 2,
            Some(b'\r') => return Err(self.err("a carriage return not followed by a newline")),
            _ => return Ok(false),
        }
        self.line += 1;
        Ok(true)
    }

    /// Whitespace, comments and newlines, up to the next key (or the end).
    fn skip_blank_lines(&mut self) -> Result<(), TomlError> {
        loop {
            self.ws();
            self.comment()?;
            if !self.newline()? {
                return Ok(());
            }
        }
    }

    /// After a value: optional whitespace and comment, then a newline or the end.
    fn end_of_line(&mut self) -> Result<(), TomlError> {
        self.ws();
        self.comment()?;
        if self.peek().is_none() || self.newline()? {
            Ok(())
        } else {
            Err(self.err("expected the end of the line after the value"))
        }
    }

    fn key(&mut self) -> Result<String, TomlError> {
        match self.peek() {
            Some(b'"') => self.basic_string("key"),
            Some(b'\'') => self.literal_string("key"),
            _ => {
                let start = self.pos;
                while matches!(self.peek(), Some(b) if b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
                {
                    self.pos += 1;
                }
                if self.pos == start {
                    return Err(
                        self.err("expected a key (letters, digits, `_`, `-`, or a quoted string)")
                    );
                }
                Ok(self.src[start..self.pos].to_string())
            }
        }
    }

    fn value(&mut self, key: &str) -> Result<TomlValue, TomlError> {
        match self.peek() {
            Some(b'"') => self.basic_string(key).map(TomlValue::Str),
            Some(b'\'') => self.literal_string(key).map(TomlValue::Str),
            Some(b'[') => self.array(key).map(TomlValue::StrArray),
            Some(b'{') => Err(self.err(format!(
                "`{key}`: inline tables are not supported (an option is a string, an integer, a boolean or a list of strings)"
            ))),
            Some(b't' | b'f') => {
                let word = self.word();
                match word {
                    "true" => Ok(TomlValue::Bool(true)),
                    "false" => Ok(TomlValue::Bool(false)),
                    _ => Err(self.err(format!(
                        "`{key}`: `{word}` is not a value (strings must be quoted)"
                    ))),
                }
            }
            Some(b'+' | b'-' | b'0'..=b'9' | b'i' | b'n') => self.number(key),
            None | Some(b'\n' | b'\r' | b'#') => {
                Err(self.err(format!("`{key}`: the value is missing")))
            }
            Some(_) => {
                let word = self.word();
                Err(self.err(format!(
                    "`{key}`: `{word}` is not a value (strings must be quoted)"
                )))
            }
        }
    }

    /// The run of bytes up to whitespace, a comma, a bracket, a comment or the
    /// end of the line (for numbers and keywords).
    fn word(&mut self) -> &'a str {
        let start = self.pos;
        while let Some(b) = self.peek() {
            if matches!(b, b' ' | b'\t' | b'\n' | b'\r' | b'#' | b',' | b']') {
                break;
            }
            self.pos += 1;
        }
        // Stops only at ASCII bytes, so on a char boundary.
        &self.src[start..self.pos]
    }

    fn number(&mut self, key: &str) -> Result<TomlValue, TomlError> {
        let word = self.word();
        if word.starts_with(['i', 'n']) && !matches!(word, "inf" | "nan") {
            let msg = format!("`{key}`: `{word}` is not a value (strings must be quoted)");
            return Err(self.err(msg));
        }
        match parse_integer(word) {
            Ok(i) => Ok(TomlValue::Int(i)),
            Err(UNQUOTED) => {
                let msg = format!("`{key}`: `{word}` is {UNQUOTED}");
                Err(self.err(msg))
            }
            Err(what) => {
                let msg = format!("`{key}`: {what} (`{word}`)");
                Err(self.err(msg))
            }
        }
    }

    fn array(&mut self, key: &str) -> Result<Vec<String>, TomlError> {
        self.pos += 1; // '['
        let mut items = Vec::new();
        loop {
            self.skip_blank_lines()?;
            match self.peek() {
                Some(b']') => {
                    self.pos += 1;
                    return Ok(items);
                }
                Some(b'"') => items.push(self.basic_string(key)?),
                Some(b'\'') => items.push(self.literal_string(key)?),
                None => return Err(self.err(format!("`{key}`: the list is not closed with `]`"))),
                Some(b) => {
                    let what = match b {
                        b'[' => "a list",
                        b'{' => "an inline table",
                        b't' | b'f' => "a boolean",
                        b'+' | b'-' | b'0'..=b'9' => "a number",
                        _ => "something that is not a string",
                    };
                    return Err(self.err(format!("`{key}` must be a list of strings, got {what}")));
                }
            }
            self.skip_blank_lines()?;
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b']') => {}
                None => return Err(self.err(format!("`{key}`: the list is not closed with `]`"))),
                _ => {
                    return Err(
                        self.err(format!("`{key}`: expected `,` or `]` between list items"))
                    );
                }
            }
        }
    }

    /// A `"…"` string with TOML escapes; `what` names it in errors.
    fn basic_string(&mut self, what: &str) -> Result<String, TomlError> {
        if self.s[self.pos..].starts_with(b"\"\"\"") {
            return Err(self.err(format!(
                "`{what}`: multi-line strings (\"\"\") are not supported"
            )));
        }
        self.pos += 1;
        let mut out = String::new();
        loop {
            let start = self.pos;
            while let Some(b) = self.peek() {
                if b == b'"' || b == b'\\' || b < 0x20 && b != b'\t' || b == 0x7f {
                    break;
                }
                self.pos += 1;
            }
            // Stops only at ASCII bytes, so on a char boundary.
            out.push_str(&self.src[start..self.pos]);
            match self.peek() {
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    let c = self.escape(what)?;
                    out.push(c);
                }
                None | Some(b'\n' | b'\r') => {
                    return Err(self.err(format!("`{what}`: the string is not closed with `\"`")));
                }
                Some(_) => {
                    return Err(self.err(format!("`{what}`: control character in a string")));
                }
            }
        }
    }

    /// One escape sequence after `\`.
    fn escape(&mut self, what: &str) -> Result<char, TomlError> {
        let e = self.s.get(self.pos + 1).copied();
        self.pos += 2;
        let c = match e {
            Some(b'b') => '\u{8}',
            Some(b't') => '\t',
            Some(b'n') => '\n',
            Some(b'f') => '\u{c}',
            Some(b'r') => '\r',
            Some(b'"') => '"',
            Some(b'\\') => '\\',
            Some(b'e') => '\u{1b}',
            // TOML 1.1, which the `toml` crate reads.
            Some(b'x') => return self.unicode(2, what),
            Some(b'u') => return self.unicode(4, what),
            Some(b'U') => return self.unicode(8, what),
            _ => {
                return Err(self.err(format!(
                    "`{what}`: invalid escape in a string (\\b \\t \\n \\f \\r \\e \\\" \\\\ \\xHH \\uXXXX \\UXXXXXXXX)"
                )));
            }
        };
        Ok(c)
    }

    fn unicode(&mut self, n: usize, what: &str) -> Result<char, TomlError> {
        let hex = self
            .s
            .get(self.pos..self.pos + n)
            .filter(|h| h.iter().all(u8::is_ascii_hexdigit));
        let c = hex
            .and_then(|h| u32::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok())
            .and_then(char::from_u32);
        match c {
            Some(c) => {
                self.pos += n;
                Ok(c)
            }
            None => Err(self.err(format!(
                "`{what}`: \\x, \\u and \\U need 2, 4 and 8 hex digits of a Unicode scalar value"
            ))),
        }
    }

    /// A `'…'` string: no escapes.
    fn literal_string(&mut self, what: &str) -> Result<String, TomlError> {
        if self.s[self.pos..].starts_with(b"'''") {
            return Err(self.err(format!(
                "`{what}`: multi-line strings (''') are not supported"
            )));
        }
        self.pos += 1;
        let start = self.pos;
        loop {
            match self.peek() {
                Some(b'\'') => {
                    let s = self.src[start..self.pos].to_string();
                    self.pos += 1;
                    return Ok(s);
                }
                None | Some(b'\n' | b'\r') => {
                    return Err(self.err(format!("`{what}`: the string is not closed with `'`")));
                }
                Some(b) if b < 0x20 && b != b'\t' || b == 0x7f => {
                    return Err(self.err(format!("`{what}`: control character in a string")));
                }
                Some(_) => self.pos += 1,
            }
        }
    }
}

/// Not TOML at all: most likely a string without its quotes.
const UNQUOTED: &str = "not a value (strings must be quoted)";

/// A TOML integer; the error says what the word is instead.
fn parse_integer(w: &str) -> Result<i64, &'static str> {
    const FLOAT: &str = "floats are not supported (use an integer)";
    const DATE: &str = "dates and times are not supported (quote it for a string)";
    if matches!(w.trim_start_matches(['+', '-']), "inf" | "nan") {
        return Err(FLOAT);
    }
    let (radix, digits, neg) = match w.get(..2) {
        Some("0x") => (16, &w[2..], false),
        Some("0o") => (8, &w[2..], false),
        Some("0b") => (2, &w[2..], false),
        _ => match w.as_bytes().first() {
            Some(b'-') => (10, &w[1..], true),
            Some(b'+') => (10, &w[1..], false),
            _ => (10, w, false),
        },
    };
    if radix == 10 {
        let b = digits.as_bytes();
        let d = |i: usize| b.get(i).is_some_and(u8::is_ascii_digit);
        // 1979-05-27…, 07:32:00…
        if (d(0) && d(1) && d(2) && d(3) && b.get(4) == Some(&b'-'))
            || (d(0) && d(1) && b.get(2) == Some(&b':') && d(3) && d(4))
        {
            return Err(DATE);
        }
        let float_chars = b
            .iter()
            .all(|&c| c.is_ascii_digit() || matches!(c, b'_' | b'.' | b'e' | b'E' | b'+' | b'-'));
        let dots = b.iter().filter(|&&c| c == b'.').count();
        if d(0) && float_chars && dots <= 1 && digits.contains(['.', 'e', 'E']) {
            return Err(FLOAT);
        }
        if !b.iter().all(|&c| c.is_ascii_alphanumeric() || c == b'_') {
            return Err(UNQUOTED);
        }
        if digits.len() > 1 && digits.starts_with('0') && b.iter().all(u8::is_ascii_digit) {
            return Err("leading zeros are not allowed in integers");
        }
    }
    // `_` only between two digits.
    let b = digits.as_bytes();
    let ok_digit = |c: u8| (c as char).is_digit(radix);
    if b.is_empty()
        || !b.iter().all(|&c| c == b'_' || ok_digit(c))
        || !ok_digit(b[0])
        || !ok_digit(b[b.len() - 1])
        || digits.contains("__")
    {
        return Err("not an integer");
    }
    let clean: String = digits.chars().filter(|&c| c != '_').collect();
    let clean = if neg { format!("-{clean}") } else { clean };
    i64::from_str_radix(&clean, radix).map_err(|_| "the integer does not fit 64 bits")
}

#[cfg(test)]
mod tests {
    use super::TomlValue::*;
    use super::*;

    fn one(text: &str) -> TomlValue {
        let mut v = parse(text).unwrap();
        assert_eq!(v.len(), 1, "{text}");
        v.pop().unwrap().1
    }

    fn err(text: &str) -> TomlError {
        parse(text).unwrap_err()
    }

    #[test]
    fn values_of_the_subset() {
        assert_eq!(one("a = \"x\""), Str("x".into()));
        assert_eq!(one("a = 'C:\\path\\x'"), Str("C:\\path\\x".into()));
        assert_eq!(
            one(r#"a = "q\" b\\ n\n t\t u\u00e9 U\U0001F600 r\r f\f b\b""#),
            Str("q\" b\\ n\n t\t u\u{e9} U\u{1F600} r\r f\u{c} b\u{8}".into())
        );
        assert_eq!(one("a = \"caf\u{e9} \t\""), Str("caf\u{e9} \t".into()));
        assert_eq!(one("a = 1_000"), Int(1000));
        assert_eq!(one("a = +5"), Int(5));
        assert_eq!(one("a = -17"), Int(-17));
        assert_eq!(one("a = 0"), Int(0));
        assert_eq!(one("a = 0xff"), Int(255));
        assert_eq!(one("a = 0o17"), Int(15));
        assert_eq!(one("a = 0b101"), Int(5));
        assert_eq!(one("a = 9223372036854775807"), Int(i64::MAX));
        assert_eq!(one("a = -9223372036854775808"), Int(i64::MIN));
        assert_eq!(one("a = true"), Bool(true));
        assert_eq!(one("a=false"), Bool(false));
        assert_eq!(one("a = []"), StrArray(vec![]));
        assert_eq!(
            one("a = [\"x\", 'y' ,\"z\",]"),
            StrArray(vec!["x".into(), "y".into(), "z".into()])
        );
        assert_eq!(
            one("a = [ # the proxies\n  \"127.0.0.1\", # v4\n\n  \"::1\",\n]  # end\n"),
            StrArray(vec!["127.0.0.1".into(), "::1".into()])
        );
    }

    #[test]
    fn keys_comments_and_lines() {
        let v = parse(
            "\u{feff}# head\r\n\n  bare-key_1 = 1 # trailing\r\n\"quoted key\" = 2\n'lit' = 3\n\t\"\\u0061\" = 4",
        )
        .unwrap();
        let keys: Vec<_> = v.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["bare-key_1", "quoted key", "lit", "a"]);
        assert!(parse("").unwrap().is_empty());
        assert!(parse("# only a comment").unwrap().is_empty());
    }

    #[test]
    fn everything_else_is_refused_with_its_line() {
        for (text, line, needle) in [
            ("a = 1\n[server]\nb = 2", 2, "tables"),
            ("[[x]]", 1, "tables"),
            ("\n\na.b = 1", 3, "dotted keys"),
            ("a = { b = 1 }", 1, "inline tables"),
            ("a = 1.5", 1, "floats"),
            ("a = 1e3", 1, "floats"),
            ("a = inf", 1, "floats"),
            ("a = -nan", 1, "floats"),
            ("a = 1979-05-27", 1, "dates"),
            ("a = 07:32:00", 1, "dates"),
            ("a = 1979-05-27T07:32:00Z", 1, "dates"),
            (
                "listen = 127.0.0.1:80",
                1,
                "`127.0.0.1:80` is not a value (strings must be quoted)",
            ),
            ("a = 10.0.0.1", 1, "must be quoted"),
            ("a = -", 1, "not an integer"),
            (
                "a = 1\nb = 2\na = 3",
                3,
                "duplicate key `a` (first set on line 1)",
            ),
            ("a = 1\n\"a\" = 3", 2, "duplicate key"),
            ("a = ", 1, "value is missing"),
            ("a", 1, "expected `=`"),
            ("= 1", 1, "expected a key"),
            ("a = bare", 1, "must be quoted"),
            ("a = tru", 1, "must be quoted"),
            ("a = no", 1, "must be quoted"),
            ("a = \"open", 1, "not closed"),
            ("a = 'open\n'", 1, "not closed"),
            ("a = \"\"\"x\"\"\"", 1, "multi-line"),
            ("a = '''x'''", 1, "multi-line"),
            ("a = \"\\q\"", 1, "invalid escape"),
            ("a = \"\\x4\"", 1, "hex digits"),
            ("a = \"\\uD800\"", 1, "hex digits"),
            ("a = \"\\u12\"", 1, "hex digits"),
            ("a = \"tab\u{1}\"", 1, "control character"),
            ("a = 1 2", 1, "end of the line"),
            ("a = \"x\" \"y\"", 1, "end of the line"),
            ("a = [1]", 1, "list of strings, got a number"),
            ("a = [\"x\", true]", 1, "list of strings, got a boolean"),
            ("a = [[\"x\"]]", 1, "list of strings, got a list"),
            ("a = [\n\"x\"\n\"y\"]", 3, "expected `,` or `]`"),
            ("a = [\"x\",\n", 2, "not closed"),
            ("a = 1__0", 1, "not an integer"),
            ("a = _1", 1, "must be quoted"),
            ("a = 1_", 1, "not an integer"),
            ("a = 012", 1, "leading zeros"),
            ("a = 0x", 1, "not an integer"),
            ("a = +0x1", 1, "not an integer"),
            ("a = 9223372036854775808", 1, "64 bits"),
            ("a = 1\r", 1, "carriage return"),
            ("# \u{7f}", 1, "control character"),
        ] {
            let e = err(text);
            assert_eq!(e.line, line, "{text:?}: {e}");
            assert!(e.msg.contains(needle), "{text:?}: {e}");
        }
    }
}
