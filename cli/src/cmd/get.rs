//! `mesh get KIND [NAME]`: tables like kubectl's, or the resources as YAML / JSON.

use std::collections::BTreeMap;

use mesh_api::protocol::ProxyStatus;
use mesh_api::{Kind, Resource};

use crate::Ctx;
use crate::cli::{GetArgs, Output};
use crate::client::MeshdClient;
use crate::error::{CliError, Result};

pub async fn list(
    client: &MeshdClient,
    kind: Kind,
    namespace: Option<&str>,
    name: Option<&str>,
) -> Result<Vec<Resource>> {
    let mut q = format!("{}?kind={}", mesh_api::control::RESOURCES_PATH, kind.as_str());
    if let Some(ns) = namespace {
        q.push_str(&format!("&namespace={ns}"));
    }
    if let Some(n) = name {
        q.push_str(&format!("&name={n}"));
    }
    client.get(&q).await
}

fn selector(m: &BTreeMap<String, String>) -> String {
    if m.is_empty() { "<none>".into() } else { m.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",") }
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
            row.push(selector(&o.spec.selector));
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
            row.push(selector(&o.spec.selector));
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
            let sel = o.spec.selector.as_ref().map(|s| selector(&s.match_labels)).unwrap_or_else(|| "<none>".into());
            row.push(o.spec.mtls.as_ref().map_or("UNSET", |m| m.mode.as_str()).to_string());
            let ports = o.spec.port_level_mtls.iter().flatten().map(|(p, m)| format!("{p}={}", m.mode.as_str()));
            row.push(ports.collect::<Vec<_>>().join(","));
            row.push(sel);
        }
        Resource::AuthorizationPolicy(o) => {
            row.push(o.spec.action.as_str().to_string());
            row.push(o.spec.rules.len().to_string());
            row.push(o.spec.selector.as_ref().map(|s| selector(&s.match_labels)).unwrap_or_else(|| "<none>".into()));
        }
        Resource::LocalRateLimit(o) => {
            let b = o.spec.token_bucket.as_ref();
            row.push(
                b.map(|b| format!("{} per {}", b.tokens_per_fill.unwrap_or(b.max_tokens), b.fill_interval))
                    .unwrap_or("-".into()),
            );
            row.push(o.spec.routes.len().to_string());
            row.push(o.spec.selector.as_ref().map(|s| selector(&s.match_labels)).unwrap_or_else(|| "<none>".into()));
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
            row.push(s.selector.as_ref().map(|s| selector(&s.match_labels)).unwrap_or_else(|| "<none>".into()));
        }
        Resource::RequestAuthentication(o) => {
            row.push(o.spec.jwt_rules.iter().map(|r| r.issuer.as_str()).collect::<Vec<_>>().join(","));
            row.push(o.spec.selector.as_ref().map(|s| selector(&s.match_labels)).unwrap_or_else(|| "<none>".into()));
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
        Kind::Telemetry => &["ACCESS LOGS", "TRACE SAMPLING", "SELECTOR"][..],
    });
    h
}

pub async fn run(ctx: &Ctx, args: GetArgs) -> Result<()> {
    if matches!(args.kind.to_ascii_lowercase().as_str(), "workload" | "workloads" | "proxies") {
        return workloads(ctx, &args).await;
    }
    let kind = Kind::from_cli(&args.kind).ok_or_else(|| {
        CliError::user(format!(
            "unknown kind {:?}: use services (svc), virtualservices (vs), destinationrules (dr), serviceentries (se), gateways (gw), peerauthentications (pa), authorizationpolicies (ap), requestauthentications (ra), localratelimits (rl), telemetries or workloads",
            args.kind
        ))
    })?;
    let ns = (!args.all_namespaces).then_some(ctx.global.namespace.as_str());
    let items = list(&ctx.client()?, kind, ns, args.name.as_deref()).await?;
    if let Some(name) = &args.name
        && items.is_empty()
    {
        return Err(CliError::failed(format!(
            "{} {name:?} not found in namespace {}",
            kind.qualified(),
            ctx.global.namespace
        )));
    }
    match args.output {
        Output::Table => {
            if items.is_empty() {
                ctx.out.info(format!(
                    "No {} found in {}.",
                    kind.plural(),
                    ns.map(|n| format!("namespace {n}")).unwrap_or("any namespace".into())
                ));
                return Ok(());
            }
            ctx.out
                .table(&header(kind, args.all_namespaces), items.iter().map(|r| row(r, args.all_namespaces)).collect());
        }
        format if args.name.is_some() => ctx.out.structured(format, &items[0])?,
        Output::Json => ctx
            .out
            .structured(Output::Json, &serde_json::json!({"apiVersion": "v1", "kind": "List", "items": items}))?,
        Output::Yaml => {
            let docs: Vec<String> = items.iter().map(|r| serde_saphyr::to_string(r).unwrap_or_default()).collect();
            ctx.out.data(docs.join("---\n").trim_end());
        }
    }
    Ok(())
}

async fn workloads(ctx: &Ctx, args: &GetArgs) -> Result<()> {
    let all: Vec<ProxyStatus> = ctx.client()?.get(mesh_api::control::PROXIES_PATH).await?;
    let items: Vec<_> = all
        .into_iter()
        .filter(|p| args.all_namespaces || p.workload.namespace == ctx.global.namespace)
        .filter(|p| args.name.as_ref().is_none_or(|n| &p.workload.name == n))
        .map(|p| p.workload)
        .collect();
    match args.output {
        Output::Table => ctx.out.table(
            &["NAMESPACE", "NAME", "SERVICE ACCOUNT", "LABELS", "INBOUND", "OUTBOUND", "ADMIN"],
            items
                .iter()
                .map(|w| {
                    vec![
                        w.namespace.clone(),
                        w.name.clone(),
                        w.service_account.clone(),
                        selector(&w.labels),
                        w.ports.iter().map(|p| format!("{}->{}", p.port, p.listen)).collect::<Vec<_>>().join(","),
                        w.outbound.map(|a| a.to_string()).unwrap_or("-".into()),
                        w.admin.map(|a| a.to_string()).unwrap_or("-".into()),
                    ]
                })
                .collect(),
        ),
        format => ctx.out.structured(format, &items)?,
    }
    Ok(())
}
