//! The Gateway API's own rules (its CRDs' schema and CEL validations), with their paths.

use super::Errs;
use crate::gateway_api::*;

const HTTP_FILTERS: &[&str] =
    &["RequestHeaderModifier", "ResponseHeaderModifier", "RequestRedirect", "URLRewrite", "RequestMirror"];

fn port(p: u32, path: &str, e: &mut Errs) {
    if !(1..=65535).contains(&p) {
        e.push(path, format!("port {p} is not between 1 and 65535"));
    }
}

fn hostname(h: &str, path: &str, e: &mut Errs) {
    let bare = h.strip_prefix("*.").unwrap_or(h);
    if h.contains(':') || h.parse::<std::net::IpAddr>().is_ok() || !super::is_dns_subdomain(bare) {
        e.push(path, format!("{h:?} is not a hostname (a DNS name, optionally starting with `*.`; no IP, no port)"));
    }
}

fn parents(refs: &[ParentRef], path: &str, e: &mut Errs) {
    if refs.is_empty() {
        e.push(format!("{path}.parentRefs"), "a route needs at least one parent (a Gateway or a Service)");
    }
    for (i, r) in refs.iter().enumerate() {
        let p = format!("{path}.parentRefs[{i}]");
        if r.name.is_empty() {
            e.push(format!("{p}.name"), "required");
        }
        match (r.group.as_deref().unwrap_or(GROUP), r.kind.as_deref().unwrap_or("Gateway")) {
            (GROUP, "Gateway") | ("", "Service") => {}
            (g, k) => e.push(&p, format!("parent kind {k} in group {g:?} is not served (use a Gateway or a Service)")),
        }
        if let Some(n) = r.port {
            port(n, &format!("{p}.port"), e);
        }
    }
}

fn backends(refs: &[BackendRef], path: &str, e: &mut Errs) {
    for (i, b) in refs.iter().enumerate() {
        let p = format!("{path}.backendRefs[{i}]");
        if b.name.is_empty() {
            e.push(format!("{p}.name"), "required");
        }
        if b.is_service() && b.port.is_none() {
            e.push(format!("{p}.port"), "required when the backend is a Service");
        }
        if let Some(n) = b.port {
            port(n, &format!("{p}.port"), e);
        }
        if let Some(w) = b.weight
            && !(0..=1_000_000).contains(&w)
        {
            e.push(format!("{p}.weight"), format!("weight {w} is not between 0 and 1000000"));
        }
        filters(&b.filters, &p, e);
    }
}

fn filters(fs: &[HttpRouteFilter], path: &str, e: &mut Errs) {
    for (i, f) in fs.iter().enumerate() {
        let p = format!("{path}.filters[{i}]");
        let set = [
            ("RequestHeaderModifier", f.request_header_modifier.is_some()),
            ("ResponseHeaderModifier", f.response_header_modifier.is_some()),
            ("RequestRedirect", f.request_redirect.is_some()),
            ("URLRewrite", f.url_rewrite.is_some()),
            ("RequestMirror", f.request_mirror.is_some()),
        ];
        if !HTTP_FILTERS.contains(&f.kind.as_str()) {
            e.push(
                format!("{p}.type"),
                format!("filter type {:?} is not served; use one of {}", f.kind, HTTP_FILTERS.join(", ")),
            );
            continue;
        }
        for (name, present) in set {
            if (name == f.kind) != present {
                let field = match name {
                    "URLRewrite" => "urlRewrite".to_string(),
                    n => n[..1].to_ascii_lowercase() + &n[1..],
                };
                let why =
                    if present { "must not be set for this filter type" } else { "must be set for this filter type" };
                e.push(format!("{p}.{field}"), why);
            }
        }
        for (m, name) in [
            (&f.request_header_modifier, "requestHeaderModifier"),
            (&f.response_header_modifier, "responseHeaderModifier"),
        ] {
            if let Some(m) = m {
                for (j, nv) in m.set.iter().chain(&m.add).enumerate() {
                    if nv.name.is_empty() || !nv.name.bytes().all(|b| b.is_ascii_graphic() && b != b':') {
                        e.push(
                            format!("{p}.{name}"),
                            format!("header name {:?} (entry {j}) is not a header name", nv.name),
                        );
                    }
                }
            }
        }
        let path_modifier = |pm: &PathModifier, at: String, e: &mut Errs| match pm.kind.as_str() {
            "ReplaceFullPath" if pm.replace_full_path.is_some() && pm.replace_prefix_match.is_none() => {}
            "ReplacePrefixMatch" if pm.replace_prefix_match.is_some() && pm.replace_full_path.is_none() => {}
            "ReplaceFullPath" | "ReplacePrefixMatch" => e.push(
                at,
                format!("type {} needs exactly its own field (replaceFullPath or replacePrefixMatch)", pm.kind),
            ),
            other => e.push(at, format!("path type {other:?}: use ReplaceFullPath or ReplacePrefixMatch")),
        };
        if let Some(r) = &f.request_redirect {
            if let Some(pm) = &r.path {
                path_modifier(pm, format!("{p}.requestRedirect.path"), e);
            }
            if let Some(c) = r.status_code
                && c != 301
                && c != 302
            {
                e.push(format!("{p}.requestRedirect.statusCode"), format!("{c}: use 301 or 302"));
            }
            if let Some(s) = &r.scheme
                && s != "http"
                && s != "https"
            {
                e.push(format!("{p}.requestRedirect.scheme"), format!("{s:?}: use http or https"));
            }
        }
        if let Some(pm) = f.url_rewrite.as_ref().and_then(|r| r.path.as_ref()) {
            path_modifier(pm, format!("{p}.urlRewrite.path"), e);
        }
        if let Some(m) = &f.request_mirror {
            backends(std::slice::from_ref(&m.backend_ref), &format!("{p}.requestMirror"), e);
            if m.percent.is_some_and(|v| v > 100) {
                e.push(format!("{p}.requestMirror.percent"), "at most 100");
            }
        }
    }
}

