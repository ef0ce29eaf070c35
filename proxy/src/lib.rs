//! The sidecar proxy: an outbound listener that routes the app's requests by the mesh's
//! rules, one inbound listener per workload port, the discovery client, and the admin API.
//!
//! The request path reads config through an `ArcSwap`: no lock, one atomic load per request.

pub mod admin;
pub mod args;
pub mod authz;
pub mod capture;
pub mod config;
pub mod connect;
pub mod guard;
pub mod http;
pub mod init;
pub mod jwt;
pub mod metrics;
pub mod tls;
pub mod trace;
pub mod xds;

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::Context;
use arc_swap::ArcSwap;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use mesh_api::protocol::{InboundPort, Workload};
use tokio::net::{TcpListener, TcpStream};
use tracing::{debug, info};

pub use xds::MeshdSource;

/// State shared by every listener of one proxy.
pub struct Shared {
    pub workload: Workload,
    pub snapshot: Arc<ArcSwap<config::Snapshot>>,
    pub identity: Arc<tls::Identity>,
    pub ready: AtomicBool,
    /// To apps: HTTP/1.1, and h2c for HTTP/2 requests (gRPC).
    pub client: http::HttpClient,
    pub client_h2: http::HttpClient,
    /// h2c to each app address, with the request's own authority (see `http::FixedConnector`).
    pub app_h2: std::sync::Mutex<HashMap<String, http::AppH2Client>>,
    /// To other proxies over HTTP/1.1 (mTLS or plaintext).
    pub mesh_h1: http::MeshClient,
    /// To other proxies over HTTP/2 (ALPN h2 on mTLS, h2c on plaintext).
    pub mesh_h2: http::MeshClient,
    /// Carry every request over HTTP/2 between proxies (Istio's h2UpgradePolicy UPGRADE);
    /// otherwise each request keeps the protocol the app used.
    pub upgrade_h2: bool,
    pub jwks: jwt::JwksCache,
    /// Clients for clusters with their own connection settings, made on first use.
    pool_clients: std::sync::Mutex<std::collections::HashMap<(config::PoolSettings, bool), Arc<http::MeshClient>>>,
    /// Told through the admin API (`/quitquitquit`) to stop.
    pub quit: tokio::sync::Notify,
    pub metrics: Arc<metrics::Metrics>,
    /// Caps and timeouts for downstream connections.
    pub limits: guard::Limits,
    /// This proxy's mark in `x-mesh-via` (random per process), to see its own requests again.
    pub via: String,
    /// `via` as a header value, made once.
    pub via_header: ::http::HeaderValue,
    /// Every address this proxy listens on: a request sent to one of them would loop.
    pub listening: Vec<SocketAddr>,
    /// This workload, as metrics and peers name it.
    pub me: metrics::Peer,
    /// `me` as the metadata-exchange header value, made once.
    pub me_header: Option<::http::HeaderValue>,
    /// Peers named by their metadata-exchange headers, parsed once.
    pub peers: metrics::PeerCache,
    /// `--access-log`: log every request whatever the mesh config says.
    pub access_log: bool,
    /// Finished spans on their way to the collector the config names.
    pub tracer: trace::Tracer,
    /// Why the last attempt to reach meshd failed (cleared once meshd welcomes this proxy);
    /// shown by the admin API's `/ready` while the proxy is not ready.
    pub discovery_error: std::sync::Mutex<Option<String>>,
}

/// A client to other proxies: the shared one (no allocation per request) or a cluster's own.
pub enum ClientRef<'a> {
    Shared(&'a http::MeshClient),
    Own(Arc<http::MeshClient>),
}

impl From<Arc<http::MeshClient>> for ClientRef<'_> {
    fn from(c: Arc<http::MeshClient>) -> Self {
        ClientRef::Own(c)
    }
}

impl std::ops::Deref for ClientRef<'_> {
    type Target = http::MeshClient;
    fn deref(&self) -> &http::MeshClient {
        match self {
            ClientRef::Shared(c) => c,
            ClientRef::Own(c) => c,
        }
    }
}

/// The Gateway server port a request came in on (gateway listeners only).
#[derive(Debug, Clone, Copy)]
pub struct GatewayPort(pub u16);

