//! Command-line interface definition.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

const EXIT_CODES: &str = "\
Exit codes:
  0  conformant (diff: nothing regressed)
  1  non-conformant: a check of a mandatory requirement failed (diff: a regression)
  2  usage error or bad input (unknown suite or check, malformed target or results file,
     output directory that cannot be written)
  3  incomplete: a check errored or timed out, or the run was interrupted";

/// Conformance and verification harness for NFV infrastructure (Anuket RC1/RC2).
#[derive(Debug, Parser)]
#[command(name = "nfvi-verify", version, about, after_help = EXIT_CODES, max_term_width = 100)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show what `run` would execute: checks, requirements, run or skip and why.
    List(ListArgs),
    /// Show the requirement catalogue and which checks cover each requirement.
    Requirements(ListArgs),
    /// Run a suite against the NFVI and write results.json, junit.xml and report.html.
    #[command(after_help = EXIT_CODES)]
    Run(RunArgs),
    /// Re-render junit.xml and report.html from a results.json.
    Report(ReportArgs),
    /// Compare two runs; exits 1 when something regressed.
    Diff(DiffArgs),
    /// Print the commented default target file, or validate one.
    Target(TargetArgs),
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

#[derive(Debug, Args)]
pub struct Selection {
    /// Keep only checks whose ID or a covered requirement ID matches this glob (repeatable).
    #[arg(long, value_name = "PATTERN")]
    pub filter: Vec<String>,
    /// Leave out checks whose ID or a covered requirement ID matches this glob (repeatable).
    #[arg(long, value_name = "PATTERN")]
    pub skip: Vec<String>,
    /// The NFVI under test, as a TOML target file; default: this machine.
    #[arg(long, value_name = "FILE")]
    pub target: Option<PathBuf>,
    /// CNI plugin directories, colon-separated (overrides cni.paths of the target).
    #[arg(long, value_name = "DIRS")]
    pub cni_path: Option<String>,
    /// Only these CNI plugins, comma-separated (overrides cni.plugins of the target).
    #[arg(long, value_name = "PLUGINS", value_delimiter = ',')]
    pub cni_plugins: Option<Vec<String>>,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Suite: rc2, rc1, host, cni, datapath, docker, kolla, k8s or all (list: default all).
    #[arg(long, value_name = "SUITE")]
    pub suite: Option<String>,
    /// Output format; JSON goes to stdout for tools.
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
    #[command(flatten)]
    pub selection: Selection,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Suite to run: rc2, rc1, host, cni, datapath, docker, kolla, k8s or all.
    #[arg(long, value_name = "SUITE")]
    pub suite: Option<String>,
    /// Output directory; default ./nfvi-results/<run-id>/ with ./nfvi-results/latest pointing at it.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Checks to run at the same time.
    #[arg(long, default_value_t = 4, value_name = "N")]
    pub jobs: usize,
    #[command(flatten)]
    pub selection: Selection,
    /// SHOULD failures also make the run non-conformant.
    #[arg(long)]
    pub strict: bool,
    /// Start no new check after the first failure, error or timeout.
    #[arg(long)]
    pub fail_fast: bool,
    /// Run only the checks that failed, errored, timed out or never started in a previous run.
    #[arg(long, value_name = "RESULTS_JSON")]
    pub rerun_failed: Option<PathBuf>,
    /// One deadline in seconds for every check, instead of each check's own.
    #[arg(long, value_name = "SECONDS")]
    pub timeout: Option<u64>,
    /// Plain progress lines even on a terminal (automatic when CI is set or stderr is not a terminal).
    #[arg(long)]
    pub no_progress: bool,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The results.json to render.
    #[arg(long, value_name = "RESULTS_JSON")]
    pub from: PathBuf,
    /// Where to write the HTML report (default: report.html next to the results).
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// Where to write the JUnit XML (default: junit.xml next to the results).
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The earlier results.json.
    pub old: PathBuf,
    /// The later results.json.
    pub new: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
}

#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct TargetArgs {
    /// Print the commented default target file (the embedded local default).
    #[arg(long)]
    pub example: bool,
    /// Validate a target file and print it with defaults filled in.
    #[arg(long, value_name = "FILE")]
    pub check: Option<PathBuf>,
}
