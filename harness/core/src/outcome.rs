//! What a check found: a status, a message and evidence.

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The four outcomes, plus a timeout kept apart from other errors. They are never folded
/// together: a failure means the NFVI does not conform, an error or timeout means the harness
/// could not decide.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// The NFVI does what the requirement asks.
    Passed,
    /// The NFVI does not conform.
    Failed,
    /// The harness or the environment could not decide.
    Error,
    /// The check did not finish before its deadline.
    TimedOut,
    /// The check did not run; the reason says why.
    Skipped,
}

impl Status {
    /// The kebab-case name used in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Passed => "passed",
            Status::Failed => "failed",
            Status::Error => "error",
            Status::TimedOut => "timed-out",
            Status::Skipped => "skipped",
        }
    }
}

/// Why a check was skipped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum SkipKind {
    /// The machine lacks something the check needs (root, a tool, a socket, credentials).
    MissingCapability,
    /// The check does not apply to this target (profile, configuration, kernel).
    NotApplicable,
    /// The run was interrupted before the check started.
    Interrupted,
    /// `--fail-fast` stopped the run before the check started.
    FailFast,
}

/// A skip kind and a human reason.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SkipReason {
    /// The kind.
    pub kind: SkipKind,
    /// What is missing or why it does not apply, and how to fix it where that helps.
    pub message: String,
}

/// A measured value with its unit.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Metric {
    /// The value.
    pub value: f64,
    /// The unit, such as `us`, `bytes`, `pages`, `count`.
    pub unit: String,
}

/// A command the check ran and what it printed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CommandRecord {
    /// The command line, shell-quoted for reading.
    pub command: String,
    /// The exit code, or `None` when the process was killed by a signal or never started.
    pub exit_code: Option<i32>,
    /// Standard output (invalid UTF-8 kept as `\xNN`; capped).
    pub stdout: String,
    /// Standard error (same treatment).
    pub stderr: String,
    /// How long it ran, in seconds.
    pub duration_secs: f64,
}

/// What a check observed, kept for the reviewer.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Evidence {
    /// Observed facts as key/value pairs, in the order the check recorded them.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub properties: IndexMap<String, String>,
    /// Measurements with units.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub metrics: IndexMap<String, Metric>,
    /// Raw samples where a distribution matters (for example latency), with their unit.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub samples: IndexMap<String, Vec<f64>>,
    /// Distributions by name (a latency path), as percentiles p0 to p100 in microseconds;
    /// the report draws them.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub distributions: IndexMap<String, Percentiles>,
    /// The stage of the deployment's own workflow the check belongs to (Kolla-Ansible's
    /// "prechecks and pull", "post-deploy"); the report groups an area's checks by it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<String>,
    /// Commands run and their output.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub commands: Vec<CommandRecord>,
    /// Results of other tools the check judged (`--evidence`), with where they came from.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub provenance: Vec<Provenance>,
}

/// Where a piece of external evidence came from: another tool's result file that a check
/// judged instead of observing the NFVI itself.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Provenance {
    /// The tool that wrote it, such as `kubernetes-e2e`, `sonobuoy`, `kube-bench`, `tempest`.
    pub tool: String,
    /// The tool's version as the file states it, if it does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_version: Option<String>,
    /// The file as the run read it (an absolute path).
    pub file: String,
    /// SHA-256 of the file's bytes, lowercase hex.
    pub sha256: String,
    /// For an archive: the members that were read, the only ones a bundle carries.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<String>,
    /// When the tool ran, as the file states it (or, failing that, the file's modification
    /// time, and `run_at_source` says so).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Where `run_at` comes from: `file` (a timestamp inside it) or `mtime`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_at_source: Option<String>,
    /// What the evidence says it verified (a Kubernetes server version, a cluster UID, a
    /// cloud), and whether that was compared with the NFVI under test.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<String>,
    /// Whether `identity` was compared with the NFVI under test and matched; false when it
    /// could not be compared (no kubeconfig, nothing recorded), which a certification notes.
    #[serde(default)]
    pub identity_verified: bool,
}

impl Evidence {
    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.properties.is_empty()
            && self.metrics.is_empty()
            && self.samples.is_empty()
            && self.distributions.is_empty()
            && self.stage.is_none()
            && self.commands.is_empty()
            && self.provenance.is_empty()
    }
}

