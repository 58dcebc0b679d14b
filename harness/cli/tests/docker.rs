//! The Docker area against the local lab (`nfvi-verify lab up`, which `cargo xtask ci` runs
//! before the tests), and what happens without a daemon.

mod common;

use std::process::Command;

use common::{docker_answers, nfvi, require};

fn probe_leftovers() -> (String, String) {
    let list = |args: &[&str]| {
        String::from_utf8_lossy(&Command::new("docker").args(args).output().unwrap().stdout)
            .trim()
            .to_owned()
    };
    (
        list(&["ps", "-aq", "--filter", "label=io.nfvi-verify.probe"]),
        list(&[
            "network",
            "ls",
            "-q",
            "--filter",
            "label=io.nfvi-verify.probe",
        ]),
    )
}

#[test]
fn the_docker_suite_passes_against_the_lab_and_leaves_nothing() {
    if !require(
        "a Docker daemon on /var/run/docker.sock (run `nfvi-verify lab up`)",
        docker_answers(),
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    nfvi()
        .args(["run", "--suite", "docker", "--out"])
        .arg(&out)
        .assert()
        .code(0);
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    let checks = r["checks"].as_array().unwrap();
    assert_eq!(checks.len(), 9);
    for c in checks {
        assert_eq!(c["outcome"], "passed", "{}: {}", c["id"], c["message"]);
    }
    let none = checks
        .iter()
        .find(|c| c["id"] == "docker.none.loopback-only")
        .unwrap();
    assert!(
        none["evidence"]["commands"][0]["stdout"]
            .as_str()
            .unwrap()
            .contains("lo:")
    );
    assert_eq!(
        probe_leftovers(),
        (String::new(), String::new()),
        "probe containers or networks left behind"
    );
    let links = String::from_utf8_lossy(
        &Command::new("ip")
            .args(["-o", "link"])
            .output()
            .unwrap()
            .stdout,
    )
    .into_owned();
    assert!(
        !links.contains("nfvdk"),
        "a macvlan parent veth was left behind"
    );
}

#[test]
fn without_a_daemon_the_docker_checks_skip_naming_the_socket() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("t.toml");
    std::fs::write(&target, "[docker]\nsocket = \"/nonexistent/docker.sock\"\n").unwrap();
    let out = nfvi()
        .args(["list", "--suite", "docker", "--format", "json", "--target"])
        .arg(&target)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let plan: serde_json::Value = serde_json::from_slice(&out).unwrap();
    for c in plan["checks"].as_array().unwrap() {
        assert_eq!(c["decision"], "skip", "{}", c["id"]);
        assert!(
            c["reason"]
                .as_str()
                .unwrap()
                .contains("/nonexistent/docker.sock"),
            "{}",
            c["reason"]
        );
    }
}
