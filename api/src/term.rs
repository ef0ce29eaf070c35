//! Whether to colour what goes to a terminal.

use std::io::IsTerminal;

/// Colour on standard error: only when it is a terminal, and never with `--no-color`
/// (`no_color_flag`) or a non-empty `NO_COLOR` (no-color.org). Log files get plain text.
pub fn stderr_color(no_color_flag: bool) -> bool {
    !no_color_flag && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && std::io::stderr().is_terminal()
}
