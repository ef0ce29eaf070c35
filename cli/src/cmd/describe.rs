//! `mesh x describe pod|service NAME`: what applies to a workload or a service, as `istioctl x
//! describe` shows it: the Services and ports with their mTLS mode, the DestinationRule and the
//! subsets a pod matches, the VirtualService routes with their weights, and the authorization,
//! JWT and rate-limit policies. A pod's facts come from what meshd would send its proxy now
//! (meshd's own translation); a service's routes from translating the config for a client in
//! the service's namespace. Works on both platforms (config through `store`, meshd and the
//! proxies through `reach`).

use std::collections::BTreeMap;

use mesh_api::protocol::{ProxyStatus, Workload};
use mesh_api::proxy_config::{ProxyConfig, Route, VirtualHost};
use mesh_api::{Key, Parsed, Resource, host};

use crate::Ctx;
use crate::analyze::selects;
use crate::cli::DescribeArgs;
use crate::error::{CliError, Result};

/// `NAME`, `NAME.NAMESPACE` or `NAMESPACE/NAME` -> (namespace, name).
fn split_name(arg: &str, default_ns: &str) -> (String, String) {
    match (arg.split_once('/'), arg.split_once('.')) {
        (Some((ns, n)), _) => (ns.to_string(), n.to_string()),
        (None, Some((n, ns))) => (ns.to_string(), n.to_string()),
        (None, None) => (default_ns.to_string(), arg.to_string()),
    }
}

/// An enum as Istio's YAML spells it (`STRICT`, `ALLOW`).
fn upper(v: impl std::fmt::Debug) -> String {
    format!("{v:?}").to_ascii_uppercase()
}

fn labels_text(m: &BTreeMap<String, String>) -> String {
    if m.is_empty() {
        "<none>".into()
    } else {
        m.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(", ")
    }
}

/// `outbound|9080|v1|reviews.default.svc.cluster.local` -> `v1`.
fn subset_of(cluster: &str) -> Option<&str> {
    cluster.split('|').nth(2).filter(|s| !s.is_empty())
}

/// One line per route of a virtual host: its VirtualService rule and where it sends traffic.
fn route_lines(vh: &VirtualHost, pod_labels: Option<&BTreeMap<String, String>>, subsets: &Subsets) -> Vec<String> {
    vh.routes
        .iter()
        .map(|r: &Route| {
            let to: Vec<String> = r
                .clusters
                .iter()
                .map(|c| {
                    let target = match subset_of(&c.cluster) {
                        Some(s) => {
                            let mine = pod_labels.zip(subsets.get(s)).is_some_and(|(labels, sel)| selects(sel, labels));
                            format!("subset {s}{}", if mine { " (this pod)" } else { "" })
                        }
                        None => c.cluster.rsplit('|').next().unwrap_or(&c.cluster).to_string(),
                    };
                    if r.clusters.len() > 1 { format!("{}% to {target}", c.weight) } else { target }
                })
                .collect();
            let what = if r.redirect.is_some() {
                "a redirect".to_string()
            } else if r.direct_response.is_some() {
                "a direct response".to_string()
            } else {
                to.join(", ")
            };
            let when = if r.matches.is_empty() {
                String::new()
            } else {
                format!(" when it matches ({} match)", r.matches.len())
            };
            format!("route {:?}{when}: {what}", r.name)
        })
        .collect()
}

/// The DestinationRule's subsets: name -> labels.
type Subsets = BTreeMap<String, BTreeMap<String, String>>;

struct World {
    resources: meshd::store::Resources,
}

impl World {
    async fn load(ctx: &Ctx) -> Result<World> {
        let (values, _) = ctx.config_store().await?.snapshot().await?;
        let mut resources = meshd::store::Resources::new();
        for (i, v) in values.into_iter().enumerate() {
            if let Ok(Parsed::Supported(r)) = mesh_api::resource::parse_document(v, "default", i) {
                resources.insert(r.key(), r);
            }
        }
        Ok(World { resources })
    }

    /// The DestinationRule clients in `client_ns` get for `fqdn`, and its subsets.
    fn destination_rule(&self, fqdn: &str, client_ns: &str) -> Option<(Key, Subsets)> {
        let key = meshd::translate::destination_rule_for(&self.resources, fqdn, client_ns)?;
        let Some(Resource::DestinationRule(dr)) = self.resources.get(&key) else { return None };
        let subsets = dr.spec.subsets.iter().map(|s| (s.name.clone(), s.labels.clone())).collect();
        Some((key, subsets))
    }

