use std::collections::BTreeMap;
use std::sync::Arc;

use mesh_api::Parsed;
use mesh_api::protocol::{InboundPort, MeshdMessage, Workload};
use mesh_api::proxy_config::ConfigType;

use super::*;
use crate::state::State;
use crate::translate::translate_with;

fn resources(yaml: &str) -> Resources {
    let mut out = Resources::new();
    for (i, doc) in mesh_api::resource::parse_yaml_stream(yaml).expect("yaml").into_iter().enumerate() {
        if let Ok(Parsed::Supported(r)) = mesh_api::resource::parse_document(doc, "default", i) {
            out.insert(r.key(), r);
        }
    }
    out
}

fn workload(i: usize, ns: &str, labels: &[(&str, &str)]) -> Workload {
    Workload {
        name: format!("w-{i}"),
        namespace: ns.into(),
        service_account: "default".into(),
        labels: labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<BTreeMap<_, _>>(),
        ports: vec![InboundPort { port: 9080, listen: ([127, 0, 0, 1], 20_000 + i as u16).into(), name: None }],
        admin: None,
        outbound: None,
        pid: 0,
        proxy_version: "test".into(),
        without_proxy: false,
        gateway_ports: Vec::new(),
    }
}

/// A world with the lookups that are easy to get wrong in an index: exact and wildcard hosts
/// in several namespaces, the root namespace, two rules for one host, `sourceLabels`, a
/// Gateway, and Services with several ports.
fn generated(services: usize) -> String {
    let mut y = String::new();
    for j in 0..services {
        let ns = format!("ns-{}", j % 3);
        y += &format!(
            "---\napiVersion: v1\nkind: Service\nmetadata: {{name: svc-{j}, namespace: {ns}}}\nspec:\n  selector: {{app: svc-{j}}}\n  ports: [{{name: http, port: 9080}}, {{name: tcp-db, port: 5432}}]\n"
        );
        y += &format!(
            "---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {{name: svc-{j}, namespace: {ns}}}\nspec:\n  host: svc-{j}\n  subsets: [{{name: v1, labels: {{version: v1}}}}, {{name: v2, labels: {{version: v2}}}}]\n"
        );
        if j % 4 == 0 {
            // A second rule for the same host, from the client namespace ns-1.
            y += &format!(
                "---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {{name: a-svc-{j}, namespace: ns-1}}\nspec:\n  host: svc-{j}.{ns}.svc.cluster.local\n  trafficPolicy: {{loadBalancer: {{simple: RANDOM}}}}\n"
            );
        }
        let weights = if j % 2 == 0 { (90, 10) } else { (50, 50) };
        y += &format!(
            "---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: svc-{j}, namespace: {ns}}}\nspec:\n  hosts: [svc-{j}]\n  http:\n  - match: [{{sourceLabels: {{tier: {tier}}}}}]\n    route: [{{destination: {{host: svc-{j}, subset: v2}}}}]\n  - route:\n    - {{destination: {{host: svc-{j}, subset: v1}}, weight: {a}}}\n    - {{destination: {{host: svc-{j}, subset: v2}}, weight: {b}}}\n",
            tier = if j % 2 == 0 { "front" } else { "back" },
            a = weights.0,
            b = weights.1,
        );
    }
    y += "---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: wild, namespace: ns-2}\nspec:\n  hosts: ['*.ns-0.svc.cluster.local']\n  http: [{route: [{destination: {host: svc-0.ns-0.svc.cluster.local}}]}]\n";
    y += "---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: all, namespace: ns-1}\nspec:\n  hosts: ['*']\n  tcp: [{route: [{destination: {host: svc-1.ns-1.svc.cluster.local, port: {number: 5432}}}]}]\n";
    y += "---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: mesh-wide, namespace: istio-system}\nspec:\n  host: '*.local'\n  trafficPolicy: {loadBalancer: {simple: LEAST_REQUEST}}\n";
    y += "---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: ns2-wild, namespace: ns-2}\nspec:\n  host: '*.ns-0.svc.cluster.local'\n  trafficPolicy: {connectionPool: {tcp: {maxConnections: 7}}}\n";
    y += "---\napiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: edge, namespace: ns-0}\nspec:\n  selector: {istio: ingressgateway}\n  servers: [{port: {number: 8080, name: http, protocol: HTTP}, hosts: ['*']}]\n";
    y += "---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: edge, namespace: ns-0}\nspec:\n  hosts: ['*']\n  gateways: [edge]\n  http: [{route: [{destination: {host: svc-2.ns-2.svc.cluster.local}}]}]\n";
    y
}

