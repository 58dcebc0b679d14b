//! Waivers: the file's validation, and what applying them does to results, totals, the
//! verdict and the certification (the rules in `nfvi_harness::judge`).

use std::path::Path;

use chrono::{NaiveDate, TimeZone, Utc};
use nfvi_harness::check::Severity;
use nfvi_harness::judge::{self, RunConditions};
use nfvi_harness::results::{
    CheckResult, RequirementResult, RequirementRow, RunResults, TraceStatus, Verdict,
};
use nfvi_harness::waiver::{self, Waivers};
use nfvi_harness::{Evidence, Status};
use nfvi_reference_model::{Area, RequirementId};

fn check(
    id: &str,
    req: &str,
    outcome: Status,
    node: Option<&str>,
    subject: Option<&str>,
) -> CheckResult {
    CheckResult {
        id: id.into(),
        title: String::new(),
        area: Area::Cni,
        subject: subject.map(Into::into),
        node: node.map(Into::into),
        requirements: vec![RequirementId::parse(req).unwrap()],
        severity: Severity::Must,
        effective_severity: Severity::Must,
        outcome,
        skip_kind: None,
        message: String::new(),
        started_at: None,
        duration_secs: 0.0,
        needs: vec![],
        side_effects: String::new(),
        cleanup_policy: String::new(),
        cleanup: vec![],
        evidence: Evidence::default(),
        waiver: None,
    }
}

const FILE: &str = r#"
[[waiver]]
id = "W-1"
checks = ["cni.CNI-VER-002"]
subject = "bridge"
reason = "plugin 1.1.1 prints no version list"
owner = "netops@example.com"
ticket = "https://tracker.example.com/NFVI-1"
expires = 2027-03-31

[[waiver]]
id = "W-old"
checks = ["ra2.ntw.0*"]
reason = "accepted last year"
owner = "netops@example.com"
expires = 2026-01-31

[[waiver]]
id = "W-nothing"
checks = ["host.*"]
reason = "nothing fails there"
owner = "ops"
expires = 2027-03-31

[[waiver]]
id = "W-forbidden"
checks = ["k8s.conformance"]
reason = "no time for e2e"
owner = "ops"
expires = 2027-03-31
"#;

fn day() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 29).unwrap()
}

#[test]
fn waivers_apply_expire_go_unmatched_and_are_refused_where_the_suite_forbids() {
    let w = Waivers::parse(Path::new("w.toml"), FILE).unwrap();
    let mut checks = vec![
        check(
            "cni.CNI-VER-002",
            "ra2.ntw.001",
            Status::Failed,
            None,
            Some("bridge"),
        ),
        check(
            "cni.CNI-VER-002",
            "ra2.ntw.001",
            Status::Failed,
            None,
            Some("macvlan"),
        ),
        check(
            "cni.CNI-ADD-001",
            "ra2.ntw.002",
            Status::Error,
            None,
            Some("bridge"),
        ),
        check("k8s.conformance", "gen.cnt.03", Status::Failed, None, None),
        check(
            "cni.CNI-DEL-001",
            "ra2.ntw.003",
            Status::Passed,
            None,
            Some("bridge"),
        ),
    ];
    let report = waiver::apply(
        "w.toml",
        &w.waivers,
        &mut checks,
        &["gen.cnt.*".into()],
        day(),
    );
    // The bridge failure is waived and stays a failure.
    assert_eq!(checks[0].outcome, Status::Failed);
    assert_eq!(
        checks[0].waiver.as_ref().map(|a| a.id.as_str()),
        Some("W-1")
    );
    assert!(!checks[0].decides_non_conformance(false));
    assert!(!checks[0].is_warning(false));
    // macvlan is not the waiver's subject; the expired W-old names it and does not apply.
    assert!(checks[1].waiver.is_none());
    assert!(checks[1].decides_non_conformance(false));
    // Errors are never waived, whatever names them.
    assert!(checks[2].waiver.is_none());
    // An unwaivable requirement keeps its failure.
    assert!(checks[3].waiver.is_none());
    let by_id = |id: &str| report.waivers.iter().find(|u| u.waiver.id == id).unwrap();
    assert_eq!(by_id("W-1").applied_to, ["cni.CNI-VER-002 (bridge)"]);
    assert!(by_id("W-old").expired);
    assert_eq!(by_id("W-old").expired_for, ["cni.CNI-VER-002 (macvlan)"]);
    assert!(by_id("W-nothing").unmatched());
    assert_eq!(by_id("W-forbidden").forbidden_for, ["k8s.conformance"]);
    assert_eq!(report.expired().count(), 1);
    assert_eq!(report.unmatched().count(), 1);
    assert_eq!(report.forbidden().count(), 1);
    // Applying again gives the same.
    let again = waiver::apply(
        "w.toml",
        &w.waivers,
        &mut checks,
        &["gen.cnt.*".into()],
        day(),
    );
    assert_eq!(again, report);
}

