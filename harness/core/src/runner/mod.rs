//! Executes a [`Plan`]: at most `jobs` checks at a time, each under its deadline, every
//! registered cleanup drained after each check however it ended, and signals handled as
//! documented in [`crate::cancel`]. Reporters receive [`RunEvent`]s and never query the runner.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::task::JoinSet;

use crate::cancel::{CancelReason, CancelSource};
use crate::outcome::{SkipKind, SkipReason, Status};
use crate::panics;
use crate::plan::{Decision, Plan};
use crate::results::CheckRun;
use crate::session::Shares;
use crate::target::Target;

mod events;
mod one_check;

pub(crate) use events::Guarded;
pub use events::{Reporter, RunEvent, RunOutput, Tee};
pub use one_check::{CLEANUP_DEADLINE, humanize};
use one_check::{harness_error, never_ran, run_one};

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
