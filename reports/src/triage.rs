//! What decides a run, arranged for a reviewer: the deciding failures grouped by the
//! requirement they fail, then what could not be decided (errors, timeouts), what waivers
//! excused, and the warnings. Identical failures of one assertion are folded into one row:
//! the same CNI catalog assertion across plugins (`cni.bridge.CNI-VER-002`,
//! `cni.macvlan.CNI-VER-002`, … become `cni.CNI-VER-002` on 17 plugins) or the same check
//! across the nodes of a fleet, with their distinct messages.
//!
//! The HTML report's first screen and the terminal summary are both rendered from a
//! [`Triage`], in this order, so they cannot disagree.

use nfvi_harness::Status;
use nfvi_harness::results::{CheckResult, RequirementResult, RunResults, TraceStatus};
use nfvi_harness::waiver::AppliedWaiver;
use nfvi_reference_model::Area;

/// A run's results arranged for a reviewer.
#[derive(Debug)]
pub struct Triage<'a> {
    /// Failures that decide the verdict, grouped by the requirement they fail, in the order
    /// of the requirement matrix (failures of checks that cover no requirement last).
    pub deciding: Vec<RequirementGroup<'a>>,
    /// Errors and timeouts: what the harness could not decide.
    pub undecided: Vec<Fold<'a>>,
    /// Failures a waiver excused, by waiver (in the order the waivers first applied).
    pub waived: Vec<WaivedGroup<'a>>,
    /// Failures that do not decide the verdict by their severity.
    pub warnings: Vec<Fold<'a>>,
}

/// The deciding failures of one requirement.
#[derive(Debug)]
pub struct RequirementGroup<'a> {
    /// The requirement, or `None` for checks that cover no requirement of the run.
    pub requirement: Option<&'a RequirementResult>,
    /// The other requirements the group's checks cover, in order.
    pub also: Vec<&'a str>,
    /// The failures, folded.
    pub folds: Vec<Fold<'a>>,
}

impl RequirementGroup<'_> {
    /// How many results the group holds.
    pub fn results(&self) -> usize {
        self.folds.iter().map(|f| f.results.len()).sum()
    }
}

/// The failures one waiver excused.
#[derive(Debug)]
pub struct WaivedGroup<'a> {
    /// The waiver, as the first result it excused carries it.
    pub waiver: &'a AppliedWaiver,
    /// The results it excused, folded.
    pub folds: Vec<Fold<'a>>,
}

/// Results of one assertion with the same outcome: one check, or the same catalog
/// assertion across subjects, or one check across nodes.
#[derive(Debug)]
pub struct Fold<'a> {
    /// The check ID for a single result; for several, the ID without the subject segment
    /// (`cni.CNI-VER-002`), or the check ID when only nodes differ.
    pub assertion: String,
    /// The results, in plan order.
    pub results: Vec<&'a CheckResult>,
    /// What each result is about, as `bridge`, `worker-1` or `bridge on worker-1`; empty
    /// when the single result names neither a subject nor a node.
    pub on: Vec<String>,
    /// What `on` counts: `plugin`, `node`, `subject` or `result`.
    pub noun: &'static str,
    /// The distinct messages (the subject and node written as `‹plugin›`, `‹node›` when
    /// several results are folded), with how many results said each, most frequent first.
    pub messages: Vec<(String, usize)>,
}

impl Fold<'_> {
    /// `17 plugins: bandwidth, bridge, …`, `on worker-1`, or `None` for a single result
    /// about nothing in particular. At most `max` names are listed, then `…`.
    pub fn where_text(&self, max: usize) -> Option<String> {
        match self.on.len() {
            0 => None,
            1 => Some(format!("on {}", self.on[0])),
            n => {
                let mut names: Vec<&str> = self.on.iter().take(max).map(String::as_str).collect();
                if n > max {
                    names.push("…");
                }
                Some(format!("{n} {}s: {}", self.noun, names.join(", ")))
            }
        }
    }

    /// The most frequent message, and how many other distinct messages there are.
    pub fn message(&self) -> (&str, usize) {
        (
            self.messages.first().map_or("", |(m, _)| m.as_str()),
            self.messages.len().saturating_sub(1),
        )
    }
}

/// Replaces `word` where it stands alone (not inside a longer name such as
/// `macvlan-bridge`) with `with`.
fn replace_word(text: &str, word: &str, with: &str) -> String {
    if word.is_empty() {
        return text.to_owned();
    }
    let part_of_name = |c: char| c.is_alphanumeric() || c == '-' || c == '_';
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find(word) {
        let before = rest[..i].chars().next_back();
        let after = rest[i + word.len()..].chars().next();
        out.push_str(&rest[..i]);
        if before.is_some_and(part_of_name) || after.is_some_and(part_of_name) {
            out.push_str(word);
        } else {
            out.push_str(with);
        }
        rest = &rest[i + word.len()..];
    }
    out.push_str(rest);
    out
}

