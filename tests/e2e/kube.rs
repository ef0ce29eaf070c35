//! The kube platform's commands against a mock Kubernetes API server in the test (no real API
//! server can run on this machine): it stores what is server-side applied (a dry run stores
//! nothing), lists what it stores, answers gets and deletes, the version, and access reviews,
//! and reports a Deployment ready once applied.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Frame;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};

use crate::harness::*;

#[derive(Default)]
struct Cluster {
    /// Object path (without query) -> object.
    objects: BTreeMap<String, Value>,
    /// (method, path, query, content type) of every request.
    log: Vec<(String, String, String, String)>,
    /// Refuse server-side apply of ClusterRoles with 403.
    deny_cluster_roles: bool,
    /// Collections that can be listed and watched: list path -> items.
    lists: BTreeMap<String, Vec<Value>>,
    /// Open watches: list path -> event sink.
    watches: Vec<(String, tokio::sync::mpsc::UnboundedSender<Bytes>)>,
    /// Service-account tokens the TokenReview API accepts: token -> (username, pod name).
    tokens: BTreeMap<String, (String, String)>,
    /// Collections (plurals) the cluster does not serve (their CRD is not installed): 404.
    unserved: Vec<String>,
    /// Pods' logs: pod path -> text.
    logs: BTreeMap<String, String>,
    /// Port-forward targets: (namespace, pod, port) -> where that port of the pod really is.
    forwards: BTreeMap<(String, String, u16), std::net::SocketAddr>,
    resource_version: u64,
}

impl Cluster {
    /// Change an item of a collection and tell its watchers (`ADDED`, `MODIFIED`, `DELETED`).
    fn event(&mut self, list: &str, kind: &str, mut object: Value) {
        self.resource_version += 1;
        object["metadata"]["resourceVersion"] = json!(self.resource_version.to_string());
        let items = self.lists.entry(list.to_string()).or_default();
        items.retain(|o| o["metadata"]["name"] != object["metadata"]["name"]);
        if kind != "DELETED" {
            items.push(object.clone());
        }
        let line = Bytes::from(format!("{}\n", json!({"type": kind, "object": object})));
        self.watches.retain(|(path, tx)| path != list || tx.send(line.clone()).is_ok());
    }
}

/// A watch response body: the events sent to it, for as long as the client listens.
struct WatchBody(tokio::sync::mpsc::UnboundedReceiver<Bytes>);

impl hyper::body::Body for WatchBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0.poll_recv(cx).map(|b| b.map(|b| Ok(Frame::data(b))))
    }
}

fn status(code: u16, reason: &str, message: &str) -> (u16, Value) {
    (
        code,
        json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": message, "reason": reason, "code": code}),
    )
}

fn answer(cluster: &Mutex<Cluster>, method: &str, path: &str, query: &str, ctype: &str, body: &[u8]) -> (u16, Value) {
    let mut c = cluster.lock().unwrap_or_else(|e| e.into_inner());
    c.log.push((method.into(), path.into(), query.into(), ctype.into()));
    match (method, path) {
        ("GET", "/version") => (
            200,
            json!({"major": "1", "minor": "30", "gitVersion": "v1.30.2", "gitCommit": "x", "gitTreeState": "clean",
                   "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1.22", "compiler": "gc", "platform": "linux/amd64"}),
        ),
        ("GET", p) if c.lists.contains_key(p) => {
            let items = c.lists.get(p).cloned().unwrap_or_default();
            (
                200,
                json!({"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": c.resource_version.to_string()}, "items": items}),
            )
        }
        ("POST", "/apis/authentication.k8s.io/v1/tokenreviews") => {
            let mut review: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
            let token = review["spec"]["token"].as_str().unwrap_or("").to_string();
            review["status"] = match c.tokens.get(&token) {
                Some((user, pod)) => json!({"authenticated": true, "audiences": ["mesh"],
                    "user": {"username": user, "extra": {"authentication.kubernetes.io/pod-name": [pod]}}}),
                None => json!({"authenticated": false, "error": "invalid bearer token"}),
            };
            (201, review)
        }
        ("POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews") => {
            let mut review: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
            review["status"] = json!({"allowed": true});
            (201, review)
        }
        // Create in a collection: 409 when the name is taken (a second meshd racing the first).
        ("POST", p) if p.contains("/namespaces/") => {
            let mut obj: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
            let Some(name) = obj["metadata"]["name"].as_str().map(String::from) else {
                return status(422, "Invalid", "metadata.name is required");
            };
            let path = format!("{p}/{name}");
            if c.objects.contains_key(&path) {
                return status(409, "AlreadyExists", &format!("{name} already exists"));
            }
            c.resource_version += 1;
            obj["metadata"]["resourceVersion"] = json!(c.resource_version.to_string());
            obj["metadata"]["uid"] = json!(format!("uid-{}", c.objects.len()));
            c.objects.insert(path, obj.clone());
            (201, obj)
        }
        // Replace: 409 when the object changed since the resourceVersion the writer read.
        ("PUT", p) => {
            let mut obj: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
            let Some(old) = c.objects.get(p) else { return status(404, "NotFound", "not found") };
            if old["metadata"]["resourceVersion"] != obj["metadata"]["resourceVersion"] {
                return status(
                    409,
                    "Conflict",
                    "the object has been modified; please apply your changes to the latest version",
                );
            }
            c.resource_version += 1;
            obj["metadata"]["resourceVersion"] = json!(c.resource_version.to_string());
            c.objects.insert(p.to_string(), obj.clone());
            (200, obj)
        }
        ("PATCH", p) => {
            if c.deny_cluster_roles && p.contains("/clusterroles/") {
                return status(
                    403,
                    "Forbidden",
                    "clusterroles.rbac.authorization.k8s.io is forbidden: User \"dev\" cannot patch",
                );
            }
            let mut obj: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
            // The resource version moves only when the object changes, as on a real server.
            let previous = c.objects.get(p).cloned();
            let same = previous.as_ref().is_some_and(|old| {
                let strip = |o: &Value| {
                    let mut o = o.clone();
                    if let Some(m) = o.get_mut("metadata").and_then(Value::as_object_mut) {
                        m.remove("uid");
                        m.remove("resourceVersion");
                    }
                    o.as_object_mut().map(|o| o.remove("status"));
                    o
                };
                strip(old) == strip(&obj)
            });
            if !same {
                c.resource_version += 1;
            }
            let rv = match &previous {
                Some(old) if same => old["metadata"]["resourceVersion"].clone(),
                _ => json!(c.resource_version.to_string()),
            };
            obj["metadata"]["uid"] = json!(format!("uid-{}", c.objects.len()));
            obj["metadata"]["resourceVersion"] = rv;
            if query.contains("dryRun=All") {
                return (200, obj);
            }
            if obj["kind"] == "Deployment" {
                let replicas = obj["spec"]["replicas"].as_u64().unwrap_or(1);
                obj["status"] = json!({"replicas": replicas, "readyReplicas": replicas, "availableReplicas": replicas});
            }
            c.objects.insert(p.to_string(), obj.clone());
            (200, obj)
        }
        ("GET", p) => match c.objects.get(p) {
            Some(o) => (200, o.clone()),
            // A collection: the stored objects of one namespace (`.../namespaces/NS/PLURAL`)
            // or of all (`.../PLURAL`).
            None => {
                let split = |path: &str| -> (Vec<String>, Vec<String>) {
                    let seg: Vec<String> = path.trim_start_matches('/').split('/').map(str::to_string).collect();
                    let base = if seg.first().is_some_and(|s| s == "api") { 2 } else { 3 };
                    let at = base.min(seg.len());
                    (seg[..at].to_vec(), seg[at..].to_vec())
                };
                let (prefix, rest) = split(p);
                let wanted: Option<(Option<String>, String)> = match rest.as_slice() {
                    [plural] => Some((None, plural.clone())),
                    [n, ns, plural] if n == "namespaces" => Some((Some(ns.clone()), plural.clone())),
                    _ => None,
                };
                let Some((ns, plural)) = wanted else { return status(404, "NotFound", "not found") };
                if c.unserved.contains(&plural) {
                    return status(404, "NotFound", "the server could not find the requested resource");
                }
                let items: Vec<Value> = c
                    .objects
                    .iter()
                    .filter(|(path, _)| {
                        let (pre, r) = split(path);
                        pre == prefix
                            && match r.as_slice() {
                                [n, o_ns, o_plural, _] if n == "namespaces" => {
                                    *o_plural == plural && ns.as_ref().is_none_or(|ns| ns == o_ns)
                                }
                                [o_plural, _] => ns.is_none() && *o_plural == plural,
                                _ => false,
                            }
                    })
                    .map(|(_, o)| o.clone())
                    .collect();
                (
                    200,
                    json!({"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": c.resource_version.to_string()}, "items": items}),
                )
            }
        },
        ("DELETE", p) => match c.objects.remove(p) {
            Some(_) => (200, json!({"kind": "Status", "apiVersion": "v1", "status": "Success", "code": 200})),
            None => status(404, "NotFound", "not found"),
        },
        _ => status(404, "NotFound", "no such API in the mock"),
    }
}

