//! The HTTP request path: outbound (route by VirtualService rules, pick a cluster and an
//! endpoint, forward it) and inbound (policy, then the app). Local replies and what both
//! directions share live here.

pub(crate) mod filters;
pub mod inbound;
pub mod normalize;
pub mod outbound;
pub(crate) mod tunnel;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Request, Response, StatusCode};
use http_body_util::{Either, Full};
use hyper::body::Body as _;
use hyper::body::Incoming;

use crate::config::Snapshot;
use crate::upstream::client::UpstreamError;
use crate::{Body, Shared};

/// A response made by the proxy itself, with Envoy's wording where Envoy has one.
pub fn local_reply(status: StatusCode, body: &'static str) -> Response<Body> {
    let mut r = Response::new(Either::Right(Full::new(Bytes::from_static(body.as_bytes()))));
    *r.status_mut() = status;
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    r
}

pub(crate) static GRPC_STATUS: header::HeaderName = header::HeaderName::from_static("grpc-status");

pub(crate) static XFCC: header::HeaderName = header::HeaderName::from_static("x-forwarded-client-cert");

/// The header that marks a request with each proxy's outbound side it went through, since the
/// last app. A proxy that finds its own mark is forwarding in a loop.
pub static VIA_HEADER: header::HeaderName = header::HeaderName::from_static("x-mesh-via");

/// More outbound hops than this without an app in between is a loop too.
const MAX_VIA_HOPS: usize = 8;

/// Whether a request has already passed this proxy's outbound side (or too many proxies): a
/// loop. Otherwise this proxy's mark is added.
pub(crate) fn is_loop(shared: &Shared, headers: &mut HeaderMap) -> bool {
    let mut hops = 0;
    let mut seen_self = false;
    for v in headers.get_all(&VIA_HEADER) {
        for mark in v.as_bytes().split(|&b| b == b',') {
            hops += 1;
            seen_self |= mark.trim_ascii() == shared.via.as_bytes();
        }
    }
    if seen_self || hops >= MAX_VIA_HOPS {
        shared.metrics.downstream_rejected("outbound", "loop");
        return true;
    }
    if hops == 0 {
        // The common case: a shared value, no allocation.
        headers.insert(&VIA_HEADER, shared.via_header.clone());
    } else if let Some(v) = headers.get(&VIA_HEADER).and_then(|v| v.to_str().ok())
        && let Ok(marks) = HeaderValue::from_str(&format!("{v},{}", shared.via))
    {
        headers.insert(&VIA_HEADER, marks);
    }
    false
}

pub(crate) fn loop_detected() -> Response<Body> {
    local_reply(
        StatusCode::LOOP_DETECTED,
        "forwarding loop detected: the request came back to the proxy that sent it\n",
    )
}

/// The answer to a request refused before routing (see `normalize::prepare`).
pub(crate) fn refusal(r: normalize::Refusal) -> Response<Body> {
    let mut resp = local_reply(r.status, r.body);
    if let Some(l) = r.location.and_then(|l| HeaderValue::from_str(&l).ok()) {
        resp.headers_mut().insert(header::LOCATION, l);
    }
    resp
}

/// A local reply with a message made at run time.
pub fn local_reply_owned(status: StatusCode, body: String) -> Response<Body> {
    let mut r = Response::new(Either::Right(Full::new(Bytes::from(body))));
    *r.status_mut() = status;
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    r
}

pub(crate) fn upstream_failure(e: UpstreamError) -> Response<Body> {
    match e {
        UpstreamError::BadRequest => local_reply(StatusCode::BAD_REQUEST, "invalid request path\n"),
        _ => {
            local_reply(StatusCode::SERVICE_UNAVAILABLE, "upstream connect error or disconnect/reset before headers\n")
        }
    }
}

/// An HTTP/1.1 request asking to switch protocols (WebSocket and the like).
pub(crate) fn is_upgrade<B>(req: &Request<B>) -> bool {
    req.version() == http::Version::HTTP_11
        && req.headers().contains_key(header::UPGRADE)
        && req
            .headers()
            .get(header::CONNECTION)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case("upgrade")))
}

