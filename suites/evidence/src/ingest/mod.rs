//! Reading other tools' result files: detect the kind by content, parse it with bounded
//! sizes and depth, and record where it came from (path, SHA-256, members, time of the run).
//! Every problem is an [`IngestError`] naming the file and the position in it.

mod e2elog;
mod junit;
mod kubebench;
mod sonobuoy;
pub mod subunit;

use std::io::Read;
use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDateTime, Utc};
use nfvi_harness::Provenance;

use crate::model::{E2eRun, Ingested, Recorded, Report};

pub use junit::Junit;

/// The largest file read into memory (a JUnit, a JSON, an e2e.log, a subunit stream, an
/// archive member): far above real ones (a full conformance JUnit is 2.5 MB).
pub const MAX_FILE: u64 = 64 << 20;

/// What is accepted, for the message that refuses anything else.
pub const ACCEPTED: &str = "accepted: ginkgo JUnit of the Kubernetes e2e suite (v1 or v2, junit_01.xml, with e2e.log and PRODUCT.yaml beside it), a conformance submission directory holding junit_01.xml, a Sonobuoy results tarball (.tar.gz), kube-bench JSON (--json), Tempest results as subunit v2 or as subunit2junitxml JUnit";

/// A file that could not be ingested: which, where in it, and what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("evidence {}{}: {message}", file.display(), at.as_deref().map(|a| format!(" at {a}")).unwrap_or_default())]
pub struct IngestError {
    /// The file (or archive).
    pub file: PathBuf,
    /// The position: `line 12:5`, `byte 4096 (packet 3)`, `member plugins/e2e/...`.
    pub at: Option<String>,
    /// What is wrong and what was expected.
    pub message: String,
}

impl IngestError {
    pub(crate) fn new(file: &Path, at: Option<String>, message: impl Into<String>) -> Self {
        Self {
            file: file.to_owned(),
            at,
            message: message.into(),
        }
    }
}

/// A parse problem inside some bytes, before the file is known: the position and the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// `line 3:7`, `byte 12 (packet 1)`.
    pub at: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl ParseError {
    pub(crate) fn at(at: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            at: Some(at.into()),
            message: message.into(),
        }
    }

    pub(crate) fn whole(message: impl Into<String>) -> Self {
        Self {
            at: None,
            message: message.into(),
        }
    }

    pub(crate) fn in_file(self, file: &Path) -> IngestError {
        IngestError::new(file, self.at, self.message)
    }

    /// Puts the position inside an archive member: `member M, line 3:7`.
    pub(crate) fn in_member(self, file: &Path, member: &str) -> IngestError {
        let at = match self.at {
            Some(a) => format!("member {member}, {a}"),
            None => format!("member {member}"),
        };
        IngestError::new(file, Some(at), self.message)
    }
}

/// `line L:C` of byte offset `pos` in `data` (1-based, columns in bytes).
pub(crate) fn line_col(data: &[u8], pos: usize) -> String {
    let pos = pos.min(data.len());
    let before = &data[..pos];
    let line = before.iter().filter(|b| **b == b'\n').count() + 1;
    let col = pos
        - before
            .iter()
            .rposition(|b| *b == b'\n')
            .map_or(0, |p| p + 1)
        + 1;
    format!("line {line}:{col}")
}

/// SHA-256 of `data`, lowercase hex.
pub fn sha256_hex(data: &[u8]) -> String {
    hex(ring::digest::digest(&ring::digest::SHA256, data).as_ref())
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// Reads a whole file of at most [`MAX_FILE`] bytes.
pub(crate) fn read_bounded(path: &Path) -> Result<Vec<u8>, IngestError> {
    let file = std::fs::File::open(path)
        .map_err(|e| IngestError::new(path, None, format!("cannot open: {e}")))?;
    read_to_limit(path, file)
}

fn read_to_limit(path: &Path, file: std::fs::File) -> Result<Vec<u8>, IngestError> {
    let mut data = Vec::new();
    file.take(MAX_FILE + 1)
        .read_to_end(&mut data)
        .map_err(|e| IngestError::new(path, None, format!("cannot read: {e}")))?;
    if data.len() as u64 > MAX_FILE {
        return Err(IngestError::new(
            path,
            None,
            format!(
                "larger than {} MiB, the most a result file may be",
                MAX_FILE >> 20
            ),
        ));
    }
    Ok(data)
}

/// Reads a file the operator did not name but that lies beside one (a submission directory's
/// junit_01.xml, e2e.log, PRODUCT.yaml): `None` when there is none; only a regular file, never
/// through a symbolic link, and the file opened is the one `lstat` saw. Whoever produced the
/// directory cannot make the run read, and a bundle pack, another file such as /etc/shadow.
pub(crate) fn read_beside(path: &Path) -> Result<Option<Vec<u8>>, IngestError> {
    use std::os::unix::fs::MetadataExt as _;
    let refuse = |why: &str| {
        IngestError::new(
            path,
            None,
            format!("{why}; a file beside the evidence is read only when it is a regular file"),
        )
    };
    let seen = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(IngestError::new(path, None, format!("cannot read: {e}"))),
    };
    if seen.file_type().is_symlink() {
        return Err(refuse("a symbolic link"));
    }
    if !seen.is_file() {
        return Err(refuse("not a regular file"));
    }
    let file = std::fs::File::open(path)
        .map_err(|e| IngestError::new(path, None, format!("cannot open: {e}")))?;
    let opened = file
        .metadata()
        .map_err(|e| IngestError::new(path, None, format!("cannot read: {e}")))?;
    if (opened.dev(), opened.ino()) != (seen.dev(), seen.ino()) {
        return Err(refuse("replaced while it was being opened"));
    }
    read_to_limit(path, file).map(Some)
}

