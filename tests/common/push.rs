//! The loopback Web Push service (`tests/push_service.py`) for the tests.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Command, Stdio};

use serde_json::Value;

use super::{Daemon, KillOnDrop, http, python};

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/push_service.py");

/// The loopback push service, checking VAPID against `d`'s key.
pub struct PushService {
    _child: KillOnDrop,
    pub addr: SocketAddr,
}

impl PushService {
    pub fn start(d: &Daemon) -> PushService {
        Self::start_with(d, &[])
    }

    /// Also serves HTTPS for subscriptions named `tls*`, with the
    /// certificate [`PushService::make_ca`] wrote to `dir`.
    pub fn start_tls(d: &Daemon, dir: &std::path::Path) -> PushService {
        Self::start_with(d, &["--tls", dir.to_str().unwrap()])
    }

    /// Writes a test CA (`dir/ca.pem`) and a `localhost` certificate it signed.
    pub fn make_ca(dir: &std::path::Path) {
        Self::make_ca_with(dir, &[]);
    }

    /// [`PushService::make_ca`] with `--rsa` (RSA-2048 keys instead of P-256).
    pub fn make_ca_with(dir: &std::path::Path, extra: &[&str]) {
        let st = Command::new(python())
            .arg(SCRIPT)
            .arg("--make-ca")
            .arg(dir)
            .args(extra)
            .status()
            .unwrap();
        assert!(st.success());
    }

    /// [`PushService::start_tls`] speaking TLS 1.2 at most.
    pub fn start_tls12(d: &Daemon, dir: &std::path::Path) -> PushService {
        Self::start_with(d, &["--tls", dir.to_str().unwrap(), "--tls12"])
    }

    fn start_with(d: &Daemon, extra: &[&str]) -> PushService {
        let mut child = Command::new(python())
            .arg(SCRIPT)
            .arg(d.url(""))
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start tests/push_service.py (tests/setup makes the venv)");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port: u16 = line
            .trim()
            .strip_prefix("PORT ")
            .and_then(|p| p.split(' ').next())
            .unwrap_or_else(|| panic!("push service said {line:?}"))
            .parse()
            .unwrap();
        PushService {
            _child: KillOnDrop(child),
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
        }
    }

    /// A browser-like subscription (endpoint and keys) named `name`.
    pub fn subscription(&self, name: &str) -> Value {
        http(self.addr, "GET", &format!("/keys/{name}"), &[], b"").json()
    }

    /// Every message received so far, for `name`.
    pub fn received(&self, name: &str) -> Vec<Value> {
        let all = http(self.addr, "GET", "/log", &[], b"").json();
        all.as_array()
            .unwrap()
            .iter()
            .filter(|r| r["name"] == name)
            .cloned()
            .collect()
    }
}
