//! A route's match conditions and header operations, compiled.

use http::header::HeaderName;
use mesh_api::proxy_config::*;

use crate::matching::Matcher;

/// What a route match looks at.
pub struct RequestView<'a> {
    pub method: &'a http::Method,
    pub path: &'a str,
    pub query: Option<&'a str>,
    /// Host and port as the request named them.
    pub authority: &'a str,
    pub scheme: &'a str,
    pub headers: &'a http::HeaderMap,
}

#[derive(Debug)]
pub struct CompiledMatch {
    pub uri: Option<Matcher>,
    pub ignore_uri_case: bool,
    pub method: Option<Matcher>,
    pub authority: Option<Matcher>,
    pub scheme: Option<Matcher>,
    pub headers: Vec<(HeaderName, Option<Matcher>)>,
    pub without_headers: Vec<(HeaderName, Option<Matcher>)>,
    pub query_params: Vec<(String, Option<Matcher>)>,
}

fn header_matchers(ms: &[HeaderMatcher]) -> Result<Vec<(HeaderName, Option<Matcher>)>, String> {
    ms.iter()
        .map(|HeaderMatcher { name, value }| {
            let n = HeaderName::from_bytes(name.as_bytes()).map_err(|_| format!("invalid header name {name:?}"))?;
            Ok((n, value.as_ref().map(Matcher::compile).transpose()?))
        })
        .collect()
}

/// Envoy's route header match: the values of a repeated header joined with `,`; a value that
/// is not UTF-8 is matched with its invalid bytes replaced (it can still match a prefix).
fn header_hit(headers: &http::HeaderMap, name: &HeaderName, m: &Option<Matcher>) -> bool {
    match (crate::matching::joined_header(headers, name), m) {
        (None, _) => false,
        (Some(_), None) => true,
        (Some(v), Some(m)) => m.matches(&String::from_utf8_lossy(&v)),
    }
}

impl CompiledMatch {
    pub fn compile(m: &RouteMatch) -> Result<Self, String> {
        let uri = match (&m.uri, m.ignore_uri_case) {
            (Some(StringMatcher::Exact(s)), true) => Some(Matcher::Exact(s.to_ascii_lowercase())),
            (Some(StringMatcher::Prefix(s)), true) => Some(Matcher::Prefix(s.to_ascii_lowercase())),
            (Some(StringMatcher::Regex(r)), true) => {
                Some(Matcher::compile(&StringMatcher::Regex(format!("(?i:{r})")))?)
            }
            (other, _) => other.as_ref().map(Matcher::compile).transpose()?,
        };
        Ok(CompiledMatch {
            uri,
            ignore_uri_case: m.ignore_uri_case,
            method: m.method.as_ref().map(Matcher::compile).transpose()?,
            authority: m.authority.as_ref().map(Matcher::compile).transpose()?,
            scheme: m.scheme.as_ref().map(Matcher::compile).transpose()?,
            headers: header_matchers(&m.headers)?,
            without_headers: header_matchers(&m.without_headers)?,
            query_params: m
                .query_params
                .iter()
                .map(|q| Ok((q.name.clone(), q.value.as_ref().map(Matcher::compile).transpose()?)))
                .collect::<Result<_, String>>()?,
        })
    }

    pub fn matches(&self, r: &RequestView<'_>) -> bool {
        if let Some(m) = &self.uri {
            let hit = if self.ignore_uri_case && !matches!(m, Matcher::Regex(_)) {
                m.matches(&r.path.to_ascii_lowercase())
            } else {
                m.matches(r.path)
            };
            if !hit {
                return false;
            }
        }
        let checks = [(&self.method, r.method.as_str()), (&self.authority, r.authority), (&self.scheme, r.scheme)];
        if checks.iter().any(|(m, v)| m.as_ref().is_some_and(|m| !m.matches(v))) {
            return false;
        }
        if !self.headers.iter().all(|(name, m)| header_hit(r.headers, name, m)) {
            return false;
        }
        if self.without_headers.iter().any(|(name, m)| header_hit(r.headers, name, m)) {
            return false;
        }
        self.query_params.iter().all(|(name, m)| {
            let value = r.query.unwrap_or("").split('&').find_map(|pair| {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                (k == name).then_some(v)
            });
            match (value, m) {
                (None, _) => false,
                (Some(_), None) => true,
                (Some(v), Some(m)) => m.matches(v),
            }
        })
    }

    /// The prefix a `rewrite.uri` replaces: the exact path, the matched prefix, or `/`.
    pub fn rewritable_prefix(&self) -> Option<&str> {
        match &self.uri {
            Some(Matcher::Exact(s)) | Some(Matcher::Prefix(s)) => Some(s),
            Some(Matcher::Regex(_)) => None,
            None => Some("/"),
        }
    }
}

/// A replacement in RE2 / Envoy form (`\\1` for group 1) in the regex crate's form (`${1}`),
/// with literal `$` escaped.
pub(crate) fn re2_replacement(with: &str) -> String {
    let mut out = String::with_capacity(with.len() + 4);
    let mut chars = with.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek().is_some_and(char::is_ascii_digit) => {
                out.push_str("${");
                if let Some(d) = chars.next() {
                    out.push(d);
                }
                out.push('}');
            }
            '$' => out.push_str("$$"),
            c => out.push(c),
        }
    }
    out
}

/// Header changes, compiled.
#[derive(Debug, Default)]
pub struct CompiledOps {
    pub set: Vec<(HeaderName, http::HeaderValue)>,
    pub add: Vec<(HeaderName, http::HeaderValue)>,
    pub remove: Vec<HeaderName>,
}

impl CompiledOps {
    pub fn compile(ops: &HeaderOps) -> Result<CompiledOps, String> {
        let pair = |(k, v): &(String, String)| {
            Ok((
                HeaderName::from_bytes(k.as_bytes()).map_err(|_| format!("invalid header name {k:?}"))?,
                http::HeaderValue::from_str(v).map_err(|_| format!("invalid value for header {k}"))?,
            ))
        };
        Ok(CompiledOps {
            set: ops.set.iter().map(pair).collect::<Result<_, String>>()?,
            add: ops.add.iter().map(pair).collect::<Result<_, String>>()?,
            remove: ops
                .remove
                .iter()
                .map(|k| HeaderName::from_bytes(k.as_bytes()).map_err(|_| format!("invalid header name {k:?}")))
                .collect::<Result<_, String>>()?,
        })
    }

    pub fn is_empty(&self) -> bool {
        self.set.is_empty() && self.add.is_empty() && self.remove.is_empty()
    }

    pub fn apply(&self, h: &mut http::HeaderMap) {
        for (k, v) in &self.set {
            h.insert(k.clone(), v.clone());
        }
        for (k, v) in &self.add {
            h.append(k.clone(), v.clone());
        }
        for k in &self.remove {
            h.remove(k);
        }
    }
}

#[derive(Debug)]
pub struct CompiledRewrite {
    pub uri: Option<String>,
    pub authority: Option<http::HeaderValue>,
    pub uri_regex: Option<(regex::Regex, String)>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn re2_group_references_become_regex_crate_ones() {
        assert_eq!(re2_replacement(r"/v\1/items/\2$"), "/v${1}/items/${2}$$");
        let re = regex::Regex::new("^/service/([^/]+)(/.*)$").expect("re");
        assert_eq!(re.replace_all("/service/a/b", re2_replacement(r"\2/instance/\1").as_str()), "/b/instance/a");
    }
}
