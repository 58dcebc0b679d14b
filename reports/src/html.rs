//! `report.html`: one self-contained file (inline CSS and SVG, no scripts, no fetches) that
//! a reviewer can open offline. askama escapes every value from the NFVI; the only raw
//! insertion is the badge SVG, which [`crate::badge`] escapes itself.
//!
//! A run over a fleet adds the nodes (and why one could not be verified), a node × check
//! matrix and the nodes' inventories ([`fleet`]); a node-level check appears once per node,
//! its anchor and its name carrying the node. A run without a fleet renders exactly as it
//! did before fleets existed.

mod fleet;

use askama::Template;
use nfvi_harness::results::{CheckResult, RunResults, Verdict};
use nfvi_harness::{Status, truncate_chars};
use nfvi_reference_model::Area;

use crate::ReportError;
use crate::badge::{badge_svg, verdict_label};

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
        "fail" => 4,
        "error" => 3,
        "warn" => 2,
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
}

struct AreaView<'a> {
    name: &'static str,
    counts: String,
    checks: Vec<CheckView<'a>>,
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
    verdict_text: &'static str,
    verdict_class: &'static str,
    badge: String,
    started: String,
    duration: String,
    reqs: Vec<ReqView<'a>>,
    areas: Vec<AreaView<'a>>,
    warnings: Vec<Link>,
    memory_gib: String,
    /// The fleet's sections, for a run over a fleet.
    fleet: Option<fleet::FleetView<'a>>,
}

fn outcome_class(c: &CheckResult, strict: bool) -> (&'static str, &'static str) {
    match c.outcome {
        Status::Passed => ("pass", "passed"),
        Status::Failed if c.is_warning(strict) => ("warn", "failed (warning)"),
        Status::Failed => ("fail", "failed"),
        Status::Error => ("error", "error"),
        Status::TimedOut => ("error", "timed out"),
        Status::Skipped => ("skip", "skipped"),
    }
}

const COLOURS: [&str; 6] = [
    "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b",
];

