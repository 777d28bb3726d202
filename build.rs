//! Embeds the PWA (`pwa/`) into the binary: a table of (path, bytes,
//! content type, ETags). `sw.js` gets the shell's content hash substituted
//! for `__BOTCALL_BUILD__`, so every change to the shell is a new cache
//! version and clients pick it up on their next load.
//!
//! Text files are embedded gzip-compressed (deterministically: miniz_oxide at
//! its best level, no name, mtime 0), served as they are to clients that
//! accept gzip and inflated for the others (src/http/static_files.rs);
//! images stay as they are.

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

/// CRC-32 (IEEE) for the gzip trailer.
fn crc32(bytes: &[u8]) -> u32 {
    let mut c = !0u32;
    for b in bytes {
        c ^= u32::from(*b);
        for _ in 0..8 {
            c = if c & 1 == 1 {
                (c >> 1) ^ 0xedb8_8320
            } else {
                c >> 1
            };
        }
    }
    !c
}

/// A gzip member (RFC 1952) with no name and mtime 0: the same bytes on
/// every build.
fn gzip(bytes: &[u8]) -> Vec<u8> {
    // ID1 ID2 CM=deflate FLG=0 MTIME=0 XFL=2 (best compression) OS=255 (unknown)
    let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 2, 255];
    out.extend(miniz_oxide::deflate::compress_to_vec(bytes, 10));
    out.extend(crc32(bytes).to_le_bytes());
    let len = u32::try_from(bytes.len()).expect("a PWA file under 4 GiB");
    out.extend(len.to_le_bytes());
    out
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

/// A linker script that drops the unwind tables (`.eh_frame`, and with it
/// `.eh_frame_hdr`'s index, and the landing-pad tables).
const DISCARD_UNWIND: &str = "SECTIONS {
  /DISCARD/ : { *(.eh_frame) *(.eh_frame.*) *(.gcc_except_table) *(.gcc_except_table.*) }
}
INSERT AFTER .text;
";

/// The release profile aborts on panic (`panic = "abort"`, Cargo.toml), so
/// its binaries never unwind, and it strips them, so a backtrace has no names
/// to show: their unwind tables (170 KB of 2.09 MB on x86_64) are dead
/// weight. Linux only (GNU ld and lld read the script); the panic message is
/// still printed before the abort. (`CARGO_CFG_PANIC` would be the direct
/// test, but build scripts see the target's default, "unwind".)
fn discard_unwind_tables(out_dir: &Path) {
    let var = |k: &str| std::env::var(k).unwrap_or_default();
    // A static glibc build (`+crt-static`, the container image) links
    // crtbeginT.o, which registers its `.eh_frame` at start: GNU ld refuses
    // to discard it, so static builds keep their tables.
    let static_crt = var("CARGO_CFG_TARGET_FEATURE")
        .split(',')
        .any(|f| f == "crt-static");
    if var("PROFILE") != "release" || var("CARGO_CFG_TARGET_OS") != "linux" || static_crt {
        return;
    }
    let script = out_dir.join("discard-unwind.ld");
    std::fs::write(&script, DISCARD_UNWIND).expect("OUT_DIR is writable");
    println!("cargo:rustc-link-arg-bins=-Wl,-T,{}", script.display());
}

fn main() {
    let root =
        PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let pwa = root.join("pwa");
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    println!("cargo:rerun-if-changed=pwa");
    discard_unwind_tables(&out_dir);
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
        let hash = fnv(&bytes, 0xcbf29ce484222325);
        let etag = format!("\\\"{hash:016x}\\\"");
        let ctype = content_type(f);
        // Text (SVG too); PNGs are compressed already.
        let text = !ctype.starts_with("image/") || ctype.starts_with("image/svg");
        let gz = text
            .then(|| gzip(&bytes))
            .filter(|gz| gz.len() < bytes.len());
        let (include, gzip_etag) = match gz {
            Some(gz) => {
                let out = out_dir.join("gz").join(format!("{rel}.gz"));
                std::fs::create_dir_all(out.parent().expect("a parent")).expect("writable OUT_DIR");
                std::fs::write(&out, gz).expect("writable OUT_DIR");
                // A different representation: a different strong ETag.
                (out, format!("\\\"{hash:016x}-gz\\\""))
            }
            None => (include, String::new()),
        };
        let gzip = !gzip_etag.is_empty();
        let _ = writeln!(
            table,
            "    StaticFile {{ path: \"/{rel}\", body: include_bytes!({:?}), gzip: {gzip}, len: {}, content_type: \"{ctype}\", etag: \"{etag}\", gzip_etag: \"{gzip_etag}\" }},",
            include.display().to_string(),
            bytes.len(),
        );
    }
    table.push_str("];\n");
    let _ = writeln!(table, "pub(crate) const BUILD: &str = \"{build:016x}\";");
    std::fs::write(out_dir.join("pwa_files.rs"), table).expect("writable OUT_DIR");
}
