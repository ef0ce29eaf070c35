//! `mesh install` / `mesh uninstall` on the local platform: meshd as a background process of
//! this same executable, its state in MESH_HOME.

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::{Duration, Instant};

use meshd::Home;
use serde::{Deserialize, Serialize};

use crate::Ctx;
use crate::cli::{InstallArgs, UninstallArgs};
use crate::client::MeshdClient;
use crate::error::{CliError, Result};

/// What `mesh install` recorded (MESH_HOME/install.json).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Settings {
    pub profile: String,
    pub listen: SocketAddr,
    /// meshd's monitoring listener; default: the listen IP, port 15014 (0 with a port-0 listen).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monitoring: Option<SocketAddr>,
    /// Lifetime of workload certificates (Go duration).
    #[serde(default = "default_ttl")]
    pub cert_ttl: String,
    /// A plug-in CA (certificate and key files) to use instead of a generated root.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_cert: Option<std::path::PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_key: Option<std::path::PathBuf>,
    /// For an intermediate plug-in CA: the root proxies trust (Istio's `root-cert.pem`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_root: Option<std::path::PathBuf>,
    /// For an intermediate plug-in CA: its chain up to the root (Istio's `cert-chain.pem`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_chain: Option<std::path::PathBuf>,
    /// Istio's `meshConfig.outboundTrafficPolicy.mode`.
    #[serde(default = "default_outbound")]
    pub outbound_traffic_policy: String,
    /// Istio's `meshConfig.accessLogFile` (any value but empty turns access logs on; proxies
    /// write them to their standard output).
    #[serde(default)]
    pub access_log: bool,
    /// Istio's `meshConfig.defaultConfig.tracing.zipkin.address`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zipkin: Option<String>,
    /// The OpenTelemetry collector (`meshConfig.defaultConfig.tracing.otlp.address`, ours).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub otlp: Option<String>,
    /// Istio's `meshConfig.defaultConfig.tracing.sampling` (percent).
    #[serde(default = "default_sampling")]
    pub trace_sampling: f64,
    /// Istio's `meshConfig.pathNormalization` (and Envoy's escaped-slashes action).
    #[serde(default, skip_serializing_if = "mesh_api::proxy_config::PathNormalization::is_default")]
    pub path_normalization: mesh_api::proxy_config::PathNormalization,
    /// Istio's `ISTIO_META_IDLE_TIMEOUT` proxy metadata: how long downstream connections may idle.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_timeout: Option<String>,
    /// Istio's `meshConfig.h2UpgradePolicy` is UPGRADE.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub h2_upgrade: bool,
}

fn default_sampling() -> f64 {
    meshd::translate::DEFAULT_TRACE_SAMPLING
}

fn default_outbound() -> String {
    "ALLOW_ANY".into()
}

fn default_ttl() -> String {
    "24h".into()
}

const KEYS: &[&str] = &[
    "meshd.listen",
    "meshd.monitoring",
    "ca.cert",
    "ca.key",
    "ca.root",
    "ca.chain",
    "ca.workloadCertTtl",
    "meshConfig.outboundTrafficPolicy.mode",
    "meshConfig.accessLogFile",
    "meshConfig.defaultConfig.tracing.zipkin.address",
    "meshConfig.defaultConfig.tracing.otlp.address",
    "meshConfig.defaultConfig.tracing.sampling",
    meshd::manifest::NORMALIZATION_KEY,
    meshd::manifest::ESCAPED_SLASHES_KEY,
    meshd::manifest::IDLE_TIMEOUT_KEY,
    meshd::manifest::H2_UPGRADE_KEY,
];

impl Default for Settings {
    fn default() -> Self {
        Settings {
            profile: "default".into(),
            listen: ([127, 0, 0, 1], 15010).into(),
            monitoring: None,
            cert_ttl: default_ttl(),
            ca_cert: None,
            ca_key: None,
            ca_root: None,
            ca_chain: None,
            outbound_traffic_policy: default_outbound(),
            access_log: false,
            zipkin: None,
            otlp: None,
            trace_sampling: default_sampling(),
            path_normalization: Default::default(),
            idle_timeout: None,
            h2_upgrade: false,
        }
    }
}

