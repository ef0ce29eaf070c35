//! A proxy's routes, clusters and endpoints assembled from pieces that are made once and
//! shared by every proxy whose config contains them, so that the cost of a change grows with
//! what it touches, not with the size of the world times the number of distinct proxies.
//!
//! - A service's routes (`ServiceRoutes`) depend on the service, the VirtualServices chosen
//!   for it, whether the client is in the service's namespace (the short name), and, only
//!   when a chosen rule matches on the client (`sourceLabels`, `sourceNamespace`, a
//!   delegate), on the client's `OutboundKey`. With a namespace per service, each service's
//!   routes exist twice (as its own namespace and every other sees them), not once per client.
//! - A cluster and its endpoints depend on (service, port, subset) and the DestinationRule
//!   the client's namespace sees for the service.
//!
//! Each piece carries its JSON and a hash of it; a proxy's part is a list of shared pieces,
//! written out as JSON when a session sends it whole, and its version is a hash of the
//! pieces' hashes. A change is turned into deltas by comparing pieces (pointer first), never
//! whole values. Which pieces a change invalidates is the push pipeline's business
//! (`push::compute`); `PieceCache` holds them while they are valid.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use mesh_api::Key;
use mesh_api::networking::SidecarSpec;
use mesh_api::protocol::{RoutesDelta, Workload};
use mesh_api::proxy_config::{Cluster, Endpoint, TcpService, VirtualHost};

use super::{Index, MeshConfig, OutboundKey, RuleKind, Selection, ServiceRoutes, Svc, labels_match};

/// FNV-1a, 64 bit: stable across runs and platforms.
#[derive(Debug, Clone, Copy)]
pub struct Fnv(u64);

impl Fnv {
    pub const NEW: Fnv = Fnv(0xcbf2_9ce4_8422_2325);

    pub fn bytes(mut self, bytes: &[u8]) -> Fnv {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
        self
    }

    pub fn u64(self, v: u64) -> Fnv {
        self.bytes(&v.to_le_bytes())
    }

    pub fn finish(self) -> u64 {
        self.0
    }
}

/// The version string of a hash.
pub fn version(hash: u64) -> String {
    format!("{hash:016x}")
}

/// Each item's JSON, joined with commas (the inside of a JSON array).
pub(super) fn json_list<T: serde::Serialize>(items: &[T]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        // Serializing these types cannot fail (no maps with non-string keys).
        out.extend(serde_json::to_vec(item).unwrap_or_default());
    }
    out
}

/// Write the non-empty pieces joined with commas.
fn join<'a>(out: &mut Vec<u8>, pieces: impl Iterator<Item = &'a [u8]>) {
    let mut first = true;
    for p in pieces.filter(|p| !p.is_empty()) {
        if !first {
            out.push(b',');
        }
        first = false;
        out.extend_from_slice(p);
    }
}

/// The length of [`join`]'s output.
fn joined_len<'a>(pieces: impl Iterator<Item = &'a [u8]>) -> usize {
    let (mut len, mut n) = (0usize, 0usize);
    for p in pieces.filter(|p| !p.is_empty()) {
        len += p.len();
        n += 1;
    }
    len + n.saturating_sub(1)
}

impl ServiceRoutes {
    /// With its JSON and hash, as a shared piece.
    fn sealed(mut self) -> ServiceRoutes {
        self.vh_json = json_list(&self.virtual_hosts);
        self.tcp_json = json_list(&self.tcp);
        self.hash = Fnv::NEW.bytes(&self.vh_json).u64(0).bytes(&self.tcp_json).finish();
        self
    }
}

/// What a service's routes were made from: equal keys, equal routes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct RoutesKey {
    /// The service's position in the index.
    service: usize,
    /// The client is in the service's namespace (and may use its short name).
    own: bool,
    /// The VirtualServices chosen for HTTP, TCP and TLS, by position in the index.
    rules: [Option<usize>; 3],
    /// The client, when a chosen rule reads it.
    reader: Option<OutboundKey>,
    /// The client's Sidecar hides the service.
    hidden: super::Hidden,
}

/// One cluster as a client namespace sees it, with the DestinationRule that shaped it.
#[derive(Debug)]
pub struct ClusterPiece {
    pub cluster: Cluster,
    dr: Option<usize>,
    json: Vec<u8>,
    hash: u64,
}

