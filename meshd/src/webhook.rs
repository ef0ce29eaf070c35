//! The admission webhooks over TLS (15017 on a cluster), as the Kubernetes API server calls
//! them: meshd issues itself a certificate for its Service's DNS names from the mesh root, serves
//! `/validate` and `/inject` with it, and writes the root into the webhook configurations'
//! `caBundle` so the API server trusts it.

use std::sync::Arc;

use base64::Engine;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::Value;
use tokio::net::TcpListener;
use tracing::{debug, info, warn};

use crate::api::Api as MeshApi;
use crate::ca::Ca;

/// The DNS names the API server uses for meshd's Service in `namespace`.
pub fn dns_names(namespace: &str) -> Vec<String> {
    vec![
        format!("meshd.{namespace}.svc"),
        format!("meshd.{namespace}.svc.cluster.local"),
        format!("meshd.{namespace}"),
        "meshd".into(),
    ]
}

/// meshd's serving certificate for its Service's names, from the mesh CA; issued again when the
/// CA starts signing with another root (a root rotation), so clients that trust only the new
/// root keep reaching meshd.
pub struct ServingCert {
    ca: Arc<Ca>,
    names: Vec<String>,
    /// The signer's key id and the certificate it signed.
    current: std::sync::RwLock<(String, Arc<CertifiedKey>)>,
}

impl std::fmt::Debug for ServingCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServingCert").field("names", &self.names).finish_non_exhaustive()
    }
}

impl ServingCert {
    pub fn new(ca: Arc<Ca>, names: Vec<String>) -> anyhow::Result<Arc<ServingCert>> {
        let current = std::sync::RwLock::new(Self::issue(&ca, &names)?);
        Ok(Arc::new(ServingCert { ca, names, current }))
    }

    fn issue(ca: &Ca, names: &[String]) -> anyhow::Result<(String, Arc<CertifiedKey>)> {
        let signer = ca.view().signer_key_id.clone();
        let (cert_pem, key_pem) = ca.issue_server(names)?;
        let certs: Vec<CertificateDer<'static>> =
            CertificateDer::pem_slice_iter(cert_pem.as_bytes()).collect::<Result<_, _>>()?;
        let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())?;
        let key = rustls::crypto::ring::sign::any_supported_type(&key)?;
        Ok((signer, Arc::new(CertifiedKey::new(certs, key))))
    }

    /// Issue a new certificate if the CA signs with another root now; true if it did.
    pub fn refresh(&self) -> anyhow::Result<bool> {
        let signer = self.ca.view().signer_key_id.clone();
        if self.current.read().unwrap_or_else(|p| p.into_inner()).0 == signer {
            return Ok(false);
        }
        let next = Self::issue(&self.ca, &self.names)?;
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = next;
        Ok(true)
    }
}

impl ResolvesServerCert for ServingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.read().unwrap_or_else(|p| p.into_inner()).1.clone())
    }
}

/// A TLS server config presenting `cert`.
pub fn tls_config(cert: Arc<ServingCert>) -> Arc<rustls::ServerConfig> {
    Arc::new(rustls::ServerConfig::builder().with_no_client_auth().with_cert_resolver(cert))
}

/// Keep meshd's serving certificate and the webhooks' `caBundle` in step with the CA (at start,
/// and after every root rotation step); failed patches are retried.
pub async fn follow_ca(
    client: kube::Client,
    namespace: String,
    ca: Arc<Ca>,
    cert: Arc<ServingCert>,
    mut leader: tokio::sync::watch::Receiver<bool>,
) {
    let mut rx = ca.subscribe();
    let mut patched = String::new();
    loop {
        // Every replica serves with its own certificate; only the leader patches the caBundle.
        let leads = *leader.borrow_and_update();
        if !leads {
            patched.clear();
        }
        let view = rx.borrow_and_update().clone();
        match cert.refresh() {
            Ok(true) => info!("issued meshd's serving certificate from the new signing root"),
            Ok(false) => {}
            Err(e) => warn!(error = %e, "cannot issue meshd's serving certificate; keeping the old one"),
        }
        let mut failed = false;
        if leads && patched != view.bundle_version {
            match patch_ca_bundle(client.clone(), &namespace, &view.bundle_pem).await {
                Ok(()) => patched = view.bundle_version.clone(),
                Err(e) => {
                    warn!(error = %e, "cannot set the webhooks' caBundle; they fail open until it is set; retrying");
                    failed = true;
                }
            }
        }
        tokio::select! {
            r = rx.changed() => if r.is_err() { return },
            r = leader.changed() => if r.is_err() { return },
            _ = crate::kubernetes::retry_if(failed, std::time::Duration::from_secs(10)) => {}
        }
    }
}

