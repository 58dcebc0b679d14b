//! Table tests of the per-spec ledger, the settled-spec skip regex, the merge of carried and
//! new results, and their judging (through a recording evidence path).

use std::sync::Mutex;
use std::time::Duration;

use nfvi_harness::ledger::{TestRecord, TestStatus as S};
use nfvi_harness::{Outcome, Status};

use super::e2e::{Judged, Progress, judge};
use super::rerun::{self, Case, MAX_SKIP, bench_records, cases, merge, quote_meta, rerun_skip};
use super::{EvidencePath, SETS};

fn rec(test: &str, status: S) -> TestRecord {
    TestRecord {
        stream: "k8s-e2e:sig-network".into(),
        test: test.into(),
        status,
        detail: None,
        secs: 1.5,
        carried_from: Some("run-old".into()),
    }
}

fn case(name: &str, status: S) -> Case {
    Case {
        name: name.into(),
        status,
        detail: None,
        secs: 2.0,
        carried_from: None,
        carried: false,
    }
}

#[test]
fn the_stream_names_the_set() {
    let net = SETS
        .iter()
        .find(|s| s.check == "k8s.e2e.sig-network")
        .unwrap();
    assert_eq!(rerun::stream(net), "k8s-e2e:sig-network");
    assert_eq!(rerun::stream(&SETS[0]), "k8s-e2e:conformance");
}

#[test]
fn names_are_escaped_as_gos_quote_meta_does() {
    let table = [
        ("plain text", "plain text"),
        (
            "[sig-network] DNS [Conformance]",
            r"\[sig-network\] DNS \[Conformance\]",
        ),
        ("a.b+c*d?(e)|f{1}^$", r"a\.b\+c\*d\?\(e\)\|f\{1\}\^\$"),
        (r"back\slash", r"back\\slash"),
        ("", ""),
    ];
    for (raw, want) in table {
        assert_eq!(quote_meta(raw), want, "{raw}");
    }
}

#[test]
fn settled_specs_join_the_skip_and_skipped_ones_run_again() {
    const SKIP: &str = r"\[Serial\]";
    // (prior, the skip wanted, whether the whole set runs again)
    let long: Vec<TestRecord> = (0..400)
        .map(|i| {
            rec(
                &format!("[sig-x] a spec with a rather long name number {i}"),
                S::Passed,
            )
        })
        .collect();
    let table: Vec<(Vec<TestRecord>, Option<&str>, bool)> = vec![
        (vec![], Some(SKIP), false),
        // Only skipped specs: nothing is settled, the set runs as it is.
        (vec![rec("[sig-a] s", S::Skipped)], Some(SKIP), false),
        (
            vec![
                rec("[sig-a] one [Conformance]", S::Passed),
                rec("[sig-a] two", S::Skipped),
                // On --resume a failure is settled too.
                rec("[sig-a] three (x)", S::Failed),
            ],
            Some(r"\[Serial\]|(?:^| )(?:\[sig-a\] one \[Conformance\]|\[sig-a\] three \(x\))$"),
            false,
        ),
        (long, Some(SKIP), true),
    ];
    for (prior, want, whole) in table {
        let (skip, why) = rerun_skip(SKIP, &prior);
        if let Some(w) = want {
            assert_eq!(skip, w);
        }
        assert_eq!(why.is_some(), whole, "{why:?}");
        assert!(skip.len() <= MAX_SKIP);
        if let Some(why) = why {
            assert!(why.contains("whole set runs again"), "{why}");
        }
    }
    // A set without a skip of its own gets the settled names alone.
    let (skip, _) = rerun_skip("", &[rec("x", S::Passed)]);
    assert_eq!(skip, "(?:^| )(?:x)$");
}

