//! Progress on stderr: a bar with pass/fail/skip counts and the running checks on a
//! terminal; one plain line per finished check when stderr is not a terminal or `CI` is set.
//! A long check's own progress (an upstream suite's tests: counts, failures, time left) shows
//! next to it on the bar, and as a plain line every [`PLAIN_EVERY`] otherwise.
//! stdout stays free for machine output.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use nfvi_harness::runner::humanize;
use nfvi_harness::{Progress, Reporter, RunEvent, Status};

/// How often a plain (non-terminal) console prints a running check's progress.
pub const PLAIN_EVERY: Duration = Duration::from_secs(30);

/// A running check's progress as the console keeps it.
struct Shown {
    first: Instant,
    first_done: u64,
    printed: Option<Instant>,
    text: String,
}

/// "27/134 tests, 1 failed, about 1m 52s left": the time left is the check's own estimate,
/// else the rate since its first report (none before two reports apart).
pub fn progress_text(p: &Progress, since_first: Duration, done_since_first: u64) -> String {
    let mut text = match p.total {
        Some(total) => format!("{}/{total} {}", p.done, p.unit),
        None => format!("{} {}", p.done, p.unit),
    };
    if p.failed > 0 {
        text.push_str(&format!(", {} failed", p.failed));
    }
    let eta = p.eta.or_else(|| {
        let total = p.total?;
        if done_since_first == 0 || since_first.is_zero() {
            return None;
        }
        let left = total.saturating_sub(p.done) as f64;
        Some(since_first.mul_f64(left / done_since_first as f64))
    });
    if let Some(eta) = eta.filter(|_| p.total.is_some_and(|t| p.done < t)) {
        text.push_str(&format!(
            ", about {} left",
            humanize(Duration::from_secs(eta.as_secs().max(1)))
        ));
    }
    text
}

/// Whether to draw a progress bar.
pub fn use_bar(no_progress: bool) -> bool {
    !no_progress && std::io::stderr().is_terminal() && std::env::var_os("CI").is_none()
}

#[derive(Default)]
struct Counts {
    passed: usize,
    failed: usize,
    errors: usize,
    skipped: usize,
}

/// The console reporter.
pub struct Console {
    bar: Option<ProgressBar>,
    total: usize,
    done: usize,
    counts: Counts,
    running: Vec<String>,
    progress: HashMap<String, Shown>,
    /// The last plain progress text, for checks that wait for one shared run (each would
    /// print the same line).
    last_plain: Option<(Instant, String)>,
}

impl Console {
    pub fn new(bar: bool) -> Self {
        let bar = bar.then(|| {
            let pb = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
            pb.set_style(
                ProgressStyle::with_template("{spinner} [{bar:28}] {pos}/{len} {msg}")
                    .expect("valid template")
                    .progress_chars("=> "),
            );
            pb.enable_steady_tick(Duration::from_millis(120));
            pb
        });
        Self {
            bar,
            total: 0,
            done: 0,
            counts: Counts::default(),
            running: Vec::new(),
            progress: HashMap::new(),
            last_plain: None,
        }
    }

    fn line(&self, text: &str) {
        match &self.bar {
            Some(pb) => pb.println(text),
            None => {
                let _ = writeln!(std::io::stderr(), "{text}");
            }
        }
    }

