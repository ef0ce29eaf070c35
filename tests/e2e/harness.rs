//! Test harness: a mesh in its own MESH_HOME, processes that are always killed, tiny apps,
//! and an HTTP client that speaks both origin-form and absolute-form.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub const MESH: &str = env!("CARGO_BIN_EXE_mesh");

/// `rel` in Istio's conformance corpus (see `mesh_api::corpus`). Tests that use it start
/// with `if !corpus(TEST) { return; }`, so a clone without `../shared` skips them, saying so.
pub fn shared(rel: &str) -> String {
    mesh_api::corpus::location().join(rel).display().to_string()
}

/// Whether Istio's corpus is here for `test`; if not, the test is skipped (and says so),
/// or fails under `MESH_TEST_STRICT`.
pub fn corpus(test: &str) -> bool {
    mesh_api::corpus::for_test(test).is_some()
}

/// Is `tool` on PATH?
pub fn have(tool: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|paths| std::env::split_paths(&paths).any(|d| d.join(tool).is_file()))
}

/// Whether python3 can import `module`.
pub fn python_has(module: &str) -> bool {
    std::process::Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Whether a test that needs something of the machine (root, iptables, a PyPI tool) can run.
/// Under `.ci/run` (`MESH_TEST_STRICT=1`, which installs everything) a missing prerequisite
/// fails the test; elsewhere, so `cargo test` works on a fresh machine, the test says what it
/// needs on stderr and passes without running.
pub fn prerequisite(what: &str, ok: bool) -> bool {
    if ok {
        return true;
    }
    assert!(std::env::var_os("MESH_TEST_STRICT").is_none(), "this test needs {what} (MESH_TEST_STRICT is set)");
    let test = std::thread::current().name().unwrap_or("a test").to_string();
    mesh_api::corpus::skipped(&format!("{test} needs {what}; `.ci/run` installs it"));
    false
}

/// Running as root (network namespaces and iptables need it).
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find_map(|l| l.strip_prefix("Uid:").map(|r| r.split_whitespace().next() == Some("0"))))
        .unwrap_or(false)
}

/// Poll `f` until it returns Some, or panic with `what` after `timeout`.
pub fn eventually<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(o: Output) -> Run {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

pub struct Proxy {
    /// The process (for /proc: file descriptors, memory, CPU).
    pub pid: u32,
    pub outbound: Option<SocketAddr>,
    pub inbound: Vec<SocketAddr>,
    /// `--outbound-tcp` listeners, in order.
    pub tcp: Vec<SocketAddr>,
    /// `--gateway-port` listeners, in order.
    pub gateway: Vec<SocketAddr>,
    /// Prometheus metrics.
    pub metrics: Option<SocketAddr>,
    pub admin: SocketAddr,
    /// The proxy's standard output after its start-up lines (access log lines).
    pub stdout: std::sync::mpsc::Receiver<String>,
}

impl Proxy {
    /// The first JSON line on the proxy's standard output that `pick` accepts.
    pub fn json_line(&self, what: &str, pick: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self.stdout.recv_timeout(left).unwrap_or_else(|_| panic!("timed out waiting for {what}"));
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line)
                && pick(&v)
            {
                return v;
            }
        }
    }
}

/// A mesh under a fresh MESH_HOME. Dropping it kills every process it started.
pub struct Mesh {
    pub home: tempfile::TempDir,
    procs: Vec<Child>,
}

impl Mesh {
    pub fn new() -> Mesh {
        Mesh { home: tempfile::tempdir().expect("tempdir"), procs: Vec::new() }
    }

    pub fn cmd(&self) -> Command {
        let mut c = Command::new(MESH);
        c.env("MESH_HOME", self.home.path()).env("NO_COLOR", "1").env_remove("MESH_NAMESPACE").stdin(Stdio::null());
        c
    }

    /// Run `mesh ARGS` to completion.
    pub fn run(&self, args: &[&str]) -> Run {
        self.cmd().args(args).output().expect("run mesh").into()
    }

    /// Run `mesh ARGS`, asserting success.
    pub fn ok(&self, args: &[&str]) -> Run {
        let r = self.run(args);
        assert_eq!(r.code, 0, "mesh {args:?} failed:\nstdout: {}\nstderr: {}", r.stdout, r.stderr);
        r
    }

    pub fn install(&self) {
        self.install_with(&[]);
    }

    /// `mesh install` on a free loopback port with these `--set KEY=VALUE` settings too.
    pub fn install_with(&self, settings: &[&str]) -> Run {
        let mut args = vec!["install", "-y", "--set", "meshd.listen=127.0.0.1:0"];
        for s in settings {
            args.extend(["--set", s]);
        }
        self.ok(&args)
    }

