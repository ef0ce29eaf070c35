//! The sidecar proxy. A connection flows one way through its parts:
//!
//! - `listeners`: accept connections (outbound, inbound, captured, gateway, TCP, admin,
//!   metrics) behind per-listener caps (`listeners::guard`), terminate mTLS;
//! - `http`: the request path of each direction (normalization, loop detection, routing
//!   decisions, policy, retries), producing local replies where Envoy would;
//! - `routing` and `policy`: compiled routes and compiled policies (authorization, request
//!   authentication, rate limits), both matching strings with `matching`;
//! - `upstream`: clusters and their endpoints, the pooled clients, connecting to peers;
//! - `telemetry`: Istio's metrics, access logs, trace propagation and export, the log.
//!
//! `config` holds the snapshot they all read, swapped whole through an `ArcSwap` on each push
//! from meshd (`xds`); the request path loads it once per request, without a lock.

pub mod admin;
pub mod args;
pub mod config;
pub mod http;
pub mod init;
pub mod listeners;
pub mod matching;
pub mod memory;
pub mod policy;
pub mod routing;
pub mod telemetry;
pub mod tls;
pub mod tls_config;
pub mod upstream;
pub mod xds;

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use arc_swap::ArcSwap;
use bytes::Bytes;
use http_body_util::{Either, Full};
use mesh_api::protocol::{InboundPort, Workload};
use tracing::info;

use crate::listeners::guard;
use crate::policy::jwt;
use crate::upstream::pool::{self, Pool};

pub use listeners::{Downstream, PeerInfo};
pub use telemetry::log::{init_tracing, log_level, set_log_level};
use telemetry::{metrics, trace};
pub use xds::MeshdSource;

/// A request or response body: as received, or made here.
pub type Body = Either<hyper::body::Incoming, Full<Bytes>>;

/// State shared by every listener of one proxy.
pub struct Shared {
    pub workload: Workload,
    /// The termination drain.
    pub drain: Arc<guard::Drain>,
    /// Told each time a new config is in force (one waiter: the Sidecar listener manager).
    pub config_changed: tokio::sync::Notify,
    /// Where inbound listeners bind (a Sidecar ingress listener without `bind` too).
    pub inbound_bind: std::net::IpAddr,
    pub snapshot: Arc<ArcSwap<config::Snapshot>>,
    pub identity: Arc<tls::Identity>,
    pub ready: AtomicBool,
    /// To apps: HTTP/1.1, and h2c for HTTP/2 requests (gRPC); an HTTP/2 request names its
    /// own authority while the connection goes to the app's address.
    pub app_h1: Pool,
    pub app_h2: Pool,
    /// To other proxies over HTTP/1.1 (mTLS or plaintext).
    pub mesh_h1: Pool,
    /// To other proxies over HTTP/2 (ALPN h2 on mTLS, h2c on plaintext).
    pub mesh_h2: Pool,
    /// Carry every request over HTTP/2 between proxies (Istio's h2UpgradePolicy UPGRADE);
    /// otherwise each request keeps the protocol the app used.
    pub upgrade_h2: bool,
    pub jwks: jwt::JwksCache,
    /// Clients for clusters with their own connection settings, made on first use.
    pools: std::sync::Mutex<HashMap<(upstream::cluster::PoolSettings, bool), Pool>>,
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
    /// The pool to other proxies for a cluster: the shared one, or one with the cluster's
    /// connect timeout, idle timeout and reuse settings (kept by those settings).
    pub fn pool_for(&self, settings: Option<upstream::cluster::PoolSettings>, h2: bool) -> Pool {
        let Some(p) = settings else {
            return if h2 { self.mesh_h2.clone() } else { self.mesh_h1.clone() };
        };
        let mut pools = self.pools.lock().unwrap_or_else(|e| e.into_inner());
        pools
            .entry((p, h2))
            .or_insert_with(|| {
                let settings = pool::Settings {
                    h2,
                    connect_timeout: p.connect_timeout_ms.map_or(pool::DEFAULT_CONNECT_TIMEOUT, Duration::from_millis),
                    idle_timeout: p.idle_timeout_ms.map_or(pool::DEFAULT_IDLE_TIMEOUT, Duration::from_millis),
                    reuse: !p.no_reuse,
                };
                Pool::new(settings, self.mesh_dial())
            })
            .clone()
    }

