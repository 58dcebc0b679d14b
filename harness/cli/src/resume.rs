//! `nfvi-verify run --resume DIR`: finishes a run that was killed before it wrote its
//! results. The run's journal (DIR/results.journal) holds its header, what it must share
//! with the part that resumes it ([`ResumeKey`]) and the results of the checks that finished;
//! the resumed part runs the others, appends their results to the same journal and writes
//! results.json and the reports of the whole run, the carried-over results verbatim.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use nfvi_harness::SkipKind;
use nfvi_harness::results::{CheckResult, RunResults, ToolInfo};

use crate::error::CliError;
use crate::journal::{self, ResumeKey};

/// A killed run, as its journal left it.
pub struct Resume {
    /// The run's directory.
    pub dir: PathBuf,
    /// Its journal.
    pub journal: PathBuf,
    /// The run before any check finished.
    pub header: RunResults,
    /// What the resumed part must share with it.
    pub key: ResumeKey,
    /// The results to carry over, verbatim: every journaled result but "not started
    /// (interrupted)" skips, the first for each check (and node).
    pub carried: Vec<CheckResult>,
    /// The bytes of the journal's whole lines.
    pub valid_len: u64,
}

/// Reads the killed run in `dir` (or the journal `dir` names).
pub fn load(dir: &Path) -> Result<Resume, CliError> {
    let (dir, path) = if journal::is_journal(dir) {
        let parent = dir
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        (parent.to_owned(), dir.to_owned())
    } else {
        (dir.to_owned(), dir.join(journal::FILE))
    };
    if !path.exists() && dir.join("results.json").exists() {
        return Err(CliError::bad_input(format!(
            "cannot resume `{}`: the run finished and wrote its results.json; use --rerun-failed {} to run again what did not pass",
            dir.display(),
            dir.join("results.json").display()
        )));
    }
    if !path.exists() {
        return Err(CliError::bad_input(format!(
            "cannot resume `{}`: no {} there (not the output directory of a run, or one that never started a check)",
            dir.display(),
            journal::FILE
        )));
    }
    if journal::in_use(&path) {
        return Err(CliError::bad_input(format!(
            "cannot resume `{}`: the run writing it is still going (it holds {}); wait for it to finish, or stop it first",
            dir.display(),
            journal::FILE
        )));
    }
    let read = journal::read(&path)?;
    // A results.json next to the journal is either the partial one recovered from it, by
    // `report --from` or by the run itself after it panicked (which the resumed run
    // replaces), or the run's own (it finished: nothing to resume).
    let json = dir.join("results.json");
    if json.exists() {
        let recovered = RunResults::load(&json).is_ok_and(|r| {
            use nfvi_harness::cancel::CancelReason;
            r.run_id == read.header.run_id
                && matches!(
                    r.cancel_reason,
                    Some(CancelReason::Killed | CancelReason::Panic)
                )
        });
        if !recovered {
            return Err(CliError::bad_input(format!(
                "cannot resume `{}`: the run finished and wrote its results.json; use --rerun-failed {} to run again what did not pass",
                dir.display(),
                json.display()
            )));
        }
    }
    let key = read.key.ok_or_else(|| {
        CliError::bad_input(format!(
            "cannot resume `{}`: its journal was written by an nfvi-verify that did not record what a resumed run must share; `report --from {}` renders what it has",
            dir.display(),
            dir.display()
        ))
    })?;
    let mut seen = HashSet::new();
    let carried = read
        .checks
        .into_iter()
        .filter(|c| c.skip_kind != Some(SkipKind::Interrupted))
        .filter(|c| seen.insert((c.id.clone(), c.node.clone())))
        .collect();
    Ok(Resume {
        dir,
        journal: path,
        header: read.header,
        key,
        carried,
        valid_len: read.valid_len,
    })
}

/// What the command line asks of the resumed part, to compare with the killed run.
pub struct Asked<'a> {
    pub suite: Option<&'a str>,
    pub filters: &'a [String],
    pub skips: &'a [String],
    pub strict: bool,
    pub tool: &'a ToolInfo,
    pub target_fingerprint: &'a str,
    pub target_file: Option<String>,
}

impl Resume {
    /// Refuses (bad input, naming every difference) unless `asked` matches the killed run:
    /// the suite, the filters and skips (left out: the killed run's apply), `--strict`, the
    /// tool's version and commit, and the effective target.
    pub fn check(&self, asked: &Asked<'_>) -> Result<(), CliError> {
        let h = &self.header;
        let mut differs = Vec::new();
        if let Some(s) = asked.suite
            && s != h.suite.name
        {
            differs.push(format!("the suite: `{}` then, `{s}` now", h.suite.name));
        }
        if !asked.filters.is_empty() && asked.filters != self.key.filters.as_slice() {
            differs.push(format!(
                "the filters: {:?} then, {:?} now",
                self.key.filters, asked.filters
            ));
        }
        if !asked.skips.is_empty() && asked.skips != self.key.skips.as_slice() {
            differs.push(format!(
                "the skips: {:?} then, {:?} now",
                self.key.skips, asked.skips
            ));
        }
        if asked.strict && !h.strict {
            differs.push("--strict: not given then, given now".to_owned());
        }
        if (asked.tool.version.as_str(), asked.tool.git_sha.as_str())
            != (h.tool.version.as_str(), h.tool.git_sha.as_str())
        {
            differs.push(format!(
                "the tool: nfvi-verify {} ({}) then, {} ({}) now",
                h.tool.version, h.tool.git_sha, asked.tool.version, asked.tool.git_sha
            ));
        }
        if asked.target_fingerprint != self.key.target_fingerprint {
            let file = |f: &Option<String>| {
                f.as_deref()
                    .map_or_else(|| "the local default".to_owned(), |f| format!("`{f}`"))
            };
            differs.push(format!(
                "the target: {} with fingerprint {} then, {} with fingerprint {} now (give the same --target and area flags: {})",
                file(&h.target.file),
                self.key.target_fingerprint,
                file(&asked.target_file),
                asked.target_fingerprint,
                h.invocation.reproduce
            ));
        }
        if differs.is_empty() {
            Ok(())
        } else {
            Err(CliError::bad_input(format!(
                "cannot resume run {} in `{}`: {} differ{} from the killed run: {}; nothing was run",
                h.run_id,
                self.dir.display(),
                differs.len(),
                if differs.len() == 1 { "s" } else { "" },
                differs.join("; ")
            )))
        }
    }

    /// The IDs of the checks that have a result (of the machine the run verifies; a run over
    /// a fleet is not resumed).
    pub fn done(&self) -> HashSet<&str> {
        self.carried
            .iter()
            .filter(|c| c.node.is_none())
            .map(|c| c.id.as_str())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_differ_with_the_target() {
        assert_ne!(
            journal::fingerprint("a = 1\n"),
            journal::fingerprint("a = 2\n")
        );
        assert_eq!(journal::fingerprint(""), "cbf29ce484222325");
    }
}
