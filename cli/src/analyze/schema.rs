//! `schema.ValidationAnalyzer.<Kind>`: each resource of a kind we validate, checked by the same
//! validation `mesh apply` uses (IST0106, with the field path); for VirtualServices also the
//! rules no request can reach and the matches an earlier rule already takes (IST0130, IST0131).

use serde_json::Value;

use super::messages::*;
use super::{Analyzer, Input, Message, Res};

pub struct ValidationAnalyzer {
    kind: mesh_api::Kind,
    name: &'static str,
}

/// One schema analyzer per Istio kind we validate (and our own), named as Istio names them.
/// Kubernetes kinds are the API server's to validate, as in istioctl.
pub fn all() -> Vec<ValidationAnalyzer> {
    mesh_api::Kind::ALL
        .into_iter()
        .filter(|k| *k != mesh_api::Kind::Service)
        .map(|kind| ValidationAnalyzer {
            kind,
            name: match kind {
                mesh_api::Kind::Service => "schema.ValidationAnalyzer.Service",
                mesh_api::Kind::VirtualService => "schema.ValidationAnalyzer.VirtualService",
                mesh_api::Kind::DestinationRule => "schema.ValidationAnalyzer.DestinationRule",
                mesh_api::Kind::ServiceEntry => "schema.ValidationAnalyzer.ServiceEntry",
                mesh_api::Kind::Gateway => "schema.ValidationAnalyzer.Gateway",
                mesh_api::Kind::PeerAuthentication => "schema.ValidationAnalyzer.PeerAuthentication",
                mesh_api::Kind::AuthorizationPolicy => "schema.ValidationAnalyzer.AuthorizationPolicy",
                mesh_api::Kind::RequestAuthentication => "schema.ValidationAnalyzer.RequestAuthentication",
                mesh_api::Kind::LocalRateLimit => "schema.ValidationAnalyzer.LocalRateLimit",
                mesh_api::Kind::Rollout => "schema.ValidationAnalyzer.Rollout",
                mesh_api::Kind::Telemetry => "schema.ValidationAnalyzer.Telemetry",
                mesh_api::Kind::Sidecar => "schema.ValidationAnalyzer.Sidecar",
                mesh_api::Kind::WorkloadEntry => "schema.ValidationAnalyzer.WorkloadEntry",
                mesh_api::Kind::WorkloadGroup => "schema.ValidationAnalyzer.WorkloadGroup",
                mesh_api::Kind::ProxyConfig => "schema.ValidationAnalyzer.ProxyConfig",
                mesh_api::Kind::GatewayClass => "schema.ValidationAnalyzer.GatewayClass",
                mesh_api::Kind::KubeGateway => "schema.ValidationAnalyzer.KubernetesGateway",
                mesh_api::Kind::HttpRoute => "schema.ValidationAnalyzer.HTTPRoute",
                mesh_api::Kind::GrpcRoute => "schema.ValidationAnalyzer.GRPCRoute",
                mesh_api::Kind::TcpRoute => "schema.ValidationAnalyzer.TCPRoute",
                mesh_api::Kind::TlsRoute => "schema.ValidationAnalyzer.TLSRoute",
                mesh_api::Kind::ReferenceGrant => "schema.ValidationAnalyzer.ReferenceGrant",
            },
        })
        .collect()
}

impl Analyzer for ValidationAnalyzer {
    fn name(&self) -> &'static str {
        self.name
    }

    fn description(&self) -> &'static str {
        "Runs schema validation as an analyzer and reports any violations"
    }

    fn analyze(&self, input: &Input, out: &mut Vec<Message>) {
        let group = self.kind.default_api_version().rsplit_once('/').map_or("", |(g, _)| g);
        for r in input.of_kind(group, self.kind.as_str()) {
            if let Err(e) = mesh_api::resource::parse_document(r.value.clone(), r.ns(), 0) {
                // Object names are the API server's to judge.
                for err in e.errors.iter().filter(|e| !e.path.starts_with("metadata")) {
                    out.push(Message::new(&SCHEMA_VALIDATION_ERROR, r, format!("Schema validation error: {err}")));
                }
            }
            if self.kind == mesh_api::Kind::VirtualService {
                unreachable_rules(r, out);
            }
        }
    }
}

/// A match as compared for duplicates: its name dropped, and unset-like values (false, 0, "",
/// empty lists and maps) removed, as protobuf's JSON leaves them out.
fn normalized(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| k.as_str() != "name")
                .map(|(k, v)| (k.clone(), normalized(v)))
                .filter(|(_, v)| !is_unset(v))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(normalized).collect()),
        other => other.clone(),
    }
}

fn is_unset(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(m) => m.is_empty(),
    }
}

fn rule_name(rule: &Value, n: usize, http: bool) -> String {
    match rule.get("name").and_then(Value::as_str).filter(|s| http && !s.is_empty()) {
        Some(name) => format!("{name:?}"),
        None => format!("#{n}"),
    }
}

