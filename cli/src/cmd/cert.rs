//! `mesh cert status | rotate | rotate-root`: workload certificates and the mesh CA.

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mesh_api::control::{
    CA_RENEW_PATH, CA_ROTATE_ROOT_PATH, CaStatus, RenewRequest, RenewResponse, RotateRootResponse,
};
use mesh_api::protocol::ProxyStatus;
use serde::Serialize;

use crate::Ctx;
use crate::cli::{CertRotateArgs, CertRotateRootArgs, CertStatusArgs, Output};
use crate::error::{CliError, Result};

pub fn now_unix() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

pub fn rfc3339(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_else(|| unix.to_string())
}

/// `23h59m`, `12m`, `expired`.
fn time_left(secs: i64) -> String {
    if secs <= 0 {
        return "expired".into();
    }
    let (d, h, m) = (secs / 86_400, secs % 86_400 / 3600, secs % 3600 / 60);
    match (d, h) {
        (0, 0) => format!("{m}m"),
        (0, _) => format!("{h}h{m:02}m"),
        _ => format!("{d}d{h:02}h"),
    }
}

/// The CN of a root's subject, for a short column.
fn short_name(subject: &str) -> String {
    subject.split(", ").find_map(|p| p.strip_prefix("CN=")).unwrap_or(subject).to_string()
}

#[derive(Serialize)]
struct ProxyCert {
    proxy: String,
    identity: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    serial: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    not_before: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    not_after: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    seconds_left: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    root: Option<String>,
    trusts_current_bundle: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

#[derive(Serialize)]
struct StatusOut {
    trust_domain: String,
    roots: Vec<mesh_api::control::RootStatus>,
    certificates_issued: u64,
    proxies: Vec<ProxyCert>,
}

fn matches_name(p: &ProxyStatus, name: &str, default_ns: &str) -> bool {
    let (ns, n) = name.split_once('/').unwrap_or((default_ns, name));
    p.workload.namespace == ns && p.workload.name == n
}

fn proxy_id(name: &str, default_ns: &str) -> String {
    if name.contains('/') { name.to_string() } else { format!("{default_ns}/{name}") }
}

pub async fn status(ctx: &Ctx, args: CertStatusArgs) -> Result<()> {
    let reach = ctx.reach().await?;
    let ca: CaStatus = reach.ca().await?;
    let mut proxies = reach.proxies().await?;
    if let Some(name) = &args.name {
        proxies.retain(|p| matches_name(p, name, &ctx.global.namespace));
        if proxies.is_empty() {
            return Err(CliError::failed(format!("no proxy {name:?} is connected; `mesh proxy-status` lists them")));
        }
    }
    let roots: BTreeMap<&str, &str> =
        ca.roots.iter().map(|r| (r.cert.key_id.as_str(), r.cert.subject.as_str())).collect();
    let now = now_unix();
    let rows: Vec<ProxyCert> = proxies
        .iter()
        .map(|p| {
            let c = p.identity.cert.as_ref();
            ProxyCert {
                proxy: format!("{}.{}", p.workload.name, p.workload.namespace),
                identity: c.and_then(|c| c.uris.first().cloned()).unwrap_or_else(|| {
                    format!(
                        "spiffe://{}/ns/{}/sa/{}",
                        ca.trust_domain, p.workload.namespace, p.workload.service_account
                    )
                }),
                serial: c.map(|c| c.serial.clone()),
                not_before: c.map(|c| rfc3339(c.not_before_unix)),
                not_after: c.map(|c| rfc3339(c.not_after_unix)),
                seconds_left: c.map(|c| c.not_after_unix - now),
                root: c.map(|c| {
                    roots
                        .get(c.authority_key_id.as_str())
                        .map(|s| short_name(s))
                        .unwrap_or_else(|| format!("untrusted root {}", c.authority_key_id))
                }),
                trusts_current_bundle: p.identity.bundle_version == ca.bundle_version,
                error: p.identity.error.clone(),
            }
        })
        .collect();
    if args.output != Output::Table {
        let out =
            StatusOut { trust_domain: ca.trust_domain, roots: ca.roots, certificates_issued: ca.issued, proxies: rows };
        return ctx.out.structured(args.output, &out);
    }
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                r.proxy.clone(),
                r.identity.clone(),
                r.serial.clone().unwrap_or_else(|| "-".into()),
                r.not_after.clone().unwrap_or_else(|| "-".into()),
                r.seconds_left.map(time_left).unwrap_or_else(|| "-".into()),
                r.root.clone().unwrap_or_else(|| r.error.clone().unwrap_or_else(|| "no certificate yet".into())),
            ]
        })
        .collect();
    if table.is_empty() {
        ctx.out.info("No proxies are connected.");
    } else {
        ctx.out.table(&["PROXY", "IDENTITY", "SERIAL", "EXPIRES", "TIME LEFT", "ROOT"], table);
    }
    ctx.out.data("");
    let roots: Vec<Vec<String>> = ca
        .roots
        .iter()
        .map(|r| {
            vec![
                short_name(&r.cert.subject),
                if r.signing { "signing".into() } else { "trusted".into() },
                rfc3339(r.cert.not_after_unix),
                r.cert.key_id.clone(),
            ]
        })
        .collect();
    ctx.out.table(&["ROOT", "ROLE", "EXPIRES", "KEY ID"], roots);
    Ok(())
}

