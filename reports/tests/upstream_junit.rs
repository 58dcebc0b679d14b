//! JUnit of a check that judged an upstream suite's tests: each test a testcase of its own
//! (CI shows Tempest's 134 tests, not one check), never saying more than its check.

use nfvi_harness::Status;
use nfvi_integration_tests::synthetic_rc2_failing;
use quick_junit::TestCaseStatus;

/// A check's upstream tests as the Tempest area writes them into its evidence.
const TESTS: [(&str, &str); 4] = [
    (
        "test tempest.api.identity.v3.test_users.UsersV3TestJSON.test_user_update[id-2d22]",
        "passed in 1.25 s (idempotent id 2d223a0e-e457-4a70-9fb1-febe027a0ff9)",
    ),
    (
        "test tempest.api.identity.v3.test_users.UsersV3TestJSON.test_list_users[id-1a2b]",
        "failed in 0.50 s (idempotent id 1a2b): testtools.matchers._impl.MismatchError: 2 != 3",
    ),
    (
        "test tempest.api.identity.admin.v3.test_domains.DomainsTestJSON.test_x[id-3c]",
        "skipped: Security compliance not available.",
    ),
    (
        "test tempest.api.identity.v3.test_tokens.TokensV3Test.test_y[id-4d]",
        "never run",
    ),
];

#[test]
fn upstream_tests_are_testcases_that_follow_their_check() {
    let mut r = synthetic_rc2_failing();
    // One failed check, one waived, one passed, each listing the same four tests.
    let failed = r
        .checks
        .iter()
        .position(|c| c.outcome == Status::Failed && c.waiver.is_none() && c.node.is_none())
        .unwrap();
    let waived = r.checks.iter().position(|c| c.waiver.is_some()).unwrap();
    let passed = r
        .checks
        .iter()
        .position(|c| c.outcome == Status::Passed && c.node.is_none())
        .unwrap();
    for i in [failed, waived, passed] {
        for (k, v) in TESTS {
            r.checks[i]
                .evidence
                .properties
                .insert(k.to_owned(), v.to_owned());
        }
    }
    let xml = nfvi_reports::render_junit(&r).unwrap();
    let report = quick_junit::Report::deserialize_from_str(&xml).unwrap();
    let suite_of = |i: usize| {
        let c = &r.checks[i];
        let name = format!("{}.{}.{}", r.suite.name, c.area, c.id);
        report
            .test_suites
            .iter()
            .find(|s| s.name.as_str() == name)
            .unwrap_or_else(|| panic!("no testsuite {name}"))
    };
    let kinds = |i: usize| -> Vec<String> {
        suite_of(i)
            .test_cases
            .iter()
            .map(|t| match &t.status {
                TestCaseStatus::Success { .. } => "success".to_owned(),
                TestCaseStatus::NonSuccess { kind, .. } => format!("{kind:?}"),
                TestCaseStatus::Skipped { ty, .. } => {
                    format!("skipped:{}", ty.as_ref().map_or("", |t| t.as_str()))
                }
            })
            .collect()
    };
    // Under a failed check, the failed test is a failure; what never ran is one too (the
    // check's kind), and Tempest's own skip stays a skip with its reason.
    assert_eq!(kinds(failed), ["success", "Failure", "skipped:", "Failure"]);
    let case = &suite_of(failed).test_cases[1];
    assert_eq!(
        case.name.as_str(),
        "tempest.api.identity.v3.test_users.UsersV3TestJSON.test_list_users[id-1a2b]"
    );
    assert_eq!(case.time, Some(std::time::Duration::from_millis(500)));
    match &case.status {
        TestCaseStatus::NonSuccess { message, .. } => assert_eq!(
            message.as_ref().map(|m| m.as_str()),
            Some("failed: testtools.matchers._impl.MismatchError: 2 != 3")
        ),
        other => panic!("{other:?}"),
    }
    match &suite_of(failed).test_cases[2].status {
        TestCaseStatus::Skipped { message, .. } => assert_eq!(
            message.as_ref().map(|m| m.as_str()),
            Some("Security compliance not available.")
        ),
        other => panic!("{other:?}"),
    }
    // Under a waived or passed check, nothing the gate counts.
    for i in [waived, passed] {
        assert_eq!(
            kinds(i),
            [
                "success",
                "skipped:not-deciding",
                "skipped:",
                "skipped:not-deciding"
            ],
            "{}",
            r.checks[i].id
        );
    }
    // The gate's count moves only by the failed check's tests.
    let failures: usize = report.test_suites.iter().map(|s| s.failures).sum();
    assert_eq!(failures, r.totals.failed + 2);
    // A check without tests brings no testsuite: one per area and one per listing check.
    let areas: std::collections::BTreeSet<_> = r.checks.iter().map(|c| c.area).collect();
    assert_eq!(report.test_suites.len(), areas.len() + 3);
}

#[test]
fn hostile_times_never_panic() {
    let mut r = synthetic_rc2_failing();
    r.duration_secs = 1e300;
    r.checks[0].duration_secs = f64::NAN;
    r.checks[1].duration_secs = f64::INFINITY;
    r.checks[2].duration_secs = -5.0;
    for (k, v) in [
        ("test a", "passed in 1e20 s"),
        ("test b", "failed in inf s: x"),
        ("test c", "passed in -3 s"),
        ("test d", "weird"),
        ("test ", ""),
    ] {
        r.checks[0]
            .evidence
            .properties
            .insert(k.to_owned(), v.to_owned());
    }
    let xml = nfvi_reports::render_junit(&r).unwrap();
    quick_junit::Report::deserialize_from_str(&xml).unwrap();
}
