//! `report.html`: one self-contained file (inline CSS and SVG, no scripts, no fetches) that
//! a reviewer can open offline. askama escapes every value from the NFVI; the only raw
//! insertion is the badge SVG, which [`crate::badge`] escapes itself.
//!
//! The first screen answers "why not conformant" ([`first`]): the verdict, the deciding
//! failures grouped by requirement with identical failures folded, the waivers and the
//! warnings. Everything else follows: the fleet, the totals, the requirement matrix, each
//! area's checks (a comparison with its confidence interval and figure shown open,
//! [`compare`]) and the inventory. A waived failure has its own class, never the pass one.
//!
//! A run over a fleet adds the nodes (and why one could not be verified), a node × check
//! matrix and the nodes' inventories ([`fleet`]); a node-level check appears once per node,
//! its anchor and its name carrying the node. A run without a fleet renders exactly as it
//! did before fleets existed.

mod charts;
pub(crate) mod compare;
mod first;
mod fleet;

use askama::Template;
use nfvi_harness::results::{CheckResult, RunResults, Verdict};
use nfvi_harness::{Status, truncate_chars};
use nfvi_reference_model::Area;

use crate::ReportError;
use crate::badge::badge_svg;
use crate::triage::{not_certifiable, verdict_words};

const MAX_COMMAND_OUTPUT: usize = 16 * 1024;

/// An HTML id for a check or requirement ID (`#` and `@` are not welcome in fragments).
fn anchor(prefix: &str, id: &str) -> String {
    let body: String = id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{prefix}-{body}")
}

/// The HTML id of a check's details: a node-level check has one per node.
fn check_anchor(c: &CheckResult) -> String {
    match &c.node {
        None => anchor("check", &c.id),
        Some(node) => anchor("check", &format!("{}--{node}", c.id)),
    }
}

/// The order in which a group of results (a check across nodes) takes the class of its
/// worst member.
fn class_rank(class: &str) -> u8 {
    match class {
        "fail" => 5,
        "error" => 4,
        "warn" => 3,
        "waived" => 2,
        "pass" => 1,
        _ => 0,
    }
}

fn secs(s: f64) -> String {
    if s < 1.0 {
        format!("{:.0} ms", s * 1000.0)
    } else {
        format!("{s:.1} s")
    }
}

struct Link {
    anchor: String,
    text: String,
    class: &'static str,
}

struct ReqView<'a> {
    id: &'a str,
    anchor: String,
    level: &'static str,
    profile: &'static str,
    role: &'static str,
    status: &'static str,
    summary: &'a str,
    source: &'a str,
    note: Option<&'a str>,
    checks: Vec<Link>,
    coverage: &'static str,
    upstream: &'a [String],
    untestable: Option<&'a str>,
}

struct CommandView {
    command: String,
    exit: String,
    stdout: String,
    stderr: String,
}

struct CheckView<'a> {
    c: &'a CheckResult,
    /// Inline SVG charts for latency distributions (built here; every label is escaped).
    charts: Vec<String>,
    anchor: String,
    class: &'static str,
    label: &'static str,
    reqs: Vec<Link>,
    duration: String,
    metrics: Vec<(String, String)>,
    commands: Vec<CommandView>,
    /// The waiver that excused this failure: `W-17: reason`, its owner, expiry and ticket.
    waiver: Option<WaiverView>,
    provenance: Vec<ProvenanceView>,
    /// Its comparisons are shown open in the area's section, with its charts.
    compared: bool,
}

struct WaiverView {
    id: String,
    reason: String,
    owner: String,
    expires: String,
    ticket_url: Option<String>,
    ticket_text: Option<String>,
}

/// Where a piece of external evidence came from.
struct ProvenanceView {
    tool: String,
    file: String,
    sha256: String,
    members: String,
    run_at: String,
    identity: String,
    verified: bool,
}

/// A check's comparisons and charts, shown in its area's section without expanding.
struct ComparedView {
    anchor: String,
    id: String,
    finding: Option<String>,
    comparisons: Vec<compare::Comparison>,
    charts: Vec<String>,
}

struct AreaView<'a> {
    name: &'static str,
    counts: String,
    checks: Vec<CheckView<'a>>,
    compared: Vec<ComparedView>,
    subjects: Vec<SubjectView>,
    stages: Vec<SubjectView>,
}