#[test]
fn a_waiver_in_force_wins_over_an_expired_one_that_comes_first() {
    let text = r#"
[[waiver]]
checks = ["cni.*"]
reason = "old"
owner = "a"
expires = 2020-01-01
[[waiver]]
checks = ["cni.x"]
node = "worker-*"
reason = "new"
owner = "b"
expires = 2030-01-01
"#;
    let w = Waivers::parse(Path::new("w.toml"), text).unwrap();
    let mut checks = vec![
        check(
            "cni.x",
            "ra2.ntw.001",
            Status::Failed,
            Some("worker-2"),
            None,
        ),
        check(
            "cni.x",
            "ra2.ntw.001",
            Status::Failed,
            Some("master-1"),
            None,
        ),
        check("cni.x", "ra2.ntw.001", Status::Failed, None, None),
    ];
    let report = waiver::apply("w.toml", &w.waivers, &mut checks, &[], day());
    assert_eq!(checks[0].waiver.as_ref().unwrap().id, "waiver-2");
    assert!(
        checks[1].waiver.is_none(),
        "node glob does not match master-1"
    );
    assert!(
        checks[2].waiver.is_none(),
        "a node glob never matches a result without node"
    );
    assert_eq!(report.waivers[0].expired_for.len(), 2);
}

#[test]
fn bad_waiver_files_name_the_line_and_what_was_expected() {
    let cases: &[(&str, usize, &str)] = &[
        (
            "[[waiver]]\nchecks = [\"a\"]\nowner = \"o\"\nexpires = 2027-01-01\n",
            1,
            "reason",
        ),
        (
            "\n\n[[waiver]]\nchecks = []\nreason = \"r\"\nowner = \"o\"\nexpires = 2027-01-01\n",
            3,
            "at least one",
        ),
        (
            "[[waiver]]\nchecks = [\"a\"]\nreason = \" \"\nowner = \"o\"\nexpires = 2027-01-01\n",
            1,
            "why",
        ),
        (
            "[[waiver]]\nchecks = [\"a\"]\nreason = \"r\"\nowner = \"o\"\nexpires = \"soon\"\n",
            5,
            "expected",
        ),
        (
            "[[waiver]]\nchecks = [\"a\"]\nreason = \"r\"\nowner = \"o\"\nexpires = 2027-01-01T10:00:00\n",
            1,
            "not a date",
        ),
        (
            "[[waiver]]\nchecks = [\"a\"]\nreason = \"r\"\nowner = \"o\"\nticket = \"NFVI-1\"\nexpires = 2027-01-01\n",
            1,
            "http",
        ),
        (
            "[[waiver]]\nchecks = [\"a\"]\nreason = \"r\"\nowner = \"o\"\nexpires = 2027-01-01\nwho = 1\n",
            6,
            "unknown field",
        ),
        (
            "[[waiver]]\nid = \"x\"\nchecks = [\"a\"]\nreason = \"r\"\nowner = \"o\"\nexpires = 2027-01-01\n[[waiver]]\nid = \"x\"\nchecks = [\"b\"]\nreason = \"r\"\nowner = \"o\"\nexpires = 2027-01-01\n",
            7,
            "twice",
        ),
        ("not toml at all [", 1, "expected"),
    ];
    for (text, line, needle) in cases {
        let e = Waivers::parse(Path::new("w.toml"), text).unwrap_err();
        assert_eq!(e.line, *line, "{text}: {e}");
        assert!(e.to_string().contains(needle), "{text}: {e}");
        assert!(e.to_string().starts_with("w.toml:"), "{e}");
    }
}