/// A gateway listener: the Gateway server on `port`, TCP or HTTP as the config says.
async fn serve_gateway(listener: TcpListener, port: u16, shared: Arc<Shared>) {
    let state = shared.listener("gateway");
    loop {
        let (mut stream, peer, permit) = guard::accept(&listener, &state).await;
        let _ = stream.set_nodelay(true);
        let shared = shared.clone();
        tokio::spawn(async move {
            let snapshot = shared.snapshot.load_full();
            if let Some(t) = snapshot.gateway_tcp(port) {
                let Some((endpoint, idle)) = t.pick_cluster().and_then(|c| Some((c.pick()?, c.tcp_idle()))) else {
                    debug!(port, "gateway TCP server has no endpoint; closing the connection");
                    return;
                };
                let mtls = snapshot.peer(endpoint).is_some_and(|p| p.mtls);
                drop(snapshot);
                match connect::connect_tcp(&shared.identity, &shared.snapshot, endpoint, mtls).await {
                    Ok(mut upstream) => {
                        let _ = guard::relay(&mut stream, &mut upstream, &permit, idle).await;
                    }
                    Err(e) => debug!(%endpoint, error = %e, "gateway TCP upstream failed"),
                }
                return;
            }
            drop(snapshot);
            guard::serve_http(stream, &permit, peer, move |mut req: hyper::Request<hyper::body::Incoming>| {
                req.extensions_mut().insert(ClientAddr(peer));
                req.extensions_mut().insert(GatewayPort(port));
                http::outbound(shared.clone(), req)
            })
            .await;
        });
    }
}

/// The address of the app connection a request came on (outbound listener), for
/// consistent hashing by source IP.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub SocketAddr);

/// Who is on the other end of an inbound connection.
#[derive(Debug, Clone)]
pub struct PeerInfo {
    /// The peer proxy's SPIFFE ID (mTLS connections only).
    pub identity: Option<String>,
    pub remote: SocketAddr,
    pub local: SocketAddr,
    /// The `x-forwarded-client-cert` the app is told for this peer (made once per connection).
    pub xfcc: Option<::http::HeaderValue>,
}

impl PeerInfo {
    fn new(shared: &Shared, identity: Option<String>, remote: SocketAddr, local: SocketAddr) -> PeerInfo {
        let xfcc = identity
            .as_ref()
            .and_then(|id| ::http::HeaderValue::from_str(&format!("By={};URI={id}", shared.identity.uri)).ok());
        PeerInfo { identity, remote, local, xfcc }
    }
}

#[derive(Debug, Clone)]
pub struct Options {
    pub name: String,
    pub namespace: String,
    pub service_account: String,
    pub labels: BTreeMap<String, String>,
    /// (workload port, app address)
    pub inbound: Vec<(u16, SocketAddr)>,
    /// Where inbound listeners bind (port 0 each).
    pub inbound_bind: std::net::IpAddr,
    /// The outbound listener; None for no outbound listener.
    pub outbound: Option<SocketAddr>,
    /// Local TCP listeners for TCP services: (host, port, listen address).
    pub outbound_tcp: Vec<(String, u16, SocketAddr)>,
    /// The listener for connections the kernel redirected (`proxy init`), e.g. 0.0.0.0:15001.
    pub capture_outbound: Option<SocketAddr>,
    /// The listener for redirected inbound connections, e.g. 0.0.0.0:15006. With it, no
    /// listener is opened per inbound port: peers are told `inbound_bind:PORT`, which the
    /// kernel redirects here.
    pub capture_inbound: Option<SocketAddr>,
    /// Gateway server ports: (Gateway server port, listen address). A proxy whose labels a
    /// Gateway selects serves that Gateway's servers on these.
    pub gateway_ports: Vec<(u16, SocketAddr)>,
    pub admin: SocketAddr,
    /// Prometheus metrics (`/stats/prometheus`); None for none.
    pub metrics: Option<SocketAddr>,
    /// Write an access log line per request, whatever the mesh config says.
    pub access_log: bool,
    pub meshd: MeshdSource,
    /// Carry every request over HTTP/2 to other proxies; else each keeps the app's protocol.
    pub peer_http2: bool,
    /// Caps and timeouts for downstream connections.
    pub limits: guard::Limits,
}

/// The addresses a started proxy listens on.
#[derive(Clone)]
pub struct Bound {
    pub outbound: Option<SocketAddr>,
    /// (host, port, bound address) of each `--outbound-tcp` listener.
    pub outbound_tcp: Vec<(String, u16, SocketAddr)>,
    /// (server port, bound address) of each gateway listener.
    pub gateway: Vec<(u16, SocketAddr)>,
    pub admin: SocketAddr,
    pub metrics: Option<SocketAddr>,
    pub inbound: Vec<InboundPort>,
    /// The proxy's shared state (readiness, the snapshot in force).
    pub shared: Arc<Shared>,
}