fn settings(args: &InstallArgs) -> Result<Settings> {
    let mut s = Settings {
        profile: args.profile.clone(),
        listen: meshd::DEFAULT_LISTEN.parse().map_err(|_| CliError::internal("bad default"))?,
        monitoring: None,
        cert_ttl: default_ttl(),
        ca_cert: None,
        ca_key: None,
        ca_root: None,
        ca_chain: None,
        outbound_traffic_policy: default_outbound(),
        access_log: false,
        zipkin: None,
        otlp: None,
        trace_sampling: default_sampling(),
        path_normalization: Default::default(),
        idle_timeout: None,
        h2_upgrade: false,
    };
    let mut problems = Vec::new();
    for kv in &args.set {
        let Some((k, v)) = kv.split_once('=') else {
            problems.push(format!("--set {kv:?}: expected KEY=VALUE"));
            continue;
        };
        match k {
            "meshd.listen" => match v.parse() {
                Ok(a) => s.listen = a,
                Err(_) => problems.push(format!(
                    "--set meshd.listen={v}: not an address like 127.0.0.1:15010 (port 0 picks a free port)"
                )),
            },
            "meshd.monitoring" => match v.parse() {
                Ok(a) => s.monitoring = Some(a),
                Err(_) => problems.push(format!("--set meshd.monitoring={v}: not an address like 127.0.0.1:15014")),
            },
            "meshConfig.accessLogFile" => s.access_log = !v.is_empty(),
            "meshConfig.defaultConfig.tracing.zipkin.address" => {
                s.zipkin = Some(v.to_string()).filter(|v| !v.is_empty())
            }
            "meshConfig.defaultConfig.tracing.otlp.address" => s.otlp = Some(v.to_string()).filter(|v| !v.is_empty()),
            "meshConfig.defaultConfig.tracing.sampling" => match v.parse::<f64>() {
                Ok(p) => s.trace_sampling = p,
                Err(_) => problems.push(format!("--set {k}={v}: not a percentage like 1 or 100")),
            },
            "meshConfig.outboundTrafficPolicy.mode" => match v {
                "ALLOW_ANY" | "REGISTRY_ONLY" => s.outbound_traffic_policy = v.to_string(),
                _ => problems.push(format!("--set {k}={v}: use ALLOW_ANY or REGISTRY_ONLY")),
            },
            meshd::manifest::NORMALIZATION_KEY | meshd::manifest::ESCAPED_SLASHES_KEY => {
                if let Err(e) = meshd::manifest::set_path_normalization(&mut s.path_normalization, k, v) {
                    problems.push(format!("--set {e}"));
                }
            }
            meshd::manifest::H2_UPGRADE_KEY => match meshd::manifest::parse_h2_upgrade(k, v) {
                Ok(up) => s.h2_upgrade = up,
                Err(e) => problems.push(format!("--set {e}")),
            },
            meshd::manifest::IDLE_TIMEOUT_KEY => match meshd::manifest::check_idle_timeout(k, v) {
                Ok(()) => s.idle_timeout = Some(v.to_string()),
                Err(e) => problems.push(format!("--set {e}")),
            },
            "ca.cert" => s.ca_cert = Some(v.into()),
            "ca.key" => s.ca_key = Some(v.into()),
            "ca.root" => s.ca_root = Some(v.into()),
            "ca.chain" => s.ca_chain = Some(v.into()),
            "ca.workloadCertTtl" => match mesh_api::duration::parse(v) {
                Ok(d) if d >= Duration::from_secs(60) => s.cert_ttl = v.to_string(),
                Ok(_) => problems.push(format!("--set ca.workloadCertTtl={v}: must be at least 1m")),
                Err(e) => problems.push(format!("--set ca.workloadCertTtl={v}: {e}")),
            },
            _ => problems.push(format!("--set {k}: unknown setting; known settings: {}", KEYS.join(", "))),
        }
    }
    if s.ca_cert.is_some() != s.ca_key.is_some() {
        problems.push("a plug-in CA needs both --set ca.cert=FILE and --set ca.key=FILE".into());
    }
    if s.ca_cert.is_none() && (s.ca_root.is_some() || s.ca_chain.is_some()) {
        problems.push("--set ca.root and ca.chain describe a plug-in CA: set ca.cert and ca.key too".into());
    }
    if let Err(e) = meshd::translate::tracing_config(s.zipkin.as_deref(), s.otlp.as_deref(), s.trace_sampling) {
        problems.push(format!("--set meshConfig.defaultConfig.tracing...: {e}"));
    }
    if problems.is_empty() { Ok(s) } else { Err(CliError::user(problems.join("\n"))) }
}

