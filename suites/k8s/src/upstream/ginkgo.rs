//! The test cases of a ginkgo JUnit (`junit_01.xml` of the Kubernetes e2e suite), read once
//! for every caller: this area's per-spec ledger and reruns (`upstream::rerun`) and the
//! evidence area's list of skipped conformance specs (the evidence crate depends on this one,
//! not the other way round, so the reader lives here).
//!
//! Both ginkgo dialects: v2 writes `status=` on every `<testcase>`; v1 writes none, and a
//! `<failure>`, `<error>` or `<skipped>` child tells (a failure outweighs a skip). The reader
//! judges nothing and scrubs nothing: the failure text is handed back raw, bounded
//! ([`TEXT_MAX`]). A malformed document ends the read with what was read and the error, and
//! each caller decides what that means.

use std::fmt;

use nfvi_harness::ledger::TestStatus;
use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};

/// The failure text of a case is appended chunk by chunk (a text run, an entity) while it is
/// shorter than this many bytes: at most this plus one chunk, never more than the input.
pub const TEXT_MAX: usize = 2400;

/// One `<testcase>` of a ginkgo JUnit.
#[derive(Clone, Debug, PartialEq)]
pub struct TestCase {
    /// The name as the JUnit writes it: `[It] <spec text>`, `[SynchronizedBeforeSuite]`.
    pub name: String,
    /// v2: `passed`, `skipped` or `pending` (skipped), `failed`, `timedout`, `aborted`,
    /// `interrupted` or `panicked` (failed); then a `<failure>`/`<error>` child makes it
    /// failed and a `<skipped>` child skipped unless failed. Passed when nothing says
    /// otherwise (v1 without a child).
    pub status: TestStatus,
    /// Whether the document marks it skipped anywhere (`status="skipped"|"pending"`, a
    /// `<skipped>` child), even where a failure outweighs that in [`TestCase::status`]
    /// (ginkgo never writes both).
    pub skip_marked: bool,
    /// `time=` in seconds; 0 when absent, not a number, negative or not finite.
    pub secs: f64,
    /// The `message=` of the last `<failure>`, `<error>` or `<skipped>` child that has a
    /// non-blank one, as written (unescaped, not trimmed).
    pub message: Option<String>,
    /// The text inside the `<failure>`/`<error>` children (`&lt;`, `&gt;`, `&amp;`, `&quot;`,
    /// `&apos;` resolved, other references dropped), at most [`TEXT_MAX`] bytes plus one chunk;
    /// `Some` as soon as one of them holds any text, blanks included.
    pub text: Option<String>,
}

/// Why a ginkgo JUnit could not be read to its end.
#[derive(Debug)]
pub struct MalformedJunit {
    /// The byte offset the reader stopped at.
    pub position: u64,
    source: quick_xml::Error,
}

impl fmt::Display for MalformedJunit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "not well-formed XML at byte {}", self.position)
    }
}

