//! TLS at the edge: Gateway servers that terminate TLS with credentials from `mesh secret`,
//! checked with real TLS clients (curl, openssl s_client) and certificates made by openssl.

use crate::harness::{Mesh, Proxy, app, apply, corpus, have, prerequisite, shared};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

/// Certificates made with the openssl command line, as Istio's secure-ingress task makes them.
pub(crate) struct Pki {
    dir: PathBuf,
}

impl Pki {
    pub(crate) fn new(mesh: &Mesh) -> Pki {
        let dir = mesh.home.path().join("pki");
        std::fs::create_dir_all(&dir).expect("pki dir");
        Pki { dir }
    }

    pub(crate) fn path(&self, file: &str) -> String {
        self.dir.join(file).to_str().expect("utf-8 path").to_string()
    }

    pub(crate) fn openssl(&self, args: &[&str]) {
        let o = Command::new("openssl").args(args).current_dir(&self.dir).output().expect("openssl");
        assert!(o.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&o.stderr));
    }

    /// A root CA `NAME.crt`/`NAME.key`.
    pub(crate) fn ca(&self, name: &str) {
        self.openssl(&[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
            "-subj",
            &format!("/O={name} Inc./CN={name}"),
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.crt"),
        ]);
    }

    /// A leaf `NAME.crt`/`NAME.key` for DNS name `dns`, signed by CA `ca`, valid for `days`
    /// (-1: expired a day ago); made as Istio's task makes it (a request, then `x509 -req`).
    fn signed(&self, ca: &str, name: &str, dns: &str, days: &str) {
        self.openssl(&[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-subj",
            &format!("/O={name} organization/CN={dns}"),
            "-addext",
            &format!("subjectAltName=DNS:{dns}"),
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.csr"),
        ]);
        self.openssl(&[
            "x509",
            "-req",
            "-sha256",
            "-copy_extensions",
            "copy",
            "-in",
            &format!("{name}.csr"),
            "-CA",
            &format!("{ca}.crt"),
            "-CAkey",
            &format!("{ca}.key"),
            "-days",
            days,
            "-out",
            &format!("{name}.crt"),
        ]);
    }

    pub(crate) fn leaf(&self, ca: &str, name: &str, dns: &str) {
        self.signed(ca, name, dns, "2");
    }

    fn expired(&self, ca: &str, name: &str, dns: &str) {
        self.signed(ca, name, dns, "-1");
    }
}

/// `curl` to `https://HOST:PORT/PATH` at the gateway (`--resolve`, as Istio's task does), with
/// extra arguments. Ok(status, body) or Err(curl's error).
fn curl(gateway: SocketAddr, host: &str, path: &str, extra: &[&str]) -> Result<(u16, String), String> {
    let port = gateway.port();
    let o = Command::new("curl")
        .args(["-sS", "--max-time", "10", "-w", "\n%{http_code}", "--resolve"])
        .arg(format!("{host}:{port}:{}", gateway.ip()))
        .args(extra)
        .arg(format!("https://{host}:{port}{path}"))
        .stdin(Stdio::null())
        .output()
        .expect("curl");
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    if !o.status.success() {
        return Err(format!("curl exit {:?}: {}", o.status.code(), String::from_utf8_lossy(&o.stderr)));
    }
    let (body, code) = out.rsplit_once('\n').unwrap_or(("", &out));
    Ok((code.trim().parse().unwrap_or(0), body.to_string()))
}

