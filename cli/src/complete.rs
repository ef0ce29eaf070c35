//! Shell completion, dynamic (clap_complete's engine): the shell script `mesh completion SHELL`
//! prints calls back into `mesh` with `COMPLETE=SHELL`, and `mesh` answers from its command
//! tree and, for kinds, resource names and proxy names, from the running mesh (meshd in
//! MESH_HOME; quietly nothing when it is not running). Paths complete as the engine does it:
//! directories end in `/` and take no trailing space.

use std::ffi::OsStr;
use std::time::Duration;

use clap_complete::CompletionCandidate;
use mesh_api::Kind;

/// How long a completion may wait for meshd.
const MESHD_TIMEOUT: Duration = Duration::from_millis(1500);

/// The words on the command line being completed (after `mesh -- `), the binary first.
fn words() -> Vec<String> {
    let all: Vec<String> = std::env::args().collect();
    match all.iter().position(|w| w == "--") {
        Some(i) => all[i + 1..].to_vec(),
        None => Vec::new(),
    }
}

/// The positional words after `command` (flags and their values left out), up to the word
/// being completed (the last).
fn positionals_after(words: &[String], command: &str) -> Vec<String> {
    let Some(start) = words.iter().position(|w| w == command) else { return Vec::new() };
    let typed = &words[start + 1..words.len().saturating_sub(1)];
    let mut out = Vec::new();
    let mut skip_value = false;
    for w in typed {
        if skip_value {
            skip_value = false;
            continue;
        }
        if w.starts_with('-') {
            // Flags that take a value as the next word.
            skip_value = !w.contains('=')
                && ["-n", "--namespace", "-o", "--output", "-l", "--selector", "-f", "--filename", "--context"]
                    .contains(&w.as_str());
            continue;
        }
        out.push(w.clone());
    }
    out
}

/// The namespace the command line names (`-n`, `--namespace`), else MESH_NAMESPACE, else
/// `default`.
fn namespace(words: &[String]) -> String {
    for (i, w) in words.iter().enumerate() {
        if let Some(ns) = w.strip_prefix("--namespace=") {
            return ns.to_string();
        }
        if (w == "-n" || w == "--namespace")
            && let Some(ns) = words.get(i + 1)
        {
            return ns.clone();
        }
    }
    std::env::var("MESH_NAMESPACE").unwrap_or_else(|_| "default".into())
}

fn matching(current: &OsStr, values: impl IntoIterator<Item = String>) -> Vec<CompletionCandidate> {
    let prefix = current.to_string_lossy();
    let mut v: Vec<String> = values.into_iter().filter(|v| v.starts_with(prefix.as_ref())).collect();
    v.sort();
    v.dedup();
    v.into_iter().map(CompletionCandidate::new).collect()
}

/// Ask the local meshd; None when it is not running or too slow.
fn ask<T: serde::de::DeserializeOwned>(path: &str) -> Option<T> {
    let client = crate::client::MeshdClient::from_home(&meshd::Home::from_env()).ok()?;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
    rt.block_on(async { tokio::time::timeout(MESHD_TIMEOUT, client.get::<T>(path)).await.ok()?.ok() })
}

/// The kinds `get` and `delete` take (plural and short names, as kubectl's).
pub fn kinds(current: &OsStr) -> Vec<CompletionCandidate> {
    let mut names: Vec<String> = Kind::ALL.iter().map(|k| k.plural().to_string()).collect();
    names.extend(["svc", "vs", "dr", "se", "gw", "pa", "ap", "ra", "rl", "workloads"].map(String::from));
    matching(current, names)
}

/// Names of resources of `kind` in the command line's namespace.
fn resource_names(current: &OsStr, kind: &str, words: &[String]) -> Vec<CompletionCandidate> {
    if matches!(kind, "workload" | "workloads" | "proxies") {
        return proxy_names(current);
    }
    let Some(kind) = Kind::from_cli(kind) else { return Vec::new() };
    let path =
        format!("{}?kind={}&namespace={}", mesh_api::control::RESOURCES_PATH, kind.qualified(), namespace(words));
    let items: Vec<mesh_api::Resource> = ask(&path).unwrap_or_default();
    matching(current, items.iter().map(|r| r.name().to_string()))
}

/// `get KIND NAME`: the names of the kind typed.
pub fn get_name(current: &OsStr) -> Vec<CompletionCandidate> {
    let words = words();
    match positionals_after(&words, "get").first() {
        Some(kind) => resource_names(current, kind, &words),
        None => Vec::new(),
    }
}

/// `delete KIND NAME...`: a kind first, then names of that kind.
pub fn delete_args(current: &OsStr) -> Vec<CompletionCandidate> {
    let words = words();
    match positionals_after(&words, "delete").first() {
        Some(kind) => resource_names(current, kind, &words),
        None => kinds(current),
    }
}

/// Connected proxies, as `NAME` in the command line's namespace and `NAME.NAMESPACE`.
pub fn proxy_names(current: &OsStr) -> Vec<CompletionCandidate> {
    let words = words();
    let ns = namespace(&words);
    let proxies: Vec<mesh_api::protocol::ProxyStatus> = ask(mesh_api::control::PROXIES_PATH).unwrap_or_default();
    let names = proxies.iter().flat_map(|p| {
        let w = &p.workload;
        let short = (w.namespace == ns).then(|| w.name.clone());
        short.into_iter().chain([format!("{}.{}", w.name, w.namespace)])
    });
    matching(current, names.collect::<Vec<_>>())
}

/// `x describe pod NAME` or `x describe service NAME`.
pub fn describe_name(current: &OsStr) -> Vec<CompletionCandidate> {
    let words = words();
    match positionals_after(&words, "describe").first().map(String::as_str) {
        Some("pod" | "po") => proxy_names(current),
        Some(_) => resource_names(current, "services", &words),
        None => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positionals_skip_flags_and_their_values() {
        let w: Vec<String> =
            ["mesh", "-n", "prod", "delete", "-n", "prod", "vs", "--ignore-not-found", "rev"].map(String::from).into();
        assert_eq!(positionals_after(&w, "delete"), ["vs"]);
        assert_eq!(namespace(&w), "prod");
        let w: Vec<String> = ["mesh", "get", "--namespace=x", ""].map(String::from).into();
        assert!(positionals_after(&w, "get").is_empty());
        assert_eq!(namespace(&w), "x");
    }
}
