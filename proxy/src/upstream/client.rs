//! Pooled HTTP clients to apps and peer proxies, and sending one request over them.

use std::time::Duration;

use http::header::{self, HeaderMap, HeaderValue};
use http::{Request, Response, StatusCode, Uri};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::{Connect, HttpConnector};
use hyper_util::rt::TokioExecutor;
use tracing::debug;

use crate::Body;
use crate::upstream::connect::MeshConnector;

pub type HttpClient = Client<HttpConnector, Body>;

pub type MeshClient = Client<MeshConnector, Body>;

/// A pooled client to apps: HTTP/1.1 keep-alive, or h2c with prior knowledge (gRPC).
pub fn client(http2: bool) -> HttpClient {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector.set_connect_timeout(Some(std::time::Duration::from_secs(5)));
    let mut b = Client::builder(TokioExecutor::new());
    b.pool_idle_timeout(std::time::Duration::from_secs(60));
    if http2 {
        b.http2_only(true);
    }
    b.build(connector)
}

/// Connects to one address whatever the request's URI says: the URI can then carry the
/// request's own authority (HTTP/2's `:authority`), as the app expects it.
#[derive(Clone)]
pub struct FixedConnector {
    inner: HttpConnector,
    target: Uri,
}

impl tower_service::Service<Uri> for FixedConnector {
    type Response = <HttpConnector as tower_service::Service<Uri>>::Response;
    type Error = <HttpConnector as tower_service::Service<Uri>>::Error;
    type Future = <HttpConnector as tower_service::Service<Uri>>::Future;

    fn poll_ready(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, _uri: Uri) -> Self::Future {
        self.inner.call(self.target.clone())
    }
}

pub type AppH2Client = Client<FixedConnector, Body>;

/// An h2c client to one app (`host:port`); requests name their own authority.
pub fn app_h2_client(app: &str) -> Option<AppH2Client> {
    let mut inner = HttpConnector::new();
    inner.set_nodelay(true);
    inner.set_connect_timeout(Some(std::time::Duration::from_secs(5)));
    let target = Uri::builder().scheme("http").authority(app).path_and_query("/").build().ok()?;
    let mut b = Client::builder(TokioExecutor::new());
    b.pool_idle_timeout(std::time::Duration::from_secs(60)).http2_only(true);
    Some(b.build(FixedConnector { inner, target }))
}

/// A pooled client to other proxies: HTTP/1.1 keep-alive, or HTTP/2 (one multiplexed
/// connection per peer; ALPN `h2` over mTLS, prior knowledge on plaintext).
pub fn mesh_client(connector: MeshConnector, http2: bool) -> MeshClient {
    mesh_client_with(connector, http2, Duration::from_secs(60), false)
}

/// A client to other proxies with a cluster's own pool settings.
pub fn mesh_client_with(connector: MeshConnector, http2: bool, idle: Duration, no_reuse: bool) -> MeshClient {
    let mut b = Client::builder(TokioExecutor::new());
    b.pool_idle_timeout(idle);
    if no_reuse {
        b.pool_max_idle_per_host(0);
    }
    if http2 {
        b.http2_only(true).http2_adaptive_window(true);
    }
    b.build(connector)
}

/// Whether `name` is a hop-by-hop header (RFC 9110 §7.6.1, and the legacy ones).
pub(crate) fn is_hop_by_hop(name: &header::HeaderName) -> bool {
    [
        header::CONNECTION,
        header::TE,
        header::TRAILER,
        header::TRANSFER_ENCODING,
        header::UPGRADE,
        header::PROXY_AUTHORIZATION,
        header::PROXY_AUTHENTICATE,
    ]
    .contains(name)
        || matches!(name.as_str(), "keep-alive" | "proxy-connection")
}

