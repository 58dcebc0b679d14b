//! What the ingested evidence says, typed: one [`Ingested`] per `--evidence` input, holding
//! where it came from (its files and their hashes) and what it reports (an e2e run, kube-bench
//! controls, Tempest tests, or nothing the checks judge).

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use nfvi_harness::Provenance;

/// One `--evidence` input, read and parsed.
#[derive(Clone, Debug)]
pub struct Ingested {
    /// The input as the run read it (absolute).
    pub input: PathBuf,
    /// One entry per file read (a JUnit and the e2e.log and PRODUCT.yaml beside it, or one
    /// archive with the members read); `identity_verified` is false until a check compares.
    pub provenance: Vec<Provenance>,
    /// When the tool ran, and where that comes from (`file` or `mtime`).
    pub run_at: Option<DateTime<Utc>>,
    /// `file` when the evidence states its time, `mtime` otherwise.
    pub run_at_source: &'static str,
    /// What the evidence says about the cluster it verified.
    pub recorded: Recorded,
    /// What it reports.
    pub report: Report,
}

impl Ingested {
    /// The kind, for messages.
    pub fn kind(&self) -> &'static str {
        match &self.report {
            Report::E2e(_) => "Kubernetes e2e results",
            Report::KubeBench(_) => "kube-bench results",
            Report::Tempest(_) => "Tempest results",
            Report::Nothing(_) => "results of nothing these checks judge",
        }
    }
}

/// The identity of the cluster as the evidence records it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recorded {
    /// The Kubernetes version: `v1.24.1` (e2e.log, serverversion.json) or `1.25` (kube-bench's
    /// detected version: major.minor only).
    pub k8s_version: Option<String>,
    /// Where the version comes from (`serverversion.json`, `e2e.log kube-apiserver version`).
    pub version_source: Option<String>,
    /// The UID of the kube-system namespace (a Sonobuoy tarball's namespaces).
    pub cluster_uid: Option<String>,
}

impl Recorded {
    /// `Kubernetes v1.33.0, cluster kube-system uid ...`, or `None` when nothing is recorded.
    pub fn describe(&self) -> Option<String> {
        let mut parts = Vec::new();
        if let Some(v) = &self.k8s_version {
            parts.push(format!("Kubernetes {v}"));
        }
        if let Some(u) = &self.cluster_uid {
            parts.push(format!("cluster kube-system uid {u}"));
        }
        (!parts.is_empty()).then(|| parts.join(", "))
    }
}

/// What an input reports.
#[derive(Clone, Debug)]
pub enum Report {
    /// A Kubernetes e2e run (ginkgo JUnit, with its e2e.log when found).
    E2e(Box<E2eRun>),
    /// kube-bench controls.
    KubeBench(BenchRun),
    /// Tempest (or any stestr/subunit) tests.
    Tempest(TempestRun),
    /// Accepted, but evidence of nothing the checks judge; the reason says why.
    Nothing(String),
}

/// The JUnit dialect of an e2e run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavor {
    /// ginkgo v1 (Kubernetes up to 1.24): `<testsuite tests=N>`, `<skipped/>`.
    GinkgoV1,
    /// ginkgo v2 (Kubernetes 1.25 on): `<testsuites>`, `status=` on every test case.
    GinkgoV2,
}

/// A Kubernetes e2e run as its JUnit (and e2e.log) report it.
#[derive(Clone, Debug, Default)]
pub struct E2eRun {
    /// The JUnit dialect (`None` only in tests).
    pub flavor: Option<Flavor>,
    /// The `FocusStrings` property (ginkgo v2).
    pub focus: Option<String>,
    /// The `SkipStrings` property (ginkgo v2).
    pub skip: Option<String>,
    /// The `SuiteSucceeded` property (ginkgo v2).
    pub suite_succeeded: Option<bool>,
    /// The `testsuite timestamp` (ginkgo v2), as written (no zone).
    pub timestamp: Option<String>,
    /// Specs passed (suite nodes such as `[SynchronizedBeforeSuite]` not counted).
    pub passed: usize,
    /// Specs skipped.
    pub skipped: usize,
    /// Specs pending.
    pub pending: usize,
    /// Failed specs and suite nodes: `name (type)`.
    pub failed: Vec<String>,
    /// Specs tagged `[Conformance]` that passed.
    pub conformance_passed: usize,
    /// Specs tagged `[Conformance]` that were skipped or pending (the first few names).
    pub conformance_skipped: Vec<String>,
    /// How many `[Conformance]` specs were skipped or pending.
    pub conformance_skipped_count: usize,
    /// Specs that ran (passed or failed) without the `[Conformance]` tag.
    pub ran_not_conformance: usize,
    /// The e2e.log summary, when the log was found.
    pub log: Option<E2eLog>,
    /// PRODUCT.yaml, when found.
    pub product: Option<Product>,
}

