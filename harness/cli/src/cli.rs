//! Command-line interface definition.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
// In the library so that the property targets in fuzz/ reach it.
use nfvi_verify::values::{
    parse_duration, parse_interval, parse_jobs, parse_payload, parse_probes, parse_rounds,
    parse_timeout_secs, parse_warmup,
};

const EXIT_CODES: &str = "\
Exit codes:
  0  conformant (diff: nothing regressed)
  1  non-conformant: a check of a mandatory requirement failed (diff: a regression)
  2  usage error or bad input (unknown suite or check, malformed target or results file,
     output directory that cannot be written)
  3  incomplete: a check errored or timed out, the run was interrupted, or its artifacts could
     not all be written (the verdict is printed; results.json is saved elsewhere if need be)";

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
    /// List every container image the suite may pull (upstream suites, probes, agents), with
    /// the target's registries, to mirror them for an air-gapped NFVI.
    Images(ListArgs),
    /// Run a suite against the NFVI and write results.json, junit.xml and report.html.
    #[command(after_help = EXIT_CODES)]
    Run(RunArgs),
    /// Re-render junit.xml, report.html and badge.svg from a results.json.
    Report(ReportArgs),
    /// Compare two runs; exits 1 when something regressed.
    Diff(DiffArgs),
    /// Print the commented default target file, or validate one.
    Target(TargetArgs),
    /// The latency prober on its own: run `serve` at one endpoint and `ping` at the other.
    #[command(subcommand)]
    Probe(ProbeCommand),
    /// The local lab this machine verifies against: a Docker engine and the probe image.
    #[command(subcommand)]
    Lab(LabCommand),
    /// Remove what killed runs left behind: network namespaces, links, scratch directories,
    /// containers, networks, probe pods and namespaces whose owner process is gone (every
    /// `run` starts by doing the same).
    Clean(CleanArgs),
    /// The node agent of a run over a fleet: `run` starts it on each node (over SSH or as a
    /// DaemonSet pod); it reads the request as one JSON line on standard input and writes
    /// results as JSON lines. Not for direct use.
    Node(NodeArgs),
    /// Pack a finished run (results, reports, log, target, waivers, evidence, reference
    /// model) into one signed tar.gz, secrets redacted, and write FILE.sig (OpenSSH SSHSIG).
    Bundle(BundleArgs),
    /// Check a bundle: its signature against an allowed_signers file, every member's hash,
    /// the verdict recomputed with the bundle's own reference model, and certifiability.
    #[command(after_help = VERIFY_EXIT_CODES)]
    Verify(VerifyArgs),
}

const VERIFY_EXIT_CODES: &str = "\
Exit codes of verify:
  0  certifiable: good signature by an allowed signer, every member as the manifest says,
     the recomputed verdict equals the recorded one, conformant and certifiable
  1  valid, but not conformant or not certifiable (the reasons are printed)
  2  bad input: an unreadable file, not a bundle, a malformed allowed_signers file
  3  tampered or unverifiable: bad signature or no allowed signer for its key, a member
     changed, missing or extra (named), or the recomputed verdict differs";

