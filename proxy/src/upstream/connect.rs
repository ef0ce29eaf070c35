//! Connecting to other proxies: plain TCP, or mutual TLS where the peer must present the
//! SPIFFE ID meshd says that endpoint runs as; the check runs after the handshake and before
//! any byte of a request or connection is written.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use arc_swap::ArcSwap;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use crate::config::Snapshot;
use crate::tls::{ALPN_PEER_EXCHANGE, Identity, peer_identity};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

pub enum Stream {
    Plain(TcpStream),
    /// An app's unix socket (a Sidecar ingress `defaultEndpoint`).
    Unix(tokio::net::UnixStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl AsyncRead for Stream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Unix(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Unix(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Unix(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Unix(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Stream::Unix(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Stream::Plain(s) => s.is_write_vectored(),
            Stream::Unix(s) => s.is_write_vectored(),
            Stream::Tls(s) => s.is_write_vectored(),
        }
    }
}

/// What the TLS client offers by ALPN.
#[derive(Debug, Clone, Copy)]
pub enum Alpn {
    Http11,
    H2,
    /// Raw TCP: nothing.
    None,
}

/// mTLS over a connected socket to another proxy, checking that it presents the identity
/// meshd says it runs as.
pub async fn handshake(
    identity: &Identity,
    snapshot: &ArcSwap<Snapshot>,
    tcp: TcpStream,
    alpn: Alpn,
) -> Result<Stream, BoxError> {
    let addr: SocketAddr = tcp.peer_addr()?;
    let (expected, sni) = snapshot
        .load()
        .peer(addr)
        .map(|p| (p.identity.clone(), p.sni.clone()))
        .ok_or_else(|| format!("no identity is known for endpoint {addr}"))?;
    let state = identity.state();
    let config = match alpn {
        Alpn::H2 => state.client_h2.clone(),
        Alpn::Http11 => state.client.clone(),
        Alpn::None => state.client_tcp.clone(),
    };
    drop(state);
    let config = config.ok_or("this proxy has no certificate yet; mTLS to other proxies is not possible")?;
    // The peer's certificate is checked against its SPIFFE identity, never this name: the
    // name is only the SNI (sent when a DestinationRule gives one; an IP address sends none).
    let name = match sni.as_deref().and_then(|s| rustls::pki_types::ServerName::try_from(s.to_string()).ok()) {
        Some(n) => n,
        None => rustls::pki_types::ServerName::IpAddress(addr.ip().into()),
    };
    let stream = tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .map_err(|e| format!("mTLS handshake with {addr} failed: {e}"))?;
    let got = peer_identity(stream.get_ref().1.peer_certificates());
    if got.as_deref() != Some(expected.as_ref()) {
        return Err(format!(
            "endpoint {addr} presented identity {}, but meshd says it runs as {expected}",
            got.as_deref().unwrap_or("(none)")
        )
        .into());
    }
    Ok(Stream::Tls(Box::new(stream)))
}

/// TLS to a server outside the mesh (DestinationRule TLS origination): its certificate is
/// checked as the origination's config says.
pub async fn originate(
    config: std::sync::Arc<rustls::ClientConfig>,
    name: rustls::pki_types::ServerName<'static>,
    tcp: TcpStream,
) -> Result<Stream, BoxError> {
    let addr = tcp.peer_addr()?;
    let shown = format!("{name:?}");
    let stream = tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .map_err(|e| format!("TLS origination to {addr} (SNI {shown}) failed: {e}"))?;
    Ok(Stream::Tls(Box::new(stream)))
}

/// Open a raw TCP connection to another proxy: mTLS when `mtls`, else plain.
pub async fn connect_tcp(
    identity: &Identity,
    snapshot: &ArcSwap<Snapshot>,
    addr: SocketAddr,
    mtls: bool,
) -> Result<Stream, BoxError> {
    let tcp = tokio::time::timeout(std::time::Duration::from_secs(5), TcpStream::connect(addr))
        .await
        .map_err(|_| format!("connect to {addr} timed out"))??;
    let _ = tcp.set_nodelay(true);
    if mtls { handshake(identity, snapshot, tcp, Alpn::None).await } else { Ok(Stream::Plain(tcp)) }
}

/// A plain TCP connection to a name (resolved now) or address: for hosts outside the mesh.
pub async fn connect_named(host: &str, port: u16) -> Result<Stream, BoxError> {
    let tcp = tokio::time::timeout(std::time::Duration::from_secs(5), TcpStream::connect((host, port)))
        .await
        .map_err(|_| format!("connect to {host}:{port} timed out"))??;
    let _ = tcp.set_nodelay(true);
    Ok(Stream::Plain(tcp))
}

/// The most a peer-exchange frame may carry (a workload's metadata is well under it).
const MAX_PEER_FRAME: usize = 1024;
/// How long the other side has to send its frame.
const PEER_FRAME_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Whether the peer agreed to exchange metadata on this connection (ALPN).
pub fn exchanges_peers(stream: &Stream) -> bool {
    matches!(stream, Stream::Tls(t) if t.get_ref().1.alpn_protocol() == Some(ALPN_PEER_EXCHANGE))
}

/// The client side of the exchange, on a connection where it was agreed: send `me`, read the
/// server's. Err: the server broke the exchange (the connection is unusable).
pub async fn exchange_as_client(stream: &mut Stream, me: &[u8]) -> io::Result<Vec<u8>> {
    write_frame(stream, me).await?;
    read_frame(stream).await
}

/// The server side: read the client's frame, send `me`.
pub async fn exchange_as_server<S>(stream: &mut S, me: &[u8]) -> io::Result<Vec<u8>>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let peer = read_frame(stream).await?;
    write_frame(stream, me).await?;
    Ok(peer)
}

async fn write_frame<S: AsyncWrite + Unpin>(stream: &mut S, bytes: &[u8]) -> io::Result<()> {
    use tokio::io::AsyncWriteExt;
    let bytes = &bytes[..bytes.len().min(MAX_PEER_FRAME)];
    let len = u16::try_from(bytes.len()).unwrap_or(0).to_be_bytes();
    let mut frame = Vec::with_capacity(2 + bytes.len());
    frame.extend_from_slice(&len);
    frame.extend_from_slice(bytes);
    stream.write_all(&frame).await?;
    stream.flush().await
}

async fn read_frame<S: AsyncRead + Unpin>(stream: &mut S) -> io::Result<Vec<u8>> {
    read_frame_within(stream, PEER_FRAME_WAIT).await
}

async fn read_frame_within<S: AsyncRead + Unpin>(stream: &mut S, wait: std::time::Duration) -> io::Result<Vec<u8>> {
    use tokio::io::AsyncReadExt;
    let read = async {
        let mut len = [0u8; 2];
        stream.read_exact(&mut len).await?;
        let len = usize::from(u16::from_be_bytes(len));
        if len > MAX_PEER_FRAME {
            return Err(io::Error::new(io::ErrorKind::InvalidData, format!("peer metadata of {len} bytes")));
        }
        let mut bytes = vec![0u8; len];
        stream.read_exact(&mut bytes).await?;
        Ok(bytes)
    };
    tokio::time::timeout(wait, read)
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "no peer metadata in time"))?
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncWriteExt;

    use super::*;

    #[tokio::test]
    async fn the_peer_exchange_takes_one_bounded_frame_each_way_and_refuses_the_rest() {
        // Both sides, over a pipe: each gets the other's value.
        let (mut a, mut b) = tokio::io::duplex(4096);
        let server = tokio::spawn(async move { exchange_as_server(&mut b, b"default/server").await });
        write_frame(&mut a, b"default/client").await.expect("client frame");
        assert_eq!(read_frame(&mut a).await.expect("server frame"), b"default/server");
        assert_eq!(server.await.expect("join").expect("exchange"), b"default/client");

        // A length over the bound, a frame cut short, and silence are each an error.
        let (mut a, mut b) = tokio::io::duplex(4096);
        a.write_all(&u16::MAX.to_be_bytes()).await.expect("write");
        assert_eq!(read_frame(&mut b).await.expect_err("too long").kind(), io::ErrorKind::InvalidData);
        let (mut a, mut b) = tokio::io::duplex(4096);
        a.write_all(&[0, 10, b'x']).await.expect("write");
        drop(a);
        assert_eq!(read_frame(&mut b).await.expect_err("cut short").kind(), io::ErrorKind::UnexpectedEof);
        let (_a, mut b) = tokio::io::duplex(4096);
        let silent = read_frame_within(&mut b, std::time::Duration::from_millis(50)).await;
        assert_eq!(silent.expect_err("silent").kind(), io::ErrorKind::TimedOut);
    }

    /// The mesh mTLS client sends a DestinationRule's ISTIO_MUTUAL `sni` (an egress gateway
    /// picks its server by it), and none otherwise; the server's identity is checked either way.
    #[tokio::test]
    async fn mesh_mtls_sends_the_destination_rules_sni() {
        let (bundle, issuer) = crate::tls::tests::root();
        let client = crate::tls::tests::issued("web", &bundle, &issuer);
        let server = crate::tls::tests::issued("egressgateway", &bundle, &issuer);
        let acceptor = tokio_rustls::TlsAcceptor::from(server.state().server.clone().expect("server config"));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let seen = tokio::spawn(async move {
            let mut names = Vec::new();
            for _ in 0..2 {
                let (tcp, _) = listener.accept().await.expect("accept");
                let tls = acceptor.accept(tcp).await.expect("handshake");
                names.push(tls.get_ref().1.server_name().map(str::to_string));
            }
            names
        });
        let snapshot = |sni: Option<&str>| {
            let raw: mesh_api::proxy_config::ProxyConfig = serde_json::from_value(serde_json::json!({
                "routes": {"virtual_hosts": []},
                "clusters": {"clusters": [{
                    "name": "outbound|80|edition|istio-egressgateway.istio-system.svc.cluster.local",
                    "service": "istio-egressgateway.istio-system.svc.cluster.local",
                    "port": 80, "lb_policy": "ROUND_ROBIN", "mesh_sni": sni,
                }]},
                "endpoints": {"clusters": {"outbound|80|edition|istio-egressgateway.istio-system.svc.cluster.local": [{
                    "address": addr.to_string(), "workload": "istio-system/egressgateway",
                    "identity": "spiffe://cluster.local/ns/default/sa/egressgateway", "mtls": true,
                }]}},
            }))
            .expect("config");
            ArcSwap::from_pointee(Snapshot::compile(raw, Default::default()).expect("compile"))
        };
        for sni in [Some("edition.example.com"), None] {
            let tcp = TcpStream::connect(addr).await.expect("connect");
            handshake(&client, &snapshot(sni), tcp, Alpn::Http11).await.expect("mesh handshake");
        }
        assert_eq!(seen.await.expect("server"), [Some("edition.example.com".to_string()), None]);
    }
}
