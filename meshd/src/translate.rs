//! The translator: a pure function from (config, registry, proxy) to that proxy's config.
//! No IO, no clocks: table-tested in `translate/tests.rs`.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use mesh_api::core::{PortProtocol, ServiceSpec};
use mesh_api::credential::Credentials;
use mesh_api::host;
use mesh_api::identity::{DEFAULT_TRUST_DOMAIN, SpiffeId};
use mesh_api::networking::{DestinationRuleSpec, GatewaySpec, ServiceEntrySpec, StringMatch, VirtualServiceSpec};
use mesh_api::protocol::Workload;
use mesh_api::proxy_config::*;
use mesh_api::security::{
    AuthorizationPolicySpec, LocalRateLimitSpec, PeerAuthenticationSpec, RequestAuthenticationSpec,
};
use mesh_api::{Key, Object, Resource};

use crate::store::Resources;

/// Whether a Service port forwards to this workload port: by number, or by the container
/// port's name when `targetPort` is a name.
fn targets(sp: &mesh_api::core::ServicePort, ip: &mesh_api::protocol::InboundPort) -> bool {
    match sp.target_name() {
        Some(name) => ip.name.as_deref() == Some(name),
        None => sp.target_number() == Some(ip.port),
    }
}

/// Istio's root namespace: a DestinationRule there applies mesh-wide.
pub const ROOT_NAMESPACE: &str = "istio-system";

struct Svc<'a> {
    name: &'a str,
    namespace: &'a str,
    fqdn: String,
    /// A Service's spec, or one made from a ServiceEntry's ports (names carry the protocol).
    spec: std::borrow::Cow<'a, ServiceSpec>,
    /// Set for a ServiceEntry host: its endpoints and resolution.
    entry: Option<&'a ServiceEntrySpec>,
}

impl Svc<'_> {
    /// The host names a request may use for this service, as seen from `client_ns`.
    /// A Service is also named by its cluster IPs: a captured connection to one (the app
    /// resolved the name through cluster DNS) routes like the name.
    fn domains(&self, client_ns: &str) -> Vec<String> {
        if self.entry.is_some() {
            return vec![self.fqdn.clone()];
        }
        let mut out = host::service_aliases(self.name, self.namespace, client_ns);
        let ips = self.spec.cluster_ip.iter().chain(self.spec.cluster_ips.iter().flatten());
        for ip in ips.filter(|ip| ip.parse::<std::net::IpAddr>().is_ok()) {
            if !out.contains(ip) {
                out.push(ip.clone());
            }
        }
        out
    }
}

/// Which kind of VirtualService rules a lookup is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RuleKind {
    Http,
    Tcp,
    Tls,
}

/// Everything the translator reads of the config, indexed once per config change and shared by
/// every proxy's translation: services by FQDN and by namespace, VirtualServices by host,
/// DestinationRules by namespace and host.
pub struct Index<'a> {
    services: BTreeMap<String, Svc<'a>>,
    /// Service FQDNs per namespace.
    services_by_ns: HashMap<&'a str, Vec<String>>,
    virtual_services: Vec<(&'a Key, &'a Object<VirtualServiceSpec>)>,
    /// Per VirtualService (same order): its hosts resolved, and which rule kinds it has.
    vs_facts: Vec<VsFacts>,
    /// VirtualServices by exact resolved host, and those with a wildcard host (in order).
    vs_by_host: HashMap<String, Vec<usize>>,
    vs_wildcard: Vec<usize>,
    destination_rules: Vec<(&'a Key, &'a Object<DestinationRuleSpec>)>,
    /// Per namespace: the first DestinationRule for each exact resolved host, and the
    /// wildcard-host ones in order.
    dr_exact: HashMap<&'a str, HashMap<String, usize>>,
    dr_wildcard: HashMap<&'a str, Vec<(usize, String)>>,
    /// The label keys any `sourceLabels` match or Gateway selector reads: a proxy's routes,
    /// clusters and endpoints depend on its namespace and these labels only.
    route_label_keys: BTreeSet<&'a str>,
    peer_authentications: security::Policies<'a, PeerAuthenticationSpec>,
    authorization_policies: security::Policies<'a, AuthorizationPolicySpec>,
    request_authentications: security::Policies<'a, RequestAuthenticationSpec>,
    rate_limits: security::Policies<'a, LocalRateLimitSpec>,
    telemetries: security::Policies<'a, mesh_api::telemetry::TelemetrySpec>,
    gateways: Vec<(&'a Key, &'a Object<GatewaySpec>)>,
    sidecars: Vec<(&'a Key, &'a Object<mesh_api::networking::SidecarSpec>)>,
    /// Workloads outside the platform (VMs, plain processes), selected by Services and
    /// ServiceEntries like pods.
    workload_entries: Vec<(&'a Key, &'a Object<mesh_api::networking::WorkloadEntrySpec>)>,
    /// TLS credentials by (namespace, name): gateway certificates and TLS origination.
    credentials: &'a Credentials,
}

/// No credentials (translations that are given none).
static NO_CREDENTIALS: Credentials = Credentials::new();

struct VsFacts {
    hosts: Vec<String>,
    /// Some match reads the client (`sourceLabels`, `sourceNamespace`), or a rule delegates
    /// (and the delegate's matches may): routes from it depend on more than the client's
    /// namespace.
    reads_source: bool,
    mesh: bool,
    http: bool,
    tcp: bool,
    tls: bool,
}

