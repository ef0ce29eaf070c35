//! Kubernetes `v1 Service`: the part of the core API the mesh reads.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServiceSpec {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub selector: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<ServicePort>,
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_: Option<String>,
    #[serde(default, rename = "clusterIP", skip_serializing_if = "Option::is_none")]
    pub cluster_ip: Option<String>,
    #[serde(default, rename = "clusterIPs", skip_serializing_if = "Option::is_none")]
    pub cluster_ips: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_name: Option<String>,
    #[serde(default, rename = "externalIPs", skip_serializing_if = "Option::is_none")]
    pub external_ips: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_affinity: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_affinity_config: Option<serde_json::Value>,
    #[serde(default, rename = "loadBalancerIP", skip_serializing_if = "Option::is_none")]
    pub load_balancer_ip: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_balancer_source_ranges: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_balancer_class: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allocate_load_balancer_node_ports: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_traffic_policy: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub internal_traffic_policy: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check_node_port: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publish_not_ready_addresses: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_families: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_family_policy: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traffic_distribution: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServicePort {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default)]
    pub port: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_port: Option<IntOrString>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_protocol: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_port: Option<i64>,
}

/// Kubernetes' `IntOrString` (a Service's `targetPort`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum IntOrString {
    Int(i64),
    String(String),
}

/// How the mesh carries a service port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortProtocol {
    Http,
    Tcp,
}

/// The HTTP version Istio speaks to the app behind a port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AppHttp {
    /// `http`: HTTP/1.1.
    Http1,
    /// `http2`, `grpc`, `grpc-web`, `h2c`: HTTP/2 (prior knowledge).
    Http2,
}

impl ServicePort {
    /// The HTTP version to the app, as Istio chooses it from `appProtocol` or the name's
    /// prefix; None for unnamed or other ports, which keep the caller's protocol.
    pub fn app_http(&self) -> Option<AppHttp> {
        let word = |s: &str| s.split('-').next().unwrap_or("").to_ascii_lowercase();
        let proto = match (&self.app_protocol, &self.name) {
            (Some(a), _) => a.trim_start_matches("kubernetes.io/").to_ascii_lowercase(),
            (None, Some(n)) => {
                let n = n.to_ascii_lowercase();
                if n.starts_with("grpc-web") { "grpc-web".into() } else { word(&n) }
            }
            (None, None) => String::new(),
        };
        match proto.as_str() {
            "http" => Some(AppHttp::Http1),
            "http2" | "grpc" | "grpc-web" | "h2c" => Some(AppHttp::Http2),
            _ => None,
        }
    }

    /// Istio's protocol selection: `appProtocol` first, then the port name's prefix (`http`,
    /// `http2`, `grpc`, `grpc-web` are HTTP; `tcp`, `tls`, `https`, `mongo`, `mysql`, `redis` are
    /// raw TCP). Unnamed and unknown ports are treated as HTTP (Istio sniffs them).
    pub fn mesh_protocol(&self) -> PortProtocol {
        let word = |s: &str| s.split('-').next().unwrap_or("").to_ascii_lowercase();
        let proto = match (&self.app_protocol, &self.name) {
            (Some(a), _) => a.trim_start_matches("kubernetes.io/").to_ascii_lowercase(),
            (None, Some(n)) => word(n),
            (None, None) => String::new(),
        };
        match proto.as_str() {
            "tcp" | "tls" | "https" | "mongo" | "mysql" | "redis" => PortProtocol::Tcp,
            _ => PortProtocol::Http,
        }
    }

    /// The workload port this service port forwards to: `targetPort` when it is a number,
    /// otherwise the service port itself.
    pub fn target_number(&self) -> Option<u16> {
        match &self.target_port {
            Some(IntOrString::Int(n)) => u16::try_from(*n).ok(),
            Some(IntOrString::String(s)) => s.parse().ok(),
            None => u16::try_from(self.port).ok(),
        }
    }

    /// The named target port, when `targetPort` is a port name.
    pub fn target_name(&self) -> Option<&str> {
        match &self.target_port {
            Some(IntOrString::String(s)) if s.parse::<u16>().is_err() => Some(s),
            _ => None,
        }
    }
}
