//! The Gateway API on Kubernetes, as Istio's controller runs it (leader only): every Gateway
//! of a class we run gets a gateway proxy (a ServiceAccount, Deployment and Service named
//! `NAME-istio`, owned by the Gateway so they go with it), and every Gateway API object gets
//! the status conditions Istio writes (`Accepted`, `ResolvedRefs`, `Programmed`, with Istio's
//! reasons). Writes are server-side applies and status merge patches; failures are retried.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use kube::api::{Api, DynamicObject, Patch, PatchParams};
use mesh_api::gateway_api::{self as g, GATEWAY_NAME_LABEL};
use mesh_api::{Key, Kind, Resource};
use serde_json::{Value, json};
use tokio::sync::watch;
use tracing::{debug, warn};

use crate::kubernetes::api_resource;
use crate::state::State;

/// The version meshd writes each Gateway API kind at.
fn api_of(kind: Kind) -> Option<kube::api::ApiResource> {
    let (version, plural) = match kind {
        Kind::GatewayClass => ("v1", "gatewayclasses"),
        Kind::KubeGateway => ("v1", "gateways"),
        Kind::HttpRoute => ("v1", "httproutes"),
        Kind::GrpcRoute => ("v1", "grpcroutes"),
        Kind::TcpRoute => ("v1alpha2", "tcproutes"),
        Kind::TlsRoute => ("v1alpha2", "tlsroutes"),
        _ => return None,
    };
    Some(api_resource(g::GROUP, version, kind.as_str(), plural))
}

/// Conditions without their timestamps and generations, to compare what is there with what
/// would be written.
fn strip(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| *k != "lastTransitionTime" && *k != "observedGeneration")
                .map(|(k, v)| (k.clone(), strip(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(strip).collect()),
        other => other.clone(),
    }
}

/// Stamp every condition with the time and the generation it describes.
fn stamp(v: &mut Value, now: &str, generation: Option<i64>) {
    match v {
        Value::Object(m) => {
            if m.contains_key("type") && m.contains_key("reason") {
                m.insert("lastTransitionTime".into(), json!(now));
                if let Some(g) = generation {
                    m.insert("observedGeneration".into(), json!(g));
                }
            }
            for v in m.values_mut() {
                stamp(v, now, generation);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|v| stamp(v, now, generation)),
        _ => {}
    }
}

/// A route's `parents` written by other controllers stay as they are; ours are replaced.
fn keep_others(current: Option<&Value>, mut wanted: Value) -> Value {
    let others: Vec<Value> = current
        .and_then(|s| s.get("parents"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|p| p.get("controllerName").and_then(Value::as_str) != Some(g::CONTROLLER))
        .cloned()
        .collect();
    if let Some(parents) = wanted.get_mut("parents").and_then(Value::as_array_mut) {
        parents.extend(others);
    }
    wanted
}

fn status_of(r: &Resource) -> Option<&Value> {
    match r {
        Resource::GatewayClass(o) => o.status.as_ref(),
        Resource::KubeGateway(o) => o.status.as_ref(),
        Resource::HttpRoute(o) => o.status.as_ref(),
        Resource::GrpcRoute(o) => o.status.as_ref(),
        Resource::TcpRoute(o) | Resource::TlsRoute(o) => o.status.as_ref(),
        _ => None,
    }
}

/// The gateway proxy of Gateway `key`: its ServiceAccount, Deployment and Service.
pub fn deployment(
    key: &Key,
    gw: &mesh_api::Object<g::KubeGatewaySpec>,
    settings: &crate::manifest::Settings,
) -> Vec<Value> {
    let name = format!("{}-istio", key.name);
    let ns = &key.namespace;
    let labels = json!({GATEWAY_NAME_LABEL: key.name, "istio.io/gateway-name": key.name, "app.kubernetes.io/managed-by": "meshd"});
    let owner = json!([{"apiVersion": format!("{}/v1", g::GROUP), "kind": "Gateway", "name": key.name,
        "uid": gw.metadata.uid.clone().unwrap_or_default(), "controller": true}]);
    let mut ports: Vec<u32> = gw.spec.listeners.iter().map(|l| l.port).collect();
    ports.sort_unstable();
    ports.dedup();
    let mut args: Vec<String> = vec![
        "--workload".into(),
        "$(POD_NAME)".into(),
        "--namespace".into(),
        ns.clone(),
        "--service-account".into(),
        name.clone(),
        "--labels".into(),
        format!("{GATEWAY_NAME_LABEL}={}", key.name),
        "--no-outbound".into(),
        "--metrics".into(),
        "0.0.0.0:15020".into(),
    ];
    for p in &ports {
        args.extend(["--gateway-port".into(), format!("{p}=0.0.0.0:{p}")]);
    }
    args.extend(crate::inject::discovery_args(&settings.namespace));
    let container_ports: Vec<Value> = ports.iter().map(|p| json!({"containerPort": p, "protocol": "TCP"})).collect();
    let service_ports: Vec<Value> = gw
        .spec
        .listeners
        .iter()
        .map(|l| json!({"name": l.name, "port": l.port, "targetPort": l.port, "protocol": "TCP"}))
        .collect();
    let meta =
        |kind_name: &str| json!({"name": kind_name, "namespace": ns, "labels": labels, "ownerReferences": owner});
    vec![
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta(&name)}),
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta(&name),
            "spec": {
                "selector": {"matchLabels": {GATEWAY_NAME_LABEL: key.name}},
                "template": {
                    "metadata": {"labels": labels, "annotations": {"sidecar.istio.io/inject": "false"}},
                    "spec": {
                        "serviceAccountName": name,
                        // Listener ports below 1024 without root, as Istio's gateways do.
                        "securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"},
                            "sysctls": [{"name": "net.ipv4.ip_unprivileged_port_start", "value": "0"}]},
                        "containers": [{
                            "name": "istio-proxy",
                            "image": format!("{}/proxy:{}", settings.hub, settings.tag),
                            "args": args,
                            "env": [{"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
                            "volumeMounts": crate::inject::discovery_mounts(),
                            "ports": container_ports,
                            "resources": {"requests": {"cpu": "100m", "memory": "32Mi"}, "limits": {"memory": "256Mi"}},
                            "securityContext": {"allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true,
                                "capabilities": {"drop": ["ALL"]}, "runAsUser": 1337, "runAsGroup": 1337}
                        }],
                        "volumes": crate::inject::discovery_volumes()
                    }
                }
            }
        }),
        json!({
            "apiVersion": "v1", "kind": "Service", "metadata": meta(&name),
            "spec": {"type": "LoadBalancer", "selector": {GATEWAY_NAME_LABEL: key.name}, "ports": service_ports}
        }),
    ]
}

