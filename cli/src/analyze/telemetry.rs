//! Telemetry analyzers: providers that do not exist or are deprecated, and selectors that pick
//! nothing or overlap.

use std::collections::BTreeMap;

use serde_json::Value;

use super::messages::*;
use super::{Analyzer, Input, Message, Res, selector_string, selects, string_map};

const GROUP: &str = "telemetry.istio.io";

/// `telemetry.ProviderAnalyzer`: without default access-log providers in the mesh config, an
/// `accessLogging` entry that names no provider (and does not disable logging) does nothing.
pub struct ProviderAnalyzer;

impl Analyzer for ProviderAnalyzer {
    fn name(&self) -> &'static str {
        "telemetry.ProviderAnalyzer"
    }

    fn description(&self) -> &'static str {
        "Validates that providers in telemery resource is valid"
    }

    fn analyze(&self, input: &Input, out: &mut Vec<Message>) {
        let defaults = input
            .mesh_config
            .pointer("/defaultProviders/accessLogging")
            .and_then(Value::as_array)
            .is_some_and(|a| !a.is_empty());
        if defaults {
            return;
        }
        for t in input.of_kind(GROUP, "Telemetry") {
            for entry in t.spec().get("accessLogging").and_then(Value::as_array).into_iter().flatten() {
                let providers = entry.get("providers").and_then(Value::as_array).is_some_and(|p| !p.is_empty());
                let disabled = entry.get("disabled").and_then(Value::as_bool) == Some(true);
                if !providers && !disabled {
                    out.push(Message::new(
                        &INVALID_TELEMETRY_PROVIDER,
                        t,
                        format!(
                            "The Telemetry {} in namespace {:?} with empty providers will be ignored.",
                            t.name,
                            t.ns()
                        ),
                    ));
                }
            }
        }
    }
}

/// `telemetry.LightstepAnalyzer`: tracing through a Lightstep extension provider, which Istio
/// deprecated in favour of OpenTelemetry.
pub struct LightstepAnalyzer;

impl Analyzer for LightstepAnalyzer {
    fn name(&self) -> &'static str {
        "telemetry.LightstepAnalyzer"
    }

    fn description(&self) -> &'static str {
        "Validates that lightstep provider is still used"
    }

    fn analyze(&self, input: &Input, out: &mut Vec<Message>) {
        let lightstep: Vec<&str> = input
            .mesh_config
            .get("extensionProviders")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|p| p.get("lightstep").is_some())
            .filter_map(|p| p.get("name").and_then(Value::as_str))
            .collect();
        if lightstep.is_empty() {
            return;
        }
        for t in input.of_kind(GROUP, "Telemetry") {
            for tracing in t.spec().get("tracing").and_then(Value::as_array).into_iter().flatten() {
                for p in tracing.get("providers").and_then(Value::as_array).into_iter().flatten() {
                    let name = p.get("name").and_then(Value::as_str).unwrap_or("");
                    if lightstep.contains(&name) {
                        out.push(Message::new(
                            &DEPRECATED,
                            t,
                            format!(
                                "Deprecated: The Lightstep provider {name} is deprecated; use the OpenTelemetry provider instead."
                            ),
                        ));
                    }
                }
            }
        }
    }
}

/// `telemetry.SelectorAnalyzer`: a Telemetry's selector must select pods in its namespace, and
/// no pod may be selected by two Telemetries.
pub struct SelectorAnalyzer;

impl Analyzer for SelectorAnalyzer {
    fn name(&self) -> &'static str {
        "telemetry.SelectorAnalyzer"
    }

    fn description(&self) -> &'static str {
        "Validates that telemetries that define a selector match at least one pod, and that there aren't multiple telemetry resources that select overlapping pods"
    }

    fn judges_workloads(&self) -> bool {
        true
    }

    fn analyze(&self, input: &Input, out: &mut Vec<Message>) {
        let pods: Vec<&Res> = input.of_kind("", "Pod").collect();
        let mut selecting: BTreeMap<(String, String), Vec<&Res>> = BTreeMap::new();
        for t in input.of_kind(GROUP, "Telemetry") {
            let selector = string_map(t.spec().get("selector").and_then(|s| s.get("matchLabels")));
            if selector.is_empty() {
                continue;
            }
            let matched: Vec<&&Res> =
                pods.iter().filter(|p| p.ns() == t.ns() && selects(&selector, &p.labels())).collect();
            if matched.is_empty() {
                out.push(Message::new(
                    &REFERENCED_RESOURCE_NOT_FOUND,
                    t,
                    format!("Referenced selector not found: {:?}", selector_string(&selector)),
                ));
            }
            for p in matched {
                selecting.entry((p.ns().to_string(), p.name.clone())).or_default().push(t);
            }
        }
        for ((ns, pod), ts) in selecting.iter().filter(|(_, v)| v.len() > 1) {
            let names: Vec<&str> = ts.iter().map(|t| t.name.as_str()).collect();
            for t in ts {
                out.push(Message::new(
                    &CONFLICTING_TELEMETRY_SELECTORS,
                    t,
                    format!("The Telemetries {names:?} in namespace {ns:?} select the same workload pod {pod:?}, which can lead to undefined behavior."),
                ));
            }
        }
    }
}

/// `telemetry.DefaultSelectorAnalyzer`: at most one Telemetry per namespace may apply to every
/// workload (no selector, no target reference).
pub struct DefaultSelectorAnalyzer;

impl Analyzer for DefaultSelectorAnalyzer {
    fn name(&self) -> &'static str {
        "telemetry.DefaultSelectorAnalyzer"
    }

    fn description(&self) -> &'static str {
        "Validates that there aren't multiple telemetry resources that have no selector"
    }

    fn analyze(&self, input: &Input, out: &mut Vec<Message>) {
        let mut by_ns: BTreeMap<&str, Vec<&Res>> = BTreeMap::new();
        for t in input.of_kind(GROUP, "Telemetry") {
            let s = t.spec();
            if s.get("selector").is_none() && s.get("targetRef").is_none() && s.get("targetRefs").is_none() {
                by_ns.entry(t.ns()).or_default().push(t);
            }
        }
        for (ns, ts) in by_ns.iter().filter(|(_, v)| v.len() > 1) {
            let names: Vec<&str> = ts.iter().map(|t| t.name.as_str()).collect();
            for t in ts {
                out.push(Message::new(
                    &MULTIPLE_TELEMETRIES_WITHOUT_SELECTOR,
                    t,
                    format!("The Telemetries {names:?} in namespace {ns:?} have no workload selector, which can lead to undefined behavior."),
                ));
            }
        }
    }
}