impl Shared {
    /// The h2c client to `app` (`host:port`), made on first use: one per app the proxy
    /// serves, and per endpoint without a sidecar it sends HTTP/2 to. Endpoints come and go
    /// with config, so past a bound the cache starts over (requests in flight keep theirs).
    pub fn app_h2(&self, app: &str) -> Option<http::AppH2Client> {
        const MOST: usize = 4096;
        let mut clients = self.app_h2.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = clients.get(app) {
            return Some(c.clone());
        }
        if clients.len() >= MOST {
            clients.clear();
        }
        let c = http::app_h2_client(app)?;
        clients.insert(app.to_string(), c.clone());
        Some(c)
    }

    /// The client to other proxies for a cluster: the shared one, or one with the cluster's
    /// connect timeout, idle timeout and reuse settings (cached by those settings).
    pub fn client_for(&self, pool: Option<config::PoolSettings>, h2: bool) -> ClientRef<'_> {
        let Some(p) = pool else {
            return ClientRef::Shared(if h2 { &self.mesh_h2 } else { &self.mesh_h1 });
        };
        let mut clients = self.pool_clients.lock().unwrap_or_else(|e| e.into_inner());
        clients
            .entry((p, h2))
            .or_insert_with(|| {
                let connector = connect::MeshConnector::with_connect_timeout(
                    self.identity.clone(),
                    self.snapshot.clone(),
                    h2,
                    std::time::Duration::from_millis(p.connect_timeout_ms.unwrap_or(5000)),
                );
                let idle = std::time::Duration::from_millis(p.idle_timeout_ms.unwrap_or(60_000));
                Arc::new(http::mesh_client_with(connector, h2, idle, p.no_reuse))
            })
            .clone()
            .into()
    }

    /// Whether `authority` (`host:port` as a request names it) is one of this proxy's own
    /// listeners: sending a request there would come straight back.
    pub fn is_own_listener(&self, authority: &str) -> bool {
        let (host, port) = mesh_api::host::split_host_port(authority);
        let Some(port) = port else { return false };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let ip: Option<std::net::IpAddr> = if host.eq_ignore_ascii_case("localhost") {
            Some(std::net::Ipv4Addr::LOCALHOST.into())
        } else {
            host.parse().ok()
        };
        let Some(ip) = ip else { return false };
        self.listening.iter().any(|l| {
            l.port() == port && (l.ip() == ip || (l.ip().is_unspecified() && (ip.is_loopback() || ip.is_unspecified())))
        })
    }

    /// The caps and counters of one listener (each listener has its own, so a flood on one
    /// leaves the others serving).
    pub fn listener(&self, name: &'static str) -> Arc<guard::Listener> {
        let max = match name {
            "admin" | "metrics" => guard::SMALL_LISTENER_CONNECTIONS,
            _ => self.limits.max_connections,
        };
        guard::Listener::new(name, self.limits, max, self.snapshot.clone(), self.metrics.clone())
    }

    /// Whether requests and connections get access log lines: `--access-log`, or the config
    /// in force (mesh config or Telemetry).
    pub fn access_log_on(&self, snapshot: &config::Snapshot) -> bool {
        self.access_log || snapshot.raw.listeners.access_log
    }

    /// Ready once the whole config and a certificate are in force.
    pub fn update_ready(&self) {
        let s = self.snapshot.load();
        let ready = s.versions.len() == mesh_api::proxy_config::ConfigType::ALL.len() && self.identity.has_cert();
        if ready {
            self.ready.store(true, std::sync::atomic::Ordering::Release);
        }
    }

    /// Wait until the first full config is in force, or `timeout` passes. Returns readiness.
    pub async fn wait_ready(&self, timeout: std::time::Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        while !self.ready.load(std::sync::atomic::Ordering::Acquire) {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        true
    }
}

async fn bind(addr: SocketAddr, what: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr).await.with_context(|| {
        format!("cannot listen on {addr} for the {what} listener (port taken? use port 0 for any free port)")
    })
}

