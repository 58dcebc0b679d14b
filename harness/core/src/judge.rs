//! The rules that turn check results into requirement statuses, totals, a verdict and a
//! certification: one place, used when a run assembles its results and again by
//! `nfvi-verify verify`, which re-judges a bundle's raw results with the bundle's own suite
//! and waivers ([`rejudge`]).

use nfvi_reference_model::{ReferenceModel, RequirementId, Suite};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::outcome::Status;
use crate::results::{
    CheckResult, RequirementResult, RequirementRow, RunResults, Totals, TraceStatus, Verdict,
};
use crate::waiver::{self, Waiver, WaiverReport};

/// How the run was asked to run, as far as a certification cares: anything here that is
/// not the default makes the run valid but not certifiable ([`certification`]).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RunConditions {
    /// `--filter` globs: only some checks were selected.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub filters: Vec<String>,
    /// `--skip` globs: checks left out by hand.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skips: Vec<String>,
    /// `--rerun-failed`: the run repeated only the failures of this earlier run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rerun_of: Option<String>,
    /// `--timeout`: one deadline, in seconds, overrode every check's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_override: Option<u64>,
    /// `upstream = "none"` or `"smoke"`: the upstream suites (Tempest, Kubernetes e2e,
    /// kube-bench) were not driven, or only their short selection. Absent: the full sets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream: Option<crate::target::UpstreamLevel>,
}

/// Whether a run can stand as a certification record, and if not, why.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Certification {
    /// True when nothing below applies. A certifiable run may still be non-conformant.
    pub certifiable: bool,
    /// Why it is not certifiable, one sentence each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reasons: Vec<String>,
}

/// How a requirement fared, from the checks that cover it.
pub fn trace_status(row: &RequirementRow, checks: &[CheckResult], strict: bool) -> TraceStatus {
    let covering: Vec<&CheckResult> = checks
        .iter()
        .filter(|c| c.requirements.contains(&row.id))
        .collect();
    let outcomes: Vec<Status> = covering.iter().map(|c| c.outcome).collect();
    if outcomes.is_empty() && row.untestable.is_some() {
        TraceStatus::NotTestable
    } else if outcomes.is_empty() {
        TraceStatus::Untested
    } else if covering.iter().any(|c| c.decides_non_conformance(strict)) {
        TraceStatus::Failed
    } else if outcomes
        .iter()
        .any(|o| matches!(o, Status::Error | Status::TimedOut))
    {
        TraceStatus::Error
    } else if covering.iter().any(|c| c.is_warning(strict)) {
        TraceStatus::Warning
    } else if covering.iter().any(|c| c.waiver.is_some()) {
        TraceStatus::Waived
    } else if outcomes.iter().all(|o| *o == Status::Passed) {
        TraceStatus::Passed
    } else if outcomes.iter().all(|o| *o == Status::Skipped) {
        TraceStatus::Skipped
    } else {
        TraceStatus::Partial
    }
}

/// The counts.
pub fn totals(checks: &[CheckResult], requirements: &[RequirementResult], strict: bool) -> Totals {
    let count = |s: Status| checks.iter().filter(|c| c.outcome == s).count();
    let mandatory: Vec<&RequirementResult> = requirements
        .iter()
        .filter(|r| r.row.mandatory && r.row.applies)
        .collect();
    let mcount = |s: TraceStatus| mandatory.iter().filter(|r| r.status == s).count();
    Totals {
        checks: checks.len(),
        passed: count(Status::Passed),
        // Apart: a waived failure is counted as waived, not as failed (nor as passed).
        failed: checks
            .iter()
            .filter(|c| c.outcome == Status::Failed && c.waiver.is_none())
            .count(),
        errors: count(Status::Error),
        timed_out: count(Status::TimedOut),
        skipped: count(Status::Skipped),
        warnings: checks.iter().filter(|c| c.is_warning(strict)).count(),
        waived: checks.iter().filter(|c| c.waiver.is_some()).count(),
        mandatory_requirements: mandatory.len(),
        mandatory_verified: mcount(TraceStatus::Passed),
        mandatory_failed: mcount(TraceStatus::Failed),
        mandatory_warnings: mcount(TraceStatus::Warning),
        mandatory_waived: mcount(TraceStatus::Waived),
        mandatory_untested: mcount(TraceStatus::Untested),
        mandatory_not_testable: mcount(TraceStatus::NotTestable),
    }
}

