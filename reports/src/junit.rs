//! JUnit XML for CI test reporters (GitLab, Jenkins, GitHub).
//!
//! One `<testsuite>` per area named `<suite>.<area>`; each check is a `<testcase>` with
//! `classname = <suite>.<area>` and `name = <check id>`, unique as GitLab requires. A check
//! that ran on a node of a fleet appears once per node, kept apart for GitLab and Jenkins:
//! `name = <check id> [<node>]` and `classname = <suite>.<area>.<node>` (dots in the node
//! name become `_` there, so that Jenkins does not read an FQDN as packages), with a `node`
//! property and a `node:` line in system-out. Failed,
//! error and skipped stay apart (`<failure>`, `<error>`, `<skipped>`); timeouts are errors of
//! type `timeout`. Requirement IDs are testcase properties (Jenkins, tooling) and the first
//! line of system-out (GitLab shows that, not properties). quick-junit drops characters XML
//! 1.0 cannot carry, so whatever a plugin printed, the file parses.
//!
//! A failure a waiver excused is a `<skipped>` of type `waived` whose message names the
//! waiver: `waived by W-17: <reason> (owner <owner>, expires 2027-03-31, <ticket>)`, with a
//! `waived: …` line in system-out and the testcase properties `waiver` and
//! `waiver-expires`. Not a `<failure>`: GitLab and Jenkins count failures against the
//! pipeline, and a waived failure does not decide the verdict, so a JUnit gate agrees with
//! it. Not a pass either: both CI systems list skipped tests apart, with their message, so
//! the waiver stays in sight. The outcome property stays `failed`.
//!
//! A check that judged an upstream suite's tests (Tempest's, listed in its evidence as
//! `test <id>` properties) brings them along: a `<testsuite>` of their own,
//! `<suite>.<area>.<check id>`, one `<testcase>` per test (its ID, time, and skip reason or
//! failure), so that CI shows 134 Tempest tests and which one failed, not one check. They
//! never say more than their check: a failed test is a `<failure>` only when its check is
//! one (or an `<error>` when the check is), and is listed as skipped, with why, under a
//! check that was waived or passed.

use std::time::Duration;

use nfvi_harness::Status;
use nfvi_harness::results::{CheckResult, RunResults};
use nfvi_harness::truncate_chars;
use nfvi_reference_model::Area;
use quick_junit::{NonSuccessKind, Property, Report, TestCase, TestCaseStatus, TestSuite};

use crate::ReportError;

const MAX_COMMAND_OUTPUT: usize = 4096;

/// `waived by W-17: reason (owner o, expires 2027-03-31, https://…)`.
fn waived_message(c: &CheckResult) -> Option<String> {
    let w = c.waiver.as_ref()?;
    let mut s = format!(
        "waived by {}: {} (owner {}, expires {}",
        w.id, w.reason, w.owner, w.expires
    );
    if let Some(t) = &w.ticket {
        s.push_str(&format!(", {t}"));
    }
    s.push(')');
    Some(s)
}

fn system_out(c: &CheckResult) -> String {
    let reqs: Vec<&str> = c.requirements.iter().map(|r| r.as_str()).collect();
    let mut s = format!(
        "requirements: {}\nseverity: {} (in this suite: {})\noutcome: {}\n{}\n",
        if reqs.is_empty() {
            "none (informational)".to_owned()
        } else {
            reqs.join(", ")
        },
        c.severity,
        c.effective_severity,
        c.outcome.as_str(),
        c.message
    );
    if let Some(waived) = waived_message(c) {
        s.push_str(&format!(
            "waived: {}\n",
            waived.trim_start_matches("waived by ")
        ));
    }
    if let Some(subject) = &c.subject {
        s.push_str(&format!("subject: {subject}\n"));
    }
    if let Some(node) = &c.node {
        s.push_str(&format!("node: {node}\n"));
    }
    if let Some(stage) = &c.evidence.stage {
        s.push_str(&format!("stage: {stage}\n"));
    }
    for (k, v) in &c.evidence.properties {
        s.push_str(&format!("{k} = {v}\n"));
    }
    for (k, m) in &c.evidence.metrics {
        s.push_str(&format!("{k} = {} {}\n", m.value, m.unit));
    }
    for p in &c.evidence.provenance {
        s.push_str(&format!(
            "evidence: {}{} {} sha256 {}{}\n",
            p.tool,
            p.tool_version
                .as_deref()
                .map(|v| format!(" {v}"))
                .unwrap_or_default(),
            p.file,
            p.sha256,
            if p.identity_verified {
                ", identity verified"
            } else {
                ", identity not verified"
            }
        ));
    }
    for cmd in &c.evidence.commands {
        s.push_str(&format!("$ {}\n", cmd.command));
        for stream in [&cmd.stdout, &cmd.stderr] {
            if !stream.is_empty() {
                s.push_str(&truncate_chars(stream, MAX_COMMAND_OUTPUT));
                if !stream.ends_with('\n') {
                    s.push('\n');
                }
            }
        }
        s.push_str(&format!(
            "[exit {}]\n",
            cmd.exit_code.map_or("-".to_owned(), |c| c.to_string())
        ));
    }
    for cl in &c.cleanup {
        s.push_str(&format!(
            "cleanup: {} ({})\n",
            cl.action,
            cl.error.as_deref().unwrap_or("ok")
        ));
    }
    s
}

