//! Progress on stderr: a bar with pass/fail/skip counts and the running checks on a
//! terminal; one plain line per finished check when stderr is not a terminal or `CI` is set.
//! stdout stays free for machine output.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use nfvi_harness::runner::humanize;
use nfvi_harness::{Reporter, RunEvent, Status};

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
                self.running.join(", ")
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
            RunEvent::NodeFailed { node, error } => {
                self.line(&format!(
                    "nfvi-verify: node {node} could not be verified: {error}"
                ));
            }
            RunEvent::CheckFinished { id, run } => {
                if let Some(pos) = self.running.iter().position(|r| r == id) {
                    self.running.remove(pos);
                }
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
