//! What the proxy enforces today. Fields that Istio defines and we accept, validate and store,
//! but that do not change traffic yet, are reported so nobody is surprised.

use crate::Resource;

/// Paths of fields set in `r` that are accepted but not enforced yet.
pub fn unenforced(r: &Resource) -> Vec<String> {
    let mut out = Vec::new();
    match r {
        Resource::Service(_) | Resource::PeerAuthentication(_) => {}
        Resource::AuthorizationPolicy(o) => {
            if o.spec.target_ref.is_some() || !o.spec.target_refs.is_empty() {
                out.push("spec.targetRefs (policies attach to workloads by selector only)".into());
            }
            if o.spec.action == crate::security::AuthorizationAction::Custom {
                out.push("spec.action CUSTOM (external authorizers; the policy is ignored)".into());
            }
            for (i, r) in o.spec.rules.iter().enumerate() {
                for (j, c) in r.when.iter().enumerate() {
                    if c.key.starts_with("experimental.") {
                        out.push(format!("spec.rules[{i}].when[{j}] ({}: never matches)", c.key));
                    }
                }
            }
        }
        Resource::RequestAuthentication(o) => {
            if o.spec.target_ref.is_some() || !o.spec.target_refs.is_empty() {
                out.push("spec.targetRefs (policies attach to workloads by selector only)".into());
            }
            for (i, r) in o.spec.jwt_rules.iter().enumerate() {
                if r.jwks.is_none() && r.jwks_uri.is_none() && r.jwks_uri_legacy.is_none() {
                    out.push(format!(
                        "spec.jwtRules[{i}] (no jwks or jwksUri: OpenID discovery is not supported; the rule is ignored)"
                    ));
                }
            }
        }
        Resource::VirtualService(o) => {
            let s = &o.spec;
            for (i, h) in s.http.iter().enumerate() {
                let p = format!("spec.http[{i}]");
                let set = [
                    ("redirect", h.redirect.is_some()),
                    ("directResponse", h.direct_response.is_some()),
                    ("delegate", h.delegate.is_some()),
                    ("rewrite", h.rewrite.is_some()),
                    ("timeout", h.timeout.is_some()),
                    ("retries", h.retries.is_some()),
                    ("fault", h.fault.is_some()),
                    ("mirror", h.mirror.is_some() || !h.mirrors.is_empty()),
                    ("corsPolicy", h.cors_policy.is_some()),
                    ("headers", h.headers.is_some() || h.route.iter().any(|d| d.headers.is_some())),
                ];
                out.extend(set.iter().filter(|(_, on)| *on).map(|(f, _)| format!("{p}.{f}")));
                for (j, m) in h.matches.iter().enumerate() {
                    let set = [
                        ("authority", m.authority.is_some()),
                        ("scheme", m.scheme.is_some()),
                        ("queryParams", !m.query_params.is_empty()),
                        ("withoutHeaders", !m.without_headers.is_empty()),
                        ("ignoreUriCase", m.ignore_uri_case.unwrap_or(false)),
                    ];
                    out.extend(set.iter().filter(|(_, on)| *on).map(|(f, _)| format!("{p}.match[{j}].{f}")));
                }
            }
            if !s.tcp.is_empty() {
                out.push("spec.tcp".into());
            }
            if !s.tls.is_empty() {
                out.push("spec.tls".into());
            }
        }
        Resource::DestinationRule(o) => {
            let policies = std::iter::once(("spec.trafficPolicy".to_string(), o.spec.traffic_policy.as_ref())).chain(
                o.spec
                    .subsets
                    .iter()
                    .enumerate()
                    .map(|(i, s)| (format!("spec.subsets[{i}].trafficPolicy"), s.traffic_policy.as_ref())),
            );
            for (p, tp) in policies {
                let Some(tp) = tp else { continue };
                let lb_other = tp.load_balancer.as_ref().is_some_and(|l| {
                    l.consistent_hash.is_some()
                        || l.locality_lb_setting.is_some()
                        || l.simple.as_deref().is_some_and(|s| !matches!(s, "ROUND_ROBIN" | "RANDOM" | "UNSPECIFIED"))
                });
                let set = [
                    ("loadBalancer", lb_other),
                    ("connectionPool", tp.connection_pool.is_some()),
                    ("outlierDetection", tp.outlier_detection.is_some()),
                    (
                        "tls (SIMPLE/MUTUAL origination; ISTIO_MUTUAL and DISABLE are enforced)",
                        tp.tls
                            .as_ref()
                            .and_then(|t| t.mode.as_deref())
                            .is_some_and(|m| matches!(m, "SIMPLE" | "MUTUAL")),
                    ),
                ];
                out.extend(set.iter().filter(|(_, on)| *on).map(|(f, _)| format!("{p}.{f}")));
            }
        }
    }
    out
}
