//! meshd's shared state: the one place that mutates config and registry. Readers (discovery
//! streams) get immutable `World` snapshots through a watch channel.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

pub use mesh_api::control::Change;
use mesh_api::protocol::{ProxyStatus, TypeStatus, Workload};
use mesh_api::proxy_config::ConfigType;
use mesh_api::{Key, Resource};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::store::{Resources, Store, StoreError};

/// An immutable view of everything the translator reads.
#[derive(Debug, Default)]
pub struct World {
    pub generation: u64,
    pub resources: Arc<Resources>,
    /// Connected proxies' workloads, by proxy id.
    pub workloads: Arc<BTreeMap<String, Workload>>,
    /// Workloads the platform reports (ready Kubernetes Pods), by `namespace/name`; a
    /// connected proxy for the same pod takes precedence.
    pub discovered: Arc<BTreeMap<String, Workload>>,
    /// When this generation was published (for the convergence-time metric).
    pub changed_at: Option<std::time::Instant>,
    /// `workloads` and `discovered` merged (see `merge`), made once per generation because
    /// every proxy's translation reads it.
    merged: Vec<Workload>,
}

impl World {
    fn new(
        generation: u64,
        resources: Arc<Resources>,
        workloads: Arc<BTreeMap<String, Workload>>,
        discovered: Arc<BTreeMap<String, Workload>>,
    ) -> World {
        let merged = merge(&workloads, &discovered);
        World { generation, resources, workloads, discovered, changed_at: Some(std::time::Instant::now()), merged }
    }

    /// Every workload that can be an endpoint: connected proxies (with their pods' port
    /// names), then the platform's pods whose proxy is not connected (or that have none).
    pub fn workload_list(&self) -> &[Workload] {
        &self.merged
    }

    /// A connected proxy's workload, with the container port names its pod declares.
    pub fn workload(&self, id: &str) -> Option<&Workload> {
        // `merged` starts with the connected proxies, in `workloads`' order.
        self.workloads.keys().position(|k| k == id).and_then(|i| self.merged.get(i))
    }
}

/// Connected proxies first, each taking the container port names its pod declares (the proxy
/// knows ports by number only), then the discovered pods that have no connected proxy.
fn merge(workloads: &BTreeMap<String, Workload>, discovered: &BTreeMap<String, Workload>) -> Vec<Workload> {
    let mut out = Vec::with_capacity(workloads.len() + discovered.len());
    for (id, w) in workloads {
        let mut w = w.clone();
        if let Some(pod) = discovered.get(id) {
            for p in w.ports.iter_mut().filter(|p| p.name.is_none()) {
                p.name = pod.ports.iter().find(|d| d.port == p.port).and_then(|d| d.name.clone());
            }
        }
        out.push(w);
    }
    out.extend(discovered.iter().filter(|(id, _)| !workloads.contains_key(*id)).map(|(_, w)| w.clone()));
    out
}

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0} not found")]
    NotFound(Key),
    #[error("a proxy for workload {0} is already connected; give each proxy its own --workload name")]
    Duplicate(String),
}

pub struct State {
    meshd_id: String,
    store: Store,
    write: Mutex<()>,
    world: watch::Sender<Arc<World>>,
    status: Mutex<HashMap<String, ProxyStatus>>,
    registry: Option<PathBuf>,
    /// Workloads restored from the registry file that have not reconnected yet.
    restored: Mutex<BTreeSet<String>>,
    frozen: AtomicBool,
    /// False while meshd waits for its first full view of the platform (Kubernetes).
    synced: AtomicBool,
    pub metrics: crate::metrics::Metrics,
}

/// The registry as persisted (`MESH_HOME/registry.json`), so a restarted meshd keeps routing to
/// workloads while their proxies reconnect.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct RegistryFile {
    pub workloads: Vec<Workload>,
}

impl RegistryFile {
    /// Load the file; a missing or unreadable file is an empty registry (it is only a cache).
    pub fn load(path: &Path) -> RegistryFile {
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                tracing::warn!(path = %path.display(), error = %e, "ignoring unreadable registry cache");
                RegistryFile::default()
            }),
            Err(_) => RegistryFile::default(),
        }
    }
}

fn now_unix() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

