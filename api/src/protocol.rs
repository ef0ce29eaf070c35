//! The meshd <-> proxy discovery protocol.
//!
//! The proxy opens `GET /v1/discovery` on meshd's API port with `Upgrade: mesh-discovery` and
//! its bearer token; after `101 Switching Protocols` both sides exchange length-delimited JSON
//! frames. Semantics follow xDS: each push carries a nonce and, per config type, a version; the
//! proxy answers every push with one ACK or NACK per type it contained.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use crate::proxy_config::{Clusters, ConfigType, Endpoints, Listeners, Routes};

/// The HTTP path and upgrade token of the discovery stream.
pub const DISCOVERY_PATH: &str = "/v1/discovery";
pub const UPGRADE_TOKEN: &str = "mesh-discovery";
/// Largest frame either side accepts.
pub const MAX_FRAME: usize = 16 * 1024 * 1024;

/// meshd's answer to a proxy's challenge: `hex(HMAC-SHA256(token, "mesh-discovery:" + challenge))`.
/// Only a meshd holding the mesh's token can compute it.
pub fn discovery_proof(token: &str, challenge: &str) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, token.as_bytes());
    let tag = ring::hmac::sign(&key, format!("mesh-discovery:{challenge}").as_bytes());
    tag.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// Check a proof in time independent of where the first difference is.
pub fn verify_discovery_proof(token: &str, challenge: &str, proof: &str) -> bool {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, token.as_bytes());
    let Some(tag) = (0..proof.len())
        .step_by(2)
        .map(|i| proof.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
        .collect::<Option<Vec<u8>>>()
    else {
        return false;
    };
    ring::hmac::verify(&key, format!("mesh-discovery:{challenge}").as_bytes(), &tag).is_ok()
}

/// Who a proxy is, sent once when it connects.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Workload {
    pub name: String,
    pub namespace: String,
    pub service_account: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Where the workload's inbound listeners are reached.
    pub ports: Vec<InboundPort>,
    /// The proxy's admin API (loopback).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin: Option<SocketAddr>,
    /// The proxy's outbound listener, if it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outbound: Option<SocketAddr>,
    /// Process id, for `mesh proxy-status` and local diagnostics.
    #[serde(default)]
    pub pid: u32,
    pub proxy_version: String,
    /// Found through the platform (a Kubernetes Pod) with no proxy beside it: peers reach it
    /// in plain text at its own address.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub without_proxy: bool,
    /// A gateway proxy's Gateway server ports (`port`: the server port) and where they listen:
    /// a Service selecting the gateway (an egress gateway) reaches it there.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gateway_ports: Vec<InboundPort>,
}

impl Workload {
    /// A workload with no labels, ports or proxy details yet.
    pub fn named(namespace: &str, name: &str, service_account: &str) -> Workload {
        Workload {
            name: name.to_string(),
            namespace: namespace.to_string(),
            service_account: service_account.to_string(),
            labels: BTreeMap::new(),
            ports: Vec::new(),
            admin: None,
            outbound: None,
            pid: 0,
            proxy_version: String::new(),
            without_proxy: false,
            gateway_ports: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboundPort {
    /// The workload (container) port, matched against a Service's targetPort.
    pub port: u16,
    /// The proxy's inbound listener for that port.
    pub listen: SocketAddr,
    /// The container port's name, for Services whose `targetPort` is a name (Kubernetes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// Messages from a proxy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ProxyMessage {
    /// `challenge`: random; meshd must answer with `proof` in its Welcome, so a proxy takes
    /// config only from a meshd that holds the mesh token.
    Hello {
        workload: Workload,
        #[serde(default)]
        challenge: String,
        /// Protocol features the proxy understands (`ENDPOINTS_DELTA`); meshd uses only those.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        features: Vec<String>,
    },
    Ack {
        config_type: ConfigType,
        version: String,
        nonce: String,
    },
    Nack {
        config_type: ConfigType,
        version: String,
        nonce: String,
        error: String,
    },
    /// A PKCS#10 request for the proxy's workload identity; the key never leaves the proxy.
    Csr {
        csr_pem: String,
    },
    /// What the proxy now uses: sent after every certificate or trust bundle change.
    Identity(IdentityReport),
}

/// The certificate and trust bundle a proxy holds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct IdentityReport {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert: Option<crate::cert::CertInfo>,
    /// `cert::bundle_version` of the trust bundle in force.
    #[serde(default)]
    pub bundle_version: String,
    /// The last certificate problem, if the newest one was refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Messages from meshd.
// One message per push, off the data path; boxing the push would buy nothing measurable.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum MeshdMessage {
    Welcome {
        meshd: String,
        proxy_id: String,
        /// `hex(HMAC-SHA256(token, "mesh-discovery:" + challenge))`.
        #[serde(default)]
        proof: String,
    },
    Push(Push),
    /// A signed certificate for the proxy's CSR, and the trust bundle to verify peers with.
    Certificate {
        cert_pem: String,
        trust_bundle_pem: String,
    },
    /// The CSR was refused; nothing was issued.
    CertificateError {
        message: String,
    },
    /// The trust bundle changed (a root added or retired).
    TrustBundle {
        pem: String,
    },
    /// Send a fresh CSR now (root rotation, `mesh cert rotate`).
    Renew,
    /// meshd refuses the stream (bad hello, duplicate workload); the proxy logs it and retries.
    Error {
        message: String,
    },
}

/// The proxy applies `Push::endpoints_delta`.
pub const ENDPOINTS_DELTA: &str = "endpoints-delta";
/// The proxy applies `Push::routes_delta`.
pub const ROUTES_DELTA: &str = "routes-delta";

/// A change to the routes a proxy holds, when the number of virtual hosts is unchanged (a
/// weight, match or policy changed): the virtual hosts that changed, by position, and the
/// other fields whole when they changed. Applied only on top of `base`; the result is exactly
/// the routes of `version`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoutesDelta {
    pub base: String,
    pub version: String,
    #[serde(default)]
    pub virtual_hosts: Vec<(usize, crate::proxy_config::VirtualHost)>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp: Option<Vec<crate::proxy_config::TcpService>>,
    #[serde(default)]
    pub passthrough: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway_http: Option<Vec<crate::proxy_config::VirtualHost>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway_tcp: Option<Vec<crate::proxy_config::TcpService>>,
}

impl RoutesDelta {
    /// Apply to `routes` (which must be the routes of `base`); an error names what does not fit.
    pub fn apply(self, routes: &mut Routes) -> Result<(), String> {
        let len = routes.virtual_hosts.len();
        if let Some((i, _)) = self.virtual_hosts.iter().find(|(i, _)| *i >= len) {
            return Err(format!("routes delta replaces virtual host {i}, but there are {len}"));
        }
        for (i, vh) in self.virtual_hosts {
            routes.virtual_hosts[i] = vh;
        }
        if let Some(t) = self.tcp {
            routes.tcp = t;
        }
        routes.passthrough = self.passthrough;
        if let Some(g) = self.gateway_http {
            routes.gateway_http = g;
        }
        if let Some(g) = self.gateway_tcp {
            routes.gateway_tcp = g;
        }
        Ok(())
    }
}

/// A change to the endpoints a proxy holds: the clusters whose endpoints changed (all their
/// endpoints) and the clusters gone. Applied only on top of `base`; the result is `version`,
/// the same version the whole endpoints would have had.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EndpointsDelta {
    pub base: String,
    pub version: String,
    #[serde(default)]
    pub updated: BTreeMap<String, Vec<crate::proxy_config::Endpoint>>,
    #[serde(default)]
    pub removed: Vec<String>,
}

