//! A Rollout's routes: while a Rollout exists, the routes it owns (see `RolloutSpec::owns`) in
//! the VirtualServices routing its host carry the traffic of the step the Rollout's status says
//! it is at: a weight split, an A/B match to the canary, or a mirror to it. Every other route
//! stays as written. A host no VirtualService routes gets one of the Rollout's own
//! (`NAME-rollout`). The stored VirtualServices are never changed: this is how they are served. The controller
//! (`crate::rollout`) moves the status; this only reads it, so the routes and the status can
//! never disagree.

use mesh_api::networking::{
    Destination, HttpMatchRequest, HttpMirrorPolicy, HttpRoute, HttpRouteDestination, Percent, StringMatch,
    VirtualServiceSpec,
};
use mesh_api::rollout::{Phase, RolloutSpec, RolloutStatus, RolloutStep};
use mesh_api::{Key, Kind, Object, Resource};

use crate::store::Resources;

/// The suffix of the VirtualService a Rollout's routes are served as.
pub const SUFFIX: &str = "rollout";

/// How traffic is split at a Rollout's current point.
#[derive(Debug, Clone, PartialEq)]
pub enum Traffic {
    /// Percent to the canary.
    Weight(u32),
    /// Requests matching go to the canary.
    Matches(mesh_api::rollout::RolloutMatch),
    /// Percent mirrored to the canary; all answered by stable.
    Mirror(u32),
}

/// Where traffic goes for a Rollout in `status` (None: not started).
pub fn traffic(spec: &RolloutSpec, status: Option<&RolloutStatus>) -> Option<Traffic> {
    let Some(s) = status else { return Some(Traffic::Weight(0)) };
    match s.phase {
        Phase::Failed => None,
        Phase::Promoted => Some(Traffic::Weight(100)),
        Phase::RolledBack | Phase::Aborted => Some(Traffic::Weight(0)),
        _ if s.step == 0 => Some(Traffic::Weight(0)),
        _ => Some(match spec.steps().get(s.step - 1) {
            Some(RolloutStep { matches: Some(m), .. }) => Traffic::Matches(m.clone()),
            Some(RolloutStep { mirror: Some(p), .. }) => Traffic::Mirror(*p),
            Some(st) => Traffic::Weight(st.weight.unwrap_or(0)),
            None => Traffic::Weight(100),
        }),
    }
}

/// Serve a Rollout in `out`: the routes it owns in the VirtualServices of `resources` that
/// route its host get the traffic of its step (every other route stays as written); with no
/// such VirtualService, a VirtualService of its own. Nothing when it cannot run (Failed).
pub fn serve(out: &mut Resources, resources: &Resources, key: &Key, o: &Object<RolloutSpec>) {
    let Some(traffic) = traffic(&o.spec, RolloutStatus::of(o).as_ref()) else { return };
    let spec = &o.spec;
    let adopted: Vec<&Key> = resources
        .iter()
        .filter_map(|(k, r)| match r {
            Resource::VirtualService(vs) if spec.adopts(&key.namespace, &k.namespace, &vs.spec) => Some(k),
            _ => None,
        })
        .collect();
    if adopted.is_empty() {
        let (k, vs) = virtual_service(key, o, &traffic);
        out.insert(k, vs);
        return;
    }
    for k in adopted {
        if let Some(Resource::VirtualService(vs)) = out.get_mut(k) {
            vs.spec.http =
                std::mem::take(&mut vs.spec.http)
                    .into_iter()
                    .flat_map(|r| {
                        if spec.owns(&key.namespace, &k.namespace, &r) { moved(spec, r, &traffic) } else { vec![r] }
                    })
                    .collect();
        }
    }
}

