//! Errors with exit codes that mean something: 1 for a user error or a problem found, 2 when
//! the command could not run (meshd unreachable, IO failure).

use std::fmt;

#[derive(Debug)]
pub struct CliError {
    pub code: u8,
    pub message: String,
}

pub type Result<T> = std::result::Result<T, CliError>;

impl CliError {
    pub fn user(message: impl Into<String>) -> CliError {
        CliError { code: 1, message: message.into() }
    }
    pub fn unavailable(message: impl Into<String>) -> CliError {
        CliError { code: 2, message: message.into() }
    }
    pub fn internal(message: impl Into<String>) -> CliError {
        CliError { code: 2, message: message.into() }
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
