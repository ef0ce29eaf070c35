//! Kubernetes manifests for the mesh: CRDs for every kind meshd serves, meshd (Deployment,
//! Service, ServiceAccount, RBAC), the injection and validation webhooks, and an ingress
//! gateway; chosen by profile (`default`, `demo`, `minimal`, `empty`), adjusted with `--set` and
//! IstioOperator-style overlay files. Pure functions: the same settings give the same bytes.

pub mod schema;

use std::collections::BTreeMap;

use mesh_api::Kind;
use serde_json::{Value, json};

/// What goes into the manifests.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub profile: String,
    pub namespace: String,
    pub hub: String,
    pub tag: String,
    /// CRDs and the namespace.
    pub base: bool,
    /// meshd and its webhooks.
    pub meshd: bool,
    pub ingress_gateway: bool,
    /// Istio's `istio-egressgateway` (off in every profile, as in Istio's default).
    pub egress_gateway: bool,
    pub meshd_replicas: u32,
    pub access_log: bool,
    pub outbound_policy: String,
    pub zipkin: Option<String>,
    pub trace_sampling: f64,
    pub path_normalization: mesh_api::proxy_config::PathNormalization,
    /// `ISTIO_META_IDLE_TIMEOUT` (a duration as written), None for the proxies' default.
    pub idle_timeout: Option<String>,
    /// `meshConfig.h2UpgradePolicy: UPGRADE`: HTTP/1.1 between proxies goes over HTTP/2.
    pub h2_upgrade: bool,
}

/// The mesh-config keys about request hardening, shared by `mesh install` on both platforms.
pub const NORMALIZATION_KEY: &str = "meshConfig.pathNormalization.normalization";
pub const ESCAPED_SLASHES_KEY: &str = "meshConfig.pathNormalization.pathWithEscapedSlashesAction";
pub const IDLE_TIMEOUT_KEY: &str = "meshConfig.defaultConfig.proxyMetadata.ISTIO_META_IDLE_TIMEOUT";
pub const H2_UPGRADE_KEY: &str = "meshConfig.h2UpgradePolicy";

/// Parse `meshConfig.h2UpgradePolicy`: true for UPGRADE.
pub fn parse_h2_upgrade(key: &str, value: &str) -> Result<bool, String> {
    match value {
        "UPGRADE" => Ok(true),
        "DO_NOT_UPGRADE" | "DEFAULT" => Ok(false),
        _ => Err(format!("{key}={value}: use UPGRADE or DO_NOT_UPGRADE")),
    }
}

/// Apply one of the path-normalization keys; the error names the key and the accepted values.
pub fn set_path_normalization(
    p: &mut mesh_api::proxy_config::PathNormalization,
    key: &str,
    value: &str,
) -> Result<(), String> {
    use mesh_api::proxy_config::{EscapedSlashes, Normalization};
    if key == NORMALIZATION_KEY {
        p.normalization = Normalization::parse(value)
            .ok_or_else(|| format!("{key}={value}: use one of {}", Normalization::NAMES.join(", ")))?;
    } else {
        p.escaped_slashes = EscapedSlashes::parse(value)
            .ok_or_else(|| format!("{key}={value}: use one of {}", EscapedSlashes::NAMES.join(", ")))?;
    }
    Ok(())
}

/// Check an `ISTIO_META_IDLE_TIMEOUT` value (a duration such as `30m`, more than 0).
pub fn check_idle_timeout(key: &str, value: &str) -> Result<(), String> {
    match mesh_api::duration::parse(value) {
        Ok(d) if !d.is_zero() => Ok(()),
        Ok(_) => Err(format!("{key}={value}: must be more than 0")),
        Err(e) => Err(format!("{key}={value}: {e}")),
    }
}

pub const PROFILES: [&str; 4] = ["default", "demo", "minimal", "empty"];

/// The `--set` keys, with Istio's names where Istio has one.
pub const KEYS: &[&str] = &[
    "profile",
    "hub",
    "tag",
    "namespace",
    "components.base.enabled",
    "components.meshd.enabled",
    "components.pilot.enabled",
    "components.ingressGateways.enabled",
    "components.egressGateways.enabled",
    "values.global.hub",
    "values.global.tag",
    "values.global.istioNamespace",
    "values.meshd.replicaCount",
    "values.pilot.replicaCount",
    "meshConfig.accessLogFile",
    "meshConfig.outboundTrafficPolicy.mode",
    "meshConfig.defaultConfig.tracing.zipkin.address",
    "meshConfig.defaultConfig.tracing.sampling",
    NORMALIZATION_KEY,
    ESCAPED_SLASHES_KEY,
    IDLE_TIMEOUT_KEY,
    H2_UPGRADE_KEY,
];

