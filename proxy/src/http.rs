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

use std::time::Duration;

use http_body_util::BodyExt;
use hyper::body::Body as _;
use mesh_api::proxy_config::RetryPolicy;

use crate::authz::Decision;
use crate::config::{ClusterState, CompiledRoute, RequestView, Snapshot};
use crate::connect::MeshConnector;
use crate::{PeerInfo, Shared};

pub mod normalize;

pub type Body = Either<Incoming, Full<Bytes>>;
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

/// A response made by the proxy itself, with Envoy's wording where Envoy has one.
pub fn local_reply(status: StatusCode, body: &'static str) -> Response<Body> {
    let mut r = Response::new(Either::Right(Full::new(Bytes::from_static(body.as_bytes()))));
    *r.status_mut() = status;
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    r
}

static GRPC_STATUS: header::HeaderName = header::HeaderName::from_static("grpc-status");
static XFCC: header::HeaderName = header::HeaderName::from_static("x-forwarded-client-cert");

/// The header that marks a request with each proxy's outbound side it went through, since the
/// last app. A proxy that finds its own mark is forwarding in a loop.
pub static VIA_HEADER: header::HeaderName = header::HeaderName::from_static("x-mesh-via");
/// More outbound hops than this without an app in between is a loop too.
const MAX_VIA_HOPS: usize = 8;

