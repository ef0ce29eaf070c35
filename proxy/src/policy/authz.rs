//! AuthorizationPolicy enforcement on the inbound side, with Istio's semantics:
//! any matching DENY policy denies; else, if any ALLOW policy applies to the workload, the
//! request must match one of them; else it is allowed. AUDIT policies only log.
//!
//! Values follow Istio's string rules: `*` matches anything that is present, `abc*` is a
//! prefix, `*abc` a suffix, anything else exact; paths also take `{*}` / `{**}` templates.

use std::net::IpAddr;

use http::HeaderMap;

use crate::matching::{Pattern, joined_header};
use ipnet::IpNet;
use mesh_api::proxy_config::{AuthzAction, AuthzPolicy};
use mesh_api::security::{Condition, Operation, Rule, Source};

/// A `values` / `notValues` pair: empty lists do not constrain.
#[derive(Debug, Clone, Default)]
struct Field {
    any_of: Vec<Pattern>,
    none_of: Vec<Pattern>,
}

impl Field {
    fn new(values: &[String], not_values: &[String]) -> Field {
        Field {
            any_of: values.iter().map(|v| Pattern::new(v)).collect(),
            none_of: not_values.iter().map(|v| Pattern::new(v)).collect(),
        }
    }

    fn constrains(&self) -> bool {
        !self.any_of.is_empty() || !self.none_of.is_empty()
    }

    /// `value` None (no peer identity, no header): it matches no value, so a `values` list
    /// fails and a `notValues` list passes.
    fn check(&self, value: Option<&str>, eq: impl Fn(&Pattern, &str) -> bool) -> bool {
        let hit = |ps: &[Pattern]| value.is_some_and(|v| ps.iter().any(|p| eq(p, v)));
        (self.any_of.is_empty() || hit(&self.any_of)) && !hit(&self.none_of)
    }

    fn check_exact(&self, value: Option<&str>) -> bool {
        self.check(value, |p, v| p.matches(v))
    }

    /// A multi-valued attribute (claim lists, audiences): some value must match `values`, and
    /// none may match `notValues`.
    fn check_any(&self, values: &[&str]) -> bool {
        (self.any_of.is_empty() || values.iter().any(|v| self.any_of.iter().any(|p| p.matches(v))))
            && !values.iter().any(|v| self.none_of.iter().any(|p| p.matches(v)))
    }
}

#[derive(Debug, Clone, Default)]
struct Ips {
    any_of: Vec<IpNet>,
    none_of: Vec<IpNet>,
}

fn nets(values: &[String]) -> Vec<IpNet> {
    values
        .iter()
        .filter_map(|v| v.parse::<IpNet>().ok().or_else(|| v.parse::<IpAddr>().ok().map(IpNet::from)))
        .collect()
}

impl Ips {
    fn new(values: &[String], not_values: &[String]) -> Ips {
        Ips { any_of: nets(values), none_of: nets(not_values) }
    }

    fn check(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        (self.any_of.is_empty() || self.any_of.iter().any(|n| n.contains(&ip)))
            && !self.none_of.iter().any(|n| n.contains(&ip))
    }
}

/// The request as policy sees it.
pub struct Request<'a> {
    pub method: &'a str,
    /// Without the query string.
    pub path: &'a str,
    pub host: &'a str,
    pub headers: &'a HeaderMap,
    /// The workload port the request came in on.
    pub port: u16,
    /// The peer's SPIFFE ID (mTLS only).
    pub peer: Option<&'a str>,
    pub source_ip: IpAddr,
    pub destination_ip: IpAddr,
    /// The verified JWT, if the request carried one.
    pub jwt: Option<&'a crate::policy::jwt::Verified>,
}

/// A peer principal split Istio's way: `td/ns/N/sa/SA`.
struct Principal<'a> {
    full: &'a str,
    trust_domain: &'a str,
    namespace: &'a str,
    service_account: &'a str,
}

fn principal(spiffe: &str) -> Option<Principal<'_>> {
    let full = spiffe.strip_prefix("spiffe://")?;
    let mut parts = full.split('/');
    let td = parts.next()?;
    let (ns_kw, ns, sa_kw, sa) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    (ns_kw == "ns" && sa_kw == "sa").then_some(Principal { full, trust_domain: td, namespace: ns, service_account: sa })
}

