//! `cargo build -p botcall-sdk --no-default-features` gives a `#![no_std]`
//! core without an allocator: a static library in `tests/no_std_check/`
//! links it with a panic handler and no global allocator. Pulling in `std`
//! (duplicate `panic_impl` lang item) or `alloc` (no global allocator)
//! makes that build fail.
use std::path::Path;
use std::process::Command;

#[test]
fn core_builds_without_std_and_without_an_allocator() {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    let manifest = here.join("tests/no_std_check/Cargo.toml");
    let target_dir = here.join("../target/no_std_check");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(["build", "--quiet", "--manifest-path"])
        .arg(&manifest)
        .arg("--target-dir")
        .arg(&target_dir)
        .env_remove("RUSTFLAGS")
        .output()
        .expect("run cargo");
    assert!(
        out.status.success(),
        "the no_std check crate failed to build:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lib = target_dir.join("debug/libbotcall_sdk_no_std_check.a");
    assert!(lib.exists(), "{} missing", lib.display());
}
