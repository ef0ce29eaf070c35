# meshd, the control plane. Build from the repository root:
#   docker build -f images/meshd.Dockerfile -t ghcr.io/mesh/meshd:0.1.0 .
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin meshd \
 && strip target/release/meshd

# glibc and CA certificates, nothing else; runs as the distroless non-root user.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/meshd /usr/local/bin/meshd
USER 65532:65532
EXPOSE 15010 15012 15014 15017
ENTRYPOINT ["/usr/local/bin/meshd"]
