//! The proxy's compiled config: the three parts meshd pushes, checked and turned into the
//! structures the request path reads. A snapshot is immutable; a new push builds a new one
//! and swaps it in whole.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};

use http::HeaderName;
use mesh_api::proxy_config::{
    ConfigType, DirectResponse, Fault, HashKey, HeaderMatcher, HeaderOps, LbPolicy, Limits, Outlier, PeerMode,
    ProxyConfig, Redirect, RetryPolicy, RouteMatch, StringMatcher,
};
use serde::Serialize;

/// Why a part was rejected; the type is NACKed with the message.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{config_type}: {message}")]
pub struct ConfigError {
    pub config_type: ConfigType,
    pub message: String,
}

fn err(config_type: ConfigType, message: String) -> ConfigError {
    ConfigError { config_type, message }
}

#[derive(Debug)]
pub enum Matcher {
    Exact(String),
    Prefix(String),
    Regex(regex::Regex),
}

impl Matcher {
    fn compile(m: &StringMatcher) -> Result<Matcher, String> {
        Ok(match m {
            StringMatcher::Exact(s) => Matcher::Exact(s.clone()),
            StringMatcher::Prefix(s) => Matcher::Prefix(s.clone()),
            StringMatcher::Regex(r) => Matcher::Regex(
                regex::RegexBuilder::new(&format!("^(?:{r})$"))
                    .size_limit(1 << 20)
                    .build()
                    .map_err(|e| format!("invalid regex {r:?}: {}", e.to_string().lines().last().unwrap_or("")))?,
            ),
        })
    }

    pub fn matches(&self, v: &str) -> bool {
        match self {
            Matcher::Exact(s) => v == s,
            Matcher::Prefix(s) => v.starts_with(s.as_str()),
            Matcher::Regex(r) => r.is_match(v),
        }
    }
}

/// What a route match looks at.
pub struct RequestView<'a> {
    pub method: &'a http::Method,
    pub path: &'a str,
    pub query: Option<&'a str>,
    /// Host and port as the request named them.
    pub authority: &'a str,
    pub scheme: &'a str,
    pub headers: &'a http::HeaderMap,
}

#[derive(Debug)]
pub struct CompiledMatch {
    pub uri: Option<Matcher>,
    pub ignore_uri_case: bool,
    pub method: Option<Matcher>,
    pub authority: Option<Matcher>,
    pub scheme: Option<Matcher>,
    pub headers: Vec<(HeaderName, Option<Matcher>)>,
    pub without_headers: Vec<(HeaderName, Option<Matcher>)>,
    pub query_params: Vec<(String, Option<Matcher>)>,
}

fn header_matchers(ms: &[HeaderMatcher]) -> Result<Vec<(HeaderName, Option<Matcher>)>, String> {
    ms.iter()
        .map(|HeaderMatcher { name, value }| {
            let n = HeaderName::from_bytes(name.as_bytes()).map_err(|_| format!("invalid header name {name:?}"))?;
            Ok((n, value.as_ref().map(Matcher::compile).transpose()?))
        })
        .collect()
}

/// Envoy's route header match: the values of a repeated header joined with `,`; a value that
/// is not UTF-8 is matched with its invalid bytes replaced (it can still match a prefix).
fn header_hit(headers: &http::HeaderMap, name: &HeaderName, m: &Option<Matcher>) -> bool {
    match (crate::authz::joined_header(headers, name), m) {
        (None, _) => false,
        (Some(_), None) => true,
        (Some(v), Some(m)) => m.matches(&String::from_utf8_lossy(&v)),
    }
}

impl CompiledMatch {
    fn compile(m: &RouteMatch) -> Result<Self, String> {
        let uri = match (&m.uri, m.ignore_uri_case) {
            (Some(StringMatcher::Exact(s)), true) => Some(Matcher::Exact(s.to_ascii_lowercase())),
            (Some(StringMatcher::Prefix(s)), true) => Some(Matcher::Prefix(s.to_ascii_lowercase())),
            (Some(StringMatcher::Regex(r)), true) => {
                Some(Matcher::compile(&StringMatcher::Regex(format!("(?i:{r})")))?)
            }
            (other, _) => other.as_ref().map(Matcher::compile).transpose()?,
        };
        Ok(CompiledMatch {
            uri,
            ignore_uri_case: m.ignore_uri_case,
            method: m.method.as_ref().map(Matcher::compile).transpose()?,
            authority: m.authority.as_ref().map(Matcher::compile).transpose()?,
            scheme: m.scheme.as_ref().map(Matcher::compile).transpose()?,
            headers: header_matchers(&m.headers)?,
            without_headers: header_matchers(&m.without_headers)?,
            query_params: m
                .query_params
                .iter()
                .map(|q| Ok((q.name.clone(), q.value.as_ref().map(Matcher::compile).transpose()?)))
                .collect::<Result<_, String>>()?,
        })
    }

    pub fn matches(&self, r: &RequestView<'_>) -> bool {
        if let Some(m) = &self.uri {
            let hit = if self.ignore_uri_case && !matches!(m, Matcher::Regex(_)) {
                m.matches(&r.path.to_ascii_lowercase())
            } else {
                m.matches(r.path)
            };
            if !hit {
                return false;
            }
        }
        let checks = [(&self.method, r.method.as_str()), (&self.authority, r.authority), (&self.scheme, r.scheme)];
        if checks.iter().any(|(m, v)| m.as_ref().is_some_and(|m| !m.matches(v))) {
            return false;
        }
        if !self.headers.iter().all(|(name, m)| header_hit(r.headers, name, m)) {
            return false;
        }
        if self.without_headers.iter().any(|(name, m)| header_hit(r.headers, name, m)) {
            return false;
        }
        self.query_params.iter().all(|(name, m)| {
            let value = r.query.unwrap_or("").split('&').find_map(|pair| {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                (k == name).then_some(v)
            });
            match (value, m) {
                (None, _) => false,
                (Some(_), None) => true,
                (Some(v), Some(m)) => m.matches(v),
            }
        })
    }

    /// The prefix a `rewrite.uri` replaces: the exact path, the matched prefix, or `/`.
    pub fn rewritable_prefix(&self) -> Option<&str> {
        match &self.uri {
            Some(Matcher::Exact(s)) | Some(Matcher::Prefix(s)) => Some(s),
            Some(Matcher::Regex(_)) => None,
            None => Some("/"),
        }
    }
}

