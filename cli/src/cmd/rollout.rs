//! `mesh rollout`: progressive delivery. `start` writes a Rollout (`rollouts.mesh.io`); meshd
//! runs it (moving the host's weights step by step, judging the canary from its proxies'
//! metrics, rolling back on failure); `status` shows where it is; `pause`, `resume`, `promote`
//! and `abort` set the Rollout's spec fields meshd acts on.

use std::time::Duration;

use mesh_api::rollout::{Phase, RolloutAnalysis, RolloutSpec, RolloutStatus, RolloutStep};
use mesh_api::{Kind, Object, Resource, host};
use serde::Serialize;

use crate::Ctx;
use crate::cli::{Output, RolloutActionArgs, RolloutCommand, RolloutStartArgs, RolloutStatusArgs};
use crate::error::{CliError, Result};
use crate::store::ConfigStore;

pub async fn run(ctx: &Ctx, c: RolloutCommand) -> Result<()> {
    match c {
        RolloutCommand::Start(a) => start(ctx, a).await,
        RolloutCommand::Status(a) => status(ctx, a).await,
        RolloutCommand::Pause(a) => action(ctx, a, Action::Pause).await,
        RolloutCommand::Resume(a) => action(ctx, a, Action::Resume).await,
        RolloutCommand::Promote(a) => action(ctx, a, Action::Promote).await,
        RolloutCommand::Abort(a) => action(ctx, a, Action::Abort).await,
    }
}

/// Every resource of `kind` in the namespace.
async fn all(store: &ConfigStore, kind: Kind, ns: &str) -> Result<Vec<Resource>> {
    store.list(kind, Some(ns), None, &mut Vec::new()).await
}

/// The Rollout named `name`, or whose host is `name`.
async fn find(store: &ConfigStore, ns: &str, name: &str) -> Result<Object<RolloutSpec>> {
    let fqdn = host::resolve(name, ns);
    all(store, Kind::Rollout, ns)
        .await?
        .into_iter()
        .filter_map(|r| if let Resource::Rollout(o) = r { Some(o) } else { None })
        .find(|o| o.metadata.name == name || host::resolve(&o.spec.host, ns) == fqdn)
        .ok_or_else(|| {
            CliError::user(format!("no rollout of {name} in namespace {ns} (`mesh rollout status` lists them)"))
        })
}

