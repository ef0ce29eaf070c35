//! Identity and zero trust through real sockets: mTLS between proxies, PeerAuthentication,
//! AuthorizationPolicy, certificates and root rotation under load, a plug-in CA. `openssl`
//! stands in for an outside client that has no mesh certificate.

use std::io::Write;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::harness::*;

const REVIEWS: &str = r#"
apiVersion: v1
kind: Service
metadata: {name: reviews}
spec:
  selector: {app: reviews}
  ports: [{name: http, port: 9080, targetPort: 9080}]
"#;

/// reviews (one proxy in front of an app) and a productpage client proxy.
fn bookinfo_pair(mesh: &mut Mesh) -> (Proxy, SocketAddr) {
    mesh.install();
    apply(mesh, "reviews.yaml", REVIEWS);
    let app = app("reviews-v1");
    let reviews = mesh.proxy(&[
        "--workload",
        "reviews-v1",
        "--labels",
        "app=reviews,version=v1",
        "--service-account",
        "bookinfo-reviews",
        "--inbound",
        &format!("9080={app}"),
    ]);
    let productpage = mesh.proxy(&["--workload", "productpage-v1", "--service-account", "bookinfo-productpage"]);
    mesh.wait_synced(2);
    (reviews, productpage.outbound.expect("outbound"))
}