fn fleet(services: usize) -> Vec<Workload> {
    let mut ws = Vec::new();
    for i in 0..services * 2 {
        let j = i % services;
        let version = if i < services { "v1" } else { "v2" };
        let tier = ["front", "back", "none"][(i / 4) % 3];
        ws.push(workload(
            i,
            &format!("ns-{}", j % 3),
            &[("app", &format!("svc-{j}")), ("version", version), ("tier", tier)],
        ));
    }
    ws.push(workload(9999, "ns-0", &[("istio", "ingressgateway")]));
    ws
}

fn world(resources: Resources, ws: &[Workload], generation: u64) -> World {
    let workloads: BTreeMap<String, Workload> =
        ws.iter().map(|w| (format!("{}/{}", w.namespace, w.name), w.clone())).collect();
    World::for_test(generation, Arc::new(resources), Arc::new(workloads))
}

/// What a proxy receives through the shared pipeline is byte for byte what translating the
/// world for that proxy alone gives, for Istio's bookinfo and for a generated world.
#[test]
fn shared_translation_equals_translating_each_proxy_alone() {
    // The generated world always; Istio's bookinfo when the corpus is here.
    let mut cases = vec![(generated(12), fleet(12))];
    if let Some(corpus) =
        mesh_api::corpus::for_test("shared_translation_equals_translating_each_proxy_alone (bookinfo)")
    {
        let bookinfo = std::fs::read_to_string(corpus.join("bookinfo/platform/kube/bookinfo.yaml")).expect("bookinfo");
        let rules =
            std::fs::read_to_string(corpus.join("bookinfo/networking/destination-rule-all.yaml")).expect("rules");
        let bookinfo_fleet: Vec<Workload> = ["productpage", "details", "ratings", "reviews", "reviews", "reviews"]
            .iter()
            .enumerate()
            .map(|(i, app)| workload(i, "default", &[("app", app), ("version", ["v1", "v2", "v3"][i % 3])]))
            .collect();
        cases.push((format!("{bookinfo}\n---\n{rules}"), bookinfo_fleet));
    }
    for (yaml, ws) in cases {
        let res = resources(&yaml);
        let w = world(res.clone(), &ws, 1);
        let mesh = MeshConfig::default();
        let (pushes, _) = compute(&w, &mut Caches::default(), &mesh);
        assert_eq!(pushes.by_proxy.len(), ws.len());
        for (id, proxy) in w.connected() {
            let alone = translate_with(&res, w.workload_list(), proxy, &mesh);
            let parts = &pushes.by_proxy[id].parts;
            let expect = [
                serde_json::to_vec(&alone.routes).expect("json"),
                serde_json::to_vec(&alone.clusters).expect("json"),
                serde_json::to_vec(&alone.endpoints).expect("json"),
                serde_json::to_vec(&alone.listeners).expect("json"),
            ];
            for (t, (part, want)) in ConfigType::ALL.iter().zip(parts.iter().zip(expect)) {
                assert!(part.json() == want, "{id}: {t} differs from translating the proxy alone");
            }
        }
        // Versions are a function of the world: another pipeline computes the same.
        let (again, _) = compute(&w, &mut Caches::default(), &mesh);
        for (id, p) in &pushes.by_proxy {
            let versions = |p: &ProxyParts| p.parts.iter().map(|x| x.version.clone()).collect::<Vec<_>>();
            assert_eq!(versions(p), versions(&again.by_proxy[id]), "{id}");
        }
    }
}

