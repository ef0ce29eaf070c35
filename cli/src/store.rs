//! Where `apply`, `get`, `delete`, `route split` and `analyze` read and write config: the
//! running meshd on the local platform, the Kubernetes API server on the kube platform (the
//! Istio CRDs and Services, as `kubectl` would; meshd watches them there).
//!
//! On a cluster a batch cannot be stored atomically, so `apply` first sends every object as a
//! server-side dry run (the API server runs its schema checks and the admission webhooks,
//! meshd's validation among them) and changes nothing unless all of them pass.

use std::collections::BTreeMap;

use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use mesh_api::control::{APPLY_PATH, ApplyRequest, ApplyResponse, Change, ChangeResult, DELETE_PATH, DeleteRequest};
use mesh_api::{Key, Kind, Parsed, Resource};
use serde_json::Value;

use crate::Ctx;
use crate::cli::Platform;
use crate::client::MeshdClient;
use crate::cmd::kube::explain;
use crate::error::{CliError, Result};

/// The field manager of what `mesh apply` writes on a cluster.
const FIELD_MANAGER: &str = "mesh";

pub enum ConfigStore {
    Meshd(Box<MeshdClient>),
    Kube(kube::Client),
}

impl Ctx {
    /// The config store of the platform the global flags name.
    pub async fn config_store(&self) -> Result<ConfigStore> {
        match self.global.platform {
            Platform::Kube => Ok(ConfigStore::Kube(crate::cmd::kube::client(self).await?)),
            Platform::Local => Ok(ConfigStore::Meshd(Box::new(self.client()?))),
        }
    }
}

/// A kind's API resource at the version `mesh` writes.
fn resource_of(kind: Kind) -> kube::api::ApiResource {
    let (group, version) = kind.default_api_version().rsplit_once('/').unwrap_or(("", kind.default_api_version()));
    meshd::kubernetes::api_resource(group, version, kind.as_str(), kind.plural())
}

/// The API of a kind at the version `mesh` writes.
fn api_of(client: &kube::Client, kind: Kind, namespace: Option<&str>) -> Api<DynamicObject> {
    match namespace {
        Some(ns) if !kind.is_cluster_scoped() => Api::namespaced_with(client.clone(), ns, &resource_of(kind)),
        _ => Api::all_with(client.clone(), &resource_of(kind)),
    }
}

/// An object as the validator reads it: with its apiVersion and kind, without the server's
/// bookkeeping (as meshd reads it).
fn object_json(kind: Kind, o: DynamicObject) -> Value {
    meshd::kubernetes::to_json(&resource_of(kind), o)
}

impl ConfigStore {
    /// The resources of one kind (in one namespace, or all; one name, or all). On a cluster,
    /// objects that do not validate (written past the webhook) are left out, each named in
    /// `skipped`.
    pub async fn list(
        &self,
        kind: Kind,
        namespace: Option<&str>,
        name: Option<&str>,
        skipped: &mut Vec<String>,
    ) -> Result<Vec<Resource>> {
        match self {
            ConfigStore::Meshd(client) => crate::cmd::get::list(client, kind, namespace, name).await,
            ConfigStore::Kube(client) => {
                let api = api_of(client, kind, namespace);
                let objects = match name {
                    Some(n) => api
                        .get_opt(n)
                        .await
                        .map_err(|e| explain(e, &format!("getting {} {n}", kind.plural())))?
                        .into_iter()
                        .collect(),
                    None => match api.list(&ListParams::default()).await {
                        Ok(list) => list.items,
                        Err(kube::Error::Api(s)) if s.code == 404 && kind.is_gateway_api() => {
                            return Err(CliError::failed(format!(
                                "the cluster does not serve {} (the Kubernetes Gateway API CRDs are not installed; install its standard channel, as for Istio)",
                                kind.qualified()
                            )));
                        }
                        Err(kube::Error::Api(s)) if s.code == 404 => {
                            return Err(CliError::failed(format!(
                                "the cluster does not serve {} (its CRD is not installed); `mesh install --platform kube` installs it",
                                kind.qualified()
                            )));
                        }
                        Err(e) => return Err(explain(e, &format!("listing {}", kind.plural()))),
                    },
                };
                let mut out = Vec::new();
                for (i, o) in objects.into_iter().enumerate() {
                    match mesh_api::resource::parse_document(object_json(kind, o), namespace.unwrap_or("default"), i) {
                        Ok(Parsed::Supported(r)) => out.push(r),
                        Ok(_) => {}
                        Err(e) => skipped.push(e.to_string()),
                    }
                }
                Ok(out)
            }
        }
    }