/// Bind every listener, then return the addresses and a future that serves until the
/// process ends. Binding first means a caller can report ports before traffic flows.
pub async fn start(opts: Options) -> anyhow::Result<(Bound, impl Future<Output = ()>)> {
    let outbound = match opts.outbound {
        Some(a) => Some(bind(a, "outbound").await?),
        None => None,
    };
    let capture_outbound = match opts.capture_outbound {
        Some(a) => Some(bind(a, "captured outbound").await?),
        None => None,
    };
    let admin = bind(opts.admin, "admin").await?;
    let metrics_listener = match opts.metrics {
        Some(a) => Some(bind(a, "metrics").await?),
        None => None,
    };
    let metrics_addr = metrics_listener.as_ref().and_then(|l| l.local_addr().ok());
    let mut gateway_listeners = Vec::new();
    for (port, addr) in &opts.gateway_ports {
        let l = bind(*addr, "gateway").await?;
        gateway_listeners.push((*port, l.local_addr()?, l));
    }
    let mut tcp_listeners = Vec::new();
    for (host, port, addr) in &opts.outbound_tcp {
        let l = bind(*addr, "outbound TCP").await?;
        let bound = l.local_addr()?;
        tcp_listeners.push((host.clone(), *port, bound, l));
    }
    let mut inbound = Vec::new();
    let capture_inbound = match opts.capture_inbound {
        Some(a) => Some(bind(a, "captured inbound").await?),
        None => {
            for (port, app) in &opts.inbound {
                let l = bind(SocketAddr::new(opts.inbound_bind, 0), "inbound").await?;
                inbound.push((*port, *app, l));
            }
            None
        }
    };
    let outbound_addr = outbound.as_ref().and_then(|l| l.local_addr().ok());
    let admin_addr = admin.local_addr()?;
    let inbound_ports: Vec<InboundPort> = if capture_inbound.is_some() {
        // Peers connect to the workload's own address and port; the kernel redirects to us.
        opts.inbound
            .iter()
            .map(|(port, _)| InboundPort { port: *port, listen: SocketAddr::new(opts.inbound_bind, *port), name: None })
            .collect()
    } else {
        inbound
            .iter()
            .filter_map(|(port, _, l)| {
                l.local_addr().ok().map(|listen| InboundPort { port: *port, listen, name: None })
            })
            .collect()
    };
    let captured_apps = opts.inbound.clone();
    let me = metrics::Peer::of(&opts.name, &opts.namespace, &opts.labels);
    let workload = Workload {
        name: opts.name,
        namespace: opts.namespace,
        service_account: opts.service_account,
        labels: opts.labels,
        ports: inbound_ports.clone(),
        admin: Some(admin_addr),
        outbound: outbound_addr,
        pid: std::process::id(),
        proxy_version: mesh_api::VERSION.to_string(),
        without_proxy: false,
    };
    let id = mesh_api::identity::SpiffeId::new(
        mesh_api::identity::DEFAULT_TRUST_DOMAIN,
        &workload.namespace,
        &workload.service_account,
    );
    let identity = Arc::new(tls::Identity::new(id));
    let snapshot = Arc::new(ArcSwap::from_pointee(config::Snapshot::default()));
    let mesh_h1 = http::mesh_client(connect::MeshConnector::new(identity.clone(), snapshot.clone(), false), false);
    let mesh_h2 = http::mesh_client(connect::MeshConnector::new(identity.clone(), snapshot.clone(), true), true);
    let (tracer, export_spans) = {
        let snapshot = snapshot.clone();
        let ip = opts.inbound_bind.to_string();
        trace::Tracer::new(format!("{}.{}", me.workload, me.namespace), ip, move || {
            snapshot.load().raw.listeners.tracing.clone()
        })
    };
    let mut listening: Vec<SocketAddr> = [outbound_addr, Some(admin_addr), metrics_addr]
        .into_iter()
        .flatten()
        .chain(gateway_listeners.iter().map(|(_, a, _)| *a))
        .chain(tcp_listeners.iter().map(|(_, _, a, _)| *a))
        .chain(inbound.iter().filter_map(|(_, _, l)| l.local_addr().ok()))
        .collect();
    listening.extend([&capture_outbound, &capture_inbound].into_iter().flatten().filter_map(|l| l.local_addr().ok()));
    let via = format!("{:016x}", fastrand::u64(..));
    let shared = Arc::new(Shared {
        workload,
        snapshot,
        identity,
        ready: AtomicBool::new(false),
        client: http::client(false),
        client_h2: http::client(true),
        app_h2: Default::default(),
        mesh_h1,
        mesh_h2,
        upgrade_h2: opts.peer_http2,
        jwks: jwt::JwksCache::default(),
        pool_clients: Default::default(),
        quit: tokio::sync::Notify::new(),
        metrics: Arc::new(metrics::Metrics::new()),
        limits: opts.limits,
        via_header: ::http::HeaderValue::from_str(&via).unwrap_or(::http::HeaderValue::from_static("mesh")),
        via,
        listening,
        me_header: ::http::HeaderValue::from_str(&me.header()).ok(),
        peers: Default::default(),
        me,
        access_log: opts.access_log,
        tracer,
        discovery_error: std::sync::Mutex::new(None),
    });
    let bound = Bound {
        outbound: outbound_addr,
        outbound_tcp: tcp_listeners.iter().map(|(h, p, a, _)| (h.clone(), *p, *a)).collect(),
        gateway: gateway_listeners.iter().map(|(p, a, _)| (*p, *a)).collect(),
        admin: admin_addr,
        metrics: metrics_addr,
        inbound: inbound_ports,
        shared: shared.clone(),
    };
    let meshd = opts.meshd;
    let serve = async move {
        let mut tasks = tokio::task::JoinSet::new();
        tasks.spawn(export_spans);
        if let Some(l) = outbound {
            tasks.spawn(serve_outbound(l, shared.clone()));
        }
        for (port, app, l) in inbound {
            info!(port, %app, "inbound listener");
            tasks.spawn(serve_inbound(l, port, app, shared.clone()));
        }
        if let Some(l) = capture_inbound {
            tasks.spawn(serve_inbound_capture(l, captured_apps, shared.clone()));
        }
        if let Some(l) = capture_outbound {
            tasks.spawn(capture::serve_outbound(l, shared.clone()));
        }
        for (host, port, _, l) in tcp_listeners {
            tasks.spawn(serve_outbound_tcp(l, host, port, shared.clone()));
        }
        if let Some(l) = metrics_listener {
            let s = shared.clone();
            tasks.spawn(async move {
                let state = s.listener("metrics");
                loop {
                    let (stream, _, permit) = guard::accept(&l, &state).await;
                    let s = s.clone();
                    tokio::spawn(async move {
                        let _permit = permit;
                        let builder = local_http1(&s.limits);
                        let svc = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                            let s = s.clone();
                            async move { Ok::<_, std::convert::Infallible>(admin::metrics(&s, &req)) }
                        });
                        let _ = builder.serve_connection(TokioIo::new(stream), svc).await;
                    });
                }
            });
        }
        for (port, _, l) in gateway_listeners {
            tasks.spawn(serve_gateway(l, port, shared.clone()));
        }
        let s = shared.clone();
        tasks.spawn(async move {
            serve_admin(admin, s).await;
        });
        tasks.spawn(xds::run(shared.clone(), meshd));
        while tasks.join_next().await.is_some() {}
    };
    Ok((bound, serve))
}

