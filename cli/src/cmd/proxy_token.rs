//! `mesh proxy token create`: a credential that registers one workload, as one service
//! account, and nothing else (the admin token stays with the CLI).

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};

use mesh_api::control::{PROXY_TOKENS_PATH, ProxyTokenRequest, ProxyTokenResponse};

use crate::Ctx;
use crate::cli::ProxyTokenCreateArgs;
use crate::error::{CliError, Result};

pub async fn create(ctx: &Ctx, a: ProxyTokenCreateArgs) -> Result<()> {
    let request = ProxyTokenRequest {
        namespace: ctx.global.namespace.clone(),
        workload: a.workload.clone(),
        service_account: a.service_account.clone(),
        valid_for_secs: a.valid_for.map(|d| d.as_secs().max(1)),
    };
    let answer: ProxyTokenResponse = ctx.admin_client().await?.post(PROXY_TOKENS_PATH, &request).await?;
    let what = format!(
        "proxy token for workload {}/{} as service account {}{}",
        request.namespace,
        request.workload,
        request.service_account,
        answer
            .expires_unix
            .map(|e| format!(", valid until {}", crate::cmd::cert::rfc3339(e as i64)))
            .unwrap_or_default()
    );
    match &a.file {
        Some(path) => {
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(path)
                .and_then(|f| f.set_permissions(std::fs::Permissions::from_mode(0o600)).map(|()| f))
                .map_err(|e| CliError::unavailable(format!("cannot write {}: {e}", path.display())))?;
            f.write_all(format!("{}\n", answer.token).as_bytes())
                .map_err(|e| CliError::unavailable(format!("cannot write {}: {e}", path.display())))?;
            ctx.out.success(format!(
                "{what} written to {} (use: mesh proxy run --token-file {} --workload {} -n {} --service-account {} ...)",
                path.display(),
                path.display(),
                request.workload,
                request.namespace,
                request.service_account
            ));
        }
        None => {
            // Only the token on standard output, so `> FILE` keeps just the token.
            if !ctx.global.quiet {
                eprintln!("{what}:");
            }
            ctx.out.data(answer.token);
        }
    }
    Ok(())
}
