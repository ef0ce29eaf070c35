//! Istio annotations on Kubernetes resources: unknown, misplaced, deprecated, invalid, or
//! alpha-phase. The table is Istio's annotation registry (`istio.io/api` `annotation/`): name,
//! feature status, whether deprecated or hidden, and the kinds it belongs on.

use serde_json::Value;

use super::messages::*;
use super::{Analyzer, Input, Message, Res};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Status {
    Alpha,
    Beta,
    Stable,
    Unset,
}

struct Annotation {
    name: &'static str,
    status: Status,
    deprecated: bool,
    hidden: bool,
    /// Kinds it belongs on; empty means any.
    kinds: &'static [&'static str],
}

const fn a(
    name: &'static str,
    status: Status,
    deprecated: bool,
    hidden: bool,
    kinds: &'static [&'static str],
) -> Annotation {
    Annotation { name, status, deprecated, hidden, kinds }
}

use Status::*;
const POD: &[&str] = &["Pod"];
const SERVICE: &[&str] = &["Service"];
const ANY: &[&str] = &[];

const REGISTRY: &[Annotation] = &[
    a("prometheus.istio.io/merge-metrics", Alpha, false, false, POD),
    a("alpha.istio.io/kubernetes-serviceaccounts", Alpha, true, true, SERVICE),
    a("alpha.istio.io/canonical-serviceaccounts", Alpha, true, true, SERVICE),
    a("networking.istio.io/exportTo", Alpha, false, false, SERVICE),
    a("sidecar.istio.io/inject", Beta, true, false, POD),
    a("sidecar.istio.io/status", Alpha, false, false, POD),
    a("sidecar.istio.io/rewriteAppHTTPProbers", Alpha, false, false, POD),
    a("sidecar.istio.io/discoveryAddress", Alpha, true, false, POD),
    a("sidecar.istio.io/proxyImage", Alpha, false, false, POD),
    a("sidecar.istio.io/proxyImageType", Alpha, false, false, POD),
    a("sidecar.istio.io/proxyCPU", Alpha, false, false, POD),
    a("sidecar.istio.io/proxyCPULimit", Alpha, false, false, POD),
    a("sidecar.istio.io/proxyMemory", Alpha, false, false, POD),
    a("sidecar.istio.io/proxyMemoryLimit", Unset, false, false, POD),
    a("sidecar.istio.io/interceptionMode", Alpha, false, false, POD),
    a("sidecar.istio.io/bootstrapOverride", Alpha, false, false, POD),
    a("sidecar.istio.io/statsInclusionPrefixes", Alpha, true, false, POD),
    a("sidecar.istio.io/statsInclusionSuffixes", Alpha, true, false, POD),
    a("sidecar.istio.io/statsInclusionRegexps", Alpha, true, false, POD),
    a("sidecar.istio.io/statsHistogramBuckets", Alpha, false, false, POD),
    a("sidecar.istio.io/statsFlushInterval", Alpha, false, false, POD),
    a("sidecar.istio.io/statsEvictionInterval", Alpha, false, false, POD),
    a("sidecar.istio.io/statsCompression", Alpha, false, false, POD),
    a("sidecar.istio.io/userVolume", Alpha, false, false, POD),
    a("sidecar.istio.io/userVolumeMount", Unset, false, false, POD),
    a("status.sidecar.istio.io/port", Alpha, false, false, POD),
    a("sidecar.istio.io/logLevel", Alpha, false, false, POD),
    a("sidecar.istio.io/componentLogLevel", Alpha, false, false, POD),
    a("sidecar.istio.io/agentLogLevel", Alpha, false, false, POD),
    a("sidecar.istio.io/nativeSidecar", Alpha, false, false, POD),
    a("sidecar.istio.io/enableCoreDump", Alpha, false, false, POD),
    a("sidecar.istio.io/extraStatTags", Alpha, true, false, POD),
    a("readiness.status.sidecar.istio.io/initialDelaySeconds", Alpha, false, false, POD),
    a("readiness.status.sidecar.istio.io/periodSeconds", Alpha, false, false, POD),
    a("readiness.status.sidecar.istio.io/failureThreshold", Alpha, false, false, POD),
    a("readiness.status.sidecar.istio.io/applicationPorts", Alpha, false, false, POD),
    a("traffic.istio.io/nodeSelector", Stable, false, false, SERVICE),
    a("traffic.sidecar.istio.io/includeOutboundIPRanges", Alpha, false, false, POD),
    a("traffic.sidecar.istio.io/excludeOutboundIPRanges", Alpha, false, false, POD),
    a("traffic.sidecar.istio.io/includeInboundPorts", Alpha, false, false, POD),
    a("traffic.sidecar.istio.io/excludeInboundPorts", Alpha, false, false, POD),
    a("traffic.sidecar.istio.io/excludeInterfaces", Alpha, false, false, POD),
    a("traffic.sidecar.istio.io/includeOutboundPorts", Alpha, false, false, POD),
    a("traffic.sidecar.istio.io/excludeOutboundPorts", Alpha, false, false, POD),
    a("traffic.sidecar.istio.io/kubevirtInterfaces", Alpha, true, false, POD),
    a("kubernetes.io/ingress.class", Stable, false, false, &["Ingress"]),
    a("install.operator.istio.io/chart-owner", Alpha, false, false, ANY),
    a("install.operator.istio.io/owner-generation", Alpha, false, false, ANY),
    a("install.operator.istio.io/version", Alpha, false, false, ANY),
    a("galley.istio.io/analyze-suppress", Alpha, false, false, ANY),
    a("proxy.istio.io/config", Beta, false, false, POD),
    a("proxy.istio.io/overrides", Alpha, false, true, POD),
    a("istio.io/dry-run", Alpha, false, false, &["AuthorizationPolicy"]),
    a("istio.io/rev", Alpha, false, false, POD),
    a("inject.istio.io/templates", Alpha, false, false, POD),
    a("istio.io/autoRegistrationGroup", Alpha, false, true, &["WorkloadEntry"]),
    a("istio.io/workloadController", Alpha, false, true, &["WorkloadEntry"]),
    a("istio.io/connectedAt", Alpha, false, true, &["WorkloadEntry"]),
    a("istio.io/disconnectedAt", Alpha, false, true, &["WorkloadEntry"]),
    a("topology.istio.io/controlPlaneClusters", Alpha, false, false, &["Namespace"]),
    a("gateway.istio.io/controller-version", Alpha, false, true, ANY),
    a("ambient.istio.io/redirection", Beta, false, false, POD),
    a("ambient.istio.io/waypoint-inbound-binding", Alpha, false, true, &["GatewayClass", "Gateway"]),
    a("gateway.istio.io/service-account", Alpha, false, true, &["Gateway"]),
    a("gateway.istio.io/name-override", Alpha, false, true, &["Gateway"]),
    a("networking.istio.io/service-type", Alpha, false, true, &["Gateway"]),
    a("networking.istio.io/traffic-distribution", Alpha, false, false, &["Service", "ServiceEntry"]),
    a("ambient.istio.io/bypass-inbound-capture", Alpha, false, true, POD),
    a("istio.io/reroute-virtual-interfaces", Alpha, false, false, POD),
    a("ambient.istio.io/dns-capture", Alpha, false, true, POD),
];

