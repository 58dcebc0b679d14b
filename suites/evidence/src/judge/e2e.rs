//! Whether an e2e run shows a conformant cluster: a conformance run (focused on
//! `[Conformance]`, or running only conformance specs, with none of them skipped), nothing
//! failed, the e2e.log (when present) closing with `SUCCESS!` and the same counts as the JUnit,
//! and at least one conformance spec passed.

use nfvi_harness::Outcome;

use crate::model::E2eRun;

fn list(names: &[String], max: usize) -> String {
    let mut s = names
        .iter()
        .take(max)
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > max {
        s.push_str(&format!(" and {} more", names.len() - max));
    }
    s
}

/// Judges one e2e run.
pub fn conformance(run: &E2eRun) -> Outcome {
    if !run.failed.is_empty() {
        return Outcome::fail(format!(
            "the e2e run failed {} spec(s): {}",
            run.failed.len(),
            list(&run.failed, 10)
        ));
    }
    if let Some(log) = &run.log {
        if log.before_suite_failed {
            return Outcome::fail("e2e.log: a BeforeSuite node failed, so every spec was skipped");
        }
        let Some(s) = log.summary else {
            return Outcome::error(
                "e2e.log has no closing `SUCCESS!`/`FAIL!` line: the run did not finish, or the log is truncated",
            );
        };
        if !s.success {
            return Outcome::fail(format!(
                "e2e.log closes with FAIL!: {} passed, {} failed, {} pending, {} skipped",
                s.passed, s.failed, s.pending, s.skipped
            ));
        }
        let junit = (run.passed as u64, 0, run.pending as u64, run.skipped as u64);
        let (p, f, pe, sk) = (s.passed, s.failed, s.pending, s.skipped);
        // ginkgo v1 writes pending specs as <skipped/>, like skipped ones.
        let same = (p, f) == (junit.0, junit.1) && (pe + sk == junit.2 + junit.3);
        if !same {
            return Outcome::error(format!(
                "e2e.log and the JUnit disagree: the log says {p} passed, {f} failed, {pe} pending, {sk} skipped; the JUnit holds {} passed, 0 failed, {} pending, {} skipped: are they of the same run?",
                junit.0, junit.2, junit.3
            ));
        }
    }
    if run.suite_succeeded == Some(false) {
        return Outcome::fail(
            "the JUnit says SuiteSucceeded=false although no spec failed (a suite node or a special failure)",
        );
    }
    let focused = run
        .focus
        .as_deref()
        .is_some_and(|f| f.contains("Conformance"));
    if !focused && run.ran_not_conformance > 0 {
        return Outcome::error(format!(
            "not a conformance run: focus {:?}, and {} spec(s) without [Conformance] ran; run `sonobuoy run --mode=certified-conformance` (or E2E_FOCUS=\\[Conformance\\])",
            run.focus.as_deref().unwrap_or("(none recorded)"),
            run.ran_not_conformance
        ));
    }
    if run.conformance_skipped_count > 0 {
        return Outcome::error(format!(
            "not a complete conformance run: {} [Conformance] spec(s) were skipped (e.g. {}); certification runs every conformance spec (an empty E2E_SKIP)",
            run.conformance_skipped_count,
            list(&run.conformance_skipped, 3)
        ));
    }
    if run.conformance_passed == 0 {
        return Outcome::error(
            "no [Conformance] spec passed in this run: nothing verifies conformance",
        );
    }
    Outcome::pass(format!(
        "conformance run passed: {} [Conformance] spec(s) passed, 0 failed, {} skipped (not conformance)",
        run.conformance_passed, run.skipped
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{E2eLog, LogSummary};
    use nfvi_harness::Status;

    fn good() -> E2eRun {
        E2eRun {
            focus: Some(r"\[Conformance\]".into()),
            suite_succeeded: Some(true),
            passed: 419,
            skipped: 6312,
            conformance_passed: 419,
            ..E2eRun::default()
        }
    }

    fn log(success: bool, passed: u64, failed: u64, skipped: u64) -> E2eLog {
        E2eLog {
            summary: Some(LogSummary {
                success,
                passed,
                failed,
                pending: 0,
                skipped,
            }),
            ..E2eLog::default()
        }
    }

    #[test]
    fn table() {
        type Case = (&'static str, fn(&mut E2eRun), Status, &'static str);
        let rows: &[Case] = &[
            ("passing run", |_| {}, Status::Passed, "419 [Conformance]"),
            (
                "with its log",
                |r| r.log = Some(log(true, 419, 0, 6312)),
                Status::Passed,
                "passed",
            ),
            (
                "failed specs",
                |r| r.failed = vec!["a".into(), "b".into()],
                Status::Failed,
                "`a`, `b`",
            ),
            (
                "log says FAIL",
                |r| r.log = Some(log(false, 419, 0, 6312)),
                Status::Failed,
                "FAIL!",
            ),
            (
                "log truncated",
                |r| r.log = Some(E2eLog::default()),
                Status::Error,
                "truncated",
            ),
            (
                "log of another run",
                |r| r.log = Some(log(true, 10, 0, 6312)),
                Status::Error,
                "disagree",
            ),
            (
                "before suite failed",
                |r| {
                    r.log = Some(E2eLog {
                        before_suite_failed: true,
                        ..log(true, 0, 0, 0)
                    })
                },
                Status::Failed,
                "BeforeSuite",
            ),
            (
                "suite failed",
                |r| r.suite_succeeded = Some(false),
                Status::Failed,
                "SuiteSucceeded",
            ),
            (
                "not focused, others ran",
                |r| {
                    r.focus = None;
                    r.ran_not_conformance = 3
                },
                Status::Error,
                "not a conformance run",
            ),
            (
                "not focused, only conformance ran",
                |r| r.focus = None,
                Status::Passed,
                "passed",
            ),
            (
                "conformance skipped",
                |r| {
                    r.conformance_skipped_count = 148;
                    r.conformance_skipped = vec!["x".into()]
                },
                Status::Error,
                "148",
            ),
            (
                "nothing observed",
                |r| {
                    r.conformance_passed = 0;
                    r.passed = 0
                },
                Status::Error,
                "no [Conformance] spec passed",
            ),
        ];
        for (what, edit, status, text) in rows {
            let mut r = good();
            edit(&mut r);
            let o = conformance(&r);
            assert_eq!(o.status, *status, "{what}: {}", o.message);
            assert!(o.message.contains(text), "{what}: {}", o.message);
        }
    }
}
