//! The data path outlives the control plane and config changes.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::harness::*;

const SETUP: &str = r#"
apiVersion: v1
kind: Service
metadata: {name: echo}
spec:
  selector: {app: echo}
  ports: [{name: http, port: 8080, targetPort: 80}]
"#;

/// A mesh with the echo service behind one proxy and a client proxy, under steady load
/// through the client that has already seen some traffic: (mesh, client's outbound, load).
fn echo_under_load() -> (Mesh, std::net::SocketAddr, Load) {
    let mut mesh = Mesh::new();
    mesh.install();
    apply(&mesh, "setup.yaml", SETUP);
    let a = app("echo-a");
    mesh.proxy(&["--workload", "echo-1", "--labels", "app=echo", "--inbound", &format!("80={a}")]);
    let client = mesh.proxy(&["--workload", "client"]);
    let outbound = client.outbound.expect("outbound");
    mesh.wait_synced(2);
    let load = Load::start(outbound, "echo:8080", |code, body| code == 200 && body.trim() == "echo-a");
    load.wait_more("some traffic", 50);
    (mesh, outbound, load)
}

#[test]
fn killing_meshd_fails_no_request_and_proxies_reconnect() {
    let (mesh, _, load) = echo_under_load();
    let pid = mesh.meshd_pid().expect("pid");
    std::process::Command::new("kill").args(["-9", &pid.to_string()]).status().expect("kill");
    eventually("meshd gone", Duration::from_secs(5), || (!alive(pid)).then_some(()));
    load.wait_more("traffic after the kill", 200);

    // A new meshd (on a new port) is found again by the proxies, which re-register; traffic
    // keeps flowing while they do, because meshd restores the registry it had.
    let _ = std::fs::remove_file(mesh.home.path().join("meshd.json"));
    mesh.install();
    mesh.wait_synced(2);
    load.wait_more("traffic after the restart", 100);
    let (ok, failed) = load.finish();
    assert_eq!(failed, 0, "requests failed ({ok} ok)");
}

#[test]
fn config_swaps_fail_no_request_and_upstream_connections_are_reused() {
    if !corpus("config_swaps_fail_no_request_and_upstream_connections_are_reused") {
        return;
    }
    let mut mesh = Mesh::new();
    mesh.install();
    mesh.ok(&["apply", "-f", &shared("bookinfo/platform/kube/bookinfo.yaml")]);
    let (a, a_conns) = counting_app("details-a");
    let (b, b_conns) = counting_app("details-b");
    mesh.proxy(&["--workload", "details-v1", "--labels", "app=details,version=v1", "--inbound", &format!("9080={a}")]);
    mesh.proxy(&["--workload", "details-v2", "--labels", "app=details,version=v2", "--inbound", &format!("9080={b}")]);
    let client = mesh.proxy(&["--workload", "client"]);
    let outbound = client.outbound.expect("outbound");
    mesh.wait_synced(3);

    let load = Load::start(outbound, "details:9080", |code, _| code == 200);
    // Every split swaps the proxies' whole snapshot while requests are in flight.
    for split in [["v1=100", "v2=0"], ["v1=50", "v2=50"], ["v1=0", "v2=100"], ["v1=70", "v2=30"], ["v1=100", "v2=0"]] {
        mesh.ok(&["route", "split", "details", split[0], split[1], "-y"]);
    }
    load.wait_more("traffic after the last swap", 20);
    let (total, failed) = load.finish();
    assert_eq!(failed, 0, "requests failed during config swaps ({total} ok)");

    // Each client request used a new connection to the outbound listener, but the proxies
    // reuse their upstream connections: the apps saw far fewer connections than requests.
    let conns = a_conns.load(Ordering::Relaxed) + b_conns.load(Ordering::Relaxed);
    assert!(conns * 10 < total, "{conns} upstream connections for {total} requests: no keep-alive reuse");
}