const V2: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<testsuites tests="5" disabled="2" errors="0" failures="1">
<testsuite name="Kubernetes e2e suite" tests="5" skipped="2" errors="0" failures="1">
<properties><property name="SuiteSucceeded" value="false"></property></properties>
<testcase name="[SynchronizedBeforeSuite]" classname="Kubernetes e2e suite" status="passed" time="3.5"></testcase>
<testcase name="[It] [sig-a] one [Conformance]" classname="Kubernetes e2e suite" status="passed" time="12.25"></testcase>
<testcase name="[It] [sig-a] two &amp; more" classname="Kubernetes e2e suite" status="failed" time="30"><failure type="failed">[FAILED] timed out &lt;waiting&gt; with Authorization: Bearer abc.def.ghi
In [It] at: e2e.go:1</failure></testcase>
<testcase name="[It] [sig-a] three" classname="Kubernetes e2e suite" status="skipped" time="0"><skipped message="skipped"></skipped></testcase>
<testcase name="[It] [sig-a] four" classname="Kubernetes e2e suite" status="pending" time="0"/>
</testsuite></testsuites>"#;

#[test]
fn every_case_is_read_with_its_status_time_and_a_scrubbed_excerpt() {
    let got = cases(V2.as_bytes()).unwrap();
    let brief: Vec<(&str, S)> = got.iter().map(|c| (c.name.as_str(), c.status)).collect();
    assert_eq!(
        brief,
        [
            ("[SynchronizedBeforeSuite]", S::Passed),
            ("[It] [sig-a] one [Conformance]", S::Passed),
            ("[It] [sig-a] two & more", S::Failed),
            ("[It] [sig-a] three", S::Skipped),
            ("[It] [sig-a] four", S::Skipped),
        ]
    );
    assert_eq!(got[1].secs, 12.25);
    let detail = got[2].detail.as_deref().unwrap();
    assert!(detail.contains("timed out <waiting>"), "{detail}");
    assert!(
        !detail.contains("abc.def"),
        "the token is scrubbed: {detail}"
    );
    assert_eq!(got[3].detail.as_deref(), Some("skipped"));
    // ginkgo v1: the status comes from the child.
    let v1 = br#"<testsuite name="Kubernetes e2e suite" tests="3"><testcase name="[sig-b] one" time="1"></testcase>
<testcase name="[sig-b] two"><failure message="boom password=hunter2">x</failure></testcase><testcase name="[sig-b] three"><skipped/></testcase></testsuite>"#;
    let got = cases(v1).unwrap();
    let st: Vec<S> = got.iter().map(|c| c.status).collect();
    assert_eq!(st, [S::Passed, S::Failed, S::Skipped]);
    assert_eq!(got[1].detail.as_deref(), Some("boom password=***"));
    // Hostile input is an error, never a panic.
    for bad in [
        &b"<testsuites><testcase name=\"x\""[..],
        b"\xff\xfe<",
        b"<a></b>",
    ] {
        let _ = cases(bad);
    }
    assert!(
        cases(b"<testsuites><testcase name='a' status='passed'></wrong></testsuites>").is_err()
    );
}