    pub fn meshd_pid(&self) -> Option<u32> {
        let info = std::fs::read(self.home.path().join("meshd.json")).ok()?;
        let v: serde_json::Value = serde_json::from_slice(&info).ok()?;
        v.get("pid")?.as_u64().and_then(|p| u32::try_from(p).ok())
    }

    /// Start `mesh proxy run ARGS` and wait until it reports its listeners.
    pub fn proxy(&mut self, args: &[&str]) -> Proxy {
        let mut cmd = self.cmd();
        cmd.args(["proxy", "run"]).args(args);
        self.spawn_proxy(cmd, args)
    }

    /// `mesh proxy run ARGS` with at most `nofile` open files (soft and hard limit).
    pub fn proxy_with_fd_limit(&mut self, nofile: u32, args: &[&str]) -> Proxy {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", &format!("ulimit -n {nofile} && exec \"$0\" \"$@\""), MESH, "proxy", "run"])
            .args(args)
            .env("MESH_HOME", self.home.path())
            .env("NO_COLOR", "1")
            .env_remove("MESH_NAMESPACE")
            .stdin(Stdio::null());
        self.spawn_proxy(cmd, args)
    }

    /// An ingress gateway proxy (`istio: ingressgateway`, in istio-system) serving Gateway
    /// server `port`; returns where it listens.
    pub fn ingress_gateway(&mut self, port: u16) -> SocketAddr {
        self.ingress_gateway_proxy(port).gateway[0]
    }

    /// The ingress gateway of [`Mesh::ingress_gateway`], with its log and metrics.
    pub fn ingress_gateway_proxy(&mut self, port: u16) -> Proxy {
        self.proxy(&[
            "--workload",
            "istio-ingressgateway",
            "-n",
            "istio-system",
            "--labels",
            "istio=ingressgateway,app=istio-ingressgateway",
            "--service-account",
            "istio-ingressgateway-service-account",
            "--no-outbound",
            "--gateway-port",
            &format!("{port}=127.0.0.1:0"),
        ])
    }

    /// `mesh proxy run ARGS` inside network namespace `netns` (`ip netns exec`).
    pub fn proxy_in_netns(&mut self, netns: &str, args: &[&str]) -> Proxy {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", netns, MESH, "proxy", "run"])
            .args(args)
            .env("MESH_HOME", self.home.path())
            .env("NO_COLOR", "1")
            .env_remove("MESH_NAMESPACE")
            .stdin(Stdio::null());
        self.spawn_proxy(cmd, args)
    }

    fn spawn_proxy(&mut self, mut cmd: Command, args: &[&str]) -> Proxy {
        let mut child = cmd
            .env("RUST_LOG", std::env::var("E2E_PROXY_LOG").unwrap_or("error".into()))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn proxy");
        let stdout = child.stdout.take().expect("stdout");
        let pid = child.id();
        self.procs.push(child);
        let mut outbound = None;
        let mut inbound = Vec::new();
        let mut tcp = Vec::new();
        let mut gateway = Vec::new();
        let mut metrics = None;
        let mut lines = BufReader::new(stdout).lines();
        while let Some(line) = lines.next() {
            let line = line.expect("proxy stdout");
            let addr = |prefix: &str| {
                line.strip_prefix(prefix)
                    .and_then(|r| r.split_whitespace().next())
                    .and_then(|a| a.parse::<SocketAddr>().ok())
            };
            if let Some(a) = addr("outbound listening on ") {
                outbound = Some(a);
            } else if let Some(rest) = line.strip_prefix("inbound port ") {
                inbound.push(rest.rsplit(' ').next().and_then(|a| a.parse().ok()).expect("inbound addr"));
            } else if let Some(a) = addr("metrics listening on ") {
                metrics = Some(a);
            } else if let Some(rest) = line.strip_prefix("gateway port ") {
                gateway.push(rest.rsplit(' ').next().and_then(|a| a.parse().ok()).expect("gateway addr"));
            } else if let Some(rest) = line.strip_prefix("outbound tcp ") {
                tcp.push(rest.rsplit(' ').next().and_then(|a| a.parse().ok()).expect("tcp addr"));
            } else if let Some(a) = addr("admin listening on ") {
                let (tx, rx) = std::sync::mpsc::channel();
                std::thread::spawn(move || {
                    for line in lines.map_while(Result::ok) {
                        if tx.send(line).is_err() {
                            return;
                        }
                    }
                });
                return Proxy { pid, outbound, inbound, tcp, gateway, metrics, admin: a, stdout: rx };
            }
        }
        panic!("proxy {args:?} exited before reporting its listeners");
    }

    /// Keep a process this test started; it is killed when the mesh is dropped.
    pub fn keep(&mut self, child: Child) {
        self.procs.push(child);
    }

    /// `mesh proxy-status -o json`
    pub fn statuses(&self) -> Vec<serde_json::Value> {
        let r = self.ok(&["proxy-status", "-o", "json"]);
        serde_json::from_str(&r.stdout).expect("proxy-status json")
    }

    /// Wait until `n` proxies are connected and every config type is SYNCED.
    pub fn wait_synced(&self, n: usize) {
        eventually(&format!("{n} proxies SYNCED"), Duration::from_secs(20), || {
            let r = self.run(&["proxy-status"]);
            let rows: Vec<&str> = r.stdout.lines().skip(1).collect();
            (r.code == 0 && rows.len() == n && rows.iter().all(|l| l.matches("SYNCED").count() == 4)).then_some(())
        })
    }
}

