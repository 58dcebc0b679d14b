//! Runs over a fleet with real parts: the node agent (`nfvi-verify node`) on its own, and
//! `run --inventory` over real OpenSSH servers, each in a network namespace of this machine
//! (`nfvi_lab::nodes`), reached with the system `ssh` client.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// The IDs a suite plans, from `list --format json`.
fn planned(suite: &str) -> Vec<String> {
    let plan = json_stdout(nfvi().args(["list", "--suite", suite, "--format", "json"]));
    plan["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_owned())
        .collect()
}

fn request(suite: &str, checks: &[String]) -> String {
    let target = stdout_text(nfvi().args(["target", "--example"]));
    let mut line = serde_json::json!({
        "protocol": 1,
        "version": env!("CARGO_PKG_VERSION"),
        "node": {"name": "test-node", "roles": ["compute"]},
        "suite": suite,
        "checks": checks,
        "jobs": 4,
        "target_toml": target,
    })
    .to_string();
    line.push('\n');
    line
}

/// Namespaces that appeared since `before` and whose creator (the PID in the name) is gone:
/// leaks. Tests running at the same time create and remove their own; those are alive.
fn leaked_since(before: &[String]) -> Vec<String> {
    namespaces()
        .into_iter()
        .filter(|n| !before.contains(n))
        .filter(|n| {
            let pid = n
                .trim_start_matches(|c: char| !c.is_ascii_digit())
                .split('-')
                .next()
                .unwrap_or("");
            !std::path::Path::new("/proc").join(pid).exists() || pid.is_empty()
        })
        .collect()
}

fn namespaces() -> Vec<String> {
    let out = Command::new("ip").args(["netns", "list"]).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| n.starts_with("nfv"))
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_agent_stops_its_checks_and_cleans_up_when_its_input_ends() {
    if !require("root (the CNI checks create namespaces)", is_root()) {
        return;
    }
    let before = namespaces();
    let checks = planned("cni");
    let mut agent = Command::new(assert_cmd::cargo::cargo_bin!("nfvi-verify"))
        .arg("node")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = agent.stdin.take().unwrap();
    stdin.write_all(request("cni", &checks).as_bytes()).unwrap();
    let mut lines = BufReader::new(agent.stdout.take().unwrap()).lines();
    // Wait until checks are under way, then hang up as a lost connection would.
    let mut finished = 0;
    for line in lines.by_ref() {
        let line = line.unwrap();
        if line.contains(r#""event":"finished""#) {
            finished += 1;
            if finished == 5 {
                break;
            }
        }
    }
    let hung_up = Instant::now();
    drop(stdin);
    let rest: Vec<String> = lines.map(Result::unwrap).collect();
    let status = agent.wait().unwrap();
    let took = hung_up.elapsed();
    assert!(status.success(), "{status}");
    assert!(
        took < Duration::from_secs(30),
        "the agent took {took:?} to stop"
    );
    let last = rest
        .last()
        .expect("the agent said something after the hang-up");
    assert_contains(last, r#""event":"done""#);
    assert_contains(last, r#""cancelled":true"#);
    let reported = finished
        + rest
            .iter()
            .filter(|l| l.contains(r#""event":"finished""#))
            .count();
    assert_eq!(
        reported,
        checks.len(),
        "every asked-for check is reported, run or interrupted"
    );
    assert!(
        rest.iter()
            .any(|l| l.contains(r#""skip_kind":"interrupted""#)),
        "checks not yet started are reported as interrupted"
    );
    let leaked = leaked_since(&before);
    assert!(leaked.is_empty(), "namespaces left behind: {leaked:?}");
}

#[test]
fn the_agent_refuses_a_request_of_another_version_with_a_fatal_event() {
    let out = nfvi()
        .arg("node")
        .write_stdin(request("host", &[]).replace(env!("CARGO_PKG_VERSION"), "99.0.0"))
        .assert()
        .code(2)
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(out).unwrap();
    assert_contains(&text, r#""event":"fatal""#);
    assert_contains(&text, "the jump host runs nfvi-verify 99.0.0");
    // Garbage is refused the same way, never a panic.
    nfvi()
        .arg("node")
        .write_stdin("\u{0}{not json\n")
        .assert()
        .code(2)
        .stdout(predicates::str::contains(
            "not an nfvi-verify agent request",
        ));
}

// ---- run --inventory over real sshd nodes ---------------------------------------------------

use nfvi_lab::nodes::{self, NodesLayout};

/// Nodes of this test, taken down when it ends (also when it fails).
struct Fleet {
    layout: NodesLayout,
    _state: tempfile::TempDir,
}

impl Drop for Fleet {
    fn drop(&mut self) {
        if let Err(e) = nodes::down(&self.layout, &mut |_| {}) {
            eprintln!("taking the test's nodes down: {e}");
        }
    }
}

impl Fleet {
    /// `n` sshd nodes on their own /24 (`subnet`, unique per test) and names with this
    /// process's PID; `None` (skipped) without root or sshd.
    fn up(n: usize, subnet: u8, tag: &str) -> Option<Self> {
        let sshd = std::path::Path::new("/usr/sbin/sshd").exists();
        if !require(
            "root and openssh-server (/usr/sbin/sshd)",
            is_root() && sshd,
        ) {
            return None;
        }
        // Not under /tmp: sshd's StrictModes refuses keys below a world-writable directory.
        let state = tempfile::Builder::new()
            .prefix("nfvi-test-fleet-")
            .tempdir_in("/run")
            .unwrap();
        let layout = NodesLayout::private(
            state.path(),
            [198, 19, subnet],
            &format!("nf{tag}{}", std::process::id() % 100_000),
        );
        let fleet = Self {
            layout,
            _state: state,
        };
        nodes::up(n, &fleet.layout, &mut |_| {}).expect("the test's nodes come up");
        Some(fleet)
    }

    fn node(&self, i: usize) -> String {
        self.layout.node_name(i)
    }

    /// `run --suite SUITE --inventory ...` with `extra` arguments; the agent is this test's
    /// binary, installed at the same path on every node (they share this file system),
    /// unless `copy` asks for the real copy-and-verify path.
    fn run(
        &self,
        suite: &str,
        copy: bool,
        extra: &[&str],
        out: &std::path::Path,
    ) -> (i32, serde_json::Value, String) {
        let mut cmd = nfvi();
        cmd.args(["run", "--suite", suite, "--no-progress", "--inventory"])
            .arg(self.layout.inventory_path())
            .args(extra);
        if !copy {
            let target = format!(
                "[fleet]\nagent = \"{}\"\n",
                assert_cmd::cargo::cargo_bin!("nfvi-verify").display()
            );
            let path = out.with_extension("toml");
            std::fs::write(&path, target).unwrap();
            cmd.arg("--target").arg(path);
        }
        let a = cmd.arg("--out").arg(out).assert();
        let output = a.get_output();
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        let text = std::fs::read_to_string(out.join("results.json"))
            .unwrap_or_else(|e| panic!("no results.json ({e}); stderr:\n{stderr}"));
        (
            output.status.code().expect("an exit code"),
            serde_json::from_str(&text).unwrap(),
            stderr,
        )
    }
}

fn agent_dirs() -> Vec<String> {
    std::fs::read_dir("/tmp")
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("nfvi-verify."))
        .collect()
}

fn checks_on<'a>(results: &'a serde_json::Value, node: &str) -> Vec<&'a serde_json::Value> {
    results["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["node"] == node)
        .collect()
}

#[test]
fn a_host_run_over_three_sshd_nodes_reports_every_node_level_check_once_per_node() {
    let Some(fleet) = Fleet::up(3, 21, "a") else {
        return;
    };
    let before = agent_dirs();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    // The real path: this binary copied to each node and checked by SHA-256.
    let (code, r, stderr) = fleet.run("host", true, &["--nodes-parallel", "3"], &out);
    assert!(matches!(code, 0 | 1), "exit {code}:\n{stderr}");
    assert_eq!(r["schema_version"], 5);
    let nodes = r["fleet"]["nodes"].as_array().expect("a fleet section");
    assert_eq!(nodes.len(), 3);
    for n in nodes {
        assert_eq!(n["verified"], true, "{n}");
        assert!(n["inventory"]["kernel"].is_string(), "{n}");
    }
    assert_eq!(r["fleet"]["transport"], "ssh");
    assert_eq!(nodes[0]["roles"], serde_json::json!(["control", "network"]));
    assert_eq!(nodes[1]["roles"], serde_json::json!(["compute"]));

    // Each node-level check once per node; the fleet comparisons once, for the NFVI.
    let per_node: Vec<Vec<&serde_json::Value>> =
        (1..=3).map(|i| checks_on(&r, &fleet.node(i))).collect();
    assert!(!per_node[0].is_empty());
    for checks in &per_node {
        let mut ids: Vec<&str> = checks.iter().map(|c| c["id"].as_str().unwrap()).collect();
        let n = ids.len();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), n, "a check reported twice on one node");
        assert!(ids.iter().all(|id| id.starts_with("host.")), "{ids:?}");
    }
    assert_eq!(per_node[0].len(), per_node[1].len());
    assert_eq!(per_node[0].len(), per_node[2].len());
    let kernel = check(&r, "fleet.nodes.kernel");
    assert!(kernel["node"].is_null());
    // The nodes share this machine's kernel: the comparison passes, having compared them.
    assert_eq!(kernel["outcome"], "passed", "{kernel}");
    assert_contains(text(kernel, "message"), "compute");

    // JUnit keeps the nodes apart; the report shows them.
    let junit = std::fs::read_to_string(out.join("junit.xml")).unwrap();
    let node2 = fleet.node(2);
    assert_contains(&junit, &format!("host.kernel.version [{node2}]"));
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    for i in 1..=3 {
        assert_contains(&html, &fleet.node(i));
    }
    assert_eq!(agent_dirs(), before, "the agent's directories are removed");
}

#[test]
fn an_unreachable_node_and_a_changed_host_key_are_named_and_the_other_node_completes() {
    let Some(fleet) = Fleet::up(3, 22, "b") else {
        return;
    };
    let (down, rekeyed) = (fleet.node(2), fleet.node(3));
    nodes::stop_sshd(&fleet.layout, &down).unwrap();
    nodes::rotate_host_key(&fleet.layout, &rekeyed).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (code, r, stderr) = fleet.run("host", false, &[], &dir.path().join("run"));
    assert_eq!(
        code, 3,
        "a node that could not be verified exits 3:\n{stderr}"
    );
    let node = |name: &str| {
        r["fleet"]["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["name"] == name)
            .unwrap()
            .clone()
    };
    assert_eq!(node(&fleet.node(1))["verified"], true);
    let refused = node(&down);
    assert_eq!(refused["verified"], false);
    assert_contains(text(&refused, "error"), "refused");
    let changed = node(&rekeyed);
    let why = text(&changed, "error");
    assert_contains(why, "CHANGED");
    assert_contains(why, "SHA256:");
    // Every check of the unverified nodes is an error naming the node.
    for name in [&down, &rekeyed] {
        let checks = checks_on(&r, name);
        assert!(!checks.is_empty());
        for c in checks {
            assert_eq!(c["outcome"], "error", "{c}");
            assert_contains(text(c, "message"), &format!("node {name}"));
        }
    }
    assert!(
        checks_on(&r, &fleet.node(1))
            .iter()
            .all(|c| c["outcome"] != "error"
                || !text(c, "message").contains("could not be verified"))
    );
    assert_contains(&stderr, &format!("node {rekeyed} NOT VERIFIED"));
}

#[test]
fn a_node_whose_sshd_dies_mid_run_is_named_and_leaves_nothing_on_the_others() {
    let Some(fleet) = Fleet::up(3, 23, "c") else {
        return;
    };
    let before = namespaces();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let target = out.with_extension("toml");
    std::fs::write(
        &target,
        format!(
            "[fleet]\nagent = \"{}\"\n",
            assert_cmd::cargo::cargo_bin!("nfvi-verify").display()
        ),
    )
    .unwrap();
    // The CNI suite takes seconds per node: long enough to lose a node in the middle.
    let victim = fleet.node(2);
    let mut run = Command::new(assert_cmd::cargo::cargo_bin!("nfvi-verify"))
        // Tests run side by side: a run's start must not sweep what another test's killed
        // run left for that test to look at.
        .env("NFVI_VERIFY_NO_CLEAN", "1")
        .args([
            "run",
            "--suite",
            "cni",
            "--no-progress",
            "--nodes-parallel",
            "3",
        ])
        .arg("--inventory")
        .arg(fleet.layout.inventory_path())
        .arg("--target")
        .arg(&target)
        .arg("--out")
        .arg(&out)
        .env_remove("CI")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut progress = BufReader::new(run.stderr.take().unwrap()).lines();
    let mut seen = Vec::new();
    for line in progress.by_ref() {
        let line = line.unwrap();
        let mid_run = line.contains(&format!(" on {victim} "));
        seen.push(line);
        if mid_run && seen.iter().filter(|l| l.contains(&victim)).count() >= 10 {
            break;
        }
    }
    nodes::stop_sshd(&fleet.layout, &victim).unwrap();
    seen.extend(progress.map(Result::unwrap));
    let status = run.wait().unwrap();
    let stderr = seen.join("\n");
    assert_eq!(status.code(), Some(3), "{stderr}");
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    let nodes = r["fleet"]["nodes"].as_array().unwrap();
    let verified: Vec<bool> = nodes.iter().map(|n| n["verified"] == true).collect();
    assert_eq!(verified, [true, false, true], "{}", r["fleet"]);
    let lost = checks_on(&r, &victim);
    assert!(
        lost.iter()
            .any(|c| c["outcome"] == "passed" || c["outcome"] == "failed")
    );
    let errors: Vec<&&serde_json::Value> =
        lost.iter().filter(|c| c["outcome"] == "error").collect();
    assert!(
        !errors.is_empty(),
        "the lost node's unfinished checks are errors"
    );
    for c in errors {
        assert_contains(text(c, "message"), &victim);
    }
    // The surviving nodes' checks cleaned up after themselves (they share this machine's
    // namespaces list), and the victim's agent, stopped with its sshd, did too.
    let leaked = leaked_since(&before);
    assert!(leaked.is_empty(), "namespaces left behind: {leaked:?}");
}

#[test]
fn no_password_or_private_key_of_the_inventory_reaches_any_artifact() {
    let Some(fleet) = Fleet::up(1, 24, "d") else {
        return;
    };
    // Secrets an operator's inventory may hold, planted where Ansible reads them.
    let planted = ["Pl4nted-SSH-pass", "Pl4nted-become-pass", "Pl4nted-vault"];
    let inventory = std::fs::read_to_string(fleet.layout.inventory_path()).unwrap();
    let inventory = inventory.replacen(
        "[all:vars]\n",
        &format!(
            "[all:vars]\nansible_ssh_pass={}\nansible_become_password='{}'\nansible_password=\"{}\"\n",
            planted[0], planted[1], planted[2]
        ),
        1,
    );
    assert!(inventory.contains(planted[0]), "{inventory}");
    std::fs::write(fleet.layout.inventory_path(), inventory).unwrap();
    let key = std::fs::read_to_string(fleet.layout.private_key_path()).unwrap();
    let key_body = key.lines().nth(1).expect("a PEM body line").to_owned();

    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let (code, r, stderr) = fleet.run("host", false, &[], &out);
    assert!(matches!(code, 0 | 1), "exit {code}:\n{stderr}");
    assert_eq!(r["fleet"]["nodes"][0]["verified"], true);
    for entry in std::fs::read_dir(&out).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        for secret in planted.iter().copied().chain([key_body.as_str()]) {
            assert!(
                !text.contains(secret),
                "{} holds a planted secret",
                path.display()
            );
        }
    }
    for secret in planted {
        assert!(!stderr.contains(secret), "the console printed a secret");
    }
}

// ---- the cross-node data path between two sshd nodes -----------------------------------------

/// The PIDs of `probe serve` processes bound to an address of `subnet` (`198.19.25.`).
fn responders_on(subnet: &str) -> Vec<String> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let pid = e.file_name().to_string_lossy().into_owned();
            let cmdline = std::fs::read(e.path().join("cmdline")).ok()?;
            let args: Vec<String> = cmdline
                .split(|b| *b == 0)
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect();
            let serving =
                args.iter().any(|a| a == "serve") && args.iter().any(|a| a.starts_with(subnet));
            serving.then_some(pid)
        })
        .collect()
}

#[test]
fn the_cross_node_path_is_measured_between_two_nodes_and_nothing_is_left_running() {
    let Some(fleet) = Fleet::up(2, 25, "x") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    // The agent installed on the nodes (a copy per process is tested in the fleet crate).
    let (code, r, stderr) = fleet.run(
        "datapath",
        false,
        &["--filter", "datapath.fleet.cross-node"],
        &out,
    );
    // 3: filtered to one check, the suite's mandatory requirements go unverified.
    assert!(matches!(code, 0 | 1 | 3), "exit {code}:\n{stderr}");
    let nodes = r["fleet"]["nodes"].as_array().expect("a fleet section");
    assert!(
        nodes.iter().all(|n| n["verified"] == true),
        "{}",
        r["fleet"]
    );
    let c = check(&r, "datapath.fleet.cross-node");
    assert!(c["node"].is_null(), "a check of the whole NFVI: {c}");
    assert!(
        c["outcome"] == "passed" || c["outcome"] == "failed",
        "measured: {c}"
    );
    let (a, b) = (fleet.node(1), fleet.node(2));
    let message = text(c, "message");
    assert_contains(message, "node-to-node p50: same node (");
    assert_contains(message, &format!("cross node ({a} to {b})"));
    let e = &c["evidence"];
    for path in ["same node", "cross node"] {
        let cdf = e["distributions"][path].as_array().expect("a distribution");
        assert_eq!(cdf.len(), 101, "{path}");
        assert!(cdf[50].as_f64().unwrap() > 0.0, "{path}");
    }
    for m in [
        "same-node p50",
        "cross-node p50",
        "same-node p99",
        "cross-node p99",
    ] {
        assert!(e["metrics"][m]["value"].as_f64().unwrap() > 0.0, "{m}: {e}");
    }
    let used = text(&e["properties"], "nodes");
    assert_contains(used, &format!("{a} (198.19.25.11)"));
    assert_contains(used, &format!("{b} (198.19.25.12)"));
    assert_eq!(e["properties"]["transport"], "ssh");
    // Both responders and the client, each on its node, each ended.
    let commands: Vec<&str> = e["commands"]
        .as_array()
        .expect("commands")
        .iter()
        .map(|c| c["command"].as_str().unwrap())
        .collect();
    assert_eq!(commands.len(), 3, "{commands:?}");
    assert!(commands[0].starts_with(&format!(
        "on {a}: nfvi-verify probe serve --bind 198.19.25.11:"
    )));
    assert!(commands[1].starts_with(&format!(
        "on {b}: nfvi-verify probe serve --bind 198.19.25.12:"
    )));
    assert!(commands[2].starts_with(&format!("on {a}: nfvi-verify probe compare 198.19.25.11:")));
    for c in e["commands"].as_array().unwrap() {
        assert_eq!(c["exit_code"], 0, "{c}");
    }
    assert_contains(
        text(&e["commands"][1], "stderr"),
        "nfvi-verify probe: echoed",
    );
    // The processes on the nodes stopped, and the cleanups say so.
    let left = responders_on("198.19.25.");
    assert!(left.is_empty(), "probe serve still running: {left:?}");
    let cleanups = c["cleanup"].as_array().expect("cleanup records");
    assert_eq!(cleanups.len(), 3, "{cleanups:?}");
    assert!(
        cleanups.iter().all(|r| r["error"].is_null()),
        "{cleanups:?}"
    );
    eprintln!(
        "cross-node on the lab nodes: {message}; p99 same {} us, cross {} us",
        e["metrics"]["same-node p99"]["value"], e["metrics"]["cross-node p99"]["value"]
    );
}

#[test]
fn with_one_node_the_cross_node_path_is_not_applicable() {
    let Some(fleet) = Fleet::up(1, 26, "y") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (code, r, stderr) = fleet.run(
        "datapath",
        false,
        &["--filter", "datapath.fleet.cross-node"],
        &dir.path().join("run"),
    );
    assert!(matches!(code, 0 | 1 | 3), "exit {code}:\n{stderr}");
    assert_eq!(r["fleet"]["nodes"][0]["verified"], true, "{}", r["fleet"]);
    let c = check(&r, "datapath.fleet.cross-node");
    assert_eq!(c["outcome"], "skipped", "{c}");
    assert_eq!(c["skip_kind"], "not-applicable", "{c}");
    assert_contains(
        text(c, "message"),
        "a cross-node path needs two verified nodes with an IP address; of the fleet's 1 node(s), 1 qualifies",
    );
    assert!(responders_on("198.19.26.").is_empty());
}
