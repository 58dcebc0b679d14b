//! `nfvi-verify run --suite host` end to end on this machine: the three artifacts, the JSON
//! against its schema, the JUnit in a real consumer (Python junitparser), the HTML in headless
//! Chromium, and then report, rerun-failed and diff on the real results.

mod common;

use std::path::{Path, PathBuf};

use common::{chromium, chromium_load, has_junitparser, junitparser_summary, nfvi, require};
use predicates::prelude::*;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn run_host(out: &Path) -> (i32, serde_json::Value, String) {
    let assert = nfvi()
        .args(["run", "--suite", "host", "--jobs", "2", "--out"])
        .arg(out)
        .assert();
    let output = assert.get_output();
    let code = output.status.code().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        [0, 1, 3].contains(&code),
        "unexpected exit {code}: {stderr}"
    );
    let results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    (code, results, stderr)
}

#[test]
fn a_host_run_writes_consistent_json_junit_and_html() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let (code, results, stderr) = run_host(&out);
    for f in [
        "results.json",
        "junit.xml",
        "report.html",
        "badge.svg",
        "nfvi-verify.log",
    ] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    assert!(
        stderr.contains(&format!("report:  {}", out.join("report.html").display())),
        "{stderr}"
    );

    // The JSON is what the schema says, and the exit code is the verdict.
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("schemas/results.schema.json")).unwrap(),
    )
    .unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(&results)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "{errors:?}");
    let verdict = results["verdict"].as_str().unwrap();
    assert_eq!(
        code,
        match verdict {
            "conformant" => 0,
            "non-conformant" => 1,
            _ => 3,
        }
    );
    let checks = results["checks"].as_array().unwrap();
    assert!(checks.len() >= 19);
    assert!(
        results["inventory"]["kernel"]
            .as_str()
            .is_some_and(|k| !k.is_empty())
    );
    // Real results: the kernel release the check saw is the one this machine runs.
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    let kv = checks
        .iter()
        .find(|c| c["id"] == "host.kernel.version")
        .unwrap();
    assert_eq!(kv["evidence"]["properties"]["kernel"], kernel.trim());

    let count = |o: &str| checks.iter().filter(|c| c["outcome"] == o).count() as u64;
    if require(
        "python3 with junitparser (pip install junitparser)",
        has_junitparser(),
    ) {
        let j = junitparser_summary(&out.join("junit.xml"));
        assert_eq!(j["passed"], count("passed"));
        assert_eq!(j["failure"], count("failed"));
        assert_eq!(j["error"], count("error") + count("timed-out"));
        assert_eq!(j["skipped"], count("skipped"));
        let cases = j["cases"].as_array().unwrap();
        let mut unique: Vec<String> = cases
            .iter()
            .map(|c| format!("{}::{}", c[0], c[1]))
            .collect();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), checks.len(), "classname+name must be unique");
        // The host suite's own checks, and the fleet comparisons (not applicable here).
        assert!(
            cases
                .iter()
                .all(|c| c[0] == "host.host" || c[0] == "host.fleet"),
            "{cases:?}"
        );
    }
    if let Some(browser) = chromium().filter(|_| true) {
        let (dom, console) = chromium_load(browser, &out.join("report.html"));
        assert!(console.is_empty(), "console messages: {console:?}");
        assert!(dom.contains("Requirement traceability"));
        assert!(dom.contains("id=\"check-host.node.vcpus\""));
        assert!(dom.contains("href=\"#req-ra2.ch.011\""));
        assert!(
            !dom.contains("http://") || !dom.contains("<link"),
            "the report must not fetch anything"
        );
    } else {
        require("chromium (apt install chromium)", false);
    }
    // Nothing in the HTML points outside the file.
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(!html.contains("src=\"http") && !html.contains("<link") && !html.contains("@import"));

    // `report` re-renders the same HTML and JUnit from the JSON alone.
    let again = dir.path().join("again.html");
    let junit_again = dir.path().join("again.xml");
    nfvi()
        .args(["report", "--from"])
        .arg(out.join("results.json"))
        .arg("--html")
        .arg(&again)
        .arg("--junit")
        .arg(&junit_again)
        .assert()
        .success();
    assert_eq!(
        std::fs::read(&again).unwrap(),
        std::fs::read(out.join("report.html")).unwrap()
    );
    assert_eq!(
        std::fs::read(&junit_again).unwrap(),
        std::fs::read(out.join("junit.xml")).unwrap()
    );

    // `--rerun-failed` plans exactly the checks that did not pass.
    let bad: Vec<&str> = checks
        .iter()
        .filter(|c| ["failed", "error", "timed-out"].contains(&c["outcome"].as_str().unwrap()))
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    let rerun = dir.path().join("rerun");
    let assert = nfvi()
        .arg("run")
        .arg("--rerun-failed")
        .arg(out.join("results.json"))
        .arg("--out")
        .arg(&rerun)
        .assert();
    if bad.is_empty() {
        assert
            .success()
            .stderr(predicate::str::contains("nothing to rerun"));
    } else {
        let rerun_results: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(rerun.join("results.json")).unwrap())
                .unwrap();
        let ids: Vec<&str> = rerun_results["checks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, bad);
        assert_eq!(rerun_results["suite"]["name"], "host");
        // The requirements the rerun did not plan are covered, only not run now.
        let out = assert.get_output();
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            said.contains(" not run in this rerun") && !said.contains("not covered by this build"),
            "{said}"
        );
    }

    // `diff` reports a regression when a passed check fails, and exits 1.
    let mut worse = results.clone();
    let passed = worse["checks"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|c| c["outcome"] == "passed")
        .unwrap();
    passed["outcome"] = "failed".into();
    let id = passed["id"].as_str().unwrap().to_owned();
    let worse_path = dir.path().join("worse.json");
    std::fs::write(&worse_path, serde_json::to_string(&worse).unwrap()).unwrap();
    nfvi()
        .arg("diff")
        .arg(out.join("results.json"))
        .arg(&worse_path)
        .assert()
        .code(1)
        .stdout(predicate::str::contains(format!(
            "REGRESSED {id}: passed -> failed"
        )));
    nfvi()
        .arg("diff")
        .arg(out.join("results.json"))
        .arg(out.join("results.json"))
        .assert()
        .success()
        .stdout("no differences in outcomes or metrics\n");
}

