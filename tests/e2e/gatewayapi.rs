//! The Kubernetes Gateway API with Istio's own sample files, applied unchanged: a Gateway of
//! class `istio` served by a gateway proxy, HTTPRoutes bound to it, routes attached to a
//! Service (GAMMA) splitting mesh traffic, and the status conditions Istio would write.

use crate::harness::{Mesh, app, apply, corpus, get, shared};

fn workload(mesh: &mut Mesh, name: &str, app_label: &str, version: &str, port: u16, addr: std::net::SocketAddr) {
    mesh.proxy(&[
        "--workload",
        name,
        "--labels",
        &format!("app={app_label},version={version}"),
        "--inbound",
        &format!("{port}={addr}"),
    ]);
}

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
