//! The discovery stream, meshd's side: register the proxy, send it the config types whose
//! version changed each time the push pipeline (`push.rs`) has translated a change, record
//! ACKs and NACKs.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use mesh_api::identity::SpiffeId;
use mesh_api::protocol::{IdentityReport, MAX_FRAME, MeshdMessage, Nacked, ProxyMessage};
use mesh_api::proxy_config::ConfigType;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::codec::{Framed, LengthDelimitedCodec};
use tracing::{debug, info, warn};

use crate::ca::{Ca, CaView};
use crate::metrics::{TypeLabel, xds_type};
use crate::push::{Entry, Part, slot};
use crate::state::State;

/// What a discovery session needs from meshd.
pub struct Context {
    pub state: Arc<State>,
    pub ca: Arc<Ca>,
    /// The token the proxy presented; the Welcome proves meshd saw it.
    pub token: String,
    pub mesh: crate::translate::MeshConfig,
    /// Who the proxy's credential says it is: its hello must match.
    pub caller: Credential,
}

/// What a proxy's credential says it is.
pub enum Credential {
    /// A Kubernetes service-account token, checked by a TokenReview.
    ServiceAccount(crate::kubernetes::Caller),
    /// A proxy token minted by this meshd (local platform).
    ProxyToken(mesh_api::control::ProxyTokenClaims),
}

impl Credential {
    fn check(&self, w: &mesh_api::protocol::Workload) -> Result<(), String> {
        match self {
            Credential::ServiceAccount(c) => c.check(w),
            Credential::ProxyToken(c) => crate::proxy_token::check(c, w),
        }
    }
}

const HELLO_TIMEOUT: Duration = Duration::from_secs(10);

pub fn codec() -> LengthDelimitedCodec {
    LengthDelimitedCodec::builder().max_frame_length(MAX_FRAME).new_codec()
}

async fn send<T: AsyncRead + AsyncWrite + Unpin>(
    framed: &mut Framed<T, LengthDelimitedCodec>,
    msg: &MeshdMessage,
) -> std::io::Result<()> {
    let body = serde_json::to_vec(msg).map_err(std::io::Error::other)?;
    framed.send(Bytes::from(body)).await
}

/// Write one large, already-encoded frame straight to the stream: through the codec it would
/// be copied into the write buffer, which keeps that capacity for the life of the stream
/// (a mesh-sized buffer per proxy).
async fn send_frame<T: AsyncRead + AsyncWrite + Unpin>(
    framed: &mut Framed<T, LengthDelimitedCodec>,
    frame: Bytes,
) -> std::io::Result<()> {
    use tokio::io::AsyncWriteExt;
    SinkExt::<Bytes>::flush(framed).await?;
    let len = u32::try_from(frame.len()).map_err(|_| std::io::Error::other("frame too large"))?;
    if frame.len() > MAX_FRAME {
        return Err(std::io::Error::other(format!("a push of {} bytes is over the frame limit", frame.len())));
    }
    let io = framed.get_mut();
    io.write_all(&len.to_be_bytes()).await?;
    io.write_all(&frame).await?;
    io.flush().await
}

pub async fn serve<T: AsyncRead + AsyncWrite + Unpin>(ctx: Arc<Context>, io: T) {
    let state = &ctx.state;
    let mut framed = Framed::new(io, codec());
    let hello = match tokio::time::timeout(HELLO_TIMEOUT, framed.next()).await {
        Ok(Some(Ok(frame))) => serde_json::from_slice::<ProxyMessage>(&frame),
        Ok(_) | Err(_) => {
            debug!("discovery stream closed before hello");
            return;
        }
    };
    let (workload, challenge, features) = match hello {
        Ok(ProxyMessage::Hello { workload, challenge, features }) => (workload, challenge, features),
        Ok(other) => {
            let _ = send(&mut framed, &MeshdMessage::Error { message: format!("expected hello, got {other:?}") }).await;
            return;
        }
        Err(e) => {
            let _ = send(&mut framed, &MeshdMessage::Error { message: format!("malformed hello: {e}") }).await;
            return;
        }
    };
    if let Err(e) = ctx.caller.check(&workload) {
        warn!(error = %e, "refused proxy");
        let _ = send(&mut framed, &MeshdMessage::Error { message: e }).await;
        return;
    }
    let id = match state.register(workload.clone()) {
        Ok(id) => id,
        Err(e) => {
            warn!(error = %e, "refused proxy");
            let _ = send(&mut framed, &MeshdMessage::Error { message: e.to_string() }).await;
            return;
        }
    };
    info!(proxy = %id, "proxy connected");
    let proof = mesh_api::protocol::discovery_proof(&ctx.token, &challenge);
    // The types this proxy takes as deltas, by `push::slot`.
    let deltas = ConfigType::ALL.map(|t| {
        let feature = match t {
            ConfigType::Endpoints => mesh_api::protocol::ENDPOINTS_DELTA,
            ConfigType::Routes => mesh_api::protocol::ROUTES_DELTA,
            _ => return false,
        };
        features.iter().any(|f| f == feature)
    });
    let result = run(&ctx, &id, &workload, proof, deltas, &mut framed).await;
    state.unregister(&id);
    match result {
        Ok(()) => info!(proxy = %id, "proxy disconnected"),
        Err(e) => info!(proxy = %id, error = %e, "proxy stream ended"),
    }
}

