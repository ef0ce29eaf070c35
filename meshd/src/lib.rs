//! meshd, the control plane: config store, workload registry, translator and discovery server.
//!
//! `run` is the whole daemon; the `meshd` binary and `mesh`'s hidden `__meshd` subcommand both
//! call it, so the bundled and standalone control planes are the same code.

pub mod admission;
pub mod api;
pub mod ca;
pub mod credentials;
pub mod discovery;
pub mod gateway_controller;
pub mod home;
pub mod inject;
pub mod kubernetes;
pub mod leader;
pub mod manifest;
pub mod metrics;
pub mod proxy_token;
pub mod push;
pub mod rollout;
pub mod rotation;
pub mod state;
pub mod store;
pub mod translate;
pub mod webhook;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tracing::{info, warn};

pub use home::Home;

/// meshd's default listen address on the local platform.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:15010";

#[derive(Debug, Clone)]
pub struct Options {
    pub home: Home,
    /// Port 0 picks a free port; the real address is written to `MESH_HOME/meshd.json`.
    pub listen: SocketAddr,
    /// How long workloads restored from the last run are kept without their proxy.
    pub registry_grace: std::time::Duration,
    /// Lifetime of workload certificates.
    pub cert_ttl: std::time::Duration,
    pub mesh: translate::MeshConfig,
    /// The monitoring listener (`/metrics`, `/debug/syncz`); None for none.
    pub monitoring: Option<SocketAddr>,
    /// Read config from the Kubernetes API (in-cluster, or KUBECONFIG) instead of MESH_HOME.
    pub kube: bool,
    /// Kubernetes: discovery over TLS, for proxies holding a service-account token.
    pub discovery_tls: SocketAddr,
    /// Kubernetes: the admission webhooks over TLS.
    pub webhooks: SocketAddr,
}

/// Where the admission webhooks listen on a cluster (the meshd Service maps 443 here).
pub const WEBHOOK_LISTEN: &str = "0.0.0.0:15017";
/// Where discovery over TLS listens on a cluster (istiod's 15012).
pub const DISCOVERY_TLS_LISTEN: &str = "0.0.0.0:15012";

/// istiod's monitoring port.
pub const DEFAULT_MONITORING_PORT: u16 = 15014;

/// The monitoring address that goes with a discovery address: the same IP, port 15014, or
/// port 0 (any free port) when discovery is on port 0 too.
pub fn default_monitoring(listen: SocketAddr) -> SocketAddr {
    SocketAddr::new(listen.ip(), if listen.port() == 0 { 0 } else { DEFAULT_MONITORING_PORT })
}

/// Proxies reconnect within 5 s (their longest backoff); twice that and some.
pub const DEFAULT_REGISTRY_GRACE: std::time::Duration = std::time::Duration::from_secs(15);

