//! VirtualService analyzers.

use serde_json::Value;

use super::messages::*;
use super::{Analyzer, Input, Message, Res, selects, string_map};

/// A host something can route to, and who may see it.
struct Target {
    host: String,
    /// Namespaces it is exported to; `*` is every namespace.
    export_to: Vec<String>,
    ports: Vec<u64>,
}

fn export_list(raw: impl Iterator<Item = String>, own_ns: &str) -> Vec<String> {
    let v: Vec<String> = raw.map(|s| if s == "." { own_ns.to_string() } else { s }).collect();
    if v.is_empty() { vec!["*".into()] } else { v }
}

fn str_list(v: Option<&Value>) -> impl Iterator<Item = String> + '_ {
    v.and_then(Value::as_array).into_iter().flatten().filter_map(|s| s.as_str().map(str::to_string))
}

fn targets(input: &Input) -> Vec<Target> {
    let mut out = Vec::new();
    for svc in input.of_kind("", "Service") {
        let export = svc
            .annotation("networking.istio.io/exportTo")
            .map(|a| a.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect::<Vec<_>>())
            .unwrap_or_default();
        out.push(Target {
            host: mesh_api::host::service_fqdn(&svc.name, svc.ns()),
            export_to: export_list(export.into_iter(), svc.ns()),
            ports: svc
                .spec()
                .get("ports")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|p| p.get("port")?.as_u64())
                .collect(),
        });
    }
    for se in input.of_kind("networking.istio.io", "ServiceEntry") {
        let export = export_list(str_list(se.spec().get("exportTo")), se.ns());
        let ports: Vec<u64> = se
            .spec()
            .get("ports")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|p| p.get("number")?.as_u64())
            .collect();
        for h in str_list(se.spec().get("hosts")) {
            out.push(Target { host: h.to_ascii_lowercase(), export_to: export.clone(), ports: ports.clone() });
        }
    }
    out
}

fn host_matches(pattern: &str, host: &str) -> bool {
    if pattern == host || pattern == "*" {
        return true;
    }
    match pattern.strip_prefix('*') {
        Some(suffix) => !host.starts_with('*') && host.ends_with(suffix),
        None => false,
    }
}

/// The target for `host` as seen from every namespace in `from`, if visible from all.
fn lookup<'a>(targets: &'a Targets, host: &str, from: &[String]) -> Option<&'a Target> {
    let mut found = None;
    for ns in from {
        let visible = |t: &&Target| t.export_to.iter().any(|e| e == "*" || e == ns);
        let exact = targets.exact.get(host).and_then(|ts| ts.iter().find(visible));
        let t = exact.or_else(|| targets.wildcard.iter().filter(visible).find(|t| host_matches(&t.host, host)))?;
        found = Some(t);
    }
    found
}

/// Targets indexed for lookup: exact host names in a map, wildcards (few) in a list.
struct Targets {
    exact: std::collections::HashMap<String, Vec<Target>>,
    wildcard: Vec<Target>,
}

impl Targets {
    fn new(all: Vec<Target>) -> Targets {
        let mut t = Targets { exact: Default::default(), wildcard: Vec::new() };
        for target in all {
            if target.host.starts_with('*') {
                t.wildcard.push(target);
            } else {
                t.exact.entry(target.host.clone()).or_default().push(target);
            }
        }
        t
    }
}

/// Destinations of a VirtualService: routes of http, tcp and tls rules (a missing destination
/// counts, with an empty host), then http mirrors.
fn destinations(spec: &Value) -> (Vec<Option<&Value>>, Vec<&Value>) {
    let mut routes = Vec::new();
    for section in ["http", "tcp", "tls"] {
        for rule in spec.get(section).and_then(Value::as_array).into_iter().flatten() {
            for r in rule.get("route").and_then(Value::as_array).into_iter().flatten() {
                routes.push(r.get("destination"));
            }
        }
    }
    let mut mirrors = Vec::new();
    for rule in spec.get("http").and_then(Value::as_array).into_iter().flatten() {
        if let Some(m) = rule.get("mirror") {
            mirrors.push(m);
        }
        for m in rule.get("mirrors").and_then(Value::as_array).into_iter().flatten() {
            if let Some(d) = m.get("destination") {
                mirrors.push(d);
            }
        }
    }
    (routes, mirrors)
}

