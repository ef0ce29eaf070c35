//! TCP service ports: VirtualService `tcp` rules (first match by port, source labels and
//! namespace) split connections between destinations by weight.

use std::collections::BTreeSet;

use mesh_api::networking::{L4MatchAttributes, VirtualServiceSpec};
use mesh_api::protocol::Workload;
use mesh_api::proxy_config::{HeaderOps, SniRoute, TcpService, WeightedCluster, cluster_name};
use mesh_api::{Key, Object};

use super::{Index, Svc, labels_match};

fn l4_matches(m: &L4MatchAttributes, port: u16, proxy: &Workload) -> bool {
    m.port.is_none_or(|p| p == u32::from(port))
        && (m.source_labels.is_empty() || labels_match(&m.source_labels, &proxy.labels))
        && m.source_namespace.as_deref().is_none_or(|ns| ns == proxy.namespace)
        && (m.gateways.is_empty() || m.gateways.iter().any(|g| g == "mesh"))
}

pub(super) fn service(
    index: &Index<'_>,
    svc: &Svc<'_>,
    port: u16,
    vs: Option<(&Key, &Object<VirtualServiceSpec>)>,
    tls_vs: Option<(&Key, &Object<VirtualServiceSpec>)>,
    proxy: &Workload,
    wanted: &mut BTreeSet<(String, u16, Option<String>)>,
) -> TcpService {
    let rule = vs.and_then(|(key, vs)| {
        vs.spec
            .tcp
            .iter()
            .enumerate()
            .find(|(_, r)| {
                !r.route.is_empty() && (r.matches.is_empty() || r.matches.iter().any(|m| l4_matches(m, port, proxy)))
            })
            .map(|(i, r)| (key, i, r))
    });
    let (route, clusters) = match rule {
        Some((key, i, r)) => (
            format!("{}/{} tcp[{i}]", key.namespace, key.name),
            index.l4_clusters(&r.route, &key.namespace, port, wanted),
        ),
        None => {
            let all = WeightedCluster {
                cluster: cluster_name(&svc.fqdn, port, None),
                weight: 100,
                request_headers: HeaderOps::default(),
                response_headers: HeaderOps::default(),
            };
            ("default".to_string(), vec![all])
        }
    };
    // `tls` rules: routes by the SNI of the ClientHello (TLS passes through untouched).
    let mut sni = Vec::new();
    if let Some((key, vs)) = tls_vs {
        for (i, r) in vs.spec.tls.iter().enumerate() {
            let applicable: Vec<_> = r
                .matches
                .iter()
                .filter(|m| {
                    m.port.is_none_or(|p| p == u32::from(port))
                        && (m.source_labels.is_empty() || labels_match(&m.source_labels, &proxy.labels))
                        && m.source_namespace.as_deref().is_none_or(|ns| ns == proxy.namespace)
                        && (m.gateways.is_empty() || m.gateways.iter().any(|g| g == "mesh"))
                })
                .collect();
            if applicable.is_empty() {
                continue;
            }
            let clusters = index.l4_clusters(&r.route, &key.namespace, port, wanted);
            sni.push(SniRoute {
                name: format!("{}/{} tls[{i}]", key.namespace, key.name),
                sni_hosts: applicable.iter().flat_map(|m| m.sni_hosts.iter().map(|h| h.to_ascii_lowercase())).collect(),
                clusters,
            });
        }
    }
    TcpService {
        name: format!("{}:{port}", svc.fqdn),
        domains: svc.domains(&proxy.namespace),
        port,
        route,
        clusters,
        sni,
    }
}
