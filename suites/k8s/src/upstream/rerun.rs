//! The e2e sets' and kube-bench's per-test ledger, and what an earlier run settled: pure
//! functions, table-tested in `super::rerun_tests`.
//!
//! - Every spec of a set's JUnit goes to the run's ledger (stream `k8s-e2e:<set>`, the spec's
//!   name, its status, its failure excerpt scrubbed of credentials by [`scrub`]) when the
//!   set's results are collected, once the suite has ended: a set killed midway keeps none.
//!   Only what this run observed is appended, never a result taken from the prior ones.
//!   kube-bench's controls go to `kube-bench:<role>` by control number.
//! - A set's spec list is not known before it runs, so an earlier run's settled specs are
//!   not re-run by name: the set runs again with its own focus, and the names of the specs
//!   that passed or failed before (`--resume`) or passed (`--rerun-failed`) are added to its
//!   skip regex, escaped and anchored at the end of ginkgo's spec text ([`rerun_skip`]).
//!   Ginkgo v2 matches focus and skip against `<suite description> <spec text>`, and the
//!   Kubernetes JUnit names a spec `[It] <spec text>` with no label suffix (test/e2e/framework
//!   /junit.go of kubernetes/kubernetes sets `OmitSpecLabels: true`: "all labels are also part
//!   of the spec texts in inline [] tags"), so `(?:^| )(?:<names>)$` selects exactly them.
//!   Past [`MAX_SKIP`] (16 KiB) the whole set runs again: the conformance set's skip passes
//!   it after about 140 names (~410 names of ~119 escaped bytes each, ~49 KiB), so a
//!   conformance rerun runs the whole set.
//! - The judge sees the union ([`merge`], written back as one ginkgo JUnit by [`junit`]): a
//!   carried spec that the new run skipped (because it was told to) keeps its carried status.

use std::fmt::Write as _;

use nfvi_harness::ledger::{TestRecord, TestStatus};

use super::ginkgo;
use super::sets::FocusSet;

/// The longest skip regex handed to the pod; past it the whole set runs again.
pub(crate) const MAX_SKIP: usize = 16 * 1024;
/// The longest failure excerpt kept per spec.
const DETAIL_MAX: usize = 600;
// The reader keeps enough of a failure's text for [`scrub`] to fill an excerpt.
const _: () = assert!(ginkgo::TEXT_MAX >= DETAIL_MAX * 4);

/// The ledger stream of a set: `k8s-e2e:conformance`, `k8s-e2e:sig-network`.
pub(crate) fn stream(set: &FocusSet) -> String {
    let name = set.check.strip_prefix("k8s.e2e.").unwrap_or(set.check);
    format!("k8s-e2e:{name}")
}

/// One test case of a ginkgo JUnit, or one carried over from an earlier run.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Case {
    /// The name as the JUnit writes it: `[It] <spec text>`, `[SynchronizedBeforeSuite]`.
    pub(crate) name: String,
    pub(crate) status: TestStatus,
    /// The failure excerpt or skip reason, scrubbed.
    pub(crate) detail: Option<String>,
    pub(crate) secs: f64,
    /// The run it was observed in, when carried over from another run.
    pub(crate) carried_from: Option<String>,
    /// Taken from the earlier results (`prior`), not observed in this run: on `--resume` the
    /// prior records name no other run, so `carried_from` alone does not tell.
    pub(crate) carried: bool,
}

impl Case {
    /// The spec's text, for an `[It]` case.
    pub(crate) fn spec(&self) -> Option<&str> {
        self.name.strip_prefix("[It] ")
    }
}