type MockResponse = hyper::Response<http_body_util::combinators::BoxBody<Bytes, Infallible>>;

/// `pods/NAME/portforward` as the API server serves it to kube clients: a WebSocket with the
/// `v4.channel.k8s.io` protocol, one data and one error channel per port (each opened with a
/// frame of the channel and the port), data frames prefixed with their channel, bridged here
/// to the real listener the test registered for that pod and port.
fn port_forward(cluster: &Mutex<Cluster>, req: hyper::Request<hyper::body::Incoming>) -> MockResponse {
    let fail = |code: u16, message: &str| {
        let (code, v) = status(code, "NotFound", message);
        let mut r = hyper::Response::new(Full::new(Bytes::from(v.to_string())).boxed());
        *r.status_mut() = hyper::StatusCode::from_u16(code).unwrap_or(hyper::StatusCode::NOT_FOUND);
        r
    };
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").replace("%2C", ",");
    let seg: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let (ns, pod) = match seg.as_slice() {
        ["api", "v1", "namespaces", ns, "pods", pod, "portforward"] => (ns.to_string(), pod.to_string()),
        _ => return fail(404, "not a pod"),
    };
    let ports: Vec<u16> = query
        .split('&')
        .filter_map(|kv| kv.strip_prefix("ports="))
        .flat_map(|p| p.split(','))
        .filter_map(|p| p.parse().ok())
        .collect();
    let mut c = cluster.lock().unwrap_or_else(|e| e.into_inner());
    c.log.push(("GET".into(), path.clone(), query.clone(), String::new()));
    let Some(&port) = ports.first() else { return fail(400, "no ports") };
    let Some(&target) = c.forwards.get(&(ns, pod, port)) else { return fail(404, "no such pod port in the mock") };
    drop(c);
    let Some(key) = req.headers().get("sec-websocket-key").map(|k| k.as_bytes().to_vec()) else {
        return fail(400, "not a WebSocket upgrade");
    };
    let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(&key);
    tokio::spawn(async move {
        use futures_util::{SinkExt, StreamExt};
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        use tokio_tungstenite::tungstenite::Message;
        let Ok(upgraded) = hyper::upgrade::on(req).await else { return };
        let ws = tokio_tungstenite::WebSocketStream::from_raw_socket(
            TokioIo::new(upgraded),
            tokio_tungstenite::tungstenite::protocol::Role::Server,
            None,
        )
        .await;
        let (mut tx, mut rx) = ws.split();
        let Ok(tcp) = tokio::net::TcpStream::connect(target).await else { return };
        let (mut tcp_rx, mut tcp_tx) = tcp.into_split();
        let [lo, hi] = port.to_le_bytes();
        for channel in [0u8, 1] {
            if tx.send(Message::binary(vec![channel, lo, hi])).await.is_err() {
                return;
            }
        }
        let to_pod = async move {
            while let Some(Ok(msg)) = rx.next().await {
                let sent = match msg {
                    Message::Binary(b) if b.first() == Some(&0) => tcp_tx.write_all(&b[1..]).await.is_ok(),
                    Message::Close(_) => false,
                    _ => true,
                };
                if !sent {
                    return;
                }
            }
        };
        let from_pod = async move {
            let mut buf = vec![0u8; 16 * 1024];
            loop {
                match tcp_rx.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        let mut frame = Vec::with_capacity(n + 1);
                        frame.push(0);
                        frame.extend_from_slice(&buf[..n]);
                        if tx.send(Message::binary(frame)).await.is_err() {
                            return;
                        }
                    }
                }
            }
            let _ = tx.send(Message::Close(None)).await;
        };
        tokio::select! {
            _ = to_pod => {}
            _ = from_pod => {}
        }
    });
    let mut r = hyper::Response::new(Empty::<Bytes>::new().boxed());
    *r.status_mut() = hyper::StatusCode::SWITCHING_PROTOCOLS;
    let h = r.headers_mut();
    h.insert(http::header::CONNECTION, http::HeaderValue::from_static("Upgrade"));
    h.insert(http::header::UPGRADE, http::HeaderValue::from_static("websocket"));
    if let Ok(v) = http::HeaderValue::from_str(&accept) {
        h.insert(http::header::SEC_WEBSOCKET_ACCEPT, v);
    }
    h.insert(http::header::SEC_WEBSOCKET_PROTOCOL, http::HeaderValue::from_static("v4.channel.k8s.io"));
    r
}

/// Start the mock on a runtime of its own; returns its address.
fn mock_cluster(rt: &tokio::runtime::Runtime, cluster: Arc<Mutex<Cluster>>) -> std::net::SocketAddr {
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).expect("bind");
    let addr = listener.local_addr().expect("addr");
    rt.spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { return };
            let cluster = cluster.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let cluster = cluster.clone();
                    async move {
                        let method = req.method().to_string();
                        let path = req.uri().path().to_string();
                        let query = req.uri().query().unwrap_or("").to_string();
                        let ctype = req
                            .headers()
                            .get(http::header::CONTENT_TYPE)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("")
                            .to_string();
                        if let Some(pod) = path.strip_suffix("/log") {
                            let c = cluster.lock().unwrap_or_else(|e| e.into_inner());
                            let text = c.logs.get(pod).cloned().unwrap_or_default();
                            let tail = query
                                .split('&')
                                .find_map(|kv| kv.strip_prefix("tailLines="))
                                .and_then(|n| n.parse::<usize>().ok());
                            let lines: Vec<&str> = text.lines().collect();
                            let from = tail.map_or(0, |n| lines.len().saturating_sub(n));
                            let body: String = lines[from..].iter().map(|l| format!("{l}\n")).collect();
                            return Ok::<_, Infallible>(hyper::Response::new(Full::new(Bytes::from(body)).boxed()));
                        }
                        if path.ends_with("/portforward") {
                            return Ok::<_, Infallible>(port_forward(&cluster, req));
                        }
                        if query.contains("watch=true") {
                            let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
                            cluster.lock().unwrap_or_else(|e| e.into_inner()).watches.push((path, tx));
                            return Ok::<_, Infallible>(hyper::Response::new(WatchBody(rx).boxed()));
                        }
                        let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                        let (code, value) = answer(&cluster, &method, &path, &query, &ctype, &body);
                        let mut resp = hyper::Response::new(Full::new(Bytes::from(value.to_string())).boxed());
                        *resp.status_mut() = hyper::StatusCode::from_u16(code).unwrap_or(hyper::StatusCode::OK);
                        resp.headers_mut()
                            .insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
                        Ok::<_, Infallible>(resp)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .with_upgrades()
                    .await;
            });
        }
    });
    addr
}

