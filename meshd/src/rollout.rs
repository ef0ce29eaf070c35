//! The Rollout controller: moves each Rollout through its steps by writing its status, which
//! the translation reads to serve the host's routes (`translate::rollout`). Each interval it
//! judges the canary from the Istio metrics its proxies report as the destination (the figures
//! `mesh top` shows): the share of non-5xx answers and the 99th percentile latency, once the
//! canary got enough requests to judge. It advances on a passed check, waits when traffic is
//! too low, and rolls back once the failed checks reach the limit, saying why.
//!
//! On Kubernetes the leading replica runs them and writes the status subresource; the watch
//! brings it back into the world, and nothing is decided again until it has.
//!
//! The status is the only state kept across restarts: a meshd that starts again resumes at the
//! step the status names, with a fresh interval (the counters it compares are in memory).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use mesh_api::exposition::Sample;
use mesh_api::rollout::{RolloutCheck, RolloutSpec, RolloutStatus};
use mesh_api::{Key, Object, Resource};
use tracing::{debug, info, warn};

use crate::state::{State, World};

/// How often the Rollouts are looked at.
const TICK: Duration = Duration::from_millis(250);
/// The interval when a Rollout names none.
const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
const DEFAULT_SUCCESS_RATE: f64 = 99.0;
const DEFAULT_MIN_REQUESTS: u64 = 20;
const DEFAULT_MAX_FAILURES: u32 = 2;
/// The most of a proxy's metrics read, and how long a read may take.
const SCRAPE_MAX: usize = 16 << 20;
const SCRAPE_TIMEOUT: Duration = Duration::from_secs(2);

/// Where a Rollout's status is written: meshd's store (local platform), or the Rollout's status
/// subresource on the API server, by the leading replica (the watch brings it back).
pub enum Sink {
    Local,
    Kube { client: kube::Client, leader: tokio::sync::watch::Receiver<bool> },
}

/// How long a status written to the API server may take to come back through the watch before
/// the controller acts on the world again.
const ECHO_WAIT: Duration = Duration::from_secs(5);

/// Run the Rollouts until meshd stops.
pub async fn run(state: Arc<State>, sink: Sink) {
    let mut runs: HashMap<Key, Run> = HashMap::new();
    loop {
        tokio::time::sleep(TICK).await;
        if let Sink::Kube { leader, .. } = &sink
            && !*leader.borrow()
        {
            runs.clear();
            continue;
        }
        let world = state.world();
        let rollouts: Vec<(Key, Object<RolloutSpec>)> = world
            .resources
            .iter()
            .filter_map(|(k, r)| match r {
                Resource::Rollout(o) => Some((k.clone(), o.clone())),
                _ => None,
            })
            .collect();
        runs.retain(|k, _| rollouts.iter().any(|(rk, _)| rk == k));
        for (key, o) in rollouts {
            let run = runs.entry(key.clone()).or_default();
            // A status written to the API server and not yet seen back: wait for it.
            if let Some((written, at)) = &run.unseen {
                let parse = |v: &serde_json::Value| serde_json::from_value::<RolloutStatus>(v.clone()).ok();
                let seen = o.status.as_ref().and_then(parse);
                if (seen.is_none() || seen != parse(written)) && at.elapsed() < ECHO_WAIT {
                    continue;
                }
                run.unseen = None;
            }
            let Some(next) = advance(&world, &key, &o, run).await else { continue };
            let value = match serde_json::to_value(&next) {
                Ok(v) => v,
                Err(e) => {
                    warn!(rollout = %key, error = %e, "cannot encode a Rollout status");
                    continue;
                }
            };
            match &sink {
                Sink::Local => match state.set_rollout_status(&key, o.metadata.generation, value) {
                    Ok(true) => {}
                    // Changed or deleted meanwhile: looked at again next tick.
                    Ok(false) => run.baseline = None,
                    Err(e) => warn!(rollout = %key, error = %e, "cannot store a Rollout status"),
                },
                Sink::Kube { client, .. } => {
                    let ar =
                        crate::kubernetes::api_resource(mesh_api::rollout::GROUP, "v1alpha1", "Rollout", "rollouts");
                    let api: kube::Api<kube::api::DynamicObject> =
                        kube::Api::namespaced_with(client.clone(), &key.namespace, &ar);
                    let patch = kube::api::Patch::Merge(serde_json::json!({"status": value}));
                    match api.patch_status(&key.name, &kube::api::PatchParams::default(), &patch).await {
                        Ok(_) => run.unseen = Some((value, std::time::Instant::now())),
                        Err(e) => {
                            run.baseline = None;
                            warn!(rollout = %key, error = %e, "cannot write a Rollout status; retrying");
                        }
                    }
                }
            }
        }
    }
}

