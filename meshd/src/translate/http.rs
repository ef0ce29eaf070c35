//! VirtualService `http` rule details: redirects, direct responses, rewrites, timeouts,
//! retries, faults, mirrors and header changes, in the proxy's terms.

use mesh_api::networking::{HeaderOperations, Headers, HttpMatchRequest, HttpRoute, Percent, StringMatch};
use mesh_api::protocol::Workload;
use mesh_api::proxy_config::*;

use super::{Index, convert_match, labels_match};
use mesh_api::networking::VirtualServiceSpec;
use mesh_api::{Key, Object};

fn ms(d: &Option<String>) -> Option<u64> {
    d.as_deref()
        .and_then(|d| mesh_api::duration::parse(d).ok())
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn percent(p: &Option<Percent>, legacy: Option<i64>, default: f64) -> f64 {
    match (p, legacy) {
        (Some(p), _) => p.value.clamp(0.0, 100.0),
        (None, Some(v)) => (v as f64).clamp(0.0, 100.0),
        (None, None) => default,
    }
}

pub(super) fn header_ops(ops: Option<&HeaderOperations>) -> HeaderOps {
    let Some(o) = ops else { return HeaderOps::default() };
    HeaderOps {
        set: o.set.iter().map(|(k, v)| (k.to_ascii_lowercase(), v.clone())).collect(),
        add: o.add.iter().map(|(k, v)| (k.to_ascii_lowercase(), v.clone())).collect(),
        remove: o.remove.iter().map(|k| k.to_ascii_lowercase()).collect(),
    }
}

pub(super) fn request_ops(h: &Option<Headers>) -> HeaderOps {
    header_ops(h.as_ref().and_then(|h| h.request.as_ref()))
}

pub(super) fn response_ops(h: &Option<Headers>) -> HeaderOps {
    header_ops(h.as_ref().and_then(|h| h.response.as_ref()))
}

/// gRPC status codes by name, as Istio's `grpcStatus` takes them.
fn grpc_code(name: &str) -> Option<u32> {
    const NAMES: [&str; 17] = [
        "OK",
        "CANCELLED",
        "UNKNOWN",
        "INVALID_ARGUMENT",
        "DEADLINE_EXCEEDED",
        "NOT_FOUND",
        "ALREADY_EXISTS",
        "PERMISSION_DENIED",
        "RESOURCE_EXHAUSTED",
        "FAILED_PRECONDITION",
        "ABORTED",
        "OUT_OF_RANGE",
        "UNIMPLEMENTED",
        "INTERNAL",
        "UNAVAILABLE",
        "DATA_LOSS",
        "UNAUTHENTICATED",
    ];
    NAMES.iter().position(|n| n.eq_ignore_ascii_case(name)).map(|i| i as u32).or_else(|| name.parse().ok())
}

/// Istio's retry policy when a rule sets none: two retries on connection failures, refused
/// streams and 503s (`pilot/pkg/networking/core/route/retry`).
pub(super) fn default_retries() -> RetryPolicy {
    RetryPolicy {
        attempts: 2,
        per_try_timeout_ms: None,
        retry_on: ["connect-failure", "refused-stream", "unavailable", "cancelled", "retriable-status-codes"]
            .map(String::from)
            .to_vec(),
        retriable_status_codes: vec![503],
        backoff_ms: 25,
    }
}

fn retries(rule: &HttpRoute) -> Option<RetryPolicy> {
    let Some(r) = &rule.retries else { return Some(default_retries()) };
    let attempts = u32::try_from(r.attempts.unwrap_or(0)).unwrap_or(0);
    if attempts == 0 {
        return None;
    }
    let mut retry_on = Vec::new();
    let mut codes = Vec::new();
    match r.retry_on.as_deref() {
        None | Some("") => {
            return Some(RetryPolicy { attempts, per_try_timeout_ms: ms(&r.per_try_timeout), ..default_retries() });
        }
        Some(list) => {
            for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                match item.parse::<u16>() {
                    Ok(code) => codes.push(code),
                    Err(_) => retry_on.push(item.to_string()),
                }
            }
        }
    }
    if !codes.is_empty() && !retry_on.iter().any(|r| r == "retriable-status-codes") {
        retry_on.push("retriable-status-codes".into());
    }
    Some(RetryPolicy {
        attempts,
        per_try_timeout_ms: ms(&r.per_try_timeout),
        retry_on,
        retriable_status_codes: codes,
        backoff_ms: ms(&r.backoff).unwrap_or(25).max(1),
    })
}

