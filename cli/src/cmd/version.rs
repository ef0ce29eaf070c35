//! `mesh version`: the CLI's version, and the control plane's and proxies' when reachable.

use mesh_api::protocol::ProxyStatus;
use serde::Serialize;

use crate::Ctx;
use crate::cli::{Output, VersionArgs};
use crate::error::Result;

#[derive(Serialize)]
struct Versions {
    client: String,
    /// On the kube platform: the cluster's.
    #[serde(skip_serializing_if = "Option::is_none")]
    kubernetes: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    meshd: Option<String>,
    proxies: Vec<String>,
}

pub async fn run(ctx: &Ctx, args: VersionArgs) -> Result<()> {
    if args.short {
        ctx.out.data(mesh_api::VERSION);
        return Ok(());
    }
    let home = meshd::Home::from_env();
    let mut v = Versions { client: mesh_api::VERSION.to_string(), kubernetes: None, meshd: None, proxies: Vec::new() };
    if ctx.global.platform == crate::cli::Platform::Kube {
        on_cluster(ctx, &mut v).await?;
    } else if let Some(client) = crate::cmd::install::running(&home).await {
        v.meshd = home.read_info().ok().map(|i| i.version);
        let ps: Vec<ProxyStatus> = client.get(mesh_api::control::PROXIES_PATH).await.unwrap_or_default();
        let mut pv: Vec<String> = ps.into_iter().map(|p| p.workload.proxy_version).collect();
        pv.sort();
        pv.dedup();
        v.proxies = pv;
    }
    if args.output != Output::Table {
        return ctx.out.structured(args.output, &v);
    }
    ctx.out.data(format!("client version: {}", v.client));
    if let Some(k) = &v.kubernetes {
        ctx.out.data(format!("Kubernetes version: {k}"));
    }
    ctx.out.data(format!("control plane version: {}", v.meshd.as_deref().unwrap_or("none (meshd is not running)")));
    if !v.proxies.is_empty() {
        ctx.out.data(format!("data plane version: {}", v.proxies.join(", ")));
    }
    Ok(())
}

/// On a cluster: the API server's version, meshd's (its Deployment's version label) and the
/// proxies' (the image tags of the pods' `istio-proxy` containers).
async fn on_cluster(ctx: &Ctx, v: &mut Versions) -> Result<()> {
    use kube::api::{Api, DynamicObject, ListParams};
    use meshd::kubernetes::api_resource;
    let client = crate::cmd::kube::client(ctx).await?;
    let explain = crate::cmd::kube::explain;
    let k = client.apiserver_version().await.map_err(|e| explain(e, "reading the cluster's version"))?;
    v.kubernetes = Some(k.git_version);
    v.meshd = meshd_version(&client).await?;
    let pods = Api::<DynamicObject>::all_with(client, &api_resource("", "v1", "Pod", "pods"))
        .list(&ListParams::default())
        .await
        .map_err(|e| explain(e, "listing pods"))?;
    let mut tags: Vec<String> = pods
        .items
        .iter()
        .filter_map(|p| p.data.pointer("/spec/containers")?.as_array().cloned())
        .flatten()
        .filter(|c| c["name"] == "istio-proxy")
        .filter_map(|c| c["image"].as_str().and_then(|i| i.rsplit_once(':')).map(|(_, t)| t.to_string()))
        .collect();
    tags.sort();
    tags.dedup();
    v.proxies = tags;
    Ok(())
}

/// The version meshd's Deployment runs on the cluster (its version label; None without one).
async fn meshd_version(client: &kube::Client) -> Result<Option<String>> {
    use kube::api::{Api, DynamicObject};
    let deployments = meshd::kubernetes::api_resource("apps", "v1", "Deployment", "deployments");
    let d = Api::<DynamicObject>::namespaced_with(client.clone(), crate::reach::MESHD_NAMESPACE, &deployments)
        .get_opt("meshd")
        .await
        .map_err(|e| crate::cmd::kube::explain(e, "reading the meshd Deployment"))?;
    Ok(d.and_then(|d| d.metadata.labels?.get("app.kubernetes.io/version").cloned()))
}

/// [`meshd_version`] on the cluster the global flags name.
pub async fn meshd_on_cluster(ctx: &Ctx) -> Result<Option<String>> {
    meshd_version(&crate::cmd::kube::client(ctx).await?).await
}
