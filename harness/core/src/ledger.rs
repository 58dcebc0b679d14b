//! The per-test results of upstream suites (Tempest, the Kubernetes e2e sets), kept as they
//! reach the harness so that nothing a long suite reported is lost: `DIR/upstream.journal`, a
//! header line (the run and its target's fingerprint), then one JSON line per test, appended
//! and flushed to disk in batches (Tempest's as each test ends, an e2e set's when the set's
//! results are collected).
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

/// The longest line read back: longer ones (a hostile or damaged file) are skipped.
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

/// Which earlier run a ledger builds on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LedgerMode {
    /// `--resume`: the same run, killed; every test it finished is settled.
    Resume,
    /// `--rerun-failed`: another run; its passed and skipped tests are carried over.
    Rerun,
}

/// The ledger's first line: whose results follow. Results are carried over only from a
/// ledger of the run named (its results.json's or journal's run ID) and of the same target.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Header {
    /// The format (1).
    pub ledger: u32,
    /// The run that wrote it.
    pub run_id: String,
    /// The fingerprint of the run's effective target.
    pub target: String,
}

/// A ledger as read: its header (if its first line is one) and its records.
#[derive(Debug, Default, PartialEq)]
pub struct Parsed {
    /// The first line, when it is a header.
    pub header: Option<Header>,
    /// Every whole record line, in order.
    pub records: Vec<TestRecord>,
}

