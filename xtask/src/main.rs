//! Project automation: `cargo xtask <demo|ci|schemas|bench|lab-deps>`.
//!
//! - `demo`: installs what the local run needs (Debian packages) if missing, builds, and runs
//!   `nfvi-verify run --suite rc2` against this machine, then prints where the report is.
//! - `ci`: the whole test suite, as `.ci/run` and the README call it.
//! - `fuzz [--cases N]`: the property/fuzz targets of `fuzz/` with N cases each.
//! - `schemas [--check]`: regenerates (or checks) the JSON Schemas under `schemas/`.
//! - `bench`: criterion benchmarks plus the memory and `list` timing figures in the README.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

mod fleet;
mod fuzzbench;

/// Debian packages a local run uses (ip, unshare, dpkg-query, CNI plugins for the inventory).
const RUN_PACKAGES: &[&str] = &[
    "iproute2",
    "util-linux",
    "procps",
    "containernetworking-plugins",
];

/// Further Debian packages the tests use: a real browser for the HTML report, and what
/// `nfvi-verify lab up` needs (Docker engine, the busybox probe image, the image registry, and
/// a venv plus a C toolchain for Keystone and uWSGI from PyPI).
const TEST_PACKAGES: &[&str] = &[
    "chromium",
    // `lab up --engine podman`: the docker and kolla tests run against Podman's Docker API too.
    "podman",
    "netavark",
    "python3",
    "python3-pip",
    "docker.io",
    "busybox-static",
    "docker-registry",
    "python3-venv",
    "python3-dev",
    "gcc",
    "libc6-dev",
    // A TLS front for the lab's Keystone and openssl for its test CA (kolla TLS tests).
    "socat",
    "openssl",
    // `lab up --nodes`: each node runs sshd in its namespace; the tests log in with ssh.
    "openssh-server",
    "openssh-client",
];

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

/// `nfvi-verify lab <action>` (up, down), built and run by cargo.
fn lab(args: &[&str]) -> Command {
    let mut c = cargo();
    c.args(["run", "--quiet", "--package", "nfvi-verify", "--", "lab"])
        .args(args);
    c
}

/// The tests that verify a Docker API engine, run a second time against Podman.
const ENGINE_TESTS: &str = "package(nfvi-suite-docker) | package(nfvi-suite-kolla) | binary_id(nfvi-verify::docker) | binary_id(nfvi-verify::kolla)";

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
    nix::unistd::geteuid().is_root()
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
        if missing.iter().any(|p| p == "openssh-server") {
            stop_debian_sshd();
        }
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
        // The rc1 Tempest tests (harness/cli/tests/tempest.rs) need the pinned Tempest in the
        // cached virtualenv a run uses (/var/cache/nfvi-verify/tempest-VERSION; keep that
        // directory between CI runs to skip the download).
        let (venv, secs) =
            nfvi_suite_tempest::install_pinned(&|line| eprintln!("xtask: tempest: {line}"))
                .map_err(|e| anyhow::anyhow!("installing Tempest: {e}"))?;
        eprintln!("xtask: Tempest ready in {} ({secs:.0} s)", venv.display());
    }
    Ok(())
}

