//! The pure judges: one service's share of the Tempest run, with the evidence a reviewer
//! needs (every test with its id, idempotent id, status, duration and skip reason or failure
//! excerpt; what Tempest was given).

use nfvi_harness::{Outcome, SkipKind, SkipReason};
use nfvi_suite_evidence::model::TestStatus;

use crate::cloud::Offer;
use crate::run::{Ran, Report, TestRecord};
use crate::services::Service;

/// The most failing tests named in a message.
const NAMED: usize = 10;

fn skip(kind: SkipKind, message: String) -> Outcome {
    Outcome::skip(SkipReason { kind, message })
}

fn named(t: &TestRecord) -> String {
    match &t.uuid {
        Some(u) if !t.id.contains(u.as_str()) => format!("{} [id-{u}]", t.id),
        _ => t.id.clone(),
    }
}

/// One line per test for the evidence: `passed in 0.42 s`, `skipped: reason`, ...
fn describe(t: &TestRecord) -> String {
    let took = t
        .duration
        .map(|d| format!(" in {d:.2} s"))
        .unwrap_or_default();
    let uuid = t
        .uuid
        .as_deref()
        .map(|u| format!(" (idempotent id {u})"))
        .unwrap_or_default();
    let status = match t.status {
        TestStatus::Passed => "passed",
        TestStatus::Failed => "failed",
        TestStatus::Skipped => "skipped",
        TestStatus::Incomplete if t.started => "never finished",
        TestStatus::Incomplete => "never run",
    };
    match &t.detail {
        Some(d) => format!("{status}{took}{uuid}: {d}"),
        None => format!("{status}{took}{uuid}"),
    }
}

/// Judges `service` on the run's report.
pub fn judge(service: &Service, report: &Report) -> Outcome {
    let ran = match report {
        Report::Refused(why) => return Outcome::fail(why.clone()),
        Report::Broken(why) => return Outcome::error(format!("Tempest could not run: {why}")),
        Report::Ran(ran) => ran,
    };
    let outcome = judge_ran(service, ran);
    with_provenance(outcome, service, ran)
}

