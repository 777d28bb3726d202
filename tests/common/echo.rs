//! The real `echo_bot` example as a child process, and the WAV it is fed.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{Daemon, Keys, TempDir};

/// A 440 Hz tone at amplitude 0.5 (RMS 0.354), 48 kHz mono, 16-bit WAV.
pub fn write_tone_wav(path: &Path, secs: u32) {
    let rate = 48_000u32;
    let n = rate * secs;
    let mut b = Vec::with_capacity(44 + n as usize * 2);
    b.extend_from_slice(b"RIFF");
    b.extend_from_slice(&(36 + n * 2).to_le_bytes());
    b.extend_from_slice(b"WAVEfmt ");
    b.extend_from_slice(&16u32.to_le_bytes());
    b.extend_from_slice(&1u16.to_le_bytes()); // PCM
    b.extend_from_slice(&1u16.to_le_bytes()); // mono
    b.extend_from_slice(&rate.to_le_bytes());
    b.extend_from_slice(&(rate * 2).to_le_bytes());
    b.extend_from_slice(&2u16.to_le_bytes());
    b.extend_from_slice(&16u16.to_le_bytes());
    b.extend_from_slice(b"data");
    b.extend_from_slice(&(n * 2).to_le_bytes());
    for i in 0..n {
        let v = (0.5
            * (2.0 * std::f64::consts::PI * 440.0 * f64::from(i) / f64::from(rate)).sin()
            * 32767.0) as i16;
        b.extend_from_slice(&v.to_le_bytes());
    }
    std::fs::write(path, b).unwrap();
}

/// `target/<profile>/examples/echo_bot`, built by `cargo test` with the examples.
pub fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(Path::parent).unwrap();
    let p = dir.join("examples").join(name);
    assert!(
        p.exists(),
        "{} missing (cargo test builds examples)",
        p.display()
    );
    p
}

/// Kills the child on drop.
pub struct KillOnDrop(pub std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The real `echo_bot`, registered as `ec-bot` on `d` and online; its stdout
/// lines are collected. Also writes a 10 s 440 Hz WAV for the fake microphone.
pub struct EchoBot {
    pub child: KillOnDrop,
    lines: Arc<Mutex<Vec<String>>>,
    pub wav: PathBuf,
    _dir: TempDir,
}

impl EchoBot {
    pub fn start(d: &Daemon) -> EchoBot {
        Self::start_with(d, &[])
    }

    /// As [`EchoBot::start`], with more `echo_bot` arguments.
    pub fn start_with(d: &Daemon, extra: &[&str]) -> EchoBot {
        Self::start_keyed(d, &Keys::new().ec, extra)
    }

    /// As [`EchoBot::start_with`], signing with `signing_key`.
    pub fn start_keyed(
        d: &Daemon,
        signing_key: &botcall_core::jwt::SigningKey,
        extra: &[&str],
    ) -> EchoBot {
        let dir = TempDir::new("pwa-call");
        let key = dir.path().join("bot.jwk");
        let mut jwk = Vec::new();
        signing_key
            .write_jwk(&mut botcall_core::json::Writer::new(&mut jwk), None)
            .unwrap();
        std::fs::write(&key, jwk).unwrap();
        let wav = dir.path().join("tone440.wav");
        write_tone_wav(&wav, 10);
        let mut bot = Command::new(example("echo_bot"))
            .args([
                "--daemon",
                &d.url(""),
                "--id",
                "ec-bot",
                "--name",
                "Echo",
                "--listed",
                "--key",
            ])
            .arg(&key)
            .args(extra)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let stdout = bot.stdout.take().unwrap();
        let child = KillOnDrop(bot);
        let lines = Arc::new(Mutex::new(Vec::<String>::new()));
        let sink = lines.clone();
        std::thread::spawn(move || {
            for l in BufReader::new(stdout).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(l);
            }
        });
        d.eventually("echo_bot online", Duration::from_secs(20), || {
            let r = d.get("/lookup/ec-bot");
            r.status == 200 && r.json()["online"] == true
        });
        EchoBot {
            child,
            lines,
            wav,
            _dir: dir,
        }
    }

    /// The `call <id> ended: <code> (…)` line for `call_id`, once printed
    /// (bounded wait).
    pub fn ended(&self, d: &Daemon, call_id: &str) -> String {
        let prefix = format!("call {call_id} ended: ");
        let find = || self.lines().into_iter().find(|l| l.starts_with(&prefix));
        d.eventually(
            "echo_bot to say how the call ended",
            Duration::from_secs(30),
            || find().is_some(),
        );
        find().unwrap()
    }

    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    /// The best per-second decoded RMS the bot printed.
    pub fn best_rms(&self) -> f64 {
        self.lines()
            .iter()
            .filter_map(|l| {
                l.split("rx_rms=")
                    .nth(1)?
                    .split_whitespace()
                    .next()?
                    .parse::<f64>()
                    .ok()
            })
            .fold(0.0f64, f64::max)
    }
}