/// The outbound listener: the app's requests, routed by the mesh's rules.
async fn serve_outbound(listener: TcpListener, shared: Arc<Shared>) {
    let state = shared.listener("outbound");
    loop {
        let (stream, peer, permit) = guard::accept(&listener, &state).await;
        let _ = stream.set_nodelay(true);
        let shared = shared.clone();
        tokio::spawn(async move {
            guard::serve_http(stream, &permit, peer, move |mut req: hyper::Request<hyper::body::Incoming>| {
                req.extensions_mut().insert(ClientAddr(peer));
                http::outbound(shared.clone(), req)
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

/// How long an inbound connection may take to send its first byte (PERMISSIVE detection).
const FIRST_BYTE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// A TLS record starts with content type 22 (handshake).
const TLS_HANDSHAKE: u8 = 0x16;

/// An inbound listener: mTLS, plaintext or both (PeerAuthentication), then the app.
async fn serve_inbound(listener: TcpListener, port: u16, app: SocketAddr, shared: Arc<Shared>) {
    let state = shared.listener("inbound");
    loop {
        let (stream, remote, permit) = guard::accept(&listener, &state).await;
        let _ = stream.set_nodelay(true);
        tokio::spawn(handle_inbound(shared.clone(), stream, remote, port, app, permit));
    }
}

/// One inbound connection for workload `port`: mTLS, plaintext or both (PeerAuthentication),
/// then the app.
async fn handle_inbound(
    shared: Arc<Shared>,
    stream: TcpStream,
    remote: SocketAddr,
    port: u16,
    app: SocketAddr,
    permit: guard::ConnPermit,
) {
    let local = stream.local_addr().unwrap_or(remote);
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
            let tls = match permit.unless_evicted(accepted).await.flatten() {
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
            let peer = PeerInfo::new(&shared, identity, remote, local);
            serve_inbound_stream(shared, tls, port, app, peer, permit).await;
        }
    }
}

/// Inbound connections the kernel redirected (`proxy init`, Istio's 15006): the original
/// destination's port picks the workload port; its app is the `--inbound` one for that port,
/// else the same port on loopback.
async fn serve_inbound_capture(listener: TcpListener, apps: Vec<(u16, SocketAddr)>, shared: Arc<Shared>) {
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
        tokio::spawn(handle_inbound(shared.clone(), stream, remote, port, app, permit));
    }
}

/// One accepted inbound connection (TLS already terminated): raw TCP to the app for a TCP
/// port (after authorization), else HTTP.
async fn serve_inbound_stream<S>(
    shared: Arc<Shared>,
    mut stream: S,
    port: u16,
    app: SocketAddr,
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
        drop(snapshot);
        if let authz::Decision::Deny(why) = decision {
            debug!(peer = ?peer.identity, %why, "TCP connection denied; closing it");
            return; // dropping the stream closes the connection
        }
        let mut upstream = match TcpStream::connect(app).await {
            Ok(s) => s,
            Err(e) => {
                debug!(%app, error = %e, "cannot reach the app");
                return;
            }
        };
        let _ = upstream.set_nodelay(true);
        let me = &shared.me;
        let labels = metrics::TcpLabels {
            reporter: "destination".into(),
            source_workload: "unknown".into(),
            source_workload_namespace: peer
                .identity
                .as_deref()
                .and_then(|i| mesh_api::identity::SpiffeId::parse(i).ok())
                .map(|i| i.namespace)
                .unwrap_or_else(|| "unknown".into()),
            source_principal: peer.identity.clone().unwrap_or_else(|| "unknown".into()),
            destination_workload: me.workload.clone(),
            destination_workload_namespace: me.namespace.clone(),
            destination_principal: shared.identity.uri.clone(),
            destination_service: "unknown".into(),
            connection_security_policy: if peer.identity.is_some() { "mutual_tls" } else { "none" }.into(),
        };
        let upstream_cluster = format!("inbound|{port}||");
        let target = (app.to_string(), upstream_cluster.as_str());
        let started = std::time::SystemTime::now();
        relay_tcp(&shared, &mut stream, &mut upstream, &labels, "inbound", started, target, &permit, None).await;
        return;
    }
    drop(snapshot);
    let remote = peer.remote;
    let peer = Arc::new(peer);
    guard::serve_http(stream, &permit, remote, move |req| http::inbound(shared.clone(), app, port, peer.clone(), req))
        .await;
}

/// A local TCP listener for one TCP service (`--outbound-tcp HOST:PORT=ADDR`).
async fn serve_outbound_tcp(listener: TcpListener, host: String, port: u16, shared: Arc<Shared>) {
    let host: Arc<str> = Arc::from(host.as_str());
    let state = shared.listener("outbound_tcp");
    loop {
        let (stream, _, permit) = guard::accept(&listener, &state).await;
        let _ = stream.set_nodelay(true);
        let (shared, host) = (shared.clone(), host.clone());
        tokio::spawn(async move {
            outbound_tcp(&shared, stream, &host, port, None, &permit).await;
        });
    }
}

/// One outbound TCP connection for `host:port` (a service name, or the address a captured
/// connection was going to: a Service's cluster IP or a pod's IP, `original`). It goes to an
/// endpoint picked by the service's TCP route, over mTLS when the endpoint takes it; a mesh
/// endpoint addressed directly is reached the same way; anything else is passed through
/// under ALLOW_ANY and closed under REGISTRY_ONLY.
async fn outbound_tcp(
    shared: &Shared,
    mut stream: TcpStream,
    host: &str,
    port: u16,
    original: Option<SocketAddr>,
    permit: &guard::ConnPermit,
) {
    let snapshot = shared.snapshot.load_full();
    let service = snapshot.tcp_service(host, port).cloned();
    let cluster = match &service {
        Some(t) if !t.sni.is_empty() => {
            let sni = tls::peek_sni(&stream).await;
            t.pick_by_sni(sni.as_deref()).cloned()
        }
        Some(t) => t.pick_cluster().cloned(),
        None => None,
    };
    let up = match tcp_upstream(shared, &snapshot, host, port, original, cluster).await {
        Ok(up) => up,
        Err(TcpRefusal::Loop) => {
            shared.metrics.downstream_rejected(permit.listener().name, "loop");
            debug!(%host, port, "TCP connection addressed to this proxy's own listener; closing it");
            return;
        }
        Err(why) => {
            debug!(%host, port, ?why, "no TCP upstream; closing the connection");
            return;
        }
    };
    drop(snapshot); // not held for the life of the connection
    let mut upstream = up.stream;
    let started = std::time::SystemTime::now();
    let target = (up.upstream_host, up.upstream_cluster.as_str());
    relay_tcp(shared, &mut stream, &mut upstream, &up.labels, "outbound", started, target, permit, up.idle).await;
}

/// Copy bytes both ways between a downstream connection and its upstream until both close,
/// counted in the `istio_tcp_*` metrics and, when access logging is on, logged at the end.
/// Bytes from downstream are "received", bytes to it "sent", as Istio counts them on both sides.
/// `target` is the upstream host and cluster, for the log. Closed after the idle timeout: `idle`
/// (the cluster's) when given, else the listener's.
#[allow(clippy::too_many_arguments)]
async fn relay_tcp<D, U>(
    shared: &Shared,
    downstream: &mut D,
    upstream: &mut U,
    labels: &metrics::TcpLabels,
    direction: &'static str,
    started: std::time::SystemTime,
    target: (String, &str),
    permit: &guard::ConnPermit,
    idle: Option<std::time::Duration>,
) where
    D: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    U: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    shared.metrics.tcp_opened(labels);
    let clock = std::time::Instant::now();
    let (received, sent) = match guard::relay(downstream, upstream, permit, idle).await {
        Ok(n) => n,
        Err(e) => {
            debug!(error = %e, "TCP connection ended with an error");
            (0, 0)
        }
    };
    tcp_closed(shared, labels, direction, started, clock.elapsed(), (received, sent), (&target.0, target.1));
}

/// A relayed TCP connection (or CONNECT tunnel) has closed: counted in `istio_tcp_*` and, when
/// access logs are on, logged. `bytes` is (received from downstream, sent to it); `target`
/// the upstream host and cluster.
pub(crate) fn tcp_closed(
    shared: &Shared,
    labels: &metrics::TcpLabels,
    direction: &'static str,
    started: std::time::SystemTime,
    duration: std::time::Duration,
    (received, sent): (u64, u64),
    (upstream_host, upstream_cluster): (&str, &str),
) {
    shared.metrics.tcp_closed(labels, sent, received);
    if shared.access_log_on(&shared.snapshot.load()) {
        metrics::tcp_access_log(&metrics::TcpEntry {
            direction,
            labels,
            started,
            duration,
            bytes_received: received,
            bytes_sent: sent,
            upstream_host,
            upstream_cluster,
            flags: "-",
        });
    }
}

async fn serve_admin(listener: TcpListener, shared: Arc<Shared>) {
    let state = shared.listener("admin");
    loop {
        let (stream, _, permit) = guard::accept(&listener, &state).await;
        let s = shared.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let builder = local_http1(&s.limits);
            let svc = service_fn(move |req| admin::handle(s.clone(), req));
            let _ = builder.serve_connection(TokioIo::new(stream), svc).await;
        });
    }
}

