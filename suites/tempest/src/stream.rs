//! `tempest run --subunit` as it runs: the tests an earlier run settled ([`carry`]), then the
//! stream decoded test by test into the report, the run's ledger (as each test ends) and the
//! progress shown beside the waiting checks.

use std::process::Stdio;
use std::time::{Duration, Instant};

use nfvi_harness::Progress;
use nfvi_harness::cancel::CancelToken;
use nfvi_harness::ledger::Ledger;
use nfvi_suite_evidence::ingest::subunit::Decoder;
use nix::sys::signal::Signal;
use nix::unistd::Pid;
use tokio::io::AsyncReadExt;
use tokio::sync::watch;

use crate::collect::{Collector, Counts, TestRecord, excerpt, progress_line};
use crate::proc::{self, Group};
use crate::run::{Ran, progress};

/// Of the tests listed, those an earlier run settled (as this run's records) and the rest
/// (to run), each in the listed order.
pub fn carry(
    listed: &[String],
    prior: &[nfvi_harness::ledger::TestRecord],
) -> (Vec<TestRecord>, Vec<String>) {
    let prior: std::collections::HashMap<&str, &nfvi_harness::ledger::TestRecord> =
        prior.iter().map(|r| (r.test.as_str(), r)).collect();
    let (mut carried, mut rest) = (Vec::new(), Vec::new());
    for id in listed {
        match prior.get(id.as_str()) {
            Some(r) => carried.push(crate::collect::from_ledger(r)),
            None => rest.push(id.clone()),
        }
    }
    (carried, rest)
}

/// Where a running Tempest's tests go as they end.
pub(crate) struct Sink<'a> {
    pub(crate) ledger: &'a Ledger,
    pub(crate) progress: &'a watch::Sender<Option<Progress>>,
}

