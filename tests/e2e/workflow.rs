//! The workflow of the local-mesh issue, step by step, with Istio's own bookinfo files.

use std::time::Duration;

use crate::harness::*;

fn count(t: &std::collections::BTreeMap<String, usize>, k: &str) -> usize {
    t.get(k).copied().unwrap_or(0)
}

#[test]
fn bookinfo_split_workflow() {
    if !corpus("bookinfo_split_workflow") {
        return;
    }
    let mut mesh = Mesh::new();
    mesh.install();

    let r = mesh.ok(&["apply", "-f", &shared("bookinfo/platform/kube/bookinfo.yaml")]);
    assert!(r.stdout.contains("service/reviews created"), "{}", r.stdout);
    assert!(r.stdout.contains("Deployment/reviews-v1 skipped: not used on the local platform"), "{}", r.stdout);
    assert!(r.stdout.contains("ServiceAccount/bookinfo-reviews skipped"), "{}", r.stdout);
    mesh.ok(&["apply", "-f", &shared("bookinfo/networking/destination-rule-all.yaml")]);
    mesh.ok(&["apply", "-f", &shared("bookinfo/networking/virtual-service-reviews-90-10.yaml")]);
    // Applying the same file again changes nothing.
    let again = mesh.ok(&["apply", "-f", &shared("bookinfo/networking/virtual-service-reviews-90-10.yaml")]);
    assert!(again.stdout.contains("virtualservice.networking.istio.io/reviews unchanged"), "{}", again.stdout);

    for (v, name) in [("v1", "reviews-v1"), ("v2", "reviews-v2"), ("v3", "reviews-v3")] {
        let app = app(name);
        mesh.proxy(&[
            "--workload",
            name,
            "--service-account",
            "bookinfo-reviews",
            "--labels",
            &format!("app=reviews,version={v}"),
            "--inbound",
            &format!("9080={app}"),
        ]);
    }
    let pp = mesh.proxy(&[
        "--workload",
        "productpage-v1",
        "--service-account",
        "bookinfo-productpage",
        "--labels",
        "app=productpage,version=v1",
        "--outbound",
        "127.0.0.1:0",
    ]);
    let outbound = pp.outbound.expect("outbound listener");
    mesh.wait_synced(4);
    let table = mesh.ok(&["proxy-status"]).stdout;
    assert!(table.starts_with("NAME"), "{table}");

    // One proxy in detail: versions, and what meshd would send against what the proxy holds.
    let detail = mesh.ok(&["proxy-status", "productpage-v1"]).stdout;
    for t in ["routes", "clusters", "endpoints", "listeners"] {
        assert!(detail.contains(&format!("{t}: meshd and the proxy agree")), "{detail}");
    }

    // What the proxy itself holds: the reviews routes with their 90/10 weights.
    let routes = mesh.ok(&["proxy-config", "routes", "productpage-v1", "-o", "json"]).stdout;
    let routes: serde_json::Value = serde_json::from_str(&routes).expect("proxy-config routes is JSON");
    let reviews = routes["virtual_hosts"]
        .as_array()
        .expect("virtual hosts")
        .iter()
        .find(|v| v["name"] == "reviews.default.svc.cluster.local:9080")
        .expect("reviews virtual host");
    let weights: Vec<(String, u64)> = reviews["routes"][0]["clusters"]
        .as_array()
        .expect("clusters")
        .iter()
        .map(|c| (c["cluster"].as_str().unwrap_or("").to_string(), c["weight"].as_u64().unwrap_or(0)))
        .collect();
    assert_eq!(
        weights,
        [
            ("outbound|9080|v1|reviews.default.svc.cluster.local".to_string(), 90),
            ("outbound|9080|v2|reviews.default.svc.cluster.local".to_string(), 10)
        ]
    );
    let all = mesh.ok(&["proxy-config", "all", "reviews-v1"]).stdout;
    for header in ["DOMAINS", "SERVICE FQDN", "ENDPOINT", "LISTENER", "RESOURCE NAME"] {
        assert!(all.contains(header), "{header} missing:\n{all}");
    }
    assert!(all.contains("inbound port 9080") && all.contains("ROOTCA"), "{all}");
    assert!(table.contains("reviews-v1.default"), "{table}");
    let statuses = mesh.statuses();
    let routes = &statuses[0]["types"]["routes"];
    assert_eq!(routes["acked"], routes["current"], "{statuses:?}");
    // The proxy's admin API shows what it holds.
    let (code, dump) = get(pp.admin, "localhost", "/config_dump", false, &[]);
    assert_eq!(code, 200);
    assert!(dump.contains("outbound|9080|v2|reviews.default.svc.cluster.local"), "{dump}");
    assert_eq!(get(pp.admin, "localhost", "/ready", false, &[]).0, 200);

    // 90/10 through absolute-form (HTTP_PROXY style) and Host-header requests.
    let n = 1000;
    let abs = tally(outbound, "reviews:9080", n, true);
    assert_eq!(count(&abs, "reviews-v1") + count(&abs, "reviews-v2"), n, "{abs:?}");
    let v2 = count(&abs, "reviews-v2");
    assert!((60..=140).contains(&v2), "expected about 10% v2 of {n}: {abs:?}");
    let host = tally(outbound, "reviews:9080", n, false);
    let v2 = count(&host, "reviews-v2");
    assert!((60..=140).contains(&v2) && count(&host, "reviews-v3") == 0, "{host:?}");
    // The FQDN and namespace-qualified names reach the same service.
    assert_eq!(get(outbound, "reviews.default.svc.cluster.local:9080", "/", true, &[]).0, 200);
    assert_eq!(get(outbound, "reviews.default:9080", "/", false, &[]).0, 200);
    // Unknown hosts go where they were addressed (ALLOW_ANY): here a closed local port.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr");
    assert_eq!(get(outbound, &closed.to_string(), "/", false, &[]).0, 503);

    // Bad input changes nothing.
    let before = mesh.ok(&["get", "virtualservice", "reviews", "-o", "yaml"]).stdout;
    let r = mesh.run(&["route", "split", "reviews", "v1=20", "v3=70", "-y"]);
    assert_eq!(r.code, BAD_INPUT);
    assert!(r.stderr.contains("add up to 90, not 100"), "{}", r.stderr);
    let r = mesh.run(&["route", "split", "reviews", "v1=20", "v9=80", "-y"]);
    assert_eq!(r.code, BAD_INPUT);
    assert!(r.stderr.contains("unknown subset v9"), "{}", r.stderr);
    let r = mesh.run(&["route", "split", "reviews", "v1=20", "v3=80"]);
    assert_eq!(r.code, FAILED, "no TTY and no -y must refuse");
    assert!(r.stderr.contains("add -y"), "{}", r.stderr);
    assert_eq!(mesh.ok(&["get", "virtualservice", "reviews", "-o", "yaml"]).stdout, before);

    // The split moves to 20/80 between v1 and v3, and traffic follows within a second.
    let r = mesh.ok(&["route", "split", "reviews", "v1=20", "v3=80", "-y"]);
    assert!(r.stdout.contains("configured"), "{}", r.stdout);
    let yaml = mesh.ok(&["get", "virtualservice", "reviews", "-o", "yaml"]).stdout;
    assert!(yaml.contains("subset: v3") && yaml.contains("weight: 80") && yaml.contains("weight: 20"), "{yaml}");
    assert!(!yaml.contains("subset: v2"), "{yaml}");
    eventually("traffic to follow the new split", Duration::from_secs(1), || {
        let t = tally(outbound, "reviews:9080", 20, true);
        (count(&t, "reviews-v2") == 0 && count(&t, "reviews-v3") > 0).then_some(())
    });
    let t = tally(outbound, "reviews:9080", 500, true);
    assert_eq!(count(&t, "reviews-v2"), 0, "{t:?}");
    let v3 = count(&t, "reviews-v3");
    assert!((340..=460).contains(&v3), "expected about 80% v3 of 500: {t:?}");

    // Uninstall stops meshd; proxies keep routing with their last config.
    let pid = mesh.meshd_pid().expect("meshd pid");
    mesh.ok(&["uninstall", "-y"]);
    assert!(!alive(pid), "meshd still running");
    let t = tally(outbound, "reviews:9080", 200, false);
    assert_eq!(count(&t, "reviews-v1") + count(&t, "reviews-v3"), 200, "{t:?}");
    let r = mesh.run(&["proxy-status"]);
    assert_eq!(r.code, UNAVAILABLE, "no meshd: could not run");
    assert!(r.stderr.contains("mesh install"), "{}", r.stderr);
}

