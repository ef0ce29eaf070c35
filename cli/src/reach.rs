//! How the CLI reaches meshd's view of the proxies and each proxy's admin API: directly on the
//! local platform; on a cluster through port-forwards made by the API server, as istioctl
//! reaches istiod's debug endpoints and Envoy's admin: to meshd's pod on its monitoring port
//! (15014: `/debug/proxies`, `/debug/config`, `/debug/ca`, read-only), and to a proxy's pod on
//! the loopback admin port the proxy reported.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use mesh_api::protocol::ProxyStatus;
use serde::de::DeserializeOwned;

use crate::Ctx;
use crate::cli::Platform;
use crate::client::MeshdClient;
use crate::cmd::kube::explain;
use crate::error::{CliError, Result};

/// Where meshd runs on a cluster, and its monitoring port.
pub const MESHD_NAMESPACE: &str = "istio-system";
const MESHD_MONITORING: u16 = 15014;
/// meshd's API port on a cluster (`--listen 0.0.0.0:15010`).
const MESHD_API: u16 = 15010;
/// How long one request through a port-forward may take.
const TIMEOUT: Duration = Duration::from_secs(10);

pub enum Reach {
    Local(Box<MeshdClient>),
    Kube { client: kube::Client, meshd_pod: String },
}

impl Ctx {
    /// meshd and the proxies, on the platform the global flags name.
    pub async fn reach(&self) -> Result<Reach> {
        match self.global.platform {
            Platform::Local => Ok(Reach::Local(Box::new(self.client()?))),
            Platform::Kube => {
                let client = crate::cmd::kube::client(self).await?;
                let meshd_pod = meshd_pod(&client).await?;
                Ok(Reach::Kube { client, meshd_pod })
            }
        }
    }
}

/// A running meshd pod.
async fn meshd_pod(client: &kube::Client) -> Result<String> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), MESHD_NAMESPACE);
    let list =
        pods.list(&ListParams::default().labels("app=meshd")).await.map_err(|e| explain(e, "finding meshd's pod"))?;
    list.items
        .into_iter()
        .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()).is_none_or(|ph| ph == "Running"))
        .find_map(|p| p.metadata.name)
        .ok_or_else(|| {
            CliError::unavailable(format!(
                "no running meshd pod in {MESHD_NAMESPACE} (label app=meshd); is the mesh installed? `mesh verify-install --platform kube` says"
            ))
        })
}

/// meshd's log through the API server (`kubectl logs`): what it is (for messages) and the
/// stream of it, the last `tail` lines, and what follows while `follow`.
pub async fn meshd_log(
    ctx: &Ctx,
    tail: Option<usize>,
    follow: bool,
) -> Result<(String, impl futures_util::AsyncBufRead + use<>)> {
    let client = crate::cmd::kube::client(ctx).await?;
    let pod = meshd_pod(&client).await?;
    let pods: Api<Pod> = Api::namespaced(client, MESHD_NAMESPACE);
    let lp = kube::api::LogParams {
        container: Some("meshd".into()),
        follow,
        tail_lines: tail.map(|n| i64::try_from(n).unwrap_or(i64::MAX)),
        ..Default::default()
    };
    let what = format!("the log of {MESHD_NAMESPACE}/{pod}");
    let log = pods.log_stream(&pod, &lp).await.map_err(|e| explain(e, &what))?;
    Ok((what, log))
}

/// One HTTP request to `port` of a pod, through a port-forward.
async fn forward(
    client: &kube::Client,
    namespace: &str,
    pod: &str,
    port: u16,
    method: http::Method,
    path: &str,
) -> Result<(http::StatusCode, Vec<u8>)> {
    let what = format!("port {port} of pod {namespace}/{pod}");
    let call = async {
        let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
        let mut pf = pods.portforward(pod, &[port]).await.map_err(|e| match e {
            // The pod or port is not there (restarted, renamed): nothing to reach.
            kube::Error::Api(s) if s.code != 403 => CliError::unavailable(format!(
                "cannot port-forward to {what}: {} ({}); is the pod running?",
                s.message, s.code
            )),
            e => explain(e, &format!("port-forwarding to {what}")),
        })?;
        let stream = pf
            .take_stream(port)
            .ok_or_else(|| CliError::unavailable(format!("the port-forward to {what} gave no stream")))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| CliError::unavailable(format!("{what}: {e}")))?;
        let driver = tokio::spawn(conn);
        let req = http::Request::builder()
            .method(method)
            .uri(path)
            .header(http::header::HOST, "localhost")
            .body(Empty::<Bytes>::new())
            .map_err(|e| CliError::internal(e.to_string()))?;
        let resp = sender.send_request(req).await.map_err(|e| CliError::unavailable(format!("{what}: {e}")))?;
        let status = resp.status();
        let body = resp.into_body().collect().await.map_err(|e| CliError::unavailable(format!("{what}: {e}")))?;
        drop(sender);
        driver.abort();
        pf.abort();
        Ok((status, body.to_bytes().to_vec()))
    };
    tokio::time::timeout(TIMEOUT, call)
        .await
        .map_err(|_| CliError::unavailable(format!("{what} did not answer within {}s", TIMEOUT.as_secs())))?
}