fn fault(rule: &HttpRoute) -> Option<Fault> {
    let f = rule.fault.as_ref()?;
    let delay = f.delay.as_ref().and_then(|d| Some((ms(&d.fixed_delay)?, percent(&d.percentage, d.percent, 0.0))));
    let abort = f.abort.as_ref().and_then(|a| {
        let grpc = a.grpc_status.as_deref().and_then(grpc_code);
        let http = a.http_status.and_then(|s| u16::try_from(s).ok());
        let http_status = match (http, grpc) {
            (Some(h), _) => h,
            (None, Some(_)) => 200,
            (None, None) => return None, // http2Error: not supported
        };
        Some(FaultAbort { http_status, grpc_status: grpc, percent: percent(&a.percentage, None, 0.0) })
    });
    (delay.is_some() || abort.is_some()).then_some(Fault { delay, abort })
}

/// A redirect `uri` that starts so replaces the matched prefix only (Istio's marker for the
/// Gateway API's `ReplacePrefixMatch`).
pub(super) const PREFIX_MARK: &str = "%PREFIX()%";

/// Everything of a rule except where it routes to.
pub(super) fn rule_actions(rule: &HttpRoute, route: &mut Route) {
    route.redirect = rule.redirect.as_ref().map(|r| Redirect {
        uri: r.uri.as_deref().map(|u| u.strip_prefix(PREFIX_MARK).unwrap_or(u).to_string()),
        prefix: r.uri.as_deref().is_some_and(|u| u.starts_with(PREFIX_MARK)),
        authority: r.authority.clone(),
        port: r.port.and_then(|p| u16::try_from(p).ok()),
        scheme: r.scheme.clone(),
        status: r.redirect_code.and_then(|c| u16::try_from(c).ok()).unwrap_or(301),
    });
    route.direct_response = rule.direct_response.as_ref().map(|d| DirectResponse {
        status: u16::try_from(d.status).unwrap_or(500),
        body: d.body.as_ref().and_then(|b| {
            b.string.clone().or_else(|| {
                use base64::Engine;
                b.bytes
                    .as_deref()
                    .and_then(|s| base64::engine::general_purpose::STANDARD.decode(s).ok())
                    .map(|v| String::from_utf8_lossy(&v).into_owned())
            })
        }),
    });
    route.rewrite = rule.rewrite.as_ref().map(|r| Rewrite {
        uri: r.uri.clone(),
        authority: r.authority.clone(),
        uri_regex: r.uri_regex_rewrite.as_ref().map(|x| (x.pattern.clone(), x.rewrite.clone())),
    });
    route.timeout_ms = ms(&rule.timeout).filter(|t| *t > 0);
    if route.redirect.is_none() && route.direct_response.is_none() {
        route.retries = retries(rule);
    }
    route.fault = fault(rule);
    route.request_headers = request_ops(&rule.headers);
    route.response_headers = response_ops(&rule.headers);
    route.cors = rule.cors_policy.as_ref().map(|c| Cors {
        allow_origins: c
            .allow_origin
            .iter()
            .map(|o| if o == "*" { StringMatcher::Prefix(String::new()) } else { StringMatcher::Exact(o.clone()) })
            .chain(c.allow_origins.iter().filter_map(convert_match))
            .collect(),
        allow_methods: c.allow_methods.clone(),
        allow_headers: c.allow_headers.clone(),
        expose_headers: c.expose_headers.clone(),
        max_age_s: ms(&c.max_age).map(|m| m / 1000),
        allow_credentials: c.allow_credentials.unwrap_or(false),
        ignore_unmatched_preflights: c.unmatched_preflights.as_deref() == Some("IGNORE"),
    });
}

/// The mirror destinations of a rule as (destination, percent).
pub(super) fn mirrors(rule: &HttpRoute) -> Vec<(&mesh_api::networking::Destination, f64)> {
    let mut out = Vec::new();
    if let Some(m) = &rule.mirror {
        let legacy = rule.mirror_percent.map(i64::from);
        out.push((m, percent(&rule.mirror_percentage, legacy, 100.0)));
    }
    for m in &rule.mirrors {
        out.push((&m.destination, percent(&m.percentage, None, 100.0)));
    }
    out
}

fn matcher_map(m: &std::collections::BTreeMap<String, StringMatch>) -> Vec<HeaderMatcher> {
    m.iter().map(|(name, sm)| HeaderMatcher { name: name.to_ascii_lowercase(), value: convert_match(sm) }).collect()
}

/// Translate one Istio match entry for a given port and client, or None when the entry can
/// never match there (other port, other source labels or namespace, gateway-only).
/// Where rules are being served: the mesh's sidecars, or one gateway (`namespace/name`).
pub(super) enum Scope<'a> {
    Mesh,
    Gateway { namespace: &'a str, name: &'a str },
}