/// Runs `tempest run --subunit` to its end, its deadline or the run's cancellation, collecting
/// each test as it ends into `ran`, the ledger and the progress.
pub(crate) async fn stream(
    mut cmd: std::process::Command,
    ran: &mut Ran,
    deadline: Duration,
    cancel: &CancelToken,
    password: &str,
    sink: Sink<'_>,
) -> Result<(), String> {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = proc::spawn_tied(cmd).map_err(|e| format!("cannot start tempest run: {e}"))?;
    // Killed whole when this ends, however it ends.
    let group = Group(Some(Pid::from_raw(child.id() as i32)));
    let pipe = |e: std::io::Error| format!("tempest run's pipes: {e}");
    let mut out = tokio::process::ChildStdout::from_std(
        child.stdout.take().ok_or("tempest run has no stdout")?,
    )
    .map_err(pipe)?;
    let mut err = tokio::process::ChildStderr::from_std(
        child.stderr.take().ok_or("tempest run has no stderr")?,
    )
    .map_err(pipe)?;
    let err_task = tokio::spawn(async move {
        let mut e = Vec::new();
        let _ = (&mut err).take(1 << 20).read_to_end(&mut e).await;
        e
    });
    let started = Instant::now();
    let stop_at = tokio::time::Instant::now() + deadline;
    let mut decoder = Decoder::new();
    let mut collector = Collector::new(password);
    let mut last_line = Instant::now();
    let mut buf = vec![0u8; 64 * 1024];
    let total = ran.listed;
    // The carried tests stay in `ran.tests` (whatever ends the stream); they count too.
    let carried = ran.tests.len();
    let mut before = Counts::default();
    for t in &ran.tests {
        match t.status {
            nfvi_suite_evidence::model::TestStatus::Passed => before.passed += 1,
            nfvi_suite_evidence::model::TestStatus::Failed => before.failed += 1,
            _ => before.skipped += 1,
        }
    }
    let counted = |c: &Counts| Counts {
        passed: c.passed + before.passed,
        failed: c.failed + before.failed,
        skipped: c.skipped + before.skipped,
    };
    let mut ledger_error: Option<String> = None;
    loop {
        let n = tokio::select! {
            r = out.read(&mut buf) => r.map_err(|e| format!("reading Tempest's subunit stream: {e}"))?,
            () = tokio::time::sleep_until(stop_at) => {
                group.signal(Signal::SIGKILL);
                ran.stopped = Some(format!("Tempest did not finish within tempest.timeout_minutes ({} min); stopped", deadline.as_secs() / 60));
                break;
            }
            () = cancel.cancelled() => {
                group.signal(Signal::SIGTERM);
                ran.stopped = Some("the run was cancelled; Tempest was stopped".to_owned());
                break;
            }
        };
        let packets = if n == 0 {
            decoder.finish()
        } else {
            decoder.push(&buf[..n])
        }
        .map_err(|e| {
            format!(
                "Tempest's subunit stream is malformed at {}: {}",
                e.at.unwrap_or_default(),
                e.message
            )
        })?;
        let ended: Vec<_> = packets
            .into_iter()
            .filter_map(|p| collector.packet(p))
            .filter_map(|t| crate::collect::to_ledger(&t))
            .collect();
        if !ended.is_empty() {
            if let Err(e) = sink.ledger.append(&ended)
                && ledger_error.is_none()
            {
                tracing::warn!(error = %e, "cannot write the upstream ledger");
                ledger_error = Some(e.to_string());
            }
            let all = counted(&collector.counts);
            let done = all.passed + all.failed + all.skipped;
            let run_done = done - carried;
            let elapsed = started.elapsed();
            // Not before a few tests of this run ended: the first ones carry Tempest's start.
            let eta = (run_done >= 5 && total > done)
                .then(|| elapsed.mul_f64((total - done) as f64 / run_done as f64));
            sink.progress.send_replace(Some(Progress {
                done: done as u64,
                total: Some(total as u64),
                unit: "Tempest tests",
                failed: all.failed as u64,
                eta,
            }));
        }
        if last_line.elapsed() >= Duration::from_secs(10) {
            last_line = Instant::now();
            tracing::info!(target: "tempest", "{}", progress_line(&counted(&collector.counts), total, started.elapsed()));
        }
        if n == 0 {
            break;
        }
    }
    ran.elapsed = started.elapsed().as_secs_f64();
    let counts = counted(&collector.counts);
    ran.tests.extend(collector.finish());
    if let Some(e) = ledger_error {
        progress(format!(
            "the tests' ledger could not be written ({e}): a resumed run would run them again"
        ));
    }
    // A std child: waited for on a blocking thread (the group's kill below ends the wait).
    let waited = tokio::task::spawn_blocking(move || child.wait());
    let status = tokio::time::timeout(Duration::from_secs(10), waited)
        .await
        .ok()
        .and_then(Result::ok);
    drop(group);
    ran.exit_code = status
        .as_ref()
        .and_then(|s| s.as_ref().ok())
        .and_then(|s| s.code());
    let stderr = err_task.await.unwrap_or_default();
    progress(format!(
        "finished: {}",
        progress_line(&counts, total, started.elapsed())
    ));
    if ran.tests.len() == ran.carried && ran.stopped.is_none() {
        let code = status.and_then(Result::ok).and_then(|s| s.code());
        return Err(format!(
            "tempest run reported no test ({}): {}",
            code.map_or("killed".to_owned(), |c| format!("exit {c}")),
            excerpt(&stderr, password)
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settled_tests_are_carried_and_the_rest_run_in_the_listed_order() {
        use nfvi_harness::ledger::{TestRecord as L, TestStatus as S};
        let rec = |test: &str, status| L {
            stream: "tempest".into(),
            test: test.into(),
            status,
            detail: Some("why".into()),
            secs: 1.5,
            carried_from: None,
        };
        let listed: Vec<String> = ["a[id-1]", "b[id-2]", "c[id-3]", "d[id-4]"]
            .map(String::from)
            .to_vec();
        // A test the earlier run had that this selection does not list is ignored.
        let prior = [
            rec("c[id-3]", S::Skipped),
            rec("a[id-1]", S::Passed),
            rec("z", S::Failed),
        ];
        let (carried, rest) = carry(&listed, &prior);
        let ids: Vec<&str> = carried.iter().map(|t| t.id.as_str()).collect();
        assert_eq!(ids, ["a[id-1]", "c[id-3]"]);
        assert_eq!(rest, ["b[id-2]", "d[id-4]"]);
        assert_eq!(
            carried[1].status,
            nfvi_suite_evidence::model::TestStatus::Skipped
        );
        assert_eq!(carried[0].uuid.as_deref(), Some("1"));
        let (none, all) = carry(&listed, &[]);
        assert!(none.is_empty());
        assert_eq!(all, listed);
    }
}