    fn service_selector(&self, fqdn: &str) -> Option<BTreeMap<String, String>> {
        self.resources.values().find_map(|r| match r {
            Resource::Service(s) if host::service_fqdn(&s.metadata.name, r.namespace()) == fqdn => {
                Some(s.spec.selector.clone())
            }
            _ => None,
        })
    }
}

/// The DestinationRule and VirtualService lines of one service, for clients in `client_ns`.
fn service_lines(
    ctx: &Ctx,
    world: &World,
    fqdn: &str,
    client_ns: &str,
    routes: &[VirtualHost],
    pod_labels: Option<&BTreeMap<String, String>>,
) {
    let subsets = match world.destination_rule(fqdn, client_ns) {
        Some((key, subsets)) => {
            ctx.out.data(format!("DestinationRule: {}/{} for {fqdn:?}", key.namespace, key.name));
            if let Some(labels) = pod_labels {
                let (mine, other): (Vec<_>, Vec<_>) = subsets.iter().partition(|(_, sel)| selects(sel, labels));
                let names = |v: &[(&String, &BTreeMap<String, String>)]| {
                    v.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>().join(", ")
                };
                ctx.out.data(format!(
                    "   Matching subsets: {}",
                    if mine.is_empty() { "none".into() } else { names(&mine) }
                ));
                if !other.is_empty() {
                    ctx.out.data(format!("      (Non-matching subsets {})", names(&other)));
                }
            } else {
                for (name, sel) in &subsets {
                    ctx.out.data(format!("   Subset {name}: {}", labels_text(sel)));
                }
            }
            subsets
        }
        None => {
            ctx.out.data("DestinationRule: none");
            Subsets::new()
        }
    };
    for vh in routes.iter().filter(|vh| vh.name.rsplit_once(':').is_some_and(|(h, _)| h == fqdn)) {
        let rule = vh.routes.iter().find(|r| r.name != "default").map(|r| r.name.split(' ').next().unwrap_or(""));
        match rule {
            Some(vs) => ctx.out.data(format!("VirtualService: {vs} (port {})", vh.port)),
            None => {
                ctx.out.data(format!("VirtualService: none (port {}: all requests to the service's pods)", vh.port))
            }
        }
        for line in route_lines(vh, pod_labels, &subsets) {
            ctx.out.data(format!("   {line}"));
        }
    }
}

fn find_proxy<'a>(statuses: &'a [ProxyStatus], ns: &str, name: &str) -> Option<&'a ProxyStatus> {
    statuses.iter().find(|p| p.workload.namespace == ns && p.workload.name == name)
}

pub async fn run(ctx: &Ctx, args: DescribeArgs) -> Result<()> {
    let (ns, name) = split_name(&args.name, &ctx.global.namespace);
    let world = World::load(ctx).await?;
    let reach = ctx.reach().await?;
    let statuses = reach.proxies().await?;
    match args.kind.as_str() {
        "pod" | "po" => {
            let p = find_proxy(&statuses, &ns, &name).ok_or_else(|| {
                CliError::failed(format!(
                    "no proxy {name}.{ns} is connected (a pod without a proxy is outside the mesh); `mesh proxy-status` lists them"
                ))
            })?;
            describe_pod(ctx, &world, &reach, p).await
        }
        _ => describe_service(ctx, &world, &reach, &statuses, &ns, &name).await,
    }
}

async fn describe_pod(ctx: &Ctx, world: &World, reach: &crate::reach::Reach, p: &ProxyStatus) -> Result<()> {
    let w = &p.workload;
    let cfg: ProxyConfig = serde_json::from_value(reach.proxy_config(&format!("{}/{}", w.namespace, w.name)).await?)
        .map_err(|e| CliError::unavailable(format!("unexpected proxy config from meshd: {e}")))?;
    ctx.out.data(format!("Pod: {}.{}", w.name, w.namespace));
    ctx.out.data(format!("   Labels: {}", labels_text(&w.labels)));
    let identity = p.identity.cert.as_ref().and_then(|c| c.uris.first().cloned());
    ctx.out.data(format!(
        "   Identity: {}",
        identity.unwrap_or_else(|| format!("service account {} (no certificate yet)", w.service_account))
    ));
    let synced = crate::cmd::proxy_status::all_synced(p);
    ctx.out.data(format!(
        "   Proxy: {} ({})",
        if synced { "SYNCED" } else { "NOT SYNCED" },
        if synced { "it holds what meshd would send now" } else { "`mesh proxy-status NAME` says why" }
    ));
    // The Services this pod serves, by the ports they send to.
    let mut services: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for l in &cfg.listeners.inbound {
        for s in &l.services {
            services.entry(s.as_str()).or_default().push(format!(
                "Port {} ({}): mTLS {}",
                l.port,
                if l.tcp { "TCP" } else { "HTTP" },
                upper(l.mtls)
            ));
        }
    }
    if services.is_empty() {
        ctx.out.data("   No Service selects this pod.");
    }
    for (fqdn, ports) in &services {
        ctx.out.data("--------------------");
        ctx.out.data(format!("Service: {fqdn}"));
        for line in ports {
            ctx.out.data(format!("   {line}"));
        }
        service_lines(ctx, world, fqdn, &w.namespace, &cfg.routes.virtual_hosts, Some(&w.labels));
    }
    policy_lines(ctx, &cfg);
    Ok(())
}