/// Per-group counts (subject, stage) of an area's checks, groups sorted by name.
fn summarize<'a>(
    checks: &[CheckView<'a>],
    key: impl Fn(&'a CheckResult) -> Option<&'a str>,
) -> Vec<SubjectView> {
    let mut names: Vec<&str> = checks.iter().filter_map(|v| key(v.c)).collect();
    names.sort_unstable();
    names.dedup();
    names
        .into_iter()
        .map(|name| {
            let of: Vec<&CheckView<'_>> =
                checks.iter().filter(|v| key(v.c) == Some(name)).collect();
            let count = |s: &[Status]| of.iter().filter(|v| s.contains(&v.c.outcome)).count();
            SubjectView {
                name: name.to_owned(),
                passed: count(&[Status::Passed]),
                failed: count(&[Status::Failed]),
                errors: count(&[Status::Error, Status::TimedOut]),
                skipped: count(&[Status::Skipped]),
                problems: of
                    .iter()
                    .filter(|v| {
                        matches!(
                            v.c.outcome,
                            Status::Failed | Status::Error | Status::TimedOut
                        )
                    })
                    .map(|v| {
                        let last = v.c.id.rsplit('.').next().unwrap_or(&v.c.id);
                        Link {
                            anchor: v.anchor.clone(),
                            text: match &v.c.node {
                                None => last.to_owned(),
                                Some(node) => format!("{last} on {node}"),
                            },
                            class: v.class,
                        }
                    })
                    .collect(),
            }
        })
        .collect()
}

/// Per-subject summary (for example per CNI plugin): counts and links to what did not pass.
struct SubjectView {
    name: String,
    passed: usize,
    failed: usize,
    errors: usize,
    skipped: usize,
    problems: Vec<Link>,
}

#[derive(Template)]
#[template(path = "report.html")]
struct Page<'a> {
    r: &'a RunResults,
    verdict_text: String,
    verdict_class: &'static str,
    /// The first reason the run is not certifiable, for the banner.
    not_certifiable: Option<&'a str>,
    first: first::FirstScreen,
    badge: String,
    started: String,
    duration: String,
    reqs: Vec<ReqView<'a>>,
    areas: Vec<AreaView<'a>>,
    memory_gib: String,
    /// The fleet's sections, for a run over a fleet.
    fleet: Option<fleet::FleetView<'a>>,
}

fn outcome_class(c: &CheckResult, strict: bool) -> (&'static str, &'static str) {
    match c.outcome {
        Status::Passed => ("pass", "passed"),
        Status::Failed if c.waiver.is_some() => ("waived", "waived"),
        Status::Failed if c.is_warning(strict) => ("warn", "failed (warning)"),
        Status::Failed => ("fail", "failed"),
        Status::Error => ("error", "error"),
        Status::TimedOut => ("error", "timed out"),
        Status::Skipped => ("skip", "skipped"),
    }
}

/// Renders `report.html`.
pub fn render_html(r: &RunResults) -> Result<String, ReportError> {
    let verdict_text = verdict_words(r);
    let verdict_class = match r.verdict {
        Verdict::Conformant => "pass",
        Verdict::NonConformant => "fail",
        Verdict::Incomplete => "error",
    };
    let link_to_check = |id: &str| {
        let c = r.checks.iter().find(|c| c.id == id);
        match c {
            // A node-level check: its row in the matrix, as bad as its worst node.
            Some(first) if first.node.is_some() => Link {
                anchor: fleet::matrix_anchor(id),
                text: id.to_owned(),
                class: r
                    .checks
                    .iter()
                    .filter(|c| c.id == id)
                    .map(|c| outcome_class(c, r.strict).0)
                    .max_by_key(|class| class_rank(class))
                    .unwrap_or("skip"),
            },
            _ => Link {
                anchor: anchor("check", id),
                text: id.to_owned(),
                class: c.map_or("skip", |c| outcome_class(c, r.strict).0),
            },
        }
    };
    let reqs = r
        .requirements
        .iter()
        .map(|q| ReqView {
            id: q.row.id.as_str(),
            anchor: anchor("req", q.row.id.as_str()),
            level: q.row.level.as_str(),
            profile: q.row.profile.as_str(),
            role: match (q.row.mandatory, q.row.applies) {
                (true, true) => "mandatory",
                (true, false) => "mandatory, other profile",
                (false, _) => "optional",
            },
            status: q.status.as_str(),
            summary: &q.row.summary,
            source: &q.row.source,
            note: q.row.note.as_deref(),
            checks: q.row.checks.iter().map(|id| link_to_check(id)).collect(),
            coverage: q.row.coverage(),
            upstream: &q.row.upstream,
            untestable: q.row.untestable.as_deref(),
        })
        .collect();
    let mut present: Vec<Area> = r.checks.iter().map(|c| c.area).collect();
    present.sort();
    present.dedup();
    let areas = present
        .iter()
        .filter_map(|area| {
            let checks: Vec<CheckView<'_>> = r
                .checks
                .iter()
                .filter(|c| c.area == *area)
                .map(|c| check_view(r, c))
                .collect();
            if checks.is_empty() {
                return None;
            }
            let n = |s: Status| checks.iter().filter(|v| v.c.outcome == s).count();
            let subjects = summarize(&checks, |c| c.subject.as_deref());
            // The deployment workflow's stages (Kolla-Ansible: prechecks and pull, check,
            // post-deploy), as the areas record them.
            let stages = summarize(&checks, |c| c.evidence.stage.as_deref());
            let compared = checks
                .iter()
                .filter(|v| v.compared)
                .map(|v| ComparedView {
                    anchor: v.anchor.clone(),
                    id: v.c.id.clone(),
                    finding: v.c.evidence.properties.get("finding").cloned(),
                    comparisons: compare::comparisons(v.c),
                    charts: v.charts.clone(),
                })
                .collect();
            let waived = checks.iter().filter(|v| v.c.waiver.is_some()).count();
            Some(AreaView {
                subjects,
                stages,
                compared,
                name: area.as_str(),
                counts: format!(
                    "{} passed, {} failed{}, {} error, {} skipped",
                    n(Status::Passed),
                    n(Status::Failed) - waived,
                    if waived > 0 {
                        format!(", {waived} waived")
                    } else {
                        String::new()
                    },
                    n(Status::Error) + n(Status::TimedOut),
                    n(Status::Skipped)
                ),
                checks,
            })
        })
        .collect();
    let page = Page {
        r,
        verdict_text,
        verdict_class,
        not_certifiable: not_certifiable(r),
        first: first::view(r),
        badge: badge_svg(r),
        started: r.started_at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
        duration: secs(r.duration_secs),
        reqs,
        areas,
        memory_gib: format!(
            "{:.1} GiB",
            r.inventory.memory_bytes as f64 / (1u64 << 30) as f64
        ),
        fleet: fleet::view(r),
    };
    page.render().map_err(|e| ReportError::Render {
        what: "report.html",
        message: e.to_string(),
    })
}

