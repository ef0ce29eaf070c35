//! `mesh version`: the CLI's version, and the control plane's and proxies' when reachable.

use mesh_api::protocol::ProxyStatus;
use serde::Serialize;

use crate::Ctx;
use crate::cli::{Output, VersionArgs};
use crate::error::Result;

#[derive(Serialize)]
struct Versions {
    client: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    meshd: Option<String>,
    proxies: Vec<String>,
}

pub async fn run(ctx: &Ctx, args: VersionArgs) -> Result<()> {
    if args.short {
        ctx.out.data(mesh_api::VERSION);
        return Ok(());
    }
    let home = meshd::Home::from_env();
    let mut v = Versions { client: mesh_api::VERSION.to_string(), meshd: None, proxies: Vec::new() };
    if let Some(client) = crate::cmd::install::running(&home).await {
        v.meshd = home.read_info().ok().map(|i| i.version);
        let ps: Vec<ProxyStatus> = client.get(mesh_api::control::PROXIES_PATH).await.unwrap_or_default();
        let mut pv: Vec<String> = ps.into_iter().map(|p| p.workload.proxy_version).collect();
        pv.sort();
        pv.dedup();
        v.proxies = pv;
    }
    if args.output != Output::Table {
        return ctx.out.structured(args.output, &v);
    }
    ctx.out.data(format!("client version: {}", v.client));
    ctx.out.data(format!("control plane version: {}", v.meshd.as_deref().unwrap_or("none (meshd is not running)")));
    if !v.proxies.is_empty() {
        ctx.out.data(format!("data plane version: {}", v.proxies.join(", ")));
    }
    Ok(())
}
