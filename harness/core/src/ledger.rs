//! The per-test results of upstream suites (Tempest, the Kubernetes e2e sets), kept as they
//! arrive so that nothing an hour-long suite finished is lost: `DIR/upstream.journal`, one
//! JSON line per test, appended and flushed to disk in batches.
//!
//! A check's own result reaches the run's journal only when the check ends; a suite that runs
//! for hours under one check would lose everything to a kill. With the ledger:
//! - `run --resume DIR` reads the killed run's ledger back ([`Ledger::resume`]); the suite runs
//!   only the tests without a result and judges the union.
//! - `run --rerun-failed OLD/results.json` carries the tests that passed or were skipped in
//!   the old run over ([`Ledger::rerun`]), each line marked with the run it came from, and
//!   the suite re-runs only the tests that failed or never reported.
//!
//! The ledger is the evidence behind the check's verdict, not a second verdict: the check's
//! outcome (in results.json) names how many tests were carried over and from which run.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

/// The ledger's file name in a run's output directory.
pub const FILE: &str = "upstream.journal";

/// The longest line read back: longer ones (a hostile or damaged file) end the reading there.
const MAX_LINE: usize = 64 * 1024;

/// How one upstream test ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TestStatus {
    /// It passed.
    Passed,
    /// It failed.
    Failed,
    /// The suite skipped it.
    Skipped,
}

/// One upstream test's result, as the ledger keeps it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TestRecord {
    /// Which suite's tests: `tempest`, `k8s-e2e:<set>`.
    pub stream: String,
    /// The test's full ID as the suite names it.
    pub test: String,
    /// How it ended.
    pub status: TestStatus,
    /// The suite's reason or failure excerpt (already masked by the area), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Seconds it took.
    #[serde(default)]
    pub secs: f64,
    /// The run the result was observed in, when it was carried over from another run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub carried_from: Option<String>,
}

/// The run's ledger: where new results go, and what an earlier run left to build on.
pub struct Ledger {
    path: Option<PathBuf>,
    /// Opened at the first append (a run without upstream tests leaves no file); `fresh`: a
    /// new run's, truncated then.
    file: Mutex<Option<File>>,
    fresh: bool,
    prior: HashMap<String, Vec<TestRecord>>,
    origin: Option<String>,
}

impl std::fmt::Debug for Ledger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ledger")
            .field("path", &self.path)
            .field("prior", &self.prior.values().map(Vec::len).sum::<usize>())
            .field("origin", &self.origin)
            .finish()
    }
}

impl Ledger {
    /// A ledger that keeps nothing (tests, runs without an output directory).
    pub fn none() -> Self {
        Self {
            path: None,
            file: Mutex::new(None),
            fresh: false,
            prior: HashMap::new(),
            origin: None,
        }
    }

    /// A new run's ledger in `dir` (mode 0600, written at the first test; a link at its name
    /// is refused now, before the run starts).
    pub fn create(dir: &Path) -> std::io::Result<Self> {
        let path = dir.join(FILE);
        refuse_link(&path)?;
        Ok(Self {
            path: Some(path),
            file: Mutex::new(None),
            fresh: true,
            prior: HashMap::new(),
            origin: None,
        })
    }

    /// A resumed run's ledger: the killed run's results in `dir` are its prior results (every
    /// status: a test that failed keeps its failure), and new ones are appended to the same
    /// file. A torn last line (the kill) is dropped; a missing file is an empty ledger.
    pub fn resume(dir: &Path, run_id: &str) -> std::io::Result<Self> {
        let path = dir.join(FILE);
        refuse_link(&path)?;
        let records = if path.exists() {
            read(&path)?
        } else {
            Vec::new()
        };
        Ok(Self {
            path: Some(path),
            file: Mutex::new(None),
            fresh: false,
            prior: group(records),
            origin: Some(run_id.to_owned()),
        })
    }

