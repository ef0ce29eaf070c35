//! The mesh CA (Istio's Citadel): a root made at install or the user's own (plug-in) CA,
//! kept in `MESH_HOME/ca.json` (0600); workload certificates signed from proxies' CSRs; a
//! trust bundle that may hold several roots, so a root is rotated with no downtime.
//!
//! Discovery sessions watch a `CaView` and reconcile each proxy against it: a proxy whose
//! trust bundle is not the current one is sent the bundle; one whose certificate was not
//! signed by the current signing root is asked to renew.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mesh_api::cert::{CertInfo, bundle_version};
use mesh_api::identity::SpiffeId;
use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType, SerialNumber,
};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

/// Largest CSR meshd reads; a P-256 or RSA-4096 request is well under this.
pub const MAX_CSR_BYTES: usize = 8 * 1024;
/// Istio's default workload certificate lifetime.
pub const DEFAULT_WORKLOAD_TTL: Duration = Duration::from_secs(24 * 3600);
const ROOT_TTL: Duration = Duration::from_secs(10 * 365 * 24 * 3600);
/// Certificates start a little in the past, so clocks a bit behind still accept them.
const BACKDATE: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum CaError {
    #[error("{0}")]
    Invalid(String),
    #[error("cannot {what} {path}: {source}")]
    Io { what: &'static str, path: PathBuf, source: std::io::Error },
    #[error("signing failed: {0}")]
    Sign(String),
}

fn invalid(msg: impl Into<String>) -> CaError {
    CaError::Invalid(msg.into())
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct StoredRoot {
    /// The signing CA's certificate: a self-signed root, or a plug-in intermediate.
    cert_pem: String,
    key_pem: String,
    /// For an intermediate: the CAs between it and the root, served after every certificate
    /// it signs (Istio's `cert-chain.pem` without the intermediate itself and the root).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    chain_pem: String,
    /// For an intermediate: the root it chains to, which proxies trust (Istio's
    /// `root-cert.pem`). Empty when `cert_pem` is the root.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    root_pem: String,
}

impl StoredRoot {
    fn own(cert_pem: String, key_pem: String) -> StoredRoot {
        StoredRoot { cert_pem, key_pem, chain_pem: String::new(), root_pem: String::new() }
    }

    /// What proxies trust for this entry: the root.
    fn anchor_pem(&self) -> &str {
        if self.root_pem.is_empty() { &self.cert_pem } else { &self.root_pem }
    }

    /// What follows a certificate this entry signs: nothing for a root; the intermediate and
    /// the CAs above it, up to (not including) the root.
    fn served_chain(&self) -> String {
        if self.root_pem.is_empty() {
            return String::new();
        }
        let mut out = String::new();
        for pem in [&self.cert_pem, &self.chain_pem] {
            if !pem.trim().is_empty() {
                out.push_str(pem.trim_end());
                out.push('\n');
            }
        }
        out
    }
}

/// A user's own CA in Istio's plug-in format.
pub struct PlugIn<'a> {
    /// `ca-cert.pem`: the CA that signs (a root, or an intermediate under `root`).
    pub cert_pem: &'a str,
    /// `ca-key.pem`.
    pub key_pem: &'a str,
    /// `cert-chain.pem`: the chain from `ca-cert.pem` up to the root (either end may be
    /// included or left out).
    pub chain_pem: Option<&'a str>,
    /// `root-cert.pem`: the root proxies trust; needed when `ca-cert.pem` is an intermediate.
    pub root_pem: Option<&'a str>,
}

/// `ca.json`: every trusted root with its key, and which one signs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct CaFile {
    roots: Vec<StoredRoot>,
    signer: usize,
}

/// What discovery sessions and the API read.
#[derive(Debug, Clone, Default)]
pub struct CaView {
    pub trust_domain: String,
    pub bundle_pem: String,
    pub bundle_version: String,
    /// The trust bundle's roots.
    pub roots: Vec<CertInfo>,
    /// The key that signs workload certificates (a root's, or a plug-in intermediate's).
    pub signer_key_id: String,
    /// The key of the root that the signer chains to (the signer's own when it is the root).
    pub signing_root_key_id: String,
    /// Renewal requests: `*` for every proxy, else a proxy id; the value only grows.
    pub renew: BTreeMap<String, u64>,
}

