//! Errors with exit codes scripts can tell apart, as istioctl's (sysexits.h where one fits):
//!
//! | code | meaning |
//! |---|---|
//! | 1 | the command ran and failed: not found, refused, cancelled, timed out |
//! | 64 | usage: arguments that do not go together or are malformed |
//! | 65 | bad input: invalid or malformed files, resources or values; nothing was changed |
//! | 69 | meshd (the control plane) or the cluster could not be reached |
//! | 70 | an internal error |
//! | 79 | the analysis found issues at the failure threshold (istioctl analyze's code) |

use std::fmt;

#[derive(Debug)]
pub struct CliError {
    pub code: u8,
    pub message: String,
}

pub type Result<T> = std::result::Result<T, CliError>;

pub const FAILED: u8 = 1;
pub const USAGE: u8 = 64;
pub const BAD_INPUT: u8 = 65;
pub const UNAVAILABLE: u8 = 69;
pub const INTERNAL: u8 = 70;
pub const ISSUES_FOUND: u8 = 79;

impl CliError {
    /// Bad input: files, resources or values that are invalid.
    pub fn user(message: impl Into<String>) -> CliError {
        CliError { code: BAD_INPUT, message: message.into() }
    }
    /// Arguments that do not go together or are malformed.
    pub fn usage(message: impl Into<String>) -> CliError {
        CliError { code: USAGE, message: message.into() }
    }
    /// The command ran and failed: not found, refused, cancelled.
    pub fn failed(message: impl Into<String>) -> CliError {
        CliError { code: FAILED, message: message.into() }
    }
    /// The analysis found issues.
    pub fn issues(message: impl Into<String>) -> CliError {
        CliError { code: ISSUES_FOUND, message: message.into() }
    }
    /// meshd or the cluster could not be reached.
    pub fn unavailable(message: impl Into<String>) -> CliError {
        CliError { code: UNAVAILABLE, message: message.into() }
    }
    pub fn internal(message: impl Into<String>) -> CliError {
        CliError { code: INTERNAL, message: message.into() }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CliError {}

impl From<anyhow::Error> for CliError {
    fn from(e: anyhow::Error) -> Self {
        CliError::unavailable(format!("{e:#}"))
    }
}