#[test]
fn the_merge_keeps_carried_results_the_run_skipped_and_takes_new_observations() {
    let prior = [
        rec("[sig-a] one [Conformance]", S::Passed),
        rec("[sig-a] three", S::Skipped),
        rec("[sig-a] five", S::Passed),
        rec("[sig-a] six", S::Passed),
    ];
    let new = vec![
        case("[SynchronizedBeforeSuite]", S::Passed),
        // Skipped because the run was told to: keeps its carried pass.
        case("[It] [sig-a] one [Conformance]", S::Skipped),
        // Failed before (not carried), passes now.
        case("[It] [sig-a] two", S::Passed),
        // Carried skipped, run again and passed: the new result.
        case("[It] [sig-a] three", S::Passed),
        // Run again (the regex fell back to the whole set) and failed now: the new result.
        case("[It] [sig-a] six", S::Failed),
    ];
    let m = merge(&prior, new);
    let brief: Vec<(&str, S, bool)> = m
        .cases
        .iter()
        .map(|c| (c.name.as_str(), c.status, c.carried_from.is_some()))
        .collect();
    assert_eq!(
        brief,
        [
            ("[SynchronizedBeforeSuite]", S::Passed, false),
            ("[It] [sig-a] one [Conformance]", S::Passed, true),
            ("[It] [sig-a] two", S::Passed, false),
            ("[It] [sig-a] three", S::Passed, false),
            ("[It] [sig-a] six", S::Failed, false),
            // Not reported by the new run at all: carried.
            ("[It] [sig-a] five", S::Passed, true),
        ]
    );
    assert_eq!(m.carried, 2);
    // Only what this run observed goes to the ledger, and only specs.
    let records = rerun::records("k8s-e2e:x", &m.cases);
    let tests: Vec<&str> = records.iter().map(|r| r.test.as_str()).collect();
    assert_eq!(tests, ["[sig-a] two", "[sig-a] three", "[sig-a] six"]);
    assert!(
        records
            .iter()
            .all(|r| r.stream == "k8s-e2e:x" && r.carried_from.is_none())
    );
    // On --resume the prior records are the run's own (no carried_from): the carried ones
    // are still not appended again.
    let resumed: Vec<TestRecord> = prior
        .iter()
        .cloned()
        .map(|mut r| {
            r.carried_from = None;
            r
        })
        .collect();
    let m = merge(
        &resumed,
        vec![
            case("[It] [sig-a] one [Conformance]", S::Skipped),
            case("[It] [sig-a] two", S::Failed),
        ],
    );
    assert_eq!(m.carried, 4);
    let tests: Vec<String> = rerun::records("k8s-e2e:x", &m.cases)
        .into_iter()
        .map(|r| r.test)
        .collect();
    assert_eq!(tests, ["[sig-a] two"]);
    // Nothing carried: the new run as it is.
    let m = merge(&[], vec![case("[It] a", S::Skipped)]);
    assert_eq!((m.cases.len(), m.carried), (1, 0));
}

#[test]
fn the_union_is_written_back_as_a_junit_that_reads_the_same() {
    let mut cs = vec![
        case("[SynchronizedBeforeSuite]", S::Passed),
        case("[It] [sig-a] <one> & \"two\"", S::Passed),
        case("[It] [sig-a] failed", S::Failed),
        case("[It] [sig-a] skipped", S::Skipped),
    ];
    cs[2].detail = Some("a <reason> & more".into());
    cs[3].detail = Some("skipped".into());
    let x = rerun::junit(&cs, r"\[sig-a\]");
    let text = String::from_utf8(x.clone()).unwrap();
    assert!(
        text.contains(r#"<property name="SuiteSucceeded" value="false">"#),
        "{text}"
    );
    assert!(
        text.contains(r#"tests="4""#) && text.contains(r#"failures="1""#),
        "{text}"
    );
    let back = cases(&x).unwrap();
    let brief: Vec<(&str, S, Option<&str>)> = back
        .iter()
        .map(|c| (c.name.as_str(), c.status, c.detail.as_deref()))
        .collect();
    assert_eq!(
        brief,
        [
            ("[SynchronizedBeforeSuite]", S::Passed, None),
            ("[It] [sig-a] <one> & \"two\"", S::Passed, None),
            ("[It] [sig-a] failed", S::Failed, Some("a <reason> & more")),
            ("[It] [sig-a] skipped", S::Skipped, Some("skipped")),
        ]
    );
    let ok = rerun::junit(&cs[..2], "f");
    assert!(String::from_utf8(ok).unwrap().contains(r#"value="true""#));
}

#[test]
fn kube_bench_controls_go_to_the_ledger_by_number() {
    let json = br#"{"Controls":[{"id":"4","tests":[{"section":"4.2","results":[
        {"test_number":"4.2.1","test_desc":"anonymous auth off","status":"PASS"},
        {"test_number":"4.2.2","test_desc":"authz mode","status":"FAIL","reason":"token=s3cret seen"},
        {"test_number":"4.2.3","test_desc":"manual","status":"WARN"},
        {"test_desc":"no number","status":"FAIL"}]}]}]}"#;
    let r = bench_records("node", json);
    let brief: Vec<(&str, &str, S)> = r
        .iter()
        .map(|r| (r.stream.as_str(), r.test.as_str(), r.status))
        .collect();
    assert_eq!(
        brief,
        [
            ("kube-bench:node", "4.2.1", S::Passed),
            ("kube-bench:node", "4.2.2", S::Failed),
            ("kube-bench:node", "4.2.3", S::Skipped),
        ]
    );
    assert_eq!(
        r[1].detail.as_deref(),
        Some("FAIL: authz mode: token=*** seen")
    );
    assert_eq!(r[2].detail.as_deref(), Some("WARN: manual"));
    // The list older releases print; and hostile input.
    let old = br#"[{"tests":[{"results":[{"test_number":"1.1.1","status":"PASS"}]}]}]"#;
    assert_eq!(bench_records("master", old).len(), 1);
    for bad in [
        &b"not json"[..],
        b"{}",
        b"[1,2]",
        br#"{"Controls":[{"tests":"x"}]}"#,
    ] {
        assert!(bench_records("node", bad).is_empty());
    }
}