/// Resident memory of a process, in KiB.
fn rss_kib(pid: u64) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

#[test]
fn a_slow_upstream_does_not_hold_up_others_and_5000_connections_stay_bounded() {
    let mut mesh = Mesh::new();
    mesh.install();
    let file = mesh.home.path().join("svc.yaml");
    std::fs::write(
        &file,
        "apiVersion: v1\nkind: Service\nmetadata: {name: slow}\nspec:\n  selector: {app: slow}\n  ports: [{name: http, port: 80}]\n---\napiVersion: v1\nkind: Service\nmetadata: {name: fast}\nspec:\n  selector: {app: fast}\n  ports: [{name: http, port: 80}]\n",
    )
    .expect("write");
    mesh.ok(&["apply", "-f", file.to_str().expect("path")]);
    let (slow, slow_seen) = scripted_app(|_| (200, "slow", Duration::from_secs(3)));
    mesh.proxy(&["--workload", "slow", "--labels", "app=slow", "--inbound", &format!("80={slow}")]);
    mesh.proxy(&["--workload", "fast", "--labels", "app=fast", "--inbound", &format!("80={}", app("fast"))]);
    let client = mesh.proxy(&["--workload", "client"]);
    let out = client.outbound.expect("outbound");
    mesh.wait_synced(3);

    // 20 requests stuck on the slow service; the fast one answers meanwhile, every time.
    let done = Arc::new(AtomicUsize::new(0));
    let stuck: Vec<_> = (0..20)
        .map(|_| {
            let done = done.clone();
            std::thread::spawn(move || {
                let r = get(out, "slow", "/", false, &[]);
                done.fetch_add(1, Ordering::SeqCst);
                r.0
            })
        })
        .collect();
    eventually("the slow app to hold all 20 requests", Duration::from_secs(5), || {
        (slow_seen.load(Ordering::SeqCst) == 20).then_some(())
    });
    for _ in 0..20 {
        assert_eq!(get(out, "fast", "/", false, &[]), (200, "fast\n".into()));
    }
    assert_eq!(done.load(Ordering::SeqCst), 0, "the fast answers came while the slow ones were still waiting");
    assert!(stuck.into_iter().all(|h| h.join().expect("thread") == 200));

    // 5,000 connections open at once to the outbound listener: memory stays bounded and the
    // proxy keeps serving.
    let info: serde_json::Value =
        serde_json::from_str(&get(client.admin, "admin", "/server_info", false, &[]).1).expect("server_info");
    let pid = info["pid"].as_u64().expect("pid");
    let before = rss_kib(pid);
    let mut conns = Vec::with_capacity(5000);
    for _ in 0..5000 {
        match std::net::TcpStream::connect(out) {
            Ok(c) => conns.push(c),
            Err(e) => panic!("connection {} refused: {e}", conns.len()),
        }
    }
    assert_eq!(get(out, "fast", "/", false, &[]), (200, "fast\n".into()), "still serving with 5,000 open");
    let during = rss_kib(pid);
    eprintln!("client proxy RSS: {before} KiB idle, {during} KiB with 5,000 connections open");
    assert!(during < before + 256 * 1024, "RSS grew from {before} KiB to {during} KiB with 5,000 connections");
    drop(conns);
    assert_eq!(get(out, "fast", "/", false, &[]), (200, "fast\n".into()));
}

