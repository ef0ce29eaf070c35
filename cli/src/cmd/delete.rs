//! `mesh delete KIND NAME...` or `mesh delete -f FILE`.

use mesh_api::{Key, Kind, Parsed};

use crate::Ctx;
use crate::cli::DeleteArgs;
use crate::error::{CliError, Result};
use crate::files;

pub async fn run(ctx: &Ctx, args: DeleteArgs) -> Result<()> {
    let mut keys = Vec::new();
    if !args.files.is_empty() {
        if !args.args.is_empty() {
            return Err(CliError::usage("give either -f FILE or KIND NAME..., not both"));
        }
        for d in files::read_all(&args.files, false, &ctx.global.namespace)? {
            if let Parsed::Supported(r) = d.parsed {
                keys.push(r.key());
            }
        }
    } else {
        let Some((kind, names)) = args.args.split_first() else {
            return Err(CliError::usage("usage: mesh delete KIND NAME... or mesh delete -f FILE"));
        };
        let kind = Kind::from_cli(kind).ok_or_else(|| {
            CliError::user(format!("unknown kind {kind:?}: use services, virtualservices or destinationrules"))
        })?;
        if names.is_empty() {
            return Err(CliError::usage(format!("name the {} to delete", kind.plural())));
        }
        keys.extend(names.iter().map(|n| Key { kind, namespace: ctx.global.namespace.clone(), name: n.clone() }));
    }
    let resp = ctx.config_store().await?.delete(keys, args.ignore_not_found).await?;
    for r in resp.results {
        ctx.out.info(format!("{}/{} deleted", r.key.kind.qualified(), r.key.name));
    }
    Ok(())
}
