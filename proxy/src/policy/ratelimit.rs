//! LocalRateLimit: token buckets per route rule and for the workload.

use crate::now_ms;

/// A token bucket (Envoy's local rate limit).
#[derive(Debug)]
pub struct TokenBucket {
    cfg: mesh_api::proxy_config::Bucket,
    /// (tokens left, when the last fill happened, in ms since start)
    state: std::sync::Mutex<(u64, u64)>,
}

impl TokenBucket {
    pub fn new(cfg: &mesh_api::proxy_config::Bucket) -> TokenBucket {
        TokenBucket { cfg: cfg.clone(), state: std::sync::Mutex::new((cfg.max_tokens, now_ms())) }
    }

    /// Take a token; false when the bucket is empty.
    pub fn take(&self) -> bool {
        let now = now_ms();
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let fills = now.saturating_sub(s.1) / self.cfg.fill_interval_ms;
        if fills > 0 {
            s.0 = s.0.saturating_add(fills.saturating_mul(self.cfg.tokens_per_fill)).min(self.cfg.max_tokens);
            s.1 += fills * self.cfg.fill_interval_ms;
        }
        if s.0 == 0 {
            return false;
        }
        s.0 -= 1;
        true
    }
}

/// The LocalRateLimit of this workload: route buckets first, then the workload-wide one.
#[derive(Debug)]
pub struct RateLimiter {
    pub policy: String,
    bucket: Option<TokenBucket>,
    routes: Vec<(mesh_api::proxy_config::RateLimitRule, TokenBucket)>,
}

impl RateLimiter {
    pub fn new(r: &mesh_api::proxy_config::RateLimit) -> RateLimiter {
        RateLimiter {
            policy: r.policy.clone(),
            bucket: r.bucket.as_ref().map(TokenBucket::new),
            routes: r.routes.iter().map(|rt| (rt.clone(), TokenBucket::new(&rt.bucket))).collect(),
        }
    }

    /// May this request go on? A request matching a route rule uses that rule's bucket only.
    pub fn allow(&self, method: &str, path: &str, port: u16) -> bool {
        let rule = self.routes.iter().find(|(r, _)| {
            r.path_prefix.as_deref().is_none_or(|p| path.starts_with(p))
                && r.method.as_deref().is_none_or(|m| m.eq_ignore_ascii_case(method))
                && r.port.is_none_or(|p| p == port)
        });
        match (rule, &self.bucket) {
            (Some((_, b)), _) => b.take(),
            (None, Some(b)) => b.take(),
            (None, None) => true,
        }
    }
}
