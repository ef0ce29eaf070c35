//! The HTTP request path: outbound (route by VirtualService rules, pick a cluster and an
//! endpoint, forward over a pooled connection) and inbound (forward to the app).

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Request, Response, StatusCode, Uri};
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::{Connect, HttpConnector};
use hyper_util::rt::TokioExecutor;
use mesh_api::host::split_host_port;
use tracing::debug;

use crate::authz::Decision;
use crate::connect::MeshConnector;
use crate::{PeerInfo, Shared};

pub type Body = Either<Incoming, Full<Bytes>>;
pub type HttpClient = Client<HttpConnector, Incoming>;
pub type MeshClient = Client<MeshConnector, Incoming>;

/// A pooled HTTP/1.1 keep-alive client to apps.
pub fn client() -> HttpClient {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector.set_connect_timeout(Some(std::time::Duration::from_secs(5)));
    let mut b = Client::builder(TokioExecutor::new());
    b.pool_idle_timeout(std::time::Duration::from_secs(60));
    b.build(connector)
}

/// A pooled client to other proxies: HTTP/1.1 keep-alive, or HTTP/2 (one multiplexed
/// connection per peer; ALPN `h2` over mTLS, prior knowledge on plaintext).
pub fn mesh_client(connector: MeshConnector, http2: bool) -> MeshClient {
    let mut b = Client::builder(TokioExecutor::new());
    b.pool_idle_timeout(std::time::Duration::from_secs(60));
    if http2 {
        b.http2_only(true).http2_adaptive_window(true);
    }
    b.build(connector)
}

/// A response made by the proxy itself, with Envoy's wording where Envoy has one.
pub fn local_reply(status: StatusCode, body: &'static str) -> Response<Body> {
    let mut r = Response::new(Either::Right(Full::new(Bytes::from_static(body.as_bytes()))));
    *r.status_mut() = status;
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    r
}

/// A local reply with a message made at run time.
pub fn local_reply_owned(status: StatusCode, body: String) -> Response<Body> {
    let mut r = Response::new(Either::Right(Full::new(Bytes::from(body))));
    *r.status_mut() = status;
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    r
}

/// Hop-by-hop headers (RFC 9110 §7.6.1) are for one connection only.
fn strip_hop_by_hop(h: &mut HeaderMap) {
    if let Some(conn) = h.get(header::CONNECTION).and_then(|v| v.to_str().ok()).map(str::to_owned) {
        for name in conn.split(',') {
            let name = name.trim();
            if !name.is_empty() {
                h.remove(name);
            }
        }
    }
    for name in [
        header::CONNECTION,
        header::TE,
        header::TRAILER,
        header::TRANSFER_ENCODING,
        header::UPGRADE,
        header::PROXY_AUTHORIZATION,
        header::PROXY_AUTHENTICATE,
    ] {
        h.remove(name);
    }
    h.remove("keep-alive");
    h.remove("proxy-connection");
}

/// Send `req` to `target`, keeping its path and Host header.
async fn forward<C>(
    client: &Client<C, Incoming>,
    mut req: Request<Incoming>,
    target: SocketAddr,
    tls: bool,
    version: http::Version,
) -> Response<Body>
where
    C: Connect + Clone + Send + Sync + 'static,
{
    // HTTP/2 carries the authority in the URI; keep the caller's Host header for the app.
    let path = req.uri().path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let scheme = if tls { "https" } else { "http" };
    let uri = match Uri::builder().scheme(scheme).authority(target.to_string()).path_and_query(path).build() {
        Ok(u) => u,
        Err(_) => return local_reply(StatusCode::BAD_REQUEST, "invalid request path\n"),
    };
    *req.uri_mut() = uri;
    *req.version_mut() = version;
    strip_hop_by_hop(req.headers_mut());
    match client.request(req).await {
        Ok(mut resp) => {
            strip_hop_by_hop(resp.headers_mut());
            resp.map(Either::Left)
        }
        Err(e) => {
            debug!(%target, error = %e, "upstream request failed");
            local_reply(StatusCode::SERVICE_UNAVAILABLE, "upstream connect error or disconnect/reset before headers\n")
        }
    }
}

