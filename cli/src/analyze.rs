//! `mesh analyze`: Istio-compatible configuration analysis over any set of resources (files,
//! the live mesh, or both). Analyzers are pure functions over generic resources, so they also
//! speak about kinds meshd does not serve (Gateways, ServiceEntries, Pods...).
//!
//! Implemented so far: the analyzers listed by `all()`. Istio has more; `--list-analyzers` shows
//! exactly what runs.

mod annotations;
mod controlplane;
mod deprecation;
mod destinationrule;
mod envoyfilter;
mod gateway;
mod injection;
mod messages;
pub mod multicluster;
mod policy;
mod rollout;
mod schema;
mod service;
mod serviceentry;
mod sidecar;
mod telemetry;
mod virtualservice;
mod workload;

#[cfg(test)]
mod conformance;

use serde::Serialize;
use serde_json::Value;

pub use messages::{Level, MsgType};

/// A resource as analyzers see it: identity plus its document.
#[derive(Debug, Clone)]
pub struct Res {
    pub api_version: String,
    pub kind: String,
    /// None when the document had no namespace (Istio's analyzers then print `Kind name`).
    pub namespace: Option<String>,
    pub name: String,
    pub value: Value,
    /// The cluster it was read from, in a multi-cluster analysis; None otherwise.
    pub cluster: Option<String>,
}

/// Turn documents into resources; a `kind: List` contributes its items.
pub fn resources_of(docs: impl IntoIterator<Item = Value>) -> Vec<Res> {
    let mut out = Vec::new();
    for d in docs {
        if d.get("kind").and_then(Value::as_str) == Some("List") {
            out.extend(
                d.get("items").and_then(Value::as_array).into_iter().flatten().cloned().filter_map(Res::from_value),
            );
        } else if let Some(r) = Res::from_value(d) {
            out.push(r);
        }
    }
    out
}

impl Res {
    pub fn from_value(value: Value) -> Option<Res> {
        let kind = value.get("kind")?.as_str()?.to_string();
        let api_version = value.get("apiVersion").and_then(Value::as_str).unwrap_or("").to_string();
        let meta = value.get("metadata");
        let name = meta.and_then(|m| m.get("name")).and_then(Value::as_str).unwrap_or("").to_string();
        let namespace = meta.and_then(|m| m.get("namespace")).and_then(Value::as_str).map(str::to_string);
        Some(Res { api_version, kind, namespace, name, value, cluster: None })
    }

    pub fn group(&self) -> &str {
        self.api_version.rsplit_once('/').map(|(g, _)| g).unwrap_or("")
    }

    /// Is this the Istio (or core) kind `kind` of API group `group`?
    pub fn is(&self, group: &str, kind: &str) -> bool {
        self.kind == kind && self.group() == group
    }

    /// The namespace used for name resolution: the document's, else `default`.
    pub fn ns(&self) -> &str {
        self.namespace.as_deref().unwrap_or("default")
    }

    pub fn spec(&self) -> &Value {
        self.value.get("spec").unwrap_or(&Value::Null)
    }

    pub fn label(&self, key: &str) -> Option<&str> {
        self.value.get("metadata")?.get("labels")?.get(key)?.as_str()
    }

    /// Labels as a map of strings.
    pub fn labels(&self) -> std::collections::BTreeMap<String, String> {
        string_map(self.value.get("metadata").and_then(|m| m.get("labels")))
    }

    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.value.get("metadata")?.get("annotations")?.get(key)?.as_str()
    }

    /// `Kind namespace/name`, or `Kind name` without a namespace (Istio's origin string).
    pub fn origin(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{} {ns}/{}", self.kind, self.name),
            None => format!("{} {}", self.kind, self.name),
        }
    }
}

/// A JSON object of strings as a map (non-strings skipped).
pub fn string_map(v: Option<&Value>) -> std::collections::BTreeMap<String, String> {
    v.and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
        .collect()
}