impl Drop for Mesh {
    fn drop(&mut self) {
        for p in &mut self.procs {
            let _ = p.kill();
            let _ = p.wait();
        }
        if let Some(pid) = self.meshd_pid() {
            let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
        }
    }
}

/// `mesh apply -f` of `yaml`, written to `name` in the mesh's home.
pub fn apply(mesh: &Mesh, name: &str, yaml: &str) {
    let file = mesh.home.path().join(name);
    std::fs::write(&file, yaml).expect("write");
    mesh.ok(&["apply", "-f", file.to_str().expect("path")]);
}

/// A tiny HTTP/1.1 app answering `name` to every request, on its own thread.
pub fn app(name: &'static str) -> SocketAddr {
    counting_app(name).0
}

/// Like `app`, also counting the connections it accepted.
pub fn counting_app(name: &'static str) -> (SocketAddr, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind app");
    let addr = listener.local_addr().expect("addr");
    let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = accepted.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            std::thread::spawn(move || serve_app(stream, name));
        }
    });
    (addr, accepted)
}

/// Read one HTTP/1.1 request: its head (request line and headers) and its Content-Length
/// body. None when the connection ended first.
fn read_request(reader: &mut BufReader<TcpStream>) -> Option<(String, Vec<u8>)> {
    let mut content_length = 0usize;
    let mut head = String::new();
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => return None,
            Ok(_) => {}
        }
        if line == "\r\n" {
            if head.is_empty() {
                continue;
            }
            break;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            content_length = v.trim().parse().unwrap_or(0);
        }
        head.push_str(&line);
    }
    let mut body = vec![0; content_length];
    reader.read_exact(&mut body).ok()?;
    Some((head, body))
}

/// The requests a recording app got: (head, body), in arrival order.
pub type Recorded = Arc<std::sync::Mutex<Vec<(String, Vec<u8>)>>>;

/// An HTTP/1.1 app answering 200 to everything and keeping every request it got (a test's
/// app that checks headers, or a trace collector).
pub fn recording_app() -> (SocketAddr, Recorded) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind app");
    let addr = listener.local_addr().expect("addr");
    let got: Recorded = Default::default();
    let keep = got.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let keep = keep.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream);
                while let Some(req) = read_request(&mut reader) {
                    keep.lock().unwrap_or_else(|e| e.into_inner()).push(req);
                    let resp = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Type: text/plain\r\n\r\nok\n";
                    if reader.get_mut().write_all(resp.as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
    });
    (addr, got)
}

/// A header's value in a recorded request head (name matched case-insensitively).
pub fn header_of(head: &str, name: &str) -> Option<String> {
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim().to_string())
    })
}

fn serve_app(stream: TcpStream, name: &str) {
    let mut reader = BufReader::new(stream);
    while read_request(&mut reader).is_some() {
        let resp = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nContent-Type: text/plain\r\n\r\n{name}\n",
            name.len() + 1
        );
        if reader.get_mut().write_all(resp.as_bytes()).is_err() {
            return;
        }
    }
}

/// One HTTP/1.1 request through `proxy`, on its own connection. `absolute` sends the
/// absolute-form URI (as an HTTP proxy client does); otherwise origin-form with a Host header.
pub fn get(proxy: SocketAddr, authority: &str, path: &str, absolute: bool, headers: &[(&str, &str)]) -> (u16, String) {
    let mut s = TcpStream::connect(proxy).expect("connect proxy");
    s.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    let target = if absolute { format!("http://{authority}{path}") } else { path.to_string() };
    let mut req = format!("GET {target} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).expect("write");
    let mut resp = String::new();
    let _ = s.read_to_string(&mut resp);
    let status = resp.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = resp.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    (status, body)
}

/// Send `n` requests and count answers by body; non-200 answers count under "ERROR <code>".
pub fn tally(
    proxy: SocketAddr,
    authority: &str,
    n: usize,
    absolute: bool,
) -> std::collections::BTreeMap<String, usize> {
    let mut out = std::collections::BTreeMap::new();
    for _ in 0..n {
        let (code, body) = get(proxy, authority, "/", absolute, &[]);
        let key = if code == 200 { body.trim().to_string() } else { format!("ERROR {code}") };
        *out.entry(key).or_insert(0) += 1;
    }
    out
}

/// Whether a process is running (a zombie waiting to be reaped is not).
pub fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|s| !s.rsplit(')').next().unwrap_or("").trim_start().starts_with('Z'))
}

