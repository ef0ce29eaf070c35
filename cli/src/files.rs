//! Reading resources from `-f` paths: files, directories and stdin, with errors that name
//! the file and document.

use std::io::Read;
use std::path::{Path, PathBuf};

use mesh_api::{Parsed, ResourceError};
use serde_json::Value;

use crate::error::{CliError, Result};

/// One document from a file, already classified.
pub struct Doc {
    pub source: String,
    pub value: Value,
    pub parsed: Parsed,
}

fn collect(path: &Path, recursive: bool, top: bool, out: &mut Vec<PathBuf>) -> Result<()> {
    if path.as_os_str() == "-" {
        out.push(path.to_path_buf());
        return Ok(());
    }
    let meta = std::fs::metadata(path).map_err(|e| CliError::user(format!("{}: {e}", path.display())))?;
    if meta.is_dir() {
        if !top && !recursive {
            return Ok(());
        }
        let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(|e| CliError::user(format!("{}: {e}", path.display())))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        entries.sort();
        for e in entries {
            if e.is_dir() {
                collect(&e, recursive, false, out)?;
            } else if matches!(e.extension().and_then(|x| x.to_str()), Some("yaml" | "yml" | "json")) {
                out.push(e);
            }
        }
    } else {
        out.push(path.to_path_buf());
    }
    Ok(())
}

/// Read every YAML document of the given paths as JSON values, unclassified (for analysis,
/// which looks at any kind). Malformed YAML is an error naming the file.
/// Every document of every file, as YAML values, each with the file it came from.
pub fn read_values(paths: &[PathBuf], recursive: bool) -> Result<Vec<(String, Value)>> {
    let mut files = Vec::new();
    for p in paths {
        collect(p, recursive, true, &mut files)?;
    }
    let mut out = Vec::new();
    let mut problems = Vec::new();
    for f in files {
        let name = if f.as_os_str() == "-" { "<stdin>".to_string() } else { f.display().to_string() };
        let text = read_text(&f);
        match text.map_err(|e| e.to_string()).and_then(|t| mesh_api::resource::parse_yaml_stream(&t)) {
            Ok(v) => out.extend(v.into_iter().map(|v| (name.clone(), v))),
            Err(e) => problems.push(format!("{name}: {e}")),
        }
    }
    if !problems.is_empty() {
        return Err(CliError::user(format!("cannot read the input:\n  {}", problems.join("\n  "))));
    }
    Ok(out)
}

fn read_text(f: &Path) -> std::io::Result<String> {
    if f.as_os_str() == "-" {
        let mut s = String::new();
        std::io::stdin().read_to_string(&mut s).map(|_| s)
    } else {
        std::fs::read_to_string(f)
    }
}

/// Read and parse every document. Every problem in every file is reported together; on any
/// problem the result is an error and the caller changes nothing.
pub fn read_all(paths: &[PathBuf], recursive: bool, namespace: &str) -> Result<Vec<Doc>> {
    let mut files = Vec::new();
    for p in paths {
        collect(p, recursive, true, &mut files)?;
    }
    let mut docs = Vec::new();
    let mut problems = Vec::new();
    for f in files {
        let name = if f.as_os_str() == "-" { "<stdin>".to_string() } else { f.display().to_string() };
        let text = match read_text(&f) {
            Ok(t) => t,
            Err(e) => {
                problems.push(format!("{name}: {e}"));
                continue;
            }
        };
        let values = match mesh_api::resource::parse_yaml_stream(&text) {
            Ok(v) => v,
            Err(e) => {
                problems.push(format!("{name}: malformed YAML: {e}"));
                continue;
            }
        };
        for (i, v) in values.into_iter().enumerate() {
            match mesh_api::resource::parse_document(v.clone(), namespace, i) {
                Ok(parsed) => docs.push(Doc { source: name.clone(), value: v, parsed }),
                Err(ResourceError { resource, errors }) => {
                    for e in errors {
                        problems.push(format!("{name}: {resource}: {e}"));
                    }
                }
            }
        }
    }
    if !problems.is_empty() {
        return Err(CliError::user(format!("invalid input; nothing was changed:\n  {}", problems.join("\n  "))));
    }
    Ok(docs)
}
