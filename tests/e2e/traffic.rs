//! Traffic management with Istio's own bookinfo files and real processes: header routing,
//! fault injection, timeouts, retries, rewrites, redirects, direct responses, header changes.

use std::time::{Duration, Instant};

use crate::harness::*;

fn apply_file(mesh: &Mesh, path: &str) {
    mesh.ok(&["apply", "-f", path]);
}

/// bookinfo's Services and DestinationRules, and a productpage client proxy.
fn bookinfo(mesh: &mut Mesh) -> std::net::SocketAddr {
    bookinfo_with(mesh, &[])
}

/// [`bookinfo`] with mesh settings (`install --set`).
fn bookinfo_with(mesh: &mut Mesh, settings: &[&str]) -> std::net::SocketAddr {
    mesh.install_with(settings);
    apply_file(mesh, &shared("bookinfo/platform/kube/bookinfo.yaml"));
    apply_file(mesh, &shared("bookinfo/networking/destination-rule-all.yaml"));
    let pp = mesh.proxy(&["--workload", "productpage-v1", "--labels", "app=productpage,version=v1"]);
    pp.outbound.expect("outbound")
}

pub(crate) fn workload(
    mesh: &mut Mesh,
    name: &str,
    app: &str,
    version: &str,
    port: u16,
    addr: std::net::SocketAddr,
) -> Proxy {
    mesh.proxy(&[
        "--workload",
        name,
        "--labels",
        &format!("app={app},version={version}"),
        "--inbound",
        &format!("{port}={addr}"),
    ])
}

#[test]
fn reviews_test_v2_routes_jason_to_v2() {
    if !corpus("reviews_test_v2_routes_jason_to_v2") {
        return;
    }
    let mut mesh = Mesh::new();
    let out = bookinfo(&mut mesh);
    workload(&mut mesh, "reviews-v1", "reviews", "v1", 9080, app("reviews-v1"));
    workload(&mut mesh, "reviews-v2", "reviews", "v2", 9080, app("reviews-v2"));
    apply_file(&mesh, &shared("bookinfo/networking/virtual-service-reviews-test-v2.yaml"));
    mesh.wait_synced(3);
    for _ in 0..10 {
        assert_eq!(get(out, "reviews:9080", "/", false, &[("end-user", "jason")]).1.trim(), "reviews-v2");
        assert_eq!(get(out, "reviews:9080", "/", false, &[("end-user", "mary")]).1.trim(), "reviews-v1");
        assert_eq!(get(out, "reviews:9080", "/", false, &[]).1.trim(), "reviews-v1");
    }
}

#[test]
fn ratings_abort_and_delay_for_jason() {
    if !corpus("ratings_abort_and_delay_for_jason") {
        return;
    }
    let mut mesh = Mesh::new();
    let out = bookinfo(&mut mesh);
    workload(&mut mesh, "ratings-v1", "ratings", "v1", 9080, app("ratings-v1"));
    apply_file(&mesh, &shared("bookinfo/networking/virtual-service-ratings-test-abort.yaml"));
    mesh.wait_synced(2);
    for _ in 0..10 {
        assert_eq!(get(out, "ratings:9080", "/", false, &[("end-user", "jason")]), (500, "fault filter abort".into()));
        assert_eq!(get(out, "ratings:9080", "/", false, &[]).0, 200);
    }

    apply_file(&mesh, &shared("bookinfo/networking/virtual-service-ratings-test-delay.yaml"));
    mesh.wait_synced(2);
    let t = Instant::now();
    assert_eq!(get(out, "ratings:9080", "/", false, &[]).0, 200);
    assert!(t.elapsed() < Duration::from_secs(3), "others are not delayed");
    let t = Instant::now();
    assert_eq!(get(out, "ratings:9080", "/", false, &[("end-user", "jason")]).0, 200);
    let took = t.elapsed();
    assert!(took >= Duration::from_millis(6900), "jason is delayed 7 s, took {took:?}");
}

#[test]
fn timeout_and_retries() {
    if !corpus("timeout_and_retries") {
        return;
    }
    let mut mesh = Mesh::new();
    let out = bookinfo(&mut mesh);
    // details answers after 2 s; reviews fails every other request.
    let (slow, _) = scripted_app(|_| (200, "details-v1", Duration::from_secs(2)));
    workload(&mut mesh, "details-v1", "details", "v1", 9080, slow);
    let (flaky, tries) =
        scripted_app(|n| if n % 2 == 0 { (500, "boom", Duration::ZERO) } else { (200, "reviews-v1", Duration::ZERO) });
    workload(&mut mesh, "reviews-v1", "reviews", "v1", 9080, flaky);
    apply(
        &mesh,
        "vs.yaml",
        r#"
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: details}
spec:
  hosts: [details]
  http:
  - timeout: 0.5s
    route:
    - destination: {host: details, subset: v1}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - retries: {attempts: 5, retryOn: 5xx}
    route:
    - destination: {host: reviews, subset: v1}
"#,
    );
    mesh.wait_synced(3);
    let t = Instant::now();
    assert_eq!(get(out, "details:9080", "/", false, &[]), (504, "upstream request timeout".into()));
    let took = t.elapsed();
    assert!(
        took >= Duration::from_millis(450) && took < Duration::from_millis(1800),
        "504 after about 0.5 s: {took:?}"
    );

    let n = 200;
    let ok = (0..n).filter(|_| get(out, "reviews:9080", "/", false, &[]) == (200, "reviews-v1\n".into())).count();
    assert!(ok * 100 >= n * 99, "{ok} of {n} succeeded with retries");
    assert!(tries.load(std::sync::atomic::Ordering::SeqCst) >= n + n / 3, "the failures were retried");
}

#[test]
fn rewrite_redirect_direct_response_and_headers() {
    if !corpus("rewrite_redirect_direct_response_and_headers") {
        return;
    }
    let mut mesh = Mesh::new();
    let out = bookinfo(&mut mesh);
    // The app echoes nothing useful, so the header and path changes are checked at the app:
    // it answers 200 only for the rewritten path with the added header.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        use std::io::{BufRead, BufReader, Write};
        for s in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut r = BufReader::new(s);
                let mut head = Vec::new();
                loop {
                    let mut line = String::new();
                    if r.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    head.push(line.trim_end().to_string());
                }
                let first = head.first().cloned().unwrap_or_default();
                let lower: Vec<String> = head.iter().map(|l| l.to_ascii_lowercase()).collect();
                let body = format!(
                    "{}|{}|{}",
                    first.split_whitespace().nth(1).unwrap_or(""),
                    lower.iter().any(|l| l == "x-added: yes"),
                    lower.iter().any(|l| l.starts_with("x-secret:"))
                );
                let _ = r.get_mut().write_all(
                    format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nX-Internal: 1\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    )
                    .as_bytes(),
                );
            });
        }
    });
    workload(&mut mesh, "details-v1", "details", "v1", 9080, addr);
    apply(
        &mesh,
        "vs.yaml",
        r#"
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: details}
spec:
  hosts: [details]
  http:
  - match: [{uri: {prefix: /old}}]
    redirect: {uri: /new, redirectCode: 302}
  - match: [{uri: {exact: /teapot}}]
    directResponse: {status: 418, body: {string: "short and stout"}}
  - match: [{uri: {prefix: /v1/}}]
    rewrite: {uri: /api/}
    headers:
      request:
        add: {x-added: "yes"}
        remove: [x-secret]
      response:
        remove: [x-internal]
        set: {x-served-by: mesh}
    route:
    - destination: {host: details, subset: v1}
"#,
    );
    mesh.wait_synced(2);
    let raw = |path: &str| {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(out).expect("connect");
        s.write_all(
            format!("GET {path} HTTP/1.1\r\nHost: details:9080\r\nX-Secret: s\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .expect("write");
        let mut resp = String::new();
        let _ = s.read_to_string(&mut resp);
        resp
    };
    let redirect = raw("/old/page");
    assert!(redirect.starts_with("HTTP/1.1 302"), "{redirect}");
    assert!(redirect.to_ascii_lowercase().contains("location: http://details:9080/new"), "{redirect}");
    let teapot = raw("/teapot");
    assert!(teapot.starts_with("HTTP/1.1 418") && teapot.ends_with("short and stout"), "{teapot}");
    let rewritten = raw("/v1/books?id=1");
    assert!(rewritten.ends_with("/api/books?id=1|true|false"), "{rewritten}");
    let lower = rewritten.to_ascii_lowercase();
    assert!(lower.contains("x-served-by: mesh") && !lower.contains("x-internal"), "{rewritten}");
}

/// A TCP echo server like Istio's tcp-echo sample: answers each line with `PREFIX line`.
pub(crate) fn tcp_echo(prefix: &'static str) -> std::net::SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        use std::io::{BufRead, BufReader, Write};
        for s in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut r = BufReader::new(s);
                let mut line = String::new();
                while r.read_line(&mut line).unwrap_or(0) > 0 {
                    if r.get_mut().write_all(format!("{prefix} {line}").as_bytes()).is_err() {
                        return;
                    }
                    line.clear();
                }
            });
        }
    });
    addr
}