impl Settings {
    /// The default profile's settings.
    pub fn defaults() -> Settings {
        Settings {
            profile: "default".into(),
            namespace: "istio-system".into(),
            hub: "ghcr.io/mesh".into(),
            tag: mesh_api::VERSION.into(),
            base: true,
            meshd: true,
            ingress_gateway: true,
            egress_gateway: false,
            meshd_replicas: 1,
            access_log: false,
            outbound_policy: "ALLOW_ANY".into(),
            zipkin: None,
            trace_sampling: 1.0,
            path_normalization: Default::default(),
            idle_timeout: None,
            h2_upgrade: false,
        }
    }

    /// A profile's settings; None for an unknown profile.
    pub fn profile(name: &str) -> Option<Settings> {
        let mut s = Settings { profile: name.to_string(), ..Settings::defaults() };
        match name {
            "default" => {}
            "demo" => {
                s.access_log = true;
                s.trace_sampling = 100.0;
            }
            "minimal" => s.ingress_gateway = false,
            "empty" => {
                s.base = false;
                s.meshd = false;
                s.ingress_gateway = false;
            }
            _ => return None,
        }
        Some(s)
    }

    /// Apply one `KEY=VALUE`; the error names the key and what it accepts.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), String> {
        let flag = |v: &str| match v {
            "true" => Ok(true),
            "false" => Ok(false),
            _ => Err(format!("{key}={v}: expected true or false")),
        };
        match key {
            "hub" | "values.global.hub" => self.hub = value.trim_end_matches('/').to_string(),
            "tag" | "values.global.tag" => self.tag = value.to_string(),
            "namespace" | "values.global.istioNamespace" => {
                if !mesh_api::validate::is_dns_label(value) {
                    return Err(format!("{key}={value}: not a namespace name"));
                }
                self.namespace = value.to_string();
            }
            "components.base.enabled" => self.base = flag(value)?,
            "components.meshd.enabled" | "components.pilot.enabled" => self.meshd = flag(value)?,
            "components.ingressGateways.enabled" => self.ingress_gateway = flag(value)?,
            "components.egressGateways.enabled" => self.egress_gateway = flag(value)?,
            "values.meshd.replicaCount" | "values.pilot.replicaCount" => {
                self.meshd_replicas = value
                    .parse()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| format!("{key}={value}: expected a count >= 1"))?
            }
            "meshConfig.accessLogFile" => self.access_log = !value.is_empty(),
            "meshConfig.outboundTrafficPolicy.mode" => match value {
                "ALLOW_ANY" | "REGISTRY_ONLY" => self.outbound_policy = value.to_string(),
                _ => return Err(format!("{key}={value}: use ALLOW_ANY or REGISTRY_ONLY")),
            },
            "meshConfig.defaultConfig.tracing.zipkin.address" => {
                self.zipkin = Some(value.to_string()).filter(|v| !v.is_empty())
            }
            "meshConfig.defaultConfig.tracing.sampling" => {
                self.trace_sampling = value
                    .parse()
                    .ok()
                    .filter(|p| (0.0..=100.0).contains(p))
                    .ok_or_else(|| format!("{key}={value}: expected a percentage from 0 to 100"))?
            }
            NORMALIZATION_KEY | ESCAPED_SLASHES_KEY => {
                set_path_normalization(&mut self.path_normalization, key, value)?
            }
            IDLE_TIMEOUT_KEY => {
                check_idle_timeout(key, value)?;
                self.idle_timeout = Some(value.to_string());
            }
            H2_UPGRADE_KEY => self.h2_upgrade = parse_h2_upgrade(key, value)?,
            "profile" => return Err("profile: choose it with --profile, or spec.profile in a file".into()),
            _ => return Err(format!("{key}: unknown setting; known settings: {}", KEYS.join(", "))),
        }
        Ok(())
    }

    /// Apply an IstioOperator-style overlay (`spec.hub`, `spec.meshConfig...`,
    /// `spec.components.ingressGateways[].enabled`, `spec.values...`). Every problem is reported.
    pub fn overlay(&mut self, doc: &Value) -> Result<(), Vec<String>> {
        let spec = doc.get("spec").unwrap_or(doc);
        let mut flat = BTreeMap::new();
        flatten("", spec, &mut flat);
        let mut problems = Vec::new();
        let mut ingress_any = None;
        let mut egress_any = None;
        for (k, v) in flat {
            // Gateways are lists in IstioOperator; their names are Istio's own.
            if k == "profile" || k.starts_with("components.") && k.contains("Gateways[") && k.ends_with(".name") {
                continue;
            }
            // The ingress gateway: enabled when one in the list is.
            if gateway_index(&k, "components.ingressGateways[") == Some(".enabled") {
                ingress_any = Some(ingress_any.unwrap_or(false) || v == "true");
                continue;
            }
            // The egress gateway likewise.
            if gateway_index(&k, "components.egressGateways[") == Some(".enabled") {
                egress_any = Some(egress_any.unwrap_or(false) || v == "true");
                continue;
            }
            if let Err(e) = self.set(&k, &v) {
                problems.push(format!("spec.{e}"));
            }
        }
        if let Some(any) = ingress_any
            && let Err(e) = self.set("components.ingressGateways.enabled", if any { "true" } else { "false" })
        {
            problems.push(format!("spec.{e}"));
        }
        if let Some(any) = egress_any {
            self.egress_gateway = any;
        }
        if problems.is_empty() { Ok(()) } else { Err(problems) }
    }
}

