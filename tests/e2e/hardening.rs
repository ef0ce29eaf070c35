//! Hostile input, through real sockets: path and authority tricks against DENY and ALLOW-only
//! policies on every listener (outbound over mTLS, inbound in plain text, the ingress gateway),
//! header conditions, JWT forgeries, slow clients and descriptor exhaustion, label cardinality,
//! forwarding loops, proxy credentials, and input meshd must refuse.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use crate::harness::*;

const REVIEWS: &str = r#"
apiVersion: v1
kind: Service
metadata: {name: reviews}
spec:
  selector: {app: reviews}
  ports: [{name: http, port: 9080, targetPort: 9080}]
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
metadata: {name: reviews-edge}
spec:
  hosts: ["*"]
  gateways: [edge]
  http: [{route: [{destination: {host: reviews, port: {number: 9080}}}]}]
"#;

/// The three ways in: a client's outbound listener (then mTLS to reviews), reviews' inbound
/// listener in plain text, and the ingress gateway.
struct Entrances {
    outbound: SocketAddr,
    inbound: SocketAddr,
    gateway: SocketAddr,
    recorded: Recorded,
    reviews: Proxy,
}

fn reviews_mesh(mesh: &mut Mesh, settings: &[&str]) -> Entrances {
    mesh.install_with(settings);
    apply(mesh, "reviews.yaml", REVIEWS);
    let (app, recorded) = recording_app();
    let reviews = mesh.proxy(&[
        "--workload",
        "reviews-v1",
        "--labels",
        "app=reviews,version=v1",
        "--service-account",
        "bookinfo-reviews",
        "--inbound",
        &format!("9080={app}"),
    ]);
    let client = mesh.proxy(&["--workload", "productpage-v1", "--service-account", "bookinfo-productpage"]);
    let gateway = mesh.ingress_gateway(8080);
    mesh.wait_synced(3);
    Entrances { outbound: client.outbound.expect("outbound"), inbound: reviews.inbound[0], gateway, recorded, reviews }
}

/// A GET for `target` as written, with one Host header.
fn request(target: &str, host: &str) -> Vec<u8> {
    format!("GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").into_bytes()
}

/// The request paths the app received, in order.
fn paths(recorded: &Recorded) -> Vec<String> {
    recorded
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .filter_map(|(head, _)| head.split_whitespace().nth(1).map(str::to_string))
        .collect()
}

/// Ways to write `/admin` (or a path under it) that a raw-path check would not see as one.
const ADMIN_FORMS: &[&str] = &[
    "/admin",
    "/a/../admin",
    "/./admin",
    "/%61dmin",
    "/%2e%2e/admin",
    "/%2E%2E/%61dmin/x",
    "/x/..\\admin",
    "/public/../admin",
    "/public/%2e%2e/admin",
    "/.%2e/admin",
    "/admin/./x/../y",
    "/%2e/admin?x=1",
];

#[test]
fn path_tricks_do_not_pass_deny_or_allow_only_policies_on_any_listener() {
    let mut mesh = Mesh::new();
    let e = reviews_mesh(&mut mesh, &[]);
    apply(
        &mesh,
        "deny.yaml",
        r#"
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-admin}
spec:
  selector: {matchLabels: {app: reviews}}
  action: DENY
  rules: [{to: [{operation: {paths: ["/admin*"]}}]}]
"#,
    );
    mesh.wait_synced(3);
    for (listener, addr, absolute) in [
        ("outbound", e.outbound, false),
        ("outbound", e.outbound, true),
        ("inbound", e.inbound, false),
        ("gateway", e.gateway, false),
    ] {
        for form in ADMIN_FORMS {
            let target = if absolute { format!("http://reviews:9080{form}") } else { form.to_string() };
            let (code, body) = raw(addr, &request(&target, "reviews:9080"));
            assert_eq!((code, body.as_str()), (403, "RBAC: access denied"), "{listener} {target}");
        }
    }
    assert!(paths(&e.recorded).is_empty(), "the app saw {:?}", paths(&e.recorded));
    // What policy let through is what the app gets: the normalized path.
    assert_eq!(raw(e.outbound, &request("/public/./a/../%62?q=%2e", "reviews:9080")).0, 200);
    assert_eq!(raw(e.gateway, &request("/x/..\\public", "anything")).0, 200);
    assert_eq!(paths(&e.recorded), ["/public/b?q=%2e", "/public"]);

    // ALLOW-only: nothing outside /public, however it is written.
    mesh.ok(&["delete", "authorizationpolicy", "deny-admin"]);
    apply(
        &mesh,
        "allow.yaml",
        r#"
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow-public}
spec:
  selector: {matchLabels: {app: reviews}}
  action: ALLOW
  rules: [{to: [{operation: {paths: ["/public/*"]}}]}]
