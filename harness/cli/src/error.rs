//! What can go wrong at the command line, typed, and the one place that maps it to an exit
//! code (documented in the README and in `nfvi_harness::exit_code`).

use std::path::PathBuf;

use nfvi_harness::exit_code;
use nfvi_harness::panics::Panic;
use nfvi_harness::plan::PlanError;
use nfvi_harness::results::ResultsError;
use nfvi_harness::target::TargetError;
use nfvi_reports::ReportError;

/// An error of a subcommand.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// A flag, a value or a file the user gave is not what was expected; nothing was run
    /// or written.
    #[error("{0}")]
    BadInput(String),
    /// The target file.
    #[error(transparent)]
    Target(#[from] TargetError),
    /// A results file given to `report`, `diff` or `--rerun-failed`.
    #[error(transparent)]
    Results(#[from] ResultsError),
    /// The suite or the selection.
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// The data this build embeds (reference model, check registry) is inconsistent: a
    /// defect of the build, not of the input.
    #[error("this build's embedded data is inconsistent (a defect; please report it): {0}")]
    Build(String),
    /// Something stopped the command before it could decide: the runtime, the lab, a probe.
    #[error("{0}")]
    Incomplete(String),
    /// The run completed, but not every artifact could be written. The verdict was printed;
    /// `written` holds what is on disk.
    #[error(
        "the run completed ({verdict}), but not every artifact was written: {}{}",
        failed.iter().map(|e| crate::chain(e)).collect::<Vec<_>>().join("; "),
        fallback.as_ref().map(|p| format!("; the results are saved in {}", p.display())).unwrap_or_default()
    )]
    Artifacts {
        /// The verdict of the run, in words.
        verdict: String,
        /// What could not be written, and why.
        failed: Vec<ReportError>,
        /// Where results.json went instead, when it could not go to the output directory.
        fallback: Option<PathBuf>,
    },
    /// nfvi-verify panicked: a defect of the harness, never of the input or the NFVI. A run
    /// first saves what it had observed; `saved` says where (or that nothing could be).
    #[error(
        "nfvi-verify panicked {panic} (thread `{}`; a defect of nfvi-verify, please report it){}",
        panic.thread.as_deref().unwrap_or("<unnamed>"),
        saved.as_ref().map(|s| format!("; {s}")).unwrap_or_default()
    )]
    Panicked {
        /// Where and with what message.
        panic: Panic,
        /// What became of the run's results, for a run.
        saved: Option<String>,
    },
}

impl CliError {
    /// A bad-input error from any message.
    pub fn bad_input(message: impl Into<String>) -> Self {
        Self::BadInput(message.into())
    }

    /// The exit code: the one mapping from errors to codes.
    pub fn exit_code(&self) -> i32 {
        match self {
            Self::BadInput(_) | Self::Target(_) | Self::Results(_) | Self::Plan(_) => {
                exit_code::BAD_INPUT
            }
            // Not the user's input, but nothing ran either; scripts treat it like bad input.
            Self::Build(_) => exit_code::BAD_INPUT,
            // The run's record is incomplete, whatever its verdict: CI must not pass on it.
            Self::Incomplete(_) | Self::Artifacts { .. } => exit_code::INCOMPLETE,
            // The harness could not decide (like a check's error): never a pass, never 101.
            Self::Panicked { .. } => exit_code::INCOMPLETE,
        }
    }
}
