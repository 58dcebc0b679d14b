//! Project automation: `cargo xtask <demo|ci|schemas|bench|lab-deps>`.
//!
//! - `demo`: installs what the local run needs (Debian packages) if missing, builds, and runs
//!   `nfvi-verify run --suite rc2` against this machine, then prints where the report is.
//! - `ci`: the whole test suite, as `.ci/run` and the README call it.
//! - `schemas [--check]`: regenerates (or checks) the JSON Schemas under `schemas/`.
//! - `bench`: criterion benchmarks plus the memory and `list` timing figures in the README.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// Debian packages a local run uses (ip, unshare, dpkg-query, CNI plugins for the inventory).
const RUN_PACKAGES: &[&str] = &[
    "iproute2",
    "util-linux",
    "procps",
    "containernetworking-plugins",
];

/// Further Debian packages the tests use (a real browser for the HTML report).
const TEST_PACKAGES: &[&str] = &["chromium", "python3", "python3-pip"];

/// Python test helpers (a real JUnit consumer).
const PYTHON_PACKAGES: &[&str] = &["junitparser==3.2.0"];

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the repo")
        .to_owned()
}

fn run(cmd: &mut Command) -> Result<()> {
    eprintln!("xtask: $ {}", describe(cmd));
    let status = cmd
        .status()
        .with_context(|| format!("cannot start `{}`", describe(cmd)))?;
    if !status.success() {
        bail!("`{}` failed with {status}", describe(cmd));
    }
    Ok(())
}

fn describe(cmd: &Command) -> String {
    std::iter::once(cmd.get_program().to_string_lossy().into_owned())
        .chain(cmd.get_args().map(|a| a.to_string_lossy().into_owned()))
        .collect::<Vec<_>>()
        .join(" ")
}

fn cargo() -> Command {
    let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    c.current_dir(repo());
    c
}

fn missing_debs(packages: &[&str]) -> Vec<String> {
    packages
        .iter()
        .filter(|p| {
            !Command::new("dpkg-query")
                .args(["-W", "-f", "${db:Status-Abbrev}", p])
                .output()
                .is_ok_and(|o| o.status.success() && o.stdout.starts_with(b"ii"))
        })
        .map(|p| (*p).to_owned())
        .collect()
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

/// Installs the Debian packages a run needs and, for the tests, the test packages and the
/// Python helpers.
fn install_deps(tests: bool) -> Result<()> {
    let wanted: Vec<&str> = RUN_PACKAGES
        .iter()
        .chain(if tests { TEST_PACKAGES } else { &[] })
        .copied()
        .collect();
    let missing = missing_debs(&wanted);
    if !missing.is_empty() {
        if !is_root() {
            bail!(
                "missing Debian packages {}: run as root or install them with apt-get",
                missing.join(" ")
            );
        }
        run(Command::new("apt-get").args(["update", "-q"]))?;
        run(Command::new("apt-get")
            .args(["install", "-y", "-q", "--no-install-recommends"])
            .args(&missing)
            .env("DEBIAN_FRONTEND", "noninteractive"))?;
    }
    if tests {
        let have = Command::new("python3")
            .args(["-c", "import junitparser"])
            .status()
            .is_ok_and(|s| s.success());
        if !have {
            run(Command::new("python3")
                .args(["-m", "pip", "install", "-q"])
                .args(PYTHON_PACKAGES))?;
        }
    }
    Ok(())
}

fn demo() -> Result<()> {
    install_deps(false)?;
    run(cargo().args(["build", "--quiet", "--package", "nfvi-verify"]))?;
    let bin = repo().join("target/debug/nfvi-verify");
    eprintln!(
        "xtask: running the rc2 suite against this machine (the embedded local default target)"
    );
    let status = Command::new(&bin)
        .args(["run", "--suite", "rc2"])
        .current_dir(repo())
        .status()
        .with_context(|| format!("cannot start {}", bin.display()))?;
    let report = repo().join("nfvi-results/latest/report.html");
    match status.code() {
        // 0, 1 and 3 are verdicts (conformant, non-conformant, incomplete): the run worked.
        Some(0 | 1 | 3) if report.exists() => {
            eprintln!(
                "\nxtask: open the certification report: {}",
                report.display()
            );
            Ok(())
        }
        _ => bail!("nfvi-verify did not complete a run ({status})"),
    }
}

fn schemas(check: bool) -> Result<()> {
    let dir = repo().join("schemas");
    std::fs::create_dir_all(&dir)?;
    let mut stale = Vec::new();
    for (name, text) in nfvi_harness::schemas::all()
        .into_iter()
        .chain(nfvi_suite_cni::result::schemas())
    {
        let path = dir.join(name);
        let current = std::fs::read_to_string(&path).unwrap_or_default();
        if current != text {
            if check {
                stale.push(name);
            } else {
                std::fs::write(&path, text)?;
                eprintln!("xtask: wrote {}", path.display());
            }
        }
    }
    if !stale.is_empty() {
        bail!(
            "stale schemas: {}; run `cargo xtask schemas`",
            stale.join(", ")
        );
    }
    Ok(())
}

fn ci() -> Result<()> {
    let in_ci = std::env::var_os("CI").is_some();
    install_deps(true)?;
    run(cargo().args(["fmt", "--all", "--check"]))?;
    schemas(true)?;
    run(cargo().args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--quiet",
        "--",
        "-D",
        "warnings",
    ]))?;
    let before = machine_state();
    let mut nextest = cargo();
    nextest.args(["nextest", "run", "--workspace", "--no-fail-fast"]);
    if in_ci {
        nextest.args(["--profile", "ci"]);
    }
    run(&mut nextest)?;
    // The tests create namespaces, links and bridges; all of it must be gone afterwards.
    let after = machine_state();
    let left: Vec<&String> = after.iter().filter(|x| !before.contains(x)).collect();
    if !left.is_empty() {
        bail!("the tests left these behind on the machine: {left:?}");
    }
    eprintln!("xtask: the machine's network namespaces and links are as before the tests");
    Ok(())
}