/// Serve meshd's API over TLS: the webhooks (the part the API server calls) on 15017, the
/// discovery stream for proxies on 15012.
pub async fn serve_tls(listener: TcpListener, tls: Arc<rustls::ServerConfig>, api: Arc<MeshApi>) {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let mut backoff = crate::AcceptBackoff::default();
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(a) => {
                backoff.reset();
                a
            }
            Err(e) => {
                backoff.failed("TLS", &e).await;
                continue;
            }
        };
        let (acceptor, api) = (acceptor.clone(), api.clone());
        tokio::spawn(async move {
            let tls = match tokio::time::timeout(crate::HEADER_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(t)) => t,
                Ok(Err(e)) => {
                    debug!(%peer, error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    debug!(%peer, "TLS handshake timed out");
                    return;
                }
            };
            let svc = service_fn(move |req| api.clone().handle(req));
            let conn = crate::api_http1().serve_connection(TokioIo::new(tls), svc).with_upgrades();
            if let Err(e) = conn.await {
                debug!(%peer, error = %e, "TLS connection ended with an error");
            }
        });
    }
}

/// Put the mesh root into every webhook of meshd's webhook configurations, so the API server
/// trusts meshd's certificate.
pub async fn patch_ca_bundle(client: kube::Client, namespace: &str, bundle_pem: &str) -> anyhow::Result<()> {
    let bundle = base64::engine::general_purpose::STANDARD.encode(bundle_pem);
    for (kind, plural, name) in [
        ("MutatingWebhookConfiguration", "mutatingwebhookconfigurations", format!("mesh-sidecar-injector-{namespace}")),
        ("ValidatingWebhookConfiguration", "validatingwebhookconfigurations", format!("mesh-validator-{namespace}")),
    ] {
        let ar = crate::kubernetes::api_resource("admissionregistration.k8s.io", "v1", kind, plural);
        let api: Api<DynamicObject> = Api::all_with(client.clone(), &ar);
        let Some(obj) = api.get_opt(&name).await? else {
            debug!(%kind, %name, "no webhook configuration to patch");
            continue;
        };
        let mut webhooks = obj.data.get("webhooks").cloned().unwrap_or(Value::Array(Vec::new()));
        for w in webhooks.as_array_mut().into_iter().flatten() {
            w["clientConfig"]["caBundle"] = Value::String(bundle.clone());
            // The validator starts failing open (the manifest says Ignore, so an install is not
            // blocked before meshd serves); once meshd serves it with a certificate the API
            // server trusts, it fails closed, as istiod does with its validator.
            if kind == "ValidatingWebhookConfiguration" {
                w["failurePolicy"] = Value::String("Fail".into());
            }
        }
        api.patch(&name, &PatchParams::default(), &Patch::Merge(serde_json::json!({"webhooks": webhooks}))).await?;
        info!(%kind, %name, "webhook caBundle set to the mesh root (the validator now fails closed)");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_mesh_root_goes_into_every_webhooks_ca_bundle() {
        use std::sync::Mutex;
        let patches: Arc<Mutex<Vec<(String, Value)>>> = Arc::default();
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let seen = patches.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { return };
                let seen = seen.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                        let seen = seen.clone();
                        async move {
                            use http_body_util::BodyExt;
                            let (method, path) = (req.method().clone(), req.uri().path().to_string());
                            let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                            let kind = if path.contains("mutating") {
                                "MutatingWebhookConfiguration"
                            } else {
                                "ValidatingWebhookConfiguration"
                            };
                            let obj = serde_json::json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": kind,
                                "metadata": {"name": path.rsplit('/').next().unwrap_or("")},
                                "webhooks": [{"name": "a.mesh.io", "clientConfig": {"service": {"name": "meshd"}}},
                                             {"name": "b.mesh.io", "clientConfig": {"service": {"name": "meshd"}}}]});
                            if method == http::Method::PATCH {
                                let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                                seen.lock().unwrap_or_else(|e| e.into_inner()).push((path.clone(), v));
                            }
                            let mut resp =
                                hyper::Response::new(http_body_util::Full::new(bytes::Bytes::from(obj.to_string())));
                            resp.headers_mut()
                                .insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
                            Ok::<_, std::convert::Infallible>(resp)
                        }
                    });
                    let _ =
                        hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), svc).await;
                });
            }
        });
        let config = kube::Config::new(format!("http://{addr}").parse().expect("url"));
        let client = kube::Client::try_from(config).expect("client");
        patch_ca_bundle(client, "istio-system", "-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n")
            .await
            .expect("patched");
        let got = patches.lock().unwrap_or_else(|e| e.into_inner()).clone();
        assert_eq!(got.len(), 2, "{got:?}");
        assert!(got[0].0.ends_with("/mutatingwebhookconfigurations/mesh-sidecar-injector-istio-system"), "{got:?}");
        for (_, body) in &got {
            let hooks = body["webhooks"].as_array().expect("webhooks");
            assert_eq!(hooks.len(), 2);
            assert!(
                hooks.iter().all(|h| h["clientConfig"]["caBundle"].as_str().is_some_and(|b| !b.is_empty())),
                "{body}"
            );
            assert_eq!(hooks[0]["clientConfig"]["service"]["name"], "meshd", "the rest of each webhook is kept");
        }
        // The validator now fails closed; the injector keeps its own policy.
        assert!(got[1].1["webhooks"].as_array().expect("hooks").iter().all(|h| h["failurePolicy"] == "Fail"));
        assert!(got[0].1["webhooks"].as_array().expect("hooks").iter().all(|h| h.get("failurePolicy").is_none()));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn webhooks_answer_over_tls_with_a_certificate_from_the_mesh_root() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ca = Arc::new(
            Ca::open(&dir.path().join("ca.json"), "cluster.local", std::time::Duration::from_secs(3600)).expect("ca"),
        );
        let state = Arc::new(crate::state::State::new(
            "meshd-test".into(),
            crate::store::Store::new(dir.path().join("store.json")),
            Default::default(),
            None,
            Vec::new(),
        ));
        let api = Arc::new(MeshApi {
            proxy_tokens: Arc::new(crate::proxy_token::Signer::from_key(&[1; 32])),
            state,
            ca: ca.clone(),
            token: "t".into(),
            mesh: crate::translate::MeshConfig::default(),
            shutdown: Arc::new(tokio::sync::Notify::new()),
            kube: None,
        });
        let serving = ServingCert::new(ca.clone(), dns_names("istio-system")).expect("serving cert");
        let tls = tls_config(serving.clone());
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(serve_tls(listener, tls, api));

        // A client that trusts only the mesh root, as the API server does through caBundle.
        let mut roots = rustls::RootCertStore::empty();
        for c in CertificateDer::pem_slice_iter(ca.view().bundle_pem.as_bytes()) {
            roots.add(c.expect("root")).expect("add root");
        }
        let client = rustls::ClientConfig::builder().with_root_certificates(roots).with_no_client_auth();
        let connector = tokio_rustls::TlsConnector::from(Arc::new(client));
        let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let name = rustls_pki_types::ServerName::try_from("meshd.istio-system.svc").expect("name");
        let tls = connector.connect(name, tcp).await.expect("handshake with the mesh root");
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake::<_, http_body_util::Full<bytes::Bytes>>(TokioIo::new(tls))
                .await
                .expect("http");
        tokio::spawn(conn);
        let review = serde_json::json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "request": {"uid": "x", "namespace": "default", "object": {"apiVersion": "networking.istio.io/v1", "kind": "Gateway",
            "metadata": {"name": "g"}, "spec": {"servers": [{"port": {"number": 0, "protocol": "HTTP", "name": "h"}, "hosts": ["*"]}]}}}});
        let req = http::Request::post("/validate")
            .header(http::header::HOST, "meshd.istio-system.svc")
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(http_body_util::Full::new(bytes::Bytes::from(review.to_string())))
            .expect("request");
        let resp = sender.send_request(req).await.expect("response");
        use http_body_util::BodyExt;
        let body = resp.into_body().collect().await.expect("body").to_bytes();
        let out: Value = serde_json::from_slice(&body).expect("json");
        assert_eq!(out["response"]["allowed"], false, "{out}");
        assert!(out["response"]["status"]["message"].as_str().is_some_and(|m| m.contains("port")), "{out}");

        // A root rotation: once the CA signs with the new root, meshd presents a certificate a
        // client trusting only the new root accepts.
        assert!(!serving.refresh().expect("refresh"), "nothing to do while the signer is the same");
        ca.add_root().expect("add root");
        ca.sign_with_newest().expect("switch signer");
        assert!(serving.refresh().expect("refresh"));
        ca.retire_others().expect("retire the old root");
        let mut roots = rustls::RootCertStore::empty();
        for c in CertificateDer::pem_slice_iter(ca.view().bundle_pem.as_bytes()) {
            roots.add(c.expect("root")).expect("add root");
        }
        assert_eq!(roots.len(), 1, "only the new root");
        let client = rustls::ClientConfig::builder().with_root_certificates(roots).with_no_client_auth();
        let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let name = rustls_pki_types::ServerName::try_from("meshd.istio-system.svc").expect("name");
        tokio_rustls::TlsConnector::from(Arc::new(client))
            .connect(name, tcp)
            .await
            .expect("handshake with only the new root");
    }
}
