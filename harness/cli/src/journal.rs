//! The run's journal, `DIR/results.journal`: the run's header (its results before any check
//! finished) and then every check's result, one JSON line each, written as the checks finish.
//! A run that ends normally removes it once results.json is written; a run killed with
//! SIGKILL, or a crash, leaves it, and `nfvi-verify report --from DIR/results.journal` turns
//! it into results.json and the reports, marked incomplete (`killed`).

use std::io::{BufRead, Write};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use nfvi_harness::results::{CheckResult, RunResults};

use crate::error::CliError;

/// The journal's file name in the output directory.
pub const FILE: &str = "results.journal";

/// An open journal. Writing is best effort: a journal that cannot be written is reported
/// once and then left alone (the run itself goes on and writes results.json as always).
pub struct Journal {
    path: PathBuf,
    file: Option<std::io::BufWriter<std::fs::File>>,
}

impl Journal {
    /// Creates `DIR/results.journal` (exclusively, never through a link) with the header.
    pub fn open(dir: &Path, header: &RunResults) -> Self {
        let path = dir.join(FILE);
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .custom_flags(nix::libc::O_NOFOLLOW)
            .open(&path);
        let mut journal = Self {
            path,
            file: match file {
                Ok(f) => Some(std::io::BufWriter::new(f)),
                Err(e) => {
                    eprintln!(
                        "warning: no journal for this run ({e}); a killed run would lose its results"
                    );
                    None
                }
            },
        };
        journal.line(&serde_json::to_string(header).expect("results serialise"));
        journal
    }

    fn line(&mut self, text: &str) {
        let Some(file) = self.file.as_mut() else {
            return;
        };
        let written = file
            .write_all(text.as_bytes())
            .and_then(|()| file.write_all(b"\n"))
            .and_then(|()| file.flush());
        if let Err(e) = written {
            eprintln!(
                "warning: the journal {} cannot be written ({e}); it stops here",
                self.path.display()
            );
            self.file = None;
        }
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

/// The results of the run a journal belongs to, marked incomplete (`killed`). A last line
/// cut short (the run was killed while writing it) is left out; any other line that is not
/// a result is bad input, named with its line.
pub fn recover(path: &Path) -> Result<RunResults, CliError> {
    let file = std::fs::File::open(path).map_err(|e| {
        CliError::bad_input(format!("cannot read journal `{}`: {e}", path.display()))
    })?;
    let lines: Vec<String> = std::io::BufReader::new(file)
        .lines()
        .collect::<Result<_, _>>()
        .map_err(|e| {
            CliError::bad_input(format!("cannot read journal `{}`: {e}", path.display()))
        })?;
    let bad = |line: usize, what: String| {
        CliError::bad_input(format!("{}:{line}: {what}", path.display()))
    };
    let Some((first, rest)) = lines.split_first() else {
        return Err(bad(1, "empty; expected a run's journal".into()));
    };
    let header: RunResults = serde_json::from_str(first)
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
    for (i, line) in rest.iter().enumerate() {
        match serde_json::from_str::<CheckResult>(line) {
            Ok(c) => checks.push(c),
            // Cut short by the kill: the last line only.
            Err(_) if i + 1 == rest.len() => {}
            Err(e) => return Err(bad(i + 2, format!("not a check result: {e}"))),
        }
    }
    Ok(RunResults::recover(header, checks))
}
