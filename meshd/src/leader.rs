//! Leader election among meshd replicas on a cluster, with a `coordination.k8s.io` Lease as
//! Kubernetes controllers do it: the holder renews it every few seconds; when it stops (its pod
//! died), another replica takes it once it has not been renewed for the lease's duration.
//! Every replica serves discovery and the webhooks; only the leader writes what must be
//! written once (the root ConfigMap in every namespace, the webhooks' caBundle).

use std::time::Duration;

use kube::api::{Api, DynamicObject, PostParams};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::sync::watch;
use tracing::{info, warn};

use crate::kubernetes::api_resource;

/// The Lease in meshd's namespace.
pub const LEASE: &str = "meshd-leader";
/// How long a lease holds without renewal (client-go's default is 15 s).
const LEASE_DURATION: Duration = Duration::from_secs(15);
/// How often the holder renews, and others look.
const RENEW_EVERY: Duration = Duration::from_secs(3);

/// Now as a Kubernetes MicroTime: RFC 3339 in UTC with exactly six fractional digits (the API
/// server parses that layout strictly).
fn now() -> String {
    micro_time(OffsetDateTime::now_utc())
}

fn micro_time(t: OffsetDateTime) -> String {
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.microsecond()
    )
}

/// Whether the lease in `spec` has gone unrenewed for its duration.
fn expired(spec: &Value) -> bool {
    let duration = spec["leaseDurationSeconds"].as_i64().unwrap_or(15);
    let Some(renewed) = spec["renewTime"].as_str().and_then(|t| OffsetDateTime::parse(t, &Rfc3339).ok()) else {
        return true;
    };
    OffsetDateTime::now_utc() - renewed > time::Duration::seconds(duration)
}

/// One round: create, renew or take the lease. Ok(true) when this replica holds it now.
async fn round(api: &Api<DynamicObject>, namespace: &str, me: &str) -> Result<bool, kube::Error> {
    let spec = |acquired: &str, transitions: i64| {
        json!({"holderIdentity": me, "leaseDurationSeconds": LEASE_DURATION.as_secs(),
               "acquireTime": acquired, "renewTime": now(), "leaseTransitions": transitions})
    };
    let Some(mut lease) = api.get_opt(LEASE).await? else {
        let lease: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": LEASE, "namespace": namespace},
            "spec": spec(&now(), 0),
        }))
        .map_err(kube::Error::SerdeError)?;
        return match api.create(&PostParams::default(), &lease).await {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
            Err(e) => Err(e),
        };
    };
    let current = lease.data["spec"].clone();
    let holder = current["holderIdentity"].as_str().unwrap_or("");
    let transitions = current["leaseTransitions"].as_i64().unwrap_or(0);
    let next = if holder == me {
        spec(current["acquireTime"].as_str().unwrap_or(""), transitions)
    } else if expired(&current) {
        spec(&now(), transitions + 1)
    } else {
        return Ok(false);
    };
    lease.data["spec"] = next;
    // The replace carries the resourceVersion read: of two replicas taking an expired lease,
    // one gets 409 and stays a follower.
    match api.replace(LEASE, &PostParams::default(), &lease).await {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
        Err(e) => Err(e),
    }
}

/// Run the election until meshd stops, telling `leader` whether this replica leads. A replica
/// that cannot renew in time (the API server unreachable) steps down before its lease expires.
pub async fn run(client: kube::Client, namespace: String, me: String, leader: watch::Sender<bool>) {
    let api: Api<DynamicObject> =
        Api::namespaced_with(client, &namespace, &api_resource("coordination.k8s.io", "v1", "Lease", "leases"));
    let mut last_renewed: Option<tokio::time::Instant> = None;
    loop {
        let leads = match round(&api, &namespace, &me).await {
            Ok(true) => {
                last_renewed = Some(tokio::time::Instant::now());
                true
            }
            Ok(false) => false,
            Err(e) => {
                warn!(error = %e, lease = LEASE, "cannot read or renew the leader lease");
                // Keep leading only while the lease we last renewed still holds.
                last_renewed.is_some_and(|t| t.elapsed() < LEASE_DURATION - RENEW_EVERY)
            }
        };
        if leads != *leader.borrow() {
            if leads {
                info!(identity = %me, "leading: this meshd writes the root ConfigMaps and the webhooks' caBundle");
            } else {
                info!(identity = %me, "following: another meshd leads");
            }
            leader.send_replace(leads);
        }
        tokio::time::sleep(RENEW_EVERY).await;
    }
}

/// Wait until this replica leads.
pub async fn until_leading(leader: &mut watch::Receiver<bool>) -> bool {
    leader.wait_for(|l| *l).await.is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn micro_time_has_six_fractional_digits_and_parses_back() {
        let t = OffsetDateTime::from_unix_timestamp_nanos(1_790_000_000_120_000_000).expect("time");
        let s = micro_time(t);
        assert_eq!(s, "2026-09-21T14:13:20.120000Z");
        assert_eq!(OffsetDateTime::parse(&s, &Rfc3339).expect("parse"), t);
        assert!(!expired(&json!({"leaseDurationSeconds": 15, "renewTime": now()})));
        assert!(expired(&json!({"leaseDurationSeconds": 15, "renewTime": micro_time(t)})));
        assert!(expired(&json!({"leaseDurationSeconds": 15})), "never renewed");
    }
}
