//! The `cni-fuzz` campaign against the reference plugin (tests/src/bin/fuzz-ref-cni-plugin.rs):
//! fault-free it must report nothing; with each fault switched on, the campaign must find it
//! and shrink it to a small input, with a replay line; and the machine must be left as it was.

use std::path::Path;
use std::sync::Arc;

use nfvi_harness::plan::{self, PlanOptions};
use nfvi_harness::results::{CheckResult as CheckRecord, RunMeta, RunResults, ToolInfo};
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
    let ip = Path::new("/usr/sbin/ip").exists()
        || Path::new("/sbin/ip").exists()
        || Path::new("/usr/bin/ip").exists();
    if root && ip {
        return true;
    }
    let what = format!("root ({root}) and iproute2 ({ip})");
    assert!(
        std::env::var_os("CI").is_none(),
        "prerequisite missing under CI: {what}"
    );
    eprintln!("SKIPPED: prerequisite missing: {what}");
    false
}

/// Runs `cni.fuzz.tuning` with the reference plugin standing in for `tuning`.
fn campaign(dir: &Path, faults: &str) -> CheckRecord {
    let link = dir.join("tuning");
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_fuzz-ref-cni-plugin"), &link).unwrap();
    std::fs::write(dir.join("tuning.fault"), faults).unwrap();
    let areas = Areas::new(vec![Arc::new(nfvi_suite_cni::CniArea)]);
    let mut target = Target::local(&areas);
    let mut cni = target.config::<CniConfig>().clone();
    cni.paths = vec![dir.to_owned()];
    cni.plugins = vec!["tuning".into()];
    cni.fuzz_seed = Some(1);
    cni.fuzz_budget = 5;
    cni.exec_timeout_secs = 5;
    target.set_config(cni);
    let model = nfvi_reference_model::load_embedded().unwrap();
    let registry = Registry::new(nfvi_suite_cni::checks(), &model).unwrap();
    let caps = Capabilities::detect(&target, &areas);
    let options = PlanOptions {
        suite: "cni-fuzz".into(),
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
    let results = RunResults::assemble(
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
    );
    let ran: Vec<&CheckRecord> = results
        .checks
        .iter()
        .filter(|c| c.outcome != Status::Skipped)
        .collect();
    assert_eq!(
        ran.len(),
        1,
        "only cni.fuzz.tuning runs: {:?}",
        ran.iter().map(|c| &c.id).collect::<Vec<_>>()
    );
    ran[0].clone()
}

static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn the_fault_free_reference_plugin_gives_no_finding() {
    if !prerequisites() {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let before = host_state();
    let dir = tempfile::tempdir().unwrap();
    let c = campaign(dir.path(), "");
    assert_eq!(c.outcome, Status::Passed, "{}", c.message);
    assert!(c.message.contains("seed 1"), "{}", c.message);
    let rate = c.evidence.metrics["invocations per second"].value;
    let calls = c.evidence.metrics["invocations"].value;
    assert!(calls >= 100.0, "{calls} invocations");
    eprintln!("reference plugin: {calls} invocations, {rate:.0}/s");
    assert_eq!(host_state(), before, "namespaces or links left behind");
}

#[test]
fn each_fault_is_found_shrunk_and_replayable() {
    if !prerequisites() {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let before = host_state();
    let dir = tempfile::tempdir().unwrap();
    let c = campaign(dir.path(), "panic,no-json,leak");
    assert_eq!(c.outcome, Status::Failed, "{}", c.message);
    let props = &c.evidence.properties;
    let findings: Vec<(&String, &String)> = props
        .iter()
        .filter(|(k, _)| k.starts_with("finding ") && k.split(' ').count() == 2)
        .collect();
    // (fault, the finding's clause, what the minimal stdin must hold, its largest size)
    let expected = [
        ("panic", "[crash]", "\"interface\":0", 120),
        ("no-json", "[stdout]", "dataDir", 80),
        ("leak", "[residue]", "name", 120),
    ];
    for (fault, clause, needle, max) in expected {
        let (key, text) = findings
            .iter()
            .find(|(_, v)| v.starts_with(clause))
            .unwrap_or_else(|| panic!("{fault}: no {clause} finding in {findings:#?}"));
        assert!(
            text.contains("no smaller input fails"),
            "{fault}: not shrunk to a minimum: {text}"
        );
        let stdin = &props[&format!("{key} stdin")];
        assert!(
            stdin.contains(needle) && stdin.len() <= max,
            "{fault}: minimal stdin {stdin}"
        );
        let replay = &props[&format!("{key} replay")];
        assert!(
            replay.contains("ip netns exec $R-rt env -i") && replay.contains("tuning"),
            "{fault}: {replay}"
        );
    }
    assert_eq!(host_state(), before, "namespaces or links left behind");
}