#[derive(Debug, Clone)]
struct CSource {
    principals: Field,
    request_principals: Field,
    namespaces: Field,
    service_accounts: Field,
    trust_domains: Field,
    ip_blocks: Ips,
    remote_ip_blocks: Ips,
}

#[derive(Debug, Clone)]
struct COperation {
    hosts: Field,
    methods: Field,
    paths_any: Vec<Pattern>,
    paths_none: Vec<Pattern>,
    ports: Vec<u16>,
    not_ports: Vec<u16>,
}

#[derive(Debug, Clone)]
enum CCondition {
    Header(http::HeaderName, Field),
    SourceIp(Ips),
    DestinationIp(Ips),
    DestinationPort(Vec<u16>, Vec<u16>),
    SourceNamespace(Field),
    SourcePrincipal(Field),
    SourceServiceAccount(Field),
    SourceTrustDomain(Field),
    RequestPrincipal(Field),
    RequestAudiences(Field),
    RequestPresenter(Field),
    /// `request.auth.claims[a][b]`: the path into the claims.
    RequestClaim(Vec<String>, Field),
    /// connection.sni and experimental.*: nothing the proxy sees, so the value is absent.
    Absent(Field),
}

#[derive(Debug, Clone)]
struct CRule {
    from: Vec<CSource>,
    to: Vec<COperation>,
    when: Vec<CCondition>,
    /// The rule names HTTP attributes (methods, paths, hosts, headers, JWT claims...). On a
    /// TCP connection such a rule never matches in an ALLOW policy and is judged on its other
    /// attributes in a DENY policy, as Istio builds its TCP filters.
    http_only: bool,
}

#[derive(Debug, Clone)]
struct CPolicy {
    name: String,
    rules: Vec<CRule>,
}

/// The compiled policies of one workload.
#[derive(Debug, Clone, Default)]
pub struct Authz {
    allow: Vec<CPolicy>,
    deny: Vec<CPolicy>,
    audit: Vec<CPolicy>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allow,
    /// Why: the DENY policy that matched, or that no ALLOW policy did.
    Deny(String),
}

fn ports(values: &[String]) -> Vec<u16> {
    values.iter().filter_map(|p| p.parse().ok()).collect()
}

fn compile_source(s: &Source) -> CSource {
    CSource {
        principals: Field::new(&s.principals, &s.not_principals),
        request_principals: Field::new(&s.request_principals, &s.not_request_principals),
        namespaces: Field::new(&s.namespaces, &s.not_namespaces),
        service_accounts: Field::new(&s.service_accounts, &s.not_service_accounts),
        trust_domains: Field::new(&s.trust_domains, &s.not_trust_domains),
        ip_blocks: Ips::new(&s.ip_blocks, &s.not_ip_blocks),
        remote_ip_blocks: Ips::new(&s.remote_ip_blocks, &s.not_remote_ip_blocks),
    }
}

fn compile_operation(o: &Operation) -> Result<COperation, String> {
    Ok(COperation {
        hosts: Field::new(&o.hosts, &o.not_hosts),
        methods: Field::new(&o.methods, &o.not_methods),
        paths_any: o.paths.iter().map(|p| Pattern::path(p)).collect::<Result<_, _>>()?,
        paths_none: o.not_paths.iter().map(|p| Pattern::path(p)).collect::<Result<_, _>>()?,
        ports: ports(&o.ports),
        not_ports: ports(&o.not_ports),
    })
}

fn compile_condition(c: &Condition) -> Result<CCondition, String> {
    let field = Field::new(&c.values, &c.not_values);
    let base = mesh_api::validate::condition_key(&c.key)?;
    Ok(match base {
        "request.headers" => {
            let name = &c.key[base.len() + 1..c.key.len() - 1];
            let name = http::HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| format!("{:?}: invalid header name", c.key))?;
            CCondition::Header(name, field)
        }
        "source.ip" | "remote.ip" => CCondition::SourceIp(Ips::new(&c.values, &c.not_values)),
        "destination.ip" => CCondition::DestinationIp(Ips::new(&c.values, &c.not_values)),
        "destination.port" => CCondition::DestinationPort(ports(&c.values), ports(&c.not_values)),
        "source.namespace" => CCondition::SourceNamespace(field),
        "source.principal" => CCondition::SourcePrincipal(field),
        "source.serviceAccount" => CCondition::SourceServiceAccount(field),
        "source.trustDomain" => CCondition::SourceTrustDomain(field),
        "request.auth.principal" => CCondition::RequestPrincipal(field),
        "request.auth.audiences" => CCondition::RequestAudiences(field),
        "request.auth.presenter" => CCondition::RequestPresenter(field),
        "request.auth.claims" => {
            let path = c.key[base.len()..].trim_start_matches('[').trim_end_matches(']');
            CCondition::RequestClaim(path.split("][").map(str::to_string).collect(), field)
        }
        _ => CCondition::Absent(field),
    })
}

