//! Analyzers of the control plane's own resources: injection webhooks that overlap or point at
//! nothing, webhooks of an external control plane, and istiod's JWKS fetch restrictions.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::messages::*;
use super::{Analyzer, Input, Message, Res, label_selector_matches, string_map};

const ADMISSION: &str = "admissionregistration.k8s.io";

fn webhooks(r: &Res) -> impl Iterator<Item = &Value> {
    r.value.get("webhooks").and_then(Value::as_array).into_iter().flatten()
}

fn hook_name(h: &Value) -> &str {
    h.get("name").and_then(Value::as_str).unwrap_or("")
}

/// The host of a URL (`scheme://[user@]host[:port]/...`), or None when it is not a URL.
fn url_host(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?', '#']).next()?;
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host =
        if let Some(v6) = host_port.strip_prefix('[') { v6.split(']').next()? } else { host_port.split(':').next()? };
    (!host.is_empty() && !host.contains(char::is_whitespace)).then_some(host)
}

/// `externalcontrolplane.ExternalControlPlaneAnalyzer`: Istio's validating and injecting webhooks
/// must reach istiod, through a Service or a URL; a URL should name a host, not an IP address.
/// (Unlike istioctl, the host is not looked up in DNS: analysis stays offline.)
pub struct ExternalControlPlaneAnalyzer;

impl Analyzer for ExternalControlPlaneAnalyzer {
    fn name(&self) -> &'static str {
        "externalcontrolplane.ExternalControlPlaneAnalyzer"
    }

    fn description(&self) -> &'static str {
        "Checks that the remote IstioOperator resources reference an external control plane"
    }

    fn analyze(&self, input: &Input, out: &mut Vec<Message>) {
        let validating = input
            .of_kind(ADMISSION, "ValidatingWebhookConfiguration")
            .filter(|w| w.name == "istiod-default-validator" || w.name.starts_with("istio-validator"));
        let mutating = input
            .of_kind(ADMISSION, "MutatingWebhookConfiguration")
            .filter(|w| w.name.starts_with("istio-sidecar-injector"));
        for config in validating.chain(mutating) {
            for hook in webhooks(config) {
                let name = hook_name(hook);
                let client = hook.get("clientConfig");
                match client.and_then(|c| c.get("url")).and_then(Value::as_str) {
                    Some(url) => match url_host(url) {
                        None => out.push(Message::new(
                            &INVALID_EXTERNAL_CONTROL_PLANE_CONFIG,
                            config,
                            format!("The hostname ({url}) that was provided for the webhook ({name}) to reach the ingress gateway on the external control plane cluster was provided in an invalid format. Traffic may not flow properly."),
                        )),
                        Some(host) if host.parse::<std::net::IpAddr>().is_ok() => out.push(Message::new(
                            &EXTERNAL_CONTROL_PLANE_ADDRESS_IS_IP,
                            config,
                            format!("The address ({url}) that was provided for the webhook ({name}) to reach the ingress gateway on the external control plane cluster is an IP address. This is not recommended for a production environment."),
                        )),
                        Some(_) => {}
                    },
                    None if client.and_then(|c| c.get("service")).is_none_or(Value::is_null) => out.push(Message::new(
                        &INVALID_EXTERNAL_CONTROL_PLANE_CONFIG,
                        config,
                        format!("The hostname () that was provided for the webhook ({name}) to reach the ingress gateway on the external control plane cluster is blank. Traffic may not flow properly."),
                    )),
                    None => {}
                }
            }
        }
    }
}

/// `authn.BlockedCIDRsAnalyzer`: with RequestAuthentications present, istiod fetches JWKS from
/// URIs that users write; without `BLOCKED_CIDRS_IN_JWKS_URIS` it may be pointed at internal
/// addresses.
pub struct BlockedCidrsAnalyzer;

impl Analyzer for BlockedCidrsAnalyzer {
    fn name(&self) -> &'static str {
        "authn.BlockedCIDRsAnalyzer"
    }

    fn description(&self) -> &'static str {
        "Checks that BLOCKED_CIDRS_IN_JWKS_URIS is configured on istiod when RequestAuthentication resources exist"
    }

    fn analyze(&self, input: &Input, out: &mut Vec<Message>) {
        let ras: Vec<String> = input
            .of_kind("security.istio.io", "RequestAuthentication")
            .map(|r| match &r.namespace {
                Some(ns) => format!("{ns}/{}", r.name),
                None => r.name.clone(),
            })
            .collect();
        if ras.is_empty() {
            return;
        }
        let names = if ras.len() <= 5 {
            ras.join(", ")
        } else {
            format!("{}, and {} more", ras[..5].join(", "), ras.len() - 5)
        };
        for d in input.of_kind("apps", "Deployment").filter(|d| d.label("app") == Some("istiod")) {
            let configured = d
                .spec()
                .pointer("/template/spec/containers")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .flat_map(|c| c.get("env").and_then(Value::as_array).into_iter().flatten())
                .any(|e| {
                    e.get("name").and_then(Value::as_str) == Some("BLOCKED_CIDRS_IN_JWKS_URIS")
                        && e.get("value").and_then(Value::as_str).is_some_and(|v| !v.is_empty())
                });
            if !configured {
                out.push(Message::new(
                    &JWKS_URI_FETCH_UNRESTRICTED,
                    d,
                    format!("BLOCKED_CIDRS_IN_JWKS_URIS is not configured but {} RequestAuthentication resource(s) exist ({names}). Consider configuring it to restrict JWKS URI fetches to trusted networks.", ras.len()),
                ));
            }
        }
    }
}

