//! JUnit XML of ginkgo (the Kubernetes e2e suite, v1 and v2) and of subunit2junitxml
//! (Tempest), read as a stream with quick-xml: no DTD (so no entity expansion), bounded depth
//! and number of test cases, and the counts the suites declare checked against the cases.

use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};

use super::{ParseError, line_col};
use crate::model::{E2eRun, Flavor, TempestRun, TempestTest, TestStatus, tempest_uuid};

/// Deepest element nesting accepted (real files nest 4 deep).
const MAX_DEPTH: usize = 32;
/// Most test cases accepted (a full e2e suite has about 7,000).
const MAX_CASES: usize = 1_000_000;
/// Names of the conformance specs skipped that are kept for the message.
const KEEP_NAMES: usize = 5;

/// What a JUnit file holds.
#[derive(Debug)]
pub enum Junit {
    /// A Kubernetes e2e run.
    E2e(Box<E2eRun>),
    /// A Tempest run (subunit2junitxml).
    Tempest(TempestRun),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Child {
    None,
    Failure,
    Error,
    Skipped,
}

#[derive(Debug)]
struct Case {
    name: String,
    classname: String,
    status: Option<String>,
    child: Child,
    child_type: String,
}

#[derive(Debug, Default)]
struct Declared {
    tests: u64,
    failures: u64,
    errors: u64,
    seen: bool,
}

#[derive(Debug, Default)]
struct Doc {
    root: String,
    root_suite_name: Option<String>,
    timestamp: Option<String>,
    focus: Option<String>,
    skip: Option<String>,
    suite_succeeded: Option<bool>,
    cases: Vec<Case>,
    declared: Declared,
}

/// Parses a JUnit file and tells which tool wrote it.
pub fn parse(data: &[u8]) -> Result<Junit, ParseError> {
    let doc = read(data)?;
    let v2 = doc.cases.iter().any(|c| c.status.is_some());
    let e2e_classes = !doc.cases.is_empty()
        && doc
            .cases
            .iter()
            .all(|c| c.classname == "Kubernetes e2e suite");
    if v2 && doc.root == "testsuites" {
        return e2e(doc, Flavor::GinkgoV2);
    }
    if doc.root == "testsuite" && doc.root_suite_name.as_deref() == Some("") {
        return tempest(doc);
    }
    if doc.root == "testsuite"
        && (doc.root_suite_name.as_deref() == Some("Kubernetes e2e suite") || e2e_classes)
    {
        return e2e(doc, Flavor::GinkgoV1);
    }
    Err(ParseError::whole(format!(
        "a JUnit file (root <{}>, {} test cases), but neither ginkgo's Kubernetes e2e suite (v1: <testsuite name=\"Kubernetes e2e suite\">, v2: <testsuites> with status= on each test case) nor subunit2junitxml's Tempest results (<testsuite name=\"\">)",
        doc.root,
        doc.cases.len()
    )))
}

fn attr_error(data: &[u8], pos: u64, e: impl std::fmt::Display) -> ParseError {
    ParseError::at(
        line_col(data, pos as usize),
        format!("malformed attribute: {e}"),
    )
}

/// The attributes of `e` that `want` names, unescaped, in `want`'s order.
fn attrs<const N: usize>(
    data: &[u8],
    pos: u64,
    e: &BytesStart<'_>,
    want: [&str; N],
) -> Result<[Option<String>; N], ParseError> {
    let mut out: [Option<String>; N] = std::array::from_fn(|_| None);
    for a in e.attributes() {
        let a = a.map_err(|err| attr_error(data, pos, err))?;
        if let Some(i) = want.iter().position(|w| a.key.as_ref() == w.as_bytes()) {
            let v = a
                .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                .map_err(|err| attr_error(data, pos, err))?;
            out[i] = Some(v.into_owned());
        }
    }
    Ok(out)
}

fn count(data: &[u8], pos: u64, what: &str, v: Option<String>) -> Result<u64, ParseError> {
    match v {
        None => Ok(0),
        Some(s) => s.trim().parse().map_err(|_| {
            ParseError::at(
                line_col(data, pos as usize),
                format!("{what}=\"{s}\" is not a count"),
            )
        }),
    }
}

fn read(data: &[u8]) -> Result<Doc, ParseError> {
    let mut reader = Reader::from_reader(data);
    let mut doc = Doc::default();
    let mut stack: Vec<Vec<u8>> = Vec::new();
    let mut case: Option<Case> = None;
    loop {
        let pos = reader.buffer_position();
        let event = reader.read_event().map_err(|e| {
            ParseError::at(
                line_col(data, reader.error_position() as usize),
                format!("malformed XML: {e}"),
            )
        })?;
        let (start, empty) = match &event {
            Event::Start(e) => (Some(e), false),
            Event::Empty(e) => (Some(e), true),
            _ => (None, false),
        };
        if let Some(e) = start {
            let name = e.name().as_ref().to_vec();
            if stack.is_empty() {
                if !doc.root.is_empty() {
                    return Err(ParseError::at(
                        line_col(data, pos as usize),
                        "a second root element; expected one <testsuites> or <testsuite>",
                    ));
                }
                doc.root = String::from_utf8_lossy(&name).into_owned();
                if doc.root != "testsuites" && doc.root != "testsuite" {
                    return Err(ParseError::at(
                        line_col(data, pos as usize),
                        format!(
                            "root element <{}>; expected <testsuites> or <testsuite> (JUnit)",
                            doc.root
                        ),
                    ));
                }
            }
            if stack.len() >= MAX_DEPTH {
                return Err(ParseError::at(
                    line_col(data, pos as usize),
                    format!("elements nested deeper than {MAX_DEPTH}; JUnit nests 4 deep"),
                ));
            }
            element(data, pos, e, &name, &stack, &mut doc, &mut case)?;
            if empty {
                end(&name, &mut doc, &mut case);
            } else {
                stack.push(name);
            }
        }
        match event {
            Event::End(e) => {
                let name = e.name().as_ref().to_vec();
                stack.pop();
                end(&name, &mut doc, &mut case);
            }
            Event::DocType(_) => {
                return Err(ParseError::at(
                    line_col(data, pos as usize),
                    "a DOCTYPE: JUnit files have none, and DTD entities are refused",
                ));
            }
            Event::Eof => break,
            _ => {}
        }
        if doc.cases.len() > MAX_CASES {
            return Err(ParseError::at(
                line_col(data, pos as usize),
                format!("more than {MAX_CASES} test cases"),
            ));
        }
    }
    if let Some(open) = stack.last() {
        return Err(ParseError::at(
            line_col(data, data.len()),
            format!(
                "the file ends inside <{}>: truncated? expected the closing tags of {}",
                String::from_utf8_lossy(open),
                stack
                    .iter()
                    .rev()
                    .map(|n| format!("</{}>", String::from_utf8_lossy(n)))
                    .collect::<Vec<_>>()
                    .join("")
            ),
        ));
    }
    if doc.root.is_empty() {
        return Err(ParseError::whole(
            "no element: expected <testsuites> or <testsuite> (JUnit)",
        ));
    }
    Ok(doc)
}

fn element(
    data: &[u8],
    pos: u64,
    e: &BytesStart<'_>,
    name: &[u8],
    stack: &[Vec<u8>],
    doc: &mut Doc,
    case: &mut Option<Case>,
) -> Result<(), ParseError> {
    match name {
        b"testsuite" => {
            let [n, ts, tests, failures, errors] = attrs(
                data,
                pos,
                e,
                ["name", "timestamp", "tests", "failures", "errors"],
            )?;
            if stack.is_empty() {
                doc.root_suite_name = n;
            }
            if doc.timestamp.is_none() {
                doc.timestamp = ts;
            }
            doc.declared.seen |= tests.is_some();
            doc.declared.tests += count(data, pos, "tests", tests)?;
            doc.declared.failures += count(data, pos, "failures", failures)?;
            doc.declared.errors += count(data, pos, "errors", errors)?;
        }
        b"property" => {
            let [n, v] = attrs(data, pos, e, ["name", "value"])?;
            match n.as_deref() {
                Some("FocusStrings") => doc.focus = v,
                Some("SkipStrings") => doc.skip = v,
                Some("SuiteSucceeded") => doc.suite_succeeded = v.map(|v| v == "true"),
                _ => {}
            }
        }
        b"testcase" => {
            if case.is_some() {
                return Err(ParseError::at(
                    line_col(data, pos as usize),
                    "a <testcase> inside a <testcase>",
                ));
            }
            let [n, c, s] = attrs(data, pos, e, ["name", "classname", "status"])?;
            *case = Some(Case {
                name: n.unwrap_or_default(),
                classname: c.unwrap_or_default(),
                status: s,
                child: Child::None,
                child_type: String::new(),
            });
        }
        b"failure" | b"error" | b"skipped" => {
            if let Some(c) = case.as_mut() {
                let [t, m] = attrs(data, pos, e, ["type", "message"])?;
                let kind = match name {
                    b"failure" => Child::Failure,
                    b"error" => Child::Error,
                    _ => Child::Skipped,
                };
                // A failure outweighs a skip written before it.
                if c.child == Child::None || kind != Child::Skipped {
                    c.child = kind;
                    c.child_type = t.or(m).unwrap_or_default();
                }
            }
        }
        _ => {}
    }
    Ok(())
}

fn end(name: &[u8], doc: &mut Doc, case: &mut Option<Case>) {
    if name == b"testcase"
        && let Some(c) = case.take()
    {
        doc.cases.push(c);
    }
}

fn failed_status(s: &str) -> bool {
    matches!(
        s,
        "failed" | "timedout" | "aborted" | "interrupted" | "panicked"
    )
}

fn e2e(doc: Doc, flavor: Flavor) -> Result<Junit, ParseError> {
    let mut run = E2eRun {
        flavor: Some(flavor),
        focus: doc.focus,
        skip: doc.skip,
        suite_succeeded: doc.suite_succeeded,
        timestamp: doc.timestamp,
        ..E2eRun::default()
    };
    let total = doc.cases.len();
    for c in doc.cases {
        let conformance = c.name.contains("[Conformance]");
        let (spec, name) = match flavor {
            Flavor::GinkgoV2 => match c.name.strip_prefix("[It] ") {
                Some(n) => (true, n.to_owned()),
                None => (false, c.name.clone()),
            },
            Flavor::GinkgoV1 => (true, c.name.clone()),
        };
        let status = match (flavor, c.status.as_deref(), c.child) {
            (Flavor::GinkgoV2, Some(s), _) => s.to_owned(),
            (_, _, Child::Failure | Child::Error) => {
                if c.child_type.is_empty() {
                    "failed".to_owned()
                } else {
                    c.child_type.to_ascii_lowercase()
                }
            }
            (_, _, Child::Skipped) => "skipped".to_owned(),
            (_, _, Child::None) => "passed".to_owned(),
        };
        let failed = failed_status(&status)
            || (flavor == Flavor::GinkgoV1 && matches!(c.child, Child::Failure | Child::Error));
        if failed {
            if spec && !conformance {
                run.ran_not_conformance += 1;
            }
            run.failed.push(if status == "failed" {
                name
            } else {
                format!("{name} ({status})")
            });
            continue;
        }
        if !spec {
            continue;
        }
        match status.as_str() {
            "passed" => {
                run.passed += 1;
                if conformance {
                    run.conformance_passed += 1;
                } else {
                    run.ran_not_conformance += 1;
                }
            }
            "skipped" | "pending" => {
                if status == "pending" {
                    run.pending += 1;
                } else {
                    run.skipped += 1;
                }
                if conformance {
                    run.conformance_skipped_count += 1;
                    if run.conformance_skipped.len() < KEEP_NAMES {
                        run.conformance_skipped.push(name);
                    }
                }
            }
            other => {
                return Err(ParseError::whole(format!(
                    "test case `{name}` has status=\"{other}\"; expected passed, failed, skipped, pending, timedout, aborted, interrupted or panicked"
                )));
            }
        }
    }
    let d = &doc.declared;
    if d.seen {
        let failed = run.failed.len() as u64;
        let (what, declared, found) = match flavor {
            Flavor::GinkgoV2 => ("test cases", d.tests, total as u64),
            Flavor::GinkgoV1 => ("specs run", d.tests, run.passed as u64 + failed),
        };
        if declared != found {
            return Err(ParseError::whole(format!(
                "the JUnit declares tests=\"{declared}\" but holds {found} {what}: truncated or edited?"
            )));
        }
        if d.failures + d.errors != failed {
            return Err(ParseError::whole(format!(
                "the JUnit declares failures=\"{}\" errors=\"{}\" but holds {failed} failed test cases: truncated or edited?",
                d.failures, d.errors
            )));
        }
    }
    Ok(Junit::E2e(Box::new(run)))
}

fn tempest(doc: Doc) -> Result<Junit, ParseError> {
    let mut run = TempestRun {
        format: "subunit2junitxml JUnit",
        tests: Vec::with_capacity(doc.cases.len()),
    };
    for c in doc.cases {
        let id = if c.classname.is_empty() {
            c.name
        } else {
            format!("{}.{}", c.classname, c.name)
        };
        let status = match c.child {
            Child::None => TestStatus::Passed,
            Child::Skipped => TestStatus::Skipped,
            Child::Failure | Child::Error => TestStatus::Failed,
        };
        run.tests.push(TempestTest {
            uuid: tempest_uuid(&id),
            id,
            status,
        });
    }
    let d = &doc.declared;
    let failed = run.count(TestStatus::Failed) as u64;
    if d.seen && (d.tests != run.tests.len() as u64 || d.failures + d.errors != failed) {
        return Err(ParseError::whole(format!(
            "the JUnit declares tests=\"{}\" failures=\"{}\" errors=\"{}\" but holds {} test cases, {failed} failed: truncated or edited?",
            d.tests,
            d.failures,
            d.errors,
            run.tests.len()
        )));
    }
    Ok(Junit::Tempest(run))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e2e_of(xml: &str) -> E2eRun {
        match parse(xml.as_bytes()).unwrap() {
            Junit::E2e(r) => *r,
            Junit::Tempest(_) => panic!("tempest"),
        }
    }

    #[test]
    fn ginkgo_v2_counts_specs_apart_from_suite_nodes() {
        let r = e2e_of(
            r#"<testsuites tests="4" failures="1" errors="0"><testsuite name="Kubernetes e2e suite" tests="4" failures="1" errors="0" timestamp="2025-01-01T00:00:00">
<properties><property name="FocusStrings" value="\[Conformance\]"/><property name="SuiteSucceeded" value="false"/></properties>
<testcase name="[SynchronizedBeforeSuite]" classname="Kubernetes e2e suite" status="passed"/>
<testcase name="[It] a [Conformance]" classname="Kubernetes e2e suite" status="passed"/>
<testcase name="[It] b [Conformance]" classname="Kubernetes e2e suite" status="failed"><failure type="failed">boom</failure></testcase>
<testcase name="[It] c" classname="Kubernetes e2e suite" status="skipped"><skipped message="skipped"/></testcase>
</testsuite></testsuites>"#,
        );
        assert_eq!(r.flavor, Some(Flavor::GinkgoV2));
        assert_eq!((r.passed, r.skipped, r.conformance_passed), (1, 1, 1));
        assert_eq!(r.failed, vec!["b [Conformance]".to_owned()]);
        assert_eq!(r.focus.as_deref(), Some(r"\[Conformance\]"));
        assert_eq!(r.suite_succeeded, Some(false));
        assert_eq!(r.ran_not_conformance, 0);
    }

    #[test]
    fn declared_counts_must_match() {
        let e = parse(br#"<testsuite name="" tests="2" failures="0"><testcase classname="a" name="b"/></testsuite>"#)
            .unwrap_err();
        assert!(e.message.contains("tests=\"2\""), "{e:?}");
    }

    #[test]
    fn doctype_and_depth_and_truncation_are_refused() {
        let e = parse(b"<?xml version=\"1.0\"?>\n<!DOCTYPE l [<!ENTITY a \"aaaa\">]><testsuite/>")
            .unwrap_err();
        assert!(e.message.contains("DOCTYPE"), "{e:?}");
        let deep = format!("<testsuite>{}", "<a>".repeat(100));
        let e = parse(deep.as_bytes()).unwrap_err();
        assert!(e.message.contains("deeper"), "{e:?}");
        let e = parse(b"<testsuite name=\"\">\n<testcase classname=\"a\" name=\"b\">").unwrap_err();
        assert_eq!(e.at.as_deref(), Some("line 2:34"));
        assert!(e.message.contains("truncated"), "{e:?}");
    }

    #[test]
    fn tempest_ids_join_classname_and_name() {
        let Junit::Tempest(r) = parse(br#"<testsuite errors="0" failures="1" name="" tests="3" time="1">
<testcase classname="" name="setUpClass (tempest.api.image.v2.T)"><skipped>no glance</skipped></testcase>
<testcase classname="tempest.api.identity.v3.T" name="test_a[id-1234,smoke]" time="1"/>
<testcase classname="tempest.api.identity.v3.T" name="test_b"><failure type="x">tb</failure></testcase>
</testsuite>"#).unwrap() else { panic!() };
        assert_eq!(
            r.tests[1].id,
            "tempest.api.identity.v3.T.test_a[id-1234,smoke]"
        );
        assert_eq!(r.tests[1].uuid.as_deref(), Some("1234"));
        assert_eq!(
            r.tests.iter().map(|t| t.status).collect::<Vec<_>>(),
            vec![TestStatus::Skipped, TestStatus::Passed, TestStatus::Failed]
        );
    }
}