fn kubeconfig(mesh: &Mesh, server: &str) -> String {
    let file = mesh.home.path().join("kubeconfig");
    std::fs::write(
        &file,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: mock\n  cluster: {{server: \"{server}\"}}\nusers:\n- name: dev\n  user: {{token: test-token}}\ncontexts:\n- name: mock\n  context: {{cluster: mock, user: dev, namespace: default}}\ncurrent-context: mock\n"
        ),
    )
    .expect("write kubeconfig");
    file.to_str().expect("path").to_string()
}

/// A mock cluster and a mesh whose `--platform kube` commands go to it.
struct OnMock {
    _rt: tokio::runtime::Runtime,
    cluster: Arc<Mutex<Cluster>>,
    mesh: Mesh,
    kubeconfig: String,
}

impl OnMock {
    fn new() -> OnMock {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("runtime");
        let cluster = Arc::new(Mutex::new(Cluster::default()));
        let addr = mock_cluster(&rt, cluster.clone());
        let mesh = Mesh::new();
        let kubeconfig = kubeconfig(&mesh, &format!("http://{addr}"));
        OnMock { _rt: rt, cluster, mesh, kubeconfig }
    }

    fn kube(&self, args: &[&str]) -> Run {
        let mut all = vec!["--platform", "kube", "--kubeconfig", self.kubeconfig.as_str(), "--context", "mock"];
        all.extend_from_slice(args);
        self.mesh.run(&all)
    }
}

#[test]
fn kube_install_applies_waits_verifies_and_uninstalls() {
    let on = OnMock::new();
    let (cluster, mesh) = (&on.cluster, &on.mesh);
    let kube = |args: &[&str]| on.kube(args);

    let pre = kube(&["precheck"]);
    assert_eq!(pre.code, 0, "{}{}", pre.stdout, pre.stderr);
    assert!(
        pre.stdout.contains("Kubernetes 1.30 is supported")
            && pre.stdout.contains("can create customresourcedefinitions"),
        "{}",
        pre.stdout
    );
    // The Gateway API is not installed on this cluster: said, but not a problem.
    let said = format!("{}{}", pre.stdout, pre.stderr);
    assert!(
        said.contains("Gateway API CRDs are not installed") && said.contains("httproutes.gateway.networking.k8s.io"),
        "{said}"
    );

    // Without a terminal and without -y, nothing is applied.
    let refused = kube(&["install", "--profile", "minimal"]);
    assert_eq!(refused.code, FAILED, "{}", refused.stderr);
    assert!(cluster.lock().unwrap_or_else(|e| e.into_inner()).objects.is_empty());

    let r = kube(&["install", "-y", "--profile", "minimal", "--wait-timeout", "20"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("meshd is ready in istio-system"), "{}", r.stdout);
    let expected = mesh_manifest_count(mesh, "minimal");
    {
        let c = cluster.lock().unwrap_or_else(|e| e.into_inner());
        let patches: Vec<_> = c.log.iter().filter(|(m, ..)| m == "PATCH").collect();
        assert_eq!(patches.len(), expected, "one server-side apply per object");
        assert!(
            patches.iter().all(|(_, _, q, ct)| q.contains("fieldManager=mesh")
                && q.contains("force=true")
                && ct == "application/apply-patch+yaml"),
            "{patches:?}"
        );
        assert!(c.objects.contains_key(
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/virtualservices.networking.istio.io"
        ));
        assert!(c.objects.contains_key("/apis/apps/v1/namespaces/istio-system/deployments/meshd"));
    }
    let v = kube(&["verify-install", "--profile", "minimal"]);
    assert_eq!(v.code, 0, "{}{}", v.stdout, v.stderr);
    assert!(v.stdout.contains("READY"), "{}", v.stdout);
    let pre = kube(&["precheck"]);
    assert!(pre.stderr.contains("mesh is already installed"), "{}", pre.stderr);

    let u = kube(&["uninstall", "-y"]);
    assert_eq!(u.code, 0, "{}{}", u.stdout, u.stderr);
    {
        let c = cluster.lock().unwrap_or_else(|e| e.into_inner());
        assert!(!c.objects.contains_key("/apis/apps/v1/namespaces/istio-system/deployments/meshd"));
        assert!(
            c.objects.contains_key(
                "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/virtualservices.networking.istio.io"
            ),
            "CRDs (and users' config) stay without --purge"
        );
    }
    let v = kube(&["verify-install", "--profile", "minimal"]);
    assert_eq!(v.code, FAILED, "{}", v.stdout);
    assert!(v.stdout.contains("MISSING") && v.stderr.contains("incomplete"), "{}{}", v.stdout, v.stderr);

    // A missing permission names the object and what to do; an unreachable cluster too.
    cluster.lock().unwrap_or_else(|e| e.into_inner()).deny_cluster_roles = true;
    let denied = kube(&["install", "-y", "--profile", "minimal"]);
    assert_eq!(denied.code, FAILED);
    assert!(
        denied.stderr.contains("ClusterRole meshd-istio-system") && denied.stderr.contains("permission denied"),
        "{}",
        denied.stderr
    );
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = closed.local_addr().expect("addr").port();
    drop(closed);
    let kc2 = kubeconfig(mesh, &format!("http://127.0.0.1:{port}"));
    let down = mesh.run(&["--platform", "kube", "--kubeconfig", &kc2, "install", "-y"]);
    assert_eq!(down.code, UNAVAILABLE);
    assert!(down.stderr.contains("cannot reach the Kubernetes API"), "{}", down.stderr);
}

fn mesh_manifest_count(mesh: &Mesh, profile: &str) -> usize {
    let text = mesh.ok(&["manifest", "generate", "--profile", profile]).stdout;
    text.lines().filter(|l| *l == "---").count()
}

/// Every collection meshd lists and watches on a cluster.
const WATCHED: &[&str] = &[
    "/api/v1/services",
    "/api/v1/pods",
    "/api/v1/namespaces",
    "/api/v1/secrets",
    "/apis/discovery.k8s.io/v1/endpointslices",
    "/apis/networking.istio.io/v1/virtualservices",
    "/apis/networking.istio.io/v1/destinationrules",
    "/apis/networking.istio.io/v1/serviceentries",
    "/apis/networking.istio.io/v1/gateways",
    "/apis/networking.istio.io/v1/sidecars",
    "/apis/networking.istio.io/v1/workloadentries",
    "/apis/networking.istio.io/v1/workloadgroups",
    "/apis/networking.istio.io/v1beta1/proxyconfigs",
    "/apis/security.istio.io/v1/peerauthentications",
    "/apis/security.istio.io/v1/authorizationpolicies",
    "/apis/security.istio.io/v1/requestauthentications",
    "/apis/telemetry.istio.io/v1/telemetries",
    "/apis/policy.mesh.io/v1alpha1/localratelimits",
    "/apis/gateway.networking.k8s.io/v1/gatewayclasses",
    "/apis/gateway.networking.k8s.io/v1/gateways",
    "/apis/gateway.networking.k8s.io/v1/httproutes",
    "/apis/gateway.networking.k8s.io/v1/grpcroutes",
    "/apis/gateway.networking.k8s.io/v1alpha2/tcproutes",
    "/apis/gateway.networking.k8s.io/v1alpha2/tlsroutes",
    "/apis/gateway.networking.k8s.io/v1beta1/referencegrants",
];

fn pod(name: &str, ip: &str, sa: &str, app: &str, containers: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": name, "namespace": "default", "labels": {"app": app}},
           "spec": {"serviceAccountName": sa, "containers": containers},
           "status": {"phase": "Running", "podIP": ip}})
}

fn ratings_slice(port: u16, ready: bool) -> Value {
    json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
           "metadata": {"name": "ratings-x7k2p", "namespace": "default", "labels": {"kubernetes.io/service-name": "ratings"}},
           "addressType": "IPv4",
           "ports": [{"name": "http", "port": port, "protocol": "TCP"}],
           "endpoints": [{"addresses": ["127.0.0.1"], "conditions": {"ready": ready},
                          "targetRef": {"kind": "Pod", "name": "ratings-1", "namespace": "default"}}]})
}

/// A cluster with bookinfo's ratings (a pod without a proxy, ready in its EndpointSlice) and a
/// productpage pod with a proxy, the namespaces, and the service-account tokens of both pods.
fn bookinfo_cluster(ratings_port: u16) -> Arc<Mutex<Cluster>> {
    let cluster = Arc::new(Mutex::new(Cluster::default()));
    {
        let mut c = cluster.lock().unwrap_or_else(|e| e.into_inner());
        for path in WATCHED {
            c.lists.insert(path.to_string(), Vec::new());
        }
        for ns in ["default", "istio-system"] {
            c.event("/api/v1/namespaces", "ADDED", json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}, "status": {"phase": "Active"}}));
        }
        c.event("/api/v1/services", "ADDED", json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "ratings", "namespace": "default"},
            "spec": {"selector": {"app": "ratings"}, "ports": [{"name": "http", "port": 9080, "targetPort": ratings_port}]}}));
        let plain = json!([{"name": "ratings", "image": "ratings:1", "ports": [{"containerPort": ratings_port}]}]);
        c.event("/api/v1/pods", "ADDED", pod("ratings-1", "127.0.0.1", "bookinfo-ratings", "ratings", plain));
        let meshed = json!([{"name": "productpage"}, {"name": "istio-proxy"}]);
        c.event(
            "/api/v1/pods",
            "ADDED",
            pod("productpage-1", "127.0.0.2", "bookinfo-productpage", "productpage", meshed),
        );
        c.event("/apis/discovery.k8s.io/v1/endpointslices", "ADDED", ratings_slice(ratings_port, true));
        c.tokens.insert(
            "token-productpage".into(),
            ("system:serviceaccount:default:bookinfo-productpage".into(), "productpage-1".into()),
        );
        c.tokens.insert(
            "token-ratings".into(),
            ("system:serviceaccount:default:bookinfo-ratings".into(), "ratings-1".into()),
        );
    }
    cluster
}