#[test]
fn proxies_with_the_same_input_share_one_translation_and_workload_changes_redo_endpoints_only() {
    let res = resources(&generated(6));
    let ws = fleet(6);
    let mesh = MeshConfig::default();
    let mut caches = Caches::default();
    let w1 = world(res.clone(), &ws, 1);
    let (first, fresh) = compute(&w1, &mut caches, &mesh);
    // Replicas of one service in one namespace with the same `tier` share routes, clusters
    // and endpoints; listeners are shared by equal labels and ports.
    let a = &first.by_proxy["ns-0/w-0"].parts;
    let same_ns_same_tier = ws
        .iter()
        .find(|w| w.name != "w-0" && w.namespace == "ns-0" && w.labels.get("tier").is_some_and(|t| t == "front"));
    let b = &first.by_proxy[&format!("ns-0/{}", same_ns_same_tier.expect("a peer").name)].parts;
    assert!(Arc::ptr_eq(&a[0], &b[0]) && Arc::ptr_eq(&a[1], &b[1]) && Arc::ptr_eq(&a[2], &b[2]));
    // Another service's proxy in the same namespace and tier: the same routes too.
    let other = ws.iter().find(|w| {
        w.namespace == "ns-0" && w.labels["app"] != "svc-0" && w.labels.get("tier").is_some_and(|t| t == "front")
    });
    let other_service = &first.by_proxy[&format!("ns-0/{}", other.expect("another service").name)].parts;
    assert!(Arc::ptr_eq(&a[0], &other_service[0]));
    let back =
        ws.iter().find(|w| w.namespace == "ns-0" && w.labels.get("tier").is_some_and(|t| t == "back")).expect("back");
    let back = &first.by_proxy[&format!("ns-0/{}", back.name)].parts;
    assert!(!Arc::ptr_eq(&a[0], &back[0]), "sourceLabels on tier: different routes");
    // One translation per distinct input: routes, clusters and endpoints per namespace and
    // tier (the only label a sourceLabels reads) or gateway label; listeners per label set.
    let index = crate::translate::Index::new(&res);
    let outbound: std::collections::HashSet<_> = ws.iter().map(|w| index.outbound_key(w)).collect();
    let listeners: std::collections::HashSet<_> = ws.iter().map(crate::translate::ListenerKey::of).collect();
    assert!(outbound.len() <= 3 * 3 + 1, "{} outbound keys: at most namespaces x tiers + the gateway", outbound.len());
    assert_eq!(fresh, 3 * outbound.len() + listeners.len());

    // A new workload: only endpoints are translated again; everything else is the same Arc.
    let mut more = ws.clone();
    more.push(workload(500, "ns-0", &[("app", "svc-0"), ("version", "v1"), ("tier", "front")]));
    let w2 = world(res, &more, 2);
    // Same resources Arc, as a registration publishes it.
    let w2 = World::for_test(2, w1.resources.clone(), w2.workloads.clone());
    let (second, _) = compute(&w2, &mut caches, &mesh);
    let a2 = &second.by_proxy["ns-0/w-0"].parts;
    assert!(Arc::ptr_eq(&a[0], &a2[0]) && Arc::ptr_eq(&a[1], &a2[1]) && Arc::ptr_eq(&a[3], &a2[3]));
    assert_ne!(a[2].version, a2[2].version, "the new endpoint is in the endpoints");
    assert!(second.by_proxy.contains_key("ns-0/w-500"));

    // The delta from the first endpoints, applied as a proxy applies it, gives the second
    // endpoints exactly, and names only the clusters the new workload is in.
    let d = second.by_proxy["ns-0/w-0"].deltas[slot(ConfigType::Endpoints)].clone().expect("a delta");
    assert_eq!(d.base, a[2].version);
    let bytes = frame(2, &[Entry::Delta(ConfigType::Endpoints, &d)]);
    let Ok(MeshdMessage::Push(push)) = serde_json::from_slice::<MeshdMessage>(&bytes) else { panic!("not a push") };
    let delta = push.endpoints_delta.expect("endpoints_delta");
    assert_eq!(delta.version, a2[2].version);
    let mut held: mesh_api::proxy_config::Endpoints = serde_json::from_slice(&a[2].json()).expect("first endpoints");
    for gone in &delta.removed {
        held.clusters.remove(gone);
    }
    let names: Vec<&String> = delta.updated.keys().collect();
    assert!(names.iter().all(|n| n.ends_with("svc-0.ns-0.svc.cluster.local")), "{names:?}");
    held.clusters.extend(delta.updated);
    assert_eq!(serde_json::to_vec(&held).expect("json"), a2[2].json());
}

