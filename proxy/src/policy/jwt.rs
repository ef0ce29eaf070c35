//! RequestAuthentication: JWT validation on the inbound side, as Istio (Envoy's jwt_authn)
//! does it. A request without a token passes (AuthorizationPolicy may still require a
//! `requestPrincipals`); a request with a token that does not verify gets 401.
//!
//! Keys come inline (`jwks`) or from `jwksUri`, fetched on first use, cached and refreshed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use http::{HeaderMap, HeaderValue, Uri};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{DecodingKey, Validation};
use mesh_api::proxy_config::JwtProvider;
use serde_json::Value;

/// How long a fetched JWKS is used before it is fetched again (Istio's default refresh).
const JWKS_TTL: Duration = Duration::from_secs(20 * 60);
/// A token whose key id is not in the cached set triggers a refetch at most this often.
const JWKS_MISS_REFETCH: Duration = Duration::from_secs(10);
const JWKS_MAX_BYTES: usize = 1024 * 1024;
const DEFAULT_FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// Clock skew allowed on exp / nbf (Envoy's default).
const LEEWAY_SECS: u64 = 60;

/// A verified token: what policy and logs see.
#[derive(Debug, Clone)]
pub struct Verified {
    /// `iss/sub`, Istio's request principal.
    pub principal: String,
    pub claims: Value,
}

impl Verified {
    pub fn audiences(&self) -> Vec<&str> {
        match self.claims.get("aud") {
            Some(Value::String(a)) => vec![a.as_str()],
            Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        }
    }

    /// A claim by path (`["groups"]`, `["nested1", "nested2"]`), as strings: a string claim is
    /// one value, a list of strings many, anything else its JSON text.
    pub fn claim(&self, path: &[&str]) -> Vec<String> {
        let mut v = &self.claims;
        for p in path {
            match v.get(p) {
                Some(next) => v = next,
                None => return Vec::new(),
            }
        }
        match v {
            Value::String(s) => vec![s.clone()],
            Value::Array(a) => {
                a.iter().map(|x| x.as_str().map(str::to_string).unwrap_or_else(|| x.to_string())).collect()
            }
            Value::Null => Vec::new(),
            other => vec![other.to_string()],
        }
    }
}

/// The JWKS cache of one proxy, shared by every snapshot.
#[derive(Default)]
pub struct JwksCache {
    sets: ArcSwap<HashMap<String, (Instant, Arc<JwkSet>)>>,
    fetching: Mutex<HashMap<String, Instant>>,
}

impl JwksCache {
    fn cached(&self, uri: &str) -> Option<(Instant, Arc<JwkSet>)> {
        self.sets.load().get(uri).cloned()
    }

    fn store(&self, uri: &str, set: Arc<JwkSet>) {
        self.sets.rcu(|m| {
            let mut m = (**m).clone();
            m.insert(uri.to_string(), (Instant::now(), set.clone()));
            m
        });
    }

    /// The set for `uri`: the cached one while fresh; else fetched (a stale set is kept when
    /// the fetch fails). `miss`: the token's key was not in the cached set.
    async fn get(&self, uri: &str, timeout: Duration, miss: bool) -> Result<Arc<JwkSet>, String> {
        let cached = self.cached(uri);
        let fresh = cached.as_ref().is_some_and(|(at, _)| at.elapsed() < JWKS_TTL);
        let may_refetch = {
            let mut f = self.fetching.lock().unwrap_or_else(|p| p.into_inner());
            let last = f.get(uri).copied();
            let allowed = last.is_none_or(|t| t.elapsed() >= JWKS_MISS_REFETCH);
            if (!fresh || miss) && allowed {
                f.insert(uri.to_string(), Instant::now());
                true
            } else {
                false
            }
        };
        if let Some((_, set)) = &cached
            && (fresh && !miss || !may_refetch)
        {
            return Ok(set.clone());
        }
        match fetch(uri, timeout).await {
            Ok(set) => {
                let set = Arc::new(set);
                self.store(uri, set.clone());
                Ok(set)
            }
            Err(e) => {
                tracing::warn!(%uri, error = %e, "JWKS fetch failed");
                cached.map(|(_, s)| s).ok_or_else(|| "Jwks remote fetch is failed".to_string())
            }
        }
    }
}

