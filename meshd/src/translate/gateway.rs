//! Ingress gateways: a proxy whose labels a Gateway selects serves that Gateway's servers,
//! with the VirtualServices bound to it (`gateways: [name]` or `[namespace/name]`).

use std::collections::BTreeSet;

use mesh_api::protocol::Workload;
use mesh_api::proxy_config::{TcpService, VirtualHost};

use super::http::Scope;
use super::{Index, http_routes, labels_match};

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

pub(super) fn routes(
    index: &Index<'_>,
    proxy: &Workload,
    wanted: &mut BTreeSet<(String, u16, Option<String>)>,
) -> (Vec<VirtualHost>, Vec<TcpService>) {
    let mut vhosts = Vec::new();
    let mut tcp = Vec::new();
    for (gk, gw) in &index.gateways {
        if gw.spec.selector.is_empty() || !labels_match(&gw.spec.selector, &proxy.labels) {
            continue;
        }
        let scope = Scope::Gateway { namespace: &gk.namespace, name: &gk.name };
        for server in &gw.spec.servers {
            let Ok(port) = u16::try_from(server.port.number) else { continue };
            let bound = index
                .virtual_services
                .iter()
                .filter(|(k, vs)| scope.admits(&vs.spec.gateways, &k.namespace) && !vs.spec.hosts.is_empty());
            let protocol = server.port.protocol.to_ascii_uppercase();
            if matches!(protocol.as_str(), "HTTP" | "HTTP2" | "GRPC" | "GRPC-WEB") {
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
                    let routes = http_routes(index, k, vs, port, proxy, &scope, wanted);
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
            } else {
                // TCP (and TLS/HTTPS/MONGO, passed through as TCP): the first tcp rule bound here.
                let rule = bound.flat_map(|(k, vs)| vs.spec.tcp.iter().enumerate().map(move |(i, r)| (*k, i, r))).find(
                    |(k, _, r)| {
                        !r.route.is_empty()
                            && (r.matches.is_empty()
                                || r.matches.iter().any(|m| {
                                    m.port.is_none_or(|p| p == u32::from(port))
                                        && (m.gateways.is_empty() || scope.admits(&m.gateways, &k.namespace))
                                        && (m.source_labels.is_empty() || labels_match(&m.source_labels, &proxy.labels))
                                }))
                    },
                );
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
    (vhosts, tcp)
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