/// `openssl s_client` against `addr` without a client certificate, sending one HTTP request.
/// Returns everything it printed.
fn s_client(addr: SocketAddr) -> String {
    let mut child = Command::new("openssl")
        .args(["s_client", "-connect", &addr.to_string(), "-showcerts"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("openssl must be installed (.ci/run installs it)");
    let mut stdin = child.stdin.take().expect("stdin");
    let _ = stdin.write_all(b"GET / HTTP/1.1\r\nHost: reviews\r\nConnection: close\r\n\r\n");
    drop(stdin);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while child.try_wait().ok().flatten().is_none() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let out = child.wait_with_output().expect("openssl output");
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// The subjectAltName of the first certificate in `pem_text`, as openssl prints it.
fn san_of(pem_text: &str) -> String {
    let start = pem_text.find("-----BEGIN CERTIFICATE-----").expect("a certificate was shown");
    let end = pem_text[start..].find("-----END CERTIFICATE-----").expect("end") + start + 25;
    let mut child = Command::new("openssl")
        .args(["x509", "-noout", "-ext", "subjectAltName"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("openssl x509");
    child.stdin.take().expect("stdin").write_all(&pem_text.as_bytes()[start..end]).expect("write");
    String::from_utf8_lossy(&child.wait_with_output().expect("x509").stdout).into_owned()
}

const STRICT: &str = r#"
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: istio-system}
spec:
  mtls: {mode: STRICT}
"#;

const PERMISSIVE: &str = r#"
apiVersion: security.istio.io/v1beta1
kind: PeerAuthentication
metadata: {name: default, namespace: istio-system}
spec:
  mtls: {mode: PERMISSIVE}
"#;

#[test]
fn strict_mtls_refuses_plaintext_and_presents_the_workload_identity() {
    let mut mesh = Mesh::new();
    let (reviews, outbound) = bookinfo_pair(&mut mesh);
    let inbound = reviews.inbound[0];

    // PERMISSIVE (the default): plaintext and mTLS on the same port.
    assert_eq!(get(inbound, "reviews", "/", false, &[]), (200, "reviews-v1\n".into()));
    assert_eq!(tally(outbound, "reviews:9080", 20, false), [("reviews-v1".to_string(), 20)].into());

    apply(&mesh, "strict.yaml", STRICT);
    mesh.wait_synced(2);
    let shown = s_client(inbound);
    let san = san_of(&shown);
    assert!(san.contains("URI:spiffe://cluster.local/ns/default/sa/bookinfo-reviews"), "{san}");
    assert!(!shown.contains("reviews-v1"), "no application data without a client certificate:\n{shown}");
    assert_eq!(get(inbound, "reviews", "/", false, &[]).0, 0, "plaintext gets nothing from the app");
    assert_eq!(tally(outbound, "reviews:9080", 50, false), [("reviews-v1".to_string(), 50)].into());

    apply(&mesh, "permissive.yaml", PERMISSIVE);
    mesh.wait_synced(2);
    assert_eq!(get(inbound, "reviews", "/", false, &[]), (200, "reviews-v1\n".into()));
    assert_eq!(tally(outbound, "reviews:9080", 20, false), [("reviews-v1".to_string(), 20)].into());
}

#[test]
fn authorization_policy_allows_only_the_productpage_principal() {
    let mut mesh = Mesh::new();
    let (reviews, productpage) = bookinfo_pair(&mut mesh);
    let ratings = mesh.proxy(&["--workload", "ratings-v1", "--service-account", "bookinfo-ratings"]);
    let ratings = ratings.outbound.expect("outbound");
    apply(
        &mesh,
        "ap.yaml",
        r#"
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: reviews-viewer}
spec:
  selector: {matchLabels: {app: reviews}}
  action: ALLOW
  rules:
  - from:
    - source: {principals: ["cluster.local/ns/default/sa/bookinfo-productpage"]}
    to:
    - operation: {methods: ["GET"]}
"#,
    );
    mesh.wait_synced(3);
    assert_eq!(get(productpage, "reviews:9080", "/", false, &[]), (200, "reviews-v1\n".into()));
    assert_eq!(get(ratings, "reviews:9080", "/", false, &[]), (403, "RBAC: access denied".into()));
    assert_eq!(get(reviews.inbound[0], "reviews", "/", false, &[]).0, 403, "plaintext has no principal");

    // A DENY policy wins over the ALLOW.
    apply(
        &mesh,
        "deny.yaml",
        r#"
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: no-admin}
spec:
  selector: {matchLabels: {app: reviews}}
  action: DENY
  rules:
  - to:
    - operation: {paths: ["/admin*"]}
"#,
    );
    mesh.wait_synced(3);
    assert_eq!(get(productpage, "reviews:9080", "/admin/x", false, &[]).0, 403);
    assert_eq!(get(productpage, "reviews:9080", "/books", false, &[]).0, 200);
}

fn cert_status(mesh: &Mesh) -> serde_json::Value {
    serde_json::from_str(&mesh.ok(&["cert", "status", "-o", "json"]).stdout).expect("cert status json")
}

#[test]
fn root_rotation_under_load_fails_no_request() {
    let mut mesh = Mesh::new();
    let (_reviews, outbound) = bookinfo_pair(&mut mesh);
    let before = cert_status(&mesh);
    let old_root = before["roots"][0]["key_id"].as_str().expect("root").to_string();
    assert_eq!(before["proxies"].as_array().expect("proxies").len(), 2);

    let load = Load::start(outbound, "reviews:9080", |code, body| code == 200 && body.trim() == "reviews-v1");
    load.wait_more("traffic before the rotation", 50);
    let r = mesh.ok(&["cert", "rotate-root", "-y"]);
    assert!(r.stdout.contains("root rotated") || r.stderr.contains("root rotated"), "{}{}", r.stdout, r.stderr);
    load.wait_more("traffic after the rotation", 100);
    let (ok, failed) = load.finish();
    assert_eq!(failed, 0, "{failed} of {} requests failed during the root rotation", ok + failed);

    let after = cert_status(&mesh);
    let roots = after["roots"].as_array().expect("roots");
    assert_eq!(roots.len(), 1, "the old root is retired: {after}");
    let new_root = roots[0]["key_id"].as_str().expect("root");
    assert_ne!(new_root, old_root);
    let subject = roots[0]["subject"].as_str().expect("subject");
    let cn = subject.split("CN=").nth(1).and_then(|s| s.split(',').next()).expect("CN");
    for p in after["proxies"].as_array().expect("proxies") {
        assert_eq!(p["trusts_current_bundle"], true, "{p}");
        assert_eq!(p["root"], cn, "{p}");
    }
    // A proxy that starts now handshakes with certificates of the new root only.
    let late = mesh.proxy(&["--workload", "details-v1", "--service-account", "bookinfo-details"]);
    mesh.wait_synced(3);
    assert_eq!(
        tally(late.outbound.expect("outbound"), "reviews:9080", 10, false),
        [("reviews-v1".to_string(), 10)].into()
    );

    // Renewing one workload changes only its serial.
    let serial = |v: &serde_json::Value, who: &str| {
        v["proxies"].as_array().expect("proxies").iter().find(|p| p["proxy"] == who).map(|p| p["serial"].clone())
    };
    mesh.ok(&["cert", "rotate", "--workload", "reviews-v1"]);
    let renewed = cert_status(&mesh);
    assert_ne!(serial(&after, "reviews-v1.default"), serial(&renewed, "reviews-v1.default"));
    assert_eq!(serial(&after, "productpage-v1.default"), serial(&renewed, "productpage-v1.default"));
    assert_eq!(tally(outbound, "reviews:9080", 10, false), [("reviews-v1".to_string(), 10)].into());
}

/// A CA made with openssl, as a user would bring their own.
pub fn openssl_ca(dir: &std::path::Path, name: &str) -> (String, String) {
    let (cert, key) = (dir.join(format!("{name}.pem")), dir.join(format!("{name}-key.pem")));
    let status = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "30"])
        .args(["-subj", &format!("/O=Example Corp/CN={name}")])
        .args(["-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("openssl req");
    assert!(status.success());
    (cert.to_str().expect("path").to_string(), key.to_str().expect("path").to_string())
}

/// An intermediate CA signed by `root` with openssl, in Istio's plug-in layout (as its
/// `tools/certs` makes them): `ca-cert.pem`, `ca-key.pem`, `cert-chain.pem` (the intermediate,
/// then the root) beside the root's `root-cert.pem`; returns (ca-cert, ca-key, cert-chain).
pub fn openssl_intermediate(dir: &std::path::Path, root: &(String, String), name: &str) -> (String, String, String) {
    let path = |f: &str| dir.join(format!("{name}-{f}")).to_str().expect("path").to_string();
    let (cert, key, csr, ext, chain) =
        (path("ca-cert.pem"), path("ca-key.pem"), path("ca.csr"), path("ext.cnf"), path("cert-chain.pem"));
    std::fs::write(&ext, "basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\n")
        .expect("ext");
    let run = |args: &[&str]| {
        let st =
            Command::new("openssl").args(args).stdout(Stdio::null()).stderr(Stdio::null()).status().expect("openssl");
        assert!(st.success(), "openssl {args:?}");
    };
    run(&[
        "req",
        "-new",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-subj",
        &format!("/O=Example Corp/CN={name}"),
        "-keyout",
        &key,
        "-out",
        &csr,
    ]);
    run(&[
        "x509",
        "-req",
        "-in",
        &csr,
        "-CA",
        &root.0,
        "-CAkey",
        &root.1,
        "-CAcreateserial",
        "-days",
        "30",
        "-extfile",
        &ext,
        "-out",
        &cert,
    ]);
    let text = std::fs::read_to_string(&cert).expect("cert") + &std::fs::read_to_string(&root.0).expect("root");
    std::fs::write(&chain, text).expect("chain");
    (cert, key, chain)
}

/// Istio's usual plug-in CA: an intermediate under the user's root. Its chain is checked
/// (refused without the root, or with a root that did not sign it); proxies trust the root
/// and present the intermediate with their certificate, and mTLS works through it.
#[test]
fn plug_in_intermediate_ca_signs_and_proxies_trust_its_root() {
    let mut mesh = Mesh::new();
    let dir = tempfile::tempdir().expect("tmp");
    let root = openssl_ca(dir.path(), "corp-root");
    let other = openssl_ca(dir.path(), "other-root");
    let (cert, key, chain) = openssl_intermediate(dir.path(), &root, "cluster1-ca");
    let install = |extra: &[String]| {
        let mut args: Vec<String> = ["install", "-y", "--set", "meshd.listen=127.0.0.1:0"].map(String::from).to_vec();
        for kv in [format!("ca.cert={cert}"), format!("ca.key={key}")].iter().chain(extra) {
            args.extend(["--set".to_string(), kv.clone()]);
        }
        mesh.run(&args.iter().map(String::as_str).collect::<Vec<_>>())
    };
    let no_root = install(&[]);
    assert_eq!(no_root.code, BAD_INPUT, "{}", no_root.stderr);
    assert!(
        no_root.stderr.contains("is an intermediate") && no_root.stderr.contains("root-cert.pem"),
        "{}",
        no_root.stderr
    );
    let wrong_root = install(&[format!("ca.root={}", other.0)]);
    assert_eq!(wrong_root.code, BAD_INPUT, "{}", wrong_root.stderr);
    assert!(wrong_root.stderr.contains("is not signed by root-cert.pem"), "{}", wrong_root.stderr);
    assert!(mesh.meshd_pid().is_none() && !mesh.home.path().join("ca.json").exists(), "nothing started or written");

    let ok = install(&[format!("ca.root={}", root.0), format!("ca.chain={chain}")]);
    assert_eq!(ok.code, 0, "{}", ok.stderr);
    apply(&mesh, "reviews.yaml", REVIEWS);
    let app = app("reviews-v1");
    mesh.proxy(&["--workload", "reviews-v1", "--labels", "app=reviews", "--inbound", &format!("9080={app}")]);
    let client = mesh.proxy(&["--workload", "productpage-v1"]);
    mesh.wait_synced(2);
    let status = cert_status(&mesh);
    let roots = status["roots"].as_array().expect("roots");
    assert_eq!(roots.len(), 1, "the bundle is the root alone: {status}");
    assert!(roots[0]["subject"].as_str().is_some_and(|s| s.contains("corp-root")), "{status}");
    assert_eq!(roots[0]["signing"], true, "{status}");
    // mTLS between the two proxies: each verifies the other's certificate through the
    // intermediate it presents, trusting only corp-root.
    assert_eq!(
        tally(client.outbound.expect("outbound"), "reviews:9080", 10, false),
        [("reviews-v1".to_string(), 10)].into()
    );
}

#[test]
fn plug_in_ca_is_checked_and_used() {
    let mut mesh = Mesh::new();
    let dir = tempfile::tempdir().expect("tmp");
    let (cert, key) = openssl_ca(dir.path(), "corp-root");
    let (_, other_key) = openssl_ca(dir.path(), "other-root");

    let bad = mesh.run(&[
        "install",
        "-y",
        "--set",
        "meshd.listen=127.0.0.1:0",
        "--set",
        &format!("ca.cert={cert}"),
        "--set",
        &format!("ca.key={other_key}"),
    ]);
    assert_eq!(bad.code, BAD_INPUT, "{}", bad.stderr);
    assert!(bad.stderr.contains("does not belong"), "{}", bad.stderr);
    assert!(mesh.meshd_pid().is_none(), "nothing started");
    assert!(!mesh.home.path().join("ca.json").exists(), "nothing written");

    mesh.ok(&[
        "install",
        "-y",
        "--set",
        "meshd.listen=127.0.0.1:0",
        "--set",
        &format!("ca.cert={cert}"),
        "--set",
        &format!("ca.key={key}"),
    ]);
    apply(&mesh, "reviews.yaml", REVIEWS);
    let app = app("reviews-v1");
    mesh.proxy(&["--workload", "reviews-v1", "--labels", "app=reviews", "--inbound", &format!("9080={app}")]);
    let client = mesh.proxy(&["--workload", "productpage-v1"]);
    mesh.wait_synced(2);
    let status = cert_status(&mesh);
    assert!(status["roots"][0]["subject"].as_str().expect("subject").contains("corp-root"), "{status}");
    for p in status["proxies"].as_array().expect("proxies") {
        assert_eq!(p["root"], "corp-root", "{p}");
    }
    assert_eq!(
        tally(client.outbound.expect("outbound"), "reviews:9080", 10, false),
        [("reviews-v1".to_string(), 10)].into()
    );
    let ca_mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(mesh.home.path().join("ca.json")).expect("ca.json").permissions(),
    );
    assert_eq!(ca_mode & 0o777, 0o600);
}

/// An ES256 signing key and the JWKS that publishes it (key id `k1`).
pub fn jwt_key() -> (jsonwebtoken::EncodingKey, String) {
    use base64::Engine;
    let key = rcgen::KeyPair::generate().expect("P-256 key");
    let raw = key.public_key_raw(); // 0x04 || x || y
    let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let jwks = serde_json::json!({"keys": [{
        "kty": "EC", "crv": "P-256", "kid": "k1", "alg": "ES256", "use": "sig",
        "x": b64(&raw[1..33]), "y": b64(&raw[33..65]),
    }]});
    (jsonwebtoken::EncodingKey::from_ec_der(&key.serialize_der()), jwks.to_string())
}

fn token(key: &jsonwebtoken::EncodingKey, iss: &str, exp_from_now: i64) -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs() as i64;
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    header.kid = Some("k1".into());
    let claims = serde_json::json!({"iss": iss, "sub": "jason", "aud": "bookinfo", "iat": now, "exp": now + exp_from_now, "groups": ["reviewers"]});
    jsonwebtoken::encode(&header, &claims, key).expect("sign")
}

