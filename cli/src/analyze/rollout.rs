//! mesh's own analyzer for its `Rollout` kind: what would keep a Rollout from running, found
//! before it is applied, by the rules meshd's controller applies (`RolloutSpec::adopts` and
//! `RolloutSpec::owns`).

use std::collections::{BTreeMap, BTreeSet};

use mesh_api::networking::VirtualServiceSpec;
use mesh_api::rollout::RolloutSpec;
use serde_json::Value;

use super::messages::{REFERENCED_RESOURCE_NOT_FOUND, ROLLOUT_HOST_TAKEN, ROLLOUT_NO_ROUTE_TO_MOVE};
use super::{Analyzer, Input, Message};

/// `rollout.RolloutAnalyzer`: a Rollout's subsets are a DestinationRule's, no other Rollout
/// moves its host, and the VirtualServices routing its host leave it a route to move.
pub struct RolloutAnalyzer;

impl Analyzer for RolloutAnalyzer {
    fn name(&self) -> &'static str {
        "rollout.RolloutAnalyzer"
    }

    fn description(&self) -> &'static str {
        "Checks that each Rollout's subsets exist and that its host's routes leave it one to move"
    }

    fn analyze(&self, input: &Input, out: &mut Vec<Message>) {
        let mut subsets: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for dr in input.of_kind("networking.istio.io", "DestinationRule") {
            let host = dr.spec().get("host").and_then(Value::as_str).unwrap_or("");
            let names = dr.spec().get("subsets").and_then(Value::as_array).into_iter().flatten();
            subsets
                .entry(mesh_api::host::resolve(host, dr.ns()))
                .or_default()
                .extend(names.filter_map(|s| s.get("name").and_then(Value::as_str)).map(str::to_string));
        }
        let routes: Vec<(&str, String, VirtualServiceSpec)> = input
            .of_kind("networking.istio.io", "VirtualService")
            .filter_map(|vs| Some((vs.ns(), vs.name.clone(), serde_json::from_value(vs.spec().clone()).ok()?)))
            .collect();
        let mut hosts: BTreeMap<String, String> = BTreeMap::new();
        // In meshd's order (namespace, name): of two Rollouts of one host, the first runs.
        let mut rollouts: Vec<&super::Res> = input.of_kind(mesh_api::rollout::GROUP, "Rollout").collect();
        rollouts.sort_by(|a, b| (a.ns(), &a.name).cmp(&(b.ns(), &b.name)));
        for r in rollouts {
            // A spec that does not parse is the schema analyzer's to report.
            let Ok(spec) = serde_json::from_value::<RolloutSpec>(r.spec().clone()) else { continue };
            let ns = r.ns();
            let fqdn = mesh_api::host::resolve(&spec.host, ns);
            if let Some(first) = hosts.get(&fqdn) {
                out.push(Message::new(
                    &ROLLOUT_HOST_TAKEN,
                    r,
                    format!("Rollout {first} already moves {fqdn}: this one would not run"),
                ));
                continue;
            }
            hosts.insert(fqdn.clone(), format!("{ns}/{}", r.name));
            for subset in [&spec.stable, &spec.canary] {
                if !subsets.get(&fqdn).is_some_and(|s| s.contains(subset)) {
                    out.push(Message::new(
                        &REFERENCED_RESOURCE_NOT_FOUND,
                        r,
                        format!("Referenced host+subset in destinationrule not found: \"{}+{subset}\"", spec.host),
                    ));
                }
            }
            let virtual_services = routes.iter().map(|(vs_ns, name, vs)| (*vs_ns, name.as_str(), vs));
            if let Err(why) = spec.route_moves(ns, virtual_services) {
                out.push(Message::new(&ROLLOUT_NO_ROUTE_TO_MOVE, r, why));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn analyze(yaml: &str) -> Vec<(String, String, String)> {
        let docs = mesh_api::resource::parse_yaml_stream(yaml).expect("yaml");
        let input = Input { resources: super::super::resources_of(docs), mesh_config: Value::Null };
        let mut out = Vec::new();
        RolloutAnalyzer.analyze(&input, &mut out);
        out.into_iter().map(|m| (m.code.to_string(), m.resource_name, m.message)).collect()
    }

    const DR: &str = "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: reviews, namespace: default}\nspec:\n  host: reviews\n  subsets: [{name: v1, labels: {version: v1}}, {name: v2, labels: {version: v2}}]\n";

    fn rollout(name: &str, canary: &str) -> String {
        format!(
            "---\napiVersion: rollouts.mesh.io/v1alpha1\nkind: Rollout\nmetadata: {{name: {name}, namespace: default}}\nspec: {{host: reviews, stable: v1, canary: {canary}}}\n"
        )
    }

    #[test]
    fn a_runnable_rollout_has_no_findings() {
        let vs = "---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: reviews, namespace: default}\nspec:\n  hosts: [reviews]\n  http: [{route: [{destination: {host: reviews, subset: v1}}]}]\n";
        assert_eq!(analyze(&format!("{DR}{}{vs}", rollout("reviews", "v2"))), []);
        assert_eq!(analyze(&format!("{DR}{}", rollout("reviews", "v2"))), [], "no VirtualService: one of its own");
    }

    #[test]
    fn what_would_keep_a_rollout_from_running_is_found() {
        // A subset no DestinationRule defines.
        let found = analyze(&format!("{DR}{}", rollout("reviews", "v3")));
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].0, "IST0101");
        assert!(found[0].2.contains("\"reviews+v3\""), "{}", found[0].2);
        // A VirtualService whose only route goes elsewhere: nothing to move.
        let elsewhere = "---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: reviews, namespace: default}\nspec:\n  hosts: [reviews]\n  http: [{route: [{destination: {host: ratings}}]}]\n";
        let found = analyze(&format!("{DR}{}{elsewhere}", rollout("reviews", "v2")));
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].0, ROLLOUT_NO_ROUTE_TO_MOVE.code);
        assert!(
            found[0].2.contains("VirtualService default/reviews routes reviews.default.svc.cluster.local"),
            "{}",
            found[0].2
        );
        // Two Rollouts of one host: the second by name would not run, as meshd decides.
        let found = analyze(&format!("{DR}{}{}", rollout("reviews-again", "v2"), rollout("reviews", "v2")));
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!((found[0].0.as_str(), found[0].1.as_str()), (ROLLOUT_HOST_TAKEN.code, "reviews-again"));
    }
}
