//! Inbound listeners: mTLS, plaintext or both (PeerAuthentication), per workload port or on
//! the captured port, then HTTP or raw TCP to the app.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};
use tracing::debug;

use crate::config::AppAddr;
use crate::listeners::capture;
use crate::listeners::guard;
use crate::listeners::tcp::relay_tcp;
use crate::policy::authz;
use crate::telemetry::metrics;
use crate::upstream::connect::{self, Stream};
use crate::{PeerInfo, Shared, tls};

/// How long an inbound connection may take to send its first byte (PERMISSIVE detection).
const FIRST_BYTE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// A TLS record starts with content type 22 (handshake).
const TLS_HANDSHAKE: u8 = 0x16;

/// An inbound listener: mTLS, plaintext or both (PeerAuthentication), then the app.
pub(crate) async fn serve_inbound(listener: TcpListener, port: u16, app: SocketAddr, shared: Arc<Shared>) {
    let state = shared.listener("inbound");
    loop {
        let (stream, remote, permit) = guard::accept(&listener, &state).await;
        let _ = stream.set_nodelay(true);
        tokio::spawn(handle_inbound(shared.clone(), stream, remote, port, app, None, permit));
    }
}

/// One inbound connection for workload `port`: mTLS, plaintext or both (PeerAuthentication),
/// then the app: where a Sidecar's `defaultEndpoint` says, else `app`. `original` is the
/// destination of a redirected connection.
pub(crate) async fn handle_inbound(
    shared: Arc<Shared>,
    stream: TcpStream,
    remote: SocketAddr,
    port: u16,
    app: SocketAddr,
    original: Option<SocketAddr>,
    permit: guard::ConnPermit,
) {
    let local = stream.local_addr().unwrap_or(remote);
    let app = Target { default: app, own_ip: original.map_or(local.ip(), |o| o.ip()) };
    let mut first = [0u8; 1];
    let is_tls = match permit.unless_evicted(tokio::time::timeout(FIRST_BYTE_TIMEOUT, stream.peek(&mut first))).await {
        Some(Ok(Ok(1))) => first[0] == TLS_HANDSHAKE,
        _ => return, // closed, failed, silent, or evicted by a full listener
    };
    let mode = shared.snapshot.load().peer_mode(port);
    match (is_tls, mode) {
        (false, mesh_api::proxy_config::PeerMode::Strict) => {
            debug!(port, %remote, "plaintext connection refused: mTLS is STRICT on this port");
        }
        (true, mesh_api::proxy_config::PeerMode::Disable) => {
            debug!(port, %remote, "TLS connection refused: mTLS is DISABLEd on this port");
        }
        (false, _) => {
            let peer = PeerInfo::new(&shared, None, remote, local);
            serve_inbound_stream(shared, stream, port, app, peer, permit).await;
        }
        (true, _) => {
            let Some(config) = shared.identity.state().server.clone() else {
                debug!(%remote, "TLS connection refused: no certificate yet");
                return;
            };
            let accepted = guard::handshake(permit.listener(), tokio_rustls::TlsAcceptor::from(config).accept(stream));
            let mut tls = match permit.unless_evicted(accepted).await.flatten() {
                Some(Ok(t)) => t,
                Some(Err(e)) => {
                    debug!(%remote, error = %e, "mTLS handshake failed");
                    return;
                }
                None => {
                    debug!(%remote, "mTLS handshake timed out");
                    return;
                }
            };
            let identity = tls::peer_identity(tls.get_ref().1.peer_certificates());
            let mut peer = PeerInfo::new(&shared, identity, remote, local);
            // A TCP connection from another proxy says first who it comes from.
            if tls.get_ref().1.alpn_protocol() == Some(tls::ALPN_PEER_EXCHANGE) {
                let me = shared.me_header.as_ref().map_or(&[][..], |h| h.as_bytes());
                match permit.unless_evicted(connect::exchange_as_server(&mut tls, me)).await {
                    Some(Ok(value)) => {
                        peer.metadata = peer.identity.as_deref().and_then(|id| shared.peer_named(&value, id))
                    }
                    Some(Err(e)) => {
                        debug!(%remote, error = %e, "peer metadata exchange failed; closing");
                        return;
                    }
                    None => return,
                }
            }
            serve_inbound_stream(shared, tls, port, app, peer, permit).await;
        }
    }
}