    /// Drop the pooled mTLS connections to `addresses` (their peer's identity changed), in
    /// every pool to other proxies; requests under way keep theirs.
    pub fn forget_mesh_connections(&self, addresses: &[String]) {
        self.mesh_h1.forget_tls(addresses);
        self.mesh_h2.forget_tls(addresses);
        for p in self.pools.lock().unwrap_or_else(|e| e.into_inner()).values() {
            p.forget_tls(addresses);
        }
    }

    fn mesh_dial(&self) -> pool::Dial {
        pool::Dial::Mesh { identity: self.identity.clone(), snapshot: self.snapshot.clone() }
    }

    /// The peer a metadata-exchange value names, believed only when that namespace is the one in
    /// the peer's certificate (`identity`).
    pub fn peer_named(&self, value: &[u8], identity: &str) -> Option<Arc<metrics::Peer>> {
        let peer = self.peers.get(&::http::HeaderValue::from_bytes(value).ok()?)?;
        let namespace = mesh_api::identity::SpiffeId::parse(identity).ok()?.namespace;
        (peer.namespace == namespace).then_some(peer)
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
        let (max, drain) = match name {
            "admin" | "metrics" => (guard::SMALL_LISTENER_CONNECTIONS, None),
            _ => (self.limits.max_connections, Some(self.drain.clone())),
        };
        guard::Listener::new(name, self.limits, max, self.snapshot.clone(), self.metrics.clone(), drain)
    }

