//! DestinationRule analyzers.

use serde_json::Value;

use super::messages::*;
use super::{Analyzer, Input, Message, Res};

/// Does this `tls` block verify the server? None when it is not SIMPLE/MUTUAL TLS.
fn unverified_mode<'a>(dr: &Res, tls: Option<&'a Value>) -> Option<&'a str> {
    let tls = tls?;
    let mode = tls.get("mode").and_then(Value::as_str)?;
    if !matches!(mode, "SIMPLE" | "MUTUAL") {
        return None;
    }
    let has_ca = tls.get("caCertificates").and_then(Value::as_str).is_some_and(|c| !c.is_empty());
    // A credentialName carries the CA, but only for gateways, which a workloadSelector picks.
    let gateway_credential = tls.get("credentialName").and_then(Value::as_str).is_some_and(|c| !c.is_empty())
        && dr.spec().get("workloadSelector").is_some();
    let skip = tls.get("insecureSkipVerify").and_then(Value::as_bool).unwrap_or(false);
    (!has_ca && !gateway_credential && !skip).then_some(mode)
}

/// `destinationrule.CaCertificateAnalyzer`: TLS origination (SIMPLE or MUTUAL) without
/// `caCertificates` does not verify the server's identity.
pub struct CaCertificateAnalyzer;

impl Analyzer for CaCertificateAnalyzer {
    fn name(&self) -> &'static str {
        "destinationrule.CaCertificateAnalyzer"
    }

    fn description(&self) -> &'static str {
        "Checks if caCertificates is set when TLS mode is SIMPLE/MUTUAL"
    }

    fn analyze(&self, input: &Input, out: &mut Vec<Message>) {
        for dr in input.of_kind("networking.istio.io", "DestinationRule") {
            let host = dr.spec().get("host").and_then(Value::as_str).unwrap_or("");
            let tp = dr.spec().get("trafficPolicy");
            if let Some(mode) = unverified_mode(dr, tp.and_then(|t| t.get("tls"))) {
                out.push(Message::new(
                    &NO_SERVER_CERT_VERIFICATION_DESTINATION,
                    dr,
                    format!(
                        "DestinationRule {} in namespace {} has TLS mode set to {mode} but no caCertificates are set to validate server identity for host: {host}",
                        dr.name,
                        dr.ns()
                    ),
                ));
            }
            for p in tp.and_then(|t| t.get("portLevelSettings")).and_then(Value::as_array).into_iter().flatten() {
                if let Some(mode) = unverified_mode(dr, p.get("tls")) {
                    let port = p.get("port").and_then(|p| p.get("number")).and_then(Value::as_u64).unwrap_or(0);
                    out.push(Message::new(
                        &NO_SERVER_CERT_VERIFICATION_PORT,
                        dr,
                        format!(
                            "DestinationRule {} in namespace {} has TLS mode set to {mode} but no caCertificates are set to validate server identity for host: {host} at port {port}",
                            dr.name,
                            dr.ns()
                        ),
                    ));
                }
            }
        }
    }
}