#[test]
fn route_split_creates_virtual_service_and_subsets() {
    if !corpus("route_split_creates_virtual_service_and_subsets") {
        return;
    }
    let mut mesh = Mesh::new();
    mesh.install();
    mesh.ok(&["apply", "-f", &shared("bookinfo/platform/kube/bookinfo.yaml")]);
    let a = app("ratings-a");
    let b = app("ratings-b");
    let r1 = mesh.proxy(&[
        "--workload",
        "ratings-v1",
        "--labels",
        "app=ratings,version=v1",
        "--inbound",
        &format!("9080={a}"),
    ]);
    // The inbound listener forwards to the app.
    assert_eq!(get(r1.inbound[0], "ratings:9080", "/", false, &[]), (200, "ratings-a\n".to_string()));
    mesh.proxy(&["--workload", "ratings-v2", "--labels", "app=ratings,version=v2", "--inbound", &format!("9080={b}")]);
    let client = mesh.proxy(&["--workload", "client", "--labels", "app=client"]);
    mesh.wait_synced(3);
    let outbound = client.outbound.expect("outbound");
    // No VirtualService: all endpoints, round robin.
    let t = tally(outbound, "ratings:9080", 10, false);
    assert_eq!((count(&t, "ratings-a"), count(&t, "ratings-b")), (5, 5), "{t:?}");

    let dry = mesh.ok(&["route", "split", "ratings", "v2=100", "--dry-run"]);
    assert!(
        dry.stdout.contains("kind: VirtualService") && dry.stdout.contains("kind: DestinationRule"),
        "{}",
        dry.stdout
    );
    assert_eq!(mesh.run(&["get", "vs", "ratings"]).code, FAILED, "dry run stored nothing");

    let split = mesh.ok(&["route", "split", "ratings", "v2=100", "-y"]);
    assert!(!split.stderr.contains("no endpoints"), "v2 runs: {}", split.stderr);
    let dr = mesh.ok(&["get", "dr", "ratings", "-o", "json"]).stdout;
    let dr: serde_json::Value = serde_json::from_str(&dr).expect("json");
    assert_eq!(dr["spec"]["subsets"][0]["labels"]["version"], "v2");
    let t = tally(outbound, "ratings:9080", 20, false);
    assert_eq!(count(&t, "ratings-b"), 20, "{t:?}");
    let table = mesh.ok(&["get", "virtualservices"]).stdout;
    assert!(table.contains("ratings") && table.contains("ratings/v2"), "{table}");

    // details has no workload: a split to its v1 says that subset has no endpoints.
    let split = mesh.ok(&["route", "split", "details", "v1=100", "-y"]);
    assert!(
        split.stderr.contains("subset v1 (version=v1) of details.default.svc.cluster.local has no endpoints"),
        "{}",
        split.stderr
    );
}

