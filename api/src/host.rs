//! Host names, resolved the way Kubernetes DNS and Istio resolve them.

/// The cluster DNS suffix.
pub const DOMAIN_SUFFIX: &str = "svc.cluster.local";

/// The FQDN of a Service.
pub fn service_fqdn(name: &str, namespace: &str) -> String {
    format!("{name}.{namespace}.{DOMAIN_SUFFIX}")
}

/// Resolve a host as written in a resource of `namespace`: a short name (no dot) is a Service
/// in that namespace; anything with a dot is taken as written (Istio's rule).
pub fn resolve(host: &str, namespace: &str) -> String {
    let host = host.trim().to_ascii_lowercase();
    if host.contains('.') || host.starts_with('*') { host } else { service_fqdn(&host, namespace) }
}

/// The names a client in `client_ns` can use for a Service, without port: Kubernetes DNS
/// search paths make `name` work only inside the Service's own namespace.
pub fn service_aliases(name: &str, namespace: &str, client_ns: &str) -> Vec<String> {
    let mut v = vec![service_fqdn(name, namespace), format!("{name}.{namespace}.svc"), format!("{name}.{namespace}")];
    if namespace == client_ns {
        v.push(name.to_string());
    }
    v
}

/// Whether `pattern` (a host from a VirtualService, possibly `*.example.com` or `*`) matches
/// the FQDN `host`.
pub fn matches(pattern: &str, host: &str) -> bool {
    if pattern == "*" {
        return true;
    }
    match pattern.strip_prefix('*') {
        Some(suffix) => host.ends_with(suffix),
        None => pattern == host,
    }
}

/// Split `host[:port]` (as found in a Host header or URI authority).
pub fn split_host_port(authority: &str) -> (&str, Option<u16>) {
    if let Some(rest) = authority.strip_prefix('[') {
        // [v6]:port
        if let Some((h, p)) = rest.split_once(']') {
            let port = p.strip_prefix(':').and_then(|p| p.parse().ok());
            return (h, port);
        }
    }
    match authority.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => match p.parse() {
            Ok(port) => (h, Some(port)),
            Err(_) => (authority, None),
        },
        _ => (authority, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_short_names_in_their_namespace() {
        assert_eq!(resolve("reviews", "default"), "reviews.default.svc.cluster.local");
        assert_eq!(resolve("Reviews.prod.svc.cluster.local", "default"), "reviews.prod.svc.cluster.local");
        assert_eq!(resolve("*.example.com", "default"), "*.example.com");
    }

    #[test]
    fn wildcard_matching() {
        assert!(matches("*", "a.b"));
        assert!(matches("*.default.svc.cluster.local", "reviews.default.svc.cluster.local"));
        assert!(!matches("*.prod.svc.cluster.local", "reviews.default.svc.cluster.local"));
    }

    #[test]
    fn host_port_split() {
        assert_eq!(split_host_port("reviews:9080"), ("reviews", Some(9080)));
        assert_eq!(split_host_port("reviews"), ("reviews", None));
        assert_eq!(split_host_port("[::1]:80"), ("::1", Some(80)));
        assert_eq!(split_host_port("::1"), ("::1", None));
    }
}