/// GET a JWKS over HTTP or HTTPS (Mozilla's roots), bounded in time and size.
async fn fetch(uri: &str, timeout: Duration) -> Result<JwkSet, String> {
    tokio::time::timeout(timeout, fetch_inner(uri)).await.map_err(|_| format!("no answer within {timeout:?}"))?
}

async fn fetch_inner(uri: &str) -> Result<JwkSet, String> {
    use http_body_util::{BodyExt, Empty, Limited};
    let parsed: Uri = uri.parse().map_err(|e| format!("bad jwksUri: {e}"))?;
    let https = parsed.scheme_str() == Some("https");
    let host = parsed.host().ok_or("jwksUri has no host")?.to_string();
    let port = parsed.port_u16().unwrap_or(if https { 443 } else { 80 });
    let tcp = tokio::net::TcpStream::connect((host.trim_start_matches('[').trim_end_matches(']'), port))
        .await
        .map_err(|e| format!("cannot connect to {host}:{port}: {e}"))?;
    let path = parsed.path_and_query().map(|p| p.as_str()).unwrap_or("/").to_string();
    let req = http::Request::get(path)
        .header(http::header::HOST, parsed.authority().map(|a| a.as_str()).unwrap_or(&host))
        .header(http::header::ACCEPT, "application/json")
        .body(Empty::<bytes::Bytes>::new())
        .map_err(|e| e.to_string())?;
    let resp = if https {
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        let config = rustls::ClientConfig::builder_with_provider(crate::tls::provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let name = rustls::pki_types::ServerName::try_from(host.clone()).map_err(|e| e.to_string())?;
        let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(name, tcp)
            .await
            .map_err(|e| format!("TLS to {host}: {e}"))?;
        send(hyper_util::rt::TokioIo::new(tls), req).await?
    } else {
        send(hyper_util::rt::TokioIo::new(tcp), req).await?
    };
    if !resp.status().is_success() {
        return Err(format!("{uri} answered {}", resp.status()));
    }
    let body = Limited::new(resp.into_body(), JWKS_MAX_BYTES)
        .collect()
        .await
        .map_err(|e| format!("reading {uri}: {e}"))?
        .to_bytes();
    serde_json::from_slice(&body).map_err(|e| format!("{uri} is not a JWKS: {e}"))
}

async fn send<T>(
    io: hyper_util::rt::TokioIo<T>,
    req: http::Request<http_body_util::Empty<bytes::Bytes>>,
) -> Result<http::Response<hyper::body::Incoming>, String>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io).await.map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    sender.send_request(req).await.map_err(|e| e.to_string())
}

struct Provider {
    cfg: JwtProvider,
    inline: Option<Arc<JwkSet>>,
}

/// The RequestAuthentication rules of one workload.
#[derive(Default)]
pub struct JwtAuth {
    providers: Vec<Provider>,
}

impl std::fmt::Debug for JwtAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.providers.iter().map(|p| &p.cfg.issuer)).finish()
    }
}

/// Where a token was found, so it can be removed after use.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Location {
    Header(http::HeaderName),
    Param,
    Cookie,
}

