//! Runs killed with SIGKILL at random instants. Each time: `report --from DIR` renders the
//! partial run (incomplete, killed), `run --resume DIR` completes it (a result for every
//! planned check, none twice, the killed part's results verbatim), and after `clean` (or the
//! start of the next run) nothing of the killed process is left: no namespace, link,
//! scratch directory, container, network or iptables rule.
//!
//! The instants come from a seed, printed; `NFVI_CRASH_SEED=N` replays one.
//! `NFVI_CRASH_NO_CLEAN=1` leaves cleaning out, to see the test fail without it.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// splitmix64: enough randomness for instants, reproducible from the seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn between(&mut self, low: u64, high: u64) -> u64 {
        low + self.next() % (high - low)
    }
}

fn names(dir: &str, pid: u32) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("nfv") && n.contains(&pid.to_string()))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn lines(cmd: &mut Command) -> Vec<String> {
    cmd.output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// Everything on this machine that carries `pid` as its owner.
fn traces(
    pid: u32,
    docker: bool,
    bridges: &BTreeSet<String>,
) -> BTreeMap<&'static str, Vec<String>> {
    let tmp = std::env::temp_dir().display().to_string();
    let label = format!("label=io.nfvi-verify.owner={pid}");
    let mut t = BTreeMap::new();
    t.insert("network namespaces", names("/run/netns", pid));
    t.insert("scratch directories", names(&tmp, pid));
    t.insert("links", names("/sys/class/net", pid));
    let iptables = lines(&mut Command::new("iptables-save"));
    t.insert(
        "iptables rules",
        iptables
            .into_iter()
            .filter(|l| {
                (l.contains("nfv") && l.contains(&pid.to_string()))
                    || bridges.iter().any(|b| l.contains(b.as_str()))
            })
            .collect(),
    );
    if docker {
        t.insert(
            "containers",
            lines(Command::new("docker").args(["ps", "-aq", "--filter", &label])),
        );
        t.insert(
            "networks",
            lines(Command::new("docker").args(["network", "ls", "-q", "--filter", &label])),
        );
    }
    t.retain(|_, v| !v.is_empty());
    t
}

/// The Linux bridges of the Docker networks `pid` made (their iptables rules name them).
fn bridges_of(pid: u32, docker: bool) -> BTreeSet<String> {
    if !docker {
        return BTreeSet::new();
    }
    let label = format!("label=io.nfvi-verify.owner={pid}");
    lines(Command::new("docker").args([
        "network",
        "ls",
        "-q",
        "--no-trunc",
        "--filter",
        &label,
        "--filter",
        "driver=bridge",
    ]))
    .into_iter()
    .map(|id| format!("br-{}", &id[..12.min(id.len())]))
    .collect()
}

/// What the rounds leave out: the concurrency assertions, the slowest of the catalog (the
/// skip is also what the resumed run must take from the journal).
fn skip(suite: &str) -> &'static [&'static str] {
    if suite == "cni" {
        &["--skip", "cni.*.CNI-CONC-*"]
    } else {
        &[]
    }
}

fn planned(suite: &str) -> Vec<String> {
    let plan = json_stdout(
        nfvi()
            .args(["list", "--suite", suite, "--format", "json"])
            .args(skip(suite)),
    );
    let items = plan["items"]
        .as_array()
        .or_else(|| plan["checks"].as_array())
        .expect("the plan's checks");
    let mut ids: Vec<String> = items
        .iter()
        .map(|i| i["id"].as_str().expect("an ID").to_owned())
        .collect();
    ids.sort();
    ids
}

fn spawn(suite: &str, out: &Path) -> Child {
    Command::new(assert_cmd::cargo::cargo_bin!("nfvi-verify"))
        .args(["run", "--suite", suite, "--no-progress"])
        .args(skip(suite))
        .arg("--out")
        .arg(out)
        .env_remove("CI")
        .env("NFVI_VERIFY_NO_CLEAN", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn results(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("results.json")).unwrap()).unwrap()
}

struct Round<'a> {
    suite: &'a str,
    planned: &'a [String],
    kill_after: Duration,
    /// Clean with `clean` (else: the resumed run's own start does it).
    explicit_clean: bool,
    docker: bool,
    no_clean: bool,
}