impl<'a> Index<'a> {
    pub fn new(resources: &'a Resources) -> Self {
        let mut services = BTreeMap::new();
        let mut virtual_services = Vec::new();
        let mut destination_rules = Vec::new();
        let mut peer_authentications = Vec::new();
        let mut authorization_policies = Vec::new();
        let mut request_authentications = Vec::new();
        let mut rate_limits = Vec::new();
        let mut telemetries = Vec::new();
        let mut gateways = Vec::new();
        let mut sidecars = Vec::new();
        let mut workload_entries = Vec::new();
        for (key, r) in resources {
            match r {
                Resource::Service(o) => {
                    let fqdn = host::service_fqdn(&key.name, &key.namespace);
                    services.insert(
                        fqdn.clone(),
                        Svc {
                            name: &key.name,
                            namespace: &key.namespace,
                            fqdn,
                            spec: std::borrow::Cow::Borrowed(&o.spec),
                            entry: None,
                        },
                    );
                }
                Resource::ServiceEntry(o) => {
                    for h in o.spec.hosts.iter().filter(|h| !h.starts_with('*')) {
                        let fqdn = h.to_ascii_lowercase();
                        // A Kubernetes Service of the same name wins, as in Istio's registry merge.
                        services.entry(fqdn.clone()).or_insert(Svc {
                            name: &key.name,
                            namespace: &key.namespace,
                            fqdn,
                            spec: std::borrow::Cow::Owned(entry::as_service(&o.spec)),
                            entry: Some(&o.spec),
                        });
                    }
                }
                Resource::VirtualService(o) => virtual_services.push((key, o)),
                Resource::DestinationRule(o) => destination_rules.push((key, o)),
                Resource::PeerAuthentication(o) => peer_authentications.push((key, o)),
                Resource::AuthorizationPolicy(o) => authorization_policies.push((key, o)),
                Resource::RequestAuthentication(o) => request_authentications.push((key, o)),
                Resource::LocalRateLimit(o) => rate_limits.push((key, o)),
                Resource::Telemetry(o) => telemetries.push((key, o)),
                Resource::Gateway(o) => gateways.push((key, o)),
                Resource::Sidecar(o) => sidecars.push((key, o)),
                Resource::WorkloadEntry(o) => workload_entries.push((key, o)),
                // A template the CLI applies when a proxy joins; read when a proxy starts.
                Resource::WorkloadGroup(_) | Resource::ProxyConfig(_) => {}
                // Served through the VirtualService `rollout::virtual_service` makes of it.
                Resource::Rollout(_) => {}
                // Served through the Istio objects `gateway_api::expand` makes of them.
                Resource::GatewayClass(_)
                | Resource::KubeGateway(_)
                | Resource::HttpRoute(_)
                | Resource::GrpcRoute(_)
                | Resource::TcpRoute(_)
                | Resource::TlsRoute(_)
                | Resource::ReferenceGrant(_) => {}
            }
        }
        let mut services_by_ns: HashMap<&str, Vec<String>> = HashMap::new();
        for s in services.values() {
            services_by_ns.entry(s.namespace).or_default().push(s.fqdn.clone());
        }
        let mut route_label_keys = BTreeSet::new();
        let mut vs_by_host: HashMap<String, Vec<usize>> = HashMap::new();
        let mut vs_wildcard = Vec::new();
        let mut vs_facts = Vec::with_capacity(virtual_services.len());
        for (i, (k, vs)) in virtual_services.iter().enumerate() {
            let spec: &VirtualServiceSpec = &vs.spec;
            let hosts: Vec<String> = spec.hosts.iter().map(|h| host::resolve(h, &k.namespace)).collect();
            if hosts.iter().any(|h| h.starts_with('*')) {
                vs_wildcard.push(i);
            }
            let mut exact: Vec<&String> = hosts.iter().filter(|h| !h.starts_with('*')).collect();
            exact.sort();
            exact.dedup();
            for h in exact {
                vs_by_host.entry(h.clone()).or_default().push(i);
            }
            let mut reads_source = false;
            for r in &spec.http {
                reads_source |= r.delegate.is_some();
                for m in &r.matches {
                    route_label_keys.extend(m.source_labels.keys().map(String::as_str));
                    reads_source |= !m.source_labels.is_empty() || m.source_namespace.is_some();
                }
            }
            let l4 = spec.tcp.iter().flat_map(|r| &r.matches).map(|m| (&m.source_labels, &m.source_namespace));
            let tls = spec.tls.iter().flat_map(|r| &r.matches).map(|m| (&m.source_labels, &m.source_namespace));
            for (labels, namespace) in l4.chain(tls) {
                route_label_keys.extend(labels.keys().map(String::as_str));
                reads_source |= !labels.is_empty() || namespace.is_some();
            }
            vs_facts.push(VsFacts {
                hosts,
                reads_source,
                mesh: spec.gateways.is_empty() || spec.gateways.iter().any(|g| g == "mesh"),
                http: spec.http.iter().any(|r| {
                    !r.route.is_empty() || r.redirect.is_some() || r.direct_response.is_some() || r.delegate.is_some()
                }),
                tcp: spec.tcp.iter().any(|r| !r.route.is_empty()),
                tls: spec.tls.iter().any(|r| !r.route.is_empty()),
            });
        }
        for (_, gw) in &gateways {
            let gw: &Object<GatewaySpec> = gw;
            route_label_keys.extend(gw.spec.selector.keys().map(String::as_str));
        }
        // A Sidecar's selector decides which proxies it scopes: their routes differ.
        for (_, sc) in &sidecars {
            let sc: &Object<mesh_api::networking::SidecarSpec> = sc;
            route_label_keys.extend(sc.spec.workload_selector.iter().flat_map(|w| w.labels.keys()).map(String::as_str));
        }
        let mut dr_exact: HashMap<&str, HashMap<String, usize>> = HashMap::new();
        let mut dr_wildcard: HashMap<&str, Vec<(usize, String)>> = HashMap::new();
        for (i, (k, dr)) in destination_rules.iter().enumerate() {
            let h = host::resolve(&dr.spec.host, &k.namespace);
            if h.starts_with('*') {
                dr_wildcard.entry(k.namespace.as_str()).or_default().push((i, h));
            } else {
                dr_exact.entry(k.namespace.as_str()).or_default().entry(h).or_insert(i);
            }
        }
        Index {
            services,
            services_by_ns,
            virtual_services,
            vs_facts,
            vs_by_host,
            vs_wildcard,
            destination_rules,
            dr_exact,
            dr_wildcard,
            route_label_keys,
            peer_authentications,
            authorization_policies,
            request_authentications,
            rate_limits,
            telemetries,
            gateways,
            sidecars,
            workload_entries,
            credentials: &NO_CREDENTIALS,
        }
    }

    /// The Sidecar that applies to `proxy`, as Istio picks it: one in its namespace selecting
    /// it, else its namespace's without a selector, else the root namespace's without one
    /// (the oldest first, by name where equal).
    pub fn sidecar_for(&self, proxy: &Workload) -> Option<(&'a Key, &'a mesh_api::networking::SidecarSpec)> {
        let in_ns = |ns: &str, selected: bool| {
            self.sidecars
                .iter()
                .filter(move |(k, sc)| {
                    k.namespace == ns
                        && match &sc.spec.workload_selector {
                            Some(sel) if selected => !sel.labels.is_empty() && labels_match(&sel.labels, &proxy.labels),
                            Some(sel) => sel.labels.is_empty(),
                            None => !selected,
                        }
                })
                .map(|(k, sc)| (*k, &sc.spec))
                .next()
        };
        in_ns(&proxy.namespace, true)
            .or_else(|| in_ns(&proxy.namespace, false))
            .or_else(|| in_ns(ROOT_NAMESPACE, false))
    }

