//! Analyzers of policies and resource status: AuthorizationPolicies that select nothing or name
//! missing namespaces, selectors that cannot apply to Kubernetes Gateway pods, and resources
//! whose status reports a failed condition.

use std::collections::BTreeMap;

use serde_json::Value;

use super::messages::*;
use super::{Analyzer, Input, Message, Res, selector_string, selects, string_map};

/// Is this pod part of the mesh: a proxy container, an injection label or annotation, an
/// injection-enabled namespace, or ambient redirection.
pub(super) fn pod_in_mesh(input: &Input, pod: &Res) -> bool {
    let has_proxy = super::injection::proxy_image(pod.spec()).is_some();
    if has_proxy || pod.annotation("ambient.istio.io/redirection") == Some("enabled") {
        return true;
    }
    if let Some(v) = pod.label("sidecar.istio.io/inject").or_else(|| pod.annotation("sidecar.istio.io/inject")) {
        return v == "true";
    }
    input
        .of_kind("", "Namespace")
        .find(|n| n.name == pod.ns())
        .is_some_and(|n| n.label("istio-injection") == Some("enabled"))
}

/// `*` matches all, `*suffix` and `prefix*` match by affix, else equal ignoring case.
fn namespace_matches(ns: &str, pattern: &str) -> bool {
    if pattern == "*" {
        true
    } else if let Some(s) = pattern.strip_prefix('*') {
        ns.ends_with(s)
    } else if let Some(p) = pattern.strip_suffix('*') {
        ns.starts_with(p)
    } else {
        ns.eq_ignore_ascii_case(pattern)
    }
}

/// `auth.AuthorizationPoliciesAnalyzer`: a policy whose selector (or, without one, whose
/// namespace) has no workload in the mesh does nothing (IST0127); `namespaces` and
/// `notNamespaces` in sources should match an existing namespace (IST0101).
pub struct AuthorizationPoliciesAnalyzer;

impl Analyzer for AuthorizationPoliciesAnalyzer {
    fn name(&self) -> &'static str {
        "auth.AuthorizationPoliciesAnalyzer"
    }

    fn description(&self) -> &'static str {
        "Checks the validity of authorization policies"
    }

    fn judges_workloads(&self) -> bool {
        true
    }

    fn analyze(&self, input: &Input, out: &mut Vec<Message>) {
        let root = input.mesh_config.get("rootNamespace").and_then(Value::as_str).unwrap_or("istio-system");
        let mut pods: BTreeMap<&str, Vec<BTreeMap<String, String>>> = BTreeMap::new();
        for p in input.of_kind("", "Pod") {
            let list = pods.entry(p.ns()).or_default();
            if pod_in_mesh(input, p) {
                list.push(p.labels());
            }
        }
        let namespaces: Vec<&str> = input.of_kind("", "Namespace").map(|n| n.name.as_str()).collect();
        for ap in input.of_kind("security.istio.io", "AuthorizationPolicy") {
            let selector = ap.spec().get("selector").map(|s| string_map(s.get("matchLabels")));
            let none = |text: String| Message::new(&NO_MATCHING_WORKLOADS, ap, text);
            let text = |sel: &BTreeMap<String, String>| {
                format!("No matching workloads for this resource with the following labels: {}", selector_string(sel))
            };
            match &selector {
                Some(sel) if ap.ns() == root => {
                    if !pods.values().flatten().any(|l| selects(sel, l)) {
                        out.push(none(text(sel)));
                    }
                }
                None if ap.ns() == root => {}
                None => {
                    if pods.get(ap.ns()).is_none_or(Vec::is_empty) {
                        out.push(none(text(&BTreeMap::new())));
                    }
                }
                Some(sel) => {
                    if !pods.get(ap.ns()).into_iter().flatten().any(|l| selects(sel, l)) {
                        out.push(none(text(sel)));
                    }
                }
            }
            for rule in ap.spec().get("rules").and_then(Value::as_array).into_iter().flatten() {
                for from in rule.get("from").and_then(Value::as_array).into_iter().flatten() {
                    let source = from.get("source");
                    let listed = ["namespaces", "notNamespaces"]
                        .iter()
                        .flat_map(|k| source.and_then(|s| s.get(*k)).and_then(Value::as_array).into_iter().flatten())
                        .filter_map(Value::as_str);
                    for pattern in listed {
                        if !namespaces.iter().any(|ns| namespace_matches(ns, pattern)) {
                            out.push(Message::new(
                                &REFERENCED_RESOURCE_NOT_FOUND,
                                ap,
                                format!("Referenced namespace not found: {pattern:?}"),
                            ));
                        }
                    }
                }
            }
        }
    }
}

