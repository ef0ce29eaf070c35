use std::collections::BTreeMap;

use mesh_api::Parsed;
use mesh_api::protocol::{InboundPort, Workload};
use mesh_api::rollout::Phase;

use super::*;

fn resources(yaml: &str) -> Resources {
    let mut out = Resources::new();
    for (i, doc) in mesh_api::resource::parse_yaml_stream(yaml).expect("yaml").into_iter().enumerate() {
        if let Ok(Parsed::Supported(r)) = mesh_api::resource::parse_document(doc, "default", i) {
            out.insert(r.key(), r);
        }
    }
    out
}

fn workload(name: &str, labels: &[(&str, &str)], port: u16, listen_port: u16) -> Workload {
    Workload {
        name: name.into(),
        namespace: "default".into(),
        service_account: "default".into(),
        labels: labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<BTreeMap<_, _>>(),
        ports: vec![InboundPort { port, listen: ([127, 0, 0, 1], listen_port).into(), name: None }],
        admin: None,
        outbound: None,
        pid: 0,
        proxy_version: "test".into(),
        without_proxy: false,
        gateway_ports: Vec::new(),
    }
}

const SERVICE: &str = "apiVersion: v1\nkind: Service\nmetadata: {name: reviews}\nspec:\n  selector: {app: reviews}\n  ports: [{name: http, port: 9080}]\n";
const DR: &str = "---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: reviews}\nspec:\n  host: reviews\n  subsets:\n  - {name: v1, labels: {version: v1}}\n  - {name: v2, labels: {version: v2}}\n";

fn fleet() -> Vec<Workload> {
    vec![
        workload("reviews-v1", &[("app", "reviews"), ("version", "v1")], 9080, 30001),
        workload("reviews-v2", &[("app", "reviews"), ("version", "v2")], 9080, 30002),
        workload("other", &[("app", "other")], 9080, 30003),
        workload("client", &[("app", "productpage")], 9080, 30004),
    ]
}

#[test]
fn without_virtual_service_all_endpoints_of_the_service() {
    let ws = fleet();
    let cfg = translate(&resources(SERVICE), &ws, &ws[3]);
    let vh = &cfg.routes.virtual_hosts[0];
    assert_eq!(vh.name, "reviews.default.svc.cluster.local:9080");
    assert!(vh.domains.contains(&"reviews".to_string()));
    assert_eq!(vh.routes.len(), 1);
    let cluster = &vh.routes[0].clusters[0].cluster;
    assert_eq!(cluster, "outbound|9080||reviews.default.svc.cluster.local");
    let eps: Vec<_> = cfg.endpoints.clusters[cluster].iter().map(|e| e.workload.as_str()).collect();
    assert_eq!(eps, ["default/reviews-v1", "default/reviews-v2"]);
}

#[test]
fn weighted_subsets_from_virtual_service() {
    let yaml = format!(
        "{SERVICE}{DR}---\napiVersion: networking.istio.io/v1alpha3\nkind: VirtualService\nmetadata: {{name: reviews}}\nspec:\n  hosts: [reviews]\n  http:\n  - match: [{{headers: {{end-user: {{exact: jason}}}}}}]\n    route: [{{destination: {{host: reviews, subset: v2}}}}]\n  - route:\n    - {{destination: {{host: reviews, subset: v1}}, weight: 90}}\n    - {{destination: {{host: reviews, subset: v2}}, weight: 10}}\n"
    );
    let ws = fleet();
    let cfg = translate(&resources(&yaml), &ws, &ws[3]);
    let vh = &cfg.routes.virtual_hosts[0];
    assert_eq!(vh.routes.len(), 2);
    assert_eq!(vh.routes[0].matches[0].headers[0].name, "end-user");
    assert_eq!(vh.routes[0].clusters[0].weight, 100);
    let weights: Vec<_> = vh.routes[1].clusters.iter().map(|c| (c.cluster.as_str(), c.weight)).collect();
    assert_eq!(
        weights,
        [
            ("outbound|9080|v1|reviews.default.svc.cluster.local", 90),
            ("outbound|9080|v2|reviews.default.svc.cluster.local", 10)
        ]
    );
    let v1 = &cfg.endpoints.clusters["outbound|9080|v1|reviews.default.svc.cluster.local"];
    assert_eq!(v1.len(), 1);
    assert_eq!(v1[0].address.port(), 30001);
}

#[test]
fn undefined_subset_has_no_endpoints() {
    let yaml = format!(
        "{SERVICE}{DR}---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: reviews}}\nspec:\n  hosts: [reviews]\n  http:\n  - route: [{{destination: {{host: reviews, subset: v9}}}}]\n"
    );
    let ws = fleet();
    let cfg = translate(&resources(&yaml), &ws, &ws[3]);
    assert!(cfg.endpoints.clusters["outbound|9080|v9|reviews.default.svc.cluster.local"].is_empty());
}

