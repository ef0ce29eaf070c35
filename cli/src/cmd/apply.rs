//! `mesh apply -f`: validate everything locally, then send the batch to meshd, which
//! validates again and stores it atomically.

use mesh_api::Parsed;
use mesh_api::control::{ApplyRequest, ApplyResponse};

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
    let client = ctx.client()?;
    let resp: ApplyResponse = client
        .post(
            mesh_api::control::APPLY_PATH,
            &ApplyRequest { resources: values, namespace: ctx.global.namespace.clone(), dry_run: args.dry_run },
        )
        .await?;
    let suffix = if args.dry_run { " (dry run)" } else { "" };
    for r in resp.results {
        ctx.out.info(format!("{}/{} {}{suffix}", r.key.kind.qualified(), r.key.name, r.change.as_str()));
    }
    Ok(())
}
