//! Executes a [`Plan`]: at most `jobs` checks at a time, each under its deadline, every
//! registered cleanup drained after each check however it ended, and signals handled as
//! documented in [`crate::cancel`]. Reporters receive [`RunEvent`]s and never query the runner.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use tokio::task::JoinSet;

use crate::cancel::{CancelLevel, CancelReason, CancelSource, CancelToken};
use crate::check::Check;
use crate::context::{CheckContext, CleanupAction};
use crate::outcome::{Outcome, SkipKind, SkipReason, Status};
use crate::panics;
use crate::plan::{Decision, Plan};
use crate::results::{CheckRun, CleanupRecord};
use crate::session::Shares;
use crate::target::Target;

/// How long one cleanup action may take before it is reported as failed.
pub const CLEANUP_DEADLINE: Duration = Duration::from_secs(60);

/// Something that happened during a run.
pub enum RunEvent<'a> {
    /// The run is starting.
    RunStarted {
        /// The plan.
        plan: &'a Plan,
        /// How many results the run will report: one per planned check, and in a run over a
        /// fleet one per node for each node-level check.
        results: usize,
    },
    /// A check started.
    CheckStarted {
        /// Its index in the plan.
        index: usize,
        /// Its ID.
        id: &'a str,
    },
    /// A running check reported how far it has got.
    CheckProgress {
        /// Its index in the plan.
        index: usize,
        /// Its ID.
        id: &'a str,
        /// How far.
        progress: &'a crate::context::Progress,
    },
    /// A check finished (or was skipped).
    CheckFinished {
        /// Its ID.
        id: &'a str,
        /// What happened.
        run: &'a CheckRun,
    },
    /// A node of the fleet could not be verified (completely); its checks are errors.
    NodeFailed {
        /// The node.
        node: &'a str,
        /// Why.
        error: &'a str,
    },
    /// The run is stopping early.
    Cancelling {
        /// Why.
        reason: CancelReason,
    },
    /// The run is over.
    RunFinished {
        /// Why it stopped early, if it did.
        cancel_reason: Option<CancelReason>,
    },
}

/// Consumes run events.
pub trait Reporter {
    /// Handles one event.
    fn report(&mut self, event: &RunEvent<'_>);
}

/// Fans events out to several reporters.
pub struct Tee<'a>(pub Vec<&'a mut dyn Reporter>);

impl Reporter for Tee<'_> {
    fn report(&mut self, event: &RunEvent<'_>) {
        for r in &mut self.0 {
            r.report(event);
        }
    }
}

/// What a run produced.
#[derive(Debug)]
pub struct RunOutput {
    /// One entry per planned check, in completion order.
    pub runs: Vec<CheckRun>,
    /// Why the run stopped early, if it did.
    pub cancel_reason: Option<CancelReason>,
    /// A reporter's panic, which stopped the run (`cancel_reason` is then `panic`): the
    /// running checks were cancelled and cleaned up, nothing more was reported, and `runs`
    /// holds every planned check all the same.
    pub panic: Option<panics::Panic>,
}

/// The run's reporter, kept from ending the run: its first panic is caught, cancels the run
/// (reason `panic`) so that the running checks stop and clean up as after a signal, and
/// silences it (a reporter that panicked is in no state to hear more).
pub(crate) struct Guarded<'r> {
    inner: &'r mut dyn Reporter,
    source: CancelSource,
    pub(crate) panic: Option<panics::Panic>,
}

impl<'r> Guarded<'r> {
    pub(crate) fn new(inner: &'r mut dyn Reporter, source: CancelSource) -> Self {
        Self {
            inner,
            source,
            panic: None,
        }
    }
}

impl Reporter for Guarded<'_> {
    fn report(&mut self, event: &RunEvent<'_>) {
        if self.panic.is_some() {
            return;
        }
        if let Err(p) = panics::catch(|| self.inner.report(event)) {
            tracing::error!(error = %p, "a reporter panicked; stopping the run");
            if self.source.token().reason().is_none() {
                self.source.escalate(CancelReason::Panic);
            }
            self.panic = Some(p);
        }
    }
}

/// Configures a [`Runner`].
#[derive(Clone, Debug)]
pub struct RunnerBuilder {
    jobs: usize,
    fail_fast: bool,
    timeout_override: Option<Duration>,
    grace: Duration,
    handle_signals: bool,
    shares: Arc<Shares>,
    source: Option<CancelSource>,
    elsewhere: HashSet<usize>,
    announce: bool,
}

impl Default for RunnerBuilder {
    fn default() -> Self {
        Self {
            jobs: 1,
            fail_fast: false,
            timeout_override: None,
            grace: Duration::from_secs(5),
            handle_signals: true,
            shares: Arc::default(),
            source: None,
            elsewhere: HashSet::new(),
            announce: true,
        }
    }
}

impl RunnerBuilder {
    /// Checks run at the same time (at least 1).
    pub fn jobs(mut self, jobs: usize) -> Self {
        self.jobs = jobs.max(1);
        self
    }

    /// Stop starting checks after the first failure, error or timeout.
    pub fn fail_fast(mut self, yes: bool) -> Self {
        self.fail_fast = yes;
        self
    }