/// One TCP connection: send a line, read the answer ("" when the connection is closed).
pub(crate) fn tcp_say(addr: std::net::SocketAddr, line: &str) -> String {
    use std::io::{BufRead, BufReader, Write};
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    let _ = s.write_all(format!("{line}\n").as_bytes());
    let mut answer = String::new();
    let _ = BufReader::new(s).read_line(&mut answer);
    answer.trim().to_string()
}

#[test]
fn tcp_routes_split_connections_by_weight_and_policy_closes_denied_ones() {
    if !corpus("tcp_routes_split_connections_by_weight_and_policy_closes_denied_ones") {
        return;
    }
    let mut mesh = Mesh::new();
    mesh.install();
    mesh.ok(&["apply", "-f", &shared("samples/tcp-echo/tcp-echo-services.yaml")]);
    let mut servers = Vec::new();
    for (name, version, prefix) in [("tcp-echo-v1", "v1", "one"), ("tcp-echo-v2", "v2", "two")] {
        let addr = tcp_echo(prefix);
        servers.push(mesh.proxy(&[
            "--workload",
            name,
            "--labels",
            &format!("app=tcp-echo,version={version}"),
            "--service-account",
            "tcp-echo",
            "--inbound",
            &format!("9000={addr}"),
        ]));
    }
    let client = mesh.proxy(&[
        "--workload",
        "sleep",
        "--service-account",
        "sleep",
        "--outbound-tcp",
        "tcp-echo:9000=127.0.0.1:0",
    ]);
    let local = client.tcp[0];
    apply(
        &mesh,
        "tcp.yaml",
        r#"
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: tcp-echo-destination}
spec:
  host: tcp-echo
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: tcp-echo}
spec:
  hosts: [tcp-echo]
  tcp:
  - match: [{port: 9000}]
    route:
    - destination: {host: tcp-echo, port: {number: 9000}, subset: v1}
      weight: 80
    - destination: {host: tcp-echo, port: {number: 9000}, subset: v2}
      weight: 20
"#,
    );
    mesh.wait_synced(3);
    let (mut one, mut two) = (0, 0);
    for i in 0..200 {
        match tcp_say(local, &format!("hello {i}")) {
            a if a == format!("one hello {i}") => one += 1,
            a if a == format!("two hello {i}") => two += 1,
            other => panic!("unexpected answer {other:?}"),
        }
    }
    assert!((20..=65).contains(&two) && one + two == 200, "80/20 split of 200 connections: v1 {one}, v2 {two}");
    // TCP metrics on the client side: 200 connections opened, closed, bytes counted.
    let metrics = client.metrics.expect("metrics");
    let value = |name: &str| {
        let text = get(metrics, "m", "/stats/prometheus", false, &[]).1;
        text.lines()
            .filter(|l| {
                l.starts_with(name)
                    && l.contains("reporter=\"source\"")
                    && l.contains("tcp-echo.default.svc.cluster.local")
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>()
    };
    assert_eq!(value("istio_tcp_connections_opened_total"), 200.0);
    eventually("200 TCP connections closed", Duration::from_secs(10), || {
        (value("istio_tcp_connections_closed_total") == 200.0).then_some(())
    });
    assert!(value("istio_tcp_sent_bytes_total") >= 200.0 * 8.0, "each connection sent `hello N\\n`");
    // Both sides name the peer workload, as the metadata exchange told them over mTLS.
    let text = get(metrics, "m", "/stats/prometheus", false, &[]).1;
    let opened = |text: &str, labels: &[&str]| {
        text.lines()
            .any(|l| l.starts_with("istio_tcp_connections_opened_total{") && labels.iter().all(|x| l.contains(x)))
    };
    for v in ["v1", "v2"] {
        let want = [
            format!("destination_workload=\"tcp-echo-{v}\""),
            "destination_canonical_service=\"tcp-echo\"".to_string(),
            format!("destination_canonical_revision=\"{v}\""),
            "source_canonical_service=\"sleep\"".to_string(),
        ];
        assert!(opened(&text, &want.iter().map(String::as_str).collect::<Vec<_>>()), "{v}: {text}");
    }
    let server = get(servers[0].metrics.expect("metrics"), "m", "/stats/prometheus", false, &[]).1;
    let from_sleep = [
        "reporter=\"destination\"",
        "source_workload=\"sleep\"",
        "source_workload_namespace=\"default\"",
        "source_canonical_service=\"sleep\"",
        "destination_canonical_service=\"tcp-echo\"",
        "connection_security_policy=\"mutual_tls\"",
    ];
    assert!(opened(&server, &from_sleep), "{server}");

    // Only the `other` service account may connect: this client's connections are closed.
    apply(
        &mesh,
        "ap.yaml",
        r#"
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: tcp-echo-only-other}
spec:
  selector: {matchLabels: {app: tcp-echo}}
  rules:
  - from:
    - source: {principals: ["cluster.local/ns/default/sa/other"]}
    to:
    - operation: {ports: ["9000"]}
"#,
    );
    mesh.wait_synced(3);
    assert_eq!(tcp_say(local, "denied?"), "", "the connection is closed without an answer");
}

#[test]
fn outlier_detection_ejects_a_failing_endpoint() {
    if !corpus("outlier_detection_ejects_a_failing_endpoint") {
        return;
    }
    let mut mesh = Mesh::new();
    let out = bookinfo(&mut mesh);
    workload(&mut mesh, "reviews-v1", "reviews", "v1", 9080, app("reviews-v1"));
    let (bad, bad_hits) = scripted_app(|_| (503, "broken", Duration::ZERO));
    workload(&mut mesh, "reviews-v1-broken", "reviews", "v1", 9080, bad);
    apply(
        &mesh,
        "od.yaml",
        r#"
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews
  trafficPolicy:
    outlierDetection: {consecutive5xxErrors: 1, interval: 1s, baseEjectionTime: 60s, maxEjectionPercent: 50}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - retries: {attempts: 0}
    route:
    - destination: {host: reviews}
"#,
    );
    mesh.wait_synced(3);
    let n = 200;
    let ok = (0..n).filter(|_| get(out, "reviews:9080", "/", false, &[]).0 == 200).count();
    assert!(ok * 100 >= n * 99, "{ok} of {n} succeeded");
    let hits = bad_hits.load(std::sync::atomic::Ordering::SeqCst);
    assert!(hits <= 2, "the failing endpoint is ejected after its first failure, it got {hits} requests");
}

#[test]
fn connection_pool_overflow_fails_fast() {
    if !corpus("connection_pool_overflow_fails_fast") {
        return;
    }
    let mut mesh = Mesh::new();
    let out = bookinfo(&mut mesh);
    let (slow, _) = scripted_app(|_| (200, "reviews-v1", Duration::from_millis(800)));
    workload(&mut mesh, "reviews-v1", "reviews", "v1", 9080, slow);
    apply(
        &mesh,
        "cb.yaml",
        r#"
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews
  trafficPolicy:
    connectionPool:
      tcp: {maxConnections: 1}
      http: {http1MaxPendingRequests: 1}
"#,
    );
    mesh.wait_synced(2);
    let handles: Vec<_> = (0..10)
        .map(|_| {
            std::thread::spawn(move || {
                let t = Instant::now();
                let code = get(out, "reviews:9080", "/", false, &[]).0;
                (code, t.elapsed())
            })
        })
        .collect();
    let results: Vec<(u16, Duration)> = handles.into_iter().map(|h| h.join().expect("thread")).collect();
    let overflowed: Vec<_> = results.iter().filter(|(c, _)| *c == 503).collect();
    assert!(overflowed.len() >= 7, "at most one in flight and one waiting: {results:?}");
    assert!(
        overflowed.iter().all(|(_, t)| *t < Duration::from_millis(600)),
        "503s come at once, not after a queue: {results:?}"
    );
    assert!(results.iter().filter(|(c, _)| *c == 200).count() >= 1, "{results:?}");
}

#[test]
fn consistent_hash_keeps_a_header_value_on_one_endpoint() {
    if !corpus("consistent_hash_keeps_a_header_value_on_one_endpoint") {
        return;
    }
    let mut mesh = Mesh::new();
    let out = bookinfo(&mut mesh);
    for name in ["reviews-a", "reviews-b", "reviews-c"] {
        let leaked: &'static str = Box::leak(name.to_string().into_boxed_str());
        workload(&mut mesh, name, "reviews", "v1", 9080, app(leaked));
    }
    apply(
        &mesh,
        "hash.yaml",
        r#"
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews
  trafficPolicy:
    loadBalancer:
      consistentHash: {httpHeaderName: x-user}
"#,
    );
    mesh.wait_synced(4);
    let mut seen = std::collections::BTreeSet::new();
    // Endpoints are ranked by a hash of (key, address), and the addresses differ every run: with
    // 24 users, all of them landing on one of the three endpoints has odds of 3/3^24.
    for user in (0..24).map(|i| format!("user-{i}")) {
        let user = user.as_str();
        let first = get(out, "reviews:9080", "/", false, &[("x-user", user)]).1;
        for _ in 0..10 {
            assert_eq!(get(out, "reviews:9080", "/", false, &[("x-user", user)]).1, first, "{user} moved");
        }
        seen.insert(first);
    }
    assert!(seen.len() >= 2, "users spread over endpoints: {seen:?}");
}

