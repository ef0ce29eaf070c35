//! `Rollout` (`rollouts.mesh.io/v1alpha1`): progressive delivery run by meshd. A Rollout names
//! a host, its stable and canary subsets (a DestinationRule's), the steps that move traffic to
//! the canary, and the analysis that judges each interval from the proxies' Istio metrics.
//! meshd owns the host's routes while the Rollout exists: it serves them as a VirtualService
//! of its own, with the weights of the step the Rollout is at (kept in its status).

use serde::{Deserialize, Serialize};

/// The API group of mesh's own delivery resources.
pub const GROUP: &str = "rollouts.mesh.io";

/// The weights a Rollout steps through when it names none (Flagger's and Argo's usual).
pub const DEFAULT_STEPS: [u32; 4] = [10, 25, 50, 100];

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RolloutSpec {
    /// The service whose traffic moves: a short name (the Rollout's namespace) or an FQDN.
    pub host: String,
    /// The subset that serves now (a DestinationRule subset of the host).
    pub stable: String,
    /// The subset traffic moves to.
    pub canary: String,
    /// In order; the default is 10, 25, 50, 100 percent.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<RolloutStep>,
    /// How long each weight step holds, and how often the analysis judges (default 30s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(schema_with = "crate::schema::duration"))]
    pub interval: Option<String>,
    #[serde(default)]
    pub analysis: RolloutAnalysis,
    /// The HTTP routes (by name) of the VirtualServices routing the host whose traffic the
    /// Rollout moves, as Argo Rollouts names them. None named: every route that sends to the
    /// stable subset and to no subset but the stable and the canary. Other routes are never
    /// changed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<String>,
    /// Held at the current step until set back to false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub paused: bool,
    /// Stop now: all traffic back to stable (`mesh rollout abort`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub abort: bool,
    /// Skip the remaining steps: all traffic to the canary (`mesh rollout promote`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub promote: bool,
}

/// One step: a weight held for the interval, a header/cookie match sent to the canary (an A/B
/// phase), or a mirror-only shadow phase.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RolloutStep {
    /// Percent of requests to the canary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<u32>,
    /// Requests whose header (or cookie) matches go to the canary, the rest to stable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matches: Option<RolloutMatch>,
    /// Percent of requests copied to the canary (answers discarded); all answered by stable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mirror: Option<u32>,
    /// How long this step holds (default: the Rollout's interval).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(schema_with = "crate::schema::duration"))]
    pub pause: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RolloutMatch {
    /// A header and its exact value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<NameValue>,
    /// A cookie and its exact value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cookie: Option<NameValue>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NameValue {
    pub name: String,
    pub value: String,
}

/// How each interval is judged, from `istio_requests_total` and
/// `istio_request_duration_milliseconds` reported by the canary's proxies (the destination).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RolloutAnalysis {
    /// The least share of non-5xx answers, in percent (default 99).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub success_rate: Option<f64>,
    /// The most the 99th percentile latency may be (a duration; none: not judged).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(schema_with = "crate::schema::duration"))]
    pub p99: Option<String>,
    /// Requests the canary must get in an interval before it is judged (default 20); fewer and
    /// the Rollout waits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_requests: Option<u64>,
    /// Failed intervals that roll it back (default 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_failures: Option<u32>,
    /// Called as Flagger calls them: `pre-step` before each step (a non-2xx answer holds the
    /// step back and counts as a failed check), `post-promotion` once promoted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub webhooks: Vec<RolloutWebhook>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RolloutWebhook {
    pub name: String,
    /// `pre-step` or `post-promotion`.
    #[serde(rename = "type")]
    pub kind: String,
    /// `http://host:port/path` (POSTed a JSON description of the Rollout).
    pub url: String,
}

impl RolloutAnalysis {
    /// The least share of non-5xx answers, in percent (default 99).
    pub fn success_rate(&self) -> f64 {
        self.success_rate.unwrap_or(99.0)
    }

