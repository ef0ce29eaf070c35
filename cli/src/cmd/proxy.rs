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

/// Apply the ProxyConfig that fits the workload (Istio's order: one in its namespace selecting
/// it, else its namespace's without a selector, else the root namespace's), field by field
/// from the most specific that sets it. Served: `concurrency` (worker threads, unless
/// `--workers` or MESH_PROXY_WORKERS says) and the environment variables
/// `ISTIO_META_IDLE_TIMEOUT`, `TERMINATION_DRAIN_DURATION_SECONDS` and
/// `EXIT_ON_ZERO_ACTIVE_CONNECTIONS` (unless the command line or environment says). meshd not
/// reachable: nothing to apply.
pub fn apply_proxy_config(ctx: &Ctx, args: &mut mesh_proxy::args::ProxyArgs) -> Result<()> {
    let workers_given = std::env::var_os("MESH_PROXY_WORKERS").is_some()
        || std::env::args().any(|a| a == "--workers" || a.starts_with("--workers="));

    let Ok(client) = ctx.client() else { return Ok(()) };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::internal(e.to_string()))?;
    let Ok(all) = rt.block_on(crate::cmd::get::list(&client, Kind::ProxyConfig, None, None)) else { return Ok(()) };
    let labels: std::collections::BTreeMap<String, String> =
        args.labels.iter().filter_map(|l| l.split_once('=')).map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let pcs = all.iter().filter_map(|r| match r {
        Resource::ProxyConfig(pc) => Some((pc.metadata.namespace_or_default(), &pc.spec)),
        _ => None,
    });
    let effective =
        mesh_api::networking::EffectiveProxyConfig::of(pcs, meshd::translate::ROOT_NAMESPACE, &args.namespace, &labels);
    let env_of = |name: &str| effective.environment_variables.get(name);
    // The environment the proxy honours: ISTIO_META_IDLE_TIMEOUT (the downstream idle timeout).
    if args.idle_timeout.is_none()
        && let Some(v) = env_of("ISTIO_META_IDLE_TIMEOUT")
    {
        args.idle_timeout = Some(mesh_api::duration::parse(v).map_err(|e| {
            CliError::user(format!("ProxyConfig environmentVariables.ISTIO_META_IDLE_TIMEOUT={v}: {e}"))
        })?);
    }
    // The termination drain (Istio's names), unless the command line or environment says.
    let given = |flag: &str, env: &str| {
        std::env::var_os(env).is_some() || std::env::args().any(|a| a == flag || a.starts_with(&format!("{flag}=")))
    };
    if !given("--drain-duration", "TERMINATION_DRAIN_DURATION_SECONDS")
        && let Some(v) = env_of("TERMINATION_DRAIN_DURATION_SECONDS")
    {
        args.drain_duration = mesh_proxy::args::drain_duration(v).map_err(|e| {
            CliError::user(format!("ProxyConfig environmentVariables.TERMINATION_DRAIN_DURATION_SECONDS={v}: {e}"))
        })?;
    }
    if !given("--exit-on-zero-active-connections", "EXIT_ON_ZERO_ACTIVE_CONNECTIONS")
        && let Some(v) = env_of("EXIT_ON_ZERO_ACTIVE_CONNECTIONS")
    {
        args.exit_on_zero_active_connections = match v.to_ascii_lowercase().as_str() {
            "true" | "1" => true,
            "false" | "0" => false,
            _ => {
                return Err(CliError::user(format!(
                    "ProxyConfig environmentVariables.EXIT_ON_ZERO_ACTIVE_CONNECTIONS={v}: use true or false"
                )));
            }
        };
    }
    if workers_given {
        return Ok(());
    }
    if let Some(c) = effective.concurrency {
        args.workers = match usize::try_from(c) {
            Ok(0) | Err(_) => std::thread::available_parallelism().map_or(1, |n| n.get()),
            Ok(n) => n,
        };
    }
    Ok(())
}