#[test]
fn service_entries_bring_outside_hosts_under_routing_and_retries() {
    let mut mesh = Mesh::new();
    mesh.install();
    // "Outside" services, on loopback: one fails every other request, one answers plainly.
    let (flaky, tries) =
        scripted_app(|n| if n % 2 == 0 { (503, "busy", Duration::ZERO) } else { (200, "api", Duration::ZERO) });
    let plain = app("plain");
    let flaky_port = flaky.port();
    apply(
        &mesh,
        "se.yaml",
        &format!(
            r#"
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: api}}
spec:
  hosts: [api.example.test]
  location: MESH_EXTERNAL
  ports: [{{number: 80, name: http, protocol: HTTP}}]
  resolution: STATIC
  endpoints: [{{address: 127.0.0.1, ports: {{http: {flaky_port}}}}}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: by-name}}
spec:
  hosts: [named.example.test]
  ports: [{{number: 80, name: http, protocol: HTTP}}]
  resolution: DNS
  endpoints: [{{address: localhost, ports: {{http: {}}}}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: api}}
spec:
  hosts: [api.example.test]
  http:
  - timeout: 2s
    retries: {{attempts: 3, retryOn: 5xx}}
    route:
    - destination: {{host: api.example.test}}
"#,
            plain.port()
        ),
    );
    let client = mesh.proxy(&["--workload", "client"]);
    let out = client.outbound.expect("outbound");
    mesh.wait_synced(1);
    let n = 20;
    let ok = (0..n).filter(|_| get(out, "api.example.test", "/", true, &[]) == (200, "api\n".into())).count();
    assert_eq!(ok, n, "retries from the VirtualService apply to the ServiceEntry host");
    assert!(tries.load(std::sync::atomic::Ordering::SeqCst) >= 2 * n - 1);
    assert_eq!(get(out, "named.example.test", "/", false, &[]), (200, "plain\n".into()), "DNS endpoint");
    assert_eq!(get(out, &plain.to_string(), "/", true, &[]), (200, "plain\n".into()), "ALLOW_ANY passthrough");
    let listed = mesh.ok(&["get", "se"]).stdout;
    assert!(listed.contains("api.example.test") && listed.contains("STATIC"), "{listed}");
}

#[test]
fn registry_only_refuses_unknown_hosts() {
    let mut mesh = Mesh::new();
    mesh.install_with(&["meshConfig.outboundTrafficPolicy.mode=REGISTRY_ONLY", "meshConfig.accessLogFile=/dev/stdout"]);
    let plain = app("plain");
    let client = mesh.proxy(&["--workload", "client"]);
    mesh.wait_synced(1);
    let (code, body) = get(client.outbound.expect("outbound"), &plain.to_string(), "/", true, &[]);
    assert_eq!(code, 502, "{body}");
    assert!(body.contains("REGISTRY_ONLY"), "{body}");
    // Envoy's BlackHoleCluster: logged once and counted by the proxy that answered.
    let line = client.json_line("the 502's log line", |v| v["response_code"] == 502);
    assert_eq!(line["upstream_cluster"], "BlackHoleCluster", "{line}");
    assert_eq!(line["response_flags"], "-", "{line}");
    let labels = ["reporter=\"source\"", "response_code=\"502\"", "destination_service_name=\"BlackHoleCluster\""];
    assert_eq!(requests_counted(client.metrics.expect("metrics"), &labels), 1, "the 502 counted once");
}

#[test]
fn local_rate_limit_answers_429_over_the_bucket() {
    if !corpus("local_rate_limit_answers_429_over_the_bucket") {
        return;
    }
    let mut mesh = Mesh::new();
    let out = bookinfo_with(&mut mesh, &["meshConfig.accessLogFile=/dev/stdout"]);
    let reviews = workload(&mut mesh, "reviews-v1", "reviews", "v1", 9080, app("reviews-v1"));
    // Bad input is refused with the field at fault, and nothing is stored.
    let bad = mesh.home.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "apiVersion: policy.mesh.io/v1alpha1\nkind: LocalRateLimit\nmetadata: {name: reviews}\nspec:\n  tokenBucket: {maxTokens: 0, fillInterval: 1s}\n",
    )
    .expect("write");
    let r = mesh.run(&["apply", "-f", bad.to_str().expect("path")]);
    assert_eq!(r.code, BAD_INPUT);
    assert!(r.stderr.contains("spec.tokenBucket.maxTokens: must be at least 1"), "{}", r.stderr);
    assert!(!mesh.ok(&["get", "rl"]).stdout.contains("reviews"), "nothing stored");

    apply(
        &mesh,
        "rl.yaml",
        r#"
apiVersion: policy.mesh.io/v1alpha1
kind: LocalRateLimit
metadata: {name: reviews}
spec:
  selector: {matchLabels: {app: reviews}}
  tokenBucket: {maxTokens: 5, tokensPerFill: 5, fillInterval: 60s}
  routes:
  - match: {pathPrefix: /api}
    tokenBucket: {maxTokens: 2, fillInterval: 60s}
"#,
    );
    mesh.wait_synced(2);
    let codes: Vec<u16> = (0..8).map(|_| get(out, "reviews:9080", "/", false, &[]).0).collect();
    assert_eq!(codes, [200, 200, 200, 200, 200, 429, 429, 429], "5 tokens, then 429");
    let api: Vec<u16> = (0..3).map(|_| get(out, "reviews:9080", "/api/x", false, &[]).0).collect();
    assert_eq!(api, [200, 200, 429], "the /api rule has its own bucket of 2");
    assert_eq!(get(out, "reviews:9080", "/", false, &[]).1, "local_rate_limited");
    // The proxy that answered (the destination's) logs and counts each 429 with flag RL.
    let line = reviews.json_line("a 429's log line", |v| v["response_code"] == 429);
    assert_eq!(line["response_flags"], "RL", "{line}");
    let labels = ["reporter=\"destination\"", "response_code=\"429\"", "response_flags=\"RL\""];
    assert_eq!(requests_counted(reviews.metrics.expect("metrics"), &labels), 5, "every 429 once");
}

#[test]
fn cors_preflights_are_answered_and_responses_carry_the_origin() {
    if !corpus("cors_preflights_are_answered_and_responses_carry_the_origin") {
        return;
    }
    let mut mesh = Mesh::new();
    let out = bookinfo(&mut mesh);
    let (details, hits) = scripted_app(|_| (200, "details-v1", Duration::ZERO));
    workload(&mut mesh, "details-v1", "details", "v1", 9080, details);
    apply(
        &mesh,
        "cors.yaml",
        r#"
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: details}
spec:
  hosts: [details]
  http:
  - corsPolicy:
      allowOrigins: [{exact: "https://shop.example"}]
      allowMethods: [GET, POST]
      allowHeaders: [x-token]
      maxAge: 24h
      allowCredentials: true
    route:
    - destination: {host: details}
"#,
    );
    mesh.wait_synced(2);
    let raw = |req: &str| {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(out).expect("connect");
        s.write_all(req.as_bytes()).expect("write");
        let mut resp = String::new();
        let _ = s.read_to_string(&mut resp);
        resp.to_ascii_lowercase()
    };
    let pre = raw(
        "OPTIONS /x HTTP/1.1\r\nHost: details:9080\r\nOrigin: https://shop.example\r\nAccess-Control-Request-Method: POST\r\nConnection: close\r\n\r\n",
    );
    assert!(pre.starts_with("http/1.1 200"), "{pre}");
    assert!(pre.contains("access-control-allow-origin: https://shop.example"), "{pre}");
    assert!(
        pre.contains("access-control-allow-methods: get,post") && pre.contains("access-control-max-age: 86400"),
        "{pre}"
    );
    assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 0, "the proxy answered the preflight");
    let get_ok =
        raw("GET /x HTTP/1.1\r\nHost: details:9080\r\nOrigin: https://shop.example\r\nConnection: close\r\n\r\n");
    assert!(
        get_ok.contains("access-control-allow-origin: https://shop.example")
            && get_ok.contains("access-control-allow-credentials: true"),
        "{get_ok}"
    );
    let other =
        raw("GET /x HTTP/1.1\r\nHost: details:9080\r\nOrigin: https://evil.example\r\nConnection: close\r\n\r\n");
    assert!(other.starts_with("http/1.1 200") && !other.contains("access-control-allow-origin"), "{other}");
}

