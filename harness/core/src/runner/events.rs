//! What a run reports and to whom: the [`RunEvent`]s, the [`Reporter`] trait that consumes
//! them, [`Tee`] that fans them out, the [`RunOutput`] a run returns, and the guard that
//! keeps a reporter's panic from ending the run (it cancels the run instead).

use crate::cancel::{CancelReason, CancelSource};
use crate::panics;
use crate::plan::Plan;
use crate::results::CheckRun;

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
    pub(super) inner: &'r mut dyn Reporter,
    pub(super) source: CancelSource,
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
