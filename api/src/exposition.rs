//! Metrics in Prometheus's text format (0.0.4), as Envoy and istiod serve them.
//!
//! prometheus-client writes OpenMetrics, where a counter family `x` has samples `x_total` and
//! the text ends with `# EOF`. Read as Prometheus text (what Envoy and istiod serve, and what
//! `promtool check metrics` reads), `# TYPE x counter` then names a family without samples and
//! `x_total` an untyped one without help. This rewrites a counter's `# HELP` and `# TYPE` lines
//! to the name its samples carry, and drops the OpenMetrics-only `# UNIT` and `# EOF` lines.
//! A counter written under its bare name (istiod's `pilot_xds_pushes`) keeps it.

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
