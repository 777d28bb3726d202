# botcalld in an empty image: one static binary (glibc, +crt-static), no shell,
# no libraries, running as an unprivileged numeric user; the build image's CA
# bundle is the one other file of note (push_ca_file: whom Web Push trusts).
#
#   docker build -t botcalld .                                  # this machine's architecture
#   docker buildx build --platform linux/amd64,linux/arm64 -t botcalld .
#
# Without a Docker daemon, container/build-image writes the same image (this
# file's final stage is its specification: it reads the USER, ENV, WORKDIR,
# ENTRYPOINT, CMD, EXPOSE, VOLUME, HEALTHCHECK and LABEL lines below) as OCI
# archives for amd64 and arm64. docs/deploy.md has `docker run` and compose.

# The build stage runs on the build machine's platform and cross-compiles for
# the target's (no emulation): Rust's gnu targets with a static C library.
FROM --platform=$BUILDPLATFORM rust:1-bookworm AS build
ARG TARGETARCH
RUN set -eu; \
    case "$TARGETARCH" in \
      amd64) echo x86_64-unknown-linux-gnu > /target ;; \
      arm64) echo aarch64-unknown-linux-gnu > /target; \
             apt-get update -qq && apt-get install -y -qq --no-install-recommends gcc-aarch64-linux-gnu libc6-dev-arm64-cross ;; \
      *) echo "unsupported TARGETARCH $TARGETARCH" >&2; exit 1 ;; \
    esac; \
    rustup target add "$(cat /target)"
WORKDIR /src
COPY . .
ENV CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc \
    CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc
# --target keeps build scripts and proc-macros dynamic; only botcalld is static.
RUN T="$(cat /target)" && \
    RUSTFLAGS="-C target-feature=+crt-static" \
      cargo build --release --locked --target "$T" -p botcalld --bin botcalld && \
    mkdir -p /rootfs/etc/ssl/certs /rootfs/var/lib/botcall && \
    cp "target/$T/release/botcalld" /rootfs/botcalld && \
    cp /etc/ssl/certs/ca-certificates.crt /rootfs/etc/ssl/certs/ && \
    printf 'root:x:0:0::/:/botcalld\nbotcall:x:10001:10001::/var/lib/botcall:/botcalld\n' > /rootfs/etc/passwd && \
    printf 'root:x:0:\nbotcall:x:10001:\n' > /rootfs/etc/group && \
    printf 'hosts: files dns\n' > /rootfs/etc/nsswitch.conf && \
    chown 10001:10001 /rootfs/var/lib/botcall && chmod 0700 /rootfs/var/lib/botcall

FROM scratch
COPY --from=build /rootfs/ /
USER 10001:10001
ENV BOTCALL_STATE_DIR=/var/lib/botcall
WORKDIR /var/lib/botcall
EXPOSE 8080/tcp 3478/udp
VOLUME ["/var/lib/botcall"]
HEALTHCHECK --interval=30s --timeout=10s --start-period=5s --retries=3 CMD ["/botcalld", "healthcheck"]
LABEL org.opencontainers.image.title="botcalld" \
      org.opencontainers.image.description="BotCall daemon: bot registry, call signaling, STUN, the PWA" \
      org.opencontainers.image.licenses="MIT OR Apache-2.0"
ENTRYPOINT ["/botcalld"]
CMD []