/// Requests with bodies up to this size are kept so they can be retried and mirrored.
pub(crate) const MAX_BUFFERED_BODY: u64 = 64 * 1024;

/// What the access log and the request metrics need of a request whose body is gone.
pub(crate) struct Head {
    method: http::Method,
    path: String,
    authority: String,
    h2: bool,
    request_id: String,
    grpc: bool,
    request_bytes: u64,
}

impl Head {
    fn of(req: &Request<Incoming>) -> Head {
        let h = req.headers();
        let text = |n: &str| h.get(n).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
        Head {
            method: req.method().clone(),
            path: req.uri().path_and_query().map(|p| p.as_str()).unwrap_or("/").to_string(),
            authority: text("host"),
            h2: req.version() == http::Version::HTTP_2,
            request_id: text("x-request-id"),
            grpc: h.get(header::CONTENT_TYPE).is_some_and(|v| v.as_bytes().starts_with(b"application/grpc")),
            request_bytes: h
                .get(header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
                .unwrap_or(0),
        }
    }
}

/// A reply the outbound side makes itself (a fault, no route, no healthy upstream, the
/// circuit breaker), or an upgraded session, counted in `istio_requests_total` and logged
/// like any request, with Envoy's response flag.
#[allow(clippy::too_many_arguments)]
pub(crate) fn local_answer(
    shared: &Shared,
    snapshot: &Snapshot,
    head: &Head,
    resp: Response<Body>,
    flags: &'static str,
    service: &str,
    cluster: &str,
    started: std::time::Instant,
) -> Response<Body> {
    let destination = crate::telemetry::metrics::unknown_peer();
    let record = crate::telemetry::metrics::RequestRecord {
        reporter: "source",
        source: &shared.me,
        source_principal: &shared.identity.uri,
        destination: &destination,
        destination_principal: "",
        // Without a service, the cluster names the destination (Istio's BlackHoleCluster).
        destination_service: [service, cluster].into_iter().find(|s| !s.is_empty()).unwrap_or("unknown"),
        protocol: if head.grpc { "grpc" } else { "http" },
        code: resp.status().as_u16(),
        flags,
        mtls: false,
        grpc_status: None,
        millis: started.elapsed().as_secs_f64() * 1000.0,
        request_bytes: head.request_bytes,
        response_bytes: resp.body().size_hint().exact().unwrap_or(0),
    };
    shared.metrics.record(&record);
    if shared.access_log_on(snapshot) {
        crate::telemetry::access::access_log(
            &record,
            &crate::telemetry::access::AccessEntry {
                direction: "outbound",
                method: head.method.as_str(),
                path: &head.path,
                authority: &head.authority,
                protocol: if head.h2 { "HTTP/2" } else { "HTTP/1.1" },
                request_id: &head.request_id,
                upstream_host: "",
                upstream_cluster: cluster,
            },
        );
    }
    resp
}

/// `f`'s output, or None when `limit` passes first. `f` is held in place and the timer is
/// boxed only when there is a limit, so a request future holding this is as big as `f` and
/// one pointer (a `Timeout` beside a bare `f` would hold two of them).
pub(crate) fn within<F: std::future::Future>(limit: Option<std::time::Duration>, f: F) -> Within<F> {
    Within { f, sleep: limit.map(|t| Box::pin(tokio::time::sleep(t))) }
}

pin_project_lite::pin_project! {
    pub(crate) struct Within<F> {
        #[pin]
        f: F,
        sleep: Option<std::pin::Pin<Box<tokio::time::Sleep>>>,
    }
}

impl<F: std::future::Future> std::future::Future for Within<F> {
    type Output = Option<F::Output>;

    fn poll(self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<Self::Output> {
        let this = self.project();
        if let std::task::Poll::Ready(out) = this.f.poll(cx) {
            return std::task::Poll::Ready(Some(out));
        }
        match this.sleep.as_mut().map(|s| s.as_mut().poll(cx)) {
            Some(std::task::Poll::Ready(())) => std::task::Poll::Ready(None),
            _ => std::task::Poll::Pending,
        }
    }
}