/// Network namespaces and links of the machine's own namespace, one string each.
fn machine_state() -> Vec<String> {
    let names = |args: &[&str], prefix: &str| -> Vec<String> {
        Command::new("ip")
            .args(args)
            .output()
            .map(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .filter_map(|l| {
                        let name = if prefix == "link" {
                            l.split(": ").nth(1)?.split('@').next()?
                        } else {
                            l.split_whitespace().next()?
                        };
                        Some(format!("{prefix} {name}"))
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut all = names(&["netns", "list"], "netns");
    all.extend(names(&["-o", "link", "show"], "link"));
    all
}

fn bench() -> Result<()> {
    run(cargo().args([
        "build",
        "--release",
        "--quiet",
        "--package",
        "nfvi-verify",
        "--package",
        "nfvi-integration-tests",
        "--bins",
    ]))?;
    // Memory and wall time of rendering 10,000 results into all three artifacts, in a fresh
    // process so that peak RSS is the renderer's own.
    run(Command::new(repo().join("target/release/render-synthetic")).arg("10000"))?;
    // `nfvi-verify list --suite all`: whole-process wall time, median of 21 runs.
    let bin = repo().join("target/release/nfvi-verify");
    let mut times = Vec::new();
    for _ in 0..21 {
        let t = Instant::now();
        let out = Command::new(&bin)
            .args(["list", "--suite", "all"])
            .output()?;
        times.push(t.elapsed());
        if !out.status.success() {
            bail!("nfvi-verify list failed");
        }
    }
    times.sort();
    let median = times[times.len() / 2];
    eprintln!(
        "bench: nfvi-verify list --suite all: median {:.1} ms over 21 runs (goal < 50 ms)",
        ms(median)
    );
    run(cargo().args([
        "bench",
        "--package",
        "nfvi-integration-tests",
        "--bench",
        "engine",
    ]))?;
    Ok(())
}

/// `cargo xtask bench cni`: the CNI suite against the installed plugins, release build.
fn bench_cni() -> Result<()> {
    run(cargo().args(["build", "--release", "--quiet", "--package", "nfvi-verify"]))?;
    let out = std::env::temp_dir().join(format!("nfvi-bench-cni-{}", std::process::id()));
    let t = Instant::now();
    let status = Command::new(repo().join("target/release/nfvi-verify"))
        .args(["run", "--suite", "cni", "--no-progress", "--out"])
        .arg(&out)
        .stderr(std::process::Stdio::null())
        .status()?;
    let wall = t.elapsed();
    if !matches!(status.code(), Some(0 | 1 | 3)) {
        bail!("the cni run did not complete ({status})");
    }
    let results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json"))?)?;
    let _ = std::fs::remove_dir_all(&out);
    let checks = results["checks"].as_array().map_or(0, Vec::len);
    let commands: Vec<&str> = results["checks"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|c| c["evidence"]["commands"].as_array().into_iter().flatten())
        .filter_map(|c| c["command"].as_str())
        .collect();
    let execs = commands
        .iter()
        .filter(|c| c.starts_with("ip netns exec nfvrt-") && c.contains("/cni"))
        .count();
    let usage = &results["resource_usage"];
    let (harness, children) = (
        usage["harness_cpu_secs"].as_f64().unwrap_or(0.0),
        usage["children_cpu_secs"].as_f64().unwrap_or(0.0),
    );
    eprintln!(
        "bench: cni suite: {checks} checks in {:.2} s wall; {execs} plugin execs ({:.0}/s), {} commands in all; CPU: harness {harness:.2} s, children (plugins, ip, iptables) {children:.2} s, harness share {:.1}%; harness peak RSS {} KiB (goal: < 20 s wall)",
        wall.as_secs_f64(),
        execs as f64 / wall.as_secs_f64(),
        commands.len(),
        100.0 * harness / (harness + children).max(f64::EPSILON),
        usage["harness_max_rss_kib"],
    );
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("demo") => demo(),
        Some("ci") => ci(),
        Some("schemas") => schemas(args.get(1).is_some_and(|a| a == "--check")),
        Some("bench") if args.get(1).is_some_and(|a| a == "cni") => bench_cni(),
        Some("bench") => bench(),
        Some("deps") => install_deps(true),
        _ => bail!(
            "usage: cargo xtask <demo|ci|schemas [--check]|bench [cni]|deps>\n  demo     set up and run the rc2 suite against this machine\n  ci       the whole test suite (what .ci/run runs)\n  schemas  regenerate the JSON Schemas (--check: fail if stale)\n  bench    benchmarks and the README's performance figures (bench cni: the CNI suite)\n  deps     install the system packages and Python helpers the tests need"
        ),
    }
}
