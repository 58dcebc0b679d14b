//! The CNI area against the real plugins and against fault plugins (tests/src/bin/
//! fault-cni-plugin.rs) that each break one rule: the matching assertion must fail with a
//! message that says what was expected and what was seen, every other outcome must still be
//! produced, and the machine must be left as it was.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use nfvi_harness::plan::{self, PlanOptions};
use nfvi_harness::results::{RunMeta, RunResults, ToolInfo};
use nfvi_harness::{
    Areas, Capabilities, Registry, Reporter, RunEvent, RunnerBuilder, Status, Target,
};
use nfvi_integration_tests::host_state;
use nfvi_suite_cni::CniConfig;

struct Quiet;
impl Reporter for Quiet {
    fn report(&mut self, _: &RunEvent<'_>) {}
}

fn prerequisites() -> bool {
    let root = std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0");
    let plugins = Path::new("/usr/lib/cni/bridge").exists();
    if root && plugins {
        return true;
    }
    let what = format!(
        "root ({root}) and Debian's containernetworking-plugins in /usr/lib/cni ({plugins})"
    );
    assert!(
        std::env::var_os("CI").is_none(),
        "prerequisite missing under CI: {what}"
    );
    eprintln!("SKIPPED: prerequisite missing: {what}");
    false
}

/// Tests in this file run one at a time, so each can compare the machine before and after.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn areas() -> Areas {
    Areas::new(vec![Arc::new(nfvi_suite_cni::CniArea)])
}

/// The local target with the CNI table changed by `f`.
fn with_cni(f: impl FnOnce(&mut CniConfig)) -> Target {
    let mut target = Target::local(&areas());
    let mut cni = target.config::<CniConfig>().clone();
    f(&mut cni);
    target.set_config(cni);
    target
}

fn run_cni(target: Target, filters: &[&str]) -> RunResults {
    let model = nfvi_reference_model::load_embedded().unwrap();
    let registry = Registry::new(nfvi_suite_cni::checks(), &model).unwrap();
    let caps = Capabilities::detect(&target, &areas());
    let options = PlanOptions {
        suite: "cni".into(),
        filters: filters.iter().map(|f| (*f).to_owned()).collect(),
        ..Default::default()
    };
    let plan = plan::build(&model, &registry, &target, &caps, &options).unwrap();
    let started = chrono::Utc::now();
    let out = RunnerBuilder::default()
        .jobs(4)
        .handle_signals(false)
        .build(&plan, Arc::new(target))
        .execute(&mut Quiet)
        .unwrap();
    RunResults::assemble(
        &plan,
        out.runs,
        RunMeta {
            tool: ToolInfo {
                name: "t".into(),
                version: "0".into(),
                git_sha: "t".into(),
            },
            run_id: "t".into(),
            target_file: None,
            started_at: started,
            finished_at: chrono::Utc::now(),
            cancel_reason: out.cancel_reason,
            inventory: Default::default(),
            fleet: None,
            invocation: Default::default(),
            resource_usage: None,
            conditions: Default::default(),
            waivers: None,
        },
    )
}

/// A plugin directory whose `bridge` is the fault plugin wrapping the real bridge.
fn faulty_bridge(dir: &Path, fault: &str) -> Target {
    let link = dir.join("bridge");
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_fault-cni-plugin"), &link).unwrap();
    std::fs::write(dir.join("bridge.fault"), fault).unwrap();
    std::fs::write(dir.join("bridge.real"), "/usr/lib/cni/bridge").unwrap();
    with_cni(|c| {
        c.paths = vec![dir.to_owned(), PathBuf::from("/usr/lib/cni")];
        c.exec_timeout_secs = 2;
    })
}

/// (fault, check, what the failure message must say). Every row also runs without the
/// fault and must pass then, so the fault is what made it fail.
const FAULTS: &[(&str, &str, &str)] = &[
    (
        "del-not-idempotent",
        "cni.bridge.CNI-DEL-002",
        "DEL #2 of the same attachment: expected exit 0",
    ),
    ("del-noop", "cni.bridge.CNI-DEL-001", "the netns still has"),
    (
        "del-noop",
        "cni.bridge.CNI-IPAM-008",
        "DEL left reservations",
    ),
    (
        "wrong-result",
        "cni.bridge.CNI-ADD-001",
        "violates the 1.0.0 schema",
    ),
    (
        "error-exit-0",
        "cni.bridge.CNI-ERR-001",
        "expected non-zero exit with a JSON error object",
    ),
    (
        "garbage",
        "cni.bridge.CNI-ADD-001",
        "exactly one JSON result",
    ),
    ("huge", "cni.bridge.CNI-ADD-001", "exactly one JSON result"),
    ("hang", "cni.bridge.CNI-ADD-002", "timed out"),
];