/// `curl http://HOST:PORT/PATH` at the gateway: "STATUS REDIRECT_URL".
fn plain_curl(gateway: SocketAddr, host: &str, path: &str, host_header: Option<&str>) -> String {
    let port = gateway.port();
    let o = Command::new("curl")
        .args(["-sS", "--max-time", "10", "-o", "/dev/null", "-w", "%{http_code} %{redirect_url}", "--resolve"])
        .arg(format!("{host}:{port}:{}", gateway.ip()))
        .args(host_header.map(|h| format!("Host: {h}")).iter().flat_map(|h| ["-H", h.as_str()]))
        .arg(format!("http://{host}:{port}{path}"))
        .stdin(Stdio::null())
        .output()
        .expect("curl");
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

/// The subject of the certificate the gateway shows for SNI `sni` (`openssl s_client`), and
/// whether the handshake succeeded with these extra arguments.
fn s_client(gateway: SocketAddr, sni: &str, extra: &[&str]) -> (bool, String) {
    let o = Command::new("openssl")
        .args(["s_client", "-connect", &gateway.to_string(), "-servername", sni, "-brief"])
        .args(extra)
        .stdin(Stdio::null())
        .output()
        .expect("openssl s_client");
    let all = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    let ok = all.contains("CONNECTION ESTABLISHED");
    let subject =
        all.lines().find_map(|l| l.strip_prefix("Peer certificate: ")).map(str::to_string).unwrap_or(all.clone());
    (ok, subject)
}

fn secret(mesh: &Mesh, pki: &Pki, name: &str, files: &str, ca: Option<&str>, overwrite: bool) {
    let (cert, key) = (pki.path(&format!("{files}.crt")), pki.path(&format!("{files}.key")));
    let mut args = vec!["secret", "create", "tls", name, "-n", "istio-system", "--cert", &cert, "--key", &key];
    let ca = ca.map(|c| pki.path(&format!("{c}.crt")));
    if let Some(ca) = &ca {
        args.extend(["--ca", ca]);
    }
    if overwrite {
        args.push("--overwrite");
    }
    mesh.ok(&args);
}

/// httpbin from Istio's sample file, served by a tiny app, and an ingress gateway with an
/// HTTPS port 443 and an HTTP port 80.
fn httpbin_behind_a_gateway(mesh: &mut Mesh) -> Proxy {
    mesh.install();
    mesh.ok(&["apply", "-f", &shared("samples/httpbin/httpbin.yaml")]);
    mesh.proxy(&[
        "--workload",
        "httpbin",
        "--labels",
        "app=httpbin,version=v1",
        "--inbound",
        &format!("8080={}", app("httpbin")),
    ]);
    mesh.proxy(&[
        "--workload",
        "istio-ingressgateway",
        "-n",
        "istio-system",
        "--labels",
        "istio=ingressgateway,app=istio-ingressgateway",
        "--no-outbound",
        "--gateway-port",
        "443=127.0.0.1:0",
        "--gateway-port",
        "80=127.0.0.1:0",
    ])
}

const HTTPBIN_ROUTE: &str = r#"
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: httpbin
spec:
  hosts: ["httpbin.example.com"]
  gateways: ["mygateway"]
  http:
  - match:
    - uri: {prefix: /status}
    - uri: {prefix: /delay}
    route:
    - destination: {host: httpbin, port: {number: 8000}}
"#;

fn gateway(servers: &str) -> String {
    format!(
        "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata:\n  name: mygateway\nspec:\n  selector:\n    istio: ingressgateway\n  servers:\n{servers}"
    )
}

fn simple_server(host: &str, credential: &str, extra: &str) -> String {
    format!(
        "  - port: {{number: 443, name: https-{credential}, protocol: HTTPS}}\n    hosts: [\"{host}\"]\n    tls:\n      mode: SIMPLE\n      credentialName: {credential}\n{extra}"
    )
}

/// Poll `seen` until `holds` says yes; on timeout, say what was seen last.
fn wait_for<T: std::fmt::Debug>(what: &str, mut seen: impl FnMut() -> T, holds: impl Fn(&T) -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let v = seen();
        if holds(&v) {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "timed out waiting for {what}; last seen: {v:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Istio's secure-ingress task, step by step: a SIMPLE server from a credential, a second
/// host's certificate picked by SNI, rotation without a restart, MUTUAL, httpsRedirect and a
/// minimum TLS version.
#[test]
fn secure_ingress_serves_https_with_credentials_picked_by_sni() {
    if !corpus("secure_ingress_serves_https_with_credentials_picked_by_sni")
        || !prerequisite("curl and openssl (apt-get install -y curl openssl)", have("curl") && have("openssl"))
    {
        return;
    }
    let mut mesh = Mesh::new();
    let gw = httpbin_behind_a_gateway(&mut mesh);
    let (https, http) = (gw.gateway[0], gw.gateway[1]);
    let pki = Pki::new(&mesh);
    pki.ca("example.com");
    pki.leaf("example.com", "httpbin", "httpbin.example.com");
    pki.leaf("example.com", "helloworld", "helloworld.example.com");

    // A server naming a credential that does not exist yet serves nothing, and says why.
    apply(&mesh, "gw.yaml", &gateway(&simple_server("httpbin.example.com", "httpbin-credential", "")));
    apply(&mesh, "vs.yaml", HTTPBIN_ROUTE);
    let cacert = pki.path("example.com.crt");
    let ca = ["--cacert", cacert.as_str()];
    wait_for(
        "the handshake refused while the credential is missing",
        || curl(https, "httpbin.example.com", "/status/200", &ca),
        Result::is_err,
    );

    // `mesh analyze` names the missing credential (Istio's gateway.SecretAnalyzer).
    let found = mesh.run(&["analyze", "-A"]);
    let said = format!("{}{}", found.stdout, found.stderr);
    assert!(said.contains("IST0101") && said.contains("httpbin-credential"), "{said}");

    // Step 1: the credential, then HTTPS works, verified against the example.com root.
    secret(&mesh, &pki, "httpbin-credential", "httpbin", None, false);
    let found = mesh.run(&["analyze", "-A"]);
    let said = format!("{}{}", found.stdout, found.stderr);
    assert!(!said.contains("httpbin-credential"), "the credential is there now: {said}");
    let listed = mesh.ok(&["secret", "list", "-n", "istio-system"]).stdout;
    assert!(listed.contains("httpbin-credential") && listed.contains("httpbin.example.com"), "{listed}");
    assert!(!listed.contains("PRIVATE KEY"), "keys never shown: {listed}");
    wait_for(
        "HTTPS through the gateway",
        || curl(https, "httpbin.example.com", "/status/418", &ca),
        |r| r.as_ref().is_ok_and(|(c, b)| *c == 200 && b == "httpbin\n"),
    );
    // Routes still apply: a path the VirtualService does not list is a 404.
    assert_eq!(curl(https, "httpbin.example.com", "/headers", &ca).map(|r| r.0), Ok(404));
    // Plain HTTP on the TLS port is refused, not served.
    let plain = crate::harness::raw(https, b"GET /status/200 HTTP/1.1\r\nHost: httpbin.example.com\r\n\r\n");
    assert_ne!(plain.0, 200, "plain HTTP on an HTTPS port: {plain:?}");

    // Step 2: a second host with its own certificate on the same port; SNI picks.
    let two = format!(
        "{}{}",
        simple_server("httpbin.example.com", "httpbin-credential", ""),
        simple_server("helloworld.example.com", "helloworld-credential", "")
    );
    secret(&mesh, &pki, "helloworld-credential", "helloworld", None, false);
    apply(&mesh, "gw.yaml", &gateway(&two));
    wait_for(
        "the helloworld certificate for its SNI",
        || s_client(https, "helloworld.example.com", &["-CAfile", &cacert]),
        |r| r.1.contains("CN = helloworld.example.com"),
    );
    let (ok, subject) = s_client(https, "httpbin.example.com", &["-CAfile", &cacert]);
    assert!(ok && subject.contains("CN = httpbin.example.com"), "{subject}");

    // Step 3: rotate httpbin's credential to a certificate from another root, no restart.
    pki.ca("rotated.example.com");
    pki.leaf("rotated.example.com", "httpbin2", "httpbin.example.com");
    let refused = mesh.run(&[
        "secret",
        "create",
        "tls",
        "httpbin-credential",
        "-n",
        "istio-system",
        "--cert",
        &pki.path("httpbin2.crt"),
        "--key",
        &pki.path("httpbin2.key"),
    ]);
    assert_ne!(refused.code, 0, "replacing needs --overwrite");
    assert!(refused.stderr.contains("--overwrite"), "{}", refused.stderr);
    secret(&mesh, &pki, "httpbin-credential", "httpbin2", None, true);
    let rotated_ca = pki.path("rotated.example.com.crt");
    wait_for(
        "the rotated certificate served",
        || curl(https, "httpbin.example.com", "/status/200", &["--cacert", &rotated_ca]),
        |r| r.as_ref().is_ok_and(|r| r.0 == 200),
    );
    assert!(curl(https, "httpbin.example.com", "/status/200", &ca).is_err(), "the old root no longer verifies");

    // Step 4: MUTUAL: the client must show a certificate from the credential's CA.
    pki.leaf("example.com", "client", "client.example.com");
    secret(&mesh, &pki, "httpbin-credential", "httpbin", Some("example.com"), true);
    let mutual = simple_server("httpbin.example.com", "httpbin-credential", "").replace("SIMPLE", "MUTUAL");
    apply(&mesh, "gw.yaml", &gateway(&mutual));
    let (cert, key) = (pki.path("client.crt"), pki.path("client.key"));
    let with_cert = ["--cacert", cacert.as_str(), "--cert", cert.as_str(), "--key", key.as_str()];
    // Until MUTUAL is in force, SIMPLE with this certificate lets both in.
    wait_for(
        "MUTUAL: a client certificate let in, a client without one refused",
        || {
            (
                curl(https, "httpbin.example.com", "/status/200", &with_cert),
                curl(https, "httpbin.example.com", "/status/200", &ca),
            )
        },
        |(with, without)| with.as_ref().is_ok_and(|r| r.0 == 200) && without.is_err(),
    );
    // A client certificate from another root is refused too.
    pki.leaf("rotated.example.com", "stranger", "client.example.com");
    let (scert, skey) = (pki.path("stranger.crt"), pki.path("stranger.key"));
    let stranger = ["--cacert", cacert.as_str(), "--cert", scert.as_str(), "--key", skey.as_str()];
    assert!(curl(https, "httpbin.example.com", "/status/200", &stranger).is_err());

    // OPTIONAL_MUTUAL: both are let in.
    apply(&mesh, "gw.yaml", &gateway(&mutual.replace("MUTUAL", "OPTIONAL_MUTUAL")));
    wait_for(
        "OPTIONAL_MUTUAL lets a client without a certificate in",
        || curl(https, "httpbin.example.com", "/status/200", &ca),
        |r| r.as_ref().is_ok_and(|r| r.0 == 200),
    );
    assert_eq!(curl(https, "httpbin.example.com", "/status/200", &with_cert).map(|r| r.0), Ok(200));

    // Step 5: minProtocolVersion TLSV1_3 refuses TLS 1.2; and httpsRedirect on port 80.
    let servers = format!(
        "{}  - port: {{number: 80, name: http, protocol: HTTP}}\n    hosts: [\"httpbin.example.com\"]\n    tls: {{httpsRedirect: true}}\n",
        simple_server("httpbin.example.com", "httpbin-credential", "      minProtocolVersion: TLSV1_3\n")
    );
    apply(&mesh, "gw.yaml", &gateway(&servers));
    wait_for("TLS 1.2 refused", || s_client(https, "httpbin.example.com", &["-tls1_2"]), |r| !r.0);
    let (ok, _) = s_client(https, "httpbin.example.com", &["-tls1_3", "-CAfile", &cacert]);
    assert!(ok, "TLS 1.3 accepted");
    assert!(curl(https, "httpbin.example.com", "/status/200", &["--cacert", &cacert, "--tls-max", "1.2"]).is_err());
    // As Envoy: path and query kept; the port too, unless it is http's own 80.
    let redirect = plain_curl(http, "httpbin.example.com", "/status/200?x=1", None);
    assert_eq!(redirect, format!("301 https://httpbin.example.com:{}/status/200?x=1", http.port()));
    let redirect = plain_curl(http, "httpbin.example.com", "/a", Some("httpbin.example.com:80"));
    assert_eq!(redirect, "301 https://httpbin.example.com/a");

    // Deleting the credential stops the server; the gateway itself keeps running.
    mesh.ok(&["secret", "delete", "httpbin-credential", "-n", "istio-system"]);
    wait_for(
        "the server gone with its credential",
        || curl(https, "httpbin.example.com", "/status/200", &ca),
        Result::is_err,
    );
    assert!(plain_curl(http, "httpbin.example.com", "/", None).starts_with("301 "));
}

/// Credentials are checked before they are kept: a key that is not the certificate's, a file
/// that is not PEM, and an expired certificate are refused, naming the problem; nothing stored.
#[test]
fn bad_credentials_are_refused_and_change_nothing() {
    if !prerequisite("openssl (apt-get install -y openssl)", have("openssl")) {
        return;
    }
    let mesh = Mesh::new();
    mesh.install();
    let pki = Pki::new(&mesh);
    pki.ca("example.com");
    pki.leaf("example.com", "one", "one.example.com");
    pki.leaf("example.com", "two", "two.example.com");
    let garbage = pki.path("garbage.pem");
    std::fs::write(&garbage, "not a certificate\n").expect("write");
    let create = |cert: &str, key: &str| {
        mesh.run(&["secret", "create", "tls", "cred", "--cert", &pki.path(cert), "--key", &pki.path(key)])
    };
    let r = create("one.crt", "two.key");
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("key") && r.stderr.contains("certificate"), "{}", r.stderr);
    let r = create("garbage.pem", "one.key");
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("PEM") || r.stderr.contains("certificate"), "{}", r.stderr);
    pki.expired("example.com", "old", "old.example.com");
    let r = create("old.crt", "old.key");
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("expired"), "{}", r.stderr);
    let missing =
        mesh.run(&["secret", "create", "tls", "cred", "--cert", "/nonexistent.crt", "--key", &pki.path("one.key")]);
    assert_ne!(missing.code, 0);
    assert!(missing.stderr.contains("/nonexistent.crt"), "{}", missing.stderr);
    let list = mesh.ok(&["secret", "list"]).stdout;
    assert!(!list.contains("cred"), "nothing stored: {list}");
    // Deleting what is not there names it.
    let r = mesh.run(&["secret", "delete", "cred"]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("cred"), "{}", r.stderr);
    // The file in MESH_HOME is private, like the CA key.
    create("one.crt", "one.key");
    let meta = std::fs::metadata(mesh.home.path().join("credentials.json")).expect("credentials.json");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
}

