//! Panics outside the checks: a reporter that panics stops the run the way a signal does
//! (the running check is cancelled and cleans up, the session closes, and every planned check
//! is in the output), and a panic nothing catches is printed by the binary's hook as one line,
//! where one inside `catch` stays quiet.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use nfvi_harness::cancel::CancelReason;
use nfvi_harness::plan::{self, PlanOptions};
use nfvi_harness::{
    Area, Areas, BoxFuture, Capabilities, Check, CheckMeta, Outcome, Registry, Reporter, RunEvent,
    RunnerBuilder, Session, Shared, Status, Table, Target, declare,
};
use nfvi_reference_model::Area as AreaId;

static CLEANED: AtomicBool = AtomicBool::new(false);
static CLOSED: AtomicBool = AtomicBool::new(false);

/// Two checks: one finishes at once, the other made something (its cleanup removes it) and
/// waits until the run is cancelled.
struct PanickyArea;

impl Area for PanickyArea {
    fn id(&self) -> &'static str {
        "panicky"
    }

    fn tables(&self) -> Vec<Table> {
        Vec::new()
    }

    fn checks(&self) -> Vec<Arc<dyn Check>> {
        let area = AreaId::new("panicky");
        vec![
            declare(CheckMeta::new("panicky.quick", area, "finishes"), |_| {
                Box::pin(async { Ok(Outcome::pass("observed")) })
            })
            .into_check(),
            declare(CheckMeta::new("panicky.slow", area, "cleans up"), |cx| {
                cx.on_cleanup("remove what it made", || {
                    CLEANED.store(true, Ordering::SeqCst);
                    Ok(())
                });
                let cancel = cx.cancel().clone();
                Box::pin(async move {
                    cancel.cancelled().await;
                    Ok(Outcome::pass("stopped when cancelled"))
                })
            })
            .into_check(),
        ]
    }

    fn close(&self, _shared: Shared) -> BoxFuture<'static, Result<(), String>> {
        Box::pin(async {
            CLOSED.store(true, Ordering::SeqCst);
            Ok(())
        })
    }
}

/// Panics on the first finished check, the way the console or the journal could.
struct Panicking {
    line: u32,
}

impl Reporter for Panicking {
    fn report(&mut self, event: &RunEvent<'_>) {
        if let RunEvent::CheckFinished { .. } = event {
            self.line = line!() + 1;
            panic!("the reporter broke");
        }
    }
}

#[test]
fn a_reporter_that_panics_stops_the_run_and_everything_is_cleaned_up() {
    let areas = Areas::new(vec![Arc::new(PanickyArea)]);
    let target = Target::local(&areas);
    let model = nfvi_reference_model::load_embedded().unwrap();
    let registry = Registry::new(areas.checks(), &model).unwrap();
    let caps = Capabilities::detect(&target, &areas);
    let options = PlanOptions {
        suite: "all".into(),
        ..Default::default()
    };
    let plan = plan::build(&model, &registry, &target, &caps, &options).unwrap();
    assert_eq!(plan.items.len(), 2);

    let session = Session::open(areas, target, 2).unwrap();
    let mut reporter = Panicking { line: 0 };
    let out = session.execute(
        &plan,
        RunnerBuilder::default()
            .jobs(2)
            .handle_signals(false)
            .grace(Duration::from_millis(200)),
        &mut reporter,
    );
    assert_eq!(out.cancel_reason, Some(CancelReason::Panic));
    let panic = out.panic.expect("the reporter's panic is in the output");
    assert_eq!(panic.message, "the reporter broke");
    let location = panic.location.unwrap_or_default();
    assert!(
        location.starts_with(&format!("{}:{}:", file!(), reporter.line)),
        "{location}"
    );
    // Every planned check once, the slow one stopped and cleaned up.
    let mut ids: Vec<usize> = out.runs.iter().map(|r| r.index).collect();
    ids.sort_unstable();
    assert_eq!(ids, vec![0, 1]);
    let slow = out
        .runs
        .iter()
        .find(|r| plan.items[r.index].check.meta().id == "panicky.slow")
        .unwrap();
    assert_ne!(slow.outcome.status, Status::Skipped, "{:?}", slow.outcome);
    assert_eq!(slow.cleanup.len(), 1, "{:?}", slow.cleanup);
    assert!(CLEANED.load(Ordering::SeqCst), "the cleanup ran");
    for record in session.close() {
        assert!(record.error.is_none(), "{record:?}");
    }
    assert!(CLOSED.load(Ordering::SeqCst), "the session closed");
}

/// Run in a child process (the hook is installed once per process, and this one must be the
/// binary's): a panic on a thread of its own prints the line, one inside `catch` nothing.
#[test]
fn hook_child() {
    if std::env::var_os("NFVI_PANICS_HOOK_CHILD").is_none() {
        return;
    }
    nfvi_harness::panics::install();
    let quiet = nfvi_harness::panics::catch(|| panic!("caught, not printed"));
    assert!(quiet.is_err());
    let joined = std::thread::Builder::new()
        .name("nfvi-lonely".into())
        .spawn(|| panic!("nobody catches this"))
        .unwrap()
        .join()
        .unwrap_err();
    // The joiner gets the location the hook saw on the other thread.
    eprintln!("joined: {}", nfvi_harness::panics::join_message(&*joined));
}

#[test]
fn a_panic_nothing_catches_is_printed_as_one_line() {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "hook_child", "--nocapture", "--test-threads=1"])
        .env("NFVI_PANICS_HOOK_CHILD", "1")
        .env_remove("RUST_BACKTRACE")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let source = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/panics.rs"),
    )
    .unwrap();
    let line = source
        .lines()
        .position(|l| l.contains(".spawn(|| panic!(\"nobody catches this\"))"))
        .unwrap()
        + 1;
    let at = format!("{}:{line}:", file!());
    let printed: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("nfvi-verify: panic at "))
        .collect();
    assert_eq!(printed.len(), 1, "{stderr}");
    assert!(
        printed[0].starts_with(&format!("nfvi-verify: panic at {at}"))
            && printed[0].ends_with(": nobody catches this (thread nfvi-lonely)"),
        "{stderr}"
    );
    assert!(!stderr.contains("caught, not printed"), "{stderr}");
    assert!(
        stderr.contains(&format!("joined: panicked at {at}")),
        "{stderr}"
    );
}