#[test]
fn each_fault_fails_its_assertion_and_nothing_is_left_behind() {
    if !prerequisites() {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let before = host_state();
    for (fault, check, expected) in FAULTS {
        let dir = tempfile::tempdir().unwrap();
        let results = run_cni(faulty_bridge(dir.path(), fault), &[check]);
        let c = results
            .checks
            .iter()
            .find(|c| c.id == *check)
            .unwrap_or_else(|| panic!("{check} not run"));
        assert_eq!(
            c.outcome,
            Status::Failed,
            "{fault}: {check} should fail: {}",
            c.message
        );
        assert!(
            c.message.contains(expected),
            "{fault}: {check}: message {:?} lacks {expected:?}",
            c.message
        );
        assert!(
            c.cleanup.iter().all(|r| r.error.is_none()),
            "{fault}: cleanup errors {:?}",
            c.cleanup
        );
        assert_eq!(
            host_state(),
            before,
            "{fault}: namespaces or links left behind"
        );

        let clean = tempfile::tempdir().unwrap();
        let results = run_cni(faulty_bridge(clean.path(), "none"), &[check]);
        let c = results.checks.iter().find(|c| c.id == *check).unwrap();
        assert_eq!(
            c.outcome,
            Status::Passed,
            "without the fault {check} should pass: {}",
            c.message
        );
    }
}

#[test]
fn core_lifecycles_pass_against_the_real_plugins() {
    if !prerequisites() {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let before = host_state();
    let checks = [
        "cni.bridge.CNI-ADD-002",
        "cni.bridge.CNI-ADD-003",
        "cni.bridge.CNI-DEL-001",
        "cni.macvlan.CNI-ADD-011",
        "cni.ptp.CNI-ADD-012",
        "cni.host-local.CNI-IPAM-006",
        "cni.bridge.CNI-CONC-001",
        "cni.pod.POD-MULTI-IF",
        "cni.pod.POD-NATLESS",
        "cni.chain.CNI-CHAIN-001",
    ];
    let results = run_cni(Target::local(&areas()), &checks);
    assert_eq!(results.checks.len(), checks.len());
    for c in &results.checks {
        assert_eq!(c.outcome, Status::Passed, "{}: {}", c.id, c.message);
        assert!(
            !c.evidence.commands.is_empty(),
            "{} recorded no commands",
            c.id
        );
    }
    assert_eq!(host_state(), before, "namespaces or links left behind");
}

/// The probe path removed: `bridge` is a file that cannot be executed, so no invocation is
/// ever sent. The checks that expect a refusal, or judge error replies, observed nothing
/// and must not pass (before the audit of issue 12, CNI-ADD-004, CNI-ERR-002 and
/// CNI-ERR-003 passed here); those that cannot tell are errors, not verdicts.
#[test]
fn a_plugin_that_cannot_run_makes_no_check_pass() {
    if !prerequisites() {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let before = host_state();
    let dir = tempfile::tempdir().unwrap();
    let blind = dir.path().join("bridge");
    std::fs::copy("/usr/lib/cni/bridge", &blind).unwrap();
    std::fs::set_permissions(&blind, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let target = with_cni(|c| {
        c.paths = vec![dir.path().to_owned(), PathBuf::from("/usr/lib/cni")];
        c.exec_timeout_secs = 2;
    });
    let errors = [
        "cni.bridge.CNI-ADD-004",
        "cni.bridge.CNI-ERR-001",
        "cni.bridge.CNI-ERR-002",
        "cni.bridge.CNI-ERR-003",
        "cni.bridge.CNI-ERR-004",
    ];
    let others = [
        "cni.bridge.CNI-ADD-010",
        "cni.bridge.CNI-CHK-002",
        "cni.bridge.CNI-CHK-011",
        "cni.bridge.CNI-DEL-001",
        "cni.bridge.CNI-ENV-003",
        "cni.bridge.CNI-VER-004",
    ];
    let all: Vec<&str> = errors.iter().chain(&others).copied().collect();
    let results = run_cni(target, &all);
    assert_eq!(results.checks.len(), all.len());
    for c in &results.checks {
        assert_ne!(
            c.outcome,
            Status::Passed,
            "{} passed although the plugin never ran: {}",
            c.id,
            c.message
        );
        if errors.contains(&c.id.as_str()) {
            assert_eq!(c.outcome, Status::Error, "{}: {}", c.id, c.message);
        }
    }
    assert_eq!(host_state(), before, "namespaces or links left behind");
}

#[test]
fn a_missing_plugin_is_skipped_as_not_applicable() {
    let dir = tempfile::tempdir().unwrap();
    let target = with_cni(|c| c.paths = vec![dir.path().to_owned()]);
    let model = nfvi_reference_model::load_embedded().unwrap();
    let registry = Registry::new(nfvi_suite_cni::checks(), &model).unwrap();
    let caps = Capabilities {
        root: true,
        ..Capabilities::detect(&target, &areas())
    };
    let plan = plan::build(
        &model,
        &registry,
        &target,
        &caps,
        &PlanOptions {
            suite: "cni".into(),
            ..Default::default()
        },
    )
    .unwrap();
    assert!(plan.runnable() == 0);
    assert!(
        plan.items
            .iter()
            .all(|i| matches!(&i.decision, nfvi_harness::plan::Decision::Skip(_)))
    );
}
