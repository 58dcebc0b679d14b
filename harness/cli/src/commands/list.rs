//! `list` and `requirements`: the plan of a suite as the checks it runs or skips, and the
//! catalogue of requirements with the checks of this build that cover each, as text or JSON.

use std::fmt::Write as _;

use nfvi_harness::exit_code;
use nfvi_harness::plan::{Decision, PlanOptions};

use super::{CmdResult, build_plan, prepare, print_json};
use crate::cli::{Format, ListArgs};

pub fn list(args: &ListArgs) -> CmdResult {
    let p = prepare(&args.selection)?;
    let options = PlanOptions {
        suite: args.suite.clone().unwrap_or_else(|| "all".to_owned()),
        filters: args.selection.filter.clone(),
        skips: args.selection.skip.clone(),
        ..Default::default()
    };
    let plan = build_plan(&p, &options)?;
    if args.format == Format::Json {
        return print_json(&plan.view());
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "suite {} ({}): {} checks, {} will run, {} skipped; target {} ({} profile)",
        plan.suite.name,
        plan.suite.version,
        plan.items.len(),
        plan.runnable(),
        plan.items.len() - plan.runnable(),
        plan.target,
        plan.profile.as_str()
    );
    let width = plan
        .items
        .iter()
        .map(|i| i.check.meta().id.len())
        .max()
        .unwrap_or(10);
    for item in &plan.items {
        let m = item.check.meta();
        let reqs: Vec<&str> = item.covers.iter().map(|r| r.as_str()).collect();
        let reqs = if reqs.is_empty() {
            "(informational)".to_owned()
        } else {
            reqs.join(", ")
        };
        let severity = if m.severity == item.effective {
            m.severity.to_string()
        } else {
            format!("{}->{}", m.severity, item.effective)
        };
        match &item.decision {
            Decision::Run => {
                let _ = writeln!(out, "  run   {:width$}  {:<11} {}", m.id, severity, reqs);
            }
            Decision::Skip(r) => {
                let _ = writeln!(
                    out,
                    "  skip  {:width$}  {:<11} {}\n        {:width$}  skipped: {}",
                    m.id, severity, reqs, "", r.message
                );
            }
        }
    }
    let areas_without: Vec<&str> = p
        .model
        .suite(&plan.suite.name)
        .map(|s| {
            s.areas
                .iter()
                .filter(|a| !plan.items.iter().any(|i| i.check.meta().area == **a))
                .map(|a| a.as_str())
                .collect()
        })
        .unwrap_or_default();
    if !areas_without.is_empty() && args.selection.filter.is_empty() {
        let _ = writeln!(
            out,
            "areas of this suite with no checks in this build: {}",
            areas_without.join(", ")
        );
    }
    print!("{out}");
    Ok(exit_code::CONFORMANT)
}

pub fn requirements(args: &ListArgs) -> CmdResult {
    let p = prepare(&args.selection)?;
    let rows = match &args.suite {
        Some(suite) => {
            let options = PlanOptions {
                suite: suite.clone(),
                filters: args.selection.filter.clone(),
                skips: args.selection.skip.clone(),
                ..Default::default()
            };
            build_plan(&p, &options)?.requirements
        }
        None => {
            // The whole catalogue, with every check of the build that covers each entry.
            let all = build_plan(
                &p,
                &PlanOptions {
                    suite: "all".into(),
                    ..Default::default()
                },
            )?;
            p.model
                .requirements()
                .map(|r| {
                    all.requirements
                        .iter()
                        .find(|row| row.id == r.id)
                        .cloned()
                        .unwrap_or_else(|| {
                            nfvi_harness::results::RequirementRow::new(r, false, true, Vec::new())
                        })
                })
                .collect()
        }
    };
    if args.format == Format::Json {
        return print_json(&rows);
    }
    let mut out = String::new();
    let kind = |k: &str| rows.iter().filter(|r| r.coverage() == k).count();
    let _ = writeln!(
        out,
        "{} requirements{}; covered by checks of this build: {} by the harness's own observation, {} by upstream suites, {} by both; {} not testable by software; {} not covered",
        rows.len(),
        args.suite.as_ref().map_or_else(
            || " in the catalogue (mandatory/optional as in suite `all`)".to_owned(),
            |s| format!(" in suite {s}")
        ),
        kind("own"),
        kind("upstream"),
        kind("own+upstream"),
        kind("not-testable"),
        kind("none"),
    );
    for r in &rows {
        let role = if r.mandatory { "mandatory" } else { "optional" };
        let _ = writeln!(
            out,
            "{:<18} {:<6} {:<17} {:<9} {}\n{:18} {}  [{}]",
            r.id.as_str(),
            r.level.as_str(),
            r.profile.as_str(),
            role,
            match (&r.untestable, r.checks.is_empty()) {
                (Some(why), true) => format!("not testable by software: {why}"),
                (None, true) => "not covered".to_owned(),
                (_, false) => format!("checks: {}", r.checks.join(", ")),
            },
            "",
            r.summary,
            r.source
        );
        for u in &r.upstream {
            let _ = writeln!(out, "{:18} upstream: {u}", "");
        }
    }
    print!("{out}");
    Ok(exit_code::CONFORMANT)
}
