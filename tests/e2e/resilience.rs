//! The data path outlives the control plane.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

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

    // Traffic in the background (bounded in count and time) while meshd dies.
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let load = {
        let (stop, ok, failed) = (stop.clone(), ok.clone(), failed.clone());
        std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(20);
            for _ in 0..20_000 {
                if stop.load(Ordering::Relaxed) || Instant::now() > deadline {
                    break;
                }
                let (code, body) = get(outbound, "echo:8080", "/", false, &[]);
                if code == 200 && body.trim() == "echo-a" { &ok } else { &failed }.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    eventually("some traffic", Duration::from_secs(5), || (ok.load(Ordering::Relaxed) > 50).then_some(()));
    let pid = mesh.meshd_pid().expect("pid");
    std::process::Command::new("kill").args(["-9", &pid.to_string()]).status().expect("kill");
    eventually("meshd gone", Duration::from_secs(5), || (!alive(pid)).then_some(()));
    let at_kill = ok.load(Ordering::Relaxed);
    eventually("traffic after the kill", Duration::from_secs(5), || {
        (ok.load(Ordering::Relaxed) > at_kill + 200).then_some(())
    });

    // A new meshd (on a new port) is found again by the proxies, which re-register; traffic
    // keeps flowing while they do, because meshd restores the registry it had.
    let _ = std::fs::remove_file(mesh.home.path().join("meshd.json"));
    mesh.install();
    mesh.wait_synced(2);
    let at_sync = ok.load(Ordering::Relaxed);
    eventually("traffic after the restart", Duration::from_secs(5), || {
        (ok.load(Ordering::Relaxed) > at_sync + 100).then_some(())
    });
    stop.store(true, Ordering::Relaxed);
    load.join().expect("load thread");
    assert_eq!(failed.load(Ordering::Relaxed), 0, "requests failed ({} ok)", ok.load(Ordering::Relaxed));
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

    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let load = {
        let (stop, ok, failed) = (stop.clone(), ok.clone(), failed.clone());
        std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(30);
            for _ in 0..50_000 {
                if stop.load(Ordering::Relaxed) || Instant::now() > deadline {
                    break;
                }
                let (code, _) = get(outbound, "details:9080", "/", false, &[]);
                if code == 200 { &ok } else { &failed }.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    // Every split swaps the proxies' whole snapshot while requests are in flight.
    for split in [["v1=100", "v2=0"], ["v1=50", "v2=50"], ["v1=0", "v2=100"], ["v1=70", "v2=30"], ["v1=100", "v2=0"]] {
        mesh.ok(&["route", "split", "details", split[0], split[1], "-y"]);
    }
    stop.store(true, Ordering::Relaxed);
    load.join().expect("load thread");
    let total = ok.load(Ordering::Relaxed);
    assert!(total > 50, "too little traffic to judge: {total}");
    assert_eq!(failed.load(Ordering::Relaxed), 0, "requests failed during config swaps ({total} ok)");

    // Each client request used a new connection to the outbound listener, but the proxies
    // reuse their upstream connections: the apps saw far fewer connections than requests.
    let conns = a_conns.load(Ordering::Relaxed) + b_conns.load(Ordering::Relaxed);
    assert!(conns * 10 < total, "{conns} upstream connections for {total} requests: no keep-alive reuse");
}
