//! `mesh route split HOST SUBSET=WEIGHT...`: create or edit the VirtualService (and, when
//! missing, the DestinationRule) so the host's traffic is split as asked.

use std::collections::BTreeMap;
use std::time::Duration;

use mesh_api::control::ApplyResponse;
use mesh_api::networking::{
    Destination, DestinationRuleSpec, HttpRoute, HttpRouteDestination, Subset, VirtualServiceSpec,
};
use mesh_api::{Kind, Object, Resource, host};

use crate::Ctx;
use crate::cli::SplitArgs;
use crate::error::{CliError, Result};
use crate::store::ConfigStore;

/// Parse and check `SUBSET=WEIGHT` pairs: valid names, no repeats, weights adding to 100.
pub fn parse_weights(items: &[String]) -> std::result::Result<Vec<(String, u32)>, String> {
    let mut out: Vec<(String, u32)> = Vec::new();
    for item in items {
        let (s, w) = item.split_once('=').ok_or_else(|| format!("{item:?}: expected SUBSET=WEIGHT, like v1=90"))?;
        if !mesh_api::validate::is_dns_label(s) {
            return Err(format!("{item:?}: {s:?} is not a valid subset name"));
        }
        let w: u32 = w
            .parse()
            .ok()
            .filter(|w| *w <= 100)
            .ok_or_else(|| format!("{item:?}: weight must be a whole number from 0 to 100"))?;
        if out.iter().any(|(o, _)| o == s) {
            return Err(format!("subset {s} is given twice"));
        }
        out.push((s.to_string(), w));
    }
    let total: u32 = out.iter().map(|(_, w)| w).sum();
    if total != 100 {
        return Err(format!("weights add up to {total}, not 100"));
    }
    Ok(out)
}

/// The change to make, computed from what exists. Pure, so it is unit-tested.
pub struct Plan {
    pub resources: Vec<Resource>,
    pub before: String,
    pub after: String,
}

fn describe(route: &[HttpRouteDestination]) -> String {
    route
        .iter()
        .map(|d| {
            format!(
                "{}={}",
                d.destination.subset.as_deref().unwrap_or("(all)"),
                d.weight.unwrap_or(if route.len() == 1 { 100 } else { 0 })
            )
        })
        .collect::<Vec<_>>()
        .join(" ")
}