    /// Every config resource in every namespace, as documents (for the analyzers), and the
    /// workloads as Pods.
    pub async fn snapshot(&self) -> Result<(Vec<Value>, Vec<Value>)> {
        match self {
            ConfigStore::Meshd(client) => {
                let live: Vec<Value> = client.get(mesh_api::control::RESOURCES_PATH).await?;
                let proxies: Vec<mesh_api::protocol::ProxyStatus> = client.get(mesh_api::control::PROXIES_PATH).await?;
                let workloads: Vec<_> = proxies.into_iter().map(|p| p.workload).collect();
                let credentials: Vec<mesh_api::credential::CredentialInfo> =
                    client.get(mesh_api::control::CREDENTIALS_PATH).await?;
                let mut found: Vec<Value> =
                    crate::analyze::workload_pods(&workloads).into_iter().map(|r| r.value).collect();
                found.extend(crate::analyze::credential_secrets(&credentials));
                Ok((live, found))
            }
            ConfigStore::Kube(client) => {
                let mut live = Vec::new();
                for kind in Kind::ALL {
                    let items = match api_of(client, kind, None).list(&ListParams::default()).await {
                        Ok(list) => list.items,
                        // The kind's CRD is not installed (Istio without mesh's own kinds): none.
                        Err(kube::Error::Api(s)) if s.code == 404 => Vec::new(),
                        Err(e) => return Err(explain(e, &format!("listing {}", kind.plural()))),
                    };
                    live.extend(items.into_iter().map(|o| object_json(kind, o)));
                }
                let ar = meshd::kubernetes::api_resource("", "v1", "Pod", "pods");
                let pods = Api::<DynamicObject>::all_with(client.clone(), &ar)
                    .list(&ListParams::default())
                    .await
                    .map_err(|e| explain(e, "listing pods"))?
                    .items;
                Ok((live, pods.into_iter().map(|o| meshd::kubernetes::to_json(&ar, o)).collect()))
            }
        }
    }

    /// The labels of the running workloads in `namespace` (connected proxies locally, Pods on
    /// a cluster).
    pub async fn workload_labels(&self, namespace: &str) -> Result<Vec<BTreeMap<String, String>>> {
        match self {
            ConfigStore::Meshd(client) => Ok(crate::cmd::proxy_status::fetch(client)
                .await?
                .into_iter()
                .filter(|p| p.workload.namespace == namespace)
                .map(|p| p.workload.labels)
                .collect()),
            ConfigStore::Kube(client) => {
                let ar = meshd::kubernetes::api_resource("", "v1", "Pod", "pods");
                let pods = Api::<DynamicObject>::namespaced_with(client.clone(), namespace, &ar)
                    .list(&ListParams::default())
                    .await
                    .map_err(|e| explain(e, "listing pods"))?
                    .items;
                Ok(pods
                    .into_iter()
                    .filter(|p| p.data.pointer("/status/phase").and_then(Value::as_str).is_none_or(|s| s == "Running"))
                    .map(|p| p.metadata.labels.unwrap_or_default())
                    .collect())
            }
        }
    }