    /// Requests per interval before judging (default 20).
    pub fn min_requests(&self) -> u64 {
        self.min_requests.unwrap_or(20)
    }

    /// Failed checks that roll back (default 2).
    pub fn max_failures(&self) -> u32 {
        self.max_failures.unwrap_or(2)
    }

    /// The p99 limit in milliseconds, if one is set (and well formed).
    pub fn p99_ms(&self) -> Option<f64> {
        self.p99.as_deref().and_then(|d| crate::duration::parse(d).ok()).map(|d| d.as_secs_f64() * 1000.0)
    }
}

impl RolloutSpec {
    /// What traffic a status means, in words: `v1 70% / v2 30%`, an A/B match, a mirror.
    pub fn traffic_text(&self, status: &RolloutStatus) -> String {
        let (stable, canary) = (&self.stable, &self.canary);
        let step = match status.phase {
            Phase::Promoted | Phase::RolledBack | Phase::Aborted | Phase::Failed => None,
            _ if status.step == 0 => None,
            _ => self.steps().get(status.step - 1).cloned(),
        };
        match step {
            Some(RolloutStep { matches: Some(m), .. }) => {
                let test = match (&m.header, &m.cookie) {
                    (Some(h), _) => format!("header {}: {}", h.name, h.value),
                    (None, Some(c)) => format!("cookie {}={}", c.name, c.value),
                    (None, None) => "-".into(),
                };
                format!("{canary} for {test}, else {stable}")
            }
            Some(RolloutStep { mirror: Some(p), .. }) => format!("{stable} 100% (+{p}% mirrored to {canary})"),
            _ => {
                let w = status.canary_weight.min(100);
                format!("{stable} {}% / {canary} {w}%", 100 - w)
            }
        }
    }

    /// The steps, with the default ones when none are given.
    pub fn steps(&self) -> Vec<RolloutStep> {
        if self.steps.is_empty() {
            DEFAULT_STEPS.iter().map(|w| RolloutStep { weight: Some(*w), ..Default::default() }).collect()
        } else {
            self.steps.clone()
        }
    }

    /// Whether a VirtualService (in namespace `vs_ns`) routes the Rollout's host for the mesh:
    /// the Rollout moves the routes it owns there instead of serving routes of its own. `ns` is
    /// the Rollout's namespace.
    pub fn adopts(&self, ns: &str, vs_ns: &str, vs: &crate::networking::VirtualServiceSpec) -> bool {
        let fqdn = crate::host::resolve(&self.host, ns);
        vs.hosts.iter().any(|h| crate::host::resolve(h, vs_ns) == fqdn)
            && (vs.gateways.is_empty() || vs.gateways.iter().any(|g| g == "mesh"))
    }

    /// Whether a route of a VirtualService in `vs_ns` is one whose traffic this Rollout moves:
    /// it sends only to the host (no redirect, direct response or delegate), and it is named
    /// in `routes`, or (none named) it sends to the stable subset and to no subset but the
    /// stable and the canary (a rule sending only to the canary, or to another subset, is the
    /// user's and stays).
    pub fn owns(&self, ns: &str, vs_ns: &str, route: &crate::networking::HttpRoute) -> bool {
        let fqdn = crate::host::resolve(&self.host, ns);
        if route.route.is_empty()
            || !route.route.iter().all(|d| crate::host::resolve(&d.destination.host, vs_ns) == fqdn)
        {
            return false;
        }
        if !self.routes.is_empty() {
            return route.name.as_ref().is_some_and(|n| self.routes.contains(n));
        }
        let subset = |d: &crate::networking::HttpRouteDestination| d.destination.subset.clone().unwrap_or_default();
        route.route.iter().all(|d| subset(d) == self.stable || subset(d) == self.canary)
            && route.route.iter().any(|d| subset(d) == self.stable)
    }

