//! `mesh analyze`: load resources (files, the running mesh, or both), run the analyzers, print
//! istioctl-style results, exit 1 when something at the failure threshold is found.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::Ctx;
use crate::analyze::{self, Message, Res};
use crate::cli::{AnalyzeArgs, AnalyzeOutput};
use crate::error::{CliError, Result};

/// Kinds without a namespace.
const CLUSTER_SCOPED: &[&str] = &[
    "Namespace",
    "Node",
    "ClusterRole",
    "ClusterRoleBinding",
    "CustomResourceDefinition",
    "MutatingWebhookConfiguration",
    "ValidatingWebhookConfiguration",
    "GatewayClass",
];

/// `*` matches any run of characters.
fn glob(pattern: &str, s: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == s,
        Some((head, rest)) => {
            let Some(s) = s.strip_prefix(head) else { return false };
            (0..=s.len()).filter(|i| s.is_char_boundary(*i)).any(|i| glob(rest, &s[i..]))
        }
    }
}

fn suppressed(rules: &[(String, String)], m: &Message) -> bool {
    rules.iter().any(|(code, res)| glob(code, m.code) && glob(res, &m.text_resource()))
}

/// Live resources, then documents over them (same kind, namespace and name: the document wins);
/// documents without a namespace get `ns`. Istio's implicit ingress resources are added.
pub fn layered(live: Vec<Value>, docs: Vec<Value>, ns: &str) -> Vec<Res> {
    let mut by_key: BTreeMap<(String, String, String), Res> = BTreeMap::new();
    for r in analyze::resources_of(live) {
        by_key.insert((r.kind.clone(), r.ns().to_string(), r.name.clone()), r);
    }
    for mut r in analyze::resources_of(docs) {
        if r.namespace.is_none() && !CLUSTER_SCOPED.contains(&r.kind.as_str()) {
            r.namespace = Some(ns.to_string());
            if let Some(meta) = r.value.get_mut("metadata").and_then(Value::as_object_mut) {
                meta.insert("namespace".into(), Value::String(ns.to_string()));
            }
        }
        by_key.insert((r.kind.clone(), r.ns().to_string(), r.name.clone()), r);
    }
    let mut out: Vec<Res> = by_key.into_values().collect();
    out.extend(analyze::implicit_resources());
    out
}

