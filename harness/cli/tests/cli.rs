//! The CLI contract as a user meets it: commands, outputs, exit codes and bad input.

mod common;

use std::path::Path;

use common::{assert_bad_input, json_stdout, nfvi, stdout_text, temp_file, write_file};
use predicates::prelude::*;

#[test]
fn help_documents_commands_and_exit_codes() {
    insta::assert_snapshot!("help", stdout_text(nfvi().arg("--help")));
    insta::assert_snapshot!("run_help", stdout_text(nfvi().args(["run", "--help"])));
}

#[test]
fn list_shows_checks_requirements_and_decisions() {
    let plan = json_stdout(nfvi().args(["list", "--suite", "rc2", "--format", "json"]));
    assert_eq!(plan["suite"]["name"], "rc2");
    let checks = plan["checks"].as_array().unwrap();
    let huge = checks
        .iter()
        .find(|c| c["id"] == "host.hugepages.2mi")
        .unwrap();
    assert_eq!(huge["requirements"][0], "ra2.ch.001");
    assert_eq!(huge["severity"], "must");
    assert_eq!(
        huge["effective_severity"], "may",
        "hugepages only decide for network-intensive nodes"
    );
    assert!(
        checks
            .iter()
            .all(|c| c["decision"] == "run" || c["reason"].is_string())
    );
    nfvi()
        .args(["list", "--suite", "rc2"])
        .assert()
        .success()
        .stdout(predicate::str::contains("host.node.vcpus"))
        .stdout(predicate::str::contains("ra2.ch.011, e.cap.001"))
        .stdout(predicate::str::contains("k8s.version.server"))
        .stdout(predicate::str::contains("areas of this suite with no checks").not());
}

#[test]
fn requirements_show_traceability() {
    nfvi()
        .args(["requirements", "--suite", "rc2"])
        .assert()
        .success()
        .stdout(predicate::str::contains("ra2.ch.001"))
        .stdout(predicate::str::contains(
            "checks: host.hugepages.2mi, host.hugepages.1gi",
        ))
        .stdout(predicate::str::contains("ra2.k8s.012#1"))
        .stdout(predicate::str::contains("not covered"));
    let rows = json_stdout(nfvi().args(["requirements", "--format", "json"]));
    let ids: Vec<&str> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert!(
        ids.contains(&"int.api.01@ra1")
            && ids.contains(&"int.api.01@ra2")
            && ids.contains(&"design.cicd.005")
    );
}

#[test]
fn unknown_suites_filters_and_missing_suite_are_usage_errors() {
    assert_bad_input(
        nfvi().args([
            "run",
            "--suite",
            "rc3",
            "--out",
            "/nonexistent-never-created",
        ]),
        "error: unknown suite `rc3`; expected one of: rc2, rc1, host",
    );
    assert_bad_input(
        nfvi().args(["list", "--suite", "host", "--filter", "host.kernal.*"]),
        "--filter `host.kernal.*` matches no check ID or requirement ID in suite `host`",
    );
    assert_bad_input(nfvi().arg("run"), "missing --suite");
    nfvi().args(["run", "--bogus"]).assert().code(2);
    assert!(!Path::new("/nonexistent-never-created").exists());
}

#[test]
fn a_malformed_target_file_names_file_line_and_expectation() {
    let (dir, target) = temp_file(
        "lab.toml",
        "name = \"lab\"\n\n[host]\nmin_kernal = \"5.10\"\n",
    );
    let out = dir.path().join("out");
    assert_bad_input(
        nfvi()
            .args(["run", "--suite", "host", "--target"])
            .arg(&target)
            .arg("--out")
            .arg(&out),
        format!(
            "{}:4:1: unknown field `min_kernal`, expected one of",
            target.display()
        ),
    );
    assert!(!out.exists(), "nothing may be written for bad input");
    std::fs::write(&target, "profile = \"fast\"\n").unwrap();
    assert_bad_input(
        nfvi().args(["list", "--target"]).arg(&target),
        "network-intensive",
    );
    assert_bad_input(
        nfvi()
            .args(["target", "--check"])
            .arg(dir.path().join("missing.toml")),
        "cannot read target file",
    );
    std::fs::write(&target, "name = \"lab\"\n").unwrap();
    nfvi()
        .args(["target", "--check"])
        .arg(&target)
        .assert()
        .success()
        .stdout(predicate::str::contains("name = \"lab\""));
}