/// A TCP server that counts connections and closes them after reading a little.
fn counting_tcp() -> (std::net::SocketAddr, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let n = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = n.clone();
    std::thread::spawn(move || {
        for s in listener.incoming().flatten() {
            let mut buf = [0u8; 512];
            let _ = std::io::Read::read(&mut &s, &mut buf);
            // Only count connections that brought a TLS handshake record.
            if buf[0] == 0x16 {
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
        }
    });
    (addr, n)
}

#[test]
fn tls_routes_pick_a_destination_by_sni() {
    let mut mesh = Mesh::new();
    mesh.install();
    apply(
        &mesh,
        "tls.yaml",
        r#"
apiVersion: v1
kind: Service
metadata: {name: secure}
spec:
  selector: {app: secure}
  ports: [{name: tls, port: 443}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: secure}
spec:
  host: secure
  subsets:
  - {name: a, labels: {site: a}}
  - {name: b, labels: {site: b}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: secure}
spec:
  hosts: [secure]
  tls:
  - match: [{port: 443, sniHosts: [a.example.test]}]
    route: [{destination: {host: secure, subset: a}}]
  - match: [{port: 443, sniHosts: ["*.b.example.test"]}]
    route: [{destination: {host: secure, subset: b}}]
"#,
    );
    let (a, a_hits) = counting_tcp();
    let (b, b_hits) = counting_tcp();
    mesh.proxy(&["--workload", "secure-a", "--labels", "app=secure,site=a", "--inbound", &format!("443={a}")]);
    mesh.proxy(&["--workload", "secure-b", "--labels", "app=secure,site=b", "--inbound", &format!("443={b}")]);
    let client = mesh.proxy(&["--workload", "client", "--outbound-tcp", "secure:443=127.0.0.1:0"]);
    let local = client.tcp[0];
    mesh.wait_synced(3);
    let hello = |sni: &str| {
        let _ = std::process::Command::new("openssl")
            .args(["s_client", "-connect", &local.to_string(), "-servername", sni])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    };
    use std::sync::atomic::Ordering::SeqCst;
    for _ in 0..3 {
        hello("a.example.test");
    }
    eventually("3 ClientHellos at a", Duration::from_secs(5), || (a_hits.load(SeqCst) == 3).then_some(()));
    assert_eq!(b_hits.load(SeqCst), 0);
    hello("api.b.example.test");
    eventually("a ClientHello at b", Duration::from_secs(5), || (b_hits.load(SeqCst) == 1).then_some(()));
    assert_eq!(a_hits.load(SeqCst), 3);
}

#[test]
fn tcp_echo_through_the_ingress_gateway_with_istios_files() {
    if !corpus("tcp_echo_through_the_ingress_gateway_with_istios_files") {
        return;
    }
    let mut mesh = Mesh::new();
    mesh.install();
    mesh.ok(&["apply", "-f", &shared("samples/tcp-echo/tcp-echo-services.yaml")]);
    let mut servers = Vec::new();
    for (name, version, prefix) in [("tcp-echo-v1", "v1", "one"), ("tcp-echo-v2", "v2", "two")] {
        let addr = tcp_echo(prefix);
        servers.push(mesh.proxy(&[
            "--workload",
            name,
            "--labels",
            &format!("app=tcp-echo,version={version}"),
            "--inbound",
            &format!("9000={addr}"),
        ]));
    }
    let gw = mesh.ingress_gateway_proxy(31400);
    let gateway = gw.gateway[0];
    mesh.ok(&["apply", "-f", &shared("samples/tcp-echo/tcp-echo-all-v1.yaml")]);
    mesh.wait_synced(3);
    for i in 0..20 {
        assert_eq!(tcp_say(gateway, &format!("hello {i}")), format!("one hello {i}"), "all to v1");
    }
    mesh.ok(&["apply", "-f", &shared("samples/tcp-echo/tcp-echo-20-v2.yaml")]);
    mesh.wait_synced(3);
    let (mut one, mut two) = (0, 0);
    for i in 0..200 {
        match tcp_say(gateway, &format!("hello {i}")) {
            a if a.starts_with("one ") => one += 1,
            a if a.starts_with("two ") => two += 1,
            other => panic!("unexpected answer {other:?}"),
        }
    }
    assert!((20..=65).contains(&two) && one + two == 200, "about 80/20: v1 {one}, v2 {two}");
    // The gateway counts its TCP connections, naming the peer workload on both sides.
    let counted = |metrics: std::net::SocketAddr, labels: &[&str]| {
        let text = get(metrics, "m", "/stats/prometheus", false, &[]).1;
        text.lines()
            .filter(|l| l.starts_with("istio_tcp_connections_opened_total{") && labels.iter().all(|x| l.contains(x)))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>()
    };
    let at_gateway = [
        "reporter=\"source\"",
        "source_workload=\"istio-ingressgateway\"",
        "destination_canonical_service=\"tcp-echo\"",
        "destination_service=\"tcp-echo.default.svc.cluster.local\"",
    ];
    assert_eq!(counted(gw.metrics.expect("metrics"), &at_gateway), 220.0);
    let from_gateway = [
        "reporter=\"destination\"",
        "source_workload=\"istio-ingressgateway\"",
        "source_workload_namespace=\"istio-system\"",
    ];
    let at_servers: f64 = servers.iter().map(|s| counted(s.metrics.expect("metrics"), &from_gateway)).sum();
    assert_eq!(at_servers, 220.0);
}

#[test]
fn bookinfo_gateway_routes_productpage() {
    if !corpus("bookinfo_gateway_routes_productpage") {
        return;
    }
    let mut mesh = Mesh::new();
    mesh.install_with(&["meshConfig.accessLogFile=/dev/stdout"]);
    apply_file(&mesh, &shared("bookinfo/platform/kube/bookinfo.yaml"));
    workload(&mut mesh, "productpage-v1", "productpage", "v1", 9080, app("productpage-v1"));
    let gw = mesh.ingress_gateway_proxy(8080);
    let gateway = gw.gateway[0];
    apply_file(&mesh, &shared("bookinfo/networking/bookinfo-gateway.yaml"));
    mesh.wait_synced(2);
    assert_eq!(get(gateway, "bookinfo.example.com", "/productpage", false, &[]), (200, "productpage-v1\n".into()));
    assert_eq!(get(gateway, "anything", "/api/v1/products/1", false, &[]).0, 200);
    assert_eq!(get(gateway, "anything", "/admin", false, &[]).0, 404, "only the routes bookinfo-gateway lists");
    // `ps` lists every namespace; -n one.
    let all = mesh.ok(&["ps"]).stdout;
    assert!(all.contains("productpage-v1.default") && all.contains("istio-ingressgateway.istio-system"), "{all}");
    let one = mesh.ok(&["ps", "-n", "istio-system"]).stdout;
    assert!(one.contains("istio-ingressgateway.istio-system") && !one.contains("productpage"), "{one}");
    // The gateway's no-route 404 is logged (NR) and counted by the gateway.
    let line = gw.json_line("the 404's log line", |v| v["response_code"] == 404);
    assert_eq!(line["response_flags"], "NR", "{line}");
    assert_eq!(line["path"], "/admin", "{line}");
    let labels = ["response_code=\"404\"", "response_flags=\"NR\""];
    assert_eq!(requests_counted(gw.metrics.expect("metrics"), &labels), 1, "the 404 counted once");
}

#[test]
fn mirrors_get_a_copy_and_never_delay_the_request() {
    if !corpus("mirrors_get_a_copy_and_never_delay_the_request") {
        return;
    }
    let mut mesh = Mesh::new();
    let out = bookinfo(&mut mesh);
    workload(&mut mesh, "details-v1", "details", "v1", 9080, app("details-v1"));
    // The mirror target is slow: the real answers must not wait for it.
    let (shadow, copies) = scripted_app(|_| (200, "shadow", Duration::from_secs(2)));
    workload(&mut mesh, "details-v2", "details", "v2", 9080, shadow);
    apply(
        &mesh,
        "mirror.yaml",
        r#"
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: details}
spec:
  hosts: [details]
  http:
  - route:
    - destination: {host: details, subset: v1}
    mirror: {host: details, subset: v2}
    mirrorPercentage: {value: 100}
"#,
    );
    mesh.wait_synced(3);
    let t = Instant::now();
    for _ in 0..5 {
        assert_eq!(get(out, "details:9080", "/", false, &[]), (200, "details-v1\n".into()));
    }
    assert!(t.elapsed() < Duration::from_secs(2), "the mirror's 2 s never delay the answers");
    eventually("5 mirrored copies", Duration::from_secs(10), || {
        (copies.load(std::sync::atomic::Ordering::SeqCst) == 5).then_some(())
    });
}

