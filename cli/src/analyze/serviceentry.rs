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

/// A ServiceEntry's use of a host and port: the entry, its protocol, where it is exported.
type PortUse<'a> = (&'a super::Res, String, Vec<String>);

/// `serviceentry.ConflictingServiceEntryProtocolAnalyzer`: ServiceEntries visible together that
/// give the same host and port different protocols.
pub struct ConflictingProtocolAnalyzer;

impl Analyzer for ConflictingProtocolAnalyzer {
    fn name(&self) -> &'static str {
        "serviceentry.ConflictingServiceEntryProtocolAnalyzer"
    }

    fn description(&self) -> &'static str {
        "Checks for ServiceEntries that define the same host and port with different protocols"
    }

    fn analyze(&self, input: &Input, out: &mut Vec<Message>) {
        // (host, port) -> [(entry, protocol, exported to)]
        let mut by_port: std::collections::BTreeMap<(String, u64), Vec<PortUse<'_>>> = Default::default();
        for se in input.of_kind("networking.istio.io", "ServiceEntry") {
            let export = super::virtualservice::exported(se);
            let hosts =
                se.spec().get("hosts").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str);
            let ports: Vec<(u64, String)> = se
                .spec()
                .get("ports")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|p| {
                    Some((
                        p.get("number")?.as_u64()?,
                        p.get("protocol").and_then(Value::as_str).unwrap_or("").to_ascii_uppercase(),
                    ))
                })
                .collect();
            for h in hosts {
                for (n, proto) in &ports {
                    by_port.entry((h.to_ascii_lowercase(), *n)).or_default().push((se, proto.clone(), export.clone()));
                }
            }
        }
        for ((host, port), entries) in by_port {
            for (i, (se, proto, exp)) in entries.iter().enumerate() {
                let others: Vec<&PortUse<'_>> = entries
                    .iter()
                    .enumerate()
                    .filter(|(j, (_, p, e))| *j != i && p != proto && super::virtualservice::visible_together(exp, e))
                    .map(|(_, o)| o)
                    .collect();
                if others.is_empty() {
                    continue;
                }
                let mut names: Vec<String> = others.iter().map(|(o, _, _)| format!("{}/{}", o.ns(), o.name)).collect();
                names.push(format!("{}/{}", se.ns(), se.name));
                names.sort();
                let mut protos: Vec<&str> = others.iter().map(|(_, p, _)| p.as_str()).collect();
                protos.push(proto);
                protos.sort();
                protos.dedup();
                out.push(Message::new(
                    &CONFLICTING_SERVICE_ENTRY_PROTOCOL,
                    se,
                    format!(
                        "Multiple ServiceEntries ({}) define the same host {host:?} and port {port} with conflicting protocols ({}).",
                        names.join(", "),
                        protos.join(", ")
                    ),
                ));
            }
        }
    }
}
