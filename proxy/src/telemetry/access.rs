//! What a request's access log line and span carry, and a closed TCP connection's record.

use http::header::{self, HeaderMap};
use http::{Request, Uri};

use crate::Shared;
use crate::telemetry::metrics::{self, RequestRecord, TcpLabels};

/// The parts of an inbound request that its access log line and span need.
pub(crate) struct RequestDetails {
    pub method: String,
    pub path: String,
    pub authority: String,
    pub protocol: &'static str,
}

impl RequestDetails {
    /// The access log's entry for this request.
    pub fn entry<'a>(
        &'a self,
        direction: &'static str,
        request_id: &'a str,
        upstream_host: &'a str,
        upstream_cluster: &'a str,
    ) -> AccessEntry<'a> {
        AccessEntry {
            direction,
            method: &self.method,
            path: &self.path,
            authority: &self.authority,
            protocol: self.protocol,
            request_id,
            upstream_host,
            upstream_cluster,
        }
    }

    pub fn of<B>(req: &Request<B>) -> RequestDetails {
        RequestDetails::from(req.method(), req.uri(), req.headers(), req.version())
    }

    pub fn of_head(head: &http::request::Parts) -> RequestDetails {
        RequestDetails::from(&head.method, &head.uri, &head.headers, head.version)
    }

    pub fn from(method: &http::Method, uri: &Uri, headers: &HeaderMap, version: http::Version) -> RequestDetails {
        RequestDetails {
            method: method.as_str().to_string(),
            path: uri.path_and_query().map(|p| p.as_str().to_string()).unwrap_or_else(|| "/".into()),
            authority: headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("").to_string(),
            protocol: if version == http::Version::HTTP_2 { "HTTP/2" } else { "HTTP/1.1" },
        }
    }
}

/// The tags Istio's spans carry (Envoy's names), from what the metrics saw.
pub(crate) fn span_tags(
    shared: &Shared,
    r: &crate::telemetry::metrics::RequestRecord<'_>,
    d: &RequestDetails,
    request_id: &str,
    cluster: &str,
    peer_address: &str,
) -> Vec<(&'static str, String)> {
    let (method, authority, path, protocol) = (d.method.as_str(), d.authority.as_str(), d.path.as_str(), d.protocol);
    vec![
        ("component", "proxy".into()),
        ("node_id", format!("{}.{}", shared.workload.name, shared.workload.namespace)),
        ("istio.namespace", shared.workload.namespace.clone()),
        ("istio.canonical_service", shared.me.canonical_service.clone()),
        ("istio.canonical_revision", shared.me.canonical_revision.clone()),
        ("istio.mesh_id", "cluster.local".into()),
        ("guid:x-request-id", request_id.into()),
        ("http.method", method.into()),
        ("http.url", format!("http://{authority}{path}")),
        ("http.protocol", protocol.into()),
        ("http.status_code", r.code.to_string()),
        ("response_flags", r.flags.into()),
        ("request_size", r.request_bytes.to_string()),
        ("response_size", r.response_bytes.to_string()),
        ("upstream_cluster", cluster.into()),
        ("peer.address", peer_address.into()),
    ]
}

/// A relayed TCP connection (or CONNECT tunnel) has closed: counted in `istio_tcp_*` and, when
/// access logs are on, logged. `bytes` is (received from downstream, sent to it); `target`
/// the upstream host and cluster.
pub(crate) fn tcp_closed(
    shared: &Shared,
    labels: &metrics::TcpLabels,
    direction: &'static str,
    started: std::time::SystemTime,
    duration: std::time::Duration,
    (received, sent): (u64, u64),
    (upstream_host, upstream_cluster): (&str, &str),
) {
    shared.metrics.tcp_closed(labels, sent, received);
    if shared.access_log_on(&shared.snapshot.load()) {
        tcp_access_log(&TcpEntry {
            direction,
            labels,
            started,
            duration,
            bytes_received: received,
            bytes_sent: sent,
            upstream_host,
            upstream_cluster,
            flags: "-",
        });
    }
}

/// What an access log line says besides the metric labels.
pub struct AccessEntry<'a> {
    pub direction: &'static str,
    pub method: &'a str,
    pub path: &'a str,
    pub authority: &'a str,
    pub protocol: &'a str,
    pub request_id: &'a str,
    pub upstream_host: &'a str,
    pub upstream_cluster: &'a str,
}

/// One JSON line per request on standard output, with Envoy's access log field names where
/// they exist.
pub fn access_log(r: &RequestRecord<'_>, e: &AccessEntry<'_>) {
    let start_ms =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as f64).unwrap_or(0.0)
            - r.millis;
    let line = serde_json::json!({
        "start_time_unix_ms": start_ms.round() as u64,
        "direction": e.direction,
        "method": e.method,
        "path": e.path,
        "protocol": e.protocol,
        "response_code": r.code,
        "response_flags": r.flags,
        "bytes_received": r.request_bytes,
        "bytes_sent": r.response_bytes,
        "duration": (r.millis * 1000.0).round() / 1000.0,
        "upstream_host": e.upstream_host,
        "upstream_cluster": e.upstream_cluster,
        "x_request_id": e.request_id,
        "authority": e.authority,
        "downstream_peer": if r.reporter == "destination" { r.source_principal } else { "" },
        "upstream_peer": if r.reporter == "source" { r.destination_principal } else { "" },
        "source_workload": format!("{}/{}", r.source.namespace, r.source.workload),
        "destination_workload": format!("{}/{}", r.destination.namespace, r.destination.workload),
        "destination_service": r.destination_service,
    });
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
}

/// What an access log line for a TCP connection says.
pub struct TcpEntry<'a> {
    pub direction: &'static str,
    pub labels: &'a TcpLabels,
    pub started: std::time::SystemTime,
    pub duration: std::time::Duration,
    /// Bytes from the downstream (the app or the calling proxy) and to it.
    pub bytes_received: u64,
    pub bytes_sent: u64,
    pub upstream_host: &'a str,
    pub upstream_cluster: &'a str,
    /// Envoy's response flags: `-`, or `UF` when the upstream could not be reached.
    pub flags: &'static str,
}

/// One JSON line per TCP connection, when it closes; the same field names as for requests.
pub fn tcp_access_log(e: &TcpEntry<'_>) {
    let start_ms = e.started.duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0);
    let l = e.labels;
    let line = serde_json::json!({
        "start_time_unix_ms": start_ms,
        "direction": e.direction,
        "protocol": "TCP",
        "response_flags": e.flags,
        "bytes_received": e.bytes_received,
        "bytes_sent": e.bytes_sent,
        "duration": (e.duration.as_secs_f64() * 1_000_000.0).round() / 1000.0,
        "upstream_host": e.upstream_host,
        "upstream_cluster": e.upstream_cluster,
        "downstream_peer": if l.reporter == "destination" && l.peers.source_principal != "unknown" { l.peers.source_principal.as_str() } else { "" },
        "upstream_peer": if l.reporter == "source" && l.peers.destination_principal != "unknown" { l.peers.destination_principal.as_str() } else { "" },
        "source_workload": format!("{}/{}", l.peers.source_workload_namespace, l.peers.source_workload),
        "destination_workload": format!("{}/{}", l.peers.destination_workload_namespace, l.peers.destination_workload),
        "destination_service": l.destination_service,
    });
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
}
