//! The command-line surface: completions in sync, errors that name the problem and change
//! nothing, tables and structured output.

use crate::harness::*;

#[test]
fn checked_in_completions_match_the_cli() {
    let dir = format!("{}/../completions", env!("CARGO_MANIFEST_DIR"));
    for (shell, file) in [
        ("bash", "mesh.bash"),
        ("zsh", "_mesh"),
        ("fish", "mesh.fish"),
        ("powershell", "_mesh.ps1"),
        ("elvish", "mesh.elv"),
    ] {
        let out = std::process::Command::new(MESH).args(["completion", shell]).output().expect("run");
        assert!(out.status.success());
        let checked_in = std::fs::read(format!("{dir}/{file}")).unwrap_or_default();
        assert!(
            checked_in == out.stdout,
            "completions/{file} is out of date: run `cargo run --bin mesh -- completion {shell} > completions/{file}`"
        );
    }
}

/// The bash script, sourced into a real bash, completes the commands people type (istioctl's
/// aliases too) and never the internal ones, and, asking `mesh` (on PATH) for each completion,
/// the kinds, resource names and proxy names of the running mesh and directories with their
/// `/`; the aliases and singular forms run.
#[test]
fn bash_completes_commands_and_istioctl_aliases_work() {
    let script = format!("{}/../completions/mesh.bash", env!("CARGO_MANIFEST_DIR"));
    let mut mesh = Mesh::new();
    let bin_dir = std::path::Path::new(MESH).parent().expect("bin dir").to_path_buf();
    let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap_or_default());
    let home = mesh.home.path().to_path_buf();
    let complete = |words: &str| {
        let line = format!("mesh {words}");
        let cmd = format!(
            "source {script}; COMP_LINE='{line}'; COMP_POINT=${{#COMP_LINE}}; read -ra COMP_WORDS <<< \"$COMP_LINE\"; [[ \"$COMP_LINE\" == *' ' ]] && COMP_WORDS+=(''); COMP_CWORD=$((${{#COMP_WORDS[@]}} - 1)); COMP_TYPE=9; _clap_complete_mesh mesh \"${{COMP_WORDS[-1]}}\" \"${{COMP_WORDS[-2]}}\"; printf '%s\\n' \"${{COMPREPLY[@]}}\""
        );
        let out = std::process::Command::new("bash")
            .args(["-c", &cmd])
            .env("PATH", &path)
            .env("MESH_HOME", &home)
            .env_remove("MESH_NAMESPACE")
            .output()
            .expect("bash");
        String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect::<Vec<_>>()
    };
    let has = |got: &[String], want: &str| got.iter().any(|w| w == want);
    let top = complete("");
    for want in ["install", "apply", "proxy-status", "pc", "analyze", "bug-report", "experimental"] {
        assert!(has(&top, want), "{want} offered: {top:?}");
    }
    assert!(!top.iter().any(|w| w.starts_with("__")), "no internal command offered: {top:?}");
    assert!(complete("__").iter().all(|w| w.is_empty()), "{:?}", complete("__"));
    assert_eq!(complete("k"), ["kube-inject"]);
    let p = complete("p");
    assert!(has(&p, "ps") || has(&p, "proxy-status"), "{p:?}");
    let pc = complete("proxy-config ");
    assert!(has(&pc, "clusters") && has(&pc, "routes"), "{pc:?}");
    let kinds = complete("get ");
    assert!(has(&kinds, "virtualservices") && has(&kinds, "vs") && has(&kinds, "workloads"), "{kinds:?}");
    assert!(has(&complete("delete "), "destinationrules"));

    // From the running mesh: resource names of the kind typed, proxy names; paths.
    mesh.install();
    mesh.ok(&["apply", "-f", concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/reviews.yaml")]);
    mesh.proxy(&["--workload", "reviews-v1", "--labels", "app=reviews,version=v1"]);
    mesh.wait_synced(1);
    assert!(has(&complete("get vs "), "reviews"), "{:?}", complete("get vs "));
    assert!(has(&complete("get svc prod"), "productpage"), "{:?}", complete("get svc prod"));
    assert!(has(&complete("delete dr "), "reviews"), "{:?}", complete("delete dr "));
    assert!(!has(&complete("get vs -n other "), "reviews"), "another namespace has none");
    for line in ["ps ", "pc routes ", "x describe pod ", "cert status "] {
        let got = complete(line);
        assert!(has(&got, "reviews-v1") && has(&got, "reviews-v1.default"), "{line}: {got:?}");
    }
    assert!(has(&complete("x describe svc "), "productpage"));
    let dir = format!("{}/../exa", env!("CARGO_MANIFEST_DIR"));
    let files = complete(&format!("apply -f {dir}"));
    assert!(files.iter().any(|f| f.ends_with("examples/")), "a directory, with its /: {files:?}");

    // The aliases and istioctl's singular forms parse.
    let other = Mesh::new();
    for args in [&["ps"][..], &["pc", "cluster", "x"], &["pc", "route", "x"], &["pc", "endpoint", "x"]] {
        let r = other.run(args);
        assert!(r.stderr.contains("meshd is not running"), "mesh {args:?}: {}", r.stderr);
    }
    let help = other.ok(&["completion", "--help"]);
    assert!(
        help.stdout.contains("bash-completion/completions/mesh") && help.stdout.contains("fish"),
        "{}",
        help.stdout
    );
}

#[test]
fn bad_input_names_the_problem_and_changes_nothing() {
    let mesh = Mesh::new();
    mesh.install();
    let dir = mesh.home.path();
    let good = dir.join("good.yaml");
    std::fs::write(
        &good,
        "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec:\n  selector: {app: web}\n  ports: [{port: 80}]\n",
    )
    .expect("write");
    mesh.ok(&["apply", "-f", good.to_str().expect("path")]);

    let cases: &[(&str, &str, &[&str])] = &[
        (
            "malformed.yaml",
            "apiVersion: v1\nkind: Service\nmetadata: {name: x\n",
            &["malformed.yaml", "malformed YAML"],
        ),
        (
            "unknown-field.yaml",
            "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: web}\nspec:\n  hosts: [web]\n  htpp: []\n",
            &["VirtualService default/web", "spec.htpp", "unknown field `htpp`"],
        ),
        (
            "unknown-kind.yaml",
            "apiVersion: networking.istio.io/v1\nkind: VirtualServce\nmetadata: {name: w}\n",
            &["unknown kind VirtualServce in networking.istio.io/v1"],
        ),
        (
            "weights.yaml",
            "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: web}\nspec:\n  hosts: [web]\n  http:\n  - route:\n    - {destination: {host: web, subset: a}, weight: 50}\n    - {destination: {host: web, subset: b}, weight: 40}\n",
            &["spec.http[0].route", "add up to 90, not 100"],
        ),
        (
            "regex.yaml",
            "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: web}\nspec:\n  hosts: [web]\n  http:\n  - match: [{uri: {regex: \"(\"}}]\n    route: [{destination: {host: web}}]\n",
            &["spec.http[0].match[0].uri.regex", "invalid regex"],
        ),
    ];
    for (name, body, expected) in cases {
        let path = dir.join(name);
        // Each bad document travels with a good one: the good one must not be applied either.
        std::fs::write(
            &path,
            format!(
                "apiVersion: v1\nkind: Service\nmetadata: {{name: other}}\nspec:\n  ports: [{{port: 81}}]\n---\n{body}"
            ),
        )
        .expect("write");
        let r = mesh.run(&["apply", "-f", path.to_str().expect("path")]);
        assert_eq!(r.code, BAD_INPUT, "{name}: {}", r.stderr);
        for e in *expected {
            assert!(r.stderr.contains(e), "{name}: expected {e:?} in:\n{}", r.stderr);
        }
        assert!(r.stderr.contains("nothing was changed"), "{name}: {}", r.stderr);
    }
    let list = mesh.ok(&["get", "services", "-o", "json"]).stdout;
    let list: serde_json::Value = serde_json::from_str(&list).expect("json");
    let names: Vec<&str> =
        list["items"].as_array().expect("items").iter().filter_map(|i| i["metadata"]["name"].as_str()).collect();
    assert_eq!(names, ["web"]);

    let r = mesh.run(&["get", "gizmos"]);
    assert_eq!(r.code, BAD_INPUT);
    assert!(r.stderr.contains("unknown kind \"gizmos\""), "{}", r.stderr);
    let r = mesh.run(&["delete", "svc", "nope"]);
    assert_eq!(r.code, FAILED);
    assert!(r.stderr.contains("not found"), "{}", r.stderr);
    mesh.ok(&["delete", "svc", "web"]);
    assert!(mesh.ok(&["get", "svc"]).stdout.contains("No services found"));
}

#[test]
fn store_survives_restart_and_tables_print() {
    if !corpus("store_survives_restart_and_tables_print") {
        return;
    }
    let mesh = Mesh::new();
    mesh.install();
    mesh.ok(&["apply", "-f", &shared("bookinfo/platform/kube/bookinfo.yaml")]);
    mesh.ok(&["apply", "-f", &shared("bookinfo/networking/destination-rule-all.yaml")]);
    mesh.ok(&["uninstall", "-y"]);
    mesh.install();
    let t = mesh.ok(&["get", "dr"]).stdout;
    assert!(t.lines().next().is_some_and(|h| h.starts_with("NAME") && h.contains("SUBSETS")), "{t}");
    assert!(t.contains("reviews") && t.contains("v1,v2,v3"), "{t}");
    let svc = mesh.ok(&["get", "svc", "-A"]).stdout;
    assert!(svc.contains("NAMESPACE") && svc.contains("productpage") && svc.contains("9080/TCP"), "{svc}");
    // kubectl's habits: an AGE column (meshd stamps creationTimestamp), -o wide with labels,
    // -o name, and -l selectors.
    let header = svc.lines().next().unwrap_or("");
    assert!(header.trim_end().ends_with("AGE"), "{svc}");
    assert!(svc.lines().skip(1).all(|l| l.trim_end().ends_with('s') || l.trim_end().ends_with('m')), "{svc}");
    let wide = mesh.ok(&["get", "svc", "-o", "wide"]).stdout;
    assert!(wide.lines().next().is_some_and(|h| h.contains("LABELS")) && wide.contains("app=reviews"), "{wide}");
    assert_eq!(mesh.ok(&["get", "svc", "-l", "app=reviews", "-o", "name"]).stdout.trim(), "service/reviews");
    let names = mesh.ok(&["get", "svc", "-l", "service,app!=reviews", "-o", "name"]).stdout;
    assert!(names.contains("service/productpage") && !names.contains("reviews"), "{names}");
    assert_eq!(mesh.run(&["get", "svc", "-l", "a b"]).code, USAGE);
    let v = mesh.ok(&["version", "-o", "json"]).stdout;
    let v: serde_json::Value = serde_json::from_str(&v).expect("json");
    assert_eq!(v["client"], v["meshd"]);
    // The token file is private.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(mesh.home.path().join("token")).expect("token").permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    // A wrong token is refused.
    std::fs::write(mesh.home.path().join("token"), "wrong").expect("write");
    let r = mesh.run(&["get", "svc"]);
    assert_eq!(r.code, UNAVAILABLE);
    assert!(r.stderr.contains("access token"), "{}", r.stderr);
}

#[test]
fn demo_runs_to_the_end_without_a_tty() {
    let out = std::process::Command::new(MESH)
        .args(["demo", "--requests", "100"])
        .env("NO_COLOR", "1")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run demo");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "demo failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let rows: Vec<&str> = stdout.lines().skip_while(|l| !l.starts_with("STEP")).skip(1).take(4).collect();
    assert_eq!(rows.len(), 4, "{stdout}");
    // Step 1 is all v1, step 4 all v3, and nothing failed.
    assert!(rows[0].contains("100 (100%)") && rows[3].ends_with(" 0"), "{stdout}");
    assert!(rows[3].contains("100 (100%)"), "{stdout}");
    assert!(stdout.contains("SYNCED") && stdout.contains("everything it started has stopped"), "{stdout}");
}

#[test]
fn fields_not_enforced_yet_are_announced() {
    if !corpus("fields_not_enforced_yet_are_announced") {
        return;
    }
    let mesh = Mesh::new();
    mesh.install();
    mesh.ok(&["apply", "-f", &shared("bookinfo/platform/kube/bookinfo.yaml")]);
    mesh.ok(&["apply", "-f", &shared("bookinfo/networking/destination-rule-all.yaml")]);
    let file = mesh.home.path().join("cors.yaml");
    std::fs::write(
        &file,
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: ratings}\nspec:\n  hosts: [ratings]\n  http:\n  - fault:\n      delay: {exponentialDelay: 1s, percentage: {value: 10}}\n    route:\n    - destination: {host: ratings}\n",
    )
    .expect("write");
    let r = mesh.ok(&["apply", "-f", file.to_str().expect("path")]);
    assert!(
        r.stderr.contains("not enforced by the proxy yet: spec.http[0].fault.delay.exponentialDelay"),
        "{}",
        r.stderr
    );
    // Faults are enforced now: no warning for Istio's fault-injection file.
    let r = mesh.ok(&["apply", "-f", &shared("bookinfo/networking/virtual-service-ratings-test-abort.yaml")]);
    assert!(!r.stderr.contains("not enforced"), "{}", r.stderr);
}

