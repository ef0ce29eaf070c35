//! Connections that stop being HTTP: Upgrade (WebSocket) and CONNECT tunnels.

use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use tracing::debug;

use crate::config::Snapshot;

use crate::http::{Head, local_answer, local_reply, upstream_failure};
use crate::upstream::client::send_inner;
use crate::upstream::pool::Pool;
use crate::{Body, Shared};

/// Pass an Upgrade through to `target`; once it answers 101, copy bytes both ways between
/// the two upgraded connections until either side closes.
pub(crate) async fn tunnel(pool: &Pool, mut req: Request<Incoming>, target: &str, tls: bool) -> Response<Body> {
    let downstream = hyper::upgrade::on(&mut req);
    let mut resp = match send_inner(pool, req.map(Either::Left), target, None, tls, true).await {
        Ok(r) => r,
        Err(e) => return upstream_failure(e),
    };
    if resp.status() != StatusCode::SWITCHING_PROTOCOLS {
        return resp.map(Either::Left);
    }
    let upstream = hyper::upgrade::on(&mut resp);
    let (parts, _) = resp.into_parts();
    tokio::spawn(async move {
        match tokio::try_join!(downstream, upstream) {
            Ok((d, u)) => {
                let (mut d, mut u) = (hyper_util::rt::TokioIo::new(d), hyper_util::rt::TokioIo::new(u));
                let _ = tokio::io::copy_bidirectional(&mut d, &mut u).await;
            }
            Err(e) => debug!(error = %e, "upgrade failed"),
        }
    });
    Response::from_parts(parts, Either::Right(Full::new(Bytes::new())))
}

/// `CONNECT host:port` (an app's `HTTPS_PROXY`): a TCP tunnel to the host, chosen as for any
/// outbound TCP connection: a ServiceEntry's or mesh service's TCP route, else the host itself
/// under ALLOW_ANY; refused under REGISTRY_ONLY (502, Envoy's BlackHoleCluster). Counted in
/// `istio_tcp_*` and logged (the CONNECT as a request, the tunnel as a TCP connection).
pub(crate) async fn connect_tunnel(
    shared: Arc<Shared>,
    snapshot: Arc<Snapshot>,
    mut req: Request<Incoming>,
    started: std::time::Instant,
) -> Response<Body> {
    let head = Head::of(&req);
    // host:port only: no user information (RFC 9110 §9.3.6), a port, and nothing else.
    let target = req.uri().authority().filter(|a| !a.as_str().contains('@') && req.uri().path_and_query().is_none());
    let Some((host, port)) = target.and_then(|a| Some((a.host().to_ascii_lowercase(), a.port_u16()?))) else {
        let resp = local_reply(StatusCode::BAD_REQUEST, "CONNECT needs a host:port target\n");
        return local_answer(&shared, &snapshot, &head, resp, "-", "", "", started);
    };
    let service = snapshot.tcp_service(&host, port).cloned();
    if let Some(tls) = service.as_ref().filter(|t| !t.sni.is_empty()).cloned() {
        // TLS routes pick by SNI, and the ClientHello only comes once the tunnel is open:
        // answer, read it inside the tunnel, then connect where its SNI leads.
        let on_upgrade = hyper::upgrade::on(&mut req);
        let tunnel_shared = shared.clone();
        let target = host.clone();
        tokio::spawn(async move {
            let Ok(upgraded) = on_upgrade.await else { return };
            let mut downstream = hyper_util::rt::TokioIo::new(upgraded);
            let mut hello = Vec::new();
            let sni = crate::tls::read_sni(&mut downstream, &mut hello).await;
            let shared = tunnel_shared;
            let snapshot = shared.snapshot.load_full();
            let cluster = tls.pick_by_sni(sni.as_deref()).cloned();
            match crate::upstream::tcp::tcp_upstream(&shared, &snapshot, &target, port, None, cluster).await {
                Ok(up) => {
                    drop(snapshot);
                    relay_tunnel(&shared, &mut downstream, up, &hello).await;
                }
                Err(why) => {
                    shared.metrics.upstream_error("connect_failure");
                    debug!(host = %target, port, ?sni, ?why, "CONNECT tunnel: no upstream for this SNI; closing it");
                }
            }
        });
        let resp = Response::new(Either::Right(Full::new(Bytes::new())));
        return local_answer(&shared, &snapshot, &head, resp, "-", &host, "", started);
    }
    let cluster = service.and_then(|t| t.pick_cluster().cloned());
    let up = match crate::upstream::tcp::tcp_upstream(&shared, &snapshot, &host, port, None, cluster).await {
        Ok(up) => up,
        Err(why) => {
            let (status, flags, cluster, body) = match why {
                crate::upstream::tcp::TcpRefusal::RegistryOnly => {
                    (StatusCode::BAD_GATEWAY, "-", "BlackHoleCluster", "no service for this host (REGISTRY_ONLY)\n")
                }
                crate::upstream::tcp::TcpRefusal::Loop => {
                    (StatusCode::LOOP_DETECTED, "-", "", "addressed to this proxy\n")
                }
                crate::upstream::tcp::TcpRefusal::NoEndpoint => {
                    (StatusCode::SERVICE_UNAVAILABLE, "UH", "", "no healthy upstream\n")
                }
                crate::upstream::tcp::TcpRefusal::Connect(e) => {
                    debug!(%host, port, error = %e, "CONNECT upstream failed");
                    (StatusCode::SERVICE_UNAVAILABLE, "UF", "", "upstream connect error\n")
                }
            };
            return local_answer(&shared, &snapshot, &head, local_reply(status, body), flags, "", cluster, started);
        }
    };
    let on_upgrade = hyper::upgrade::on(&mut req);
    let (service, cluster) = (up.labels.destination_service.clone(), up.upstream_cluster.clone());
    let tunnel_shared = shared.clone();
    tokio::spawn(async move {
        let Ok(upgraded) = on_upgrade.await else { return };
        relay_tunnel(&tunnel_shared, &mut hyper_util::rt::TokioIo::new(upgraded), up, &[]).await;
    });
    let resp = Response::new(Either::Right(Full::new(Bytes::new())));
    local_answer(&shared, &snapshot, &head, resp, "-", &service, &cluster, started)
}

/// Carry an open CONNECT tunnel's bytes both ways until either side closes, starting with
/// `read` (what was already read from the client); counted in `istio_tcp_*` and logged as a
/// TCP connection.
async fn relay_tunnel<D>(shared: &Shared, downstream: &mut D, mut up: crate::upstream::tcp::TcpUpstream, read: &[u8])
where
    D: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    use tokio::io::AsyncWriteExt;
    shared.metrics.tcp_opened(&up.labels);
    let opened = std::time::SystemTime::now();
    let clock = std::time::Instant::now();
    let (received, sent) = match up.stream.write_all(read).await {
        Ok(()) => match tokio::io::copy_bidirectional(downstream, &mut up.stream).await {
            Ok((received, sent)) => (received + read.len() as u64, sent),
            Err(_) => (read.len() as u64, 0),
        },
        Err(_) => (0, 0),
    };
    let target = (up.upstream_host.as_str(), up.upstream_cluster.as_str());
    crate::telemetry::access::tcp_closed(
        shared,
        &up.labels,
        "outbound",
        opened,
        clock.elapsed(),
        (received, sent),
        target,
    );
}