impl State {
    /// `restored`: workloads of the previous meshd, kept until they reconnect or
    /// `expire_restored` is called. `registry`: where to persist the registry.
    pub fn new(
        meshd_id: String,
        store: Store,
        resources: Resources,
        registry: Option<PathBuf>,
        restored: Vec<Workload>,
    ) -> State {
        let workloads: BTreeMap<String, Workload> =
            restored.into_iter().map(|w| (format!("{}/{}", w.namespace, w.name), w)).collect();
        let restored_ids = workloads.keys().cloned().collect();
        let world = World::new(1, Arc::new(resources), Arc::new(workloads), Arc::default());
        State {
            meshd_id,
            store,
            write: Mutex::new(()),
            world: watch::channel(Arc::new(world)).0,
            status: Mutex::default(),
            registry,
            restored: Mutex::new(restored_ids),
            frozen: AtomicBool::new(false),
            synced: AtomicBool::new(true),
            metrics: crate::metrics::Metrics::new(),
        }
    }

    fn lock_restored(&self) -> std::sync::MutexGuard<'_, BTreeSet<String>> {
        self.restored.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Drop restored workloads whose proxies did not come back.
    pub fn expire_restored(&self) {
        let _guard = self.write.lock().unwrap_or_else(|p| p.into_inner());
        let gone: Vec<String> = std::mem::take(&mut *self.lock_restored()).into_iter().collect();
        if gone.is_empty() {
            return;
        }
        tracing::info!(workloads = ?gone, "dropping workloads that did not reconnect");
        let mut next = (*self.world().workloads).clone();
        for id in &gone {
            next.remove(id);
        }
        self.persist_registry(&next);
        self.publish(None, Some(next));
    }

    /// Config comes from a platform (the Kubernetes API): not ready until its first full view
    /// is published.
    pub fn await_platform(&self) {
        self.synced.store(false, Ordering::SeqCst);
    }

    /// Whether meshd has everything it needs to serve proxies (for the readiness probe).
    pub fn ready(&self) -> bool {
        self.synced.load(Ordering::SeqCst)
    }

    /// Stop persisting the registry: meshd is shutting down and streams will drop.
    pub fn freeze(&self) {
        self.frozen.store(true, Ordering::SeqCst);
    }

    fn persist_registry(&self, workloads: &BTreeMap<String, Workload>) {
        let Some(path) = &self.registry else { return };
        if self.frozen.load(Ordering::SeqCst) {
            return;
        }
        let file = RegistryFile { workloads: workloads.values().cloned().collect() };
        let result = serde_json::to_vec_pretty(&file)
            .map_err(std::io::Error::other)
            .and_then(|body| crate::home::write_atomic(path, &body, 0o600));
        if let Err(e) = result {
            tracing::warn!(path = %path.display(), error = %e, "cannot persist the registry cache");
        }
    }

    pub fn meshd_id(&self) -> &str {
        &self.meshd_id
    }

    pub fn subscribe(&self) -> watch::Receiver<Arc<World>> {
        self.world.subscribe()
    }

    pub fn world(&self) -> Arc<World> {
        self.world.borrow().clone()
    }

    fn publish(&self, resources: Option<Resources>, workloads: Option<BTreeMap<String, Workload>>) {
        self.publish_all(resources, workloads, None)
    }

    fn publish_all(
        &self,
        resources: Option<Resources>,
        workloads: Option<BTreeMap<String, Workload>>,
        discovered: Option<BTreeMap<String, Workload>>,
    ) {
        self.world.send_modify(|w| {
            let next = World::new(
                w.generation + 1,
                resources.map(Arc::new).unwrap_or_else(|| w.resources.clone()),
                workloads.map(Arc::new).unwrap_or_else(|| w.workloads.clone()),
                discovered.map(Arc::new).unwrap_or_else(|| w.discovered.clone()),
            );
            *w = Arc::new(next);
        });
    }

    /// Apply a validated batch: stored atomically, then published. On error nothing changed.
    pub fn apply(&self, batch: Vec<Resource>, dry_run: bool) -> Result<Vec<(Key, Change)>, StateError> {
        let _guard = self.write.lock().unwrap_or_else(|p| p.into_inner());
        let mut next: Resources = (*self.world().resources).clone();
        let mut changes = Vec::new();
        for mut r in batch {
            let key = r.key();
            let change = match next.get(&key) {
                None => Change::Created,
                Some(old) if old.same_content(&r) => Change::Unchanged,
                Some(_) => Change::Configured,
            };
            if change != Change::Unchanged {
                bump_generation(&mut r, next.get(&key));
                next.insert(key.clone(), r);
            }
            changes.push((key, change));
        }
        if !dry_run && changes.iter().any(|(_, c)| *c != Change::Unchanged) {
            self.store.save(&next)?;
            self.publish(Some(next), None);
            self.metrics.config_events.inc();
        }
        Ok(changes)
    }

