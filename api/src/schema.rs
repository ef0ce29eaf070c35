//! Istio's validations for the API server, as schemas of the field types that carry them.
//!
//! The resource types derive `schemars::JsonSchema` (feature `schema`, which meshd turns on to
//! generate its CRDs); fields and structs whose Istio CRD refuses values beyond their JSON type
//! say so with `schemars(schema_with = ...)` to one of these functions, or with
//! `schemars(extend(...))` for a one-off enum, length or CEL rule. The messages are Istio's, so
//! a user sees the same refusal from either mesh's API server.

use schemars::{Schema, SchemaGenerator, json_schema};

/// A CEL rule as the API server takes it in `x-kubernetes-validations`.
fn rule(rule: &str, message: &str) -> serde_json::Value {
    serde_json::json!({"rule": rule, "message": message})
}

/// A protobuf `Duration` in its JSON form (`"1.5s"`), at least a millisecond.
pub fn duration(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "string",
        "x-kubernetes-validations": [rule("duration(self) >= duration('1ms')", "must be a valid duration greater than 1ms")]
    })
}

/// A port number that must be a real port (1-65535).
pub fn port(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "integer",
        "minimum": 0,
        "maximum": u32::MAX,
        "x-kubernetes-validations": [rule("0 < self && self <= 65535", "port must be between 1-65535")]
    })
}

/// A protobuf `uint32`.
pub fn uint32(_: &mut SchemaGenerator) -> Schema {
    json_schema!({"type": "integer", "minimum": 0, "maximum": u32::MAX})
}

/// A protobuf `int32`.
pub fn int32(_: &mut SchemaGenerator) -> Schema {
    json_schema!({"type": "integer", "format": "int32"})
}

/// `matchLabels` of a workload selector: no wildcards, no empty keys, Kubernetes' label value
/// length. Bounded, so the rules' cost fits the API server's budget.
pub fn match_labels(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "object",
        "maxProperties": 4096,
        "additionalProperties": {
            "type": "string",
            "maxLength": 63,
            "x-kubernetes-validations": [rule("!self.contains(\"*\")", "wildcard not allowed in label value match")]
        },
        "x-kubernetes-validations": [
            rule("self.all(key, !key.contains(\"*\"))", "wildcard not allowed in label key match"),
            rule("self.all(key, key.size() != 0)", "key must not be empty")
        ]
    })
}

/// A list of non-empty strings.
pub fn non_empty_strings(_: &mut SchemaGenerator) -> Schema {
    json_schema!({"type": "array", "items": {"type": "string", "minLength": 1}})
}

/// A JWKS URL: http or https.
pub fn jwks_uri(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "string",
        "minLength": 1,
        "maxLength": 2048,
        "x-kubernetes-validations": [rule("url(self).getScheme() in [\"http\", \"https\"]", "url must have scheme http:// or https://")]
    })
}

/// A policy attaches by selector or by target references, not both.
pub fn one_attachment(schema: &mut Schema) {
    add_rules(
        schema,
        &[(
            "(has(self.selector) ? 1 : 0) + (has(self.targetRef) ? 1 : 0) + (has(self.targetRefs) ? 1 : 0) <= 1",
            "only one of targetRefs or selector can be set",
        )],
    );
}

/// A PeerAuthentication with port-level modes selects its workloads.
pub fn peer_authentication(schema: &mut Schema) {
    add_rules(
        schema,
        &[(
            "has(self.portLevelMtls) ? (((has(self.selector) && has(self.selector.matchLabels)) ? self.selector.matchLabels : {}).size() > 0) : true",
            "portLevelMtls requires selector",
        )],
    );
}

/// `portLevelMtls`: keyed by real port numbers, not empty when given.
pub fn port_level_mtls(schema: &mut Schema) {
    schema.insert("minProperties".into(), 1.into());
    add_rules(schema, &[("self.all(key, 0 < int(key) && int(key) <= 65535)", "port must be between 1-65535")]);
}

/// An authorization source names service accounts, or principals and namespaces, not both.
pub fn authorization_source(schema: &mut Schema) {
    add_rules(
        schema,
        &[(
            "(has(self.serviceAccounts) || has(self.notServiceAccounts)) ? (!has(self.principals) && !has(self.notPrincipals) && !has(self.namespaces) && !has(self.notNamespaces)) : true",
            "Cannot set serviceAccounts with namespaces or principals",
        )],
    );
}

/// A JWT rule takes its keys from one place.
pub fn jwt_rule(schema: &mut Schema) {
    add_rules(
        schema,
        &[(
            "(has(self.jwksUri) ? 1 : 0) + (has(self.jwks_uri) ? 1 : 0) + (has(self.jwks) ? 1 : 0) <= 1",
            "only one of jwks or jwksUri can be set",
        )],
    );
}

/// A Telemetry tag override: UPSERT sets a value, REMOVE does not.
pub fn tag_override(schema: &mut Schema) {
    add_rules(
        schema,
        &[
            (
                "((has(self.operation) ? self.operation : '') == 'UPSERT') ? (self.value != '') : true",
                "value must be set when operation is UPSERT",
            ),
            (
                "((has(self.operation) ? self.operation : '') == 'REMOVE') ? !has(self.value) : true",
                "value must not be set when operation is REMOVE",
            ),
        ],
    );
}

/// One of Istio's standard metrics, by the Telemetry API's names.
pub fn istio_metric(schema: &mut Schema) {
    schema.insert("enum".into(), crate::telemetry::ISTIO_METRICS.into());
}

