//! What every listener does first with a request, before routing, policy and metrics: one
//! authority (the URI's in absolute form, else the one Host header), a method in the case it
//! is matched in, and the path normalized as the mesh says (Istio's `pathNormalization`,
//! Envoy's `normalize_path`, `merge_slashes` and `path_with_escaped_slashes_action`).
//!
//! The normalized request is the one forwarded, so the path a policy judged is the path the
//! app receives, and a later hop (which normalizes again) sees the same path: normalization
//! is idempotent.

use std::borrow::Cow;

use http::header::{self, HeaderValue};
use http::{Request, StatusCode, Uri};
use mesh_api::proxy_config::{EscapedSlashes, Normalization, PathNormalization};

/// Why a path cannot be forwarded as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathOutcome {
    /// Forward it (normalized).
    Forward,
    /// It had `%2F` / `%5C` and the mesh refuses those (400).
    Rejected,
    /// It had `%2F` / `%5C`: ask the client to use the decoded path (307).
    Redirect,
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

const HEX_UPPER: &[u8; 16] = b"0123456789ABCDEF";

/// Whether `path` may need work under `cfg`: anything percent-encoded, a backslash, a segment
/// starting with a dot, or (when merging) two slashes in a row. Most paths have none of these
/// and are returned as they are without a copy.
fn needs_work(path: &[u8], cfg: PathNormalization) -> bool {
    let merge = matches!(cfg.normalization, Normalization::MergeSlashes | Normalization::DecodeAndMergeSlashes);
    if cfg.normalization == Normalization::None {
        return cfg.escaped_slashes != EscapedSlashes::KeepUnchanged && path.contains(&b'%');
    }
    path.iter().any(|b| matches!(b, b'%' | b'\\')) || path.windows(2).any(|w| w == b"/." || (merge && w == b"//"))
}

/// Normalize a path (without its query). Paths that do not start with `/` (`*` in
/// `OPTIONS *`) are left alone.
pub fn normalize_path(path: &str, cfg: PathNormalization) -> (Cow<'_, str>, PathOutcome) {
    let bytes = path.as_bytes();
    if !bytes.starts_with(b"/") || !needs_work(bytes, cfg) {
        return (Cow::Borrowed(path), PathOutcome::Forward);
    }
    let normalize = cfg.normalization != Normalization::None;
    let decode_slashes = cfg.normalization == Normalization::DecodeAndMergeSlashes
        || matches!(cfg.escaped_slashes, EscapedSlashes::UnescapeAndForward | EscapedSlashes::UnescapeAndRedirect);
    // 1. Escapes: unreserved characters decoded, `%2F`/`%5C` as the mesh says, other escapes
    //    upper-cased, and a `%` that starts no escape written as `%25` (so that decoding can
    //    never make a new escape, which keeps the result stable under a second pass).
    let mut out: Vec<u8> = Vec::with_capacity(bytes.len());
    let mut had_escaped_slash = false;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' {
            if let (Some(h), Some(l)) = (bytes.get(i + 1).and_then(|&c| hex(c)), bytes.get(i + 2).and_then(|&c| hex(c)))
            {
                let v = h * 16 + l;
                if v == b'/' || v == b'\\' {
                    had_escaped_slash = true;
                    if cfg.escaped_slashes == EscapedSlashes::RejectRequest
                        && cfg.normalization != Normalization::DecodeAndMergeSlashes
                    {
                        return (Cow::Borrowed(path), PathOutcome::Rejected);
                    }
                    if decode_slashes {
                        out.push(if normalize { b'/' } else { v });
                    } else {
                        out.extend_from_slice(&[b'%', HEX_UPPER[usize::from(h)], HEX_UPPER[usize::from(l)]]);
                    }
                } else if normalize && is_unreserved(v) {
                    out.push(v);
                } else if normalize {
                    out.extend_from_slice(&[b'%', HEX_UPPER[usize::from(h)], HEX_UPPER[usize::from(l)]]);
                } else {
                    out.extend_from_slice(&bytes[i..i + 3]);
                }
                i += 3;
                continue;
            }
            out.extend_from_slice(if normalize { b"%25" } else { b"%" });
        } else if b == b'\\' && normalize {
            out.push(b'/');
        } else {
            out.push(b);
        }
        i += 1;
    }
    // 2. Dot segments (RFC 3986 §5.2.4): never above the root.
    if normalize {
        out = remove_dot_segments(&out);
    }
    // 3. Runs of slashes.
    if matches!(cfg.normalization, Normalization::MergeSlashes | Normalization::DecodeAndMergeSlashes) {
        out.dedup_by(|a, b| *a == b'/' && *b == b'/');
    }
    let outcome = if had_escaped_slash
        && cfg.escaped_slashes == EscapedSlashes::UnescapeAndRedirect
        && cfg.normalization != Normalization::DecodeAndMergeSlashes
    {
        PathOutcome::Redirect
    } else {
        PathOutcome::Forward
    };
    // Only ASCII was added or removed, so a path that was UTF-8 still is.
    match String::from_utf8(out) {
        Ok(s) if s == path => (Cow::Borrowed(path), outcome),
        Ok(s) => (Cow::Owned(s), outcome),
        Err(_) => (Cow::Borrowed(path), PathOutcome::Rejected),
    }
}

