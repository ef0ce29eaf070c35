//! `mesh logs`: meshd's log, as `kubectl logs` would give it on a cluster.

use std::io::{Read, Seek, SeekFrom, Write};
use std::time::Duration;

use crate::Ctx;
use crate::cli::LogsArgs;
use crate::error::{CliError, Result};

pub async fn run(ctx: &Ctx, args: LogsArgs) -> Result<()> {
    if ctx.global.platform == crate::cli::Platform::Kube {
        return on_cluster(ctx, args).await;
    }
    let home = meshd::Home::from_env();
    let path = home.log_path();
    let mut file = std::fs::File::open(&path).map_err(|e| {
        CliError::failed(format!("{}: {e}; meshd writes it once `mesh install` has started it", path.display()))
    })?;
    let mut text = String::new();
    file.read_to_string(&mut text).map_err(|e| CliError::failed(format!("{}: {e}", path.display())))?;
    let lines: Vec<&str> = text.lines().collect();
    let from = args.tail.map_or(0, |n| lines.len().saturating_sub(n));
    let mut out = std::io::stdout().lock();
    for l in &lines[from..] {
        if writeln!(out, "{l}").is_err() {
            return Ok(()); // the reader went away (a closed pipe)
        }
    }
    let _ = out.flush();
    drop(out);
    if !args.follow {
        return Ok(());
    }
    // Print what is appended; start over if the file is replaced by a shorter one (a new meshd).
    let mut at = file.stream_position().map_err(|e| CliError::failed(e.to_string()))?;
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let len = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        if len < at {
            file = std::fs::File::open(&path).map_err(|e| CliError::failed(format!("{}: {e}", path.display())))?;
            at = 0;
        }
        if len > at {
            file.seek(SeekFrom::Start(at)).map_err(|e| CliError::failed(e.to_string()))?;
            let mut more = Vec::new();
            file.read_to_end(&mut more).map_err(|e| CliError::failed(e.to_string()))?;
            at += more.len() as u64;
            let mut out = std::io::stdout().lock();
            if out.write_all(&more).and_then(|()| out.flush()).is_err() {
                return Ok(());
            }
        }
    }
}

/// On a cluster: the meshd pod's log through the API server, as `kubectl logs`.
async fn on_cluster(ctx: &Ctx, args: LogsArgs) -> Result<()> {
    use futures_util::AsyncBufReadExt;
    let (what, log) = crate::reach::meshd_log(ctx, args.tail, args.follow).await?;
    let mut lines = log.lines();
    let mut out = std::io::stdout().lock();
    while let Some(line) = futures_util::StreamExt::next(&mut lines).await {
        let line = line.map_err(|e| CliError::unavailable(format!("{what}: {e}")))?;
        if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
            return Ok(()); // the reader went away
        }
    }
    Ok(())
}
