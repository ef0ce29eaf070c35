//! `mesh proxy-config routes|clusters|listeners|endpoints|secrets|all NAME`: what one proxy
//! holds, read from its own admin API (not what meshd thinks it sent).

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use mesh_api::proxy_config::ProxyConfig;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::Ctx;
use crate::cli::{Output, ProxyConfigArgs, ProxyConfigKind};
use crate::error::{CliError, Result};

#[derive(Deserialize)]
struct Dump {
    versions: Value,
    config: ProxyConfig,
}

/// One request to a proxy's admin API: its status and body.
pub async fn admin_call(
    addr: std::net::SocketAddr,
    method: http::Method,
    path: &str,
) -> Result<(http::StatusCode, Vec<u8>)> {
    let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let req = http::Request::builder()
        .method(method)
        .uri(format!("http://{addr}{path}"))
        .body(Empty::new())
        .map_err(|e| CliError::internal(e.to_string()))?;
    let resp = tokio::time::timeout(Duration::from_secs(10), client.request(req))
        .await
        .map_err(|_| CliError::unavailable(format!("the proxy's admin API at {addr} did not answer within 10s")))?
        .map_err(|e| CliError::unavailable(format!("cannot reach the proxy's admin API at {addr}: {e}")))?;
    let status = resp.status();
    let body = resp.into_body().collect().await.map_err(|e| CliError::unavailable(e.to_string()))?.to_bytes();
    Ok((status, body.to_vec()))
}

/// `proxy-config log NAME [--level L]`: the proxy's log level, or set it.
async fn log_level(
    ctx: &Ctx,
    reach: &crate::reach::Reach,
    proxy: &mesh_api::protocol::ProxyStatus,
    level: Option<&str>,
) -> Result<()> {
    let (status, body) = match level {
        Some(l) => {
            // A level or a filter of targets and levels; nothing a URI query would mangle.
            if l.is_empty() || !l.bytes().all(|b| b.is_ascii_alphanumeric() || b"_=,.:-".contains(&b)) {
                return Err(CliError::usage(format!(
                    "--level {l:?}: use trace, debug, info, warn, error, off, or a filter like mesh_proxy=debug,info"
                )));
            }
            reach.admin_call(proxy, http::Method::POST, &format!("/logging?level={l}")).await?
        }
        None => reach.admin_call(proxy, http::Method::GET, "/logging").await?,
    };
    let text = String::from_utf8_lossy(&body).trim().to_string();
    if !status.is_success() {
        return Err(CliError::user(text));
    }
    ctx.out.data(text);
    Ok(())
}

fn matcher(m: &mesh_api::proxy_config::StringMatcher) -> String {
    use mesh_api::proxy_config::StringMatcher::*;
    match m {
        Exact(s) => s.clone(),
        Prefix(s) => format!("{s}*"),
        Regex(r) => format!("~{r}"),
    }
}

