//! Istio's Telemetry API for one workload: whether its proxy writes access logs, and how it
//! samples and reports spans. For each aspect the most specific Telemetry that sets it wins:
//! one selecting the workload, then its namespace's, then the mesh's (root namespace); the
//! oldest when several compete, as Istio resolves them.

use mesh_api::protocol::Workload;
use mesh_api::proxy_config::Tracing;
use mesh_api::telemetry::TelemetrySpec;

use super::ROOT_NAMESPACE;
use super::security::{Policies, oldest, selects};

/// The Telemetry for `w` whose `aspect` is set, most specific first.
fn effective<'a>(
    ts: &Policies<'a, TelemetrySpec>,
    w: &Workload,
    aspect: impl Fn(&TelemetrySpec) -> bool,
) -> Option<&'a TelemetrySpec> {
    let pick = |f: &dyn Fn(&str, &TelemetrySpec) -> bool| {
        oldest(ts.iter().filter(|(k, t)| aspect(&t.spec) && f(&k.namespace, &t.spec)).copied().collect())
            .map(|(_, t)| &t.spec)
    };
    pick(&|ns, t| ns == w.namespace && selects(&t.selector, w) == Some(true))
        .or_else(|| pick(&|ns, t| ns == w.namespace && selects(&t.selector, w).is_none()))
        .or_else(|| pick(&|ns, t| ns == ROOT_NAMESPACE && selects(&t.selector, w) != Some(false)))
}

/// Access logging for `w`: what the governing Telemetry says (on unless `disabled`), else the
/// mesh config (`accessLogFile`).
pub fn access_log(ts: &Policies<'_, TelemetrySpec>, w: &Workload, mesh_default: bool) -> bool {
    match effective(ts, w, |t| !t.access_logging.is_empty()) {
        Some(t) => !t.access_logging.iter().all(|a| a.disabled == Some(true)),
        None => mesh_default,
    }
}

/// Span export for `w`: the mesh's collector, with the governing Telemetry's sampling
/// percentage; none when it disables span reporting or the mesh has no collector.
pub fn tracing(ts: &Policies<'_, TelemetrySpec>, w: &Workload, mesh: Option<&Tracing>) -> Option<Tracing> {
    let mut out = mesh?.clone();
    if let Some(t) = effective(ts, w, |t| !t.tracing.is_empty()) {
        if t.tracing.iter().any(|t| t.disable_span_reporting == Some(true)) {
            return None;
        }
        if let Some(p) = t.tracing.iter().find_map(|t| t.random_sampling_percentage) {
            out.sampling = p;
        }
    }
    Some(out)
}
