//! Sidecar injection analyzers: namespaces not enabled (or enabled twice over), pods that
//! should have a proxy and do not, proxies running an image other than the injector's, and
//! `image: auto` workloads that no injection webhook will fill in.

use std::collections::BTreeMap;

use serde_json::Value;

use super::messages::*;
use super::{Input, Message, Res, label_selector_matches, string_map};

const INJECTION_LABEL: &str = "istio-injection";
const REVISION_LABEL: &str = "istio.io/rev";
const PROXY: &str = "istio-proxy";

/// Namespaces Istio never injects.
fn system_namespace(ns: &str) -> bool {
    matches!(ns, "istio-system" | "kube-system" | "kube-public" | "kube-node-lease" | "local-path-storage")
}

/// The sidecar injector's ConfigMap for a revision.
fn injector_config_map(revision: &str) -> String {
    if revision.is_empty() || revision == "default" {
        "istio-sidecar-injector".into()
    } else {
        format!("istio-sidecar-injector-{revision}")
    }
}

/// The injector's Helm values (`data.values`, JSON) of a ConfigMap.
fn injector_values(cm: &Res) -> Option<Value> {
    serde_json::from_str(cm.value.pointer("/data/values")?.as_str()?).ok()
}

/// The containers of a Pod, or of a Deployment's pod template; init containers too (native
/// sidecars run there).
fn containers(spec: &Value) -> impl Iterator<Item = &Value> {
    ["containers", "initContainers"]
        .into_iter()
        .flat_map(move |k| spec.get(k).and_then(Value::as_array).into_iter().flatten())
}

pub(super) fn proxy_image(spec: &Value) -> Option<&str> {
    containers(spec)
        .find(|c| c.get("name").and_then(Value::as_str) == Some(PROXY))
        .and_then(|c| c.get("image").and_then(Value::as_str))
        .filter(|i| !i.is_empty())
}

/// `injection.Analyzer`: every namespace outside the system ones should say whether it is
/// injected (else IST0102, or IST0148 when the injector enables namespaces by default); one
/// injection mechanism per namespace (IST0123); pods in injected namespaces need the proxy
/// unless they opt out or use the host network (IST0103).
pub struct Analyzer;

impl super::Analyzer for Analyzer {
    fn name(&self) -> &'static str {
        "injection.Analyzer"
    }

    fn description(&self) -> &'static str {
        "Checks conditions related to Istio sidecar injection"
    }

    fn judges_workloads(&self) -> bool {
        true
    }

    fn analyze(&self, input: &Input, out: &mut Vec<Message>) {
        let config_maps: Vec<&Res> = input.of_kind("", "ConfigMap").collect();
        let mut injected: Vec<&str> = Vec::new();
        // As istioctl does, the last injector ConfigMap read decides for later namespaces too.
        let mut by_default = false;
        for ns in input.of_kind("", "Namespace") {
            if system_namespace(&ns.name) {
                continue;
            }
            let injection = ns.label(INJECTION_LABEL).unwrap_or("");
            let revision = ns.label(REVISION_LABEL);
            let ambient = ns.label("istio.io/dataplane-mode") == Some("ambient");
            if let Some(cm) = config_maps.iter().find(|c| c.name == injector_config_map(revision.unwrap_or(""))) {
                by_default = injector_values(cm)
                    .and_then(|v| v.pointer("/sidecarInjectorWebhook/enableNamespacesByDefault")?.as_bool())
                    .unwrap_or(false);
            }
            let mechanisms = [injection == "enabled", revision.is_some(), ambient].iter().filter(|m| **m).count();
            if mechanisms > 1 {
                let labels: Vec<String> = [
                    (injection == "enabled").then(|| INJECTION_LABEL.to_string()),
                    revision.map(|_| REVISION_LABEL.to_string()),
                    ambient.then(|| "istio.io/dataplane-mode".to_string()),
                ]
                .into_iter()
                .flatten()
                .collect();
                out.push(Message::new(
                    &NAMESPACE_MULTIPLE_INJECTION_LABELS,
                    ns,
                    format!("The namespace has more than one type of injection labels {labels:?}, which may lead to undefined behavior. Make sure only one injection label exists."),
                ));
                continue;
            }
            if ambient {
                continue; // ambient mode: no sidecars expected
            }
            if injection.is_empty() && revision.is_none() {
                if by_default {
                    out.push(Message::new(
                        &NAMESPACE_INJECTION_ENABLED_BY_DEFAULT,
                        ns,
                        "is enabled for Istio injection, as Istio is installed with enableNamespacesByDefault as true."
                            .into(),
                    ));
                } else {
                    out.push(Message::new(
                        &NAMESPACE_NOT_INJECTED,
                        ns,
                        format!(
                            "The namespace is not enabled for Istio injection. Run 'kubectl label namespace {0} istio-injection=enabled' to enable it, or 'kubectl label namespace {0} istio-injection=disabled' to explicitly mark it as not needing injection.",
                            ns.name
                        ),
                    ));
                }
                continue;
            }
            if revision.is_none() && injection != "enabled" {
                continue; // deliberately not injected
            }
            injected.push(&ns.name);
        }
        for pod in input.of_kind("", "Pod") {
            if !injected.contains(&pod.ns()) {
                continue;
            }
            let inject = pod.label("sidecar.istio.io/inject").or_else(|| pod.annotation("sidecar.istio.io/inject"));
            if inject.is_some_and(|v| v.eq_ignore_ascii_case("false")) {
                continue;
            }
            if pod.spec().get("hostNetwork").and_then(Value::as_bool) == Some(true) {
                continue;
            }
            if proxy_image(pod.spec()).is_none() {
                out.push(Message::new(
                    &POD_MISSING_PROXY,
                    pod,
                    format!(
                        "The pod {}/{} is missing the Istio proxy. This can often be resolved by restarting or redeploying the workload.",
                        pod.ns(),
                        pod.name
                    ),
                ));
            }
        }
    }
}