/// meshd with `MESH_PLATFORM=kube` against the mock API: it takes Services, Pods and
/// EndpointSlices as the registry, writes the mesh root into every namespace, serves discovery
/// over TLS to a proxy holding its pod's service-account token (checked by TokenReview, and
/// only for that pod), refuses other tokens, and follows EndpointSlice watch events.
#[test]
fn meshd_on_kube_serves_pods_and_authenticates_proxies_by_token() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("runtime");
    let ratings = app("ratings");
    let cluster = bookinfo_cluster(ratings.port());
    let addr = mock_cluster(&rt, cluster.clone());
    let mut mesh = Mesh::new();
    let kc = kubeconfig(&mesh, &format!("http://{addr}"));
    let (monitoring, api, discovery) = kube_meshd_at(&mut mesh, &kc, "meshd-0");

    // The mesh root lands in every namespace; the proxy trusts meshd through it.
    let root = eventually("the root ConfigMap in default", Duration::from_secs(20), || {
        let c = cluster.lock().unwrap_or_else(|e| e.into_inner());
        let cm = c.objects.get("/api/v1/namespaces/default/configmaps/mesh-ca-root-cert")?;
        cm["data"]["root-cert.pem"].as_str().map(String::from)
    });
    assert!(root.contains("BEGIN CERTIFICATE"), "{root}");
    eventually("meshd ready once it has listed everything", Duration::from_secs(20), || {
        (get(monitoring, "meshd", "/ready", false, &[]).0 == 200).then_some(())
    });
    eventually("the root ConfigMap in istio-system", Duration::from_secs(20), || {
        let c = cluster.lock().unwrap_or_else(|e| e.into_inner());
        c.objects.contains_key("/api/v1/namespaces/istio-system/configmaps/mesh-ca-root-cert").then_some(())
    });
    let dir = mesh.home.path().to_path_buf();
    std::fs::write(dir.join("root-cert.pem"), &root).expect("write root");
    let mut tokens = Vec::new();
    for (file, token) in [("good", "token-productpage"), ("bad", "not-a-token"), ("other", "token-ratings")] {
        std::fs::write(dir.join(file), token).expect("write token");
        tokens.push(dir.join(file).to_str().expect("path").to_string());
    }
    let discovery = discovery.to_string();
    let root_file = dir.join("root-cert.pem").to_str().expect("path").to_string();
    let proxy_args = |name: &str, token: &str| {
        vec![
            "--workload".to_string(),
            name.into(),
            "--namespace".into(),
            "default".into(),
            "--service-account".into(),
            "bookinfo-productpage".into(),
            "--meshd".into(),
            discovery.clone(),
            "--meshd-ca".into(),
            root_file.clone(),
            "--meshd-server-name".into(),
            "meshd.istio-system.svc".into(),
            "--token-file".into(),
            token.to_string(),
        ]
    };
    // A token the API server does not know, and another pod's token claiming this service
    // account: both refused.
    let mut refused = Vec::new();
    for (name, t) in [("productpage-2", &tokens[1]), ("productpage-3", &tokens[2])] {
        let a = proxy_args(name, t);
        refused.push(mesh.proxy(&a.iter().map(String::as_str).collect::<Vec<_>>()).admin);
    }
    let a = proxy_args("productpage-1", &tokens[0]);
    let good = mesh.proxy(&a.iter().map(String::as_str).collect::<Vec<_>>());
    mesh.wait_synced(1);
    eventually("TokenReviews for all three tokens", Duration::from_secs(20), || {
        let c = cluster.lock().unwrap_or_else(|e| e.into_inner());
        let reviews = c.log.iter().filter(|(m, p, ..)| m == "POST" && p.ends_with("/tokenreviews")).count();
        (reviews >= 3).then_some(())
    });
    let statuses = mesh.statuses();
    assert_eq!(statuses.len(), 1, "only the proxy with its own pod's token is served: {statuses:?}");
    // Each refused proxy says why on its admin API.
    for (admin, why) in refused.iter().zip(["did not accept the token", "only for its own pod"]) {
        let body = eventually("the refusal on the proxy's /ready", Duration::from_secs(20), || {
            let (code, body) = get(*admin, "admin", "/ready", false, &[]);
            (code == 503 && body.contains(why)).then_some(body)
        });
        assert!(body.contains("meshd refused"), "{body}");
    }
    let status = statuses[0].to_string();
    assert!(status.contains("default/productpage-1"), "{status}");
    assert!(status.contains("spiffe://cluster.local/ns/default/sa/bookinfo-productpage"), "{status}");

    // The daily commands on the cluster: meshd's view through a port-forward to its pod's
    // monitoring port, the proxy's admin API through a port-forward to its pod.
    {
        let mut c = cluster.lock().unwrap_or_else(|e| e.into_inner());
        c.objects.insert(
            "/api/v1/namespaces/istio-system/pods/meshd-0".into(),
            json!({"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": "meshd-0", "namespace": "istio-system", "labels": {"app": "meshd"}},
                "status": {"phase": "Running"}}),
        );
        c.forwards.insert(("istio-system".into(), "meshd-0".into(), 15014), monitoring);
        c.forwards.insert(("istio-system".into(), "meshd-0".into(), 15010), api);
        c.forwards.insert(("default".into(), "productpage-1".into(), good.admin.port()), good.admin);
    }
    let kube = |args: &[&str]| {
        let mut all = vec!["--platform", "kube", "--kubeconfig", kc.as_str()];
        all.extend_from_slice(args);
        mesh.run(&all)
    };
    let ps = kube(&["proxy-status"]);
    assert_eq!(ps.code, 0, "{}{}", ps.stdout, ps.stderr);
    assert!(ps.stdout.contains("productpage-1.default") && ps.stdout.contains("SYNCED"), "{}", ps.stdout);
    let one = kube(&["ps", "productpage-1"]);
    assert_eq!(one.code, 0, "{}{}", one.stdout, one.stderr);
    assert!(one.stdout.contains("routes: meshd and the proxy agree"), "{}", one.stdout);
    let pc = kube(&["pc", "cluster", "productpage-1"]);
    assert_eq!(pc.code, 0, "{}{}", pc.stdout, pc.stderr);
    assert!(pc.stdout.contains("ratings.default.svc.cluster.local"), "{}", pc.stdout);
    let level = kube(&["pc", "log", "productpage-1", "--level", "debug"]);
    assert_eq!(level.code, 0, "{}{}", level.stdout, level.stderr);
    let cert = kube(&["cert", "status"]);
    assert_eq!(cert.code, 0, "{}{}", cert.stdout, cert.stderr);
    assert!(cert.stdout.contains("spiffe://cluster.local/ns/default/sa/bookinfo-productpage"), "{}", cert.stdout);
    cluster
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .logs
        .insert("/api/v1/namespaces/istio-system/pods/meshd-0".into(), "first line\nsecond line\nthird line\n".into());
    let logs = kube(&["logs", "--tail", "2"]);
    assert_eq!(logs.code, 0, "{}{}", logs.stdout, logs.stderr);
    assert_eq!(logs.stdout, "second line\nthird line\n");
    let described = kube(&["x", "describe", "pod", "productpage-1"]);
    assert_eq!(described.code, 0, "{}{}", described.stdout, described.stderr);
    assert!(
        described.stdout.contains("Pod: productpage-1.default")
            && described.stdout.contains("Identity: spiffe://cluster.local/ns/default/sa/bookinfo-productpage"),
        "{}",
        described.stdout
    );
    let check = kube(&["check"]);
    assert_eq!(check.code, 0, "{}{}", check.stdout, check.stderr);
    for line in ["√ meshd is running and answers", "√ every proxy (1) has the config meshd holds now"] {
        assert!(check.stdout.contains(line), "{line}: {}", check.stdout);
    }
    // meshd's admin API (renewals, root rotation, proxy tokens) through a port-forward to its
    // API port, with the token meshd published in its Secret.
    let secret = eventually("meshd's admin token in its Secret", Duration::from_secs(20), || {
        let c = cluster.lock().unwrap_or_else(|e| e.into_inner());
        c.objects.get("/api/v1/namespaces/istio-system/secrets/meshd-admin-tokens").cloned()
    });
    assert!(secret["data"]["meshd-0"].is_string(), "{secret}");
    let renewed = kube(&["cert", "rotate", "--workload", "productpage-1"]);
    assert_eq!(renewed.code, 0, "{}{}", renewed.stdout, renewed.stderr);
    assert!(renewed.stdout.contains("productpage-1"), "{}", renewed.stdout);
    let minted = kube(&["proxy", "token", "create", "--workload", "vm-1", "--service-account", "vm"]);
    assert_eq!(minted.code, 0, "{}{}", minted.stdout, minted.stderr);
    assert!(minted.stdout.trim().starts_with("mpt1."), "{}", minted.stdout);
    let archive = mesh.home.path().join("report.tar.gz");
    let report = kube(&["bug-report", "-o", archive.to_str().expect("path")]);
    assert_eq!(report.code, 0, "{}{}", report.stdout, report.stderr);
    assert!(!report.stderr.contains("not collected"), "{}", report.stderr);
    let listing = std::process::Command::new("tar").arg("-tzf").arg(&archive).output().expect("tar");
    let listing = String::from_utf8_lossy(&listing.stdout);
    assert!(listing.contains("mesh-bug-report/proxies/default/productpage-1/config_dump.json"), "{listing}");
    let waited = kube(&["wait", "--proxies", "1", "--timeout", "20s"]);
    assert_eq!(waited.code, 0, "{}{}", waited.stdout, waited.stderr);
    assert!(waited.stdout.contains("1 proxies have the config"), "{}", waited.stdout);
    let top = kube(&["top", "--once", "--interval", "100ms", "-o", "json"]);
    assert_eq!(top.code, 0, "{}{}", top.stdout, top.stderr);
    let forwards = {
        let c = cluster.lock().unwrap_or_else(|e| e.into_inner());
        c.log
            .iter()
            .filter(|(_, p, ..)| p.ends_with("/portforward"))
            .map(|(_, p, q, _)| format!("{p}?{q}"))
            .collect::<Vec<_>>()
    };
    assert!(
        forwards.iter().any(|f| f.contains("pods/meshd-0/portforward") && f.contains("ports=15014")),
        "{forwards:?}"
    );
    assert!(forwards.iter().any(|f| f.contains("pods/productpage-1/portforward")), "{forwards:?}");
    // A pod the API server cannot forward to: the error names it.
    cluster.lock().unwrap_or_else(|e| e.into_inner()).forwards.clear();
    let gone = kube(&["proxy-status"]);
    assert_eq!(gone.code, UNAVAILABLE, "{}{}", gone.stdout, gone.stderr);
    assert!(gone.stderr.contains("istio-system/meshd-0"), "{}", gone.stderr);

    // The endpoint comes from the Pod and its EndpointSlice: a pod without a proxy, reached
    // in plain text.
    let outbound = good.outbound.expect("outbound listener");
    let (code, body) = get(outbound, "ratings:9080", "/", false, &[]);
    assert_eq!((code, body.trim()), (200, "ratings"), "request through the mesh to the pod");

    // The pod turns unready: the watch event takes it out of the endpoints.
    cluster.lock().unwrap_or_else(|e| e.into_inner()).event(
        "/apis/discovery.k8s.io/v1/endpointslices",
        "MODIFIED",
        ratings_slice(ratings.port(), false),
    );
    eventually("the unready pod leaving the endpoints", Duration::from_secs(20), || {
        (get(outbound, "ratings:9080", "/", false, &[]).0 == 503).then_some(())
    });
    cluster.lock().unwrap_or_else(|e| e.into_inner()).event(
        "/apis/discovery.k8s.io/v1/endpointslices",
        "MODIFIED",
        ratings_slice(ratings.port(), true),
    );
    eventually("the pod back in the endpoints", Duration::from_secs(20), || {
        let (code, body) = get(outbound, "ratings:9080", "/", false, &[]);
        (code == 200 && body.trim() == "ratings").then_some(())
    });
}

