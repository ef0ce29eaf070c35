//! Distributed tracing: each hop continues the caller's trace (W3C `traceparent`, B3 multi
//! header `x-b3-*`, or the single `b3` header) or starts one, records one span, and hands the
//! next hop a context whose parent is that span. `x-request-id` is made when absent.
//!
//! Sampled spans go to a bounded queue; one task batches them and POSTs them to the collector
//! named in the pushed config (Zipkin v2 JSON or OTLP/HTTP JSON). The request path never waits
//! on the collector: a full queue drops spans, and a failed export is logged once per batch.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue};
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use mesh_api::proxy_config::{TraceProvider, Tracing};
use tokio::sync::mpsc;
use tracing::debug;

/// The span context a request arrived with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Incoming {
    pub trace_id: u128,
    pub span_id: u64,
    /// The caller's decision, when it made one.
    pub sampled: Option<bool>,
}

/// The span this hop records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Context {
    pub trace_id: u128,
    pub span_id: u64,
    pub parent: Option<u64>,
    pub sampled: bool,
}

fn hex_u128(s: &str) -> Option<u128> {
    // B3 allows 64-bit trace ids; they are the low half of a 128-bit id.
    if (s.len() == 32 || s.len() == 16) && s.bytes().all(|b| b.is_ascii_hexdigit()) {
        u128::from_str_radix(s, 16).ok().filter(|v| *v != 0)
    } else {
        None
    }
}

fn hex_u64(s: &str) -> Option<u64> {
    if s.len() == 16 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
        u64::from_str_radix(s, 16).ok().filter(|v| *v != 0)
    } else {
        None
    }
}

// Header names parsed once: a `&str` name is parsed again on every lookup.
static TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
static B3: HeaderName = HeaderName::from_static("b3");
static B3_TRACE_ID: HeaderName = HeaderName::from_static("x-b3-traceid");
static B3_SPAN_ID: HeaderName = HeaderName::from_static("x-b3-spanid");
static B3_PARENT_SPAN_ID: HeaderName = HeaderName::from_static("x-b3-parentspanid");
static B3_SAMPLED: HeaderName = HeaderName::from_static("x-b3-sampled");
static B3_FLAGS: HeaderName = HeaderName::from_static("x-b3-flags");
/// Envoy's request id.
pub static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

fn get<'h>(h: &'h HeaderMap, name: &HeaderName) -> Option<&'h str> {
    h.get(name).and_then(|v| v.to_str().ok()).map(str::trim)
}

/// The caller's span context: `traceparent` first, then `b3`, then `x-b3-*`. Malformed
/// headers count as absent (a new trace starts), as the W3C specification says.
pub fn extract(h: &HeaderMap) -> Option<Incoming> {
    if let Some(tp) = get(h, &TRACEPARENT) {
        // version-trace-span-flags[-future]: the first four fields, without collecting.
        let mut fields = tp.splitn(5, '-');
        let parts: [&str; 4] = std::array::from_fn(|_| fields.next().unwrap_or(""));
        if parts[3].len() == 2 && parts[0].len() == 2 && parts[0] != "ff" && parts[3].len() == 2 {
            let flags = u8::from_str_radix(parts[3], 16).ok();
            if let (Some(t), Some(s), Some(f)) =
                (hex_u128(parts[1]).filter(|_| parts[1].len() == 32), hex_u64(parts[2]), flags)
            {
                return Some(Incoming { trace_id: t, span_id: s, sampled: Some(f & 1 == 1) });
            }
        }
    }
    if let Some(b3) = get(h, &B3) {
        let mut fields = b3.split('-');
        let (trace, span, flag) = (fields.next(), fields.next(), fields.next());
        if let (Some(t), Some(s)) = (trace.and_then(hex_u128), span.and_then(hex_u64)) {
            let sampled = flag.and_then(|f| match f {
                "1" | "d" => Some(true),
                "0" => Some(false),
                _ => None,
            });
            return Some(Incoming { trace_id: t, span_id: s, sampled });
        }
    }
    let t = get(h, &B3_TRACE_ID).and_then(hex_u128)?;
    let s = get(h, &B3_SPAN_ID).and_then(hex_u64)?;
    let sampled = if get(h, &B3_FLAGS) == Some("1") {
        Some(true)
    } else {
        match get(h, &B3_SAMPLED) {
            Some("1") | Some("true") => Some(true),
            Some("0") | Some("false") => Some(false),
            _ => None,
        }
    };
    Some(Incoming { trace_id: t, span_id: s, sampled })
}