/// The test cases of a ginkgo JUnit ([`ginkgo::read`]), each with its failure excerpt or skip
/// reason scrubbed ([`scrub`]): the last non-blank `message=`, else the failure's text. A
/// document that is not well-formed is an error; one cut short gives the cases it closes.
pub(crate) fn cases(junit: &[u8]) -> Result<Vec<Case>, String> {
    let read = ginkgo::read(junit);
    if let Some(e) = read.malformed {
        return Err(format!(
            "junit_01.xml is {}",
            nfvi_harness::error_with_causes(&e)
        ));
    }
    Ok(read
        .cases
        .into_iter()
        .map(|c| Case {
            detail: match c.message {
                Some(m) => Some(scrub(m.trim())),
                None => c.text.map(|t| scrub(t.trim())).filter(|t| !t.is_empty()),
            },
            name: c.name,
            status: c.status,
            secs: c.secs,
            carried_from: None,
            carried: false,
        })
        .collect())
}

/// The words whose value (the word after them and a `:` or `=`, quotes and blanks aside) is
/// a credential, matched at the end of the key lowercased with `_` as `-`: `token`,
/// `"password"`, `X-Api-Key`, `client-key-data`, `--bearer-token`.
const KEYS: [&str; 9] = [
    "token",
    "password",
    "passwd",
    "secret",
    "authorization",
    "apikey",
    "api-key",
    "key-data",
    "certificate-data",
];

/// `text` cut to [`DETAIL_MAX`] characters, with what looks like a credential replaced by
/// `***`: the value of a key of [`KEYS`] (`token=x`, `"token":"x"`, `'secret': 'x'`,
/// `Authorization: Basic x`), the word after `Bearer` (after any blank), JWTs (`eyJ…` with
/// two dots) and base64-encoded ones (`ZXlK…`) wherever they sit. Words are runs of
/// letters, digits and `-_./+`; everything else (blanks, quotes, punctuation) separates
/// them and is kept as it is, except the `=` padding right after a replaced value.
pub(crate) fn scrub(text: &str) -> String {
    #[derive(Clone, Copy, PartialEq)]
    enum State {
        Idle,
        /// After a key: a `:` or `=` makes the next word its value.
        Key,
        Value,
        /// After `Bearer` (or a scheme as a value): blanks make the next word a credential.
        Scheme,
        SchemeValue,
    }
    fn word_char(c: char) -> bool {
        c.is_alphanumeric() || "-_./+".contains(c)
    }
    fn looks_like_token(w: &str) -> bool {
        (w.starts_with("eyJ") && w.matches('.').count() >= 2)
            || (w.starts_with("ZXlK") && w.len() >= 16)
    }
    let mut out = String::with_capacity(text.len().min(DETAIL_MAX * 2 + 8));
    let mut state = State::Idle;
    let mut replaced = false;
    let mut rest = text;
    while let Some(first) = rest.chars().next() {
        let is_word = word_char(first);
        let len = rest
            .char_indices()
            .find(|&(_, c)| word_char(c) != is_word)
            .map_or(rest.len(), |(i, _)| i);
        let (token, tail) = rest.split_at(len);
        rest = tail;
        if !is_word {
            let sep = if replaced {
                token.trim_start_matches('=')
            } else {
                token
            };
            replaced = false;
            out.push_str(sep);
            let bare: String = sep
                .chars()
                .filter(|c| !c.is_whitespace() && !matches!(c, '"' | '\'' | '`'))
                .collect();
            state = match state {
                State::Key if !bare.is_empty() && bare.chars().all(|c| c == ':' || c == '=') => {
                    State::Value
                }
                State::Scheme if bare.is_empty() => State::SchemeValue,
                _ => State::Idle,
            };
        } else {
            let lower = token.to_lowercase().replace('_', "-");
            let scheme = lower == "bearer" || lower == "basic";
            let secret = match state {
                State::Value => !scheme,
                State::SchemeValue => true,
                _ => looks_like_token(token),
            };
            replaced = secret;
            out.push_str(if secret { "***" } else { token });
            state = if !secret && (lower == "bearer" || (state == State::Value && scheme)) {
                State::Scheme
            } else if !secret && KEYS.iter().any(|k| lower.ends_with(k)) {
                State::Key
            } else {
                State::Idle
            };
        }
        if out.len() > DETAIL_MAX * 2 {
            break;
        }
    }
    nfvi_harness::truncate_chars(&out, DETAIL_MAX)
}