/// One cluster's endpoints: `"name":[...]` as JSON.
#[derive(Debug)]
pub struct EndpointsPiece {
    pub name: String,
    pub endpoints: Vec<Endpoint>,
    port: u16,
    subset: Option<String>,
    dr: Option<usize>,
    json: Vec<u8>,
    hash: u64,
    /// Set when the cache forgets it: a list holding it must make it again.
    stale: AtomicBool,
}

/// The pieces made from one index, shared by every proxy: valid while what they were made
/// from stands (the pipeline forgets them when it does not).
#[derive(Debug, Default)]
pub struct PieceCache {
    routes: HashMap<RoutesKey, Arc<ServiceRoutes>>,
    /// By service FQDN, then (port, subset, DestinationRule).
    clusters: HashMap<String, Vec<Arc<ClusterPiece>>>,
    endpoints: HashMap<String, Vec<Arc<EndpointsPiece>>>,
}

impl PieceCache {
    /// After any change of resources: rule positions in the index may have moved.
    pub fn forget_routes(&mut self) {
        self.routes.clear();
    }

    /// After a change of resources other than VirtualServices (Services, DestinationRules,
    /// policies): everything.
    pub fn forget_all(&mut self) {
        self.forget_endpoints(None);
        *self = PieceCache::default();
    }

    /// After a change of workloads: the endpoints of these services, or all when None.
    pub fn forget_endpoints(&mut self, services: Option<&HashSet<String>>) {
        self.endpoints.retain(|fqdn, pieces| {
            let keep = services.is_some_and(|s| !s.contains(fqdn));
            if !keep {
                pieces.iter().for_each(|p| p.stale.store(true, Ordering::Relaxed));
            }
            keep
        });
    }

    /// How many services' routes, clusters and clusters' endpoints it holds.
    pub fn counts(&self) -> [usize; 3] {
        [
            self.routes.len(),
            self.clusters.values().map(Vec::len).sum::<usize>(),
            self.endpoints.values().map(Vec::len).sum::<usize>(),
        ]
    }
}

/// A config part assembled from shared pieces: written out as JSON when a session sends it
/// whole; its version is `hash`, a hash of the pieces' hashes.
pub trait Assembled: std::fmt::Debug + Send + Sync {
    fn json_len(&self) -> usize;
    fn write_json(&self, out: &mut Vec<u8>);
    fn hash(&self) -> u64;
}

/// A proxy's routes: each service's routes in FQDN order, then its gateways'.
#[derive(Debug)]
pub struct RoutesParts {
    pub services: Vec<Arc<ServiceRoutes>>,
    pub passthrough: bool,
    pub gateway_http: Vec<VirtualHost>,
    pub gateway_tcp: Vec<TcpService>,
    /// The clusters the gateway routes send to.
    gateway_wanted: BTreeSet<(String, u16, Option<String>)>,
    /// The JSON after the services' TCP routes: passthrough and the gateway routes.
    tail: Vec<u8>,
    len: usize,
    hash: u64,
}

