//! The loopback Web Push service (`tests/push_service.py`) for the tests.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Command, Stdio};

use serde_json::Value;

use super::{Daemon, KillOnDrop, http, python};

/// The loopback push service, checking VAPID against `d`'s key.
pub struct PushService {
    _child: KillOnDrop,
    pub addr: SocketAddr,
}

impl PushService {
    pub fn start(d: &Daemon) -> PushService {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/push_service.py");
        let mut child = Command::new(python())
            .arg(script)
            .arg(d.url(""))
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