/// Annotations Istio itself sets on workloads; users did not write them.
const SET_BY_ISTIO: &[&str] = &["sidecar.istio.io/status", "istio.io/rev", "ambient.istio.io/redirection"];

/// Annotations in Istio's namespaces (and the one Kubernetes annotation Istio documents).
fn is_istio(name: &str) -> bool {
    name == "kubernetes.io/ingress.class" || name.split('/').next().is_some_and(|d| d.ends_with("istio.io"))
}

fn lookup(name: &str) -> Option<&'static Annotation> {
    REGISTRY.iter().find(|a| a.name == name)
}

/// The kinds whose annotations are analyzed, in Istio's order.
fn annotated(input: &Input) -> impl Iterator<Item = &Res> {
    [("", "Namespace"), ("", "Service"), ("", "Pod"), ("apps", "Deployment")]
        .into_iter()
        .flat_map(move |(g, k)| input.of_kind(g, k))
}

fn annotations(r: &Res) -> Vec<(&str, &str)> {
    r.value
        .pointer("/metadata/annotations")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.as_str(), v.as_str().unwrap_or("")))
        .collect()
}

fn ports(v: &str) -> Result<(), String> {
    if v.trim() == "*" || v.trim().is_empty() {
        return Ok(());
    }
    for p in v.split(',') {
        let p = p.trim();
        match p.parse::<u32>() {
            Ok(n) if n <= 65535 => {}
            _ => return Err(format!("{p:?} is not a valid port")),
        }
    }
    Ok(())
}

fn cidrs(v: &str) -> Result<(), String> {
    if v.trim() == "*" || v.trim().is_empty() {
        return Ok(());
    }
    for c in v.split(',') {
        let c = c.trim();
        if c.parse::<ipnet::IpNet>().is_err() {
            return Err(format!("{c:?} is not a valid CIDR"));
        }
    }
    Ok(())
}