/// A change of one VirtualService's weights reaches each proxy as a routes delta that names
/// only that service's virtual host and rebuilds exactly the new routes.
#[test]
fn one_changed_virtual_service_is_a_routes_delta_of_its_virtual_host() {
    let ws = fleet(6);
    let mesh = MeshConfig::default();
    let mut caches = Caches::default();
    let before = resources(&generated(6));
    let (first, _) = compute(&world(before, &ws, 1), &mut caches, &mesh);
    // svc-0's VirtualService goes from 90/10 to 80/20; nothing else changes.
    let yaml: Vec<String> = generated(6)
        .split("\n---\n")
        .map(|doc| {
            if doc.contains("kind: VirtualService") && doc.contains("name: svc-0,") {
                doc.replace("weight: 90}", "weight: 80}").replace("weight: 10}", "weight: 20}")
            } else {
                doc.to_string()
            }
        })
        .collect();
    let yaml = yaml.join("\n---\n");
    assert_eq!(resources(&yaml).len(), resources(&generated(6)).len());
    let (second, _) = compute(&world(resources(&yaml), &ws, 2), &mut caches, &mesh);
    let old = &first.by_proxy["ns-1/w-1"].parts[slot(ConfigType::Routes)];
    let new = &second.by_proxy["ns-1/w-1"];
    assert_ne!(old.version, new.parts[slot(ConfigType::Routes)].version);
    let d = new.deltas[slot(ConfigType::Routes)].clone().expect("a routes delta");
    assert!(new.deltas[slot(ConfigType::Endpoints)].is_none(), "endpoints did not change");
    let bytes = frame(3, &[Entry::Delta(ConfigType::Routes, &d)]);
    let Ok(MeshdMessage::Push(push)) = serde_json::from_slice::<MeshdMessage>(&bytes) else { panic!("not a push") };
    let delta = push.routes_delta.expect("routes_delta");
    assert_eq!(delta.base, old.version);
    let names: Vec<&str> = delta.virtual_hosts.iter().map(|(_, vh)| vh.name.as_str()).collect();
    assert_eq!(names, ["svc-0.ns-0.svc.cluster.local:9080"]);
    let mut held: mesh_api::proxy_config::Routes = serde_json::from_slice(&old.json()).expect("routes");
    delta.apply(&mut held).expect("applies");
    assert_eq!(serde_json::to_vec(&held).expect("json"), new.parts[slot(ConfigType::Routes)].json());
}

#[test]
fn a_frame_from_serialized_parts_is_the_push_message() {
    let res = resources(&generated(2));
    let ws = fleet(2);
    let w = world(res.clone(), &ws, 1);
    let (pushes, _) = compute(&w, &mut Caches::default(), &MeshConfig::default());
    let parts = &pushes.by_proxy["ns-0/w-0"].parts;
    let bytes =
        frame(7, &[Entry::Whole(ConfigType::Routes, &parts[0]), Entry::Whole(ConfigType::Endpoints, &parts[2])]);
    let Ok(MeshdMessage::Push(push)) = serde_json::from_slice::<MeshdMessage>(&bytes) else {
        panic!("not a push: {}", String::from_utf8_lossy(&bytes))
    };
    let alone = translate_with(&res, w.workload_list(), &ws[0], &MeshConfig::default());
    assert_eq!(push.nonce, "7");
    assert_eq!(push.routes.as_ref().map(|r| &r.body), Some(&alone.routes));
    assert_eq!(push.routes.map(|r| r.version), Some(parts[0].version.clone()));
    assert_eq!(push.endpoints.map(|e| e.body), Some(alone.endpoints));
    assert!(push.clusters.is_none() && push.listeners.is_none());
}

