//! The Kubernetes Gateway API with Istio's own sample files, applied unchanged: a Gateway of
//! class `istio` served by a gateway proxy, HTTPRoutes bound to it, routes attached to a
//! Service (GAMMA) splitting mesh traffic, and the status conditions Istio would write.

use crate::harness::{Mesh, app, apply, corpus, get, shared};
use crate::traffic::workload;

#[test]
fn bookinfo_gateway_api_files_serve_and_split_as_istio_documents() {
    if !corpus("bookinfo_gateway_api_files_serve_and_split_as_istio_documents") {
        return;
    }
    let mut mesh = Mesh::new();
    mesh.install();
    mesh.ok(&["apply", "-f", &shared("bookinfo/platform/kube/bookinfo.yaml")]);
    mesh.ok(&["apply", "-f", &shared("bookinfo/platform/kube/bookinfo-versions.yaml")]);
    workload(&mut mesh, "productpage-v1", "productpage", "v1", 9080, app("productpage-v1"));
    workload(&mut mesh, "reviews-v1", "reviews", "v1", 9080, app("reviews-v1"));
    workload(&mut mesh, "reviews-v2", "reviews", "v2", 9080, app("reviews-v2"));
    let client = mesh.proxy(&["--workload", "ratings-v1", "--labels", "app=ratings,version=v1"]);
    let out = client.outbound.expect("outbound");
    // The gateway proxy for Gateway `bookinfo-gateway`, as Istio's automated deployment labels it.
    let gw = mesh.proxy(&[
        "--workload",
        "bookinfo-gateway-istio",
        "--labels",
        "gateway.networking.k8s.io/gateway-name=bookinfo-gateway",
        "--no-outbound",
        "--gateway-port",
        "80=127.0.0.1:0",
    ]);
    let gateway = gw.gateway[0];
    let applied = mesh.ok(&["apply", "-f", &shared("bookinfo/gateway-api/bookinfo-gateway.yaml")]);
    assert!(!applied.stderr.contains("not supported"), "{}", applied.stderr);
    mesh.wait_synced(5);
    crate::harness::eventually("the bookinfo gateway serves /productpage", std::time::Duration::from_secs(20), || {
        (get(gateway, "bookinfo.example.com", "/productpage", false, &[]) == (200, "productpage-v1\n".to_string()))
            .then_some(())
    });
    // PathPrefix /api/v1/products is element-wise; paths the route does not list are 404.
    assert_eq!(get(gateway, "x", "/api/v1/products/1", false, &[]).0, 200);
    assert_eq!(get(gateway, "x", "/api/v1/productsX", false, &[]).0, 404);
    assert_eq!(get(gateway, "x", "/admin", false, &[]).0, 404);

    // GAMMA: route-reviews-90-10 attaches to the reviews Service and splits mesh traffic.
    mesh.ok(&["apply", "-f", &shared("bookinfo/gateway-api/route-reviews-90-10.yaml")]);
    mesh.wait_synced(5);
    crate::harness::eventually("reviews-v2 reached through the split", std::time::Duration::from_secs(20), || {
        (0..50).any(|_| get(out, "reviews:9080", "/", false, &[]).1 == "reviews-v2\n").then_some(())
    });
    let (mut one, mut two) = (0, 0);
    for _ in 0..300 {
        match get(out, "reviews:9080", "/", false, &[]).1.as_str() {
            "reviews-v1\n" => one += 1,
            "reviews-v2\n" => two += 1,
            other => panic!("unexpected answer {other:?}"),
        }
    }
    assert!((10..=55).contains(&two) && one + two == 300, "about 90/10: v1 {one}, v2 {two}");

    // Status, as `kubectl get` shows it: the Gateway programmed, the routes accepted.
    let gws = mesh.ok(&["get", "gateways.gateway.networking.k8s.io"]).stdout;
    assert!(gws.contains("bookinfo-gateway") && gws.contains("istio") && gws.contains("True"), "{gws}");
    let routes = mesh.ok(&["get", "httproutes"]).stdout;
    assert!(routes.contains("bookinfo") && routes.contains("Service/reviews") && !routes.contains("False"), "{routes}");
}