/// Inbound connections the kernel redirected (`proxy init`, Istio's 15006): the original
/// destination's port picks the workload port; its app is the `--inbound` one for that port,
/// else the same port on loopback.
pub(crate) async fn serve_inbound_capture(listener: TcpListener, apps: Vec<(u16, SocketAddr)>, shared: Arc<Shared>) {
    let state = shared.listener("captured_inbound");
    loop {
        let (stream, remote, permit) = guard::accept(&listener, &state).await;
        let _ = stream.set_nodelay(true);
        let dst = match capture::original_dst(&stream) {
            Ok(d) if stream.local_addr().is_ok_and(|l| l != d) => d,
            _ => {
                debug!(%remote, "inbound connection was not redirected; closing");
                continue;
            }
        };
        let port = dst.port();
        let app = apps
            .iter()
            .find(|(p, _)| *p == port)
            .map(|(_, a)| *a)
            .unwrap_or_else(|| SocketAddr::new(std::net::Ipv4Addr::LOCALHOST.into(), port));
        tokio::spawn(handle_inbound(shared.clone(), stream, remote, port, app, Some(dst), permit));
    }
}

/// One accepted inbound connection (TLS already terminated): raw TCP to the app for a TCP
/// port (after authorization), else HTTP.
async fn serve_inbound_stream<S>(
    shared: Arc<Shared>,
    mut stream: S,
    port: u16,
    app: Target,
    peer: PeerInfo,
    permit: guard::ConnPermit,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let snapshot = shared.snapshot.load_full();
    if snapshot.inbound_is_tcp(port) {
        let decision = snapshot.authz.check_tcp(&authz::Request {
            method: "",
            path: "",
            host: "",
            headers: &::http::HeaderMap::new(),
            port,
            peer: peer.identity.as_deref(),
            source_ip: peer.remote.ip(),
            destination_ip: peer.local.ip(),
            jwt: None,
        });
        let app = app.now(&snapshot, port);
        drop(snapshot);
        if let authz::Decision::Deny(why) = decision {
            debug!(peer = ?peer.identity, %why, "TCP connection denied; closing it");
            return; // dropping the stream closes the connection
        }
        let connected = match &app {
            AppAddr::Tcp(a) => TcpStream::connect(a).await.map(|s| {
                let _ = s.set_nodelay(true);
                Stream::Plain(s)
            }),
            AppAddr::Unix(p) => tokio::net::UnixStream::connect(&**p).await.map(Stream::Unix),
        };
        let mut upstream = match connected {
            Ok(s) => s,
            Err(e) => {
                debug!(app = %app.pool_address(), error = %e, "cannot reach the app");
                return;
            }
        };
        // Who called: as it said in the metadata exchange, else what its certificate says (its
        // namespace, not its workload).
        let source = match &peer.metadata {
            Some(p) => p.clone(),
            None => {
                let mut source = (*metrics::unknown_peer()).clone();
                if let Some(id) = peer.identity.as_deref().and_then(|i| mesh_api::identity::SpiffeId::parse(i).ok()) {
                    source.namespace = id.namespace;
                }
                Arc::new(source)
            }
        };
        let policy = if peer.identity.is_some() { "mutual_tls" } else { "none" };
        let labels = metrics::TcpLabels::new(
            "destination",
            (&source, peer.identity.as_deref().unwrap_or("")),
            (&shared.me, &shared.identity.uri),
            "unknown",
            policy,
        );
        let upstream_cluster = format!("inbound|{port}||");
        let target = (app.pool_address(), upstream_cluster.as_str());
        let started = std::time::SystemTime::now();
        relay_tcp(&shared, &mut stream, &mut upstream, &labels, "inbound", started, target, &permit, None).await;
        return;
    }
    drop(snapshot);
    let remote = peer.remote;
    let peer = Arc::new(peer);
    let default: Arc<str> = Arc::from(app.default.to_string());
    guard::serve_http(stream, &permit, remote, move |req| {
        // Per request: a Sidecar's endpoint may change under a long-lived connection.
        let to = match shared.snapshot.load().inbound_app(port, app.own_ip) {
            None => default.clone(),
            Some(a) => Arc::from(a.pool_address()),
        };
        crate::http::inbound::inbound(shared.clone(), to, port, peer.clone(), req)
    })
    .await;
}

/// Where an inbound connection's app is: a Sidecar's `defaultEndpoint` for the port when the
/// config in force has one (`own_ip` stands for an unspecified IP), else `default`.
#[derive(Clone, Copy)]
struct Target {
    default: SocketAddr,
    own_ip: std::net::IpAddr,
}

impl Target {
    fn now(&self, snapshot: &crate::config::Snapshot, port: u16) -> AppAddr {
        snapshot.inbound_app(port, self.own_ip).unwrap_or(AppAddr::Tcp(self.default))
    }
}
