//! The proxy's identity and mutual TLS: its key pair (made here, never sent anywhere), the
//! certificate meshd signs for it, the trust bundle, and the rustls configs built from them.
//!
//! A new certificate or bundle builds new configs that are swapped in atomically: new
//! connections use them, open connections keep the session they negotiated.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use mesh_api::cert::{CertInfo, bundle_version, pem_certs};
use mesh_api::identity::SpiffeId;
use mesh_api::protocol::IdentityReport;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::server::{ParsedCertificate, WebPkiClientVerifier};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig, SignatureScheme};

/// ALPN ids: HTTP/2 and HTTP/1.1 between proxies.
pub const ALPN_H2: &[u8] = b"h2";
pub const ALPN_HTTP11: &[u8] = b"http/1.1";
/// Offered on mTLS TCP connections between proxies: each side first sends who it is (Istio's
/// `istio-peer-exchange` does this for TCP), so TCP metrics name the peer workload.
pub const ALPN_PEER_EXCHANGE: &[u8] = b"mesh-peer-exchange/1";

pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Install ring as the process-wide rustls provider (once; later calls are no-ops).
pub fn install_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

fn now_unix() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// What is in force now.
pub struct TlsState {
    pub cert: Option<CertInfo>,
    pub bundle_pem: String,
    pub bundle_version: String,
    /// None until the proxy has a certificate.
    pub server: Option<Arc<ServerConfig>>,
    /// Client configs offering HTTP/1.1 and HTTP/2 by ALPN: the hop keeps the request's protocol.
    pub client: Option<Arc<ClientConfig>>,
    pub client_h2: Option<Arc<ClientConfig>>,
    /// For raw TCP (no ALPN).
    pub client_tcp: Option<Arc<ClientConfig>>,
    /// When to ask for the next certificate.
    pub renew_at: Option<Instant>,
    pub last_error: Option<String>,
    chain: Vec<CertificateDer<'static>>,
    key: Option<Arc<PrivateKeyDer<'static>>>,
}

pub struct Identity {
    pub id: SpiffeId,
    /// `id` as its URI, made once (metrics and logs name it on every request).
    pub uri: String,
    state: ArcSwap<TlsState>,
    /// The key of the CSR in flight.
    pending: Mutex<Option<rcgen::KeyPair>>,
}