async fn apply_object(client: &kube::Client, obj: &Value) -> Result<(), kube::Error> {
    let (kind, api_version) = (obj["kind"].as_str().unwrap_or(""), obj["apiVersion"].as_str().unwrap_or(""));
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    let plural = match kind {
        "ServiceAccount" => "serviceaccounts",
        "Deployment" => "deployments",
        _ => "services",
    };
    let ar = api_resource(group, version, kind, plural);
    let ns = obj["metadata"]["namespace"].as_str().unwrap_or("default");
    let name = obj["metadata"]["name"].as_str().unwrap_or("");
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &ar);
    api.patch(name, &PatchParams::apply("meshd").force(), &Patch::Apply(obj)).await.map(|_| ())
}

/// Keep the gateway deployments and the status conditions in step with the world, while
/// leading.
pub async fn run(client: kube::Client, state: Arc<State>, mut leader: watch::Receiver<bool>) {
    let settings = crate::api::injection_settings();
    let mut world_rx = state.subscribe();
    // What was last written, so an unchanged world writes nothing.
    let mut statuses: HashMap<Key, Value> = HashMap::new();
    let mut deployed: HashMap<Key, Vec<Value>> = HashMap::new();
    loop {
        if !*leader.borrow_and_update() {
            statuses.clear();
            deployed.clear();
            if !crate::leader::until_leading(&mut leader).await {
                return;
            }
        }
        let world = world_rx.borrow_and_update().clone();
        let now = crate::kubernetes::rfc3339_now();
        let mut failed = false;
        let mut conditions = crate::translate::gateway_api::all_conditions(&world.resources, &world.namespace_labels);
        for (key, r) in world.resources.iter().filter(|(k, _)| k.kind.is_gateway_api()) {
            if let (Some(wanted), Some(ar)) =
                (conditions.remove(key).map(|w| keep_others(status_of(r), w)), api_of(key.kind))
                && status_of(r).map(strip) != Some(strip(&wanted))
                && statuses.get(key) != Some(&wanted)
            {
                let mut body = wanted.clone();
                stamp(&mut body, &now, r.meta().generation);
                let api: Api<DynamicObject> = if key.kind == Kind::GatewayClass {
                    Api::all_with(client.clone(), &ar)
                } else {
                    Api::namespaced_with(client.clone(), &key.namespace, &ar)
                };
                match api.patch_status(&key.name, &PatchParams::default(), &Patch::Merge(json!({"status": body}))).await
                {
                    Ok(_) => {
                        debug!(%key, "wrote status");
                        statuses.insert(key.clone(), wanted);
                    }
                    Err(e) => {
                        warn!(%key, error = %e, "cannot write the status; retrying");
                        failed = true;
                    }
                }
            }
            if let Resource::KubeGateway(gw) = r
                && served(&world.resources, &gw.spec.gateway_class_name)
            {
                let objects = deployment(key, gw, &settings);
                if deployed.get(key) != Some(&objects) {
                    let mut ok = true;
                    for o in &objects {
                        if let Err(e) = apply_object(&client, o).await {
                            warn!(%key, error = %e, "cannot apply the gateway deployment; retrying");
                            ok = false;
                            failed = true;
                            break;
                        }
                    }
                    if ok {
                        deployed.insert(key.clone(), objects);
                    }
                }
            }
        }
        tokio::select! {
            r = world_rx.changed() => if r.is_err() { return },
            r = leader.changed() => if r.is_err() { return },
            _ = crate::kubernetes::retry_if(failed, Duration::from_secs(5)) => {}
        }
    }
}

