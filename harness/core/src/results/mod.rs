//! `results.json`: the source of truth every report is rendered from. The schema is
//! versioned ([`SCHEMA_VERSION`]), generated from these types (`cargo xtask schemas`) and
//! checked in under `schemas/results.schema.json`. This module holds the run-level model
//! (tool, suite, target, verdict, totals, the [`RunResults`] document and what the runner
//! hands over to build it); the requirement rows of the traceability matrix live in
//! `requirement`, one check's result in `check_result`, putting a run together (assembling,
//! resuming, recovering and judging) in `assemble`, and reading, migrating and writing the
//! file in `file`. Every public item is re-exported here, so paths stay
//! `nfvi_harness::results::...`.

mod assemble;
mod check_result;
mod file;
mod requirement;

use std::time::Duration;

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::cancel::CancelReason;
use crate::fleet::FleetReport;
use crate::inventory::Inventory;
pub use crate::judge::verdict;
use crate::judge::{Certification, RunConditions};
use crate::outcome::{SkipKind, Status};
use crate::target::NodeProfile;
use crate::waiver::{Waiver, WaiverReport};
pub use check_result::{CheckResult, CleanupRecord};
pub use file::{ResultsError, write_atomic};
pub use requirement::{RequirementResult, RequirementRow, TraceStatus};

/// The version of the results format. Bumped on any change a consumer could notice.
pub const SCHEMA_VERSION: u32 = 5;

/// The name and version of the tool that produced a result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ToolInfo {
    /// `nfvi-verify`.
    pub name: String,
    /// The release.
    pub version: String,
    /// The git commit it was built from, or `unknown`.
    pub git_sha: String,
}

/// The suite a run verified.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SuiteInfo {
    /// Name, as passed to `--suite`.
    pub name: String,
    /// Title.
    pub title: String,
    /// Version, shown on the badge.
    pub version: String,
    /// What it verifies.
    pub description: String,
    /// Globs over requirement IDs no waiver may excuse.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unwaivable: Vec<String>,
}

/// The target a run verified.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TargetInfo {
    /// Its name.
    pub name: String,
    /// The target file, or `None` for the embedded local default.
    pub file: Option<String>,
    /// The node profile judged.
    pub profile: NodeProfile,
}

/// How the run was started, so a reviewer can reproduce it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Invocation {
    /// The command-line arguments.
    pub argv: Vec<String>,
    /// A command that reruns the same checks against the same target.
    pub reproduce: String,
}

/// CPU and memory the run used, from getrusage at the end of the run.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ResourceUsage {
    /// User + system CPU seconds of the harness process itself.
    pub harness_cpu_secs: f64,
    /// User + system CPU seconds of every process it started (plugins, `ip`, probes).
    pub children_cpu_secs: f64,
    /// Peak resident memory of the harness process, KiB.
    pub harness_max_rss_kib: u64,
}

impl ResourceUsage {
    /// Reads the usage of this process and its waited-for children so far.
    pub fn measure() -> Self {
        use nix::sys::resource::{UsageWho, getrusage};
        let secs = |u: &nix::sys::resource::Usage| {
            let t = |tv: nix::sys::time::TimeVal| tv.tv_sec() as f64 + tv.tv_usec() as f64 / 1e6;
            t(u.user_time()) + t(u.system_time())
        };
        let me = getrusage(UsageWho::RUSAGE_SELF).ok();
        let children = getrusage(UsageWho::RUSAGE_CHILDREN).ok();
        Self {
            harness_cpu_secs: me.as_ref().map_or(0.0, secs),
            children_cpu_secs: children.as_ref().map_or(0.0, secs),
            harness_max_rss_kib: me.map_or(0, |u| u.max_rss() as u64),
        }
    }
}

/// How a run killed before it could write its results was finished (`run --resume`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Resumed {
    /// Results carried over verbatim from the part that was killed (its journal); the other
    /// results are the resumed part's.
    pub carried_over: usize,
    /// When the (last) resumed part started, UTC.
    pub resumed_at: DateTime<Utc>,
}

/// The verdict for the suite.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// No check of a mandatory requirement failed, and nothing was left undecided.
    Conformant,
    /// A check of a mandatory requirement failed (or a SHOULD check under `--strict`).
    NonConformant,
    /// Nothing failed, but a check errored or timed out, or the run was interrupted.
    Incomplete,
}

impl Verdict {
    /// The kebab-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Conformant => "conformant",
            Verdict::NonConformant => "non-conformant",
            Verdict::Incomplete => "incomplete",
        }
    }

    /// The process exit code for this verdict.
    pub fn exit_code(self) -> i32 {
        match self {
            Verdict::Conformant => crate::exit_code::CONFORMANT,
            Verdict::NonConformant => crate::exit_code::NON_CONFORMANT,
            Verdict::Incomplete => crate::exit_code::INCOMPLETE,
        }
    }
}

