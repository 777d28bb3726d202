//! Helpers shared by the topics: error assertions, tokens, raw requests, a keep-alive connection, keys files.

use super::*;

/// Asserts an error answer: the status, `Content-Type: application/json`,
/// and a body `{"error": "<non-empty text>", "code": code, ...}`.
#[track_caller]
pub(crate) fn assert_error(r: &Resp, status: u16, code: &str) {
    assert_eq!(r.status, status, "status; body: {}", r.text());
    assert_eq!(
        r.header("content-type"),
        Some("application/json"),
        "content type of {}",
        r.text()
    );
    let v = r.json();
    assert_eq!(v["code"], code, "code; body: {}", r.text());
    assert!(
        v["error"].as_str().is_some_and(|e| !e.is_empty()),
        "error text missing: {}",
        r.text()
    );
}

/// Asserts a 401 with `reason`.
#[track_caller]
pub(crate) fn assert_unauthorized(r: &Resp, reason: &str) {
    assert_error(r, 401, "unauthorized");
    assert_eq!(r.json()["reason"], reason, "{}", r.text());
    assert_eq!(r.header("www-authenticate"), Some("Bearer"));
}

/// Unix seconds as i64 (token claims).
pub(crate) fn now_i() -> i64 {
    now() as i64
}

/// BotAuth claims for `sub`, valid `ttl` s.
pub(crate) fn claims(sub: &str, ttl: i64) -> String {
    let n = now_i();
    format!(r#"{{"sub":"{sub}","iat":{n},"exp":{}}}"#, n + ttl)
}

/// An open-registration token: `key` signs, `jwk_of`'s public key is in the header.
pub(crate) fn open_token(key: &botcall_core::jwt::SigningKey, sub: &str) -> String {
    sign(key, &claims(sub, 300), true)
}

pub(crate) fn reg_body(id: &str) -> String {
    json!({ "agent_id": id }).to_string()
}

/// Registers `id` with `key` (token for `id`), body `{"agent_id": id, ..extra}`.
pub(crate) fn reg(d: &Daemon, key: &botcall_core::jwt::SigningKey, id: &str, extra: Value) -> Resp {
    let mut body = json!({ "agent_id": id });
    if let Value::Object(m) = extra {
        body.as_object_mut().unwrap().extend(m);
    }
    register(d, &token(key, id, 300), &body.to_string())
}

pub(crate) fn delete(d: &Daemon, id: &str, tok: &str) -> Resp {
    let auth = format!("Bearer {tok}");
    http(
        d.addr,
        "DELETE",
        &format!("/register/{id}"),
        &[("Authorization", &auth)],
        b"",
    )
}

/// POST /register with exactly these headers and body bytes.
pub(crate) fn post(d: &Daemon, headers: &[(&str, &str)], body: &[u8]) -> Resp {
    http(d.addr, "POST", "/register", headers, body)
}

/// Raw bytes on a fresh connection; every response until the server closes.
pub(crate) fn raw_all(d: &Daemon, bytes: &[u8]) -> Vec<Resp> {
    parse_responses(&raw(d.addr, bytes))
}

/// Raw bytes on a fresh connection; the one response, and that the server closed.
#[track_caller]
pub(crate) fn raw_one(d: &Daemon, bytes: &[u8]) -> Resp {
    let mut all = raw_all(d, bytes);
    assert_eq!(
        all.len(),
        1,
        "expected one response to {:?}",
        String::from_utf8_lossy(bytes)
    );
    all.pop().unwrap()
}

/// Minimal standard base64url (no padding), for hand-made tokens.
pub(crate) fn b64url(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for c in data.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..=c.len() {
            out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

/// A keep-alive connection that reads responses one at a time.
pub(crate) struct Conn {
    pub(crate) r: BufReader<TcpStream>,
    w: TcpStream,
}

impl Conn {
    pub(crate) fn open(addr: SocketAddr) -> Conn {
        let s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        Conn {
            w: s.try_clone().unwrap(),
            r: BufReader::new(s),
        }
    }

    pub(crate) fn send(&mut self, bytes: &[u8]) {
        self.w.write_all(bytes).unwrap();
    }

    /// The next response (body by Content-Length); `None` on a clean EOF.
    pub(crate) fn read(&mut self) -> Option<Resp> {
        let mut head = Vec::new();
        loop {
            let mut line = Vec::new();
            let n = self.r.read_until(b'\n', &mut line).expect("read response");
            if n == 0 {
                assert!(head.is_empty(), "EOF inside a response head");
                return None;
            }
            head.extend_from_slice(&line);
            if line == b"\r\n" {
                break;
            }
        }
        let mut resp = parse_responses(&head).pop().unwrap();
        let len: usize = resp
            .header("content-length")
            .map(|v| v.parse().unwrap())
            .unwrap_or(0);
        let mut body = vec![0u8; len];
        self.r.read_exact(&mut body).unwrap();
        resp.body = body;
        Some(resp)
    }

    /// True if the server closed (EOF) within the read timeout, with no bytes.
    pub(crate) fn closed_silently(&mut self) -> bool {
        let mut rest = Vec::new();
        matches!(self.r.read_to_end(&mut rest), Ok(0))
    }
}

pub(crate) fn get_req(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n")
}

/// A keys file: the harness's, plus `extra` agent entries (id → JWK text).
pub(crate) fn keys_file_with(extra: &[(&str, String)]) -> TempDir {
    let mut v: Value = serde_json::from_str(&Keys::new().file()).unwrap();
    for (id, jwk) in extra {
        v["agents"][*id] = serde_json::from_str(jwk).unwrap();
    }
    let dir = TempDir::new("keys");
    std::fs::write(dir.path().join("keys.json"), v.to_string()).unwrap();
    dir
}

/// A daemon where one id has two valid keys: open registration makes
/// `thumbprint(other_ec)` other_ec's id (key embedded in the token), and the
/// keys file *also* gives that id to the HS256 key. The only configuration
/// in which two different keys can prove the same id on one daemon — so the
/// owner check (`id_taken`) is reachable over HTTP.
pub(crate) fn two_keys_one_id(extra: &[&str]) -> (Daemon, String) {
    let keys = Keys::new();
    let id = Keys::thumbprint(&keys.other_ec);
    let dir = keys_file_with(&[(&id, Keys::public_jwk(&keys.hs))]);
    let mut flags = vec!["--open-registration"];
    flags.extend_from_slice(extra);
    (Daemon::start_in(dir, &flags), id)
}