/// What follows `prefix` and a list index (`components.egressGateways[0].enabled` ->
/// `.enabled`), if `key` is such a key.
fn gateway_index<'k>(key: &'k str, prefix: &str) -> Option<&'k str> {
    let rest = key.strip_prefix(prefix)?;
    let (index, rest) = rest.split_once(']')?;
    index.bytes().all(|b| b.is_ascii_digit()).then_some(rest)
}

fn flatten(prefix: &str, v: &Value, out: &mut BTreeMap<String, String>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                flatten(&key, v, out);
            }
        }
        Value::Array(a) => {
            for (i, v) in a.iter().enumerate() {
                flatten(&format!("{prefix}[{i}]"), v, out);
            }
        }
        Value::String(s) => {
            out.insert(prefix.to_string(), s.clone());
        }
        Value::Null => {}
        other => {
            out.insert(prefix.to_string(), other.to_string());
        }
    }
}

/// One CRD row: group, kind, plural, short names, (version, storage) pairs.
struct Crd {
    group: &'static str,
    kind: Kind,
    plural: &'static str,
    short: &'static [&'static str],
    versions: &'static [(&'static str, bool)],
}

/// Every kind meshd serves, with Istio's names, short names and versions (the storage version
/// as Istio's CRDs have it), so Istio's YAML applies unchanged.
const CRDS: &[Crd] = &[
    Crd {
        group: "networking.istio.io",
        kind: Kind::DestinationRule,
        plural: "destinationrules",
        short: &["dr"],
        versions: &[("v1", true), ("v1alpha3", false), ("v1beta1", false)],
    },
    Crd {
        group: "networking.istio.io",
        kind: Kind::Gateway,
        plural: "gateways",
        short: &["gw"],
        versions: &[("v1", true), ("v1alpha3", false), ("v1beta1", false)],
    },
    Crd {
        group: "networking.istio.io",
        kind: Kind::ServiceEntry,
        plural: "serviceentries",
        short: &["se"],
        versions: &[("v1", true), ("v1alpha3", false), ("v1beta1", false)],
    },
    Crd {
        group: "networking.istio.io",
        kind: Kind::Sidecar,
        plural: "sidecars",
        short: &[],
        versions: &[("v1", true), ("v1alpha3", false), ("v1beta1", false)],
    },
    Crd {
        group: "networking.istio.io",
        kind: Kind::ProxyConfig,
        plural: "proxyconfigs",
        short: &[],
        versions: &[("v1beta1", true)],
    },
    Crd {
        group: "networking.istio.io",
        kind: Kind::WorkloadEntry,
        plural: "workloadentries",
        short: &["we"],
        versions: &[("v1", true), ("v1alpha3", false), ("v1beta1", false)],
    },
    Crd {
        group: "networking.istio.io",
        kind: Kind::WorkloadGroup,
        plural: "workloadgroups",
        short: &["wg"],
        versions: &[("v1", true), ("v1alpha3", false), ("v1beta1", false)],
    },
    Crd {
        group: "networking.istio.io",
        kind: Kind::VirtualService,
        plural: "virtualservices",
        short: &["vs"],
        versions: &[("v1", true), ("v1alpha3", false), ("v1beta1", false)],
    },
    Crd {
        group: "security.istio.io",
        kind: Kind::AuthorizationPolicy,
        plural: "authorizationpolicies",
        short: &["ap"],
        versions: &[("v1", true), ("v1beta1", false)],
    },
    Crd {
        group: "security.istio.io",
        kind: Kind::PeerAuthentication,
        plural: "peerauthentications",
        short: &["pa"],
        versions: &[("v1", true), ("v1beta1", false)],
    },
    Crd {
        group: "security.istio.io",
        kind: Kind::RequestAuthentication,
        plural: "requestauthentications",
        short: &["ra"],
        versions: &[("v1", true), ("v1beta1", false)],
    },
    Crd {
        group: "telemetry.istio.io",
        kind: Kind::Telemetry,
        plural: "telemetries",
        short: &["telemetry"],
        versions: &[("v1", false), ("v1alpha1", true)],
    },
    Crd {
        group: "policy.mesh.io",
        kind: Kind::LocalRateLimit,
        plural: "localratelimits",
        short: &["rl"],
        versions: &[("v1alpha1", true)],
    },
    Crd {
        group: "rollouts.mesh.io",
        kind: Kind::Rollout,
        plural: "rollouts",
        short: &["ro"],
        versions: &[("v1alpha1", true)],
    },
];

