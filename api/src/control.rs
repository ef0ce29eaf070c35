//! The CLI <-> meshd API: JSON over HTTP on meshd's address, bearer-token authenticated.

use serde::{Deserialize, Serialize};

use crate::Key;

pub const APPLY_PATH: &str = "/v1/apply";
pub const DELETE_PATH: &str = "/v1/delete";
pub const RESOURCES_PATH: &str = "/v1/resources";
pub const PROXIES_PATH: &str = "/v1/proxies";
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