    /// The ports of service `svc` that a proxy's Sidecar (`sidecar_for`, looked up once per
    /// proxy) hides from it: those outside its egress hosts for the port (no Sidecar: none).
    fn sidecar_hides(sidecar: Option<(&Key, &mesh_api::networking::SidecarSpec)>, svc: &Svc<'_>) -> Hidden {
        let Some((k, sc)) = sidecar else { return Hidden::None };
        let ports: Vec<u16> = service_ports(&svc.spec).filter_map(|p| u16::try_from(p.port).ok()).collect();
        let hidden: Vec<u16> =
            ports.iter().copied().filter(|p| !sc.admits(&k.namespace, svc.namespace, &svc.fqdn, *p)).collect();
        match hidden.len() {
            0 => Hidden::None,
            n if n == ports.len() => Hidden::All,
            _ => Hidden::Ports(hidden),
        }
    }

    /// The endpoints of the WorkloadEntries in `namespace` that `selector` (and the subset)
    /// selects, for a port named `port_name` (the entry's port of that name, else `target`).
    /// An entry labelled `security.istio.io/tlsMode: istio` runs a mesh proxy: mTLS to it, as
    /// to a pod's sidecar; any other is reached in plain text, unless a DestinationRule says.
    #[allow(clippy::too_many_arguments)]
    fn entry_endpoints(
        &self,
        namespace: &str,
        selector: &BTreeMap<String, String>,
        subset: Option<&mesh_api::networking::Subset>,
        port_name: &str,
        target: u16,
        port: u16,
        dr: Option<&Object<DestinationRuleSpec>>,
    ) -> Vec<Endpoint> {
        let mut out = Vec::new();
        for (k, we) in &self.workload_entries {
            let labels = &we.spec.labels;
            if k.namespace != namespace
                || selector.is_empty()
                || !labels_match(selector, labels)
                || subset.is_some_and(|sd| !labels_match(&sd.labels, labels))
            {
                continue;
            }
            let Some(ip) = we.spec.address.as_deref().and_then(|a| a.parse::<std::net::IpAddr>().ok()) else {
                continue;
            };
            let p = we.spec.ports.get(port_name).and_then(|p| u16::try_from(*p).ok()).unwrap_or(target);
            let sa = we.spec.service_account.as_deref().unwrap_or("default");
            let server = if labels.get(mesh_api::networking::TLS_MODE_LABEL).is_some_and(|m| m == "istio") {
                let mut w = Workload::named(&k.namespace, &k.name, sa);
                w.labels = labels.clone();
                security::peer_mode(&self.peer_authentications, &w, p)
            } else {
                mesh_api::proxy_config::PeerMode::Disable
            };
            out.push(Endpoint {
                address: std::net::SocketAddr::new(ip, p),
                workload: format!("{}/{}", k.namespace, k.name),
                identity: SpiffeId::new(DEFAULT_TRUST_DOMAIN, &k.namespace, sa).to_string(),
                mtls: security::endpoint_mtls(dr, subset, port, server),
                hostname: None,
            });
        }
        out
    }

    /// Whether `proxy` may send to hosts the mesh does not know: its Sidecar's
    /// `outboundTrafficPolicy`, else the mesh's.
    pub fn allow_any(&self, proxy: &Workload, mesh: &MeshConfig) -> bool {
        match self.sidecar_for(proxy).and_then(|(_, sc)| sc.outbound_traffic_policy.as_ref()?.mode.as_deref()) {
            Some(mode) => mode == "ALLOW_ANY",
            None => mesh.outbound_allow_any,
        }
    }

    /// The same index, resolving `credentialName`s in `credentials`.
    pub fn with_credentials(mut self, credentials: &'a Credentials) -> Self {
        self.credentials = credentials;
        self
    }