/// The API groups of the CRDs, each once, in table order (the table is grouped).
fn crd_groups() -> Vec<&'static str> {
    let mut g: Vec<&str> = CRDS.iter().map(|c| c.group).collect();
    g.dedup();
    g
}

fn labels(s: &Settings, component: &str) -> Value {
    json!({"app.kubernetes.io/name": "mesh", "app.kubernetes.io/component": component, "app.kubernetes.io/version": s.tag, "mesh.io/profile": s.profile})
}

fn crd(s: &Settings, c: &Crd) -> Value {
    let singular = c.kind.as_str().to_ascii_lowercase();
    let category = c.group.replace('.', "-");
    let schema = json!({"openAPIV3Schema": schema::crd_schema(c.kind)});
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": format!("{}.{}", c.plural, c.group), "labels": labels(s, "base")},
        "spec": {
            "group": c.group,
            "names": {"kind": c.kind.as_str(), "listKind": format!("{}List", c.kind), "plural": c.plural, "singular": singular,
                      "shortNames": c.short, "categories": ["istio-io", category]},
            "scope": "Namespaced",
            "versions": c.versions.iter().map(|(v, storage)| {
                let mut version = json!({
                    "name": v, "served": true, "storage": storage, "schema": schema,
                    "subresources": {"status": {}}
                });
                if let Some(columns) = printer_columns(c.kind) {
                    version["additionalPrinterColumns"] = columns;
                }
                version
            }).collect::<Vec<_>>(),
        }
    })
}

/// The columns `kubectl get` shows for a kind, where the default (name, age) says too little.
fn printer_columns(kind: Kind) -> Option<Value> {
    let column = |name: &str, kind: &str, path: &str| json!({"name": name, "type": kind, "jsonPath": path});
    match kind {
        Kind::Rollout => Some(json!([
            column("Host", "string", ".spec.host"),
            column("Stable", "string", ".spec.stable"),
            column("Canary", "string", ".spec.canary"),
            column("Phase", "string", ".status.phase"),
            column("Weight", "integer", ".status.canaryWeight"),
            column("Age", "date", ".metadata.creationTimestamp"),
        ])),
        _ => None,
    }
}

fn meshd_args(s: &Settings) -> Vec<String> {
    let mut a: Vec<String> =
        ["--listen", "0.0.0.0:15010", "--monitoring", "0.0.0.0:15014", "--outbound-traffic-policy"]
            .into_iter()
            .map(String::from)
            .collect();
    a.push(s.outbound_policy.clone());
    if s.access_log {
        a.push("--access-log".into());
    }
    if let Some(z) = &s.zipkin {
        a.extend(["--zipkin".to_string(), z.clone()]);
    }
    a.extend(["--trace-sampling".to_string(), s.trace_sampling.to_string()]);
    let p = s.path_normalization;
    if p.normalization != Default::default() {
        a.extend(["--path-normalization".to_string(), p.normalization.as_str().to_string()]);
    }
    if p.escaped_slashes != Default::default() {
        a.extend(["--escaped-slashes".to_string(), p.escaped_slashes.as_str().to_string()]);
    }
    if let Some(t) = &s.idle_timeout {
        a.extend(["--idle-timeout".to_string(), t.clone()]);
    }
    if s.h2_upgrade {
        a.push("--h2-upgrade".to_string());
    }
    a
}

fn restricted_security() -> Value {
    json!({"runAsNonRoot": true, "runAsUser": 1337, "runAsGroup": 1337, "allowPrivilegeEscalation": false,
           "readOnlyRootFilesystem": true, "capabilities": {"drop": ["ALL"]}})
}

