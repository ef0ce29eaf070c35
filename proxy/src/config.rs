//! The proxy's compiled config: the three parts meshd pushes, checked and turned into the
//! structures the request path reads. A snapshot is immutable; a new push builds a new one
//! and swaps it in whole.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use http::HeaderName;
use mesh_api::proxy_config::{ConfigType, HeaderMatcher, LbPolicy, PeerMode, ProxyConfig, RouteMatch, StringMatcher};
use serde::Serialize;

/// Why a part was rejected; the type is NACKed with the message.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{config_type}: {message}")]
pub struct ConfigError {
    pub config_type: ConfigType,
    pub message: String,
}

fn err(config_type: ConfigType, message: String) -> ConfigError {
    ConfigError { config_type, message }
}

#[derive(Debug)]
pub enum Matcher {
    Exact(String),
    Prefix(String),
    Regex(regex::Regex),
}

impl Matcher {
    fn compile(m: &StringMatcher) -> Result<Matcher, String> {
        Ok(match m {
            StringMatcher::Exact(s) => Matcher::Exact(s.clone()),
            StringMatcher::Prefix(s) => Matcher::Prefix(s.clone()),
            StringMatcher::Regex(r) => Matcher::Regex(
                regex::RegexBuilder::new(&format!("^(?:{r})$"))
                    .size_limit(1 << 20)
                    .build()
                    .map_err(|e| format!("invalid regex {r:?}: {}", e.to_string().lines().last().unwrap_or("")))?,
            ),
        })
    }

    pub fn matches(&self, v: &str) -> bool {
        match self {
            Matcher::Exact(s) => v == s,
            Matcher::Prefix(s) => v.starts_with(s.as_str()),
            Matcher::Regex(r) => r.is_match(v),
        }
    }
}

#[derive(Debug)]
pub struct CompiledMatch {
    pub uri: Option<Matcher>,
    pub method: Option<Matcher>,
    pub headers: Vec<(HeaderName, Option<Matcher>)>,
}

impl CompiledMatch {
    fn compile(m: &RouteMatch) -> Result<Self, String> {
        let headers = m
            .headers
            .iter()
            .map(|HeaderMatcher { name, value }| {
                let n = HeaderName::from_bytes(name.as_bytes()).map_err(|_| format!("invalid header name {name:?}"))?;
                Ok((n, value.as_ref().map(Matcher::compile).transpose()?))
            })
            .collect::<Result<_, String>>()?;
        Ok(CompiledMatch {
            uri: m.uri.as_ref().map(Matcher::compile).transpose()?,
            method: m.method.as_ref().map(Matcher::compile).transpose()?,
            headers,
        })
    }

    pub fn matches(&self, method: &http::Method, path: &str, headers: &http::HeaderMap) -> bool {
        if let Some(m) = &self.uri
            && !m.matches(path)
        {
            return false;
        }
        if let Some(m) = &self.method
            && !m.matches(method.as_str())
        {
            return false;
        }
        self.headers.iter().all(|(name, m)| match (headers.get(name), m) {
            (None, _) => false,
            (Some(_), None) => true,
            (Some(v), Some(m)) => v.to_str().is_ok_and(|v| m.matches(v)),
        })
    }
}

/// A cluster with its endpoints and balancer state.
#[derive(Debug)]
pub struct ClusterState {
    pub name: String,
    pub lb: LbPolicy,
    pub endpoints: Vec<SocketAddr>,
    next: AtomicUsize,
}

impl ClusterState {
    pub fn pick(&self) -> Option<SocketAddr> {
        let n = self.endpoints.len();
        if n == 0 {
            return None;
        }
        let i = match self.lb {
            LbPolicy::RoundRobin => self.next.fetch_add(1, Ordering::Relaxed) % n,
            LbPolicy::Random => fastrand::usize(..n),
        };
        Some(self.endpoints[i])
    }
}

#[derive(Debug)]
pub struct CompiledRoute {
    pub name: String,
    pub matches: Vec<CompiledMatch>,
    pub clusters: Vec<(Arc<ClusterState>, u32)>,
    pub total_weight: u32,
}