/// Run meshd until it is told to stop (API shutdown, SIGTERM or SIGINT).
pub async fn run(opts: Options) -> anyhow::Result<()> {
    let nofile = raise_fd_limit();
    tracing::debug!(nofile, "open-files limit");
    let home = opts.home;
    home.create().with_context(|| format!("cannot create MESH_HOME {}", home.root().display()))?;
    let token =
        home.ensure_token().with_context(|| format!("cannot create the access token in {}", home.root().display()))?;
    // On a cluster the CA lives in the API server (a Secret every replica shares), not in the
    // pod: take it from there before opening it.
    let kube_client = if opts.kube {
        let client = ::kube::Client::try_default()
            .await
            .context("cannot reach the Kubernetes API: meshd needs its in-cluster service account or a KUBECONFIG")?;
        let ns = std::env::var("POD_NAMESPACE").unwrap_or_else(|_| "istio-system".into());
        let source =
            kubernetes::bootstrap_ca(&client, &ns, &home.ca_path(), mesh_api::identity::DEFAULT_TRUST_DOMAIN).await?;
        Some((client, source))
    } else {
        None
    };
    let ca = Arc::new(
        ca::Ca::open(&home.ca_path(), mesh_api::identity::DEFAULT_TRUST_DOMAIN, opts.cert_ttl)
            .with_context(|| format!("cannot open the mesh CA in {}", home.ca_path().display()))?,
    );
    let store = store::Store::new(home.store_path());
    let resources = store.load()?;
    let listener = TcpListener::bind(opts.listen).await.with_context(|| {
        format!("cannot listen on {} (is another meshd running? choose another address)", opts.listen)
    })?;
    let address = listener.local_addr()?;
    let monitoring = match opts.monitoring {
        Some(a) => Some(TcpListener::bind(a).await.with_context(|| {
            format!("cannot listen on {a} for monitoring (port taken? set another with --monitoring, port 0 for any)")
        })?),
        None => None,
    };
    let monitoring_addr = monitoring.as_ref().and_then(|l| l.local_addr().ok());
    let meshd_id = format!("meshd-{}@{address}", std::process::id());
    // Workloads the previous meshd knew, kept while their proxies reconnect, so the first
    // proxy back does not get a config without the others' endpoints. Dead processes are
    // dropped at once (the local platform shares one process table).
    let restored: Vec<_> = state::RegistryFile::load(&home.registry_path())
        .workloads
        .into_iter()
        .filter(|w| w.pid == 0 || std::path::Path::new(&format!("/proc/{}", w.pid)).exists())
        .collect();
    if !restored.is_empty() {
        info!(count = restored.len(), grace = ?opts.registry_grace, "restored workloads, waiting for their proxies");
    }
    let mut state = state::State::new(meshd_id, store, resources, Some(home.registry_path()), restored);
    if kube_client.is_none() {
        let credentials = credentials::CredentialStore::new(home.root().join("credentials.json"));
        let held = credentials.load()?;
        state = state.with_credentials(credentials, held);
    }
    let state = Arc::new(state);
    tokio::spawn(push::run(state.clone(), opts.mesh.clone()));
    tokio::spawn(state.clone().persist_registry_loop());
    if kube_client.is_none() {
        tokio::spawn(rollout::run(state.clone(), rollout::Sink::Local));
    }
    let mut leader: Option<tokio::sync::watch::Receiver<bool>> = None;
    let kube_client = if let Some((client, ca_source)) = kube_client {
        info!("reading config and workloads from the Kubernetes API");
        if ca_source == kubernetes::CaSource::Shared {
            let ns = std::env::var("POD_NAMESPACE").unwrap_or_else(|_| "istio-system".into());
            tokio::spawn(kubernetes::follow_ca_state(client.clone(), ns, ca.clone()));
        }
        state.await_platform();
        let (namespaces, namespaces_rx) = tokio::sync::watch::channel(Default::default());
        tokio::spawn(kubernetes::watch_cluster(client.clone(), state.clone(), kubernetes::default_kinds(), namespaces));
        // One replica (the Lease holder) writes what is written once.
        let (leader_tx, leader_rx) = tokio::sync::watch::channel(false);
        let identity = std::env::var("POD_NAME").unwrap_or_else(|_| format!("meshd-{}", std::process::id()));
        let lease_ns = std::env::var("POD_NAMESPACE").unwrap_or_else(|_| "istio-system".into());
        tokio::spawn(leader::run(client.clone(), lease_ns, identity, leader_tx));
        tokio::spawn(kubernetes::publish_root_cert(client.clone(), ca.clone(), namespaces_rx, leader_rx.clone()));
        tokio::spawn(gateway_controller::run(client.clone(), state.clone(), leader_rx.clone()));
        tokio::spawn(rollout::run(
            state.clone(),
            rollout::Sink::Kube { client: client.clone(), leader: leader_rx.clone() },
        ));
        leader = Some(leader_rx);
        match std::env::var("POD_NAME") {
            Ok(pod) => {
                let ns = std::env::var("POD_NAMESPACE").unwrap_or_else(|_| "istio-system".into());
                tokio::spawn(kubernetes::publish_admin_token(client.clone(), ns, pod, token.clone()));
            }
            Err(_) => warn!("POD_NAME is not set: `mesh` on the cluster cannot reach meshd's admin API"),
        }
        Some(client)
    } else {
        None
    };
    {
        let state = state.clone();
        let grace = opts.registry_grace;
        tokio::spawn(async move {
            tokio::time::sleep(grace).await;
            state.expire_restored();
        });
    }
    if ca.root_count() > 1 {
        // A root rotation was interrupted: finish it once the proxies are back.
        let (ca, state) = (ca.clone(), state.clone());
        tokio::spawn(async move {
            tokio::time::sleep(grace_for_rotation()).await;
            match rotation::rotate_root(&ca, &state, std::time::Duration::from_secs(300)).await {
                Ok(r) => info!(proxies = r.proxies, "finished the interrupted root rotation"),
                Err(e) => warn!(error = %e, "could not finish the interrupted root rotation"),
            }
        });
    }
    let proxy_tokens = Arc::new(
        proxy_token::Signer::open(&home)
            .with_context(|| format!("cannot open the proxy-token key in {}", home.root().display()))?,
    );
    let shutdown = Arc::new(Notify::new());
    let api = Arc::new(api::Api {
        proxy_tokens,
        state: state.clone(),
        ca,
        token,
        mesh: opts.mesh,
        shutdown: shutdown.clone(),
        kube: kube_client.clone(),
    });
    let mut tls_addresses = (None, None);
    if let Some(client) = kube_client {
        // Discovery and the admission webhooks over TLS with one certificate for meshd's
        // Service names: proxies trust it through the root ConfigMap, the API server through
        // the caBundle meshd writes.
        let ns = std::env::var("POD_NAMESPACE").unwrap_or_else(|_| "istio-system".into());
        let serving = webhook::ServingCert::new(api.ca.clone(), webhook::dns_names(&ns))
            .context("cannot issue meshd's serving certificate")?;
        let tls = webhook::tls_config(serving.clone());
        let discovery = TcpListener::bind(opts.discovery_tls)
            .await
            .with_context(|| format!("cannot listen on {} for discovery over TLS", opts.discovery_tls))?;
        let webhooks = TcpListener::bind(opts.webhooks)
            .await
            .with_context(|| format!("cannot listen on {} for the webhooks", opts.webhooks))?;
        tls_addresses = (discovery.local_addr().ok(), webhooks.local_addr().ok());
        tokio::spawn(webhook::serve_tls(discovery, tls.clone(), api.clone()));
        tokio::spawn(webhook::serve_tls(webhooks, tls, api.clone()));
        if let Some(leader) = leader.clone() {
            tokio::spawn(webhook::follow_ca(client, ns, api.ca.clone(), serving, leader));
        }
    }
    let started_unix = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    if let Some(l) = monitoring {
        tokio::spawn(serve_monitoring(l, api.clone()));
    }
    let info = home::MeshdInfo {
        address,
        pid: std::process::id(),
        version: mesh_api::VERSION.into(),
        started_unix,
        monitoring: monitoring_addr,
        discovery_tls: tls_addresses.0,
        webhooks: tls_addresses.1,
    };
    home.write_info(&info).with_context(|| format!("cannot write {}", home.info_path().display()))?;
    info!(%address, home = %home.root().display(), "meshd ready");

    let stop = async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        tokio::select! {
            _ = shutdown.notified() => info!("shutdown requested through the API"),
            _ = tokio::signal::ctrl_c() => info!("interrupted"),
            _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => info!("terminated"),
        }
    };
    tokio::pin!(stop);
    let mut backoff = AcceptBackoff::default();
    loop {
        tokio::select! {
            _ = &mut stop => break,
            accepted = listener.accept() => {
                let (stream, _) = match accepted {
                    Ok(a) => { backoff.reset(); a }
                    Err(e) => {
                        // Out of file descriptors (or the like): pause instead of spinning, and
                        // say so once per interval rather than once per attempt.
                        backoff.failed("API", &e).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let api = api.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req| api.clone().handle(req));
                    let conn = api_http1().serve_connection(TokioIo::new(stream), svc).with_upgrades();
                    if let Err(e) = conn.await {
                        tracing::debug!(error = %e, "API connection ended");
                    }
                });
            }
        }
    }
    state.freeze();
    // Only remove meshd.json if it is still ours (a newer meshd may have replaced it).
    if home.read_info().is_ok_and(|i| i.pid == std::process::id()) {
        let _ = std::fs::remove_file(home.info_path());
    }
    info!("meshd stopped");
    Ok(())
}