pub async fn run(ctx: &Ctx, mut args: AnalyzeArgs) -> Result<()> {
    let positional = std::mem::take(&mut args.paths);
    args.files.extend(positional);
    let mut analyzers = analyze::all();
    if args.list_analyzers {
        ctx.out.table(
            &["ANALYZER", "DESCRIPTION"],
            analyzers.iter().map(|a| vec![a.name().into(), a.description().into()]).collect(),
        );
        return Ok(());
    }
    if !args.analyzers.is_empty() {
        let known: Vec<&str> = analyzers.iter().map(|a| a.name()).collect();
        if let Some(bad) = args.analyzers.iter().find(|n| !known.contains(&n.as_str())) {
            return Err(CliError::usage(format!("unknown analyzer {bad:?}; this build has: {}", known.join(", "))));
        }
        analyzers.retain(|a| args.analyzers.iter().any(|n| n == a.name()));
    } else {
        analyzers.retain(|a| a.default_enabled());
    }
    let mut rules = Vec::new();
    for s in &args.suppress {
        let (code, res) = s.split_once('=').ok_or_else(|| {
            CliError::usage(format!("--suppress {s:?}: expected CODE=RESOURCE, like \"IST0102=Namespace *\""))
        })?;
        rules.push((code.trim().to_string(), res.trim().to_string()));
    }

    let ns = ctx.global.namespace.clone();
    let mut live = Vec::new();
    let mut docs = Vec::new();
    let mut sources = Vec::new();
    let on_cluster = ctx.global.platform == crate::cli::Platform::Kube;
    if !args.offline
        && (on_cluster
            || args.files.is_empty()
            || crate::cmd::install::running(&meshd::Home::from_env()).await.is_some())
    {
        let (config, workloads) = ctx.config_store().await?.snapshot().await?;
        let whose = if on_cluster { "the cluster" } else { "the running mesh" };
        let pods = workloads.iter().filter(|w| w.get("kind").and_then(|k| k.as_str()) == Some("Pod")).count();
        sources.push(format!("{whose} ({} resources, {pods} workloads)", config.len()));
        live = config;
        live.extend(workloads);
    }
    // What `mesh apply` would refuse is reported too. A document of a kind nobody knows (a
    // typo) was not analyzed at all: that fails the analysis. Invalid fields are warnings, as
    // the analyzers still read the rest (Istio's own analyzer test data has such documents).
    let (mut unknown, mut invalid) = (Vec::new(), Vec::new());
    if !args.files.is_empty() {
        for (i, (source, value)) in crate::files::read_values(&args.files, args.recursive)?.into_iter().enumerate() {
            if let Err(e) = mesh_api::resource::parse_document(value.clone(), &ns, i) {
                for why in &e.errors {
                    let line = format!("{source}: {}: {why}", e.resource);
                    if why.path == "kind" { unknown.push(line) } else { invalid.push(line) }
                }
            }
            docs.push(value);
        }
        sources.push(format!("{} documents from files", docs.len()));
    }
    for line in &invalid {
        ctx.out.warn(format!("`mesh apply` would refuse {line}"));
    }
    let mut resources = layered(live, docs, &ns);
    if let Some(f) = &args.mesh_networks {
        let text =
            std::fs::read_to_string(f).map_err(|e| CliError::user(format!("--mesh-networks {}: {e}", f.display())))?;
        let spec = mesh_api::resource::parse_yaml_stream(&text)
            .map_err(|e| CliError::user(format!("--mesh-networks {}: malformed YAML: {e}", f.display())))?
            .pop()
            .unwrap_or(Value::Null);
        resources.extend(analyze::multicluster::mesh_networks_resource(spec));
    }

    let mesh_config = match &args.mesh_config {
        Some(f) => {
            let text = std::fs::read_to_string(f)
                .map_err(|e| CliError::user(format!("--mesh-config {}: {e}", f.display())))?;
            mesh_api::resource::parse_yaml_stream(&text)
                .map_err(|e| CliError::user(format!("--mesh-config {}: malformed YAML: {e}", f.display())))?
                .pop()
                .unwrap_or(Value::Null)
        }
        None => Value::Null,
    };
    let mut messages: Vec<Message> = analyze::run(&analyzers, resources, mesh_config)
        .into_iter()
        .filter(|m| args.all_namespaces || m.namespace.as_deref().is_none_or(|n| n == ns))
        .filter(|m| !suppressed(&rules, m))
        .collect();
    let fail = messages.iter().any(|m| m.level >= args.failure_threshold);
    messages.retain(|m| m.level >= args.output_threshold);
    messages.sort_by(|a, b| (b.level, &a.origin, a.code).cmp(&(a.level, &b.origin, b.code)));

    let scope = if args.all_namespaces { "all namespaces".to_string() } else { format!("namespace: {ns}") };
    match args.output {
        AnalyzeOutput::Json => ctx.out.structured(crate::cli::Output::Json, &messages)?,
        AnalyzeOutput::Yaml => ctx.out.structured(crate::cli::Output::Yaml, &messages)?,
        AnalyzeOutput::Text => {
            for m in &messages {
                ctx.out.data(format!("{} [{}] ({}) {}", m.level.as_str(), m.code, m.text_resource(), m.message));
            }
            if messages.is_empty() && unknown.is_empty() && invalid.is_empty() {
                ctx.out
                    .success(format!("No validation issues found when analyzing {scope} ({}).", sources.join(" and ")));
            }
        }
    }
    if !unknown.is_empty() {
        return Err(CliError::user(format!(
            "documents of unknown kinds were not analyzed (`mesh apply` refuses them too):\n  {}",
            unknown.join("\n  ")
        )));
    }
    if fail {
        return Err(CliError::issues(format!(
            "analyzers found issues when analyzing {scope}; see https://istio.io/latest/docs/reference/config/analysis for causes and fixes"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::glob;

    #[test]
    fn globs() {
        assert!(glob("Namespace *", "Namespace default"));
        assert!(glob("IST01*", "IST0102"));
        assert!(glob("*", ""));
        assert!(!glob("Namespace *", "Service x.default"));
        assert!(glob("Service *.prod", "Service web.prod"));
    }
}