"#,
    );
    mesh.wait_synced(3);
    for addr in [e.outbound, e.inbound, e.gateway] {
        for target in [
            "/public/../admin",
            "/public/%2e%2e/admin",
            "/public/..\\admin",
            "/public/.%2e/secret",
            "/public/x/../../y",
        ] {
            let (code, body) = raw(addr, &request(target, "reviews:9080"));
            assert_eq!(code, 403, "{addr} {target}: {body}");
        }
        assert_eq!(raw(addr, &request("/public/%78", "reviews:9080")).0, 200);
    }
    assert_eq!(paths(&e.recorded)[2..], ["/public/x", "/public/x", "/public/x"]);
}

#[test]
fn merging_and_decoding_slashes_are_mesh_settings() {
    let mut mesh = Mesh::new();
    let e = reviews_mesh(&mut mesh, &["meshConfig.pathNormalization.normalization=DECODE_AND_MERGE_SLASHES"]);
    apply(
        &mesh,
        "deny.yaml",
        r#"
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-admin}
spec:
  selector: {matchLabels: {app: reviews}}
  action: DENY
  rules: [{to: [{operation: {paths: ["/admin/*"]}}]}]
"#,
    );
    mesh.wait_synced(3);
    for target in ["//admin/x", "/admin//x", "/%2Fadmin%2fx", "/x%2F..%2Fadmin/x", "/admin%5Cx"] {
        assert_eq!(raw(e.outbound, &request(target, "reviews:9080")).0, 403, "{target}");
    }
    assert_eq!(raw(e.inbound, &request("//public///x%2Fy", "reviews")).0, 200);
    assert_eq!(paths(&e.recorded), ["/public/x/y"]);
    let bad = mesh.run(&["install", "-y", "--set", "meshConfig.pathNormalization.normalization=SOMETIMES"]);
    assert_eq!(bad.code, BAD_INPUT);
    assert!(bad.stderr.contains("NONE, BASE, MERGE_SLASHES, DECODE_AND_MERGE_SLASHES"), "{}", bad.stderr);
}

#[test]
fn one_authority_exact_methods_and_joined_header_values() {
    let mut mesh = Mesh::new();
    let e = reviews_mesh(&mut mesh, &[]);
    apply(
        &mesh,
        "policies.yaml",
        r#"
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny}
spec:
  selector: {matchLabels: {app: reviews}}
  action: DENY
  rules:
  - to: [{operation: {hosts: ["admin.internal"]}}]
  - to: [{operation: {methods: ["DELETE"]}}]
  - when: [{key: "request.headers[x-user]", values: ["evil*"]}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow-token}
spec:
  selector: {matchLabels: {app: reviews}}
  action: ALLOW
  rules: [{when: [{key: "request.headers[x-token]", values: ["secret"]}]}]
"#,
    );
    mesh.wait_synced(3);
    let ok = "x-token: secret\r\n";
    let send = |addr, head: &str| raw(addr, format!("{head}Connection: close\r\n{ok}\r\n").as_bytes()).0;
    // Absolute form: the URI's authority is the one policy judges and the app gets.
    assert_eq!(send(e.inbound, "GET http://admin.internal/ HTTP/1.1\r\nHost: reviews:9080\r\n"), 403);
    assert_eq!(send(e.outbound, "GET http://reviews:9080/ HTTP/1.1\r\nHost: admin.internal\r\n"), 200);
    let got = e.recorded.lock().unwrap_or_else(|p| p.into_inner()).last().cloned().expect("a request");
    assert_eq!(header_of(&got.0, "host").as_deref(), Some("reviews:9080"));
    for addr in [e.inbound, e.outbound] {
        assert_eq!(send(addr, "GET /x HTTP/1.1\r\nHost: reviews:9080\r\nHost: admin.internal\r\n"), 400);
        assert_eq!(send(addr, "delete /x HTTP/1.1\r\nHost: reviews:9080\r\n"), 400, "lower-case method");
        assert_eq!(send(addr, "DELETE /x HTTP/1.1\r\nHost: reviews:9080\r\n"), 403);
    }
    assert_eq!(send(e.inbound, "GET http://reviews.default:9080/y HTTP/1.1\r\nHost: admin.internal\r\n"), 200);
    let got = e.recorded.lock().unwrap_or_else(|p| p.into_inner()).last().cloned().expect("a request");
    assert_eq!(header_of(&got.0, "host").as_deref(), Some("reviews.default:9080"));
    // Header values: repeated headers are one joined value, and bytes are matched as received.
    let with = |extra: &[u8]| {
        let mut r = b"GET / HTTP/1.1\r\nHost: reviews\r\nConnection: close\r\n".to_vec();
        r.extend_from_slice(extra);
        r.extend_from_slice(b"\r\n");
        raw(e.inbound, &r).0
    };
    assert_eq!(with(b"x-token: secret\r\n"), 200);
    assert_eq!(with(b"x-token: secret\r\nx-token: other\r\n"), 403, "joined: secret,other");
    assert_eq!(with(b"x-token: secret\r\nx-user: evil\xff\r\n"), 403, "non-ASCII bytes still match");
    assert_eq!(with(b"x-token: secret\r\nx-user: nice\r\nx-user: evil\r\n"), 200, "joined: nice,evil");
}

