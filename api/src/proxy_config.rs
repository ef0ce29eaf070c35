//! What a proxy holds: the model meshd's translator produces and the proxy compiles.
//! Plain data, serialisable, one value per config type so each is versioned and acknowledged
//! on its own (like xDS's RDS, CDS and EDS).

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

/// The config types a proxy acknowledges separately.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConfigType {
    Routes,
    Clusters,
    Endpoints,
    Listeners,
}

impl ConfigType {
    pub const ALL: [ConfigType; 4] =
        [ConfigType::Routes, ConfigType::Clusters, ConfigType::Endpoints, ConfigType::Listeners];

    pub fn as_str(self) -> &'static str {
        match self {
            ConfigType::Routes => "routes",
            ConfigType::Clusters => "clusters",
            ConfigType::Endpoints => "endpoints",
            ConfigType::Listeners => "listeners",
        }
    }
}

impl fmt::Display for ConfigType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Everything a proxy needs, as separately versioned parts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProxyConfig {
    pub routes: Routes,
    pub clusters: Clusters,
    pub endpoints: Endpoints,
    #[serde(default)]
    pub listeners: Listeners,
}

/// The inbound side of a proxy: how each workload port accepts mesh traffic, and the
/// authorization policies that apply to this workload.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Listeners {
    pub inbound: Vec<InboundListener>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub policies: Vec<AuthzPolicy>,
    /// RequestAuthentication: the JWT issuers this workload accepts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub jwt: Vec<JwtProvider>,
    /// LocalRateLimit for this workload's inbound requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<RateLimit>,
    /// Write an access log line per request (mesh config `accessLogFile`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub access_log: bool,
    /// Where to send spans and how many requests to trace (mesh config `defaultConfig.tracing`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracing: Option<Tracing>,
    /// How request paths are normalized before routing and policy, on every listener (mesh
    /// config `pathNormalization`).
    #[serde(default, skip_serializing_if = "PathNormalization::is_default")]
    pub path_normalization: PathNormalization,
    /// How long a downstream connection may stay open with no request in flight, in
    /// milliseconds (Istio's `ISTIO_META_IDLE_TIMEOUT`); None: the proxy's default (1 h).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_timeout_ms: Option<u64>,
    /// For a gateway proxy: its Gateways' servers that take TLS, by port.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gateway_tls: Vec<GatewayTls>,
    /// Listeners a Sidecar asks for on an address of their own (`bind`, or capture `NONE`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bound: Vec<BoundListener>,
}

/// A listener a Sidecar asks the proxy to open at an address of its own: an `ingress` one
/// (its workload port's `InboundListener` says where it goes) or an `egress` one (for the
/// Sidecar's hosts on that port).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct BoundListener {
    /// An IP address, `unix:///path` (egress only), or None: the workload's inbound address
    /// (ingress) or 127.0.0.1 (egress).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bind: Option<String>,
    pub port: u16,
    pub direction: Direction,
    /// Raw TCP; else HTTP.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub tcp: bool,
    /// Egress TCP: the service host a connection goes to (the one service of the Sidecar's
    /// hosts on this port).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Inbound,
    Outbound,
}

