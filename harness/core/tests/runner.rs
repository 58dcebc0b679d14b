//! The engine with scripted checks: outcomes kept apart, deadlines, panics, cleanup on every
//! path, cancellation as a signal would do it, fail-fast, and planning decisions.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use nfvi_harness::cancel::CancelReason;
use nfvi_harness::plan::{self, Decision, PlanError, PlanOptions};
use nfvi_harness::process::CommandSpec;
use nfvi_harness::results::{RunMeta, RunResults, Verdict};
use nfvi_harness::runner::RunOutput;
use nfvi_harness::{
    BoxFuture, Capabilities, Check, CheckContext, CheckMeta, Need, Outcome, Registry, Reporter,
    RunEvent, RunnerBuilder, Severity, SkipKind, Status, Target,
};
use nfvi_reference_model::{Area, load_embedded};

#[derive(Clone)]
enum Script {
    Pass,
    Fail,
    Error,
    Panic,
    Sleep(Duration),
    /// Creates a file, registers its removal, then runs `sleep 30` until stopped.
    CreateThenHang(PathBuf),
    /// Reports progress 1..=3 of 3, 20 ms apart, then passes.
    Progress,
}

struct Scripted {
    meta: CheckMeta,
    script: Script,
}

impl Check for Scripted {
    fn meta(&self) -> &CheckMeta {
        &self.meta
    }