    /// What the Rollout moves in the VirtualServices routing its host, given as `(namespace,
    /// name, spec)` (those routing other hosts are passed over): the routes it owns in each.
    /// Err, saying why, when some route the host and none has a route it owns (it cannot run);
    /// none route it: nothing to move (it serves routes of its own). The one rule meshd,
    /// `mesh analyze` and `mesh rollout start` apply. `ns` is the Rollout's namespace.
    pub fn route_moves<'a>(
        &self,
        ns: &str,
        virtual_services: impl IntoIterator<Item = (&'a str, &'a str, &'a crate::networking::VirtualServiceSpec)>,
    ) -> Result<Vec<RouteMoves>, String> {
        let mut adopted = Vec::new();
        let mut moves = Vec::new();
        for (vs_ns, name, vs) in virtual_services {
            if !self.adopts(ns, vs_ns, vs) {
                continue;
            }
            adopted.push(format!("{vs_ns}/{name}"));
            let routes: Vec<String> = vs
                .http
                .iter()
                .enumerate()
                .filter(|(_, r)| self.owns(ns, vs_ns, r))
                .map(|(i, r)| r.name.clone().unwrap_or_else(|| format!("#{i}")))
                .collect();
            if !routes.is_empty() {
                moves.push(RouteMoves { namespace: vs_ns.into(), name: name.into(), routes, of: vs.http.len() });
            }
        }
        if !adopted.is_empty() && moves.is_empty() {
            let which = if self.routes.is_empty() {
                format!("sends to {0} and to no subset but {0} and {1}", self.stable, self.canary)
            } else {
                format!("is named {}", self.routes.join(", "))
            };
            return Err(format!(
                "VirtualService {} routes {} but none of its HTTP routes {which}: the Rollout has no route to move (name them in spec.routes, or with --route)",
                adopted.join(", "),
                crate::host::resolve(&self.host, ns)
            ));
        }
        Ok(moves)
    }

    /// What a rollout is of: a change of these starts it over (pausing, aborting or
    /// promoting does not).
    pub fn identity(&self) -> String {
        let steps = serde_json::to_string(&self.steps).unwrap_or_default();
        format!("{}|{}|{}|{steps}", self.host, self.stable, self.canary)
    }
}

/// Where a Rollout is. meshd writes every one but `Pending`, which says meshd has not taken the
/// Rollout up yet (it has no status of its spec).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Phase {
    #[default]
    Pending,
    Progressing,
    /// Too little traffic to judge.
    Waiting,
    Paused,
    Promoted,
    RolledBack,
    Aborted,
    /// Cannot run: a missing subset, no route to move, a host another Rollout moves.
    Failed,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Pending => "Pending",
            Phase::Progressing => "Progressing",
            Phase::Waiting => "Waiting",
            Phase::Paused => "Paused",
            Phase::Promoted => "Promoted",
            Phase::RolledBack => "RolledBack",
            Phase::Aborted => "Aborted",
            Phase::Failed => "Failed",
        }
    }
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An interval's verdict.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Verdict {
    #[default]
    #[serde(rename = "passed")]
    Passed,
    #[serde(rename = "failed")]
    Failed,
    /// Fewer requests than `minRequests`: not judged.
    #[serde(rename = "too little traffic")]
    TooLittleTraffic,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Passed => "passed",
            Verdict::Failed => "failed",
            Verdict::TooLittleTraffic => "too little traffic",
        }
    }
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The routes a Rollout moves in one VirtualService (`RolloutSpec::route_moves`).
#[derive(Debug, Clone, PartialEq)]
pub struct RouteMoves {
    pub namespace: String,
    pub name: String,
    /// The owned routes' names (`#INDEX` for an unnamed one).
    pub routes: Vec<String>,
    /// How many HTTP routes the VirtualService has.
    pub of: usize,
}