/// A real HTTPS server (Python's `ssl` over OpenSSL) with certificate `name`, answering
/// "NAME over TLS, client CN" (the client certificate's CN, or "-"); when `client_ca` is given it
/// requires a client certificate from that CA. Killed with the mesh.
pub(crate) fn tls_server(mesh: &mut Mesh, pki: &Pki, name: &str, client_ca: Option<&str>) -> SocketAddr {
    const SERVER: &str = r#"
import http.server, ssl, sys
cert, key, name, ca, log = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        self.rfile.read(int(self.headers.get("content-length") or 0))
        self.do_GET()
    def do_GET(self):
        with open(log, "a") as f:
            f.write(f"{self.command} {self.path} {self.headers.get('host')}\n")
        peer = self.connection.getpeercert()
        cn = "-"
        if peer:
            cn = [v for f in peer["subject"] for (k, v) in f if k == "commonName"][0]
        body = f"{name} over TLS, client {cn}, sni {getattr(self.connection, 'sni', None)}\n".encode()
        self.send_response(200)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
def remember(sock, sni, c):
    sock.sni = sni
ctx.sni_callback = remember
if ca != "-":
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_verify_locations(ca)
srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
print(srv.server_address[1], flush=True)
srv.serve_forever()
"#;
    let ca = client_ca.map(|c| pki.path(&format!("{c}.crt"))).unwrap_or("-".into());
    let mut child = Command::new("python3")
        .args(["-c", SERVER, &pki.path(&format!("{name}.crt")), &pki.path(&format!("{name}.key")), name, &ca])
        .arg(pki.path(&format!("{name}.requests.log")))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 TLS server");
    let mut line = String::new();
    let stdout = child.stdout.take().expect("stdout");
    mesh.keep(child);
    std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line).expect("port");
    let port: u16 = line.trim().parse().unwrap_or_else(|_| panic!("TLS server said {line:?}"));
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// Istio's ingress SNI passthrough task: the gateway routes a TLS connection by SNI to a
/// workload whose own server terminates it; the client sees that server's certificate.
#[test]
fn passthrough_gateway_routes_tls_by_sni_to_the_workloads_own_server() {
    if !prerequisite("curl, openssl and python3", have("curl") && have("openssl") && have("python3")) {
        return;
    }
    let mut mesh = Mesh::new();
    mesh.install();
    let pki = Pki::new(&mesh);
    pki.ca("example.com");
    pki.leaf("example.com", "nginx", "nginx.example.com");
    let server = tls_server(&mut mesh, &pki, "nginx", None);
    let yaml = r#"
apiVersion: v1
kind: Service
metadata: {name: my-nginx, labels: {run: my-nginx}}
spec:
  ports: [{port: 443, protocol: TCP, name: https}]
  selector: {run: my-nginx}
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: mygateway}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 443, name: https, protocol: HTTPS}
    tls: {mode: PASSTHROUGH}
    hosts: [nginx.example.com]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: nginx}
spec:
  hosts: [nginx.example.com]
  gateways: [mygateway]
  tls:
  - match:
    - port: 443
      sniHosts: [nginx.example.com]
    route:
    - destination: {host: my-nginx, port: {number: 443}}
"#;
    apply(&mesh, "nginx.yaml", yaml);
    mesh.proxy(&["--workload", "my-nginx", "--labels", "run=my-nginx", "--inbound", &format!("443={server}")]);
    let gw = mesh.ingress_gateway_proxy(443);
    let https = gw.gateway[0];
    mesh.wait_synced(2);
    let ca = pki.path("example.com.crt");
    wait_for(
        "the workload's own server reached through the gateway",
        || curl(https, "nginx.example.com", "/", &["--cacert", &ca]),
        |r| {
            r.as_ref().is_ok_and(|(c, b)| *c == 200 && b.starts_with("nginx over TLS, client -, sni nginx.example.com"))
        },
    );
    let (ok, subject) = s_client(https, "nginx.example.com", &["-CAfile", &ca]);
    assert!(ok && subject.contains("CN = nginx.example.com"), "the workload's certificate, end to end: {subject}");
    // Another SNI has no route: the connection is closed, nothing is served.
    let other = curl(https, "other.example.com", "/", &["-k"]);
    assert!(other.is_err(), "{other:?}");
    // Garbage and a ClientHello that never finishes are dropped without harm.
    let junk = crate::harness::raw(https, b"\x16\x03\x01\x00\x05hello GET / HTTP/1.1\r\n\r\n");
    assert_eq!(junk.0, 0);
    let slow = std::net::TcpStream::connect(https).expect("connect");
    std::io::Write::write_all(&mut &slow, b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03").expect("partial hello");
    assert_eq!(
        curl(https, "nginx.example.com", "/", &["--cacert", &ca]).map(|r| r.0),
        Ok(200),
        "others served meanwhile"
    );
    drop(slow);
}

