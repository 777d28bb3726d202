//! The PWA in real headless Chromium (Debian's `chromium`, driven by
//! `playwright-core` from `tests/e2e/`), served by a real daemon.
//! `tests/setup` installs chromium and playwright-core; without them these
//! tests fail (they never skip).
mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

fn e2e_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e")
}

/// Runs a node script from tests/e2e and returns its `RESULT` JSON.
fn node(script: &str, args: &[&str]) -> serde_json::Value {
    let dir = e2e_dir();
    assert!(
        dir.join("node_modules/playwright-core").exists(),
        "playwright-core missing: run tests/setup (npm ci in tests/e2e)"
    );
    let out = Command::new("node")
        .arg(dir.join(script))
        .args(args)
        .current_dir(&dir)
        .output()
        .expect("node (tests/setup installs it)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("RESULT "))
        .unwrap_or_else(|| panic!("{script} printed no result:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr)));
    let v: serde_json::Value = serde_json::from_str(line).unwrap();
    assert!(out.status.success(), "{script} failed: {v:#}\n{}", String::from_utf8_lossy(&out.stderr));
    v
}

fn screenshot(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/screenshots").join(name).display().to_string()
}

#[test]
fn the_pwa_is_installable_and_loads_offline() {
    let d = Daemon::start(&[]);
    let url = format!("http://{}", d.addr);
    let pid = d.pid().to_string();
    let shot = screenshot("home.png");
    let r = node("installable.mjs", &["--url", &url, "--pid", &pid, "--shot", &shot]);
    let m = &r["manifest"];
    assert_eq!(m["name"], "BotCall");
    assert_eq!(m["display"], "standalone");
    assert_eq!(m["start_url"], "/");
    assert!(m["theme_color"].as_str().unwrap().starts_with('#'));
    assert_eq!(r["themeMeta"], m["theme_color"]);
    let icons = r["icons"].as_array().unwrap();
    let has = |size: u64, purpose: &str| {
        icons.iter().any(|i| {
            i["status"] == 200
                && i["type"] == "image/png"
                && i["width"] == size
                && i["height"] == size
                && i["purpose"].as_str().unwrap().split(' ').any(|p| p == purpose)
        })
    };
    assert!(has(192, "any") && has(512, "any") && has(512, "maskable"), "icons: {icons:#?}");
    assert_eq!(r["controlled"], true, "service worker controls the page");
    assert!(r["cacheNames"].as_array().unwrap().iter().any(|c| c.as_str().unwrap().starts_with("botcall-")));
    // After the daemon was killed:
    assert_eq!(r["offlineTitle"], r["title"]);
    assert_eq!(r["offlineInput"], true, "the shell loads offline");
    assert_eq!(r["offlineDeepLink"], "some-bot", "deep links load offline");
}