#[derive(Debug, Args)]
pub struct BundleArgs {
    /// The run's output directory (holding results.json).
    #[arg(value_name = "RUN_DIR")]
    pub run_dir: PathBuf,
    /// The OpenSSH private key to sign with (unencrypted; for a passphrase-protected key or
    /// ssh-agent, sign the bundle with `ssh-keygen -Y sign -n nfvi-verify -f KEY FILE`).
    #[arg(long, value_name = "KEY")]
    pub sign: PathBuf,
    /// The bundle to write (default: ./<run-id>.nfvi-bundle.tar.gz); the signature goes to FILE.sig.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The bundle.
    #[arg(value_name = "BUNDLE")]
    pub bundle: PathBuf,
    /// Who may sign: an ssh-keygen allowed_signers file (`principals [options] keytype key`).
    #[arg(long, value_name = "FILE")]
    pub allowed_signers: PathBuf,
    /// The identity that must have signed (as `ssh-keygen -Y verify -I`); default: any
    /// principal the file allows for the signing key.
    #[arg(long, value_name = "ID")]
    pub identity: Option<String>,
    /// The signature (default: BUNDLE.sig).
    #[arg(long, value_name = "SIG")]
    pub signature: Option<PathBuf>,
    /// Output format; JSON goes to stdout for tools.
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct CleanArgs {
    /// Print what would be removed, and remove nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// The target whose engines and cluster to look at (Docker socket, kubeconfig);
    /// default: this machine's.
    #[arg(long, value_name = "FILE")]
    pub target: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct NodeArgs {
    /// Read the request from this file instead of standard input (the DaemonSet mounts it);
    /// the agent then stops on SIGTERM rather than at the end of its input.
    #[arg(long, value_name = "FILE")]
    pub request: Option<PathBuf>,
    /// After the results, wait for SIGTERM instead of exiting (a DaemonSet restarts pods
    /// that exit; the jump host deletes it when it has read the results).
    #[arg(long)]
    pub linger: bool,
}

#[derive(Debug, Subcommand)]
pub enum LabCommand {
    /// Start a Docker API engine (dockerd, or Podman's service) with bridges and pools in
    /// 198.18.0.0/15, Keystone, the registry and the Kolla-shaped fleet; idempotent.
    Up {
        /// The engine behind /var/run/docker.sock: `docker` (dockerd) or `podman`
        /// (`podman system service`, with its storage and configuration in the lab's state).
        #[arg(long, value_name = "ENGINE", default_value = "docker", value_parser = ["docker", "podman"])]
        engine: String,
        /// Also build N nodes (default 3, at most 32): network namespaces on this machine, each
        /// running OpenSSH on 198.19.10.(10+i), with an inventory in /var/lib/nfvi-verify/lab.
        #[arg(long, value_name = "N", num_args = 0..=1, default_missing_value = "3")]
        nodes: Option<usize>,
    },
    /// Remove probe leftovers and the nodes, stop the daemon the lab started, remove its state.
    Down,
    /// Show whether the daemon answers, who started it, and whether the probe image is there.
    Status,
    /// Run Podman's health checks at each container's interval, as systemd's timers would
    /// (started and stopped by `lab up --engine podman` / `lab down`).
    #[command(hide = true)]
    HealthTicker,
}

#[derive(Debug, Subcommand)]
pub enum ProbeCommand {
    /// Echo UDP probes until interrupted.
    Serve(ServeArgs),
    /// Measure round-trip latency to a `probe serve` responder.
    Ping(PingArgs),
    /// Compare two responders in interleaved (ABBA) blocks and print the per-round medians
    /// (what the in-cluster probe pods run).
    Compare(CompareArgs),
}

#[derive(Debug, Args)]
pub struct CompareArgs {
    /// The first responder (for example the one on the same node).
    pub first: std::net::SocketAddr,
    /// The second responder.
    pub second: std::net::SocketAddr,
    /// Rounds; each measures one block to each responder, in ABBA order (1 to 100000).
    #[arg(long, default_value_t = 6, value_parser = parse_rounds)]
    pub rounds: usize,
    /// Probes per block (1 to 10^9).
    #[arg(long, default_value_t = 2000, value_parser = parse_probes)]
    pub block: u64,
    /// How to wait for replies: blocking, spin or paced.
    #[arg(long, default_value = "blocking")]
    pub mode: String,
    /// Warm-up probes per block, discarded (0 to 10^9).
    #[arg(long, default_value_t = 200, value_parser = parse_warmup)]
    pub warmup: u64,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address and port to listen on, for example 198.18.40.2:17007.
    #[arg(long, value_name = "ADDR:PORT")]
    pub bind: std::net::SocketAddr,
    /// Busy-spin instead of blocking (pair with `ping --mode spin`; UDP only).
    #[arg(long)]
    pub spin: bool,
    /// udp or tcp (request/response over one connection).
    #[arg(long, default_value = "udp")]
    pub proto: String,
}

#[derive(Debug, Args)]
pub struct PingArgs {
    /// The responder's address and port.
    pub peer: std::net::SocketAddr,
    /// Measured probes (1 to 10^9).
    #[arg(long, default_value_t = 10_000, conflicts_with = "duration", value_parser = parse_probes)]
    pub count: u64,
    /// Probe for this long instead of a count, for example 5s or 500ms.
    #[arg(long, value_parser = parse_duration)]
    pub duration: Option<std::time::Duration>,
    /// How to wait for replies: blocking, spin (UDP) or paced.
    #[arg(long, default_value = "blocking")]
    pub mode: String,
    /// udp or tcp (request/response over one connection).
    #[arg(long, default_value = "udp")]
    pub proto: String,
    /// Take receive times from kernel software timestamps (SO_TIMESTAMPNS; UDP, blocking or
    /// paced), which removes the client's wake-up from the RTT.
    #[arg(long)]
    pub kernel_timestamps: bool,
    /// Interval between probes in paced mode, for example 10ms (at most 60s).
    #[arg(long, default_value = "10ms", value_parser = parse_interval)]
    pub interval: std::time::Duration,
    /// Warm-up probes, discarded (0 to 10^9).
    #[arg(long, default_value_t = 1000, value_parser = parse_warmup)]
    pub warmup: u64,
    /// Datagram size in bytes (8 to 65507).
    #[arg(long, default_value_t = 16, value_parser = parse_payload)]
    pub size: usize,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

#[derive(Clone, Debug, Args)]
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
    /// How much of the upstream suites (Tempest, Kubernetes e2e, kube-bench) to drive:
    /// none, smoke (minutes) or full (what RC1/RC2 require) [default: the target's, full]
    #[arg(long, value_name = "LEVEL", value_parser = ["none", "smoke", "full"])]
    pub upstream: Option<String>,
    /// The areas' flags given (`--cni-path`, `--kubeconfig`, ...), as they were typed; the
    /// areas declare them ([`nfvi_harness::Flag`]) and [`with_area_flags`] adds them.
    #[arg(skip)]
    pub area_flags: Vec<(&'static nfvi_harness::Flag, String)>,
}

/// The subcommands that take a [`Selection`].
const SELECTING: &[&str] = &["run", "list", "requirements", "images"];

/// The command line with every area's flags added to the subcommands that select checks.
pub fn with_area_flags(cmd: clap::Command, areas: &nfvi_harness::Areas) -> clap::Command {
    let mut cmd = cmd;
    for sub in SELECTING {
        cmd = cmd.mut_subcommand(sub, |mut c| {
            for flag in areas.flags() {
                // A list may be given in pieces (`--cni-plugins a --cni-plugins b`).
                let action = match flag.kind {
                    nfvi_harness::FlagKind::List => clap::ArgAction::Append,
                    _ => clap::ArgAction::Set,
                };
                let mut arg = clap::Arg::new(flag.long)
                    .long(flag.long)
                    .value_name(flag.value_name)
                    .help(flag.help)
                    .action(action)
                    .help_heading("Area options");
                if flag.kind == nfvi_harness::FlagKind::Switch {
                    arg = arg.num_args(0).default_missing_value("true");
                }
                c = c.arg(arg);
            }
            c
        });
    }
    cmd
}

/// Parses the command line, the areas' flags included.
pub fn parse(areas: &nfvi_harness::Areas) -> Cli {
    use clap::{CommandFactory, FromArgMatches};
    let matches = with_area_flags(Cli::command(), areas).get_matches();
    let mut cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let given = |sub: &clap::ArgMatches| {
        areas
            .flags()
            .filter_map(|f| {
                let values: Vec<&str> = sub
                    .get_many::<String>(f.long)?
                    .map(String::as_str)
                    .collect();
                Some((f, values.join(",")))
            })
            .collect::<Vec<_>>()
    };
    match (&mut cli.command, matches.subcommand()) {
        (Command::Run(args), Some((_, sub))) => args.selection.area_flags = given(sub),
        (Command::List(args), Some((_, sub))) => args.selection.area_flags = given(sub),
        (Command::Requirements(args), Some((_, sub))) => args.selection.area_flags = given(sub),
        (Command::Images(args), Some((_, sub))) => args.selection.area_flags = given(sub),
        _ => {}
    }
    cli
}

impl Selection {
    /// The areas' flags as overrides of the target's tables.
    pub fn overrides(&self) -> Vec<nfvi_harness::target::Override> {
        self.area_flags
            .iter()
            .map(|(f, v)| nfvi_harness::target::Override {
                area: f.table,
                key: f.key,
                value: f.kind.value(v),
            })
            .collect()
    }
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Suite: rc2, rc1, host, cni, datapath, docker, kolla, k8s, evidence, cni-fuzz or all (list: default all).
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
    /// Suite to run: rc2, rc1, host, cni, datapath, docker, kolla, k8s, evidence, cni-fuzz or all.
    #[arg(long, value_name = "SUITE")]
    pub suite: Option<String>,
    /// Output directory; default ./nfvi-results/<run-id>/ with ./nfvi-results/latest pointing at it.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Checks to run at the same time.
    #[arg(long, default_value_t = 4, value_name = "N", value_parser = parse_jobs)]
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
    #[arg(long, value_name = "RESULTS_JSON", conflicts_with = "resume")]
    pub rerun_failed: Option<PathBuf>,
    /// Finish a run that was killed before it wrote its results: run the checks its journal
    /// (DIR/results.journal) has no result for, with the same suite, filters, target and
    /// version (anything else is refused), and write the results of the whole run in DIR.
    #[arg(long, value_name = "DIR", conflicts_with = "out")]
    pub resume: Option<PathBuf>,
    /// Do not remove what killed runs left before starting (also NFVI_VERIFY_NO_CLEAN=1).
    #[arg(long)]
    pub no_clean: bool,
    /// One deadline in seconds for every check, instead of each check's own.
    #[arg(long, value_name = "SECONDS", value_parser = parse_timeout_secs)]
    pub timeout: Option<u64>,
    /// Failures to accept for now, as a TOML file of [[waiver]] tables (checks, reason,
    /// owner, expires, ...): they are shown as waived, never as passed, and no longer decide
    /// the verdict. Copied into the output directory as waivers.toml.
    #[arg(long, value_name = "FILE")]
    pub waivers: Option<PathBuf>,
    /// Plain progress lines even on a terminal (automatic when CI is set or stderr is not a terminal).
    #[arg(long)]
    pub no_progress: bool,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The results.json to render, or a run's directory or journal: a run killed before it
    /// wrote results.json is recovered from its journal (marked incomplete).
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
