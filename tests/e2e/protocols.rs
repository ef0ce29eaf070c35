//! Protocols through two proxies with mTLS, with real stacks where they run here: gRPC
//! (python grpcio and an h2c server of our own), WebSockets (python websockets), and the
//! HTTP version conversion Istio does by port (curl, h2load).

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};

use crate::harness::*;

const SERVICES: &str = r#"
apiVersion: v1
kind: Service
metadata: {name: grpc-echo}
spec:
  selector: {app: grpc-echo}
  ports: [{name: grpc, port: 7070}]
---
apiVersion: v1
kind: Service
metadata: {name: ws}
spec:
  selector: {app: ws}
  ports: [{name: http, port: 80}]
"#;

/// An h2c server answering like a gRPC server: a body frame, then trailers with grpc-status.
fn grpc_app(rt: &tokio::runtime::Runtime) -> SocketAddr {
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).expect("bind");
    let addr = listener.local_addr().expect("addr");
    rt.spawn(async move {
        loop {
            let Ok((s, _)) = listener.accept().await else { return };
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(|req: hyper::Request<hyper::body::Incoming>| async move {
                    let version = format!("{:?}", req.version());
                    // Every authority the request carried: the URI's (`:authority`), then Hosts.
                    let mut seen: Vec<String> = req.uri().authority().map(|a| a.to_string()).into_iter().collect();
                    seen.extend(
                        req.headers()
                            .get_all("host")
                            .iter()
                            .map(|h| String::from_utf8_lossy(h.as_bytes()).into_owned()),
                    );
                    let mut trailers = http::HeaderMap::new();
                    trailers.insert("grpc-status", http::HeaderValue::from_static("0"));
                    trailers.insert("grpc-message", http::HeaderValue::from_static("ok"));
                    let body = Full::new(Bytes::from(format!("hello over {version}")))
                        .with_trailers(async move { Some(Ok::<_, std::convert::Infallible>(trailers)) });
                    let mut resp = hyper::Response::new(body);
                    resp.headers_mut().insert("content-type", http::HeaderValue::from_static("application/grpc"));
                    if let Ok(v) = http::HeaderValue::from_str(&seen.join(" ")) {
                        resp.headers_mut().insert("x-seen-authority", v);
                    }
                    Ok::<_, std::convert::Infallible>(resp)
                });
                let _ = hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new())
                    .serve_connection(hyper_util::rt::TokioIo::new(s), svc)
                    .await;
            });
        }
    });
    addr
}

#[test]
fn grpc_trailers_cross_two_proxies_with_mtls() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("rt");
    let mut mesh = Mesh::new();
    mesh.install_with(&["meshConfig.accessLogFile=/dev/stdout"]);
    let file = mesh.home.path().join("svc.yaml");
    std::fs::write(&file, SERVICES).expect("write");
    mesh.ok(&["apply", "-f", file.to_str().expect("path")]);
    let grpc = grpc_app(&rt);
    mesh.proxy(&["--workload", "grpc-echo", "--labels", "app=grpc-echo", "--inbound", &format!("7070={grpc}")]);
    let client = mesh.proxy(&["--workload", "client"]);
    let outbound = client.outbound.expect("outbound");
    mesh.wait_synced(2);

    // gRPC: h2c to the sidecar, :authority naming the service; trailers come back intact.
    let (body, trailers) = rt.block_on(async {
        let tcp = tokio::net::TcpStream::connect(outbound).await.expect("connect");
        let (mut sender, conn) = hyper::client::conn::http2::handshake(
            hyper_util::rt::TokioExecutor::new(),
            hyper_util::rt::TokioIo::new(tcp),
        )
        .await
        .expect("h2c");
        tokio::spawn(conn);
        let req = hyper::Request::post("http://grpc-echo:7070/echo.Echo/Say")
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .body(Full::new(Bytes::from_static(b"\0\0\0\0\0")))
            .expect("request");
        let resp = tokio::time::timeout(Duration::from_secs(10), sender.send_request(req))
            .await
            .expect("in time")
            .expect("response");
        assert_eq!(resp.status(), 200);
        let collected = resp.into_body().collect().await.expect("body");
        let trailers = collected.trailers().cloned().unwrap_or_default();
        (collected.to_bytes(), trailers)
    });
    assert_eq!(&body[..], b"hello over HTTP/2.0", "HTTP/2 all the way to the app");
    assert_eq!(trailers.get("grpc-status").map(|v| v.as_bytes()), Some(&b"0"[..]), "{trailers:?}");
    assert_eq!(trailers.get("grpc-message").map(|v| v.as_bytes()), Some(&b"ok"[..]));
}

