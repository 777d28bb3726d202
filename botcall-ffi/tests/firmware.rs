//! The no_std surface on a real bare-metal target: botcall-ffi built as a
//! `staticlib` for thumbv7em-none-eabihf (Cortex-M4F) with `core` alone (no
//! `alloc`: the build fails on any allocation), linked by arm-none-eabi-gcc
//! with -nostdlib into tests/firmware/main.c (so no malloc exists to call),
//! and run under qemu-arm. Every attestation case (good, tampered,
//! Wycheproof-derived) must get on the target the verdict the Rust API
//! gives on the host.
//!
//! Toolchain as cross/no_std.sh: Debian's rustc with its matching source
//! (-Zbuild-std=core, RUSTC_BOOTSTRAP=1); nothing is downloaded.
mod cases;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

const TARGET: &str = "thumbv7em-none-eabihf";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `libbotcall.a` for the target, release, no default features.
fn build_staticlib() -> PathBuf {
    let target_dir = root().join("target").join("ffi-thumbv7em");
    let out = Command::new("/usr/bin/cargo")
        .current_dir(root())
        .env("RUSTC", "/usr/bin/rustc")
        .env("RUSTDOC", "/usr/bin/rustdoc")
        .env("RUSTC_BOOTSTRAP", "1")
        .env("CARGO_TARGET_DIR", &target_dir)
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .args([
            "rustc",
            "--locked",
            "-q",
            "-Zbuild-std=core",
            // memcpy/memset/memcmp from compiler_builtins: no libc to provide them.
            "-Zbuild-std-features=compiler-builtins-mem",
            "--target",
            TARGET,
            "-p",
            "botcall-ffi",
            "--no-default-features",
            "--release",
            "--crate-type",
            "staticlib",
        ])
        .output()
        .expect("/usr/bin/cargo (Debian's cargo-web, tests/setup)");
    assert!(
        out.status.success(),
        "the thumbv7em build:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lib = target_dir.join(TARGET).join("release").join("libbotcall.a");
    assert!(lib.exists(), "{}", lib.display());
    lib
}

fn c_string(s: &str) -> String {
    let mut o = String::from("\"");
    for b in s.bytes() {
        match b {
            b'"' => o.push_str("\\\""),
            b'\\' => o.push_str("\\\\"),
            0x20..=0x7e => o.push(b as char),
            _ => write!(o, "\\{b:03o}").unwrap(),
        }
    }
    o.push('"');
    o
}

/// cases.h: every case with the verdict the Rust API gives it here.
fn cases_header(all: &[cases::Case]) -> String {
    let mut h = String::from(
        "struct fw_case { const char *token; size_t token_len; const char *jwks; size_t jwks_len;\n\
         const char *agent; size_t agent_len; uint64_t now; BotcallStatus want; };\n\
         static const struct fw_case CASES[] = {\n",
    );
    for c in all {
        let want = match botcall_sdk::verify_human_attestation(&c.token, &c.jwks, &c.agent, c.now) {
            Ok(_) => botcall::BOTCALL_OK,
            Err(e) => botcall::attestation_status(e),
        };
        writeln!(
            h,
            "  {{{}, {}, {}, {}, {}, {}, {}ull, {want}}},",
            c_string(&c.token),
            c.token.len(),
            c_string(&c.jwks),
            c.jwks.len(),
            c_string(&c.agent),
            c.agent.len(),
            c.now
        )
        .unwrap();
    }
    h.push_str("};\n#define N_CASES (sizeof CASES / sizeof CASES[0])\n");
    h
}

#[test]
fn thumbv7em_staticlib_links_without_an_allocator_and_agrees_with_the_rust_api() {
    let lib = build_staticlib();
    let dir = std::env::temp_dir().join(format!("botcall-fw-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let all = cases::all();
    std::fs::write(dir.join("cases.h"), cases_header(&all)).unwrap();
    let elf = dir.join("fw.elf");
    let out = Command::new("arm-none-eabi-gcc")
        .args([
            "-mcpu=cortex-m4",
            "-mthumb",
            "-mfloat-abi=hard",
            "-mfpu=fpv4-sp-d16",
            "-O2",
            "-std=c11",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-ffreestanding",
            "-nostdlib",
            "-static",
            "-Wl,--gc-sections",
            "-Wl,-z,noexecstack",
        ])
        .arg("-I")
        .arg(root().join("botcall-ffi/include"))
        .arg("-I")
        .arg(&dir)
        .arg(root().join("botcall-ffi/tests/firmware/main.c"))
        .arg(&lib)
        .arg("-o")
        .arg(&elf)
        .output()
        .expect("arm-none-eabi-gcc (apt-get install gcc-arm-none-eabi; tests/setup)");
    assert!(
        out.status.success(),
        "arm-none-eabi-gcc:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Nothing that allocates is in the image.
    let nm = Command::new("arm-none-eabi-nm").arg(&elf).output().unwrap();
    let syms = String::from_utf8_lossy(&nm.stdout);
    for bad in ["malloc", "__rust_alloc", "__rg_alloc", "free"] {
        assert!(
            !syms.lines().any(|l| l.ends_with(&format!(" {bad}"))),
            "{bad} in the firmware image"
        );
    }
    let size = Command::new("arm-none-eabi-size")
        .arg(&elf)
        .output()
        .unwrap();
    eprintln!("{}", String::from_utf8_lossy(&size.stdout));

    let run = Command::new("qemu-arm")
        .arg(&elf)
        .output()
        .expect("qemu-arm (qemu-user)");
    let text = String::from_utf8_lossy(&run.stdout);
    eprintln!("{text}");
    assert!(
        run.status.success(),
        "the firmware failed ({}):\n{text}",
        run.status
    );
    assert!(
        text.contains(&format!("verdicts agreed: {} of {}", all.len(), all.len())),
        "{text}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
