//! The push pipeline: one task turns each world change into every connected proxy's config,
//! and the discovery sessions only send it.
//!
//! A change is debounced (a burst becomes one computation), then translated off the async
//! runtime on a blocking thread, so handshakes, CSRs and ACKs never wait behind it. The work
//! is shared: routes and clusters depend on a proxy's namespace and the few labels that some
//! `sourceLabels` or Gateway selector reads (`OutboundKey`), so they are translated and
//! serialized once per distinct key; endpoints likewise, and only again when workloads or
//! config changed; listeners once per distinct namespace, labels and ports. Each part is
//! kept as its serialized JSON with its version (the hash of those bytes), behind an `Arc`
//! that every proxy with the same input shares. Sessions compare versions and send only the
//! types that changed, as already-serialized bytes.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use mesh_api::protocol::Workload;
use mesh_api::proxy_config::ConfigType;
use tracing::debug;

use crate::state::{State, World};
use crate::store::Resources;
use crate::translate::shared::{self, Assembled, ClustersParts, EndpointsParts, PieceCache, RoutesParts};
use crate::translate::{self, Index, ListenerKey, MeshConfig, OutboundKey, Selection};
use mesh_api::resource::Kind;

/// A change waits this long for more changes before it is translated...
const DEBOUNCE_QUIET: Duration = Duration::from_millis(20);
/// ...but never longer than this, however long a burst lasts (istiod: 100 ms / 10 s).
const DEBOUNCE_MAX: Duration = Duration::from_millis(500);

/// One config type of one proxy: its version and its JSON, either serialized whole or
/// assembled from shared pieces when a session sends it (`translate::shared`).
#[derive(Debug)]
pub struct Part {
    pub version: String,
    body: Body,
}

#[derive(Debug)]
enum Body {
    Json(Bytes),
    Pieces(Arc<dyn Assembled>),
}

impl Part {
    /// A part serialized whole; its version is the hash of its JSON.
    pub fn of<T: serde::Serialize>(value: &T) -> Arc<Part> {
        let json = serde_json::to_vec(value).unwrap_or_default();
        Arc::new(Part { version: translate::version_of_bytes(&json), body: Body::Json(Bytes::from(json)) })
    }

    /// A part assembled from shared pieces.
    fn assembled(parts: Arc<dyn Assembled>) -> Arc<Part> {
        Arc::new(Part { version: shared::version(parts.hash()), body: Body::Pieces(parts) })
    }

    pub fn json_len(&self) -> usize {
        match &self.body {
            Body::Json(b) => b.len(),
            Body::Pieces(p) => p.json_len(),
        }
    }

    pub fn write_json(&self, out: &mut Vec<u8>) {
        match &self.body {
            Body::Json(b) => out.extend_from_slice(b),
            Body::Pieces(p) => p.write_json(out),
        }
    }

    /// The whole JSON.
    pub fn json(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.json_len());
        self.write_json(&mut out);
        out
    }
}

/// A proxy's config: one part per type, in `ConfigType::ALL` order, and for routes and
/// endpoints the change from the previous translation, for a proxy that holds that.
#[derive(Debug)]
pub struct ProxyParts {
    pub parts: [Arc<Part>; ConfigType::ALL.len()],
    pub deltas: [Option<Arc<Delta>>; ConfigType::ALL.len()],
}

/// Where a type is in `ConfigType::ALL` (and so in `ProxyParts`).
pub fn slot(t: ConfigType) -> usize {
    ConfigType::ALL.iter().position(|x| *x == t).unwrap_or(0)
}

/// A serialized `EndpointsDelta` from `base` to a part's version.
#[derive(Debug)]
pub struct Delta {
    pub base: String,
    pub json: Bytes,
}

/// Endpoints as sent, the delta that led here, and the version of the clusters they were
/// made for.
struct EndpointsEntry {
    part: Arc<Part>,
    parts: Arc<EndpointsParts>,
    delta: Option<Arc<Delta>>,
    clusters_version: String,
}

