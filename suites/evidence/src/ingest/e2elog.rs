//! The e2e.log of a Kubernetes e2e run: the versions, `Will run`/`Ran N of M`, and the closing
//! `SUCCESS!`/`FAIL!` counts. Lines are scanned once; nothing else is kept. A log is free text,
//! so it never fails to parse: what is missing is judged (no summary: truncated).

use crate::model::{E2eLog, LogSummary};

/// Scans an e2e.log.
pub fn parse(data: &[u8]) -> E2eLog {
    let text = String::from_utf8_lossy(data);
    let mut log = E2eLog::default();
    for line in text.lines() {
        let line = line.trim();
        if let Some(v) = after(line, "e2e test version: ") {
            log.e2e_version = Some(word(v));
        } else if let Some(v) = after(line, "kube-apiserver version: ") {
            log.apiserver_version = Some(word(v));
        } else if let Some(rest) = line.strip_prefix("Will run ") {
            log.will_run = n_of_m(rest);
        } else if let Some(rest) = line.strip_prefix("Ran ") {
            if let Some(r) = n_of_m(rest) {
                log.ran = Some(r);
            }
        } else if line.contains("A BeforeSuite node failed so all tests were skipped") {
            log.before_suite_failed = true;
        }
        if let Some(s) = summary(line) {
            log.summary = Some(s);
        }
    }
    log
}

fn after<'a>(line: &'a str, marker: &str) -> Option<&'a str> {
    line.find(marker).map(|i| &line[i + marker.len()..])
}

fn word(s: &str) -> String {
    s.split_whitespace()
        .next()
        .unwrap_or_default()
        .chars()
        .take(64)
        .collect()
}

/// `419 of 6731 specs` / `419 of 6731 Specs in ...`.
fn n_of_m(s: &str) -> Option<(u64, u64)> {
    let mut it = s.split_whitespace();
    let n = it.next()?.parse().ok()?;
    (it.next()? == "of").then_some(())?;
    let m = it.next()?.parse().ok()?;
    it.next()
        .filter(|w| w.eq_ignore_ascii_case("specs"))
        .map(|_| (n, m))
}

/// `SUCCESS! -- 419 Passed | 0 Failed | 0 Pending | 6312 Skipped` (a trailing `PASS` or
/// `| 1 Flaked` tolerated), `FAIL! -- ...`, `FAIL! - reason -- ...`.
fn summary(line: &str) -> Option<LogSummary> {
    let success = if line.starts_with("SUCCESS!") {
        true
    } else if line.starts_with("FAIL!") {
        false
    } else {
        return None;
    };
    let counts = &line[line.find("-- ")? + 3..];
    let mut s = LogSummary {
        success,
        ..LogSummary::default()
    };
    let mut seen = 0;
    for part in counts.split('|') {
        let mut w = part.split_whitespace();
        let (Some(n), Some(what)) = (w.next(), w.next()) else {
            continue;
        };
        let Ok(n) = n.parse::<u64>() else { continue };
        let slot = match what {
            "Passed" => &mut s.passed,
            "Failed" => &mut s.failed,
            "Pending" => &mut s.pending,
            "Skipped" => &mut s.skipped,
            _ => continue,
        };
        *slot = n;
        seen += 1;
    }
    (seen == 4).then_some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries_of_each_shape() {
        let t = [
            (
                "SUCCESS! -- 419 Passed | 0 Failed | 0 Pending | 6312 Skipped",
                Some((true, 419, 0, 0, 6312)),
            ),
            (
                "SUCCESS! -- 1 Passed | 0 Failed | 0 Pending | 692 Skipped PASS",
                Some((true, 1, 0, 0, 692)),
            ),
            (
                "FAIL! -- 409 Passed | 2 Failed | 0 Pending | 6211 Skipped",
                Some((false, 409, 2, 0, 6211)),
            ),
            (
                "FAIL! - Interrupted by User -- 3 Passed | 1 Failed | 0 Pending | 5 Skipped | 1 Flaked",
                Some((false, 3, 1, 0, 5)),
            ),
            ("SUCCESS! -- 419 Passed | 0 Failed", None),
            ("PASS", None),
        ];
        for (line, want) in t {
            let got = summary(line).map(|s| (s.success, s.passed, s.failed, s.pending, s.skipped));
            assert_eq!(got, want, "{line}");
        }
    }

    #[test]
    fn versions_and_counts() {
        let log = parse(b"  I0209 e2e.go] Starting\nWill run 356 of 6965 specs\nFeb  9 23:40:10.344: INFO: e2e test version: v1.24.1\nFeb  9: INFO: kube-apiserver version: v1.24.1\nRan 356 of 6965 Specs in 6507.369 seconds\n");
        assert_eq!(log.e2e_version.as_deref(), Some("v1.24.1"));
        assert_eq!(log.apiserver_version.as_deref(), Some("v1.24.1"));
        assert_eq!(log.will_run, Some((356, 6965)));
        assert_eq!(log.ran, Some((356, 6965)));
        assert!(log.summary.is_none());
    }
}
