//! The discovery client: connect to meshd, say who we are, apply pushes atomically, ACK or
//! NACK each config type, and reconnect with backoff while serving the last good snapshot.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http::{Request, StatusCode, header};
use http_body_util::Empty;
use hyper_util::rt::TokioIo;
use mesh_api::protocol::{DISCOVERY_PATH, MAX_FRAME, MeshdMessage, ProxyMessage, Push, UPGRADE_TOKEN};
use mesh_api::proxy_config::{ConfigType, ProxyConfig};
use tokio::net::TcpStream;
use tokio_util::codec::{Framed, LengthDelimitedCodec};
use tracing::{info, warn};

use crate::Shared;
use crate::config::Snapshot;

/// Where to find meshd.
#[derive(Debug, Clone)]
pub enum MeshdSource {
    /// Read `meshd.json` from this MESH_HOME on every attempt, so a restarted meshd on a new
    /// port is found again. The credential is the proxy token in `token_file`; without one,
    /// the local development default: a proxy token for this workload minted through meshd's
    /// API with the admin token in MESH_HOME.
    Home { home: PathBuf, token_file: Option<PathBuf> },
    Fixed {
        /// `IP:PORT` or `HOST:PORT` (resolved at each connection attempt).
        address: String,
        token: String,
        /// Read the token again from here at each attempt (Kubernetes rotates projected
        /// tokens); `token` is kept if the file cannot be read.
        token_file: Option<PathBuf>,
        /// Talk TLS to meshd (its discovery port on Kubernetes).
        tls: Option<MeshdTls>,
        /// `token` is the admin token of this MESH_HOME (no `--token-file` was given): use it
        /// only to mint this proxy's own token (the local development default).
        mint: bool,
    },
}

/// What a proxy presents to meshd.
enum Credential {
    /// A proxy token or a service-account token, as read.
    Token(String),
    /// The admin token: not a proxy credential, only good for minting one.
    MintWith(String),
}

/// How to check meshd's certificate.
#[derive(Debug, Clone)]
pub struct MeshdTls {
    /// PEM roots to trust.
    pub ca_file: PathBuf,
    /// The name meshd's certificate must carry.
    pub server_name: String,
}

/// The connection to meshd: plain TCP, or TLS to its discovery port.
type MeshdStream = crate::upstream::connect::Stream;

async fn connect_meshd(address: &str, tls: Option<&MeshdTls>) -> Result<MeshdStream, String> {
    let tcp = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(address))
        .await
        .map_err(|_| format!("connecting to meshd at {address} timed out"))?
        .map_err(|e| format!("cannot connect to meshd at {address}: {e}"))?;
    let _ = tcp.set_nodelay(true);
    let Some(tls) = tls else { return Ok(MeshdStream::Plain(tcp)) };
    let config = crate::tls::meshd_client(&tls.ca_file)?;
    let name = rustls::pki_types::ServerName::try_from(tls.server_name.clone())
        .map_err(|e| format!("meshd server name {:?}: {e}", tls.server_name))?;
    let handshake = tokio_rustls::TlsConnector::from(config).connect(name, tcp);
    let stream = tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake)
        .await
        .map_err(|_| format!("TLS with meshd at {address} did not complete within {HANDSHAKE_TIMEOUT:?}"))?
        .map_err(|e| {
        format!(
            "TLS with meshd at {address} failed (is it meshd, with a certificate for {:?} from the root in {}?): {e}",
            tls.server_name,
            tls.ca_file.display()
        )
    })?;
    Ok(MeshdStream::Tls(Box::new(stream)))
}

