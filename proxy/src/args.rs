//! The proxy's command line, shared by `mesh proxy run` and the standalone `proxy` binary.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, bail};

use crate::{MeshdSource, Options};

/// Run a sidecar proxy for one workload.
#[derive(Debug, Clone, clap::Args)]
pub struct ProxyArgs {
    /// The workload's name (unique in its namespace while connected).
    #[arg(long)]
    pub workload: String,
    /// The workload's namespace.
    #[arg(short = 'n', long, env = "MESH_NAMESPACE", default_value = "default")]
    pub namespace: String,
    /// The workload's service account (its identity).
    #[arg(long, default_value = "default")]
    pub service_account: String,
    /// The workload's labels, `k=v,k2=v2` (Services and subsets select on these).
    #[arg(long, value_delimiter = ',')]
    pub labels: Vec<String>,
    /// Forward mesh traffic for workload PORT to the app at APP_ADDR (repeatable).
    #[arg(long, value_name = "PORT=APP_ADDR")]
    pub inbound: Vec<String>,
    /// The outbound listener the app sends its requests to (also usable as HTTP_PROXY).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:0")]
    pub outbound: SocketAddr,
    /// Do not open an outbound listener.
    #[arg(long)]
    pub no_outbound: bool,
    /// Accept the app's connections redirected by `proxy init` here (Istio's 15001), e.g.
    /// `0.0.0.0:15001`; each goes where the app was connecting, through the mesh.
    #[arg(long, value_name = "ADDR")]
    pub capture_outbound: Option<SocketAddr>,
    /// Accept inbound connections redirected by `proxy init` here (Istio's 15006), e.g.
    /// `0.0.0.0:15006`; peers are then told `--inbound-bind`:PORT for each `--inbound` port.
    #[arg(long, value_name = "ADDR")]
    pub capture_inbound: Option<SocketAddr>,
    /// The address inbound listeners bind (the pod IP on Kubernetes); peers reach the workload
    /// there.
    #[arg(long, value_name = "IP", default_value = "127.0.0.1")]
    pub inbound_bind: std::net::IpAddr,
    /// A local listener for a TCP service: connections to LISTEN_ADDR go to HOST:PORT through
    /// the mesh (repeatable), e.g. `tcp-echo:9000=127.0.0.1:0`.
    #[arg(long, value_name = "HOST:PORT=LISTEN_ADDR")]
    pub outbound_tcp: Vec<String>,
    /// Serve a Gateway server port (as an ingress gateway): Gateways whose selector matches
    /// this workload's labels are served on LISTEN_ADDR for their servers on PORT (repeatable),
    /// e.g. `80=127.0.0.1:8080`.
    #[arg(long, value_name = "PORT=LISTEN_ADDR")]
    pub gateway_port: Vec<String>,
    /// The admin API (loopback).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:0")]
    pub admin: SocketAddr,
    /// Prometheus metrics at /stats/prometheus (Istio uses port 15020).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:0")]
    pub metrics: SocketAddr,
    /// Write a JSON access log line per request to standard output (also turned on mesh-wide
    /// by `mesh install --set meshConfig.accessLogFile=/dev/stdout`).
    #[arg(long)]
    pub access_log: bool,
    /// meshd's address (`IP:PORT` or `HOST:PORT`); by default read from MESH_HOME/meshd.json.
    #[arg(long, value_name = "ADDR")]
    pub meshd: Option<String>,
    /// File holding this proxy's credential, read again at each reconnection: a proxy token
    /// from `mesh proxy token create` (bound to this workload and service account), or on
    /// Kubernetes the pod's projected service-account token. Without it (local development
    /// default) the proxy mints its own proxy token with the admin token in MESH_HOME.
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// Talk TLS to `--meshd`, trusting the roots in FILE (on Kubernetes, the mesh root from
    /// the `mesh-ca-root-cert` ConfigMap).
    #[arg(long, value_name = "FILE", requires = "meshd")]
    pub meshd_ca: Option<PathBuf>,
    /// The name meshd's certificate must carry (default: the host of `--meshd`).
    #[arg(long, value_name = "NAME", requires = "meshd_ca")]
    pub meshd_server_name: Option<String>,
    /// Protocol between proxies: `http1` keeps each request's protocol (HTTP/1.1 over a
    /// keep-alive pool, HTTP/2 and gRPC over HTTP/2), as Istio does by default; `h2` carries
    /// every request over HTTP/2 (Istio's h2UpgradePolicy UPGRADE). Negotiated by ALPN on mTLS.
    #[arg(long, env = "MESH_PEER_PROTOCOL", value_parser = ["h2", "http1"], default_value = "http1")]
    pub peer_protocol: String,
    /// Open connections per listener; beyond it new connections are closed at once
    /// (0: half the open-files limit, less a reserve).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub max_connections: usize,
    /// Requests in flight per listener; beyond it requests get 503 (Envoy's overload answer).
    #[arg(long, value_name = "N", default_value_t = crate::listeners::guard::DEFAULT_MAX_REQUESTS)]
    pub max_requests: usize,
    /// How long a request's head may take to arrive once it has begun (and a new connection
    /// to bring its first request).
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = positive_duration)]
    pub request_headers_timeout: std::time::Duration,
    /// How long a TLS handshake on an inbound or gateway listener may take.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = positive_duration)]
    pub tls_handshake_timeout: std::time::Duration,
    /// How long a request in flight may go without a byte either way (Envoy's 5 min default).
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = positive_duration)]
    pub stream_idle_timeout: std::time::Duration,
    /// How long a downstream connection may stay open with no request in flight (HTTP) or no
    /// byte either way (TCP). Default: the mesh config's `ISTIO_META_IDLE_TIMEOUT`, else 1h.
    #[arg(long, value_name = "DURATION", env = "ISTIO_META_IDLE_TIMEOUT", value_parser = positive_duration)]
    pub idle_timeout: Option<std::time::Duration>,
    /// On SIGTERM, how long to drain before exiting: requests in flight finish, keep-alive
    /// connections are closed as they go idle, new connections get one request each (Istio's
    /// `TERMINATION_DRAIN_DURATION_SECONDS`, in seconds there; 0 exits at once).
    #[arg(
        long,
        value_name = "DURATION",
        env = "TERMINATION_DRAIN_DURATION_SECONDS",
        default_value = "5s",
        value_parser = drain_duration
    )]
    pub drain_duration: std::time::Duration,
    /// End the drain as soon as no downstream connection is open (Istio's
    /// `EXIT_ON_ZERO_ACTIVE_CONNECTIONS`) rather than at the end of the drain duration.
    #[arg(long, env = "EXIT_ON_ZERO_ACTIVE_CONNECTIONS")]
    pub exit_on_zero_active_connections: bool,
    /// Worker threads for the data path.
    #[arg(long, env = "MESH_PROXY_WORKERS", default_value_t = 1)]
    pub workers: usize,
    /// Run this app beside the proxy, with HTTP_PROXY pointing at the outbound listener; the
    /// proxy exits when the app does, with its exit code.
    #[arg(last = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

