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

/// istiod's config and registry events: what changed (`VirtualService`, `Pods`) and how.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EventLabels {
    pub r#type: &'static str,
    /// add, update or delete
    pub event: &'static str,
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
    /// Config changes by kind and event (istiod's `pilot_k8s_cfg_events`).
    pub cfg_events: Family<EventLabels, IstiodCounter>,
    /// Workloads joining and leaving (istiod's `pilot_k8s_reg_events`, type `Pods`).
    pub reg_events: Family<EventLabels, IstiodCounter>,
    /// What caused pushes: `config` or `endpoint` (istiod's `pilot_push_triggers`).
    pub push_triggers: Family<TypeLabel, IstiodCounter>,
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
            cfg_events: Family::default(),
            reg_events: Family::default(),
            push_triggers: Family::default(),
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
        r.register("pilot_k8s_cfg_events", "Config changes, by kind and event", m.cfg_events.clone());
        r.register("pilot_k8s_reg_events", "Workloads joining and leaving, by event", m.reg_events.clone());
        r.register("pilot_push_triggers", "What caused config pushes", m.push_triggers.clone());
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

impl Metrics {
    /// Count the config events between two sets of resources, and one push trigger for them.
    pub fn config_changed(&self, before: &crate::store::Resources, after: &crate::store::Resources) {
        let mut any = false;
        for (key, r) in after {
            let event = match before.get(key) {
                None => "add",
                Some(old) if old.same_content(r) => continue,
                Some(_) => "update",
            };
            self.cfg_events.get_or_create(&EventLabels { r#type: key.kind.as_str(), event }).inc();
            any = true;
        }
        for key in before.keys().filter(|k| !after.contains_key(*k)) {
            self.cfg_events.get_or_create(&EventLabels { r#type: key.kind.as_str(), event: "delete" }).inc();
            any = true;
        }
        if any {
            self.push_triggers.get_or_create(&TypeLabel { r#type: "config" }).inc();
        }
    }

    /// A workload joined (`add`) or left (`delete`) the registry.
    pub fn workload_event(&self, event: &'static str) {
        self.reg_events.get_or_create(&EventLabels { r#type: "Pods", event }).inc();
        self.push_triggers.get_or_create(&TypeLabel { r#type: "endpoint" }).inc();
    }
}
