//! meshd on Kubernetes: the API server is the config store and the workload registry.
//!
//! One watcher per kind (Services, the mesh's CRDs, Pods, EndpointSlices and Namespaces) keeps a
//! full copy, relisting after a `410 Gone` or any broken watch. Every change (debounced) becomes
//! one published world: config validated with the same code `mesh apply` uses, and the ready
//! Pods as workloads, so both platforms share everything past this module. Namespaces get the
//! mesh root as the `mesh-ca-root-cert` ConfigMap (Istio's `istio-ca-root-cert`), which proxies
//! use to check meshd's certificate on the discovery port; proxies prove who they are with their
//! pod's projected service-account token, checked by a TokenReview.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams, TypeMeta};
use kube::runtime::{WatchStreamExt, watcher};
use mesh_api::credential::{Credential, Credentials};
use mesh_api::protocol::{InboundPort, Workload};
use mesh_api::resource::{Parsed, parse_document};
use serde_json::Value;
use tokio::sync::{mpsc, watch};
use tracing::{debug, info, warn};

use crate::ca::Ca;
use crate::state::State;
use crate::store::Resources;

/// The ConfigMap meshd writes the mesh root into, in every namespace.
pub const ROOT_CERT_CONFIGMAP: &str = "mesh-ca-root-cert";
/// Its key (and the file name where injected pods mount it).
pub const ROOT_CERT_KEY: &str = "root-cert.pem";
/// The audience of the projected token injected proxies present.
pub const TOKEN_AUDIENCE: &str = "mesh";

/// The API of a kind, named by group, version, kind and plural (no discovery round trip).
pub fn api_resource(group: &str, version: &str, kind: &str, plural: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural)
}

/// What meshd does with the objects of one watched kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Services and the mesh's CRDs: validated into resources.
    Config,
    /// Workloads, once an EndpointSlice says they are ready.
    Pods,
    /// Which pods are ready, and on which ports.
    EndpointSlices,
    /// Where the root-certificate ConfigMap goes.
    Namespaces,
    /// TLS credentials for Gateway servers and DestinationRules (`credentialName`).
    Secrets,
}

#[derive(Debug, Clone)]
pub struct Watched {
    pub api: ApiResource,
    pub role: Role,
    /// A field selector narrowing what is listed and watched.
    pub fields: Option<&'static str>,
    /// A kind the cluster may not serve (the Gateway API, whose CRDs users install): until
    /// it does, it counts as listed and empty.
    pub optional: bool,
}

fn config_kind(group: &str, version: &str, kind: &str, plural: &str) -> Watched {
    Watched { api: api_resource(group, version, kind, plural), role: Role::Config, fields: None, optional: false }
}

fn gateway_api_kind(version: &str, kind: &str, plural: &str) -> Watched {
    Watched { optional: true, ..config_kind(mesh_api::gateway_api::GROUP, version, kind, plural) }
}

/// Secrets that can hold a credential: not service-account tokens nor Helm's release records
/// (Istio's secret controller leaves out the same).
const CREDENTIAL_SECRETS: &str = "type!=kubernetes.io/service-account-token,type!=helm.sh/release.v1";

/// Every kind meshd watches on a cluster, config at the storage versions.
pub fn default_kinds() -> Vec<Watched> {
    vec![
        config_kind("", "v1", "Service", "services"),
        config_kind("networking.istio.io", "v1", "VirtualService", "virtualservices"),
        config_kind("networking.istio.io", "v1", "DestinationRule", "destinationrules"),
        config_kind("networking.istio.io", "v1", "ServiceEntry", "serviceentries"),
        config_kind("networking.istio.io", "v1", "Gateway", "gateways"),
        config_kind("networking.istio.io", "v1", "Sidecar", "sidecars"),
        config_kind("networking.istio.io", "v1", "WorkloadEntry", "workloadentries"),
        config_kind("networking.istio.io", "v1", "WorkloadGroup", "workloadgroups"),
        config_kind("networking.istio.io", "v1beta1", "ProxyConfig", "proxyconfigs"),
        config_kind("security.istio.io", "v1", "PeerAuthentication", "peerauthentications"),
        config_kind("security.istio.io", "v1", "AuthorizationPolicy", "authorizationpolicies"),
        config_kind("security.istio.io", "v1", "RequestAuthentication", "requestauthentications"),
        config_kind("telemetry.istio.io", "v1", "Telemetry", "telemetries"),
        config_kind("policy.mesh.io", "v1alpha1", "LocalRateLimit", "localratelimits"),
        config_kind("rollouts.mesh.io", "v1alpha1", "Rollout", "rollouts"),
        gateway_api_kind("v1", "GatewayClass", "gatewayclasses"),
        gateway_api_kind("v1", "Gateway", "gateways"),
        gateway_api_kind("v1", "HTTPRoute", "httproutes"),
        gateway_api_kind("v1", "GRPCRoute", "grpcroutes"),
        gateway_api_kind("v1alpha2", "TCPRoute", "tcproutes"),
        gateway_api_kind("v1alpha2", "TLSRoute", "tlsroutes"),
        gateway_api_kind("v1beta1", "ReferenceGrant", "referencegrants"),
        Watched { api: api_resource("", "v1", "Pod", "pods"), role: Role::Pods, fields: None, optional: false },
        Watched {
            api: api_resource("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices"),
            role: Role::EndpointSlices,
            fields: None,
            optional: false,
        },
        Watched {
            api: api_resource("", "v1", "Namespace", "namespaces"),
            role: Role::Namespaces,
            fields: None,
            optional: false,
        },
        Watched {
            api: api_resource("", "v1", "Secret", "secrets"),
            role: Role::Secrets,
            fields: Some(CREDENTIAL_SECRETS),
            optional: false,
        },
    ]
}

