//! The subcommands.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nfvi_harness::fleet::{AgentRequest, FleetError, NodeSpec};
use nfvi_harness::ledger::Ledger;
use nfvi_harness::plan::{self, Decision, Plan, PlanOptions};
use nfvi_harness::results::{CheckResult, Invocation, RunMeta, RunResults, ToolInfo};
use nfvi_harness::runner::{Reporter, RunEvent, Tee};
use nfvi_harness::{Areas, Capabilities, Registry, RunnerBuilder, Session, Target, exit_code};
use nfvi_reference_model::ReferenceModel;
use nfvi_reports::Artifacts;

use crate::chain;
use crate::cli::{DiffArgs, Format, ListArgs, ReportArgs, RunArgs, Selection, TargetArgs};
use crate::console::{Console, use_bar};
use crate::error::CliError;

type CmdResult = Result<i32, CliError>;

fn tool() -> ToolInfo {
    ToolInfo {
        name: "nfvi-verify".to_owned(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        git_sha: env!("NFVI_VERIFY_GIT_SHA").to_owned(),
    }
}

fn load_model_and_registry(areas: &Areas) -> Result<(ReferenceModel, Registry), CliError> {
    // Both come with the binary; an error here is a defect in this build's data.
    let model = nfvi_reference_model::load_embedded().map_err(|e| CliError::Build(chain(&e)))?;
    let registry = Registry::new(areas.checks(), &model).map_err(|e| CliError::Build(chain(&e)))?;
    Ok((model, registry))
}

fn load_target(selection: &Selection, areas: &Areas) -> Result<Target, CliError> {
    let overrides = selection.overrides();
    let mut target = match selection.target.as_deref() {
        Some(p) => Target::load(p, areas, &overrides)?,
        None => Target::parse(Path::new("<command line>"), "", areas, &overrides)?,
    };
    if let Some(level) = selection.upstream.as_deref() {
        use nfvi_harness::target::UpstreamLevel;
        target.set_upstream(match level {
            "none" => UpstreamLevel::None,
            "smoke" => UpstreamLevel::Smoke,
            _ => UpstreamLevel::Full,
        });
    }
    Ok(target)
}

struct Prepared {
    areas: Areas,
    model: ReferenceModel,
    registry: Registry,
    target: Target,
    caps: Capabilities,
}

fn prepare(selection: &Selection) -> Result<Prepared, CliError> {
    let areas = nfvi_verify::areas();
    let (model, registry) = load_model_and_registry(&areas)?;
    let target = load_target(selection, &areas)?;
    let caps = Capabilities::detect(&target, &areas);
    Ok(Prepared {
        areas,
        model,
        registry,
        target,
        caps,
    })
}

fn build_plan(p: &Prepared, options: &PlanOptions) -> Result<Plan, CliError> {
    plan::build(&p.model, &p.registry, &p.target, &p.caps, options).map_err(CliError::from)
}

pub(crate) fn print_json(value: &impl serde::Serialize) -> CmdResult {
    let text = serde_json::to_string_pretty(value).expect("serialisable");
    println!("{text}");
    Ok(exit_code::CONFORMANT)
}

pub fn list(args: &ListArgs) -> CmdResult {
    let p = prepare(&args.selection)?;
    let options = PlanOptions {
        suite: args.suite.clone().unwrap_or_else(|| "all".to_owned()),
        filters: args.selection.filter.clone(),
        skips: args.selection.skip.clone(),
        ..Default::default()
    };
    let plan = build_plan(&p, &options)?;
    if args.format == Format::Json {
        return print_json(&plan.view());
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "suite {} ({}): {} checks, {} will run, {} skipped; target {} ({} profile)",
        plan.suite.name,
        plan.suite.version,
        plan.items.len(),
        plan.runnable(),
        plan.items.len() - plan.runnable(),
        plan.target,
        plan.profile.as_str()
    );
    let width = plan
        .items
        .iter()
        .map(|i| i.check.meta().id.len())
        .max()
        .unwrap_or(10);
    for item in &plan.items {
        let m = item.check.meta();
        let reqs: Vec<&str> = item.covers.iter().map(|r| r.as_str()).collect();
        let reqs = if reqs.is_empty() {
            "(informational)".to_owned()
        } else {
            reqs.join(", ")
        };
        let severity = if m.severity == item.effective {
            m.severity.to_string()
        } else {
            format!("{}->{}", m.severity, item.effective)
        };
        match &item.decision {
            Decision::Run => {
                let _ = writeln!(out, "  run   {:width$}  {:<11} {}", m.id, severity, reqs);
            }
            Decision::Skip(r) => {
                let _ = writeln!(
                    out,
                    "  skip  {:width$}  {:<11} {}\n        {:width$}  skipped: {}",
                    m.id, severity, reqs, "", r.message
                );
            }
        }
    }
    let areas_without: Vec<&str> = p
        .model
        .suite(&plan.suite.name)
        .map(|s| {
            s.areas
                .iter()
                .filter(|a| !plan.items.iter().any(|i| i.check.meta().area == **a))
                .map(|a| a.as_str())
                .collect()
        })
        .unwrap_or_default();
    if !areas_without.is_empty() && args.selection.filter.is_empty() {
        let _ = writeln!(
            out,
            "areas of this suite with no checks in this build: {}",
            areas_without.join(", ")
        );
    }
    print!("{out}");
    Ok(exit_code::CONFORMANT)
}

pub fn requirements(args: &ListArgs) -> CmdResult {
    let p = prepare(&args.selection)?;
    let rows = match &args.suite {
        Some(suite) => {
            let options = PlanOptions {
                suite: suite.clone(),
                filters: args.selection.filter.clone(),
                skips: args.selection.skip.clone(),
                ..Default::default()
            };
            build_plan(&p, &options)?.requirements
        }
        None => {
            // The whole catalogue, with every check of the build that covers each entry.
            let all = build_plan(
                &p,
                &PlanOptions {
                    suite: "all".into(),
                    ..Default::default()
                },
            )?;
            p.model
                .requirements()
                .map(|r| {
                    all.requirements
                        .iter()
                        .find(|row| row.id == r.id)
                        .cloned()
                        .unwrap_or_else(|| {
                            nfvi_harness::results::RequirementRow::new(r, false, true, Vec::new())
                        })
                })
                .collect()
        }
    };
    if args.format == Format::Json {
        return print_json(&rows);
    }
    let mut out = String::new();
    let kind = |k: &str| rows.iter().filter(|r| r.coverage() == k).count();
    let _ = writeln!(
        out,
        "{} requirements{}; covered by checks of this build: {} by the harness's own observation, {} by upstream suites, {} by both; {} not testable by software; {} not covered",
        rows.len(),
        args.suite.as_ref().map_or_else(
            || " in the catalogue (mandatory/optional as in suite `all`)".to_owned(),
            |s| format!(" in suite {s}")
        ),
        kind("own"),
        kind("upstream"),
        kind("own+upstream"),
        kind("not-testable"),
        kind("none"),
    );
    for r in &rows {
        let role = if r.mandatory { "mandatory" } else { "optional" };
        let _ = writeln!(
            out,
            "{:<18} {:<6} {:<17} {:<9} {}\n{:18} {}  [{}]",
            r.id.as_str(),
            r.level.as_str(),
            r.profile.as_str(),
            role,
            match (&r.untestable, r.checks.is_empty()) {
                (Some(why), true) => format!("not testable by software: {why}"),
                (None, true) => "not covered".to_owned(),
                (_, false) => format!("checks: {}", r.checks.join(", ")),
            },
            "",
            r.summary,
            r.source
        );
        for u in &r.upstream {
            let _ = writeln!(out, "{:18} upstream: {u}", "");
        }
    }
    print!("{out}");
    Ok(exit_code::CONFORMANT)
}

fn run_id() -> String {
    let now = chrono::Utc::now();
    let rand = uuid::Uuid::new_v4().simple().to_string();
    format!("{}-{}", now.format("%Y%m%dT%H%M%SZ"), &rand[..6])
}

/// Creates the output directory and proves it is writable before anything runs, so a run is
/// never lost to an output problem found at the end.
fn prepare_out_dir(dir: &Path) -> Result<(), CliError> {
    if dir.join("results.json").exists() {
        return Err(CliError::bad_input(format!(
            "output directory `{}` already holds a results.json; choose another --out or move it away (nothing was run)",
            dir.display()
        )));
    }
    // Before anything is created (nothing goes under another user's directory) and after.
    crate::trusted::check_dir(dir).map_err(CliError::bad_input)?;
    std::fs::create_dir_all(dir).map_err(|e| {
        CliError::bad_input(format!(
            "cannot create output directory `{}`: {e}",
            dir.display()
        ))
    })?;
    crate::trusted::check_dir(dir).map_err(CliError::bad_input)?;
    // A random name, created exclusively and removed on drop: the probe never opens a file
    // or link that was there before.
    tempfile::Builder::new()
        .prefix(".nfvi-verify-write-test-")
        .tempfile_in(dir)
        .map_err(|e| {
            CliError::bad_input(format!(
                "output directory `{}` is not writable: {e}",
                dir.display()
            ))
        })?;
    Ok(())
}

fn init_logging(dir: &Path, append: bool) -> Option<PathBuf> {
    let path = dir.join("nfvi-verify.log");
    // O_NOFOLLOW: a symbolic link planted at the log's name is refused, never written through.
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .append(append)
        .truncate(!append)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(&path)
        .ok()?;
    tracing_subscriber::fmt()
        .with_writer(std::sync::Mutex::new(file))
        .with_ansi(false)
        .with_max_level(tracing::Level::DEBUG)
        .try_init()
        .ok()?;
    Some(path)
}

fn reproduce(args: &RunArgs, suite: &str) -> String {
    let mut cmd = format!("nfvi-verify run --suite {suite}");
    if let Some(t) = &args.selection.target {
        let _ = write!(cmd, " --target {}", t.display());
    }
    for (flag, value) in &args.selection.area_flags {
        let _ = write!(cmd, " {}", flag.typed(value));
    }
    for f in &args.selection.filter {
        let _ = write!(cmd, " --filter '{f}'");
    }
    for s in &args.selection.skip {
        let _ = write!(cmd, " --skip '{s}'");
    }
    if args.strict {
        cmd.push_str(" --strict");
    }
    if let Some(t) = args.timeout {
        let _ = write!(cmd, " --timeout {t}");
    }
    if let Some(w) = &args.waivers {
        let _ = write!(cmd, " --waivers {}", w.display());
    }
    cmd
}

/// Keeps the inputs of the run next to its results, as used: the target (resolved: the file
/// with the flags applied and defaults filled in) as target.toml, and the waivers file as
/// waivers.toml. A certification bundle carries both (after redaction).
fn keep_inputs(
    dir: &Path,
    target: &Target,
    waivers: Option<&nfvi_harness::waiver::Waivers>,
) -> Result<(), CliError> {
    let write = |name: &str, text: &str| {
        let path = dir.join(name);
        nfvi_harness::results::write_atomic(&path, text.as_bytes())
            .map_err(|e| CliError::bad_input(format!("cannot write `{}`: {e}", path.display())))
    };
    write("target.toml", &target.resolved_toml())?;
    if let Some(w) = waivers {
        write("waivers.toml", &w.text)?;
    }
    Ok(())
}

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

/// What a run observed, kept outside it so that a panic loses none of it: the journal's
/// header and every result reported (a resumed run's carried results first).
#[derive(Default)]
struct Observed {
    /// The output directory, once the run has one.
    dir: Option<PathBuf>,
    /// The journal, while the run writes one.
    journal: Option<PathBuf>,
    /// The run before any check (the journal's header).
    header: Option<RunResults>,
    /// The results reported so far.
    results: Vec<CheckResult>,
    /// results.json was written (a later panic must not replace it).
    written: bool,
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

/// Writes the results of a run that panicked, as it observed them until then (the results
/// its journal holds, and any the journal could not take): results.json first, then the
/// other reports (a panic there leaves results.json written). Says what it wrote.
fn save_after_panic(observed: &Observed, panic: &nfvi_harness::panics::Panic) -> String {
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
    let p = prepare(&args.selection)?;
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

/// Saves results.json where the output directory refused it: a new private file in the
/// temporary directory (random name, created exclusively).
fn save_elsewhere(results: &RunResults, run_id: &str) -> Option<PathBuf> {
    let file = tempfile::Builder::new()
        .prefix(&format!("nfvi-verify-results-{run_id}-"))
        .suffix(".json")
        .tempfile()
        .ok()?;
    std::io::Write::write_all(&mut file.as_file(), results.to_json().as_bytes()).ok()?;
    file.keep().ok().map(|(_, path)| path)
}

fn summary(r: &RunResults, a: &Artifacts, log: Option<&Path>) {
    crate::summary::print(r, a, log);
}

pub fn report(args: &ReportArgs) -> CmdResult {
    // A run's directory: its results.json, or the journal of a run killed before it wrote one.
    let from = if args.from.is_dir() {
        let json = args.from.join("results.json");
        let journal = args.from.join(crate::journal::FILE);
        if json.exists() {
            json
        } else if journal.exists() {
            journal
        } else {
            return Err(CliError::bad_input(format!(
                "`{}` holds neither a results.json nor a {} (not the output directory of a run)",
                args.from.display(),
                crate::journal::FILE
            )));
        }
    } else {
        args.from.clone()
    };
    let dir = from
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let results = if crate::journal::is_journal(&from) {
        // A run that never wrote its results: they come back from its journal, and
        // results.json is written next to it (never over one that exists).
        let results = crate::journal::recover(&from)?;
        let json = dir.join("results.json");
        if json.exists() {
            return Err(CliError::bad_input(format!(
                "`{}` already exists: this run wrote its results; use --from {}",
                json.display(),
                json.display()
            )));
        }
        crate::trusted::check_parent(&json).map_err(CliError::bad_input)?;
        nfvi_harness::results::write_atomic(&json, results.to_json().as_bytes())
            .map_err(|e| CliError::bad_input(format!("cannot write `{}`: {e}", json.display())))?;
        eprintln!(
            "recovered {} check results of run {} from its journal: the run was interrupted (killed) before it wrote its results, so they are partial and the verdict is incomplete; `nfvi-verify run --resume {}` finishes it",
            results.checks.len(),
            results.run_id,
            dir.display()
        );
        eprintln!("wrote {}", json.display());
        results
    } else {
        RunResults::load(&from)?
    };
    let html_path = args.html.clone().unwrap_or_else(|| dir.join("report.html"));
    let junit_path = args.junit.clone().unwrap_or_else(|| dir.join("junit.xml"));
    let html = nfvi_reports::render_html(&results).map_err(|e| CliError::Build(chain(&e)))?;
    let junit = nfvi_reports::render_junit(&results).map_err(|e| CliError::Build(chain(&e)))?;
    // The badge goes next to the HTML report.
    let badge_path = html_path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .join("badge.svg");
    let badge = nfvi_reports::badge_svg(&results);
    for path in [&html_path, &junit_path, &badge_path] {
        crate::trusted::check_parent(path).map_err(CliError::bad_input)?;
    }
    for (path, text) in [
        (&html_path, html),
        (&junit_path, junit),
        (&badge_path, badge),
    ] {
        nfvi_harness::results::write_atomic(path, text.as_bytes())
            .map_err(|e| CliError::bad_input(format!("cannot write `{}`: {e}", path.display())))?;
        eprintln!("wrote {}", path.display());
    }
    Ok(exit_code::CONFORMANT)
}

pub fn diff(args: &DiffArgs) -> CmdResult {
    let old = RunResults::load(&args.old)?;
    let new = RunResults::load(&args.new)?;
    let d = nfvi_harness::diff::diff(&old, &new);
    let code = if d.has_regression() {
        exit_code::NON_CONFORMANT
    } else {
        exit_code::CONFORMANT
    };
    if args.format == Format::Json {
        print_json(&d)?;
        return Ok(code);
    }
    let mut out = String::new();
    if let Some((o, n)) = &d.verdict {
        let _ = writeln!(out, "verdict: {o} -> {n}");
    }
    for c in &d.changed {
        let _ = writeln!(
            out,
            "{} {}: {} -> {}",
            if c.regression {
                "REGRESSED"
            } else {
                "changed  "
            },
            c.id,
            c.old.as_str(),
            c.new.as_str()
        );
    }
    for (id, s) in &d.added {
        let _ = writeln!(out, "new       {id}: {}", s.as_str());
    }
    for id in &d.removed {
        let _ = writeln!(out, "vanished  {id}");
    }
    for m in &d.metrics {
        let delta = if m.old != 0.0 {
            format!(" ({:+.1}%)", (m.new - m.old) / m.old.abs() * 100.0)
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "metric    {} {}: {} -> {} {}{delta}",
            m.check, m.metric, m.old, m.new, m.unit
        );
    }
    if out.is_empty() {
        out.push_str("no differences in outcomes or metrics\n");
    }
    print!("{out}");
    Ok(code)
}

pub fn target(args: &TargetArgs) -> CmdResult {
    let areas = nfvi_verify::areas();
    if args.example {
        print!("{}", areas.default_target());
        return Ok(exit_code::CONFORMANT);
    }
    let path = args
        .check
        .as_deref()
        .expect("clap requires --example or --check");
    let t = Target::load(path, &areas, &[])?;
    print!("{}", t.resolved_toml());
    eprintln!("{}: valid", path.display());
    Ok(exit_code::CONFORMANT)
}
