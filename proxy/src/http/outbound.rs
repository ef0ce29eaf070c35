//! The outbound side: the app's requests, matched against the routes of the snapshot in
//! force, sent to a picked endpoint with retries, timeouts, mirrors and faults.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Either, Full};
use hyper::body::Body as _;
use hyper::body::Incoming;
use mesh_api::host::split_host_port;
use tracing::debug;

use crate::config::Snapshot;
use crate::http::filters::{cors_headers, cors_preflight, fault_abort, hit, outcome_of, redirect, retriable, rewrite};
use crate::http::tunnel::{connect_tunnel, tunnel};
use crate::http::{
    GRPC_STATUS, Head, MAX_BUFFERED_BODY, is_loop, is_upgrade, local_answer, local_reply, loop_detected, normalize,
    refusal, upstream_failure,
};
use crate::listeners::Downstream;
use crate::routing::CompiledRoute;
use crate::routing::matches::RequestView;
use crate::telemetry::access::{RequestDetails, span_tags};
use crate::upstream::client::{UpstreamError, send};
use crate::upstream::cluster::ClusterState;
use crate::{Body, Shared};

/// The outbound listener's handler: origin-form (Host header) and absolute-form requests.
pub async fn outbound(shared: Arc<Shared>, from: Downstream, mut req: Request<Incoming>) -> Response<Body> {
    let started = std::time::Instant::now();
    let start_time = std::time::SystemTime::now();
    // The snapshot stays alive for this request (an Arc), so a swap never changes a route
    // under a request in flight.
    let snapshot = shared.snapshot.load_full();
    if req.method() == http::Method::CONNECT {
        return Box::pin(connect_tunnel(shared, snapshot, req, started)).await;
    }
    // One authority (absolute form: the URI's, made the Host), a method in upper case, and
    // the path normalized: what routes match is what is forwarded.
    if let Err(r) = normalize::prepare(&mut req, snapshot.raw.listeners.path_normalization) {
        return refusal(r);
    }
    // Room for what this hop adds (loop mark, request id, trace context, peer metadata) at
    // once, rather than growing the map as each is added.
    req.headers_mut().reserve(12);
    if is_loop(&shared, req.headers_mut()) {
        return loop_detected();
    }
    let (route, prefix) = match select_route(&snapshot, &req, &from) {
        Ok(Selected::Route(r, prefix)) => (r, prefix),
        Ok(Selected::Passthrough(authority)) if shared.is_own_listener(&authority) => {
            shared.metrics.downstream_rejected("outbound", "loop");
            return loop_detected();
        }
        Ok(Selected::Passthrough(authority)) => return Box::pin(passthrough(&shared, req, &authority)).await,
        Err((status, body)) => {
            shared.metrics.upstream_error("no_route");
            // REGISTRY_ONLY's 502 is Envoy's BlackHoleCluster; anything else found no route.
            let (flags, cluster) =
                if status == StatusCode::BAD_GATEWAY { ("-", "BlackHoleCluster") } else { ("NR", "") };
            return local_answer(
                &shared,
                &snapshot,
                &Head::of(&req),
                local_reply(status, body),
                flags,
                "",
                cluster,
                started,
            );
        }
    };

    // CORS: answer preflights from allowed origins here; remember the origin for the response.
    let cors_origin = match &route.cors {
        Some((cors, origins)) => {
            let origin = req.headers().get(header::ORIGIN).and_then(|o| o.to_str().ok()).map(str::to_string);
            let allowed = origin.filter(|o| origins.iter().any(|m| m.matches(o)));
            let preflight = req.method() == http::Method::OPTIONS
                && req.headers().contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
            if preflight {
                match &allowed {
                    Some(o) => return cors_preflight(cors, o),
                    None if cors.ignore_unmatched_preflights => {
                        return local_reply(StatusCode::OK, "");
                    }
                    None => {}
                }
            }
            allowed.map(|o| (cors, o))
        }
        None => None,
    };
    let mut delayed = false;
    if let Some(f) = &route.fault {
        if let Some((delay_ms, percent)) = f.delay
            && hit(percent)
        {
            tokio::time::sleep(Duration::from_millis(delay_ms)).await;
            delayed = true;
        }
        if let Some(a) = &f.abort
            && hit(a.percent)
        {
            let (service, cluster) =
                route.pick_cluster().map(|t| (t.cluster.service.clone(), t.cluster.name.clone())).unwrap_or_default();
            return local_answer(
                &shared,
                &snapshot,
                &Head::of(&req),
                fault_abort(a),
                "FI",
                &service,
                &cluster,
                started,
            );
        }
    }
    if let Some(r) = &route.redirect {
        return redirect(&req, r, prefix.as_deref());
    }
    if let Some(d) = &route.direct_response {
        let mut resp = Response::new(Either::Right(Full::new(Bytes::from(d.body.clone().unwrap_or_default()))));
        *resp.status_mut() = StatusCode::from_u16(d.status).unwrap_or(StatusCode::OK);
        if d.body.is_some() {
            resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        }
        return resp;
    }
    if let Some(rw) = &route.rewrite {
        rewrite(&mut req, rw, prefix.as_deref());
    }
    route.request_headers.apply(req.headers_mut());
    let Some(target) = route.pick_cluster() else {
        shared.metrics.upstream_error("no_healthy_upstream");
        let resp = local_reply(StatusCode::SERVICE_UNAVAILABLE, "no healthy upstream\n");
        return local_answer(&shared, &snapshot, &Head::of(&req), resp, "UH", "", "", started);
    };
    target.request_headers.apply(req.headers_mut());
    // Where a passthrough cluster sends it (no other cluster needs it).
    let request_authority = if target.cluster.passthrough { request_authority(&req) } else { String::new() };
    if is_upgrade(&req) {
        // The session is logged and counted when it is set up (Envoy logs it when it ends).
        let head = Head::of(&req);
        let (service, cluster) = (target.cluster.service.as_str(), target.cluster.name.as_str());
        let (resp, flags) = if target.cluster.passthrough {
            (Box::pin(tunnel(&shared.mesh_h1, req, &request_authority, false)).await, "-")
        } else if let Some(endpoint) = target.cluster.pick() {
            let mtls = snapshot.peer(endpoint).is_some_and(|p| p.mtls);
            (Box::pin(tunnel(&shared.mesh_h1, req, &endpoint.to_string(), mtls)).await, "-")
        } else {
            (local_reply(StatusCode::SERVICE_UNAVAILABLE, "no healthy upstream\n"), "UH")
        };
        return local_answer(&shared, &snapshot, &head, resp, flags, service, cluster, started);
    }

    let h2 = shared.upgrade_h2 || target.cluster.h2_upgrade || req.version() == http::Version::HTTP_2;
    let hash = target.cluster.hash_key(req.headers(), req.uri().query(), Some(from.client));
    // Circuit breaking: wait for a permit, or fail fast when too many already wait.
    let _permit = match target.cluster.admit().await {
        Ok(p) => p,
        Err(_) => {
            shared.metrics.upstream_error("overflow");
            let mut r = local_reply(
                StatusCode::SERVICE_UNAVAILABLE,
                "upstream connect error or disconnect/reset before headers. reset reason: overflow",
            );
            r.headers_mut().insert("x-envoy-overloaded", HeaderValue::from_static("true"));
            let (service, cluster) = (&target.cluster.service, &target.cluster.name);
            return local_answer(&shared, &snapshot, &Head::of(&req), r, "UO", service, cluster, started);
        }
    };
    let request_bytes =
        req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok()).unwrap_or(0);
    let grpc = req.headers().get(header::CONTENT_TYPE).is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"));
    let (mut parts, body) = req.into_parts();
    // Tracing: continue the app's trace (or start one) with this hop's client span.
    let request_id = crate::telemetry::trace::ensure_request_id(&mut parts.headers);
    let tracing_on = snapshot.raw.listeners.tracing.as_ref();
    let span = crate::telemetry::trace::child(
        crate::telemetry::trace::extract(&parts.headers),
        tracing_on.map_or(0.0, |t| t.sampling),
    );
    crate::telemetry::trace::inject(&mut parts.headers, &span);
    // Envoy's decorator: the operation this hop names, so the next hop's span takes the same
    // name (made only where tracing is configured).
    let operation = tracing_on.map(|_| operation_name(&target.cluster.name));
    if let Some(v) = operation.as_deref().and_then(|o| HeaderValue::from_str(o).ok()) {
        parts.headers.insert(&DECORATOR_OPERATION, v);
    }
    // Metadata exchange: tell the peer proxy who is calling (it removes this before the app).
    if let Some(v) = &shared.me_header {
        parts.headers.insert(crate::telemetry::metrics::PEER_HEADER, v.clone());
    }
    // Keep small bodies (and empty ones) so the request can be retried and mirrored.
    let wants_copy = route.retries.is_some() || !route.mirrors.is_empty();
    let (buffered, mut streaming) = match body.size_hint().exact() {
        Some(0) if body.is_end_stream() => (Some(Bytes::new()), None),
        Some(n) if n <= MAX_BUFFERED_BODY && wants_copy => {
            match http_body_util::Limited::new(body, MAX_BUFFERED_BODY as usize).collect().await {
                Ok(b) => (Some(b.to_bytes()), None),
                Err(_) => return local_reply(StatusCode::BAD_REQUEST, "could not read the request body\n"),
            }
        }
        _ => (None, Some(Either::Left(body))),
    };
    let log = shared.access_log_on(&snapshot);
    let trace = span.sampled && tracing_on.is_some();
    // What only the access log and the span read, taken before the request goes.
    let details = (log || trace).then(|| RequestDetails::of_head(&parts));
    let policy = route.retries.as_ref().filter(|_| buffered.is_some());
    let attempts = 1 + policy.map_or(0, |p| p.attempts);
    // One try and no copy (the common case): the request's head moves on as it is, without
    // a copy of its headers.
    let single = attempts == 1 && route.mirrors.is_empty();
    // Nothing in the extensions goes upstream: emptied once, so a copy of the head copies none.
    parts.extensions = http::Extensions::new();
    let mut parts = Some(parts);
    let mut rebuild = |body: Body| {
        let head = if single { parts.take() } else { parts.clone() };
        head.map(|head| Request::from_parts(head, body))
    };
    for (cluster, percent) in &route.mirrors {
        if let Some(b) = &buffered
            && hit(*percent)
            && let Some(copy) = rebuild(Either::Right(Full::new(b.clone())))
        {
            mirror(&shared, &snapshot, cluster, copy, h2);
        }
    }

    let mut used: Option<(SocketAddr, bool)> = None;
    let attempt_all = async {
        let mut last = None;
        let mut _retry_slot = None;
        for attempt in 0..attempts {
            if attempt > 0 {
                match target.cluster.retry_slot() {
                    Some(slot) => _retry_slot = Some(slot),
                    None => break, // maxRetries outstanding: answer with the last try
                }
                let base = policy.map_or(25, |p| p.backoff_ms).max(1);
                let cap = (base * 10).max(250);
                let exp = base.saturating_mul(1 << (attempt - 1).min(10)).min(cap);
                tokio::time::sleep(Duration::from_millis(fastrand::u64(0..=exp))).await;
            }
            let (index, authority, mtls) = if target.cluster.passthrough {
                (None, request_authority.as_str(), false)
            } else {
                let Some(index) = target.cluster.pick_index(hash) else {
                    return Err(local_reply(StatusCode::SERVICE_UNAVAILABLE, "no healthy upstream\n"));
                };
                let e = &target.cluster.endpoints[index];
                let mtls = e.hostname.is_none() && snapshot.peer(e.addr).is_some_and(|p| p.mtls);
                (Some(index), e.authority(), mtls)
            };
            // A peer proxy (over mTLS) takes the caller's version and converts for its app;
            // anything else gets the version its port names.
            let h2 = upstream_h2(&target.cluster, mtls, h2);
            let _in_flight = index.map(|i| target.cluster.start(i));
            used = index.map(|i| (target.cluster.endpoints[i].addr, mtls));
            let body = match (&buffered, streaming.take()) {
                (Some(b), _) => Either::Right(Full::new(b.clone())),
                (None, Some(s)) => s,
                (None, None) => break,
            };
            let Some(req) = rebuild(body) else { break };
            // DestinationRule TLS origination has pools of its own; the mesh's otherwise.
            let (pool, tls) = match target.cluster.origin_pool(h2) {
                Ok(Some(pool)) => (pool, true),
                Ok(None) => (shared.pool_for(target.cluster.pool, h2), mtls),
                Err(why) => {
                    debug!(cluster = %target.cluster.name, %why, "TLS origination is not possible");
                    return Ok(Err(UpstreamError::Connect));
                }
            };
            // HTTP/2 in plain text goes straight to the app: its `:authority` is the
            // request's, alone, while the connection goes to the endpoint.
            let own_authority = if h2 && !mtls { req.headers().get(header::HOST).cloned() } else { None };
            let sent = send(&pool, req, authority, own_authority.as_ref().and_then(|h| h.to_str().ok()), tls);
            let per_try = policy.and_then(|p| p.per_try_timeout_ms).map(Duration::from_millis);
            let result = super::within(per_try, sent).await.unwrap_or(Err(UpstreamError::Reset));
            if let Some(index) = index {
                target.cluster.report(index, outcome_of(&result));
            }
            let retry = policy.is_some_and(|p| attempt + 1 < attempts && retriable(p, &result));
            if !retry {
                return Ok(result);
            }
            debug!(route = %route.name, attempt, "retrying");
            last = Some(result);
        }
        Ok(last.unwrap_or(Err(UpstreamError::Reset)))
    };
    // An injected delay is Envoy's DI, unless something worse happened.
    let mut flags = if delayed { "DI" } else { "-" };
    let outcome = super::within(route.timeout, attempt_all).await;
    let mut resp = match outcome {
        Some(Ok(Ok(resp))) => resp.map(Either::Left),
        Some(Ok(Err(e))) => {
            flags = "UF";
            match e {
                UpstreamError::Connect => shared.metrics.upstream_error("connect_failure"),
                UpstreamError::Reset => {
                    flags = "UC";
                    shared.metrics.upstream_error("reset");
                }
                UpstreamError::BadRequest => {}
            }
            upstream_failure(e)
        }
        Some(Err(local)) => {
            flags = "UH";
            shared.metrics.upstream_error("no_healthy_upstream");
            local
        }
        None => {
            flags = "UT";
            shared.metrics.upstream_error("timeout");
            local_reply(StatusCode::GATEWAY_TIMEOUT, "upstream request timeout")
        }
    };
    let destination = resp
        .headers_mut()
        .remove(crate::telemetry::metrics::PEER_HEADER)
        .and_then(|v| shared.peers.get(&v))
        .unwrap_or_else(crate::telemetry::metrics::unknown_peer);
    let (dest_principal, mtls) = match used {
        Some((addr, mtls)) => (snapshot.peer(addr).map(|p| p.identity.to_string()).unwrap_or_default(), mtls),
        None => (String::new(), false),
    };
    let response_bytes =
        resp.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok()).unwrap_or(0);
    let grpc_status = resp.headers().get(&GRPC_STATUS).and_then(|v| v.to_str().ok()).map(str::to_string);
    let record = crate::telemetry::metrics::RequestRecord {
        reporter: "source",
        source: &shared.me,
        source_principal: &shared.identity.uri,
        destination: &destination,
        destination_principal: &dest_principal,
        destination_service: &target.cluster.service,
        protocol: if grpc { "grpc" } else { "http" },
        code: resp.status().as_u16(),
        flags,
        mtls,
        grpc_status: grpc_status.as_deref(),
        millis: started.elapsed().as_secs_f64() * 1000.0,
        request_bytes,
        response_bytes,
    };
    shared.metrics.record(&record);
    if let Some(d) = &details {
        let upstream_host = used.map(|(a, _)| a.to_string()).unwrap_or_default();
        let request_id = request_id.to_str().unwrap_or("");
        if log {
            let entry = d.entry("outbound", request_id, &upstream_host, &target.cluster.name);
            crate::telemetry::access::access_log(&record, &entry);
        }
        if trace {
            shared.tracer.record(crate::telemetry::trace::Span {
                ctx: span,
                name: operation.clone().unwrap_or_else(|| operation_name(&target.cluster.name)),
                client: true,
                start: start_time,
                duration: started.elapsed(),
                tags: span_tags(&shared, &record, d, request_id, &target.cluster.name, &upstream_host),
            });
        }
    }
    target.response_headers.apply(resp.headers_mut());
    route.response_headers.apply(resp.headers_mut());
    if let Some((cors, origin)) = cors_origin {
        cors_headers(cors, &origin, resp.headers_mut());
        if !cors.expose_headers.is_empty()
            && let Ok(v) = HeaderValue::from_str(&cors.expose_headers.join(","))
        {
            resp.headers_mut().insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, v);
        }
    }
    resp
}