/// A one-route HTTP server that serves `body` (a JWKS endpoint), counting requests.
pub fn jwks_server(body: String) -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        for mut s in listener.incoming().flatten() {
            let mut buf = [0u8; 4096];
            let _ = std::io::Read::read(&mut s, &mut buf);
            let resp = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = s.write_all(resp.as_bytes());
        }
    });
    addr
}

#[test]
fn request_authentication_checks_jwts_and_policy_can_require_them() {
    let mut mesh = Mesh::new();
    let (_reviews, outbound) = bookinfo_pair(&mut mesh);
    let (key, jwks) = jwt_key();
    let (other_key, _) = jwt_key();
    let jwks_addr = jwks_server(jwks.clone());
    let inline = serde_json::to_string(&jwks).expect("json string");
    apply(
        &mesh,
        "ra.yaml",
        &format!(
            r#"
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {{name: jwt}}
spec:
  selector: {{matchLabels: {{app: reviews}}}}
  jwtRules:
  - issuer: "https://issuer.example"
    jwksUri: "http://{jwks_addr}/jwks.json"
    audiences: [bookinfo]
  - issuer: "inline-issuer"
    jwks: {inline}
"#
        ),
    );
    mesh.wait_synced(2);
    let bearer = |t: &str| format!("Bearer {t}");
    let call = |t: Option<String>| {
        let h: Vec<(&str, &str)> = t.as_deref().map(|t| vec![("Authorization", t)]).unwrap_or_default();
        get(outbound, "reviews:9080", "/", false, &h)
    };
    assert_eq!(call(Some(bearer(&token(&key, "https://issuer.example", 600)))).0, 200, "valid token (jwksUri)");
    assert_eq!(call(Some(bearer(&token(&key, "inline-issuer", 600)))).0, 200, "valid token (inline jwks)");
    assert_eq!(call(None).0, 200, "no token passes without a policy that requires one");
    let expired = call(Some(bearer(&token(&key, "https://issuer.example", -3600))));
    assert_eq!(expired, (401, "Jwt is expired".into()));
    let wrong_issuer = call(Some(bearer(&token(&key, "https://evil.example", 600))));
    assert_eq!(wrong_issuer, (401, "Jwt issuer is not configured".into()));
    let bad_signature = call(Some(bearer(&token(&other_key, "https://issuer.example", 600))));
    assert_eq!(bad_signature, (401, "Jwt verification fails".into()));
    assert_eq!(call(Some("Bearer not.a.jwt".into())).0, 401, "garbage token");

    // A policy that requires a request principal: now a request without a token is denied.
    apply(
        &mesh,
        "require-jwt.yaml",
        r#"
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: require-jwt}
spec:
  selector: {matchLabels: {app: reviews}}
  action: ALLOW
  rules:
  - from:
    - source: {requestPrincipals: ["https://issuer.example/*"]}
    when:
    - key: request.auth.claims[groups]
      values: ["reviewers"]
"#,
    );
    mesh.wait_synced(2);
    assert_eq!(call(None), (403, "RBAC: access denied".into()));
    assert_eq!(call(Some(bearer(&token(&key, "https://issuer.example", 600)))).0, 200);
    assert_eq!(call(Some(bearer(&token(&key, "inline-issuer", 600)))).0, 403, "other issuer's principal");
}
