//! Resources as users write them: recognising the kind, parsing into typed objects with
//! field-path errors, and telling apart what we serve, what the local platform does not use,
//! and what we do not support.

use std::fmt;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::core::ServiceSpec;
use crate::meta::ObjectMeta;
use crate::networking::{DestinationRuleSpec, GatewaySpec, ServiceEntrySpec, VirtualServiceSpec};
use crate::security::{AuthorizationPolicySpec, LocalRateLimitSpec, PeerAuthenticationSpec, RequestAuthenticationSpec};
use crate::telemetry::TelemetrySpec;
use crate::validate::{self, FieldError};

/// A Kubernetes-style object with a typed spec.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Object<S> {
    pub api_version: String,
    pub kind: String,
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: S,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Value>,
}

/// The kinds meshd stores and serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Kind {
    Service,
    VirtualService,
    DestinationRule,
    ServiceEntry,
    Gateway,
    PeerAuthentication,
    AuthorizationPolicy,
    RequestAuthentication,
    LocalRateLimit,
    Rollout,
    Telemetry,
    Sidecar,
    WorkloadEntry,
    WorkloadGroup,
    ProxyConfig,
    GatewayClass,
    KubeGateway,
    HttpRoute,
    GrpcRoute,
    TcpRoute,
    TlsRoute,
    ReferenceGrant,
}

