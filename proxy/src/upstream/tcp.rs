//! Choosing and connecting the upstream of an outbound TCP connection or CONNECT tunnel.

use std::net::SocketAddr;
use std::sync::Arc;

use crate::Shared;
use crate::telemetry::metrics;
use crate::upstream::connect;

/// Why an outbound TCP connection (or CONNECT tunnel) has no upstream.
#[derive(Debug)]
pub(crate) enum TcpRefusal {
    /// The service has no endpoint.
    NoEndpoint,
    /// An unknown host under REGISTRY_ONLY.
    RegistryOnly,
    /// Addressed to this proxy's own listener.
    Loop,
    /// Connecting failed.
    Connect(String),
}

/// An outbound TCP upstream, connected, with what its metrics and log lines say.
pub(crate) struct TcpUpstream {
    pub stream: connect::Stream,
    pub labels: metrics::TcpLabels,
    pub upstream_host: String,
    pub upstream_cluster: String,
    pub idle: Option<std::time::Duration>,
}

/// Connect an outbound TCP connection for `host:port` (`cluster`: the service's TCP route's
/// pick, if it has one): to an endpoint (over mTLS when it takes it), a mesh endpoint
/// addressed directly (`original`), or, for a passthrough ServiceEntry or an unknown host
/// under ALLOW_ANY, the host and port themselves.
pub(crate) async fn tcp_upstream(
    shared: &Shared,
    snapshot: &crate::config::Snapshot,
    host: &str,
    port: u16,
    original: Option<SocketAddr>,
    cluster: Option<Arc<crate::upstream::cluster::ClusterState>>,
) -> Result<TcpUpstream, TcpRefusal> {
    tcp_upstream_with(shared, snapshot, host, port, original, cluster, true).await
}

/// [`tcp_upstream`]; without `mesh_tls` the bytes go to the endpoint as they are, never
/// wrapped in the mesh's mTLS (AUTO_PASSTHROUGH: they already are the client sidecar's mTLS).
pub(crate) async fn tcp_upstream_with(
    shared: &Shared,
    snapshot: &crate::config::Snapshot,
    host: &str,
    port: u16,
    original: Option<SocketAddr>,
    cluster: Option<Arc<crate::upstream::cluster::ClusterState>>,
    mesh_tls: bool,
) -> Result<TcpUpstream, TcpRefusal> {
    // Where to connect: an endpoint (mTLS when it takes it), or, for a passthrough
    // ServiceEntry or an unknown host under ALLOW_ANY, the host and port themselves.
    let target = match &cluster {
        Some(c) if c.passthrough => None,
        Some(c) => match c.pick_index(None) {
            Some(i) => Some((c.endpoints[i].addr, c.endpoints[i].hostname.clone())),
            None => return Err(TcpRefusal::NoEndpoint),
        },
        None => match original {
            Some(addr) if snapshot.peer(addr).is_some() => Some((addr, None)),
            _ if snapshot.passthrough() => None,
            _ => return Err(TcpRefusal::RegistryOnly),
        },
    };
    if target.is_none() && shared.is_own_listener(&format!("{host}:{port}")) {
        return Err(TcpRefusal::Loop);
    }
    // The mesh endpoint connected to, if it is one: its identity and whether it takes mTLS.
    let peer = target.as_ref().and_then(|(a, _)| snapshot.peer(*a));
    let destination_principal = peer.map(|p| p.identity.to_string());
    let mtls = mesh_tls && peer.is_some_and(|p| p.mtls);
    let destination_service = cluster.as_ref().map(|c| c.service.clone()).unwrap_or_else(|| host.to_string());
    let upstream_cluster = cluster.as_ref().map(|c| c.name.clone()).unwrap_or_else(|| "PassthroughCluster".to_string());
    let upstream_host = match &target {
        Some((addr, _)) => addr.to_string(),
        None => format!("{host}:{port}"),
    };
    let connected = match target {
        Some((addr, None)) => connect::connect_tcp(&shared.identity, &shared.snapshot, addr, mtls).await,
        Some((addr, Some(name))) => connect::connect_named(&name, addr.port()).await,
        None => connect::connect_named(host, port).await,
    };
    let mut stream = connected.map_err(|e| TcpRefusal::Connect(e.to_string()))?;
    // DestinationRule TLS origination: the app's bytes go inside TLS to the endpoint.
    if let Some(origin) = cluster.as_ref().and_then(|c| c.origin.as_ref()) {
        let origin = origin.as_ref().map_err(|e| TcpRefusal::Connect(e.clone()))?;
        stream = match stream {
            connect::Stream::Plain(tcp) => connect::originate(origin.tcp.clone(), origin.server_name.clone(), tcp)
                .await
                .map_err(|e| TcpRefusal::Connect(e.to_string()))?,
            tls => tls,
        };
    }
    // A peer proxy that agreed to it says who it is before any byte of the connection.
    let mut destination = metrics::unknown_peer();
    if connect::exchanges_peers(&stream) {
        let me = shared.me_header.as_ref().map_or(&[][..], |h| h.as_bytes());
        let value = connect::exchange_as_client(&mut stream, me)
            .await
            .map_err(|e| TcpRefusal::Connect(format!("peer metadata exchange: {e}")))?;
        if let Some(p) = destination_principal.as_deref().and_then(|id| shared.peer_named(&value, id)) {
            destination = p;
        }
    }
    let labels = metrics::TcpLabels::new(
        "source",
        (&shared.me, &shared.identity.uri),
        (&destination, destination_principal.as_deref().unwrap_or("")),
        &destination_service,
        "unknown",
    );
    let idle = cluster.as_ref().and_then(|c| c.tcp_idle());
    Ok(TcpUpstream { stream, labels, upstream_host, upstream_cluster, idle })
}