/// A prefix match's parts that decide whether an earlier one covers it.
struct PrefixMatch {
    rule: String,
    matchn: String,
    prefix: String,
    port: Option<u64>,
    method: String,
    authority: String,
    headers: Vec<(String, String)>,
    query: Vec<(String, String)>,
    without_headers: Vec<(String, String)>,
}

fn exact_or_prefix(v: Option<&Value>) -> String {
    let s = |k: &str| v.and_then(|v| v.get(k)).and_then(Value::as_str).unwrap_or("");
    if !s("exact").is_empty() {
        format!("exact:{}", s("exact"))
    } else if !s("prefix").is_empty() {
        format!("prefix:{}", s("prefix"))
    } else {
        String::new()
    }
}

fn pairs(v: Option<&Value>) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = v
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.clone(), exact_or_prefix(Some(v))))
        .collect();
    out.sort();
    out
}

/// Does the earlier match `a` take every request the later match `b` would?
fn covers(a: &PrefixMatch, b: &PrefixMatch) -> bool {
    let narrower = |x: &str, y: &str| x == y || x.starts_with(y);
    let same_keys = |x: &[(String, String)], y: &[(String, String)]| {
        x.len() == y.len() && x.iter().all(|(k, v)| y.iter().any(|(k2, v2)| k == k2 && narrower(v, v2)))
    };
    b.prefix.starts_with(&a.prefix)
        && a.port == b.port
        && narrower(&a.method, &b.method)
        && narrower(&a.authority, &b.authority)
        && same_keys(&a.headers, &b.headers)
        && same_keys(&a.query, &b.query)
        && same_keys(&a.without_headers, &b.without_headers)
}

fn unreachable_rules(vs: &Res, out: &mut Vec<Message>) {
    for section in ["http", "tcp", "tls"] {
        let http = section == "http";
        let rules: Vec<&Value> = vs.spec().get(section).and_then(Value::as_array).into_iter().flatten().collect();
        let mut seen: Vec<(Value, usize)> = Vec::new();
        let mut catch_all: Option<usize> = None;
        let mut prefixes: Vec<PrefixMatch> = Vec::new();
        let unused = |rule: String, reason: &str| {
            Message::new(
                &VIRTUAL_SERVICE_UNREACHABLE_RULE,
                vs,
                format!("VirtualService rule {rule} not used ({reason})."),
            )
        };
        let ineffective = |rule: &str, m: &str, dup: &str| {
            Message::new(
                &VIRTUAL_SERVICE_INEFFECTIVE_MATCH,
                vs,
                format!(
                    "VirtualService rule {rule} match {m} is not used (duplicate/overlapping match in rule {dup})."
                ),
            )
        };
        for (n, rule) in rules.iter().enumerate() {
            let matches: Vec<&Value> = rule.get("match").and_then(Value::as_array).into_iter().flatten().collect();
            let name = rule_name(rule, n, http);
            if matches.is_empty() {
                if catch_all.is_some() {
                    out.push(unused(name, "only the last rule can have no matches"));
                }
                catch_all = Some(n);
                continue;
            }
            let mut duplicates = 0;
            for (mn, m) in matches.iter().enumerate() {
                if catch_all.is_some() {
                    out.push(unused(name.clone(), "route without matches defined before"));
                    continue;
                }
                let key = normalized(m);
                let match_name = match m.get("name").and_then(Value::as_str).filter(|s| http && !s.is_empty()) {
                    Some(s) => format!("{s:?}"),
                    None => format!("#{mn}"),
                };
                if let Some((_, first)) = seen.iter().find(|(k, _)| *k == key) {
                    out.push(ineffective(&name, &match_name, &rule_name(rules[*first], *first, http)));
                    duplicates += 1;
                    continue;
                }
                seen.push((key, n));
                if let Some(prefix) = m.pointer("/uri/prefix").and_then(Value::as_str).filter(|p| http && !p.is_empty())
                {
                    let method = match exact_or_prefix(m.get("method")) {
                        s if s.is_empty() => "exact:GET".to_string(),
                        s => s,
                    };
                    prefixes.push(PrefixMatch {
                        rule: name.clone(),
                        matchn: match_name,
                        prefix: prefix.to_string(),
                        port: m.get("port").and_then(Value::as_u64),
                        method,
                        authority: exact_or_prefix(m.get("authority")),
                        headers: pairs(m.get("headers")),
                        query: pairs(m.get("queryParams")),
                        without_headers: pairs(m.get("withoutHeaders")),
                    });
                }
            }
            if duplicates == matches.len() {
                out.push(unused(name, "all matches used by prior rules"));
            }
        }
        for (i, a) in prefixes.iter().enumerate() {
            for b in &prefixes[i + 1..] {
                if b.prefix != a.prefix && covers(a, b) {
                    out.push(ineffective(
                        &b.rule,
                        &format!("{} of prefix {}", b.matchn, b.prefix),
                        &format!("{} of prefix {} on {}", a.matchn, a.prefix, a.rule),
                    ));
                }
            }
        }
    }
}
