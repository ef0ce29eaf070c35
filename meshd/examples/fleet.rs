//! A fleet simulator for meshd: N simulated proxies in one process that speak meshd's real
//! discovery protocol step for step (upgrade with a minted proxy token, hello, CSR, ACK of every
//! push), against a running meshd on the local platform. It builds a world of S services (each
//! with a DestinationRule of two subsets and a VirtualService 90/10, in M namespaces: 10 unless
//! `--namespaces M`), connects
//! the N proxies at once (a meshd restart), then makes three changes and reports, for each, the
//! time from the change until every proxy had the new config (p50/p99/max over proxies), what
//! was pushed, and meshd's CPU seconds (utime+stime from /proc) and RSS.
//!
//!   cargo run --release -p meshd --example fleet -- --home "$MESH_HOME" --services 1000 --proxies 1000
//!
//! `bench/fleet.sh` starts a meshd per (S, N) and prints the table. Everything goes to the
//! meshd named in `MESH_HOME/meshd.json`, on loopback.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use mesh_api::protocol::{InboundPort, MAX_FRAME, ProxyMessage, Workload};
use mesh_api::proxy_config::ConfigType;
use serde::Deserialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::codec::{Framed, LengthDelimitedCodec};

type Error = Box<dyn std::error::Error + Send + Sync>;

/// The proxy's own handshake timeout: no Welcome within it, and it reconnects.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(15);
/// How long any phase may take before the simulator gives up on it.
const PHASE_LIMIT: Duration = Duration::from_secs(600);
/// Services are spread over this many namespaces unless `--namespaces` says otherwise.
const NAMESPACES: usize = 10;
static NAMESPACE_COUNT: AtomicUsize = AtomicUsize::new(NAMESPACES);

/// The namespace of service `j`.
fn namespace(j: usize) -> String {
    format!("ns-{}", j % NAMESPACE_COUNT.load(Ordering::Relaxed).max(1))
}

struct Args {
    home: std::path::PathBuf,
    services: usize,
    proxies: usize,
}

fn args() -> Result<Args, Error> {
    let mut home = std::env::var_os("MESH_HOME").map(Into::into);
    let (mut services, mut proxies) = (100, 100);
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{a} needs a value"));
        match a.as_str() {
            "--home" => home = Some(value()?.into()),
            "--services" => services = value()?.parse()?,
            "--proxies" => proxies = value()?.parse()?,
            "--namespaces" => NAMESPACE_COUNT.store(value()?.parse::<usize>()?.max(1), Ordering::Relaxed),
            other => {
                return Err(format!(
                    "unknown argument {other}; use --home DIR --services S --proxies N [--namespaces M]"
                )
                .into());
            }
        }
    }
    let home = home.ok_or("set MESH_HOME or --home")?;
    Ok(Args { home, services: services.max(1), proxies: proxies.max(1) })
}

/// One HTTP/1.1 request on its own connection: (status, body).
async fn http(addr: &str, method: &str, path: &str, token: &str, body: &[u8]) -> Result<(u16, Vec<u8>), Error> {
    let mut s = TcpStream::connect(addr).await?;
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: meshd\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).await?;
    s.write_all(body).await?;
    let mut resp = Vec::new();
    tokio::time::timeout(PHASE_LIMIT, s.read_to_end(&mut resp)).await??;
    let split = resp.windows(4).position(|w| w == b"\r\n\r\n").ok_or("no HTTP answer")?;
    let head = String::from_utf8_lossy(&resp[..split]).to_ascii_lowercase();
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).ok_or("bad status line")?;
    let mut body = resp[split + 4..].to_vec();
    if head.contains("transfer-encoding: chunked") {
        body = dechunk(&body)?;
    }
    Ok((status, body))
}

fn dechunk(mut b: &[u8]) -> Result<Vec<u8>, Error> {
    let mut out = Vec::new();
    loop {
        let eol = b.windows(2).position(|w| w == b"\r\n").ok_or("bad chunk")?;
        let size = usize::from_str_radix(std::str::from_utf8(&b[..eol])?.trim(), 16)?;
        if size == 0 {
            return Ok(out);
        }
        let start = eol + 2;
        out.extend_from_slice(b.get(start..start + size).ok_or("short chunk")?);
        b = b.get(start + size + 2..).ok_or("short chunk")?;
    }
}

