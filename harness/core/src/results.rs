//! `results.json`: the source of truth every report is rendered from. The schema is
//! versioned ([`SCHEMA_VERSION`]), generated from these types (`cargo xtask schemas`) and
//! checked in under `schemas/results.schema.json`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use nfvi_reference_model::{Area, Document, Level, Profile, RequirementId};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::cancel::CancelReason;
use crate::check::Severity;
use crate::fleet::FleetReport;
use crate::inventory::Inventory;
pub use crate::judge::verdict;
use crate::judge::{Certification, RunConditions, totals, trace_status, verdict_with_totals};
use crate::outcome::{Evidence, SkipKind, Status};
use crate::plan::Plan;
use crate::target::NodeProfile;
use crate::waiver::{AppliedWaiver, Waiver, WaiverReport};

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

/// One requirement in the traceability matrix.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RequirementRow {
    /// The ID.
    pub id: RequirementId,
    /// The document.
    pub document: Document,
    /// must, should, may.
    pub level: Level,
    /// The profile it applies to.
    pub profile: Profile,
    /// Summary.
    pub summary: String,
    /// Source chapter.
    pub source: String,
    /// A note on the ID, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Mandatory in the suite (else optional or only traced).
    pub mandatory: bool,
    /// Applies to the target's profile.
    pub applies: bool,
    /// IDs of the checks that cover it.
    pub checks: Vec<String>,
    /// Of those, the checks whose evidence comes from an upstream suite, as
    /// `check (tool: tests)`; the others observe by themselves.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub upstream: Vec<String>,
    /// Why no software test can verify it, when the reference model says so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub untestable: Option<String>,
}

impl RequirementRow {
    /// A row for a catalogue requirement.
    pub fn new(
        r: &nfvi_reference_model::Requirement,
        mandatory: bool,
        applies: bool,
        checks: Vec<String>,
    ) -> Self {
        Self {
            id: r.id.clone(),
            document: r.document,
            level: r.level,
            profile: r.profile,
            summary: r.summary.clone(),
            source: r.source.clone(),
            note: r.note.clone(),
            mandatory,
            applies,
            checks,
            upstream: Vec::new(),
            untestable: r.untestable.clone(),
        }
    }

    /// How it is covered: `own` (the harness observes), `upstream` (an upstream suite's
    /// tests), `own+upstream`, `not-testable` (with a reason) or `none`.
    pub fn coverage(&self) -> &'static str {
        let upstream = !self.upstream.is_empty();
        let own = self.checks.len() > self.upstream.len();
        match (own, upstream) {
            (true, true) => "own+upstream",
            (true, false) => "own",
            (false, true) => "upstream",
            (false, false) if self.untestable.is_some() => "not-testable",
            (false, false) => "none",
        }
    }
}

/// How a requirement fared, from its checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum TraceStatus {
    /// Every covering check passed.
    Passed,
    /// A covering check failed.
    Failed,
    /// A covering check errored or timed out, and none failed.
    Error,
    /// A covering check failed without deciding the verdict (SHOULD without `--strict`,
    /// MAY), and none failed outright or errored.
    Warning,
    /// Some covering checks passed and others were skipped.
    Partial,
    /// Every covering check was skipped.
    Skipped,
    /// A covering check failed and a waiver excused it; nothing else failed or errored.
    Waived,
    /// No check of this build covers it.
    Untested,
    /// No software test can verify it; the reference model says why.
    NotTestable,
}

impl TraceStatus {
    /// The kebab-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            TraceStatus::Passed => "passed",
            TraceStatus::Failed => "failed",
            TraceStatus::Error => "error",
            TraceStatus::Warning => "warning",
            TraceStatus::Partial => "partial",
            TraceStatus::Skipped => "skipped",
            TraceStatus::Waived => "waived",
            TraceStatus::Untested => "untested",
            TraceStatus::NotTestable => "not-testable",
        }
    }
}

/// A requirement row with its status.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RequirementResult {
    /// The row.
    #[serde(flatten)]
    pub row: RequirementRow,
    /// The status.
    pub status: TraceStatus,
}

/// One cleanup action and how it went.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CleanupRecord {
    /// What it undid.
    pub action: String,
    /// `None` on success, else the error.
    pub error: Option<String>,
}