fn meshd(s: &Settings) -> Vec<Value> {
    let ns = &s.namespace;
    let sel = json!({"app": "meshd"});
    let mut pod_labels = labels(s, "meshd");
    pod_labels["app"] = json!("meshd");
    let kinds: Vec<&str> = CRDS.iter().map(|c| c.plural).collect();
    let groups = crd_groups();
    vec![
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "meshd", "namespace": ns, "labels": labels(s, "meshd")}}),
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": {"name": format!("meshd-{ns}"), "labels": labels(s, "meshd")},
            "rules": [
                {"apiGroups": [""], "resources": ["services", "pods", "namespaces", "endpoints"], "verbs": ["get", "list", "watch"]},
                {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list", "watch", "create", "update", "patch"]},
                {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": ["get", "list", "watch"]},
                {"apiGroups": groups, "resources": kinds, "verbs": ["get", "list", "watch"]},
                {"apiGroups": groups, "resources": kinds.iter().map(|k| format!("{k}/status")).collect::<Vec<_>>(), "verbs": ["get", "patch", "update"]},
                {"apiGroups": ["authentication.k8s.io"], "resources": ["tokenreviews"], "verbs": ["create"]},
                {"apiGroups": ["admissionregistration.k8s.io"], "resources": ["mutatingwebhookconfigurations", "validatingwebhookconfigurations"], "verbs": ["get", "list", "watch", "patch"]},
                {"apiGroups": ["apiextensions.k8s.io"], "resources": ["customresourcedefinitions"], "verbs": ["get", "list", "watch"]},
                {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list", "watch"]},
                {"apiGroups": ["gateway.networking.k8s.io"], "resources": ["gatewayclasses", "gateways", "httproutes", "grpcroutes", "tcproutes", "tlsroutes", "referencegrants"], "verbs": ["get", "list", "watch"]},
                {"apiGroups": ["gateway.networking.k8s.io"], "resources": ["gatewayclasses/status", "gateways/status", "httproutes/status", "grpcroutes/status", "tcproutes/status", "tlsroutes/status"], "verbs": ["get", "update", "patch"]},
                {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get", "list", "watch", "create", "update", "patch"]},
                {"apiGroups": [""], "resources": ["services", "serviceaccounts"], "verbs": ["get", "list", "watch", "create", "update", "patch"]}
            ]
        }),
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
            "metadata": {"name": format!("meshd-{ns}"), "labels": labels(s, "meshd")},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": format!("meshd-{ns}")},
            "subjects": [{"kind": "ServiceAccount", "name": "meshd", "namespace": ns}]
        }),
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": {"name": "meshd", "namespace": ns, "labels": labels(s, "meshd")},
            "rules": [
                {"apiGroups": [""], "resources": ["secrets", "configmaps"], "verbs": ["get", "list", "watch", "create", "update"]},
                {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["get", "create", "update"]}
            ]
        }),
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": "meshd", "namespace": ns, "labels": labels(s, "meshd")},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "meshd"},
            "subjects": [{"kind": "ServiceAccount", "name": "meshd", "namespace": ns}]
        }),
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "meshd", "namespace": ns, "labels": labels(s, "meshd")},
            "spec": {
                "replicas": s.meshd_replicas,
                "selector": {"matchLabels": sel},
                "template": {
                    "metadata": {"labels": pod_labels, "annotations": {"sidecar.istio.io/inject": "false"}},
                    "spec": {
                        "serviceAccountName": "meshd",
                        "securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
                        "containers": [{
                            "name": "meshd",
                            "image": format!("{}/meshd:{}", s.hub, s.tag),
                            "args": meshd_args(s),
                            "env": [
                                {"name": "MESH_HOME", "value": "/var/lib/meshd"},
                                {"name": "MESH_PLATFORM", "value": "kube"},
                                {"name": "MESH_HUB", "value": s.hub},
                                {"name": "MESH_TAG", "value": s.tag},
                                {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
                                {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}
                            ],
                            "ports": [
                                {"name": "grpc-xds", "containerPort": 15010, "protocol": "TCP"},
                                {"name": "https-dns", "containerPort": 15012, "protocol": "TCP"},
                                {"name": "http-monitoring", "containerPort": 15014, "protocol": "TCP"},
                                {"name": "https-webhook", "containerPort": 15017, "protocol": "TCP"}
                            ],
                            "readinessProbe": {"httpGet": {"path": "/ready", "port": 15014}, "periodSeconds": 3, "timeoutSeconds": 5},
                            "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"memory": "512Mi"}},
                            "securityContext": restricted_security(),
                            "volumeMounts": [{"name": "state", "mountPath": "/var/lib/meshd"}]
                        }],
                        "volumes": [{"name": "state", "emptyDir": {}}]
                    }
                }
            }
        }),
        json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "meshd", "namespace": ns, "labels": labels(s, "meshd")},
            "spec": {
                "selector": sel,
                "ports": [
                    {"name": "grpc-xds", "port": 15010, "targetPort": 15010, "protocol": "TCP"},
                    {"name": "https-dns", "port": 15012, "targetPort": 15012, "protocol": "TCP"},
                    {"name": "https-webhook", "port": 443, "targetPort": 15017, "protocol": "TCP"},
                    {"name": "http-monitoring", "port": 15014, "targetPort": 15014, "protocol": "TCP"}
                ]
            }
        }),
    ]
}