async fn start(ctx: &Ctx, a: RolloutStartArgs) -> Result<()> {
    let ns = ctx.global.namespace.as_str();
    let fqdn = host::resolve(&a.host, ns);
    let store = ctx.config_store().await?;
    let drs = all(&store, Kind::DestinationRule, ns).await?;
    let subsets: Vec<String> = drs
        .iter()
        .filter_map(|r| if let Resource::DestinationRule(o) = r { Some(o) } else { None })
        .filter(|o| host::resolve(&o.spec.host, ns) == fqdn)
        .flat_map(|o| o.spec.subsets.iter().map(|s| s.name.clone()))
        .collect();
    if !subsets.contains(&a.canary) {
        return Err(CliError::user(format!(
            "{fqdn} has no subset {} (a DestinationRule for the host defines {}); nothing was changed",
            a.canary,
            if subsets.is_empty() { "none".to_string() } else { subsets.join(", ") }
        )));
    }
    // The VirtualServices routing the host now: the Rollout moves the routes it owns there.
    let probe = RolloutSpec { host: a.host.clone(), ..Default::default() };
    let routing: Vec<Object<mesh_api::networking::VirtualServiceSpec>> = all(&store, Kind::VirtualService, ns)
        .await?
        .into_iter()
        .filter_map(|r| if let Resource::VirtualService(o) = r { Some(o) } else { None })
        .filter(|o| probe.adopts(ns, o.metadata.namespace.as_deref().unwrap_or(ns), &o.spec))
        .collect();
    let previous = all(&store, Kind::Rollout, ns)
        .await?
        .into_iter()
        .filter_map(|r| if let Resource::Rollout(o) = r { Some(o) } else { None })
        .find(|o| host::resolve(&o.spec.host, ns) == fqdn);
    let stable = match &a.stable {
        Some(s) => s.clone(),
        None => infer_stable(previous.as_ref(), &routing, &subsets, &a.canary, &fqdn)?,
    };
    if !subsets.contains(&stable) {
        return Err(CliError::user(format!("{fqdn} has no subset {stable}; nothing was changed")));
    }
    let mut spec = RolloutSpec {
        host: a.host.clone(),
        stable: stable.clone(),
        canary: a.canary.clone(),
        steps: a.steps.iter().map(|w| RolloutStep { weight: Some(*w), ..Default::default() }).collect(),
        interval: Some(a.interval.clone()),
        analysis: RolloutAnalysis {
            success_rate: Some(a.success_rate),
            p99: a.p99.clone(),
            min_requests: Some(a.min_requests),
            max_failures: Some(a.max_failures),
            webhooks: Vec::new(),
        },
        ..Default::default()
    };
    // The routes the host's last rollout moved (when it named them, or they have names) move
    // again: its promotion left them on a subset the user's VirtualService does not say.
    spec.routes = a.routes.clone();
    if spec.routes.is_empty()
        && let Some(prev) = &previous
    {
        let named: Option<Vec<String>> = routing
            .iter()
            .flat_map(|o| {
                let vs_ns = o.metadata.namespace.as_deref().unwrap_or(ns).to_string();
                o.spec.http.iter().filter(move |r| prev.spec.owns(ns, &vs_ns, r))
            })
            .map(|r| r.name.clone())
            .collect();
        if let Some(names) = named.filter(|n| !n.is_empty())
            && !routing
                .iter()
                .any(|o| o.spec.http.iter().any(|r| spec.owns(ns, o.metadata.namespace.as_deref().unwrap_or(ns), r)))
        {
            spec.routes = names;
        }
    }
    // What it will move in the routes there are: at least one route, or it cannot run.
    let moves = spec
        .route_moves(
            ns,
            routing.iter().map(|o| (o.metadata.namespace.as_deref().unwrap_or(ns), o.metadata.name.as_str(), &o.spec)),
        )
        .map_err(|why| CliError::user(format!("{why}; nothing was changed")))?;
    let name = previous
        .as_ref()
        .map_or_else(|| a.host.split('.').next().unwrap_or(&a.host).to_string(), |o| o.metadata.name.clone());
    let doc = serde_json::json!({
        "apiVersion": Kind::Rollout.default_api_version(), "kind": "Rollout",
        "metadata": {"name": name, "namespace": ns}, "spec": spec,
    });
    // Checked before asking: a bad step list is refused here, not after the question.
    mesh_api::resource::parse_document(doc.clone(), ns, 0)
        .map_err(|e| CliError::user(format!("{e}; nothing was changed")))?;
    let steps: Vec<String> = a.steps.iter().map(|w| format!("{w}%")).collect();
    ctx.out.confirm(
        &format!(
            "Move {fqdn} from {stable} to {} in steps of {} every {}, rolled back below {}% success{}?",
            a.canary,
            steps.join(", "),
            a.interval,
            a.success_rate,
            a.p99.as_deref().map(|p| format!(" or over {p} p99")).unwrap_or_default()
        ),
        a.yes,
    )?;
    let resp = store.apply(vec![doc], ns, false).await?;
    for m in moves {
        ctx.out.info(format!(
            "virtualservice/{}: the rollout moves route {} ({} of {}); the others stay as written",
            m.name,
            m.routes.join(", "),
            m.routes.len(),
            m.of
        ));
    }
    for r in resp.results {
        ctx.out.info(format!("{}/{} {}", r.key.kind.qualified(), r.key.name, r.change.as_str()));
    }
    ctx.out.success(format!("rollout of {fqdn} started: `mesh rollout status {} --watch` follows it", a.host));
    Ok(())
}

