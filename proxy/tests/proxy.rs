//! The proxy in-process against a fake meshd that the test controls: pushes, ACKs, NACKs,
//! and traffic through real sockets.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http::{Response, StatusCode, header};
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use mesh_api::protocol::{MeshdMessage, ProxyMessage, Push, UPGRADE_TOKEN, Versioned};
use mesh_api::proxy_config::*;
use mesh_proxy::{MeshdSource, Options};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_util::codec::{Framed, LengthDelimitedCodec};

/// A fake meshd: accepts one discovery stream, answers the hello (proving it holds
/// `proof_token`) and CSRs (with a real CA), forwards config answers to `from_proxy`, and
/// sends what the test puts into the returned sender.
async fn fake_meshd(
    proof_token: &'static str,
) -> (SocketAddr, mpsc::UnboundedSender<MeshdMessage>, mpsc::UnboundedReceiver<ProxyMessage>) {
    fake_meshd_with_ttl(proof_token, meshd::ca::DEFAULT_WORKLOAD_TTL).await
}

async fn fake_meshd_with_ttl(
    proof_token: &'static str,
    ttl: Duration,
) -> (SocketAddr, mpsc::UnboundedSender<MeshdMessage>, mpsc::UnboundedReceiver<ProxyMessage>) {
    let ca_dir = tempfile::tempdir().expect("tmp");
    let ca = meshd::ca::Ca::open(&ca_dir.path().join("ca.json"), "cluster.local", ttl).expect("ca");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (to_proxy, mut to_proxy_rx) = mpsc::unbounded_channel::<MeshdMessage>();
    let (from_proxy_tx, from_proxy) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let (stream, _) = listener.accept().await.expect("accept");
        let (io_tx, mut io_rx) = mpsc::channel(1);
        let svc = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
            let io_tx = io_tx.clone();
            async move {
                assert_eq!(
                    req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()),
                    Some("Bearer t0ken")
                );
                tokio::spawn(async move {
                    if let Ok(up) = hyper::upgrade::on(req).await {
                        let _ = io_tx.send(up).await;
                    }
                });
                let mut r = Response::new(Full::new(Bytes::new()));
                *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
                r.headers_mut().insert(header::UPGRADE, header::HeaderValue::from_static(UPGRADE_TOKEN));
                r.headers_mut().insert(header::CONNECTION, header::HeaderValue::from_static("upgrade"));
                Ok::<_, std::convert::Infallible>(r)
            }
        });
        tokio::spawn(
            hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), svc).with_upgrades(),
        );
        let _keep = ca_dir;
        let up = io_rx.recv().await.expect("upgraded");
        let mut framed = Framed::new(TokioIo::new(up), LengthDelimitedCodec::new());
        // The hello comes first; answer it before anything the test queued.
        let Some(Ok(hello)) = framed.next().await else { return };
        let ProxyMessage::Hello { challenge, .. } = serde_json::from_slice(&hello).expect("hello") else {
            panic!("first message must be the hello")
        };
        let welcome = MeshdMessage::Welcome {
            meshd: "fake".into(),
            proxy_id: "default/client".into(),
            proof: mesh_api::protocol::discovery_proof(proof_token, &challenge),
        };
        framed.send(Bytes::from(serde_json::to_vec(&welcome).expect("json"))).await.expect("send");
        loop {
            tokio::select! {
                msg = to_proxy_rx.recv() => {
                    let Some(msg) = msg else { return };
                    framed.send(Bytes::from(serde_json::to_vec(&msg).expect("json"))).await.expect("send");
                }
                frame = framed.next() => {
                    let Some(Ok(frame)) = frame else { return };
                    let reply = match serde_json::from_slice(&frame).expect("proxy message") {
                        ProxyMessage::Csr { csr_pem } => {
                            let id = mesh_api::identity::SpiffeId::new("cluster.local", "default", "default");
                            let cert_pem = ca.sign(&csr_pem, &id).expect("sign");
                            Some(MeshdMessage::Certificate { cert_pem, trust_bundle_pem: ca.view().bundle_pem.clone() })
                        }
                        ProxyMessage::Identity(_) => None,
                        other => {
                            let _ = from_proxy_tx.send(other);
                            None
                        }
                    };
                    if let Some(reply) = reply {
                        framed.send(Bytes::from(serde_json::to_vec(&reply).expect("json"))).await.expect("send");
                    }
                }
            }
        }
    });
    (addr, to_proxy, from_proxy)
}