    fn refresh(&self) {
        if let Some(pb) = &self.bar {
            let c = &self.counts;
            pb.set_position(self.done as u64);
            pb.set_message(format!(
                "passed {} failed {} error {} skipped {} | {}",
                c.passed,
                c.failed,
                c.errors,
                c.skipped,
                self.running
                    .iter()
                    .map(|id| match self.progress.get(id) {
                        Some(shown) => format!("{id} ({})", shown.text),
                        None => id.clone(),
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    }
}

impl Reporter for Console {
    fn report(&mut self, event: &RunEvent<'_>) {
        match event {
            RunEvent::RunStarted { plan, results } => {
                self.total = *results;
                if let Some(pb) = &self.bar {
                    pb.set_length(self.total as u64);
                }
                let fleet = match results.cmp(&plan.items.len()) {
                    std::cmp::Ordering::Equal => String::new(),
                    std::cmp::Ordering::Greater => {
                        format!(" ({results} results over the fleet's nodes)")
                    }
                    // A resumed run: the others have their results already.
                    std::cmp::Ordering::Less => format!(" ({results} without a result yet)"),
                };
                self.line(&format!(
                    "nfvi-verify: suite {} ({}), target {}: {} checks, {} will run{fleet}",
                    plan.suite.name,
                    plan.suite.version,
                    plan.target,
                    plan.items.len(),
                    plan.runnable()
                ));
            }
            RunEvent::CheckStarted { id, .. } => {
                // Shown once however many nodes run it (and however often an agent says so).
                if !self.running.iter().any(|r| r == id) {
                    self.running.push((*id).to_owned());
                }
                self.refresh();
            }
            RunEvent::CheckProgress { id, progress, .. } => {
                let now = Instant::now();
                let shown = self
                    .progress
                    .entry((*id).to_owned())
                    .or_insert_with(|| Shown {
                        first: now,
                        first_done: progress.done,
                        printed: None,
                        text: String::new(),
                    });
                shown.text = progress_text(
                    progress,
                    now - shown.first,
                    progress.done.saturating_sub(shown.first_done),
                );
                let due = shown.printed.is_none_or(|t| now - t >= PLAIN_EVERY);
                let repeated = self
                    .last_plain
                    .as_ref()
                    .is_some_and(|(t, text)| *text == shown.text && now - *t < PLAIN_EVERY);
                if self.bar.is_none() && due {
                    shown.printed = Some(now);
                    if !repeated {
                        self.last_plain = Some((now, shown.text.clone()));
                        let text = format!("nfvi-verify: {id}: {}", shown.text);
                        self.line(&text);
                    }
                }
                self.refresh();
            }
            RunEvent::NodeFailed { node, error } => {
                self.line(&format!(
                    "nfvi-verify: node {node} could not be verified: {error}"
                ));
            }
            RunEvent::CheckFinished { id, run } => {
                if let Some(pos) = self.running.iter().position(|r| r == id) {
                    self.running.remove(pos);
                }
                self.progress.remove(*id);
                let on = run
                    .node
                    .as_deref()
                    .map(|n| format!(" on {n}"))
                    .unwrap_or_default();
                self.done += 1;
                let o = &run.outcome;
                let tag = match o.status {
                    Status::Passed => {
                        self.counts.passed += 1;
                        "PASS "
                    }
                    Status::Failed => {
                        self.counts.failed += 1;
                        "FAIL "
                    }
                    Status::Error => {
                        self.counts.errors += 1;
                        "ERROR"
                    }
                    Status::TimedOut => {
                        self.counts.errors += 1;
                        "TIMEOUT"
                    }
                    Status::Skipped => {
                        self.counts.skipped += 1;
                        "SKIP "
                    }
                };
                let width = self.total.to_string().len();
                let mut text = format!(
                    "[{:>width$}/{}] {tag} {id}{on} ({})",
                    self.done,
                    self.total,
                    humanize(run.duration)
                );
                if o.status != Status::Passed {
                    text.push_str(&format!(
                        "\n{:width$}         {}",
                        "",
                        o.message,
                        width = width * 2
                    ));
                }
                // On a terminal only the interesting lines scroll above the bar.
                if self.bar.is_none() || o.status != Status::Passed {
                    self.line(&text);
                }
                self.refresh();
            }
            RunEvent::Cancelling { reason } => {
                self.line(&format!(
                    "nfvi-verify: stopping ({}): no new checks start; running checks get a grace period, then cleanup runs. Press Ctrl-C again to kill at once.",
                    reason.as_str()
                ));
            }
            RunEvent::RunFinished { .. } => {
                if let Some(pb) = self.bar.take() {
                    pb.finish_and_clear();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(done: u64, total: Option<u64>, failed: u64, eta: Option<u64>) -> Progress {
        Progress {
            done,
            total,
            unit: "tests",
            failed,
            eta: eta.map(Duration::from_secs),
        }
    }

    #[test]
    fn progress_shows_counts_failures_and_the_time_left() {
        let secs = Duration::from_secs;
        let rows = [
            // The check's own estimate wins.
            (
                p(27, Some(134), 0, Some(112)),
                secs(5),
                1,
                "27/134 tests, about 1m52s left",
            ),
            // From the rate: 10 tests in 20 s, 100 left.
            (
                p(34, Some(134), 2, None),
                secs(20),
                10,
                "34/134 tests, 2 failed, about 3m20s left",
            ),
            // One report only: no rate yet.
            (p(3, Some(10), 0, None), Duration::ZERO, 0, "3/10 tests"),
            // Done, or no total: no estimate.
            (p(10, Some(10), 0, Some(9)), secs(9), 5, "10/10 tests"),
            (p(7, None, 1, None), secs(9), 5, "7 tests, 1 failed"),
        ];
        for (progress, since, done_since, want) in rows {
            assert_eq!(
                progress_text(&progress, since, done_since),
                want,
                "{progress:?}"
            );
        }
    }
}