/// An evidence path that records what it was handed and answers from a table.
#[derive(Default)]
struct Recorder {
    calls: Mutex<Vec<(String, Vec<u8>, bool)>>,
    /// The status of the answer to a call with the e2e.log (the new run judged alone).
    own: Option<Status>,
}

impl EvidencePath for Recorder {
    fn e2e(&self, source: &str, _: Option<&str>, junit: &[u8], log: Option<&[u8]>) -> Outcome {
        self.calls
            .lock()
            .unwrap()
            .push((source.into(), junit.to_vec(), log.is_some()));
        let failed = cases(junit).unwrap().iter().any(|c| c.status == S::Failed);
        match (log.is_some(), self.own) {
            (true, Some(Status::Error)) => Outcome::error("e2e.log has no closing SUCCESS!"),
            (true, Some(Status::Failed)) => Outcome::fail("e2e.log closes with FAIL!"),
            _ if failed => Outcome::fail("a spec failed"),
            _ => Outcome::pass("all passed"),
        }
    }
    fn kube_bench(&self, _: &str, _: &[u8]) -> Outcome {
        unreachable!()
    }
}

fn judged<'a>(prior: &'a [TestRecord]) -> Judged<'a> {
    Judged {
        set: "k8s.e2e.sig-network",
        rerun_failed: true,
        source: "pod ns/e2e",
        conformance_skip: None,
        focus: r"\[sig-a\]",
        stream: "k8s-e2e:sig-network",
        prior,
        origin: Some("run-old"),
    }
}