/// One check's result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CheckResult {
    /// Stable ID.
    pub id: String,
    /// What is verified.
    pub title: String,
    /// The area.
    pub area: Area,
    /// What the check was about (a plugin, a container), if not the node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// The node of the fleet it ran on; `None` for checks of the whole NFVI and for runs
    /// without a fleet (the machine nfvi-verify runs on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// Requirement IDs covered.
    pub requirements: Vec<RequirementId>,
    /// The check's declared severity.
    pub severity: Severity,
    /// The weight of a failure in this suite and profile.
    pub effective_severity: Severity,
    /// What happened.
    pub outcome: Status,
    /// For skips: why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skip_kind: Option<SkipKind>,
    /// What was observed, or why it was skipped or could not be decided.
    pub message: String,
    /// When it started; `None` if it never ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<DateTime<Utc>>,
    /// How long it ran, in seconds.
    pub duration_secs: f64,
    /// What it needed from the machine.
    pub needs: Vec<String>,
    /// Its side effects on the NFVI.
    pub side_effects: String,
    /// How those are undone.
    pub cleanup_policy: String,
    /// The cleanup actions that ran, with errors.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cleanup: Vec<CleanupRecord>,
    /// What it observed.
    #[serde(default, skip_serializing_if = "Evidence::is_empty")]
    pub evidence: Evidence,
    /// The waiver that excused this failure, if one did: the outcome stays `failed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiver: Option<AppliedWaiver>,
}

impl CheckResult {
    /// The result of one run of a planned check.
    pub fn of(plan: &Plan, run: CheckRun) -> Self {
        let item = &plan.items[run.index];
        let m = item.check.meta();
        CheckResult {
            id: m.id.clone(),
            title: m.title.clone(),
            area: m.area,
            subject: m.subject.clone(),
            node: run.node,
            requirements: item.covers.clone(),
            severity: m.severity,
            effective_severity: item.effective,
            outcome: run.outcome.status,
            skip_kind: run.outcome.skip_kind(),
            message: run.outcome.message,
            started_at: run.started_at,
            duration_secs: run.duration.as_secs_f64(),
            needs: m.needs.iter().map(ToString::to_string).collect(),
            side_effects: m.side_effects.clone(),
            cleanup_policy: m.cleanup.clone(),
            cleanup: run.cleanup,
            evidence: *run.outcome.evidence,
            waiver: None,
        }
    }

    /// A failure that does not decide the verdict by its severity (a waived one is not a
    /// warning: it is waived).
    pub fn is_warning(&self, strict: bool) -> bool {
        self.outcome == Status::Failed
            && self.waiver.is_none()
            && match self.effective_severity {
                Severity::Must => false,
                Severity::Should => !strict,
                Severity::May | Severity::Info => true,
            }
    }

    /// A failure that makes the run non-conformant: not a warning, not waived.
    pub fn decides_non_conformance(&self, strict: bool) -> bool {
        self.outcome == Status::Failed && self.waiver.is_none() && !self.is_warning(strict)
    }
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
    /// Puts the plan and the runs together, computing statuses, totals and the verdict.
    /// Checks without a run (never started) must not occur: the runner reports every planned
    /// check exactly once, and the fleet every node-level check once per node. Node-level
    /// results follow the plan order, then the fleet's node order.
    pub fn assemble(plan: &Plan, mut runs: Vec<CheckRun>, meta: RunMeta) -> Self {
        let node_order = |node: &Option<String>| {
            meta.fleet.as_ref().and_then(|f| {
                node.as_ref()
                    .and_then(|n| f.nodes.iter().position(|r| r.node.name == *n))
            })
        };
        runs.sort_by_key(|r| (r.index, node_order(&r.node)));
        let checks: Vec<CheckResult> = runs
            .into_iter()
            .map(|run| CheckResult::of(plan, run))
            .collect();
        Self::from_parts(plan, checks, meta)
    }