/// The outbound listener's handler: origin-form (Host header) and absolute-form requests.
pub async fn outbound(shared: Arc<Shared>, mut req: Request<Incoming>) -> Response<Body> {
    if req.method() == http::Method::CONNECT {
        return local_reply(
            StatusCode::METHOD_NOT_ALLOWED,
            "CONNECT tunnels are not supported by the outbound listener\n",
        );
    }
    let endpoint = match route(&shared, &req) {
        Ok(e) => e,
        Err((status, body)) => return local_reply(status, body),
    };
    // Absolute form: the URI's authority is the Host upstream (RFC 9112 §3.2.2). Usually the
    // client sent the same Host header, and then there is nothing to copy.
    if let Some(a) = req.uri().authority()
        && req.headers().get(header::HOST).is_none_or(|h| h.as_bytes() != a.as_str().as_bytes())
        && let Ok(v) = HeaderValue::from_str(a.as_str())
    {
        req.headers_mut().insert(header::HOST, v);
    }
    let (target, mtls) = endpoint;
    if shared.upgrade_h2 || req.version() == http::Version::HTTP_2 {
        forward(&shared.mesh_h2, req, target, mtls, http::Version::HTTP_2).await
    } else {
        forward(&shared.mesh_h1, req, target, mtls, http::Version::HTTP_11).await
    }
}

/// Pick the endpoint for a request by the snapshot in force, or the local reply to send. No
/// allocation on the way; the snapshot is released when this returns, so in-flight requests
/// keep only what they picked.
fn route(shared: &Shared, req: &Request<Incoming>) -> Result<(SocketAddr, bool), (StatusCode, &'static str)> {
    let authority = match req.uri().authority() {
        Some(a) => a.as_str(),
        None => req
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .ok_or((StatusCode::BAD_REQUEST, "request has no Host header and no absolute URI\n"))?,
    };
    let (host, port) = split_host_port(authority);
    let port = port.unwrap_or(if req.uri().scheme_str() == Some("https") { 443 } else { 80 });
    let snapshot = shared.snapshot.load();
    let vhost = snapshot
        .vhost(host, port)
        .ok_or((StatusCode::NOT_FOUND, "no service matches this host and port in the mesh\n"))?;
    let path = req.uri().path();
    let route = vhost
        .routes
        .iter()
        .find(|r| r.matches.is_empty() || r.matches.iter().any(|m| m.matches(req.method(), path, req.headers())))
        .ok_or((StatusCode::NOT_FOUND, "no route matched\n"))?;
    let target = route
        .pick_cluster()
        .and_then(|c| c.pick())
        .ok_or((StatusCode::SERVICE_UNAVAILABLE, "no healthy upstream\n"))?;
    Ok((target, snapshot.peer(target).is_some_and(|p| p.mtls)))
}

/// An inbound listener's handler: authorization, then the app.
pub async fn inbound(
    shared: Arc<Shared>,
    app: SocketAddr,
    port: u16,
    peer: Arc<PeerInfo>,
    mut req: Request<Incoming>,
) -> Response<Body> {
    let snapshot = shared.snapshot.load_full();
    let jwt = if snapshot.jwt.is_empty() {
        None
    } else {
        let uri = req.uri().clone();
        match snapshot.jwt.authenticate(&shared.jwks, req.headers_mut(), &uri).await {
            Ok(v) => v,
            Err(why) => {
                debug!(path = req.uri().path(), %why, "request authentication failed");
                return local_reply_owned(StatusCode::UNAUTHORIZED, why);
            }
        }
    };
    if !snapshot.authz.is_empty() {
        let host = req
            .uri()
            .authority()
            .map(|a| a.as_str())
            .or_else(|| req.headers().get(header::HOST).and_then(|h| h.to_str().ok()));
        let decision = snapshot.authz.check(&crate::authz::Request {
            method: req.method().as_str(),
            path: req.uri().path(),
            host: host.unwrap_or(""),
            headers: req.headers(),
            port,
            peer: peer.identity.as_deref(),
            source_ip: peer.remote.ip(),
            destination_ip: peer.local.ip(),
            jwt: jwt.as_ref(),
        });
        if let Decision::Deny(why) = decision {
            debug!(peer = ?peer.identity, path = req.uri().path(), %why, "request denied");
            return local_reply(StatusCode::FORBIDDEN, "RBAC: access denied");
        }
    }
    drop(snapshot);
    // Tell the app who called, as Istio does (never trust one the caller sent).
    req.headers_mut().remove("x-forwarded-client-cert");
    if let Some(id) = &peer.identity
        && let Ok(v) = HeaderValue::from_str(&format!("By={};URI={id}", shared.identity.id))
    {
        req.headers_mut().insert("x-forwarded-client-cert", v);
    }
    forward(&shared.client, req, app, false, http::Version::HTTP_11).await
}