impl Authz {
    pub fn compile(policies: &[AuthzPolicy]) -> Result<Authz, String> {
        let mut out = Authz::default();
        for p in policies {
            let rules = p
                .rules
                .iter()
                .map(|r: &Rule| {
                    let http_only = r.from.iter().any(|f| {
                        !f.source.request_principals.is_empty() || !f.source.not_request_principals.is_empty()
                    }) || r.to.iter().any(|t| {
                        let o = &t.operation;
                        !(o.hosts.is_empty()
                            && o.not_hosts.is_empty()
                            && o.methods.is_empty()
                            && o.not_methods.is_empty()
                            && o.paths.is_empty()
                            && o.not_paths.is_empty())
                    }) || r.when.iter().any(|c| c.key.starts_with("request."));
                    Ok(CRule {
                        from: r.from.iter().map(|f| compile_source(&f.source)).collect(),
                        to: r.to.iter().map(|t| compile_operation(&t.operation)).collect::<Result<_, String>>()?,
                        when: r.when.iter().map(compile_condition).collect::<Result<_, String>>()?,
                        http_only,
                    })
                })
                .collect::<Result<Vec<_>, String>>()
                .map_err(|e| format!("AuthorizationPolicy {}: {e}", p.name))?;
            let c = CPolicy { name: p.name.clone(), rules };
            match p.action {
                AuthzAction::Allow => out.allow.push(c),
                AuthzAction::Deny => out.deny.push(c),
                AuthzAction::Audit => out.audit.push(c),
            }
        }
        Ok(out)
    }

    pub fn is_empty(&self) -> bool {
        self.allow.is_empty() && self.deny.is_empty() && self.audit.is_empty()
    }

    /// The decision for a raw TCP connection.
    pub fn check_tcp(&self, req: &Request<'_>) -> Decision {
        if let Some(p) = self.deny.iter().find(|p| p.matches_tcp(req, true)) {
            return Decision::Deny(format!("denied by DENY policy {}", p.name));
        }
        if self.allow.is_empty() || self.allow.iter().any(|p| p.matches_tcp(req, false)) {
            Decision::Allow
        } else {
            Decision::Deny("no ALLOW policy matched".into())
        }
    }

    pub fn check(&self, req: &Request<'_>) -> Decision {
        for p in &self.audit {
            if p.matches(req) {
                tracing::info!(policy = %p.name, method = req.method, path = req.path, peer = ?req.peer, "AUDIT policy matched");
            }
        }
        if let Some(p) = self.deny.iter().find(|p| p.matches(req)) {
            return Decision::Deny(format!("denied by DENY policy {}", p.name));
        }
        if self.allow.is_empty() || self.allow.iter().any(|p| p.matches(req)) {
            Decision::Allow
        } else {
            Decision::Deny("no ALLOW policy matched".into())
        }
    }
}

impl CPolicy {
    fn matches(&self, req: &Request<'_>) -> bool {
        self.rules.iter().any(|r| r.matches(req))
    }

    /// A TCP connection (no HTTP attributes).
    fn matches_tcp(&self, req: &Request<'_>, deny: bool) -> bool {
        self.rules.iter().any(|r| {
            if r.http_only && !deny {
                return false;
            }
            let p = req.peer.and_then(principal);
            (r.from.is_empty() || r.from.iter().any(|s| s.matches_l4(req, p.as_ref())))
                && (r.to.is_empty() || r.to.iter().any(|o| o.port_ok(req.port)))
                && r.when.iter().all(|c| c.is_http() || c.matches(req, p.as_ref()))
        })
    }
}

impl CRule {
    fn matches(&self, req: &Request<'_>) -> bool {
        let p = req.peer.and_then(principal);
        (self.from.is_empty() || self.from.iter().any(|s| s.matches(req, p.as_ref())))
            && (self.to.is_empty() || self.to.iter().any(|o| o.matches(req)))
            && self.when.iter().all(|c| c.matches(req, p.as_ref()))
    }
}