fn results(checks: Vec<CheckResult>, waivers: &Waivers) -> RunResults {
    let row = |id: &str| RequirementResult {
        row: RequirementRow {
            id: RequirementId::parse(id).unwrap(),
            document: nfvi_reference_model::Document::Ra2,
            level: nfvi_reference_model::Level::Must,
            profile: nfvi_reference_model::Profile::Basic,
            summary: String::new(),
            source: String::new(),
            note: None,
            mandatory: true,
            applies: true,
            checks: vec![],
            upstream: vec![],
            untestable: None,
        },
        status: TraceStatus::Untested,
    };
    let text = r#"{"schema_version":5,"tool":{"name":"nfvi-verify","version":"0","git_sha":"x"},"run_id":"r",
        "suite":{"name":"s","title":"s","version":"1","description":""},
        "target":{"name":"t","file":null,"profile":"basic"},"strict":false,
        "started_at":"2026-11-29T10:00:00Z","finished_at":"2026-11-29T10:00:01Z","duration_secs":1,
        "complete":true,"verdict":"incomplete","totals":{"checks":0,"passed":0,"failed":0,"errors":0,"timed_out":0,"skipped":0,"warnings":0,"mandatory_requirements":0,"mandatory_verified":0,"mandatory_failed":0,"mandatory_warnings":0,"mandatory_untested":0},
        "inventory":{"hostname":"h","kernel":"k","os":"o","arch":"x","cpus":1,"memory_bytes":1,"packages":{},"components":{},"fingerprint":"f"},"invocation":{"argv":[],"reproduce":""},"requirements":[],"checks":[]}"#;
    let mut r: RunResults = serde_json::from_str(text).unwrap();
    r.started_at = Utc.with_ymd_and_hms(2026, 11, 29, 10, 0, 0).unwrap();
    r.requirements = vec![row("ra2.ntw.001"), row("ra2.ntw.002")];
    r.checks = checks;
    let suite = suite();
    let j = judge::rejudge(&r, &model(), &suite, Some(("w.toml", &waivers.waivers)));
    r.verdict = j.verdict;
    r.totals = j.totals;
    r.waivers = j.waivers;
    r.certification = j.certification;
    for (q, (_, s)) in r.requirements.iter_mut().zip(j.statuses) {
        q.status = s;
    }
    for c in &mut r.checks {
        let mut one = vec![c.clone()];
        waiver::apply(
            "w.toml",
            &waivers.waivers,
            &mut one,
            &suite.unwaivable,
            r.started_at.date_naive(),
        );
        c.waiver = one.remove(0).waiver;
    }
    r
}

fn model() -> nfvi_reference_model::ReferenceModel {
    nfvi_reference_model::load_embedded().unwrap()
}

fn suite() -> nfvi_reference_model::Suite {
    let model = model();
    let mut s = model.suite("rc2").unwrap().clone();
    s.mandatory
        .insert(RequirementId::parse("ra2.ntw.001").unwrap());
    s.mandatory
        .insert(RequirementId::parse("ra2.ntw.002").unwrap());
    s
}

#[test]
fn a_waived_must_failure_leaves_the_run_conformant_with_waivers_and_verify_can_tell_tampering() {
    let w = Waivers::parse(Path::new("w.toml"), FILE).unwrap();
    let r = results(
        vec![
            check(
                "cni.CNI-VER-002",
                "ra2.ntw.001",
                Status::Failed,
                None,
                Some("bridge"),
            ),
            check(
                "cni.CNI-ADD-001",
                "ra2.ntw.002",
                Status::Passed,
                None,
                Some("bridge"),
            ),
        ],
        &w,
    );
    assert_eq!(r.verdict, Verdict::Conformant);
    assert_eq!(r.totals.waived, 1);
    assert_eq!(r.totals.failed, 0, "a waived failure is counted apart");
    assert_eq!(r.totals.passed, 1);
    assert_eq!(r.totals.mandatory_waived, 1);
    assert_eq!(r.requirements[0].status, TraceStatus::Waived);
    assert!(r.certification.certifiable, "{:?}", r.certification);
    // Re-judging the same results with the same file agrees with them.
    let j = judge::rejudge(&r, &model(), &suite(), Some(("w.toml", &w.waivers)));
    assert_eq!((j.verdict, &j.totals), (r.verdict, &r.totals));
    // Without the waivers file, the failure decides again.
    let j = judge::rejudge(&r, &model(), &suite(), None);
    assert_eq!(j.verdict, Verdict::NonConformant);
}

