//! Validation of resources, with Istio's rules. Every problem is reported with its field path.

use std::collections::{BTreeMap, HashSet};
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::core::ServiceSpec;
use crate::duration;
use crate::meta::ObjectMeta;
use crate::networking::*;
use crate::resource::Resource;

mod gateway_api;
mod security;
pub use security::{CONDITION_BRACKET_KEYS, CONDITION_KEYS, condition_key};

/// One problem in one field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldError {
    /// `spec.http[0].route[1].weight`; empty for the document as a whole.
    pub path: String,
    pub message: String,
}

impl FieldError {
    pub fn new(path: &str, message: impl Into<String>) -> Self {
        FieldError { path: path.to_string(), message: message.into() }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() { f.write_str(&self.message) } else { write!(f, "{}: {}", self.path, self.message) }
    }
}

struct Errs(Vec<FieldError>);

impl Errs {
    fn push(&mut self, path: impl AsRef<str>, msg: impl Into<String>) {
        self.0.push(FieldError::new(path.as_ref(), msg));
    }
}

pub(crate) fn resource(r: &Resource) -> Vec<FieldError> {
    let mut e = Errs(Vec::new());
    meta(r.meta(), &mut e);
    match r {
        Resource::Service(o) => service(&o.spec, &mut e),
        Resource::VirtualService(o) => virtual_service(&o.spec, &mut e),
        Resource::DestinationRule(o) => destination_rule(&o.spec, &mut e),
        Resource::ServiceEntry(o) => service_entry(&o.spec, &mut e),
        Resource::Gateway(o) => gateway(&o.spec, &mut e),
        Resource::PeerAuthentication(o) => security::peer_authentication(&o.spec, &mut e),
        Resource::AuthorizationPolicy(o) => security::authorization_policy(&o.spec, r.namespace(), &mut e),
        Resource::RequestAuthentication(o) => security::request_authentication(&o.spec, r.namespace(), &mut e),
        Resource::LocalRateLimit(o) => security::local_rate_limit(&o.spec, &mut e),
        Resource::Rollout(o) => rollout(&o.spec, &mut e),
        Resource::Telemetry(o) => telemetry(&o.spec, &mut e),
        Resource::Sidecar(o) => sidecar(&o.spec, &mut e),
        Resource::WorkloadEntry(o) => workload_entry(&o.spec, "spec", true, &mut e),
        Resource::ProxyConfig(o) => {
            if let Some(sel) = &o.spec.selector {
                labels(&sel.match_labels, "spec.selector.matchLabels", &mut e);
            }
            if let Some(c) = o.spec.concurrency
                && !(0..=1024).contains(&c)
            {
                e.push("spec.concurrency", format!("{c}: use 0 (one worker per core) up to 1024"));
            }
            for k in o.spec.environment_variables.keys() {
                let ok = !k.is_empty()
                    && !k.starts_with(|c: char| c.is_ascii_digit())
                    && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
                if !ok {
                    e.push(format!("spec.environmentVariables.{k}"), "not an environment variable name");
                }
            }
            if let Some(t) = o.spec.image.as_ref().and_then(|i| i.image_type.as_deref())
                && !matches!(t, "default" | "debug" | "distroless")
            {
                e.push("spec.image.imageType", format!("{t:?}: use default, debug or distroless"));
            }
        }
        Resource::WorkloadGroup(o) => {
            if let Some(m) = &o.spec.metadata {
                labels(&m.labels, "spec.metadata.labels", &mut e);
            }
            // The template's address is given when an entry is made from it.
            let t = &o.spec.template;
            workload_entry(&t.entry(t.address.as_deref().unwrap_or("")), "spec.template", false, &mut e);
        }
        Resource::GatewayClass(o) => gateway_api::gateway_class(&o.spec, &mut e),
        Resource::KubeGateway(o) => gateway_api::gateway(&o.spec, &mut e),
        Resource::HttpRoute(o) => gateway_api::http_route(&o.spec, &mut e),
        Resource::GrpcRoute(o) => gateway_api::grpc_route(&o.spec, &mut e),
        Resource::TcpRoute(o) => gateway_api::l4_route(&o.spec, false, &mut e),
        Resource::TlsRoute(o) => gateway_api::l4_route(&o.spec, true, &mut e),
        Resource::ReferenceGrant(o) => gateway_api::reference_grant(&o.spec, &mut e),
    }
    e.0
}

/// A WorkloadEntry (or a WorkloadGroup's template: no address).
fn workload_entry(s: &WorkloadEntrySpec, path: &str, needs_address: bool, e: &mut Errs) {
    match s.address.as_deref() {
        None | Some("") if needs_address => e.push(format!("{path}.address"), "Required value"),
        None | Some("") => {}
        Some(a) if a.starts_with("unix://") => {
            if !s.ports.is_empty() {
                e.push(format!("{path}.ports"), "UDS may not include ports");
            }
        }
        Some(a) => {
            if a.parse::<std::net::IpAddr>().is_err() && !is_dns_subdomain(&a.to_ascii_lowercase()) {
                e.push(format!("{path}.address"), format!("{a:?} is not an IP address or a DNS name"));
            }
        }
    }
    for (name, port) in &s.ports {
        if !(1..=65535).contains(port) {
            e.push(format!("{path}.ports.{name}"), "port must be between 1-65535");
        }
    }
    labels(&s.labels, &format!("{path}.labels"), e);
    if let Some(w) = s.weight
        && !(0..=i64::from(u32::MAX)).contains(&w)
    {
        e.push(format!("{path}.weight"), "weight must be between 0 and 4294967295");
    }
    if let Some(sa) = &s.service_account
        && !is_dns_subdomain(sa)
    {
        e.push(format!("{path}.serviceAccount"), format!("{sa:?} is not a service account name"));
    }
}