/// A Gateway server that takes TLS: which certificate it shows for which SNI names, and what it
/// asks of clients.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GatewayTls {
    pub port: u16,
    /// `namespace/gateway servers[i]`, for logs and errors.
    pub name: String,
    /// The server's hosts without namespace: the SNI names it serves (`*.example.com`; `*`: any).
    pub hosts: Vec<String>,
    pub mode: GatewayTlsMode,
    /// The certificate, key and client CA (SIMPLE, MUTUAL, OPTIONAL_MUTUAL).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<TlsCredential>,
    /// More certificates and keys (`credentialNames`/`tlsCertificates` beyond the first, e.g.
    /// RSA beside ECDSA): each handshake gets the first whose key the client can verify.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub more_credentials: Vec<TlsCredential>,
    /// `TLSV1_2` / `TLSV1_3` (Istio's names); None: rustls' defaults (1.2 and 1.3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_version: Option<String>,
    /// TLS 1.2 cipher suites (OpenSSL names); empty: the defaults.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cipher_suites: Vec<String>,
    /// MUTUAL: a client certificate must carry one of these SANs (empty: any the CA signed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subject_alt_names: Vec<String>,
    /// MUTUAL: the client certificate's SubjectPublicKeyInfo SHA-256 must be one of these
    /// (base64), and/or the certificate's SHA-256 one of these (hex, colons allowed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub verify_certificate_spki: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub verify_certificate_hash: Vec<String>,
    /// Key-exchange groups (Envoy's names: `X25519`, `P-256`, `P-384`); empty: the defaults.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ecdh_curves: Vec<String>,
    /// Why this server cannot serve (its credential is missing or broken): its handshakes fail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum GatewayTlsMode {
    /// Not terminated: routed by SNI (VirtualService `tls` rules) and relayed as it is.
    Passthrough,
    /// Not terminated: the SNI names the cluster (`outbound_.PORT_.SUBSET_.HOST`).
    AutoPassthrough,
    Simple,
    Mutual,
    OptionalMutual,
    /// The mesh's mTLS: the gateway's own workload certificate, clients from the mesh.
    IstioMutual,
}

impl GatewayTlsMode {
    pub fn parse(s: &str) -> Option<GatewayTlsMode> {
        Some(match s {
            "PASSTHROUGH" => GatewayTlsMode::Passthrough,
            "AUTO_PASSTHROUGH" => GatewayTlsMode::AutoPassthrough,
            "SIMPLE" => GatewayTlsMode::Simple,
            "MUTUAL" => GatewayTlsMode::Mutual,
            "OPTIONAL_MUTUAL" => GatewayTlsMode::OptionalMutual,
            "ISTIO_MUTUAL" => GatewayTlsMode::IstioMutual,
            _ => return None,
        })
    }

    /// Whether the gateway terminates TLS in this mode.
    pub fn terminates(self) -> bool {
        !matches!(self, GatewayTlsMode::Passthrough | GatewayTlsMode::AutoPassthrough)
    }
}

/// PEM text given inline (a credential meshd holds), or a file on the proxy's machine (Istio's
/// `serverCertificate`, `caCertificates`, ... paths).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Pem {
    Inline(String),
    File(String),
}

/// A certificate chain and key to present, and the CA to check the other side against.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TlsCredential {
    /// Where it came from (`credential istio-system/httpbin-credential`, or `files`).
    pub source: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_chain: Option<Pem>,
    /// Never shown: the proxy's config dump redacts it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_key: Option<Pem>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<Pem>,
    /// Revoked client certificates (a PEM CRL): a server's `caCrl`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crl: Option<Pem>,
}

/// DestinationRule `tls` SIMPLE or MUTUAL: the proxy opens TLS to an endpoint outside the mesh
/// (the app speaks plain text to the proxy).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OriginateTls {
    /// MUTUAL: present `credential`'s certificate.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub mutual: bool,
    /// The SNI sent and the name the server's certificate must carry (unless `subject_alt_names`).
    pub sni: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subject_alt_names: Vec<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub insecure_skip_verify: bool,
    /// The CA to verify the server with (None: the Mozilla roots), and the client certificate.
    #[serde(default)]
    pub credential: TlsCredential,
    /// Why it cannot be used (a credential that is missing): connections to the cluster fail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Istio's `meshConfig.pathNormalization` and Envoy's `path_with_escaped_slashes_action`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PathNormalization {
    #[serde(default)]
    pub normalization: Normalization,
    #[serde(default)]
    pub escaped_slashes: EscapedSlashes,
}

impl PathNormalization {
    pub fn is_default(&self) -> bool {
        *self == PathNormalization::default()
    }
}