/// Whether the GatewayClass `class` is ours: its controller name, or Istio's built-in `istio`.
fn served(resources: &crate::store::Resources, class: &str) -> bool {
    let key = Key { kind: Kind::GatewayClass, namespace: "default".into(), name: class.into() };
    match resources
        .get(&key)
        .or_else(|| resources.iter().find(|(k, _)| k.kind == Kind::GatewayClass && k.name == class).map(|(_, r)| r))
    {
        Some(Resource::GatewayClass(o)) => o.spec.controller_name == g::CONTROLLER,
        _ => class == "istio",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn another_controllers_parents_are_kept() {
        let current = json!({"parents": [
            {"controllerName": "example.com/other", "parentRef": {"name": "theirs"}, "conditions": []},
            {"controllerName": g::CONTROLLER, "parentRef": {"name": "stale"}, "conditions": []}
        ]});
        let wanted =
            json!({"parents": [{"controllerName": g::CONTROLLER, "parentRef": {"name": "ours"}, "conditions": []}]});
        let merged = keep_others(Some(&current), wanted);
        let names: Vec<&str> = merged["parents"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| p["parentRef"]["name"].as_str())
            .collect();
        assert_eq!(names, ["ours", "theirs"]);
    }

    #[test]
    fn a_gateway_gets_a_proxy_on_its_listener_ports_owned_by_it() {
        let yaml = "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: bookinfo-gateway, uid: u-1}\nspec:\n  gatewayClassName: istio\n  listeners:\n  - {name: http, port: 80, protocol: HTTP}\n  - {name: tcp, port: 31400, protocol: TCP}\n";
        let doc = mesh_api::resource::parse_yaml_stream(yaml).expect("yaml").remove(0);
        let Ok(mesh_api::Parsed::Supported(Resource::KubeGateway(gw))) =
            mesh_api::resource::parse_document(doc, "default", 0)
        else {
            panic!("not a Gateway")
        };
        let key = Key { kind: Kind::KubeGateway, namespace: "default".into(), name: "bookinfo-gateway".into() };
        let objs = deployment(&key, &gw, &crate::manifest::Settings::defaults());
        let d = &objs[1];
        assert_eq!(d["metadata"]["name"], "bookinfo-gateway-istio");
        assert_eq!(d["metadata"]["ownerReferences"][0]["uid"], "u-1");
        let args: Vec<&str> = d["spec"]["template"]["spec"]["containers"][0]["args"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        assert!(args.windows(2).any(|w| w == ["--gateway-port", "80=0.0.0.0:80"]), "{args:?}");
        assert!(args.windows(2).any(|w| w == ["--gateway-port", "31400=0.0.0.0:31400"]), "{args:?}");
        assert!(args.contains(&"gateway.networking.k8s.io/gateway-name=bookinfo-gateway"), "{args:?}");
        assert_eq!(objs[2]["spec"]["ports"][1]["port"], 31400);
    }
}
