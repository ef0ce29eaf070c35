//! DestinationRule traffic policy for one cluster: load balancing, consistent hashing,
//! connection-pool limits and outlier detection. Each aspect is taken from the most specific
//! place that sets it: the subset's port-level settings, the subset, the rule's port-level
//! settings, the rule (Istio merges them the same way).

use mesh_api::networking::{
    ConnectionPoolSettings, DestinationRuleSpec, LoadBalancerSettings, OutlierDetection, Subset, TrafficPolicy,
};
use mesh_api::proxy_config::{HashKey, LbPolicy, Limits, Outlier};
use mesh_api::{Object, duration};

pub(super) struct ClusterPolicy {
    pub lb: LbPolicy,
    pub hash: Option<HashKey>,
    pub limits: Option<Limits>,
    pub outlier: Option<Outlier>,
    /// `http.h2UpgradePolicy`, from the most specific layer that sets it: Some(true) for
    /// UPGRADE, Some(false) for DO_NOT_UPGRADE, None to follow the mesh's.
    pub h2_upgrade: Option<bool>,
}

/// The load balancer, connection pool and outlier settings of one layer.
type Layer<'a> = (Option<&'a LoadBalancerSettings>, Option<&'a ConnectionPoolSettings>, Option<&'a OutlierDetection>);

/// A traffic policy's port-level settings for `port`, then its own.
fn layers(tp: &TrafficPolicy, port: u16) -> [Layer<'_>; 2] {
    let pl = tp.port_level_settings.iter().find(|p| p.port.as_ref().is_some_and(|n| n.number == u32::from(port)));
    [
        (
            pl.and_then(|p| p.load_balancer.as_ref()),
            pl.and_then(|p| p.connection_pool.as_ref()),
            pl.and_then(|p| p.outlier_detection.as_ref()),
        ),
        (tp.load_balancer.as_ref(), tp.connection_pool.as_ref(), tp.outlier_detection.as_ref()),
    ]
}

fn ms(d: &Option<String>) -> Option<u64> {
    d.as_deref()
        .and_then(|d| duration::parse(d).ok())
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .filter(|m| *m > 0)
}

fn positive(v: Option<i64>) -> Option<u32> {
    v.filter(|v| *v > 0).map(|v| u32::try_from(v).unwrap_or(u32::MAX))
}

pub(super) fn resolve(dr: Option<&Object<DestinationRuleSpec>>, subset: Option<&Subset>, port: u16) -> ClusterPolicy {
    let mut all = Vec::new();
    for tp in [subset.and_then(|s| s.traffic_policy.as_ref()), dr.and_then(|d| d.spec.traffic_policy.as_ref())]
        .into_iter()
        .flatten()
    {
        all.extend(layers(tp, port));
    }
    let lb = all.iter().find_map(|(l, _, _)| *l);
    let pool = all.iter().find_map(|(_, p, _)| *p);
    let od = all.iter().find_map(|(_, _, o)| *o);

    let hash = lb.and_then(|l| l.consistent_hash.as_ref()).and_then(|c| {
        if let Some(h) = &c.http_header_name {
            Some(HashKey::Header(h.to_ascii_lowercase()))
        } else if let Some(cookie) = &c.http_cookie {
            Some(HashKey::Cookie(cookie.name.clone()))
        } else if c.use_source_ip == Some(true) {
            Some(HashKey::SourceIp)
        } else {
            c.http_query_parameter_name.clone().map(HashKey::QueryParameter)
        }
    });
    let lb_policy = match lb.and_then(|l| l.simple.as_deref()) {
        Some("RANDOM") => LbPolicy::Random,
        Some("LEAST_REQUEST") | Some("LEAST_CONN") => LbPolicy::LeastRequest,
        _ => LbPolicy::RoundRobin,
    };
    let limits = pool.and_then(|p| {
        let l = Limits {
            max_connections: positive(p.tcp.as_ref().and_then(|t| t.max_connections)),
            max_pending: positive(p.http.as_ref().and_then(|h| h.http1_max_pending_requests)),
            max_requests: positive(p.http.as_ref().and_then(|h| h.http2_max_requests)),
            max_retries: p.http.as_ref().and_then(|h| h.max_retries).and_then(|v| u32::try_from(v).ok()),
            connect_timeout_ms: p.tcp.as_ref().and_then(|t| ms(&t.connect_timeout)),
            idle_timeout_ms: p.http.as_ref().and_then(|h| ms(&h.idle_timeout)),
            tcp_idle_timeout_ms: p.tcp.as_ref().and_then(|t| ms(&t.idle_timeout)),
            no_reuse: p.http.as_ref().and_then(|h| h.max_requests_per_connection) == Some(1),
        };
        (l != Limits::default()).then_some(l)
    });
    let outlier = od.and_then(|o| {
        let c5xx = positive(o.consecutive_5xx_errors.or(o.consecutive_errors));
        let gw = positive(o.consecutive_gateway_errors);
        if c5xx.is_none() && gw.is_none() {
            return None;
        }
        let base = o
            .base_ejection_time
            .as_deref()
            .and_then(|d| duration::parse(d).ok())
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            .unwrap_or(30_000);
        Some(Outlier {
            consecutive_5xx: c5xx,
            consecutive_gateway_errors: gw,
            base_ejection_ms: base,
            max_ejection_percent: o.max_ejection_percent.and_then(|p| u32::try_from(p).ok()).unwrap_or(10).min(100),
        })
    });
    let h2_upgrade = match all
        .iter()
        .find_map(|(_, p, _)| p.and_then(|p| p.http.as_ref()).and_then(|h| h.h2_upgrade_policy.as_deref()))
    {
        Some("UPGRADE") => Some(true),
        Some("DO_NOT_UPGRADE") => Some(false),
        _ => None,
    };
    ClusterPolicy { lb: lb_policy, hash, limits, outlier, h2_upgrade }
}