/// (kind index, namespace/name) -> the object as JSON.
type Objects = BTreeMap<(usize, String), Value>;

enum Change {
    /// A full relist of one kind.
    Replace(usize, Objects),
    Apply(usize, String, Value),
    Delete(usize, String),
}

fn key(o: &DynamicObject) -> String {
    format!("{}/{}", o.metadata.namespace.as_deref().unwrap_or(""), o.metadata.name.as_deref().unwrap_or(""))
}

/// An object as the validator and the analyzers read it (also `mesh` on a cluster).
pub fn to_json(ar: &ApiResource, mut o: DynamicObject) -> Value {
    // List items carry no apiVersion/kind; the validator needs them. Field-manager records are
    // most of a Pod's size and nothing here reads them.
    o.types = Some(TypeMeta { api_version: ar.api_version.clone(), kind: ar.kind.clone() });
    o.metadata.managed_fields = None;
    serde_json::to_value(&o).unwrap_or(Value::Null)
}

/// Watch one kind forever, reporting full relists and single changes.
async fn watch_kind(client: kube::Client, index: usize, w: Watched, tx: mpsc::Sender<Change>) {
    let ar = w.api.clone();
    let mut announced_empty = false;
    let api: Api<DynamicObject> = Api::all_with(client, &ar);
    let mut config = watcher::Config::default();
    if let Some(fields) = w.fields {
        config = config.fields(fields);
    }
    let mut stream = watcher(api, config).default_backoff().boxed();
    let mut buffer: Option<Objects> = None;
    while let Some(event) = stream.next().await {
        let change = match event {
            Ok(watcher::Event::Init) => {
                buffer = Some(Objects::new());
                continue;
            }
            Ok(watcher::Event::InitApply(o)) => {
                let k = key(&o);
                buffer.get_or_insert_with(Objects::new).insert((index, k), to_json(&ar, o));
                continue;
            }
            Ok(watcher::Event::InitDone) => Change::Replace(index, buffer.take().unwrap_or_default()),
            Ok(watcher::Event::Apply(o)) => Change::Apply(index, key(&o), to_json(&ar, o)),
            Ok(watcher::Event::Delete(o)) => Change::Delete(index, key(&o)),
            Err(e) => {
                // A kind the cluster does not serve (its CRD is not installed) is empty until
                // it does; the watcher keeps trying and lists it once it appears.
                let unserved = matches!(&e, watcher::Error::InitialListFailed(kube::Error::Api(s)) if s.code == 404);
                if w.optional && unserved && !announced_empty {
                    announced_empty = true;
                    info!(kind = %ar.kind, "not served by this cluster (CRD not installed); treated as empty");
                    Change::Replace(index, Objects::new())
                } else {
                    // 410 Gone and broken watches land here; the watcher relists on its own.
                    debug!(kind = %ar.kind, error = %e, "watch interrupted; relisting");
                    continue;
                }
            }
        };
        if tx.send(change).await.is_err() {
            return;
        }
    }
}

/// The credentials in Secrets, as Istio reads them (`tls.crt`/`tls.key`/`ca.crt`, or
/// `cert`/`key`/`cacert`); a Secret with none of those keys is not a credential, one whose
/// contents do not check out (not PEM, expired, a key without its certificate) is left out
/// with a warning naming it, and the server or rule that names it reports it missing.
fn credentials_of<'a>(secrets: impl Iterator<Item = &'a Value>) -> Credentials {
    use base64::Engine as _;
    const KEYS: [&str; 6] = ["tls.crt", "tls.key", "ca.crt", "cert", "key", "cacert"];
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    let mut out = Credentials::new();
    for s in secrets {
        let (Some(ns), Some(name)) = (str_at(s, "/metadata/namespace"), str_at(s, "/metadata/name")) else { continue };
        let Some(data) = s.get("data").and_then(Value::as_object) else { continue };
        let data: BTreeMap<String, Vec<u8>> = data
            .iter()
            .filter(|(k, _)| KEYS.contains(&k.as_str()))
            .filter_map(|(k, v)| Some((k.clone(), base64::engine::general_purpose::STANDARD.decode(v.as_str()?).ok()?)))
            .collect();
        if data.is_empty() {
            continue;
        }
        match Credential::from_secret(ns, name, &data).and_then(|c| c.check(now).map(|_| c)) {
            Ok(c) => {
                out.insert((ns.to_string(), name.to_string()), c);
            }
            Err(e) => warn!(secret = %format!("{ns}/{name}"), error = %e, "Secret left out as a TLS credential"),
        }
    }
    out
}

/// The resources meshd serves from the config kinds; invalid objects are skipped with a
/// warning naming them (the validating webhook should have refused them).
fn resources_of<'a>(objects: impl Iterator<Item = (&'a String, &'a Value)>) -> Resources {
    let mut out = Resources::new();
    for (name, value) in objects {
        let ns = name.split('/').next().filter(|n| !n.is_empty()).unwrap_or("default");
        match parse_document(value.clone(), ns, 0) {
            Ok(Parsed::Supported(r)) => {
                out.insert(r.key(), r);
            }
            Ok(_) => {}
            Err(e) => warn!(object = %name, error = %e, "ignoring an invalid object from the API server"),
        }
    }
    out
}