fn sa_of(p: Option<&Principal<'_>>) -> Option<String> {
    p.map(|p| format!("{}/{}", p.namespace, p.service_account))
}

impl CSource {
    fn matches(&self, req: &Request<'_>, p: Option<&Principal<'_>>) -> bool {
        self.request_principals.check_exact(req.jwt.map(|j| j.principal.as_str())) && self.matches_l4(req, p)
    }

    fn matches_l4(&self, req: &Request<'_>, p: Option<&Principal<'_>>) -> bool {
        self.principals.check_exact(p.map(|p| p.full))
            && self.namespaces.check_exact(p.map(|p| p.namespace))
            && (!self.service_accounts.constrains() || self.service_accounts.check_exact(sa_of(p).as_deref()))
            && self.trust_domains.check_exact(p.map(|p| p.trust_domain))
            && self.ip_blocks.check(req.source_ip)
            && self.remote_ip_blocks.check(req.source_ip)
    }
}

impl COperation {
    fn matches(&self, req: &Request<'_>) -> bool {
        let host_no_port = mesh_api::host::split_host_port(req.host).0;
        let host_ok =
            self.hosts.check(Some(req.host), |p, v| p.matches_ignore_case(v) || p.matches_ignore_case(host_no_port));
        let path_ok = (self.paths_any.is_empty() || self.paths_any.iter().any(|p| p.matches(req.path)))
            && !self.paths_none.iter().any(|p| p.matches(req.path));
        host_ok && path_ok && self.port_ok(req.port) && self.methods.check_exact(Some(req.method))
    }

    fn port_ok(&self, port: u16) -> bool {
        (self.ports.is_empty() || self.ports.contains(&port)) && !self.not_ports.contains(&port)
    }
}

impl CCondition {
    fn is_http(&self) -> bool {
        matches!(
            self,
            CCondition::Header(..)
                | CCondition::RequestPrincipal(_)
                | CCondition::RequestAudiences(_)
                | CCondition::RequestPresenter(_)
                | CCondition::RequestClaim(..)
        )
    }