/// Is a meshd answering for this home? Returns its client when it is.
pub async fn running(home: &Home) -> Option<MeshdClient> {
    let client = MeshdClient::from_home(home).ok()?;
    let ok: Result<serde_json::Value> = client.get(mesh_api::control::HEALTH_PATH).await;
    ok.ok().map(|_| client)
}

/// Start meshd in the background and wait until it answers.
pub async fn start_meshd(ctx: &Ctx, home: &Home, listen: SocketAddr, settings: &Settings) -> Result<MeshdClient> {
    home.create()
        .map_err(|e| CliError::unavailable(format!("cannot create MESH_HOME {}: {e}", home.root().display())))?;
    home.ensure_token().map_err(|e| CliError::unavailable(format!("cannot create the access token: {e}")))?;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(home.log_path())
        .map_err(|e| CliError::unavailable(format!("cannot open {}: {e}", home.log_path().display())))?;
    let log2 = log.try_clone().map_err(|e| CliError::unavailable(e.to_string()))?;
    let exe =
        std::env::current_exe().map_err(|e| CliError::unavailable(format!("cannot find this executable: {e}")))?;
    let _ = std::fs::remove_file(home.info_path());
    let mut cmd = std::process::Command::new(exe);
    cmd.arg("__meshd")
        .arg("--listen")
        .arg(listen.to_string())
        .arg("--cert-ttl")
        .arg(&settings.cert_ttl)
        .args(settings.monitoring.iter().flat_map(|a| ["--monitoring".to_string(), a.to_string()]))
        .arg("--outbound-traffic-policy")
        .arg(&settings.outbound_traffic_policy)
        .args(settings.access_log.then_some("--access-log"))
        .args(settings.zipkin.iter().flat_map(|a| ["--zipkin", a.as_str()]))
        .args(settings.otlp.iter().flat_map(|a| ["--otlp", a.as_str()]))
        .arg("--trace-sampling")
        .arg(settings.trace_sampling.to_string())
        .args(
            (!settings.path_normalization.is_default())
                .then(|| {
                    [
                        "--path-normalization",
                        settings.path_normalization.normalization.as_str(),
                        "--escaped-slashes",
                        settings.path_normalization.escaped_slashes.as_str(),
                    ]
                })
                .into_iter()
                .flatten(),
        )
        .args(settings.idle_timeout.iter().flat_map(|t| ["--idle-timeout", t.as_str()]))
        .args(settings.h2_upgrade.then_some("--h2-upgrade"))
        .env("MESH_HOME", home.root())
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log2);
    // Its own process group: a Ctrl-C in the installing terminal must not stop meshd.
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let mut child = cmd.spawn().map_err(|e| CliError::unavailable(format!("cannot start meshd: {e}")))?;
    let pb = ctx.out.spinner("starting meshd");
    let deadline = Instant::now() + Duration::from_secs(20);
    let result = loop {
        if let Ok(Some(status)) = child.try_wait() {
            let log = std::fs::read_to_string(home.log_path()).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(5).collect::<Vec<_>>().into_iter().rev().collect();
            break Err(CliError::unavailable(format!(
                "meshd exited during start ({status}); last lines of {}:\n{}",
                home.log_path().display(),
                tail.join("\n")
            )));
        }
        if let Ok(info) = home.read_info()
            && info.pid == child.id()
            && let Some(c) = running(home).await
        {
            break Ok(c);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            break Err(CliError::unavailable(format!(
                "meshd did not become ready within 20s; see {}",
                home.log_path().display()
            )));
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    };
    if let Some(pb) = pb {
        pb.finish_and_clear();
    }
    result
}