    fn run<'a>(&'a self, cx: &'a CheckContext) -> BoxFuture<'a, Outcome> {
        Box::pin(async move {
            match &self.script {
                Script::Pass => Outcome::pass("ok"),
                Script::Fail => Outcome::fail("the NFVI does not conform"),
                Script::Error => Outcome::error("could not decide"),
                Script::Panic => panic!("scripted panic"),
                Script::Progress => {
                    for done in 1..=3 {
                        cx.progress(nfvi_harness::Progress {
                            done,
                            total: Some(3),
                            unit: "tests",
                            failed: 0,
                            eta: None,
                        });
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    Outcome::pass("three of three")
                }
                Script::Sleep(d) => {
                    tokio::time::sleep(*d).await;
                    Outcome::pass("slept")
                }
                Script::CreateThenHang(path) => {
                    let p = path.clone();
                    cx.on_cleanup(format!("remove {}", path.display()), move || {
                        std::fs::remove_file(&p).map_err(|e| e.to_string())
                    });
                    std::fs::write(path, b"created by a check").unwrap();
                    let _ = cx
                        .command(
                            CommandSpec::new("sleep")
                                .args(["30"])
                                .timeout(Duration::from_secs(60)),
                        )
                        .await;
                    Outcome::pass("finished hanging")
                }
            }
        })
    }
}

fn check(id: &str, severity: Severity, covers: &[&str], script: Script) -> Arc<dyn Check> {
    Arc::new(Scripted {
        meta: CheckMeta::new(id, Area::Host, format!("scripted {id}"))
            .covers(severity, covers)
            .timeout(Duration::from_secs(5)),
        script,
    })
}

#[derive(Default)]
struct Recorder {
    started: Vec<String>,
    finished: Vec<(String, Status)>,
    cancelling: Vec<CancelReason>,
    progress: Vec<(String, u64)>,
}

impl Reporter for Recorder {
    fn report(&mut self, event: &RunEvent<'_>) {
        match event {
            RunEvent::CheckStarted { id, .. } => self.started.push((*id).to_owned()),
            RunEvent::CheckFinished { id, run } => {
                self.finished.push(((*id).to_owned(), run.outcome.status))
            }
            RunEvent::Cancelling { reason } => self.cancelling.push(*reason),
            RunEvent::CheckProgress { id, progress, .. } => {
                // Never for a check that is not running.
                assert!(self.started.iter().any(|s| s == id), "{id} not started");
                assert!(!self.finished.iter().any(|(f, _)| f == id), "{id} finished");
                self.progress.push(((*id).to_owned(), progress.done));
            }
            _ => {}
        }
    }
}

fn plan_for(
    checks: Vec<Arc<dyn Check>>,
    options: PlanOptions,
) -> Result<nfvi_harness::Plan, PlanError> {
    let model = load_embedded().unwrap();
    let registry = Registry::new(checks, &model).unwrap();
    let caps = Capabilities {
        root: true,
        ..Default::default()
    };
    plan::build(
        &model,
        &registry,
        &Target::local(&Default::default()),
        &caps,
        &options,
    )
}

fn host(options: PlanOptions) -> PlanOptions {
    PlanOptions {
        suite: "host".into(),
        ..options
    }
}

fn results(plan: &nfvi_harness::Plan, out: RunOutput) -> RunResults {
    let now = chrono::Utc::now();
    RunResults::assemble(
        plan,
        out.runs,
        RunMeta {
            tool: nfvi_harness::results::ToolInfo {
                name: "t".into(),
                version: "0".into(),
                git_sha: "x".into(),
            },
            run_id: "r".into(),
            target_file: None,
            started_at: now,
            finished_at: now,
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

#[test]
fn outcomes_stay_distinct_and_panics_and_timeouts_are_contained() {
    let plan = plan_for(
        vec![
            check("host.t.pass", Severity::Must, &["ra2.ch.011"], Script::Pass),
            check("host.t.fail", Severity::Must, &["ra2.ch.012"], Script::Fail),
            check(
                "host.t.error",
                Severity::Must,
                &["ra2.ch.007"],
                Script::Error,
            ),
            check(
                "host.t.panic",
                Severity::Must,
                &["ra2.ch.007"],
                Script::Panic,
            ),
            Arc::new(Scripted {
                meta: CheckMeta::new("host.t.slow", Area::Host, "slow")
                    .timeout(Duration::from_millis(200)),
                script: Script::Sleep(Duration::from_secs(30)),
            }),
        ],
        host(PlanOptions::default()),
    )
    .unwrap();
    let mut rec = Recorder::default();
    let out = RunnerBuilder::default()
        .jobs(3)
        .handle_signals(false)
        .build(&plan, Arc::new(Target::local(&Default::default())))
        .execute(&mut rec)
        .unwrap();
    let r = results(&plan, out);
    let status = |id: &str| r.checks.iter().find(|c| c.id == id).unwrap();
    assert_eq!(status("host.t.pass").outcome, Status::Passed);
    assert_eq!(status("host.t.fail").outcome, Status::Failed);
    assert_eq!(status("host.t.error").outcome, Status::Error);
    assert_eq!(status("host.t.panic").outcome, Status::Error);
    assert!(status("host.t.panic").message.contains("scripted panic"));
    assert_eq!(status("host.t.slow").outcome, Status::TimedOut);
    assert!(
        status("host.t.slow").message.contains("200ms"),
        "{}",
        status("host.t.slow").message
    );
    assert_eq!(r.verdict, Verdict::NonConformant);
    assert_eq!(
        (
            r.totals.passed,
            r.totals.failed,
            r.totals.errors,
            r.totals.timed_out
        ),
        (1, 1, 2, 1)
    );
    assert_eq!(rec.finished.len(), 5);
}

#[test]
fn a_running_checks_progress_reaches_the_reporters_in_order() {
    let plan = plan_for(
        vec![
            check(
                "host.t.long",
                Severity::Must,
                &["ra2.ch.011"],
                Script::Progress,
            ),
            check(
                "host.t.quick",
                Severity::Must,
                &["ra2.ch.012"],
                Script::Pass,
            ),
        ],
        host(PlanOptions::default()),
    )
    .unwrap();
    let mut rec = Recorder::default();
    RunnerBuilder::default()
        .jobs(2)
        .handle_signals(false)
        .build(&plan, Arc::new(Target::local(&Default::default())))
        .execute(&mut rec)
        .unwrap();
    let long: Vec<u64> = rec
        .progress
        .iter()
        .filter(|(id, _)| id == "host.t.long")
        .map(|(_, d)| *d)
        .collect();
    // The last report may race the check's end and is then dropped; the rest arrive in order.
    assert!(
        long.len() >= 2 && long.windows(2).all(|w| w[0] < w[1]),
        "{long:?}"
    );
    assert!(rec.progress.iter().all(|(id, _)| id == "host.t.long"));
}

#[test]
fn cleanup_runs_after_a_timeout_and_the_hung_command_is_killed() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("leftover");
    let plan = plan_for(
        vec![Arc::new(Scripted {
            meta: CheckMeta::new("host.t.hang", Area::Host, "hang")
                .timeout(Duration::from_millis(300)),
            script: Script::CreateThenHang(file.clone()),
        })],
        host(PlanOptions::default()),
    )
    .unwrap();
    let started = std::time::Instant::now();
    let out = RunnerBuilder::default()
        .handle_signals(false)
        .build(&plan, Arc::new(Target::local(&Default::default())))
        .execute(&mut Recorder::default())
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(10));
    let r = results(&plan, out);
    assert_eq!(r.checks[0].outcome, Status::TimedOut);
    assert!(!file.exists(), "cleanup did not remove the file");
    assert_eq!(r.checks[0].cleanup.len(), 1);
    assert_eq!(r.checks[0].cleanup[0].error, None);
    assert_eq!(r.checks[0].evidence.commands[0].command, "sleep 30");
}

#[test]
fn an_interrupt_stops_new_checks_cleans_up_and_marks_the_run_incomplete() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("leftover");
    let mut checks: Vec<Arc<dyn Check>> = vec![Arc::new(Scripted {
        meta: CheckMeta::new("host.t.hang", Area::Host, "hang").timeout(Duration::from_secs(60)),
        script: Script::CreateThenHang(file.clone()),
    })];
    for i in 0..3 {
        checks.push(check(
            &format!("host.t.later{i}"),
            Severity::Must,
            &["ra2.ch.011"],
            Script::Pass,
        ));
    }
    let plan = plan_for(checks, host(PlanOptions::default())).unwrap();
    let runner = RunnerBuilder::default()
        .jobs(1)
        .grace(Duration::from_millis(500))
        .handle_signals(false)
        .build(&plan, Arc::new(Target::local(&Default::default())));
    let source = runner.cancel_source();
    let signaller = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(400));
        source.escalate(CancelReason::Interrupt);
    });
    let mut rec = Recorder::default();
    let out = runner.execute(&mut rec).unwrap();
    signaller.join().unwrap();
    let r = results(&plan, out);
    assert!(!r.complete);
    assert_eq!(r.cancel_reason, Some(CancelReason::Interrupt));
    assert_eq!(r.verdict, Verdict::Incomplete);
    assert!(!file.exists(), "cleanup did not run on interrupt");
    assert_eq!(rec.started, ["host.t.hang"]);
    assert_eq!(rec.cancelling, [CancelReason::Interrupt]);
    // The hung check saw SIGTERM through its command (sleep dies of it), so it finished
    // within the grace period; the rest never started.
    for c in &r.checks[1..] {
        assert_eq!(c.outcome, Status::Skipped);
        assert_eq!(c.skip_kind, Some(SkipKind::Interrupted));
    }
    assert_eq!(r.checks.len(), 4);
}