/// What a change of resources touches, from one comparison of the old and new maps.
struct Change {
    /// Only VirtualServices changed: endpoints and listeners, which never read them, stand.
    only_routing: bool,
    /// The services whose routes the change may touch (their FQDNs), or None when it may
    /// touch any: a change of VirtualServices with exact hosts touches those hosts only;
    /// DestinationRules shape clusters (made anew each time), not routes; policies, telemetry
    /// and gateways are read by listeners and gateway routes (made anew), not by a service's
    /// routes. Anything else (Services, ServiceEntries, wildcard or delegate VirtualServices)
    /// may touch any service.
    touched: Option<std::collections::HashSet<String>>,
}

impl Change {
    fn between(old: &Resources, new: &Resources) -> Change {
        let changed = old
            .iter()
            .filter(|(k, v)| new.get(*k) != Some(*v))
            .chain(new.iter().filter(|(k, _)| !old.contains_key(*k)))
            .map(|(k, _)| k);
        let mut change = Change { only_routing: true, touched: Some(std::collections::HashSet::new()) };
        for key in changed {
            change.only_routing &= key.kind == Kind::VirtualService;
            let Some(touched) = &mut change.touched else { continue };
            match key.kind {
                Kind::VirtualService => {
                    if !vs_hosts(key, [old.get(key), new.get(key)], touched) {
                        change.touched = None;
                    }
                }
                Kind::DestinationRule
                | Kind::Gateway
                | Kind::PeerAuthentication
                | Kind::AuthorizationPolicy
                | Kind::RequestAuthentication
                | Kind::LocalRateLimit
                | Kind::Telemetry => {}
                _ => change.touched = None,
            }
        }
        change
    }
}

/// Add the exact hosts of a VirtualService's versions to `touched`; false when they are not
/// all exact (a wildcard host, or a delegate whose hosts are its parents').
fn vs_hosts(
    key: &mesh_api::Key,
    versions: [Option<&mesh_api::Resource>; 2],
    touched: &mut std::collections::HashSet<String>,
) -> bool {
    for r in versions.into_iter().flatten() {
        let mesh_api::Resource::VirtualService(vs) = r else { return false };
        if vs.spec.hosts.is_empty() {
            return false;
        }
        for h in &vs.spec.hosts {
            let fqdn = mesh_api::host::resolve(h, &key.namespace);
            if fqdn.starts_with('*') {
                return false;
            }
            touched.insert(fqdn);
        }
    }
    true
}

/// Every connected proxy's config for one world generation.
#[derive(Debug, Default)]
pub struct Pushes {
    pub generation: u64,
    /// When the world this was made from was published.
    pub changed_at: Option<Instant>,
    pub by_proxy: HashMap<String, Arc<ProxyParts>>,
}

type Workloads = std::collections::BTreeMap<String, Workload>;

/// Routes and clusters as sent and as pieces (the endpoints are made from the clusters, the
/// next routes from the routes), and the routes delta that led here.
struct Outbound {
    routes: Arc<Part>,
    clusters: Arc<Part>,
    routes_parts: Arc<RoutesParts>,
    clusters_parts: Arc<ClustersParts>,
    routes_delta: Option<Arc<Delta>>,
}

/// What earlier computations made, reused while its inputs are unchanged.
#[derive(Default)]
struct Caches {
    resources: Option<Arc<Resources>>,
    /// The connected and the discovered workloads they were made from, and both merged.
    workloads: Option<(Arc<Workloads>, Arc<Workloads>)>,
    workload_list: Vec<Workload>,
    /// The pieces every proxy's parts are assembled from.
    pieces: PieceCache,
    /// Routes, clusters per outbound key.
    outbound: HashMap<OutboundKey, Arc<Outbound>>,
    previous_outbound: HashMap<OutboundKey, Arc<Outbound>>,
    endpoints: HashMap<OutboundKey, Arc<EndpointsEntry>>,
    /// The endpoints of the translation before, while the current ones are made: the base of
    /// the deltas.
    previous_endpoints: HashMap<OutboundKey, Arc<EndpointsEntry>>,
    listeners: HashMap<ListenerKey, Arc<Part>>,
    credentials: Option<Arc<mesh_api::credential::Credentials>>,
    /// The namespace labels the caches were made with.
    namespace_labels: Option<Arc<crate::state::NamespaceLabels>>,
    /// The resources with the Istio objects the Gateway API ones stand for (None: there are
    /// none), made once per version of the resources.
    expanded: Option<Arc<Resources>>,
}

