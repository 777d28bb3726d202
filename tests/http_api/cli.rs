//! The command line and the config: --help, bad flags, precedence.

use super::*;

/// A daemon process started with our own arguments and environment (the
/// shared spawner, without the test keys and flags `Daemon::start` adds).
struct Proc(Daemon);

impl Proc {
    /// Starts `botcalld args` with only `env` (plus PATH) in `cwd`; waits for
    /// the listening line.
    fn start(args: &[&str], env: &[(&str, &str)], cwd: &Path) -> Proc {
        let mut cmd = Command::new(BIN);
        cmd.args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .current_dir(cwd);
        for (k, v) in env {
            cmd.env(k, v);
        }
        Proc(Daemon::spawn(cmd, TempDir::new("proc")))
    }

    fn addr(&self) -> SocketAddr {
        self.0.addr
    }

    fn log(&self) -> String {
        self.0.log()
    }

    /// The address to connect to (the daemon may listen on 0.0.0.0).
    fn loopback(&self) -> SocketAddr {
        let mut a = self.0.addr;
        if a.ip().is_unspecified() {
            a.set_ip([127, 0, 0, 1].into());
        }
        a
    }

    fn metric(&self, series: &str) -> f64 {
        let text = http(self.loopback(), "GET", "/metrics", &[], b"").text();
        text.lines()
            .find_map(|l| {
                l.strip_prefix(series)?
                    .strip_prefix(' ')?
                    .trim()
                    .parse()
                    .ok()
            })
            .unwrap_or_else(|| panic!("no {series} in\n{text}"))
    }

    fn term(mut self) -> std::process::ExitStatus {
        self.0.signal("TERM", Duration::from_secs(10))
    }
}

#[test]
fn help_documents_every_option() {
    let (code, out, _) = run_botcalld(&["--help"], &[]);
    assert_eq!(code, 0);
    for name in config_option_names() {
        let flag = format!("--{}", name.replace('_', "-"));
        assert!(
            out.lines()
                .any(|l| l.split_whitespace().next() == Some(flag.as_str())),
            "--help does not document {flag}:\n{out}"
        );
        assert!(
            out.contains(&format!("BOTCALL_{}", name.to_ascii_uppercase())),
            "{name} env"
        );
    }
    for word in ["--config", "keygen", "token", "verify-token"] {
        assert!(out.contains(word), "{word}");
    }
    assert_eq!(run_botcalld(&["-h"], &[]).0, 0);
    let (code, out, _) = run_botcalld(&["--version"], &[]);
    assert_eq!(code, 0);
    assert!(out.contains(env!("CARGO_PKG_VERSION")));
}

#[test]
fn bad_flags_and_config_exit_2_with_a_message() {
    let dir = TempDir::new("badcfg");
    let bad_toml = dir.path().join("bad.toml");
    std::fs::write(&bad_toml, "max_agents = \"lots\"\n").unwrap();
    let unknown_key = dir.path().join("unknown.toml");
    std::fs::write(&unknown_key, "max_agentz = 5\n").unwrap();
    let broken = dir.path().join("broken.toml");
    std::fs::write(&broken, "max_agents = \n").unwrap();
    let missing = dir.path().join("missing.toml");
    // (arguments, environment, what the message must name)
    type Case<'a> = (Vec<&'a str>, Vec<(&'a str, &'a str)>, &'a str);
    let cases: Vec<Case> = vec![
        (vec!["--no-such-option", "1"], vec![], "--no-such-option"),
        (vec!["--max-agents"], vec![], "max-agents"),
        (vec!["--max-agents", "lots"], vec![], "max-agents"),
        (vec!["--max-agents", "0"], vec![], "max_agents"),
        (vec!["--listen", "nowhere"], vec![], "listen"),
        (vec!["--human-check", "captcha"], vec![], "human_check"),
        (vec!["stray-argument"], vec![], "stray-argument"),
        (
            vec!["--config", bad_toml.to_str().unwrap()],
            vec![],
            "max_agents",
        ),
        (
            vec!["--config", unknown_key.to_str().unwrap()],
            vec![],
            "max_agentz",
        ),
        (
            vec!["--config", broken.to_str().unwrap()],
            vec![],
            "broken.toml",
        ),
        (
            vec!["--config", missing.to_str().unwrap()],
            vec![],
            "missing.toml",
        ),
        (
            vec![],
            vec![("BOTCALL_MAX_AGENTS", "many")],
            "BOTCALL_MAX_AGENTS",
        ),
        // An unknown BOTCALL_ name is only a warning: the exit comes from the bad flag.
        (
            vec!["--max-agents", "0"],
            vec![("BOTCALL_NO_SUCH", "1")],
            "warning: ignoring environment BOTCALL_NO_SUCH",
        ),
    ];
    for (args, env, needle) in cases {
        let (code, _, err) = run_botcalld(&args, &env);
        assert_eq!(code, 2, "{args:?} {env:?}: {err}");
        assert!(
            err.contains(needle),
            "{args:?} {env:?}: message does not name {needle}: {err}"
        );
    }
}