#[test]
fn fail_fast_lets_nothing_new_start_after_a_failure() {
    let plan = plan_for(
        vec![
            check("host.t.a", Severity::Must, &["ra2.ch.011"], Script::Fail),
            check("host.t.b", Severity::Must, &["ra2.ch.011"], Script::Pass),
        ],
        host(PlanOptions::default()),
    )
    .unwrap();
    let out = RunnerBuilder::default()
        .fail_fast(true)
        .handle_signals(false)
        .build(&plan, Arc::new(Target::local(&Default::default())))
        .execute(&mut Recorder::default())
        .unwrap();
    let r = results(&plan, out);
    assert_eq!(r.checks[1].skip_kind, Some(SkipKind::FailFast));
    assert_eq!(r.cancel_reason, Some(CancelReason::FailFast));
    assert_eq!(r.verdict, Verdict::NonConformant);
}

#[test]
fn needs_that_are_not_met_skip_with_the_reason_at_plan_time() {
    let model = load_embedded().unwrap();
    let needy: Arc<dyn Check> = Arc::new(Scripted {
        meta: CheckMeta::new("host.t.needy", Area::Host, "needy")
            .needs([Need::Root, Need::Tool("nfvi-no-such-tool".into())]),
        script: Script::Pass,
    });
    let registry = Registry::new(vec![needy], &model).unwrap();
    let caps = Capabilities::default();
    let plan = plan::build(
        &model,
        &registry,
        &Target::local(&Default::default()),
        &caps,
        &host(PlanOptions::default()),
    )
    .unwrap();
    let Decision::Skip(reason) = &plan.items[0].decision else {
        panic!("should skip")
    };
    assert_eq!(reason.kind, SkipKind::MissingCapability);
    assert!(
        reason.message.contains("root") && reason.message.contains("nfvi-no-such-tool"),
        "{}",
        reason.message
    );
}