/// Bad references get Istio's conditions and change nothing else: a backend that does not
/// exist answers 500, a backend in another namespace needs a ReferenceGrant there.
#[test]
fn gateway_api_references_are_checked_with_istios_conditions() {
    let mut mesh = Mesh::new();
    mesh.install();
    let yaml = r#"
apiVersion: v1
kind: Service
metadata: {name: echo, namespace: other}
spec:
  selector: {app: echo}
  ports: [{name: http, port: 80}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: edge}
spec:
  gatewayClassName: istio
  listeners:
  - {name: http, port: 80, protocol: HTTP, allowedRoutes: {namespaces: {from: Same}}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: missing}
spec:
  parentRefs: [{name: edge}]
  hostnames: [missing.example.com]
  rules:
  - backendRefs: [{name: nowhere, port: 80}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: across}
spec:
  parentRefs: [{name: edge}]
  hostnames: [across.example.com]
  rules:
  - backendRefs: [{name: echo, namespace: other, port: 80}]
"#;
    apply(&mesh, "routes.yaml", yaml);
    mesh.proxy(&[
        "--workload",
        "echo",
        "-n",
        "other",
        "--labels",
        "app=echo",
        "--inbound",
        &format!("80={}", app("echo")),
    ]);
    let gw = mesh.proxy(&[
        "--workload",
        "edge-istio",
        "--labels",
        "gateway.networking.k8s.io/gateway-name=edge",
        "--no-outbound",
        "--gateway-port",
        "80=127.0.0.1:0",
    ]);
    let gateway = gw.gateway[0];
    mesh.wait_synced(2);
    let routes = mesh.ok(&["get", "httproutes", "-o", "json"]).stdout;
    let v: serde_json::Value = serde_json::from_str(&routes).expect("json");
    let reason = |name: &str, kind: &str| -> String {
        let items = v.as_array().cloned().or_else(|| v["items"].as_array().cloned()).unwrap_or_default();
        let r = items.iter().find(|r| r["metadata"]["name"] == name).cloned().unwrap_or_default();
        let c = r["status"]["parents"][0]["conditions"].as_array().cloned().unwrap_or_default();
        let c = c.iter().find(|c| c["type"] == kind).cloned().unwrap_or_default();
        format!("{}/{}", c["status"].as_str().unwrap_or("?"), c["reason"].as_str().unwrap_or("?"))
    };
    assert_eq!(reason("missing", "ResolvedRefs"), "False/BackendNotFound", "{routes}");
    assert_eq!(reason("missing", "Accepted"), "True/Accepted", "{routes}");
    assert_eq!(reason("across", "ResolvedRefs"), "False/RefNotPermitted", "{routes}");
    crate::harness::eventually("500 for a route without a backend", std::time::Duration::from_secs(20), || {
        (get(gateway, "missing.example.com", "/", false, &[]).0 == 500).then_some(())
    });
    assert_eq!(get(gateway, "across.example.com", "/", false, &[]).0, 500, "not allowed across namespaces");
    // The ReferenceGrant in the target namespace lets it through.
    let grant = r#"
apiVersion: gateway.networking.k8s.io/v1beta1
kind: ReferenceGrant
metadata: {name: from-default, namespace: other}
spec:
  from: [{group: gateway.networking.k8s.io, kind: HTTPRoute, namespace: default}]
  to: [{group: "", kind: Service}]
"#;
    apply(&mesh, "grant.yaml", grant);
    crate::harness::eventually("the grant lets the route through", std::time::Duration::from_secs(20), || {
        (get(gateway, "across.example.com", "/", false, &[]) == (200, "echo\n".to_string())).then_some(())
    });
    // A listener that takes routes from namespaces chosen by label (locally a namespace's
    // only label is its name, as Kubernetes sets it on every namespace).
    let shared = r#"
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: edge}
spec:
  gatewayClassName: istio
  listeners:
  - name: http
    port: 80
    protocol: HTTP
    allowedRoutes:
      namespaces:
        from: Selector
        selector:
          matchExpressions: [{key: kubernetes.io/metadata.name, operator: In, values: [team-a]}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: team-a, namespace: team-a}