pub async fn install(ctx: &Ctx, args: InstallArgs) -> Result<()> {
    let s = settings(&args)?;
    let home = Home::from_env();
    if let Some(c) = running(&home).await {
        return reinstall(ctx, &home, &args, s, c).await;
    }
    if args.dry_run {
        ctx.out.info(format!(
            "would install mesh (profile {}) in MESH_HOME={}: start meshd on {}, keep config in {}",
            s.profile,
            home.root().display(),
            s.listen,
            home.store_path().display()
        ));
        return Ok(());
    }
    ctx.out.confirm(&format!("Install mesh in {} with meshd on {}?", home.root().display(), s.listen), args.yes)?;
    if let (Some(cert), Some(key)) = (&s.ca_cert, &s.ca_key) {
        let read = |p: &std::path::Path| {
            std::fs::read_to_string(p).map_err(|e| CliError::user(format!("cannot read {}: {e}", p.display())))
        };
        let (cert_pem, key_pem) = (read(cert)?, read(key)?);
        let root_pem = s.ca_root.as_deref().map(read).transpose()?;
        let chain_pem = s.ca_chain.as_deref().map(read).transpose()?;
        home.create()
            .map_err(|e| CliError::unavailable(format!("cannot create MESH_HOME {}: {e}", home.root().display())))?;
        let plug_in = meshd::ca::PlugIn {
            cert_pem: &cert_pem,
            key_pem: &key_pem,
            chain_pem: chain_pem.as_deref(),
            root_pem: root_pem.as_deref(),
        };
        let info = meshd::ca::Ca::import(&home.ca_path(), &plug_in)
            .map_err(|e| CliError::user(format!("plug-in CA refused, nothing changed: {e}")))?;
        ctx.out
            .success(format!("using the plug-in CA {} (valid until unix time {})", info.subject, info.not_after_unix));
    }
    let client = start_meshd(ctx, &home, s.listen, &s).await?;
    let body = serde_json::to_vec_pretty(&Settings { listen: client.address, ..s })
        .map_err(|e| CliError::internal(e.to_string()))?;
    meshd::home::write_atomic(&home.settings_path(), &body, 0o600).map_err(|e| CliError::unavailable(e.to_string()))?;
    ctx.out.success(format!(
        "meshd is running at {} (MESH_HOME={}, log {})",
        client.address,
        home.root().display(),
        home.log_path().display()
    ));
    ctx.out.info("next: `mesh apply -f <istio yaml>`, then `mesh proxy run --workload NAME ...` for each workload");
    Ok(())
}

/// The `--set` key (or flag) of a `Settings` field, for messages.
fn setting_name(field: &str) -> &str {
    match field {
        "profile" => "--profile",
        "listen" => "meshd.listen",
        "monitoring" => "meshd.monitoring",
        "cert_ttl" => "ca.workloadCertTtl",
        "ca_cert" => "ca.cert",
        "ca_key" => "ca.key",
        "ca_root" => "ca.root",
        "ca_chain" => "ca.chain",
        "outbound_traffic_policy" => "meshConfig.outboundTrafficPolicy.mode",
        "access_log" => "meshConfig.accessLogFile",
        "zipkin" => "meshConfig.defaultConfig.tracing.zipkin.address",
        "otlp" => "meshConfig.defaultConfig.tracing.otlp.address",
        "trace_sampling" => "meshConfig.defaultConfig.tracing.sampling",
        "path_normalization" => "meshConfig.pathNormalization",
        "idle_timeout" => meshd::manifest::IDLE_TIMEOUT_KEY,
        "h2_upgrade" => meshd::manifest::H2_UPGRADE_KEY,
        other => other,
    }
}

