//! The run's one Tempest run. The first check that needs it starts it (in a task of its own,
//! so that no single check's deadline or end stops it); every check waits for the same
//! report and judges its share. In order: a token for the credentials (a refused password
//! ends it at once), the catalog and the probes (`cloud`), the virtualenv (`venv`),
//! `tempest init` into a private directory and tempest.conf there, `tempest run --list-tests`
//! for the total, then `tempest run --subunit` with progress (counts and ETA) from the stream.
//!
//! Only the services whose checks the plan runs are tested (`--filter` narrows Tempest too).
//! Each test is written to the run's ledger as it ends; the tests an earlier run settled
//! (`--resume`: every finished test; `--rerun-failed`: the passed and skipped ones) are
//! carried over and not run again: Tempest gets the rest as a `--load-list`.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use std::sync::atomic::{AtomicBool, Ordering};

use nfvi_harness::cancel::{CancelLevel, CancelReason, CancelSource, CancelToken};
use nfvi_harness::ledger::Ledger;
use nfvi_harness::target::UpstreamLevel;
use nfvi_harness::{CheckContext, Progress, Target};

use crate::collect::excerpt;
pub use crate::collect::{Collector, Counts, TestRecord, progress_line};
use nfvi_suite_kolla::{Credentials, OpenStackConfig};
use tokio::sync::{Mutex, watch};

use crate::area::TempestConfig;
use crate::cloud::{self, Offer};
use crate::conf::{self, ConfInput};
use crate::leftovers::Found;
use crate::proc;
use crate::services::Service;
use crate::stream::{Sink, carry};
use crate::venv;

/// How the run went.
#[derive(Clone, Debug)]
pub enum Report {
    /// Keystone refused the credentials: the checks fail naming it.
    Refused(String),
    /// Tempest could not be run (no credentials, no virtualenv, a broken Tempest): errors.
    Broken(String),
    /// It ran (or nothing was left to run).
    Ran(Box<Ran>),
}