#[test]
fn short_names_only_from_the_same_namespace() {
    let ws = fleet();
    let mut other_ns = ws[3].clone();
    other_ns.namespace = "prod".into();
    let cfg = translate(&resources(SERVICE), &ws, &other_ns);
    let domains = &cfg.routes.virtual_hosts[0].domains;
    assert!(!domains.contains(&"reviews".to_string()));
    assert!(domains.contains(&"reviews.default".to_string()));
}

#[test]
fn port_and_source_label_matches_are_resolved_per_proxy() {
    let yaml = format!(
        "{SERVICE}{DR}---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: reviews}}\nspec:\n  hosts: [reviews]\n  http:\n  - match: [{{sourceLabels: {{app: other}}}}]\n    route: [{{destination: {{host: reviews, subset: v2}}}}]\n  - match: [{{port: 1234}}]\n    route: [{{destination: {{host: reviews, subset: v2}}}}]\n  - route: [{{destination: {{host: reviews, subset: v1}}}}]\n"
    );
    let ws = fleet();
    let for_client = translate(&resources(&yaml), &ws, &ws[3]);
    assert_eq!(for_client.routes.virtual_hosts[0].routes.len(), 1);
    let for_other = translate(&resources(&yaml), &ws, &ws[2]);
    assert_eq!(for_other.routes.virtual_hosts[0].routes.len(), 2);
}

#[test]
fn versions_are_stable_and_content_addressed() {
    let ws = fleet();
    let a = translate(&resources(SERVICE), &ws, &ws[3]);
    let b = translate(&resources(SERVICE), &ws, &ws[3]);
    assert_eq!(version_of(&a.routes), version_of(&b.routes));
    let c = translate(&resources(SERVICE), &ws[..1], &ws[3]);
    assert_eq!(version_of(&a.routes), version_of(&c.routes));
    assert_ne!(version_of(&a.endpoints), version_of(&c.endpoints));
}

#[test]
fn bookinfo_translates() {
    let Some(corpus) = mesh_api::corpus::for_test("bookinfo_translates") else { return };
    let base = corpus.join("bookinfo");
    let mut yaml = String::new();
    for f in [
        "platform/kube/bookinfo.yaml",
        "networking/destination-rule-all.yaml",
        "networking/virtual-service-reviews-90-10.yaml",
    ] {
        let path = base.join(f);
        yaml.push_str(&std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())));
        yaml.push_str("\n---\n");
    }
    let res = resources(&yaml);
    assert!(res.len() > 4 + 4, "services, rules and the virtual service: {}", res.len());
    let ws = fleet();
    let cfg = translate(&res, &ws, &ws[3]);
    let reviews = cfg.routes.virtual_hosts.iter().find(|v| v.name.starts_with("reviews.")).expect("reviews vhost");
    let weights: Vec<_> = reviews.routes[0].clusters.iter().map(|c| c.weight).collect();
    assert_eq!(weights, [90, 10]);
}

fn mode_of(cfg: &ProxyConfig, port: u16) -> PeerMode {
    cfg.listeners.inbound.iter().find(|l| l.port == port).map(|l| l.mtls).expect("listener")
}

#[test]
fn peer_authentication_precedence_mesh_namespace_workload_port() {
    let ws = fleet();
    let none = translate(&resources(SERVICE), &ws, &ws[0]);
    assert_eq!(mode_of(&none, 9080), PeerMode::Permissive, "PERMISSIVE by default, as in Istio");

    let mesh = "---\napiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: default, namespace: istio-system}\nspec: {mtls: {mode: STRICT}}\n";
    let cfg = translate(&resources(&format!("{SERVICE}{mesh}")), &ws, &ws[0]);
    assert_eq!(mode_of(&cfg, 9080), PeerMode::Strict);

    let ns = "---\napiVersion: security.istio.io/v1beta1\nkind: PeerAuthentication\nmetadata: {name: ns}\nspec: {mtls: {mode: PERMISSIVE}}\n";
    let cfg = translate(&resources(&format!("{SERVICE}{mesh}{ns}")), &ws, &ws[0]);
    assert_eq!(mode_of(&cfg, 9080), PeerMode::Permissive, "namespace overrides mesh");

    let wl = "---\napiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: reviews}\nspec:\n  selector: {matchLabels: {app: reviews}}\n  mtls: {mode: UNSET}\n  portLevelMtls:\n    \"9080\": {mode: DISABLE}\n";
    let cfg = translate(&resources(&format!("{SERVICE}{mesh}{ns}{wl}")), &ws, &ws[0]);
    assert_eq!(mode_of(&cfg, 9080), PeerMode::Disable, "port level wins");
    let other = translate(&resources(&format!("{SERVICE}{mesh}{ns}{wl}")), &ws, &ws[2]);
    assert_eq!(mode_of(&other, 9080), PeerMode::Permissive, "the selector does not select `other`");

    // Clients use plaintext to a DISABLE port (auto mTLS), mTLS elsewhere.
    let client = translate(&resources(&format!("{SERVICE}{mesh}{ns}{wl}")), &ws, &ws[3]);
    let eps = &client.endpoints.clusters["outbound|9080||reviews.default.svc.cluster.local"];
    assert!(eps.iter().all(|e| !e.mtls), "{eps:?}");
    let client = translate(&resources(&format!("{SERVICE}{mesh}")), &ws, &ws[3]);
    let eps = &client.endpoints.clusters["outbound|9080||reviews.default.svc.cluster.local"];
    assert!(eps.iter().all(|e| e.mtls && e.identity == "spiffe://cluster.local/ns/default/sa/default"), "{eps:?}");
}

