#!/usr/bin/env bash
# Builds botcalld, the SDK and the example bots for aarch64-unknown-linux-gnu
# and runs what proves that build under qemu-user, with Debian's rustc-web and
# its arm64 std (recipe: ../shared/notes/cross-aarch64.md). Never runs `cross`
# or any rustup download: Cross.toml is for users with Docker.
#
#   cross/aarch64.sh            release botcalld + debug SDK/examples, the smoke suite under qemu
#   cross/aarch64.sh --all      the whole workspace test suite under qemu instead
#   cross/aarch64.sh --release  also build the SDK and example bots in release (to ship)
#   cross/aarch64.sh --no-test  build only
#
# The smoke suite (the default) is what the aarch64 build must show, without
# running every slow media test a second time under emulation: the unit tests
# of every crate (the SDK's no_std core, the hub, STUN, config), botcall-core's
# vectors (JWT, Wycheproof, malformed input), the daemon's HTTP API and
# WebSocket signaling over real sockets (tests/http_api.rs,
# tests/ws_signaling.rs), one real call with Opus both ways between an SDK
# bot and a str0m caller (tests/sdk_call.rs), and the arm64 .deb.
#
# Needs (tests/setup installs them): rustc-web cargo-web gcc-aarch64-linux-gnu
# g++-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user qemu-user-static
# binfmt-support libstd-rust-web-dev:arm64 cmake. Integration tests start the
# aarch64 daemon themselves (CARGO_BIN_EXE_botcalld), so the kernel must know
# how to run aarch64 ELF files: binfmt_misc with qemu-aarch64 registered. The
# script registers it when it is root; without it, only the unit tests and
# doctests run (through the cargo runner) and the integration tests are built
# but not run — the script says so and exits 3.
set -euo pipefail
cd "$(dirname "$0")/.."

release_all=0 run_tests=1 all_tests=0
for a in "$@"; do
  case "$a" in
    --all) all_tests=1 ;;
    --release) release_all=1 ;;
    --no-test) run_tests=0 ;;
    -h|--help) sed -n '2,28p' "$0"; exit 0 ;;
    *) echo "aarch64.sh: unknown argument $a" >&2; exit 2 ;;
  esac
done

T=aarch64-unknown-linux-gnu
CARGO=/usr/bin/cargo
# Debian's compiler, not rustup's (which has no arm64 std), in its own target
# folder so the two compilers never invalidate each other's builds.
export RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc
export CARGO_TARGET_DIR=${CROSS_TARGET_DIR:-target/debian-cross}
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
# -L /: Debian's own arm64 libc (from libstd-rust-web-dev:arm64's deps); the
# cross libc under /usr/aarch64-linux-gnu mixed with it hangs thread start.
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="qemu-aarch64 -L /"
# C code built from source: libopus (opusic-sys, via cmake) and aws-lc
# (aws-lc-sys, for str0m's DTLS/SRTP). The cc and cmake crates read these;
# cmake-rs sets CMAKE_SYSTEM_NAME/PROCESSOR itself when target != host.
export CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc
export CXX_aarch64_unknown_linux_gnu=aarch64-linux-gnu-g++
export AR_aarch64_unknown_linux_gnu=aarch64-linux-gnu-ar
export CMAKE_TOOLCHAIN_FILE_aarch64_unknown_linux_gnu="$PWD/cross/aarch64-linux-gnu.cmake"
# -sys crates that link a system library find its libfoo-dev:arm64.
export PKG_CONFIG_ALLOW_CROSS=1
export PKG_CONFIG_LIBDIR_aarch64_unknown_linux_gnu=/usr/lib/aarch64-linux-gnu/pkgconfig:/usr/share/pkgconfig

t0=$(date +%s)
say() { printf '  [aarch64 %4ss] %s\n' "$(( $(date +%s) - t0 ))" "$*"; }

for tool in "$RUSTC" "$CARGO" aarch64-linux-gnu-gcc aarch64-linux-gnu-g++ qemu-aarch64 cmake; do
  command -v "$tool" >/dev/null || { echo "aarch64.sh: $tool missing (run tests/setup)" >&2; exit 1; }
done
[ -d "$("$RUSTC" --print sysroot)/lib/rustlib/$T/lib" ] \
  || { echo "aarch64.sh: no $T std for $RUSTC (apt-get install libstd-rust-web-dev:arm64)" >&2; exit 1; }