fn jwt(key: &jsonwebtoken::EncodingKey, claims: serde_json::Value) -> String {
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    header.kid = Some("k1".into());
    jsonwebtoken::encode(&header, &claims, key).expect("sign")
}

#[test]
fn jwt_claim_headers_missing_audiences_and_second_tokens() {
    let mut mesh = Mesh::new();
    let e = reviews_mesh(&mut mesh, &[]);
    let (key, jwks) = crate::security::jwt_key();
    let (forger, _) = crate::security::jwt_key();
    let inline = serde_json::to_string(&jwks).expect("json");
    apply(
        &mesh,
        "ra.yaml",
        &format!(
            r#"
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {{name: jwt}}
spec:
  selector: {{matchLabels: {{app: reviews}}}}
  jwtRules:
  - issuer: "https://issuer.example"
    jwks: {inline}
    audiences: [bookinfo]
    outputClaimToHeaders: [{{header: x-jwt-sub, claim: sub}}]
    outputPayloadToHeader: x-jwt-payload
"#
        ),
    );
    mesh.wait_synced(3);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs();
    let claims = |sub: &str, aud: Option<&str>| {
        let mut c = serde_json::json!({"iss": "https://issuer.example", "sub": sub, "exp": now + 600});
        if let Some(a) = aud {
            c["aud"] = a.into();
        }
        c
    };
    let good = jwt(&key, claims("jason", Some("bookinfo")));
    let forged = jwt(&forger, claims("admin", Some("bookinfo")));
    let send = |head: &str, target: &str| {
        raw(e.inbound, format!("GET {target} HTTP/1.1\r\nHost: reviews\r\nConnection: close\r\n{head}\r\n").as_bytes())
    };
    let last = || e.recorded.lock().unwrap_or_else(|p| p.into_inner()).last().cloned().expect("a request").0;
    // No token: the claim headers a caller sends are not passed on.
    assert_eq!(send("x-jwt-sub: admin\r\nx-jwt-payload: e30\r\n", "/").0, 200);
    assert_eq!((header_of(&last(), "x-jwt-sub"), header_of(&last(), "x-jwt-payload")), (None, None));
    // A verified token sets them, whatever the caller sent.
    assert_eq!(send(&format!("Authorization: Bearer {good}\r\nx-jwt-sub: admin\r\n"), "/").0, 200);
    assert_eq!(header_of(&last(), "x-jwt-sub").as_deref(), Some("jason"));
    // A token without `aud` is not for the listed audiences.
    let no_aud = jwt(&key, claims("jason", None));
    assert_eq!(
        send(&format!("Authorization: Bearer {no_aud}\r\n"), "/"),
        (401, "Audiences in Jwt are not allowed".into())
    );
    // Every token present must verify: a second header, a query parameter, a lower-case scheme.
    let two = format!("Authorization: Bearer {good}\r\nAuthorization: Bearer {forged}\r\n");
    assert_eq!(send(&two, "/").0, 401);
    assert_eq!(send(&format!("Authorization: Bearer {good}\r\n"), &format!("/?access_token={forged}")).0, 401);
    assert_eq!(send(&format!("Authorization: bearer {forged}\r\n"), "/").0, 401);
    assert_eq!(send(&format!("Authorization: Bearer {good}\r\n"), &format!("/?access_token={good}")).0, 200);
}

/// Read from `s` until the peer closes; how long that took (None: still open at `limit`).
fn closed_within(s: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let start = Instant::now();
    s.set_read_timeout(Some(Duration::from_millis(200))).expect("timeout");
    let mut buf = [0u8; 4096];
    while start.elapsed() < limit {
        match s.read(&mut buf) {
            Ok(0) => return Some(start.elapsed()),
            Ok(_) => {}
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(_) => return Some(start.elapsed()),
        }
    }
    None
}

