//! Metrics in Prometheus's text format (0.0.4), as Envoy and istiod serve them.
//!
//! prometheus-client writes OpenMetrics, where a counter family `x` has samples `x_total` and
//! the text ends with `# EOF`. Read as Prometheus text (what Envoy and istiod serve, and what
//! `promtool check metrics` reads), `# TYPE x counter` then names a family without samples and
//! `x_total` an untyped one without help. This rewrites a counter's `# HELP` and `# TYPE` lines
//! to the name its samples carry, and drops the OpenMetrics-only `# UNIT` and `# EOF` lines.
//! A counter written under its bare name (istiod's `pilot_xds_pushes`) keeps it.

use std::collections::BTreeMap;

/// One sample line of the Prometheus text format.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// Parse the Prometheus text exposition (comments skipped; label values unescaped).
pub fn parse(text: &str) -> Vec<Sample> {
    text.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()).filter_map(parse_line).collect()
}

fn parse_line(line: &str) -> Option<Sample> {
    let Some(open) = line.find('{') else {
        let (n, v) = line.split_once(' ')?;
        return Some(Sample { name: n.into(), labels: BTreeMap::new(), value: value(v.split_whitespace().next()?)? });
    };
    let bytes = line.as_bytes();
    let mut i = open + 1;
    let mut labels = BTreeMap::new();
    loop {
        while bytes.get(i).is_some_and(|b| *b == b',' || *b == b' ') {
            i += 1;
        }
        match bytes.get(i)? {
            b'}' => {
                i += 1;
                break;
            }
            _ => {
                let eq = line[i..].find('=')? + i;
                let key = line[i..eq].trim().to_string();
                if bytes.get(eq + 1) != Some(&b'"') {
                    return None;
                }
                i = eq + 2;
                let mut val = String::new();
                let mut chars = line[i..].char_indices();
                loop {
                    match chars.next()? {
                        (_, '\\') => {
                            let (_, n) = chars.next()?;
                            val.push(if n == 'n' { '\n' } else { n });
                        }
                        (j, '"') => {
                            i += j + 1;
                            break;
                        }
                        (_, c) => val.push(c),
                    }
                }
                labels.insert(key, val);
            }
        }
    }
    let v = line[i..].split_whitespace().next()?;
    Some(Sample { name: line[..open].into(), labels, value: value(v)? })
}

/// A sample value (`+Inf` and `-Inf` included).
pub fn value(s: &str) -> Option<f64> {
    match s.trim() {
        "+Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        v => v.parse().ok(),
    }
}

/// A float ordered by `total_cmp`, to key histogram buckets by their upper bound.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub struct OrdF64(pub f64);
impl Eq for OrdF64 {}
#[allow(clippy::derive_ord_xor_partial_ord)]
impl Ord for OrdF64 {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&o.0)
    }
}

/// Istio's request metrics of one workload (or edge), folded from its samples: the figures
/// `mesh top` and `mesh dashboard` show and a Rollout is judged on.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RequestTotals {
    pub requests: f64,
    /// Answered with a 5xx, or not answered (code 0).
    pub errors: f64,
    /// Arrived over mutual TLS.
    pub mtls: f64,
    /// Request duration histogram (ms): upper bound -> cumulative count.
    pub buckets: BTreeMap<OrdF64, f64>,
}

impl RequestTotals {
    /// Whether a sample is one of the metrics these fold (`add` takes it).
    pub fn folds(s: &Sample) -> bool {
        matches!(s.name.as_str(), "istio_requests_total" | "istio_request_duration_milliseconds_bucket")
    }

    /// Fold one sample in (others are ignored).
    pub fn add(&mut self, s: &Sample) {
        let label = |k: &str| s.labels.get(k).map_or("", String::as_str);
        match s.name.as_str() {
            "istio_requests_total" => {
                self.requests += s.value;
                if label("response_code").starts_with('5') || label("response_code") == "0" {
                    self.errors += s.value;
                }
                if label("connection_security_policy") == "mutual_tls" {
                    self.mtls += s.value;
                }
            }
            "istio_request_duration_milliseconds_bucket" => {
                let le = s.labels.get("le").and_then(|v| value(v)).unwrap_or(f64::INFINITY);
                *self.buckets.entry(OrdF64(le)).or_default() += s.value;
            }
            _ => {}
        }
    }

    /// Add another's counters to these (the same workload read from two proxies, say).
    pub fn merge(&mut self, other: &RequestTotals) {
        self.requests += other.requests;
        self.errors += other.errors;
        self.mtls += other.mtls;
        for (le, n) in &other.buckets {
            *self.buckets.entry(*le).or_default() += n;
        }
    }

