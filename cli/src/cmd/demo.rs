//! `mesh demo`: in a temporary MESH_HOME, start meshd and a bookinfo-like app (productpage
//! calling reviews v1/v2/v3, each a process with its own sidecar), shift reviews traffic from
//! v1 to v3 step by step while sending requests, show the split observed at each step and the
//! final proxy-status, then stop everything it started.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use mesh_api::control::{APPLY_PATH, ApplyRequest, ApplyResponse};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

use crate::Ctx;
use crate::cli::DemoArgs;
use crate::client::MeshdClient;
use crate::error::{CliError, Result};

const CONFIG: &str = r#"
apiVersion: v1
kind: Service
metadata: {name: productpage, labels: {app: productpage}}
spec:
  selector: {app: productpage}
  ports: [{name: http, port: 9080}]
---
apiVersion: v1
kind: Service
metadata: {name: reviews, labels: {app: reviews}}
spec:
  selector: {app: reviews}
  ports: [{name: http, port: 9080}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
  - {name: v3, labels: {version: v3}}
"#;

const STEPS: [(u32, u32); 4] = [(100, 0), (90, 10), (50, 50), (0, 100)];

struct Procs {
    home: PathBuf,
    children: Vec<Child>,
    meshd: Option<MeshdClient>,
    /// productpage's sidecar, where the demo's traffic enters the mesh.
    outbound: Option<std::net::SocketAddr>,
}

impl Procs {
    fn spawn(&mut self, args: &[&str]) -> Result<(Lines<BufReader<ChildStdout>>, usize)> {
        let exe = std::env::current_exe().map_err(|e| CliError::unavailable(e.to_string()))?;
        let mut child = Command::new(exe)
            .args(args)
            .env("MESH_HOME", &self.home)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| CliError::unavailable(format!("cannot start {args:?}: {e}")))?;
        let stdout = child.stdout.take().ok_or_else(|| CliError::internal("no stdout"))?;
        self.children.push(child);
        Ok((BufReader::new(stdout).lines(), self.children.len() - 1))
    }

    async fn stop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill().await;
        }
        self.children.clear();
        if let Some(m) = self.meshd.take() {
            let _: Result<serde_json::Value> = m.post(mesh_api::control::SHUTDOWN_PATH, &serde_json::json!({})).await;
            let deadline = Instant::now() + Duration::from_secs(5);
            while meshd::Home::new(self.home.clone()).info_path().exists() && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        let _ = std::fs::remove_dir_all(&self.home);
    }
}

/// Read lines until one starts with `prefix`; return the address that follows it.
async fn read_addr(lines: &mut Lines<BufReader<ChildStdout>>, prefix: &str, what: &str) -> Result<SocketAddr> {
    let fut = async {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(rest) = line.strip_prefix(prefix)
                && let Some(addr) = rest.split_whitespace().next().and_then(|a| a.parse().ok())
            {
                return Some(addr);
            }
        }
        None
    };
    match tokio::time::timeout(Duration::from_secs(20), fut).await {
        Ok(Some(a)) => Ok(a),
        _ => Err(CliError::unavailable(format!("{what} did not start"))),
    }
}

pub async fn run(ctx: &Ctx, args: DemoArgs) -> Result<()> {
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    let home = std::env::temp_dir().join(format!("mesh-demo-{}-{nanos}", std::process::id()));
    let mut procs = Procs { home, children: Vec::new(), meshd: None, outbound: None };
    let result = demo(ctx, &args, &mut procs).await;
    if result.is_ok() && args.keep {
        let via = procs.outbound.map(|a| a.to_string()).unwrap_or_else(|| "?".into());
        ctx.out.info(format!(
            "the demo mesh keeps running; press Ctrl-C to stop it. From another shell:\n  \
             export MESH_HOME={}\n  mesh proxy-status\n  mesh top\n  \
             curl -x http://{via} http://reviews:9080/\n  mesh route split reviews v1=50 v3=50 -y",
            procs.home.display()
        ));
        let _ = tokio::signal::ctrl_c().await;
    }
    procs.stop().await;
    if result.is_ok() {
        ctx.out.success("demo finished; everything it started has stopped");
    }
    result
}