#[test]
fn slow_clients_time_out_and_a_descriptor_flood_degrades_into_refusals() {
    let mut mesh = Mesh::new();
    mesh.install();
    apply(&mesh, "reviews.yaml", REVIEWS);
    let app = app("reviews-v1");
    let reviews = mesh.proxy_with_fd_limit(
        256,
        &[
            "--workload",
            "reviews-v1",
            "--labels",
            "app=reviews,version=v1",
            "--inbound",
            &format!("9080={app}"),
            "--request-headers-timeout",
            "1s",
            "--stream-idle-timeout",
            "1s",
            "--tls-handshake-timeout",
            "1s",
            "--idle-timeout",
            "2s",
        ],
    );
    let client = mesh.proxy(&["--workload", "productpage-v1"]);
    mesh.wait_synced(2);
    let inbound = reviews.inbound[0];
    let limit = Duration::from_secs(8);
    // A request head that never ends; a body that stops; a TLS handshake that stops; an idle
    // keep-alive connection: each is closed by its timeout.
    let mut half_head = TcpStream::connect(inbound).expect("connect");
    half_head.write_all(b"GET / HTTP/1.1\r\nHost: rev").expect("write");
    let mut half_body = TcpStream::connect(inbound).expect("connect");
    half_body.write_all(b"POST / HTTP/1.1\r\nHost: reviews\r\nContent-Length: 100\r\n\r\nabc").expect("write");
    let mut half_tls = TcpStream::connect(inbound).expect("connect");
    half_tls.write_all(&[0x16, 0x03, 0x01]).expect("write");
    let mut idle = TcpStream::connect(inbound).expect("connect");
    idle.write_all(b"GET / HTTP/1.1\r\nHost: reviews\r\n\r\n").expect("write");
    for (what, s) in [("head", &mut half_head), ("body", &mut half_body), ("tls", &mut half_tls), ("idle", &mut idle)] {
        assert!(closed_within(s, limit).is_some(), "the half-sent {what} connection is still open after {limit:?}");
    }

    // A flood of one-byte connections, more than the 256 descriptors the proxy has: it keeps
    // serving real requests (they take the place of the oldest connection without a request),
    // its admin API answers, and it never runs out of descriptors.
    let flood: Vec<TcpStream> = (0..600)
        .filter_map(|_| {
            let mut s = TcpStream::connect(inbound).ok()?;
            s.write_all(b"G").ok()?;
            Some(s)
        })
        .collect();
    assert!(flood.len() > 300, "the flood opened {} connections", flood.len());
    for _ in 0..5 {
        assert_eq!(get(client.outbound.expect("outbound"), "reviews:9080", "/", false, &[]).0, 200);
        assert_eq!(get(inbound, "reviews:9080", "/", false, &[]).0, 200, "plain text during the flood");
    }
    assert_eq!(get(reviews.admin, "localhost", "/ready", false, &[]).0, 200);
    assert!(open_fds(reviews.pid) < 256, "{} descriptors open", open_fds(reviews.pid));
    let metrics = get(reviews.admin, "localhost", "/stats/prometheus", false, &[]).1;
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("mesh_proxy_downstream_rejected_total{listener=\"inbound\",cause=\"evicted\"}")),
        "evictions are counted:\n{metrics}"
    );
    drop(flood);
}

#[test]
fn requests_over_the_in_flight_cap_get_503_and_the_cap_frees_as_they_finish() {
    let mut mesh = Mesh::new();
    mesh.install();
    apply(&mesh, "reviews.yaml", REVIEWS);
    // The app holds its first two requests for a while and answers the rest at once.
    let (app, seen) = scripted_app(|n| (200, "ok", Duration::from_secs(if n < 2 { 4 } else { 0 })));
    let reviews = mesh.proxy(&[
        "--workload",
        "reviews-v1",
        "--labels",
        "app=reviews,version=v1",
        "--inbound",
        &format!("9080={app}"),
        "--max-requests",
        "2",
    ]);
    mesh.wait_synced(1);
    let inbound = reviews.inbound[0];
    let held: Vec<_> = (0..2)
        .map(|_| {
            std::thread::spawn(move || {
                raw(inbound, b"GET /slow HTTP/1.1\r\nHost: reviews\r\nConnection: close\r\n\r\n")
            })
        })
        .collect();
    eventually("the app holds two requests", Duration::from_secs(10), || {
        (seen.load(std::sync::atomic::Ordering::SeqCst) >= 2).then_some(())
    });
    let (status, body) = raw(inbound, b"GET / HTTP/1.1\r\nHost: reviews\r\nConnection: close\r\n\r\n");
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("overloaded"), "{body}");
    // The proxy's own API is another listener: it still answers.
    assert_eq!(get(reviews.admin, "localhost", "/ready", false, &[]).0, 200);
    for h in held {
        assert_eq!(h.join().expect("held request").0, 200, "the held requests complete");
    }
    assert_eq!(get(inbound, "reviews:9080", "/", false, &[]).0, 200, "the cap frees as requests finish");
    let metrics = get(reviews.admin, "localhost", "/stats/prometheus", false, &[]).1;
    assert!(
        metrics
            .lines()
            .any(|l| l
                .starts_with("mesh_proxy_downstream_rejected_total{listener=\"inbound\",cause=\"request_limit\"} 1")),
        "the refusal is counted:\n{metrics}"
    );
}