/// The monitoring port: Prometheus metrics at `/metrics`, and at `/debug/syncz` every
/// connected proxy with each config type's sent and acknowledged versions and sync state.
/// Read-only and unauthenticated, like istiod's; it listens on loopback unless told otherwise.
async fn serve_monitoring(listener: TcpListener, api: Arc<api::Api>) {
    let mut backoff = AcceptBackoff::default();
    loop {
        let stream = match listener.accept().await {
            Ok((s, _)) => {
                backoff.reset();
                s
            }
            Err(e) => {
                backoff.failed("monitoring", &e).await;
                continue;
            }
        };
        let api = api.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                let resp = monitoring_response(&api, req.uri().path(), req.uri().query().unwrap_or(""));
                async move { Ok::<_, std::convert::Infallible>(resp) }
            });
            let _ = api_http1().serve_connection(TokioIo::new(stream), svc).await;
        });
    }
}

/// How long a client of meshd's HTTP listeners may take to send a request's head.
pub const HEADER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// The HTTP/1.1 server for meshd's listeners: a slow client is dropped after the header timeout.
pub fn api_http1() -> hyper::server::conn::http1::Builder {
    let mut b = hyper::server::conn::http1::Builder::new();
    b.timer(hyper_util::rt::TokioTimer::new()).header_read_timeout(HEADER_TIMEOUT);
    b
}

/// Accept errors (EMFILE when out of file descriptors, ...): wait from 10 ms up to 1 s between
/// attempts, and log at most once per 10 s with how many failed in between.
#[derive(Default)]
pub struct AcceptBackoff {
    delay: std::time::Duration,
    suppressed: u64,
    last_log: Option<std::time::Instant>,
}

