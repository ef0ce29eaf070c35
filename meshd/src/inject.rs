//! Sidecar injection (`mesh inject`, like `istioctl kube-inject`; meshd's injection webhook uses
//! the same `inject_pod`): the `istio-init` init container that installs the capture rules and
//! the `istio-proxy` container, named as Istio names them so Istio's tools and analyzers see a
//! meshed pod. Idempotent: a pod that has the proxy is left as it is; so are pods that opt out
//! (`sidecar.istio.io/inject: "false"`), host-network pods and documents that are not workloads.

use mesh_api::networking::EffectiveProxyConfig;
use serde_json::{Value, json};

use crate::manifest::Settings;

pub const PROXY: &str = "istio-proxy";
pub const INIT: &str = "istio-init";
const TOKEN_VOLUME: &str = "mesh-token";
const TOKEN_DIR: &str = "/var/run/secrets/tokens";
const ROOT_VOLUME: &str = crate::kubernetes::ROOT_CERT_CONFIGMAP;
const ROOT_DIR: &str = "/var/run/secrets/mesh";

/// How a proxy on the cluster reaches meshd: discovery over TLS on 15012, trusting the mesh
/// root from the namespace's `mesh-ca-root-cert` ConfigMap, presenting its projected token.
pub fn discovery_args(namespace: &str) -> Vec<String> {
    vec![
        "--meshd".into(),
        format!("meshd.{namespace}.svc:15012"),
        "--meshd-ca".into(),
        format!("{ROOT_DIR}/{}", crate::kubernetes::ROOT_CERT_KEY),
        "--token-file".into(),
        format!("{TOKEN_DIR}/{TOKEN_VOLUME}"),
    ]
}

/// The volumes `discovery_args` reads: the projected token (audience `mesh`) and the root.
pub fn discovery_volumes() -> Vec<Value> {
    vec![
        json!({"name": TOKEN_VOLUME, "projected": {"sources": [{"serviceAccountToken": {
            "audience": crate::kubernetes::TOKEN_AUDIENCE, "expirationSeconds": 43200, "path": TOKEN_VOLUME}}]}}),
        json!({"name": ROOT_VOLUME, "configMap": {"name": crate::kubernetes::ROOT_CERT_CONFIGMAP}}),
    ]
}

/// Where the proxy container mounts them.
pub fn discovery_mounts() -> Value {
    json!([{"name": TOKEN_VOLUME, "mountPath": TOKEN_DIR, "readOnly": true},
           {"name": ROOT_VOLUME, "mountPath": ROOT_DIR, "readOnly": true}])
}

/// Where a workload kind keeps its pod template (JSON pointer), None for other kinds.
fn template_path(kind: &str) -> Option<&'static str> {
    match kind {
        "Pod" => Some(""),
        "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" | "ReplicationController" | "Job" => {
            Some("/spec/template")
        }
        "CronJob" => Some("/spec/jobTemplate/spec/template"),
        _ => None,
    }
}

/// Inject one document; returns whether it changed.
pub fn inject_document(doc: &mut Value, s: &Settings) -> bool {
    if doc.get("kind").and_then(Value::as_str) == Some("List") {
        let mut changed = false;
        for item in doc.get_mut("items").and_then(Value::as_array_mut).into_iter().flatten() {
            changed |= inject_document(item, s);
        }
        return changed;
    }
    let Some(path) = doc.get("kind").and_then(Value::as_str).and_then(template_path) else { return false };
    match if path.is_empty() { Some(doc) } else { doc.pointer_mut(path) } {
        Some(template) => inject_pod(template, s, &Default::default()),
        None => false,
    }
}

fn wants_out(meta: Option<&Value>) -> bool {
    let get =
        |k: &str| meta.and_then(|m| m.get(k)).and_then(|l| l.get("sidecar.istio.io/inject")).and_then(Value::as_str);
    get("labels").or_else(|| get("annotations")).is_some_and(|v| v.eq_ignore_ascii_case("false"))
}

