//! `mesh rollout`: a canary moved step by step by meshd, judged from its proxies' metrics, with
//! real proxies and traffic under load.

use std::time::Duration;

use crate::harness::*;
use crate::traffic::workload;

const REVIEWS: &str = r#"
apiVersion: v1
kind: Service
metadata: {name: reviews}
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
"#;

/// The Rollout's status as `mesh rollout status -o json` shows it.
fn rollout_status(mesh: &Mesh) -> serde_json::Value {
    let out = mesh.ok(&["rollout", "status", "reviews", "-o", "json"]).stdout;
    let v: serde_json::Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    v.as_array().and_then(|a| a.first().cloned()).unwrap_or_default()
}

fn phase(mesh: &Mesh) -> String {
    rollout_status(mesh)["phase"].as_str().unwrap_or("?").to_string()
}

/// reviews v1 (stable) and v2 (the canary, answering `canary`), and a client proxy.
fn reviews(mesh: &mut Mesh, canary: std::net::SocketAddr) -> std::net::SocketAddr {
    mesh.install();
    apply(mesh, "reviews.yaml", REVIEWS);
    workload(mesh, "reviews-v1", "reviews", "v1", 9080, app("reviews-v1"));
    workload(mesh, "reviews-v2", "reviews", "v2", 9080, canary);
    let client = mesh.proxy(&["--workload", "productpage-v1", "--labels", "app=productpage"]);
    mesh.wait_synced(3);
    client.outbound.expect("outbound")
}

/// A good canary: it waits while there is too little traffic, then advances through every
/// step under load and is promoted; no request fails on the way.
#[test]
fn a_good_canary_waits_for_traffic_then_is_promoted_with_no_failed_request() {
    let mut mesh = Mesh::new();
    let out = reviews(&mut mesh, app("reviews-v2"));
    let r = mesh.run(&["rollout", "start", "reviews", "--canary", "v2", "--steps", "30,60,100", "--interval", "1s"]);
    assert_ne!(r.code, 0, "no terminal: it needs -y");
    assert!(r.stderr.contains("add -y"), "{}", r.stderr);
    mesh.ok(&[
        "rollout",
        "start",
        "reviews",
        "--canary",
        "v2",
        "--steps",
        "30,60,100",
        "--interval",
        "1s",
        "--min-requests",
        "10",
        "-y",
    ]);
    assert_eq!(rollout_status(&mesh)["stable"], "v1", "stable inferred from the DestinationRule");
    // No traffic yet: it waits at the first step rather than promoting.
    eventually("waiting for traffic", Duration::from_secs(20), || (phase(&mesh) == "Waiting").then_some(()));
    let s = rollout_status(&mesh);
    assert_eq!((s["step"].as_u64(), s["canaryWeight"].as_u64()), (Some(1), Some(30)), "{s}");
    assert!(s["message"].as_str().is_some_and(|m| m.contains("fewer than 10")), "{s}");
    let load = Load::start(out, "reviews:9080", |code, body| code == 200 && body.starts_with("reviews-v"));
    eventually("promoted", Duration::from_secs(30), || (phase(&mesh) == "Promoted").then_some(()));
    let (ok, failed) = load.finish();
    assert_eq!(failed, 0, "requests failed during the weight changes ({ok} ok)");
    let s = rollout_status(&mesh);
    assert_eq!(s["canaryWeight"], 100, "{s}");
    assert_eq!(s["lastCheck"]["verdict"], "passed", "{s}");
    // The promotion reaches the client's proxy with the next push.
    eventually("all on the canary", Duration::from_secs(10), || {
        (0..10).all(|_| get(out, "reviews:9080", "/", false, &[]).1 == "reviews-v2\n").then_some(())
    });
    for _ in 0..10 {
        assert_eq!(get(out, "reviews:9080", "/", false, &[]), (200, "reviews-v2\n".into()), "all on the canary");
    }
    let table = mesh.ok(&["get", "rollouts"]).stdout;
    assert!(table.contains("Promoted") && table.contains("v1 -> v2"), "{table}");
}