/// openssh-server's maintainer scripts enable and start the machine's own sshd where the init
/// system lets them. The tests need only the binary (the lab's nodes run their own sshd in
/// network namespaces), so right after installing it the service is disabled and stopped
/// again: no SSH listener on the host that nobody asked for.
fn stop_debian_sshd() {
    let _ = Command::new("systemctl")
        .args(["disable", "--now", "ssh"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status();
    // Without systemd, invoke-rc.d starts it with Debian's default pidfile: stop that PID
    // only, and only if it is sshd.
    let pid = std::fs::read_to_string("/run/sshd.pid")
        .ok()
        .and_then(|p| p.trim().parse::<u32>().ok());
    if let Some(pid) = pid
        && std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "sshd")
    {
        eprintln!("xtask: stopping the sshd (pid {pid}) that installing openssh-server started");
        let _ = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status();
    }
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
    for (name, text) in nfvi_harness::schemas::all(&nfvi_verify::areas())
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
    let nextest = || {
        let mut c = cargo();
        c.args(["nextest", "run", "--workspace", "--no-fail-fast"]);
        if in_ci {
            c.args(["--profile", "ci"]);
        }
        c
    };
    // The Docker tests verify the local lab: a dockerd the lab starts and stops again.
    run(&mut lab(&["up"]))?;
    let tested = run(&mut nextest());
    let down = run(&mut lab(&["down"]));
    tested?;
    down?;
    // The same lab on Podman's Docker API service, and the engine tests again.
    eprintln!("xtask: the docker and kolla tests again, against Podman (`lab up --engine podman`)");
    run(&mut lab(&["up", "--engine", "podman"]))?;
    let tested = run(nextest()
        .args(["-E", ENGINE_TESTS])
        .env("NFVI_LAB_ENGINE", "podman")
        .env("NFVI_PODMAN_SOCKET", "/var/run/docker.sock"));
    let down = run(&mut lab(&["down"]));
    tested?;
    down?;
    // The tests create namespaces, links and bridges; all of it must be gone afterwards.
    let after = machine_state();
    let left: Vec<&String> = after.iter().filter(|x| !before.contains(x)).collect();
    if !left.is_empty() {
        bail!("the tests left these behind on the machine: {left:?}");
    }
    eprintln!(
        "xtask: the machine's network namespaces, links, firewall and forwarding sysctls are as before the tests"
    );
    Ok(())
}

/// Network namespaces and links of the machine's own namespace, its firewall rules and the
/// forwarding sysctls, one string each.
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
    // Podman's default places: the lab's Podman keeps its storage and networks in its own
    // state, so none of them may appear.
    for path in [
        "/var/lib/containers",
        "/etc/containers/networks",
        "/run/containers",
    ] {
        if std::path::Path::new(path).exists() {
            all.push(format!("path {path}"));
        }
    }
    // The whole firewall, every table of both families as `iptables-save` prints it (counters
    // and the time stamps aside): the lab's engines must leave it byte-identical.
    for tool in ["iptables-save", "ip6tables-save"] {
        if let Ok(out) = Command::new(tool).output() {
            all.extend(
                String::from_utf8_lossy(&out.stdout)
                    .lines()
                    .filter(|l| !l.starts_with('#'))
                    .map(|l| format!("{tool}: {}", without_counters(l))),
            );
        }
    }
    // The sysctls the lab's engines change: the lab must put them back.
    if let Ok(host) = nfvi_lab::host_state::observe() {
        for (name, value) in host.sysctls {
            all.push(format!(
                "sysctl {name} = {}",
                value.as_deref().unwrap_or("(absent)")
            ));
        }
    }
    all
}

