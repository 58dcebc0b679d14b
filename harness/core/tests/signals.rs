//! Real signals to this test process (its own binary, so no other test shares the handler):
//! the first SIGINT stops the run gracefully and cleans up; a second one kills a command that
//! ignores SIGTERM without waiting out the grace period.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use nfvi_harness::cancel::CancelReason;
use nfvi_harness::plan::{self, PlanOptions};
use nfvi_harness::process::CommandSpec;
use nfvi_harness::{
    BoxFuture, Capabilities, Check, CheckContext, CheckMeta, Outcome, Registry, Reporter, RunEvent,
    RunnerBuilder, Status, Target,
};
use nfvi_reference_model::{Area, load_embedded};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

struct Stubborn {
    meta: CheckMeta,
    marker: PathBuf,
}

impl Check for Stubborn {
    fn meta(&self) -> &CheckMeta {
        &self.meta
    }

    fn run<'a>(&'a self, cx: &'a CheckContext) -> BoxFuture<'a, Outcome> {
        Box::pin(async move {
            let marker = self.marker.clone();
            cx.on_cleanup("remove marker", move || {
                std::fs::remove_file(&marker).map_err(|e| e.to_string())
            });
            std::fs::write(&self.marker, b"x").unwrap();
            // Ignores SIGTERM: only SIGKILL to the group ends it.
            let spec = CommandSpec::new("sh")
                .args(["-c", "trap '' TERM; sleep 60 & wait"])
                .timeout(Duration::from_secs(120));
            let _ = cx.command(spec).await;
            Outcome::pass("not reached in time")
        })
    }
}

struct Nothing;
impl Reporter for Nothing {
    fn report(&mut self, _: &RunEvent<'_>) {}
}

#[test]
fn two_sigints_stop_the_run_kill_children_and_still_clean_up() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("marker");
    let model = load_embedded().unwrap();
    let check: Arc<dyn Check> = Arc::new(Stubborn {
        meta: CheckMeta::new("host.t.stubborn", Area::Host, "stubborn")
            .timeout(Duration::from_secs(120)),
        marker: marker.clone(),
    });
    let registry = Registry::new(vec![check], &model).unwrap();
    let plan = plan::build(
        &model,
        &registry,
        &Target::local(&Default::default()),
        &Capabilities::default(),
        &PlanOptions {
            suite: "host".into(),
            ..Default::default()
        },
    )
    .unwrap();
    let runner = RunnerBuilder::default()
        .grace(Duration::from_secs(60))
        .build(&plan, Arc::new(Target::local(&Default::default())));
    let me = Pid::this();
    let signaller = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(500));
        kill(me, Signal::SIGINT).unwrap();
        std::thread::sleep(Duration::from_millis(500));
        kill(me, Signal::SIGINT).unwrap();
    });
    let started = Instant::now();
    let out = runner.execute(&mut Nothing).unwrap();
    signaller.join().unwrap();
    // The grace period is 60 s and the command ignores SIGTERM: only the second signal's
    // SIGKILL can have ended it this quickly.
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(out.cancel_reason, Some(CancelReason::Interrupt));
    assert_eq!(out.runs[0].outcome.status, Status::Error);
    assert!(
        out.runs[0].outcome.message.contains("interrupted"),
        "{}",
        out.runs[0].outcome.message
    );
    assert!(!marker.exists(), "cleanup did not run");
}
