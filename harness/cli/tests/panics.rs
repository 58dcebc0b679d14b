//! A panic anywhere in nfvi-verify is a harness error naming where it happened (exit 3,
//! never 101), and a run that panics still writes what it observed: results.json marked
//! incomplete (`panic`) with the panic as its harness error, the reports next to it, and the
//! journal that `run --resume` finishes it from. The panics are injected outside the checks
//! with `NFVI_VERIFY_PANIC=<point>` (nfvi_harness::panics::inject); the host checks need
//! no root.

mod common;

use std::path::{Path, PathBuf};

use common::*;

/// Quick host checks that need nothing but /proc and the addresses of this machine.
const FILTERS: [&str; 4] = ["--filter", "host.node.*", "--filter", "host.kernel.version"];
const CHECKS: usize = 4;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `file:line:` of the injection point `point` in `file` (relative to the repository), as
/// the panic's location starts.
fn injected_at(file: &str, point: &str) -> String {
    let text = std::fs::read_to_string(repo().join(file)).unwrap();
    let needle = format!("inject(\"{point}\")");
    let line = text
        .lines()
        .position(|l| l.contains(&needle))
        .unwrap_or_else(|| panic!("no {needle} in {file}"))
        + 1;
    format!("{file}:{line}:")
}

struct Ran {
    code: i32,
    stderr: String,
}

/// `nfvi-verify run` of the quick host checks into `out`, with a panic injected at `point`
/// (the terminal as in a real run: no RUST_BACKTRACE asking for the default panic output).
fn run_panicking(point: &str, out: &Path) -> Ran {
    let a = nfvi()
        .env("NFVI_VERIFY_PANIC", point)
        .env_remove("RUST_BACKTRACE")
        .args(["run", "--suite", "host", "--no-progress"])
        .args(FILTERS)
        .arg("--out")
        .arg(out)
        .assert();
    let o = a.get_output();
    Ran {
        code: o.status.code().expect("exited, not killed by a signal"),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

fn results(dir: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(dir.join("results.json")).expect("results.json written");
    serde_json::from_str(&text).expect("results.json parses")
}

fn validates(results: &serde_json::Value) {
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("schemas/results.schema.json")).unwrap(),
    )
    .unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(results)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "{errors:?}");
}

/// The run's record says it stopped on a panic at `at`, and the panic was not printed by
/// the default hook in the middle of the terminal output.
fn stopped_by_panic(ran: &Ran, r: &serde_json::Value, at: &str) {
    assert_eq!(ran.code, 3, "{}", ran.stderr);
    assert_contains(&ran.stderr, &format!("error: nfvi-verify panicked at {at}"));
    assert!(
        !ran.stderr.contains("thread 'main'") && !ran.stderr.contains("stack backtrace"),
        "the default panic output: {}",
        ran.stderr
    );
    assert_eq!(r["complete"], false);
    assert_eq!(r["cancel_reason"], "panic");
    // A failure still decides non-conformance; otherwise the verdict is incomplete.
    assert_ne!(r["verdict"], "conformant", "{}", r["verdict"]);
    let error = text(r, "harness_error");
    assert!(
        error.starts_with(&format!("nfvi-verify panicked at {at}")),
        "{error}"
    );
    let reasons = r["certification"]["reasons"].to_string();
    assert_contains(
        &reasons,
        "the run was stopped early (panic: nfvi-verify panicked at",
    );
    validates(r);
}

#[test]
fn a_panic_after_the_checks_still_writes_their_results_and_names_where() {
    let home = tempfile::tempdir().unwrap();
    let out = home.path().join("run");
    let ran = run_panicking("after-checks", &out);
    let at = injected_at("harness/cli/src/commands/run.rs", "after-checks");
    let r = results(&out);
    stopped_by_panic(&ran, &r, &at);
    assert_contains(
        &ran.stderr,
        &format!(
            "the {CHECKS} check results it observed until then are in {}, marked incomplete (panic), and the reports next to it",
            out.join("results.json").display()
        ),
    );
    let checks = r["checks"].as_array().unwrap();
    assert_eq!(checks.len(), CHECKS, "{checks:?}");
    for c in checks {
        assert!(
            ["passed", "failed"].contains(&text(c, "outcome")),
            "{c}: every check finished before the panic"
        );
    }
    for f in ["junit.xml", "report.html", "badge.svg", "results.journal"] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    // The panic is in the run's log too.
    let log = std::fs::read_to_string(out.join("nfvi-verify.log")).unwrap();
    assert_contains(&log, &at);

    // The journal stays: `run --resume` turns the run into a complete one, the checks'
    // results carried over verbatim.
    let resumed = nfvi()
        .args(["run", "--no-progress", "--resume"])
        .arg(&out)
        .assert();
    let o = resumed.get_output();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!([0, 1].contains(&o.status.code().unwrap()), "{stderr}");
    assert_contains(&stderr, &format!("{CHECKS} results carried over"));
    let done = results(&out);
    assert_eq!(done["complete"], true);
    assert!(done.get("harness_error").is_none(), "{done}");
    // Verbatim, in plan order (the journal has them in the order they finished).
    let by_id = |r: &serde_json::Value| {
        let mut v = r["checks"].as_array().unwrap().clone();
        v.sort_by_key(|c| text(c, "id").to_owned());
        v
    };
    assert_eq!(by_id(&done), by_id(&r));
}