    /// A `--rerun-failed` run's ledger in `dir`: the tests that passed or were skipped in the
    /// earlier run (its ledger beside its results.json, `old_dir`) are carried over, written
    /// into the new ledger marked with `old_run`, and are this run's prior results; failures
    /// are not, so the suite runs them again. An earlier run without a ledger carries nothing.
    pub fn rerun(dir: &Path, old_dir: &Path, old_run: &str) -> std::io::Result<Self> {
        let old = old_dir.join(FILE);
        // The last record of a test decides (a resumed run may have recorded it twice).
        let mut streams: Vec<(String, Vec<TestRecord>)> = if old.exists() {
            group(read(&old)?).into_iter().collect()
        } else {
            Vec::new()
        };
        streams.sort_by(|a, b| a.0.cmp(&b.0));
        let carried: Vec<TestRecord> = streams
            .into_iter()
            .flat_map(|(_, list)| list)
            .filter(|r| r.status != TestStatus::Failed)
            .map(|mut r| {
                r.carried_from.get_or_insert_with(|| old_run.to_owned());
                r
            })
            .collect();
        let ledger = Self::create(dir)?;
        ledger.append(&carried)?;
        Ok(Self {
            prior: group(carried),
            origin: Some(old_run.to_owned()),
            ..ledger
        })
    }

    /// What an earlier run settled for `stream`: on `--resume`, every test the killed run
    /// finished; on `--rerun-failed`, the tests the old run passed or skipped. Later records
    /// of a test replace earlier ones.
    pub fn prior(&self, stream: &str) -> &[TestRecord] {
        self.prior.get(stream).map_or(&[], Vec::as_slice)
    }

    /// The run the prior results come from (the resumed run itself, or the rerun's source).
    pub fn origin(&self) -> Option<&str> {
        self.origin.as_deref()
    }

    /// Appends results and flushes them to disk; a ledger without a file keeps nothing.
    pub fn append(&self, records: &[TestRecord]) -> std::io::Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        let Some(path) = &self.path else {
            return Ok(());
        };
        let mut guard = self.file.lock().unwrap_or_else(|p| p.into_inner());
        let file = match guard.as_mut() {
            Some(f) => f,
            None => guard.insert(open_append(path, self.fresh)?),
        };
        let mut text = String::new();
        for r in records {
            // A record is plain data: serialising it cannot fail.
            text.push_str(&serde_json::to_string(r).unwrap_or_default());
            text.push('\n');
        }
        file.write_all(text.as_bytes())?;
        file.sync_data()
    }

    /// The file, if the ledger keeps one.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }
}

fn refuse_link(path: &Path) -> std::io::Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if !m.is_file() => Err(std::io::Error::other(format!(
            "{} is not a regular file (a link or a directory)",
            path.display()
        ))),
        _ => Ok(()),
    }
}

fn open_append(path: &Path, truncate: bool) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    // O_NOFOLLOW: never written through a link planted at its name.
    let mut options = OpenOptions::new();
    options
        .create(true)
        .mode(0o600)
        .custom_flags(nix::libc::O_NOFOLLOW);
    if truncate {
        options.write(true).truncate(true);
    } else {
        // Read too: a torn last line is found and cut before the first append.
        options.read(true).append(true);
    }
    let file = options.open(path)?;
    if !truncate {
        trim_torn_tail(&file)?;
    }
    Ok(file)
}

/// Cuts a last line without its newline (a write the kill interrupted), so that appends
/// start on a line of their own.
fn trim_torn_tail(file: &File) -> std::io::Result<()> {
    use std::io::{Read, Seek, SeekFrom};
    let len = file.metadata()?.len();
    if len == 0 {
        return Ok(());
    }
    let mut reader = file;
    let start = len.saturating_sub(MAX_LINE as u64);
    reader.seek(SeekFrom::Start(start))?;
    let mut tail = Vec::new();
    reader.take(MAX_LINE as u64).read_to_end(&mut tail)?;
    if tail.last() == Some(&b'\n') {
        return Ok(());
    }
    let keep = tail
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(start, |i| start + i as u64 + 1);
    file.set_len(keep)
}

/// Reads a ledger: every whole line that parses; a torn or foreign line is skipped (it was
/// never a result), and reading stops at an overlong one.
pub fn read(path: &Path) -> std::io::Result<Vec<TestRecord>> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(path)?;
    Ok(parse(BufReader::new(file)))
}

/// The records of a ledger's text (for [`read`] and the fuzz targets).
pub fn parse(reader: impl BufRead) -> Vec<TestRecord> {
    let mut out = Vec::new();
    for line in reader.split(b'\n') {
        let Ok(line) = line else { break };
        if line.len() > MAX_LINE {
            break;
        }
        if let Ok(r) = serde_json::from_slice::<TestRecord>(&line) {
            out.push(r);
        }
    }
    out
}

