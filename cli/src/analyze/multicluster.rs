//! Multi-cluster analyzers: MeshNetworks naming registries that do not exist, and a Service
//! defined differently in different clusters.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::messages::*;
use super::{Analyzer, Input, Message, Res};

/// MeshNetworks given to the analysis (Istio's `meshNetworks`), as a resource the messages can
/// name: `MeshNetworks istio-system/meshnetworks`.
pub fn mesh_networks_resource(spec: Value) -> Option<Res> {
    Res::from_value(serde_json::json!({
        "apiVersion": "v1",
        "kind": "MeshNetworks",
        "metadata": {"name": "meshnetworks", "namespace": "istio-system"},
        "spec": spec,
    }))
}

/// `meshnetworks.MeshNetworksAnalyzer`: each `fromRegistry` must name a registry Istio has: its
/// built-in ones or a remote cluster from a multi-cluster secret.
pub struct MeshNetworksAnalyzer;

impl Analyzer for MeshNetworksAnalyzer {
    fn name(&self) -> &'static str {
        "meshnetworks.MeshNetworksAnalyzer"
    }

    fn description(&self) -> &'static str {
        "Check the validity of MeshNetworks in the cluster"
    }

    fn analyze(&self, input: &Input, out: &mut Vec<Message>) {
        let mut registries: Vec<String> = ["Mock", "Kubernetes", "External"].map(String::from).to_vec();
        for s in input.of_kind("", "Secret").filter(|s| s.label("istio/multiCluster") == Some("true")) {
            for key in ["data", "stringData"] {
                registries
                    .extend(s.value.get(key).and_then(Value::as_object).into_iter().flatten().map(|(k, _)| k.clone()));
            }
        }
        for mn in input.of_kind("", "MeshNetworks") {
            for (network, n) in mn.spec().get("networks").and_then(Value::as_object).into_iter().flatten() {
                for e in n.get("endpoints").and_then(Value::as_array).into_iter().flatten() {
                    let Some(registry) = e.get("fromRegistry").and_then(Value::as_str) else { continue };
                    if !registries.iter().any(|r| r == registry) {
                        out.push(Message::new(
                            &UNKNOWN_MESH_NETWORKS_REGISTRY,
                            mn,
                            format!("Unknown service registry {registry} in network {network}"),
                        ));
                    }
                }
            }
        }
    }
}

/// `services.MultiClusterServiceAnalyzer`: a Service present in several clusters must agree on
/// headless or not, type and ports, or requests behave differently depending on which cluster
/// answers. Only resources read with a cluster name take part.
pub struct ServiceAnalyzer;

fn ports_by_name(spec: &Value) -> Vec<Value> {
    let mut ports: Vec<Value> = spec.get("ports").and_then(Value::as_array).cloned().unwrap_or_default();
    ports.sort_by(|a, b| {
        a.get("name").and_then(Value::as_str).unwrap_or("").cmp(b.get("name").and_then(Value::as_str).unwrap_or(""))
    });
    ports
}

impl Analyzer for ServiceAnalyzer {
    fn name(&self) -> &'static str {
        "services.MultiClusterServiceAnalyzer"
    }

    fn description(&self) -> &'static str {
        "Check the validity of services in the multi-cluster environment"
    }

    fn analyze(&self, input: &Input, out: &mut Vec<Message>) {
        let mut services: BTreeMap<(&str, &str), BTreeMap<&str, &Res>> = BTreeMap::new();
        for s in input.of_kind("", "Service") {
            if let Some(c) = &s.cluster {
                services.entry((s.ns(), s.name.as_str())).or_default().insert(c.as_str(), s);
            }
        }
        for ((ns, name), by_cluster) in services.iter().filter(|(_, v)| v.len() > 1) {
            let Some((first_cluster, first)) = by_cluster.iter().next() else { continue };
            let headless = |r: &Res| r.spec().get("clusterIP").and_then(Value::as_str) == Some("None");
            let kind = |r: &Res| r.spec().get("type").and_then(Value::as_str).unwrap_or("").to_string();
            let mut clusters = BTreeSet::new();
            let mut reasons = BTreeSet::new();
            for (cluster, r) in by_cluster {
                if headless(first) != headless(r) {
                    clusters.extend(by_cluster.keys().copied());
                    reasons.insert("service has mixed mode like headless and clusterIP");
                }
                if kind(first) != kind(r) {
                    clusters.insert(*cluster);
                    reasons.insert("service type is inconsistent");
                }
                if ports_by_name(first.spec()) != ports_by_name(r.spec()) {
                    clusters.insert(*cluster);
                    reasons.insert("service ports are inconsistent");
                }
            }
            if clusters.is_empty() {
                continue;
            }
            clusters.insert(*first_cluster);
            let clusters: Vec<&str> = clusters.into_iter().collect();
            let reasons: Vec<&str> = reasons.into_iter().collect();
            out.push(Message::new(
                &MULTI_CLUSTER_INCONSISTENT_SERVICE,
                first,
                format!(
                    "The service {name} in namespace {ns:?} is inconsistent across clusters {clusters:?}, which can lead to undefined behaviors. The inconsistent behaviors are: {}.",
                    reasons.join("; ")
                ),
            ));
        }
    }
}
