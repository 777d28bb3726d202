# Sourced (not run) by cross/aarch64.sh and container/build-image: the one way
# this repository sets up the aarch64-unknown-linux-gnu toolchain — Debian's
# rustc-web with its arm64 std (rustup has none here), the cross gcc, qemu-user
# — and lets the kernel exec aarch64 programs (binfmt_misc, when root).
# Sets T, CARGO, RUSTC, RUSTDOC and the target's linker/runner/C variables; the
# caller picks CARGO_TARGET_DIR. `who` names the caller in error messages.
# Needs (tests/setup installs them): rustc-web cargo-web gcc-aarch64-linux-gnu
# g++-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user qemu-user-static
# binfmt-support libstd-rust-web-dev:arm64 cmake.
who=${who:-aarch64-env.sh}
_cross_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

T=aarch64-unknown-linux-gnu
CARGO=/usr/bin/cargo
# Debian's compiler, not rustup's (which has no arm64 std).
export RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc
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
export CMAKE_TOOLCHAIN_FILE_aarch64_unknown_linux_gnu="$_cross_dir/aarch64-linux-gnu.cmake"
# -sys crates that link a system library find its libfoo-dev:arm64.
export PKG_CONFIG_ALLOW_CROSS=1
export PKG_CONFIG_LIBDIR_aarch64_unknown_linux_gnu=/usr/lib/aarch64-linux-gnu/pkgconfig:/usr/share/pkgconfig

for tool in "$RUSTC" "$CARGO" aarch64-linux-gnu-gcc aarch64-linux-gnu-g++ qemu-aarch64 cmake; do
  command -v "$tool" >/dev/null || { echo "$who: $tool missing (run tests/setup)" >&2; exit 1; }
done
[ -d "$("$RUSTC" --print sysroot)/lib/rustlib/$T/lib" ] \
  || { echo "$who: no $T std for $RUSTC (apt-get install libstd-rust-web-dev:arm64)" >&2; exit 1; }

# binfmt_misc: lets the kernel exec aarch64 binaries (through qemu-aarch64-static).
binfmt=/proc/sys/fs/binfmt_misc
if [ "$(id -u)" -eq 0 ]; then
  [ -e "$binfmt/register" ] || mount -t binfmt_misc binfmt_misc "$binfmt" 2>/dev/null || true
  if [ -e "$binfmt/register" ] && ! grep -qx enabled "$binfmt/qemu-aarch64" 2>/dev/null; then
    update-binfmts --enable qemu-aarch64 >/dev/null 2>&1 || true
  fi
fi
