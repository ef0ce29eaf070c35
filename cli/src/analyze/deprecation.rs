//! Deprecated fields and kinds, and CRDs too old to be served.

use serde_json::Value;

use super::messages::*;
use super::{Analyzer, Input, Message};

const CRDS: &str = "apiextensions.k8s.io";

/// `deprecation.DeprecationAnalyzer`: fields and kinds Istio deprecated or removed.
pub struct DeprecationAnalyzer;

/// Istio CRDs removed from its manifests (the RBAC API replaced by AuthorizationPolicy).
const REMOVED_CRDS: &[(&str, &str)] = &[
    ("rbac.istio.io", "ClusterRbacConfig"),
    ("rbac.istio.io", "RbacConfig"),
    ("rbac.istio.io", "ServiceRole"),
    ("rbac.istio.io", "ServiceRoleBinding"),
];

impl Analyzer for DeprecationAnalyzer {
    fn name(&self) -> &'static str {
        "deprecation.DeprecationAnalyzer"
    }

    fn description(&self) -> &'static str {
        "Checks for deprecated Istio types and fields"
    }

    fn analyze(&self, input: &Input, out: &mut Vec<Message>) {
        for vs in input.of_kind("networking.istio.io", "VirtualService") {
            for rule in vs.spec().get("http").and_then(Value::as_array).into_iter().flatten() {
                if rule.pointer("/fault/delay/percent").and_then(Value::as_f64).is_some_and(|p| p > 0.0) {
                    out.push(Message::new(
                        &DEPRECATED,
                        vs,
                        "Deprecated: HTTPRoute.fault.delay.percent is deprecated; use HTTPRoute.fault.delay.percentage"
                            .into(),
                    ));
                }
            }
        }
        for sc in input.of_kind("networking.istio.io", "Sidecar") {
            if sc.spec().pointer("/outboundTrafficPolicy/egressProxy").is_some_and(|e| !e.is_null()) {
                out.push(Message::new(&DEPRECATED, sc, "Deprecated: OutboundTrafficPolicy.EgressProxy ignored".into()));
            }
        }
        for crd in input.of_kind(CRDS, "CustomResourceDefinition") {
            let group = crd.spec().get("group").and_then(Value::as_str).unwrap_or("");
            let kind = crd.spec().pointer("/names/kind").and_then(Value::as_str).unwrap_or("");
            if REMOVED_CRDS.contains(&(group, kind)) {
                out.push(Message::new(
                    &DEPRECATED,
                    crd,
                    format!("Deprecated: Custom resource type {group} {kind} is removed"),
                ));
            }
        }
    }
}

/// `k8sgateway.CRDVersionAnalyzer`: Gateway API CRDs older than Istio needs are not watched,
/// so their resources are silently ignored.
pub struct CrdVersionAnalyzer;

/// The oldest Gateway API bundle version Istio processes, per CRD.
const MINIMUM_GATEWAY_API: &[(&str, (u64, u64, u64))] = &[
    ("grpcroutes.gateway.networking.k8s.io", (1, 1, 0)),
    ("backendtlspolicies.gateway.networking.k8s.io", (1, 4, 0)),
    ("tlsroutes.gateway.networking.k8s.io", (1, 5, 0)),
];

/// `v1.4.1`, `1.4.1-rc.1` -> (1, 4, 1) (pre-release dropped).
fn semver(v: &str) -> Option<(u64, u64, u64)> {
    let core = v.trim().trim_start_matches('v').split(['-', '+']).next()?;
    let mut it = core.split('.').map(|p| p.parse::<u64>().ok());
    Some((it.next()??, it.next().flatten().unwrap_or(0), it.next().flatten().unwrap_or(0)))
}

impl Analyzer for CrdVersionAnalyzer {
    fn name(&self) -> &'static str {
        "k8sgateway.CRDVersionAnalyzer"
    }

    fn description(&self) -> &'static str {
        "Checks Gateway API CRDs are at the minimum version required by this Istio version"
    }

    fn analyze(&self, input: &Input, out: &mut Vec<Message>) {
        for crd in input.of_kind(CRDS, "CustomResourceDefinition") {
            let Some((_, min)) = MINIMUM_GATEWAY_API.iter().find(|(n, _)| *n == crd.name) else { continue };
            let Some(bundle) = crd.annotation("gateway.networking.k8s.io/bundle-version") else { continue };
            let Some(installed) = semver(bundle) else { continue };
            if installed < *min {
                let shown = bundle.trim().trim_start_matches('v');
                out.push(Message::new(
                    &GATEWAY_API_CRD_VERSION_BELOW_MINIMUM,
                    crd,
                    format!(
                        "Gateway API CRD {:?} is at version {shown:?} but Istio requires at least \"{}.{}.{}\"; resources of this kind will not be processed. Upgrade the Gateway API CRDs to satisfy the minimum version.",
                        crd.name, min.0, min.1, min.2
                    ),
                ));
            }
        }
    }
}
