//! Gateways: a proxy whose labels a Gateway selects serves that Gateway's servers, with the
//! VirtualServices bound to it (`gateways: [name]` or `[namespace/name]`): HTTP routes (plain or
//! after TLS termination), TCP routes, and TLS passed through by SNI; and each TLS server's
//! certificate and client requirements.

use std::collections::BTreeSet;

use mesh_api::networking::{GatewayServer, GatewaySpec};
use mesh_api::protocol::Workload;
use mesh_api::proxy_config::{GatewayTls, GatewayTlsMode, Redirect, Route, SniRoute, TcpService, VirtualHost};
use mesh_api::{Key, Object};

use super::http::Scope;
use super::{Index, credentials, http_routes, labels_match};

/// Does a Gateway server host (`*`, `*.example.com`, `example.com`, with an optional
/// `namespace/` prefix) admit a VirtualService host?
fn host_admits(server_host: &str, vs_host: &str) -> bool {
    let sh = server_host.split_once('/').map_or(server_host, |(_, h)| h).to_ascii_lowercase();
    let vh = vs_host.to_ascii_lowercase();
    if sh == "*" || sh == vh {
        return true;
    }
    match sh.strip_prefix('*') {
        Some(suffix) => vh.ends_with(suffix) || vh.strip_prefix('*').is_some_and(|v| v.ends_with(suffix)),
        None => false,
    }
}

/// How a Gateway server port is served: HTTP routing (plain, or after TLS termination), TCP
/// (plain or terminated), or TLS passed through by SNI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Serves {
    Http,
    Tcp,
    Passthrough,
}

fn serves(server: &GatewayServer) -> Serves {
    let protocol = server.port.protocol.to_ascii_uppercase();
    let terminated =
        server.tls.as_ref().is_some_and(|t| GatewayTlsMode::parse(&t.mode()).is_some_and(GatewayTlsMode::terminates));
    match protocol.as_str() {
        "HTTP" | "HTTP2" | "GRPC" | "GRPC-WEB" => Serves::Http,
        "HTTPS" if terminated => Serves::Http,
        "HTTPS" | "TLS" if !terminated => Serves::Passthrough,
        _ => Serves::Tcp,
    }
}

/// The Gateways that select `proxy`, with their servers.
fn selecting<'a, 'i>(
    index: &'i Index<'a>,
    proxy: &'i Workload,
) -> impl Iterator<Item = (&'a Key, &'a Object<GatewaySpec>)> + 'i {
    index
        .gateways
        .iter()
        .copied()
        .filter(|(_, gw)| !gw.spec.selector.is_empty() && labels_match(&gw.spec.selector, &proxy.labels))
}

