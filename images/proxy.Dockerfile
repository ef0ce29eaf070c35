# The sidecar proxy; the same image runs the `proxy init` init container, which needs iptables
# (and NET_ADMIN), so the base is Debian slim rather than distroless. Build from the root:
#   docker build -f images/proxy.Dockerfile -t ghcr.io/mesh/proxy:0.1.0 .
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin proxy \
 && strip target/release/proxy

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends iptables ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --gid 1337 mesh-proxy \
 && useradd --uid 1337 --gid 1337 --no-create-home --shell /usr/sbin/nologin mesh-proxy
COPY --from=build /src/target/release/proxy /usr/local/bin/proxy
# The proxy runs as 1337 (the uid `proxy init` leaves uncaptured); the init container
# overrides this with runAsUser 0 and the NET_ADMIN/NET_RAW capabilities.
USER 1337:1337
EXPOSE 15001 15006 15020
ENTRYPOINT ["/usr/local/bin/proxy"]