fn value_matches(ms: &[ValueMatch], path: &str, e: &mut Errs) {
    for (i, m) in ms.iter().enumerate() {
        let p = format!("{path}[{i}]");
        if m.name.is_empty() {
            e.push(format!("{p}.name"), "required");
        }
        match m.kind.as_deref().unwrap_or("Exact") {
            "Exact" => {}
            "RegularExpression" => {
                if let Err(err) = regex::Regex::new(&m.value) {
                    e.push(format!("{p}.value"), format!("invalid regular expression: {err}"));
                }
            }
            other => e.push(format!("{p}.type"), format!("{other:?}: use Exact or RegularExpression")),
        }
    }
}

pub(super) fn gateway_class(s: &GatewayClassSpec, e: &mut Errs) {
    if s.controller_name.is_empty() {
        e.push("spec.controllerName", "required");
    }
}

pub(super) fn gateway(s: &KubeGatewaySpec, e: &mut Errs) {
    if s.gateway_class_name.is_empty() {
        e.push("spec.gatewayClassName", "required");
    }
    if s.listeners.is_empty() {
        e.push("spec.listeners", "a Gateway needs at least one listener");
    }
    let mut names = std::collections::HashSet::new();
    for (i, l) in s.listeners.iter().enumerate() {
        let p = format!("spec.listeners[{i}]");
        if !super::is_dns_label(&l.name) {
            e.push(format!("{p}.name"), format!("{:?} is not a section name (lowercase letters, digits, '-')", l.name));
        } else if !names.insert(&l.name) {
            e.push(format!("{p}.name"), format!("listener name {:?} is used twice", l.name));
        }
        port(l.port, &format!("{p}.port"), e);
        if let Some(h) = &l.hostname {
            hostname(h, &format!("{p}.hostname"), e);
        }
        match l.protocol.as_str() {
            "HTTP" | "TCP" | "UDP" => {
                if l.tls.is_some() {
                    e.push(format!("{p}.tls"), format!("must not be set for protocol {}", l.protocol));
                }
            }
            "HTTPS" | "TLS" => {
                let Some(t) = &l.tls else {
                    e.push(format!("{p}.tls"), format!("required for protocol {}", l.protocol));
                    continue;
                };
                match t.mode.as_deref().unwrap_or("Terminate") {
                    "Terminate" if t.certificate_refs.is_empty() => {
                        e.push(format!("{p}.tls.certificateRefs"), "mode Terminate needs a certificate")
                    }
                    "Passthrough" if l.protocol == "HTTPS" => {
                        e.push(format!("{p}.tls.mode"), "Passthrough is for protocol TLS, not HTTPS")
                    }
                    "Terminate" | "Passthrough" => {}
                    other => e.push(format!("{p}.tls.mode"), format!("{other:?}: use Terminate or Passthrough")),
                }
                for (j, c) in t.certificate_refs.iter().enumerate() {
                    if c.kind.as_deref().unwrap_or("Secret") != "Secret" || !c.group.as_deref().unwrap_or("").is_empty()
                    {
                        e.push(format!("{p}.tls.certificateRefs[{j}]"), "only Secrets are served as certificates");
                    }
                }
            }
            other => e.push(format!("{p}.protocol"), format!("{other:?}: use HTTP, HTTPS, TLS or TCP")),
        }
        if let Some(from) =
            l.allowed_routes.as_ref().and_then(|a| a.namespaces.as_ref()).and_then(|n| n.from.as_deref())
            && !matches!(from, "Same" | "All" | "Selector")
        {
            e.push(format!("{p}.allowedRoutes.namespaces.from"), format!("{from:?}: use Same, All or Selector"));
        }
        if let Some(n) = l.allowed_routes.as_ref().and_then(|a| a.namespaces.as_ref())
            && n.from.as_deref() == Some("Selector")
        {
            namespace_selector(n.selector.as_ref(), &format!("{p}.allowedRoutes.namespaces.selector"), e);
        }
    }
}

