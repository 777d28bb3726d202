//! A bot that plays a sound to whoever calls: a 440 Hz tone, or a WAV file
//! (16-bit PCM, any rate and channel count; mixed to mono, resampled to
//! 48 kHz, looped).
//!
//! ```text
//! cargo run --example tone_bot -- --daemon http://127.0.0.1:8080 --key bot.jwk [--ca PEM] [--id ID] [--name NAME] [--listed] [--wav FILE] [--freq HZ] [--amplitude A]
//! ```
use std::process::ExitCode;

use botcall_sdk::codec::{FRAME_SAMPLES, OpusEncoder, Tone};
use botcall_sdk::{BotConfig, BotError, Call, load_key, register_with_discovery};
use futures_lite::future;

const USAGE: &str = "usage: tone_bot --key FILE [--daemon URL] [--ca PEM] [--id ID] [--name NAME] [--listed] [--wav FILE] [--freq HZ] [--amplitude A]";

struct Args {
    daemon: String,
    /// Extra CA certificates (PEM) for an https:// daemon with a private CA.
    ca: Option<String>,
    key: String,
    id: Option<String>,
    name: Option<String>,
    listed: bool,
    wav: Option<String>,
    freq: f64,
    amplitude: f32,
}

fn parse_args() -> Result<Args, lexopt::Error> {
    use lexopt::prelude::*;
    let mut a = Args {
        daemon: "http://127.0.0.1:8080".into(),
        ca: None,
        key: String::new(),
        id: None,
        name: None,
        listed: false,
        wav: None,
        freq: 440.0,
        amplitude: 0.5,
    };
    let mut p = lexopt::Parser::from_env();
    while let Some(arg) = p.next()? {
        match arg {
            Long("daemon") => a.daemon = p.value()?.string()?,
            Long("key") => a.key = p.value()?.string()?,
            Long("ca") => a.ca = Some(p.value()?.string()?),
            Long("id") => a.id = Some(p.value()?.string()?),
            Long("name") => a.name = Some(p.value()?.string()?),
            Long("listed") => a.listed = true,
            Long("wav") => a.wav = Some(p.value()?.string()?),
            Long("freq") => a.freq = p.value()?.parse()?,
            Long("amplitude") => a.amplitude = p.value()?.parse()?,
            Long("help") | Short('h') => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(other.unexpected()),
        }
    }
    if a.key.is_empty() {
        return Err("--key FILE is required".into());
    }
    Ok(a)
}

/// Reads a 16-bit PCM WAV as mono 48 kHz samples.
fn read_wav(path: &str) -> Result<Vec<f32>, String> {
    let data = std::fs::read(path).map_err(|e| format!("{path}: {e}"))?;
    let bad = |m: &str| format!("{path}: {m}");
    if data.len() < 12 || &data[..4] != b"RIFF" || &data[8..12] != b"WAVE" {
        return Err(bad("not a RIFF/WAVE file"));
    }
    let (mut channels, mut rate, mut bits, mut samples) = (0u16, 0u32, 0u16, None);
    let mut at = 12;
    while let Some(h) = data.get(at..at + 8) {
        let len = u32::from_le_bytes([h[4], h[5], h[6], h[7]]) as usize;
        let body = data
            .get(at + 8..at + 8 + len)
            .ok_or_else(|| bad("truncated chunk"))?;
        match &h[..4] {
            b"fmt " if body.len() >= 16 => {
                if u16::from_le_bytes([body[0], body[1]]) != 1 {
                    return Err(bad("only PCM WAV files"));
                }
                channels = u16::from_le_bytes([body[2], body[3]]);
                rate = u32::from_le_bytes([body[4], body[5], body[6], body[7]]);
                bits = u16::from_le_bytes([body[14], body[15]]);
            }
            b"data" => samples = Some(body),
            _ => {}
        }
        at += 8 + len + (len & 1);
    }
    let samples = samples.ok_or_else(|| bad("no data chunk"))?;
    if bits != 16 || channels == 0 || rate == 0 {
        return Err(bad("need 16-bit samples"));
    }
    let ch = usize::from(channels);
    let mono: Vec<f32> = samples
        .chunks_exact(2 * ch)
        .map(|f| {
            let sum: f32 = f
                .chunks_exact(2)
                .map(|s| f32::from(i16::from_le_bytes([s[0], s[1]])) / 32768.0)
                .sum();
            sum / ch as f32
        })
        .collect();
    if mono.is_empty() {
        return Err(bad("no samples"));
    }
    if rate == 48_000 {
        return Ok(mono);
    }
    // Linear resampling to 48 kHz.
    let out_len = (mono.len() as u64 * 48_000 / u64::from(rate)) as usize;
    Ok((0..out_len)
        .map(|i| {
            let pos = i as f64 * f64::from(rate) / 48_000.0;
            let j = pos as usize;
            let frac = (pos - j as f64) as f32;
            let a = mono[j.min(mono.len() - 1)];
            let b = mono[(j + 1).min(mono.len() - 1)];
            a + (b - a) * frac
        })
        .collect())
}