impl std::error::Error for MalformedJunit {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// What [`read`] found.
#[derive(Debug)]
pub struct Read {
    /// Every test case read to its end, in the order they close.
    pub cases: Vec<TestCase>,
    /// The test case the document ends or breaks inside, as read so far (a truncated JUnit).
    pub unfinished: Option<TestCase>,
    /// Why the read stopped before the end of the document, if it did.
    pub malformed: Option<MalformedJunit>,
}

/// Reads every test case of a ginkgo JUnit, v1 or v2. Never fails: a malformed tail ends the
/// read ([`Read::malformed`]) with what was read before it. A `<testcase>` inside another
/// replaces it (ginkgo writes none; the evidence area's parser refuses them).
pub fn read(junit: &[u8]) -> Read {
    fn attr(e: &BytesStart<'_>, key: &[u8]) -> Option<String> {
        e.attributes()
            .flatten()
            .find(|a| a.key.as_ref() == key)
            .and_then(|a| {
                a.normalized_value(quick_xml::XmlVersion::Implicit1_0)
                    .ok()
                    .map(|v| v.into_owned())
            })
    }
    fn append(text: &mut Option<String>, s: &str) {
        let buf = text.get_or_insert_with(String::new);
        if buf.len() < TEXT_MAX {
            buf.push_str(s);
        }
    }
    let mut reader = Reader::from_reader(junit);
    let mut cases = Vec::new();
    let mut open: Option<TestCase> = None;
    // Whether the text read now is a failure's.
    let mut in_failure = false;
    let malformed = loop {
        let event = match reader.read_event() {
            Ok(event) => event,
            Err(source) => {
                break Some(MalformedJunit {
                    position: reader.error_position(),
                    source,
                });
            }
        };
        let (e, empty) = match event {
            Event::Start(e) => (e, false),
            Event::Empty(e) => (e, true),
            Event::Text(t) if in_failure => {
                if let Some(c) = open.as_mut() {
                    append(&mut c.text, &String::from_utf8_lossy(t.as_ref()));
                }
                continue;
            }
            Event::GeneralRef(r) if in_failure => {
                if let Some(c) = open.as_mut() {
                    let raw: &[u8] = &r;
                    let s = match raw {
                        b"lt" => "<",
                        b"gt" => ">",
                        b"amp" => "&",
                        b"quot" => "\"",
                        b"apos" => "'",
                        _ => "",
                    };
                    append(&mut c.text, s);
                }
                continue;
            }
            Event::End(e) => {
                match e.name().as_ref() {
                    b"testcase" => cases.extend(open.take()),
                    b"failure" | b"error" => in_failure = false,
                    _ => {}
                }
                continue;
            }
            Event::Eof => break None,
            _ => continue,
        };
        match e.name().as_ref() {
            b"testcase" => {
                let status = match attr(&e, b"status").as_deref() {
                    Some("skipped" | "pending") => TestStatus::Skipped,
                    Some("failed" | "timedout" | "aborted" | "interrupted" | "panicked") => {
                        TestStatus::Failed
                    }
                    // Passed, or v1 without a child: a child below changes it.
                    _ => TestStatus::Passed,
                };
                let c = TestCase {
                    name: attr(&e, b"name").unwrap_or_default(),
                    status,
                    skip_marked: status == TestStatus::Skipped,
                    secs: attr(&e, b"time")
                        .and_then(|t| t.trim().parse::<f64>().ok())
                        .filter(|t| t.is_finite() && *t >= 0.0)
                        .unwrap_or(0.0),
                    message: None,
                    text: None,
                };
                if empty {
                    cases.push(c);
                } else {
                    open = Some(c);
                }
            }
            name @ (b"failure" | b"error" | b"skipped") => {
                if let Some(c) = open.as_mut() {
                    let failure = name != b"skipped";
                    if failure {
                        c.status = TestStatus::Failed;
                    } else {
                        c.skip_marked = true;
                        if c.status != TestStatus::Failed {
                            c.status = TestStatus::Skipped;
                        }
                    }
                    if let Some(m) = attr(&e, b"message").filter(|m| !m.trim().is_empty()) {
                        c.message = Some(m);
                    }
                    in_failure = failure && !empty;
                }
            }
            _ => {}
        }
    };
    Read {
        cases,
        unfinished: open,
        malformed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use TestStatus::{Failed as F, Passed as P, Skipped as S};

    fn case(name: &str, status: TestStatus, secs: f64) -> TestCase {
        TestCase {
            name: name.into(),
            status,
            skip_marked: status == S,
            secs,
            message: None,
            text: None,
        }
    }

    fn with(mut c: TestCase, message: Option<&str>, text: Option<&str>) -> TestCase {
        c.message = message.map(Into::into);
        c.text = text.map(Into::into);
        c
    }

    #[test]
    fn every_case_of_both_dialects_is_read_with_its_status_time_and_text() {
        // (what, document, the cases, the unfinished one, whether the document is malformed)
        type Row = (
            &'static str,
            &'static str,
            Vec<TestCase>,
            Option<TestCase>,
            bool,
        );
        let table: Vec<Row> = vec![
            ("empty document", "", vec![], None, false),
            (
                "no test case",
                "<testsuites></testsuites>",
                vec![],
                None,
                false,
            ),
            (
                "v2: every status",
                r#"<testsuites><testsuite name="Kubernetes e2e suite">
<testcase name="[SynchronizedBeforeSuite]" status="passed" time="3.5"></testcase>
<testcase name="[It] a &amp; b" status="failed" time="30"><failure message="" type="failed">[FAILED] timed out &lt;waiting&gt;
In [It] at: e2e.go:1</failure></testcase>
<testcase name="[It] c" status="skipped" time="0"><skipped message="skipped"></skipped></testcase>
<testcase name="[It] d" status="pending"/>
<testcase name="[It] e" status="timedout" time="-1"/>
<testcase name="[It] f" status="panicked" time="NaN"/>
<testcase name="[It] g" status="skipped"><failure>no</failure></testcase>
</testsuite></testsuites>"#,
                vec![
                    case("[SynchronizedBeforeSuite]", P, 3.5),
                    with(
                        case("[It] a & b", F, 30.0),
                        None,
                        Some("[FAILED] timed out <waiting>\nIn [It] at: e2e.go:1"),
                    ),
                    with(case("[It] c", S, 0.0), Some("skipped"), None),
                    case("[It] d", S, 0.0),
                    case("[It] e", F, 0.0),
                    case("[It] f", F, 0.0),
                    // Contradictory (ginkgo never writes it): failed, and marked skipped.
                    TestCase {
                        skip_marked: true,
                        ..with(case("[It] g", F, 0.0), None, Some("no"))
                    },
                ],
                None,
                false,
            ),
            (
                "v1: the child tells, a failure outweighs a skip",
                r#"<testsuite name="Kubernetes e2e suite"><testcase name="one" time=" 1.25 "></testcase>
<testcase name="two"><failure message=" boom ">x &#60; y</failure></testcase>
<testcase name="three"><skipped/></testcase>
<testcase name="four"><error message="e"/></testcase>
<testcase name="five"><failure/><skipped message="later"/></testcase></testsuite>"#,
                vec![
                    case("one", P, 1.25),
                    with(case("two", F, 0.0), Some(" boom "), Some("x  y")),
                    case("three", S, 0.0),
                    with(case("four", F, 0.0), Some("e"), None),
                    TestCase {
                        skip_marked: true,
                        ..with(case("five", F, 0.0), Some("later"), None)
                    },
                ],
                None,
                false,
            ),
            (
                "malformed tail: what was read, and the case it broke inside",
                r#"<testsuites><testcase name="a" status="passed"/><testcase name="b"><skipped/></wrong>"#,
                vec![case("a", P, 0.0)],
                Some(case("b", S, 0.0)),
                true,
            ),
            (
                "truncated: what was read, and the case it ends inside",
                r#"<testsuites><testcase name="a" status="passed"></testcase><testcase name="b" status="failed"><failure>x"#,
                vec![case("a", P, 0.0)],
                Some(with(case("b", F, 0.0), None, Some("x"))),
                false,
            ),
            (
                "truncated inside an attribute",
                r#"<testsuites><testcase name="a" status="passed"></testcase><testcase name="b"#,
                vec![case("a", P, 0.0)],
                None,
                true,
            ),
            ("not XML at all", "\u{fffd}<", vec![], None, true),
        ];
        for (what, doc, want, unfinished, malformed) in table {
            let got = read(doc.as_bytes());
            assert_eq!(got.cases, want, "{what}");
            assert_eq!(got.unfinished, unfinished, "{what}");
            assert_eq!(
                got.malformed.is_some(),
                malformed,
                "{what}: {:?}",
                got.malformed
            );
        }
    }

    #[test]
    fn the_failure_text_is_bounded() {
        let big = "x".repeat(10 * TEXT_MAX);
        let doc = format!(
            "<testsuite><testcase name=\"a\"><failure>{}{}</failure></testcase></testsuite>",
            "ab&amp;".repeat(2 * TEXT_MAX),
            big
        );
        let got = read(doc.as_bytes());
        let text = got.cases[0].text.as_deref().unwrap();
        // Chunks stop once the text reaches the bound: the long run after it is not taken.
        assert!(
            (TEXT_MAX..TEXT_MAX + 8).contains(&text.len()),
            "{}",
            text.len()
        );
        assert!(text.starts_with("ab&ab&"), "{text}");
        let err = read(b"<a><b></a>").malformed.unwrap();
        assert!(err.to_string().contains("not well-formed XML"), "{err}");
        assert!(std::error::Error::source(&err).is_some());
    }
}