fn select_route<'s>(
    snapshot: &'s Snapshot,
    req: &Request<Incoming>,
    from: &Downstream,
) -> Result<Selected<'s>, (StatusCode, &'static str)> {
    let authority = match req.uri().authority() {
        Some(a) => a.as_str(),
        None => req
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .ok_or((StatusCode::BAD_REQUEST, "request has no Host header and no absolute URI\n"))?,
    };
    let (host, port) = split_host_port(authority);
    // A captured connection's original destination knows the port when the Host header
    // does not carry one.
    let original = from.original_dst;
    let port = port
        .or(original.map(|o| o.port()))
        .or(from.listener_port)
        .unwrap_or(if req.uri().scheme_str() == Some("https") { 443 } else { 80 });
    let gateway = from.gateway_port;
    let found = match gateway {
        Some(gp) => snapshot.gateway_vhost(host, gp),
        None => snapshot.vhost(host, port),
    };
    if gateway.is_some() && found.is_none() {
        return Err((StatusCode::NOT_FOUND, "no Gateway route matches this host\n"));
    }
    let Some(vhost) = found else {
        if snapshot.versions.is_empty() {
            return Err((StatusCode::SERVICE_UNAVAILABLE, "this proxy has no config from meshd yet\n"));
        }
        if snapshot.passthrough() {
            // Captured: pass through to where the app was connecting, not to a name.
            let target = original.map(|o| o.to_string()).unwrap_or_else(|| request_authority(req));
            return Ok(Selected::Passthrough(target));
        }
        return Err((
            StatusCode::BAD_GATEWAY,
            "no service matches this host and port in the mesh (outboundTrafficPolicy is REGISTRY_ONLY)\n",
        ));
    };
    let view = RequestView {
        method: req.method(),
        path: req.uri().path(),
        query: req.uri().query(),
        authority,
        scheme: req.uri().scheme_str().unwrap_or("http"),
        headers: req.headers(),
    };
    for r in &vhost.routes {
        if r.matches.is_empty() {
            return Ok(Selected::Route(r, Some("/".to_string())));
        }
        if let Some(m) = r.matches.iter().find(|m| m.matches(&view)) {
            return Ok(Selected::Route(r, m.rewritable_prefix().map(str::to_string)));
        }
    }
    Err((StatusCode::NOT_FOUND, "no route matched\n"))
}

