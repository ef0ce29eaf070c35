//! DestinationRule analyzers.

use serde_json::Value;

use super::messages::*;
use super::{Analyzer, Input, Message, Res};

/// Does this `tls` block verify the server? None when it is not SIMPLE/MUTUAL TLS.
fn unverified_mode<'a>(dr: &Res, tls: Option<&'a Value>) -> Option<&'a str> {
    let tls = tls?;
    let mode = tls.get("mode").and_then(Value::as_str)?;
    if !matches!(mode, "SIMPLE" | "MUTUAL") {
        return None;
    }
    let has_ca = tls.get("caCertificates").and_then(Value::as_str).is_some_and(|c| !c.is_empty());
    // A credentialName carries the CA, but only for gateways, which a workloadSelector picks.
    let gateway_credential = tls.get("credentialName").and_then(Value::as_str).is_some_and(|c| !c.is_empty())
        && dr.spec().get("workloadSelector").is_some();
    let skip = tls.get("insecureSkipVerify").and_then(Value::as_bool).unwrap_or(false);
    (!has_ca && !gateway_credential && !skip).then_some(mode)
}

/// `destinationrule.CaCertificateAnalyzer`: TLS origination (SIMPLE or MUTUAL) without
/// `caCertificates` does not verify the server's identity.
pub struct CaCertificateAnalyzer;

impl Analyzer for CaCertificateAnalyzer {
    fn name(&self) -> &'static str {
        "destinationrule.CaCertificateAnalyzer"
    }

    fn description(&self) -> &'static str {
        "Checks if caCertificates is set when TLS mode is SIMPLE/MUTUAL"
    }

    fn analyze(&self, input: &Input, out: &mut Vec<Message>) {
        for dr in input.of_kind("networking.istio.io", "DestinationRule") {
            let host = dr.spec().get("host").and_then(Value::as_str).unwrap_or("");
            let tp = dr.spec().get("trafficPolicy");
            if let Some(mode) = unverified_mode(dr, tp.and_then(|t| t.get("tls"))) {
                out.push(Message::new(
                    &NO_SERVER_CERT_VERIFICATION_DESTINATION,
                    dr,
                    format!(
                        "DestinationRule {} in namespace {} has TLS mode set to {mode} but no caCertificates are set to validate server identity for host: {host}",
                        dr.name,
                        dr.ns()
                    ),
                ));
            }
            for p in tp.and_then(|t| t.get("portLevelSettings")).and_then(Value::as_array).into_iter().flatten() {
                if let Some(mode) = unverified_mode(dr, p.get("tls")) {
                    let port = p.get("port").and_then(|p| p.get("number")).and_then(Value::as_u64).unwrap_or(0);
                    out.push(Message::new(
                        &NO_SERVER_CERT_VERIFICATION_PORT,
                        dr,
                        format!(
                            "DestinationRule {} in namespace {} has TLS mode set to {mode} but no caCertificates are set to validate server identity for host: {host} at port {port}",
                            dr.name,
                            dr.ns()
                        ),
                    ));
                }
            }
        }
    }
}

/// A pod's labels as Istio sees them: its own, plus its node's topology labels (locality).
fn effective_labels(pod: &Res, nodes: &[&Res]) -> std::collections::BTreeMap<String, String> {
    let mut labels = pod.labels();
    let node_name = pod.spec().get("nodeName").and_then(Value::as_str);
    if let Some(node) = nodes.iter().find(|n| Some(n.name.as_str()) == node_name) {
        for (k, v) in node.labels() {
            if k.starts_with("topology.kubernetes.io/") || k.starts_with("topology.istio.io/") {
                labels.entry(k).or_insert(v);
            }
        }
    }
    labels
}

/// `destinationrule.SubsetSelectPodAnalyzer`: a DestinationRule's host should be a Service, and
/// each subset should select at least one of its pods (else requests get 503 no healthy upstream).
pub struct SubsetSelectPodAnalyzer;

impl Analyzer for SubsetSelectPodAnalyzer {
    fn name(&self) -> &'static str {
        "destinationrule.SubsetSelectPodAnalyzer"
    }

    fn description(&self) -> &'static str {
        "Checks that each DestinationRule subset selects pods of its service"
    }

    fn judges_workloads(&self) -> bool {
        true
    }

    fn analyze(&self, input: &Input, out: &mut Vec<Message>) {
        let nodes: Vec<&Res> = input.of_kind("", "Node").collect();
        // Pods' effective labels by namespace, and Services by FQDN, computed once.
        let mut pods_by_ns: std::collections::HashMap<&str, Vec<std::collections::BTreeMap<String, String>>> =
            Default::default();
        for p in input.of_kind("", "Pod") {
            pods_by_ns.entry(p.ns()).or_default().push(effective_labels(p, &nodes));
        }
        let services: std::collections::HashMap<String, &Res> =
            input.of_kind("", "Service").map(|s| (mesh_api::host::service_fqdn(&s.name, s.ns()), s)).collect();
        for dr in input.of_kind("networking.istio.io", "DestinationRule") {
            let host_raw = dr.spec().get("host").and_then(Value::as_str).unwrap_or("");
            if host_raw.contains('*') {
                continue;
            }
            let host = mesh_api::host::resolve(host_raw, dr.ns());
            let Some(svc) = services.get(&host).copied() else {
                let external = input.of_kind("networking.istio.io", "ServiceEntry").any(|se| {
                    se.spec()
                        .get("hosts")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                        .any(|h| h.as_str() == Some(host_raw))
                });
                if !external {
                    out.push(Message::new(
                        &UNKNOWN_DESTINATION_RULE_HOST,
                        dr,
                        format!("The host {host_raw} defined in the DestinationRule does not match any services in the mesh."),
                    ));
                }
                continue;
            };
            let selector = super::string_map(svc.spec().get("selector"));
            let members: Vec<_> = pods_by_ns
                .get(svc.ns())
                .into_iter()
                .flatten()
                .filter(|l| !selector.is_empty() && super::selects(&selector, l))
                .collect();
            for subset in dr.spec().get("subsets").and_then(Value::as_array).into_iter().flatten() {
                let labels = super::string_map(subset.get("labels"));
                // An empty label value never selects anything.
                let selects_some =
                    labels.values().all(|v| !v.is_empty()) && members.iter().any(|m| super::selects(&labels, m));
                if !selects_some {
                    let name = subset.get("name").and_then(Value::as_str).unwrap_or("");
                    out.push(Message::new(
                        &SUBSET_SELECTS_NO_PODS,
                        dr,
                        format!("The Subset {name} defined in the DestinationRule does not select any pods. Which may lead to 503 UH (NoHealthyUpstream)."),
                    ));
                }
            }
        }
    }
}