fn status(c: &CheckResult, strict: bool) -> TestCaseStatus {
    match c.outcome {
        Status::Passed => TestCaseStatus::success(),
        Status::Failed if c.waiver.is_some() => {
            let mut st = TestCaseStatus::skipped();
            st.set_message(waived_message(c).unwrap_or_default())
                .set_type("waived");
            st
        }
        Status::Failed => {
            let mut st = TestCaseStatus::non_success(NonSuccessKind::Failure);
            let message = if c.is_warning(strict) {
                format!(
                    "[warning: {} failure, does not decide the verdict] {}",
                    c.effective_severity, c.message
                )
            } else {
                c.message.clone()
            };
            st.set_message(message)
                .set_type(format!("non-conformant:{}", c.effective_severity));
            st
        }
        Status::Error | Status::TimedOut => {
            let mut st = TestCaseStatus::non_success(NonSuccessKind::Error);
            st.set_message(c.message.clone())
                .set_type(if c.outcome == Status::TimedOut {
                    "timeout"
                } else {
                    "error"
                });
            st
        }
        Status::Skipped => {
            let mut st = TestCaseStatus::skipped();
            st.set_message(c.message.clone());
            if let Some(kind) = c.skip_kind {
                st.set_type(
                    serde_json::to_value(kind)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_owned))
                        .unwrap_or_default(),
                );
            }
            st
        }
    }
}

/// The upstream tests a check judged (`test <id>` evidence properties, as Tempest's check
/// writes them: `passed in 0.42 s (idempotent id …)`, `skipped: reason`, `failed in 1.00 s
/// …: detail`, `never finished`, `never run`), as a testsuite of their own; `None` when the
/// check lists none.
fn upstream_suite(
    c: &CheckResult,
    classname: &str,
    check: &TestCaseStatus,
    results: &RunResults,
) -> Option<TestSuite> {
    let tests: Vec<(&str, &str)> = c
        .evidence
        .properties
        .iter()
        .filter_map(|(k, v)| Some((k.strip_prefix("test ")?, v.as_str())))
        .collect();
    if tests.is_empty() {
        return None;
    }
    let name = format!("{classname}.{}", c.id);
    let mut suite = TestSuite::new(name.clone());
    suite.set_timestamp(results.started_at.fixed_offset());
    suite.add_property(Property::new("check", c.id.as_str()));
    let mut total = Duration::ZERO;
    for (id, said) in tests {
        let (word, rest) = split_status(said);
        let time = rest
            .strip_prefix(" in ")
            .and_then(|t| t.split(' ').next())
            .and_then(|t| t.parse::<f64>().ok())
            .filter(|t| t.is_finite() && *t >= 0.0)
            .map_or(Duration::ZERO, seconds);
        total = total.saturating_add(time).min(LONGEST);
        let detail = rest.split_once(": ").map_or("", |(_, d)| d);
        let st = match word {
            "passed" => TestCaseStatus::success(),
            "skipped" => {
                let mut st = TestCaseStatus::skipped();
                st.set_message(detail);
                st
            }
            _ => match check {
                TestCaseStatus::NonSuccess { kind, .. } => {
                    let mut st = TestCaseStatus::non_success(*kind);
                    st.set_message(
                        format!("{word}: {detail}")
                            .trim_end_matches(": ")
                            .to_owned(),
                    )
                    .set_type(word);
                    st
                }
                _ => {
                    let mut st = TestCaseStatus::skipped();
                    st.set_message(format!(
                        "{word}, but the check {} ({}): {detail}",
                        c.id,
                        if c.waiver.is_some() {
                            "waived"
                        } else {
                            c.outcome.as_str()
                        }
                    ))
                    .set_type("not-deciding");
                    st
                }
            },
        };
        let mut tc = TestCase::new(id, st);
        tc.set_classname(name.clone()).set_time(time);
        suite.add_test_case(tc);
    }
    suite.set_time(total);
    Some(suite)
}

