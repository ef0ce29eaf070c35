//! `mesh dashboard`: the service graph and per-service figures in a browser, live, from the
//! same proxy metrics `mesh top` reads. One page whose script and style are in the binary (no
//! CDN, works offline), served on loopback: `/` is the page, `/api/graph` the figures of the
//! last interval as JSON.

use std::collections::{BTreeMap, BTreeSet};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde::Serialize;

use crate::Ctx;
use crate::cli::DashboardArgs;
use crate::cmd::top::{self, Row, Sample, Totals};
use crate::error::{CliError, Result};

const PAGE: &str = include_str!("dashboard.html");

/// A canonical service in a namespace (`reviews.default`).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Node {
    pub id: String,
    pub name: String,
    pub namespace: String,
}

/// Requests from one canonical service to another over the last interval.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Edge {
    pub source: String,
    pub target: String,
    pub requests_per_second: f64,
    pub success_rate: Option<f64>,
    pub p99_ms: Option<f64>,
    pub mtls_share: Option<f64>,
}

/// What the page shows.
#[derive(Debug, Default, Serialize)]
pub struct Graph {
    /// Milliseconds since the Unix epoch when these figures were taken; 0 before the first.
    pub updated_ms: u64,
    pub interval_s: f64,
    pub nodes: Vec<Node>,
    pub edges: Vec<Edge>,
    /// `mesh top`'s rows: per service and workload.
    pub services: Vec<Row>,
}

/// Each sample's edge: the caller's and the callee's canonical service, with namespaces.
fn edge_totals(all: &[Sample]) -> BTreeMap<top::Key, Totals> {
    top::totals_by(all, |l| {
        let end = |svc: &str, ns: &str| format!("{}.{}", l(svc), l(ns));
        (
            end("source_canonical_service", "source_workload_namespace"),
            end("destination_canonical_service", "destination_workload_namespace"),
            String::new(),
        )
    })
}

/// The graph between two scrapes `secs` apart.
fn graph(before: &[Sample], after: &[Sample], secs: f64) -> Graph {
    let edges: Vec<Edge> = top::rows(&edge_totals(before), &edge_totals(after), secs)
        .into_iter()
        .map(|r| Edge {
            source: r.service,
            target: r.namespace,
            requests_per_second: r.requests_per_second,
            success_rate: r.success_rate,
            p99_ms: r.p99_ms,
            mtls_share: r.mtls_share,
        })
        .collect();
    let ids: BTreeSet<&String> = edges.iter().flat_map(|e| [&e.source, &e.target]).collect();
    let nodes = ids
        .into_iter()
        .map(|id| {
            let (name, namespace) = id.rsplit_once('.').unwrap_or((id.as_str(), ""));
            Node { id: id.clone(), name: name.to_string(), namespace: namespace.to_string() }
        })
        .collect();
    let services = top::rows(&top::totals(before), &top::totals(after), secs);
    let updated_ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
    Graph { updated_ms, interval_s: secs, nodes, edges, services }
}

fn reply(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, header::HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, header::HeaderValue::from_static("no-store"));
    // The page loads nothing from anywhere else.
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        header::HeaderValue::from_static("default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'"),
    );
    r
}

fn answer(graph: &RwLock<Graph>, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    if req.method() != http::Method::GET {
        return reply(StatusCode::METHOD_NOT_ALLOWED, "text/plain", "GET only\n");
    }
    match req.uri().path() {
        "/" => reply(StatusCode::OK, "text/html; charset=utf-8", PAGE),
        "/api/graph" => {
            let g = graph.read().unwrap_or_else(|p| p.into_inner());
            match serde_json::to_vec(&*g) {
                Ok(json) => reply(StatusCode::OK, "application/json", json),
                Err(_) => reply(StatusCode::INTERNAL_SERVER_ERROR, "text/plain", "could not encode the graph\n"),
            }
        }
        _ => reply(StatusCode::NOT_FOUND, "text/plain", "not found: the dashboard is at /\n"),
    }
}

async fn serve(listener: tokio::net::TcpListener, graph: Arc<RwLock<Graph>>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let graph = graph.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                let graph = graph.clone();
                async move { Ok::<_, Infallible>(answer(&graph, &req)) }
            });
            let mut b = hyper::server::conn::http1::Builder::new();
            b.timer(hyper_util::rt::TokioTimer::new()).header_read_timeout(Duration::from_secs(10));
            let _ = b.serve_connection(TokioIo::new(stream), svc).await;
        });
    }
}

pub async fn run(ctx: &Ctx, args: DashboardArgs) -> Result<()> {
    if args.interval < Duration::from_millis(200) {
        return Err(CliError::usage("--interval must be at least 200ms"));
    }
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| CliError::failed(format!("cannot listen on {} for the dashboard: {e}", args.listen)))?;
    let addr: SocketAddr =
        listener.local_addr().map_err(|e| CliError::failed(format!("the dashboard's address: {e}")))?;
    let namespace = if args.all_namespaces { None } else { Some(ctx.global.namespace.clone()) };
    let mut before = top::scrape(ctx, namespace.as_deref()).await?;
    let graph = Arc::new(RwLock::new(Graph::default()));
    let server = tokio::spawn(serve(listener, graph.clone()));
    ctx.out.data(format!("dashboard: http://{addr}/ (Ctrl-C to stop)"));
    let mut taken = Instant::now();
    let result = loop {
        tokio::time::sleep(args.interval).await;
        // A round the mesh does not answer keeps the last figures on the page.
        let after = match top::scrape(ctx, namespace.as_deref()).await {
            Ok(a) => a,
            Err(e) => {
                ctx.out.warn(format!("reading the proxies' metrics: {e}"));
                continue;
            }
        };
        let now = Instant::now();
        let g = graph_of(&before, &after, now.duration_since(taken));
        *graph.write().unwrap_or_else(|p| p.into_inner()) = g;
        (before, taken) = (after, now);
        if server.is_finished() {
            break Err(CliError::failed("the dashboard's server stopped"));
        }
    };
    server.abort();
    result
}

fn graph_of(before: &[Sample], after: &[Sample], elapsed: Duration) -> Graph {
    graph(before, after, elapsed.as_secs_f64().max(0.001))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edges_join_canonical_services_with_their_rates() {
        let text = |n: u32| {
            format!(
                "istio_requests_total{{reporter=\"destination\",source_canonical_service=\"productpage\",source_workload_namespace=\"default\",destination_canonical_service=\"reviews\",destination_workload_namespace=\"default\",destination_service=\"reviews.default.svc.cluster.local\",response_code=\"200\",connection_security_policy=\"mutual_tls\"}} {n}\n\
                 istio_requests_total{{reporter=\"source\",source_canonical_service=\"productpage\",source_workload_namespace=\"default\",destination_canonical_service=\"reviews\",destination_workload_namespace=\"default\",destination_service=\"reviews.default.svc.cluster.local\",response_code=\"200\"}} {n}\n"
            )
        };
        let g = graph(&top::parse(&text(10)), &top::parse(&text(30)), 2.0);
        assert_eq!(
            g.nodes.iter().map(|n| n.id.as_str()).collect::<Vec<_>>(),
            ["productpage.default", "reviews.default"]
        );
        assert_eq!(g.edges.len(), 1, "counted once, from the destination's report: {:?}", g.edges);
        let e = &g.edges[0];
        assert_eq!((e.source.as_str(), e.target.as_str()), ("productpage.default", "reviews.default"));
        assert_eq!((e.requests_per_second, e.success_rate, e.mtls_share), (10.0, Some(1.0), Some(1.0)));
    }
}