#[test]
fn destination_rule_tls_mode_overrides_auto_mtls() {
    let ws = fleet();
    let dr = |mode: &str| {
        format!(
            "---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {{name: reviews}}\nspec:\n  host: reviews\n  trafficPolicy: {{tls: {{mode: {mode}}}}}\n  subsets:\n  - name: v1\n    labels: {{version: v1}}\n    trafficPolicy: {{tls: {{mode: ISTIO_MUTUAL}}}}\n"
        )
    };
    let vs = "---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: reviews}\nspec:\n  hosts: [reviews]\n  http:\n  - route:\n    - destination: {host: reviews, subset: v1}\n      weight: 50\n    - destination: {host: reviews}\n      weight: 50\n";
    let cfg = translate(&resources(&format!("{SERVICE}{}{vs}", dr("DISABLE"))), &ws, &ws[3]);
    let all = &cfg.endpoints.clusters["outbound|9080||reviews.default.svc.cluster.local"];
    assert!(all.iter().all(|e| !e.mtls), "DISABLE at the top level");
    let v1 = &cfg.endpoints.clusters["outbound|9080|v1|reviews.default.svc.cluster.local"];
    assert!(v1.iter().all(|e| e.mtls), "ISTIO_MUTUAL on the subset wins");
}

#[test]
fn authorization_policies_and_jwt_rules_are_scoped_like_istio() {
    let ws = fleet();
    let yaml = format!(
        "{SERVICE}---\napiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {{name: mesh-deny, namespace: istio-system}}\nspec:\n  action: DENY\n  rules: [{{to: [{{operation: {{methods: [DELETE]}}}}]}}]\n---\napiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {{name: reviews-allow}}\nspec:\n  selector: {{matchLabels: {{app: reviews}}}}\n  rules: [{{from: [{{source: {{serviceAccounts: [bookinfo-productpage]}}}}]}}]\n---\napiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {{name: elsewhere, namespace: other}}\nspec: {{}}\n---\napiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {{name: ext}}\nspec:\n  action: CUSTOM\n  provider: {{name: opa}}\n  rules: [{{}}]\n---\napiVersion: security.istio.io/v1\nkind: RequestAuthentication\nmetadata: {{name: jwt}}\nspec:\n  selector: {{matchLabels: {{app: reviews}}}}\n  jwtRules:\n  - {{issuer: a, jwksUri: 'https://a.example/jwks'}}\n  - {{issuer: b}}\n"
    );
    let r = resources(&yaml);
    let reviews = translate(&r, &ws, &ws[0]);
    let names: Vec<_> = reviews.listeners.policies.iter().map(|p| (p.name.as_str(), p.action)).collect();
    assert_eq!(names, [("default/reviews-allow", AuthzAction::Allow), ("istio-system/mesh-deny", AuthzAction::Deny)]);
    let allow = &reviews.listeners.policies[0];
    assert_eq!(allow.rules[0].from[0].source.service_accounts, ["default/bookinfo-productpage"], "qualified");
    let issuers: Vec<_> = reviews.listeners.jwt.iter().map(|j| j.issuer.as_str()).collect();
    assert_eq!(issuers, ["a"], "a rule without jwks or jwksUri is left out");
    let other = translate(&r, &ws, &ws[2]);
    let names: Vec<_> = other.listeners.policies.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["istio-system/mesh-deny"]);
    assert!(other.listeners.jwt.is_empty());
}