impl CaView {
    /// The newest renewal request that concerns proxy `id`.
    pub fn renew_epoch(&self, id: &str) -> u64 {
        self.renew.get("*").copied().unwrap_or(0).max(self.renew.get(id).copied().unwrap_or(0))
    }
}

struct Signer {
    issuer: Issuer<'static, KeyPair>,
    info: CertInfo,
    /// PEM after each certificate signed: the intermediates, when the signer is one.
    chain: String,
}

struct Inner {
    file: CaFile,
    signer: Arc<Signer>,
    renew_counter: u64,
}

pub struct Ca {
    path: PathBuf,
    trust_domain: String,
    workload_ttl: Duration,
    inner: Mutex<Inner>,
    view: watch::Sender<Arc<CaView>>,
    /// One root rotation at a time.
    pub rotation: tokio::sync::Mutex<()>,
    /// Bumped whenever this meshd changes the roots itself (a rotation step), so that on a
    /// cluster the new state goes to the shared Secret.
    changed: watch::Sender<u64>,
}

fn now_unix() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

fn offset(t: SystemTime) -> time::OffsetDateTime {
    time::OffsetDateTime::from(t)
}

/// Check a root certificate and its key; returns the certificate's facts.
fn check_root(cert_pem: &str, key_pem: &str, what: &str) -> Result<(CertInfo, KeyPair), CaError> {
    let ders = mesh_api::cert::pem_certs(cert_pem).map_err(|e| invalid(format!("{what} certificate: {e}")))?;
    let info = CertInfo::from_der(&ders[0]).map_err(|e| invalid(format!("{what} certificate: {e}")))?;
    if !info.is_ca {
        return Err(invalid(format!(
            "{what} certificate ({}) is not a CA certificate (basicConstraints CA:TRUE is missing)",
            info.subject
        )));
    }
    if let Some(e) = info.validity_error(now_unix()) {
        return Err(invalid(format!("{what} certificate: {e}")));
    }
    let key = KeyPair::from_pem(key_pem).map_err(|e| {
        invalid(format!("{what} key: not a PEM private key rcgen can use (PKCS#8 ECDSA/Ed25519/RSA): {e}"))
    })?;
    let (_, x509) =
        x509_parser::parse_x509_certificate(&ders[0]).map_err(|e| invalid(format!("{what} certificate: {e}")))?;
    if x509.public_key().subject_public_key.data.as_ref() != key.public_key_raw() {
        return Err(invalid(format!("{what} key does not belong to the {what} certificate ({})", info.subject)));
    }
    Ok((info, key))
}

fn new_root(trust_domain: &str) -> Result<StoredRoot, CaError> {
    let key = KeyPair::generate().map_err(|e| CaError::Sign(e.to_string()))?;
    let mut params = CertificateParams::default();
    let mut tag = [0u8; 4];
    getrandom::fill(&mut tag).map_err(|e| CaError::Sign(e.to_string()))?;
    let tag: String = tag.iter().map(|b| format!("{b:02x}")).collect();
    params.distinguished_name.push(DnType::OrganizationName, trust_domain);
    params.distinguished_name.push(DnType::CommonName, format!("mesh root CA {tag}"));
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    let now = SystemTime::now();
    params.not_before = offset(now - BACKDATE);
    params.not_after = offset(now + ROOT_TTL);
    params.serial_number = Some(random_serial()?);
    let cert = params.self_signed(&key).map_err(|e| CaError::Sign(e.to_string()))?;
    Ok(StoredRoot::own(cert.pem(), key.serialize_pem()))
}

fn random_serial() -> Result<SerialNumber, CaError> {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).map_err(|e| CaError::Sign(e.to_string()))?;
    b[0] &= 0x7f; // positive
    b[0] |= 0x01; // no leading zero byte to strip
    Ok(SerialNumber::from_slice(&b))
}

