//! `report` and `diff`: renders the HTML report, JUnit and badge of a finished run (or of a
//! killed run, from its journal, writing its results.json first), and compares two runs'
//! outcomes and metrics.

use std::fmt::Write as _;
use std::path::Path;

use nfvi_harness::exit_code;
use nfvi_harness::results::RunResults;

use super::{CmdResult, print_json};
use crate::chain;
use crate::cli::{DiffArgs, Format, ReportArgs};
use crate::error::CliError;

pub fn report(args: &ReportArgs) -> CmdResult {
    // A run's directory: its results.json, or the journal of a run killed before it wrote one.
    let from = if args.from.is_dir() {
        let json = args.from.join("results.json");
        let journal = args.from.join(crate::journal::FILE);
        if json.exists() {
            json
        } else if journal.exists() {
            journal
        } else {
            return Err(CliError::bad_input(format!(
                "`{}` holds neither a results.json nor a {} (not the output directory of a run)",
                args.from.display(),
                crate::journal::FILE
            )));
        }
    } else {
        args.from.clone()
    };
    let dir = from
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let results = if crate::journal::is_journal(&from) {
        // A run that never wrote its results: they come back from its journal, and
        // results.json is written next to it (never over one that exists).
        let results = crate::journal::recover(&from)?;
        let json = dir.join("results.json");
        if json.exists() {
            return Err(CliError::bad_input(format!(
                "`{}` already exists: this run wrote its results; use --from {}",
                json.display(),
                json.display()
            )));
        }
        crate::trusted::check_parent(&json).map_err(CliError::bad_input)?;
        nfvi_harness::results::write_atomic(&json, results.to_json().as_bytes())
            .map_err(|e| CliError::bad_input(format!("cannot write `{}`: {e}", json.display())))?;
        eprintln!(
            "recovered {} check results of run {} from its journal: the run was interrupted (killed) before it wrote its results, so they are partial and the verdict is incomplete; `nfvi-verify run --resume {}` finishes it",
            results.checks.len(),
            results.run_id,
            dir.display()
        );
        eprintln!("wrote {}", json.display());
        results
    } else {
        RunResults::load(&from)?
    };
    let html_path = args.html.clone().unwrap_or_else(|| dir.join("report.html"));
    let junit_path = args.junit.clone().unwrap_or_else(|| dir.join("junit.xml"));
    let html = nfvi_reports::render_html(&results).map_err(|e| CliError::Build(chain(&e)))?;
    let junit = nfvi_reports::render_junit(&results).map_err(|e| CliError::Build(chain(&e)))?;
    // The badge goes next to the HTML report.
    let badge_path = html_path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .join("badge.svg");
    let badge = nfvi_reports::badge_svg(&results);
    for path in [&html_path, &junit_path, &badge_path] {
        crate::trusted::check_parent(path).map_err(CliError::bad_input)?;
    }
    for (path, text) in [
        (&html_path, html),
        (&junit_path, junit),
        (&badge_path, badge),
    ] {
        nfvi_harness::results::write_atomic(path, text.as_bytes())
            .map_err(|e| CliError::bad_input(format!("cannot write `{}`: {e}", path.display())))?;
        eprintln!("wrote {}", path.display());
    }
    Ok(exit_code::CONFORMANT)
}

pub fn diff(args: &DiffArgs) -> CmdResult {
    let old = RunResults::load(&args.old)?;
    let new = RunResults::load(&args.new)?;
    let d = nfvi_harness::diff::diff(&old, &new);
    let code = if d.has_regression() {
        exit_code::NON_CONFORMANT
    } else {
        exit_code::CONFORMANT
    };
    if args.format == Format::Json {
        print_json(&d)?;
        return Ok(code);
    }
    let mut out = String::new();
    if let Some((o, n)) = &d.verdict {
        let _ = writeln!(out, "verdict: {o} -> {n}");
    }
    for c in &d.changed {
        let _ = writeln!(
            out,
            "{} {}: {} -> {}",
            if c.regression {
                "REGRESSED"
            } else {
                "changed  "
            },
            c.id,
            c.old.as_str(),
            c.new.as_str()
        );
    }
    for (id, s) in &d.added {
        let _ = writeln!(out, "new       {id}: {}", s.as_str());
    }
    for id in &d.removed {
        let _ = writeln!(out, "vanished  {id}");
    }
    for m in &d.metrics {
        let delta = if m.old != 0.0 {
            format!(" ({:+.1}%)", (m.new - m.old) / m.old.abs() * 100.0)
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "metric    {} {}: {} -> {} {}{delta}",
            m.check, m.metric, m.old, m.new, m.unit
        );
    }
    if out.is_empty() {
        out.push_str("no differences in outcomes or metrics\n");
    }
    print!("{out}");
    Ok(code)
}
