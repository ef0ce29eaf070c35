//! The security half of translation: each workload port's effective PeerAuthentication
//! mode, the client's mTLS decision per endpoint, and the AuthorizationPolicies that apply
//! to a workload.

use mesh_api::networking::{DestinationRuleSpec, Subset, WorkloadSelector};
use mesh_api::protocol::Workload;
use mesh_api::proxy_config::{
    AuthzAction, AuthzPolicy, Bucket, InboundListener, JwtProvider, Listeners, PeerMode, RateLimit, RateLimitRule,
};
use mesh_api::security::{
    AuthorizationAction, AuthorizationPolicySpec, LocalRateLimitSpec, MtlsMode, PeerAuthenticationSpec,
    RequestAuthenticationSpec, TokenBucket,
};
use mesh_api::{Key, Object};

use super::{ROOT_NAMESPACE, labels_match};

pub(super) type Policies<'a, S> = Vec<(&'a Key, &'a Object<S>)>;

pub(super) fn selects(selector: &Option<WorkloadSelector>, w: &Workload) -> Option<bool> {
    match selector {
        Some(s) if !s.match_labels.is_empty() => Some(labels_match(&s.match_labels, &w.labels)),
        _ => None, // no selector: namespace- or mesh-wide
    }
}

/// Oldest first, then by name: Istio's tie-break when several policies compete.
pub(super) fn oldest<'a, S>(mut v: Vec<(&'a Key, &'a Object<S>)>) -> Option<(&'a Key, &'a Object<S>)> {
    v.sort_by(|(ka, a), (kb, b)| {
        (a.metadata.creation_timestamp.as_ref().and_then(|t| t.as_str()).unwrap_or(""), &ka.namespace, &ka.name).cmp(&(
            b.metadata.creation_timestamp.as_ref().and_then(|t| t.as_str()).unwrap_or(""),
            &kb.namespace,
            &kb.name,
        ))
    });
    v.into_iter().next()
}

/// The effective mode of `port` of workload `w`: the workload policy's port-level mode, then
/// its own mode, then the namespace policy, then the mesh policy (root namespace); PERMISSIVE
/// when none sets one. UNSET inherits.
pub fn peer_mode(pas: &Policies<'_, PeerAuthenticationSpec>, w: &Workload, port: u16) -> PeerMode {
    let mesh = oldest(
        pas.iter()
            .filter(|(k, pa)| k.namespace == ROOT_NAMESPACE && selects(&pa.spec.selector, w).is_none())
            .copied()
            .collect(),
    );
    let namespace = oldest(
        pas.iter()
            .filter(|(k, pa)| k.namespace == w.namespace && selects(&pa.spec.selector, w).is_none())
            .copied()
            .collect(),
    );
    let workload = oldest(
        pas.iter()
            .filter(|(k, pa)| k.namespace == w.namespace && selects(&pa.spec.selector, w) == Some(true))
            .copied()
            .collect(),
    );
    let mut mode = PeerMode::Permissive;
    let mut apply = |m: MtlsMode| match m {
        MtlsMode::Unset => {}
        MtlsMode::Disable => mode = PeerMode::Disable,
        MtlsMode::Permissive => mode = PeerMode::Permissive,
        MtlsMode::Strict => mode = PeerMode::Strict,
    };
    for (_, pa) in [mesh, namespace, workload].into_iter().flatten() {
        if let Some(m) = &pa.spec.mtls {
            apply(m.mode);
        }
    }
    if let Some((_, pa)) = workload
        && let Some(m) = pa.spec.port_level_mtls.as_ref().and_then(|p| p.get(&port.to_string()))
    {
        apply(m.mode);
    }
    mode
}

/// The client's choice for one endpoint: the DestinationRule's `tls.mode` when it sets one
/// (subset, then port-level, then top level), else auto mTLS: mTLS unless the server's port
/// is DISABLE.
pub fn endpoint_mtls(
    dr: Option<&Object<DestinationRuleSpec>>,
    subset: Option<&Subset>,
    port: u16,
    server: PeerMode,
) -> bool {
    let policies = [subset.and_then(|s| s.traffic_policy.as_ref()), dr.and_then(|d| d.spec.traffic_policy.as_ref())];
    for tp in policies.into_iter().flatten() {
        let port_level =
            tp.port_level_settings.iter().find(|p| p.port.as_ref().is_some_and(|n| n.number == u32::from(port)));
        let tls = port_level.and_then(|p| p.tls.as_ref()).or(tp.tls.as_ref());
        match tls.and_then(|t| t.mode.as_deref()) {
            Some("ISTIO_MUTUAL") => return true,
            Some(_) => return false, // DISABLE, or SIMPLE/MUTUAL (TLS origination to non-mesh servers)
            None => {}
        }
    }
    server != PeerMode::Disable
}