/// `failed in 1.00 s …: detail` → (`failed`, ` in 1.00 s …: detail`); the two-word states
/// (`never finished`, `never run`) whole.
fn split_status(said: &str) -> (&str, &str) {
    for two in ["never finished", "never run"] {
        if let Some(rest) = said.strip_prefix(two) {
            return (two, rest);
        }
    }
    let end = said
        .find(|c: char| !c.is_ascii_alphabetic())
        .unwrap_or(said.len());
    (&said[..end], &said[end..])
}

/// The longest time written (about 31 years): longer ones come from damaged results, and
/// JUnit readers cannot parse `Duration::MAX` back.
const LONGEST: Duration = Duration::from_secs(1_000_000_000);

/// Seconds from results that may be damaged or hostile (negative, NaN, 1e300): never a
/// panic, at most [`LONGEST`].
fn seconds(s: f64) -> Duration {
    Duration::try_from_secs_f64(s.max(0.0))
        .unwrap_or(LONGEST)
        .min(LONGEST)
}

/// Renders `junit.xml`.
pub fn render_junit(results: &RunResults) -> Result<String, ReportError> {
    let mut report = Report::new(format!("nfvi-verify {}", results.suite.name));
    report
        .set_timestamp(results.started_at.fixed_offset())
        .set_time(seconds(results.duration_secs));
    let mut present: Vec<Area> = results.checks.iter().map(|c| c.area).collect();
    present.sort();
    present.dedup();
    for area in present {
        let checks: Vec<&CheckResult> = results.checks.iter().filter(|c| c.area == area).collect();
        if checks.is_empty() {
            continue;
        }
        let classname = format!("{}.{}", results.suite.name, area);
        let mut suite = TestSuite::new(classname.clone());
        suite.set_timestamp(results.started_at.fixed_offset());
        suite.add_properties([
            Property::new("run_id", results.run_id.as_str()),
            Property::new("suite_version", results.suite.version.as_str()),
            Property::new("verdict", results.verdict.as_str()),
            Property::new("complete", results.complete.to_string()),
            Property::new("tool_version", results.tool.version.as_str()),
            Property::new("git_sha", results.tool.git_sha.as_str()),
            Property::new(
                "inventory_fingerprint",
                results.inventory.fingerprint.as_str(),
            ),
        ]);
        let mut total = Duration::ZERO;
        let mut upstream = Vec::new();
        for c in checks {
            let (name, case_classname) = match &c.node {
                None => (c.id.clone(), classname.clone()),
                Some(node) => (
                    format!("{} [{node}]", c.id),
                    format!("{classname}.{}", node.replace('.', "_")),
                ),
            };
            let mut tc = TestCase::new(name, status(c, results.strict));
            let time = seconds(c.duration_secs);
            total = total.saturating_add(time).min(LONGEST);
            tc.set_classname(case_classname).set_time(time);
            if let Some(t) = c.started_at {
                tc.set_timestamp(t.fixed_offset());
            }
            let reqs: Vec<&str> = c.requirements.iter().map(|r| r.as_str()).collect();
            tc.add_properties([
                Property::new("requirements", reqs.join(",")),
                Property::new("severity", c.severity.as_str()),
                Property::new("effective_severity", c.effective_severity.as_str()),
                Property::new("outcome", c.outcome.as_str()),
            ]);
            if let Some(node) = &c.node {
                tc.add_property(Property::new("node", node.as_str()));
            }
            if let Some(w) = &c.waiver {
                tc.add_properties([
                    Property::new("waiver", w.id.as_str()),
                    Property::new("waiver-expires", w.expires.to_string()),
                ]);
            }
            let check_status = status(c, results.strict);
            tc.set_system_out(system_out(c));
            suite.add_test_case(tc);
            if c.node.is_none()
                && let Some(tests) = upstream_suite(c, &classname, &check_status, results)
            {
                upstream.push(tests);
            }
        }
        suite.set_time(total);
        report.add_test_suite(suite);
        report.add_test_suites(upstream.drain(..));
    }
    report.to_string().map_err(|e| ReportError::Render {
        what: "junit.xml",
        message: e.to_string(),
    })
}