    /// The DestinationRule for a service as seen from `client_ns`: the client's namespace
    /// first, then the service's, then the root namespace (Istio's lookup order).
    fn destination_rule(&self, svc: &Svc<'_>, client_ns: &str) -> Option<&'a Object<DestinationRuleSpec>> {
        self.destination_rule_at(svc, client_ns).map(|i| self.destination_rules[i].1)
    }

    /// [`Index::destination_rule`], by its position in this index.
    fn destination_rule_at(&self, svc: &Svc<'_>, client_ns: &str) -> Option<usize> {
        for ns in [client_ns, svc.namespace, ROOT_NAMESPACE] {
            // The first in order that matches: the exact host's first rule or an earlier
            // wildcard one.
            let exact = self.dr_exact.get(ns).and_then(|m| m.get(&svc.fqdn)).copied();
            let wildcard = self
                .dr_wildcard
                .get(ns)
                .and_then(|v| {
                    v.iter()
                        .take_while(|(i, _)| exact.is_none_or(|e| *i < e))
                        .find(|(_, h)| host::matches(h, &svc.fqdn))
                })
                .map(|(i, _)| *i);
            if let Some(i) = wildcard.or(exact) {
                return Some(i);
            }
        }
        None
    }

    /// The VirtualService for a service: exact host before wildcard, the client's namespace
    /// first, then the service's, then any other (ordered by namespace/name).
    fn virtual_service(
        &self,
        svc: &Svc<'_>,
        client_ns: &str,
        kind: RuleKind,
    ) -> Option<(&'a Key, &'a Object<VirtualServiceSpec>)> {
        self.virtual_service_at(svc, client_ns, kind).map(|i| self.virtual_services[i])
    }

    /// [`Index::virtual_service`], by its position in this index.
    fn virtual_service_at(&self, svc: &Svc<'_>, client_ns: &str, kind: RuleKind) -> Option<usize> {
        let host_rank = |i: usize| {
            self.vs_facts[i]
                .hosts
                .iter()
                .filter_map(|h| {
                    if *h == svc.fqdn {
                        Some(0)
                    } else if h.starts_with('*') && host::matches(h, &svc.fqdn) {
                        Some(1)
                    } else {
                        None
                    }
                })
                .min()
        };
        let ns_rank = |k: &Key| {
            if k.namespace == client_ns {
                0
            } else if k.namespace == svc.namespace {
                1
            } else {
                2
            }
        };
        // Only the VirtualServices naming this host or a wildcard can apply; visited in
        // their original order so ties resolve as a scan of all of them would.
        // Both lists are in ascending order: merge them without duplicates (and without
        // allocating: this runs for every service and client namespace).
        let exact = self.vs_by_host.get(&svc.fqdn).map(Vec::as_slice).unwrap_or_default();
        let (mut a, mut b) = (exact.iter().copied().peekable(), self.vs_wildcard.iter().copied().peekable());
        let candidates = std::iter::from_fn(move || match (a.peek().copied(), b.peek().copied()) {
            (Some(x), Some(y)) if x == y => {
                b.next();
                a.next()
            }
            (Some(x), Some(y)) if y < x => b.next(),
            (Some(_), _) => a.next(),
            (None, _) => b.next(),
        });
        candidates
            .filter(|&i| {
                let f = &self.vs_facts[i];
                f.mesh
                    && match kind {
                        RuleKind::Tcp => f.tcp,
                        RuleKind::Tls => f.tls,
                        RuleKind::Http => f.http,
                    }
            })
            .filter_map(|i| host_rank(i).map(|h| ((h, ns_rank(self.virtual_services[i].0)), i)))
            .min_by_key(|(rank, _)| *rank)
            .map(|(_, found)| found)
    }
}

impl Index<'_> {
    /// The services of one namespace.
    fn services_in(&self, ns: &str) -> impl Iterator<Item = &Svc<'_>> {
        self.services_by_ns.get(ns).into_iter().flatten().filter_map(|f| self.services.get(f))
    }

    /// The part of a proxy's identity its routes, clusters and endpoints depend on: its
    /// namespace and the labels that some `sourceLabels` or Gateway selector reads.
    pub fn outbound_key(&self, w: &Workload) -> OutboundKey {
        let labels = w
            .labels
            .iter()
            .filter(|(k, _)| self.route_label_keys.contains(k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()));
        OutboundKey { namespace: w.namespace.clone(), labels: labels.collect() }
    }

    /// The Services (FQDNs) that forward to workload port `port` of `w`.
    fn inbound_services(&self, w: &Workload, port: u16) -> Vec<String> {
        let mut out: Vec<String> = self
            .services_in(&w.namespace)
            .filter(|s| {
                !s.spec.selector.is_empty()
                    && labels_match(&s.spec.selector, &w.labels)
                    && service_ports(&s.spec).any(|p| {
                        p.target_number() == Some(port) || w.ports.iter().any(|ip| ip.port == port && targets(p, ip))
                    })
            })
            .map(|s| s.fqdn.clone())
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// The HTTP version to the app on a workload port, from the first Service port (by
    /// FQDN) that forwards to it and names one.
    fn app_http(&self, w: &Workload, port: u16) -> Option<mesh_api::core::AppHttp> {
        let mut found: Vec<(&str, mesh_api::core::AppHttp)> = self
            .services_in(&w.namespace)
            .filter(|s| !s.spec.selector.is_empty() && labels_match(&s.spec.selector, &w.labels))
            .flat_map(|s| {
                service_ports(&s.spec)
                    .filter(|p| {
                        p.target_number() == Some(port) || w.ports.iter().any(|ip| ip.port == port && targets(p, ip))
                    })
                    .filter_map(|p| p.app_http())
                    .map(move |h| (s.fqdn.as_str(), h))
            })
            .collect();
        found.sort_by(|a, b| a.0.cmp(b.0));
        found.first().map(|(_, h)| *h)
    }

    /// Whether a workload port is raw TCP: a Service that selects the workload forwards a
    /// TCP-protocol port to it.
    fn is_tcp_port(&self, w: &Workload, port: u16) -> bool {
        self.services_in(&w.namespace).any(|s| {
            !s.spec.selector.is_empty()
                && labels_match(&s.spec.selector, &w.labels)
                && service_ports(&s.spec).any(|p| {
                    p.mesh_protocol() == PortProtocol::Tcp
                        && (p.target_number() == Some(port)
                            || w.ports.iter().any(|ip| ip.port == port && targets(p, ip)))
                })
        })
    }

    /// The cluster name of a route destination, recorded in `wanted` so it gets built.
    fn wanted_cluster(
        &self,
        d: &mesh_api::networking::Destination,
        vs_ns: &str,
        port: u16,
        wanted: &mut BTreeSet<(String, u16, Option<String>)>,
    ) -> String {
        let (fqdn, dport) = self.destination(d, vs_ns, port);
        let name = cluster_name(&fqdn, dport, d.subset.as_deref());
        wanted.insert((fqdn, dport, d.subset.clone()));
        name
    }

    /// The weighted clusters of a `tcp` or `tls` rule's destinations (no header changes).
    fn l4_clusters(
        &self,
        route: &[mesh_api::networking::RouteDestination],
        vs_ns: &str,
        port: u16,
        wanted: &mut BTreeSet<(String, u16, Option<String>)>,
    ) -> Vec<WeightedCluster> {
        let single = route.len() == 1;
        route
            .iter()
            .map(|d| WeightedCluster {
                cluster: self.wanted_cluster(&d.destination, vs_ns, port, wanted),
                weight: route_weight(single, d.weight),
                request_headers: HeaderOps::default(),
                response_headers: HeaderOps::default(),
            })
            .collect()
    }

    /// A route destination's service FQDN and port: the port given, else the service's only
    /// port, else the port the request came for.
    fn destination(&self, d: &mesh_api::networking::Destination, vs_ns: &str, port: u16) -> (String, u16) {
        let fqdn = host::resolve(&d.host, vs_ns);
        let dest_port = match (&d.port, self.services.get(&fqdn)) {
            (Some(p), _) => u16::try_from(p.number).unwrap_or(0),
            (None, Some(dsvc)) => {
                let ports: Vec<u16> = service_ports(&dsvc.spec).filter_map(|p| u16::try_from(p.port).ok()).collect();
                if ports.len() == 1 || !ports.contains(&port) { ports.first().copied().unwrap_or(port) } else { port }
            }
            (None, None) => port,
        };
        (fqdn, dest_port)
    }
}

/// Istio's destination weights: a lone destination gets everything (at least 1), several share
/// by their weights (missing = 0).
fn route_weight(single: bool, w: Option<i64>) -> u32 {
    if single {
        w.map_or(100, |w| u32::try_from(w).unwrap_or(0)).max(1)
    } else {
        w.and_then(|w| u32::try_from(w).ok()).unwrap_or(0)
    }
}

