//! The CRDs' OpenAPI schemas, generated from the `api` crate's own types (the ones `mesh apply`
//! and the validating webhook parse with), so the API server refuses what mesh refuses even when
//! meshd is down. The types carry Istio's validations as schemars attributes (enums, ranges,
//! lengths, required fields and CEL rules: see `mesh_api::schema`); this module turns what
//! schemars writes into a structural schema, the form `apiextensions.k8s.io/v1` requires: every
//! node typed, no `$ref`, no `additionalProperties` beside `properties`, no defaults.

use mesh_api::Kind;
use schemars::JsonSchema;
use schemars::generate::SchemaSettings;
use serde_json::{Map, Value, json};

/// The `openAPIV3Schema` of a served kind's CRD.
pub fn crd_schema(kind: Kind) -> Value {
    use mesh_api::{networking as n, security as s, telemetry as t};
    let spec = match kind {
        Kind::VirtualService => spec_schema::<n::VirtualServiceSpec>(),
        Kind::DestinationRule => spec_schema::<n::DestinationRuleSpec>(),
        Kind::ServiceEntry => spec_schema::<n::ServiceEntrySpec>(),
        Kind::Gateway => spec_schema::<n::GatewaySpec>(),
        Kind::Sidecar => spec_schema::<n::SidecarSpec>(),
        Kind::WorkloadEntry => spec_schema::<n::WorkloadEntrySpec>(),
        Kind::WorkloadGroup => spec_schema::<n::WorkloadGroupSpec>(),
        Kind::ProxyConfig => spec_schema::<n::ProxyConfigSpec>(),
        Kind::PeerAuthentication => spec_schema::<s::PeerAuthenticationSpec>(),
        Kind::AuthorizationPolicy => spec_schema::<s::AuthorizationPolicySpec>(),
        Kind::RequestAuthentication => spec_schema::<s::RequestAuthenticationSpec>(),
        Kind::LocalRateLimit => spec_schema::<s::LocalRateLimitSpec>(),
        Kind::Rollout => spec_schema::<mesh_api::rollout::RolloutSpec>(),
        Kind::Telemetry => spec_schema::<t::TelemetrySpec>(),
        // Not CRDs of ours: Services are Kubernetes' own, the Gateway API's are the upstream
        // project's (users install its standard channel, as with Istio).
        Kind::Service
        | Kind::GatewayClass
        | Kind::KubeGateway
        | Kind::HttpRoute
        | Kind::GrpcRoute
        | Kind::TcpRoute
        | Kind::TlsRoute
        | Kind::ReferenceGrant => json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true}),
    };
    let mut root = json!({"type": "object", "properties": {
        "spec": spec,
        "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}
    }});
    // Istio's ServiceEntry is the one kind whose spec may not be left out.
    if kind == Kind::ServiceEntry {
        root["required"] = json!(["spec"]);
    }
    root
}

fn spec_schema<T: JsonSchema>() -> Value {
    let settings = SchemaSettings::draft2020_12().with(|s| s.inline_subschemas = true);
    let mut v = settings.into_generator().into_root_schema_for::<T>().to_value();
    structural(&mut v);
    v
}

/// The formats the API server knows; others (schemars' `uint32`, ...) are dropped, their
/// range kept as `minimum`/`maximum`.
const FORMATS: [&str; 6] = ["int32", "int64", "float", "double", "byte", "date-time"];

