//! The standalone proxy, for images and by-hand use; `mesh proxy run` is the same code.

use clap::Parser;

#[derive(Parser)]
#[command(name = "proxy", version = mesh_api::VERSION, about = "The mesh sidecar proxy")]
struct Cli {
    #[command(flatten)]
    args: mesh_proxy::args::ProxyArgs,
}

fn main() -> anyhow::Result<()> {
    mesh_proxy::init_tracing();
    mesh_proxy::tls::install_provider();
    let cli = Cli::parse();
    let code = cli.args.run(mesh_api::home::default_home())?;
    std::process::exit(code)
}
