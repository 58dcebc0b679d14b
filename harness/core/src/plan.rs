//! Plan, then run: the immutable list of what a run will do, built before anything touches
//! the NFVI. `nfvi-verify list` prints it; `nfvi-verify run` executes exactly it.

use std::collections::HashSet;
use std::sync::Arc;

use nfvi_reference_model::{Profile, ReferenceModel, RequirementId, Suite};
use serde::Serialize;

use crate::caps::Capabilities;
use crate::check::{Check, Need, Severity};
use crate::glob;
use crate::outcome::{SkipKind, SkipReason};
use crate::registry::Registry;
use crate::results::{RequirementRow, SuiteInfo};
use crate::target::{NodeProfile, Target};

/// What the user asked for.
#[derive(Clone, Debug, Default)]
pub struct PlanOptions {
    /// The suite name.
    pub suite: String,
    /// Keep only checks whose ID or a covered requirement ID matches one of these globs.
    pub filters: Vec<String>,
    /// Drop checks whose ID or a covered requirement ID matches one of these globs.
    pub skips: Vec<String>,
    /// Keep only these check IDs (from `--rerun-failed`).
    pub only: Option<HashSet<String>>,
    /// SHOULD failures make the run non-conformant.
    pub strict: bool,
}

/// Whether a planned check runs.
#[derive(Clone, Debug, PartialEq)]
pub enum Decision {
    /// It runs.
    Run,
    /// It is skipped, and why.
    Skip(SkipReason),
}

/// One check in the plan.
#[derive(Clone)]
pub struct PlannedCheck {
    /// The check.
    pub check: Arc<dyn Check>,
    /// The requirements it covers, resolved against the model.
    pub covers: Vec<RequirementId>,
    /// The weight of a failure in this suite and profile: the check's own severity, capped by
    /// the strongest covered requirement that is mandatory in the suite and applies to the
    /// profile; `may` when none is, `info` when the check covers no requirement.
    pub effective: Severity,
    /// Run or skip.
    pub decision: Decision,
}

/// Why a plan cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// `--suite` names no suite.
    #[error("unknown suite `{name}`; expected one of: {available}")]
    UnknownSuite {
        /// What was asked for.
        name: String,
        /// What exists.
        available: String,
    },
    /// A `--filter` or `--skip` pattern matches nothing in the suite, which is almost always
    /// a typo; running nothing and reporting success would hide it.
    #[error("{flag} `{pattern}` matches no check ID or requirement ID in suite `{suite}`")]
    PatternMatchesNothing {
        /// `--filter` or `--skip`.
        flag: &'static str,
        /// The pattern.
        pattern: String,
        /// The suite.
        suite: String,
    },
}

/// The immutable plan of a run.
#[derive(Clone)]
pub struct Plan {
    /// The suite.
    pub suite: SuiteInfo,
    /// The target's name.
    pub target: String,
    /// The node profile the verdict is judged for.
    pub profile: NodeProfile,
    /// Whether SHOULD failures decide the verdict.
    pub strict: bool,
    /// The checks, in registration order.
    pub items: Vec<PlannedCheck>,
    /// Requirement traceability: every requirement the suite lists or a planned check covers.
    pub requirements: Vec<RequirementRow>,
}

impl Plan {
    /// How many checks will run.
    pub fn runnable(&self) -> usize {
        self.items
            .iter()
            .filter(|i| i.decision == Decision::Run)
            .count()
    }
}

fn profile_applies(profile: Profile, node: NodeProfile) -> bool {
    match profile {
        Profile::Basic | Profile::Conditional => true,
        Profile::NetworkIntensive => node == NodeProfile::NetworkIntensive,
    }
}

fn matches_any(patterns: &[String], id: &str, covers: &[RequirementId]) -> bool {
    patterns
        .iter()
        .any(|p| glob::matches(p, id) || covers.iter().any(|r| glob::matches(p, r.as_str())))
}