/// Where a Rollout is, as meshd writes it in its status.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RolloutStatus {
    pub phase: Phase,
    /// The index of the step in force (0 before the first).
    pub step: usize,
    /// Percent of requests on the canary now.
    pub canary_weight: u32,
    /// Failed checks so far (a passed one does not reset it, as Flagger counts).
    pub failures: u32,
    /// Why it is in this phase.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// The last interval's figures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_check: Option<RolloutCheck>,
    /// Unix milliseconds the current step began.
    pub step_started_ms: u64,
    /// The spec identity (`RolloutSpec::identity`) this status is about.
    #[serde(default)]
    pub of: String,
    /// Kubernetes conditions (`Progressing`, `Promoted`, `AnalysisPassing`), derived from the
    /// rest (`RolloutStatus::with_conditions`), for `kubectl wait --for=condition=Promoted`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<RolloutCondition>,
}

/// A condition as Kubernetes writes them (`metav1.Condition`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RolloutCondition {
    #[serde(rename = "type")]
    pub kind: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    pub reason: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// When `status` last changed (RFC 3339).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub last_transition_time: String,
    /// The Rollout's `metadata.generation` this was set from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

/// One interval's analysis.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RolloutCheck {
    pub requests: u64,
    /// Percent of non-5xx answers (None: no request).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub success_rate: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p99_ms: Option<f64>,
    pub verdict: Verdict,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub why: String,
}

impl RolloutStatus {
    /// The status a Rollout carries when it is about its current spec; None when it has none,
    /// or one of an earlier spec (a rollout not started: all on stable).
    pub fn of(o: &crate::Object<RolloutSpec>) -> Option<RolloutStatus> {
        let s: RolloutStatus = serde_json::from_value(o.status.clone()?).ok()?;
        (s.of == o.spec.identity()).then_some(s)
    }

    /// A phase the Rollout no longer moves from.
    pub fn finished(&self) -> bool {
        matches!(self.phase, Phase::Promoted | Phase::RolledBack | Phase::Aborted)
    }

