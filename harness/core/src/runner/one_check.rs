//! Running one check: its own task under its deadline, stopped on cancellation after the
//! grace period, its panics turned into errors, then its cleanups drained (last registered
//! first, each under [`CLEANUP_DEADLINE`]); and the runs of checks that never ran or that
//! the harness itself failed.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;

use crate::cancel::{CancelLevel, CancelReason, CancelToken};
use crate::check::Check;
use crate::context::{CheckContext, CleanupAction};
use crate::outcome::{Outcome, SkipReason};
use crate::panics;
use crate::results::{CheckRun, CleanupRecord};
use crate::session::Shares;
use crate::target::Target;

/// How long one cleanup action may take before it is reported as failed.
pub const CLEANUP_DEADLINE: Duration = Duration::from_secs(60);

/// The run of a check the harness itself failed (a panic outside the check): an error.
pub(super) fn harness_error(
    index: usize,
    started_at: chrono::DateTime<Utc>,
    what: String,
) -> CheckRun {
    tracing::error!(index, error = %what, "the harness failed while running a check");
    CheckRun {
        index,
        node: None,
        outcome: Outcome::error(format!(
            "{what} while running this check (a defect of nfvi-verify; its cleanups may not have run)"
        )),
        started_at: Some(started_at),
        duration: (Utc::now() - started_at).to_std().unwrap_or_default(),
        cleanup: Vec::new(),
    }
}

pub(super) fn never_ran(index: usize, reason: SkipReason) -> CheckRun {
    CheckRun {
        index,
        node: None,
        outcome: Outcome::skip(reason),
        started_at: None,
        duration: Duration::ZERO,
        cleanup: Vec::new(),
    }
}

async fn stop_requested(token: &CancelToken, grace: Duration) {
    token.cancelled().await;
    tokio::select! {
        () = tokio::time::sleep(grace) => {}
        () = token.reached(CancelLevel::Hard) => {}
    }
}

/// Runs one check; `progress` is its plan index and where its progress reports go.
pub(super) async fn run_one(
    progress: crate::context::ProgressSink,
    check: Arc<dyn Check>,
    target: Arc<Target>,
    shares: Arc<Shares>,
    token: CancelToken,
    grace: Duration,
    limit: Duration,
) -> CheckRun {
    let index = progress.0;
    let started_at = Utc::now();
    let t0 = Instant::now();
    let id = check.meta().id.clone();
    tracing::info!(check = %id, "started");
    let cx = Arc::new(
        CheckContext::with_shares(target, shares, token.clone(), grace).with_progress(progress),
    );
    let inner = {
        let cx = cx.clone();
        tokio::spawn(panics::catch_future(async move { check.run(&cx).await }))
    };
    let abort = inner.abort_handle();
    tokio::pin!(inner);
    let mut outcome = tokio::select! {
        joined = &mut inner => match joined {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(p)) => Outcome::error(format!("the check panicked {p}")),
            Err(e) if e.is_panic() => Outcome::error(format!(
                "the check {}",
                panics::join_message(&*e.into_panic())
            )),
            Err(_) => Outcome::error("the check was aborted"),
        },
        () = tokio::time::sleep(limit) => {
            abort.abort();
            let _ = (&mut inner).await;
            Outcome::timed_out(format!(
                "timed out: did not finish within {}; stopped and cleaned up",
                humanize(limit)
            ))
        }
        () = stop_requested(&token, grace) => {
            abort.abort();
            let _ = (&mut inner).await;
            let reason = token.reason().map_or("cancelled", CancelReason::as_str);
            Outcome::error(format!("interrupted ({reason}) before it finished; cleaned up"))
        }
    };
    let mut commands = cx.take_commands();
    commands.append(&mut outcome.evidence.commands);
    outcome.evidence.commands = commands;

    let cleanup = run_cleanups(cx.take_cleanups()).await;
    let failed: Vec<String> = cleanup
        .iter()
        .filter_map(|c| c.error.as_ref().map(|e| format!("{}: {e}", c.action)))
        .collect();
    if !failed.is_empty() {
        outcome = outcome.unless_passed(format_args!(
            "cleanup left something behind: {}",
            failed.join("; ")
        ));
    }
    tracing::info!(check = %id, outcome = outcome.status.as_str(), "finished");
    panics::inject("run-one");
    CheckRun {
        index,
        node: None,
        outcome,
        started_at: Some(started_at),
        duration: t0.elapsed(),
        cleanup,
    }
}

