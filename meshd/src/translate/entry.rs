//! ServiceEntry: hosts outside the mesh (or inside it, without sidecars) as services the
//! translator knows, so VirtualService routing, timeouts and retries apply to them.

use std::net::SocketAddr;

use mesh_api::core::{IntOrString, ServicePort, ServiceSpec};
use mesh_api::networking::ServiceEntrySpec;
use mesh_api::proxy_config::Endpoint;

/// The entry's ports as a Service's, named by protocol so the usual HTTP/TCP choice applies
/// (a port without a protocol is TCP, as Istio treats it).
pub(super) fn as_service(se: &ServiceEntrySpec) -> ServiceSpec {
    ServiceSpec {
        ports: se
            .ports
            .iter()
            .map(|p| {
                let proto = p.protocol.as_deref().unwrap_or("TCP").to_ascii_lowercase();
                let proto = match proto.as_str() {
                    "http" | "http2" | "grpc" | "grpc-web" => proto,
                    _ => "tcp".into(),
                };
                ServicePort {
                    name: Some(format!("{proto}-{}", p.name)),
                    port: p.number,
                    target_port: p.target_port.map(IntOrString::Int),
                    ..Default::default()
                }
            })
            .collect(),
        ..Default::default()
    }
}

/// The endpoints of the entry's `port`. Returns true when the cluster is a passthrough
/// (`resolution: NONE`, or DNS without endpoints): connect to the address the request named.
pub(super) fn endpoints(se: &ServiceEntrySpec, port: u16, out: &mut Vec<Endpoint>) -> bool {
    let Some(sp) = se.ports.iter().find(|p| p.number == i64::from(port)) else { return false };
    let target = |ep_ports: &std::collections::BTreeMap<String, i64>| {
        ep_ports.get(&sp.name).copied().or(sp.target_port).and_then(|p| u16::try_from(p).ok()).unwrap_or(port)
    };
    let resolution = se.resolution.as_deref().unwrap_or("NONE");
    match resolution {
        "STATIC" => {
            for ep in &se.endpoints {
                let Some(ip) = ep.address.as_deref().and_then(|a| a.parse::<std::net::IpAddr>().ok()) else { continue };
                out.push(Endpoint {
                    address: SocketAddr::new(ip, target(&ep.ports)),
                    workload: format!("ServiceEntry endpoint {ip}"),
                    identity: String::new(),
                    mtls: false,
                    hostname: None,
                });
            }
            false
        }
        "DNS" | "DNS_ROUND_ROBIN" | "DYNAMIC_DNS" if !se.endpoints.is_empty() => {
            for ep in &se.endpoints {
                let Some(addr) = ep.address.as_deref() else { continue };
                let port = target(&ep.ports);
                match addr.parse::<std::net::IpAddr>() {
                    Ok(ip) => out.push(Endpoint {
                        address: SocketAddr::new(ip, port),
                        workload: format!("ServiceEntry endpoint {ip}"),
                        identity: String::new(),
                        mtls: false,
                        hostname: None,
                    }),
                    Err(_) => out.push(Endpoint {
                        address: SocketAddr::from(([0, 0, 0, 0], port)),
                        workload: format!("ServiceEntry endpoint {addr}"),
                        identity: String::new(),
                        mtls: false,
                        hostname: Some(addr.to_ascii_lowercase()),
                    }),
                }
            }
            false
        }
        // DNS without endpoints resolves the host itself; NONE sends to where the request was
        // addressed. Both are "connect to the name in the request".
        _ => true,
    }
}
