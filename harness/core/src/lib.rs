//! The nfvi-verify engine: the boundary every area implements ([`Area`]), what a check is
//! ([`declare`], [`Check`]), how a suite becomes a [`Plan`], how a run's [`Session`]
//! executes it (one runtime, the areas' shared state, concurrency, deadlines, cancellation,
//! cleanup), and the results model that every report is rendered from. It names no area.
//!
//! The flow is plan, then run. [`Target::load`] reads the common settings and lets each
//! area read its tables; [`plan::build`] turns the reference model's suite, the registered
//! checks, the [`Target`] and the machine's [`Capabilities`] (including the areas'
//! resources) into an immutable [`Plan`] in which every check is either going to run or is
//! skipped with a reason; `nfvi-verify list` prints exactly that. [`Session::execute`] runs
//! it and sends [`RunEvent`]s to [`Reporter`]s, which only consume.
//! [`results::RunResults`] is the serialisable source of truth (`results.json`).

#![warn(missing_docs)]

pub mod area;
pub mod cancel;
pub mod caps;
pub mod check;
pub mod context;
pub mod diff;

pub mod exit_code;
pub mod fleet;
pub mod glob;
pub mod inventory;
pub mod judge;
pub mod ledger;
pub mod leftover;
pub mod outcome;
pub mod panics;
pub mod plan;
pub mod process;
pub mod registry;
pub mod results;
pub mod runner;
pub mod schemas;
pub mod scratch;
pub mod session;
pub mod target;
mod text;
pub mod waiver;

pub use area::{Area, AreaConfig, Areas, ConfigError, Flag, FlagKind, Resource, Shared, Table};
pub use caps::Capabilities;
pub use check::{
    BoxFuture, Check, CheckError, CheckMeta, CheckResult, Declared, Need, Severity, declare,
};
pub use context::{CheckContext, Progress};
pub use outcome::{
    Evidence, Metric, Outcome, Percentiles, Provenance, SkipKind, SkipReason, Status,
};
pub use plan::{Plan, PlanOptions, PlannedCheck};
pub use registry::Registry;
pub use runner::Tee;
pub use runner::{Reporter, RunEvent, Runner, RunnerBuilder};
pub use session::{Session, Shares};
pub use target::Target;
pub use text::{bytes_to_evidence, error_with_causes, truncate_chars};