async fn demo(ctx: &Ctx, args: &DemoArgs, procs: &mut Procs) -> Result<()> {
    let started = Instant::now();
    ctx.out.info(format!("mesh demo: a bookinfo-like mesh in {}", procs.home.display()));
    let home = meshd::Home::new(procs.home.clone());
    let client = crate::cmd::install::start_meshd(ctx, &home, ([127, 0, 0, 1], 0).into(), &Default::default()).await?;
    procs.meshd = Some(MeshdClient::from_home(&home)?);
    ctx.out.success(format!("meshd running at {}", client.address));

    let values = mesh_api::resource::parse_yaml_stream(CONFIG).map_err(CliError::internal)?;
    let _: ApplyResponse = client
        .post(APPLY_PATH, &ApplyRequest { resources: values, namespace: "default".into(), dry_run: false })
        .await?;
    let store = crate::store::ConfigStore::Meshd(Box::new(MeshdClient::from_home(&home)?));
    let plan = crate::cmd::route::plan_live(&store, "reviews", "default", &[("v1".into(), 100)]).await?;
    crate::cmd::route::apply_plan(&store, &plan, "default").await?;

    // reviews v1..v3: app, then its sidecar.
    for v in ["v1", "v2", "v3"] {
        let name = format!("reviews-{v}");
        let (mut lines, _) = procs.spawn(&["__demo-app", "--name", &name, "--listen", "127.0.0.1:0"])?;
        let app = read_addr(&mut lines, "", &name).await?;
        let inbound = format!("9080={app}");
        let labels = format!("app=reviews,version={v}");
        let (mut plines, _) = procs.spawn(&[
            "proxy",
            "run",
            "--workload",
            &name,
            "--service-account",
            "bookinfo-reviews",
            "--labels",
            &labels,
            "--inbound",
            &inbound,
            "--no-outbound",
        ])?;
        read_addr(&mut plines, "admin listening on ", &format!("{name}'s sidecar")).await?;
    }
    // productpage: app first (it waits for its sidecar's address on stdin), then the sidecar.
    let (mut lines, app_idx) = procs.spawn(&[
        "__demo-app",
        "--name",
        "productpage-v1",
        "--listen",
        "127.0.0.1:0",
        "--call",
        "reviews:9080",
    ])?;
    let app = read_addr(&mut lines, "", "productpage").await?;
    let inbound = format!("9080={app}");
    let (mut plines, _) = procs.spawn(&[
        "proxy",
        "run",
        "--workload",
        "productpage-v1",
        "--service-account",
        "bookinfo-productpage",
        "--labels",
        "app=productpage,version=v1",
        "--inbound",
        &inbound,
    ])?;
    let outbound = read_addr(&mut plines, "outbound listening on ", "productpage's sidecar").await?;
    procs.outbound = Some(outbound);
    let entry = read_addr(&mut plines, "inbound port 9080 listening on ", "productpage's sidecar").await?;
    if let Some(stdin) = procs.children[app_idx].stdin.as_mut() {
        stdin.write_all(format!("{outbound}\n").as_bytes()).await.map_err(|e| CliError::unavailable(e.to_string()))?;
        stdin.flush().await.map_err(|e| CliError::unavailable(e.to_string()))?;
    }
    // Wait until all four proxies are connected and synced.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let ps = crate::cmd::proxy_status::fetch(&client).await?;
        if ps.len() == 4 && ps.iter().all(crate::cmd::proxy_status::all_synced) {
            break;
        }
        if Instant::now() > deadline {
            return Err(CliError::unavailable("the demo's proxies did not all connect and sync within 20s"));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    ctx.out.success("productpage-v1, reviews-v1, reviews-v2 and reviews-v3 running, each with its sidecar");
    ctx.out.info(format!(
        "shifting reviews traffic from v1 to v3, {} requests per step (client -> productpage -> reviews):",
        args.requests
    ));

    let http: Client<HttpConnector, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build(HttpConnector::new());
    let mut rows = Vec::new();
    for (i, (v1, v3)) in STEPS.into_iter().enumerate() {
        let mut weights = Vec::new();
        if v1 > 0 {
            weights.push(("v1".to_string(), v1));
        }
        if v3 > 0 {
            weights.push(("v3".to_string(), v3));
        }
        let plan = crate::cmd::route::plan_live(&store, "reviews", "default", &weights).await?;
        let (_, synced, total) = crate::cmd::route::apply_plan(&store, &plan, "default").await?;
        let mut counts = [0u32; 3];
        let mut errors = 0u32;
        for _ in 0..args.requests {
            let req = http::Request::get(format!("http://{entry}/"))
                .header(http::header::HOST, "productpage:9080")
                .body(Empty::new());
            let body = match req {
                Ok(req) => match http.request(req).await {
                    Ok(resp) if resp.status().is_success() => {
                        resp.into_body().collect().await.map(|b| b.to_bytes()).ok()
                    }
                    _ => None,
                },
                Err(_) => None,
            };
            let text = body.map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default();
            match ["reviews-v1", "reviews-v2", "reviews-v3"].iter().position(|v| text.contains(v)) {
                Some(k) => counts[k] += 1,
                None => errors += 1,
            }
        }
        let pct = |n: u32| format!("{n} ({:.0}%)", f64::from(n) * 100.0 / f64::from(args.requests.max(1)));
        ctx.out.info(format!(
            "  step {}: v1={v1} v3={v3} -> v1 {}, v2 {}, v3 {} ({synced}/{total} proxies synced)",
            i + 1,
            pct(counts[0]),
            pct(counts[1]),
            pct(counts[2])
        ));
        rows.push(vec![
            (i + 1).to_string(),
            format!("{v1}/{v3}"),
            pct(counts[0]),
            pct(counts[1]),
            pct(counts[2]),
            errors.to_string(),
        ]);
    }
    ctx.out.data("");
    ctx.out.table(&["STEP", "ROUTE V1/V3", "REVIEWS-V1", "REVIEWS-V2", "REVIEWS-V3", "FAILED"], rows);
    ctx.out.data("");
    let statuses = crate::cmd::proxy_status::fetch(&client).await?;
    crate::cmd::proxy_status::table(ctx, &statuses);
    ctx.out.data("");
    let mut ids: Vec<&str> = statuses
        .iter()
        .filter_map(|p| p.identity.cert.as_ref())
        .filter_map(|c| c.uris.first())
        .map(String::as_str)
        .collect();
    ids.sort_unstable();
    ids.dedup();
    ctx.out.info(format!(
        "every hop between sidecars was mutual TLS; {} proxies hold certificates for: {}",
        statuses.iter().filter(|p| p.identity.cert.is_some()).count(),
        ids.join(", ")
    ));
    ctx.out.info(format!("demo ran in {:.1}s", started.elapsed().as_secs_f64()));
    Ok(())
}