/// Runs a check's cleanups, last registered first, each under [`CLEANUP_DEADLINE`]; blocking
/// ones on a blocking thread, futures on the runtime. A panic is a failed cleanup.
async fn run_cleanups(cleanups: Vec<crate::context::Cleanup>) -> Vec<CleanupRecord> {
    let mut records = Vec::with_capacity(cleanups.len());
    for c in cleanups.into_iter().rev() {
        let mut task = match c.action {
            CleanupAction::Blocking(f) => tokio::task::spawn_blocking(move || panics::catch(f)),
            CleanupAction::Async(f) => tokio::spawn(panics::catch_future(f)),
        };
        // On the deadline a future is aborted, so the next cleanup does not run beside it; a
        // blocking action cannot be stopped and is left to finish on its own (the session
        // does not wait for it past its close deadline).
        let error = match tokio::time::timeout(CLEANUP_DEADLINE, &mut task).await {
            Ok(Ok(Ok(Ok(())))) => None,
            Ok(Ok(Ok(Err(e)))) => Some(e),
            Ok(Ok(Err(p))) => Some(format!("cleanup panicked {p}")),
            Ok(Err(e)) if e.is_panic() => Some(format!(
                "cleanup {}",
                panics::join_message(&*e.into_panic())
            )),
            Ok(Err(_)) => Some("cleanup was aborted".to_owned()),
            Err(_) => {
                task.abort();
                Some(format!(
                    "did not finish within {}",
                    humanize(CLEANUP_DEADLINE)
                ))
            }
        };
        records.push(CleanupRecord {
            action: c.what,
            error,
        });
    }
    records
}

/// `90s` → `1m30s`, `0.5s` → `500ms`.
pub fn humanize(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}m{}s", d.as_secs() / 60, d.as_secs() % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::{CheckMeta, declare};
    use crate::outcome::Status;
    use nfvi_reference_model::Area;

    /// Runs one check as the runner does, on a runtime like the runner's.
    fn run_alone(check: Arc<dyn Check>) -> CheckRun {
        panics::install_chained();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(run_one(
            (0, tokio::sync::mpsc::unbounded_channel().0),
            check,
            Arc::new(Target::local(&Default::default())),
            Arc::default(),
            CancelToken::never(),
            Duration::from_secs(1),
            Duration::from_secs(10),
        ))
    }

    /// `file:line:` of a `line!()` in this file, as a panic location starts.
    fn here(line: u32) -> String {
        format!("{}:{line}:", file!())
    }

    #[test]
    fn a_check_that_panics_is_an_error_naming_where_it_panicked() {
        let check = declare(
            CheckMeta::new("host.t.panics", Area::Host, "panics"),
            |_cx| Box::pin(async move { panic!("out of range on line {}", line!()) }),
        )
        .into_check();
        let run = run_alone(check);
        assert_eq!(run.outcome.status, Status::Error);
        // "the check panicked at harness/core/src/runner/one_check.rs:LINE:COL: out of range on line LINE"
        let message = &run.outcome.message;
        let line: u32 = message.rsplit(' ').next().unwrap().parse().unwrap();
        assert!(
            message.starts_with(&format!("the check panicked at {}", here(line))),
            "{message}"
        );
        assert!(message.ends_with(&format!(": out of range on line {line}")));
    }

    #[test]
    fn a_cleanup_that_panics_names_where_and_the_next_one_still_runs() {
        let ran = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let seen = ran.clone();
        let check = declare(
            CheckMeta::new("host.t.cleanup-panics", Area::Host, "cleanup panics"),
            move |cx| {
                let seen = seen.clone();
                cx.on_cleanup("the first", move || {
                    seen.store(true, std::sync::atomic::Ordering::SeqCst);
                    Ok(())
                });
                cx.on_cleanup("the second", || panic!("blocking {}", line!()));
                cx.on_cleanup_async("the third", async { panic!("async {}", line!()) });
                Box::pin(async { Ok(Outcome::pass("observed")) })
            },
        )
        .into_check();
        let run = run_alone(check);
        let errors: Vec<String> = run.cleanup.iter().filter_map(|c| c.error.clone()).collect();
        assert_eq!(errors.len(), 2, "{errors:?}");
        // Last registered first: the async one, then the blocking one.
        for (error, kind) in errors.iter().zip(["async", "blocking"]) {
            let line: u32 = error.rsplit(' ').next().unwrap().parse().unwrap();
            assert!(
                error.starts_with(&format!("cleanup panicked at {}", here(line)))
                    && error.ends_with(&format!(": {kind} {line}")),
                "{error}"
            );
        }
        assert!(ran.load(std::sync::atomic::Ordering::SeqCst));
        // A passing check whose cleanup failed is not a pass.
        assert_eq!(run.outcome.status, Status::Error, "{}", run.outcome.message);
    }
}