/// Istio's value checks for the annotations that have one.
fn validate(name: &str, value: &str) -> Result<(), String> {
    match name {
        "sidecar.istio.io/inject"
        | "sidecar.istio.io/rewriteAppHTTPProbers"
        | "sidecar.istio.io/enableCoreDump"
        | "sidecar.istio.io/nativeSidecar"
        | "prometheus.istio.io/merge-metrics" => match value {
            "true" | "false" => Ok(()),
            _ => Err(format!("{value:?} is not a boolean; use \"true\" or \"false\"")),
        },
        "sidecar.istio.io/interceptionMode" => match value {
            "REDIRECT" | "TPROXY" | "NONE" => Ok(()),
            _ => Err(format!("{value:?} is not one of REDIRECT, TPROXY, NONE")),
        },
        "readiness.status.sidecar.istio.io/initialDelaySeconds"
        | "readiness.status.sidecar.istio.io/periodSeconds"
        | "readiness.status.sidecar.istio.io/failureThreshold" => {
            value.parse::<u32>().map(|_| ()).map_err(|e| format!("{value:?}: {e}"))
        }
        "status.sidecar.istio.io/port" => match value.parse::<u32>() {
            Ok(p) if p <= 65535 => Ok(()),
            _ => Err(format!("{value:?} is not a valid port")),
        },
        "traffic.sidecar.istio.io/includeInboundPorts"
        | "traffic.sidecar.istio.io/excludeInboundPorts"
        | "traffic.sidecar.istio.io/includeOutboundPorts"
        | "traffic.sidecar.istio.io/excludeOutboundPorts"
        | "readiness.status.sidecar.istio.io/applicationPorts" => ports(value),
        "traffic.sidecar.istio.io/includeOutboundIPRanges" | "traffic.sidecar.istio.io/excludeOutboundIPRanges" => {
            cidrs(value)
        }
        "proxy.istio.io/config" => {
            mesh_api::resource::parse_yaml_stream(value).map(|_| ()).map_err(|e| format!("not valid YAML: {e}"))
        }
        _ => Ok(()),
    }
}

/// `annotations.K8sAnalyzer`: unknown Istio annotations (IST0108), annotations on a kind they do
/// not apply to (IST0107), deprecated ones (IST0135) and invalid values (IST0125).
pub struct K8sAnalyzer;

impl Analyzer for K8sAnalyzer {
    fn name(&self) -> &'static str {
        "annotations.K8sAnalyzer"
    }

    fn description(&self) -> &'static str {
        "Checks for misplaced and invalid Istio annotations in Kubernetes resources"
    }

    fn analyze(&self, input: &Input, out: &mut Vec<Message>) {
        for r in annotated(input) {
            for (name, value) in annotations(r) {
                if !is_istio(name) || SET_BY_ISTIO.contains(&name) {
                    continue;
                }
                let Some(def) = lookup(name) else {
                    out.push(Message::new(&UNKNOWN_ANNOTATION, r, format!("Unknown annotation: {name}")));
                    continue;
                };
                let replaced_by_label = name == "sidecar.istio.io/inject" && r.label(name).is_some();
                if def.deprecated && !replaced_by_label {
                    let extra = if name == "sidecar.istio.io/inject" {
                        " in favor of the \"sidecar.istio.io/inject\" label"
                    } else {
                        ""
                    };
                    out.push(Message::new(
                        &DEPRECATED_ANNOTATION,
                        r,
                        format!(
                            "Annotation {name:?} has been deprecated{extra} and may not work in future Istio versions."
                        ),
                    ));
                }
                if def.kinds.is_empty() {
                    continue;
                }
                if !def.kinds.contains(&r.kind.as_str()) {
                    out.push(Message::new(
                        &MISPLACED_ANNOTATION,
                        r,
                        format!("Misplaced annotation: {name} can only be applied to {}", def.kinds.join(", ")),
                    ));
                    continue;
                }
                if let Err(why) = validate(name, value) {
                    out.push(Message::new(&INVALID_ANNOTATION, r, format!("Invalid annotation {name}: {why}")));
                }
            }
        }
    }
}

/// `annotations.AlphaAnalyzer`: annotations of alpha-phase features (IST0136). Not part of the
/// default set (as in istioctl); run it with `--analyzer annotations.AlphaAnalyzer`.
pub struct AlphaAnalyzer;

/// Set on pods by default when the istio-cni plugin (not an `istio-init` container) does the
/// traffic capture.
const SET_BY_CNI: &[&str] = &[
    "sidecar.istio.io/interceptionMode",
    "traffic.sidecar.istio.io/includeInboundPorts",
    "traffic.sidecar.istio.io/excludeInboundPorts",
    "traffic.sidecar.istio.io/includeOutboundIPRanges",
];

impl Analyzer for AlphaAnalyzer {
    fn name(&self) -> &'static str {
        "annotations.AlphaAnalyzer"
    }

    fn description(&self) -> &'static str {
        "Checks for alpha Istio annotations in Kubernetes resources"
    }

    fn default_enabled(&self) -> bool {
        false
    }

    fn analyze(&self, input: &Input, out: &mut Vec<Message>) {
        for r in annotated(input) {
            let cni = r.kind == "Pod"
                && !r
                    .spec()
                    .get("initContainers")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .any(|c| c.get("name").and_then(Value::as_str) == Some("istio-init"));
            for (name, _) in annotations(r) {
                if !is_istio(name) || SET_BY_ISTIO.contains(&name) || (cni && SET_BY_CNI.contains(&name)) {
                    continue;
                }
                if lookup(name).is_some_and(|d| d.status == Alpha && !d.hidden) {
                    out.push(Message::new(
                        &ALPHA_ANNOTATION,
                        r,
                        format!(
                            "Annotation {name:?} is part of an alpha-phase feature and may be incompletely supported."
                        ),
                    ));
                }
            }
        }
    }
}
