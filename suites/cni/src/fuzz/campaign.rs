//! One plugin's campaign: workers take case after case from the seeded stream until the
//! plugin's share of the budget is spent, violations are grouped by signature, each group's
//! first case is re-run (to tell a real bug from a fluke) and shrunk, and the outcome lists
//! every finding with its minimal input and a replay line.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use nfvi_harness::{CheckContext, CheckResult, Outcome, Target};
use serde_json::Value;

use super::case::{Case, Stdin, replay_line};
use super::generate::generate;
use super::judge::Violation;
use super::shrink::minimize;
use super::templates::{self, VERSIONS};
use super::worker::{Observed, Worker};
use crate::CniConfig;

/// One plugin fuzzes at a time: each gets every CPU for its share of the budget, so the
/// rate measured is the plugin's and the run takes the budget whatever `--jobs` says.
static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The run's seed when the target sets none: drawn once, so every plugin of the run uses
/// the same one and a single `--seed` replays the whole campaign.
static CLOCK_SEED: OnceLock<u64> = OnceLock::new();

/// Findings shrunk per plugin; further ones are reported as found.
const SHRUNK_FINDINGS: usize = 6;

pub(crate) fn seed(cni: &CniConfig) -> u64 {
    cni.fuzz_seed.unwrap_or_else(|| {
        *CLOCK_SEED.get_or_init(|| {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.subsec_nanos());
            u64::from(nanos % 1_000_000)
        })
    })
}

/// The plugins the campaign fuzzes on this target: selected (`cni.plugins`) and installed.
pub(crate) fn fuzzed(target: &Target) -> Vec<&'static str> {
    let cni = target.config::<CniConfig>();
    templates::PLUGINS
        .iter()
        .map(|(p, _, _)| *p)
        .filter(|p| cni.plugins.is_empty() || cni.plugins.iter().any(|q| q == p))
        .filter(|p| cni.find(p).is_some())
        .collect()
}

/// Polls every future to completion, side by side on this task, results in input order.
pub(crate) use futures_util::future::join_all;

/// A finding: the first case that showed a signature, and what shrinking made of it.
struct Finding {
    violation: Violation,
    first: Case,
    minimal: Option<(Case, Observed, usize, bool)>,
    reproduced: bool,
}