/// Append CEL rules to a schema's `x-kubernetes-validations`.
fn add_rules(schema: &mut Schema, rules: &[(&str, &str)]) {
    let mut all: Vec<serde_json::Value> =
        schema.get("x-kubernetes-validations").and_then(|r| r.as_array()).cloned().unwrap_or_default();
    all.extend(rules.iter().map(|(r, m)| rule(r, m)));
    schema.insert("x-kubernetes-validations".into(), all.into());
}

/// A ServiceEntry's spec: its rules across fields.
pub fn service_entry(schema: &mut Schema) {
    add_rules(
        schema,
        &[
            (
                "(has(self.workloadSelector) ? 1 : 0) + (has(self.endpoints) ? 1 : 0) <= 1",
                "only one of WorkloadSelector or Endpoints can be set",
            ),
            (
                "!((has(self.addresses) ? self.addresses : []).exists(k, k.contains('/')) && !((has(self.resolution) ? self.resolution : 'NONE') in ['STATIC', 'NONE']))",
                "CIDR addresses are allowed only for NONE/STATIC resolution types",
            ),
            (
                "((has(self.resolution) ? self.resolution : 'NONE') == 'NONE') ? !has(self.endpoints) : true",
                "NONE mode cannot set endpoints",
            ),
            (
                "((has(self.resolution) ? self.resolution : '') == 'DNS_ROUND_ROBIN') ? ((has(self.endpoints) ? self.endpoints : []).size() <= 1) : true",
                "DNS_ROUND_ROBIN mode cannot have multiple endpoints",
            ),
        ],
    );
}

/// A ServiceEntry's hosts: at least one, none of them `*`.
pub fn service_entry_hosts(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "array",
        "minItems": 1,
        "maxItems": 256,
        "items": {"type": "string", "x-kubernetes-validations": [rule("self != '*'", "hostname cannot be wildcard")]}
    })
}

/// A ServiceEntry's ports: a list keyed by name, numbers unique.
pub fn service_entry_ports(schema: &mut Schema) {
    schema.insert("maxItems".into(), 256.into());
    schema.insert("x-kubernetes-list-type".into(), "map".into());
    schema.insert("x-kubernetes-list-map-keys".into(), serde_json::json!(["name"]));
    add_rules(
        schema,
        &[("self.all(l1, self.exists_one(l2, l1.number == l2.number))", "port number cannot be duplicated")],
    );
}

/// A ServiceEntry's `workloadSelector.labels`.
pub fn service_entry_selector(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "object",
        "maxProperties": 256,
        "additionalProperties": {
            "type": "string",
            "maxLength": 63,
            "x-kubernetes-validations": [rule("!self.contains('*')", "wildcard is not supported in selector")]
        }
    })
}

/// A WorkloadEntry (or a ServiceEntry endpoint): an address or a network; a Unix socket has no ports.
pub fn workload_entry(schema: &mut Schema) {
    add_rules(
        schema,
        &[
            ("has(self.address) || has(self.network)", "Address is required"),
            (
                "(has(self.address) ? self.address : '').startsWith('unix://') ? !has(self.ports) : true",
                "UDS may not include ports",
            ),
        ],
    );
}

/// A WorkloadEntry's address: a Unix socket must be an absolute path or abstract, not a directory.
pub fn workload_address(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "string",
        "maxLength": 256,
        "x-kubernetes-validations": [
            rule(
                "self.startsWith('unix://') ? (self.substring(7, 8) == '/' || self.substring(7, 8) == '@') : true",
                "UDS must be an absolute path or abstract socket"
            ),
            rule("self.startsWith('unix://') ? !self.endsWith('/') : true", "UDS may not be a dir")
        ]
    })
}

/// A WorkloadEntry's ports by name: valid names, real ports.
pub fn workload_ports(generator: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "object",
        "maxProperties": 128,
        "additionalProperties": port(generator),
        "x-kubernetes-validations": [rule(
            "self.all(key, size(key) < 63 && key.matches('^[a-zA-Z0-9](?:[-a-zA-Z0-9]*[a-zA-Z0-9])?$'))",
            "port name must be valid"
        )]
    })
}

/// At most one of these fields, written as Istio's CRDs write a protobuf `oneof`: none of
/// them, or exactly one. A second `oneof` in the same message goes under `allOf` with the first.
fn at_most_one(schema: &mut Schema, fields: &[&str]) {
    let each: Vec<serde_json::Value> = fields.iter().map(|f| serde_json::json!({"required": [f]})).collect();
    let mut one_of = vec![serde_json::json!({"not": {"anyOf": each.clone()}})];
    one_of.extend(each);
    match schema.remove("oneOf") {
        Some(first) => {
            schema.insert("allOf".into(), serde_json::json!([{"oneOf": first}, {"oneOf": one_of}]));
        }
        None => {
            schema.insert("oneOf".into(), one_of.into());
        }
    }
}

macro_rules! one_ofs {
    ($($(#[$doc:meta])* $name:ident: [$($field:literal),+];)*) => {
        $($(#[$doc])* pub fn $name(schema: &mut Schema) {
            super::at_most_one(schema, &[$($field),+]);
        })*
    };
}

/// The protobuf `oneof`s of Istio's messages, as transforms of their structs' schemas.
pub mod one_of {
    use schemars::Schema;

    one_ofs! {
        string_match: ["exact", "prefix", "regex"];
        http_redirect: ["port", "derivePort"];
        http_body: ["string", "bytes"];
        fault_delay: ["fixedDelay", "exponentialDelay"];
        fault_abort: ["httpStatus", "grpcStatus", "http2Error"];
        load_balancer_settings: ["simple", "consistentHash"];
        consistent_hash: ["httpHeaderName", "httpCookie", "useSourceIp", "httpQueryParameterName"];
        consistent_hash_2: ["ringHash", "maglev"];
        metric_selector: ["metric", "customMetric"];
    }
}
