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