impl MeshdSource {
    /// meshd's address, the credential, and how to check meshd's certificate (None: plain TCP).
    fn locate(&self) -> Result<(String, Credential, Option<&MeshdTls>), String> {
        match self {
            MeshdSource::Fixed { address, token, token_file, tls, mint } => {
                let fresh = token_file.as_ref().and_then(|f| match std::fs::read_to_string(f) {
                    Ok(t) if !t.trim().is_empty() => Some(t.trim().to_string()),
                    Ok(_) => None,
                    Err(e) => {
                        warn!(file = %f.display(), error = %e, "cannot read the token again; using the one read at start");
                        None
                    }
                });
                let token = fresh.unwrap_or_else(|| token.clone());
                let credential = if *mint { Credential::MintWith(token) } else { Credential::Token(token) };
                Ok((address.clone(), credential, tls.as_ref()))
            }
            MeshdSource::Home { home, token_file } => {
                let info = std::fs::read(home.join(mesh_api::home::INFO_FILE)).map_err(|e| {
                    format!(
                        "meshd is not running ({}: {e}); start it with `mesh install`",
                        home.join(mesh_api::home::INFO_FILE).display()
                    )
                })?;
                let info: serde_json::Value = serde_json::from_slice(&info).map_err(|e| format!("meshd.json: {e}"))?;
                let address = info
                    .get("address")
                    .and_then(|a| a.as_str())
                    .filter(|a| a.parse::<SocketAddr>().is_ok())
                    .ok_or("meshd.json has no valid address")?
                    .to_string();
                let credential = match token_file {
                    Some(f) => Credential::Token(
                        std::fs::read_to_string(f)
                            .map_err(|e| format!("cannot read the proxy token {}: {e}", f.display()))?
                            .trim()
                            .to_string(),
                    ),
                    None => Credential::MintWith(
                        std::fs::read_to_string(home.join(mesh_api::home::TOKEN_FILE))
                            .map_err(|e| format!("cannot read the admin token to mint a proxy token: {e}"))?
                            .trim()
                            .to_string(),
                    ),
                };
                Ok((address, credential, None))
            }
        }
    }
}

/// Ask meshd for a proxy token for this workload, with the admin token (the local development
/// default when no `--token-file` is given).
async fn mint_token(shared: &Shared, address: &str, tls: Option<&MeshdTls>, admin: &str) -> Result<String, String> {
    use mesh_api::control::{PROXY_TOKENS_PATH, ProxyTokenRequest, ProxyTokenResponse};
    let stream = connect_meshd(address, tls).await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("handshake with meshd failed: {e}"))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let w = &shared.workload;
    let body = serde_json::to_vec(&ProxyTokenRequest {
        namespace: w.namespace.clone(),
        workload: w.name.clone(),
        service_account: w.service_account.clone(),
        valid_for_secs: None,
    })
    .map_err(|e| e.to_string())?;
    let req = Request::post(PROXY_TOKENS_PATH)
        .header(header::HOST, address)
        .header(header::AUTHORIZATION, format!("Bearer {admin}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(http_body_util::Full::new(Bytes::from(body)))
        .map_err(|e| e.to_string())?;
    let resp = tokio::time::timeout(HANDSHAKE_TIMEOUT, sender.send_request(req))
        .await
        .map_err(|_| format!("meshd at {address} did not answer within {HANDSHAKE_TIMEOUT:?}"))?
        .map_err(|e| format!("asking meshd for a proxy token failed: {e}"))?;
    let status = resp.status();
    let body = tokio::time::timeout(
        HANDSHAKE_TIMEOUT,
        http_body_util::BodyExt::collect(http_body_util::Limited::new(resp.into_body(), 64 * 1024)),
    )
    .await
    .map_err(|_| "meshd did not send the proxy token".to_string())?
    .map_err(|e| format!("reading the proxy token: {e}"))?
    .to_bytes();
    if !status.is_success() {
        let why = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(String::from))
            .unwrap_or_else(|| status.to_string());
        return Err(format!("meshd would not mint a proxy token with the admin token in MESH_HOME: {why}"));
    }
    serde_json::from_slice::<ProxyTokenResponse>(&body)
        .map(|r| r.token)
        .map_err(|e| format!("malformed proxy token answer: {e}"))
}