/// `mesh install` with meshd already running: nothing to do when the settings are those it
/// runs with; otherwise meshd is restarted with them (proxies keep serving their last config
/// and reconnect; meshd restores its registry), after saying what changes.
async fn reinstall(
    ctx: &Ctx,
    home: &Home,
    args: &InstallArgs,
    mut wanted: Settings,
    running: MeshdClient,
) -> Result<()> {
    let stored: Settings = std::fs::read(home.settings_path())
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_else(|| Settings { listen: running.address, ..Settings::default() });
    let given = |key: &str| args.set.iter().any(|kv| kv.split_once('=').is_some_and(|(k, _)| k == key));
    // Port 0 asks for any port: the one meshd has is that.
    if !given("meshd.listen") || (wanted.listen.port() == 0 && wanted.listen.ip() == running.address.ip()) {
        wanted.listen = running.address;
    }
    let any_port =
        |w: Option<SocketAddr>, s: Option<SocketAddr>| w.zip(s).is_some_and(|(w, s)| w.port() == 0 && w.ip() == s.ip());
    if !given("meshd.monitoring") || any_port(wanted.monitoring, stored.monitoring) {
        wanted.monitoring = stored.monitoring;
    }
    let (old, new) = (
        serde_json::to_value(&stored).map_err(|e| CliError::internal(e.to_string()))?,
        serde_json::to_value(&wanted).map_err(|e| CliError::internal(e.to_string()))?,
    );
    let fields: std::collections::BTreeSet<&String> =
        old.as_object().into_iter().chain(new.as_object()).flat_map(|o| o.keys()).collect();
    let changes: Vec<String> = fields
        .into_iter()
        .filter(|f| old.get(f.as_str()) != new.get(f.as_str()))
        .map(|f| {
            let show = |v: Option<&serde_json::Value>| v.map_or("(unset)".to_string(), |v| v.to_string());
            format!("{}: {} -> {}", setting_name(f), show(old.get(f.as_str())), show(new.get(f.as_str())))
        })
        .collect();
    if changes.is_empty() {
        ctx.out.success(format!(
            "mesh is already installed with these settings: meshd is running at {} (MESH_HOME={})",
            running.address,
            home.root().display()
        ));
        return Ok(());
    }
    if (&stored.ca_cert, &stored.ca_key, &stored.ca_root, &stored.ca_chain)
        != (&wanted.ca_cert, &wanted.ca_key, &wanted.ca_root, &wanted.ca_chain)
    {
        return Err(CliError::failed(format!(
            "meshd is running with another CA; a running mesh does not change its CA by install (nothing changed). \
             Rotate roots with `mesh cert rotate-root`, or `mesh uninstall` first. Changes asked for: {}",
            changes.join("; ")
        )));
    }
    if args.dry_run {
        ctx.out.info(format!("would restart meshd at {} to change: {}", running.address, changes.join("; ")));
        return Ok(());
    }
    ctx.out.confirm(
        &format!("meshd is running; restart it to change {}? (proxies keep serving)", changes.join("; ")),
        args.yes,
    )?;
    let info = home.read_info().map_err(|e| CliError::unavailable(format!("cannot read meshd.json: {e}")))?;
    let _: serde_json::Value = running.post(mesh_api::control::SHUTDOWN_PATH, &serde_json::json!({})).await?;
    let deadline = Instant::now() + Duration::from_secs(15);
    while pid_alive(info.pid) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    if pid_alive(info.pid) {
        return Err(CliError::unavailable(format!(
            "meshd (pid {}) did not stop within 15s; the settings were not changed",
            info.pid
        )));
    }
    let _ = std::fs::remove_file(home.info_path());
    let client = start_meshd(ctx, home, wanted.listen, &wanted).await?;
    let body = serde_json::to_vec_pretty(&Settings { listen: client.address, ..wanted })
        .map_err(|e| CliError::internal(e.to_string()))?;
    meshd::home::write_atomic(&home.settings_path(), &body, 0o600).map_err(|e| CliError::unavailable(e.to_string()))?;
    ctx.out.success(format!("meshd restarted at {} with: {}", client.address, changes.join("; ")));
    Ok(())
}

