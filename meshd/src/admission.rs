//! Kubernetes admission webhooks (`AdmissionReview` v1): `/validate` runs the validation
//! `mesh apply` uses (refusals name the field path; accepted fields that do nothing yet come
//! back as warnings), `/inject` adds the sidecar with the same function as `mesh inject`.

use base64::Engine;
use serde_json::{Value, json};

use crate::manifest::Settings;

fn response(review: &Value, body: Value) -> Value {
    let mut r = body;
    r["uid"] = review.pointer("/request/uid").cloned().unwrap_or(Value::String(String::new()));
    json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": r})
}

/// Admit or refuse a mesh resource.
pub fn validate(review: &Value) -> Value {
    let Some(object) = review.pointer("/request/object").filter(|o| o.is_object()) else {
        // DELETE and the like carry no object: nothing to judge.
        return response(review, json!({"allowed": true}));
    };
    let ns = review.pointer("/request/namespace").and_then(Value::as_str).unwrap_or("default");
    match mesh_api::resource::parse_document(object.clone(), ns, 0) {
        Ok(mesh_api::Parsed::Supported(r)) => {
            let warnings: Vec<String> = mesh_api::support::unenforced(&r)
                .into_iter()
                .map(|f| format!("not enforced by mesh yet: {f}"))
                .collect();
            response(review, json!({"allowed": true, "warnings": warnings}))
        }
        Ok(_) => response(review, json!({"allowed": true})),
        Err(e) => response(
            review,
            json!({"allowed": false, "status": {"code": 400, "reason": "Invalid", "message": e.to_string()}}),
        ),
    }
}

/// Add the sidecar to a pod being created, as a JSON patch; pods that opt out or already have it
/// are admitted unchanged.
pub fn inject(review: &Value, settings: &Settings, resources: &crate::store::Resources) -> Value {
    let Some(pod) = review.pointer("/request/object").filter(|o| o.is_object()) else {
        return response(review, json!({"allowed": true}));
    };
    // The ProxyConfigs that apply to this pod, by its namespace and labels.
    let ns = review.pointer("/request/namespace").and_then(Value::as_str).unwrap_or("default");
    let labels: std::collections::BTreeMap<String, String> = pod
        .pointer("/metadata/labels")
        .and_then(Value::as_object)
        .map(|l| l.iter().filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string()))).collect())
        .unwrap_or_default();
    let pcs = resources.iter().filter_map(|(k, r)| match r {
        mesh_api::Resource::ProxyConfig(pc) => Some((k.namespace.as_str(), &pc.spec)),
        _ => None,
    });
    let proxy_config =
        mesh_api::networking::EffectiveProxyConfig::of(pcs, crate::translate::ROOT_NAMESPACE, ns, &labels);
    let mut injected = pod.clone();
    if !crate::inject::inject_pod(&mut injected, settings, &proxy_config) {
        return response(review, json!({"allowed": true}));
    }
    let annotations_op = if pod.pointer("/metadata/annotations").is_some() { "replace" } else { "add" };
    let patch = json!([
        {"op": "replace", "path": "/spec", "value": injected["spec"]},
        {"op": annotations_op, "path": "/metadata/annotations", "value": injected["metadata"]["annotations"]},
    ]);
    let encoded = base64::engine::general_purpose::STANDARD.encode(patch.to_string());
    response(review, json!({"allowed": true, "patchType": "JSONPatch", "patch": encoded}))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn review(object: Value) -> Value {
        json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
               "request": {"uid": "u-1", "namespace": "default", "operation": "CREATE", "object": object}})
    }

    #[test]
    fn validation_refuses_with_the_field_path_and_warns_on_unenforced_fields() {
        let bad = review(
            json!({"apiVersion": "networking.istio.io/v1", "kind": "VirtualService", "metadata": {"name": "r"},
            "spec": {"hosts": ["reviews"], "http": [{"route": [{"destination": {"host": "reviews"}, "weight": 150}]}]}}),
        );
        let out = validate(&bad);
        assert_eq!(out["response"]["uid"], "u-1");
        assert_eq!(out["response"]["allowed"], false);
        let msg = out["response"]["status"]["message"].as_str().expect("message");
        assert!(msg.contains("spec.http[0].route[0].weight"), "{msg}");
        let good = review(json!({"apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy",
            "metadata": {"name": "ext"}, "spec": {"action": "CUSTOM", "provider": {"name": "ext"}}}));
        let out = validate(&good);
        assert_eq!(out["response"]["allowed"], true);
        assert!(out["response"]["warnings"][0].as_str().is_some_and(|w| w.contains("CUSTOM")), "{out}");
    }

    #[test]
    fn injection_patches_the_pod_once() {
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"generateName": "reviews-", "labels": {"app": "reviews"}},
            "spec": {"containers": [{"name": "reviews", "image": "reviews:1", "ports": [{"containerPort": 9080}]}]}});
        let s = Settings::profile("default").expect("default");
        // A namespace ProxyConfig and a more specific one selecting the pod.
        let yaml = "apiVersion: networking.istio.io/v1beta1\nkind: ProxyConfig\nmetadata: {name: ns, namespace: default}\nspec:\n  concurrency: 4\n  environmentVariables: {TERMINATION_DRAIN_DURATION_SECONDS: '20', ISTIO_META_IDLE_TIMEOUT: 1m}\n---\napiVersion: networking.istio.io/v1beta1\nkind: ProxyConfig\nmetadata: {name: reviews, namespace: default}\nspec:\n  selector: {matchLabels: {app: reviews}}\n  environmentVariables: {TERMINATION_DRAIN_DURATION_SECONDS: '30'}\n";
        let mut resources = crate::store::Resources::new();
        for (i, doc) in mesh_api::resource::parse_yaml_stream(yaml).expect("yaml").into_iter().enumerate() {
            if let Ok(mesh_api::Parsed::Supported(r)) = mesh_api::resource::parse_document(doc, "default", i) {
                resources.insert(r.key(), r);
            }
        }
        let out = inject(&review(pod.clone()), &s, &resources);
        assert_eq!(out["response"]["patchType"], "JSONPatch");
        let patch: Value = serde_json::from_slice(
            &base64::engine::general_purpose::STANDARD
                .decode(out["response"]["patch"].as_str().expect("patch"))
                .expect("b64"),
        )
        .expect("json");
        assert_eq!(patch[0]["path"], "/spec");
        assert_eq!(patch[1]["op"], "add");
        let containers = patch[0]["value"]["containers"].as_array().expect("containers");
        let proxy = containers.iter().find(|c| c["name"] == crate::inject::PROXY).expect("the proxy container");
        let args: Vec<&str> = proxy["args"].as_array().expect("args").iter().filter_map(Value::as_str).collect();
        assert!(args.windows(2).any(|w| w == ["--workers", "4"]), "{args:?}");
        let env = |name: &str| {
            proxy["env"].as_array().and_then(|e| e.iter().find(|v| v["name"] == name)).map(|v| v["value"].clone())
        };
        assert_eq!(env("TERMINATION_DRAIN_DURATION_SECONDS"), Some(json!("30")), "the selecting one wins");
        assert_eq!(env("ISTIO_META_IDLE_TIMEOUT"), Some(json!("1m")), "the namespace's fills in");
        // Already injected: admitted as it is.
        let mut done = pod;
        done["spec"] = patch[0]["value"].clone();
        let again = inject(&review(done), &s, &resources);
        assert!(again["response"].get("patch").is_none());
    }
}
