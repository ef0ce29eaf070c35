//! Service analyzers.

use serde_json::Value;

use super::messages::*;
use super::{Analyzer, Input, Message};

/// Protocols Istio recognises as a port name prefix (`http-web`, `grpc`, `tcp-db`, ...).
const PROTOCOLS: &[&str] =
    &["grpc", "grpc-web", "http", "http_proxy", "http2", "https", "tcp", "tls", "udp", "mongo", "redis", "mysql"];

/// The protocol a port name or appProtocol selects, if any.
pub fn protocol_of(name: &str) -> Option<&'static str> {
    let name = name.to_ascii_lowercase();
    if name.starts_with("grpc-web") {
        return Some("grpc-web");
    }
    let prefix = name.split('-').next().unwrap_or("");
    PROTOCOLS.iter().copied().find(|p| *p == prefix)
}

const SYSTEM_NAMESPACES: &[&str] = &["kube-system", "kube-public", "kube-node-lease", "local-path-storage"];

/// `service.PortNameAnalyzer`: port names should say the protocol (`http-...`, `grpc`, ...) or
/// the port should set `appProtocol`, else protocol detection applies; an ExternalName
/// service's ports must not be plain TCP or unnamed.
pub struct PortNameAnalyzer;

impl Analyzer for PortNameAnalyzer {
    fn name(&self) -> &'static str {
        "service.PortNameAnalyzer"
    }

    fn description(&self) -> &'static str {
        "Checks the port names associated with each service"
    }

    fn analyze(&self, input: &Input, out: &mut Vec<Message>) {
        for svc in input.of_kind("", "Service") {
            // Kubernetes' own services, Istio's own (labelled `istio` or `release: istio`), and
            // gateways Istio manages are not the user's to rename.
            if SYSTEM_NAMESPACES.contains(&svc.ns())
                || svc.label("istio").is_some()
                || svc.label("release") == Some("istio")
                || svc.label("gateway.istio.io/managed").is_some()
            {
                continue;
            }
            let external = svc.spec().get("type").and_then(Value::as_str) == Some("ExternalName");
            for p in svc.spec().get("ports").and_then(Value::as_array).into_iter().flatten() {
                let name = p.get("name").and_then(Value::as_str).unwrap_or("");
                let app_protocol = p.get("appProtocol").and_then(Value::as_str);
                let udp = p.get("protocol").and_then(Value::as_str) == Some("UDP");
                let proto = app_protocol.and_then(protocol_of).or_else(|| protocol_of(name)).or(udp.then_some("udp"));
                if external {
                    if proto.is_none() || proto == Some("tcp") {
                        out.push(Message::new(
                            &EXTERNAL_NAME_INVALID_PORT_NAME,
                            svc,
                            "Port name for ExternalName service is invalid. Proxy may prevent tcp named ports and unmatched traffic for ports serving TCP protocol from being forwarded correctly".into(),
                        ));
                    }
                    continue;
                }
                if proto.is_none() {
                    let port = p.get("port").and_then(Value::as_i64).unwrap_or(0);
                    let target = match p.get("targetPort") {
                        Some(Value::String(s)) => s.clone(),
                        Some(v) => v.to_string(),
                        None => port.to_string(),
                    };
                    out.push(Message::new(
                        &PORT_NAME_NOT_UNDER_CONVENTION,
                        svc,
                        format!("Port name {name} (port: {port}, targetPort: {target}) doesn't follow the naming convention of Istio port."),
                    ));
                }
            }
        }
    }
}
