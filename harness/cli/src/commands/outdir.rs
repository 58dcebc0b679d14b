//! The run's output directory and the files `run` keeps in it: the run's ID, the directory
//! made and proven writable before anything runs, the log file, the inputs as used
//! (target.toml, waivers.toml), the command line that reproduces the run, and the place
//! results.json goes when the directory refuses it.

use std::fmt::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use nfvi_harness::Target;
use nfvi_harness::results::RunResults;

use crate::cli::RunArgs;
use crate::error::CliError;

pub(super) fn run_id() -> String {
    let now = chrono::Utc::now();
    let rand = uuid::Uuid::new_v4().simple().to_string();
    format!("{}-{}", now.format("%Y%m%dT%H%M%SZ"), &rand[..6])
}

/// Creates the output directory and proves it is writable before anything runs, so a run is
/// never lost to an output problem found at the end.
pub(super) fn prepare_out_dir(dir: &Path) -> Result<(), CliError> {
    if dir.join("results.json").exists() {
        return Err(CliError::bad_input(format!(
            "output directory `{}` already holds a results.json; choose another --out or move it away (nothing was run)",
            dir.display()
        )));
    }
    // Before anything is created (nothing goes under another user's directory) and after.
    crate::trusted::check_dir(dir).map_err(CliError::bad_input)?;
    std::fs::create_dir_all(dir).map_err(|e| {
        CliError::bad_input(format!(
            "cannot create output directory `{}`: {e}",
            dir.display()
        ))
    })?;
    crate::trusted::check_dir(dir).map_err(CliError::bad_input)?;
    // A random name, created exclusively and removed on drop: the probe never opens a file
    // or link that was there before.
    tempfile::Builder::new()
        .prefix(".nfvi-verify-write-test-")
        .tempfile_in(dir)
        .map_err(|e| {
            CliError::bad_input(format!(
                "output directory `{}` is not writable: {e}",
                dir.display()
            ))
        })?;
    Ok(())
}

pub(super) fn init_logging(dir: &Path, append: bool) -> Option<PathBuf> {
    let path = dir.join("nfvi-verify.log");
    // O_NOFOLLOW: a symbolic link planted at the log's name is refused, never written through.
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .append(append)
        .truncate(!append)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(&path)
        .ok()?;
    tracing_subscriber::fmt()
        .with_writer(std::sync::Mutex::new(file))
        .with_ansi(false)
        .with_max_level(tracing::Level::DEBUG)
        .try_init()
        .ok()?;
    Some(path)
}

pub(super) fn reproduce(args: &RunArgs, suite: &str) -> String {
    let mut cmd = format!("nfvi-verify run --suite {suite}");
    if let Some(t) = &args.selection.target {
        let _ = write!(cmd, " --target {}", t.display());
    }
    for (flag, value) in &args.selection.area_flags {
        let _ = write!(cmd, " {}", flag.typed(value));
    }
    for f in &args.selection.filter {
        let _ = write!(cmd, " --filter '{f}'");
    }
    for s in &args.selection.skip {
        let _ = write!(cmd, " --skip '{s}'");
    }
    if args.strict {
        cmd.push_str(" --strict");
    }
    if let Some(t) = args.timeout {
        let _ = write!(cmd, " --timeout {t}");
    }
    if let Some(w) = &args.waivers {
        let _ = write!(cmd, " --waivers {}", w.display());
    }
    cmd
}

/// Keeps the inputs of the run next to its results, as used: the target (resolved: the file
/// with the flags applied and defaults filled in) as target.toml, and the waivers file as
/// waivers.toml. A certification bundle carries both (after redaction).
pub(super) fn keep_inputs(
    dir: &Path,
    target: &Target,
    waivers: Option<&nfvi_harness::waiver::Waivers>,
) -> Result<(), CliError> {
    let write = |name: &str, text: &str| {
        let path = dir.join(name);
        nfvi_harness::results::write_atomic(&path, text.as_bytes())
            .map_err(|e| CliError::bad_input(format!("cannot write `{}`: {e}", path.display())))
    };
    write("target.toml", &target.resolved_toml())?;
    if let Some(w) = waivers {
        write("waivers.toml", &w.text)?;
    }
    Ok(())
}

/// Saves results.json where the output directory refused it: a new private file in the
/// temporary directory (random name, created exclusively).
pub(super) fn save_elsewhere(results: &RunResults, run_id: &str) -> Option<PathBuf> {
    let file = tempfile::Builder::new()
        .prefix(&format!("nfvi-verify-results-{run_id}-"))
        .suffix(".json")
        .tempfile()
        .ok()?;
    std::io::Write::write_all(&mut file.as_file(), results.to_json().as_bytes()).ok()?;
    file.keep().ok().map(|(_, path)| path)
}
