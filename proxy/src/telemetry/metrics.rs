//! Istio's standard metrics, with Istio's names and labels, so existing dashboards and Kiali
//! queries work: `istio_requests_total`, `istio_request_duration_milliseconds`,
//! `istio_request_bytes`, `istio_response_bytes`, and the TCP connection and byte counters.
//!
//! Peer workload facts travel as Istio's metadata exchange does: each proxy adds its own
//! (`x-mesh-peer`: `namespace/name;app;version`) to requests and responses between proxies and
//! removes the peer's before the app sees it.

use std::collections::{BTreeMap, HashMap};
use std::hash::BuildHasher;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// The header carrying a proxy's workload to its peer.
pub const PEER_HEADER: &str = "x-mesh-peer";

/// The cluster every workload is in until the mesh spans several (Istio's default cluster ID).
pub const DEFAULT_CLUSTER: &str = "Kubernetes";

/// A workload as metrics name it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Peer {
    pub workload: String,
    pub namespace: String,
    pub app: String,
    pub version: String,
    /// Istio's canonical service: `service.istio.io/canonical-name`, else
    /// `app.kubernetes.io/name`, else `app`, else the workload's name.
    pub canonical_service: String,
    /// `service.istio.io/canonical-revision`, else `app.kubernetes.io/version`, else `version`,
    /// else `latest`.
    pub canonical_revision: String,
    pub cluster: String,
}

impl Peer {
    pub fn of(name: &str, namespace: &str, labels: &BTreeMap<String, String>) -> Peer {
        let first = |keys: &[&str]| keys.iter().find_map(|k| labels.get(*k).filter(|v| !v.is_empty())).cloned();
        Peer {
            workload: name.to_string(),
            namespace: namespace.to_string(),
            app: labels.get("app").cloned().unwrap_or_else(|| "unknown".into()),
            version: labels.get("version").cloned().unwrap_or_else(|| "unknown".into()),
            canonical_service: first(&["service.istio.io/canonical-name", "app.kubernetes.io/name", "app"])
                .unwrap_or_else(|| name.to_string()),
            canonical_revision: first(&["service.istio.io/canonical-revision", "app.kubernetes.io/version", "version"])
                .unwrap_or_else(|| "latest".into()),
            cluster: DEFAULT_CLUSTER.into(),
        }
    }

    /// The metadata-exchange value: `namespace/name;app;version;canonical service;canonical
    /// revision;cluster`.
    pub fn header(&self) -> String {
        format!(
            "{}/{};{};{};{};{};{}",
            self.namespace,
            self.workload,
            self.app,
            self.version,
            self.canonical_service,
            self.canonical_revision,
            self.cluster
        )
    }

    /// A peer's metadata-exchange value; the canonical fields of an older peer's shorter value
    /// follow from its app and version as they would from its labels.
    pub fn parse(v: &str) -> Option<Peer> {
        let mut parts = v.split(';');
        let (namespace, workload) = parts.next()?.split_once('/')?;
        let mut field = || parts.next().filter(|p| !p.is_empty()).map(str::to_string);
        let app = field().unwrap_or_else(|| "unknown".into());
        let version = field().unwrap_or_else(|| "unknown".into());
        let canonical_service =
            field().or_else(|| (app != "unknown").then(|| app.clone())).unwrap_or_else(|| workload.to_string());
        let canonical_revision =
            field().or_else(|| (version != "unknown").then(|| version.clone())).unwrap_or_else(|| "latest".into());
        let cluster = field().unwrap_or_else(|| DEFAULT_CLUSTER.into());
        Some(Peer {
            workload: workload.to_string(),
            namespace: namespace.to_string(),
            app,
            version,
            canonical_service,
            canonical_revision,
            cluster,
        })
    }

    fn unknown() -> Peer {
        let u = || "unknown".to_string();
        Peer {
            workload: u(),
            namespace: u(),
            app: u(),
            version: u(),
            canonical_service: u(),
            canonical_revision: u(),
            cluster: u(),
        }
    }
}