/// Builds the plan.
pub fn build(
    model: &ReferenceModel,
    registry: &Registry,
    target: &Target,
    caps: &Capabilities,
    options: &PlanOptions,
) -> Result<Plan, PlanError> {
    let suite = model
        .suite(&options.suite)
        .ok_or_else(|| PlanError::UnknownSuite {
            name: options.suite.clone(),
            available: model
                .suites()
                .map(|s| s.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        })?;
    let resolve = |c: &Arc<dyn Check>| -> Vec<RequirementId> {
        // The registry validated every ID, so resolution cannot fail here.
        c.meta()
            .covers
            .iter()
            .filter_map(|id| model.resolve(id).ok())
            .map(|r| r.id.clone())
            .collect()
    };
    let in_suite: Vec<(&Arc<dyn Check>, Vec<RequirementId>)> = registry
        .checks()
        .iter()
        .filter(|c| suite.contains(c.meta().area, &c.meta().id))
        .map(|c| (c, resolve(c)))
        .collect();

    for (flag, patterns) in [("--filter", &options.filters), ("--skip", &options.skips)] {
        for p in patterns {
            if !in_suite
                .iter()
                .any(|(c, covers)| matches_any(std::slice::from_ref(p), &c.meta().id, covers))
            {
                return Err(PlanError::PatternMatchesNothing {
                    flag,
                    pattern: p.clone(),
                    suite: suite.name.clone(),
                });
            }
        }
    }

    let mut items = Vec::new();
    for (check, covers) in in_suite {
        let meta = check.meta();
        if !options.filters.is_empty() && !matches_any(&options.filters, &meta.id, &covers) {
            continue;
        }
        if matches_any(&options.skips, &meta.id, &covers) {
            continue;
        }
        if let Some(only) = &options.only
            && !only.contains(&meta.id)
        {
            continue;
        }
        let effective = effective_severity(model, suite, target.profile, meta.severity, &covers);
        let decision = decide(check.as_ref(), &meta.needs, caps, target);
        items.push(PlannedCheck {
            check: check.clone(),
            covers,
            effective,
            decision,
        });
    }

    let requirements = traceability(model, suite, target.profile, &items);
    Ok(Plan {
        suite: SuiteInfo {
            name: suite.name.clone(),
            title: suite.title.clone(),
            version: suite.version.clone(),
            description: suite.description.clone(),
            unwaivable: suite.unwaivable.clone(),
        },
        target: target.name.clone(),
        profile: target.profile,
        strict: options.strict,
        items,
        requirements,
    })
}

/// A check's weight in a suite and profile: its declared severity capped by the strongest
/// covered requirement that is mandatory in the suite and applies to the profile; `may` when
/// none is, `info` when it covers none. `verify` recomputes it from a bundle's own model.
pub fn effective_severity(
    model: &ReferenceModel,
    suite: &Suite,
    profile: NodeProfile,
    declared: Severity,
    covers: &[RequirementId],
) -> Severity {
    if covers.is_empty() {
        return Severity::Info;
    }
    let strongest = covers
        .iter()
        .filter(|id| suite.mandatory.contains(*id))
        .filter_map(|id| model.requirement(id.as_str()))
        .filter(|r| profile_applies(r.profile, profile))
        .map(|r| Severity::from(r.level))
        .max()
        .unwrap_or(Severity::May);
    declared.min(strongest)
}

fn decide(check: &dyn Check, needs: &[Need], caps: &Capabilities, target: &Target) -> Decision {
    let missing: Vec<String> = needs.iter().filter_map(|n| caps.missing(n)).collect();
    if !missing.is_empty() {
        return Decision::Skip(SkipReason {
            kind: SkipKind::MissingCapability,
            message: missing.join("; "),
        });
    }
    if let Some(up) = &check.meta().upstream
        && target.upstream == crate::target::UpstreamLevel::None
    {
        return Decision::Skip(SkipReason {
            kind: SkipKind::NotApplicable,
            message: format!(
                "runs {} tests, and this run drives no upstream suite (upstream = \"none\"; --upstream smoke or full runs them)",
                up.tool
            ),
        });
    }
    match check.applicable(target) {
        Ok(()) => Decision::Run,
        Err(message) => Decision::Skip(SkipReason {
            kind: SkipKind::NotApplicable,
            message,
        }),
    }
}

fn traceability(
    model: &ReferenceModel,
    suite: &Suite,
    profile: NodeProfile,
    items: &[PlannedCheck],
) -> Vec<RequirementRow> {
    let listed: HashSet<&RequirementId> = suite.mandatory.iter().chain(&suite.optional).collect();
    let covered: HashSet<&RequirementId> = items.iter().flat_map(|i| &i.covers).collect();
    model
        .requirements()
        .filter(|r| listed.contains(&r.id) || covered.contains(&r.id))
        .map(|r| {
            let covering: Vec<&PlannedCheck> =
                items.iter().filter(|i| i.covers.contains(&r.id)).collect();
            let checks = covering.iter().map(|i| i.check.meta().id.clone()).collect();
            let mut row = RequirementRow::new(
                r,
                suite.mandatory.contains(&r.id),
                profile_applies(r.profile, profile),
                checks,
            );
            row.upstream = covering
                .iter()
                .filter_map(|i| {
                    let m = i.check.meta();
                    m.upstream
                        .as_ref()
                        .map(|u| format!("{} ({}: {})", m.id, u.tool, u.tests))
                })
                .collect();
            row
        })
        .collect()
}

/// The plan as `list --format json` prints it.
#[derive(Debug, Serialize)]
pub struct PlanView<'a> {
    /// The suite.
    pub suite: &'a SuiteInfo,
    /// The target name.
    pub target: &'a str,
    /// The node profile.
    pub profile: NodeProfile,
    /// Whether SHOULD failures decide the verdict.
    pub strict: bool,
    /// Checks that will run.
    pub will_run: usize,
    /// The checks.
    pub checks: Vec<PlannedCheckView<'a>>,
    /// Requirement traceability.
    pub requirements: &'a [RequirementRow],
}

