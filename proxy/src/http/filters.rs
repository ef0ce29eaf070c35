//! What a route does to a request besides sending it: CORS, faults, redirects, rewrites, and
//! when a try is retried.

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Request, Response, StatusCode, Uri};
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use mesh_api::host::split_host_port;
use mesh_api::proxy_config::*;

use crate::Body;
use crate::http::{GRPC_STATUS, local_reply};
use crate::upstream::client::UpstreamError;

pub(crate) fn cors_headers(cors: &mesh_api::proxy_config::Cors, origin: &str, h: &mut HeaderMap) {
    if let Ok(v) = HeaderValue::from_str(origin) {
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, v);
    }
    if cors.allow_credentials {
        h.insert(header::ACCESS_CONTROL_ALLOW_CREDENTIALS, HeaderValue::from_static("true"));
    }
}

/// The answer to an allowed CORS preflight, made by the proxy (Envoy's CORS filter).
pub(crate) fn cors_preflight(cors: &mesh_api::proxy_config::Cors, origin: &str) -> Response<Body> {
    let mut r = Response::new(Either::Right(Full::new(Bytes::new())));
    let h = r.headers_mut();
    cors_headers(cors, origin, h);
    for (name, list) in [
        (header::ACCESS_CONTROL_ALLOW_METHODS, &cors.allow_methods),
        (header::ACCESS_CONTROL_ALLOW_HEADERS, &cors.allow_headers),
    ] {
        if !list.is_empty()
            && let Ok(v) = HeaderValue::from_str(&list.join(","))
        {
            h.insert(name, v);
        }
    }
    if let Some(age) = cors.max_age_s {
        h.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from(age));
    }
    r
}

/// How a try ended, for outlier detection.
pub(crate) fn outcome_of(result: &Result<Response<Incoming>, UpstreamError>) -> crate::upstream::cluster::Outcome {
    use crate::upstream::cluster::Outcome;
    match result {
        Ok(r) if matches!(r.status().as_u16(), 502..=504) => Outcome::GatewayError,
        Ok(r) if r.status().is_server_error() => Outcome::ServerError,
        Ok(_) | Err(UpstreamError::BadRequest) => Outcome::Success,
        Err(_) => Outcome::GatewayError,
    }
}

/// True for `percent` % of calls.
pub(crate) fn hit(percent: f64) -> bool {
    percent >= 100.0 || (percent > 0.0 && fastrand::f64() * 100.0 < percent)
}

/// Should this result be retried under `p` (Envoy's retry_on conditions)?
pub(crate) fn retriable(p: &RetryPolicy, result: &Result<Response<Incoming>, UpstreamError>) -> bool {
    let on = |c: &str| p.retry_on.iter().any(|r| r == c);
    match result {
        Err(UpstreamError::BadRequest) => false,
        Err(UpstreamError::Connect) => on("connect-failure") || on("5xx") || on("gateway-error") || on("reset"),
        Err(UpstreamError::Reset) => on("reset") || on("5xx") || on("gateway-error") || on("refused-stream"),
        Ok(resp) => {
            let code = resp.status().as_u16();
            let grpc =
                resp.headers().get(&GRPC_STATUS).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u32>().ok());
            (on("5xx") && code >= 500)
                || (on("gateway-error") && matches!(code, 502..=504))
                || (on("retriable-4xx") && code == 409)
                || (on("retriable-status-codes") && p.retriable_status_codes.contains(&code))
                || (on("cancelled") && grpc == Some(1))
                || (on("deadline-exceeded") && grpc == Some(4))
                || (on("resource-exhausted") && grpc == Some(8))
                || (on("unavailable") && grpc == Some(14))
                || (on("internal") && grpc == Some(13))
        }
    }
}

