//! meshd's HTTP API: apply/get/delete for the CLI, proxy status, shutdown, and the upgrade
//! into the discovery stream. Every path but `/healthz` needs the bearer token.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use mesh_api::control::*;
use mesh_api::protocol::{DISCOVERY_PATH, UPGRADE_TOKEN};
use mesh_api::{Kind, Parsed};
use serde::Serialize;
use tokio::sync::Notify;
use tracing::warn;

use crate::state::{State, StateError};

const MAX_BODY: usize = 32 * 1024 * 1024;

pub struct Api {
    /// Mints and checks the proxies' own tokens (local platform).
    pub proxy_tokens: Arc<crate::proxy_token::Signer>,
    pub state: Arc<State>,
    pub ca: Arc<crate::ca::Ca>,
    pub token: String,
    pub mesh: crate::translate::MeshConfig,
    pub shutdown: Arc<Notify>,
    /// On Kubernetes: proxies may open the discovery stream with their pod's service-account
    /// token instead of the mesh token, checked by a TokenReview.
    pub kube: Option<kube::Client>,
}

type Resp = Response<Full<Bytes>>;

fn json<T: Serialize>(status: StatusCode, body: &T) -> Resp {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let mut r = Response::new(Full::new(Bytes::from(bytes)));
    *r.status_mut() = status;
    r.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static("application/json"));
    r
}

fn error(status: StatusCode, msg: impl Into<String>, details: Vec<String>) -> Resp {
    json(status, &ErrorBody { error: msg.into(), details })
}

/// Compare in time independent of where the first difference is.
fn token_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn bearer<B>(req: &Request<B>) -> Option<String> {
    req.headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|t| t.trim().to_string())
}

impl Api {
    fn authorized<B>(&self, req: &Request<B>) -> bool {
        bearer(req).is_some_and(|t| token_eq(t.as_bytes(), self.token.as_bytes()))
    }

