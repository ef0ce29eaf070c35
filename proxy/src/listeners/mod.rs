//! The listeners: where connections come in (outbound, inbound, captured, gateway, TCP,
//! admin, metrics), each behind the caps of `guard`.

pub mod bound;
pub mod capture;
pub mod guard;
pub mod inbound;
pub mod tcp;

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tracing::debug;

use crate::Shared;

/// A gateway listener: the Gateway server on `port`, TCP or HTTP as the config says.
pub(crate) async fn serve_gateway(listener: TcpListener, port: u16, shared: Arc<Shared>) {
    let state = shared.listener("gateway");
    loop {
        let (stream, peer, permit) = guard::accept(&listener, &state).await;
        let _ = stream.set_nodelay(true);
        let shared = shared.clone();
        tokio::spawn(async move {
            let snapshot = shared.snapshot.load_full();
            if let Some(servers) = snapshot.gateway_tls(port).cloned() {
                drop(snapshot);
                serve_gateway_tls(shared, stream, peer, port, permit, servers).await;
                return;
            }
            if let Some(t) = snapshot.gateway_tcp(port) {
                // As any outbound TCP connection: the route's cluster, mTLS and the peer
                // exchange to a mesh endpoint, counted in `istio_tcp_*` by the gateway.
                let Some(cluster) = t.pick_cluster().cloned() else {
                    debug!(port, "gateway TCP server has no cluster; closing the connection");
                    return;
                };
                relay_gateway(&shared, snapshot, stream, port, cluster, true, &permit).await;
                return;
            }
            drop(snapshot);
            let from = Downstream { client: peer, gateway_port: Some(port), original_dst: None, listener_port: None };
            guard::serve_http(stream, &permit, peer, move |req| {
                crate::http::outbound::outbound(shared.clone(), from, req)
            })
            .await;
        });
    }
}

/// A gateway port whose servers take TLS: the ClientHello's SNI picks the server; PASSTHROUGH
/// relays the bytes by the `tls` routes, the other modes terminate and then serve HTTP (or the
/// port's TCP route).
async fn serve_gateway_tls(
    shared: Arc<Shared>,
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    port: u16,
    permit: guard::ConnPermit,
    servers: Arc<Vec<crate::tls_config::GatewayServer>>,
) {
    use mesh_api::proxy_config::GatewayTlsMode;
    // The ClientHello within the handshake timeout, and the connection given up if a full
    // listener evicts it meanwhile (it has sent no request).
    let wait = permit.listener().limits.tls_handshake;
    let Some(sni) = permit.unless_evicted(crate::tls::peek_sni_within(&stream, wait)).await else { return };
    // A sidecar's mesh mTLS names no SNI (it dials an address): an ISTIO_MUTUAL server takes it.
    let istio_mutual = || servers.iter().find(|s| s.mode == GatewayTlsMode::IstioMutual);
    let picked =
        crate::tls_config::pick(&servers, sni.as_deref()).or_else(|| sni.is_none().then(istio_mutual).flatten());
    let Some(server) = picked else {
        debug!(port, ?sni, "no gateway TLS server takes this SNI; closing the connection");
        return;
    };
    let snapshot = shared.snapshot.load_full();
    let tcp_route = snapshot.gateway_tcp(port).cloned();
    let config = match server.mode {
        GatewayTlsMode::Passthrough | GatewayTlsMode::AutoPassthrough => {
            let Some(cluster) = tcp_route.as_ref().and_then(|t| t.pick_by_sni(sni.as_deref())).cloned() else {
                debug!(port, ?sni, "no tls route for this SNI; closing the connection");
                return;
            };
            // AUTO_PASSTHROUGH carries a sidecar's own mTLS to the endpoint: not wrapped again.
            let mesh_tls = server.mode != GatewayTlsMode::AutoPassthrough;
            relay_gateway(&shared, snapshot, stream, port, cluster, mesh_tls, &permit).await;
            return;
        }
        GatewayTlsMode::IstioMutual => shared.identity.state().server.clone(),
        _ => server.config.as_ref().ok().cloned(),
    };
    drop(snapshot);
    let Some(config) = config else {
        debug!(server = %server.name, "gateway TLS server has no usable certificate; closing the connection");
        return;
    };
    let accept = tokio_rustls::TlsAcceptor::from(config).accept(stream);
    let Some(Ok(mut tls)) = guard::handshake(permit.listener(), accept).await else { return };
    if !server.admits_client(tls.get_ref().1.peer_certificates()) {
        debug!(server = %server.name, "client certificate has none of the server's subjectAltNames");
        return;
    }
    // A sidecar relaying TCP over mesh mTLS says first who it comes from, as at an inbound port.
    if tls.get_ref().1.alpn_protocol() == Some(crate::tls::ALPN_PEER_EXCHANGE) {
        let me = shared.me_header.as_ref().map_or(&[][..], |h| h.as_bytes());
        match permit.unless_evicted(crate::upstream::connect::exchange_as_server(&mut tls, me)).await {
            Some(Ok(_)) => {}
            Some(Err(e)) => {
                debug!(%peer, error = %e, "peer metadata exchange failed; closing");
                return;
            }
            None => return,
        }
    }
    if let Some(t) = tcp_route {
        let Some(cluster) = t.pick_cluster().cloned() else { return };
        relay_gateway(&shared, shared.snapshot.load_full(), tls, port, cluster, true, &permit).await;
        return;
    }
    let from = Downstream { client: peer, gateway_port: Some(port), original_dst: None, listener_port: None };
    guard::serve_http(tls, &permit, peer, move |req| crate::http::outbound::outbound(shared.clone(), from, req)).await;
}

