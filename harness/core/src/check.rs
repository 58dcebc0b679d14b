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
    /// Something an area detects ([`crate::area::Resource`]): a Docker socket, a kubeconfig.
    Resource {
        /// The resource's ID, as the area's detection names it.
        id: String,
        /// What it is, for people: "a Docker Engine socket".
        description: String,
    },
}

impl Need {
    /// A resource an area detects.
    pub fn resource(id: &str, description: &str) -> Self {
        Need::Resource {
            id: id.to_owned(),
            description: description.to_owned(),
        }
    }
}

impl fmt::Display for Need {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Need::Root => f.write_str("root"),
            Need::Tool(t) => write!(f, "`{t}` on PATH"),
            Need::Resource { description, .. } => f.write_str(description),
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
    /// The upstream test suite the check runs or judges (Tempest, Kubernetes e2e,
    /// kube-bench) and which of its tests; `None` when the harness observes by itself.
    /// The traceability matrix shows it as the kind of coverage.
    pub upstream: Option<Upstream>,
}

/// Tests of an upstream suite that give a check its evidence.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Upstream {
    /// The suite: `tempest`, `k8s-e2e`, `kube-bench`.
    pub tool: String,
    /// Which tests: a Tempest regex, an e2e focus (and skip), kube-bench control numbers.
    pub tests: String,
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
            upstream: None,
        }
    }

    /// States that the check's evidence comes from `tests` of the upstream suite `tool`.
    pub fn upstream(mut self, tool: impl Into<String>, tests: impl Into<String>) -> Self {
        self.upstream = Some(Upstream {
            tool: tool.into(),
            tests: tests.into(),
        });
        self
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

    /// States what a read-only check does on the NFVI ("none: read-only API calls"); there
    /// is nothing to clean up.
    pub fn read_only(self, effects: impl Into<String>) -> Self {
        self.side_effects(effects, "none needed")
    }

    /// Sets where the check is declared, for checks built from a table whose rows record
    /// their own location.
    pub fn declared_at(mut self, at: &'static std::panic::Location<'static>) -> Self {
        self.declared_at = at;
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

/// What a check's body returns: the outcome it observed, or, through `?`, the outcome that
/// ends it early (an error: the harness could not decide; a skip; a failure).
pub type CheckResult = Result<Outcome, CheckError>;

/// An outcome that ends a check early. Anything that converts into an [`Outcome`] converts
/// into it, and a `String` or `&str` is an error outcome (the harness could not decide), so
/// `?` works on the helpers' `Result<_, String>` and `Result<_, Outcome>` alike.
#[derive(Debug)]
pub struct CheckError(pub Outcome);

impl From<Outcome> for CheckError {
    fn from(outcome: Outcome) -> Self {
        Self(outcome)
    }
}

impl From<String> for CheckError {
    fn from(message: String) -> Self {
        Self(Outcome::error(message))
    }
}

impl From<&str> for CheckError {
    fn from(message: &str) -> Self {
        Self(Outcome::error(message))
    }
}

type RunFn = dyn for<'a> Fn(&'a CheckContext) -> BoxFuture<'a, CheckResult> + Send + Sync;
type ApplicableFn = dyn Fn(&Target) -> Result<(), String> + Send + Sync;

/// A check declared with [`declare`]: its metadata and its body.
pub struct Declared {
    meta: CheckMeta,
    run: Box<RunFn>,
    applicable: Option<Box<ApplicableFn>>,
}

/// Declares a check: the one way areas do. `meta` records where it is declared (call
/// [`CheckMeta::new`] in the function that lists the checks, or in a `#[track_caller]`
/// helper), `run` is its body:
///
/// ```ignore
/// declare(
///     CheckMeta::new("host.kernel.version", Area::Host, "Kernel is recent enough"),
///     |cx| Box::pin(async move {
///         let release = read(cx, "/proc/sys/kernel/osrelease").await?; // Err -> error outcome
///         Ok(judge(&release))
///     }),
/// )
/// ```
pub fn declare<F>(meta: CheckMeta, run: F) -> Declared
where
    F: for<'a> Fn(&'a CheckContext) -> BoxFuture<'a, CheckResult> + Send + Sync + 'static,
{
    Declared {
        meta,
        run: Box::new(run),
        applicable: None,
    }
}

impl Declared {
    /// Decides at plan time whether the check applies to the target; `Err(reason)` skips
    /// it as not applicable.
    pub fn applies_if(
        mut self,
        f: impl Fn(&Target) -> Result<(), String> + Send + Sync + 'static,
    ) -> Self {
        self.applicable = Some(Box::new(f));
        self
    }

    /// The check, ready for a registry.
    pub fn into_check(self) -> std::sync::Arc<dyn Check> {
        std::sync::Arc::new(self)
    }
}

impl Check for Declared {
    fn meta(&self) -> &CheckMeta {
        &self.meta
    }

    fn applicable(&self, target: &Target) -> Result<(), String> {
        self.applicable.as_ref().map_or(Ok(()), |f| f(target))
    }

    fn run<'a>(&'a self, cx: &'a CheckContext) -> BoxFuture<'a, Outcome> {
        Box::pin(async move { (self.run)(cx).await.unwrap_or_else(|CheckError(o)| o) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::Status;

    fn helper(fail: bool) -> Result<u32, String> {
        if fail {
            Err("no such file".into())
        } else {
            Ok(7)
        }
    }

    #[test]
    fn a_declared_check_runs_its_body_and_question_marks_become_outcomes() {
        let check = declare(CheckMeta::new("host.demo", Area::Host, "demo"), |cx| {
            Box::pin(async move {
                let n = helper(cx.target().name == "broken")?;
                Ok(Outcome::pass(format!("saw {n}")))
            })
        })
        .applies_if(|t| {
            if t.name == "elsewhere" {
                Err("not here".into())
            } else {
                Ok(())
            }
        });
        assert!(check.meta().declared_at.file().ends_with("check.rs"));
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let areas = crate::Areas::default();
        let mut target = Target::local(&areas);
        let run = |target: &Target| {
            let cx = CheckContext::new(
                std::sync::Arc::new(target.clone()),
                crate::cancel::CancelToken::never(),
                Duration::from_secs(1),
            );
            rt.block_on(check.run(&cx))
        };
        let o = run(&target);
        assert_eq!((o.status, o.message.as_str()), (Status::Passed, "saw 7"));
        target.name = "broken".into();
        let o = run(&target);
        assert_eq!(
            (o.status, o.message.as_str()),
            (Status::Error, "no such file")
        );
        target.name = "elsewhere".into();
        assert_eq!(check.applicable(&target), Err("not here".to_owned()));
    }
}