pub async fn rotate(ctx: &Ctx, args: CertRotateArgs) -> Result<()> {
    let client = ctx.admin_client().await?;
    let before = crate::cmd::proxy_status::fetch(&client).await?;
    let workload = args.workload.as_deref().map(|w| proxy_id(w, &ctx.global.namespace));
    let resp: RenewResponse = client.post(CA_RENEW_PATH, &RenewRequest { workload }).await?;
    if resp.proxies.is_empty() {
        ctx.out.info("No proxies are connected; nothing to renew.");
        return Ok(());
    }
    let old: BTreeMap<&str, Option<&str>> =
        before.iter().map(|p| (p.id.as_str(), p.identity.cert.as_ref().map(|c| c.serial.as_str()))).collect();
    let pb = ctx.out.spinner("waiting for the proxies to install their new certificates");
    let deadline = Instant::now() + Duration::from_secs(30);
    let result = loop {
        let now = crate::cmd::proxy_status::fetch(&client).await?;
        let pending: Vec<&str> = resp
            .proxies
            .iter()
            .filter(|id| {
                now.iter().find(|p| &p.id == *id).is_some_and(|p| {
                    let serial = p.identity.cert.as_ref().map(|c| c.serial.as_str());
                    serial.is_none() || old.get(id.as_str()).copied().flatten() == serial
                })
            })
            .map(String::as_str)
            .collect();
        if pending.is_empty() {
            break Ok(());
        }
        if Instant::now() > deadline {
            break Err(CliError::unavailable(format!(
                "these proxies did not renew within 30s: {}; see `mesh cert status`",
                pending.join(", ")
            )));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    if let Some(pb) = pb {
        pb.finish_and_clear();
    }
    result?;
    ctx.out.success(format!("renewed {} certificate(s): {}", resp.proxies.len(), resp.proxies.join(", ")));
    Ok(())
}

pub async fn rotate_root(ctx: &Ctx, args: CertRotateRootArgs) -> Result<()> {
    let client = ctx.admin_client().await?;
    ctx.out.confirm(
        "Rotate the mesh root CA? Every proxy gets a new certificate; traffic keeps flowing throughout.",
        args.yes,
    )?;
    let pb = ctx.out.spinner("rotating the root: new root trusted, re-issuing, retiring the old root");
    let result: Result<RotateRootResponse> =
        client.post_with_timeout(CA_ROTATE_ROOT_PATH, &serde_json::json!({}), Duration::from_secs(150)).await;
    if let Some(pb) = pb {
        pb.finish_and_clear();
    }
    let r = result?;
    ctx.out.success(format!(
        "root rotated in {:.1}s: {} -> {}; {} proxies moved, the old root is retired",
        r.seconds,
        short_name(&r.old_root),
        short_name(&r.new_root),
        r.proxies
    ));
    Ok(())
}