enum Source {
    Tone(Tone),
    Wav { samples: Vec<f32>, pos: usize },
}

impl Source {
    fn next_frame(&mut self) -> [f32; FRAME_SAMPLES] {
        match self {
            Source::Tone(t) => t.next_frame(),
            Source::Wav { samples, pos } => {
                let mut out = [0.0; FRAME_SAMPLES];
                for s in out.iter_mut() {
                    *s = samples[*pos];
                    *pos = (*pos + 1) % samples.len();
                }
                out
            }
        }
    }
}

/// Plays to one call until it ends; what the caller says is read and dropped.
async fn play(call: &Call, mut source: Source) {
    let mut enc = match OpusEncoder::new(1) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("tone_bot: {e}");
            return;
        }
    };
    let send = async {
        let mut sent = 0u64;
        while let Ok(pkt) = enc.encode(&source.next_frame()) {
            if call.send_audio_opus(&pkt).await.is_err() {
                break;
            }
            sent += 1;
            if sent.is_multiple_of(250) {
                println!("tx_frames={sent}");
            }
        }
        sent
    };
    let drain = async { while call.receive_audio_opus().await.is_ok() {} };
    let (sent, ()) = future::zip(send, drain).await;
    let why = call.end_reason().map(|r| r.to_string()).unwrap_or_default();
    println!("call {} ended after {sent} frames: {why}", call.id());
}

async fn run(a: Args) -> Result<(), BotError> {
    let wav = match &a.wav {
        Some(p) => Some(read_wav(p).map_err(BotError::Config)?),
        None => None,
    };
    let key = load_key(&a.key)?;
    let mut cfg = BotConfig::new(a.daemon, key).listed(a.listed);
    if let Some(id) = a.id {
        cfg = cfg.agent_id(id);
    }
    if let Some(ca) = a.ca {
        cfg = cfg.tls_ca_file(ca);
    }
    if let Some(name) = a.name {
        cfg = cfg.name(name);
    }
    let bot = register_with_discovery(cfg).await?;
    println!("online as {}", bot.agent_id());
    loop {
        let call = match bot.accept_call().await {
            Ok(c) => c,
            Err(e) if e.is_refused_call() => {
                println!("refused a call: {e}");
                continue;
            }
            Err(e) => return Err(e),
        };
        println!(
            "call {} from {} (hv={})",
            call.id(),
            call.caller().caller,
            call.caller().hv
        );
        let source = match &wav {
            Some(s) => Source::Wav {
                samples: s.clone(),
                pos: 0,
            },
            None => Source::Tone(Tone::new(a.freq, a.amplitude)),
        };
        play(&call, source).await;
    }
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("tone_bot: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match future::block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tone_bot: {e}");
            ExitCode::FAILURE
        }
    }
}