/// The route for a request by the snapshot in force, with the prefix a `rewrite.uri` replaces,
/// or the local reply to send.
enum Selected<'s> {
    Route(&'s CompiledRoute, Option<String>),
    /// A host the mesh does not know, under ALLOW_ANY: send it where it was addressed.
    Passthrough(String),
}

/// `host:port` the request is addressed to (the port defaults by scheme).
fn request_authority<B>(req: &Request<B>) -> String {
    let authority = req
        .uri()
        .authority()
        .map(|a| a.as_str())
        .or_else(|| req.headers().get(header::HOST).and_then(|h| h.to_str().ok()))
        .unwrap_or("");
    let (host, port) = split_host_port(authority);
    let port = port.unwrap_or(if req.uri().scheme_str() == Some("https") { 443 } else { 80 });
    if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") }
}

/// ALLOW_ANY: one plain try to where the request was addressed (Envoy's PassthroughCluster).
pub(crate) async fn passthrough(shared: &Shared, req: Request<Incoming>, authority: &str) -> Response<Body> {
    if is_upgrade(&req) {
        return tunnel(&shared.mesh_h1, req, authority, false).await;
    }
    let sent = if req.version() == http::Version::HTTP_2 {
        send(&shared.mesh_h2, req.map(Either::Left), authority, None, false).await
    } else {
        send(&shared.mesh_h1, req.map(Either::Left), authority, None, false).await
    };
    match sent {
        Ok(resp) => resp.map(Either::Left),
        Err(e) => upstream_failure(e),
    }
}