impl Kind {
    pub const ALL: [Kind; 22] = [
        Kind::Service,
        Kind::VirtualService,
        Kind::DestinationRule,
        Kind::ServiceEntry,
        Kind::Gateway,
        Kind::PeerAuthentication,
        Kind::AuthorizationPolicy,
        Kind::RequestAuthentication,
        Kind::LocalRateLimit,
        Kind::Rollout,
        Kind::Telemetry,
        Kind::Sidecar,
        Kind::WorkloadEntry,
        Kind::WorkloadGroup,
        Kind::ProxyConfig,
        Kind::GatewayClass,
        Kind::KubeGateway,
        Kind::HttpRoute,
        Kind::GrpcRoute,
        Kind::TcpRoute,
        Kind::TlsRoute,
        Kind::ReferenceGrant,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Service => "Service",
            Kind::VirtualService => "VirtualService",
            Kind::DestinationRule => "DestinationRule",
            Kind::ServiceEntry => "ServiceEntry",
            Kind::Gateway => "Gateway",
            Kind::PeerAuthentication => "PeerAuthentication",
            Kind::AuthorizationPolicy => "AuthorizationPolicy",
            Kind::RequestAuthentication => "RequestAuthentication",
            Kind::LocalRateLimit => "LocalRateLimit",
            Kind::Rollout => "Rollout",
            Kind::Telemetry => "Telemetry",
            Kind::Sidecar => "Sidecar",
            Kind::ProxyConfig => "ProxyConfig",
            Kind::WorkloadGroup => "WorkloadGroup",
            Kind::WorkloadEntry => "WorkloadEntry",
            Kind::GatewayClass => "GatewayClass",
            Kind::KubeGateway => "Gateway",
            Kind::HttpRoute => "HTTPRoute",
            Kind::GrpcRoute => "GRPCRoute",
            Kind::TcpRoute => "TCPRoute",
            Kind::TlsRoute => "TLSRoute",
            Kind::ReferenceGrant => "ReferenceGrant",
        }
    }

    /// Lowercase plural, as kubectl prints it (`virtualservices`).
    pub fn plural(self) -> &'static str {
        match self {
            Kind::Service => "services",
            Kind::VirtualService => "virtualservices",
            Kind::DestinationRule => "destinationrules",
            Kind::ServiceEntry => "serviceentries",
            Kind::Gateway => "gateways",
            Kind::PeerAuthentication => "peerauthentications",
            Kind::AuthorizationPolicy => "authorizationpolicies",
            Kind::RequestAuthentication => "requestauthentications",
            Kind::LocalRateLimit => "localratelimits",
            Kind::Rollout => "rollouts",
            Kind::Telemetry => "telemetries",
            Kind::Sidecar => "sidecars",
            Kind::ProxyConfig => "proxyconfigs",
            Kind::WorkloadGroup => "workloadgroups",
            Kind::WorkloadEntry => "workloadentries",
            Kind::GatewayClass => "gatewayclasses",
            Kind::KubeGateway => "gateways",
            Kind::HttpRoute => "httproutes",
            Kind::GrpcRoute => "grpcroutes",
            Kind::TcpRoute => "tcproutes",
            Kind::TlsRoute => "tlsroutes",
            Kind::ReferenceGrant => "referencegrants",
        }
    }

    /// `virtualservice.networking.istio.io`, as `kubectl apply` reports it.
    pub fn qualified(self) -> &'static str {
        match self {
            Kind::Service => "service",
            Kind::VirtualService => "virtualservice.networking.istio.io",
            Kind::DestinationRule => "destinationrule.networking.istio.io",
            Kind::ServiceEntry => "serviceentry.networking.istio.io",
            Kind::Gateway => "gateway.networking.istio.io",
            Kind::PeerAuthentication => "peerauthentication.security.istio.io",
            Kind::AuthorizationPolicy => "authorizationpolicy.security.istio.io",
            Kind::RequestAuthentication => "requestauthentication.security.istio.io",
            Kind::LocalRateLimit => "localratelimit.policy.mesh.io",
            Kind::Rollout => "rollout.rollouts.mesh.io",
            Kind::Telemetry => "telemetry.telemetry.istio.io",
            Kind::Sidecar => "sidecar.networking.istio.io",
            Kind::ProxyConfig => "proxyconfig.networking.istio.io",
            Kind::WorkloadGroup => "workloadgroup.networking.istio.io",
            Kind::WorkloadEntry => "workloadentry.networking.istio.io",
            Kind::GatewayClass => "gatewayclass.gateway.networking.k8s.io",
            Kind::KubeGateway => "gateway.gateway.networking.k8s.io",
            Kind::HttpRoute => "httproute.gateway.networking.k8s.io",
            Kind::GrpcRoute => "grpcroute.gateway.networking.k8s.io",
            Kind::TcpRoute => "tcproute.gateway.networking.k8s.io",
            Kind::TlsRoute => "tlsroute.gateway.networking.k8s.io",
            Kind::ReferenceGrant => "referencegrant.gateway.networking.k8s.io",
        }
    }

    fn group(self) -> &'static str {
        match self {
            Kind::Service => "",
            Kind::VirtualService
            | Kind::DestinationRule
            | Kind::ServiceEntry
            | Kind::Gateway
            | Kind::Sidecar
            | Kind::WorkloadEntry
            | Kind::WorkloadGroup
            | Kind::ProxyConfig => "networking.istio.io",
            Kind::PeerAuthentication | Kind::AuthorizationPolicy | Kind::RequestAuthentication => "security.istio.io",
            Kind::LocalRateLimit => crate::security::MESH_POLICY_GROUP,
            Kind::Rollout => crate::rollout::GROUP,
            Kind::Telemetry => "telemetry.istio.io",
            k if k.is_gateway_api() => crate::gateway_api::GROUP,
            _ => "",
        }
    }

    /// A kind whose objects belong to no namespace on Kubernetes (GatewayClass).
    pub fn is_cluster_scoped(self) -> bool {
        self == Kind::GatewayClass
    }

    /// A Kubernetes Gateway API kind (`gateway.networking.k8s.io`).
    pub fn is_gateway_api(self) -> bool {
        matches!(
            self,
            Kind::GatewayClass
                | Kind::KubeGateway
                | Kind::HttpRoute
                | Kind::GrpcRoute
                | Kind::TcpRoute
                | Kind::TlsRoute
                | Kind::ReferenceGrant
        )
    }

    fn versions(self) -> &'static [&'static str] {
        match self {
            Kind::Service => &["v1"],
            Kind::VirtualService
            | Kind::DestinationRule
            | Kind::ServiceEntry
            | Kind::Gateway
            | Kind::Sidecar
            | Kind::WorkloadEntry
            | Kind::WorkloadGroup => &["v1", "v1beta1", "v1alpha3"],
            Kind::ProxyConfig => &["v1beta1"],
            Kind::PeerAuthentication | Kind::AuthorizationPolicy | Kind::RequestAuthentication => &["v1", "v1beta1"],
            Kind::LocalRateLimit | Kind::Rollout => &["v1alpha1"],
            Kind::Telemetry => &["v1", "v1alpha1"],
            Kind::GatewayClass | Kind::KubeGateway | Kind::HttpRoute | Kind::GrpcRoute => &["v1", "v1beta1"],
            Kind::ReferenceGrant => &["v1beta1", "v1alpha2"],
            Kind::TcpRoute | Kind::TlsRoute => &["v1alpha2", "v1alpha3"],
        }
    }

    /// The apiVersion written when we create an object of this kind.
    pub fn default_api_version(self) -> &'static str {
        match self {
            Kind::Service => "v1",
            Kind::VirtualService
            | Kind::DestinationRule
            | Kind::ServiceEntry
            | Kind::Gateway
            | Kind::Sidecar
            | Kind::WorkloadEntry
            | Kind::WorkloadGroup => "networking.istio.io/v1",
            Kind::ProxyConfig => "networking.istio.io/v1beta1",
            Kind::PeerAuthentication | Kind::AuthorizationPolicy | Kind::RequestAuthentication => {
                "security.istio.io/v1"
            }
            Kind::LocalRateLimit => "policy.mesh.io/v1alpha1",
            Kind::Rollout => "rollouts.mesh.io/v1alpha1",
            Kind::Telemetry => "telemetry.istio.io/v1",
            Kind::GatewayClass | Kind::KubeGateway | Kind::HttpRoute | Kind::GrpcRoute => {
                "gateway.networking.k8s.io/v1"
            }
            Kind::ReferenceGrant => "gateway.networking.k8s.io/v1beta1",
            Kind::TcpRoute | Kind::TlsRoute => "gateway.networking.k8s.io/v1alpha2",
        }
    }

    /// Parse a kind as typed on the command line: singular, plural, short name, any case.
    pub fn from_cli(s: &str) -> Option<Kind> {
        let s = s.to_ascii_lowercase();
        if let Some(("gateway" | "gateways", group)) = s.split_once('.')
            && group == crate::gateway_api::GROUP
        {
            return Some(Kind::KubeGateway);
        }
        let s = s.split('.').next().unwrap_or("");
        match s {
            "service" | "services" | "svc" => Some(Kind::Service),
            "virtualservice" | "virtualservices" | "vs" => Some(Kind::VirtualService),
            "destinationrule" | "destinationrules" | "dr" => Some(Kind::DestinationRule),
            "serviceentry" | "serviceentries" | "se" => Some(Kind::ServiceEntry),
            "gateway" | "gateways" | "gw" => Some(Kind::Gateway),
            "peerauthentication" | "peerauthentications" | "pa" => Some(Kind::PeerAuthentication),
            "authorizationpolicy" | "authorizationpolicies" | "ap" => Some(Kind::AuthorizationPolicy),
            "requestauthentication" | "requestauthentications" | "ra" => Some(Kind::RequestAuthentication),
            "localratelimit" | "localratelimits" | "rl" => Some(Kind::LocalRateLimit),
            "rollout" | "rollouts" | "ro" => Some(Kind::Rollout),
            "telemetry" | "telemetries" => Some(Kind::Telemetry),
            "sidecar" | "sidecars" => Some(Kind::Sidecar),
            "proxyconfig" | "proxyconfigs" => Some(Kind::ProxyConfig),
            "workloadgroup" | "workloadgroups" | "wg" => Some(Kind::WorkloadGroup),
            "workloadentry" | "workloadentries" | "we" => Some(Kind::WorkloadEntry),
            "gatewayclass" | "gatewayclasses" | "gc" => Some(Kind::GatewayClass),
            "httproute" | "httproutes" => Some(Kind::HttpRoute),
            "grpcroute" | "grpcroutes" => Some(Kind::GrpcRoute),
            "tcproute" | "tcproutes" => Some(Kind::TcpRoute),
            "tlsroute" | "tlsroutes" => Some(Kind::TlsRoute),
            "referencegrant" | "referencegrants" => Some(Kind::ReferenceGrant),
            _ => None,
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A resource meshd serves.
// Config objects live in maps off the data path; boxing them would buy nothing measurable.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Resource {
    Service(Object<ServiceSpec>),
    VirtualService(Object<VirtualServiceSpec>),
    DestinationRule(Object<DestinationRuleSpec>),
    ServiceEntry(Object<ServiceEntrySpec>),
    Gateway(Object<GatewaySpec>),
    PeerAuthentication(Object<PeerAuthenticationSpec>),
    AuthorizationPolicy(Object<AuthorizationPolicySpec>),
    RequestAuthentication(Object<RequestAuthenticationSpec>),
    LocalRateLimit(Object<LocalRateLimitSpec>),
    Rollout(Object<crate::rollout::RolloutSpec>),
    Telemetry(Object<TelemetrySpec>),
    Sidecar(Object<crate::networking::SidecarSpec>),
    ProxyConfig(Object<crate::networking::ProxyConfigSpec>),
    WorkloadGroup(Object<crate::networking::WorkloadGroupSpec>),
    WorkloadEntry(Object<crate::networking::WorkloadEntrySpec>),
    GatewayClass(Object<crate::gateway_api::GatewayClassSpec>),
    KubeGateway(Object<crate::gateway_api::KubeGatewaySpec>),
    HttpRoute(Object<crate::gateway_api::HttpRouteSpec>),
    GrpcRoute(Object<crate::gateway_api::GrpcRouteSpec>),
    TcpRoute(Object<crate::gateway_api::L4RouteSpec>),
    TlsRoute(Object<crate::gateway_api::L4RouteSpec>),
    ReferenceGrant(Object<crate::gateway_api::ReferenceGrantSpec>),
}

impl Resource {
    pub fn kind(&self) -> Kind {
        match self {
            Resource::Service(_) => Kind::Service,
            Resource::VirtualService(_) => Kind::VirtualService,
            Resource::DestinationRule(_) => Kind::DestinationRule,
            Resource::ServiceEntry(_) => Kind::ServiceEntry,
            Resource::Gateway(_) => Kind::Gateway,
            Resource::PeerAuthentication(_) => Kind::PeerAuthentication,
            Resource::AuthorizationPolicy(_) => Kind::AuthorizationPolicy,
            Resource::RequestAuthentication(_) => Kind::RequestAuthentication,
            Resource::LocalRateLimit(_) => Kind::LocalRateLimit,
            Resource::Rollout(_) => Kind::Rollout,
            Resource::Telemetry(_) => Kind::Telemetry,
            Resource::Sidecar(_) => Kind::Sidecar,
            Resource::ProxyConfig(_) => Kind::ProxyConfig,
            Resource::WorkloadGroup(_) => Kind::WorkloadGroup,
            Resource::WorkloadEntry(_) => Kind::WorkloadEntry,
            Resource::GatewayClass(_) => Kind::GatewayClass,
            Resource::KubeGateway(_) => Kind::KubeGateway,
            Resource::HttpRoute(_) => Kind::HttpRoute,
            Resource::GrpcRoute(_) => Kind::GrpcRoute,
            Resource::TcpRoute(_) => Kind::TcpRoute,
            Resource::TlsRoute(_) => Kind::TlsRoute,
            Resource::ReferenceGrant(_) => Kind::ReferenceGrant,
        }
    }

    pub fn meta(&self) -> &ObjectMeta {
        match self {
            Resource::Service(o) => &o.metadata,
            Resource::VirtualService(o) => &o.metadata,
            Resource::DestinationRule(o) => &o.metadata,
            Resource::ServiceEntry(o) => &o.metadata,
            Resource::Gateway(o) => &o.metadata,
            Resource::PeerAuthentication(o) => &o.metadata,
            Resource::AuthorizationPolicy(o) => &o.metadata,
            Resource::RequestAuthentication(o) => &o.metadata,
            Resource::LocalRateLimit(o) => &o.metadata,
            Resource::Rollout(o) => &o.metadata,
            Resource::Telemetry(o) => &o.metadata,
            Resource::Sidecar(o) => &o.metadata,
            Resource::ProxyConfig(o) => &o.metadata,
            Resource::WorkloadGroup(o) => &o.metadata,
            Resource::WorkloadEntry(o) => &o.metadata,
            Resource::GatewayClass(o) => &o.metadata,
            Resource::KubeGateway(o) => &o.metadata,
            Resource::HttpRoute(o) => &o.metadata,
            Resource::GrpcRoute(o) => &o.metadata,
            Resource::TcpRoute(o) => &o.metadata,
            Resource::TlsRoute(o) => &o.metadata,
            Resource::ReferenceGrant(o) => &o.metadata,
        }
    }

    pub fn meta_mut(&mut self) -> &mut ObjectMeta {
        match self {
            Resource::Service(o) => &mut o.metadata,
            Resource::VirtualService(o) => &mut o.metadata,
            Resource::DestinationRule(o) => &mut o.metadata,
            Resource::ServiceEntry(o) => &mut o.metadata,
            Resource::Gateway(o) => &mut o.metadata,
            Resource::PeerAuthentication(o) => &mut o.metadata,
            Resource::AuthorizationPolicy(o) => &mut o.metadata,
            Resource::RequestAuthentication(o) => &mut o.metadata,
            Resource::LocalRateLimit(o) => &mut o.metadata,
            Resource::Rollout(o) => &mut o.metadata,
            Resource::Telemetry(o) => &mut o.metadata,
            Resource::Sidecar(o) => &mut o.metadata,
            Resource::ProxyConfig(o) => &mut o.metadata,
            Resource::WorkloadGroup(o) => &mut o.metadata,
            Resource::WorkloadEntry(o) => &mut o.metadata,
            Resource::GatewayClass(o) => &mut o.metadata,
            Resource::KubeGateway(o) => &mut o.metadata,
            Resource::HttpRoute(o) => &mut o.metadata,
            Resource::GrpcRoute(o) => &mut o.metadata,
            Resource::TcpRoute(o) => &mut o.metadata,
            Resource::TlsRoute(o) => &mut o.metadata,
            Resource::ReferenceGrant(o) => &mut o.metadata,
        }
    }

    pub fn name(&self) -> &str {
        &self.meta().name
    }

    pub fn namespace(&self) -> &str {
        self.meta().namespace_or_default()
    }

    pub fn key(&self) -> Key {
        Key { kind: self.kind(), namespace: self.namespace().to_string(), name: self.name().to_string() }
    }

    /// The same resource with its spec and metadata compared, ignoring server-set fields.
    pub fn same_content(&self, other: &Resource) -> bool {
        let strip = |r: &Resource| {
            let mut r = r.clone();
            let m = r.meta_mut();
            m.resource_version = None;
            m.generation = None;
            m.creation_timestamp = None;
            m.uid = None;
            m.managed_fields = None;
            r
        };
        strip(self) == strip(other)
    }

    /// Validate the whole resource; every problem is reported, not just the first.
    pub fn validate(&self) -> Vec<FieldError> {
        validate::resource(self)
    }

    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

/// Identity of a stored resource.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Key {
    pub kind: Kind,
    pub namespace: String,
    pub name: String,
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}/{}", self.kind, self.namespace, self.name)
    }
}