/// One planned check as `list --format json` prints it.
#[derive(Debug, Serialize)]
pub struct PlannedCheckView<'a> {
    /// ID.
    pub id: &'a str,
    /// Title.
    pub title: &'a str,
    /// Area.
    pub area: &'a str,
    /// Subject.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<&'a str>,
    /// Covered requirements.
    pub requirements: &'a [RequirementId],
    /// Declared severity.
    pub severity: Severity,
    /// Severity in this suite and profile.
    pub effective_severity: Severity,
    /// Needs.
    pub needs: Vec<String>,
    /// Side effects.
    pub side_effects: &'a str,
    /// Cleanup.
    pub cleanup: &'a str,
    /// Deadline in seconds.
    pub timeout_secs: u64,
    /// `run` or `skip`.
    pub decision: &'static str,
    /// For skips: the kind.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skip_kind: Option<SkipKind>,
    /// For skips: why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'a str>,
}

impl Plan {
    /// The serialisable view of the plan.
    pub fn view(&self) -> PlanView<'_> {
        PlanView {
            suite: &self.suite,
            target: &self.target,
            profile: self.profile,
            strict: self.strict,
            will_run: self.runnable(),
            checks: self
                .items
                .iter()
                .map(|i| {
                    let m = i.check.meta();
                    let skip = match &i.decision {
                        Decision::Run => None,
                        Decision::Skip(r) => Some(r),
                    };
                    PlannedCheckView {
                        id: &m.id,
                        title: &m.title,
                        area: m.area.as_str(),
                        subject: m.subject.as_deref(),
                        requirements: &i.covers,
                        severity: m.severity,
                        effective_severity: i.effective,
                        needs: m.needs.iter().map(ToString::to_string).collect(),
                        side_effects: &m.side_effects,
                        cleanup: &m.cleanup,
                        timeout_secs: m.timeout.as_secs(),
                        decision: if skip.is_some() { "skip" } else { "run" },
                        skip_kind: skip.map(|r| r.kind),
                        reason: skip.map(|r| r.message.as_str()),
                    }
                })
                .collect(),
            requirements: &self.requirements,
        }
    }
}