/// Who talked to whom: the workload labels request and TCP metrics both carry, for each side.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PeerLabels {
    pub source_workload: String,
    pub source_workload_namespace: String,
    pub source_principal: String,
    pub source_app: String,
    pub source_version: String,
    pub source_canonical_service: String,
    pub source_canonical_revision: String,
    pub source_cluster: String,
    pub destination_workload: String,
    pub destination_workload_namespace: String,
    pub destination_principal: String,
    pub destination_app: String,
    pub destination_version: String,
    pub destination_canonical_service: String,
    pub destination_canonical_revision: String,
    pub destination_cluster: String,
}

impl PeerLabels {
    fn new((s, source_principal): (&Peer, &str), (d, destination_principal): (&Peer, &str)) -> PeerLabels {
        PeerLabels {
            source_workload: s.workload.clone(),
            source_workload_namespace: s.namespace.clone(),
            source_principal: principal_of(source_principal).into(),
            source_app: s.app.clone(),
            source_version: s.version.clone(),
            source_canonical_service: s.canonical_service.clone(),
            source_canonical_revision: s.canonical_revision.clone(),
            source_cluster: s.cluster.clone(),
            destination_workload: d.workload.clone(),
            destination_workload_namespace: d.namespace.clone(),
            destination_principal: principal_of(destination_principal).into(),
            destination_app: d.app.clone(),
            destination_version: d.version.clone(),
            destination_canonical_service: d.canonical_service.clone(),
            destination_canonical_revision: d.canonical_revision.clone(),
            destination_cluster: d.cluster.clone(),
        }
    }