/// A Rollout: a host, two different subsets, steps that move forward and end at 100%, sane
/// thresholds, known webhook types.
fn rollout(s: &crate::rollout::RolloutSpec, e: &mut Errs) {
    let bare = s.host.strip_prefix("*.").unwrap_or(&s.host);
    if s.host.is_empty() {
        e.push("spec.host", "the service whose traffic moves is needed");
    } else if s.host.starts_with("*.") || !is_dns_subdomain(&bare.to_ascii_lowercase()) {
        e.push("spec.host", format!("{:?} is not a service name (a wildcard cannot be rolled out)", s.host));
    }
    for (f, v) in [("stable", &s.stable), ("canary", &s.canary)] {
        if v.is_empty() {
            e.push(format!("spec.{f}"), "a DestinationRule subset name is needed");
        } else if !is_dns_label(v) && !is_dns_subdomain(v) {
            e.push(format!("spec.{f}"), format!("{v:?} is not a subset name"));
        }
    }
    if !s.stable.is_empty() && s.stable == s.canary {
        e.push("spec.canary", "must differ from spec.stable");
    }
    let mut last = 0;
    for (i, st) in s.steps.iter().enumerate() {
        let p = format!("spec.steps[{i}]");
        let set = [st.weight.is_some(), st.matches.is_some(), st.mirror.is_some()].iter().filter(|b| **b).count();
        if set != 1 {
            e.push(&p, "give exactly one of weight, matches or mirror");
        }
        if let Some(w) = st.weight {
            if !(1..=100).contains(&w) {
                e.push(format!("{p}.weight"), format!("{w}: use 1 to 100"));
            } else if w < last {
                e.push(format!("{p}.weight"), format!("{w} is below the step before ({last}): weights only grow"));
            }
            last = last.max(w);
        }
        if let Some(m) = st.mirror
            && !(1..=100).contains(&m)
        {
            e.push(format!("{p}.mirror"), format!("{m}: use 1 to 100"));
        }
        if let Some(m) = &st.matches {
            match (&m.header, &m.cookie) {
                (Some(nv), None) | (None, Some(nv)) => {
                    if nv.name.is_empty() || nv.value.is_empty() {
                        e.push(format!("{p}.matches"), "a name and a value are needed");
                    }
                    if m.header.is_some()
                        && !nv.name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                    {
                        e.push(format!("{p}.matches.header.name"), format!("{:?} is not a header name", nv.name));
                    }
                }
                _ => e.push(format!("{p}.matches"), "give one of header or cookie"),
            }
        }
        if let Some(d) = &st.pause {
            duration_at(d, &format!("{p}.pause"), e);
        }
    }
    if !s.steps.is_empty() && s.steps.iter().filter_map(|st| st.weight).max() != Some(100) {
        e.push("spec.steps", "the last weight step must send 100% to the canary (promotion)");
    }
    if let Some(d) = &s.interval {
        duration_at(d, "spec.interval", e);
    }
    for (i, r) in s.routes.iter().enumerate() {
        if r.is_empty() {
            e.push(format!("spec.routes[{i}]"), "a route name is needed");
        } else if s.routes[..i].contains(r) {
            e.push(format!("spec.routes[{i}]"), format!("{r:?} is named twice"));
        }
    }
    let a = &s.analysis;
    if let Some(r) = a.success_rate
        && !(0.0..=100.0).contains(&r)
    {
        e.push("spec.analysis.successRate", format!("{r}: a percentage, 0 to 100"));
    }
    if let Some(d) = &a.p99 {
        duration_at(d, "spec.analysis.p99", e);
    }
    if a.max_failures == Some(0) {
        e.push("spec.analysis.maxFailures", "0 would roll back before any check: use 1 or more");
    }
    for (i, w) in a.webhooks.iter().enumerate() {
        let p = format!("spec.analysis.webhooks[{i}]");
        if !matches!(w.kind.as_str(), "pre-step" | "post-promotion") {
            e.push(format!("{p}.type"), format!("{:?}: use pre-step or post-promotion", w.kind));
        }
        if !w.url.starts_with("http://") || w.url.len() <= "http://".len() {
            e.push(format!("{p}.url"), format!("{:?}: an http:// URL", w.url));
        }
    }
}

/// A positive duration (`30s`, `1m`, `500ms`).
fn duration_at(d: &str, path: &str, e: &mut Errs) {
    match crate::duration::parse(d) {
        Ok(v) if v.is_zero() => e.push(path, "must be more than 0"),
        Ok(_) => {}
        Err(err) => e.push(path, err),
    }
}

/// Istio's Sidecar rules: egress hosts are `namespace/host`, modes are known.
fn sidecar(s: &SidecarSpec, e: &mut Errs) {
    if let Some(sel) = &s.workload_selector {
        labels(&sel.labels, "spec.workloadSelector.labels", e);
    }
    for (i, eg) in s.egress.iter().enumerate() {
        if eg.hosts.is_empty() {
            e.push(format!("spec.egress[{i}].hosts"), "egress listener must have at least one host");
        }
        for (j, h) in eg.hosts.iter().enumerate() {
            let path = format!("spec.egress[{i}].hosts[{j}]");
            let Some((ns, host)) = h.split_once('/') else {
                e.push(path, format!("{h:?}: use namespace/dnsName (`*/`, `./` or `~/` for any, own or no namespace)"));
                continue;
            };
            if !(matches!(ns, "*" | "." | "~") || is_dns_label(ns)) {
                e.push(&path, format!("namespace {ns:?} is not *, ., ~ or a namespace name"));
            }
            let bare = host.strip_prefix("*.").unwrap_or(host);
            if host != "*" && !is_dns_subdomain(&bare.to_ascii_lowercase()) {
                e.push(&path, format!("host {host:?} is not *, *.suffix or a DNS name"));
            }
        }
        let path = format!("spec.egress[{i}]");
        sidecar_listener(&path, eg.port.as_ref(), eg.bind.as_deref(), eg.capture_mode.as_deref(), e);
        if eg.port.is_none() && i + 1 < s.egress.len() {
            e.push(&path, "the egress listener without a port must be the last one (it catches every other port)");
        }
        if let Some(p) = &eg.port
            && s.egress[..i].iter().any(|o| o.port.as_ref().is_some_and(|q| q.number == p.number) && o.bind == eg.bind)
        {
            e.push(format!("{path}.port.number"), format!("port {} is given twice on the same bind", p.number));
        }
    }
    for (i, ing) in s.ingress.iter().enumerate() {
        let path = format!("spec.ingress[{i}]");
        sidecar_listener(&path, Some(&ing.port), ing.bind.as_deref(), ing.capture_mode.as_deref(), e);
        if ing.bind.as_deref().is_some_and(|b| b.starts_with("unix://")) {
            e.push(format!("{path}.bind"), "an ingress listener binds an IP address, not a unix socket");
        }
        if s.ingress[..i].iter().any(|o| o.port.number == ing.port.number) {
            e.push(format!("{path}.port.number"), format!("port {} has two ingress listeners", ing.port.number));
        }
        if let Some(ep) = &ing.default_endpoint
            && crate::networking::sidecar_endpoint(ep).is_none()
        {
            e.push(
                format!("{path}.defaultEndpoint"),
                format!("{ep:?}: use 127.0.0.1:PORT, 0.0.0.0:PORT, [::1]:PORT, [::]:PORT or unix:///absolute/path"),
            );
        }
    }
    if let Some(mode) = s.outbound_traffic_policy.as_ref().and_then(|p| p.mode.as_deref())
        && !matches!(mode, "ALLOW_ANY" | "REGISTRY_ONLY")
    {
        e.push("spec.outboundTrafficPolicy.mode", format!("{mode:?}: use ALLOW_ANY or REGISTRY_ONLY"));
    }
}

