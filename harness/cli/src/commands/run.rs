//! `run`: resumes a killed run or reruns a previous one's failures when asked, opens the
//! session (over a fleet when the target names one), runs the plan with the console and the
//! journal as reporters, writes the reports and maps the verdict to the exit code; a panic
//! on the way still saves what the run observed.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nfvi_harness::fleet::{AgentRequest, FleetError, NodeSpec};
use nfvi_harness::ledger::Ledger;
use nfvi_harness::plan::{Plan, PlanOptions};
use nfvi_harness::results::{CheckResult, Invocation, RunMeta, RunResults};
use nfvi_harness::runner::{Reporter, RunEvent, Tee};
use nfvi_harness::{RunnerBuilder, Session, exit_code};
use nfvi_reports::Artifacts;

use super::outdir::{
    init_logging, keep_inputs, prepare_out_dir, reproduce, run_id, save_elsewhere,
};
use super::panicked::{Observed, save_after_panic};
use super::{CmdResult, build_plan, prepare, tool};
use crate::chain;
use crate::cli::RunArgs;
use crate::console::{Console, use_bar};
use crate::error::CliError;

/// Collects the finished checks for results.json, and writes each to the run's journal as
/// it finishes.
struct Collector<'p> {
    plan: &'p Plan,
    runs: Vec<nfvi_harness::results::CheckRun>,
    journal: Option<crate::journal::Journal>,
    /// The same results, kept outside the run for [`save_after_panic`].
    observed: &'p mut Vec<CheckResult>,
}

impl Reporter for Collector<'_> {
    fn report(&mut self, event: &RunEvent<'_>) {
        if let RunEvent::CheckFinished { run, .. } = event {
            // Kept before the journal is written: should that panic, the result stays.
            let result = CheckResult::of(self.plan, (*run).clone());
            self.observed.push(result.clone());
            self.runs.push((*run).clone());
            if let Some(journal) = self.journal.as_mut() {
                journal.record(&result);
            }
            if self.runs.len() == 1 {
                nfvi_harness::panics::inject("check-finished");
            }
        }
    }
}

/// `run`. Should nfvi-verify panic once the run's journal is open, the results it observed
/// until then are written all the same, from the journal, marked incomplete (`panic`), with
/// where it panicked as their harness error; the error names it too (exit 3).
pub fn run(args: &RunArgs) -> CmdResult {
    // What the run observed, should it panic.
    let mut observed = Observed::default();
    let panic = match nfvi_harness::panics::catch(|| run_journaled(args, &mut observed)) {
        // A reporter panicked: the runner stopped the checks, they cleaned up, the session
        // closed, and the run returned its results unwritten.
        Ok(Err(CliError::Panicked { panic, saved: None })) => panic,
        Ok(result) => return result,
        Err(panic) => panic,
    };
    // A panic while saving must not take the place of the first one, which the error names.
    let saved = nfvi_harness::panics::catch(|| save_after_panic(&observed, &panic))
        .unwrap_or_else(|p| format!("no results were saved: saving them panicked too ({p})"));
    Err(CliError::Panicked {
        panic,
        saved: Some(saved),
    })
}