fn nonzero_u64() -> u64 {
    loop {
        let v = fastrand::u64(..);
        if v != 0 {
            return v;
        }
    }
}

/// This hop's span: a child of the caller's span, or the root of a new trace sampled at
/// `sampling` percent.
pub fn child(incoming: Option<Incoming>, sampling: f64) -> Context {
    match incoming {
        Some(i) => Context {
            trace_id: i.trace_id,
            span_id: nonzero_u64(),
            parent: Some(i.span_id),
            sampled: i.sampled.unwrap_or_else(|| sample(sampling)),
        },
        None => Context {
            trace_id: ((nonzero_u64() as u128) << 64) | fastrand::u64(..) as u128,
            span_id: nonzero_u64(),
            parent: None,
            sampled: sample(sampling),
        },
    }
}

fn sample(percent: f64) -> bool {
    percent >= 100.0 || (percent > 0.0 && fastrand::f64() * 100.0 < percent)
}

/// Write `v`'s low `out.len()` hex digits (lowercase, zero-padded) into `out`.
fn hex_into(out: &mut [u8], mut v: u128) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for b in out.iter_mut().rev() {
        *b = DIGITS[(v & 0xf) as usize];
        v >>= 4;
    }
}

/// A header value from ASCII built on the stack (one copy, no formatting machinery).
fn value(bytes: &[u8]) -> Option<HeaderValue> {
    HeaderValue::from_bytes(bytes).ok()
}

/// Hand `ctx` to the next hop in both W3C and B3 form (whatever the caller used, so either
/// kind of app library finds it). `tracestate` passes through untouched. Built without
/// `format!`: this runs on every request.
pub fn inject(h: &mut HeaderMap, ctx: &Context) {
    let mut trace = [0u8; 32];
    hex_into(&mut trace, ctx.trace_id);
    let mut span = [0u8; 16];
    hex_into(&mut span, u128::from(ctx.span_id));
    // 00-TRACE-SPAN-FLAGS
    let mut tp = [0u8; 55];
    tp[..3].copy_from_slice(b"00-");
    tp[3..35].copy_from_slice(&trace);
    tp[35] = b'-';
    tp[36..52].copy_from_slice(&span);
    tp[52..].copy_from_slice(if ctx.sampled { b"-01" } else { b"-00" });
    let mut put = |name: &'static HeaderName, bytes: &[u8]| {
        if let Some(v) = value(bytes) {
            h.insert(name, v);
        }
    };
    put(&TRACEPARENT, &tp);
    put(&B3_TRACE_ID, &trace);
    put(&B3_SPAN_ID, &span);
    match ctx.parent {
        Some(p) => {
            let mut parent = [0u8; 16];
            hex_into(&mut parent, u128::from(p));
            put(&B3_PARENT_SPAN_ID, &parent);
        }
        None => {
            h.remove(&B3_PARENT_SPAN_ID);
        }
    }
    h.insert(&B3_SAMPLED, HeaderValue::from_static(if ctx.sampled { "1" } else { "0" }));
    h.remove(&B3_FLAGS);
    if h.contains_key(&B3) {
        // TRACE-SPAN-SAMPLED
        let mut b3 = [0u8; 51];
        b3[..32].copy_from_slice(&trace);
        b3[32] = b'-';
        b3[33..49].copy_from_slice(&span);
        b3[49..].copy_from_slice(if ctx.sampled { b"-1" } else { b"-0" });
        if let Some(v) = value(&b3) {
            h.insert(&B3, v);
        }
    }
}

