//! The admin API, on loopback only: readiness, liveness and the config dump.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use http::{Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;

use crate::Shared;
use crate::config::Dump;

fn reply(status: StatusCode, content_type: &'static str, body: Vec<u8>) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static(content_type));
    r
}

/// The metrics listener: Prometheus text at `/stats/prometheus` (Istio's path), also `/metrics`,
/// in the text format Envoy serves (0.0.4).
pub fn metrics<B>(shared: &Shared, req: &Request<B>) -> Response<Full<Bytes>> {
    match req.uri().path() {
        "/stats/prometheus" | "/metrics" => reply(
            StatusCode::OK,
            "text/plain; version=0.0.4; charset=utf-8",
            mesh_api::exposition::prometheus_text(&shared.metrics.encode()).into_bytes(),
        ),
        _ => reply(StatusCode::NOT_FOUND, "text/plain", b"metrics are at /stats/prometheus\n".to_vec()),
    }
}

pub async fn handle(shared: Arc<Shared>, req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    Ok(match req.uri().path() {
        "/ready" | "/healthz/ready" => {
            if shared.ready.load(Ordering::Acquire) {
                reply(StatusCode::OK, "text/plain", b"LIVE\n".to_vec())
            } else {
                let mut body = "waiting for config and a certificate from meshd".to_string();
                if let Some(e) = shared.discovery_error.lock().unwrap_or_else(|p| p.into_inner()).as_deref() {
                    body.push_str(": ");
                    body.push_str(e);
                }
                body.push('\n');
                reply(StatusCode::SERVICE_UNAVAILABLE, "text/plain", body.into_bytes())
            }
        }
        "/live" | "/healthz/live" => reply(StatusCode::OK, "text/plain", b"LIVE\n".to_vec()),
        "/config_dump" => {
            let snap = shared.snapshot.load();
            let dump = Dump { versions: &snap.versions, config: &snap.raw };
            reply(StatusCode::OK, "application/json", serde_json::to_vec_pretty(&dump).unwrap_or_default())
        }
        "/certs" => {
            // The certificate in force (never the key) and the trust bundle: Envoy's /certs.
            let s = shared.identity.state();
            let roots: Vec<mesh_api::cert::CertInfo> = mesh_api::cert::pem_certs(&s.bundle_pem)
                .unwrap_or_default()
                .iter()
                .filter_map(|d| mesh_api::cert::CertInfo::from_der(d).ok())
                .collect();
            let body = serde_json::json!({
                "identity": shared.identity.uri.clone(),
                "certificate": s.cert,
                "trust_bundle": roots,
                "bundle_version": s.bundle_version,
                "error": s.last_error,
            });
            reply(StatusCode::OK, "application/json", serde_json::to_vec_pretty(&body).unwrap_or_default())
        }
        "/quitquitquit" if req.method() == http::Method::POST => {
            // Like Istio's: the sidecar of a job that finished ends too. Answer first, then go.
            let s = shared.clone();
            tokio::spawn(async move {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                s.quit.notify_one();
            });
            reply(StatusCode::OK, "text/plain", b"OK\n".to_vec())
        }
        "/logging" => {
            let level =
                req.uri().query().unwrap_or("").split('&').find_map(|kv| kv.strip_prefix("level=")).map(str::to_string);
            match level {
                None if req.method() == http::Method::GET => match crate::log_level() {
                    Ok(l) => reply(StatusCode::OK, "text/plain", format!("log level: {l}\n").into_bytes()),
                    Err(e) => reply(StatusCode::SERVICE_UNAVAILABLE, "text/plain", format!("{e}\n").into_bytes()),
                },
                None => reply(
                    StatusCode::BAD_REQUEST,
                    "text/plain",
                    b"use /logging?level=debug (or info, warn, error, trace, or a filter)\n".to_vec(),
                ),
                Some(l) if req.method() == http::Method::POST || req.method() == http::Method::PUT => {
                    match crate::set_log_level(&l) {
                        Ok(()) => reply(StatusCode::OK, "text/plain", format!("log level: {l}\n").into_bytes()),
                        Err(e) => reply(StatusCode::BAD_REQUEST, "text/plain", format!("{e}\n").into_bytes()),
                    }
                }
                Some(_) => reply(StatusCode::METHOD_NOT_ALLOWED, "text/plain", b"POST /logging?level=...\n".to_vec()),
            }
        }
        "/stats/prometheus" => metrics(&shared, &req),
        "/server_info" => {
            reply(StatusCode::OK, "application/json", serde_json::to_vec_pretty(&shared.workload).unwrap_or_default())
        }
        _ => reply(
            StatusCode::NOT_FOUND,
            "text/plain",
            b"admin paths: /ready /live /config_dump /certs /server_info, GET /logging, POST /logging?level=L, POST /quitquitquit\n"
                .to_vec(),
        ),
    })
}