fn service_yaml(j: usize, weights: (u32, u32)) -> Vec<serde_json::Value> {
    let ns = namespace(j);
    let name = format!("svc-{j}");
    vec![
        serde_json::json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"selector": {"app": name}, "ports": [{"name": "http", "port": 9080, "targetPort": 9080}]}}),
        serde_json::json!({"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"host": name, "subsets": [
                {"name": "v1", "labels": {"version": "v1"}}, {"name": "v2", "labels": {"version": "v2"}}]}}),
        virtual_service(j, weights),
    ]
}

fn virtual_service(j: usize, (a, b): (u32, u32)) -> serde_json::Value {
    let name = format!("svc-{j}");
    serde_json::json!({"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
        "metadata": {"name": name, "namespace": namespace(j)},
        "spec": {"hosts": [name], "http": [{"route": [
            {"destination": {"host": name, "subset": "v1"}, "weight": a},
            {"destination": {"host": name, "subset": "v2"}, "weight": b}]}]}})
}

async fn apply(addr: &str, token: &str, docs: Vec<serde_json::Value>) -> Result<(), Error> {
    for batch in docs.chunks(5000) {
        let body = serde_json::to_vec(&serde_json::json!({"resources": batch, "namespace": "default"}))?;
        let (status, answer) = http(addr, "POST", mesh_api::control::APPLY_PATH, token, &body).await?;
        if status != 200 {
            return Err(format!("apply: {status} {}", String::from_utf8_lossy(&answer)).into());
        }
    }
    Ok(())
}

/// The simulated proxy `i`: a replica of service `i % S`, version v1 or v2.
fn workload(i: usize, services: usize) -> Workload {
    let j = i % services;
    Workload {
        name: format!("w-{i}"),
        namespace: namespace(j),
        service_account: format!("svc-{j}"),
        labels: [
            ("app".to_string(), format!("svc-{j}")),
            ("version".to_string(), format!("v{}", 1 + (i / services) % 2)),
        ]
        .into(),
        ports: vec![InboundPort {
            port: 9080,
            listen: std::net::SocketAddr::from(([127, 0, 0, 1], 10_000 + (i % 50_000) as u16)),
            name: None,
        }],
        admin: None,
        outbound: None,
        gateway_ports: Vec::new(),
        pid: std::process::id(),
        proxy_version: "fleet-simulator".into(),
        without_proxy: false,
    }
}

/// A push as the simulator reads it: versions only, bodies skipped unparsed.
#[derive(Deserialize)]
struct PushLite {
    nonce: String,
    routes: Option<VersionLite>,
    clusters: Option<VersionLite>,
    endpoints: Option<VersionLite>,
    listeners: Option<VersionLite>,
    endpoints_delta: Option<DeltaLite>,
    routes_delta: Option<DeltaLite>,
}

#[derive(Deserialize)]
struct DeltaLite {
    version: String,
}

#[derive(Deserialize)]
struct VersionLite {
    version: String,
    #[allow(dead_code)]
    body: serde::de::IgnoredAny,
}

/// What one simulated proxy saw.
#[derive(Default)]
struct Seen {
    /// (when, which types: bit per `ConfigType::ALL` index, bytes)
    pushes: Vec<(Instant, u8, usize)>,
    /// Which types it has received at least once.
    have: u8,
}

struct Fleet {
    addr: String,
    seen: Vec<Mutex<Seen>>,
    handshake_timeouts: AtomicUsize,
    errors: AtomicUsize,
    last_error: Mutex<String>,
    bytes: AtomicU64,
}

const ALL_TYPES: u8 = 0b1111;

fn bit(t: ConfigType) -> u8 {
    1 << ConfigType::ALL.iter().position(|x| *x == t).unwrap_or(0)
}

async fn run_proxy(fleet: Arc<Fleet>, i: usize, w: Workload, token: String) {
    loop {
        match session(&fleet, i, &w, &token).await {
            Ok(()) => return,
            Err(e) => {
                let text = e.to_string();
                if text.contains("welcome") {
                    fleet.handshake_timeouts.fetch_add(1, Ordering::Relaxed);
                } else {
                    fleet.errors.fetch_add(1, Ordering::Relaxed);
                }
                if let Ok(mut l) = fleet.last_error.lock() {
                    *l = text;
                }
                tokio::time::sleep(Duration::from_millis(500 + (i as u64 * 37) % 1000)).await;
            }
        }
    }
}