/// One killed run, reported, cleaned and resumed; whether the kill landed mid-run.
fn round(r: &Round<'_>, base: &Path, n: usize) -> bool {
    let dir = base.join(format!("{}-{n}", r.suite));
    let mut child = spawn(r.suite, &dir);
    let pid = child.id();
    std::thread::sleep(r.kill_after);
    if child.try_wait().unwrap().is_some() {
        eprintln!("  {}: finished before {:?}", r.suite, r.kill_after);
        assert_eq!(results(&dir)["complete"], true);
        return false;
    }
    // Killed but not reaped: a zombie keeps its PID, so no other run cleans its leftovers
    // before they are looked at.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    if dir.join("results.json").exists() {
        // Killed in the last instants, after it wrote results.json and before it removed its
        // journal: the run's record is whole, and `report --from` rightly reads it.
        let _ = child.wait();
        eprintln!("  {}: killed after it wrote its results", r.suite);
        assert_eq!(results(&dir)["complete"], true);
        return false;
    }
    let bridges = bridges_of(pid, r.docker);
    let left = traces(pid, r.docker, &bridges);
    eprintln!(
        "  {}: killed {pid} after {:?}; it left {:?}",
        r.suite,
        r.kill_after,
        left.iter().map(|(k, v)| (*k, v.len())).collect::<Vec<_>>()
    );

    if !dir.join("results.journal").exists() {
        // Killed before its journal existed (tens of milliseconds in, more on a loaded
        // machine): no check had started, so there is nothing to render or resume, and
        // nothing may have been left.
        let _ = child.wait();
        eprintln!("  {}: killed before its journal existed", r.suite);
        assert!(left.is_empty(), "a run with no journal left {left:?}");
        assert!(!dir.join("results.json").exists());
        return false;
    }
    // The partial run renders, saying it was interrupted.
    let journal = std::fs::read_to_string(dir.join("results.journal"))
        .expect("the killed run left its journal");
    let lines = journal.lines().count();
    let said = nfvi()
        .args(["report", "--from"])
        .arg(&dir)
        .assert()
        .success();
    assert_contains(
        &String::from_utf8_lossy(&said.get_output().stderr),
        "interrupted (killed)",
    );
    let partial = results(&dir);
    assert_eq!(partial["complete"], false);
    assert_eq!(partial["cancel_reason"], "killed");
    assert_ne!(partial["verdict"], "conformant");
    let carried = partial["checks"].as_array().unwrap().len();
    assert!(
        carried + 1 == lines || carried + 2 == lines,
        "{carried} results of {lines} journal lines"
    );
    assert!(dir.join("report.html").exists());

    child.wait().unwrap();
    if r.explicit_clean && !r.no_clean {
        nfvi()
            .arg("clean")
            .env_remove("NFVI_VERIFY_NO_CLEAN")
            .assert()
            .success();
        let left = traces(pid, r.docker, &bridges);
        assert!(left.is_empty(), "`clean` left of {pid}: {left:?}");
    }

    // The resumed run completes it; its start removes what is left unless told not to.
    let mut resume = nfvi();
    resume
        .args(["run", "--resume"])
        .arg(&dir)
        .arg("--no-progress");
    if !r.no_clean {
        resume.env_remove("NFVI_VERIFY_NO_CLEAN");
    }
    let out = resume.assert();
    let code = out.get_output().status.code().unwrap();
    assert!(
        [0, 1, 3].contains(&code),
        "resume exited {code}: {}",
        String::from_utf8_lossy(&out.get_output().stderr)
    );
    let full = results(&dir);
    assert_eq!(
        full["complete"],
        true,
        "the resumed run is not complete ({}): {}",
        full["cancel_reason"],
        String::from_utf8_lossy(&out.get_output().stderr)
    );
    assert_eq!(full["resumed_from"]["carried_over"], carried);
    let mut ids: Vec<String> = full["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    assert_eq!(
        ids, r.planned,
        "a result for every planned check, none twice"
    );
    // The killed part's results, verbatim.
    for c in partial["checks"].as_array().unwrap() {
        let id = c["id"].as_str().unwrap();
        let now = full["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["id"] == id)
            .unwrap();
        assert_eq!(now, c, "{id} was carried over changed");
    }
    assert!(!dir.join("results.journal").exists());
    let left = traces(pid, r.docker, &bridges);
    assert!(left.is_empty(), "left of the killed run {pid}: {left:?}");
    true
}

#[test]
fn killed_runs_render_resume_and_leave_nothing_once_cleaned() {
    if !require("root (the CNI suite creates namespaces)", is_root()) {
        return;
    }
    let seed = std::env::var("NFVI_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    eprintln!("seed {seed} (NFVI_CRASH_SEED={seed} replays these instants)");
    let no_clean = std::env::var_os("NFVI_CRASH_NO_CLEAN").is_some();
    let mut rng = Rng(seed);
    let base = tempfile::tempdir().unwrap();
    let start = Instant::now();
    let docker = docker_answers();
    let mut killed = 0;
    let cni = planned("cni");
    for n in 0..3 {
        let r = Round {
            suite: "cni",
            planned: &cni,
            // The CNI suite takes 5 to 8 s here; kills past its end do not test anything, and
            // kills before its journal exists (tens of ms, more under load) test little.
            kill_after: Duration::from_millis(rng.between(1_000, 5_000)),
            explicit_clean: n % 2 == 0,
            docker: false,
            no_clean,
        };
        killed += usize::from(round(&r, base.path(), n));
    }
    if docker {
        let planned = planned("docker");
        let r = Round {
            suite: "docker",
            planned: &planned,
            kill_after: Duration::from_millis(rng.between(1_000, 5_000)),
            explicit_clean: true,
            docker: true,
            no_clean,
        };
        killed += usize::from(round(&r, base.path(), 0));
    } else {
        eprintln!("no Docker daemon on /var/run/docker.sock: the Docker round is left out");
    }
    eprintln!("{killed} runs killed mid-run in {:?}", start.elapsed());
    assert!(
        killed >= 2,
        "the kills landed after the runs ended: the test did not test"
    );
}
