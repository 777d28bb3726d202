//! The command line: daemon flags, and the operator tools `keygen`,
//! `token` and `verify-token` for provisioning bots.

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
";

fn help() -> String {
    format!(
        "botcalld {} — BotCall discovery daemon\n\n{USAGE}\nDaemon options (flag > BOTCALL_* environment > --config TOML file > default):\n  --config FILE              TOML file with any of the options below (env BOTCALL_CONFIG)\n{}\nSubcommands:\n  keygen        make an ES256 key pair (or an HS256 secret) as JWK files; the private file is mode 0600\n  token         mint a BotAuth token (JWT) for agent --sub, signed with --key (lifetime ≤ 600 s)\n  verify-token  check a token against a JWK (oct or EC P-256); prints header and claims, or why not (exit 1)\n  sample-config print a TOML file with every option at its default\n",
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
                let boolean = matches!(opt.default, "true" | "false");
                let value = if boolean {
                    match parser.optional_value() {
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
    cfg.apply_env(std::env::vars()).map_err(|e| e.to_string())?;
    for (k, v) in flags {
        cfg.set(&k, &v)
            .map_err(|e| format!("--{}: {e}", k.replace('_', "-")))?;
    }
    cfg.validate().map_err(|e| e.to_string())?;
    Ok(Some(cfg))
}

fn fail(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("botcalld: {msg}");
    ExitCode::FAILURE
}

fn usage_error(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("botcalld: {msg}\n{USAGE}");
    ExitCode::from(2)
}

fn val(p: &mut lexopt::Parser) -> Result<String, String> {
    p.value()
        .map_err(|e| e.to_string())?
        .string()
        .map_err(|e| e.to_string())
}

/// `botcalld keygen`.
pub(crate) fn keygen(args: &[OsString]) -> ExitCode {
    let mut p = lexopt::Parser::from_args(args.iter().cloned());
    let (mut out, mut hs, mut kid) = (PathBuf::from("bot.jwk"), false, None::<String>);
    loop {
        let arg = match p.next() {
            Ok(Some(a)) => a,
            Ok(None) => break,
            Err(e) => return usage_error(e),
        };
        let r = match arg {
            Long("out") | Short('o') => val(&mut p).map(|v| out = v.into()),
            Long("hs256") => {
                hs = true;
                Ok(())
            }
            Long("kid") => val(&mut p).map(|v| kid = Some(v)),
            other => Err(other.unexpected().to_string()),
        };
        if let Err(e) = r {
            return usage_error(e);
        }
    }
    if out.exists() {
        return fail(format!("{} exists; not overwriting a key", out.display()));
    }
    let key = if hs {
        let mut secret = [0u8; 32];
        if let Err(e) = getrandom::fill(&mut secret) {
            return fail(format!("no OS randomness: {e}"));
        }
        match Key::hs256(&secret) {
            Ok(Key::Hs256(s)) => SigningKey::Hs256(s),
            _ => return fail("internal: bad secret length"),
        }
    } else {
        match generate_key() {
            Ok(k) => SigningKey::Es256(k),
            Err(e) => return fail(e),
        }
    };
    if let Err(e) = write_private(&out, &private_jwk(&key, kid.as_deref())) {
        return fail(e);
    }
    match &key {
        SigningKey::Es256(sk) => {
            let mut public = Vec::new();
            let _ = jwt::key::write_public_jwk(
                &mut Writer::new(&mut public),
                sk.verifying_key(),
                kid.as_deref(),
            );
            let pub_path = out.with_extension("pub.jwk");
            if let Err(e) = std::fs::write(&pub_path, &public) {
                return fail(format!("{}: {e}", pub_path.display()));
            }
            let thumb = jwt::thumbprint(sk.verifying_key());
            println!("{}", String::from_utf8_lossy(&public));
            eprintln!(
                "wrote {} (private, 0600) and {} (public)\nthumbprint (agent id with open registration): {thumb}",
                out.display(),
                pub_path.display()
            );
        }
        SigningKey::Hs256(_) => {
            eprintln!(
                "wrote {} (HS256 secret, 0600): put the same JWK in the daemon's keys file",
                out.display()
            );
        }
    }
    ExitCode::SUCCESS
}

/// `botcalld token`.
pub(crate) fn token(args: &[OsString]) -> ExitCode {
    let mut p = lexopt::Parser::from_args(args.iter().cloned());
    let (mut key_file, mut sub, mut ttl, mut aud, mut embed) = (
        None::<PathBuf>,
        None::<String>,
        300u64,
        None::<String>,
        false,
    );
    loop {
        let arg = match p.next() {
            Ok(Some(a)) => a,
            Ok(None) => break,
            Err(e) => return usage_error(e),
        };
        let r = match arg {
            Long("key") | Short('k') => val(&mut p).map(|v| key_file = Some(v.into())),
            Long("sub") | Short('s') => val(&mut p).map(|v| sub = Some(v)),
            Long("ttl") => val(&mut p).and_then(|v| {
                v.parse()
                    .map(|t| ttl = t)
                    .map_err(|_| "--ttl: not a number".into())
            }),
            Long("aud") => val(&mut p).map(|v| aud = Some(v)),
            Long("embed-jwk") => {
                embed = true;
                Ok(())
            }
            other => Err(other.unexpected().to_string()),
        };
        if let Err(e) = r {
            return usage_error(e);
        }
    }
    let (Some(key_file), Some(sub)) = (key_file, sub) else {
        return usage_error("token needs --key FILE and --sub ID");
    };
    if let Err(e) = botcall_core::id::validate(&sub) {
        return fail(format!("--sub: {e}"));
    }
    if ttl == 0 || ttl > jwt::claims::BOT_AUTH_MAX_LIFETIME {
        return fail("--ttl must be 1-600 seconds (BotAuth tokens live at most 10 minutes)");
    }
    let text = match std::fs::read_to_string(&key_file) {
        Ok(t) => t,
        Err(e) => return fail(format!("{}: {e}", key_file.display())),
    };
    let key = match SigningKey::from_jwk(text.trim()) {
        Ok(k) => k,
        Err(e) => return fail(format!("{}: {e}", key_file.display())),
    };
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
    match jwt::sign_claims(&key, opts, &claims, &mut out) {
        Ok(t) => {
            println!("{t}");
            ExitCode::SUCCESS
        }
        Err(e) => fail(e),
    }
}

/// `botcalld verify-token`.
pub(crate) fn verify_token(args: &[OsString]) -> ExitCode {
    let mut p = lexopt::Parser::from_args(args.iter().cloned());
    let (mut jwk_file, mut aud, mut iss, mut leeway, mut tok) = (
        None::<PathBuf>,
        None::<String>,
        None::<String>,
        60u64,
        None::<String>,
    );
    loop {
        let arg = match p.next() {
            Ok(Some(a)) => a,
            Ok(None) => break,
            Err(e) => return usage_error(e),
        };
        let r = match arg {
            Long("jwk") => val(&mut p).map(|v| jwk_file = Some(v.into())),
            Long("aud") => val(&mut p).map(|v| aud = Some(v)),
            Long("iss") => val(&mut p).map(|v| iss = Some(v)),
            Long("leeway") => val(&mut p).and_then(|v| {
                v.parse()
                    .map(|l| leeway = l)
                    .map_err(|_| "--leeway: not a number".into())
            }),
            Value(v) if tok.is_none() => v
                .string()
                .map(|s| tok = Some(s))
                .map_err(|e| format!("{e:?}")),
            other => Err(other.unexpected().to_string()),
        };
        if let Err(e) = r {
            return usage_error(e);
        }
    }
    let (Some(jwk_file), Some(tok)) = (jwk_file, tok) else {
        return usage_error("verify-token needs --jwk FILE and a TOKEN");
    };
    let text = match std::fs::read_to_string(&jwk_file) {
        Ok(t) => t,
        Err(e) => return fail(format!("{}: {e}", jwk_file.display())),
    };
    let key = match Key::from_jwk(text.trim()) {
        Ok(k) => k,
        Err(e) => return fail(format!("{}: {e}", jwk_file.display())),
    };
    let mut scratch = Scratch::new();
    let verified = match jwt::verify(tok.trim(), &key, &mut scratch) {
        Ok(v) => v,
        Err(e) => return fail(format!("invalid token: {e} ({})", e.code())),
    };
    let policy = Policy {
        leeway,
        require_exp: true,
        aud: aud.as_deref(),
        iss: iss.as_deref(),
        ..Policy::default()
    };
    if let Err(e) =
        jwt::claims::validate(verified.payload, &policy, crate::app::Clock::new().unix())
    {
        return fail(format!("invalid token: {e} ({})", e.code()));
    }
    println!(
        "{{\"header\":{},\"claims\":{}}}",
        verified.header.json.raw(),
        verified.payload.trim()
    );
    ExitCode::SUCCESS
}