/// The verdict rule: a deciding failure makes the run non-conformant, even when other checks
/// could not decide; otherwise any error, timeout or interruption makes it incomplete. A
/// waived failure decides nothing.
pub fn verdict(checks: &[CheckResult], strict: bool, complete: bool) -> Verdict {
    if checks.iter().any(|c| c.decides_non_conformance(strict)) {
        Verdict::NonConformant
    } else if !complete
        || checks
            .iter()
            .any(|c| matches!(c.outcome, Status::Error | Status::TimedOut))
    {
        Verdict::Incomplete
    } else {
        Verdict::Conformant
    }
}

/// [`verdict`], then: conformance by omission is not conformance. A suite with applicable
/// mandatory requirements of which the run verified none (passed or waived) has not shown
/// anything.
pub fn verdict_with_totals(
    checks: &[CheckResult],
    totals: &Totals,
    strict: bool,
    complete: bool,
) -> Verdict {
    let v = verdict(checks, strict, complete);
    if v == Verdict::Conformant
        && totals.mandatory_requirements > 0
        && totals.mandatory_verified + totals.mandatory_waived == 0
    {
        Verdict::Incomplete
    } else {
        v
    }
}

/// The words of the reason a run with unobserved mandatory requirements gives (a rule
/// added after the first bundles were signed: `verify` recomputes it rather than holding an
/// older bundle's record against it).
pub const UNOBSERVED: &str = "mandatory requirement(s) were not observed";