    pub async fn handle(self: Arc<Self>, req: Request<Incoming>) -> Result<Resp, Infallible> {
        let path = req.uri().path().to_string();
        if path == HEALTH_PATH {
            return Ok(json(StatusCode::OK, &serde_json::json!({"status": "ok", "meshd": self.state.meshd_id()})));
        }
        // Admission webhooks: called by the Kubernetes API server (authenticated by TLS on a
        // cluster); they change nothing in meshd, so they need no token.
        if req.method() == Method::POST && (path == "/validate" || path == "/inject") {
            let review = match read_json::<serde_json::Value>(req).await {
                Ok(r) => r,
                Err(e) => return Ok(e),
            };
            let answer = if path == "/validate" {
                crate::admission::validate(&review)
            } else {
                crate::admission::inject(&review, &injection_settings(), &self.state.world().resources)
            };
            return Ok(json(StatusCode::OK, &answer));
        }
        let authorized = self.authorized(&req);
        if path == DISCOVERY_PATH && req.method() == Method::GET {
            return Ok(self.discovery(req, authorized).await);
        }
        if !authorized {
            return Ok(error(
                StatusCode::UNAUTHORIZED,
                "missing or wrong access token: use the token in MESH_HOME/token (is MESH_HOME pointing at this mesh?)",
                vec![],
            ));
        }
        let resp = match (req.method().clone(), path.as_str()) {
            (Method::POST, PROXY_TOKENS_PATH) => match read_json::<ProxyTokenRequest>(req).await {
                Ok(r) => self.mint(r),
                Err(e) => e,
            },
            (Method::POST, APPLY_PATH) => match read_json::<ApplyRequest>(req).await {
                Ok(r) => self.apply(r),
                Err(e) => e,
            },
            (Method::POST, DELETE_PATH) => match read_json::<DeleteRequest>(req).await {
                Ok(r) => self.delete(r),
                Err(e) => e,
            },
            (Method::GET, CREDENTIALS_PATH) => json(StatusCode::OK, &self.state.credential_infos()),
            (Method::POST, CREDENTIALS_PATH) => match read_json::<CredentialRequest>(req).await {
                Ok(r) => self.put_credential(r),
                Err(e) => e,
            },
            (Method::POST, CREDENTIALS_DELETE_PATH) => match read_json::<CredentialDeleteRequest>(req).await {
                Ok(r) => match self.state.delete_credential(&r.namespace, &r.name) {
                    Ok(()) => json(StatusCode::OK, &Change::Deleted),
                    Err(e @ StateError::NoCredential(..)) => error(StatusCode::NOT_FOUND, e.to_string(), vec![]),
                    Err(e @ StateError::NoCredentialStore) => error(StatusCode::CONFLICT, e.to_string(), vec![]),
                    Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string(), vec![]),
                },
                Err(e) => e,
            },
            (Method::GET, RESOURCES_PATH) => self.list(req.uri().query().unwrap_or("")),
            (Method::GET, PROXIES_PATH) => json(StatusCode::OK, &self.state.proxy_statuses()),
            (Method::GET, PROXY_CONFIG_PATH) => self.proxy_config(req.uri().query().unwrap_or("")),
            (Method::GET, CA_PATH) => json(StatusCode::OK, &self.ca_status()),
            (Method::POST, CA_RENEW_PATH) => match read_json::<RenewRequest>(req).await {
                Ok(r) => self.renew(r),
                Err(e) => e,
            },
            (Method::POST, CA_ROTATE_ROOT_PATH) => {
                match crate::rotation::rotate_root(&self.ca, &self.state, std::time::Duration::from_secs(120)).await {
                    Ok(report) => json(StatusCode::OK, &report),
                    Err(e) => error(StatusCode::CONFLICT, e, vec![]),
                }
            }
            (Method::POST, SHUTDOWN_PATH) => {
                self.shutdown.notify_one();
                json(StatusCode::OK, &serde_json::json!({"status": "shutting down"}))
            }
            _ => error(StatusCode::NOT_FOUND, format!("no such API: {} {path}", req.method()), vec![]),
        };
        Ok(resp)
    }

    /// Open a discovery stream for a proxy presenting its own credential: a proxy token this
    /// meshd minted, or on Kubernetes its pod's service-account token. The admin token is the
    /// CLI's and is refused here, so holding a sidecar's credential never means holding the
    /// mesh: the stream serves only the identity the credential names.
    async fn discovery(&self, req: Request<Incoming>, admin: bool) -> Resp {
        let Some(token) = bearer(&req) else {
            return error(
                StatusCode::UNAUTHORIZED,
                "no credential: a proxy presents a proxy token (`mesh proxy token create`) or its pod's service-account token",
                vec![],
            );
        };
        let caller = if token.starts_with(crate::proxy_token::PREFIX) {
            match self.proxy_tokens.verify(&token) {
                Ok(claims) => crate::discovery::Credential::ProxyToken(claims),
                Err(e) => {
                    warn!(error = %e, "refused a discovery stream");
                    return error(StatusCode::UNAUTHORIZED, e, vec![]);
                }
            }
        } else if admin {
            return error(
                StatusCode::UNAUTHORIZED,
                "the admin token in MESH_HOME/token is the CLI's credential, not a proxy's: give the proxy a token from `mesh proxy token create --workload NAME --service-account SA` (--token-file), or run `mesh proxy run` without --token-file to let it mint its own",
                vec![],
            );
        } else if let Some(client) = &self.kube {
            match crate::kubernetes::review_token(client, &token).await {
                Ok(caller) => crate::discovery::Credential::ServiceAccount(caller),
                Err(e) => {
                    warn!(error = %e, "refused a discovery stream");
                    return error(StatusCode::UNAUTHORIZED, e, vec![]);
                }
            }
        } else {
            return error(
                StatusCode::UNAUTHORIZED,
                "unknown credential: a proxy presents a proxy token from `mesh proxy token create`",
                vec![],
            );
        };
        self.upgrade(req, token, caller)
    }

    /// Mint a proxy token for one workload (admin token only).
    fn mint(&self, r: ProxyTokenRequest) -> Resp {
        let mut problems = Vec::new();
        for (what, v) in
            [("namespace", &r.namespace), ("workload", &r.workload), ("serviceAccount", &r.service_account)]
        {
            if !mesh_api::validate::is_dns_subdomain(v) {
                problems.push(format!("{what} {v:?}: use lowercase letters, digits, '-' and '.'"));
            }
        }
        if !problems.is_empty() {
            return error(StatusCode::UNPROCESSABLE_ENTITY, "invalid proxy token request; no token was made", problems);
        }
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        let exp = r.valid_for_secs.map(|s| now.saturating_add(s));
        let token = self.proxy_tokens.mint(ProxyTokenClaims {
            namespace: r.namespace,
            workload: r.workload,
            service_account: r.service_account,
            iat: now,
            exp,
        });
        json(StatusCode::OK, &ProxyTokenResponse { token, expires_unix: exp })
    }

    /// Switch to the discovery stream. `token`: what the proxy presented (meshd proves it saw
    /// it); `caller`: who that credential says the proxy is, which its hello must match.
    fn upgrade(&self, req: Request<Incoming>, token: String, caller: crate::discovery::Credential) -> Resp {
        let wants = req
            .headers()
            .get(header::UPGRADE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case(UPGRADE_TOKEN));
        if !wants {
            return error(
                StatusCode::BAD_REQUEST,
                format!("the discovery stream needs `Upgrade: {UPGRADE_TOKEN}`"),
                vec![],
            );
        }
        let ctx = Arc::new(crate::discovery::Context {
            state: self.state.clone(),
            ca: self.ca.clone(),
            token,
            mesh: self.mesh.clone(),
            caller,
        });
        tokio::spawn(async move {
            match hyper::upgrade::on(req).await {
                Ok(upgraded) => crate::discovery::serve(ctx, TokioIo::new(upgraded)).await,
                Err(e) => warn!(error = %e, "discovery upgrade failed"),
            }
        });
        let mut r = Response::new(Full::new(Bytes::new()));
        *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        r.headers_mut().insert(header::CONNECTION, header::HeaderValue::from_static("upgrade"));
        r.headers_mut().insert(header::UPGRADE, header::HeaderValue::from_static(UPGRADE_TOKEN));
        r
    }

    /// What meshd would send one proxy now (for `mesh proxy-status NAME`'s diff).
    pub(crate) fn proxy_config(&self, query: &str) -> Resp {
        let id = query.split('&').find_map(|kv| kv.strip_prefix("id=")).unwrap_or("").replace("%2F", "/");
        let world = self.state.world();
        let Some(w) = world.workload(&id) else {
            return error(StatusCode::NOT_FOUND, format!("no proxy {id:?} is connected"), vec![]);
        };
        let cfg = crate::translate::translate_with(&world.resources, world.workload_list(), w, &self.mesh);
        json(StatusCode::OK, &cfg)
    }

    pub(crate) fn ca_status(&self) -> CaStatus {
        let view = self.ca.view();
        CaStatus {
            trust_domain: view.trust_domain.clone(),
            roots: view
                .roots
                .iter()
                .map(|r| RootStatus { signing: r.key_id == view.signing_root_key_id, cert: r.clone() })
                .collect(),
            bundle_version: view.bundle_version.clone(),
            issued: self.state.issued(),
        }
    }

    fn renew(&self, req: RenewRequest) -> Resp {
        let statuses = self.state.proxy_statuses();
        let proxies: Vec<String> = match &req.workload {
            None => statuses.iter().map(|p| p.id.clone()).collect(),
            Some(w) => statuses.iter().filter(|p| &p.id == w).map(|p| p.id.clone()).collect(),
        };
        if let Some(w) = &req.workload
            && proxies.is_empty()
        {
            return error(StatusCode::NOT_FOUND, format!("no proxy {w} is connected"), vec![]);
        }
        self.ca.request_renew(req.workload.as_deref());
        json(StatusCode::OK, &RenewResponse { proxies })
    }

    fn apply(&self, req: ApplyRequest) -> Resp {
        let mut batch = Vec::new();
        let mut problems = Vec::new();
        for (i, doc) in req.resources.into_iter().enumerate() {
            match mesh_api::resource::parse_document(doc, &req.namespace, i) {
                Ok(Parsed::Supported(r)) => batch.push(r),
                Ok(Parsed::NotUsedLocally { kind, name } | Parsed::Unsupported { kind, name, .. }) => {
                    problems.push(format!("{kind} {name}: not a kind meshd stores"))
                }
                Err(e) => problems.push(e.to_string()),
            }
        }
        let mut seen = std::collections::HashSet::new();
        for r in &batch {
            if !seen.insert(r.key()) {
                problems.push(format!("{} appears twice in one apply", r.key()));
            }
        }
        if !problems.is_empty() {
            self.state.metrics.validation_failed.inc_by(problems.len() as u64);
            return error(StatusCode::UNPROCESSABLE_ENTITY, "invalid resources; nothing was applied", problems);
        }
        self.state.metrics.validation_passed.inc_by(batch.len() as u64);
        match self.state.apply(batch, req.dry_run) {
            Ok(changes) => json(
                StatusCode::OK,
                &ApplyResponse {
                    results: changes.into_iter().map(|(key, change)| ChangeResult { key, change }).collect(),
                },
            ),
            Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string(), vec![]),
        }
    }

    /// Check a credential (PEM that parses, key with certificate, valid now), then keep it.
    fn put_credential(&self, req: CredentialRequest) -> Resp {
        let c = req.credential;
        if !mesh_api::validate::is_dns_subdomain(&c.name) || !mesh_api::validate::is_dns_label(&c.namespace) {
            return error(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!(
                    "credential {:?} in namespace {:?}: not a valid name (lowercase letters, digits, '-' and '.')",
                    c.name, c.namespace
                ),
                vec![],
            );
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        let info = match c.check(now).and_then(|info| keys_match(&c).map(|()| info)) {
            Ok(info) => info,
            Err(e) => return error(StatusCode::UNPROCESSABLE_ENTITY, format!("{e}; nothing was stored"), vec![]),
        };
        match self.state.put_credential(c, req.overwrite) {
            Ok(change) => json(StatusCode::OK, &CredentialResponse { change, info }),
            Err(e @ StateError::CredentialExists(..)) => error(StatusCode::CONFLICT, e.to_string(), vec![]),
            Err(e @ StateError::NoCredentialStore) => error(StatusCode::CONFLICT, e.to_string(), vec![]),
            Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string(), vec![]),
        }
    }

    fn delete(&self, req: DeleteRequest) -> Resp {
        match self.state.delete(&req.keys, req.ignore_missing) {
            Ok(changes) => json(
                StatusCode::OK,
                &ApplyResponse {
                    results: changes.into_iter().map(|(key, change)| ChangeResult { key, change }).collect(),
                },
            ),
            Err(e @ StateError::NotFound(_)) => {
                error(StatusCode::NOT_FOUND, format!("{e}; nothing was deleted"), vec![])
            }
            Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string(), vec![]),
        }
    }

    /// `?kind=VirtualService&namespace=default&name=reviews`; namespace and name optional.
    fn list(&self, query: &str) -> Resp {
        let mut kind = None;
        let mut namespace = None;
        let mut name = None;
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            match k {
                "kind" => kind = Kind::from_cli(v),
                "namespace" if !v.is_empty() => namespace = Some(v.to_string()),
                "name" if !v.is_empty() => name = Some(v.to_string()),
                _ => {}
            }
        }
        let world = self.state.world();
        let selected: Vec<&mesh_api::Resource> = world
            .resources
            .values()
            .filter(|r| kind.is_none_or(|k| r.kind() == k))
            .filter(|r| namespace.as_deref().is_none_or(|ns| r.namespace() == ns))
            .filter(|r| name.as_deref().is_none_or(|n| r.name() == n))
            .collect();
        // Gateway API objects carry their conditions, as the API server would show what
        // Istio's controller wrote there (worked out once, and only when any is listed).
        let mut statuses = if selected.iter().any(|r| r.kind().is_gateway_api()) {
            crate::translate::gateway_api::all_conditions(&world.resources, &world.namespace_labels)
        } else {
            Default::default()
        };
        let items: Vec<serde_json::Value> = selected
            .into_iter()
            .map(|r| {
                let mut v = r.to_value();
                if let Some(status) = statuses.remove(&r.key()) {
                    v["status"] = status;
                }
                v
            })
            .collect();
        json(StatusCode::OK, &items)
    }
}