#[test]
fn the_example_target_is_the_default_and_validates() {
    let out = stdout_text(nfvi().args(["target", "--example"]));
    let (_dir, path) = temp_file("example.toml", &out);
    nfvi()
        .args(["target", "--check"])
        .arg(&path)
        .assert()
        .success();
}

#[test]
fn unreadable_or_foreign_results_files_are_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.json");
    assert_bad_input(
        nfvi().args(["report", "--from"]).arg(&missing),
        "cannot read results file",
    );
    let garbage = write_file(
        dir.path(),
        "garbage.json",
        "{\n  \"schema_version\": 1,\n  oops\n}",
    );
    assert_bad_input(
        nfvi().args(["report", "--from"]).arg(&garbage),
        format!("{}:3: not JSON", garbage.display()),
    );
    let foreign = write_file(dir.path(), "foreign.json", "{\"tests\": []}");
    assert_bad_input(
        nfvi().arg("diff").arg(&foreign).arg(&foreign),
        "not an nfvi-verify results.json",
    );
    assert!(!dir.path().join("report.html").exists());
}

#[test]
fn an_unwritable_or_occupied_output_directory_is_refused_before_running() {
    assert_bad_input(
        nfvi().args(["run", "--suite", "host", "--out", "/proc/nfvi-verify-out"]),
        "cannot create output directory `/proc/nfvi-verify-out`",
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("results.json"), "precious").unwrap();
    assert_bad_input(
        nfvi()
            .args(["run", "--suite", "host", "--out"])
            .arg(dir.path()),
        "already holds a results.json",
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("results.json")).unwrap(),
        "precious"
    );
}

/// On a terminal the progress bar replaces the per-check PASS lines; with `CI` set (or no
/// terminal) every check gets a plain line. `script` provides the terminal.
#[test]
fn progress_is_a_bar_on_a_terminal_and_plain_lines_in_ci() {
    if !common::require(
        "`script` (bsdutils) for a pseudo-terminal",
        std::path::Path::new("/usr/bin/script").exists(),
    ) {
        return;
    }
    let bin = assert_cmd::cargo::cargo_bin!("nfvi-verify");
    let dir = tempfile::tempdir().unwrap();
    let run = |ci: bool, out: &str| {
        let mut cmd = std::process::Command::new("script");
        cmd.args(["-q", "-e", "-c"])
            .arg(format!("{} run --suite host --filter 'host.kernel.version' --filter 'host.node.*' --out {}", bin.display(), dir.path().join(out).display()))
            .arg("/dev/null")
            .env_remove("CI");
        if ci {
            cmd.env("CI", "true");
        }
        String::from_utf8_lossy(&cmd.output().unwrap().stdout).into_owned()
    };
    let tty = run(false, "tty");
    assert!(tty.contains("nfvi-verify: suite host"), "{tty}");
    assert!(
        !tty.contains("PASS  host.kernel.version"),
        "a terminal gets the bar, not PASS lines: {tty}"
    );
    let ci = run(true, "ci");
    assert!(ci.contains("PASS  host.kernel.version"), "{ci}");
}

#[test]
fn durations_past_what_a_duration_holds_or_rounding_to_zero_are_usage_errors() {
    // These panicked (exit 101) or passed a zero duration as "positive".
    for (value, needle) in [
        ("99999999999999999999999", "longer than any duration"),
        ("1e300s", "unknown unit"),
        ("0.0000000001us", "rounds to zero"),
        ("0s", "positive duration"),
    ] {
        let out = nfvi()
            .args(["probe", "ping", "127.0.0.1:9", "--duration", value])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{value}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(needle), "{value}: {stderr}");
    }
}
