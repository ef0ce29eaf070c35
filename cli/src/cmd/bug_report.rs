//! `mesh bug-report`: one `.tar.gz` with what a maintainer asks for first, as `istioctl
//! bug-report`: versions, meshd's log, the config (as YAML) and the workloads, the analysis,
//! every proxy's sync state, config dump, certificates and metrics. Private keys and tokens
//! are redacted from every file; what could not be collected is listed in `README.txt`
//! instead of failing the report. Both platforms (config through `store`, meshd and proxies
//! through `reach`).

use std::io::Write;
use std::path::PathBuf;

use crate::Ctx;
use crate::cli::{BugReportArgs, Platform};
use crate::error::{CliError, Result};

/// How much of meshd's log goes in.
const LOG_LINES: usize = 20_000;

struct Report {
    files: Vec<(String, Vec<u8>)>,
    missing: Vec<String>,
}

impl Report {
    fn add(&mut self, name: impl Into<String>, data: impl Into<Vec<u8>>) {
        self.files.push((name.into(), data.into()));
    }

    fn json<T: serde::Serialize>(&mut self, name: &str, value: &T) {
        match serde_json::to_vec_pretty(value) {
            Ok(v) => self.add(name, v),
            Err(e) => self.missing.push(format!("{name}: {e}")),
        }
    }
}

/// Private keys and tokens out of `text`: PEM private-key blocks, `Bearer` credentials, proxy
/// tokens, and each of `secrets` (the admin token) wherever it appears.
pub fn redact(text: &str, secrets: &[String]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    // PEM private keys (PKCS#8, RSA, EC), also inside JSON strings.
    while let Some(start) = rest.find("-----BEGIN ") {
        // The block's label: between `-----BEGIN ` and the next `-----`.
        let label_start = start + "-----BEGIN ".len();
        let label = rest[label_start..].find("-----").map(|i| &rest[label_start..label_start + i]);
        let is_key = label.is_some_and(|l| l.ends_with("PRIVATE KEY"));
        let end = label.and_then(|l| {
            let footer = format!("-----END {l}-----");
            rest[label_start..].find(&footer).map(|i| label_start + i + footer.len())
        });
        match (is_key, end) {
            (true, Some(end)) => {
                out.push_str(&rest[..start]);
                out.push_str("[REDACTED PRIVATE KEY]");
                rest = &rest[end..];
            }
            _ => {
                out.push_str(&rest[..start + 1]);
                rest = &rest[start + 1..];
            }
        }
    }
    out.push_str(rest);
    for s in secrets.iter().filter(|s| s.len() >= 8) {
        out = out.replace(s.as_str(), "[REDACTED TOKEN]");
    }
    for marker in ["Bearer ", meshd::proxy_token::PREFIX] {
        let mut cleaned = String::with_capacity(out.len());
        let mut rest = out.as_str();
        while let Some(i) = rest.find(marker) {
            let keep = if marker == "Bearer " { i + marker.len() } else { i };
            cleaned.push_str(&rest[..keep]);
            let tail = &rest[i + marker.len()..];
            let len = tail.find(|c: char| !(c.is_ascii_alphanumeric() || "-_.=+/".contains(c))).unwrap_or(tail.len());
            cleaned.push_str("[REDACTED TOKEN]");
            rest = &tail[len..];
        }
        cleaned.push_str(rest);
        out = cleaned;
    }
    out
}

async fn meshd_log(ctx: &Ctx, r: &mut Report) {
    match ctx.global.platform {
        Platform::Local => {
            let path = meshd::Home::from_env().log_path();
            match std::fs::read_to_string(&path) {
                Ok(text) => {
                    let lines: Vec<&str> = text.lines().collect();
                    let from = lines.len().saturating_sub(LOG_LINES);
                    r.add("meshd.log", lines[from..].join("\n"));
                }
                Err(e) => r.missing.push(format!("meshd.log ({}): {e}", path.display())),
            }
        }
        Platform::Kube => {
            use futures_util::AsyncReadExt;
            let log = async {
                let (what, mut log) = crate::reach::meshd_log(ctx, Some(LOG_LINES), false).await?;
                let mut text = String::new();
                log.read_to_string(&mut text).await.map_err(|e| CliError::unavailable(format!("{what}: {e}")))?;
                Ok::<_, CliError>(text)
            };
            match log.await {
                Ok(text) => r.add("meshd.log", text),
                Err(e) => r.missing.push(format!("meshd.log: {e}")),
            }
        }
    }
}

async fn config(ctx: &Ctx, r: &mut Report) {
    let snapshot = async { ctx.config_store().await?.snapshot().await };
    let (config, workloads) = match snapshot.await {
        Ok(s) => s,
        Err(e) => {
            r.missing.push(format!("config: {e}"));
            return;
        }
    };
    let docs: Vec<String> = config.iter().map(|v| serde_saphyr::to_string(v).unwrap_or_default()).collect();
    r.add("config/resources.yaml", docs.join("---\n"));
    r.json("config/workloads.json", &workloads);
    let mut analyzers = crate::analyze::all();
    analyzers.retain(|a| a.default_enabled());
    let mut live = config;
    live.extend(workloads);
    let resources = crate::cmd::analyze::layered(live, Vec::new(), &ctx.global.namespace);
    let lines: Vec<String> = crate::analyze::run(&analyzers, resources, serde_json::Value::Null)
        .iter()
        .map(|m| format!("{} [{}] ({}) {}", m.level.as_str(), m.code, m.text_resource(), m.message))
        .collect();
    r.add("analyze.txt", if lines.is_empty() { "No validation issues found.".to_string() } else { lines.join("\n") });
}