/// A gateway connection relayed to `cluster` as any outbound TCP connection: the route's
/// endpoint (over mesh mTLS when it takes it and `mesh_tls`), the peer exchange, and
/// `istio_tcp_*` counted by the gateway.
async fn relay_gateway<S>(
    shared: &Shared,
    snapshot: Arc<crate::config::Snapshot>,
    mut stream: S,
    port: u16,
    cluster: Arc<crate::upstream::cluster::ClusterState>,
    mesh_tls: bool,
    permit: &guard::ConnPermit,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let up = crate::upstream::tcp::tcp_upstream_with(shared, &snapshot, "", port, None, Some(cluster), mesh_tls).await;
    drop(snapshot);
    let up = match up {
        Ok(up) => up,
        Err(why) => return debug!(port, ?why, "gateway TCP server has no upstream; closing the connection"),
    };
    let mut upstream = up.stream;
    let target = (up.upstream_host, up.upstream_cluster.as_str());
    let started = std::time::SystemTime::now();
    tcp::relay_tcp(shared, &mut stream, &mut upstream, &up.labels, "outbound", started, target, permit, up.idle).await;
}

/// Where an outbound request came from, known once per connection and handed to the request
/// path with each request (a request's extension map would cost allocations per request).
#[derive(Debug, Clone, Copy)]
pub struct Downstream {
    /// The app connection's address, for consistent hashing by source IP.
    pub client: SocketAddr,
    /// The Gateway server port the request came in on (gateway listeners only).
    pub gateway_port: Option<u16>,
    /// A captured connection's original destination (`proxy init`).
    pub original_dst: Option<SocketAddr>,
    /// The port of the Sidecar egress listener the request came in on: the port to route on
    /// when the Host carries none.
    pub listener_port: Option<u16>,
}

/// Who is on the other end of an inbound connection.
#[derive(Debug, Clone)]
pub struct PeerInfo {
    /// The peer proxy's SPIFFE ID (mTLS connections only).
    pub identity: Option<String>,
    pub remote: SocketAddr,
    pub local: SocketAddr,
    /// The `x-forwarded-client-cert` the app is told for this peer (made once per connection).
    pub xfcc: Option<::http::HeaderValue>,
    /// The peer workload, as it said in the TCP metadata exchange (mTLS only, its namespace
    /// checked against its certificate).
    pub metadata: Option<Arc<crate::telemetry::metrics::Peer>>,
}

impl PeerInfo {
    fn new(shared: &Shared, identity: Option<String>, remote: SocketAddr, local: SocketAddr) -> PeerInfo {
        let xfcc = identity
            .as_ref()
            .and_then(|id| ::http::HeaderValue::from_str(&format!("By={};URI={id}", shared.identity.uri)).ok());
        PeerInfo { identity, remote, local, xfcc, metadata: None }
    }
}

pub(crate) async fn bind(addr: SocketAddr, what: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr).await.with_context(|| {
        format!("cannot listen on {addr} for the {what} listener (port taken? use port 0 for any free port)")
    })
}

/// The outbound listener: the app's requests, routed by the mesh's rules.
pub(crate) async fn serve_outbound(listener: TcpListener, shared: Arc<Shared>) {
    let state = shared.listener("outbound");
    loop {
        let (stream, peer, permit) = guard::accept(&listener, &state).await;
        let _ = stream.set_nodelay(true);
        let shared = shared.clone();
        tokio::spawn(async move {
            let from = Downstream { client: peer, gateway_port: None, original_dst: None, listener_port: None };
            guard::serve_http(stream, &permit, peer, move |req| {
                crate::http::outbound::outbound(shared.clone(), from, req)
            })
            .await;
        });
    }
}

/// An HTTP/1.1 server for the local admin and metrics listeners, with a header timeout.
fn local_http1(limits: &guard::Limits) -> hyper::server::conn::http1::Builder {
    let mut b = hyper::server::conn::http1::Builder::new();
    b.timer(hyper_util::rt::TokioTimer::new()).header_read_timeout(limits.request_headers);
    b
}

/// The admin API listener.
pub(crate) async fn serve_admin(listener: TcpListener, shared: Arc<Shared>) {
    serve_local(listener, shared, "admin", crate::admin::handle).await;
}

/// The Prometheus listener (`/stats/prometheus`).
pub async fn serve_metrics(listener: TcpListener, shared: Arc<Shared>) {
    serve_local(listener, shared, "metrics", |s: Arc<Shared>, req: hyper::Request<hyper::body::Incoming>| async move {
        Ok(crate::admin::metrics(&s, &req))
    })
    .await;
}

/// A local HTTP/1.1 listener with its own small connection cap: `handle` answers each request.
async fn serve_local<F, Fut>(listener: TcpListener, shared: Arc<Shared>, name: &'static str, handle: F)
where
    F: Fn(Arc<Shared>, hyper::Request<hyper::body::Incoming>) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<
            Output = Result<hyper::Response<http_body_util::Full<bytes::Bytes>>, std::convert::Infallible>,
        > + Send
        + 'static,
{
    let state = shared.listener(name);
    loop {
        let (stream, _, permit) = guard::accept(&listener, &state).await;
        let (s, handle) = (shared.clone(), handle.clone());
        tokio::spawn(async move {
            let _permit = permit;
            let builder = local_http1(&s.limits);
            let svc = service_fn(move |req| handle(s.clone(), req));
            let _ = builder.serve_connection(TokioIo::new(stream), svc).await;
        });
    }
}
