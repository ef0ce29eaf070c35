//! Reading X.509 certificates: what meshd, the proxy and the CLI need to know about one
//! (identity, serial, validity, which key signed it), with errors that say what is wrong.

use serde::{Deserialize, Serialize};
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::pem::Pem;

/// The facts of one certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertInfo {
    /// Hex, colon-free (`3f9a...`).
    pub serial: String,
    pub subject: String,
    pub issuer: String,
    /// URI subject alternative names (the SPIFFE ID of a workload certificate).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub uris: Vec<String>,
    /// DNS subject alternative names.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dns_names: Vec<String>,
    pub not_before_unix: i64,
    pub not_after_unix: i64,
    pub is_ca: bool,
    /// Subject key identifier, hex (roots and leaves made by rcgen have one).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub key_id: String,
    /// Authority key identifier, hex: the `key_id` of the certificate that signed this one.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub authority_key_id: String,
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The DER of every certificate in a PEM text, in order. Other PEM blocks (keys) are skipped.
/// The DER of each `X509 CRL` block in `pem`, each parsed as a CRL. Err: malformed, or none.
pub fn pem_crls(pem: &str) -> Result<Vec<Vec<u8>>, String> {
    let mut out = Vec::new();
    for (i, block) in Pem::iter_from_buffer(pem.as_bytes()).enumerate() {
        let block = block.map_err(|e| format!("PEM block {} is malformed: {e}", i + 1))?;
        if block.label == "X509 CRL" {
            <x509_parser::revocation_list::CertificateRevocationList as x509_parser::prelude::FromDer<_>>::from_der(
                &block.contents,
            )
            .map_err(|e| format!("CRL {} does not parse: {e}", out.len() + 1))?;
            out.push(block.contents);
        }
    }
    if out.is_empty() {
        return Err("no X509 CRL block found in the PEM text".into());
    }
    Ok(out)
}

pub fn pem_certs(pem: &str) -> Result<Vec<Vec<u8>>, String> {
    let mut out = Vec::new();
    for (i, block) in Pem::iter_from_buffer(pem.as_bytes()).enumerate() {
        let block = block.map_err(|e| format!("PEM block {} is malformed: {e}", i + 1))?;
        if block.label == "CERTIFICATE" {
            out.push(block.contents);
        }
    }
    if out.is_empty() {
        return Err("no CERTIFICATE block found in the PEM text".into());
    }
    Ok(out)
}

impl CertInfo {
    pub fn from_der(der: &[u8]) -> Result<CertInfo, String> {
        let (rest, cert) =
            x509_parser::parse_x509_certificate(der).map_err(|e| format!("not a valid X.509 certificate: {e}"))?;
        if !rest.is_empty() {
            return Err("trailing bytes after the certificate".into());
        }
        let mut uris = Vec::new();
        let mut dns_names = Vec::new();
        let mut key_id = String::new();
        let mut authority_key_id = String::new();
        for ext in cert.extensions() {
            match ext.parsed_extension() {
                ParsedExtension::SubjectAlternativeName(san) => {
                    for name in &san.general_names {
                        match name {
                            GeneralName::URI(u) => uris.push((*u).to_string()),
                            GeneralName::DNSName(d) => dns_names.push((*d).to_string()),
                            _ => {}
                        }
                    }
                }
                ParsedExtension::SubjectKeyIdentifier(k) => key_id = hex(k.0),
                ParsedExtension::AuthorityKeyIdentifier(a) => {
                    if let Some(k) = &a.key_identifier {
                        authority_key_id = hex(k.0);
                    }
                }
                _ => {}
            }
        }
        Ok(CertInfo {
            serial: hex(cert.raw_serial()),
            subject: cert.subject().to_string(),
            issuer: cert.issuer().to_string(),
            uris,
            dns_names,
            not_before_unix: cert.validity().not_before.timestamp(),
            not_after_unix: cert.validity().not_after.timestamp(),
            is_ca: cert.is_ca(),
            key_id,
            authority_key_id,
        })
    }

    /// The first certificate of a PEM text.
    pub fn from_pem(pem: &str) -> Result<CertInfo, String> {
        let ders = pem_certs(pem)?;
        CertInfo::from_der(&ders[0])
    }

    /// Why the certificate is not valid at `now_unix`, if it is not.
    pub fn validity_error(&self, now_unix: i64) -> Option<String> {
        if now_unix < self.not_before_unix {
            Some(format!(
                "certificate {} is not valid yet (valid from unix time {})",
                self.serial, self.not_before_unix
            ))
        } else if now_unix > self.not_after_unix {
            Some(format!("certificate {} expired (valid until unix time {})", self.serial, self.not_after_unix))
        } else {
            None
        }
    }
}

/// A short, stable version for a trust bundle: FNV-1a of its PEM text.
pub fn bundle_version(pem: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in pem.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}