/// The workloads in `new` that are not in `old` as they are, and those of `old` gone or
/// changed in `new`.
fn changed_workloads<'a>(old: &'a [Workload], new: &'a [Workload]) -> Vec<&'a Workload> {
    let by_id = |ws: &'a [Workload]| -> HashMap<(&'a str, &'a str), &'a Workload> {
        ws.iter().map(|w| ((w.namespace.as_str(), w.name.as_str()), w)).collect()
    };
    let (old_by, new_by) = (by_id(old), by_id(new));
    let mut out: Vec<&Workload> =
        new.iter().filter(|w| old_by.get(&(w.namespace.as_str(), w.name.as_str())) != Some(w)).collect();
    out.extend(old.iter().filter(|w| new_by.get(&(w.namespace.as_str(), w.name.as_str())) != Some(w)));
    out
}

/// A serialized routes delta.
fn routes_delta(new: &RoutesParts, old: &Outbound, version: &str) -> Option<Arc<Delta>> {
    let d = new.delta(&old.routes_parts, &old.routes.version, version)?;
    let json = serde_json::to_vec(&d).ok()?;
    Some(Arc::new(Delta { base: d.base, json: Bytes::from(json) }))
}

/// Translate `world` for every connected proxy, reusing what `caches` holds for unchanged
/// inputs. Returns the pushes and how many parts were assembled anew.
fn compute(world: &World, caches: &mut Caches, mesh: &MeshConfig) -> (Pushes, usize) {
    // Credentials reach routes (gateways), clusters (TLS origination) and listeners: a change
    // of them translates everything anew, as a first translation does.
    if !caches.credentials.as_ref().is_some_and(|c| Arc::ptr_eq(c, &world.credentials) || **c == *world.credentials) {
        caches.resources = None;
        caches.credentials = Some(world.credentials.clone());
    }
    // Namespace labels decide which routes a Gateway takes (`from: Selector`): the same.
    let labels = &world.namespace_labels;
    if !caches.namespace_labels.as_ref().is_some_and(|l| Arc::ptr_eq(l, labels) || **l == **labels) {
        caches.resources = None;
        caches.namespace_labels = Some(labels.clone());
    }
    let same_resources = caches.resources.as_ref().is_some_and(|r| Arc::ptr_eq(r, &world.resources));
    let same_workloads = caches
        .workloads
        .as_ref()
        .is_some_and(|(w, d)| Arc::ptr_eq(w, &world.workloads) && Arc::ptr_eq(d, &world.discovered));
    // What the change touches: endpoints and listeners stand when only VirtualServices changed
    // (endpoints as long as their key's clusters are the same), and the routes of services it
    // cannot touch are reused as they were.
    let first = caches.resources.is_none();
    let (only_routing, touched) = match &caches.resources {
        Some(old) if !same_resources => {
            let c = Change::between(old, &world.resources);
            (c.only_routing, c.touched)
        }
        _ => (false, None),
    };
    if !same_resources || first {
        caches.expanded =
            crate::translate::gateway_api::expand(&world.resources, &world.namespace_labels).map(Arc::new);
    }
    let expanded = caches.expanded.clone();
    let index = Index::new(expanded.as_deref().unwrap_or(&world.resources)).with_credentials(&world.credentials);
    if !same_resources {
        caches.previous_outbound = std::mem::take(&mut caches.outbound);
        caches.pieces.forget_routes();
        if !only_routing {
            caches.listeners.clear();
            caches.pieces.forget_all();
        }
    }
    // Which services' endpoints a change of workloads touches: those selecting a workload
    // that came, went or changed (when the resources stand, or only routing changed).
    let mut endpoints_touched: Option<std::collections::HashSet<String>> = None;
    if !same_workloads {
        if !first && (same_resources || only_routing) {
            let changed = changed_workloads(&caches.workload_list, world.workload_list());
            endpoints_touched = Some(index.services_selecting(changed.into_iter()));
        }
        caches.pieces.forget_endpoints(endpoints_touched.as_ref());
        caches.workload_list = world.workload_list().to_vec();
    }
    if (!same_resources && !only_routing) || !same_workloads {
        caches.previous_endpoints = std::mem::take(&mut caches.endpoints);
    }
    caches.resources = Some(world.resources.clone());
    caches.workloads = Some((world.workloads.clone(), world.discovered.clone()));

    let mut selection: Option<Selection<'_>> = None;
    let mut fresh = 0;
    let mut by_proxy = HashMap::with_capacity(world.workloads.len());
    let mut used_out = std::collections::HashSet::new();
    let mut used_lis = std::collections::HashSet::new();
    let pieces = &mut caches.pieces;
    let touched_at = touched.as_ref().map(|t| index.positions_of(t));
    for (id, w) in world.connected() {
        let key = index.outbound_key(w);
        let out = match caches.outbound.get(&key) {
            Some(out) => out.clone(),
            None => {
                fresh += 2;
                let previous = caches.previous_outbound.get(&key);
                let reuse = previous.zip(touched_at.as_deref()).map(|(o, t)| (&*o.routes_parts, t));
                let routes_parts = Arc::new(index.routes_parts(pieces, w, &key, mesh, reuse));
                let routes = Part::assembled(routes_parts.clone());
                let (clusters, clusters_parts) = match previous {
                    Some(old) if only_routing && routes_parts.same_wanted(&old.routes_parts) => {
                        (old.clusters.clone(), old.clusters_parts.clone())
                    }
                    _ => {
                        let parts = Arc::new(index.clusters_parts(pieces, &routes_parts, &w.namespace, mesh));
                        (Part::assembled(parts.clone()), parts)
                    }
                };
                let routes_delta = match previous {
                    Some(old) if old.routes.version == routes.version => old.routes_delta.clone(),
                    Some(old) => routes_delta(&routes_parts, old, &routes.version),
                    None => None,
                };
                let out = Arc::new(Outbound { routes, clusters, routes_parts, clusters_parts, routes_delta });
                caches.outbound.insert(key.clone(), out.clone());
                out
            }
        };
        let endpoints = match caches.endpoints.get(&key) {
            Some(e) if e.clusters_version == out.clusters.version => e.clone(),
            stale => {
                fresh += 1;
                let base = stale.or_else(|| caches.previous_endpoints.get(&key)).cloned();
                let selection = selection.get_or_insert_with(|| Selection::new(&index, world.workload_list()));
                // The same clusters and a known set of changed services: patch those.
                let patch = match &base {
                    Some(b) if endpoints_touched.is_some() && b.clusters_version == out.clusters.version => {
                        Some(&*b.parts)
                    }
                    _ => None,
                };
                let parts =
                    Arc::new(index.endpoints_parts(pieces, selection, &out.clusters_parts, &w.namespace, patch));
                let part = Part::assembled(parts.clone());
                let delta = match base {
                    Some(old) if old.part.version == part.version => old.delta.clone(),
                    Some(old) => parts
                        .delta(&old.parts, &old.part.version, &part.version)
                        .map(|json| Arc::new(Delta { base: old.part.version.clone(), json: Bytes::from(json) })),
                    None => None,
                };
                let entry =
                    Arc::new(EndpointsEntry { part, parts, delta, clusters_version: out.clusters.version.clone() });
                caches.endpoints.insert(key.clone(), entry.clone());
                entry
            }
        };
        let lkey = ListenerKey::of(w);
        let listeners = caches
            .listeners
            .entry(lkey.clone())
            .or_insert_with(|| {
                fresh += 1;
                Part::of(&translate::listeners(&index, w, mesh))
            })
            .clone();
        used_out.insert(key);
        used_lis.insert(lkey);
        let parts = ConfigType::ALL.map(|t| match t {
            ConfigType::Routes => out.routes.clone(),
            ConfigType::Clusters => out.clusters.clone(),
            ConfigType::Endpoints => endpoints.part.clone(),
            ConfigType::Listeners => listeners.clone(),
        });
        let deltas = ConfigType::ALL.map(|t| match t {
            ConfigType::Routes => out.routes_delta.clone(),
            ConfigType::Endpoints => endpoints.delta.clone(),
            _ => None,
        });
        by_proxy.insert(id.clone(), Arc::new(ProxyParts { parts, deltas }));
    }
    caches.previous_endpoints.clear();
    caches.previous_outbound.clear();
    // Keep only what a connected proxy uses.
    caches.outbound.retain(|k, _| used_out.contains(k));
    caches.endpoints.retain(|k, _| used_out.contains(k));
    caches.listeners.retain(|k, _| used_lis.contains(k));
    (Pushes { generation: world.generation, changed_at: world.changed_at, by_proxy }, fresh)
}

