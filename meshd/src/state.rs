//! meshd's shared state: the one place that mutates config and registry. Readers (discovery
//! streams) get immutable `World` snapshots through a watch channel.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

pub use mesh_api::control::Change;
use mesh_api::credential::{Credential, CredentialInfo, Credentials};
use mesh_api::protocol::{ProxyStatus, TypeStatus, Workload};
use mesh_api::proxy_config::ConfigType;
use mesh_api::{Key, Resource};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::store::{Resources, Store, StoreError};

/// Namespace name -> its labels.
pub type NamespaceLabels = BTreeMap<String, BTreeMap<String, String>>;

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
    /// TLS credentials (gateway certificates, TLS origination): Secrets on Kubernetes,
    /// `mesh secret` locally.
    pub credentials: Arc<Credentials>,
    /// The labels of each namespace the platform knows (Kubernetes Namespaces; none locally),
    /// for Gateway API `allowedRoutes.namespaces.from: Selector`.
    pub namespace_labels: Arc<NamespaceLabels>,
    /// `workloads` and `discovered` merged (see `merge`), made on first use: once per
    /// generation that is translated, not once per registration.
    merged: std::sync::OnceLock<Vec<Workload>>,
}

impl World {
    pub(crate) fn new(
        generation: u64,
        resources: Arc<Resources>,
        workloads: Arc<BTreeMap<String, Workload>>,
        discovered: Arc<BTreeMap<String, Workload>>,
    ) -> World {
        World {
            generation,
            resources,
            workloads,
            discovered,
            changed_at: Some(std::time::Instant::now()),
            credentials: Arc::default(),
            namespace_labels: Arc::default(),
            merged: Default::default(),
        }
    }

    #[cfg(test)]
    pub(crate) fn for_test(
        generation: u64,
        resources: Arc<Resources>,
        workloads: Arc<BTreeMap<String, Workload>>,
    ) -> World {
        World::new(generation, resources, workloads, Arc::default())
    }

    /// Every workload that can be an endpoint: connected proxies (with their pods' port
    /// names), then the platform's pods whose proxy is not connected (or that have none).
    pub fn workload_list(&self) -> &[Workload] {
        self.merged.get_or_init(|| merge(&self.workloads, &self.discovered))
    }

    /// A connected proxy's workload, with the container port names its pod declares.
    pub fn workload(&self, id: &str) -> Option<&Workload> {
        // The merged list starts with the connected proxies, in `workloads`' order.
        self.workloads.keys().position(|k| k == id).and_then(|i| self.workload_list().get(i))
    }