/// Groups by stream, the last record of a test replacing earlier ones, in first-seen order.
fn group(records: Vec<TestRecord>) -> HashMap<String, Vec<TestRecord>> {
    let mut out: HashMap<String, Vec<TestRecord>> = HashMap::new();
    for r in records {
        let list = out.entry(r.stream.clone()).or_default();
        match list.iter_mut().find(|x| x.test == r.test) {
            Some(slot) => *slot = r,
            None => list.push(r),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(stream: &str, test: &str, status: TestStatus) -> TestRecord {
        TestRecord {
            stream: stream.into(),
            test: test.into(),
            status,
            detail: None,
            secs: 0.5,
            carried_from: None,
        }
    }

    #[test]
    fn a_resumed_ledger_keeps_every_finished_test_and_drops_a_torn_line() {
        let dir = tempfile::tempdir().unwrap();
        let first = Ledger::create(dir.path()).unwrap();
        first
            .append(&[
                rec("tempest", "a", TestStatus::Passed),
                rec("tempest", "b", TestStatus::Failed),
                rec("k8s-e2e:network", "c", TestStatus::Skipped),
            ])
            .unwrap();
        drop(first);
        // The kill interrupted a write.
        let mut f = OpenOptions::new()
            .append(true)
            .open(dir.path().join(FILE))
            .unwrap();
        f.write_all(br#"{"stream":"tempest","test":"d","sta"#)
            .unwrap();
        drop(f);

        let resumed = Ledger::resume(dir.path(), "run-1").unwrap();
        let tests: Vec<_> = resumed.prior("tempest").iter().map(|r| &r.test).collect();
        assert_eq!(tests, ["a", "b"]);
        assert_eq!(resumed.prior("k8s-e2e:network").len(), 1);
        assert!(resumed.prior("nothing").is_empty());
        resumed
            .append(&[rec("tempest", "d", TestStatus::Passed)])
            .unwrap();
        let all = read(&dir.path().join(FILE)).unwrap();
        assert_eq!(
            all.len(),
            4,
            "the torn line is gone, the new one whole: {all:?}"
        );
    }

    #[test]
    fn a_rerun_carries_passes_and_skips_never_failures() {
        let old = tempfile::tempdir().unwrap();
        let new = tempfile::tempdir().unwrap();
        Ledger::create(old.path())
            .unwrap()
            .append(&[
                rec("tempest", "a", TestStatus::Passed),
                rec("tempest", "b", TestStatus::Failed),
                rec("tempest", "c", TestStatus::Skipped),
                // Passed in the killed run, failed when resumed: the last record decides.
                rec("tempest", "d", TestStatus::Passed),
                rec("tempest", "d", TestStatus::Failed),
            ])
            .unwrap();
        let ledger = Ledger::rerun(new.path(), old.path(), "run-old").unwrap();
        let prior: Vec<_> = ledger.prior("tempest").iter().map(|r| &r.test).collect();
        assert_eq!(prior, ["a", "c"]);
        assert_eq!(ledger.origin(), Some("run-old"));
        let written = read(&new.path().join(FILE)).unwrap();
        assert_eq!(written.len(), 2);
        assert!(
            written
                .iter()
                .all(|r| r.carried_from.as_deref() == Some("run-old"))
        );
        // No ledger in the old run: nothing carried, and no file until a test ends.
        let bare = tempfile::tempdir().unwrap();
        let fresh = tempfile::tempdir().unwrap();
        let ledger = Ledger::rerun(fresh.path(), bare.path(), "run-x").unwrap();
        assert!(ledger.prior("tempest").is_empty());
        assert!(
            !fresh.path().join(FILE).exists(),
            "an empty ledger was written"
        );
        ledger
            .append(&[rec("tempest", "a", TestStatus::Passed)])
            .unwrap();
        assert_eq!(read(&fresh.path().join(FILE)).unwrap().len(), 1);
    }

    #[test]
    fn hostile_ledgers_are_read_without_panic_and_links_are_refused() {
        let text = b"not json\n{\"stream\":1}\n\xff\xfe\n{\"stream\":\"s\",\"test\":\"t\",\"status\":\"passed\"}\n";
        let got = parse(&text[..]);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].secs, 0.0);

        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "root's file\n").unwrap();
        std::os::unix::fs::symlink(&victim, dir.path().join(FILE)).unwrap();
        assert!(Ledger::create(dir.path()).is_err());
        assert!(Ledger::resume(dir.path(), "r").is_err());
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "root's file\n");
    }
}
