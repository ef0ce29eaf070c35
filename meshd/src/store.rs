//! The local config store: every resource in one JSON file, replaced atomically, so a batch
//! apply is all-or-nothing even across a crash.

use std::collections::BTreeMap;
use std::io;
use std::path::PathBuf;

use mesh_api::{Key, Parsed, Resource};
use serde::{Deserialize, Serialize};

use crate::home::write_atomic;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot read the config store {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error(
        "the config store {path} is corrupt ({reason}); it was left untouched: fix or move it away, then start meshd again"
    )]
    Corrupt { path: PathBuf, reason: String },
    #[error("cannot write the config store {path}: {source}; nothing was changed")]
    Write { path: PathBuf, source: io::Error },
}

#[derive(Serialize, Deserialize)]
struct OnDisk {
    format: u32,
    resources: Vec<serde_json::Value>,
}

pub type Resources = BTreeMap<Key, Resource>;

pub struct Store {
    path: PathBuf,
}

impl Store {
    pub fn new(path: PathBuf) -> Store {
        Store { path }
    }

    /// Load every stored resource. A missing file is an empty store.
    pub fn load(&self) -> Result<Resources, StoreError> {
        let text = match std::fs::read(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Resources::new()),
            Err(source) => return Err(StoreError::Read { path: self.path.clone(), source }),
        };
        let corrupt = |reason: String| StoreError::Corrupt { path: self.path.clone(), reason };
        let disk: OnDisk = serde_json::from_slice(&text).map_err(|e| corrupt(e.to_string()))?;
        if disk.format != 1 {
            return Err(corrupt(format!("unknown format {}", disk.format)));
        }
        let mut out = Resources::new();
        for (i, v) in disk.resources.into_iter().enumerate() {
            match mesh_api::resource::parse_document(v, "default", i) {
                Ok(Parsed::Supported(r)) => {
                    out.insert(r.key(), r);
                }
                Ok(_) => return Err(corrupt(format!("entry {} is not a stored kind", i + 1))),
                Err(e) => return Err(corrupt(e.to_string())),
            }
        }
        Ok(out)
    }

    /// Replace the stored set with `resources`, atomically.
    pub fn save(&self, resources: &Resources) -> Result<(), StoreError> {
        let disk = OnDisk { format: 1, resources: resources.values().map(Resource::to_value).collect() };
        let body = serde_json::to_vec_pretty(&disk)
            .map_err(|e| StoreError::Write { path: self.path.clone(), source: io::Error::other(e) })?;
        write_atomic(&self.path, &body, 0o600).map_err(|source| StoreError::Write { path: self.path.clone(), source })
    }
}
