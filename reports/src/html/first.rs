//! The report's first screen: what a reviewer reads before scrolling. Under the verdict
//! banner, the deciding failures grouped by requirement (identical failures of one
//! assertion folded into one row that links to each result's details), then what could not
//! be decided, the waivers (applied, and apart: expired, unmatched, not allowed) and the
//! warnings, compactly. Built from [`crate::triage::Triage`], like the terminal summary.

use nfvi_harness::results::{RunResults, Verdict};

use super::{Link, anchor, check_anchor, is_url, outcome_class};
use crate::triage::{Fold, Triage, one_line};

/// A first-screen message is cut here; the details below have all of it.
const MESSAGE_CHARS: usize = 280;
/// Other distinct messages of a folded row shown when it is opened; the details have all.
const MAX_OTHER_MESSAGES: usize = 5;
/// A warning is one short line.
const WARNING_CHARS: usize = 160;

/// One folded row.
pub(super) struct RowView {
    /// The details of its first result.
    pub anchor: String,
    pub assertion: String,
    /// `17 plugins:` before the links, or empty.
    pub count: String,
    /// Each result, linked to its details (empty for one result about nothing in
    /// particular).
    pub on: Vec<Link>,
    pub message: String,
    /// `and 2 other messages`, or empty.
    pub more: String,
    /// Those messages, each with how many results said it (shown when opened).
    pub others: Vec<String>,
    pub class: &'static str,
}

/// The deciding failures of one requirement.
pub(super) struct GroupView {
    pub anchor: String,
    pub id: String,
    pub level: String,
    pub summary: String,
    pub also: String,
    pub rows: Vec<RowView>,
}

/// The failures one waiver excused.
pub(super) struct AppliedView {
    pub id: String,
    pub reason: String,
    pub owner: String,
    /// A link, only for an http(s) URL.
    pub ticket_url: Option<String>,
    /// What the ticket field says when it is not a URL (results edited by hand).
    pub ticket_text: Option<String>,
    pub expires: String,
    pub rows: Vec<RowView>,
}

/// A waiver that did not apply.
pub(super) struct WaiverLine {
    pub id: String,
    pub what: String,
    pub detail: String,
}

pub(super) struct WaiversView {
    pub file: String,
    pub judged_on: String,
    pub applied: Vec<AppliedView>,
    pub expired: Vec<WaiverLine>,
    pub unmatched: Vec<WaiverLine>,
    pub forbidden: Vec<WaiverLine>,
}

pub(super) struct FirstScreen {
    pub title: String,
    pub lead: String,
    pub groups: Vec<GroupView>,
    pub undecided: Vec<RowView>,
    pub waivers: Option<WaiversView>,
    pub warnings: Vec<RowView>,
    /// `12 failures`.
    pub warning_results: String,
    /// Why the run is not certifiable, every reason.
    pub not_certifiable: Vec<String>,
}

