//! The run's journal, `DIR/results.journal`: the run's header (its results before any check
//! finished) and then every check's result, one JSON line each, written as the checks finish.
//! A run that ends normally removes it once results.json is written; a run killed with
//! SIGKILL, or a crash, leaves it, and `nfvi-verify report --from DIR/results.journal` turns
//! it into results.json and the reports, marked incomplete (`killed`), and `nfvi-verify run
//! --resume DIR` finishes the run from it.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use nfvi_harness::results::{CheckResult, RunResults};
use serde::{Deserialize, Serialize};

use crate::error::CliError;

/// The journal's file name in the output directory.
pub const FILE: &str = "results.journal";

/// What a resumed run must share with the run it finishes, besides the suite, the tool and
/// `--strict` (which the header holds). Kept in the journal's first line, next to the header,
/// and not in results.json.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ResumeKey {
    /// FNV-1a 64 of the effective target as the run used it (every default filled in, the
    /// flags applied), as hex.
    pub target_fingerprint: String,
    /// `--filter` patterns.
    pub filters: Vec<String>,
    /// `--skip` patterns.
    pub skips: Vec<String>,
    /// The check IDs a `--rerun-failed` run was limited to, sorted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub only: Option<Vec<String>>,
    /// `--timeout`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<u64>,
}

/// FNV-1a 64 of `text`, as 16 hex digits.
pub fn fingerprint(text: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// An open journal. Writing is best effort: a journal that cannot be written is reported
/// once and then left alone (the run itself goes on and writes results.json as always).
/// Every line is on disk (written and fdatasync'd) before the next check's result.
pub struct Journal {
    path: PathBuf,
    /// Locked (`flock`, exclusive) for as long as the run lives: `run --resume` refuses a
    /// journal whose run still holds it.
    file: Option<nix::fcntl::Flock<std::fs::File>>,
}

/// Whether a live run still holds the journal at `path` (its lock).
pub fn in_use(path: &Path) -> bool {
    let Ok(file) = std::fs::File::open(path) else {
        return false;
    };
    matches!(
        nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockSharedNonblock),
        Err((_, nix::errno::Errno::EWOULDBLOCK))
    )
}

impl Journal {
    /// Creates `DIR/results.journal` (exclusively, never through a link) with the header.
    pub fn open(dir: &Path, header: &RunResults, key: &ResumeKey) -> Self {
        let path = dir.join(FILE);
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .custom_flags(nix::libc::O_NOFOLLOW)
            .open(&path);
        let mut journal = Self::with(path, file);
        let mut first = serde_json::to_value(header).expect("results serialise");
        first["journal"] = serde_json::to_value(key).expect("keys serialise");
        journal.line(&first.to_string());
        // The directory entry too, so the journal itself survives a power cut.
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        journal
    }

