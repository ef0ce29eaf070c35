//! Where a local mesh keeps its state, and the names of the files meshd and the proxies share
//! there. (Paths only: reading and writing them is meshd's and the proxy's business.)

use std::path::PathBuf;

/// meshd's address and pid, written by meshd when it is ready.
pub const INFO_FILE: &str = "meshd.json";
/// The access token for meshd's API and discovery stream (mode 0600).
pub const TOKEN_FILE: &str = "token";

/// `MESH_HOME`, else `~/.mesh`.
pub fn default_home() -> PathBuf {
    if let Some(h) = std::env::var_os("MESH_HOME").filter(|h| !h.is_empty()) {
        return PathBuf::from(h);
    }
    std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(".")).join(".mesh")
}