    /// One deadline for every check instead of each check's own.
    pub fn timeout_override(mut self, timeout: Option<Duration>) -> Self {
        self.timeout_override = timeout;
        self
    }

    /// How long running checks get after the first signal before they are stopped.
    pub fn grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// Whether to install SIGINT/SIGTERM handlers (off in tests that cancel by hand).
    pub fn handle_signals(mut self, yes: bool) -> Self {
        self.handle_signals = yes;
        self
    }

    /// The areas' shared state the checks see (a [`crate::Session`] sets it).
    pub fn shares(mut self, shares: Arc<Shares>) -> Self {
        self.shares = shares;
        self
    }

    /// Cancels through `source` (shared with other work of the run) instead of a new one.
    pub fn cancel_source(mut self, source: CancelSource) -> Self {
        self.source = Some(source);
        self
    }

    /// Plan items that run elsewhere (on a fleet's nodes): neither run nor reported here.
    pub fn elsewhere(mut self, indices: impl IntoIterator<Item = usize>) -> Self {
        self.elsewhere = indices.into_iter().collect();
        self
    }

    /// Whether to report [`RunEvent::RunStarted`] (off when the caller already did).
    pub fn announce(mut self, yes: bool) -> Self {
        self.announce = yes;
        self
    }

    /// Builds the runner for `plan`.
    pub fn build(mut self, plan: &Plan, target: Arc<Target>) -> Runner<'_> {
        let source = self.source.take().unwrap_or_else(|| CancelSource::new().0);
        Runner {
            plan,
            target,
            options: self,
            source,
        }
    }
}

/// Runs a plan.
pub struct Runner<'p> {
    plan: &'p Plan,
    target: Arc<Target>,
    options: RunnerBuilder,
    source: CancelSource,
}