#[test]
fn analyze_files_offline_and_the_live_mesh() {
    if !corpus("analyze_files_offline_and_the_live_mesh") {
        return;
    }
    let mesh = Mesh::new();
    let testdata = shared("analyzers/testdata/virtualservice_destinationhosts.yaml");
    let r = mesh.run(&["analyze", "--offline", "-A", "-f", &testdata]);
    assert_eq!(r.code, ISSUES_FOUND, "errors found: exit 79\n{}", r.stdout);
    assert!(
        r.stdout.contains(r#"Error [IST0101] (VirtualService reviews-bogusport.default) Referenced host:port not found: "reviews:999""#),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("Error [IST0112] (VirtualService reviews-2port-missing.default)"), "{}", r.stdout);
    // Suppressions and thresholds.
    let r = mesh.run(&["analyze", "--offline", "-A", "-f", &testdata, "-S", "IST01*=*", "-o", "json"]);
    assert_eq!((r.code, r.stdout.trim()), (0, "[]"), "{}", r.stderr);
    let r = mesh.run(&[
        "analyze",
        "--offline",
        "-A",
        "-f",
        &testdata,
        "--analyzer",
        "virtualservice.DestinationHostAnalyzer",
        "--failure-threshold",
        "Error",
        "--output-threshold",
        "Error",
        "-o",
        "json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).expect("json");
    assert_eq!(v.as_array().map(Vec::len), Some(8));
    assert_eq!(v[0]["level"], "Error");
    assert!(v[0]["origin"].as_str().is_some_and(|o| o.starts_with("VirtualService ") && o.contains('/')), "{v}");

    // The running mesh: a VirtualService that routes to a host nobody serves.
    mesh.install();
    mesh.ok(&["apply", "-f", &shared("bookinfo/platform/kube/bookinfo.yaml")]);
    let clean = mesh.ok(&["analyze"]);
    assert!(clean.stdout.contains("No validation issues found when analyzing namespace: default"), "{}", clean.stdout);
    let vs = mesh.home.path().join("vs.yaml");
    std::fs::write(&vs, "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: typo}\nspec:\n  hosts: [reviews]\n  http:\n  - route: [{destination: {host: reveiws}}]\n").expect("write");
    // Apply refuses it (an Error about what is applied); with --force it stores it and says
    // what the analysis found.
    assert_eq!(mesh.run(&["apply", "-f", vs.to_str().expect("path")]).code, ISSUES_FOUND);
    let applied = mesh.ok(&["apply", "-f", vs.to_str().expect("path"), "--force"]);
    assert!(
        applied
            .stderr
            .contains(r#"warning: Error [IST0101] (VirtualService typo.default) Referenced host not found: "reveiws""#),
        "{}",
        applied.stderr
    );
    let r = mesh.run(&["analyze"]);
    assert_eq!(r.code, ISSUES_FOUND);
    assert!(
        r.stdout.contains(r#"Error [IST0101] (VirtualService typo.default) Referenced host not found: "reveiws""#),
        "{}",
        r.stdout
    );
}

/// `kubernetes-validate` (PyPI; bundles Kubernetes' OpenAPI schemas, works offline) in strict
/// mode against one file; the output when it refuses.
fn kube_validate(file: &std::path::Path) -> Result<(), String> {
    let out = std::process::Command::new("kubernetes-validate")
        .args(["--strict", "--quiet", "-k", "1.30.0"])
        .arg(file)
        .output()
        .map_err(|e| {
            format!("cannot run kubernetes-validate ({e}); install it with `pip install kubernetes-validate`")
        })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
    }
}

#[test]
fn generated_manifests_and_injected_workloads_validate_against_kubernetes_schemas() {
    if !corpus("generated_manifests_and_injected_workloads_validate_against_kubernetes_schemas") {
        return;
    }
    if !prerequisite("kubernetes-validate (`pip install kubernetes-validate`)", have("kubernetes-validate")) {
        return;
    }
    let mesh = Mesh::new();
    let dir = mesh.home.path();
    for profile in ["default", "demo", "minimal"] {
        let text = mesh.ok(&["manifest", "generate", "--profile", profile]).stdout;
        let file = dir.join(format!("{profile}.yaml"));
        std::fs::write(&file, &text).expect("write");
        kube_validate(&file).unwrap_or_else(|e| panic!("profile {profile}: {e}"));
    }
    // Every Istio sample with workloads, injected, still valid; injecting again changes nothing.
    let mut checked = 0;
    for rel in [
        "bookinfo/platform/kube/bookinfo.yaml",
        "bookinfo/platform/kube/bookinfo-ratings-v2-mysql.yaml",
        "bookinfo/platform/kube/bookinfo-db.yaml",
        "bookinfo/platform/kube/bookinfo-psa.yaml",
        "samples/grpc-echo/grpc-echo.yaml",
        "samples/websockets/app.yaml",
        "samples/health-check/liveness-http-same-port.yaml",
    ] {
        let injected = mesh.ok(&["inject", "-f", &shared(rel)]).stdout;
        assert!(injected.contains("name: istio-proxy"), "{rel} got no proxy");
        let file = dir.join("injected.yaml");
        std::fs::write(&file, &injected).expect("write");
        kube_validate(&file).unwrap_or_else(|e| panic!("{rel} injected: {e}"));
        let again = mesh.ok(&["inject", "-f", file.to_str().expect("path")]).stdout;
        assert_eq!(again, injected, "{rel}: injecting twice changed it");
        checked += 1;
    }
    assert_eq!(checked, 7);
    // Bad settings are named and nothing is printed.
    let r = mesh.run(&["manifest", "generate", "--set", "values.global.nope=1"]);
    assert_eq!(r.code, BAD_INPUT);
    assert!(r.stderr.contains("values.global.nope: unknown setting") && r.stdout.is_empty(), "{}", r.stderr);
    // Istio's own IstioOperator sample: demo without gateways.
    let iop = shared("bookinfo/demo-profile-no-gateways.yaml");
    let out = mesh.ok(&["manifest", "generate", "-f", &iop]).stdout;
    assert!(out.contains("kind: Deployment") && !out.contains("name: istio-ingressgateway"), "no ingress gateway");
}

/// Documents the generated CRDs' schemas must admit or refuse, as a real API server would with
/// meshd down (no webhook): Istio's own validation cases for the served kinds, its validation
/// dataset, every Istio document of the bookinfo and samples directories, and mesh's own invalid
/// cases (`tests/e2e/crd/mesh-invalid.yaml`).
fn crd_check_files() -> Vec<String> {
    let mut files: Vec<String> = ["authz", "peerauth", "reqauth", "destinationrule", "serviceentry", "telemetry"]
        .iter()
        .flat_map(|k| ["valid", "invalid"].map(|v| shared(&format!("extra/validation-crds/{k}-{v}.yaml"))))
        .collect();
    let mut dirs = vec![
        std::path::PathBuf::from(shared("extra/validation-dataset")),
        std::path::PathBuf::from(shared("bookinfo")),
        std::path::PathBuf::from(shared("samples")),
    ];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())).flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "yaml") {
                let text = std::fs::read_to_string(&path).unwrap_or_default();
                if [".istio.io/", "policy.mesh.io/"].iter().any(|g| text.contains(g)) {
                    files.push(path.display().to_string());
                }
            }
        }
    }
    files.push(format!("{}/../tests/e2e/crd/mesh-invalid.yaml", env!("CARGO_MANIFEST_DIR")));
    files
}