/// A Sidecar listener's port, bind address and capture mode.
fn sidecar_listener(
    path: &str,
    port: Option<&crate::networking::SidecarPort>,
    bind: Option<&str>,
    capture: Option<&str>,
    e: &mut Errs,
) {
    if let Some(p) = port {
        if !(1..=65535).contains(&p.number) {
            e.push(format!("{path}.port.number"), format!("{} is not a port (1-65535)", p.number));
        }
        if let Some(t) = p.target_port
            && !(1..=65535).contains(&t)
        {
            e.push(format!("{path}.port.targetPort"), format!("{t} is not a port (1-65535)"));
        }
    }
    if let Some(m) = capture
        && !matches!(m, "DEFAULT" | "IPTABLES" | "NONE")
    {
        e.push(format!("{path}.captureMode"), format!("{m:?}: use DEFAULT, IPTABLES or NONE"));
    }
    if let Some(b) = bind {
        match b.strip_prefix("unix://") {
            Some(sock) => {
                if !sock.starts_with('/') {
                    e.push(
                        format!("{path}.bind"),
                        format!("{b:?}: a unix socket path must be absolute (unix:///path)"),
                    );
                }
                if capture != Some("NONE") {
                    e.push(format!("{path}.captureMode"), "a unix socket bind needs captureMode NONE");
                }
            }
            None if b.parse::<std::net::IpAddr>().is_err() => {
                e.push(format!("{path}.bind"), format!("{b:?} is not an IP address (or unix:///path)"));
            }
            None => {}
        }
    }
}

/// RFC 1123 label: lowercase alphanumerics and '-', starting and ending alphanumeric, ≤ 63.
pub fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// RFC 1123 subdomain: dot-separated labels, ≤ 253.
pub fn is_dns_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(is_dns_label)
}

fn meta(m: &ObjectMeta, e: &mut Errs) {
    if m.name.is_empty() {
        e.push("metadata.name", "required");
    } else if !is_dns_subdomain(&m.name) {
        e.push(
            "metadata.name",
            format!("{:?} is not a valid name: use lowercase letters, digits, '-' and '.'", m.name),
        );
    }
    if let Some(ns) = &m.namespace
        && !is_dns_label(ns)
    {
        e.push("metadata.namespace", format!("{ns:?} is not a valid namespace name"));
    }
    labels(&m.labels, "metadata.labels", e);
    annotations(&m.annotations, e);
}

/// Kubernetes' limit on all of an object's annotations together (keys and values).
pub const MAX_ANNOTATIONS_BYTES: usize = 256 * 1024;

/// Annotation keys are qualified names (an optional DNS-subdomain prefix and `/`, then a name of
/// at most 63 characters), and all annotations together stay within 256 KiB, as the Kubernetes
/// API server requires.
fn annotations(a: &BTreeMap<String, String>, e: &mut Errs) {
    let total: usize = a.iter().map(|(k, v)| k.len() + v.len()).sum();
    if total > MAX_ANNOTATIONS_BYTES {
        e.push("metadata.annotations", format!("{total} bytes in all: at most {MAX_ANNOTATIONS_BYTES} (256 KiB)"));
    }
    for k in a.keys() {
        let (prefix, name) = match k.rsplit_once('/') {
            Some((p, n)) => (Some(p), n),
            None => (None, k.as_str()),
        };
        let ok_name = !name.is_empty()
            && name.len() <= 63
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
            && name.as_bytes().first().is_some_and(u8::is_ascii_alphanumeric)
            && name.as_bytes().last().is_some_and(u8::is_ascii_alphanumeric);
        if !ok_name || prefix.is_some_and(|p| !is_dns_subdomain(p)) {
            let shown: String = k.chars().take(80).collect();
            e.push(format!("metadata.annotations.{shown}"), "invalid annotation key: use an optional DNS prefix and '/', then at most 63 letters, digits, '-', '_' or '.'");
        }
    }
}

fn labels(l: &BTreeMap<String, String>, path: &str, e: &mut Errs) {
    for (k, v) in l {
        let name = k.rsplit('/').next().unwrap_or(k);
        let ok_name = !name.is_empty()
            && name.len() <= 63
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
        if !ok_name {
            e.push(format!("{path}.{k}"), "invalid label key");
        }
        let ok_value =
            v.len() <= 63 && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
        if !ok_value {
            e.push(format!("{path}.{k}"), format!("invalid label value {v:?}"));
        }
    }
}

fn service(s: &ServiceSpec, e: &mut Errs) {
    let mut names = HashSet::new();
    for (i, p) in s.ports.iter().enumerate() {
        let path = format!("spec.ports[{i}]");
        if !(1..=65535).contains(&p.port) {
            e.push(format!("{path}.port"), format!("{} is not a port number (1-65535)", p.port));
        }
        if p.target_number().is_none() && p.target_name().is_none() {
            e.push(format!("{path}.targetPort"), "must be a port number (1-65535) or a port name");
        }
        match &p.name {
            Some(n) if !names.insert(n.clone()) => {
                e.push(format!("{path}.name"), format!("duplicate port name {n:?}"));
            }
            Some(_) => {}
            None if s.ports.len() > 1 => {
                e.push(format!("{path}.name"), "required when a Service has more than one port")
            }
            None => {}
        }
        if let Some(proto) = &p.protocol
            && !matches!(proto.as_str(), "TCP" | "UDP" | "SCTP")
        {
            e.push(format!("{path}.protocol"), format!("{proto:?} is not one of TCP, UDP, SCTP"));
        }
    }
    labels(&s.selector, "spec.selector", e);
}

fn host(h: &str, path: &str, allow_wildcard: bool, e: &mut Errs) {
    if h.is_empty() {
        e.push(path, "host must not be empty");
        return;
    }
    if h == "*" {
        if !allow_wildcard {
            e.push(path, "wildcard host '*' is not allowed here");
        }
        return;
    }
    let name = match h.strip_prefix("*.") {
        Some(rest) if allow_wildcard => rest,
        Some(_) => {
            e.push(path, format!("wildcard host {h:?} is not allowed here"));
            return;
        }
        None => h,
    };
    if !is_dns_subdomain(&name.to_ascii_lowercase()) {
        e.push(path, format!("{h:?} is not a valid host name"));
    }
}

fn string_match(m: &StringMatch, path: &str, e: &mut Errs) {
    let set = [m.exact.is_some(), m.prefix.is_some(), m.regex.is_some()].iter().filter(|b| **b).count();
    if set != 1 {
        e.push(path, "exactly one of exact, prefix or regex must be set");
    }
    if let Some(p) = &m.prefix
        && p.is_empty()
    {
        e.push(format!("{path}.prefix"), "prefix must not be empty");
    }
    if let Some(r) = &m.regex {
        regex(r, &format!("{path}.regex"), e);
    }
}

