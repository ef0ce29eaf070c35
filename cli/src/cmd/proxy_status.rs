//! `mesh proxy-status [NAME]`: per proxy and config type, SYNCED / NOT SENT / STALE / ERROR.

use std::time::{Duration, Instant};

use mesh_api::protocol::{ProxyStatus, SyncState};
use mesh_api::proxy_config::ConfigType;

use crate::Ctx;
use crate::cli::{Output, ProxyStatusArgs};
use crate::client::MeshdClient;
use crate::error::{CliError, Result};
use crate::reach::Reach;

pub async fn fetch(client: &MeshdClient) -> Result<Vec<ProxyStatus>> {
    client.get(mesh_api::control::PROXIES_PATH).await
}

fn state(p: &ProxyStatus, t: ConfigType) -> SyncState {
    p.state(t)
}

pub fn all_synced(p: &ProxyStatus) -> bool {
    ConfigType::ALL.into_iter().all(|t| state(p, t) == SyncState::Synced)
}

/// Wait until every connected proxy has acknowledged what meshd would send now.
pub async fn wait_synced(client: &MeshdClient, timeout: Duration) -> Result<Vec<ProxyStatus>> {
    wait_for(&Reach::Local(Box::new(client.clone())), timeout, 0).await
}

/// Wait until at least `at_least` proxies are connected and every one has acknowledged.
async fn wait_for(reach: &Reach, timeout: Duration, at_least: usize) -> Result<Vec<ProxyStatus>> {
    let deadline = Instant::now() + timeout;
    // A port-forward per look on a cluster: look less often there.
    let every = match reach {
        Reach::Local(_) => Duration::from_millis(20),
        Reach::Kube { .. } => Duration::from_millis(500),
    };
    loop {
        let ps = reach.proxies().await?;
        if (ps.len() >= at_least && ps.iter().all(all_synced)) || Instant::now() > deadline {
            return Ok(ps);
        }
        tokio::time::sleep(every).await;
    }
}

/// `mesh wait` and `apply --wait`: until every connected proxy is SYNCED, or fail naming the
/// proxies behind (and why, for a rejection) when `timeout` passes.
pub async fn wait(ctx: &Ctx, timeout: Duration, at_least: usize) -> Result<()> {
    let statuses = wait_for(&ctx.reach().await?, timeout, at_least).await?;
    if statuses.len() < at_least {
        return Err(CliError::failed(format!(
            "{} of the {at_least} proxies asked for connected within {timeout:?}; `mesh proxy-status` lists them",
            statuses.len()
        )));
    }
    let behind: Vec<String> = statuses
        .iter()
        .filter(|p| !all_synced(p))
        .map(|p| {
            let states: Vec<String> = ConfigType::ALL
                .into_iter()
                .filter(|t| state(p, *t) != SyncState::Synced)
                .map(|t| format!("{t} {}", state(p, t).as_str()))
                .collect();
            format!("{}.{} ({})", p.workload.name, p.workload.namespace, states.join(", "))
        })
        .collect();
    if !behind.is_empty() {
        return Err(CliError::failed(format!(
            "not every proxy acknowledged the config within {timeout:?}: {}; `mesh proxy-status NAME` says why",
            behind.join("; ")
        )));
    }
    ctx.out.success(format!("{} proxies have the config meshd holds now", statuses.len()));
    Ok(())
}

pub fn table(ctx: &Ctx, statuses: &[ProxyStatus]) {
    let rows = statuses
        .iter()
        .map(|p| {
            let mut row = vec![format!("{}.{}", p.workload.name, p.workload.namespace)];
            for t in ConfigType::ALL {
                row.push(state(p, t).as_str().to_string());
            }
            row.push(p.meshd.clone());
            row.push(p.workload.proxy_version.clone());
            row
        })
        .collect();
    ctx.out.table(&["NAME", "ROUTES", "CLUSTERS", "ENDPOINTS", "LISTENERS", "MESHD", "VERSION"], rows);
}

