#!/usr/bin/env bash
# Proves the no_std crates need neither std nor an allocator: builds them for
# a real bare-metal target (thumbv7em-none-eabihf, Cortex-M4F) with only
# `core` available (-Zbuild-std=core; no alloc). Any `std` or `alloc` use
# anywhere in their dependency trees fails the build (E0463).
#
# Debian's rustc-web and its rust-web-src match exactly, which -Zbuild-std
# needs (rustup's nightly source does not match; nothing is downloaded).
# RUSTC_BOOTSTRAP=1 unlocks -Z on that stable compiler. Recipe:
# ../shared/notes/cross-aarch64.md.
set -euo pipefail
cd "$(dirname "$0")/.."

T=thumbv7em-none-eabihf
export RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc RUSTC_BOOTSTRAP=1
export CARGO_TARGET_DIR=${CROSS_TARGET_DIR:-target/debian-cross}
[ -d "$("$RUSTC" --print sysroot)/lib/rustlib/src/rust/library/core" ] \
  || { echo "no_std.sh: no Rust source for $RUSTC (apt-get install rust-web-src)" >&2; exit 1; }

t0=$(date +%s)
check() {
  echo "  [no_std $(( $(date +%s) - t0 ))s] $T, core only: $*"
  /usr/bin/cargo build --locked -Zbuild-std=core --target "$T" "$@"
}
# botcall-core: verification only, and with token signing (RFC 6979, no RNG).
check -p botcall-core --no-default-features
check -p botcall-core --no-default-features --features sign
# botcall-sdk: the sans-IO signaling core, without the std transport.
check -p botcall-sdk --no-default-features
echo "  [no_std $(( $(date +%s) - t0 ))s] ok: botcall-core and botcall-sdk build with core alone"
