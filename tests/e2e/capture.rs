//! Transparent capture for real: a network namespace with a veth pair to the host, `proxy
//! init`'s iptables rules inside it, and an app there that makes a plain connection to a
//! service address. The kernel redirects it to the proxy, which routes it through the mesh.

use crate::harness::*;
use std::process::{Command, Stdio};

fn run(args: &[&str]) {
    let out = Command::new(args[0]).args(&args[1..]).output().unwrap_or_else(|e| panic!("{args:?}: {e}"));
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A network namespace joined to the host by a veth pair: host side `.1`, namespace side `.2`
/// of a /30 of its own. Removed (with the pair) on drop, even when the test fails.
struct Netns {
    name: String,
    host_if: String,
    host_ip: String,
    ns_ip: String,
}

impl Netns {
    /// `tag` tells apart the namespaces of tests running at once in one process.
    fn new(tag: u32) -> Netns {
        let id = (std::process::id() * 2 + tag) % 60_000;
        let (a, b) = (id / 250 % 250, id % 250);
        let n = Netns {
            name: format!("meshcap{id}"),
            host_if: format!("mc{id}h"),
            host_ip: format!("10.{}.{a}.{}", 200 + b % 50, 1),
            ns_ip: format!("10.{}.{a}.{}", 200 + b % 50, 2),
        };
        let _ = Command::new("ip").args(["netns", "del", &n.name]).stderr(Stdio::null()).status();
        let _ = Command::new("ip").args(["link", "del", &n.host_if]).stderr(Stdio::null()).status();
        let peer = format!("mc{id}n");
        run(&["ip", "netns", "add", &n.name]);
        run(&["ip", "link", "add", &n.host_if, "type", "veth", "peer", "name", &peer]);
        run(&["ip", "link", "set", &peer, "netns", &n.name]);
        run(&["ip", "addr", "add", &format!("{}/30", n.host_ip), "dev", &n.host_if]);
        run(&["ip", "link", "set", &n.host_if, "up"]);
        let inside = |args: &[&str]| {
            let mut all = vec!["ip", "netns", "exec", &n.name];
            all.extend_from_slice(args);
            run(&all);
        };
        inside(&["ip", "addr", "add", &format!("{}/30", n.ns_ip), "dev", &peer]);
        inside(&["ip", "link", "set", &peer, "up"]);
        inside(&["ip", "link", "set", "lo", "up"]);
        inside(&["ip", "route", "add", "default", "via", &n.host_ip]);
        n
    }

    /// A command run inside the namespace as an unprivileged user (the app).
    fn app(&self, script: &str) -> String {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.name, "setpriv", "--reuid=1000", "--regid=1000", "--clear-groups"])
            .args(["bash", "-c", script])
            .output()
            .expect("run app");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.name]).status();
        let _ = Command::new("ip").args(["link", "del", &self.host_if]).stderr(Stdio::null()).status();
    }
}

/// One HTTP/1.0 request over bash's /dev/tcp (a plain socket, no proxy settings).
fn plain_get(addr: &str, port: u16, host: &str) -> String {
    format!(
        "exec 3<>/dev/tcp/{addr}/{port} && printf 'GET /plain HTTP/1.0\\r\\nHost: {host}\\r\\n\\r\\n' >&3 && timeout 10 cat <&3"
    )
}

/// Root, `ip`, `iptables-restore` and `setpriv` (and `python3` when `python` is set).
fn can_capture(python: bool) -> bool {
    prerequisite(
        "root with ip, iptables-restore, setpriv and python3 (network namespaces and nat rules)",
        is_root() && have("ip") && have("iptables-restore") && have("setpriv") && (!python || have("python3")),
    )
}

