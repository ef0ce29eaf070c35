//! The inbound side: a peer's request, checked by the workload's policies (request
//! authentication, authorization, rate limit) and forwarded to the app.

use std::sync::Arc;

use http::header::{self, HeaderValue};
use http::{Request, Response, StatusCode};
use http_body_util::Either;
use hyper::body::Incoming;
use tracing::debug;

use crate::config::Snapshot;
use crate::http::tunnel::tunnel;
use crate::http::{
    GRPC_STATUS, VIA_HEADER, XFCC, is_upgrade, local_reply, local_reply_owned, normalize, refusal, upstream_failure,
};
use crate::policy::authz::Decision;
use crate::telemetry::access::{RequestDetails, span_tags};
use crate::upstream::client::send;
use crate::{Body, PeerInfo, Shared};

/// An inbound listener's handler: authorization, then the app.
pub async fn inbound(
    shared: Arc<Shared>,
    app: Arc<str>,
    port: u16,
    peer: Arc<PeerInfo>,
    mut req: Request<Incoming>,
) -> Response<Body> {
    let started = std::time::Instant::now();
    let start_time = std::time::SystemTime::now();
    let snapshot = shared.snapshot.load_full();
    // What policy judges is what the app gets: one authority, the normalized path.
    // From a mesh peer over mTLS the Host header is the caller's authority (the HTTP/2
    // `:authority` between proxies names the endpoint connected to).
    let prepared = if peer.identity.is_some() {
        normalize::prepare_from_peer(&mut req, snapshot.raw.listeners.path_normalization)
    } else {
        normalize::prepare(&mut req, snapshot.raw.listeners.path_normalization)
    };
    if let Err(r) = prepared {
        return refusal(r);
    }
    // Room for what this hop adds (request id, trace context, XFCC) at once.
    req.headers_mut().reserve(8);
    // The loop mark is between proxies only: an app never sees it (so an app calling its own
    // service through its sidecar is no loop).
    req.headers_mut().remove(&VIA_HEADER);
    let request_id = crate::telemetry::trace::ensure_request_id(req.headers_mut());
    let sampling = snapshot.raw.listeners.tracing.as_ref().map_or(0.0, |t| t.sampling);
    let span = crate::telemetry::trace::child(crate::telemetry::trace::extract(req.headers()), sampling);
    crate::telemetry::trace::inject(req.headers_mut(), &span);
    // Who called (metadata exchange), trusted only from a mesh peer over mTLS.
    let caller = req.headers_mut().remove(crate::telemetry::metrics::PEER_HEADER);
    // The caller's proxy names the operation (Envoy's decorator); only a mesh peer is believed,
    // and the name stays out of the metrics (spans only).
    let operation = req
        .headers()
        .get(&crate::http::outbound::DECORATOR_OPERATION)
        .filter(|_| peer.identity.is_some())
        .and_then(|v| v.to_str().ok().map(str::to_string));
    // Its namespace must be the one the peer's certificate says.
    let peer_ns = peer.identity.as_deref().and_then(spiffe_namespace);
    let source = caller
        .as_ref()
        .and_then(|v| shared.peers.get(v))
        .filter(|p| peer_ns == Some(p.namespace.as_str()))
        .unwrap_or_else(crate::telemetry::metrics::unknown_peer);
    let request_bytes =
        req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok()).unwrap_or(0);
    let grpc = req.headers().get(header::CONTENT_TYPE).is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"));
    // From config, never from the request's bytes (a label per Host would grow without bound).
    let service =
        snapshot.inbound_service(port, req.headers().get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or(""));
    let log = shared.access_log_on(&snapshot);
    let trace = span.sampled && snapshot.raw.listeners.tracing.is_some();
    // What only the access log and the span need, taken before the request goes to the app.
    let details = (log || trace).then(|| RequestDetails::of(&req));
    let (mut resp, flags) = match admit(&shared, &snapshot, port, &peer, &mut req).await {
        Err((resp, flags)) => (resp, flags),
        Ok(()) => {
            // Tell the app who called, as Istio does (never trust one the caller sent).
            req.headers_mut().remove(&XFCC);
            if let Some(v) = &peer.xfcc {
                req.headers_mut().insert(&XFCC, v.clone());
            }
            let app_http = snapshot.raw.listeners.inbound.iter().find(|l| l.port == port).and_then(|l| l.app_http);
            (forward_to_app(&shared, req, &app, app_http).await, "-")
        }
    };
    if caller.is_some()
        && let Some(v) = &shared.me_header
    {
        resp.headers_mut().insert(crate::telemetry::metrics::PEER_HEADER, v.clone());
    }
    let response_bytes =
        resp.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok()).unwrap_or(0);
    let grpc_status = resp.headers().get(&GRPC_STATUS).and_then(|v| v.to_str().ok()).map(str::to_string);
    let record = crate::telemetry::metrics::RequestRecord {
        reporter: "destination",
        source: &source,
        source_principal: peer.identity.as_deref().unwrap_or(""),
        destination: &shared.me,
        destination_principal: &shared.identity.uri,
        destination_service: service,
        protocol: if grpc { "grpc" } else { "http" },
        code: resp.status().as_u16(),
        flags,
        mtls: peer.identity.is_some(),
        grpc_status: grpc_status.as_deref(),
        millis: started.elapsed().as_secs_f64() * 1000.0,
        request_bytes,
        response_bytes,
    };
    shared.metrics.record(&record);
    if let Some(d) = &details {
        let cluster = format!("inbound|{port}||");
        if log {
            let entry = d.entry("inbound", request_id.to_str().unwrap_or(""), &app, &cluster);
            crate::telemetry::access::access_log(&record, &entry);
        }
        if trace {
            shared.tracer.record(crate::telemetry::trace::Span {
                ctx: span,
                name: operation.unwrap_or_else(|| format!("{service}:{port}/*")),
                client: false,
                start: start_time,
                duration: started.elapsed(),
                tags: span_tags(
                    &shared,
                    &record,
                    d,
                    request_id.to_str().unwrap_or(""),
                    &cluster,
                    &peer.remote.to_string(),
                ),
            });
        }
    }
    resp
}

