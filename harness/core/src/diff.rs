//! Comparing two runs: which checks changed outcome, which appeared or vanished, and how
//! metrics moved. A regression is a check that passed before and does not now, or a new
//! check that fails.

use serde::Serialize;

use crate::outcome::Status;
use crate::results::RunResults;

/// One check whose outcome differs.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct OutcomeChange {
    /// Check ID.
    pub id: String,
    /// Before.
    pub old: Status,
    /// After.
    pub new: Status,
    /// Whether this is worse.
    pub regression: bool,
}

/// One metric that moved.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MetricChange {
    /// Check ID.
    pub check: String,
    /// Metric name.
    pub metric: String,
    /// Unit.
    pub unit: String,
    /// Before.
    pub old: f64,
    /// After.
    pub new: f64,
}

/// The difference between two runs.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct RunDiff {
    /// Checks whose outcome changed.
    pub changed: Vec<OutcomeChange>,
    /// Checks only in the new run, with their outcome.
    pub added: Vec<(String, Status)>,
    /// Checks only in the old run.
    pub removed: Vec<String>,
    /// Metrics that changed value.
    pub metrics: Vec<MetricChange>,
    /// The verdicts, old and new, when they differ.
    pub verdict: Option<(String, String)>,
}

impl RunDiff {
    /// Whether anything got worse.
    pub fn has_regression(&self) -> bool {
        self.changed.iter().any(|c| c.regression) || self.added.iter().any(|(_, s)| is_bad(*s))
    }
}

fn is_bad(s: Status) -> bool {
    matches!(s, Status::Failed | Status::Error | Status::TimedOut)
}

fn rank(s: Status) -> u8 {
    match s {
        Status::Passed => 0,
        Status::Skipped => 1,
        Status::Error | Status::TimedOut => 2,
        Status::Failed => 3,
    }
}

/// A check's key across runs: its ID (the subject is part of the ID for per-subject checks),
/// and on a fleet its node, as `id [node]`.
fn key(c: &crate::results::CheckResult) -> String {
    match &c.node {
        Some(node) => format!("{} [{node}]", c.id),
        None => c.id.clone(),
    }
}

/// Compares `old` with `new`. Checks are keyed by ID and node.
pub fn diff(old: &RunResults, new: &RunResults) -> RunDiff {
    let mut d = RunDiff::default();
    let old_by_key: std::collections::HashMap<String, &crate::results::CheckResult> =
        old.checks.iter().map(|o| (key(o), o)).collect();
    let new_keys: std::collections::HashSet<String> = new.checks.iter().map(key).collect();
    for n in &new.checks {
        match old_by_key.get(&key(n)).copied() {
            None => d.added.push((key(n), n.outcome)),
            Some(o) => {
                if o.outcome != n.outcome {
                    d.changed.push(OutcomeChange {
                        id: key(n),
                        old: o.outcome,
                        new: n.outcome,
                        regression: rank(n.outcome) > rank(o.outcome) && is_bad(n.outcome),
                    });
                }
                for (name, m) in &n.evidence.metrics {
                    if let Some(om) = o.evidence.metrics.get(name)
                        && om.value != m.value
                    {
                        d.metrics.push(MetricChange {
                            check: key(n),
                            metric: name.clone(),
                            unit: m.unit.clone(),
                            old: om.value,
                            new: m.value,
                        });
                    }
                }
            }
        }
    }
    d.removed = old
        .checks
        .iter()
        .map(key)
        .filter(|k| !new_keys.contains(k))
        .collect();
    if old.verdict != new.verdict {
        d.verdict = Some((
            old.verdict.as_str().to_owned(),
            new.verdict.as_str().to_owned(),
        ));
    }
    d
}