fn regex(r: &str, path: &str, e: &mut Errs) {
    if r.is_empty() {
        e.push(path, "regex must not be empty");
    } else if let Err(err) = regex::RegexBuilder::new(r).size_limit(1 << 20).build() {
        e.push(path, format!("invalid regex: {}", err.to_string().lines().last().unwrap_or("")));
    }
}

fn dur(d: &Option<String>, path: &str, e: &mut Errs) {
    if let Some(d) = d {
        match duration::parse(d) {
            // As Istio's CRDs have it: `0s` does not mean "none" either.
            Ok(v) if v < std::time::Duration::from_millis(1) => {
                e.push(path, "must be a valid duration greater than 1ms")
            }
            Ok(_) => {}
            Err(msg) => e.push(path, msg),
        }
    }
}

fn percent(p: &Option<Percent>, path: &str, e: &mut Errs) {
    if let Some(p) = p
        && !(0.0..=100.0).contains(&p.value)
    {
        e.push(format!("{path}.value"), format!("{} is not a percentage between 0 and 100", p.value));
    }
}

fn destination(d: &Destination, path: &str, e: &mut Errs) {
    host(&d.host, &format!("{path}.host"), false, e);
    if let Some(s) = &d.subset
        && !is_dns_label(s)
    {
        e.push(format!("{path}.subset"), format!("{s:?} is not a valid subset name"));
    }
    if let Some(p) = &d.port
        && !(1..=65535).contains(&p.number)
    {
        e.push(format!("{path}.port.number"), format!("{} is not a port number (1-65535)", p.number));
    }
}

fn weights(ws: impl Iterator<Item = Option<i64>>, count: usize, path: &str, e: &mut Errs) {
    let mut total = 0i64;
    for (i, w) in ws.enumerate() {
        let w = w.unwrap_or(0);
        if !(0..=100).contains(&w) {
            e.push(format!("{path}[{i}].weight"), format!("weight {w} must be between 0 and 100"));
        }
        total += w;
    }
    if count > 1 && total != 100 {
        e.push(path, format!("weights of the {count} destinations add up to {total}, not 100"));
    }
}

fn virtual_service(s: &VirtualServiceSpec, e: &mut Errs) {
    // No hosts: a delegate, reachable only through another VirtualService's `delegate` (Istio).
    if s.hosts.is_empty() {
        if !s.tcp.is_empty() || !s.tls.is_empty() {
            e.push("spec.hosts", "at least one host is required (a delegate VirtualService has http routes only)");
        }
        if !s.gateways.is_empty() {
            e.push("spec.gateways", "a delegate VirtualService (no hosts) must not set gateways");
        }
        if s.http.iter().any(|r| r.delegate.is_some()) {
            e.push("spec.http", "a delegate VirtualService (no hosts) cannot delegate again");
        }
    }
    for (i, h) in s.hosts.iter().enumerate() {
        host(h, &format!("spec.hosts[{i}]"), true, e);
    }
    if s.http.is_empty() && s.tcp.is_empty() && s.tls.is_empty() {
        e.push("spec", "at least one of http, tcp or tls routes is required");
    }
    let mut names = HashSet::new();
    for (i, r) in s.http.iter().enumerate() {
        let path = format!("spec.http[{i}]");
        if let Some(n) = &r.name
            && !names.insert(n.as_str())
        {
            e.push(format!("{path}.name"), format!("duplicate route name {n:?}"));
        }
        let actions = [!r.route.is_empty(), r.redirect.is_some(), r.direct_response.is_some(), r.delegate.is_some()];
        match actions.iter().filter(|b| **b).count() {
            0 => e.push(&path, "one of route, redirect, directResponse or delegate is required"),
            1 => {}
            _ => e.push(&path, "route, redirect, directResponse and delegate are mutually exclusive"),
        }
        for (j, m) in r.matches.iter().enumerate() {
            let mp = format!("{path}.match[{j}]");
            for (field, sm) in
                [("uri", &m.uri), ("scheme", &m.scheme), ("method", &m.method), ("authority", &m.authority)]
            {
                if let Some(sm) = sm {
                    string_match(sm, &format!("{mp}.{field}"), e);
                }
            }
            for (field, map) in
                [("headers", &m.headers), ("queryParams", &m.query_params), ("withoutHeaders", &m.without_headers)]
            {
                for (k, sm) in map {
                    if k.is_empty() {
                        e.push(format!("{mp}.{field}"), "name must not be empty");
                    }
                    if field != "queryParams" && k.to_ascii_lowercase() != *k {
                        e.push(format!("{mp}.{field}.{k}"), "header names must be lowercase");
                    }
                    // An empty match means "present" for headers.
                    if *sm != StringMatch::default() {
                        string_match(sm, &format!("{mp}.{field}.{k}"), e);
                    }
                }
            }
            if let Some(p) = m.port
                && !(1..=65535).contains(&p)
            {
                e.push(format!("{mp}.port"), format!("{p} is not a port number (1-65535)"));
            }
        }
        for (j, d) in r.route.iter().enumerate() {
            destination(&d.destination, &format!("{path}.route[{j}].destination"), e);
        }
        weights(r.route.iter().map(|d| d.weight), r.route.len(), &format!("{path}.route"), e);
        if let Some(rd) = &r.redirect {
            if let Some(code) = rd.redirect_code
                && !(300..=399).contains(&code)
            {
                e.push(format!("{path}.redirect.redirectCode"), format!("{code} is not a redirect status (3xx)"));
            }
            if let Some(dp) = &rd.derive_port
                && !matches!(dp.as_str(), "FROM_PROTOCOL_DEFAULT" | "FROM_REQUEST_PORT")
            {
                e.push(
                    format!("{path}.redirect.derivePort"),
                    format!("{dp:?} is not FROM_PROTOCOL_DEFAULT or FROM_REQUEST_PORT"),
                );
            }
        }
        if let Some(dr) = &r.direct_response
            && !(200..=599).contains(&dr.status)
        {
            e.push(format!("{path}.directResponse.status"), format!("{} is not an HTTP status", dr.status));
        }
        if let Some(rw) = &r.rewrite
            && let Some(rr) = &rw.uri_regex_rewrite
        {
            regex(&rr.pattern, &format!("{path}.rewrite.uriRegexRewrite.match"), e);
            if rw.uri.is_some() {
                e.push(format!("{path}.rewrite"), "uri and uriRegexRewrite are mutually exclusive");
            }
        }
        dur(&r.timeout, &format!("{path}.timeout"), e);
        if let Some(rt) = &r.retries {
            non_negative(rt.attempts, format!("{path}.retries.attempts"), e);
            dur(&rt.per_try_timeout, &format!("{path}.retries.perTryTimeout"), e);
            dur(&rt.backoff, &format!("{path}.retries.backoff"), e);
            // Envoy's HTTP and gRPC retry conditions, or status codes (Istio's validation).
            const RETRY_ON: &[&str] = &[
                "5xx",
                "gateway-error",
                "reset",
                "reset-before-request",
                "connect-failure",
                "envoy-ratelimited",
                "retriable-4xx",
                "refused-stream",
                "retriable-status-codes",
                "retriable-headers",
                "http3-post-connect-failure",
                "cancelled",
                "deadline-exceeded",
                "internal",
                "resource-exhausted",
                "unavailable",
            ];
            for item in rt.retry_on.as_deref().unwrap_or("").split(',').map(str::trim).filter(|s| !s.is_empty()) {
                let code_ok = item.parse::<u16>().is_ok_and(|c| (100..=599).contains(&c));
                if !code_ok && !RETRY_ON.contains(&item) {
                    e.push(
                        format!("{path}.retries.retryOn"),
                        format!("{item:?} is not a retry condition ({}) or an HTTP status code", RETRY_ON.join(", ")),
                    );
                }
            }
        }
        if let Some(f) = &r.fault {
            if f.delay.is_none() && f.abort.is_none() {
                e.push(format!("{path}.fault"), "one of delay or abort is required");
            }
            if let Some(d) = &f.delay {
                let p = format!("{path}.fault.delay");
                if d.fixed_delay.is_none() && d.exponential_delay.is_none() {
                    e.push(&p, "fixedDelay is required");
                }
                dur(&d.fixed_delay, &format!("{p}.fixedDelay"), e);
                percent(&d.percentage, &format!("{p}.percentage"), e);
            }
            if let Some(a) = &f.abort {
                let p = format!("{path}.fault.abort");
                match (a.http_status, &a.grpc_status, &a.http2_error) {
                    (Some(s), None, None) if !(200..=599).contains(&s) => {
                        e.push(format!("{p}.httpStatus"), format!("{s} is not an HTTP status (200-599)"))
                    }
                    (Some(_), None, None) | (None, Some(_), None) | (None, None, Some(_)) => {}
                    _ => e.push(&p, "exactly one of httpStatus, grpcStatus or http2Error is required"),
                }
                percent(&a.percentage, &format!("{p}.percentage"), e);
            }
        }
        if let Some(m) = &r.mirror {
            destination(m, &format!("{path}.mirror"), e);
        }
        for (j, m) in r.mirrors.iter().enumerate() {
            destination(&m.destination, &format!("{path}.mirrors[{j}].destination"), e);
            percent(&m.percentage, &format!("{path}.mirrors[{j}].percentage"), e);
        }
        percent(&r.mirror_percentage, &format!("{path}.mirrorPercentage"), e);
    }
    for (i, r) in s.tcp.iter().enumerate() {
        let path = format!("spec.tcp[{i}].route");
        for (j, d) in r.route.iter().enumerate() {
            destination(&d.destination, &format!("{path}[{j}].destination"), e);
        }
        weights(r.route.iter().map(|d| d.weight), r.route.len(), &path, e);
    }
    for (i, r) in s.tls.iter().enumerate() {
        let path = format!("spec.tls[{i}]");
        if r.matches.is_empty() {
            e.push(format!("{path}.match"), "TLS routes need at least one match");
        }
        for (j, m) in r.matches.iter().enumerate() {
            if m.sni_hosts.is_empty() {
                e.push(format!("{path}.match[{j}].sniHosts"), "at least one SNI host is required");
            }
        }
        for (j, d) in r.route.iter().enumerate() {
            destination(&d.destination, &format!("{path}.route[{j}].destination"), e);
        }
        weights(r.route.iter().map(|d| d.weight), r.route.len(), &format!("{path}.route"), e);
    }
}

