//! Helpers for the CLI tests: the binary, prerequisites that skip loudly (and fail under CI),
//! a real JUnit consumer and headless Chromium.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

pub fn nfvi() -> assert_cmd::Command {
    let mut cmd = assert_cmd::cargo::cargo_bin_cmd!("nfvi-verify");
    // No test's run removes what another test's killed run left for it to look at (the tests
    // of `clean` and of killed runs turn it back on where they mean it).
    cmd.env_remove("CI")
        .env("NO_COLOR", "1")
        .env("NFVI_VERIFY_NO_CLEAN", "1");
    cmd
}

/// Runs `cmd`, which must succeed, and parses its stdout as JSON (`--format json`).
pub fn json_stdout(cmd: &mut assert_cmd::Command) -> serde_json::Value {
    let out = cmd.assert().success().get_output().stdout.clone();
    serde_json::from_slice(&out).expect("stdout is JSON")
}

/// Runs `cmd`, which must succeed, and returns its stdout.
pub fn stdout_text(cmd: &mut assert_cmd::Command) -> String {
    String::from_utf8(cmd.assert().success().get_output().stdout.clone()).expect("UTF-8 stdout")
}

/// Runs `cmd`, which must exit 2 (bad input: nothing ran) with `needle` in its stderr.
pub fn assert_bad_input(cmd: &mut assert_cmd::Command, needle: impl Into<String>) {
    cmd.assert()
        .code(2)
        .stderr(predicates::str::contains(needle.into()));
}

/// Writes `contents` to the file `name` in `dir` and returns its path.
pub fn write_file(dir: &Path, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    path
}

/// A new temporary directory holding the file `name` with `contents`, and the file's path.
pub fn temp_file(name: &str, contents: impl AsRef<[u8]>) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = write_file(dir.path(), name, contents);
    (dir, path)
}

/// Runs a helper program (docker, sh) that must succeed and returns its stdout, trimmed.
pub fn succeed(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// The text of `field` (`message`, `reason`) of a check in a results.json or a plan.
pub fn text<'a>(c: &'a serde_json::Value, field: &str) -> &'a str {
    c[field]
        .as_str()
        .unwrap_or_else(|| panic!("no text `{field}` in {c}"))
}

/// Asserts that `text` contains `part`, showing the text when it does not.
#[track_caller]
pub fn assert_contains(text: &str, part: &str) {
    assert!(text.contains(part), "{text:?}\ndoes not contain\n{part:?}");
}

/// Runs `cmd` with `--out out`, whatever it exits with, and reads the run's results.json.
pub fn run_to(cmd: &mut assert_cmd::Command, out: &Path) -> (i32, serde_json::Value) {
    let a = cmd.arg("--out").arg(out).assert();
    let code = a.get_output().status.code().expect("an exit code");
    let text = std::fs::read_to_string(out.join("results.json")).expect("results.json written");
    (
        code,
        serde_json::from_str(&text).expect("results.json is JSON"),
    )
}

/// The check `id` of a results.json or a plan.
pub fn check<'a>(r: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    r["checks"]
        .as_array()
        .expect("a `checks` list")
        .iter()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("no check {id}"))
}

/// Whether a Docker daemon answers on the standard socket (the lab's, under CI).
pub fn docker_answers() -> bool {
    Path::new("/var/run/docker.sock").exists()
        && Command::new("docker")
            .arg("version")
            .output()
            .is_ok_and(|o| o.status.success())
}

/// Whether a prerequisite is there. Without it a test is skipped with a loud message, except
/// under `CI`, where .ci/run installs everything and a missing prerequisite is a failure.
pub fn require(what: &str, present: bool) -> bool {
    if present {
        return true;
    }
    if std::env::var_os("CI").is_some() {
        panic!("prerequisite missing under CI: {what} (.ci/run should have provided it)");
    }
    eprintln!("SKIPPED: prerequisite missing: {what}");
    false
}

/// Whether the lab's Docker daemon answers; without it the test is skipped (see [`require`]).
pub fn require_lab_docker() -> bool {
    require(
        "the lab's Docker daemon on /var/run/docker.sock (run `nfvi-verify lab up`)",
        docker_answers(),
    )
}

