use super::*;
use proptest::prelude::*;

fn cfg(normalization: Normalization, escaped_slashes: EscapedSlashes) -> PathNormalization {
    PathNormalization { normalization, escaped_slashes }
}

const BASE: PathNormalization =
    PathNormalization { normalization: Normalization::Base, escaped_slashes: EscapedSlashes::KeepUnchanged };

fn norm(p: &str, c: PathNormalization) -> String {
    let (out, outcome) = normalize_path(p, c);
    assert_eq!(outcome, PathOutcome::Forward, "{p:?}");
    out.into_owned()
}

#[test]
fn base_resolves_the_known_bypass_forms() {
    for (raw, want) in [
        ("/a/../admin", "/admin"),
        ("/./admin", "/admin"),
        ("/%61dmin", "/admin"),
        ("/%2e%2e/admin", "/admin"),
        ("/%2E%2E/admin", "/admin"),
        ("/x/..\\admin", "/admin"),
        ("/public/../admin", "/admin"),
        ("/public/%2e%2e/admin/", "/admin/"),
        ("/../../../admin", "/admin"),
        ("/.%2e/admin", "/admin"),
        ("\\", "\\"), // not a path that starts with `/`: left alone (and refused upstream by hyper)
        ("/admin/.", "/admin/"),
        ("/admin/..", "/"),
        ("/a//../b", "/a/b"),
        ("/a//b", "/a//b"),
        ("/%7euser", "/~user"),
        ("/a%2fb", "/a%2Fb"),
        ("/a%5cb", "/a%5Cb"),
        ("/a%zz", "/a%25zz"),
        ("/100%", "/100%25"),
        ("/%%32%65", "/%252e"),
        ("/caf%c3%a9", "/caf%C3%A9"),
        ("/.hidden/x", "/.hidden/x"),
        ("/a/...", "/a/..."),
        ("/", "/"),
        ("*", "*"),
    ] {
        assert_eq!(norm(raw, BASE), want, "{raw:?}");
    }
}

#[test]
fn unchanged_paths_are_not_copied() {
    for p in ["/", "/api/v1/items", "/a.b/c", "/x/.well-known"] {
        assert!(matches!(normalize_path(p, BASE).0, Cow::Borrowed(_)), "{p}");
    }
}

#[test]
fn settings_other_than_base() {
    let none = cfg(Normalization::None, EscapedSlashes::KeepUnchanged);
    assert_eq!(norm("/a/../%61dmin//x", none), "/a/../%61dmin//x");
    let merge = cfg(Normalization::MergeSlashes, EscapedSlashes::KeepUnchanged);
    assert_eq!(norm("//admin///x/./", merge), "/admin/x/");
    assert_eq!(norm("/a%2F%2Fb", merge), "/a%2F%2Fb");
    let decode = cfg(Normalization::DecodeAndMergeSlashes, EscapedSlashes::KeepUnchanged);
    assert_eq!(norm("/admin%2Fsecret", decode), "/admin/secret");
    assert_eq!(norm("/x%2f..%5Cadmin", decode), "/admin");
    assert_eq!(norm("/a%2F%2Fb", decode), "/a/b");
    let forward = cfg(Normalization::Base, EscapedSlashes::UnescapeAndForward);
    assert_eq!(norm("/admin%2fsecret", forward), "/admin/secret");
    let reject = cfg(Normalization::Base, EscapedSlashes::RejectRequest);
    assert_eq!(normalize_path("/admin%2Fsecret", reject).1, PathOutcome::Rejected);
    assert_eq!(normalize_path("/admin%5csecret", reject).1, PathOutcome::Rejected);
    assert_eq!(norm("/admin/secret", reject), "/admin/secret");
    let none_reject = cfg(Normalization::None, EscapedSlashes::RejectRequest);
    assert_eq!(normalize_path("/a%2fb", none_reject).1, PathOutcome::Rejected);
    let redirect = cfg(Normalization::Base, EscapedSlashes::UnescapeAndRedirect);
    let (p, o) = normalize_path("/x/a%2F..%2Fadmin", redirect);
    assert_eq!((p.as_ref(), o), ("/x/admin", PathOutcome::Redirect));
    assert_eq!(norm("/plain", redirect), "/plain");
}

#[test]
fn prepare_makes_one_authority_and_refuses_what_is_ambiguous() {
    let build = |method: &str, uri: &str, hosts: &[&str]| {
        let mut b = Request::builder().method(method).uri(uri);
        for h in hosts {
            b = b.header("host", *h);
        }
        b.body(()).expect("request")
    };
    let mut r = build("GET", "http://reviews:9080/a/../admin?x=1", &["other"]);
    prepare(&mut r, BASE).expect("accepted");
    assert_eq!(r.headers().get("host").map(|h| h.as_bytes()), Some(&b"reviews:9080"[..]));
    assert_eq!(r.uri().path_and_query().map(|p| p.as_str()), Some("/admin?x=1"));

    let refused = |mut r: Request<()>| prepare(&mut r, BASE).expect_err("refused").status;
    assert_eq!(refused(build("GET", "/", &["a", "b"])), StatusCode::BAD_REQUEST);
    assert_eq!(refused(build("delete", "/", &["a"])), StatusCode::BAD_REQUEST);
    assert_eq!(refused(build("GET", "/", &["a b"])), StatusCode::BAD_REQUEST);
    assert_eq!(refused(build("GET", "/", &["user@a"])), StatusCode::BAD_REQUEST);
    assert_eq!(refused(build("GET", "http://u@a/", &[])), StatusCode::BAD_REQUEST);

    let mut r = build("GET", "/x", &["a"]);
    r.headers_mut().insert("x-envoy-peer-metadata", HeaderValue::from_static("forged"));
    r.headers_mut().insert("x-envoy-peer-metadata-id", HeaderValue::from_static("forged"));
    prepare(&mut r, BASE).expect("accepted");
    assert!(
        !r.headers().contains_key("x-envoy-peer-metadata") && !r.headers().contains_key("x-envoy-peer-metadata-id")
    );

    let mut r = build("GET", "/a%2Fb?q", &["a"]);
    let redirect = cfg(Normalization::Base, EscapedSlashes::UnescapeAndRedirect);
    let refusal = prepare(&mut r, redirect).expect_err("redirect");
    assert_eq!((refusal.status, refusal.location.as_deref()), (StatusCode::TEMPORARY_REDIRECT, Some("/a/b?q")));
}