fn row(r: &RunResults, f: &Fold<'_>, chars: usize) -> RowView {
    let first = f.results[0];
    let many = f.results.len() > 1;
    let on: Vec<Link> = f
        .results
        .iter()
        .zip(&f.on)
        .map(|(c, label)| Link {
            anchor: check_anchor(c),
            text: label.clone(),
            class: outcome_class(c, r.strict).0,
        })
        .collect();
    let (message, others) = f.message();
    RowView {
        anchor: check_anchor(first),
        assertion: f.assertion.clone(),
        count: if many {
            format!("{} {}s:", f.results.len(), f.noun)
        } else if on.is_empty() {
            String::new()
        } else {
            "on".to_owned()
        },
        on,
        message: one_line(message, chars),
        more: match others {
            0 => String::new(),
            1 => "and 1 other message".to_owned(),
            n => format!("and {n} other messages"),
        },
        others: f
            .messages
            .iter()
            .skip(1)
            .take(MAX_OTHER_MESSAGES)
            .map(|(m, n)| format!("{}× {}", n, one_line(m, chars)))
            .collect(),
        class: outcome_class(first, r.strict).0,
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

fn waivers(r: &RunResults, t: &Triage<'_>) -> Option<WaiversView> {
    if r.waivers.is_none() && t.waived.is_empty() {
        return None;
    }
    let applied = t
        .waived
        .iter()
        .map(|g| AppliedView {
            id: g.waiver.id.clone(),
            reason: g.waiver.reason.clone(),
            owner: g.waiver.owner.clone(),
            ticket_url: g.waiver.ticket.clone().filter(|u| is_url(u)),
            ticket_text: g.waiver.ticket.clone().filter(|u| !is_url(u)),
            expires: g.waiver.expires.to_string(),
            rows: g.folds.iter().map(|f| row(r, f, MESSAGE_CHARS)).collect(),
        })
        .collect();
    let (mut expired, mut unmatched, mut forbidden) = (Vec::new(), Vec::new(), Vec::new());
    if let Some(w) = &r.waivers {
        let what = |u: &nfvi_harness::waiver::WaiverUse| {
            let mut s = format!("{}: {}", u.waiver.checks.join(", "), u.waiver.reason);
            if let Some(n) = &u.waiver.node {
                s.push_str(&format!(" (nodes {n})"));
            }
            if let Some(x) = &u.waiver.subject {
                s.push_str(&format!(" (subjects {x})"));
            }
            format!(
                "{s}; owner {}, expires {}",
                u.waiver.owner, u.waiver.expires
            )
        };
        for u in w.expired() {
            expired.push(WaiverLine {
                id: u.waiver.id.clone(),
                what: what(u),
                detail: if u.expired_for.is_empty() {
                    "named no failure of this run".to_owned()
                } else {
                    format!("still failing: {}", u.expired_for.join(", "))
                },
            });
        }
        for u in w.unmatched().filter(|u| !u.expired) {
            unmatched.push(WaiverLine {
                id: u.waiver.id.clone(),
                what: what(u),
                detail: "named no failure of this run: remove it, or fix its globs".to_owned(),
            });
        }
        for u in w.forbidden() {
            forbidden.push(WaiverLine {
                id: u.waiver.id.clone(),
                what: what(u),
                detail: format!(
                    "the suite allows no waiver for {}; still failing",
                    u.forbidden_for.join(", ")
                ),
            });
        }
    }
    Some(WaiversView {
        file: r
            .waivers
            .as_ref()
            .map_or_else(String::new, |w| w.file.clone()),
        judged_on: r
            .waivers
            .as_ref()
            .map_or_else(String::new, |w| w.judged_on.to_string()),
        applied,
        expired,
        unmatched,
        forbidden,
    })
}

pub(super) fn view(r: &RunResults) -> FirstScreen {
    let t = Triage::of(r);
    let deciding = t.deciding_results();
    let rows: usize = t.deciding.iter().map(|g| g.folds.len()).sum();
    let undecided: usize = t.undecided.iter().map(|f| f.results.len()).sum();
    let title = match r.verdict {
        Verdict::NonConformant => "Why not conformant",
        Verdict::Incomplete => "Why incomplete",
        Verdict::Conformant => "What the verdict rests on",
    }
    .to_owned();
    let lead = if deciding > 0 {
        let reqs = t
            .deciding
            .iter()
            .filter(|g| g.requirement.is_some())
            .count();
        // A failure is listed under one requirement it fails; the count of failed
        // requirements is the matrix's.
        format!(
            "{} decide the verdict: {} failed, listed under {}{}.",
            plural(deciding, "failure", "failures"),
            plural(
                r.totals.mandatory_failed,
                "mandatory requirement",
                "mandatory requirements"
            ),
            plural(reqs, "requirement", "requirements"),
            if rows < deciding {
                format!(", folded into {}", plural(rows, "row", "rows"))
            } else {
                String::new()
            }
        )
    } else if undecided > 0 {
        format!(
            "No failure decides the verdict, but {} could not be decided.",
            plural(undecided, "check", "checks")
        )
    } else if !r.complete {
        "No failure decides the verdict, but the run was stopped early.".to_owned()
    } else if r.verdict == Verdict::Incomplete {
        format!(
            "No failure decides the verdict, but the run verified none of the {} mandatory requirements.",
            r.totals.mandatory_requirements
        )
    } else {
        "No failure decides the verdict.".to_owned()
    };
    FirstScreen {
        title,
        lead,
        groups: t
            .deciding
            .iter()
            .map(|g| GroupView {
                anchor: g
                    .requirement
                    .map_or_else(String::new, |q| anchor("req", q.row.id.as_str())),
                id: g
                    .requirement
                    .map_or_else(|| "no requirement".to_owned(), |q| q.row.id.to_string()),
                level: g
                    .requirement
                    .map_or_else(String::new, |q| q.row.level.as_str().to_uppercase()),
                summary: g.requirement.map_or_else(
                    || "checks that cover no requirement of this suite".to_owned(),
                    |q| q.row.summary.clone(),
                ),
                also: g.also.join(", "),
                rows: g.folds.iter().map(|f| row(r, f, MESSAGE_CHARS)).collect(),
            })
            .collect(),
        undecided: t
            .undecided
            .iter()
            .map(|f| row(r, f, MESSAGE_CHARS))
            .collect(),
        waivers: waivers(r, &t),
        warning_results: plural(
            t.warnings.iter().map(|f| f.results.len()).sum(),
            "failure",
            "failures",
        ),
        warnings: t
            .warnings
            .iter()
            .map(|f| row(r, f, WARNING_CHARS))
            .collect(),
        not_certifiable: if r.certification.certifiable {
            Vec::new()
        } else {
            r.certification.reasons.clone()
        },
    }
}