/// What an e2e.log says.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct E2eLog {
    /// `Will run N of M specs`.
    pub will_run: Option<(u64, u64)>,
    /// `Ran N of M Specs`.
    pub ran: Option<(u64, u64)>,
    /// The closing `SUCCESS!`/`FAIL!` line.
    pub summary: Option<LogSummary>,
    /// "A BeforeSuite node failed so all tests were skipped."
    pub before_suite_failed: bool,
    /// `e2e test version: v1.24.1`.
    pub e2e_version: Option<String>,
    /// `kube-apiserver version: v1.24.1`.
    pub apiserver_version: Option<String>,
}

/// `SUCCESS! -- 419 Passed | 0 Failed | 0 Pending | 6312 Skipped`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LogSummary {
    /// `SUCCESS!` rather than `FAIL!`.
    pub success: bool,
    /// Passed.
    pub passed: u64,
    /// Failed.
    pub failed: u64,
    /// Pending.
    pub pending: u64,
    /// Skipped.
    pub skipped: u64,
}

/// PRODUCT.yaml of a conformance submission.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Deserialize)]
pub struct Product {
    /// The vendor.
    #[serde(default)]
    pub vendor: Option<String>,
    /// The product.
    #[serde(default)]
    pub name: Option<String>,
    /// The product's version (not Kubernetes').
    #[serde(default)]
    pub version: Option<String>,
    /// `distribution`, `hosted platform`, `installer`.
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
}

/// kube-bench's status of a control.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum BenchStatus {
    /// PASS.
    Pass,
    /// FAIL (a scored control that failed).
    Fail,
    /// WARN (manual, or an unscored control that failed).
    Warn,
    /// INFO (skipped).
    Info,
}

impl BenchStatus {
    /// As kube-bench writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            BenchStatus::Pass => "PASS",
            BenchStatus::Fail => "FAIL",
            BenchStatus::Warn => "WARN",
            BenchStatus::Info => "INFO",
        }
    }
}

/// One kube-bench control (a "check").
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BenchControl {
    /// `1.2.1`.
    pub number: String,
    /// `Ensure that the --anonymous-auth argument is set to false (Manual)`.
    pub desc: String,
    /// The group's description (`API Server`, `RBAC and Service Accounts`).
    pub group: String,
    /// `master`, `node`, `etcd`, `controlplane`, `policies`, ...
    pub node_type: String,
    /// Its status.
    pub status: BenchStatus,
    /// Whether it is scored.
    pub scored: bool,
}

/// A kube-bench run.
#[derive(Clone, Debug, Default)]
pub struct BenchRun {
    /// The benchmark (`cis-1.23`, `eks-1.0`).
    pub benchmark: Option<String>,
    /// The Kubernetes version kube-bench detected (`1.25`), if it says.
    pub detected_version: Option<String>,
    /// Every control, in file order.
    pub controls: Vec<BenchControl>,
}

impl BenchRun {
    /// Controls by status: pass, fail, warn, info.
    pub fn totals(&self) -> [usize; 4] {
        let mut t = [0; 4];
        for c in &self.controls {
            t[c.status as usize] += 1;
        }
        t
    }
}

/// A test's final status in a Tempest run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TestStatus {
    /// success, xfail.
    Passed,
    /// fail, uxsuccess, error.
    Failed,
    /// skip.
    Skipped,
    /// Started but never finished (exists/inprogress only).
    Incomplete,
}

/// One test of a Tempest run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TempestTest {
    /// The dotted id with its attributes: `tempest.api.identity....test_x[id-...,smoke]`, or
    /// `setUpClass (tempest.api....Class)` for a class fixture.
    pub id: String,
    /// The `id-<uuid>` attribute's UUID, when present.
    pub uuid: Option<String>,
    /// Its final status.
    pub status: TestStatus,
}

/// A Tempest (stestr, subunit) run.
#[derive(Clone, Debug, Default)]
pub struct TempestRun {
    /// `subunit v2` or `subunit2junitxml JUnit`.
    pub format: &'static str,
    /// Every test, in first-seen order.
    pub tests: Vec<TempestTest>,
}

impl TempestRun {
    /// How many tests have `status`.
    pub fn count(&self, status: TestStatus) -> usize {
        self.tests.iter().filter(|t| t.status == status).count()
    }
}

/// The UUID of a Tempest id's `id-<uuid>` attribute (`test_x[id-9974...,smoke]`).
pub fn tempest_uuid(id: &str) -> Option<String> {
    let open = id.rfind('[')?;
    let attrs = id[open + 1..].strip_suffix(']')?;
    attrs
        .split(',')
        .find_map(|a| a.trim().strip_prefix("id-"))
        .map(str::to_owned)
}