pub async fn run(ctx: &Ctx, args: ProxyStatusArgs) -> Result<()> {
    let reach = ctx.reach().await?;
    let mut statuses = reach.proxies().await?;
    if let Some(name) = &args.name {
        let (ns, n) = name.split_once('/').unwrap_or((ctx.global.namespace.as_str(), name.as_str()));
        let (n, ns) = match n.split_once('.') {
            Some((n2, ns2)) if !name.contains('/') => (n2, ns2),
            _ => (n, ns),
        };
        statuses.retain(|p| p.workload.name == n && p.workload.namespace == ns);
        let Some(p) = statuses.first() else {
            return Err(CliError::failed(format!(
                "no proxy {n:?} is connected in namespace {ns}; `mesh proxy-status` lists them"
            )));
        };
        if args.output != Output::Table {
            return ctx.out.structured(args.output, p);
        }
        ctx.out.data(format!(
            "Proxy {}.{} (pid {}), connected to {}",
            p.workload.name, p.workload.namespace, p.workload.pid, p.meshd
        ));
        let rows = ConfigType::ALL
            .into_iter()
            .map(|t| {
                let s = p.types.get(&t).cloned().unwrap_or_default();
                vec![
                    t.as_str().to_string(),
                    state(p, t).as_str().to_string(),
                    s.current.clone(),
                    s.sent.clone().unwrap_or("-".into()),
                    s.acked.clone().unwrap_or("-".into()),
                    s.nacked.as_ref().map(|n| format!("{}: {}", n.version, n.error)).unwrap_or_default(),
                ]
            })
            .collect();
        ctx.out.table(&["TYPE", "STATUS", "MESHD WOULD SEND", "SENT", "ACKNOWLEDGED", "REJECTED"], rows);
        diff(ctx, &reach, p).await?;
        return Ok(());
    }
    // Every namespace, as istioctl's; -n given: that namespace only.
    if ctx.global.namespace_given {
        statuses.retain(|p| p.workload.namespace == ctx.global.namespace);
    }
    if args.output != Output::Table {
        return ctx.out.structured(args.output, &statuses);
    }
    if statuses.is_empty() {
        ctx.out.info("No proxies are connected. Start one with `mesh proxy run --workload NAME ...`.");
        return Ok(());
    }
    table(ctx, &statuses);
    Ok(())
}

/// What meshd would send now against what the proxy holds (its config dump), per type:
/// "in sync", or the lines that differ (like `istioctl proxy-status NAME`).
async fn diff(ctx: &Ctx, reach: &crate::reach::Reach, p: &ProxyStatus) -> Result<()> {
    let id = format!("{}/{}", p.workload.namespace, p.workload.name);
    let want = reach.proxy_config(&id).await?;
    if p.workload.admin.is_none() {
        ctx.out.info("the proxy reported no admin address; cannot compare with what it holds");
        return Ok(());
    }
    let held = match reach.admin_get(p, "/config_dump").await {
        Ok(body) => serde_json::from_slice::<serde_json::Value>(&body).unwrap_or_default(),
        Err(e) => {
            ctx.out.warn(format!("cannot read what the proxy holds: {e}"));
            return Ok(());
        }
    };
    ctx.out.data("");
    for t in ConfigType::ALL {
        let a = serde_json::to_string_pretty(&want[t.as_str()]).unwrap_or_default();
        let b = serde_json::to_string_pretty(&held["config"][t.as_str()]).unwrap_or_default();
        if a == b {
            ctx.out.data(format!("{t}: meshd and the proxy agree"));
            continue;
        }
        ctx.out.data(format!("{t}: differs (--- proxy holds, +++ meshd would send)"));
        let d = similar::TextDiff::from_lines(&b, &a);
        for change in d.iter_all_changes() {
            let sign = match change.tag() {
                similar::ChangeTag::Delete => "-",
                similar::ChangeTag::Insert => "+",
                similar::ChangeTag::Equal => continue,
            };
            ctx.out.data(format!("{sign} {}", change.value().trim_end()));
        }
    }
    Ok(())
}
