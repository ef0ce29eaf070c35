//! TLS with parties outside the mesh, from credentials meshd hands over or files on this
//! machine: the server configs of a Gateway's TLS servers (SIMPLE, MUTUAL, OPTIONAL_MUTUAL,
//! with their protocol versions and cipher suites) and the client configs of DestinationRule
//! TLS origination (SIMPLE, MUTUAL, checking the server's name or `subjectAltNames`).
//! The mesh's own mTLS is `tls.rs`.

use std::sync::Arc;

use mesh_api::cert::pem_certs;
use mesh_api::proxy_config::{GatewayTls, GatewayTlsMode, OriginateTls, Pem, TlsCredential};
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig, SignatureScheme};

use crate::tls::{ALPN_H2, ALPN_HTTP11};

/// The PEM text of `pem`, reading a file when it names one.
fn text(pem: &Pem, what: &str) -> Result<String, String> {
    match pem {
        Pem::Inline(t) => Ok(t.clone()),
        Pem::File(path) => std::fs::read_to_string(path).map_err(|e| format!("cannot read the {what} {path}: {e}")),
    }
}

fn chain_and_key(c: &TlsCredential) -> Result<Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>, String> {
    let (Some(chain), Some(key)) = (&c.cert_chain, &c.private_key) else { return Ok(None) };
    let chain = text(chain, "certificate")?;
    let certs = pem_certs(&chain).map_err(|e| format!("{}: the certificate: {e}", c.source))?;
    let key = PrivateKeyDer::from_pem_slice(text(key, "private key")?.as_bytes())
        .map_err(|e| format!("{}: the private key: {e}", c.source))?;
    Ok(Some((certs.into_iter().map(CertificateDer::from).collect(), key)))
}

fn roots(c: &TlsCredential) -> Result<Option<Arc<RootCertStore>>, String> {
    let Some(ca) = &c.ca else { return Ok(None) };
    let ders = pem_certs(&text(ca, "CA bundle")?).map_err(|e| format!("{}: the CA bundle: {e}", c.source))?;
    let mut store = RootCertStore::empty();
    for der in ders {
        store.add(CertificateDer::from(der)).map_err(|e| format!("{}: the CA bundle: {e}", c.source))?;
    }
    Ok(Some(Arc::new(store)))
}

/// The TLS 1.2 suites by the OpenSSL names Istio and Envoy take.
fn suite_name(s: &rustls::SupportedCipherSuite) -> Option<&'static str> {
    use rustls::CipherSuite as C;
    Some(match s.suite() {
        C::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 => "ECDHE-ECDSA-AES128-GCM-SHA256",
        C::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 => "ECDHE-RSA-AES128-GCM-SHA256",
        C::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384 => "ECDHE-ECDSA-AES256-GCM-SHA384",
        C::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384 => "ECDHE-RSA-AES256-GCM-SHA384",
        C::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256 => "ECDHE-ECDSA-CHACHA20-POLY1305",
        C::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256 => "ECDHE-RSA-CHACHA20-POLY1305",
        _ => return None,
    })
}

/// ring's provider, its TLS 1.2 suites cut to `names` when any are given (TLS 1.3's stay, as
/// in Envoy, where `cipherSuites` applies to TLS 1.2 and below), and its key-exchange groups
/// to `curves` (Envoy's names) when any are given.
fn provider_with(names: &[String], curves: &[String]) -> Result<Arc<CryptoProvider>, String> {
    let mut p = rustls::crypto::ring::default_provider();
    if !curves.is_empty() {
        let known = |n: &str| match n {
            "X25519" => Some(rustls::NamedGroup::X25519),
            "P-256" | "prime256v1" | "secp256r1" => Some(rustls::NamedGroup::secp256r1),
            "P-384" | "secp384r1" => Some(rustls::NamedGroup::secp384r1),
            _ => None,
        };
        let wanted: Vec<rustls::NamedGroup> = curves
            .iter()
            .map(|c| known(c).ok_or_else(|| format!("unknown ECDH curve {c:?}")))
            .collect::<Result<_, _>>()?;
        p.kx_groups.retain(|g| wanted.contains(&g.name()));
        if p.kx_groups.is_empty() {
            return Err(format!("none of the ECDH curves {curves:?} is supported"));
        }
    }
    if !names.is_empty() {
        p.cipher_suites.retain(|s| {
            s.version() == &rustls::version::TLS13 || suite_name(s).is_some_and(|n| names.iter().any(|x| x == n))
        });
        if !p.cipher_suites.iter().any(|s| s.version() == &rustls::version::TLS12) {
            return Err(format!("none of the cipher suites {names:?} is supported for TLS 1.2"));
        }
    }
    Ok(Arc::new(p))
}