/// Every token in `p`'s locations. A header prefix (`Bearer `) is matched without regard to
/// case, as HTTP auth schemes are; a token that the proxy did not see would reach the app
/// unverified.
fn tokens(p: &JwtProvider, headers: &HeaderMap, uri: &Uri) -> Vec<(String, Location)> {
    let mut out = Vec::new();
    let default = p.from_headers.is_empty() && p.from_params.is_empty() && p.from_cookies.is_empty();
    let header_rules: Vec<(String, String)> =
        if default { vec![("authorization".into(), "Bearer ".into())] } else { p.from_headers.clone() };
    for (name, prefix) in &header_rules {
        let Ok(hn) = http::HeaderName::from_bytes(name.as_bytes()) else { continue };
        for v in headers.get_all(&hn) {
            let v = String::from_utf8_lossy(v.as_bytes());
            let rest = if prefix.is_empty() {
                Some(v.as_ref())
            } else {
                v.get(..prefix.len()).filter(|head| head.eq_ignore_ascii_case(prefix)).map(|_| &v[prefix.len()..])
            };
            if let Some(t) = rest {
                out.push((t.trim().to_string(), Location::Header(hn.clone())));
            }
        }
    }
    let params: Vec<String> = if default { vec!["access_token".into()] } else { p.from_params.clone() };
    if let Some(q) = uri.query() {
        for pair in q.split('&') {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            if params.iter().any(|p| p == k) {
                out.push((v.to_string(), Location::Param));
            }
        }
    }
    if !p.from_cookies.is_empty() {
        for v in headers.get_all(http::header::COOKIE) {
            for c in String::from_utf8_lossy(v.as_bytes()).split(';') {
                if let Some((k, v)) = c.trim().split_once('=')
                    && p.from_cookies.iter().any(|n| n == k)
                {
                    out.push((v.to_string(), Location::Cookie));
                }
            }
        }
    }
    out.retain(|(t, _)| !t.is_empty());
    out
}

fn describe(e: &jsonwebtoken::errors::Error) -> String {
    use jsonwebtoken::errors::ErrorKind;
    match e.kind() {
        ErrorKind::ExpiredSignature => "Jwt is expired".into(),
        ErrorKind::ImmatureSignature => "Jwt not yet valid".into(),
        ErrorKind::InvalidAudience => "Audiences in Jwt are not allowed".into(),
        ErrorKind::MissingRequiredClaim(c) if c == "aud" => "Audiences in Jwt are not allowed".into(),
        ErrorKind::InvalidIssuer => "Jwt issuer is not configured".into(),
        ErrorKind::InvalidSignature => "Jwt verification fails".into(),
        ErrorKind::InvalidAlgorithm => "Jwt verification fails (algorithm mismatch)".into(),
        _ => format!("Jwt verification fails: {e}"),
    }
}

impl JwtAuth {
    pub fn compile(providers: &[JwtProvider]) -> Result<JwtAuth, String> {
        let mut out = Vec::new();
        for p in providers {
            let inline = match &p.jwks {
                Some(text) => Some(Arc::new(serde_json::from_str::<JwkSet>(text).map_err(|e| {
                    format!("RequestAuthentication {} issuer {}: jwks is not a valid JWKS: {e}", p.policy, p.issuer)
                })?)),
                None => None,
            };
            if inline.is_none() && p.jwks_uri.is_none() {
                return Err(format!(
                    "RequestAuthentication {} issuer {}: needs jwks or jwksUri (OpenID discovery is not supported)",
                    p.policy, p.issuer
                ));
            }
            out.push(Provider { cfg: p.clone(), inline });
        }
        Ok(JwtAuth { providers: out })
    }

    pub fn is_empty(&self) -> bool {
        self.providers.is_empty()
    }