impl CompiledRoute {
    /// Pick a cluster by weight.
    pub fn pick_cluster(&self) -> Option<&Arc<ClusterState>> {
        if self.clusters.len() == 1 {
            return self.clusters.first().map(|(c, _)| c);
        }
        if self.total_weight == 0 {
            return None;
        }
        let mut x = fastrand::u32(..self.total_weight);
        for (c, w) in &self.clusters {
            if x < *w {
                return Some(c);
            }
            x -= w;
        }
        None
    }
}

#[derive(Debug)]
pub struct CompiledVhost {
    pub name: String,
    pub routes: Vec<CompiledRoute>,
}

/// What the outbound side knows of an endpoint's proxy.
#[derive(Debug, Clone)]
pub struct Peer {
    /// The SPIFFE ID it must present.
    pub identity: Arc<str>,
    pub mtls: bool,
}

/// Everything the request path reads, immutable.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// Endpoint address -> identity and mTLS choice.
    peers: HashMap<SocketAddr, Peer>,
    /// Workload port -> PeerAuthentication mode.
    inbound: HashMap<u16, PeerMode>,
    pub authz: crate::authz::Authz,
    pub jwt: crate::jwt::JwtAuth,
    /// Host (lowercase, no port) -> [(port, vhost)].
    hosts: HashMap<String, Vec<(u16, usize)>>,
    vhosts: Vec<CompiledVhost>,
    /// The parts as received, for the config dump.
    pub raw: ProxyConfig,
    /// Version of each part (routes, clusters, endpoints) in force.
    pub versions: HashMap<ConfigType, String>,
}

impl Snapshot {
    pub fn peer(&self, addr: SocketAddr) -> Option<&Peer> {
        self.peers.get(&addr)
    }

    /// The mTLS mode of a workload port (PERMISSIVE until meshd says otherwise).
    pub fn peer_mode(&self, port: u16) -> PeerMode {
        self.inbound.get(&port).copied().unwrap_or_default()
    }

    /// Find the virtual host for a request authority's host and port.
    pub fn vhost(&self, host: &str, port: u16) -> Option<&CompiledVhost> {
        let entries = match self.hosts.get(host) {
            Some(e) => e,
            None if host.bytes().any(|b| b.is_ascii_uppercase()) => self.hosts.get(&host.to_ascii_lowercase())?,
            None => return None,
        };
        entries.iter().find(|(p, _)| *p == port).map(|(_, i)| &self.vhosts[*i])
    }

    /// Compile a full config. Errors name the part at fault.
    pub fn compile(raw: ProxyConfig, versions: HashMap<ConfigType, String>) -> Result<Snapshot, ConfigError> {
        let mut clusters: HashMap<&str, Arc<ClusterState>> = HashMap::new();
        for c in &raw.clusters.clusters {
            let endpoints = raw
                .endpoints
                .clusters
                .get(&c.name)
                .map(|eps| eps.iter().map(|e| e.address).collect::<Vec<_>>())
                .unwrap_or_default();
            if let Some(bad) = endpoints.iter().find(|a| a.port() == 0) {
                return Err(err(ConfigType::Endpoints, format!("cluster {}: endpoint {bad} has port 0", c.name)));
            }
            let state =
                Arc::new(ClusterState { name: c.name.clone(), lb: c.lb_policy, endpoints, next: AtomicUsize::new(0) });
            if clusters.insert(c.name.as_str(), state).is_some() {
                return Err(err(ConfigType::Clusters, format!("duplicate cluster {}", c.name)));
            }
        }
        let mut hosts: HashMap<String, Vec<(u16, usize)>> = HashMap::new();
        let mut vhosts = Vec::new();
        for (vi, vh) in raw.routes.virtual_hosts.iter().enumerate() {
            let mut routes = Vec::new();
            for r in &vh.routes {
                let matches = r
                    .matches
                    .iter()
                    .map(CompiledMatch::compile)
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|m| err(ConfigType::Routes, format!("{} route {:?}: {m}", vh.name, r.name)))?;
                let mut cs = Vec::new();
                for wc in &r.clusters {
                    let c = clusters.get(wc.cluster.as_str()).ok_or_else(|| {
                        err(
                            ConfigType::Routes,
                            format!("{} route {:?} references unknown cluster {}", vh.name, r.name, wc.cluster),
                        )
                    })?;
                    cs.push((c.clone(), wc.weight));
                }
                if cs.is_empty() {
                    return Err(err(ConfigType::Routes, format!("{} route {:?} has no destination", vh.name, r.name)));
                }
                let total_weight = cs.iter().map(|(_, w)| *w).sum();
                routes.push(CompiledRoute { name: r.name.clone(), matches, clusters: cs, total_weight });
            }
            for d in &vh.domains {
                hosts.entry(d.to_ascii_lowercase()).or_default().push((vh.port, vi));
            }
            vhosts.push(CompiledVhost { name: vh.name.clone(), routes });
        }
        let mut peers = HashMap::new();
        for e in raw.endpoints.clusters.values().flatten() {
            if e.mtls && e.identity.is_empty() {
                return Err(err(
                    ConfigType::Endpoints,
                    format!("endpoint {} uses mTLS but has no identity", e.address),
                ));
            }
            peers.insert(e.address, Peer { identity: Arc::from(e.identity.as_str()), mtls: e.mtls });
        }
        let inbound = raw.listeners.inbound.iter().map(|l| (l.port, l.mtls)).collect();
        let authz = crate::authz::Authz::compile(&raw.listeners.policies).map_err(|m| err(ConfigType::Listeners, m))?;
        let jwt = crate::jwt::JwtAuth::compile(&raw.listeners.jwt).map_err(|m| err(ConfigType::Listeners, m))?;
        Ok(Snapshot { peers, inbound, authz, jwt, hosts, vhosts, raw, versions })
    }
}

