//! Gateway analyzers.

use std::collections::BTreeSet;

use serde_json::Value;

use super::messages::*;
use super::{Analyzer, Input, Message, Res, selector_string, selects, string_map};

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

/// `gateway.CertificateAnalyzer`: two Gateways on the same workloads serving the same
/// certificate let clients reuse an HTTP/2 connection for the other's hosts, which then 404.
pub struct CertificateAnalyzer;

fn same_certificate(a: &Value, b: &Value) -> bool {
    let s = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let (ca, cb) = (s(a, "credentialName"), s(b, "credentialName"));
    if !ca.is_empty() && !cb.is_empty() {
        return ca == cb;
    }
    if ca.is_empty() && cb.is_empty() {
        let (sa, sb) = (s(a, "serverCertificate"), s(b, "serverCertificate"));
        let (ka, kb) = (s(a, "privateKey"), s(b, "privateKey"));
        return !sa.is_empty() && sa == sb && !ka.is_empty() && ka == kb;
    }
    false
}

impl Analyzer for CertificateAnalyzer {
    fn name(&self) -> &'static str {
        "gateway.CertificateAnalyzer"
    }

    fn description(&self) -> &'static str {
        "Checks a gateway certificate"
    }

    fn analyze(&self, input: &Input, out: &mut Vec<Message>) {
        let gateways: Vec<&Res> = input.of_kind("networking.istio.io", "Gateway").collect();
        let full = |g: &Res| format!("{}/{}", g.ns(), g.name);
        let servers = |g: &Res| g.spec().get("servers").and_then(Value::as_array).cloned().unwrap_or_default();
        for current in &gateways {
            let selector = string_map(current.spec().get("selector"));
            for other in &gateways {
                if full(current) == full(other) {
                    continue;
                }
                // The current selector must be a subset of the other's (empty: every gateway).
                let other_sel = string_map(other.spec().get("selector"));
                if !selector.iter().all(|(k, v)| other_sel.get(k) == Some(v)) {
                    continue;
                }
                for a in servers(current) {
                    for b in servers(other) {
                        let (Some(ta), Some(tb)) = (a.get("tls"), b.get("tls")) else { continue };
                        if same_certificate(ta, tb) {
                            out.push(Message::new(
                                &GATEWAY_DUPLICATE_CERTIFICATE,
                                current,
                                format!(
                                    "Duplicate certificate in multiple gateways {:?} may cause 404s if clients re-use HTTP2 connections.",
                                    [full(current), full(other)]
                                ),
                            ));
                        }
                    }
                }
            }
        }
    }
}

/// `gateway.SecretAnalyzer`: a Gateway's `credentialName` must name a Secret in the namespace
/// of the gateway workload (not of the Gateway resource), holding a certificate and key.
pub struct SecretAnalyzer;

/// A TLS Secret's certificate and key: `tls.crt`/`tls.key`, or Istio's generic `cert`/`key`.
fn has_certificate(secret: &Res) -> bool {
    ["data", "stringData"].iter().any(|section| {
        let d = secret.value.get(*section);
        let has = |k: &str| d.and_then(|d| d.get(k)).and_then(Value::as_str).is_some_and(|v| !v.is_empty());
        (has("tls.crt") && has("tls.key")) || (has("cert") && has("key"))
    })
}

impl Analyzer for SecretAnalyzer {
    fn name(&self) -> &'static str {
        "gateway.SecretAnalyzer"
    }

    fn description(&self) -> &'static str {
        "Checks a gateway's referenced secrets for correctness"
    }

    fn judges_workloads(&self) -> bool {
        true
    }

    fn analyze(&self, input: &Input, out: &mut Vec<Message>) {
        for gw in input.of_kind("networking.istio.io", "Gateway") {
            let selector = string_map(gw.spec().get("selector"));
            let Some(pod) = input.of_kind("", "Pod").find(|p| selects(&selector, &p.labels())) else {
                out.push(Message::new(
                    &REFERENCED_RESOURCE_NOT_FOUND,
                    gw,
                    format!("Referenced selector not found: {:?}", selector_string(&selector)),
                ));
                continue;
            };
            for server in gw.spec().get("servers").and_then(Value::as_array).into_iter().flatten() {
                let Some(cn) = server.pointer("/tls/credentialName").and_then(Value::as_str).filter(|c| !c.is_empty())
                else {
                    continue;
                };
                let (ns, name) = cn.split_once('/').unwrap_or((pod.ns(), cn));
                match input.of_kind("", "Secret").find(|s| s.ns() == ns && s.name == name) {
                    None => out.push(Message::new(
                        &REFERENCED_RESOURCE_NOT_FOUND,
                        gw,
                        format!("Referenced credentialName not found: {cn:?}"),
                    )),
                    Some(secret) if !has_certificate(secret) => out.push(Message::new(
                        &INVALID_GATEWAY_CREDENTIAL,
                        gw,
                        format!("The credential referenced by the Gateway {} in namespace {} is invalid, which can cause the traffic not to work as expected.", gw.name, gw.ns()),
                    )),
                    Some(_) => {}
                }
            }
        }
    }
}