/// An owned route with the traffic of the step: its destinations become the split (each
/// subset keeping its destination's port and header changes); an A/B step puts a copy of it
/// first that takes the matching requests to the canary; a shadow step adds a mirror. Every
/// other field of the route (matches, timeouts, retries, faults, rewrites) stays.
fn moved(spec: &RolloutSpec, mut r: HttpRoute, traffic: &Traffic) -> Vec<HttpRoute> {
    let to = |subset: &str, weight: u32| {
        let like = r.route.iter().find(|d| d.destination.subset.as_deref() == Some(subset)).or(r.route.first());
        let mut d = like.cloned().unwrap_or_default();
        d.destination.host = like.map_or_else(|| spec.host.clone(), |l| l.destination.host.clone());
        d.destination.subset = Some(subset.to_string());
        d.weight = Some(i64::from(weight));
        d
    };
    let split = |w: u32| -> Vec<HttpRouteDestination> {
        match w {
            0 => vec![to(&spec.stable, 100)],
            100.. => vec![to(&spec.canary, 100)],
            w => vec![to(&spec.stable, 100 - w), to(&spec.canary, w)],
        }
    };
    match traffic {
        Traffic::Weight(w) => {
            r.route = split(*w);
            vec![r]
        }
        Traffic::Matches(m) => {
            let Some((name, test)) = ab_header(m) else { return vec![r] };
            let mut ab = r.clone();
            ab.name = Some(format!("{}-canary", r.name.as_deref().unwrap_or("rollout")));
            if ab.matches.is_empty() {
                ab.matches.push(HttpMatchRequest::default());
            }
            for m in &mut ab.matches {
                m.headers.insert(name.clone(), test.clone());
            }
            ab.route = split(100);
            r.route = split(0);
            vec![ab, r]
        }
        Traffic::Mirror(p) => {
            let host = r.route.first().map_or_else(|| spec.host.clone(), |d| d.destination.host.clone());
            r.route = split(0);
            r.mirrors.push(HttpMirrorPolicy {
                destination: Destination { host, subset: Some(spec.canary.clone()), port: None },
                percentage: Some(Percent { value: f64::from(*p) }),
            });
            vec![r]
        }
    }
}

/// The header test an A/B step adds to a route's matches: the header, or the `cookie` header
/// holding the cookie.
fn ab_header(m: &mesh_api::rollout::RolloutMatch) -> Option<(String, StringMatch)> {
    match (&m.header, &m.cookie) {
        (Some(h), _) => {
            Some((h.name.to_ascii_lowercase(), StringMatch { exact: Some(h.value.clone()), ..Default::default() }))
        }
        (None, Some(c)) => Some((
            "cookie".to_string(),
            StringMatch {
                regex: Some(format!(
                    "^(.*?;\\s*)?{}={}(;.*)?$",
                    super::gateway_api::regex_escape(&c.name),
                    super::gateway_api::regex_escape(&c.value)
                )),
                ..Default::default()
            },
        )),
        (None, None) => None,
    }
}

/// The VirtualService a Rollout's routes are served as when no VirtualService routes its host:
/// one route, all to stable, moved by the step.
pub fn virtual_service(key: &Key, o: &Object<RolloutSpec>, traffic: &Traffic) -> (Key, Resource) {
    let spec = &o.spec;
    let base = HttpRoute {
        name: Some("rollout".into()),
        route: vec![HttpRouteDestination {
            destination: Destination { host: spec.host.clone(), subset: Some(spec.stable.clone()), port: None },
            weight: Some(100),
            headers: None,
        }],
        ..Default::default()
    };
    let http = moved(spec, base, traffic);
    let vs_name = format!("{}-{SUFFIX}", key.name);
    let obj = Object {
        api_version: "networking.istio.io/v1".into(),
        kind: "VirtualService".into(),
        metadata: mesh_api::meta::ObjectMeta {
            name: vs_name.clone(),
            namespace: Some(key.namespace.clone()),
            ..Default::default()
        },
        spec: VirtualServiceSpec { hosts: vec![spec.host.clone()], http, ..Default::default() },
        status: None,
    };
    (Key { kind: Kind::VirtualService, namespace: key.namespace.clone(), name: vs_name }, Resource::VirtualService(obj))
}