fn traffic_policy(t: &TrafficPolicy, path: &str, e: &mut Errs) {
    lb(&t.load_balancer, &format!("{path}.loadBalancer"), e);
    pool(&t.connection_pool, &format!("{path}.connectionPool"), e);
    outlier(&t.outlier_detection, &format!("{path}.outlierDetection"), e);
    tls(&t.tls, &format!("{path}.tls"), e);
    for (i, p) in t.port_level_settings.iter().enumerate() {
        let pp = format!("{path}.portLevelSettings[{i}]");
        match &p.port {
            Some(port) if (1..=65535).contains(&port.number) => {}
            _ => e.push(format!("{pp}.port.number"), "a port number (1-65535) is required"),
        }
        lb(&p.load_balancer, &format!("{pp}.loadBalancer"), e);
        pool(&p.connection_pool, &format!("{pp}.connectionPool"), e);
        outlier(&p.outlier_detection, &format!("{pp}.outlierDetection"), e);
        tls(&p.tls, &format!("{pp}.tls"), e);
    }
}

fn lb(l: &Option<LoadBalancerSettings>, path: &str, e: &mut Errs) {
    let Some(l) = l else { return };
    if let Some(s) = &l.simple
        && !matches!(
            s.as_str(),
            "UNSPECIFIED" | "LEAST_CONN" | "RANDOM" | "PASSTHROUGH" | "ROUND_ROBIN" | "LEAST_REQUEST"
        )
    {
        e.push(
            format!("{path}.simple"),
            format!("{s:?} is not one of ROUND_ROBIN, LEAST_REQUEST, RANDOM, PASSTHROUGH, LEAST_CONN"),
        );
    }
    if l.simple.is_some() && l.consistent_hash.is_some() {
        e.push(path, "simple and consistentHash are mutually exclusive");
    }
    if let Some(c) = &l.consistent_hash {
        let set = [
            c.http_header_name.is_some(),
            c.http_cookie.is_some(),
            c.use_source_ip.is_some(),
            c.http_query_parameter_name.is_some(),
        ]
        .iter()
        .filter(|b| **b)
        .count();
        if set > 1 {
            e.push(format!("{path}.consistentHash"), "only one hash key may be set");
        }
        if let Some(cookie) = &c.http_cookie {
            if cookie.name.is_empty() {
                e.push(format!("{path}.consistentHash.httpCookie.name"), "required");
            }
            dur(&cookie.ttl, &format!("{path}.consistentHash.httpCookie.ttl"), e);
        }
    }
    if let Some(w) = &l.warmup {
        if w.duration.is_none() {
            e.push(format!("{path}.warmup.duration"), "Required value");
        }
        dur(&w.duration, &format!("{path}.warmup.duration"), e);
        if let Some(p) = w.minimum_percent
            && !(0.0..=100.0).contains(&p)
        {
            e.push(format!("{path}.warmup.minimumPercent"), format!("Invalid value {p}: must be between 0 and 100"));
        }
        if let Some(a) = w.aggression
            && a < 1.0
        {
            e.push(format!("{path}.warmup.aggression"), format!("Invalid value {a}: must be at least 1.0"));
        }
    }
}

