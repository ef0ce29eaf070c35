//! Validation of PeerAuthentication, AuthorizationPolicy and RequestAuthentication, with the
//! rules of Istio's CRDs and its validation webhook.

use super::{Errs, labels};
use crate::networking::WorkloadSelector;
use crate::security::*;

/// `when` keys Istio accepts; `[...]` keys take a name in brackets.
pub const CONDITION_KEYS: &[&str] = &[
    "source.ip",
    "remote.ip",
    "source.namespace",
    "source.principal",
    "source.serviceAccount",
    "source.trustDomain",
    "request.auth.principal",
    "request.auth.audiences",
    "request.auth.presenter",
    "destination.ip",
    "destination.port",
    "connection.sni",
];
pub const CONDITION_BRACKET_KEYS: &[&str] = &["request.headers", "request.auth.claims"];

fn selector(s: &Option<WorkloadSelector>, path: &str, e: &mut Errs) {
    if let Some(s) = s {
        labels(&s.match_labels, &format!("{path}.matchLabels"), e);
    }
}

fn targets(
    selector: &Option<WorkloadSelector>,
    target_ref: &Option<PolicyTargetReference>,
    target_refs: &[PolicyTargetReference],
    namespace: &str,
    e: &mut Errs,
) {
    let set =
        usize::from(selector.is_some()) + usize::from(target_ref.is_some()) + usize::from(!target_refs.is_empty());
    if set > 1 {
        e.push("spec", "only one of targetRefs or selector can be set");
    }
    let refs = target_ref
        .iter()
        .map(|r| ("spec.targetRef".to_string(), r))
        .chain(target_refs.iter().enumerate().map(|(i, r)| (format!("spec.targetRefs[{i}]"), r)));
    for (path, r) in refs {
        if r.name.as_deref().is_none_or(str::is_empty) {
            e.push(format!("{path}.name"), "Required value");
        }
        let group = r.group.as_deref().unwrap_or("");
        if !group.is_empty() && !super::is_dns_subdomain(group) {
            e.push(format!("{path}.group"), format!("{group:?} is not a valid API group"));
        }
        let kind = r.kind.as_deref().unwrap_or("");
        let kind_ok = kind.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
            && kind.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !kind.ends_with('-');
        if !kind_ok {
            e.push(format!("{path}.kind"), format!("{kind:?} is not a valid kind"));
        }
        if let Some(ns) = &r.namespace
            && !ns.is_empty()
            && ns != namespace
        {
            e.push(
                format!("{path}.namespace"),
                format!("cross namespace referencing is not currently supported ({ns:?} is not {namespace:?})"),
            );
        }
    }
}

pub(super) fn peer_authentication(s: &PeerAuthenticationSpec, e: &mut Errs) {
    selector(&s.selector, "spec.selector", e);
    let Some(ports) = &s.port_level_mtls else { return };
    if s.selector.as_ref().is_none_or(|s| s.match_labels.is_empty()) {
        e.push("spec.portLevelMtls", "portLevelMtls requires selector (a workload selector with matchLabels)");
    }
    if ports.is_empty() {
        e.push("spec.portLevelMtls", "must have at least 1 port");
    }
    for port in ports.keys() {
        match port.parse::<u64>() {
            Ok(p) if (1..=65535).contains(&p) => {}
            Ok(_) => e.push(format!("spec.portLevelMtls[{port}]"), "port must be between 1-65535"),
            Err(_) => e.push(
                format!("spec.portLevelMtls[{port}]"),
                format!("{port:?} is not a port number (type conversion error from string to number)"),
            ),
        }
    }
}