/// Make `x-request-id` when the request has none (a random UUID v4); returns the id (a
/// header value: cloning it copies no bytes).
pub fn ensure_request_id(h: &mut HeaderMap) -> HeaderValue {
    if let Some(v) = h.get(&REQUEST_ID).filter(|v| !v.is_empty()) {
        return v.clone();
    }
    let r = fastrand::u128(..);
    // Version 4, variant 1 (RFC 9562).
    let r = (r & !(0xf << 76) | (0x4 << 76)) & !(0x3 << 62) | (0x2 << 62);
    let mut hex = [0u8; 32];
    hex_into(&mut hex, r);
    // 8-4-4-4-12
    let mut id = [b'-'; 36];
    id[..8].copy_from_slice(&hex[..8]);
    id[9..13].copy_from_slice(&hex[8..12]);
    id[14..18].copy_from_slice(&hex[12..16]);
    id[19..23].copy_from_slice(&hex[16..20]);
    id[24..].copy_from_slice(&hex[20..]);
    let v = value(&id).unwrap_or_else(|| HeaderValue::from_static(""));
    h.insert(&REQUEST_ID, v.clone());
    v
}

/// One finished span.
#[derive(Debug, Clone)]
pub struct Span {
    pub ctx: Context,
    pub name: String,
    /// Client (outbound) or server (inbound) side of a hop.
    pub client: bool,
    pub start: SystemTime,
    pub duration: Duration,
    pub tags: Vec<(&'static str, String)>,
}

/// Where finished spans go. Cloning shares the queue.
#[derive(Clone)]
pub struct Tracer {
    tx: mpsc::Sender<Span>,
}

const QUEUE: usize = 4096;
const BATCH: usize = 256;

impl Tracer {
    /// The tracer and the export task, which reads the collector from `config` at each flush
    /// (so a config push moves or stops export without a restart).
    pub fn new<F>(service: String, ip: String, config: F) -> (Tracer, impl Future<Output = ()>)
    where
        F: Fn() -> Option<Tracing> + Send + 'static,
    {
        let (tx, rx) = mpsc::channel(QUEUE);
        (Tracer { tx }, export(rx, service, ip, config))
    }

    /// Queue a sampled span; drops it when the queue is full rather than wait.
    pub fn record(&self, span: Span) {
        if span.ctx.sampled {
            let _ = self.tx.try_send(span);
        }
    }
}

async fn export<F>(mut rx: mpsc::Receiver<Span>, service: String, ip: String, config: F)
where
    F: Fn() -> Option<Tracing>,
{
    let client: Client<HttpConnector, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let mut batch = Vec::with_capacity(BATCH);
    while let Some(first) = rx.recv().await {
        batch.push(first);
        // Gather what arrives in the next moment, so a burst becomes one POST.
        let deadline = tokio::time::Instant::now() + Duration::from_millis(200);
        while batch.len() < BATCH {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(s)) => batch.push(s),
                _ => break,
            }
        }
        let Some(cfg) = config() else {
            batch.clear();
            continue;
        };
        let (path, body) = match cfg.provider {
            TraceProvider::Zipkin => ("/api/v2/spans", zipkin(&batch, &service, &ip)),
            TraceProvider::Otlp => ("/v1/traces", otlp(&batch, &service)),
        };
        let n = batch.len();
        batch.clear();
        let req = http::Request::post(format!("http://{}{path}", cfg.address))
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body)));
        let Ok(req) = req else {
            debug!(address = %cfg.address, "bad trace collector address");
            continue;
        };
        match tokio::time::timeout(Duration::from_secs(5), client.request(req)).await {
            Ok(Ok(r)) if r.status().is_success() => debug!(spans = n, "spans exported"),
            Ok(Ok(r)) => debug!(status = %r.status(), spans = n, "trace collector refused spans"),
            Ok(Err(e)) => debug!(error = %e, spans = n, "cannot reach the trace collector"),
            Err(_) => debug!(spans = n, "trace collector timed out"),
        }
    }
}