/// The check ID without its subject segment (`cni.bridge.CNI-VER-002` about `bridge` is
/// `cni.CNI-VER-002`), or the ID itself.
fn assertion_key(c: &CheckResult) -> String {
    if let Some(subject) = &c.subject {
        let parts: Vec<&str> = c.id.split('.').collect();
        if parts.len() > 2 && parts[1..parts.len() - 1].contains(&subject.as_str()) {
            return parts
                .iter()
                .filter(|p| **p != subject.as_str())
                .copied()
                .collect::<Vec<_>>()
                .join(".");
        }
    }
    c.id.clone()
}

/// Whether the check's ID carries its subject (so that the ID alone names it).
fn subject_in_id(c: &CheckResult) -> bool {
    assertion_key(c) != c.id
}

fn subject_noun(area: Area) -> &'static str {
    match area {
        Area::Cni => "plugin",
        _ => "subject",
    }
}

/// Folds results: the same assertion (ID without the subject, title with the subject
/// written generically, outcome class) becomes one [`Fold`], in order of first appearance.
pub fn fold<'a>(results: &[&'a CheckResult]) -> Vec<Fold<'a>> {
    let mut keys: Vec<(String, String)> = Vec::new();
    let mut groups: Vec<Vec<&'a CheckResult>> = Vec::new();
    for c in results {
        let title = match &c.subject {
            Some(s) if subject_in_id(c) => replace_word(&c.title, s, "\u{2039}subject\u{203a}"),
            _ => c.title.clone(),
        };
        let key = (assertion_key(c), title);
        match keys.iter().position(|k| *k == key) {
            Some(i) => groups[i].push(c),
            None => {
                keys.push(key);
                groups.push(vec![c]);
            }
        }
    }
    keys.into_iter()
        .zip(groups)
        .map(|((key, _), results)| make_fold(key, results))
        .collect()
}

fn make_fold<'a>(key: String, results: Vec<&'a CheckResult>) -> Fold<'a> {
    let first = results[0];
    let many = results.len() > 1;
    let subjects_vary = many
        && results
            .iter()
            .any(|c| c.subject != first.subject || c.id != first.id);
    let nodes_vary = many && results.iter().any(|c| c.node != first.node);
    let noun = match (subjects_vary, nodes_vary) {
        (true, false) => subject_noun(first.area),
        (false, true) => "node",
        _ => "result",
    };
    let on: Vec<String> = results
        .iter()
        .filter_map(|c| {
            let subject = c.subject.as_deref().filter(|_| subject_in_id(c));
            match (subject, c.node.as_deref()) {
                // A single result: its ID names its subject already.
                (Some(_), None) if !many => None,
                (Some(s), None) => Some(s.to_owned()),
                (Some(s), Some(n)) if many && subjects_vary => Some(format!("{s} on {n}")),
                (_, Some(n)) => Some(n.to_owned()),
                (None, None) => None,
            }
        })
        .collect();
    let mut messages: Vec<(String, usize)> = Vec::new();
    for c in &results {
        let mut m = c.message.clone();
        if many {
            if let Some(s) = &c.subject
                && subject_in_id(c)
            {
                m = replace_word(&m, s, &format!("\u{2039}{}\u{203a}", subject_noun(c.area)));
            }
            if let Some(n) = &c.node {
                m = replace_word(&m, n, "\u{2039}node\u{203a}");
            }
        }
        match messages.iter_mut().find(|(t, _)| *t == m) {
            Some((_, n)) => *n += 1,
            None => messages.push((m, 1)),
        }
    }
    // Most frequent first; a stable sort keeps the first seen first among equals.
    messages.sort_by_key(|m| std::cmp::Reverse(m.1));
    Fold {
        assertion: if many { key } else { first.id.clone() },
        on,
        noun,
        messages,
        results,
    }
}

/// The requirement a deciding failure is listed under: the first it covers that failed
/// and is mandatory here, else the first that failed, else the first it covers.
fn deciding_requirement<'a>(r: &'a RunResults, c: &CheckResult) -> Option<&'a RequirementResult> {
    let rows: Vec<&RequirementResult> = c
        .requirements
        .iter()
        .filter_map(|id| r.requirements.iter().find(|q| q.row.id == *id))
        .collect();
    rows.iter()
        .find(|q| q.status == TraceStatus::Failed && q.row.mandatory && q.row.applies)
        .or_else(|| rows.iter().find(|q| q.status == TraceStatus::Failed))
        .or_else(|| rows.first())
        .copied()
}

