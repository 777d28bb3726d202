//! `RTCIceServer[]` lists: the daemon's STUN responder, and TURN servers with
//! coturn REST-API credentials (username `expiry:user`, credential
//! `base64(HMAC-SHA1(secret, username))`), valid `ttl` seconds. Pure: the
//! caller passes the time.

use base64ct::{Base64, Encoding};
use botcall_core::json::{self, Writer};
use hmac::{Hmac, KeyInit, Mac};

/// What goes into the lists.
#[derive(Debug, Clone, Default)]
pub(crate) struct IceConfig {
    /// Port of the STUN responder (`None`: disabled).
    pub(crate) stun_port: Option<u16>,
    pub(crate) turn_urls: Vec<String>,
    pub(crate) turn_secret: Option<String>,
    pub(crate) turn_ttl: u64,
}

impl IceConfig {
    /// Whether TURN credentials are handed out.
    pub(crate) fn has_turn(&self) -> bool {
        self.turn_secret.is_some() && !self.turn_urls.is_empty()
    }

    /// The list for `user` at `unix`: STUN on `stun_host` (if given and
    /// enabled), then TURN (if configured).
    pub(crate) fn servers(&self, stun_host: Option<&str>, user: &str, unix: u64) -> String {
        let mut v = Vec::with_capacity(256);
        let mut w = Writer::new(&mut v);
        // A Vec sink never fills up.
        let _ = (|| -> Result<(), json::write::Full> {
            w.begin_arr()?;
            if let (Some(host), Some(port)) = (stun_host, self.stun_port) {
                w.begin_obj()?.key("urls")?.begin_arr()?;
                w.str(&format!("stun:{host}:{port}"))?;
                w.end_arr()?.end_obj()?;
            }
            if let (Some(secret), true) = (&self.turn_secret, self.has_turn()) {
                let username = format!("{}:{user}", unix + self.turn_ttl);
                let mut mac = <Hmac<sha1::Sha1> as KeyInit>::new_from_slice(secret.as_bytes())
                    .expect("HMAC takes any key length");
                mac.update(username.as_bytes());
                let credential = Base64::encode_string(&mac.finalize().into_bytes());
                w.begin_obj()?.key("urls")?.begin_arr()?;
                for u in &self.turn_urls {
                    w.str(u)?;
                }
                w.end_arr()?;
                w.field_str("username", &username)?
                    .field_str("credential", &credential)?;
                w.end_obj()?;
            }
            w.end_arr()?;
            Ok(())
        })();
        String::from_utf8(v).unwrap_or_else(|_| "[]".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stun_and_coturn_rest_credentials() {
        let cfg = IceConfig {
            stun_port: Some(3478),
            turn_urls: vec!["turn:t.example:3478".into()],
            turn_secret: Some("s3cret".into()),
            turn_ttl: 3600,
        };
        let v: serde_json::Value =
            serde_json::from_str(&cfg.servers(Some("h.example"), "bot-1", 1000)).unwrap();
        assert_eq!(v[0]["urls"][0], "stun:h.example:3478");
        assert_eq!(v[1]["username"], "4600:bot-1");
        // base64(HMAC-SHA1("s3cret", "4600:bot-1")), computed with Python's hmac module.
        assert_eq!(v[1]["credential"], "NVHqrAcDNCFXZLhLE+GkHk7VmIo=");
        // TURN only (for a call's `incoming`).
        let turn: serde_json::Value =
            serde_json::from_str(&cfg.servers(None, "bot-1", 2000)).unwrap();
        assert_eq!(turn.as_array().unwrap().len(), 1);
        assert_eq!(turn[0]["username"], "5600:bot-1");
        assert_eq!(IceConfig::default().servers(Some("h"), "u", 0), "[]");
    }
}