/// The proxy image variant (`distroless`, ...) a pod gets: mesh config, then the root
/// namespace's ProxyConfig, the namespace's, a workload ProxyConfig, then the pod's
/// `proxy.istio.io/config` annotation; `default` means none.
fn image_type(input: &Input, pod: &Res) -> String {
    let of = |v: Option<&Value>| {
        v.and_then(|v| v.pointer("/image/imageType"))
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
            .map(str::to_string)
    };
    let root = input.mesh_config.get("rootNamespace").and_then(Value::as_str).unwrap_or("istio-system");
    let mut variant = of(input.mesh_config.get("defaultConfig")).unwrap_or_default();
    let proxy_configs: Vec<&Res> = input.of_kind("networking.istio.io", "ProxyConfig").collect();
    if let Some(t) = proxy_configs.iter().filter(|p| p.ns() == root).filter_map(|p| of(Some(p.spec()))).next_back() {
        variant = t;
    }
    if let Some(t) = proxy_configs
        .iter()
        .filter(|p| p.ns() != root && p.ns() == pod.ns() && p.spec().get("selector").is_none())
        .filter_map(|p| of(Some(p.spec())))
        .next_back()
    {
        variant = t;
    }
    let labels = pod.labels();
    for p in proxy_configs.iter().filter(|p| p.ns() != root && p.ns() == pod.ns()) {
        let Some(sel) = p.spec().get("selector") else { continue };
        // As istioctl: the workload ProxyConfig applies when its selector holds every pod label.
        let sel = string_map(sel.get("matchLabels"));
        if labels.iter().all(|(k, v)| sel.get(k) == Some(v))
            && let Some(t) = of(Some(p.spec()))
        {
            variant = t;
        }
    }
    if let Some(t) = pod
        .annotation("proxy.istio.io/config")
        .and_then(|y| mesh_api::resource::parse_yaml_stream(y).ok()?.into_iter().next())
        .and_then(|v| of(Some(&v)))
    {
        variant = t;
    }
    if variant == "default" { String::new() } else { variant }
}

/// `injection.ImageAnalyzer`: pods in injected namespaces whose proxy image is not the one the
/// injector (of the namespace's revision) would put there now, usually after an upgrade.
pub struct ImageAnalyzer;

