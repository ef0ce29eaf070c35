//! `mesh`: install, configure, validate and diagnose the mesh. It bundles meshd and the
//! proxy (hidden subcommands), so one binary is a whole local mesh.

mod analyze;
mod cli;
mod client;
mod cmd;
mod complete;
mod error;
mod files;
mod output;
mod reach;
mod store;

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};

use crate::cli::{
    CertCommand, Cli, Command, ExperimentalCommand, Global, ManifestCommand, Platform, ProxyCommand, ProxyTokenCommand,
    RouteCommand, SecretCommand, SecretCreateCommand,
};
use crate::client::MeshdClient;
use crate::error::{CliError, Result};
use crate::output::Printer;

/// What every command gets: global flags and the printer.
pub struct Ctx {
    pub global: Global,
    pub out: Printer,
}

impl Ctx {
    pub fn client(&self) -> Result<MeshdClient> {
        MeshdClient::from_home(&meshd::Home::from_env())
    }

    /// meshd's admin API on the platform the flags name (on a cluster through a port-forward).
    pub async fn admin_client(&self) -> Result<MeshdClient> {
        match self.global.platform {
            Platform::Local => self.client(),
            Platform::Kube => reach::meshd_admin(self).await,
        }
    }
}

fn main() -> ExitCode {
    // A completion request from the script `mesh completion SHELL` prints (COMPLETE=SHELL):
    // answer it and exit.
    clap_complete::CompleteEnv::with_factory(cli::for_completion).bin("mesh").completer("mesh").complete();
    mesh_proxy::tls::install_provider();
    // Usage errors exit 64 (istioctl's habit, sysexits' EX_USAGE); --help and --version 0.
    let parsed = Cli::command().try_get_matches().and_then(|m| {
        let mut cli = Cli::from_arg_matches(&m)?;
        cli.global.namespace_given = matches!(
            m.value_source("namespace"),
            Some(clap::parser::ValueSource::CommandLine | clap::parser::ValueSource::EnvVariable)
        );
        Ok(cli)
    });
    let cli = match parsed {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { ExitCode::from(error::USAGE) } else { ExitCode::SUCCESS };
        }
    };
    let out = Printer::new(cli.global.quiet, cli.global.no_color);
    match dispatch(cli, out) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.code)
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| CliError::internal(e.to_string()))
}

