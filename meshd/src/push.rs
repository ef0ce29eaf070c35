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
use crate::translate::{self, Index, ListenerKey, MeshConfig, OutboundKey, Selection};

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

/// A proxy's config: one part per type, in `ConfigType::ALL` order.
pub type ProxyParts = [Arc<Part>; ConfigType::ALL.len()];

/// Every connected proxy's config for one world generation.
#[derive(Debug, Default)]
pub struct Pushes {
    pub generation: u64,
    /// When the world this was made from was published.
    pub changed_at: Option<Instant>,
    pub by_proxy: HashMap<String, Arc<ProxyParts>>,
}

type Workloads = std::collections::BTreeMap<String, Workload>;

/// Routes and clusters as sent, and the clusters as values (the endpoints are made from them).
type Outbound = (Arc<Part>, Arc<Part>, mesh_api::proxy_config::Clusters);

/// What earlier computations made, reused while its inputs are unchanged.
#[derive(Default)]
struct Caches {
    resources: Option<Arc<Resources>>,
    /// The connected and the discovered workloads they were made from.
    workloads: Option<(Arc<Workloads>, Arc<Workloads>)>,
    /// Routes, clusters (also as values, for the endpoints) per outbound key.
    outbound: HashMap<OutboundKey, Arc<Outbound>>,
    endpoints: HashMap<OutboundKey, Arc<Part>>,
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
    if !same_resources {
        caches.outbound.clear();
        caches.listeners.clear();
    }
    if !same_resources || !same_workloads {
        caches.endpoints.clear();
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
                let (routes, clusters) = translate::outbound(&index, w, mesh);
                Arc::new((Part::of(&routes), Part::of(&clusters), clusters))
            })
            .clone();
        let endpoints = caches
            .endpoints
            .entry(key.clone())
            .or_insert_with(|| {
                fresh += 1;
                let selection = selection.get_or_insert_with(|| Selection::new(&index, world.workload_list()));
                Part::of(&translate::endpoints(&index, selection, &out.2, &w.namespace))
            })
            .clone();
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
            ConfigType::Routes => out.0.clone(),
            ConfigType::Clusters => out.1.clone(),
            ConfigType::Endpoints => endpoints.clone(),
            ConfigType::Listeners => listeners.clone(),
        });
        by_proxy.insert(id.clone(), Arc::new(parts));
    }
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

/// A push frame (`MeshdMessage::Push` as JSON) made from already-serialized parts.
pub fn frame(nonce: u64, parts: &[(ConfigType, &Part)]) -> Bytes {
    let len = parts.iter().map(|(_, p)| p.json.len() + p.version.len() + 40).sum::<usize>() + 48;
    let mut out = Vec::with_capacity(len);
    out.extend_from_slice(br#"{"type":"push","nonce":""#);
    out.extend_from_slice(nonce.to_string().as_bytes());
    out.push(b'"');
    for (t, p) in parts {
        out.extend_from_slice(b",\"");
        out.extend_from_slice(t.as_str().as_bytes());
        out.extend_from_slice(br#"":{"version":""#);
        out.extend_from_slice(p.version.as_bytes());
        out.extend_from_slice(br#"","body":"#);
        out.extend_from_slice(&p.json);
        out.push(b'}');
    }
    out.push(b'}');
    Bytes::from(out)
}

#[cfg(test)]
mod tests;
