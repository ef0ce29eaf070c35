//! The demo's apps (hidden `mesh __demo-app`): a tiny HTTP server that answers with its name,
//! and optionally calls another service through its sidecar and includes that answer.
//! It prints its address on stdout, then (with --call) reads its sidecar's outbound address
//! from the first line of stdin, so a parent can start app and proxy in either order.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::AsyncBufReadExt;

use crate::cli::DemoAppArgs;
use crate::error::{CliError, Result};

struct App {
    name: String,
    call: Option<(String, SocketAddr)>,
    client: Client<HttpConnector, Empty<Bytes>>,
}

async fn handle(app: Arc<App>, _req: Request<Incoming>) -> std::result::Result<Response<Full<Bytes>>, Infallible> {
    let (status, body) = match &app.call {
        None => (StatusCode::OK, format!("{}\n", app.name)),
        Some((host, via)) => {
            let req =
                Request::get(format!("http://{via}/")).header(http::header::HOST, host.as_str()).body(Empty::new());
            let answer = match req {
                Ok(req) => match app.client.request(req).await {
                    Ok(resp) if resp.status().is_success() => match resp.into_body().collect().await {
                        Ok(b) => Ok(String::from_utf8_lossy(&b.to_bytes()).trim().to_string()),
                        Err(e) => Err(e.to_string()),
                    },
                    Ok(resp) => Err(format!("{host} answered {}", resp.status())),
                    Err(e) => Err(e.to_string()),
                },
                Err(e) => Err(e.to_string()),
            };
            match answer {
                Ok(a) => (StatusCode::OK, format!("{} -> {a}\n", app.name)),
                Err(e) => (StatusCode::BAD_GATEWAY, format!("{} -> error: {e}\n", app.name)),
            }
        }
    };
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    Ok(r)
}

pub async fn run(args: DemoAppArgs) -> Result<()> {
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| CliError::unavailable(format!("{}: {e}", args.listen)))?;
    let addr = listener.local_addr().map_err(|e| CliError::unavailable(e.to_string()))?;
    println!("{addr}");
    let via = match (&args.call, args.via) {
        (None, _) => None,
        (Some(_), Some(v)) => Some(v),
        (Some(_), None) => {
            let mut line = String::new();
            tokio::io::BufReader::new(tokio::io::stdin())
                .read_line(&mut line)
                .await
                .map_err(|e| CliError::unavailable(e.to_string()))?;
            Some(line.trim().parse().map_err(|_| {
                CliError::user(format!("expected the sidecar's outbound address on stdin, got {line:?}"))
            })?)
        }
    };
    let app = Arc::new(App {
        name: args.name,
        call: args.call.zip(via),
        client: Client::builder(TokioExecutor::new()).build(HttpConnector::new()),
    });
    loop {
        let Ok((stream, _)) = listener.accept().await else { continue };
        let app = app.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req| handle(app.clone(), req));
            let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), svc).await;
        });
    }
}
