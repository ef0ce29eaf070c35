//! TLS material for a proxy: the certificate a Gateway server shows and the client CA it
//! checks, and what a DestinationRule's TLS origination presents and trusts. A
//! `credentialName` is looked up where Istio looks (the gateway's or the client's namespace),
//! with the client CA possibly in the separate `NAME-cacert` credential; file paths are passed
//! on for the proxy to read, as Envoy reads them.

use mesh_api::Object;
use mesh_api::credential::{CA_SECRET_SUFFIX, Credentials};
use mesh_api::networking::{ClientTlsSettings, DestinationRuleSpec, ServerTlsSettings, Subset};
use mesh_api::proxy_config::{OriginateTls, Pem, TlsCredential};

/// The credential `name` in `namespace`: certificate, key and CA, the CA from `NAME-cacert`
/// when the credential itself has none. Err names what is missing.
pub(super) fn named(credentials: &Credentials, namespace: &str, name: &str) -> Result<TlsCredential, String> {
    let get = |n: &str| credentials.get(&(namespace.to_string(), n.to_string()));
    let own = get(name);
    let ca_secret = get(&format!("{name}{CA_SECRET_SUFFIX}"));
    let ca = own.and_then(|c| c.ca.clone()).or_else(|| ca_secret?.ca.clone());
    let crl = own.and_then(|c| c.crl.clone()).or_else(|| ca_secret?.crl.clone());
    let Some(own) = own else {
        return Err(format!("credential {namespace}/{name} not found"));
    };
    Ok(TlsCredential {
        source: format!("credential {namespace}/{name}"),
        cert_chain: own.cert_chain.clone().map(Pem::Inline),
        private_key: own.private_key.clone().map(Pem::Inline),
        ca: ca.map(Pem::Inline),
        crl: crl.map(Pem::Inline),
    })
}

fn files(cert: Option<&String>, key: Option<&String>, ca: Option<&String>) -> TlsCredential {
    TlsCredential {
        source: "files".into(),
        cert_chain: cert.cloned().map(Pem::File),
        private_key: key.cloned().map(Pem::File),
        ca: ca.cloned().map(Pem::File),
        crl: None,
    }
}

/// A Gateway server's other certificates and keys (`credentialNames` or `tlsCertificates`
/// beyond the first).
pub(super) fn more_servers(
    credentials: &Credentials,
    namespace: &str,
    t: &ServerTlsSettings,
) -> Result<Vec<TlsCredential>, String> {
    let mut out = Vec::new();
    if t.credential_name.is_none() {
        for name in t.credential_names.iter().skip(1) {
            out.push(named(credentials, namespace, name)?);
        }
    }
    if t.credential_name.is_none() && t.credential_names.is_empty() {
        for c in t.tls_certificates.iter().skip(1) {
            out.push(files(c.server_certificate.as_ref(), c.private_key.as_ref(), None));
        }
    }
    for c in &out {
        if c.cert_chain.is_none() || c.private_key.is_none() {
            return Err(format!("{} holds no certificate and key to serve", c.source));
        }
    }
    Ok(out)
}

/// A Gateway server's certificate, key and client CA, for a gateway proxy in `namespace`.
pub(super) fn server(
    credentials: &Credentials,
    namespace: &str,
    t: &ServerTlsSettings,
) -> Result<TlsCredential, String> {
    let mut c = if let Some(name) = t.credential_name.as_ref().or(t.credential_names.first()) {
        named(credentials, t.credential_namespace.as_deref().unwrap_or(namespace), name)?
    } else if let Some(first) = t.tls_certificates.first() {
        files(first.server_certificate.as_ref(), first.private_key.as_ref(), first.ca_certificates.as_ref())
    } else {
        files(t.server_certificate.as_ref(), t.private_key.as_ref(), t.ca_certificates.as_ref())
    };
    if c.ca.is_none() {
        if let Some(path) = &t.ca_certificates {
            c.ca = Some(Pem::File(path.clone()));
        } else if let Some(name) = &t.ca_cert_credential_name {
            c.ca = named(credentials, namespace, name)?.ca;
        }
    }
    if c.cert_chain.is_none() || c.private_key.is_none() {
        return Err(format!("{} holds no certificate and key to serve", c.source));
    }
    // Revoked client certificates: `caCrl` (a file, as Envoy reads it) over the
    // credential's own `ca.crl`.
    if let Some(path) = &t.ca_crl {
        c.crl = Some(Pem::File(path.clone()));
    }
    Ok(c)
}

/// The `tls` settings that apply to `port` of a cluster: the subset's (port-level, then its
/// own), then the rule's (port-level, then its own).
fn client_settings<'a>(
    dr: Option<&'a Object<DestinationRuleSpec>>,
    subset: Option<&'a Subset>,
    port: u16,
) -> Option<&'a ClientTlsSettings> {
    let policies = [subset.and_then(|s| s.traffic_policy.as_ref()), dr.and_then(|d| d.spec.traffic_policy.as_ref())];
    policies.into_iter().flatten().find_map(|tp| {
        let port_level =
            tp.port_level_settings.iter().find(|p| p.port.as_ref().is_some_and(|n| n.number == u32::from(port)));
        port_level.and_then(|p| p.tls.as_ref()).or(tp.tls.as_ref()).filter(|t| t.mode.is_some())
    })
}

/// DestinationRule TLS origination (SIMPLE or MUTUAL) for a cluster of `host`, as seen by a
/// client in `client_ns` (whose namespace holds a `credentialName`).
/// The SNI of mesh mTLS to a cluster: DestinationRule `tls` ISTIO_MUTUAL's `sni`.
pub(super) fn mesh_sni(dr: Option<&Object<DestinationRuleSpec>>, subset: Option<&Subset>, port: u16) -> Option<String> {
    let t = client_settings(dr, subset, port)?;
    (t.mode.as_deref() == Some("ISTIO_MUTUAL")).then(|| t.sni.clone()).flatten()
}

pub(super) fn originate(
    dr: Option<&Object<DestinationRuleSpec>>,
    subset: Option<&Subset>,
    port: u16,
    host: &str,
    client_ns: &str,
    credentials: &Credentials,
) -> Option<OriginateTls> {
    let t = client_settings(dr, subset, port)?;
    let mutual = match t.mode.as_deref() {
        Some("SIMPLE") => false,
        Some("MUTUAL") => true,
        _ => return None,
    };
    let mut out = OriginateTls {
        mutual,
        sni: t.sni.clone().unwrap_or_else(|| host.to_string()),
        subject_alt_names: t.subject_alt_names.clone(),
        insecure_skip_verify: t.insecure_skip_verify == Some(true),
        credential: TlsCredential::default(),
        error: None,
    };
    let credential = match &t.credential_name {
        Some(name) => named(credentials, client_ns, name),
        None => Ok(files(t.client_certificate.as_ref(), t.private_key.as_ref(), t.ca_certificates.as_ref())),
    };
    match credential {
        Ok(c) if mutual && (c.cert_chain.is_none() || c.private_key.is_none()) => {
            out.error =
                Some(format!("MUTUAL TLS origination needs a client certificate and key; {} has none", c.source));
            out.credential = c;
        }
        Ok(c) => out.credential = c,
        Err(e) => out.error = Some(e),
    }
    Some(out)
}