/// Run the pipeline until meshd shuts down: every world change (debounced) becomes a new
/// `Pushes` in `state.pushes`.
pub async fn run(state: Arc<State>, mesh: MeshConfig) {
    let mut world_rx = state.subscribe();
    let mut caches = Some(Caches::default());
    loop {
        let world = world_rx.borrow_and_update().clone();
        // On Kubernetes, no config before meshd has listed everything once: a partial one
        // would take routes and endpoints away from proxies that reconnect to a restarted meshd.
        if state.ready() {
            let started = Instant::now();
            let mut c = caches.take().unwrap_or_default();
            let mesh = mesh.clone();
            let done = tokio::task::spawn_blocking(move || {
                let (pushes, fresh) = compute(&world, &mut c, &mesh);
                (pushes, fresh, c)
            })
            .await;
            match done {
                Ok((pushes, fresh, c)) => {
                    caches = Some(c);
                    debug!(
                        generation = pushes.generation,
                        proxies = pushes.by_proxy.len(),
                        fresh,
                        took = ?started.elapsed(),
                        "translated"
                    );
                    state.metrics.translate_time.observe(started.elapsed().as_secs_f64());
                    state.publish_pushes(pushes);
                }
                Err(e) => {
                    // A panic in the translator: keep serving the last config.
                    tracing::error!(error = %e, "translation failed");
                }
            }
        }
        if world_rx.changed().await.is_err() {
            return;
        }
        // Debounce: wait for a quiet moment, at most DEBOUNCE_MAX.
        let first = Instant::now();
        loop {
            let left = DEBOUNCE_MAX.saturating_sub(first.elapsed());
            match tokio::time::timeout(DEBOUNCE_QUIET.min(left), world_rx.changed()).await {
                Ok(Ok(())) if !left.is_zero() => continue,
                Ok(Err(_)) => return,
                _ => break,
            }
        }
    }
}