/// DestinationRule TLS origination, as Istio's egress TLS origination task: the app speaks
/// plain HTTP, its proxy speaks TLS to the external host (a real Python/OpenSSL server),
/// verifying the certificate against `caCertificates`; a wrong `subjectAltNames` is refused;
/// MUTUAL presents a client certificate from a `mesh secret` credential.
#[test]
fn destination_rules_originate_tls_and_verify_the_external_host() {
    if !prerequisite("openssl and python3", have("openssl") && have("python3")) {
        return;
    }
    let mut mesh = Mesh::new();
    mesh.install();
    let pki = Pki::new(&mesh);
    pki.ca("example.com");
    pki.leaf("example.com", "external", "external.example.com");
    pki.leaf("example.com", "mutual", "mutual.example.com");
    pki.leaf("example.com", "sleep", "sleep.default");
    let simple = tls_server(&mut mesh, &pki, "external", None);
    let mutual = tls_server(&mut mesh, &pki, "mutual", Some("example.com"));
    let entries = format!(
        r#"
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: external}}
spec:
  hosts: [external.example.com]
  location: MESH_EXTERNAL
  resolution: STATIC
  ports: [{{number: 80, name: http-port, protocol: HTTP, targetPort: 443}}]
  endpoints: [{{address: 127.0.0.1, ports: {{http-port: {}}}}}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: mutual}}
spec:
  hosts: [mutual.example.com]
  location: MESH_EXTERNAL
  resolution: STATIC
  ports: [{{number: 80, name: http-port, protocol: HTTP}}]
  endpoints: [{{address: 127.0.0.1, ports: {{http-port: {}}}}}]
"#,
        simple.port(),
        mutual.port()
    );
    apply(&mesh, "entries.yaml", &entries);
    let sleep = mesh.proxy(&["--workload", "sleep", "--labels", "app=sleep"]);
    let out = sleep.outbound.expect("outbound");
    let ca = pki.path("example.com.crt");
    // Without a DestinationRule the proxy speaks plain HTTP, which the TLS server cannot read.
    let plain = crate::harness::get(out, "external.example.com", "/", false, &[]);
    assert_ne!(plain.0, 200, "{plain:?}");

    let rule = |name: &str, host: &str, tls: &str| {
        format!(
            "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {{name: {name}}}\nspec:\n  host: {host}\n  trafficPolicy:\n    portLevelSettings:\n    - port: {{number: 80}}\n      tls: {tls}\n"
        )
    };
    apply(
        &mesh,
        "dr.yaml",
        &rule("external", "external.example.com", &format!("{{mode: SIMPLE, caCertificates: {ca}}}")),
    );
    wait_for(
        "TLS originated and verified",
        || crate::harness::get(out, "external.example.com", "/", false, &[]),
        |r| r.0 == 200 && r.1.starts_with("external over TLS, client -, sni external.example.com"),
    );
    // A subjectAltNames the host's certificate lacks: the handshake is refused, a 503.
    let wrong = format!("{{mode: SIMPLE, caCertificates: {ca}, subjectAltNames: [other.example.com]}}");
    apply(&mesh, "dr.yaml", &rule("external", "external.example.com", &wrong));
    wait_for(
        "a wrong SAN refused",
        || crate::harness::get(out, "external.example.com", "/", false, &[]),
        |r| r.0 == 503,
    );
    // A CA that did not sign the host's certificate: refused too.
    // Back to the right CA first, so the refusal below is the CA's doing.
    apply(
        &mesh,
        "dr.yaml",
        &rule("external", "external.example.com", &format!("{{mode: SIMPLE, caCertificates: {ca}}}")),
    );
    wait_for("verified again", || crate::harness::get(out, "external.example.com", "/", false, &[]), |r| r.0 == 200);
    pki.ca("stranger");
    let stranger = format!("{{mode: SIMPLE, caCertificates: {}}}", pki.path("stranger.crt"));
    apply(&mesh, "dr.yaml", &rule("external", "external.example.com", &stranger));
    wait_for(
        "an unknown CA refused",
        || crate::harness::get(out, "external.example.com", "/", false, &[]),
        |r| r.0 == 503,
    );
    // insecureSkipVerify takes any certificate; sni is what the server is told.
    let skip = "{mode: SIMPLE, insecureSkipVerify: true, sni: named.example.com}";
    apply(&mesh, "dr.yaml", &rule("external", "external.example.com", skip));
    wait_for(
        "insecureSkipVerify with an explicit SNI",
        || crate::harness::get(out, "external.example.com", "/", false, &[]),
        |r| r.0 == 200 && r.1.contains("sni named.example.com"),
    );

    // A mirror to the originated host gets its copy over TLS too (the `-shadow` Host, as Envoy).
    apply(
        &mesh,
        "dr.yaml",
        &rule("external", "external.example.com", &format!("{{mode: SIMPLE, caCertificates: {ca}}}")),
    );
    let plain_app = crate::harness::app("plain");
    let mirror = format!(
        "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {{name: plain}}\nspec:\n  hosts: [plain.example.com]\n  resolution: STATIC\n  ports: [{{number: 80, name: http, protocol: HTTP}}]\n  endpoints: [{{address: 127.0.0.1, ports: {{http: {}}}}}]\n---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: plain}}\nspec:\n  hosts: [plain.example.com]\n  http:\n  - route: [{{destination: {{host: plain.example.com}}}}]\n    mirror: {{host: external.example.com, port: {{number: 80}}}}\n",
        plain_app.port()
    );
    apply(&mesh, "mirror.yaml", &mirror);
    let log = pki.path("external.requests.log");
    wait_for(
        "the mirrored copy at the TLS host",
        || {
            let r = crate::harness::get(out, "plain.example.com", "/copied", false, &[]);
            (r, std::fs::read_to_string(&log).unwrap_or_default())
        },
        |(r, log)| r.0 == 200 && log.contains("GET /copied plain.example.com-shadow"),
    );

    // MUTUAL with a credential in the client's namespace: the server sees the client's CN.
    mesh.ok(&[
        "secret",
        "create",
        "tls",
        "client-credential",
        "--cert",
        &pki.path("sleep.crt"),
        "--key",
        &pki.path("sleep.key"),
        "--ca",
        &ca,
    ]);
    apply(
        &mesh,
        "mutual.yaml",
        &rule("mutual", "mutual.example.com", "{mode: MUTUAL, credentialName: client-credential}"),
    );
    wait_for(
        "MUTUAL origination with the credential",
        || crate::harness::get(out, "mutual.example.com", "/", false, &[]),
        |r| r.0 == 200 && r.1.starts_with("mutual over TLS, client sleep.default"),
    );
}

/// An egress gateway proxy (`istio: egressgateway` in istio-system, with its Service) serving
/// Gateway server ports 80 and 443.
fn egress_gateway(mesh: &mut Mesh) -> Proxy {
    let service = r#"
apiVersion: v1
kind: Service
metadata: {name: istio-egressgateway, namespace: istio-system}
spec:
  selector: {istio: egressgateway}
  ports:
  - {name: http2, port: 80}
  - {name: https, port: 443}
"#;
    apply(mesh, "egress-service.yaml", service);
    mesh.proxy(&[
        "--workload",
        "istio-egressgateway",
        "-n",
        "istio-system",
        "--labels",
        "istio=egressgateway,app=istio-egressgateway",
        "--service-account",
        "istio-egressgateway-service-account",
        "--no-outbound",
        "--gateway-port",
        "80=127.0.0.1:0",
        "--gateway-port",
        "443=127.0.0.1:0",
    ])
}

