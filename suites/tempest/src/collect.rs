//! The subunit stream of a running Tempest, test by test: when each started and ended, why
//! it was skipped or how it failed (never with the password), and the counts and ETA of the
//! progress lines.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use nfvi_suite_evidence::ingest::subunit::{Packet, status_of};
use nfvi_suite_evidence::model::{TestStatus, tempest_uuid};

use crate::proc;

/// The longest skip reason or failure excerpt kept per test.
const EXCERPT: usize = 1500;

/// One test as the stream reported it.
#[derive(Clone, Debug, PartialEq)]
pub struct TestRecord {
    /// Its id (`tempest.api....test_x[id-...,smoke]`, `setUpClass (...)`).
    pub id: String,
    /// Its idempotent id (the `id-` attribute).
    pub uuid: Option<String>,
    /// Its final status.
    pub status: TestStatus,
    /// Seconds from `inprogress` to its end.
    pub duration: Option<f64>,
    /// Why it was skipped, or the end of its traceback.
    pub detail: Option<String>,
    /// Whether it started (`inprogress`) or ended; a test only announced (`exists`, as
    /// stestr lists every test first) did neither.
    pub started: bool,
}

/// Per test, what the stream said so far.
#[derive(Default)]
struct Seen {
    started: Option<DateTime<Utc>>,
    reason: Option<String>,
    traceback: Option<String>,
}

/// Counts for the progress line.
#[derive(Default, Debug, PartialEq, Eq)]
pub struct Counts {
    /// Passed.
    pub passed: usize,
    /// Failed.
    pub failed: usize,
    /// Skipped.
    pub skipped: usize,
}

/// `37/136 done: 35 passed, 0 failed, 2 skipped; 1m10s elapsed, ETA 2m58s`.
pub fn progress_line(c: &Counts, total: usize, elapsed: Duration) -> String {
    let done = c.passed + c.failed + c.skipped;
    let eta = if done == 0 || total <= done {
        String::new()
    } else {
        let per = elapsed.as_secs_f64() / done as f64;
        format!(", ETA {}", clock(per * (total - done) as f64))
    };
    format!(
        "{done}/{total} done: {} passed, {} failed, {} skipped; {} elapsed{eta}",
        c.passed,
        c.failed,
        c.skipped,
        clock(elapsed.as_secs_f64())
    )
}

fn clock(secs: f64) -> String {
    let s = secs.max(0.0).round() as u64;
    if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}

/// The forms a password takes in what Tempest and its libraries print: as is, JSON-escaped
/// (also with `\/`), percent-encoded (upper- and lower-case hex, `+` for a blank), Python's
/// repr escapes, and oslo.config's `$$` (as tempest.conf holds it); longest first.
fn password_forms(password: &str) -> Vec<String> {
    if password.is_empty() {
        return Vec::new();
    }
    let json = serde_json::to_string(password).unwrap_or_default();
    let json = json
        .strip_prefix('"')
        .and_then(|j| j.strip_suffix('"'))
        .unwrap_or(password)
        .to_owned();
    let percent = |upper: bool, plus: bool| {
        password
            .bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    (b as char).to_string()
                }
                b' ' if plus => "+".to_owned(),
                _ if upper => format!("%{b:02X}"),
                _ => format!("%{b:02x}"),
            })
            .collect::<String>()
    };
    let mut forms = vec![
        password.to_owned(),
        json.clone(),
        json.replace('/', "\\/"),
        percent(true, false),
        percent(false, false),
        percent(true, true),
        password.replace('\\', "\\\\").replace('\'', "\\'"),
        password.replace('$', "$$"),
    ];
    forms.sort_by_key(|f| std::cmp::Reverse(f.len()));
    forms.dedup();
    forms
}

/// `text` with every form of the password masked: for every text that leaves the area.
pub fn mask(text: &str, password: &str) -> String {
    let mut s = text.to_owned();
    for f in password_forms(password) {
        s = s.replace(&f, "[redacted]");
    }
    s
}

/// Keeps text for the evidence: the password never (in any form), the end of a long
/// traceback.
pub(crate) fn excerpt(bytes: &[u8], password: &str) -> String {
    let s = mask(&String::from_utf8_lossy(bytes), password);
    let s = s.trim();
    if s.chars().count() > EXCERPT {
        format!("...{}", proc::tail(s, EXCERPT))
    } else {
        s.to_owned()
    }
}

/// Gathers the tests of a subunit stream, packet by packet.
pub struct Collector {
    seen: HashMap<String, Seen>,
    index: HashMap<String, usize>,
    tests: Vec<TestRecord>,
    /// Tests ended so far.
    pub counts: Counts,
    password: String,
}

impl Collector {
    /// A collector that keeps `password` out of every excerpt.
    pub fn new(password: &str) -> Self {
        Self {
            seen: HashMap::new(),
            index: HashMap::new(),
            tests: Vec::new(),
            counts: Counts::default(),
            password: password.to_owned(),
        }
    }