impl Runner<'_> {
    /// A handle that cancels the run as a signal would (for tests and embedders).
    pub fn cancel_source(&self) -> CancelSource {
        self.source.clone()
    }

    /// Executes the plan on a runtime the runner owns. Returns when every check has finished
    /// or been skipped and every cleanup has run.
    pub fn execute(self, reporter: &mut dyn Reporter) -> std::io::Result<RunOutput> {
        let workers = self.options.jobs.clamp(2, 8);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .enable_all()
            .thread_name("nfvi-runner")
            .build()?;
        Ok(runtime.block_on(self.run(reporter)))
    }

    /// Runs the plan on the current runtime (a [`crate::Session`]'s).
    pub async fn run(self, reporter: &mut dyn Reporter) -> RunOutput {
        let plan = self.plan;
        let token = self.source.token();
        // Panic locations for the checks' errors (a no-op when the binary installed its own).
        panics::install_chained();
        let mut guarded = Guarded {
            inner: reporter,
            source: self.source.clone(),
            panic: None,
        };
        let reporter = &mut guarded;
        if self.options.handle_signals {
            // Detached: it lives as long as the runtime.
            drop(spawn_signal_listener(self.source.clone()));
        }
        if self.options.announce {
            reporter.report(&RunEvent::RunStarted {
                plan,
                results: plan.items.len(),
            });
        }

        let elsewhere = &self.options.elsewhere;
        let mut queue = plan
            .items
            .iter()
            .enumerate()
            .filter(|(i, _)| !elsewhere.contains(i));
        let mut running: JoinSet<CheckRun> = JoinSet::new();
        // Which plan item each task runs, to report it should the task itself be lost.
        let mut tasks: HashMap<tokio::task::Id, (usize, chrono::DateTime<Utc>)> = HashMap::new();
        let mut runs = Vec::with_capacity(plan.items.len());
        let mut stop: Option<CancelReason> = None;
        let (progress_tx, mut progress_rx) = tokio::sync::mpsc::unbounded_channel();
        let finish = |run: CheckRun, runs: &mut Vec<CheckRun>, reporter: &mut dyn Reporter| {
            let id = &plan.items[run.index].check.meta().id;
            reporter.report(&RunEvent::CheckFinished { id, run: &run });
            runs.push(run);
        };

        loop {
            // A signal may have arrived while the last check was finishing; never start a
            // check after it, whichever branch of the select below saw it first.
            if token.is_cancelled() && matches!(stop, None | Some(CancelReason::FailFast)) {
                let reason = token.reason().unwrap_or(CancelReason::Interrupt);
                if stop.is_none() {
                    reporter.report(&RunEvent::Cancelling { reason });
                }
                stop = Some(reason);
            }
            // Checked between starts too: a reporter's panic cancels while this loop reports.
            while stop.is_none() && !token.is_cancelled() && running.len() < self.options.jobs {
                let Some((index, item)) = queue.next() else {
                    break;
                };
                match &item.decision {
                    Decision::Skip(reason) => {
                        let run = never_ran(index, reason.clone());
                        finish(run, &mut runs, reporter);
                    }
                    Decision::Run => {
                        let meta = item.check.meta();
                        reporter.report(&RunEvent::CheckStarted {
                            index,
                            id: &meta.id,
                        });
                        let limit = self.options.timeout_override.unwrap_or(meta.timeout);
                        let started_at = Utc::now();
                        let one = run_one(
                            (index, progress_tx.clone()),
                            item.check.clone(),
                            self.target.clone(),
                            self.options.shares.clone(),
                            token.clone(),
                            self.options.grace,
                            limit,
                        );
                        // run_one contains the check's panics; one of its own is a harness
                        // defect, reported as the check's error and not the end of the run.
                        let task = running.spawn(async move {
                            panics::catch_future(one).await.unwrap_or_else(|p| {
                                harness_error(
                                    index,
                                    started_at,
                                    format!("nfvi-verify panicked {p}"),
                                )
                            })
                        });
                        tasks.insert(task.id(), (index, started_at));
                    }
                }
            }
            if running.is_empty() {
                if stop.is_none() && token.is_cancelled() {
                    // The top of the loop records why, and starts nothing more.
                    continue;
                }
                break;
            }
            tokio::select! {
                Some(joined) = running.join_next_with_id() => {
                    let run = match joined {
                        Ok((id, run)) => {
                            tasks.remove(&id);
                            run
                        }
                        // Neither aborted nor able to panic (it catches its own); should it
                        // be lost all the same, the check is an error, never missing.
                        Err(e) => {
                            let (index, started_at) = tasks
                                .remove(&e.id())
                                .expect("every task is recorded when it is spawned");
                            let what = if e.is_panic() {
                                format!(
                                    "nfvi-verify {}",
                                    panics::join_message(&*e.into_panic())
                                )
                            } else {
                                "nfvi-verify lost the check's task (cancelled)".to_owned()
                            };
                            harness_error(index, started_at, what)
                        }
                    };
                    let bad = matches!(run.outcome.status, Status::Failed | Status::Error | Status::TimedOut);
                    finish(run, &mut runs, reporter);
                    if bad && self.options.fail_fast && stop.is_none() {
                        stop = Some(CancelReason::FailFast);
                        reporter.report(&RunEvent::Cancelling { reason: CancelReason::FailFast });
                    }
                }
                Some((index, progress)) = progress_rx.recv() => {
                    // A check that already finished may have sent it last: not shown then.
                    if tasks.values().any(|(i, _)| *i == index) {
                        reporter.report(&RunEvent::CheckProgress {
                            index,
                            id: &plan.items[index].check.meta().id,
                            progress: &progress,
                        });
                    }
                }
                () = token.cancelled(), if stop.is_none() || stop == Some(CancelReason::FailFast) => {
                    let reason = token.reason().unwrap_or(CancelReason::Interrupt);
                    stop = Some(reason);
                    reporter.report(&RunEvent::Cancelling { reason });
                }
            }
        }
        // Whatever was never started is reported as skipped, so every planned check appears
        // exactly once in the results.
        for (index, _) in queue {
            let (kind, message) = match stop {
                Some(CancelReason::FailFast) => (
                    SkipKind::FailFast,
                    "not started: --fail-fast stopped the run after a failure".to_owned(),
                ),
                Some(r) => (
                    SkipKind::Interrupted,
                    format!("not started: the run was interrupted ({})", r.as_str()),
                ),
                None => unreachable!("the queue is drained unless the run stopped"),
            };
            finish(
                never_ran(index, SkipReason { kind, message }),
                &mut runs,
                reporter,
            );
        }
        let cancel_reason = stop;
        reporter.report(&RunEvent::RunFinished { cancel_reason });
        RunOutput {
            runs,
            cancel_reason,
            panic: guarded.panic,
        }
    }
}

/// The run of a check the harness itself failed (a panic outside the check): an error.
fn harness_error(index: usize, started_at: chrono::DateTime<Utc>, what: String) -> CheckRun {
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

fn never_ran(index: usize, reason: SkipReason) -> CheckRun {
    CheckRun {
        index,
        node: None,
        outcome: Outcome::skip(reason),
        started_at: None,
        duration: Duration::ZERO,
        cleanup: Vec::new(),
    }
}

pub(crate) fn spawn_signal_listener(source: CancelSource) -> tokio::task::JoinHandle<()> {
    use tokio::signal::unix::{SignalKind, signal};
    tokio::spawn(async move {
        let (Ok(mut int), Ok(mut term)) = (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) else {
            tracing::warn!(
                "cannot install signal handlers; Ctrl-C will end the run without cleanup"
            );
            return;
        };
        loop {
            let reason = tokio::select! {
                _ = int.recv() => CancelReason::Interrupt,
                _ = term.recv() => CancelReason::Terminate,
            };
            tracing::warn!(reason = reason.as_str(), "signal received");
            source.escalate(reason);
        }
    })
}

async fn stop_requested(token: &CancelToken, grace: Duration) {
    token.cancelled().await;
    tokio::select! {
        () = tokio::time::sleep(grace) => {}
        () = token.reached(CancelLevel::Hard) => {}
    }
}

/// Runs one check; `progress` is its plan index and where its progress reports go.
async fn run_one(
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
        // "the check panicked at harness/core/src/runner.rs:LINE:COL: out of range on line LINE"
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