/// The CRDs refuse on their own what `mesh apply` refuses: their structural schemas, generated
/// from the types mesh parses with, carry Istio's enums, ranges, required fields and CEL rules.
/// Checked offline with independent implementations: `jsonschema` for the OpenAPI schema (after
/// the API server's pruning) and `cel-python` for every `x-kubernetes-validations` rule.
#[test]
fn crd_schemas_refuse_invalid_istio_config_without_meshd() {
    if !corpus("crd_schemas_refuse_invalid_istio_config_without_meshd") {
        return;
    }
    let python = ["yaml", "jsonschema", "celpy"].iter().all(|m| python_has(m));
    if !prerequisite(
        "python3 with PyYAML, jsonschema and cel-python (`pip install cel-python kubernetes-validate`)",
        python,
    ) {
        return;
    }
    let mesh = Mesh::new();
    let crds = mesh.home.path().join("crds.yaml");
    std::fs::write(&crds, mesh.ok(&["manifest", "generate", "--profile", "default"]).stdout).expect("write");
    let script = format!("{}/../tests/e2e/crd/check.py", env!("CARGO_MANIFEST_DIR"));
    let out = std::process::Command::new("python3")
        .arg(&script)
        .arg(&crds)
        .args(crd_check_files())
        .output()
        .expect("python3");
    assert!(out.status.success(), "check.py: {}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let (rules, docs) = lines.split_first().expect("a first line");
    assert!(rules["rules"].as_u64().is_some_and(|n| n >= 25), "{rules}");
    assert_eq!(rules["uncompiled"], serde_json::json!([]), "every CEL rule compiles");
    let (mut refused, mut admitted, mut failures) = (0, 0, Vec::new());
    for d in docs.iter().filter(|d| !d["refused"].is_null()) {
        let reasons = d["refused"].as_array().expect("reasons");
        let label = format!("{} {} {}/{}", d["file"], d["index"], d["kind"], d["name"]);
        match (d["expect"].as_str(), reasons.is_empty()) {
            (Some("invalid"), false) => refused += 1,
            (Some("invalid"), true) => {
                failures.push(format!("{label}: admitted; Istio's API server says {}", d["err"]))
            }
            (_, true) => admitted += 1,
            (_, false) => failures.push(format!("{label}: valid but refused: {reasons:?}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // Istio's 47 invalid cases for the served kinds, and mesh's own 14.
    assert!(refused >= 47 + 14, "{refused} refused");
    assert!(admitted >= 100, "{admitted} admitted");
    // What the schemas refuse of mesh's own cases, `mesh apply` refuses too, naming the field.
    let text = std::fs::read_to_string(format!("{}/../tests/e2e/crd/mesh-invalid.yaml", env!("CARGO_MANIFEST_DIR")))
        .expect("mesh-invalid.yaml");
    for (i, doc) in text.split("\n---\n").enumerate() {
        let file = mesh.home.path().join(format!("invalid-{i}.yaml"));
        let doc: String =
            doc.lines().filter(|l| !l.starts_with("_err:") && !l.starts_with('#')).map(|l| format!("{l}\n")).collect();
        std::fs::write(&file, &doc).expect("write");
        let r = mesh.run(&["apply", "--dry-run", "-f", file.to_str().expect("path")]);
        assert_eq!(r.code, BAD_INPUT, "mesh apply admitted case {i}:\n{doc}\n{}", r.stderr);
        assert!(r.stderr.contains(": spec"), "case {i} names the field: {}", r.stderr);
    }
}

/// POST a JSON body to meshd's API port (no token: the admission webhooks need none).
fn post_json(addr: &str, path: &str, body: &serde_json::Value) -> serde_json::Value {
    use std::io::{Read, Write};
    let text = body.to_string();
    let mut s = std::net::TcpStream::connect(addr).expect("connect meshd");
    write!(s, "POST {path} HTTP/1.1\r\nHost: meshd\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}", text.len())
        .expect("write");
    let mut resp = String::new();
    s.read_to_string(&mut resp).expect("read");
    let body = resp.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    // A chunked body has size lines around the JSON.
    let json = body.find('{').and_then(|i| body.rfind('}').map(|j| &body[i..=j])).unwrap_or("");
    serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}: {resp}"))
}

#[test]
fn admission_webhooks_validate_and_inject_over_the_api_port() {
    let mesh = Mesh::new();
    mesh.install();
    let info: serde_json::Value =
        serde_json::from_slice(&std::fs::read(mesh.home.path().join("meshd.json")).expect("meshd.json")).expect("json");
    let addr = info["address"].as_str().expect("address").to_string();
    let review = |object: serde_json::Value| {
        serde_json::json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "request": {"uid": "r-1", "namespace": "default", "operation": "CREATE", "object": object}})
    };
    let bad = review(serde_json::json!({"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
        "metadata": {"name": "d"}, "spec": {"host": "reviews", "subsets": [{"name": "v1"}, {"name": "v1"}]}}));
    let out = post_json(&addr, "/validate", &bad);
    assert_eq!(out["response"]["uid"], "r-1");
    assert_eq!(out["response"]["allowed"], false, "{out}");
    assert!(out["response"]["status"]["message"].as_str().is_some_and(|m| m.contains("spec.subsets")), "{out}");
    let pod = review(
        serde_json::json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "labels": {"app": "x"}},
        "spec": {"containers": [{"name": "x", "image": "x"}]}}),
    );
    let out = post_json(&addr, "/inject", &pod);
    assert_eq!(out["response"]["allowed"], true);
    assert_eq!(out["response"]["patchType"], "JSONPatch", "{out}");
}

