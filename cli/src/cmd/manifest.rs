//! `mesh manifest generate` and `mesh inject`.

use std::path::PathBuf;

use crate::Ctx;
use crate::cli::InjectArgs;
use crate::error::{CliError, Result};
use meshd::manifest::Settings;

/// A profile with overlay files and `--set` applied in that order; every problem is reported.
pub fn settings(profile: &str, set: &[String], files: &[PathBuf]) -> Result<Settings> {
    let mut problems = Vec::new();
    let mut profile = profile.to_string();
    let mut overlays = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(f).map_err(|e| CliError::user(format!("{}: {e}", f.display())))?;
        let docs = mesh_api::resource::parse_yaml_stream(&text)
            .map_err(|e| CliError::user(format!("{}: malformed YAML: {e}", f.display())))?;
        for d in docs {
            if let Some(p) = d.pointer("/spec/profile").and_then(|p| p.as_str()) {
                profile = p.to_string();
            }
            overlays.push((f.clone(), d));
        }
    }
    let mut s = Settings::profile(&profile).ok_or_else(|| {
        CliError::user(format!("unknown profile {profile:?}; use one of {}", meshd::manifest::PROFILES.join(", ")))
    })?;
    for (f, d) in &overlays {
        if let Err(errs) = s.overlay(d) {
            problems.extend(errs.into_iter().map(|e| format!("{}: {e}", f.display())));
        }
    }
    for kv in set {
        match kv.split_once('=') {
            Some((k, v)) => {
                if let Err(e) = s.set(k, v) {
                    problems.push(format!("--set {e}"));
                }
            }
            None => problems.push(format!("--set {kv:?}: expected KEY=VALUE")),
        }
    }
    if problems.is_empty() { Ok(s) } else { Err(CliError::user(problems.join("\n"))) }
}

pub fn inject(ctx: &Ctx, args: &InjectArgs) -> Result<()> {
    let s = settings("default", &args.set, &[])?;
    let text = if args.file.as_os_str() == "-" {
        let mut t = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut t)
            .map_err(|e| CliError::user(format!("cannot read standard input: {e}")))?;
        t
    } else {
        std::fs::read_to_string(&args.file).map_err(|e| CliError::user(format!("{}: {e}", args.file.display())))?
    };
    let out =
        meshd::inject::inject_stream(&text, &s).map_err(|e| CliError::user(format!("{}: {e}", args.file.display())))?;
    ctx.out.data(out.trim_end());
    Ok(())
}
