//! The evidence path of the upstream suites the k8s area drives itself: the JUnit and e2e.log
//! of its e2e pods and kube-bench's JSON of its Jobs go through the same parsers
//! ([`crate::ingest`]) and judges ([`crate::judge`]) as `--evidence` files, with provenance
//! (SHA-256 of the bytes, where they came from). Their identity needs no comparison: the
//! harness collected them from the cluster under test itself.

use std::sync::Arc;

use nfvi_harness::{Outcome, Provenance, Status};
use nfvi_suite_k8s::EvidencePath;
use nfvi_suite_k8s::upstream::ginkgo;

use crate::ingest::{self, sha256_hex};
use crate::judge::{bench, e2e};
use crate::model::E2eRun;

/// The evidence path the CLI hands to the k8s area.
pub fn path() -> Arc<dyn EvidencePath> {
    Arc::new(Upstream)
}

struct Upstream;

fn provenance(tool: &str, source: &str, data: &[u8], version: Option<String>) -> Provenance {
    Provenance {
        tool: tool.to_owned(),
        tool_version: version,
        file: source.to_owned(),
        sha256: sha256_hex(data),
        members: Vec::new(),
        run_at: Some(chrono::Utc::now()),
        run_at_source: Some("collected by this run".to_owned()),
        identity: Some("the cluster under test (collected from it by this run)".to_owned()),
        identity_verified: true,
    }
}

impl EvidencePath for Upstream {
    fn e2e(
        &self,
        source: &str,
        conformance_skip: Option<&str>,
        junit: &[u8],
        log: Option<&[u8]>,
    ) -> Outcome {
        let run = match ingest::parse_e2e(junit, log) {
            Ok(run) => run,
            Err(e) => {
                return Outcome::error(format!(
                    "the e2e results of {source} cannot be read: junit_01.xml{}: {}",
                    e.at.map(|a| format!(" at {a}")).unwrap_or_default(),
                    e.message
                ));
            }
        };
        let version = run.log.as_ref().and_then(|l| l.e2e_version.clone());
        let mut o = if let Some(skip) = conformance_skip {
            conformance_set(&run, skip, &skipped_conformance(junit))
        } else {
            focus_set(&run)
        };
        o.evidence.provenance.push(provenance(
            "kubernetes-e2e",
            &format!("{source}: junit_01.xml"),
            junit,
            version.clone(),
        ));
        if let Some(log) = log {
            o.evidence.provenance.push(provenance(
                "kubernetes-e2e",
                &format!("{source}: e2e.log"),
                log,
                version,
            ));
        }
        if !run.failed.is_empty() {
            o = o.with_property("failed_specs", run.failed.join("\n"));
        }
        o.with_metric("specs_passed", run.passed as f64, "count")
            .with_metric("specs_failed", run.failed.len() as f64, "count")
            .with_metric("specs_skipped", (run.skipped + run.pending) as f64, "count")
    }

    fn kube_bench(&self, source: &str, json: &[u8]) -> Outcome {
        let run = match ingest::parse_kube_bench(json) {
            Ok(run) => run,
            Err(e) => {
                return Outcome::error(format!(
                    "kube-bench's JSON from {source} cannot be read{}: {}",
                    e.at.map(|a| format!(" at {a}")).unwrap_or_default(),
                    e.message
                ));
            }
        };
        let mut o = bench_verdict(&run.controls);
        o.evidence
            .provenance
            .push(provenance("kube-bench", source, json, None));
        o.with_property("benchmark", run.benchmark.unwrap_or_default())
    }
}

/// A conformance run as RC2 runs it (its skip leaves out the `[Serial]` and disruptive
/// conformance specs): judged by [`e2e::conformance`], with the skipped conformance specs
/// whose names the set's `skip` matches named instead of counted against it. Every other
/// skipped conformance spec (one a narrower focus left unrun, one skipped at run time) still
/// counts: the run is then no complete conformance run. `skipped` holds the names of all
/// skipped or pending `[Conformance]` specs ([`skipped_conformance`]); when it holds fewer
/// than the run counted, the missing ones are not forgiven.
pub fn conformance_set(run: &E2eRun, skip: &str, skipped: &[String]) -> Outcome {
    let (forgiven, kept): (Vec<&String>, Vec<&String>) =
        skipped.iter().partition(|n| skip_matches(skip, n));
    let mut judged = run.clone();
    judged.conformance_skipped_count = run.conformance_skipped_count.saturating_sub(forgiven.len());
    judged.conformance_skipped = kept.iter().take(5).map(|n| (*n).clone()).collect();
    let mut o = e2e::conformance(&judged);
    if o.status == Status::Passed && !forgiven.is_empty() {
        o.message = format!(
            "{}; {} [Conformance] spec(s) left out by the set's skip {skip:?} (serial or disruptive), as RC2 runs it",
            o.message,
            forgiven.len()
        );
        let names: Vec<&str> = forgiven.iter().map(|n| n.as_str()).collect();
        o = o.with_property("conformance_skipped", names.join("\n"));
    }
    o.with_metric(
        "conformance_specs_passed",
        run.conformance_passed as f64,
        "count",
    )
}

