//! `nfvi-verify clean` after a run killed with SIGKILL: the namespaces and scratch
//! directories that carry its PID are removed, and nothing of a process that still runs.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

fn names_with(dir: &str, pid: u32) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("nfv") && n.contains(&format!("{pid}-")))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn clean_removes_what_a_killed_run_left_and_nothing_that_lives() {
    if !require(
        "root (the CNI suite creates namespaces)",
        nix::unistd::geteuid().is_root(),
    ) {
        return;
    }
    let out = tempfile::tempdir().unwrap();
    let mut run = Command::new(assert_cmd::cargo::cargo_bin!("nfvi-verify"))
        .args(["run", "--suite", "cni", "--no-progress", "--out"])
        .arg(out.path().join("run"))
        .env_remove("CI")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = run.id();
    let tmp = std::env::temp_dir().display().to_string();
    // Kill it once it has namespaces and a scratch directory of its own.
    let start = Instant::now();
    while names_with("/run/netns", pid).is_empty() || names_with(&tmp, pid).is_empty() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the run made no namespace or scratch directory"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // Not reaped yet: while it is a zombie its PID is taken, so no other test's run or clean
    // removes what it left before this test looks.
    run.kill().unwrap();
    // Give plugins the killed run started a moment to go (they are not its to wait for).
    std::thread::sleep(Duration::from_millis(500));
    let left_ns = names_with("/run/netns", pid);
    let left_dirs = names_with(&tmp, pid);
    assert!(
        !left_ns.is_empty() || !left_dirs.is_empty(),
        "SIGKILL left nothing to clean: the test did not test"
    );

    // Something of a process that still runs (this test's own PID) must stay.
    let mine = tempfile::Builder::new()
        .prefix(&format!("nfv-test-{}-", std::process::id()))
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o700))
        .tempdir()
        .unwrap();

    run.wait().unwrap();
    let dry = nfvi().args(["clean", "--dry-run"]).assert().success();
    let said = String::from_utf8_lossy(&dry.get_output().stderr).into_owned();
    for name in left_ns.iter().chain(&left_dirs) {
        assert_contains(&said, name);
    }
    assert_eq!(
        names_with("/run/netns", pid),
        left_ns,
        "a dry run removes nothing"
    );

    nfvi().arg("clean").assert().success();
    assert!(names_with("/run/netns", pid).is_empty(), "namespaces left");
    assert!(names_with(&tmp, pid).is_empty(), "scratch directories left");
    assert!(
        mine.path().exists(),
        "a live process's directory was removed"
    );

    // What the killed run had finished is not lost: its journal becomes results.json.
    let journal = out.path().join("run/results.journal");
    let lines = std::fs::read_to_string(&journal)
        .expect("the killed run left its journal")
        .lines()
        .count();
    assert!(!out.path().join("run/results.json").exists());
    nfvi()
        .args(["report", "--from"])
        .arg(&journal)
        .assert()
        .success()
        .stderr(predicates::str::contains("recovered"));
    let r: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.path().join("run/results.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(r["complete"], false);
    assert_eq!(r["cancel_reason"], "killed");
    assert_eq!(r["verdict"], "incomplete");
    let checks = r["checks"].as_array().unwrap().len();
    // Every line after the header, but a last one the kill may have cut short.
    assert!(
        checks + 1 == lines || checks + 2 == lines,
        "{checks} of {lines} lines"
    );
    assert!(out.path().join("run/report.html").exists());
    // A second recovery would overwrite nothing.
    nfvi()
        .args(["report", "--from"])
        .arg(&journal)
        .assert()
        .code(2);
}

#[test]
fn a_run_that_ends_normally_leaves_no_journal() {
    let out = tempfile::tempdir().unwrap();
    let run = out.path().join("run");
    let (_, r) = run_to(
        nfvi().args(["run", "--suite", "host", "--no-progress"]),
        &run,
    );
    assert_eq!(r["complete"], true);
    assert!(!run.join("results.journal").exists());
}
