//! Cancellation shared by the runner, the checks and the processes they start.
//!
//! The first Ctrl-C or SIGTERM cancels gracefully: no new check starts, running commands get
//! SIGTERM and a grace period, every registered cleanup runs, and partial results are
//! written. The second signal (or the end of the grace period) is hard: process groups get
//! SIGKILL at once.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

/// How far cancellation has gone.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum CancelLevel {
    /// Not cancelled.
    None,
    /// Stop starting work; ask running work to stop.
    Graceful,
    /// Kill everything now.
    Hard,
}

/// Why a run stopped early.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum CancelReason {
    /// SIGINT (Ctrl-C).
    Interrupt,
    /// SIGTERM.
    Terminate,
    /// `--fail-fast` after a failure.
    FailFast,
    /// The run ended without writing its results (SIGKILL, a crash, a power cut); they were
    /// recovered from its journal (`nfvi-verify report --from DIR/results.journal`).
    Killed,
    /// nfvi-verify panicked (a defect of the harness, not a finding about the NFVI): the
    /// results are what the run observed until then, recovered from its journal, and
    /// `harness_error` says where it panicked.
    Panic,
}

impl CancelReason {
    /// The kebab-case name used in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            CancelReason::Interrupt => "interrupt",
            CancelReason::Killed => "killed",
            CancelReason::Terminate => "terminate",
            CancelReason::FailFast => "fail-fast",
            CancelReason::Panic => "panic",
        }
    }
}

type State = (CancelLevel, Option<CancelReason>);

/// The sending side, held by the runner (and by tests standing in for signals).
#[derive(Clone, Debug)]
pub struct CancelSource {
    tx: watch::Sender<State>,
}

/// The receiving side, handed to checks and processes.
#[derive(Clone, Debug)]
pub struct CancelToken {
    rx: watch::Receiver<State>,
}

impl CancelSource {
    /// A source and its first token.
    pub fn new() -> (Self, CancelToken) {
        let (tx, rx) = watch::channel((CancelLevel::None, None));
        (Self { tx }, CancelToken { rx })
    }

    /// Escalates one step, as a signal does: none → graceful → hard. The first reason sticks.
    pub fn escalate(&self, reason: CancelReason) {
        self.tx.send_modify(|(level, r)| {
            *level = match *level {
                CancelLevel::None => CancelLevel::Graceful,
                _ => CancelLevel::Hard,
            };
            r.get_or_insert(reason);
        });
    }

    /// A new token.
    pub fn token(&self) -> CancelToken {
        CancelToken {
            rx: self.tx.subscribe(),
        }
    }
}

impl CancelToken {
    /// A token that is never cancelled, for running checks and commands outside a runner.
    pub fn never() -> Self {
        // One source, kept for the life of the program, so `changed()` never sees it dropped.
        static NEVER: std::sync::OnceLock<CancelSource> = std::sync::OnceLock::new();
        NEVER.get_or_init(|| CancelSource::new().0).token()
    }

    /// The current level.
    pub fn level(&self) -> CancelLevel {
        self.rx.borrow().0
    }

    /// Why the run is being cancelled, if it is.
    pub fn reason(&self) -> Option<CancelReason> {
        self.rx.borrow().1
    }

    /// Whether cancellation has started.
    pub fn is_cancelled(&self) -> bool {
        self.level() >= CancelLevel::Graceful
    }

    /// Resolves once the level reaches `level`.
    pub async fn reached(&self, level: CancelLevel) {
        let mut rx = self.rx.clone();
        // An error means the source is gone; nothing can cancel any more.
        if rx.wait_for(|(l, _)| *l >= level).await.is_err() {
            std::future::pending::<()>().await;
        }
    }

    /// Resolves once cancellation starts.
    pub async fn cancelled(&self) {
        self.reached(CancelLevel::Graceful).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_escalate_and_the_first_reason_sticks() {
        let (source, token) = CancelSource::new();
        assert_eq!(token.level(), CancelLevel::None);
        source.escalate(CancelReason::Terminate);
        assert_eq!(token.level(), CancelLevel::Graceful);
        source.escalate(CancelReason::Interrupt);
        assert_eq!(token.level(), CancelLevel::Hard);
        assert_eq!(token.reason(), Some(CancelReason::Terminate));
    }
}
