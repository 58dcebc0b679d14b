//! Evidence from other tools, end to end through the real binary: the shared real outputs of
//! the Kubernetes e2e suite and kube-bench judged with provenance, stale evidence refused, a
//! truncated file stopping the run before anything runs. Skipped when the shared evidence
//! directory is absent; a failure when CI=true.

mod common;

use std::path::Path;

use common::{assert_contains, evidence_dir, nfvi, text};

/// `run --suite evidence` with no kubeconfig anywhere (HOME is a scratch directory).
fn run(home: &Path, out: &Path, args: &[&str]) -> assert_cmd::assert::Assert {
    let mut cmd = nfvi();
    cmd.env("HOME", home)
        .env_remove("KUBECONFIG")
        .args(["run", "--suite", "evidence", "--out"])
        .arg(out)
        .args(args);
    cmd.assert()
}

fn results(out: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(out.join("results.json")).unwrap()).unwrap()
}

fn check<'a>(r: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    r["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("no {id}"))
}

#[test]
fn conformance_and_kube_bench_evidence_are_judged_with_provenance() {
    let d = evidence_dir();
    let tmp = tempfile::tempdir().unwrap();
    let junit = d.join("k8s-e2e/cncf-v1.33-catalyst-cloud/junit_01.xml");
    let bench = d.join("kube-bench/newrelic-cis-1.23-k8s-1.25/kube-bench-output.json");
    let out = tmp.path().join("fresh");
    let args = [
        "--evidence",
        junit.to_str().unwrap(),
        "--evidence",
        bench.to_str().unwrap(),
    ];
    let mut any_age = args.to_vec();
    any_age.extend(["--evidence-max-age", "0"]);
    // kube-bench fails controls of sec.sys.001: not conformant (exit 1).
    run(tmp.path(), &out, &any_age).code(1);
    let r = results(&out);
    let c = check(&r, "evidence.k8s.conformance");
    assert_eq!(text(c, "outcome"), "passed", "{c}");
    assert_contains(text(c, "message"), "419 [Conformance] spec(s) passed");
    assert_contains(text(c, "message"), "identity not compared");
    let p = &c["evidence"]["provenance"][0];
    assert_eq!(text(p, "file"), junit.to_str().unwrap());
    assert_eq!(
        text(p, "sha256"),
        "e1ff8dce24897f1b035d255aba18556611cd54943777ee7ae5382d9df5ce35ee"
    );
    assert_eq!(text(p, "run_at_source"), "file");
    assert_eq!(p["identity_verified"], false);
    let req = r["requirements"]
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["id"] == "gen.cnt.03")
        .unwrap();
    assert_contains(&req.to_string(), "evidence.k8s.conformance");

    let cis = check(&r, "evidence.kube-bench.cis");
    assert_eq!(text(cis, "outcome"), "failed");
    assert_contains(
        text(cis, "message"),
        "12 of 67 scored CIS controls did not pass",
    );
    let auth = check(&r, "evidence.kube-bench.authentication");
    assert_eq!(text(auth, "outcome"), "failed");
    assert_contains(
        text(&auth["evidence"]["properties"], "controls"),
        "1.2.1 WARN (master)",
    );
    let rbac = check(&r, "evidence.kube-bench.rbac");
    assert_eq!(text(rbac, "outcome"), "passed", "{rbac}");
    assert_eq!(
        text(&rbac["evidence"]["provenance"][0], "tool"),
        "kube-bench"
    );
    assert_eq!(
        text(check(&r, "evidence.tempest.identity"), "outcome"),
        "skipped"
    );

    // The same evidence with a 30-day limit: refused, naming the age.
    let stale = tmp.path().join("stale");
    let mut thirty = args.to_vec();
    thirty.extend(["--evidence-max-age", "30"]);
    // Refused evidence is an error; kube-bench (dated by its mtime, fresh) still fails: exit 1.
    run(tmp.path(), &stale, &thirty).code(1);
    let r = results(&stale);
    let c = check(&r, "evidence.k8s.conformance");
    assert_eq!(text(c, "outcome"), "error");
    assert_contains(text(c, "message"), "refused: ");
    assert_contains(
        text(c, "message"),
        "days old, older than evidence.max_age_days = 30",
    );
    assert_eq!(text(&c["evidence"]["provenance"][0], "sha256").len(), 64);
}

#[test]
fn a_failing_conformance_run_names_its_failed_specs() {
    let d = evidence_dir();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let junit = d.join("k8s-e2e/homelab-srv6-v1.32.0-2025-02-22/junit_01.xml");
    run(
        tmp.path(),
        &out,
        &[
            "--evidence",
            junit.to_str().unwrap(),
            "--evidence-max-age",
            "0",
        ],
    )
    .code(1);
    let r = results(&out);
    let c = check(&r, "evidence.k8s.conformance");
    assert_eq!(text(c, "outcome"), "failed");
    let m = text(c, "message");
    assert_contains(m, "failed 2 spec(s)");
    assert_contains(
        m,
        "validates that NodeSelector is respected if not matching [Conformance]",
    );
    assert_contains(
        m,
        "validates resource limits of pods that are allowed to run [Conformance]",
    );
    assert_eq!(c["evidence"]["metrics"]["specs_failed"]["value"], 2.0);
}

#[test]
fn bad_evidence_stops_the_run_before_anything_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let junit = tmp.path().join("junit_01.xml");
    std::fs::write(&junit, "<testsuites>\n  <testsuite name=\"Kubernetes e2e suite\">\n    <testcase name=\"[It] x\" status=\"passed\">").unwrap();
    let out = tmp.path().join("out");
    run(tmp.path(), &out, &["--evidence", junit.to_str().unwrap()])
        .code(2)
        .stderr(predicates::str::contains(format!(
            "evidence {} at line 3:45",
            junit.display()
        )));
    assert!(!out.join("results.json").exists(), "nothing ran");

    let log = tmp.path().join("dovetail.log");
    std::fs::write(
        &log,
        "2016-09-04 05:27:01 - INFO - Dovetail compliance: [PASS]\n",
    )
    .unwrap();
    run(tmp.path(), &out, &["--evidence", log.to_str().unwrap()])
        .code(2)
        .stderr(predicates::str::contains("not a supported kind"));
}

#[test]
fn without_evidence_the_checks_are_skipped_with_the_flag_to_use() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    run(tmp.path(), &out, &[]);
    let r = results(&out);
    let c = check(&r, "evidence.k8s.conformance");
    assert_eq!(text(c, "outcome"), "skipped");
    assert_contains(text(c, "message"), "--evidence");
}

#[test]
fn rc2_lists_the_evidence_checks() {
    let out = common::stdout_text(nfvi().args(["list", "--suite", "rc2"]));
    for id in [
        "evidence.k8s.conformance",
        "evidence.kube-bench.cis",
        "evidence.kube-bench.authentication",
        "evidence.kube-bench.rbac",
    ] {
        assert_contains(&out, id);
    }
}