#[test]
fn delegated_rules_are_served_under_the_root_match() {
    let ws = fleet();
    let yaml = format!(
        "{SERVICE}{DR}---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: root}}\nspec:\n  hosts: [reviews]\n  http:\n  - match: [{{uri: {{prefix: /api}}}}]\n    delegate: {{name: api, namespace: default}}\n  - route: [{{destination: {{host: reviews, subset: v1}}}}]\n---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: api}}\nspec:\n  http:\n  - match: [{{headers: {{end-user: {{exact: jason}}}}}}]\n    route: [{{destination: {{host: reviews, subset: v2}}}}]\n  - route: [{{destination: {{host: reviews, subset: v1}}}}]\n"
    );
    let cfg = translate(&resources(&yaml), &ws, &ws[3]);
    let routes = &cfg.routes.virtual_hosts[0].routes;
    assert_eq!(routes.len(), 3, "{routes:#?}");
    // jason under /api -> v2: the root's uri prefix and the delegate's header, together.
    let m = &routes[0].matches[0];
    assert_eq!(m.uri, Some(StringMatcher::Prefix("/api".into())));
    assert_eq!(m.headers[0].name, "end-user");
    assert!(routes[0].clusters[0].cluster.contains("|v2|"));
    assert!(routes[0].name.contains("delegated from default/root"), "{}", routes[0].name);
    // the delegate's catch-all only under /api
    assert_eq!(routes[1].matches[0].uri, Some(StringMatcher::Prefix("/api".into())));
    assert!(routes[2].matches.is_empty());
}

#[test]
fn connection_pool_settings_reach_the_cluster() {
    let ws = fleet();
    let yaml = format!(
        "{SERVICE}---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {{name: reviews}}\nspec:\n  host: reviews\n  trafficPolicy:\n    connectionPool:\n      tcp: {{maxConnections: 10, connectTimeout: 250ms}}\n      http: {{http1MaxPendingRequests: 5, maxRetries: 3, idleTimeout: 30s, maxRequestsPerConnection: 1}}\n    loadBalancer: {{simple: LEAST_REQUEST}}\n    outlierDetection: {{consecutive5xxErrors: 3, baseEjectionTime: 10s}}\n"
    );
    let cfg = translate(&resources(&yaml), &ws, &ws[3]);
    let c = &cfg.clusters.clusters[0];
    assert_eq!(c.lb_policy, LbPolicy::LeastRequest);
    let l = c.limits.as_ref().expect("limits");
    assert_eq!((l.max_connections, l.max_pending, l.max_retries), (Some(10), Some(5), Some(3)));
    assert_eq!((l.connect_timeout_ms, l.idle_timeout_ms, l.no_reuse), (Some(250), Some(30_000), true));
    let o = c.outlier.as_ref().expect("outlier");
    assert_eq!((o.consecutive_5xx, o.base_ejection_ms, o.max_ejection_percent), (Some(3), 10_000, 10));
}

#[test]
fn a_named_target_port_selects_the_container_port_of_that_name_and_pods_without_proxy_get_plain_text() {
    let yaml = "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec:\n  clusterIP: 10.96.3.4\n  selector: {app: web}\n  ports: [{name: http, port: 80, targetPort: web-port}]\n";
    let mut named = workload("web-1", &[("app", "web")], 8080, 8080);
    named.ports[0].name = Some("web-port".into());
    named.without_proxy = true;
    let unnamed = workload("web-2", &[("app", "web")], 8080, 8081);
    let ws = vec![named, unnamed, workload("client", &[("app", "client")], 9080, 30004)];
    let cfg = translate(&resources(yaml), &ws, &ws[2]);
    let eps = &cfg.endpoints.clusters["outbound|80||web.default.svc.cluster.local"];
    assert_eq!(eps.iter().map(|e| e.workload.as_str()).collect::<Vec<_>>(), ["default/web-1"]);
    assert!(!eps[0].mtls, "a pod without a proxy is reached in plain text");
    assert!(cfg.routes.virtual_hosts[0].domains.contains(&"10.96.3.4".to_string()), "the cluster IP names it");
}

#[test]
fn listeners_carry_the_services_of_each_port_and_the_mesh_request_settings() {
    let ws = fleet();
    let mesh = MeshConfig {
        path_normalization: mesh_api::proxy_config::PathNormalization {
            normalization: mesh_api::proxy_config::Normalization::MergeSlashes,
            escaped_slashes: mesh_api::proxy_config::EscapedSlashes::RejectRequest,
        },
        idle_timeout: Some(std::time::Duration::from_secs(90)),
        ..MeshConfig::default()
    };
    let two = format!(
        "{SERVICE}---\napiVersion: v1\nkind: Service\nmetadata: {{name: reviews-canary}}\nspec:\n  selector: {{version: v2}}\n  ports: [{{name: http, port: 80, targetPort: 9080}}]\n"
    );
    let cfg = translate_with(&resources(&two), &ws, &ws[1], &mesh);
    assert_eq!(
        cfg.listeners.inbound[0].services,
        ["reviews-canary.default.svc.cluster.local", "reviews.default.svc.cluster.local"]
    );
    assert_eq!(cfg.listeners.path_normalization, mesh.path_normalization);
    assert_eq!(cfg.listeners.idle_timeout_ms, Some(90_000));
    let plain = translate(&resources(SERVICE), &ws, &ws[2]);
    assert!(plain.listeners.inbound[0].services.is_empty(), "no Service selects `other`");
    assert!(plain.listeners.path_normalization.is_default() && plain.listeners.idle_timeout_ms.is_none());
}