/// An endpoint that answers `name` to every request, over HTTP/1.1 or h2c like an inbound
/// listener (proxies talk h2c to each other).
async fn app(name: &'static str) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { return };
            tokio::spawn(async move {
                let svc = service_fn(move |_req| async move {
                    Ok::<_, std::convert::Infallible>(Response::new(Full::new(Bytes::from(name))))
                });
                let _ = hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    addr
}

/// A proxy with an outbound listener and no inbound ports, talking to `meshd`.
fn client_options(meshd: SocketAddr, token: &str) -> Options {
    Options {
        name: "client".into(),
        namespace: "default".into(),
        service_account: "default".into(),
        labels: Default::default(),
        inbound: vec![],
        inbound_bind: std::net::Ipv4Addr::LOCALHOST.into(),
        outbound: Some("127.0.0.1:0".parse().expect("addr")),
        outbound_tcp: Vec::new(),
        capture_outbound: None,
        capture_inbound: None,
        gateway_ports: Vec::new(),
        metrics: None,
        access_log: false,
        admin: "127.0.0.1:0".parse().expect("addr"),
        meshd: MeshdSource::Fixed {
            address: meshd.to_string(),
            token: token.into(),
            token_file: None,
            tls: None,
            mint: false,
        },
        peer_http2: true,
        limits: Default::default(),
    }
}

async fn get(proxy: SocketAddr, host: &str, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(proxy).await.expect("connect");
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .expect("write");
    let mut buf = String::new();
    s.read_to_string(&mut buf).await.expect("read");
    let code = buf.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (code, buf.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default())
}

fn config(path_prefix: StringMatcher, backend: SocketAddr) -> (Routes, Clusters, Endpoints) {
    let cluster = "outbound|80||web.default.svc.cluster.local".to_string();
    let routes = Routes {
        tcp: Vec::new(),
        passthrough: false,
        gateway_http: Vec::new(),
        gateway_tcp: Vec::new(),
        virtual_hosts: vec![VirtualHost {
            name: "web.default.svc.cluster.local:80".into(),
            domains: vec!["web".into()],
            port: 80,
            routes: vec![Route {
                name: "r".into(),
                matches: vec![RouteMatch { uri: Some(path_prefix), ..Default::default() }],
                clusters: vec![WeightedCluster {
                    cluster: cluster.clone(),
                    weight: 100,
                    request_headers: HeaderOps::default(),
                    response_headers: HeaderOps::default(),
                }],
                ..Default::default()
            }],
        }],
    };
    let clusters = Clusters {
        clusters: vec![Cluster {
            name: cluster.clone(),
            service: "web.default.svc.cluster.local".into(),
            port: 80,
            subset: None,
            lb_policy: LbPolicy::RoundRobin,
            hash: None,
            limits: None,
            outlier: None,
            passthrough: false,
            h2_upgrade: false,
            app_http: None,
            mesh_sni: None,
            tls: None,
        }],
    };
    let endpoints = Endpoints {
        clusters: [(
            cluster,
            vec![Endpoint {
                address: backend,
                workload: "default/web".into(),
                identity: String::new(),
                mtls: false,
                hostname: None,
            }],
        )]
        .into_iter()
        .collect(),
    };
    (routes, clusters, endpoints)
}

/// The first push of a whole config (nonce 1, versions r1/c1/e1/l1, no inbound policy).
fn first_push(routes: Routes, clusters: Clusters, endpoints: Endpoints) -> MeshdMessage {
    MeshdMessage::Push(Push {
        nonce: "1".into(),
        routes: Some(Versioned { version: "r1".into(), body: routes }),
        clusters: Some(Versioned { version: "c1".into(), body: clusters }),
        endpoints: Some(Versioned { version: "e1".into(), body: endpoints }),
        listeners: Some(Versioned { version: "l1".into(), body: Listeners::default() }),
        endpoints_delta: None,
        routes_delta: None,
    })
}

async fn next_answers(rx: &mut mpsc::UnboundedReceiver<ProxyMessage>, n: usize) -> Vec<ProxyMessage> {
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while out.len() < n {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, rx.recv()).await {
            Ok(Some(ProxyMessage::Hello { .. })) => {}
            Ok(Some(m)) => out.push(m),
            _ => panic!("proxy did not answer; got {out:?}"),
        }
    }
    out
}

#[tokio::test]
async fn nacked_config_leaves_the_previous_one_in_force() {
    let (meshd, to_proxy, mut from_proxy) = fake_meshd("t0ken").await;
    let backend = app("web-v1").await;
    let opts = client_options(meshd, "t0ken");
    let (bound, serve) = mesh_proxy::start(opts).await.expect("start");
    tokio::spawn(serve);
    let outbound = bound.outbound.expect("outbound");

    // Not ready before any config.
    assert_eq!(get(bound.admin, "x", "/ready").await.0, 503);

    let (routes, clusters, endpoints) = config(StringMatcher::Prefix("/".into()), backend);
    to_proxy.send(first_push(routes, clusters.clone(), endpoints)).expect("push");
    let acks = next_answers(&mut from_proxy, 4).await;
    assert!(acks.iter().all(|m| matches!(m, ProxyMessage::Ack { nonce, .. } if nonce == "1")), "{acks:?}");
    bound.shared.wait_ready(Duration::from_secs(10)).await;
    assert_eq!(get(bound.admin, "x", "/ready").await.0, 200);
    assert_eq!(get(outbound, "web", "/a").await, (200, "web-v1".into()));

    // A push whose routes do not compile (bad regex) is NACKed with the reason; the routes in
    // force stay, and traffic keeps flowing.
    let (bad_routes, _, _) = config(StringMatcher::Regex("(".into()), backend);
    to_proxy
        .send(MeshdMessage::Push(Push {
            nonce: "2".into(),
            routes: Some(Versioned { version: "r2".into(), body: bad_routes }),
            clusters: None,
            endpoints: None,
            listeners: None,
            endpoints_delta: None,
            routes_delta: None,
        }))
        .expect("push");
    let answers = next_answers(&mut from_proxy, 1).await;
    match &answers[0] {
        ProxyMessage::Nack { config_type, version, nonce, error } => {
            assert_eq!((config_type, version.as_str(), nonce.as_str()), (&ConfigType::Routes, "r2", "2"));
            assert!(error.contains("invalid regex"), "{error}");
        }
        other => panic!("expected a NACK, got {other:?}"),
    }
    assert_eq!(get(outbound, "web", "/a").await, (200, "web-v1".into()));
    let (_, dump) = get(bound.admin, "x", "/config_dump").await;
    assert!(dump.contains("\"r1\""), "routes r1 still in force: {dump}");

    // Routes that reference a cluster the proxy does not have are NACKed too.
    let (mut dangling, _, _) = config(StringMatcher::Prefix("/".into()), backend);
    dangling.virtual_hosts[0].routes[0].clusters[0].cluster = "outbound|80||gone".into();
    to_proxy
        .send(MeshdMessage::Push(Push {
            nonce: "3".into(),
            routes: Some(Versioned { version: "r3".into(), body: dangling }),
            clusters: None,
            endpoints: None,
            listeners: None,
            endpoints_delta: None,
            routes_delta: None,
        }))
        .expect("push");
    let answers = next_answers(&mut from_proxy, 1).await;
    assert!(
        matches!(&answers[0], ProxyMessage::Nack { error, .. } if error.contains("unknown cluster")),
        "{answers:?}"
    );

    // A good push after that is accepted and takes effect at once.
    let backend2 = app("web-v2").await;
    let (routes, clusters, endpoints) = config(StringMatcher::Exact("/b".into()), backend2);
    to_proxy
        .send(MeshdMessage::Push(Push {
            nonce: "4".into(),
            routes: Some(Versioned { version: "r4".into(), body: routes }),
            clusters: Some(Versioned { version: "c1".into(), body: clusters }),
            endpoints: Some(Versioned { version: "e2".into(), body: endpoints }),
            listeners: None,
            endpoints_delta: None,
            routes_delta: None,
        }))
        .expect("push");
    let acks = next_answers(&mut from_proxy, 3).await;
    assert!(acks.iter().all(|m| matches!(m, ProxyMessage::Ack { .. })), "{acks:?}");
    assert_eq!(get(outbound, "web", "/b").await, (200, "web-v2".into()));
    assert_eq!(get(outbound, "web", "/a").await.0, 404, "no route matches /a any more");
}

/// The serial of the certificate in force, from the admin API.
async fn serial(admin: SocketAddr) -> Option<String> {
    let (_, body) = get(admin, "x", "/certs").await;
    let v: serde_json::Value = serde_json::from_str(&body).ok()?;
    v["certificate"]["serial"].as_str().map(str::to_string)
}

#[tokio::test]
async fn certificates_renew_at_half_life_without_dropping_connections() {
    // Certificates that live 4 s: the proxy asks for a new one after about 2 s, on its own.
    let (meshd, to_proxy, _from_proxy) = fake_meshd_with_ttl("t0ken", Duration::from_secs(4)).await;
    let backend = app("web-v1").await;
    let (bound, serve) = mesh_proxy::start(client_options(meshd, "t0ken")).await.expect("start");
    tokio::spawn(serve);
    let (routes, clusters, endpoints) = config(StringMatcher::Prefix("/".into()), backend);
    to_proxy.send(first_push(routes, clusters, endpoints)).expect("push");
    assert!(bound.shared.wait_ready(Duration::from_secs(10)).await);
    let first = serial(bound.admin).await.expect("a certificate");
    // A keep-alive connection through the proxy, opened before the renewal.
    let mut conn = TcpStream::connect(bound.outbound.expect("outbound")).await.expect("connect");
    let deadline = Instant::now() + Duration::from_secs(10);
    let renewed = loop {
        let now = serial(bound.admin).await;
        if now.as_ref().is_some_and(|s| *s != first) {
            break now;
        }
        assert!(Instant::now() < deadline, "no renewal within 10 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_ne!(renewed.as_deref(), Some(first.as_str()));
    conn.write_all(b"GET /a HTTP/1.1\r\nHost: web\r\nConnection: close\r\n\r\n").await.expect("write");
    let mut buf = String::new();
    conn.read_to_string(&mut buf).await.expect("read");
    assert!(buf.starts_with("HTTP/1.1 200") && buf.ends_with("web-v1"), "{buf}");
}

#[tokio::test]
async fn config_from_a_meshd_without_the_token_is_refused() {
    // The fake meshd does not hold the proxy's token, so its proof is wrong: the proxy takes
    // nothing from it and never becomes ready.
    let (meshd, to_proxy, mut from_proxy) = fake_meshd("not-the-token").await;
    let backend = app("web-v1").await;
    let (bound, serve) = mesh_proxy::start(client_options(meshd, "t0ken")).await.expect("start");
    tokio::spawn(serve);
    let (routes, clusters, endpoints) = config(StringMatcher::Prefix("/".into()), backend);
    let _ = to_proxy.send(first_push(routes, clusters, endpoints));
    assert!(!bound.shared.wait_ready(Duration::from_millis(500)).await, "must not take config");
    assert!(from_proxy.try_recv().is_err(), "no ACK for an unauthenticated meshd");
    assert_eq!(get(bound.outbound.expect("outbound"), "web", "/").await.0, 503, "no config yet");
}

#[tokio::test]
async fn garbage_from_meshd_is_survived() {
    // A "meshd" that answers the discovery request with garbage: the proxy keeps retrying and
    // its listeners keep working.
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let meshd = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        for _ in 0..20 {
            let Ok((mut s, _)) = listener.accept().await else { return };
            let _ = s.write_all(b"\x00\x01garbage\r\n\r\n").await;
        }
    });
    let opts = client_options(meshd, "t");
    let (bound, serve) = mesh_proxy::start(opts).await.expect("start");
    tokio::spawn(serve);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (code, body) = get(bound.outbound.expect("outbound"), "web", "/").await;
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("no config from meshd yet"), "{body}");
    assert_eq!(get(bound.admin, "x", "/live").await.0, 200);
}

