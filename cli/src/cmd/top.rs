//! `mesh top`: per service and workload, the request rate, success rate, latency percentiles and
//! share of mTLS traffic over the last interval, from every connected proxy's Istio metrics.
//!
//! Each proxy's `/stats/prometheus` is read twice, `--interval` apart; the figures are the
//! differences. Requests are counted once: from the destination proxy's report when the
//! destination has a proxy, else from the caller's (`reporter="source"`), as Kiali does.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::Ctx;
use crate::cli::{Output, TopArgs};
use crate::error::{CliError, Result};

pub(crate) use mesh_api::exposition::{Sample, parse};

/// What one row adds up, as counters (subtract two of these for a rate).
pub(crate) type Totals = mesh_api::exposition::RequestTotals;

pub(crate) type Key = (String, String, String); // (service, workload namespace, workload)

/// Fold every proxy's samples into rows. A service's requests come from the destination's
/// reports when any destination proxy reported them, else from the callers'.
pub(crate) fn totals(all: &[Sample]) -> BTreeMap<Key, Totals> {
    totals_by(all, |l| (l("destination_service"), l("destination_workload_namespace"), l("destination_workload")))
}

/// The same fold, keyed by `key` of each sample's labels (`mesh dashboard` keys by the edge
/// between two canonical services).
pub(crate) fn totals_by(all: &[Sample], key: impl Fn(&dyn Fn(&str) -> String) -> Key) -> BTreeMap<Key, Totals> {
    let reported_by_destination: std::collections::HashSet<String> = all
        .iter()
        .filter(|s| s.name == "istio_requests_total" && s.labels.get("reporter").is_some_and(|r| r == "destination"))
        .filter_map(|s| s.labels.get("destination_service").cloned())
        .collect();
    let mut out: BTreeMap<Key, Totals> = BTreeMap::new();
    for s in all {
        let l = |k: &str| s.labels.get(k).cloned().unwrap_or_default();
        let svc = l("destination_service");
        let wanted = if reported_by_destination.contains(&svc) { "destination" } else { "source" };
        if l("reporter") != wanted {
            continue;
        }
        if Totals::folds(s) {
            out.entry(key(&l)).or_default().add(s);
        }
    }
    out
}

#[derive(Debug, Serialize)]
pub struct Row {
    pub service: String,
    pub workload: String,
    pub namespace: String,
    pub requests_per_second: f64,
    /// Share of requests not answered with a 5xx, 0..1 (null when there were none).
    pub success_rate: Option<f64>,
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    /// Share of requests that arrived over mutual TLS, 0..1 (null without destination reports).
    pub mtls_share: Option<f64>,
}

pub(crate) fn rows(before: &BTreeMap<Key, Totals>, after: &BTreeMap<Key, Totals>, secs: f64) -> Vec<Row> {
    let mut rows = Vec::new();
    for (key, a) in after {
        let d = a.since(&before.get(key).cloned().unwrap_or_default());
        let requests = d.requests;
        let ratio = |x: f64| (requests > 0.0).then(|| (x / requests).clamp(0.0, 1.0));
        let round = |v: f64| (v * 100.0).round() / 100.0;
        rows.push(Row {
            service: key.0.clone(),
            namespace: key.1.clone(),
            workload: key.2.clone(),
            requests_per_second: round(requests / secs),
            success_rate: ratio(requests - d.errors).map(|v| round(v * 100.0) / 100.0),
            p50_ms: d.quantile(0.50).map(round),
            p95_ms: d.quantile(0.95).map(round),
            p99_ms: d.quantile(0.99).map(round),
            mtls_share: ratio(d.mtls).map(|v| round(v * 100.0) / 100.0),
        });
    }
    rows.sort_by(|x, y| {
        y.requests_per_second
            .total_cmp(&x.requests_per_second)
            .then_with(|| (&x.service, &x.workload).cmp(&(&y.service, &y.workload)))
    });
    rows
}

/// Every connected proxy's samples, read now.
pub(crate) async fn scrape(ctx: &Ctx, namespace: Option<&str>) -> Result<Vec<Sample>> {
    let reach = ctx.reach().await?;
    let statuses = reach.proxies().await?;
    let reads = statuses
        .iter()
        .filter(|p| namespace.is_none_or(|n| p.workload.namespace == n) && p.workload.admin.is_some())
        .map(|p| reach.admin_get(p, "/stats/prometheus"));
    // A proxy that does not answer (stopping, say) is left out of this round.
    let mut all = Vec::new();
    for body in futures_util::future::join_all(reads).await.into_iter().flatten() {
        all.extend(parse(&String::from_utf8_lossy(&body)));
    }
    Ok(all)
}