pub fn plan(
    host_arg: &str,
    namespace: &str,
    weights: &[(String, u32)],
    service_exists: bool,
    vss: &[Object<VirtualServiceSpec>],
    drs: &[Object<DestinationRuleSpec>],
) -> std::result::Result<Plan, String> {
    let fqdn = host::resolve(host_arg, namespace);
    let short = fqdn.strip_suffix(&format!(".{namespace}.{}", host::DOMAIN_SUFFIX)).unwrap_or(&fqdn).to_string();
    let targets = |o_ns: &str, h: &str| host::resolve(h, o_ns) == fqdn;
    let vs = vss.iter().find(|v| v.spec.hosts.iter().any(|h| targets(v.metadata.namespace_or_default(), h)));
    let dr = drs.iter().find(|d| targets(d.metadata.namespace_or_default(), &d.spec.host));
    if !service_exists && vs.is_none() {
        return Err(format!(
            "no Service {short} in namespace {namespace} and no VirtualService for {fqdn}; apply the Service first"
        ));
    }
    let mut out = Vec::new();
    match dr {
        Some(dr) => {
            let known: Vec<&str> = dr.spec.subsets.iter().map(|s| s.name.as_str()).collect();
            for (s, _) in weights {
                if !known.contains(&s.as_str()) {
                    return Err(format!(
                        "unknown subset {s} of {short}: DestinationRule {}/{} defines {}",
                        dr.metadata.namespace_or_default(),
                        dr.metadata.name,
                        if known.is_empty() { "no subsets".to_string() } else { known.join(", ") }
                    ));
                }
            }
        }
        None => {
            let name = short.replace('.', "-");
            let subsets = weights
                .iter()
                .map(|(s, _)| Subset {
                    name: s.clone(),
                    labels: BTreeMap::from([("version".to_string(), s.clone())]),
                    traffic_policy: None,
                })
                .collect();
            out.push(Resource::DestinationRule(Object {
                api_version: Kind::DestinationRule.default_api_version().into(),
                kind: "DestinationRule".into(),
                metadata: mesh_api::meta::ObjectMeta::named(&name, namespace),
                spec: DestinationRuleSpec { host: short.clone(), subsets, ..Default::default() },
                status: None,
            }));
        }
    }
    let new_route = |dest_host: &str, port: Option<mesh_api::networking::PortSelector>| -> Vec<HttpRouteDestination> {
        weights
            .iter()
            .map(|(s, w)| HttpRouteDestination {
                destination: Destination { host: dest_host.to_string(), subset: Some(s.clone()), port: port.clone() },
                weight: (weights.len() > 1).then_some(i64::from(*w)),
                headers: None,
            })
            .collect()
    };
    let (before, vs_obj) = match vs {
        Some(vs) => {
            let mut vs = vs.clone();
            let vs_ns = vs.metadata.namespace_or_default().to_string();
            let to_host = |r: &HttpRoute| {
                !r.route.is_empty() && r.route.iter().all(|d| host::resolve(&d.destination.host, &vs_ns) == fqdn)
            };
            let idx = vs
                .spec
                .http
                .iter()
                .rposition(|r| r.matches.is_empty() && to_host(r))
                .or_else(|| vs.spec.http.iter().rposition(to_host))
                .ok_or_else(|| format!("VirtualService {vs_ns}/{} has no HTTP route that sends all its traffic to {fqdn}; edit it by hand", vs.metadata.name))?;
            let rule = &mut vs.spec.http[idx];
            let before = describe(&rule.route);
            let dest_host = rule.route[0].destination.host.clone();
            let port = rule.route[0].destination.port.clone();
            rule.route = new_route(&dest_host, port);
            (before, vs)
        }
        None => {
            let base = short.replace('.', "-");
            let name = if vss.iter().any(|v| v.metadata.name == base) { format!("{base}-split") } else { base };
            let vs = Object {
                api_version: Kind::VirtualService.default_api_version().into(),
                kind: "VirtualService".into(),
                metadata: mesh_api::meta::ObjectMeta::named(&name, namespace),
                spec: VirtualServiceSpec {
                    hosts: vec![short.clone()],
                    http: vec![HttpRoute { route: new_route(&short, None), ..Default::default() }],
                    ..Default::default()
                },
                status: None,
            };
            ("(no VirtualService: all endpoints)".to_string(), vs)
        }
    };
    let after = describe(
        &vs_obj
            .spec
            .http
            .iter()
            .flat_map(|r| r.route.iter())
            .filter(|d| host::resolve(&d.destination.host, vs_obj.metadata.namespace_or_default()) == fqdn)
            .cloned()
            .collect::<Vec<_>>(),
    );
    out.insert(0, Resource::VirtualService(vs_obj));
    Ok(Plan { resources: out, before, after })
}

/// Compute the plan against the config as it is now.
pub async fn plan_live(store: &ConfigStore, host_arg: &str, ns: &str, weights: &[(String, u32)]) -> Result<Plan> {
    let mut skipped = Vec::new();
    let fqdn = host::resolve(host_arg, ns);
    let svc_ns = fqdn
        .strip_suffix(&format!(".{}", host::DOMAIN_SUFFIX))
        .and_then(|s| s.rsplit_once('.'))
        .map(|(n, ns)| (n.to_string(), ns.to_string()));
    let service_exists = match &svc_ns {
        Some((name, sns)) => !store.list(Kind::Service, Some(sns), Some(name), &mut skipped).await?.is_empty(),
        None => false,
    };
    let vss: Vec<_> = store
        .list(Kind::VirtualService, Some(ns), None, &mut skipped)
        .await?
        .into_iter()
        .filter_map(|r| if let Resource::VirtualService(o) = r { Some(o) } else { None })
        .collect();
    let drs: Vec<_> = store
        .list(Kind::DestinationRule, Some(ns), None, &mut skipped)
        .await?
        .into_iter()
        .filter_map(|r| if let Resource::DestinationRule(o) = r { Some(o) } else { None })
        .collect();
    plan(host_arg, ns, weights, service_exists, &vss, &drs)
        .map_err(|e| CliError::user(format!("{e}; nothing was changed")))
}

