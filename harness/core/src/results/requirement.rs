//! The requirement rows of the traceability matrix: a catalogue requirement as a run sees
//! it (mandatory, applicable, covering checks, upstream coverage), and its status from its
//! checks.

use nfvi_reference_model::{Document, Level, Profile, RequirementId};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

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