fn labels_match(selector: &BTreeMap<String, String>, labels: &BTreeMap<String, String>) -> bool {
    selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

fn service_ports(spec: &ServiceSpec) -> impl Iterator<Item = &mesh_api::core::ServicePort> {
    spec.ports
        .iter()
        .filter(|p| p.protocol.as_deref().unwrap_or("TCP") == "TCP" && u16::try_from(p.port).is_ok_and(|p| p > 0))
}

fn convert_match(m: &StringMatch) -> Option<StringMatcher> {
    if let Some(v) = &m.exact {
        Some(StringMatcher::Exact(v.clone()))
    } else if let Some(v) = &m.prefix {
        Some(StringMatcher::Prefix(v.clone()))
    } else {
        m.regex.as_ref().map(|v| StringMatcher::Regex(v.clone()))
    }
}

/// Translate the whole config for one proxy.
pub fn translate(resources: &Resources, workloads: &[Workload], proxy: &Workload) -> ProxyConfig {
    translate_with(resources, workloads, proxy, &MeshConfig::default())
}

/// Mesh-wide settings the translator needs (Istio's MeshConfig).
#[derive(Debug, Clone, PartialEq)]
pub struct MeshConfig {
    /// `outboundTrafficPolicy.mode`: ALLOW_ANY (true, Istio's default) sends requests for hosts
    /// the mesh does not know to where they were addressed; REGISTRY_ONLY refuses them.
    pub outbound_allow_any: bool,
    /// `accessLogFile` set: every proxy writes an access log line per request.
    pub access_log: bool,
    /// `defaultConfig.tracing`: the collector every proxy sends spans to, and the sampling rate.
    pub tracing: Option<mesh_api::proxy_config::Tracing>,
    /// `pathNormalization`: how every proxy normalizes request paths before routing and policy.
    pub path_normalization: mesh_api::proxy_config::PathNormalization,
    /// `defaultConfig.proxyMetadata.ISTIO_META_IDLE_TIMEOUT`: how long a downstream connection
    /// may stay idle; None: the proxies' default.
    pub idle_timeout: Option<std::time::Duration>,
    /// `h2UpgradePolicy: UPGRADE`: HTTP/1.1 requests cross between proxies over HTTP/2, unless
    /// a DestinationRule says otherwise.
    pub h2_upgrade: bool,
}

impl Default for MeshConfig {
    fn default() -> Self {
        MeshConfig {
            outbound_allow_any: true,
            access_log: false,
            tracing: None,
            path_normalization: Default::default(),
            idle_timeout: None,
            h2_upgrade: false,
        }
    }
}

/// Istio's default sampling percentage (`defaultConfig.tracing.sampling`).
pub const DEFAULT_TRACE_SAMPLING: f64 = 1.0;

/// The tracing settings from a collector (`zipkin` or `otlp`, `host:port`) and a sampling
/// percentage; an error names the bad value.
pub fn tracing_config(
    zipkin: Option<&str>,
    otlp: Option<&str>,
    sampling: f64,
) -> Result<Option<mesh_api::proxy_config::Tracing>, String> {
    use mesh_api::proxy_config::{TraceProvider, Tracing};
    if !(0.0..=100.0).contains(&sampling) {
        return Err(format!("trace sampling {sampling}: must be a percentage from 0 to 100"));
    }
    let (provider, address) = match (zipkin, otlp) {
        (Some(_), Some(_)) => return Err("name one trace collector: zipkin or otlp, not both".into()),
        (Some(a), None) => (TraceProvider::Zipkin, a),
        (None, Some(a)) => (TraceProvider::Otlp, a),
        (None, None) => return Ok(None),
    };
    match address.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0) => {}
        _ => return Err(format!("trace collector {address:?}: expected HOST:PORT, like zipkin.istio-system:9411")),
    }
    Ok(Some(Tracing { provider, address: address.to_string(), sampling }))
}

/// Translate the whole config for one proxy under a mesh config.
pub fn translate_with(
    resources: &Resources,
    workloads: &[Workload],
    proxy: &Workload,
    mesh: &MeshConfig,
) -> ProxyConfig {
    let expanded = gateway_api::expand(resources, &Default::default());
    let index = Index::new(expanded.as_ref().unwrap_or(resources));
    let selection = Selection::new(&index, workloads);
    let (routes, clusters) = outbound(&index, proxy, mesh);
    let endpoints = endpoints(&index, &selection, &clusters, &proxy.namespace);
    let listeners = listeners(&index, proxy, mesh);
    ProxyConfig { routes, clusters, endpoints, listeners }
}

/// What a proxy's routes, clusters and endpoints depend on besides the world: proxies with
/// equal keys get equal config (see `Index::outbound_key`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OutboundKey {
    pub namespace: String,
    pub labels: Vec<(String, String)>,
}

/// What a proxy's listeners depend on besides the world: its namespace, labels and ports.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ListenerKey {
    pub namespace: String,
    pub labels: BTreeMap<String, String>,
    pub ports: Vec<(u16, Option<String>)>,
}

impl ListenerKey {
    pub fn of(w: &Workload) -> ListenerKey {
        ListenerKey {
            namespace: w.namespace.clone(),
            labels: w.labels.clone(),
            ports: w.ports.iter().map(|p| (p.port, p.name.clone())).collect(),
        }
    }
}

/// The workloads each Service with a selector selects, in the order of the workload list:
/// computed once per change of config or workloads.
pub struct Selection<'w> {
    selected: HashMap<String, Vec<&'w Workload>>,
    /// The workloads a ServiceEntry's `workloadSelector` selects, by its host.
    by_entry: HashMap<String, Vec<&'w Workload>>,
}

impl<'w> Selection<'w> {
    pub fn new(index: &Index<'_>, workloads: &'w [Workload]) -> Selection<'w> {
        let mut by_ns: HashMap<&str, Vec<&'w Workload>> = HashMap::new();
        for w in workloads {
            by_ns.entry(w.namespace.as_str()).or_default().push(w);
        }
        let mut selected = HashMap::new();
        for svc in index.services.values().filter(|s| s.entry.is_none() && !s.spec.selector.is_empty()) {
            let found: Vec<&Workload> = by_ns
                .get(svc.namespace)
                .into_iter()
                .flatten()
                .copied()
                .filter(|w| labels_match(&svc.spec.selector, &w.labels))
                .collect();
            selected.insert(svc.fqdn.clone(), found);
        }
        let mut by_entry = HashMap::new();
        for svc in index.services.values() {
            let Some(sel) = svc.entry.and_then(|se| se.workload_selector.as_ref()).filter(|s| !s.labels.is_empty())
            else {
                continue;
            };
            let found: Vec<&Workload> = by_ns
                .get(svc.namespace)
                .into_iter()
                .flatten()
                .copied()
                .filter(|w| labels_match(&sel.labels, &w.labels))
                .collect();
            by_entry.insert(svc.fqdn.clone(), found);
        }
        Selection { selected, by_entry }
    }
}