fn str_at<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
    v.pointer(pointer).and_then(Value::as_str)
}

/// The TCP entries of a `ports` list: the number under `number` and the entry's name.
fn tcp_ports<'a>(ports: Option<&'a Value>, number: &'a str) -> impl Iterator<Item = (u16, Option<&'a str>)> {
    ports
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|p| p.get("protocol").and_then(Value::as_str).is_none_or(|p| p == "TCP"))
        .filter_map(move |p| {
            let n = p.get(number).and_then(Value::as_u64).and_then(|n| u16::try_from(n).ok())?;
            Some((n, p.get("name").and_then(Value::as_str)))
        })
}

/// The Secret in meshd's namespace where each meshd pod publishes its admin token, under its
/// pod name, so that `mesh` on a cluster can call meshd's admin API (root rotation, renewals,
/// proxy tokens) through a port-forward. Reading it takes RBAC on Secrets in meshd's
/// namespace, like reading istiod's CA Secret.
pub const ADMIN_TOKENS_SECRET: &str = "meshd-admin-tokens";

/// Publish this pod's admin token (server-side apply, a field manager per pod so each owns
/// its key), retrying until the API server takes it.
pub async fn publish_admin_token(client: kube::Client, namespace: String, pod: String, token: String) {
    use base64::Engine;
    let api: Api<DynamicObject> =
        Api::namespaced_with(client, &namespace, &api_resource("", "v1", "Secret", "secrets"));
    let body = serde_json::json!({
        "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
        "metadata": {"name": ADMIN_TOKENS_SECRET, "namespace": namespace},
        "data": {pod.as_str(): base64::engine::general_purpose::STANDARD.encode(token.trim())},
    });
    let params = PatchParams::apply(&format!("meshd-{pod}")).force();
    let mut delay = Duration::from_secs(1);
    loop {
        match api.patch(ADMIN_TOKENS_SECRET, &params, &Patch::Apply(&body)).await {
            Ok(_) => {
                info!(secret = ADMIN_TOKENS_SECRET, pod, "published the admin token for `mesh` on the cluster");
                return;
            }
            Err(e) => {
                warn!(error = %e, secret = ADMIN_TOKENS_SECRET, retry_in = ?delay, "cannot publish the admin token");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(30));
            }
        }
    }
}

/// The Secret holding the mesh CA's roots and keys on a cluster (`ca.json`), shared by every
/// meshd replica, as istiod's `istio-ca-secret`.
pub const CA_SECRET: &str = "mesh-ca";
/// A user's own CA in Istio's plug-in format (`ca-cert.pem`, `ca-key.pem`, and for an
/// intermediate `root-cert.pem` and `cert-chain.pem`).
pub const PLUGIN_CA_SECRET: &str = "cacerts";
/// How often a replica looks at the CA Secret for another replica's rotation step.
const CA_SYNC_INTERVAL: Duration = Duration::from_secs(5);

/// Where the CA came from on a cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaSource {
    /// `cacerts`: the user's CA; meshd never writes it.
    PlugIn,
    /// `mesh-ca`: made by the first replica, shared by all.
    Shared,
}

fn secret_data<'a>(s: &'a k8s_openapi::api::core::v1::Secret, key: &str) -> Option<&'a [u8]> {
    s.data.as_ref()?.get(key).map(|b| b.0.as_slice())
}

/// Before the CA opens on a cluster: make `path` hold the CA every replica uses. The plug-in
/// `cacerts` Secret when there is one; else the shared `mesh-ca` Secret; else this replica
/// proposes a new root by creating `mesh-ca`, and when another replica created it first
/// (409), takes theirs. Nothing is kept only in the pod.
pub async fn bootstrap_ca(
    client: &kube::Client,
    namespace: &str,
    path: &std::path::Path,
    trust_domain: &str,
) -> anyhow::Result<CaSource> {
    use anyhow::Context;
    use k8s_openapi::api::core::v1::Secret;
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let read = |name: &'static str| {
        let api = api.clone();
        async move { api.get_opt(name).await.with_context(|| format!("cannot read the Secret {namespace}/{name}")) }
    };
    if let Some(plugin) = read(PLUGIN_CA_SECRET).await? {
        let text = |key: &str| secret_data(&plugin, key).map(|b| String::from_utf8_lossy(b).into_owned());
        let (Some(cert), Some(key)) = (text("ca-cert.pem"), text("ca-key.pem")) else {
            anyhow::bail!(
                "the Secret {namespace}/{PLUGIN_CA_SECRET} needs ca-cert.pem and ca-key.pem (Istio's plug-in CA format)"
            );
        };
        let (chain, root) = (text("cert-chain.pem"), text("root-cert.pem"));
        let plug_in = crate::ca::PlugIn {
            cert_pem: &cert,
            key_pem: &key,
            chain_pem: chain.as_deref(),
            root_pem: root.as_deref(),
        };
        let info = Ca::import(path, &plug_in)
            .with_context(|| format!("the plug-in CA in the Secret {namespace}/{PLUGIN_CA_SECRET}"))?;
        info!(subject = %info.subject, "using the plug-in CA from the cacerts Secret");
        return Ok(CaSource::PlugIn);
    }
    let shared = match read(CA_SECRET).await? {
        Some(s) => s,
        None => {
            let proposed = Ca::new_state(trust_domain)?;
            let secret: Secret = serde_json::from_value(serde_json::json!({
                "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                "metadata": {"name": CA_SECRET, "namespace": namespace, "labels": {"app.kubernetes.io/name": "mesh"}},
                "data": {"ca.json": base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &proposed)},
            }))?;
            match api.create(&PostParams::default(), &secret).await {
                Ok(s) => {
                    info!("made the mesh root and stored it in the Secret {namespace}/{CA_SECRET}");
                    s
                }
                Err(kube::Error::Api(s)) if s.code == 409 => {
                    info!("another meshd made the mesh root first; using it");
                    read(CA_SECRET).await?.context("the CA Secret vanished after a conflict")?
                }
                Err(e) => return Err(e).with_context(|| format!("cannot create the Secret {namespace}/{CA_SECRET}")),
            }
        }
    };
    let state = secret_data(&shared, "ca.json")
        .with_context(|| format!("the Secret {namespace}/{CA_SECRET} has no ca.json"))?;
    Ca::write_state(path, state).with_context(|| format!("the CA in the Secret {namespace}/{CA_SECRET}"))?;
    Ok(CaSource::Shared)
}

