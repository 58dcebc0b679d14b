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
    /// Commands run and their output.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub commands: Vec<CommandRecord>,
}

impl Evidence {
    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.properties.is_empty()
            && self.metrics.is_empty()
            && self.samples.is_empty()
            && self.commands.is_empty()
    }
}

/// The result of running one check.
#[derive(Clone, Debug, PartialEq)]
pub struct Outcome {
    /// Passed, failed, error, timed out or skipped.
    pub status: Status,
    /// One or two sentences: what was observed and, for failures, what to do about it.
    pub message: String,
    /// Skip kind, for skipped outcomes.
    pub skip: Option<SkipKind>,
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

    /// The check did not run.
    pub fn skip(reason: SkipReason) -> Self {
        let mut o = Self::new(Status::Skipped, reason.message);
        o.skip = Some(reason.kind);
        o
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

    /// Replaces the evidence.
    pub fn with_evidence(mut self, evidence: Evidence) -> Self {
        self.evidence = Box::new(evidence);
        self
    }
}