/// Whether the skip regex `skip` matches `name` (somewhere in it, as ginkgo's skip does), for
/// the skips of the conformance set: alternatives (`a|b`) of literal text with `\[`, `\]`,
/// `\.`, `\(`, `\)` escapes. An alternative with any other regex syntax is not evaluated and
/// matches nothing, so a spec is never forgiven on a guess.
pub fn skip_matches(skip: &str, name: &str) -> bool {
    skip.split('|').filter(|a| !a.is_empty()).any(|alt| {
        let mut lit = String::with_capacity(alt.len());
        let mut chars = alt.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some(e @ ('[' | ']' | '.' | '(' | ')' | '\\' | '-' | ':' | '/')) => lit.push(e),
                    _ => return false,
                },
                '.' | '*' | '+' | '?' | '(' | ')' | '[' | ']' | '{' | '}' | '^' | '$' => {
                    return false;
                }
                c => lit.push(c),
            }
        }
        name.contains(&lit)
    })
}

/// The names of the `[Conformance]` specs a ginkgo JUnit reports skipped or pending
/// (`status="skipped"|"pending"` in ginkgo v2, a `<skipped>` child in v1: whatever else the
/// case says, [`ginkgo::TestCase::skip_marked`]), all of them (the parsed run keeps only a few
/// names), read by the k8s area's reader. The JUnit was parsed before; a malformed tail ends
/// the scan with what was read (the judge then forgives fewer, never more).
pub fn skipped_conformance(junit: &[u8]) -> Vec<String> {
    let read = ginkgo::read(junit);
    read.cases
        .into_iter()
        .chain(read.unfinished)
        .filter(|c| c.skip_marked && c.name.contains("[Conformance]"))
        .map(|c| match c.name.strip_prefix("[It] ") {
            Some(spec) => spec.to_owned(),
            None => c.name,
        })
        .collect()
}

/// A focus set: nothing failed, the e2e.log (when there) closes with `SUCCESS!` and agrees
/// with the JUnit, and at least one spec ran.
pub fn focus_set(run: &E2eRun) -> Outcome {
    if !run.failed.is_empty() {
        let shown: Vec<String> = run
            .failed
            .iter()
            .take(10)
            .map(|f| format!("`{f}`"))
            .collect();
        let more = run.failed.len().saturating_sub(10);
        return Outcome::fail(format!(
            "the set failed {} spec(s): {}{}",
            run.failed.len(),
            shown.join(", "),
            if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            }
        ));
    }
    if let Some(log) = &run.log {
        if log.before_suite_failed {
            return Outcome::fail("e2e.log: a BeforeSuite node failed, so every spec was skipped");
        }
        let Some(s) = log.summary else {
            return Outcome::error(
                "e2e.log has no closing `SUCCESS!`/`FAIL!` line: the suite did not finish, or the log is truncated",
            );
        };
        if !s.success {
            return Outcome::fail(format!(
                "e2e.log closes with FAIL!: {} passed, {} failed",
                s.passed, s.failed
            ));
        }
        if s.passed != run.passed as u64 || s.failed != 0 {
            return Outcome::error(format!(
                "e2e.log and the JUnit disagree: the log says {} passed and {} failed, the JUnit {} passed and none failed",
                s.passed, s.failed, run.passed
            ));
        }
    }
    if run.suite_succeeded == Some(false) {
        return Outcome::fail("the JUnit says SuiteSucceeded=false although no spec failed");
    }
    if run.passed == 0 {
        return Outcome::error(format!(
            "no spec of the set ran (focus {:?}): nothing was verified",
            run.focus.as_deref().unwrap_or("(none recorded)")
        ));
    }
    Outcome::pass(format!(
        "{} spec(s) passed, 0 failed, {} skipped",
        run.passed,
        run.skipped + run.pending
    ))
}