/// The protocol versions from Istio's `minProtocolVersion`/`maxProtocolVersion` (rustls
/// speaks TLS 1.2 and 1.3; a minimum below 1.2 is 1.2).
fn versions(min: Option<&str>, max: Option<&str>) -> Result<Vec<&'static rustls::SupportedProtocolVersion>, String> {
    let rank = |v: &str| match v {
        "TLSV1_0" => Ok(10),
        "TLSV1_1" => Ok(11),
        "TLSV1_2" => Ok(12),
        "TLSV1_3" => Ok(13),
        other => Err(format!("unknown TLS version {other:?}")),
    };
    let lo = min.map(rank).transpose()?.unwrap_or(12);
    let hi = max.map(rank).transpose()?.unwrap_or(13);
    let out: Vec<_> = [(12, &rustls::version::TLS12), (13, &rustls::version::TLS13)]
        .into_iter()
        .filter(|(r, _)| (lo..=hi).contains(r))
        .map(|(_, v)| v)
        .collect();
    if out.is_empty() {
        return Err(format!(
            "no TLS version between {} and {} is supported (TLS 1.2 and 1.3 are)",
            min.unwrap_or("-"),
            max.unwrap_or("-")
        ));
    }
    Ok(out)
}

/// A Gateway TLS server: the hosts it serves by SNI, and how it takes a connection.
pub struct GatewayServer {
    pub name: String,
    pub hosts: Vec<String>,
    pub mode: GatewayTlsMode,
    /// SIMPLE, MUTUAL, OPTIONAL_MUTUAL: the config, or why there is none.
    pub config: Result<Arc<ServerConfig>, String>,
    /// MUTUAL: a client certificate must name one of these (DNS or URI SAN).
    pub subject_alt_names: Vec<String>,
    /// MUTUAL: pinned SHA-256 of the client key (base64) or certificate (lowercase hex).
    pub spki: Vec<String>,
    pub hashes: Vec<String>,
}

impl std::fmt::Debug for GatewayServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewayServer")
            .field("name", &self.name)
            .field("hosts", &self.hosts)
            .field("mode", &self.mode)
            .field("ready", &self.config.as_ref().map(|_| ()))
            .finish()
    }
}

impl GatewayServer {
    /// `http`: the server carries HTTP (ALPN h2 and http/1.1); else raw TCP.
    pub fn compile(g: &GatewayTls, http: bool) -> GatewayServer {
        let config = match (&g.error, g.mode.terminates() && g.mode != GatewayTlsMode::IstioMutual) {
            (_, false) => Err("not terminated with a credential".to_string()),
            (Some(e), true) => Err(e.clone()),
            (None, true) => server_config(g, http),
        };
        let hex = |h: &String| h.replace(':', "").to_ascii_lowercase();
        GatewayServer {
            name: g.name.clone(),
            hosts: g.hosts.clone(),
            mode: g.mode,
            config,
            subject_alt_names: g.subject_alt_names.clone(),
            spki: g.verify_certificate_spki.clone(),
            hashes: g.verify_certificate_hash.iter().map(hex).collect(),
        }
    }

    /// How well `sni` fits this server: exact 3, `*.suffix` 2, `*` 1, not at all None.
    fn fit(&self, sni: Option<&str>) -> Option<u8> {
        self.hosts
            .iter()
            .filter_map(|h| match sni {
                _ if h == "*" => Some(1),
                Some(s) if s.eq_ignore_ascii_case(h) => Some(3),
                Some(s) => h
                    .strip_prefix('*')
                    .filter(|suffix| s.len() > suffix.len() && s.to_ascii_lowercase().ends_with(suffix))
                    .map(|_| 2),
                None => None,
            })
            .max()
    }