/// Where one proxy stands with the CA, so each message is sent once per change.
struct IdentitySync {
    report: IdentityReport,
    bundle_sent: String,
    renew_seen: u64,
    /// The signer a renewal was last requested for (or a CSR was last answered under).
    renew_asked_for: String,
}

impl IdentitySync {
    /// What to send the proxy so it converges on `view`.
    fn reconcile(&mut self, view: &CaView, id: &str) -> Vec<MeshdMessage> {
        let mut out = Vec::new();
        if self.report.bundle_version != view.bundle_version && self.bundle_sent != view.bundle_version {
            self.bundle_sent = view.bundle_version.clone();
            out.push(MeshdMessage::TrustBundle { pem: view.bundle_pem.clone() });
        }
        let epoch = view.renew_epoch(id);
        let stale_signer = self.report.cert.as_ref().is_some_and(|c| c.authority_key_id != view.signer_key_id);
        if epoch > self.renew_seen || (stale_signer && self.renew_asked_for != view.signer_key_id) {
            self.renew_seen = self.renew_seen.max(epoch);
            self.renew_asked_for = view.signer_key_id.clone();
            out.push(MeshdMessage::Renew);
        }
        out
    }
}

async fn run<T: AsyncRead + AsyncWrite + Unpin>(
    ctx: &Context,
    id: &str,
    workload: &mesh_api::protocol::Workload,
    proof: String,
    deltas: [bool; ConfigType::ALL.len()],
    framed: &mut Framed<T, LengthDelimitedCodec>,
) -> std::io::Result<()> {
    let state = &ctx.state;
    send(framed, &MeshdMessage::Welcome { meshd: state.meshd_id().to_string(), proxy_id: id.to_string(), proof })
        .await?;
    let identity = SpiffeId::new(ctx.ca.trust_domain(), &workload.namespace, &workload.service_account);
    let mut ca_rx = ctx.ca.subscribe();
    let mut sync = IdentitySync {
        report: IdentityReport::default(),
        bundle_sent: String::new(),
        renew_seen: ca_rx.borrow_and_update().renew_epoch(id),
        renew_asked_for: String::new(),
    };
    // The push pipeline (`push::run`) translates every world change for every proxy; this
    // session sends its proxy the parts whose version changed, as serialized there.
    let mut pushes_rx = state.subscribe_pushes();
    let mut sent: [Option<String>; ConfigType::ALL.len()] = Default::default();
    let mut nonce = 0u64;
    let metrics = &state.metrics;
    let session_start = std::time::Instant::now();
    // The parts of the pushes not yet acknowledged, and when the oldest change they carry
    // was made: once all are acknowledged, that is one convergence-time sample.
    let mut unacked: Vec<(ConfigType, String)> = Vec::new();
    let mut unacked_since: Option<std::time::Instant> = None;
    // The endpoints version last sent as a delta: a NACK of it is answered with the whole.
    let mut delta_sent: [Option<String>; ConfigType::ALL.len()] = Default::default();
    loop {
        let pushes = pushes_rx.borrow_and_update().clone();
        let noticed = std::time::Instant::now();
        // Not translated for this proxy yet (it registered after that change): the next
        // change, which its registration caused, will have it.
        if let Some(mine) = pushes.by_proxy.get(id) {
            let parts = &mine.parts;
            let changed: Vec<(ConfigType, &Part)> = ConfigType::ALL
                .into_iter()
                .zip(parts.iter())
                .zip(&sent)
                .filter(|((_, p), s)| s.as_deref() != Some(p.version.as_str()))
                .map(|((t, p), _)| (t, &**p))
                .collect();
            state.update_status(id, |types| {
                for (t, p) in ConfigType::ALL.into_iter().zip(parts.iter()) {
                    let s = types.entry(t).or_default();
                    s.current = p.version.clone();
                    if changed.iter().any(|(c, _)| *c == t) {
                        s.sent = Some(p.version.clone());
                    }
                }
            });
            state.translated(id, pushes.generation);
            if !changed.is_empty() {
                nonce += 1;
                // A type as a delta when the proxy takes it and holds the delta's base.
                let mut entries: Vec<Entry<'_>> = Vec::with_capacity(changed.len());
                for (t, p) in &changed {
                    let i = slot(*t);
                    let delta = mine.deltas[i].as_ref().filter(|d| deltas[i] && sent[i].as_deref() == Some(&*d.base));
                    delta_sent[i] = delta.map(|_| p.version.clone());
                    entries.push(match delta {
                        Some(d) => {
                            metrics.deltas.get_or_create(&TypeLabel { r#type: xds_type(*t) }).inc();
                            Entry::Delta(*t, d)
                        }
                        None => Entry::Whole(*t, p),
                    });
                }
                send_frame(framed, crate::push::frame(nonce, &entries)).await?;
                debug!(proxy = %id, nonce, "pushed");
                metrics.push_time.observe(noticed.elapsed().as_secs_f64());
                let changed_at = pushes.changed_at.map_or(session_start, |c| c.max(session_start));
                unacked_since = Some(unacked_since.map_or(changed_at, |u| u.min(changed_at)));
                for (t, p) in &changed {
                    metrics.pushes.get_or_create(&TypeLabel { r#type: xds_type(*t) }).inc();
                    unacked.retain(|(u, _)| u != t);
                    unacked.push((*t, p.version.clone()));
                    if let Some(i) = ConfigType::ALL.iter().position(|x| x == t) {
                        sent[i] = Some(p.version.clone());
                    }
                }
            }
        }
        // Wait for new config while handling the proxy's answers.
        loop {
            tokio::select! {
                changed = pushes_rx.changed() => {
                    if changed.is_err() {
                        return Ok(()); // meshd is shutting down
                    }
                    break;
                }
                changed = ca_rx.changed() => {
                    if changed.is_err() {
                        return Ok(());
                    }
                    let view = ca_rx.borrow_and_update().clone();
                    for msg in sync.reconcile(&view, id) {
                        send(framed, &msg).await?;
                    }
                }
                frame = framed.next() => {
                    let Some(frame) = frame else { return Ok(()) };
                    let frame = frame?;
                    match serde_json::from_slice::<ProxyMessage>(&frame) {
                        Ok(ProxyMessage::Ack { config_type, version, .. }) => {
                            unacked.retain(|(t, v)| !(*t == config_type && *v == version));
                            if unacked.is_empty()
                                && let Some(since) = unacked_since.take()
                            {
                                metrics.convergence.observe(since.elapsed().as_secs_f64());
                            }
                            state.update_status(id, |types| {
                                let s = types.entry(config_type).or_default();
                                s.acked = Some(version);
                            })
                        }
                        Ok(ProxyMessage::Nack { config_type, version, .. })
                            if delta_sent[slot(config_type)].as_ref() == Some(&version) =>
                        {
                            debug!(proxy = %id, %config_type, %version, "delta refused; sending the whole");
                            delta_sent[slot(config_type)] = None;
                            sent[slot(config_type)] = None;
                            break;
                        }
                        Ok(ProxyMessage::Nack { config_type, version, error, .. }) => {
                            warn!(proxy = %id, %config_type, %version, %error, "proxy rejected config");
                            metrics.rejects.get_or_create(&TypeLabel { r#type: xds_type(config_type) }).inc();
                            state.update_status(id, |types| {
                                types.entry(config_type).or_default().nacked = Some(Nacked { version, error });
                            });
                        }
                        Ok(ProxyMessage::Hello { .. }) => warn!(proxy = %id, "ignoring a second hello"),
                        Ok(ProxyMessage::Csr { csr_pem }) => {
                            let view = ctx.ca.view();
                            metrics.csr.inc();
                            let reply = match ctx.ca.sign(&csr_pem, &identity) {
                                Ok(cert_pem) => {
                                    info!(proxy = %id, %identity, "issued a workload certificate");
                                    metrics.issued.inc();
                                    sync.bundle_sent = view.bundle_version.clone();
                                    sync.renew_asked_for = view.signer_key_id.clone();
                                    MeshdMessage::Certificate { cert_pem, trust_bundle_pem: view.bundle_pem.clone() }
                                }
                                Err(e) => {
                                    warn!(proxy = %id, error = %e, "refused a CSR");
                                    metrics.csr_errors.inc();
                                    MeshdMessage::CertificateError { message: e.to_string() }
                                }
                            };
                            send(framed, &reply).await?;
                        }
                        Ok(ProxyMessage::Identity(report)) => {
                            sync.report = report.clone();
                            state.update_identity(id, report);
                            let view = ctx.ca.view();
                            for msg in sync.reconcile(&view, id) {
                                send(framed, &msg).await?;
                            }
                        }
                        Err(e) => {
                            return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, format!("malformed message from proxy: {e}")));
                        }
                    }
                }
            }
        }
    }
}
