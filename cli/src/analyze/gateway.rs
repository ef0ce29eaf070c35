//! Gateway analyzers.

use std::collections::BTreeSet;

use serde_json::Value;

use super::messages::*;
use super::{Analyzer, Input, Message, selector_string, selects, string_map};

/// `gateway.IngressGatewayPortAnalyzer`: a Gateway's selector must match gateway pods, and each
/// server port must be a (target) port of a Service selecting those pods.
pub struct IngressGatewayPortAnalyzer;

impl Analyzer for IngressGatewayPortAnalyzer {
    fn name(&self) -> &'static str {
        "gateway.IngressGatewayPortAnalyzer"
    }

    fn description(&self) -> &'static str {
        "Checks a gateway's ports against the gateway's Kubernetes service ports"
    }

    fn judges_workloads(&self) -> bool {
        true
    }

    fn analyze(&self, input: &Input, out: &mut Vec<Message>) {
        let pods: Vec<_> = input.of_kind("", "Pod").collect();
        let services: Vec<_> = input.of_kind("", "Service").collect();
        for gw in input.of_kind("networking.istio.io", "Gateway") {
            let selector = string_map(gw.spec().get("selector"));
            let mut matched = 0;
            let mut ports = BTreeSet::new();
            for pod in &pods {
                let labels = pod.labels();
                if !selects(&selector, &labels) {
                    continue;
                }
                matched += 1;
                for svc in services.iter().filter(|s| s.ns() == pod.ns()) {
                    if !selects(&string_map(svc.spec().get("selector")), &labels) {
                        continue;
                    }
                    for p in svc.spec().get("ports").and_then(Value::as_array).into_iter().flatten() {
                        if p.get("protocol").and_then(Value::as_str) != Some("TCP") {
                            continue;
                        }
                        // The gateway listens on the port that reaches its pods (the target port);
                        // a server port equal to the Service port is translated to its target.
                        if let Some(t) = p.get("targetPort").and_then(Value::as_u64).filter(|t| *t != 0) {
                            ports.insert(t);
                        }
                        if let Some(port) = p.get("port").and_then(Value::as_u64) {
                            ports.insert(port);
                        }
                    }
                }
            }
            let sel = selector_string(&selector);
            if matched == 0 {
                out.push(Message::new(
                    &REFERENCED_RESOURCE_NOT_FOUND,
                    gw,
                    format!("Referenced selector not found: {sel:?}"),
                ));
                continue;
            }
            for server in gw.spec().get("servers").and_then(Value::as_array).into_iter().flatten() {
                let Some(port) = server.get("port").and_then(|p| p.get("number")).and_then(Value::as_u64) else {
                    continue;
                };
                if !ports.contains(&port) {
                    out.push(Message::new(
                        &GATEWAY_PORT_NOT_ON_SERVICE,
                        gw,
                        format!("The gateway is listening on a target port (port {port}) that is not defined in the Service associated with its workload instances (Pod selector {sel}). If you need to access the gateway port through the gateway Service, it will not be available."),
                    ));
                }
            }
        }
    }
}

/// Does a server host (`ns/host` or `host`, maybe a wildcard) overlap another?
fn hosts_overlap(a: &str, b: &str) -> bool {
    let strip = |h: &str| h.rsplit_once('/').map(|(_, h)| h.to_string()).unwrap_or_else(|| h.to_string());
    let (a, b) = (strip(a), strip(b));
    let wild = |p: &str, h: &str| p == "*" || p.strip_prefix('*').is_some_and(|suffix| h.ends_with(suffix));
    a == b || wild(&a, &b) || wild(&b, &a)
}

/// `gateway.ConflictingGatewayAnalyzer`: two Gateways on the same workload (their selectors
/// pick a common pod, or are equal) with servers on the same port and overlapping hosts.
pub struct ConflictingGatewayAnalyzer;

impl Analyzer for ConflictingGatewayAnalyzer {
    fn name(&self) -> &'static str {
        "gateway.ConflictingGatewayAnalyzer"
    }

    fn description(&self) -> &'static str {
        "Checks a gateway's selector, port number and hosts"
    }

    fn judges_workloads(&self) -> bool {
        true
    }

    fn analyze(&self, input: &Input, out: &mut Vec<Message>) {
        let pods: Vec<_> = input.of_kind("", "Pod").map(|p| p.labels()).collect();
        let gws: Vec<_> = input
            .of_kind("networking.istio.io", "Gateway")
            .map(|g| {
                let sel = string_map(g.spec().get("selector"));
                let picked: BTreeSet<usize> =
                    pods.iter().enumerate().filter(|(_, l)| selects(&sel, l)).map(|(i, _)| i).collect();
                (g, sel, picked)
            })
            .collect();
        let servers = |g: &super::Res| -> Vec<(u64, Vec<String>)> {
            g.spec()
                .get("servers")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|s| {
                    let port = s.get("port")?.get("number")?.as_u64()?;
                    let hosts = s
                        .get("hosts")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                        .filter_map(|h| h.as_str().map(str::to_string))
                        .collect();
                    Some((port, hosts))
                })
                .collect()
        };
        for (i, (gw, sel, picked)) in gws.iter().enumerate() {
            for (port, hosts) in servers(gw) {
                let mut conflicts = BTreeSet::new();
                for (j, (other, other_sel, other_picked)) in gws.iter().enumerate() {
                    let same_workload = sel == other_sel || !picked.is_disjoint(other_picked);
                    if i == j || !same_workload {
                        continue;
                    }
                    let clash = servers(other)
                        .iter()
                        .any(|(p, oh)| *p == port && hosts.iter().any(|h| oh.iter().any(|o| hosts_overlap(h, o))));
                    if clash {
                        conflicts.insert(format!("{}/{}", other.ns(), other.name));
                    }
                }
                if !conflicts.is_empty() {
                    out.push(Message::new(
                        &CONFLICTING_GATEWAYS,
                        gw,
                        format!(
                            "Conflict with gateways {} (workload selector {}, port {port}, hosts {}).",
                            conflicts.into_iter().collect::<Vec<_>>().join(","),
                            selector_string(sel),
                            hosts.join(",")
                        ),
                    ));
                }
            }
        }
    }
}