fn run_journaled(args: &RunArgs, observed: &mut Observed) -> CmdResult {
    let previous = match &args.rerun_failed {
        Some(path) => Some(RunResults::load(path)?),
        None => None,
    };
    let resume = match &args.resume {
        Some(dir) => Some(crate::resume::load(dir)?),
        None => None,
    };
    let suite = match (&args.suite, &previous, &resume) {
        (_, _, Some(r)) => r.header.suite.name.clone(),
        (Some(s), _, _) => s.clone(),
        (None, Some(prev), _) => prev.suite.name.clone(),
        (None, None, None) => {
            let model =
                nfvi_reference_model::load_embedded().map_err(|e| CliError::Build(chain(&e)))?;
            let names: Vec<&str> = model.suites().map(|s| s.name.as_str()).collect();
            return Err(CliError::bad_input(format!(
                "missing --suite; expected one of: {}",
                names.join(", ")
            )));
        }
    };
    let waivers = match (&args.waivers, &resume) {
        (Some(_), Some(_)) => {
            return Err(CliError::bad_input(
                "--waivers cannot be given to --resume: the run keeps the waivers it started with",
            ));
        }
        (Some(path), None) => Some(
            nfvi_harness::waiver::Waivers::load(path)
                .map_err(|e| CliError::bad_input(e.to_string()))?,
        ),
        (None, _) => None,
    };
    // A resume without --target takes the killed run's own, kept as DIR/target.toml (read
    // only from a directory no other user controls).
    let kept;
    let selection = match (&resume, &args.selection.target) {
        (Some(r), None) if r.dir.join("target.toml").is_file() => {
            crate::trusted::check_source_dir(&r.dir).map_err(CliError::bad_input)?;
            let file = r.dir.join("target.toml");
            eprintln!(
                "nfvi-verify: resuming with the killed run's target, {}",
                file.display()
            );
            kept = crate::cli::Selection {
                target: Some(file),
                ..args.selection.clone()
            };
            &kept
        }
        _ => &args.selection,
    };
    let p = prepare(selection)?;
    let target_fingerprint = crate::journal::fingerprint(&p.target.resolved_toml());
    if let Some(r) = &resume {
        r.check(&crate::resume::Asked {
            suite: args.suite.as_deref(),
            filters: &args.selection.filter,
            skips: &args.selection.skip,
            strict: args.strict,
            tool: &tool(),
            target_fingerprint: &target_fingerprint,
            target_file: p.target.file.as_ref().map(|f| f.display().to_string()),
        })?;
    }
    let mut only = previous.as_ref().map(|prev| {
        prev.rerun_candidates()
            .map(str::to_owned)
            .collect::<HashSet<_>>()
    });
    let mut key = crate::journal::ResumeKey {
        target_fingerprint,
        filters: args.selection.filter.clone(),
        skips: args.selection.skip.clone(),
        only: None,
        timeout: args.timeout,
    };
    let mut strict = args.strict;
    if let Some(r) = &resume {
        // The killed run's selection, whatever the command line left out.
        key = crate::journal::ResumeKey {
            timeout: args.timeout.or(r.key.timeout),
            ..r.key.clone()
        };
        only = r.key.only.clone().map(|o| o.into_iter().collect());
        strict = r.header.strict;
    }
    key.only = only.as_ref().map(|o| {
        let mut v: Vec<String> = o.iter().cloned().collect();
        v.sort();
        v
    });
    let options = PlanOptions {
        suite: suite.clone(),
        filters: key.filters.clone(),
        skips: key.skips.clone(),
        only,
        strict,
    };
    let plan = build_plan(&p, &options)?;
    if let (Some(prev), true) = (&previous, plan.items.is_empty()) {
        eprintln!(
            "nfvi-verify: nothing to rerun: run {} has no failed, errored, timed-out or unstarted checks",
            prev.run_id
        );
        return Ok(exit_code::CONFORMANT);
    }

    let run_id = resume
        .as_ref()
        .map_or_else(run_id, |r| r.header.run_id.clone());
    let (dir, latest_root) = match (&args.out, &resume) {
        (_, Some(r)) => (r.dir.clone(), None),
        (Some(d), None) => (d.clone(), None),
        (None, None) => {
            let root = PathBuf::from("nfvi-results");
            (root.join(&run_id), Some(root))
        }
    };
    // The fleet first: a bad inventory is bad input, and nothing is written for it.
    let transport = p.areas.transport(&p.target).map_err(|e| match e {
        FleetError::Input(m) => CliError::BadInput(m),
        FleetError::Unavailable(m) => CliError::Incomplete(m),
    })?;
    if resume.is_some() && transport.is_some() {
        return Err(CliError::bad_input(
            "cannot resume a run over a fleet (yet): `report --from DIR` renders what it has, and `run --rerun-failed DIR/results.json` runs the rest",
        ));
    }
    // The files the areas read (evidence of other tools) are input too: checked before
    // anything is created.
    p.areas.preflight(&p.target).map_err(CliError::BadInput)?;
    if resume.is_none() {
        prepare_out_dir(&dir)?;
        keep_inputs(&dir, &p.target, waivers.as_ref())?;
    } else {
        crate::trusted::check_dir(&dir).map_err(CliError::bad_input)?;
    }
    let log = init_logging(&dir, resume.is_some());
    tracing::info!(run_id = %run_id, suite = %suite, resumed = resume.is_some(), "run starting");

    let resumed_at = chrono::Utc::now();
    let started_at = resume.as_ref().map_or(resumed_at, |r| r.header.started_at);
    let target_file = p.target.file.as_ref().map(|f| f.display().to_string());
    let template = transport.as_ref().map(|_| AgentRequest {
        protocol: nfvi_harness::fleet::PROTOCOL_VERSION,
        version: env!("CARGO_PKG_VERSION").to_owned(),
        node: NodeSpec {
            name: String::new(),
            roles: Vec::new(),
            address: None,
        },
        suite: suite.clone(),
        filters: args.selection.filter.clone(),
        skips: args.selection.skip.clone(),
        checks: Vec::new(),
        strict,
        jobs: args.jobs,
        timeout_secs: key.timeout,
        target_toml: p.target.resolved_toml(),
    });
    let conditions = match &resume {
        Some(r) => r.header.conditions.clone(),
        None => nfvi_harness::judge::RunConditions {
            filters: key.filters.clone(),
            skips: key.skips.clone(),
            rerun_of: previous.as_ref().map(|prev| prev.run_id.clone()),
            timeout_override: key.timeout,
            upstream: (p.target.upstream != nfvi_harness::target::UpstreamLevel::Full)
                .then_some(p.target.upstream),
        },
    };
    // The waivers as given (resumed runs keep the killed run's).
    let waiver_list: Option<(String, Vec<nfvi_harness::waiver::Waiver>)> = match &resume {
        Some(r) => r.header.waivers.as_ref().map(|w| {
            (
                w.file.clone(),
                w.waivers.iter().map(|u| u.waiver.clone()).collect(),
            )
        }),
        None => waivers
            .as_ref()
            .map(|w| (w.file.display().to_string(), w.waivers.clone())),
    };
    let areas = p.areas.clone();
    let session = Session::open(p.areas, p.target, args.jobs)
        .map_err(|e| CliError::Incomplete(format!("cannot start the run's runtime: {e}")))?;
    let no_clean = args.no_clean
        || std::env::var_os("NFVI_VERIFY_NO_CLEAN").is_some_and(|v| !v.is_empty() && v != "0");
    if !no_clean {
        crate::clean::before_run(&session, &areas);
    }
    // Upstream suites record each test as it ends (DIR/upstream.journal): a resumed run runs
    // only the tests its killed run did not finish, a rerun only the failed ones.
    // Results are carried only from a ledger of the named run and of this target, in a
    // directory root can trust.
    let fingerprint = &key.target_fingerprint;
    let opened = match (&resume, &args.rerun_failed, &previous) {
        (Some(r), _, _) => Ledger::resume(&dir, &r.header.run_id, fingerprint),
        (None, Some(path), Some(prev)) => {
            let old_dir = path
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            match crate::trusted::check_source_dir(old_dir) {
                Ok(()) => Ledger::rerun(&dir, &run_id, fingerprint, old_dir, &prev.run_id),
                Err(why) => Ledger::create(&dir, &run_id, fingerprint).map(|l| (l, Some(why))),
            }
        }
        _ => Ledger::create(&dir, &run_id, fingerprint).map(|l| (l, None)),
    }
    .map_err(|e| {
        CliError::Incomplete(format!(
            "cannot open the upstream tests' ledger {}: {e}",
            dir.join(nfvi_harness::ledger::FILE).display()
        ))
    })?;
    let (ledger, not_carried) = opened;
    if let Some(why) = not_carried {
        tracing::warn!(reason = %why, "upstream tests are not carried over");
        eprintln!("nfvi-verify: upstream tests are not carried over: {why}");
    }
    session.shares().set_ledger(std::sync::Arc::new(ledger));
    let inventory = session.inventory();
    // In a resumed run, the checks with a result are neither run nor reported again.
    let done: HashSet<usize> = resume.as_ref().map_or_else(HashSet::new, |r| {
        let done = r.done();
        (0..plan.items.len())
            .filter(|&i| done.contains(plan.items[i].check.meta().id.as_str()))
            .collect()
    });
    let options = RunnerBuilder::default()
        .jobs(args.jobs)
        .fail_fast(args.fail_fast)
        .timeout_override(key.timeout.map(Duration::from_secs))
        .elsewhere(done.iter().copied())
        .announce(resume.is_none());
    let mut console = Console::new(use_bar(args.no_progress));
    // The journal starts with the run as it stands before any check: enough, with the
    // checks that follow it, for results.json should the run be killed.
    let header = RunResults::header(
        &plan,
        RunMeta {
            tool: tool(),
            run_id: run_id.clone(),
            target_file: target_file.clone(),
            started_at,
            finished_at: started_at,
            cancel_reason: None,
            inventory: inventory.clone(),
            fleet: None,
            invocation: Invocation {
                argv: std::env::args().collect(),
                reproduce: reproduce(args, &suite),
            },
            resource_usage: None,
            conditions: conditions.clone(),
            waivers: waiver_list.clone(),
        },
    );
    let journal = match &resume {
        Some(r) => crate::journal::Journal::reopen(&r.journal, r.valid_len),
        None => crate::journal::Journal::open(&dir, &header, &key),
    };
    observed.journal = journal.path_if_open().map(Path::to_owned);
    observed.dir = Some(dir.clone());
    // A resumed run's journal starts with the killed run's header and results.
    observed.header = Some(
        resume
            .as_ref()
            .map_or_else(|| header.clone(), |r| r.header.clone()),
    );
    observed.results = resume
        .as_ref()
        .map(|r| r.carried.clone())
        .unwrap_or_default();
    let carried = observed.results.len();
    let mut collector = Collector {
        plan: &plan,
        runs: Vec::new(),
        journal: Some(journal),
        observed: &mut observed.results,
    };
    let mut reporters = Tee(vec![&mut console, &mut collector]);
    if let Some(r) = &resume {
        eprintln!(
            "nfvi-verify: resuming run {} in {}: {} results carried over from its journal, {} of {} checks to run",
            r.header.run_id,
            dir.display(),
            r.carried.len(),
            plan.items.len() - done.len(),
            plan.items.len()
        );
        reporters.report(&RunEvent::RunStarted {
            plan: &plan,
            results: plan.items.len() - done.len(),
        });
    }
    let (output, fleet) = match (&transport, &template) {
        (Some(transport), Some(template)) => {
            let (output, fleet) =
                session.execute_fleet(&plan, options, transport.clone(), template, &mut reporters);
            for record in transport.close() {
                if let Some(e) = record.error {
                    eprintln!("warning: {}: {e}", record.action);
                }
            }
            (output, Some(fleet))
        }
        _ => (session.execute(&plan, options, &mut reporters), None),
    };
    drop(reporters);
    for record in session.close() {
        if let Some(e) = record.error {
            tracing::warn!(action = %record.action, error = %e, "closing the session");
            eprintln!("warning: {}: {e}", record.action);
        }
    }
    if let Some(panic) = output.panic {
        // A reporter panicked and heard nothing after it: the runner's own record of the
        // checks is complete (every planned check once), the reporters' may not be.
        collector.observed.truncate(carried);
        collector.observed.extend(
            output
                .runs
                .into_iter()
                .map(|run| CheckResult::of(&plan, run)),
        );
        return Err(CliError::Panicked { panic, saved: None });
    }
    nfvi_harness::panics::inject("after-checks");

    let meta = RunMeta {
        tool: tool(),
        run_id: run_id.clone(),
        target_file,
        started_at,
        finished_at: chrono::Utc::now(),
        cancel_reason: output.cancel_reason,
        inventory,
        fleet,
        invocation: Invocation {
            argv: std::env::args().collect(),
            reproduce: reproduce(args, &suite),
        },
        resource_usage: Some(nfvi_harness::results::ResourceUsage::measure()),
        conditions,
        waivers: waiver_list,
    };
    let results = match resume {
        Some(r) => RunResults::resumed(
            &plan,
            r.carried,
            collector.runs,
            RunMeta {
                // The run is the killed one's: how it was started stays.
                invocation: r.header.invocation,
                target_file: r.header.target.file,
                ..meta
            },
            resumed_at,
        ),
        None => RunResults::assemble(&plan, collector.runs, meta),
    };
    let artifacts = Artifacts::in_dir(&dir);
    let written = nfvi_reports::write_artifacts(&results, &artifacts);
    observed.written = written.is_ok();
    if let Err(failed) = written {
        // The verdict is not lost: it is printed, and results.json goes elsewhere if the
        // output directory refused it.
        summary(&results, &artifacts, log.as_deref());
        let fallback = failed
            .iter()
            .any(|e| matches!(e, nfvi_reports::ReportError::Write { path, .. } if *path == artifacts.results))
            .then(|| save_elsewhere(&results, &run_id))
            .flatten();
        return Err(CliError::Artifacts {
            verdict: verdict_words(results.verdict).to_owned(),
            failed,
            fallback,
        });
    }
    if let Some(journal) = collector.journal.take() {
        journal.finish();
    }
    if let Some(root) = latest_root {
        let link = root.join("latest");
        let _ = std::fs::remove_file(&link);
        if let Err(e) = std::os::unix::fs::symlink(&run_id, &link) {
            eprintln!("warning: cannot update {}: {e}", link.display());
        }
    }
    summary(&results, &artifacts, log.as_deref());
    Ok(run_exit_code(&results))
}

/// The verdict's exit code, except that a fleet with a node that could not be verified
/// exits 3 whatever the verdict: the NFVI was not verified completely, and CI must not
/// read "only non-conformant" (or "conformant") into that.
fn run_exit_code(results: &RunResults) -> i32 {
    let unverified = results
        .fleet
        .as_ref()
        .is_some_and(|f| f.unverified().next().is_some());
    if unverified {
        exit_code::INCOMPLETE
    } else {
        results.verdict.exit_code()
    }
}

fn verdict_words(v: nfvi_harness::results::Verdict) -> &'static str {
    match v {
        nfvi_harness::results::Verdict::Conformant => "CONFORMANT",
        nfvi_harness::results::Verdict::NonConformant => "NOT CONFORMANT",
        nfvi_harness::results::Verdict::Incomplete => "INCOMPLETE",
    }
}

fn summary(r: &RunResults, a: &Artifacts, log: Option<&Path>) {
    crate::summary::print(r, a, log);
}
