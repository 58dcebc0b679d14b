//! What a run observed, kept outside it, and what `run` saves from it when nfvi-verify
//! panics: results.json from the results reported until then (marked incomplete, `panic`),
//! then the other reports, and a sentence saying what was written and how to go on.

use std::path::PathBuf;

use nfvi_harness::results::{CheckResult, RunResults};
use nfvi_reports::Artifacts;

use crate::chain;

/// What a run observed, kept outside it so that a panic loses none of it: the journal's
/// header and every result reported (a resumed run's carried results first).
#[derive(Default)]
pub(super) struct Observed {
    /// The output directory, once the run has one.
    pub(super) dir: Option<PathBuf>,
    /// The journal, while the run writes one.
    pub(super) journal: Option<PathBuf>,
    /// The run before any check (the journal's header).
    pub(super) header: Option<RunResults>,
    /// The results reported so far.
    pub(super) results: Vec<CheckResult>,
    /// results.json was written (a later panic must not replace it).
    pub(super) written: bool,
}

/// Writes the results of a run that panicked, as it observed them until then (the results
/// its journal holds, and any the journal could not take): results.json first, then the
/// other reports (a panic there leaves results.json written). Says what it wrote.
pub(super) fn save_after_panic(observed: &Observed, panic: &nfvi_harness::panics::Panic) -> String {
    let (Some(dir), Some(header)) = (&observed.dir, &observed.header) else {
        return "no results were saved: the run had not started its checks".to_owned();
    };
    let artifacts = Artifacts::in_dir(dir);
    // The journal is removed once results.json is written.
    if observed.written || observed.journal.as_ref().is_some_and(|j| !j.exists()) {
        return format!(
            "the run had written its results before: {}",
            artifacts.results.display()
        );
    }
    nfvi_harness::panics::inject("save-results");
    let results = RunResults::recover_stopped(
        header.clone(),
        observed.results.clone(),
        nfvi_harness::cancel::CancelReason::Panic,
        Some(format!("nfvi-verify panicked {panic}")),
    );
    if let Err(e) =
        nfvi_harness::results::write_atomic(&artifacts.results, results.to_json().as_bytes())
    {
        return match &observed.journal {
            Some(journal) => format!(
                "no results were saved: cannot write {} ({e}); `nfvi-verify report --from {}` renders them from its journal",
                artifacts.results.display(),
                journal.display()
            ),
            None => format!(
                "no results were saved: cannot write {} ({e}), and the run has no journal",
                artifacts.results.display()
            ),
        };
    }
    let reports =
        match nfvi_harness::panics::catch(|| nfvi_reports::write_artifacts(&results, &artifacts)) {
            Ok(Ok(())) => "and the reports next to it".to_owned(),
            Ok(Err(failed)) => format!(
                "but not every report ({})",
                failed
                    .iter()
                    .map(|e| chain(e))
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
            Err(p) => format!("but not the reports (they panicked too, {p})"),
        };
    let then = if observed.journal.is_some() {
        format!(
            "`nfvi-verify run --resume {}` runs what did not finish",
            dir.display()
        )
    } else {
        format!(
            "the run had no journal to resume from; `nfvi-verify run --rerun-failed {}` runs what did not pass",
            artifacts.results.display()
        )
    };
    let n = results.checks.len();
    format!(
        "the {n} check result{} it observed until then {} in {}, marked incomplete (panic), {reports}; {then}",
        if n == 1 { "" } else { "s" },
        if n == 1 { "is" } else { "are" },
        artifacts.results.display(),
    )
}