/// `curl` from an app through its sidecar: `--proxy` makes an HTTPS request a CONNECT tunnel
/// whose ClientHello the sidecar routes by SNI (the app's own TLS, end to end).
fn curl_via(sidecar: SocketAddr, url: &str, extra: &[&str]) -> Result<(u16, String), String> {
    let o = Command::new("curl")
        .args(["-sS", "--max-time", "10", "-w", "\n%{http_code}", "--proxy"])
        .arg(format!("http://{sidecar}"))
        .args(extra)
        .arg(url)
        .stdin(Stdio::null())
        .output()
        .expect("curl");
    if !o.status.success() {
        return Err(format!("curl exit {:?}: {}", o.status.code(), String::from_utf8_lossy(&o.stderr)));
    }
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    let (body, code) = out.rsplit_once('\n').unwrap_or(("", &out));
    Ok((code.trim().parse().unwrap_or(0), body.to_string()))
}

/// The gateway's count of requests it sent to `host` (reporter=source at the gateway).
fn gateway_sent(gw: &Proxy, host: &str) -> u64 {
    crate::harness::requests_counted(
        gw.metrics.expect("metrics"),
        &["source_workload=\"istio-egressgateway\"", &format!("destination_service_name=\"{host}\"")],
    )
}

/// Istio's egress-gateway tasks: HTTP to an external host leaves through the egress gateway
/// (the sidecar routes to the gateway, the gateway to the ServiceEntry host), then HTTPS
/// passed through by SNI, then TLS originated at the gateway with ISTIO_MUTUAL between
/// sidecar and gateway. The "external" hosts are a plain app and a real Python/OpenSSL server.
#[test]
fn egress_gateway_carries_http_passthrough_tls_and_originates_tls() {
    if !prerequisite("curl, openssl and python3", have("curl") && have("openssl") && have("python3")) {
        return;
    }
    let mut mesh = Mesh::new();
    mesh.install();
    let pki = Pki::new(&mesh);
    pki.ca("example.com");
    pki.leaf("example.com", "edition", "edition.example.com");
    let plain = app("edition-plain");
    let tls = tls_server(&mut mesh, &pki, "edition", None);
    let entry = format!(
        r#"
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: edition}}
spec:
  hosts: [edition.example.com]
  location: MESH_EXTERNAL
  resolution: STATIC
  ports:
  - {{number: 80, name: http-port, protocol: HTTP}}
  - {{number: 443, name: tls, protocol: TLS}}
  endpoints: [{{address: 127.0.0.1, ports: {{http-port: {}, tls: {}}}}}]
"#,
        plain.port(),
        tls.port()
    );
    apply(&mesh, "entry.yaml", &entry);
    let gw = egress_gateway(&mut mesh);
    let sleep = mesh.proxy(&["--workload", "sleep", "--labels", "app=sleep"]);
    let out = sleep.outbound.expect("outbound");
    mesh.wait_synced(2);

    // Before the rules: the sidecar goes to the host directly, the gateway sends nothing.
    let direct = crate::harness::get(out, "edition.example.com", "/politics", false, &[]);
    assert_eq!(direct, (200, "edition-plain\n".into()));
    assert_eq!(gateway_sent(&gw, "edition.example.com"), 0);

    // HTTP through the egress gateway (Istio's task, step by step).
    let http = r#"
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: istio-egressgateway}
spec:
  selector: {istio: egressgateway}
  servers:
  - port: {number: 80, name: http, protocol: HTTP}
    hosts: [edition.example.com]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: egressgateway-for-edition}
spec:
  host: istio-egressgateway.istio-system.svc.cluster.local
  subsets:
  - name: edition
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: direct-edition-through-egress-gateway}
spec:
  hosts: [edition.example.com]
  gateways: [istio-egressgateway, mesh]
  http:
  - match:
    - gateways: [mesh]
      port: 80
    route:
    - destination:
        host: istio-egressgateway.istio-system.svc.cluster.local
        subset: edition
        port: {number: 80}
      weight: 100
  - match:
    - gateways: [istio-egressgateway]
      port: 80
    route:
    - destination:
        host: edition.example.com
        port: {number: 80}
      weight: 100
"#;
    apply(&mesh, "egress-http.yaml", http);
    wait_for(
        "HTTP to the external host counted at the egress gateway",
        || {
            (
                crate::harness::get(out, "edition.example.com", "/politics", false, &[]),
                gateway_sent(&gw, "edition.example.com"),
            )
        },
        |(r, sent)| r.0 == 200 && r.1 == "edition-plain\n" && *sent > 0,
    );

    // HTTPS passthrough: the app's own TLS, through a CONNECT tunnel at its sidecar, routed by
    // SNI to the gateway and by SNI again to the host; curl verifies the host's certificate.
    let passthrough = r#"
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: istio-egressgateway}
spec:
  selector: {istio: egressgateway}
  servers:
  - port: {number: 443, name: tls, protocol: TLS}
    hosts: [edition.example.com]
    tls: {mode: PASSTHROUGH}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: direct-edition-through-egress-gateway}
spec:
  hosts: [edition.example.com]
  gateways: [mesh, istio-egressgateway]
  tls:
  - match:
    - gateways: [mesh]
      port: 443
      sniHosts: [edition.example.com]
    route:
    - destination:
        host: istio-egressgateway.istio-system.svc.cluster.local
        subset: edition
        port: {number: 443}
  - match:
    - gateways: [istio-egressgateway]
      port: 443
      sniHosts: [edition.example.com]
    route:
    - destination:
        host: edition.example.com
        port: {number: 443}
      weight: 100
"#;
    apply(&mesh, "egress-tls.yaml", passthrough);
    let ca = pki.path("example.com.crt");
    let tcp_at_gateway = || {
        let text = crate::harness::get(gw.metrics.expect("metrics"), "m", "/stats/prometheus", false, &[]).1;
        text.lines()
            .filter(|l| {
                l.starts_with("istio_tcp_connections_opened_total{")
                    && l.contains("destination_service_name=\"edition.example.com\"")
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>()
    };
    wait_for(
        "HTTPS passed through the egress gateway, the host's certificate verified by the app",
        || (curl_via(out, "https://edition.example.com/politics", &["--cacert", &ca]), tcp_at_gateway()),
        |(r, n)| {
            r.as_ref()
                .is_ok_and(|(c, b)| *c == 200 && b.starts_with("edition over TLS, client -, sni edition.example.com"))
                && *n > 0.0
        },
    );

    // TLS origination at the gateway, ISTIO_MUTUAL from the sidecar: the app speaks plain
    // HTTP to port 80, the gateway speaks TLS to the host's 443.
    let originate = format!(
        r#"
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {{name: istio-egressgateway}}
spec:
  selector: {{istio: egressgateway}}
  servers:
  - port: {{number: 80, name: https-port-for-tls-origination, protocol: HTTPS}}
    hosts: [edition.example.com]
    tls: {{mode: ISTIO_MUTUAL}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: egressgateway-for-edition}}
spec:
  host: istio-egressgateway.istio-system.svc.cluster.local
  subsets:
  - name: edition
    trafficPolicy:
      loadBalancer: {{simple: ROUND_ROBIN}}
      portLevelSettings:
      - port: {{number: 80}}
        tls: {{mode: ISTIO_MUTUAL, sni: edition.example.com}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: direct-edition-through-egress-gateway}}
spec:
  hosts: [edition.example.com]
  gateways: [istio-egressgateway, mesh]
  http:
  - match:
    - gateways: [mesh]
      port: 80
    route:
    - destination:
        host: istio-egressgateway.istio-system.svc.cluster.local
        subset: edition
        port: {{number: 80}}
      weight: 100
  - match:
    - gateways: [istio-egressgateway]
      port: 80
    route:
    - destination:
        host: edition.example.com
        port: {{number: 443}}
      weight: 100
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: originate-tls-for-edition}}
spec:
  host: edition.example.com
  trafficPolicy:
    loadBalancer: {{simple: ROUND_ROBIN}}
    portLevelSettings:
    - port: {{number: 443}}
      tls: {{mode: SIMPLE, caCertificates: {ca}}}