/// On a cluster, `apply`, `get`, `delete`, `analyze` and `route split` read and write the
/// objects through the API server as `kubectl` would (server-side apply, field manager `mesh`),
/// every object of an apply dry-run first so a refusal changes nothing; `version` reads the
/// cluster, meshd's Deployment and the proxies' images. (proxy-status, proxy-config, top and
/// cert through port-forwards are in `meshd_on_kube_serves_pods_and_authenticates_proxies_by_token`,
/// where a real meshd and proxy run.)
#[test]
fn config_commands_go_through_the_api_server() {
    let on = OnMock::new();
    let (cluster, mesh) = (&on.cluster, &on.mesh);
    let kube = |args: &[&str]| on.kube(args);
    let objects = || cluster.lock().unwrap_or_else(|e| e.into_inner()).objects.clone();
    let vs_path = "/apis/networking.istio.io/v1/namespaces/default/virtualservices/reviews";
    let config = mesh.home.path().join("reviews.yaml");
    let yaml = "apiVersion: v1\nkind: Service\nmetadata: {name: reviews}\nspec:\n  selector: {app: reviews}\n  ports: [{name: http, port: 9080}]\n---\napiVersion: networking.istio.io/v1beta1\nkind: DestinationRule\nmetadata: {name: reviews}\nspec:\n  host: reviews\n  subsets: [{name: v1, labels: {version: v1}}, {name: v2, labels: {version: v2}}]\n---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: reviews}\nspec:\n  hosts: [reviews]\n  http: [{route: [{destination: {host: reviews, subset: v1}}]}]\n";
    std::fs::write(&config, yaml).expect("write");
    let file = config.to_str().expect("path");

    let r = kube(&["apply", "-f", file]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("virtualservice.networking.istio.io/reviews created"), "{}", r.stdout);
    {
        let c = cluster.lock().unwrap_or_else(|e| e.into_inner());
        let patches: Vec<_> = c.log.iter().filter(|(m, ..)| m == "PATCH").collect();
        assert_eq!(patches.len(), 6, "a dry run of each of the 3 objects, then each for real: {patches:?}");
        assert!(patches[..3].iter().all(|(_, _, q, _)| q.contains("dryRun=All")), "{patches:?}");
        assert!(patches.iter().all(|(_, _, q, _)| q.contains("fieldManager=mesh")), "{patches:?}");
        let dr = &c.objects["/apis/networking.istio.io/v1/namespaces/default/destinationrules/reviews"];
        assert_eq!(dr["apiVersion"], "networking.istio.io/v1", "stored at the version mesh writes");
        assert!(c.objects.contains_key("/api/v1/namespaces/default/services/reviews"));
    }
    // A GatewayClass belongs to no namespace: written and read at the cluster-scoped path.
    let class = mesh.home.path().join("class.yaml");
    std::fs::write(
        &class,
        "apiVersion: gateway.networking.k8s.io/v1\nkind: GatewayClass\nmetadata: {name: internal}\nspec:\n  controllerName: istio.io/gateway-controller\n",
    )
    .expect("write");
    let r = kube(&["apply", "-f", class.to_str().expect("path")]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    {
        let c = cluster.lock().unwrap_or_else(|e| e.into_inner());
        let stored =
            c.objects.get("/apis/gateway.networking.k8s.io/v1/gatewayclasses/internal").expect("cluster-scoped");
        assert!(stored["metadata"].get("namespace").is_none(), "{stored}");
    }
    let classes = kube(&["get", "gatewayclasses", "-o", "name"]);
    assert!(classes.stdout.contains("internal"), "{}{}", classes.stdout, classes.stderr);
    let again = kube(&["apply", "-f", file]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert!(again.stdout.contains("virtualservice.networking.istio.io/reviews unchanged"), "{}", again.stdout);

    let got = kube(&["get", "vs"]);
    assert_eq!(got.code, 0, "{}", got.stderr);
    assert!(got.stdout.contains("reviews") && got.stdout.contains("AGE"), "{}", got.stdout);
    let all = kube(&["get", "dr", "-A", "-o", "name"]);
    assert_eq!(all.stdout.trim(), "destinationrule.networking.istio.io/reviews", "{}", all.stderr);
    let missing = kube(&["get", "vs", "ratings"]);
    assert_eq!(missing.code, FAILED, "{}", missing.stdout);

    // An Error finding about what is applied is refused before anything is written.
    let bad = mesh.home.path().join("bad.yaml");
    std::fs::write(&bad, yaml.replace("subset: v1}}]}]", "subset: v7}}]}]")).expect("write");
    let before = objects();
    let refused = kube(&["apply", "-f", bad.to_str().expect("path")]);
    assert_eq!(refused.code, ISSUES_FOUND, "{}{}", refused.stdout, refused.stderr);
    assert!(refused.stderr.contains("IST0101") && refused.stderr.contains("nothing was changed"), "{}", refused.stderr);
    assert_eq!(objects(), before, "nothing was written");
    // A kind whose CRD is not installed (Istio's CRDs without mesh's own): get says so; the
    // analysis reads the rest.
    cluster.lock().unwrap_or_else(|e| e.into_inner()).unserved.push("localratelimits".into());
    let rl = kube(&["get", "localratelimits"]);
    assert_eq!(rl.code, FAILED, "{}", rl.stderr);
    assert!(rl.stderr.contains("does not serve localratelimit.policy.mesh.io"), "{}", rl.stderr);
    // Live analysis over the cluster's objects and pods: with no pod, the subsets select
    // nothing (IST0173); with a pod of each version, all is well.
    let empty = kube(&["analyze"]);
    assert_eq!(empty.code, ISSUES_FOUND, "{}{}", empty.stdout, empty.stderr);
    assert!(empty.stdout.contains("IST0173"), "{}", empty.stdout);
    let pod_path = |v: &str| format!("/api/v1/namespaces/default/pods/reviews-{v}");
    for v in ["v1", "v2"] {
        let pod = json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": format!("reviews-{v}"), "namespace": "default", "labels": {"app": "reviews", "version": v}},
            "spec": {"containers": [{"name": "reviews", "image": "reviews"}, {"name": "istio-proxy", "image": "example.org/mesh/proxy:9.8.7"}]},
            "status": {"phase": "Running"}});
        cluster.lock().unwrap_or_else(|e| e.into_inner()).objects.insert(pod_path(v), pod);
    }
    let analyzed = kube(&["analyze"]);
    assert_eq!(analyzed.code, 0, "{}{}", analyzed.stdout, analyzed.stderr);
    assert!(analyzed.stdout.contains("the cluster (4 resources, 2 workloads)"), "{}", analyzed.stdout);
    // version: the cluster's, meshd's Deployment's, the proxies' image tags.
    let none = kube(&["version"]);
    assert!(
        none.stdout.contains("Kubernetes version: v1.30.2")
            && none.stdout.contains("control plane version: none")
            && none.stdout.contains("data plane version: 9.8.7"),
        "{}{}",
        none.stdout,
        none.stderr
    );
    cluster.lock().unwrap_or_else(|e| e.into_inner()).objects.insert(
        "/apis/apps/v1/namespaces/istio-system/deployments/meshd".into(),
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "meshd", "namespace": "istio-system", "labels": {"app.kubernetes.io/version": "9.8.6"}}}),
    );
    let version = kube(&["version", "-o", "json"]);
    let v: Value = serde_json::from_str(&version.stdout).expect("json");
    assert_eq!(v["meshd"], "9.8.6", "{v}");
    cluster.lock().unwrap_or_else(|e| e.into_inner()).objects.remove(&pod_path("v2"));
    let with_file = kube(&["analyze", bad.to_str().expect("path")]);
    assert_eq!(with_file.code, ISSUES_FOUND, "{}", with_file.stdout);
    assert!(with_file.stdout.contains("IST0101"), "{}", with_file.stdout);

    // route split edits the VirtualService on the cluster and names subsets nothing serves.
    let split = kube(&["route", "split", "reviews", "v1=50", "v2=50", "-y"]);
    assert_eq!(split.code, 0, "{}{}", split.stdout, split.stderr);
    let vs = objects()[vs_path].clone();
    let weights: Vec<i64> = vs["spec"]["http"][0]["route"]
        .as_array()
        .expect("route")
        .iter()
        .map(|d| d["weight"].as_i64().unwrap_or(0))
        .collect();
    assert_eq!(weights, [50, 50], "{vs}");
    assert!(split.stderr.contains("subset v2") && split.stderr.contains("has no endpoints"), "{}", split.stderr);
    assert!(!split.stderr.contains("subset v1"), "{}", split.stderr);
    assert!(split.stdout.contains("stored on the cluster"), "{}", split.stdout);

    // delete: all or nothing.
    let none = kube(&["delete", "vs", "reviews", "ratings"]);
    assert_eq!(none.code, FAILED, "{}", none.stderr);
    assert!(none.stderr.contains("nothing was deleted"), "{}", none.stderr);
    assert!(objects().contains_key(vs_path));
    let deleted = kube(&["delete", "vs", "reviews"]);
    assert_eq!(deleted.code, 0, "{}", deleted.stderr);
    assert!(!objects().contains_key(vs_path));

    // Without a meshd pod, what needs meshd says where it looked; what is not on the cluster
    // yet says so, with what is.
    let ps = kube(&["proxy-status"]);
    assert_eq!(ps.code, UNAVAILABLE, "{}", ps.stderr);
    assert!(ps.stderr.contains("no running meshd pod in istio-system"), "{}", ps.stderr);
    let check = kube(&["check"]);
    assert_eq!(check.code, FAILED, "{}", check.stdout);
    assert!(check.stdout.contains("× meshd is running and answers"), "{}", check.stdout);
    let demo = kube(&["demo"]);
    assert_eq!(demo.code, UNAVAILABLE, "{}", demo.stderr);
    assert!(demo.stderr.contains("logs, check and bug-report are"), "{}", demo.stderr);
}