/// One field of a push frame.
pub enum Entry<'a> {
    Whole(ConfigType, &'a Part),
    /// `routes_delta` or `endpoints_delta`.
    Delta(ConfigType, &'a Delta),
}

/// A push frame (`MeshdMessage::Push` as JSON) made from already-serialized parts.
pub fn frame(nonce: u64, entries: &[Entry<'_>]) -> Bytes {
    let len = entries
        .iter()
        .map(|e| match e {
            Entry::Whole(_, p) => p.json_len() + p.version.len() + 40,
            Entry::Delta(_, d) => d.json.len() + 24,
        })
        .sum::<usize>()
        + 48;
    let mut out = Vec::with_capacity(len);
    out.extend_from_slice(br#"{"type":"push","nonce":""#);
    out.extend_from_slice(nonce.to_string().as_bytes());
    out.push(b'"');
    for e in entries {
        match e {
            Entry::Whole(t, p) => {
                out.extend_from_slice(b",\"");
                out.extend_from_slice(t.as_str().as_bytes());
                out.extend_from_slice(br#"":{"version":""#);
                out.extend_from_slice(p.version.as_bytes());
                out.extend_from_slice(br#"","body":"#);
                p.write_json(&mut out);
                out.push(b'}');
            }
            Entry::Delta(t, d) => {
                out.extend_from_slice(b",\"");
                out.extend_from_slice(t.as_str().as_bytes());
                out.extend_from_slice(br#"_delta":"#);
                out.extend_from_slice(&d.json);
            }
        }
    }
    out.push(b'}');
    Bytes::from(out)
}

#[cfg(test)]
mod tests;