#[test]
fn config_file_env_and_flags_in_order() {
    let dir = TempDir::new("cfg");
    let state = dir.path().join("state");
    let file = dir.path().join("botcall.toml");
    std::fs::write(
        &file,
        format!(
            "listen = \"127.0.0.1:0\"\nstun_listen = \"off\"\nmax_agents = 5\nstate_dir = \"{}\"\nopen_registration = false\n",
            state.display()
        ),
    )
    .unwrap();
    let f = file.to_str().unwrap();
    // File only.
    let p = Proc::start(&["--config", f], &[], dir.path());
    assert_eq!(p.metric("botcall_agent_table_capacity"), 5.0);
    assert_eq!(p.addr().ip().to_string(), "127.0.0.1");
    assert!(!p.log().contains("STUN udp"), "stun_listen = off ignored");
    drop(p);
    // BOTCALL_CONFIG names the file too.
    let p = Proc::start(&[], &[("BOTCALL_CONFIG", f)], dir.path());
    assert_eq!(p.metric("botcall_agent_table_capacity"), 5.0);
    drop(p);
    // Environment over the file.
    let env = [
        ("BOTCALL_MAX_AGENTS", "7"),
        ("BOTCALL_LISTEN", "127.0.0.2:0"),
        ("BOTCALL_OPEN_REGISTRATION", "true"),
    ];
    let p = Proc::start(&["--config", f], &env, dir.path());
    assert_eq!(p.metric("botcall_agent_table_capacity"), 7.0);
    assert_eq!(p.addr().ip().to_string(), "127.0.0.2");
    let k = Keys::new();
    let id = Keys::thumbprint(&k.fleet);
    let r = http(
        p.addr(),
        "POST",
        "/register",
        &[
            (
                "Authorization",
                &format!("Bearer {}", open_token(&k.fleet, &id)),
            ),
            ("Content-Type", "application/json"),
        ],
        reg_body(&id).as_bytes(),
    );
    assert_eq!(
        r.status,
        200,
        "BOTCALL_OPEN_REGISTRATION ignored: {}",
        r.text()
    );
    drop(p);
    // Flags over the environment (the order of --config and flags does not matter).
    let p = Proc::start(
        &[
            "--max-agents",
            "9",
            "--listen",
            "127.0.0.1:0",
            "--config",
            f,
        ],
        &env,
        dir.path(),
    );
    assert_eq!(p.metric("botcall_agent_table_capacity"), 9.0);
    assert_eq!(p.addr().ip().to_string(), "127.0.0.1");
    assert_eq!(p.term().code(), Some(0));
}

#[test]
fn runs_with_no_arguments_on_port_8080() {
    // `cargo run --release` with no config: defaults must serve HTTP on
    // 0.0.0.0:8080 and STUN on 0.0.0.0:3478. Those fixed ports must be free
    // here; if they are not, this fails loudly rather than skipping.
    {
        let t = std::net::TcpListener::bind("0.0.0.0:8080").unwrap_or_else(|e| {
            panic!("TCP port 8080 is in use on this machine ({e}); this test needs it free")
        });
        let u = UdpSocket::bind("0.0.0.0:3478").unwrap_or_else(|e| {
            panic!("UDP port 3478 is in use on this machine ({e}); this test needs it free")
        });
        drop((t, u));
    }
    let cwd = TempDir::new("noargs");
    let p = Proc::start(&[], &[], cwd.path());
    assert_eq!(p.addr().to_string(), "0.0.0.0:8080", "{}", p.log());
    assert!(p.log().contains("STUN udp 0.0.0.0:3478"));
    let r = http(
        "127.0.0.1:8080".parse().unwrap(),
        "GET",
        "/healthz",
        &[],
        b"",
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["status"], "ok");
    assert_eq!(p.metric("botcall_agent_table_capacity"), 100_000.0);
    // The state directory defaults to ./botcall-state.
    assert!(cwd.path().join("botcall-state/attestation.jwk").exists());
    // STUN answers a Binding request.
    let u = UdpSocket::bind("127.0.0.1:0").unwrap();
    u.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut req = vec![0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42];
    req.extend_from_slice(b"botcall-test");
    u.send_to(&req, "127.0.0.1:3478").unwrap();
    let mut buf = [0u8; 512];
    let (n, _) = u.recv_from(&mut buf).expect("STUN answer");
    assert!(n >= 20 && buf[..2] == [0x01, 0x01] && buf[8..20] == req[8..20]);
    assert_eq!(p.term().code(), Some(0));
}
