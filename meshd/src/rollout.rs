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
use mesh_api::exposition::{RequestTotals, Sample};
use mesh_api::protocol::Workload;
use mesh_api::rollout::{Phase, RolloutCheck, RolloutSpec, RolloutStatus, Verdict};
use mesh_api::{Key, Kind, Object, Resource};
use tracing::{debug, info, warn};

use crate::state::{State, World};

/// How often the Rollouts are looked at.
const TICK: Duration = Duration::from_millis(250);
/// The interval when a Rollout names none.
const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
/// The most of a proxy's metrics read, and how long a read may take.
const SCRAPE_MAX: usize = 16 << 20;
const SCRAPE_TIMEOUT: Duration = Duration::from_secs(2);
/// The most of a webhook's answer read (its status is what counts).
const HOOK_MAX: usize = 64 << 10;

/// Where a Rollout's status is written: meshd's store (local platform), or the Rollout's status
/// subresource on the API server, by the leading replica (the watch brings it back).
pub enum Sink {
    Local,
    Kube { client: kube::Client, leader: tokio::sync::watch::Receiver<bool> },
}

/// How long a status written to the API server may take to come back through the watch before
/// the controller acts on the world again.
const ECHO_WAIT: Duration = Duration::from_secs(5);

/// Run the Rollouts until meshd stops: one task per Rollout, so a slow canary proxy or webhook
/// of one never holds up another. On Kubernetes only the leading replica runs them.
pub async fn run(state: Arc<State>, sink: Sink) {
    let sink = Arc::new(sink);
    let mut tasks: HashMap<Key, tokio::task::JoinHandle<()>> = HashMap::new();
    loop {
        tokio::time::sleep(TICK).await;
        let leading = match sink.as_ref() {
            Sink::Kube { leader, .. } => *leader.borrow(),
            Sink::Local => true,
        };
        let world = state.world();
        let live = |k: &Key| leading && matches!(world.resources.get(k), Some(Resource::Rollout(_)));
        tasks.retain(|k, t| {
            let keep = live(k) && !t.is_finished();
            if !keep {
                t.abort();
            }
            keep
        });
        if !leading {
            continue;
        }
        for key in world.resources.keys().filter(|k| k.kind == Kind::Rollout) {
            if !tasks.contains_key(key) {
                tasks.insert(key.clone(), tokio::spawn(one(state.clone(), sink.clone(), key.clone())));
            }
        }
    }
}

