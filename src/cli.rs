//! The command line: daemon flags, the operator tools `keygen`, `token` and
//! `verify-token` for provisioning bots, and `healthcheck` for containers.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use botcall_core::json::{self, Writer};
use botcall_core::jwt::{self, HeaderOpts, Key, Policy, Scratch, SigningKey};
use lexopt::prelude::*;

use crate::auth::attest::{generate_key, private_jwk, write_private};
use crate::config::{Config, OPTIONS};

const USAGE: &str = "usage: botcalld [--config FILE] [--OPTION VALUE ...]
       botcalld keygen [--out FILE] [--hs256] [--kid KID]
       botcalld token --key FILE --sub ID [--ttl SECONDS] [--aud AUD] [--embed-jwk]
       botcalld verify-token --jwk FILE [--aud AUD] [--iss ISS] [--leeway SECONDS] TOKEN
       botcalld sample-config
       botcalld healthcheck [--config FILE] [--OPTION VALUE ...]
";

fn help() -> String {
    format!(
        "botcalld {} — BotCall discovery daemon\n\n{USAGE}\nDaemon options (flag > BOTCALL_* environment > --config TOML file > default).\nOn/off options are flags: --NAME turns one on, --NAME=false or --NAME false off.\n  --config FILE              TOML file with any of the options below (env BOTCALL_CONFIG)\n{}\nSubcommands:\n  keygen        make an ES256 key pair (or an HS256 secret) as JWK files; the private file is mode 0600\n  token         mint a BotAuth token (JWT) for agent --sub, signed with --key (lifetime ≤ 600 s)\n  verify-token  check a token against a JWK (oct or EC P-256); prints header and claims, or why not (exit 1)\n  sample-config print a TOML file with every option at its default\n  healthcheck   GET /healthz from the daemon these options configure (its listen address); exit 0 on 200, else 1\n",
        env!("CARGO_PKG_VERSION"),
        Config::help()
    )
}

/// Parses daemon arguments into a config. `Ok(None)`: help/version printed.
pub(crate) fn daemon_config(args: &[OsString]) -> Result<Option<Config>, String> {
    let mut parser = lexopt::Parser::from_args(args.iter().cloned());
    let mut flags: Vec<(String, String)> = Vec::new();
    let mut config_file: Option<PathBuf> = std::env::var_os("BOTCALL_CONFIG").map(PathBuf::from);
    while let Some(arg) = parser.next().map_err(|e| e.to_string())? {
        match arg {
            Long("help") | Short('h') => {
                print!("{}", help());
                return Ok(None);
            }
            Long("version") | Short('V') => {
                println!("botcalld {}", env!("CARGO_PKG_VERSION"));
                return Ok(None);
            }
            Long("config") | Short('c') => {
                config_file = Some(parser.value().map_err(|e| e.to_string())?.into())
            }
            Long(name) => {
                let name = name.to_string();
                let key = name.replace('-', "_");
                let Some(opt) = OPTIONS.iter().find(|o| o.name == key) else {
                    return Err(format!("unknown option --{name} (see --help)"));
                };
                let value = if opt.is_flag() {
                    // `--flag`, `--flag=true|false`, or `--flag true|false`
                    // (only those two words are taken as its value).
                    let value = match parser.optional_value() {
                        Some(v) => Some(v),
                        None => parser
                            .raw_args()
                            .map_err(|e| e.to_string())?
                            .next_if(|a| a == "true" || a == "false"),
                    };
                    match value {
                        Some(v) => v.string().map_err(|e| e.to_string())?,
                        None => "true".into(),
                    }
                } else {
                    parser
                        .value()
                        .map_err(|e| format!("--{name}: {e}"))?
                        .string()
                        .map_err(|e| e.to_string())?
                };
                flags.push((key, value));
            }
            other => return Err(format!("{} (see --help)", other.unexpected())),
        }
    }
    let mut cfg = Config::defaults();
    if let Some(path) = config_file {
        let text =
            std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        cfg.apply_toml(&text, &path.display().to_string())
            .map_err(|e| e.to_string())?;
    }
    for w in cfg.apply_env(std::env::vars()).map_err(|e| e.to_string())? {
        eprintln!("botcalld: warning: {w}");
    }
    for (k, v) in flags {
        cfg.set(&k, &v)
            .map_err(|e| format!("--{}: {e}", k.replace('_', "-")))?;
    }
    cfg.validate().map_err(|e| e.to_string())?;
    Ok(Some(cfg))
}