spec:
  parentRefs: [{name: edge, namespace: default}]
  hostnames: [a.example.com]
  rules:
  - backendRefs: [{name: echo, namespace: other, port: 80}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: team-b, namespace: team-b}
spec:
  parentRefs: [{name: edge, namespace: default}]
  hostnames: [b.example.com]
  rules:
  - backendRefs: [{name: echo, namespace: other, port: 80}]
---
apiVersion: gateway.networking.k8s.io/v1beta1
kind: ReferenceGrant
metadata: {name: from-teams, namespace: other}
spec:
  from:
  - {group: gateway.networking.k8s.io, kind: HTTPRoute, namespace: team-a}
  - {group: gateway.networking.k8s.io, kind: HTTPRoute, namespace: team-b}
  to: [{group: "", kind: Service}]
"#;
    apply(&mesh, "shared.yaml", shared);
    crate::harness::eventually("team-a's route taken by the selector", std::time::Duration::from_secs(20), || {
        (get(gateway, "a.example.com", "/", false, &[]) == (200, "echo\n".to_string())).then_some(())
    });
    assert_eq!(get(gateway, "b.example.com", "/", false, &[]).0, 404, "team-b is not selected");
    let routes = mesh.ok(&["get", "httproutes", "-A", "-o", "json"]).stdout;
    let v: serde_json::Value = serde_json::from_str(&routes).expect("json");
    let items = v.as_array().cloned().or_else(|| v["items"].as_array().cloned()).unwrap_or_default();
    let accepted = |name: &str| {
        let r = items.iter().find(|r| r["metadata"]["name"] == name).cloned().unwrap_or_default();
        let c = r["status"]["parents"][0]["conditions"].as_array().cloned().unwrap_or_default();
        let c = c.iter().find(|c| c["type"] == "Accepted").cloned().unwrap_or_default();
        format!("{}/{}", c["status"].as_str().unwrap_or("?"), c["reason"].as_str().unwrap_or("?"))
    };
    assert_eq!(accepted("team-a"), "True/Accepted", "{routes}");
    assert_eq!(accepted("team-b"), "False/NotAllowedByListeners", "{routes}");
    // Invalid documents are refused by name, nothing applied.
    let bad = "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: bad}\nspec:\n  parentRefs: [{name: edge}]\n  rules:\n  - matches: [{path: {type: Prefix, value: /x}}]\n    backendRefs: [{name: echo}]\n";
    let file = mesh.home.path().join("bad.yaml");
    std::fs::write(&file, bad).expect("write");
    let r = mesh.run(&["apply", "-f", file.to_str().expect("path")]);
    assert_ne!(r.code, 0);
    assert!(
        r.stderr.contains("spec.rules[0].matches[0].path.type")
            && r.stderr.contains("spec.rules[0].backendRefs[0].port"),
        "{}",
        r.stderr
    );
    assert!(!mesh.ok(&["get", "httproutes"]).stdout.contains("bad"));
}

