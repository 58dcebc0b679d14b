//! `nfvi-verify`: parses arguments, loads the model and the target, builds the plan, runs
//! it, writes the reports and maps the verdict to an exit code. The logic lives in the
//! library crates.

mod cli;
mod commands;
mod console;

use std::process::ExitCode;

use clap::Parser;

/// An error at the edge: what to print and which exit code to use.
#[derive(Debug)]
pub struct Failure {
    pub code: i32,
    pub message: String,
}

impl Failure {
    /// Bad input (exit 2), with the error's whole source chain on one line.
    pub fn bad_input(e: &dyn std::error::Error) -> Self {
        Self {
            code: nfvi_harness::exit_code::BAD_INPUT,
            message: chain(e),
        }
    }

    pub fn bad_input_msg(message: impl Into<String>) -> Self {
        Self {
            code: nfvi_harness::exit_code::BAD_INPUT,
            message: message.into(),
        }
    }
}

/// Renders an error and its causes once: `outer: cause: root cause`.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        s.push_str(": ");
        s.push_str(&cause.to_string());
        source = cause.source();
    }
    s
}

fn main() -> ExitCode {
    // Started as the CNI area's recording plugin (a symlink named `nfvspy`)?
    if let Some(code) = nfvi_suite_cni::spy::main_if_spy() {
        return ExitCode::from(code as u8);
    }
    let cli = cli::Cli::parse();
    let result = match cli.command {
        cli::Command::List(args) => commands::list(&args),
        cli::Command::Requirements(args) => commands::requirements(&args),
        cli::Command::Run(args) => commands::run(&args),
        cli::Command::Report(args) => commands::report(&args),
        cli::Command::Diff(args) => commands::diff(&args),
        cli::Command::Target(args) => commands::target(&args),
        cli::Command::Probe(cmd) => commands::probe(&cmd),
        cli::Command::Lab(cmd) => commands::lab(&cmd),
    };
    match result {
        Ok(code) => ExitCode::from(code as u8),
        Err(f) => {
            eprintln!("error: {}", f.message);
            ExitCode::from(f.code as u8)
        }
    }
}