#[test]
fn install_with_new_settings_on_a_running_mesh_restarts_meshd_and_fails_no_request() {
    let (mesh, outbound, load) = echo_under_load();
    let pid = mesh.meshd_pid().expect("pid");

    // The settings it runs with: nothing to do.
    let same = mesh.install_with(&[]);
    let said = format!("{}{}", same.stdout, same.stderr);
    assert!(said.contains("already installed with these settings"), "{said}");
    assert_eq!(mesh.meshd_pid(), Some(pid));

    // A new setting: meshd restarts with it, says what changed, and no request fails.
    let changed = mesh.install_with(&["meshConfig.outboundTrafficPolicy.mode=REGISTRY_ONLY"]);
    let said = format!("{}{}", changed.stdout, changed.stderr);
    assert!(said.contains("meshConfig.outboundTrafficPolicy.mode: \"ALLOW_ANY\" -> \"REGISTRY_ONLY\""), "{said}");
    assert_ne!(mesh.meshd_pid(), Some(pid), "meshd was restarted");
    mesh.wait_synced(2);
    load.wait_more("traffic after the restart", 100);
    let (ok, failed) = load.finish();
    assert_eq!(failed, 0, "requests failed ({ok} ok)");
    // The setting is in force: a host the mesh does not know is refused.
    eventually("REGISTRY_ONLY in force", Duration::from_secs(10), || {
        (get(outbound, "unknown.example.com", "/", false, &[]).0 == 502).then_some(())
    });
    // A CA change is refused, and nothing changes.
    let refused = mesh.run(&["install", "-y", "--set", "meshd.listen=127.0.0.1:0", "--set", "ca.cert=/nonexistent"]);
    assert_ne!(refused.code, 0, "{}", refused.stderr);
}

/// SIGTERM drains, as Istio's termination drain does: a request in flight is answered, a
/// connection that comes during the drain is served (one request), and with ProxyConfig's
/// `EXIT_ON_ZERO_ACTIVE_CONNECTIONS` the proxy exits once its connections are closed, long
/// before its `TERMINATION_DRAIN_DURATION_SECONDS`.
#[test]
fn a_terminated_proxy_answers_what_is_in_flight_then_exits() {
    let mut mesh = Mesh::new();
    mesh.install();
    let yaml = r#"
apiVersion: v1
kind: Service
metadata: {name: slow}
spec:
  selector: {app: slow}
  ports: [{name: http, port: 9080}]
---
apiVersion: networking.istio.io/v1beta1
kind: ProxyConfig
metadata: {name: slow-drain}
spec:
  selector: {matchLabels: {app: slow}}
  environmentVariables: {TERMINATION_DRAIN_DURATION_SECONDS: "120", EXIT_ON_ZERO_ACTIVE_CONNECTIONS: "true"}
"#;
    apply(&mesh, "drain.yaml", yaml);
    // The first request is quick; the others take a while at the app.
    let (app_addr, count) = scripted_app(|n| (200, "slow", Duration::from_millis(if n == 0 { 0 } else { 1500 })));
    let slow = mesh.proxy(&["--workload", "slow", "--labels", "app=slow", "--inbound", &format!("9080={app_addr}")]);
    let client = mesh.proxy(&["--workload", "sleep", "--labels", "app=sleep"]).outbound.expect("outbound");
    mesh.wait_synced(2);
    assert_eq!(get(client, "slow:9080", "/", false, &[]), (200, "slow\n".into()));
    let in_flight = std::thread::spawn(move || get(client, "slow:9080", "/", false, &[]));
    eventually("the request at the app", Duration::from_secs(10), || {
        (count.load(std::sync::atomic::Ordering::SeqCst) >= 2).then_some(())
    });
    let killed = std::process::Command::new("kill").args(["-TERM", &slow.pid.to_string()]).status().expect("kill");
    assert!(killed.success());
    // A new connection during the drain is still served, once.
    let inbound = slow.inbound[0];
    let fresh = raw(inbound, b"GET / HTTP/1.1\r\nHost: slow\r\n\r\n");
    assert_eq!(fresh, (200, "slow\n".into()), "served during the drain, then closed");
    assert_eq!(in_flight.join().expect("in flight"), (200, "slow\n".into()), "the request in flight is answered");
    eventually("the proxy gone once nothing is open (well before 120 s)", Duration::from_secs(30), || {
        (!alive(slow.pid)).then_some(())
    });
}