/// A drain duration: a duration (`5s`), or whole seconds as Istio's environment variable has it.
pub fn drain_duration(s: &str) -> Result<std::time::Duration, String> {
    match s.parse::<u64>() {
        Ok(secs) => Ok(std::time::Duration::from_secs(secs)),
        Err(_) => mesh_api::duration::parse(s),
    }
}

fn positive_duration(s: &str) -> Result<std::time::Duration, String> {
    match mesh_api::duration::parse(s)? {
        d if d.is_zero() => Err("must be more than 0".into()),
        d => Ok(d),
    }
}

fn parse_labels(items: &[String]) -> anyhow::Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for item in items.iter().filter(|i| !i.is_empty()) {
        let Some((k, v)) = item.split_once('=') else { bail!("--labels {item:?}: expected key=value") };
        if k.is_empty() {
            bail!("--labels {item:?}: empty key");
        }
        out.insert(k.to_string(), v.to_string());
    }
    Ok(out)
}

fn parse_inbound(items: &[String]) -> anyhow::Result<Vec<(u16, SocketAddr)>> {
    let mut out = Vec::new();
    for item in items {
        let Some((port, app)) = item.split_once('=') else {
            bail!("--inbound {item:?}: expected PORT=APP_ADDR, like 9080=127.0.0.1:8080")
        };
        let port: u16 = port
            .parse()
            .ok()
            .filter(|p| *p > 0)
            .with_context(|| format!("--inbound {item:?}: {port:?} is not a port (1-65535)"))?;
        let app: SocketAddr = app
            .parse()
            .with_context(|| format!("--inbound {item:?}: {app:?} is not an address like 127.0.0.1:8080"))?;
        if out.iter().any(|(p, _)| *p == port) {
            bail!("--inbound: port {port} given twice");
        }
        out.push((port, app));
    }
    Ok(out)
}

