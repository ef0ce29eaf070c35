//! What the proxy enforces today. Fields that Istio defines and we accept, validate and store,
//! but that do not change traffic yet, are reported so nobody is surprised.

use crate::Resource;

/// Paths of fields set in `r` that are accepted but not enforced yet.
pub fn unenforced(r: &Resource) -> Vec<String> {
    let mut out = Vec::new();
    match r {
        Resource::Service(_) | Resource::PeerAuthentication(_) | Resource::LocalRateLimit(_) => {}
        Resource::Rollout(_) => {}
        Resource::GatewayClass(_) | Resource::ReferenceGrant(_) | Resource::TcpRoute(_) | Resource::TlsRoute(_) => {}
        Resource::WorkloadEntry(o) => {
            let s = &o.spec;
            let set = [
                ("network", s.network.is_some()),
                ("locality", s.locality.is_some()),
                ("weight", s.weight.is_some()),
                (
                    "address (a DNS name: only IP addresses are endpoints)",
                    s.address.as_deref().is_some_and(|a| a.parse::<std::net::IpAddr>().is_err()),
                ),
            ];
            out.extend(set.iter().filter(|(_, on)| *on).map(|(f, _)| format!("spec.{f}")));
        }
        Resource::ProxyConfig(o) => {
            for k in o.spec.environment_variables.keys().filter(|k| !crate::networking::PROXY_ENV.contains(&k.as_str()))
            {
                out.push(format!(
                    "spec.environmentVariables.{k} (the proxy honours {})",
                    crate::networking::PROXY_ENV.join(", ")
                ));
            }
            if o.spec.image.is_some() {
                out.push("spec.image (one proxy image is built)".into());
            }
        }
        Resource::WorkloadGroup(o) => {
            if o.spec.probe.is_some() {
                out.push("spec.probe (health is the proxy's connection to meshd)".into());
            }
        }
        Resource::Sidecar(o) => {
            let s = &o.spec;
            for (i, ing) in s.ingress.iter().enumerate() {
                if ing.tls.is_some() {
                    out.push(format!("spec.ingress[{i}].tls (inbound TLS is the mesh's mTLS)"));
                }
                if ing.connection_pool.is_some() {
                    out.push(format!("spec.ingress[{i}].connectionPool"));
                }
            }
            if s.inbound_connection_pool.is_some() {
                out.push("spec.inboundConnectionPool".into());
            }
            if s.outbound_traffic_policy.as_ref().is_some_and(|p| p.egress_proxy.is_some()) {
                out.push("spec.outboundTrafficPolicy.egressProxy".into());
            }
            for (i, eg) in s.egress.iter().enumerate() {
                if eg.bind.as_deref().is_some_and(|b| b.starts_with("unix://")) {
                    out.push(format!("spec.egress[{i}].bind (a unix socket: listeners bind IP addresses)"));
                }
            }
        }
        Resource::KubeGateway(o) => {
            if !o.spec.addresses.is_empty() {
                out.push("spec.addresses (a gateway listens where its proxy is told to)".into());
            }
        }
        Resource::HttpRoute(o) => {
            for (i, r) in o.spec.rules.iter().enumerate() {
                if r.session_persistence.is_some() {
                    out.push(format!("spec.rules[{i}].sessionPersistence"));
                }
            }
        }
        Resource::GrpcRoute(o) => {
            for (i, r) in o.spec.rules.iter().enumerate() {
                if r.session_persistence.is_some() {
                    out.push(format!("spec.rules[{i}].sessionPersistence"));
                }
            }
        }
        Resource::Telemetry(o) => {
            let s = &o.spec;
            if s.target_ref.is_some() || !s.target_refs.is_empty() {
                out.push("spec.targetRefs (policies attach to workloads by selector only)".into());
            }
            if !s.metrics.is_empty() {
                out.push("spec.metrics (every proxy reports Istio's standard metrics)".into());
            }
            for (i, a) in s.access_logging.iter().enumerate() {
                if a.matches.as_ref().is_some_and(|m| m.mode != crate::telemetry::WorkloadMode::ClientAndServer) {
                    out.push(format!("spec.accessLogging[{i}].match.mode (both sides log)"));
                }
                if a.filter.is_some() {
                    out.push(format!("spec.accessLogging[{i}].filter (every request is logged)"));
                }
                for (j, p) in a.providers.iter().enumerate() {
                    if p.name != "envoy" {
                        out.push(format!(
                            "spec.accessLogging[{i}].providers[{j}] {} (access logs go to the proxy's standard output)",
                            p.name
                        ));
                    }
                }
            }
            for (i, t) in s.tracing.iter().enumerate() {
                let set = [
                    (
                        "match.mode",
                        t.matches.as_ref().is_some_and(|m| m.mode != crate::telemetry::WorkloadMode::ClientAndServer),
                    ),
                    ("customTags", !t.custom_tags.is_empty()),
                    ("useRequestIdForTraceSampling", t.use_request_id_for_trace_sampling.is_some()),
                    ("disableContextPropagation", t.disable_context_propagation == Some(true)),
                    ("enableIstioTags", t.enable_istio_tags == Some(false)),
                ];
                out.extend(set.iter().filter(|(_, on)| *on).map(|(f, _)| format!("spec.tracing[{i}].{f}")));
                if !t.providers.is_empty() {
                    out.push(format!("spec.tracing[{i}].providers (spans go to the mesh config's collector)"));
                }
            }
        }
        Resource::Gateway(o) => {
            for (i, sv) in o.spec.servers.iter().enumerate() {
                let p = sv.port.protocol.to_ascii_uppercase();
                if p == "MONGO" {
                    out.push(format!("spec.servers[{i}].port.protocol {p} (served as plain TCP)"));
                }
            }
        }
        Resource::ServiceEntry(o) => {
            let s = &o.spec;
            let set = [
                ("addresses", !s.addresses.is_empty()),
                ("exportTo", !s.export_to.is_empty()),
                ("subjectAltNames", !s.subject_alt_names.is_empty()),
                ("resolution DYNAMIC_DNS", s.resolution.as_deref() == Some("DYNAMIC_DNS")),
            ];
            out.extend(set.iter().filter(|(_, on)| *on).map(|(f, _)| format!("spec.{f}")));
        }
        Resource::AuthorizationPolicy(o) => {
            if o.spec.target_ref.is_some() || !o.spec.target_refs.is_empty() {
                out.push("spec.targetRefs (policies attach to workloads by selector only)".into());
            }
            if o.spec.action == crate::security::AuthorizationAction::Custom {
                out.push("spec.action CUSTOM (external authorizers; the policy is ignored)".into());
            }
            for (i, r) in o.spec.rules.iter().enumerate() {
                for (j, c) in r.when.iter().enumerate() {
                    if c.key.starts_with("experimental.") {
                        out.push(format!("spec.rules[{i}].when[{j}] ({}: never matches)", c.key));
                    }
                }
            }
        }
        Resource::RequestAuthentication(o) => {
            if o.spec.target_ref.is_some() || !o.spec.target_refs.is_empty() {
                out.push("spec.targetRefs (policies attach to workloads by selector only)".into());
            }
            for (i, r) in o.spec.jwt_rules.iter().enumerate() {
                if r.jwks.is_none() && r.jwks_uri.is_none() && r.jwks_uri_legacy.is_none() {
                    out.push(format!(
                        "spec.jwtRules[{i}] (no jwks or jwksUri: OpenID discovery is not supported; the rule is ignored)"
                    ));
                }
            }
        }
        Resource::VirtualService(o) => {
            let s = &o.spec;
            for (i, h) in s.http.iter().enumerate() {
                let p = format!("spec.http[{i}]");
                let fault = h.fault.as_ref();
                let set = [
                    (
                        "fault.delay.exponentialDelay",
                        fault.and_then(|f| f.delay.as_ref()).is_some_and(|d| d.exponential_delay.is_some()),
                    ),
                    (
                        "fault.abort.http2Error",
                        fault.and_then(|f| f.abort.as_ref()).is_some_and(|a| a.http2_error.is_some()),
                    ),
                    (
                        "retries.retryRemoteLocalities",
                        h.retries.as_ref().is_some_and(|r| r.retry_remote_localities.is_some()),
                    ),
                ];
                out.extend(set.iter().filter(|(_, on)| *on).map(|(f, _)| format!("{p}.{f}")));
            }
            for (i, t) in s.tcp.iter().enumerate() {
                for (j, m) in t.matches.iter().enumerate() {
                    if !m.destination_subnets.is_empty() {
                        out.push(format!("spec.tcp[{i}].match[{j}].destinationSubnets"));
                    }
                }
            }
            for (i, t) in s.tls.iter().enumerate() {
                for (j, m) in t.matches.iter().enumerate() {
                    if !m.destination_subnets.is_empty() {
                        out.push(format!("spec.tls[{i}].match[{j}].destinationSubnets"));
                    }
                }
            }
        }
        Resource::DestinationRule(o) => {
            let policies = std::iter::once(("spec.trafficPolicy".to_string(), o.spec.traffic_policy.as_ref())).chain(
                o.spec
                    .subsets
                    .iter()
                    .enumerate()
                    .map(|(i, s)| (format!("spec.subsets[{i}].trafficPolicy"), s.traffic_policy.as_ref())),
            );
            for (p, tp) in policies {
                let Some(tp) = tp else { continue };
                let lb = tp.load_balancer.as_ref();
                let tcp = tp.connection_pool.as_ref().and_then(|c| c.tcp.as_ref());
                let http = tp.connection_pool.as_ref().and_then(|c| c.http.as_ref());
                let od = tp.outlier_detection.as_ref();
                let set = [
                    ("loadBalancer.localityLbSetting", lb.is_some_and(|l| l.locality_lb_setting.is_some())),
                    ("loadBalancer.warmup", lb.is_some_and(|l| l.warmup.is_some() || l.warmup_duration_secs.is_some())),
                    ("loadBalancer.simple PASSTHROUGH", lb.and_then(|l| l.simple.as_deref()) == Some("PASSTHROUGH")),
                    (
                        "loadBalancer.consistentHash ringHash/maglev tuning",
                        lb.and_then(|l| l.consistent_hash.as_ref()).is_some_and(|c| {
                            c.ring_hash.is_some() || c.maglev.is_some() || c.minimum_ring_size.is_some()
                        }),
                    ),
                    ("connectionPool.tcp.tcpKeepalive", tcp.is_some_and(|t| t.tcp_keepalive.is_some())),
                    (
                        "connectionPool.tcp.maxConnectionDuration",
                        tcp.is_some_and(|t| t.max_connection_duration.is_some()),
                    ),
                    (
                        // 1 (no reuse) and 0 (unlimited) are enforced; other limits are not.
                        "connectionPool.http.maxRequestsPerConnection above 1",
                        http.is_some_and(|h| h.max_requests_per_connection.is_some_and(|n| n > 1)),
                    ),
                    (
                        "connectionPool.http.maxConcurrentStreams",
                        http.is_some_and(|h| h.max_concurrent_streams.is_some()),
                    ),
                    ("connectionPool.http.http2KeepAlive", http.is_some_and(|h| h.http2_keep_alive.is_some())),
                    (
                        "outlierDetection.consecutiveLocalOriginFailures",
                        od.is_some_and(|o| {
                            o.consecutive_local_origin_failures.is_some()
                                || o.split_external_local_origin_errors.is_some()
                        }),
                    ),
                    ("outlierDetection.minHealthPercent", od.is_some_and(|o| o.min_health_percent.is_some())),
                    ("tls.caCrl", tp.tls.as_ref().is_some_and(|t| t.ca_crl.is_some())),
                ];
                out.extend(set.iter().filter(|(_, on)| *on).map(|(f, _)| format!("{p}.{f}")));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(pool: &str) -> Resource {
        let yaml = format!(
            "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {{name: r}}\nspec:\n  host: r\n  trafficPolicy: {{connectionPool: {pool}}}\n"
        );
        let doc = crate::resource::parse_yaml_stream(&yaml).expect("yaml").remove(0);
        match crate::resource::parse_document(doc, "default", 0) {
            Ok(crate::Parsed::Supported(r)) => r,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn enforced_connection_pool_settings_are_not_reported() {
        assert!(unenforced(&rule("{http: {maxRequestsPerConnection: 1}}")).is_empty());
        assert!(unenforced(&rule("{tcp: {idleTimeout: 30s}}")).is_empty());
        let limited = unenforced(&rule("{http: {maxRequestsPerConnection: 5}}"));
        assert!(limited.iter().any(|f| f.contains("maxRequestsPerConnection")), "{limited:?}");
    }
}