fn load_signer(root: &StoredRoot) -> Result<Signer, CaError> {
    let (info, key) = check_root(&root.cert_pem, &root.key_pem, "signing root")?;
    let issuer =
        Issuer::from_ca_cert_pem(&root.cert_pem, key).map_err(|e| invalid(format!("signing root certificate: {e}")))?;
    Ok(Signer { issuer, info, chain: root.served_chain() })
}

/// Check that `ders[0]` chains, through the rest of `ders` in order, to one of `roots`, by
/// signature; every certificate on the way must be a CA valid now.
fn check_chain(ders: &[Vec<u8>], roots: &[Vec<u8>]) -> Result<(), CaError> {
    fn parse(der: &[u8]) -> Result<x509_parser::certificate::X509Certificate<'_>, CaError> {
        x509_parser::parse_x509_certificate(der).map(|(_, c)| c).map_err(|e| invalid(format!("cert-chain.pem: {e}")))
    }
    for (i, der) in ders.iter().enumerate() {
        let cert = parse(der)?;
        let issuers: Vec<&Vec<u8>> = match ders.get(i + 1) {
            Some(next) => vec![next],
            None => roots.iter().collect(),
        };
        let signed = issuers.iter().any(|issuer| {
            parse(issuer).is_ok_and(|issuer| {
                issuer.subject() == cert.issuer() && cert.verify_signature(Some(issuer.public_key())).is_ok()
            })
        });
        if !signed {
            let by = if i + 1 < ders.len() { "the next certificate of cert-chain.pem" } else { "root-cert.pem" };
            return Err(invalid(format!("{} (issued by {}) is not signed by {by}", cert.subject(), cert.issuer())));
        }
    }
    Ok(())
}

/// Check a plug-in CA (Istio's `cacerts` files) and turn it into what `ca.json` stores.
fn plug_in_entry(p: &PlugIn<'_>) -> Result<(CertInfo, StoredRoot), CaError> {
    let (info, _) = check_root(p.cert_pem, p.key_pem, "CA")?;
    let cert_ders = mesh_api::cert::pem_certs(p.cert_pem).map_err(|e| invalid(format!("ca-cert.pem: {e}")))?;
    let own = StoredRoot::own(p.cert_pem.to_string(), p.key_pem.to_string());
    let Some(root_pem) = p.root_pem.filter(|r| !r.trim().is_empty()) else {
        if info.subject != info.issuer {
            return Err(invalid(format!(
                "ca-cert.pem ({}) is an intermediate issued by {}: root-cert.pem (and cert-chain.pem when there are CAs between them) is needed",
                info.subject, info.issuer
            )));
        }
        return Ok((info, own));
    };
    let roots = mesh_api::cert::pem_certs(root_pem).map_err(|e| invalid(format!("root-cert.pem: {e}")))?;
    for der in &roots {
        let root = CertInfo::from_der(der).map_err(|e| invalid(format!("root-cert.pem: {e}")))?;
        if !root.is_ca {
            return Err(invalid(format!("root-cert.pem ({}) is not a CA certificate", root.subject)));
        }
        if let Some(e) = root.validity_error(now_unix()) {
            return Err(invalid(format!("root-cert.pem ({}): {e}", root.subject)));
        }
    }
    if roots.contains(&cert_ders[0]) {
        // ca-cert.pem is the root itself.
        return Ok((info, own));
    }
    // The CAs between ca-cert.pem and the root, in order, as cert-chain.pem lists them.
    let chain = match p.chain_pem.filter(|c| !c.trim().is_empty()) {
        Some(c) => mesh_api::cert::pem_certs(c).map_err(|e| invalid(format!("cert-chain.pem: {e}")))?,
        None => Vec::new(),
    };
    let between: Vec<Vec<u8>> = chain.into_iter().filter(|d| *d != cert_ders[0] && !roots.contains(d)).collect();
    let mut path = vec![cert_ders[0].clone()];
    path.extend(between.iter().cloned());
    check_chain(&path, &roots)?;
    for der in &between {
        let ca = CertInfo::from_der(der).map_err(|e| invalid(format!("cert-chain.pem: {e}")))?;
        if !ca.is_ca {
            return Err(invalid(format!("cert-chain.pem: {} is not a CA certificate", ca.subject)));
        }
        if let Some(e) = ca.validity_error(now_unix()) {
            return Err(invalid(format!("cert-chain.pem ({}): {e}", ca.subject)));
        }
    }
    let chain_pem = between.iter().map(|d| der_to_pem(d)).collect();
    Ok((info, StoredRoot { chain_pem, root_pem: root_pem.to_string(), ..own }))
}