/// Istio's `pathNormalization.normalization` values.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Normalization {
    /// Paths go through unchanged (not recommended: policy judges what the app may read otherwise).
    None,
    /// RFC 3986 normalization (Envoy's `normalize_path`): percent-encoded unreserved
    /// characters decoded, other escapes upper-cased, `\` made `/`, dot segments removed.
    #[default]
    Base,
    /// BASE, then runs of `/` merged into one.
    MergeSlashes,
    /// MERGE_SLASHES after decoding `%2F` and `%5C` (case-insensitive) into `/`.
    DecodeAndMergeSlashes,
}

impl Normalization {
    pub const NAMES: [&str; 5] = ["NONE", "BASE", "MERGE_SLASHES", "DECODE_AND_MERGE_SLASHES", "DEFAULT"];

    /// Istio's name (`DEFAULT` is `BASE`).
    pub fn parse(s: &str) -> Option<Normalization> {
        Some(match s {
            "NONE" => Normalization::None,
            "BASE" | "DEFAULT" => Normalization::Base,
            "MERGE_SLASHES" => Normalization::MergeSlashes,
            "DECODE_AND_MERGE_SLASHES" => Normalization::DecodeAndMergeSlashes,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Normalization::None => "NONE",
            Normalization::Base => "BASE",
            Normalization::MergeSlashes => "MERGE_SLASHES",
            Normalization::DecodeAndMergeSlashes => "DECODE_AND_MERGE_SLASHES",
        }
    }
}

/// What happens to `%2F` and `%5C` in a path (Envoy's `path_with_escaped_slashes_action`).
/// `DECODE_AND_MERGE_SLASHES` always decodes them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EscapedSlashes {
    /// Kept as they are (hex digits upper-cased): Envoy's default.
    #[default]
    KeepUnchanged,
    /// 400.
    RejectRequest,
    /// 307 to the path with them decoded (the client asks again, so every hop sees one path).
    UnescapeAndRedirect,
    /// Decoded into `/` and forwarded.
    UnescapeAndForward,
}

impl EscapedSlashes {
    pub const NAMES: [&str; 4] = ["KEEP_UNCHANGED", "REJECT_REQUEST", "UNESCAPE_AND_REDIRECT", "UNESCAPE_AND_FORWARD"];