fn micros(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map(|d| d.as_micros() as u64).unwrap_or(0)
}

/// Zipkin v2 JSON (`ListOfSpans`).
fn zipkin(spans: &[Span], service: &str, ip: &str) -> Vec<u8> {
    let list: Vec<serde_json::Value> = spans
        .iter()
        .map(|s| {
            let mut v = serde_json::json!({
                "traceId": format!("{:032x}", s.ctx.trace_id),
                "id": format!("{:016x}", s.ctx.span_id),
                "name": s.name,
                "kind": if s.client { "CLIENT" } else { "SERVER" },
                "timestamp": micros(s.start),
                "duration": s.duration.as_micros().max(1) as u64,
                "localEndpoint": {"serviceName": service, "ipv4": ip},
                "tags": s.tags.iter().map(|(k, v)| (k.to_string(), serde_json::Value::from(v.as_str()))).collect::<serde_json::Map<_, _>>(),
            });
            if let Some(p) = s.ctx.parent {
                v["parentId"] = format!("{p:016x}").into();
            }
            v
        })
        .collect();
    serde_json::to_vec(&list).unwrap_or_default()
}

/// OTLP/HTTP JSON (`ExportTraceServiceRequest`).
fn otlp(spans: &[Span], service: &str) -> Vec<u8> {
    let list: Vec<serde_json::Value> = spans
        .iter()
        .map(|s| {
            let start = s.start.duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
            let mut v = serde_json::json!({
                "traceId": format!("{:032x}", s.ctx.trace_id),
                "spanId": format!("{:016x}", s.ctx.span_id),
                "name": s.name,
                "kind": if s.client { 3 } else { 2 },
                "startTimeUnixNano": start.to_string(),
                "endTimeUnixNano": (start + s.duration.as_nanos()).to_string(),
                "attributes": s.tags.iter().map(|(k, v)| serde_json::json!({"key": k, "value": {"stringValue": v}})).collect::<Vec<_>>(),
            });
            if let Some(p) = s.ctx.parent {
                v["parentSpanId"] = format!("{p:016x}").into();
            }
            v
        })
        .collect();
    let body = serde_json::json!({
        "resourceSpans": [{
            "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]},
            "scopeSpans": [{"scope": {"name": "mesh-proxy"}, "spans": list}],
        }]
    });
    serde_json::to_vec(&body).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).expect("header"));
        }
        h
    }

    #[test]
    fn traceparent_is_continued_with_a_new_span() {
        let h = headers(&[("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")]);
        let i = extract(&h).expect("context");
        assert_eq!(i.trace_id, 0x4bf92f3577b34da6a3ce929d0e0e4736);
        assert_eq!(i.sampled, Some(true));
        let c = child(Some(i), 0.0);
        assert_eq!(c.trace_id, i.trace_id);
        assert_eq!(c.parent, Some(0x00f067aa0ba902b7));
        assert_ne!(c.span_id, 0x00f067aa0ba902b7);
        assert!(c.sampled, "the caller's decision wins over the local rate");
        let mut out = HeaderMap::new();
        inject(&mut out, &c);
        let tp = out["traceparent"].to_str().expect("ascii");
        assert!(tp.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-") && tp.ends_with("-01"), "{tp}");
        assert_eq!(out["x-b3-parentspanid"], "00f067aa0ba902b7");
    }

    #[test]
    fn malformed_and_b3_forms() {
        for bad in [
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "garbage",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ] {
            assert_eq!(extract(&headers(&[("traceparent", bad)])), None, "{bad}");
        }
        let b3 = extract(&headers(&[
            ("x-b3-traceid", "463ac35c9f6413ad"),
            ("x-b3-spanid", "a2fb4a1d1a96d312"),
            ("x-b3-sampled", "0"),
        ]))
        .expect("b3");
        assert_eq!(b3.trace_id, 0x463ac35c9f6413ad);
        assert_eq!(b3.sampled, Some(false));
        let single =
            extract(&headers(&[("b3", "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1")])).expect("b3 single");
        assert_eq!(single.span_id, 0xe457b5a2e4d86bd1);
        assert_eq!(single.sampled, Some(true));
        let root = child(None, 0.0);
        assert!(!root.sampled && root.parent.is_none());
        assert!(child(None, 100.0).sampled);
    }

    #[test]
    fn request_id_is_kept_or_made() {
        let mut h = headers(&[("x-request-id", "abc")]);
        assert_eq!(ensure_request_id(&mut h), "abc");
        let mut h = HeaderMap::new();
        let id = ensure_request_id(&mut h).to_str().expect("ascii").to_string();
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
        assert_eq!(h["x-request-id"], id.as_str());
    }

    #[test]
    fn injected_headers_are_exactly_the_w3c_and_b3_forms() {
        for _ in 0..200 {
            let ctx = Context {
                trace_id: fastrand::u128(..) >> fastrand::u32(0..100),
                span_id: fastrand::u64(..) >> fastrand::u32(0..50),
                parent: fastrand::bool().then(|| fastrand::u64(..) >> fastrand::u32(0..50)),
                sampled: fastrand::bool(),
            };
            let mut h = headers(&[("b3", "x")]);
            inject(&mut h, &ctx);
            let s = u8::from(ctx.sampled);
            assert_eq!(h["traceparent"], format!("00-{:032x}-{:016x}-0{s}", ctx.trace_id, ctx.span_id).as_str());
            assert_eq!(h["x-b3-traceid"], format!("{:032x}", ctx.trace_id).as_str());
            assert_eq!(h["x-b3-spanid"], format!("{:016x}", ctx.span_id).as_str());
            assert_eq!(h["b3"], format!("{:032x}-{:016x}-{s}", ctx.trace_id, ctx.span_id).as_str());
            assert_eq!(
                h.get("x-b3-parentspanid").map(|v| v.as_bytes().to_vec()),
                ctx.parent.map(|p| format!("{p:016x}").into_bytes())
            );
        }
        let mut h = HeaderMap::new();
        let id = ensure_request_id(&mut h).to_str().expect("ascii").to_string();
        let parts: Vec<usize> = id.split('-').map(str::len).collect();
        assert_eq!(parts, [8, 4, 4, 4, 12], "{id}");
        assert!(id.bytes().all(|b| b == b'-' || b.is_ascii_hexdigit() && !b.is_ascii_uppercase()), "{id}");
        assert!(matches!(&id[19..20], "8" | "9" | "a" | "b"), "variant 1: {id}");
    }

    #[test]
    fn zipkin_and_otlp_bodies() {
        let span = Span {
            ctx: Context { trace_id: 1, span_id: 2, parent: Some(3), sampled: true },
            name: "reviews.default.svc.cluster.local:9080/*".into(),
            client: true,
            start: UNIX_EPOCH + Duration::from_secs(1),
            duration: Duration::from_millis(2),
            tags: vec![("http.status_code", "200".into())],
        };
        let z: serde_json::Value =
            serde_json::from_slice(&zipkin(std::slice::from_ref(&span), "productpage-v1.default", "127.0.0.1"))
                .expect("json");
        assert_eq!(z[0]["parentId"], "0000000000000003");
        assert_eq!(z[0]["timestamp"], 1_000_000);
        assert_eq!(z[0]["duration"], 2000);
        assert_eq!(z[0]["tags"]["http.status_code"], "200");
        let o: serde_json::Value = serde_json::from_slice(&otlp(&[span], "productpage-v1.default")).expect("json");
        let s = &o["resourceSpans"][0]["scopeSpans"][0]["spans"][0];
        assert_eq!(s["traceId"], "00000000000000000000000000000001");
        assert_eq!(s["kind"], 3);
        assert_eq!(s["endTimeUnixNano"], "1002000000");
    }
}