/// `botcalld healthcheck`: the container image's `HEALTHCHECK`. Takes the
/// daemon's own options (flags, `BOTCALL_*`, `--config`), so it finds the
/// listen address the daemon was given; connects to it (a wildcard address
/// becomes loopback) and asks `GET /healthz`. Numeric addresses only: no
/// name lookup, which a static binary in an empty image could not do.
pub(crate) fn healthcheck(args: &[OsString]) -> ExitCode {
    let cfg = match daemon_config(args) {
        Ok(Some(cfg)) => cfg,
        Ok(None) => return ExitCode::SUCCESS,
        Err(e) => return exit(Err(usage(e))),
    };
    if cfg.tls_cert.is_some() {
        return exit(Err(fail(
            "healthcheck speaks plain HTTP; this daemon serves TLS (tls_cert)",
        )));
    }
    let r = probe(cfg.listen, HEALTHCHECK_TIMEOUT);
    if let Ok(body) = &r {
        println!("{body}");
    }
    exit(r.map(drop))
}

/// How long `healthcheck` waits for the connection, and then for the answer.
const HEALTHCHECK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// The address a client reaches a daemon listening on `listen` at.
fn local_addr(listen: std::net::SocketAddr) -> std::net::SocketAddr {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
    let ip = match listen.ip() {
        IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, listen.port())
}

/// `GET /healthz` on the daemon at `listen`; the body of a 200 answer.
fn probe(listen: std::net::SocketAddr, timeout: std::time::Duration) -> Result<String, CliError> {
    use std::io::{Read, Write};
    let addr = local_addr(listen);
    let mut s = std::net::TcpStream::connect_timeout(&addr, timeout)
        .map_err(|e| fail(format!("{addr}: {e}")))?;
    s.set_read_timeout(Some(timeout))
        .and_then(|()| s.set_write_timeout(Some(timeout)))
        .map_err(|e| fail(format!("{addr}: {e}")))?;
    let req = format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes())
        .map_err(|e| fail(format!("{addr}: {e}")))?;
    // The answer is small; read it whole (the daemon closes after it).
    let mut buf = Vec::with_capacity(1024);
    s.take(64 * 1024)
        .read_to_end(&mut buf)
        .map_err(|e| fail(format!("{addr}: {e}")))?;
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut resp = httparse::Response::new(&mut headers);
    let head = match resp.parse(&buf) {
        Ok(httparse::Status::Complete(n)) => n,
        _ => return Err(fail(format!("{addr}: not an HTTP answer"))),
    };
    let body = String::from_utf8_lossy(&buf[head..]).trim().to_string();
    match resp.code {
        Some(200) => Ok(body),
        code => Err(fail(format!(
            "{addr}: /healthz answered {} {body}",
            code.unwrap_or(0)
        ))),
    }
}

/// Why a subcommand stopped: bad usage (exit 2) or failure (exit 1).
enum CliError {
    Usage(String),
    Fail(String),
}

fn usage(msg: impl std::fmt::Display) -> CliError {
    CliError::Usage(msg.to_string())
}

fn fail(msg: impl std::fmt::Display) -> CliError {
    CliError::Fail(msg.to_string())
}

/// Runs a subcommand and maps its outcome to an exit code.
fn exit(r: Result<(), CliError>) -> ExitCode {
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(CliError::Usage(m)) => {
            eprintln!("botcalld: {m}\n{USAGE}");
            ExitCode::from(2)
        }
        Err(CliError::Fail(m)) => {
            eprintln!("botcalld: {m}");
            ExitCode::FAILURE
        }
    }
}

/// One command-line argument, owned (so the handler may pull its value).
enum Arg {
    /// `--name` or `-n`.
    Flag(String),
    /// A positional value.
    Value(OsString),
}

fn unexpected(f: &str) -> Result<(), String> {
    Err(format!("unexpected option {f}"))
}

/// Feeds every argument to `on`, which may pull the option's value.
fn each_arg(
    args: &[OsString],
    mut on: impl FnMut(Arg, &mut lexopt::Parser) -> Result<(), String>,
) -> Result<(), CliError> {
    let mut p = lexopt::Parser::from_args(args.iter().cloned());
    while let Some(arg) = p.next().map_err(usage)? {
        let arg = match arg {
            Long(l) => Arg::Flag(format!("--{l}")),
            Short(c) => Arg::Flag(format!("-{c}")),
            Value(v) => Arg::Value(v),
        };
        on(arg, &mut p).map_err(CliError::Usage)?;
    }
    Ok(())
}

fn val(p: &mut lexopt::Parser) -> Result<String, String> {
    p.value()
        .map_err(|e| e.to_string())?
        .string()
        .map_err(|e| e.to_string())
}