/// Whether the run can stand as a certification record: the whole suite, run as the suite
/// says, with waivers the suite allows, evidence whose origin was checked, and every
/// mandatory requirement observed.
pub fn certification(r: &RunResults) -> Certification {
    let mut reasons = Vec::new();
    let c = &r.conditions;
    if !c.filters.is_empty() {
        reasons.push(format!(
            "only some checks were selected (--filter {}); a certification runs the whole suite",
            c.filters.join(", --filter ")
        ));
    }
    if !c.skips.is_empty() {
        reasons.push(format!(
            "checks were left out by hand (--skip {})",
            c.skips.join(", --skip ")
        ));
    }
    if let Some(run) = &c.rerun_of {
        reasons.push(format!(
            "the run repeated only the failures of run {run} (--rerun-failed); run the whole suite again"
        ));
    }
    if let Some(t) = c.timeout_override {
        reasons.push(format!("--timeout {t} replaced every check's own deadline"));
    }
    if let Some(level) = c.upstream {
        reasons.push(format!(
            "the upstream suites ran at level `{}` (--upstream); a certification runs their full sets",
            level.as_str()
        ));
    }
    if !r.complete {
        reasons.push(format!(
            "the run was stopped early ({}{})",
            r.cancel_reason.map_or("interrupted", |c| c.as_str()),
            r.harness_error
                .as_ref()
                .map(|e| format!(": {e}"))
                .unwrap_or_default()
        ));
    }
    if let Some(w) = &r.waivers {
        for u in w.forbidden() {
            reasons.push(format!(
                "waiver `{}` names {} which the suite does not allow to be waived",
                u.waiver.id,
                u.forbidden_for.join(", ")
            ));
        }
    }
    // Skipped is not verified: a certification record does not stand on requirements that
    // nothing observed (no cluster given, a service the cloud lacks).
    let unobserved: Vec<String> = r
        .requirements
        .iter()
        .filter(|q| q.row.mandatory && q.row.applies && q.status == TraceStatus::Skipped)
        .map(|q| q.row.id.to_string())
        .collect();
    if !unobserved.is_empty() {
        let shown = unobserved.len().min(8);
        let more = match unobserved.len() - shown {
            0 => String::new(),
            n => format!(" and {n} more"),
        };
        reasons.push(format!(
            "{} {UNOBSERVED}: every check covering them was skipped ({}{more}); a certification record needs each one verified, waived or not testable by software",
            unobserved.len(),
            unobserved[..shown].join(", ")
        ));
    }
    let mut unverified: Vec<&str> = r
        .checks
        .iter()
        .flat_map(|c| c.evidence.provenance.iter())
        .filter(|p| !p.identity_verified)
        .map(|p| p.file.as_str())
        .collect();
    unverified.sort_unstable();
    unverified.dedup();
    match unverified.as_slice() {
        [] => {}
        [file] => reasons.push(format!(
            "evidence {file} was not matched to the NFVI under test (give the kubeconfig of the cluster it is from)"
        )),
        // File names only: the provenance of each result has the full paths.
        files => reasons.push(format!(
            "evidence from {} files was not matched to the NFVI under test (give the kubeconfig of the cluster it is from): {}",
            files.len(),
            files
                .iter()
                .map(|f| f.rsplit('/').next().unwrap_or(f))
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
    Certification {
        certifiable: reasons.is_empty(),
        reasons,
    }
}

/// What [`rejudge`] computes.
#[derive(Clone, Debug, PartialEq)]
pub struct Rejudged {
    /// The verdict.
    pub verdict: Verdict,
    /// The counts.
    pub totals: Totals,
    /// Each requirement's status, in the order of the results.
    pub statuses: Vec<(RequirementId, TraceStatus)>,
    /// What the waivers did.
    pub waivers: Option<WaiverReport>,
    /// The certification.
    pub certification: Certification,
    /// Results whose recorded effective severity is not what the model gives them (judged
    /// with the model's): a results file that was edited, or judged by other rules.
    pub problems: Vec<String>,
}

/// Judges a run's raw results again: which requirements are mandatory and each result's
/// effective severity come from `model` and `suite` (a bundle's own copy), the waivers
/// recorded on the results are dropped and `waivers` (the file as used) applied afresh, on
/// the day the run started. `nfvi-verify verify` compares this with what the results record.
pub fn rejudge(
    r: &RunResults,
    model: &ReferenceModel,
    suite: &Suite,
    waivers: Option<(&str, &[Waiver])>,
) -> Rejudged {
    let mut again = r.clone();
    let mut problems = Vec::new();
    for c in &mut again.checks {
        c.waiver = None;
        let effective = crate::plan::effective_severity(
            model,
            suite,
            r.target.profile,
            c.severity,
            &c.requirements,
        );
        if effective != c.effective_severity {
            problems.push(format!(
                "{}: recorded effective severity {}, the model gives {}",
                crate::waiver::result_name(c),
                c.effective_severity,
                effective
            ));
            c.effective_severity = effective;
        }
    }
    again.waivers = waivers.map(|(file, list)| {
        waiver::apply(
            file,
            list,
            &mut again.checks,
            &suite.unwaivable,
            r.started_at.date_naive(),
        )
    });
    for q in &mut again.requirements {
        q.row.mandatory = suite.mandatory.contains(&q.row.id);
        q.status = trace_status(&q.row, &again.checks, r.strict);
    }
    again.totals = totals(&again.checks, &again.requirements, r.strict);
    again.verdict = verdict_with_totals(&again.checks, &again.totals, r.strict, r.complete);
    Rejudged {
        verdict: again.verdict,
        statuses: again
            .requirements
            .iter()
            .map(|q| (q.row.id.clone(), q.status))
            .collect(),
        certification: certification(&again),
        totals: again.totals,
        waivers: again.waivers,
        problems,
    }
}