/// A distribution as its 101 percentiles, p0 to p100, finite and non-decreasing. Only
/// [`Percentiles::new`] and deserialisation make one, and both check that.
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
#[serde(transparent)]
pub struct Percentiles(#[schemars(length(min = 101, max = 101))] Vec<f64>);

impl Percentiles {
    /// The percentiles, or why they are not a distribution.
    pub fn new(values: Vec<f64>) -> Result<Self, String> {
        if values.len() != 101 {
            return Err(format!(
                "a distribution has 101 percentiles (p0 to p100), not {}",
                values.len()
            ));
        }
        if values.iter().any(|v| !v.is_finite()) {
            return Err("a distribution's percentiles are finite numbers".to_owned());
        }
        if values.windows(2).any(|w| w[1] < w[0]) {
            return Err("a distribution's percentiles do not decrease".to_owned());
        }
        Ok(Self(values))
    }

    /// p0 to p100.
    pub fn values(&self) -> &[f64] {
        &self.0
    }

    /// The `p`th percentile (0 to 100).
    pub fn at(&self, p: usize) -> f64 {
        self.0[p.min(100)]
    }
}

impl<'de> Deserialize<'de> for Percentiles {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Percentiles::new(Vec::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// The result of running one check.
#[derive(Clone, Debug, PartialEq)]
pub struct Outcome {
    /// Passed, failed, error, timed out or skipped.
    pub status: Status,
    /// One or two sentences: what was observed and, for failures, what to do about it.
    pub message: String,
    /// Skip kind: set exactly when the status is skipped, so only [`Outcome::skip`] sets it.
    skip: Option<SkipKind>,
    /// What was observed (boxed: outcomes travel through `Result`s and stay small).
    pub evidence: Box<Evidence>,
}

impl Outcome {
    fn new(status: Status, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            skip: None,
            evidence: Box::default(),
        }
    }

    /// The NFVI conforms.
    pub fn pass(message: impl Into<String>) -> Self {
        Self::new(Status::Passed, message)
    }

    /// The NFVI does not conform; the message says where and how to fix it.
    pub fn fail(message: impl Into<String>) -> Self {
        Self::new(Status::Failed, message)
    }

    /// The check could not decide.
    pub fn error(message: impl Into<String>) -> Self {
        Self::new(Status::Error, message)
    }

    /// The check did not finish in time.
    pub fn timed_out(message: impl Into<String>) -> Self {
        Self::new(Status::TimedOut, message)
    }

    /// The verdict of a judge with one condition: passes with `pass` when `conforms`,
    /// otherwise fails with `fail`.
    pub fn pass_if(conforms: bool, pass: impl Into<String>, fail: impl Into<String>) -> Self {
        if conforms {
            Self::pass(pass)
        } else {
            Self::fail(fail)
        }
    }

    /// The verdict of a judge that collects what is wrong: passes with `pass` when
    /// `problems` is empty, otherwise fails with the problems joined by `; `.
    pub fn pass_unless(problems: Vec<String>, pass: impl Into<String>) -> Self {
        Self::pass_unless_with(problems, pass, |problems| problems)
    }

    /// Like [`Outcome::pass_unless`], with the failure message made by `fail` from the
    /// problems joined by `; ` (to put them in a sentence that says what was expected).
    pub fn pass_unless_with(
        problems: Vec<String>,
        pass: impl Into<String>,
        fail: impl FnOnce(String) -> String,
    ) -> Self {
        if problems.is_empty() {
            Self::pass(pass)
        } else {
            Self::fail(fail(problems.join("; ")))
        }
    }

    /// The check did not run.
    pub fn skip(reason: SkipReason) -> Self {
        let mut o = Self::new(Status::Skipped, reason.message);
        o.skip = Some(reason.kind);
        o
    }

    /// The check does not apply to this NFVI (a service it does not deploy, a feature
    /// its kernel lacks): a skip that says why.
    pub fn not_applicable(message: impl Into<String>) -> Self {
        Self::skip(SkipReason {
            kind: SkipKind::NotApplicable,
            message: message.into(),
        })
    }

    /// Why a skipped outcome was skipped; `None` for every other status.
    pub fn skip_kind(&self) -> Option<SkipKind> {
        self.skip
    }

    /// A passed outcome becomes an error that says why (a cleanup failed after it); any
    /// other outcome is kept as it is.
    pub fn unless_passed(mut self, why: impl std::fmt::Display) -> Self {
        if self.status == Status::Passed {
            self.status = Status::Error;
            self.message = format!("{}; but {why}", self.message);
        }
        self
    }

    /// Records an observed fact.
    pub fn with_property(mut self, key: impl Into<String>, value: impl ToString) -> Self {
        self.evidence
            .properties
            .insert(key.into(), value.to_string());
        self
    }

    /// Records a measurement.
    pub fn with_metric(mut self, name: impl Into<String>, value: f64, unit: &str) -> Self {
        self.evidence.metrics.insert(
            name.into(),
            Metric {
                value,
                unit: unit.to_owned(),
            },
        );
        self
    }

    /// Records the stage of the deployment's workflow the check belongs to.
    pub fn with_stage(mut self, stage: impl Into<String>) -> Self {
        self.evidence.stage = Some(stage.into());
        self
    }

    /// Records a distribution (a latency path's percentiles).
    pub fn with_distribution(mut self, name: impl Into<String>, percentiles: Percentiles) -> Self {
        self.evidence.distributions.insert(name.into(), percentiles);
        self
    }

    /// Replaces the evidence.
    pub fn with_evidence(mut self, evidence: Evidence) -> Self {
        self.evidence = Box::new(evidence);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pass_unless_fails_with_the_problems_joined() {
        let o = Outcome::pass_unless(vec![], "all good");
        assert_eq!((o.status, o.message.as_str()), (Status::Passed, "all good"));
        let o = Outcome::pass_unless(vec!["a".to_owned(), "b".to_owned()], "all good");
        assert_eq!((o.status, o.message.as_str()), (Status::Failed, "a; b"));
        let o = Outcome::pass_unless_with(vec!["a".to_owned(), "b".to_owned()], "all good", |p| {
            format!("expected nothing wrong: {p}")
        });
        assert_eq!(o.message, "expected nothing wrong: a; b");
    }

    #[test]
    fn pass_if_picks_the_message_of_the_verdict() {
        let o = Outcome::pass_if(true, "conforms", "does not");
        assert_eq!((o.status, o.message.as_str()), (Status::Passed, "conforms"));
        let o = Outcome::pass_if(false, "conforms", "does not");
        assert_eq!((o.status, o.message.as_str()), (Status::Failed, "does not"));
    }
}