/// What one service contributes to a proxy's routes: its virtual hosts and TCP services, and
/// the clusters they send to. It depends on the service, the VirtualServices naming its host
/// (and their delegates), the Services their destinations name, and the proxy's
/// `OutboundKey`; DestinationRules only shape the clusters, which are made afterwards.
#[derive(Debug, Default)]
pub struct ServiceRoutes {
    pub fqdn: String,
    pub virtual_hosts: Vec<VirtualHost>,
    pub tcp: Vec<TcpService>,
    /// (fqdn, port, subset)
    pub wanted: Vec<(String, u16, Option<String>)>,
    /// The virtual hosts' and the TCP services' JSON, each list joined with commas, and a
    /// hash of both: made once for a shared piece (`shared::ServiceRoutes::sealed`), spliced
    /// into every proxy's routes that contain it.
    vh_json: Vec<u8>,
    tcp_json: Vec<u8>,
    hash: u64,
}

/// Which ports of a service a proxy's Sidecar hides from it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Hidden {
    None,
    All,
    Ports(Vec<u16>),
}

impl ServiceRoutes {
    /// Drop the routes (and the clusters they want) on ports a Sidecar hides.
    fn hide(&mut self, hidden: &Hidden) {
        let Hidden::Ports(ports) = hidden else { return };
        self.virtual_hosts.retain(|v| !ports.contains(&v.port));
        self.tcp.retain(|t| !ports.contains(&t.port));
        let (vhosts, tcp) = (&self.virtual_hosts, &self.tcp);
        let clusters: BTreeSet<&str> = vhosts
            .iter()
            .flat_map(|v| &v.routes)
            .flat_map(|r| {
                r.clusters.iter().map(|c| c.cluster.as_str()).chain(r.mirrors.iter().map(|m| m.cluster.as_str()))
            })
            .chain(tcp.iter().flat_map(|t| t.clusters.iter().map(|c| c.cluster.as_str())))
            .collect();
        self.wanted.retain(|(f, p, s)| clusters.contains(cluster_name(f, *p, s.as_deref()).as_str()));
    }
}

fn service_routes(index: &Index<'_>, svc: &Svc<'_>, proxy: &Workload) -> ServiceRoutes {
    let client_ns = proxy.namespace.as_str();
    let mut out = ServiceRoutes { fqdn: svc.fqdn.clone(), ..Default::default() };
    let mut wanted = BTreeSet::new();
    let vs = index.virtual_service(svc, client_ns, RuleKind::Http);
    let tcp_vs = index.virtual_service(svc, client_ns, RuleKind::Tcp);
    let tls_vs = index.virtual_service(svc, client_ns, RuleKind::Tls);
    for sp in service_ports(&svc.spec) {
        let Ok(port) = u16::try_from(sp.port) else { continue };
        wanted.insert((svc.fqdn.clone(), port, None));
        if sp.mesh_protocol() == PortProtocol::Tcp {
            out.tcp.push(tcp::service(index, svc, port, tcp_vs, tls_vs, proxy, &mut wanted));
            continue;
        }
        let mut routes = Vec::new();
        if let Some((key, vs)) = vs {
            routes = http_routes(index, key, vs, port, proxy, &http::Scope::Mesh, &mut wanted);
        }
        if routes.is_empty() {
            routes.push(Route {
                name: "default".into(),
                clusters: vec![WeightedCluster {
                    cluster: cluster_name(&svc.fqdn, port, None),
                    weight: 100,
                    request_headers: HeaderOps::default(),
                    response_headers: HeaderOps::default(),
                }],
                retries: Some(http::default_retries()),
                ..Default::default()
            });
        }
        out.virtual_hosts.push(VirtualHost {
            name: format!("{}:{port}", svc.fqdn),
            domains: svc.domains(client_ns),
            port,
            routes,
        });
    }
    out.wanted = wanted.into_iter().collect();
    out
}

/// The DestinationRule that applies to the service `fqdn` for clients in `client_ns`, in
/// Istio's lookup order (for `mesh x describe`).
pub fn destination_rule_for(resources: &Resources, fqdn: &str, client_ns: &str) -> Option<Key> {
    let expanded = gateway_api::expand(resources, &Default::default());
    let index = Index::new(expanded.as_ref().unwrap_or(resources));
    let svc = index.services.get(fqdn)?;
    index.destination_rule_at(svc, client_ns).map(|i| index.destination_rules[i].0.clone())
}

/// A proxy's routes and clusters: they depend on its namespace and the labels in its
/// `OutboundKey` only. (The push pipeline makes the same from shared pieces: `shared`.)
pub fn outbound(index: &Index<'_>, proxy: &Workload, mesh: &MeshConfig) -> (Routes, Clusters) {
    let mut virtual_hosts = Vec::new();
    let mut tcp_services = Vec::new();
    let mut wanted: BTreeSet<(String, u16, Option<String>)> = BTreeSet::new();
    let sidecar = index.sidecar_for(proxy);
    for svc in index.services.values() {
        // A service outside the proxy's Sidecar egress hosts: no routes (and no clusters) for it.
        let hidden = Index::sidecar_hides(sidecar, svc);
        if hidden == Hidden::All {
            continue;
        }
        let mut part = service_routes(index, svc, proxy);
        part.hide(&hidden);
        virtual_hosts.extend(part.virtual_hosts);
        tcp_services.extend(part.tcp);
        wanted.extend(part.wanted);
    }
    let (gateway_http, gateway_tcp) = gateway::routes(index, proxy, &mut wanted);
    let clusters = wanted
        .iter()
        .map(|(fqdn, port, subset)| cluster(index, fqdn, *port, subset.as_deref(), &proxy.namespace, mesh).0)
        .collect();
    let routes = Routes {
        virtual_hosts,
        tcp: tcp_services,
        passthrough: index.allow_any(proxy, mesh),
        gateway_http,
        gateway_tcp,
    };
    (routes, Clusters { clusters })
}