/// A run of Tempest and what it reported.
#[derive(Clone, Debug, Default)]
pub struct Ran {
    /// What each service offered.
    pub offers: Vec<(&'static Service, Offer)>,
    /// The services whose tests Tempest runs.
    pub selected: Vec<&'static str>,
    /// The level (smoke, full).
    pub level: &'static str,
    /// The Tempest version run.
    pub version: String,
    /// The selection and exclusion regexes given to `tempest run`.
    pub regex: String,
    /// The exclusion regex.
    pub exclude: String,
    /// Workers.
    pub concurrency: u32,
    /// tempest.conf's `[service_available]`, as written.
    pub services_line: String,
    /// How many tests `--list-tests` selected.
    pub listed: usize,
    /// Tests listed, by id, for "selected but never reported".
    pub listed_ids: Vec<String>,
    /// Every test reported, in first-seen order (those carried over from an earlier run
    /// first).
    pub tests: Vec<TestRecord>,
    /// How many of `tests` an earlier run settled, and which run (`--resume`,
    /// `--rerun-failed`): carried over, not run again.
    pub carried: usize,
    /// The run they come from.
    pub carried_from: Option<String>,
    /// Why Tempest stopped early (deadline, cancellation, crash), if it did.
    pub stopped: Option<String>,
    /// `tempest run`'s exit code (`None`: killed by a signal, or never run).
    pub exit_code: Option<i32>,
    /// Seconds the test run took.
    pub elapsed: f64,
    /// What was left in Keystone and removed (or could not be).
    pub leftovers: Vec<String>,
}

type Slot = watch::Receiver<Option<Arc<Report>>>;
type ProgressSlot = watch::Receiver<Option<Progress>>;

/// What the run takes from the check that starts it.
struct Start {
    /// The services whose checks the plan runs.
    planned: Vec<&'static str>,
    ledger: Arc<Ledger>,
    progress: watch::Sender<Option<Progress>>,
}

/// Tempest's projects and users before the run, and whether the sweep of those that
/// appeared during it was done (by the run, or by the cleanup of one of its checks).
#[derive(Default)]
struct SweepState {
    before: Option<(Credentials, Found)>,
    done: bool,
    /// The checks waiting for the run's last report (their services are tested).
    waiting: usize,
}

/// What the checks of one run share: its reports, its progress, the sweep, and the run's
/// own stop (the run-wide cancellation forwarded, or no check left waiting for it).
type Started = (Slot, Slot, ProgressSlot, Sweep, Arc<CancelSource>);

type Sweep = Arc<Mutex<SweepState>>;

/// How long the check cleanup waits for the stopped Tempest run before sweeping, and how
/// long the sweep may take: both within the runner's cleanup deadline (60 s).
const CLEANUP_WAIT: Duration = Duration::from_secs(15);
const CLEANUP_SWEEP: Duration = Duration::from_secs(40);

/// The area's per-run state: the run's first report (what the cloud offers and what will be
/// run, known within seconds) and its last (the tests), each published once.
#[derive(Default)]
pub struct Shared {
    started: Mutex<Option<Started>>,
}

impl Shared {
    /// The report that judges `service`: the first one when Tempest runs none of its tests
    /// (a service not tested, a level without its tests, credentials refused), so that its
    /// check ends at once; the last one otherwise. Started by the first caller.
    pub async fn report(&self, cx: &CheckContext, service: &str) -> Arc<Report> {
        let (mut early, mut last, mut progress, sweep, stop_run) = {
            let mut started = self.started.lock().await;
            match &*started {
                Some(slots) => slots.clone(),
                None => {
                    let (early_tx, early) = watch::channel(None);
                    let (last_tx, last) = watch::channel(None);
                    let (progress_tx, progress) = watch::channel(None);
                    let start = Start {
                        planned: crate::services::SERVICES
                            .iter()
                            .filter(|s| cx.planned(&format!("tempest.{}", s.name)))
                            .map(|s| s.name)
                            .collect(),
                        ledger: cx.ledger(),
                        progress: progress_tx,
                    };
                    let target = cx.target().clone();
                    // The run stops when the run of checks is cancelled, or when no check
                    // waits for it any more (see `cleanup_sweep`).
                    let (stop_run, stop) = CancelSource::new();
                    let stop_run = Arc::new(stop_run);
                    let (forward_to, run_cancel) = (stop_run.clone(), cx.cancel().clone());
                    tokio::spawn(async move {
                        for level in [CancelLevel::Graceful, CancelLevel::Hard] {
                            run_cancel.reached(level).await;
                            forward_to
                                .escalate(run_cancel.reason().unwrap_or(CancelReason::Interrupt));
                        }
                    });
                    let sweep: Sweep = Arc::default();
                    let run_sweep = sweep.clone();
                    tokio::spawn(async move {
                        let report = drive(&target, &stop, &early_tx, &run_sweep, start).await;
                        let report = Arc::new(report);
                        early_tx.send_if_modified(|r| {
                            r.get_or_insert_with(|| report.clone());
                            true
                        });
                        let _ = last_tx.send(Some(report));
                    });
                    *started = Some((
                        early.clone(),
                        last.clone(),
                        progress.clone(),
                        sweep.clone(),
                        stop_run.clone(),
                    ));
                    (early, last, progress, sweep, stop_run)
                }
            }
        };
        // Every check of the run registers it (before Tempest can start, for the first): the
        // runner runs it when that check ends however it ends (Ctrl-C included), within its
        // cleanup deadline, and the sweep is done once.
        let waiter = Arc::new(AtomicBool::new(false));
        cx.on_cleanup_async(
            "remove the tempest-* objects the Tempest run created in Keystone",
            cleanup_sweep(
                sweep.clone(),
                last.clone(),
                cx.cancel().clone(),
                stop_run,
                waiter.clone(),
            ),
        );
        let first = match early.wait_for(Option::is_some).await {
            Ok(r) => r.clone().unwrap_or_else(unreachable_report),
            Err(_) => unreachable_report(),
        };
        if let Report::Ran(r) = &*first
            && r.selected.contains(&service)
        {
            sweep.lock().await.waiting += 1;
            waiter.store(true, Ordering::SeqCst);
            // Every check waiting for the run shows its progress.
            let forward = async {
                while progress.changed().await.is_ok() {
                    let p = progress.borrow_and_update().clone();
                    if let Some(p) = p {
                        cx.progress(p);
                    }
                }
                std::future::pending::<()>().await;
            };
            return tokio::select! {
                r = last.wait_for(Option::is_some) => match r {
                    Ok(r) => r.clone().unwrap_or_else(unreachable_report),
                    Err(_) => unreachable_report(),
                },
                () = forward => unreachable_report(),
            };
        }
        first
    }
}

/// A check's cleanup: the sweep the run did not do, once the run has stopped (or, when the
/// run was cancelled, after [`CLEANUP_WAIT`]); an error names what may be left.
///
/// A check may end long before the run (a service Tempest does not test is judged from the
/// first report, in seconds): while the run goes on, uncancelled, the sweep is the run's own,
/// at its end, or that of a check still waiting for it. Sweeping then would delete the
/// dynamic credentials of the classes still running: it did, and their tests failed with
/// "Could not find user" (`run --suite rc1`, where `tempest.compute` could start the run and
/// end first; CI saw UsersV3TestJSON.test_user_update fail so). But when the last check
/// waiting for the run ends without its report (each timed out), nothing would ever judge
/// or sweep it: the run is stopped, and swept here.
async fn cleanup_sweep(
    sweep: Sweep,
    mut last: Slot,
    cancel: CancelToken,
    stop_run: Arc<CancelSource>,
    waiter: Arc<AtomicBool>,
) -> Result<(), String> {
    let no_one_waits = waiter.load(Ordering::SeqCst) && {
        let mut st = sweep.lock().await;
        st.waiting = st.waiting.saturating_sub(1);
        st.waiting == 0
    };
    if last.borrow().is_none() && !cancel.is_cancelled() {
        if !no_one_waits {
            return Ok(());
        }
        stop_run.escalate(CancelReason::Terminate);
    }
    let _ = tokio::time::timeout(CLEANUP_WAIT, last.wait_for(Option::is_some)).await;
    let mut st = sweep.lock().await;
    if std::mem::replace(&mut st.done, true) {
        return Ok(());
    }
    let Some((creds, before)) = st.before.take() else {
        return Ok(());
    };
    let mut ran = Ran::default();
    sweep_new(&creds, &before, &mut ran, CLEANUP_SWEEP).await;
    let left: Vec<&String> = ran
        .leftovers
        .iter()
        .filter(|l| !l.starts_with("removed"))
        .collect();
    if left.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "tempest-* objects created during the run may be left in Keystone {} (remove them with `openstack project list | grep tempest-`): {}",
            creds.auth_url,
            left.iter()
                .map(|l| l.as_str())
                .collect::<Vec<_>>()
                .join("; ")
        ))
    }
}

