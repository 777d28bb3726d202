//! Embeds the PWA (`pwa/`) into the binary: a table of (path, bytes,
//! content type, ETag). `sw.js` gets the shell's content hash substituted
//! for `__BOTCALL_BUILD__`, so every change to the shell is a new cache
//! version and clients pick it up on their next load.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn fnv(bytes: &[u8], mut h: u64) -> u64 {
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = rd.filter_map(Result::ok).map(|e| e.path()).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            walk(&p, out);
        } else {
            out.push(p);
        }
    }
}

fn content_type(p: &Path) -> &'static str {
    match p.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" => "application/json",
        "webmanifest" => "application/manifest+json",
        "png" => "image/png",
        "svg" => "image/svg+xml",
        "ico" => "image/x-icon",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

fn main() {
    let root =
        PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let pwa = root.join("pwa");
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    println!("cargo:rerun-if-changed=pwa");
    let mut files = Vec::new();
    walk(&pwa, &mut files);
    let mut build = 0xcbf29ce484222325u64;
    let mut contents = Vec::new();
    for f in &files {
        let bytes = std::fs::read(f).expect("readable PWA file");
        println!("cargo:rerun-if-changed={}", f.display());
        build = fnv(&bytes, fnv(f.to_string_lossy().as_bytes(), build));
        contents.push(bytes);
    }
    let mut table = String::from("pub(crate) static FILES: &[StaticFile] = &[\n");
    for (f, bytes) in files.iter().zip(contents) {
        let rel = f
            .strip_prefix(&pwa)
            .expect("under pwa/")
            .to_string_lossy()
            .replace('\\', "/");
        let (include, bytes) = if rel == "sw.js" {
            let text = String::from_utf8_lossy(&bytes)
                .replace("__BOTCALL_BUILD__", &format!("{build:016x}"));
            let copy = out_dir.join("sw.js");
            std::fs::write(&copy, &text).expect("writable OUT_DIR");
            (copy, text.into_bytes())
        } else {
            (f.clone(), bytes)
        };
        let etag = format!("\\\"{:016x}\\\"", fnv(&bytes, 0xcbf29ce484222325));
        let _ = writeln!(
            table,
            "    StaticFile {{ path: \"/{rel}\", body: include_bytes!({:?}), content_type: \"{}\", etag: \"{etag}\" }},",
            include.display().to_string(),
            content_type(f)
        );
    }
    table.push_str("];\n");
    let _ = writeln!(table, "pub(crate) const BUILD: &str = \"{build:016x}\";");
    std::fs::write(out_dir.join("pwa_files.rs"), table).expect("writable OUT_DIR");
}