# binfmt_misc: lets the kernel exec aarch64 binaries (through qemu-aarch64-static).
binfmt=/proc/sys/fs/binfmt_misc
if [ "$(id -u)" -eq 0 ]; then
  [ -e "$binfmt/register" ] || mount -t binfmt_misc binfmt_misc "$binfmt" 2>/dev/null || true
  if [ -e "$binfmt/register" ] && ! grep -qx enabled "$binfmt/qemu-aarch64" 2>/dev/null; then
    update-binfmts --enable qemu-aarch64 >/dev/null 2>&1 || true
  fi
fi

say "release build: botcalld"
"$CARGO" build --release --locked --target "$T" -p botcalld --bins
bin="$CARGO_TARGET_DIR/$T/release/botcalld"
say "botcalld $(file -b "$bin" | cut -d, -f1-2): $(stat -c %s "$bin") bytes (stripped, PWA inside)"
qemu-aarch64 -L / "$bin" --version

# Can the kernel exec an aarch64 program directly (as the integration tests do)?
direct_exec=0
if "$bin" --version >/dev/null 2>&1; then direct_exec=1; fi
say "direct exec of aarch64 binaries (binfmt_misc): $([ $direct_exec = 1 ] && echo yes || echo NO)"

# The arm64 .deb: packaged, installed with dpkg -i, run from /usr/bin, purged.
if [ $run_tests = 1 ] && [ $direct_exec = 1 ] && command -v cargo-deb >/dev/null; then
  say "arm64 .deb: tests/deb --arm64"
  tests/deb --arm64
fi

# The integration tests of the smoke suite (see the top of this file).
smoke=(--test http_api --test ws_signaling --test sdk_call)
if [ $all_tests = 1 ]; then
  say "debug build: workspace, all features (SDK with codec/opus, example bots, tests)"
  "$CARGO" build --locked --target "$T" --workspace --all-features --bins --examples --tests
else
  say "debug build: workspace, all features (SDK with codec/opus, example bots, smoke tests)"
  "$CARGO" build --locked --target "$T" --workspace --all-features --bins --examples --lib
  "$CARGO" test --no-run --locked --target "$T" --workspace --all-features --lib --bins
  "$CARGO" test --no-run --locked --target "$T" -p botcall-core --tests
  "$CARGO" test --no-run --locked --target "$T" -p botcalld --all-features "${smoke[@]}"
fi

if [ $release_all = 1 ]; then
  say "release build: SDK and example bots"
  "$CARGO" build --release --locked --target "$T" --workspace --all-features --bins --examples
  ls -l "$CARGO_TARGET_DIR/$T/release/examples/" 2>/dev/null | grep -v '\.d$' || true
fi

[ $run_tests = 1 ] || { say "done (build only)"; exit 0; }

if [ $direct_exec = 1 ] && [ $all_tests = 1 ]; then
  say "cargo test under qemu: workspace, all features"
  "$CARGO" test --locked --no-fail-fast --target "$T" --workspace --all-features
  say "done: built and tested under qemu"
elif [ $direct_exec = 1 ]; then
  say "cargo test under qemu: unit tests of every crate"
  "$CARGO" test --locked --no-fail-fast --target "$T" --workspace --all-features --lib --bins
  say "cargo test under qemu: botcall-core vectors and malformed input"
  "$CARGO" test --locked --no-fail-fast --target "$T" -p botcall-core --tests
  say "cargo test under qemu: daemon HTTP API, WebSocket signaling, one real call"
  "$CARGO" test --locked --no-fail-fast --target "$T" -p botcalld --all-features "${smoke[@]}"
  say "done: built and smoke-tested under qemu (cross/aarch64.sh --all runs everything)"
else
  say "binfmt_misc is not available: running unit tests and doctests only"
  "$CARGO" test --locked --no-fail-fast --target "$T" --workspace --all-features --lib --bins
  "$CARGO" test --locked --target "$T" --workspace --all-features --doc
  echo "aarch64.sh: integration tests (tests/*.rs) were built but NOT run: they exec the aarch64" >&2
  echo "  daemon directly, which needs binfmt_misc + qemu-aarch64 (mount it / update-binfmts as root)." >&2
  exit 3
fi