/// A count that Istio's API types as `int32`: 0 to 2147483647 (a larger value is refused by
/// Istio, not wrapped, so it never silently becomes something else).
fn non_negative(v: Option<i64>, path: String, e: &mut Errs) {
    in_range(v, 0, i64::from(i32::MAX), "int32", path, e);
}

/// A count that Istio's API types as `uint32` (`google.protobuf.UInt32Value`).
fn non_negative_u32(v: Option<i64>, path: String, e: &mut Errs) {
    in_range(v, 0, i64::from(u32::MAX), "uint32", path, e);
}

fn in_range(v: Option<i64>, min: i64, max: i64, ty: &str, path: String, e: &mut Errs) {
    match v {
        Some(v) if v < min => e.push(path, format!("{v} must not be negative")),
        Some(v) if v > max => e.push(path, format!("{v} is out of range: at most {max} ({ty})")),
        _ => {}
    }
}

fn pool(p: &Option<ConnectionPoolSettings>, path: &str, e: &mut Errs) {
    let Some(p) = p else { return };
    if let Some(t) = &p.tcp {
        non_negative(t.max_connections, format!("{path}.tcp.maxConnections"), e);
        dur(&t.connect_timeout, &format!("{path}.tcp.connectTimeout"), e);
        dur(&t.max_connection_duration, &format!("{path}.tcp.maxConnectionDuration"), e);
        dur(&t.idle_timeout, &format!("{path}.tcp.idleTimeout"), e);
    }
    if let Some(h) = &p.http {
        non_negative(h.http1_max_pending_requests, format!("{path}.http.http1MaxPendingRequests"), e);
        non_negative(h.http2_max_requests, format!("{path}.http.http2MaxRequests"), e);
        non_negative(h.max_requests_per_connection, format!("{path}.http.maxRequestsPerConnection"), e);
        non_negative(h.max_retries, format!("{path}.http.maxRetries"), e);
        non_negative(h.max_concurrent_streams, format!("{path}.http.maxConcurrentStreams"), e);
        dur(&h.idle_timeout, &format!("{path}.http.idleTimeout"), e);
        if let Some(k) = &h.http2_keep_alive {
            dur(&k.interval, &format!("{path}.http.http2KeepAlive.interval"), e);
            dur(&k.timeout, &format!("{path}.http.http2KeepAlive.timeout"), e);
        }
        if let Some(u) = &h.h2_upgrade_policy
            && !matches!(u.as_str(), "DEFAULT" | "DO_NOT_UPGRADE" | "UPGRADE")
        {
            e.push(format!("{path}.http.h2UpgradePolicy"), format!("{u:?} is not DEFAULT, DO_NOT_UPGRADE or UPGRADE"));
        }
    }
}

fn outlier(o: &Option<OutlierDetection>, path: &str, e: &mut Errs) {
    let Some(o) = o else { return };
    non_negative_u32(o.consecutive_5xx_errors, format!("{path}.consecutive5xxErrors"), e);
    non_negative_u32(o.consecutive_gateway_errors, format!("{path}.consecutiveGatewayErrors"), e);
    non_negative_u32(o.consecutive_local_origin_failures, format!("{path}.consecutiveLocalOriginFailures"), e);
    non_negative(o.consecutive_errors, format!("{path}.consecutiveErrors"), e);
    dur(&o.interval, &format!("{path}.interval"), e);
    dur(&o.base_ejection_time, &format!("{path}.baseEjectionTime"), e);
    for (field, v) in [("maxEjectionPercent", o.max_ejection_percent), ("minHealthPercent", o.min_health_percent)] {
        if let Some(v) = v
            && !(0..=100).contains(&v)
        {
            e.push(format!("{path}.{field}"), format!("{v} is not a percentage between 0 and 100"));
        }
    }
}

fn tls(t: &Option<ClientTlsSettings>, path: &str, e: &mut Errs) {
    let Some(t) = t else { return };
    if let Some(m) = &t.mode
        && !matches!(m.as_str(), "DISABLE" | "SIMPLE" | "MUTUAL" | "ISTIO_MUTUAL")
    {
        e.push(format!("{path}.mode"), format!("{m:?} is not one of DISABLE, SIMPLE, MUTUAL, ISTIO_MUTUAL"));
    }
}

fn destination_rule(s: &DestinationRuleSpec, e: &mut Errs) {
    host(&s.host, "spec.host", true, e);
    if let Some(t) = &s.traffic_policy {
        traffic_policy(t, "spec.trafficPolicy", e);
    }
    let mut names = HashSet::new();
    for (i, sub) in s.subsets.iter().enumerate() {
        let path = format!("spec.subsets[{i}]");
        if sub.name.is_empty() {
            e.push(format!("{path}.name"), "required");
        } else if !is_dns_label(&sub.name) {
            e.push(
                format!("{path}.name"),
                format!("{:?} is not a valid subset name (lowercase letters, digits, '-')", sub.name),
            );
        } else if !names.insert(sub.name.as_str()) {
            e.push(format!("{path}.name"), format!("duplicate subset {:?}", sub.name));
        }
        labels(&sub.labels, &format!("{path}.labels"), e);
        if let Some(t) = &sub.traffic_policy {
            traffic_policy(t, &format!("{path}.trafficPolicy"), e);
        }
    }
}