    /// Takes one packet; returns the test it ended, if it ended one (for the run's ledger).
    pub fn packet(&mut self, p: Packet) -> Option<TestRecord> {
        let id = p.test_id?;
        let s = self.seen.entry(id.clone()).or_default();
        if let Some((name, bytes)) = &p.file {
            match name.as_str() {
                "reason" => s.reason = Some(excerpt(bytes, &self.password)),
                "traceback" => s.traceback = Some(excerpt(bytes, &self.password)),
                _ => {}
            }
        }
        let status = status_of(p.status)?;
        // `exists` (1) only announces a test; `inprogress` (2) starts it.
        if p.status == 2 {
            s.started = s.started.or(p.timestamp);
        }
        let duration = match (s.started, p.timestamp) {
            (Some(a), Some(b)) if status != TestStatus::Incomplete => {
                Some((b - a).num_milliseconds() as f64 / 1000.0)
            }
            _ => None,
        };
        let detail = match status {
            TestStatus::Skipped => s.reason.clone(),
            TestStatus::Failed => s.traceback.clone().or_else(|| s.reason.clone()),
            _ => None,
        };
        let record = TestRecord {
            uuid: tempest_uuid(&id),
            id: id.clone(),
            status,
            duration,
            detail,
            started: s.started.is_some() || status != TestStatus::Incomplete,
        };
        let ended = (status != TestStatus::Incomplete).then(|| record.clone());
        match self.index.get(&id) {
            Some(&i) if status == TestStatus::Incomplete => {
                self.tests[i].started |= record.started;
            }
            Some(&i) => self.tests[i] = record,
            None => {
                self.index.insert(id, self.tests.len());
                self.tests.push(record);
            }
        }
        match status {
            TestStatus::Passed => self.counts.passed += 1,
            TestStatus::Failed => self.counts.failed += 1,
            TestStatus::Skipped => self.counts.skipped += 1,
            TestStatus::Incomplete => {}
        }
        ended
    }

    /// Every test, the unstarted ones resolved by their class fixtures.
    pub fn finish(mut self) -> Vec<TestRecord> {
        inherit_class_fixtures(&mut self.tests);
        self.tests
    }
}

/// The ledger's stream of Tempest's tests.
pub const STREAM: &str = "tempest";

/// A test that ended, as the run's ledger keeps it (`None`: it did not end).
pub fn to_ledger(t: &TestRecord) -> Option<nfvi_harness::ledger::TestRecord> {
    use nfvi_harness::ledger::TestStatus as L;
    let status = match t.status {
        TestStatus::Passed => L::Passed,
        TestStatus::Failed => L::Failed,
        TestStatus::Skipped => L::Skipped,
        TestStatus::Incomplete => return None,
    };
    Some(nfvi_harness::ledger::TestRecord {
        stream: STREAM.to_owned(),
        test: t.id.clone(),
        status,
        detail: t.detail.clone(),
        secs: t.duration.unwrap_or_default(),
        carried_from: None,
    })
}

/// A test an earlier run settled, as this run's report holds it.
pub fn from_ledger(r: &nfvi_harness::ledger::TestRecord) -> TestRecord {
    use nfvi_harness::ledger::TestStatus as L;
    TestRecord {
        uuid: tempest_uuid(&r.test),
        id: r.test.clone(),
        status: match r.status {
            L::Passed => TestStatus::Passed,
            L::Failed => TestStatus::Failed,
            L::Skipped => TestStatus::Skipped,
        },
        duration: Some(r.secs),
        detail: r.detail.clone(),
        started: true,
    }
}