impl Scope<'_> {
    /// Does a `gateways` list (of a VirtualService or a match, written in namespace `vs_ns`)
    /// include this scope? An empty list means the mesh.
    pub(super) fn admits(&self, gateways: &[String], vs_ns: &str) -> bool {
        match self {
            Scope::Mesh => gateways.is_empty() || gateways.iter().any(|g| g == "mesh"),
            Scope::Gateway { namespace, name } => gateways.iter().any(|g| {
                let (ns, n) = g.split_once('/').unwrap_or((vs_ns, g.as_str()));
                ns == *namespace && n == *name
            }),
        }
    }
}

pub(super) fn route_match(
    m: &HttpMatchRequest,
    port: u16,
    proxy: &Workload,
    scope: &Scope<'_>,
    vs_ns: &str,
) -> Option<RouteMatch> {
    if m.port.is_some_and(|p| p != u32::from(port)) {
        return None;
    }
    if !m.source_labels.is_empty() && !labels_match(&m.source_labels, &proxy.labels) {
        return None;
    }
    if m.source_namespace.as_deref().is_some_and(|ns| ns != proxy.namespace) {
        return None;
    }
    if !m.gateways.is_empty() && !scope.admits(&m.gateways, vs_ns) {
        return None;
    }
    Some(RouteMatch {
        uri: m.uri.as_ref().and_then(convert_match),
        ignore_uri_case: m.ignore_uri_case.unwrap_or(false),
        method: m.method.as_ref().and_then(convert_match),
        authority: m.authority.as_ref().and_then(convert_match),
        scheme: m.scheme.as_ref().and_then(convert_match),
        headers: matcher_map(&m.headers),
        without_headers: matcher_map(&m.without_headers),
        query_params: m
            .query_params
            .iter()
            .map(|(name, sm)| HeaderMatcher { name: name.clone(), value: convert_match(sm) })
            .collect(),
    })
}

/// The rules a VirtualService serves, with delegation resolved: a rule with `delegate` is
/// replaced by the delegate VirtualService's rules, each matching only where both the root's
/// and its own matches do (Istio's VirtualService chaining; one level, as Istio allows).
/// Each item: (the VirtualService the rule is in, the rule, its label, the matches to use).
pub(super) fn expand_delegates<'a>(
    index: &Index<'a>,
    key: &'a Key,
    vs: &'a Object<VirtualServiceSpec>,
) -> Vec<(&'a Key, &'a HttpRoute, String, Vec<HttpMatchRequest>)> {
    let mut out = Vec::new();
    for (i, rule) in vs.spec.http.iter().enumerate() {
        let Some(d) = &rule.delegate else {
            out.push((key, rule, format!("http[{i}]"), rule.matches.clone()));
            continue;
        };
        let ns = d.namespace.as_deref().unwrap_or(&key.namespace);
        let Some((dkey, dvs)) = index.virtual_services.iter().find(|(k, _)| k.namespace == ns && k.name == d.name)
        else {
            continue; // a missing delegate routes nothing (`mesh analyze` reports it)
        };
        if !dvs.spec.hosts.is_empty() {
            continue; // Istio: a delegate must not have hosts
        }
        for (j, drule) in dvs.spec.http.iter().enumerate() {
            if drule.delegate.is_some() {
                continue;
            }
            let matches = match (rule.matches.is_empty(), drule.matches.is_empty()) {
                (true, _) => drule.matches.clone(),
                (false, true) => rule.matches.clone(),
                (false, false) => {
                    rule.matches.iter().flat_map(|r| drule.matches.iter().map(move |m| merge_match(r, m))).collect()
                }
            };
            out.push((
                *dkey,
                drule,
                format!("http[{j}] (delegated from {}/{} http[{i}])", key.namespace, key.name),
                matches,
            ));
        }
    }
    out
}

/// A delegate rule's match narrowed by its root rule's: the delegate's conditions, with the
/// root's where the delegate sets none.
fn merge_match(root: &HttpMatchRequest, d: &HttpMatchRequest) -> HttpMatchRequest {
    let mut m = d.clone();
    m.uri = m.uri.or_else(|| root.uri.clone());
    m.scheme = m.scheme.or_else(|| root.scheme.clone());
    m.method = m.method.or_else(|| root.method.clone());
    m.authority = m.authority.or_else(|| root.authority.clone());
    m.port = m.port.or(root.port);
    m.source_namespace = m.source_namespace.or_else(|| root.source_namespace.clone());
    m.ignore_uri_case = m.ignore_uri_case.or(root.ignore_uri_case);
    for (k, v) in &root.headers {
        m.headers.entry(k.clone()).or_insert_with(|| v.clone());
    }
    for (k, v) in &root.query_params {
        m.query_params.entry(k.clone()).or_insert_with(|| v.clone());
    }
    for (k, v) in &root.without_headers {
        m.without_headers.entry(k.clone()).or_insert_with(|| v.clone());
    }
    for (k, v) in &root.source_labels {
        m.source_labels.entry(k.clone()).or_insert_with(|| v.clone());
    }
    m.gateways = root.gateways.clone();
    m
}