#[test]
fn request_labels_come_from_config_not_from_host_headers() {
    let mut mesh = Mesh::new();
    let e = reviews_mesh(&mut mesh, &[]);
    let before = rss_kib(e.reviews.pid);
    // 20,000 distinct Hosts over keep-alive connections, four at a time.
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let inbound = e.inbound;
            std::thread::spawn(move || {
                let mut s = TcpStream::connect(inbound).expect("connect");
                s.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
                s.set_nodelay(true).expect("nodelay");
                let mut reader = std::io::BufReader::new(s.try_clone().expect("clone"));
                for i in 0..5_000 {
                    s.write_all(format!("GET / HTTP/1.1\r\nHost: h{t}-{i}.example\r\n\r\n").as_bytes()).expect("write");
                    let mut head = String::new();
                    loop {
                        let mut line = String::new();
                        std::io::BufRead::read_line(&mut reader, &mut line).expect("read");
                        if line == "\r\n" {
                            break;
                        }
                        head.push_str(&line);
                    }
                    let len: usize = header_of(&head, "content-length").and_then(|l| l.parse().ok()).unwrap_or(0);
                    let mut body = vec![0; len];
                    reader.read_exact(&mut body).expect("body");
                    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("load thread");
    }
    let metrics = get(e.reviews.admin, "localhost", "/stats/prometheus", false, &[]).1;
    let series: Vec<&str> = metrics
        .lines()
        .filter(|l| l.starts_with("istio_requests_total{") && l.contains("reporter=\"destination\""))
        .collect();
    assert_eq!(series.len(), 1, "{series:#?}");
    assert!(series[0].contains("destination_service=\"reviews.default.svc.cluster.local\""), "{}", series[0]);
    let grown = rss_kib(e.reviews.pid).saturating_sub(before);
    assert!(grown < 32 * 1024, "RSS grew {grown} KiB over 20,000 Hosts");
}

#[test]
fn requests_addressed_to_the_proxy_itself_are_refused_not_looped() {
    let mut mesh = Mesh::new();
    mesh.install();
    let p = mesh.proxy(&["--workload", "looper"]);
    mesh.wait_synced(1);
    let out = p.outbound.expect("outbound");
    let fds = open_fds(p.pid);
    // Its own listener by address, and by a name only the resolver turns into it: the second
    // comes back once and is recognised by its mark.
    for host in [out.to_string(), format!("localhost:{}", out.port()), format!("127.1:{}", out.port())] {
        for absolute in [false, true] {
            let (code, body) = get(out, &host, "/", absolute, &[]);
            assert_eq!(code, 508, "{host}: {body}");
            assert!(body.contains("loop"), "{body}");
        }
    }
    let admin = format!("127.0.0.1:{}", p.admin.port());
    assert_eq!(get(out, &admin, "/", false, &[]).0, 508, "the admin listener too");
    assert!(open_fds(p.pid) < fds + 20, "descriptors: {fds} before, {} after", open_fds(p.pid));
    // Forged marks of other proxies are fine, up to a bound.
    assert_ne!(get(out, "127.0.0.1:1", "/", false, &[("x-mesh-via", "a,b")]).0, 508);
    assert_eq!(get(out, "127.0.0.1:1", "/", false, &[("x-mesh-via", "1,2,3,4,5,6,7,8")]).0, 508);
}

#[test]
fn a_proxy_token_registers_only_its_own_workload() {
    let mut mesh = Mesh::new();
    mesh.install();
    apply(&mesh, "reviews.yaml", REVIEWS);
    let dir = mesh.home.path().to_path_buf();
    let token_file = dir.join("reviews.token");
    mesh.ok(&[
        "proxy",
        "token",
        "create",
        "--workload",
        "reviews-v1",
        "--service-account",
        "bookinfo-reviews",
        "--file",
        token_file.to_str().expect("path"),
    ]);
    let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&token_file).expect("token").permissions());
    assert_eq!(mode & 0o777, 0o600);
    let t = token_file.to_str().expect("path");
    let app = app("reviews-v1");
    mesh.proxy(&[
        "--workload",
        "reviews-v1",
        "--service-account",
        "bookinfo-reviews",
        "--labels",
        "app=reviews",
        "--token-file",
        t,
        "--inbound",
        &format!("9080={app}"),
    ]);
    mesh.wait_synced(1);
    // The same token claiming another service account, or another workload: refused, with why.
    let refused = |args: &[&str], why: &str| {
        let p = mesh
            .cmd()
            .args(["proxy", "run"])
            .args(args)
            .env("RUST_LOG", "warn")
            .output_with_timeout(Duration::from_secs(4));
        assert!(p.contains(why), "expected {why:?} in:\n{p}");
    };
    refused(
        &["--workload", "reviews-v1", "--service-account", "admin", "--token-file", t],
        "a proxy token registers only its own workload",
    );
    refused(
        &["--workload", "ratings-v1", "--service-account", "bookinfo-reviews", "--token-file", t],
        "a proxy token registers only its own workload",
    );
    // The admin token is the CLI's, not a proxy credential.
    let admin_token = dir.join("token");
    refused(&["--workload", "x", "--token-file", admin_token.to_str().expect("path")], "is the CLI's credential");
    // A token made for a short time expires.
    let short = mesh.ok(&["proxy", "token", "create", "--workload", "w", "--valid-for", "1s"]);
    let short_file = dir.join("short.token");
    std::fs::write(&short_file, short.stdout.trim()).expect("write");
    std::thread::sleep(Duration::from_millis(1100)); // the token's own clock, in whole seconds
    refused(&["--workload", "w", "--token-file", short_file.to_str().expect("path")], "expired");
    let statuses = mesh.statuses();
    assert_eq!(statuses.len(), 1, "only the rightful proxy registered: {statuses:?}");
}