/// Start tests/e2e/DIR/server.py (kept by `mesh`); its port.
fn python_server(mesh: &mut Mesh, dir: &str) -> u16 {
    let script = format!("{}/../tests/e2e/{dir}/server.py", env!("CARGO_MANIFEST_DIR"));
    let mut server = std::process::Command::new("python3")
        .arg(&script)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3 server.py");
    let mut line = String::new();
    BufReader::new(server.stdout.take().expect("stdout")).read_line(&mut line).expect("port");
    mesh.keep(server);
    line.trim().parse().unwrap_or_else(|_| panic!("{script} prints its port, not {line:?}"))
}

/// Run tests/e2e/DIR/client.py with ARGS: what it saw (the JSON object it prints).
fn python_client(dir: &str, args: &[&str]) -> serde_json::Value {
    let script = format!("{}/../tests/e2e/{dir}/client.py", env!("CARGO_MANIFEST_DIR"));
    let out =
        std::process::Command::new("timeout").args(["60", "python3", &script]).args(args).output().expect("client.py");
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(text.trim())
        .unwrap_or_else(|e| panic!("client output {text:?} ({e}); stderr {}", String::from_utf8_lossy(&out.stderr)))
}

/// tests/e2e/grpc/client.py against `addr` with `authority`.
fn grpcio_client(addr: SocketAddr, authority: &str) -> serde_json::Value {
    python_client("grpc", &[&addr.to_string(), authority])
}

fn assert_every_call_works(seen: &serde_json::Value) {
    assert_eq!(seen["unary"], "echo:hi:m1", "{seen}");
    assert_eq!(seen["trailer"], "t1", "{seen}");
    assert_eq!(seen["fail"], "INVALID_ARGUMENT: bad input", "{seen}");
    assert_eq!(seen["fail_details"], "0803120962616420696e707574", "binary error details intact: {seen}");
    assert_eq!(seen["stream"], serde_json::json!(["s0", "s1", "s2"]), "{seen}");
    assert_eq!(seen["collect"], "a,b,c", "{seen}");
    assert_eq!(seen["chat"], serde_json::json!(["re:x", "re:y"]), "{seen}");
    assert_eq!(seen["big"], (3 << 20) + "echo:".len() + ":".len(), "{seen}");
    assert_eq!(seen["concurrent"], 200, "{seen}");
    assert_eq!(seen["health"], "SERVING", "{seen}");
    assert_eq!(seen["watch"], "SERVING", "{seen}");
    assert_eq!(seen["deadline"], "DEADLINE_EXCEEDED", "{seen}");
}

const GRPC_ECHO: &str = r#"
apiVersion: v1
kind: Service
metadata: {name: echo}
spec:
  selector: {app: echo}
  ports: [{name: grpc, port: 7070, targetPort: 17070}]
---
apiVersion: v1
kind: Service
metadata: {name: echo-unnamed}
spec:
  selector: {app: echo}
  ports: [{port: 7071, targetPort: 17071}]
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: edge}
spec:
  selector: {istio: ingressgateway}
  servers: [{port: {number: 8080, name: grpc, protocol: GRPC}, hosts: ["*"]}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: edge}
spec:
  hosts: ["*"]
  gateways: [edge]
  http: [{route: [{destination: {host: echo, port: {number: 7070}}}]}]
"#;