/// Add the init container, the proxy and the token volume to a pod (or pod template:
/// `metadata` + `spec`). Returns whether it changed.
pub fn inject_pod(pod: &mut Value, s: &Settings, proxy_config: &EffectiveProxyConfig) -> bool {
    let meta = pod.get("metadata");
    if wants_out(meta) {
        return false;
    }
    let Some(spec) = pod.get("spec") else { return false };
    if spec.get("hostNetwork").and_then(Value::as_bool) == Some(true) {
        return false;
    }
    let has = |key: &str, name: &str| {
        spec.get(key)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .any(|c| c.get("name").and_then(Value::as_str) == Some(name))
    };
    if has("containers", PROXY) || has("initContainers", PROXY) {
        return false; // already injected
    }
    let mut labels: Vec<String> = meta
        .and_then(|m| m.get("labels"))
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| v.as_str().map(|v| format!("{k}={v}")))
        .collect();
    labels.sort();
    let mut ports: Vec<u64> = spec
        .get("containers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .flat_map(|c| c.get("ports").and_then(Value::as_array).into_iter().flatten())
        .filter(|p| p.get("protocol").and_then(Value::as_str).is_none_or(|p| p == "TCP"))
        .filter_map(|p| p.get("containerPort").and_then(Value::as_u64))
        .collect();
    ports.sort_unstable();
    ports.dedup();

    let mut args: Vec<String> = [
        "--workload",
        "$(POD_NAME)",
        "--namespace",
        "$(POD_NAMESPACE)",
        "--service-account",
        "$(SERVICE_ACCOUNT)",
        "--inbound-bind",
        "$(POD_IP)",
        "--capture-outbound",
        "0.0.0.0:15001",
        "--capture-inbound",
        "0.0.0.0:15006",
        "--no-outbound",
        "--metrics",
        "0.0.0.0:15020",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    args.extend(discovery_args(&s.namespace));
    if !labels.is_empty() {
        args.extend(["--labels".to_string(), labels.join(",")]);
    }
    for p in &ports {
        args.extend(["--inbound".to_string(), format!("{p}=127.0.0.1:{p}")]);
    }
    // ProxyConfig: `concurrency` as worker threads (0: the pod's cores, which the proxy cannot
    // know here: 2), and its environment variables as the container's (the proxy reads those it
    // honours).
    if let Some(c) = proxy_config.concurrency {
        args.extend(["--workers".to_string(), if c <= 0 { "2".to_string() } else { c.to_string() }]);
    }
    let field = |path: &str| json!({"fieldRef": {"fieldPath": path}});
    let mut env = vec![
        json!({"name": "POD_NAME", "valueFrom": field("metadata.name")}),
        json!({"name": "POD_NAMESPACE", "valueFrom": field("metadata.namespace")}),
        json!({"name": "POD_IP", "valueFrom": field("status.podIP")}),
        json!({"name": "SERVICE_ACCOUNT", "valueFrom": field("spec.serviceAccountName")}),
    ];
    for (k, v) in &proxy_config.environment_variables {
        env.push(json!({"name": k, "value": v}));
    }
    let proxy = json!({
        "name": PROXY,
        "image": format!("{}/proxy:{}", s.hub, s.tag),
        "args": args,
        "env": env,
        "ports": [{"name": "http-envoy-prom", "containerPort": 15020, "protocol": "TCP"}],
        "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"memory": "256Mi"}},
        "securityContext": {"runAsUser": 1337, "runAsGroup": 1337, "runAsNonRoot": true, "allowPrivilegeEscalation": false,
                            "readOnlyRootFilesystem": true, "capabilities": {"drop": ["ALL"]}},
        "volumeMounts": discovery_mounts()
    });
    let init_ports =
        if ports.is_empty() { "*".to_string() } else { ports.iter().map(u64::to_string).collect::<Vec<_>>().join(",") };
    let init = json!({
        "name": INIT,
        "image": format!("{}/proxy:{}", s.hub, s.tag),
        "args": ["init", "--proxy-uid", "1337", "--outbound-port", "15001", "--inbound-port", "15006",
                 "--include-inbound-ports", init_ports],
        "resources": {"requests": {"cpu": "10m", "memory": "10Mi"}, "limits": {"memory": "64Mi"}},
        "securityContext": {"runAsUser": 0, "runAsNonRoot": false, "allowPrivilegeEscalation": false,
                            "readOnlyRootFilesystem": true,
                            "capabilities": {"add": ["NET_ADMIN", "NET_RAW"], "drop": ["ALL"]}}
    });
    let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) else { return false };
    push_to(spec, "initContainers", init, true);
    push_to(spec, "containers", proxy, false);
    for v in discovery_volumes() {
        push_to(spec, "volumes", v, false);
    }
    let status = json!({"initContainers": [INIT], "containers": [PROXY], "volumes": [TOKEN_VOLUME, ROOT_VOLUME], "version": mesh_api::VERSION});
    if let Some(p) = pod.as_object_mut() {
        let meta = p.entry("metadata").or_insert_with(|| json!({}));
        if let Some(m) = meta.as_object_mut() {
            let ann = m.entry("annotations").or_insert_with(|| json!({}));
            if let Some(a) = ann.as_object_mut() {
                a.insert("sidecar.istio.io/status".into(), Value::String(status.to_string()));
            }
        }
    }
    true
}