    /// The results of a run that was killed and then resumed: `carried` are the results
    /// its journal kept (verbatim), `runs` those of the resumed part; together in plan
    /// order (then the fleet's node order), judged as one run.
    pub fn resumed(
        plan: &Plan,
        carried: Vec<CheckResult>,
        runs: Vec<CheckRun>,
        meta: RunMeta,
        resumed_at: DateTime<Utc>,
    ) -> Self {
        let carried_over = carried.len();
        let position = |id: &str| {
            plan.items
                .iter()
                .position(|i| i.check.meta().id == id)
                .unwrap_or(usize::MAX)
        };
        let node_order = |node: &Option<String>| {
            meta.fleet.as_ref().and_then(|f| {
                node.as_ref()
                    .and_then(|n| f.nodes.iter().position(|r| r.node.name == *n))
            })
        };
        let mut checks: Vec<CheckResult> = carried
            .into_iter()
            .chain(runs.into_iter().map(|run| CheckResult::of(plan, run)))
            .collect();
        checks.sort_by_cached_key(|c| (position(&c.id), node_order(&c.node)));
        let mut r = Self::from_parts(plan, checks, meta);
        r.resumed_from = Some(Resumed {
            carried_over,
            resumed_at,
        });
        r
    }

    /// The run before any check finished: what a journal starts with, so that a run killed
    /// before it could write results.json can still be reported ([`RunResults::recover`]).
    pub fn header(plan: &Plan, meta: RunMeta) -> Self {
        Self::from_parts(plan, Vec::new(), meta)
    }

    /// The results of a run that ended without writing them (killed, crashed): its
    /// [`RunResults::header`] and the checks that finished, judged by the same rules and
    /// marked incomplete. `finished_at` is when the last check finished.
    pub fn recover(header: Self, checks: Vec<CheckResult>) -> Self {
        Self::recover_stopped(header, checks, CancelReason::Killed, None)
    }

    /// [`RunResults::recover`] for a run that stopped for `reason`, and for a harness error
    /// (a panic) when one stopped it.
    pub fn recover_stopped(
        header: Self,
        checks: Vec<CheckResult>,
        reason: CancelReason,
        harness_error: Option<String>,
    ) -> Self {
        let mut r = header;
        r.checks = checks;
        r.finished_at = r
            .checks
            .iter()
            .filter_map(|c| {
                let start = c.started_at?;
                Some(start + chrono::Duration::milliseconds((c.duration_secs * 1000.0) as i64))
            })
            .max()
            .unwrap_or(r.started_at)
            .max(r.started_at);
        r.duration_secs = (r.finished_at - r.started_at)
            .to_std()
            .unwrap_or_default()
            .as_secs_f64();
        r.complete = false;
        r.cancel_reason = Some(reason);
        r.harness_error = harness_error;
        // The header recorded the waivers as given; they apply to the journal's results
        // as they would have to the whole run's.
        let waivers = r.waivers.take().map(|w| {
            let list: Vec<Waiver> = w.waivers.into_iter().map(|u| u.waiver).collect();
            (w.file, list)
        });
        r.judge(waivers);
        r
    }

    /// Applies the waivers, then computes statuses, totals, the verdict and the
    /// certification from the checks (the rules are in [`crate::judge`]).
    fn judge(&mut self, waivers: Option<(String, Vec<Waiver>)>) {
        self.waivers = waivers.map(|(file, list)| {
            crate::waiver::apply(
                &file,
                &list,
                &mut self.checks,
                &self.suite.unwaivable,
                self.started_at.date_naive(),
            )
        });
        for req in &mut self.requirements {
            req.status = trace_status(&req.row, &self.checks, self.strict);
        }
        self.totals = totals(&self.checks, &self.requirements, self.strict);
        self.verdict = verdict_with_totals(&self.checks, &self.totals, self.strict, self.complete);
        self.certification = crate::judge::certification(self);
    }

    fn from_parts(plan: &Plan, checks: Vec<CheckResult>, meta: RunMeta) -> Self {
        let requirements: Vec<RequirementResult> = plan
            .requirements
            .iter()
            .map(|row| RequirementResult {
                status: TraceStatus::Untested,
                row: row.clone(),
            })
            .collect();
        let complete = meta.cancel_reason.is_none();
        let mut r = Self {
            schema_version: SCHEMA_VERSION,
            tool: meta.tool,
            run_id: meta.run_id,
            suite: plan.suite.clone(),
            target: TargetInfo {
                name: plan.target.clone(),
                file: meta.target_file,
                profile: plan.profile,
            },
            strict: plan.strict,
            started_at: meta.started_at,
            finished_at: meta.finished_at,
            duration_secs: (meta.finished_at - meta.started_at)
                .to_std()
                .unwrap_or_default()
                .as_secs_f64(),
            complete,
            cancel_reason: meta.cancel_reason,
            harness_error: None,
            resumed_from: None,
            verdict: Verdict::Incomplete,
            totals: Totals::default(),
            conditions: meta.conditions,
            waivers: None,
            certification: Certification::default(),
            inventory: meta.inventory,
            fleet: meta.fleet,
            invocation: meta.invocation,
            resource_usage: meta.resource_usage,
            requirements,
            checks,
        };
        r.judge(meta.waivers);
        r
    }