fn unreachable_report() -> Arc<Report> {
    Arc::new(Report::Broken(
        "the Tempest run ended without a report (its task stopped)".to_owned(),
    ))
}

/// A progress line: in the run's log, and on stderr when the console prints plain lines (no
/// progress bar to break).
pub fn progress(line: String) {
    tracing::info!(target: "tempest", "{line}");
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() || std::env::var_os("CI").is_some() {
        eprintln!("tempest: {line}");
    }
}

/// The selection for a level: per service tested, its regex (none: the level has no tests
/// of it) and its exclusion.
pub fn selection(
    cfg: &TempestConfig,
    level: UpstreamLevel,
    tested: &[&str],
) -> (Vec<String>, Vec<String>) {
    let (mut include, mut exclude) = (Vec::new(), Vec::new());
    for name in tested {
        let pick = match level {
            UpstreamLevel::Smoke => cfg.smoke.get(*name),
            _ => cfg.full.get(*name),
        };
        if let Some(r) = pick.filter(|r| !r.is_empty()) {
            include.push(format!("({r})"));
            if level == UpstreamLevel::Full
                && let Some(x) = cfg.exclude.get(*name).filter(|x| !x.is_empty())
            {
                exclude.push(format!("({x})"));
            }
        }
    }
    (include, exclude)
}