fn judge_ran(service: &Service, ran: &Ran) -> Outcome {
    let offer = ran
        .offers
        .iter()
        .find(|(s, _)| s.name == service.name)
        .map(|(_, o)| o);
    match offer {
        None => {
            return Outcome::error(format!(
                "the run did not look at {} (a defect)",
                service.name
            ));
        }
        Some(Offer::NotTested(why)) => {
            let kind = if why.contains("catalog has no")
                || why.contains("skip_services")
                || why.contains("not set")
            {
                SkipKind::NotApplicable
            } else {
                SkipKind::MissingCapability
            };
            return skip(kind, format!("{}: not tested: {why}", service.name));
        }
        Some(Offer::Unverified(why)) => {
            return Outcome::error(format!(
                "{} could not be verified, so Tempest was not told about it: {why}",
                service.name
            ));
        }
        Some(Offer::Tested { .. }) => {}
    }
    let mine: Vec<&TestRecord> = ran.tests.iter().filter(|t| service.owns(&t.id)).collect();
    let listed = ran.listed_ids.iter().filter(|t| service.owns(t)).count();
    if mine.is_empty() {
        if let Some(stopped) = &ran.stopped {
            return Outcome::error(format!("no test of {} finished: {stopped}", service.name));
        }
        if listed > 0 {
            return Outcome::error(format!(
                "Tempest selected {listed} test(s) of {} but reported none",
                service.name
            ));
        }
        let why = if service.name == "orchestration" {
            format!(
                "Tempest {} holds no orchestration tests: they are heat-tempest-plugin's; add it to tempest.plugins",
                ran.version
            )
        } else {
            format!(
                "Tempest {} has no {} test at the {} level",
                ran.version, service.name, ran.level
            )
        };
        return skip(SkipKind::NotApplicable, why);
    }
    // Class fixtures (`setUpClass (...)`) are no tests: their outcome is their tests' (a
    // skipped class skips each of its tests), so they are not counted twice; one that failed
    // is still a failure below.
    let count = |st| {
        mine.iter()
            .filter(|t| t.status == st && !t.id.contains("Class ("))
            .count()
    };
    let (passed, skipped) = (count(TestStatus::Passed), count(TestStatus::Skipped));
    // Listed but never reported (absent from the stream, announced only, or started and never
    // ended without a stop of ours): Tempest stopped early, the cloud is not judged on them.
    let reported = |id: &str| {
        mine.iter()
            .any(|t| t.id == id && t.status != TestStatus::Incomplete)
    };
    let unreported = ran
        .listed_ids
        .iter()
        .filter(|id| service.owns(id) && !reported(id))
        .count();
    let unreported = unreported.max(count(TestStatus::Incomplete));
    let bad: Vec<&&TestRecord> = mine
        .iter()
        .filter(|t| t.status == TestStatus::Failed)
        .collect();
    let exit = match ran.exit_code {
        Some(c) => format!("exit code {c}"),
        None => "killed by a signal".to_owned(),
    };
    let no_failure_anywhere = !ran.tests.iter().any(|t| t.status == TestStatus::Failed);
    let o = if !bad.is_empty() {
        let shown: Vec<String> = bad
            .iter()
            .take(NAMED)
            .map(|t| {
                if t.status == TestStatus::Incomplete && !t.started {
                    format!("{} (selected, never run)", named(t))
                } else if t.status == TestStatus::Incomplete {
                    format!("{} (never finished)", named(t))
                } else {
                    named(t)
                }
            })
            .collect();
        let more = bad.len().saturating_sub(NAMED);
        let mut m = format!(
            "{} of {} Tempest test(s) of {} failed: {}{}",
            bad.len(),
            mine.len(),
            service.name,
            shown.join("; "),
            if more > 0 {
                format!("; and {more} more")
            } else {
                String::new()
            }
        );
        if let Some(stopped) = &ran.stopped {
            m.push_str(&format!(" ({stopped})"));
        } else if unreported > 0 {
            m.push_str(&format!(
                "; {unreported} more never reported a result (Tempest stopped early, {exit})"
            ));
        }
        Outcome::fail(m)
    } else if let Some(stopped) = &ran.stopped {
        Outcome::error(format!(
            "{passed} Tempest test(s) of {} passed before the run stopped: {stopped}",
            service.name
        ))
    } else if unreported > 0 {
        Outcome::error(format!(
            "{unreported} of {listed} selected Tempest test(s) of {} never reported a result: Tempest stopped early ({exit}); {passed} passed, {skipped} skipped before",
            service.name,
            listed = listed.max(mine.len()),
        ))
    } else if ran.exit_code != Some(0) && no_failure_anywhere {
        Outcome::error(format!(
            "Tempest ended with {exit} though no test failed: its run is not trusted ({passed} test(s) of {} passed, {skipped} skipped)",
            service.name
        ))
    } else if passed == 0 {
        let mut reasons: Vec<String> = mine.iter().filter_map(|t| t.detail.clone()).collect();
        reasons.sort();
        reasons.dedup();
        let shown: Vec<String> = reasons.iter().take(5).cloned().collect();
        skip(
            SkipKind::MissingCapability,
            format!(
                "every one of the {} Tempest test(s) of {} was skipped: {}",
                mine.len(),
                service.name,
                if shown.is_empty() {
                    "Tempest gave no reason".to_owned()
                } else {
                    shown.join("; ")
                }
            ),
        )
    } else {
        Outcome::pass(format!(
            "{passed} Tempest test(s) of {} passed, {skipped} skipped, 0 failed",
            service.name
        ))
    };
    let mut o = o
        .with_metric("tests_passed", passed as f64, "count")
        .with_metric("tests_failed", bad.len() as f64, "count")
        .with_metric("tests_skipped", skipped as f64, "count")
        .with_metric("tests_never_reported", unreported as f64, "count");
    for t in &mine {
        o = o.with_property(format!("test {}", t.id), describe(t));
    }
    o
}

