//! The standalone proxy, for images and by-hand use; `mesh proxy run` is the same code.
//! `proxy init` sets up transparent capture (the init container's job on Kubernetes).

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "proxy", version = mesh_api::VERSION, about = "The mesh sidecar proxy", args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    args: Option<mesh_proxy::args::ProxyArgs>,
}

#[derive(Subcommand)]
enum Command {
    /// Install the iptables rules that redirect this network namespace's TCP to the proxy.
    Init(mesh_proxy::init::InitArgs),
}

fn main() -> anyhow::Result<()> {
    mesh_proxy::init_tracing(mesh_api::term::stderr_color(false));
    mesh_proxy::tls::install_provider();
    let cli = Cli::parse();
    match (cli.command, cli.args) {
        (Some(Command::Init(init)), _) => init.run(),
        (None, Some(args)) => std::process::exit(args.run(mesh_api::home::default_home())?),
        (None, None) => anyhow::bail!("nothing to do: give the proxy's options (see proxy --help) or `proxy init`"),
    }
}