/// The cluster of (service, port, subset) as seen from `client_ns`, and the position of the
/// DestinationRule that shaped it (the other input of its endpoints).
fn cluster(
    index: &Index<'_>,
    fqdn: &str,
    port: u16,
    subset: Option<&str>,
    client_ns: &str,
    mesh: &MeshConfig,
) -> (Cluster, Option<usize>) {
    let svc = index.services.get(fqdn);
    let dr_at = svc.and_then(|s| index.destination_rule_at(s, client_ns));
    let dr = dr_at.map(|i| index.destination_rules[i].1);
    let subset_def = subset.and_then(|s| dr.and_then(|dr| dr.spec.subsets.iter().find(|d| d.name == s)));
    let policy = policy::resolve(dr, subset_def, port);
    let passthrough = svc.and_then(|s| s.entry).is_some_and(|se| entry::endpoints(se, port, &mut Vec::new()));
    let c = Cluster {
        name: cluster_name(fqdn, port, subset),
        service: fqdn.to_string(),
        port,
        subset: subset.map(str::to_string),
        lb_policy: policy.lb,
        hash: policy.hash,
        limits: policy.limits,
        outlier: policy.outlier,
        passthrough,
        h2_upgrade: policy.h2_upgrade.unwrap_or(mesh.h2_upgrade),
        app_http: svc.and_then(|s| service_ports(&s.spec).find(|p| p.port == i64::from(port))?.app_http()),
        mesh_sni: credentials::mesh_sni(dr, subset_def, port),
        tls: credentials::originate(dr, subset_def, port, fqdn, client_ns, index.credentials),
    };
    (c, dr_at)
}

/// The endpoints of a proxy's clusters, as seen from its namespace (whose DestinationRules
/// decide mTLS toward each endpoint).
pub fn endpoints(index: &Index<'_>, selection: &Selection<'_>, clusters: &Clusters, client_ns: &str) -> Endpoints {
    let endpoints =
        clusters.clusters.iter().map(|c| (c.name.clone(), cluster_endpoints(index, selection, c, client_ns)));
    Endpoints { clusters: endpoints.collect() }
}

/// The endpoints of one cluster as seen from `client_ns`.
fn cluster_endpoints(index: &Index<'_>, selection: &Selection<'_>, c: &Cluster, client_ns: &str) -> Vec<Endpoint> {
    {
        let (port, subset) = (c.port, c.subset.as_ref());
        let svc = index.services.get(&c.service);
        let dr = svc.and_then(|s| index.destination_rule(s, client_ns));
        let subset_def = subset.and_then(|s| dr.and_then(|dr| dr.spec.subsets.iter().find(|d| &d.name == s)));
        let mut eps = Vec::new();
        if let Some(svc) = svc
            && let Some(se) = svc.entry
        {
            match se.workload_selector.as_ref().filter(|s| !s.labels.is_empty()) {
                // The entry's endpoints are the workloads it selects: pods (by the port's
                // target) and WorkloadEntries (by the port's name), in its namespace.
                Some(sel) => {
                    if let Some(sp) = se.ports.iter().find(|p| p.number == i64::from(port)) {
                        let target = sp.target_port.and_then(|t| u16::try_from(t).ok()).unwrap_or(port);
                        for w in selection.by_entry.get(&svc.fqdn).into_iter().flatten() {
                            for ip in w.ports.iter().filter(|ip| ip.port == target) {
                                let server = if w.without_proxy {
                                    mesh_api::proxy_config::PeerMode::Disable
                                } else {
                                    security::peer_mode(&index.peer_authentications, w, ip.port)
                                };
                                eps.push(Endpoint {
                                    address: ip.listen,
                                    workload: format!("{}/{}", w.namespace, w.name),
                                    identity: SpiffeId::new(DEFAULT_TRUST_DOMAIN, &w.namespace, &w.service_account)
                                        .to_string(),
                                    mtls: security::endpoint_mtls(dr, subset_def, port, server),
                                    hostname: None,
                                });
                            }
                        }
                        eps.extend(index.entry_endpoints(
                            svc.namespace,
                            &sel.labels,
                            subset_def,
                            &sp.name,
                            target,
                            port,
                            dr,
                        ));
                    }
                }
                None => {
                    entry::endpoints(se, port, &mut eps);
                }
            }
        } else if let Some(svc) = svc
            && !svc.spec.selector.is_empty()
            && (subset.is_none() || subset_def.is_some())
            && let Some(sp) = svc.spec.ports.iter().find(|p| p.port == i64::from(port))
        {
            for w in selection.selected.get(&svc.fqdn).into_iter().flatten() {
                if let Some(sd) = subset_def
                    && !labels_match(&sd.labels, &w.labels)
                {
                    continue;
                }
                for ip in &w.ports {
                    if targets(sp, ip) {
                        // A pod without a proxy cannot terminate mTLS: plain text, unless a
                        // DestinationRule insists.
                        let server = if w.without_proxy {
                            mesh_api::proxy_config::PeerMode::Disable
                        } else {
                            security::peer_mode(&index.peer_authentications, w, ip.port)
                        };
                        eps.push(Endpoint {
                            address: ip.listen,
                            workload: format!("{}/{}", w.namespace, w.name),
                            identity: SpiffeId::new(DEFAULT_TRUST_DOMAIN, &w.namespace, &w.service_account).to_string(),
                            mtls: security::endpoint_mtls(dr, subset_def, port, server),
                            hostname: None,
                        });
                    }
                }
                // A gateway proxy (an egress gateway) is reached on its Gateway server ports:
                // plain text, which its HTTP servers take, unless a DestinationRule says
                // ISTIO_MUTUAL (its ISTIO_MUTUAL servers take mesh mTLS).
                // The Service targets the server port (locally, where listeners have any port)
                // or the port the gateway listens on (its container port on a cluster).
                let gateway_target = |gp: &&mesh_api::protocol::InboundPort| {
                    targets(sp, gp) || sp.target_number() == Some(gp.listen.port())
                };
                for gp in w.gateway_ports.iter().filter(gateway_target) {
                    eps.push(Endpoint {
                        address: gp.listen,
                        workload: format!("{}/{}", w.namespace, w.name),
                        identity: SpiffeId::new(DEFAULT_TRUST_DOMAIN, &w.namespace, &w.service_account).to_string(),
                        mtls: security::endpoint_mtls(dr, subset_def, port, mesh_api::proxy_config::PeerMode::Disable),
                        hostname: None,
                    });
                }
            }
            let target = sp.target_number().unwrap_or(port);
            let sp_name = sp.name.as_deref().unwrap_or("");
            eps.extend(index.entry_endpoints(svc.namespace, &svc.spec.selector, subset_def, sp_name, target, port, dr));
        }
        eps.sort_by(|a, b| (&a.workload, a.address).cmp(&(&b.workload, b.address)));
        eps
    }
}

