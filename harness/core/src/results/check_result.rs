//! One check's result in `results.json` (what it covered, how it ended, its evidence,
//! cleanup and waiver), built from the plan and the runner's report, with the severity rules
//! that make a failure a warning or decide non-conformance; and the table test of the
//! verdict over such results.

use chrono::{DateTime, Utc};
use nfvi_reference_model::{Area, RequirementId};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::CheckRun;
use crate::check::Severity;
use crate::outcome::{Evidence, SkipKind, Status};
use crate::plan::Plan;
use crate::waiver::AppliedWaiver;

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

#[cfg(test)]
mod tests {
    use super::*;

    use crate::results::{Verdict, verdict};

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
}