    /// Reads a results file, with a message naming the file, line and what was expected.
    pub fn load(path: &Path) -> Result<Self, ResultsError> {
        let text = std::fs::read_to_string(path).map_err(|source| ResultsError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(path, &text)
    }

    /// Parses results from `text` (migrating older versions); `path` names it in messages.
    pub fn parse(path: &Path, text: &str) -> Result<Self, ResultsError> {
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| ResultsError::Invalid {
                path: path.to_owned(),
                line: e.line(),
                message: format!("not JSON: {e}"),
            })?;
        let mut value = value;
        let mut migrated = false;
        match value
            .get("schema_version")
            .and_then(serde_json::Value::as_u64)
        {
            Some(v) if v == u64::from(SCHEMA_VERSION) => {}
            // Versions 3 to 5 only added optional fields (`node`, `fleet`; `resumed_from`;
            // waivers, conditions, certification, provenance).
            Some(2..=4) => {
                value["schema_version"] = SCHEMA_VERSION.into();
                migrated = true;
            }
            Some(1) => {
                migrate_v1(&mut value);
                migrated = true;
            }
            Some(v) => {
                return Err(ResultsError::Invalid {
                    path: path.to_owned(),
                    line: 1,
                    message: format!(
                        "results schema version {v}, this nfvi-verify reads versions 1 to {SCHEMA_VERSION}"
                    ),
                });
            }
            None => {
                return Err(ResultsError::Invalid {
                    path: path.to_owned(),
                    line: 1,
                    message: "not an nfvi-verify results.json (no schema_version)".to_owned(),
                });
            }
        }
        let schema_error = |line: usize, e: serde_json::Error| ResultsError::Invalid {
            path: path.to_owned(),
            line,
            message: format!("does not match the results schema: {e}"),
        };
        if migrated {
            // A migrated value has no lines left (serde names the field), and its
            // properties come back in name order.
            serde_json::from_value(value).map_err(|e| schema_error(1, e))
        } else {
            serde_json::from_str(text).map_err(|e| schema_error(e.line(), e))
        }
    }

    /// The JSON text, pretty-printed with a trailing newline.
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).expect("results serialise");
        s.push('\n');
        s
    }

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

/// A results file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ResultsError {
    /// Unreadable.
    #[error("cannot read results file `{}`", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Not a results file of this version.
    #[error("{}:{line}: {message}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// What is wrong and what was expected.
        message: String,
    },
}

/// Version 1 kept distributions as samples named `cdf:<name>` and the Kolla stage as the
/// property `kolla stage`; version 2 has fields for both.
fn migrate_v1(value: &mut serde_json::Value) {
    value["schema_version"] = SCHEMA_VERSION.into();
    let Some(checks) = value.get_mut("checks").and_then(|c| c.as_array_mut()) else {
        return;
    };
    for check in checks {
        let Some(evidence) = check.get_mut("evidence").and_then(|e| e.as_object_mut()) else {
            continue;
        };
        let mut distributions = serde_json::Map::new();
        if let Some(samples) = evidence.get_mut("samples").and_then(|s| s.as_object_mut()) {
            let names: Vec<String> = samples
                .keys()
                .filter(|k| k.starts_with("cdf:"))
                .cloned()
                .collect();
            for name in names {
                let Some(values) = samples.remove(&name) else {
                    continue;
                };
                // Every element a number, or it is not a distribution.
                let numbers: Option<Vec<f64>> = values.as_array().and_then(|v| {
                    v.iter()
                        .map(serde_json::Value::as_f64)
                        .collect::<Option<Vec<f64>>>()
                });
                // Only what version 2 would accept moves; anything else stays a sample.
                if numbers.is_some_and(|n| crate::outcome::Percentiles::new(n).is_ok()) {
                    distributions.insert(name["cdf:".len()..].to_owned(), values);
                } else {
                    samples.insert(name, values);
                }
            }
        }
        if !distributions.is_empty() {
            evidence.insert("distributions".into(), distributions.into());
        }
        let stage = evidence
            .get_mut("properties")
            .and_then(|p| p.as_object_mut())
            .and_then(|p| p.remove("kolla stage"));
        if let Some(stage) = stage {
            evidence.insert("stage".into(), stage);
        }
    }
}

