//! `mesh apply -f`: validate everything locally, then send the batch to meshd, which
//! validates again and stores it atomically (on a cluster, to the API server: `store`).

use mesh_api::Parsed;

use crate::Ctx;
use crate::cli::ApplyArgs;
use crate::error::{CliError, Result};
use crate::files;

pub async fn run(ctx: &Ctx, args: ApplyArgs) -> Result<()> {
    let docs = files::read_all(&args.files, args.recursive, &ctx.global.namespace)?;
    let mut values = Vec::new();
    for d in &docs {
        match &d.parsed {
            Parsed::Supported(r) => {
                let fields = mesh_api::support::unenforced(r);
                if !fields.is_empty() {
                    ctx.out.warn(format!(
                        "{} {}: accepted and stored, but not enforced by the proxy yet: {}",
                        r.kind(),
                        r.name(),
                        fields.join(", ")
                    ));
                }
                values.push(d.value.clone());
            }
            Parsed::NotUsedLocally { kind, name } => {
                ctx.out.info(format!("{kind}/{name} skipped: not used on the local platform ({})", d.source))
            }
            Parsed::Unsupported { api_version, kind, name } => ctx.out.warn(format!(
                "{kind}/{name} ({api_version}) skipped: not supported by this version of mesh yet ({})",
                d.source
            )),
        }
    }
    if values.is_empty() {
        if docs.is_empty() {
            return Err(CliError::user("no resources found in the given files"));
        }
        return Ok(());
    }
    let store = ctx.config_store().await?;
    let (live, _) = store.snapshot().await?;
    let applied: Vec<(String, String, String)> = docs
        .iter()
        .filter_map(|d| match &d.parsed {
            Parsed::Supported(r) => {
                Some((r.kind().as_str().to_string(), r.namespace().to_string(), r.name().to_string()))
            }
            _ => None,
        })
        .collect();
    let analysis_input =
        crate::cmd::analyze::layered(live, docs.iter().map(|d| d.value.clone()).collect(), &ctx.global.namespace);
    // The same analysis as `mesh analyze`, over the config as it would be: an Error about what
    // is applied (it would break traffic) refuses the apply unless --force; Warnings are
    // printed and the apply stands. Analyzers that judge running workloads are left to
    // `mesh analyze`: at apply time the workloads may not have started.
    let mut analyzers = crate::analyze::all();
    analyzers.retain(|a| !a.judges_workloads() && a.default_enabled());
    let findings: Vec<_> = crate::analyze::run(&analyzers, analysis_input, serde_json::Value::Null)
        .into_iter()
        .filter(|m| {
            applied
                .iter()
                .any(|(k, ns, n)| *k == m.kind && Some(ns.as_str()) == m.namespace.as_deref() && *n == m.resource_name)
        })
        .collect();
    let line = |m: &crate::analyze::Message| {
        format!("{} [{}] ({}) {}", m.level.as_str(), m.code, m.text_resource(), m.message)
    };
    let errors: Vec<String> = findings.iter().filter(|m| m.level == crate::analyze::Level::Error).map(&line).collect();
    if !errors.is_empty() && !args.force {
        return Err(CliError::issues(format!(
            "the analysis finds errors in what would be applied:\n  {}\nnothing was changed; fix them, or apply anyway with --force",
            errors.join("\n  ")
        )));
    }
    let resp = store.apply(values, &ctx.global.namespace, args.dry_run).await?;
    let suffix = if args.dry_run { " (dry run)" } else { "" };
    for r in resp.results {
        ctx.out.info(format!("{}/{} {}{suffix}", r.key.kind.qualified(), r.key.name, r.change.as_str()));
    }
    for m in &findings {
        ctx.out.warn(line(m));
    }
    if args.wait && !args.dry_run {
        return crate::cmd::proxy_status::wait(ctx, args.timeout, 0).await;
    }
    Ok(())
}