/// With Istio's CRDs on the cluster, precheck names them; install keeps and uses them as they
/// are (never patching them), refuses with nothing changed when one lacks the version mesh
/// writes, and replaces them only with `--replace-crds`; uninstall never deletes them.
#[test]
fn istio_crds_are_kept_used_and_never_deleted() {
    let on = OnMock::new();
    let crd_path = |name: &str| format!("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}");
    let istio_crd = |name: &str, versions: &[&str]| {
        let versions: Vec<Value> =
            versions.iter().map(|v| json!({"name": v, "served": true, "storage": *v == "v1"})).collect();
        json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": name, "labels": {"app": "istio-pilot", "release": "istio"}},
            "spec": {"group": "networking.istio.io", "versions": versions}})
    };
    let vs = "virtualservices.networking.istio.io";
    let gw = "gateways.networking.istio.io";
    {
        let mut c = on.cluster.lock().unwrap_or_else(|e| e.into_inner());
        c.objects.insert(crd_path(vs), istio_crd(vs, &["v1", "v1beta1", "v1alpha3"]));
        // An old Istio: gateways served at v1alpha3 only.
        c.objects.insert(crd_path(gw), istio_crd(gw, &["v1alpha3"]));
    }
    let pre = on.kube(&["precheck"]);
    assert_eq!(pre.code, FAILED, "{}{}", pre.stdout, pre.stderr);
    assert!(pre.stderr.contains(&format!("CRD {vs} exists and was not created by mesh")), "{}", pre.stderr);
    assert!(
        pre.stderr.contains(&format!("CRD {gw} exists, was not created by mesh and does not serve v1")),
        "{}",
        pre.stderr
    );

    let patches = || {
        let c = on.cluster.lock().unwrap_or_else(|e| e.into_inner());
        c.log.iter().filter(|(m, ..)| m == "PATCH").map(|(_, p, ..)| p.clone()).collect::<Vec<_>>()
    };
    let refused = on.kube(&["install", "-y", "--profile", "minimal", "--wait-timeout", "20"]);
    assert_eq!(refused.code, FAILED, "{}{}", refused.stdout, refused.stderr);
    assert!(refused.stderr.contains(gw) && refused.stderr.contains("nothing was changed"), "{}", refused.stderr);
    assert!(patches().is_empty(), "nothing applied: {:?}", patches());

    // Istio's gateways CRD upgraded: install keeps both and uses them.
    on.cluster
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .objects
        .insert(crd_path(gw), istio_crd(gw, &["v1", "v1alpha3"]));
    let before = on.cluster.lock().unwrap_or_else(|e| e.into_inner()).objects[&crd_path(vs)].clone();
    let installed = on.kube(&["install", "-y", "--profile", "minimal", "--wait-timeout", "20"]);
    assert_eq!(installed.code, 0, "{}{}", installed.stdout, installed.stderr);
    assert!(installed.stdout.contains(&format!("keeping CRD {vs} as it is")), "{}", installed.stdout);
    assert!(!patches().iter().any(|p| p == &crd_path(vs) || p == &crd_path(gw)), "{:?}", patches());
    assert!(patches().iter().any(|p| p == &crd_path("destinationrules.networking.istio.io")), "ours are applied");
    assert_eq!(on.cluster.lock().unwrap_or_else(|e| e.into_inner()).objects[&crd_path(vs)], before);

    // uninstall --purge deletes the CRDs mesh created, never Istio's.
    let gone = on.kube(&["uninstall", "--purge", "-y"]);
    assert_eq!(gone.code, 0, "{}{}", gone.stdout, gone.stderr);
    assert!(gone.stdout.contains(&format!("kept CustomResourceDefinition {vs}")), "{}", gone.stdout);
    {
        let c = on.cluster.lock().unwrap_or_else(|e| e.into_inner());
        assert!(c.objects.contains_key(&crd_path(vs)) && c.objects.contains_key(&crd_path(gw)));
        assert!(!c.objects.contains_key(&crd_path("destinationrules.networking.istio.io")));
    }

    // Asked to, install replaces them.
    let replaced = on.kube(&["install", "-y", "--profile", "minimal", "--replace-crds", "--wait-timeout", "20"]);
    assert_eq!(replaced.code, 0, "{}{}", replaced.stdout, replaced.stderr);
    assert!(replaced.stderr.contains(&format!("replacing CRD {vs}")), "{}", replaced.stderr);
    let c = on.cluster.lock().unwrap_or_else(|e| e.into_inner());
    assert_eq!(c.objects[&crd_path(vs)]["metadata"]["labels"]["app.kubernetes.io/name"], "mesh");
}

/// meshd on the mock cluster with its own MESH_HOME (as one replica); returns its monitoring
/// and API addresses once it serves.
fn kube_meshd(mesh: &mut Mesh, kubeconfig: &str, pod: &str) -> (std::net::SocketAddr, std::net::SocketAddr) {
    let (monitoring, api, _) = kube_meshd_at(mesh, kubeconfig, pod);
    (monitoring, api)
}

/// [`kube_meshd`], with its discovery-over-TLS address too.
fn kube_meshd_at(
    mesh: &mut Mesh,
    kubeconfig: &str,
    pod: &str,
) -> (std::net::SocketAddr, std::net::SocketAddr, std::net::SocketAddr) {
    let child = mesh
        .cmd()
        .args(["__meshd", "--listen", "127.0.0.1:0", "--discovery-tls", "127.0.0.1:0", "--webhooks", "127.0.0.1:0"])
        .env("MESH_PLATFORM", "kube")
        .env("KUBECONFIG", kubeconfig)
        .env("POD_NAMESPACE", "istio-system")
        .env("POD_NAME", pod)
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("spawn meshd");
    mesh.keep(child);
    let info_file = mesh.home.path().join("meshd.json");
    eventually("meshd.json with its addresses", Duration::from_secs(20), || {
        let v: Value = serde_json::from_slice(&std::fs::read(&info_file).ok()?).ok()?;
        let addr = |k: &str| v[k].as_str()?.parse::<std::net::SocketAddr>().ok();
        Some((addr("monitoring")?, addr("address")?, addr("discovery_tls")?))
    })
}