/// What a YAML document turned out to be.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Parsed {
    /// A kind meshd serves, parsed and with its namespace filled in.
    Supported(Resource),
    /// A Kubernetes kind that only matters on a cluster (Deployment, ServiceAccount, ...).
    NotUsedLocally { kind: String, name: String },
    /// A kind Istio has that this mesh does not serve yet.
    Unsupported { api_version: String, kind: String, name: String },
}

/// A document that could not be turned into a resource, with every problem found.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub struct ResourceError {
    /// `VirtualService default/reviews`, or `document 3` when even the kind is unknown.
    pub resource: String,
    pub errors: Vec<FieldError>,
}

impl fmt::Display for ResourceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.resource)?;
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl ResourceError {
    fn one(resource: String, path: &str, message: impl Into<String>) -> Self {
        ResourceError { resource, errors: vec![FieldError::new(path, message)] }
    }
}

/// Kubernetes kinds that only mean something on a cluster, by API group.
const KUBE_KINDS: &[(&str, &[&str])] = &[
    (
        "",
        &[
            "Pod",
            "ServiceAccount",
            "ConfigMap",
            "Secret",
            "Namespace",
            "Endpoints",
            "PersistentVolumeClaim",
            "PersistentVolume",
            "ReplicationController",
            "LimitRange",
            "ResourceQuota",
            "Node",
            "Event",
            "List",
        ],
    ),
    ("apps", &["Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "ControllerRevision"]),
    ("batch", &["Job", "CronJob"]),
    ("rbac.authorization.k8s.io", &["Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding"]),
    ("networking.k8s.io", &["Ingress", "IngressClass", "NetworkPolicy"]),
    ("policy", &["PodDisruptionBudget"]),
    ("autoscaling", &["HorizontalPodAutoscaler"]),
    ("storage.k8s.io", &["StorageClass", "VolumeAttachment", "CSIDriver"]),
    ("apiextensions.k8s.io", &["CustomResourceDefinition"]),
    (
        "admissionregistration.k8s.io",
        &[
            "MutatingWebhookConfiguration",
            "ValidatingWebhookConfiguration",
            "ValidatingAdmissionPolicy",
            "ValidatingAdmissionPolicyBinding",
        ],
    ),
    ("discovery.k8s.io", &["EndpointSlice"]),
    ("coordination.k8s.io", &["Lease"]),
    ("scheduling.k8s.io", &["PriorityClass"]),
    ("certificates.k8s.io", &["CertificateSigningRequest"]),
];

/// Istio kinds (and Gateway API kinds) we recognise but do not serve yet.
const ISTIO_GROUPS: &[&str] = &[
    "networking.istio.io",
    "security.istio.io",
    "telemetry.istio.io",
    "extensions.istio.io",
    "install.istio.io",
    "gateway.networking.k8s.io",
    "gateway.networking.x-k8s.io",
];

const ISTIO_KINDS: &[&str] = &[
    // Gateway API's Gateway (gateway.networking.k8s.io); Istio's own is served.
    "Gateway",
    "EnvoyFilter",
    "ProxyConfig",
    "WasmPlugin",
    "IstioOperator",
    "HTTPRoute",
    "GRPCRoute",
    "TCPRoute",
    "TLSRoute",
    "UDPRoute",
    "ReferenceGrant",
    "GatewayClass",
    "BackendTLSPolicy",
    "ListenerSet",
    "XListenerSet",
    "BackendTrafficPolicy",
    "XBackendTrafficPolicy",
    "InferencePool",
    "ServiceImport",
    "ServiceExport",
];

/// Parse every YAML document of a file into JSON values (empty documents are skipped).
/// The parser's budget is raised from its defaults (1,024 documents, 250,000 nodes) so a whole
/// mesh's config fits in one file, and still bounded against YAML bombs.
pub fn parse_yaml_stream(text: &str) -> Result<Vec<Value>, String> {
    // Big streams are parsed in parallel, split at document markers: a `---` line at column 0
    // always starts a document in YAML (it cannot occur inside a scalar). On any error the whole
    // stream is parsed again in one piece, so the message and its line numbers are exact.
    const PARALLEL_ABOVE: usize = 256 * 1024;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(8);
    if text.len() > PARALLEL_ABOVE && threads > 1 && !text.lines().any(|l| l.starts_with('%')) {
        let chunks = split_documents(text, text.len() / threads);
        if chunks.len() > 1 {
            let parsed: Vec<Result<Vec<Value>, String>> = std::thread::scope(|s| {
                let handles: Vec<_> = chunks.iter().map(|c| s.spawn(move || parse_yaml_piece(c))).collect();
                handles.into_iter().map(|h| h.join().unwrap_or_else(|_| Err("parser panicked".into()))).collect()
            });
            if parsed.iter().all(Result::is_ok) {
                return Ok(parsed.into_iter().flat_map(|r| r.unwrap_or_default()).collect());
            }
        }
    }
    parse_yaml_piece(text)
}

/// Cut a YAML stream at its document markers (`---` at the start of a line, then whitespace or
/// the end: YAML allows that nowhere but between documents), each piece at least `min_len`
/// bytes where markers allow; pieces with nothing but a marker are dropped. `min_len` 0 gives
/// one piece per document.
pub fn split_documents(text: &str, min_len: usize) -> Vec<&str> {
    let mut cuts = vec![0];
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let marker = line.strip_prefix("---").is_some_and(|r| r.is_empty() || r.starts_with([' ', '\t', '\r', '\n']));
        if marker && offset > 0 && offset - cuts.last().copied().unwrap_or(0) >= min_len {
            cuts.push(offset);
        }
        offset += line.len();
    }
    cuts.push(text.len());
    cuts.windows(2)
        .map(|w| &text[w[0]..w[1]])
        .filter(|d| !d.trim().trim_start_matches("---").trim().is_empty())
        .collect()
}

fn parse_yaml_piece(text: &str) -> Result<Vec<Value>, String> {
    let mut budget = serde_saphyr::Budget::default();
    budget.max_documents = 200_000;
    budget.max_nodes = 20_000_000;
    budget.max_events = 50_000_000;
    let mut options = serde_saphyr::Options::default();
    options.budget = Some(budget);
    serde_saphyr::from_multiple_with_options::<Value>(text, options)
        .map(|docs| docs.into_iter().filter(|d| !d.is_null()).collect())
        .map_err(|e| e.to_string())
}

/// Turn one document into a typed resource. `default_namespace` fills a missing namespace.
pub fn parse_document(doc: Value, default_namespace: &str, index: usize) -> Result<Parsed, ResourceError> {
    let doc_name = format!("document {}", index + 1);
    let Value::Object(map) = &doc else {
        return Err(ResourceError::one(
            doc_name,
            "",
            "a resource must be a mapping with apiVersion, kind and metadata",
        ));
    };
    let kind = match map.get("kind") {
        Some(Value::String(k)) if !k.is_empty() => k.clone(),
        _ => return Err(ResourceError::one(doc_name, "kind", "missing or not a string")),
    };
    let api_version = match map.get("apiVersion") {
        Some(Value::String(v)) if !v.is_empty() => v.clone(),
        _ => return Err(ResourceError::one(format!("{kind} ({doc_name})"), "apiVersion", "missing or not a string")),
    };
    let name = map.get("metadata").and_then(|m| m.get("name")).and_then(Value::as_str).unwrap_or("").to_string();
    let namespace = map
        .get("metadata")
        .and_then(|m| m.get("namespace"))
        .and_then(Value::as_str)
        .unwrap_or(default_namespace)
        .to_string();
    let label = if name.is_empty() { format!("{kind} ({doc_name})") } else { format!("{kind} {namespace}/{name}") };
    let (group, version) = match api_version.rsplit_once('/') {
        Some((g, v)) => (g, v),
        None => ("", api_version.as_str()),
    };

    let served = Kind::ALL.into_iter().find(|k| k.as_str() == kind && k.group() == group);
    let Some(k) = served else {
        if let Some((_, kinds)) = KUBE_KINDS.iter().find(|(g, _)| *g == group) {
            if kinds.contains(&kind.as_str()) {
                return Ok(Parsed::NotUsedLocally { kind, name });
            }
            return Err(ResourceError::one(label, "kind", format!("unknown kind {kind} in {api_version}")));
        }
        if ISTIO_GROUPS.contains(&group) {
            if ISTIO_KINDS.contains(&kind.as_str()) {
                return Ok(Parsed::Unsupported { api_version, kind, name });
            }
            return Err(ResourceError::one(label, "kind", format!("unknown kind {kind} in {api_version}")));
        }
        // Another project's custom resource (cert-manager, ...): not ours to judge.
        return Ok(Parsed::Unsupported { api_version, kind, name });
    };
    if !k.versions().contains(&version) {
        return Err(ResourceError::one(
            label,
            "apiVersion",
            format!(
                "{kind} is not served in {api_version}; use one of {}",
                k.versions()
                    .iter()
                    .map(|v| if group.is_empty() { v.to_string() } else { format!("{group}/{v}") })
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }
    let mut resource = match k {
        Kind::Service => Resource::Service(typed(doc, &label)?),
        Kind::VirtualService => Resource::VirtualService(typed(doc, &label)?),
        Kind::DestinationRule => Resource::DestinationRule(typed(doc, &label)?),
        Kind::ServiceEntry => Resource::ServiceEntry(typed(doc, &label)?),
        Kind::Gateway => Resource::Gateway(typed(doc, &label)?),
        Kind::PeerAuthentication => Resource::PeerAuthentication(typed(doc, &label)?),
        Kind::AuthorizationPolicy => Resource::AuthorizationPolicy(typed(doc, &label)?),
        Kind::RequestAuthentication => Resource::RequestAuthentication(typed(doc, &label)?),
        Kind::LocalRateLimit => Resource::LocalRateLimit(typed(doc, &label)?),
        Kind::Rollout => Resource::Rollout(typed(doc, &label)?),
        Kind::Telemetry => Resource::Telemetry(typed(doc, &label)?),
        Kind::Sidecar => Resource::Sidecar(typed(doc, &label)?),
        Kind::ProxyConfig => Resource::ProxyConfig(typed(doc, &label)?),
        Kind::WorkloadGroup => Resource::WorkloadGroup(typed(doc, &label)?),
        Kind::WorkloadEntry => Resource::WorkloadEntry(typed(doc, &label)?),
        Kind::GatewayClass => Resource::GatewayClass(typed(doc, &label)?),
        Kind::KubeGateway => Resource::KubeGateway(typed(doc, &label)?),
        Kind::HttpRoute => Resource::HttpRoute(typed(doc, &label)?),
        Kind::GrpcRoute => Resource::GrpcRoute(typed(doc, &label)?),
        Kind::TcpRoute => Resource::TcpRoute(typed(doc, &label)?),
        Kind::TlsRoute => Resource::TlsRoute(typed(doc, &label)?),
        Kind::ReferenceGrant => Resource::ReferenceGrant(typed(doc, &label)?),
    };
    resource.meta_mut().namespace = Some(namespace);
    let errors = resource.validate();
    if !errors.is_empty() {
        return Err(ResourceError { resource: label, errors });
    }
    Ok(Parsed::Supported(resource))
}

/// A resource is read by its `kind` and `apiVersion` (as [`parse_document`] reads it, without
/// validation): kinds whose specs look alike (TCPRoute and TLSRoute, an empty spec) are never
/// mistaken for one another.
impl<'de> Deserialize<'de> for Resource {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Resource, D::Error> {
        use serde::de::Error;
        let doc = Value::deserialize(d)?;
        let kind = doc.get("kind").and_then(Value::as_str).unwrap_or_default();
        let api_version = doc.get("apiVersion").and_then(Value::as_str).unwrap_or_default();
        let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
        let Some(k) = Kind::ALL.into_iter().find(|k| k.as_str() == kind && k.group() == group) else {
            return Err(D::Error::custom(format!("not a served kind: {kind} in {api_version:?}")));
        };
        let label = kind.to_string();
        let r = match k {
            Kind::Service => typed(doc, &label).map(Resource::Service),
            Kind::VirtualService => typed(doc, &label).map(Resource::VirtualService),
            Kind::DestinationRule => typed(doc, &label).map(Resource::DestinationRule),
            Kind::ServiceEntry => typed(doc, &label).map(Resource::ServiceEntry),
            Kind::Gateway => typed(doc, &label).map(Resource::Gateway),
            Kind::PeerAuthentication => typed(doc, &label).map(Resource::PeerAuthentication),
            Kind::AuthorizationPolicy => typed(doc, &label).map(Resource::AuthorizationPolicy),
            Kind::RequestAuthentication => typed(doc, &label).map(Resource::RequestAuthentication),
            Kind::LocalRateLimit => typed(doc, &label).map(Resource::LocalRateLimit),
            Kind::Rollout => typed(doc, &label).map(Resource::Rollout),
            Kind::Telemetry => typed(doc, &label).map(Resource::Telemetry),
            Kind::Sidecar => typed(doc, &label).map(Resource::Sidecar),
            Kind::ProxyConfig => typed(doc, &label).map(Resource::ProxyConfig),
            Kind::WorkloadEntry => typed(doc, &label).map(Resource::WorkloadEntry),
            Kind::WorkloadGroup => typed(doc, &label).map(Resource::WorkloadGroup),
            Kind::GatewayClass => typed(doc, &label).map(Resource::GatewayClass),
            Kind::KubeGateway => typed(doc, &label).map(Resource::KubeGateway),
            Kind::HttpRoute => typed(doc, &label).map(Resource::HttpRoute),
            Kind::GrpcRoute => typed(doc, &label).map(Resource::GrpcRoute),
            Kind::TcpRoute => typed(doc, &label).map(Resource::TcpRoute),
            Kind::TlsRoute => typed(doc, &label).map(Resource::TlsRoute),
            Kind::ReferenceGrant => typed(doc, &label).map(Resource::ReferenceGrant),
        };
        r.map_err(|e| D::Error::custom(e.to_string()))
    }
}

fn typed<S: DeserializeOwned + Default>(doc: Value, label: &str) -> Result<Object<S>, ResourceError> {
    serde_path_to_error::deserialize::<_, Object<S>>(doc).map_err(|e| {
        let path = e.path().to_string();
        let path = if path == "." { String::new() } else { path };
        let msg = e.inner().to_string();
        // serde_json says "unknown field `x`, expected one of ..."; keep it, it lists the valid names.
        ResourceError::one(label.to_string(), &path, msg)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn big_streams_parse_in_parallel_to_the_same_documents() {
        let mut text = String::from("# a comment\n");
        for i in 0..3000 {
            text.push_str(&format!(
                "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: cm{i}}}\ndata:\n  script: |\n    echo {i}\n    echo '  --- not a marker'\n"
            ));
        }
        assert!(text.len() > 256 * 1024);
        let parallel = parse_yaml_stream(&text).expect("parallel");
        let whole = parse_yaml_piece(&text).expect("whole");
        assert_eq!(parallel.len(), 3000);
        assert_eq!(parallel, whole);
        // An error anywhere is reported from the whole stream, with its real line number.
        let broken = format!("{text}---\nkind: [unclosed\n");
        let e = parse_yaml_stream(&broken).expect_err("malformed");
        assert_eq!(e, parse_yaml_piece(&broken).expect_err("malformed"));
    }

    fn parse(yaml: &str) -> Result<Parsed, ResourceError> {
        let docs = parse_yaml_stream(yaml).map_err(|e| ResourceError::one("yaml".into(), "", e))?;
        parse_document(docs.into_iter().next().unwrap_or(Value::Null), "default", 0)
    }

    #[test]
    fn unknown_field_names_path() {
        let err = parse(
            "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: r}\nspec:\n  hosts: [r]\n  http:\n  - route:\n    - destination: {host: r}\n      wieght: 3\n",
        )
        .expect_err("must fail");
        assert_eq!(err.resource, "VirtualService default/r");
        assert_eq!(err.errors[0].path, "spec.http[0].route[0].wieght");
        assert!(err.errors[0].message.contains("unknown field `wieght`"), "{err}");
    }

    #[test]
    fn large_streams_parse() {
        let doc = "---\napiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec: {ports: [{port: 80}]}\n";
        let docs = parse_yaml_stream(&doc.repeat(5000)).expect("5000 documents in one file");
        assert_eq!(docs.len(), 5000);
    }

    #[test]
    fn kinds_are_classified() {
        assert!(matches!(
            parse("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\n"),
            Ok(Parsed::NotUsedLocally { .. })
        ));
        assert!(matches!(
            parse("apiVersion: networking.istio.io/v1\nkind: EnvoyFilter\nmetadata: {name: s}\n"),
            Ok(Parsed::Unsupported { .. })
        ));
        assert!(matches!(
            parse("apiVersion: example.com/v1\nkind: Foo\nmetadata: {name: f}\n"),
            Ok(Parsed::Unsupported { .. })
        ));
        assert!(parse("apiVersion: v1\nkind: Widget\nmetadata: {name: f}\n").is_err());
        assert!(parse("apiVersion: networking.istio.io/v1\nkind: VirtualServce\nmetadata: {name: f}\n").is_err());
        assert!(parse("apiVersion: networking.istio.io/v2\nkind: VirtualService\nmetadata: {name: f}\n").is_err());
    }
}
