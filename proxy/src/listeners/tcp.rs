//! Outbound TCP: a local listener per TCP service, and relaying a connection to its upstream.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};
use tracing::debug;

use crate::listeners::guard;
use crate::telemetry::access::tcp_closed;
use crate::telemetry::metrics;
use crate::upstream::tcp::{TcpRefusal, tcp_upstream};
use crate::{Shared, tls};

/// A local TCP listener for one TCP service (`--outbound-tcp HOST:PORT=ADDR`).
pub(crate) async fn serve_outbound_tcp(listener: TcpListener, host: String, port: u16, shared: Arc<Shared>) {
    let host: Arc<str> = Arc::from(host.as_str());
    let state = shared.listener("outbound_tcp");
    loop {
        let (stream, _, permit) = guard::accept(&listener, &state).await;
        let _ = stream.set_nodelay(true);
        let (shared, host) = (shared.clone(), host.clone());
        tokio::spawn(async move {
            outbound_tcp(&shared, stream, &host, port, None, &permit).await;
        });
    }
}

/// One outbound TCP connection for `host:port` (a service name, or the address a captured
/// connection was going to: a Service's cluster IP or a pod's IP, `original`). It goes to an
/// endpoint picked by the service's TCP route, over mTLS when the endpoint takes it; a mesh
/// endpoint addressed directly is reached the same way; anything else is passed through
/// under ALLOW_ANY and closed under REGISTRY_ONLY.
pub(crate) async fn outbound_tcp(
    shared: &Shared,
    mut stream: TcpStream,
    host: &str,
    port: u16,
    original: Option<SocketAddr>,
    permit: &guard::ConnPermit,
) {
    let snapshot = shared.snapshot.load_full();
    let service = snapshot.tcp_service(host, port).cloned();
    let cluster = match &service {
        Some(t) if !t.sni.is_empty() => {
            let sni = tls::peek_sni(&stream).await;
            t.pick_by_sni(sni.as_deref()).cloned()
        }
        Some(t) => t.pick_cluster().cloned(),
        None => None,
    };
    let up = match tcp_upstream(shared, &snapshot, host, port, original, cluster).await {
        Ok(up) => up,
        Err(TcpRefusal::Loop) => {
            shared.metrics.downstream_rejected(permit.listener().name, "loop");
            debug!(%host, port, "TCP connection addressed to this proxy's own listener; closing it");
            return;
        }
        Err(why) => {
            debug!(%host, port, ?why, "no TCP upstream; closing the connection");
            return;
        }
    };
    drop(snapshot); // not held for the life of the connection
    let mut upstream = up.stream;
    let started = std::time::SystemTime::now();
    let target = (up.upstream_host, up.upstream_cluster.as_str());
    relay_tcp(shared, &mut stream, &mut upstream, &up.labels, "outbound", started, target, permit, up.idle).await;
}

/// Copy bytes both ways between a downstream connection and its upstream until both close,
/// counted in the `istio_tcp_*` metrics and, when access logging is on, logged at the end.
/// Bytes from downstream are "received", bytes to it "sent", as Istio counts them on both sides.
/// `target` is the upstream host and cluster, for the log. Closed after the idle timeout: `idle`
/// (the cluster's) when given, else the listener's.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn relay_tcp<D, U>(
    shared: &Shared,
    downstream: &mut D,
    upstream: &mut U,
    labels: &metrics::TcpLabels,
    direction: &'static str,
    started: std::time::SystemTime,
    target: (String, &str),
    permit: &guard::ConnPermit,
    idle: Option<std::time::Duration>,
) where
    D: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    U: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    shared.metrics.tcp_opened(labels);
    let clock = std::time::Instant::now();
    let (received, sent) = match guard::relay(downstream, upstream, permit, idle).await {
        Ok(n) => n,
        Err(e) => {
            debug!(error = %e, "TCP connection ended with an error");
            (0, 0)
        }
    };
    tcp_closed(shared, labels, direction, started, clock.elapsed(), (received, sent), (&target.0, target.1));
}
