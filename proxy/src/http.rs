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
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use mesh_api::host::split_host_port;
use tracing::debug;

use crate::Shared;

pub type Body = Either<Incoming, Full<Bytes>>;
pub type HttpClient = Client<HttpConnector, Incoming>;

/// A pooled client. `http2`: h2c with prior knowledge, so all requests to one peer share one
/// multiplexed connection; otherwise HTTP/1.1 keep-alive.
pub fn client(http2: bool) -> HttpClient {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector.set_connect_timeout(Some(std::time::Duration::from_secs(5)));
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
async fn forward(
    client: &HttpClient,
    mut req: Request<Incoming>,
    target: SocketAddr,
    version: http::Version,
) -> Response<Body> {
    // HTTP/2 carries the authority in the URI; keep the caller's Host header for the app.
    let path = req.uri().path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let uri = match Uri::builder().scheme("http").authority(target.to_string()).path_and_query(path).build() {
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
    let version = if shared.peer_http2 { http::Version::HTTP_2 } else { http::Version::HTTP_11 };
    forward(&shared.mesh_client, req, endpoint, version).await
}

/// Pick the endpoint for a request by the snapshot in force, or the local reply to send. No
/// allocation on the way; the snapshot is released when this returns, so in-flight requests
/// keep only what they picked.
fn route(shared: &Shared, req: &Request<Incoming>) -> Result<SocketAddr, (StatusCode, &'static str)> {
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
    route.pick_cluster().and_then(|c| c.pick()).ok_or((StatusCode::SERVICE_UNAVAILABLE, "no healthy upstream\n"))
}

/// An inbound listener's handler: everything goes to the app.
pub async fn inbound(shared: Arc<Shared>, app: SocketAddr, req: Request<Incoming>) -> Response<Body> {
    forward(&shared.client, req, app, http::Version::HTTP_11).await
}