/// What `/config_dump` shows.
#[derive(Serialize)]
pub struct Dump<'a> {
    pub versions: &'a HashMap<ConfigType, String>,
    pub config: &'a ProxyConfig,
}

#[cfg(test)]
mod tests {
    use mesh_api::proxy_config::*;

    use super::*;

    fn snapshot(routes: Vec<Route>, clusters: &[&str]) -> Snapshot {
        let raw = ProxyConfig {
            routes: Routes {
                virtual_hosts: vec![VirtualHost {
                    name: "reviews.default.svc.cluster.local:9080".into(),
                    domains: vec!["reviews".into(), "reviews.default.svc.cluster.local".into()],
                    port: 9080,
                    routes,
                }],
            },
            clusters: Clusters {
                clusters: clusters
                    .iter()
                    .map(|c| Cluster {
                        name: c.to_string(),
                        service: "reviews".into(),
                        port: 9080,
                        subset: None,
                        lb_policy: LbPolicy::RoundRobin,
                    })
                    .collect(),
            },
            endpoints: Endpoints {
                clusters: clusters
                    .iter()
                    .enumerate()
                    .map(|(i, c)| {
                        let port = u16::try_from(1000 + i).unwrap_or(1);
                        let eps = vec![
                            Endpoint {
                                address: ([127, 0, 0, 1], port).into(),
                                workload: "a".into(),
                                identity: String::new(),
                                mtls: false,
                            },
                            Endpoint {
                                address: ([127, 0, 0, 2], port).into(),
                                workload: "b".into(),
                                identity: String::new(),
                                mtls: false,
                            },
                        ];
                        (c.to_string(), eps)
                    })
                    .collect(),
            },
            listeners: Listeners::default(),
        };
        Snapshot::compile(raw, HashMap::new()).expect("compiles")
    }

    fn route(matches: Vec<RouteMatch>, clusters: &[(&str, u32)]) -> Route {
        Route {
            name: "r".into(),
            matches,
            clusters: clusters.iter().map(|(c, w)| WeightedCluster { cluster: c.to_string(), weight: *w }).collect(),
        }
    }