/// A replacement in RE2 / Envoy form (`\\1` for group 1) in the regex crate's form (`${1}`),
/// with literal `$` escaped.
fn re2_replacement(with: &str) -> String {
    let mut out = String::with_capacity(with.len() + 4);
    let mut chars = with.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek().is_some_and(char::is_ascii_digit) => {
                out.push_str("${");
                if let Some(d) = chars.next() {
                    out.push(d);
                }
                out.push('}');
            }
            '$' => out.push_str("$$"),
            c => out.push(c),
        }
    }
    out
}

/// Header changes, compiled.
#[derive(Debug, Default)]
pub struct CompiledOps {
    pub set: Vec<(HeaderName, http::HeaderValue)>,
    pub add: Vec<(HeaderName, http::HeaderValue)>,
    pub remove: Vec<HeaderName>,
}

impl CompiledOps {
    fn compile(ops: &HeaderOps) -> Result<CompiledOps, String> {
        let pair = |(k, v): &(String, String)| {
            Ok((
                HeaderName::from_bytes(k.as_bytes()).map_err(|_| format!("invalid header name {k:?}"))?,
                http::HeaderValue::from_str(v).map_err(|_| format!("invalid value for header {k}"))?,
            ))
        };
        Ok(CompiledOps {
            set: ops.set.iter().map(pair).collect::<Result<_, String>>()?,
            add: ops.add.iter().map(pair).collect::<Result<_, String>>()?,
            remove: ops
                .remove
                .iter()
                .map(|k| HeaderName::from_bytes(k.as_bytes()).map_err(|_| format!("invalid header name {k:?}")))
                .collect::<Result<_, String>>()?,
        })
    }

    pub fn is_empty(&self) -> bool {
        self.set.is_empty() && self.add.is_empty() && self.remove.is_empty()
    }

    pub fn apply(&self, h: &mut http::HeaderMap) {
        for (k, v) in &self.set {
            h.insert(k.clone(), v.clone());
        }
        for (k, v) in &self.add {
            h.append(k.clone(), v.clone());
        }
        for k in &self.remove {
            h.remove(k);
        }
    }
}

#[derive(Debug)]
pub struct CompiledRewrite {
    pub uri: Option<String>,
    pub authority: Option<http::HeaderValue>,
    pub uri_regex: Option<(regex::Regex, String)>,
}