/// Keep this replica's CA and the shared Secret in step: a rotation step made here is written
/// to the Secret (replace, with the resourceVersion read, so a concurrent write is noticed);
/// one made by another replica is read from it.
pub async fn follow_ca_state(client: kube::Client, namespace: String, ca: Arc<Ca>) {
    use k8s_openapi::api::core::v1::Secret;
    let api: Api<Secret> = Api::namespaced(client, &namespace);
    let mut changes = ca.subscribe_changes();
    loop {
        tokio::select! {
            r = changes.changed() => {
                if r.is_err() {
                    return;
                }
                let state = ca.state();
                let written = async {
                    let mut s = api.get(CA_SECRET).await?;
                    s.data.get_or_insert_with(Default::default).insert("ca.json".into(), k8s_openapi::ByteString(state));
                    api.replace(CA_SECRET, &PostParams::default(), &s).await
                };
                match written.await {
                    Ok(_) => info!("wrote the CA's new state to the Secret {CA_SECRET}"),
                    Err(e) => warn!(error = %e, "cannot write the CA state to its Secret; the next look reconciles"),
                }
            }
            _ = tokio::time::sleep(CA_SYNC_INTERVAL) => {
                let Ok(Some(s)) = api.get_opt(CA_SECRET).await else { continue };
                if let Some(state) = secret_data(&s, "ca.json") {
                    match ca.replace_state(state) {
                        Ok(true) => info!("took another meshd's CA state from the Secret {CA_SECRET}"),
                        Ok(false) => {}
                        Err(e) => warn!(error = %e, "the CA Secret holds an unusable state; keeping ours"),
                    }
                }
            }
        }
    }
}

/// Sleep `after` when a step failed (then the caller retries), else never wake.
pub async fn retry_if(failed: bool, after: Duration) {
    if failed { tokio::time::sleep(after).await } else { std::future::pending().await }
}

/// The workloads behind the Services: running pods with an IP that an EndpointSlice lists as
/// ready (kube-proxy's rule), on the ports their slices and containers name. A pod with the
/// `istio-proxy` container is reached through its proxy (mTLS by policy); one without is
/// reached in plain text.
fn workloads_of<'a>(
    pods: impl Iterator<Item = &'a Value>,
    slices: impl Iterator<Item = &'a Value>,
) -> BTreeMap<String, Workload> {
    // (namespace, pod name) and (namespace, IP) -> the ports ready slices list them on.
    let mut by_pod: HashMap<(String, String), BTreeSet<u16>> = HashMap::new();
    let mut by_ip: HashMap<(String, IpAddr), BTreeSet<u16>> = HashMap::new();
    for slice in slices {
        let ns = str_at(slice, "/metadata/namespace").unwrap_or("default");
        let ports: Vec<u16> = tcp_ports(slice.get("ports"), "port").map(|(n, _)| n).collect();
        for ep in slice.get("endpoints").and_then(Value::as_array).into_iter().flatten() {
            if ep.pointer("/conditions/ready").and_then(Value::as_bool) == Some(false) {
                continue;
            }
            if str_at(ep, "/targetRef/kind") == Some("Pod")
                && let Some(name) = str_at(ep, "/targetRef/name")
            {
                let pod_ns = str_at(ep, "/targetRef/namespace").unwrap_or(ns);
                by_pod.entry((pod_ns.to_string(), name.to_string())).or_default().extend(&ports);
            }
            for ip in ep.get("addresses").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str) {
                if let Ok(ip) = ip.parse() {
                    by_ip.entry((ns.to_string(), ip)).or_default().extend(&ports);
                }
            }
        }
    }
    let mut out = BTreeMap::new();
    for pod in pods {
        let (Some(name), Some(ns)) = (str_at(pod, "/metadata/name"), str_at(pod, "/metadata/namespace")) else {
            continue;
        };
        let Some(ip) = str_at(pod, "/status/podIP").and_then(|ip| ip.parse::<IpAddr>().ok()) else { continue };
        if str_at(pod, "/status/phase") != Some("Running")
            || pod.pointer("/metadata/deletionTimestamp").is_some_and(|d| !d.is_null())
            || pod.pointer("/spec/hostNetwork").and_then(Value::as_bool) == Some(true)
        {
            continue;
        }
        let ready = by_pod.get(&(ns.to_string(), name.to_string())).or_else(|| by_ip.get(&(ns.to_string(), ip)));
        let Some(slice_ports) = ready else { continue };
        let containers: Vec<&Value> =
            pod.pointer("/spec/containers").and_then(Value::as_array).into_iter().flatten().collect();
        let sidecar = containers.iter().any(|c| c.get("name").and_then(Value::as_str) == Some(crate::inject::PROXY));
        // port -> its container port name, if any.
        let mut ports: BTreeMap<u16, Option<String>> = slice_ports.iter().map(|p| (*p, None)).collect();
        for c in containers.iter().filter(|c| c.get("name").and_then(Value::as_str) != Some(crate::inject::PROXY)) {
            for (port, name) in tcp_ports(c.get("ports"), "containerPort") {
                let slot = ports.entry(port).or_default();
                if slot.is_none() {
                    *slot = name.map(String::from);
                }
            }
        }
        let labels = pod
            .pointer("/metadata/labels")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
            .collect();
        let workload = Workload {
            name: name.to_string(),
            namespace: ns.to_string(),
            service_account: str_at(pod, "/spec/serviceAccountName").unwrap_or("default").to_string(),
            labels,
            ports: ports
                .into_iter()
                .map(|(port, name)| InboundPort { port, listen: SocketAddr::new(ip, port), name })
                .collect(),
            admin: None,
            outbound: None,
            pid: 0,
            proxy_version: String::new(),
            without_proxy: !sidecar,
            gateway_ports: Vec::new(),
        };
        out.insert(format!("{ns}/{name}"), workload);
    }
    out
}

