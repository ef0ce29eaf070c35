//! Sending one request upstream: the URI and headers as the next hop takes them, over a pool.

use http::header::{self, HeaderMap, HeaderValue};
use http::{Request, Response, StatusCode, Uri};
use hyper::body::Incoming;
use tracing::debug;

use crate::Body;
use crate::upstream::pool::{Pool, SendError};

/// The hop-by-hop headers hyper knows by name (RFC 9110 §7.6.1); `keep-alive` and
/// `proxy-connection` are the legacy ones beside them.
const HOP_BY_HOP: [header::HeaderName; 7] = [
    header::CONNECTION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
    header::PROXY_AUTHORIZATION,
    header::PROXY_AUTHENTICATE,
];

/// Whether `name` is a hop-by-hop header (RFC 9110 §7.6.1, and the legacy ones).
fn is_hop_by_hop(name: &header::HeaderName) -> bool {
    HOP_BY_HOP.contains(name) || matches!(name.as_str(), "keep-alive" | "proxy-connection")
}

/// Hop-by-hop headers (RFC 9110 §7.6.1) are for one connection only.
fn strip_hop_by_hop(h: &mut HeaderMap) {
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
    for name in HOP_BY_HOP {
        h.remove(name);
    }
    h.remove("keep-alive");
    h.remove("proxy-connection");
}

/// Send `req` over `pool` to `address` (`IP:port` or `name:port`), keeping its path and Host
/// header. HTTP/2 carries `authority` as `:authority` (the address when None); HTTP/1.1 gets it
/// as Host when the request has none. Err: no response came (the request could not be sent, or
/// the connection failed before headers), with whether the failure was in connecting.
pub(crate) async fn send(
    pool: &Pool,
    req: Request<Body>,
    address: &str,
    authority: Option<&str>,
    tls: bool,
) -> Result<Response<Incoming>, UpstreamError> {
    send_inner(pool, req, address, authority, tls, false).await
}

pub(crate) async fn send_inner(
    pool: &Pool,
    mut req: Request<Body>,
    address: &str,
    authority: Option<&str>,
    tls: bool,
    upgrade: bool,
) -> Result<Response<Incoming>, UpstreamError> {
    let h2 = pool.settings().h2 && !upgrade;
    let authority = authority.unwrap_or(address);
    // The path is moved over as it is (parsed once, when the request came in).
    let path = req.uri_mut().path_and_query().cloned().unwrap_or_else(|| http::uri::PathAndQuery::from_static("/"));
    *req.uri_mut() = if h2 {
        // HTTP/2 carries the authority in the URI; the caller's Host header stays for the app.
        let mut uri = http::uri::Parts::default();
        uri.scheme = Some(if tls { http::uri::Scheme::HTTPS } else { http::uri::Scheme::HTTP });
        uri.authority = Some(authority.parse().map_err(|_| UpstreamError::BadRequest)?);
        uri.path_and_query = Some(path);
        Uri::from_parts(uri).map_err(|_| UpstreamError::BadRequest)?
    } else {
        Uri::from(path)
    };
    *req.version_mut() = if h2 { http::Version::HTTP_2 } else { http::Version::HTTP_11 };
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
    if h2 {
        // HTTP/2 carries one authority: when the URI has the request's own, no Host beside it.
        if req.headers().get(header::HOST).is_some_and(|h| h.as_bytes() == authority.as_bytes()) {
            req.headers_mut().remove(header::HOST);
        }
    } else if !req.headers().contains_key(header::HOST) {
        let host = HeaderValue::from_str(authority).map_err(|_| UpstreamError::BadRequest)?;
        req.headers_mut().insert(header::HOST, host);
    }
    if let Some(u) = upgrade_to {
        req.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        req.headers_mut().insert(header::UPGRADE, u);
    }
    let sent = if upgrade { pool.send_upgrade(req, address, tls).await } else { pool.send(req, address, tls).await };
    match sent {
        Ok(mut resp) => {
            if resp.status() != StatusCode::SWITCHING_PROTOCOLS {
                strip_hop_by_hop(resp.headers_mut());
            }
            Ok(resp)
        }
        Err(e) => {
            debug!(%address, error = %e, "upstream request failed");
            Err(match e {
                SendError::Connect(_) => UpstreamError::Connect,
                SendError::Request(_) => UpstreamError::Reset,
            })
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