/// A burst of registrations becomes a few translations, not one per registration, and the
/// last one has every proxy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_changes_is_coalesced() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = Arc::new(State::new(
        "meshd-test".into(),
        crate::store::Store::new(dir.path().join("store.json")),
        resources(&generated(4)),
        None,
        Vec::new(),
    ));
    let mut rx = state.subscribe_pushes();
    tokio::spawn(run(state.clone(), MeshConfig::default()));
    // The first translation (no proxies yet).
    rx.changed().await.expect("first");
    let ws = fleet(100);
    for w in &ws {
        state.register(w.clone()).expect("register");
    }
    let mut published = 0;
    loop {
        tokio::time::timeout(std::time::Duration::from_secs(30), rx.changed()).await.expect("pushes").expect("open");
        published += 1;
        if rx.borrow().by_proxy.len() == ws.len() {
            break;
        }
    }
    assert!(published < ws.len() / 4, "{published} translations for {} registrations", ws.len());
}

/// Every proxy's parts equal translating the world for that proxy alone.
fn assert_as_alone(w: &World, pushes: &Pushes, mesh: &MeshConfig) {
    for (id, proxy) in w.connected() {
        let alone = translate_with(&w.resources, w.workload_list(), proxy, mesh);
        let expect = [
            serde_json::to_vec(&alone.routes).expect("json"),
            serde_json::to_vec(&alone.clusters).expect("json"),
            serde_json::to_vec(&alone.endpoints).expect("json"),
            serde_json::to_vec(&alone.listeners).expect("json"),
        ];
        for (t, (part, want)) in ConfigType::ALL.iter().zip(pushes.by_proxy[id].parts.iter().zip(expect)) {
            assert!(part.json() == want, "{id}: {t} differs from translating the proxy alone");
        }
    }
}

