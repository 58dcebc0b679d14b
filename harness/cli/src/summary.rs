//! The summary a run prints on stderr when it ends: the report's first screen in at most
//! [`MAX_LINES`] lines, in the same order. The verdict (with its waivers, or why the run is
//! not certifiable), the totals on one line, the deciding failures grouped by requirement
//! with identical failures of one assertion folded ("cni.CNI-VER-002 on 17 plugins"), what
//! could not be decided, the waivers, the warnings as a count, the fleet, then where the
//! results, JUnit, log and report are. What does not fit ends in "… and N more (see
//! report)": the report has everything.

use std::path::Path;

use nfvi_harness::results::{RunResults, Verdict};
use nfvi_reports::Artifacts;
use nfvi_reports::triage::{Fold, Triage, not_certifiable, one_line};

/// The most lines the summary prints.
pub const MAX_LINES: usize = 25;
/// A message is cut here (the report has all of it).
const MESSAGE_CHARS: usize = 110;
/// Nodes named one per line; more are counted.
const MAX_UNVERIFIED_NODES: usize = 5;

/// Prints the summary on stderr.
pub fn print(r: &RunResults, a: &Artifacts, log: Option<&Path>) {
    for line in lines(r, a, log) {
        eprintln!("{line}");
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

/// `cni.CNI-VER-002 on 17 plugins (bandwidth, bridge, dhcp, …): message`.
fn fold_line(f: &Fold<'_>) -> String {
    let (message, others) = f.message();
    let on = match f.on.len() {
        0 => String::new(),
        1 => format!(" on {}", f.on[0]),
        n => {
            // Four names fit; more are cut after three.
            let shown = if n <= 4 { n } else { 3 };
            let mut names: Vec<&str> = f.on.iter().take(shown).map(String::as_str).collect();
            if n > shown {
                names.push("…");
            }
            format!(" on {n} {}s ({})", f.noun, names.join(", "))
        }
    };
    let more = match others {
        0 => String::new(),
        n => format!(" (+{} other message{})", n, if n == 1 { "" } else { "s" }),
    };
    format!(
        "{}{on}: {}{more}",
        f.assertion,
        one_line(message, MESSAGE_CHARS)
    )
}

/// The summary's lines (without newlines).
pub fn lines(r: &RunResults, a: &Artifacts, log: Option<&Path>) -> Vec<String> {
    let t = &r.totals;
    let triage = Triage::of(r);
    let verdict = match r.verdict {
        Verdict::Conformant => "CONFORMANT",
        Verdict::NonConformant => "NOT CONFORMANT",
        Verdict::Incomplete => "INCOMPLETE",
    };
    let waivers = if r.verdict == Verdict::Conformant && t.waived > 0 {
        format!(" with {}", plural(t.waived, "waiver", "waivers"))
    } else {
        String::new()
    };
    let mut head = vec![format!(
        "\n{verdict}{waivers}: suite {} ({}) on {}{}{}",
        r.suite.name,
        r.suite.version,
        r.target.name,
        if r.complete {
            ""
        } else {
            " (partial results: the run was stopped early)"
        },
        not_certifiable(r)
            .map(|why| format!("; not certifiable: {}", one_line(why, MESSAGE_CHARS)))
            .unwrap_or_default()
    )];
    head.push(format!(
        "  {} checks: {} passed, {} failed ({} warnings), {} waived, {} errors, {} timed out, {} skipped; mandatory requirements: {} of {} verified, {} failed, {} waived, {} {}{}",
        t.checks,
        t.passed,
        t.failed,
        t.warnings,
        t.waived,
        t.errors,
        t.timed_out,
        t.skipped,
        t.mandatory_verified,
        t.mandatory_requirements,
        t.mandatory_failed,
        t.mandatory_waived,
        t.mandatory_untested,
        // A rerun plans only the old run's failures: the rest are covered, just not run now.
        if r.conditions.rerun_of.is_some() {
            "not run in this rerun"
        } else {
            "not covered by this build"
        },
        if t.mandatory_not_testable > 0 {
            format!(", {} not testable by software", t.mandatory_not_testable)
        } else {
            String::new()
        },
    ));
    if r.verdict == Verdict::Incomplete
        && t.mandatory_verified + t.mandatory_waived == 0
        && t.mandatory_requirements > 0
    {
        head.push(format!(
            "  incomplete: none of the {} mandatory requirements was verified by this run",
            t.mandatory_requirements
        ));
    }

    let mut tail = Vec::new();
    let waived: usize = triage
        .waived
        .iter()
        .flat_map(|g| &g.folds)
        .map(|f| f.results.len())
        .sum();
    if triage.waived.len() <= 2 {
        for g in &triage.waived {
            let w = g.waiver;
            let what: Vec<String> = g.folds.iter().map(fold_name).collect();
            tail.push(format!(
                "  waived by {} (owner {}, expires {}{}): {}",
                w.id,
                w.owner,
                w.expires,
                w.ticket
                    .as_deref()
                    .map(|t| format!(", {t}"))
                    .unwrap_or_default(),
                one_line(&what.join(", "), MESSAGE_CHARS)
            ));
        }
    } else {
        tail.push(format!(
            "  waived: {} by {} (see report)",
            plural(waived, "failure", "failures"),
            plural(triage.waived.len(), "waiver", "waivers")
        ));
    }
    if let Some(w) = &r.waivers {
        let mut not_applied: Vec<String> = Vec::new();
        for u in w.forbidden() {
            not_applied.push(format!("{} not allowed by the suite", u.waiver.id));
        }
        for u in w.expired() {
            not_applied.push(format!("{} expired {}", u.waiver.id, u.waiver.expires));
        }
        for u in w.unmatched().filter(|u| !u.expired) {
            not_applied.push(format!("{} matched nothing", u.waiver.id));
        }
        if !not_applied.is_empty() {
            tail.push(format!(
                "  waivers not applied: {}",
                one_line(&not_applied.join(", "), MESSAGE_CHARS)
            ));
        }
    }
    if t.warnings > 0 {
        tail.push(format!(
            "  warnings: {} that do not decide the verdict (see report)",
            plural(t.warnings, "failure", "failures")
        ));
    }
    if let Some(fleet) = &r.fleet {
        let verified = fleet.nodes.iter().filter(|n| n.verified).count();
        tail.push(format!(
            "  fleet: {verified} of {} nodes verified over {}",
            fleet.nodes.len(),
            fleet.transport
        ));
        let unverified: Vec<_> = fleet.unverified().collect();
        for n in unverified.iter().take(MAX_UNVERIFIED_NODES) {
            tail.push(format!(
                "  node {} NOT VERIFIED (exit code 3): {}",
                n.node.name,
                one_line(n.error.as_deref().unwrap_or("no report"), MESSAGE_CHARS)
            ));
        }
        if unverified.len() > MAX_UNVERIFIED_NODES {
            tail.push(format!(
                "  … and {} more nodes NOT VERIFIED (see report)",
                unverified.len() - MAX_UNVERIFIED_NODES
            ));
        }
    }
    tail.push(format!("  results: {}", a.results.display()));
    tail.push(format!("  junit:   {}", a.junit.display()));
    if let Some(log) = log {
        tail.push(format!("  log:     {}", log.display()));
    }
    tail.push(format!("  report:  {}", a.html.display()));

    // The middle: deciding failures by requirement, then what could not be decided, as
    // many as fit.
    let mut middle: Vec<String> = Vec::new();
    for g in &triage.deciding {
        let req = match g.requirement {
            Some(q) => format!(
                "{} {}{}: {}",
                q.row.id,
                q.row.level.as_str().to_uppercase(),
                if g.also.is_empty() {
                    String::new()
                } else {
                    format!(" (also {})", g.also.join(", "))
                },
                one_line(&q.row.summary, 80)
            ),
            None => "checks that cover no requirement of this suite".to_owned(),
        };
        middle.push(format!("  failed {req}"));
        for f in &g.folds {
            middle.push(format!("      {}", fold_line(f)));
        }
    }
    if !triage.undecided.is_empty() {
        let n: usize = triage.undecided.iter().map(|f| f.results.len()).sum();
        middle.push(format!(
            "  could not decide ({}):",
            plural(n, "check", "checks")
        ));
        for f in &triage.undecided {
            middle.push(format!("      {}", fold_line(f)));
        }
    }
    // The blank line before the verdict counts too.
    let room = MAX_LINES.saturating_sub(1 + head.len() + tail.len()).max(2);
    if middle.len() > room {
        let hidden = middle[room - 1..]
            .iter()
            .filter(|l| l.starts_with("      "))
            .count();
        middle.truncate(room - 1);
        middle.push(format!("  … and {hidden} more (see report)"));
    }
    head.into_iter().chain(middle).chain(tail).collect()
}

/// `cni.CNI-VER-002 on 3 plugins` or the check ID: what a waiver excused.
fn fold_name(f: &Fold<'_>) -> String {
    match f.on.len() {
        0 => f.assertion.clone(),
        1 => format!("{} on {}", f.assertion, f.on[0]),
        n => format!("{} on {n} {}s", f.assertion, f.noun),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn artifacts() -> Artifacts {
        Artifacts::in_dir(Path::new("/tmp/run"))
    }

    #[test]
    fn a_failing_rc2_run_fits_and_folds() {
        let r = nfvi_integration_tests::synthetic_rc2_failing();
        let lines = lines(
            &r,
            &artifacts(),
            Some(Path::new("/tmp/run/nfvi-verify.log")),
        );
        let text = lines.join("\n");
        // The first element starts with a newline: a blank line before the verdict.
        assert!(text.lines().count() <= MAX_LINES, "{text}");
        assert!(
            lines[0]
                .trim_start()
                .starts_with("NOT CONFORMANT: suite rc2"),
            "{text}"
        );
        assert!(lines[0].contains("not certifiable: evidence"), "{text}");
        let folded: Vec<&String> = lines
            .iter()
            .filter(|l| l.contains("cni.CNI-VER-002 on 17 plugins (bandwidth, bridge, dhcp, …)"))
            .collect();
        assert_eq!(folded.len(), 1, "{text}");
        assert!(!text.contains("cni.bridge.CNI-VER-002"), "{text}");
        // Deciding failures come before the waivers, the waivers before the warnings, and
        // the paths last.
        let at = |needle: &str| {
            lines
                .iter()
                .position(|l| l.contains(needle))
                .unwrap_or_else(|| panic!("{needle} missing: {text}"))
        };
        assert!(at("failed inf.ntw.08 MUST") < at("waived by W-17"));
        assert!(at("waived by W-17") < at("waivers not applied: W-OLD expired"));
        assert!(at("W-NONE matched nothing") < at("warnings: 12 failures"));
        assert!(at("warnings:") < at("report:  /tmp/run/report.html"));
        assert!(lines[1].contains("1 waived"), "{}", lines[1]);
        insta::assert_snapshot!("rc2_summary", text);
    }

    #[test]
    fn what_does_not_fit_is_counted() {
        let mut r = nfvi_integration_tests::synthetic_rc2_failing();
        // Every check a different assertion: nothing folds.
        for (i, c) in r.checks.iter_mut().enumerate() {
            c.id = format!("cni.p{i}.CNI-X-{i:03}");
            c.subject = Some(format!("p{i}"));
        }
        let lines = lines(&r, &artifacts(), None);
        assert!(lines.join("\n").lines().count() <= MAX_LINES, "{lines:#?}");
        let more = lines
            .iter()
            .find(|l| l.starts_with("  … and "))
            .expect("a count of what did not fit");
        assert!(more.ends_with(" more (see report)"), "{more}");
        // What is hidden is counted: the rows shown and hidden add up to every failure.
        let shown = lines.iter().filter(|l| l.starts_with("      ")).count();
        let hidden: usize = more["  … and ".len()..more.len() - " more (see report)".len()]
            .parse()
            .unwrap();
        let deciding = r
            .checks
            .iter()
            .filter(|c| c.decides_non_conformance(r.strict))
            .count();
        assert_eq!(shown + hidden, deciding, "{lines:#?}");
        assert!(lines.last().unwrap().starts_with("  report:"));
    }

    #[test]
    fn a_conformant_run_names_its_waivers() {
        let mut r = nfvi_integration_tests::synthetic_rc2_failing();
        r.verdict = Verdict::Conformant;
        r.totals.waived = 2;
        let lines = lines(&r, &artifacts(), None);
        assert!(
            lines[0].starts_with("\nCONFORMANT with 2 waivers: suite rc2"),
            "{}",
            lines[0]
        );
    }
}