#[test]
fn tcp_connections_get_access_log_lines_on_both_sides() {
    if !corpus("tcp_connections_get_access_log_lines_on_both_sides") {
        return;
    }
    let mut mesh = Mesh::new();
    mesh.install_with(&["meshConfig.accessLogFile=/dev/stdout"]);
    mesh.ok(&["apply", "-f", &shared("samples/tcp-echo/tcp-echo-services.yaml")]);
    let addr = tcp_echo("one");
    let server = mesh.proxy(&[
        "--workload",
        "tcp-echo-v1",
        "--labels",
        "app=tcp-echo,version=v1",
        "--service-account",
        "tcp-echo",
        "--inbound",
        &format!("9000={addr}"),
    ]);
    let client = mesh.proxy(&[
        "--workload",
        "sleep",
        "--service-account",
        "sleep",
        "--outbound-tcp",
        "tcp-echo:9000=127.0.0.1:0",
    ]);
    mesh.wait_synced(2);
    assert_eq!(tcp_say(client.tcp[0], "hello 7"), "one hello 7");
    let out = client.json_line("the client's TCP log line", |v| v["protocol"] == "TCP");
    assert_eq!(out["direction"], "outbound");
    assert_eq!(out["upstream_cluster"], "outbound|9000||tcp-echo.default.svc.cluster.local");
    assert_eq!(out["upstream_peer"], "spiffe://cluster.local/ns/default/sa/tcp-echo");
    assert_eq!(out["bytes_received"], 8, "`hello 7\\n` from the app");
    assert_eq!(out["bytes_sent"], 12, "`one hello 7\\n` back to it");
    assert_eq!(out["response_flags"], "-");
    let inb = server.json_line("the server's TCP log line", |v| v["protocol"] == "TCP");
    assert_eq!(inb["direction"], "inbound");
    assert_eq!(inb["downstream_peer"], "spiffe://cluster.local/ns/default/sa/sleep");
    assert_eq!(inb["upstream_cluster"], "inbound|9000||");
    assert_eq!(inb["upstream_host"], addr.to_string());
    assert_eq!((inb["bytes_received"].as_u64(), inb["bytes_sent"].as_u64()), (Some(8), Some(12)));
}

/// Replies the proxy makes itself are logged and counted like any request, with Envoy's
/// response flags: a fault abort (FI), no healthy upstream (UH).
#[test]
fn local_replies_are_logged_and_counted_with_their_flags() {
    if !corpus("local_replies_are_logged_and_counted_with_their_flags") {
        return;
    }
    let mut mesh = Mesh::new();
    mesh.install_with(&["meshConfig.accessLogFile=/dev/stdout"]);
    apply_file(&mesh, &shared("bookinfo/platform/kube/bookinfo.yaml"));
    apply_file(&mesh, &shared("bookinfo/networking/destination-rule-all.yaml"));
    let pp = mesh.proxy(&["--workload", "productpage-v1", "--labels", "app=productpage,version=v1"]);
    let out = pp.outbound.expect("outbound");
    workload(&mut mesh, "ratings-v1", "ratings", "v1", 9080, app("ratings-v1"));
    apply_file(&mesh, &shared("bookinfo/networking/virtual-service-ratings-test-abort.yaml"));
    mesh.wait_synced(2);

    assert_eq!(get(out, "ratings:9080", "/", false, &[("end-user", "jason")]).0, 500);
    let line = pp.json_line("the abort's log line", |v| v["response_code"] == 500);
    assert_eq!(line["response_flags"], "FI", "{line}");
    assert!(line["upstream_cluster"].as_str().is_some_and(|c| c.contains("ratings")), "{line}");
    // details has no workload: no healthy upstream.
    assert_eq!(get(out, "details:9080", "/", false, &[]).0, 503);
    let line = pp.json_line("the 503's log line", |v| v["response_code"] == 503);
    assert_eq!(line["response_flags"], "UH", "{line}");

    // A VirtualService whose only rule needs a header: without it, no route.
    apply(
        &mesh,
        "only-jason.yaml",
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: reviews}\nspec:\n  hosts: [reviews]\n  http:\n  - match: [{headers: {end-user: {exact: jason}}}]\n    route: [{destination: {host: reviews, subset: v1}}]\n",
    );
    mesh.wait_synced(2);
    assert_eq!(get(out, "reviews:9080", "/", false, &[]).0, 404);
    let line = pp.json_line("the 404's log line", |v| v["response_code"] == 404);
    assert_eq!(line["response_flags"], "NR", "{line}");

    let metrics = pp.metrics.expect("metrics");
    for (code, flag) in [("500", "FI"), ("503", "UH"), ("404", "NR")] {
        let labels =
            ["reporter=\"source\"", &format!("response_code=\"{code}\""), &format!("response_flags=\"{flag}\"")];
        assert_eq!(requests_counted(metrics, &labels), 1, "{code} {flag} counted once");
    }
}

/// `CONNECT host:port` through the outbound listener (an app's HTTPS_PROXY), read until the
/// end of the answer's head: (status line, the stream and its reader).
fn connect_through(
    outbound: std::net::SocketAddr,
    authority: &str,
) -> (String, std::net::TcpStream, std::io::BufReader<std::net::TcpStream>) {
    use std::io::{BufRead, Write};
    let mut s = std::net::TcpStream::connect(outbound).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    s.write_all(format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n\r\n").as_bytes()).expect("write");
    let mut r = std::io::BufReader::new(s.try_clone().expect("clone"));
    let mut status = String::new();
    r.read_line(&mut status).expect("status");
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            break;
        }
    }
    (status, s, r)
}

#[test]
fn connect_tunnels_follow_the_outbound_traffic_policy() {
    use std::io::{BufRead, Write};
    let echo = tcp_echo("ext");
    let mut mesh = Mesh::new();
    mesh.install();
    let client = mesh.proxy(&["--workload", "client"]);
    let out = client.outbound.expect("outbound");
    mesh.wait_synced(1);
    let talk = |s: &mut std::net::TcpStream, r: &mut std::io::BufReader<std::net::TcpStream>| {
        s.write_all(b"hi\n").expect("send");
        let mut line = String::new();
        r.read_line(&mut line).expect("echo");
        line
    };
    // ALLOW_ANY: any host:port is tunnelled, and counted as TCP.
    let (status, mut s, mut r) = connect_through(out, &echo.to_string());
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    assert_eq!(talk(&mut s, &mut r), "ext hi\n");
    drop((s, r));
    let metrics = client.metrics.expect("metrics");
    eventually("the tunnel counted as TCP", Duration::from_secs(10), || {
        let m = get(metrics, "m", "/stats/prometheus", false, &[]).1;
        m.lines()
            .any(|l| {
                l.starts_with("istio_tcp_connections_closed_total{")
                    && l.contains(&format!("destination_service=\"{}\"", echo.ip()))
            })
            .then_some(())
    });

    // REGISTRY_ONLY: refused, until a ServiceEntry names the host.
    mesh.install_with(&["meshConfig.outboundTrafficPolicy.mode=REGISTRY_ONLY"]);
    mesh.wait_synced(1);
    eventually("REGISTRY_ONLY refuses the tunnel", Duration::from_secs(10), || {
        connect_through(out, &echo.to_string()).0.starts_with("HTTP/1.1 502").then_some(())
    });
    apply(
        &mesh,
        "ext.yaml",
        &format!(
            "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {{name: ext}}\nspec:\n  hosts: [ext.example]\n  location: MESH_EXTERNAL\n  resolution: STATIC\n  ports: [{{number: {}, name: tcp, protocol: TCP}}]\n  endpoints: [{{address: 127.0.0.1}}]\n",
            echo.port()
        ),
    );
    mesh.wait_synced(1);
    let (status, mut s, mut r) = connect_through(out, &format!("ext.example:{}", echo.port()));
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    assert_eq!(talk(&mut s, &mut r), "ext hi\n");
}

/// `openssl s_server -HTTP` in a directory of its own whose file `who` says `name`: a TLS
/// server standing in for an external host (kept by `mesh`); its port.
fn tls_file_server(mesh: &mut Mesh, name: &str) -> u16 {
    use std::io::BufRead;
    let dir = mesh.home.path().join(name);
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::write(dir.join("who"), name).expect("write");
    let key = dir.join("key.pem");
    let cert = dir.join("cert.pem");
    let made = std::process::Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1"])
        .args(["-subj", &format!("/CN={name}"), "-keyout"])
        .args([&key, std::path::Path::new("-out"), &cert])
        .output()
        .expect("openssl req");
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let mut server = std::process::Command::new("openssl")
        .args(["s_server", "-accept", "127.0.0.1:0", "-HTTP", "-cert"])
        .args([&cert, std::path::Path::new("-key"), &key])
        .current_dir(&dir)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("openssl s_server");
    let mut out = std::io::BufReader::new(server.stdout.take().expect("stdout"));
    mesh.keep(server);
    loop {
        let mut line = String::new();
        assert!(out.read_line(&mut line).expect("s_server output") > 0, "s_server exited");
        if let Some(port) = line.trim().strip_prefix("ACCEPT 127.0.0.1:") {
            // Keep draining its output so the server never blocks on a full pipe.
            std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
            return port.parse().expect("port");
        }
    }
}

/// A TLS ServiceEntry reached with CONNECT (an app's HTTPS_PROXY): the VirtualService's `tls`
/// routes pick where the tunnel goes by the SNI of the ClientHello sent inside it.
#[test]
fn connect_tunnels_to_tls_service_entries_follow_sni_routes() {
    if !prerequisite("openssl", have("openssl")) {
        return;
    }
    let mut mesh = Mesh::new();
    mesh.install_with(&["meshConfig.outboundTrafficPolicy.mode=REGISTRY_ONLY", "meshConfig.accessLogFile=/dev/stdout"]);
    let (stable, canary) = (tls_file_server(&mut mesh, "stable"), tls_file_server(&mut mesh, "canary"));
    apply(
        &mesh,
        "egress.yaml",
        &format!(
            r#"
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: api}}
spec:
  hosts: [api.example.test]
  location: MESH_EXTERNAL
  resolution: STATIC
  ports: [{{number: 443, name: tls, protocol: TLS}}]
  endpoints: [{{address: 127.0.0.1, ports: {{tls: {stable}}}}}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: api-canary}}