#[test]
fn a_mandatory_requirement_whose_checks_all_skipped_makes_the_run_not_certifiable() {
    let w = Waivers::parse(Path::new("w.toml"), FILE).unwrap();
    let passed = check("cni.CNI-ADD-001", "ra2.ntw.001", Status::Passed, None, None);
    let r = results(vec![passed.clone()], &w);
    assert!(r.certification.certifiable, "{:?}", r.certification);
    // The other mandatory requirement's one check skipped (no cluster, a service missing):
    // still conformant on what was observed, but no certification record.
    let skipped = check("k8s.x", "ra2.ntw.002", Status::Skipped, None, None);
    let r = results(vec![passed.clone(), skipped.clone()], &w);
    assert_eq!(r.requirements[1].status, TraceStatus::Skipped);
    assert_eq!(r.verdict, Verdict::Conformant);
    assert!(!r.certification.certifiable);
    assert_eq!(r.certification.reasons.len(), 1, "{:?}", r.certification);
    let why = &r.certification.reasons[0];
    assert!(
        why.starts_with("1 mandatory requirement(s) were not observed")
            && why.contains("ra2.ntw.002"),
        "{why}"
    );
    // One check of it observed (partial) is enough.
    let both = check("k8s.y", "ra2.ntw.002", Status::Passed, None, None);
    let r = results(vec![passed, skipped, both], &w);
    assert!(r.certification.certifiable, "{:?}", r.certification);
}

#[test]
fn runs_selected_by_hand_or_with_forbidden_waivers_are_not_certifiable() {
    let w = Waivers::parse(Path::new("w.toml"), FILE).unwrap();
    let mut r = results(
        vec![check(
            "cni.CNI-ADD-001",
            "ra2.ntw.001",
            Status::Passed,
            None,
            None,
        )],
        &w,
    );
    assert!(judge::certification(&r).certifiable);
    for (conditions, needle) in [
        (
            RunConditions {
                filters: vec!["cni.*".into()],
                ..Default::default()
            },
            "--filter cni.*",
        ),
        (
            RunConditions {
                skips: vec!["cni.x".into()],
                ..Default::default()
            },
            "--skip cni.x",
        ),
        (
            RunConditions {
                rerun_of: Some("run-1".into()),
                ..Default::default()
            },
            "run-1",
        ),
        (
            RunConditions {
                timeout_override: Some(5),
                ..Default::default()
            },
            "--timeout 5",
        ),
    ] {
        r.conditions = conditions;
        let c = judge::certification(&r);
        assert!(!c.certifiable);
        assert!(c.reasons[0].contains(needle), "{:?}", c.reasons);
    }
    r.conditions = RunConditions::default();
    r.checks.push(check(
        "k8s.conformance",
        "gen.cnt.03",
        Status::Failed,
        None,
        None,
    ));
    let j = judge::rejudge(&r, &model(), &suite(), Some(("w.toml", &w.waivers)));
    assert_eq!(
        j.verdict,
        Verdict::NonConformant,
        "the forbidden waiver does not apply"
    );
    assert!(!j.certification.certifiable);
    assert!(
        j.certification.reasons[0].contains("W-forbidden"),
        "{:?}",
        j.certification
    );
}

#[test]
fn a_result_whose_effective_severity_was_lowered_is_judged_by_the_model_and_named() {
    let w = Waivers::parse(Path::new("w.toml"), FILE).unwrap();
    let mut r = results(
        vec![check(
            "cni.CNI-ADD-001",
            "ra2.ntw.001",
            Status::Failed,
            None,
            None,
        )],
        &w,
    );
    assert_eq!(r.verdict, Verdict::NonConformant);
    // Edited by hand: the failure made a warning.
    r.checks[0].effective_severity = Severity::May;
    r.verdict = Verdict::Conformant;
    let j = judge::rejudge(&r, &model(), &suite(), Some(("w.toml", &w.waivers)));
    assert_eq!(j.verdict, Verdict::NonConformant);
    assert_eq!(j.problems.len(), 1, "{:?}", j.problems);
    assert!(
        j.problems[0].contains("recorded effective severity may"),
        "{:?}",
        j.problems
    );
}