/// A proxy's inbound listeners and the policies, rate limits and telemetry that apply to it.
pub fn listeners(index: &Index<'_>, proxy: &Workload, mesh: &MeshConfig) -> Listeners {
    let mut l = security::listeners(
        &index.peer_authentications,
        &index.authorization_policies,
        &index.request_authentications,
        proxy,
    );
    for inbound in &mut l.inbound {
        inbound.tcp = index.is_tcp_port(proxy, inbound.port);
        inbound.services = index.inbound_services(proxy, inbound.port);
        inbound.app_http = index.app_http(proxy, inbound.port);
    }
    if let Some((key, sc)) = index.sidecar_for(proxy) {
        sidecar_listeners(index, key, sc, proxy, &mut l);
    }
    l.path_normalization = mesh.path_normalization;
    l.idle_timeout_ms = mesh.idle_timeout.map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    l.rate_limit = security::rate_limit(&index.rate_limits, proxy);
    l.access_log = telemetry::access_log(&index.telemetries, proxy, mesh.access_log);
    l.tracing = telemetry::tracing(&index.telemetries, proxy, mesh.tracing.as_ref());
    l.gateway_tls = gateway::tls_servers(index, proxy);
    l
}

/// A Sidecar's `ingress` listeners (each workload port's protocol and app endpoint, added
/// when the proxy did not register the port) and the listeners it wants at addresses of
/// their own: ingress ones with a `bind` or capture `NONE`, egress ones with a port and a
/// `bind` or capture `NONE`.
fn sidecar_listeners(
    index: &Index<'_>,
    key: &Key,
    sc: &mesh_api::networking::SidecarSpec,
    proxy: &Workload,
    l: &mut Listeners,
) {
    let own_bind =
        |bind: &Option<String>, capture: &Option<String>| bind.is_some() || capture.as_deref() == Some("NONE");
    for ing in &sc.ingress {
        let Ok(port) = u16::try_from(ing.port.number) else { continue };
        let at = match l.inbound.iter().position(|i| i.port == port) {
            Some(at) => at,
            None => {
                l.inbound.push(mesh_api::proxy_config::InboundListener {
                    port,
                    mtls: security::peer_mode(&index.peer_authentications, proxy, port),
                    tcp: false,
                    services: index.inbound_services(proxy, port),
                    app_http: None,
                    endpoint: None,
                });
                l.inbound.len() - 1
            }
        };
        let inbound = &mut l.inbound[at];
        inbound.tcp = ing.port.is_tcp();
        inbound.app_http = ing.port.app_http().or(inbound.app_http);
        inbound.endpoint = ing.default_endpoint.clone();
        if own_bind(&ing.bind, &ing.capture_mode) {
            l.bound.push(BoundListener {
                bind: ing.bind.clone(),
                port,
                direction: Direction::Inbound,
                tcp: inbound.tcp,
                host: None,
            });
        }
    }
    l.inbound.sort_by_key(|i| i.port);
    for eg in &sc.egress {
        let Some(p) = &eg.port else { continue };
        let Ok(port) = u16::try_from(p.number) else { continue };
        if !own_bind(&eg.bind, &eg.capture_mode) {
            continue;
        }
        let tcp = p.is_tcp();
        // A TCP listener has no Host to route by: it serves the one service its hosts take
        // on this port (the first by name when several do).
        let host = tcp
            .then(|| {
                index.services.values().find(|svc| {
                    service_ports(&svc.spec).any(|sp| sp.port == i64::from(port))
                        && sc.admits(&key.namespace, svc.namespace, &svc.fqdn, port)
                })
            })
            .flatten()
            .map(|svc| svc.fqdn.clone());
        l.bound.push(BoundListener { bind: eg.bind.clone(), port, direction: Direction::Outbound, tcp, host });
    }
}

/// The routes of one VirtualService for requests to `port`, as seen by `proxy` in `scope`
/// (the mesh, or one gateway). Destinations are added to `wanted`.
fn http_routes(
    index: &Index<'_>,
    key: &Key,
    vs: &Object<VirtualServiceSpec>,
    port: u16,
    proxy: &Workload,
    scope: &http::Scope<'_>,
    wanted: &mut BTreeSet<(String, u16, Option<String>)>,
) -> Vec<Route> {
    let mut routes = Vec::new();
    for (key, rule, label, rule_matches) in http::expand_delegates(index, key, vs) {
        if rule.route.is_empty() && rule.redirect.is_none() && rule.direct_response.is_none() {
            continue;
        }
        let matches: Vec<RouteMatch> =
            rule_matches.iter().filter_map(|m| http::route_match(m, port, proxy, scope, &key.namespace)).collect();
        if !rule_matches.is_empty() && matches.is_empty() {
            continue;
        }
        let single = rule.route.len() == 1;
        let clusters = rule
            .route
            .iter()
            .map(|d| WeightedCluster {
                cluster: index.wanted_cluster(&d.destination, &key.namespace, port, wanted),
                weight: route_weight(single, d.weight),
                request_headers: http::request_ops(&d.headers),
                response_headers: http::response_ops(&d.headers),
            })
            .collect();
        let name = match &rule.name {
            Some(n) => format!("{}/{} {n}", key.namespace, key.name),
            None => format!("{}/{} {label}", key.namespace, key.name),
        };
        let mut route = Route { name, matches, clusters, ..Default::default() };
        http::rule_actions(rule, &mut route);
        for (dest, percent) in http::mirrors(rule) {
            route.mirrors.push(Mirror { cluster: index.wanted_cluster(dest, &key.namespace, port, wanted), percent });
        }
        routes.push(route);
    }
    routes
}

/// A short, stable version string for a config part: a hash of its JSON form.
pub fn version_of<T: serde::Serialize>(value: &T) -> String {
    version_of_bytes(&serde_json::to_vec(value).unwrap_or_default())
}

/// The version of already-serialized JSON: equal to `version_of` of the value it encodes.
pub fn version_of_bytes(bytes: &[u8]) -> String {
    format!("{:016x}", shared::Fnv::NEW.bytes(bytes).finish())
}

mod credentials;
mod entry;
mod gateway;
pub mod gateway_api;
mod http;
mod policy;
pub mod rollout;
mod security;
pub mod shared;
mod tcp;
mod telemetry;

#[cfg(test)]
mod tests;
