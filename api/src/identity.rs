//! SPIFFE identities: `spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>`.

use std::fmt;

/// The trust domain of a mesh that was not told otherwise (Istio's default).
pub const DEFAULT_TRUST_DOMAIN: &str = "cluster.local";

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SpiffeId {
    pub trust_domain: String,
    pub namespace: String,
    pub service_account: String,
}

impl SpiffeId {
    pub fn new(trust_domain: &str, namespace: &str, service_account: &str) -> SpiffeId {
        SpiffeId {
            trust_domain: trust_domain.to_string(),
            namespace: namespace.to_string(),
            service_account: service_account.to_string(),
        }
    }

    /// Parse a workload SPIFFE ID; anything else is an error that says what is wrong.
    pub fn parse(uri: &str) -> Result<SpiffeId, String> {
        let rest = uri.strip_prefix("spiffe://").ok_or_else(|| format!("{uri:?} is not a spiffe:// URI"))?;
        let parts: Vec<&str> = rest.split('/').collect();
        match parts.as_slice() {
            [td, "ns", ns, "sa", sa] if !td.is_empty() && !ns.is_empty() && !sa.is_empty() => {
                Ok(SpiffeId::new(td, ns, sa))
            }
            _ => Err(format!("{uri:?} is not a workload identity (spiffe://TRUST-DOMAIN/ns/NAMESPACE/sa/ACCOUNT)")),
        }
    }

    /// Istio's "principal": the ID without `spiffe://` (`cluster.local/ns/default/sa/web`).
    pub fn principal(&self) -> String {
        format!("{}/ns/{}/sa/{}", self.trust_domain, self.namespace, self.service_account)
    }
}

impl fmt::Display for SpiffeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "spiffe://{}/ns/{}/sa/{}", self.trust_domain, self.namespace, self.service_account)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_errors() {
        let id = SpiffeId::parse("spiffe://cluster.local/ns/default/sa/web").expect("valid");
        assert_eq!(id.principal(), "cluster.local/ns/default/sa/web");
        assert_eq!(id.to_string(), "spiffe://cluster.local/ns/default/sa/web");
        assert!(SpiffeId::parse("https://cluster.local/ns/default/sa/web").is_err());
        assert!(SpiffeId::parse("spiffe://cluster.local/ns/default").is_err());
        assert!(SpiffeId::parse("spiffe://cluster.local/ns//sa/x").is_err());
    }
}