fn pct(v: Option<f64>) -> String {
    v.map(|v| format!("{:.1}%", v * 100.0)).unwrap_or_else(|| "-".into())
}

fn ms(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.1}ms")).unwrap_or_else(|| "-".into())
}

fn show(ctx: &Ctx, rows: &[Row], interval: Duration) {
    if rows.is_empty() {
        ctx.out.info(format!("No requests in the last {:.1}s.", interval.as_secs_f64()));
        return;
    }
    let table = rows
        .iter()
        .map(|r| {
            vec![
                r.service.clone(),
                format!("{}.{}", r.workload, r.namespace),
                format!("{:.2}", r.requests_per_second),
                pct(r.success_rate),
                ms(r.p50_ms),
                ms(r.p95_ms),
                ms(r.p99_ms),
                pct(r.mtls_share),
            ]
        })
        .collect();
    ctx.out.table(&["SERVICE", "WORKLOAD", "RPS", "SUCCESS", "P50", "P95", "P99", "MTLS"], table);
}

pub async fn run(ctx: &Ctx, args: TopArgs) -> Result<()> {
    let interval = args.interval;
    if interval < Duration::from_millis(100) {
        return Err(CliError::usage("--interval must be at least 100ms"));
    }
    let namespace = if args.all_namespaces { None } else { Some(ctx.global.namespace.clone()) };
    let live = args.output == Output::Table && ctx.out.tty && !args.once;
    let mut before = totals(&scrape(ctx, namespace.as_deref()).await?);
    let mut taken = Instant::now();
    loop {
        tokio::time::sleep(interval).await;
        let after = totals(&scrape(ctx, namespace.as_deref()).await?);
        let now = Instant::now();
        let rows = rows(&before, &after, now.duration_since(taken).as_secs_f64());
        if args.output != Output::Table {
            return ctx.out.structured(args.output, &rows);
        }
        if live {
            // Clear the screen and home the cursor, then redraw (like top).
            ctx.out.data(format!("\x1b[2J\x1b[H mesh top, every {:.1}s (Ctrl-C to quit)\n", interval.as_secs_f64()));
        }
        show(ctx, &rows, interval);
        if !live {
            return Ok(());
        }
        (before, taken) = (after, now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_labels_with_escapes_and_plain_samples() {
        let s = parse(
            "# HELP x y\nistio_requests_total{reporter=\"destination\",path=\"a\\\"b,c}\"} 12\nup 1\nh_bucket{le=\"+Inf\"} 3\n",
        );
        assert_eq!(s.len(), 3);
        assert_eq!(s[0].labels["path"], "a\"b,c}");
        assert_eq!(s[0].value, 12.0);
        assert_eq!(s[1].name, "up");
        assert_eq!(s[2].labels["le"], "+Inf");
    }

    #[test]
    fn rates_success_latency_and_mtls_from_two_scrapes() {
        let text = |n: f64, bad: f64| {
            format!(
                "istio_requests_total{{reporter=\"destination\",destination_service=\"reviews.default.svc.cluster.local\",destination_workload=\"reviews-v1\",destination_workload_namespace=\"default\",response_code=\"200\",connection_security_policy=\"mutual_tls\"}} {n}\n\
                 istio_requests_total{{reporter=\"destination\",destination_service=\"reviews.default.svc.cluster.local\",destination_workload=\"reviews-v1\",destination_workload_namespace=\"default\",response_code=\"503\",connection_security_policy=\"none\"}} {bad}\n\
                 istio_requests_total{{reporter=\"source\",destination_service=\"reviews.default.svc.cluster.local\",destination_workload=\"reviews-v1\",destination_workload_namespace=\"default\",response_code=\"200\"}} {n}\n\
                 istio_request_duration_milliseconds_bucket{{reporter=\"destination\",destination_service=\"reviews.default.svc.cluster.local\",destination_workload=\"reviews-v1\",destination_workload_namespace=\"default\",le=\"10.0\"}} {}\n\
                 istio_request_duration_milliseconds_bucket{{reporter=\"destination\",destination_service=\"reviews.default.svc.cluster.local\",destination_workload=\"reviews-v1\",destination_workload_namespace=\"default\",le=\"+Inf\"}} {}\n",
                n + bad,
                n + bad
            )
        };
        let before = totals(&parse(&text(100.0, 0.0)));
        let after = totals(&parse(&text(190.0, 10.0)));
        let r = rows(&before, &after, 2.0);
        assert_eq!(r.len(), 1, "source reports are not counted again");
        assert_eq!(r[0].requests_per_second, 50.0);
        assert_eq!(r[0].success_rate, Some(0.9));
        assert_eq!(r[0].mtls_share, Some(0.9));
        assert_eq!(r[0].p50_ms, Some(5.0));
    }
}