/// A change to VirtualServices only keeps the endpoints and listeners made before (they never
/// read VirtualServices) unless a key's clusters changed; any other change redoes them. Each
/// step's output is what translating every proxy alone gives.
#[test]
fn routing_only_changes_keep_endpoints_and_listeners() {
    let ws = fleet(6);
    let mesh = MeshConfig::default();
    let mut caches = Caches::default();
    let base = generated(6);
    // One set of workloads throughout, as meshd keeps it while only config changes.
    let first_world = world(Resources::new(), &ws, 0);
    let (workloads, discovered) = (first_world.workloads.clone(), first_world.discovered.clone());
    let world = |res: Resources, _: &[Workload], generation: u64| {
        World::new(generation, Arc::new(res), workloads.clone(), discovered.clone())
    };
    let w1 = world(resources(&base), &ws, 1);
    let (first, _) = compute(&w1, &mut caches, &mesh);
    let same = |a: &Pushes, b: &Pushes, t: ConfigType| {
        a.by_proxy.iter().all(|(id, p)| Arc::ptr_eq(&p.parts[slot(t)], &b.by_proxy[id].parts[slot(t)]))
    };

    // Weights only: new routes; the same clusters, so the same endpoints and listeners.
    let reweighted = base.replace("weight: 90", "weight: 80").replace("weight: 10", "weight: 20");
    let w2 = world(resources(&reweighted), &ws, 2);
    let routes_of = |caches: &Caches, fqdn: &str| {
        let mut keyed: Vec<_> = caches
            .outbound
            .iter()
            .map(|(k, o)| (format!("{k:?}"), o.routes_parts.service(fqdn).cloned().expect("service routes")))
            .collect();
        keyed.sort_by(|a, b| a.0.cmp(&b.0));
        keyed.into_iter().map(|(_, r)| r).collect::<Vec<_>>()
    };
    let (svc0, svc1) = ("svc-0.ns-0.svc.cluster.local", "svc-1.ns-1.svc.cluster.local");
    let before = (routes_of(&caches, svc0), routes_of(&caches, svc1));
    let (second, _) = compute(&w2, &mut caches, &mesh);
    // Only the reweighted services' routes were made anew (svc-0 is 90/10, svc-1 50/50).
    let after = (routes_of(&caches, svc0), routes_of(&caches, svc1));
    assert!(before.0.iter().zip(&after.0).all(|(a, b)| !Arc::ptr_eq(a, b)), "svc-0 remade");
    assert!(before.1.iter().zip(&after.1).all(|(a, b)| Arc::ptr_eq(a, b)), "svc-1 reused");
    assert_as_alone(&w2, &second, &mesh);
    assert!(!same(&first, &second, ConfigType::Routes), "the routes changed");
    assert!(same(&first, &second, ConfigType::Listeners), "listeners kept");
    assert!(same(&first, &second, ConfigType::Endpoints), "endpoints kept");

    // A VirtualService sending svc-0 to a host it did not use: new clusters, so new endpoints.
    let rerouted = format!(
        "{reweighted}---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: extra, namespace: ns-0}}\nspec:\n  hosts: [extra.example]\n  http: [{{route: [{{destination: {{host: svc-3.ns-0.svc.cluster.local, subset: v2}}}}]}}]\n---\napiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {{name: extra, namespace: ns-0}}\nspec:\n  hosts: [extra.example]\n  ports: [{{number: 80, name: http, protocol: HTTP}}]\n  resolution: DNS\n"
    );
    let w3 = world(resources(&rerouted), &ws, 3);
    let (third, _) = compute(&w3, &mut caches, &mesh);
    assert_as_alone(&w3, &third, &mesh);
    assert!(!same(&second, &third, ConfigType::Endpoints), "a ServiceEntry is not routing only");

    // A PeerAuthentication: listeners and endpoints (mTLS toward endpoints) are redone.
    let strict = format!(
        "{rerouted}---\napiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {{name: default, namespace: ns-0}}\nspec:\n  mtls: {{mode: STRICT}}\n"
    );
    let w4 = world(resources(&strict), &ws, 4);
    let (fourth, _) = compute(&w4, &mut caches, &mesh);
    assert_as_alone(&w4, &fourth, &mesh);
    assert!(!same(&third, &fourth, ConfigType::Listeners));

    // A DestinationRule, a wildcard VirtualService and a Gateway: each step still matches.
    let mut yaml = strict;
    let mut last = fourth;
    for (generation, (from, to)) in [
        ("simple: LEAST_REQUEST", "simple: RANDOM"),
        ("host: svc-0.ns-0.svc.cluster.local}}]}]", "host: svc-3.ns-0.svc.cluster.local}}]}]"),
        ("number: 8080, name: http", "number: 8081, name: http"),
    ]
    .into_iter()
    .enumerate()
    {
        assert!(yaml.contains(from), "{from}");
        yaml = yaml.replace(from, to);
        let w = world(resources(&yaml), &ws, 10 + generation as u64);
        last = compute(&w, &mut caches, &mesh).0;
        assert_as_alone(&w, &last, &mesh);
    }
    let (strict, fourth) = (yaml, last);

    // Back to weights only, from there: endpoints stay, the output still matches.
    let w5 = world(resources(&strict.replace("weight: 80", "weight: 70").replace("weight: 20", "weight: 30")), &ws, 5);
    let (fifth, _) = compute(&w5, &mut caches, &mesh);
    assert_as_alone(&w5, &fifth, &mesh);
    assert!(same(&fourth, &fifth, ConfigType::Endpoints) && same(&fourth, &fifth, ConfigType::Listeners));
}