/// A bad canary (500 on every request) is rolled back after the configured number of failed
/// checks, with none of the traffic left on it and the reason in its status.
#[test]
fn a_failing_canary_is_rolled_back_with_the_reason() {
    let mut mesh = Mesh::new();
    let (bad, _) = scripted_app(|_| (500, "broken", Duration::ZERO));
    let out = reviews(&mut mesh, bad);
    let load = Load::start(out, "reviews:9080", |code, _| code == 200);
    mesh.ok(&[
        "rollout",
        "start",
        "reviews",
        "--canary",
        "v2",
        "--stable",
        "v1",
        "--steps",
        "20,100",
        "--interval",
        "1s",
        "--min-requests",
        "5",
        "--max-failures",
        "2",
        "-y",
    ]);
    eventually("rolled back", Duration::from_secs(30), || (phase(&mesh) == "RolledBack").then_some(()));
    let s = rollout_status(&mesh);
    assert_eq!((s["canaryWeight"].as_u64(), s["failures"].as_u64()), (Some(0), Some(2)), "{s}");
    assert!(s["message"].as_str().is_some_and(|m| m.contains("success rate") && m.contains("below 99%")), "{s}");
    // Every request after the rollback is served by stable (the failures before were the bad
    // canary's own).
    let before = load.finish();
    // The rollback reaches the client's proxy with the next push.
    eventually("all on stable", Duration::from_secs(10), || {
        (0..10).all(|_| get(out, "reviews:9080", "/", false, &[]).1 == "reviews-v1\n").then_some(())
    });
    for _ in 0..20 {
        assert_eq!(get(out, "reviews:9080", "/", false, &[]), (200, "reviews-v1\n".into()), "{before:?}");
    }
    let again = mesh.run(&["rollout", "promote", "reviews", "-y"]);
    assert_ne!(again.code, 0, "a finished rollout cannot be promoted");
}

/// A meshd killed mid-rollout: the new one resumes at the same step; `pause` holds it, and
/// `abort` sends all traffic back to stable at once.
#[test]
fn a_rollout_survives_a_meshd_restart_and_abort_returns_traffic_to_stable() {
    let mut mesh = Mesh::new();
    let out = reviews(&mut mesh, app("reviews-v2"));
    let load = Load::start(out, "reviews:9080", |code, body| code == 200 && body.starts_with("reviews-v"));
    mesh.ok(&[
        "rollout",
        "start",
        "reviews",
        "--canary",
        "v2",
        "--steps",
        "10,20,30,40,50,60,70,80,90,100",
        "--interval",
        "2s",
        "--min-requests",
        "5",
        "-y",
    ]);
    eventually("past the second step", Duration::from_secs(30), || {
        (rollout_status(&mesh)["step"].as_u64().unwrap_or(0) >= 2).then_some(())
    });
    mesh.ok(&["rollout", "pause", "reviews"]);
    eventually("paused", Duration::from_secs(10), || (phase(&mesh) == "Paused").then_some(()));
    let held = rollout_status(&mesh)["step"].as_u64();
    let pid = mesh.meshd_pid().expect("meshd pid");
    std::process::Command::new("kill").args(["-9", &pid.to_string()]).status().expect("kill");
    eventually("meshd gone", Duration::from_secs(5), || (!alive(pid)).then_some(()));
    let _ = std::fs::remove_file(mesh.home.path().join("meshd.json"));
    mesh.install();
    mesh.wait_synced(3);
    let s = rollout_status(&mesh);
    assert_eq!((s["phase"].as_str(), s["step"].as_u64()), (Some("Paused"), held), "resumed where it was: {s}");
    mesh.ok(&["rollout", "resume", "reviews", "-y"]);
    eventually("moving again", Duration::from_secs(20), || {
        (rollout_status(&mesh)["step"].as_u64() > held).then_some(())
    });
    mesh.ok(&["rollout", "abort", "reviews", "-y"]);
    eventually("aborted", Duration::from_secs(10), || (phase(&mesh) == "Aborted").then_some(()));
    eventually("all on stable", Duration::from_secs(10), || {
        (0..10).all(|_| get(out, "reviews:9080", "/", false, &[]).1 == "reviews-v1\n").then_some(())
    });
    let (ok, failed) = load.finish();
    assert_eq!(failed, 0, "requests failed during the rollout, the restart and the abort ({ok} ok)");
}