async fn drive(
    target: &Target,
    cancel: &CancelToken,
    early: &watch::Sender<Option<Arc<Report>>>,
    sweep: &Sweep,
    start: Start,
) -> Report {
    let os = target.config::<OpenStackConfig>().clone();
    let password = Credentials::discover(&os)
        .map(|c| c.password.expose().to_owned())
        .unwrap_or_default();
    mask_report(
        drive_unmasked(target, cancel, early, sweep, start).await,
        &password,
    )
}

/// Every text of a report that leaves the area, with the password masked in every form.
fn mask_report(report: Report, password: &str) -> Report {
    let m = |s: &str| crate::collect::mask(s, password);
    match report {
        Report::Refused(e) => Report::Refused(m(&e)),
        Report::Broken(e) => Report::Broken(m(&e)),
        Report::Ran(mut r) => {
            r.stopped = r.stopped.as_deref().map(m);
            for l in &mut r.leftovers {
                *l = m(l);
            }
            for t in &mut r.tests {
                t.detail = t.detail.as_deref().map(m);
            }
            for (_, o) in &mut r.offers {
                match o {
                    Offer::NotTested(w) | Offer::Unverified(w) => *w = m(w),
                    Offer::Tested { seen, .. } => *seen = m(seen),
                }
            }
            Report::Ran(r)
        }
    }
}

async fn drive_unmasked(
    target: &Target,
    cancel: &CancelToken,
    early: &watch::Sender<Option<Arc<Report>>>,
    sweep: &Sweep,
    start: Start,
) -> Report {
    let cfg = target.config::<TempestConfig>().clone();
    let os = target.config::<OpenStackConfig>().clone();
    let creds = match Credentials::discover(&os) {
        Ok(c) => c.with_target(&os),
        Err(e) => return Report::Broken(e),
    };
    progress(format!(
        "asking Keystone {} for a token for user {} ({})",
        creds.auth_url, creds.username, creds.source
    ));
    let keystone;
    let mut offers =
        match cloud::observe(&creds, os.dashboard_url.as_deref(), &cfg.skip_services).await {
            Ok((o, k)) => {
                keystone = k;
                o
            }
            Err(e) if e.contains("HTTP 401") => return Report::Refused(e),
            Err(e) => return Report::Broken(e),
        };
    cloud::settle(&mut offers, &|k| cfg.key(k).is_none());
    let level = target.upstream;
    // Tested: offered, and its check is in the plan (a filtered run tests only its services).
    let tested: Vec<&str> = offers
        .iter()
        .filter(|(s, o)| o.tested() && start.planned.contains(&s.name))
        .map(|(s, _)| s.name)
        .collect();
    let (include, exclude) = selection(&cfg, level, &tested);
    let selected: Vec<&'static str> = offers
        .iter()
        .filter(|(s, _)| {
            tested.contains(&s.name) && !selection(&cfg, level, &[s.name]).0.is_empty()
        })
        .map(|(s, _)| s.name)
        .collect();
    let mut ran = Ran {
        selected,
        level: level.as_str(),
        concurrency: cfg.concurrency,
        regex: include.join("|"),
        exclude: exclude.join("|"),
        version: cfg.version.clone(),
        ..Ran::default()
    };
    for (s, o) in &offers {
        match o {
            Offer::Tested { seen, .. } => progress(format!("{}: tested ({seen})", s.name)),
            Offer::NotTested(why) => progress(format!("{}: not tested: {why}", s.name)),
            Offer::Unverified(why) => progress(format!("{}: NOT VERIFIED: {why}", s.name)),
        }
    }
    ran.offers = offers.clone();
    let _ = early.send(Some(Arc::new(Report::Ran(Box::new(ran.clone())))));
    if include.is_empty() {
        return Report::Ran(Box::new(ran));
    }
    let scratch = match nfvi_harness::scratch::private_dir("nfvi-tempest-") {
        Ok(d) => d,
        Err(e) => return Report::Broken(format!("cannot create a private directory: {e}")),
    };
    // Tempest's own projects and users before the run: only those that appear during it are
    // ever removed afterwards.
    let mut before = crate::leftovers::list(&keystone.http, &keystone.token, &keystone.base).await;
    if let Ok(b) = &mut before {
        crate::leftovers::settle_killed(
            &keystone.http,
            &keystone.token,
            &keystone.base,
            &start.ledger,
            b,
            &mut ran.leftovers,
        )
        .await;
    }
    let listed_before = before.is_ok();
    if let Ok(b) = &before {
        sweep.lock().await.before = Some((creds.clone(), b.clone()));
    }
    let result = in_workspace(
        &cfg,
        &creds,
        &os,
        &offers,
        scratch.path(),
        &mut ran,
        cancel,
        &start,
    )
    .await;
    {
        let mut st = sweep.lock().await;
        match st.before.take() {
            Some((_, before)) if !std::mem::replace(&mut st.done, true) => {
                sweep_new(&creds, &before, &mut ran, Duration::from_secs(120)).await;
            }
            _ if !listed_before => ran.leftovers.push(
                "not looked for: listing Keystone's tempest-* objects before the run failed"
                    .to_owned(),
            ),
            _ => ran
                .leftovers
                .push("swept by the cleanup of one of the run's checks".to_owned()),
        }
    }
    if let Err(e) = scratch.close() {
        progress(format!("cannot remove Tempest's private directory: {e}"));
    }
    ran.offers = offers;
    match result {
        Ok(()) => Report::Ran(Box::new(ran)),
        Err(e) => Report::Broken(e),
    }
}