/// A namespace per service (as many teams lay out a cluster), a rule matching on the
/// client's namespace, and a workload that is not a proxy's.
fn namespace_per_service(services: usize) -> String {
    let mut y = String::new();
    for j in 0..services {
        y += &format!(
            "---\napiVersion: v1\nkind: Service\nmetadata: {{name: svc-{j}, namespace: team-{j}}}\nspec:\n  selector: {{app: svc-{j}}}\n  ports: [{{name: http, port: 9080}}]\n---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {{name: svc-{j}, namespace: team-{j}}}\nspec:\n  host: svc-{j}\n  subsets: [{{name: v1, labels: {{version: v1}}}}, {{name: v2, labels: {{version: v2}}}}]\n---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: svc-{j}, namespace: team-{j}}}\nspec:\n  hosts: [svc-{j}]\n  http:\n  - route:\n    - {{destination: {{host: svc-{j}, subset: v1}}, weight: 90}}\n    - {{destination: {{host: svc-{j}, subset: v2}}, weight: 10}}\n"
        );
    }
    // svc-0: clients in team-1 go to v2 only.
    y += "---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: svc-0, namespace: team-0}\nspec:\n  hosts: [svc-0]\n  http:\n  - match: [{sourceNamespace: team-1}]\n    route: [{destination: {host: svc-0, subset: v2}}]\n  - route: [{destination: {host: svc-0, subset: v1}}]\n";
    // A client namespace's own rule for svc-2 wins there.
    y += "---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: svc-2, namespace: team-3}\nspec:\n  host: svc-2.team-2.svc.cluster.local\n  trafficPolicy: {loadBalancer: {simple: RANDOM}}\n  subsets: [{name: v1, labels: {version: v2}}, {name: v2, labels: {version: v1}}]\n";
    y
}

fn team_fleet(services: usize) -> Vec<Workload> {
    (0..services * 2)
        .map(|i| {
            let j = i % services;
            let version = if i < services { "v1" } else { "v2" };
            workload(i, &format!("team-{j}"), &[("app", &format!("svc-{j}")), ("version", version)])
        })
        .collect()
}