fn is_url(s: &str) -> bool {
    s.starts_with("https://") || s.starts_with("http://")
}

/// One check's details.
fn check_view<'a>(r: &RunResults, c: &'a CheckResult) -> CheckView<'a> {
    let (class, label) = outcome_class(c, r.strict);
    CheckView {
        charts: charts::latency_charts(c),
        compared: !compare::comparisons(c).is_empty(),
        c,
        anchor: check_anchor(c),
        class,
        label,
        reqs: c
            .requirements
            .iter()
            .map(|id| Link {
                anchor: anchor("req", id.as_str()),
                text: id.to_string(),
                class: "",
            })
            .collect(),
        duration: secs(c.duration_secs),
        metrics: c
            .evidence
            .metrics
            .iter()
            .map(|(k, m)| (k.clone(), format!("{} {}", m.value, m.unit)))
            .collect(),
        commands: c
            .evidence
            .commands
            .iter()
            .map(|cmd| CommandView {
                command: cmd.command.clone(),
                exit: cmd
                    .exit_code
                    .map_or("killed or not started".to_owned(), |e| e.to_string()),
                stdout: truncate_chars(&cmd.stdout, MAX_COMMAND_OUTPUT),
                stderr: truncate_chars(&cmd.stderr, MAX_COMMAND_OUTPUT),
            })
            .collect(),
        waiver: c.waiver.as_ref().map(|w| WaiverView {
            id: w.id.clone(),
            reason: w.reason.clone(),
            owner: w.owner.clone(),
            expires: w.expires.to_string(),
            ticket_url: w.ticket.clone().filter(|t| is_url(t)),
            ticket_text: w.ticket.clone().filter(|t| !is_url(t)),
        }),
        provenance: c
            .evidence
            .provenance
            .iter()
            .map(|p| ProvenanceView {
                tool: match &p.tool_version {
                    Some(v) => format!("{} {v}", p.tool),
                    None => format!("{} (version not stated)", p.tool),
                },
                file: p.file.clone(),
                sha256: p.sha256.clone(),
                members: p.members.join(", "),
                run_at: match (&p.run_at, &p.run_at_source) {
                    (Some(t), Some(src)) if src == "mtime" => format!(
                        "{} (the file's modification time: the file states none)",
                        t.format("%Y-%m-%d %H:%M:%S UTC")
                    ),
                    (Some(t), _) => t.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
                    (None, _) => "unknown".to_owned(),
                },
                identity: p
                    .identity
                    .clone()
                    .unwrap_or_else(|| "not stated".to_owned()),
                verified: p.identity_verified,
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::anchor;

    #[test]
    fn anchors_are_fragment_safe() {
        assert_eq!(anchor("req", "ra2.k8s.012#2"), "req-ra2.k8s.012_2");
        assert_eq!(anchor("req", "int.api.01@ra1"), "req-int.api.01_ra1");
    }
}