/// A test that never started takes the outcome of its class's fixture when that was
/// reported: a `setUpClass` skipped (a feature the cloud lacks) skips every test of the class,
/// one that failed fails them; the reason says it came from the class.
pub fn inherit_class_fixtures(tests: &mut [TestRecord]) {
    let fixtures: Vec<(String, TestStatus, Option<String>)> = tests
        .iter()
        .filter_map(|t| {
            let class = t.id.strip_prefix("setUpClass (")?.strip_suffix(')')?;
            Some((class.to_owned(), t.status, t.detail.clone()))
        })
        .collect();
    for t in tests.iter_mut().filter(|t| !t.started) {
        let bare = t.id.split_once('[').map_or(t.id.as_str(), |(b, _)| b);
        let Some((class, _)) = bare.rsplit_once('.') else {
            continue;
        };
        if let Some((_, status, detail)) = fixtures
            .iter()
            .find(|(c, st, _)| c == class && *st != TestStatus::Incomplete)
        {
            t.status = *status;
            t.detail = Some(format!(
                "setUpClass of {class} {}: {}",
                if *status == TestStatus::Skipped {
                    "skipped"
                } else {
                    "did not pass"
                },
                detail.as_deref().unwrap_or("no reason given")
            ));
            t.started = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_collector_times_tests_from_their_start_and_keeps_reasons() {
        let at = |s: i64| DateTime::<Utc>::from_timestamp(1_800_000_000 + s, 0);
        let pk = |id: &str, status: u8, t: i64, file: Option<(&str, &str)>| Packet {
            test_id: Some(id.to_owned()),
            status,
            timestamp: at(t),
            file: file.map(|(n, b)| (n.to_owned(), b.as_bytes().to_vec())),
            ..Packet::default()
        };
        let (a, b) = (
            "tempest.api.identity.v3.T.test_a[id-1]",
            "tempest.api.identity.v3.T.test_b[id-2]",
        );
        let mut c = Collector::new("s3cret");
        // stestr lists every test first (`exists`), long before it starts one.
        for p in [
            pk(a, 1, 0, None),
            pk(b, 1, 0, None),
            pk(a, 2, 20, None),
            pk(
                a,
                0,
                21,
                Some(("traceback", "Traceback: auth s3cret refused")),
            ),
            pk(a, 6, 22, None),
            pk(b, 2, 22, None),
            pk(b, 0, 22, Some(("reason", "Feature not enabled"))),
            pk(b, 5, 22, None),
        ] {
            c.packet(p);
        }
        assert_eq!(
            c.counts,
            Counts {
                passed: 0,
                failed: 1,
                skipped: 1
            }
        );
        let tests = c.finish();
        assert_eq!(tests.len(), 2);
        assert_eq!(tests[0].status, TestStatus::Failed);
        assert_eq!(tests[0].duration, Some(2.0));
        assert_eq!(
            tests[0].detail.as_deref(),
            Some("Traceback: auth [redacted] refused")
        );
        assert_eq!(tests[1].detail.as_deref(), Some("Feature not enabled"));
        assert_eq!(tests[1].uuid.as_deref(), Some("2"));
    }

    #[test]
    fn tests_of_a_skipped_class_take_its_reason() {
        let rec = |id: &str, status, started, detail: Option<&str>| TestRecord {
            id: id.into(),
            uuid: None,
            status,
            duration: None,
            detail: detail.map(str::to_owned),
            started,
        };
        let mut tests = vec![
            rec(
                "tempest.api.identity.v3.test_users.IdentityV3UsersTest.test_a[id-1]",
                TestStatus::Incomplete,
                false,
                None,
            ),
            rec(
                "setUpClass (tempest.api.identity.v3.test_users.IdentityV3UsersTest)",
                TestStatus::Skipped,
                true,
                Some("Security compliance not available."),
            ),
            rec(
                "tempest.api.identity.v3.test_x.Other.test_b[id-2]",
                TestStatus::Incomplete,
                false,
                None,
            ),
            rec(
                "tempest.api.identity.v3.test_x.Other.test_c[id-3]",
                TestStatus::Incomplete,
                true,
                None,
            ),
        ];
        inherit_class_fixtures(&mut tests);
        assert_eq!(tests[0].status, TestStatus::Skipped);
        assert!(
            tests[0]
                .detail
                .as_deref()
                .unwrap()
                .ends_with("Security compliance not available.")
        );
        // No fixture: it stays unrun; a started one stays unfinished.
        assert_eq!(
            (tests[2].status, tests[2].started),
            (TestStatus::Incomplete, false)
        );
        assert_eq!(
            (tests[3].status, tests[3].started),
            (TestStatus::Incomplete, true)
        );
    }

    #[test]
    fn progress_lines_count_and_estimate() {
        let c = Counts {
            passed: 30,
            failed: 1,
            skipped: 3,
        };
        assert_eq!(
            progress_line(&c, 136, Duration::from_secs(68)),
            "34/136 done: 30 passed, 1 failed, 3 skipped; 1m08s elapsed, ETA 3m24s"
        );
        assert_eq!(
            progress_line(&Counts::default(), 10, Duration::from_secs(5)),
            "0/10 done: 0 passed, 0 failed, 0 skipped; 5s elapsed"
        );
    }

    #[test]
    fn no_form_of_the_password_survives() {
        let pw = r#"p"a/s%s 'x'\"#;
        let stderr = format!(
            "raw {pw}\njson {{\"password\": {}}}\njson-slash p\\\"a\\/s%s 'x'\\\\\nurl password=p%22a%2Fs%25s%20%27x%27%5C&x=1\nurl-lower p%22a%2fs%25s%20%27x%27%5c\nform p%22a%2Fs%25s+%27x%27%5C\nrepr 'p\"a/s%s \\'x\\'\\\\'\nconf p\"a/s%s 'x'\\",
            serde_json::to_string(pw).unwrap()
        );
        let e = excerpt(stderr.as_bytes(), pw);
        for leak in ["p\"a", "p\\\"a", "p%22a", "s%s", "s%25s"] {
            assert!(!e.contains(leak), "{leak} survives in:\n{e}");
        }
        assert_eq!(e.matches("[redacted]").count(), 8, "{e}");
        // The oslo.config form of a `$`.
        assert_eq!(mask("pw a$$b", "a$b"), "pw [redacted]");
    }

    #[test]
    fn excerpts_never_hold_the_password_and_keep_the_end() {
        let long = format!("{}Error: pw-123 refused", "x".repeat(3000));
        let e = excerpt(long.as_bytes(), "pw-123");
        assert!(!e.contains("pw-123"));
        assert!(e.ends_with("Error: [redacted] refused"), "{e}");
        assert!(e.chars().count() <= EXCERPT + 3);
    }
}