/// Verifies a peer proxy's certificate chain against the trust bundle. The SPIFFE identity is
/// checked right after the handshake, before any request is sent (`peer_identity`), because
/// the expected identity differs per endpoint while the config is shared.
#[derive(Debug)]
struct MeshServerVerifier {
    roots: Arc<RootCertStore>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for MeshServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let cert = ParsedCertificate::try_from(end_entity)?;
        rustls::client::verify_server_cert_signed_by_trust_anchor(
            &cert,
            &self.roots,
            intermediates,
            now,
            self.provider.signature_verification_algorithms.all,
        )?;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

/// What the first bytes of a connection say about its TLS ClientHello.
enum Hello {
    /// Not all of it is here yet.
    Partial,
    /// A whole ClientHello, with its SNI if it has one.
    Sni(Option<String>),
    /// Not TLS.
    NotTls,
}

fn client_hello(bytes: &[u8]) -> Hello {
    let mut acceptor = rustls::server::Acceptor::default();
    let mut rd = bytes;
    if acceptor.read_tls(&mut rd).is_err() {
        return Hello::NotTls;
    }
    match acceptor.accept() {
        Ok(Some(accepted)) => Hello::Sni(accepted.client_hello().server_name().map(str::to_string)),
        Ok(None) => Hello::Partial,
        Err(_) => Hello::NotTls,
    }
}

/// The most of a connection read or peeked for its ClientHello.
const HELLO_MAX: usize = 16 * 1024;
/// How long a client has to send its ClientHello.
const HELLO_WAIT: Duration = Duration::from_secs(5);

/// The SNI of a TLS ClientHello the client has sent, read without consuming it (the bytes
/// then pass through untouched). None: not TLS, no SNI, or nothing within 5 s.
pub async fn peek_sni(stream: &tokio::net::TcpStream) -> Option<String> {
    peek_sni_within(stream, HELLO_WAIT).await
}

/// [`peek_sni`], waiting at most `wait` for the ClientHello (a listener's handshake timeout).
pub async fn peek_sni_within(stream: &tokio::net::TcpStream, wait: Duration) -> Option<String> {
    let deadline = tokio::time::Instant::now() + wait.min(HELLO_WAIT);
    let mut buf = vec![0u8; HELLO_MAX];
    loop {
        let n = tokio::time::timeout_at(deadline, stream.peek(&mut buf)).await.ok()?.ok()?;
        if n == 0 {
            return None;
        }
        match client_hello(&buf[..n]) {
            Hello::Sni(sni) => return sni,
            Hello::Partial if n < buf.len() => {
                // Not all of the ClientHello is here yet; wait for more.
                tokio::time::sleep(Duration::from_millis(5)).await;
                if tokio::time::Instant::now() >= deadline {
                    return None;
                }
            }
            _ => return None,
        }
    }
}

/// The SNI of the TLS ClientHello at the start of `stream` (a tunnel, which cannot be
/// peeked): the bytes read are left in `seen`, to be sent on before anything else. None: not
/// TLS, no SNI, or no whole ClientHello within 5 s.
pub async fn read_sni<R: tokio::io::AsyncRead + Unpin>(stream: &mut R, seen: &mut Vec<u8>) -> Option<String> {
    use tokio::io::AsyncReadExt;
    let deadline = tokio::time::Instant::now() + HELLO_WAIT;
    let mut chunk = [0u8; 4096];
    while seen.len() < HELLO_MAX {
        let n = tokio::time::timeout_at(deadline, stream.read(&mut chunk)).await.ok()?.ok()?;
        if n == 0 {
            return None;
        }
        seen.extend_from_slice(&chunk[..n]);
        match client_hello(seen) {
            Hello::Partial => {}
            Hello::Sni(sni) => return sni,
            Hello::NotTls => return None,
        }
    }
    None
}

/// The SPIFFE ID in a peer's leaf certificate.
pub fn peer_identity(certs: Option<&[CertificateDer<'_>]>) -> Option<String> {
    let leaf = certs?.first()?;
    CertInfo::from_der(leaf.as_ref()).ok()?.uris.into_iter().find(|u| u.starts_with("spiffe://"))
}

/// A TLS client config for meshd's discovery port, trusting only the roots in `pem_file` (the
/// mesh root from the `mesh-ca-root-cert` ConfigMap on Kubernetes). Read at each connection
/// attempt, so a rotated root is picked up.
pub fn meshd_client(pem_file: &std::path::Path) -> Result<Arc<ClientConfig>, String> {
    let pem = std::fs::read_to_string(pem_file)
        .map_err(|e| format!("cannot read meshd's root certificate {}: {e}", pem_file.display()))?;
    let roots = parse_bundle(&pem).map_err(|e| format!("{}: {e}", pem_file.display()))?;
    let config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

fn parse_bundle(pem: &str) -> Result<Arc<RootCertStore>, String> {
    let ders = pem_certs(pem).map_err(|e| format!("trust bundle: {e}"))?;
    let mut roots = RootCertStore::empty();
    for (i, der) in ders.into_iter().enumerate() {
        let info = CertInfo::from_der(&der).map_err(|e| format!("trust bundle certificate {}: {e}", i + 1))?;
        if !info.is_ca {
            return Err(format!("trust bundle certificate {} ({}) is not a CA", i + 1, info.subject));
        }
        roots.add(CertificateDer::from(der)).map_err(|e| format!("trust bundle certificate {}: {e}", i + 1))?;
    }
    Ok(Arc::new(roots))
}

impl Identity {
    pub fn new(id: SpiffeId) -> Identity {
        Identity {
            uri: id.to_string(),
            id,
            state: ArcSwap::from_pointee(TlsState {
                cert: None,
                bundle_pem: String::new(),
                bundle_version: String::new(),
                server: None,
                client: None,
                client_h2: None,
                client_tcp: None,
                renew_at: None,
                last_error: None,
                chain: Vec::new(),
                key: None,
            }),
            pending: Mutex::new(None),
        }
    }

    pub fn state(&self) -> arc_swap::Guard<Arc<TlsState>> {
        self.state.load()
    }

    pub fn has_cert(&self) -> bool {
        self.state.load().cert.is_some()
    }

    /// A fresh key pair and a CSR for this proxy's identity. The key stays here.
    pub fn new_csr(&self) -> Result<String, String> {
        let key = rcgen::KeyPair::generate().map_err(|e| format!("cannot generate a key pair: {e}"))?;
        let mut params = rcgen::CertificateParams::default();
        let uri = self.id.to_string().try_into().map_err(|e: rcgen::Error| e.to_string())?;
        params.subject_alt_names = vec![rcgen::SanType::URI(uri)];
        let csr = params.serialize_request(&key).map_err(|e| format!("cannot make a CSR: {e}"))?;
        let pem = csr.pem().map_err(|e| e.to_string())?;
        *self.pending.lock().unwrap_or_else(|p| p.into_inner()) = Some(key);
        Ok(pem)
    }

    /// Check and install a certificate meshd signed for our CSR, with the bundle it came with.
    pub fn install_cert(&self, cert_pem: &str, bundle_pem: &str) -> Result<(), String> {
        let roots = parse_bundle(bundle_pem)?;
        let ders = pem_certs(cert_pem).map_err(|e| format!("certificate: {e}"))?;
        let info = CertInfo::from_der(&ders[0]).map_err(|e| format!("certificate: {e}"))?;
        let me = &self.uri;
        if !info.uris.contains(me) {
            return Err(format!("certificate is for {:?}, not this proxy's identity {me}", info.uris));
        }
        if let Some(e) = info.validity_error(now_unix()) {
            return Err(e);
        }
        let chain: Vec<CertificateDer<'static>> = ders.into_iter().map(CertificateDer::from).collect();
        let parsed = ParsedCertificate::try_from(&chain[0]).map_err(|e| format!("certificate: {e}"))?;
        rustls::client::verify_server_cert_signed_by_trust_anchor(
            &parsed,
            &roots,
            &chain[1..],
            UnixTime::now(),
            provider().signature_verification_algorithms.all,
        )
        .map_err(|e| format!("certificate does not chain to the trust bundle: {e}"))?;
        let key = {
            let pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            let key = pending.as_ref().ok_or("no certificate request is pending")?;
            let (_, x509) = x509_parser::parse_x509_certificate(chain[0].as_ref()).map_err(|e| e.to_string())?;
            if x509.public_key().subject_public_key.data.as_ref() != key.public_key_raw() {
                return Err("certificate is not for the key of the pending request".into());
            }
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()))
        };
        // Renew at half the lifetime, with jitter so a fleet does not renew in lockstep.
        let life = (info.not_after_unix - now_unix()).max(0) as f64;
        let renew_in = Duration::from_secs_f64(life * (0.45 + fastrand::f64() * 0.1));
        self.rebuild(Some((chain, Arc::new(key), info)), roots, bundle_pem, Some(Instant::now() + renew_in))?;
        *self.pending.lock().unwrap_or_else(|p| p.into_inner()) = None;
        Ok(())
    }

    /// Install a new trust bundle, keeping the certificate.
    pub fn install_bundle(&self, bundle_pem: &str) -> Result<(), String> {
        let roots = parse_bundle(bundle_pem)?;
        let cur = self.state.load();
        let renew_at = cur.renew_at;
        let current = match (&cur.key, &cur.cert) {
            (Some(k), Some(info)) => Some((cur.chain.clone(), k.clone(), info.clone())),
            _ => None,
        };
        self.rebuild(current, roots, bundle_pem, renew_at)
    }

    fn rebuild(
        &self,
        cert: Option<(Vec<CertificateDer<'static>>, Arc<PrivateKeyDer<'static>>, CertInfo)>,
        roots: Arc<RootCertStore>,
        bundle_pem: &str,
        renew_at: Option<Instant>,
    ) -> Result<(), String> {
        let provider = provider();
        let (server, client, client_h2, client_tcp, chain, key, info) = match cert {
            Some((chain, key, info)) => {
                let verifier = WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone())
                    .build()
                    .map_err(|e| format!("trust bundle: {e}"))?;
                let mut server = ServerConfig::builder_with_provider(provider.clone())
                    .with_protocol_versions(&[&rustls::version::TLS13])
                    .map_err(|e| e.to_string())?
                    .with_client_cert_verifier(verifier)
                    .with_single_cert(chain.clone(), key.clone_key())
                    .map_err(|e| format!("certificate and key: {e}"))?;
                // The server's order decides: the exchange first (only TCP clients offer it).
                server.alpn_protocols = vec![ALPN_PEER_EXCHANGE.to_vec(), ALPN_H2.to_vec(), ALPN_HTTP11.to_vec()];
                let mut client = ClientConfig::builder_with_provider(provider.clone())
                    .with_protocol_versions(&[&rustls::version::TLS13])
                    .map_err(|e| e.to_string())?
                    .dangerous()
                    .with_custom_certificate_verifier(Arc::new(MeshServerVerifier { roots, provider }))
                    .with_client_auth_cert(chain.clone(), key.clone_key())
                    .map_err(|e| format!("certificate and key: {e}"))?;
                let mut client_tcp = client.clone();
                // `http/1.1` beside it so a proxy that predates the exchange (and refuses an
                // unknown ALPN) still accepts the connection, without one.
                client_tcp.alpn_protocols = vec![ALPN_PEER_EXCHANGE.to_vec(), ALPN_HTTP11.to_vec()];
                let mut client_h2 = client.clone();
                client.alpn_protocols = vec![ALPN_HTTP11.to_vec()];
                client_h2.alpn_protocols = vec![ALPN_H2.to_vec()];
                (
                    Some(Arc::new(server)),
                    Some(Arc::new(client)),
                    Some(Arc::new(client_h2)),
                    Some(Arc::new(client_tcp)),
                    chain,
                    Some(key),
                    Some(info),
                )
            }
            None => (None, None, None, None, Vec::new(), None, None),
        };
        self.state.store(Arc::new(TlsState {
            cert: info,
            bundle_pem: bundle_pem.to_string(),
            bundle_version: bundle_version(bundle_pem),
            server,
            client,
            client_h2,
            client_tcp,
            renew_at,
            last_error: None,
            chain,
            key,
        }));
        Ok(())
    }