#[test]
fn a_rerun_is_judged_on_the_union_and_records_only_what_it_observed() {
    let new = r#"<testsuites><testsuite name="Kubernetes e2e suite" tests="2">
<testcase name="[It] [sig-a] one" status="skipped"><skipped message="skipped"/></testcase>
<testcase name="[It] [sig-a] two" status="passed" time="4"></testcase></testsuite></testsuites>"#;
    let prior = [
        rec("[sig-a] one", S::Passed),
        rec("[sig-a] zero", S::Passed),
    ];
    let appended = Mutex::new(Vec::new());
    let append = |r: &[TestRecord]| {
        appended.lock().unwrap().extend_from_slice(r);
        Ok(())
    };
    // (prior, the own run's verdict from its log, the outcome)
    let table: [(&[TestRecord], Option<Status>, Status); 4] = [
        (&prior, None, Status::Passed),
        (&prior, Some(Status::Failed), Status::Failed),
        (&prior, Some(Status::Error), Status::Error),
        (&[], None, Status::Passed),
    ];
    for (prior, own, want) in table {
        let ev = Recorder {
            own,
            ..Recorder::default()
        };
        appended.lock().unwrap().clear();
        let o = judge(&ev, &judged(prior), new.as_bytes(), Some(b"log"), append);
        assert_eq!(o.status, want, "{own:?}: {}", o.message);
        let calls = ev.calls.lock().unwrap();
        let recorded: Vec<String> = appended
            .lock()
            .unwrap()
            .iter()
            .map(|r| r.test.clone())
            .collect();
        if prior.is_empty() {
            assert_eq!(calls.len(), 1);
            assert!(calls[0].2, "the pod's e2e.log goes with its JUnit");
            assert!(o.evidence.properties.get("e2e.carried_over").is_none());
            assert_eq!(recorded, ["[sig-a] one", "[sig-a] two"]);
            continue;
        }
        // The union without the log, then the run alone with it.
        assert_eq!(calls.len(), 2);
        assert!(!calls[0].2 && calls[1].2);
        let union = cases(&calls[0].1).unwrap();
        let st: Vec<(&str, S)> = union.iter().map(|c| (c.name.as_str(), c.status)).collect();
        assert_eq!(
            st,
            [
                ("[It] [sig-a] one", S::Passed),
                ("[It] [sig-a] two", S::Passed),
                ("[It] [sig-a] zero", S::Passed)
            ]
        );
        assert_eq!(
            o.evidence
                .properties
                .get("e2e.carried_over")
                .map(String::as_str),
            Some("2 spec(s) carried over from run run-old (not run again)")
        );
        // Only the spec this run ran; the carried ones are in the ledger already.
        assert_eq!(recorded, ["[sig-a] two"]);
        if own.is_some() {
            assert!(
                o.message.starts_with("this run's own results"),
                "{}",
                o.message
            );
        }
    }
    // A ledger that cannot be written is said, not fatal.
    let ev = Recorder::default();
    let o = judge(&ev, &judged(&[]), new.as_bytes(), None, |_| {
        Err(std::io::Error::other("disk full"))
    });
    assert_eq!(o.status, Status::Passed);
    assert!(o.evidence.properties["e2e.ledger"].contains("disk full"));
}

#[test]
fn progress_is_reported_in_specs_with_counts_only_once_known() {
    let mut p = Progress::default();
    let r = p.report(Duration::from_secs(60), Some(Duration::from_secs(600)));
    assert_eq!((r.done, r.total, r.failed, r.unit), (0, None, 0, "specs"));
    assert_eq!(r.eta, Some(Duration::from_secs(540)));
    assert_eq!(p.report(Duration::from_secs(60), None).eta, None);
    for l in ["Will run 10 of 7000 specs", "•", "• [FAILED] x"] {
        p.line(l);
    }
    let r = p.report(Duration::from_secs(20), None);
    assert_eq!((r.done, r.total, r.failed), (2, Some(10), 1));
    assert_eq!(r.eta, Some(Duration::from_secs(80)));
}

