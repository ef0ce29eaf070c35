//! `mesh check`: Linkerd-style health checks over a running mesh (local, or on a cluster
//! through `reach`), each a ✔ or × line with a hint; `--pre` runs the pre-install checks
//! (`mesh precheck`).

use mesh_api::control::CaStatus;

use crate::Ctx;
use crate::cli::CheckArgs;
use crate::error::{CliError, Result};

/// A root or workload certificate with less than this left is reported.
const EXPIRY_WARNING_SECS: i64 = 7 * 86_400;

struct Outcome {
    failed: usize,
    warned: usize,
}

impl Outcome {
    fn pass(&self, ctx: &Ctx, what: &str) {
        ctx.out.data(format!("√ {what}"));
    }
    fn fail(&mut self, ctx: &Ctx, what: &str, hint: &str) {
        self.failed += 1;
        ctx.out.data(format!("× {what}\n    see: {hint}"));
    }
    fn warn(&mut self, ctx: &Ctx, what: &str, hint: &str) {
        self.warned += 1;
        ctx.out.data(format!("‼ {what}\n    see: {hint}"));
    }
}

pub async fn run(ctx: &Ctx, args: CheckArgs) -> Result<()> {
    if args.pre {
        return match ctx.global.platform {
            crate::cli::Platform::Local => crate::cmd::install::precheck(ctx).await,
            crate::cli::Platform::Kube => crate::cmd::kube::precheck(ctx).await,
        };
    }
    let mut o = Outcome { failed: 0, warned: 0 };
    ctx.out.data("meshd\n-----");
    let (reach, ca, version) = match ctx.global.platform {
        crate::cli::Platform::Local => {
            let home = meshd::Home::from_env();
            let Some(client) = crate::cmd::install::running(&home).await else {
                o.fail(
                    ctx,
                    "meshd is running and answers",
                    "`mesh install` starts it; `mesh logs` shows why it stopped",
                );
                return Err(CliError::failed("1 check failed"));
            };
            let reach = crate::reach::Reach::Local(Box::new(client));
            let ca = reach.ca().await?;
            (reach, ca, home.read_info().ok().map(|i| i.version))
        }
        crate::cli::Platform::Kube => {
            let found = async {
                let reach = ctx.reach().await?;
                let ca = reach.ca().await?;
                Ok::<_, CliError>((reach, ca))
            };
            let (reach, ca) = match found.await {
                Ok(found) => found,
                Err(e) => {
                    o.fail(
                        ctx,
                        "meshd is running and answers",
                        &format!("{e}; `mesh verify-install --platform kube`, `mesh logs --platform kube`"),
                    );
                    return Err(CliError::failed("1 check failed"));
                }
            };
            (reach, ca, crate::cmd::version::meshd_on_cluster(ctx).await?)
        }
    };
    o.pass(ctx, "meshd is running and answers");
    match version {
        Some(v) if v == mesh_api::VERSION => o.pass(ctx, "meshd runs this CLI's version"),
        v => o.warn(
            ctx,
            &format!("meshd runs version {} and this CLI is {}", v.as_deref().unwrap_or("unknown"), mesh_api::VERSION),
            "`mesh install` with this CLI restarts meshd at its version",
        ),
    }

    ctx.out.data("\ncertificates\n------------");
    let now = crate::cmd::cert::now_unix();
    let ca: CaStatus = ca;
    match ca.roots.iter().find(|r| r.signing) {
        Some(r) if r.cert.not_after_unix <= now => {
            o.fail(ctx, &format!("the signing root {} has expired", r.cert.subject), "`mesh cert rotate-root`")
        }
        Some(r) if r.cert.not_after_unix - now < EXPIRY_WARNING_SECS => o.warn(
            ctx,
            &format!("the signing root {} expires within 7 days", r.cert.subject),
            "`mesh cert rotate-root`",
        ),
        Some(r) => o.pass(ctx, &format!("the signing root ({}) is valid for more than 7 days", r.cert.subject)),
        None => o.fail(ctx, "meshd has a signing root", "`mesh logs`; `mesh install` sets up the CA"),
    }
    let proxies = reach.proxies().await?;
    let name = |p: &mesh_api::protocol::ProxyStatus| format!("{}.{}", p.workload.name, p.workload.namespace);
    let mut bad_certs = Vec::new();
    for p in &proxies {
        match (&p.identity.cert, &p.identity.error) {
            (_, Some(e)) => bad_certs.push(format!("{}: {e}", name(p))),
            (Some(c), None) if c.not_after_unix <= now => bad_certs.push(format!("{}: expired", name(p))),
            (Some(_), None) if p.identity.bundle_version != ca.bundle_version => {
                bad_certs.push(format!("{}: does not trust the current bundle yet", name(p)))
            }
            (None, None) => bad_certs.push(format!("{}: no certificate yet", name(p))),
            _ => {}
        }
    }
    if bad_certs.is_empty() {
        o.pass(
            ctx,
            &format!("every proxy ({}) holds a valid workload certificate and the current trust bundle", proxies.len()),
        );
    } else {
        o.fail(
            ctx,
            &format!("workload certificates: {}", bad_certs.join("; ")),
            "`mesh cert status`, `mesh cert rotate NAME`",
        );
    }

    ctx.out.data("\nproxies\n-------");
    let behind: Vec<String> = proxies.iter().filter(|p| !crate::cmd::proxy_status::all_synced(p)).map(name).collect();
    if behind.is_empty() {
        o.pass(ctx, &format!("every proxy ({}) has the config meshd holds now", proxies.len()));
    } else {
        o.fail(ctx, &format!("not in sync: {}", behind.join(", ")), "`mesh proxy-status NAME` says why; `mesh wait`");
    }
    let old: Vec<String> = proxies.iter().filter(|p| p.workload.proxy_version != mesh_api::VERSION).map(name).collect();
    if old.is_empty() {
        o.pass(ctx, "every proxy runs this version");
    } else {
        o.warn(ctx, &format!("proxies of another version: {}", old.join(", ")), "restart them with this `mesh`");
    }

    ctx.out.data("");
    match (o.failed, o.warned) {
        (0, 0) => {
            ctx.out.success("Status check results are √");
            Ok(())
        }
        (0, w) => {
            ctx.out.success(format!("Status check results are √, with {w} warning(s) (‼)"));
            Ok(())
        }
        (f, _) => Err(CliError::failed(format!("{f} check(s) failed (×)"))),
    }
}