/// How long meshd has to answer the discovery request (it may be asking the Kubernetes API
/// about the token) and to welcome the proxy.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(15);
/// How long the TCP connection to meshd may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long to wait for an answer to a CSR, or after a refusal, before asking again.
const CSR_RETRY: Duration = Duration::from_secs(10);
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// Run forever: connect, serve the stream, back off, repeat.
pub async fn run(shared: Arc<Shared>, source: MeshdSource) {
    let mut backoff = BACKOFF_MIN;
    // The proxy token minted under the development default, kept across reconnections.
    let mut minted: Option<String> = None;
    loop {
        let ended = session(&shared, &source, &mut minted).await;
        shared.metrics.meshd_connected.set(0);
        match ended {
            Ok(()) => {
                info!("meshd closed the discovery stream; keeping the last config and reconnecting");
                backoff = BACKOFF_MIN;
            }
            Err(e) => {
                warn!(error = %e, retry_in = ?backoff, "no discovery stream; keeping the last config");
                *shared.discovery_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
            }
        }
        // Full jitter keeps a fleet of proxies from reconnecting in lockstep.
        let wait = backoff.mul_f64(0.5 + fastrand::f64() * 0.5);
        tokio::time::sleep(wait).await;
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

async fn session(shared: &Arc<Shared>, source: &MeshdSource, minted: &mut Option<String>) -> Result<(), String> {
    let (address, credential, tls) = source.locate()?;
    let token = match credential {
        Credential::Token(t) => t,
        Credential::MintWith(_) if minted.is_some() => minted.clone().unwrap_or_default(),
        Credential::MintWith(admin) => {
            let t = mint_token(shared, &address, tls, &admin).await?;
            info!(
                workload = %shared.workload.name,
                "no --token-file: using a proxy token for this workload, minted with the admin token in MESH_HOME (local development default; see `mesh proxy token create`)"
            );
            *minted = Some(t.clone());
            t
        }
    };
    let stream = connect_meshd(&address, tls).await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake::<_, Empty<Bytes>>(TokioIo::new(stream))
        .await
        .map_err(|e| format!("handshake with meshd failed: {e}"))?;
    tokio::spawn(async move {
        let _ = conn.with_upgrades().await;
    });
    let req = Request::get(DISCOVERY_PATH)
        .header(header::HOST, address.as_str())
        .header(header::CONNECTION, "upgrade")
        .header(header::UPGRADE, UPGRADE_TOKEN)
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Empty::new())
        .map_err(|e| e.to_string())?;
    let resp = tokio::time::timeout(HANDSHAKE_TIMEOUT, sender.send_request(req))
        .await
        .map_err(|_| format!("meshd at {address} did not answer the discovery request within {HANDSHAKE_TIMEOUT:?}"))?
        .map_err(|e| format!("discovery request failed: {e}"))?;
    if resp.status() != StatusCode::SWITCHING_PROTOCOLS {
        let status = resp.status();
        // meshd says why in `{"error": ...}` (a wrong token, a TokenReview refusal, ...).
        let body = tokio::time::timeout(
            Duration::from_secs(5),
            http_body_util::BodyExt::collect(http_body_util::Limited::new(resp.into_body(), 16 * 1024)),
        )
        .await;
        let why = body
            .ok()
            .and_then(Result::ok)
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b.to_bytes()).ok())
            .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(String::from));
        if status == StatusCode::UNAUTHORIZED {
            // A minted token that meshd no longer takes (its key was replaced): mint again.
            *minted = None;
        }
        return Err(match why {
            Some(why) => format!("meshd refused the discovery stream ({status}): {why}"),
            None => format!("meshd refused the discovery stream: {status}"),
        });
    }
    let io = hyper::upgrade::on(resp).await.map_err(|e| format!("upgrade failed: {e}"))?;
    let mut framed =
        Framed::new(TokioIo::new(io), LengthDelimitedCodec::builder().max_frame_length(MAX_FRAME).new_codec());
    let challenge = random_hex()?;
    let hello = ProxyMessage::Hello {
        workload: shared.workload.clone(),
        challenge: challenge.clone(),
        features: vec![mesh_api::protocol::ENDPOINTS_DELTA.to_string(), mesh_api::protocol::ROUTES_DELTA.to_string()],
    };
    send(&mut framed, &hello).await?;
    let mut authenticated = false;
    // When to send the next CSR: the renewal time of the certificate in force, or a retry
    // after a request that got no answer or was refused.
    let mut next_csr: Option<Instant> = None;
    let welcome_by = tokio::time::Instant::now() + HANDSHAKE_TIMEOUT;
    loop {
        let due = next_csr;
        let renew = async {
            match due {
                Some(t) => tokio::time::sleep_until(t.into()).await,
                None => std::future::pending().await,
            }
        };
        let frame = tokio::select! {
            frame = framed.next() => frame,
            _ = tokio::time::sleep_until(welcome_by), if !authenticated => {
                return Err(format!("meshd at {address} did not welcome this proxy within {HANDSHAKE_TIMEOUT:?}"));
            }
            _ = renew, if authenticated => {
                info!("requesting a new certificate (renewal time reached, or retrying)");
                send_csr(shared, &mut framed).await?;
                next_csr = Some(Instant::now() + CSR_RETRY);
                continue;
            }
        };
        let Some(frame) = frame else { return Ok(()) };
        let frame = frame.map_err(|e| format!("discovery stream broke: {e}"))?;
        let msg: MeshdMessage = match serde_json::from_slice(&frame) {
            Ok(m) => m,
            Err(e) => return Err(format!("malformed message from meshd: {e}")),
        };
        if !authenticated && !matches!(msg, MeshdMessage::Welcome { .. } | MeshdMessage::Error { .. }) {
            return Err("meshd sent config before proving who it is; ignoring it".into());
        }
        match msg {
            MeshdMessage::Welcome { meshd, proxy_id, proof } => {
                if !mesh_api::protocol::verify_discovery_proof(&token, &challenge, &proof) {
                    return Err(format!(
                        "meshd at {address} could not prove it holds this mesh's token; not taking config from it"
                    ));
                }
                authenticated = true;
                shared.metrics.meshd_connected.set(1);
                *shared.discovery_error.lock().unwrap_or_else(|p| p.into_inner()) = None;
                info!(%meshd, %proxy_id, "connected to meshd");
                send(&mut framed, &ProxyMessage::Identity(shared.identity.report())).await?;
                if shared.identity.needs_cert() {
                    send_csr(shared, &mut framed).await?;
                    next_csr = Some(Instant::now() + CSR_RETRY);
                } else {
                    next_csr = shared.identity.state().renew_at;
                }
            }
            MeshdMessage::Error { message } => return Err(format!("meshd refused this proxy: {message}")),
            MeshdMessage::Push(push) => {
                for answer in apply_push(shared, push) {
                    send(&mut framed, &answer).await?;
                }
            }
            MeshdMessage::Certificate { cert_pem, trust_bundle_pem } => {
                match shared.identity.install_cert(&cert_pem, &trust_bundle_pem) {
                    Ok(()) => {
                        let s = shared.identity.state();
                        if let Some(c) = &s.cert {
                            info!(identity = %shared.identity.id, serial = %c.serial, "installed a new certificate");
                        }
                        shared.update_ready();
                        next_csr = s.renew_at;
                    }
                    Err(e) => {
                        warn!(error = %e, "refusing the certificate from meshd");
                        shared.identity.set_error(e);
                        next_csr = Some(Instant::now() + CSR_RETRY);
                    }
                }
                send(&mut framed, &ProxyMessage::Identity(shared.identity.report())).await?;
            }
            MeshdMessage::CertificateError { message } => {
                warn!(error = %message, "meshd refused to issue a certificate");
                shared.identity.set_error(message);
                next_csr = Some(Instant::now() + CSR_RETRY);
                send(&mut framed, &ProxyMessage::Identity(shared.identity.report())).await?;
            }
            MeshdMessage::TrustBundle { pem } => {
                match shared.identity.install_bundle(&pem) {
                    Ok(()) => info!("installed a new trust bundle"),
                    Err(e) => {
                        warn!(error = %e, "refusing the trust bundle from meshd");
                        shared.identity.set_error(e);
                    }
                }
                send(&mut framed, &ProxyMessage::Identity(shared.identity.report())).await?;
            }
            MeshdMessage::Renew => {
                info!("meshd asked for a new certificate");
                send_csr(shared, &mut framed).await?;
                next_csr = Some(Instant::now() + CSR_RETRY);
            }
        }
    }
}