/// Inbound policy, in Envoy's filter order: request authentication (JWT), authorization,
/// local rate limit. A refusal comes back with its response flags.
pub(crate) async fn admit(
    shared: &Shared,
    snapshot: &Snapshot,
    port: u16,
    peer: &PeerInfo,
    req: &mut Request<Incoming>,
) -> Result<(), (Response<Body>, &'static str)> {
    let jwt = if snapshot.jwt.is_empty() {
        None
    } else {
        let uri = req.uri().clone();
        // Boxed: a key fetch is a rare, large future the common request need not carry.
        match Box::pin(snapshot.jwt.authenticate(&shared.jwks, req.headers_mut(), &uri)).await {
            Ok(v) => v,
            Err(why) => {
                debug!(path = req.uri().path(), %why, "request authentication failed");
                return Err((local_reply_owned(StatusCode::UNAUTHORIZED, why), "-"));
            }
        }
    };
    if !snapshot.authz.is_empty() {
        let host = req
            .uri()
            .authority()
            .map(|a| a.as_str())
            .or_else(|| req.headers().get(header::HOST).and_then(|h| h.to_str().ok()));
        let decision = snapshot.authz.check(&crate::policy::authz::Request {
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
            return Err((local_reply(StatusCode::FORBIDDEN, "RBAC: access denied"), "-"));
        }
    }
    if let Some(rl) = &snapshot.rate_limit
        && !rl.allow(req.method().as_str(), req.uri().path(), port)
    {
        debug!(policy = %rl.policy, path = req.uri().path(), "rate limited");
        let mut r = local_reply(StatusCode::TOO_MANY_REQUESTS, "local_rate_limited");
        r.headers_mut().insert("x-local-rate-limit", HeaderValue::from_static("true"));
        return Err((r, "RL"));
    }
    Ok(())
}

/// The app's own forward to a local address (inbound side): no retries, no routing. The HTTP
/// version is the port's (`app_http`, from the Service port's protocol, as Istio chooses it),
/// else the caller's: HTTP/2 goes to the app as h2c; an Upgrade (WebSocket) is tunnelled.
async fn forward_to_app(
    shared: &Shared,
    req: Request<Incoming>,
    app: &str,
    app_http: Option<mesh_api::core::AppHttp>,
) -> Response<Body> {
    if is_upgrade(&req) {
        return Box::pin(tunnel(&shared.app_h1, req, app, false)).await;
    }
    let h2 = match app_http {
        Some(mesh_api::core::AppHttp::Http2) => true,
        Some(mesh_api::core::AppHttp::Http1) => false,
        None => req.version() == http::Version::HTTP_2,
    };
    // Over HTTP/2 the request's authority goes to the app as `:authority`, alone (gRPC C-core
    // refuses a stream with a second one); the connection goes to the app's address.
    let (pool, authority) =
        if h2 { (&shared.app_h2, req.headers().get(header::HOST).cloned()) } else { (&shared.app_h1, None) };
    let authority = authority.as_ref().and_then(|h| h.to_str().ok());
    let sent = send(pool, req.map(Either::Left), app, authority, false).await;
    match sent {
        Ok(resp) => resp.map(Either::Left),
        Err(e) => upstream_failure(e),
    }
}

/// The namespace of a SPIFFE ID (`spiffe://TD/ns/NS/sa/SA`), borrowed.
fn spiffe_namespace(id: &str) -> Option<&str> {
    let mut parts = id.strip_prefix("spiffe://")?.split('/');
    parts.next()?;
    (parts.next()? == "ns").then_some(())?;
    parts.next()
}
