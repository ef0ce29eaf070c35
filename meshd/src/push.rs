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
use mesh_api::proxy_config::{ConfigType, Endpoints, Routes};
use tracing::debug;

use crate::state::{State, World};
use crate::store::Resources;
use crate::translate::{self, Index, ListenerKey, MeshConfig, OutboundKey, Selection};
use mesh_api::resource::Kind;

/// A change waits this long for more changes before it is translated...
const DEBOUNCE_QUIET: Duration = Duration::from_millis(20);
/// ...but never longer than this, however long a burst lasts (istiod: 100 ms / 10 s).
const DEBOUNCE_MAX: Duration = Duration::from_millis(500);

/// One config type of one proxy: its JSON and its version (the FNV hash of that JSON).
#[derive(Debug)]
pub struct Part {
    pub version: String,
    pub json: Bytes,
}

impl Part {
    pub fn of<T: serde::Serialize>(value: &T) -> Arc<Part> {
        let json = serde_json::to_vec(value).unwrap_or_default();
        Arc::new(Part { version: translate::version_of_bytes(&json), json: Bytes::from(json) })
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

/// Endpoints as sent, as values (to compute the next delta from), the delta that led here,
/// and the version of the clusters they were made for.
struct EndpointsEntry {
    part: Arc<Part>,
    value: Endpoints,
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

/// The change from `old` to `new`, serialized; None when it would not be much smaller than
/// sending `new` whole.
fn delta(old: &EndpointsEntry, new: &Endpoints, version: &str) -> Option<Arc<Delta>> {
    let updated: std::collections::BTreeMap<String, Vec<mesh_api::proxy_config::Endpoint>> = new
        .clusters
        .iter()
        .filter(|(k, v)| old.value.clusters.get(*k) != Some(*v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let removed: Vec<String> = old.value.clusters.keys().filter(|k| !new.clusters.contains_key(*k)).cloned().collect();
    if (updated.len() + removed.len()) * 2 > new.clusters.len().max(1) {
        return None;
    }
    let d = mesh_api::protocol::EndpointsDelta {
        base: old.part.version.clone(),
        version: version.to_string(),
        updated,
        removed,
    };
    let json = serde_json::to_vec(&d).ok()?;
    Some(Arc::new(Delta { base: d.base, json: Bytes::from(json) }))
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

/// Routes and clusters as sent and as values (the endpoints are made from the clusters, the
/// next routes delta from the routes), and the routes delta that led here.
struct Outbound {
    routes: Arc<Part>,
    clusters: Arc<Part>,
    routes_value: Routes,
    clusters_value: mesh_api::proxy_config::Clusters,
    routes_delta: Option<Arc<Delta>>,
    /// Each service's share of the routes, for the next change to reuse.
    by_service: translate::ServiceRoutesByHost,
}

/// The change from the routes of `old` to `new`, serialized; None when virtual hosts were
/// added or removed, or most of them changed.
fn routes_delta(old: &Outbound, new: &Routes, version: &str) -> Option<Arc<Delta>> {
    let d = mesh_api::protocol::RoutesDelta::between(&old.routes_value, new, &old.routes.version, version)?;
    if d.virtual_hosts.len() * 2 > new.virtual_hosts.len().max(1) {
        return None;
    }
    let json = serde_json::to_vec(&d).ok()?;
    Some(Arc::new(Delta { base: d.base, json: Bytes::from(json) }))
}

/// What earlier computations made, reused while its inputs are unchanged.
#[derive(Default)]
struct Caches {
    resources: Option<Arc<Resources>>,
    /// The connected and the discovered workloads they were made from.
    workloads: Option<(Arc<Workloads>, Arc<Workloads>)>,
    /// Routes, clusters (also as values, for the endpoints) per outbound key.
    outbound: HashMap<OutboundKey, Arc<Outbound>>,
    previous_outbound: HashMap<OutboundKey, Arc<Outbound>>,
    endpoints: HashMap<OutboundKey, Arc<EndpointsEntry>>,
    /// The endpoints of the translation before, while the current ones are made: the base of
    /// the deltas.
    previous_endpoints: HashMap<OutboundKey, Arc<EndpointsEntry>>,
    listeners: HashMap<ListenerKey, Arc<Part>>,
}

/// Translate `world` for every connected proxy, reusing what `caches` holds for unchanged
/// inputs. Returns the pushes and how many parts were translated anew.
fn compute(world: &World, caches: &mut Caches, mesh: &MeshConfig) -> (Pushes, usize) {
    let same_resources = caches.resources.as_ref().is_some_and(|r| Arc::ptr_eq(r, &world.resources));
    let same_workloads = caches
        .workloads
        .as_ref()
        .is_some_and(|(w, d)| Arc::ptr_eq(w, &world.workloads) && Arc::ptr_eq(d, &world.discovered));
    // What the change touches: endpoints and listeners stand when only VirtualServices changed
    // (endpoints as long as their key's clusters are the same), and the routes of services it
    // cannot touch are reused as they were.
    let (only_routing, touched) = match &caches.resources {
        Some(old) if !same_resources => {
            let c = Change::between(old, &world.resources);
            (c.only_routing, c.touched)
        }
        _ => (false, None),
    };
    if !same_resources {
        caches.previous_outbound = std::mem::take(&mut caches.outbound);
        if !only_routing {
            caches.listeners.clear();
        }
    }
    if (!same_resources && !only_routing) || !same_workloads {
        caches.previous_endpoints = std::mem::take(&mut caches.endpoints);
    }
    caches.resources = Some(world.resources.clone());
    caches.workloads = Some((world.workloads.clone(), world.discovered.clone()));

    let index = Index::new(&world.resources);
    let mut selection: Option<Selection<'_>> = None;
    let mut fresh = 0;
    let mut by_proxy = HashMap::with_capacity(world.workloads.len());
    let mut used_out = std::collections::HashSet::new();
    let mut used_lis = std::collections::HashSet::new();
    for (id, w) in world.connected() {
        let key = index.outbound_key(w);
        let out = caches
            .outbound
            .entry(key.clone())
            .or_insert_with(|| {
                fresh += 2;
                let previous = caches.previous_outbound.get(&key);
                let reuse = |fqdn: &str| match (&touched, previous) {
                    (Some(touched), Some(old)) if !touched.contains(fqdn) => old.by_service.get(fqdn).cloned(),
                    _ => None,
                };
                let (routes_value, clusters_value, by_service) = translate::outbound_reusing(&index, w, mesh, reuse);
                let routes = Part::of(&routes_value);
                let routes_delta = match caches.previous_outbound.get(&key) {
                    Some(old) if old.routes.version == routes.version => old.routes_delta.clone(),
                    Some(old) => routes_delta(old, &routes_value, &routes.version),
                    None => None,
                };
                Arc::new(Outbound {
                    routes,
                    clusters: Part::of(&clusters_value),
                    routes_value,
                    clusters_value,
                    routes_delta,
                    by_service,
                })
            })
            .clone();
        let endpoints = match caches.endpoints.get(&key) {
            Some(e) if e.clusters_version == out.clusters.version => e.clone(),
            stale => {
                fresh += 1;
                let base = stale.or_else(|| caches.previous_endpoints.get(&key)).cloned();
                let selection = selection.get_or_insert_with(|| Selection::new(&index, world.workload_list()));
                let value = translate::endpoints(&index, selection, &out.clusters_value, &w.namespace);
                let part = Part::of(&value);
                let delta = match base {
                    Some(old) if old.part.version == part.version => old.delta.clone(),
                    Some(old) => delta(&old, &value, &part.version),
                    None => None,
                };
                let entry =
                    Arc::new(EndpointsEntry { part, value, delta, clusters_version: out.clusters.version.clone() });
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
            Entry::Whole(_, p) => p.json.len() + p.version.len() + 40,
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
                out.extend_from_slice(&p.json);
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
