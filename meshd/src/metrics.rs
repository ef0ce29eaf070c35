//! meshd's own metrics, under istiod's names where istiod has one (`pilot_*`, `citadel_*`,
//! `galley_*`), served with `/debug/syncz` on the monitoring port (15014, as istiod).

use prometheus_client::encoding::{EncodeLabelSet, EncodeMetric, MetricEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::{MetricType, TypedMetric};
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

/// A counter under istiod's name: `# TYPE pilot_xds_pushes counter` with samples named
/// `pilot_xds_pushes`, no `_total` (istiod's exporter drops the suffix, and Istio's dashboards
/// query the bare names). prometheus-client's `Counter` always appends `_total`, so the value is
/// written as a plain sample under the counter type.
#[derive(Debug, Default, Clone)]
pub struct IstiodCounter(Counter);

impl IstiodCounter {
    pub fn inc(&self) -> u64 {
        self.0.inc()
    }

    pub fn inc_by(&self, v: u64) -> u64 {
        self.0.inc_by(v)
    }

    pub fn get(&self) -> u64 {
        self.0.get()
    }
}

impl TypedMetric for IstiodCounter {
    const TYPE: MetricType = MetricType::Counter;
}

impl EncodeMetric for IstiodCounter {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        encoder.encode_gauge(&self.0.get())
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Counter
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BuildLabels {
    pub component: &'static str,
    pub tag: &'static str,
}

pub struct Metrics {
    registry: Registry,
    /// Connected proxies.
    pub connected: Gauge,
    pub pushes: Family<TypeLabel, IstiodCounter>,
    /// Seconds from noticing a change to the push being written, per push.
    pub push_time: Histogram,
    /// Seconds from a config change to the proxy acknowledging every part it was sent.
    pub convergence: Histogram,
    /// Seconds to translate one world change for every connected proxy.
    pub translate_time: Histogram,
    /// Pushes of a type sent as a delta on what the proxy held.
    pub deltas: Family<TypeLabel, Counter>,
    /// Pushes a proxy rejected (NACK).
    pub rejects: Family<TypeLabel, IstiodCounter>,
    /// Config changes (applies and deletes) and registry changes that caused pushes.
    pub config_events: Counter,
    pub validation_passed: IstiodCounter,
    pub validation_failed: IstiodCounter,
    pub csr: IstiodCounter,
    pub issued: IstiodCounter,
    pub csr_errors: IstiodCounter,
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
            validation_passed: IstiodCounter::default(),
            validation_failed: IstiodCounter::default(),
            csr: IstiodCounter::default(),
            issued: IstiodCounter::default(),
            csr_errors: IstiodCounter::default(),
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
        r.register("citadel_server_csr_count", "Certificate signing requests received", m.csr.clone());
        r.register("citadel_server_success_cert_issuance_count", "Workload certificates issued", m.issued.clone());
        r.register("citadel_server_csr_sign_err_count", "Certificate signing requests refused", m.csr_errors.clone());
        // istiod's build info: which version runs (Istio's control-plane dashboard lists it).
        let build = Family::<BuildLabels, prometheus_client::metrics::gauge::Gauge>::default();
        build.get_or_create(&BuildLabels { component: "pilot", tag: mesh_api::VERSION }).set(1);
        r.register("istio_build", "Build information of this meshd (Istio's istio_build)", build);
        r.register(
            "citadel_server_root_cert_expiry_timestamp",
            "Unix time the newest mesh root expires",
            m.root_expiry.clone(),
        );
        Metrics { registry: r, ..m }
    }

    /// Prometheus text format 0.0.4, as istiod serves it.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        mesh_api::exposition::prometheus_text(&out)
    }
}
