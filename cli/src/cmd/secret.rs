//! `mesh secret create tls | list | delete`: TLS credentials for gateways (`credentialName`)
//! and TLS origination, on the local platform. meshd checks and keeps them in MESH_HOME (0600,
//! as its CA key) and sends each only to the proxies whose config names it; replacing one
//! (`--overwrite`) rotates it on those proxies without a restart. On Kubernetes they are
//! Secrets, made with `kubectl create secret tls`.

use mesh_api::control::{
    CREDENTIALS_DELETE_PATH, CREDENTIALS_PATH, Change, CredentialDeleteRequest, CredentialRequest, CredentialResponse,
};
use mesh_api::credential::{Credential, CredentialInfo};

use crate::Ctx;
use crate::cli::{Output, SecretCreateTlsArgs, SecretDeleteArgs, SecretListArgs};
use crate::error::{CliError, Result};

fn read_pem(path: &std::path::Path, what: &str) -> Result<String> {
    let bytes =
        std::fs::read(path).map_err(|e| CliError::user(format!("cannot read the {what} {}: {e}", path.display())))?;
    String::from_utf8(bytes).map_err(|_| CliError::user(format!("the {what} {} is not PEM text", path.display())))
}

pub async fn create_tls(ctx: &Ctx, args: SecretCreateTlsArgs) -> Result<()> {
    let credential = Credential {
        namespace: ctx.global.namespace.clone(),
        name: args.name.clone(),
        cert_chain: Some(read_pem(&args.cert, "certificate")?),
        private_key: Some(read_pem(&args.key, "private key")?),
        ca: args.ca.as_deref().map(|p| read_pem(p, "CA bundle")).transpose()?,
        crl: args.crl.as_deref().map(|p| read_pem(p, "CRL")).transpose()?,
    };
    let client = ctx.admin_client().await?;
    let resp: CredentialResponse =
        client.post(CREDENTIALS_PATH, &CredentialRequest { credential, overwrite: args.overwrite }).await?;
    ctx.out.data(format!("secret/{} {}", args.name, resp.change.as_str()));
    if resp.change != Change::Unchanged
        && let Some(t) = resp.info.not_after_unix
    {
        ctx.out.info(format!(
            "certificate {} for {}, valid until {}",
            resp.info.subject.as_deref().unwrap_or("?"),
            if resp.info.dns_names.is_empty() { "no DNS names".to_string() } else { resp.info.dns_names.join(", ") },
            crate::cmd::cert::rfc3339(t)
        ));
    }
    Ok(())
}

pub async fn list(ctx: &Ctx, args: SecretListArgs) -> Result<()> {
    let client = ctx.admin_client().await?;
    let mut all: Vec<CredentialInfo> = client.get(CREDENTIALS_PATH).await?;
    if !args.all_namespaces {
        all.retain(|c| c.namespace == ctx.global.namespace);
    }
    if args.output != Output::Table {
        return ctx.out.structured(args.output, &all);
    }
    if all.is_empty() {
        ctx.out.info("No secrets.");
        return Ok(());
    }
    let rows = all
        .iter()
        .map(|c| {
            vec![
                c.namespace.clone(),
                c.name.clone(),
                c.dns_names.join(","),
                c.not_after_unix.map(crate::cmd::cert::rfc3339).unwrap_or_else(|| "-".into()),
                if c.has_key { "yes" } else { "no" }.into(),
                if c.has_ca { "yes" } else { "no" }.into(),
            ]
        })
        .collect();
    ctx.out.table(&["NAMESPACE", "NAME", "DNS NAMES", "EXPIRES", "KEY", "CA"], rows);
    Ok(())
}

pub async fn delete(ctx: &Ctx, args: SecretDeleteArgs) -> Result<()> {
    let client = ctx.admin_client().await?;
    let req = CredentialDeleteRequest { namespace: ctx.global.namespace.clone(), name: args.name.clone() };
    let _: Change = client.post(CREDENTIALS_DELETE_PATH, &req).await?;
    ctx.out.data(format!("secret/{} deleted", args.name));
    Ok(())
}