/// Kubernetes equality selection: every selector label present with the same value.
pub fn selects(
    selector: &std::collections::BTreeMap<String, String>,
    labels: &std::collections::BTreeMap<String, String>,
) -> bool {
    selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// A Kubernetes `LabelSelector` (`matchLabels` and `matchExpressions` with In, NotIn, Exists,
/// DoesNotExist) against labels. An absent selector matches everything; a malformed one nothing.
pub fn label_selector_matches(selector: Option<&Value>, labels: &std::collections::BTreeMap<String, String>) -> bool {
    let Some(sel) = selector.filter(|s| !s.is_null()) else { return true };
    if !selects(&string_map(sel.get("matchLabels")), labels) {
        return false;
    }
    sel.get("matchExpressions").and_then(Value::as_array).into_iter().flatten().all(|e| {
        let key = e.get("key").and_then(Value::as_str).unwrap_or("");
        let values: Vec<&str> =
            e.get("values").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).collect();
        let have = labels.get(key).map(String::as_str);
        match e.get("operator").and_then(Value::as_str).unwrap_or("") {
            "In" => have.is_some_and(|v| values.contains(&v)),
            "NotIn" => have.is_none_or(|v| !values.contains(&v)),
            "Exists" => have.is_some(),
            "DoesNotExist" => have.is_none(),
            _ => false,
        }
    })
}

/// A selector as Kubernetes prints it: `k=v,k2=v2`.
pub fn selector_string(selector: &std::collections::BTreeMap<String, String>) -> String {
    selector.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",")
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Message {
    pub code: &'static str,
    #[serde(skip)]
    pub name: &'static str,
    pub level: Level,
    pub message: String,
    pub origin: String,
    #[serde(rename = "documentationUrl")]
    pub documentation_url: String,
    #[serde(skip)]
    pub kind: String,
    #[serde(skip)]
    pub namespace: Option<String>,
    #[serde(skip)]
    pub resource_name: String,
}

impl Message {
    pub fn new(t: &MsgType, r: &Res, text: String) -> Message {
        Message {
            code: t.code,
            name: t.name,
            level: t.level,
            message: text,
            origin: r.origin(),
            // Istio's codes have Istio's pages; mesh's own (MESH...) are in the README.
            documentation_url: if t.code.starts_with("IST") {
                format!("https://istio.io/latest/docs/reference/config/analysis/{}/", t.code.to_ascii_lowercase())
            } else {
                String::new()
            },
            kind: r.kind.clone(),
            namespace: r.namespace.clone(),
            resource_name: r.name.clone(),
        }
    }

    /// `Kind name.namespace` as istioctl's text output writes the resource.
    pub fn text_resource(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{} {}.{ns}", self.kind, self.resource_name),
            None => format!("{} {}", self.kind, self.resource_name),
        }
    }
}

/// What analyzers read.
pub struct Input {
    pub resources: Vec<Res>,
    /// MeshConfig (a fragment; missing fields are Istio's defaults).
    pub mesh_config: Value,
}

impl Input {
    pub fn of_kind<'a>(&'a self, group: &'a str, kind: &'a str) -> impl Iterator<Item = &'a Res> + 'a {
        self.resources.iter().filter(move |r| r.is(group, kind))
    }
}

pub trait Analyzer {
    /// Istio's analyzer name, e.g. `virtualservice.DestinationHostAnalyzer`.
    fn name(&self) -> &'static str;
    fn description(&self) -> &'static str;
    /// Whether findings depend on running workloads (Pods), not just on configuration.
    fn judges_workloads(&self) -> bool {
        false
    }
    /// Part of the default set (istioctl leaves a few noisy ones out; `--analyzer` runs them).
    fn default_enabled(&self) -> bool {
        true
    }
    fn analyze(&self, input: &Input, out: &mut Vec<Message>);
}

/// Pods standing for the local platform's connected workloads, so workload analyzers see them.
pub fn workload_pods(workloads: &[mesh_api::protocol::Workload]) -> Vec<Res> {
    workloads
        .iter()
        .filter_map(|w| {
            Res::from_value(serde_json::json!({
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": w.name, "namespace": w.namespace, "labels": w.labels},
                "spec": {"serviceAccountName": w.service_account, "containers": [{"name": "app"}, {"name": "istio-proxy"}]},
            }))
        })
        .collect()
}

/// Secrets standing for the local platform's `mesh secret` credentials, so the gateway
/// analyzers see them; which parts are present, never their contents.
pub fn credential_secrets(credentials: &[mesh_api::credential::CredentialInfo]) -> Vec<serde_json::Value> {
    credentials
        .iter()
        .map(|c| {
            let mut data = serde_json::Map::new();
            let present = || serde_json::Value::String("(held by meshd)".into());
            if c.subject.is_some() {
                data.insert("tls.crt".into(), present());
            }
            if c.has_key {
                data.insert("tls.key".into(), present());
            }
            if c.has_ca {
                data.insert("ca.crt".into(), present());
            }
            serde_json::json!({
                "apiVersion": "v1",
                "kind": "Secret",
                "type": "kubernetes.io/tls",
                "metadata": {"name": c.name, "namespace": c.namespace},
                "data": data,
            })
        })
        .collect()
}