fn num(p: &mut lexopt::Parser, name: &str) -> Result<u64, String> {
    val(p)?
        .parse()
        .map_err(|_| format!("--{name}: not a number"))
}

/// Reads a JWK file and parses it with `parse`.
fn read_jwk<T, E: std::fmt::Display>(
    path: &std::path::Path,
    parse: impl Fn(&str) -> Result<T, E>,
) -> Result<T, CliError> {
    let text =
        std::fs::read_to_string(path).map_err(|e| fail(format!("{}: {e}", path.display())))?;
    parse(text.trim()).map_err(|e| fail(format!("{}: {e}", path.display())))
}

/// `botcalld keygen`.
pub(crate) fn keygen(args: &[OsString]) -> ExitCode {
    exit(keygen_run(args))
}

fn keygen_run(args: &[OsString]) -> Result<(), CliError> {
    let (mut out, mut hs, mut kid) = (PathBuf::from("bot.jwk"), false, None::<String>);
    each_arg(args, |arg, p| {
        let Arg::Flag(f) = arg else {
            return Err("keygen takes no positional arguments".into());
        };
        match f.as_str() {
            "--out" | "-o" => out = val(p)?.into(),
            "--hs256" => hs = true,
            "--kid" => kid = Some(val(p)?),
            other => return unexpected(other),
        }
        Ok(())
    })?;
    if out.exists() {
        return Err(fail(format!(
            "{} exists; not overwriting a key",
            out.display()
        )));
    }
    let key = if hs {
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret).map_err(|e| fail(format!("no OS randomness: {e}")))?;
        match Key::hs256(&secret) {
            Ok(Key::Hs256(s)) => SigningKey::Hs256(s),
            _ => return Err(fail("internal: bad secret length")),
        }
    } else {
        SigningKey::Es256(generate_key().map_err(fail)?)
    };
    write_private(&out, &private_jwk(&key, kid.as_deref())).map_err(fail)?;
    match &key {
        SigningKey::Es256(sk) => {
            let mut public = Vec::new();
            let _ = jwt::key::write_public_jwk(
                &mut Writer::new(&mut public),
                sk.verifying_key(),
                kid.as_deref(),
            );
            let pub_path = out.with_extension("pub.jwk");
            std::fs::write(&pub_path, &public)
                .map_err(|e| fail(format!("{}: {e}", pub_path.display())))?;
            println!("{}", String::from_utf8_lossy(&public));
            eprintln!(
                "wrote {} (private, 0600) and {} (public)\nthumbprint (agent id with open registration): {}",
                out.display(),
                pub_path.display(),
                jwt::thumbprint(sk.verifying_key())
            );
        }
        SigningKey::Hs256(_) => {
            eprintln!(
                "wrote {} (HS256 secret, 0600): put the same JWK in the daemon's keys file",
                out.display()
            );
        }
    }
    Ok(())
}

/// `botcalld token`.
pub(crate) fn token(args: &[OsString]) -> ExitCode {
    exit(token_run(args))
}

fn token_run(args: &[OsString]) -> Result<(), CliError> {
    let (mut key_file, mut sub, mut ttl, mut aud, mut embed) = (
        None::<PathBuf>,
        None::<String>,
        300u64,
        None::<String>,
        false,
    );
    each_arg(args, |arg, p| {
        let Arg::Flag(f) = arg else {
            return Err("token takes no positional arguments".into());
        };
        match f.as_str() {
            "--key" | "-k" => key_file = Some(val(p)?.into()),
            "--sub" | "-s" => sub = Some(val(p)?),
            "--ttl" => ttl = num(p, "ttl")?,
            "--aud" => aud = Some(val(p)?),
            "--embed-jwk" => embed = true,
            other => return unexpected(other),
        }
        Ok(())
    })?;
    let (Some(key_file), Some(sub)) = (key_file, sub) else {
        return Err(usage("token needs --key FILE and --sub ID"));
    };
    botcall_core::id::validate(&sub).map_err(|e| fail(format!("--sub: {e}")))?;
    if ttl == 0 || ttl > jwt::claims::BOT_AUTH_MAX_LIFETIME {
        return Err(fail(
            "--ttl must be 1-600 seconds (BotAuth tokens live at most 10 minutes)",
        ));
    }
    let key = read_jwk(&key_file, SigningKey::from_jwk)?;
    let now = crate::app::Clock::new().unix();
    let mut claims = Vec::new();
    let mut w = Writer::new(&mut claims);
    let _ = (|| -> Result<(), json::write::Full> {
        w.begin_obj()?
            .field_str("sub", &sub)?
            .field_u64("iat", now)?
            .field_u64("exp", now + ttl)?;
        if let Some(a) = &aud {
            w.field_str("aud", a)?;
        }
        w.end_obj()?;
        Ok(())
    })();
    let claims = String::from_utf8_lossy(&claims).to_string();
    let mut out = vec![0u8; jwt::MAX_TOKEN_LEN];
    let opts = HeaderOpts {
        kid: None,
        embed_jwk: embed,
        typ: None,
    };
    println!(
        "{}",
        jwt::sign_claims(&key, opts, &claims, &mut out).map_err(fail)?
    );
    Ok(())
}