/// Writes a file so that it is either absent or complete: the bytes go to a temporary file
/// in the same directory, which is synced and renamed over the destination.
///
/// The temporary file has a random name and is created exclusively (never through a file or
/// link someone placed there), and the rename replaces a symbolic link at the destination
/// instead of writing through it. Its mode is 0666 less the umask, as for any file the user
/// writes.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // 0666 through open(2), so the user's umask applies as it does to any file they write.
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}.tmp-"))
        .permissions(std::fs::Permissions::from_mode(0o666))
        .tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    // On error the temporary file is removed when it is dropped.
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(outcome: Status, effective: Severity) -> CheckResult {
        CheckResult {
            id: "host.x".into(),
            title: String::new(),
            area: Area::Host,
            subject: None,
            node: None,
            requirements: vec![],
            severity: effective,
            effective_severity: effective,
            outcome,
            skip_kind: None,
            message: String::new(),
            started_at: None,
            duration_secs: 0.0,
            needs: vec![],
            side_effects: String::new(),
            cleanup_policy: String::new(),
            cleanup: vec![],
            evidence: Evidence::default(),
            waiver: None,
        }
    }

    #[test]
    fn the_verdict_follows_the_documented_rule() {
        use Severity::*;
        use Status::*;
        let v = |cs: &[(Status, Severity)], strict, complete| {
            let cs: Vec<_> = cs.iter().map(|(o, s)| check(*o, *s)).collect();
            verdict(&cs, strict, complete)
        };
        assert_eq!(
            v(&[(Passed, Must), (Skipped, Must)], false, true),
            Verdict::Conformant
        );
        assert_eq!(v(&[(Failed, Must)], false, true), Verdict::NonConformant);
        assert_eq!(v(&[(Failed, Should)], false, true), Verdict::Conformant);
        assert_eq!(v(&[(Failed, Should)], true, true), Verdict::NonConformant);
        assert_eq!(v(&[(Failed, Info)], true, true), Verdict::Conformant);
        assert_eq!(v(&[(Error, Info)], false, true), Verdict::Incomplete);
        assert_eq!(v(&[(TimedOut, Must)], false, true), Verdict::Incomplete);
        assert_eq!(v(&[(Passed, Must)], false, false), Verdict::Incomplete);
        assert_eq!(
            v(&[(Failed, Must), (Error, Must)], false, false),
            Verdict::NonConformant
        );
    }

    #[test]
    fn atomic_writes_leave_no_temporary_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("results.json");
        write_atomic(&path, b"{}").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"{}");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        let err = write_atomic(&dir.path().join("missing/x.json"), b"{}");
        assert!(err.is_err());
    }

    #[test]
    fn atomic_writes_never_write_through_a_planted_link() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, b"precious").unwrap();
        // A link at the destination and at the temporary name the old code used.
        let path = dir.path().join("results.json");
        std::os::unix::fs::symlink(&victim, &path).unwrap();
        let old_tmp = dir
            .path()
            .join(format!(".results.json.tmp-{}", std::process::id()));
        std::os::unix::fs::symlink(&victim, &old_tmp).unwrap();
        write_atomic(&path, b"{}").unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        assert!(!path.symlink_metadata().unwrap().file_type().is_symlink());
        assert_eq!(std::fs::read(&path).unwrap(), b"{}");
        use std::os::unix::fs::PermissionsExt;
        let mode = path.metadata().unwrap().permissions().mode() & 0o777;
        // 0666 less the umask: readable and writable by its owner, executable by nobody.
        assert_eq!(mode & 0o711, 0o600, "{mode:o}");
    }
}