fn mtime(path: &Path) -> Option<DateTime<Utc>> {
    let t = std::fs::metadata(path).ok()?.modified().ok()?;
    Some(DateTime::<Utc>::from(t))
}

/// A provenance record of one file read.
pub(crate) fn provenance(tool: &str, file: &Path, data: &[u8]) -> Provenance {
    Provenance {
        tool: tool.to_owned(),
        tool_version: None,
        file: file.display().to_string(),
        sha256: sha256_hex(data),
        members: Vec::new(),
        run_at: None,
        run_at_source: None,
        identity: None,
        identity_verified: false,
    }
}

/// A ginkgo `timestamp` (`2025-05-09T00:25:58`, no zone: the e2e pods run in UTC).
pub(crate) fn naive_utc(s: &str) -> Option<DateTime<Utc>> {
    NaiveDateTime::parse_from_str(s.trim(), "%Y-%m-%dT%H:%M:%S")
        .or_else(|_| NaiveDateTime::parse_from_str(s.trim(), "%Y-%m-%dT%H:%M:%S%.f"))
        .ok()
        .map(|n| n.and_utc())
        .or_else(|| {
            DateTime::parse_from_rfc3339(s.trim())
                .ok()
                .map(|d| d.to_utc())
        })
}

/// Reads, detects and parses one `--evidence` input.
pub fn ingest(input: &Path) -> Result<Ingested, IngestError> {
    // The real path, `..` and links resolved: what provenance records and a bundle re-reads.
    let input = std::fs::canonicalize(input)
        .map_err(|e| IngestError::new(input, None, format!("cannot read: {e}")))?;
    let meta = std::fs::metadata(&input)
        .map_err(|e| IngestError::new(&input, None, format!("cannot read: {e}")))?;
    if meta.is_dir() {
        let junit = input.join("junit_01.xml");
        let Some(data) = read_beside(&junit)? else {
            return Err(IngestError::new(
                &input,
                None,
                format!(
                    "a directory, but without junit_01.xml: not a conformance submission ({ACCEPTED})"
                ),
            ));
        };
        return ingest_file(&junit, input.clone(), data);
    }
    let data = read_bounded(&input)?;
    ingest_file(&input, input.clone(), data)
}

fn ingest_file(path: &Path, input: PathBuf, data: Vec<u8>) -> Result<Ingested, IngestError> {
    let mut it = match detect(&data) {
        Kind::Gzip => sonobuoy::ingest(path, &data)?,
        Kind::Xml => junit_file(path, &data)?,
        Kind::Json => kubebench::ingest(path, &data)?,
        Kind::Subunit => subunit::ingest(path, &data)?,
        Kind::Unknown(why) => {
            return Err(IngestError::new(
                path,
                None,
                format!("not a supported kind ({why}); {ACCEPTED}"),
            ));
        }
    };
    it.input = input;
    if it.run_at.is_none() {
        it.run_at = mtime(path);
        it.run_at_source = "mtime";
    }
    let describe = it.recorded.describe();
    for p in &mut it.provenance {
        p.run_at = it.run_at;
        p.run_at_source = Some(it.run_at_source.to_owned());
        p.identity.clone_from(&describe);
    }
    Ok(it)
}

enum Kind {
    Gzip,
    Xml,
    Json,
    Subunit,
    Unknown(&'static str),
}

fn detect(data: &[u8]) -> Kind {
    if data.starts_with(&[0x1f, 0x8b]) {
        return Kind::Gzip;
    }
    if data.first() == Some(&0xb3) {
        return Kind::Subunit;
    }
    let text = data.strip_prefix(b"\xef\xbb\xbf").unwrap_or(data);
    match text.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'<') => Kind::Xml,
        Some(b'{' | b'[') => Kind::Json,
        None => Kind::Unknown("empty"),
        _ if data.len() >= 262 && &data[257..262] == b"ustar" => {
            Kind::Unknown("an uncompressed tar; Sonobuoy writes .tar.gz")
        }
        _ => Kind::Unknown("neither XML, JSON, gzip nor subunit v2"),
    }
}