/// What the controller keeps in memory per Rollout: the canary's counters at the start of the
/// interval being judged, and which step they are for.
#[derive(Default)]
struct Run {
    baseline: Option<(usize, Counters)>,
    /// When a refused first step may be tried again (its pre-step webhook said no).
    retry_at_ms: u64,
    /// A status written to the API server, not yet seen back through the watch, and when.
    unseen: Option<(serde_json::Value, std::time::Instant)>,
}

/// A canary's destination-side counters for one service.
#[derive(Debug, Clone, Default, PartialEq)]
struct Counters {
    requests: f64,
    errors: f64,
    /// Latency histogram (ms): upper bound -> cumulative count.
    buckets: Vec<(f64, f64)>,
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// What a Rollout runs against: its host's FQDN and the labels of its subsets.
struct Target {
    fqdn: String,
    namespace: String,
    canary: BTreeMap<String, String>,
}

/// Whether the Rollout can run: its host has a DestinationRule with both subsets, and no
/// VirtualService of the user's routes the host (the Rollout owns its routes).
fn preflight(world: &World, key: &Key, spec: &RolloutSpec) -> Result<Target, String> {
    let fqdn = mesh_api::host::resolve(&spec.host, &key.namespace);
    let mut subsets: Option<&[mesh_api::networking::Subset]> = None;
    for (k, r) in world.resources.iter() {
        match r {
            Resource::DestinationRule(dr) if mesh_api::host::resolve(&dr.spec.host, &k.namespace) == fqdn => {
                subsets = Some(&dr.spec.subsets);
            }
            Resource::VirtualService(vs)
                if vs.spec.hosts.iter().any(|h| mesh_api::host::resolve(h, &k.namespace) == fqdn)
                    && (vs.spec.gateways.is_empty() || vs.spec.gateways.iter().any(|g| g == "mesh")) =>
            {
                return Err(format!(
                    "VirtualService {}/{} also routes {fqdn}: a Rollout owns its host's routes (delete the VirtualService while the Rollout runs)",
                    k.namespace, k.name
                ));
            }
            _ => {}
        }
    }
    let Some(subsets) = subsets else {
        return Err(format!("no DestinationRule for {fqdn} defines the subsets {} and {}", spec.stable, spec.canary));
    };
    for name in [&spec.stable, &spec.canary] {
        if !subsets.iter().any(|s| s.name == *name) {
            return Err(format!("the DestinationRule for {fqdn} has no subset {name}"));
        }
    }
    let canary = subsets.iter().find(|s| s.name == spec.canary).map(|s| s.labels.clone()).unwrap_or_default();
    let namespace = fqdn.split('.').nth(1).unwrap_or(&key.namespace).to_string();
    Ok(Target { fqdn, namespace, canary })
}

/// The Rollout's next status, or None when it stays as it is.
async fn advance(world: &World, key: &Key, o: &Object<RolloutSpec>, run: &mut Run) -> Option<RolloutStatus> {
    let spec = &o.spec;
    let now = now_ms();
    let steps = spec.steps();
    let current = RolloutStatus::of(o);
    let mut st = current.clone().unwrap_or_else(|| RolloutStatus {
        phase: "Progressing".into(),
        step: 0,
        canary_weight: 0,
        failures: 0,
        message: "starting".into(),
        last_check: None,
        step_started_ms: now,
        of: spec.identity(),
    });
    if st.finished() {
        return None;
    }
    let target = match preflight(world, key, spec) {
        Ok(t) => t,
        Err(why) => {
            st.phase = "Failed".into();
            st.message = why;
            run.baseline = None;
            return changed(current.as_ref(), st);
        }
    };
    if st.phase == "Failed" {
        // Runnable again: start over.
        st = RolloutStatus { phase: "Progressing".into(), message: "starting".into(), step_started_ms: now, ..st };
        st.step = 0;
        st.canary_weight = 0;
    }
    if spec.abort {
        st.phase = "Aborted".into();
        st.canary_weight = 0;
        st.message = "aborted: all traffic back to stable".into();
        info!(rollout = %key, "aborted");
        return Some(st);
    }
    if spec.promote {
        st.phase = "Promoted".into();
        st.step = steps.len();
        st.canary_weight = 100;
        st.message = format!("promoted by hand: all traffic on {}", spec.canary);
        info!(rollout = %key, "promoted by hand");
        return Some(st);
    }
    if spec.paused {
        run.baseline = None;
        if st.phase != "Paused" {
            st.phase = "Paused".into();
            st.message = format!("paused at step {} ({}% on {})", st.step, st.canary_weight, spec.canary);
        }
        return changed(current.as_ref(), st);
    }
    if st.phase == "Paused" {
        st.phase = "Progressing".into();
        st.message = "resumed".into();
        st.step_started_ms = now;
    }
    if st.step == 0 {
        if now < run.retry_at_ms {
            return None;
        }
        if let Err(why) = pre_step(key, spec, &st, 1).await {
            run.retry_at_ms = now + ms(interval(spec, 1));
            failed(&mut st, spec, key, &why);
            return Some(st);
        }
        enter_step(&mut st, spec, 1, now);
        run.baseline = None;
        info!(rollout = %key, weight = st.canary_weight, "first step");
        return Some(st);
    }
    let counters = scrape(world, &target).await;
    // A fresh interval for this step: after a restart, a resume or a step change.
    let Some((step, base)) = run.baseline.clone().filter(|(s, _)| *s == st.step) else {
        run.baseline = Some((st.step, counters));
        st.step_started_ms = now;
        return changed(current.as_ref(), st);
    };
    debug_assert_eq!(step, st.step);
    if now.saturating_sub(st.step_started_ms) < ms(interval(spec, st.step)) {
        return changed(current.as_ref(), st);
    }
    let check = judge(&base, &counters, spec);
    run.baseline = Some((st.step, counters));
    st.step_started_ms = now;
    let verdict = check.verdict.clone();
    let why = check.why.clone();
    st.last_check = Some(check);
    match verdict.as_str() {
        "too little traffic" => {
            st.phase = "Waiting".into();
            st.message = why;
        }
        "passed" if st.step >= steps.len() => {
            st.phase = "Promoted".into();
            st.canary_weight = 100;
            st.message = format!("promoted: all traffic on {}", spec.canary);
            info!(rollout = %key, "promoted");
            // Told once; a failure is said, the promotion stands (Flagger's post-rollout).
            let failures = call_hooks(key, spec, &st, "post-promotion").await;
            if !failures.is_empty() {
                st.message = format!("{}; {}", st.message, failures.join("; "));
            }
        }
        "passed" => {
            let next = st.step + 1;
            match pre_step(key, spec, &st, next).await {
                Ok(()) => {
                    enter_step(&mut st, spec, next, now);
                    run.baseline = None;
                    info!(rollout = %key, step = st.step, weight = st.canary_weight, "next step");
                }
                Err(why) => failed(&mut st, spec, key, &why),
            }
        }
        _ => failed(&mut st, spec, key, &why),
    }
    Some(st)
}

/// How long step `n` (1-based) holds: its own `pause`, else the Rollout's interval.
fn interval(spec: &RolloutSpec, n: usize) -> Duration {
    spec.steps()
        .get(n.saturating_sub(1))
        .and_then(|s| s.pause.clone())
        .or(spec.interval.clone())
        .and_then(|d| mesh_api::duration::parse(&d).ok())
        .unwrap_or(DEFAULT_INTERVAL)
}

/// A failed check (the analysis, or a pre-step webhook): counted, and rolled back at the limit.
fn failed(st: &mut RolloutStatus, spec: &RolloutSpec, key: &Key, why: &str) {
    st.failures += 1;
    let max = spec.analysis.max_failures.unwrap_or(DEFAULT_MAX_FAILURES);
    if st.failures >= max {
        st.phase = "RolledBack".into();
        st.canary_weight = 0;
        st.message = format!("rolled back after {} failed checks: {why}", st.failures);
        warn!(rollout = %key, %why, "rolled back");
    } else {
        st.phase = "Progressing".into();
        st.message = format!("check failed ({} of {max}): {why}", st.failures);
    }
}

/// The `pre-step` webhooks before step `n`: Err names the first that did not answer 2xx.
async fn pre_step(key: &Key, spec: &RolloutSpec, st: &RolloutStatus, n: usize) -> Result<(), String> {
    let mut at = st.clone();
    at.step = n;
    match call_hooks(key, spec, &at, "pre-step").await.into_iter().next() {
        None => Ok(()),
        Some(why) => Err(why),
    }
}

/// POST the Rollout's state to each webhook of `kind`; what failed, each named.
async fn call_hooks(key: &Key, spec: &RolloutSpec, st: &RolloutStatus, kind: &str) -> Vec<String> {
    let mut failures = Vec::new();
    for h in spec.analysis.webhooks.iter().filter(|h| h.kind == kind) {
        let body = serde_json::json!({
            "name": key.name, "namespace": key.namespace, "type": kind, "host": spec.host,
            "stable": spec.stable, "canary": spec.canary, "phase": st.phase, "step": st.step,
            "canaryWeight": st.canary_weight,
        });
        if let Err(e) = post(&h.url, body.to_string()).await {
            failures.push(format!("{kind} webhook {} ({}): {e}", h.name, h.url));
        }
    }
    failures
}

/// `st`, when it differs from the status the Rollout has.
fn changed(current: Option<&RolloutStatus>, st: RolloutStatus) -> Option<RolloutStatus> {
    (current != Some(&st)).then_some(st)
}

/// Step `n` (1-based) in force from `now`.
fn enter_step(st: &mut RolloutStatus, spec: &RolloutSpec, n: usize, now: u64) {
    let steps = spec.steps();
    st.step = n;
    st.phase = "Progressing".into();
    st.step_started_ms = now;
    let step = steps.get(n - 1);
    st.canary_weight = step.and_then(|s| s.weight).unwrap_or(0);
    st.message = match step {
        Some(s) if s.matches.is_some() => {
            format!("step {n} of {}: A/B, matching requests to {}", steps.len(), spec.canary)
        }
        Some(s) if s.mirror.is_some() => {
            format!("step {n} of {}: {}% mirrored to {}", steps.len(), s.mirror.unwrap_or(0), spec.canary)
        }
        _ => format!("step {n} of {}: {}% to {}", steps.len(), st.canary_weight, spec.canary),
    };
}

/// One interval's check from the canary's counters at its start and end.
fn judge(before: &Counters, after: &Counters, spec: &RolloutSpec) -> RolloutCheck {
    let a = &spec.analysis;
    let requests = (after.requests - before.requests).max(0.0);
    let errors = (after.errors - before.errors).max(0.0);
    let min = a.min_requests.unwrap_or(DEFAULT_MIN_REQUESTS);
    // Whole requests: counters only grow by whole numbers.
    let n = requests.round() as u64;
    let success_rate = (requests > 0.0).then(|| 100.0 * (requests - errors) / requests);
    let p99_ms = p99(before, after);
    let mut check = RolloutCheck { requests: n, success_rate, p99_ms, verdict: "passed".into(), why: String::new() };
    if n < min {
        check.verdict = "too little traffic".into();
        check.why = format!("{n} requests to the canary in the last interval, fewer than {min}: waiting for traffic");
        return check;
    }
    let want = a.success_rate.unwrap_or(DEFAULT_SUCCESS_RATE);
    let mut failed = Vec::new();
    if let Some(sr) = success_rate
        && sr < want
    {
        failed.push(format!("success rate {sr:.1}% is below {want}%"));
    }
    if let Some(max) = a.p99.as_deref().and_then(|d| mesh_api::duration::parse(d).ok())
        && let Some(p) = p99_ms
        && p > max.as_secs_f64() * 1000.0
    {
        failed.push(format!("p99 latency {p:.0} ms is over {} ms", max.as_millis()));
    }
    if !failed.is_empty() {
        check.verdict = "failed".into();
        check.why = failed.join("; ");
    }
    check
}

/// The 99th percentile of the interval's latencies, from the histogram's bucket differences
/// (the upper bound of the bucket it falls in, as `histogram_quantile` reads a bucket edge).
fn p99(before: &Counters, after: &Counters) -> Option<f64> {
    let at = |c: &Counters, le: f64| c.buckets.iter().find(|(b, _)| *b == le).map_or(0.0, |(_, n)| *n);
    let deltas: Vec<(f64, f64)> = after.buckets.iter().map(|(le, n)| (*le, n - at(before, *le))).collect();
    let total = deltas.iter().map(|(_, n)| *n).fold(0.0, f64::max);
    if total <= 0.0 {
        return None;
    }
    let rank = 0.99 * total;
    let mut last_finite = 0.0;
    for (le, n) in &deltas {
        if *n >= rank {
            return Some(if le.is_finite() { *le } else { last_finite });
        }
        if le.is_finite() {
            last_finite = *le;
        }
    }
    None
}

/// The canary's destination-side counters for the Rollout's service, summed over its proxies
/// (those whose labels carry the canary subset's, in the service's namespace).
async fn scrape(world: &World, target: &Target) -> Counters {
    let mut out = Counters::default();
    let mut buckets: BTreeMap<u64, (f64, f64)> = BTreeMap::new();
    for w in world.workload_list() {
        if w.namespace != target.namespace || !target.canary.iter().all(|(k, v)| w.labels.get(k) == Some(v)) {
            continue;
        }
        // A local proxy's admin API serves its metrics; a pod's proxy serves them on 15020.
        let addr = match (w.admin, w.ports.first()) {
            (Some(a), _) => a,
            (None, Some(p)) => std::net::SocketAddr::new(p.listen.ip(), 15020),
            (None, None) => continue,
        };
        let text = match fetch(addr, "/stats/prometheus").await {
            Ok(t) => t,
            Err(e) => {
                debug!(workload = %w.name, %addr, error = %e, "cannot read a canary proxy's metrics");
                continue;
            }
        };
        for s in mesh_api::exposition::parse(&text) {
            if !is_canary_sample(&s, &target.fqdn) {
                continue;
            }
            match s.name.as_str() {
                "istio_requests_total" => {
                    out.requests += s.value;
                    if s.labels.get("response_code").is_some_and(|c| c.starts_with('5')) {
                        out.errors += s.value;
                    }
                }
                "istio_request_duration_milliseconds_bucket" => {
                    let le = s.labels.get("le").and_then(|v| mesh_api::exposition::value(v)).unwrap_or(f64::INFINITY);
                    buckets.entry(le.to_bits()).or_insert((le, 0.0)).1 += s.value;
                }
                _ => {}
            }
        }
    }
    let mut b: Vec<(f64, f64)> = buckets.into_values().collect();
    b.sort_by(|x, y| x.0.total_cmp(&y.0));
    out.buckets = b;
    out
}

fn is_canary_sample(s: &Sample, fqdn: &str) -> bool {
    s.labels.get("reporter").is_some_and(|r| r == "destination")
        && s.labels.get("destination_service").is_some_and(|d| d == fqdn)
}

/// GET `path` from a proxy's metrics or admin listener: the body, at most `SCRAPE_MAX`.
async fn fetch(addr: std::net::SocketAddr, path: &str) -> Result<String, String> {
    let req = http::Request::get(path).header(http::header::HOST, addr.to_string()).body(Full::new(Bytes::new()));
    let body = request(&addr.to_string(), req.map_err(|e| e.to_string())?).await?;
    String::from_utf8(body.to_vec()).map_err(|_| "metrics are not UTF-8".to_string())
}

/// POST `body` (JSON) to an `http://` URL; Ok on a 2xx answer.
async fn post(url: &str, body: String) -> Result<(), String> {
    let uri: http::Uri = url.parse().map_err(|e| format!("bad URL: {e}"))?;
    let authority = uri.authority().ok_or("no host in the URL")?.clone();
    let target = format!("{}:{}", authority.host(), authority.port_u16().unwrap_or(80));
    let req = http::Request::post(uri.path_and_query().map_or("/", |p| p.as_str()))
        .header(http::header::HOST, authority.as_str())
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body)));
    request(&target, req.map_err(|e| e.to_string())?).await.map(|_| ())
}