/// Istio's pattern for header names a JWT claim may be copied to: `^[-_A-Za-z0-9]+$`.
fn header_name(h: &str) -> bool {
    !h.is_empty() && h.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A value check and what a valid value is, for the error message.
type Check = fn(&str) -> bool;

fn ip_or_cidr(v: &str) -> bool {
    v.parse::<std::net::IpAddr>().is_ok() || v.parse::<ipnet::IpNet>().is_ok()
}

fn port(v: &str) -> bool {
    v.parse::<u16>().is_ok_and(|p| p > 0)
}

fn list(values: &[String], path: &str, check: fn(&str) -> bool, what: &str, e: &mut Errs) {
    for (i, v) in values.iter().enumerate() {
        if !check(v) {
            e.push(format!("{path}[{i}]"), format!("{v:?} is not {what}"));
        }
    }
}

fn non_empty(values: &[String], path: &str, e: &mut Errs) {
    for (i, v) in values.iter().enumerate() {
        if v.is_empty() {
            e.push(format!("{path}[{i}]"), "must not be empty");
        }
    }
}

/// Istio's path templates: `{*}` matches one segment, `{**}` any number (only as the last
/// operator); a path with a template must not also use a bare `*`.
fn path_value(v: &str) -> Result<(), String> {
    if !v.contains('{') {
        return Ok(());
    }
    let segments: Vec<&str> = v.split('/').collect();
    let mut seen_double = false;
    for seg in &segments {
        if seg.contains('{') || seg.contains('}') {
            match *seg {
                "{*}" | "{**}" => {
                    if seen_double {
                        return Err(format!("{v:?}: {{**}} must be the last operator in a path template"));
                    }
                    seen_double = *seg == "{**}";
                }
                _ => return Err(format!("{v:?}: a path template segment must be exactly {{*}} or {{**}}")),
            }
        } else if seg.contains('*') {
            return Err(format!("{v:?}: a path template must not also use '*'"));
        }
    }
    Ok(())
}

pub(super) fn authorization_policy(s: &AuthorizationPolicySpec, namespace: &str, e: &mut Errs) {
    selector(&s.selector, "spec.selector", e);
    targets(&s.selector, &s.target_ref, &s.target_refs, namespace, e);
    match (s.action, &s.provider) {
        (AuthorizationAction::Custom, None) => e.push("spec.provider", "action CUSTOM requires a provider"),
        (AuthorizationAction::Custom, Some(p)) if p.name.is_empty() => e.push("spec.provider.name", "required"),
        (a, Some(_)) if a != AuthorizationAction::Custom => {
            e.push("spec.provider", format!("a provider is only allowed with action CUSTOM, not {}", a.as_str()))
        }
        _ => {}
    }
    for (i, rule) in s.rules.iter().enumerate() {
        let rp = format!("spec.rules[{i}]");
        for (j, from) in rule.from.iter().enumerate() {
            let p = format!("{rp}.from[{j}].source");
            let src = &from.source;
            if *src == Source::default() {
                e.push(&p, "source must not be empty");
            }
            if (!src.service_accounts.is_empty() || !src.not_service_accounts.is_empty())
                && (!src.namespaces.is_empty()
                    || !src.not_namespaces.is_empty()
                    || !src.principals.is_empty()
                    || !src.not_principals.is_empty())
            {
                e.push(&p, "Cannot set serviceAccounts with namespaces or principals");
            }
            for (field, values) in [
                ("principals", &src.principals),
                ("notPrincipals", &src.not_principals),
                ("requestPrincipals", &src.request_principals),
                ("notRequestPrincipals", &src.not_request_principals),
                ("namespaces", &src.namespaces),
                ("notNamespaces", &src.not_namespaces),
                ("serviceAccounts", &src.service_accounts),
                ("notServiceAccounts", &src.not_service_accounts),
            ] {
                non_empty(values, &format!("{p}.{field}"), e);
            }
            for (field, values) in [
                ("ipBlocks", &src.ip_blocks),
                ("notIpBlocks", &src.not_ip_blocks),
                ("remoteIpBlocks", &src.remote_ip_blocks),
                ("notRemoteIpBlocks", &src.not_remote_ip_blocks),
            ] {
                list(values, &format!("{p}.{field}"), ip_or_cidr, "an IP address or CIDR block", e);
            }
        }
        for (j, to) in rule.to.iter().enumerate() {
            let p = format!("{rp}.to[{j}].operation");
            let op = &to.operation;
            if *op == Operation::default() {
                e.push(&p, "operation must not be empty");
            }
            list(&op.ports, &format!("{p}.ports"), port, "a port number (1-65535)", e);
            list(&op.not_ports, &format!("{p}.notPorts"), port, "a port number (1-65535)", e);
            for (field, values) in [("paths", &op.paths), ("notPaths", &op.not_paths)] {
                for (k, v) in values.iter().enumerate() {
                    if let Err(msg) = path_value(v) {
                        e.push(format!("{p}.{field}[{k}]"), msg);
                    }
                }
            }
            for (field, values) in [
                ("hosts", &op.hosts),
                ("notHosts", &op.not_hosts),
                ("methods", &op.methods),
                ("notMethods", &op.not_methods),
            ] {
                non_empty(values, &format!("{p}.{field}"), e);
            }
        }
        for (j, c) in rule.when.iter().enumerate() {
            let p = format!("{rp}.when[{j}]");
            if c.key.is_empty() {
                e.push(format!("{p}.key"), "required");
                continue;
            }
            if c.values.is_empty() && c.not_values.is_empty() {
                e.push(&p, "at least one of values or notValues must be set");
            }
            match condition_key(&c.key) {
                Err(msg) => e.push(format!("{p}.key"), msg),
                Ok(k) => {
                    let check: Option<(Check, &str)> = match k {
                        "source.ip" | "remote.ip" | "destination.ip" => {
                            Some((ip_or_cidr, "an IP address or CIDR block"))
                        }
                        "destination.port" => Some((port, "a port number (1-65535)")),
                        _ => None,
                    };
                    if let Some((check, what)) = check {
                        list(&c.values, &format!("{p}.values"), check, what, e);
                        list(&c.not_values, &format!("{p}.notValues"), check, what, e);
                    }
                }
            }
        }
    }
}

/// The key's base name (`request.headers` for `request.headers[x-user]`), or why it is invalid.
pub fn condition_key(key: &str) -> Result<&str, String> {
    if let Some(open) = key.find('[') {
        let base = &key[..open];
        let rest = &key[open..];
        let well_formed = rest.ends_with(']') && rest.len() > 2 && !rest[1..rest.len() - 1].is_empty();
        if CONDITION_BRACKET_KEYS.contains(&base) || base.starts_with("experimental.envoy.filters.") {
            if !well_formed {
                return Err(format!("{key:?}: expected a name in brackets, like {base}[name]"));
            }
            return Ok(base);
        }
        return Err(format!("unknown attribute {key:?}"));
    }
    if CONDITION_KEYS.contains(&key) {
        Ok(key)
    } else {
        Err(format!(
            "unknown attribute {key:?}; use one of {}, request.headers[NAME], request.auth.claims[NAME]",
            CONDITION_KEYS.join(", ")
        ))
    }
}

pub(super) fn request_authentication(s: &RequestAuthenticationSpec, namespace: &str, e: &mut Errs) {
    selector(&s.selector, "spec.selector", e);
    targets(&s.selector, &s.target_ref, &s.target_refs, namespace, e);
    for (i, r) in s.jwt_rules.iter().enumerate() {
        let p = format!("spec.jwtRules[{i}]");
        if r.issuer.is_empty() {
            e.push(format!("{p}.issuer"), "Required value");
        }
        for (j, a) in r.audiences.iter().enumerate() {
            if a.is_empty() {
                e.push(format!("{p}.audiences[{j}]"), "should be at least 1 chars long");
            }
        }
        for (field, uri) in [("jwksUri", &r.jwks_uri), ("jwks_uri", &r.jwks_uri_legacy)] {
            if let Some(u) = uri {
                let scheme_ok = u.split_once("://").is_some_and(|(s, rest)| {
                    !rest.is_empty() && (s.eq_ignore_ascii_case("http") || s.eq_ignore_ascii_case("https"))
                });
                if !scheme_ok {
                    e.push(format!("{p}.{field}"), format!("{u:?}: url must have scheme http:// or https://"));
                }
            }
        }
        if r.jwks_uri.is_some() && r.jwks_uri_legacy.is_some() {
            e.push(&p, "set only one of jwksUri and jwks_uri");
        }
        if let Some(jwks) = &r.jwks
            && serde_json::from_str::<serde_json::Value>(jwks).map(|v| v.get("keys").is_some_and(|k| k.is_array())).ok()
                != Some(true)
        {
            e.push(format!("{p}.jwks"), "must be a JSON Web Key Set: a JSON object with a \"keys\" array");
        }
        for (j, h) in r.from_headers.iter().enumerate() {
            if h.name.is_empty() {
                e.push(format!("{p}.fromHeaders[{j}].name"), "Required value (at least 1 chars long)");
            }
        }
        non_empty(&r.from_params, &format!("{p}.fromParams"), e);
        non_empty(&r.from_cookies, &format!("{p}.fromCookies"), e);
        non_empty(&r.space_delimited_claims, &format!("{p}.spaceDelimitedClaims"), e);
        for (j, c) in r.output_claim_to_headers.iter().enumerate() {
            let cp = format!("{p}.outputClaimToHeaders[{j}]");
            if c.claim.is_empty() {
                e.push(format!("{cp}.claim"), "should be at least 1 chars long");
            }
            if c.header.is_empty() {
                e.push(format!("{cp}.header"), "should be at least 1 chars long");
            } else if !header_name(&c.header) {
                e.push(format!("{cp}.header"), format!("{:?} is not a valid header name", c.header));
            }
        }
        if let Some(h) = &r.output_payload_to_header
            && !header_name(h)
        {
            e.push(format!("{p}.outputPayloadToHeader"), format!("{h:?} is not a valid header name"));
        }
        if let Some(t) = &r.timeout {
            match crate::duration::parse(t) {
                Ok(d) if d.is_zero() => e.push(format!("{p}.timeout"), "must be a valid duration greater than 1ms"),
                Ok(_) => {}
                Err(msg) => e.push(format!("{p}.timeout"), format!("must be a valid duration greater than 1ms: {msg}")),
            }
        }
    }
}

fn token_bucket(b: &TokenBucket, path: &str, e: &mut Errs) {
    if b.max_tokens < 1 {
        e.push(format!("{path}.maxTokens"), "must be at least 1");
    }
    if let Some(t) = b.tokens_per_fill
        && t < 1
    {
        e.push(format!("{path}.tokensPerFill"), "must be at least 1");
    }
    match crate::duration::parse(&b.fill_interval) {
        Ok(d) if d >= std::time::Duration::from_millis(1) => {}
        Ok(_) => e.push(format!("{path}.fillInterval"), "must be at least 1ms"),
        Err(msg) => e.push(format!("{path}.fillInterval"), format!("Required value, a duration like 1s: {msg}")),
    }
}

pub(super) fn local_rate_limit(s: &LocalRateLimitSpec, e: &mut Errs) {
    selector(&s.selector, "spec.selector", e);
    if s.token_bucket.is_none() && s.routes.is_empty() {
        e.push("spec", "set tokenBucket, routes, or both");
    }
    if let Some(b) = &s.token_bucket {
        token_bucket(b, "spec.tokenBucket", e);
    }
    for (i, r) in s.routes.iter().enumerate() {
        let p = format!("spec.routes[{i}]");
        token_bucket(&r.token_bucket, &format!("{p}.tokenBucket"), e);
        if let Some(prefix) = &r.matches.path_prefix
            && !prefix.starts_with('/')
        {
            e.push(format!("{p}.match.pathPrefix"), format!("{prefix:?} must start with '/'"));
        }
        if let Some(port) = r.matches.port
            && !(1..=65535).contains(&port)
        {
            e.push(format!("{p}.match.port"), "port must be between 1-65535");
        }
    }
}