/// An endpoint that answers with the HTTP version it was reached with.
async fn version_app() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { return };
            tokio::spawn(async move {
                let svc = service_fn(move |req: hyper::Request<hyper::body::Incoming>| async move {
                    Ok::<_, std::convert::Infallible>(Response::new(Full::new(Bytes::from(format!(
                        "{:?}",
                        req.version()
                    )))))
                });
                let _ = hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    addr
}

#[tokio::test]
async fn each_request_keeps_its_http_version_to_the_next_hop() {
    let (meshd, to_proxy, _from_proxy) = fake_meshd("t0ken").await;
    let backend = version_app().await;
    let mut opts = client_options(meshd, "t0ken");
    opts.peer_http2 = false; // keep each request's protocol (the default)
    let (bound, serve) = mesh_proxy::start(opts).await.expect("start");
    tokio::spawn(serve);
    let (routes, clusters, endpoints) = config(StringMatcher::Prefix("/".into()), backend);
    to_proxy.send(first_push(routes, clusters, endpoints)).expect("push");
    assert!(bound.shared.wait_ready(Duration::from_secs(10)).await);
    let outbound = bound.outbound.expect("outbound");
    assert_eq!(get(outbound, "web", "/").await, (200, "HTTP/1.1".into()));
    // h2c from the app: HTTP/2 to the next hop too (gRPC needs it end to end).
    let tcp = TcpStream::connect(outbound).await.expect("connect");
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(hyper_util::rt::TokioExecutor::new(), TokioIo::new(tcp))
            .await
            .expect("h2c handshake");
    tokio::spawn(conn);
    // The :authority names the service, as a gRPC client pointed at its sidecar sends it.
    let req = hyper::Request::get("http://web/").body(http_body_util::Empty::<Bytes>::new()).expect("request");
    let resp = sender.send_request(req).await.expect("h2c through the proxy");
    assert_eq!(resp.status(), 200);
    let body = http_body_util::BodyExt::collect(resp.into_body()).await.expect("body").to_bytes();
    assert_eq!(&body[..], b"HTTP/2.0");
}

#[tokio::test]
async fn max_requests_per_connection_one_opens_a_connection_per_request() {
    let (meshd, to_proxy, _from_proxy) = fake_meshd("t0ken").await;
    let (backend, accepted) = counting_upstream(false).await;
    let mut opts = client_options(meshd, "t0ken");
    opts.peer_http2 = false; // the backend speaks HTTP/1.1 only
    let (bound, serve) = mesh_proxy::start(opts).await.expect("start");
    tokio::spawn(serve);
    let (routes, mut clusters, endpoints) = config(StringMatcher::Prefix("/".into()), backend);
    clusters.clusters[0].limits = Some(Limits { no_reuse: true, ..Default::default() });
    to_proxy.send(first_push(routes, clusters, endpoints)).expect("push");
    assert!(bound.shared.wait_ready(Duration::from_secs(10)).await);
    let outbound = bound.outbound.expect("outbound");
    for _ in 0..5 {
        assert_eq!(get(outbound, "web", "/").await.0, 200);
    }
    assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 5, "no connection was reused");
}