/// Apply a plan in one batch and wait (up to 5 s) for every proxy to acknowledge it (when
/// meshd's proxy status can be read: not on a cluster yet).
pub async fn apply_plan(store: &ConfigStore, plan: &Plan, ns: &str) -> Result<(ApplyResponse, usize, usize)> {
    let values = plan.resources.iter().map(Resource::to_value).collect();
    let resp = store.apply(values, ns, false).await?;
    let Some(client) = store.meshd() else { return Ok((resp, 0, 0)) };
    let statuses = crate::cmd::proxy_status::wait_synced(client, Duration::from_secs(5)).await?;
    let synced = statuses.iter().filter(|p| crate::cmd::proxy_status::all_synced(p)).count();
    Ok((resp, synced, statuses.len()))
}

pub async fn split(ctx: &Ctx, args: SplitArgs) -> Result<()> {
    let weights = parse_weights(&args.weights).map_err(|e| CliError::user(format!("{e}; nothing was changed")))?;
    let ns = ctx.global.namespace.as_str();
    let fqdn = host::resolve(&args.host, ns);
    let store = ctx.config_store().await?;
    let plan = plan_live(&store, &args.host, ns, &weights).await?;
    if args.dry_run {
        let docs: Vec<String> = plan.resources.iter().map(|r| serde_saphyr::to_string(r).unwrap_or_default()).collect();
        ctx.out.data(docs.join("---\n").trim_end());
        return Ok(());
    }
    ctx.out.confirm(&format!("Shift traffic for {fqdn}: {} -> {}?", plan.before, plan.after), args.yes)?;
    let (resp, synced, total) = apply_plan(&store, &plan, ns).await?;
    for r in resp.results {
        ctx.out.info(format!("{}/{} {}", r.key.kind.qualified(), r.key.name, r.change.as_str()));
    }
    let statuses = match store.meshd() {
        Some(client) => crate::cmd::proxy_status::fetch(client).await?,
        None => Vec::new(),
    };
    for (subset, labels) in empty_subsets(&store, &fqdn, ns, &weights).await? {
        ctx.out.warn(format!(
            "subset {subset} ({labels}) of {fqdn} has no endpoints: no running workload of the service has those labels, so its share of the traffic will fail (503 no healthy upstream)"
        ));
    }
    let lagging: Vec<String> = statuses
        .iter()
        .filter(|p| !crate::cmd::proxy_status::all_synced(p))
        .map(|p| format!("{}.{}", p.workload.name, p.workload.namespace))
        .collect();
    if !lagging.is_empty() {
        ctx.out.warn(format!("not yet acknowledged by {} (`mesh proxy-status NAME` says why)", lagging.join(", ")));
    }
    if store.meshd().is_some() {
        ctx.out.success(format!("{fqdn}: {} -> {} ({synced}/{total} proxies synced)", plan.before, plan.after));
    } else {
        ctx.out.success(format!(
            "{fqdn}: {} -> {} (stored on the cluster; meshd pushes it to the proxies)",
            plan.before, plan.after
        ));
    }
    Ok(())
}