fn dest_host(d: Option<&Value>) -> &str {
    d.and_then(|d| d.get("host")).and_then(Value::as_str).unwrap_or("")
}

fn fqdn(host: &str, ns: &str) -> String {
    if host.is_empty() { String::new() } else { mesh_api::host::resolve(host, ns) }
}

fn gateway_bound(vs: &Res) -> bool {
    let gws: Vec<String> = str_list(vs.spec().get("gateways")).collect();
    !gws.is_empty() && !gws.iter().any(|g| g == "mesh")
}

/// `virtualservice.DestinationHostAnalyzer`: every destination and mirror host must exist and be
/// visible (exportTo) from where the VirtualService applies; ports must exist and be given when
/// the service has several. Also warns when a mesh VirtualService's subsets cannot apply to
/// requests arriving through an ingress gateway's VirtualService.
pub struct DestinationHostAnalyzer;

impl Analyzer for DestinationHostAnalyzer {
    fn name(&self) -> &'static str {
        "virtualservice.DestinationHostAnalyzer"
    }

    fn description(&self) -> &'static str {
        "Checks the destination hosts associated with each virtual service"
    }

    fn analyze(&self, input: &Input, out: &mut Vec<Message>) {
        let targets = Targets::new(targets(input));
        let vss: Vec<&Res> = input.of_kind("networking.istio.io", "VirtualService").collect();
        for vs in &vss {
            let export: Vec<String> = str_list(vs.spec().get("exportTo")).collect();
            let from: Vec<String> = if export.is_empty() || export.iter().any(|e| e == "*") {
                vec![vs.ns().to_string()]
            } else {
                export.into_iter().map(|e| if e == "." { vs.ns().to_string() } else { e }).collect()
            };
            let (routes, mirrors) = destinations(vs.spec());
            for d in routes.into_iter().chain(mirrors.into_iter().map(Some)) {
                let host = dest_host(d);
                let Some(t) = lookup(&targets, &fqdn(host, vs.ns()), &from) else {
                    out.push(Message::new(
                        &REFERENCED_RESOURCE_NOT_FOUND,
                        vs,
                        format!("Referenced host not found: {host:?}"),
                    ));
                    continue;
                };
                match d.and_then(|d| d.get("port")).and_then(|p| p.get("number")).and_then(Value::as_u64) {
                    None if t.ports.len() > 1 => out.push(Message::new(
                        &DESTINATION_PORT_SELECTOR_REQUIRED,
                        vs,
                        format!(
                            "This VirtualService routes to a service {host:?} that exposes multiple ports {:?}. Specifying a port in the destination is required to disambiguate.",
                            t.ports
                        ),
                    )),
                    Some(port) if !t.ports.contains(&port) => out.push(Message::new(
                        &REFERENCED_RESOURCE_NOT_FOUND,
                        vs,
                        format!("Referenced host:port not found: \"{host}:{port}\""),
                    )),
                    _ => {}
                }
            }
        }
        // Subsets set by mesh VirtualServices do not apply to traffic an ingress gateway's
        // VirtualService sends to the same host without a subset.
        for gw_vs in vss.iter().filter(|v| gateway_bound(v)) {
            let (routes, _) = destinations(gw_vs.spec());
            for d in routes.into_iter().flatten() {
                if d.get("subset").is_some() {
                    continue;
                }
                let host = fqdn(dest_host(Some(d)), gw_vs.ns());
                for mesh_vs in vss.iter().filter(|v| !gateway_bound(v)) {
                    let serves = str_list(mesh_vs.spec().get("hosts")).any(|h| fqdn(&h, mesh_vs.ns()) == host);
                    let (mesh_routes, _) = destinations(mesh_vs.spec());
                    let uses_subsets = mesh_routes.into_iter().flatten().any(|md| md.get("subset").is_some());
                    if serves && uses_subsets {
                        out.push(Message::new(
                            &INGRESS_ROUTE_RULES_NOT_AFFECTED,
                            gw_vs,
                            format!(
                                "Subset in virtual service {} has no effect on ingress gateway {} requests",
                                mesh_vs.name, gw_vs.name
                            ),
                        ));
                    }
                }
            }
        }
    }
}