/// One HTTP/1.1 request on a new connection to `target`: the body of a 2xx answer (at most
/// `SCRAPE_MAX`), within `SCRAPE_TIMEOUT`.
async fn request(target: &str, req: http::Request<Full<Bytes>>) -> Result<Bytes, String> {
    let send = async {
        let tcp = tokio::net::TcpStream::connect(target).await.map_err(|e| e.to_string())?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp))
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(conn);
        let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
        if !resp.status().is_success() {
            return Err(format!("answered {}", resp.status()));
        }
        let body = Limited::new(resp.into_body(), SCRAPE_MAX).collect().await.map_err(|e| e.to_string())?;
        Ok(body.to_bytes())
    };
    tokio::time::timeout(SCRAPE_TIMEOUT, send).await.map_err(|_| "timed out".to_string())?
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counters(requests: f64, errors: f64, buckets: &[(f64, f64)]) -> Counters {
        Counters { requests, errors, buckets: buckets.to_vec() }
    }

    fn spec(yaml: &str) -> RolloutSpec {
        let v: serde_json::Value = serde_saphyr::from_str(yaml).expect("yaml");
        serde_json::from_value(v).expect("spec")
    }

    #[test]
    fn an_interval_is_judged_on_its_own_figures() {
        let s =
            spec("host: reviews\nstable: v1\ncanary: v2\nanalysis: {successRate: 95, p99: 200ms, minRequests: 10}\n");
        let before = counters(100.0, 50.0, &[(100.0, 90.0), (500.0, 100.0), (f64::INFINITY, 100.0)]);
        // 40 more requests, 1 error, all under 100 ms: passed, whatever came before.
        let good = counters(140.0, 51.0, &[(100.0, 130.0), (500.0, 140.0), (f64::INFINITY, 140.0)]);
        let c = judge(&before, &good, &s);
        assert_eq!((c.verdict.as_str(), c.requests), ("passed", 40), "{c:?}");
        assert_eq!(c.p99_ms, Some(100.0));
        // 40 more, 10 errors, slow: failed for both reasons.
        let bad = counters(140.0, 60.0, &[(100.0, 90.0), (500.0, 140.0), (f64::INFINITY, 140.0)]);
        let c = judge(&before, &bad, &s);
        assert_eq!(c.verdict, "failed", "{c:?}");
        assert!(c.why.contains("success rate 75.0%") && c.why.contains("p99 latency 500 ms"), "{}", c.why);
        // 5 requests: too few to judge.
        let c = judge(&before, &counters(105.0, 55.0, &[]), &s);
        assert_eq!(c.verdict, "too little traffic", "{c:?}");
    }
}