/// Milliseconds since the process started (a monotonic clock for ejection deadlines).
fn now_ms() -> u64 {
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    u64::try_from(START.get_or_init(std::time::Instant::now).elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// One endpoint and what the balancer and outlier detection know of it.
#[derive(Debug)]
pub struct EndpointState {
    pub addr: SocketAddr,
    /// A DNS name to connect to instead of `addr`'s IP (ServiceEntry DNS endpoints).
    pub hostname: Option<Arc<str>>,
    /// Where to connect, written once: `IP:port`, or `name:port` for a DNS endpoint.
    authority: String,
    /// Requests in flight (LEAST_REQUEST).
    pub active: AtomicUsize,
    consecutive_5xx: AtomicU32,
    consecutive_gateway: AtomicU32,
    ejected_until_ms: AtomicU64,
    ejections: AtomicU32,
}

impl EndpointState {
    fn new(addr: SocketAddr, hostname: Option<Arc<str>>) -> EndpointState {
        let authority = match &hostname {
            Some(h) => format!("{h}:{}", addr.port()),
            None => addr.to_string(),
        };
        EndpointState {
            addr,
            hostname,
            authority,
            active: AtomicUsize::new(0),
            consecutive_5xx: AtomicU32::new(0),
            consecutive_gateway: AtomicU32::new(0),
            ejected_until_ms: AtomicU64::new(0),
            ejections: AtomicU32::new(0),
        }
    }

    /// Where to connect: `IP:port`, or `name:port` for a DNS endpoint.
    pub fn authority(&self) -> &str {
        &self.authority
    }

    pub fn ejected(&self, now: u64) -> bool {
        self.ejected_until_ms.load(Ordering::Relaxed) > now
    }
}

/// How a try at an endpoint ended, for outlier detection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    /// 500, 501, 505...: counts toward consecutive 5xx.
    ServerError,
    /// 502, 503, 504, connection failures and resets: both counters.
    GatewayError,
}

/// Marks a request in flight to an endpoint until dropped.
pub struct InFlight {
    cluster: Arc<ClusterState>,
    index: usize,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.cluster.endpoints[self.index].active.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A cluster with its endpoints, balancer, circuit breaker and outlier state.
#[derive(Debug)]
pub struct ClusterState {
    pub name: String,
    /// The service FQDN (for metrics' `destination_service`).
    pub service: String,
    pub lb: LbPolicy,
    pub hash: Option<HashKey>,
    pub endpoints: Vec<EndpointState>,
    pub outlier: Option<Outlier>,
    /// Connect to the host the request named (ServiceEntry NONE, DNS without endpoints).
    pub passthrough: bool,
    next: AtomicUsize,
    /// Permits for requests in flight (`maxConnections` / `http2MaxRequests`), and how many
    /// requests may wait for one (`http1MaxPendingRequests`).
    permits: Option<Arc<tokio::sync::Semaphore>>,
    max_pending: usize,
    pending: AtomicUsize,
    /// `maxRetries`: retries outstanding at once across the cluster.
    max_retries: usize,
    retries: AtomicUsize,
    /// Connection settings that need a client of their own (connect/idle timeouts, no reuse).
    pub pool: Option<PoolSettings>,
    tcp_idle_ms: Option<u64>,
    /// HTTP/1.1 requests go to the peer proxy over HTTP/2 (`h2UpgradePolicy: UPGRADE`).
    pub h2_upgrade: bool,
    /// The HTTP version the service port names, for endpoints without a sidecar.
    pub app_http: Option<mesh_api::core::AppHttp>,
}

/// Per-cluster connection settings; clusters with the same settings share a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PoolSettings {
    pub connect_timeout_ms: Option<u64>,
    pub idle_timeout_ms: Option<u64>,
    pub no_reuse: bool,
}

impl ClusterState {
    /// The DestinationRule's `tcp.idleTimeout` for TCP connections to this cluster: None
    /// leaves the listener's; zero means never.
    pub fn tcp_idle(&self) -> Option<std::time::Duration> {
        self.tcp_idle_ms.map(std::time::Duration::from_millis)
    }
}

/// A retry in progress; it frees its slot when dropped.
pub struct RetrySlot(Arc<ClusterState>);

impl Drop for RetrySlot {
    fn drop(&mut self) {
        self.0.retries.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Why a request was refused before it was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Overflow;

fn hash_of<T: std::hash::Hash>(v: T) -> u64 {
    use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
    BuildHasherDefault::<DefaultHasher>::default().hash_one(v)
}

impl ClusterState {
    pub fn new(
        name: String,
        lb: LbPolicy,
        endpoints: Vec<(SocketAddr, Option<Arc<str>>)>,
        hash: Option<HashKey>,
        limits: Option<&Limits>,
        outlier: Option<Outlier>,
    ) -> ClusterState {
        let concurrency = limits.and_then(|l| l.max_connections.or(l.max_requests));
        let max_pending = limits.and_then(|l| l.max_pending).map_or(usize::MAX, |p| p as usize);
        ClusterState {
            name,
            service: String::new(),
            lb,
            hash,
            endpoints: endpoints.into_iter().map(|(a, h)| EndpointState::new(a, h)).collect(),
            outlier,
            passthrough: false,
            next: AtomicUsize::new(0),
            permits: concurrency.map(|c| Arc::new(tokio::sync::Semaphore::new(c.max(1) as usize))),
            max_pending: if concurrency.is_some() { max_pending } else { usize::MAX },
            pending: AtomicUsize::new(0),
            max_retries: limits.and_then(|l| l.max_retries).map_or(usize::MAX, |r| r as usize),
            retries: AtomicUsize::new(0),
            pool: limits
                .map(|l| PoolSettings {
                    connect_timeout_ms: l.connect_timeout_ms,
                    idle_timeout_ms: l.idle_timeout_ms,
                    no_reuse: l.no_reuse,
                })
                .filter(|p| p.connect_timeout_ms.is_some() || p.idle_timeout_ms.is_some() || p.no_reuse),
            tcp_idle_ms: limits.and_then(|l| l.tcp_idle_timeout_ms),
            h2_upgrade: false,
            app_http: None,
        }
    }

    /// Pick an endpoint (no hashing); for TCP connections and mirrors.
    pub fn pick(&self) -> Option<SocketAddr> {
        self.pick_index(None).map(|i| self.endpoints[i].addr)
    }

    /// Pick an endpoint by the balancer, skipping ejected ones (all of them, if all are).
    /// `key`: the consistent-hash key of the request, if the cluster hashes.
    pub fn pick_index(&self, key: Option<u64>) -> Option<usize> {
        let n = self.endpoints.len();
        if n == 0 {
            return None;
        }
        let now = now_ms();
        let healthy: Vec<usize> = if self.outlier.is_some() {
            let h: Vec<usize> = (0..n).filter(|i| !self.endpoints[*i].ejected(now)).collect();
            if h.is_empty() { (0..n).collect() } else { h }
        } else {
            (0..n).collect()
        };
        let m = healthy.len();
        if let Some(key) = key {
            // Rendezvous hashing: the same key keeps its endpoint while that endpoint exists.
            return healthy.iter().copied().max_by_key(|i| hash_of((key, self.endpoints[*i].addr)));
        }
        Some(match self.lb {
            LbPolicy::RoundRobin => healthy[self.next.fetch_add(1, Ordering::Relaxed) % m],
            LbPolicy::Random => healthy[fastrand::usize(..m)],
            LbPolicy::LeastRequest => {
                let (a, b) = (healthy[fastrand::usize(..m)], healthy[fastrand::usize(..m)]);
                let load = |i: usize| self.endpoints[i].active.load(Ordering::Relaxed);
                if load(b) < load(a) { b } else { a }
            }
        })
    }

    /// A slot for one more retry, unless `maxRetries` are already outstanding (Envoy's retry
    /// circuit breaker: retries stop before they pile onto a failing cluster).
    pub fn retry_slot(self: &Arc<Self>) -> Option<RetrySlot> {
        if self.retries.fetch_add(1, Ordering::AcqRel) >= self.max_retries {
            self.retries.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        Some(RetrySlot(self.clone()))
    }

    pub fn start(self: &Arc<Self>, index: usize) -> InFlight {
        self.endpoints[index].active.fetch_add(1, Ordering::Relaxed);
        InFlight { cluster: self.clone(), index }
    }

    /// Wait for a permit under the cluster's limits, or overflow at once when too many
    /// requests are already waiting (Envoy's circuit breaker).
    pub async fn admit(&self) -> Result<Option<tokio::sync::OwnedSemaphorePermit>, Overflow> {
        let Some(sem) = &self.permits else { return Ok(None) };
        if let Ok(p) = sem.clone().try_acquire_owned() {
            return Ok(Some(p));
        }
        if self.pending.fetch_add(1, Ordering::AcqRel) >= self.max_pending {
            self.pending.fetch_sub(1, Ordering::AcqRel);
            return Err(Overflow);
        }
        let permit = sem.clone().acquire_owned().await;
        self.pending.fetch_sub(1, Ordering::AcqRel);
        permit.map(Some).map_err(|_| Overflow)
    }

    /// Record how a try ended; eject the endpoint when it failed too often in a row.
    pub fn report(&self, index: usize, outcome: Outcome) {
        let Some(o) = &self.outlier else { return };
        let e = &self.endpoints[index];
        let (c5, gw) = match outcome {
            Outcome::Success => {
                e.consecutive_5xx.store(0, Ordering::Relaxed);
                e.consecutive_gateway.store(0, Ordering::Relaxed);
                return;
            }
            Outcome::ServerError => (e.consecutive_5xx.fetch_add(1, Ordering::Relaxed) + 1, 0),
            Outcome::GatewayError => (
                e.consecutive_5xx.fetch_add(1, Ordering::Relaxed) + 1,
                e.consecutive_gateway.fetch_add(1, Ordering::Relaxed) + 1,
            ),
        };
        let trip = o.consecutive_5xx.is_some_and(|t| c5 >= t) || o.consecutive_gateway_errors.is_some_and(|t| gw >= t);
        if !trip {
            return;
        }
        let now = now_ms();
        let ejected = self.endpoints.iter().filter(|x| x.ejected(now)).count();
        // maxEjectionPercent, but at least one host may be ejected (Envoy's rule).
        let allowed = (self.endpoints.len() * o.max_ejection_percent as usize / 100).max(1);
        if e.ejected(now) || ejected >= allowed {
            return;
        }
        let times = u64::from(e.ejections.fetch_add(1, Ordering::Relaxed) + 1);
        e.ejected_until_ms.store(now + o.base_ejection_ms.saturating_mul(times), Ordering::Relaxed);
        e.consecutive_5xx.store(0, Ordering::Relaxed);
        e.consecutive_gateway.store(0, Ordering::Relaxed);
        tracing::info!(cluster = %self.name, endpoint = %e.addr, for_ms = o.base_ejection_ms * times, "ejected an endpoint (outlier detection)");
    }

    /// The consistent-hash key of a request, if this cluster hashes.
    pub fn hash_key(&self, headers: &http::HeaderMap, query: Option<&str>, source: Option<SocketAddr>) -> Option<u64> {
        match self.hash.as_ref()? {
            HashKey::Header(h) => headers.get(h.as_str()).map(|v| hash_of(v.as_bytes())),
            HashKey::Cookie(name) => headers
                .get_all(http::header::COOKIE)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(';'))
                .find_map(|c| c.trim().split_once('=').filter(|(k, _)| k == name).map(|(_, v)| hash_of(v))),
            HashKey::SourceIp => source.map(|s| hash_of(s.ip())),
            HashKey::QueryParameter(q) => query.and_then(|qs| {
                qs.split('&').find_map(|pair| {
                    let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                    (k == q).then(|| hash_of(v))
                })
            }),
        }
    }
}

/// One weighted destination of a route, with its own header changes.
#[derive(Debug)]
pub struct Target {
    pub cluster: Arc<ClusterState>,
    pub weight: u32,
    pub request_headers: CompiledOps,
    pub response_headers: CompiledOps,
}

#[derive(Debug)]
pub struct CompiledRoute {
    pub name: String,
    pub matches: Vec<CompiledMatch>,
    pub clusters: Vec<Target>,
    pub total_weight: u32,
    pub redirect: Option<Redirect>,
    pub direct_response: Option<DirectResponse>,
    pub rewrite: Option<CompiledRewrite>,
    pub timeout: Option<std::time::Duration>,
    pub retries: Option<RetryPolicy>,
    pub fault: Option<Fault>,
    pub mirrors: Vec<(Arc<ClusterState>, f64)>,
    pub request_headers: CompiledOps,
    pub response_headers: CompiledOps,
    pub cors: Option<(mesh_api::proxy_config::Cors, Vec<Matcher>)>,
}

impl CompiledRoute {
    /// Pick a destination by weight.
    pub fn pick_cluster(&self) -> Option<&Target> {
        pick_by_weight(&self.clusters, self.total_weight, |t| t.weight)
    }
}

#[derive(Debug)]
pub struct CompiledVhost {
    pub name: String,
    pub routes: Vec<CompiledRoute>,
}

/// One of `items` at random by weight (`total` is the sum of the weights); with a single item,
/// that one whatever its weight.
fn pick_by_weight<T>(items: &[T], total: u32, weight: impl Fn(&T) -> u32) -> Option<&T> {
    if items.len() == 1 {
        return items.first();
    }
    if total == 0 {
        return None;
    }
    let mut x = fastrand::u32(..total);
    for item in items {
        let w = weight(item);
        if x < w {
            return Some(item);
        }
        x -= w;
    }
    None
}

/// Clusters with weights, their total computed once.
#[derive(Debug)]
pub struct Weighted {
    clusters: Vec<(Arc<ClusterState>, u32)>,
    total: u32,
}

impl Weighted {
    /// Resolve `list` against the compiled clusters; `owner` names the route for errors.
    fn compile(
        list: &[mesh_api::proxy_config::WeightedCluster],
        clusters: &HashMap<&str, Arc<ClusterState>>,
        owner: &str,
    ) -> Result<Weighted, ConfigError> {
        let clusters = list
            .iter()
            .map(|wc| {
                let c = clusters.get(wc.cluster.as_str()).ok_or_else(|| {
                    err(ConfigType::Routes, format!("{owner} references unknown cluster {}", wc.cluster))
                })?;
                Ok((c.clone(), wc.weight))
            })
            .collect::<Result<Vec<_>, ConfigError>>()?;
        let total = clusters.iter().map(|(_, w)| *w).sum();
        Ok(Weighted { clusters, total })
    }

    pub fn pick(&self) -> Option<&Arc<ClusterState>> {
        pick_by_weight(&self.clusters, self.total, |(_, w)| *w).map(|(c, _)| c)
    }
}

/// A TCP service port: connections split between clusters by weight.
#[derive(Debug)]
pub struct CompiledTcp {
    pub name: String,
    pub route: String,
    pub clusters: Weighted,
    /// `tls` rules, tried in order before `clusters`: the SNI names each takes, and where to.
    pub sni: Vec<(Vec<String>, Weighted)>,
}

impl CompiledTcp {
    fn compile(
        t: &mesh_api::proxy_config::TcpService,
        clusters: &HashMap<&str, Arc<ClusterState>>,
    ) -> Result<CompiledTcp, ConfigError> {
        Ok(CompiledTcp {
            name: t.name.clone(),
            route: t.route.clone(),
            clusters: Weighted::compile(&t.clusters, clusters, &t.name)?,
            sni: t
                .sni
                .iter()
                .map(|r| {
                    Ok((
                        r.sni_hosts.clone(),
                        Weighted::compile(&r.clusters, clusters, &format!("{} {}", t.name, r.name))?,
                    ))
                })
                .collect::<Result<_, ConfigError>>()?,
        })
    }

    pub fn pick_cluster(&self) -> Option<&Arc<ClusterState>> {
        self.clusters.pick()
    }

    /// The cluster for a TLS connection by its SNI: the first `tls` rule whose hosts match,
    /// else the plain TCP route.
    pub fn pick_by_sni(&self, sni: Option<&str>) -> Option<&Arc<ClusterState>> {
        let hit = |hosts: &Vec<String>| {
            hosts.is_empty()
                || sni.is_some_and(|s| {
                    hosts.iter().any(|h| match h.strip_prefix('*') {
                        Some(suffix) => s.ends_with(suffix),
                        None => h.eq_ignore_ascii_case(s),
                    })
                })
        };
        match self.sni.iter().find(|(hosts, _)| hit(hosts)) {
            Some((_, clusters)) => clusters.pick(),
            None => self.pick_cluster(),
        }
    }
}

/// A token bucket (Envoy's local rate limit).
#[derive(Debug)]
pub struct TokenBucket {
    cfg: mesh_api::proxy_config::Bucket,
    /// (tokens left, when the last fill happened, in ms since start)
    state: std::sync::Mutex<(u64, u64)>,
}

impl TokenBucket {
    fn new(cfg: &mesh_api::proxy_config::Bucket) -> TokenBucket {
        TokenBucket { cfg: cfg.clone(), state: std::sync::Mutex::new((cfg.max_tokens, now_ms())) }
    }

    /// Take a token; false when the bucket is empty.
    pub fn take(&self) -> bool {
        let now = now_ms();
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let fills = now.saturating_sub(s.1) / self.cfg.fill_interval_ms;
        if fills > 0 {
            s.0 = s.0.saturating_add(fills.saturating_mul(self.cfg.tokens_per_fill)).min(self.cfg.max_tokens);
            s.1 += fills * self.cfg.fill_interval_ms;
        }
        if s.0 == 0 {
            return false;
        }
        s.0 -= 1;
        true
    }
}

/// The LocalRateLimit of this workload: route buckets first, then the workload-wide one.
#[derive(Debug)]
pub struct RateLimiter {
    pub policy: String,
    bucket: Option<TokenBucket>,
    routes: Vec<(mesh_api::proxy_config::RateLimitRule, TokenBucket)>,
}

impl RateLimiter {
    fn new(r: &mesh_api::proxy_config::RateLimit) -> RateLimiter {
        RateLimiter {
            policy: r.policy.clone(),
            bucket: r.bucket.as_ref().map(TokenBucket::new),
            routes: r.routes.iter().map(|rt| (rt.clone(), TokenBucket::new(&rt.bucket))).collect(),
        }
    }

    /// May this request go on? A request matching a route rule uses that rule's bucket only.
    pub fn allow(&self, method: &str, path: &str, port: u16) -> bool {
        let rule = self.routes.iter().find(|(r, _)| {
            r.path_prefix.as_deref().is_none_or(|p| path.starts_with(p))
                && r.method.as_deref().is_none_or(|m| m.eq_ignore_ascii_case(method))
                && r.port.is_none_or(|p| p == port)
        });
        match (rule, &self.bucket) {
            (Some((_, b)), _) => b.take(),
            (None, Some(b)) => b.take(),
            (None, None) => true,
        }
    }
}

/// What the outbound side knows of an endpoint's proxy.
#[derive(Debug, Clone)]
pub struct Peer {
    /// The SPIFFE ID it must present.
    pub identity: Arc<str>,
    pub mtls: bool,
}

/// Everything the request path reads, immutable.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// Endpoint address -> identity and mTLS choice.
    peers: HashMap<SocketAddr, Peer>,
    /// Workload port -> PeerAuthentication mode and whether it is raw TCP.
    inbound: HashMap<u16, (PeerMode, bool)>,
    /// (host, port) -> TCP service.
    tcp: HashMap<(String, u16), Arc<CompiledTcp>>,
    /// Gateway TCP servers by port.
    gw_tcp: HashMap<u16, Arc<CompiledTcp>>,
    /// Gateway HTTP servers: host -> [(port, vhost)], `*` for any host.
    gw_hosts: HashMap<String, Vec<(u16, usize)>>,
    pub authz: crate::authz::Authz,
    pub jwt: crate::jwt::JwtAuth,
    pub rate_limit: Option<RateLimiter>,
    /// Host (lowercase, no port) -> [(port, vhost)].
    hosts: HashMap<String, Vec<(u16, usize)>>,
    vhosts: Vec<CompiledVhost>,
    /// The parts as received, for the config dump.
    pub raw: ProxyConfig,
    /// Version of each part (routes, clusters, endpoints) in force.
    pub versions: HashMap<ConfigType, String>,
}

impl Snapshot {
    pub fn peer(&self, addr: SocketAddr) -> Option<&Peer> {
        self.peers.get(&addr)
    }

    /// The mTLS mode of a workload port (PERMISSIVE until meshd says otherwise).
    pub fn peer_mode(&self, port: u16) -> PeerMode {
        self.inbound.get(&port).map(|(m, _)| *m).unwrap_or_default()
    }

    /// Whether a workload port carries raw TCP.
    pub fn inbound_is_tcp(&self, port: u16) -> bool {
        self.inbound.get(&port).is_some_and(|(_, tcp)| *tcp)
    }

    /// The `destination_service` of a request to workload `port` with Host `host`: one of the
    /// Services that send traffic to that port (the one the Host names, or the only one), else
    /// `unknown`. Never a value taken from the request, so the label set stays bounded.
    pub fn inbound_service(&self, port: u16, host: &str) -> &str {
        let Some(l) = self.raw.listeners.inbound.iter().find(|l| l.port == port) else { return "unknown" };
        let host = mesh_api::host::split_host_port(host).0;
        let named = l.services.iter().find(|fqdn| {
            // `reviews`, `reviews.default`, `reviews.default.svc`, or the FQDN.
            fqdn.len() >= host.len()
                && fqdn.as_bytes()[..host.len()].eq_ignore_ascii_case(host.as_bytes())
                && (fqdn.len() == host.len() || fqdn.as_bytes()[host.len()] == b'.')
                && !host.is_empty()
        });
        match (named, l.services.as_slice()) {
            (Some(s), _) => s,
            (None, [only]) => only,
            _ => "unknown",
        }
    }

    /// outboundTrafficPolicy ALLOW_ANY: unknown hosts go where they were addressed.
    pub fn passthrough(&self) -> bool {
        self.raw.routes.passthrough
    }

    /// The TCP service a host and port name.
    pub fn tcp_service(&self, host: &str, port: u16) -> Option<&Arc<CompiledTcp>> {
        self.tcp.get(&(host.to_ascii_lowercase(), port))
    }

    /// Find the virtual host for a request authority's host and port.
    /// The gateway virtual host for a Host and server port: exact, then `*.suffix`, then `*`.
    pub fn gateway_vhost(&self, host: &str, port: u16) -> Option<&CompiledVhost> {
        let host = host.to_ascii_lowercase();
        let find = |h: &str| {
            self.gw_hosts.get(h).and_then(|e| e.iter().find(|(p, _)| *p == port)).map(|(_, i)| &self.vhosts[*i])
        };
        if let Some(v) = find(&host) {
            return Some(v);
        }
        let mut rest = host.as_str();
        while let Some((_, tail)) = rest.split_once('.') {
            if let Some(v) = find(&format!("*.{tail}")) {
                return Some(v);
            }
            rest = tail;
        }
        find("*")
    }

    /// The gateway TCP server on a port.
    pub fn gateway_tcp(&self, port: u16) -> Option<&Arc<CompiledTcp>> {
        self.gw_tcp.get(&port)
    }

    pub fn vhost(&self, host: &str, port: u16) -> Option<&CompiledVhost> {
        let entries = match self.hosts.get(host) {
            Some(e) => e,
            None if host.bytes().any(|b| b.is_ascii_uppercase()) => self.hosts.get(&host.to_ascii_lowercase())?,
            None => return None,
        };
        entries.iter().find(|(p, _)| *p == port).map(|(_, i)| &self.vhosts[*i])
    }

    /// Compile a full config. Errors name the part at fault.
    pub fn compile(raw: ProxyConfig, versions: HashMap<ConfigType, String>) -> Result<Snapshot, ConfigError> {
        let mut clusters: HashMap<&str, Arc<ClusterState>> = HashMap::new();
        for c in &raw.clusters.clusters {
            let endpoints = raw
                .endpoints
                .clusters
                .get(&c.name)
                .map(|eps| eps.iter().map(|e| (e.address, e.hostname.as_deref().map(Arc::from))).collect::<Vec<_>>())
                .unwrap_or_default();
            if let Some((bad, _)) = endpoints.iter().find(|(a, _)| a.port() == 0) {
                return Err(err(ConfigType::Endpoints, format!("cluster {}: endpoint {bad} has port 0", c.name)));
            }
            let mut state = ClusterState::new(
                c.name.clone(),
                c.lb_policy,
                endpoints,
                c.hash.clone(),
                c.limits.as_ref(),
                c.outlier.clone(),
            );
            state.passthrough = c.passthrough;
            state.h2_upgrade = c.h2_upgrade;
            state.app_http = c.app_http;
            state.service = c.service.clone();
            let state = Arc::new(state);
            if clusters.insert(c.name.as_str(), state).is_some() {
                return Err(err(ConfigType::Clusters, format!("duplicate cluster {}", c.name)));
            }
        }
        let mut hosts: HashMap<String, Vec<(u16, usize)>> = HashMap::new();
        let mut gw_hosts: HashMap<String, Vec<(u16, usize)>> = HashMap::new();
        let mut vhosts = Vec::new();
        let all_vhosts = raw
            .routes
            .virtual_hosts
            .iter()
            .map(|v| (v, false))
            .chain(raw.routes.gateway_http.iter().map(|v| (v, true)));
        for (vi, (vh, gateway)) in all_vhosts.enumerate() {
            let mut routes = Vec::new();
            for r in &vh.routes {
                let matches = r
                    .matches
                    .iter()
                    .map(CompiledMatch::compile)
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|m| err(ConfigType::Routes, format!("{} route {:?}: {m}", vh.name, r.name)))?;
                let bad = |m: String| err(ConfigType::Routes, format!("{} route {:?}: {m}", vh.name, r.name));
                let cluster = |name: &str| {
                    clusters.get(name).cloned().ok_or_else(|| bad(format!("references unknown cluster {name}")))
                };
                let mut cs = Vec::new();
                for wc in &r.clusters {
                    cs.push(Target {
                        cluster: cluster(&wc.cluster)?,
                        weight: wc.weight,
                        request_headers: CompiledOps::compile(&wc.request_headers).map_err(bad)?,
                        response_headers: CompiledOps::compile(&wc.response_headers).map_err(bad)?,
                    });
                }
                if cs.is_empty() && r.redirect.is_none() && r.direct_response.is_none() {
                    return Err(bad("has no destination".into()));
                }
                let rewrite = match &r.rewrite {
                    None => None,
                    Some(rw) => Some(CompiledRewrite {
                        uri: rw.uri.clone(),
                        authority: rw
                            .authority
                            .as_deref()
                            .map(http::HeaderValue::from_str)
                            .transpose()
                            .map_err(|_| bad("invalid rewrite authority".into()))?,
                        uri_regex: match &rw.uri_regex {
                            Some((p, with)) => Some((
                                regex::RegexBuilder::new(p)
                                    .size_limit(1 << 20)
                                    .build()
                                    .map_err(|e| bad(format!("invalid regex {p:?}: {e}")))?,
                                re2_replacement(with),
                            )),
                            None => None,
                        },
                    }),
                };
                let mirrors = r
                    .mirrors
                    .iter()
                    .map(|m| Ok((cluster(&m.cluster)?, m.percent)))
                    .collect::<Result<Vec<_>, ConfigError>>()?;
                let total_weight = cs.iter().map(|t| t.weight).sum();
                routes.push(CompiledRoute {
                    name: r.name.clone(),
                    matches,
                    clusters: cs,
                    total_weight,
                    redirect: r.redirect.clone(),
                    direct_response: r.direct_response.clone(),
                    rewrite,
                    timeout: r.timeout_ms.map(std::time::Duration::from_millis),
                    retries: r.retries.clone(),
                    fault: r.fault.clone(),
                    mirrors,
                    request_headers: CompiledOps::compile(&r.request_headers).map_err(bad)?,
                    response_headers: CompiledOps::compile(&r.response_headers).map_err(bad)?,
                    cors: match &r.cors {
                        Some(c) => Some((
                            c.clone(),
                            c.allow_origins.iter().map(Matcher::compile).collect::<Result<_, _>>().map_err(bad)?,
                        )),
                        None => None,
                    },
                });
            }
            for d in &vh.domains {
                let map = if gateway { &mut gw_hosts } else { &mut hosts };
                map.entry(d.to_ascii_lowercase()).or_default().push((vh.port, vi));
            }
            vhosts.push(CompiledVhost { name: vh.name.clone(), routes });
        }
        let mut peers = HashMap::new();
        for e in raw.endpoints.clusters.values().flatten().filter(|e| e.hostname.is_none()) {
            if e.mtls && e.identity.is_empty() {
                return Err(err(
                    ConfigType::Endpoints,
                    format!("endpoint {} uses mTLS but has no identity", e.address),
                ));
            }
            peers.insert(e.address, Peer { identity: Arc::from(e.identity.as_str()), mtls: e.mtls });
        }
        let inbound = raw.listeners.inbound.iter().map(|l| (l.port, (l.mtls, l.tcp))).collect();
        let mut tcp = HashMap::new();
        for t in &raw.routes.tcp {
            let compiled = Arc::new(CompiledTcp::compile(t, &clusters)?);
            for d in &t.domains {
                tcp.insert((d.to_ascii_lowercase(), t.port), compiled.clone());
            }
        }
        let authz = crate::authz::Authz::compile(&raw.listeners.policies).map_err(|m| err(ConfigType::Listeners, m))?;
        let jwt = crate::jwt::JwtAuth::compile(&raw.listeners.jwt).map_err(|m| err(ConfigType::Listeners, m))?;
        let rate_limit = raw.listeners.rate_limit.as_ref().map(RateLimiter::new);
        let gw_tcp = raw
            .routes
            .gateway_tcp
            .iter()
            .map(|t| Ok((t.port, Arc::new(CompiledTcp::compile(t, &clusters)?))))
            .collect::<Result<HashMap<_, _>, ConfigError>>()?;
        Ok(Snapshot { peers, inbound, tcp, gw_tcp, authz, jwt, rate_limit, hosts, gw_hosts, vhosts, raw, versions })
    }
}

/// What `/config_dump` shows.
#[derive(Serialize)]
pub struct Dump<'a> {
    pub versions: &'a HashMap<ConfigType, String>,
    pub config: &'a ProxyConfig,
}

