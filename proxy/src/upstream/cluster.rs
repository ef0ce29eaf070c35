//! A cluster: its endpoints, the balancer, the circuit breaker and outlier detection.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};

use mesh_api::proxy_config::*;

use crate::now_ms;

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
    /// DestinationRule TLS origination: how to reach the endpoints over TLS, or why it cannot.
    pub origin: Option<Result<Arc<crate::tls_config::Origin>, String>>,
    /// The pools of TLS-originated connections (HTTP/1.1, HTTP/2), made on first use; a new
    /// config (a rotated credential) makes new ones.
    pub origin_pools: std::sync::OnceLock<[crate::upstream::pool::Pool; 2]>,
}

/// Per-cluster connection settings; clusters with the same settings share a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PoolSettings {
    pub connect_timeout_ms: Option<u64>,
    pub idle_timeout_ms: Option<u64>,
    pub no_reuse: bool,
}

impl ClusterState {
    /// The pool of TLS-originated connections for this cluster (None: it does not originate
    /// TLS). Err: origination is configured but cannot work (a missing credential, a bad CA).
    pub fn origin_pool(&self, h2: bool) -> Result<Option<crate::upstream::pool::Pool>, String> {
        use crate::upstream::pool::{DEFAULT_CONNECT_TIMEOUT, DEFAULT_IDLE_TIMEOUT, Dial, Pool, Settings};
        let origin = match &self.origin {
            None => return Ok(None),
            Some(Err(e)) => return Err(e.clone()),
            Some(Ok(o)) => o,
        };
        let p = self.pool.unwrap_or(PoolSettings { connect_timeout_ms: None, idle_timeout_ms: None, no_reuse: false });
        let settings = |h2| Settings {
            h2,
            connect_timeout: p.connect_timeout_ms.map_or(DEFAULT_CONNECT_TIMEOUT, std::time::Duration::from_millis),
            idle_timeout: p.idle_timeout_ms.map_or(DEFAULT_IDLE_TIMEOUT, std::time::Duration::from_millis),
            reuse: !p.no_reuse,
        };
        let pools = self.origin_pools.get_or_init(|| {
            [
                Pool::new(settings(false), Dial::Originate(origin.clone())),
                Pool::new(settings(true), Dial::Originate(origin.clone())),
            ]
        });
        Ok(Some(pools[usize::from(h2)].clone()))
    }

    /// The DestinationRule's `tcp.idleTimeout` for TCP connections to this cluster: None
    /// leaves the listener's; zero means never.
    pub fn tcp_idle(&self) -> Option<std::time::Duration> {
        self.tcp_idle_ms.map(std::time::Duration::from_millis)
    }
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
            origin: None,
            origin_pools: std::sync::OnceLock::new(),
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