/// Log to stderr, honouring `RUST_LOG` (default `info`), in colour only when `color` (see
/// `mesh_api::term::stderr_color`).
pub fn init_tracing(color: bool) {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let (filter, handle) = tracing_subscriber::reload::Layer::new(filter);
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_ansi(color);
    if tracing_subscriber::registry().with(filter).with(fmt).try_init().is_ok() {
        let _ = LOG_FILTER.set(handle);
    }
}

type FilterHandle = tracing_subscriber::reload::Handle<tracing_subscriber::EnvFilter, tracing_subscriber::Registry>;

/// The log filter in force, changeable at run time through the admin API (`/logging`).
static LOG_FILTER: std::sync::OnceLock<FilterHandle> = std::sync::OnceLock::new();

/// Set the log filter (`debug`, `info`, `mesh_proxy=trace,hyper=warn`, ...).
/// The log filter in force (`info`, `debug`, `mesh_proxy=debug,info`...).
pub fn log_level() -> Result<String, String> {
    let handle = LOG_FILTER.get().ok_or("logging was not set up by this process")?;
    handle.with_current(|f| f.to_string()).map_err(|e| e.to_string())
}

pub fn set_log_level(spec: &str) -> Result<(), String> {
    let handle = LOG_FILTER.get().ok_or("logging was not set up by this process")?;
    let filter =
        tracing_subscriber::EnvFilter::try_new(spec).map_err(|e| format!("invalid log level {spec:?}: {e}"))?;
    handle.reload(filter).map_err(|e| e.to_string())
}

