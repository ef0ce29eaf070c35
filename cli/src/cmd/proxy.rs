//! `mesh proxy run --workload-group NAME`: a workload outside the platform (a VM, a plain
//! process) joins with its WorkloadGroup's template, as Istio's VMs auto-register: the
//! template's labels and service account become the workload's, so the Services and
//! ServiceEntries selecting the group select it while its proxy is connected.

use mesh_api::{Kind, Resource};

use crate::Ctx;
use crate::error::{CliError, Result};

/// Fill `args` from the WorkloadGroup `group` in the proxy's namespace.
pub fn join_group(ctx: &Ctx, args: &mut mesh_proxy::args::ProxyArgs, group: &str) -> Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::internal(e.to_string()))?;
    let client = ctx.client()?;
    let found = rt.block_on(crate::cmd::get::list(&client, Kind::WorkloadGroup, Some(&args.namespace), Some(group)))?;
    let Some(Resource::WorkloadGroup(wg)) = found.into_iter().next() else {
        return Err(CliError::user(format!(
            "WorkloadGroup {}/{group} not found; create it first (mesh apply -f), then join it",
            args.namespace
        )));
    };
    let t = &wg.spec.template;
    let given: Vec<String> = std::mem::take(&mut args.labels);
    let mut labels: Vec<String> = t.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    labels.extend(given);
    args.labels = labels;
    if let Some(sa) = &t.service_account {
        if args.service_account != "default" && args.service_account != *sa {
            return Err(CliError::user(format!(
                "--service-account {} differs from WorkloadGroup {group}'s serviceAccount {sa}; leave it out",
                args.service_account
            )));
        }
        args.service_account = sa.clone();
    }
    Ok(())
}
