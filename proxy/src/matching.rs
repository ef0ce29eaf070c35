//! String matching shared by routing (VirtualService matches) and policy (AuthorizationPolicy
//! values), so neither depends on the other.

use http::header::HeaderMap;
use mesh_api::proxy_config::*;

#[derive(Debug)]
pub enum Matcher {
    Exact(String),
    Prefix(String),
    Regex(regex::Regex),
}

impl Matcher {
    pub fn compile(m: &StringMatcher) -> Result<Matcher, String> {
        Ok(match m {
            StringMatcher::Exact(s) => Matcher::Exact(s.clone()),
            StringMatcher::Prefix(s) => Matcher::Prefix(s.clone()),
            StringMatcher::Regex(r) => Matcher::Regex(
                regex::RegexBuilder::new(&format!("^(?:{r})$"))
                    .size_limit(1 << 20)
                    .build()
                    .map_err(|e| format!("invalid regex {r:?}: {}", e.to_string().lines().last().unwrap_or("")))?,
            ),
        })
    }

    pub fn matches(&self, v: &str) -> bool {
        match self {
            Matcher::Exact(s) => v == s,
            Matcher::Prefix(s) => v.starts_with(s.as_str()),
            Matcher::Regex(r) => r.is_match(v),
        }
    }
}

/// An Istio string value (AuthorizationPolicy): `*` matches anything present, `abc*` is a
/// prefix, `*abc` a suffix, anything else exact; paths also take `{*}` / `{**}` templates.
#[derive(Debug, Clone)]
pub enum Pattern {
    Any,
    Exact(String),
    Prefix(String),
    Suffix(String),
    Template(regex::Regex),
}

impl Pattern {
    pub fn new(v: &str) -> Pattern {
        if v == "*" {
            Pattern::Any
        } else if let Some(p) = v.strip_suffix('*') {
            Pattern::Prefix(p.to_string())
        } else if let Some(s) = v.strip_prefix('*') {
            Pattern::Suffix(s.to_string())
        } else {
            Pattern::Exact(v.to_string())
        }
    }

    /// A path value: templates become anchored regexes.
    pub fn path(v: &str) -> Result<Pattern, String> {
        if !v.contains('{') {
            return Ok(Pattern::new(v));
        }
        let mut re = String::from("^");
        for (i, seg) in v.split('/').enumerate() {
            if i > 0 {
                re.push('/');
            }
            match seg {
                "{*}" => re.push_str("[^/]+"),
                "{**}" => re.push_str(".*"),
                s => re.push_str(&regex::escape(s)),
            }
        }
        re.push('$');
        regex::Regex::new(&re).map(Pattern::Template).map_err(|e| format!("path template {v:?}: {e}"))
    }

    pub fn matches(&self, v: &str) -> bool {
        match self {
            Pattern::Any => true,
            Pattern::Exact(e) => v == e,
            Pattern::Prefix(p) => v.starts_with(p.as_str()),
            Pattern::Suffix(s) => v.ends_with(s.as_str()),
            Pattern::Template(r) => r.is_match(v),
        }
    }

    /// A header value as received: bytes, which need not be ASCII or UTF-8.
    pub fn matches_bytes(&self, v: &[u8]) -> bool {
        match self {
            Pattern::Any => true,
            Pattern::Exact(e) => v == e.as_bytes(),
            Pattern::Prefix(p) => v.starts_with(p.as_bytes()),
            Pattern::Suffix(s) => v.ends_with(s.as_bytes()),
            Pattern::Template(r) => r.is_match(&String::from_utf8_lossy(v)),
        }
    }

    pub fn matches_ignore_case(&self, v: &str) -> bool {
        match self {
            Pattern::Any => true,
            Pattern::Exact(e) => v.eq_ignore_ascii_case(e),
            Pattern::Prefix(p) => v.len() >= p.len() && v.as_bytes()[..p.len()].eq_ignore_ascii_case(p.as_bytes()),
            Pattern::Suffix(s) => {
                v.len() >= s.len() && v.as_bytes()[v.len() - s.len()..].eq_ignore_ascii_case(s.as_bytes())
            }
            Pattern::Template(r) => r.is_match(v),
        }
    }
}

/// Every value of header `name`, joined with `,` as Envoy joins them; None when absent.
pub fn joined_header<'h>(headers: &'h HeaderMap, name: &http::HeaderName) -> Option<std::borrow::Cow<'h, [u8]>> {
    let mut values = headers.get_all(name).iter();
    let first = values.next()?;
    let Some(second) = values.next() else { return Some(std::borrow::Cow::Borrowed(first.as_bytes())) };
    let mut out = first.as_bytes().to_vec();
    for v in std::iter::once(second).chain(values) {
        out.push(b',');
        out.extend_from_slice(v.as_bytes());
    }
    Some(std::borrow::Cow::Owned(out))
}