    /// What these counters grew by since `before`, each at least 0.
    pub fn since(&self, before: &RequestTotals) -> RequestTotals {
        RequestTotals {
            requests: (self.requests - before.requests).max(0.0),
            errors: (self.errors - before.errors).max(0.0),
            mtls: (self.mtls - before.mtls).max(0.0),
            buckets: self
                .buckets
                .iter()
                .map(|(le, n)| (*le, (n - before.buckets.get(le).copied().unwrap_or(0.0)).max(0.0)))
                .collect(),
        }
    }

    /// The q-quantile (0..1) of the duration histogram, interpolated inside its bucket as
    /// Prometheus' `histogram_quantile` does.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let total = *self.buckets.values().last()?;
        if total <= 0.0 {
            return None;
        }
        let rank = q * total;
        let (mut lower, mut below) = (0.0, 0.0);
        for (le, count) in &self.buckets {
            if *count >= rank {
                if le.0.is_infinite() {
                    return Some(lower);
                }
                let in_bucket = count - below;
                let frac = if in_bucket > 0.0 { (rank - below) / in_bucket } else { 1.0 };
                return Some(lower + (le.0 - lower) * frac);
            }
            lower = le.0;
            below = *count;
        }
        Some(lower)
    }
}

/// `openmetrics` (prometheus-client's text encoding) as Prometheus text format 0.0.4.
pub fn prometheus_text(openmetrics: &str) -> String {
    let lines: Vec<&str> = openmetrics.lines().collect();
    let mut out = String::with_capacity(openmetrics.len() + 256);
    for (i, line) in lines.iter().enumerate() {
        if *line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let Some((kind, rest)) = line
            .strip_prefix("# HELP ")
            .map(|r| ("HELP", r))
            .or_else(|| line.strip_prefix("# TYPE ").map(|r| ("TYPE", r)))
        else {
            out.push_str(line);
            out.push('\n');
            continue;
        };
        let name = rest.split(' ').next().unwrap_or("");
        let suffixed = format!("{name}_total");
        if counter_sampled_as(&lines[i..], name, &suffixed) {
            out.push_str(&format!("# {kind} {suffixed}{}\n", &rest[name.len()..]));
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// Whether the family `name` whose descriptor starts `rest` is a counter whose first sample is
/// named `suffixed`.
fn counter_sampled_as(rest: &[&str], name: &str, suffixed: &str) -> bool {
    let mut is_counter = false;
    for line in rest {
        if let Some(descriptor) = line.strip_prefix("# ") {
            let mut parts = descriptor.split(' ');
            let (kind, family, value) = (parts.next(), parts.next(), parts.next());
            if family != Some(name) {
                return false;
            }
            if kind == Some("TYPE") {
                is_counter = value == Some("counter");
            }
            continue;
        }
        let sample = line.split(['{', ' ']).next().unwrap_or("");
        return is_counter && sample == suffixed;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_named_as_their_samples_and_the_rest_is_unchanged() {
        let om = "# HELP istio_requests Requests.\n# TYPE istio_requests counter\n\
                  istio_requests_total{a=\"1\"} 5\n\
                  # HELP pilot_xds_pushes Pushes.\n# TYPE pilot_xds_pushes counter\npilot_xds_pushes{type=\"cds\"} 3\n\
                  # HELP d Duration.\n# TYPE d histogram\n# UNIT d seconds\nd_bucket{le=\"+Inf\"} 1\nd_sum 0.5\nd_count 1\n\
                  # HELP empty Nothing yet.\n# TYPE empty counter\n\
                  # HELP g A gauge.\n# TYPE g gauge\ng 1\n# EOF\n";
        let text = prometheus_text(om);
        assert_eq!(
            text,
            "# HELP istio_requests_total Requests.\n# TYPE istio_requests_total counter\n\
             istio_requests_total{a=\"1\"} 5\n\
             # HELP pilot_xds_pushes Pushes.\n# TYPE pilot_xds_pushes counter\npilot_xds_pushes{type=\"cds\"} 3\n\
             # HELP d Duration.\n# TYPE d histogram\nd_bucket{le=\"+Inf\"} 1\nd_sum 0.5\nd_count 1\n\
             # HELP empty Nothing yet.\n# TYPE empty counter\n\
             # HELP g A gauge.\n# TYPE g gauge\ng 1\n"
        );
    }
}