fn all_settings() -> impl Strategy<Value = PathNormalization> {
    (
        prop_oneof![
            Just(Normalization::None),
            Just(Normalization::Base),
            Just(Normalization::MergeSlashes),
            Just(Normalization::DecodeAndMergeSlashes)
        ],
        prop_oneof![
            Just(EscapedSlashes::KeepUnchanged),
            Just(EscapedSlashes::UnescapeAndForward),
            Just(EscapedSlashes::RejectRequest),
            Just(EscapedSlashes::UnescapeAndRedirect)
        ],
    )
        .prop_map(|(normalization, escaped_slashes)| PathNormalization { normalization, escaped_slashes })
}

/// Paths as an attacker writes them: segments of letters, dots, escapes (valid or not),
/// backslashes and empty segments.
fn hostile_path() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        "[a-zA-Z0-9_~-]{1,4}",
        Just(".".to_string()),
        Just("..".to_string()),
        Just("%2e".to_string()),
        Just("%2E%2e".to_string()),
        Just("%2f".to_string()),
        Just("%5C".to_string()),
        Just("%".to_string()),
        Just("%4".to_string()),
        Just("%25".to_string()),
        Just("%41".to_string()),
        Just("\\".to_string()),
        Just("%c3%a9".to_string()),
        Just(String::new()),
    ];
    proptest::collection::vec(piece, 0..8).prop_map(|ps| format!("/{}", ps.join("/")))
}

/// One of the many ways to write `path` that BASE must read as `path`: unreserved characters
/// percent-encoded in either case, `.` segments, `x/..` detours, and backslashes for slashes.
fn encodings_of(path: String) -> impl Strategy<Value = String> {
    let n = path.len();
    (proptest::collection::vec(0u8..6, n + 1), proptest::collection::vec(any::<bool>(), n + 1)).prop_map(
        move |(choices, upper)| {
            let mut out = String::new();
            for (i, c) in path.chars().enumerate() {
                match (c, choices[i]) {
                    ('/', 1) if i > 0 => out.push('\\'),
                    ('/', 2) => out.push_str("/./"),
                    ('/', 3) => out.push_str("/zz/../"),
                    ('/', 4) => out.push_str("/%2e/"),
                    (c, 1 | 2) if c.is_ascii_alphanumeric() || "-._~".contains(c) => {
                        let e = format!("%{:02X}", c as u32);
                        out.push_str(&if upper[i] { e } else { e.to_lowercase() });
                    }
                    (c, _) => out.push(c),
                }
            }
            out
        },
    )
}

/// A path already in BASE's normal form: no dot segments, no escapes of unreserved characters.
fn normal_path() -> impl Strategy<Value = String> {
    proptest::collection::vec("[a-z0-9_~-]{1,5}", 1..5).prop_map(|segs| format!("/{}", segs.join("/")))
}

proptest! {
    #[test]
    fn normalization_is_idempotent(path in hostile_path(), c in all_settings()) {
        let (once, outcome) = normalize_path(&path, c);
        if outcome == PathOutcome::Forward {
            let (twice, again) = normalize_path(&once, c);
            prop_assert_eq!(again, PathOutcome::Forward);
            prop_assert_eq!(twice.as_ref(), once.as_ref());
        }
    }

    #[test]
    fn never_leaves_the_root(path in hostile_path(), c in all_settings()) {
        let (out, outcome) = normalize_path(&path, c);
        prop_assert!(out.starts_with('/'));
        if outcome != PathOutcome::Rejected && c.normalization != Normalization::None {
            let segments: Vec<&str> = out.split('/').collect();
            prop_assert!(!segments.contains(&"..") && !segments.contains(&"."), "{} -> {}", path, out);
            prop_assert!(!out.contains('\\'));
        }
    }

    #[test]
    fn every_encoding_of_a_path_reads_as_that_path(path in normal_path().prop_flat_map(|p| (Just(p.clone()), encodings_of(p)))) {
        let (normal, encoded) = path;
        prop_assert_eq!(norm(&encoded, BASE), normal.clone());
        // And so a DENY on the normalized form (prefix, exact or template) matches every encoding.
        let merge = cfg(Normalization::MergeSlashes, EscapedSlashes::KeepUnchanged);
        prop_assert_eq!(norm(&encoded, merge), normal);
    }
}
