//! `mesh get KIND [NAME]`: tables like kubectl's, or the resources as YAML / JSON.

use std::collections::BTreeMap;

use mesh_api::protocol::ProxyStatus;
use mesh_api::{Kind, Resource};

use crate::Ctx;
use crate::cli::{GetArgs, GetOutput, Output};
use crate::client::MeshdClient;
use crate::error::{CliError, Result};

pub async fn list(
    client: &MeshdClient,
    kind: Kind,
    namespace: Option<&str>,
    name: Option<&str>,
) -> Result<Vec<Resource>> {
    let mut q = format!("{}?kind={}", mesh_api::control::RESOURCES_PATH, kind.qualified());
    if let Some(ns) = namespace {
        q.push_str(&format!("&namespace={ns}"));
    }
    if let Some(n) = name {
        q.push_str(&format!("&name={n}"));
    }
    client.get(&q).await
}

fn selector_text(m: &BTreeMap<String, String>) -> String {
    if m.is_empty() { "<none>".into() } else { m.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",") }
}

fn hostnames(h: &[String]) -> String {
    if h.is_empty() { "*".into() } else { h.join(",") }
}

fn parents(refs: &[mesh_api::gateway_api::ParentRef]) -> String {
    refs.iter()
        .map(|p| {
            let kind = if p.is_service() { "Service/" } else { "" };
            match &p.section_name {
                Some(s) => format!("{kind}{}/{s}", p.name),
                None => format!("{kind}{}", p.name),
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// The status of condition `type` in `status.conditions` ("-" when there is none yet).
fn condition(status: Option<&serde_json::Value>, kind: &str) -> String {
    status
        .and_then(|s| s.get("conditions")?.as_array()?.iter().find(|c| c["type"] == kind)?["status"].as_str())
        .unwrap_or("-")
        .to_string()
}

/// A route's condition `type` over its parents: True when every parent says so.
fn parent_condition(status: Option<&serde_json::Value>, kind: &str) -> String {
    let Some(parents) = status.and_then(|s| s.get("parents")?.as_array()) else { return "-".into() };
    let all: Vec<String> = parents.iter().map(|p| condition(Some(p), kind)).collect();
    if all.is_empty() {
        "-".into()
    } else if all.iter().all(|s| s == "True") {
        "True".into()
    } else {
        all.join(",")
    }
}

fn row(r: &Resource, all_ns: bool) -> Vec<String> {
    let mut row = Vec::new();
    if all_ns {
        row.push(r.namespace().to_string());
    }
    row.push(r.name().to_string());
    match r {
        Resource::Service(o) => {
            let ports: Vec<String> =
                o.spec.ports.iter().map(|p| format!("{}/{}", p.port, p.protocol.as_deref().unwrap_or("TCP"))).collect();
            row.push(ports.join(","));
            row.push(selector_text(&o.spec.selector));
        }
        Resource::VirtualService(o) => {
            row.push(o.spec.hosts.join(","));
            row.push(if o.spec.gateways.is_empty() { "mesh".into() } else { o.spec.gateways.join(",") });
            let routes: Vec<String> = o
                .spec
                .http
                .iter()
                .map(|h| {
                    h.route
                        .iter()
                        .map(|d| {
                            let sub = d.destination.subset.as_deref().map(|s| format!("/{s}")).unwrap_or_default();
                            match d.weight {
                                Some(w) if h.route.len() > 1 => format!("{}{sub}={w}", d.destination.host),
                                _ => format!("{}{sub}", d.destination.host),
                            }
                        })
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .collect();
            row.push(routes.join("; "));
        }
        Resource::DestinationRule(o) => {
            row.push(o.spec.host.clone());
            row.push(o.spec.subsets.iter().map(|s| s.name.as_str()).collect::<Vec<_>>().join(","));
        }
        Resource::Gateway(o) => {
            let servers: Vec<String> = o
                .spec
                .servers
                .iter()
                .map(|s| format!("{}/{} {}", s.port.number, s.port.protocol, s.hosts.join(",")))
                .collect();
            row.push(servers.join("; "));
            row.push(selector_text(&o.spec.selector));
        }
        Resource::ServiceEntry(o) => {
            row.push(o.spec.hosts.join(","));
            let ports: Vec<String> = o
                .spec
                .ports
                .iter()
                .map(|p| format!("{}/{}", p.number, p.protocol.as_deref().unwrap_or("TCP")))
                .collect();
            row.push(ports.join(","));
            row.push(o.spec.location.clone().unwrap_or_else(|| "MESH_EXTERNAL".into()));
            row.push(o.spec.resolution.clone().unwrap_or_else(|| "NONE".into()));
        }
        Resource::PeerAuthentication(o) => {
            let sel =
                o.spec.selector.as_ref().map(|s| selector_text(&s.match_labels)).unwrap_or_else(|| "<none>".into());
            row.push(o.spec.mtls.as_ref().map_or("UNSET", |m| m.mode.as_str()).to_string());
            let ports = o.spec.port_level_mtls.iter().flatten().map(|(p, m)| format!("{p}={}", m.mode.as_str()));
            row.push(ports.collect::<Vec<_>>().join(","));
            row.push(sel);
        }
        Resource::AuthorizationPolicy(o) => {
            row.push(o.spec.action.as_str().to_string());
            row.push(o.spec.rules.len().to_string());
            row.push(
                o.spec.selector.as_ref().map(|s| selector_text(&s.match_labels)).unwrap_or_else(|| "<none>".into()),
            );
        }
        Resource::LocalRateLimit(o) => {
            let b = o.spec.token_bucket.as_ref();
            row.push(
                b.map(|b| format!("{} per {}", b.tokens_per_fill.unwrap_or(b.max_tokens), b.fill_interval))
                    .unwrap_or("-".into()),
            );
            row.push(o.spec.routes.len().to_string());
            row.push(
                o.spec.selector.as_ref().map(|s| selector_text(&s.match_labels)).unwrap_or_else(|| "<none>".into()),
            );
        }
        Resource::Rollout(o) => {
            let status = mesh_api::rollout::RolloutStatus::of(o);
            row.push(o.spec.host.clone());
            row.push(format!("{} -> {}", o.spec.stable, o.spec.canary));
            row.push(status.as_ref().map_or(mesh_api::rollout::Phase::Pending, |s| s.phase).to_string());
            row.push(status.as_ref().map_or(0, |s| s.canary_weight).to_string() + "%");
        }
        Resource::Telemetry(o) => {
            let s = &o.spec;
            let logs = if s.access_logging.is_empty() {
                "-"
            } else if s.access_logging.iter().all(|a| a.disabled == Some(true)) {
                "off"
            } else {
                "on"
            };
            row.push(logs.to_string());
            let sampling = s.tracing.iter().find_map(|t| t.random_sampling_percentage);
            let off = s.tracing.iter().any(|t| t.disable_span_reporting == Some(true));
            row.push(match (off, sampling) {
                (true, _) => "off".to_string(),
                (false, Some(p)) => format!("{p}%"),
                (false, None) => "-".to_string(),
            });
            row.push(s.selector.as_ref().map(|s| selector_text(&s.match_labels)).unwrap_or_else(|| "<none>".into()));
        }
        Resource::RequestAuthentication(o) => {
            row.push(o.spec.jwt_rules.iter().map(|r| r.issuer.as_str()).collect::<Vec<_>>().join(","));
            row.push(
                o.spec.selector.as_ref().map(|s| selector_text(&s.match_labels)).unwrap_or_else(|| "<none>".into()),
            );
        }
        Resource::WorkloadEntry(o) => {
            row.push(o.spec.address.clone().unwrap_or_else(|| "-".into()));
            row.push(o.spec.ports.iter().map(|(n, p)| format!("{n}={p}")).collect::<Vec<_>>().join(","));
            row.push(selector_text(&o.spec.labels));
        }
        Resource::ProxyConfig(o) => {
            row.push(o.spec.concurrency.map_or("-".into(), |c| c.to_string()));
            row.push(
                o.spec.selector.as_ref().map(|s| selector_text(&s.match_labels)).unwrap_or_else(|| "<none>".into()),
            );
        }
        Resource::WorkloadGroup(o) => {
            row.push(o.spec.template.service_account.clone().unwrap_or_else(|| "default".into()));
            row.push(selector_text(&o.spec.template.labels));
        }
        Resource::Sidecar(o) => {
            let hosts: Vec<&str> = o.spec.egress.iter().flat_map(|e| e.hosts.iter()).map(String::as_str).collect();
            row.push(if hosts.is_empty() { "*/*".into() } else { hosts.join(",") });
            row.push(
                o.spec.outbound_traffic_policy.as_ref().and_then(|p| p.mode.clone()).unwrap_or_else(|| "-".into()),
            );
            row.push(
                o.spec.workload_selector.as_ref().map(|s| selector_text(&s.labels)).unwrap_or_else(|| "<none>".into()),
            );
        }
        Resource::GatewayClass(o) => {
            row.push(o.spec.controller_name.clone());
            row.push(condition(o.status.as_ref(), "Accepted"));
        }
        Resource::KubeGateway(o) => {
            row.push(o.spec.gateway_class_name.clone());
            let listeners = o.spec.listeners.iter().map(|l| format!("{}/{}/{}", l.name, l.port, l.protocol));
            row.push(listeners.collect::<Vec<_>>().join(","));
            row.push(condition(o.status.as_ref(), "Programmed"));
        }
        Resource::HttpRoute(o) => {
            row.push(hostnames(&o.spec.hostnames));
            row.push(parents(&o.spec.parent_refs));
            row.push(parent_condition(o.status.as_ref(), "Accepted"));
        }
        Resource::GrpcRoute(o) => {
            row.push(hostnames(&o.spec.hostnames));
            row.push(parents(&o.spec.parent_refs));
            row.push(parent_condition(o.status.as_ref(), "Accepted"));
        }
        Resource::TcpRoute(o) | Resource::TlsRoute(o) => {
            row.push(hostnames(&o.spec.hostnames));
            row.push(parents(&o.spec.parent_refs));
            row.push(parent_condition(o.status.as_ref(), "Accepted"));
        }
        Resource::ReferenceGrant(o) => {
            row.push(o.spec.from.iter().map(|f| format!("{}/{}", f.namespace, f.kind)).collect::<Vec<_>>().join(","));
            row.push(
                o.spec
                    .to
                    .iter()
                    .map(|t| format!("{}/{}", t.kind, t.name.as_deref().unwrap_or("*")))
                    .collect::<Vec<_>>()
                    .join(","),
            );
        }
    }
    row
}

fn header(kind: Kind, all_ns: bool) -> Vec<&'static str> {
    let mut h = Vec::new();
    if all_ns {
        h.push("NAMESPACE");
    }
    h.push("NAME");
    h.extend_from_slice(match kind {
        Kind::Service => &["PORTS", "SELECTOR"][..],
        Kind::VirtualService => &["HOSTS", "GATEWAYS", "ROUTES"][..],
        Kind::DestinationRule => &["HOST", "SUBSETS"][..],
        Kind::ServiceEntry => &["HOSTS", "PORTS", "LOCATION", "RESOLUTION"][..],
        Kind::Gateway => &["SERVERS", "SELECTOR"][..],
        Kind::PeerAuthentication => &["MODE", "PORT MODES", "SELECTOR"][..],
        Kind::AuthorizationPolicy => &["ACTION", "RULES", "SELECTOR"][..],
        Kind::RequestAuthentication => &["ISSUERS", "SELECTOR"][..],
        Kind::LocalRateLimit => &["LIMIT", "ROUTES", "SELECTOR"][..],
        Kind::Rollout => &["HOST", "STABLE -> CANARY", "PHASE", "CANARY WEIGHT"][..],
        Kind::Telemetry => &["ACCESS LOGS", "TRACE SAMPLING", "SELECTOR"][..],
        Kind::Sidecar => &["EGRESS HOSTS", "OUTBOUND POLICY", "SELECTOR"][..],
        Kind::WorkloadEntry => &["ADDRESS", "PORTS", "LABELS"][..],
        Kind::WorkloadGroup => &["SERVICE ACCOUNT", "LABELS"][..],
        Kind::ProxyConfig => &["CONCURRENCY", "SELECTOR"][..],
        Kind::GatewayClass => &["CONTROLLER", "ACCEPTED"][..],
        Kind::KubeGateway => &["CLASS", "LISTENERS", "PROGRAMMED"][..],
        Kind::HttpRoute | Kind::GrpcRoute | Kind::TcpRoute | Kind::TlsRoute => {
            &["HOSTNAMES", "PARENTS", "ACCEPTED"][..]
        }
        Kind::ReferenceGrant => &["FROM", "TO"][..],
    });
    h
}

pub async fn run(ctx: &Ctx, args: GetArgs) -> Result<()> {
    if matches!(args.kind.to_ascii_lowercase().as_str(), "workload" | "workloads" | "proxies") {
        if ctx.global.platform == crate::cli::Platform::Kube {
            return Err(CliError::unavailable(
                "`mesh get workloads` is not available on the kube platform yet: use `kubectl get pods`",
            ));
        }
        return workloads(ctx, &args).await;
    }
    let kind = Kind::from_cli(&args.kind).ok_or_else(|| {
        CliError::user(format!(
            "unknown kind {:?}: use services (svc), virtualservices (vs), destinationrules (dr), serviceentries (se), gateways (gw), peerauthentications (pa), authorizationpolicies (ap), requestauthentications (ra), localratelimits (rl), telemetries or workloads",
            args.kind
        ))
    })?;
    let ns = (!args.all_namespaces).then_some(ctx.global.namespace.as_str());
    let selector = match &args.selector {
        Some(s) => Some(LabelSelector::parse(s).map_err(CliError::usage)?),
        None => None,
    };
    let mut skipped = Vec::new();
    let mut items = ctx.config_store().await?.list(kind, ns, args.name.as_deref(), &mut skipped).await?;
    for s in &skipped {
        ctx.out.warn(format!("left out, as it does not validate: {s}"));
    }
    if let Some(name) = &args.name
        && items.is_empty()
    {
        return Err(CliError::failed(format!(
            "{} {name:?} not found in namespace {}",
            kind.qualified(),
            ctx.global.namespace
        )));
    }
    if let Some(sel) = &selector {
        items.retain(|r| sel.matches(&r.meta().labels));
    }
    let now = crate::cmd::cert::now_unix();
    match args.output {
        GetOutput::Table | GetOutput::Wide => {
            if items.is_empty() {
                ctx.out.info(format!(
                    "No {} found in {}.",
                    kind.plural(),
                    ns.map(|n| format!("namespace {n}")).unwrap_or("any namespace".into())
                ));
                return Ok(());
            }
            let wide = args.output == GetOutput::Wide;
            let mut head = header(kind, args.all_namespaces);
            head.push("AGE");
            if wide {
                head.push("LABELS");
            }
            let rows = items
                .iter()
                .map(|r| {
                    let mut row = row(r, args.all_namespaces);
                    row.push(age(r.meta().creation_timestamp.as_ref(), now));
                    if wide {
                        row.push(selector_text(&r.meta().labels));
                    }
                    row
                })
                .collect();
            ctx.out.table(&head, rows);
        }
        GetOutput::Name => {
            for r in &items {
                ctx.out.data(format!("{}/{}", kind.qualified(), r.name()));
            }
        }
        GetOutput::Json if args.name.is_some() => ctx.out.structured(Output::Json, &items[0])?,
        GetOutput::Yaml if args.name.is_some() => ctx.out.structured(Output::Yaml, &items[0])?,
        GetOutput::Json => ctx
            .out
            .structured(Output::Json, &serde_json::json!({"apiVersion": "v1", "kind": "List", "items": items}))?,
        GetOutput::Yaml => {
            let docs: Vec<String> = items.iter().map(|r| serde_saphyr::to_string(r).unwrap_or_default()).collect();
            ctx.out.data(docs.join("---\n").trim_end());
        }
    }
    Ok(())
}

/// A resource's age as kubectl shows it (`45s`, `12m`, `3h`, `5d`), from its
/// `creationTimestamp`; `<unknown>` without one.
fn age(created: Option<&serde_json::Value>, now: i64) -> String {
    let Some(t) = created
        .and_then(|v| v.as_str())
        .and_then(|s| time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok())
    else {
        return "<unknown>".into();
    };
    let secs = (now - t.unix_timestamp()).max(0);
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 2 * 3600 => format!("{}m", s / 60),
        s if s < 2 * 86_400 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

/// kubectl's equality-based label selector: `k=v`, `k==v`, `k!=v`, `k`, `!k`, comma-separated.
struct LabelSelector(Vec<(String, Requirement)>);

enum Requirement {
    Equals(String),
    NotEquals(String),
    Exists,
    Absent,
}

impl LabelSelector {
    fn parse(s: &str) -> std::result::Result<LabelSelector, String> {
        let mut reqs = Vec::new();
        for part in s.split(',').map(str::trim) {
            let req = if let Some((k, v)) = part.split_once("!=") {
                (k.trim(), Requirement::NotEquals(v.trim().to_string()))
            } else if let Some((k, v)) = part.split_once("==").or_else(|| part.split_once('=')) {
                (k.trim(), Requirement::Equals(v.trim().to_string()))
            } else if let Some(k) = part.strip_prefix('!') {
                (k.trim(), Requirement::Absent)
            } else {
                (part, Requirement::Exists)
            };
            if req.0.is_empty() || req.0.contains(char::is_whitespace) {
                return Err(format!("-l {s:?}: expected key=value, key!=value, key or !key, comma-separated"));
            }
            reqs.push((req.0.to_string(), req.1));
        }
        Ok(LabelSelector(reqs))
    }

    fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.0.iter().all(|(k, req)| match req {
            Requirement::Equals(v) => labels.get(k) == Some(v),
            Requirement::NotEquals(v) => labels.get(k) != Some(v),
            Requirement::Exists => labels.contains_key(k),
            Requirement::Absent => !labels.contains_key(k),
        })
    }
}

async fn workloads(ctx: &Ctx, args: &GetArgs) -> Result<()> {
    let selector = match &args.selector {
        Some(s) => Some(LabelSelector::parse(s).map_err(CliError::usage)?),
        None => None,
    };
    let all: Vec<ProxyStatus> = ctx.client()?.get(mesh_api::control::PROXIES_PATH).await?;
    let items: Vec<_> = all
        .into_iter()
        .filter(|p| args.all_namespaces || p.workload.namespace == ctx.global.namespace)
        .filter(|p| selector.as_ref().is_none_or(|s| s.matches(&p.workload.labels)))
        .filter(|p| args.name.as_ref().is_none_or(|n| &p.workload.name == n))
        .map(|p| p.workload)
        .collect();
    match args.output {
        GetOutput::Table | GetOutput::Wide => ctx.out.table(
            &["NAMESPACE", "NAME", "SERVICE ACCOUNT", "LABELS", "INBOUND", "OUTBOUND", "ADMIN"],
            items
                .iter()
                .map(|w| {
                    vec![
                        w.namespace.clone(),
                        w.name.clone(),
                        w.service_account.clone(),
                        selector_text(&w.labels),
                        w.ports.iter().map(|p| format!("{}->{}", p.port, p.listen)).collect::<Vec<_>>().join(","),
                        w.outbound.map(|a| a.to_string()).unwrap_or("-".into()),
                        w.admin.map(|a| a.to_string()).unwrap_or("-".into()),
                    ]
                })
                .collect(),
        ),
        GetOutput::Name => {
            for w in &items {
                ctx.out.data(format!("workload/{}", w.name));
            }
        }
        GetOutput::Json => ctx.out.structured(Output::Json, &items)?,
        GetOutput::Yaml => ctx.out.structured(Output::Yaml, &items)?,
    }
    Ok(())
}