/// An apply whose analysis finds an Error about what is applied (a route to a subset no
/// DestinationRule defines) is refused, changing nothing, unless --force; Warnings do not stop
/// it. `analyze` takes files as istioctl does and fails a document apply would refuse.
#[test]
fn apply_refuses_errors_the_analysis_finds_unless_forced() {
    let mesh = Mesh::new();
    mesh.install();
    apply(
        &mesh,
        "svc.yaml",
        "apiVersion: v1\nkind: Service\nmetadata: {name: reviews}\nspec:\n  selector: {app: reviews}\n  ports: [{name: http, port: 9080}]\n---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: reviews}\nspec:\n  host: reviews\n  subsets: [{name: v1, labels: {version: v1}}]\n",
    );
    let vs = mesh.home.path().join("v7.yaml");
    std::fs::write(
        &vs,
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: reviews}\nspec:\n  hosts: [reviews]\n  http: [{route: [{destination: {host: reviews, subset: v7}}]}]\n",
    )
    .expect("write");
    let vs = vs.to_str().expect("path");
    let refused = mesh.run(&["apply", "-f", vs]);
    assert_eq!(refused.code, ISSUES_FOUND, "{}", refused.stderr);
    assert!(refused.stderr.contains("IST0101") && refused.stderr.contains("v7"), "{}", refused.stderr);
    assert!(refused.stderr.contains("nothing was changed") && refused.stderr.contains("--force"), "{}", refused.stderr);
    assert!(!mesh.ok(&["get", "vs"]).stdout.contains("reviews"), "nothing stored");
    let forced = mesh.ok(&["apply", "-f", vs, "--force"]);
    assert!(forced.stdout.contains("configured") || forced.stdout.contains("created"), "{}", forced.stdout);
    assert!(forced.stderr.contains("IST0101"), "still reported: {}", forced.stderr);
    assert!(mesh.ok(&["get", "vs"]).stdout.contains("reviews"), "stored with --force");

    // analyze: positional files; a document apply refuses fails the analysis.
    let typo = mesh.home.path().join("typo.yaml");
    std::fs::write(&typo, "apiVersion: networking.istio.io/v1\nkind: VirtualServis\nmetadata: {name: x}\nspec: {}\n")
        .expect("write");
    let r = mesh.run(&["analyze", "--offline", typo.to_str().expect("path")]);
    assert_ne!(r.code, 0, "{}", r.stdout);
    assert!(!r.stdout.contains("No validation issues"), "{}", r.stdout);
    assert!(r.stderr.contains("unknown kind VirtualServis") && r.stderr.contains("typo.yaml"), "{}", r.stderr);
    let r = mesh.run(&["analyze", "--offline", vs]);
    assert!(r.stdout.contains("IST0101"), "positional files are analyzed: {}", r.stdout);
}