async fn session(fleet: &Fleet, i: usize, w: &Workload, token: &str) -> Result<(), Error> {
    let deadline = tokio::time::Instant::now() + HANDSHAKE_TIMEOUT;
    let mut s = tokio::time::timeout_at(deadline, TcpStream::connect(&fleet.addr))
        .await
        .map_err(|_| "no welcome: connect")??;
    s.set_nodelay(true)?;
    let req = format!(
        "GET {} HTTP/1.1\r\nHost: meshd\r\nConnection: upgrade\r\nUpgrade: {}\r\nAuthorization: Bearer {token}\r\n\r\n",
        mesh_api::protocol::DISCOVERY_PATH,
        mesh_api::protocol::UPGRADE_TOKEN
    );
    s.write_all(req.as_bytes()).await?;
    // Read the answer's head byte by byte: what follows it is the first frame.
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let b = tokio::time::timeout_at(deadline, s.read_u8()).await.map_err(|_| "no welcome: upgrade")??;
        head.push(b);
        if head.len() > 64 * 1024 {
            return Err("upgrade answer too long".into());
        }
    }
    if !head.starts_with(b"HTTP/1.1 101") {
        return Err(format!("upgrade refused: {}", String::from_utf8_lossy(&head)).into());
    }
    let mut framed = Framed::new(s, LengthDelimitedCodec::builder().max_frame_length(MAX_FRAME).new_codec());
    let send = |m: &ProxyMessage| serde_json::to_vec(m).map(Bytes::from);
    framed
        .send(send(&ProxyMessage::Hello {
            workload: w.clone(),
            challenge: format!("c{i}"),
            features: vec![mesh_api::protocol::ENDPOINTS_DELTA.into(), mesh_api::protocol::ROUTES_DELTA.into()],
        })?)
        .await?;
    let frame = tokio::time::timeout_at(deadline, framed.next()).await.map_err(|_| "no welcome in time")?;
    let frame = frame.ok_or("closed before welcome")??;
    if !frame.starts_with(br#"{"type":"welcome""#) {
        return Err(format!("expected a welcome: {}", String::from_utf8_lossy(&frame[..frame.len().min(300)])).into());
    }
    let key = rcgen::KeyPair::generate()?;
    let mut params = rcgen::CertificateParams::default();
    let uri = format!("spiffe://cluster.local/ns/{}/sa/{}", w.namespace, w.service_account);
    params.subject_alt_names = vec![rcgen::SanType::URI(uri.try_into()?)];
    let csr_pem = params.serialize_request(&key)?.pem()?;
    framed.send(send(&ProxyMessage::Csr { csr_pem })?).await?;
    while let Some(frame) = framed.next().await {
        let frame = frame?;
        if frame.starts_with(br#"{"type":"push""#) {
            let p: PushLite = serde_json::from_slice(&frame)?;
            let mut types = 0u8;
            for (t, v) in [
                (ConfigType::Routes, &p.routes),
                (ConfigType::Clusters, &p.clusters),
                (ConfigType::Endpoints, &p.endpoints),
                (ConfigType::Listeners, &p.listeners),
            ] {
                if let Some(v) = v {
                    types |= bit(t);
                    let ack = ProxyMessage::Ack { config_type: t, version: v.version.clone(), nonce: p.nonce.clone() };
                    framed.feed(send(&ack)?).await?;
                }
            }
            for (t, d) in [(ConfigType::Endpoints, &p.endpoints_delta), (ConfigType::Routes, &p.routes_delta)] {
                if let Some(d) = d {
                    types |= bit(t);
                    let ack = ProxyMessage::Ack { config_type: t, version: d.version.clone(), nonce: p.nonce.clone() };
                    framed.feed(send(&ack)?).await?;
                }
            }
            SinkExt::<Bytes>::flush(&mut framed).await?;
            fleet.bytes.fetch_add(frame.len() as u64, Ordering::Relaxed);
            if let Ok(mut seen) = fleet.seen[i].lock() {
                seen.pushes.push((Instant::now(), types, frame.len()));
                seen.have |= types;
            }
        } else if frame.starts_with(br#"{"type":"error""#) {
            return Err(format!("meshd: {}", String::from_utf8_lossy(&frame)).into());
        }
    }
    Err("meshd closed the stream".into())
}

