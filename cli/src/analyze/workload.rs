//! Analyzers of Kubernetes workloads (Pods, Deployments).

use serde_json::Value;

use super::messages::*;
use super::{Analyzer, Input, Message, Res};

/// The sidecar's user id: an app running as it bypasses traffic capture.
const PROXY_UID: i64 = 1337;

/// A pod spec of a Pod, or a workload's pod template.
fn pod_spec(r: &Res) -> Option<&Value> {
    if r.kind == "Pod" { r.value.get("spec") } else { r.value.pointer("/spec/template/spec") }
}

/// `applicationUID.Analyzer`: application containers must not run as UID 1337, the proxy's.
pub struct ApplicationUidAnalyzer;

impl Analyzer for ApplicationUidAnalyzer {
    fn name(&self) -> &'static str {
        "applicationUID.Analyzer"
    }

    fn description(&self) -> &'static str {
        "Looks for application pods and deployments that run as the proxy's user id (1337)"
    }

    fn analyze(&self, input: &Input, out: &mut Vec<Message>) {
        let workloads = input.of_kind("", "Pod").chain(input.of_kind("apps", "Deployment"));
        for w in workloads {
            let Some(spec) = pod_spec(w) else { continue };
            let uid = |v: Option<&Value>| v.and_then(|s| s.get("runAsUser")).and_then(Value::as_i64) == Some(PROXY_UID);
            let pod_level = uid(spec.get("securityContext"));
            let container_level = spec
                .get("containers")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter(|c| c.get("name").and_then(Value::as_str) != Some("istio-proxy"))
                .any(|c| uid(c.get("securityContext")));
            if pod_level || container_level {
                out.push(Message::new(
                    &INVALID_APPLICATION_UID,
                    w,
                    "User ID (UID) 1337 is reserved for the sidecar proxy.".into(),
                ));
            }
        }
    }
}

/// Is the workload in the mesh? Its pod template's `sidecar.istio.io/inject` (label or
/// annotation) decides when set; otherwise its namespace's injection label does.
fn in_mesh(input: &Input, w: &Res) -> bool {
    let template_meta = w.value.pointer("/spec/template/metadata");
    let inject = ["labels", "annotations"].iter().find_map(|k| {
        template_meta.and_then(|m| m.get(k)).and_then(|m| m.get("sidecar.istio.io/inject")).and_then(Value::as_str)
    });
    if let Some(v) = inject {
        return v == "true";
    }
    input
        .of_kind("", "Namespace")
        .find(|n| n.name == w.ns())
        .is_some_and(|n| n.label("istio-injection") == Some("enabled") || n.label("istio.io/rev").is_some())
}

/// `deployment.MultiServiceAnalyzer`: Services selecting the same Deployment must agree on the
/// protocol of a port, and on the port that fronts a target port.
pub struct MultiServiceAnalyzer;

impl Analyzer for MultiServiceAnalyzer {
    fn name(&self) -> &'static str {
        "deployment.MultiServiceAnalyzer"
    }

    fn description(&self) -> &'static str {
        "Checks that Services selecting the same Deployment agree on its ports' protocols and numbers"
    }

    fn analyze(&self, input: &Input, out: &mut Vec<Message>) {
        use std::collections::{BTreeMap, BTreeSet};
        for d in input.of_kind("apps", "Deployment") {
            if !in_mesh(input, d) {
                continue;
            }
            let pod_labels = super::string_map(d.value.pointer("/spec/template/metadata/labels"));
            // port -> protocol -> services; targetPort -> port -> services
            let mut protocols: BTreeMap<i64, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
            let mut target_ports: BTreeMap<String, BTreeMap<i64, BTreeSet<String>>> = BTreeMap::new();
            for svc in input.of_kind("", "Service").filter(|s| s.ns() == d.ns()) {
                let selector = super::string_map(svc.spec().get("selector"));
                if selector.is_empty() || !super::selects(&selector, &pod_labels) {
                    continue;
                }
                for p in svc.spec().get("ports").and_then(Value::as_array).into_iter().flatten() {
                    let Some(port) = p.get("port").and_then(Value::as_i64) else { continue };
                    let name = p.get("name").and_then(Value::as_str).unwrap_or("");
                    let app_protocol = p.get("appProtocol").and_then(Value::as_str);
                    let proto = app_protocol
                        .and_then(super::service::protocol_of)
                        .or_else(|| super::service::protocol_of(name))
                        .unwrap_or(if p.get("protocol").and_then(Value::as_str) == Some("UDP") {
                            "udp"
                        } else {
                            "unsupported"
                        });
                    protocols
                        .entry(port)
                        .or_default()
                        .entry(proto.to_ascii_uppercase())
                        .or_default()
                        .insert(svc.name.clone());
                    let target = match p.get("targetPort") {
                        Some(Value::String(s)) => s.clone(),
                        Some(Value::Number(n)) => n.to_string(),
                        _ => port.to_string(),
                    };
                    target_ports.entry(target).or_default().entry(port).or_default().insert(svc.name.clone());
                }
            }
            for (port, by_proto) in protocols.iter().filter(|(_, m)| m.len() > 1) {
                let protos: Vec<&str> = by_proto.keys().map(String::as_str).collect();
                out.push(Message::new(
                    &DEPLOYMENT_MULTIPLE_SERVICES,
                    d,
                    format!("This deployment {} is associated with multiple services using port {port} but different protocols: {protos:?}", d.name),
                ));
            }
            for (target, by_port) in target_ports.iter().filter(|(_, m)| m.len() > 1) {
                let services: BTreeSet<&str> = by_port.values().flatten().map(String::as_str).collect();
                let ports: Vec<i64> = by_port.keys().copied().collect();
                out.push(Message::new(
                    &DEPLOYMENT_CONFLICTING_PORTS,
                    d,
                    format!(
                        "This deployment {} is associated with multiple services {services:?} using targetPort {target:?} but different ports: {ports:?}.",
                        d.name
                    ),
                ));
            }
        }
    }
}