/// The key ids of the roots a meshd trusts, from its monitoring port.
fn root_ids(monitoring: std::net::SocketAddr) -> Vec<String> {
    let (code, body) = get(monitoring, "meshd", "/debug/ca", false, &[]);
    assert_eq!(code, 200, "{body}");
    let ca: Value = serde_json::from_str(&body).expect("json");
    ca["roots"].as_array().expect("roots").iter().map(|r| r["key_id"].as_str().unwrap_or("").to_string()).collect()
}

/// On a cluster the CA lives in a Secret: two meshd replicas starting at once end with one
/// root (one creates `mesh-ca`, the other takes it), a root rotation on one reaches the other
/// through the Secret; one of them leads through a Lease, and when it dies the other takes the
/// lease over; a plug-in `cacerts` Secret (Istio's format) is used as it is.
#[test]
fn meshd_replicas_share_the_ca_through_a_secret() {
    let on = OnMock::new();
    let kc = on.kubeconfig.clone();
    let (mut a, mut b) = (Mesh::new(), Mesh::new());
    let (mon_a, _) = kube_meshd(&mut a, &kc, "meshd-a");
    let (mon_b, _) = kube_meshd(&mut b, &kc, "meshd-b");
    let (ids_a, ids_b) = (root_ids(mon_a), root_ids(mon_b));
    assert_eq!(ids_a.len(), 1, "{ids_a:?}");
    assert_eq!(ids_a, ids_b, "both replicas sign with one root");
    {
        let c = on.cluster.lock().unwrap_or_else(|e| e.into_inner());
        assert!(c.objects.contains_key("/api/v1/namespaces/istio-system/secrets/mesh-ca"));
        let creates =
            c.log.iter().filter(|(m, p, ..)| m == "POST" && p == "/api/v1/namespaces/istio-system/secrets").count();
        assert!((1..=2).contains(&creates), "{creates} creates");
    }
    // A root rotation on replica a (through its own admin API) reaches replica b.
    let rotated = a.run(&["cert", "rotate-root", "-y"]);
    assert_eq!(rotated.code, 0, "{}{}", rotated.stdout, rotated.stderr);
    let now = root_ids(mon_a);
    assert_eq!(now.len(), 1);
    assert_ne!(now, ids_a, "a new root");
    eventually("replica b on the new root", Duration::from_secs(30), || (root_ids(mon_b) == now).then_some(()));

    // One leader through a Lease; when it dies, the other takes over once the lease expires.
    let lease = || {
        let c = on.cluster.lock().unwrap_or_else(|e| e.into_inner());
        c.objects.get("/apis/coordination.k8s.io/v1/namespaces/istio-system/leases/meshd-leader").cloned()
    };
    let holder = eventually("a leader", Duration::from_secs(20), || {
        lease()?["spec"]["holderIdentity"].as_str().map(String::from)
    });
    let (dead, next) = if holder == "meshd-a" { (a, "meshd-b") } else { (b, "meshd-a") };
    drop(dead); // kills that replica
    eventually("the other replica leading", Duration::from_secs(45), || {
        let l = lease()?;
        (l["spec"]["holderIdentity"] == next && l["spec"]["leaseTransitions"] == 1).then_some(())
    });

    // A plug-in CA in Istio's cacerts format: an intermediate, with its chain and root.
    use base64::Engine;
    let plug = OnMock::new();
    let dir = tempfile::tempdir().expect("tmp");
    let root = crate::security::openssl_ca(dir.path(), "corp-root");
    let (cert, key, chain) = crate::security::openssl_intermediate(dir.path(), &root, "cluster1-ca");
    let b64 = |f: &str| base64::engine::general_purpose::STANDARD.encode(std::fs::read(f).expect("read"));
    plug.cluster.lock().unwrap_or_else(|e| e.into_inner()).objects.insert(
        "/api/v1/namespaces/istio-system/secrets/cacerts".into(),
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "cacerts", "namespace": "istio-system"},
            "data": {"ca-cert.pem": b64(&cert), "ca-key.pem": b64(&key), "cert-chain.pem": b64(&chain), "root-cert.pem": b64(&root.0)}}),
    );
    let mut c = Mesh::new();
    let (mon_c, _) = kube_meshd(&mut c, &plug.kubeconfig, "meshd-c");
    let (_, body) = get(mon_c, "meshd", "/debug/ca", false, &[]);
    // The root is what proxies trust; the intermediate signs.
    let ca: serde_json::Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
    let roots = ca["roots"].as_array().expect("roots");
    assert!(roots.len() == 1 && roots[0]["subject"].as_str().is_some_and(|s| s.contains("corp-root")), "{body}");
    assert_eq!(roots[0]["signing"], true, "{body}");
    let c = plug.cluster.lock().unwrap_or_else(|e| e.into_inner());
    assert!(!c.objects.contains_key("/api/v1/namespaces/istio-system/secrets/mesh-ca"), "the plug-in CA is not copied");
}

/// meshd's Service as the proxies see it: one address, forwarding each new connection to the
/// replica it points at now (a replica that dies resets the connections it had).
struct ServiceStandIn {
    addr: std::net::SocketAddr,
    target: Arc<Mutex<std::net::SocketAddr>>,
}

impl ServiceStandIn {
    fn new(target: std::net::SocketAddr) -> ServiceStandIn {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let target = Arc::new(Mutex::new(target));
        let to = target.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(down) = conn else { continue };
                let t = *to.lock().unwrap_or_else(|e| e.into_inner());
                let Ok(up) = std::net::TcpStream::connect(t) else { continue };
                for (mut from, mut to) in
                    [(down.try_clone().expect("clone"), up.try_clone().expect("clone")), (up, down)]
                {
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(std::net::Shutdown::Both);
                    });
                }
            }
        });
        ServiceStandIn { addr, target }
    }

    fn point_at(&self, target: std::net::SocketAddr) {
        *self.target.lock().unwrap_or_else(|e| e.into_inner()) = target;
    }
}

/// Two meshd replicas behind one Service address: when the one a proxy is connected to dies,
/// the proxy reconnects to the other (same root, so it trusts it and is trusted) and keeps
/// serving with its last config meanwhile: requests during the switch all succeed, and the
/// other replica then reports the proxy in sync.
#[test]
fn a_proxy_moves_to_another_meshd_replica_without_failed_requests() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("runtime");
    let ratings = app("ratings");
    let cluster = bookinfo_cluster(ratings.port());
    let addr = mock_cluster(&rt, cluster.clone());
    let (mut a, mut b, mut workload) = (Mesh::new(), Mesh::new(), Mesh::new());
    let kc = kubeconfig(&workload, &format!("http://{addr}"));
    let (_, _, discovery_a) = kube_meshd_at(&mut a, &kc, "meshd-a");
    let (monitoring_b, _, discovery_b) = kube_meshd_at(&mut b, &kc, "meshd-b");
    let service = ServiceStandIn::new(discovery_a);
    let root = eventually("the root ConfigMap", Duration::from_secs(20), || {
        let c = cluster.lock().unwrap_or_else(|e| e.into_inner());
        c.objects.get("/api/v1/namespaces/default/configmaps/mesh-ca-root-cert")?["data"]["root-cert.pem"]
            .as_str()
            .map(String::from)
    });
    let dir = workload.home.path().to_path_buf();
    std::fs::write(dir.join("root-cert.pem"), &root).expect("write root");
    std::fs::write(dir.join("token"), "token-productpage").expect("write token");
    let (meshd, ca, token) = (service.addr.to_string(), dir.join("root-cert.pem"), dir.join("token"));
    let proxy = workload.proxy(&[
        "--workload",
        "productpage-1",
        "--namespace",
        "default",
        "--service-account",
        "bookinfo-productpage",
        "--meshd",
        &meshd,
        "--meshd-ca",
        ca.to_str().expect("path"),
        "--meshd-server-name",
        "meshd.istio-system.svc",
        "--token-file",
        token.to_str().expect("path"),
    ]);
    let outbound = proxy.outbound.expect("outbound listener");
    eventually("the first request through the proxy", Duration::from_secs(20), || {
        (get(outbound, "ratings:9080", "/", false, &[]).0 == 200).then_some(())
    });

    // Load through the proxy while replica a goes away.
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sent = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let load = {
        let (done, sent) = (done.clone(), sent.clone());
        std::thread::spawn(move || {
            let (mut failed, started) = (Vec::new(), std::time::Instant::now());
            // Bounded in count and time.
            for i in 0..20_000 {
                if done.load(std::sync::atomic::Ordering::Relaxed) || started.elapsed() > Duration::from_secs(60) {
                    break;
                }
                let (code, body) = get(outbound, "ratings:9080", "/", false, &[]);
                if code != 200 {
                    failed.push(format!("request {i}: {code} {body}"));
                }
                sent.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            failed
        })
    };
    eventually("some load before the switch", Duration::from_secs(20), || {
        (sent.load(std::sync::atomic::Ordering::Relaxed) >= 50).then_some(())
    });
    service.point_at(discovery_b);
    drop(a); // replica a dies; its streams are reset
    eventually("the proxy in sync on replica b", Duration::from_secs(30), || {
        let (code, body) = get(monitoring_b, "meshd", "/debug/proxies", false, &[]);
        let statuses: Vec<Value> = serde_json::from_str(&body).ok()?;
        let p = statuses.iter().find(|p| p["workload"]["name"] == "productpage-1")?;
        (code == 200 && p["types"].as_object()?.values().all(|t| t["acked"] == t["current"])).then_some(())
    });
    let before = sent.load(std::sync::atomic::Ordering::Relaxed);
    eventually("more load after the switch", Duration::from_secs(20), || {
        (sent.load(std::sync::atomic::Ordering::Relaxed) >= before + 50).then_some(())
    });
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let failed = load.join().expect("load");
    let total = sent.load(std::sync::atomic::Ordering::Relaxed);
    assert!(failed.is_empty(), "{} of {total} requests failed: {:?}", failed.len(), &failed[..failed.len().min(5)]);
}