fn env_line(case: &Case) -> String {
    case.env
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn stdin_text(stdin: &Stdin) -> String {
    let bytes = stdin.bytes();
    let text = nfvi_harness::bytes_to_evidence(&bytes);
    nfvi_harness::truncate_chars(&text, 16_384)
}

pub(crate) async fn run(cx: &CheckContext, plugin: &'static str) -> CheckResult {
    let cni = cx.target().config::<CniConfig>();
    let seed = seed(cni);
    let path = cni
        .find(plugin)
        .ok_or_else(|| {
            format!(
                "plugin `{plugin}` is not installed in {}",
                cni.search_path()
            )
        })?
        .display()
        .to_string();
    let share = fuzzed(cx.target()).len().max(1);
    let budget = Duration::from_secs_f64((cni.fuzz_budget as f64 / share as f64).max(1.0));
    let n = if cni.fuzz_workers == 0 {
        2 * std::thread::available_parallelism().map_or(2, usize::from)
    } else {
        cni.fuzz_workers
    };
    let _turn = TURN.lock().await;
    let mut workers = Vec::with_capacity(n);
    for _ in 0..n {
        workers.push(Worker::new(cx, plugin, path.clone()).await?);
    }
    let supported = match workers[0].supported().await {
        Some(v) if !v.is_empty() => v,
        _ => VERSIONS.iter().map(|s| (*s).to_owned()).collect(),
    };

    let started = Instant::now();
    let deadline = started + budget;
    let next = AtomicU64::new(0);
    let invocations = AtomicUsize::new(0);
    let found: Mutex<BTreeMap<String, (Violation, Case)>> = Mutex::new(BTreeMap::new());
    let errors: Mutex<Vec<String>> = Mutex::new(Vec::new());
    join_all(
        workers
            .iter()
            .map(|w| async {
                while Instant::now() < deadline && !cx.cancel().is_cancelled() {
                    let case = generate(seed, plugin, next.fetch_add(1, Ordering::Relaxed));
                    match w.run_case(&case, &supported).await {
                        Ok(obs) => {
                            invocations.fetch_add(obs.invocations, Ordering::Relaxed);
                            let mut f = found.lock().expect("findings");
                            for v in obs.violations {
                                f.entry(v.signature.clone()).or_insert((v, case.clone()));
                            }
                        }
                        Err(o) => {
                            errors.lock().expect("errors").push(o.message);
                            break;
                        }
                    }
                }
            })
            .collect::<Vec<_>>(),
    )
    .await;
    let elapsed = started.elapsed().as_secs_f64();
    let cases = next.load(Ordering::Relaxed);
    let calls = invocations.load(Ordering::Relaxed);
    let rate = calls as f64 / elapsed.max(1e-3);
    let errors = errors.into_inner().expect("errors");

    let mut groups: Vec<(Violation, Case)> = found
        .into_inner()
        .expect("findings")
        .into_values()
        .collect();
    groups.sort_by_key(|(v, c)| (v.clause, c.index));
    // The first finding of every clause before the second of any: the shrinking budget goes
    // to different kinds of defect first, not to many of one kind.
    let mut rank = Vec::with_capacity(groups.len());
    for (i, (v, _)) in groups.iter().enumerate() {
        let same_before = groups[..i]
            .iter()
            .filter(|(w, _)| w.clause == v.clause)
            .count();
        rank.push(same_before);
    }
    let mut ranked: Vec<(usize, (Violation, Case))> = rank.into_iter().zip(groups).collect();
    ranked.sort_by_key(|(r, (v, c))| (*r, v.clause, c.index));
    let groups: Vec<(Violation, Case)> = ranked.into_iter().map(|(_, g)| g).collect();
    let shrink_until =
        Instant::now() + (budget * 4).clamp(Duration::from_secs(20), Duration::from_secs(90));
    let pin = |v: &mut Value| templates::pin(plugin, v);
    let mut findings = Vec::new();
    let to_shrink = groups.len().min(SHRUNK_FINDINGS);
    for (i, (violation, first)) in groups.into_iter().enumerate() {
        let mut finding = Finding {
            violation,
            first,
            minimal: None,
            reproduced: false,
        };
        if i < SHRUNK_FINDINGS && !cx.cancel().is_cancelled() {
            let signature = finding.violation.signature.clone();
            let again = workers[0].run_case(&finding.first, &supported).await?;
            finding.reproduced = again.has(&signature);
            if finding.reproduced {
                let (ws, sup, sig) = (&workers, &supported, &signature);
                // Each finding gets its share of what is left of the shrinking time.
                let now = Instant::now();
                let share = (to_shrink - i).max(1) as u32;
                let until = now + shrink_until.saturating_duration_since(now) / share;
                let shrunk = minimize(
                    finding.first.clone(),
                    &pin,
                    ws.len(),
                    3000,
                    until,
                    |batch| async move {
                        join_all(
                            batch
                                .iter()
                                .zip(ws.iter())
                                .map(|(c, w)| async move {
                                    w.run_case(c, sup).await.is_ok_and(|o| o.has(sig))
                                })
                                .collect::<Vec<_>>(),
                        )
                        .await
                    },
                )
                .await;
                let last = workers[0].run_case(&shrunk.case, &supported).await?;
                if last.has(&signature) {
                    finding.minimal = Some((shrunk.case, last, shrunk.attempts, shrunk.minimal));
                } else {
                    finding.minimal = Some((finding.first.clone(), again, 0, false));
                }
            }
        }
        findings.push(finding);
    }
    Ok(outcome(
        plugin,
        &path,
        cni,
        seed,
        &findings,
        &errors,
        (cases, calls, elapsed, rate),
    ))
}

fn outcome(
    plugin: &str,
    path: &str,
    cni: &CniConfig,
    seed: u64,
    findings: &[Finding],
    errors: &[String],
    (cases, calls, elapsed, rate): (u64, usize, f64, f64),
) -> Outcome {
    let stats = format!(
        "{cases} generated cases, {calls} invocations in {elapsed:.1} s ({rate:.0}/s), seed {seed}"
    );
    let mut o = if findings.is_empty() && errors.is_empty() {
        Outcome::pass(format!(
            "{stats}: every failure exited non-zero with a valid error object, every ADD result was valid for its version, nothing was left behind, every call ended within {} s",
            cni.exec_timeout_secs
        ))
    } else if findings.is_empty() {
        Outcome::error(format!(
            "{stats}; the campaign stopped: {}",
            errors.join("; ")
        ))
    } else {
        let list: Vec<String> = findings
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let input = f.minimal.as_ref().map_or(&f.first, |m| &m.0);
                format!(
                    "{}. [{}] {} (minimal stdin: {})",
                    i + 1,
                    f.violation.clause.as_str(),
                    nfvi_harness::truncate_chars(&f.violation.detail, 200),
                    nfvi_harness::truncate_chars(&stdin_text(&input.stdin), 200)
                )
            })
            .collect();
        Outcome::fail(format!(
            "{} contract violation(s) of {plugin} in {stats}: {}",
            findings.len(),
            list.join("; ")
        ))
    };
    o = o
        .with_property("seed", seed)
        .with_property(
            "replay the campaign",
            format!("nfvi-verify run --suite cni-fuzz --seed {seed} --cni-plugins {plugin}"),
        )
        .with_metric("cases", cases as f64, "count")
        .with_metric("invocations", calls as f64, "count")
        .with_metric("invocations per second", rate, "1/s")
        .with_metric("findings", findings.len() as f64, "count");
    if !errors.is_empty() {
        o = o.with_property("harness errors", errors.join("; "));
    }
    let cni_path = cni.search_path();
    for (i, f) in findings.iter().enumerate() {
        let k = i + 1;
        let detail = f
            .minimal
            .as_ref()
            .and_then(|m| {
                m.1.violations
                    .iter()
                    .find(|v| v.signature == f.violation.signature)
            })
            .map_or(&f.violation.detail, |v| &v.detail);
        let (case, how) = match &f.minimal {
            Some((c, _, attempts, minimal)) => (
                c,
                format!(
                    "shrunk from {} to {} bytes of stdin in {attempts} runs{}",
                    f.first.stdin.len(),
                    c.stdin.len(),
                    if *minimal {
                        " (no smaller input fails)"
                    } else {
                        " (budget spent)"
                    }
                ),
            ),
            None if !f.reproduced && k <= SHRUNK_FINDINGS => (
                &f.first,
                "seen once; did not fail again on a second run".to_owned(),
            ),
            None => (
                &f.first,
                "not shrunk (only the first findings are)".to_owned(),
            ),
        };
        o = o
            .with_property(
                format!("finding {k}"),
                format!(
                    "[{}] {}: {} — case #{} of seed {seed}, {how}",
                    f.violation.clause.as_str(),
                    f.violation.step,
                    detail,
                    f.first.index
                ),
            )
            .with_property(format!("finding {k} stdin"), stdin_text(&case.stdin))
            .with_property(format!("finding {k} env"), env_line(case));
        if let Some((_, obs, _, _)) = &f.minimal {
            let line = replay_line(path, &cni_path, templates::setup(plugin), &obs.steps);
            o = o.with_property(
                format!("finding {k} replay"),
                nfvi_harness::truncate_chars(&line, 40_000),
            );
        }
    }
    o
}