pub(super) fn routes(
    index: &Index<'_>,
    proxy: &Workload,
    wanted: &mut BTreeSet<(String, u16, Option<String>)>,
) -> (Vec<VirtualHost>, Vec<TcpService>) {
    let mut vhosts = Vec::new();
    let mut tcp = Vec::new();
    for (gk, gw) in selecting(index, proxy) {
        let scope = Scope::Gateway { namespace: &gk.namespace, name: &gk.name };
        for server in &gw.spec.servers {
            let Ok(port) = u16::try_from(server.port.number) else { continue };
            let bound = index
                .virtual_services
                .iter()
                .filter(|(k, vs)| scope.admits(&vs.spec.gateways, &k.namespace) && !vs.spec.hosts.is_empty());
            let redirect = server.tls.as_ref().is_some_and(|t| t.https_redirect == Some(true));
            match serves(server) {
                Serves::Http => {
                    for (k, vs) in bound {
                        let hosts: Vec<String> = vs
                            .spec
                            .hosts
                            .iter()
                            .filter(|h| server.hosts.iter().any(|sh| host_admits(sh, h)))
                            .map(|h| h.to_ascii_lowercase())
                            .collect();
                        if hosts.is_empty() {
                            continue;
                        }
                        let routes = if redirect && server.port.protocol.eq_ignore_ascii_case("HTTP") {
                            // `httpsRedirect`: every request gets 301 to https (Envoy's require_tls).
                            vec![https_redirect()]
                        } else {
                            http_routes(index, k, vs, port, proxy, &scope, wanted)
                        };
                        if routes.is_empty() {
                            continue;
                        }
                        vhosts.push(VirtualHost {
                            name: format!("{}/{} :{port} {}", gk.namespace, gk.name, hosts.join(",")),
                            domains: hosts,
                            port,
                            routes,
                        });
                    }
                }
                Serves::Passthrough => {
                    // `tls` rules bound here route by the ClientHello's SNI; the bytes pass as they are.
                    let mut sni = Vec::new();
                    for (k, vs) in bound {
                        for (i, r) in vs.spec.tls.iter().enumerate() {
                            let hosts: Vec<String> = r
                                .matches
                                .iter()
                                .filter(|m| {
                                    m.port.is_none_or(|p| p == u32::from(port))
                                        && (m.gateways.is_empty() || scope.admits(&m.gateways, &k.namespace))
                                })
                                .flat_map(|m| m.sni_hosts.iter())
                                .filter(|h| server.hosts.iter().any(|sh| host_admits(sh, h)))
                                .map(|h| h.to_ascii_lowercase())
                                .collect();
                            if hosts.is_empty() || r.route.is_empty() {
                                continue;
                            }
                            sni.push(SniRoute {
                                name: format!("{}/{} tls[{i}]", k.namespace, k.name),
                                sni_hosts: hosts,
                                clusters: index.l4_clusters(&r.route, &k.namespace, port, wanted),
                            });
                        }
                    }
                    // AUTO_PASSTHROUGH (Istio's east-west gateways): the SNI itself names the
                    // service, port and subset (`outbound_.PORT_.SUBSET_.HOST`), no rule needed.
                    if server.tls.as_ref().is_some_and(|t| t.mode() == "AUTO_PASSTHROUGH") {
                        sni.extend(index.auto_passthrough_routes(server, &gk.namespace, wanted));
                    }
                    if !sni.is_empty() {
                        tcp.push(TcpService {
                            name: format!("{}/{} :{port}", gk.namespace, gk.name),
                            domains: vec!["*".into()],
                            port,
                            route: "sni".into(),
                            clusters: Vec::new(),
                            sni,
                        });
                    }
                }
                Serves::Tcp => {
                    // TCP (and TLS terminated here, and MONGO): the first tcp rule bound here.
                    let rule = bound
                        .flat_map(|(k, vs)| vs.spec.tcp.iter().enumerate().map(move |(i, r)| (*k, i, r)))
                        .find(|(k, _, r)| {
                            !r.route.is_empty()
                                && (r.matches.is_empty()
                                    || r.matches.iter().any(|m| {
                                        m.port.is_none_or(|p| p == u32::from(port))
                                            && (m.gateways.is_empty() || scope.admits(&m.gateways, &k.namespace))
                                            && (m.source_labels.is_empty()
                                                || labels_match(&m.source_labels, &proxy.labels))
                                    }))
                        });
                    let Some((k, i, r)) = rule else { continue };
                    let clusters = index.l4_clusters(&r.route, &k.namespace, port, wanted);
                    tcp.push(TcpService {
                        name: format!("{}/{} :{port}", gk.namespace, gk.name),
                        domains: vec!["*".into()],
                        port,
                        route: format!("{}/{} tcp[{i}]", k.namespace, k.name),
                        clusters,
                        sni: Vec::new(),
                    });
                }
            }
        }
    }
    (vhosts, tcp)
}

impl<'a> Index<'a> {
    /// One SNI route per service the server's hosts admit, per port and per subset of the
    /// service's DestinationRule (as the gateway's namespace sees it).
    fn auto_passthrough_routes(
        &self,
        server: &GatewayServer,
        gateway_ns: &str,
        wanted: &mut BTreeSet<(String, u16, Option<String>)>,
    ) -> Vec<SniRoute> {
        let mut out = Vec::new();
        for svc in self.services.values() {
            if !server.hosts.iter().any(|sh| host_admits(sh, &svc.fqdn)) {
                continue;
            }
            let subsets: Vec<Option<String>> = std::iter::once(None)
                .chain(
                    self.destination_rule(svc, gateway_ns)
                        .into_iter()
                        .flat_map(|dr| dr.spec.subsets.iter().map(|s| Some(s.name.clone()))),
                )
                .collect();
            for sp in super::service_ports(&svc.spec) {
                let Ok(port) = u16::try_from(sp.port) else { continue };
                for subset in &subsets {
                    wanted.insert((svc.fqdn.clone(), port, subset.clone()));
                    let name = format!("outbound_.{port}_.{}_.{}", subset.as_deref().unwrap_or(""), svc.fqdn);
                    out.push(SniRoute {
                        name: format!("auto-passthrough {name}"),
                        sni_hosts: vec![name],
                        clusters: vec![mesh_api::proxy_config::WeightedCluster {
                            cluster: mesh_api::proxy_config::cluster_name(&svc.fqdn, port, subset.as_deref()),
                            weight: 100,
                            request_headers: Default::default(),
                            response_headers: Default::default(),
                        }],
                    });
                }
            }
        }
        out
    }
}

