# syntax=docker/dockerfile:1
#
# Image of the one gwen-segment binary: `docker build -t gwen-segment .`
# The entrypoint is the binary, so the container's command is the subcommand and its flags,
# for example `docker run gwen-segment forwarder --help`.
#
# NOTE: this Dockerfile has not been built yet: the machines it was written on have no Docker
# engine. scripts/check-deploy checks the Helm chart and docker-compose.yml against the binary,
# not this file.

# Rust on Debian bookworm, the same Debian release as the runtime stage, so the binary links the
# libssl3 and zlib that the runtime image installs. The crate uses edition 2024 (Rust 1.85 or newer).
ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-bookworm AS builder

# rdkafka builds librdkafka from source with its `ssl` and `libz` features: cmake and a C
# toolchain for the build, pkg-config to find OpenSSL and zlib, and their headers.
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        build-essential cmake pkg-config libssl-dev zlib1g-dev \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /build
COPY Cargo.toml Cargo.lock ./
COPY src ./src

# The cache mounts keep downloaded crates and compiled dependencies between builds (BuildKit).
# The binary is copied out of the cached target folder, which the next stage cannot see.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/build/target \
    cargo build --release --locked --bin gwen-segment \
    && install -D -m 0755 target/release/gwen-segment /out/gwen-segment

FROM debian:bookworm-slim AS runtime

# ca-certificates: TLS to Segment and to SASL_SSL brokers. libssl3: librdkafka's TLS.
# bash, coreutils and grep ship with the slim image; docker-compose.yml's health checks use them.
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        ca-certificates libssl3 \
    && rm -rf /var/lib/apt/lists/*

# A fixed uid and gid, so Kubernetes can check runAsNonRoot and file ownership without a passwd
# lookup. The Helm chart runs the container as the same ids.
RUN groupadd --gid 10001 gwen \
    && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin gwen

COPY --from=builder /out/gwen-segment /usr/local/bin/gwen-segment

USER 10001:10001

# 8080: webhooks (receiver). 9090: /healthz and /readyz (receiver and forwarder).
EXPOSE 8080 9090

ENTRYPOINT ["/usr/local/bin/gwen-segment"]
CMD ["--help"]