#[test]
fn what_looks_like_a_credential_is_scrubbed_wherever_it_sits() {
    const JWT: &str = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl";
    // (input, the excerpt wanted)
    let table: Vec<(String, String)> = vec![
        // JSON- and Python-shaped key/value pairs.
        (r#"{"token":"abc123"}"#.into(), r#"{"token":"***"}"#.into()),
        (
            r#"{"password":"hunter2","user":"bob"}"#.into(),
            r#"{"password":"***","user":"bob"}"#.into(),
        ),
        ("{'secret': 'y-val'}".into(), "{'secret': '***'}".into()),
        (
            r#"{"authorization": "Basic dXNlcjpwYXNz"}"#.into(),
            r#"{"authorization": "Basic ***"}"#.into(),
        ),
        // JWTs not at a word's start, and one base64-encoded (`ZXlK` is base64 of `eyJ`).
        (format!(r#"failed: "{JWT}""#), r#"failed: "***""#.into()),
        (format!("call ({JWT}) refused"), "call (***) refused".into()),
        (
            "data: ZXlKaGJHY2lPaUpTVXpJMU5pSjkuZXlKemRXSWlPaUo0SW4w".into(),
            "data: ***".into(),
        ),
        // Bearer followed by any whitespace.
        (
            "Authorization: Bearer\tabc.def".into(),
            "Authorization: Bearer\t***".into(),
        ),
        ("Bearer\nabc.def more".into(), "Bearer\n*** more".into()),
        // API keys and kubeconfig key data.
        ("X-Api-Key: k3y-1".into(), "X-Api-Key: ***".into()),
        (
            "apikey=k3y-2 and api_key = k3y-3".into(),
            "apikey=*** and api_key = ***".into(),
        ),
        (
            "client-key-data: LS0tLS1CRUdJTiBSU0E=".into(),
            "client-key-data: ***".into(),
        ),
    ];
    let leaked: Vec<String> = table
        .iter()
        .filter(|(input, want)| rerun::scrub(input) != *want)
        .map(|(input, want)| format!("{input:?}: {:?}, wanted {want:?}", rerun::scrub(input)))
        .collect();
    assert!(leaked.is_empty(), "not scrubbed:\n{}", leaked.join("\n"));
    // What was scrubbed before still is, and text without a credential is left as it is.
    let kept = [
        ("boom password=hunter2", "boom password=***"),
        ("seen token:abc here", "seen token:*** here"),
        (
            "Authorization: Bearer abc.def.ghi",
            "Authorization: Bearer ***",
        ),
        (JWT, "***"),
        (
            "the token is mounted into pods, secrets \"x\" not found",
            "the token is mounted into pods, secrets \"x\" not found",
        ),
        (
            "Get \"https://198.18.0.1:6443/api?timeout=32s\": dial tcp 198.18.0.1:6443",
            "Get \"https://198.18.0.1:6443/api?timeout=32s\": dial tcp 198.18.0.1:6443",
        ),
        ("", ""),
    ];
    for (input, want) in kept {
        assert_eq!(rerun::scrub(input), want, "{input:?}");
    }
    // Hostile input never panics and stays bounded.
    let long = "token=x ".repeat(10_000) + "é\u{0}\"'";
    let cut = rerun::scrub(&long);
    assert!(
        cut.starts_with("token=*** token=***") && cut.len() < 700,
        "{cut}"
    );
    let _ = rerun::scrub("\"\"\"::==''\t\n eyJ eyJ. ZXlK Bearer");
}

#[test]
fn a_rerun_that_ran_no_spec_is_an_error_but_a_resume_may_judge_its_own_results() {
    const HEAD: &str = r#"<testsuites><testsuite name="Kubernetes e2e suite" tests="3">
<testcase name="[SynchronizedBeforeSuite]" status="passed" time="2"></testcase>
<testcase name="[It] [sig-a] one" status="skipped"><skipped message="skipped"/></testcase>
<testcase name="[It] [sig-a] serial" status="skipped"><skipped message="skipped"/></testcase>"#;
    const TAIL: &str = "</testsuite></testsuites>";
    let none_ran = format!("{HEAD}{TAIL}");
    let one_ran =
        format!(r#"{HEAD}<testcase name="[It] [sig-a] two" status="passed"></testcase>{TAIL}"#);
    let empty = format!(r#"<testsuites><testsuite name="Kubernetes e2e suite" tests="0">{TAIL}"#);
    let prior = [
        rec("[sig-a] one", S::Passed),
        rec("[sig-a] zero", S::Skipped),
    ];
    // (--rerun-failed, the new JUnit, the outcome)
    let table = [
        (true, none_ran.as_str(), Status::Error),
        (true, empty.as_str(), Status::Error),
        (true, one_ran.as_str(), Status::Passed),
        (false, none_ran.as_str(), Status::Passed),
        (false, empty.as_str(), Status::Passed),
    ];
    for (rerun_failed, junit, want) in table {
        let ev = Recorder::default();
        let j = Judged {
            rerun_failed,
            ..judged(&prior)
        };
        let o = judge(&ev, &j, junit.as_bytes(), Some(b"log"), |_| Ok(()));
        assert_eq!(o.status, want, "{rerun_failed} {junit}: {}", o.message);
        if want == Status::Error {
            assert_eq!(
                o.message,
                "nothing was re-run: every spec of k8s.e2e.sig-network had passed in run run-old; its failure there was not a spec's; run the set again without --rerun-failed"
            );
            assert!(o.evidence.properties.contains_key("e2e.carried_over"));
        }
    }
}