#[test]
fn a_panic_while_the_checks_run_writes_those_that_finished() {
    let home = tempfile::tempdir().unwrap();
    let out = home.path().join("run");
    let ran = run_panicking("check-finished", &out);
    let at = injected_at("harness/cli/src/commands/run.rs", "check-finished");
    let r = results(&out);
    stopped_by_panic(&ran, &r, &at);
    // A reporter's panic stops the run as a signal would: the running checks finish or are
    // stopped, and cleaned up, the rest never start; every planned check is there once.
    let checks = r["checks"].as_array().unwrap();
    assert_eq!(checks.len(), CHECKS, "{checks:?}");
    assert!(out.join("report.html").is_file());
    // Resumed, the run has every check once.
    let resumed = nfvi()
        .args(["run", "--no-progress", "--resume"])
        .arg(&out)
        .assert();
    let o = resumed.get_output();
    assert!(
        [0, 1].contains(&o.status.code().unwrap()),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let done = results(&out);
    assert_eq!(done["complete"], true);
    assert_eq!(done["checks"].as_array().unwrap().len(), CHECKS);
}

#[test]
fn a_run_without_a_journal_still_writes_its_results_after_a_panic() {
    let home = tempfile::tempdir().unwrap();
    let out = home.path().join("run");
    // Something already stands at the journal's name: the run goes on without one.
    std::fs::create_dir(&out).unwrap();
    std::fs::write(out.join("results.journal"), "planted\n").unwrap();
    let ran = run_panicking("after-checks", &out);
    assert_contains(&ran.stderr, "no journal for this run");
    let at = injected_at("harness/cli/src/commands/run.rs", "after-checks");
    let r = results(&out);
    stopped_by_panic(&ran, &r, &at);
    assert_eq!(r["checks"].as_array().unwrap().len(), CHECKS);
    assert_contains(&ran.stderr, "the run had no journal to resume from");
    assert_eq!(
        std::fs::read_to_string(out.join("results.journal")).unwrap(),
        "planted\n"
    );
}

#[test]
fn a_panic_while_saving_keeps_the_first_panics_location() {
    let home = tempfile::tempdir().unwrap();
    let out = home.path().join("run");
    let ran = run_panicking("after-checks,save-results", &out);
    let first = injected_at("harness/cli/src/commands/run.rs", "after-checks");
    let second = injected_at("harness/cli/src/commands/panicked.rs", "save-results");
    assert_eq!(ran.code, 3, "{}", ran.stderr);
    assert_contains(
        &ran.stderr,
        &format!("error: nfvi-verify panicked at {first}"),
    );
    assert_contains(
        &ran.stderr,
        &format!("no results were saved: saving them panicked too (at {second}"),
    );
}

#[test]
fn a_panic_in_the_runner_outside_a_check_is_that_checks_error() {
    let home = tempfile::tempdir().unwrap();
    let out = home.path().join("run");
    let ran = run_panicking("run-one", &out);
    let at = injected_at("harness/core/src/runner/one_check.rs", "run-one");
    assert_eq!(ran.code, 3, "{}", ran.stderr);
    let r = results(&out);
    assert_eq!(r["complete"], true, "the run itself went on");
    let checks = r["checks"].as_array().unwrap();
    assert_eq!(checks.len(), CHECKS);
    for c in checks {
        assert_eq!(text(c, "outcome"), "error", "{c}");
        assert!(
            text(c, "message").starts_with(&format!("nfvi-verify panicked at {at}")),
            "{c}"
        );
    }
    assert!(!ran.stderr.contains("thread '"), "{}", ran.stderr);
}

#[test]
fn a_panic_in_any_command_is_a_harness_error_not_exit_101() {
    let at = injected_at("harness/cli/src/main.rs", "command");
    for args in [
        &["list", "--suite", "host"][..],
        &["target", "--example"],
        &["requirements"],
    ] {
        let a = nfvi()
            .env("NFVI_VERIFY_PANIC", "command")
            .env_remove("RUST_BACKTRACE")
            .args(args)
            .assert();
        let o = a.get_output();
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(3), "{args:?}: {stderr}");
        assert_eq!(
            stderr.trim_end(),
            format!(
                "error: nfvi-verify panicked at {at}{} injected panic (NFVI_VERIFY_PANIC=command) (thread `main`; a defect of nfvi-verify, please report it)",
                // The column.
                stderr
                    .split(&at)
                    .nth(1)
                    .and_then(|rest| rest.split(' ').next())
                    .unwrap_or("?")
            ),
            "{args:?}"
        );
        assert!(o.stdout.is_empty(), "{args:?}: nothing but the error");
    }
}
