//! What a running check gets: the target, the run's shared state of its area,
//! cancellation, a command runner that records evidence, and a cleanup registry the runner
//! drains whatever happens.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::cancel::CancelToken;
use crate::check::BoxFuture;
use crate::outcome::CommandRecord;
use crate::process::{self, CommandError, CommandOutput, CommandSpec};
use crate::session::Shares;
use crate::target::Target;

/// An undo action: blocking work (run on a blocking thread) or a future (run on the run's
/// runtime), each under the cleanup deadline.
pub(crate) enum CleanupAction {
    Blocking(Box<dyn FnOnce() -> Result<(), String> + Send>),
    Async(BoxFuture<'static, Result<(), String>>),
}

/// One undo action a check registered.
pub(crate) struct Cleanup {
    pub(crate) what: String,
    pub(crate) action: CleanupAction,
}

/// How far a long check has got (an upstream suite's tests, say), for the live display.
#[derive(Clone, Debug, PartialEq)]
pub struct Progress {
    /// Units finished.
    pub done: u64,
    /// Units in all, when known.
    pub total: Option<u64>,
    /// What a unit is ("tests").
    pub unit: &'static str,
    /// Units that failed so far.
    pub failed: u64,
    /// The check's own estimate of the time left; the display estimates one from the rate
    /// when it is `None`.
    pub eta: Option<Duration>,
}

/// Where a running check's progress goes: the runner's channel, tagged with the plan index.
pub(crate) type ProgressSink = (usize, tokio::sync::mpsc::UnboundedSender<(usize, Progress)>);

/// The context of one running check.
pub struct CheckContext {
    target: Arc<Target>,
    shares: Arc<Shares>,
    cancel: CancelToken,
    grace: Duration,
    cleanups: Mutex<Vec<Cleanup>>,
    commands: Mutex<Vec<CommandRecord>>,
    progress: Option<ProgressSink>,
}

impl CheckContext {
    /// A context; the runner makes one per check, tests may make their own.
    pub fn new(target: Arc<Target>, cancel: CancelToken, grace: Duration) -> Self {
        Self::with_shares(target, Arc::default(), cancel, grace)
    }

    /// A context that sees the run's shared state of every area.
    pub fn with_shares(
        target: Arc<Target>,
        shares: Arc<Shares>,
        cancel: CancelToken,
        grace: Duration,
    ) -> Self {
        Self {
            target,
            shares,
            cancel,
            grace,
            cleanups: Mutex::new(Vec::new()),
            commands: Mutex::new(Vec::new()),
            progress: None,
        }
    }

    pub(crate) fn with_progress(mut self, sink: ProgressSink) -> Self {
        self.progress = Some(sink);
        self
    }

    /// Reports how far the check has got; the console shows it next to the check (counts and
    /// an estimate of the time left). Cheap, and dropped when nothing listens.
    pub fn progress(&self, progress: Progress) {
        if let Some((index, tx)) = &self.progress {
            let _ = tx.send((*index, progress));
        }
    }

    /// Whether the run's plan runs the check `id` (true when no plan is known, as in tests):
    /// shared work (one suite run serving several checks) does only what planned checks need.
    pub fn planned(&self, id: &str) -> bool {
        self.shares.planned(id)
    }

    /// The run's ledger of upstream tests ([`crate::ledger`]): where a suite records each
    /// test as it ends, and what an earlier run (resumed, or re-run for its failures)
    /// settled. A ledger that keeps nothing when the run has no output directory.
    pub fn ledger(&self) -> Arc<crate::ledger::Ledger> {
        self.shares.ledger()
    }

    /// The NFVI under test.
    pub fn target(&self) -> &Target {
        &self.target
    }

    /// The fleet's nodes and what their agents reported, in a run over a fleet: checks of
    /// the whole NFVI run after the nodes and may compare them.
    pub fn fleet(&self) -> Option<&crate::fleet::FleetReport> {
        self.shares.fleet()
    }

    /// The transport that reached the fleet, in a run over one: through
    /// [`crate::fleet::Transport::spawn_agent`] a check of the whole NFVI starts
    /// `nfvi-verify` processes on the nodes (a responder, a probe) and owns them.
    pub fn transport(&self) -> Option<Arc<dyn crate::fleet::Transport>> {
        self.shares.transport().cloned()
    }

    /// The run's shared state of type `T` (an area's, opened by [`crate::Area::open`]).
    ///
    /// # Panics
    ///
    /// When no area of the run opened a `T`: a check of an area that is not registered,
    /// which is a defect of this build.
    pub fn shared<T: std::any::Any + Send + Sync>(&self) -> Arc<T> {
        self.shares.get::<T>().unwrap_or_else(|| {
            panic!(
                "no area of this run shares a {}",
                std::any::type_name::<T>()
            )
        })
    }

    /// The run's cancellation token.
    pub fn cancel(&self) -> &CancelToken {
        &self.cancel
    }

    /// Runs a command under the check's cancellation and records it as evidence. The record
    /// is made before the command starts, so a command stopped by a timeout still shows up.
    pub async fn command(&self, spec: CommandSpec) -> Result<CommandOutput, CommandError> {
        let slot = {
            let mut log = self.commands.lock().expect("command log poisoned");
            log.push(CommandRecord {
                command: spec.display(),
                exit_code: None,
                stdout: String::new(),
                stderr: "[still running when the check was stopped; killed]".to_owned(),
                duration_secs: 0.0,
            });
            log.len() - 1
        };
        let result = process::run(&spec, &self.cancel, self.grace).await;
        let record = match &result {
            Ok(out) => out.record(&spec),
            Err(e) => CommandRecord {
                command: spec.display(),
                exit_code: None,
                stdout: String::new(),
                stderr: format!("{e}: {}", e.source),
                duration_secs: 0.0,
            },
        };
        self.commands.lock().expect("command log poisoned")[slot] = record;
        result
    }

    /// Registers an undo action. Register before creating what it undoes; the runner runs
    /// every registered action, last first, after the check ends however it ends (pass, fail,
    /// panic, timeout, Ctrl-C), and reports actions that fail.
    pub fn on_cleanup(
        &self,
        what: impl Into<String>,
        action: impl FnOnce() -> Result<(), String> + Send + 'static,
    ) {
        self.cleanups
            .lock()
            .expect("cleanup registry poisoned")
            .push(Cleanup {
                what: what.into(),
                action: CleanupAction::Blocking(Box::new(action)),
            });
    }

    /// Registers an undo action that is a future (a call through a client the check
    /// already holds); otherwise as [`Self::on_cleanup`]: register first, run last-first
    /// after the check however it ends.
    pub fn on_cleanup_async(
        &self,
        what: impl Into<String>,
        action: impl Future<Output = Result<(), String>> + Send + 'static,
    ) {
        self.cleanups
            .lock()
            .expect("cleanup registry poisoned")
            .push(Cleanup {
                what: what.into(),
                action: CleanupAction::Async(Box::pin(action)),
            });
    }

    pub(crate) fn take_cleanups(&self) -> Vec<Cleanup> {
        std::mem::take(&mut *self.cleanups.lock().expect("cleanup registry poisoned"))
    }

    /// The commands run so far, as recorded evidence.
    pub fn recorded_commands(&self) -> Vec<CommandRecord> {
        self.commands.lock().expect("command log poisoned").clone()
    }

    pub(crate) fn take_commands(&self) -> Vec<CommandRecord> {
        std::mem::take(&mut *self.commands.lock().expect("command log poisoned"))
    }
}
