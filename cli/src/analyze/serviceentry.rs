//! ServiceEntry analyzers.

use serde_json::Value;

use super::messages::*;
use super::{Analyzer, Input, Message};

/// `serviceentry.Analyzer` (Istio's ProtocolAddressesAnalyzer): a ServiceEntry for TCP (or an
/// unspecified protocol) without addresses cannot be told apart by destination IP, unless the
/// mesh allocates addresses (`ISTIO_META_DNS_AUTO_ALLOCATE`) or already did (status.addresses).
pub struct ProtocolAddressesAnalyzer;

impl Analyzer for ProtocolAddressesAnalyzer {
    fn name(&self) -> &'static str {
        "serviceentry.Analyzer"
    }

    fn description(&self) -> &'static str {
        "Checks the validity of ServiceEntry"
    }

    fn analyze(&self, input: &Input, out: &mut Vec<Message>) {
        let auto_allocate = input
            .mesh_config
            .pointer("/defaultConfig/proxyMetadata/ISTIO_META_DNS_AUTO_ALLOCATE")
            .and_then(Value::as_str)
            .is_some_and(|v| v.eq_ignore_ascii_case("true"));
        if auto_allocate {
            return;
        }
        for se in input.of_kind("networking.istio.io", "ServiceEntry") {
            let has = |v: Option<&Value>| v.and_then(Value::as_array).is_some_and(|a| !a.is_empty());
            if has(se.spec().get("addresses")) || has(se.value.pointer("/status/addresses")) {
                continue;
            }
            for p in se.spec().get("ports").and_then(Value::as_array).into_iter().flatten() {
                let proto = p.get("protocol").and_then(Value::as_str).unwrap_or("");
                if proto.is_empty() || proto.eq_ignore_ascii_case("tcp") {
                    out.push(Message::new(
                        &SERVICE_ENTRY_ADDRESSES_REQUIRED,
                        se,
                        "ServiceEntry addresses are required for this protocol.".into(),
                    ));
                }
            }
        }
    }
}