/// The lookups as they were before the index (a scan of every rule): the reference the
/// indexed lookups must agree with.
fn scan_destination_rule<'a>(index: &Index<'a>, svc: &Svc<'_>, client_ns: &str) -> Option<&'a Key> {
    for ns in [client_ns, svc.namespace, ROOT_NAMESPACE] {
        let found = index
            .destination_rules
            .iter()
            .find(|(k, dr)| k.namespace == ns && host::matches(&host::resolve(&dr.spec.host, &k.namespace), &svc.fqdn));
        if let Some((k, _)) = found {
            return Some(k);
        }
    }
    None
}

fn scan_virtual_service<'a>(index: &Index<'a>, svc: &Svc<'_>, client_ns: &str, kind: RuleKind) -> Option<&'a Key> {
    let applies =
        |vs: &Object<VirtualServiceSpec>| vs.spec.gateways.is_empty() || vs.spec.gateways.iter().any(|g| g == "mesh");
    let host_rank = |k: &Key, vs: &Object<VirtualServiceSpec>| {
        vs.spec
            .hosts
            .iter()
            .filter_map(|h| {
                let h = host::resolve(h, &k.namespace);
                if h == svc.fqdn {
                    Some(0)
                } else if h.starts_with('*') && host::matches(&h, &svc.fqdn) {
                    Some(1)
                } else {
                    None
                }
            })
            .min()
    };
    let ns_rank = |k: &Key| {
        if k.namespace == client_ns {
            0
        } else if k.namespace == svc.namespace {
            1
        } else {
            2
        }
    };
    index
        .virtual_services
        .iter()
        .filter(|(_, vs)| {
            applies(vs)
                && match kind {
                    RuleKind::Tcp => vs.spec.tcp.iter().any(|r| !r.route.is_empty()),
                    RuleKind::Tls => vs.spec.tls.iter().any(|r| !r.route.is_empty()),
                    RuleKind::Http => vs.spec.http.iter().any(|r| {
                        !r.route.is_empty()
                            || r.redirect.is_some()
                            || r.direct_response.is_some()
                            || r.delegate.is_some()
                    }),
                }
        })
        .filter_map(|(k, vs)| host_rank(k, vs).map(|h| ((h, ns_rank(k)), *k)))
        .min_by_key(|(rank, _)| *rank)
        .map(|(_, k)| k)
}

/// The indexed VirtualService and DestinationRule lookups pick exactly what a scan of every
/// rule picks, for every service, client namespace and rule kind: over Istio's bookinfo with
/// all its rule files, and over a generated world of exact, wildcard, duplicate, root-namespace
/// and gateway-only rules.
#[test]
fn indexed_lookups_agree_with_a_scan_of_every_rule() {
    // Istio's bookinfo when the corpus is here; the generated world always.
    let mut worlds = Vec::new();
    if let Some(corpus) = mesh_api::corpus::for_test("indexed_lookups_agree_with_a_scan_of_every_rule (bookinfo)") {
        let dir = corpus.join("bookinfo");
        let mut bookinfo = std::fs::read_to_string(dir.join("platform/kube/bookinfo.yaml")).expect("bookinfo");
        for f in std::fs::read_dir(dir.join("networking")).expect("networking").flatten() {
            if f.path().extension().is_some_and(|e| e == "yaml") {
                bookinfo += "\n---\n";
                bookinfo += &std::fs::read_to_string(f.path()).expect("rule file");
            }
        }
        worlds.push(bookinfo);
    }
    let mut generated = String::new();
    let namespaces = ["default", "prod", "istio-system"];
    for j in 0..30 {
        let ns = namespaces[j % 3];
        generated += &format!(
            "---\napiVersion: v1\nkind: Service\nmetadata: {{name: s{j}, namespace: {ns}}}\nspec:\n  selector: {{app: s{j}}}\n  ports: [{{name: http, port: 80}}, {{name: tcp, port: 81}}]\n"
        );
        let host = match j % 5 {
            0 => format!("s{j}"),
            1 => format!("s{}.{}.svc.cluster.local", j - 1, namespaces[(j - 1) % 3]),
            2 => format!("*.{}.svc.cluster.local", namespaces[(j + 1) % 3]),
            3 => "*".to_string(),
            _ => format!("S{j}.{ns}.svc.cluster.local"),
        };
        let rule = ["http: [{route: [{destination: {host: x}}]}]", "tcp: [{route: [{destination: {host: x}}]}]"][j % 2];
        let gateways = if j % 7 == 0 { "gateways: [edge]" } else { "gateways: []" };
        generated += &format!(
            "---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: vs{j}, namespace: {ns}}}\nspec:\n  hosts: ['{host}']\n  {gateways}\n  {rule}\n"
        );
        generated += &format!(
            "---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {{name: dr{j}, namespace: {}}}\nspec:\n  host: '{host}'\n",
            namespaces[(j / 2) % 3]
        );
    }
    worlds.push(generated);
    for yaml in worlds {
        let res = resources(&yaml);
        let index = Index::new(&res);
        assert!(!index.virtual_services.is_empty() && !index.destination_rules.is_empty());
        for svc in index.services.values() {
            for ns in ["default", "prod", "istio-system", "other"] {
                assert_eq!(
                    index.destination_rule(svc, ns).map(|dr| dr as *const Object<DestinationRuleSpec>),
                    scan_destination_rule(&index, svc, ns)
                        .and_then(|k| index.destination_rules.iter().find(|(kk, _)| *kk == k))
                        .map(|(_, dr)| *dr as *const Object<DestinationRuleSpec>),
                    "DestinationRule for {} from {ns}",
                    svc.fqdn
                );
                for kind in [RuleKind::Http, RuleKind::Tcp, RuleKind::Tls] {
                    assert_eq!(
                        index.virtual_service(svc, ns, kind).map(|(k, _)| k),
                        scan_virtual_service(&index, svc, ns, kind),
                        "{kind:?} VirtualService for {} from {ns}",
                        svc.fqdn
                    );
                }
            }
        }
    }
}