/// Envoy's `require_tls: ALL`: a 301 to the same host and path over https.
fn https_redirect() -> Route {
    Route {
        name: "https-redirect".into(),
        redirect: Some(Redirect {
            uri: None,
            prefix: false,
            authority: None,
            port: None,
            scheme: Some("https".into()),
            status: 301,
        }),
        ..Default::default()
    }
}

/// The TLS settings of the servers of the Gateways selecting `proxy`: one entry per server that
/// takes TLS. A credential that cannot be found leaves the server with an error (its
/// handshakes fail, as Envoy's listener without its secret does).
pub(super) fn tls_servers(index: &Index<'_>, proxy: &Workload) -> Vec<GatewayTls> {
    let mut out = Vec::new();
    for (gk, gw) in selecting(index, proxy) {
        for (i, server) in gw.spec.servers.iter().enumerate() {
            let Ok(port) = u16::try_from(server.port.number) else { continue };
            let Some(t) = &server.tls else { continue };
            if !matches!(server.port.protocol.to_ascii_uppercase().as_str(), "HTTPS" | "TLS") {
                continue; // httpsRedirect on an HTTP server: a route, not a listener setting
            }
            let Some(mode) = GatewayTlsMode::parse(&t.mode()) else { continue };
            let more = match mode {
                GatewayTlsMode::Simple | GatewayTlsMode::Mutual | GatewayTlsMode::OptionalMutual => {
                    credentials::more_servers(index.credentials, &proxy.namespace, t)
                }
                _ => Ok(Vec::new()),
            };
            let (credential, error) = match mode {
                GatewayTlsMode::Simple | GatewayTlsMode::Mutual | GatewayTlsMode::OptionalMutual => {
                    match credentials::server(index.credentials, &proxy.namespace, t) {
                        Ok(c) if mode != GatewayTlsMode::Simple && c.ca.is_none() => {
                            (Some(c), Some("MUTUAL TLS needs a client CA bundle (ca.crt or NAME-cacert)".to_string()))
                        }
                        Ok(c) => (Some(c), None),
                        Err(e) => (None, Some(e)),
                    }
                }
                _ => (None, None),
            };
            let (more_credentials, error) = match more {
                Ok(m) => (m, error),
                Err(e) => (Vec::new(), error.or(Some(e))),
            };
            let version = |v: &Option<String>| v.clone().filter(|v| v != "TLS_AUTO");
            out.push(GatewayTls {
                port,
                name: format!("{}/{} servers[{i}]", gk.namespace, gk.name),
                hosts: server
                    .hosts
                    .iter()
                    .map(|h| h.split_once('/').map_or(h.as_str(), |(_, h)| h).to_ascii_lowercase())
                    .collect(),
                mode,
                credential,
                more_credentials,
                min_version: version(&t.min_protocol_version),
                max_version: version(&t.max_protocol_version),
                cipher_suites: t.cipher_suites.clone(),
                subject_alt_names: t.subject_alt_names.clone(),
                verify_certificate_spki: t.verify_certificate_spki.clone(),
                verify_certificate_hash: t.verify_certificate_hash.clone(),
                ecdh_curves: t.ecdh_curves.clone(),
                error,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::host_admits;

    #[test]
    fn server_hosts_admit_virtual_service_hosts() {
        assert!(host_admits("*", "bookinfo.example.com"));
        assert!(host_admits("default/*.example.com", "bookinfo.example.com"));
        assert!(host_admits("bookinfo.example.com", "BOOKINFO.example.com"));
        assert!(!host_admits("*.example.com", "example.org"));
        assert!(!host_admits("a.example.com", "b.example.com"));
    }
}