/// The Gateway API on a cluster, as Istio's controller does it: meshd (leading) makes a
/// Gateway of class `istio` a gateway proxy Deployment and Service owned by the Gateway, and
/// writes the conditions of every Gateway and route back to their status.
#[test]
fn gateway_api_on_kube_gets_a_gateway_deployment_and_status() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("runtime");
    let ratings = app("ratings");
    let cluster = bookinfo_cluster(ratings.port());
    {
        let mut c = cluster.lock().unwrap_or_else(|e| e.into_inner());
        c.event(
            "/apis/gateway.networking.k8s.io/v1/gateways",
            "ADDED",
            json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
                   "metadata": {"name": "bookinfo-gateway", "namespace": "default", "uid": "gw-uid-1", "generation": 3},
                   "spec": {"gatewayClassName": "istio", "listeners": [{"name": "http", "port": 80, "protocol": "HTTP"}]}}),
        );
        for (name, backend) in [("ratings", "ratings"), ("missing", "nowhere")] {
            c.event(
                "/apis/gateway.networking.k8s.io/v1/httproutes",
                "ADDED",
                json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
                       "metadata": {"name": name, "namespace": "default", "generation": 1},
                       "spec": {"parentRefs": [{"name": "bookinfo-gateway"}],
                                "rules": [{"backendRefs": [{"name": backend, "port": 9080}]}]}}),
            );
        }
    }
    let addr = mock_cluster(&rt, cluster.clone());
    let mut mesh = Mesh::new();
    let kc = kubeconfig(&mesh, &format!("http://{addr}"));
    kube_meshd_at(&mut mesh, &kc, "meshd-0");
    let object = |path: &str| {
        let c = cluster.lock().unwrap_or_else(|e| e.into_inner());
        c.objects.get(path).cloned()
    };
    let deployment = eventually("the gateway Deployment", Duration::from_secs(30), || {
        object("/apis/apps/v1/namespaces/default/deployments/bookinfo-gateway-istio")
    });
    assert_eq!(deployment["metadata"]["ownerReferences"][0]["uid"], "gw-uid-1", "{deployment}");
    let args = deployment["spec"]["template"]["spec"]["containers"][0]["args"].to_string();
    assert!(args.contains("80=0.0.0.0:80") && args.contains("gateway-name=bookinfo-gateway"), "{args}");
    // Its Service is applied after the Deployment.
    eventually("the gateway Service", Duration::from_secs(30), || {
        object("/api/v1/namespaces/default/services/bookinfo-gateway-istio")
    });
    let condition = |path: &str, kind: &str| -> Option<String> {
        let o = object(path)?;
        let conditions =
            o["status"]["parents"][0]["conditions"].as_array().or(o["status"]["conditions"].as_array())?.clone();
        let c = conditions.into_iter().find(|c| c["type"] == kind)?;
        Some(format!("{}/{}", c["status"].as_str()?, c["reason"].as_str()?))
    };
    let base = "/apis/gateway.networking.k8s.io/v1/namespaces/default";
    let accepted = eventually("the route's status written", Duration::from_secs(30), || {
        condition(&format!("{base}/httproutes/ratings/status"), "Accepted")
    });
    assert_eq!(accepted, "True/Accepted");
    assert_eq!(
        condition(&format!("{base}/httproutes/ratings/status"), "ResolvedRefs").as_deref(),
        Some("True/ResolvedRefs")
    );
    let missing = eventually("the bad route's status", Duration::from_secs(30), || {
        condition(&format!("{base}/httproutes/missing/status"), "ResolvedRefs")
    });
    assert_eq!(missing, "False/BackendNotFound");
    let programmed = eventually("the Gateway's status", Duration::from_secs(30), || {
        condition(&format!("{base}/gateways/bookinfo-gateway/status"), "Programmed")
    });
    assert_eq!(programmed, "True/Programmed");
    let status = object(&format!("{base}/gateways/bookinfo-gateway/status")).unwrap_or_default();
    assert_eq!(status["status"]["conditions"][0]["observedGeneration"], 3, "{status}");
    assert!(
        status["status"]["conditions"][0]["lastTransitionTime"].as_str().is_some_and(|t| t.ends_with('Z')),
        "{status}"
    );
}

/// On Kubernetes the leading meshd runs a Rollout by writing its status subresource; what the
/// watch brings back is where it goes on from. (The mock API server keeps a status patch
/// apart, so the test plays the API server's part of echoing it into the object.)
#[test]
fn a_rollout_on_kube_is_run_through_its_status_subresource() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("runtime");
    let ratings = app("ratings");
    let cluster = bookinfo_cluster(ratings.port());
    let rollout = json!({"apiVersion": "rollouts.mesh.io/v1alpha1", "kind": "Rollout",
        "metadata": {"name": "ratings", "namespace": "default", "generation": 1},
        "spec": {"host": "ratings", "stable": "v1", "canary": "v2", "steps": [{"weight": 25}, {"weight": 100}],
                 "interval": "1s", "analysis": {"minRequests": 5}}});
    {
        let mut c = cluster.lock().unwrap_or_else(|e| e.into_inner());
        c.event(
            "/apis/networking.istio.io/v1/destinationrules",
            "ADDED",
            json!({"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
                   "metadata": {"name": "ratings", "namespace": "default"},
                   "spec": {"host": "ratings", "subsets": [{"name": "v1", "labels": {"version": "v1"}},
                                                          {"name": "v2", "labels": {"version": "v2"}}]}}),
        );
        c.event("/apis/rollouts.mesh.io/v1alpha1/rollouts", "ADDED", rollout.clone());
    }
    let addr = mock_cluster(&rt, cluster.clone());
    let mut mesh = Mesh::new();
    let kc = kubeconfig(&mesh, &format!("http://{addr}"));
    kube_meshd_at(&mut mesh, &kc, "meshd-0");
    let path = "/apis/rollouts.mesh.io/v1alpha1/namespaces/default/rollouts/ratings/status";
    let written = |phase: &str| {
        let c = cluster.lock().unwrap_or_else(|e| e.into_inner());
        c.objects.get(path).map(|o| o["status"].clone()).filter(|s| s["phase"] == phase)
    };
    let first = eventually("the first step written", Duration::from_secs(30), || written("Progressing"));
    assert_eq!((first["step"].as_u64(), first["canaryWeight"].as_u64()), (Some(1), Some(25)), "{first}");
    // The API server's watch brings the status back; meshd goes on from it: no canary traffic
    // (no canary pod) means it waits rather than moving on, saying there is no canary.
    let mut echoed = rollout.clone();
    echoed["status"] = first;
    cluster.lock().unwrap_or_else(|e| e.into_inner()).event(
        "/apis/rollouts.mesh.io/v1alpha1/rollouts",
        "MODIFIED",
        echoed,
    );
    let waiting = eventually("waiting for traffic", Duration::from_secs(30), || written("Waiting"));
    assert_eq!(waiting["step"], 1, "still at the step the watch brought back: {waiting}");
    assert!(
        waiting["message"]
            .as_str()
            .is_some_and(|m| m.contains("no workload in namespace default has the canary subset's labels {version=v2}")),
        "{waiting}"
    );
    // Kubernetes conditions, for `kubectl wait --for=condition=Promoted`: still progressing,
    // not yet promoted, nothing judged on too little traffic.
    let conditions: Vec<(String, String, String)> = waiting["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            let s = |f: &str| c[f].as_str().unwrap_or("").to_string();
            assert!(c["lastTransitionTime"].as_str().is_some_and(|t| t.ends_with('Z')), "{c}");
            assert_eq!(c["observedGeneration"], 1, "{c}");
            (s("type"), s("status"), s("reason"))
        })
        .collect();
    let want = [
        ("Progressing", "True", "Waiting"),
        ("Promoted", "Unknown", "InProgress"),
        ("AnalysisPassing", "Unknown", "TooLittleTraffic"),
    ]
    .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()));
    assert_eq!(conditions, want, "{waiting}");
}