/// `webhook.Analyzer`: for every combination of injection labels a namespace and a pod can have
/// (`istio-injection`, `sidecar.istio.io/inject`, each revision's `istio.io/rev`), at most one
/// Istio injection webhook may match, or pods are injected twice; and each webhook's Service
/// must exist.
pub struct WebhookAnalyzer;

fn revisions_of(config: &Res) -> Vec<String> {
    let mut revs = Vec::new();
    if let Some(r) = config.label("istio.io/rev") {
        revs.push(r.to_string());
    }
    for hook in webhooks(config) {
        for sel in ["namespaceSelector", "objectSelector"] {
            let Some(s) = hook.get(sel) else { continue };
            if let Some(r) = s.pointer("/matchLabels/istio.io~1rev").and_then(Value::as_str) {
                revs.push(r.to_string());
            }
            for e in s.get("matchExpressions").and_then(Value::as_array).into_iter().flatten() {
                if e.get("key").and_then(Value::as_str) == Some("istio.io/rev") {
                    revs.extend(
                        e.get("values")
                            .and_then(Value::as_array)
                            .into_iter()
                            .flatten()
                            .filter_map(Value::as_str)
                            .map(str::to_string),
                    );
                }
            }
        }
    }
    revs
}

impl Analyzer for WebhookAnalyzer {
    fn name(&self) -> &'static str {
        "webhook.Analyzer"
    }

    fn description(&self) -> &'static str {
        "Checks the validity of Istio webhooks"
    }

    fn analyze(&self, input: &Input, out: &mut Vec<Message>) {
        let mut configs: Vec<&Res> = Vec::new();
        let mut revisions = BTreeSet::new();
        for config in input.of_kind(ADMISSION, "MutatingWebhookConfiguration") {
            let revs = revisions_of(config);
            if revs.is_empty() && !webhooks(config).any(|h| hook_name(h).ends_with("istio.io")) {
                continue;
            }
            revisions.extend(revs);
            configs.push(config);
        }
        let with_revisions = |base: Vec<BTreeMap<String, String>>| {
            let mut all = base.clone();
            for rev in &revisions {
                for b in &base {
                    let mut l = b.clone();
                    l.insert("istio.io/rev".into(), rev.clone());
                    all.push(l);
                }
            }
            all
        };
        let set = |k: &str, v: &str| BTreeMap::from([(k.to_string(), v.to_string())]);
        let namespaces = with_revisions(vec![
            BTreeMap::new(),
            set("istio-injection", "enabled"),
            set("istio-injection", "disabled"),
        ]);
        let objects = with_revisions(vec![
            BTreeMap::new(),
            set("sidecar.istio.io/inject", "true"),
            set("sidecar.istio.io/inject", "false"),
        ]);
        let mut reported = BTreeSet::new();
        for ns in &namespaces {
            for obj in &objects {
                let matches: BTreeMap<String, &Res> = configs
                    .iter()
                    .flat_map(|c| webhooks(c).map(move |h| (c, h)))
                    .filter(|(_, h)| {
                        label_selector_matches(h.get("namespaceSelector"), ns)
                            && label_selector_matches(h.get("objectSelector"), obj)
                    })
                    .map(|(c, h)| (format!("{}/{}", c.name, hook_name(h)), *c))
                    .collect();
                if matches.len() < 2 {
                    continue;
                }
                for (name, config) in &matches {
                    let others: Vec<&str> = matches.keys().map(String::as_str).filter(|n| n != name).collect();
                    let text =
                        format!("Webhook overlaps with others: {others:?}. This may cause injection to occur twice.");
                    if reported.insert((name.clone(), text.clone())) {
                        out.push(Message::new(&INVALID_WEBHOOK, config, text));
                    }
                }
            }
        }
        for config in &configs {
            for hook in webhooks(config) {
                let Some(svc) = hook.pointer("/clientConfig/service").filter(|s| s.is_object()) else { continue };
                let s = string_map(Some(svc));
                let (ns, name) =
                    (s.get("namespace").cloned().unwrap_or_default(), s.get("name").cloned().unwrap_or_default());
                if !input.of_kind("", "Service").any(|x| x.ns() == ns && x.name == name) {
                    out.push(Message::new(
                        &INVALID_WEBHOOK,
                        config,
                        format!("Injector refers to a control plane service that does not exist: {ns}/{name}."),
                    ));
                }
            }
        }
    }
}
