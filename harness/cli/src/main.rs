//! `nfvi-verify`: parses arguments, loads the model and the target, builds the plan, runs
//! it, writes the reports and maps the verdict to an exit code. The logic lives in the
//! library crates.

mod agent;
mod certify;
mod clean;
mod cli;
mod commands;
mod console;
mod error;
mod images;
mod journal;
mod resume;
mod summary;
mod tools;
mod trusted;

use std::io::Write as _;
use std::process::ExitCode;

/// Renders an error and its causes once: `outer: cause: root cause`.
pub use nfvi_harness::error_with_causes as chain;

fn main() -> ExitCode {
    // First: every panic from here on is recorded with its location, logged, and reported
    // by whoever catches it; none ends the process with the default message and exit 101.
    nfvi_harness::panics::install();
    match nfvi_harness::panics::catch(dispatch) {
        Ok(code) => code,
        Err(panic) => fail(&error::CliError::Panicked { panic, saved: None }),
    }
}

fn dispatch() -> ExitCode {
    let areas = nfvi_verify::areas();
    // Started as one of the areas' helper programs (a symlink such as `nfvspy`)?
    let argv0 = std::env::args_os().next().unwrap_or_default();
    let name = std::path::Path::new(&argv0)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if let Some(code) = areas.iter().find_map(|a| a.helper_main(&name)) {
        return ExitCode::from(code as u8);
    }
    let cli = cli::parse(&areas);
    nfvi_harness::panics::inject("command");
    let result = match cli.command {
        cli::Command::List(args) => commands::list(&args),
        cli::Command::Requirements(args) => commands::requirements(&args),
        cli::Command::Images(args) => images::images(&args),
        cli::Command::Run(args) => commands::run(&args),
        cli::Command::Report(args) => commands::report(&args),
        cli::Command::Diff(args) => commands::diff(&args),
        cli::Command::Target(args) => commands::target(&args),
        cli::Command::Probe(cmd) => tools::probe(&cmd),
        cli::Command::Lab(cmd) => tools::lab(&cmd),
        cli::Command::Node(args) => agent::node(&args),
        cli::Command::Clean(args) => clean::clean(&args),
        cli::Command::Bundle(args) => certify::bundle(&args),
        cli::Command::Verify(args) => certify::verify(&args),
    };
    match result {
        Ok(code) => ExitCode::from(code as u8),
        Err(e) => fail(&e),
    }
}

/// Prints the error and its causes once, and exits with its code. (Not `eprintln!`, which
/// panics when stderr is gone.)
fn fail(e: &error::CliError) -> ExitCode {
    let _ = writeln!(std::io::stderr(), "error: {}", chain(e));
    ExitCode::from(e.exit_code() as u8)
}