spec:
  hosts: [canary-backend.example.test]
  location: MESH_EXTERNAL
  resolution: STATIC
  ports: [{{number: 443, name: tls, protocol: TLS}}]
  endpoints: [{{address: 127.0.0.1, ports: {{tls: {canary}}}}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: api}}
spec:
  hosts: [api.example.test, "*.api.example.test"]
  tls:
  - match: [{{port: 443, sniHosts: [canary.api.example.test]}}]
    route: [{{destination: {{host: canary-backend.example.test, port: {{number: 443}}}}}}]
  - match: [{{port: 443, sniHosts: [api.example.test]}}]
    route: [{{destination: {{host: api.example.test, port: {{number: 443}}}}}}]
"#
        ),
    );
    let client = mesh.proxy(&["--workload", "client"]);
    let out = client.outbound.expect("outbound");
    mesh.wait_synced(1);
    // openssl's own CONNECT (-proxy), then TLS with the SNI given, then an HTTP/1.0 GET.
    let fetch = |sni: &str| {
        let mut child = std::process::Command::new("timeout")
            .args(["20", "openssl", "s_client", "-quiet", "-ign_eof", "-proxy", &out.to_string()])
            .args(["-connect", "api.example.test:443", "-servername", sni])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("openssl s_client");
        use std::io::Write;
        let _ = child.stdin.take().expect("stdin").write_all(b"GET /who HTTP/1.0\r\n\r\n");
        let done = child.wait_with_output().expect("s_client");
        String::from_utf8_lossy(&done.stdout).lines().last().unwrap_or("").to_string()
    };
    assert_eq!(fetch("api.example.test"), "stable");
    assert_eq!(fetch("canary.api.example.test"), "canary");
    assert_eq!(fetch("api.example.test"), "stable");
    // The tunnels are TCP connections in the log, to the cluster the SNI picked.
    let line = client.json_line("the canary tunnel's TCP log line", |v| {
        v["upstream_cluster"].as_str().is_some_and(|c| c.contains("canary-backend.example.test"))
    });
    assert_eq!(line["upstream_host"], format!("127.0.0.1:{canary}"), "{line}");
    assert!(line["bytes_received"].as_u64().is_some_and(|n| n > 0), "the ClientHello counted: {line}");
    // Not TLS inside the tunnel: no SNI, so the service's plain TCP route takes it (Envoy's
    // default filter chain): the bytes reach the stable server, which closes on them.
    let (status, mut s, mut r) = connect_through(out, "api.example.test:443");
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    use std::io::{Read, Write};
    s.write_all(b"GET / HTTP/1.1\r\nHost: api.example.test\r\n\r\n").expect("send");
    assert_eq!(r.read(&mut [0u8; 64]).expect("closed, not timed out"), 0, "the tunnel is closed");
    assert_eq!(fetch("api.example.test"), "stable", "and the proxy still serves");
    // Slow clients: tunnels that send the start of a TLS record, then nothing, do not hold up
    // anyone else's tunnel while the proxy waits for their ClientHello.
    let slow: Vec<_> = (0..20)
        .map(|_| {
            let (status, mut s, r) = connect_through(out, "api.example.test:443");
            assert!(status.starts_with("HTTP/1.1 200"), "{status}");
            s.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01]).expect("send");
            (s, r)
        })
        .collect();
    assert_eq!(fetch("canary.api.example.test"), "canary", "served while 20 slow tunnels wait");
    drop(slow);
}

/// The circuit breaker's overflow (UO) and an injected delay (DI) are logged with their flags.
#[test]
fn overflow_and_injected_delay_carry_their_flags() {
    if !corpus("overflow_and_injected_delay_carry_their_flags") {
        return;
    }
    let mut mesh = Mesh::new();
    mesh.install_with(&["meshConfig.accessLogFile=/dev/stdout"]);
    apply_file(&mesh, &shared("bookinfo/platform/kube/bookinfo.yaml"));
    let pp = mesh.proxy(&["--workload", "productpage-v1", "--labels", "app=productpage,version=v1"]);
    let out = pp.outbound.expect("outbound");
    // The first two requests are held for a while: one in flight, one pending fills the breaker.
    let (slow, seen) = scripted_app(|n| (200, "ok", Duration::from_secs(if n < 2 { 2 } else { 0 })));
    workload(&mut mesh, "details-v1", "details", "v1", 9080, slow);
    apply(
        &mesh,
        "breaker.yaml",
        "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: details}\nspec:\n  host: details\n  trafficPolicy: {connectionPool: {tcp: {maxConnections: 1}, http: {http1MaxPendingRequests: 1}}}\n---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: ratings}\nspec:\n  hosts: [ratings]\n  http: [{fault: {delay: {fixedDelay: 0.2s, percentage: {value: 100}}}, route: [{destination: {host: details}}]}]\n",
    );
    mesh.wait_synced(2);
    let held: Vec<_> =
        (0..2).map(|_| std::thread::spawn(move || get(out, "details:9080", "/", false, &[]).0)).collect();
    eventually("one request at the app", Duration::from_secs(10), || {
        (seen.load(std::sync::atomic::Ordering::SeqCst) >= 1).then_some(())
    });
    // The second is pending in the breaker by now or soon; a third overflows.
    let overflowed = eventually("an overflow", Duration::from_secs(10), || {
        let r = get(out, "details:9080", "/", false, &[("x-request-id", "overflow")]);
        (r.0 == 503).then_some(r)
    });
    assert!(overflowed.1.contains("overflow"), "{}", overflowed.1);
    let line = pp.json_line("the overflow's log line", |v| v["response_code"] == 503);
    assert_eq!(line["response_flags"], "UO", "{line}");
    let metrics = pp.metrics.expect("metrics");
    assert_eq!(requests_counted(metrics, &["response_code=\"503\"", "response_flags=\"UO\""]), 1, "counted once");
    for h in held {
        assert_eq!(h.join().expect("held"), 200);
    }
    // ratings routes to details after a 200 ms delay: DI.
    assert_eq!(get(out, "ratings:9080", "/", false, &[("x-request-id", "delayed")]).0, 200);
    let line = pp.json_line("the delayed request's log line", |v| v["x_request_id"] == "delayed");
    assert_eq!(line["response_flags"], "DI", "{line}");
    assert_eq!(requests_counted(metrics, &["response_code=\"200\"", "response_flags=\"DI\""]), 1, "counted once");
}

/// A Sidecar scopes one workload: it sees only the hosts its egress lists and, with
/// REGISTRY_ONLY, reaches nothing else; a workload it does not select keeps the mesh's view
/// and ALLOW_ANY.
#[test]
fn a_sidecar_scopes_one_workload_to_its_egress_hosts_and_registry_only() {
    if !corpus("a_sidecar_scopes_one_workload_to_its_egress_hosts_and_registry_only") {
        return;
    }
    let mut mesh = Mesh::new();
    mesh.install();
    apply_file(&mesh, &shared("bookinfo/platform/kube/bookinfo.yaml"));
    workload(&mut mesh, "reviews-v1", "reviews", "v1", 9080, app("reviews-v1"));
    workload(&mut mesh, "ratings-v1", "ratings", "v1", 9080, app("ratings-v1"));
    let scoped = mesh.proxy(&["--workload", "sleep", "--labels", "app=sleep"]).outbound.expect("outbound");
    let free = mesh.proxy(&["--workload", "curl", "--labels", "app=curl"]).outbound.expect("outbound");
    let outside = app("outside");
    let outside_host = format!("127.0.0.1:{}", outside.port());
    mesh.wait_synced(4);
    assert_eq!(get(scoped, "ratings:9080", "/", false, &[]), (200, "ratings-v1\n".into()), "before the Sidecar");
    let sidecar = r#"
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: sleep}
spec:
  workloadSelector:
    labels: {app: sleep}
  egress:
  - hosts: ["./reviews.default.svc.cluster.local", "istio-system/*"]
  outboundTrafficPolicy: {mode: REGISTRY_ONLY}