/// Webhooks as Flagger calls them: `pre-step` before each step (a refusal is a failed check),
/// `post-promotion` once promoted; each gets the Rollout's state as JSON.
#[test]
fn webhooks_gate_each_step_and_hear_of_the_promotion() {
    let mut mesh = Mesh::new();
    let out = reviews(&mut mesh, app("reviews-v2"));
    let (hook, heard) = recording_app();
    let (refusing, _) = scripted_app(|_| (503, "not now", Duration::ZERO));
    let load = Load::start(out, "reviews:9080", |code, body| code == 200 && body.starts_with("reviews-v"));
    let rollout = |steps: &str, pre: std::net::SocketAddr| {
        format!(
            "apiVersion: rollouts.mesh.io/v1alpha1\nkind: Rollout\nmetadata: {{name: reviews}}\nspec:\n  host: reviews\n  stable: v1\n  canary: v2\n  steps: {steps}\n  interval: 1s\n  analysis:\n    minRequests: 5\n    webhooks:\n    - {{name: gate, type: pre-step, url: 'http://{pre}/gate'}}\n    - {{name: tell, type: post-promotion, url: 'http://{hook}/promoted'}}\n"
        )
    };
    apply(&mesh, "rollout.yaml", &rollout("[{weight: 50}, {weight: 100}]", hook));
    eventually("promoted", Duration::from_secs(30), || (phase(&mesh) == "Promoted").then_some(()));
    let calls: Vec<(String, serde_json::Value)> = heard
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .map(|(head, body)| {
            (head.lines().next().unwrap_or("").to_string(), serde_json::from_slice(body).unwrap_or_default())
        })
        .collect();
    let gates: Vec<u64> =
        calls.iter().filter(|(l, _)| l.starts_with("POST /gate")).filter_map(|(_, b)| b["step"].as_u64()).collect();
    assert_eq!(gates, [1, 2], "one pre-step call before each step: {calls:?}");
    let told: Vec<&serde_json::Value> =
        calls.iter().filter(|(l, _)| l.starts_with("POST /promoted")).map(|(_, b)| b).collect();
    assert_eq!(told.len(), 1, "{calls:?}");
    assert_eq!((told[0]["phase"].as_str(), told[0]["canary"].as_str()), (Some("Promoted"), Some("v2")));
    // A gate that refuses: each refusal is a failed check, and two roll it back.
    apply(&mesh, "rollout.yaml", &rollout("[{weight: 20}, {weight: 100}]", refusing));
    eventually("rolled back by the gate", Duration::from_secs(30), || (phase(&mesh) == "RolledBack").then_some(()));
    let s = rollout_status(&mesh);
    assert!(s["message"].as_str().is_some_and(|m| m.contains("pre-step webhook gate") && m.contains("503")), "{s}");
    assert_eq!(s["canaryWeight"], 0, "{s}");
    let (ok, failed) = load.finish();
    assert_eq!(failed, 0, "{ok} ok");
}

/// A canary that answers but slowly (300 ms, past a 100 ms p99 threshold) is rolled back on
/// latency alone, the figure in its status.
#[test]
fn a_slow_canary_is_rolled_back_on_its_p99_latency() {
    let mut mesh = Mesh::new();
    let (slow, _) = scripted_app(|_| (200, "reviews-v2", Duration::from_millis(300)));
    let out = reviews(&mut mesh, slow);
    let load = Load::start(out, "reviews:9080", |code, _| code == 200);
    mesh.ok(&[
        "rollout",
        "start",
        "reviews",
        "--canary",
        "v2",
        "--steps",
        "50,100",
        "--interval",
        "2s",
        "--min-requests",
        "2",
        "--max-failures",
        "1",
        "--p99",
        "100ms",
        "-y",
    ]);
    eventually("rolled back", Duration::from_secs(30), || (phase(&mesh) == "RolledBack").then_some(()));
    let s = rollout_status(&mesh);
    assert!(s["message"].as_str().is_some_and(|m| m.contains("p99 latency") && m.contains("over 100 ms")), "{s}");
    assert_eq!(s["lastCheck"]["successRate"], 100.0, "every answer was a 200: {s}");
    let (ok, failed) = load.finish();
    assert_eq!(failed, 0, "a slow canary fails no request ({ok} ok)");
}