/// The run's ledger: where new results go, and what an earlier run left to build on.
pub struct Ledger {
    path: Option<PathBuf>,
    /// Opened at the first append (a run without upstream tests leaves no file); `fresh`: a
    /// new run's, truncated then. The header is written first into an empty file.
    file: Mutex<Option<File>>,
    fresh: bool,
    header: Header,
    prior: HashMap<String, Vec<TestRecord>>,
    origin: Option<(String, LedgerMode)>,
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
            header: Header {
                ledger: 1,
                run_id: String::new(),
                target: String::new(),
            },
            prior: HashMap::new(),
            origin: None,
        }
    }

    /// A new run's ledger in `dir` for run `run_id` on the target with fingerprint `target`
    /// (mode 0600, written at the first test; a link at its name is refused now, before the
    /// run starts).
    pub fn create(dir: &Path, run_id: &str, target: &str) -> std::io::Result<Self> {
        let path = dir.join(FILE);
        refuse_link(&path)?;
        Ok(Self {
            path: Some(path),
            file: Mutex::new(None),
            fresh: true,
            header: Header {
                ledger: 1,
                run_id: run_id.to_owned(),
                target: target.to_owned(),
            },
            prior: HashMap::new(),
            origin: None,
        })
    }

    /// A resumed run's ledger: the killed run's results in `dir` are its prior results (every
    /// status: a test that failed keeps its failure), and new ones are appended to the same
    /// file. A torn last line (the kill) is dropped; a missing file is an empty ledger; a
    /// ledger of another run or target settles nothing (the second value says why).
    pub fn resume(
        dir: &Path,
        run_id: &str,
        target: &str,
    ) -> std::io::Result<(Self, Option<String>)> {
        let mut ledger = Self::create(dir, run_id, target)?;
        ledger.fresh = false;
        let path = dir.join(FILE);
        if !path.exists() {
            return Ok((ledger, None));
        }
        let parsed = read(&path)?;
        let why = mismatch(parsed.header.as_ref(), run_id, target, &path);
        if why.is_none() {
            ledger.prior = group(parsed.records);
            ledger.origin = Some((run_id.to_owned(), LedgerMode::Resume));
        }
        Ok((ledger, why))
    }

    /// A `--rerun-failed` run's ledger in `dir`: the tests that passed or were skipped in the
    /// earlier run `old_run` (its ledger beside its results.json, in `old_dir`) are carried
    /// over, written into the new ledger marked with `old_run`, and are this run's prior
    /// results; failures are not, so the suite runs them again. Nothing is carried from an
    /// earlier run without a ledger, or from a ledger of another run or another target (the
    /// second value says why).
    pub fn rerun(
        dir: &Path,
        run_id: &str,
        target: &str,
        old_dir: &Path,
        old_run: &str,
    ) -> std::io::Result<(Self, Option<String>)> {
        let mut ledger = Self::create(dir, run_id, target)?;
        let old = old_dir.join(FILE);
        if !old.exists() {
            return Ok((ledger, None));
        }
        let parsed = read(&old)?;
        if let Some(why) = mismatch(parsed.header.as_ref(), old_run, target, &old) {
            return Ok((ledger, Some(why)));
        }
        // The last record of a test decides (a resumed run may have recorded it twice).
        let mut streams: Vec<(String, Vec<TestRecord>)> =
            group(parsed.records).into_iter().collect();
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
        ledger.append(&carried)?;
        ledger.prior = group(carried);
        ledger.origin = Some((old_run.to_owned(), LedgerMode::Rerun));
        Ok((ledger, None))
    }

    /// What an earlier run settled for `stream`: on `--resume`, every test the killed run
    /// finished; on `--rerun-failed`, the tests the old run passed or skipped. Later records
    /// of a test replace earlier ones.
    pub fn prior(&self, stream: &str) -> &[TestRecord] {
        self.prior.get(stream).map_or(&[], Vec::as_slice)
    }

    /// The run the prior results come from (the resumed run itself, or the rerun's source).
    pub fn origin(&self) -> Option<&str> {
        self.origin.as_ref().map(|(run, _)| run.as_str())
    }

    /// How the prior results were settled, when there are any: a check may judge a resumed
    /// run's carried tests alone (the same run), never a rerun's (nothing observed now).
    pub fn mode(&self) -> Option<LedgerMode> {
        self.origin.as_ref().map(|(_, mode)| *mode)
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
        let mut text = String::new();
        let file = match guard.as_mut() {
            Some(f) => f,
            None => {
                let f = open_append(path, self.fresh)?;
                if f.metadata()?.len() == 0 {
                    // Plain data: serialising it cannot fail.
                    text.push_str(&serde_json::to_string(&self.header).unwrap_or_default());
                    text.push('\n');
                }
                guard.insert(f)
            }
        };
        for r in records {
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

/// Why a ledger's results may not be carried: another run's, another target's, or no header.
fn mismatch(header: Option<&Header>, run_id: &str, target: &str, path: &Path) -> Option<String> {
    let shown = path.display();
    match header {
        None => Some(format!(
            "{shown} has no header naming its run and target; nothing carried over"
        )),
        Some(h) if h.run_id != run_id => Some(format!(
            "{shown} is run {}'s, not run {run_id}'s; nothing carried over",
            h.run_id
        )),
        Some(h) if h.target != target => Some(format!(
            "{shown} was written against another target (fingerprint {}, this run's {target}); nothing carried over",
            h.target
        )),
        Some(_) => None,
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

/// Reads a ledger (not through a link): its header and every whole record line.
pub fn read(path: &Path) -> std::io::Result<Parsed> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(path)?;
    Ok(parse(BufReader::new(file)))
}

/// The header and records of a ledger's text (for [`read`] and the fuzz targets). A line
/// that is neither (torn, foreign) is skipped, as is a line over `MAX_LINE` (64 KiB) (never held
/// whole in memory); reading stops after [`MAX_BYTES`].
pub fn parse(reader: impl BufRead) -> Parsed {
    let mut reader = reader.take(MAX_BYTES);
    let mut out = Parsed::default();
    let mut line = Vec::new();
    let mut first = true;
    loop {
        line.clear();
        match read_bounded_line(&mut reader, &mut line) {
            Ok(None) | Err(_) => break,
            Ok(Some(false)) => {} // over MAX_LINE: skipped
            Ok(Some(true)) => {
                if first && let Ok(h) = serde_json::from_slice::<Header>(&line) {
                    out.header = Some(h);
                } else if let Ok(r) = serde_json::from_slice::<TestRecord>(&line) {
                    out.records.push(r);
                }
            }
        }
        first = false;
    }
    out
}

/// The most of a ledger read back.
pub const MAX_BYTES: u64 = 256 * 1024 * 1024;

/// Reads up to the next newline into `line`, keeping at most [`MAX_LINE`] bytes: `None` at
/// the end, `Some(true)` for a line kept whole, `Some(false)` for one too long (its rest read
/// and dropped).
fn read_bounded_line(
    reader: &mut impl BufRead,
    line: &mut Vec<u8>,
) -> std::io::Result<Option<bool>> {
    let mut any = false;
    let mut fits = true;
    loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            return Ok(any.then_some(fits));
        }
        any = true;
        let (chunk, done) = match buf.iter().position(|&b| b == b'\n') {
            Some(i) => (&buf[..i], Some(i + 1)),
            None => (buf, None),
        };
        if fits && line.len() + chunk.len() <= MAX_LINE {
            line.extend_from_slice(chunk);
        } else {
            fits = false;
            line.clear();
        }
        let used = done.unwrap_or(buf.len());
        reader.consume(used);
        if done.is_some() {
            return Ok(Some(fits));
        }
    }
}

/// Groups by stream, the last record of a test replacing earlier ones, in first-seen order.
fn group(records: Vec<TestRecord>) -> HashMap<String, Vec<TestRecord>> {
    let mut out: HashMap<String, Vec<TestRecord>> = HashMap::new();
    let mut at: HashMap<(String, String), usize> = HashMap::new();
    for r in records {
        let list = out.entry(r.stream.clone()).or_default();
        match at.get(&(r.stream.clone(), r.test.clone())) {
            Some(&i) => list[i] = r,
            None => {
                at.insert((r.stream.clone(), r.test.clone()), list.len());
                list.push(r);
            }
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
        let first = Ledger::create(dir.path(), "run-1", "fp").unwrap();
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

        let (resumed, why) = Ledger::resume(dir.path(), "run-1", "fp").unwrap();
        assert_eq!(why, None);
        assert_eq!(resumed.mode(), Some(LedgerMode::Resume));
        let tests: Vec<_> = resumed.prior("tempest").iter().map(|r| &r.test).collect();
        assert_eq!(tests, ["a", "b"]);
        assert_eq!(resumed.prior("k8s-e2e:network").len(), 1);
        assert!(resumed.prior("nothing").is_empty());
        resumed
            .append(&[rec("tempest", "d", TestStatus::Passed)])
            .unwrap();
        let all = read(&dir.path().join(FILE)).unwrap();
        assert_eq!(all.header.as_ref().unwrap().run_id, "run-1");
        assert_eq!(
            all.records.len(),
            4,
            "the torn line is gone, the new one whole: {all:?}"
        );
        // Another run's or another target's ledger settles nothing.
        let (other, why) = Ledger::resume(dir.path(), "run-2", "fp").unwrap();
        assert!(other.prior("tempest").is_empty() && other.mode().is_none());
        assert!(why.unwrap().contains("is run run-1's, not run run-2's"));
        let (other, why) = Ledger::resume(dir.path(), "run-1", "fp2").unwrap();
        assert!(other.prior("tempest").is_empty());
        assert!(why.unwrap().contains("another target"));
    }

    #[test]
    fn a_rerun_carries_passes_and_skips_never_failures() {
        let old = tempfile::tempdir().unwrap();
        let new = tempfile::tempdir().unwrap();
        Ledger::create(old.path(), "run-old", "fp")
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
        let (ledger, why) =
            Ledger::rerun(new.path(), "run-new", "fp", old.path(), "run-old").unwrap();
        assert_eq!(why, None);
        let prior: Vec<_> = ledger.prior("tempest").iter().map(|r| &r.test).collect();
        assert_eq!(prior, ["a", "c"]);
        assert_eq!(ledger.origin(), Some("run-old"));
        assert_eq!(ledger.mode(), Some(LedgerMode::Rerun));
        let written = read(&new.path().join(FILE)).unwrap();
        assert_eq!(written.header.unwrap().run_id, "run-new");
        assert_eq!(written.records.len(), 2);
        assert!(
            written
                .records
                .iter()
                .all(|r| r.carried_from.as_deref() == Some("run-old"))
        );
        // The results.json of another run next to this ledger, or another target: nothing.
        let other = tempfile::tempdir().unwrap();
        let (ledger, why) =
            Ledger::rerun(other.path(), "run-new", "fp", old.path(), "run-else").unwrap();
        assert!(ledger.prior("tempest").is_empty() && ledger.mode().is_none());
        assert!(why.unwrap().contains("not run run-else's"));
        let (ledger, why) =
            Ledger::rerun(other.path(), "run-new", "fp-b", old.path(), "run-old").unwrap();
        assert!(ledger.prior("tempest").is_empty());
        assert!(why.unwrap().contains("another target"));
        // No ledger in the old run: nothing carried, and no file until a test ends.
        let bare = tempfile::tempdir().unwrap();
        let fresh = tempfile::tempdir().unwrap();
        let (ledger, why) =
            Ledger::rerun(fresh.path(), "run-new", "fp", bare.path(), "run-x").unwrap();
        assert!(ledger.prior("tempest").is_empty() && why.is_none());
        assert!(
            !fresh.path().join(FILE).exists(),
            "an empty ledger was written"
        );
        ledger
            .append(&[rec("tempest", "a", TestStatus::Passed)])
            .unwrap();
        assert_eq!(read(&fresh.path().join(FILE)).unwrap().records.len(), 1);
    }

    #[test]
    fn hostile_ledgers_are_read_without_panic_and_links_are_refused() {
        let text = b"not json\n{\"stream\":1}\n\xff\xfe\n{\"stream\":\"s\",\"test\":\"t\",\"status\":\"passed\"}\n";
        let got = parse(&text[..]);
        assert_eq!(got.records.len(), 1);
        assert_eq!(got.header, None, "a header counts only as the first line");
        assert_eq!(got.records[0].secs, 0.0);
        // A line far over the limit is skipped without being held, and reading goes on.
        let mut long = vec![b'x'; 3 * MAX_LINE];
        long.extend_from_slice(b"\n{\"stream\":\"s\",\"test\":\"u\",\"status\":\"failed\"}");
        let got = parse(std::io::BufReader::with_capacity(1024, &long[..]));
        assert_eq!(got.records.len(), 1);
        assert_eq!(got.records[0].test, "u");
        // Many records of few tests group in linear time, the last one deciding.
        let many: Vec<TestRecord> = (0..200_000)
            .map(|i| rec("s", &format!("t{}", i % 1000), TestStatus::Passed))
            .collect();
        assert_eq!(group(many)["s"].len(), 1000);

        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "root's file\n").unwrap();
        std::os::unix::fs::symlink(&victim, dir.path().join(FILE)).unwrap();
        assert!(Ledger::create(dir.path(), "r", "fp").is_err());
        assert!(Ledger::resume(dir.path(), "r", "fp").is_err());
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "root's file\n");
    }
}