/// Scripts can tell failures apart by exit code: usage 64, bad input 65, meshd unreachable
/// 69, analysis issues 79, anything else that failed 1.
#[test]
fn exit_codes_tell_failures_apart() {
    let mesh = Mesh::new();
    for args in [
        &["no-such-command"][..],
        &["apply"],
        &["delete"],
        &["analyze", "--suppress", "nonsense"],
        &["top", "--interval", "1ms"],
    ] {
        assert_eq!(mesh.run(args).code, USAGE, "mesh {args:?}");
    }
    assert_eq!(mesh.run(&["--help"]).code, 0);
    assert_eq!(mesh.run(&["--version"]).code, 0);
    assert_eq!(mesh.run(&["get", "vs"]).code, UNAVAILABLE, "no meshd");
    let bad = mesh.home.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: x}\nspec: {hosts: 7}\n",
    )
    .expect("write");
    let bad = bad.to_str().expect("path");
    assert_eq!(mesh.run(&["apply", "-f", bad]).code, BAD_INPUT);
    let dangling = mesh.home.path().join("dangling.yaml");
    std::fs::write(
        &dangling,
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: x}\nspec:\n  hosts: [x]\n  http: [{route: [{destination: {host: nowhere}}]}]\n",
    )
    .expect("write");
    assert_eq!(mesh.run(&["analyze", "--offline", dangling.to_str().expect("path")]).code, ISSUES_FOUND);
    assert_eq!(mesh.run(&["logs"]).code, FAILED, "no meshd.log before install");
    mesh.install();
    assert_eq!(mesh.run(&["get", "vs", "missing"]).code, FAILED, "not found");
    // meshd's log, whole or its tail.
    let all = mesh.ok(&["logs"]).stdout;
    assert!(all.lines().count() >= 1 && all.contains("INFO"), "{all}");
    let tail = mesh.ok(&["logs", "--tail", "1"]).stdout;
    assert_eq!(tail.lines().count(), 1, "{tail}");
    assert!(all.ends_with(&tail), "the last line: {tail}");
}