    fn matches(&self, req: &Request<'_>, p: Option<&Principal<'_>>) -> bool {
        match self {
            CCondition::Header(name, f) => {
                // Envoy's header matcher: every value of a repeated header joined with `,`,
                // bytes as received (a value with non-ASCII bytes is still matched).
                let joined = joined_header(req.headers, name);
                let hit = |ps: &[Pattern]| joined.as_deref().is_some_and(|v| ps.iter().any(|p| p.matches_bytes(v)));
                (f.any_of.is_empty() || hit(&f.any_of)) && !hit(&f.none_of)
            }
            CCondition::SourceIp(ips) => ips.check(req.source_ip),
            CCondition::DestinationIp(ips) => ips.check(req.destination_ip),
            CCondition::DestinationPort(any, none) => {
                (any.is_empty() || any.contains(&req.port)) && !none.contains(&req.port)
            }
            CCondition::SourceNamespace(f) => f.check_exact(p.map(|p| p.namespace)),
            CCondition::SourcePrincipal(f) => f.check_exact(p.map(|p| p.full)),
            CCondition::SourceServiceAccount(f) => f.check_exact(sa_of(p).as_deref()),
            CCondition::SourceTrustDomain(f) => f.check_exact(p.map(|p| p.trust_domain)),
            CCondition::RequestPrincipal(f) => f.check_exact(req.jwt.map(|j| j.principal.as_str())),
            CCondition::RequestAudiences(f) => {
                let auds = req.jwt.map(|j| j.audiences()).unwrap_or_default();
                f.check_any(&auds)
            }
            CCondition::RequestPresenter(f) => {
                f.check_exact(req.jwt.and_then(|j| j.claims.get("azp")).and_then(|v| v.as_str()))
            }
            CCondition::RequestClaim(path, f) => {
                let path: Vec<&str> = path.iter().map(String::as_str).collect();
                let vals = req.jwt.map(|j| j.claim(&path)).unwrap_or_default();
                f.check_any(&vals.iter().map(String::as_str).collect::<Vec<_>>())
            }
            CCondition::Absent(f) => f.check_exact(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policies(yaml: &str) -> Authz {
        let v: Vec<AuthzPolicy> = serde_json::from_value(
            mesh_api::resource::parse_yaml_stream(yaml).expect("yaml").into_iter().next().expect("doc"),
        )
        .expect("policies");
        Authz::compile(&v).expect("compile")
    }

    fn req<'a>(headers: &'a HeaderMap, peer: Option<&'a str>, method: &'a str, path: &'a str) -> Request<'a> {
        Request {
            method,
            path,
            host: "reviews:9080",
            headers,
            port: 9080,
            peer,
            source_ip: "127.0.0.1".parse().expect("ip"),
            destination_ip: "127.0.0.1".parse().expect("ip"),
            jwt: None,
        }
    }

    const PP: &str = "spiffe://cluster.local/ns/default/sa/bookinfo-productpage";
    const OTHER: &str = "spiffe://cluster.local/ns/default/sa/other";

    #[test]
    fn allow_by_principal() {
        let a = policies(
            "- name: default/reviews\n  action: ALLOW\n  rules:\n  - from:\n    - source:\n        principals: [cluster.local/ns/default/sa/bookinfo-productpage]\n",
        );
        let h = HeaderMap::new();
        assert_eq!(a.check(&req(&h, Some(PP), "GET", "/")), Decision::Allow);
        assert!(matches!(a.check(&req(&h, Some(OTHER), "GET", "/")), Decision::Deny(_)));
        assert!(matches!(a.check(&req(&h, None, "GET", "/")), Decision::Deny(_)), "plaintext has no principal");
    }

    #[test]
    fn header_conditions_match_the_joined_value_as_bytes() {
        let a = policies(
            "- name: ns/deny\n  action: DENY\n  rules:\n  - when:\n    - key: request.headers[x-user]\n      values: ['evil*', '*,admin']\n",
        );
        let check = |values: &[&[u8]]| {
            let mut h = HeaderMap::new();
            for v in values {
                h.append("x-user", http::HeaderValue::from_bytes(v).expect("value"));
            }
            a.check(&req(&h, None, "GET", "/"))
        };
        assert!(matches!(check(&[b"evil\xff"]), Decision::Deny(_)), "non-ASCII bytes are matched");
        assert!(matches!(check(&[b"guest", b"admin"]), Decision::Deny(_)), "joined: guest,admin");
        assert_eq!(check(&[b"guest"]), Decision::Allow);
        assert_eq!(check(&[]), Decision::Allow);
    }

    #[test]
    fn deny_wins_and_empty_allow_denies_all() {
        let a = policies(
            "- name: ns/deny-delete\n  action: DENY\n  rules:\n  - to:\n    - operation:\n        methods: [DELETE]\n- name: ns/allow-all\n  action: ALLOW\n  rules:\n  - {}\n",
        );
        let h = HeaderMap::new();
        assert_eq!(a.check(&req(&h, None, "GET", "/x")), Decision::Allow);
        assert!(matches!(a.check(&req(&h, None, "DELETE", "/x")), Decision::Deny(_)));
        let nothing = policies("- name: ns/deny-all\n  action: ALLOW\n");
        assert!(matches!(nothing.check(&req(&h, None, "GET", "/")), Decision::Deny(_)));
        assert_eq!(Authz::default().check(&req(&h, None, "GET", "/")), Decision::Allow);
    }

    #[test]
    fn paths_namespaces_headers_and_not_forms() {
        let a = policies(
            "- name: ns/p\n  action: ALLOW\n  rules:\n  - from:\n    - source:\n        namespaces: [default]\n        notPrincipals: ['*/sa/other']\n    to:\n    - operation:\n        paths: ['/api/*', '/v1/{*}/items']\n        notPaths: ['/api/admin*']\n    when:\n    - key: request.headers[x-user]\n      values: ['jason', 'ad*']\n",
        );
        let mut h = HeaderMap::new();
        h.insert("x-user", "jason".parse().expect("hv"));
        assert_eq!(a.check(&req(&h, Some(PP), "GET", "/api/books")), Decision::Allow);
        assert_eq!(a.check(&req(&h, Some(PP), "GET", "/v1/x/items")), Decision::Allow);
        assert!(matches!(a.check(&req(&h, Some(PP), "GET", "/v1/x/y/items")), Decision::Deny(_)));
        assert!(matches!(a.check(&req(&h, Some(PP), "GET", "/api/admin/x")), Decision::Deny(_)));
        assert!(matches!(a.check(&req(&h, Some(OTHER), "GET", "/api/books")), Decision::Deny(_)));
        let none = HeaderMap::new();
        assert!(matches!(a.check(&req(&none, Some(PP), "GET", "/api/books")), Decision::Deny(_)));
    }
}