pub async fn run(ctx: &Ctx, args: ProxyConfigArgs) -> Result<()> {
    let reach = ctx.reach().await?;
    let statuses = reach.proxies().await?;
    let (ns, name) = match (args.name.split_once('/'), args.name.split_once('.')) {
        (Some((ns, n)), _) => (ns.to_string(), n.to_string()),
        (None, Some((n, ns))) => (ns.to_string(), n.to_string()),
        (None, None) => (ctx.global.namespace.clone(), args.name.clone()),
    };
    let proxy = statuses.iter().find(|p| p.workload.name == name && p.workload.namespace == ns).ok_or_else(|| {
        CliError::failed(format!("no proxy {name}.{ns} is connected; `mesh proxy-status` lists them"))
    })?;
    if args.kind == ProxyConfigKind::Log {
        return log_level(ctx, &reach, proxy, args.level.as_deref()).await;
    }
    if args.level.is_some() {
        return Err(CliError::usage("--level goes with `proxy-config log NAME`"));
    }
    let dump: Dump = serde_json::from_slice(&reach.admin_get(proxy, "/config_dump").await?)
        .map_err(|e| CliError::unavailable(format!("unexpected config dump from {name}.{ns}: {e}")))?;
    let certs: Value = serde_json::from_slice(&reach.admin_get(proxy, "/certs").await?).unwrap_or(Value::Null);
    let cfg = &dump.config;
    let want = |k: ProxyConfigKind| args.kind == k || args.kind == ProxyConfigKind::All;

    if args.output != Output::Table {
        let mut out = serde_json::Map::new();
        if want(ProxyConfigKind::Routes) {
            out.insert("routes".into(), json!(cfg.routes));
        }
        if want(ProxyConfigKind::Clusters) {
            out.insert("clusters".into(), json!(cfg.clusters));
        }
        if want(ProxyConfigKind::Endpoints) {
            out.insert("endpoints".into(), json!(cfg.endpoints));
        }
        if want(ProxyConfigKind::Listeners) {
            out.insert("listeners".into(), json!({"workload": proxy.workload, "inbound": cfg.listeners}));
        }
        if want(ProxyConfigKind::Secrets) {
            out.insert("secrets".into(), certs.clone());
        }
        if args.kind == ProxyConfigKind::All {
            out.insert("versions".into(), dump.versions.clone());
        }
        let value = if args.kind == ProxyConfigKind::All {
            Value::Object(out)
        } else {
            out.into_values().next().unwrap_or(Value::Null)
        };
        return ctx.out.structured(args.output, &value);
    }

    if want(ProxyConfigKind::Routes) {
        let mut rows = Vec::new();
        for vh in cfg.routes.virtual_hosts.iter().chain(&cfg.routes.gateway_http) {
            for r in &vh.routes {
                let matches: Vec<String> = if r.matches.is_empty() {
                    vec!["/*".into()]
                } else {
                    r.matches.iter().map(|m| m.uri.as_ref().map(matcher).unwrap_or_else(|| "/*".into())).collect()
                };
                let dest: Vec<String> = if let Some(d) = &r.direct_response {
                    vec![format!("direct {}", d.status)]
                } else if let Some(rd) = &r.redirect {
                    vec![format!("redirect {}", rd.status)]
                } else {
                    r.clusters.iter().map(|c| format!("{} ({}%)", c.cluster, c.weight)).collect()
                };
                rows.push(vec![
                    vh.name.clone(),
                    vh.domains.join(","),
                    matches.join(","),
                    r.name.clone(),
                    dest.join(" "),
                ]);
            }
        }
        for t in cfg.routes.tcp.iter().chain(&cfg.routes.gateway_tcp) {
            let dest: Vec<String> = t.clusters.iter().map(|c| format!("{} ({}%)", c.cluster, c.weight)).collect();
            rows.push(vec![t.name.clone(), t.domains.join(","), "TCP".into(), t.route.clone(), dest.join(" ")]);
        }
        ctx.out.table(&["NAME", "DOMAINS", "MATCH", "ROUTE", "DESTINATIONS"], rows);
        ctx.out.data("");
    }
    if want(ProxyConfigKind::Clusters) {
        let rows = cfg
            .clusters
            .clusters
            .iter()
            .map(|c| {
                vec![
                    c.service.clone(),
                    c.port.to_string(),
                    c.subset.clone().unwrap_or_else(|| "-".into()),
                    "outbound".into(),
                    format!("{:?}", c.lb_policy).to_ascii_uppercase(),
                    if c.passthrough { "ORIGINAL_DST".into() } else { "EDS".into() },
                ]
            })
            .collect();
        ctx.out.table(&["SERVICE FQDN", "PORT", "SUBSET", "DIRECTION", "LB", "TYPE"], rows);
        ctx.out.data("");
    }
    if want(ProxyConfigKind::Endpoints) {
        let mut rows = Vec::new();
        for (cluster, eps) in &cfg.endpoints.clusters {
            for e in eps {
                let addr =
                    e.hostname.as_ref().map(|h| format!("{h}:{}", e.address.port())).unwrap_or(e.address.to_string());
                rows.push(vec![
                    addr,
                    if e.mtls { "mTLS" } else { "plaintext" }.into(),
                    e.workload.clone(),
                    cluster.clone(),
                ]);
            }
        }
        ctx.out.table(&["ENDPOINT", "TRANSPORT", "WORKLOAD", "CLUSTER"], rows);
        ctx.out.data("");
    }
    if want(ProxyConfigKind::Listeners) {
        let mut rows = Vec::new();
        if let Some(o) = proxy.workload.outbound {
            rows.push(vec![o.to_string(), "outbound".into(), "HTTP proxy".into(), "-".into()]);
        }
        for p in &proxy.workload.ports {
            let l = cfg.listeners.inbound.iter().find(|l| l.port == p.port);
            rows.push(vec![
                p.listen.to_string(),
                format!("inbound port {}", p.port),
                if l.is_some_and(|l| l.tcp) { "TCP".into() } else { "HTTP".into() },
                l.map(|l| l.mtls.as_str().to_string()).unwrap_or_else(|| "PERMISSIVE".into()),
            ]);
        }
        ctx.out.table(&["ADDRESS", "LISTENER", "PROTOCOL", "MTLS"], rows);
        let policies: Vec<String> =
            cfg.listeners.policies.iter().map(|p| format!("{} ({:?})", p.name, p.action)).collect();
        if !policies.is_empty() {
            ctx.out.data(format!("authorization policies: {}", policies.join(", ")));
        }
        ctx.out.data("");
    }
    if want(ProxyConfigKind::Secrets) {
        let mut rows = Vec::new();
        if let Some(c) = certs.get("certificate").filter(|c| !c.is_null()) {
            rows.push(vec![
                "default".into(),
                "Cert Chain".into(),
                c["serial"].as_str().unwrap_or("").into(),
                c["not_after_unix"].to_string(),
                c["not_before_unix"].to_string(),
            ]);
        }
        for r in certs.get("trust_bundle").and_then(Value::as_array).into_iter().flatten() {
            rows.push(vec![
                "ROOTCA".into(),
                "CA".into(),
                r["serial"].as_str().unwrap_or("").into(),
                r["not_after_unix"].to_string(),
                r["not_before_unix"].to_string(),
            ]);
        }
        ctx.out.table(&["RESOURCE NAME", "TYPE", "SERIAL NUMBER", "NOT AFTER (unix)", "NOT BEFORE (unix)"], rows);
    }
    Ok(())
}
