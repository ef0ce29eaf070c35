//! meshd on Kubernetes: the API server is the config store. One watcher per kind (Services and
//! the mesh's CRDs) keeps a full copy, relisting after a `410 Gone` or any broken watch; every
//! change (debounced) is validated with the same code `mesh apply` uses and published as the
//! world the translator reads, so both platforms share everything past the store.
//!
//! Not here yet: Pods and EndpointSlices as endpoints (workloads still register through their
//! proxies' discovery streams), TokenReview-authenticated CSRs, discovery over TLS on 15012.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, TypeMeta};
use kube::runtime::{WatchStreamExt, watcher};
use mesh_api::resource::{Parsed, parse_document};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use crate::state::State;
use crate::store::Resources;

/// The API of a kind, named by group, version, kind and plural (no discovery round trip).
pub fn api_resource(group: &str, version: &str, kind: &str, plural: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural)
}

/// Services and every mesh kind, at their storage versions.
pub fn default_kinds() -> Vec<ApiResource> {
    vec![
        api_resource("", "v1", "Service", "services"),
        api_resource("networking.istio.io", "v1", "VirtualService", "virtualservices"),
        api_resource("networking.istio.io", "v1", "DestinationRule", "destinationrules"),
        api_resource("networking.istio.io", "v1", "ServiceEntry", "serviceentries"),
        api_resource("networking.istio.io", "v1", "Gateway", "gateways"),
        api_resource("security.istio.io", "v1", "PeerAuthentication", "peerauthentications"),
        api_resource("security.istio.io", "v1", "AuthorizationPolicy", "authorizationpolicies"),
        api_resource("security.istio.io", "v1", "RequestAuthentication", "requestauthentications"),
        api_resource("telemetry.istio.io", "v1", "Telemetry", "telemetries"),
        api_resource("policy.mesh.io", "v1alpha1", "LocalRateLimit", "localratelimits"),
    ]
}

/// (kind index, namespace/name) -> the object as JSON.
type Objects = BTreeMap<(usize, String), serde_json::Value>;

enum Change {
    /// A full relist of one kind.
    Replace(usize, Objects),
    Apply(usize, String, serde_json::Value),
    Delete(usize, String),
}

fn key(o: &DynamicObject) -> String {
    format!("{}/{}", o.metadata.namespace.as_deref().unwrap_or("default"), o.metadata.name.as_deref().unwrap_or(""))
}

fn to_json(ar: &ApiResource, mut o: DynamicObject) -> serde_json::Value {
    // List items carry no apiVersion/kind; the validator needs them.
    o.types = Some(TypeMeta { api_version: ar.api_version.clone(), kind: ar.kind.clone() });
    serde_json::to_value(&o).unwrap_or(serde_json::Value::Null)
}

/// Watch one kind forever, reporting full relists and single changes.
async fn watch_kind(client: kube::Client, index: usize, ar: ApiResource, tx: mpsc::Sender<Change>) {
    let api: Api<DynamicObject> = Api::all_with(client, &ar);
    let mut stream = watcher(api, watcher::Config::default()).default_backoff().boxed();
    let mut buffer: Option<Objects> = None;
    while let Some(event) = stream.next().await {
        let change = match event {
            Ok(watcher::Event::Init) => {
                buffer = Some(Objects::new());
                continue;
            }
            Ok(watcher::Event::InitApply(o)) => {
                let k = key(&o);
                buffer.get_or_insert_with(Objects::new).insert((index, k), to_json(&ar, o));
                continue;
            }
            Ok(watcher::Event::InitDone) => Change::Replace(index, buffer.take().unwrap_or_default()),
            Ok(watcher::Event::Apply(o)) => Change::Apply(index, key(&o), to_json(&ar, o)),
            Ok(watcher::Event::Delete(o)) => Change::Delete(index, key(&o)),
            Err(e) => {
                // 410 Gone and broken watches land here; the watcher relists on its own.
                debug!(kind = %ar.kind, error = %e, "watch interrupted; relisting");
                continue;
            }
        };
        if tx.send(change).await.is_err() {
            return;
        }
    }
}

/// The resources meshd serves from everything watched; invalid objects are skipped with a
/// warning naming them (the validating webhook should have refused them).
fn resources_of(objects: &Objects) -> Resources {
    let mut out = Resources::new();
    for ((_, name), value) in objects {
        let ns = name.split('/').next().unwrap_or("default");
        match parse_document(value.clone(), ns, 0) {
            Ok(Parsed::Supported(r)) => {
                out.insert(r.key(), r);
            }
            Ok(_) => {}
            Err(e) => warn!(object = %name, error = %e, "ignoring an invalid object from the API server"),
        }
    }
    out
}