"#
    );
    apply(&mesh, "egress-originate.yaml", &originate);
    wait_for(
        "plain HTTP from the app, TLS from the gateway",
        || crate::harness::get(out, "edition.example.com", "/politics", false, &[]),
        |r| r.0 == 200 && r.1.starts_with("edition over TLS, client -, sni edition.example.com"),
    );
    // The hop from the sidecar to the gateway was mesh mTLS: the port takes nothing else,
    // neither plain HTTP nor TLS from a client without a mesh certificate.
    let plain = crate::harness::raw(gw.gateway[0], b"GET /politics HTTP/1.1\r\nHost: edition.example.com\r\n\r\n");
    assert_eq!(plain.0, 0, "plain HTTP on the ISTIO_MUTUAL port: {plain:?}");
    let stranger = curl(gw.gateway[0], "edition.example.com", "/politics", &["-k"]);
    assert!(stranger.is_err(), "TLS without a mesh client certificate: {stranger:?}");
}

/// AUTO_PASSTHROUGH, Istio's east-west gateway: the SNI `outbound_.PORT_.SUBSET_.HOST` names the
/// destination, no VirtualService needed, and the TLS stream reaches the endpoint untouched
/// (not wrapped in the gateway's mTLS, though the endpoint is labelled as a mesh proxy).
#[test]
fn auto_passthrough_routes_by_the_sni_istio_sidecars_send() {
    if !prerequisite("curl, openssl and python3", have("curl") && have("openssl") && have("python3")) {
        return;
    }
    let mut mesh = Mesh::new();
    mesh.install();
    let pki = Pki::new(&mesh);
    pki.ca("example.com");
    pki.leaf("example.com", "backend", "backend.default.svc.cluster.local");
    let server = tls_server(&mut mesh, &pki, "backend", None);
    let yaml = format!(
        r#"
apiVersion: v1
kind: Service
metadata: {{name: backend}}
spec:
  selector: {{app: backend}}
  ports: [{{name: tls, port: 443}}]
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {{name: backend-1}}
spec:
  address: 127.0.0.1
  ports: {{tls: {}}}
  labels: {{app: backend, version: v1, security.istio.io/tlsMode: istio}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: backend}}
spec:
  host: backend
  subsets: [{{name: v1, labels: {{version: v1}}}}, {{name: v2, labels: {{version: v2}}}}]
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {{name: cross-network-gateway, namespace: istio-system}}
spec:
  selector: {{istio: eastwestgateway}}
  servers:
  - port: {{number: 15443, name: tls, protocol: TLS}}
    tls: {{mode: AUTO_PASSTHROUGH}}
    hosts: ["*.local"]
"#,
        server.port()
    );
    let file = mesh.home.path().join("eastwest.yaml");
    std::fs::write(&file, &yaml).expect("write");
    let applied = mesh.ok(&["apply", "-f", file.to_str().expect("path")]);
    assert!(!applied.stderr.contains("not enforced"), "AUTO_PASSTHROUGH is served: {}", applied.stderr);
    let gw = mesh.proxy(&[
        "--workload",
        "istio-eastwestgateway",
        "-n",
        "istio-system",
        "--labels",
        "istio=eastwestgateway",
        "--no-outbound",
        "--gateway-port",
        "15443=127.0.0.1:0",
    ]);
    let gateway = gw.gateway[0];
    mesh.wait_synced(1);
    let ca = pki.path("example.com.crt");
    let _ = &ca;
    let sni = |name: &str| {
        let o = Command::new("openssl")
            .args(["s_client", "-connect", &gateway.to_string(), "-servername", name, "-quiet", "-verify_quiet"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .and_then(|mut c| {
                use std::io::Write;
                if let Some(mut i) = c.stdin.take() {
                    let _ = i.write_all(b"GET / HTTP/1.1\r\nHost: backend\r\nConnection: close\r\n\r\n");
                }
                c.wait_with_output()
            })
            .expect("openssl s_client");
        String::from_utf8_lossy(&o.stdout).to_string()
    };
    wait_for(
        "the service named by the SNI",
        || sni("outbound_.443_._.backend.default.svc.cluster.local"),
        |body| body.contains("backend over TLS, client -, sni outbound_.443_._.backend.default.svc.cluster.local"),
    );
    // A subset in the name picks its endpoints: v1 has this one, v2 none.
    assert!(sni("outbound_.443_.v1_.backend.default.svc.cluster.local").contains("backend over TLS"));
    assert!(!sni("outbound_.443_.v2_.backend.default.svc.cluster.local").contains("backend over TLS"));
    // A name that is no service, or a port the service lacks: closed.
    assert!(!sni("outbound_.443_._.nothing.default.svc.cluster.local").contains("backend over TLS"));
    assert!(!sni("outbound_.80_._.backend.default.svc.cluster.local").contains("backend over TLS"));
}

/// MUTUAL with pinned client certificates (`verifyCertificateHash`, `verifyCertificateSpki`,
/// the fingerprints computed by openssl) and a revocation list (`caCrl`, made with `openssl
/// ca`), and `ecdhCurves`, checked with curl and s_client.
#[test]
fn gateway_pins_client_certificates_and_limits_curves() {
    if !corpus("gateway_pins_client_certificates_and_limits_curves")
        || !prerequisite("curl and openssl", have("curl") && have("openssl"))
    {
        return;
    }
    let mut mesh = Mesh::new();
    let gw = httpbin_behind_a_gateway(&mut mesh);
    let https = gw.gateway[0];
    let pki = Pki::new(&mesh);
    pki.ca("example.com");
    pki.leaf("example.com", "httpbin", "httpbin.example.com");
    pki.leaf("example.com", "pinned", "pinned.example.com");
    pki.leaf("example.com", "other", "other.example.com");
    secret(&mesh, &pki, "httpbin-credential", "httpbin", Some("example.com"), false);
    apply(&mesh, "gw.yaml", &gateway(&simple_server("httpbin.example.com", "httpbin-credential", "")));
    apply(&mesh, "vs.yaml", HTTPBIN_ROUTE);
    let shell = |script: &str| -> String {
        let o = Command::new("sh").args(["-c", script]).current_dir(&pki.dir).output().expect("sh");
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    };
    // As Istio's docs compute them.
    let hash = shell("openssl x509 -in pinned.crt -noout -fingerprint -sha256 | cut -d= -f2");
    let spki = shell(
        "openssl x509 -in pinned.crt -noout -pubkey | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64",
    );
    assert!(hash.contains(':') && !spki.is_empty(), "{hash} {spki}");
    let cacert = pki.path("example.com.crt");
    let with = |name: &str| {
        let (c, k) = (pki.path(&format!("{name}.crt")), pki.path(&format!("{name}.key")));
        curl(https, "httpbin.example.com", "/status/200", &["--cacert", &cacert, "--cert", &c, "--key", &k])
    };
    for pin in [format!("verifyCertificateHash: [\"{hash}\"]"), format!("verifyCertificateSpki: [\"{spki}\"]")] {
        let server = simple_server("httpbin.example.com", "httpbin-credential", &format!("      {pin}\n"))
            .replace("SIMPLE", "MUTUAL");
        apply(&mesh, "gw.yaml", &gateway(&server));
        // Until the pinned server is in force the other client is let in (SIMPLE before).
        wait_for(
            &format!("the pinned client let in and another of the same CA refused ({pin})"),
            || (with("pinned"), with("other")),
            |(pinned, other)| pinned.as_ref().is_ok_and(|r| r.0 == 200) && other.is_err(),
        );
    }
    // caCrl: a client certificate the CA revoked (openssl ca -revoke, -gencrl) is refused.
    std::fs::write(
        pki.dir.join("ca.cnf"),
        "[ca]\ndefault_ca=d\n[d]\ndatabase=index.txt\ndefault_md=sha256\ndefault_crl_days=2\ncrlnumber=crlnumber\n",
    )
    .expect("cnf");
    std::fs::write(pki.dir.join("index.txt"), "").expect("index");
    std::fs::write(pki.dir.join("crlnumber"), "01\n").expect("crlnumber");
    let ca_args = ["-config", "ca.cnf", "-keyfile", "example.com.key", "-cert", "example.com.crt"];
    pki.openssl(&[&["ca", "-revoke", "other.crt"][..], &ca_args[..]].concat());
    pki.openssl(&[&["ca", "-gencrl", "-out", "example.com.crl"][..], &ca_args[..]].concat());
    // First MUTUAL without pins or CRL lets both in, so the refusal below is the CRL's doing.
    let plain_mutual = simple_server("httpbin.example.com", "httpbin-credential", "").replace("SIMPLE", "MUTUAL");
    apply(&mesh, "gw.yaml", &gateway(&plain_mutual));
    wait_for(
        "both clients let in without pins",
        || (with("pinned"), with("other")),
        |(a, b)| a.as_ref().is_ok_and(|r| r.0 == 200) && b.as_ref().is_ok_and(|r| r.0 == 200),
    );
    let crl = pki.path("example.com.crl");
    let server = simple_server("httpbin.example.com", "httpbin-credential", &format!("      caCrl: {crl}\n"))
        .replace("SIMPLE", "MUTUAL");
    apply(&mesh, "gw.yaml", &gateway(&server));
    wait_for(
        "the revoked client refused, the other let in",
        || (with("pinned"), with("other")),
        |(pinned, other)| pinned.as_ref().is_ok_and(|r| r.0 == 200) && other.is_err(),
    );
    // The CRL in the credential (a Secret's `ca.crl`) instead: both in again without it, then
    // the revoked one refused once the credential carries it, with no change to the Gateway.
    apply(&mesh, "gw.yaml", &gateway(&plain_mutual));
    wait_for(
        "both clients let in again",
        || (with("pinned"), with("other")),
        |(a, b)| a.as_ref().is_ok_and(|r| r.0 == 200) && b.as_ref().is_ok_and(|r| r.0 == 200),
    );
    let (cert, key) = (pki.path("httpbin.crt"), pki.path("httpbin.key"));
    let bad = mesh.run(&[
        "secret",
        "create",
        "tls",
        "httpbin-credential",
        "-n",
        "istio-system",
        "--cert",
        &cert,
        "--key",
        &key,
        "--ca",
        &cacert,
        "--crl",
        &cacert,
        "--overwrite",
    ]);
    assert!(bad.code != 0 && bad.stderr.contains("CRL"), "a certificate given as a CRL: {}", bad.stderr);
    mesh.ok(&[
        "secret",
        "create",
        "tls",
        "httpbin-credential",
        "-n",
        "istio-system",
        "--cert",
        &cert,
        "--key",
        &key,
        "--ca",
        &cacert,
        "--crl",
        &crl,
        "--overwrite",
    ]);
    wait_for(
        "the credential's CRL refuses the revoked client",
        || (with("pinned"), with("other")),
        |(pinned, other)| pinned.as_ref().is_ok_and(|r| r.0 == 200) && other.is_err(),
    );
    // ecdhCurves: only P-384 is offered.
    let server = simple_server("httpbin.example.com", "httpbin-credential", "      ecdhCurves: [P-384]\n");
    apply(&mesh, "gw.yaml", &gateway(&server));
    wait_for(
        "X25519 refused",
        || s_client(https, "httpbin.example.com", &["-groups", "X25519", "-CAfile", &cacert]),
        |r| !r.0,
    );
    let (ok, said) = s_client(https, "httpbin.example.com", &["-groups", "P-384", "-CAfile", &cacert]);
    assert!(ok, "P-384 accepted: {said}");
}

/// Two certificates on one server (Istio's `credentialNames`: ECDSA beside RSA): each client
/// gets the one whose key it can verify, checked with `openssl s_client -sigalgs`.
#[test]
fn a_server_with_two_credentials_shows_each_client_the_key_it_can_verify() {
    if !corpus("a_server_with_two_credentials_shows_each_client_the_key_it_can_verify")
        || !prerequisite("curl and openssl", have("curl") && have("openssl"))
    {
        return;
    }
    let mut mesh = Mesh::new();
    let gw = httpbin_behind_a_gateway(&mut mesh);
    let https = gw.gateway[0];
    let pki = Pki::new(&mesh);
    pki.ca("example.com");
    pki.leaf("example.com", "ecdsa", "httpbin.example.com");
    // An RSA key for the same name, signed by the same CA.
    pki.openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/O=rsa organization/CN=httpbin.example.com",
        "-addext",
        "subjectAltName=DNS:httpbin.example.com",
        "-keyout",
        "rsa.key",
        "-out",
        "rsa.csr",
    ]);
    pki.openssl(&[
        "x509",
        "-req",
        "-sha256",
        "-copy_extensions",
        "copy",
        "-in",
        "rsa.csr",
        "-CA",
        "example.com.crt",
        "-CAkey",
        "example.com.key",
        "-days",
        "2",
        "-out",
        "rsa.crt",
    ]);
    secret(&mesh, &pki, "httpbin-ecdsa", "ecdsa", None, false);
    secret(&mesh, &pki, "httpbin-rsa", "rsa", None, false);
    let server = "  - port: {number: 443, name: https, protocol: HTTPS}\n    hosts: [\"httpbin.example.com\"]\n    tls:\n      mode: SIMPLE\n      credentialNames: [httpbin-ecdsa, httpbin-rsa]\n";
    let file = mesh.home.path().join("gw.yaml");
    std::fs::write(&file, gateway(server)).expect("write");
    let applied = mesh.ok(&["apply", "-f", file.to_str().expect("path")]);
    assert!(!applied.stderr.contains("not enforced"), "a second credential is served: {}", applied.stderr);
    apply(&mesh, "vs.yaml", HTTPBIN_ROUTE);
    let cacert = pki.path("example.com.crt");
    wait_for(
        "an ECDSA-only client gets the ECDSA certificate",
        || s_client(https, "httpbin.example.com", &["-sigalgs", "ecdsa_secp256r1_sha256", "-CAfile", &cacert]),
        |r| r.0 && r.1.contains("O = ecdsa organization"),
    );
    let (ok, subject) =
        s_client(https, "httpbin.example.com", &["-sigalgs", "rsa_pss_rsae_sha256", "-CAfile", &cacert]);
    assert!(ok && subject.contains("O = rsa organization"), "an RSA-only client gets the RSA certificate: {subject}");
    assert_eq!(curl(https, "httpbin.example.com", "/status/200", &["--cacert", &cacert]).map(|r| r.0), Ok(200));
}