/// Remove `.` and `..` segments from a path that starts with `/`.
fn remove_dot_segments(path: &[u8]) -> Vec<u8> {
    let mut segments: Vec<&[u8]> = Vec::new();
    let mut trailing_slash = false;
    let mut parts = path[1..].split(|&b| b == b'/').peekable();
    while let Some(seg) = parts.next() {
        let last = parts.peek().is_none();
        match seg {
            b"." => trailing_slash = last,
            b".." => {
                segments.pop();
                trailing_slash = last;
            }
            s => {
                segments.push(s);
                trailing_slash = false;
            }
        }
    }
    let mut out = Vec::with_capacity(path.len());
    for s in &segments {
        out.push(b'/');
        out.extend_from_slice(s);
    }
    if out.is_empty() || trailing_slash {
        out.push(b'/');
    }
    out
}

/// A request the proxy refuses before doing anything with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub status: StatusCode,
    pub body: &'static str,
    /// For a redirect: where to.
    pub location: Option<String>,
}

impl Refusal {
    fn bad(body: &'static str) -> Refusal {
        Refusal { status: StatusCode::BAD_REQUEST, body, location: None }
    }
}

/// Headers of Istio's metadata exchange that must never reach an app or a peer from a caller
/// (our own exchange uses `x-mesh-peer`, which each hop sets itself).
const FOREIGN_PEER_HEADERS: [&str; 2] = ["x-envoy-peer-metadata", "x-envoy-peer-metadata-id"];

/// Prepare a request on any listener. Err: the local reply to send instead.
pub fn prepare<B>(req: &mut Request<B>, cfg: PathNormalization) -> Result<(), Refusal> {
    prepare_with(req, cfg, false)
}

/// `prepare` for a request from a mesh peer (an authenticated proxy): its Host header is the
/// caller's authority and wins over the URI's, which names the endpoint it connected to.
pub fn prepare_from_peer<B>(req: &mut Request<B>, cfg: PathNormalization) -> Result<(), Refusal> {
    prepare_with(req, cfg, true)
}

fn prepare_with<B>(req: &mut Request<B>, cfg: PathNormalization, host_wins: bool) -> Result<(), Refusal> {
    // A method is matched by policy exactly as written; a lower-case `delete` would pass a
    // DENY on DELETE and still be a DELETE to many apps. Envoy refuses such methods too.
    if req.method().as_str().bytes().any(|b| b.is_ascii_lowercase()) {
        return Err(Refusal::bad("invalid method: methods are case-sensitive tokens (use upper case)\n"));
    }
    // One authority: two Host headers (RFC 9112 §3.2) are refused; in absolute form (and in
    // HTTP/2, `:authority`) the URI's authority wins over Host (RFC 9112 §3.2.2) and is made the
    // Host, so routing, policy and the app all see the same one.
    let mut hosts = req.headers().get_all(header::HOST).iter();
    let first = hosts.next().cloned();
    if hosts.next().is_some() {
        return Err(Refusal::bad("more than one Host header\n"));
    }
    let authority = req.uri().authority().filter(|_| !(host_wins && first.is_some()));
    if let Some(authority) = authority {
        if authority.as_str().contains('@') {
            return Err(Refusal::bad("user information is not allowed in the request target\n"));
        }
        if first.as_ref().is_none_or(|h| h.as_bytes() != authority.as_str().as_bytes()) {
            let v = HeaderValue::from_str(authority.as_str()).map_err(|_| Refusal::bad("invalid authority\n"))?;
            req.headers_mut().insert(header::HOST, v);
        }
    } else if let Some(h) = &first {
        let valid = !h.is_empty()
            && !h.as_bytes().contains(&b'@')
            && http::uri::Authority::try_from(h.as_bytes()).is_ok_and(|a| a.as_str().len() == h.len());
        if !valid {
            return Err(Refusal::bad("invalid Host header\n"));
        }
    }
    for name in FOREIGN_PEER_HEADERS {
        req.headers_mut().remove(name);
    }
    let path = req.uri().path();
    let (normalized, outcome) = normalize_path(path, cfg);
    match outcome {
        PathOutcome::Rejected => return Err(Refusal::bad("path with escaped slashes (%2F, %5C) refused\n")),
        PathOutcome::Redirect => {
            let location = match req.uri().query() {
                Some(q) => format!("{normalized}?{q}"),
                None => normalized.into_owned(),
            };
            return Err(Refusal { status: StatusCode::TEMPORARY_REDIRECT, body: "", location: Some(location) });
        }
        PathOutcome::Forward => {}
    }
    if let Cow::Owned(p) = normalized {
        let pq = match req.uri().query() {
            Some(q) => format!("{p}?{q}"),
            None => p,
        };
        let mut parts = req.uri().clone().into_parts();
        parts.path_and_query = Some(pq.parse().map_err(|_| Refusal::bad("invalid request path\n"))?);
        *req.uri_mut() = Uri::from_parts(parts).map_err(|_| Refusal::bad("invalid request path\n"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