/// Keep meshd's world equal to what the API server holds, until the client's streams end.
pub async fn watch_config(client: kube::Client, state: Arc<State>, kinds: Vec<ApiResource>) {
    let (tx, mut rx) = mpsc::channel(256);
    let synced_needed = kinds.len();
    for (i, ar) in kinds.into_iter().enumerate() {
        tokio::spawn(watch_kind(client.clone(), i, ar, tx.clone()));
    }
    drop(tx);
    let mut objects = Objects::new();
    let mut listed = std::collections::BTreeSet::new();
    while let Some(first) = rx.recv().await {
        let mut apply = |c: Change, listed: &mut std::collections::BTreeSet<usize>| match c {
            Change::Replace(i, all) => {
                listed.insert(i);
                objects.retain(|(k, _), _| *k != i);
                objects.extend(all);
            }
            Change::Apply(i, k, v) => {
                objects.insert((i, k), v);
            }
            Change::Delete(i, k) => {
                objects.remove(&(i, k));
            }
        };
        apply(first, &mut listed);
        // A burst of events becomes one publish.
        let deadline = tokio::time::Instant::now() + Duration::from_millis(50);
        while let Ok(Some(c)) = tokio::time::timeout_at(deadline, rx.recv()).await {
            apply(c, &mut listed);
        }
        // Publish only once every kind has been listed: a partial world would push proxies a
        // config without, say, the DestinationRules.
        if listed.len() == synced_needed {
            let resources = resources_of(&objects);
            info!(resources = resources.len(), "config from the Kubernetes API");
            state.replace_resources(resources);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use bytes::Bytes;
    use http_body_util::{BodyExt, Full, StreamBody};
    use hyper::body::Frame;
    use hyper::service::service_fn;
    use hyper_util::rt::TokioIo;
    use serde_json::json;

    use super::*;

    type Body = http_body_util::combinators::BoxBody<Bytes, Infallible>;

    fn vs(name: &str, rv: &str) -> serde_json::Value {
        json!({"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
               "metadata": {"name": name, "namespace": "default", "resourceVersion": rv},
               "spec": {"hosts": ["reviews"], "http": [{"route": [{"destination": {"host": "reviews"}}]}]}})
    }

    fn list(kind: &str, rv: &str, items: Vec<serde_json::Value>) -> Body {
        let body = json!({"apiVersion": "v1", "kind": format!("{kind}List"), "metadata": {"resourceVersion": rv}, "items": items});
        Full::new(Bytes::from(body.to_string())).boxed()
    }

    /// A watch response: these events, then (when `hang`) an open stream that never ends.
    fn events(lines: Vec<serde_json::Value>, hang: bool) -> Body {
        let frames: Vec<Result<Frame<Bytes>, Infallible>> =
            lines.into_iter().map(|l| Ok(Frame::data(Bytes::from(format!("{l}\n"))))).collect();
        let head = futures_util::stream::iter(frames);
        if hang {
            BodyExt::boxed(StreamBody::new(head.chain(futures_util::stream::pending())))
        } else {
            BodyExt::boxed(StreamBody::new(head))
        }
    }

    /// The mock API server: VirtualServices are listed (rv 10: vs-a), watched (vs-b added,
    /// then `410 Gone`), listed again (rv 20: vs-b and vs-c; vs-a was deleted meanwhile) and
    /// watched quietly; Services hold `reviews`.
    async fn mock_api(vs_lists: Arc<AtomicUsize>) -> std::net::SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { return };
                let vs_lists = vs_lists.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                        let vs_lists = vs_lists.clone();
                        async move {
                            let path = req.uri().path().to_string();
                            let query = req.uri().query().unwrap_or("").to_string();
                            let watching = query.contains("watch=true");
                            let body = match (path.as_str(), watching) {
                                ("/apis/networking.istio.io/v1/virtualservices", false) => {
                                    if vs_lists.fetch_add(1, Ordering::SeqCst) == 0 {
                                        list("VirtualService", "10", vec![vs("vs-a", "10")])
                                    } else {
                                        list("VirtualService", "20", vec![vs("vs-b", "11"), vs("vs-c", "20")])
                                    }
                                }
                                ("/apis/networking.istio.io/v1/virtualservices", true)
                                    if query.contains("resourceVersion=10") =>
                                {
                                    events(
                                        vec![
                                            json!({"type": "ADDED", "object": vs("vs-b", "11")}),
                                            json!({"type": "ERROR", "object": {"kind": "Status", "apiVersion": "v1", "status": "Failure",
                                            "message": "too old resource version", "reason": "Expired", "code": 410}}),
                                        ],
                                        false,
                                    )
                                }
                                ("/api/v1/services", false) => list(
                                    "Service",
                                    "5",
                                    vec![json!({"apiVersion": "v1", "kind": "Service",
                                        "metadata": {"name": "reviews", "namespace": "default", "resourceVersion": "5"},
                                        "spec": {"selector": {"app": "reviews"}, "ports": [{"name": "http", "port": 9080}]}})],
                                ),
                                (_, true) => events(Vec::new(), true),
                                _ => list("Unknown", "1", Vec::new()),
                            };
                            Ok::<_, Infallible>(hyper::Response::new(body))
                        }
                    });
                    let _ =
                        hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), svc).await;
                });
            }
        });
        addr
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn watches_feed_the_world_and_a_410_relists() {
        let vs_lists = Arc::new(AtomicUsize::new(0));
        let addr = mock_api(vs_lists.clone()).await;
        let config = kube::Config::new(format!("http://{addr}").parse().expect("url"));
        let client = kube::Client::try_from(config).expect("client");
        let dir = tempfile::tempdir().expect("tempdir");
        let state = Arc::new(State::new(
            "meshd-test".into(),
            crate::store::Store::new(dir.path().join("store.json")),
            Resources::new(),
            None,
            Vec::new(),
        ));
        let kinds = vec![
            api_resource("", "v1", "Service", "services"),
            api_resource("networking.istio.io", "v1", "VirtualService", "virtualservices"),
        ];
        tokio::spawn(watch_config(client, state.clone(), kinds));
        let names = || {
            let w = state.world();
            w.resources.keys().map(|k| format!("{} {}/{}", k.kind, k.namespace, k.name)).collect::<Vec<_>>()
        };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let n = names();
            if n == ["Service default/reviews", "VirtualService default/vs-b", "VirtualService default/vs-c"] {
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "world never matched the API server: {n:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(vs_lists.load(Ordering::SeqCst) >= 2, "the 410 made the watcher list again");
        assert!(!dir.path().join("store.json").exists(), "on Kubernetes the API server is the store");
    }
}