/// Do a gateway host and a VirtualService host overlap (either may be a wildcard)?
fn gateway_host_matches(g: &str, v: &str) -> bool {
    let wild = |p: &str, h: &str| p == "*" || p.strip_prefix('*').is_some_and(|suffix| h.ends_with(suffix));
    g.eq_ignore_ascii_case(v) || wild(g, v) || wild(v, g)
}

/// `virtualservice.GatewayAnalyzer`: each gateway a VirtualService names must exist, and must
/// serve at least one of its hosts to the VirtualService's namespace.
pub struct GatewayAnalyzer;

impl Analyzer for GatewayAnalyzer {
    fn name(&self) -> &'static str {
        "virtualservice.GatewayAnalyzer"
    }

    fn description(&self) -> &'static str {
        "Checks the gateways associated with each virtual service"
    }

    fn analyze(&self, input: &Input, out: &mut Vec<Message>) {
        for vs in input.of_kind("networking.istio.io", "VirtualService") {
            let hosts: Vec<String> = str_list(vs.spec().get("hosts")).collect();
            for gw_ref in str_list(vs.spec().get("gateways")) {
                if gw_ref == "mesh" {
                    continue;
                }
                if gw_ref.contains("istio-autogenerated-k8s-gateway") {
                    out.push(Message::new(
                        &REFERENCED_INTERNAL_GATEWAY,
                        vs,
                        format!("Gateway reference in VirtualService {} is to an implementation-generated internal Gateway: {gw_ref}.", vs.name),
                    ));
                    continue;
                }
                let (gw_ns, gw_name) = gw_ref.split_once('/').unwrap_or((vs.ns(), gw_ref.as_str()));
                let named = |r: &&Res| r.ns() == gw_ns && r.name == gw_name;
                let istio_gw = input.of_kind("networking.istio.io", "Gateway").find(named);
                let kube_gw = input.of_kind("gateway.networking.k8s.io", "Gateway").find(named);
                if istio_gw.is_none() && kube_gw.is_none() {
                    out.push(Message::new(
                        &REFERENCED_RESOURCE_NOT_FOUND,
                        vs,
                        format!("Referenced gateway not found: {gw_ref:?}"),
                    ));
                }
                // The hosts the gateway serves to this VirtualService's namespace.
                let mut served: Vec<String> = Vec::new();
                if let Some(gw) = istio_gw {
                    for server in gw.spec().get("servers").and_then(Value::as_array).into_iter().flatten() {
                        for h in str_list(server.get("hosts")) {
                            let (ns, host) = h.split_once('/').unwrap_or(("*", h.as_str()));
                            let ns = if ns == "." { gw.ns() } else { ns };
                            if ns == "*" || ns == vs.ns() {
                                served.push(host.to_string());
                            }
                        }
                    }
                }
                if let Some(gw) = kube_gw {
                    for l in gw.spec().get("listeners").and_then(Value::as_array).into_iter().flatten() {
                        served.push(l.get("hostname").and_then(Value::as_str).unwrap_or("*").to_string());
                    }
                }
                if !served.iter().any(|g| hosts.iter().any(|v| gateway_host_matches(g, v))) {
                    out.push(Message::new(
                        &HOST_NOT_FOUND_IN_GATEWAY,
                        vs,
                        format!(
                            "one or more host {hosts:?} defined in VirtualService {}/{} not found in Gateway {gw_ns}/{gw_name}.",
                            vs.ns(),
                            vs.name
                        ),
                    ));
                }
            }
        }
    }
}

/// Namespaces a resource is exported to (`*` for all); `.` is its own.
pub(super) fn exported(r: &Res) -> Vec<String> {
    export_list(str_list(r.spec().get("exportTo")), r.ns())
}

/// Is there a namespace where resources exported to `a` and to `b` are both visible?
pub(super) fn visible_together(a: &[String], b: &[String]) -> bool {
    a.iter().any(|x| x == "*" || b.iter().any(|y| y == "*" || y == x)) || b.iter().any(|y| y == "*")
}

/// `virtualservice.ConflictingMeshGatewayHostsAnalyzer`: two VirtualServices for the mesh
/// gateway that claim the same (or overlapping wildcard) host where both are visible. Like
/// Istio, each VirtualService is reported once, for its first conflicting host.
pub struct ConflictingMeshGatewayHostsAnalyzer;

