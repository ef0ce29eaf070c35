//! The proxy's compiled config: the three parts meshd pushes, checked and turned into the
//! structures the request path reads. A snapshot is immutable; a new push builds a new one
//! and swaps it in whole.

use serde::Serialize;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use mesh_api::proxy_config::*;

use crate::policy::ratelimit::RateLimiter;
use crate::routing::{CompiledTcp, CompiledVhost, Vhosts};
use crate::upstream::cluster::ClusterState;

/// Why a part was rejected; the type is NACKed with the message.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{config_type}: {message}")]
pub struct ConfigError {
    pub config_type: ConfigType,
    pub message: String,
}

pub(crate) fn err(config_type: ConfigType, message: String) -> ConfigError {
    ConfigError { config_type, message }
}

/// What the outbound side knows of an endpoint's proxy.
#[derive(Debug, Clone)]
pub struct Peer {
    /// The SPIFFE ID it must present.
    pub identity: Arc<str>,
    pub mtls: bool,
    /// The SNI to send (a DestinationRule's ISTIO_MUTUAL `sni`); None: none, as between
    /// sidecars. An address reached by several clusters keeps one (the last).
    pub sni: Option<Arc<str>>,
}

/// Where an inbound port's app listens: an address, or a unix socket's path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppAddr {
    Tcp(SocketAddr),
    Unix(Arc<str>),
}

impl AppAddr {
    /// The address as the upstream pools take it (`unix:///path` for a socket).
    pub fn pool_address(&self) -> String {
        match self {
            AppAddr::Tcp(a) => a.to_string(),
            AppAddr::Unix(p) => format!("unix://{p}"),
        }
    }
}

