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