fn with_provenance(o: Outcome, service: &Service, ran: &Ran) -> Outcome {
    let mut o = o
        .with_property("tempest.version", &ran.version)
        .with_property("tempest.level", ran.level)
        .with_property("tempest.regex", &ran.regex)
        .with_property("tempest.exclude_regex", &ran.exclude)
        .with_property("tempest.concurrency", ran.concurrency)
        .with_property("tempest.conf service_available", &ran.services_line)
        .with_property("tempest.selected", ran.listed)
        .with_property(
            "tempest.exit_code",
            ran.exit_code
                .map_or("none (killed or not run)".to_owned(), |c| c.to_string()),
        )
        .with_property("tempest.run_seconds", format!("{:.1}", ran.elapsed));
    for (s, offer) in &ran.offers {
        let v = match offer {
            Offer::Tested { seen, .. } => format!("tested: {seen}"),
            Offer::NotTested(why) => format!("not tested: {why}"),
            Offer::Unverified(why) => format!("not verified: {why}"),
        };
        o = o.with_property(format!("service {}", s.name), v);
    }
    if !ran.leftovers.is_empty() {
        o = o.with_property("keystone leftovers", ran.leftovers.join("; "));
    }
    if ran.carried > 0 {
        o = o.with_property(
            "tempest.carried_over",
            format!(
                "{} of the run's {} tests were settled by run {} (--resume or --rerun-failed) and not run again; their results are in upstream.journal",
                ran.carried,
                ran.listed,
                ran.carried_from.as_deref().unwrap_or("unknown")
            ),
        );
    }
    if let Some(note) = service.note {
        o = o.with_property("covers", note);
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::services::by_name;
    use nfvi_harness::Status;

    fn t(id: &str, status: TestStatus, detail: Option<&str>) -> TestRecord {
        TestRecord {
            id: id.into(),
            uuid: nfvi_suite_evidence::model::tempest_uuid(id),
            status,
            duration: Some(0.5),
            detail: detail.map(str::to_owned),
            started: true,
        }
    }

    fn ran(tests: Vec<TestRecord>, identity: Offer) -> Report {
        let listed_ids = tests.iter().map(|t| t.id.clone()).collect();
        Report::Ran(Box::new(Ran {
            offers: vec![
                (by_name("identity").unwrap(), identity),
                (
                    by_name("image").unwrap(),
                    Offer::NotTested("the catalog's image endpoint http://x is the lab's stand-in for image, not an OpenStack API".into()),
                ),
                (
                    by_name("volume").unwrap(),
                    Offer::NotTested("Keystone's catalog has no volumev3 or block-storage endpoint".into()),
                ),
            ],
            level: "full",
            version: "47.0.0".into(),
            regex: r"(^tempest\.api\.identity\.)".into(),
            listed_ids,
            tests,
            exit_code: Some(0),
            ..Ran::default()
        }))
    }

    fn tested() -> Offer {
        Offer::Tested {
            catalog_type: "identity".into(),
            url: "http://k/v3".into(),
            seen: "token".into(),
        }
    }

    const A: &str = "tempest.api.identity.v3.test_tokens.TokensV3Test.test_a[id-11111111-2222-3333-4444-555555555555,smoke]";
    const B: &str = "tempest.api.identity.admin.v3.test_users.UsersV3TestJSON.test_b[id-abc]";

    #[test]
    fn table() {
        use TestStatus::*;
        let identity = by_name("identity").unwrap();
        let rows: Vec<(Report, Status, &str)> = vec![
            (
                ran(
                    vec![t(A, Passed, None), t(B, Skipped, Some("not configured"))],
                    tested(),
                ),
                Status::Passed,
                "1 Tempest test(s) of identity passed, 1 skipped, 0 failed",
            ),
            (
                ran(
                    vec![t(A, Passed, None), t(B, Failed, Some("Traceback"))],
                    tested(),
                ),
                Status::Failed,
                "1 of 2 Tempest test(s) of identity failed: tempest.api.identity.admin.v3.test_users.UsersV3TestJSON.test_b[id-abc]",
            ),
            (
                ran(
                    vec![
                        t(A, Passed, None),
                        t(
                            "setUpClass (tempest.api.identity.v3.test_x.T)",
                            Skipped,
                            None,
                        ),
                        t("tempest.api.identity.v3.test_x.T.test_y", Skipped, None),
                    ],
                    tested(),
                ),
                Status::Passed,
                "1 Tempest test(s) of identity passed, 1 skipped, 0 failed",
            ),
            (
                ran(vec![t(A, Incomplete, None)], tested()),
                Status::Error,
                "1 of 1 selected Tempest test(s) of identity never reported a result: Tempest stopped early (exit code 0)",
            ),
            (
                ran(
                    vec![t(
                        "setUpClass (tempest.api.identity.admin.v3.test_x.T)",
                        Failed,
                        None,
                    )],
                    tested(),
                ),
                Status::Failed,
                "setUpClass",
            ),
            (
                ran(
                    vec![t(A, Skipped, Some("Identity v3 API is not available"))],
                    tested(),
                ),
                Status::Skipped,
                "every one of the 1 Tempest test(s) of identity was skipped: Identity v3 API is not available",
            ),
            (
                ran(vec![], tested()),
                Status::Skipped,
                "has no identity test at the full level",
            ),
            (
                Report::Refused(
                    "Keystone refused the credentials for user admin (from x): HTTP 401".into(),
                ),
                Status::Failed,
                "HTTP 401",
            ),
            (
                Report::Broken("no OpenStack credentials".into()),
                Status::Error,
                "Tempest could not run: no OpenStack credentials",
            ),
        ];
        for (report, status, text) in rows {
            let o = judge(identity, &report);
            assert_eq!(o.status, status, "{}", o.message);
            assert!(o.message.contains(text), "{}", o.message);
        }
    }

    #[test]
    fn stand_ins_and_absent_services_are_skipped_never_failed() {
        let report = ran(vec![t(A, TestStatus::Passed, None)], tested());
        let o = judge(by_name("image").unwrap(), &report);
        assert_eq!(o.status, Status::Skipped);
        assert_eq!(o.skip_kind(), Some(SkipKind::MissingCapability));
        assert!(o.message.contains("stand-in for image"), "{}", o.message);
        let o = judge(by_name("volume").unwrap(), &report);
        assert_eq!(o.skip_kind(), Some(SkipKind::NotApplicable));
        // A service the run never looked at is the harness's defect, not a pass.
        let o = judge(by_name("compute").unwrap(), &report);
        assert_eq!(o.status, Status::Error);
    }

    fn listed(n: usize) -> Vec<String> {
        (0..n)
            .map(|i| format!("tempest.api.identity.v3.test_x.T.test_{i}[id-{i}]"))
            .collect()
    }

    #[test]
    fn tests_never_reported_and_a_bad_exit_are_errors_never_passes() {
        let identity = by_name("identity").unwrap();
        // A worker OOM-killed after 60 of 134: the stream ends, Tempest exits non-zero.
        let Report::Ran(mut r) = ran(vec![], tested()) else {
            unreachable!()
        };
        r.listed_ids = listed(134);
        r.tests = r.listed_ids[..60]
            .iter()
            .map(|id| t(id, TestStatus::Passed, None))
            .collect();
        r.exit_code = None;
        let o = judge(identity, &Report::Ran(r.clone()));
        assert_eq!(o.status, Status::Error, "{}", o.message);
        assert!(
            o.message.starts_with(
                "74 of 134 selected Tempest test(s) of identity never reported a result: Tempest stopped early (killed by a signal)"
            ),
            "{}",
            o.message
        );
        // Every test reported, none failed, yet Tempest exited 2: not trusted.
        r.tests = r
            .listed_ids
            .iter()
            .map(|id| t(id, TestStatus::Passed, None))
            .collect();
        r.exit_code = Some(2);
        let o = judge(identity, &Report::Ran(r.clone()));
        assert_eq!(o.status, Status::Error, "{}", o.message);
        assert!(
            o.message.contains("Tempest ended with exit code 2"),
            "{}",
            o.message
        );
        // Exit 1 explained by a failed test: the failure is the verdict.
        r.tests[0].status = TestStatus::Failed;
        r.exit_code = Some(1);
        assert_eq!(
            judge(identity, &Report::Ran(r.clone())).status,
            Status::Failed
        );
        r.tests[0].status = TestStatus::Passed;
        r.exit_code = Some(0);
        assert_eq!(judge(identity, &Report::Ran(r)).status, Status::Passed);
    }

    #[test]
    fn a_broken_real_service_is_an_error_naming_the_url_and_the_answer() {
        let Report::Ran(mut r) = ran(vec![t(A, TestStatus::Passed, None)], tested()) else {
            unreachable!()
        };
        r.offers.push((
            by_name("compute").unwrap(),
            Offer::Unverified(
                "the catalog's compute endpoint http://nova:8774/v2.1: GET http://nova:8774/v2.1/servers without a token answered 503, not 401".into(),
            ),
        ));
        let o = judge(by_name("compute").unwrap(), &Report::Ran(r));
        assert_eq!(o.status, Status::Error, "{}", o.message);
        assert!(
            o.message.contains("http://nova:8774/v2.1/servers") && o.message.contains("503"),
            "{}",
            o.message
        );
    }

    #[test]
    fn ipv6_is_claimed_only_by_ipv6_tests() {
        let v6 = "tempest.api.network.test_networks.NetworksIpV6Test.test_list_networks[id-6]";
        let v4 = "tempest.api.network.test_networks.NetworksTest.test_list_networks[id-4]";
        let mk = |tests: Vec<TestRecord>| {
            let Report::Ran(mut r) = ran(tests, tested()) else {
                unreachable!()
            };
            for name in ["network", "network-ipv6"] {
                r.offers.push((by_name(name).unwrap(), tested()));
            }
            Report::Ran(r)
        };
        let ipv6 = by_name("network-ipv6").unwrap();
        // Network API tests, none of them IPv6: nothing shows dual-stack networks.
        let o = judge(ipv6, &mk(vec![t(v4, TestStatus::Passed, None)]));
        assert_eq!(o.status, Status::Skipped, "{}", o.message);
        let o = judge(
            ipv6,
            &mk(vec![
                t(v4, TestStatus::Passed, None),
                t(v6, TestStatus::Passed, None),
            ]),
        );
        assert_eq!(o.status, Status::Passed, "{}", o.message);
        assert!(
            o.message
                .starts_with("1 Tempest test(s) of network-ipv6 passed")
        );
        let o = judge(
            by_name("network").unwrap(),
            &mk(vec![
                t(v4, TestStatus::Passed, None),
                t(v6, TestStatus::Passed, None),
            ]),
        );
        assert!(
            o.message.starts_with("2 Tempest test(s) of network passed"),
            "{}",
            o.message
        );
    }

    #[test]
    fn a_stopped_run_never_passes_and_the_evidence_lists_every_test() {
        let Report::Ran(mut r) = ran(vec![t(A, TestStatus::Passed, None)], tested()) else {
            unreachable!()
        };
        r.stopped = Some("the run was cancelled".into());
        let o = judge(by_name("identity").unwrap(), &Report::Ran(r.clone()));
        assert_eq!(o.status, Status::Error, "{}", o.message);
        // A test the stop cut short is undecided, not failed; one that failed still fails.
        let mut cut = r.clone();
        cut.tests.push(t(B, TestStatus::Incomplete, None));
        let o = judge(by_name("identity").unwrap(), &Report::Ran(cut.clone()));
        assert_eq!(o.status, Status::Error, "{}", o.message);
        cut.tests.push(t(
            "tempest.api.identity.v3.T.test_c",
            TestStatus::Failed,
            None,
        ));
        let o = judge(by_name("identity").unwrap(), &Report::Ran(cut));
        assert_eq!(o.status, Status::Failed, "{}", o.message);
        assert!(
            o.message.contains("test_c") && o.message.contains("cancelled"),
            "{}",
            o.message
        );
        r.stopped = None;
        let o = judge(by_name("identity").unwrap(), &Report::Ran(r));
        assert_eq!(o.status, Status::Passed);
        let p = &o.evidence.properties;
        assert_eq!(
            p.get(&format!("test {A}")).map(String::as_str),
            Some("passed in 0.50 s (idempotent id 11111111-2222-3333-4444-555555555555)")
        );
        assert_eq!(p.get("tempest.version").map(String::as_str), Some("47.0.0"));
        assert!(p.get("service image").unwrap().starts_with("not tested"));
    }
}