/// The stable subset when not named: the canary of the host's last rollout if it was promoted
/// (its stable if it was rolled back or aborted), else the one the host's routes send
/// everything to, else the DestinationRule's only other subset.
fn infer_stable(
    previous: Option<&Object<RolloutSpec>>,
    routing: &[Object<mesh_api::networking::VirtualServiceSpec>],
    subsets: &[String],
    canary: &str,
    fqdn: &str,
) -> Result<String> {
    if let Some(o) = previous
        && let Some(st) = RolloutStatus::of(o)
    {
        let serving = match st.phase {
            Phase::Promoted => Some(&o.spec.canary),
            Phase::RolledBack | Phase::Aborted => Some(&o.spec.stable),
            _ => None,
        };
        if let Some(s) = serving.filter(|s| *s != canary) {
            return Ok(s.clone());
        }
    }
    // The catch-all routes (no match) say what serves; a rule for some requests does not.
    let mut all_to: Vec<String> = routing
        .iter()
        .flat_map(|o| &o.spec.http)
        .filter(|r| r.matches.is_empty())
        .filter_map(|r| {
            let live: Vec<_> = r.route.iter().filter(|d| d.weight.is_none_or(|w| w > 0)).collect();
            match live.as_slice() {
                [one] => one.destination.subset.clone(),
                _ => None,
            }
        })
        .collect();
    all_to.dedup();
    if let [one] = all_to.as_slice()
        && one != canary
    {
        return Ok(one.clone());
    }
    let others: Vec<&String> = subsets.iter().filter(|s| *s != canary).collect();
    match others.as_slice() {
        [one] => Ok((*one).clone()),
        _ => Err(CliError::user(format!(
            "which subset of {fqdn} serves now? say --stable (one of {}); nothing was changed",
            others.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
        ))),
    }
}

#[derive(Debug, Serialize)]
struct Row {
    name: String,
    host: String,
    stable: String,
    canary: String,
    #[serde(flatten)]
    status: RolloutStatus,
    steps: usize,
    /// The traffic of the step it is at, in words.
    traffic: String,
    #[serde(skip)]
    analysis: RolloutAnalysis,
}

async fn rows(store: &ConfigStore, ns: &str, only: Option<&str>) -> Result<Vec<Row>> {
    let fqdn = only.map(|h| host::resolve(h, ns));
    let mut out = Vec::new();
    for r in all(store, Kind::Rollout, ns).await? {
        let Resource::Rollout(o) = r else { continue };
        if let (Some(name), Some(f)) = (only, &fqdn)
            && o.metadata.name != name
            && host::resolve(&o.spec.host, ns) != *f
        {
            continue;
        }
        let status = RolloutStatus::of(&o).unwrap_or(RolloutStatus {
            phase: Phase::Pending,
            message: "meshd has not started it yet".into(),
            ..Default::default()
        });
        out.push(Row {
            name: o.metadata.name.clone(),
            host: o.spec.host.clone(),
            stable: o.spec.stable.clone(),
            canary: o.spec.canary.clone(),
            steps: o.spec.steps().len(),
            traffic: o.spec.traffic_text(&status),
            analysis: o.spec.analysis.clone(),
            status,
        });
    }
    if out.is_empty()
        && let Some(h) = only
    {
        return Err(CliError::user(format!("no rollout of {h} in namespace {ns}")));
    }
    Ok(out)
}

/// The last check's figures, each against its threshold: `40 req (min 20), 100.0% ok (min
/// 99%), p99 5ms (max 500ms): passed`.
fn check_text(row: &Row) -> String {
    let a = &row.analysis;
    match &row.status.last_check {
        None => "-".into(),
        Some(c) => {
            let sr = c.success_rate.map(|s| format!("{s:.1}%")).unwrap_or("-".into());
            let p = c.p99_ms.map(|p| format!("{p:.0}ms")).unwrap_or("-".into());
            let p_max = a.p99_ms().map(|m| format!(" (max {m:.0}ms)")).unwrap_or_default();
            format!(
                "{} req (min {}), {sr} ok (min {}%), p99 {p}{p_max}: {}",
                c.requests,
                a.min_requests(),
                a.success_rate(),
                c.verdict
            )
        }
    }
}