"#;
    apply(&mesh, "sidecar.yaml", sidecar);
    mesh.wait_synced(4);
    eventually("ratings out of the scoped workload's reach", Duration::from_secs(20), || {
        (get(scoped, "ratings:9080", "/", false, &[]).0 == 502).then_some(())
    });
    assert_eq!(get(scoped, "reviews:9080", "/", false, &[]), (200, "reviews-v1\n".into()), "its egress host");
    assert_eq!(get(scoped, &outside_host, "/", false, &[]).0, 502, "REGISTRY_ONLY for it");
    // The workload the Sidecar does not select: everything, and ALLOW_ANY.
    assert_eq!(get(free, "ratings:9080", "/", false, &[]), (200, "ratings-v1\n".into()));
    assert_eq!(get(free, &outside_host, "/", false, &[]), (200, "outside\n".into()));
    // What the scoped proxy holds says so too.
    let routes = mesh.ok(&["pc", "routes", "sleep", "-o", "json"]).stdout;
    assert!(
        routes.contains("reviews.default.svc.cluster.local") && !routes.contains("ratings.default.svc.cluster.local"),
        "{routes}"
    );
    let shown = mesh.ok(&["get", "sidecars"]).stdout;
    assert!(shown.contains("REGISTRY_ONLY") && shown.contains("app=sleep"), "{shown}");
    // A bad Sidecar is refused by name, the good one stays.
    let bad = "apiVersion: networking.istio.io/v1\nkind: Sidecar\nmetadata: {name: bad}\nspec:\n  egress:\n  - hosts: [reviews]\n";
    let file = mesh.home.path().join("bad.yaml");
    std::fs::write(&file, bad).expect("write");
    let r = mesh.run(&["apply", "-f", file.to_str().expect("path")]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("spec.egress[0].hosts[0]") && r.stderr.contains("namespace/dnsName"), "{}", r.stderr);
}

/// Workloads outside the platform: a plain process registered by a WorkloadEntry is reached
/// by its Service's name in plain text; one whose proxy terminates mTLS (labelled
/// `security.istio.io/tlsMode: istio`) with mTLS, checked against the entry's service account;
/// a proxy joining a WorkloadGroup takes the template's labels and identity.
#[test]
fn workload_entries_and_groups_bring_outside_workloads_into_the_mesh() {
    let mut mesh = Mesh::new();
    mesh.install();
    let plain = app("legacy-process");
    let secure_proxy = mesh.proxy(&[
        "--workload",
        "vm-1",
        "--service-account",
        "vm-sa",
        "--inbound",
        &format!("9000={}", app("vm-app")),
    ]);
    let vm_port = secure_proxy.inbound[0].port();
    let client = mesh.proxy(&["--workload", "sleep", "--labels", "app=sleep"]).outbound.expect("outbound");
    let yaml = format!(
        r#"
apiVersion: v1
kind: Service
metadata: {{name: legacy}}
spec:
  selector: {{app: legacy}}
  ports: [{{name: http, port: 8080}}]
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {{name: legacy-1}}
spec:
  address: 127.0.0.1
  ports: {{http: {}}}
  labels: {{app: legacy}}
---
apiVersion: v1
kind: Service
metadata: {{name: secure}}
spec:
  selector: {{app: secure}}
  ports: [{{name: http, port: 80}}]
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {{name: vm-1}}
spec:
  address: 127.0.0.1
  ports: {{http: {vm_port}}}
  labels: {{app: secure, security.istio.io/tlsMode: istio}}
  serviceAccount: vm-sa
"#,
        plain.port()
    );
    apply(&mesh, "entries.yaml", &yaml);
    mesh.wait_synced(2);
    eventually("the plain process by name", Duration::from_secs(20), || {
        (get(client, "legacy:8080", "/", false, &[]) == (200, "legacy-process\n".to_string())).then_some(())
    });
    eventually("the VM over mTLS by name", Duration::from_secs(20), || {
        (get(client, "secure", "/", false, &[]) == (200, "vm-app\n".to_string())).then_some(())
    });
    let labels = ["reporter=\"destination\"", "connection_security_policy=\"mutual_tls\"", "source_workload=\"sleep\""];
    assert!(
        requests_counted(secure_proxy.metrics.expect("metrics"), &labels) > 0,
        "the VM's proxy saw mTLS from sleep"
    );
    let listed = mesh.ok(&["get", "workloadentries"]).stdout;
    assert!(listed.contains("legacy-1") && listed.contains("vm-1"), "{listed}");
    // An entry naming another identity than the one its proxy holds: refused by the client.
    apply(&mesh, "entries.yaml", &yaml.replace("serviceAccount: vm-sa", "serviceAccount: someone-else"));
    eventually("the wrong identity refused", Duration::from_secs(20), || {
        (get(client, "secure", "/", false, &[]).0 == 503).then_some(())
    });

    // A WorkloadGroup: a proxy joining it is selected by the group's labels, with its identity.
    let group = r#"
apiVersion: networking.istio.io/v1
kind: WorkloadGroup
metadata: {name: reviews-vms}
spec:
  metadata:
    labels: {app: grouped}
  template:
    labels: {app: grouped, version: vm}
    serviceAccount: grouped-sa
---
apiVersion: v1
kind: Service
metadata: {name: grouped}
spec:
  selector: {app: grouped}
  ports: [{name: http, port: 80, targetPort: 9000}]
"#;
    apply(&mesh, "group.yaml", group);
    let missing = mesh.run(&["proxy", "run", "--workload", "x", "--workload-group", "nope"]);
    assert_ne!(missing.code, 0);
    assert!(missing.stderr.contains("WorkloadGroup default/nope not found"), "{}", missing.stderr);
    mesh.proxy(&[
        "--workload",
        "vm-2",
        "--workload-group",
        "reviews-vms",
        "--inbound",
        &format!("9000={}", app("grouped-vm")),
    ]);
    eventually("the group member by name", Duration::from_secs(20), || {
        (get(client, "grouped", "/", false, &[]) == (200, "grouped-vm\n".to_string())).then_some(())
    });
    let certs = mesh.ok(&["cert", "status", "vm-2"]).stdout;
    assert!(certs.contains("spiffe://cluster.local/ns/default/sa/grouped-sa"), "{certs}");
}

/// A ProxyConfig's `concurrency` sets the worker threads of the proxies it selects when they
/// start; others keep one.
#[test]
fn proxy_config_concurrency_sets_the_workers_of_the_proxies_it_selects() {
    let mut mesh = Mesh::new();
    mesh.install();
    let pc = "apiVersion: networking.istio.io/v1beta1\nkind: ProxyConfig\nmetadata: {name: busy}\nspec:\n  selector:\n    matchLabels: {app: busy}\n  concurrency: 4\n";
    apply(&mesh, "pc.yaml", pc);
    let threads = |pid: u32| -> usize {
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .ok()
            .and_then(|s| s.lines().find_map(|l| l.strip_prefix("Threads:")).and_then(|n| n.trim().parse().ok()))
            .unwrap_or(0)
    };
    let busy = mesh.proxy(&["--workload", "busy", "--labels", "app=busy"]);
    let calm = mesh.proxy(&["--workload", "calm", "--labels", "app=calm"]);
    let (b, c) = (threads(busy.pid), threads(calm.pid));
    assert!(b >= 5 && b > c, "4 workers and the main thread: busy {b} threads, calm {c}");
    assert!(mesh.ok(&["get", "proxyconfigs"]).stdout.contains("app=busy"));
    // The flag wins over the resource.
    let given = mesh.proxy(&["--workload", "given", "--labels", "app=busy", "--workers", "1"]);
    assert!(threads(given.pid) < b, "--workers 1 kept: {} threads", threads(given.pid));
    // The environment it honours: ISTIO_META_IDLE_TIMEOUT closes an idle keep-alive connection.
    let idle = "apiVersion: networking.istio.io/v1beta1\nkind: ProxyConfig\nmetadata: {name: idle}\nspec:\n  selector:\n    matchLabels: {app: idle}\n  environmentVariables: {ISTIO_META_IDLE_TIMEOUT: 300ms}\n";
    apply(&mesh, "idle.yaml", idle);
    let target = app("target");
    let quiet = mesh.proxy(&["--workload", "idle", "--labels", "app=idle"]).outbound.expect("outbound");
    mesh.wait_synced(4);
    let mut conn = std::net::TcpStream::connect(quiet).expect("connect");
    // Well before the 10 s request-headers timeout (and the default 1 h idle timeout).
    conn.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    use std::io::{Read, Write};
    conn.write_all(format!("GET / HTTP/1.1\r\nHost: 127.0.0.1:{}\r\n\r\n", target.port()).as_bytes()).expect("write");
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    let started = Instant::now();
    loop {
        match conn.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
            Err(e) => panic!("the idle connection was not closed: {e} after {:?}", started.elapsed()),
        }
    }
    assert!(String::from_utf8_lossy(&seen).contains("target"), "answered first: {}", String::from_utf8_lossy(&seen));
    let bad =
        "apiVersion: networking.istio.io/v1beta1\nkind: ProxyConfig\nmetadata: {name: bad}\nspec:\n  concurrency: -1\n";
    let file = mesh.home.path().join("bad.yaml");
    std::fs::write(&file, bad).expect("write");
    let r = mesh.run(&["apply", "-f", file.to_str().expect("path")]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("spec.concurrency"), "{}", r.stderr);
}