/// Each namespace's labels (Gateway API routes may be taken by namespace selector).
fn namespace_labels_of<'a>(objects: impl Iterator<Item = &'a Value>) -> crate::state::NamespaceLabels {
    objects
        .filter_map(|n| {
            let name = str_at(n, "/metadata/name")?.to_string();
            let labels = n
                .pointer("/metadata/labels")
                .and_then(|l| l.as_object())
                .map(|l| l.iter().filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string()))).collect())
                .unwrap_or_default();
            Some((name, labels))
        })
        .collect()
}

/// Namespaces that exist and are not being deleted.
fn namespaces_of<'a>(objects: impl Iterator<Item = &'a Value>) -> BTreeSet<String> {
    objects
        .filter(|n| str_at(n, "/status/phase") != Some("Terminating"))
        .filter_map(|n| str_at(n, "/metadata/name").map(String::from))
        .collect()
}

/// Keep meshd's world equal to what the API server holds, until the client's streams end.
/// The namespaces seen go to `namespaces` (for the root-certificate publisher).
pub async fn watch_cluster(
    client: kube::Client,
    state: Arc<State>,
    kinds: Vec<Watched>,
    namespaces: watch::Sender<BTreeSet<String>>,
) {
    let (tx, mut rx) = mpsc::channel(256);
    let synced_needed = kinds.len();
    let roles: Vec<Role> = kinds.iter().map(|w| w.role).collect();
    for (i, w) in kinds.into_iter().enumerate() {
        tokio::spawn(watch_kind(client.clone(), i, w, tx.clone()));
    }
    drop(tx);
    let mut objects = Objects::new();
    let mut listed = BTreeSet::new();
    while let Some(first) = rx.recv().await {
        let mut apply = |c: Change, listed: &mut BTreeSet<usize>| match c {
            Change::Replace(i, all) => {
                listed.insert(i);
                objects.retain(|(k, _), _| *k != i);
                objects.extend(all);
            }
            Change::Apply(i, k, v) => {
                objects.insert((i, k), v);
            }
            Change::Delete(i, k) => {
                objects.remove(&(i, k));
            }
        };
        apply(first, &mut listed);
        // A burst of events becomes one publish.
        let deadline = tokio::time::Instant::now() + Duration::from_millis(50);
        while let Ok(Some(c)) = tokio::time::timeout_at(deadline, rx.recv()).await {
            apply(c, &mut listed);
        }
        // Publish only once every kind has been listed: a partial world would push proxies a
        // config without, say, the DestinationRules, or a Service without its endpoints.
        if listed.len() < synced_needed {
            continue;
        }
        let roles = &roles;
        let of = |role: Role| objects.iter().filter(move |((i, _), _)| roles.get(*i) == Some(&role));
        let resources = resources_of(of(Role::Config).map(|((_, k), v)| (k, v)));
        let workloads = workloads_of(of(Role::Pods).map(|(_, v)| v), of(Role::EndpointSlices).map(|(_, v)| v));
        info!(resources = resources.len(), workloads = workloads.len(), "world from the Kubernetes API");
        state.replace_credentials(credentials_of(of(Role::Secrets).map(|(_, v)| v)));
        state.replace_platform(resources, workloads);
        state.replace_namespace_labels(namespace_labels_of(of(Role::Namespaces).map(|(_, v)| v)));
        let seen = namespaces_of(of(Role::Namespaces).map(|(_, v)| v));
        namespaces.send_if_modified(|n| {
            let changed = *n != seen;
            *n = seen;
            changed
        });
    }
}