    /// Verify the request's tokens, if it has any. Ok(None): no token. Err: the 401 body.
    /// Every token in any configured location must verify (two Authorization headers, or a
    /// header and an `access_token` parameter, are two tokens). The claim and payload headers
    /// the rules name are removed first and set only from verified tokens, so a caller cannot
    /// forge them; verified tokens are removed unless `forwardOriginalToken`.
    pub async fn authenticate(
        &self,
        cache: &JwksCache,
        headers: &mut HeaderMap,
        uri: &Uri,
    ) -> Result<Option<Verified>, String> {
        for p in &self.providers {
            let outputs =
                p.cfg.output_payload_to_header.iter().chain(p.cfg.output_claim_to_headers.iter().map(|(_, h)| h));
            for h in outputs {
                if let Ok(name) = http::HeaderName::from_bytes(h.as_bytes()) {
                    headers.remove(name);
                }
            }
        }
        // Each distinct token, with where it was and which providers look there.
        let mut found: Vec<(String, Location, Vec<usize>)> = Vec::new();
        for (i, p) in self.providers.iter().enumerate() {
            for (token, location) in tokens(&p.cfg, headers, uri) {
                match found.iter_mut().find(|(t, l, _)| *t == token && *l == location) {
                    Some((_, _, providers)) => providers.push(i),
                    None => found.push((token, location, vec![i])),
                }
            }
        }
        let mut verified: Vec<(usize, String, Location, Verified)> = Vec::new();
        for (token, location, candidates) in found {
            let claims: Value = match jsonwebtoken::dangerous::insecure_decode::<Value>(&token) {
                Ok(d) => d.claims,
                Err(_) => {
                    return Err(
                        "Jwt is not in the form of Header.Payload.Signature with two dots and 3 sections".into()
                    );
                }
            };
            let issuer = claims.get("iss").and_then(Value::as_str);
            let Some(&i) = candidates.iter().find(|&&i| Some(self.providers[i].cfg.issuer.as_str()) == issuer) else {
                return Err("Jwt issuer is not configured".into());
            };
            let v = self.verify(&self.providers[i], cache, &token).await?;
            verified.push((i, token, location, v));
        }
        let mut first = None;
        for (i, token, location, v) in verified {
            let p = &self.providers[i].cfg;
            if !p.forward_original_token
                && let Location::Header(h) = &location
            {
                headers.remove(h);
            }
            if let Some(h) = &p.output_payload_to_header
                && let Some(payload) = token.split('.').nth(1)
                && let (Ok(name), Ok(v)) = (http::HeaderName::from_bytes(h.as_bytes()), HeaderValue::from_str(payload))
            {
                headers.insert(name, v);
            }
            for (claim, header) in &p.output_claim_to_headers {
                let vals = v.claim(&[claim.as_str()]);
                if let (Some(value), Ok(name)) = (vals.first(), http::HeaderName::from_bytes(header.as_bytes()))
                    && let Ok(value) = HeaderValue::from_str(value)
                {
                    headers.insert(name, value);
                }
            }
            first.get_or_insert(v);
        }
        Ok(first)
    }

    async fn verify(&self, p: &Provider, cache: &JwksCache, token: &str) -> Result<Verified, String> {
        let header = jsonwebtoken::decode_header(token).map_err(|e| describe(&e))?;
        let timeout = p.cfg.timeout_ms.map(Duration::from_millis).unwrap_or(DEFAULT_FETCH_TIMEOUT);
        let mut miss = false;
        loop {
            let set = match (&p.inline, &p.cfg.jwks_uri) {
                (Some(s), _) => s.clone(),
                (None, Some(uri)) => cache.get(uri, timeout, miss).await?,
                (None, None) => return Err("Jwks is not configured".into()),
            };
            let candidates: Vec<_> = match &header.kid {
                Some(kid) => set.keys.iter().filter(|k| k.common.key_id.as_deref() == Some(kid.as_str())).collect(),
                None => set.keys.iter().collect(),
            };
            if candidates.is_empty() {
                if p.inline.is_none() && !miss {
                    miss = true;
                    continue;
                }
                return Err("Jwks doesn't have key to match kid or alg from Jwt".into());
            }
            let mut validation = Validation::new(header.alg);
            validation.set_issuer(&[&p.cfg.issuer]);
            validation.leeway = LEEWAY_SECS;
            validation.validate_nbf = true;
            validation.set_required_spec_claims::<&str>(&[]);
            if p.cfg.audiences.is_empty() {
                validation.validate_aud = false;
            } else {
                // A token without `aud` is not for any of the listed audiences (Envoy: 401).
                validation.set_audience(&p.cfg.audiences);
                validation.set_required_spec_claims(&["aud"]);
            }
            let mut last = None;
            for jwk in candidates {
                let Ok(key) = DecodingKey::from_jwk(jwk) else { continue };
                match jsonwebtoken::decode::<Value>(token, &key, &validation) {
                    Ok(data) => {
                        let sub = data.claims.get("sub").and_then(Value::as_str).unwrap_or("");
                        return Ok(Verified { principal: format!("{}/{sub}", p.cfg.issuer), claims: data.claims });
                    }
                    Err(e) => last = Some(describe(&e)),
                }
            }
            return Err(last.unwrap_or_else(|| "Jwks doesn't have key to match kid or alg from Jwt".into()));
        }
    }
}