#[test]
fn h2_upgrade_policy_mesh_wide_with_destination_rules_overriding() {
    let ws = fleet();
    let no = "---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: reviews}\nspec:\n  host: reviews\n  trafficPolicy: {connectionPool: {http: {h2UpgradePolicy: DO_NOT_UPGRADE}}}\n";
    let upgrade = MeshConfig { h2_upgrade: true, ..MeshConfig::default() };
    let cfg = translate_with(&resources(SERVICE), &ws, &ws[3], &upgrade);
    assert!(cfg.clusters.clusters.iter().all(|c| c.h2_upgrade), "the mesh's UPGRADE");
    let cfg = translate_with(&resources(&format!("{SERVICE}{no}")), &ws, &ws[3], &upgrade);
    assert!(cfg.clusters.clusters.iter().all(|c| !c.h2_upgrade), "the DestinationRule's DO_NOT_UPGRADE wins");
    let cfg = translate_with(&resources(SERVICE), &ws, &ws[3], &MeshConfig::default());
    assert!(cfg.clusters.clusters.iter().all(|c| !c.h2_upgrade), "Istio's default: no upgrade");
}

#[test]
fn clusters_carry_the_http_version_their_port_names() {
    let ws = fleet();
    let yaml = "apiVersion: v1\nkind: Service\nmetadata: {name: grpc}\nspec:\n  selector: {app: grpc}\n  ports: [{name: grpc, port: 7070}]\n---\napiVersion: v1\nkind: Service\nmetadata: {name: sniffed}\nspec:\n  selector: {app: grpc}\n  ports: [{port: 7071}]\n---\napiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: ext}\nspec:\n  hosts: [ext.example]\n  resolution: STATIC\n  ports: [{number: 80, name: web, protocol: HTTP}, {number: 81, name: h2, protocol: HTTP2}]\n  endpoints: [{address: 127.0.0.1}]\n";
    let cfg = translate(&resources(&format!("{SERVICE}---\n{yaml}")), &ws, &ws[3]);
    let version = |name: &str| cfg.clusters.clusters.iter().find(|c| c.name == name).map(|c| c.app_http);
    use mesh_api::core::AppHttp::{Http1, Http2};
    assert_eq!(version("outbound|9080||reviews.default.svc.cluster.local"), Some(Some(Http1)));
    assert_eq!(version("outbound|7070||grpc.default.svc.cluster.local"), Some(Some(Http2)));
    assert_eq!(version("outbound|7071||sniffed.default.svc.cluster.local"), Some(None), "unnamed: the caller's");
    assert_eq!(version("outbound|80||ext.example"), Some(Some(Http1)));
    assert_eq!(version("outbound|81||ext.example"), Some(Some(Http2)));
}

