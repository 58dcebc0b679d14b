//! What a check is: static metadata (ID, requirements covered, severity, needs, side
//! effects, cleanup) and an async `run`.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use nfvi_reference_model::{Area, Level};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::context::CheckContext;
use crate::outcome::Outcome;
use crate::target::Target;

/// A boxed future, which keeps [`Check`] dyn-compatible without a macro.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// How much a failure of a check weighs in the verdict. `Info` is for checks that trace to
/// no requirement: they are reported and never decide the verdict.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum Severity {
    /// Informational: no requirement behind it.
    Info,
    /// Optional.
    May,
    /// A failure is a warning unless `--strict`.
    Should,
    /// A failure makes the run non-conformant.
    Must,
}

impl Severity {
    /// The lowercase name used in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::May => "may",
            Severity::Should => "should",
            Severity::Must => "must",
        }
    }
}

impl From<Level> for Severity {
    fn from(level: Level) -> Self {
        match level {
            Level::May => Severity::May,
            Level::Should => Severity::Should,
            Level::Must => Severity::Must,
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Something a check needs from the machine the harness runs on. A check whose needs are
/// not met is skipped with a reason naming the missing need.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case", tag = "kind", content = "name")]
pub enum Need {
    /// Effective UID 0 (network namespaces, netlink writes, /dev access).
    Root,
    /// An executable on `PATH`.
    Tool(String),
    /// A reachable Docker Engine socket.
    DockerSocket,
    /// A kubeconfig (target file, `KUBECONFIG` or `~/.kube/config`).
    Kubeconfig,
    /// OpenStack credentials (target file, `clouds.yaml` or `OS_*` variables).
    OpenStackCloud,
    /// At least one CNI plugin directory with plugins in it.
    CniPlugins,
}

impl fmt::Display for Need {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Need::Root => f.write_str("root"),
            Need::Tool(t) => write!(f, "`{t}` on PATH"),
            Need::DockerSocket => f.write_str("a Docker Engine socket"),
            Need::Kubeconfig => f.write_str("a kubeconfig"),
            Need::OpenStackCloud => f.write_str("OpenStack credentials"),
            Need::CniPlugins => f.write_str("CNI plugins"),
        }
    }
}

/// Everything about a check that is known before it runs.
#[derive(Clone, Debug)]
pub struct CheckMeta {
    /// Stable, dotted, lowercase ID, starting with the area: `host.kernel.version`.
    pub id: String,
    /// One line saying what is verified.
    pub title: String,
    /// The area the check belongs to.
    pub area: Area,
    /// What the check is about when an area runs it for several things (a plugin, a
    /// container, an endpoint pair); `None` for the node itself.
    pub subject: Option<String>,
    /// Reference-model requirement IDs the check gives evidence for.
    pub covers: Vec<String>,
    /// How much a failure weighs when every covered requirement is mandatory in the suite.
    pub severity: Severity,
    /// What the machine must offer for the check to run.
    pub needs: Vec<Need>,
    /// What the check changes on the NFVI while it runs ("none" for read-only checks).
    pub side_effects: String,
    /// How those changes are undone ("none needed" for read-only checks).
    pub cleanup: String,
    /// The deadline after which the check is stopped and reported as timed out.
    pub timeout: Duration,
    /// Where in the source the check is declared, for error messages.
    pub declared_at: &'static std::panic::Location<'static>,
}

impl CheckMeta {
    /// Starts the metadata of a read-only check with a 60 s deadline; refine it with the
    /// builder methods.
    #[track_caller]
    pub fn new(id: impl Into<String>, area: Area, title: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            title: title.into(),
            area,
            subject: None,
            covers: Vec::new(),
            severity: Severity::Info,
            needs: Vec::new(),
            side_effects: "none: read-only".to_owned(),
            cleanup: "none needed".to_owned(),
            timeout: Duration::from_secs(60),
            declared_at: std::panic::Location::caller(),
        }
    }

    /// Sets the requirements covered and the severity of a failure.
    pub fn covers(mut self, severity: Severity, ids: &[&str]) -> Self {
        self.severity = severity;
        self.covers = ids.iter().map(|s| (*s).to_owned()).collect();
        self
    }

    /// Adds needs.
    pub fn needs(mut self, needs: impl IntoIterator<Item = Need>) -> Self {
        self.needs.extend(needs);
        self
    }

    /// States the side effects on the NFVI and how they are cleaned up.
    pub fn side_effects(mut self, effects: impl Into<String>, cleanup: impl Into<String>) -> Self {
        self.side_effects = effects.into();
        self.cleanup = cleanup.into();
        self
    }

    /// Sets the subject.
    pub fn subject(mut self, subject: impl Into<String>) -> Self {
        self.subject = Some(subject.into());
        self
    }

    /// Sets the deadline.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
}

/// A check: one verifiable statement about the NFVI.
///
/// Implementations state their requirements, side effects and cleanup in [`CheckMeta`], do
/// their I/O in `run` under the context's deadline and cancellation, register every cleanup
/// with [`CheckContext::on_cleanup`] before creating what it undoes, and return an
/// [`Outcome`] that says what was observed.
pub trait Check: Send + Sync + 'static {
    /// The check's static description.
    fn meta(&self) -> &CheckMeta;

    /// Whether the check applies to this target at all; `Err(reason)` skips it as not
    /// applicable. Decided at plan time, before anything runs.
    fn applicable(&self, _target: &Target) -> Result<(), String> {
        Ok(())
    }

    /// Runs the check.
    fn run<'a>(&'a self, cx: &'a CheckContext) -> BoxFuture<'a, Outcome>;
}