/// An HTTP/1.1 app on a unix socket answering `name` (a Sidecar ingress `defaultEndpoint` of
/// `unix://`).
fn unix_app(path: &std::path::Path, name: &'static str) {
    use std::io::{BufRead, Write};
    let listener = std::os::unix::net::UnixListener::bind(path).expect("bind unix app");
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut reader = std::io::BufReader::new(stream);
                loop {
                    // A request head (no body: GET), up to its blank line.
                    let mut line = String::new();
                    loop {
                        line.clear();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        if line == "\r\n" {
                            break;
                        }
                    }
                    let resp = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{name}\n", name.len() + 1);
                    if reader.get_mut().write_all(resp.as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
    });
}

/// A port free on loopback now (for a Service port a Sidecar listener must bind: the port
/// is the routing key, so it cannot be 0).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

/// A Sidecar's `ingress` sends a workload port to another app (an address, a unix socket) and
/// opens a listener of its own with `bind`; its `egress` listeners with a port and `bind` take
/// the app's plain requests (HTTP by Host, TCP to the one service on the port) and scope what
/// the proxy sees per port.
#[test]
fn sidecar_ingress_and_egress_listeners_route_where_they_say() {
    let mut mesh = Mesh::new();
    mesh.install();
    let (web_port, tcp_port, bound_in) = (free_port(), free_port(), free_port());
    let services = format!(
        r#"
apiVersion: v1
kind: Service
metadata: {{name: ledger}}
spec:
  selector: {{app: ledger}}
  ports: [{{name: http, port: {web_port}, targetPort: 9080}}, {{name: http-alt, port: 9080}}]
---
apiVersion: v1
kind: Service
metadata: {{name: ledger-tcp}}
spec:
  selector: {{app: ledger}}
  ports: [{{name: tcp, port: {tcp_port}, targetPort: 9090}}]
---
apiVersion: v1
kind: Service
metadata: {{name: ratings}}
spec:
  selector: {{app: ratings}}
  ports: [{{name: http, port: 9080}}]
"#
    );
    apply(&mesh, "services.yaml", &services);
    let (main, echo) = (app("ledger-main"), tcp_echo("ledger-echo"));
    mesh.proxy(&[
        "--workload",
        "ledger-v1",
        "--labels",
        "app=ledger",
        "--inbound",
        &format!("9080={main}"),
        "--inbound",
        &format!("9090={echo}"),
    ]);
    workload(&mut mesh, "ratings-v1", "ratings", "v1", 9080, app("ratings-v1"));
    let sleep_proxy = mesh
        .proxy_with_fd_limit(256, &["--workload", "sleep", "--labels", "app=sleep", "--request-headers-timeout", "1s"]);
    let sleep = sleep_proxy.outbound.expect("outbound");
    mesh.wait_synced(3);
    let ledger = format!("ledger:{web_port}");
    assert_eq!(get(sleep, &ledger, "/", false, &[]), (200, "ledger-main\n".into()));
    assert_eq!(get(sleep, "ledger:9080", "/", false, &[]), (200, "ledger-main\n".into()));

    // Ingress: port 9080 goes to another app; then to a unix socket; and a listener of its own.
    let other = app("ledger-sidecar");
    let ingress = |endpoint: &str| {
        format!(
            r#"
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {{name: ledger}}
spec:
  workloadSelector:
    labels: {{app: ledger}}
  ingress:
  - port: {{number: 9080, protocol: HTTP, name: http}}
    defaultEndpoint: "{endpoint}"
  - port: {{number: {bound_in}, protocol: HTTP, name: http-admin}}
    bind: 127.0.0.1
    captureMode: NONE
    defaultEndpoint: "{other}"
"#
        )
    };
    apply(&mesh, "ingress.yaml", &ingress(&other.to_string()));
    eventually("the ingress endpoint in force", Duration::from_secs(20), || {
        (get(sleep, &ledger, "/", false, &[]).1 == "ledger-sidecar\n").then_some(())
    });
    let bound: std::net::SocketAddr = format!("127.0.0.1:{bound_in}").parse().expect("addr");
    let seen = eventually("the ingress listener bound", Duration::from_secs(20), || {
        std::net::TcpStream::connect(bound)
            .ok()
            .map(|_| raw(bound, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"))
    });
    assert_eq!(seen, (200, "ledger-sidecar\n".into()), "plain text to the bound ingress listener (PERMISSIVE)");
    let sock = mesh.home.path().join("ledger.sock");
    unix_app(&sock, "ledger-unix");
    apply(&mesh, "ingress.yaml", &ingress(&format!("unix://{}", sock.display())));
    eventually("the unix socket endpoint in force", Duration::from_secs(20), || {
        (get(sleep, &ledger, "/", false, &[]).1 == "ledger-unix\n").then_some(())
    });
    // A bad endpoint is refused by name and changes nothing.
    let file = mesh.home.path().join("bad.yaml");
    std::fs::write(&file, ingress("10.1.2.3:80")).expect("write");
    let r = mesh.run(&["apply", "-f", file.to_str().expect("path")]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("spec.ingress[0].defaultEndpoint"), "{}", r.stderr);
    assert_eq!(get(sleep, &ledger, "/", false, &[]).1, "ledger-unix\n");

    // Egress: sleep gets an HTTP listener and a TCP listener of its own on the ledger ports;
    // through its usual outbound listener it sees ratings only (and nothing else).
    let egress = format!(
        r#"
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {{name: sleep}}
spec:
  workloadSelector:
    labels: {{app: sleep}}
  egress:
  - port: {{number: {web_port}, protocol: HTTP, name: http}}
    bind: 127.0.0.1
    captureMode: NONE
    hosts: ["./ledger.default.svc.cluster.local"]
  - port: {{number: {tcp_port}, protocol: TCP, name: tcp}}
    bind: 127.0.0.1
    captureMode: NONE
    hosts: ["./ledger-tcp.default.svc.cluster.local"]
  - hosts: ["./ratings.default.svc.cluster.local"]
  outboundTrafficPolicy: {{mode: REGISTRY_ONLY}}
"#
    );
    apply(&mesh, "egress.yaml", &egress);
    let web: std::net::SocketAddr = format!("127.0.0.1:{web_port}").parse().expect("addr");
    let seen = eventually("the egress HTTP listener bound", Duration::from_secs(20), || {
        std::net::TcpStream::connect(web).ok().map(|_| get(web, "ledger", "/", false, &[]))
    });
    assert_eq!(seen, (200, "ledger-unix\n".into()), "a Host without a port routes on the listener's port");
    // Hostile clients on a listener the config opened: a slow one is closed by the request
    // header timeout, garbage gets an error, a flood past the proxy's descriptors leaves it
    // serving.
    {
        use std::io::{Read, Write};
        let mut slow = std::net::TcpStream::connect(web).expect("connect");
        slow.write_all(b"GET / HTTP/1.1\r\nHost: led").expect("write");
        slow.set_read_timeout(Some(Duration::from_secs(8))).expect("timeout");
        let mut rest = Vec::new();
        let closed = slow.read_to_end(&mut rest).is_ok();
        assert!(closed, "a slow client was left connected");
        let (code, _) = raw(web, b"\x16\x03\x01\x00\x05hello\r\n\r\n");
        assert_eq!(code, 400, "garbage on the bound listener");
        let flood: Vec<std::net::TcpStream> = (0..600)
            .filter_map(|_| {
                let mut s = std::net::TcpStream::connect(web).ok()?;
                s.write_all(b"G").ok()?;
                Some(s)
            })
            .collect();
        assert!(flood.len() > 300, "the flood opened {} connections", flood.len());
        for _ in 0..3 {
            assert_eq!(get(web, "ledger", "/", false, &[]), (200, "ledger-unix\n".into()), "during the flood");
        }
        let fds = open_fds(sleep_proxy.pid);
        assert!(fds < 256, "{fds} descriptors open");
    }
    let tcp: std::net::SocketAddr = format!("127.0.0.1:{tcp_port}").parse().expect("addr");
    let seen = eventually("the egress TCP listener bound", Duration::from_secs(20), || {
        std::net::TcpStream::connect(tcp).ok().map(|_| tcp_say(tcp, "hello"))
    });
    assert_eq!(seen, "ledger-echo hello", "bytes relayed to the one TCP service on the port");
    // Per port: ledger on 9080 is no listener's host (the catch-all takes ratings only).
    eventually("ledger:9080 hidden from sleep", Duration::from_secs(20), || {
        (get(sleep, "ledger:9080", "/", false, &[]).0 == 502).then_some(())
    });
    assert_eq!(get(sleep, &ledger, "/", false, &[]), (200, "ledger-unix\n".into()), "its port's listener takes it");
    assert_eq!(get(sleep, "ratings:9080", "/", false, &[]), (200, "ratings-v1\n".into()), "the catch-all's host");
    // The Sidecar gone: its listeners close and the mesh's view is back.
    mesh.ok(&["delete", "sidecar", "sleep"]);
    eventually("the egress listener closed", Duration::from_secs(20), || {
        std::net::TcpStream::connect(web).is_err().then_some(())
    });
    eventually("ledger:9080 back in sight", Duration::from_secs(20), || {
        (get(sleep, "ledger:9080", "/", false, &[]) == (200, "ledger-unix\n".into())).then_some(())
    });
}
