//! EnvoyFilter analyzers: patch operations that Envoy ignores or that depend on filter order.

use serde_json::Value;

use super::messages::*;
use super::{Analyzer, Input, Message};

/// `envoyfilter.EnvoyPatchAnalyzer`: ADD and REMOVE do nothing on ROUTE_CONFIGURATION and
/// HTTP_ROUTE; REPLACE only works on HTTP_FILTER and NETWORK_FILTER; relative operations
/// (INSERT_BEFORE/AFTER, REPLACE, REMOVE) without a priority may apply in the wrong order, and
/// worse when an earlier patch targets the same filter for a specific proxy version.
pub struct EnvoyPatchAnalyzer;

const TEXT_RELATIVE: &str = "This EnvoyFilter does not have a priority and has a relative patch operation set which can cause the EnvoyFilter not to be applied. Using the INSERT_FIRST of ADD option or setting the priority may help in ensuring the EnvoyFilter is applied correctly.";
const TEXT_RELATIVE_VERSION: &str = "This EnvoyFilter does not have a priority and has a relative patch operation (NSTERT_BEFORE/AFTER, REPLACE, MERGE, DELETE) and proxyVersion set which can cause the EnvoyFilter not to be applied during an upgrade. Using the INSERT_FIRST or ADD option or setting the priority may help in ensuring the EnvoyFilter is applied correctly.";

impl Analyzer for EnvoyPatchAnalyzer {
    fn name(&self) -> &'static str {
        "envoyfilter.EnvoyPatchAnalyzer"
    }

    fn description(&self) -> &'static str {
        "Checks an envoyFilters "
    }

    fn analyze(&self, input: &Input, out: &mut Vec<Message>) {
        // Names of the filters patched by EnvoyFilters (seen so far) that match a proxyVersion.
        let mut versioned: Vec<String> = Vec::new();
        for ef in input.of_kind("networking.istio.io", "EnvoyFilter") {
            let priority = ef.spec().get("priority").and_then(Value::as_i64).unwrap_or(0);
            for patch in ef.spec().get("configPatches").and_then(Value::as_array).into_iter().flatten() {
                let Some(p) = patch.get("patch").filter(|p| p.is_object()) else { break };
                // The patched filter: the patch value's name, else the matched filter's name.
                let instance = match p.get("value").filter(|v| v.is_object()) {
                    Some(v) => match v.get("name") {
                        Some(n) => n.to_string(),
                        None => patch
                            .pointer("/match/listener/filterChain/filter/name")
                            .and_then(Value::as_str)
                            .unwrap_or("")
                            .to_string(),
                    },
                    None => String::new(),
                };
                let apply_to = patch.get("applyTo").and_then(Value::as_str).unwrap_or("INVALID");
                let route_level = matches!(apply_to, "ROUTE_CONFIGURATION" | "HTTP_ROUTE");
                let mut relative = false;
                match p.get("operation").and_then(Value::as_str).unwrap_or("INVALID") {
                    "ADD" if route_level => out.push(Message::new(
                        &ENVOY_FILTER_ADD_INCORRECTLY,
                        ef,
                        "The ADD operation will be ignored when applyTo is set to ROUTE_CONFIGURATION, or HTTP_ROUTE."
                            .into(),
                    )),
                    "REMOVE" if route_level => out.push(Message::new(
                        &ENVOY_FILTER_REMOVE_INCORRECTLY,
                        ef,
                        "The REMOVE operation will be ignored when applyTo is set to ROUTE_CONFIGURATION, or HTTP_ROUTE."
                            .into(),
                    )),
                    "REPLACE" if !matches!(apply_to, "NETWORK_FILTER" | "HTTP_FILTER") => out.push(Message::new(
                        &ENVOY_FILTER_REPLACE_INCORRECTLY,
                        ef,
                        "The REPLACE operation is only valid for HTTP_FILTER and NETWORK_FILTER.".into(),
                    )),
                    "REMOVE" | "REPLACE" | "INSERT_BEFORE" | "INSERT_AFTER" => relative = true,
                    _ => {}
                }
                if relative && priority == 0 {
                    out.push(if versioned.contains(&instance) {
                        Message::new(&ENVOY_FILTER_RELATIVE_WITH_PROXY_VERSION, ef, TEXT_RELATIVE_VERSION.into())
                    } else {
                        Message::new(&ENVOY_FILTER_RELATIVE_OPERATION, ef, TEXT_RELATIVE.into())
                    });
                }
                let has_version =
                    patch.pointer("/match/proxy/proxyVersion").and_then(Value::as_str).is_some_and(|v| !v.is_empty());
                if has_version {
                    versioned.push(instance);
                }
            }
        }
    }
}
