//! Proxy tokens on the local platform, bound to one workload (Kuma's data-plane tokens are the
//! model). The admin token in `MESH_HOME/token` is the CLI's credential; a sidecar presents a
//! proxy token, which lets it register only the workload, namespace and service account it
//! names, and so get config and a certificate only for that identity.
//!
//! A token is `mpt1.<claims>.<mac>`: base64url JSON claims and an HMAC-SHA256 over
//! `mpt1.<claims>` with a key meshd keeps in `MESH_HOME/proxy-token.key` (0600). meshd checks the
//! MAC in constant time, then the expiry, then that the proxy's hello matches the claims.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use mesh_api::control::ProxyTokenClaims;
use mesh_api::protocol::Workload;

/// Every proxy token starts with this.
pub const PREFIX: &str = "mpt1.";

pub struct Signer {
    key: ring::hmac::Key,
}

fn now_unix() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

impl Signer {
    /// The signer with the key in `home`, made (0600) on first use.
    pub fn open(home: &crate::Home) -> std::io::Result<Signer> {
        let path = home.root().join("proxy-token.key");
        let key = match std::fs::read(&path) {
            Ok(k) if k.len() >= 32 => k,
            Ok(_) => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!(
                        "{} is shorter than 32 bytes; remove it to make a new key (every proxy token is then void)",
                        path.display()
                    ),
                ));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut k = vec![0u8; 32];
                getrandom::fill(&mut k).map_err(|e| std::io::Error::other(format!("no system randomness: {e}")))?;
                crate::home::write_atomic(&path, &k, 0o600)?;
                k
            }
            Err(e) => return Err(e),
        };
        Ok(Signer::from_key(&key))
    }

    pub fn from_key(key: &[u8]) -> Signer {
        Signer { key: ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key) }
    }

    /// A token for `claims` (its `iat` set to now).
    pub fn mint(&self, mut claims: ProxyTokenClaims) -> String {
        claims.iat = now_unix();
        let body = B64.encode(serde_json::to_vec(&claims).unwrap_or_default());
        let signed = format!("{PREFIX}{body}");
        let mac = B64.encode(ring::hmac::sign(&self.key, signed.as_bytes()).as_ref());
        format!("{signed}.{mac}")
    }

    /// The claims of a token this meshd minted and that has not expired; the error says why not.
    pub fn verify(&self, token: &str) -> Result<ProxyTokenClaims, String> {
        let rest = token.strip_prefix(PREFIX).ok_or("not a proxy token")?;
        let (body, mac) = rest.rsplit_once('.').ok_or("malformed proxy token")?;
        let mac = B64.decode(mac).map_err(|_| "malformed proxy token")?;
        ring::hmac::verify(&self.key, format!("{PREFIX}{body}").as_bytes(), &mac)
            .map_err(|_| "the proxy token was not issued by this mesh (or its key was replaced)")?;
        let claims: ProxyTokenClaims = B64
            .decode(body)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or("malformed proxy token claims")?;
        if let Some(exp) = claims.exp
            && now_unix() >= exp
        {
            return Err(format!(
                "the proxy token for {}/{} expired; mint a new one with `mesh proxy token create`",
                claims.namespace, claims.workload
            ));
        }
        Ok(claims)
    }
}

/// Whether a proxy announcing `w` may be served under `c`: the same workload, namespace and
/// service account.
pub fn check(c: &ProxyTokenClaims, w: &Workload) -> Result<(), String> {
    if w.name == c.workload && w.namespace == c.namespace && w.service_account == c.service_account {
        return Ok(());
    }
    Err(format!(
        "this proxy's token is for workload {}/{} running as {}, but the proxy says it is workload {}/{} running as {}; a proxy token registers only its own workload",
        c.namespace, c.workload, c.service_account, w.namespace, w.name, w.service_account
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(exp: Option<u64>) -> ProxyTokenClaims {
        ProxyTokenClaims {
            namespace: "default".into(),
            workload: "reviews-v1".into(),
            service_account: "bookinfo-reviews".into(),
            iat: 0,
            exp,
        }
    }

    #[test]
    fn tokens_verify_only_with_their_key_and_before_expiry() {
        let s = Signer::from_key(&[7; 32]);
        let t = s.mint(claims(None));
        assert_eq!(s.verify(&t).expect("valid").workload, "reviews-v1");
        assert!(Signer::from_key(&[8; 32]).verify(&t).is_err(), "another mesh's key");
        let (head, mac) = t.rsplit_once('.').expect("mac");
        let forged_body = B64.encode(br#"{"namespace":"default","workload":"x","serviceAccount":"admin","iat":0}"#);
        assert!(s.verify(&format!("{PREFIX}{forged_body}.{mac}")).is_err(), "claims changed");
        assert!(s.verify(&format!("{head}.AAAA")).is_err());
        assert!(s.verify("not-a-token").is_err());
        let expired = s.mint(claims(Some(1)));
        assert!(s.verify(&expired).expect_err("expired").contains("expired"));
    }
}