/// A Gateway API listener's `certificateRefs` in another namespace: refused (listener status
/// `ResolvedRefs` False, `RefNotPermitted`; no certificate served) until a ReferenceGrant there
/// lets Gateways of this namespace use the Secret; checked with curl and the listener status.
#[test]
fn gateway_api_listeners_use_certificates_across_namespaces_only_by_grant() {
    if !prerequisite("curl and openssl", have("curl") && have("openssl")) {
        return;
    }
    let mut mesh = Mesh::new();
    mesh.install();
    let pki = Pki::new(&mesh);
    pki.ca("example.com");
    pki.leaf("example.com", "shop", "shop.example.com");
    let (cert, key) = (pki.path("shop.crt"), pki.path("shop.key"));
    mesh.ok(&["secret", "create", "tls", "shop-cert", "-n", "certs", "--cert", &cert, "--key", &key]);
    let yaml = r#"
apiVersion: v1
kind: Service
metadata: {name: shop}
spec:
  selector: {app: shop}
  ports: [{name: http, port: 8080}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: edge}
spec:
  gatewayClassName: istio
  listeners:
  - name: https
    port: 443
    protocol: HTTPS
    hostname: shop.example.com
    tls:
      mode: Terminate
      certificateRefs: [{kind: Secret, name: shop-cert, namespace: certs}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: shop}
spec:
  parentRefs: [{name: edge}]
  rules:
  - backendRefs: [{name: shop, port: 8080}]
"#;
    apply(&mesh, "gateway.yaml", yaml);
    mesh.proxy(&["--workload", "shop", "--labels", "app=shop", "--inbound", &format!("8080={}", app("shop"))]);
    let gw = mesh.proxy(&[
        "--workload",
        "edge-istio",
        "--labels",
        "gateway.networking.k8s.io/gateway-name=edge",
        "--no-outbound",
        "--gateway-port",
        "443=127.0.0.1:0",
    ]);
    let https = gw.gateway[0];
    mesh.wait_synced(2);
    let listener = |mesh: &Mesh| -> serde_json::Value {
        let out = mesh.ok(&["get", "gateways.gateway.networking.k8s.io", "-o", "json"]).stdout;
        let v: serde_json::Value = serde_json::from_str(&out).expect("json");
        let items = v.as_array().cloned().or_else(|| v["items"].as_array().cloned()).unwrap_or_default();
        items
            .iter()
            .find(|g| g["metadata"]["name"] == "edge")
            .map(|g| g["status"]["listeners"][0].clone())
            .unwrap_or_default()
    };
    let resolved = |l: &serde_json::Value| {
        let c = l["conditions"].as_array().cloned().unwrap_or_default();
        let c = c.iter().find(|c| c["type"] == "ResolvedRefs").cloned().unwrap_or_default();
        format!("{}/{}", c["status"].as_str().unwrap_or("?"), c["reason"].as_str().unwrap_or("?"))
    };
    let l = listener(&mesh);
    assert_eq!(resolved(&l), "False/RefNotPermitted", "{l}");
    assert_eq!(l["attachedRoutes"], 1, "{l}");
    assert_eq!(l["supportedKinds"][0]["kind"], "HTTPRoute", "{l}");
    let ca = pki.path("example.com.crt");
    let refused = curl(https, "shop.example.com", "/", &["--cacert", &ca]);
    assert!(refused.is_err(), "no certificate without the grant: {refused:?}");
    let grant = r#"
apiVersion: gateway.networking.k8s.io/v1beta1
kind: ReferenceGrant
metadata: {name: gateways-may-use-shop-cert, namespace: certs}
spec:
  from: [{group: gateway.networking.k8s.io, kind: Gateway, namespace: default}]
  to: [{group: "", kind: Secret, name: shop-cert}]
"#;
    apply(&mesh, "grant.yaml", grant);
    wait_for(
        "HTTPS served with the other namespace's certificate",
        || curl(https, "shop.example.com", "/", &["--cacert", &ca]),
        |r| r.as_ref().is_ok_and(|(c, b)| *c == 200 && b == "shop\n"),
    );
    assert_eq!(resolved(&listener(&mesh)), "True/ResolvedRefs");
    // A grant for another Secret does not do.
    apply(&mesh, "grant.yaml", &grant.replace("name: shop-cert}", "name: other-cert}"));
    wait_for(
        "refused again with a grant for another Secret",
        || curl(https, "shop.example.com", "/", &["--cacert", &ca]),
        |r| r.is_err(),
    );
}