#[cfg(test)]
mod tests {
    use mesh_api::proxy_config::*;

    use super::*;

    fn snapshot(routes: Vec<Route>, clusters: &[&str]) -> Snapshot {
        let raw = ProxyConfig {
            routes: Routes {
                tcp: Vec::new(),
                passthrough: false,
                gateway_http: Vec::new(),
                gateway_tcp: Vec::new(),
                virtual_hosts: vec![VirtualHost {
                    name: "reviews.default.svc.cluster.local:9080".into(),
                    domains: vec!["reviews".into(), "reviews.default.svc.cluster.local".into()],
                    port: 9080,
                    routes,
                }],
            },
            clusters: Clusters {
                clusters: clusters
                    .iter()
                    .map(|c| Cluster {
                        name: c.to_string(),
                        service: "reviews".into(),
                        port: 9080,
                        subset: None,
                        lb_policy: LbPolicy::RoundRobin,
                        hash: None,
                        limits: None,
                        outlier: None,
                        passthrough: false,
                        h2_upgrade: false,
                        app_http: None,
                    })
                    .collect(),
            },
            endpoints: Endpoints {
                clusters: clusters
                    .iter()
                    .enumerate()
                    .map(|(i, c)| {
                        let port = u16::try_from(1000 + i).unwrap_or(1);
                        let eps = vec![
                            Endpoint {
                                address: ([127, 0, 0, 1], port).into(),
                                workload: "a".into(),
                                identity: String::new(),
                                mtls: false,
                                hostname: None,
                            },
                            Endpoint {
                                address: ([127, 0, 0, 2], port).into(),
                                workload: "b".into(),
                                identity: String::new(),
                                mtls: false,
                                hostname: None,
                            },
                        ];
                        (c.to_string(), eps)
                    })
                    .collect(),
            },
            listeners: Listeners::default(),
        };
        Snapshot::compile(raw, HashMap::new()).expect("compiles")
    }