/// Hop-by-hop headers (RFC 9110 §7.6.1) are for one connection only.
pub(crate) fn strip_hop_by_hop(h: &mut HeaderMap) {
    // Most messages carry none: one look at each name, instead of a lookup per hop-by-hop
    // header (each hashing its name).
    if !h.keys().any(is_hop_by_hop) {
        return;
    }
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

/// Send `req` to `target`, keeping its path and Host header. Err: no response came (the
/// request could not be sent, or the connection failed before headers), with whether the
/// failure was in connecting.
pub(crate) async fn send<C>(
    client: &Client<C, Body>,
    req: Request<Body>,
    target: &str,
    tls: bool,
    version: http::Version,
) -> Result<Response<Incoming>, UpstreamError>
where
    C: Connect + Clone + Send + Sync + 'static,
{
    send_inner(client, req, target, tls, version, false).await
}

pub(crate) async fn send_inner<C>(
    client: &Client<C, Body>,
    mut req: Request<Body>,
    target: &str,
    tls: bool,
    version: http::Version,
    upgrade: bool,
) -> Result<Response<Incoming>, UpstreamError>
where
    C: Connect + Clone + Send + Sync + 'static,
{
    // HTTP/2 carries the authority in the URI; keep the caller's Host header for the app.
    // The path is moved over as it is (parsed once, when the request came in).
    let mut uri = http::uri::Parts::default();
    uri.scheme = Some(if tls { http::uri::Scheme::HTTPS } else { http::uri::Scheme::HTTP });
    uri.authority = Some(target.parse().map_err(|_| UpstreamError::BadRequest)?);
    uri.path_and_query =
        Some(req.uri().path_and_query().cloned().unwrap_or_else(|| http::uri::PathAndQuery::from_static("/")));
    *req.uri_mut() = Uri::from_parts(uri).map_err(|_| UpstreamError::BadRequest)?;
    *req.version_mut() = version;
    let upgrade_to = if upgrade { req.headers().get(header::UPGRADE).cloned() } else { None };
    // `te: trailers` is end to end in effect (gRPC requires it); other TE values are not.
    let trailers = req
        .headers()
        .get_all(header::TE)
        .iter()
        .any(|v| v.to_str().is_ok_and(|s| s.split(',').any(|t| t.trim().split(';').next() == Some("trailers"))));
    strip_hop_by_hop(req.headers_mut());
    if trailers {
        req.headers_mut().insert(header::TE, HeaderValue::from_static("trailers"));
    }
    // HTTP/2 carries one authority: when the URI has the request's own, no Host beside it.
    if version == http::Version::HTTP_2
        && req.headers().get(header::HOST).is_some_and(|h| h.as_bytes() == target.as_bytes())
    {
        req.headers_mut().remove(header::HOST);
    }
    if let Some(u) = upgrade_to {
        req.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        req.headers_mut().insert(header::UPGRADE, u);
    }
    match client.request(req).await {
        Ok(mut resp) => {
            if resp.status() != StatusCode::SWITCHING_PROTOCOLS {
                strip_hop_by_hop(resp.headers_mut());
            }
            Ok(resp)
        }
        Err(e) => {
            debug!(%target, error = %e, "upstream request failed");
            Err(if e.is_connect() { UpstreamError::Connect } else { UpstreamError::Reset })
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UpstreamError {
    Connect,
    Reset,
    BadRequest,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                header::HeaderName::from_bytes(k.as_bytes()).expect("name"),
                HeaderValue::from_str(v).expect("value"),
            );
        }
        h
    }

    #[test]
    fn hop_by_hop_headers_stop_at_this_hop_and_the_rest_go_on() {
        let mut h = headers(&[
            ("connection", "keep-alive, x-secret-hop"),
            ("keep-alive", "timeout=5"),
            ("x-secret-hop", "1"),
            ("proxy-connection", "keep-alive"),
            ("te", "trailers"),
            ("upgrade", "h2c"),
            ("proxy-authorization", "Basic eA=="),
            ("x-request-id", "abc"),
            ("content-type", "text/plain"),
        ]);
        strip_hop_by_hop(&mut h);
        let left: Vec<&str> = h.keys().map(|k| k.as_str()).collect();
        assert_eq!(left, ["x-request-id", "content-type"]);
        // Nothing hop-by-hop: nothing changes.
        let mut h = headers(&[("host", "reviews"), ("x-b3-sampled", "1")]);
        let before = h.clone();
        strip_hop_by_hop(&mut h);
        assert_eq!(h, before);
        // Only a header the Connection header names.
        let mut h = headers(&[("connection", "close"), ("close", "x")]);
        strip_hop_by_hop(&mut h);
        assert!(h.is_empty(), "{h:?}");
    }
}