    /// Record a problem (a refused CSR, a certificate that did not check out).
    pub fn set_error(&self, error: String) {
        let cur = self.state.load();
        self.state.store(Arc::new(TlsState {
            cert: cur.cert.clone(),
            bundle_pem: cur.bundle_pem.clone(),
            bundle_version: cur.bundle_version.clone(),
            server: cur.server.clone(),
            client: cur.client.clone(),
            client_h2: cur.client_h2.clone(),
            client_tcp: cur.client_tcp.clone(),
            renew_at: cur.renew_at,
            last_error: Some(error),
            chain: cur.chain.clone(),
            key: cur.key.clone(),
        }));
    }

    pub fn report(&self) -> IdentityReport {
        let s = self.state.load();
        IdentityReport { cert: s.cert.clone(), bundle_version: s.bundle_version.clone(), error: s.last_error.clone() }
    }

    /// Does the proxy need a certificate now (none, or its renewal time has come)?
    pub fn needs_cert(&self) -> bool {
        let s = self.state.load();
        s.cert.is_none() || s.renew_at.is_none_or(|t| Instant::now() >= t)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use rcgen::{BasicConstraints, CertificateParams, CertificateSigningRequestParams, IsCa, Issuer, KeyPair, SanType};

    use super::*;

    pub(crate) fn root() -> (String, Issuer<'static, KeyPair>) {
        let key = KeyPair::generate().expect("key");
        let mut p = CertificateParams::default();
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let cert = p.self_signed(&key).expect("root");
        let pem = cert.pem();
        (pem.clone(), Issuer::from_ca_cert_pem(&pem, key).expect("issuer"))
    }

    /// An identity for `sa` in `default`, with a certificate from `issuer`.
    pub(crate) fn issued(sa: &str, bundle: &str, issuer: &Issuer<'static, KeyPair>) -> Identity {
        let id = Identity::new(SpiffeId::new("cluster.local", "default", sa));
        let csr = id.new_csr().expect("csr");
        let uri = format!("spiffe://cluster.local/ns/default/sa/{sa}");
        id.install_cert(&sign(&csr, issuer, &uri, -60, 3600), bundle).expect("install");
        id
    }

    /// Sign the identity's pending CSR for `uri`, valid from `from` to `to` seconds from now.
    pub(crate) fn sign(csr: &str, issuer: &Issuer<'static, KeyPair>, uri: &str, from: i64, to: i64) -> String {
        let csr = CertificateSigningRequestParams::from_pem(csr).expect("csr");
        let mut p = CertificateParams::default();
        p.subject_alt_names = vec![SanType::URI(uri.to_string().try_into().expect("uri"))];
        let at = |s: i64| time_at(now_unix() + s);
        (p.not_before, p.not_after) = (at(from), at(to));
        p.use_authority_key_identifier_extension = true;
        p.signed_by(&csr.public_key, issuer).expect("sign").pem()
    }

    fn time_at(unix: i64) -> time::OffsetDateTime {
        time::OffsetDateTime::from_unix_timestamp(unix).expect("time")
    }

    const ME: &str = "spiffe://cluster.local/ns/default/sa/web";

    #[test]
    fn refuses_certificates_that_do_not_check_out() {
        let id = Identity::new(SpiffeId::new("cluster.local", "default", "web"));
        let (bundle, issuer) = root();
        let (other_bundle, _) = root();

        let csr = id.new_csr().expect("csr");
        let err = id.install_cert(&sign(&csr, &issuer, ME, -3600, -60), &bundle).expect_err("expired");
        assert!(err.contains("expired"), "{err}");
        let err = id.install_cert(&sign(&csr, &issuer, ME, 600, 3600), &bundle).expect_err("future");
        assert!(err.contains("not valid yet"), "{err}");
        let err = id
            .install_cert(&sign(&csr, &issuer, "spiffe://cluster.local/ns/default/sa/admin", -60, 3600), &bundle)
            .expect_err("other identity");
        assert!(err.contains("not this proxy's identity"), "{err}");
        let err = id.install_cert(&sign(&csr, &issuer, ME, -60, 3600), &other_bundle).expect_err("other root");
        assert!(err.contains("does not chain"), "{err}");
        assert!(id.install_cert("garbage", &bundle).is_err());
        assert!(id.install_cert(&sign(&csr, &issuer, ME, -60, 3600), "not a bundle").is_err());
        assert!(!id.has_cert(), "nothing was installed");

        id.install_cert(&sign(&csr, &issuer, ME, -60, 3600), &bundle).expect("good certificate");
        assert!(id.has_cert() && id.state().server.is_some() && id.state().client.is_some());
    }
}