fn parse_outbound_tcp(items: &[String]) -> anyhow::Result<Vec<(String, u16, SocketAddr)>> {
    let mut out = Vec::new();
    for item in items {
        let Some((target, listen)) = item.split_once('=') else {
            bail!("--outbound-tcp {item:?}: expected HOST:PORT=LISTEN_ADDR, like tcp-echo:9000=127.0.0.1:0")
        };
        let (host, port) = mesh_api::host::split_host_port(target);
        let port = port
            .filter(|p| *p > 0 && !host.is_empty())
            .with_context(|| format!("--outbound-tcp {item:?}: {target:?} is not HOST:PORT"))?;
        let listen: SocketAddr = listen
            .parse()
            .with_context(|| format!("--outbound-tcp {item:?}: {listen:?} is not an address like 127.0.0.1:0"))?;
        out.push((host.to_ascii_lowercase(), port, listen));
    }
    Ok(out)
}

impl ProxyArgs {
    /// Validate the whole command line, reporting every problem at once.
    pub fn to_options(&self, home: PathBuf) -> anyhow::Result<Options> {
        let mut problems = Vec::new();
        let labels = parse_labels(&self.labels).map_err(|e| problems.push(e.to_string())).unwrap_or_default();
        let inbound = parse_inbound(&self.inbound).map_err(|e| problems.push(e.to_string())).unwrap_or_default();
        let outbound_tcp =
            parse_outbound_tcp(&self.outbound_tcp).map_err(|e| problems.push(e.to_string())).unwrap_or_default();
        let gateway_ports = parse_inbound(&self.gateway_port)
            .map_err(|e| problems.push(e.to_string().replace("--inbound", "--gateway-port")))
            .unwrap_or_default();
        for (what, v) in [
            ("--workload", &self.workload),
            ("--namespace", &self.namespace),
            ("--service-account", &self.service_account),
        ] {
            if !mesh_api::validate::is_dns_subdomain(v) {
                problems.push(format!("{what} {v:?}: use lowercase letters, digits, '-' and '.'"));
            }
        }
        if !self.admin.ip().is_loopback() {
            problems.push(format!("--admin {}: the admin API must listen on loopback", self.admin));
        }
        if let Some(m) = &self.meshd {
            let (host, port) = mesh_api::host::split_host_port(m);
            if host.is_empty() || port.is_none_or(|p| p == 0) {
                problems.push(format!("--meshd {m:?}: expected HOST:PORT or IP:PORT"));
            }
        }
        let meshd = match self.meshd.clone() {
            Some(address) => {
                // Without --token-file: the admin token of MESH_HOME, used only to mint this
                // proxy's own token (the local development default).
                let file = self.token_file.clone().unwrap_or_else(|| home.join(mesh_api::home::TOKEN_FILE));
                match std::fs::read_to_string(&file) {
                    Ok(t) => {
                        let tls = self.meshd_ca.clone().map(|ca_file| crate::xds::MeshdTls {
                            ca_file,
                            server_name: self
                                .meshd_server_name
                                .clone()
                                .unwrap_or_else(|| mesh_api::host::split_host_port(&address).0.to_string()),
                        });
                        MeshdSource::Fixed {
                            token: t.trim().to_string(),
                            token_file: self.token_file.is_some().then(|| file.clone()),
                            address,
                            tls,
                            mint: self.token_file.is_none(),
                        }
                    }
                    Err(e) => {
                        problems.push(format!("cannot read the token file {}: {e}", file.display()));
                        MeshdSource::Home { home, token_file: None }
                    }
                }
            }
            None => {
                if let Some(f) = &self.token_file
                    && let Err(e) = std::fs::metadata(f)
                {
                    problems.push(format!("--token-file {}: {e}", f.display()));
                }
                MeshdSource::Home { home, token_file: self.token_file.clone() }
            }
        };
        if !problems.is_empty() {
            bail!("invalid proxy options:\n  {}", problems.join("\n  "));
        }
        Ok(Options {
            name: self.workload.clone(),
            namespace: self.namespace.clone(),
            service_account: self.service_account.clone(),
            labels,
            inbound,
            inbound_bind: self.inbound_bind,
            capture_outbound: self.capture_outbound,
            capture_inbound: self.capture_inbound,
            outbound: (!self.no_outbound).then_some(self.outbound),
            outbound_tcp,
            gateway_ports,
            admin: self.admin,
            metrics: Some(self.metrics),
            access_log: self.access_log,
            meshd,
            peer_http2: self.peer_protocol == "h2",
            limits: crate::listeners::guard::Limits {
                max_connections: match self.max_connections {
                    0 => crate::listeners::guard::connection_budget(crate::listeners::guard::fd_limit()),
                    n => n,
                },
                max_requests: self.max_requests.max(1),
                tls_handshake: self.tls_handshake_timeout,
                request_headers: self.request_headers_timeout,
                stream_idle: self.stream_idle_timeout,
                idle: self.idle_timeout.unwrap_or(crate::listeners::guard::DEFAULT_IDLE),
                idle_from_flag: self.idle_timeout.is_some(),
            },
        })
    }

