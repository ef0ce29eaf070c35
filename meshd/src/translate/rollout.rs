//! A Rollout's routes: while a Rollout exists meshd owns its host's routes and serves them as a
//! VirtualService of its own (`NAME-rollout`), with the traffic of the step the Rollout's status
//! says it is at: a weight split, an A/B match to the canary, or a mirror to it. The controller
//! (`crate::rollout`) moves the status; this only reads it, so the routes and the status can
//! never disagree.

use mesh_api::networking::{
    Destination, HttpMatchRequest, HttpMirrorPolicy, HttpRoute, HttpRouteDestination, Percent, StringMatch,
    VirtualServiceSpec,
};
use mesh_api::rollout::{RolloutSpec, RolloutStatus, RolloutStep};
use mesh_api::{Key, Kind, Object, Resource};

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
    match s.phase.as_str() {
        "Failed" => None,
        "Promoted" => Some(Traffic::Weight(100)),
        "RolledBack" | "Aborted" => Some(Traffic::Weight(0)),
        _ if s.step == 0 => Some(Traffic::Weight(0)),
        _ => Some(match spec.steps().get(s.step - 1) {
            Some(RolloutStep { matches: Some(m), .. }) => Traffic::Matches(m.clone()),
            Some(RolloutStep { mirror: Some(p), .. }) => Traffic::Mirror(*p),
            Some(st) => Traffic::Weight(st.weight.unwrap_or(0)),
            None => Traffic::Weight(100),
        }),
    }
}

/// The VirtualService a Rollout's routes are served as; None when it cannot run (Failed).
pub fn virtual_service(key: &Key, o: &Object<RolloutSpec>) -> Option<(Key, Resource)> {
    let spec = &o.spec;
    let to = |subset: &str, weight: u32| HttpRouteDestination {
        destination: Destination { host: spec.host.clone(), subset: Some(subset.to_string()), port: None },
        weight: Some(i64::from(weight)),
        headers: None,
    };
    let split = |w: u32| -> Vec<HttpRouteDestination> {
        match w {
            0 => vec![to(&spec.stable, 100)],
            100.. => vec![to(&spec.canary, 100)],
            w => vec![to(&spec.stable, 100 - w), to(&spec.canary, w)],
        }
    };
    let name = |n: &str| Some(format!("rollout-{n}"));
    let http = match traffic(spec, RolloutStatus::of(o).as_ref())? {
        Traffic::Weight(w) => vec![HttpRoute { name: name("split"), route: split(w), ..Default::default() }],
        Traffic::Matches(m) => {
            let header = match (&m.header, &m.cookie) {
                (Some(h), _) => {
                    (h.name.to_ascii_lowercase(), StringMatch { exact: Some(h.value.clone()), ..Default::default() })
                }
                (None, Some(c)) => (
                    "cookie".to_string(),
                    StringMatch {
                        regex: Some(format!(
                            "^(.*?;\\s*)?{}={}(;.*)?$",
                            super::gateway_api::regex_escape(&c.name),
                            super::gateway_api::regex_escape(&c.value)
                        )),
                        ..Default::default()
                    },
                ),
                (None, None) => return None,
            };
            vec![
                HttpRoute {
                    name: name("ab-canary"),
                    matches: vec![HttpMatchRequest { headers: [header].into(), ..Default::default() }],
                    route: split(100),
                    ..Default::default()
                },
                HttpRoute { name: name("ab-stable"), route: split(0), ..Default::default() },
            ]
        }
        Traffic::Mirror(p) => vec![HttpRoute {
            name: name("shadow"),
            route: split(0),
            mirrors: vec![HttpMirrorPolicy {
                destination: Destination { host: spec.host.clone(), subset: Some(spec.canary.clone()), port: None },
                percentage: Some(Percent { value: f64::from(p) }),
            }],
            ..Default::default()
        }],
    };
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
    Some((
        Key { kind: Kind::VirtualService, namespace: key.namespace.clone(), name: vs_name },
        Resource::VirtualService(obj),
    ))
}
