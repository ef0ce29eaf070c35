//! The standalone control plane. `mesh install` runs the same code from the `mesh` binary.

fn main() -> anyhow::Result<()> {
    meshd::init_tracing();
    let mut listen = meshd::DEFAULT_LISTEN.to_string();
    let mut cert_ttl = meshd::ca::DEFAULT_WORKLOAD_TTL;
    let mut mesh = meshd::translate::MeshConfig::default();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--listen" => listen = args.next().ok_or_else(|| anyhow::anyhow!("--listen needs ADDRESS"))?,
            "--outbound-traffic-policy" => {
                mesh.outbound_allow_any = match args.next().as_deref() {
                    Some("ALLOW_ANY") => true,
                    Some("REGISTRY_ONLY") => false,
                    other => anyhow::bail!("--outbound-traffic-policy {other:?}: use ALLOW_ANY or REGISTRY_ONLY"),
                };
            }
            "--access-log" => mesh.access_log = true,
            "--cert-ttl" => {
                let v = args.next().ok_or_else(|| anyhow::anyhow!("--cert-ttl needs a duration like 24h"))?;
                cert_ttl = mesh_api::duration::parse(&v).map_err(|e| anyhow::anyhow!("--cert-ttl {v:?}: {e}"))?;
            }
            "--version" => {
                println!("meshd {}", mesh_api::VERSION);
                return Ok(());
            }
            "-h" | "--help" => {
                println!(
                    "meshd [--listen ADDR] [--cert-ttl DURATION] [--outbound-traffic-policy ALLOW_ANY|REGISTRY_ONLY]  (state in MESH_HOME, default ~/.mesh; port 0 picks a free port)"
                );
                return Ok(());
            }
            other => anyhow::bail!("unknown argument {other:?}; see meshd --help"),
        }
    }
    let listen = listen.parse().map_err(|e| anyhow::anyhow!("--listen {listen:?}: {e}"))?;
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    rt.block_on(meshd::run(meshd::Options {
        home: meshd::Home::from_env(),
        listen,
        registry_grace: meshd::DEFAULT_REGISTRY_GRACE,
        cert_ttl,
        mesh,
    }))
}
