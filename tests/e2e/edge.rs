//! TLS at the edge: Gateway servers that terminate TLS with credentials from `mesh secret`,
//! checked with real TLS clients (curl, openssl s_client) and certificates made by openssl.

use crate::harness::{Mesh, Proxy, app, apply, corpus, have, prerequisite, shared};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

/// Certificates made with the openssl command line, as Istio's secure-ingress task makes them.
struct Pki {
    dir: PathBuf,
}

impl Pki {
    fn new(mesh: &Mesh) -> Pki {
        let dir = mesh.home.path().join("pki");
        std::fs::create_dir_all(&dir).expect("pki dir");
        Pki { dir }
    }

    fn path(&self, file: &str) -> String {
        self.dir.join(file).to_str().expect("utf-8 path").to_string()
    }

    fn openssl(&self, args: &[&str]) {
        let o = Command::new("openssl").args(args).current_dir(&self.dir).output().expect("openssl");
        assert!(o.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&o.stderr));
    }

    /// A root CA `NAME.crt`/`NAME.key`.
    fn ca(&self, name: &str) {
        self.openssl(&[
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
            "-subj", &format!("/O={name} Inc./CN={name}"), "-keyout", &format!("{name}.key"), "-out",
            &format!("{name}.crt"),
        ]);
    }

    /// A leaf `NAME.crt`/`NAME.key` for DNS name `dns`, signed by CA `ca`, valid for `days`
    /// (-1: expired a day ago); made as Istio's task makes it (a request, then `x509 -req`).
    fn signed(&self, ca: &str, name: &str, dns: &str, days: &str) {
        self.openssl(&[
            "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-subj",
            &format!("/O={name} organization/CN={dns}"), "-addext", &format!("subjectAltName=DNS:{dns}"), "-keyout",
            &format!("{name}.key"), "-out", &format!("{name}.csr"),
        ]);
        self.openssl(&[
            "x509", "-req", "-sha256", "-copy_extensions", "copy", "-in", &format!("{name}.csr"), "-CA",
            &format!("{ca}.crt"), "-CAkey", &format!("{ca}.key"), "-days", days, "-out", &format!("{name}.crt"),
        ]);
    }

    fn leaf(&self, ca: &str, name: &str, dns: &str) {
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
    let subject = all
        .lines()
        .find_map(|l| l.strip_prefix("Peer certificate: "))
        .map(str::to_string)
        .unwrap_or(all.clone());
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
    mesh.proxy(&["--workload", "httpbin", "--labels", "app=httpbin,version=v1", "--inbound", &format!("8080={}", app("httpbin"))]);
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

    // Step 1: the credential, then HTTPS works, verified against the example.com root.
    secret(&mesh, &pki, "httpbin-credential", "httpbin", None, false);
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
    wait_for(
        "MUTUAL with a client certificate",
        || curl(https, "httpbin.example.com", "/status/200", &with_cert),
        |r| r.as_ref().is_ok_and(|r| r.0 == 200),
    );
    let without = curl(https, "httpbin.example.com", "/status/200", &ca);
    assert!(without.is_err(), "a client without a certificate refused: {without:?}");
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
    let missing = mesh.run(&["secret", "create", "tls", "cred", "--cert", "/nonexistent.crt", "--key", &pki.path("one.key")]);
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