/// The webhooks fail open (`Ignore`): while meshd is down (or before it has written the
/// `caBundle`), pods and mesh resources are still admitted, without injection or validation,
/// rather than every write in labelled namespaces being blocked.
fn webhooks(s: &Settings) -> Vec<Value> {
    let ns = &s.namespace;
    let client = |path: &str| json!({"service": {"name": "meshd", "namespace": ns, "path": path, "port": 443}});
    let pods = json!([{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"]}]);
    let not_disabled = json!({"key": "sidecar.istio.io/inject", "operator": "NotIn", "values": ["false"]});
    let hook = |name: &str, ns_sel: Value, obj_sel: Value| {
        json!({
            "name": name, "clientConfig": client("/inject"), "rules": pods,
            // As Istio's injector: a pod that should get a proxy is not created without one.
            "sideEffects": "None", "admissionReviewVersions": ["v1"], "failurePolicy": "Fail",
            "reinvocationPolicy": "Never", "timeoutSeconds": 10,
            "namespaceSelector": ns_sel, "objectSelector": obj_sel
        })
    };
    let in_ns = |label: &str| json!({"matchExpressions": [{"key": label, "operator": "In", "values": ["enabled"]}]});
    let groups = crd_groups();
    vec![
        json!({
            "apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
            "metadata": {"name": format!("mesh-sidecar-injector-{ns}"), "labels": labels(s, "meshd")},
            "webhooks": [
                // Namespaces labelled for injection, ours or Istio's; pods may opt out.
                hook("namespace.sidecar-injector.mesh.io", in_ns("mesh-injection"), json!({"matchExpressions": [not_disabled]})),
                hook("istio-namespace.sidecar-injector.mesh.io", json!({"matchExpressions": [
                    {"key": "istio-injection", "operator": "In", "values": ["enabled"]},
                    {"key": "mesh-injection", "operator": "DoesNotExist"}
                ]}), json!({"matchExpressions": [not_disabled]})),
                // Pods that ask for it, in namespaces that say nothing.
                hook("object.sidecar-injector.mesh.io", json!({"matchExpressions": [
                    {"key": "mesh-injection", "operator": "DoesNotExist"},
                    {"key": "istio-injection", "operator": "DoesNotExist"},
                    {"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": ["kube-system", ns]}
                ]}), json!({"matchExpressions": [{"key": "sidecar.istio.io/inject", "operator": "In", "values": ["true"]}]}))
            ]
        }),
        json!({
            "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
            "metadata": {"name": format!("mesh-validator-{ns}"), "labels": labels(s, "meshd")},
            "webhooks": [{
                "name": "validation.mesh.io", "clientConfig": client("/validate"),
                "rules": [{"operations": ["CREATE", "UPDATE"], "apiGroups": groups, "apiVersions": ["*"], "resources": ["*"]}],
                "sideEffects": "None", "admissionReviewVersions": ["v1"], "failurePolicy": "Ignore", "timeoutSeconds": 10
            }]
        }),
    ]
}

fn ingress_gateway(s: &Settings) -> Vec<Value> {
    gateway(s, "ingressgateway", "LoadBalancer")
}

/// Istio's `istio-ingressgateway` or `istio-egressgateway` (`which`): a gateway proxy, its
/// ServiceAccount and a Service of `service_type` for ports 80 and 443.
fn gateway(s: &Settings, which: &str, service_type: &str) -> Vec<Value> {
    let ns = &s.namespace;
    let app = format!("istio-{which}");
    let sel = json!({"istio": which, "app": app});
    let mut pod_labels = labels(s, which);
    pod_labels["istio"] = json!(which);
    pod_labels["app"] = json!(app);
    let gateway_labels = format!("istio={which},app={app}");
    // Named after its pod: the pod's token is good for that workload name only.
    let gateway_args: Vec<String> = [
        "--workload",
        "$(POD_NAME)",
        "--namespace",
        ns,
        "--service-account",
        &app,
        "--labels",
        &gateway_labels,
        "--no-outbound",
        "--gateway-port",
        "80=0.0.0.0:8080",
        "--gateway-port",
        "443=0.0.0.0:8443",
        "--metrics",
        "0.0.0.0:15020",
    ]
    .into_iter()
    .map(|a: &str| a.to_string())
    .chain(crate::inject::discovery_args(ns))
    .collect();
    vec![
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": app, "namespace": ns, "labels": labels(s, which)}}),
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": app, "namespace": ns, "labels": labels(s, which)},
            "spec": {
                "selector": {"matchLabels": sel},
                "template": {
                    "metadata": {"labels": pod_labels, "annotations": {"sidecar.istio.io/inject": "false"}},
                    "spec": {
                        "serviceAccountName": app,
                        "securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
                        "containers": [{
                            "name": "istio-proxy",
                            "image": format!("{}/proxy:{}", s.hub, s.tag),
                            "args": gateway_args,
                            "env": [{"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
                            "volumeMounts": crate::inject::discovery_mounts(),
                            "ports": [
                                {"name": "http2", "containerPort": 8080, "protocol": "TCP"},
                                {"name": "https", "containerPort": 8443, "protocol": "TCP"},
                                {"name": "http-envoy-prom", "containerPort": 15020, "protocol": "TCP"}
                            ],
                            "resources": {"requests": {"cpu": "100m", "memory": "32Mi"}, "limits": {"memory": "256Mi"}},
                            "securityContext": restricted_security()
                        }],
                        "volumes": crate::inject::discovery_volumes()
                    }
                }
            }
        }),
        json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": app, "namespace": ns, "labels": labels(s, which)},
            "spec": {
                "type": service_type,
                "selector": sel,
                "ports": [
                    {"name": "http2", "port": 80, "targetPort": 8080, "protocol": "TCP"},
                    {"name": "https", "port": 443, "targetPort": 8443, "protocol": "TCP"}
                ]
            }
        }),
    ]
}

/// Every object of these settings, in apply order (namespace and CRDs first).
pub fn objects(s: &Settings) -> Vec<Value> {
    let mut out = Vec::new();
    if s.base {
        out.push(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": s.namespace, "labels": labels(s, "base")}}));
        out.extend(CRDS.iter().map(|c| crd(s, c)));
    }
    if s.meshd {
        out.extend(meshd(s));
        out.extend(webhooks(s));
    }
    if s.ingress_gateway {
        out.extend(ingress_gateway(s));
    }
    if s.egress_gateway {
        out.extend(gateway(s, "egressgateway", "ClusterIP"));
    }
    out
}

/// The objects as one YAML stream.
pub fn render(s: &Settings) -> String {
    let mut out = format!("# mesh {} manifests, profile {}\n", mesh_api::VERSION, s.profile);
    for o in objects(s) {
        out.push_str("---\n");
        out.push_str(&serde_saphyr::to_string(&o).unwrap_or_default());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checked_in(profile: &str) -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../manifests/profiles/{profile}.yaml"))
    }

    #[test]
    fn checked_in_profiles_match_the_generator() {
        for p in PROFILES {
            let want = render(&Settings::profile(p).expect("profile"));
            let have = std::fs::read_to_string(checked_in(p)).unwrap_or_default();
            assert!(
                have == want,
                "manifests/profiles/{p}.yaml is out of date; regenerate with `mesh manifest generate --profile {p} > manifests/profiles/{p}.yaml`"
            );
        }
    }

    #[test]
    fn every_served_kind_has_a_crd_and_every_document_parses_back() {
        let all = objects(&Settings::profile("default").expect("default"));
        for k in mesh_api::Kind::ALL.into_iter().filter(|k| *k != mesh_api::Kind::Service && !k.is_gateway_api()) {
            assert!(
                all.iter().any(|o| o["kind"] == "CustomResourceDefinition" && o["spec"]["names"]["kind"] == k.as_str()),
                "no CRD for {k}"
            );
        }
        let text = render(&Settings::profile("default").expect("default"));
        let back = mesh_api::resource::parse_yaml_stream(&text).expect("yaml");
        assert_eq!(back, all);
    }

    #[test]
    fn settings_and_overlays_change_the_output_and_bad_ones_are_named() {
        let mut s = Settings::profile("minimal").expect("minimal");
        assert!(!objects(&s).iter().any(|o| o["metadata"]["name"] == "istio-ingressgateway"));
        s.set("components.ingressGateways.enabled", "true").expect("set");
        s.set("values.global.hub", "registry.example/mesh").expect("set");
        assert!(
            objects(&s).iter().any(|o| o["kind"] == "Deployment" && o["metadata"]["name"] == "istio-ingressgateway")
        );
        assert!(render(&s).contains("registry.example/mesh/meshd:"));
        assert!(s.set("values.nope", "1").expect_err("unknown").contains("unknown setting"));
        assert!(s.set("meshConfig.outboundTrafficPolicy.mode", "SOMETIMES").is_err());
        let overlay: Value = serde_json::json!({"apiVersion": "install.istio.io/v1alpha1", "kind": "IstioOperator",
            "spec": {"meshConfig": {"accessLogFile": "/dev/stdout"}, "values": {"pilot": {"replicaCount": 2}},
                     "components": {"ingressGateways": [{"name": "istio-ingressgateway", "enabled": false}]}}});
        s.overlay(&overlay).expect("overlay");
        assert!(s.access_log && s.meshd_replicas == 2 && !s.ingress_gateway);
        let bad = serde_json::json!({"spec": {"values": {"pilot": {"replicaCount": 0}}, "bogus": 1}});
        assert_eq!(s.overlay(&bad).expect_err("bad").len(), 2);
    }

    #[test]
    fn istio_operator_gateway_lists_are_read() {
        // Istio's samples/bookinfo/demo-profile-no-gateways.yaml, as Istio users pass it.
        let no_gateways = serde_json::json!({"apiVersion": "install.istio.io/v1alpha1", "kind": "IstioOperator",
            "spec": {"profile": "demo", "components": {
                "ingressGateways": [{"name": "istio-ingressgateway", "enabled": false}],
                "egressGateways": [{"name": "istio-egressgateway", "enabled": false}]}}});
        let mut s = Settings::profile("default").expect("default");
        s.overlay(&no_gateways).expect("accepted");
        assert!(!s.ingress_gateway && !s.egress_gateway);
        let second = serde_json::json!({"spec": {"components": {"ingressGateways": [
            {"name": "a", "enabled": true}, {"name": "b", "enabled": false}]}}});
        s.overlay(&second).expect("accepted");
        assert!(s.ingress_gateway, "enabled when one in the list is");
        let egress = serde_json::json!({"spec": {"components": {"egressGateways": [{"name": "e", "enabled": true}]}}});
        s.overlay(&egress).expect("accepted");
        assert!(s.egress_gateway);
        let objects = objects(&s);
        let deployment = objects
            .iter()
            .find(|o| o["kind"] == "Deployment" && o["metadata"]["name"] == "istio-egressgateway")
            .expect("an egress gateway Deployment");
        let args = deployment["spec"]["template"]["spec"]["containers"][0]["args"].to_string();
        assert!(args.contains("istio=egressgateway,app=istio-egressgateway"), "{args}");
        let service = objects
            .iter()
            .find(|o| o["kind"] == "Service" && o["metadata"]["name"] == "istio-egressgateway")
            .expect("its Service");
        assert_eq!(service["spec"]["type"], "ClusterIP");
    }

    #[test]
    fn request_hardening_settings_reach_meshd_on_a_cluster() {
        let mut s = Settings::defaults();
        assert!(!meshd_args(&s).iter().any(|a| a == "--path-normalization"), "defaults add no flags");
        let overlay = serde_json::json!({"spec": {"meshConfig": {
            "pathNormalization": {"normalization": "MERGE_SLASHES", "pathWithEscapedSlashesAction": "REJECT_REQUEST"},
            "defaultConfig": {"proxyMetadata": {"ISTIO_META_IDLE_TIMEOUT": "30m"}},
            "h2UpgradePolicy": "UPGRADE"}}});
        s.overlay(&overlay).expect("overlay");
        let args = meshd_args(&s).join(" ");
        assert!(args.contains("--path-normalization MERGE_SLASHES"), "{args}");
        assert!(args.contains("--escaped-slashes REJECT_REQUEST"), "{args}");
        assert!(args.contains("--idle-timeout 30m"), "{args}");
        assert!(args.contains("--h2-upgrade"), "{args}");
        assert!(s.set(H2_UPGRADE_KEY, "SOMETIMES").expect_err("bad").contains("DO_NOT_UPGRADE"));
        assert!(s.set(NORMALIZATION_KEY, "SOMETIMES").expect_err("bad").contains("DECODE_AND_MERGE_SLASHES"));
        assert!(s.set(IDLE_TIMEOUT_KEY, "0s").is_err());
    }
}