fn dispatch(cli: Cli, out: Printer) -> Result<()> {
    let ctx = Ctx { global: cli.global, out };
    let needs_platform =
        !matches!(cli.command, Command::Completion(_) | Command::Version(_) | Command::Meshd(_) | Command::DemoApp(_));
    if ctx.global.platform == Platform::Kube && needs_platform {
        let rt = runtime()?;
        return match cli.command {
            Command::Install(a) => rt.block_on(cmd::kube::install(&ctx, a)),
            Command::Uninstall(a) => rt.block_on(cmd::kube::uninstall(&ctx, a)),
            Command::VerifyInstall(a) => rt.block_on(cmd::kube::verify_install(&ctx, &a.profile)),
            Command::Precheck => rt.block_on(cmd::kube::precheck(&ctx)),
            Command::Manifest(ManifestCommand::Generate(args)) => {
                let settings = cmd::manifest::settings(&args.profile, &args.set, &args.files)?;
                ctx.out.data(meshd::manifest::render(&settings).trim_end());
                Ok(())
            }
            Command::Inject(args) => cmd::manifest::inject(&ctx, &args),
            // Config through the API server.
            Command::Apply(a) => rt.block_on(cmd::apply::run(&ctx, a)),
            Command::Get(a) => rt.block_on(cmd::get::run(&ctx, a)),
            Command::Delete(a) => rt.block_on(cmd::delete::run(&ctx, a)),
            Command::Analyze(a) => rt.block_on(cmd::analyze::run(&ctx, a)),
            Command::Route(RouteCommand::Split(a)) => rt.block_on(cmd::route::split(&ctx, a)),
            Command::Rollout(c) => rt.block_on(cmd::rollout::run(&ctx, c)),
            // meshd and the proxies through port-forwards.
            Command::ProxyStatus(a) => rt.block_on(cmd::proxy_status::run(&ctx, a)),
            Command::ProxyConfig(a) => rt.block_on(cmd::proxy_config::run(&ctx, a)),
            Command::Top(a) => rt.block_on(cmd::top::run(&ctx, a)),
            Command::Dashboard(a) => rt.block_on(cmd::dashboard::run(&ctx, a)),
            Command::Cert(CertCommand::Status(a)) => rt.block_on(cmd::cert::status(&ctx, a)),
            // meshd's admin API through a port-forward, with the token meshd published.
            Command::Cert(CertCommand::Rotate(a)) => rt.block_on(cmd::cert::rotate(&ctx, a)),
            Command::Cert(CertCommand::RotateRoot(a)) => rt.block_on(cmd::cert::rotate_root(&ctx, a)),
            Command::Proxy(ProxyCommand::Token(ProxyTokenCommand::Create(a))) => {
                rt.block_on(cmd::proxy_token::create(&ctx, a))
            }
            Command::Wait(a) => rt.block_on(cmd::proxy_status::wait(&ctx, a.timeout, a.proxies)),
            Command::Experimental(ExperimentalCommand::Describe(a)) => rt.block_on(cmd::describe::run(&ctx, a)),
            Command::Logs(a) => rt.block_on(cmd::logs::run(&ctx, a)),
            Command::Check(a) => rt.block_on(cmd::check::run(&ctx, a)),
            Command::BugReport(a) => rt.block_on(cmd::bug_report::run(&ctx, a)),
            Command::Secret(_) => Err(CliError::usage(
                "on Kubernetes, TLS credentials are Secrets: kubectl create -n NAMESPACE secret tls NAME --cert=F --key=F (meshd reads them by credentialName)",
            )),
            _ => Err(CliError::unavailable(
                "this command is not available on the kube platform yet (install, uninstall, verify-install, precheck, manifest, inject, apply, get, delete, analyze, route split, rollout, proxy-status, proxy-config, top, cert, proxy token, wait, x describe, logs, check and bug-report are); run with --platform local",
            )),
        };
    }
    match cli.command {
        Command::Proxy(ProxyCommand::Run(run)) => {
            let mut args = run.proxy;
            if let Some(group) = &run.workload_group {
                cmd::proxy::join_group(&ctx, &mut args, group)?;
            }
            cmd::proxy::apply_proxy_config(&ctx, &mut args)?;
            mesh_proxy::init_tracing(mesh_api::term::stderr_color(ctx.global.no_color));
            let code = args.run(meshd::Home::from_env().root().to_path_buf()).map_err(CliError::from)?;
            if code != 0 {
                std::process::exit(code);
            }
            return Ok(());
        }
        Command::Proxy(ProxyCommand::Init(args)) => {
            return args.run().map_err(|e| CliError::unavailable(format!("{e:#}")));
        }
        Command::Meshd(args) => {
            meshd::init_tracing(mesh_api::term::stderr_color(ctx.global.no_color));
            let tracing =
                meshd::translate::tracing_config(args.zipkin.as_deref(), args.otlp.as_deref(), args.trace_sampling)
                    .map_err(CliError::user)?;
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .map_err(|e| CliError::internal(e.to_string()))?;
            return rt
                .block_on(meshd::run(meshd::Options {
                    home: meshd::Home::from_env(),
                    listen: args.listen,
                    registry_grace: meshd::DEFAULT_REGISTRY_GRACE,
                    cert_ttl: args.cert_ttl,
                    mesh: meshd::translate::MeshConfig {
                        outbound_allow_any: args.outbound_traffic_policy == "ALLOW_ANY",
                        access_log: args.access_log,
                        tracing,
                        path_normalization: mesh_api::proxy_config::PathNormalization {
                            normalization: args.path_normalization,
                            escaped_slashes: args.escaped_slashes,
                        },
                        idle_timeout: args.idle_timeout.filter(|d| !d.is_zero()),
                        h2_upgrade: args.h2_upgrade,
                    },
                    monitoring: Some(args.monitoring.unwrap_or_else(|| meshd::default_monitoring(args.listen))),
                    kube: std::env::var("MESH_PLATFORM").is_ok_and(|p| p == "kube"),
                    discovery_tls: args.discovery_tls,
                    webhooks: args.webhooks,
                }))
                .map_err(CliError::from);
        }
        Command::Manifest(ManifestCommand::Generate(args)) => {
            let settings = cmd::manifest::settings(&args.profile, &args.set, &args.files)?;
            ctx.out.data(meshd::manifest::render(&settings).trim_end());
            return Ok(());
        }
        Command::Inject(args) => return cmd::manifest::inject(&ctx, &args),
        Command::Completion(args) => {
            use clap_complete::env::EnvCompleter;
            let registration: &dyn EnvCompleter = match args.shell {
                clap_complete::Shell::Bash => &clap_complete::env::Bash,
                clap_complete::Shell::Zsh => &clap_complete::env::Zsh,
                clap_complete::Shell::Fish => &clap_complete::env::Fish,
                clap_complete::Shell::PowerShell => &clap_complete::env::Powershell,
                clap_complete::Shell::Elvish => &clap_complete::env::Elvish,
                other => return Err(CliError::usage(format!("no completion for {other}"))),
            };
            registration
                .write_registration("COMPLETE", "mesh", "mesh", "mesh", &mut std::io::stdout())
                .map_err(|e| CliError::failed(format!("writing the completion script: {e}")))?;
            return Ok(());
        }
        _ => {}
    }
    let rt = runtime()?;
    rt.block_on(async move {
        match cli.command {
            Command::Install(a) => cmd::install::install(&ctx, a).await,
            Command::Uninstall(a) => cmd::install::uninstall(&ctx, a).await,
            Command::VerifyInstall(_) => cmd::install::verify_install(&ctx).await,
            Command::Precheck => cmd::install::precheck(&ctx).await,
            Command::Apply(a) => cmd::apply::run(&ctx, a).await,
            Command::Get(a) => cmd::get::run(&ctx, a).await,
            Command::Delete(a) => cmd::delete::run(&ctx, a).await,
            Command::ProxyStatus(a) => cmd::proxy_status::run(&ctx, a).await,
            Command::ProxyConfig(a) => cmd::proxy_config::run(&ctx, a).await,
            Command::Route(RouteCommand::Split(a)) => cmd::route::split(&ctx, a).await,
            Command::Rollout(c) => cmd::rollout::run(&ctx, c).await,
            Command::Cert(CertCommand::Status(a)) => cmd::cert::status(&ctx, a).await,
            Command::Cert(CertCommand::Rotate(a)) => cmd::cert::rotate(&ctx, a).await,
            Command::Cert(CertCommand::RotateRoot(a)) => cmd::cert::rotate_root(&ctx, a).await,
            Command::Secret(SecretCommand::Create(SecretCreateCommand::Tls(a))) => {
                cmd::secret::create_tls(&ctx, a).await
            }
            Command::Secret(SecretCommand::List(a)) => cmd::secret::list(&ctx, a).await,
            Command::Secret(SecretCommand::Delete(a)) => cmd::secret::delete(&ctx, a).await,
            Command::Analyze(a) => cmd::analyze::run(&ctx, a).await,
            Command::Top(a) => cmd::top::run(&ctx, a).await,
            Command::Dashboard(a) => cmd::dashboard::run(&ctx, a).await,
            Command::Version(a) => cmd::version::run(&ctx, a).await,
            Command::Logs(a) => cmd::logs::run(&ctx, a).await,
            Command::Wait(a) => cmd::proxy_status::wait(&ctx, a.timeout, a.proxies).await,
            Command::Experimental(ExperimentalCommand::Describe(a)) => cmd::describe::run(&ctx, a).await,
            Command::BugReport(a) => cmd::bug_report::run(&ctx, a).await,
            Command::Check(a) => cmd::check::run(&ctx, a).await,
            Command::Demo(a) => cmd::demo::run(&ctx, a).await,
            Command::Proxy(ProxyCommand::Token(ProxyTokenCommand::Create(a))) => {
                cmd::proxy_token::create(&ctx, a).await
            }
            Command::DemoApp(a) => cmd::demo_app::run(a).await,
            Command::Proxy(_)
            | Command::Meshd(_)
            | Command::Completion(_)
            | Command::Manifest(_)
            | Command::Inject(_) => Ok(()),
        }
    })
}
