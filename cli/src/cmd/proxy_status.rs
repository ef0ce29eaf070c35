//! `mesh proxy-status [NAME]`: per proxy and config type, SYNCED / NOT SENT / STALE / ERROR.

use std::time::{Duration, Instant};

use mesh_api::protocol::{ProxyStatus, SyncState};
use mesh_api::proxy_config::ConfigType;

use crate::Ctx;
use crate::cli::{Output, ProxyStatusArgs};
use crate::client::MeshdClient;
use crate::error::{CliError, Result};

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
    let deadline = Instant::now() + timeout;
    loop {
        let ps = fetch(client).await?;
        if ps.iter().all(all_synced) || Instant::now() > deadline {
            return Ok(ps);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
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
    let client = ctx.client()?;
    let mut statuses = fetch(&client).await?;
    if let Some(name) = &args.name {
        let (ns, n) = name.split_once('/').unwrap_or((ctx.global.namespace.as_str(), name.as_str()));
        let (n, ns) = match n.split_once('.') {
            Some((n2, ns2)) if !name.contains('/') => (n2, ns2),
            _ => (n, ns),
        };
        statuses.retain(|p| p.workload.name == n && p.workload.namespace == ns);
        let Some(p) = statuses.first() else {
            return Err(CliError::user(format!(
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
        return Ok(());
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
