//! TLS credentials for gateways and TLS origination: a certificate chain and its key, and a CA
//! bundle, named as the Kubernetes Secret Istio reads for `credentialName`.
//!
//! On Kubernetes they are Secrets (Istio's formats: `tls.crt`/`tls.key`/`ca.crt`, or
//! `cert`/`key`/`cacert`, with the client CA possibly in a separate `NAME-cacert` Secret); on the
//! local platform `mesh secret create tls` hands them to meshd, which keeps them in MESH_HOME
//! with the care it gives its CA key.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::cert::{CertInfo, pem_certs};

/// Istio's suffix for the Secret that holds a credential's client CA on its own.
pub const CA_SECRET_SUFFIX: &str = "-cacert";

/// One credential. At least one of its parts is set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credential {
    pub namespace: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_chain: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<String>,
    /// Revoked client certificates (PEM `X509 CRL`: a Secret's `ca.crl`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crl: Option<String>,
}

/// What may be shown of a credential: never its key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CredentialInfo {
    pub namespace: String,
    pub name: String,
    /// The leaf certificate's subject and DNS names, and when it expires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dns_names: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_after_unix: Option<i64>,
    pub has_key: bool,
    pub has_ca: bool,
}

/// Credentials by (namespace, name).
pub type Credentials = BTreeMap<(String, String), Credential>;

impl Credential {
    /// From a Kubernetes Secret's data (decoded), in the formats Istio reads. Err: the Secret
    /// holds none of them.
    pub fn from_secret(namespace: &str, name: &str, data: &BTreeMap<String, Vec<u8>>) -> Result<Credential, String> {
        let text = |keys: &[&str]| -> Result<Option<String>, String> {
            for k in keys {
                if let Some(v) = data.get(*k) {
                    return String::from_utf8(v.clone())
                        .map(Some)
                        .map_err(|_| format!("the Secret {namespace}/{name} key {k} is not PEM text"));
                }
            }
            Ok(None)
        };
        let c = Credential {
            namespace: namespace.to_string(),
            name: name.to_string(),
            cert_chain: text(&["tls.crt", "cert"])?,
            private_key: text(&["tls.key", "key"])?,
            ca: text(&["ca.crt", "cacert"])?,
            crl: text(&["ca.crl"])?,
        };
        if c.cert_chain.is_none() && c.ca.is_none() {
            return Err(format!(
                "the Secret {namespace}/{name} has none of tls.crt/tls.key, cert/key, ca.crt or cacert"
            ));
        }
        Ok(c)
    }

    /// Check what it holds: PEM that parses, a key beside a certificate and the other way
    /// round, certificates valid at `now_unix`. Returns what may be shown of it.
    pub fn check(&self, now_unix: i64) -> Result<CredentialInfo, String> {
        let who = format!("credential {}/{}", self.namespace, self.name);
        let mut info = CredentialInfo {
            namespace: self.namespace.clone(),
            name: self.name.clone(),
            subject: None,
            dns_names: Vec::new(),
            not_after_unix: None,
            has_key: self.private_key.is_some(),
            has_ca: self.ca.is_some(),
        };
        match (&self.cert_chain, &self.private_key) {
            (Some(chain), Some(key)) => {
                let ders = pem_certs(chain).map_err(|e| format!("{who}: the certificate: {e}"))?;
                let leaf = CertInfo::from_der(&ders[0]).map_err(|e| format!("{who}: the certificate: {e}"))?;
                if let Some(why) = leaf.validity_error(now_unix) {
                    return Err(format!("{who}: {why}"));
                }
                if !key.contains("PRIVATE KEY-----") {
                    return Err(format!("{who}: the key is not a PEM private key"));
                }
                info.subject = Some(leaf.subject);
                info.dns_names = leaf.dns_names;
                info.not_after_unix = Some(leaf.not_after_unix);
            }
            (Some(_), None) => return Err(format!("{who}: a certificate without its private key")),
            (None, Some(_)) => return Err(format!("{who}: a private key without its certificate")),
            (None, None) if self.ca.is_none() => return Err(format!("{who}: holds nothing")),
            (None, None) => {}
        }
        if let Some(ca) = &self.ca {
            pem_certs(ca).map_err(|e| format!("{who}: the CA bundle: {e}"))?;
        }
        if let Some(crl) = &self.crl {
            crate::cert::pem_crls(crl).map_err(|e| format!("{who}: the CRL: {e}"))?;
        }
        Ok(info)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_in_istios_formats() {
        let data = |pairs: &[(&str, &str)]| pairs.iter().map(|(k, v)| (k.to_string(), v.as_bytes().to_vec())).collect();
        let tls = Credential::from_secret("ns", "a", &data(&[("tls.crt", "C"), ("tls.key", "K"), ("ca.crt", "A")]));
        let tls = tls.expect("kubernetes.io/tls");
        assert_eq!(
            (tls.cert_chain.as_deref(), tls.private_key.as_deref(), tls.ca.as_deref()),
            (Some("C"), Some("K"), Some("A"))
        );
        let generic = Credential::from_secret("ns", "b", &data(&[("cert", "C"), ("key", "K"), ("cacert", "A")]));
        assert_eq!(generic.expect("generic").ca.as_deref(), Some("A"));
        let ca_only = Credential::from_secret("ns", "b-cacert", &data(&[("ca.crt", "A")])).expect("ca only");
        assert!(ca_only.cert_chain.is_none());
        let err = Credential::from_secret("ns", "c", &data(&[("password", "x")])).expect_err("nothing usable");
        assert!(err.contains("ns/c"), "{err}");
        let bad = Credential {
            namespace: "n".into(),
            name: "x".into(),
            cert_chain: Some("junk".into()),
            ..Default::default()
        };
        assert!(bad.check(0).expect_err("no key").contains("without its private key"));
    }
}
