//! The standalone control plane. `mesh install` runs the same code from the `mesh` binary.

fn main() -> anyhow::Result<()> {
    meshd::init_tracing(mesh_api::term::stderr_color(false));
    let mut listen = meshd::DEFAULT_LISTEN.to_string();
    let mut monitoring: Option<String> = None;
    let mut discovery_tls = meshd::DISCOVERY_TLS_LISTEN.to_string();
    let mut webhooks = meshd::WEBHOOK_LISTEN.to_string();
    let mut cert_ttl = meshd::ca::DEFAULT_WORKLOAD_TTL;
    let mut mesh = meshd::translate::MeshConfig::default();
    let (mut zipkin, mut otlp, mut sampling) = (None, None, meshd::translate::DEFAULT_TRACE_SAMPLING);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--listen" => listen = args.next().ok_or_else(|| anyhow::anyhow!("--listen needs ADDRESS"))?,
            "--discovery-tls" => {
                discovery_tls = args.next().ok_or_else(|| anyhow::anyhow!("--discovery-tls needs ADDRESS"))?
            }
            "--webhooks" => webhooks = args.next().ok_or_else(|| anyhow::anyhow!("--webhooks needs ADDRESS"))?,
            "--outbound-traffic-policy" => {
                mesh.outbound_allow_any = match args.next().as_deref() {
                    Some("ALLOW_ANY") => true,
                    Some("REGISTRY_ONLY") => false,
                    other => anyhow::bail!("--outbound-traffic-policy {other:?}: use ALLOW_ANY or REGISTRY_ONLY"),
                };
            }
            "--access-log" => mesh.access_log = true,
            "--h2-upgrade" => mesh.h2_upgrade = true,
            "--path-normalization" => {
                let v = args.next().unwrap_or_default();
                mesh.path_normalization.normalization =
                    mesh_api::proxy_config::Normalization::parse(&v).ok_or_else(|| {
                        anyhow::anyhow!(
                            "--path-normalization {v:?}: use one of {}",
                            mesh_api::proxy_config::Normalization::NAMES.join(", ")
                        )
                    })?;
            }
            "--escaped-slashes" => {
                let v = args.next().unwrap_or_default();
                mesh.path_normalization.escaped_slashes = mesh_api::proxy_config::EscapedSlashes::parse(&v)
                    .ok_or_else(|| {
                        anyhow::anyhow!(
                            "--escaped-slashes {v:?}: use one of {}",
                            mesh_api::proxy_config::EscapedSlashes::NAMES.join(", ")
                        )
                    })?;
            }
            "--idle-timeout" => {
                let v = args.next().ok_or_else(|| anyhow::anyhow!("--idle-timeout needs a duration like 1h"))?;
                let d = mesh_api::duration::parse(&v).map_err(|e| anyhow::anyhow!("--idle-timeout {v:?}: {e}"))?;
                if d.is_zero() {
                    anyhow::bail!("--idle-timeout {v:?}: must be more than 0");
                }
                mesh.idle_timeout = Some(d);
            }
            "--monitoring" => {
                monitoring = Some(args.next().ok_or_else(|| anyhow::anyhow!("--monitoring needs ADDRESS or `off`"))?)
            }
            "--zipkin" => zipkin = Some(args.next().ok_or_else(|| anyhow::anyhow!("--zipkin needs HOST:PORT"))?),
            "--otlp" => otlp = Some(args.next().ok_or_else(|| anyhow::anyhow!("--otlp needs HOST:PORT"))?),
            "--trace-sampling" => {
                let v = args.next().ok_or_else(|| anyhow::anyhow!("--trace-sampling needs a percentage"))?;
                sampling = v.parse().map_err(|_| anyhow::anyhow!("--trace-sampling {v:?}: not a number"))?;
            }
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
                    "meshd [--listen ADDR] [--monitoring ADDR|off] [--discovery-tls ADDR] [--webhooks ADDR] [--cert-ttl DURATION] [--outbound-traffic-policy ALLOW_ANY|REGISTRY_ONLY] [--access-log] [--path-normalization NONE|BASE|MERGE_SLASHES|DECODE_AND_MERGE_SLASHES] [--escaped-slashes KEEP_UNCHANGED|REJECT_REQUEST|UNESCAPE_AND_REDIRECT|UNESCAPE_AND_FORWARD] [--idle-timeout DURATION] [--zipkin HOST:PORT | --otlp HOST:PORT] [--trace-sampling PCT]  (state in MESH_HOME, default ~/.mesh; port 0 picks a free port)"
                );
                return Ok(());
            }
            other => anyhow::bail!("unknown argument {other:?}; see meshd --help"),
        }
    }
    mesh.tracing = meshd::translate::tracing_config(zipkin.as_deref(), otlp.as_deref(), sampling)
        .map_err(|e| anyhow::anyhow!(e))?;
    let listen = listen.parse().map_err(|e| anyhow::anyhow!("--listen {listen:?}: {e}"))?;
    let monitoring = match monitoring.as_deref() {
        None => Some(meshd::default_monitoring(listen)),
        Some("off") => None,
        Some(m) => Some(m.parse().map_err(|e| anyhow::anyhow!("--monitoring {m:?}: {e}"))?),
    };
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    rt.block_on(meshd::run(meshd::Options {
        home: meshd::Home::from_env(),
        listen,
        registry_grace: meshd::DEFAULT_REGISTRY_GRACE,
        cert_ttl,
        mesh,
        monitoring,
        kube: std::env::var("MESH_PLATFORM").is_ok_and(|p| p == "kube"),
        discovery_tls: discovery_tls.parse().map_err(|e| anyhow::anyhow!("--discovery-tls {discovery_tls:?}: {e}"))?,
        webhooks: webhooks.parse().map_err(|e| anyhow::anyhow!("--webhooks {webhooks:?}: {e}"))?,
    }))
}