    /// Whether a client certificate carries one of `subject_alt_names`, and its key's or its
    /// own SHA-256 is one of those pinned (each check only when its list is given).
    pub fn admits_client(&self, certs: Option<&[CertificateDer<'_>]>) -> bool {
        if self.subject_alt_names.is_empty() && self.spki.is_empty() && self.hashes.is_empty() {
            return true;
        }
        let Some(leaf) = certs.and_then(|c| c.first()) else { return self.mode == GatewayTlsMode::OptionalMutual };
        if !self.subject_alt_names.is_empty() {
            let Ok(info) = mesh_api::cert::CertInfo::from_der(leaf.as_ref()) else { return false };
            if !info.dns_names.iter().chain(info.uris.iter()).any(|n| self.subject_alt_names.iter().any(|s| s == n)) {
                return false;
            }
        }
        if self.hashes.is_empty() && self.spki.is_empty() {
            return true;
        }
        // Envoy: when both lists are given, a match in either accepts the certificate.
        let sha256 = |b: &[u8]| ring::digest::digest(&ring::digest::SHA256, b);
        let by_hash = !self.hashes.is_empty() && {
            let hex: String = sha256(leaf.as_ref()).as_ref().iter().map(|b| format!("{b:02x}")).collect();
            self.hashes.contains(&hex)
        };
        let by_spki = !self.spki.is_empty()
            && x509_parser::parse_x509_certificate(leaf.as_ref()).is_ok_and(|(_, cert)| {
                use base64::Engine as _;
                let digest = sha256(cert.tbs_certificate.subject_pki.raw);
                self.spki.contains(&base64::engine::general_purpose::STANDARD.encode(digest.as_ref()))
            });
        by_hash || by_spki
    }
}

/// The server on a port that a ClientHello's SNI picks: an exact host, then the longest
/// wildcard, then `*`. None: no server takes it (the connection is closed, as Envoy does
/// without a matching filter chain).
pub fn pick<'a>(servers: &'a [GatewayServer], sni: Option<&str>) -> Option<&'a GatewayServer> {
    servers.iter().filter_map(|s| Some((s.fit(sni)?, s))).max_by_key(|(f, _)| *f).map(|(_, s)| s)
}

fn server_config(g: &GatewayTls, http: bool) -> Result<Arc<ServerConfig>, String> {
    let c = g.credential.as_ref().ok_or("no credential")?;
    let (chain, key) = chain_and_key(c)?.ok_or_else(|| format!("{} has no certificate and key", c.source))?;
    let provider = provider_with(&g.cipher_suites, &g.ecdh_curves)?;
    let versions = versions(g.min_version.as_deref(), g.max_version.as_deref())?;
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions)
        .map_err(|e| e.to_string())?;
    let builder = match g.mode {
        GatewayTlsMode::Mutual | GatewayTlsMode::OptionalMutual => {
            let roots = roots(c)?.ok_or_else(|| format!("{} has no CA bundle for client certificates", c.source))?;
            let mut verifier = WebPkiClientVerifier::builder_with_provider(roots, provider.clone());
            if let Some(crl) = &c.crl {
                use rustls::pki_types::pem::PemObject;
                let crls: Vec<rustls::pki_types::CertificateRevocationListDer<'static>> =
                    rustls::pki_types::CertificateRevocationListDer::pem_slice_iter(text(crl, "CRL")?.as_bytes())
                        .collect::<Result<_, _>>()
                        .map_err(|e| format!("{}: the CRL: {e}", c.source))?;
                if crls.is_empty() {
                    return Err(format!("{}: the CRL file holds no X509 CRL", c.source));
                }
                verifier = verifier.with_crls(crls);
            }
            let verifier =
                if g.mode == GatewayTlsMode::OptionalMutual { verifier.allow_unauthenticated() } else { verifier };
            builder
                .with_client_cert_verifier(verifier.build().map_err(|e| format!("{}: the CA bundle: {e}", c.source))?)
        }
        _ => builder.with_no_client_auth(),
    };
    let mut config = if g.more_credentials.is_empty() {
        builder.with_single_cert(chain, key).map_err(|e| format!("{}: certificate and key: {e}", c.source))?
    } else {
        let mut keys = Vec::new();
        let pairs = std::iter::once(Ok((c, chain, key))).chain(g.more_credentials.iter().map(|m| {
            chain_and_key(m)?
                .map(|(ch, k)| (m, ch, k))
                .ok_or_else(|| format!("{} has no certificate and key", m.source))
        }));
        for pair in pairs {
            let (from, chain, key) = pair?;
            let key = provider
                .key_provider
                .load_private_key(key)
                .map_err(|e| format!("{}: the private key: {e}", from.source))?;
            keys.push(Arc::new(rustls::sign::CertifiedKey::new(chain, key)));
        }
        builder.with_cert_resolver(Arc::new(ByScheme(keys)))
    };
    if http {
        config.alpn_protocols = vec![ALPN_H2.to_vec(), ALPN_HTTP11.to_vec()];
    }
    Ok(Arc::new(config))
}

/// Several certificates for one server (RSA beside ECDSA, as Istio's `credentialNames`): the
/// first whose key can sign with a scheme the client offers.
#[derive(Debug)]
struct ByScheme(Vec<Arc<rustls::sign::CertifiedKey>>);

impl rustls::server::ResolvesServerCert for ByScheme {
    fn resolve(&self, hello: rustls::server::ClientHello<'_>) -> Option<Arc<rustls::sign::CertifiedKey>> {
        let schemes = hello.signature_schemes();
        self.0.iter().find(|k| k.key.choose_scheme(schemes).is_some()).or(self.0.first()).cloned()
    }
}

