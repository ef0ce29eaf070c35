//! The layout of `MESH_HOME` on the local platform, and the small files in it.

use std::fs;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Where meshd keeps its state.
#[derive(Debug, Clone)]
pub struct Home {
    root: PathBuf,
}

/// What a running meshd publishes about itself (`meshd.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MeshdInfo {
    pub address: SocketAddr,
    pub pid: u32,
    pub version: String,
    pub started_unix: u64,
    /// The monitoring listener (`/metrics`, `/debug/syncz`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monitoring: Option<SocketAddr>,
    /// Kubernetes: discovery over TLS (15012).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discovery_tls: Option<SocketAddr>,
    /// Kubernetes: the admission webhooks (15017).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhooks: Option<SocketAddr>,
}

impl Home {
    /// `MESH_HOME`, else `~/.mesh`.
    pub fn from_env() -> Home {
        Home::new(mesh_api::home::default_home())
    }

    pub fn new(root: PathBuf) -> Home {
        Home { root }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }
    pub fn token_path(&self) -> PathBuf {
        self.root.join(mesh_api::home::TOKEN_FILE)
    }
    pub fn info_path(&self) -> PathBuf {
        self.root.join(mesh_api::home::INFO_FILE)
    }
    pub fn store_path(&self) -> PathBuf {
        self.root.join("store.json")
    }
    pub fn registry_path(&self) -> PathBuf {
        self.root.join("registry.json")
    }
    /// The CA: roots and their keys (0600).
    pub fn ca_path(&self) -> PathBuf {
        self.root.join("ca.json")
    }
    pub fn log_path(&self) -> PathBuf {
        self.root.join("meshd.log")
    }
    pub fn settings_path(&self) -> PathBuf {
        self.root.join("install.json")
    }

    pub fn create(&self) -> io::Result<()> {
        fs::create_dir_all(&self.root)?;
        set_mode(&self.root, 0o700)
    }

    /// The access token, created (0600) when missing.
    pub fn ensure_token(&self) -> io::Result<String> {
        match self.read_token() {
            Ok(t) => return Ok(t),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|e| io::Error::other(format!("no system randomness: {e}")))?;
        let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        write_atomic(&self.token_path(), token.as_bytes(), 0o600)?;
        Ok(token)
    }

    pub fn read_token(&self) -> io::Result<String> {
        let t = fs::read_to_string(self.token_path())?;
        let t = t.trim().to_string();
        if t.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{} is empty", self.token_path().display()),
            ));
        }
        Ok(t)
    }

    pub fn read_info(&self) -> io::Result<MeshdInfo> {
        let text = fs::read(self.info_path())?;
        serde_json::from_slice(&text)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("{}: {e}", self.info_path().display())))
    }

    pub fn write_info(&self, info: &MeshdInfo) -> io::Result<()> {
        let body = serde_json::to_vec_pretty(info).map_err(io::Error::other)?;
        write_atomic(&self.info_path(), &body, 0o600)
    }
}

/// Write a file so that readers see either the old or the new content, never a mix, even if
/// the process dies halfway: temp file in the same directory, fsync, rename, fsync directory.
pub fn write_atomic(path: &Path, body: &[u8], mode: u32) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut f = fs::OpenOptions::new().write(true).create(true).truncate(true).open(&tmp)?;
        set_mode(&tmp, mode)?;
        f.write_all(body)?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, path)?;
        fs::File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

fn set_mode(path: &Path, mode: u32) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
}
