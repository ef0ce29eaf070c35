//! The kube platform's install commands against a mock Kubernetes API server in the test: it
//! stores what is server-side applied, answers gets and deletes, the version, and access
//! reviews, and reports a Deployment ready once applied.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
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
        ("POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews") => {
            let mut review: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
            review["status"] = json!({"allowed": true});
            (201, review)
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
            obj["metadata"]["uid"] = json!(format!("uid-{}", c.objects.len()));
            obj["metadata"]["resourceVersion"] = json!("1");
            if obj["kind"] == "Deployment" {
                let replicas = obj["spec"]["replicas"].as_u64().unwrap_or(1);
                obj["status"] = json!({"replicas": replicas, "readyReplicas": replicas, "availableReplicas": replicas});
            }
            c.objects.insert(p.to_string(), obj.clone());
            (200, obj)
        }
        ("GET", p) => match c.objects.get(p) {
            Some(o) => (200, o.clone()),
            None => status(404, "NotFound", "not found"),
        },
        ("DELETE", p) => match c.objects.remove(p) {
            Some(_) => (200, json!({"kind": "Status", "apiVersion": "v1", "status": "Success", "code": 200})),
            None => status(404, "NotFound", "not found"),
        },
        _ => status(404, "NotFound", "no such API in the mock"),
    }
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
                        let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                        let (code, value) = answer(&cluster, &method, &path, &query, &ctype, &body);
                        let mut resp = hyper::Response::new(Full::new(Bytes::from(value.to_string())));
                        *resp.status_mut() = hyper::StatusCode::from_u16(code).unwrap_or(hyper::StatusCode::OK);
                        resp.headers_mut()
                            .insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
                        Ok::<_, Infallible>(resp)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), svc).await;
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

#[test]
fn kube_install_applies_waits_verifies_and_uninstalls() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("runtime");
    let cluster = Arc::new(Mutex::new(Cluster::default()));
    let addr = mock_cluster(&rt, cluster.clone());
    let mesh = Mesh::new();
    let kc = kubeconfig(&mesh, &format!("http://{addr}"));
    let kube = |args: &[&str]| {
        let mut all = vec!["--platform", "kube", "--kubeconfig", kc.as_str(), "--context", "mock"];
        all.extend_from_slice(args);
        mesh.run(&all)
    };

    let pre = kube(&["precheck"]);
    assert_eq!(pre.code, 0, "{}{}", pre.stdout, pre.stderr);
    assert!(
        pre.stdout.contains("Kubernetes 1.30 is supported")
            && pre.stdout.contains("can create customresourcedefinitions"),
        "{}",
        pre.stdout
    );

    // Without a terminal and without -y, nothing is applied.
    let refused = kube(&["install", "--profile", "minimal"]);
    assert_eq!(refused.code, 1, "{}", refused.stderr);
    assert!(cluster.lock().unwrap_or_else(|e| e.into_inner()).objects.is_empty());

    let r = kube(&["install", "-y", "--profile", "minimal", "--wait-timeout", "20"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("meshd is ready in istio-system"), "{}", r.stdout);
    let expected = mesh_manifest_count(&mesh, "minimal");
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
    assert_eq!(v.code, 1, "{}", v.stdout);
    assert!(v.stdout.contains("MISSING") && v.stderr.contains("incomplete"), "{}{}", v.stdout, v.stderr);

    // A missing permission names the object and what to do; an unreachable cluster too.
    cluster.lock().unwrap_or_else(|e| e.into_inner()).deny_cluster_roles = true;
    let denied = kube(&["install", "-y", "--profile", "minimal"]);
    assert_eq!(denied.code, 1);
    assert!(
        denied.stderr.contains("ClusterRole meshd-istio-system") && denied.stderr.contains("permission denied"),
        "{}",
        denied.stderr
    );
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = closed.local_addr().expect("addr").port();
    drop(closed);
    let kc2 = kubeconfig(&mesh, &format!("http://127.0.0.1:{port}"));
    let down = mesh.run(&["--platform", "kube", "--kubeconfig", &kc2, "install", "-y"]);
    assert_eq!(down.code, 2);
    assert!(down.stderr.contains("cannot reach the Kubernetes API"), "{}", down.stderr);
}

fn mesh_manifest_count(mesh: &Mesh, profile: &str) -> usize {
    let text = mesh.ok(&["manifest", "generate", "--profile", profile]).stdout;
    text.lines().filter(|l| *l == "---").count()
}
