//! Root rotation with no downtime: the new root joins the trust bundle, every proxy is
//! re-issued under it, and the old root is retired only when every proxy has moved. Each step
//! waits for the connected proxies to report that they converged. The steps are idempotent, so
//! an interrupted rotation is finished by running it again (meshd does so at start).

use std::time::{Duration, Instant};

use mesh_api::control::RotateRootResponse;
use mesh_api::protocol::ProxyStatus;
use tracing::info;

use crate::ca::Ca;
use crate::state::State;

async fn wait_for(
    state: &State,
    deadline: Instant,
    what: &str,
    ok: impl Fn(&ProxyStatus) -> bool,
) -> Result<usize, String> {
    loop {
        let statuses = state.proxy_statuses();
        let behind: Vec<&str> = statuses.iter().filter(|p| !ok(p)).map(|p| p.id.as_str()).collect();
        if behind.is_empty() {
            return Ok(statuses.len());
        }
        if Instant::now() > deadline {
            return Err(format!(
                "timed out waiting for {} proxies to {what}: {}; the rotation stopped here with both roots trusted \
                 (nothing is broken); run `mesh cert rotate-root` again to finish it",
                behind.len(),
                behind.join(", ")
            ));
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

pub async fn rotate_root(ca: &Ca, state: &State, timeout: Duration) -> Result<RotateRootResponse, String> {
    let _one_at_a_time = ca.rotation.lock().await;
    let started = Instant::now();
    let deadline = started + timeout;
    let old_root = ca.view().roots.first().map(|r| r.subject.clone()).unwrap_or_default();
    if ca.root_count() == 1 {
        ca.add_root().map_err(|e| e.to_string())?;
        info!("root rotation: a new root joined the trust bundle");
    }
    let bundle = ca.view().bundle_version.clone();
    wait_for(state, deadline, "trust the new root", |p| p.identity.bundle_version == bundle).await?;
    if !ca.signer_is_newest() {
        ca.sign_with_newest().map_err(|e| e.to_string())?;
        info!("root rotation: the new root signs; proxies are renewing");
    }
    let view = ca.view();
    let signer = view.signer_key_id.clone();
    let new_root = view.roots.iter().find(|r| r.key_id == signer).map(|r| r.subject.clone()).unwrap_or_default();
    let moved = wait_for(state, deadline, "renew under the new root", |p| {
        p.identity.cert.as_ref().is_some_and(|c| c.authority_key_id == signer)
    })
    .await?;
    ca.retire_others().map_err(|e| e.to_string())?;
    let bundle = ca.view().bundle_version.clone();
    wait_for(state, deadline, "drop the old root", |p| p.identity.bundle_version == bundle).await?;
    info!(proxies = moved, "root rotation finished: the old root is retired");
    Ok(RotateRootResponse { old_root, new_root, proxies: moved, seconds: started.elapsed().as_secs_f64() })
}