impl super::Analyzer for ImageAnalyzer {
    fn name(&self) -> &'static str {
        "injection.ImageAnalyzer"
    }

    fn description(&self) -> &'static str {
        "Checks the image of auto-injection configured with the running proxies on pods"
    }

    fn judges_workloads(&self) -> bool {
        true
    }

    fn analyze(&self, input: &Input, out: &mut Vec<Message>) {
        let images: BTreeMap<String, String> = input
            .of_kind("", "ConfigMap")
            .filter(|c| c.name.starts_with("istio-sidecar-injector"))
            .map(|c| {
                let v = injector_values(c).unwrap_or(Value::Null);
                let s = |p: &str| v.pointer(p).and_then(Value::as_str).unwrap_or("").to_string();
                let image = s("/global/proxy/image");
                let full = if image.contains('/') {
                    image
                } else {
                    format!("{}/{image}:{}", s("/global/hub"), s("/global/tag"))
                };
                (c.name.clone(), full)
            })
            .collect();
        if images.is_empty() {
            return;
        }
        let mut revisions: BTreeMap<&str, (&Res, String)> = BTreeMap::new();
        for ns in input.of_kind("", "Namespace") {
            match (ns.label(REVISION_LABEL), ns.label(INJECTION_LABEL)) {
                (Some(rev), _) => revisions.insert(&ns.name, (ns, rev.to_string())),
                (None, Some("enabled")) => revisions.insert(&ns.name, (ns, "default".to_string())),
                _ => None,
            };
        }
        let mut mismatched: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for pod in input.of_kind("", "Pod") {
            let Some((_, rev)) = revisions.get(pod.ns()) else { continue };
            if pod.annotation("sidecar.istio.io/proxyImage").is_some_and(|v| !v.is_empty()) {
                continue;
            }
            let Some(want) = images.get(&injector_config_map(rev)) else { continue };
            let variant = image_type(input, pod);
            for c in containers(pod.spec()).filter(|c| c.get("name").and_then(Value::as_str) == Some(PROXY)) {
                let image = c.get("image").and_then(Value::as_str).unwrap_or("");
                if image != want && image != format!("{want}-{variant}") {
                    mismatched.entry(pod.ns()).or_default().push(&pod.name);
                }
            }
        }
        for (ns, pods) in mismatched {
            if let Some((ns_res, _)) = revisions.get(ns) {
                out.push(Message::new(
                    &PROXY_IMAGE_MISMATCH,
                    ns_res,
                    format!("The Istio proxy images of the pods running in the namespace do not match the image defined in the injection configuration (pod names: {pods:?}). This often happens after upgrading the Istio control-plane and can be fixed by redeploying the pods."),
                ));
            }
        }
    }
}

/// `injection.ImageAutoAnalyzer`: `image: auto` on the proxy container is a placeholder the
/// injection webhook fills in. A Pod with it is already past admission, so it is broken
/// (IST0147); a Deployment whose pods no Istio webhook selects will be (IST0146).
pub struct ImageAutoAnalyzer;

fn has_auto_image(spec: &Value) -> bool {
    spec.get("containers").and_then(Value::as_array).into_iter().flatten().any(|c| {
        c.get("name").and_then(Value::as_str) == Some(PROXY) && c.get("image").and_then(Value::as_str) == Some("auto")
    })
}

impl super::Analyzer for ImageAutoAnalyzer {
    fn name(&self) -> &'static str {
        "injection.ImageAutoAnalyzer"
    }

    fn description(&self) -> &'static str {
        "Makes sure that Pods and Deployments with `image: auto` are going to be injected"
    }

    fn judges_workloads(&self) -> bool {
        true
    }

    fn analyze(&self, input: &Input, out: &mut Vec<Message>) {
        let webhooks: Vec<&Value> = input
            .of_kind("admissionregistration.k8s.io", "MutatingWebhookConfiguration")
            .flat_map(|m| m.value.get("webhooks").and_then(Value::as_array).into_iter().flatten())
            .filter(|w| w.get("name").and_then(Value::as_str).is_some_and(|n| n.ends_with("istio.io")))
            .collect();
        for pod in input.of_kind("", "Pod").filter(|p| has_auto_image(p.spec())) {
            out.push(Message::new(
                &IMAGE_AUTO_WITHOUT_INJECTION_ERROR,
                pod,
                format!(
                    "Pod {} contains `image: auto` but does not match any Istio injection webhook selectors.",
                    pod.name
                ),
            ));
        }
        for d in input.of_kind("apps", "Deployment") {
            let Some(template) = d.spec().get("template") else { continue };
            if !has_auto_image(template.get("spec").unwrap_or(&Value::Null)) {
                continue;
            }
            let ns_labels =
                input.of_kind("", "Namespace").find(|n| n.name == d.ns()).map(Res::labels).unwrap_or_default();
            let pod_labels = string_map(template.pointer("/metadata/labels"));
            let matched = webhooks.iter().any(|w| {
                label_selector_matches(w.get("namespaceSelector"), &ns_labels)
                    && label_selector_matches(w.get("objectSelector"), &pod_labels)
            });
            if !matched {
                out.push(Message::new(
                    &IMAGE_AUTO_WITHOUT_INJECTION_WARNING,
                    d,
                    format!(
                        "Deployment {} contains `image: auto` but does not match any Istio injection webhook selectors.",
                        d.name
                    ),
                ));
            }
        }
    }
}