    /// Replace every resource and every discovered workload with what the platform holds (the
    /// Kubernetes API server is the store there: nothing is written to the local file).
    pub fn replace_platform(&self, resources: Resources, discovered: BTreeMap<String, Workload>) {
        let _guard = self.write.lock().unwrap_or_else(|p| p.into_inner());
        let first = !self.synced.swap(true, Ordering::SeqCst);
        let world = self.world();
        let config_changed = *world.resources != resources;
        if !first && !config_changed && *world.discovered == discovered {
            return;
        }
        self.publish_all(config_changed.then_some(resources), None, Some(discovered));
        if config_changed {
            self.metrics.config_events.inc();
        }
    }

    /// Delete resources; all must exist unless `ignore_missing`. On error nothing changed.
    pub fn delete(&self, keys: &[Key], ignore_missing: bool) -> Result<Vec<(Key, Change)>, StateError> {
        let _guard = self.write.lock().unwrap_or_else(|p| p.into_inner());
        let mut next: Resources = (*self.world().resources).clone();
        let mut changes = Vec::new();
        for k in keys {
            if next.remove(k).is_some() {
                changes.push((k.clone(), Change::Deleted));
            } else if !ignore_missing {
                return Err(StateError::NotFound(k.clone()));
            }
        }
        if !changes.is_empty() {
            self.store.save(&next)?;
            self.publish(Some(next), None);
            self.metrics.config_events.inc();
        }
        Ok(changes)
    }

    /// Register a connected proxy. Its id is `namespace/name`.
    pub fn register(&self, workload: Workload) -> Result<String, StateError> {
        let _guard = self.write.lock().unwrap_or_else(|p| p.into_inner());
        let id = format!("{}/{}", workload.namespace, workload.name);
        let mut next = (*self.world().workloads).clone();
        let was_restored = self.lock_restored().remove(&id);
        if next.contains_key(&id) && !was_restored {
            return Err(StateError::Duplicate(id));
        }
        next.insert(id.clone(), workload.clone());
        self.persist_registry(&next);
        let types = ConfigType::ALL.into_iter().map(|t| (t, TypeStatus::default())).collect();
        self.lock_status().insert(
            id.clone(),
            ProxyStatus {
                id: id.clone(),
                workload,
                meshd: self.meshd_id.clone(),
                connected_at_unix: now_unix(),
                types,
                generation: 0,
                behind: true,
                identity: Default::default(),
            },
        );
        self.publish(None, Some(next));
        self.metrics.connected.inc();
        Ok(id)
    }

    pub fn unregister(&self, id: &str) {
        let _guard = self.write.lock().unwrap_or_else(|p| p.into_inner());
        let mut next = (*self.world().workloads).clone();
        if self.frozen.load(Ordering::SeqCst) {
            return; // shutting down: keep the registry for the next meshd
        }
        next.remove(id);
        if self.lock_status().remove(id).is_some() {
            self.metrics.connected.dec();
        }
        self.persist_registry(&next);
        self.publish(None, Some(next));
    }

    fn lock_status(&self) -> std::sync::MutexGuard<'_, HashMap<String, ProxyStatus>> {
        self.status.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn update_status(&self, id: &str, f: impl FnOnce(&mut BTreeMap<ConfigType, TypeStatus>)) {
        if let Some(s) = self.lock_status().get_mut(id) {
            f(&mut s.types);
        }
    }

    /// Record that the proxy's config was translated from world `generation`.
    pub fn translated(&self, id: &str, generation: u64) {
        if let Some(s) = self.lock_status().get_mut(id) {
            s.generation = generation;
        }
    }

    /// Record what a proxy reported of its certificate and trust bundle.
    pub fn update_identity(&self, id: &str, report: mesh_api::protocol::IdentityReport) {
        if let Some(s) = self.lock_status().get_mut(id) {
            s.identity = report;
        }
    }

    /// Workload certificates issued since meshd started.
    pub fn issued(&self) -> u64 {
        self.metrics.issued.get()
    }

    pub fn proxy_statuses(&self) -> Vec<ProxyStatus> {
        let generation = self.world.borrow().generation;
        let mut v: Vec<_> = self
            .lock_status()
            .values()
            .cloned()
            .map(|mut s| {
                s.behind = s.generation < generation;
                s
            })
            .collect();
        v.sort_by(|a, b| a.id.cmp(&b.id));
        v
    }
}

fn bump_generation(r: &mut Resource, old: Option<&Resource>) {
    let g = old.and_then(|o| o.meta().generation).unwrap_or(0) + 1;
    r.meta_mut().generation = Some(g);
}