    fn route(matches: Vec<RouteMatch>, clusters: &[(&str, u32)]) -> Route {
        Route {
            name: "r".into(),
            matches,
            clusters: clusters
                .iter()
                .map(|(c, w)| WeightedCluster {
                    cluster: c.to_string(),
                    weight: *w,
                    request_headers: HeaderOps::default(),
                    response_headers: HeaderOps::default(),
                })
                .collect(),
            ..Default::default()
        }
    }

    fn first_match<'a>(s: &'a Snapshot, method: &str, path: &str, headers: &[(&str, &str)]) -> Option<&'a str> {
        let mut h = http::HeaderMap::new();
        for (k, v) in headers {
            h.insert(HeaderName::from_bytes(k.as_bytes()).expect("name"), v.parse().expect("value"));
        }
        let method = http::Method::from_bytes(method.as_bytes()).expect("method");
        let (path, query) = path.split_once('?').map_or((path, None), |(p, q)| (p, Some(q)));
        let view = RequestView { method: &method, path, query, authority: "reviews:9080", scheme: "http", headers: &h };
        let vh = s.vhost("reviews", 9080)?;
        vh.routes
            .iter()
            .find(|r| r.matches.is_empty() || r.matches.iter().any(|m| m.matches(&view)))
            .map(|r| r.clusters[0].cluster.name.as_str())
    }

    #[test]
    fn rules_match_in_order_on_uri_method_and_headers() {
        let jason = RouteMatch {
            headers: vec![HeaderMatcher { name: "end-user".into(), value: Some(StringMatcher::Exact("jason".into())) }],
            ..Default::default()
        };
        let api = RouteMatch {
            uri: Some(StringMatcher::Prefix("/api".into())),
            method: Some(StringMatcher::Regex("GET|HEAD".into())),
            ..Default::default()
        };
        let present =
            RouteMatch { headers: vec![HeaderMatcher { name: "x-canary".into(), value: None }], ..Default::default() };
        let exact = RouteMatch { uri: Some(StringMatcher::Exact("/health".into())), ..Default::default() };
        let s = snapshot(
            vec![
                route(vec![jason], &[("v2", 100)]),
                route(vec![api, present], &[("v3", 100)]),
                route(vec![exact], &[("v4", 100)]),
                route(vec![], &[("v1", 100)]),
            ],
            &["v1", "v2", "v3", "v4"],
        );
        assert_eq!(first_match(&s, "GET", "/", &[("end-user", "jason")]), Some("v2"));
        assert_eq!(first_match(&s, "GET", "/", &[("end-user", "jasonx")]), Some("v1"));
        assert_eq!(first_match(&s, "GET", "/api/x", &[]), Some("v3"));
        assert_eq!(first_match(&s, "POST", "/api/x", &[]), Some("v1"), "regex must match the whole method");
        assert_eq!(first_match(&s, "POST", "/", &[("x-canary", "")]), Some("v3"), "present-only header match");
        assert_eq!(first_match(&s, "GET", "/health", &[]), Some("v4"));
        assert_eq!(first_match(&s, "GET", "/healthz", &[]), Some("v1"), "exact is exact");
    }

    #[test]
    fn re2_group_references_become_regex_crate_ones() {
        assert_eq!(re2_replacement(r"/v\1/items/\2$"), "/v${1}/items/${2}$$");
        let re = regex::Regex::new("^/service/([^/]+)(/.*)$").expect("re");
        assert_eq!(re.replace_all("/service/a/b", re2_replacement(r"\2/instance/\1").as_str()), "/b/instance/a");
    }

    #[test]
    fn query_params_without_headers_and_ignore_case() {
        let q = RouteMatch {
            query_params: vec![HeaderMatcher { name: "debug".into(), value: Some(StringMatcher::Exact("1".into())) }],
            ..Default::default()
        };
        let not_bot = RouteMatch {
            uri: Some(StringMatcher::Prefix("/Books".into())),
            ignore_uri_case: true,
            without_headers: vec![HeaderMatcher { name: "x-bot".into(), value: None }],
            ..Default::default()
        };
        let s = snapshot(
            vec![route(vec![q], &[("v2", 100)]), route(vec![not_bot], &[("v3", 100)]), route(vec![], &[("v1", 100)])],
            &["v1", "v2", "v3"],
        );
        assert_eq!(first_match(&s, "GET", "/x?a=b&debug=1", &[]), Some("v2"));
        assert_eq!(first_match(&s, "GET", "/x?debug=2", &[]), Some("v1"));
        assert_eq!(first_match(&s, "GET", "/books/1", &[]), Some("v3"), "case-insensitive prefix");
        assert_eq!(first_match(&s, "GET", "/BOOKS", &[("x-bot", "yes")]), Some("v1"), "withoutHeaders excludes");
    }

    #[test]
    fn the_inbound_service_label_comes_from_config() {
        let mut s = Snapshot::default();
        let listener = |services: &[&str]| mesh_api::proxy_config::InboundListener {
            port: 9080,
            mtls: Default::default(),
            tcp: false,
            services: services.iter().map(|s| s.to_string()).collect(),
            app_http: None,
        };
        s.raw.listeners.inbound = vec![listener(&["reviews.default.svc.cluster.local"])];
        for host in ["reviews", "Reviews.default:9080", "evil.example", "", "x".repeat(10_000).as_str()] {
            assert_eq!(s.inbound_service(9080, host), "reviews.default.svc.cluster.local", "{host}");
        }
        assert_eq!(s.inbound_service(1234, "reviews"), "unknown", "a port no Service sends to");
        let both = ["canary.default.svc.cluster.local", "reviews.default.svc.cluster.local"];
        s.raw.listeners.inbound = vec![listener(&both)];
        assert_eq!(s.inbound_service(9080, "canary.default.svc"), both[0]);
        assert_eq!(s.inbound_service(9080, "reviews:9080"), both[1]);
        assert_eq!(s.inbound_service(9080, "rev"), "unknown", "a prefix of a name is not the name");
        assert_eq!(s.inbound_service(9080, "10.0.0.1:9080"), "unknown");
    }

    #[test]
    fn hosts_are_case_insensitive_and_port_specific() {
        let s = snapshot(vec![route(vec![], &[("v1", 100)])], &["v1"]);
        assert!(s.vhost("reviews", 9080).is_some());
        assert!(s.vhost("REVIEWS.default.svc.cluster.local", 9080).is_some());
        assert!(s.vhost("reviews", 80).is_none());
        assert!(s.vhost("ratings", 9080).is_none());
    }

    #[test]
    fn weights_and_round_robin() {
        let s = snapshot(vec![route(vec![], &[("v1", 90), ("v2", 10), ("v3", 0)])], &["v1", "v2", "v3"]);
        let r = &s.vhost("reviews", 9080).expect("vhost").routes[0];
        let mut counts = HashMap::new();
        for _ in 0..10_000 {
            *counts.entry(r.pick_cluster().expect("cluster").cluster.name.clone()).or_insert(0) += 1;
        }
        let v2 = counts.get("v2").copied().unwrap_or(0);
        assert!((800..=1200).contains(&v2), "{counts:?}");
        assert_eq!(counts.get("v3"), None, "weight 0 is never picked");
        let c = &r.clusters[0].cluster;
        let picks: Vec<_> = (0..4).map(|_| c.pick().expect("endpoint")).collect();
        assert_eq!(picks[0], picks[2]);
        assert_ne!(picks[0], picks[1]);
    }

    #[test]
    fn bad_parts_are_attributed_to_their_type() {
        let raw = ProxyConfig {
            routes: Routes {
                tcp: Vec::new(),
                passthrough: false,
                gateway_http: Vec::new(),
                gateway_tcp: Vec::new(),
                virtual_hosts: vec![VirtualHost {
                    name: "x".into(),
                    domains: vec!["x".into()],
                    port: 80,
                    routes: vec![route(vec![], &[("missing", 100)])],
                }],
            },
            ..Default::default()
        };
        let err = Snapshot::compile(raw, HashMap::new()).expect_err("dangling cluster");
        assert_eq!(err.config_type, ConfigType::Routes);
        assert!(err.message.contains("unknown cluster missing"));
    }
}