/// Proxies in different namespaces share the pieces their configs have in common (a
/// service's routes as every other namespace sees them, a cluster and its endpoints under
/// the same DestinationRule), and every step of a sequence of changes (weights, workloads
/// coming and going, both at once, a rule matching on the client's namespace, a client
/// namespace's own DestinationRule) gives each proxy what translating the world for it alone
/// gives, with deltas that rebuild it.
#[test]
fn shared_pieces_across_namespaces_stay_exact_through_changes() {
    let mesh = MeshConfig::default();
    let mut caches = Caches::default();
    let mut ws = team_fleet(8);
    let mut yaml = namespace_per_service(8);
    let (mut last, _) = compute(&world(resources(&yaml), &ws, 1), &mut caches, &mesh);
    assert_as_alone(&world(resources(&yaml), &ws, 1), &last, &mesh);
    // Pieces: svc-5's routes as team-6 and team-7 see them are one; as team-5 sees them
    // (short name) another.
    let piece = |caches: &Caches, ns: &str, fqdn: &str| {
        let key = caches.outbound.keys().find(|k| k.namespace == ns).expect("key").clone();
        caches.outbound[&key].routes_parts.service(fqdn).cloned().expect("piece")
    };
    let svc5 = "svc-5.team-5.svc.cluster.local";
    assert!(Arc::ptr_eq(&piece(&caches, "team-6", svc5), &piece(&caches, "team-7", svc5)));
    assert!(!Arc::ptr_eq(&piece(&caches, "team-5", svc5), &piece(&caches, "team-7", svc5)));
    // svc-0 reads the client's namespace: team-1's differs from team-2's.
    let svc0 = "svc-0.team-0.svc.cluster.local";
    assert!(!Arc::ptr_eq(&piece(&caches, "team-1", svc0), &piece(&caches, "team-2", svc0)));
    // 8 services seen from 8 namespaces: each service's routes twice (svc-0's once per
    // namespace), its 3 clusters and their endpoints once (svc-2's twice), not 8 times.
    assert_eq!(caches.pieces.counts(), [7 * 2 + 8, 8 * 3 + 3, 8 * 3 + 3]);

    let mut generation = 1;
    let mut step = |yaml: &str, ws: &[Workload], caches: &mut Caches, last: &mut Pushes, what: &str| {
        generation += 1;
        let w = world(resources(yaml), ws, generation);
        let (next, _) = compute(&w, caches, &mesh);
        assert_as_alone(&w, &next, &mesh);
        // Every delta applied to what the proxy held gives what it should hold now.
        for (id, now) in &next.by_proxy {
            let Some(before) = last.by_proxy.get(id) else { continue };
            for t in [ConfigType::Routes, ConfigType::Endpoints] {
                let (old, new) = (&before.parts[slot(t)], &now.parts[slot(t)]);
                let Some(d) = now.deltas[slot(t)].as_ref().filter(|d| d.base == old.version) else { continue };
                let Ok(MeshdMessage::Push(push)) =
                    serde_json::from_slice::<MeshdMessage>(&frame(1, &[Entry::Delta(t, d)]))
                else {
                    panic!("{what}: not a push")
                };
                let rebuilt = match t {
                    ConfigType::Routes => {
                        let mut held: mesh_api::proxy_config::Routes =
                            serde_json::from_slice(&old.json()).expect("routes");
                        let d = push.routes_delta.expect("routes delta");
                        assert_eq!(d.version, new.version);
                        d.apply(&mut held).expect("applies");
                        serde_json::to_vec(&held).expect("json")
                    }
                    _ => {
                        let mut held: mesh_api::proxy_config::Endpoints =
                            serde_json::from_slice(&old.json()).expect("endpoints");
                        let d = push.endpoints_delta.expect("endpoints delta");
                        assert_eq!(d.version, new.version);
                        for gone in &d.removed {
                            held.clusters.remove(gone);
                        }
                        held.clusters.extend(d.updated);
                        serde_json::to_vec(&held).expect("json")
                    }
                };
                assert!(rebuilt == new.json(), "{what}: {id}: {t} delta does not rebuild the new part");
            }
        }
        *last = next;
    };

    // Weights of one service.
    yaml = yaml.replacen("weight: 90}", "weight: 75}", 1).replacen("weight: 10}", "weight: 25}", 1);
    step(&yaml, &ws, &mut caches, &mut last, "weights");
    // A replica of svc-3 comes: only svc-3's endpoint pieces are new.
    let before: Vec<_> = caches.endpoints.iter().map(|(k, e)| (k.clone(), e.parts.clone())).collect();
    ws.push(workload(100, "team-3", &[("app", "svc-3"), ("version", "v2")]));
    step(&yaml, &ws, &mut caches, &mut last, "a new replica");
    for (key, old) in before {
        let now = &caches.endpoints[&key];
        for (a, b) in old.clusters.iter().zip(&now.parts.clusters) {
            assert_eq!(Arc::ptr_eq(a, b), !a.name.ends_with("svc-3.team-3.svc.cluster.local"), "{}", a.name);
        }
    }
    // A replica goes and weights change in the same batch.
    ws.retain(|w| w.name != "w-1");
    yaml = yaml.replace("weight: 75}", "weight: 60}").replace("weight: 25}", "weight: 40}");
    step(&yaml, &ws, &mut caches, &mut last, "a replica gone and weights");
    // A proxy in a namespace no one was in.
    ws.push(workload(200, "team-new", &[("app", "client")]));
    step(&yaml, &ws, &mut caches, &mut last, "a new namespace");
    // The client namespace's DestinationRule changes: clusters and endpoints are made again.
    yaml = yaml.replace("simple: RANDOM", "simple: LEAST_REQUEST");
    step(&yaml, &ws, &mut caches, &mut last, "a DestinationRule");
    // A label change of a workload (v1 -> v2) moves it between subsets.
    for w in ws.iter_mut().filter(|w| w.name == "w-4") {
        w.labels.insert("version".into(), "v2".into());
    }
    step(&yaml, &ws, &mut caches, &mut last, "a relabelled workload");
}