/// Run a command for `limit`, then kill it; everything it printed.
trait OutputWithTimeout {
    fn output_with_timeout(&mut self, limit: Duration) -> String;
}

impl OutputWithTimeout for std::process::Command {
    fn output_with_timeout(&mut self, limit: Duration) -> String {
        let mut child =
            self.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().expect("spawn");
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline && child.try_wait().ok().flatten().is_none() {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let out = child.wait_with_output().expect("output");
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
    }
}

#[test]
fn foreign_metadata_headers_out_of_range_values_and_huge_annotations() {
    let mut mesh = Mesh::new();
    let e = reviews_mesh(&mut mesh, &[]);
    let head = "GET / HTTP/1.1\r\nHost: reviews:9080\r\nConnection: close\r\nx-envoy-peer-metadata: Zm9yZ2Vk\r\nx-envoy-peer-metadata-id: sidecar~forged\r\nx-mesh-via: abc\r\n\r\n";
    assert_eq!(raw(e.outbound, head.as_bytes()).0, 200);
    assert_eq!(raw(e.inbound, head.as_bytes()).0, 200);
    for (got, _) in e.recorded.lock().unwrap_or_else(|p| p.into_inner()).iter() {
        for h in ["x-envoy-peer-metadata", "x-envoy-peer-metadata-id", "x-mesh-via"] {
            assert_eq!(header_of(got, h), None, "{h} reached the app:\n{got}");
        }
    }
    let dir = mesh.home.path();
    let cases = [
        ("retries.yaml", "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: r}\nspec:\n  hosts: [reviews]\n  http: [{route: [{destination: {host: reviews}}], retries: {attempts: 4294967296}}]\n".to_string(), "spec.http[0].retries.attempts"),
        ("pool.yaml", "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: r}\nspec:\n  host: reviews\n  trafficPolicy: {connectionPool: {tcp: {maxConnections: 2147483648}}}\n".to_string(), "spec.trafficPolicy.connectionPool.tcp.maxConnections"),
        ("annotation.yaml", format!("apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata:\n  name: r\n  annotations: {{big: {}}}\nspec: {{host: reviews}}\n", "x".repeat(10 * 1024 * 1024)), "metadata.annotations"),
    ];
    for (file, yaml, field) in cases {
        let path = dir.join(file);
        std::fs::write(&path, yaml).expect("write");
        let r = mesh.run(&["apply", "-f", path.to_str().expect("path")]);
        assert_eq!(r.code, BAD_INPUT, "{file}: {}", r.stdout);
        assert!(r.stderr.contains(field), "{file}: {}", r.stderr);
    }
    assert_eq!(mesh.run(&["get", "destinationrule", "r"]).code, FAILED, "nothing was stored");
}

#[test]
fn an_apply_whose_answer_is_lost_says_the_outcome_is_unknown() {
    let mesh = Mesh::new();
    // Not meshd: a listener that reads the request and closes without answering, as a meshd
    // that commits and then dies would (nothing real can be made to lose exactly that reply).
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        for mut s in listener.incoming().flatten() {
            let mut buf = [0u8; 65536];
            let n = s.read(&mut buf).unwrap_or(0);
            // Reads (the live resources apply compares with) are answered; the change is not.
            if buf[..n].starts_with(b"GET ") {
                let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n[]");
            }
        }
    });
    std::fs::create_dir_all(mesh.home.path()).expect("home");
    std::fs::write(mesh.home.path().join("token"), "t").expect("token");
    // A pid no process has (above the kernel's pid_max), so that dropping the mesh kills nothing.
    let info =
        serde_json::json!({"address": addr.to_string(), "pid": 999_999_999u32, "version": "x", "started_unix": 0});
    std::fs::write(mesh.home.path().join("meshd.json"), info.to_string()).expect("info");
    let file = mesh.home.path().join("vs.yaml");
    std::fs::write(&file, "apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec:\n  selector: {app: s}\n  ports: [{name: http, port: 80}]\n").expect("write");
    let r = mesh.run(&["apply", "-f", file.to_str().expect("path")]);
    assert_eq!(r.code, UNAVAILABLE, "{}", r.stderr);
    assert!(r.stderr.contains("may or may not have made the change") && r.stderr.contains("mesh get"), "{}", r.stderr);
    std::fs::remove_file(mesh.home.path().join("meshd.json")).expect("remove meshd.json");
}