    /// Apply validated documents (`namespace` for those without one): all or nothing.
    pub async fn apply(&self, values: Vec<Value>, namespace: &str, dry_run: bool) -> Result<ApplyResponse> {
        let client = match self {
            ConfigStore::Meshd(client) => {
                let req = ApplyRequest { resources: values, namespace: namespace.to_string(), dry_run };
                return client.post(APPLY_PATH, &req).await;
            }
            ConfigStore::Kube(client) => client,
        };
        // Each object at the version mesh writes, in its namespace.
        let mut objects = Vec::new();
        for (i, mut v) in values.into_iter().enumerate() {
            let r = match mesh_api::resource::parse_document(v.clone(), namespace, i) {
                Ok(Parsed::Supported(r)) => r,
                Ok(_) => continue,
                Err(e) => return Err(CliError::user(format!("{e}; nothing was changed"))),
            };
            let key = r.key();
            v["apiVersion"] = Value::String(key.kind.default_api_version().to_string());
            if key.kind.is_cluster_scoped() {
                if let Some(m) = v["metadata"].as_object_mut() {
                    m.remove("namespace");
                }
            } else {
                v["metadata"]["namespace"] = Value::String(key.namespace.clone());
            }
            objects.push((key, v));
        }
        // First every object as a dry run: the API server's checks and the webhooks decide
        // before anything is written.
        let check = PatchParams::apply(FIELD_MANAGER).force().dry_run();
        let mut before = Vec::new();
        for (key, v) in &objects {
            let api = api_of(client, key.kind, Some(&key.namespace));
            let what = format!("{} {}/{}", key.kind.qualified(), key.namespace, key.name);
            api.patch(&key.name, &check, &Patch::Apply(v))
                .await
                .map_err(|e| explain(e, &format!("{what} (nothing was changed)")))?;
            let existing = api.get_opt(&key.name).await.map_err(|e| explain(e, &what))?;
            before.push(existing.and_then(|o| o.metadata.resource_version));
        }
        let mut results = Vec::new();
        for ((key, v), was) in objects.into_iter().zip(before) {
            let change = if dry_run {
                if was.is_some() { Change::Configured } else { Change::Created }
            } else {
                let api = api_of(client, key.kind, Some(&key.namespace));
                let what = format!("{} {}/{}", key.kind.qualified(), key.namespace, key.name);
                let now = api
                    .patch(&key.name, &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(&v))
                    .await
                    .map_err(|e| explain(e, &format!("{what} (the objects before it were applied)")))?;
                match was {
                    None => Change::Created,
                    Some(rv) if now.metadata.resource_version.as_ref() == Some(&rv) => Change::Unchanged,
                    Some(_) => Change::Configured,
                }
            };
            results.push(ChangeResult { key, change });
        }
        Ok(ApplyResponse { results })
    }

    /// Delete resources: all of them, or (when one is missing and `ignore_missing` is not
    /// set) none.
    pub async fn delete(&self, keys: Vec<Key>, ignore_missing: bool) -> Result<ApplyResponse> {
        let client = match self {
            ConfigStore::Meshd(client) => {
                return client.post(DELETE_PATH, &DeleteRequest { keys, ignore_missing }).await;
            }
            ConfigStore::Kube(client) => client,
        };
        let mut present = Vec::new();
        for key in keys {
            let api = api_of(client, key.kind, Some(&key.namespace));
            let what = format!("{} {}/{}", key.kind.qualified(), key.namespace, key.name);
            match api.get_opt(&key.name).await.map_err(|e| explain(e, &what))? {
                Some(_) => present.push(key),
                None if ignore_missing => {}
                None => {
                    return Err(CliError::failed(format!(
                        "{what} not found; nothing was deleted (--ignore-not-found to skip missing ones)"
                    )));
                }
            }
        }
        let mut results = Vec::new();
        for key in present {
            let api = api_of(client, key.kind, Some(&key.namespace));
            let what = format!("{} {}/{}", key.kind.qualified(), key.namespace, key.name);
            match api.delete(&key.name, &DeleteParams::default()).await {
                Ok(_) => results.push(ChangeResult { key, change: Change::Deleted }),
                Err(kube::Error::Api(s)) if s.code == 404 => {}
                Err(e) => return Err(explain(e, &what)),
            }
        }
        Ok(ApplyResponse { results })
    }

    /// The meshd client, for what only meshd knows (proxies' sync state).
    pub fn meshd(&self) -> Option<&MeshdClient> {
        match self {
            ConfigStore::Meshd(c) => Some(c),
            ConfigStore::Kube(_) => None,
        }
    }
}
