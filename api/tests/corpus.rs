//! Istio's own YAML: every document under bookinfo/ (and the samples) is either a kind we
//! serve, parsed and valid, or reported as not used / not supported — never a parse error.

use std::path::{Path, PathBuf};

use mesh_api::Parsed;
use mesh_api::resource::{parse_document, parse_yaml_stream};

/// `rel` in Istio's corpus, or None (the test is skipped, saying so) without the corpus.
fn corpus(test: &str, rel: &str) -> Option<PathBuf> {
    Some(mesh_api::corpus::for_test(test)?.join(rel))
}

fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            yaml_files(&p, out);
        } else if matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")) {
            out.push(p);
        }
    }
}

#[test]
fn every_bookinfo_document_is_served_or_reported() {
    let Some(bookinfo) = corpus("every_bookinfo_document_is_served_or_reported", "bookinfo") else { return };
    let mut files = Vec::new();
    yaml_files(&bookinfo, &mut files);
    assert!(files.len() > 20, "bookinfo corpus incomplete: {}", bookinfo.display());
    let (mut served, mut skipped) = (0, 0);
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        let docs = parse_yaml_stream(&text).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        for (i, d) in docs.into_iter().enumerate() {
            match parse_document(d, "default", i) {
                Ok(Parsed::Supported(r)) => {
                    assert!(r.validate().is_empty());
                    served += 1;
                }
                Ok(Parsed::NotUsedLocally { .. } | Parsed::Unsupported { .. }) => skipped += 1,
                Err(e) => panic!("{}: {e}", f.display()),
            }
        }
    }
    assert!(served >= 40, "served {served}, skipped {skipped}");
}

#[test]
fn bookinfo_virtual_services_keep_their_meaning() {
    let Some(file) = corpus(
        "bookinfo_virtual_services_keep_their_meaning",
        "bookinfo/networking/virtual-service-reviews-test-v2.yaml",
    ) else {
        return;
    };
    let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let doc = parse_yaml_stream(&text).expect("yaml").remove(0);
    let Ok(Parsed::Supported(mesh_api::Resource::VirtualService(vs))) = parse_document(doc, "default", 0) else {
        panic!("not a VirtualService")
    };
    let rule = &vs.spec.http[0];
    assert_eq!(rule.matches[0].headers["end-user"].exact.as_deref(), Some("jason"));
    assert_eq!(rule.route[0].destination.subset.as_deref(), Some("v2"));
}

/// Istio's own CRD validation cases (`extra/validation-crds`): every `-valid` document is
/// accepted, and every `-invalid` document (marked with the `_err` Istio expects) is refused.
#[test]
fn istio_validation_cases_for_served_kinds() {
    let Some(dir) = corpus("istio_validation_cases_for_served_kinds", "extra/validation-crds") else { return };
    let mut checked = 0;
    let mut failures = Vec::new();
    for kind in ["authz", "peerauth", "reqauth", "destinationrule", "serviceentry", "telemetry"] {
        for (suffix, want_ok) in [("valid", true), ("invalid", false)] {
            let path = dir.join(format!("{kind}-{suffix}.yaml"));
            let text = std::fs::read_to_string(&path).expect("corpus file");
            let docs = parse_yaml_stream(&text).expect("yaml");
            for (i, mut doc) in docs.into_iter().enumerate() {
                let expected = doc.as_object_mut().and_then(|m| m.remove("_err"));
                let name = doc.pointer("/metadata/name").and_then(|v| v.as_str()).unwrap_or("").to_string();
                let result = parse_document(doc, "default", i);
                match (want_ok, result) {
                    (true, Ok(Parsed::Supported(_))) | (false, Err(_)) => {}
                    (true, other) => failures.push(format!("{kind}-{suffix}: {name} must be accepted, got {other:?}")),
                    (false, Ok(_)) => failures.push(format!("{kind}-{suffix}: {name} must be refused ({expected:?})")),
                }
                checked += 1;
            }
        }
    }
    assert!(failures.is_empty(), "{} of {checked} cases failed:\n{}", failures.len(), failures.join("\n"));
    assert!(checked >= 50, "only {checked} cases found");
}

/// Istio's validation dataset (`extra/validation-dataset`): one valid document per kind and
/// version; every one of a kind we serve is accepted.
#[test]
fn istio_validation_dataset_for_served_kinds() {
    let Some(dir) = corpus("istio_validation_dataset_for_served_kinds", "extra/validation-dataset") else { return };
    let mut checked = 0;
    let mut failures = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .map(|e| e.path())
        .collect();
    entries.sort();
    for path in entries {
        let text = std::fs::read_to_string(&path).expect("dataset file");
        for (i, doc) in parse_yaml_stream(&text).expect("yaml").into_iter().enumerate() {
            let kind = doc["kind"].as_str().unwrap_or("").to_string();
            let api = doc["apiVersion"].as_str().unwrap_or("").to_string();
            if !mesh_api::Kind::ALL.iter().any(|k| k.as_str() == kind) || api.starts_with("gateway.networking.k8s.io") {
                continue;
            }
            match parse_document(doc, "default", i) {
                Ok(Parsed::Supported(_)) => checked += 1,
                other => failures.push(format!("{}: {api} {kind}: {other:?}", path.display())),
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(checked >= 15, "only {checked} documents of served kinds");
}
