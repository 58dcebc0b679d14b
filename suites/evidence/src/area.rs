//! The evidence area's boundary with the core: its `[evidence]` table, the `--evidence` and
//! `--evidence-max-age` flags, the preflight that reads every file before anything runs, and
//! the run's one reading of the evidence that the checks share.

use std::path::PathBuf;
use std::sync::Arc;

use nfvi_harness::{Area, AreaConfig, Check, ConfigError, Flag, FlagKind, Shared, Table, Target};
use schemars::JsonSchema;
use serde::Deserialize;
use tokio::sync::OnceCell;

use crate::ingest::{self, IngestError};
use crate::model::Ingested;

/// The `[evidence]` table: other tools' results to judge.
#[derive(Clone, Debug, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EvidenceConfig {
    /// Result files (or conformance submission directories) of other tools run on this NFVI.
    /// `--evidence FILE` (repeatable) adds to them.
    pub files: Vec<String>,
    /// Evidence older than this many days (by when the tool ran) is refused; 0 accepts any age.
    pub max_age_days: u32,
}

impl AreaConfig for EvidenceConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        ConfigError::ensure(
            self.max_age_days <= 36_500,
            "max_age_days",
            format!(
                "evidence.max_age_days = {} is out of range: 0 (any age) to 36500 days",
                self.max_age_days
            ),
        )?;
        ConfigError::ensure(
            self.files.iter().all(|f| !f.trim().is_empty()),
            "files",
            "evidence.files holds an empty path",
        )
    }
}

const FLAGS: &[Flag] = &[
    Flag {
        long: "evidence",
        table: "evidence",
        key: "files",
        value_name: "FILE",
        help: "A result file of another tool to judge as evidence (repeatable): e2e junit_01.xml or its directory, a Sonobuoy tarball, kube-bench JSON, Tempest subunit or JUnit",
        kind: FlagKind::List,
    },
    Flag {
        long: "evidence-max-age",
        table: "evidence",
        key: "max_age_days",
        value_name: "DAYS",
        help: "Refuse evidence older than DAYS days (0: any age; sets evidence.max_age_days)",
        kind: FlagKind::Integer,
    },
];

/// What `preflight` read, by the path as given: the run judges exactly what was checked
/// before it started, and reads no file twice.
static PREFLIGHT: std::sync::Mutex<Vec<(PathBuf, Ingested)>> = std::sync::Mutex::new(Vec::new());

/// The evidence `preflight` read for `file`, or the file read now (a run without preflight:
/// tests, or a file named twice).
fn ingest_once(file: &std::path::Path) -> Result<Ingested, IngestError> {
    let kept = {
        let mut read = PREFLIGHT
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        read.iter()
            .position(|(p, _)| p == file)
            .map(|i| read.swap_remove(i).1)
    };
    kept.map_or_else(|| ingest::ingest(file), Ok)
}

/// The run's evidence, read once, on first use by a check.
#[derive(Default)]
pub(crate) struct Store {
    loaded: OnceCell<Arc<Vec<Result<Ingested, IngestError>>>>,
}

impl Store {
    /// Every input of the target, ingested (on a blocking thread: files and archives).
    pub(crate) async fn evidence(
        &self,
        target: &Target,
    ) -> Arc<Vec<Result<Ingested, IngestError>>> {
        let files: Vec<PathBuf> = target
            .config::<EvidenceConfig>()
            .files
            .iter()
            .map(PathBuf::from)
            .collect();
        self.loaded
            .get_or_init(|| async move {
                let all = tokio::task::spawn_blocking(move || {
                    files.iter().map(|f| ingest_once(f)).collect::<Vec<_>>()
                })
                .await
                .unwrap_or_else(|e| {
                    vec![Err(IngestError::new(
                        std::path::Path::new("(evidence)"),
                        None,
                        format!("reading the evidence stopped: {e}"),
                    ))]
                });
                Arc::new(all)
            })
            .await
            .clone()
    }
}

/// Evidence from other tools: Kubernetes e2e conformance, kube-bench, Tempest.
pub struct EvidenceArea;

impl Area for EvidenceArea {
    fn id(&self) -> &'static str {
        "evidence"
    }

    fn tables(&self) -> Vec<Table> {
        vec![Table::of::<EvidenceConfig>(
            "evidence",
            include_str!("evidence.toml"),
        )]
    }

    fn flags(&self) -> &'static [Flag] {
        FLAGS
    }

    fn checks(&self) -> Vec<Arc<dyn Check>> {
        crate::checks::checks()
    }

    fn open(&self, _target: &Target) -> Shared {
        Arc::new(Store::default())
    }

    /// Reads and parses every file named, so that a malformed one stops the run before
    /// anything runs (exit 2), naming the file and the position.
    fn preflight(&self, target: &Target) -> Result<(), String> {
        for f in &target.config::<EvidenceConfig>().files {
            let read = ingest::ingest(std::path::Path::new(f)).map_err(|e| e.to_string())?;
            PREFLIGHT
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push((PathBuf::from(f), read));
        }
        Ok(())
    }
}