/// A label selector: `matchLabels` (strings) and/or `matchExpressions` with Kubernetes'
/// operators (`In`/`NotIn` with values, `Exists`/`DoesNotExist` without).
fn namespace_selector(sel: Option<&serde_json::Value>, path: &str, e: &mut Errs) {
    let Some(sel) = sel.and_then(|s| s.as_object()) else {
        e.push(path, "from: Selector needs a selector (matchLabels or matchExpressions)");
        return;
    };
    for k in sel.keys().filter(|k| !matches!(k.as_str(), "matchLabels" | "matchExpressions")) {
        e.push(format!("{path}.{k}"), "unknown field: use matchLabels or matchExpressions");
    }
    if let Some(m) = sel.get("matchLabels") {
        match m.as_object() {
            Some(m) => {
                for (k, v) in m.iter().filter(|(_, v)| !v.is_string()) {
                    e.push(format!("{path}.matchLabels.{k}"), format!("{v} is not a string"));
                }
            }
            None => e.push(format!("{path}.matchLabels"), "must be a map of label to value"),
        }
    }
    let exprs = sel.get("matchExpressions").map(|x| x.as_array().cloned().unwrap_or_default()).unwrap_or_default();
    for (i, x) in exprs.iter().enumerate() {
        let values = x.get("values").and_then(|v| v.as_array()).map_or(0, Vec::len);
        match x.get("operator").and_then(|o| o.as_str()) {
            Some("In" | "NotIn") if values == 0 => {
                e.push(format!("{path}.matchExpressions[{i}].values"), "In and NotIn need values")
            }
            Some("Exists" | "DoesNotExist") if values > 0 => {
                e.push(format!("{path}.matchExpressions[{i}].values"), "Exists and DoesNotExist take no values")
            }
            Some("In" | "NotIn" | "Exists" | "DoesNotExist") => {}
            other => e.push(
                format!("{path}.matchExpressions[{i}].operator"),
                format!("{other:?}: use In, NotIn, Exists or DoesNotExist"),
            ),
        }
        if x.get("key").and_then(|k| k.as_str()).is_none_or(str::is_empty) {
            e.push(format!("{path}.matchExpressions[{i}].key"), "a label key is needed");
        }
    }
    if !sel.contains_key("matchLabels") && !sel.contains_key("matchExpressions") {
        e.push(path, "from: Selector needs matchLabels or matchExpressions");
    }
}

/// What every route kind checks the same way: its parents and hostnames.
fn route<R>(s: &RouteSpec<R>, e: &mut Errs) {
    parents(&s.parent_refs, "spec", e);
    for (i, h) in s.hostnames.iter().enumerate() {
        hostname(h, &format!("spec.hostnames[{i}]"), e);
    }
}