#[test]
fn proxy_init_captures_an_apps_plain_connections_in_a_network_namespace() {
    if !corpus("proxy_init_captures_an_apps_plain_connections_in_a_network_namespace") {
        return;
    }
    if !can_capture(false) {
        return;
    }
    let net = Netns::new(0);
    let mut mesh = Mesh::new();
    mesh.ok(&["install", "-y", "--set", &format!("meshd.listen={}:0", net.host_ip)]);
    mesh.ok(&["apply", "-f", &shared("bookinfo/platform/kube/bookinfo.yaml")]);
    // The server workload on the host, reachable from the namespace over the veth pair.
    let (app_addr, got) = recording_app();
    mesh.proxy(&[
        "--workload",
        "reviews-v1",
        "--labels",
        "app=reviews,version=v1",
        "--inbound",
        &format!("9080={app_addr}"),
        "--inbound-bind",
        &net.host_ip,
    ]);
    // The client workload in the namespace: its proxy runs as root, the app as uid 1000.
    let _client = mesh.proxy_in_netns(
        &net.name,
        &["--workload", "productpage-v1", "--labels", "app=productpage", "--capture-outbound", "0.0.0.0:15001"],
    );
    mesh.wait_synced(2);
    // Outbound capture only: this proxy's discovery stream is older than the rules (in a pod
    // the init container runs first), and redirecting its inbound packets would break it.
    run(&["ip", "netns", "exec", &net.name, MESH, "proxy", "init", "--proxy-uid", "0", "--include-inbound-ports", ""]);

    // A service address nothing listens on: only the mesh can answer it, routing by Host.
    let answer = net.app(&plain_get("10.96.0.10", 9080, "reviews"));
    assert!(answer.starts_with("HTTP/1.1 200") || answer.starts_with("HTTP/1.0 200"), "{answer}");
    let (head, _) = got.lock().unwrap_or_else(|e| e.into_inner()).last().cloned().expect("the app got the request");
    assert!(head.starts_with("GET /plain "), "{head}");
    let xfcc = header_of(&head, "x-forwarded-client-cert").expect("arrived over mTLS from the client proxy");
    assert!(xfcc.contains("spiffe://cluster.local/ns/default/sa/default"), "{xfcc}");

    // A destination outside the mesh: passed through to where the app was connecting.
    let outside = std::net::TcpListener::bind(format!("{}:0", net.host_ip)).expect("bind outside server");
    let port = outside.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        if let Ok((mut s, _)) = outside.accept() {
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf);
            let _ = s.write_all(b"HTTP/1.0 200 OK\r\nContent-Length: 8\r\n\r\noutside\n");
        }
    });
    let answer = net.app(&plain_get(&net.host_ip, port, "example.test"));
    assert!(answer.contains("outside"), "{answer}");

    // Opaque TCP (the server speaks first) is passed through too.
    let banner = std::net::TcpListener::bind(format!("{}:0", net.host_ip)).expect("bind");
    let bport = banner.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        use std::io::Write;
        if let Ok((mut s, _)) = banner.accept() {
            let _ = s.write_all(b"220 banner\n");
        }
    });
    let answer = net.app(&format!("exec 3<>/dev/tcp/{}/{bport} && timeout 5 head -1 <&3", net.host_ip));
    assert_eq!(answer.trim(), "220 banner");

    // Opaque TCP to a Service's cluster IP (nothing has that address): routed like the
    // Service's name, to its endpoint over mTLS, and counted in the TCP metrics.
    apply(
        &mesh,
        "tcp-echo.yaml",
        "apiVersion: v1\nkind: Service\nmetadata: {name: tcp-echo}\nspec:\n  clusterIP: 10.96.0.20\n  selector: {app: tcp-echo}\n  ports: [{name: tcp, port: 9000}]\n",
    );
    let echo = crate::traffic::tcp_echo("one");
    let server = mesh.proxy(&[
        "--workload",
        "tcp-echo-v1",
        "--labels",
        "app=tcp-echo",
        "--service-account",
        "tcp-echo",
        "--inbound",
        &format!("9000={echo}"),
        "--inbound-bind",
        &net.host_ip,
    ]);
    mesh.wait_synced(3);
    let answer = net.app("exec 3<>/dev/tcp/10.96.0.20/9000 && echo hello >&3 && timeout 5 head -1 <&3");
    assert_eq!(answer.trim(), "one hello");
    let metrics = server.metrics.expect("metrics");
    let text = get(metrics, "metrics", "/stats/prometheus", false, &[]).1;
    assert!(
        text.lines().any(|l| l.starts_with("istio_tcp_connections_opened_total{")
            && l.contains("reporter=\"destination\"")
            && l.contains("source_principal=\"spiffe://cluster.local/ns/default/sa/default\"")
            && l.contains("connection_security_policy=\"mutual_tls\"")),
        "{text}"
    );
}

#[test]
fn proxy_init_captures_inbound_mesh_traffic_for_the_workload() {
    if !corpus("proxy_init_captures_inbound_mesh_traffic_for_the_workload") {
        return;
    }
    if !can_capture(true) {
        return;
    }
    let net = Netns::new(1);
    let mut mesh = Mesh::new();
    mesh.ok(&["install", "-y", "--set", &format!("meshd.listen={}:0", net.host_ip)]);
    mesh.ok(&["apply", "-f", &shared("bookinfo/platform/kube/bookinfo.yaml")]);
    // The app in the namespace listens on its port like any pod's app; nothing else is there.
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _app = Kill(
        Command::new("ip")
            .args(["netns", "exec", &net.name, "python3", "-m", "http.server", "9080", "--bind", "0.0.0.0"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the app"),
    );
    let server = mesh.proxy_in_netns(
        &net.name,
        &[
            "--workload",
            "reviews-v2",
            "--labels",
            "app=reviews,version=v2",
            "--inbound",
            "9080=127.0.0.1:9080",
            "--inbound-bind",
            &net.ns_ip,
            "--capture-inbound",
            "0.0.0.0:15006",
            "--no-outbound",
        ],
    );
    assert_eq!(
        server.inbound,
        [format!("{}:9080", net.ns_ip).parse().expect("addr")],
        "peers are told the pod's own port"
    );
    let client = mesh.proxy(&["--workload", "productpage-v1", "--labels", "app=productpage"]);
    mesh.wait_synced(2);
    run(&["ip", "netns", "exec", &net.name, MESH, "proxy", "init", "--proxy-uid", "0"]);
    // Through the mesh: the client proxy connects to the pod's 9080 over mTLS, the kernel in the
    // namespace redirects that to 15006, the proxy there terminates mTLS and hands it to the app.
    let out = client.outbound.expect("outbound");
    let (code, body) =
        eventually("the app answers through inbound capture", std::time::Duration::from_secs(10), || {
            let r = get(out, "reviews:9080", "/", false, &[]);
            (r.0 == 200).then_some(r)
        });
    assert_eq!(code, 200);
    assert!(body.contains("Directory listing"), "{body}");
}