    /// Whether these are the labels `new` would make of the same peers.
    fn matches(&self, (s, source_principal): (&Peer, &str), (d, destination_principal): (&Peer, &str)) -> bool {
        self.source_workload == s.workload
            && self.source_workload_namespace == s.namespace
            && self.source_principal == principal_of(source_principal)
            && self.source_app == s.app
            && self.source_version == s.version
            && self.source_canonical_service == s.canonical_service
            && self.source_canonical_revision == s.canonical_revision
            && self.source_cluster == s.cluster
            && self.destination_workload == d.workload
            && self.destination_workload_namespace == d.namespace
            && self.destination_principal == principal_of(destination_principal)
            && self.destination_app == d.app
            && self.destination_version == d.version
            && self.destination_canonical_service == d.canonical_service
            && self.destination_canonical_revision == d.canonical_revision
            && self.destination_cluster == d.cluster
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub reporter: String,
    #[prometheus(flatten)]
    pub peers: PeerLabels,
    pub destination_service: String,
    pub destination_service_name: String,
    pub destination_service_namespace: String,
    pub request_protocol: String,
    pub response_code: String,
    pub response_flags: String,
    pub connection_security_policy: String,
    pub grpc_response_status: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TcpLabels {
    pub reporter: String,
    #[prometheus(flatten)]
    pub peers: PeerLabels,
    pub destination_service: String,
    pub destination_service_name: String,
    pub destination_service_namespace: String,
    pub connection_security_policy: String,
}

impl TcpLabels {
    /// The labels of a TCP connection between `source` and `destination` (either may be
    /// unknown), as `reporter` saw it.
    pub fn new(
        reporter: &str,
        source: (&Peer, &str),
        destination: (&Peer, &str),
        destination_service: &str,
        connection_security_policy: &str,
    ) -> TcpLabels {
        let (svc_name, svc_ns) = service_parts(destination_service);
        TcpLabels {
            reporter: reporter.into(),
            peers: PeerLabels::new(source, destination),
            destination_service: destination_service.into(),
            destination_service_name: svc_name.into(),
            destination_service_namespace: svc_ns.into(),
            connection_security_policy: connection_security_policy.into(),
        }
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BuildLabels {
    pub component: &'static str,
    pub tag: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ListenerLabel {
    /// outbound, inbound, gateway, outbound_tcp
    pub listener: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ListenerCauseLabel {
    pub listener: &'static str,
    pub cause: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CauseLabel {
    pub cause: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ConfigLabel {
    pub r#type: &'static str,
    /// ack or nack
    pub result: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct VersionLabel {
    pub r#type: &'static str,
    pub version: String,
}

/// Counts a connection while it is open.
pub struct OpenConnection(Gauge);

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.dec();
    }
}

type HistFamily = Family<RequestLabels, Histogram, fn() -> Histogram>;

fn duration_histogram() -> Histogram {
    // Istio's default buckets for request duration, in milliseconds.
    Histogram::new([0.5, 1.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0, 30000.0])
}

fn bytes_histogram() -> Histogram {
    Histogram::new(exponential_buckets(1.0, 10.0, 9))
}

pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    duration: HistFamily,
    request_bytes: HistFamily,
    response_bytes: HistFamily,
    tcp_opened: Family<TcpLabels, Counter>,
    tcp_closed: Family<TcpLabels, Counter>,
    tcp_sent: Family<TcpLabels, Counter>,
    tcp_received: Family<TcpLabels, Counter>,
    connections_active: Family<ListenerLabel, Gauge>,
    connections: Family<ListenerLabel, Counter>,
    upstream_errors: Family<CauseLabel, Counter>,
    downstream_rejected: Family<ListenerCauseLabel, Counter>,
    config_updates: Family<ConfigLabel, Counter>,
    config_version: Family<VersionLabel, Gauge>,
    /// 1 while the discovery stream to meshd is up.
    pub meshd_connected: Gauge,
    /// The request metrics of each label set seen, found by one hash of the borrowed label
    /// values: a request neither allocates its labels nor hashes them four times.
    request_cache: std::sync::RwLock<RequestCache>,
    cache_hasher: foldhash::fast::RandomState,
}

/// Label-set hash -> the label sets with that hash, their response code and their metrics.
/// Keyed by a hash of the record's label fields (foldhash: per-process seeds, and several
/// times cheaper than SipHash on the fourteen strings hashed per request).
type RequestCache = HashMap<u64, Vec<(RequestLabels, u16, RequestHandles)>, foldhash::fast::RandomState>;

/// The four metrics one request updates, sharing their values with the families'.
struct RequestHandles {
    requests: Counter,
    duration: Histogram,
    request_bytes: Histogram,
    response_bytes: Histogram,
}

/// The cached metrics of `r`'s label set (`key` is its hash).
fn find<'c>(cache: &'c RequestCache, key: u64, r: &RequestRecord<'_>) -> Option<&'c RequestHandles> {
    cache.get(&key)?.iter().find(|(l, code, _)| *code == r.code && r.matches(l)).map(|(.., h)| h)
}

impl RequestHandles {
    fn observe(&self, r: &RequestRecord<'_>) {
        self.requests.inc();
        self.duration.observe(r.millis);
        self.request_bytes.observe(r.request_bytes as f64);
        self.response_bytes.observe(r.response_bytes as f64);
    }
}

/// One finished request, as either side reports it.
pub struct RequestRecord<'a> {
    pub reporter: &'static str,
    pub source: &'a Peer,
    pub source_principal: &'a str,
    pub destination: &'a Peer,
    pub destination_principal: &'a str,
    pub destination_service: &'a str,
    pub protocol: &'static str,
    pub code: u16,
    pub flags: &'static str,
    pub mtls: bool,
    pub grpc_status: Option<&'a str>,
    pub millis: f64,
    pub request_bytes: u64,
    pub response_bytes: u64,
}

impl RequestRecord<'_> {
    fn connection_security_policy(&self) -> &'static str {
        if self.reporter == "source" {
            "unknown"
        } else if self.mtls {
            "mutual_tls"
        } else {
            "none"
        }
    }

    /// Everything the labels are made of (the service name and namespace follow from the
    /// service).
    fn key_fields(&self) -> ([&str; 20], u16, Option<&str>) {
        let (s, d) = (self.source, self.destination);
        let strings = [
            self.reporter,
            &s.workload,
            &s.namespace,
            &s.app,
            &s.version,
            &s.canonical_service,
            &s.canonical_revision,
            &s.cluster,
            principal_of(self.source_principal),
            &d.workload,
            &d.namespace,
            &d.app,
            &d.version,
            &d.canonical_service,
            &d.canonical_revision,
            &d.cluster,
            principal_of(self.destination_principal),
            self.destination_service,
            self.protocol,
            self.flags,
        ];
        (strings, self.code, self.grpc_status)
    }

    /// Whether `l` (without its response code) is this record's label set.
    fn matches(&self, l: &RequestLabels) -> bool {
        l.reporter == self.reporter
            && l.peers.matches((self.source, self.source_principal), (self.destination, self.destination_principal))
            && l.destination_service == self.destination_service
            && l.request_protocol == self.protocol
            && l.response_flags == self.flags
            && l.connection_security_policy == self.connection_security_policy()
            && l.grpc_response_status == self.grpc_status.unwrap_or("")
    }

    fn labels(&self) -> RequestLabels {
        let (svc_name, svc_ns) = service_parts(self.destination_service);
        RequestLabels {
            reporter: self.reporter.into(),
            peers: PeerLabels::new(
                (self.source, self.source_principal),
                (self.destination, self.destination_principal),
            ),
            destination_service: self.destination_service.into(),
            destination_service_name: svc_name.into(),
            destination_service_namespace: svc_ns.into(),
            request_protocol: self.protocol.into(),
            response_code: self.code.to_string(),
            response_flags: self.flags.into(),
            connection_security_policy: self.connection_security_policy().into(),
            grpc_response_status: self.grpc_status.unwrap_or("").into(),
        }
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        let duration = HistFamily::new_with_constructor(duration_histogram);
        let request_bytes = HistFamily::new_with_constructor(bytes_histogram);
        let response_bytes = HistFamily::new_with_constructor(bytes_histogram);
        let tcp_opened = Family::<TcpLabels, Counter>::default();
        let tcp_closed = Family::<TcpLabels, Counter>::default();
        let tcp_sent = Family::<TcpLabels, Counter>::default();
        let tcp_received = Family::<TcpLabels, Counter>::default();
        registry.register("istio_requests", "Requests, by source and destination", requests.clone());
        registry.register("istio_request_duration_milliseconds", "Request duration", duration.clone());
        registry.register("istio_request_bytes", "Request body size", request_bytes.clone());
        registry.register("istio_response_bytes", "Response body size", response_bytes.clone());
        registry.register("istio_tcp_connections_opened", "TCP connections opened", tcp_opened.clone());
        registry.register("istio_tcp_connections_closed", "TCP connections closed", tcp_closed.clone());
        registry.register("istio_tcp_sent_bytes", "Bytes sent during TCP connections", tcp_sent.clone());
        registry.register("istio_tcp_received_bytes", "Bytes received during TCP connections", tcp_received.clone());
        let connections_active = Family::<ListenerLabel, Gauge>::default();
        let connections = Family::<ListenerLabel, Counter>::default();
        let upstream_errors = Family::<CauseLabel, Counter>::default();
        let downstream_rejected = Family::<ListenerCauseLabel, Counter>::default();
        let config_updates = Family::<ConfigLabel, Counter>::default();
        let config_version = Family::<VersionLabel, Gauge>::default();
        let meshd_connected = Gauge::default();
        registry.register("mesh_proxy_connections_active", "Open downstream connections", connections_active.clone());
        registry.register("mesh_proxy_connections", "Downstream connections accepted", connections.clone());
        registry.register(
            "mesh_proxy_upstream_errors",
            "Requests the proxy answered itself because the upstream failed, by cause",
            upstream_errors.clone(),
        );
        registry.register(
            "mesh_proxy_downstream_rejected",
            "Downstream connections closed and requests refused by a limit or timeout, by listener and cause",
            downstream_rejected.clone(),
        );
        registry.register(
            "mesh_proxy_config_updates",
            "Config parts received, accepted or rejected",
            config_updates.clone(),
        );
        registry.register(
            "mesh_proxy_config_version",
            "The config version in force, per type (value 1)",
            config_version.clone(),
        );
        registry.register("mesh_proxy_meshd_connected", "1 while the discovery stream is up", meshd_connected.clone());
        let build = Family::<BuildLabels, Gauge>::default();
        build.get_or_create(&BuildLabels { component: "proxy", tag: mesh_api::VERSION }).set(1);
        registry.register("istio_build", "Build information of this proxy (Istio's istio_build)", build);
        Metrics {
            connections_active,
            connections,
            upstream_errors,
            downstream_rejected,
            config_updates,
            config_version,
            meshd_connected,
            registry,
            requests,
            duration,
            request_bytes,
            response_bytes,
            tcp_opened,
            tcp_closed,
            tcp_sent,
            tcp_received,
            request_cache: Default::default(),
            cache_hasher: Default::default(),
        }
    }

    /// Count one request in the metrics of its label set: found in the cache and updated under
    /// its read lock (nothing cloned), or made in the families on first use.
    pub fn record(&self, r: &RequestRecord<'_>) {
        let key = self.cache_hasher.hash_one(r.key_fields());
        if let Some(h) = find(&self.request_cache.read().unwrap_or_else(|p| p.into_inner()), key, r) {
            h.observe(r);
            return;
        }
        let mut cache = self.request_cache.write().unwrap_or_else(|p| p.into_inner());
        if let Some(h) = find(&cache, key, r) {
            h.observe(r);
            return;
        }
        let labels = r.labels();
        let h = RequestHandles {
            requests: self.requests.get_or_create(&labels).clone(),
            duration: self.duration.get_or_create(&labels).clone(),
            request_bytes: self.request_bytes.get_or_create(&labels).clone(),
            response_bytes: self.response_bytes.get_or_create(&labels).clone(),
        };
        h.observe(r);
        cache.entry(key).or_default().push((labels, r.code, h));
    }

    pub fn tcp_opened(&self, l: &TcpLabels) {
        self.tcp_opened.get_or_create(l).inc();
    }

    pub fn tcp_closed(&self, l: &TcpLabels, sent: u64, received: u64) {
        self.tcp_closed.get_or_create(l).inc();
        self.tcp_sent.get_or_create(l).inc_by(sent);
        self.tcp_received.get_or_create(l).inc_by(received);
    }

    /// Count a downstream connection on `listener` until the returned guard drops.
    pub fn connection(&self, listener: &'static str) -> OpenConnection {
        let l = ListenerLabel { listener };
        self.connections.get_or_create(&l).inc();
        let g = self.connections_active.get_or_create(&l).clone();
        g.inc();
        OpenConnection(g)
    }

    /// A request the proxy answered itself because of the upstream: connect_failure, reset,
    /// timeout, no_healthy_upstream, overflow, no_route.
    pub fn upstream_error(&self, cause: &'static str) {
        self.upstream_errors.get_or_create(&CauseLabel { cause }).inc();
    }

    /// A downstream connection or request refused or closed by a limit or timeout:
    /// connection_limit, request_limit, accept_error, request_headers_timeout,
    /// stream_idle_timeout, idle_timeout, tls_handshake_timeout, loop.
    pub fn downstream_rejected(&self, listener: &'static str, cause: &'static str) {
        self.downstream_rejected.get_or_create(&ListenerCauseLabel { listener, cause }).inc();
    }

    /// A config part from meshd: accepted (its version now in force) or rejected.
    pub fn config_update(&self, r#type: &'static str, version: &str, accepted: bool, previous: Option<&str>) {
        let result = if accepted { "ack" } else { "nack" };
        self.config_updates.get_or_create(&ConfigLabel { r#type, result }).inc();
        if accepted {
            if let Some(p) = previous.filter(|p| *p != version) {
                self.config_version.remove(&VersionLabel { r#type, version: p.to_string() });
            }
            self.config_version.get_or_create(&VersionLabel { r#type, version: version.to_string() }).set(1);
        }
    }

    /// The Prometheus text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// `name.namespace.svc.cluster.local` -> (name, namespace); anything else whole.
pub fn service_parts(fqdn: &str) -> (&str, &str) {
    let mut it = fqdn.splitn(3, '.');
    match (it.next(), it.next()) {
        (Some(n), Some(ns)) if fqdn.ends_with(".svc.cluster.local") => (n, ns),
        _ => (fqdn, "unknown"),
    }
}

fn principal_of(spiffe: &str) -> &str {
    if spiffe.is_empty() { "unknown" } else { spiffe }
}

/// The peer metrics name when a request carries none (made once).
pub fn unknown_peer() -> std::sync::Arc<Peer> {
    static UNKNOWN: std::sync::OnceLock<std::sync::Arc<Peer>> = std::sync::OnceLock::new();
    UNKNOWN.get_or_init(|| std::sync::Arc::new(Peer::unknown())).clone()
}

/// Peers as their metadata-exchange header names them, each distinct value parsed once (a
/// proxy talks to a bounded set of peers; the bound keeps a peer sending ever new values
/// from growing it).
#[derive(Default)]
pub struct PeerCache(std::sync::RwLock<HashMap<http::HeaderValue, std::sync::Arc<Peer>, foldhash::fast::RandomState>>);

const MAX_CACHED_PEERS: usize = 4096;

impl PeerCache {
    pub fn get(&self, v: &http::HeaderValue) -> Option<std::sync::Arc<Peer>> {
        if let Some(p) = self.0.read().unwrap_or_else(|p| p.into_inner()).get(v) {
            return Some(p.clone());
        }
        let peer = std::sync::Arc::new(Peer::parse(v.to_str().ok()?)?);
        let mut cache = self.0.write().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= MAX_CACHED_PEERS {
            cache.clear();
        }
        cache.insert(v.clone(), peer.clone());
        Some(peer)
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn peers_are_parsed_once_per_value_and_the_cache_stays_bounded() {
        let cache = PeerCache::default();
        let v = http::HeaderValue::from_static("default/reviews-v1;reviews;v1");
        let a = cache.get(&v).expect("peer");
        assert_eq!((a.namespace.as_str(), a.workload.as_str(), a.app.as_str()), ("default", "reviews-v1", "reviews"));
        assert!(std::sync::Arc::ptr_eq(&a, &cache.get(&v).expect("peer")), "the second lookup reuses the first");
        assert!(cache.get(&http::HeaderValue::from_static("no-slash")).is_none(), "a malformed value is no peer");
        for i in 0..MAX_CACHED_PEERS + 10 {
            let v = http::HeaderValue::from_str(&format!("ns/w{i};a;v")).expect("value");
            assert_eq!(cache.get(&v).expect("peer").workload, format!("w{i}"));
        }
        assert!(cache.0.read().expect("lock").len() <= MAX_CACHED_PEERS);
    }

    use super::*;

    fn record<'a>(src: &'a Peer, dst: &'a Peer, principal: &'a str, code: u16) -> RequestRecord<'a> {
        RequestRecord {
            reporter: "destination",
            source: src,
            source_principal: principal,
            destination: dst,
            destination_principal: "spiffe://cluster.local/ns/default/sa/reviews",
            destination_service: "reviews.default.svc.cluster.local",
            protocol: "http",
            code,
            flags: "-",
            mtls: true,
            grpc_status: None,
            millis: 2.0,
            request_bytes: 10,
            response_bytes: 100,
        }
    }

    fn count(text: &str, needles: &[&str]) -> Option<u64> {
        text.lines()
            .find(|l| l.starts_with("istio_requests_total{") && needles.iter().all(|n| l.contains(n)))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
    }

    #[test]
    fn each_label_set_counts_its_own_requests() {
        let m = Metrics::new();
        let src = Peer::of("productpage-v1", "default", &BTreeMap::from([("app".into(), "productpage".into())]));
        let dst = Peer::of("reviews-v1", "default", &BTreeMap::new());
        let p = "spiffe://cluster.local/ns/default/sa/productpage";
        for _ in 0..3 {
            m.record(&record(&src, &dst, p, 200));
        }
        m.record(&record(&src, &dst, p, 503));
        m.record(&record(&src, &dst, "", 200));
        let other = Peer::of("productpage-v2", "default", &BTreeMap::new());
        m.record(&record(&other, &dst, p, 200));
        let text = m.encode();
        let ok = ["source_workload=\"productpage-v1\"", "response_code=\"200\"", &format!("source_principal=\"{p}\"")];
        assert_eq!(count(&text, &ok), Some(3), "{text}");
        assert_eq!(count(&text, &["source_workload=\"productpage-v1\"", "response_code=\"503\""]), Some(1));
        assert_eq!(count(&text, &["source_principal=\"unknown\"", "response_code=\"200\""]), Some(1));
        assert_eq!(count(&text, &["source_workload=\"productpage-v2\""]), Some(1));
        assert!(text.contains("destination_service_name=\"reviews\",destination_service_namespace=\"default\""));
        assert!(text.contains("connection_security_policy=\"mutual_tls\""));
        let durations = text.lines().filter(|l| l.starts_with("istio_request_duration_milliseconds_count{")).count();
        assert_eq!(durations, 4, "one histogram per label set: {text}");
    }

    #[test]
    fn canonical_service_and_revision_follow_istios_label_order() {
        let labels = |pairs: &[(&str, &str)]| pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let p = Peer::of(
            "reviews-v2",
            "default",
            &labels(&[
                ("service.istio.io/canonical-name", "reviews-canonical"),
                ("app.kubernetes.io/name", "reviews-k8s"),
                ("app", "reviews"),
                ("service.istio.io/canonical-revision", "r2"),
                ("version", "v2"),
            ]),
        );
        assert_eq!((p.canonical_service.as_str(), p.canonical_revision.as_str()), ("reviews-canonical", "r2"));
        let p = Peer::of("reviews-v2", "default", &labels(&[("app.kubernetes.io/name", "rev"), ("app", "reviews")]));
        assert_eq!((p.canonical_service.as_str(), p.canonical_revision.as_str()), ("rev", "latest"));
        let p = Peer::of("reviews-v2", "default", &labels(&[("app", "reviews"), ("app.kubernetes.io/version", "1.2")]));
        assert_eq!((p.canonical_service.as_str(), p.canonical_revision.as_str()), ("reviews", "1.2"));
        let p = Peer::of("worker-7d9f", "jobs", &labels(&[]));
        assert_eq!((p.canonical_service.as_str(), p.canonical_revision.as_str()), ("worker-7d9f", "latest"));
        assert_eq!(p.cluster, DEFAULT_CLUSTER);

        // The metadata exchange carries them; an older, shorter value derives them the same way.
        let q = Peer::of("productpage-v1", "default", &labels(&[("app", "productpage"), ("version", "v1")]));
        assert_eq!(Peer::parse(&q.header()), Some(q.clone()));
        let old = Peer::parse("default/productpage-v1;productpage;v1").expect("peer");
        assert_eq!((old.canonical_service.as_str(), old.canonical_revision.as_str()), ("productpage", "v1"));
        let bare = Peer::parse("default/productpage-v1").expect("peer");
        assert_eq!((bare.canonical_service.as_str(), bare.canonical_revision.as_str()), ("productpage-v1", "latest"));

        // And the request metrics carry them on both sides.
        let m = Metrics::new();
        m.record(&record(&q, &p, "spiffe://cluster.local/ns/default/sa/productpage", 200));
        let text = m.encode();
        for label in [
            "source_canonical_service=\"productpage\"",
            "source_canonical_revision=\"v1\"",
            "destination_canonical_service=\"worker-7d9f\"",
            "destination_canonical_revision=\"latest\"",
            "source_cluster=\"Kubernetes\"",
            "destination_cluster=\"Kubernetes\"",
        ] {
            assert!(
                text.lines().any(|l| l.starts_with("istio_requests_total{") && l.contains(label)),
                "{label}: {text}"
            );
        }
        assert!(text.contains("istio_build{component=\"proxy\",tag=\""), "{text}");
    }
}