async fn proxies(ctx: &Ctx, r: &mut Report) {
    let found = async {
        let reach = ctx.reach().await?;
        let statuses = reach.proxies().await?;
        Ok::<_, CliError>((reach, statuses))
    };
    let (reach, statuses) = match found.await {
        Ok(f) => f,
        Err(e) => {
            r.missing.push(format!("proxies: {e}"));
            return;
        }
    };
    r.json("proxies/status.json", &statuses);
    let reads = statuses.iter().filter(|p| p.workload.admin.is_some()).flat_map(|p| {
        [("config_dump.json", "/config_dump"), ("certs.json", "/certs"), ("stats.txt", "/stats/prometheus")]
            .map(|(file, path)| (p, file, path))
    });
    let reads: Vec<_> = reads.collect();
    let results = futures_util::future::join_all(reads.iter().map(|(p, _, path)| reach.admin_get(p, path))).await;
    for ((p, file, _), result) in reads.iter().zip(results) {
        let name = format!("proxies/{}/{}/{file}", p.workload.namespace, p.workload.name);
        match result {
            Ok(body) => r.add(name, body),
            Err(e) => r.missing.push(format!("{name}: {e}")),
        }
    }
}

pub async fn run(ctx: &Ctx, args: BugReportArgs) -> Result<()> {
    let now = crate::cmd::cert::now_unix();
    let path = args.output.unwrap_or_else(|| PathBuf::from(format!("mesh-bug-report-{now}.tar.gz")));
    let mut r = Report { files: Vec::new(), missing: Vec::new() };
    let platform = match ctx.global.platform {
        Platform::Local => "local",
        Platform::Kube => "kube",
    };
    r.add("version.txt", format!("mesh {}\nplatform {platform}\n", mesh_api::VERSION));
    meshd_log(ctx, &mut r).await;
    config(ctx, &mut r).await;
    proxies(ctx, &mut r).await;
    // The admin token never leaves MESH_HOME; if it shows up anywhere, it is cut out.
    let mut secrets = Vec::new();
    if ctx.global.platform == Platform::Local
        && let Ok(t) = std::fs::read_to_string(meshd::Home::from_env().root().join(mesh_api::home::TOKEN_FILE))
    {
        secrets.push(t.trim().to_string());
    }
    let summary = format!(
        "mesh bug report, made at unix time {now} on the {platform} platform.\nPrivate keys and tokens were redacted from every file.\n\n{}\n",
        if r.missing.is_empty() {
            "Everything was collected.".to_string()
        } else {
            format!("Could not be collected:\n  {}", r.missing.join("\n  "))
        }
    );
    r.add("README.txt", summary);

    let write = || -> std::io::Result<()> {
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        let file = opts.open(&path)?;
        let gz = flate2::write::GzEncoder::new(file, flate2::Compression::default());
        let mut tar = tar::Builder::new(gz);
        for (name, data) in &r.files {
            let data = redact(&String::from_utf8_lossy(data), &secrets).into_bytes();
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o600);
            h.set_mtime(u64::try_from(now).unwrap_or(0));
            h.set_cksum();
            tar.append_data(&mut h, format!("mesh-bug-report/{name}"), data.as_slice())?;
        }
        tar.into_inner()?.finish()?.flush()
    };
    write().map_err(|e| CliError::failed(format!("cannot write {}: {e}", path.display())))?;
    for m in &r.missing {
        ctx.out.warn(format!("not collected: {m}"));
    }
    ctx.out.success(format!("wrote {} ({} files)", path.display(), r.files.len()));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn keys_and_tokens_are_redacted() {
        let key = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBg\n-----END PRIVATE KEY-----\n";
        let cert = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
        let text = format!("a {key}b {cert}c Authorization: Bearer abc.def-123 d mpt1.eyJx.yz e s3cr3t-admin-token f");
        // A certificate before a key on one line (a config dump's JSON) stays.
        let json = r#"{"cert":"-----BEGIN CERTIFICATE-----\nMIIC\n-----END CERTIFICATE-----\n","key":"-----BEGIN PRIVATE KEY-----\nMIGH\n-----END PRIVATE KEY-----\n"}"#;
        let out = redact(json, &[]);
        assert!(out.contains("MIIC") && !out.contains("MIGH"), "{out}");
        let out = redact(&text, &["s3cr3t-admin-token".into()]);
        assert!(!out.contains("MIIEvQIBADANBg") && out.contains("[REDACTED PRIVATE KEY]"), "{out}");
        assert!(out.contains("BEGIN CERTIFICATE-----\nMIIB"), "certificates stay: {out}");
        assert!(!out.contains("abc.def-123") && out.contains("Bearer [REDACTED TOKEN] d"), "{out}");
        assert!(!out.contains("eyJx") && !out.contains("s3cr3t"), "{out}");
        // JSON-escaped PEM (a config dump) too.
        let json = r#"{"key":"-----BEGIN EC PRIVATE KEY-----\nMHcCAQ\n-----END EC PRIVATE KEY-----\n"}"#;
        let out = redact(json, &[]);
        assert!(!out.contains("MHcCAQ"), "{out}");
    }
}