/// `k8sgateway.SelectorAnalyzer`: on pods of a Kubernetes Gateway, policies attach with
/// `targetRef`; a `selector` that picks such pods has no effect.
pub struct K8sGatewaySelectorAnalyzer;

impl Analyzer for K8sGatewaySelectorAnalyzer {
    fn name(&self) -> &'static str {
        "k8sgateway.SelectorAnalyzer"
    }

    fn description(&self) -> &'static str {
        "Check that selectors are effective for Kubernetes gateway"
    }

    fn judges_workloads(&self) -> bool {
        true
    }

    fn analyze(&self, input: &Input, out: &mut Vec<Message>) {
        const GATEWAY_NAME: &str = "gateway.networking.k8s.io/gateway-name";
        let gateway_pods: Vec<&Res> = input.of_kind("", "Pod").filter(|p| p.label(GATEWAY_NAME).is_some()).collect();
        let kinds = [
            ("security.istio.io", "AuthorizationPolicy"),
            ("security.istio.io", "RequestAuthentication"),
            ("telemetry.istio.io", "Telemetry"),
            ("extensions.istio.io", "WasmPlugin"),
        ];
        for (group, kind) in kinds {
            for r in input.of_kind(group, kind) {
                let spec = r.spec();
                if spec.get("targetRef").is_some_and(|t| !t.is_null()) {
                    continue;
                }
                let Some(selector) = spec.get("selector").filter(|s| !s.is_null()) else { continue };
                let selector = string_map(selector.get("matchLabels"));
                for pod in gateway_pods.iter().filter(|p| p.ns() == r.ns()) {
                    if selects(&selector, &pod.labels()) {
                        out.push(Message::new(
                            &INEFFECTIVE_SELECTOR,
                            r,
                            format!(
                                "Ineffective selector on Kubernetes Gateway {}. Use the TargetRef field instead.",
                                pod.label(GATEWAY_NAME).unwrap_or("")
                            ),
                        ));
                    }
                }
            }
        }
    }
}

/// `conditions.ConditionAnalyzer`: a status condition that failed (status False, or reason
/// PartiallyInvalid) on Services (Istio's own condition types), ServiceEntries,
/// AuthorizationPolicies, Kubernetes Gateways and their HTTP and gRPC routes.
pub struct ConditionAnalyzer;

impl Analyzer for ConditionAnalyzer {
    fn name(&self) -> &'static str {
        "conditions.ConditionAnalyzer"
    }

    fn description(&self) -> &'static str {
        "Checks for negative status conditions on resources"
    }

    fn analyze(&self, input: &Input, out: &mut Vec<Message>) {
        const GW_API: &str = "gateway.networking.k8s.io";
        let kinds = [
            ("", "Service"),
            ("networking.istio.io", "ServiceEntry"),
            ("security.istio.io", "AuthorizationPolicy"),
            (GW_API, "Gateway"),
            (GW_API, "HTTPRoute"),
            (GW_API, "GRPCRoute"),
        ];
        for (group, kind) in kinds {
            for r in input.of_kind(group, kind) {
                let status = r.value.get("status");
                let mut conditions: Vec<&Value> =
                    status.and_then(|s| s.get("conditions")).and_then(Value::as_array).into_iter().flatten().collect();
                for parent in status.and_then(|s| s.get("parents")).and_then(Value::as_array).into_iter().flatten() {
                    conditions.extend(parent.get("conditions").and_then(Value::as_array).into_iter().flatten());
                }
                for c in conditions {
                    let s = |k: &str| c.get(k).and_then(Value::as_str).unwrap_or("");
                    if kind == "Service" && !s("type").starts_with("istio.io/") {
                        continue; // another controller's condition
                    }
                    if s("status") == "False" || s("reason") == "PartiallyInvalid" {
                        out.push(Message::new(
                            &NEGATIVE_CONDITION_STATUS,
                            r,
                            format!(
                                "A condition with a negative status is present: type={}, reason={}, message={}.",
                                s("type"),
                                s("reason"),
                                s("message")
                            ),
                        ));
                    }
                }
            }
        }
    }
}