impl Analyzer for ConflictingMeshGatewayHostsAnalyzer {
    fn name(&self) -> &'static str {
        "virtualservice.ConflictingMeshGatewayHostsAnalyzer"
    }

    fn description(&self) -> &'static str {
        "Checks if multiple virtual services associated with the mesh gateway have conflicting hosts"
    }

    fn analyze(&self, input: &Input, out: &mut Vec<Message>) {
        let vss: Vec<(&Res, Vec<String>, Vec<String>)> = input
            .of_kind("networking.istio.io", "VirtualService")
            .filter(|v| !gateway_bound(v))
            .map(|v| (v, exported(v), str_list(v.spec().get("hosts")).map(|h| fqdn(&h, v.ns())).collect()))
            .collect();
        // Index: exact host -> VirtualServices; wildcard hosts are compared with everything.
        let mut exact: std::collections::HashMap<&str, Vec<usize>> = Default::default();
        let mut wild: Vec<usize> = Vec::new();
        for (i, (_, _, hosts)) in vss.iter().enumerate() {
            for h in hosts {
                if h.starts_with('*') {
                    wild.push(i);
                } else {
                    exact.entry(h.as_str()).or_default().push(i);
                }
            }
        }
        for (i, (vs, exp, hosts)) in vss.iter().enumerate() {
            for h in hosts {
                let candidates: Vec<usize> = if h.starts_with('*') {
                    (0..vss.len()).collect()
                } else {
                    exact.get(h.as_str()).into_iter().flatten().chain(wild.iter()).copied().collect()
                };
                let mut seen = std::collections::BTreeSet::new();
                let mut names: Vec<String> = candidates
                    .into_iter()
                    .filter(|j| seen.insert(*j))
                    .filter(|j| {
                        let (_, oexp, ohosts) = &vss[*j];
                        *j != i && visible_together(exp, oexp) && ohosts.iter().any(|o| gateway_host_matches(h, o))
                    })
                    .map(|j| format!("{}/{}", vss[j].0.ns(), vss[j].0.name))
                    .collect();
                if names.is_empty() {
                    continue;
                }
                names.push(format!("{}/{}", vs.ns(), vs.name));
                names.sort();
                out.push(Message::new(
                    &CONFLICTING_MESH_GATEWAY_HOSTS,
                    vs,
                    format!(
                        "The VirtualServices {} associated with mesh gateway define the same host {h} which can lead to undefined behavior. This can be fixed by merging the conflicting VirtualServices into a single resource.",
                        names.join(",")
                    ),
                ));
                break;
            }
        }
    }
}

/// `name.namespace` of a host, as Istio's analyzers key services: a Kubernetes FQDN gives its
/// own name and namespace, anything else is a short name in `ns`.
fn resource_name_of_host(host: &str, ns: &str) -> (String, String) {
    let parts: Vec<&str> = host.split('.').collect();
    if parts.len() >= 3 && parts[2] == "svc" && !parts[0].is_empty() && !parts[1].is_empty() {
        return (parts[0].to_string(), parts[1].to_string());
    }
    (host.to_string(), ns.to_string())
}

/// `virtualservice.DestinationRuleAnalyzer`: a destination (or mirror) that names a subset needs a
/// DestinationRule for that host defining it.
pub struct DestinationRuleAnalyzer;