#[test]
fn the_default_output_directory_has_a_latest_link() {
    let cwd = tempfile::tempdir().unwrap();
    nfvi()
        .current_dir(cwd.path())
        .args(["run", "--suite", "host", "--filter", "host.kernel.version"])
        .assert()
        // The kernel check traces to no requirement: nothing mandatory was verified, so the
        // run is incomplete rather than conformant by omission.
        .code(3);
    let latest = cwd.path().join("nfvi-results/latest");
    assert!(latest.join("report.html").is_file());
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(latest.join("results.json")).unwrap())
            .unwrap();
    assert_eq!(r["verdict"], "incomplete");
    assert_eq!(r["totals"]["mandatory_verified"], 0);
    let target = std::fs::read_link(&latest).unwrap();
    assert!(
        target.to_string_lossy().contains('Z'),
        "{}",
        target.display()
    );
}

#[test]
fn hostile_strings_from_the_nfvi_stay_text_in_html_and_junit() {
    let dir = tempfile::tempdir().unwrap();
    let results = nfvi_integration_tests::synthetic_results(40);
    let path = dir.path().join("results.json");
    std::fs::write(&path, results.to_json()).unwrap();
    nfvi()
        .args(["report", "--from"])
        .arg(&path)
        .assert()
        .success();
    let html = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
    assert!(
        !html.contains("<script>"),
        "an unescaped <script> reached the HTML"
    );
    assert!(
        html.contains("&#60;script&#62;document.title=")
            || html.contains("&lt;script&gt;document.title="),
        "the hostile string is missing rather than escaped"
    );
    if require(
        "python3 with junitparser (pip install junitparser)",
        has_junitparser(),
    ) {
        let j = junitparser_summary(&dir.path().join("junit.xml"));
        assert_eq!(j["failure"], results.totals.failed as u64);
        assert_eq!(
            j["error"],
            (results.totals.errors + results.totals.timed_out) as u64
        );
    }
    let xml = std::fs::read_to_string(dir.path().join("junit.xml")).unwrap();
    assert!(
        !xml.contains('\u{1b}'),
        "ANSI escapes are not valid XML 1.0"
    );
    if let Some(browser) = chromium() {
        let (dom, console) = chromium_load(browser, &dir.path().join("report.html"));
        assert!(console.is_empty(), "console messages: {console:?}");
        assert!(!dom.contains("<title>PWNED"), "the hostile script ran");
        assert!(dom.contains("plugin said &lt;script&gt;document.title='PWNED'&lt;/script&gt;"));
    } else {
        require("chromium (apt install chromium)", false);
    }
}

#[test]
fn the_console_detector_sees_console_errors() {
    // Guards the HTML tests against a detector that can never fire.
    let Some(browser) = chromium() else {
        require("chromium (apt install chromium)", false);
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("page.html");
    std::fs::write(
        &page,
        "<html><body><script>console.error('boom-marker')</script></body></html>",
    )
    .unwrap();
    let (_, console) = chromium_load(browser, &page);
    assert!(
        console.iter().any(|l| l.contains("boom-marker")),
        "{console:?}"
    );
}

/// An artifact that cannot be written after a complete run: the verdict is still printed,
/// the other artifacts are written, the error names the artifact, and the exit code is 3,
/// never the "bad input" 2 that would say nothing ran.
#[test]
fn a_failed_artifact_write_keeps_the_verdict_and_names_the_artifact() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    // A directory where junit.xml goes: the rename onto it fails.
    std::fs::create_dir_all(out.join("junit.xml/occupied")).unwrap();
    let assert = nfvi()
        .args([
            "run",
            "--suite",
            "host",
            "--filter",
            "host.kernel.version",
            "--out",
        ])
        .arg(&out)
        .assert()
        .code(3);
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).into_owned();
    assert!(
        stderr.contains("on local"),
        "the verdict line is printed: {stderr}"
    );
    assert!(
        stderr.contains("the run completed (") && stderr.contains("junit.xml"),
        "{stderr}"
    );
    for written in ["results.json", "report.html", "badge.svg"] {
        assert!(out.join(written).is_file(), "{written} was not written");
    }
}
