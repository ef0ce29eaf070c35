//! What a request's access log line and span carry, and a closed TCP connection's record.

use http::header::{self, HeaderMap};
use http::{Request, Uri};

use crate::Shared;
use crate::telemetry::metrics;

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
    ) -> crate::telemetry::metrics::AccessEntry<'a> {
        crate::telemetry::metrics::AccessEntry {
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
        metrics::tcp_access_log(&metrics::TcpEntry {
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