async fn read_json<T: serde::de::DeserializeOwned>(req: Request<Incoming>) -> Result<T, Resp> {
    let body = Limited::new(req.into_body(), MAX_BODY)
        .collect()
        .await
        .map_err(|e| error(StatusCode::PAYLOAD_TOO_LARGE, format!("cannot read request body: {e}"), vec![]))?
        .to_bytes();
    serde_json::from_slice(&body).map_err(|e| error(StatusCode::BAD_REQUEST, format!("malformed request: {e}"), vec![]))
}

/// What injected sidecars look like: the default profile's images, overridden by meshd's
/// environment on a cluster (`MESH_HUB`, `MESH_TAG`, and its own namespace `POD_NAMESPACE`).
pub(crate) fn injection_settings() -> crate::manifest::Settings {
    let mut s = crate::manifest::Settings::defaults();
    for (var, key) in [("MESH_HUB", "hub"), ("MESH_TAG", "tag"), ("POD_NAMESPACE", "namespace")] {
        if let Ok(v) = std::env::var(var)
            && let Err(e) = s.set(key, &v)
        {
            tracing::warn!(%var, error = %e, "ignoring a bad injection setting");
        }
    }
    s
}

/// Whether a credential's private key is the key of its certificate (rustls checks the public
/// keys match).
fn keys_match(c: &mesh_api::credential::Credential) -> Result<(), String> {
    use rustls::pki_types::pem::PemObject;
    let (Some(chain), Some(key)) = (&c.cert_chain, &c.private_key) else { return Ok(()) };
    let who = format!("credential {}/{}", c.namespace, c.name);
    let certs: Vec<rustls::pki_types::CertificateDer<'static>> =
        rustls::pki_types::CertificateDer::pem_slice_iter(chain.as_bytes())
            .collect::<Result<_, _>>()
            .map_err(|e| format!("{who}: the certificate: {e}"))?;
    let key = rustls::pki_types::PrivateKeyDer::from_pem_slice(key.as_bytes())
        .map_err(|e| format!("{who}: the private key: {e}"))?;
    let provider = rustls::crypto::ring::default_provider();
    rustls::sign::CertifiedKey::from_der(certs, key, &provider)
        .map(|_| ())
        .map_err(|e| format!("{who}: the private key does not belong to the certificate ({e})"))
}