fn policy_lines(ctx: &Ctx, cfg: &ProxyConfig) {
    ctx.out.data("--------------------");
    if cfg.listeners.policies.is_empty() {
        ctx.out.data("AuthorizationPolicies: none (every request from the mesh is allowed)");
    }
    for pol in &cfg.listeners.policies {
        let rules = if pol.rules.is_empty() {
            "no rules: matches no request".to_string()
        } else {
            format!("{} rules", pol.rules.len())
        };
        ctx.out.data(format!("AuthorizationPolicy: {} ({}, {rules})", pol.name, upper(pol.action)));
    }
    for jwt in &cfg.listeners.jwt {
        ctx.out.data(format!("RequestAuthentication: {} (issuer {})", jwt.policy, jwt.issuer));
    }
    if let Some(rl) = &cfg.listeners.rate_limit {
        ctx.out.data(format!("LocalRateLimit: {}", rl.policy));
    }
}

async fn describe_service(
    ctx: &Ctx,
    world: &World,
    reach: &crate::reach::Reach,
    statuses: &[ProxyStatus],
    ns: &str,
    name: &str,
) -> Result<()> {
    let fqdn = host::service_fqdn(name, ns);
    let Some(selector) = world.service_selector(&fqdn) else {
        return Err(CliError::failed(format!(
            "service {name:?} not found in namespace {ns}; `mesh get svc -n {ns}` lists them"
        )));
    };
    ctx.out.data(format!("Service: {fqdn}"));
    ctx.out.data(format!("   Selector: {}", labels_text(&selector)));
    // The routes as a client in the service's namespace gets them.
    let client = Workload::named(ns, "mesh-describe", "default");
    let workloads: Vec<Workload> = statuses.iter().map(|p| p.workload.clone()).collect();
    let cfg = meshd::translate::translate_with(&world.resources, &workloads, &client, &Default::default());
    service_lines(ctx, world, &fqdn, ns, &cfg.routes.virtual_hosts, None);
    ctx.out.data("--------------------");
    let backing: Vec<&ProxyStatus> = statuses
        .iter()
        .filter(|p| p.workload.namespace == ns && !selector.is_empty() && selects(&selector, &p.workload.labels))
        .collect();
    if backing.is_empty() {
        ctx.out.data("Pods: none with a connected proxy (requests to the service get 503 no healthy upstream)");
    }
    for p in backing {
        let w = &p.workload;
        let cfg: ProxyConfig =
            serde_json::from_value(reach.proxy_config(&format!("{}/{}", w.namespace, w.name)).await?)
                .map_err(|e| CliError::unavailable(format!("unexpected proxy config from meshd: {e}")))?;
        let modes: Vec<String> = cfg
            .listeners
            .inbound
            .iter()
            .filter(|l| l.services.contains(&fqdn))
            .map(|l| format!("port {} mTLS {}", l.port, upper(l.mtls)))
            .collect();
        ctx.out.data(format!("Pod: {}.{} ({}): {}", w.name, w.namespace, labels_text(&w.labels), modes.join(", ")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_subsets() {
        assert_eq!(split_name("reviews-v1", "default"), ("default".into(), "reviews-v1".into()));
        assert_eq!(split_name("reviews-v1.prod", "default"), ("prod".into(), "reviews-v1".into()));
        assert_eq!(split_name("prod/reviews-v1", "default"), ("prod".into(), "reviews-v1".into()));
        assert_eq!(subset_of("outbound|9080|v1|reviews.default.svc.cluster.local"), Some("v1"));
        assert_eq!(subset_of("outbound|9080||reviews.default.svc.cluster.local"), None);
    }
}