/// Requests in the background, bounded in count and time, counting good and bad answers.
pub struct Load {
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicUsize>,
    failed: Arc<AtomicUsize>,
    thread: JoinHandle<()>,
}

impl Load {
    /// `good(code, body)` decides whether an answer counts as a success.
    pub fn start(proxy: std::net::SocketAddr, authority: &'static str, good: fn(u16, &str) -> bool) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let (ok, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let thread = {
            let (stop, ok, failed) = (stop.clone(), ok.clone(), failed.clone());
            std::thread::spawn(move || {
                let deadline = Instant::now() + Duration::from_secs(30);
                for _ in 0..50_000 {
                    if stop.load(Ordering::Relaxed) || Instant::now() > deadline {
                        break;
                    }
                    let (code, body) = get(proxy, authority, "/", false, &[]);
                    if good(code, &body) { &ok } else { &failed }.fetch_add(1, Ordering::Relaxed);
                }
            })
        };
        Load { stop, ok, failed, thread }
    }

    pub fn ok(&self) -> usize {
        self.ok.load(Ordering::Relaxed)
    }

    /// Wait until `n` more requests have succeeded.
    pub fn wait_more(&self, what: &str, n: usize) {
        let from = self.ok();
        eventually(what, Duration::from_secs(5), || (self.ok() > from + n).then_some(()));
    }

    /// Stop and return (succeeded, failed).
    pub fn finish(self) -> (usize, usize) {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().expect("load thread");
        (self.ok.load(Ordering::Relaxed), self.failed.load(Ordering::Relaxed))
    }
}

/// An HTTP/1.1 app whose answer is decided per request by `answer(n)` (n counts from 0):
/// (status, body, delay before answering). Counts the requests it got.
pub fn scripted_app(
    answer: impl Fn(usize) -> (u16, &'static str, Duration) + Send + Sync + 'static,
) -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind app");
    let addr = listener.local_addr().expect("addr");
    let count = Arc::new(AtomicUsize::new(0));
    let (counter, answer) = (count.clone(), Arc::new(answer));
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let (counter, answer) = (counter.clone(), answer.clone());
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream);
                while read_request(&mut reader).is_some() {
                    let n = counter.fetch_add(1, Ordering::SeqCst);
                    let (status, text, delay) = answer(n);
                    std::thread::sleep(delay);
                    let resp = format!(
                        "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nContent-Type: text/plain\r\n\r\n{text}\n",
                        text.len() + 1
                    );
                    if reader.get_mut().write_all(resp.as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
    });
    (addr, count)
}

/// Send `request` (raw bytes, as an attacker writes them) on a new connection and read the
/// answer until the server closes: (status, body). Status 0: no HTTP answer.
pub fn raw(addr: SocketAddr, request: &[u8]) -> (u16, String) {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    s.write_all(request).expect("write");
    let mut resp = Vec::new();
    let _ = s.read_to_end(&mut resp);
    let resp = String::from_utf8_lossy(&resp).into_owned();
    let status = resp.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = resp.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    (status, body)
}

/// A process's open file descriptors.
pub fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map(|d| d.count()).unwrap_or(0)
}

/// A process's resident memory in KiB.
pub fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| l.strip_prefix("VmRSS:").and_then(|v| v.split_whitespace().next()?.parse().ok()))
        })
        .unwrap_or(0)
}

/// A process's CPU time so far (user + system), in clock ticks (1/100 s).
pub fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or("").split_whitespace().collect();
    // After the command: state is field 3, utime 14 and stime 15 (1-based over the whole line).
    let get = |i: usize| fields.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    get(11) + get(12)
}

/// The sum of `istio_requests_total` on the proxy serving metrics at `metrics` over the
/// series carrying every one of `labels` (`name="value"` each).
pub fn requests_counted(metrics: SocketAddr, labels: &[&str]) -> u64 {
    let text = get(metrics, "m", "/stats/prometheus", false, &[]).1;
    text.lines()
        .filter(|l| l.starts_with("istio_requests_total{") && labels.iter().all(|want| l.contains(want)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

/// `mesh`'s exit codes (see cli/src/error.rs).
pub const FAILED: i32 = 1;
pub const USAGE: i32 = 64;
pub const BAD_INPUT: i32 = 65;
pub const UNAVAILABLE: i32 = 69;
pub const ISSUES_FOUND: i32 = 79;