/// meshd's CPU seconds (utime+stime) and RSS in MiB.
fn meshd_usage(pid: u32) -> (f64, f64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit_once(')').map(|(_, r)| r.split_whitespace().collect()).unwrap_or_default();
    let ticks: f64 = [11, 12].iter().filter_map(|&i| fields.get(i)?.parse::<f64>().ok()).sum();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rss_kib: f64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0.0);
    // USER_HZ is 100 on Linux.
    (ticks / 100.0, rss_kib / 1024.0)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Wait until every proxy in `which` has received a push with type `want` after `t0`, then a
/// quiet second; report the latencies of those first pushes and everything pushed after `t0`.
async fn measure(fleet: &Fleet, which: std::ops::Range<usize>, t0: Instant, want: u8) -> Result<String, Error> {
    let first = |i: usize| -> Option<Instant> {
        let seen = fleet.seen[i].lock().ok()?;
        seen.pushes.iter().find(|(at, types, _)| *at >= t0 && types & want != 0).map(|(at, _, _)| *at)
    };
    loop {
        if which.clone().all(|i| first(i).is_some()) {
            break;
        }
        if t0.elapsed() > PHASE_LIMIT {
            let missing = which.clone().filter(|&i| first(i).is_none()).count();
            return Err(format!("{missing} proxies had no push after {PHASE_LIMIT:?}").into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut lat: Vec<f64> = which.clone().filter_map(|i| first(i).map(|at| (at - t0).as_secs_f64())).collect();
    lat.sort_by(|a, b| a.total_cmp(b));
    let (mut pushes, mut bytes, mut types) = (0usize, 0usize, 0u8);
    for i in which.clone() {
        if let Ok(seen) = fleet.seen[i].lock() {
            for (_, t, b) in seen.pushes.iter().filter(|(at, _, _)| *at >= t0) {
                pushes += 1;
                bytes += b;
                types |= t;
            }
        }
    }
    let names: Vec<&str> = ConfigType::ALL.iter().filter(|t| types & bit(**t) != 0).map(|t| t.as_str()).collect();
    Ok(format!(
        "p50 {:.3} s, p99 {:.3} s, max {:.3} s; {pushes} pushes ({}), {:.1} MiB",
        percentile(&lat, 0.5),
        percentile(&lat, 0.99),
        percentile(&lat, 1.0),
        names.join("+"),
        bytes as f64 / (1024.0 * 1024.0)
    ))
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let a = args()?;
    let info: serde_json::Value = serde_json::from_slice(&std::fs::read(a.home.join(mesh_api::home::INFO_FILE))?)?;
    let addr = info["address"].as_str().ok_or("meshd.json: no address")?.to_string();
    let pid = info["pid"].as_u64().ok_or("meshd.json: no pid")? as u32;
    let admin = std::fs::read_to_string(a.home.join(mesh_api::home::TOKEN_FILE))?.trim().to_string();
    let (s, n) = (a.services, a.proxies);

    // The world.
    let docs: Vec<serde_json::Value> = (0..s).flat_map(|j| service_yaml(j, (90, 10))).collect();
    apply(&addr, &admin, docs).await?;
    // A token per proxy, and one for the replica that joins later.
    let mut tokens = Vec::with_capacity(n + 1);
    for i in 0..=n {
        let w = workload(i, s);
        let body = serde_json::to_vec(&serde_json::json!({
            "namespace": w.namespace, "workload": w.name, "serviceAccount": w.service_account}))?;
        let (status, answer) = http(&addr, "POST", mesh_api::control::PROXY_TOKENS_PATH, &admin, &body).await?;
        if status != 200 {
            return Err(format!("minting a proxy token: {status} {}", String::from_utf8_lossy(&answer)).into());
        }
        let v: serde_json::Value = serde_json::from_slice(&answer)?;
        tokens.push(v["token"].as_str().ok_or("no token in the answer")?.to_string());
    }
    let (_, rss_empty) = meshd_usage(pid);
    let fleet = Arc::new(Fleet {
        addr: addr.clone(),
        seen: (0..=n).map(|_| Mutex::new(Seen::default())).collect(),
        handshake_timeouts: AtomicUsize::new(0),
        errors: AtomicUsize::new(0),
        last_error: Mutex::new(String::new()),
        bytes: AtomicU64::new(0),
    });
    println!(
        "fleet: S={s} services in {} namespaces, N={n} proxies; meshd pid {pid}, RSS with the world and no proxies {rss_empty:.0} MiB",
        NAMESPACE_COUNT.load(Ordering::Relaxed).min(s)
    );

    // The connect storm: every proxy at once, as after a meshd restart.
    let (cpu0, _) = meshd_usage(pid);
    let t0 = Instant::now();
    for (i, token) in tokens.iter().take(n).enumerate() {
        tokio::spawn(run_proxy(fleet.clone(), i, workload(i, s), token.clone()));
    }
    loop {
        let done = (0..n).filter(|&i| fleet.seen[i].lock().map(|s| s.have == ALL_TYPES).unwrap_or(false)).count();
        if done == n {
            break;
        }
        if t0.elapsed() > PHASE_LIMIT {
            return Err(format!("connect storm: only {done} of {n} proxies configured after {PHASE_LIMIT:?}").into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Converged: no proxy got a push for two seconds.
    let last_push = || (0..n).filter_map(|i| fleet.seen[i].lock().ok()?.pushes.last().map(|p| p.0)).max().unwrap_or(t0);
    while last_push().elapsed() < Duration::from_secs(2) && t0.elapsed() < PHASE_LIMIT {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let converged = (last_push() - t0).as_secs_f64();
    let (cpu1, _) = meshd_usage(pid);
    let pushes: usize = (0..n).filter_map(|i| fleet.seen[i].lock().ok().map(|s| s.pushes.len())).sum();
    println!(
        "connect storm: all {n} converged in {converged:.2} s, meshd CPU {:.2} s, {pushes} pushes ({:.0} MiB), {} handshake timeouts, {} other errors {}",
        cpu1 - cpu0,
        fleet.bytes.load(Ordering::Relaxed) as f64 / (1024.0 * 1024.0),
        fleet.handshake_timeouts.load(Ordering::Relaxed),
        fleet.errors.load(Ordering::Relaxed),
        fleet.last_error.lock().map(|e| e.clone()).unwrap_or_default()
    );

    // At rest.
    let (c0, _) = meshd_usage(pid);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (c1, rss) = meshd_usage(pid);
    println!("at rest: meshd RSS {rss:.0} MiB, CPU {:.3} s per second", (c1 - c0) / 3.0);

    // One VirtualService's weights.
    let (c0, _) = meshd_usage(pid);
    let t0 = Instant::now();
    apply(&addr, &admin, vec![virtual_service(0, (80, 20))]).await?;
    let r = measure(&fleet, 0..n, t0, bit(ConfigType::Routes)).await?;
    let (c1, _) = meshd_usage(pid);
    println!("one VirtualService: {r}; meshd CPU {:.2} s", c1 - c0);

    // Every VirtualService's weights, in one apply.
    let (c0, _) = meshd_usage(pid);
    let t0 = Instant::now();
    apply(&addr, &admin, (0..s).map(|j| virtual_service(j, (70, 30))).collect()).await?;
    let r = measure(&fleet, 0..n, t0, bit(ConfigType::Routes)).await?;
    let (c1, _) = meshd_usage(pid);
    println!("every VirtualService: {r}; meshd CPU {:.2} s", c1 - c0);

    // One endpoint: a new replica of svc-0 connects.
    let (c0, _) = meshd_usage(pid);
    let t0 = Instant::now();
    tokio::spawn(run_proxy(fleet.clone(), n, workload(n, s), tokens[n].clone()));
    let r = measure(&fleet, 0..n, t0, bit(ConfigType::Endpoints)).await?;
    let (c1, rss) = meshd_usage(pid);
    println!("one endpoint: {r}; meshd CPU {:.2} s; RSS {rss:.0} MiB", c1 - c0);
    Ok(())
}