/// kube-bench's controls against the requirements of the mapping: failed when a control of
/// one fails, an error when no control of one was given; the scored CIS summary (sec.std.001,
/// a should) is added to the message but decides nothing.
pub fn bench_verdict(controls: &[crate::model::BenchControl]) -> Outcome {
    let rules = bench::rules();
    let verdicts: Vec<(String, Outcome)> = rules
        .iter()
        .map(|r| (r.id.clone(), bench::requirement(r, controls)))
        .collect();
    let scored = bench::scored(controls);
    let worst = [Status::Failed, Status::Error, Status::Passed]
        .into_iter()
        .find(|s| verdicts.iter().any(|(_, o)| o.status == *s))
        .unwrap_or(Status::Error);
    let message = verdicts
        .iter()
        .filter(|(_, o)| o.status == worst)
        .map(|(id, o)| format!("{id}: {}", o.message))
        .collect::<Vec<_>>()
        .join(" | ");
    let message = format!(
        "{message}; CIS (sec.std.001, informative): {}",
        scored.message
    );
    let mut o = match worst {
        Status::Passed => Outcome::pass(message),
        Status::Failed => Outcome::fail(message),
        _ => Outcome::error(message),
    };
    for (id, v) in verdicts {
        if let Some(c) = v.evidence.properties.get("controls") {
            o = o.with_property(format!("{id} controls"), c);
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{BenchControl, BenchStatus, E2eLog, LogSummary};

    fn run(passed: usize, failed: &[&str], log: Option<(bool, u64, u64)>) -> E2eRun {
        E2eRun {
            passed,
            failed: failed.iter().map(|s| (*s).to_owned()).collect(),
            skipped: 5,
            focus: Some(r"\[sig-network\]".into()),
            log: log.map(|(success, p, f)| E2eLog {
                summary: Some(LogSummary {
                    success,
                    passed: p,
                    failed: f,
                    pending: 0,
                    skipped: 5,
                }),
                ..E2eLog::default()
            }),
            ..E2eRun::default()
        }
    }

    #[test]
    fn a_focus_set_passes_only_when_specs_ran_and_none_failed() {
        let table: &[(E2eRun, Status, &str)] = &[
            (
                run(3, &[], Some((true, 3, 0))),
                Status::Passed,
                "3 spec(s) passed",
            ),
            (run(3, &[], None), Status::Passed, "3 spec(s) passed"),
            (
                run(2, &["x (spec)"], Some((false, 2, 1))),
                Status::Failed,
                "failed 1 spec",
            ),
            (run(3, &[], Some((false, 3, 0))), Status::Failed, "FAIL!"),
            (run(3, &[], Some((true, 4, 0))), Status::Error, "disagree"),
            (
                run(0, &[], Some((true, 0, 0))),
                Status::Error,
                "no spec of the set ran",
            ),
        ];
        for (r, status, text) in table {
            let o = focus_set(r);
            assert_eq!(o.status, *status, "{}", o.message);
            assert!(o.message.contains(text), "{}", o.message);
        }
        let mut no_end = run(3, &[], Some((true, 3, 0)));
        no_end.log.as_mut().unwrap().summary = None;
        assert_eq!(focus_set(&no_end).status, Status::Error);
    }

    #[test]
    fn rc2s_conformance_skip_is_named_not_counted() {
        const SKIP: &str = r"\[Serial\]|\[Disruptive\]|NoExecuteTaintManager";
        let conf = |skipped: &[&str]| {
            let mut r = run(419, &[], Some((true, 419, 0)));
            r.focus = Some(r"\[Conformance\]".into());
            r.conformance_passed = 419;
            r.conformance_skipped_count = skipped.len();
            r.conformance_skipped = skipped.iter().take(5).map(|s| (*s).to_owned()).collect();
            r
        };
        let names = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let serial = "[sig-apps] Daemon set [Serial] should rollback [Conformance]";
        let taint = "[sig-node] NoExecuteTaintManager Single Pod removes [Conformance]";
        let storage =
            "[sig-storage] Projected secret should be consumable [NodeConformance] [Conformance]";
        // (skipped specs, names the scan found, outcome, text)
        let table: &[(&[&str], &[&str], Status, &str)] = &[
            (&[], &[], Status::Passed, "419"),
            (
                &[serial, taint],
                &[serial, taint],
                Status::Passed,
                "2 [Conformance] spec(s) left out",
            ),
            // A conformance spec the skip does not name (a narrower focus left it unrun):
            // not a complete conformance run.
            (
                &[serial, storage],
                &[serial, storage],
                Status::Error,
                "1 [Conformance] spec(s) were skipped",
            ),
            // The smoke focus leaves ~350 conformance specs unrun: never a conformance pass.
            (
                &[storage; 350],
                &[storage; 350],
                Status::Error,
                "350 [Conformance] spec(s) were skipped",
            ),
            // Names the scan could not find are not forgiven.
            (
                &[serial, taint],
                &[serial],
                Status::Error,
                "1 [Conformance]",
            ),
        ];
        for (skipped, found, status, text) in table {
            let o = conformance_set(&conf(skipped), SKIP, &names(found));
            assert_eq!(o.status, *status, "{skipped:?}: {}", o.message);
            assert!(o.message.contains(text), "{}", o.message);
        }
        let mut r = conf(&[serial]);
        r.failed = vec!["b (spec)".into()];
        assert_eq!(
            conformance_set(&r, SKIP, &names(&[serial])).status,
            Status::Failed
        );
    }

    #[test]
    fn the_skip_regex_matches_literal_alternatives_only() {
        let table = [
            (r"\[Serial\]|\[Disruptive\]", "a [Serial] b", true),
            (r"\[Serial\]|\[Disruptive\]", "a [Disruptive]", true),
            (r"\[Serial\]|\[Disruptive\]", "a Serial b", false),
            ("NoExecuteTaintManager", "x NoExecuteTaintManager y", true),
            // Regex syntax the matcher does not evaluate matches nothing.
            (
                r"\[sig-network\].*\[Conformance\]",
                "[sig-network] x [Conformance]",
                false,
            ),
            (r"a+", "aaa", false),
            (r"\d", "1", false),
            ("", "anything", false),
        ];
        for (skip, name, want) in table {
            assert_eq!(skip_matches(skip, name), want, "{skip:?} on {name:?}");
        }
    }

    #[test]
    fn every_skipped_conformance_spec_is_found_in_both_ginkgo_dialects() {
        let v2 = br#"<testsuites><testsuite name="Kubernetes e2e suite" tests="4">
<testcase name="[It] [sig-a] one [Serial] [Conformance]" status="skipped"><skipped message="skipped"></skipped></testcase>
<testcase name="[It] [sig-a] two [Conformance]" status="passed"></testcase>
<testcase name="[It] [sig-a] three" status="skipped"/>
<testcase name="[It] [sig-a] four &amp; more [Conformance]" status="pending"/>
</testsuite></testsuites>"#;
        assert_eq!(
            skipped_conformance(v2),
            [
                "[sig-a] one [Serial] [Conformance]",
                "[sig-a] four & more [Conformance]"
            ]
        );
        let v1 = br#"<testsuite tests="3"><testcase name="[sig-b] one [Conformance]"><skipped/></testcase>
<testcase name="[sig-b] two [Conformance]"></testcase><testcase name="[sig-b] three"><skipped/></testcase></testsuite>"#;
        assert_eq!(skipped_conformance(v1), ["[sig-b] one [Conformance]"]);
        assert!(skipped_conformance(b"<not xml").is_empty());
    }

    fn control(number: &str, desc: &str, status: BenchStatus) -> BenchControl {
        BenchControl {
            number: number.into(),
            desc: desc.into(),
            group: "Kubelet".into(),
            node_type: "node".into(),
            status,
            scored: true,
        }
    }

    #[test]
    fn kube_bench_decides_on_the_mapped_requirements() {
        let good = [
            control(
                "4.2.1",
                "Ensure that the --anonymous-auth argument is set to false",
                BenchStatus::Pass,
            ),
            control(
                "4.2.2",
                "Ensure that the --authorization-mode argument is not set to AlwaysAllow",
                BenchStatus::Pass,
            ),
            control(
                "4.1.1",
                "Ensure that the kubelet service file permissions are set to 600",
                BenchStatus::Fail,
            ),
        ];
        let o = bench_verdict(&good);
        assert_eq!(o.status, Status::Passed, "{}", o.message);
        assert!(
            o.message.contains("CIS (sec.std.001, informative)"),
            "{}",
            o.message
        );
        let mut bad = good.clone();
        bad[0].status = BenchStatus::Fail;
        let o = bench_verdict(&bad);
        assert_eq!(o.status, Status::Failed, "{}", o.message);
        assert!(o.message.contains("sec.sys.001"), "{}", o.message);
        assert_eq!(bench_verdict(&good[2..]).status, Status::Error);
        assert_eq!(bench_verdict(&[]).status, Status::Error);
    }
}