/// The subsets given weight that no running workload of the service serves, with their
/// labels (`version=v3`).
async fn empty_subsets(
    store: &ConfigStore,
    fqdn: &str,
    ns: &str,
    weights: &[(String, u32)],
) -> Result<Vec<(String, String)>> {
    let mut skipped = Vec::new();
    let Some((svc_name, svc_ns)) =
        fqdn.strip_suffix(&format!(".{}", host::DOMAIN_SUFFIX)).and_then(|s| s.rsplit_once('.'))
    else {
        return Ok(Vec::new());
    };
    let selector = match store.list(Kind::Service, Some(svc_ns), Some(svc_name), &mut skipped).await?.first() {
        Some(Resource::Service(s)) if !s.spec.selector.is_empty() => s.spec.selector.clone(),
        _ => return Ok(Vec::new()), // no selector: endpoints are not ours to judge
    };
    let rule =
        store.list(Kind::DestinationRule, Some(ns), None, &mut skipped).await?.into_iter().find_map(|r| match r {
            Resource::DestinationRule(dr) if host::resolve(&dr.spec.host, ns) == fqdn => Some(dr),
            _ => None,
        });
    let Some(rule) = rule else { return Ok(Vec::new()) };
    let running = store.workload_labels(svc_ns).await?;
    let serving = |labels: &BTreeMap<String, String>| {
        running.iter().any(|w| crate::analyze::selects(&selector, w) && crate::analyze::selects(labels, w))
    };
    Ok(weights
        .iter()
        .filter(|(_, w)| *w > 0)
        .filter_map(|(name, _)| rule.spec.subsets.iter().find(|s| &s.name == name))
        .filter(|s| !serving(&s.labels))
        .map(|s| {
            let labels: Vec<String> = s.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
            (s.name.clone(), labels.join(","))
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vs(yaml: &str) -> Object<VirtualServiceSpec> {
        let v = mesh_api::resource::parse_yaml_stream(yaml).expect("yaml").remove(0);
        match mesh_api::resource::parse_document(v, "default", 0) {
            Ok(mesh_api::Parsed::Supported(Resource::VirtualService(o))) => o,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn weights_must_add_to_100() {
        assert!(parse_weights(&["v1=20".into(), "v3=80".into()]).is_ok());
        assert!(parse_weights(&["v1=20".into(), "v3=70".into()]).unwrap_err().contains("90, not 100"));
        assert!(parse_weights(&["v1=-1".into(), "v3=101".into()]).is_err());
        assert!(parse_weights(&["v1=50".into(), "v1=50".into()]).is_err());
        assert!(parse_weights(&["V1=100".into()]).is_err());
    }

    #[test]
    fn edits_only_the_catch_all_route() {
        let existing = vs(
            "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: reviews}\nspec:\n  hosts: [reviews]\n  http:\n  - match: [{headers: {end-user: {exact: jason}}}]\n    route: [{destination: {host: reviews, subset: v2}}]\n  - route:\n    - {destination: {host: reviews, subset: v1}, weight: 90}\n    - {destination: {host: reviews, subset: v2}, weight: 10}\n",
        );
        let p =
            plan("reviews", "default", &[("v1".into(), 20), ("v2".into(), 80)], true, &[existing], &[]).expect("plan");
        let Resource::VirtualService(o) = &p.resources[0] else { panic!() };
        assert_eq!(o.spec.http[0].route[0].destination.subset.as_deref(), Some("v2"));
        assert_eq!(o.spec.http[1].route.iter().map(|d| d.weight).collect::<Vec<_>>(), [Some(20), Some(80)]);
        assert_eq!(p.before, "v1=90 v2=10");
        assert_eq!(p.resources.len(), 2, "a DestinationRule is created when none exists");
    }

    #[test]
    fn unknown_subset_is_refused() {
        let dr = mesh_api::resource::parse_yaml_stream("apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: reviews}\nspec:\n  host: reviews\n  subsets: [{name: v1, labels: {version: v1}}]\n").expect("yaml").remove(0);
        let Ok(mesh_api::Parsed::Supported(Resource::DestinationRule(dr))) =
            mesh_api::resource::parse_document(dr, "default", 0)
        else {
            panic!()
        };
        let err =
            plan("reviews", "default", &[("v1".into(), 50), ("v9".into(), 50)], true, &[], &[dr]).err().expect("error");
        assert!(err.contains("unknown subset v9"), "{err}");
    }

    #[test]
    fn unknown_service_is_refused() {
        assert!(plan("nope", "default", &[("v1".into(), 100)], false, &[], &[]).is_err());
    }
}