impl<'a> Triage<'a> {
    /// Arranges a run's results.
    pub fn of(r: &'a RunResults) -> Self {
        let position = |q: Option<&RequirementResult>| {
            q.and_then(|q| r.requirements.iter().position(|x| x.row.id == q.row.id))
                .unwrap_or(usize::MAX)
        };
        // Deciding failures by requirement.
        let mut by_req: Vec<(Option<&'a RequirementResult>, Vec<&'a CheckResult>)> = Vec::new();
        for c in r
            .checks
            .iter()
            .filter(|c| c.decides_non_conformance(r.strict))
        {
            let q = deciding_requirement(r, c);
            let key = q.map(|q| &q.row.id);
            match by_req.iter_mut().find(|(g, _)| g.map(|g| &g.row.id) == key) {
                Some((_, list)) => list.push(c),
                None => by_req.push((q, vec![c])),
            }
        }
        by_req.sort_by_key(|(q, _)| position(*q));
        let deciding = by_req
            .into_iter()
            .map(|(q, list)| {
                let mut also: Vec<&'a str> = Vec::new();
                for c in &list {
                    for id in &c.requirements {
                        let id = id.as_str();
                        if Some(id) != q.map(|q| q.row.id.as_str()) && !also.contains(&id) {
                            also.push(id);
                        }
                    }
                }
                RequirementGroup {
                    requirement: q,
                    also,
                    folds: fold(&list),
                }
            })
            .collect();
        let undecided: Vec<&CheckResult> = r
            .checks
            .iter()
            .filter(|c| matches!(c.outcome, Status::Error | Status::TimedOut))
            .collect();
        let warnings: Vec<&CheckResult> =
            r.checks.iter().filter(|c| c.is_warning(r.strict)).collect();
        let mut waived: Vec<(&'a AppliedWaiver, Vec<&'a CheckResult>)> = Vec::new();
        for c in &r.checks {
            let Some(w) = &c.waiver else { continue };
            match waived.iter_mut().find(|(x, _)| x.id == w.id) {
                Some((_, list)) => list.push(c),
                None => waived.push((w, vec![c])),
            }
        }
        Self {
            deciding,
            undecided: fold(&undecided),
            waived: waived
                .into_iter()
                .map(|(waiver, list)| WaivedGroup {
                    waiver,
                    folds: fold(&list),
                })
                .collect(),
            warnings: fold(&warnings),
        }
    }

    /// How many results decide the verdict.
    pub fn deciding_results(&self) -> usize {
        self.deciding.iter().map(RequirementGroup::results).sum()
    }
}

/// One line of text: whitespace runs (newlines included) become one space, and text past
/// `max` characters is cut with `…`.
pub fn one_line(text: &str, max: usize) -> String {
    let joined = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match joined.char_indices().nth(max) {
        None => joined,
        Some((i, _)) => format!("{}…", joined[..i].trim_end()),
    }
}

/// The verdict in words, with the waivers that made it: `conformant with 2 waivers`.
pub fn verdict_words(r: &RunResults) -> String {
    let (text, _) = crate::badge::verdict_label(r.verdict);
    match (r.verdict, r.totals.waived) {
        (nfvi_harness::results::Verdict::Conformant, 0) => text.to_owned(),
        (nfvi_harness::results::Verdict::Conformant, 1) => format!("{text} with 1 waiver"),
        (nfvi_harness::results::Verdict::Conformant, n) => format!("{text} with {n} waivers"),
        _ => text.to_owned(),
    }
}

/// Why the run is not certifiable (its first reason), when it is not.
pub fn not_certifiable(r: &RunResults) -> Option<&str> {
    // Results older than certification (schema 4 and before) carry no reasons: nothing is
    // known, and nothing is claimed.
    (!r.certification.certifiable)
        .then(|| r.certification.reasons.first().map(String::as_str))
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_replaced_only_where_they_stand_alone() {
        let cases = [
            ("got bridge DEL: exit 1", "bridge", "got X DEL: exit 1"),
            (
                "macvlan-bridge and bridge",
                "bridge",
                "macvlan-bridge and X",
            ),
            ("bridge", "bridge", "X"),
            ("bridges", "bridge", "bridges"),
            ("no subject here", "bridge", "no subject here"),
            ("anything", "", "anything"),
            ("(bridge)", "bridge", "(X)"),
        ];
        for (text, word, want) in cases {
            assert_eq!(replace_word(text, word, "X"), want, "{text}");
        }
    }

    #[test]
    fn one_line_joins_and_cuts() {
        assert_eq!(one_line("a\n  b\tc", 10), "a b c");
        assert_eq!(one_line("abcdef", 3), "abc…");
        assert_eq!(one_line("ab  cdef", 3), "ab…");
        assert_eq!(one_line("é".repeat(5).as_str(), 2), "éé…");
    }
}