#[test]
fn filters_select_by_check_or_requirement_and_typos_are_errors() {
    let checks = || {
        vec![
            check("host.t.a", Severity::Must, &["ra2.ch.011"], Script::Pass),
            check("host.t.b", Severity::Must, &["ra2.ch.001"], Script::Pass),
        ]
    };
    let ids = |p: &nfvi_harness::Plan| {
        p.items
            .iter()
            .map(|i| i.check.meta().id.clone())
            .collect::<Vec<_>>()
    };
    let by_req = plan_for(
        checks(),
        host(PlanOptions {
            filters: vec!["ra2.ch.00?".into()],
            ..Default::default()
        }),
    )
    .unwrap();
    assert_eq!(ids(&by_req), ["host.t.b"]);
    let skipped = plan_for(
        checks(),
        host(PlanOptions {
            skips: vec!["host.t.b".into()],
            ..Default::default()
        }),
    )
    .unwrap();
    assert_eq!(ids(&skipped), ["host.t.a"]);
    let err = plan_for(
        checks(),
        host(PlanOptions {
            filters: vec!["host.t.zzz".into()],
            ..Default::default()
        }),
    )
    .err()
    .unwrap();
    assert!(
        err.to_string().contains("`host.t.zzz` matches no check"),
        "{err}"
    );
    let err = plan_for(
        checks(),
        PlanOptions {
            suite: "rc3".into(),
            ..Default::default()
        },
    )
    .err()
    .unwrap();
    assert!(
        err.to_string()
            .contains("unknown suite `rc3`; expected one of: rc2, rc1"),
        "{err}"
    );
}

#[test]
fn severity_follows_the_suite_and_the_profile() {
    // ra2.ch.001 (hugepages) is network-intensive only: informative for a basic node.
    let plan = plan_for(
        vec![
            check("host.t.huge", Severity::Must, &["ra2.ch.001"], Script::Pass),
            check("host.t.vm", Severity::Must, &["ra2.ch.011"], Script::Pass),
            check("host.t.none", Severity::Must, &[], Script::Pass),
        ],
        host(PlanOptions::default()),
    )
    .unwrap();
    let eff: Vec<Severity> = plan.items.iter().map(|i| i.effective).collect();
    assert_eq!(eff, [Severity::May, Severity::Must, Severity::Info]);
    // In rc1, ra2.ch.011 is not listed at all, so the same check weighs nothing.
    let plan = plan_for(
        vec![check(
            "host.t.vm",
            Severity::Must,
            &["ra2.ch.011"],
            Script::Pass,
        )],
        PlanOptions {
            suite: "rc1".into(),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(plan.items[0].effective, Severity::May);
}

#[test]
fn the_registry_rejects_unknown_requirements_and_duplicate_ids() {
    let model = load_embedded().unwrap();
    let err = Registry::new(
        vec![check(
            "host.t.a",
            Severity::Must,
            &["ra2.ch.999"],
            Script::Pass,
        )],
        &model,
    )
    .err()
    .unwrap()
    .to_string();
    assert!(
        err.contains("runner.rs:") && err.contains("unknown requirement id `ra2.ch.999`"),
        "{err}"
    );
    let err = Registry::new(
        vec![
            check("host.t.a", Severity::Must, &[], Script::Pass),
            check("host.t.a", Severity::Must, &[], Script::Pass),
        ],
        &model,
    )
    .err()
    .unwrap()
    .to_string();
    assert!(err.contains("declared twice"), "{err}");
}