    fn first_match<'a>(s: &'a Snapshot, method: &str, path: &str, headers: &[(&str, &str)]) -> Option<&'a str> {
        let mut h = http::HeaderMap::new();
        for (k, v) in headers {
            h.insert(HeaderName::from_bytes(k.as_bytes()).expect("name"), v.parse().expect("value"));
        }
        let method = http::Method::from_bytes(method.as_bytes()).expect("method");
        let vh = s.vhost("reviews", 9080)?;
        vh.routes
            .iter()
            .find(|r| r.matches.is_empty() || r.matches.iter().any(|m| m.matches(&method, path, &h)))
            .map(|r| r.clusters[0].0.name.as_str())
    }

    #[test]
    fn rules_match_in_order_on_uri_method_and_headers() {
        let jason = RouteMatch {
            headers: vec![HeaderMatcher { name: "end-user".into(), value: Some(StringMatcher::Exact("jason".into())) }],
            ..Default::default()
        };
        let api = RouteMatch {
            uri: Some(StringMatcher::Prefix("/api".into())),
            method: Some(StringMatcher::Regex("GET|HEAD".into())),
            ..Default::default()
        };
        let present =
            RouteMatch { headers: vec![HeaderMatcher { name: "x-canary".into(), value: None }], ..Default::default() };
        let exact = RouteMatch { uri: Some(StringMatcher::Exact("/health".into())), ..Default::default() };
        let s = snapshot(
            vec![
                route(vec![jason], &[("v2", 100)]),
                route(vec![api, present], &[("v3", 100)]),
                route(vec![exact], &[("v4", 100)]),
                route(vec![], &[("v1", 100)]),
            ],
            &["v1", "v2", "v3", "v4"],
        );
        assert_eq!(first_match(&s, "GET", "/", &[("end-user", "jason")]), Some("v2"));
        assert_eq!(first_match(&s, "GET", "/", &[("end-user", "jasonx")]), Some("v1"));
        assert_eq!(first_match(&s, "GET", "/api/x", &[]), Some("v3"));
        assert_eq!(first_match(&s, "POST", "/api/x", &[]), Some("v1"), "regex must match the whole method");
        assert_eq!(first_match(&s, "POST", "/", &[("x-canary", "")]), Some("v3"), "present-only header match");
        assert_eq!(first_match(&s, "GET", "/health", &[]), Some("v4"));
        assert_eq!(first_match(&s, "GET", "/healthz", &[]), Some("v1"), "exact is exact");
    }

    #[test]
    fn hosts_are_case_insensitive_and_port_specific() {
        let s = snapshot(vec![route(vec![], &[("v1", 100)])], &["v1"]);
        assert!(s.vhost("reviews", 9080).is_some());
        assert!(s.vhost("REVIEWS.default.svc.cluster.local", 9080).is_some());
        assert!(s.vhost("reviews", 80).is_none());
        assert!(s.vhost("ratings", 9080).is_none());
    }

    #[test]
    fn weights_and_round_robin() {
        let s = snapshot(vec![route(vec![], &[("v1", 90), ("v2", 10), ("v3", 0)])], &["v1", "v2", "v3"]);
        let r = &s.vhost("reviews", 9080).expect("vhost").routes[0];
        let mut counts = HashMap::new();
        for _ in 0..10_000 {
            *counts.entry(r.pick_cluster().expect("cluster").name.clone()).or_insert(0) += 1;
        }
        let v2 = counts.get("v2").copied().unwrap_or(0);
        assert!((800..=1200).contains(&v2), "{counts:?}");
        assert_eq!(counts.get("v3"), None, "weight 0 is never picked");
        let c = &r.clusters[0].0;
        let picks: Vec<_> = (0..4).map(|_| c.pick().expect("endpoint")).collect();
        assert_eq!(picks[0], picks[2]);
        assert_ne!(picks[0], picks[1]);
    }

    #[test]
    fn bad_parts_are_attributed_to_their_type() {
        let raw = ProxyConfig {
            routes: Routes {
                virtual_hosts: vec![VirtualHost {
                    name: "x".into(),
                    domains: vec!["x".into()],
                    port: 80,
                    routes: vec![route(vec![], &[("missing", 100)])],
                }],
            },
            ..Default::default()
        };
        let err = Snapshot::compile(raw, HashMap::new()).expect_err("dangling cluster");
        assert_eq!(err.config_type, ConfigType::Routes);
        assert!(err.message.contains("unknown cluster missing"));
    }
}