/// Whether to speak HTTP/2 to an endpoint of `cluster` reached without mTLS, most often an
/// app without a sidecar (the caller's choice: `h2`): what the service port names, as
/// Istio's outbound clusters do; an unnamed port keeps the caller's version.
/// The HTTP version of an upstream request: a peer proxy (over mTLS) takes the caller's; a
/// host reached with originated TLS gets HTTP/2 only when its port says so (an external server
/// may not speak it, and we do not guess); anything else the version its port names.
fn upstream_h2(cluster: &ClusterState, mtls: bool, h2: bool) -> bool {
    if cluster.origin.is_some() {
        cluster.h2_upgrade || cluster.app_http == Some(mesh_api::core::AppHttp::Http2)
    } else if mtls {
        h2
    } else {
        to_app_h2(cluster, h2)
    }
}

fn to_app_h2(cluster: &ClusterState, h2: bool) -> bool {
    match cluster.app_http {
        Some(mesh_api::core::AppHttp::Http2) => true,
        Some(mesh_api::core::AppHttp::Http1) => cluster.h2_upgrade,
        None => h2,
    }
}

/// Send a copy to `cluster`, fire and forget: its answer is dropped and it never delays the
/// real request. The Host gets Envoy's `-shadow` suffix.
fn mirror(
    shared: &Arc<Shared>,
    snapshot: &Arc<Snapshot>,
    cluster: &Arc<ClusterState>,
    mut req: Request<Body>,
    h2: bool,
) {
    let Some(index) = cluster.pick_index(None) else { return };
    let e = &cluster.endpoints[index];
    let endpoint = e.authority().to_string();
    let mtls = e.hostname.is_none() && snapshot.peer(e.addr).is_some_and(|p| p.mtls);
    let h2 = upstream_h2(cluster, mtls, h2);
    if let Some(h) = req.headers().get(header::HOST).and_then(|h| h.to_str().ok()) {
        let (host, port) = split_host_port(h);
        let shadow = match port {
            Some(p) => format!("{host}-shadow:{p}"),
            None => format!("{host}-shadow"),
        };
        if let Ok(v) = HeaderValue::from_str(&shadow) {
            req.headers_mut().insert(header::HOST, v);
        }
    }
    // A mirror cluster with TLS origination gets its copy over the originated TLS too.
    let (pool, tls) = match cluster.origin_pool(h2) {
        Ok(Some(pool)) => (pool, true),
        Ok(None) => (if h2 { shared.mesh_h2.clone() } else { shared.mesh_h1.clone() }, mtls),
        Err(_) => return,
    };
    tokio::spawn(async move {
        if let Ok(resp) = send(&pool, req, &endpoint, None, tls).await {
            let _ = resp.into_body().collect().await;
        }
    });
}

/// Envoy's header naming a request's operation for the next hop's span.
pub(crate) static DECORATOR_OPERATION: http::HeaderName = http::HeaderName::from_static("x-envoy-decorator-operation");

/// Istio's operation name for an outbound cluster: the destination host and port
/// (`reviews.default.svc.cluster.local:9080/*`).
fn operation_name(cluster: &str) -> String {
    match cluster.split('|').collect::<Vec<_>>()[..] {
        [_, port, _, host] => format!("{host}:{port}/*"),
        _ => format!("{cluster}/*"),
    }
}
