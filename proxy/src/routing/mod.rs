//! Routes: HTTP virtual hosts with their ordered rules, TCP services, and weighted picks
//! between clusters.

pub mod matches;

use std::collections::HashMap;
use std::sync::Arc;

use mesh_api::proxy_config::*;

use crate::matching::Matcher;
use crate::routing::matches::{CompiledMatch, CompiledOps, CompiledRewrite, re2_replacement};
use crate::upstream::cluster::ClusterState;

/// One weighted destination of a route, with its own header changes.
#[derive(Debug)]
pub struct Target {
    pub cluster: Arc<ClusterState>,
    pub weight: u32,
    pub request_headers: CompiledOps,
    pub response_headers: CompiledOps,
}

#[derive(Debug)]
pub struct CompiledRoute {
    pub name: String,
    pub matches: Vec<CompiledMatch>,
    pub clusters: Vec<Target>,
    pub total_weight: u32,
    pub redirect: Option<Redirect>,
    pub direct_response: Option<DirectResponse>,
    pub rewrite: Option<CompiledRewrite>,
    pub timeout: Option<std::time::Duration>,
    pub retries: Option<RetryPolicy>,
    pub fault: Option<Fault>,
    pub mirrors: Vec<(Arc<ClusterState>, f64)>,
    pub request_headers: CompiledOps,
    pub response_headers: CompiledOps,
    pub cors: Option<(mesh_api::proxy_config::Cors, Vec<Matcher>)>,
}

impl CompiledRoute {
    /// Pick a destination by weight.
    pub fn pick_cluster(&self) -> Option<&Target> {
        pick_by_weight(&self.clusters, self.total_weight, |t| t.weight)
    }
}

#[derive(Debug)]
pub struct CompiledVhost {
    pub name: String,
    pub routes: Vec<CompiledRoute>,
}

/// One of `items` at random by weight (`total` is the sum of the weights); with a single item,
/// that one whatever its weight.
fn pick_by_weight<T>(items: &[T], total: u32, weight: impl Fn(&T) -> u32) -> Option<&T> {
    if items.len() == 1 {
        return items.first();
    }
    if total == 0 {
        return None;
    }
    let mut x = fastrand::u32(..total);
    for item in items {
        let w = weight(item);
        if x < w {
            return Some(item);
        }
        x -= w;
    }
    None
}

/// Clusters with weights, their total computed once.
#[derive(Debug)]
pub struct Weighted {
    clusters: Vec<(Arc<ClusterState>, u32)>,
    total: u32,
}

impl Weighted {
    /// Resolve `list` against the compiled clusters; `owner` names the route for errors.
    pub fn compile(
        list: &[mesh_api::proxy_config::WeightedCluster],
        clusters: &HashMap<&str, Arc<ClusterState>>,
        owner: &str,
    ) -> Result<Weighted, String> {
        let clusters = list
            .iter()
            .map(|wc| {
                let c = clusters
                    .get(wc.cluster.as_str())
                    .ok_or_else(|| format!("{owner} references unknown cluster {}", wc.cluster))?;
                Ok((c.clone(), wc.weight))
            })
            .collect::<Result<Vec<_>, String>>()?;
        let total = clusters.iter().map(|(_, w)| *w).sum();
        Ok(Weighted { clusters, total })
    }

    pub fn pick(&self) -> Option<&Arc<ClusterState>> {
        pick_by_weight(&self.clusters, self.total, |(_, w)| *w).map(|(c, _)| c)
    }
}

/// A TCP service port: connections split between clusters by weight.
#[derive(Debug)]
pub struct CompiledTcp {
    pub name: String,
    pub route: String,
    pub clusters: Weighted,
    /// `tls` rules, tried in order before `clusters`: the SNI names each takes, and where to.
    pub sni: Vec<(Vec<String>, Weighted)>,
}

impl CompiledTcp {
    pub fn compile(
        t: &mesh_api::proxy_config::TcpService,
        clusters: &HashMap<&str, Arc<ClusterState>>,
    ) -> Result<CompiledTcp, String> {
        Ok(CompiledTcp {
            name: t.name.clone(),
            route: t.route.clone(),
            clusters: Weighted::compile(&t.clusters, clusters, &t.name)?,
            sni: t
                .sni
                .iter()
                .map(|r| {
                    Ok((
                        r.sni_hosts.clone(),
                        Weighted::compile(&r.clusters, clusters, &format!("{} {}", t.name, r.name))?,
                    ))
                })
                .collect::<Result<_, String>>()?,
        })
    }

    pub fn pick_cluster(&self) -> Option<&Arc<ClusterState>> {
        self.clusters.pick()
    }