/// Istio's tcp-echo Gateway API files: a TCP listener, a TCPRoute bound to it by section
/// name, then 80/20 across two Services.
#[test]
fn tcp_echo_gateway_api_files_route_and_split_tcp() {
    if !corpus("tcp_echo_gateway_api_files_route_and_split_tcp") {
        return;
    }
    use crate::traffic::{tcp_echo, tcp_say};
    let mut mesh = Mesh::new();
    mesh.install();
    mesh.ok(&["apply", "-f", &shared("samples/tcp-echo/tcp-echo-services.yaml")]);
    for (name, version, prefix) in [("tcp-echo-v1", "v1", "one"), ("tcp-echo-v2", "v2", "two")] {
        let addr = tcp_echo(prefix);
        mesh.proxy(&[
            "--workload",
            name,
            "--labels",
            &format!("app=tcp-echo,version={version}"),
            "--inbound",
            &format!("9000={addr}"),
        ]);
    }
    let gw = mesh.proxy(&[
        "--workload",
        "tcp-echo-gateway-istio",
        "--labels",
        "gateway.networking.k8s.io/gateway-name=tcp-echo-gateway",
        "--no-outbound",
        "--gateway-port",
        "31400=127.0.0.1:0",
    ]);
    let gateway = gw.gateway[0];
    mesh.ok(&["apply", "-f", &shared("samples/tcp-echo/gateway-api/tcp-echo-all-v1.yaml")]);
    mesh.wait_synced(3);
    crate::harness::eventually("tcp-echo v1 through the Gateway", std::time::Duration::from_secs(20), || {
        (tcp_say(gateway, "hello") == "one hello").then_some(())
    });
    mesh.ok(&["apply", "-f", &shared("samples/tcp-echo/gateway-api/tcp-echo-20-v2.yaml")]);
    crate::harness::eventually("v2 in the split", std::time::Duration::from_secs(20), || {
        (0..50).any(|i| tcp_say(gateway, &format!("x{i}")).starts_with("two ")).then_some(())
    });
    let two = (0..200).filter(|i| tcp_say(gateway, &format!("hello {i}")).starts_with("two ")).count();
    assert!((20..=65).contains(&two), "about 80/20: v2 {two} of 200");
}

/// Istio's helloworld Gateway API files: the gateway serves /hello, then the versions' Services
/// and the weighted route split it 90/10.
#[test]
fn helloworld_gateway_api_files_split_90_10() {
    if !corpus("helloworld_gateway_api_files_split_90_10") {
        return;
    }
    let mut mesh = Mesh::new();
    mesh.install();
    mesh.ok(&["apply", "-f", &shared("samples/helloworld/helloworld.yaml")]);
    workload(&mut mesh, "helloworld-v1", "helloworld", "v1", 5000, app("hello-v1"));
    workload(&mut mesh, "helloworld-v2", "helloworld", "v2", 5000, app("hello-v2"));
    let gw = mesh.proxy(&[
        "--workload",
        "helloworld-gateway-istio",
        "--labels",
        "gateway.networking.k8s.io/gateway-name=helloworld-gateway",
        "--no-outbound",
        "--gateway-port",
        "80=127.0.0.1:0",
    ]);
    let gateway = gw.gateway[0];
    mesh.ok(&["apply", "-f", &shared("samples/helloworld/gateway-api/helloworld-gateway.yaml")]);
    mesh.wait_synced(3);
    crate::harness::eventually("/hello through the Gateway", std::time::Duration::from_secs(20), || {
        (get(gateway, "x", "/hello", false, &[]).0 == 200).then_some(())
    });
    assert_eq!(get(gateway, "x", "/hello/more", false, &[]).0, 404, "Exact /hello only");
    // Istio's steps: the per-version Services, then the weighted route.
    mesh.ok(&["apply", "-f", &shared("samples/helloworld/gateway-api/helloworld-versions.yaml")]);
    mesh.ok(&["apply", "-f", &shared("samples/helloworld/gateway-api/helloworld-route.yaml")]);
    mesh.wait_synced(3);
    crate::harness::eventually("the versioned route in force", std::time::Duration::from_secs(20), || {
        (0..40).any(|_| get(gateway, "x", "/hello", false, &[]).1 == "hello-v2\n").then_some(())
    });
    let two = (0..300).filter(|_| get(gateway, "x", "/hello", false, &[]).1 == "hello-v2\n").count();
    assert!((10..=55).contains(&two), "about 90/10: v2 {two} of 300");
}