pub(crate) fn fault_abort(a: &mesh_api::proxy_config::FaultAbort) -> Response<Body> {
    match a.grpc_status {
        Some(code) => {
            let mut r = Response::new(Either::Right(Full::new(Bytes::new())));
            let h = r.headers_mut();
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
            h.insert("grpc-status", HeaderValue::from(code));
            h.insert("grpc-message", HeaderValue::from_static("fault filter abort"));
            r
        }
        None => {
            let mut r = local_reply(StatusCode::OK, "fault filter abort");
            *r.status_mut() = StatusCode::from_u16(a.http_status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            r
        }
    }
}

pub(crate) fn redirect(
    req: &Request<Incoming>,
    r: &mesh_api::proxy_config::Redirect,
    matched_prefix: Option<&str>,
) -> Response<Body> {
    let host_header = req.headers().get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("");
    let (host, port) = split_host_port(host_header);
    let scheme = r.scheme.as_deref().or(req.uri().scheme_str()).unwrap_or("http");
    let host = r.authority.as_deref().unwrap_or(host);
    // As Envoy: when the scheme changes, the request's port is dropped if it is the default
    // of the scheme the request came with (http://h:80 -> https://h), else kept.
    let from = req
        .headers()
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .or(req.uri().scheme_str())
        .unwrap_or("http");
    let default_of_from = |p: &u16| (from == "http" && *p == 80) || (from == "https" && *p == 443);
    let port = port.filter(|p| !(scheme != from && default_of_from(p)));
    let port = r.port.or(port.filter(|_| r.authority.is_none()));
    let path = match (&r.uri, r.prefix) {
        (Some(with), true) => {
            // The matched prefix replaced; the rest of the path and the query kept.
            let path = req.uri().path();
            let rest = matched_prefix.and_then(|p| path.strip_prefix(p.trim_end_matches('/'))).unwrap_or(path);
            let joined = match (with.trim_end_matches('/'), rest) {
                ("", "") => "/".to_string(),
                ("", r) => r.to_string(),
                (w, r) => format!("{w}{r}"),
            };
            match req.uri().query() {
                Some(q) => format!("{joined}?{q}"),
                None => joined,
            }
        }
        (Some(uri), false) => uri.clone(),
        (None, _) => req.uri().path_and_query().map(|p| p.to_string()).unwrap_or("/".into()),
    };
    let location = match port {
        Some(p) => format!("{scheme}://{host}:{p}{path}"),
        None => format!("{scheme}://{host}{path}"),
    };
    let mut resp = Response::new(Either::Right(Full::new(Bytes::new())));
    *resp.status_mut() = StatusCode::from_u16(r.status).unwrap_or(StatusCode::MOVED_PERMANENTLY);
    if let Ok(v) = HeaderValue::from_str(&location) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp
}

pub(crate) fn rewrite(
    req: &mut Request<Incoming>,
    rw: &crate::routing::matches::CompiledRewrite,
    prefix: Option<&str>,
) {
    let path = req.uri().path().to_string();
    let query = req.uri().query().map(|q| format!("?{q}")).unwrap_or_default();
    let new_path = if let Some((re, with)) = &rw.uri_regex {
        Some(re.replace_all(&path, with.as_str()).into_owned())
    } else if let (Some(uri), Some(prefix)) = (&rw.uri, prefix) {
        Some(match path.strip_prefix(prefix) {
            Some(rest) => format!("{uri}{rest}"),
            None => uri.clone(),
        })
    } else {
        rw.uri.clone()
    };
    if let Some(p) = new_path {
        let mut parts = req.uri().clone().into_parts();
        if let Ok(pq) = format!("{p}{query}").parse() {
            parts.path_and_query = Some(pq);
            if let Ok(u) = Uri::from_parts(parts) {
                *req.uri_mut() = u;
            }
        }
    }
    if let Some(a) = &rw.authority {
        req.headers_mut().insert(header::HOST, a.clone());
        if req.uri().authority().is_some() {
            let mut parts = req.uri().clone().into_parts();
            if let Ok(auth) = a.to_str().unwrap_or("").parse() {
                parts.authority = Some(auth);
                if let Ok(u) = Uri::from_parts(parts) {
                    *req.uri_mut() = u;
                }
            }
        }
    }
}
