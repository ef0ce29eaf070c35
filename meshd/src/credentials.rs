//! TLS credentials on the local platform (`mesh secret create tls`): one JSON file in MESH_HOME,
//! 0600 and replaced atomically like the CA's, read by nobody but meshd. On Kubernetes they
//! are Secrets and this file is not used.

use std::io;
use std::path::PathBuf;

use mesh_api::credential::{Credential, Credentials};
use serde::{Deserialize, Serialize};

use crate::home::write_atomic;

#[derive(Serialize, Deserialize)]
struct OnDisk {
    format: u32,
    credentials: Vec<Credential>,
}

pub struct CredentialStore {
    path: PathBuf,
}

impl CredentialStore {
    pub fn new(path: PathBuf) -> CredentialStore {
        CredentialStore { path }
    }

    /// Every stored credential; a missing file holds none. A file that does not parse is an
    /// error that names it (it is left as it is).
    pub fn load(&self) -> anyhow::Result<Credentials> {
        let bytes = match std::fs::read(&self.path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Credentials::new()),
            Err(e) => anyhow::bail!("cannot read the credentials in {}: {e}", self.path.display()),
        };
        let disk: OnDisk = serde_json::from_slice(&bytes).map_err(|e| {
            anyhow::anyhow!("the credentials file {} is corrupt ({e}); it was left untouched", self.path.display())
        })?;
        if disk.format != 1 {
            anyhow::bail!("the credentials file {} has unknown format {}", self.path.display(), disk.format);
        }
        Ok(disk.credentials.into_iter().map(|c| ((c.namespace.clone(), c.name.clone()), c)).collect())
    }

    pub fn save(&self, all: &Credentials) -> io::Result<()> {
        let disk = OnDisk { format: 1, credentials: all.values().cloned().collect() };
        let body = serde_json::to_vec_pretty(&disk).map_err(io::Error::other)?;
        write_atomic(&self.path, &body, 0o600)
    }
}