/// HTTPRoute filters as the Gateway API defines them, a GRPCRoute method match, and a
/// TLSRoute passed through by SNI, seen by real clients (curl over HTTP/1.1 and HTTP/2) and a
/// recording backend.
#[test]
fn gateway_api_filters_grpc_and_tls_routes_behave_as_specified() {
    if !crate::harness::prerequisite("curl", crate::harness::have("curl")) {
        return;
    }
    let mut mesh = Mesh::new();
    mesh.install();
    let (main_addr, main_seen) = crate::harness::recording_app();
    let (mirror_addr, mirror_seen) = crate::harness::recording_app();
    let (grpc_addr, grpc_seen) = crate::harness::recording_app();
    // Every other request fails with a 500 (which Istio's default retries leave alone).
    let (flaky_addr, _) = crate::harness::scripted_app(|n| {
        if n % 2 == 0 { (500, "flaky", std::time::Duration::ZERO) } else { (200, "steady", std::time::Duration::ZERO) }
    });
    let yaml = r#"
apiVersion: v1
kind: Service
metadata: {name: flaky}
spec:
  selector: {app: flaky}
  ports: [{name: http, port: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: main}
spec:
  selector: {app: main}
  ports: [{name: http, port: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: shadow}
spec:
  selector: {app: shadow}
  ports: [{name: http, port: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: greeter}
spec:
  selector: {app: greeter}
  ports: [{name: http, port: 8080}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: edge}
spec:
  gatewayClassName: istio
  listeners:
  - {name: http, port: 80, protocol: HTTP}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: filters}
spec:
  parentRefs: [{name: edge}]
  hostnames: [api.example.com]
  rules:
  - matches: [{path: {type: PathPrefix, value: /headers}}]
    filters:
    - type: RequestHeaderModifier
      requestHeaderModifier:
        set: [{name: x-set, value: "yes"}]
        remove: [x-drop]
    - type: ResponseHeaderModifier
      responseHeaderModifier:
        add: [{name: x-from-route, value: filters}]
    backendRefs: [{name: main, port: 8080}]
  - matches: [{path: {type: PathPrefix, value: /old}}]
    filters:
    - type: RequestRedirect
      requestRedirect: {scheme: https, hostname: new.example.com, statusCode: 301}
  - matches: [{path: {type: PathPrefix, value: /moved}}]
    filters:
    - type: RequestRedirect
      requestRedirect: {path: {type: ReplacePrefixMatch, replacePrefixMatch: /new-home}}
  - matches: [{path: {type: PathPrefix, value: /api/v1}}]
    filters:
    - type: URLRewrite
      urlRewrite: {path: {type: ReplacePrefixMatch, replacePrefixMatch: /v2}}
    backendRefs: [{name: main, port: 8080}]
  - matches: [{path: {type: Exact, value: /mirrored}, method: POST}]
    filters:
    - type: RequestMirror
      requestMirror: {backendRef: {name: shadow, port: 8080}}
    backendRefs: [{name: main, port: 8080}]
  - matches: [{headers: [{name: x-version, value: canary}]}]
    backendRefs: [{name: main, port: 8080, weight: 0}]
  - matches: [{path: {type: PathPrefix, value: /retried}}]
    retry: {codes: [500], attempts: 1, backoff: 10ms}
    backendRefs: [{name: flaky, port: 8080}]
  - matches: [{path: {type: PathPrefix, value: /flaky}}]
    backendRefs: [{name: flaky, port: 8080}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: {name: greeter}
spec:
  parentRefs: [{name: edge}]
  hostnames: [grpc.example.com]
  rules:
  - matches: [{method: {service: helloworld.Greeter, method: SayHello}}]
    backendRefs: [{name: greeter, port: 8080}]
"#;
    apply(&mesh, "routes.yaml", yaml);
    for (name, app_label, addr) in [
        ("main-1", "main", main_addr),
        ("shadow-1", "shadow", mirror_addr),
        ("greeter-1", "greeter", grpc_addr),
        ("flaky-1", "flaky", flaky_addr),
    ] {
        mesh.proxy(&[
            "--workload",
            name,
            "--labels",
            &format!("app={app_label}"),
            "--inbound",
            &format!("8080={addr}"),
        ]);
    }
    let gw = mesh.proxy(&[
        "--workload",
        "edge-istio",
        "--labels",
        "gateway.networking.k8s.io/gateway-name=edge",
        "--no-outbound",
        "--gateway-port",
        "80=127.0.0.1:0",
    ]);
    let gateway = gw.gateway[0];
    mesh.wait_synced(5);
    let curl = |args: &[&str]| -> String {
        let o = std::process::Command::new("curl")
            .args(["-sS", "--max-time", "10", "-D", "-", "-o", "/dev/null"])
            .args(args)
            .output()
            .expect("curl");
        String::from_utf8_lossy(&o.stdout).to_string()
    };
    let url = |host: &str, path: &str| format!("http://{host}:{}{path}", gateway.port());
    let resolve = |host: &str| format!("{host}:{}:127.0.0.1", gateway.port());
    let ra = resolve("api.example.com");
    crate::harness::eventually("the routes served", std::time::Duration::from_secs(20), || {
        curl(&["--resolve", &ra, &url("api.example.com", "/headers")]).starts_with("HTTP/1.1 200").then_some(())
    });
    // Header modifiers: set and remove on the request, add on the response.
    let head =
        curl(&["--resolve", &ra, "-H", "x-drop: please", "-H", "x-set: no", &url("api.example.com", "/headers/x")]);
    assert!(head.to_ascii_lowercase().contains("x-from-route: filters"), "{head}");
    let last = |seen: &crate::harness::Recorded| {
        seen.lock().unwrap_or_else(|e| e.into_inner()).last().cloned().unwrap_or_default().0.to_ascii_lowercase()
    };
    let req = last(&main_seen);
    assert!(req.contains("x-set: yes") && !req.contains("x-set: no") && !req.contains("x-drop"), "{req}");
    // Redirect: scheme and host replaced, path kept.
    let head = curl(&["--resolve", &ra, &url("api.example.com", "/old/page?q=1")]);
    assert!(head.starts_with("HTTP/1.1 301"), "{head}");
    let location = crate::harness::header_of(&head.replace("\r\n", "\n"), "location").unwrap_or_default();
    assert_eq!(location, "https://new.example.com/old/page?q=1", "{head}");
    // Redirect ReplacePrefixMatch: the matched prefix only, the rest and the query kept (302,
    // the Gateway API's default).
    for (from, to) in [("/moved/a/b?q=2", "/new-home/a/b?q=2"), ("/moved", "/new-home")] {
        let head = curl(&["--resolve", &ra, &url("api.example.com", from)]);
        assert!(head.starts_with("HTTP/1.1 302"), "{head}");
        let location = crate::harness::header_of(&head.replace("\r\n", "\n"), "location").unwrap_or_default();
        assert_eq!(location, format!("http://api.example.com:{}{to}", gateway.port()), "{from}: {head}");
    }
    // URLRewrite ReplacePrefixMatch: /api/v1/users -> /v2/users.
    curl(&["--resolve", &ra, &url("api.example.com", "/api/v1/users?x=1")]);
    let req = last(&main_seen);
    assert!(req.starts_with("get /v2/users?x=1 http/1.1"), "{req}");
    // RequestMirror: the shadow gets a copy of the POST, the caller the main answer.
    let head = curl(&["--resolve", &ra, "-X", "POST", "-d", "copy me", &url("api.example.com", "/mirrored")]);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    crate::harness::eventually("the mirrored copy", std::time::Duration::from_secs(10), || {
        mirror_seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .any(|(h, b)| h.starts_with("POST /mirrored") && b == b"copy me")
            .then_some(())
    });
    // retry: a 500 is tried again (each caller sees 200); without it, half the calls fail.
    let codes = |path: &str| -> Vec<u16> {
        (0..10)
            .map(|_| curl(&["--resolve", &ra, &url("api.example.com", path)]).get(9..12).and_then(|c| c.parse().ok()))
            .map(|c| c.unwrap_or(0))
            .collect()
    };
    let retried = codes("/retried");
    assert!(retried.iter().all(|c| *c == 200), "{retried:?}");
    assert_eq!(codes("/flaky").iter().filter(|c| **c == 500).count(), 5, "no retry without the rule's");
    // Only weight-0 backends: 500, as the spec says.
    let head = curl(&["--resolve", &ra, "-H", "x-version: canary", &url("api.example.com", "/anything")]);
    assert!(head.starts_with("HTTP/1.1 500"), "{head}");
    // GRPCRoute: the method match over HTTP/2 (curl's gRPC-shaped request).
    let rg = resolve("grpc.example.com");
    let head = curl(&[
        "--http2-prior-knowledge",
        "--resolve",
        &rg,
        "-X",
        "POST",
        "-H",
        "content-type: application/grpc",
        &url("grpc.example.com", "/helloworld.Greeter/SayHello"),
    ]);
    assert!(head.starts_with("HTTP/2 200"), "{head}");
    assert!(last(&grpc_seen).starts_with("post /helloworld.greeter/sayhello"), "{:?}", last(&grpc_seen));
    let head = curl(&[
        "--http2-prior-knowledge",
        "--resolve",
        &rg,
        "-X",
        "POST",
        &url("grpc.example.com", "/helloworld.Greeter/SayBye"),
    ]);
    assert!(head.starts_with("HTTP/2 404"), "another method is not routed: {head}");

    // TLSRoute: a Passthrough listener routes by SNI to a real TLS server (Python/OpenSSL),
    // whose certificate the client verifies end to end.
    if !crate::harness::have("openssl") || !crate::harness::have("python3") {
        return;
    }
    let pki = crate::edge::Pki::new(&mesh);
    pki.ca("example.com");
    pki.leaf("example.com", "secure", "secure.example.com");
    let server = crate::edge::tls_server(&mut mesh, &pki, "secure", None);
    let tls = r#"
apiVersion: v1
kind: Service
metadata: {name: secure}
spec:
  selector: {app: secure}
  ports: [{name: tls, port: 443}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: edge}
spec:
  gatewayClassName: istio
  listeners:
  - {name: http, port: 80, protocol: HTTP}
  - {name: tls, port: 443, protocol: TLS, tls: {mode: Passthrough}}
---
apiVersion: gateway.networking.k8s.io/v1alpha2
kind: TLSRoute
metadata: {name: secure}
spec:
  parentRefs: [{name: edge, sectionName: tls}]
  hostnames: [secure.example.com]
  rules:
  - backendRefs: [{name: secure, port: 443}]
"#;
    apply(&mesh, "tls.yaml", tls);
    mesh.proxy(&["--workload", "secure-1", "--labels", "app=secure", "--inbound", &format!("443={server}")]);
    let gw2 = mesh.proxy(&[
        "--workload",
        "edge-istio-2",
        "--labels",
        "gateway.networking.k8s.io/gateway-name=edge",
        "--no-outbound",
        "--gateway-port",
        "443=127.0.0.1:0",
    ]);
    let tls_port = gw2.gateway[0].port();
    let ca = pki.path("example.com.crt");
    crate::harness::eventually("the TLS server through the TLSRoute", std::time::Duration::from_secs(20), || {
        let o = std::process::Command::new("curl")
            .args(["-sS", "--max-time", "10", "--cacert", &ca, "--resolve"])
            .arg(format!("secure.example.com:{tls_port}:127.0.0.1"))
            .arg(format!("https://secure.example.com:{tls_port}/"))
            .output()
            .ok()?;
        String::from_utf8_lossy(&o.stdout).starts_with("secure over TLS").then_some(())
    });
}