/// Checks a server's certificate against the roots, for the SNI name or, when
/// `subjectAltNames` are given, for any one of them; or not at all (`insecureSkipVerify`).
#[derive(Debug)]
struct OriginVerifier {
    inner: Option<Arc<WebPkiServerVerifier>>,
    names: Vec<ServerName<'static>>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for OriginVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(inner) = &self.inner else { return Ok(ServerCertVerified::assertion()) };
        if self.names.is_empty() {
            return inner.verify_server_cert(end_entity, intermediates, server_name, ocsp, now);
        }
        let mut last = None;
        for name in &self.names {
            match inner.verify_server_cert(end_entity, intermediates, name, ocsp, now) {
                Ok(v) => return Ok(v),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or(rustls::Error::General("no subjectAltNames to check".into())))
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

/// TLS origination for one cluster: the client config and the name sent as SNI.
pub struct Origin {
    /// ALPN http/1.1, and h2.
    pub http1: Arc<ClientConfig>,
    pub h2: Arc<ClientConfig>,
    /// Raw TCP: no ALPN.
    pub tcp: Arc<ClientConfig>,
    pub server_name: ServerName<'static>,
}

impl std::fmt::Debug for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Origin").field("server_name", &self.server_name).finish()
    }
}

impl Origin {
    pub fn compile(o: &OriginateTls) -> Result<Origin, String> {
        if let Some(e) = &o.error {
            return Err(e.clone());
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let server_name =
            ServerName::try_from(o.sni.clone()).map_err(|e| format!("TLS origination: SNI {:?}: {e}", o.sni))?;
        let names = o
            .subject_alt_names
            .iter()
            .map(|n| ServerName::try_from(n.clone()).map_err(|e| format!("TLS origination: subjectAltName {n:?}: {e}")))
            .collect::<Result<Vec<_>, _>>()?;
        let roots = match roots(&o.credential)? {
            Some(r) => r,
            None => Arc::new(RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() }),
        };
        let inner = if o.insecure_skip_verify {
            None
        } else {
            Some(
                WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
                    .build()
                    .map_err(|e| format!("TLS origination: the CA bundle: {e}"))?,
            )
        };
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(OriginVerifier { inner, names, provider }));
        let tcp = match chain_and_key(&o.credential)? {
            Some((chain, key)) if o.mutual => builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| format!("{}: certificate and key: {e}", o.credential.source))?,
            None if o.mutual => return Err("MUTUAL TLS origination has no client certificate".into()),
            _ => builder.with_no_client_auth(),
        };
        let mut http1 = tcp.clone();
        http1.alpn_protocols = vec![ALPN_HTTP11.to_vec()];
        let mut h2 = tcp.clone();
        h2.alpn_protocols = vec![ALPN_H2.to_vec()];
        Ok(Origin { http1: Arc::new(http1), h2: Arc::new(h2), tcp: Arc::new(tcp), server_name })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(hosts: &[&str]) -> GatewayServer {
        GatewayServer {
            name: hosts.join(","),
            hosts: hosts.iter().map(|h| h.to_string()).collect(),
            mode: GatewayTlsMode::Simple,
            config: Err("test".into()),
            subject_alt_names: Vec::new(),
            spki: Vec::new(),
            hashes: Vec::new(),
        }
    }

    #[test]
    fn sni_picks_exact_then_longest_wildcard_then_any() {
        let servers = [server(&["*"]), server(&["*.example.com"]), server(&["a.example.com"])];
        assert_eq!(pick(&servers, Some("a.example.com")).map(|s| s.name.as_str()), Some("a.example.com"));
        assert_eq!(pick(&servers, Some("B.example.com")).map(|s| s.name.as_str()), Some("*.example.com"));
        assert_eq!(pick(&servers, Some("example.org")).map(|s| s.name.as_str()), Some("*"));
        assert_eq!(pick(&servers, None).map(|s| s.name.as_str()), Some("*"));
        assert!(pick(&servers[1..], None).is_none(), "no SNI and no `*` server: nothing");
        assert!(pick(&servers[1..], Some("example.com")).is_none(), "`*.example.com` does not take the bare domain");
    }

    #[test]
    fn versions_follow_istios_names() {
        assert_eq!(versions(Some("TLSV1_3"), None).map(|v| v.len()), Ok(1));
        assert_eq!(versions(Some("TLSV1_0"), Some("TLSV1_2")).map(|v| v.len()), Ok(1));
        assert!(versions(None, Some("TLSV1_1")).is_err(), "rustls has nothing below 1.2");
        assert!(provider_with(&["ECDHE-RSA-AES128-GCM-SHA256".into()], &[]).is_ok());
        assert!(provider_with(&["AES128-SHA".into()], &[]).is_err());
        assert!(provider_with(&[], &["P-384".into()]).is_ok_and(|p| p.kx_groups.len() == 1));
        assert!(provider_with(&[], &["P-521".into()]).is_err());
    }
}