impl Reach {
    async fn meshd_get<T: DeserializeOwned>(&self, local: &str, debug: &str) -> Result<T> {
        match self {
            Reach::Local(client) => client.get(local).await,
            Reach::Kube { client, meshd_pod } => {
                let (status, body) =
                    forward(client, MESHD_NAMESPACE, meshd_pod, MESHD_MONITORING, http::Method::GET, debug).await?;
                if !status.is_success() {
                    return Err(CliError::failed(format!(
                        "meshd ({MESHD_NAMESPACE}/{meshd_pod}) answered {status} for {debug}: {}",
                        String::from_utf8_lossy(&body).trim()
                    )));
                }
                serde_json::from_slice(&body)
                    .map_err(|e| CliError::unavailable(format!("unexpected answer from meshd for {debug}: {e}")))
            }
        }
    }

    /// Every connected proxy's sync state.
    pub async fn proxies(&self) -> Result<Vec<ProxyStatus>> {
        self.meshd_get(mesh_api::control::PROXIES_PATH, "/debug/proxies").await
    }

    /// What meshd would send the proxy `namespace/name` now.
    pub async fn proxy_config(&self, id: &str) -> Result<serde_json::Value> {
        let q = format!("?id={id}");
        self.meshd_get(&format!("{}{q}", mesh_api::control::PROXY_CONFIG_PATH), &format!("/debug/config{q}")).await
    }

    /// The CA's public state.
    pub async fn ca(&self) -> Result<mesh_api::control::CaStatus> {
        self.meshd_get(mesh_api::control::CA_PATH, "/debug/ca").await
    }

    /// One request to a proxy's admin API.
    pub async fn admin_call(
        &self,
        p: &ProxyStatus,
        method: http::Method,
        path: &str,
    ) -> Result<(http::StatusCode, Vec<u8>)> {
        let (w, name) = (&p.workload, format!("{}.{}", p.workload.name, p.workload.namespace));
        let admin =
            w.admin.ok_or_else(|| CliError::unavailable(format!("proxy {name} did not report an admin address")))?;
        match self {
            Reach::Local(_) => crate::cmd::proxy_config::admin_call(admin, method, path).await,
            // The proxy's pod is named as its workload; its admin API listens on loopback there.
            Reach::Kube { client, .. } => forward(client, &w.namespace, &w.name, admin.port(), method, path).await,
        }
    }

    pub async fn admin_get(&self, p: &ProxyStatus, path: &str) -> Result<Vec<u8>> {
        self.admin_call(p, http::Method::GET, path).await.map(|(_, body)| body)
    }
}

/// meshd's admin API from a cluster, as a `MeshdClient`: a listener on loopback whose every
/// connection is a port-forward to meshd's API port (as `kubectl port-forward` does), and the
/// admin token that meshd pod published in its Secret. The listener lives as long as the
/// command.
pub async fn meshd_admin(ctx: &Ctx) -> Result<MeshdClient> {
    let client = crate::cmd::kube::client(ctx).await?;
    let pod = meshd_pod(&client).await?;
    let secret = meshd::kubernetes::ADMIN_TOKENS_SECRET;
    let secrets: Api<k8s_openapi::api::core::v1::Secret> = Api::namespaced(client.clone(), MESHD_NAMESPACE);
    let what = format!("reading the Secret {MESHD_NAMESPACE}/{secret}");
    let data = secrets.get(secret).await.map_err(|e| explain(e, &what))?.data.unwrap_or_default();
    let token = data.get(&pod).map(|b| String::from_utf8_lossy(&b.0).trim().to_string()).ok_or_else(|| {
        CliError::unavailable(format!(
            "meshd pod {MESHD_NAMESPACE}/{pod} has not published its admin token in the Secret {secret} (is it running this version?)"
        ))
    })?;
    let pods: Api<Pod> = Api::namespaced(client, MESHD_NAMESPACE);
    // One port-forward now, so an unreachable pod is reported as such rather than as a local
    // connection failure later.
    let probe = pods.portforward(&pod, &[MESHD_API]).await.map_err(|e| {
        CliError::unavailable(format!("cannot port-forward to port {MESHD_API} of pod {MESHD_NAMESPACE}/{pod}: {e}"))
    })?;
    probe.abort();
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .map_err(|e| CliError::failed(format!("cannot listen on loopback for the port-forward: {e}")))?;
    let addr = listener.local_addr().map_err(|e| CliError::failed(e.to_string()))?;
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let (pods, pod) = (pods.clone(), pod.clone());
            tokio::spawn(async move {
                let Ok(mut pf) = pods.portforward(&pod, &[MESHD_API]).await else { return };
                if let Some(mut stream) = pf.take_stream(MESHD_API) {
                    let _ = tokio::io::copy_bidirectional(&mut conn, &mut stream).await;
                }
                pf.abort();
            });
        }
    });
    Ok(MeshdClient::new(addr, token))
}
