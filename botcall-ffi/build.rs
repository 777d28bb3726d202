//! Generates include/botcall.h with cbindgen. The header is checked in and
//! tests/all fails if a build changes it (`git diff --exit-code`), so the
//! ABI never changes by accident.
use std::path::Path;

fn main() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR");
    let out = Path::new(&dir).join("include").join("botcall.h");
    println!("cargo:rerun-if-changed=src");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    let config = cbindgen::Config::from_file(Path::new(&dir).join("cbindgen.toml"))
        .expect("botcall-ffi/cbindgen.toml");
    let bindings = cbindgen::Builder::new()
        .with_crate(&dir)
        .with_config(config)
        .generate()
        .expect("cbindgen: generate botcall.h");
    let mut text = Vec::new();
    bindings.write(&mut text);
    // Only touch the file when it changes (no rebuilds of C code for nothing).
    if std::fs::read(&out).ok().as_deref() != Some(&text[..]) {
        std::fs::write(&out, &text).expect("write include/botcall.h");
    }
}