    /// Start the proxy, print where it listens, and serve until killed (or, with a command,
    /// until the command exits). Returns the exit code to end the process with.
    pub fn run(&self, home: PathBuf) -> anyhow::Result<i32> {
        let nofile = crate::listeners::guard::raise_fd_limit();
        let opts = self.to_options(home)?;
        tracing::debug!(nofile, max_connections = opts.limits.max_connections, "downstream limits");
        if !self.command.is_empty() && opts.outbound.is_none() {
            bail!("a command needs the outbound listener: drop --no-outbound");
        }
        let rt = crate::runtime(self.workers).context("cannot start the runtime")?;
        rt.block_on(async move {
            let (bound, serve) = crate::start(opts).await?;
            tokio::pin!(serve);
            // Where it listens: on stdout, unless it runs an app, whose stdout that is.
            let with_app = !self.command.is_empty();
            let say = |line: String| {
                if with_app {
                    eprintln!("{line}");
                } else {
                    println!("{line}");
                }
            };
            if let Some(o) = bound.outbound {
                say(format!("outbound listening on {o} (use HTTP_PROXY=http://{o})"));
            }
            for p in &bound.inbound {
                say(format!("inbound port {} listening on {}", p.port, p.listen));
            }
            for (host, port, addr) in &bound.outbound_tcp {
                say(format!("outbound tcp {host}:{port} listening on {addr}"));
            }
            for (port, addr) in &bound.gateway {
                say(format!("gateway port {port} listening on {addr}"));
            }
            if let Some(m) = bound.metrics {
                say(format!("metrics listening on {m} (/stats/prometheus)"));
            }
            say(format!("admin listening on {}", bound.admin));
            let app = async {
                let (Some(program), Some(outbound)) = (self.command.first(), bound.outbound) else {
                    return std::future::pending::<anyhow::Result<i32>>().await;
                };
                // Like Istio's holdApplicationUntilProxyStarts: the app's first request must find routes.
                if !bound.shared.wait_ready(std::time::Duration::from_secs(30)).await {
                    tracing::warn!("no config from meshd after 30s; starting the app anyway");
                }
                let proxy_url = format!("http://{outbound}");
                let mut child = tokio::process::Command::new(program)
                    .args(&self.command[1..])
                    .env("HTTP_PROXY", &proxy_url)
                    .env("http_proxy", &proxy_url)
                    .env("NO_PROXY", "localhost,127.0.0.1,::1")
                    .env("no_proxy", "localhost,127.0.0.1,::1")
                    .kill_on_drop(true)
                    .spawn()
                    .with_context(|| format!("cannot start {program:?}"))?;
                let status = child.wait().await?;
                Ok(status.code().unwrap_or(1))
            };
            tokio::select! {
                code = app => return code,
                _ = &mut serve => {}
                _ = bound.shared.quit.notified() => {
                    tracing::info!("asked to quit through the admin API");
                }
                _ = tokio::signal::ctrl_c() => {}
                _ = async {
                    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                        Ok(mut t) => { t.recv().await; }
                        Err(_) => std::future::pending::<()>().await,
                    }
                } => {
                    // Terminated (a pod stopping, a rollout): drain, serving on meanwhile.
                    let drained = bound.shared.drain(self.drain_duration, self.exit_on_zero_active_connections);
                    tokio::select! {
                        _ = &mut serve => {}
                        () = drained => {}
                    }
                }
            }
            Ok(0)
        })
    }
}