/// A chain line of `iptables-save` with its packet and byte counters zeroed
/// (`:FORWARD ACCEPT [12:3456]` becomes `:FORWARD ACCEPT [0:0]`).
fn without_counters(line: &str) -> String {
    match line.rfind(" [") {
        Some(i) if line.starts_with(':') && line.ends_with(']') => format!("{} [0:0]", &line[..i]),
        _ => line.to_owned(),
    }
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

/// `cargo xtask bench cni`: the CNI suite against the installed plugins, release build, with
/// the figures of the README: wall time; CPU of the whole process tree (user and system, from
/// getrusage of the waited-for nfvi-verify) split into the harness itself (its getrusage
/// RUSAGE_SELF, in results.json) and its children (RUSAGE_CHILDREN: the plugins, what they
/// start, and the helpers); and the processes the checks started, from the evidence (every
/// process a check starts is recorded), split into plugin executions and helpers. With
/// `perf` (root), a second run traced with the scheduler's runtime per process name also
/// separates the helpers' CPU from the plugins'.
fn bench_cni() -> Result<()> {
    run(cargo().args(["build", "--release", "--quiet", "--package", "nfvi-verify"]))?;
    let scratch = tempfile::Builder::new()
        .prefix("nfvi-bench-cni-")
        .tempdir()?;
    let out = scratch.path().join("run");
    let mut line: Vec<std::ffi::OsString> = vec![repo().join("target/release/nfvi-verify").into()];
    line.extend(["run", "--suite", "cni", "--no-progress", "--out"].map(Into::into));
    line.push(out.clone().into());
    let quiet = |c: &mut Command| {
        c.stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
    };
    let mut suite = Command::new(&line[0]);
    suite.args(&line[1..]);
    quiet(&mut suite);
    let (user0, sys0) = children_times();
    let t = Instant::now();
    let status = suite.status()?;
    let wall = t.elapsed();
    let (user1, sys1) = children_times();
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
    let mut plugin_execs = 0;
    let mut helpers: std::collections::BTreeMap<String, usize> = Default::default();
    let mut plugin_dirs = std::collections::BTreeSet::new();
    for c in &commands {
        let (program, via_ip) = launched_program(c);
        if program.contains("/cni/") {
            plugin_execs += 1;
            if let Some(dir) = Path::new(program).parent() {
                plugin_dirs.insert(dir.to_owned());
            }
            if via_ip {
                *helpers
                    .entry("ip (netns exec, then the plugin)".into())
                    .or_default() += 1;
            }
        } else {
            let name = program.rsplit('/').next().unwrap_or(program);
            *helpers.entry(name.to_owned()).or_default() += 1;
        }
    }
    let usage = &results["resource_usage"];
    let harness = usage["harness_cpu_secs"].as_f64().unwrap_or(0.0);
    let children = usage["children_cpu_secs"].as_f64().unwrap_or(0.0);
    let (user, sys) = (user1 - user0, sys1 - sys0);
    let secs = wall.as_secs_f64();
    eprintln!("bench: cni suite: {checks} checks in {secs:.2} s wall (goal <= 6.5 s)");
    eprintln!(
        "bench: CPU {:.2} s (user {user:.2} s, sys {sys:.2} s): harness itself {harness:.2} s ({:.1}%), its children {children:.2} s (plugins, what they start, helpers); harness peak RSS {} KiB",
        user + sys,
        100.0 * harness / (harness + children).max(f64::EPSILON),
        usage["harness_max_rss_kib"],
    );
    let helper_count: usize = helpers.values().sum();
    eprintln!(
        "bench: processes the checks started: {} ({plugin_execs} plugin executions, {:.0}/s; {helper_count} helpers: {})",
        commands.len(),
        plugin_execs as f64 / secs,
        if helpers.is_empty() {
            "none".to_owned()
        } else {
            helpers
                .iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect::<Vec<_>>()
                .join(", ")
        },
    );
    // The helpers' CPU is inside the children's; the scheduler's runtime accounting by
    // process name separates it.
    if !is_root() || Command::new("perf").arg("--version").output().is_err() {
        eprintln!(
            "bench: (without perf as root the helpers' CPU is not told apart from the plugins')"
        );
        return Ok(());
    }
    let data = scratch.path().join("perf.data");
    let mut traced = Command::new("perf");
    traced
        .args(["record", "-q", "-e", "sched:sched_stat_runtime", "-o"])
        .arg(&data)
        .arg("--")
        .args(&line);
    quiet(&mut traced);
    let status = traced.status()?;
    let _ = std::fs::remove_dir_all(&out);
    if !matches!(status.code(), Some(0 | 1 | 3)) {
        bail!("the traced cni run did not complete ({status})");
    }
    let script = Command::new("perf")
        .args(["script", "-F", "comm,trace", "-i"])
        .arg(&data)
        .output()?;
    // Plugins: the binaries the checks executed and their siblings (IPAM plugins run by
    // interface plugins), the spy plugin, and iptables, which portmap and firewall run.
    let mut plugins: std::collections::BTreeSet<String> = [
        "iptables",
        "ip6tables",
        "iptables-restore",
        "ip6tables-restore",
        "nfvspy",
    ]
    .map(str::to_owned)
    .into();
    for dir in plugin_dirs {
        for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            plugins.insert(e.file_name().to_string_lossy().into_owned());
        }
    }
    let mut by_group = std::collections::BTreeMap::<&str, f64>::new();
    for l in String::from_utf8_lossy(&script.stdout).lines() {
        let Some(comm) = l.split_whitespace().next() else {
            continue;
        };
        let Some(ns) = l
            .split_whitespace()
            .find_map(|w| w.strip_prefix("runtime="))
            .and_then(|v| v.parse::<f64>().ok())
        else {
            continue;
        };
        let group = if comm.starts_with("nfvi-") || comm.starts_with("tokio-") {
            "harness"
        } else if plugins.contains(comm) {
            "plugins"
        } else {
            "helpers"
        };
        *by_group.entry(group).or_default() += ns / 1e9;
    }
    let total: f64 = by_group.values().sum();
    let get = |g: &str| by_group.get(g).copied().unwrap_or(0.0);
    eprintln!(
        "bench: CPU by process (perf, the scheduler's runtime per process name, a second run): harness {:.2} s, helpers {:.2} s, plugins {:.2} s; harness and helpers {:.1}% of {total:.2} s (goal < 30%)",
        get("harness"),
        get("helpers"),
        get("plugins"),
        100.0 * (get("harness") + get("helpers")) / total.max(f64::EPSILON),
    );
    Ok(())
}