/// An A/B step sends only the requests carrying its header to the canary; a shadow step copies
/// requests to the canary while stable answers every one. Each is judged on the traffic the
/// canary itself got, and the Rollout goes on to promotion with no failed request.
#[test]
fn ab_and_shadow_steps_route_by_header_and_mirror_to_the_canary() {
    use std::sync::atomic::Ordering;
    let mut mesh = Mesh::new();
    let (canary, got) = scripted_app(|_| (200, "reviews-v2", Duration::ZERO));
    let out = reviews(&mut mesh, canary);
    let load = Load::start(out, "reviews:9080", |code, body| code == 200 && body.starts_with("reviews-v"));
    apply(
        &mesh,
        "rollout.yaml",
        "apiVersion: rollouts.mesh.io/v1alpha1\nkind: Rollout\nmetadata: {name: reviews}\nspec:\n  host: reviews\n  stable: v1\n  canary: v2\n  steps:\n  - matches: {header: {name: x-canary, value: 'yes'}}\n  - {mirror: 100}\n  - {weight: 100}\n  interval: 1s\n  analysis: {minRequests: 5}\n",
    );
    let step = |mesh: &Mesh| {
        let s = rollout_status(mesh);
        (s["step"].as_u64().unwrap_or(0), s["phase"].as_str().unwrap_or("?").to_string())
    };
    // A/B: the load carries no header, so the canary gets nothing and the step waits.
    eventually("the A/B step waiting for traffic", Duration::from_secs(20), || {
        (step(&mesh) == (1, "Waiting".into())).then_some(())
    });
    let before = got.load(Ordering::SeqCst);
    let marked = [("x-canary", "yes")];
    eventually("marked requests on the canary", Duration::from_secs(10), || {
        (0..3).all(|_| get(out, "reviews:9080", "/", false, &marked).1 == "reviews-v2\n").then_some(())
    });
    for other in [&[][..], &[("x-canary", "no")][..]] {
        assert_eq!(get(out, "reviews:9080", "/", false, other), (200, "reviews-v1\n".into()), "{other:?}");
    }
    assert!(got.load(Ordering::SeqCst) > before, "the canary got the marked requests");
    // Judged on the marked requests alone, the A/B step passes.
    eventually("the shadow step", Duration::from_secs(20), || {
        let _ = get(out, "reviews:9080", "/", false, &marked);
        (step(&mesh).0 == 2).then_some(())
    });
    mesh.ok(&["rollout", "pause", "reviews"]);
    eventually("paused in the shadow step", Duration::from_secs(10), || {
        (step(&mesh) == (2, "Paused".into())).then_some(())
    });
    // Stable answers everything, the marked requests too; the canary gets copies.
    eventually("stable answering marked requests", Duration::from_secs(10), || {
        (0..10).all(|_| get(out, "reviews:9080", "/", false, &marked).1 == "reviews-v1\n").then_some(())
    });
    let before = got.load(Ordering::SeqCst);
    for _ in 0..20 {
        assert_eq!(get(out, "reviews:9080", "/", false, &marked), (200, "reviews-v1\n".into()));
    }
    eventually("copies on the canary", Duration::from_secs(10), || {
        (got.load(Ordering::SeqCst) >= before + 20).then_some(())
    });
    // Judged on the copies, the shadow step passes and the Rollout is promoted.
    mesh.ok(&["rollout", "resume", "reviews", "-y"]);
    eventually("promoted", Duration::from_secs(30), || (phase(&mesh) == "Promoted").then_some(()));
    let s = rollout_status(&mesh);
    assert!(s["lastCheck"]["requests"].as_u64().is_some_and(|n| n >= 5), "judged on the canary's traffic: {s}");
    let (ok, failed) = load.finish();
    assert_eq!(failed, 0, "requests failed across the A/B, shadow and promotion steps ({ok} ok)");
}

