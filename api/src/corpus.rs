//! Where the tests find Istio's own YAML (bookinfo, samples, validation cases, the analyzer
//! table): `../shared/conformance/istio` beside the clone, or the directory
//! `MESH_ISTIO_CORPUS` names. A fresh clone without it still passes its tests: the tests
//! that need the corpus say they were skipped, on standard error where `cargo test` shows it,
//! unless `MESH_TEST_STRICT` is set (as `.ci/run` does), which makes a missing corpus fail them.

use std::io::Write;
use std::path::PathBuf;

/// The corpus directory, whether or not it exists.
pub fn location() -> PathBuf {
    match std::env::var_os("MESH_ISTIO_CORPUS") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/conformance/istio")),
    }
}

/// The corpus directory for test `test`; None, after saying the test is skipped and why,
/// when it is missing. Panics (fails the test) when it is missing under `MESH_TEST_STRICT`.
pub fn for_test(test: &str) -> Option<PathBuf> {
    let dir = location();
    if dir.join("bookinfo").is_dir() {
        return Some(dir);
    }
    let why = format!(
        "{test} needs Istio's conformance corpus at {} (clone the project with ../shared beside it, or set MESH_ISTIO_CORPUS)",
        dir.display()
    );
    assert!(std::env::var_os("MESH_TEST_STRICT").is_none(), "{why}; MESH_TEST_STRICT is set");
    skipped(&why);
    None
}

/// Say that a test was skipped: straight to standard error, which the test harness does not
/// capture (it captures only `print!` and `eprint!`), so the line shows in `cargo test`.
pub fn skipped(why: &str) {
    let _ = writeln!(std::io::stderr().lock(), "skipped: {why}");
}