    /// Drain (on SIGTERM, Istio's termination drain): keep serving, close each connection once
    /// its requests are answered, and give new ones one request each; done after `within`, or
    /// with `exit_on_zero` as soon as no data-path connection is open.
    pub async fn drain(&self, within: std::time::Duration, exit_on_zero: bool) {
        if within.is_zero() {
            return;
        }
        info!(?within, exit_on_zero, open = self.drain.active(), "terminating: draining connections");
        self.ready.store(false, std::sync::atomic::Ordering::SeqCst);
        self.drain.start();
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if exit_on_zero && self.drain.active() == 0 {
                info!("drained: no connection open");
                return;
            }
            if tokio::time::Instant::now() >= deadline {
                info!(open = self.drain.active(), "drain time over");
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
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
        if ready && !self.drain.started() {
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

/// Bind every listener, then return the addresses and a future that serves until the
/// process ends. Binding first means a caller can report ports before traffic flows.
pub async fn start(opts: Options) -> anyhow::Result<(Bound, impl Future<Output = ()>)> {
    let outbound = match opts.outbound {
        Some(a) => Some(listeners::bind(a, "outbound").await?),
        None => None,
    };
    let capture_outbound = match opts.capture_outbound {
        Some(a) => Some(listeners::bind(a, "captured outbound").await?),
        None => None,
    };
    let admin = listeners::bind(opts.admin, "admin").await?;
    let metrics_listener = match opts.metrics {
        Some(a) => Some(listeners::bind(a, "metrics").await?),
        None => None,
    };
    let metrics_addr = metrics_listener.as_ref().and_then(|l| l.local_addr().ok());
    let mut gateway_listeners = Vec::new();
    for (port, addr) in &opts.gateway_ports {
        let l = listeners::bind(*addr, "gateway").await?;
        gateway_listeners.push((*port, l.local_addr()?, l));
    }
    let mut tcp_listeners = Vec::new();
    for (host, port, addr) in &opts.outbound_tcp {
        let l = listeners::bind(*addr, "outbound TCP").await?;
        let bound = l.local_addr()?;
        tcp_listeners.push((host.clone(), *port, bound, l));
    }
    let mut inbound = Vec::new();
    let capture_inbound = match opts.capture_inbound {
        Some(a) => Some(listeners::bind(a, "captured inbound").await?),
        None => {
            for (port, app) in &opts.inbound {
                let l = listeners::bind(SocketAddr::new(opts.inbound_bind, 0), "inbound").await?;
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
        gateway_ports: gateway_listeners
            .iter()
            .map(|(port, listen, _)| InboundPort { port: *port, listen: *listen, name: None })
            .collect(),
    };
    let id = mesh_api::identity::SpiffeId::new(
        mesh_api::identity::DEFAULT_TRUST_DOMAIN,
        &workload.namespace,
        &workload.service_account,
    );
    let identity = Arc::new(tls::Identity::new(id));
    let snapshot = Arc::new(ArcSwap::from_pointee(config::Snapshot::default()));
    let mesh = |h2| {
        let dial = pool::Dial::Mesh { identity: identity.clone(), snapshot: snapshot.clone() };
        Pool::new(pool::Settings::new(h2), dial)
    };
    let (mesh_h1, mesh_h2) = (mesh(false), mesh(true));
    let (tracer, export_spans) = {
        let snapshot = snapshot.clone();
        let ip = opts.inbound_bind.to_string();
        trace::Tracer::new(format!("{}.{}", me.canonical_service, me.namespace), ip, move || {
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
        app_h1: Pool::new(pool::Settings::new(false), pool::Dial::Plain),
        app_h2: Pool::new(pool::Settings::new(true), pool::Dial::Plain),
        mesh_h1,
        mesh_h2,
        upgrade_h2: opts.peer_http2,
        jwks: jwt::JwksCache::default(),
        pools: Default::default(),
        quit: tokio::sync::Notify::new(),
        config_changed: tokio::sync::Notify::new(),
        drain: Default::default(),
        inbound_bind: opts.inbound_bind,
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
        tasks.spawn(memory::release_when_quiet(memory::TICK));
        if let Some(l) = outbound {
            tasks.spawn(listeners::serve_outbound(l, shared.clone()));
        }
        for (port, app, l) in inbound {
            info!(port, %app, "inbound listener");
            tasks.spawn(listeners::inbound::serve_inbound(l, port, app, shared.clone()));
        }
        if let Some(l) = capture_inbound {
            tasks.spawn(listeners::inbound::serve_inbound_capture(l, captured_apps, shared.clone()));
        }
        if let Some(l) = capture_outbound {
            tasks.spawn(listeners::capture::serve_outbound(l, shared.clone()));
        }
        for (host, port, _, l) in tcp_listeners {
            tasks.spawn(listeners::tcp::serve_outbound_tcp(l, host, port, shared.clone()));
        }
        if let Some(l) = metrics_listener {
            tasks.spawn(listeners::serve_metrics(l, shared.clone()));
        }
        for (port, _, l) in gateway_listeners {
            tasks.spawn(listeners::serve_gateway(l, port, shared.clone()));
        }
        let s = shared.clone();
        tasks.spawn(async move {
            listeners::serve_admin(admin, s).await;
        });
        tasks.spawn(listeners::bound::run(shared.clone()));
        tasks.spawn(xds::run(shared.clone(), meshd));
        while tasks.join_next().await.is_some() {}
    };
    Ok((bound, serve))
}

/// A runtime with `workers` threads; one worker uses the lighter current-thread scheduler.
pub fn runtime(workers: usize) -> std::io::Result<tokio::runtime::Runtime> {
    if workers <= 1 {
        tokio::runtime::Builder::new_current_thread().enable_all().build()
    } else {
        tokio::runtime::Builder::new_multi_thread().worker_threads(workers).enable_all().build()
    }
}

/// Milliseconds since the process started (a monotonic clock for ejection deadlines).
pub(crate) fn now_ms() -> u64 {
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    u64::try_from(START.get_or_init(std::time::Instant::now).elapsed().as_millis()).unwrap_or(u64::MAX)
}
#[cfg(test)]
mod future_sizes {
    //! A request's future is moved into hyper's connection state for every request, so its
    //! size is bytes copied per request. Rare, large sub-futures (dialling, tunnels, key
    //! fetches) are boxed where they are awaited; this keeps the common path from growing back.

    fn size3<A, B, C, R>(_: &impl Fn(A, B, C) -> R) -> usize {
        std::mem::size_of::<R>()
    }
    fn size5<A, B, C, D, E, R>(_: &impl Fn(A, B, C, D, E) -> R) -> usize {
        std::mem::size_of::<R>()
    }

    #[test]
    fn request_futures_stay_small() {
        let outbound = size3(&crate::http::outbound::outbound);
        let inbound = size5(&crate::http::inbound::inbound);
        // Were 6,096 and 7,008 bytes before the rare paths were boxed.
        assert!(outbound <= 5 * 1024, "the outbound request future is {outbound} bytes");
        assert!(inbound <= 9 * 512, "the inbound request future is {inbound} bytes");
    }
}