/// A runtime with `workers` threads; one worker uses the lighter current-thread scheduler.
pub fn runtime(workers: usize) -> std::io::Result<tokio::runtime::Runtime> {
    if workers <= 1 {
        tokio::runtime::Builder::new_current_thread().enable_all().build()
    } else {
        tokio::runtime::Builder::new_multi_thread().worker_threads(workers).enable_all().build()
    }
}

/// Why an outbound TCP connection (or CONNECT tunnel) has no upstream.
#[derive(Debug)]
pub(crate) enum TcpRefusal {
    /// The service has no endpoint.
    NoEndpoint,
    /// An unknown host under REGISTRY_ONLY.
    RegistryOnly,
    /// Addressed to this proxy's own listener.
    Loop,
    /// Connecting failed.
    Connect(String),
}

/// An outbound TCP upstream, connected, with what its metrics and log lines say.
pub(crate) struct TcpUpstream {
    pub stream: connect::Stream,
    pub labels: metrics::TcpLabels,
    pub upstream_host: String,
    pub upstream_cluster: String,
    pub idle: Option<std::time::Duration>,
}

/// Connect an outbound TCP connection for `host:port` (`cluster`: the service's TCP route's
/// pick, if it has one): to an endpoint (over mTLS when it takes it), a mesh endpoint
/// addressed directly (`original`), or, for a passthrough ServiceEntry or an unknown host
/// under ALLOW_ANY, the host and port themselves.
pub(crate) async fn tcp_upstream(
    shared: &Shared,
    snapshot: &config::Snapshot,
    host: &str,
    port: u16,
    original: Option<SocketAddr>,
    cluster: Option<Arc<config::ClusterState>>,
) -> Result<TcpUpstream, TcpRefusal> {
    // Where to connect: an endpoint (mTLS when it takes it), or, for a passthrough
    // ServiceEntry or an unknown host under ALLOW_ANY, the host and port themselves.
    let target = match &cluster {
        Some(c) if c.passthrough => None,
        Some(c) => match c.pick_index(None) {
            Some(i) => Some((c.endpoints[i].addr, c.endpoints[i].hostname.clone())),
            None => return Err(TcpRefusal::NoEndpoint),
        },
        None => match original {
            Some(addr) if snapshot.peer(addr).is_some() => Some((addr, None)),
            _ if snapshot.passthrough() => None,
            _ => return Err(TcpRefusal::RegistryOnly),
        },
    };
    if target.is_none() && shared.is_own_listener(&format!("{host}:{port}")) {
        return Err(TcpRefusal::Loop);
    }
    // The mesh endpoint connected to, if it is one: its identity and whether it takes mTLS.
    let peer = target.as_ref().and_then(|(a, _)| snapshot.peer(*a));
    let destination_principal = peer.map(|p| p.identity.to_string());
    let mtls = peer.is_some_and(|p| p.mtls);
    let destination_service = cluster.as_ref().map(|c| c.service.clone()).unwrap_or_else(|| host.to_string());
    let upstream_cluster = cluster.as_ref().map(|c| c.name.clone()).unwrap_or_else(|| "PassthroughCluster".to_string());
    let upstream_host = match &target {
        Some((addr, _)) => addr.to_string(),
        None => format!("{host}:{port}"),
    };
    let connected = match target {
        Some((addr, None)) => connect::connect_tcp(&shared.identity, &shared.snapshot, addr, mtls).await,
        Some((addr, Some(name))) => connect::connect_named(&name, addr.port()).await,
        None => connect::connect_named(host, port).await,
    };
    let stream = connected.map_err(|e| TcpRefusal::Connect(e.to_string()))?;
    let labels = metrics::TcpLabels {
        reporter: "source".into(),
        source_workload: shared.me.workload.clone(),
        source_workload_namespace: shared.me.namespace.clone(),
        source_principal: shared.identity.uri.clone(),
        destination_workload: "unknown".into(),
        destination_workload_namespace: "unknown".into(),
        destination_principal: destination_principal.unwrap_or_else(|| "unknown".into()),
        destination_service,
        connection_security_policy: "unknown".into(),
    };
    let idle = cluster.as_ref().and_then(|c| c.tcp_idle());
    Ok(TcpUpstream { stream, labels, upstream_host, upstream_cluster, idle })
}