#[test]
fn meshd_out_of_descriptors_backs_off_and_recovers() {
    let mesh = Mesh::new();
    let mut cmd = std::process::Command::new("sh");
    cmd.args(["-c", "ulimit -n 64 && exec \"$0\" \"$@\"", MESH, "install", "-y", "--set", "meshd.listen=127.0.0.1:0"])
        .env("MESH_HOME", mesh.home.path())
        .env("NO_COLOR", "1");
    let out = cmd.output().expect("install");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let pid = mesh.meshd_pid().expect("meshd pid");
    let info: serde_json::Value =
        serde_json::from_slice(&std::fs::read(mesh.home.path().join("meshd.json")).expect("info")).expect("json");
    let addr: SocketAddr = info["address"].as_str().expect("address").parse().expect("addr");
    let log = mesh.home.path().join("meshd.log");
    let log_before = std::fs::metadata(&log).map(|m| m.len()).unwrap_or(0);
    // Hold more connections than meshd has descriptors: its accepts fail with EMFILE.
    let held: Vec<TcpStream> = (0..100).filter_map(|_| TcpStream::connect(addr).ok()).collect();
    std::thread::sleep(Duration::from_millis(300));
    let cpu_before = cpu_ticks(pid);
    std::thread::sleep(Duration::from_secs(2));
    let cpu = cpu_ticks(pid) - cpu_before;
    assert!(cpu < 50, "meshd used {cpu}/100 s of CPU in 2 s while out of descriptors");
    let logged = std::fs::metadata(&log).map(|m| m.len()).unwrap_or(0) - log_before;
    assert!(logged < 4096, "meshd logged {logged} bytes while out of descriptors");
    drop(held);
    eventually("the CLI reaches meshd again", Duration::from_secs(15), || {
        (mesh.run(&["proxy-status"]).code == 0).then_some(())
    });
}

#[test]
fn a_destination_rules_tcp_idle_timeout_closes_quiet_tcp_connections_only() {
    if !corpus("a_destination_rules_tcp_idle_timeout_closes_quiet_tcp_connections_only") {
        return;
    }
    use std::io::BufRead;
    let mut mesh = Mesh::new();
    mesh.install();
    mesh.ok(&["apply", "-f", &shared("samples/tcp-echo/tcp-echo-services.yaml")]);
    let echo = crate::traffic::tcp_echo("echo");
    mesh.proxy(&[
        "--workload",
        "tcp-echo-v1",
        "--labels",
        "app=tcp-echo,version=v1",
        "--inbound",
        &format!("9000={echo}"),
    ]);
    let client = mesh.proxy(&["--workload", "sleep", "--outbound-tcp", "tcp-echo:9000=127.0.0.1:0"]);
    apply(
        &mesh,
        "dr.yaml",
        r#"
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: tcp-echo}
spec:
  host: tcp-echo
  trafficPolicy: {connectionPool: {tcp: {idleTimeout: 1s}}}
"#,
    );
    mesh.wait_synced(2);
    let say = |s: &mut TcpStream, r: &mut std::io::BufReader<TcpStream>, line: &str| {
        s.write_all(format!("{line}\n").as_bytes()).expect("write");
        let mut answer = String::new();
        r.read_line(&mut answer).expect("read");
        assert_eq!(answer.trim(), format!("echo {line}"));
    };
    let open = || {
        let s = TcpStream::connect(client.tcp[0]).expect("connect");
        let r = std::io::BufReader::new(s.try_clone().expect("clone"));
        (s, r)
    };
    let (mut quiet, mut quiet_r) = open();
    let (mut busy, mut busy_r) = open();
    say(&mut quiet, &mut quiet_r, "hello");
    // The busy connection talks every 300 ms for 3 s: never idle for a second.
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(3) {
        say(&mut busy, &mut busy_r, "still here");
        std::thread::sleep(Duration::from_millis(300));
    }
    let closed = closed_within(&mut quiet, Duration::from_secs(1));
    assert!(closed.is_some(), "the quiet connection is closed after 1 s without bytes");
    say(&mut busy, &mut busy_r, "last");
}

