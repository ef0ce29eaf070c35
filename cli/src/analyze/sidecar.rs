//! Sidecar analyzers.

use std::collections::BTreeMap;

use super::messages::*;
use super::{Analyzer, Input, Message, Res, selects, string_map};

fn ambient_namespace(input: &Input, ns: &str) -> bool {
    input.of_kind("", "Namespace").find(|n| n.name == ns).is_some_and(|n| {
        n.label("istio.io/dataplane-mode") == Some("ambient")
            && n.label("istio-injection") != Some("enabled")
            && n.label("istio.io/rev").is_none()
    })
}

/// `sidecar.SelectorAnalyzer`: a Sidecar's workload selector must select pods in its namespace;
/// no pod may be selected by two Sidecars; at most one Sidecar per namespace may omit the
/// selector; Sidecars do nothing for ambient workloads.
pub struct SelectorAnalyzer;

impl Analyzer for SelectorAnalyzer {
    fn name(&self) -> &'static str {
        "sidecar.SelectorAnalyzer"
    }

    fn description(&self) -> &'static str {
        "Validates that sidecars that define a workload selector match at least one pod, and that there aren't multiple sidecar resources that select overlapping pods"
    }

    fn judges_workloads(&self) -> bool {
        true
    }

    fn analyze(&self, input: &Input, out: &mut Vec<Message>) {
        let pods: Vec<&Res> = input.of_kind("", "Pod").collect();
        let mut without_selector: BTreeMap<String, Vec<&Res>> = BTreeMap::new();
        // pod (ns/name) -> sidecars selecting it
        let mut selecting: BTreeMap<String, Vec<&Res>> = BTreeMap::new();
        for sc in input.of_kind("networking.istio.io", "Sidecar") {
            let selector = string_map(sc.spec().get("workloadSelector").and_then(|w| w.get("labels")));
            if selector.is_empty() {
                if ambient_namespace(input, sc.ns()) {
                    out.push(Message::new(
                        &INEFFECTIVE_POLICY,
                        sc,
                        "The policy has no impact: namespace is in ambient mode, the policy has no impact.".into(),
                    ));
                } else {
                    without_selector.entry(sc.ns().to_string()).or_default().push(sc);
                }
                continue;
            }
            let matched: Vec<&&Res> =
                pods.iter().filter(|p| p.ns() == sc.ns() && selects(&selector, &p.labels())).collect();
            if matched.is_empty() {
                let sel: Vec<String> = selector.iter().map(|(k, v)| format!("{k}={v}")).collect();
                out.push(Message::new(
                    &REFERENCED_RESOURCE_NOT_FOUND,
                    sc,
                    format!("Referenced selector not found: {:?}", sel.join(",")),
                ));
                continue;
            }
            if matched.iter().all(|p| p.annotation("ambient.istio.io/redirection") == Some("enabled")) {
                out.push(Message::new(
                    &INEFFECTIVE_POLICY,
                    sc,
                    "The policy has no impact: selected workloads are in ambient mode, the policy has no impact."
                        .into(),
                ));
                continue;
            }
            for p in matched {
                selecting.entry(format!("{}/{}", p.ns(), p.name)).or_default().push(sc);
            }
        }
        for (ns, scs) in without_selector.iter().filter(|(_, v)| v.len() > 1) {
            let names: Vec<&str> = scs.iter().map(|s| s.name.as_str()).collect();
            for sc in scs {
                out.push(Message::new(
                    &MULTIPLE_SIDECARS_WITHOUT_SELECTOR,
                    sc,
                    format!("The Sidecars {names:?} in namespace {ns:?} have no workload selector, which can lead to undefined behavior."),
                ));
            }
        }
        for (pod, scs) in selecting.iter().filter(|(_, v)| v.len() > 1) {
            let names: Vec<&str> = scs.iter().map(|s| s.name.as_str()).collect();
            for sc in scs {
                out.push(Message::new(
                    &CONFLICTING_SIDECAR_SELECTORS,
                    sc,
                    format!(
                        "The Sidecars {names:?} in namespace {:?} select the same workload pod {:?}, which can lead to undefined behavior.",
                        sc.ns(),
                        pod.rsplit('/').next().unwrap_or(pod)
                    ),
                ));
            }
        }
    }
}