    pub fn parse(s: &str) -> Option<EscapedSlashes> {
        Some(match s {
            "KEEP_UNCHANGED" | "IMPLEMENTATION_SPECIFIC_DEFAULT" => EscapedSlashes::KeepUnchanged,
            "REJECT_REQUEST" => EscapedSlashes::RejectRequest,
            "UNESCAPE_AND_REDIRECT" => EscapedSlashes::UnescapeAndRedirect,
            "UNESCAPE_AND_FORWARD" => EscapedSlashes::UnescapeAndForward,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            EscapedSlashes::KeepUnchanged => "KEEP_UNCHANGED",
            EscapedSlashes::RejectRequest => "REJECT_REQUEST",
            EscapedSlashes::UnescapeAndRedirect => "UNESCAPE_AND_REDIRECT",
            EscapedSlashes::UnescapeAndForward => "UNESCAPE_AND_FORWARD",
        }
    }
}

/// A trace collector and the share of new traces to sample.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tracing {
    pub provider: TraceProvider,
    /// `host:port` of the collector.
    pub address: String,
    /// Percentage (0–100) of requests without a sampling decision that start a sampled trace.
    pub sampling: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TraceProvider {
    /// Zipkin v2 JSON, POSTed to `/api/v2/spans`.
    Zipkin,
    /// OpenTelemetry OTLP/HTTP with JSON encoding, POSTed to `/v1/traces`.
    Otlp,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RateLimit {
    /// `namespace/name` of the LocalRateLimit.
    pub policy: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bucket: Option<Bucket>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<RateLimitRule>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bucket {
    pub max_tokens: u64,
    pub tokens_per_fill: u64,
    pub fill_interval_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RateLimitRule {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_prefix: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    pub bucket: Bucket,
}

/// One `jwtRules` entry as it applies to this workload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JwtProvider {
    /// `namespace/name` of the RequestAuthentication.
    pub policy: String,
    pub issuer: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub audiences: Vec<String>,
    /// Inline JWKS (JSON text).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
    /// (header, prefix); empty means `Authorization: Bearer <token>`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub from_headers: Vec<(String, String)>,
    /// Query parameters; empty (with no headers either) means `access_token`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub from_params: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub from_cookies: Vec<String>,
    #[serde(default)]
    pub forward_original_token: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_payload_to_header: Option<String>,
    /// (claim, header)
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub output_claim_to_headers: Vec<(String, String)>,
    /// How long a JWKS fetch may take, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboundListener {
    /// The workload port.
    pub port: u16,
    pub mtls: PeerMode,
    /// Raw TCP (a Service names this port `tcp`, ...); else HTTP.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub tcp: bool,
    /// The Services (FQDNs) that send traffic to this workload port: the values the
    /// `destination_service` label may take, so no label comes from request bytes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub services: Vec<String>,
    /// The HTTP version to the app, from the Service port's protocol; None: the caller's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_http: Option<crate::core::AppHttp>,
    /// Where the app takes this port's traffic (a Sidecar ingress `defaultEndpoint`:
    /// `127.0.0.1:8080`, `0.0.0.0:8080` for the workload's own address, `unix:///path`); None:
    /// the proxy's own `--inbound` target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
}

/// The effective PeerAuthentication mode of one workload port.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PeerMode {
    /// mTLS only: plaintext connections are closed.
    Strict,
    /// mTLS and plaintext on the same port (a TLS ClientHello is detected).
    #[default]
    Permissive,
    /// Plaintext only.
    Disable,
}

impl PeerMode {
    pub fn as_str(self) -> &'static str {
        match self {
            PeerMode::Strict => "STRICT",
            PeerMode::Permissive => "PERMISSIVE",
            PeerMode::Disable => "DISABLE",
        }
    }
}

/// One AuthorizationPolicy as it applies to this workload. Service accounts in the rules are
/// already qualified with their namespace (`ns/sa`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuthzPolicy {
    /// `namespace/name`
    pub name: String,
    pub action: AuthzAction,
    /// No rules: the policy matches no request.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<crate::security::Rule>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AuthzAction {
    Allow,
    Deny,
    Audit,
}

/// Outbound routing: one virtual host per HTTP (service, port), one TCP service per TCP port.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Routes {
    pub virtual_hosts: Vec<VirtualHost>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tcp: Vec<TcpService>,
    /// outboundTrafficPolicy ALLOW_ANY: a request for a host the mesh does not know goes to
    /// the host and port it named. Off (REGISTRY_ONLY), it gets 502.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub passthrough: bool,
    /// For a gateway proxy: the HTTP routes of its Gateways' servers (domains are the bound
    /// VirtualServices' hosts, `*` for any), by server port.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gateway_http: Vec<VirtualHost>,
    /// For a gateway proxy: TCP servers, one per port (domain `*`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gateway_tcp: Vec<TcpService>,
}