/// Rewrite a schemars schema in place into a structural one.
fn structural(v: &mut Value) {
    // `true` / `{}`: a field kept as free-form JSON (a message mesh does not model field by
    // field). Istio's messages are objects.
    let free = match v {
        Value::Bool(true) => true,
        Value::Object(m) => m.is_empty(),
        _ => false,
    };
    if free {
        *v = json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true});
        return;
    }
    let Value::Object(m) = v else { return };
    for k in ["$schema", "title", "description", "default", "examples", "example", "$defs", "definitions"] {
        m.remove(k);
    }
    // `Option<T>`: T. An absent field is how a spec leaves something out; a `null` is pruned by
    // the API server for fields that are not nullable, as in Istio's CRDs.
    if let Some(Value::Array(any)) = m.get("anyOf")
        && let [one, null] = any.as_slice()
        && null == &json!({"type": "null"})
        && let Value::Object(inner) = one.clone()
    {
        m.remove("anyOf");
        m.extend(inner);
    }
    if let Some(Value::Array(types)) = m.get("type") {
        let kept: Vec<Value> = types.iter().filter(|t| t.as_str() != Some("null")).cloned().collect();
        if let [one] = kept.as_slice() {
            m.insert("type".into(), one.clone());
        }
    }
    if let Some(c) = m.remove("const") {
        m.insert("enum".into(), json!([c]));
    }
    if m.get("format").and_then(Value::as_str).is_some_and(|f| !FORMATS.contains(&f)) {
        m.remove("format");
    }
    if m.contains_key("properties") {
        m.remove("additionalProperties");
    }
    hoist_enum(m);
    for key in ["properties"] {
        if let Some(Value::Object(props)) = m.get_mut(key) {
            props.values_mut().for_each(structural);
        }
    }
    for key in ["items", "additionalProperties", "not"] {
        if let Some(sub) = m.get_mut(key)
            && (sub.is_object() || *sub == Value::Bool(true))
        {
            structural(sub);
        }
    }
    for key in ["allOf", "anyOf", "oneOf"] {
        if let Some(Value::Array(subs)) = m.get_mut(key) {
            subs.iter_mut().for_each(structural);
        }
    }
}