/// Removes the `tempest-*` projects and users that appeared during the run (a stopped run's
/// classes never tore down), with a fresh token: the run may outlast the first.
async fn sweep_new(
    creds: &Credentials,
    before: &[(&'static str, String, String)],
    ran: &mut Ran,
    deadline: Duration,
) {
    let found = async {
        let (http, token, _) = nfvi_suite_kolla::project_session(creds).await?;
        let now = crate::leftovers::list(&http, &token, &creds.auth_url).await?;
        Ok::<_, String>(
            crate::leftovers::remove_new(&http, &token, &creds.auth_url, before, &now).await,
        )
    };
    match tokio::time::timeout(deadline, found).await {
        Ok(Ok((removed, failed))) => {
            if !removed.is_empty() {
                progress(format!(
                    "removed {} object(s) Tempest left in Keystone: {}",
                    removed.len(),
                    removed.join(", ")
                ));
                ran.leftovers
                    .push(format!("removed: {}", removed.join(", ")));
            }
            for f in failed {
                ran.leftovers.push(format!("NOT removed: {f}"));
            }
        }
        Ok(Err(e)) => ran.leftovers.push(format!("not looked for: {e}")),
        Err(_) => ran.leftovers.push(format!(
            "not looked for: the sweep did not finish within {} s (every tempest-* project and user created since the run started may be left)",
            deadline.as_secs()
        )),
    }
}

#[allow(clippy::too_many_arguments)]
async fn in_workspace(
    cfg: &TempestConfig,
    creds: &Credentials,
    os: &OpenStackConfig,
    offers: &[(&'static Service, Offer)],
    home: &Path,
    ran: &mut Ran,
    cancel: &CancelToken,
    start: &Start,
) -> Result<(), String> {
    let venv = venv::ensure(cfg, home, cancel, &progress).await?;
    ran.version = venv.version.clone();
    let bin = venv.dir.join("bin");
    let tempest = proc::venv_bin(&venv.dir, "tempest");
    let ws = home.join("workspace");
    let mut init = proc::command(&tempest, &bin, home);
    init.arg("init")
        .arg("--workspace-path")
        .arg(home.join("workspace.yaml"))
        .arg(&ws);
    let f = proc::run(init, "tempest init", Duration::from_secs(120), cancel).await?;
    if f.code != Some(0) {
        return Err(format!(
            "`tempest init` failed ({:?}): {}",
            f.code,
            excerpt(f.stderr_tail.as_bytes(), creds.password.expose())
        ));
    }
    let offered = |s: &str| offers.iter().find(|(x, _)| x.name == s).map(|(_, o)| o);
    let mut available = Vec::new();
    for (s, o) in offers {
        if let Some(key) = s.available_key {
            available.push((key, o.tested()));
        }
    }
    let volume_type = match offered("volume") {
        Some(Offer::Tested { catalog_type, .. }) => Some(catalog_type.as_str()),
        _ => None,
    };
    let dashboard_url = match offered("dashboard") {
        Some(Offer::Tested { url, .. }) => Some(url.as_str()),
        _ => None,
    };
    let ws_text = ws.display().to_string();
    let input = ConfInput {
        auth_url: &creds.auth_url,
        username: &creds.username,
        password: creds.password.expose(),
        project: &creds.project,
        user_domain: &creds.user_domain,
        project_domain: &creds.project_domain,
        interface: &creds.interface,
        region: creds.region.as_deref(),
        cacert: creds.tls.cacert.as_deref(),
        insecure: creds.tls.insecure || os.insecure,
        available: available.clone(),
        volume_type,
        dashboard_url,
        workspace: &ws_text,
        image_ref: cfg.image_ref.as_deref(),
        flavor_ref: cfg.flavor_ref.as_deref(),
        public_network_id: cfg.public_network_id.as_deref(),
        heat: offered("orchestration").is_some_and(Offer::tested),
    };
    let text = conf::render(&input)?;
    let secret = conf::secret_env(&input)?;
    ran.services_line = available
        .iter()
        .map(|(k, on)| format!("{k} = {on}"))
        .collect::<Vec<_>>()
        .join(", ");
    let conf_path = ws.join("etc/tempest.conf");
    write_private(&conf_path, &text)?;

    // The total, for progress and for "selected but never reported".
    let mut list = proc::command(&tempest, &bin, home);
    list.current_dir(&ws)
        .envs(secret.iter().map(|(k, v)| (*k, v)))
        .args(["run", "--list-tests", "--config-file"])
        .arg(&conf_path)
        .args(["--regex", &ran.regex]);
    if !ran.exclude.is_empty() {
        list.args(["--exclude-regex", &ran.exclude]);
    }
    let f = proc::run(
        list,
        "tempest run --list-tests",
        Duration::from_secs(300),
        cancel,
    )
    .await?;
    if f.code != Some(0) {
        return Err(format!(
            "`tempest run --list-tests` failed ({:?}): {}",
            f.code,
            excerpt(f.stderr_tail.as_bytes(), creds.password.expose())
        ));
    }
    ran.listed_ids = f
        .stdout
        .lines()
        .map(str::trim)
        .filter(|l| {
            l.starts_with(|c: char| c.is_ascii_alphabetic()) && l.contains('.') && !l.contains(' ')
        })
        .map(str::to_owned)
        .collect();
    ran.listed = ran.listed_ids.len();
    progress(format!(
        "Tempest {}: {} tests selected ({} level), concurrency {}",
        ran.version, ran.listed, ran.level, cfg.concurrency
    ));
    if ran.listed == 0 {
        return Ok(());
    }
    // What an earlier run settled is carried over; Tempest runs the rest. A rerun with
    // nothing left (the earlier failure was not a test's, e.g. leftovers) runs everything
    // again: a check never passes on carried results alone with nothing observed now.
    let (mut carried, mut rest) =
        carry(&ran.listed_ids, start.ledger.prior(crate::collect::STREAM));
    if rest.is_empty() && start.ledger.mode() == Some(nfvi_harness::ledger::LedgerMode::Rerun) {
        progress(format!(
            "every selected test passed or was skipped in run {}: running them all again",
            start.ledger.origin().unwrap_or("?")
        ));
        (carried, rest) = (Vec::new(), ran.listed_ids.clone());
    }
    if !carried.is_empty() {
        ran.carried = carried.len();
        ran.carried_from = start.ledger.origin().map(str::to_owned);
        progress(format!(
            "{} of {} tests carried over from run {} (not run again), {} to run",
            carried.len(),
            ran.listed,
            ran.carried_from.as_deref().unwrap_or("?"),
            rest.len()
        ));
        ran.tests = carried;
    }
    if rest.is_empty() {
        return Ok(());
    }
    let mut cmd = proc::tied(&tempest, &bin, home);
    cmd.current_dir(&ws)
        .envs(secret.iter().map(|(k, v)| (*k, v)))
        .args(["run", "--subunit", "--config-file"])
        .arg(&conf_path)
        .args(["--concurrency", &cfg.concurrency.to_string()]);
    if ran.carried == 0 {
        cmd.args(["--regex", &ran.regex]);
        if !ran.exclude.is_empty() {
            cmd.args(["--exclude-regex", &ran.exclude]);
        }
    } else {
        let list = home.join("load-list");
        write_private(&list, &(rest.join("\n") + "\n"))?;
        cmd.arg("--load-list").arg(&list);
    }
    let deadline = Duration::from_secs(u64::from(cfg.timeout_minutes) * 60);
    let sink = Sink {
        ledger: &start.ledger,
        progress: &start.progress,
    };
    crate::stream::stream(cmd, ran, deadline, cancel, creds.password.expose(), sink).await
}

fn write_private(path: &Path, text: &str) -> Result<(), String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let _ = std::fs::remove_file(path);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    f.write_all(text.as_bytes())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_selection_follows_the_level_and_the_services_tested() {
        let v: toml::Table = toml::from_str(include_str!("tempest.toml")).unwrap();
        let cfg: TempestConfig = v["tempest"].clone().try_into().unwrap();
        let (inc, exc) = selection(&cfg, UpstreamLevel::Full, &["identity"]);
        assert_eq!(inc, vec![r"(^tempest\.api\.identity\.)".to_owned()]);
        assert!(exc[0].contains("oauth1"), "{exc:?}");
        let (inc, exc) = selection(&cfg, UpstreamLevel::Smoke, &["identity", "placement"]);
        assert_eq!(inc.len(), 1, "placement has no smoke tests: {inc:?}");
        assert!(inc[0].contains("smoke"));
        assert!(exc.is_empty());
        assert!(selection(&cfg, UpstreamLevel::Full, &[]).0.is_empty());
    }

    #[tokio::test]
    async fn a_check_that_ends_while_the_run_goes_on_leaves_the_sweep_to_the_run() {
        let sweep: Sweep = Arc::default();
        sweep.lock().await.waiting = 2;
        let (last_tx, last) = watch::channel(None);
        let (stop_run, stopped) = CancelSource::new();
        let stop_run = Arc::new(stop_run);
        let cleanup = |waits: bool| {
            cleanup_sweep(
                sweep.clone(),
                last.clone(),
                CancelToken::never(),
                stop_run.clone(),
                Arc::new(AtomicBool::new(waits)),
            )
        };
        // The run goes on, uncancelled: the cleanup of a check that did not wait for it (a
        // service not tested), and of one of two that did, sweeps nothing (the sweep is not
        // marked done, so the run's own still happens), stops nothing and returns at once.
        let started = std::time::Instant::now();
        cleanup(false).await.unwrap();
        cleanup(true).await.unwrap();
        assert!(started.elapsed() < CLEANUP_WAIT / 10);
        assert!(!sweep.lock().await.done, "swept while the run went on");
        assert!(!stopped.is_cancelled(), "a run others wait for was stopped");
        // The last check waiting ends without the report (it timed out): the run is stopped,
        // and once it has stopped, swept.
        let last_one = tokio::spawn(cleanup(true));
        tokio::time::timeout(Duration::from_secs(5), stopped.cancelled())
            .await
            .expect("the run no check waits for is stopped");
        let _ = last_tx.send(Some(unreachable_report()));
        last_one.await.unwrap().unwrap();
        assert!(sweep.lock().await.done);
    }
}