/// A certificate's DER as PEM.
fn der_to_pem(der: &[u8]) -> String {
    pem::encode(&pem::Pem::new("CERTIFICATE", der))
}

impl Ca {
    /// Open the CA in `path`, creating a root when there is none.
    pub fn open(path: &Path, trust_domain: &str, workload_ttl: Duration) -> Result<Ca, CaError> {
        let file = match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice::<CaFile>(&bytes)
                .map_err(|e| invalid(format!("{} is not a valid CA file: {e}", path.display())))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let file = CaFile { roots: vec![new_root(trust_domain)?], signer: 0 };
                write(path, &file)?;
                file
            }
            Err(source) => return Err(CaError::Io { what: "read", path: path.to_path_buf(), source }),
        };
        let signer = file
            .roots
            .get(file.signer)
            .ok_or_else(|| invalid(format!("{}: signer index {} is out of range", path.display(), file.signer)))?;
        let signer = Arc::new(load_signer(signer)?);
        let ca = Ca {
            path: path.to_path_buf(),
            trust_domain: trust_domain.to_string(),
            workload_ttl,
            inner: Mutex::new(Inner { file, signer, renew_counter: 0 }),
            view: watch::channel(Arc::new(CaView::default())).0,
            rotation: tokio::sync::Mutex::new(()),
            changed: watch::channel(0).0,
        };
        {
            let inner = ca.lock();
            ca.publish(&inner, BTreeMap::new())?;
        }
        Ok(ca)
    }

    /// Install the user's own CA (`mesh install --set ca.cert=... --set ca.key=...`, or the
    /// `cacerts` Secret): everything is checked (parses, CAs valid now, key matches, an
    /// intermediate chains to the root by signature) before anything is written.
    pub fn import(path: &Path, plug_in: &PlugIn<'_>) -> Result<CertInfo, CaError> {
        let (info, entry) = plug_in_entry(plug_in)?;
        write(path, &CaFile { roots: vec![entry], signer: 0 })?;
        Ok(info)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn publish(&self, inner: &Inner, renew: BTreeMap<String, u64>) -> Result<(), CaError> {
        let mut roots = Vec::new();
        let mut bundle = String::new();
        let mut signing_root_key_id = String::new();
        for (i, r) in inner.file.roots.iter().enumerate() {
            for der in mesh_api::cert::pem_certs(r.anchor_pem()).map_err(invalid)? {
                let root = CertInfo::from_der(&der).map_err(invalid)?;
                if i == inner.file.signer && signing_root_key_id.is_empty() {
                    signing_root_key_id = root.key_id.clone();
                }
                roots.push(root);
            }
            bundle.push_str(r.anchor_pem().trim_end());
            bundle.push('\n');
        }
        let view = CaView {
            trust_domain: self.trust_domain.clone(),
            bundle_version: bundle_version(&bundle),
            bundle_pem: bundle,
            roots,
            signer_key_id: inner.signer.info.key_id.clone(),
            signing_root_key_id,
            renew,
        };
        self.view.send_replace(Arc::new(view));
        Ok(())
    }

    pub fn subscribe(&self) -> watch::Receiver<Arc<CaView>> {
        self.view.subscribe()
    }

    pub fn view(&self) -> Arc<CaView> {
        self.view.borrow().clone()
    }

    pub fn trust_domain(&self) -> &str {
        &self.trust_domain
    }

    /// Sign a proxy's CSR for `id`. The CSR's signature is checked and it must ask for exactly
    /// that identity; everything else in it is ignored (meshd decides lifetime and usage).
    pub fn sign(&self, csr_pem: &str, id: &SpiffeId) -> Result<String, CaError> {
        if csr_pem.len() > MAX_CSR_BYTES {
            return Err(invalid(format!("CSR is {} bytes; the limit is {MAX_CSR_BYTES}", csr_pem.len())));
        }
        let csr = CertificateSigningRequestParams::from_pem(csr_pem)
            .map_err(|e| invalid(format!("CSR is not a valid PEM certificate request: {e}")))?;
        let uris: Vec<String> = csr
            .params
            .subject_alt_names
            .iter()
            .filter_map(|s| if let SanType::URI(u) = s { Some(u.to_string()) } else { None })
            .collect();
        let [uri] = uris.as_slice() else {
            return Err(invalid(format!("CSR must ask for exactly one SPIFFE URI, it asks for {}", uris.len())));
        };
        let asked = SpiffeId::parse(uri).map_err(|e| invalid(format!("CSR: {e}")))?;
        if asked.trust_domain != id.trust_domain {
            return Err(invalid(format!(
                "CSR asks for trust domain {:?}; this mesh's trust domain is {:?}",
                asked.trust_domain, id.trust_domain
            )));
        }
        if asked != *id {
            return Err(invalid(format!("CSR asks for {asked}, but this proxy may only have {id}")));
        }
        let signer = self.lock().signer.clone();
        let now = SystemTime::now();
        let root_end = UNIX_EPOCH + Duration::from_secs(u64::try_from(signer.info.not_after_unix).unwrap_or(0));
        let mut params = CertificateParams::default();
        params.subject_alt_names =
            vec![SanType::URI(id.to_string().try_into().map_err(|e: rcgen::Error| invalid(e.to_string()))?)];
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.distinguished_name.push(DnType::OrganizationName, id.trust_domain.as_str());
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
        params.use_authority_key_identifier_extension = true;
        params.not_before = offset(now - BACKDATE);
        params.not_after = offset((now + self.workload_ttl).min(root_end));
        params.serial_number = Some(random_serial()?);
        let cert = params.signed_by(&csr.public_key, &signer.issuer).map_err(|e| CaError::Sign(e.to_string()))?;
        Ok(cert.pem() + &signer.chain)
    }

    /// A TLS server certificate for meshd itself (its webhooks), for these DNS names, signed by
    /// the current signing root; returns (certificate PEM, private key PEM).
    pub fn issue_server(&self, dns_names: &[String]) -> Result<(String, String), CaError> {
        let key = KeyPair::generate().map_err(|e| CaError::Sign(e.to_string()))?;
        let signer = self.lock().signer.clone();
        let now = SystemTime::now();
        let root_end = UNIX_EPOCH + Duration::from_secs(u64::try_from(signer.info.not_after_unix).unwrap_or(0));
        let mut params = CertificateParams::new(dns_names.to_vec()).map_err(|e| CaError::Sign(e.to_string()))?;
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, dns_names.first().map(String::as_str).unwrap_or("meshd"));
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        params.not_before = offset(now - BACKDATE);
        params.not_after = offset((now + Duration::from_secs(365 * 24 * 3600)).min(root_end));
        params.serial_number = Some(random_serial()?);
        let cert = params.signed_by(&key, &signer.issuer).map_err(|e| CaError::Sign(e.to_string()))?;
        Ok((cert.pem() + &signer.chain, key.serialize_pem()))
    }

    /// Ask proxies to renew now: all of them, or the one with this id.
    pub fn request_renew(&self, target: Option<&str>) -> u64 {
        let mut inner = self.lock();
        inner.renew_counter += 1;
        let epoch = inner.renew_counter;
        let mut renew = self.view().renew.clone();
        renew.insert(target.unwrap_or("*").to_string(), epoch);
        let _ = self.publish(&inner, renew);
        epoch
    }

    fn update(&self, f: impl FnOnce(&mut CaFile) -> Result<(), CaError>) -> Result<(), CaError> {
        let mut inner = self.lock();
        let mut next = inner.file.clone();
        f(&mut next)?;
        self.install(&mut inner, next)?;
        self.changed.send_modify(|n| *n += 1);
        Ok(())
    }

    /// Make `next` the state in force: its signing root checked, written, published.
    fn install(&self, inner: &mut Inner, next: CaFile) -> Result<(), CaError> {
        let signer = match next.roots.get(next.signer) {
            Some(r) => Arc::new(load_signer(r)?),
            None => return Err(invalid("no signing root")),
        };
        write(&self.path, &next)?;
        inner.file = next;
        inner.signer = signer;
        let renew = self.view().renew.clone();
        self.publish(inner, renew)
    }

    /// The roots and keys as stored (`ca.json`), to share with other replicas.
    pub fn state(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(&self.lock().file).unwrap_or_default()
    }

    /// A new CA state with one fresh root, before any `Ca` is opened (the first replica on a
    /// cluster proposes it).
    pub fn new_state(trust_domain: &str) -> Result<Vec<u8>, CaError> {
        let file = CaFile { roots: vec![new_root(trust_domain)?], signer: 0 };
        serde_json::to_vec_pretty(&file).map_err(|e| invalid(e.to_string()))
    }

    /// Check a stored state (as `state` gives it) and write it to `path`.
    pub fn write_state(path: &Path, bytes: &[u8]) -> Result<(), CaError> {
        let file: CaFile = serde_json::from_slice(bytes).map_err(|e| invalid(format!("not a CA state: {e}")))?;
        let signer = file.roots.get(file.signer).ok_or_else(|| invalid("the CA state has no signing root"))?;
        load_signer(signer)?;
        write(path, &file)
    }

    /// Take the state another replica wrote (after a rotation step there); false when it is
    /// what this one holds already.
    pub fn replace_state(&self, bytes: &[u8]) -> Result<bool, CaError> {
        let next: CaFile = serde_json::from_slice(bytes).map_err(|e| invalid(format!("not a CA state: {e}")))?;
        let mut inner = self.lock();
        if inner.file == next {
            return Ok(false);
        }
        self.install(&mut inner, next)?;
        Ok(true)
    }

    /// Changes this meshd made to the roots itself.
    pub fn subscribe_changes(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// Rotation step 1: a new root joins the trust bundle (it does not sign yet).
    pub fn add_root(&self) -> Result<(), CaError> {
        let root = new_root(&self.trust_domain)?;
        self.update(|f| {
            f.roots.push(root);
            Ok(())
        })
    }

    /// Rotation step 2: the newest root signs from now on.
    pub fn sign_with_newest(&self) -> Result<(), CaError> {
        self.update(|f| {
            f.signer = f.roots.len().saturating_sub(1);
            Ok(())
        })
    }

    /// Rotation step 3: only the signing root stays trusted.
    pub fn retire_others(&self) -> Result<(), CaError> {
        self.update(|f| {
            let keep = f.roots.get(f.signer).cloned().ok_or_else(|| invalid("no signing root"))?;
            f.roots = vec![keep];
            f.signer = 0;
            Ok(())
        })
    }

    pub fn root_count(&self) -> usize {
        self.lock().file.roots.len()
    }

    pub fn signer_is_newest(&self) -> bool {
        let inner = self.lock();
        inner.file.signer + 1 == inner.file.roots.len()
    }
}