fn pid_alive(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
        && std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .is_ok_and(|s| !s.rsplit(')').next().unwrap_or("").trim_start().starts_with('Z'))
}

pub async fn uninstall(ctx: &Ctx, args: UninstallArgs) -> Result<()> {
    let home = Home::from_env();
    let info = home.read_info().ok();
    let what = if args.purge { "stop meshd and delete all mesh state in" } else { "stop meshd for" };
    ctx.out.confirm(
        &format!("This will {what} {}. Proxies keep their last config. Continue?", home.root().display()),
        args.yes,
    )?;
    if let (Some(info), Some(client)) = (info.as_ref(), running(&home).await) {
        let _: serde_json::Value = client.post(mesh_api::control::SHUTDOWN_PATH, &serde_json::json!({})).await?;
        let pb = ctx.out.spinner("waiting for meshd to stop");
        let deadline = Instant::now() + Duration::from_secs(15);
        while pid_alive(info.pid) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        if let Some(pb) = pb {
            pb.finish_and_clear();
        }
        if pid_alive(info.pid) {
            return Err(CliError::unavailable(format!("meshd (pid {}) did not stop within 15s", info.pid)));
        }
        ctx.out.success(format!("meshd stopped (was pid {})", info.pid));
    } else {
        ctx.out.info(format!("meshd is not running for MESH_HOME={}", home.root().display()));
    }
    let _ = std::fs::remove_file(home.info_path());
    if args.purge {
        for p in [
            home.store_path(),
            home.token_path(),
            home.settings_path(),
            home.log_path(),
            home.registry_path(),
            home.ca_path(),
        ] {
            if let Err(e) = std::fs::remove_file(&p)
                && e.kind() != std::io::ErrorKind::NotFound
            {
                return Err(CliError::unavailable(format!("cannot remove {}: {e}", p.display())));
            }
        }
        let _ = std::fs::remove_dir(home.root());
        ctx.out.success("mesh state removed");
    }
    Ok(())
}

/// Local platform: meshd answers for this MESH_HOME.
pub async fn verify_install(ctx: &Ctx) -> Result<()> {
    let home = Home::from_env();
    match running(&home).await {
        Some(c) => {
            ctx.out.success(format!("meshd is running at {} (MESH_HOME={})", c.address, home.root().display()));
            Ok(())
        }
        None => Err(CliError::unavailable(format!(
            "meshd is not running for MESH_HOME={}; run `mesh install`",
            home.root().display()
        ))),
    }
}

/// Local platform: MESH_HOME can be created and meshd's default address is free (or already ours).
pub async fn precheck(ctx: &Ctx) -> Result<()> {
    let home = Home::from_env();
    home.create().map_err(|e| CliError::user(format!("cannot create MESH_HOME {}: {e}", home.root().display())))?;
    ctx.out.success(format!("MESH_HOME {} is writable", home.root().display()));
    if running(&home).await.is_some() {
        ctx.out.warn("mesh is already installed here (meshd is running)");
        return Ok(());
    }
    match std::net::TcpListener::bind(meshd::DEFAULT_LISTEN) {
        Ok(_) => ctx.out.success(format!("{} is free for meshd", meshd::DEFAULT_LISTEN)),
        Err(e) => ctx.out.warn(format!(
            "{} is taken ({e}); install with --set meshd.listen=127.0.0.1:0 for any free port",
            meshd::DEFAULT_LISTEN
        )),
    }
    Ok(())
}
