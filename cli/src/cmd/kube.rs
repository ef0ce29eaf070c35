//! The kube platform: `install` (server-side apply with field manager `mesh`, then wait for
//! meshd), `uninstall`, `verify-install` and `precheck`, through kube-rs against the cluster
//! of `--kubeconfig`/`--context` (or the usual KUBECONFIG / in-cluster config).

use std::time::{Duration, Instant};

use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams};
use meshd::kubernetes::api_resource;
use serde_json::Value;

use crate::Ctx;
use crate::cli::{InstallArgs, UninstallArgs};
use crate::error::{CliError, Result};
use meshd::manifest::Settings;

const FIELD_MANAGER: &str = "mesh";

/// A client for the cluster the global flags name; errors say what to check.
pub async fn client(ctx: &Ctx) -> Result<kube::Client> {
    let g = &ctx.global;
    let config = match (&g.kubeconfig, &g.context) {
        (None, None) => kube::Config::infer().await.map_err(|e| {
            CliError::unavailable(format!(
                "no Kubernetes configuration found ({e}); set KUBECONFIG or pass --kubeconfig FILE [--context NAME]"
            ))
        })?,
        (file, context) => {
            let kc = match file {
                Some(f) => kube::config::Kubeconfig::read_from(f)
                    .map_err(|e| CliError::unavailable(format!("cannot read kubeconfig {}: {e}", f.display())))?,
                None => kube::config::Kubeconfig::read()
                    .map_err(|e| CliError::unavailable(format!("cannot read the default kubeconfig: {e}")))?,
            };
            let opts = kube::config::KubeConfigOptions { context: context.clone(), ..Default::default() };
            kube::Config::from_custom_kubeconfig(kc, &opts)
                .await
                .map_err(|e| CliError::unavailable(format!("kubeconfig: {e} (check --context)")))?
        }
    };
    let server = config.cluster_url.to_string();
    let client = kube::Client::try_from(config)
        .map_err(|e| CliError::unavailable(format!("cannot set up a client for {server}: {e}")))?;
    Ok(client)
}

/// A kube error as a CLI error: unreachable clusters and missing permissions say what to do.
pub fn explain(e: kube::Error, what: &str) -> CliError {
    match &e {
        kube::Error::Api(s) if s.code == 403 => CliError::failed(format!(
            "{what}: permission denied ({}); ask for RBAC that allows it, or check you use the right --context",
            s.message
        )),
        kube::Error::Api(s) => CliError::user(format!("{what}: the API server refused: {} ({})", s.message, s.code)),
        _ => CliError::unavailable(format!(
            "{what}: cannot reach the Kubernetes API ({e}); check --kubeconfig/--context and that the cluster is up"
        )),
    }
}

/// The API of one manifest object, and its name.
fn api_for(client: &kube::Client, obj: &Value) -> Result<(Api<DynamicObject>, String, String)> {
    let s = |p: &str| obj.pointer(p).and_then(Value::as_str).unwrap_or("").to_string();
    let (api_version, kind, name, ns) = (s("/apiVersion"), s("/kind"), s("/metadata/name"), s("/metadata/namespace"));
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version.as_str()));
    let (plural, namespaced) = match kind.as_str() {
        "Namespace" => ("namespaces", false),
        "CustomResourceDefinition" => ("customresourcedefinitions", false),
        "ClusterRole" => ("clusterroles", false),
        "ClusterRoleBinding" => ("clusterrolebindings", false),
        "MutatingWebhookConfiguration" => ("mutatingwebhookconfigurations", false),
        "ValidatingWebhookConfiguration" => ("validatingwebhookconfigurations", false),
        "ServiceAccount" => ("serviceaccounts", true),
        "Role" => ("roles", true),
        "RoleBinding" => ("rolebindings", true),
        "Deployment" => ("deployments", true),
        "Service" => ("services", true),
        other => return Err(CliError::internal(format!("no API mapping for kind {other}"))),
    };
    let ar = api_resource(group, version, &kind, plural);
    let api =
        if namespaced { Api::namespaced_with(client.clone(), &ns, &ar) } else { Api::all_with(client.clone(), &ar) };
    let label = format!("{kind} {}{name}", if ns.is_empty() { String::new() } else { format!("{ns}/") });
    Ok((api, name, label))
}

/// Whether an object on the cluster was put there by mesh: every object mesh generates
/// carries the label `app.kubernetes.io/name: mesh`.
fn created_by_mesh(o: &DynamicObject) -> bool {
    o.metadata.labels.as_ref().and_then(|l| l.get("app.kubernetes.io/name")).is_some_and(|v| v == "mesh")
}