type Count = std::sync::Arc<std::sync::atomic::AtomicUsize>;

/// An HTTP/1.1 upstream that counts its connections; `close_after_response` drops each
/// connection right after its answer, without saying so (no `Connection: close`), as a server
/// that times out idle connections does.
async fn counting_upstream(close_after_response: bool) -> (SocketAddr, Count) {
    let (backend, accepted, _) = counting_upstream_with_closes(close_after_response).await;
    (backend, accepted)
}

/// Like `counting_upstream`, also counting the connections that ended.
async fn counting_upstream_with_closes(close_after_response: bool) -> (SocketAddr, Count, Count) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let backend = listener.local_addr().expect("addr");
    let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let closed = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = accepted.clone();
    let ended = closed.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else { return };
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let ended = ended.clone();
            tokio::spawn(async move {
                if close_after_response {
                    let mut head = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match stream.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    let _ = stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok").await;
                    return; // dropped: closed with no warning
                }
                let svc = service_fn(|_req| async {
                    Ok::<_, std::convert::Infallible>(Response::new(Full::new(Bytes::from("ok"))))
                });
                let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), svc).await;
                ended.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            });
        }
    });
    (backend, accepted, closed)
}

#[tokio::test]
async fn pooled_connections_are_reused_and_ones_the_upstream_closed_are_not() {
    for close_after_response in [false, true] {
        let (meshd, to_proxy, _from_proxy) = fake_meshd("t0ken").await;
        let (backend, accepted) = counting_upstream(close_after_response).await;
        let mut opts = client_options(meshd, "t0ken");
        opts.peer_http2 = false;
        let (bound, serve) = mesh_proxy::start(opts).await.expect("start");
        let serving = tokio::spawn(serve);
        let (routes, clusters, endpoints) = config(StringMatcher::Prefix("/".into()), backend);
        to_proxy.send(first_push(routes, clusters, endpoints)).expect("push");
        assert!(bound.shared.wait_ready(Duration::from_secs(10)).await);
        let outbound = bound.outbound.expect("outbound");
        for i in 0..20 {
            let (code, body) = get(outbound, "web", "/").await;
            assert_eq!((code, body.as_str()), (200, "ok"), "request {i}, close_after_response {close_after_response}");
        }
        let opened = accepted.load(std::sync::atomic::Ordering::SeqCst);
        if close_after_response {
            assert_eq!(opened, 20, "a connection the upstream closed is never used again");
        } else {
            assert_eq!(opened, 1, "one keep-alive connection serves every request in turn");
        }
        serving.abort();
    }
}