/// `demo --keep` leaves its mesh running and says how to reach it: the MESH_HOME to export and
/// where its traffic enters; the commands it suggests work; Ctrl-C stops everything.
#[test]
fn demo_keep_says_how_to_use_the_running_mesh() {
    use std::io::BufRead;
    let mut demo = std::process::Command::new(MESH)
        .args(["demo", "--requests", "20", "--keep"])
        .env("NO_COLOR", "1")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("demo");
    let pid = demo.id();
    // Whatever happens below, the demo is interrupted and reaped.
    struct Interrupt(std::process::Child);
    impl Drop for Interrupt {
        fn drop(&mut self) {
            let _ = std::process::Command::new("kill").args(["-INT", &self.0.id().to_string()]).status();
            let _ = self.0.wait();
        }
    }
    let stdout = demo.stdout.take().expect("stdout");
    let stderr = demo.stderr.take().expect("stderr");
    let guard = Interrupt(demo);
    let (tx, rx) = std::sync::mpsc::channel();
    for stream in [Box::new(stdout) as Box<dyn std::io::Read + Send>, Box::new(stderr)] {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stream).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
    }
    let (mut home, mut via) = (None, None);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while (home.is_none() || via.is_none()) && std::time::Instant::now() < deadline {
        let Ok(line) = rx.recv_timeout(std::time::Duration::from_secs(1)) else { continue };
        if let Some(h) = line.trim().strip_prefix("export MESH_HOME=") {
            home = Some(h.to_string());
        }
        if let Some(rest) = line.trim().strip_prefix("curl -x http://") {
            via = rest.split_whitespace().next().and_then(|a| a.parse::<std::net::SocketAddr>().ok());
        }
    }
    let (home, via) = (home.expect("the MESH_HOME to export"), via.expect("where traffic enters"));
    let ps = std::process::Command::new(MESH).arg("proxy-status").env("MESH_HOME", &home).output().expect("ps");
    let ps = String::from_utf8_lossy(&ps.stdout);
    assert!(ps.contains("productpage") && ps.contains("reviews-v3"), "{ps}");
    let (code, body) = get(via, "reviews:9080", "/", true, &[]);
    assert_eq!(code, 200, "{body}");
    drop(guard);
    assert!(!alive(pid), "the demo exited on Ctrl-C");
    assert!(
        !std::path::Path::new(&home).join("meshd.json").exists() || {
            let r = std::process::Command::new(MESH).arg("proxy-status").env("MESH_HOME", &home).output().expect("ps");
            !r.status.success()
        },
        "its meshd stopped"
    );
}