async fn status(ctx: &Ctx, a: RolloutStatusArgs) -> Result<()> {
    let ns = ctx.global.namespace.clone();
    let store = ctx.config_store().await?;
    if a.watch {
        let Some(h) = a.host.as_deref() else {
            return Err(CliError::usage("--watch follows one rollout: name its host"));
        };
        return watch(ctx, &store, &ns, h).await;
    }
    let rows = rows(&store, &ns, a.host.as_deref()).await?;
    if a.output != Output::Table {
        return ctx.out.structured(a.output, &rows);
    }
    if rows.is_empty() {
        ctx.out.info(format!("No rollouts in namespace {ns}."));
        return Ok(());
    }
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                r.name.clone(),
                r.host.clone(),
                r.status.phase.to_string(),
                format!("{}/{}", r.status.step.min(r.steps), r.steps),
                r.traffic.clone(),
                format!("{}/{}", r.status.failures, r.analysis.max_failures()),
                check_text(r),
                r.status.message.clone(),
            ]
        })
        .collect();
    ctx.out.table(&["NAME", "HOST", "PHASE", "STEP", "TRAFFIC", "FAILED CHECKS", "LAST CHECK", "MESSAGE"], table);
    Ok(())
}

/// Follow one rollout until it ends: a progress bar over its steps, a line per change.
async fn watch(ctx: &Ctx, store: &ConfigStore, ns: &str, h: &str) -> Result<()> {
    let bar = indicatif::ProgressBar::new(1);
    if let Ok(style) = indicatif::ProgressStyle::with_template("{bar:30} step {pos}/{len} {msg}") {
        bar.set_style(style);
    }
    let mut last = String::new();
    loop {
        let rows = rows(store, ns, Some(h)).await?;
        let Some(r) = rows.first() else { return Ok(()) };
        bar.set_length(r.steps as u64);
        bar.set_position(r.status.step.min(r.steps) as u64);
        let line = format!("{} {}: {} ({})", r.status.phase, r.traffic, r.status.message, check_text(r));
        if line != last {
            // On a terminal above the bar; piped, as plain lines.
            if bar.is_hidden() {
                ctx.out.data(&line);
            } else {
                bar.println(&line);
            }
            last = line;
        }
        bar.set_message(format!("{} {}", r.status.phase, r.traffic));
        if r.status.finished() || r.status.phase == Phase::Failed {
            bar.finish_and_clear();
            let done = format!("rollout/{}: {}", r.name, r.status.message);
            if r.status.phase == Phase::Promoted {
                ctx.out.success(done);
                return Ok(());
            }
            return Err(CliError::failed(done));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Action {
    Pause,
    Resume,
    Promote,
    Abort,
}

async fn action(ctx: &Ctx, a: RolloutActionArgs, what: Action) -> Result<()> {
    let ns = ctx.global.namespace.as_str();
    let store = ctx.config_store().await?;
    let mut o = find(&store, ns, &a.host).await?;
    let status = RolloutStatus::of(&o);
    if status.as_ref().is_some_and(RolloutStatus::finished) {
        return Err(CliError::user(format!(
            "rollout/{} is over ({}); nothing was changed",
            o.metadata.name,
            status.map(|s| s.phase.to_string()).unwrap_or_default()
        )));
    }
    let fqdn = host::resolve(&o.spec.host, ns);
    let question = match what {
        Action::Pause => None,
        Action::Resume => Some(format!("Resume moving {fqdn} to {}?", o.spec.canary)),
        Action::Promote => Some(format!("Send all of {fqdn}'s traffic to {} now?", o.spec.canary)),
        Action::Abort => Some(format!("Send all of {fqdn}'s traffic back to {} now?", o.spec.stable)),
    };
    if let Some(q) = question {
        ctx.out.confirm(&q, a.yes)?;
    }
    match what {
        Action::Pause => o.spec.paused = true,
        Action::Resume => o.spec.paused = false,
        Action::Promote => o.spec.promote = true,
        Action::Abort => o.spec.abort = true,
    }
    o.status = None; // meshd's: kept as it is by the apply
    o.metadata.resource_version = None;
    o.metadata.managed_fields = None;
    let doc = serde_json::to_value(&o).map_err(|e| CliError::internal(e.to_string()))?;
    store.apply(vec![doc], ns, false).await?;
    let done = match what {
        Action::Pause => "paused",
        Action::Resume => "resumed",
        Action::Promote => "promoting",
        Action::Abort => "aborting",
    };
    ctx.out.success(format!("rollout/{} {done}", o.metadata.name));
    Ok(())
}