/// Counts.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Totals {
    /// Checks in the run.
    pub checks: usize,
    /// Passed.
    pub passed: usize,
    /// Failed, waived failures excepted.
    pub failed: usize,
    /// Errored.
    pub errors: usize,
    /// Timed out.
    pub timed_out: usize,
    /// Skipped.
    pub skipped: usize,
    /// Failures that do not decide the verdict (SHOULD without `--strict`, MAY, info).
    pub warnings: usize,
    /// Failures a waiver excused: counted apart, neither in `failed` nor in `passed`.
    #[serde(default)]
    pub waived: usize,
    /// Mandatory requirements of the suite that apply to the profile.
    pub mandatory_requirements: usize,
    /// Of those, how many have checks that all passed.
    pub mandatory_verified: usize,
    /// Of those, how many have a failed check.
    pub mandatory_failed: usize,
    /// Of those, how many have only non-deciding failures (warnings).
    pub mandatory_warnings: usize,
    /// Of those, how many have failures that waivers excused, and no other failure.
    #[serde(default)]
    pub mandatory_waived: usize,
    /// Of those, how many no check of this build covers.
    pub mandatory_untested: usize,
    /// Of those, how many no software test can verify (the reference model says why).
    #[serde(default)]
    pub mandatory_not_testable: usize,
}

/// The results of a run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RunResults {
    /// The results format version ([`SCHEMA_VERSION`]).
    pub schema_version: u32,
    /// The tool.
    pub tool: ToolInfo,
    /// Unique run ID: UTC start time and a random suffix.
    pub run_id: String,
    /// The suite.
    pub suite: SuiteInfo,
    /// The target.
    pub target: TargetInfo,
    /// Whether SHOULD failures decided the verdict.
    pub strict: bool,
    /// Start, UTC.
    pub started_at: DateTime<Utc>,
    /// End, UTC.
    pub finished_at: DateTime<Utc>,
    /// Wall-clock seconds.
    pub duration_secs: f64,
    /// False when the run stopped early; the results are then partial.
    pub complete: bool,
    /// Why the run stopped early.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancel_reason: Option<CancelReason>,
    /// The harness error that stopped the run, when one did (`cancel_reason` is `panic`):
    /// where nfvi-verify panicked and with what message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub harness_error: Option<String>,
    /// Set when the run was killed and then finished by `run --resume`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resumed_from: Option<Resumed>,
    /// The verdict.
    pub verdict: Verdict,
    /// Counts.
    pub totals: Totals,
    /// How the run was asked to run, as far as a certification cares.
    #[serde(default)]
    pub conditions: RunConditions,
    /// The waivers file and what each waiver did, when one was given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waivers: Option<WaiverReport>,
    /// Whether the run can stand as a certification record, and if not, why.
    #[serde(default)]
    pub certification: Certification,
    /// What the NFVI is made of.
    pub inventory: Inventory,
    /// The nodes verified, for a run over a fleet (an inventory or a DaemonSet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fleet: Option<FleetReport>,
    /// How to reproduce the run.
    pub invocation: Invocation,
    /// CPU and memory the run used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_usage: Option<ResourceUsage>,
    /// Requirement traceability: requirement → checks → status.
    pub requirements: Vec<RequirementResult>,
    /// Every planned check, in plan order.
    pub checks: Vec<CheckResult>,
}

/// A finished check as the runner reports it.
#[derive(Clone, Debug)]
pub struct CheckRun {
    /// Index in the plan.
    pub index: usize,
    /// The node of the fleet it ran on, if it ran on one.
    pub node: Option<String>,
    /// The outcome (evidence includes the commands run).
    pub outcome: crate::outcome::Outcome,
    /// Start time; `None` if it never ran.
    pub started_at: Option<DateTime<Utc>>,
    /// Run time.
    pub duration: Duration,
    /// Cleanup actions that ran.
    pub cleanup: Vec<CleanupRecord>,
}

/// What the run knows besides the plan and the check runs.
#[derive(Clone, Debug)]
pub struct RunMeta {
    /// Tool info.
    pub tool: ToolInfo,
    /// Run ID.
    pub run_id: String,
    /// Target file, if any.
    pub target_file: Option<String>,
    /// Start.
    pub started_at: DateTime<Utc>,
    /// End.
    pub finished_at: DateTime<Utc>,
    /// Why the run stopped early.
    pub cancel_reason: Option<CancelReason>,
    /// Inventory.
    pub inventory: Inventory,
    /// The fleet, when the run verified one.
    pub fleet: Option<FleetReport>,
    /// Invocation.
    pub invocation: Invocation,
    /// Resource usage, when measured.
    pub resource_usage: Option<ResourceUsage>,
    /// How the run was asked to run.
    pub conditions: RunConditions,
    /// The waivers given (`--waivers`): the file as given and its waivers.
    pub waivers: Option<(String, Vec<Waiver>)>,
}

impl RunResults {
    /// IDs of checks that did not pass or were never started, for `--rerun-failed`.
    pub fn rerun_candidates(&self) -> impl Iterator<Item = &str> {
        self.checks
            .iter()
            .filter(|c| {
                matches!(c.outcome, Status::Failed | Status::Error | Status::TimedOut)
                    || matches!(
                        c.skip_kind,
                        Some(SkipKind::Interrupted | SkipKind::FailFast)
                    )
            })
            .map(|c| c.id.as_str())
    }
}