/// Everything the request path reads, immutable.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// Endpoint address -> identity and mTLS choice.
    peers: HashMap<SocketAddr, Peer>,
    /// Workload port -> PeerAuthentication mode, whether it is raw TCP, and where its app is
    /// when a Sidecar says (`defaultEndpoint`).
    inbound: HashMap<u16, (PeerMode, bool, Option<AppAddr>)>,
    /// (host, port) -> TCP service.
    tcp: HashMap<(String, u16), Arc<CompiledTcp>>,
    /// Gateway TCP servers by port.
    gw_tcp: HashMap<u16, Arc<CompiledTcp>>,
    /// Gateway servers that take TLS, by port.
    gw_tls: HashMap<u16, Arc<Vec<crate::tls_config::GatewayServer>>>,
    /// Gateway HTTP servers: host -> [(port, vhost)], `*` for any host.
    gw_hosts: HashMap<String, Vec<(u16, usize)>>,
    pub authz: crate::policy::authz::Authz,
    pub jwt: crate::policy::jwt::JwtAuth,
    pub rate_limit: Option<RateLimiter>,
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

    /// The addresses whose mesh identity `next` changes (or drops): connections pooled to
    /// them were checked against the old identity and must not be reused.
    pub fn identities_changed(&self, next: &Snapshot) -> Vec<String> {
        self.peers
            .iter()
            .filter(|(addr, p)| next.peers.get(addr).is_none_or(|n| n.identity != p.identity))
            .map(|(addr, _)| addr.to_string())
            .collect()
    }

    /// The mTLS mode of a workload port (PERMISSIVE until meshd says otherwise).
    pub fn peer_mode(&self, port: u16) -> PeerMode {
        self.inbound.get(&port).map(|(m, _, _)| *m).unwrap_or_default()
    }

    /// Whether a workload port carries raw TCP.
    pub fn inbound_is_tcp(&self, port: u16) -> bool {
        self.inbound.get(&port).is_some_and(|(_, tcp, _)| *tcp)
    }

    /// Where a workload port's app is, when config says (a Sidecar's `defaultEndpoint`); an
    /// unspecified IP (`0.0.0.0:8080`) is `own_ip`, the address the connection came to.
    pub fn inbound_app(&self, port: u16, own_ip: std::net::IpAddr) -> Option<AppAddr> {
        match self.inbound.get(&port)?.2.as_ref()? {
            AppAddr::Tcp(a) if a.ip().is_unspecified() => Some(AppAddr::Tcp(SocketAddr::new(own_ip, a.port()))),
            other => Some(other.clone()),
        }
    }

    /// The `destination_service` of a request to workload `port` with Host `host`: one of the
    /// Services that send traffic to that port (the one the Host names, or the only one), else
    /// `unknown`. Never a value taken from the request, so the label set stays bounded.
    pub fn inbound_service(&self, port: u16, host: &str) -> &str {
        let Some(l) = self.raw.listeners.inbound.iter().find(|l| l.port == port) else { return "unknown" };
        let host = mesh_api::host::split_host_port(host).0;
        let named = l.services.iter().find(|fqdn| {
            // `reviews`, `reviews.default`, `reviews.default.svc`, or the FQDN.
            fqdn.len() >= host.len()
                && fqdn.as_bytes()[..host.len()].eq_ignore_ascii_case(host.as_bytes())
                && (fqdn.len() == host.len() || fqdn.as_bytes()[host.len()] == b'.')
                && !host.is_empty()
        });
        match (named, l.services.as_slice()) {
            (Some(s), _) => s,
            (None, [only]) => only,
            _ => "unknown",
        }
    }

    /// outboundTrafficPolicy ALLOW_ANY: unknown hosts go where they were addressed.
    pub fn passthrough(&self) -> bool {
        self.raw.routes.passthrough
    }

    /// The TCP service a host and port name.
    pub fn tcp_service(&self, host: &str, port: u16) -> Option<&Arc<CompiledTcp>> {
        self.tcp.get(&(host.to_ascii_lowercase(), port))
    }

    /// Find the virtual host for a request authority's host and port.
    /// The gateway virtual host for a Host and server port: exact, then `*.suffix`, then `*`.
    pub fn gateway_vhost(&self, host: &str, port: u16) -> Option<&CompiledVhost> {
        let host = host.to_ascii_lowercase();
        let find = |h: &str| {
            self.gw_hosts.get(h).and_then(|e| e.iter().find(|(p, _)| *p == port)).map(|(_, i)| &self.vhosts[*i])
        };
        if let Some(v) = find(&host) {
            return Some(v);
        }
        let mut rest = host.as_str();
        while let Some((_, tail)) = rest.split_once('.') {
            if let Some(v) = find(&format!("*.{tail}")) {
                return Some(v);
            }
            rest = tail;
        }
        find("*")
    }

    /// The gateway TCP server on a port.
    pub fn gateway_tcp(&self, port: u16) -> Option<&Arc<CompiledTcp>> {
        self.gw_tcp.get(&port)
    }

    /// The gateway servers that take TLS on a port.
    pub fn gateway_tls(&self, port: u16) -> Option<&Arc<Vec<crate::tls_config::GatewayServer>>> {
        self.gw_tls.get(&port)
    }

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
                .map(|eps| eps.iter().map(|e| (e.address, e.hostname.as_deref().map(Arc::from))).collect::<Vec<_>>())
                .unwrap_or_default();
            if let Some((bad, _)) = endpoints.iter().find(|(a, _)| a.port() == 0) {
                return Err(err(ConfigType::Endpoints, format!("cluster {}: endpoint {bad} has port 0", c.name)));
            }
            let mut state = ClusterState::new(
                c.name.clone(),
                c.lb_policy,
                endpoints,
                c.hash.clone(),
                c.limits.as_ref(),
                c.outlier.clone(),
            );
            state.passthrough = c.passthrough;
            state.h2_upgrade = c.h2_upgrade;
            state.app_http = c.app_http;
            state.service = c.service.clone();
            state.origin = c.tls.as_ref().map(|o| crate::tls_config::Origin::compile(o).map(Arc::new));
            let state = Arc::new(state);
            if clusters.insert(c.name.as_str(), state).is_some() {
                return Err(err(ConfigType::Clusters, format!("duplicate cluster {}", c.name)));
            }
        }
        let Vhosts { vhosts, hosts, gateway_hosts: gw_hosts } =
            Vhosts::compile(&raw.routes, &clusters).map_err(|m| err(ConfigType::Routes, m))?;
        let mut peers = HashMap::new();
        let mesh_sni: HashMap<&str, Arc<str>> = raw
            .clusters
            .clusters
            .iter()
            .filter_map(|c| Some((c.name.as_str(), Arc::from(c.mesh_sni.as_deref()?))))
            .collect();
        let endpoints = raw.endpoints.clusters.iter().flat_map(|(name, eps)| eps.iter().map(move |e| (name, e)));
        for (cluster, e) in endpoints.filter(|(_, e)| e.hostname.is_none()) {
            if e.mtls && e.identity.is_empty() {
                return Err(err(
                    ConfigType::Endpoints,
                    format!("endpoint {} uses mTLS but has no identity", e.address),
                ));
            }
            let sni = mesh_sni.get(cluster.as_str()).cloned();
            peers.insert(e.address, Peer { identity: Arc::from(e.identity.as_str()), mtls: e.mtls, sni });
        }
        let mut inbound = HashMap::new();
        for l in &raw.listeners.inbound {
            let app = match l.endpoint.as_deref() {
                None => None,
                Some(ep) => Some(match mesh_api::networking::sidecar_endpoint(ep) {
                    Some(mesh_api::networking::SidecarEndpoint::Ip(a)) => AppAddr::Tcp(a),
                    Some(mesh_api::networking::SidecarEndpoint::Unix(p)) => AppAddr::Unix(Arc::from(p.as_str())),
                    None => {
                        return Err(err(
                            ConfigType::Listeners,
                            format!("inbound port {}: endpoint {ep:?} is not IP:PORT or unix:///path", l.port),
                        ));
                    }
                }),
            };
            inbound.insert(l.port, (l.mtls, l.tcp, app));
        }
        let mut tcp = HashMap::new();
        for t in &raw.routes.tcp {
            let compiled = Arc::new(CompiledTcp::compile(t, &clusters).map_err(|m| err(ConfigType::Routes, m))?);
            for d in &t.domains {
                tcp.insert((d.to_ascii_lowercase(), t.port), compiled.clone());
            }
        }
        let authz =
            crate::policy::authz::Authz::compile(&raw.listeners.policies).map_err(|m| err(ConfigType::Listeners, m))?;
        let jwt =
            crate::policy::jwt::JwtAuth::compile(&raw.listeners.jwt).map_err(|m| err(ConfigType::Listeners, m))?;
        let rate_limit = raw.listeners.rate_limit.as_ref().map(RateLimiter::new);
        let gw_tcp = raw
            .routes
            .gateway_tcp
            .iter()
            .map(|t| {
                Ok((t.port, Arc::new(CompiledTcp::compile(t, &clusters).map_err(|m| err(ConfigType::Routes, m))?)))
            })
            .collect::<Result<HashMap<_, _>, ConfigError>>()?;
        let mut gw_tls: HashMap<u16, Vec<crate::tls_config::GatewayServer>> = HashMap::new();
        for g in &raw.listeners.gateway_tls {
            let server = crate::tls_config::GatewayServer::compile(g, !gw_tcp.contains_key(&g.port));
            if let Err(why) = &server.config
                && g.mode.terminates()
                && g.mode != GatewayTlsMode::IstioMutual
            {
                tracing::warn!(server = %g.name, error = %why, "gateway TLS server cannot serve; its handshakes will fail");
            }
            gw_tls.entry(g.port).or_default().push(server);
        }
        let gw_tls = gw_tls.into_iter().map(|(p, v)| (p, Arc::new(v))).collect();
        Ok(Snapshot {
            peers,
            inbound,
            tcp,
            gw_tcp,
            gw_tls,
            authz,
            jwt,
            rate_limit,
            hosts,
            gw_hosts,
            vhosts,
            raw,
            versions,
        })
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
    use crate::routing::matches::RequestView;
    use http::HeaderName;

    fn snapshot(routes: Vec<Route>, clusters: &[&str]) -> Snapshot {
        let raw = ProxyConfig {
            routes: Routes {
                tcp: Vec::new(),
                passthrough: false,
                gateway_http: Vec::new(),
                gateway_tcp: Vec::new(),
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
                        hash: None,
                        limits: None,
                        outlier: None,
                        passthrough: false,
                        h2_upgrade: false,
                        app_http: None,
                        mesh_sni: None,
                        tls: None,
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
                                hostname: None,
                            },
                            Endpoint {
                                address: ([127, 0, 0, 2], port).into(),
                                workload: "b".into(),
                                identity: String::new(),
                                mtls: false,
                                hostname: None,
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
            clusters: clusters
                .iter()
                .map(|(c, w)| WeightedCluster {
                    cluster: c.to_string(),
                    weight: *w,
                    request_headers: HeaderOps::default(),
                    response_headers: HeaderOps::default(),
                })
                .collect(),
            ..Default::default()
        }
    }

    fn first_match<'a>(s: &'a Snapshot, method: &str, path: &str, headers: &[(&str, &str)]) -> Option<&'a str> {
        let mut h = http::HeaderMap::new();
        for (k, v) in headers {
            h.insert(HeaderName::from_bytes(k.as_bytes()).expect("name"), v.parse().expect("value"));
        }
        let method = http::Method::from_bytes(method.as_bytes()).expect("method");
        let (path, query) = path.split_once('?').map_or((path, None), |(p, q)| (p, Some(q)));
        let view = RequestView { method: &method, path, query, authority: "reviews:9080", scheme: "http", headers: &h };
        let vh = s.vhost("reviews", 9080)?;
        vh.routes
            .iter()
            .find(|r| r.matches.is_empty() || r.matches.iter().any(|m| m.matches(&view)))
            .map(|r| r.clusters[0].cluster.name.as_str())
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
    fn query_params_without_headers_and_ignore_case() {
        let q = RouteMatch {
            query_params: vec![HeaderMatcher { name: "debug".into(), value: Some(StringMatcher::Exact("1".into())) }],
            ..Default::default()
        };
        let not_bot = RouteMatch {
            uri: Some(StringMatcher::Prefix("/Books".into())),
            ignore_uri_case: true,
            without_headers: vec![HeaderMatcher { name: "x-bot".into(), value: None }],
            ..Default::default()
        };
        let s = snapshot(
            vec![route(vec![q], &[("v2", 100)]), route(vec![not_bot], &[("v3", 100)]), route(vec![], &[("v1", 100)])],
            &["v1", "v2", "v3"],
        );
        assert_eq!(first_match(&s, "GET", "/x?a=b&debug=1", &[]), Some("v2"));
        assert_eq!(first_match(&s, "GET", "/x?debug=2", &[]), Some("v1"));
        assert_eq!(first_match(&s, "GET", "/books/1", &[]), Some("v3"), "case-insensitive prefix");
        assert_eq!(first_match(&s, "GET", "/BOOKS", &[("x-bot", "yes")]), Some("v1"), "withoutHeaders excludes");
    }

    #[test]
    fn the_inbound_service_label_comes_from_config() {
        let mut s = Snapshot::default();
        let listener = |services: &[&str]| mesh_api::proxy_config::InboundListener {
            port: 9080,
            mtls: Default::default(),
            tcp: false,
            services: services.iter().map(|s| s.to_string()).collect(),
            app_http: None,
            endpoint: None,
        };
        s.raw.listeners.inbound = vec![listener(&["reviews.default.svc.cluster.local"])];
        for host in ["reviews", "Reviews.default:9080", "evil.example", "", "x".repeat(10_000).as_str()] {
            assert_eq!(s.inbound_service(9080, host), "reviews.default.svc.cluster.local", "{host}");
        }
        assert_eq!(s.inbound_service(1234, "reviews"), "unknown", "a port no Service sends to");
        let both = ["canary.default.svc.cluster.local", "reviews.default.svc.cluster.local"];
        s.raw.listeners.inbound = vec![listener(&both)];
        assert_eq!(s.inbound_service(9080, "canary.default.svc"), both[0]);
        assert_eq!(s.inbound_service(9080, "reviews:9080"), both[1]);
        assert_eq!(s.inbound_service(9080, "rev"), "unknown", "a prefix of a name is not the name");
        assert_eq!(s.inbound_service(9080, "10.0.0.1:9080"), "unknown");
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
            *counts.entry(r.pick_cluster().expect("cluster").cluster.name.clone()).or_insert(0) += 1;
        }
        let v2 = counts.get("v2").copied().unwrap_or(0);
        assert!((800..=1200).contains(&v2), "{counts:?}");
        assert_eq!(counts.get("v3"), None, "weight 0 is never picked");
        let c = &r.clusters[0].cluster;
        let picks: Vec<_> = (0..4).map(|_| c.pick().expect("endpoint")).collect();
        assert_eq!(picks[0], picks[2]);
        assert_ne!(picks[0], picks[1]);
    }

    #[test]
    fn bad_parts_are_attributed_to_their_type() {
        let raw = ProxyConfig {
            routes: Routes {
                tcp: Vec::new(),
                passthrough: false,
                gateway_http: Vec::new(),
                gateway_tcp: Vec::new(),
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