/// Whether a request has already passed this proxy's outbound side (or too many proxies): a
/// loop. Otherwise this proxy's mark is added.
fn is_loop(shared: &Shared, headers: &mut HeaderMap) -> bool {
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

fn loop_detected() -> Response<Body> {
    local_reply(
        StatusCode::LOOP_DETECTED,
        "forwarding loop detected: the request came back to the proxy that sent it\n",
    )
}

/// The answer to a request refused before routing (see `normalize::prepare`).
fn refusal(r: normalize::Refusal) -> Response<Body> {
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

/// Whether `name` is a hop-by-hop header (RFC 9110 §7.6.1, and the legacy ones).
fn is_hop_by_hop(name: &header::HeaderName) -> bool {
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
async fn send<C>(
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

async fn send_inner<C>(
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
enum UpstreamError {
    Connect,
    Reset,
    BadRequest,
}

fn upstream_failure(e: UpstreamError) -> Response<Body> {
    match e {
        UpstreamError::BadRequest => local_reply(StatusCode::BAD_REQUEST, "invalid request path\n"),
        _ => {
            local_reply(StatusCode::SERVICE_UNAVAILABLE, "upstream connect error or disconnect/reset before headers\n")
        }
    }
}

/// The app's own forward to a local address (inbound side): no retries, no routing. The HTTP
/// version is the port's (`app_http`, from the Service port's protocol, as Istio chooses it),
/// else the caller's: HTTP/2 goes to the app as h2c; an Upgrade (WebSocket) is tunnelled.
async fn forward_to_app(
    shared: &Shared,
    req: Request<Incoming>,
    app_addr: SocketAddr,
    app_http: Option<mesh_api::core::AppHttp>,
) -> Response<Body> {
    let app = app_addr.to_string();
    if is_upgrade(&req) {
        return tunnel(&shared.client, req, &app, false).await;
    }
    let h2 = match app_http {
        Some(mesh_api::core::AppHttp::Http2) => true,
        Some(mesh_api::core::AppHttp::Http1) => false,
        None => req.version() == http::Version::HTTP_2,
    };
    let sent = if h2 {
        // The request's authority goes to the app as `:authority`, alone (gRPC C-core refuses
        // a stream with a second one); the connection goes to the app's address.
        let authority = req.headers().get(header::HOST).and_then(|h| h.to_str().ok()).map(str::to_owned);
        match (shared.app_h2(&app), authority) {
            (Some(client), Some(authority)) => {
                send(&client, req.map(Either::Left), &authority, false, http::Version::HTTP_2).await
            }
            _ => send(&shared.client_h2, req.map(Either::Left), &app, false, http::Version::HTTP_2).await,
        }
    } else {
        send(&shared.client, req.map(Either::Left), &app, false, http::Version::HTTP_11).await
    };
    match sent {
        Ok(resp) => resp.map(Either::Left),
        Err(e) => upstream_failure(e),
    }
}

/// An HTTP/1.1 request asking to switch protocols (WebSocket and the like).
fn is_upgrade<B>(req: &Request<B>) -> bool {
    req.version() == http::Version::HTTP_11
        && req.headers().contains_key(header::UPGRADE)
        && req
            .headers()
            .get(header::CONNECTION)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case("upgrade")))
}

/// Pass an Upgrade through to `target`; once it answers 101, copy bytes both ways between
/// the two upgraded connections until either side closes.
async fn tunnel<C>(client: &Client<C, Body>, mut req: Request<Incoming>, target: &str, tls: bool) -> Response<Body>
where
    C: Connect + Clone + Send + Sync + 'static,
{
    let downstream = hyper::upgrade::on(&mut req);
    let mut resp = match send_inner(client, req.map(Either::Left), target, tls, http::Version::HTTP_11, true).await {
        Ok(r) => r,
        Err(e) => return upstream_failure(e),
    };
    if resp.status() != StatusCode::SWITCHING_PROTOCOLS {
        return resp.map(Either::Left);
    }
    let upstream = hyper::upgrade::on(&mut resp);
    let (parts, _) = resp.into_parts();
    tokio::spawn(async move {
        match tokio::try_join!(downstream, upstream) {
            Ok((d, u)) => {
                let (mut d, mut u) = (hyper_util::rt::TokioIo::new(d), hyper_util::rt::TokioIo::new(u));
                let _ = tokio::io::copy_bidirectional(&mut d, &mut u).await;
            }
            Err(e) => debug!(error = %e, "upgrade failed"),
        }
    });
    Response::from_parts(parts, Either::Right(Full::new(Bytes::new())))
}

/// Requests with bodies up to this size are kept so they can be retried and mirrored.
const MAX_BUFFERED_BODY: u64 = 64 * 1024;

/// What the access log and the request metrics need of a request whose body is gone.
struct Head {
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
fn local_answer(
    shared: &Shared,
    snapshot: &Snapshot,
    head: &Head,
    resp: Response<Body>,
    flags: &'static str,
    service: &str,
    cluster: &str,
    started: std::time::Instant,
) -> Response<Body> {
    let destination = crate::metrics::unknown_peer();
    let record = crate::metrics::RequestRecord {
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
        crate::metrics::access_log(
            &record,
            &crate::metrics::AccessEntry {
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

/// `CONNECT host:port` (an app's `HTTPS_PROXY`): a TCP tunnel to the host, chosen as for any
/// outbound TCP connection: a ServiceEntry's or mesh service's TCP route, else the host itself
/// under ALLOW_ANY; refused under REGISTRY_ONLY (502, Envoy's BlackHoleCluster). Counted in
/// `istio_tcp_*` and logged (the CONNECT as a request, the tunnel as a TCP connection).
async fn connect_tunnel(
    shared: Arc<Shared>,
    snapshot: Arc<Snapshot>,
    mut req: Request<Incoming>,
    started: std::time::Instant,
) -> Response<Body> {
    let head = Head::of(&req);
    // host:port only: no user information (RFC 9110 §9.3.6), a port, and nothing else.
    let target = req.uri().authority().filter(|a| !a.as_str().contains('@') && req.uri().path_and_query().is_none());
    let Some((host, port)) = target.and_then(|a| Some((a.host().to_ascii_lowercase(), a.port_u16()?))) else {
        let resp = local_reply(StatusCode::BAD_REQUEST, "CONNECT needs a host:port target\n");
        return local_answer(&shared, &snapshot, &head, resp, "-", "", "", started);
    };
    let service = snapshot.tcp_service(&host, port).cloned();
    if let Some(tls) = service.as_ref().filter(|t| !t.sni.is_empty()).cloned() {
        // TLS routes pick by SNI, and the ClientHello only comes once the tunnel is open:
        // answer, read it inside the tunnel, then connect where its SNI leads.
        let on_upgrade = hyper::upgrade::on(&mut req);
        let tunnel_shared = shared.clone();
        let target = host.clone();
        tokio::spawn(async move {
            let Ok(upgraded) = on_upgrade.await else { return };
            let mut downstream = hyper_util::rt::TokioIo::new(upgraded);
            let mut hello = Vec::new();
            let sni = crate::tls::read_sni(&mut downstream, &mut hello).await;
            let shared = tunnel_shared;
            let snapshot = shared.snapshot.load_full();
            let cluster = tls.pick_by_sni(sni.as_deref()).cloned();
            match crate::tcp_upstream(&shared, &snapshot, &target, port, None, cluster).await {
                Ok(up) => {
                    drop(snapshot);
                    relay_tunnel(&shared, &mut downstream, up, &hello).await;
                }
                Err(why) => {
                    shared.metrics.upstream_error("connect_failure");
                    debug!(host = %target, port, ?sni, ?why, "CONNECT tunnel: no upstream for this SNI; closing it");
                }
            }
        });
        let resp = Response::new(Either::Right(Full::new(Bytes::new())));
        return local_answer(&shared, &snapshot, &head, resp, "-", &host, "", started);
    }
    let cluster = service.and_then(|t| t.pick_cluster().cloned());
    let up = match crate::tcp_upstream(&shared, &snapshot, &host, port, None, cluster).await {
        Ok(up) => up,
        Err(why) => {
            let (status, flags, cluster, body) = match why {
                crate::TcpRefusal::RegistryOnly => {
                    (StatusCode::BAD_GATEWAY, "-", "BlackHoleCluster", "no service for this host (REGISTRY_ONLY)\n")
                }
                crate::TcpRefusal::Loop => (StatusCode::LOOP_DETECTED, "-", "", "addressed to this proxy\n"),
                crate::TcpRefusal::NoEndpoint => (StatusCode::SERVICE_UNAVAILABLE, "UH", "", "no healthy upstream\n"),
                crate::TcpRefusal::Connect(e) => {
                    debug!(%host, port, error = %e, "CONNECT upstream failed");
                    (StatusCode::SERVICE_UNAVAILABLE, "UF", "", "upstream connect error\n")
                }
            };
            return local_answer(&shared, &snapshot, &head, local_reply(status, body), flags, "", cluster, started);
        }
    };
    let on_upgrade = hyper::upgrade::on(&mut req);
    let (service, cluster) = (up.labels.destination_service.clone(), up.upstream_cluster.clone());
    let tunnel_shared = shared.clone();
    tokio::spawn(async move {
        let Ok(upgraded) = on_upgrade.await else { return };
        relay_tunnel(&tunnel_shared, &mut hyper_util::rt::TokioIo::new(upgraded), up, &[]).await;
    });
    let resp = Response::new(Either::Right(Full::new(Bytes::new())));
    local_answer(&shared, &snapshot, &head, resp, "-", &service, &cluster, started)
}

/// Carry an open CONNECT tunnel's bytes both ways until either side closes, starting with
/// `read` (what was already read from the client); counted in `istio_tcp_*` and logged as a
/// TCP connection.
async fn relay_tunnel<D>(shared: &Shared, downstream: &mut D, mut up: crate::TcpUpstream, read: &[u8])
where
    D: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    use tokio::io::AsyncWriteExt;
    shared.metrics.tcp_opened(&up.labels);
    let opened = std::time::SystemTime::now();
    let clock = std::time::Instant::now();
    let (received, sent) = match up.stream.write_all(read).await {
        Ok(()) => match tokio::io::copy_bidirectional(downstream, &mut up.stream).await {
            Ok((received, sent)) => (received + read.len() as u64, sent),
            Err(_) => (read.len() as u64, 0),
        },
        Err(_) => (0, 0),
    };
    let target = (up.upstream_host.as_str(), up.upstream_cluster.as_str());
    crate::tcp_closed(shared, &up.labels, "outbound", opened, clock.elapsed(), (received, sent), target);
}

/// The outbound listener's handler: origin-form (Host header) and absolute-form requests.
pub async fn outbound(shared: Arc<Shared>, mut req: Request<Incoming>) -> Response<Body> {
    let started = std::time::Instant::now();
    let start_time = std::time::SystemTime::now();
    // The snapshot stays alive for this request (an Arc), so a swap never changes a route
    // under a request in flight.
    let snapshot = shared.snapshot.load_full();
    if req.method() == http::Method::CONNECT {
        return connect_tunnel(shared, snapshot, req, started).await;
    }
    // One authority (absolute form: the URI's, made the Host), a method in upper case, and
    // the path normalized: what routes match is what is forwarded.
    if let Err(r) = normalize::prepare(&mut req, snapshot.raw.listeners.path_normalization) {
        return refusal(r);
    }
    if is_loop(&shared, req.headers_mut()) {
        return loop_detected();
    }
    let (route, prefix) = match select_route(&snapshot, &req) {
        Ok(Selected::Route(r, prefix)) => (r, prefix),
        Ok(Selected::Passthrough(authority)) if shared.is_own_listener(&authority) => {
            shared.metrics.downstream_rejected("outbound", "loop");
            return loop_detected();
        }
        Ok(Selected::Passthrough(authority)) => return passthrough(&shared, req, &authority).await,
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
        return redirect(&req, r);
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
            (tunnel(&shared.mesh_h1, req, &request_authority, false).await, "-")
        } else if let Some(endpoint) = target.cluster.pick() {
            let mtls = snapshot.peer(endpoint).is_some_and(|p| p.mtls);
            (tunnel(&shared.mesh_h1, req, &endpoint.to_string(), mtls).await, "-")
        } else {
            (local_reply(StatusCode::SERVICE_UNAVAILABLE, "no healthy upstream\n"), "UH")
        };
        return local_answer(&shared, &snapshot, &head, resp, flags, service, cluster, started);
    }

    let h2 = shared.upgrade_h2 || target.cluster.h2_upgrade || req.version() == http::Version::HTTP_2;
    let client_addr = req.extensions().get::<crate::ClientAddr>().map(|c| c.0);
    let hash = target.cluster.hash_key(req.headers(), req.uri().query(), client_addr);
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
    let request_id = crate::trace::ensure_request_id(&mut parts.headers);
    let tracing_on = snapshot.raw.listeners.tracing.as_ref();
    let span = crate::trace::child(crate::trace::extract(&parts.headers), tracing_on.map_or(0.0, |t| t.sampling));
    crate::trace::inject(&mut parts.headers, &span);
    // Metadata exchange: tell the peer proxy who is calling (it removes this before the app).
    if let Some(v) = &shared.me_header {
        parts.headers.insert(crate::metrics::PEER_HEADER, v.clone());
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
    let mut parts = Some(parts);
    let mut rebuild = |body: Body| {
        let head = if single { parts.take() } else { parts.clone() };
        head.map(|head| {
            let mut r = Request::from_parts(head, body);
            *r.extensions_mut() = http::Extensions::new();
            r
        })
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
            let h2 = if mtls { h2 } else { to_app_h2(&target.cluster, h2) };
            let _in_flight = index.map(|i| target.cluster.start(i));
            used = index.map(|i| (target.cluster.endpoints[i].addr, mtls));
            let body = match (&buffered, streaming.take()) {
                (Some(b), _) => Either::Right(Full::new(b.clone())),
                (None, Some(s)) => s,
                (None, None) => break,
            };
            let Some(req) = rebuild(body) else { break };
            let client = shared.client_for(target.cluster.pool, h2);
            let version = if h2 { http::Version::HTTP_2 } else { http::Version::HTTP_11 };
            // HTTP/2 in plain text goes straight to the app: its `:authority` is the
            // request's, alone, while the connection goes to the endpoint.
            let own_authority = (h2 && !mtls)
                .then(|| req.headers().get(header::HOST)?.to_str().ok().map(str::to_owned))
                .flatten()
                .filter(|host| host != authority)
                .and_then(|host| Some((shared.app_h2(authority)?, host)));
            let sent = async {
                match own_authority {
                    Some((direct, host)) => send(&direct, req, &host, false, version).await,
                    None => send(&client, req, authority, mtls, version).await,
                }
            };
            let per_try = policy.and_then(|p| p.per_try_timeout_ms).map(Duration::from_millis);
            let result = match per_try {
                Some(t) => tokio::time::timeout(t, sent).await.unwrap_or(Err(UpstreamError::Reset)),
                None => sent.await,
            };
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
    let outcome = match route.timeout {
        Some(t) => tokio::time::timeout(t, attempt_all).await.ok(),
        None => Some(attempt_all.await),
    };
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
        .remove(crate::metrics::PEER_HEADER)
        .and_then(|v| shared.peers.get(&v))
        .unwrap_or_else(crate::metrics::unknown_peer);
    let (dest_principal, mtls) = match used {
        Some((addr, mtls)) => (snapshot.peer(addr).map(|p| p.identity.to_string()).unwrap_or_default(), mtls),
        None => (String::new(), false),
    };
    let response_bytes =
        resp.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok()).unwrap_or(0);
    let grpc_status = resp.headers().get(&GRPC_STATUS).and_then(|v| v.to_str().ok()).map(str::to_string);
    let record = crate::metrics::RequestRecord {
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
            crate::metrics::access_log(&record, &entry);
        }
        if trace {
            // Istio's operation name: the destination host and port.
            let name = match target.cluster.name.split('|').collect::<Vec<_>>()[..] {
                [_, port, _, host] => format!("{host}:{port}/*"),
                _ => format!("{}/*", target.cluster.name),
            };
            shared.tracer.record(crate::trace::Span {
                ctx: span,
                name,
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

fn cors_headers(cors: &mesh_api::proxy_config::Cors, origin: &str, h: &mut HeaderMap) {
    if let Ok(v) = HeaderValue::from_str(origin) {
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, v);
    }
    if cors.allow_credentials {
        h.insert(header::ACCESS_CONTROL_ALLOW_CREDENTIALS, HeaderValue::from_static("true"));
    }
}

/// The answer to an allowed CORS preflight, made by the proxy (Envoy's CORS filter).
fn cors_preflight(cors: &mesh_api::proxy_config::Cors, origin: &str) -> Response<Body> {
    let mut r = Response::new(Either::Right(Full::new(Bytes::new())));
    let h = r.headers_mut();
    cors_headers(cors, origin, h);
    for (name, list) in [
        (header::ACCESS_CONTROL_ALLOW_METHODS, &cors.allow_methods),
        (header::ACCESS_CONTROL_ALLOW_HEADERS, &cors.allow_headers),
    ] {
        if !list.is_empty()
            && let Ok(v) = HeaderValue::from_str(&list.join(","))
        {
            h.insert(name, v);
        }
    }
    if let Some(age) = cors.max_age_s {
        h.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from(age));
    }
    r
}

/// How a try ended, for outlier detection.
fn outcome_of(result: &Result<Response<Incoming>, UpstreamError>) -> crate::config::Outcome {
    use crate::config::Outcome;
    match result {
        Ok(r) if matches!(r.status().as_u16(), 502..=504) => Outcome::GatewayError,
        Ok(r) if r.status().is_server_error() => Outcome::ServerError,
        Ok(_) | Err(UpstreamError::BadRequest) => Outcome::Success,
        Err(_) => Outcome::GatewayError,
    }
}

/// True for `percent` % of calls.
fn hit(percent: f64) -> bool {
    percent >= 100.0 || (percent > 0.0 && fastrand::f64() * 100.0 < percent)
}

/// Should this result be retried under `p` (Envoy's retry_on conditions)?
fn retriable(p: &RetryPolicy, result: &Result<Response<Incoming>, UpstreamError>) -> bool {
    let on = |c: &str| p.retry_on.iter().any(|r| r == c);
    match result {
        Err(UpstreamError::BadRequest) => false,
        Err(UpstreamError::Connect) => on("connect-failure") || on("5xx") || on("gateway-error") || on("reset"),
        Err(UpstreamError::Reset) => on("reset") || on("5xx") || on("gateway-error") || on("refused-stream"),
        Ok(resp) => {
            let code = resp.status().as_u16();
            let grpc =
                resp.headers().get(&GRPC_STATUS).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u32>().ok());
            (on("5xx") && code >= 500)
                || (on("gateway-error") && matches!(code, 502..=504))
                || (on("retriable-4xx") && code == 409)
                || (on("retriable-status-codes") && p.retriable_status_codes.contains(&code))
                || (on("cancelled") && grpc == Some(1))
                || (on("deadline-exceeded") && grpc == Some(4))
                || (on("resource-exhausted") && grpc == Some(8))
                || (on("unavailable") && grpc == Some(14))
                || (on("internal") && grpc == Some(13))
        }
    }
}

fn fault_abort(a: &mesh_api::proxy_config::FaultAbort) -> Response<Body> {
    match a.grpc_status {
        Some(code) => {
            let mut r = Response::new(Either::Right(Full::new(Bytes::new())));
            let h = r.headers_mut();
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
            h.insert("grpc-status", HeaderValue::from(code));
            h.insert("grpc-message", HeaderValue::from_static("fault filter abort"));
            r
        }
        None => {
            let mut r = local_reply(StatusCode::OK, "fault filter abort");
            *r.status_mut() = StatusCode::from_u16(a.http_status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            r
        }
    }
}

fn redirect(req: &Request<Incoming>, r: &mesh_api::proxy_config::Redirect) -> Response<Body> {
    let host_header = req.headers().get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("");
    let (host, port) = split_host_port(host_header);
    let scheme = r.scheme.as_deref().or(req.uri().scheme_str()).unwrap_or("http");
    let host = r.authority.as_deref().unwrap_or(host);
    let port = r.port.or(port.filter(|_| r.authority.is_none()));
    let path = r.uri.clone().unwrap_or_else(|| req.uri().path_and_query().map(|p| p.to_string()).unwrap_or("/".into()));
    let location = match port {
        Some(p) => format!("{scheme}://{host}:{p}{path}"),
        None => format!("{scheme}://{host}{path}"),
    };
    let mut resp = Response::new(Either::Right(Full::new(Bytes::new())));
    *resp.status_mut() = StatusCode::from_u16(r.status).unwrap_or(StatusCode::MOVED_PERMANENTLY);
    if let Ok(v) = HeaderValue::from_str(&location) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp
}

fn rewrite(req: &mut Request<Incoming>, rw: &crate::config::CompiledRewrite, prefix: Option<&str>) {
    let path = req.uri().path().to_string();
    let query = req.uri().query().map(|q| format!("?{q}")).unwrap_or_default();
    let new_path = if let Some((re, with)) = &rw.uri_regex {
        Some(re.replace_all(&path, with.as_str()).into_owned())
    } else if let (Some(uri), Some(prefix)) = (&rw.uri, prefix) {
        Some(match path.strip_prefix(prefix) {
            Some(rest) => format!("{uri}{rest}"),
            None => uri.clone(),
        })
    } else {
        rw.uri.clone()
    };
    if let Some(p) = new_path {
        let mut parts = req.uri().clone().into_parts();
        if let Ok(pq) = format!("{p}{query}").parse() {
            parts.path_and_query = Some(pq);
            if let Ok(u) = Uri::from_parts(parts) {
                *req.uri_mut() = u;
            }
        }
    }
    if let Some(a) = &rw.authority {
        req.headers_mut().insert(header::HOST, a.clone());
        if req.uri().authority().is_some() {
            let mut parts = req.uri().clone().into_parts();
            if let Ok(auth) = a.to_str().unwrap_or("").parse() {
                parts.authority = Some(auth);
                if let Ok(u) = Uri::from_parts(parts) {
                    *req.uri_mut() = u;
                }
            }
        }
    }
}

/// Whether to speak HTTP/2 to an endpoint of `cluster` reached without mTLS, most often an
/// app without a sidecar (the caller's choice: `h2`): what the service port names, as
/// Istio's outbound clusters do; an unnamed port keeps the caller's version.
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
    let h2 = if mtls { h2 } else { to_app_h2(cluster, h2) };
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
    let shared = shared.clone();
    tokio::spawn(async move {
        let sent = if h2 {
            send(&shared.mesh_h2, req, &endpoint, mtls, http::Version::HTTP_2).await
        } else {
            send(&shared.mesh_h1, req, &endpoint, mtls, http::Version::HTTP_11).await
        };
        if let Ok(resp) = sent {
            let _ = resp.into_body().collect().await;
        }
    });
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
async fn passthrough(shared: &Shared, req: Request<Incoming>, authority: &str) -> Response<Body> {
    if is_upgrade(&req) {
        return tunnel(&shared.mesh_h1, req, authority, false).await;
    }
    let sent = if req.version() == http::Version::HTTP_2 {
        send(&shared.mesh_h2, req.map(Either::Left), authority, false, http::Version::HTTP_2).await
    } else {
        send(&shared.mesh_h1, req.map(Either::Left), authority, false, http::Version::HTTP_11).await
    };
    match sent {
        Ok(resp) => resp.map(Either::Left),
        Err(e) => upstream_failure(e),
    }
}

fn select_route<'s>(
    snapshot: &'s Snapshot,
    req: &Request<Incoming>,
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
    let original = req.extensions().get::<crate::capture::OriginalDst>().map(|o| o.0);
    let port =
        port.or(original.map(|o| o.port())).unwrap_or(if req.uri().scheme_str() == Some("https") { 443 } else { 80 });
    let gateway = req.extensions().get::<crate::GatewayPort>().map(|g| g.0);
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

/// An inbound listener's handler: authorization, then the app.
pub async fn inbound(
    shared: Arc<Shared>,
    app: SocketAddr,
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
    // The loop mark is between proxies only: an app never sees it (so an app calling its own
    // service through its sidecar is no loop).
    req.headers_mut().remove(&VIA_HEADER);
    let request_id = crate::trace::ensure_request_id(req.headers_mut());
    let sampling = snapshot.raw.listeners.tracing.as_ref().map_or(0.0, |t| t.sampling);
    let span = crate::trace::child(crate::trace::extract(req.headers()), sampling);
    crate::trace::inject(req.headers_mut(), &span);
    // Who called (metadata exchange), trusted only from a mesh peer over mTLS.
    let caller = req.headers_mut().remove(crate::metrics::PEER_HEADER);
    // Its namespace must be the one the peer's certificate says.
    let peer_ns = peer.identity.as_deref().and_then(spiffe_namespace);
    let source = caller
        .as_ref()
        .and_then(|v| shared.peers.get(v))
        .filter(|p| peer_ns == Some(p.namespace.as_str()))
        .unwrap_or_else(crate::metrics::unknown_peer);
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
            (forward_to_app(&shared, req, app, app_http).await, "-")
        }
    };
    if caller.is_some()
        && let Some(v) = &shared.me_header
    {
        resp.headers_mut().insert(crate::metrics::PEER_HEADER, v.clone());
    }
    let response_bytes =
        resp.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok()).unwrap_or(0);
    let grpc_status = resp.headers().get(&GRPC_STATUS).and_then(|v| v.to_str().ok()).map(str::to_string);
    let record = crate::metrics::RequestRecord {
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
        let app_host = app.to_string();
        if log {
            let entry = d.entry("inbound", request_id.to_str().unwrap_or(""), &app_host, &cluster);
            crate::metrics::access_log(&record, &entry);
        }
        if trace {
            shared.tracer.record(crate::trace::Span {
                ctx: span,
                name: format!("{service}:{port}/*"),
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

/// The namespace of a SPIFFE ID (`spiffe://TD/ns/NS/sa/SA`), borrowed.
fn spiffe_namespace(id: &str) -> Option<&str> {
    let mut parts = id.strip_prefix("spiffe://")?.split('/');
    parts.next()?;
    (parts.next()? == "ns").then_some(())?;
    parts.next()
}

/// The parts of an inbound request that its access log line and span need.
struct RequestDetails {
    method: String,
    path: String,
    authority: String,
    protocol: &'static str,
}

impl RequestDetails {
    /// The access log's entry for this request.
    fn entry<'a>(
        &'a self,
        direction: &'static str,
        request_id: &'a str,
        upstream_host: &'a str,
        upstream_cluster: &'a str,
    ) -> crate::metrics::AccessEntry<'a> {
        crate::metrics::AccessEntry {
            direction,
            method: &self.method,
            path: &self.path,
            authority: &self.authority,
            protocol: self.protocol,
            request_id,
            upstream_host,
            upstream_cluster,
        }
    }

    fn of<B>(req: &Request<B>) -> RequestDetails {
        RequestDetails::from(req.method(), req.uri(), req.headers(), req.version())
    }

    fn of_head(head: &http::request::Parts) -> RequestDetails {
        RequestDetails::from(&head.method, &head.uri, &head.headers, head.version)
    }

    fn from(method: &http::Method, uri: &Uri, headers: &HeaderMap, version: http::Version) -> RequestDetails {
        RequestDetails {
            method: method.as_str().to_string(),
            path: uri.path_and_query().map(|p| p.as_str().to_string()).unwrap_or_else(|| "/".into()),
            authority: headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("").to_string(),
            protocol: if version == http::Version::HTTP_2 { "HTTP/2" } else { "HTTP/1.1" },
        }
    }
}

/// The tags Istio's spans carry (Envoy's names), from what the metrics saw.
fn span_tags(
    shared: &Shared,
    r: &crate::metrics::RequestRecord<'_>,
    d: &RequestDetails,
    request_id: &str,
    cluster: &str,
    peer_address: &str,
) -> Vec<(&'static str, String)> {
    let (method, authority, path, protocol) = (d.method.as_str(), d.authority.as_str(), d.path.as_str(), d.protocol);
    vec![
        ("component", "proxy".into()),
        ("node_id", format!("{}.{}", shared.workload.name, shared.workload.namespace)),
        ("istio.namespace", shared.workload.namespace.clone()),
        ("istio.canonical_service", shared.me.app.clone()),
        ("istio.mesh_id", "cluster.local".into()),
        ("guid:x-request-id", request_id.into()),
        ("http.method", method.into()),
        ("http.url", format!("http://{authority}{path}")),
        ("http.protocol", protocol.into()),
        ("http.status_code", r.code.to_string()),
        ("response_flags", r.flags.into()),
        ("request_size", r.request_bytes.to_string()),
        ("response_size", r.response_bytes.to_string()),
        ("upstream_cluster", cluster.into()),
        ("peer.address", peer_address.into()),
    ]
}

/// Inbound policy, in Envoy's filter order: request authentication (JWT), authorization,
/// local rate limit. A refusal comes back with its response flags.
async fn admit(
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
        match snapshot.jwt.authenticate(&shared.jwks, req.headers_mut(), &uri).await {
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