impl AcceptBackoff {
    pub fn reset(&mut self) {
        self.delay = std::time::Duration::ZERO;
    }

    pub async fn failed(&mut self, listener: &str, e: &std::io::Error) {
        self.delay = (self.delay * 2).clamp(std::time::Duration::from_millis(10), std::time::Duration::from_secs(1));
        if self.last_log.is_none_or(|t| t.elapsed() >= std::time::Duration::from_secs(10)) {
            warn!(listener, error = %e, failures_since_last_log = self.suppressed, retry_in = ?self.delay, "accept failed (logged once per 10 s)");
            self.last_log = Some(std::time::Instant::now());
            self.suppressed = 0;
        } else {
            self.suppressed += 1;
        }
        tokio::time::sleep(self.delay).await;
    }
}

/// Raise the soft limit on open files to the hard limit; returns the limit in force.
pub fn raise_fd_limit() -> u64 {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut l = getrlimit(Resource::Nofile);
    if l.current != l.maximum {
        l.current = l.maximum;
        let _ = setrlimit(Resource::Nofile, l);
    }
    getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX)
}

fn monitoring_response(api: &api::Api, path: &str, query: &str) -> hyper::Response<http_body_util::Full<bytes::Bytes>> {
    let (state, ca) = (&api.state, &api.ca);
    let (status, content_type, body) = match path {
        // Read-only views for `mesh` on a cluster (reached by a port-forward, as istioctl
        // reaches istiod's debug endpoints): the proxies' sync state, what meshd would send
        // one proxy, and the CA's public state.
        "/debug/proxies" => {
            (200, "application/json", serde_json::to_string(&state.proxy_statuses()).unwrap_or_default())
        }
        "/debug/config" => return api.proxy_config(query),
        "/debug/ca" => (200, "application/json", serde_json::to_string(&api.ca_status()).unwrap_or_default()),
        "/metrics" | "/stats/prometheus" => {
            if let Some(expiry) = ca.view().roots.iter().map(|r| r.not_after_unix).max() {
                state.metrics.root_expiry.set(expiry);
            }
            (200, "text/plain; version=0.0.4; charset=utf-8", state.metrics.encode())
        }
        "/debug/syncz" => {
            let rows: Vec<serde_json::Value> = state
                .proxy_statuses()
                .iter()
                .map(|p| {
                    let mut row = serde_json::json!({
                        "proxy": format!("{}.{}", p.workload.name, p.workload.namespace),
                        "proxy_version": p.workload.proxy_version,
                        "meshd": p.meshd,
                        "connected_at_unix": p.connected_at_unix,
                    });
                    for t in mesh_api::proxy_config::ConfigType::ALL {
                        let s = p.types.get(&t);
                        let name = match t {
                            mesh_api::proxy_config::ConfigType::Routes => "route",
                            mesh_api::proxy_config::ConfigType::Clusters => "cluster",
                            mesh_api::proxy_config::ConfigType::Endpoints => "endpoint",
                            mesh_api::proxy_config::ConfigType::Listeners => "listener",
                        };
                        row[format!("{name}_sent")] = s.and_then(|s| s.sent.clone()).unwrap_or_default().into();
                        row[format!("{name}_acked")] = s.and_then(|s| s.acked.clone()).unwrap_or_default().into();
                        row[format!("{name}_state")] = p.state(t).as_str().into();
                        if let Some(n) = s.and_then(|s| s.nacked.as_ref()) {
                            row[format!("{name}_nack")] = n.error.clone().into();
                        }
                    }
                    row
                })
                .collect();
            (200, "application/json", serde_json::to_string_pretty(&rows).unwrap_or_default())
        }
        "/ready" if state.ready() => (200, "text/plain", "ready\n".to_string()),
        "/ready" => (503, "text/plain", "waiting for the first full list from the Kubernetes API\n".to_string()),
        _ => (404, "text/plain", "not found: try /metrics, /debug/syncz or /debug/proxies\n".to_string()),
    };
    let mut resp = hyper::Response::new(http_body_util::Full::new(bytes::Bytes::from(body)));
    *resp.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::OK);
    if let Ok(v) = hyper::header::HeaderValue::from_str(content_type) {
        resp.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    resp
}

/// Proxies reconnect within their longest backoff; resume a rotation after that.
fn grace_for_rotation() -> std::time::Duration {
    std::time::Duration::from_secs(6)
}

/// Log to stderr, honouring `RUST_LOG` (default `info`), in colour only when `color` (see
/// `mesh_api::term::stderr_color`): never in `meshd.log`.
pub fn init_tracing(color: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(color).try_init();
}