fn write(path: &Path, file: &CaFile) -> Result<(), CaError> {
    let body = serde_json::to_vec_pretty(file).map_err(|e| invalid(e.to_string()))?;
    crate::home::write_atomic(path, &body, 0o600).map_err(|source| CaError::Io {
        what: "write",
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plug<'a>(cert_pem: &'a str, key_pem: &'a str) -> PlugIn<'a> {
        PlugIn { cert_pem, key_pem, chain_pem: None, root_pem: None }
    }

    /// A CA certificate signed by `issuer` (self-signed when None): (PEM, key, issuer).
    fn ca_cert(name: &str, issuer: Option<&Issuer<'static, KeyPair>>) -> (String, Issuer<'static, KeyPair>) {
        let key = KeyPair::generate().expect("key");
        let mut p = CertificateParams::default();
        p.distinguished_name.push(DnType::CommonName, name);
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        p.use_authority_key_identifier_extension = issuer.is_some();
        let cert = match issuer {
            Some(i) => p.signed_by(&key, i).expect("signed"),
            None => p.self_signed(&key).expect("self-signed"),
        };
        let pem = cert.pem();
        let key_pem = key.serialize_pem();
        let reloaded = Issuer::from_ca_cert_pem(&pem, KeyPair::from_pem(&key_pem).expect("key")).expect("issuer");
        (pem + "\u{0}" + &key_pem, reloaded)
    }

    #[test]
    fn a_plug_in_intermediate_signs_with_its_chain_and_the_root_is_trusted() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("ca.json");
        let split = |both: &str| both.split_once('\u{0}').map(|(c, k)| (c.to_string(), k.to_string())).expect("pair");
        let (root, root_issuer) = ca_cert("corp root", None);
        let (mid, mid_issuer) = ca_cert("corp mid", Some(&root_issuer));
        let (ca, _) = ca_cert("cluster1 ca", Some(&mid_issuer));
        let ((root_pem, _), (mid_pem, _), (ca_pem, ca_key)) = (split(&root), split(&mid), split(&ca));
        // Istio's cert-chain.pem: the CA, then up to the root.
        let chain = format!("{ca_pem}{mid_pem}{root_pem}");
        let import = |chain: Option<&str>, root: Option<&str>| {
            Ca::import(&path, &PlugIn { cert_pem: &ca_pem, key_pem: &ca_key, chain_pem: chain, root_pem: root })
        };
        let err = import(None, None).expect_err("no root");
        assert!(err.to_string().contains("is an intermediate") && err.to_string().contains("root-cert.pem"), "{err}");
        let err = import(None, Some(&root_pem)).expect_err("a CA missing between");
        assert!(err.to_string().contains("not signed by root-cert.pem"), "{err}");
        let (other, _) = ca_cert("other root", None);
        let err = import(Some(&chain), Some(&split(&other).0)).expect_err("wrong root");
        assert!(err.to_string().contains("not signed by root-cert.pem"), "{err}");
        assert!(!path.exists(), "nothing written on error");

        import(Some(&chain), Some(&root_pem)).expect("import");
        let ca = Ca::open(&path, "cluster.local", DEFAULT_WORKLOAD_TTL).expect("open");
        let view = ca.view();
        assert_eq!(view.bundle_pem.trim(), root_pem.trim(), "proxies trust the root alone");
        assert_eq!(view.roots.len(), 1);
        assert_eq!(view.signing_root_key_id, view.roots[0].key_id);
        assert_ne!(view.signer_key_id, view.roots[0].key_id, "the intermediate signs");
        // A signed certificate comes with the intermediates, not the root, and chains to it.
        let id = SpiffeId::new("cluster.local", "default", "web");
        let pem = ca.sign(&csr_for("spiffe://cluster.local/ns/default/sa/web"), &id).expect("signed");
        let ders = mesh_api::cert::pem_certs(&pem).expect("pem");
        assert_eq!(ders.len(), 3, "leaf, cluster1 ca, corp mid");
        let roots = mesh_api::cert::pem_certs(&root_pem).expect("root");
        check_chain(&ders, &roots).expect("the leaf chains to the root");
        let (server_pem, _) = ca.issue_server(&["meshd.istio-system.svc".into()]).expect("server");
        check_chain(&mesh_api::cert::pem_certs(&server_pem).expect("pem"), &roots).expect("webhook cert chains");
    }

    fn csr_for(uri: &str) -> String {
        let key = KeyPair::generate().expect("key");
        let mut p = CertificateParams::default();
        p.subject_alt_names = vec![SanType::URI(uri.to_string().try_into().expect("uri"))];
        p.serialize_request(&key).expect("csr").pem().expect("pem")
    }

    #[test]
    fn signs_only_the_proxys_own_identity() {
        let dir = tempfile::tempdir().expect("tmp");
        let ca = Ca::open(&dir.path().join("ca.json"), "cluster.local", DEFAULT_WORKLOAD_TTL).expect("ca");
        let id = SpiffeId::new("cluster.local", "default", "web");
        let pem = ca.sign(&csr_for("spiffe://cluster.local/ns/default/sa/web"), &id).expect("signed");
        let info = CertInfo::from_pem(&pem).expect("cert");
        assert_eq!(info.uris, vec!["spiffe://cluster.local/ns/default/sa/web".to_string()]);
        assert_eq!(info.authority_key_id, ca.view().signer_key_id);
        let life = info.not_after_unix - info.not_before_unix;
        assert!((24 * 3600..=24 * 3600 + 120).contains(&life), "lifetime {life}");

        let wrong_td = ca.sign(&csr_for("spiffe://evil.org/ns/default/sa/web"), &id).expect_err("refused");
        assert!(wrong_td.to_string().contains("trust domain \"evil.org\""), "{wrong_td}");
        let other = ca.sign(&csr_for("spiffe://cluster.local/ns/default/sa/admin"), &id).expect_err("refused");
        assert!(other.to_string().contains("may only have"), "{other}");
        let garbage = ca.sign("-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n", &id);
        assert!(garbage.is_err());
        let huge = ca.sign(&"x".repeat(MAX_CSR_BYTES + 1), &id).expect_err("refused");
        assert!(huge.to_string().contains("limit"), "{huge}");
    }

    #[test]
    fn the_ca_file_is_private_and_survives_restarts() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("ca.json");
        let first = Ca::open(&path, "cluster.local", DEFAULT_WORKLOAD_TTL).expect("ca").view().signer_key_id.clone();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777, 0o600);
        let again = Ca::open(&path, "cluster.local", DEFAULT_WORKLOAD_TTL).expect("ca").view().signer_key_id.clone();
        assert_eq!(first, again);
    }

    #[test]
    fn rotation_steps_change_bundle_and_signer() {
        let dir = tempfile::tempdir().expect("tmp");
        let ca = Ca::open(&dir.path().join("ca.json"), "cluster.local", DEFAULT_WORKLOAD_TTL).expect("ca");
        let old = ca.view().signer_key_id.clone();
        ca.add_root().expect("add");
        assert_eq!(ca.view().roots.len(), 2);
        assert_eq!(ca.view().signer_key_id, old);
        ca.sign_with_newest().expect("switch");
        let new = ca.view().signer_key_id.clone();
        assert_ne!(new, old);
        ca.retire_others().expect("retire");
        assert_eq!(ca.view().roots.len(), 1);
        assert_eq!(ca.view().roots[0].key_id, new);
    }

    #[test]
    fn plug_in_ca_is_checked_before_use() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("ca.json");
        let root = new_root("cluster.local").expect("root");
        let other = new_root("cluster.local").expect("root");
        let err = Ca::import(&path, &plug(&root.cert_pem, &other.key_pem)).expect_err("mismatch");
        assert!(err.to_string().contains("does not belong"), "{err}");
        assert!(!path.exists(), "nothing written on error");
        assert!(Ca::import(&path, &plug("not pem", &root.key_pem)).is_err());
        // An expired CA and one not valid yet are refused with the reason.
        for (from, to, word) in [(-7200i64, -3600i64, "expired"), (3600, 7200, "not valid yet")] {
            let key = KeyPair::generate().expect("key");
            let mut p = CertificateParams::default();
            p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            let at = |s: i64| offset(UNIX_EPOCH + Duration::from_secs((now_unix() + s) as u64));
            (p.not_before, p.not_after) = (at(from), at(to));
            let cert = p.self_signed(&key).expect("cert");
            let err = Ca::import(&path, &plug(&cert.pem(), &key.serialize_pem())).expect_err("refused");
            assert!(err.to_string().contains(word), "{err}");
        }
        assert!(!path.exists(), "nothing written on error");
        Ca::import(&path, &plug(&root.cert_pem, &root.key_pem)).expect("import");
        let ca = Ca::open(&path, "cluster.local", DEFAULT_WORKLOAD_TTL).expect("open");
        assert_eq!(ca.view().bundle_pem.trim(), root.cert_pem.trim());
    }
}