#[tokio::test]
async fn a_destination_rules_http_idle_timeout_closes_pooled_connections() {
    let (meshd, to_proxy, _from_proxy) = fake_meshd("t0ken").await;
    let (backend, accepted, closed) = counting_upstream_with_closes(false).await;
    let mut opts = client_options(meshd, "t0ken");
    opts.peer_http2 = false;
    let (bound, serve) = mesh_proxy::start(opts).await.expect("start");
    let serving = tokio::spawn(serve);
    let (routes, mut clusters, endpoints) = config(StringMatcher::Prefix("/".into()), backend);
    clusters.clusters[0].limits = Some(Limits { idle_timeout_ms: Some(200), ..Default::default() });
    to_proxy.send(first_push(routes, clusters, endpoints)).expect("push");
    assert!(bound.shared.wait_ready(Duration::from_secs(10)).await);
    let outbound = bound.outbound.expect("outbound");
    assert_eq!(get(outbound, "web", "/").await.0, 200);
    assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 1);
    // The pool closes the connection once it has been idle past the timeout.
    let deadline = Instant::now() + Duration::from_secs(10);
    while closed.load(std::sync::atomic::Ordering::SeqCst) == 0 {
        assert!(Instant::now() < deadline, "the idle pooled connection was never closed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(get(outbound, "web", "/").await.0, 200);
    assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 2, "a new connection after the idle one closed");
    serving.abort();
}