fn service_entry(s: &ServiceEntrySpec, e: &mut Errs) {
    if s.hosts.is_empty() {
        e.push("spec.hosts", "Required value: at least one host");
    }
    for (i, h) in s.hosts.iter().enumerate() {
        if h == "*" {
            e.push(format!("spec.hosts[{i}]"), "hostname cannot be wildcard");
        } else if let Some(rest) = h.strip_prefix('*').filter(|r| !r.starts_with('.') && !r.is_empty()) {
            // A partial wildcard (`*x`): the CRD accepts it; the rest must still be a name.
            host(rest, &format!("spec.hosts[{i}]"), false, e);
        } else {
            host(h, &format!("spec.hosts[{i}]"), true, e);
        }
    }
    let resolution = s.resolution.as_deref().unwrap_or("NONE");
    if !matches!(resolution, "NONE" | "STATIC" | "DNS" | "DNS_ROUND_ROBIN" | "DYNAMIC_DNS") {
        e.push(
            "spec.resolution",
            format!("Unsupported value: {resolution:?}: one of NONE, STATIC, DNS, DNS_ROUND_ROBIN"),
        );
    }
    if let Some(l) = &s.location
        && !matches!(l.as_str(), "MESH_EXTERNAL" | "MESH_INTERNAL")
    {
        e.push("spec.location", format!("Unsupported value: {l:?}: one of MESH_EXTERNAL, MESH_INTERNAL"));
    }
    for (i, a) in s.addresses.iter().enumerate() {
        let path = format!("spec.addresses[{i}]");
        if a.parse::<std::net::IpAddr>().is_ok() {
            continue;
        }
        if a.parse::<ipnet::IpNet>().is_ok() {
            if !matches!(resolution, "NONE" | "STATIC") {
                e.push(path, "CIDR addresses are allowed only for NONE/STATIC resolution types");
            }
        } else {
            e.push(path, format!("{a:?} is not an IP address or CIDR block"));
        }
    }
    let mut names = HashSet::new();
    let mut numbers = HashSet::new();
    for (i, p) in s.ports.iter().enumerate() {
        let path = format!("spec.ports[{i}]");
        if !(1..=65535).contains(&p.number) {
            e.push(format!("{path}.number"), "port must be between 1-65535");
        } else if !numbers.insert(p.number) {
            e.push(format!("{path}.number"), "port number cannot be duplicated");
        }
        if let Some(t) = p.target_port
            && !(1..=65535).contains(&t)
        {
            e.push(format!("{path}.targetPort"), "port must be between 1-65535");
        }
        if p.name.is_empty() {
            e.push(format!("{path}.name"), "Required value");
        } else if !names.insert(p.name.as_str()) {
            e.push(format!("{path}.name"), format!("Duplicate value: {:?}", p.name));
        }
        if let Some(proto) = &p.protocol
            && !matches!(
                proto.to_ascii_uppercase().as_str(),
                "HTTP" | "HTTPS" | "GRPC" | "GRPC-WEB" | "HTTP2" | "MONGO" | "MYSQL" | "REDIS" | "TCP" | "TLS" | "UDP"
            )
        {
            e.push(format!("{path}.protocol"), format!("unrecognized protocol {proto:?}"));
        }
    }
    if s.workload_selector.is_some() && !s.endpoints.is_empty() {
        e.push("spec", "only one of WorkloadSelector or Endpoints can be set");
    }
    if let Some(sel) = &s.workload_selector {
        for (k, v) in &sel.labels {
            if v.contains('*') {
                e.push(format!("spec.workloadSelector.labels.{k}"), "wildcard is not supported in selector");
            }
        }
        labels(&sel.labels, "spec.workloadSelector.labels", e);
    }
    match resolution {
        "NONE" if !s.endpoints.is_empty() => e.push("spec.endpoints", "NONE mode cannot set endpoints"),
        "DNS_ROUND_ROBIN" if s.endpoints.len() > 1 => {
            e.push("spec.endpoints", "DNS_ROUND_ROBIN mode cannot have multiple endpoints")
        }
        _ => {}
    }
    for (i, ep) in s.endpoints.iter().enumerate() {
        let path = format!("spec.endpoints[{i}]");
        match ep.address.as_deref() {
            None | Some("") => e.push(format!("{path}.address"), "Required value"),
            Some(a)
                if resolution == "STATIC" && a.parse::<std::net::IpAddr>().is_err() && !a.starts_with("unix://") =>
            {
                e.push(format!("{path}.address"), format!("{a:?}: STATIC resolution needs an IP address"))
            }
            Some(a) => {
                if let Some(socket) = a.strip_prefix("unix://") {
                    if !socket.starts_with('/') && !socket.starts_with('@') {
                        e.push(format!("{path}.address"), "UDS must be an absolute path or abstract socket");
                    }
                    if socket.ends_with('/') {
                        e.push(format!("{path}.address"), "UDS may not be a dir");
                    }
                    if !ep.ports.is_empty() {
                        e.push(format!("{path}.ports"), "UDS may not include ports");
                    }
                }
            }
        }
        for (name, port) in &ep.ports {
            if !(1..=65535).contains(port) {
                e.push(format!("{path}.ports.{name}"), "port must be between 1-65535");
            }
        }
        labels(&ep.labels, &format!("{path}.labels"), e);
    }
}

fn gateway(s: &GatewaySpec, e: &mut Errs) {
    labels(&s.selector, "spec.selector", e);
    let mut names = HashSet::new();
    for (i, sv) in s.servers.iter().enumerate() {
        let path = format!("spec.servers[{i}]");
        if !(1..=65535).contains(&sv.port.number) {
            e.push(format!("{path}.port.number"), "port must be between 1-65535");
        }
        let proto = sv.port.protocol.to_ascii_uppercase();
        if !matches!(proto.as_str(), "HTTP" | "HTTPS" | "GRPC" | "GRPC-WEB" | "HTTP2" | "MONGO" | "TCP" | "TLS") {
            e.push(
                format!("{path}.port.protocol"),
                format!("{:?} is not a gateway protocol (HTTP, HTTPS, GRPC, HTTP2, MONGO, TCP, TLS)", sv.port.protocol),
            );
        }
        if sv.hosts.is_empty() {
            e.push(format!("{path}.hosts"), "at least one host is required");
        }
        for (j, h) in sv.hosts.iter().enumerate() {
            let name = h.split_once('/').map_or(h.as_str(), |(_, n)| n);
            host(name, &format!("{path}.hosts[{j}]"), true, e);
        }
        if let Some(n) = &sv.name
            && !names.insert(n.as_str())
        {
            e.push(format!("{path}.name"), format!("duplicate server name {n:?}"));
        }
        let is_tls = matches!(proto.as_str(), "HTTPS" | "TLS");
        match &sv.tls {
            None if is_tls => e.push(format!("{path}.tls"), "server must have TLS settings for HTTPS/TLS protocols"),
            None => {}
            Some(t) => {
                if !is_tls && t.https_redirect != Some(true) && t.mode.is_some() {
                    e.push(format!("{path}.tls"), "server cannot have TLS settings for plain text HTTP ports");
                }
                server_tls(t, &format!("{path}.tls"), e);
            }
        }
    }
}