/// A CRD of the manifest that exists on the cluster without being mesh's (Istio's, say).
struct ForeignCrd {
    name: String,
    /// The version mesh writes (the manifest's storage version), when the CRD does not serve it.
    missing_version: Option<String>,
}

/// The manifest's CRDs that exist on the cluster and were not created by mesh.
async fn foreign_crds(client: &kube::Client, objects: &[Value]) -> Result<Vec<ForeignCrd>> {
    let mut out = Vec::new();
    for o in objects.iter().filter(|o| o["kind"] == "CustomResourceDefinition") {
        let (api, name, label) = api_for(client, o)?;
        let Some(existing) = api.get_opt(&name).await.map_err(|e| explain(e, &format!("reading {label}")))? else {
            continue;
        };
        if created_by_mesh(&existing) {
            continue;
        }
        let ours = o.pointer("/spec/versions").and_then(Value::as_array).and_then(|vs| {
            vs.iter().find(|v| v["storage"] == true).and_then(|v| v["name"].as_str()).map(str::to_string)
        });
        let served: Vec<&str> = existing
            .data
            .pointer("/spec/versions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|v| v["served"] == true)
            .filter_map(|v| v["name"].as_str())
            .collect();
        let missing_version = ours.filter(|v| !served.contains(&v.as_str()));
        out.push(ForeignCrd { name, missing_version });
    }
    Ok(out)
}

fn settings(args: &InstallArgs) -> Result<Settings> {
    crate::cmd::manifest::settings(&args.profile, &args.set, &[])
}

/// Is the meshd Deployment ready (every wanted replica)?
async fn meshd_ready(client: &kube::Client, ns: &str) -> std::result::Result<bool, kube::Error> {
    let ar = api_resource("apps", "v1", "Deployment", "deployments");
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &ar);
    let d = match api.get_opt("meshd").await? {
        Some(d) => serde_json::to_value(d).unwrap_or(Value::Null),
        None => return Ok(false),
    };
    let want = d.pointer("/spec/replicas").and_then(Value::as_u64).unwrap_or(1);
    let ready = d.pointer("/status/readyReplicas").and_then(Value::as_u64).unwrap_or(0);
    Ok(ready >= want)
}