    /// Every connected proxy: its id and its workload as `workload` gives it.
    pub fn connected(&self) -> impl Iterator<Item = (&String, &Workload)> {
        self.workloads.keys().zip(self.workload_list())
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
            // A gateway listening on every address is reached at its pod's IP.
            if let Some(ip) = pod.ports.first().map(|p| p.listen.ip()) {
                for g in w.gateway_ports.iter_mut().filter(|g| g.listen.ip().is_unspecified()) {
                    g.listen.set_ip(ip);
                }
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
    #[error("the credential {0}/{1} exists; delete it first, or pass --overwrite to replace it")]
    CredentialExists(String, String),
    #[error("no credential {0}/{1}")]
    NoCredential(String, String),
    #[error("cannot store the credentials: {0}; nothing was changed")]
    CredentialWrite(std::io::Error),
    #[error("credentials are Kubernetes Secrets on this platform: use kubectl create secret tls")]
    NoCredentialStore,
}

pub struct State {
    meshd_id: String,
    store: Store,
    write: Mutex<()>,
    world: watch::Sender<Arc<World>>,
    /// Every connected proxy's config, made from the world by `push::run`.
    pushes: watch::Sender<Arc<crate::push::Pushes>>,
    /// The registry waiting to be written (batched: see `persist_pending`).
    pending_registry: Mutex<(u64, Option<Arc<Registry>>)>,
    /// The sequence number of the registry last written.
    written_registry: Mutex<u64>,
    registry_changed: tokio::sync::Notify,
    status: Mutex<HashMap<String, ProxyStatus>>,
    registry: Option<PathBuf>,
    /// Workloads restored from the registry file that have not reconnected yet.
    restored: Mutex<BTreeSet<String>>,
    frozen: AtomicBool,
    /// False while meshd waits for its first full view of the platform (Kubernetes).
    synced: AtomicBool,
    pub metrics: crate::metrics::Metrics,
    /// Where `mesh secret` credentials are kept (local platform only).
    credential_store: Option<crate::credentials::CredentialStore>,
}

/// Connected proxies' workloads by proxy id.
type Registry = BTreeMap<String, Workload>;

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
            pushes: watch::channel(Arc::default()).0,
            pending_registry: Mutex::default(),
            written_registry: Mutex::default(),
            registry_changed: tokio::sync::Notify::new(),
            status: Mutex::default(),
            registry,
            restored: Mutex::new(restored_ids),
            frozen: AtomicBool::new(false),
            synced: AtomicBool::new(true),
            metrics: crate::metrics::Metrics::new(),
            credential_store: None,
        }
    }

    /// Keep `mesh secret` credentials in `store`, starting with `held`.
    pub fn with_credentials(mut self, store: crate::credentials::CredentialStore, held: Credentials) -> State {
        self.credential_store = Some(store);
        self.publish_credentials(held);
        self
    }

    fn publish_credentials(&self, credentials: Credentials) {
        self.world.send_modify(|w| {
            let next = World::new(w.generation + 1, w.resources.clone(), w.workloads.clone(), w.discovered.clone());
            *w = Arc::new(World {
                credentials: Arc::new(credentials),
                namespace_labels: w.namespace_labels.clone(),
                ..next
            });
        });
    }

    /// The namespaces' labels the platform holds now; published only when they changed.
    pub fn replace_namespace_labels(&self, labels: NamespaceLabels) {
        let _guard = self.write.lock().unwrap_or_else(|p| p.into_inner());
        if *self.world().namespace_labels == labels {
            return;
        }
        self.world.send_modify(|w| {
            let next = World::new(w.generation + 1, w.resources.clone(), w.workloads.clone(), w.discovered.clone());
            *w = Arc::new(World { credentials: w.credentials.clone(), namespace_labels: Arc::new(labels), ..next });
        });
    }

    /// The credentials the platform holds now (Secrets on Kubernetes); published only when
    /// they changed.
    pub fn replace_credentials(&self, credentials: Credentials) {
        let _guard = self.write.lock().unwrap_or_else(|p| p.into_inner());
        if *self.world().credentials != credentials {
            self.publish_credentials(credentials);
        }
    }

    /// What may be shown of every credential (never a key).
    pub fn credential_infos(&self) -> Vec<CredentialInfo> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        self.world()
            .credentials
            .values()
            .map(|c| {
                c.check(now).unwrap_or(CredentialInfo {
                    namespace: c.namespace.clone(),
                    name: c.name.clone(),
                    subject: None,
                    dns_names: Vec::new(),
                    not_after_unix: None,
                    has_key: c.private_key.is_some(),
                    has_ca: c.ca.is_some(),
                })
            })
            .collect()
    }

    /// Add a credential (checked by the caller), or replace one when `replace`: stored, then
    /// published. Err: it exists and `replace` is off, or it could not be stored (nothing
    /// changed then).
    pub fn put_credential(&self, c: Credential, replace: bool) -> Result<Change, StateError> {
        let _guard = self.write.lock().unwrap_or_else(|p| p.into_inner());
        let Some(store) = &self.credential_store else { return Err(StateError::NoCredentialStore) };
        let mut next = (*self.world().credentials).clone();
        let key = (c.namespace.clone(), c.name.clone());
        let change = match next.get(&key) {
            None => Change::Created,
            Some(old) if *old == c => return Ok(Change::Unchanged),
            Some(_) if !replace => return Err(StateError::CredentialExists(key.0, key.1)),
            Some(_) => Change::Configured,
        };
        next.insert(key, c);
        store.save(&next).map_err(StateError::CredentialWrite)?;
        self.publish_credentials(next);
        Ok(change)
    }

    /// Remove a credential. Err: there is none of that name, or the file could not be written.
    pub fn delete_credential(&self, namespace: &str, name: &str) -> Result<(), StateError> {
        let _guard = self.write.lock().unwrap_or_else(|p| p.into_inner());
        let Some(store) = &self.credential_store else { return Err(StateError::NoCredentialStore) };
        let mut next = (*self.world().credentials).clone();
        if next.remove(&(namespace.to_string(), name.to_string())).is_none() {
            return Err(StateError::NoCredential(namespace.to_string(), name.to_string()));
        }
        store.save(&next).map_err(StateError::CredentialWrite)?;
        self.publish_credentials(next);
        Ok(())
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
        let next = Arc::new(next);
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
        let _guard = self.write.lock().unwrap_or_else(|p| p.into_inner());
        self.flush_registry();
        self.frozen.store(true, Ordering::SeqCst);
    }

    /// Queue the registry for writing: `persist_registry_loop` writes the newest one off the
    /// write lock and the async workers, so a burst of registrations costs a few writes, not
    /// one per proxy under the lock.
    fn persist_registry(&self, workloads: &Arc<BTreeMap<String, Workload>>) {
        if self.registry.is_none() || self.frozen.load(Ordering::SeqCst) {
            return;
        }
        let mut pending = self.pending_registry.lock().unwrap_or_else(|p| p.into_inner());
        pending.0 += 1;
        pending.1 = Some(workloads.clone());
        drop(pending);
        self.registry_changed.notify_one();
    }

    /// Write the queued registry, if any and newer than the last written (blocking IO).
    pub fn flush_registry(&self) {
        let Some(path) = &self.registry else { return };
        let (seq, workloads) = {
            let mut pending = self.pending_registry.lock().unwrap_or_else(|p| p.into_inner());
            (pending.0, pending.1.take())
        };
        let Some(workloads) = workloads else { return };
        let mut written = self.written_registry.lock().unwrap_or_else(|p| p.into_inner());
        if seq <= *written {
            return;
        }
        let file = RegistryFile { workloads: workloads.values().cloned().collect() };
        let result = serde_json::to_vec(&file)
            .map_err(std::io::Error::other)
            .and_then(|body| crate::home::write_atomic(path, &body, 0o600));
        match result {
            Ok(()) => *written = seq,
            Err(e) => tracing::warn!(path = %path.display(), error = %e, "cannot persist the registry cache"),
        }
    }

    /// Write queued registries until meshd stops: one write at a time, right away, so
    /// changes queued while one is written go out together in the next.
    pub async fn persist_registry_loop(self: Arc<Self>) {
        loop {
            self.registry_changed.notified().await;
            let state = self.clone();
            let _ = tokio::task::spawn_blocking(move || state.flush_registry()).await;
        }
    }

    /// The newest config of every connected proxy.
    pub fn subscribe_pushes(&self) -> watch::Receiver<Arc<crate::push::Pushes>> {
        self.pushes.subscribe()
    }

    pub fn publish_pushes(&self, pushes: crate::push::Pushes) {
        self.pushes.send_replace(Arc::new(pushes));
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

    fn publish(&self, resources: Option<Resources>, workloads: Option<Arc<BTreeMap<String, Workload>>>) {
        self.publish_all(resources, workloads, None)
    }

    fn publish_all(
        &self,
        resources: Option<Resources>,
        workloads: Option<Arc<BTreeMap<String, Workload>>>,
        discovered: Option<BTreeMap<String, Workload>>,
    ) {
        self.world.send_modify(|w| {
            let next = World::new(
                w.generation + 1,
                resources.map(Arc::new).unwrap_or_else(|| w.resources.clone()),
                workloads.unwrap_or_else(|| w.workloads.clone()),
                discovered.map(Arc::new).unwrap_or_else(|| w.discovered.clone()),
            );
            let next =
                World { credentials: w.credentials.clone(), namespace_labels: w.namespace_labels.clone(), ..next };
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
            // A Rollout's status is meshd's (where it is in its steps): applying its spec again
            // (pause, resume, promote) keeps it, as a Kubernetes status subresource does.
            if let (Resource::Rollout(new), Some(Resource::Rollout(old))) = (&mut r, next.get(&key))
                && new.status.is_none()
            {
                new.status = old.status.clone();
            }
            let change = match next.get(&key) {
                None => Change::Created,
                Some(old) if old.same_content(&r) => Change::Unchanged,
                Some(_) => Change::Configured,
            };
            if change != Change::Unchanged {
                bump_generation(&mut r, next.get(&key));
                stamp_created(&mut r, next.get(&key));
                next.insert(key.clone(), r);
            }
            changes.push((key, change));
        }
        if !dry_run && changes.iter().any(|(_, c)| *c != Change::Unchanged) {
            self.store.save(&next)?;
            self.metrics.config_changed(&self.world().resources, &next);
            self.publish(Some(next), None);
        }
        Ok(changes)
    }

    /// Set a Rollout's status (meshd's controller), stored and published; false when the
    /// Rollout is gone or its spec changed from `spec_generation` since it was read.
    pub fn set_rollout_status(
        &self,
        key: &Key,
        spec_generation: Option<i64>,
        status: serde_json::Value,
    ) -> Result<bool, StateError> {
        let _guard = self.write.lock().unwrap_or_else(|p| p.into_inner());
        let mut next: Resources = (*self.world().resources).clone();
        let Some(Resource::Rollout(o)) = next.get_mut(key) else { return Ok(false) };
        if o.metadata.generation != spec_generation {
            return Ok(false);
        }
        if o.status.as_ref() == Some(&status) {
            return Ok(true);
        }
        o.status = Some(status);
        self.store.save(&next)?;
        self.publish(Some(next), None);
        Ok(true)
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
        if config_changed {
            self.metrics.config_changed(&world.resources, &resources);
        }
        if *world.discovered != discovered {
            self.metrics.push_triggers.get_or_create(&crate::metrics::TypeLabel { r#type: "endpoint" }).inc();
        }
        self.publish_all(config_changed.then_some(resources), None, Some(discovered));
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
            self.metrics.config_changed(&self.world().resources, &next);
            self.publish(Some(next), None);
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
        let next = Arc::new(next);
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
        self.metrics.workload_event("add");
        Ok(id)
    }

    pub fn unregister(&self, id: &str) {
        let _guard = self.write.lock().unwrap_or_else(|p| p.into_inner());
        let mut next = (*self.world().workloads).clone();
        if self.frozen.load(Ordering::SeqCst) {
            return; // shutting down: keep the registry for the next meshd
        }
        if next.remove(id).is_some() {
            self.metrics.workload_event("delete");
        }
        if self.lock_status().remove(id).is_some() {
            self.metrics.connected.dec();
        }
        let next = Arc::new(next);
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

/// `metadata.creationTimestamp`, as the API server sets it: kept from the stored version, else
/// now (RFC 3339, UTC).
fn stamp_created(r: &mut Resource, old: Option<&Resource>) {
    let kept = old.and_then(|o| o.meta().creation_timestamp.clone());
    let created = kept.or_else(|| {
        time::OffsetDateTime::now_utc()
            .replace_nanosecond(0)
            .ok()?
            .format(&time::format_description::well_known::Rfc3339)
            .ok()
            .map(serde_json::Value::String)
    });
    r.meta_mut().creation_timestamp = created;
}

fn bump_generation(r: &mut Resource, old: Option<&Resource>) {
    let g = old.and_then(|o| o.meta().generation).unwrap_or(0) + 1;
    r.meta_mut().generation = Some(g);
}