/// A VirtualService of the user's routes the host: the Rollout moves only the route it owns
/// (the catch-all to stable), keeping that route's other settings, while a hand-written rule
/// (jason to v3) stays as written through every step. The stored VirtualService is never
/// changed. The next rollout starts from the promoted canary and moves the same route.
#[test]
fn a_rollout_moves_only_its_routes_in_the_users_virtual_service() {
    let mut mesh = Mesh::new();
    mesh.install();
    apply(
        &mesh,
        "reviews.yaml",
        &REVIEWS.replace(
            "  - {name: v2, labels: {version: v2}}\n",
            "  - {name: v2, labels: {version: v2}}\n  - {name: v3, labels: {version: v3}}\n",
        ),
    );
    workload(&mut mesh, "reviews-v1", "reviews", "v1", 9080, app("reviews-v1"));
    workload(&mut mesh, "reviews-v2", "reviews", "v2", 9080, app("reviews-v2"));
    workload(&mut mesh, "reviews-v3", "reviews", "v3", 9080, app("reviews-v3"));
    let out = mesh.proxy(&["--workload", "productpage-v1", "--labels", "app=productpage"]).outbound.expect("outbound");
    mesh.wait_synced(4);
    let vs = "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: reviews}\nspec:\n  hosts: [reviews]\n  http:\n  - name: jason\n    match: [{headers: {end-user: {exact: jason}}}]\n    route: [{destination: {host: reviews, subset: v3}}]\n  - name: default\n    headers: {response: {set: {x-route: default}}}\n    route: [{destination: {host: reviews, subset: v1}}]\n";
    apply(&mesh, "vs.yaml", vs);
    let stored = || mesh.ok(&["get", "virtualservice", "reviews", "-o", "json"]).stdout;
    let written = stored();
    // (body, the x-route response header) of a request through the client's proxy.
    let ask = |headers: &str| {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(out).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
        let req = format!("GET / HTTP/1.1\r\nHost: reviews:9080\r\nConnection: close\r\n{headers}\r\n");
        s.write_all(req.as_bytes()).expect("write");
        let mut resp = String::new();
        let _ = s.read_to_string(&mut resp);
        let (head, body) = resp.split_once("\r\n\r\n").unwrap_or_default();
        (body.to_string(), header_of(head, "x-route"))
    };
    let jason = "end-user: jason\r\n";
    eventually("the user's routes in force", Duration::from_secs(20), || {
        (0..5)
            .all(|_| ask("") == ("reviews-v1\n".into(), Some("default".into())) && ask(jason).0 == "reviews-v3\n")
            .then_some(())
    });
    // Applied as YAML, the same mistake is found by the analyzers `mesh apply` runs first.
    let file = mesh.home.path().join("nosuch.yaml");
    std::fs::write(&file, "apiVersion: rollouts.mesh.io/v1alpha1\nkind: Rollout\nmetadata: {name: reviews}\nspec: {host: reviews, stable: v1, canary: v2, routes: [nosuch]}\n").expect("write");
    let refused = mesh.run(&["apply", "-f", file.to_str().expect("path")]);
    assert_ne!(refused.code, 0);
    let said = format!("{}{}", refused.stdout, refused.stderr);
    assert!(said.contains("MESH0001") && said.contains("none of its HTTP routes is named nosuch"), "{said}");
    let refused = mesh.run(&["rollout", "start", "reviews", "--canary", "v2", "--route", "nosuch", "-y"]);
    assert_ne!(refused.code, 0);
    assert!(
        refused.stderr.contains("none of its HTTP routes is named nosuch")
            && refused.stderr.contains("nothing was changed"),
        "{}",
        refused.stderr
    );
    assert!(mesh.ok(&["get", "rollouts"]).stdout.lines().count() <= 1, "no Rollout written");
    let load = Load::start(out, "reviews:9080", |code, body| code == 200 && body.starts_with("reviews-v"));
    let started = mesh.ok(&[
        "rollout",
        "start",
        "reviews",
        "--canary",
        "v2",
        "--steps",
        "50,100",
        "--interval",
        "1s",
        "--min-requests",
        "5",
        "-y",
    ]);
    assert!(started.stdout.contains("moves route default (1 of 2)"), "{}", started.stdout);
    assert_eq!(rollout_status(&mesh)["stable"], "v1", "the catch-all route's subset, not the rule's");
    // Through the steps: jason's rule stays on v3; the default route keeps its header.
    let mut seen_split = false;
    eventually("promoted", Duration::from_secs(30), || {
        assert_eq!(ask(jason).0, "reviews-v3\n", "the hand-written rule moved");
        let (body, route) = ask("");
        assert_eq!(route.as_deref(), Some("default"), "the owned route lost its settings ({body})");
        seen_split |= body == "reviews-v2\n";
        (phase(&mesh) == "Promoted").then_some(())
    });
    assert!(seen_split, "the canary got some of the default route's traffic");
    eventually("all on the canary", Duration::from_secs(10), || {
        (0..10).all(|_| ask("") == ("reviews-v2\n".into(), Some("default".into()))).then_some(())
    });
    assert_eq!(ask(jason).0, "reviews-v3\n");
    assert_eq!(stored(), written, "the stored VirtualService is as the user wrote it");
    let (ok, failed) = load.finish();
    assert_eq!(failed, 0, "{ok} ok");
    // The next version: stable is the promoted canary, and the same route moves (its stored
    // subset, v1, is neither of the new pair).
    let next = mesh.ok(&[
        "rollout",
        "start",
        "reviews",
        "--canary",
        "v3",
        "--steps",
        "100",
        "--interval",
        "1s",
        "--min-requests",
        "5",
        "-y",
    ]);
    assert!(next.stdout.contains("moves route default (1 of 2)"), "{}", next.stdout);
    let s = rollout_status(&mesh);
    assert_eq!((s["stable"].as_str(), s["canary"].as_str()), (Some("v2"), Some("v3")), "{s}");
    eventually("the first step of the next rollout", Duration::from_secs(20), || {
        let _ = ask("");
        (0..10).all(|_| ask("").0 == "reviews-v3\n").then_some(())
    });
}
