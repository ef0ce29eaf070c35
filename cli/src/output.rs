//! One printer for the whole CLI: quiet mode, colour (off for NO_COLOR or a non-TTY), tables,
//! structured output, progress spinners (off when not a TTY), and confirmation prompts.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use comfy_table::presets::NOTHING;
use comfy_table::{ContentArrangement, Table};
use serde::Serialize;

use crate::cli::Output;
use crate::error::{CliError, Result};

#[derive(Debug, Clone)]
pub struct Printer {
    pub quiet: bool,
    pub color: bool,
    pub tty: bool,
}

impl Printer {
    pub fn new(quiet: bool, no_color: bool) -> Printer {
        let tty = std::io::stdout().is_terminal();
        let color = tty && !no_color && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
        Printer { quiet, color, tty }
    }

    /// Informational line (suppressed by -q).
    pub fn info(&self, msg: impl AsRef<str>) {
        if !self.quiet {
            out(msg.as_ref());
        }
    }

    /// Data the user asked for (never suppressed).
    pub fn data(&self, msg: impl AsRef<str>) {
        out(msg.as_ref());
    }

    pub fn success(&self, msg: impl AsRef<str>) {
        if !self.quiet {
            if self.color {
                out(&format!("\x1b[32m✔\x1b[0m {}", msg.as_ref()));
            } else {
                out(&format!("✔ {}", msg.as_ref()));
            }
        }
    }

    pub fn warn(&self, msg: impl AsRef<str>) {
        if self.color {
            eprintln!("\x1b[33mwarning:\x1b[0m {}", msg.as_ref());
        } else {
            eprintln!("warning: {}", msg.as_ref());
        }
    }

    pub fn table(&self, header: &[&str], rows: Vec<Vec<String>>) {
        let mut t = Table::new();
        t.load_style(NOTHING).set_content_arrangement(ContentArrangement::Disabled).set_header(header.iter().copied());
        for r in rows {
            t.add_row(r);
        }
        let text = t.to_string();
        // comfy-table pads with a leading space per column; trim lines like kubectl's output.
        let trimmed: Vec<&str> = text.lines().map(|l| l.strip_prefix(' ').unwrap_or(l).trim_end()).collect();
        out(&trimmed.join("\n"));
    }

    /// Print a value as YAML or JSON.
    pub fn structured<T: Serialize>(&self, format: Output, value: &T) -> Result<()> {
        let text = match format {
            Output::Json => serde_json::to_string_pretty(value).map_err(|e| CliError::internal(e.to_string()))?,
            Output::Yaml | Output::Table => {
                serde_saphyr::to_string(value).map_err(|e| CliError::internal(e.to_string()))?
            }
        };
        out(text.trim_end());
        Ok(())
    }

    /// A spinner while waiting, on a TTY only.
    pub fn spinner(&self, msg: &str) -> Option<indicatif::ProgressBar> {
        if !self.tty || self.quiet || !std::io::stderr().is_terminal() {
            return None;
        }
        let pb = indicatif::ProgressBar::new_spinner();
        pb.set_message(msg.to_string());
        pb.enable_steady_tick(Duration::from_millis(100));
        Some(pb)
    }

    /// Ask before changing something live. `yes` skips the question; without a TTY to ask on,
    /// refuse and say how to proceed.
    pub fn confirm(&self, question: &str, yes: bool) -> Result<()> {
        if yes {
            return Ok(());
        }
        if !std::io::stdin().is_terminal() || !std::io::stderr().is_terminal() {
            return Err(CliError::failed(format!(
                "{question}\nrefusing to continue without confirmation: there is no terminal to ask on; add -y to proceed"
            )));
        }
        let ok = dialoguer::Confirm::new()
            .with_prompt(question)
            .default(false)
            .interact()
            .map_err(|e| CliError::failed(format!("cannot ask for confirmation: {e}; add -y to proceed")))?;
        if ok { Ok(()) } else { Err(CliError::failed("cancelled; nothing was changed")) }
    }
}

/// Write a line to stdout; a closed pipe (`mesh get ... | head`) ends the process quietly.
fn out(s: &str) {
    let mut stdout = std::io::stdout().lock();
    if writeln!(stdout, "{s}").is_err() || stdout.flush().is_err() {
        std::process::exit(0);
    }
}