pub async fn install(ctx: &Ctx, args: InstallArgs) -> Result<()> {
    let s = settings(&args)?;
    let objects = meshd::manifest::objects(&s);
    let client = client(ctx).await?;
    let version = client.apiserver_version().await.map_err(|e| explain(e, "reading the cluster's version"))?;
    // CRDs someone else installed (Istio's) are kept and used as they are, unless asked to
    // replace them; one that lacks the version mesh writes stops the install before anything
    // is changed.
    let foreign = foreign_crds(&client, &objects).await?;
    if !args.replace_crds {
        let lacking: Vec<String> = foreign
            .iter()
            .filter_map(|c| c.missing_version.as_ref().map(|v| format!("{} (does not serve {v})", c.name)))
            .collect();
        if !lacking.is_empty() {
            return Err(CliError::failed(format!(
                "CRDs not created by mesh lack a version mesh writes: {}; nothing was changed. Update them (a newer Istio's CRDs serve it), or replace them with --replace-crds",
                lacking.join(", ")
            )));
        }
    }
    let kept: Vec<&str> =
        if args.replace_crds { Vec::new() } else { foreign.iter().map(|c| c.name.as_str()).collect() };
    let objects: Vec<Value> = objects
        .into_iter()
        .filter(|o| !(o["kind"] == "CustomResourceDefinition" && kept.iter().any(|k| o["metadata"]["name"] == *k)))
        .collect();
    for c in &foreign {
        if args.replace_crds {
            ctx.out.warn(format!("replacing CRD {}, which mesh did not create (--replace-crds)", c.name));
        } else {
            ctx.out.info(format!(
                "keeping CRD {} as it is: it was not created by mesh (Istio's?) and serves what mesh needs",
                c.name
            ));
        }
    }
    if args.dry_run {
        ctx.out.info(format!(
            "would apply {} objects (profile {}) to the cluster at Kubernetes {}.{}:",
            objects.len(),
            s.profile,
            version.major,
            version.minor
        ));
        for o in &objects {
            let (_, _, label) = api_for(&client, o)?;
            ctx.out.info(format!("  {label}"));
        }
        return Ok(());
    }
    ctx.out.confirm(
        &format!(
            "Install mesh (profile {}, {} objects) into the cluster (Kubernetes {}.{}), namespace {}?",
            s.profile,
            objects.len(),
            version.major,
            version.minor,
            s.namespace
        ),
        args.yes,
    )?;
    let bar = if ctx.out.tty && !ctx.out.quiet {
        let b = indicatif::ProgressBar::new(objects.len() as u64);
        if let Ok(style) = indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} {msg}") {
            b.set_style(style);
        }
        Some(b)
    } else {
        None
    };
    let params = PatchParams::apply(FIELD_MANAGER).force();
    for o in &objects {
        let (api, name, label) = api_for(&client, o)?;
        if let Some(b) = &bar {
            b.set_message(label.clone());
        }
        api.patch(&name, &params, &Patch::Apply(o)).await.map_err(|e| explain(e, &format!("applying {label}")))?;
        match &bar {
            Some(b) => b.inc(1),
            None => ctx.out.info(format!("applied {label}")),
        }
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    if s.meshd {
        let pb = ctx.out.spinner("waiting for meshd to be ready");
        let deadline = Instant::now() + Duration::from_secs(args.wait_timeout.max(1));
        loop {
            if meshd_ready(&client, &s.namespace).await.map_err(|e| explain(e, "reading meshd's Deployment"))? {
                break;
            }
            if Instant::now() >= deadline {
                if let Some(pb) = pb {
                    pb.finish_and_clear();
                }
                return Err(CliError::unavailable(format!(
                    "meshd did not become ready within {}s; check `kubectl -n {} get pods -l app=meshd` and its logs",
                    args.wait_timeout, s.namespace
                )));
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        if let Some(pb) = pb {
            pb.finish_and_clear();
        }
        ctx.out.success(format!("mesh installed (profile {}): meshd is ready in {}", s.profile, s.namespace));
    } else {
        ctx.out.success(format!("mesh installed (profile {}, no meshd)", s.profile));
    }
    Ok(())
}

pub async fn uninstall(ctx: &Ctx, args: UninstallArgs) -> Result<()> {
    let s = Settings::profile("default").ok_or_else(|| CliError::internal("no default profile"))?;
    let client = client(ctx).await?;
    let what = if args.purge {
        "remove mesh, its CRDs and every mesh resource in them,"
    } else {
        "remove mesh (CRDs and their resources stay)"
    };
    ctx.out.confirm(&format!("This will {what} from the cluster. Continue?"), args.yes)?;
    let mut removed = 0;
    for o in meshd::manifest::objects(&s).iter().rev() {
        let kind = o["kind"].as_str().unwrap_or("");
        if !args.purge && (kind == "CustomResourceDefinition" || kind == "Namespace") {
            continue;
        }
        let (api, name, label) = api_for(&client, o)?;
        // Never delete what mesh did not create (Istio's CRDs, an istio-system made by Istio).
        if kind == "CustomResourceDefinition" || kind == "Namespace" {
            match api.get_opt(&name).await.map_err(|e| explain(e, &format!("reading {label}")))? {
                Some(existing) if !created_by_mesh(&existing) => {
                    ctx.out.info(format!("kept {label}: it was not created by mesh"));
                    continue;
                }
                None => continue,
                Some(_) => {}
            }
        }
        match api.delete(&name, &DeleteParams::background()).await {
            Ok(_) => {
                removed += 1;
                ctx.out.info(format!("deleted {label}"));
            }
            Err(kube::Error::Api(st)) if st.code == 404 => {}
            Err(e) => return Err(explain(e, &format!("deleting {label}"))),
        }
    }
    ctx.out.success(format!("mesh uninstalled ({removed} objects deleted)"));
    Ok(())
}

/// Every object of the default profile present, and meshd ready; exit 1 otherwise.
pub async fn verify_install(ctx: &Ctx, profile: &str) -> Result<()> {
    let s = Settings::profile(profile).ok_or_else(|| CliError::user(format!("unknown profile {profile:?}")))?;
    let client = client(ctx).await?;
    let mut rows = Vec::new();
    let mut missing = 0;
    for o in meshd::manifest::objects(&s) {
        let (api, name, label) = api_for(&client, &o)?;
        let found = api.get_opt(&name).await.map_err(|e| explain(e, &format!("reading {label}")))?.is_some();
        if !found {
            missing += 1;
        }
        rows.push(vec![label, if found { "OK".into() } else { "MISSING".into() }]);
    }
    let ready = s.meshd && meshd_ready(&client, &s.namespace).await.map_err(|e| explain(e, "reading meshd"))?;
    if s.meshd {
        rows.push(vec!["meshd readiness".into(), if ready { "READY".into() } else { "NOT READY".into() }]);
    }
    let present = rows.len() - missing - usize::from(s.meshd);
    ctx.out.table(&["OBJECT", "STATUS"], rows);
    if missing > 0 || (s.meshd && !ready) {
        return Err(CliError::failed(format!(
            "the installation is incomplete: {missing} objects missing{}; run `mesh install --platform kube`",
            if s.meshd && !ready { ", meshd not ready" } else { "" }
        )));
    }
    ctx.out.success(format!("{present} objects present{}", if s.meshd { ", meshd ready" } else { "" }));
    Ok(())
}

/// Kubernetes version, the permissions install needs, and an existing Istio or mesh install.
pub async fn precheck(ctx: &Ctx) -> Result<()> {
    let client = client(ctx).await?;
    let v = client.apiserver_version().await.map_err(|e| explain(e, "reading the cluster's version"))?;
    let minor: u32 = v.minor.trim_end_matches('+').parse().unwrap_or(0);
    let mut problems = Vec::new();
    if v.major != "1" || minor < 28 {
        problems.push(format!("Kubernetes {}.{} is older than 1.28, the oldest supported", v.major, v.minor));
    } else {
        ctx.out.success(format!("Kubernetes {}.{} is supported", v.major, v.minor));
    }
    let checks = [
        ("apiextensions.k8s.io", "customresourcedefinitions", "create"),
        ("rbac.authorization.k8s.io", "clusterroles", "create"),
        ("admissionregistration.k8s.io", "mutatingwebhookconfigurations", "create"),
        ("apps", "deployments", "create"),
        ("", "namespaces", "create"),
    ];
    for (group, resource, verb) in checks {
        let review = serde_json::json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
            "spec": {"resourceAttributes": {"group": group, "resource": resource, "verb": verb}}});
        let req = http::Request::post("/apis/authorization.k8s.io/v1/selfsubjectaccessreviews")
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(serde_json::to_vec(&review).unwrap_or_default())
            .map_err(|e| CliError::internal(e.to_string()))?;
        let answer: Value = client.request(req).await.map_err(|e| explain(e, "checking permissions"))?;
        let what = if group.is_empty() { resource.to_string() } else { format!("{resource}.{group}") };
        if answer.pointer("/status/allowed").and_then(Value::as_bool) == Some(true) {
            ctx.out.success(format!("can {verb} {what}"));
        } else {
            problems.push(format!("missing permission to {verb} {what}"));
        }
    }
    let default = Settings::profile("default").ok_or_else(|| CliError::internal("no default profile"))?;
    for c in foreign_crds(&client, &meshd::manifest::objects(&default)).await? {
        match &c.missing_version {
            None => ctx.out.warn(format!(
                "CRD {} exists and was not created by mesh (Istio's?): install keeps it and uses it as it is",
                c.name
            )),
            Some(v) => problems.push(format!(
                "CRD {} exists, was not created by mesh and does not serve {v}: install needs it updated, or --replace-crds",
                c.name
            )),
        }
    }
    let deployments = api_resource("apps", "v1", "Deployment", "deployments");
    let system: Api<DynamicObject> = Api::namespaced_with(client.clone(), "istio-system", &deployments);
    for (name, what) in [("istiod", "Istio"), ("meshd", "mesh")] {
        if system.get_opt(name).await.map_err(|e| explain(e, "looking for an existing install"))?.is_some() {
            ctx.out.warn(format!("{what} is already installed (Deployment istio-system/{name})"));
        }
    }
    // The Gateway API is the upstream project's, installed by users (as with Istio): say
    // whether it is there, which is not a problem for the install.
    let crds = api_resource("apiextensions.k8s.io", "v1", "CustomResourceDefinition", "customresourcedefinitions");
    let crd_api: Api<DynamicObject> = Api::all_with(client.clone(), &crds);
    let mut absent = Vec::new();
    for plural in ["gatewayclasses", "gateways", "httproutes", "grpcroutes", "referencegrants"] {
        let name = format!("{plural}.gateway.networking.k8s.io");
        if crd_api.get_opt(&name).await.map_err(|e| explain(e, "looking for the Gateway API CRDs"))?.is_none() {
            absent.push(name);
        }
    }
    if absent.is_empty() {
        ctx.out.success("the Kubernetes Gateway API CRDs are installed");
    } else {
        ctx.out.warn(format!(
            "the Kubernetes Gateway API CRDs are not installed ({}): Gateways and HTTPRoutes cannot be used until they are; install the standard channel: kubectl apply -f https://github.com/kubernetes-sigs/gateway-api/releases/download/v1.3.0/standard-install.yaml",
            absent.join(", ")
        ));
    }
    if problems.is_empty() {
        ctx.out.success("the cluster is ready for `mesh install --platform kube`");
        Ok(())
    } else {
        Err(CliError::failed(problems.join("\n")))
    }
}
