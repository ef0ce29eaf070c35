//! The data path outlives the control plane and config changes.

use std::sync::atomic::Ordering;
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

#[test]
fn killing_meshd_fails_no_request_and_proxies_reconnect() {
    let mut mesh = Mesh::new();
    mesh.install();
    let file = mesh.home.path().join("setup.yaml");
    std::fs::write(&file, SETUP).expect("write");
    mesh.ok(&["apply", "-f", file.to_str().expect("path")]);
    let a = app("echo-a");
    mesh.proxy(&["--workload", "echo-1", "--labels", "app=echo", "--inbound", &format!("80={a}")]);
    let client = mesh.proxy(&["--workload", "client"]);
    let outbound = client.outbound.expect("outbound");
    mesh.wait_synced(2);

    let load = Load::start(outbound, "echo:8080", |code, body| code == 200 && body.trim() == "echo-a");
    load.wait_more("some traffic", 50);
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
