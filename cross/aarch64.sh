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

# T, CARGO, RUSTC and the target's toolchain variables; tool checks; binfmt_misc.
who=aarch64.sh
source cross/aarch64-env.sh
# Debian's compiler in its own target folder, so the two compilers never
# invalidate each other's builds.
export CARGO_TARGET_DIR=${CROSS_TARGET_DIR:-target/debian-cross}

t0=$(date +%s)
say() { printf '  [aarch64 %4ss] %s\n' "$(( $(date +%s) - t0 ))" "$*"; }

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