/// The program a recorded command line started and whether `ip netns exec` ran it (as the
/// lab did before it forked plugins from a thread inside the namespace).
fn launched_program(command: &str) -> (&str, bool) {
    let mut words = command.split_whitespace().peekable();
    if words.peek().is_some_and(|w| w.starts_with('[')) {
        // "[netns nfvrt-1-2] /usr/lib/cni/bridge": a launcher's label.
        for w in words.by_ref() {
            if w.ends_with(']') {
                break;
            }
        }
        return (words.next().unwrap_or(""), false);
    }
    let all: Vec<&str> = command.split_whitespace().collect();
    match all.as_slice() {
        [ip, "netns", "exec", _, program, ..] if ip.ends_with("ip") => (program, true),
        [program, ..] => (program, false),
        [] => ("", false),
    }
}

/// User and system CPU seconds of this process's waited-for children so far (getrusage,
/// whatever the clock tick rate).
fn children_times() -> (f64, f64) {
    use nix::sys::resource::{UsageWho, getrusage};
    let secs = |tv: nix::sys::time::TimeVal| tv.tv_sec() as f64 + tv.tv_usec() as f64 / 1e6;
    getrusage(UsageWho::RUSAGE_CHILDREN)
        .map_or((0.0, 0.0), |u| (secs(u.user_time()), secs(u.system_time())))
}

/// Namespaces for the datapath benchmark, deleted on drop.
struct BenchNetns(Vec<String>);

impl Drop for BenchNetns {
    fn drop(&mut self) {
        for n in &self.0 {
            let _ = Command::new("ip").args(["netns", "del", n]).status();
        }
    }
}

/// Runs `client` against the running `server`, then interrupts the server: the client's
/// output and the CPU time the children used while the client ran.
fn measure(client: &mut Command, mut server: std::process::Child) -> Result<(Output, f64)> {
    let cpu0 = rusage_children_cpu();
    let out = client.output()?;
    let cpu = rusage_children_cpu() - cpu0;
    let _ = Command::new("kill")
        .args(["-INT", &server.id().to_string()])
        .status();
    let _ = server.wait();
    Ok((out, cpu))
}

fn rusage_children_cpu() -> f64 {
    let (user, sys) = children_times();
    user + sys
}

struct ToolRun {
    p50: f64,
    p90: f64,
    messages: f64,
    cpu_secs: f64,
}

fn in_ns(ns: &str, cpu: &str, program: &std::path::Path) -> Command {
    let mut c = Command::new("ip");
    c.args(["netns", "exec", ns, "taskset", "-c", cpu])
        .arg(program);
    c
}