/// Istio's checks of a Gateway server's TLS settings.
fn server_tls(t: &crate::networking::ServerTlsSettings, path: &str, e: &mut Errs) {
    use crate::networking::{CIPHER_SUITES, TLS_VERSIONS};
    let mode = t.mode();
    if !matches!(
        mode.as_str(),
        "PASSTHROUGH" | "SIMPLE" | "MUTUAL" | "AUTO_PASSTHROUGH" | "ISTIO_MUTUAL" | "OPTIONAL_MUTUAL"
    ) {
        e.push(
            format!("{path}.mode"),
            format!(
                "{mode:?} is not one of PASSTHROUGH, SIMPLE, MUTUAL, AUTO_PASSTHROUGH, ISTIO_MUTUAL, OPTIONAL_MUTUAL"
            ),
        );
        return;
    }
    let version = |v: &Option<String>, field: &str, e: &mut Errs| -> Option<usize> {
        let v = v.as_deref()?;
        let at = TLS_VERSIONS.iter().position(|x| *x == v);
        if at.is_none() {
            e.push(format!("{path}.{field}"), format!("{v:?} is not one of {}", TLS_VERSIONS.join(", ")));
        }
        at
    };
    let min = version(&t.min_protocol_version, "minProtocolVersion", e);
    let max = version(&t.max_protocol_version, "maxProtocolVersion", e);
    if let (Some(lo), Some(hi)) = (min, max)
        && lo > 0
        && hi > 0
        && hi < lo
    {
        e.push(format!("{path}.maxProtocolVersion"), "maximum TLS protocol version is less than the minimum");
    }
    let mut seen = HashSet::new();
    for (i, c) in t.cipher_suites.iter().enumerate() {
        if !seen.insert(c.as_str()) {
            e.push(format!("{path}.cipherSuites[{i}]"), format!("duplicate cipher suite {c:?}"));
        } else if !CIPHER_SUITES.contains(&c.as_str()) {
            e.push(
                format!("{path}.cipherSuites[{i}]"),
                format!("{c:?} is not a supported cipher suite (one of {})", CIPHER_SUITES.join(", ")),
            );
        }
    }
    let credential = t.credential_name.is_some() || !t.credential_names.is_empty();
    if t.credential_name.is_some() && !t.credential_names.is_empty() {
        e.push(format!("{path}.credentialNames"), "only one of credentialName or credentialNames can be set");
    }
    if !t.tls_certificates.is_empty() && (credential || t.server_certificate.is_some()) {
        e.push(
            format!("{path}.tlsCertificates"),
            "only one of serverCertificate, credentialName, credentialNames or tlsCertificates can be set",
        );
    }
    match mode.as_str() {
        "ISTIO_MUTUAL" => {
            let set = [
                (t.server_certificate.is_some(), "serverCertificate", "server certificate"),
                (t.private_key.is_some(), "privateKey", "private key"),
                (t.ca_certificates.is_some(), "caCertificates", "CA bundle"),
                (credential, "credentialName", "credentialName"),
            ];
            for (_, field, what) in set.iter().filter(|(on, _, _)| *on) {
                e.push(format!("{path}.{field}"), format!("ISTIO_MUTUAL TLS cannot have associated {what}"));
            }
        }
        "SIMPLE" | "MUTUAL" | "OPTIONAL_MUTUAL" if !credential => {
            let shown = if mode == "SIMPLE" { "SIMPLE" } else { "MUTUAL" };
            if t.tls_certificates.is_empty() {
                if t.server_certificate.is_none() {
                    e.push(format!("{path}.serverCertificate"), format!("{shown} TLS requires a server certificate"));
                }
                if t.private_key.is_none() {
                    e.push(format!("{path}.privateKey"), format!("{shown} TLS requires a private key"));
                }
            }
            for (i, c) in t.tls_certificates.iter().enumerate() {
                if c.server_certificate.is_none() || c.private_key.is_none() {
                    e.push(
                        format!("{path}.tlsCertificates[{i}]"),
                        format!("{shown} TLS requires a server certificate and a private key"),
                    );
                }
            }
            if mode != "SIMPLE" && t.ca_certificates.is_none() && t.ca_cert_credential_name.is_none() {
                e.push(format!("{path}.caCertificates"), "MUTUAL TLS requires a client CA bundle");
            }
        }
        _ => {}
    }
}

fn telemetry(s: &crate::telemetry::TelemetrySpec, e: &mut Errs) {
    if s.selector.is_some() && (s.target_ref.is_some() || !s.target_refs.is_empty()) {
        e.push("spec.selector", "only one of selector or targetRefs can be set");
    }
    if s.target_ref.is_some() && !s.target_refs.is_empty() {
        e.push("spec.targetRef", "only one of targetRef or targetRefs can be set");
    }
    let providers = |path: String, ps: &[crate::telemetry::ProviderRef], e: &mut Errs| {
        for (i, p) in ps.iter().enumerate() {
            if p.name.is_empty() {
                e.push(format!("{path}.providers[{i}].name"), "name in body should be at least 1 chars long");
            }
        }
    };
    for (i, t) in s.tracing.iter().enumerate() {
        providers(format!("spec.tracing[{i}]"), &t.providers, e);
        if let Some(p) = t.random_sampling_percentage
            && !(0.0..=100.0).contains(&p)
        {
            e.push(
                format!("spec.tracing[{i}].randomSamplingPercentage"),
                format!("{p} is not a percentage from 0 to 100"),
            );
        }
    }
    for (i, m) in s.metrics.iter().enumerate() {
        providers(format!("spec.metrics[{i}]"), &m.providers, e);
        if let Some(d) = &m.reporting_interval
            && let Err(err) = crate::duration::parse(d)
        {
            e.push(format!("spec.metrics[{i}].reportingInterval"), err);
        }
        for (j, o) in m.overrides.iter().enumerate() {
            let path = format!("spec.metrics[{i}].overrides[{j}]");
            if let Some(sel) = &o.matches {
                match (&sel.metric, &sel.custom_metric) {
                    (Some(_), Some(_)) => e.push(format!("{path}.match"), "set metric or customMetric, not both"),
                    (Some(m), None) if !crate::telemetry::ISTIO_METRICS.contains(&m.as_str()) => e.push(
                        format!("{path}.match.metric"),
                        format!("unknown metric {m:?}; one of {}", crate::telemetry::ISTIO_METRICS.join(", ")),
                    ),
                    (None, Some(c)) if c.is_empty() => e.push(
                        format!("{path}.match.customMetric"),
                        "customMetric in body should be at least 1 chars long",
                    ),
                    _ => {}
                }
            }
            for (tag, t) in &o.tag_overrides {
                let upsert = t.operation.unwrap_or_default() == crate::telemetry::TagOperation::Upsert;
                if upsert && t.value.is_none() {
                    e.push(format!("{path}.tagOverrides.{tag}"), "value must be set when operation is UPSERT");
                }
                if !upsert && t.value.is_some() {
                    e.push(format!("{path}.tagOverrides.{tag}"), "value must not be set when operation is REMOVE");
                }
            }
        }
    }
    for (i, a) in s.access_logging.iter().enumerate() {
        providers(format!("spec.accessLogging[{i}]"), &a.providers, e);
    }
}