/// `allowedRoutes.namespaces.from: Selector` takes routes from namespaces whose labels the
/// selector chooses (on Kubernetes, the Namespaces' labels): Istio's shared-gateway setup.
#[test]
fn a_gateway_takes_routes_from_the_namespaces_its_selector_chooses() {
    let yaml = r#"
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: shared, namespace: infra}
spec:
  gatewayClassName: istio
  listeners:
  - name: http
    port: 80
    protocol: HTTP
    allowedRoutes:
      namespaces: {from: Selector, selector: {matchLabels: {shared-gateway-access: "true"}}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r, namespace: store}
spec:
  parentRefs: [{name: shared, namespace: infra}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r, namespace: sandbox}
spec:
  parentRefs: [{name: shared, namespace: infra}]
"#;
    let res = resources(yaml);
    let labels: crate::state::NamespaceLabels =
        [("store".to_string(), [("shared-gateway-access".to_string(), "true".to_string())].into())].into();
    let accepted = |labels: &crate::state::NamespaceLabels, ns: &str| {
        let all = gateway_api::all_conditions(&res, labels);
        let (_, v) = all.iter().find(|(k, _)| k.kind == mesh_api::Kind::HttpRoute && k.namespace == ns).expect("route");
        v["parents"][0]["conditions"][0]["reason"].as_str().unwrap_or("?").to_string()
    };
    assert_eq!(accepted(&labels, "store"), "Accepted");
    assert_eq!(accepted(&labels, "sandbox"), "NotAllowedByListeners");
    assert_eq!(accepted(&Default::default(), "store"), "NotAllowedByListeners", "without the label");
    let gw = gateway_api::all_conditions(&res, &labels);
    let (_, g) = gw.iter().find(|(k, _)| k.kind == mesh_api::Kind::KubeGateway).expect("gateway");
    assert_eq!(g["listeners"][0]["attachedRoutes"], 1, "{g}");
    // The generated VirtualServices: one, for the selected namespace's route.
    let expanded = gateway_api::expand(&res, &labels).expect("expanded");
    let vs: Vec<&Key> = expanded.keys().filter(|k| k.kind == mesh_api::Kind::VirtualService).collect();
    assert_eq!(vs.len(), 1, "{vs:?}");
    assert_eq!(vs[0].namespace, "store");
}

/// `yaml` served with its Rollout at `phase`/`step`: the VirtualServices routing reviews.
fn rollout_served(yaml: &str, phase: Phase, step: usize) -> BTreeMap<String, mesh_api::networking::VirtualServiceSpec> {
    let mut res = resources(yaml);
    for r in res.values_mut() {
        if let Resource::Rollout(o) = r {
            let st = mesh_api::rollout::RolloutStatus { phase, step, of: o.spec.identity(), ..Default::default() };
            o.status = Some(serde_json::to_value(st).expect("status"));
        }
    }
    let expanded = gateway_api::expand(&res, &Default::default()).expect("expanded");
    expanded
        .into_iter()
        .filter_map(|(k, r)| match r {
            Resource::VirtualService(v) => Some((k.name, v.spec)),
            _ => None,
        })
        .collect()
}

/// A route's destinations as (subset, weight).
fn weights(r: &mesh_api::networking::HttpRoute) -> Vec<(String, i64)> {
    r.route.iter().map(|d| (d.destination.subset.clone().unwrap_or_default(), d.weight.unwrap_or(0))).collect()
}

fn sw(v: &[(&str, i64)]) -> Vec<(String, i64)> {
    v.iter().map(|(s, w)| (s.to_string(), *w)).collect()
}

const ROLLOUT: &str = "apiVersion: rollouts.mesh.io/v1alpha1\nkind: Rollout\nmetadata: {name: reviews}\nspec:\n  host: reviews\n  stable: v1\n  canary: v2\n  steps:\n  - matches: {header: {name: x-canary, value: 'yes'}}\n  - mirror: 50\n  - weight: 30\n  - weight: 100\n";