/// The TLS-terminating gateway port under attack: a ClientHello cut short, a connection that
/// never speaks, bytes that are not TLS, a handshake finished but no request, and a flood of
/// connections beyond its descriptors; each is closed, and curl is still served meanwhile.
#[test]
fn a_tls_gateway_port_closes_slow_and_garbage_clients_and_survives_a_flood() {
    if !prerequisite("curl and openssl", have("curl") && have("openssl")) {
        return;
    }
    use std::io::{Read, Write};
    let mut mesh = Mesh::new();
    mesh.install();
    mesh.ok(&["apply", "-f", &shared("samples/httpbin/httpbin.yaml")]);
    mesh.proxy(&["--workload", "httpbin", "--labels", "app=httpbin", "--inbound", &format!("8080={}", app("httpbin"))]);
    let gw = mesh.proxy_with_fd_limit(
        256,
        &[
            "--workload",
            "istio-ingressgateway",
            "-n",
            "istio-system",
            "--labels",
            "istio=ingressgateway",
            "--no-outbound",
            "--gateway-port",
            "443=127.0.0.1:0",
            "--tls-handshake-timeout",
            "1s",
            "--request-headers-timeout",
            "1s",
        ],
    );
    let https = gw.gateway[0];
    let pki = Pki::new(&mesh);
    pki.ca("example.com");
    pki.leaf("example.com", "httpbin", "httpbin.example.com");
    secret(&mesh, &pki, "httpbin-credential", "httpbin", None, false);
    apply(&mesh, "gw.yaml", &gateway(&simple_server("httpbin.example.com", "httpbin-credential", "")));
    apply(&mesh, "vs.yaml", HTTPBIN_ROUTE);
    let ca = pki.path("example.com.crt");
    let served = || curl(https, "httpbin.example.com", "/status/200", &["--cacert", &ca]);
    wait_for("HTTPS served", served, |r| r.as_ref().is_ok_and(|(c, _)| *c == 200));

    let closed = |s: &mut std::net::TcpStream| {
        s.set_read_timeout(Some(Duration::from_secs(8))).expect("timeout");
        let mut buf = [0u8; 1024];
        loop {
            match s.read(&mut buf) {
                Ok(0) => return true,
                Ok(_) => {}
                Err(e) => return !matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut),
            }
        }
    };
    let mut cut = std::net::TcpStream::connect(https).expect("connect");
    cut.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01]).expect("write");
    let mut silent = std::net::TcpStream::connect(https).expect("connect");
    let mut garbage = std::net::TcpStream::connect(https).expect("connect");
    garbage.write_all(b"GET / HTTP/1.1\r\nHost: httpbin.example.com\r\n\r\n").expect("write");
    for (what, s) in [("a cut ClientHello", &mut cut), ("a silent client", &mut silent), ("plain HTTP", &mut garbage)] {
        assert!(closed(s), "{what} is still connected");
    }
    // A handshake done, then nothing: the request header timeout closes it (s_client exits).
    let mut idle = Command::new("openssl")
        .args(["s_client", "-quiet", "-connect", &https.to_string(), "-servername", "httpbin.example.com"])
        .args(["-CAfile", &ca])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("s_client");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let exited = loop {
        if idle.try_wait().expect("wait").is_some() {
            break true;
        }
        if std::time::Instant::now() > deadline {
            break false;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let _ = idle.kill();
    let _ = idle.wait();
    assert!(exited, "a TLS connection without a request was left open");

    // A flood past the gateway's 256 descriptors: real clients are still served.
    let flood: Vec<std::net::TcpStream> = (0..600)
        .filter_map(|_| {
            let mut s = std::net::TcpStream::connect(https).ok()?;
            s.write_all(&[0x16]).ok()?;
            Some(s)
        })
        .collect();
    assert!(flood.len() > 300, "the flood opened {} connections", flood.len());
    for _ in 0..3 {
        let r = served();
        assert!(r.as_ref().is_ok_and(|(c, _)| *c == 200), "during the flood: {r:?}");
    }
    assert!(crate::harness::open_fds(gw.pid) < 256, "{} descriptors open", crate::harness::open_fds(gw.pid));
    drop(flood);
}
