//! The mesh's metrics as Istio's dashboards and Kiali read them: a real Prometheus (Debian's
//! `prometheus`, installed by `.ci/run`) scrapes every proxy and meshd of a running mesh under
//! load, then runs the dashboards' PromQL; `promtool check metrics` reads every scrape.

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::harness::*;

/// `s` for a URL's query string.
fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// An instant query's result vector: each series' labels and value.
fn query(prometheus: SocketAddr, promql: &str) -> Vec<(serde_json::Map<String, serde_json::Value>, f64)> {
    let (code, body) =
        get(prometheus, "prometheus", &format!("/api/v1/query?query={}", url_encode(promql)), false, &[]);
    assert_eq!(code, 200, "{promql}: {body}");
    let v: serde_json::Value = serde_json::from_str(&body).expect("prometheus answers JSON");
    assert_eq!(v["status"], "success", "{promql}: {body}");
    v["data"]["result"]
        .as_array()
        .map(|rs| {
            rs.iter()
                .filter_map(|r| {
                    let labels = r["metric"].as_object()?.clone();
                    let value = r["value"][1].as_str()?.parse::<f64>().ok()?;
                    Some((labels, value))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Whether some series carries every `name=value` of `want`.
fn has_series(result: &[(serde_json::Map<String, serde_json::Value>, f64)], want: &[(&str, &str)]) -> bool {
    result.iter().any(|(labels, _)| want.iter().all(|(k, v)| labels.get(*k).and_then(|x| x.as_str()) == Some(*v)))
}

/// `promtool check metrics` on one scrape. Istio's own names break three of promtool's style
/// rules (`istio_request_duration_milliseconds` is not in seconds; istiod's counters have no
/// `_total`, and citadel's end in `_count`), as Istio's own scrapes do; any other finding, and
/// any parse error, fails.
fn promtool_check(what: &str, text: &str) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(text.as_bytes()).expect("write to promtool");
    }
    let out = child.wait_with_output().expect("promtool output");
    let report = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    // istiod's counters, named as istiod names them.
    let istiod = [
        "pilot_xds_pushes",
        "pilot_total_xds_rejects",
        "galley_validation_passed",
        "galley_validation_failed",
        "citadel_server_csr_count",
        "citadel_server_success_cert_issuance_count",
        "citadel_server_csr_sign_err_count",
        "pilot_k8s_cfg_events",
        "pilot_k8s_reg_events",
        "pilot_push_triggers",
    ];
    let istio_names_only = report.lines().filter(|l| !l.trim().is_empty()).all(|l| {
        let (name, finding) = l.split_once(' ').unwrap_or((l, ""));
        (name == "istio_request_duration_milliseconds" && finding.starts_with("use base unit \"seconds\""))
            || (istiod.contains(&name)
                && (finding == "counter metrics should have \"_total\" suffix"
                    || finding == "non-histogram and non-summary metrics should not have \"_count\" suffix"))
    });
    assert!(out.status.success() || istio_names_only, "promtool on {what}:\n{report}\n--- scrape:\n{text}");
}

/// A loopback port that was free a moment ago (Prometheus cannot report a port it chose).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("free port")
}

#[test]
fn istio_dashboards_and_kiali_queries_return_series_from_a_real_prometheus() {
    if !corpus("istio_dashboards_and_kiali_queries_return_series_from_a_real_prometheus")
        || !prerequisite("prometheus and promtool (apt install prometheus)", have("prometheus") && have("promtool"))
    {
        return;
    }
    let mut mesh = Mesh::new();
    mesh.install();
    mesh.ok(&["apply", "-f", &shared("bookinfo/platform/kube/bookinfo.yaml")]);
    let reviews = mesh.proxy(&[
        "--workload",
        "reviews-v1",
        "--labels",
        "app=reviews,version=v1",
        "--inbound",
        &format!("9080={}", app("reviews")),
    ]);
    let details = mesh.proxy(&[
        "--workload",
        "details-v1",
        "--labels",
        "app=details,version=v1",
        "--inbound",
        &format!("9080={}", app("details")),
    ]);
    let pp = mesh.proxy(&[
        "--workload",
        "productpage-v1",
        "--labels",
        "app=productpage,version=v1",
        "--inbound",
        &format!("9080={}", app("productpage")),
    ]);
    let gw = mesh.ingress_gateway_proxy(8080);
    mesh.ok(&["apply", "-f", &shared("bookinfo/networking/bookinfo-gateway.yaml")]);
    // And a TCP service: Istio's tcp-echo, called by `sleep`.
    mesh.ok(&["apply", "-f", &shared("samples/tcp-echo/tcp-echo-services.yaml")]);
    let echo = mesh.proxy(&[
        "--workload",
        "tcp-echo-v1",
        "--labels",
        "app=tcp-echo,version=v1",
        "--inbound",
        &format!("9000={}", crate::traffic::tcp_echo("one")),
    ]);
    let sleep =
        mesh.proxy(&["--workload", "sleep", "--labels", "app=sleep", "--outbound-tcp", "tcp-echo:9000=127.0.0.1:0"]);
    mesh.wait_synced(6);
    let info: serde_json::Value =
        serde_json::from_slice(&std::fs::read(mesh.home.path().join("meshd.json")).expect("meshd.json")).expect("json");
    let monitoring: SocketAddr = info["monitoring"].as_str().and_then(|a| a.parse().ok()).expect("monitoring address");

    // Prometheus scraping every proxy and meshd each second, as Istio's addon config scrapes
    // sidecars (`/stats/prometheus`) and istiod (`/metrics`).
    let proxies: Vec<SocketAddr> =
        [&reviews, &details, &pp, &gw, &echo, &sleep].iter().map(|p| p.metrics.expect("metrics")).collect();
    let targets = |addrs: &[SocketAddr]| addrs.iter().map(|a| format!("'{a}'")).collect::<Vec<_>>().join(", ");
    let config = format!(
        "global: {{scrape_interval: 1s, evaluation_interval: 1s}}\n\
         scrape_configs:\n\
         - job_name: envoy-stats\n  metrics_path: /stats/prometheus\n  static_configs: [{{targets: [{}]}}]\n\
         - job_name: pilot\n  metrics_path: /metrics\n  static_configs: [{{targets: ['{monitoring}']}}]\n",
        targets(&proxies)
    );
    let dir = mesh.home.path().join("prometheus");
    std::fs::create_dir_all(&dir).expect("prometheus dir");
    std::fs::write(dir.join("prometheus.yml"), config).expect("prometheus.yml");
    let port = free_port();
    let child = Command::new("prometheus")
        .arg(format!("--config.file={}", dir.join("prometheus.yml").display()))
        .arg(format!("--storage.tsdb.path={}", dir.join("data").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start prometheus");
    mesh.keep(child);
    let prometheus: SocketAddr = ([127, 0, 0, 1], port).into();
    eventually("prometheus ready", Duration::from_secs(30), || {
        std::net::TcpStream::connect(prometheus).ok()?;
        (get(prometheus, "prometheus", "/-/ready", false, &[]).0 == 200).then_some(())
    });

    // Traffic from productpage to reviews and details, through both sidecars (mTLS).
    let out = pp.outbound.expect("outbound");
    for (host, want) in [("reviews:9080", "reviews"), ("details:9080", "details")] {
        let (code, body) = get(out, host, "/", false, &[]);
        assert_eq!((code, body.trim_end()), (200, want), "{host}");
    }
    let to_reviews = Load::start(out, "reviews:9080", |code, body| code == 200 && body.trim_end() == "reviews");
    let to_details = Load::start(out, "details:9080", |code, body| code == 200 && body.trim_end() == "details");
    to_reviews.wait_more("requests to reviews", 20);
    to_details.wait_more("requests to details", 20);

    // Every scrape passes promtool.
    for (what, addr, path) in [
        ("reviews' proxy", proxies[0], "/stats/prometheus"),
        ("productpage's proxy", proxies[2], "/stats/prometheus"),
        ("meshd", monitoring, "/metrics"),
    ] {
        promtool_check(what, &get(addr, "m", path, false, &[]).1);
    }

    // Istio's service and workload dashboards, Kiali's graph, the mesh dashboard.
    let kiali = "sum(rate(istio_requests_total{reporter=\"destination\",source_workload_namespace=\"default\"}[1m])) \
        by (source_cluster,source_workload_namespace,source_workload,source_canonical_service,\
        source_canonical_revision,destination_cluster,destination_service_namespace,destination_service,\
        destination_service_name,destination_workload_namespace,destination_workload,\
        destination_canonical_service,destination_canonical_revision,request_protocol,response_code,\
        grpc_response_status,response_flags) > 0";
    let edges = eventually("Kiali's graph edges", Duration::from_secs(30), || {
        let r = query(prometheus, kiali);
        let edge = |to: &str| {
            has_series(
                &r,
                &[
                    ("source_canonical_service", "productpage"),
                    ("source_canonical_revision", "v1"),
                    ("source_workload", "productpage-v1"),
                    ("source_cluster", "Kubernetes"),
                    ("destination_canonical_service", to),
                    ("destination_canonical_revision", "v1"),
                    ("destination_cluster", "Kubernetes"),
                    ("destination_service_name", to),
                    ("response_code", "200"),
                ],
            )
        };
        (edge("reviews") && edge("details")).then_some(r)
    });
    assert!(edges.iter().all(|(_, v)| *v > 0.0), "{edges:?}");

    // Each query, until Prometheus has scraped enough of the series it reads (a rate needs two
    // samples of every target it sums).
    type Series = Vec<(serde_json::Map<String, serde_json::Value>, f64)>;
    let until = |what: &str, promql: &str, ok: &dyn Fn(&Series) -> bool| -> Series {
        eventually(what, Duration::from_secs(30), || Some(query(prometheus, promql)).filter(|r| ok(r)))
    };
    until(
        "the service dashboard's requests by canonical service",
        "sum(rate(istio_requests_total{reporter=\"destination\"}[1m])) by (destination_canonical_service, response_code)",
        &|r| has_series(r, &[("destination_canonical_service", "reviews"), ("response_code", "200")]),
    );
    until(
        "p99 by destination workload",
        "histogram_quantile(0.99, sum(rate(istio_request_duration_milliseconds_bucket{reporter=\"source\"}[1m])) \
         by (le, destination_workload, destination_workload_namespace))",
        &|r| {
            r.iter().any(|(l, v)| {
                l.get("destination_workload").and_then(|w| w.as_str()) == Some("reviews-v1")
                    && v.is_finite()
                    && *v > 0.0
            })
        },
    );
    until(
        "the service dashboard's callers",
        "sum(irate(istio_requests_total{reporter=\"destination\",destination_service=~\"reviews.default.svc.cluster.local\"}[1m])) \
         by (source_workload, source_workload_namespace)",
        &|r| has_series(r, &[("source_workload", "productpage-v1"), ("source_workload_namespace", "default")]),
    );
    until(
        "the workload dashboard's inbound workloads",
        "sum(irate(istio_requests_total{reporter=\"destination\",destination_workload_namespace=\"default\",\
         destination_workload=\"reviews-v1\"}[1m])) by (source_workload, source_workload_namespace)",
        &|r| has_series(r, &[("source_workload", "productpage-v1"), ("source_workload_namespace", "default")]),
    );
    until(
        "the mTLS share by service",
        "sum(rate(istio_requests_total{reporter=\"destination\",connection_security_policy=\"mutual_tls\"}[1m])) \
         by (destination_canonical_service)",
        &|r| has_series(r, &[("destination_canonical_service", "details")]),
    );
    until(
        "the mesh dashboard's request rate",
        "round(sum(irate(istio_requests_total{reporter=\"source\"}[1m])), 0.001)",
        &|r| r.first().is_some_and(|(_, v)| *v > 0.0),
    );
    until("every proxy's build", "count(istio_build{component=\"proxy\"})", &|r| {
        r.first().is_some_and(|(_, v)| *v == 6.0)
    });

    // TCP bytes by canonical service on both sides (Istio's TCP panels, Kiali's TCP edges).
    let tcp = sleep.tcp[0];
    until(
        "TCP bytes between canonical services",
        "sum(rate(istio_tcp_sent_bytes_total{reporter=\"destination\"}[1m])) \
         by (source_canonical_service, destination_canonical_service)",
        &|r| {
            for i in 0..5 {
                assert_eq!(crate::traffic::tcp_say(tcp, &format!("hello {i}")), format!("one hello {i}"));
            }
            has_series(r, &[("source_canonical_service", "sleep"), ("destination_canonical_service", "tcp-echo")])
        },
    );
    until(
        "TCP connections from the caller's side",
        "sum(rate(istio_tcp_connections_opened_total{reporter=\"source\"}[1m])) by (source_workload, destination_workload)",
        &|r| has_series(r, &[("source_workload", "sleep"), ("destination_workload", "tcp-echo-v1")]),
    );

    // Traffic through the bookinfo gateway is reported as the Service it was routed to, on
    // both sides, whatever the Host (labels never come from a request's bytes).
    let gateway = gw.gateway[0];
    let through_gateway = |r: &Series, reporter_side: &[(&str, &str)]| {
        let _ = get(gateway, "shop.example.com", "/productpage", false, &[]);
        has_series(r, reporter_side)
    };
    until(
        "the gateway's requests by routed service",
        "sum(rate(istio_requests_total{reporter=\"source\",source_workload=\"istio-ingressgateway\"}[1m])) \
         by (destination_service, destination_canonical_service, response_code)",
        &|r| {
            through_gateway(
                r,
                &[
                    ("destination_service", "productpage.default.svc.cluster.local"),
                    ("destination_canonical_service", "productpage"),
                    ("response_code", "200"),
                ],
            )
        },
    );
    until(
        "productpage's requests from the gateway",
        "sum(rate(istio_requests_total{reporter=\"destination\",destination_workload=\"productpage-v1\"}[1m])) \
         by (source_workload, source_canonical_service, destination_service)",
        &|r| {
            through_gateway(
                r,
                &[
                    ("source_workload", "istio-ingressgateway"),
                    ("source_canonical_service", "istio-ingressgateway"),
                    ("destination_service", "productpage.default.svc.cluster.local"),
                ],
            )
        },
    );
    assert!(query(prometheus, "istio_requests_total{destination_service=~\".*example.com.*\"}").is_empty());

    // Istio's control-plane dashboard.
    let tag = env!("CARGO_PKG_VERSION");
    until("meshd's version", "sum by (tag) (istio_build{component=\"pilot\"})", &|r| has_series(r, &[("tag", tag)]));
    until("connected proxies", "sum (pilot_xds)", &|r| r.first().is_some_and(|(_, v)| *v == 6.0));
    until("pushes by type", "sum by (type) (irate(pilot_xds_pushes[1m]))", &|r| {
        ["cds", "eds", "lds", "rds"].iter().all(|t| has_series(r, &[("type", t)]))
    });
    until("push time", "sum(rate(pilot_xds_push_time_bucket{}[1m])) by (le)", &|r| !r.is_empty());
    until("registry events", "sum by (type,event) (rate(pilot_k8s_reg_events[1m]))", &|r| {
        has_series(r, &[("type", "Pods"), ("event", "add")])
    });
    until("config events", "sum by (type,event) (rate(pilot_k8s_cfg_events[1m]))", &|r| {
        ["Service", "Gateway", "VirtualService"].iter().all(|t| has_series(r, &[("type", t), ("event", "add")]))
    });
    until("push triggers", "sum by (type) (rate(pilot_push_triggers[1m]))", &|r| {
        has_series(r, &[("type", "config")]) && has_series(r, &[("type", "endpoint")])
    });
    until("validation", "sum (rate(galley_validation_passed[1m]))", &|r| !r.is_empty());
    until(
        "convergence",
        "histogram_quantile(0.99, sum(rate(pilot_proxy_convergence_time_bucket[1m])) by (le))",
        &|r| !r.is_empty(),
    );

    let (ok, failed) = to_reviews.finish();
    let (ok2, failed2) = to_details.finish();
    assert_eq!((failed, failed2), (0, 0), "{ok} and {ok2} succeeded");
}

/// The first of `names` on PATH.
fn first_on_path(names: &[&'static str]) -> Option<&'static str> {
    names.iter().copied().find(|n| have(n))
}

#[test]
fn the_dashboard_draws_the_bookinfo_graph_in_a_real_headless_browser() {
    let chromium = first_on_path(&["chromium", "chromium-browser", "google-chrome"]);
    if !corpus("the_dashboard_draws_the_bookinfo_graph_in_a_real_headless_browser")
        || !prerequisite("a headless Chromium (apt install chromium)", chromium.is_some())
    {
        return;
    }
    let chromium = chromium.unwrap_or("chromium");
    let mut mesh = Mesh::new();
    mesh.install();
    mesh.ok(&["apply", "-f", &shared("bookinfo/platform/kube/bookinfo.yaml")]);
    for (workload, app_label) in [("reviews-v1", "reviews"), ("details-v1", "details")] {
        mesh.proxy(&[
            "--workload",
            workload,
            "--labels",
            &format!("app={app_label},version=v1"),
            "--inbound",
            &format!("9080={}", app(if app_label == "reviews" { "reviews" } else { "details" })),
        ]);
    }
    let pp = mesh.proxy(&["--workload", "productpage-v1", "--labels", "app=productpage,version=v1"]);
    mesh.wait_synced(3);
    let out = pp.outbound.expect("outbound");
    let to_reviews = Load::start(out, "reviews:9080", |code, _| code == 200);
    let to_details = Load::start(out, "details:9080", |code, _| code == 200);

    // `mesh dashboard` on a free port, as a user runs it.
    let mut child = mesh
        .cmd()
        .args(["dashboard", "--listen", "127.0.0.1:0", "--interval", "500ms"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("mesh dashboard");
    let stdout = child.stdout.take().expect("stdout");
    mesh.keep(child);
    let mut first = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut first).expect("dashboard's first line");
    let url = first.split_whitespace().find(|w| w.starts_with("http://")).expect("the dashboard's URL").to_string();
    let addr: SocketAddr =
        url.trim_start_matches("http://").trim_end_matches('/').parse().expect("the dashboard's address");
    eventually("both edges in the dashboard's figures", Duration::from_secs(20), || {
        let g: serde_json::Value = serde_json::from_str(&get(addr, "dashboard", "/api/graph", false, &[]).1).ok()?;
        (g["edges"].as_array()?.len() >= 2).then_some(())
    });
    assert_eq!(get(addr, "dashboard", "/nothing-here", false, &[]).0, 404);
    // What an attacker sends gets an answer, or a closed connection, and changes nothing.
    assert_eq!(
        raw(addr, b"POST /api/graph HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").0,
        405
    );
    assert!(matches!(raw(addr, b"\x16\x03\x01\x00\x05garbage\r\n\r\n").0, 0 | 400), "not HTTP: refused");
    let path = format!("/{}", "a".repeat(70_000));
    assert!(matches!(raw(addr, format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes()).0, 0 | 400 | 414 | 431));
    assert_eq!(get(addr, "dashboard", "/", false, &[]).0, 200, "still serving");

    // A real browser loads the page, runs its script against the live figures, and draws.
    let shot = mesh.home.path().join("dashboard.png");
    let profile = mesh.home.path().join("chromium");
    let browser = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(["--window-size=1280,720", "--virtual-time-budget=4000", "--dump-dom"])
        .arg(&url)
        .stdin(Stdio::null())
        .output()
        .expect("run chromium");
    let dom = String::from_utf8_lossy(&browser.stdout);
    let log = String::from_utf8_lossy(&browser.stderr);
    for node in ["productpage.default", "reviews.default", "details.default"] {
        assert!(dom.contains(&format!("data-id=\"{node}\"")), "node {node} drawn:\n{dom}\n{log}");
    }
    for target in ["reviews.default", "details.default"] {
        let edge = format!("data-source=\"productpage.default\" data-target=\"{target}\"");
        assert!(dom.contains(&edge), "edge to {target} drawn:\n{dom}");
    }
    assert!(dom.contains("rps ·") && dom.contains("mTLS 100.0%"), "edge figures:\n{dom}");
    assert!(dom.contains("3 services, 2 edges"), "status line:\n{dom}");
    let console: Vec<&str> = log.lines().filter(|l| l.contains(":CONSOLE(")).collect();
    assert!(console.is_empty(), "console messages: {console:#?}");

    // The per-service view of a service named in the URL: its callers and workloads.
    let view = Command::new(chromium)
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run"])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(["--window-size=1280,720", "--virtual-time-budget=4000", "--dump-dom"])
        .arg(format!("{url}#reviews.default"))
        .stdin(Stdio::null())
        .output()
        .expect("run chromium");
    let dom = String::from_utf8_lossy(&view.stdout);
    assert!(dom.contains("<h2>reviews.default</h2>") && dom.contains("Callers"), "{dom}");
    assert!(dom.contains("<td>productpage.default</td>"), "productpage among reviews' callers:\n{dom}");
    assert!(dom.contains("<td>reviews-v1</td>"), "reviews' workload:\n{dom}");

    // And renders it to pixels.
    let shot_run = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(["--window-size=1280,720", "--virtual-time-budget=4000"])
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!("{url}#reviews.default"))
        .stdin(Stdio::null())
        .output()
        .expect("run chromium for a screenshot");
    let png = std::fs::read(&shot).unwrap_or_default();
    assert!(png.starts_with(b"\x89PNG") && png.len() > 10_000, "{}", String::from_utf8_lossy(&shot_run.stderr));
    if let Some(keep) = std::env::var_os("MESH_DASHBOARD_SCREENSHOT") {
        std::fs::write(keep, &png).expect("write the screenshot");
    }
    let (_, failed) = to_reviews.finish();
    let (_, failed2) = to_details.finish();
    assert_eq!((failed, failed2), (0, 0));
}