/// CDF and density charts of the check's distributions (101 percentiles in µs each).
fn latency_charts(c: &CheckResult) -> Vec<String> {
    use crate::badge::xml_escape;
    let series: Vec<(&str, &[f64])> = c
        .evidence
        .distributions
        .iter()
        .map(|(name, p)| (name.as_str(), p.values()))
        .collect();
    if series.is_empty() {
        return Vec::new();
    }
    // The x axis ends at the largest p99 so that millisecond preemption spikes do not squash
    // the body of the distributions; the tails are in the percentile table.
    let x_min = series
        .iter()
        .map(|(_, v)| v[0])
        .fold(f64::INFINITY, f64::min)
        .max(0.0);
    let x_max = series
        .iter()
        .map(|(_, v)| v[99])
        .fold(0.0, f64::max)
        .max(x_min + 1.0);
    let (w, h, l, b) = (560.0, 240.0, 48.0, 30.0);
    let sx = |x: f64| l + (x.clamp(x_min, x_max) - x_min) / (x_max - x_min) * (w - l - 10.0);
    let axes = |title: &str, y_label: &str| {
        let mut g = format!(
            r##"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" role="img" aria-label="{t}"><title>{t}</title><rect x="{l}" y="8" width="{pw}" height="{ph}" fill="#fff" stroke="#ccd"/>"##,
            t = xml_escape(title),
            pw = w - l - 10.0,
            ph = h - b - 8.0
        );
        for i in 0..=4 {
            let x = x_min + (x_max - x_min) * f64::from(i) / 4.0;
            g.push_str(&format!(r##"<text x="{:.1}" y="{}" font-size="10" text-anchor="middle" fill="#444">{x:.1}</text>"##, sx(x), h - b + 14.0));
        }
        g.push_str(&format!(r##"<text x="{:.1}" y="{}" font-size="10" text-anchor="middle" fill="#444">RTT (µs)</text><text x="10" y="20" font-size="10" fill="#444">{}</text>"##, l + (w - l) / 2.0, h - 4.0, xml_escape(y_label)));
        g
    };
    let legend = |g: &mut String| {
        for (i, (name, _)) in series.iter().enumerate() {
            let (c, y) = (COLOURS[i % COLOURS.len()], 14.0 + 12.0 * i as f64);
            g.push_str(&format!(
                r##"<rect x="{}" y="{y}" width="10" height="3" fill="{c}"/><text x="{}" y="{}" font-size="10" fill="#222">{}</text>"##,
                w - 110.0,
                w - 96.0,
                y + 4.0,
                xml_escape(name)
            ));
        }
    };
    let mut cdf = axes(
        "Cumulative distribution of RTT per path",
        "fraction of probes",
    );
    let sy = |p: f64| 8.0 + (1.0 - p) * (h - b - 8.0);
    for (i, (_, v)) in series.iter().enumerate() {
        let pts: Vec<String> = v
            .iter()
            .enumerate()
            .filter(|(_, x)| **x <= x_max)
            .map(|(q, x)| format!("{:.1},{:.1}", sx(*x), sy(q as f64 / 100.0)))
            .collect();
        cdf.push_str(&format!(
            r##"<polyline fill="none" stroke="{}" stroke-width="1.6" points="{}"/>"##,
            COLOURS[i % COLOURS.len()],
            pts.join(" ")
        ));
    }
    legend(&mut cdf);
    cdf.push_str("</svg>");
    // Histogram: 40 equal-width bins; the mass of each comes from the CDF, interpolated
    // between the recorded percentiles.
    let cdf_at = |v: &[f64], x: f64| -> f64 {
        match v.iter().position(|q| *q >= x) {
            None => 1.0,
            Some(0) => 0.0,
            Some(k) => {
                let (x0, x1) = (v[k - 1], v[k]);
                let frac = if x1 > x0 { (x - x0) / (x1 - x0) } else { 1.0 };
                ((k - 1) as f64 + frac) / 100.0
            }
        }
    };
    let bins = 40;
    let width = (x_max - x_min) / f64::from(bins);
    let masses: Vec<Vec<f64>> = series
        .iter()
        .map(|(_, v)| {
            (0..bins)
                .map(|k| {
                    let lo = x_min + width * f64::from(k);
                    cdf_at(v, lo + width) - cdf_at(v, lo)
                })
                .collect()
        })
        .collect();
    let peak = masses
        .iter()
        .flatten()
        .copied()
        .fold(0.0, f64::max)
        .max(f64::EPSILON);
    let mut dens = axes(
        "Histogram of RTT per path (40 bins up to the largest p99)",
        "share of probes",
    );
    for (i, m) in masses.iter().enumerate() {
        let mut pts = Vec::new();
        for (k, mass) in m.iter().enumerate() {
            let lo = x_min + width * k as f64;
            let y = 8.0 + (1.0 - mass / peak) * (h - b - 8.0);
            pts.push(format!("{:.1},{y:.1} {:.1},{y:.1}", sx(lo), sx(lo + width)));
        }
        dens.push_str(&format!(
            r##"<polyline fill="none" stroke="{}" stroke-width="1.4" points="{}"/>"##,
            COLOURS[i % COLOURS.len()],
            pts.join(" ")
        ));
    }
    legend(&mut dens);
    dens.push_str("</svg>");
    vec![cdf, dens]
}

/// Renders `report.html`.
pub fn render_html(r: &RunResults) -> Result<String, ReportError> {
    let (verdict_text, _) = verdict_label(r.verdict);
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
                .map(|c| {
                    let (class, label) = outcome_class(c, r.strict);
                    CheckView {
                        charts: latency_charts(c),
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
                    }
                })
                .collect();
            if checks.is_empty() {
                return None;
            }
            let n = |s: Status| checks.iter().filter(|v| v.c.outcome == s).count();
            let subjects = summarize(&checks, |c| c.subject.as_deref());
            // The deployment workflow's stages (Kolla-Ansible: prechecks and pull, check,
            // post-deploy), as the areas record them.
            let stages = summarize(&checks, |c| c.evidence.stage.as_deref());
            Some(AreaView {
                subjects,
                stages,
                name: area.as_str(),
                counts: format!(
                    "{} passed, {} failed, {} error, {} skipped",
                    n(Status::Passed),
                    n(Status::Failed),
                    n(Status::Error) + n(Status::TimedOut),
                    n(Status::Skipped)
                ),
                checks,
            })
        })
        .collect();
    let warnings = r
        .checks
        .iter()
        .filter(|c| c.is_warning(r.strict))
        .map(|c| Link {
            anchor: check_anchor(c),
            text: truncate_chars(
                &match &c.node {
                    None => format!("{}: {}", c.id, c.message),
                    Some(node) => format!("{} on {node}: {}", c.id, c.message),
                },
                240,
            ),
            class: "warn",
        })
        .collect();
    let page = Page {
        r,
        verdict_text,
        verdict_class,
        badge: badge_svg(r),
        started: r.started_at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
        duration: secs(r.duration_secs),
        reqs,
        areas,
        warnings,
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

#[cfg(test)]
mod tests {
    use super::anchor;

    #[test]
    fn anchors_are_fragment_safe() {
        assert_eq!(anchor("req", "ra2.k8s.012#2"), "req-ra2.k8s.012_2");
        assert_eq!(anchor("req", "int.api.01@ra1"), "req-int.api.01_ra1");
    }
}
