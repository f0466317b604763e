# syntax=docker/dockerfile:1
# The stratus operator: a static musl binary on distroless, running as non-root 65532.
#
#   docker build -t stratus .
#   docker run --rm stratus --help

ARG RUST_VERSION=1.89
FROM rust:${RUST_VERSION}-alpine AS builder
# ring (TLS) compiles C and assembly.
RUN apk add --no-cache musl-dev
WORKDIR /src
COPY . .
# Build caches survive between builds (BuildKit); the binary is copied out of the cached target/.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin stratus \
 && install -m 0755 target/release/stratus /stratus \
 && /stratus --version

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=builder /stratus /stratus
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/stratus"]
CMD ["run"]