/// A real gRPC stack on both ends (python grpcio, gRPC C-core): a server behind one sidecar,
/// a client through another, mTLS between them; on a `grpc` port, on an unnamed port (the
/// caller's HTTP/2 is kept), and through the ingress gateway; then a `grpcStatus` fault.
/// C-core is strict where our own test client is not: one authority per request, `te: trailers`.
#[test]
fn grpcio_client_and_server_through_two_proxies_with_mtls() {
    if !prerequisite(
        "python3 with grpcio (pip install grpcio grpcio-health-checking)",
        python_has("grpc_health.v1.health"),
    ) {
        return;
    }
    let mut mesh = Mesh::new();
    mesh.install();
    apply(&mesh, "echo.yaml", GRPC_ECHO);
    let port = python_server(&mut mesh, "grpc");
    mesh.proxy(&[
        "--workload",
        "echo-v1",
        "--labels",
        "app=echo,version=v1",
        "--inbound",
        &format!("17070=127.0.0.1:{port}"),
        "--inbound",
        &format!("17071=127.0.0.1:{port}"),
    ]);
    let client = mesh.proxy(&["--workload", "client"]);
    let gateway = mesh.ingress_gateway(8080);
    mesh.wait_synced(3);
    let outbound = client.outbound.expect("outbound");
    assert_every_call_works(&grpcio_client(outbound, "echo:7070"));
    assert_every_call_works(&grpcio_client(outbound, "echo-unnamed:7071"));
    assert_every_call_works(&grpcio_client(gateway, "grpc.example.com"));
    // The same server as a host without a sidecar (a ServiceEntry): the client's proxy speaks
    // HTTP/2 to it itself, with the call's own :authority.
    apply(
        &mesh,
        "direct.yaml",
        &format!(
            "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {{name: echo-direct}}\nspec:\n  hosts: [echo-direct.example]\n  resolution: STATIC\n  ports: [{{number: 7072, name: grpc, protocol: GRPC}}]\n  endpoints: [{{address: 127.0.0.1, ports: {{grpc: {port}}}}}]\n"
        ),
    );
    mesh.wait_synced(3);
    assert_every_call_works(&grpcio_client(outbound, "echo-direct.example:7072"));

    // Through a Gateway API gateway, by GRPCRoute: one rule per gRPC service (or method).
    let grpc_route = r#"
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: edge-api}
spec:
  gatewayClassName: istio
  listeners: [{name: grpc, port: 80, protocol: HTTP, hostname: grpc.example.com}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: {name: echo}
spec:
  parentRefs: [{name: edge-api}]
  rules:
  - matches: [{method: {service: echo.Echo}}]
    backendRefs: [{name: echo, port: 7070}]
  - matches: [{method: {service: grpc.health.v1.Health, method: Check}}, {method: {service: grpc.health.v1.Health, method: Watch}}]
    backendRefs: [{name: echo, port: 7070}]
"#;
    apply(&mesh, "grpcroute.yaml", grpc_route);
    let api_gateway = mesh.proxy(&[
        "--workload",
        "edge-api-istio",
        "--labels",
        "gateway.networking.k8s.io/gateway-name=edge-api",
        "--no-outbound",
        "--gateway-port",
        "80=127.0.0.1:0",
    ]);
    mesh.wait_synced(4);
    assert_every_call_works(&grpcio_client(api_gateway.gateway[0], "grpc.example.com"));

    // A fault with a gRPC status: the client sees that status.
    apply(
        &mesh,
        "fault.yaml",
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: echo}\nspec:\n  hosts: [echo]\n  http:\n  - fault: {abort: {grpcStatus: UNAVAILABLE, percentage: {value: 100}}}\n    route: [{destination: {host: echo}}]\n",
    );
    mesh.wait_synced(4);
    let seen = grpcio_client(outbound, "echo:7070");
    assert!(seen["unary_error"].as_str().is_some_and(|e| e.starts_with("UNAVAILABLE")), "{seen}");
}