/// Every analyzer this build has.
pub fn all() -> Vec<Box<dyn Analyzer>> {
    let mut all: Vec<Box<dyn Analyzer>> = vec![
        Box::new(annotations::AlphaAnalyzer),
        Box::new(annotations::K8sAnalyzer),
        Box::new(workload::ApplicationUidAnalyzer),
        Box::new(workload::MultiServiceAnalyzer),
        Box::new(controlplane::BlockedCidrsAnalyzer),
        Box::new(controlplane::ExternalControlPlaneAnalyzer),
        Box::new(controlplane::WebhookAnalyzer),
        Box::new(deprecation::CrdVersionAnalyzer),
        Box::new(deprecation::DeprecationAnalyzer),
        Box::new(destinationrule::CaCertificateAnalyzer),
        Box::new(destinationrule::SubsetSelectPodAnalyzer),
        Box::new(envoyfilter::EnvoyPatchAnalyzer),
        Box::new(gateway::CertificateAnalyzer),
        Box::new(gateway::ConflictingGatewayAnalyzer),
        Box::new(gateway::IngressGatewayPortAnalyzer),
        Box::new(gateway::SecretAnalyzer),
        Box::new(injection::Analyzer),
        Box::new(injection::ImageAnalyzer),
        Box::new(injection::ImageAutoAnalyzer),
        Box::new(multicluster::MeshNetworksAnalyzer),
        Box::new(multicluster::ServiceAnalyzer),
        Box::new(policy::AuthorizationPoliciesAnalyzer),
        Box::new(policy::ConditionAnalyzer),
        Box::new(policy::K8sGatewaySelectorAnalyzer),
        Box::new(rollout::RolloutAnalyzer),
        Box::new(service::PortNameAnalyzer),
        Box::new(serviceentry::ConflictingProtocolAnalyzer),
        Box::new(serviceentry::ProtocolAddressesAnalyzer),
        Box::new(sidecar::SelectorAnalyzer),
        Box::new(telemetry::DefaultSelectorAnalyzer),
        Box::new(telemetry::LightstepAnalyzer),
        Box::new(telemetry::ProviderAnalyzer),
        Box::new(telemetry::SelectorAnalyzer),
        Box::new(virtualservice::ConflictingMeshGatewayHostsAnalyzer),
        Box::new(virtualservice::DestinationHostAnalyzer),
        Box::new(virtualservice::DestinationRuleAnalyzer),
        Box::new(virtualservice::JwtClaimRouteAnalyzer),
        Box::new(virtualservice::GatewayAnalyzer),
    ];
    all.extend(schema::all().into_iter().map(|a| Box::new(a) as Box<dyn Analyzer>));
    all
}

/// Istio adds these to every analysis (its "internal-ingress" source): the default ingress
/// gateway's Pod and Service in `istio-system`, which gateway analyzers rely on.
pub fn implicit_resources() -> Vec<Res> {
    let port = |name: &str, port: u16, node: u16| serde_json::json!({"name": name, "nodePort": node, "port": port, "protocol": "TCP", "targetPort": port});
    let docs = [
        serde_json::json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "istio-ingressgateway-dummypod", "namespace": "istio-system", "labels": {"istio": "ingressgateway"}}, "spec": {"containers": [{"name": "istio-proxy"}]}}),
        serde_json::json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "istio-ingressgateway", "namespace": "istio-system"}, "spec": {"selector": {"istio": "ingressgateway"}, "ports": [
            port("http2", 80, 31380), port("https", 443, 31390), port("tcp", 31400, 31400), port("tls", 15443, 31447)]}}),
    ];
    docs.into_iter().filter_map(Res::from_value).collect()
}

/// Run `analyzers` over `resources` with a MeshConfig fragment (`Value::Null` for defaults).
pub fn run(analyzers: &[Box<dyn Analyzer>], resources: Vec<Res>, mesh_config: Value) -> Vec<Message> {
    let input = Input { resources, mesh_config };
    let mut out = Vec::new();
    for a in analyzers {
        a.analyze(&input, &mut out);
    }
    out
}