/// A JUnit file: a ginkgo e2e run (with e2e.log and PRODUCT.yaml beside it) or Tempest's.
fn junit_file(path: &Path, data: &[u8]) -> Result<Ingested, IngestError> {
    let parsed = junit::parse(data).map_err(|e| e.in_file(path))?;
    let mut files = vec![provenance("kubernetes-e2e", path, data)];
    match parsed {
        Junit::E2e(mut run) => {
            let dir = path.parent().unwrap_or(Path::new("."));
            let mut recorded = Recorded::default();
            let log_path = dir.join("e2e.log");
            if let Some(log) = read_beside(&log_path)? {
                let parsed = e2elog::parse(&log);
                let mut p = provenance("kubernetes-e2e", &log_path, &log);
                p.tool_version.clone_from(&parsed.e2e_version);
                files[0].tool_version.clone_from(&parsed.e2e_version);
                files.push(p);
                recorded = log_identity(&parsed);
                run.log = Some(parsed);
            }
            let product_path = dir.join("PRODUCT.yaml");
            if let Some(text) = read_beside(&product_path)? {
                run.product = Some(parse_product(&text).map_err(|e| e.in_file(&product_path))?);
                files.push(provenance("kubernetes-e2e", &product_path, &text));
            }
            let run_at = run.timestamp.as_deref().and_then(naive_utc);
            Ok(Ingested {
                input: path.to_owned(),
                provenance: files,
                run_at,
                run_at_source: "file",
                recorded,
                report: Report::E2e(run),
            })
        }
        Junit::Tempest(run) => {
            files[0].tool = "tempest".to_owned();
            Ok(Ingested {
                input: path.to_owned(),
                provenance: files,
                run_at: None,
                run_at_source: "mtime",
                recorded: Recorded::default(),
                report: Report::Tempest(run),
            })
        }
    }
}

/// The cluster's version as an e2e.log records it.
pub(crate) fn log_identity(log: &crate::model::E2eLog) -> Recorded {
    let (k8s_version, version_source) = match (&log.apiserver_version, &log.e2e_version) {
        (Some(v), _) => (
            Some(v.clone()),
            Some("e2e.log kube-apiserver version".to_owned()),
        ),
        _ => (None, None),
    };
    Recorded {
        k8s_version,
        version_source,
        cluster_uid: None,
    }
}

/// PRODUCT.yaml, at most 64 KiB.
pub fn parse_product(data: &[u8]) -> Result<crate::model::Product, ParseError> {
    if data.len() > 64 << 10 {
        return Err(ParseError::whole("PRODUCT.yaml larger than 64 KiB"));
    }
    let text = std::str::from_utf8(data).map_err(|e| {
        ParseError::at(line_col(data, e.valid_up_to()), "PRODUCT.yaml is not UTF-8")
    })?;
    serde_saphyr::from_str::<crate::model::Product>(text).map_err(|e| {
        let msg = e.to_string();
        let first = msg.lines().next().unwrap_or("malformed YAML").to_owned();
        ParseError::whole(format!(
            "PRODUCT.yaml: expected a mapping of vendor, name, version, type...: {first}"
        ))
    })
}

/// Parses an e2e JUnit and its optional e2e.log text (for the benchmark and tests).
pub fn parse_e2e(junit: &[u8], log: Option<&[u8]>) -> Result<E2eRun, ParseError> {
    match junit::parse(junit)? {
        Junit::E2e(mut run) => {
            run.log = log.map(e2elog::parse);
            Ok(*run)
        }
        Junit::Tempest(_) => Err(ParseError::whole("a Tempest JUnit, not an e2e run")),
    }
}

pub use junit::parse as parse_junit;
pub use kubebench::parse as parse_kube_bench;
pub use subunit::parse as parse_subunit;
// For the property targets in fuzz/ (issue #14): each file kind reached without a path.
#[doc(hidden)]
pub use {
    e2elog::parse as parse_e2e_log, kubebench::ingest as ingest_kube_bench,
    sonobuoy::ingest as ingest_sonobuoy, subunit::ingest as ingest_subunit,
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_from_one() {
        let d = b"ab\ncd\nef";
        assert_eq!(line_col(d, 0), "line 1:1");
        assert_eq!(line_col(d, 4), "line 2:2");
        assert_eq!(line_col(d, 99), "line 3:3");
    }

    #[test]
    fn sha256_of_abc() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn naive_timestamps_are_utc() {
        let t = naive_utc("2025-05-09T00:25:58").unwrap();
        assert_eq!(t.to_rfc3339(), "2025-05-09T00:25:58+00:00");
        assert!(naive_utc("yesterday").is_none());
    }
}