/// A Rust enum whose variants carry doc comments comes out of schemars as `oneOf` one
/// constant each; the API server wants the plain `type: string` + `enum`.
fn hoist_enum(m: &mut Map<String, Value>) {
    let Some(Value::Array(variants)) = m.get("oneOf") else { return };
    let mut values = Vec::new();
    for variant in variants {
        match (variant.get("const"), variant.get("enum")) {
            (Some(c), _) => values.push(c.clone()),
            (None, Some(Value::Array(e))) => values.extend(e.iter().cloned()),
            _ => return,
        }
    }
    m.remove("oneOf");
    m.insert("type".into(), json!("string"));
    m.insert("enum".into(), Value::Array(values));
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The rules `apiextensions.k8s.io/v1` applies to a CRD's schema before it takes it
    /// (Kubernetes' "structural schema"), checked on one node and below; the problems, by path.
    fn structural_problems(v: &Value, path: &str, in_junctor: bool, out: &mut Vec<String>) {
        check(v, path, in_junctor.then_some(&[][..]), out)
    }

    /// `junctor_of`: inside allOf/anyOf/oneOf/not, the properties of the node that owns it.
    fn check(v: &Value, path: &str, junctor_of: Option<&[String]>, out: &mut Vec<String>) {
        let in_junctor = junctor_of.is_some();
        let Value::Object(m) = v else {
            out.push(format!("{path}: not a schema object"));
            return;
        };
        let escape =
            m.contains_key("x-kubernetes-preserve-unknown-fields") || m.contains_key("x-kubernetes-int-or-string");
        if in_junctor {
            for k in ["type", "description", "default", "additionalProperties", "nullable", "x-kubernetes-validations"]
            {
                if m.contains_key(k) {
                    out.push(format!("{path}: {k} inside allOf/anyOf/oneOf/not"));
                }
            }
        } else if !escape && m.get("type").and_then(Value::as_str).is_none_or(str::is_empty) {
            out.push(format!("{path}: no type"));
        }
        for k in ["$ref", "$schema", "definitions", "$defs", "default", "uniqueItems", "const", "title"] {
            if m.contains_key(k) {
                out.push(format!("{path}: has {k}"));
            }
        }
        if m.contains_key("properties") && m.contains_key("additionalProperties") {
            out.push(format!("{path}: properties and additionalProperties together"));
        }
        if m.get("type") == Some(&json!("array")) && !m.contains_key("items") {
            out.push(format!("{path}: an array without items"));
        }
        if let Some(f) = m.get("format").and_then(Value::as_str)
            && !FORMATS.contains(&f)
        {
            out.push(format!("{path}: unknown format {f}"));
        }
        if let Some(keys) = m.get("x-kubernetes-list-map-keys").and_then(Value::as_array) {
            let required = v.pointer("/items/required").and_then(Value::as_array).cloned().unwrap_or_default();
            for k in keys {
                if !required.contains(k) {
                    out.push(format!("{path}: list-map key {k} is not required"));
                }
            }
        }
        // What a junctor says about a field must be said outside it too.
        let own: Vec<String> =
            m.get("properties").and_then(Value::as_object).map(|p| p.keys().cloned().collect()).unwrap_or_default();
        let props = junctor_of.unwrap_or(&own);
        if in_junctor {
            for r in m.get("required").and_then(Value::as_array).into_iter().flatten() {
                if !props.iter().any(|p| Some(p.as_str()) == r.as_str()) {
                    out.push(format!("{path}: requires {r}, which is not a property"));
                }
            }
        }
        for junctor in ["allOf", "anyOf", "oneOf"] {
            for (i, sub) in m.get(junctor).and_then(Value::as_array).into_iter().flatten().enumerate() {
                check(sub, &format!("{path}.{junctor}[{i}]"), Some(props), out);
            }
        }
        if let Some(not) = m.get("not") {
            check(not, &format!("{path}.not"), Some(props), out);
        }
        for (k, sub) in m.get("properties").and_then(Value::as_object).into_iter().flatten() {
            check(sub, &format!("{path}.{k}"), junctor_of.map(|_| &[][..]), out);
        }
        for k in ["items", "additionalProperties"] {
            if let Some(sub) = m.get(k) {
                check(sub, &format!("{path}.{k}"), junctor_of.map(|_| &[][..]), out);
            }
        }
    }

    #[test]
    fn every_crd_schema_is_structural() {
        for kind in Kind::ALL.into_iter().filter(|k| *k != Kind::Service && !k.is_gateway_api()) {
            let schema = crd_schema(kind);
            let mut problems = Vec::new();
            structural_problems(&schema, kind.as_str(), false, &mut problems);
            assert!(problems.is_empty(), "{kind}:\n{}", problems.join("\n"));
            // The spec is typed field by field, not kept as free-form JSON.
            let spec = &schema["properties"]["spec"];
            assert!(spec.get("x-kubernetes-preserve-unknown-fields").is_none(), "{kind}: spec is free-form");
            assert!(spec["properties"].as_object().is_some_and(|p| p.len() >= 2), "{kind}: {spec}");
        }
    }

    #[test]
    fn the_structural_check_finds_what_the_api_server_refuses() {
        let bad = json!({"type": "object", "properties": {
            "a": {"properties": {"x": {"type": "string"}}},
            "b": {"type": "object", "properties": {"x": {"type": "string"}}, "additionalProperties": false},
            "c": {"type": "array"},
            "d": {"type": "object", "oneOf": [{"required": ["zz"]}, {"type": "object"}]},
            "e": {"type": "integer", "format": "uint32", "default": 1}
        }});
        let mut problems = Vec::new();
        structural_problems(&bad, "bad", false, &mut problems);
        for want in [
            "bad.a: no type",
            "bad.b: properties and additionalProperties",
            "bad.c: an array without items",
            "bad.d.oneOf[0]: requires \"zz\"",
            "bad.d.oneOf[1]: type inside",
            "bad.e: has default",
            "bad.e: unknown format uint32",
        ] {
            assert!(problems.iter().any(|p| p.starts_with(want)), "{want} not in {problems:#?}");
        }
    }

    #[test]
    fn istio_validations_are_in_the_schema() {
        let dr = crd_schema(Kind::DestinationRule);
        let warmup = &dr
            .pointer("/properties/spec/properties/trafficPolicy/properties/loadBalancer/properties/warmup")
            .expect("warmup");
        assert_eq!(warmup["required"], json!(["duration"]));
        assert_eq!(warmup["properties"]["minimumPercent"]["maximum"], json!(100));
        assert!(
            warmup["properties"]["duration"]["x-kubernetes-validations"][0]["rule"]
                .as_str()
                .is_some_and(|r| r.contains("duration(self)"))
        );
        let se = crd_schema(Kind::ServiceEntry);
        assert_eq!(se["required"], json!(["spec"]));
        assert_eq!(se["properties"]["spec"]["properties"]["ports"]["x-kubernetes-list-type"], "map");
        let pa = crd_schema(Kind::PeerAuthentication);
        let mut modes = pa.pointer("/properties/spec/properties/mtls/properties/mode/enum").cloned().expect("enum");
        modes.as_array_mut().expect("list").sort_by_key(Value::to_string);
        assert_eq!(modes, json!(["DISABLE", "PERMISSIVE", "STRICT", "UNSET"]));
    }
}