    /// Reopens the journal of a killed run to append the resumed part's results, first cutting
    /// off a last line the kill left unfinished (`valid_len` bytes stay).
    pub fn reopen(path: &Path, valid_len: u64) -> Self {
        let file = std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_APPEND)
            .open(path)
            .and_then(|f| f.set_len(valid_len).map(|()| f));
        Self::with(path.to_owned(), file)
    }

    fn with(path: PathBuf, file: std::io::Result<std::fs::File>) -> Self {
        let locked = file.and_then(|f| {
            nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusiveNonblock)
                .map_err(|(_, e)| std::io::Error::from(e))
        });
        Self {
            path,
            file: match locked {
                Ok(f) => Some(f),
                Err(e) => {
                    eprintln!(
                        "warning: no journal for this run ({e}); a killed run would lose its results"
                    );
                    None
                }
            },
        }
    }

    fn line(&mut self, text: &str) {
        let Some(file) = self.file.as_mut() else {
            return;
        };
        // One write(2) per line, then fdatasync: a kill leaves whole lines and at most one
        // cut short at the end, and a power cut loses no finished check.
        let mut bytes = Vec::with_capacity(text.len() + 1);
        bytes.extend_from_slice(text.as_bytes());
        bytes.push(b'\n');
        let written = file.write_all(&bytes).and_then(|()| file.sync_data());
        if let Err(e) = written {
            eprintln!(
                "warning: the journal {} cannot be written ({e}); it stops here",
                self.path.display()
            );
            self.file = None;
        }
    }

    /// The journal's path, while it is being written (it was created or reopened and has
    /// not failed).
    pub fn path_if_open(&self) -> Option<&Path> {
        self.file.as_ref().map(|_| self.path.as_path())
    }

    /// Records a finished check.
    pub fn record(&mut self, check: &CheckResult) {
        self.line(&serde_json::to_string(check).expect("results serialise"));
    }

    /// The run wrote its results: the journal has served.
    pub fn finish(self) {
        drop(self.file);
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Whether `path` names a journal rather than a results.json.
pub fn is_journal(path: &Path) -> bool {
    path.file_name().is_some_and(|n| n == FILE)
}

/// A journal as read back.
pub struct Read {
    /// The run before any check finished.
    pub header: RunResults,
    /// What a resumed run must share with it; `None` in journals of older builds.
    pub key: Option<ResumeKey>,
    /// The finished checks, in the order they finished.
    pub checks: Vec<CheckResult>,
    /// The bytes of whole lines (a last line cut short by the kill is not counted).
    pub valid_len: u64,
}

/// Reads a journal. A last line cut short (the run was killed while writing it) is left
/// out; any other line that is not a result is bad input, named with its line.
pub fn read(path: &Path) -> Result<Read, CliError> {
    let cannot = |e: std::io::Error| {
        CliError::bad_input(format!("cannot read journal `{}`: {e}", path.display()))
    };
    let text = std::fs::read(path).map_err(cannot)?;
    let bad = |line: usize, what: String| {
        CliError::bad_input(format!("{}:{line}: {what}", path.display()))
    };
    // Whole lines, with where each ends; what follows the last newline was cut short.
    let mut lines: Vec<(&[u8], usize)> = Vec::new();
    let mut at = 0;
    while let Some(n) = text[at..].iter().position(|&b| b == b'\n') {
        lines.push((&text[at..at + n], at + n + 1));
        at += n + 1;
    }
    let Some(((first, first_end), rest)) = lines.split_first() else {
        return Err(bad(1, "empty; expected a run's journal".into()));
    };
    let first: serde_json::Value = serde_json::from_slice(first)
        .map_err(|e| bad(1, format!("not the header of an nfvi-verify journal: {e}")))?;
    let key = first
        .get("journal")
        .and_then(|k| serde_json::from_value::<ResumeKey>(k.clone()).ok());
    let header: RunResults = serde_json::from_value(first)
        .map_err(|e| bad(1, format!("not the header of an nfvi-verify journal: {e}")))?;
    if header.schema_version != nfvi_harness::results::SCHEMA_VERSION {
        return Err(bad(
            1,
            format!(
                "journal of results version {}, this nfvi-verify reads {}",
                header.schema_version,
                nfvi_harness::results::SCHEMA_VERSION
            ),
        ));
    }
    let mut checks = Vec::with_capacity(rest.len());
    let mut whole = *first_end;
    for (i, (line, end)) in rest.iter().enumerate() {
        match serde_json::from_slice::<CheckResult>(line) {
            Ok(c) => {
                checks.push(c);
                whole = *end;
            }
            // Torn by a crash while it was written: the last line only.
            Err(_) if i + 1 == rest.len() => {}
            Err(e) => return Err(bad(i + 2, format!("not a check result: {e}"))),
        }
    }
    Ok(Read {
        header,
        key,
        checks,
        valid_len: whole as u64,
    })
}

/// The results of the run a journal belongs to, marked incomplete (`killed`).
pub fn recover(path: &Path) -> Result<RunResults, CliError> {
    let r = read(path)?;
    Ok(RunResults::recover(r.header, r.checks))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_torn_last_line_is_left_out_and_cut_before_appending() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE);
        // Not a header: the first line must be one.
        std::fs::write(&path, "{}\n").unwrap();
        assert!(read(&path).is_err());
        std::fs::write(&path, "").unwrap();
        assert!(read(&path).is_err());
        // A line in the middle that is no result is bad input, named with its line.
        let header = "{\"schema_version\":0}";
        std::fs::write(&path, format!("{header}\nnot json\n{{}}\n")).unwrap();
        let err = read(&path).err().unwrap().to_string();
        assert!(err.contains(":1:") || err.contains(":2:"), "{err}");
    }

    #[test]
    fn a_journal_is_in_use_while_its_run_holds_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE);
        std::fs::write(&path, "header\n").unwrap();
        assert!(!in_use(&path), "nobody holds it");
        let j = Journal::reopen(&path, "header\n".len() as u64);
        assert!(in_use(&path), "the run that writes it holds it");
        drop(j);
        assert!(
            !in_use(&path),
            "a run that ended (or was killed) holds nothing"
        );
        assert!(!in_use(&dir.path().join("absent")));
    }

    #[test]
    fn reopening_cuts_the_torn_line_and_appends_whole_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE);
        std::fs::write(&path, "line one\nline tw").unwrap();
        let mut j = Journal::reopen(&path, "line one\n".len() as u64);
        j.line("line two");
        drop(j);
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "line one\nline two\n"
        );
        assert_eq!(fingerprint("x"), fingerprint("x"));
    }
}