impl Analyzer for DestinationRuleAnalyzer {
    fn name(&self) -> &'static str {
        "virtualservice.DestinationRuleAnalyzer"
    }

    fn description(&self) -> &'static str {
        "Checks the destination rules associated with each virtual service"
    }

    fn analyze(&self, input: &Input, out: &mut Vec<Message>) {
        let mut subsets = std::collections::HashSet::new();
        for dr in input.of_kind("networking.istio.io", "DestinationRule") {
            let host = dr.spec().get("host").and_then(Value::as_str).unwrap_or("");
            let host = if !host.starts_with('*') && !host.contains('.') {
                format!("{host}.{}.svc.cluster.local", dr.ns())
            } else {
                host.to_string()
            };
            let key = resource_name_of_host(&host, dr.ns());
            for s in dr.spec().get("subsets").and_then(Value::as_array).into_iter().flatten() {
                subsets.insert((key.clone(), s.get("name").and_then(Value::as_str).unwrap_or("").to_string()));
            }
        }
        for vs in input.of_kind("networking.istio.io", "VirtualService") {
            let (routes, mirrors) = destinations(vs.spec());
            let checks =
                routes.into_iter().flatten().map(|d| ("host", d)).chain(mirrors.into_iter().map(|d| ("mirror", d)));
            for (what, d) in checks {
                let subset = d.get("subset").and_then(Value::as_str).unwrap_or("");
                if subset.is_empty() {
                    continue;
                }
                let host = dest_host(Some(d));
                if !subsets.contains(&(resource_name_of_host(host, vs.ns()), subset.to_string())) {
                    out.push(Message::new(
                        &REFERENCED_RESOURCE_NOT_FOUND,
                        vs,
                        format!("Referenced {what}+subset in destinationrule not found: \"{host}+{subset}\""),
                    ));
                }
            }
        }
    }
}

/// `virtualservice.JWTClaimRouteAnalyzer`: routing on `@request.auth.claims.*` only works on
/// gateway pods that a RequestAuthentication covers (it validates the token and makes the
/// claims available).
pub struct JwtClaimRouteAnalyzer;

fn jwt_claim_key(spec: &Value) -> Option<String> {
    for rule in spec.get("http").and_then(Value::as_array).into_iter().flatten() {
        for m in rule.get("match").and_then(Value::as_array).into_iter().flatten() {
            for section in ["headers", "withoutHeaders"] {
                if let Some(k) = m
                    .get(section)
                    .and_then(Value::as_object)
                    .into_iter()
                    .flatten()
                    .map(|(k, _)| k)
                    .find(|k| k.starts_with("@request.auth.claims"))
                {
                    return Some(k.clone());
                }
            }
        }
    }
    None
}

impl Analyzer for JwtClaimRouteAnalyzer {
    fn name(&self) -> &'static str {
        "virtualservice.JWTClaimRouteAnalyzer"
    }

    fn description(&self) -> &'static str {
        "Checks the VirtualService using JWT claim based routing has corresponding RequestAuthentication"
    }

    fn judges_workloads(&self) -> bool {
        true
    }

    fn analyze(&self, input: &Input, out: &mut Vec<Message>) {
        let ras: Vec<(&str, std::collections::BTreeMap<String, String>)> = input
            .of_kind("security.istio.io", "RequestAuthentication")
            .map(|r| (r.ns(), string_map(r.spec().get("selector").and_then(|s| s.get("matchLabels")))))
            .collect();
        for vs in input.of_kind("networking.istio.io", "VirtualService") {
            let Some(key) = jwt_claim_key(vs.spec()) else { continue };
            for gw_name in str_list(vs.spec().get("gateways")).filter(|g| g != "mesh") {
                let (gw_ns, gw_short) = match gw_name.split_once('/') {
                    Some((ns, n)) => (ns.to_string(), n.to_string()),
                    None => (vs.ns().to_string(), gw_name.clone()),
                };
                let Some(gw) =
                    input.of_kind("networking.istio.io", "Gateway").find(|g| g.ns() == gw_ns && g.name == gw_short)
                else {
                    continue;
                };
                let selector = string_map(gw.spec().get("selector"));
                for pod in input.of_kind("", "Pod") {
                    let labels = pod.labels();
                    if !selects(&selector, &labels) {
                        continue;
                    }
                    let covered = ras
                        .iter()
                        .filter(|(ns, _)| *ns == "istio-system" || *ns == pod.ns())
                        .any(|(_, sel)| selects(sel, &labels));
                    if !covered {
                        out.push(Message::new(
                            &JWT_CLAIM_ROUTING_WITHOUT_REQUEST_AUTHN,
                            vs,
                            format!(
                                "The virtual service uses the JWT claim based routing (key: {key}) but found no request authentication for the gateway ({gw_ns}/{gw_short}) pod ({}). The request authentication must first be applied for the gateway pods to validate the JWT token and make the claims available for routing.",
                                pod.name
                            ),
                        ));
                    }
                }
            }
        }
    }
}
