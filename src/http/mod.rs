//! HTTP/1.1: request parsing ([`request`]), the connection loop ([`conn`]),
//! the API routes ([`routes`]) and the embedded PWA ([`static_files`]).

pub(crate) mod agent_card;
pub(crate) mod conn;
mod inflate;
pub mod request;
pub(crate) mod routes;
pub(crate) mod static_files;

use std::borrow::Cow;
use std::io::Write as _;

/// A response body.
#[derive(Debug)]
pub(crate) enum Body {
    Empty,
    Static(&'static [u8]),
    Owned(Vec<u8>),
}

impl Body {
    fn bytes(&self) -> &[u8] {
        match self {
            Body::Empty => b"",
            Body::Static(b) => b,
            Body::Owned(v) => v,
        }
    }
}

/// A response to write.
#[derive(Debug)]
pub(crate) struct Response {
    pub(crate) status: u16,
    pub(crate) content_type: &'static str,
    pub(crate) body: Body,
    /// Extra headers.
    pub(crate) headers: Headers,
    /// Close the connection after this response.
    pub(crate) close: bool,
    /// Omit the body (HEAD).
    pub(crate) head_only: bool,
}

pub(crate) const JSON: &str = "application/json";

/// Extra response headers.
pub(crate) type Headers = Vec<(&'static str, Cow<'static, str>)>;

impl Response {
    pub(crate) fn json(status: u16, body: Vec<u8>) -> Self {
        Response {
            status,
            content_type: JSON,
            body: Body::Owned(body),
            headers: Headers::new(),
            close: false,
            head_only: false,
        }
    }

    /// `{"error": message, "code": code}` plus extra string fields.
    pub(crate) fn error(status: u16, code: &str, message: &str) -> Self {
        Self::error_with(status, code, message, &[])
    }

    pub(crate) fn error_with(
        status: u16,
        code: &str,
        message: &str,
        extra: &[(&str, &str)],
    ) -> Self {
        let mut body = Vec::with_capacity(64 + message.len());
        let mut w = botcall_core::json::Writer::new(&mut body);
        // A Vec sink never fills up.
        let _ = (|| -> Result<(), botcall_core::json::write::Full> {
            w.begin_obj()?
                .field_str("error", message)?
                .field_str("code", code)?;
            for (k, v) in extra {
                w.field_str(k, v)?;
            }
            w.end_obj()?;
            Ok(())
        })();
        Self::json(status, body)
    }

    pub(crate) fn with_header(
        mut self,
        name: &'static str,
        value: impl Into<Cow<'static, str>>,
    ) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    pub(crate) fn closing(mut self) -> Self {
        self.close = true;
        self
    }

    /// Appends the wire form to `out`.
    pub(crate) fn write_to(&self, out: &mut Vec<u8>, date: &str) {
        let body = self.body.bytes();
        // Writes into a Vec cannot fail.
        let _ = write!(
            out,
            "HTTP/1.1 {} {}\r\ndate: {date}\r\n",
            self.status,
            reason(self.status)
        );
        if self.status != 204 && self.status != 304 && self.status != 101 {
            let _ = write!(
                out,
                "content-type: {}\r\ncontent-length: {}\r\n",
                self.content_type,
                body.len()
            );
        }
        for (k, v) in &self.headers {
            let _ = write!(out, "{k}: {v}\r\n");
        }
        if self.close {
            out.extend_from_slice(b"connection: close\r\n");
        }
        out.extend_from_slice(b"\r\n");
        if !self.head_only && self.status != 304 {
            out.extend_from_slice(body);
        }
    }
}

/// Reason phrases for the statuses we send.
pub(crate) fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        101 => "Switching Protocols",
        200 => "OK",
        204 => "No Content",
        304 => "Not Modified",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        411 => "Length Required",
        413 => "Content Too Large",
        415 => "Unsupported Media Type",
        417 => "Expectation Failed",
        426 => "Upgrade Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "Unknown",
    }
}

/// `Date` header text (IMF-fixdate) for Unix second `t`.
pub(crate) fn http_date(t: u64) -> String {
    let (y, mo, d, h, mi, s, wd) = civil(t);
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{}, {d:02} {} {y} {h:02}:{mi:02}:{s:02} GMT",
        DAYS[wd],
        MONTHS[(mo - 1) as usize]
    )
}

/// UTC calendar fields of Unix second `t`: (year, month, day, h, m, s, weekday from Thursday).
pub(crate) fn civil(t: u64) -> (i64, u32, u32, u64, u64, u64, usize) {
    let days = (t / 86_400) as i64;
    let secs = t % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (
        y,
        m,
        d,
        secs / 3600,
        secs / 60 % 60,
        secs % 60,
        (days % 7) as usize,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(http_date(784_111_777), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(http_date(1_795_617_234), "Wed, 25 Nov 2026 14:33:54 GMT");
    }

    #[test]
    fn error_bodies_are_json() {
        let r = Response::error_with(
            429,
            "rate_limited",
            "slow \"down\"",
            &[("retry_after", "2")],
        );
        let Body::Owned(b) = &r.body else { panic!() };
        let v: serde_json::Value = serde_json::from_slice(b).unwrap();
        assert_eq!(v["code"], "rate_limited");
        assert_eq!(v["error"], "slow \"down\"");
        let mut out = Vec::new();
        r.closing().write_to(&mut out, "D");
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with(
            "HTTP/1.1 429 Too Many Requests\r\ndate: D\r\ncontent-type: application/json\r\n"
        ));
        assert!(text.contains("connection: close\r\n"));
    }
}