/// Go's `regexp.QuoteMeta`: every RE2 metacharacter escaped.
pub(crate) fn quote_meta(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if r"\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The skip regex of a set's run given what an earlier run settled: the set's own skip and,
/// when specs were settled (passed, or failed on `--resume`), their escaped names anchored
/// at the end of the spec text. Skipped specs are run again (cheap, and a skip may have been
/// the environment's). The second value says why the whole set runs again instead (a regex
/// longer than [`MAX_SKIP`]), for the log.
pub(crate) fn rerun_skip(set_skip: &str, prior: &[TestRecord]) -> (String, Option<String>) {
    let names: Vec<String> = prior
        .iter()
        .filter(|r| r.status != TestStatus::Skipped && !r.test.is_empty())
        .map(|r| quote_meta(&r.test))
        .collect();
    if names.is_empty() {
        return (set_skip.to_owned(), None);
    }
    let settled = format!("(?:^| )(?:{})$", names.join("|"));
    let skip = if set_skip.is_empty() {
        settled
    } else {
        format!("{set_skip}|{settled}")
    };
    if skip.len() > MAX_SKIP {
        return (
            set_skip.to_owned(),
            Some(format!(
                "the skip regex of the {} settled spec(s) would be {} bytes (over {MAX_SKIP}): the whole set runs again, and the new results replace the carried ones",
                names.len(),
                skip.len()
            )),
        );
    }
    (skip, None)
}

/// The union of the carried results and a new run's.
#[derive(Debug, Default)]
pub(crate) struct Merged {
    /// Every case: the new run's in its order (a spec the new run skipped replaced by its
    /// carried result), then the carried specs the new run did not report.
    pub(crate) cases: Vec<Case>,
    /// How many cases were carried over.
    pub(crate) carried: usize,
}

/// Merges: a spec the new run ran (passed or failed) takes the new result; one it skipped
/// keeps its carried result; carried specs the new run did not report are added.
pub(crate) fn merge(prior: &[TestRecord], new: Vec<Case>) -> Merged {
    let mut used = vec![false; prior.len()];
    let find = |spec: &str| prior.iter().position(|r| r.test == spec);
    let mut merged = Merged::default();
    for c in new {
        let slot = c.spec().and_then(find);
        match slot {
            Some(i) if c.status == TestStatus::Skipped => {
                used[i] = true;
                merged.cases.push(carried(&prior[i]));
                merged.carried += 1;
            }
            Some(i) => {
                used[i] = true;
                merged.cases.push(c);
            }
            None => merged.cases.push(c),
        }
    }
    for (r, _) in prior.iter().zip(&used).filter(|(_, u)| !**u) {
        merged.cases.push(carried(r));
        merged.carried += 1;
    }
    merged
}

fn carried(r: &TestRecord) -> Case {
    Case {
        name: format!("[It] {}", r.test),
        status: r.status,
        detail: r.detail.clone(),
        secs: r.secs,
        carried_from: r.carried_from.clone(),
        carried: true,
    }
}

/// The ledger records of the cases observed in this run, one per spec; never a case taken
/// from the prior results (they are in the ledger already: the resumed run's own lines, or
/// the lines `--rerun-failed` carried over).
pub(crate) fn records(stream: &str, cases: &[Case]) -> Vec<TestRecord> {
    cases
        .iter()
        .filter(|c| !c.carried)
        .filter_map(|c| {
            Some(TestRecord {
                stream: stream.to_owned(),
                test: c.spec()?.to_owned(),
                status: c.status,
                detail: c.detail.clone(),
                secs: c.secs,
                carried_from: None,
            })
        })
        .collect()
}

/// A ginkgo v2 JUnit of `cases`, as the evidence path reads it: one `Kubernetes e2e suite`,
/// `status=` on every case, `SuiteSucceeded` true when none failed.
pub(crate) fn junit(cases: &[Case], focus: &str) -> Vec<u8> {
    use quick_xml::escape::escape;
    let failed = cases
        .iter()
        .filter(|c| c.status == TestStatus::Failed)
        .count();
    let skipped = cases
        .iter()
        .filter(|c| c.status == TestStatus::Skipped)
        .count();
    let mut x = String::new();
    let _ = write!(
        x,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites tests=\"{n}\" disabled=\"{skipped}\" errors=\"0\" failures=\"{failed}\">\n<testsuite name=\"Kubernetes e2e suite\" tests=\"{n}\" skipped=\"{skipped}\" errors=\"0\" failures=\"{failed}\">\n<properties>\n<property name=\"SuiteSucceeded\" value=\"{}\"></property>\n<property name=\"FocusStrings\" value=\"{}\"></property>\n</properties>\n",
        failed == 0,
        escape(focus),
        n = cases.len(),
    );
    for c in cases {
        let (status, child) = match c.status {
            TestStatus::Passed => ("passed", None),
            TestStatus::Failed => ("failed", Some("failure")),
            TestStatus::Skipped => ("skipped", Some("skipped")),
        };
        let _ = write!(
            x,
            "<testcase name=\"{}\" classname=\"Kubernetes e2e suite\" status=\"{status}\" time=\"{}\">",
            escape(c.name.as_str()),
            c.secs
        );
        if let Some(child) = child {
            let message = c.detail.as_deref().unwrap_or_default();
            let _ = write!(
                x,
                "<{child} message=\"{}\" type=\"{status}\"></{child}>",
                escape(message)
            );
        }
        x.push_str("</testcase>\n");
    }
    x.push_str("</testsuite>\n</testsuites>\n");
    x.into_bytes()
}

/// kube-bench's controls as ledger records (stream `kube-bench:<role>`, test = the control
/// number): PASS passed, FAIL failed, WARN and INFO skipped with the status in the detail.
/// Reads the JSON shapes `--json` prints: `{"Controls": [...]}` or the list of older releases.
pub(crate) fn bench_records(role: &str, json: &[u8]) -> Vec<TestRecord> {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(json) else {
        return Vec::new();
    };
    let controls = match &v {
        serde_json::Value::Array(a) => a.as_slice(),
        other => other
            .get("Controls")
            .and_then(|c| c.as_array())
            .map_or(&[][..], Vec::as_slice),
    };
    let stream = format!("kube-bench:{role}");
    let mut out = Vec::new();
    for group in controls
        .iter()
        .filter_map(|c| c.get("tests")?.as_array())
        .flatten()
    {
        for r in group
            .get("results")
            .and_then(|r| r.as_array())
            .into_iter()
            .flatten()
        {
            let Some(number) = r.get("test_number").and_then(|n| n.as_str()) else {
                continue;
            };
            let raw = r.get("status").and_then(|s| s.as_str()).unwrap_or("");
            let status = match raw {
                "PASS" => TestStatus::Passed,
                "FAIL" => TestStatus::Failed,
                _ => TestStatus::Skipped,
            };
            let desc = r.get("test_desc").and_then(|s| s.as_str()).unwrap_or("");
            let reason = r.get("reason").and_then(|s| s.as_str()).unwrap_or("");
            let detail = match (status, reason.is_empty()) {
                (TestStatus::Passed, _) => desc.to_owned(),
                (_, true) => format!("{raw}: {desc}"),
                (_, false) => format!("{raw}: {desc}: {reason}"),
            };
            out.push(TestRecord {
                stream: stream.clone(),
                test: number.to_owned(),
                status,
                detail: Some(scrub(&detail)).filter(|d| !d.is_empty()),
                secs: 0.0,
                carried_from: None,
            });
        }
    }
    out
}
