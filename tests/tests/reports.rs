//! Snapshots of the user-visible artifacts for a small synthetic run, and the structural
//! promises of the JUnit file checked by reading it back with quick-junit's own parser.

use nfvi_integration_tests::synthetic_results;

#[test]
fn junit_snapshot() {
    let xml = nfvi_reports::render_junit(&synthetic_results(7)).unwrap();
    insta::assert_snapshot!("junit_7", xml);
}

#[test]
fn badge_snapshot() {
    insta::assert_snapshot!("badge_7", nfvi_reports::badge_svg(&synthetic_results(7)));
}

#[test]
fn junit_keeps_outcomes_apart_and_names_unique() {
    let results = synthetic_results(70);
    let xml = nfvi_reports::render_junit(&results).unwrap();
    let report = quick_junit::Report::deserialize_from_str(&xml).unwrap();
    let mut names = Vec::new();
    let (mut failures, mut errors, mut skipped) = (0, 0, 0);
    for suite in &report.test_suites {
        for case in &suite.test_cases {
            names.push(format!(
                "{}::{}",
                case.classname.as_ref().map(|c| c.as_str()).unwrap_or(""),
                case.name.as_str()
            ));
            match &case.status {
                quick_junit::TestCaseStatus::NonSuccess {
                    kind: quick_junit::NonSuccessKind::Failure,
                    ..
                } => failures += 1,
                quick_junit::TestCaseStatus::NonSuccess {
                    kind: quick_junit::NonSuccessKind::Error,
                    ..
                } => errors += 1,
                quick_junit::TestCaseStatus::Skipped { .. } => skipped += 1,
                quick_junit::TestCaseStatus::Success { .. } => {}
            }
            let out = case.system_out.as_ref().map(|s| s.as_str()).unwrap_or("");
            assert!(out.starts_with("requirements: "), "{out}");
        }
    }
    let total = names.len();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), total);
    assert_eq!(failures, results.totals.failed);
    assert_eq!(errors, results.totals.errors + results.totals.timed_out);
    assert_eq!(skipped, results.totals.skipped);
}
