//! Transparent capture: connections the kernel redirected to the proxy (`proxy init`'s
//! iptables rules, like istio-init's). The original destination comes from `SO_ORIGINAL_DST`.
//!
//! Outbound (the app's connections, redirected to 15001): a connection that starts like HTTP is
//! served by the same request path as the outbound listener, with the original destination as
//! the port to route on (a Host header often carries none) and as the passthrough target;
//! anything else is TCP: to a mesh endpoint over mTLS, else passed through to where the app was
//! connecting (REGISTRY_ONLY closes it).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tracing::debug;

use crate::Shared;
use crate::listeners::Downstream;

/// The destination before the kernel's REDIRECT, or an error when the connection was not
/// redirected (or the socket has no such record).
pub fn original_dst(stream: &TcpStream) -> std::io::Result<SocketAddr> {
    let sock = socket2::SockRef::from(stream);
    let addr = if stream.local_addr()?.is_ipv6() { sock.original_dst_v6()? } else { sock.original_dst_v4()? };
    addr.as_socket().ok_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::InvalidData, "original destination is not an IP address")
    })
}

/// How long a client-first protocol has to send its first bytes before the connection is
/// treated as opaque TCP (server-first protocols such as MySQL never send first).
const DETECT_TIMEOUT: Duration = Duration::from_millis(100);

/// Does a connection's first bytes start an HTTP/1 request line or the HTTP/2 preface?
pub fn looks_like_http(first: &[u8]) -> bool {
    const STARTS: [&[u8]; 10] =
        [b"GET ", b"POST", b"PUT ", b"HEAD", b"DELE", b"OPTI", b"PATC", b"CONN", b"TRAC", b"PRI "];
    first.len() >= 4 && STARTS.iter().any(|s| first.starts_with(s))
}

/// Serve the outbound capture listener.
pub async fn serve_outbound(listener: TcpListener, shared: Arc<Shared>) {
    let state = shared.listener("captured_outbound");
    loop {
        let (stream, peer, permit) = crate::listeners::guard::accept(&listener, &state).await;
        let _ = stream.set_nodelay(true);
        let shared = shared.clone();
        tokio::spawn(async move {
            let dst = match original_dst(&stream) {
                Ok(d) => d,
                Err(e) => {
                    debug!(%peer, error = %e, "no original destination; closing");
                    return;
                }
            };
            if stream.local_addr().is_ok_and(|l| l == dst) {
                // Connected to the capture port itself: forwarding would loop.
                debug!(%peer, "connection to the capture port was not redirected; closing");
                return;
            }
            let mut first = [0u8; 4];
            let n = match tokio::time::timeout(DETECT_TIMEOUT, stream.peek(&mut first)).await {
                Ok(Ok(n)) => n,
                Ok(Err(_)) => return,
                Err(_) => 0, // the server speaks first
            };
            if looks_like_http(&first[..n]) {
                let from =
                    Downstream { client: peer, gateway_port: None, original_dst: Some(dst), listener_port: None };
                crate::listeners::guard::serve_http(stream, &permit, peer, move |req| {
                    crate::http::outbound::outbound(shared.clone(), from, req)
                })
                .await;
            } else {
                forward_tcp(&shared, stream, dst, &permit).await;
            }
        });
    }
}

/// Opaque TCP to where the app was connecting: a Service's cluster IP is routed like its name
/// (TCP routes, endpoints, mTLS), a mesh endpoint is reached over mTLS, anything else passes
/// through (REGISTRY_ONLY closes it). Counted in the `istio_tcp_*` metrics like every TCP path.
async fn forward_tcp(
    shared: &Shared,
    stream: TcpStream,
    dst: SocketAddr,
    permit: &crate::listeners::guard::ConnPermit,
) {
    crate::listeners::tcp::outbound_tcp(shared, stream, &dst.ip().to_string(), dst.port(), Some(dst), permit).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_is_told_from_other_protocols() {
        assert!(looks_like_http(b"GET / HTTP/1.1"));
        assert!(looks_like_http(b"PRI * HTTP/2.0"));
        assert!(!looks_like_http(b"\x16\x03\x01\x02"));
        assert!(!looks_like_http(b"GE"));
        assert!(!looks_like_http(b"hello"));
    }
}
