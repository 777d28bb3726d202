//! A bot that talks back what it hears: every Opus frame it receives is sent
//! back. It also decodes the audio and prints one stats line per second,
//! and how each call ended (the `EndReason` code first):
//!
//! ```text
//! rx_frames=50 rx_rms=0.353 tx_frames=50
//! call c-Ab3… ended: remote_hangup (hung up by the caller (normal))
//! ```
//!
//! Run (the daemon at its default address, a key from `botcalld keygen`):
//!
//! ```text
//! cargo run --example echo_bot -- --daemon http://127.0.0.1:8080 --key bot.jwk [--ca PEM] [--id ID] [--name NAME] [--listed] [--media-timeout SECS]
//! ```
//!
//! Without `--id` the agent id is the key's thumbprint (open registration).
use std::io::Write;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use botcall_sdk::codec::{OpusDecoder, rms};
use botcall_sdk::{BotConfig, BotError, Call, HvPolicy, load_key, register_with_discovery};

const USAGE: &str = "usage: echo_bot --key FILE [--daemon URL] [--ca PEM] [--id ID] [--name NAME] [--listed] [--require-human] [--max-calls N] [--media-timeout SECS]";

struct Args {
    daemon: String,
    /// Extra CA certificates (PEM) for an https:// daemon with a private CA.
    ca: Option<String>,
    key: String,
    id: Option<String>,
    name: Option<String>,
    listed: bool,
    require_human: bool,
    max_calls: u8,
    /// Seconds without media before a connected call ends (`media_lost`).
    media_timeout: Option<u64>,
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
        require_human: false,
        max_calls: 1,
        media_timeout: None,
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
            Long("require-human") => a.require_human = true,
            Long("max-calls") => a.max_calls = p.value()?.parse()?,
            Long("media-timeout") => a.media_timeout = Some(p.value()?.parse()?),
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

/// Echoes one call until it ends; prints per-second stats.
async fn echo(call: &Call) {
    let mut dec = OpusDecoder::new(1).ok();
    let (mut rx, mut tx, mut sum, mut n) = (0u64, 0u64, 0f64, 0usize);
    let mut window = Instant::now();
    loop {
        let frame = match call.receive_audio_opus().await {
            Ok(f) => f,
            Err(e) => {
                let code = call.end_reason().map_or("?", |r| r.code());
                match e {
                    BotError::Ended(r) => println!("call {} ended: {code} ({r})", call.id()),
                    e => println!("call {} ended: {code} ({e})", call.id()),
                }
                let _ = std::io::stdout().flush();
                return;
            }
        };
        rx += 1;
        if let Some(pcm) = dec.as_mut().and_then(|d| d.decode(&frame.data).ok()) {
            let r = rms(pcm);
            sum += f64::from(r * r) * pcm.len() as f64;
            n += pcm.len();
        }
        if call.send_audio_opus(&frame.data).await.is_ok() {
            tx += 1;
        }
        if window.elapsed().as_secs() >= 1 {
            let r = if n > 0 { (sum / n as f64).sqrt() } else { 0.0 };
            println!("rx_frames={rx} rx_rms={r:.3} tx_frames={tx}");
            let _ = std::io::stdout().flush();
            (rx, tx, sum, n) = (0, 0, 0.0, 0);
            window = Instant::now();
        }
    }
}

async fn run(a: Args) -> Result<(), BotError> {
    let key = load_key(&a.key)?;
    let mut cfg = BotConfig::new(a.daemon, key)
        .listed(a.listed)
        .max_calls(a.max_calls);
    if let Some(id) = a.id {
        cfg = cfg.agent_id(id);
    }
    if let Some(ca) = a.ca {
        cfg = cfg.tls_ca_file(ca);
    }
    if let Some(name) = a.name {
        cfg = cfg.name(name);
    }
    if a.require_human {
        cfg = cfg.policy(HvPolicy::VERIFIED);
    }
    if let Some(s) = a.media_timeout {
        cfg = cfg.media_timeout(Duration::from_secs(s));
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
        let who = call.caller();
        println!(
            "call {} from {} (hv={}, fp={}, fps={})",
            call.id(),
            who.caller,
            who.hv,
            who.fp,
            who.fps.len().max(1)
        );
        let _ = std::io::stdout().flush();
        echo(&call).await;
    }
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("echo_bot: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match futures_lite::future::block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("echo_bot: {e}");
            ExitCode::FAILURE
        }
    }
}