/// The AuthorizationPolicies that apply to `w`: mesh-wide ones in the root namespace (with a
/// selector they select in every namespace), and the workload's namespace's ones. CUSTOM
/// policies and policies attached by targetRef are not enforced here.
fn authz_policies(aps: &Policies<'_, AuthorizationPolicySpec>, w: &Workload) -> Vec<AuthzPolicy> {
    let mut out = Vec::new();
    for (k, ap) in aps {
        if k.namespace != ROOT_NAMESPACE && k.namespace != w.namespace {
            continue;
        }
        if ap.spec.target_ref.is_some() || !ap.spec.target_refs.is_empty() {
            continue;
        }
        if selects(&ap.spec.selector, w) == Some(false) {
            continue;
        }
        let action = match ap.spec.action {
            AuthorizationAction::Allow => AuthzAction::Allow,
            AuthorizationAction::Deny => AuthzAction::Deny,
            AuthorizationAction::Audit => AuthzAction::Audit,
            AuthorizationAction::Custom => continue,
        };
        let mut rules = ap.spec.rules.clone();
        for rule in &mut rules {
            for from in &mut rule.from {
                let qualify = |sa: &mut String| {
                    if !sa.contains('/') {
                        *sa = format!("{}/{sa}", k.namespace);
                    }
                };
                from.source.service_accounts.iter_mut().for_each(qualify);
                from.source.not_service_accounts.iter_mut().for_each(qualify);
            }
        }
        out.push(AuthzPolicy { name: format!("{}/{}", k.namespace, k.name), action, rules });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// The JWT rules of every RequestAuthentication that applies to `w` (same scoping as
/// AuthorizationPolicy: root namespace mesh-wide, the workload's namespace, selectors).
fn jwt_providers(ras: &Policies<'_, RequestAuthenticationSpec>, w: &Workload) -> Vec<JwtProvider> {
    let mut out = Vec::new();
    for (k, ra) in ras {
        if k.namespace != ROOT_NAMESPACE && k.namespace != w.namespace {
            continue;
        }
        if ra.spec.target_ref.is_some() || !ra.spec.target_refs.is_empty() {
            continue;
        }
        if selects(&ra.spec.selector, w) == Some(false) {
            continue;
        }
        for r in &ra.spec.jwt_rules {
            if r.jwks.is_none() && r.jwks_uri.is_none() && r.jwks_uri_legacy.is_none() {
                continue; // OpenID discovery: not supported (reported at apply)
            }
            out.push(JwtProvider {
                policy: format!("{}/{}", k.namespace, k.name),
                issuer: r.issuer.clone(),
                audiences: r.audiences.clone(),
                jwks: r.jwks.clone(),
                jwks_uri: r.jwks_uri.clone().or_else(|| r.jwks_uri_legacy.clone()),
                from_headers: r
                    .from_headers
                    .iter()
                    .map(|h| (h.name.to_ascii_lowercase(), h.prefix.clone().unwrap_or_default()))
                    .collect(),
                from_params: r.from_params.clone(),
                from_cookies: r.from_cookies.clone(),
                forward_original_token: r.forward_original_token.unwrap_or(false),
                output_payload_to_header: r.output_payload_to_header.clone(),
                output_claim_to_headers: r
                    .output_claim_to_headers
                    .iter()
                    .map(|c| (c.claim.clone(), c.header.to_ascii_lowercase()))
                    .collect(),
                timeout_ms: r
                    .timeout
                    .as_deref()
                    .and_then(|t| mesh_api::duration::parse(t).ok())
                    .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            });
        }
    }
    out.sort_by(|a, b| (&a.policy, &a.issuer).cmp(&(&b.policy, &b.issuer)));
    out
}

pub fn listeners(
    pas: &Policies<'_, PeerAuthenticationSpec>,
    aps: &Policies<'_, AuthorizationPolicySpec>,
    ras: &Policies<'_, RequestAuthenticationSpec>,
    proxy: &Workload,
) -> Listeners {
    let mut inbound: Vec<InboundListener> = proxy
        .ports
        .iter()
        .map(|p| InboundListener {
            port: p.port,
            mtls: peer_mode(pas, proxy, p.port),
            tcp: false,
            services: Vec::new(),
            app_http: None,
            endpoint: None,
        })
        .collect();
    inbound.sort_by_key(|l| l.port);
    inbound.dedup();
    Listeners {
        inbound,
        policies: authz_policies(aps, proxy),
        jwt: jwt_providers(ras, proxy),
        rate_limit: None,
        access_log: false,
        tracing: None,
        path_normalization: Default::default(),
        idle_timeout_ms: None,
        gateway_tls: Vec::new(),
        bound: Vec::new(),
    }
}

fn bucket(b: &TokenBucket) -> Bucket {
    let max = u64::try_from(b.max_tokens).unwrap_or(1).max(1);
    Bucket {
        max_tokens: max,
        tokens_per_fill: b.tokens_per_fill.and_then(|t| u64::try_from(t).ok()).unwrap_or(max).max(1),
        fill_interval_ms: mesh_api::duration::parse(&b.fill_interval)
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            .unwrap_or(1000)
            .max(1),
    }
}

/// The LocalRateLimit for `w`: one selecting it in its namespace, else the namespace's,
/// else the mesh's (root namespace); the oldest when several compete.
pub fn rate_limit(rls: &Policies<'_, LocalRateLimitSpec>, w: &Workload) -> Option<RateLimit> {
    let by_selector = oldest(
        rls.iter()
            .filter(|(k, r)| k.namespace == w.namespace && selects(&r.spec.selector, w) == Some(true))
            .copied()
            .collect(),
    );
    let namespace = || {
        oldest(
            rls.iter()
                .filter(|(k, r)| k.namespace == w.namespace && selects(&r.spec.selector, w).is_none())
                .copied()
                .collect(),
        )
    };
    let mesh = || {
        oldest(
            rls.iter()
                .filter(|(k, r)| k.namespace == ROOT_NAMESPACE && selects(&r.spec.selector, w) != Some(false))
                .copied()
                .collect(),
        )
    };
    let (k, r) = by_selector.or_else(namespace).or_else(mesh)?;
    Some(RateLimit {
        policy: format!("{}/{}", k.namespace, k.name),
        bucket: r.spec.token_bucket.as_ref().map(bucket),
        routes: r
            .spec
            .routes
            .iter()
            .map(|rt| RateLimitRule {
                path_prefix: rt.matches.path_prefix.clone(),
                method: rt.matches.method.clone(),
                port: rt.matches.port.and_then(|p| u16::try_from(p).ok()),
                bucket: bucket(&rt.token_bucket),
            })
            .collect(),
    })
}