/// CONNECT, new on the outbound listener, as an attacker sends it: targets without a port, with
/// user information or garbage, the proxy's own listeners, and a flood of tunnels that are
/// opened and dropped; the proxy answers each with a clear refusal and keeps serving.
#[test]
fn crafted_connect_targets_are_refused_and_a_tunnel_flood_leaves_the_proxy_serving() {
    let mut mesh = Mesh::new();
    mesh.install();
    apply(&mesh, "reviews.yaml", REVIEWS);
    let client = mesh.proxy(&["--workload", "client"]);
    mesh.wait_synced(1);
    let out = client.outbound.expect("outbound");
    let connect = |target: &str| {
        raw(out, format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\nConnection: close\r\n\r\n").as_bytes())
    };
    for target in ["example.com", "user@127.0.0.1:80", "127.0.0.1:notaport", "[::1", "%00:80", "/etc/passwd"] {
        let (status, body) = connect(target);
        assert!(status == 400, "CONNECT {target:?}: {status} {body}");
    }
    assert_eq!(connect(&out.to_string()).0, 508, "a tunnel to the proxy's own listener is a loop");
    assert_eq!(connect(&client.admin.to_string()).0, 508, "nor to its admin API");
    // 300 tunnels to a closed port: refused, and nothing is left open.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr");
    for _ in 0..300 {
        assert_eq!(connect(&closed.to_string()).0, 503);
    }
    let echo = crate::traffic::tcp_echo("e");
    let tunnels: Vec<_> = (0..300)
        .filter_map(|_| {
            let mut s = TcpStream::connect(out).ok()?;
            s.write_all(format!("CONNECT {echo} HTTP/1.1\r\nHost: {echo}\r\n\r\n").as_bytes()).ok()?;
            Some(s)
        })
        .collect();
    drop(tunnels);
    assert_eq!(get(out, "reviews:9080", "/", false, &[]).0, 503, "still routing (reviews has no endpoint)");
    eventually("tunnels closed", Duration::from_secs(10), || (open_fds(client.pid) < 64).then_some(()));
}

/// meshd's monitoring port, which now also serves `/debug/proxies`, `/debug/config` and
/// `/debug/ca` to `mesh` on a cluster, read as an attacker would: garbage gets 400, crafted
/// and oversized proxy ids 404 (never a file, never a crash), half-sent heads are closed by the
/// header timeout while others are served, and a burst of requests leaves it answering.
#[test]
fn meshd_monitoring_port_takes_garbage_crafted_ids_and_slow_clients() {
    let mut mesh = Mesh::new();
    mesh.install();
    mesh.proxy(&["--workload", "reviews-v1"]);
    mesh.wait_synced(1);
    let info: serde_json::Value =
        serde_json::from_slice(&std::fs::read(mesh.home.path().join("meshd.json")).expect("info")).expect("json");
    let monitoring: std::net::SocketAddr =
        info["monitoring"].as_str().and_then(|a| a.parse().ok()).expect("monitoring address");

    let mut garbage = TcpStream::connect(monitoring).expect("connect");
    let noise: Vec<u8> = (0..20_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    let _ = garbage.write_all(&noise);
    garbage.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    let mut answer = [0u8; 64];
    let n = garbage.read(&mut answer).unwrap_or(0);
    assert!(String::from_utf8_lossy(&answer[..n]).starts_with("HTTP/1.1 400"), "{:?}", &answer[..n]);

    let long = "a".repeat(6000);
    for id in ["../../etc/passwd", "%00%ff", "", long.as_str(), "default/reviews-v1%2F..%2F..", "a&id=b"] {
        let (code, _) = get(monitoring, "meshd", &format!("/debug/config?id={id}"), false, &[]);
        assert_eq!(code, 404, "id {:?}", &id[..id.len().min(40)]);
    }
    let (code, body) = get(monitoring, "meshd", "/debug/config?id=default/reviews-v1", false, &[]);
    assert!(code == 200 && body.contains("\"routes\""), "{code} {body}");

    let mut slow: Vec<TcpStream> = (0..50)
        .map(|_| {
            let mut s = TcpStream::connect(monitoring).expect("connect");
            s.write_all(b"GET /debug/prox").expect("write");
            s
        })
        .collect();
    assert_eq!(get(monitoring, "meshd", "/debug/proxies", false, &[]).0, 200, "served beside 50 slow clients");
    assert!(closed_within(&mut slow[0], Duration::from_secs(20)).is_some(), "a half-sent head is closed");

    let burst: Vec<_> = (0..8)
        .map(|_| {
            std::thread::spawn(move || {
                (0..100).filter(|_| get(monitoring, "meshd", "/debug/proxies", false, &[]).0 == 200).count()
            })
        })
        .collect();
    let ok: usize = burst.into_iter().map(|t| t.join().expect("thread")).sum();
    assert_eq!(ok, 800, "every request of the burst answered");
    assert_eq!(get(monitoring, "meshd", "/debug/ca", false, &[]).0, 200);
}