async fn send_csr<T>(shared: &Shared, framed: &mut Framed<T, LengthDelimitedCodec>) -> Result<(), String>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let csr_pem = shared.identity.new_csr()?;
    send(framed, &ProxyMessage::Csr { csr_pem }).await
}

fn random_hex() -> Result<String, String> {
    let mut b = [0u8; 16];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b)
        .map_err(|_| "no system randomness".to_string())?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

async fn send<T>(framed: &mut Framed<T, LengthDelimitedCodec>, msg: &ProxyMessage) -> Result<(), String>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let body = serde_json::to_vec(msg).map_err(|e| e.to_string())?;
    framed.send(Bytes::from(body)).await.map_err(|e| format!("cannot send to meshd: {e}"))
}

/// Apply one push: each pushed type is tried on top of what is in force; a type that does
/// not compile is NACKed and the previous version of it stays. The resulting snapshot is
/// swapped in whole. Returns the ACK/NACK for every type in the push.
pub fn apply_push(shared: &Shared, push: Push) -> Vec<ProxyMessage> {
    let current = shared.snapshot.load_full();
    let mut candidate: ProxyConfig = current.raw.clone();
    let mut versions: HashMap<ConfigType, String> = current.versions.clone();
    let mut pushed: Vec<(ConfigType, String)> = Vec::new();
    if let Some(r) = push.routes {
        pushed.push((ConfigType::Routes, r.version.clone()));
        candidate.routes = r.body;
        versions.insert(ConfigType::Routes, r.version);
    }
    if let Some(c) = push.clusters {
        pushed.push((ConfigType::Clusters, c.version.clone()));
        candidate.clusters = c.body;
        versions.insert(ConfigType::Clusters, c.version);
    }
    if let Some(e) = push.endpoints {
        pushed.push((ConfigType::Endpoints, e.version.clone()));
        candidate.endpoints = e.body;
        versions.insert(ConfigType::Endpoints, e.version);
    }
    if let Some(l) = push.listeners {
        pushed.push((ConfigType::Listeners, l.version.clone()));
        candidate.listeners = l.body;
        versions.insert(ConfigType::Listeners, l.version);
    }
    let mut rejected: HashMap<ConfigType, String> = HashMap::new();
    if let Some(d) = push.routes_delta {
        pushed.push((ConfigType::Routes, d.version.clone()));
        let holds = current.versions.get(&ConfigType::Routes);
        let version = d.version.clone();
        let applied = if holds == Some(&d.base) {
            d.apply(&mut candidate.routes)
        } else {
            Err(format!(
                "routes delta on version {} but this proxy holds {}",
                d.base,
                holds.map_or("none", String::as_str)
            ))
        };
        match applied {
            Ok(()) => {
                versions.insert(ConfigType::Routes, version);
            }
            Err(e) => {
                // meshd answers this NACK with the whole routes.
                candidate.routes = current.raw.routes.clone();
                rejected.insert(ConfigType::Routes, e);
            }
        }
    }
    if let Some(d) = push.endpoints_delta {
        pushed.push((ConfigType::Endpoints, d.version.clone()));
        let holds = current.versions.get(&ConfigType::Endpoints);
        if holds == Some(&d.base) {
            for gone in &d.removed {
                candidate.endpoints.clusters.remove(gone);
            }
            candidate.endpoints.clusters.extend(d.updated);
            versions.insert(ConfigType::Endpoints, d.version);
        } else {
            // meshd answers this NACK with the whole endpoints.
            rejected.insert(
                ConfigType::Endpoints,
                format!(
                    "endpoints delta on version {} but this proxy holds {}",
                    d.base,
                    holds.map_or("none", String::as_str)
                ),
            );
        }
    }
    let compiled = loop {
        match Snapshot::compile(candidate.clone(), versions.clone()) {
            Ok(s) => break Some(s),
            Err(e) => {
                let is_new = pushed.iter().any(|(t, _)| *t == e.config_type) && !rejected.contains_key(&e.config_type);
                if !is_new {
                    // Even the previous parts do not fit together with what is left: reject the push whole.
                    for (t, _) in &pushed {
                        rejected.entry(*t).or_insert_with(|| e.message.clone());
                    }
                    break None;
                }
                warn!(error = %e, "rejecting config from meshd");
                rejected.insert(e.config_type, e.message.clone());
                match e.config_type {
                    ConfigType::Routes => candidate.routes = current.raw.routes.clone(),
                    ConfigType::Clusters => candidate.clusters = current.raw.clusters.clone(),
                    ConfigType::Endpoints => candidate.endpoints = current.raw.endpoints.clone(),
                    ConfigType::Listeners => candidate.listeners = current.raw.listeners.clone(),
                }
                match current.versions.get(&e.config_type) {
                    Some(v) => versions.insert(e.config_type, v.clone()),
                    None => versions.remove(&e.config_type),
                };
            }
        }
    };
    if let Some(s) = compiled {
        let changed = shared.snapshot.load().identities_changed(&s);
        shared.snapshot.store(Arc::new(s));
        shared.config_changed.notify_one();
        if !changed.is_empty() {
            shared.forget_mesh_connections(&changed);
        }
        shared.update_ready();
    }
    for (t, v) in &pushed {
        let accepted = !rejected.contains_key(t);
        shared.metrics.config_update(t.as_str(), v, accepted, current.versions.get(t).map(String::as_str));
    }
    pushed
        .into_iter()
        .map(|(config_type, version)| match rejected.get(&config_type) {
            Some(error) => ProxyMessage::Nack { config_type, version, nonce: push.nonce.clone(), error: error.clone() },
            None => ProxyMessage::Ack { config_type, version, nonce: push.nonce.clone() },
        })
        .collect()
}
