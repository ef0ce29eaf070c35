//! The CLI <-> meshd API: JSON over HTTP on meshd's address, bearer-token authenticated.

use serde::{Deserialize, Serialize};

use crate::Key;

pub const APPLY_PATH: &str = "/v1/apply";
pub const DELETE_PATH: &str = "/v1/delete";
pub const RESOURCES_PATH: &str = "/v1/resources";
pub const PROXIES_PATH: &str = "/v1/proxies";
/// `GET /v1/proxy-config?id=NAMESPACE/NAME`: the config meshd would send that proxy now.
pub const PROXY_CONFIG_PATH: &str = "/v1/proxy-config";
pub const SHUTDOWN_PATH: &str = "/v1/shutdown";
pub const HEALTH_PATH: &str = "/healthz";

/// What an apply or delete did to one resource (kubectl's words).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Change {
    Created,
    Configured,
    Unchanged,
    Deleted,
}

impl Change {
    pub fn as_str(self) -> &'static str {
        match self {
            Change::Created => "created",
            Change::Configured => "configured",
            Change::Unchanged => "unchanged",
            Change::Deleted => "deleted",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApplyRequest {
    /// Documents as JSON; each is parsed and validated by meshd again.
    pub resources: Vec<serde_json::Value>,
    /// Namespace for documents without one.
    pub namespace: String,
    #[serde(default)]
    pub dry_run: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChangeResult {
    pub key: Key,
    pub change: Change,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApplyResponse {
    pub results: Vec<ChangeResult>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeleteRequest {
    pub keys: Vec<Key>,
    #[serde(default)]
    pub ignore_missing: bool,
}

/// Every non-2xx answer carries this.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<String>,
}

pub const CA_PATH: &str = "/v1/ca";
pub const CA_RENEW_PATH: &str = "/v1/ca/renew";
pub const CA_ROTATE_ROOT_PATH: &str = "/v1/ca/rotate-root";

/// The CA as `mesh cert status` shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CaStatus {
    pub trust_domain: String,
    /// Every trusted root; `signing` marks the one that signs new certificates.
    pub roots: Vec<RootStatus>,
    pub bundle_version: String,
    /// Workload certificates issued since meshd started.
    pub issued: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RootStatus {
    pub signing: bool,
    #[serde(flatten)]
    pub cert: crate::cert::CertInfo,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RenewRequest {
    /// A proxy id (`namespace/name`); None renews every proxy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RenewResponse {
    /// The proxies asked to renew.
    pub proxies: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RotateRootResponse {
    pub old_root: String,
    pub new_root: String,
    /// Proxies that moved to the new root.
    pub proxies: usize,
    pub seconds: f64,
}

/// `POST /v1/proxy-tokens` (admin token): mint a token that registers one workload.
pub const PROXY_TOKENS_PATH: &str = "/v1/proxy-tokens";

/// What a proxy token lets its holder be: one workload, as one service account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProxyTokenClaims {
    pub namespace: String,
    pub workload: String,
    pub service_account: String,
    /// Issued at (Unix seconds).
    #[serde(default)]
    pub iat: u64,
    /// Expires at (Unix seconds); None: until the mesh's token key is replaced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exp: Option<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProxyTokenRequest {
    pub namespace: String,
    pub workload: String,
    pub service_account: String,
    /// Lifetime in seconds; None: no expiry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_for_secs: Option<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProxyTokenResponse {
    pub token: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_unix: Option<u64>,
}

/// `GET`: what may be shown of every TLS credential (`Vec<CredentialInfo>`); `POST` a
/// `CredentialRequest` to add or replace one (local platform).
pub const CREDENTIALS_PATH: &str = "/v1/credentials";
/// `POST` a `CredentialDeleteRequest`.
pub const CREDENTIALS_DELETE_PATH: &str = "/v1/credentials/delete";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CredentialRequest {
    pub credential: crate::credential::Credential,
    /// Replace a credential of the same name (a rotation); without it that is an error.
    #[serde(default)]
    pub overwrite: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CredentialResponse {
    pub change: Change,
    pub info: crate::credential::CredentialInfo,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CredentialDeleteRequest {
    pub namespace: String,
    pub name: String,
}