/// Run one Rollout while it exists: each tick, decide its next status and write it.
async fn one(state: Arc<State>, sink: Arc<Sink>, key: Key) {
    let mut run = Run::default();
    loop {
        tokio::time::sleep(TICK).await;
        let world = state.world();
        let Some(Resource::Rollout(o)) = world.resources.get(&key) else { return };
        // A status written to the API server and not yet seen back: wait for it.
        if let Some((written, at)) = &run.unseen {
            let parse = |v: &serde_json::Value| serde_json::from_value::<RolloutStatus>(v.clone()).ok();
            let seen = o.status.as_ref().and_then(parse);
            if (seen.is_none() || seen != parse(written)) && at.elapsed() < ECHO_WAIT {
                continue;
            }
            run.unseen = None;
        }
        let Some(next) = advance(&world, &key, o, &mut run).await else { continue };
        let current = RolloutStatus::of(o);
        let next = next.with_conditions(
            current.as_ref().map_or(&[], |c| &c.conditions),
            &crate::kubernetes::rfc3339_now(),
            o.metadata.generation,
        );
        if current.as_ref() == Some(&next) {
            continue;
        }
        let value = match serde_json::to_value(&next) {
            Ok(v) => v,
            Err(e) => {
                warn!(rollout = %key, error = %e, "cannot encode a Rollout status");
                continue;
            }
        };
        match sink.as_ref() {
            Sink::Local => match state.set_rollout_status(&key, o.metadata.generation, value) {
                Ok(true) => {}
                // Changed or deleted meanwhile: looked at again next tick.
                Ok(false) => run.baseline = None,
                Err(e) => warn!(rollout = %key, error = %e, "cannot store a Rollout status"),
            },
            Sink::Kube { client, .. } => {
                let ar = crate::kubernetes::api_resource(mesh_api::rollout::GROUP, "v1alpha1", "Rollout", "rollouts");
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

/// What the controller keeps in memory per Rollout: the canary's counters at the start of the
/// interval being judged, and which step they are for.
#[derive(Default)]
struct Run {
    baseline: Option<(usize, Reading)>,
    /// When a refused first step may be tried again (its pre-step webhook said no).
    retry_at_ms: u64,
    /// A status written to the API server, not yet seen back through the watch, and when.
    unseen: Option<(serde_json::Value, std::time::Instant)>,
}

/// The canary's destination-side counters for the Rollout's service, per proxy (its
/// workload's name): the figures `mesh top` shows.
type Reading = BTreeMap<String, RequestTotals>;

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

/// Whether the Rollout can run: its host has a DestinationRule with both subsets, no other
/// Rollout moves the host, and the VirtualServices routing the host (if any) have a route it
/// owns (`RolloutSpec::owns`).
fn preflight(world: &World, key: &Key, spec: &RolloutSpec) -> Result<Target, String> {
    let fqdn = mesh_api::host::resolve(&spec.host, &key.namespace);
    let mut subsets: Option<&[mesh_api::networking::Subset]> = None;
    for (k, r) in world.resources.iter() {
        match r {
            Resource::DestinationRule(dr) if mesh_api::host::resolve(&dr.spec.host, &k.namespace) == fqdn => {
                subsets = Some(&dr.spec.subsets);
            }
            Resource::Rollout(other) if k < key && mesh_api::host::resolve(&other.spec.host, &k.namespace) == fqdn => {
                return Err(format!("Rollout {}/{} already moves {fqdn}", k.namespace, k.name));
            }
            _ => {}
        }
    }
    spec.route_moves(
        &key.namespace,
        world.resources.iter().filter_map(|(k, r)| match r {
            Resource::VirtualService(vs) => Some((k.namespace.as_str(), k.name.as_str(), &vs.spec)),
            _ => None,
        }),
    )?;
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
        phase: Phase::Progressing,
        step: 0,
        canary_weight: 0,
        failures: 0,
        message: "starting".into(),
        last_check: None,
        step_started_ms: now,
        of: spec.identity(),
        conditions: Vec::new(),
    });
    if st.finished() {
        return None;
    }
    let target = match preflight(world, key, spec) {
        Ok(t) => t,
        Err(why) => {
            st.phase = Phase::Failed;
            st.message = why;
            run.baseline = None;
            return changed(current.as_ref(), st);
        }
    };
    if st.phase == Phase::Failed {
        // Runnable again: start over.
        st = RolloutStatus { phase: Phase::Progressing, message: "starting".into(), step_started_ms: now, ..st };
        st.step = 0;
        st.canary_weight = 0;
    }
    if spec.abort {
        st.phase = Phase::Aborted;
        st.canary_weight = 0;
        st.message = "aborted: all traffic back to stable".into();
        info!(rollout = %key, "aborted");
        return Some(st);
    }
    if spec.promote {
        st.phase = Phase::Promoted;
        st.step = steps.len();
        st.canary_weight = 100;
        st.message = format!("promoted by hand: all traffic on {}", spec.canary);
        info!(rollout = %key, "promoted by hand");
        return Some(st);
    }
    if spec.paused {
        run.baseline = None;
        if st.phase != Phase::Paused {
            st.phase = Phase::Paused;
            st.message = format!("paused at step {} ({}% on {})", st.step, st.canary_weight, spec.canary);
        }
        return changed(current.as_ref(), st);
    }
    if st.phase == Phase::Paused {
        st.phase = Phase::Progressing;
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
    // The canary's proxies are read at the start and the end of each interval only.
    let fresh = run.baseline.as_ref().is_none_or(|(s, _)| *s != st.step);
    if !fresh && now.saturating_sub(st.step_started_ms) < ms(interval(spec, st.step)) {
        return changed(current.as_ref(), st);
    }
    let counters = scrape(world, &target).await;
    // A fresh interval for this step: after a restart, a resume or a step change.
    let Some((_, base)) = run.baseline.take().filter(|(s, _)| *s == st.step) else {
        run.baseline = Some((st.step, counters));
        st.step_started_ms = now;
        return changed(current.as_ref(), st);
    };
    let mut check = judge(&base, &counters, spec);
    if check.verdict == Verdict::TooLittleTraffic && counters.is_empty() {
        // Say why there is none: no proxy carries the canary's labels, or none could be read.
        let labels: Vec<String> = target.canary.iter().map(|(k, v)| format!("{k}={v}")).collect();
        check.why = match canary_workloads(world, &target).count() {
            0 => format!(
                "no workload in namespace {} has the canary subset's labels {{{}}}: waiting for one",
                target.namespace,
                labels.join(", ")
            ),
            n => format!("none of the {n} canary proxies could be read (metrics unreachable): waiting"),
        };
    }
    run.baseline = Some((st.step, counters));
    st.step_started_ms = now;
    let verdict = check.verdict;
    let why = check.why.clone();
    st.last_check = Some(check);
    match verdict {
        Verdict::TooLittleTraffic => {
            st.phase = Phase::Waiting;
            st.message = why;
        }
        Verdict::Passed if st.step >= steps.len() => {
            st.phase = Phase::Promoted;
            st.canary_weight = 100;
            st.message = format!("promoted: all traffic on {}", spec.canary);
            info!(rollout = %key, "promoted");
            // Told once; a failure is said, the promotion stands (Flagger's post-rollout).
            let failures = call_hooks(key, spec, &st, "post-promotion").await;
            if !failures.is_empty() {
                st.message = format!("{}; {}", st.message, failures.join("; "));
            }
        }
        Verdict::Passed => {
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
        Verdict::Failed => failed(&mut st, spec, key, &why),
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
    let max = spec.analysis.max_failures();
    if st.failures >= max {
        st.phase = Phase::RolledBack;
        st.canary_weight = 0;
        st.message = format!("rolled back after {} failed checks: {why}", st.failures);
        warn!(rollout = %key, %why, "rolled back");
    } else {
        st.phase = Phase::Progressing;
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
    st.phase = Phase::Progressing;
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
fn judge(before: &Reading, after: &Reading, spec: &RolloutSpec) -> RolloutCheck {
    let a = &spec.analysis;
    let d = increase(before, after);
    let (requests, errors) = (d.requests, d.errors.min(d.requests));
    let min = a.min_requests();
    // Whole requests: counters only grow by whole numbers.
    let n = requests.round() as u64;
    let success_rate = (requests > 0.0).then(|| 100.0 * (requests - errors) / requests);
    let p99_ms = d.quantile(0.99);
    let mut check = RolloutCheck { requests: n, success_rate, p99_ms, verdict: Verdict::Passed, why: String::new() };
    if n < min {
        check.verdict = Verdict::TooLittleTraffic;
        check.why = format!("{n} requests to the canary in the last interval, fewer than {min}: waiting for traffic");
        return check;
    }
    let want = a.success_rate();
    let mut failed = Vec::new();
    if let Some(sr) = success_rate
        && sr < want
    {
        failed.push(format!("success rate {sr:.1}% is below {want}%"));
    }
    if let Some(max) = a.p99_ms()
        && let Some(p) = p99_ms
        && p > max
    {
        failed.push(format!("p99 latency {p:.0} ms is over {max:.0} ms"));
    }
    if !failed.is_empty() {
        check.verdict = Verdict::Failed;
        check.why = failed.join("; ");
    }
    check
}

/// What the canary's counters grew by over an interval, summed over the proxies read at both
/// ends (one read at one end only is left out of this interval). A proxy whose counters went
/// down restarted: what it counted since is its increase, as Prometheus' `increase()` reads a
/// counter reset.
fn increase(before: &Reading, after: &Reading) -> RequestTotals {
    let zero = RequestTotals::default();
    let mut sum = RequestTotals::default();
    for (proxy, now) in after {
        let Some(then) = before.get(proxy) else { continue };
        let then = if now.requests < then.requests { &zero } else { then };
        sum.merge(&now.since(then));
    }
    sum
}

/// The canary's destination-side counters for the Rollout's service, per proxy (those whose
/// labels carry the canary subset's, in the service's namespace). A proxy that cannot be read
/// is left out.
async fn scrape(world: &World, target: &Target) -> Reading {
    let mut reading = Reading::new();
    // A local proxy's admin API serves its metrics; a pod's proxy serves them on 15020. All are
    // read at once, so a slow one costs one timeout, not one each.
    let reads = canary_workloads(world, target).filter_map(|w| {
        let addr = match (w.admin, w.ports.first()) {
            (Some(a), _) => a,
            (None, Some(p)) => std::net::SocketAddr::new(p.listen.ip(), 15020),
            (None, None) => return None,
        };
        let name = w.name.clone();
        Some(async move { (name, addr, fetch(addr, "/stats/prometheus").await) })
    });
    for (name, addr, text) in futures_util::future::join_all(reads).await {
        let text = match text {
            Ok(t) => t,
            Err(e) => {
                debug!(workload = %name, %addr, error = %e, "cannot read a canary proxy's metrics");
                continue;
            }
        };
        let mut out = RequestTotals::default();
        for s in mesh_api::exposition::parse(&text).iter().filter(|s| is_canary_sample(s, &target.fqdn)) {
            out.add(s);
        }
        reading.insert(name, out);
    }
    reading
}

/// The workloads of the canary subset: its labels, in the service's namespace.
fn canary_workloads<'a>(world: &'a World, target: &'a Target) -> impl Iterator<Item = &'a Workload> + 'a {
    world
        .workload_list()
        .iter()
        .filter(|w| w.namespace == target.namespace && target.canary.iter().all(|(k, v)| w.labels.get(k) == Some(v)))
}

fn is_canary_sample(s: &Sample, fqdn: &str) -> bool {
    s.labels.get("reporter").is_some_and(|r| r == "destination")
        && s.labels.get("destination_service").is_some_and(|d| d == fqdn)
}

/// GET `path` from a proxy's metrics or admin listener: the body, at most `SCRAPE_MAX`.
async fn fetch(addr: std::net::SocketAddr, path: &str) -> Result<String, String> {
    let req = http::Request::get(path).header(http::header::HOST, addr.to_string()).body(Full::new(Bytes::new()));
    let body = request(&addr.to_string(), req.map_err(|e| e.to_string())?, SCRAPE_MAX).await?;
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
    request(&target, req.map_err(|e| e.to_string())?, HOOK_MAX).await.map(|_| ())
}

/// One HTTP/1.1 request on a new connection to `target`: the body of a 2xx answer (at most
/// `max` bytes), within `SCRAPE_TIMEOUT` for the whole exchange.
async fn request(target: &str, req: http::Request<Full<Bytes>>, max: usize) -> Result<Bytes, String> {
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
        let body = Limited::new(resp.into_body(), max).collect().await.map_err(|e| e.to_string())?;
        Ok(body.to_bytes())
    };
    tokio::time::timeout(SCRAPE_TIMEOUT, send).await.map_err(|_| "timed out".to_string())?
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counters(requests: f64, errors: f64, buckets: &[(f64, f64)]) -> RequestTotals {
        let buckets = buckets.iter().map(|(le, n)| (mesh_api::exposition::OrdF64(*le), *n)).collect();
        RequestTotals { requests, errors, buckets, ..Default::default() }
    }

    fn spec(yaml: &str) -> RolloutSpec {
        let v: serde_json::Value = serde_saphyr::from_str(yaml).expect("yaml");
        serde_json::from_value(v).expect("spec")
    }

    /// A reading of one canary proxy.
    fn one(c: RequestTotals) -> Reading {
        [("reviews-v2".to_string(), c)].into()
    }

    #[test]
    fn an_interval_is_judged_on_its_own_figures() {
        let s =
            spec("host: reviews\nstable: v1\ncanary: v2\nanalysis: {successRate: 95, p99: 200ms, minRequests: 10}\n");
        let before = one(counters(100.0, 50.0, &[(100.0, 90.0), (500.0, 100.0), (f64::INFINITY, 100.0)]));
        // 40 more requests, 1 error, all under 100 ms: passed, whatever came before.
        let good = one(counters(140.0, 51.0, &[(100.0, 130.0), (500.0, 140.0), (f64::INFINITY, 140.0)]));
        let c = judge(&before, &good, &s);
        assert_eq!((c.verdict.as_str(), c.requests), ("passed", 40), "{c:?}");
        // Interpolated inside its bucket, as `mesh top` and `histogram_quantile` read it.
        assert_eq!(c.p99_ms, Some(99.0));
        // 40 more, 10 errors, slow: failed for both reasons.
        let bad = one(counters(140.0, 60.0, &[(100.0, 90.0), (500.0, 140.0), (f64::INFINITY, 140.0)]));
        let c = judge(&before, &bad, &s);
        assert_eq!(c.verdict.as_str(), "failed", "{c:?}");
        assert!(c.why.contains("success rate 75.0%") && c.why.contains("p99 latency 496 ms"), "{}", c.why);
        // 5 requests: too few to judge.
        let c = judge(&before, &one(counters(105.0, 55.0, &[])), &s);
        assert_eq!(c.verdict.as_str(), "too little traffic", "{c:?}");
    }

    #[test]
    fn a_restarted_or_unread_proxy_does_not_skew_an_interval() {
        let s = spec("host: reviews\nstable: v1\ncanary: v2\nanalysis: {minRequests: 10}\n");
        let a = |n: f64, e: f64| counters(n, e, &[(10.0, n), (f64::INFINITY, n)]);
        let before: Reading = [("a".to_string(), a(1000.0, 0.0)), ("b".to_string(), a(500.0, 0.0))].into();
        // `a` restarted (its counters start again: 30 requests, 3 errors since); `b` could not
        // be read; `c` appeared: only `a`'s 30 count, not its history nor `c`'s.
        let after: Reading = [("a".to_string(), a(30.0, 3.0)), ("c".to_string(), a(9000.0, 9000.0))].into();
        let c = judge(&before, &after, &s);
        assert_eq!((c.requests, c.success_rate), (30, Some(90.0)), "{c:?}");
        assert_eq!(c.verdict.as_str(), "failed", "{c:?}");
        // Nothing read at the end: too little traffic, never a pass.
        let c = judge(&before, &Reading::new(), &s);
        assert_eq!(c.verdict.as_str(), "too little traffic", "{c:?}");
    }

    #[test]
    fn preflight_says_why_a_rollout_cannot_run() {
        let mut res = crate::store::Resources::new();
        let yaml = "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: reviews}\nspec:\n  host: reviews\n  subsets: [{name: v1, labels: {version: v1}}, {name: v2, labels: {version: v2}}]\n---\napiVersion: rollouts.mesh.io/v1alpha1\nkind: Rollout\nmetadata: {name: a}\nspec: {host: reviews, stable: v1, canary: v2}\n---\napiVersion: rollouts.mesh.io/v1alpha1\nkind: Rollout\nmetadata: {name: b}\nspec: {host: reviews.default.svc.cluster.local, stable: v1, canary: v2}\n---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: reviews}\nspec:\n  hosts: [reviews]\n  http: [{name: testers, route: [{destination: {host: reviews, subset: v2}}]}]\n";
        for (i, doc) in mesh_api::resource::parse_yaml_stream(yaml).expect("yaml").into_iter().enumerate() {
            if let Ok(mesh_api::Parsed::Supported(r)) = mesh_api::resource::parse_document(doc, "default", i) {
                res.insert(r.key(), r);
            }
        }
        let world = World::for_test(1, Arc::new(res.clone()), Arc::default());
        let check = |name: &str| {
            let key = Key { kind: Kind::Rollout, namespace: "default".into(), name: name.into() };
            let Some(Resource::Rollout(o)) = res.get(&key) else { panic!("no rollout {name}") };
            preflight(&world, &key, &o.spec).err()
        };
        // `a` comes first; its host's only route sends to the canary alone: the user's rule.
        let a = check("a").expect("no route to move");
        assert!(
            a.contains("VirtualService default/reviews") && a.contains("none of its HTTP routes sends to v1"),
            "{a}"
        );
        let b = check("b").expect("a second Rollout of the host");
        assert!(b.contains("Rollout default/a already moves reviews.default.svc.cluster.local"), "{b}");
    }

    /// meshd reads canary proxies it does not control: a listener that never answers, one that
    /// answers garbage, one that streams an endless body. Each is left out within the timeout
    /// (all are read at once), and the honest proxy's figures still come through.
    #[test]
    fn hostile_canary_endpoints_are_left_out_within_the_timeout() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        rt.block_on(async {
            let listen = || async { tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind") };
            let serve = |l: tokio::net::TcpListener, answer: Vec<u8>, endless: bool| {
                let addr = l.local_addr().expect("addr");
                tokio::spawn(async move {
                    while let Ok((mut s, _)) = l.accept().await {
                        let answer = answer.clone();
                        tokio::spawn(async move {
                            let mut buf = [0u8; 4096];
                            let _ = s.read(&mut buf).await;
                            let _ = s.write_all(&answer).await;
                            while endless && s.write_all(&[b'#'; 65536]).await.is_ok() {}
                            // Hold the connection open: the client decides when it is done.
                            let _ = s.read(&mut buf).await;
                        });
                    }
                });
                addr
            };
            let honest = "istio_requests_total{reporter=\"destination\",destination_service=\"reviews.default.svc.cluster.local\",response_code=\"200\"} 42\n";
            let honest = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{honest}", honest.len());
            let good = serve(listen().await, honest.into_bytes(), false);
            let silent = serve(listen().await, Vec::new(), false);
            let garbage = serve(listen().await, b"\x16\x03\x01garbage\r\n\r\n".to_vec(), false);
            let endless =
                serve(listen().await, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: identity\r\n\r\n".to_vec(), true);
            let workloads: BTreeMap<String, mesh_api::protocol::Workload> = [
                ("good", good),
                ("silent", silent),
                ("garbage", garbage),
                ("endless", endless),
            ]
            .into_iter()
            .map(|(name, admin)| {
                let mut w = mesh_api::protocol::Workload::named("default", name, "reviews");
                w.labels = [("version".to_string(), "v2".to_string())].into();
                w.admin = Some(admin);
                (name.to_string(), w)
            })
            .collect();
            let world = World::for_test(1, Arc::default(), Arc::new(workloads));
            let target = Target {
                fqdn: "reviews.default.svc.cluster.local".into(),
                namespace: "default".into(),
                canary: [("version".to_string(), "v2".to_string())].into(),
            };
            let started = std::time::Instant::now();
            let reading = scrape(&world, &target).await;
            let took = started.elapsed();
            assert!(took < SCRAPE_TIMEOUT + Duration::from_secs(2), "all read at once, bounded: {took:?}");
            assert_eq!(reading.keys().collect::<Vec<_>>(), ["good"], "{reading:?}");
            assert_eq!(reading["good"].requests, 42.0);
            // A webhook that never answers, or answers garbage, is a failure that says why.
            for (addr, why) in [(silent, "timed out"), (garbage, "")] {
                let e = post(&format!("http://{addr}/hook"), "{}".into()).await.expect_err("not a 2xx");
                assert!(e.contains(why), "{e}");
            }
        });
    }
}