#[test]
fn proxy_runs_the_app_with_http_proxy_set_and_exits_with_it() {
    if !corpus("proxy_runs_the_app_with_http_proxy_set_and_exits_with_it") {
        return;
    }
    let mut mesh = Mesh::new();
    mesh.install();
    mesh.ok(&["apply", "-f", &shared("bookinfo/platform/kube/bookinfo.yaml")]);
    let a = app("details-a");
    mesh.proxy(&["--workload", "details-v1", "--labels", "app=details", "--inbound", &format!("9080={a}")]);
    mesh.wait_synced(1);
    // The app: a bash script that calls details through $HTTP_PROXY (absolute form) and exits 7.
    let script = r#"hp=${HTTP_PROXY#http://}; exec 3<>/dev/tcp/${hp%:*}/${hp##*:}
printf 'GET http://details:9080/ HTTP/1.1\r\nHost: details:9080\r\nConnection: close\r\n\r\n' >&3
cat <&3; exit 7"#;
    let out = mesh
        .cmd()
        .args(["proxy", "run", "--workload", "job", "--", "bash", "-c", script])
        .env("RUST_LOG", "error")
        .output()
        .expect("run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(7), "{stdout}");
    assert!(stdout.contains("200 OK") && stdout.contains("details-a"), "{stdout}");
    // The app's standard output is the app's alone: where the proxy listens goes to stderr.
    assert!(stdout.starts_with("HTTP/1.1 200"), "{stdout}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("outbound listening on"), "{stderr}");
    // Logs written to a file carry no terminal colour codes.
    let log = std::fs::read_to_string(mesh.home.path().join("meshd.log")).expect("meshd.log");
    assert!(log.contains("INFO") && !log.contains('\u{1b}'), "{log}");
}

#[test]
fn admin_api_changes_the_log_level_and_quits_on_request() {
    let mut mesh = Mesh::new();
    mesh.install();
    let p = mesh.proxy(&["--workload", "job"]);
    // `mesh pc` finds the proxy through meshd: wait until it has connected.
    mesh.wait_synced(1);
    let post = |path: &str| {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(p.admin).expect("connect");
        s.write_all(
            format!("POST {path} HTTP/1.1\r\nHost: admin\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .expect("write");
        let mut resp = String::new();
        let _ = s.read_to_string(&mut resp);
        resp
    };
    assert!(post("/logging?level=debug").starts_with("HTTP/1.1 200"));
    let bad = post("/logging?level=[[[");
    assert!(bad.starts_with("HTTP/1.1 400"), "{bad}");
    // The same through the CLI, as istioctl's `proxy-config log`.
    assert_eq!(mesh.ok(&["pc", "log", "job"]).stdout.trim(), "log level: debug");
    mesh.ok(&["proxy-config", "log", "job", "--level", "mesh_proxy=trace,warn"]);
    assert_eq!(mesh.ok(&["pc", "log", "job"]).stdout.trim(), "log level: mesh_proxy=trace,warn");
    assert_eq!(mesh.run(&["pc", "log", "job", "--level", "a b"]).code, USAGE);
    assert_eq!(mesh.run(&["pc", "routes", "job", "--level", "debug"]).code, USAGE);
    let info: serde_json::Value =
        serde_json::from_str(&get(p.admin, "admin", "/server_info", false, &[]).1).expect("server_info");
    let pid = u32::try_from(info["pid"].as_u64().expect("pid")).expect("pid");
    assert!(post("/quitquitquit").starts_with("HTTP/1.1 200"));
    eventually("the proxy to exit", Duration::from_secs(10), || (!alive(pid)).then_some(()));
}

/// The value of the first sample of `metric` whose labels include all of `labels`.
fn sample(text: &str, metric: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines().filter(|l| l.starts_with(&format!("{metric}{{"))).find_map(|l| {
        let (head, value) = l.rsplit_once(' ')?;
        labels.iter().all(|(k, v)| head.contains(&format!("{k}=\"{v}\""))).then(|| value.parse().ok()).flatten()
    })
}

#[test]
fn istio_standard_metrics_on_both_sides() {
    if !corpus("istio_standard_metrics_on_both_sides") {
        return;
    }
    let mut mesh = Mesh::new();
    mesh.install();
    mesh.ok(&["apply", "-f", &shared("bookinfo/platform/kube/bookinfo.yaml")]);
    let reviews = mesh.proxy(&[
        "--workload",
        "reviews-v1",
        "--service-account",
        "bookinfo-reviews",
        "--labels",
        "app=reviews,version=v1",
        "--inbound",
        &format!("9080={}", app("reviews-v1")),
    ]);
    let pp = mesh.proxy(&[
        "--workload",
        "productpage-v1",
        "--service-account",
        "bookinfo-productpage",
        "--labels",
        "app=productpage,version=v1",
    ]);
    mesh.wait_synced(2);
    let out = pp.outbound.expect("outbound");
    for _ in 0..100 {
        assert_eq!(get(out, "reviews:9080", "/", false, &[]).0, 200);
    }
    let common = [
        ("source_workload", "productpage-v1"),
        ("source_workload_namespace", "default"),
        ("source_principal", "spiffe://cluster.local/ns/default/sa/bookinfo-productpage"),
        ("source_app", "productpage"),
        ("destination_workload", "reviews-v1"),
        ("destination_principal", "spiffe://cluster.local/ns/default/sa/bookinfo-reviews"),
        ("destination_app", "reviews"),
        ("destination_version", "v1"),
        ("destination_service", "reviews.default.svc.cluster.local"),
        ("destination_service_name", "reviews"),
        ("destination_service_namespace", "default"),
        ("response_code", "200"),
        ("request_protocol", "http"),
    ];
    let client = get(pp.metrics.expect("metrics"), "m", "/stats/prometheus", false, &[]).1;
    let mut want: Vec<(&str, &str)> = common.to_vec();
    want.push(("reporter", "source"));
    assert_eq!(sample(&client, "istio_requests_total", &want), Some(100.0), "{client}");
    let server = get(reviews.metrics.expect("metrics"), "m", "/stats/prometheus", false, &[]).1;
    let mut want: Vec<(&str, &str)> = common.to_vec();
    want.push(("reporter", "destination"));
    want.push(("connection_security_policy", "mutual_tls"));
    assert_eq!(sample(&server, "istio_requests_total", &want), Some(100.0), "{server}");
    assert!(sample(&server, "istio_request_duration_milliseconds_count", &want) == Some(100.0), "{server}");

    // `mesh top` over a second of steady traffic: the reviews service, its rate, all
    // successful, all over mTLS; counted once although both proxies report it.
    let load = Load::start(out, "reviews:9080", |code, _| code == 200);
    load.wait_more("traffic before top", 5);
    let top = mesh.ok(&["top", "-o", "json", "--interval", "1s"]).stdout;
    let (ok, failed) = load.finish();
    assert!(ok > 0 && failed == 0);
    let rows: Vec<serde_json::Value> = serde_json::from_str(&top).expect("top json");
    let reviews: Vec<&serde_json::Value> =
        rows.iter().filter(|r| r["service"] == "reviews.default.svc.cluster.local").collect();
    assert_eq!(reviews.len(), 1, "{top}");
    let r = reviews[0];
    assert_eq!(r["workload"], "reviews-v1");
    assert!(r["requests_per_second"].as_f64().is_some_and(|v| v > 1.0), "{top}");
    assert_eq!(r["success_rate"], 1.0);
    assert_eq!(r["mtls_share"], 1.0);
    assert!(r["p50_ms"].as_f64().is_some_and(|v| v > 0.0) && r["p99_ms"].as_f64() >= r["p50_ms"].as_f64(), "{top}");
}

#[test]
fn access_log_lines_are_json_per_request() {
    if !corpus("access_log_lines_are_json_per_request") {
        return;
    }
    use std::io::BufRead;
    let mut mesh = Mesh::new();
    mesh.install_with(&["meshConfig.accessLogFile=/dev/stdout"]);
    mesh.ok(&["apply", "-f", &shared("bookinfo/platform/kube/bookinfo.yaml")]);
    mesh.proxy(&[
        "--workload",
        "reviews-v1",
        "--labels",
        "app=reviews,version=v1",
        "--inbound",
        &format!("9080={}", app("reviews-v1")),
    ]);
    // The client's stdout is read here, line by line, after its start-up lines.
    /// Killed even when an assertion fails.
    struct KillOnDrop(std::process::Child);
    impl Drop for KillOnDrop {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut child = KillOnDrop(
        mesh.cmd()
            .args(["proxy", "run", "--workload", "productpage-v1", "--labels", "app=productpage"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn"),
    );
    let stdout = child.0.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let mut outbound = None;
    while outbound.is_none() {
        let line = rx.recv_timeout(Duration::from_secs(10)).expect("start-up line");
        outbound = line
            .strip_prefix("outbound listening on ")
            .and_then(|r| r.split_whitespace().next()?.parse::<std::net::SocketAddr>().ok());
    }
    mesh.wait_synced(2);
    let outbound = outbound.expect("outbound");
    let got = get(outbound, "reviews:9080", "/books?id=1", false, &[("x-request-id", "req-42")]);
    assert_eq!(got.0, 200);
    let entry = eventually("an access log line", Duration::from_secs(10), || {
        let line = rx.try_recv().ok()?;
        let v: serde_json::Value = serde_json::from_str(&line).ok()?;
        (v["x_request_id"] == "req-42").then_some(v)
    });
    drop(child);
    assert_eq!(entry["direction"], "outbound");
    assert_eq!(entry["method"], "GET");
    assert_eq!(entry["path"], "/books?id=1");
    assert_eq!(entry["response_code"], 200);
    assert_eq!(entry["upstream_cluster"], "outbound|9080||reviews.default.svc.cluster.local");
    assert_eq!(entry["upstream_peer"], "spiffe://cluster.local/ns/default/sa/default");
    assert_eq!(entry["destination_workload"], "default/reviews-v1");
}

/// Every span the collector got, from all the Zipkin v2 JSON batches POSTed to it.
fn zipkin_spans(collector: &Recorded) -> Vec<serde_json::Value> {
    let got = collector.lock().unwrap_or_else(|e| e.into_inner());
    got.iter()
        .filter(|(head, _)| head.starts_with("POST /api/v2/spans "))
        .filter_map(|(_, body)| serde_json::from_slice::<Vec<serde_json::Value>>(body).ok())
        .flatten()
        .collect()
}

#[test]
fn traces_continue_across_two_hops_and_reach_the_collector() {
    if !corpus("traces_continue_across_two_hops_and_reach_the_collector") {
        return;
    }
    let (collector, spans_in) = recording_app();
    let (app_addr, app_got) = recording_app();
    let mut mesh = Mesh::new();
    let zipkin = format!("meshConfig.defaultConfig.tracing.zipkin.address={collector}");
    mesh.install_with(&[&zipkin, "meshConfig.defaultConfig.tracing.sampling=100"]);
    mesh.ok(&["apply", "-f", &shared("bookinfo/platform/kube/bookinfo.yaml")]);
    mesh.proxy(&[
        "--workload",
        "reviews-v1",
        "--labels",
        "app=reviews,version=v1",
        "--inbound",
        &format!("9080={app_addr}"),
    ]);
    let pp = mesh.proxy(&["--workload", "productpage-v1", "--labels", "app=productpage,version=v1"]);
    mesh.wait_synced(2);
    let out = pp.outbound.expect("outbound");

    let (trace, caller_span) = ("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7");
    let tp = format!("00-{trace}-{caller_span}-01");
    assert_eq!(get(out, "reviews:9080", "/reviews/1", false, &[("traceparent", &tp)]).0, 200);
    let head = app_got.lock().unwrap_or_else(|e| e.into_inner()).last().map(|r| r.0.clone()).expect("app got it");
    let seen = header_of(&head, "traceparent").expect("traceparent at the app");
    let parts: Vec<&str> = seen.split('-').collect();
    assert_eq!(parts.len(), 4, "{seen}");
    assert_eq!(parts[1], trace, "same trace id at the app");
    assert_ne!(parts[2], caller_span, "a new parent span id at the app");
    assert_eq!(parts[3], "01");
    assert_eq!(header_of(&head, "x-b3-traceid").as_deref(), Some(trace));
    let request_id = header_of(&head, "x-request-id").expect("x-request-id made");
    assert_eq!(request_id.len(), 36, "{request_id}");

    // Two spans of that trace: the client hop (child of the caller's span) and the server
    // hop (child of the client span), whose id the app saw as its parent.
    let spans = eventually("both spans at the collector", Duration::from_secs(10), || {
        let s: Vec<_> = zipkin_spans(&spans_in).into_iter().filter(|s| s["traceId"] == trace).collect();
        (s.len() >= 2).then_some(s)
    });
    let client = spans.iter().find(|s| s["kind"] == "CLIENT").expect("client span");
    let server = spans.iter().find(|s| s["kind"] == "SERVER").expect("server span");
    assert_eq!(client["parentId"], caller_span);
    assert_eq!(server["parentId"], client["id"]);
    assert_eq!(server["id"], parts[2]);
    // Named by canonical service (the `app` label), as Istio's spans are.
    assert_eq!(client["localEndpoint"]["serviceName"], "productpage.default");
    assert_eq!(server["localEndpoint"]["serviceName"], "reviews.default");
    assert_eq!(client["name"], "reviews.default.svc.cluster.local:9080/*");
    // The server span takes the client's operation name (Envoy's decorator header), which the
    // app sees too.
    assert_eq!(server["name"], "reviews.default.svc.cluster.local:9080/*");
    assert_eq!(
        header_of(&head, "x-envoy-decorator-operation").as_deref(),
        Some("reviews.default.svc.cluster.local:9080/*")
    );
    assert_eq!(server["tags"]["istio.canonical_service"], "reviews");
    assert_eq!(server["tags"]["istio.canonical_revision"], "v1");
    assert_eq!(server["tags"]["http.status_code"], "200");
    assert_eq!(client["tags"]["guid:x-request-id"], request_id.as_str());

    // Without a caller's context a new trace starts at the first proxy (sampled at 100 %).
    assert_eq!(get(out, "reviews:9080", "/", false, &[]).0, 200);
    let head = app_got.lock().unwrap_or_else(|e| e.into_inner()).last().map(|r| r.0.clone()).expect("app got it");
    let fresh = header_of(&head, "traceparent").expect("traceparent");
    assert!(!fresh.contains(trace) && fresh.ends_with("-01"), "{fresh}");
}

/// A metric without labels (`name value`), or with them (`name{...} value`), summed.
fn plain(text: &str, metric: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(&format!("{metric} ")) || l.starts_with(&format!("{metric}{{")))
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum()
}

#[test]
fn meshd_metrics_syncz_and_proxy_health() {
    if !corpus("meshd_metrics_syncz_and_proxy_health") {
        return;
    }
    let mut mesh = Mesh::new();
    mesh.install();
    let info: serde_json::Value =
        serde_json::from_slice(&std::fs::read(mesh.home.path().join("meshd.json")).expect("meshd.json")).expect("json");
    let monitoring: std::net::SocketAddr =
        info["monitoring"].as_str().and_then(|a| a.parse().ok()).expect("monitoring address in meshd.json");
    mesh.ok(&["apply", "-f", &shared("bookinfo/platform/kube/bookinfo.yaml")]);
    mesh.proxy(&[
        "--workload",
        "reviews-v1",
        "--labels",
        "app=reviews,version=v1",
        "--inbound",
        &format!("9080={}", app("r")),
    ]);
    let pp = mesh.proxy(&["--workload", "productpage-v1", "--labels", "app=productpage,version=v1"]);
    mesh.wait_synced(2);

    let metrics = || get(monitoring, "m", "/metrics", false, &[]).1;
    let m = metrics();
    assert_eq!(plain(&m, "pilot_xds"), 2.0, "{m}");
    for t in ["cds", "eds", "lds", "rds"] {
        assert!(sample(&m, "pilot_xds_pushes", &[("type", t)]).is_some_and(|v| v >= 2.0), "{t}: {m}");
    }
    assert!(plain(&m, "citadel_server_success_cert_issuance_count") >= 2.0, "{m}");
    assert!(plain(&m, "galley_validation_passed") >= 1.0, "{m}");
    // istiod's names and types exactly: counters without `_total`, and the build info.
    assert!(m.contains("# TYPE pilot_xds_pushes counter\n"), "{m}");
    assert!(!m.contains("pilot_xds_pushes_total"), "{m}");
    let tag = env!("CARGO_PKG_VERSION");
    assert_eq!(sample(&m, "istio_build", &[("component", "pilot"), ("tag", tag)]), Some(1.0), "{m}");
    let converged = eventually("both proxies' convergence samples", Duration::from_secs(10), || {
        let c = plain(&metrics(), "pilot_proxy_convergence_time_count");
        (c >= 2.0).then_some(c)
    });
    assert!(plain(&m, "citadel_server_root_cert_expiry_timestamp") > 1.7e9, "{m}");

    // A change of both proxies' routes converges again on both.
    mesh.ok(&["apply", "-f", &shared("bookinfo/networking/destination-rule-all.yaml")]);
    mesh.ok(&["apply", "-f", &shared("bookinfo/networking/virtual-service-all-v1.yaml")]);
    mesh.wait_synced(2);
    eventually("two more convergence samples", Duration::from_secs(10), || {
        (plain(&metrics(), "pilot_proxy_convergence_time_count") >= converged + 2.0).then_some(())
    });

    // A new replica: the others get its endpoint as a delta on what they hold, and their
    // endpoints are then exactly what a fresh translation gives.
    let deltas = plain(&metrics(), "mesh_xds_deltas_total");
    mesh.proxy(&[
        "--workload",
        "reviews-v2",
        "--labels",
        "app=reviews,version=v2",
        "--inbound",
        &format!("9080={}", app("r2")),
    ]);
    mesh.wait_synced(3);
    assert!(plain(&metrics(), "mesh_xds_deltas_total") >= deltas + 2.0, "{}", metrics());
    let dump: serde_json::Value =
        serde_json::from_str(&get(pp.admin, "localhost", "/config_dump", false, &[]).1).expect("config_dump");
    let dump = dump.to_string();
    assert!(dump.contains("default/reviews-v2"), "the delta added reviews-v2: {dump}");
    // One service's routes change: every proxy gets only that virtual host, as a delta.
    let before = metrics();
    let rds = sample(&before, "mesh_xds_deltas_total", &[("type", "rds")]).unwrap_or(0.0);
    mesh.ok(&["apply", "-f", &shared("bookinfo/networking/virtual-service-reviews-50-v3.yaml")]);
    mesh.wait_synced(3);
    let m = metrics();
    assert!(sample(&m, "mesh_xds_deltas_total", &[("type", "rds")]).is_some_and(|v| v >= rds + 3.0), "{m}");
    // Only weights change now: the types that change did not touch are not pushed again.
    let before = metrics();
    apply(
        &mesh,
        "reviews-20-80.yaml",
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: reviews}\nspec:\n  hosts: [reviews]\n  http:\n  - route:\n    - {destination: {host: reviews, subset: v1}, weight: 20}\n    - {destination: {host: reviews, subset: v3}, weight: 80}\n",
    );
    mesh.wait_synced(3);
    let m = metrics();
    assert!(
        sample(&m, "pilot_xds_pushes", &[("type", "rds")]) > sample(&before, "pilot_xds_pushes", &[("type", "rds")])
    );
    for t in ["cds", "eds", "lds"] {
        let pushes = |m: &str| sample(m, "pilot_xds_pushes", &[("type", t)]);
        assert_eq!(pushes(&m), pushes(&before), "{t} pushed for a routes-only change");
    }
    // meshd's fresh translation for each proxy and what it holds after the deltas agree.
    for name in ["productpage-v1", "reviews-v1", "reviews-v2"] {
        let diff = mesh.ok(&["proxy-status", name]).stdout;
        for t in ["routes", "endpoints"] {
            assert!(diff.contains(&format!("{t}: meshd and the proxy agree")), "{diff}");
        }
    }

    // /debug/syncz: each proxy, each type sent, acknowledged and SYNCED.
    let syncz: Vec<serde_json::Value> =
        serde_json::from_str(&get(monitoring, "m", "/debug/syncz", false, &[]).1).expect("syncz json");
    let names: Vec<&str> = syncz.iter().filter_map(|r| r["proxy"].as_str()).collect();
    assert_eq!(names, ["productpage-v1.default", "reviews-v1.default", "reviews-v2.default"]);
    for row in &syncz {
        for t in ["cluster", "listener", "route", "endpoint"] {
            assert_eq!(row[format!("{t}_state")], "SYNCED", "{row}");
            assert_eq!(row[format!("{t}_sent")], row[format!("{t}_acked")], "{row}");
        }
    }

    // The proxy's own health: connected to meshd, the route version it holds, upstream errors.
    let out = pp.outbound.expect("outbound");
    assert_eq!(get(out, "ratings:9080", "/", false, &[]).0, 503, "ratings has no endpoints");
    let pm = get(pp.metrics.expect("metrics"), "m", "/stats/prometheus", false, &[]).1;
    assert_eq!(plain(&pm, "mesh_proxy_meshd_connected"), 1.0, "{pm}");
    let route_version = syncz[0]["route_acked"].as_str().expect("version");
    assert_eq!(
        sample(&pm, "mesh_proxy_config_version", &[("type", "routes"), ("version", route_version)]),
        Some(1.0),
        "{pm}"
    );
    assert_eq!(
        pm.lines().filter(|l| l.starts_with("mesh_proxy_config_version{") && l.contains("type=\"routes\"")).count(),
        1,
        "only the version in force: {pm}"
    );
    assert_eq!(sample(&pm, "mesh_proxy_upstream_errors_total", &[("cause", "no_healthy_upstream")]), Some(1.0), "{pm}");
    assert!(sample(&pm, "mesh_proxy_connections_total", &[("listener", "outbound")]).is_some_and(|v| v >= 1.0), "{pm}");
}

#[test]
fn telemetry_resources_switch_access_logs_and_sampling_per_workload() {
    if !corpus("telemetry_resources_switch_access_logs_and_sampling_per_workload") {
        return;
    }
    let (collector, spans_in) = recording_app();
    let mut mesh = Mesh::new();
    let zipkin = format!("meshConfig.defaultConfig.tracing.zipkin.address={collector}");
    mesh.install_with(&[&zipkin, "meshConfig.defaultConfig.tracing.sampling=0"]);
    mesh.ok(&["apply", "-f", &shared("bookinfo/platform/kube/bookinfo.yaml")]);
    let telemetry = mesh.home.path().join("telemetry.yaml");
    std::fs::write(
        &telemetry,
        r#"
apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {name: reviews-logs, namespace: default}
spec:
  selector: {matchLabels: {app: reviews}}
  accessLogging:
  - providers: [{name: envoy}]
---
apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {name: trace-everything, namespace: default}
spec:
  tracing:
  - randomSamplingPercentage: 100
"#,
    )
    .expect("write");
    mesh.ok(&["apply", "-f", telemetry.to_str().expect("path")]);
    let got = mesh.ok(&["get", "telemetry"]).stdout;
    assert!(got.contains("reviews-logs") && got.contains("app=reviews") && got.contains("100%"), "{got}");
    let reviews = mesh.proxy(&[
        "--workload",
        "reviews-v1",
        "--labels",
        "app=reviews,version=v1",
        "--inbound",
        &format!("9080={}", app("r")),
    ]);
    let pp = mesh.proxy(&["--workload", "productpage-v1", "--labels", "app=productpage,version=v1"]);
    mesh.wait_synced(2);
    let out = pp.outbound.expect("outbound");
    assert_eq!(get(out, "reviews:9080", "/", false, &[("x-request-id", "t-1")]).0, 200);
    // reviews logs (its Telemetry turns logs on); productpage does not (the mesh default is off).
    let line = reviews.json_line("reviews' access log line", |v| v["x_request_id"] == "t-1");
    assert_eq!(line["direction"], "inbound");
    assert!(
        pp.stdout.recv_timeout(Duration::from_millis(300)).is_err(),
        "productpage must not log: its line would already be written when the response arrived"
    );
    // The namespace's Telemetry samples every new trace although the mesh samples none.
    let spans = eventually("spans of a trace started at productpage", Duration::from_secs(10), || {
        let s: Vec<serde_json::Value> =
            zipkin_spans(&spans_in).into_iter().filter(|s| s["tags"]["guid:x-request-id"] == "t-1").collect();
        (s.len() >= 2).then_some(s)
    });
    assert!(spans.iter().any(|s| s["kind"] == "CLIENT") && spans.iter().any(|s| s["kind"] == "SERVER"));
}

/// `apply --wait` returns once every proxy has the config; `mesh wait` fails, naming the
/// proxy, when one cannot acknowledge (here: stopped with SIGSTOP), and passes once it can.
#[test]
fn wait_returns_when_proxies_acknowledge_and_names_those_that_do_not() {
    let mut mesh = Mesh::new();
    mesh.install();
    let a = mesh.proxy(&["--workload", "a"]);
    mesh.proxy(&["--workload", "b"]);
    mesh.wait_synced(2);
    let svc = "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec:\n  selector: {app: web}\n  ports: [{name: http, port: 80}]\n";
    let file = mesh.home.path().join("web.yaml");
    std::fs::write(&file, svc).expect("write");
    let r = mesh.ok(&["apply", "-f", file.to_str().expect("path"), "--wait"]);
    assert!(r.stdout.contains("2 proxies have the config meshd holds now"), "{}", r.stdout);

    let stop = |signal: &str| {
        let ok = std::process::Command::new("kill").args([signal, &a.pid.to_string()]).status().expect("kill");
        assert!(ok.success());
    };
    stop("-STOP");
    std::fs::write(&file, svc.replace("port: 80", "port: 8080")).expect("write");
    mesh.ok(&["apply", "-f", file.to_str().expect("path")]);
    let r = mesh.run(&["wait", "--timeout", "1s"]);
    // `mesh check` sees the same: one proxy out of sync.
    let check = mesh.run(&["check"]);
    stop("-CONT");
    assert_eq!(r.code, FAILED, "{}", r.stderr);
    assert!(r.stderr.contains("a.default (") && !r.stderr.contains("b.default"), "{}", r.stderr);
    assert_eq!(check.code, FAILED, "{}", check.stdout);
    assert!(check.stdout.contains("× not in sync: a.default") && check.stdout.contains("see: "), "{}", check.stdout);
    let r = mesh.ok(&["wait", "--timeout", "20s"]);
    assert!(r.stdout.contains("2 proxies"), "{}", r.stdout);
    let check = mesh.ok(&["check"]);
    for line in [
        "√ meshd is running and answers",
        "√ the signing root",
        "√ every proxy (2) holds a valid workload certificate",
        "√ every proxy (2) has the config",
    ] {
        assert!(check.stdout.contains(line), "{line}: {}", check.stdout);
    }
    assert!(!check.stdout.contains('×'), "{}", check.stdout);
    mesh.ok(&["uninstall", "-y"]);
    let down = mesh.run(&["check"]);
    assert_eq!(down.code, FAILED);
    assert!(down.stdout.contains("× meshd is running and answers"), "{}", down.stdout);
}

/// The README's usage block, run as written from the repository's root with the real `mesh`,
/// python's http.server and curl; only its fixed ports are swapped for free ones, so that
/// parallel tests cannot collide. Everything it starts is stopped, even when it fails.
#[test]
fn the_readme_usage_block_runs_as_written() {
    if !prerequisite("curl and python3", have("curl") && have("python3")) {
        return;
    }
    let root = format!("{}/..", env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(format!("{root}/README.md")).expect("README.md");
    let usage = &readme[readme.find("## Usage").expect("a Usage section")..];
    let start = usage.find("```sh\n").expect("a sh block") + 6;
    let mut block = usage[start..start + usage[start..].find("```\n").expect("its end")].to_string();
    for fixed in ["19081", "19082", "15010", "15001"] {
        assert!(block.contains(fixed), "the block uses port {fixed}");
        let free = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
        block = block.replace(fixed, &free.to_string());
    }
    let script = format!(
        "set -e\ntrap 'mesh uninstall -y >/dev/null 2>&1 || true; kill $(jobs -p) 2>/dev/null || true' EXIT\n{block}"
    );
    let bin = std::path::Path::new(MESH).parent().expect("bin dir").display().to_string();
    let path = format!("{bin}:{}", std::env::var("PATH").unwrap_or_default());
    let out = std::process::Command::new("timeout")
        .args(["120", "bash", "-c", &script])
        .current_dir(&root)
        .env("PATH", path)
        .env("NO_COLOR", "1")
        .env_remove("MESH_HOME")
        .env_remove("MESH_NAMESPACE")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("bash");
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "the block failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("3 proxies have the config meshd holds now"), "{stdout}");
    let answers = stdout.lines().filter(|l| *l == "reviews v1" || *l == "reviews v2").count();
    assert_eq!(answers, 2, "both curls answered through the mesh: {stdout}");
    assert!(stdout.contains("v1=90 v2=10 -> v1=20 v2=80 (3/3 proxies synced)"), "{stdout}");
    assert!(stdout.contains("reviews v2") && stdout.contains("meshd stopped"), "{stdout}");
    assert!(!stdout.contains("upstream connect error") && !stderr.contains("warning:"), "{stdout}\n{stderr}");
}

/// `mesh x describe` names what applies to a pod and to a service: the Service and its port's
/// mTLS mode, the DestinationRule and the subsets the pod matches, the VirtualService's weights,
/// and the authorization policy, from the running mesh.
#[test]
fn x_describe_names_what_applies_to_a_pod_and_a_service() {
    let mut mesh = Mesh::new();
    mesh.install();
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/reviews.yaml");
    mesh.ok(&["apply", "-f", example]);
    let policy = mesh.home.path().join("policy.yaml");
    std::fs::write(
        &policy,
        "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: default}\nspec: {mtls: {mode: STRICT}}\n---\napiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: reviews-viewer}\nspec:\n  selector: {matchLabels: {app: reviews}}\n  action: ALLOW\n  rules: [{to: [{operation: {methods: [GET]}}]}]\n",
    )
    .expect("write");
    mesh.ok(&["apply", "-f", policy.to_str().expect("path")]);
    for v in ["v1", "v2"] {
        let labels = format!("app=reviews,version={v}");
        mesh.proxy(&["--workload", &format!("reviews-{v}"), "--labels", &labels, "--inbound", "9080=127.0.0.1:9"]);
    }
    mesh.wait_synced(2);

    let pod = mesh.ok(&["x", "describe", "pod", "reviews-v1"]);
    for line in [
        "Pod: reviews-v1.default",
        "Labels: app=reviews, version=v1",
        "Proxy: SYNCED",
        "Service: reviews.default.svc.cluster.local",
        "Port 9080 (HTTP): mTLS STRICT",
        "DestinationRule: default/reviews for \"reviews.default.svc.cluster.local\"",
        "Matching subsets: v1",
        "(Non-matching subsets v2)",
        "VirtualService: default/reviews (port 9080)",
        "90% to subset v1 (this pod), 10% to subset v2",
        "AuthorizationPolicy: default/reviews-viewer (ALLOW, 1 rules)",
    ] {
        assert!(pod.stdout.contains(line), "{line:?} in:\n{}", pod.stdout);
    }
    let svc = mesh.ok(&["experimental", "describe", "svc", "reviews.default"]);
    for line in [
        "Service: reviews.default.svc.cluster.local",
        "Selector: app=reviews",
        "Subset v2: version=v2",
        "90% to subset v1, 10% to subset v2",
        "Pod: reviews-v1.default (app=reviews, version=v1): port 9080 mTLS STRICT",
        "Pod: reviews-v2.default",
    ] {
        assert!(svc.stdout.contains(line), "{line:?} in:\n{}", svc.stdout);
    }
    let productpage = mesh.ok(&["x", "describe", "service", "productpage"]);
    assert!(productpage.stdout.contains("DestinationRule: none"), "{}", productpage.stdout);
    assert!(productpage.stdout.contains("Pods: none with a connected proxy"), "{}", productpage.stdout);
    let missing = mesh.run(&["x", "describe", "pod", "ratings-v1"]);
    assert_eq!(missing.code, FAILED, "{}", missing.stderr);
    assert!(missing.stderr.contains("no proxy ratings-v1.default is connected"), "{}", missing.stderr);
    let missing = mesh.run(&["x", "describe", "svc", "ratings"]);
    assert_eq!(missing.code, FAILED, "{}", missing.stderr);
}

/// `mesh bug-report` writes one archive that the real `tar` reads: meshd's log, the config,
/// the analysis, every proxy's sync state, config dump, certificates and metrics, and no
/// private key or token.
#[test]
fn bug_report_collects_everything_and_leaks_no_secret() {
    let mut mesh = Mesh::new();
    mesh.install();
    mesh.ok(&["apply", "-f", concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/reviews.yaml")]);
    mesh.proxy(&["--workload", "reviews-v1", "--labels", "app=reviews,version=v1", "--inbound", "9080=127.0.0.1:9"]);
    mesh.wait_synced(1);
    let archive = mesh.home.path().join("report.tar.gz");
    let r = mesh.ok(&["bug-report", "-o", archive.to_str().expect("path")]);
    assert!(r.stdout.contains("wrote"), "{}", r.stdout);
    let listing = std::process::Command::new("tar").arg("-tzf").arg(&archive).output().expect("tar");
    assert!(listing.status.success(), "{}", String::from_utf8_lossy(&listing.stderr));
    let listing = String::from_utf8_lossy(&listing.stdout);
    for f in [
        "mesh-bug-report/README.txt",
        "mesh-bug-report/version.txt",
        "mesh-bug-report/meshd.log",
        "mesh-bug-report/config/resources.yaml",
        "mesh-bug-report/analyze.txt",
        "mesh-bug-report/proxies/status.json",
        "mesh-bug-report/proxies/default/reviews-v1/config_dump.json",
        "mesh-bug-report/proxies/default/reviews-v1/certs.json",
        "mesh-bug-report/proxies/default/reviews-v1/stats.txt",
    ] {
        assert!(listing.lines().any(|l| l == f), "{f} in:\n{listing}");
    }
    let out = tempfile::tempdir().expect("tempdir");
    let x =
        std::process::Command::new("tar").arg("-xzf").arg(&archive).arg("-C").arg(out.path()).status().expect("tar");
    assert!(x.success());
    let read = |f: &str| std::fs::read_to_string(out.path().join("mesh-bug-report").join(f)).expect(f);
    assert!(read("README.txt").contains("Everything was collected."), "{}", read("README.txt"));
    assert!(read("config/resources.yaml").contains("kind: VirtualService"), "{}", read("config/resources.yaml"));
    let dump: serde_json::Value =
        serde_json::from_str(&read("proxies/default/reviews-v1/config_dump.json")).expect("json");
    assert!(dump["config"]["routes"].is_object(), "{dump}");
    // No secret in any file: not the admin token, not a private key.
    let token = std::fs::read_to_string(mesh.home.path().join("token")).expect("token");
    for l in listing.lines().filter(|l| !l.ends_with('/')) {
        let text = std::fs::read_to_string(out.path().join(l)).unwrap_or_default();
        assert!(!text.contains(token.trim()), "the admin token is in {l}");
        assert!(!text.contains("PRIVATE KEY-----\n"), "a private key is in {l}");
    }
    // Without meshd: the report still comes, and says what is missing.
    mesh.ok(&["uninstall", "-y"]);
    let partial = mesh.ok(&["bug-report", "-o", archive.to_str().expect("path")]);
    assert!(partial.stderr.contains("not collected: config"), "{}", partial.stderr);
}