impl RoutesParts {
    fn new(
        services: Vec<Arc<ServiceRoutes>>,
        passthrough: bool,
        gateway_http: Vec<VirtualHost>,
        gateway_tcp: Vec<TcpService>,
        gateway_wanted: BTreeSet<(String, u16, Option<String>)>,
    ) -> RoutesParts {
        // The field order and skip rules of `proxy_config::Routes`.
        let mut tail = Vec::new();
        if passthrough {
            tail.extend_from_slice(br#","passthrough":true"#);
        }
        if !gateway_http.is_empty() {
            tail.extend_from_slice(br#","gateway_http":["#);
            tail.extend(json_list(&gateway_http));
            tail.push(b']');
        }
        if !gateway_tcp.is_empty() {
            tail.extend_from_slice(br#","gateway_tcp":["#);
            tail.extend(json_list(&gateway_tcp));
            tail.push(b']');
        }
        let mut hash = Fnv::NEW;
        for s in &services {
            hash = hash.u64(s.hash);
        }
        let hash = hash.bytes(&tail).finish();
        let mut parts =
            RoutesParts { services, passthrough, gateway_http, gateway_tcp, gateway_wanted, tail, len: 0, hash };
        parts.len = parts.json_len_slow();
        parts
    }

    fn tcp_pieces(&self) -> impl Iterator<Item = &[u8]> {
        self.services.iter().map(|s| s.tcp_json.as_slice())
    }

    fn json_len_slow(&self) -> usize {
        let vh = joined_len(self.services.iter().map(|s| s.vh_json.as_slice()));
        let tcp = match joined_len(self.tcp_pieces()) {
            0 => 0,
            n => n + br#","tcp":[]"#.len(),
        };
        br#"{"virtual_hosts":[]}"#.len() + vh + tcp + self.tail.len()
    }

    /// The change from `old`, as a proxy holding `old` (version `base`) applies it; None when
    /// virtual hosts were added or removed, or most of them changed.
    pub fn delta(&self, old: &RoutesParts, base: &str, version: &str) -> Option<RoutesDelta> {
        if self.services.len() != old.services.len() {
            return None;
        }
        let total: usize = self.services.iter().map(|s| s.virtual_hosts.len()).sum();
        let (mut virtual_hosts, mut offset, mut tcp_changed) = (Vec::new(), 0, false);
        for (a, b) in old.services.iter().zip(&self.services) {
            if a.virtual_hosts.len() != b.virtual_hosts.len() {
                return None;
            }
            if !Arc::ptr_eq(a, b) {
                if a.vh_json != b.vh_json {
                    let changed = a.virtual_hosts.iter().zip(&b.virtual_hosts).enumerate().filter(|(_, (x, y))| x != y);
                    virtual_hosts.extend(changed.map(|(i, (_, y))| (offset + i, y.clone())));
                    // Most virtual hosts changed: the whole is about as small; stop early.
                    if virtual_hosts.len() * 2 > total.max(1) {
                        return None;
                    }
                }
                tcp_changed |= a.tcp_json != b.tcp_json;
            }
            offset += b.virtual_hosts.len();
        }
        Some(RoutesDelta {
            base: base.to_string(),
            version: version.to_string(),
            virtual_hosts,
            tcp: tcp_changed.then(|| self.services.iter().flat_map(|s| s.tcp.iter().cloned()).collect()),
            passthrough: self.passthrough,
            gateway_http: (old.gateway_http != self.gateway_http).then(|| self.gateway_http.clone()),
            gateway_tcp: (old.gateway_tcp != self.gateway_tcp).then(|| self.gateway_tcp.clone()),
        })
    }

    /// Whether `other` sends to the same clusters (so the clusters made for it stand).
    pub fn same_wanted(&self, other: &RoutesParts) -> bool {
        self.services.len() == other.services.len()
            && self.gateway_wanted == other.gateway_wanted
            && self.services.iter().zip(&other.services).all(|(a, b)| Arc::ptr_eq(a, b) || a.wanted == b.wanted)
    }

    /// As a value (for tests and diagnostics).
    pub fn value(&self) -> mesh_api::proxy_config::Routes {
        mesh_api::proxy_config::Routes {
            virtual_hosts: self.services.iter().flat_map(|s| s.virtual_hosts.iter().cloned()).collect(),
            tcp: self.services.iter().flat_map(|s| s.tcp.iter().cloned()).collect(),
            passthrough: self.passthrough,
            gateway_http: self.gateway_http.clone(),
            gateway_tcp: self.gateway_tcp.clone(),
        }
    }

    /// The service's routes, if it has any here.
    pub fn service(&self, fqdn: &str) -> Option<&Arc<ServiceRoutes>> {
        self.services.iter().find(|s| s.fqdn == fqdn)
    }
}

/// A proxy's clusters, in the order of (service, port, subset).
#[derive(Debug)]
pub struct ClustersParts {
    pub clusters: Vec<Arc<ClusterPiece>>,
    /// Positions in `clusters`, ordered by cluster name (the endpoints' order).
    by_name: Vec<usize>,
    len: usize,
    hash: u64,
}

impl Assembled for RoutesParts {
    fn json_len(&self) -> usize {
        self.len
    }

    fn hash(&self) -> u64 {
        self.hash
    }

    /// The JSON of `proxy_config::Routes`, byte for byte as serde writes it.
    fn write_json(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(br#"{"virtual_hosts":["#);
        join(out, self.services.iter().map(|s| s.vh_json.as_slice()));
        out.push(b']');
        if self.tcp_pieces().any(|p| !p.is_empty()) {
            out.extend_from_slice(br#","tcp":["#);
            join(out, self.tcp_pieces());
            out.push(b']');
        }
        out.extend_from_slice(&self.tail);
        out.push(b'}');
    }
}

impl Assembled for ClustersParts {
    fn json_len(&self) -> usize {
        self.len
    }

    fn hash(&self) -> u64 {
        self.hash
    }

    /// The JSON of `proxy_config::Clusters`.
    fn write_json(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(br#"{"clusters":["#);
        join(out, self.clusters.iter().map(|c| c.json.as_slice()));
        out.extend_from_slice(b"]}");
    }
}

/// A proxy's endpoints, by cluster name.
#[derive(Debug)]
pub struct EndpointsParts {
    pub clusters: Vec<Arc<EndpointsPiece>>,
    len: usize,
    hash: u64,
}

impl EndpointsParts {
    fn new(clusters: Vec<Arc<EndpointsPiece>>) -> EndpointsParts {
        let len = br#"{"clusters":{}}"#.len() + joined_len(clusters.iter().map(|c| c.json.as_slice()));
        let hash = clusters.iter().fold(Fnv::NEW, |h, c| h.u64(c.hash)).finish();
        EndpointsParts { clusters, len, hash }
    }

    /// The serialized `EndpointsDelta` from `old` (version `base`); None when it would not
    /// be much smaller than the whole.
    pub fn delta(&self, old: &EndpointsParts, base: &str, version: &str) -> Option<Vec<u8>> {
        let mut updated: Vec<&[u8]> = Vec::new();
        let mut removed: Vec<&str> = Vec::new();
        let (mut i, mut j) = (0, 0);
        let (a, b) = (&old.clusters, &self.clusters);
        while i < a.len() || j < b.len() {
            match (a.get(i), b.get(j)) {
                (Some(x), Some(y)) if x.name == y.name => {
                    if !Arc::ptr_eq(x, y) && x.json != y.json {
                        updated.push(&y.json);
                    }
                    i += 1;
                    j += 1;
                }
                (Some(x), Some(y)) if x.name < y.name => {
                    removed.push(&x.name);
                    i += 1;
                }
                (Some(x), None) => {
                    removed.push(&x.name);
                    i += 1;
                }
                (_, Some(y)) => {
                    updated.push(&y.json);
                    j += 1;
                }
                (None, None) => break,
            }
        }
        if (updated.len() + removed.len()) * 2 > b.len().max(1) {
            return None;
        }
        // The JSON of `protocol::EndpointsDelta`.
        let mut out = Vec::new();
        out.extend_from_slice(br#"{"base":"#);
        out.extend(serde_json::to_vec(base).ok()?);
        out.extend_from_slice(br#","version":"#);
        out.extend(serde_json::to_vec(version).ok()?);
        out.extend_from_slice(br#","updated":{"#);
        join(&mut out, updated.into_iter());
        out.extend_from_slice(br#"},"removed":"#);
        out.extend(serde_json::to_vec(&removed).ok()?);
        out.push(b'}');
        Some(out)
    }
}

impl Assembled for EndpointsParts {
    fn json_len(&self) -> usize {
        self.len
    }

    fn hash(&self) -> u64 {
        self.hash
    }

    /// The JSON of `proxy_config::Endpoints`.
    fn write_json(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(br#"{"clusters":{"#);
        join(out, self.clusters.iter().map(|c| c.json.as_slice()));
        out.extend_from_slice(b"}}");
    }
}

impl Index<'_> {
    /// One service's routes for `proxy` (whose key is `key`), from `cache` when made before.
    fn routes_piece(
        &self,
        cache: &mut PieceCache,
        position: usize,
        svc: &Svc<'_>,
        proxy: &Workload,
        key: &OutboundKey,
        sidecar: Option<(&Key, &SidecarSpec)>,
    ) -> Arc<ServiceRoutes> {
        let ns = proxy.namespace.as_str();
        let rules = [RuleKind::Http, RuleKind::Tcp, RuleKind::Tls].map(|k| self.virtual_service_at(svc, ns, k));
        let reads = rules.iter().flatten().any(|&i| self.vs_facts[i].reads_source);
        let k = RoutesKey {
            service: position,
            own: svc.namespace == ns,
            rules,
            reader: reads.then(|| key.clone()),
            hidden: Index::sidecar_hides(sidecar, svc),
        };
        let hidden = k.hidden.clone();
        cache
            .routes
            .entry(k)
            .or_insert_with(|| {
                // A service outside the proxy's Sidecar egress hosts: an empty piece, so the
                // positions hold.
                let routes = if hidden == super::Hidden::All {
                    ServiceRoutes { fqdn: svc.fqdn.clone(), ..Default::default() }
                } else {
                    let mut r = super::service_routes(self, svc, proxy);
                    r.hide(&hidden);
                    r
                };
                Arc::new(routes.sealed())
            })
            .clone()
    }

    /// Which services (by position) are in `touched`.
    pub fn positions_of(&self, touched: &HashSet<String>) -> Vec<bool> {
        self.services.keys().map(|f| touched.contains(f)).collect()
    }

    /// A proxy's routes. With `reuse` (the routes this key had, from a world with the same
    /// services, and which services a change may have touched since, by position: see
    /// `positions_of`), untouched services keep their pieces.
    pub fn routes_parts(
        &self,
        cache: &mut PieceCache,
        proxy: &Workload,
        key: &OutboundKey,
        mesh: &MeshConfig,
        reuse: Option<(&RoutesParts, &[bool])>,
    ) -> RoutesParts {
        let sidecar = self.sidecar_for(proxy);
        let services = match reuse {
            Some((old, touched))
                if old.services.len() == self.services.len() && touched.len() == old.services.len() =>
            {
                self.services
                    .values()
                    .enumerate()
                    .zip(&old.services)
                    .map(|((i, svc), was)| {
                        if !touched[i] && was.fqdn.len() == svc.fqdn.len() {
                            was.clone()
                        } else {
                            self.routes_piece(cache, i, svc, proxy, key, sidecar)
                        }
                    })
                    .collect()
            }
            _ => self
                .services
                .values()
                .enumerate()
                .map(|(i, svc)| self.routes_piece(cache, i, svc, proxy, key, sidecar))
                .collect(),
        };
        let mut gateway_wanted = BTreeSet::new();
        let (gateway_http, gateway_tcp) = super::gateway::routes(self, proxy, &mut gateway_wanted);
        RoutesParts::new(services, self.allow_any(proxy, mesh), gateway_http, gateway_tcp, gateway_wanted)
    }

    /// The clusters `routes` send to, as `client_ns` sees them.
    pub fn clusters_parts(
        &self,
        cache: &mut PieceCache,
        routes: &RoutesParts,
        client_ns: &str,
        mesh: &MeshConfig,
    ) -> ClustersParts {
        let mut wanted: BTreeSet<(&str, u16, Option<&str>)> = BTreeSet::new();
        let all = routes.services.iter().flat_map(|s| &s.wanted).chain(&routes.gateway_wanted);
        wanted.extend(all.map(|(f, p, s)| (f.as_str(), *p, s.as_deref())));
        let mut clusters = Vec::with_capacity(wanted.len());
        for (fqdn, port, subset) in wanted {
            let dr = self.services.get(fqdn).and_then(|s| self.destination_rule_at(s, client_ns));
            let found = cache.clusters.get(fqdn).and_then(|v| {
                v.iter().find(|c| c.cluster.port == port && c.cluster.subset.as_deref() == subset && c.dr == dr)
            });
            let piece = match found {
                Some(c) => c.clone(),
                None => {
                    let (cluster, dr) = super::cluster(self, fqdn, port, subset, client_ns, mesh);
                    let json = serde_json::to_vec(&cluster).unwrap_or_default();
                    let hash = Fnv::NEW.bytes(&json).finish();
                    let c = Arc::new(ClusterPiece { cluster, dr, json, hash });
                    cache.clusters.entry(fqdn.to_string()).or_default().push(c.clone());
                    c
                }
            };
            clusters.push(piece);
        }
        let mut by_name: Vec<usize> = (0..clusters.len()).collect();
        by_name.sort_by(|&a, &b| clusters[a].cluster.name.cmp(&clusters[b].cluster.name));
        let len = br#"{"clusters":[]}"#.len() + joined_len(clusters.iter().map(|c| c.json.as_slice()));
        let hash = clusters.iter().fold(Fnv::NEW, |h, c| h.u64(c.hash)).finish();
        ClustersParts { clusters, by_name, len, hash }
    }

    /// One cluster's endpoints as `client_ns` sees them, from `cache` when made before.
    fn endpoints_piece(
        &self,
        cache: &mut PieceCache,
        selection: &Selection<'_>,
        c: &ClusterPiece,
        client_ns: &str,
    ) -> Arc<EndpointsPiece> {
        let cl = &c.cluster;
        let found = cache.endpoints.get(&cl.service).and_then(|v| {
            v.iter().find(|e| e.port == cl.port && e.subset == cl.subset && e.dr == c.dr && e.name == cl.name)
        });
        if let Some(e) = found {
            return e.clone();
        }
        let endpoints = super::cluster_endpoints(self, selection, cl, client_ns);
        let mut json = serde_json::to_vec(&cl.name).unwrap_or_default();
        json.push(b':');
        json.extend(serde_json::to_vec(&endpoints).unwrap_or_default());
        let hash = Fnv::NEW.bytes(&json).finish();
        let e = Arc::new(EndpointsPiece {
            name: cl.name.clone(),
            endpoints,
            port: cl.port,
            subset: cl.subset.clone(),
            dr: c.dr,
            json,
            hash,
            stale: AtomicBool::new(false),
        });
        cache.endpoints.entry(cl.service.clone()).or_default().push(e.clone());
        e
    }

    /// The endpoints of `clusters`. With `patch` (the endpoints made for the same clusters),
    /// only the pieces the cache forgot since are made again.
    pub fn endpoints_parts(
        &self,
        cache: &mut PieceCache,
        selection: &Selection<'_>,
        clusters: &ClustersParts,
        client_ns: &str,
        patch: Option<&EndpointsParts>,
    ) -> EndpointsParts {
        let pieces = match patch {
            Some(old) if old.clusters.len() == clusters.by_name.len() => clusters
                .by_name
                .iter()
                .zip(&old.clusters)
                .map(|(&i, was)| {
                    let c = &clusters.clusters[i];
                    if !was.stale.load(Ordering::Relaxed) && was.name.len() == c.cluster.name.len() {
                        was.clone()
                    } else {
                        self.endpoints_piece(cache, selection, c, client_ns)
                    }
                })
                .collect(),
            _ => clusters
                .by_name
                .iter()
                .map(|&i| self.endpoints_piece(cache, selection, &clusters.clusters[i], client_ns))
                .collect(),
        };
        EndpointsParts::new(pieces)
    }

    /// The services (FQDNs) that select any of `workloads`: whose endpoints they are.
    pub fn services_selecting<'w>(&self, workloads: impl Iterator<Item = &'w Workload>) -> HashSet<String> {
        let mut out = HashSet::new();
        for w in workloads {
            for s in self.services_in(&w.namespace) {
                if s.entry.is_none() && !s.spec.selector.is_empty() && labels_match(&s.spec.selector, &w.labels) {
                    out.insert(s.fqdn.clone());
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assembled_json_is_what_serde_writes() {
        let vh = |name: &str| VirtualHost { name: name.into(), domains: vec![name.into()], port: 80, routes: vec![] };
        let tcp = |name: &str| TcpService {
            name: name.into(),
            domains: vec![],
            port: 9000,
            route: "default".into(),
            clusters: vec![],
            sni: vec![],
        };
        let piece = |fqdn: &str, vhs: Vec<VirtualHost>, tcps: Vec<TcpService>| {
            Arc::new(ServiceRoutes { fqdn: fqdn.into(), virtual_hosts: vhs, tcp: tcps, ..Default::default() }.sealed())
        };
        let cases = [
            (vec![], false, vec![], vec![]),
            (vec![piece("a", vec![vh("a:80"), vh("a:81")], vec![]), piece("b", vec![], vec![])], true, vec![], vec![]),
            (
                vec![piece("a", vec![], vec![tcp("a:9000")]), piece("b", vec![vh("b:80")], vec![tcp("b:9000")])],
                false,
                vec![vh("gw:8080")],
                vec![tcp("gw:9000")],
            ),
        ];
        for (services, passthrough, gw_http, gw_tcp) in cases {
            let parts = RoutesParts::new(services, passthrough, gw_http, gw_tcp, BTreeSet::new());
            let mut out = Vec::new();
            parts.write_json(&mut out);
            assert_eq!(
                String::from_utf8_lossy(&out),
                String::from_utf8_lossy(&serde_json::to_vec(&parts.value()).expect("json"))
            );
            assert_eq!(out.len(), parts.json_len());
        }
    }
}