/// `botcalld verify-token`.
pub(crate) fn verify_token(args: &[OsString]) -> ExitCode {
    exit(verify_token_run(args))
}

fn verify_token_run(args: &[OsString]) -> Result<(), CliError> {
    let (mut jwk_file, mut aud, mut iss, mut leeway, mut tok) = (
        None::<PathBuf>,
        None::<String>,
        None::<String>,
        60u64,
        None::<String>,
    );
    each_arg(args, |arg, p| {
        match arg {
            Arg::Value(v) if tok.is_none() => {
                tok = Some(v.into_string().map_err(|_| "TOKEN is not UTF-8")?)
            }
            Arg::Value(_) => return Err("verify-token takes one TOKEN".into()),
            Arg::Flag(f) => match f.as_str() {
                "--jwk" => jwk_file = Some(val(p)?.into()),
                "--aud" => aud = Some(val(p)?),
                "--iss" => iss = Some(val(p)?),
                "--leeway" => leeway = num(p, "leeway")?,
                other => return unexpected(other),
            },
        }
        Ok(())
    })?;
    let (Some(jwk_file), Some(tok)) = (jwk_file, tok) else {
        return Err(usage("verify-token needs --jwk FILE and a TOKEN"));
    };
    let key = read_jwk(&jwk_file, Key::from_jwk)?;
    let invalid = |e: jwt::JwtError| fail(format!("invalid token: {e} ({})", e.code()));
    let mut scratch = Scratch::new();
    let verified = jwt::verify(tok.trim(), &key, &mut scratch).map_err(invalid)?;
    let policy = Policy {
        leeway,
        require_exp: true,
        aud: aud.as_deref(),
        iss: iss.as_deref(),
        ..Policy::default()
    };
    jwt::claims::validate(verified.payload, &policy, crate::app::Clock::new().unix())
        .map_err(invalid)?;
    println!(
        "{{\"header\":{},\"claims\":{}}}",
        verified.header.json.raw(),
        verified.payload.trim()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(args: &[&str]) -> Result<Config, String> {
        let args: Vec<OsString> = args.iter().map(OsString::from).collect();
        daemon_config(&args).map(|c| c.expect("a config, not help"))
    }

    #[test]
    fn boolean_flags_take_every_form() {
        for (args, want) in [
            (&["--open-registration"][..], true),
            (&["--open-registration=true"], true),
            (&["--open-registration=false"], false),
            (&["--open-registration", "true"], true),
            (&["--open-registration", "false"], false),
            (&[], false),
        ] {
            assert_eq!(cfg(args).unwrap().open_registration, want, "{args:?}");
        }
        // A following option is not taken as the flag's value.
        let c = cfg(&["--open-registration", "--min-ttl", "45"]).unwrap();
        assert!(c.open_registration);
        assert_eq!(c.min_ttl, 45);
        // Anything but true/false after a flag is a stray argument, not its value.
        let e = cfg(&["--open-registration", "yes"]).unwrap_err();
        assert!(e.contains("yes"), "{e}");
        let e = cfg(&["--open-registration=maybe"]).unwrap_err();
        assert!(e.contains("maybe"), "{e}");
    }

    #[test]
    fn healthcheck_turns_wildcards_into_loopback() {
        for (listen, want) in [
            ("0.0.0.0:8080", "127.0.0.1:8080"),
            ("[::]:9000", "[::1]:9000"),
            ("10.0.0.5:80", "10.0.0.5:80"),
            ("[fd00::1]:80", "[fd00::1]:80"),
        ] {
            let got = local_addr(listen.parse().unwrap());
            assert_eq!(got.to_string(), want, "{listen}");
        }
    }

    #[test]
    fn help_shows_flags_as_flags() {
        let h = help();
        let line = h
            .lines()
            .find(|l| l.trim_start().starts_with("--open-registration"))
            .unwrap();
        assert!(line.contains("[flag, off by default]"), "{line}");
        assert!(!line.contains("default: false"), "{line}");
        let listen = h.lines().find(|l| l.contains("--listen")).unwrap();
        assert!(listen.contains("[default: 0.0.0.0:8080]"), "{listen}");
    }
}