fn push_to(spec: &mut serde_json::Map<String, Value>, key: &str, item: Value, first: bool) {
    let list = spec.entry(key).or_insert_with(|| json!([]));
    if !list.is_array() {
        *list = json!([]);
    }
    if let Some(a) = list.as_array_mut() {
        if first { a.insert(0, item) } else { a.push(item) }
    }
}

/// Inject every workload in a YAML stream. Documents that do not change keep their original
/// text; changed ones are written out again. Errors name the document that is not YAML.
pub fn inject_stream(text: &str, s: &Settings) -> Result<String, String> {
    let mut out = String::new();
    for (i, piece) in mesh_api::resource::split_documents(text, 0).into_iter().enumerate() {
        let body = piece.trim_start_matches("---").trim_start_matches(['\r', '\n']);
        let parsed = mesh_api::resource::parse_yaml_stream(body).map_err(|e| format!("document {}: {e}", i + 1))?;
        match parsed.as_slice() {
            [doc] => {
                let mut doc = doc.clone();
                if inject_document(&mut doc, s) {
                    out.push_str("---\n");
                    out.push_str(&serde_saphyr::to_string(&doc).map_err(|e| e.to_string())?);
                    continue;
                }
                out.push_str(&keep(piece));
            }
            _ => out.push_str(&keep(piece)),
        }
    }
    Ok(out)
}

/// An unchanged document's text, with its `---` marker.
fn keep(piece: &str) -> String {
    let mut p = if piece.starts_with("---") { piece.to_string() } else { format!("---\n{piece}") };
    if !p.ends_with('\n') {
        p.push('\n');
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> Settings {
        Settings::profile("default").expect("default")
    }

    const INPUT: &str = "apiVersion: v1
kind: Service
metadata: {name: reviews}
spec:
  ports: [{port: 9080, name: http}]   # kept byte for byte
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: reviews-v1}
spec:
  selector: {matchLabels: {app: reviews}}
  template:
    metadata: {labels: {app: reviews, version: v1}}
    spec:
      containers:
      - name: reviews
        image: reviews:1
        ports: [{containerPort: 9080}]
---
apiVersion: v1
kind: Pod
metadata:
  name: batch
  annotations: {sidecar.istio.io/inject: \"false\"}
spec:
  containers: [{name: job, image: job:1}]
";

    #[test]
    fn workloads_get_the_proxy_once_and_other_documents_are_untouched() {
        let once = inject_stream(INPUT, &settings()).expect("inject");
        assert!(once.contains("  ports: [{port: 9080, name: http}]   # kept byte for byte\n"), "{once}");
        let docs = mesh_api::resource::parse_yaml_stream(&once).expect("yaml");
        assert_eq!(docs.len(), 3);
        let tpl = &docs[1]["spec"]["template"];
        let containers = tpl["spec"]["containers"].as_array().expect("containers");
        assert_eq!(containers.len(), 2);
        assert_eq!(containers[1]["name"], PROXY);
        let args: Vec<&str> =
            containers[1]["args"].as_array().expect("args").iter().filter_map(Value::as_str).collect();
        assert!(args.windows(2).any(|w| w == ["--inbound", "9080=127.0.0.1:9080"]), "{args:?}");
        assert!(args.windows(2).any(|w| w == ["--labels", "app=reviews,version=v1"]), "{args:?}");
        assert_eq!(tpl["spec"]["initContainers"][0]["name"], INIT);
        assert!(tpl["metadata"]["annotations"]["sidecar.istio.io/status"].is_string());
        assert!(docs[2]["spec"]["containers"].as_array().is_some_and(|c| c.len() == 1), "opted out");
        let twice = inject_stream(&once, &settings()).expect("inject again");
        assert_eq!(twice, once, "injecting twice changes nothing");
        assert!(inject_stream("kind: [unclosed\n", &settings()).is_err());
    }
}