/// A TCP service port: connections are split between clusters by weight.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TcpService {
    /// `tcp-echo.default.svc.cluster.local:9000`
    pub name: String,
    /// Host names (without port) that name this service.
    pub domains: Vec<String>,
    pub port: u16,
    /// The VirtualService `tcp` rule this came from, or `default`.
    pub route: String,
    pub clusters: Vec<WeightedCluster>,
    /// VirtualService `tls` rules: by the ClientHello's SNI, before `clusters`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sni: Vec<SniRoute>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SniRoute {
    pub name: String,
    /// Exact names or `*.suffix`; empty matches any SNI.
    pub sni_hosts: Vec<String>,
    pub clusters: Vec<WeightedCluster>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VirtualHost {
    /// `reviews.default.svc.cluster.local:9080`
    pub name: String,
    /// Host names (without port) a request's authority may use.
    pub domains: Vec<String>,
    pub port: u16,
    /// Rules tried in order; the first that matches wins.
    pub routes: Vec<Route>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Route {
    /// The VirtualService rule this came from (`default/reviews http[0]`), or `default`.
    pub name: String,
    /// Any one of these must match; empty matches everything.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub matches: Vec<RouteMatch>,
    /// Where matching requests go; empty when the route answers itself (redirect, direct response).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub clusters: Vec<WeightedCluster>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect: Option<Redirect>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub direct_response: Option<DirectResponse>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rewrite: Option<Rewrite>,
    /// Whole-request timeout (all retries included); None: no timeout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<RetryPolicy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault: Option<Fault>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mirrors: Vec<Mirror>,
    #[serde(default, skip_serializing_if = "HeaderOps::is_empty")]
    pub request_headers: HeaderOps,
    #[serde(default, skip_serializing_if = "HeaderOps::is_empty")]
    pub response_headers: HeaderOps,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cors: Option<Cors>,
}

/// A route's CORS policy (Envoy's CORS filter semantics).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Cors {
    /// Origins allowed; `Prefix("")` allows any.
    pub allow_origins: Vec<StringMatcher>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow_methods: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow_headers: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub expose_headers: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age_s: Option<u64>,
    #[serde(default)]
    pub allow_credentials: bool,
    /// Answer preflights whose origin is not allowed ourselves (IGNORE) instead of
    /// forwarding them to the app (FORWARD, the default).
    #[serde(default)]
    pub ignore_unmatched_preflights: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RouteMatch {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri: Option<StringMatcher>,
    /// Match the URI case-insensitively (exact and prefix).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub ignore_uri_case: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<StringMatcher>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authority: Option<StringMatcher>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheme: Option<StringMatcher>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<HeaderMatcher>,
    /// Headers that must not match (`withoutHeaders`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub without_headers: Vec<HeaderMatcher>,
    /// Query parameters (exact or regex; None: present).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub query_params: Vec<HeaderMatcher>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Redirect {
    /// Replaces the path (and query).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
    /// `uri` replaces only the prefix the route matched (the Gateway API's
    /// `ReplacePrefixMatch`; Istio writes it `%PREFIX()%/new`), keeping the rest and the query.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub prefix: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authority: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// Keep the request's port (`derivePort: FROM_PROTOCOL_DEFAULT` drops it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheme: Option<String>,
    pub status: u16,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DirectResponse {
    pub status: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Rewrite {
    /// Replaces the part of the path the rule matched: the whole path for an exact match,
    /// the prefix for a prefix match (Istio's semantics).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authority: Option<String>,
    /// (pattern, replacement) applied to the path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri_regex: Option<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RetryPolicy {
    /// Retries after the first try.
    pub attempts: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_try_timeout_ms: Option<u64>,
    /// Envoy's retry conditions: 5xx, gateway-error, reset, connect-failure, refused-stream,
    /// retriable-4xx, retriable-status-codes, ...
    pub retry_on: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retriable_status_codes: Vec<u16>,
    /// Base interval of the jittered exponential backoff between tries.
    pub backoff_ms: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Fault {
    /// (delay, percent of requests)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay: Option<(u64, f64)>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub abort: Option<FaultAbort>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaultAbort {
    /// HTTP status, or for gRPC the HTTP 200 that carries `grpc_status`.
    pub http_status: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grpc_status: Option<u32>,
    pub percent: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Mirror {
    pub cluster: String,
    pub percent: f64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HeaderOps {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub set: Vec<(String, String)>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub add: Vec<(String, String)>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub remove: Vec<String>,
}

impl HeaderOps {
    pub fn is_empty(&self) -> bool {
        self.set.is_empty() && self.add.is_empty() && self.remove.is_empty()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StringMatcher {
    Exact(String),
    Prefix(String),
    /// Matches the whole value (RE2 / Envoy `safe_regex` semantics).
    Regex(String),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeaderMatcher {
    pub name: String,
    /// None: the header must be present.
    pub value: Option<StringMatcher>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WeightedCluster {
    pub cluster: String,
    pub weight: u32,
    /// Header changes for requests sent to this destination and their responses.
    #[serde(default, skip_serializing_if = "HeaderOps::is_empty")]
    pub request_headers: HeaderOps,
    #[serde(default, skip_serializing_if = "HeaderOps::is_empty")]
    pub response_headers: HeaderOps,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Clusters {
    pub clusters: Vec<Cluster>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cluster {
    /// `outbound|9080|v1|reviews.default.svc.cluster.local`, Envoy's naming.
    pub name: String,
    pub service: String,
    pub port: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subset: Option<String>,
    pub lb_policy: LbPolicy,
    /// consistentHash: requests with the same key go to the same endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash: Option<HashKey>,
    /// connectionPool limits (Envoy's circuit breakers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<Limits>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outlier: Option<Outlier>,
    /// No endpoints of its own: connect to the host and port the request named
    /// (ServiceEntry `resolution: NONE`, or DNS without endpoints).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub passthrough: bool,
    /// `connectionPool.http.h2UpgradePolicy: UPGRADE`: HTTP/1.1 requests go to the peer
    /// proxy over HTTP/2.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub h2_upgrade: bool,
    /// The HTTP version the service port names (`http`: HTTP/1.1; `http2`, `grpc`: HTTP/2),
    /// for endpoints without a sidecar, which get what the port says; None keeps the caller's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_http: Option<crate::core::AppHttp>,
    /// DestinationRule `tls` ISTIO_MUTUAL with `sni`: the SNI sent in the mesh mTLS handshake
    /// (an egress gateway picks its server by it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mesh_sni: Option<String>,
    /// DestinationRule `tls` SIMPLE/MUTUAL: TLS to the endpoints, which are outside the mesh.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<OriginateTls>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum LbPolicy {
    #[default]
    RoundRobin,
    Random,
    /// Power of two choices by requests in flight.
    LeastRequest,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HashKey {
    Header(String),
    Cookie(String),
    SourceIp,
    QueryParameter(String),
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// Requests in flight at once over HTTP/1.1 (`tcp.maxConnections`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_connections: Option<u32>,
    /// Requests that may wait for one of those (`http.http1MaxPendingRequests`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_pending: Option<u32>,
    /// Requests in flight at once over HTTP/2 (`http.http2MaxRequests`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_requests: Option<u32>,
    /// Retries outstanding at once across the cluster (`http.maxRetries`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_retries: Option<u32>,
    /// `tcp.connectTimeout`, milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect_timeout_ms: Option<u64>,
    /// `http.idleTimeout`: pooled connections unused this long are closed, milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_timeout_ms: Option<u64>,
    /// `tcp.idleTimeout`: a proxied TCP connection with no bytes either way this long is closed,
    /// milliseconds (Envoy's tcp_proxy idle timeout); 0 means never. Unset: the listener's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp_idle_timeout_ms: Option<u64>,
    /// `http.maxRequestsPerConnection: 1`: no connection reuse.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub no_reuse: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outlier {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consecutive_5xx: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consecutive_gateway_errors: Option<u32>,
    pub base_ejection_ms: u64,
    pub max_ejection_percent: u32,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Endpoints {
    /// Cluster name -> its endpoints.
    pub clusters: BTreeMap<String, Vec<Endpoint>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    pub address: SocketAddr,
    /// `namespace/workload`
    pub workload: String,
    /// The SPIFFE ID the endpoint's proxy must present (`spiffe://cluster.local/ns/N/sa/SA`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub identity: String,
    /// Connect with mutual TLS (auto mTLS, or the DestinationRule's ISTIO_MUTUAL).
    #[serde(default)]
    pub mtls: bool,
    /// A DNS name to resolve at connect time (ServiceEntry `resolution: DNS`); `address` then
    /// carries only the port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
}

/// The cluster name for a service port and optional subset.
pub fn cluster_name(fqdn: &str, port: u16, subset: Option<&str>) -> String {
    format!("outbound|{port}|{}|{fqdn}", subset.unwrap_or(""))
}