    /// This status with its conditions set from its phase and last check:
    /// - `Progressing`: True while it moves or waits for traffic; False once paused, finished
    ///   or unable to run, the phase as the reason.
    /// - `Promoted`: True once promoted; False once rolled back, aborted or failed; else Unknown.
    /// - `AnalysisPassing`: the last interval's verdict (Unknown before one, or on too little
    ///   traffic), its figures as the message.
    ///
    /// A condition whose status is as in `previous` keeps its transition time; one that changed
    /// gets `now`.
    pub fn with_conditions(mut self, previous: &[RolloutCondition], now: &str, generation: Option<i64>) -> Self {
        let phase = self.phase.as_str();
        let progressing = match self.phase {
            Phase::Progressing | Phase::Waiting => "True",
            _ => "False",
        };
        let promoted = match self.phase {
            Phase::Promoted => "True",
            Phase::RolledBack | Phase::Aborted | Phase::Failed => "False",
            _ => "Unknown",
        };
        let promoted_reason = if promoted == "Unknown" { "InProgress" } else { phase };
        let (analysis, analysis_reason, analysis_message) = match &self.last_check {
            None => ("Unknown", "NotJudged", String::new()),
            Some(c) => {
                let figures = format!(
                    "{} requests, {} ok, p99 {}",
                    c.requests,
                    c.success_rate.map_or("-".into(), |r| format!("{r:.1}%")),
                    c.p99_ms.map_or("-".into(), |p| format!("{p:.0} ms"))
                );
                let message = if c.why.is_empty() { figures } else { format!("{}: {figures}", c.why) };
                match c.verdict {
                    Verdict::Passed => ("True", "Passed", message),
                    Verdict::Failed => ("False", "Failed", message),
                    Verdict::TooLittleTraffic => ("Unknown", "TooLittleTraffic", message),
                }
            }
        };
        let wanted = [
            ("Progressing", progressing, phase, self.message.clone()),
            ("Promoted", promoted, promoted_reason, self.message.clone()),
            ("AnalysisPassing", analysis, analysis_reason, analysis_message),
        ];
        self.conditions = wanted
            .into_iter()
            .map(|(kind, status, reason, message)| {
                let since = previous
                    .iter()
                    .find(|c| c.kind == kind && c.status == status && !c.last_transition_time.is_empty())
                    .map_or_else(|| now.to_string(), |c| c.last_transition_time.clone());
                RolloutCondition {
                    kind: kind.into(),
                    status: status.into(),
                    reason: reason.into(),
                    message,
                    last_transition_time: since,
                    observed_generation: generation,
                }
            })
            .collect();
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(phase: Phase, verdict: Option<Verdict>) -> RolloutStatus {
        RolloutStatus {
            phase,
            message: format!("{phase} now"),
            last_check: verdict.map(|v| RolloutCheck {
                requests: 40,
                success_rate: Some(97.5),
                p99_ms: Some(25.0),
                verdict: v,
                why: if v == Verdict::Failed { "success rate 97.5% is below 99%".into() } else { String::new() },
            }),
            ..Default::default()
        }
    }

    fn condition<'a>(s: &'a RolloutStatus, kind: &str) -> &'a RolloutCondition {
        s.conditions.iter().find(|c| c.kind == kind).unwrap_or_else(|| panic!("no {kind} in {:?}", s.conditions))
    }

    #[test]
    fn conditions_follow_the_phase_and_keep_their_transition_times() {
        let t0 = "2026-12-04T10:00:00Z";
        let t1 = "2026-12-04T10:00:30Z";
        let started = status(Phase::Progressing, None).with_conditions(&[], t0, Some(1));
        let summary = |s: &RolloutStatus| -> Vec<(String, String, String)> {
            s.conditions.iter().map(|c| (c.kind.clone(), c.status.clone(), c.reason.clone())).collect()
        };
        let want = |v: &[(&str, &str, &str)]| -> Vec<(String, String, String)> {
            v.iter().map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string())).collect()
        };
        assert_eq!(
            summary(&started),
            want(&[
                ("Progressing", "True", "Progressing"),
                ("Promoted", "Unknown", "InProgress"),
                ("AnalysisPassing", "Unknown", "NotJudged")
            ])
        );
        assert!(started.conditions.iter().all(|c| c.last_transition_time == t0 && c.observed_generation == Some(1)));
        // Waiting is still progressing: that condition keeps its time; the analysis changed.
        let waiting =
            status(Phase::Waiting, Some(Verdict::TooLittleTraffic)).with_conditions(&started.conditions, t1, Some(1));
        assert_eq!(condition(&waiting, "Progressing").last_transition_time, t0);
        assert_eq!(condition(&waiting, "Progressing").reason, "Waiting");
        assert_eq!(condition(&waiting, "AnalysisPassing").reason, "TooLittleTraffic");
        assert_eq!(condition(&waiting, "AnalysisPassing").last_transition_time, t0, "still Unknown");
        // Rolled back: no longer progressing, not promoted, the failed figures said.
        let back = status(Phase::RolledBack, Some(Verdict::Failed)).with_conditions(&waiting.conditions, t1, Some(2));
        assert_eq!(
            summary(&back),
            want(&[
                ("Progressing", "False", "RolledBack"),
                ("Promoted", "False", "RolledBack"),
                ("AnalysisPassing", "False", "Failed")
            ])
        );
        let analysis = condition(&back, "AnalysisPassing");
        assert!(analysis.message.contains("below 99%") && analysis.message.contains("97.5% ok"), "{analysis:?}");
        assert!(back.conditions.iter().all(|c| c.last_transition_time == t1 && c.observed_generation == Some(2)));
        let promoted = status(Phase::Promoted, Some(Verdict::Passed)).with_conditions(&[], t1, None);
        assert_eq!(condition(&promoted, "Promoted").status, "True");
        assert_eq!(condition(&promoted, "AnalysisPassing").status, "True");
    }
}