/// `cargo xtask bench datapath`: our prober against sockperf on the same pinned veth path, in
/// interleaved rounds, plus probe rates.
fn bench_datapath() -> Result<()> {
    if !missing_debs(&["sockperf"]).is_empty() {
        if !is_root() {
            bail!("sockperf is not installed; run as root or `apt-get install sockperf`");
        }
        run(Command::new("apt-get")
            .args(["install", "-y", "-q", "sockperf"])
            .env("DEBIAN_FRONTEND", "noninteractive"))?;
    }
    run(cargo().args(["build", "--release", "--quiet", "--package", "nfvi-verify"]))?;
    let bin = repo().join("target/release/nfvi-verify");
    let sockperf = std::path::PathBuf::from("/usr/bin/sockperf");
    let tag = format!("nfvb{}", std::process::id());
    let (a, b) = (format!("{tag}a"), format!("{tag}b"));
    let _guard = BenchNetns(vec![a.clone(), b.clone()]);
    for args in [
        vec!["netns", "add", &a],
        vec!["netns", "add", &b],
        vec![
            "-n", &a, "link", "add", "eth0", "type", "veth", "peer", "name", "eth1", "netns", &b,
        ],
        vec!["-n", &a, "addr", "add", "198.18.72.1/24", "dev", "eth0"],
        vec!["-n", &b, "addr", "add", "198.18.72.2/24", "dev", "eth1"],
        vec!["-n", &a, "link", "set", "eth0", "up"],
        vec!["-n", &b, "link", "set", "eth1", "up"],
        vec!["-n", &a, "link", "set", "lo", "up"],
        vec!["-n", &b, "link", "set", "lo", "up"],
    ] {
        run(Command::new("ip").args(&args))?;
    }
    let secs = 3;
    let ours = |mode: &str| -> Result<ToolRun> {
        let mut serve = in_ns(&b, "0", &bin);
        serve
            .args(["probe", "serve", "--bind", "198.18.72.2:17999"])
            .stderr(std::process::Stdio::null());
        if mode == "spin" {
            serve.arg("--spin");
        }
        let server = serve.spawn()?;
        std::thread::sleep(Duration::from_millis(300));
        // Same core for client and server (the most stable placement on a small VM), except
        // in spin mode, where client and server each busy-poll on their own core.
        let cpu_core = if mode == "spin" { "1" } else { "0" };
        let (out, cpu) = measure(
            in_ns(&a, cpu_core, &bin).args([
                "probe",
                "ping",
                "198.18.72.2:17999",
                "--duration",
                &format!("{secs}s"),
                "--warmup",
                "1000",
                "--mode",
                mode,
                "--format",
                "json",
            ]),
            server,
        )?;
        let v: serde_json::Value =
            serde_json::from_slice(&out.stdout).context("our prober printed no JSON")?;
        let s = &v["summary"];
        Ok(ToolRun {
            p50: s["p50_us"].as_f64().unwrap_or(0.0),
            p90: s["p90_us"].as_f64().unwrap_or(0.0),
            messages: s["count"].as_f64().unwrap_or(0.0) + 1000.0,
            cpu_secs: cpu,
        })
    };
    let sock = || -> Result<ToolRun> {
        let server = in_ns(&b, "0", &sockperf)
            .args(["sr", "-i", "198.18.72.2", "-p", "17998"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()?;
        std::thread::sleep(Duration::from_millis(300));
        let (out, cpu) = measure(
            in_ns(&a, "0", &sockperf).args([
                "pp",
                "-i",
                "198.18.72.2",
                "-p",
                "17998",
                "-t",
                &secs.to_string(),
                "-m",
                "16",
                "--full-rtt",
            ]),
            server,
        )?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        let pct = |p: &str| -> f64 {
            text.lines()
                .find(|l| l.contains(&format!("percentile {p}")))
                .and_then(|l| l.rsplit('=').next())
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0.0)
        };
        let messages = text
            .lines()
            .find(|l| l.contains("SentMessages="))
            .and_then(|l| l.split("SentMessages=").nth(1))
            .and_then(|v| v.split(';').next())
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0.0);
        Ok(ToolRun {
            p50: pct("50.000"),
            p90: pct("90.000"),
            messages,
            cpu_secs: cpu,
        })
    };
    let rounds = 4;
    let (mut r50, mut r90, mut rcpu) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        let (o, s) = if round % 2 == 0 {
            let o = ours("blocking")?;
            (o, sock()?)
        } else {
            let s = sock()?;
            (ours("blocking")?, s)
        };
        let cpu_o = o.cpu_secs / o.messages.max(1.0) * 1e6;
        let cpu_s = s.cpu_secs / s.messages.max(1.0) * 1e6;
        eprintln!(
            "bench: round {round}: ours p50 {:.2} p90 {:.2} us, {:.0} probes, {cpu_o:.2} us CPU/probe; sockperf p50 {:.2} p90 {:.2} us, {:.0} messages, {cpu_s:.2} us CPU/message",
            o.p50, o.p90, o.messages, s.p50, s.p90, s.messages
        );
        r50.push(o.p50 / s.p50);
        r90.push(o.p90 / s.p90);
        rcpu.push(cpu_o / cpu_s);
    }
    let med = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        (v[v.len() / 2 - 1] + v[v.len() / 2]) / 2.0
    };
    eprintln!(
        "bench: ours/sockperf over {rounds} interleaved rounds, same pinned veth path: p50 ratio {:.3} (goal 0.95-1.05), p90 ratio {:.3} (goal 0.90-1.10), client CPU per probe ratio {:.3} (goal <= 1.05)",
        med(&mut r50),
        med(&mut r90),
        med(&mut rcpu)
    );
    for mode in ["blocking", "spin"] {
        let o = ours(mode)?;
        eprintln!(
            "bench: {mode} mode: {:.0} probes/s on a veth path (goal: blocking >= 30k, spin >= 80k)",
            o.messages / f64::from(secs)
        );
    }
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// `cargo xtask fuzz [--cases N]`: the property/fuzz targets of `fuzz/` (issue #14) with
/// `N` cases each (default 2048) instead of their in-code defaults that CI runs.
fn fuzz(args: &[String]) -> Result<()> {
    let cases: u32 = match args {
        [] => 2048,
        [flag, n] if flag == "--cases" => n
            .parse()
            .with_context(|| format!("--cases `{n}` is not a number"))?,
        _ => bail!("usage: cargo xtask fuzz [--cases N]"),
    };
    run(cargo()
        .args(["nextest", "run", "--package", "nfvi-fuzz", "--no-fail-fast"])
        .env("PROPTEST_CASES", cases.to_string()))
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("demo") => demo(),
        Some("fuzz") => fuzz(&args[1..]),
        Some("ci") => ci(),
        Some("schemas") => schemas(args.get(1).is_some_and(|a| a == "--check")),
        Some("bench") if args.get(1).is_some_and(|a| a == "cni") => bench_cni(),
        Some("bench") if args.get(1).is_some_and(|a| a == "cni-fuzz") => {
            fuzzbench::bench_cni_fuzz()
        }
        Some("bench") if args.get(1).is_some_and(|a| a == "datapath") => bench_datapath(),
        Some("bench") if args.get(1).is_some_and(|a| a == "fleet") => fleet::bench_fleet(),
        // Ingesting the real e2e, kube-bench and Tempest files (criterion).
        Some("bench") if args.get(1).is_some_and(|a| a == "evidence") => run(cargo().args([
            "bench",
            "--package",
            "nfvi-suite-evidence",
            "--bench",
            "ingest",
        ])),
        Some("bench") => bench(),
        Some("deps") => install_deps(true),
        _ => bail!(
            "usage: cargo xtask <demo|ci|fuzz [--cases N]|schemas [--check]|bench [cni|cni-fuzz|datapath|fleet|evidence]|deps>\n  demo     set up and run the rc2 suite against this machine\n  ci       the whole test suite (what .ci/run runs)\n  fuzz     the property/fuzz targets of fuzz/ for longer (--cases N each, default 2048)\n  schemas  regenerate the JSON Schemas (--check: fail if stale)\n  bench    benchmarks and the README's performance figures (bench cni: the CNI suite; bench cni-fuzz: the fuzzing campaign's invocations per second; bench datapath: the prober against sockperf; bench fleet: the host suite over 1, 3 and 10 sshd nodes; bench evidence: ingesting other tools' result files)\n  deps     install the system packages and Python helpers the tests need"
        ),
    }
}
