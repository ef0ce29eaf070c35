//! A client for meshd's API, found through MESH_HOME.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use mesh_api::control::ErrorBody;
use meshd::Home;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{CliError, Result};

#[derive(Clone)]
pub struct MeshdClient {
    pub address: SocketAddr,
    token: String,
    http: Client<HttpConnector, Full<Bytes>>,
}

impl MeshdClient {
    /// Find meshd from MESH_HOME; a clear error when it is not installed.
    pub fn from_home(home: &Home) -> Result<MeshdClient> {
        let info = home.read_info().map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                CliError::unavailable(format!(
                    "meshd is not running for MESH_HOME={}: run `mesh install` first (or set MESH_HOME to the mesh you mean)",
                    home.root().display()
                ))
            } else {
                CliError::unavailable(format!("cannot read meshd's address: {e}"))
            }
        })?;
        let token = home.read_token().map_err(|e| {
            CliError::unavailable(format!("cannot read the access token {}: {e}", home.token_path().display()))
        })?;
        Ok(MeshdClient::new(info.address, token))
    }

    pub fn new(address: SocketAddr, token: String) -> MeshdClient {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(Duration::from_secs(3)));
        MeshdClient { address, token, http: Client::builder(TokioExecutor::new()).build(connector) }
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path_and_query: &str,
        body: Option<Vec<u8>>,
        timeout: Duration,
    ) -> Result<T> {
        let changes = method != Method::GET;
        let req = Request::builder()
            .method(method)
            .uri(format!("http://{}{path_and_query}", self.address))
            .header(header::AUTHORIZATION, format!("Bearer {}", self.token))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|e| CliError::internal(e.to_string()))?;
        // A change (POST) whose request reached meshd but whose answer did not come back may or
        // may not have been made: say so, and how to find out, instead of "cannot reach meshd".
        let unknown = |what: String| {
            CliError::unavailable(format!(
                "{what}; the request was sent, so meshd may or may not have made the change: check with `mesh get` (resources) or `mesh proxy-status` before trying again"
            ))
        };
        let resp = match tokio::time::timeout(timeout, self.http.request(req)).await {
            Err(_) if changes => {
                return Err(unknown(format!("meshd at {} did not answer within {}s", self.address, timeout.as_secs())));
            }
            Err(_) => {
                return Err(CliError::unavailable(format!(
                    "meshd at {} did not answer within {}s",
                    self.address,
                    timeout.as_secs()
                )));
            }
            Ok(Err(e)) if changes && !e.is_connect() => {
                return Err(unknown(format!("meshd at {} closed the connection before answering ({e})", self.address)));
            }
            Ok(Err(e)) => {
                return Err(CliError::unavailable(format!(
                    "cannot reach meshd at {}: {e}; is it running? (`mesh install` starts it); nothing was changed",
                    self.address
                )));
            }
            Ok(Ok(r)) => r,
        };
        let status = resp.status();
        let bytes = match resp.into_body().collect().await {
            Ok(b) => b.to_bytes(),
            Err(e) if changes && status.is_success() => {
                return Err(unknown(format!("meshd's answer was cut off ({e})")));
            }
            Err(e) => return Err(CliError::unavailable(format!("reading meshd's answer: {e}"))),
        };
        if !status.is_success() {
            let err: ErrorBody = serde_json::from_slice(&bytes)
                .unwrap_or(ErrorBody { error: String::from_utf8_lossy(&bytes).into_owned(), details: vec![] });
            let mut msg = err.error;
            for d in err.details {
                msg.push_str("\n  ");
                msg.push_str(&d);
            }
            return Err(match status {
                StatusCode::UNAUTHORIZED | StatusCode::INTERNAL_SERVER_ERROR => CliError::unavailable(msg),
                StatusCode::BAD_REQUEST | StatusCode::UNPROCESSABLE_ENTITY | StatusCode::PAYLOAD_TOO_LARGE => {
                    CliError::user(msg)
                }
                _ => CliError::failed(msg),
            });
        }
        serde_json::from_slice(&bytes).map_err(|e| CliError::internal(format!("unexpected answer from meshd: {e}")))
    }

    pub async fn get<T: DeserializeOwned>(&self, path_and_query: &str) -> Result<T> {
        self.call(Method::GET, path_and_query, None, Duration::from_secs(30)).await
    }

    pub async fn post<B: Serialize, T: DeserializeOwned>(&self, path: &str, body: &B) -> Result<T> {
        self.post_with_timeout(path, body, Duration::from_secs(30)).await
    }

    /// A POST that may take long on meshd's side (a root rotation).
    pub async fn post_with_timeout<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
        timeout: Duration,
    ) -> Result<T> {
        let body = serde_json::to_vec(body).map_err(|e| CliError::internal(e.to_string()))?;
        self.call(Method::POST, path, Some(body), timeout).await
    }
}
