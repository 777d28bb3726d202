//! Proves botcall-core is `#![no_std]` and needs no allocator with default
//! features off: a `#![no_std]` cdylib without a `#[global_allocator]`
//! that calls into it must link. Pulling in `std` would clash with its
//! `#[panic_handler]`; using `alloc` would fail with "no global memory
//! allocator found".
use std::process::Command;

#[test]
fn links_without_std_or_alloc() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/no_std_check");
    let target = concat!(env!("CARGO_MANIFEST_DIR"), "/../target/no_std_check");
    let out = Command::new(env!("CARGO"))
        .args([
            "build",
            "--quiet",
            "--manifest-path",
            &format!("{dir}/Cargo.toml"),
            "--target-dir",
            target,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "botcall-core without default features must build for a no_std, allocator-free crate:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