pub fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

pub fn has_junitparser() -> bool {
    Command::new("python3")
        .args(["-c", "import junitparser"])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Parses a JUnit file with Python's junitparser (a real consumer) and returns per-outcome
/// counts and the list of (classname, name) pairs.
pub fn junitparser_summary(path: &Path) -> serde_json::Value {
    let script = r#"
import json, sys
from junitparser import JUnitXml, Failure, Error, Skipped
xml = JUnitXml.fromfile(sys.argv[1])
out = {"passed": 0, "failure": 0, "error": 0, "skipped": 0, "cases": [], "properties": {}}
for suite in xml:
    for case in suite:
        kinds = [type(r).__name__ for r in case.result]
        if "Failure" in kinds: out["failure"] += 1
        elif "Error" in kinds: out["error"] += 1
        elif "Skipped" in kinds: out["skipped"] += 1
        else: out["passed"] += 1
        out["cases"].append([case.classname, case.name])
        out["properties"][case.name] = {p.name: p.value for p in case.properties()} if hasattr(case, "properties") else {}
print(json.dumps(out))
"#;
    let out = Command::new("python3")
        .args(["-c", script])
        .arg(path)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "junitparser rejected {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

pub fn chromium() -> Option<&'static str> {
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .find(|p| Path::new(p).exists())
}

/// Loads a page in headless Chromium and returns the DOM after load and the console
/// messages Chromium logged.
pub fn chromium_load(browser: &str, page: &Path) -> (String, Vec<String>) {
    chromium_load_sized(browser, page, None)
}

/// [`chromium_load`] in a window of `(width, height)` CSS pixels, for tests of what a
/// reader sees without scrolling.
pub fn chromium_load_sized(
    browser: &str,
    page: &Path,
    window: Option<(u32, u32)>,
) -> (String, Vec<String>) {
    let profile = tempfile::tempdir().unwrap();
    let out = Command::new("timeout")
        .arg("120")
        .arg(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--enable-logging=stderr",
            "--v=0",
            "--dump-dom",
        ])
        .args(window.map(|(w, h)| format!("--window-size={w},{h}")))
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("chromium starts");
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let console = String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| l.contains(":CONSOLE"))
        .map(str::to_owned)
        .collect();
    (String::from_utf8_lossy(&out.stdout).into_owned(), console)
}

/// The real tool outputs: `$NFVI_EVIDENCE_DIR`, else the shared reference directory next to
/// the workspace, else the copies vendored in tests/fixtures/evidence (every file but
/// Sonobuoy's results-0.9.tar.gz, which carries a 2017 test cluster's service-account
/// tokens). As a run records paths: `..` and links resolved.
pub fn evidence_dir() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let dir = std::env::var_os("NFVI_EVIDENCE_DIR")
        .map(PathBuf::from)
        .or_else(|| Some(root.join("../shared/reference/evidence")).filter(|d| d.is_dir()))
        .unwrap_or_else(|| root.join("tests/fixtures/evidence"));
    dir.canonicalize().unwrap_or(dir)
}

/// An unencrypted Ed25519 key made by the real ssh-keygen in `dir`, and an allowed_signers
/// file naming `principal` for it: (key, allowed_signers).
pub fn signing_key(dir: &Path, principal: &str) -> (PathBuf, PathBuf) {
    let key = dir.join("id_ed25519");
    succeed(
        Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(&key),
    );
    let public = std::fs::read_to_string(dir.join("id_ed25519.pub")).unwrap();
    let signers = write_file(dir, "allowed_signers", format!("{principal} {public}"));
    (key, signers)
}

/// `nfvi-verify bundle RUN --sign KEY --out OUT`, which must succeed.
pub fn bundle_run(run: &Path, key: &Path, out: &Path) {
    nfvi()
        .arg("bundle")
        .arg(run)
        .arg("--sign")
        .arg(key)
        .arg("--out")
        .arg(out)
        .assert()
        .success();
}