/// One push: any subset of the config types, each with its version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Push {
    pub nonce: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routes: Option<Versioned<Routes>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clusters: Option<Versioned<Clusters>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoints: Option<Versioned<Endpoints>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listeners: Option<Versioned<Listeners>>,
    /// Instead of `endpoints`, to a proxy that declared `ENDPOINTS_DELTA`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoints_delta: Option<EndpointsDelta>,
    /// Instead of `routes`, to a proxy that declared `ROUTES_DELTA`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routes_delta: Option<RoutesDelta>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Versioned<T> {
    pub version: String,
    pub body: T,
}

/// What meshd knows of one proxy's sync state per config type (for `mesh proxy-status`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TypeStatus {
    /// The version meshd would send now.
    pub current: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acked: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nacked: Option<Nacked>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Nacked {
    pub version: String,
    pub error: String,
}

/// The status word istioctl users know, plus ERROR for a NACK.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SyncState {
    #[serde(rename = "SYNCED")]
    Synced,
    #[serde(rename = "NOT SENT")]
    NotSent,
    #[serde(rename = "STALE")]
    Stale,
    #[serde(rename = "ERROR")]
    Error,
}

impl SyncState {
    pub fn as_str(self) -> &'static str {
        match self {
            SyncState::Synced => "SYNCED",
            SyncState::NotSent => "NOT SENT",
            SyncState::Stale => "STALE",
            SyncState::Error => "ERROR",
        }
    }
}

impl TypeStatus {
    pub fn state(&self) -> SyncState {
        match (&self.sent, &self.nacked) {
            (None, _) => SyncState::NotSent,
            (Some(sent), Some(n)) if &n.version == sent => SyncState::Error,
            (Some(sent), _) if self.acked.as_ref() == Some(sent) && *sent == self.current => SyncState::Synced,
            _ => SyncState::Stale,
        }
    }
}

/// One row of `mesh proxy-status`, as meshd's API returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProxyStatus {
    pub id: String,
    pub workload: Workload,
    pub meshd: String,
    pub connected_at_unix: u64,
    pub types: BTreeMap<ConfigType, TypeStatus>,
    /// The config generation meshd last translated for this proxy.
    #[serde(default)]
    pub generation: u64,
    /// True while meshd holds config changes it has not yet translated for this proxy: what
    /// it "would send now" is then not known yet, so nothing counts as SYNCED.
    #[serde(default)]
    pub behind: bool,
    /// What the proxy reported of its certificate and trust bundle.
    #[serde(default)]
    pub identity: IdentityReport,
}

impl ProxyStatus {
    pub fn state(&self, t: ConfigType) -> SyncState {
        let s = self.types.get(&t).map(TypeStatus::state).unwrap_or(SyncState::NotSent);
        if self.behind && s == SyncState::Synced { SyncState::Stale } else { s }
    }
}