pub(super) fn http_route(s: &HttpRouteSpec, e: &mut Errs) {
    route(s, e);
    for (i, r) in s.rules.iter().enumerate() {
        let p = format!("spec.rules[{i}]");
        for (j, m) in r.matches.iter().enumerate() {
            let mp = format!("{p}.matches[{j}]");
            if let Some(path) = &m.path {
                let v = path.value.as_deref().unwrap_or("/");
                match path.kind.as_deref().unwrap_or("PathPrefix") {
                    "Exact" | "PathPrefix" if !v.starts_with('/') => {
                        e.push(format!("{mp}.path.value"), format!("{v:?} must start with /"))
                    }
                    "Exact" | "PathPrefix" => {}
                    "RegularExpression" => {
                        if let Err(err) = regex::Regex::new(v) {
                            e.push(format!("{mp}.path.value"), format!("invalid regular expression: {err}"));
                        }
                    }
                    other => e.push(
                        format!("{mp}.path.type"),
                        format!("{other:?}: use Exact, PathPrefix or RegularExpression"),
                    ),
                }
            }
            value_matches(&m.headers, &format!("{mp}.headers"), e);
            value_matches(&m.query_params, &format!("{mp}.queryParams"), e);
            if let Some(method) = &m.method
                && !["GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"]
                    .contains(&method.as_str())
            {
                e.push(format!("{mp}.method"), format!("{method:?} is not an HTTP method"));
            }
        }
        filters(&r.filters, &p, e);
        let redirects = r.filters.iter().any(|f| f.kind == "RequestRedirect");
        if redirects && r.filters.iter().any(|f| f.kind == "URLRewrite") {
            e.push(format!("{p}.filters"), "RequestRedirect and URLRewrite cannot be used together");
        }
        if redirects && !r.backend_refs.is_empty() {
            e.push(format!("{p}.backendRefs"), "a rule that redirects has no backends");
        }
        backends(&r.backend_refs, &p, e);
        if let Some(rt) = &r.retry {
            for (j, c) in rt.codes.iter().enumerate() {
                if !(400..=599).contains(c) {
                    e.push(format!("{p}.retry.codes[{j}]"), format!("{c} is not an HTTP error status (400-599)"));
                }
            }
            if rt.attempts.is_some_and(|a| a < 0) {
                e.push(format!("{p}.retry.attempts"), "must not be negative");
            }
            if let Some(b) = &rt.backoff
                && let Err(err) = crate::duration::parse(b)
            {
                e.push(format!("{p}.retry.backoff"), err);
            }
        }
        if let Some(t) = &r.timeouts {
            for (v, name) in [(&t.request, "request"), (&t.backend_request, "backendRequest")] {
                if let Some(v) = v
                    && let Err(err) = crate::duration::parse(v)
                {
                    e.push(format!("{p}.timeouts.{name}"), err);
                }
            }
        }
    }
}

pub(super) fn grpc_route(s: &GrpcRouteSpec, e: &mut Errs) {
    route(s, e);
    for (i, r) in s.rules.iter().enumerate() {
        let p = format!("spec.rules[{i}]");
        for (j, m) in r.matches.iter().enumerate() {
            let mp = format!("{p}.matches[{j}]");
            if let Some(method) = &m.method {
                match method.kind.as_deref().unwrap_or("Exact") {
                    "Exact" | "RegularExpression" => {}
                    other => e.push(format!("{mp}.method.type"), format!("{other:?}: use Exact or RegularExpression")),
                }
                if method.service.is_none() && method.method.is_none() {
                    e.push(format!("{mp}.method"), "one of service and method is required");
                }
            }
            value_matches(&m.headers, &format!("{mp}.headers"), e);
        }
        filters(&r.filters, &p, e);
        backends(&r.backend_refs, &p, e);
    }
}

pub(super) fn l4_route(s: &L4RouteSpec, tls: bool, e: &mut Errs) {
    route(s, e);
    if !tls && !s.hostnames.is_empty() {
        e.push("spec.hostnames", "a TCPRoute has no hostnames");
    }
    if s.rules.is_empty() {
        e.push("spec.rules", "at least one rule is required");
    }
    for (i, r) in s.rules.iter().enumerate() {
        let p = format!("spec.rules[{i}]");
        if r.backend_refs.is_empty() {
            e.push(format!("{p}.backendRefs"), "at least one backend is required");
        }
        backends(&r.backend_refs, &p, e);
    }
}

pub(super) fn reference_grant(s: &ReferenceGrantSpec, e: &mut Errs) {
    if s.from.is_empty() {
        e.push("spec.from", "at least one entry is required");
    }
    if s.to.is_empty() {
        e.push("spec.to", "at least one entry is required");
    }
    for (i, f) in s.from.iter().enumerate() {
        if f.kind.is_empty() {
            e.push(format!("spec.from[{i}].kind"), "required");
        }
        if !super::is_dns_label(&f.namespace) {
            e.push(format!("spec.from[{i}].namespace"), format!("{:?} is not a namespace", f.namespace));
        }
    }
    for (i, t) in s.to.iter().enumerate() {
        if t.kind.is_empty() {
            e.push(format!("spec.to[{i}].kind"), "required");
        }
    }
}