/// The HTTP version to the app is the port's, as Istio chooses it: `http` ports get HTTP/1.1
/// and `http2`/`grpc` ports HTTP/2, whatever the caller spoke; checked with curl and h2load.
#[test]
fn http_versions_are_converted_to_what_the_port_names() {
    if !prerequisite("curl and h2load (apt-get install -y curl nghttp2-client)", have("curl") && have("h2load")) {
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("rt");
    let (h1_app, h2_app) = (grpc_app(&rt), grpc_app(&rt));
    let mut mesh = Mesh::new();
    mesh.install_with(&["meshConfig.accessLogFile=/dev/stdout"]);
    apply(
        &mesh,
        "conv.yaml",
        "apiVersion: v1\nkind: Service\nmetadata: {name: to-h1}\nspec:\n  selector: {app: to-h1}\n  ports: [{name: http-web, port: 8080}]\n---\napiVersion: v1\nkind: Service\nmetadata: {name: to-h2}\nspec:\n  selector: {app: to-h2}\n  ports: [{name: http2, port: 8081}]\n",
    );
    let to_h1 = mesh.proxy(&["--workload", "to-h1", "--labels", "app=to-h1", "--inbound", &format!("8080={h1_app}")]);
    mesh.proxy(&["--workload", "to-h2", "--labels", "app=to-h2", "--inbound", &format!("8081={h2_app}")]);
    let client = mesh.proxy(&["--workload", "client"]);
    let gateway = mesh.ingress_gateway(8080);
    apply(
        &mesh,
        "edge.yaml",
        "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: edge}\nspec:\n  selector: {istio: ingressgateway}\n  servers: [{port: {number: 8080, name: http, protocol: HTTP}, hosts: [\"*\"]}]\n---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: edge}\nspec:\n  hosts: [\"*\"]\n  gateways: [edge]\n  http:\n  - match: [{uri: {prefix: /h2}}]\n    route: [{destination: {host: to-h2, port: {number: 8081}}}]\n  - route: [{destination: {host: to-h1, port: {number: 8080}}}]\n",
    );
    mesh.wait_synced(4);
    let out = format!("http://{}/", client.outbound.expect("outbound"));
    let curl = |version: &str, host: &str| {
        let o = std::process::Command::new("curl")
            .args(["-s", "-m", "10", version, "-H", &format!("Host: {host}"), &out])
            .output()
            .expect("curl");
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    assert_eq!(curl("--http2-prior-knowledge", "to-h1:8080"), "hello over HTTP/1.1");
    assert_eq!(curl("--http1.1", "to-h2:8081"), "hello over HTTP/2.0");
    let h2load = |args: &[&str]| {
        let o = std::process::Command::new("timeout")
            .args(["60", "h2load", "-n", "2000", "-c", "4"])
            .args(args)
            .arg(&out)
            .output()
            .expect("h2load");
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let h2_to_h1 = h2load(&["-m", "10", "-H", ":authority: to-h1:8080"]);
    assert!(h2_to_h1.contains("status codes: 2000 2xx"), "{h2_to_h1}");
    let h1_to_h2 = h2load(&["--h1", "-H", ":authority: to-h2:8081"]);
    assert!(h1_to_h2.contains("status codes: 2000 2xx"), "{h1_to_h2}");

    // The same through the ingress gateway.
    let edge = |version: &str, path: &str| {
        let o = std::process::Command::new("curl")
            .args(["-s", "-m", "10", version, &format!("http://{gateway}{path}")])
            .output()
            .expect("curl");
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    assert_eq!(edge("--http2-prior-knowledge", "/"), "hello over HTTP/1.1");
    assert_eq!(edge("--http1.1", "/h2"), "hello over HTTP/2.0");

    // Endpoints without a sidecar (ServiceEntry endpoints here) get what their port names
    // from the caller's proxy itself.
    apply(
        &mesh,
        "plain.yaml",
        &format!(
            "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {{name: plain-h1}}\nspec:\n  hosts: [plain-h1.example]\n  resolution: STATIC\n  ports: [{{number: 80, name: web, protocol: HTTP}}]\n  endpoints: [{{address: 127.0.0.1, ports: {{web: {}}}}}]\n---\napiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {{name: plain-h2}}\nspec:\n  hosts: [plain-h2.example]\n  resolution: STATIC\n  ports: [{{number: 80, name: web, protocol: HTTP2}}]\n  endpoints: [{{address: 127.0.0.1, ports: {{web: {}}}}}]\n",
            h1_app.port(),
            h2_app.port()
        ),
    );
    mesh.wait_synced(4);
    assert_eq!(curl("--http2-prior-knowledge", "plain-h1.example"), "hello over HTTP/1.1");
    assert_eq!(curl("--http1.1", "plain-h2.example"), "hello over HTTP/2.0");
    assert_eq!(curl("--http1.1", "plain-h1.example"), "hello over HTTP/1.1");
    // HTTP/2 carries one authority, the request's (gRPC C-core refuses anything else).
    let o = std::process::Command::new("curl")
        .args(["-s", "-m", "10", "-o", "/dev/null", "-D", "-", "--http1.1", "-H", "Host: plain-h2.example", &out])
        .output()
        .expect("curl");
    let head = String::from_utf8_lossy(&o.stdout).to_ascii_lowercase();
    assert!(head.contains("x-seen-authority: plain-h2.example\r\n"), "{head}");

    // h2UpgradePolicy UPGRADE: HTTP/1.1 requests cross to the peer proxy over HTTP/2; the app
    // still gets what its port names.
    apply(
        &mesh,
        "upgrade.yaml",
        "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: to-h1}\nspec:\n  host: to-h1\n  trafficPolicy: {connectionPool: {http: {h2UpgradePolicy: UPGRADE}}}\n",
    );
    mesh.wait_synced(4);
    let o = std::process::Command::new("curl")
        .args(["-s", "-m", "10", "--http1.1", "-H", "Host: to-h1:8080", "-H", "x-request-id: upgraded-1", &out])
        .output()
        .expect("curl");
    assert_eq!(String::from_utf8_lossy(&o.stdout), "hello over HTTP/1.1");
    let line = to_h1.json_line("the upgraded request at the server side", |v| v["x_request_id"] == "upgraded-1");
    assert_eq!(line["protocol"], "HTTP/2", "{line}");
}

const WS: &str = r#"
apiVersion: v1
kind: Service
metadata: {name: ws}
spec:
  selector: {app: ws}
  ports: [{name: http, port: 80, targetPort: 8765}]
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: edge}
spec:
  selector: {istio: ingressgateway}
  servers: [{port: {number: 8080, name: http, protocol: HTTP}, hosts: ["*"]}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ws}
spec:
  hosts: [ws, ws.example.com]
  gateways: [mesh, edge]
  http: [{route: [{destination: {host: ws}}]}]
"#;

/// A real WebSocket stack on both ends (python websockets): the server behind one sidecar,
/// the client through another with mTLS between them, and through the ingress gateway. The
/// client checks the handshake (Sec-WebSocket-Accept, the subprotocol), then text, a 1 MiB
/// binary message, a ping and the server's close code come through intact.
#[test]
fn websockets_client_and_server_through_two_proxies_and_the_gateway() {
    if !prerequisite("python3 with websockets (pip install websockets)", python_has("websockets.sync.server")) {
        return;
    }
    let mut mesh = Mesh::new();
    mesh.install_with(&["meshConfig.accessLogFile=/dev/stdout"]);
    apply(&mesh, "ws.yaml", WS);
    let port = python_server(&mut mesh, "ws");
    let server =
        mesh.proxy(&["--workload", "ws-v1", "--labels", "app=ws", "--inbound", &format!("8765=127.0.0.1:{port}")]);
    let client = mesh.proxy(&["--workload", "client"]);
    let gateway = mesh.ingress_gateway(8080);
    mesh.wait_synced(3);
    for (via, authority) in [(client.outbound.expect("outbound"), "ws"), (gateway, "ws.example.com")] {
        let seen = python_client("ws", &[&via.to_string(), authority, "/chat?room=1"]);
        assert_eq!(seen["error"], serde_json::Value::Null, "{seen}");
        assert_eq!(seen["subprotocol"], "chat", "{seen}");
        assert_eq!(seen["hello"], format!("hello /chat?room=1 {authority}"), "{seen}");
        assert_eq!(seen["text"], "ping through two proxies", "{seen}");
        assert_eq!(seen["binary"], 1 << 20, "{seen}");
        assert_eq!(seen["pong"], true, "{seen}");
        assert_eq!(seen["closed"], serde_json::json!([4001, "bye"]), "{seen}");
    }
    // The session is logged on both sides: 101, the path and the cluster.
    let line = client.json_line("the client's WebSocket log line", |v| v["response_code"] == 101);
    assert_eq!(line["path"], "/chat?room=1", "{line}");
    assert!(line["upstream_cluster"].as_str().is_some_and(|c| c.contains("|ws.default")), "{line}");
    let line = server.json_line("the server's WebSocket log line", |v| v["response_code"] == 101);
    assert_eq!(line["direction"], "inbound", "{line}");
}
