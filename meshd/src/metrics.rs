//! meshd's own metrics, under istiod's names where istiod has one (`pilot_*`, `citadel_*`,
//! `galley_*`), served with `/debug/syncz` on the monitoring port (15014, as istiod).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TypeLabel {
    /// The xDS short name istiod uses: cds, eds, lds, rds.
    pub r#type: &'static str,
}

/// istiod's short name for a config type.
pub fn xds_type(t: mesh_api::proxy_config::ConfigType) -> &'static str {
    use mesh_api::proxy_config::ConfigType;
    match t {
        ConfigType::Routes => "rds",
        ConfigType::Clusters => "cds",
        ConfigType::Endpoints => "eds",
        ConfigType::Listeners => "lds",
    }
}

pub struct Metrics {
    registry: Registry,
    /// Connected proxies.
    pub connected: Gauge,
    pub pushes: Family<TypeLabel, Counter>,
    /// Seconds from noticing a change to the push being written, per push.
    pub push_time: Histogram,
    /// Seconds from a config change to the proxy acknowledging every part it was sent.
    pub convergence: Histogram,
    /// Seconds to translate one world change for every connected proxy.
    pub translate_time: Histogram,
    /// Pushes of a type sent as a delta on what the proxy held.
    pub deltas: Family<TypeLabel, Counter>,
    /// Pushes a proxy rejected (NACK).
    pub rejects: Family<TypeLabel, Counter>,
    /// Config changes (applies and deletes) and registry changes that caused pushes.
    pub config_events: Counter,
    pub validation_passed: Counter,
    pub validation_failed: Counter,
    pub csr: Counter,
    pub issued: Counter,
    pub csr_errors: Counter,
    /// Unix time the newest root expires.
    pub root_expiry: Gauge,
}

fn seconds_buckets() -> impl Iterator<Item = f64> {
    // istiod's convergence buckets, with finer ones below 100 ms (where a healthy mesh
    // converges) and longer ones above 30 s (where a struggling one shows).
    [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 3.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0].into_iter()
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut r = Registry::default();
        let m = Metrics {
            registry: Registry::default(),
            connected: Gauge::default(),
            pushes: Family::default(),
            push_time: Histogram::new([0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 3.0]),
            convergence: Histogram::new(seconds_buckets()),
            translate_time: Histogram::new(seconds_buckets()),
            deltas: Family::default(),
            rejects: Family::default(),
            config_events: Counter::default(),
            validation_passed: Counter::default(),
            validation_failed: Counter::default(),
            csr: Counter::default(),
            issued: Counter::default(),
            csr_errors: Counter::default(),
            root_expiry: Gauge::default(),
        };
        r.register("pilot_xds", "Proxies connected to this meshd", m.connected.clone());
        r.register("pilot_xds_pushes", "Config pushes, by type (cds, eds, lds, rds)", m.pushes.clone());
        r.register("pilot_xds_push_time", "Seconds to translate and write a push", m.push_time.clone());
        r.register(
            "pilot_proxy_convergence_time",
            "Seconds from a config change to the proxy acknowledging all of it",
            m.convergence.clone(),
        );
        r.register(
            "mesh_translate_time",
            "Seconds to translate one config or registry change for every connected proxy",
            m.translate_time.clone(),
        );
        r.register(
            "mesh_xds_deltas",
            "Pushes of a type (rds, eds) sent as the change to what the proxy held",
            m.deltas.clone(),
        );
        r.register("pilot_total_xds_rejects", "Pushes proxies rejected, by type", m.rejects.clone());
        r.register("pilot_config_events", "Config and registry changes", m.config_events.clone());
        r.register("galley_validation_passed", "Applied resources that passed validation", m.validation_passed.clone());
        r.register("galley_validation_failed", "Resources refused by validation", m.validation_failed.clone());
        r.register("citadel_server_csr", "Certificate signing requests received", m.csr.clone());
        r.register("citadel_server_success_cert_issuance", "Workload certificates issued", m.issued.clone());
        r.register("citadel_server_csr_sign_error", "Certificate signing requests refused", m.csr_errors.clone());
        r.register(
            "citadel_server_root_cert_expiry_timestamp",
            "Unix time the newest mesh root expires",
            m.root_expiry.clone(),
        );
        Metrics { registry: r, ..m }
    }

    pub fn encode(&self) -> String {
        let mut out = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}