    /// The cluster for a TLS connection by its SNI: the first `tls` rule whose hosts match,
    /// else the plain TCP route.
    pub fn pick_by_sni(&self, sni: Option<&str>) -> Option<&Arc<ClusterState>> {
        let hit = |hosts: &Vec<String>| {
            hosts.is_empty()
                || sni.is_some_and(|s| {
                    hosts.iter().any(|h| match h.strip_prefix('*') {
                        Some(suffix) => s.ends_with(suffix),
                        None => h.eq_ignore_ascii_case(s),
                    })
                })
        };
        match self.sni.iter().find(|(hosts, _)| hit(hosts)) {
            Some((_, clusters)) => clusters.pick(),
            None => self.pick_cluster(),
        }
    }
}

/// The HTTP virtual hosts (the sidecar's, then the gateway's), with the indexes requests find
/// them by.
#[derive(Debug, Default)]
pub struct Vhosts {
    pub vhosts: Vec<CompiledVhost>,
    /// Host (lowercase, no port) -> [(port, index in `vhosts`)].
    pub hosts: HashMap<String, Vec<(u16, usize)>>,
    /// Gateway HTTP servers: host -> [(server port, index)], `*` for any host.
    pub gateway_hosts: HashMap<String, Vec<(u16, usize)>>,
}

impl Vhosts {
    /// Compile every route against the compiled clusters. Errors name the virtual host and route.
    pub fn compile(routes: &Routes, clusters: &HashMap<&str, Arc<ClusterState>>) -> Result<Vhosts, String> {
        let mut hosts: HashMap<String, Vec<(u16, usize)>> = HashMap::new();
        let mut gw_hosts: HashMap<String, Vec<(u16, usize)>> = HashMap::new();
        let mut vhosts = Vec::new();
        let all_vhosts =
            routes.virtual_hosts.iter().map(|v| (v, false)).chain(routes.gateway_http.iter().map(|v| (v, true)));
        for (vi, (vh, gateway)) in all_vhosts.enumerate() {
            let mut routes = Vec::new();
            for r in &vh.routes {
                let matches = r
                    .matches
                    .iter()
                    .map(CompiledMatch::compile)
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|m| format!("{} route {:?}: {m}", vh.name, r.name))?;
                let bad = |m: String| format!("{} route {:?}: {m}", vh.name, r.name);
                let cluster = |name: &str| {
                    clusters.get(name).cloned().ok_or_else(|| bad(format!("references unknown cluster {name}")))
                };
                let mut cs = Vec::new();
                for wc in &r.clusters {
                    cs.push(Target {
                        cluster: cluster(&wc.cluster)?,
                        weight: wc.weight,
                        request_headers: CompiledOps::compile(&wc.request_headers).map_err(bad)?,
                        response_headers: CompiledOps::compile(&wc.response_headers).map_err(bad)?,
                    });
                }
                if cs.is_empty() && r.redirect.is_none() && r.direct_response.is_none() {
                    return Err(bad("has no destination".into()));
                }
                let rewrite = match &r.rewrite {
                    None => None,
                    Some(rw) => Some(CompiledRewrite {
                        uri: rw.uri.clone(),
                        authority: rw
                            .authority
                            .as_deref()
                            .map(http::HeaderValue::from_str)
                            .transpose()
                            .map_err(|_| bad("invalid rewrite authority".into()))?,
                        uri_regex: match &rw.uri_regex {
                            Some((p, with)) => Some((
                                regex::RegexBuilder::new(p)
                                    .size_limit(1 << 20)
                                    .build()
                                    .map_err(|e| bad(format!("invalid regex {p:?}: {e}")))?,
                                re2_replacement(with),
                            )),
                            None => None,
                        },
                    }),
                };
                let mirrors = r
                    .mirrors
                    .iter()
                    .map(|m| Ok((cluster(&m.cluster)?, m.percent)))
                    .collect::<Result<Vec<_>, String>>()?;
                let total_weight = cs.iter().map(|t| t.weight).sum();
                routes.push(CompiledRoute {
                    name: r.name.clone(),
                    matches,
                    clusters: cs,
                    total_weight,
                    redirect: r.redirect.clone(),
                    direct_response: r.direct_response.clone(),
                    rewrite,
                    timeout: r.timeout_ms.map(std::time::Duration::from_millis),
                    retries: r.retries.clone(),
                    fault: r.fault.clone(),
                    mirrors,
                    request_headers: CompiledOps::compile(&r.request_headers).map_err(bad)?,
                    response_headers: CompiledOps::compile(&r.response_headers).map_err(bad)?,
                    cors: match &r.cors {
                        Some(c) => Some((
                            c.clone(),
                            c.allow_origins.iter().map(Matcher::compile).collect::<Result<_, _>>().map_err(bad)?,
                        )),
                        None => None,
                    },
                });
            }
            for d in &vh.domains {
                let map = if gateway { &mut gw_hosts } else { &mut hosts };
                map.entry(d.to_ascii_lowercase()).or_default().push((vh.port, vi));
            }
            vhosts.push(CompiledVhost { name: vh.name.clone(), routes });
        }
        Ok(Vhosts { vhosts, hosts, gateway_hosts: gw_hosts })
    }
}