/// A Rollout's routes follow its status: all on stable before it starts, the step's split, an
/// A/B match, a mirror, and nothing of its own once it cannot run.
#[test]
fn a_rollouts_routes_follow_the_step_it_is_at() {
    let at = |phase: Phase, step: usize| rollout_served(ROLLOUT, phase, step).remove("reviews-rollout");
    let fresh = resources(ROLLOUT);
    let fresh = gateway_api::expand(&fresh, &Default::default()).expect("expanded");
    let Some(Resource::VirtualService(fresh)) = fresh.get(&Key {
        kind: mesh_api::Kind::VirtualService,
        namespace: "default".into(),
        name: "reviews-rollout".into(),
    }) else {
        panic!("no VirtualService of the Rollout's own")
    };
    assert_eq!(weights(&fresh.spec.http[0]), sw(&[("v1", 100)]), "before it starts");
    let ab = at(Phase::Progressing, 1).expect("A/B");
    assert_eq!(ab.http.len(), 2);
    assert_eq!(ab.http[0].matches[0].headers["x-canary"].exact.as_deref(), Some("yes"));
    assert_eq!(weights(&ab.http[0]), sw(&[("v2", 100)]));
    assert_eq!(weights(&ab.http[1]), sw(&[("v1", 100)]));
    let shadow = at(Phase::Progressing, 2).expect("mirror");
    assert_eq!(weights(&shadow.http[0]), sw(&[("v1", 100)]));
    assert_eq!(shadow.http[0].mirrors[0].destination.subset.as_deref(), Some("v2"));
    assert_eq!(weights(&at(Phase::Waiting, 3).expect("split").http[0]), sw(&[("v1", 70), ("v2", 30)]));
    assert_eq!(weights(&at(Phase::Promoted, 4).expect("promoted").http[0]), sw(&[("v2", 100)]));
    assert_eq!(weights(&at(Phase::RolledBack, 3).expect("rolled back").http[0]), sw(&[("v1", 100)]));
    assert!(at(Phase::Failed, 0).is_none(), "a Rollout that cannot run routes nothing");
}

/// A VirtualService of the user's routing the host: the Rollout moves only the routes it owns
/// (those sending only to its stable and canary subsets, or those it names), keeping every
/// other field of them, and never touches a hand-written rule it does not own.
#[test]
fn a_rollout_moves_only_the_routes_it_owns_in_the_users_virtual_service() {
    let vs = "---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: reviews}\nspec:\n  hosts: [reviews]\n  http:\n  - name: jason\n    match: [{headers: {end-user: {exact: jason}}}]\n    route: [{destination: {host: reviews, subset: v3}}]\n  - name: old\n    match: [{uri: {prefix: /old}}]\n    redirect: {uri: /new}\n  - name: api\n    match: [{uri: {prefix: /api}}]\n    timeout: 3s\n    retries: {attempts: 2}\n    route: [{destination: {host: reviews, subset: v1, port: {number: 9080}}, headers: {request: {set: {x-from: api}}}}]\n  - name: default\n    route: [{destination: {host: reviews, subset: v1}}]\n";
    let yaml = format!("{ROLLOUT}{vs}");
    let served = |phase: Phase, step: usize| {
        let mut all = rollout_served(&yaml, phase, step);
        assert!(!all.contains_key("reviews-rollout"), "no VirtualService of its own beside the user's");
        all.remove("reviews").expect("the user's VirtualService")
    };
    let names = |v: &mesh_api::networking::VirtualServiceSpec| -> Vec<String> {
        v.http.iter().map(|r| r.name.clone().unwrap_or_default()).collect()
    };
    let split = served(Phase::Progressing, 3);
    assert_eq!(names(&split), ["jason", "old", "api", "default"]);
    assert_eq!(weights(&split.http[0]), sw(&[("v3", 0)]), "the hand-written rule is as written");
    assert!(split.http[1].redirect.is_some());
    let api = &split.http[2];
    assert_eq!(weights(api), sw(&[("v1", 70), ("v2", 30)]));
    assert_eq!((api.timeout.as_deref(), api.retries.as_ref().and_then(|r| r.attempts)), (Some("3s"), Some(2)));
    assert!(api.route.iter().all(|d| d.destination.port.as_ref().is_some_and(|p| p.number == 9080)
        && d.headers.as_ref().is_some_and(|h| h.request.as_ref().is_some_and(|r| r.set["x-from"] == "api"))));
    assert_eq!(weights(&split.http[3]), sw(&[("v1", 70), ("v2", 30)]));
    // A/B: each owned route gets a copy before it taking the marked requests, its own matches kept.
    let ab = served(Phase::Progressing, 1);
    assert_eq!(names(&ab), ["jason", "old", "api-canary", "api", "default-canary", "default"]);
    let m = &ab.http[2].matches[0];
    assert_eq!(
        (m.uri.as_ref().and_then(|u| u.prefix.as_deref()), m.headers["x-canary"].exact.as_deref()),
        (Some("/api"), Some("yes"))
    );
    assert_eq!(weights(&ab.http[2]), sw(&[("v2", 100)]));
    assert_eq!(weights(&ab.http[3]), sw(&[("v1", 100)]));
    // Named routes: only `default` moves, whatever its subsets.
    let named = yaml.replacen("  canary: v2\n", "  canary: v2\n  routes: [default]\n", 1);
    let mut all = rollout_served(&named, Phase::Progressing, 3);
    let v = all.remove("reviews").expect("vs");
    assert_eq!(weights(&v.http[2]), sw(&[("v1", 0)]), "api is not named: as written");
    assert_eq!(weights(&v.http[3]), sw(&[("v1", 70), ("v2", 30)]));
}