/// Write the mesh root into `mesh-ca-root-cert` in every namespace (server-side apply, field
/// manager `meshd`), again whenever the trust bundle changes; failures are retried.
pub async fn publish_root_cert(
    client: kube::Client,
    ca: Arc<Ca>,
    mut namespaces: watch::Receiver<BTreeSet<String>>,
    mut leader: watch::Receiver<bool>,
) {
    let mut ca_rx = ca.subscribe();
    // namespace -> bundle version written there.
    let mut written: HashMap<String, String> = HashMap::new();
    loop {
        // Only the leader writes; a new leader writes everything once.
        if !*leader.borrow_and_update() {
            written.clear();
            if !crate::leader::until_leading(&mut leader).await {
                return;
            }
        }
        let view = ca_rx.borrow_and_update().clone();
        let wanted = namespaces.borrow_and_update().clone();
        written.retain(|ns, _| wanted.contains(ns));
        let mut failed = false;
        for ns in &wanted {
            if written.get(ns) == Some(&view.bundle_version) {
                continue;
            }
            let api: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
            let cm = serde_json::json!({
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": ROOT_CERT_CONFIGMAP, "namespace": ns,
                             "labels": {"app.kubernetes.io/managed-by": "meshd", "istio.io/config": "true"}},
                "data": {ROOT_CERT_KEY: view.bundle_pem},
            });
            match api.patch(ROOT_CERT_CONFIGMAP, &PatchParams::apply("meshd").force(), &Patch::Apply(&cm)).await {
                Ok(_) => {
                    debug!(namespace = %ns, "wrote the mesh root");
                    written.insert(ns.clone(), view.bundle_version.clone());
                }
                Err(e) => {
                    warn!(namespace = %ns, error = %e, "cannot write the {ROOT_CERT_CONFIGMAP} ConfigMap; retrying");
                    failed = true;
                }
            }
        }
        tokio::select! {
            r = namespaces.changed() => if r.is_err() { return },
            r = ca_rx.changed() => if r.is_err() { return },
            r = leader.changed() => if r.is_err() { return },
            _ = retry_if(failed, Duration::from_secs(5)) => {}
        }
    }
}

/// Who a proxy's service-account token says it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub namespace: String,
    pub service_account: String,
    /// The pod the token is bound to, when the API server says.
    pub pod: Option<String>,
}

/// How long a proxy waits for meshd's TokenReview before it is told to try again.
const REVIEW_TIMEOUT: Duration = Duration::from_secs(10);

/// Ask the API server who `token` belongs to (a TokenReview for the mesh audience). Errors say
/// why the token is not accepted.
pub async fn review_token(client: &kube::Client, token: &str) -> Result<Caller, String> {
    let review = TokenReview {
        spec: TokenReviewSpec { token: Some(token.to_string()), audiences: Some(vec![TOKEN_AUDIENCE.to_string()]) },
        ..Default::default()
    };
    let api: Api<TokenReview> = Api::all(client.clone());
    let answer = tokio::time::timeout(REVIEW_TIMEOUT, api.create(&PostParams::default(), &review))
        .await
        .map_err(|_| format!("the Kubernetes API did not answer the TokenReview within {REVIEW_TIMEOUT:?}"))?
        .map_err(|e| format!("cannot check the token with the Kubernetes API (TokenReview): {e}"))?;
    let status = answer.status.unwrap_or_default();
    if status.authenticated != Some(true) {
        return Err(format!(
            "the Kubernetes API did not accept the token: {}",
            status.error.as_deref().filter(|e| !e.is_empty()).unwrap_or("not authenticated")
        ));
    }
    if let Some(aud) = &status.audiences
        && !aud.iter().any(|a| a == TOKEN_AUDIENCE)
    {
        return Err(format!("the token is not for audience {TOKEN_AUDIENCE:?} (it is for {aud:?})"));
    }
    let user = status.user.unwrap_or_default();
    let username = user.username.unwrap_or_default();
    let parts: Vec<&str> = username.split(':').collect();
    let ["system", "serviceaccount", namespace, service_account] = parts.as_slice() else {
        return Err(format!("the token belongs to {username:?}, not to a service account"));
    };
    let pod = user
        .extra
        .as_ref()
        .and_then(|e| e.get("authentication.kubernetes.io/pod-name"))
        .and_then(|v| v.first())
        .cloned();
    Ok(Caller { namespace: namespace.to_string(), service_account: service_account.to_string(), pod })
}

impl Caller {
    /// Whether a proxy announcing `w` may be served to this caller: the same namespace and
    /// service account, and the same pod when the token is bound to one.
    pub fn check(&self, w: &Workload) -> Result<(), String> {
        if w.namespace == self.namespace
            && w.service_account == self.service_account
            && self.pod.as_deref().is_none_or(|p| p == w.name)
        {
            return Ok(());
        }
        Err(format!(
            "this proxy's token is for service account {}/{}{}, but it says it is workload {}/{} running as {}; a proxy gets config and certificates only for its own pod",
            self.namespace,
            self.service_account,
            self.pod.as_deref().map(|p| format!(" in pod {p}")).unwrap_or_default(),
            w.namespace,
            w.name,
            w.service_account
        ))
    }
}

/// Now, as Kubernetes writes times (RFC 3339, UTC, seconds).
pub(crate) fn rfc3339_now() -> String {
    time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".into())
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use bytes::Bytes;
    use http_body_util::{BodyExt, Full, StreamBody};
    use hyper::body::Frame;
    use hyper::service::service_fn;
    use hyper_util::rt::TokioIo;
    use serde_json::json;

    use super::*;

    type Body = http_body_util::combinators::BoxBody<Bytes, Infallible>;

    fn vs(name: &str, rv: &str) -> serde_json::Value {
        json!({"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
               "metadata": {"name": name, "namespace": "default", "resourceVersion": rv},
               "spec": {"hosts": ["reviews"], "http": [{"route": [{"destination": {"host": "reviews"}}]}]}})
    }

    fn list(kind: &str, rv: &str, items: Vec<serde_json::Value>) -> Body {
        let body = json!({"apiVersion": "v1", "kind": format!("{kind}List"), "metadata": {"resourceVersion": rv}, "items": items});
        Full::new(Bytes::from(body.to_string())).boxed()
    }

    /// A watch response: these events, then (when `hang`) an open stream that never ends.
    fn events(lines: Vec<serde_json::Value>, hang: bool) -> Body {
        let frames: Vec<Result<Frame<Bytes>, Infallible>> =
            lines.into_iter().map(|l| Ok(Frame::data(Bytes::from(format!("{l}\n"))))).collect();
        let head = futures_util::stream::iter(frames);
        if hang {
            BodyExt::boxed(StreamBody::new(head.chain(futures_util::stream::pending())))
        } else {
            BodyExt::boxed(StreamBody::new(head))
        }
    }

    /// The mock API server: VirtualServices are listed (rv 10: vs-a), watched (vs-b added,
    /// then `410 Gone`), listed again (rv 20: vs-b and vs-c; vs-a was deleted meanwhile) and
    /// watched quietly; Services hold `reviews`.
    async fn mock_api(vs_lists: Arc<AtomicUsize>) -> std::net::SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { return };
                let vs_lists = vs_lists.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                        let vs_lists = vs_lists.clone();
                        async move {
                            let path = req.uri().path().to_string();
                            let query = req.uri().query().unwrap_or("").to_string();
                            let watching = query.contains("watch=true");
                            let body = match (path.as_str(), watching) {
                                ("/apis/networking.istio.io/v1/virtualservices", false) => {
                                    if vs_lists.fetch_add(1, Ordering::SeqCst) == 0 {
                                        list("VirtualService", "10", vec![vs("vs-a", "10")])
                                    } else {
                                        list("VirtualService", "20", vec![vs("vs-b", "11"), vs("vs-c", "20")])
                                    }
                                }
                                ("/apis/networking.istio.io/v1/virtualservices", true)
                                    if query.contains("resourceVersion=10") =>
                                {
                                    events(
                                        vec![
                                            json!({"type": "ADDED", "object": vs("vs-b", "11")}),
                                            json!({"type": "ERROR", "object": {"kind": "Status", "apiVersion": "v1", "status": "Failure",
                                            "message": "too old resource version", "reason": "Expired", "code": 410}}),
                                        ],
                                        false,
                                    )
                                }
                                ("/api/v1/services", false) => list(
                                    "Service",
                                    "5",
                                    vec![json!({"apiVersion": "v1", "kind": "Service",
                                        "metadata": {"name": "reviews", "namespace": "default", "resourceVersion": "5"},
                                        "spec": {"selector": {"app": "reviews"}, "ports": [{"name": "http", "port": 9080}]}})],
                                ),
                                // The Gateway API's CRDs are not installed here.
                                (p, _) if p.starts_with("/apis/gateway.networking.k8s.io/") => {
                                    let status = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                                        "message": "the server could not find the requested resource", "reason": "NotFound", "code": 404});
                                    let mut r =
                                        hyper::Response::new(Full::new(Bytes::from(status.to_string())).boxed());
                                    *r.status_mut() = hyper::StatusCode::NOT_FOUND;
                                    return Ok::<_, Infallible>(r);
                                }
                                (_, true) => events(Vec::new(), true),
                                _ => list("Unknown", "1", Vec::new()),
                            };
                            Ok::<_, Infallible>(hyper::Response::new(body))
                        }
                    });
                    let _ =
                        hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), svc).await;
                });
            }
        });
        addr
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn watches_feed_the_world_and_a_410_relists() {
        let vs_lists = Arc::new(AtomicUsize::new(0));
        let addr = mock_api(vs_lists.clone()).await;
        let config = kube::Config::new(format!("http://{addr}").parse().expect("url"));
        let client = kube::Client::try_from(config).expect("client");
        let dir = tempfile::tempdir().expect("tempdir");
        let state = Arc::new(State::new(
            "meshd-test".into(),
            crate::store::Store::new(dir.path().join("store.json")),
            Resources::new(),
            None,
            Vec::new(),
        ));
        let kinds = vec![
            config_kind("", "v1", "Service", "services"),
            config_kind("networking.istio.io", "v1", "VirtualService", "virtualservices"),
            // Not served by this API server: must not hold the world back.
            gateway_api_kind("v1", "HTTPRoute", "httproutes"),
        ];
        state.await_platform();
        assert!(!state.ready(), "not ready before the first full list");
        tokio::spawn(watch_cluster(client, state.clone(), kinds, watch::channel(BTreeSet::new()).0));
        let names = || {
            let w = state.world();
            w.resources.keys().map(|k| format!("{} {}/{}", k.kind, k.namespace, k.name)).collect::<Vec<_>>()
        };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let n = names();
            if n == ["Service default/reviews", "VirtualService default/vs-b", "VirtualService default/vs-c"] {
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "world never matched the API server: {n:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(vs_lists.load(Ordering::SeqCst) >= 2, "the 410 made the watcher list again");
        assert!(state.ready());
        assert!(!dir.path().join("store.json").exists(), "on Kubernetes the API server is the store");
    }

    fn pod(name: &str, ip: &str, phase: &str, containers: Value) -> Value {
        json!({"metadata": {"name": name, "namespace": "default", "labels": {"app": "reviews", "version": name}},
               "spec": {"serviceAccountName": "bookinfo-reviews", "containers": containers},
               "status": {"phase": phase, "podIP": ip}})
    }

    #[test]
    fn ready_pods_become_workloads_with_their_slice_ports() {
        let app = json!([{"name": "app", "ports": [{"containerPort": 9080, "name": "http-web"}, {"containerPort": 53, "protocol": "UDP"}]}]);
        let meshed = json!([{"name": "app"}, {"name": "istio-proxy", "ports": [{"containerPort": 15020}]}]);
        let pods = [
            pod("v1", "10.0.0.1", "Running", app.clone()),
            pod("v2", "10.0.0.2", "Running", meshed),
            pod("v3", "10.0.0.3", "Running", app.clone()), // not ready
            pod("v4", "10.0.0.4", "Pending", app.clone()),
            pod("v5", "10.0.0.5", "Running", app), // in no slice
        ];
        let slice = json!({"metadata": {"name": "reviews-abc", "namespace": "default"},
        "ports": [{"name": "http", "port": 9080, "protocol": "TCP"}, {"port": 9443}],
        "endpoints": [
            {"addresses": ["10.0.0.1"], "conditions": {"ready": true}, "targetRef": {"kind": "Pod", "name": "v1", "namespace": "default"}},
            {"addresses": ["10.0.0.2"]},
            {"addresses": ["10.0.0.3"], "conditions": {"ready": false}, "targetRef": {"kind": "Pod", "name": "v3"}},
            {"addresses": ["10.0.0.4"], "targetRef": {"kind": "Pod", "name": "v4"}}
        ]});
        let w = workloads_of(pods.iter(), std::iter::once(&slice));
        assert_eq!(w.keys().collect::<Vec<_>>(), ["default/v1", "default/v2"]);
        let v1 = &w["default/v1"];
        assert!(v1.without_proxy);
        assert_eq!(v1.service_account, "bookinfo-reviews");
        assert_eq!(v1.labels.get("version").map(String::as_str), Some("v1"));
        let ports: Vec<String> = v1.ports.iter().map(|p| format!("{}={}", p.port, p.listen)).collect();
        assert_eq!(ports, ["9080=10.0.0.1:9080", "9443=10.0.0.1:9443"]);
        assert_eq!(v1.ports[0].name.as_deref(), Some("http-web"), "named for Services with a named targetPort");
        let v2 = &w["default/v2"];
        assert!(!v2.without_proxy, "the istio-proxy container makes it meshed");
        assert!(v2.ports.iter().all(|p| p.port != 15020), "the proxy's own ports are not the app's");
    }

    #[test]
    fn a_token_is_good_only_for_its_own_pod() {
        let caller =
            Caller { namespace: "default".into(), service_account: "reviews".into(), pod: Some("reviews-1".into()) };
        let mut w = Workload::named("default", "reviews-1", "reviews");
        assert!(caller.check(&w).is_ok());
        w.name = "ratings-1".into();
        let e = caller.check(&w).expect_err("another pod");
        assert!(
            e.contains("service account default/reviews in pod reviews-1") && e.contains("default/ratings-1"),
            "{e}"
        );
        w.name = "reviews-1".into();
        w.service_account = "admin".into();
        assert!(caller.check(&w).is_err());
    }

    #[test]
    fn secrets_become_credentials_as_istio_reads_them() {
        use base64::Engine as _;
        let b64 = |t: &str| base64::engine::general_purpose::STANDARD.encode(t);
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = rcgen::CertificateParams::new(vec!["httpbin.example.com".to_string()])
            .expect("params")
            .self_signed(&key)
            .expect("cert")
            .pem();
        let secret = |name: &str, data: Value| json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": "istio-system"}, "data": data});
        let secrets = [
            secret("tls", json!({"tls.crt": b64(&cert), "tls.key": b64(&key.serialize_pem())})),
            secret("generic", json!({"cert": b64(&cert), "key": b64(&key.serialize_pem()), "cacert": b64(&cert)})),
            secret("tls-cacert", json!({"ca.crt": b64(&cert)})),
            // Not credentials: other keys, a key without its certificate, text that is not PEM.
            secret("token", json!({"token": b64("abc")})),
            secret("half", json!({"tls.key": b64(&key.serialize_pem())})),
            secret("garbage", json!({"tls.crt": b64("not pem"), "tls.key": b64("nope")})),
        ];
        let found = credentials_of(secrets.iter());
        let names: Vec<&str> = found.keys().map(|(_, n)| n.as_str()).collect();
        assert_eq!(names, ["generic", "tls", "tls-cacert"]);
        let generic = &found[&("istio-system".to_string(), "generic".to_string())];
        assert!(generic.ca.is_some() && generic.private_key.is_some(), "{generic:?}");
    }
}
