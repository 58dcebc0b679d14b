//! The data-path area as a user meets it: the whole suite on this machine with a short
//! measurement, `nfvi-verify probe` between two namespaces made by hand, and bad SLA input.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::{assert_bad_input, is_root, nfvi, require, temp_file};

fn ip(args: &[&str]) {
    let ok = Command::new("ip")
        .args(args)
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "ip {args:?} failed");
}

/// Namespaces this test made, deleted on drop.
struct Namespaces(Vec<String>);

impl Drop for Namespaces {
    fn drop(&mut self) {
        for n in &self.0 {
            let _ = Command::new("ip").args(["netns", "del", n]).status();
        }
    }
}

fn our_namespaces() -> Vec<String> {
    let out = Command::new("ip").args(["netns", "list"]).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| n.starts_with("nfvd"))
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_datapath_suite_runs_and_reports_the_comparison() {
    if !require("root for network namespaces", is_root()) {
        return;
    }
    // A short measurement: the statistics still apply, the interval is just wider.
    let (dir, target) = temp_file(
        "quick.toml",
        "[datapath]\nblock_probes = 3000\nrounds = 3\nwarmup = 300\nnoise_cv_limit = 5.0\n",
    );
    let out = dir.path().join("run");
    let before = our_namespaces();
    let assert = nfvi()
        .args(["run", "--suite", "datapath", "--target"])
        .arg(&target)
        .arg("--out")
        .arg(&out)
        .assert();
    let code = assert.get_output().status.code().unwrap();
    assert!(
        [0, 1, 3].contains(&code),
        "{}",
        String::from_utf8_lossy(&assert.get_output().stderr)
    );
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    let checks = r["checks"].as_array().unwrap();
    assert_eq!(checks.len(), 14);
    // Without a fleet there is no second node: the cross-node path does not apply.
    let cross = checks
        .iter()
        .find(|c| c["id"] == "datapath.fleet.cross-node")
        .unwrap();
    assert_eq!(cross["outcome"], "skipped", "{cross}");
    assert_eq!(cross["skip_kind"], "not-applicable", "{cross}");
    assert!(
        cross["message"]
            .as_str()
            .unwrap()
            .starts_with("the run verifies no fleet"),
        "{cross}"
    );
    for c in checks.iter().filter(|c| {
        c["id"] != "datapath.latency.macvlan-vs-bridge" && c["id"] != "datapath.fleet.cross-node"
    }) {
        assert_eq!(c["outcome"], "passed", "{}: {}", c["id"], c["message"]);
    }
    let lat = checks
        .iter()
        .find(|c| c["id"] == "datapath.latency.macvlan-vs-bridge")
        .unwrap();
    assert_eq!(lat["outcome"], "passed", "{}", lat["message"]);
    let m = &lat["evidence"]["metrics"];
    for key in [
        "loopback.p50",
        "macvlan.p50",
        "bridge.p50",
        "ptp.p50",
        "macvlan-minus-bridge",
        "macvlan-minus-bridge.ci95-low",
        "macvlan-minus-bridge.ci95-high",
    ] {
        assert!(m[key]["value"].is_number(), "{key} missing");
    }
    assert!(
        m["macvlan-minus-bridge.ci95-low"]["value"].as_f64()
            <= m["macvlan-minus-bridge.ci95-high"]["value"].as_f64()
    );
    assert_eq!(
        lat["evidence"]["distributions"]["bridge"]
            .as_array()
            .unwrap()
            .len(),
        101
    );
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.contains("Cumulative distribution of RTT per path"));
    assert_eq!(our_namespaces(), before, "the suite left namespaces behind");
}

#[test]
fn probe_serve_and_ping_between_hand_made_namespaces() {
    if !require("root for network namespaces", is_root()) {
        return;
    }
    let tag = format!("nfvt{}", std::process::id());
    let (a, b) = (format!("{tag}a"), format!("{tag}b"));
    let _guard = Namespaces(vec![a.clone(), b.clone()]);
    ip(&["netns", "add", &a]);
    ip(&["netns", "add", &b]);
    ip(&[
        "-n", &a, "link", "add", "eth0", "type", "veth", "peer", "name", "eth1", "netns", &b,
    ]);
    ip(&["-n", &a, "addr", "add", "198.18.70.1/24", "dev", "eth0"]);
    ip(&["-n", &b, "addr", "add", "198.18.70.2/24", "dev", "eth1"]);
    ip(&["-n", &a, "link", "set", "eth0", "up"]);
    ip(&["-n", &b, "link", "set", "eth1", "up"]);
    let bin = assert_cmd::cargo::cargo_bin!("nfvi-verify");
    let mut server = Command::new("ip")
        .args(["netns", "exec", &b])
        .arg(bin)
        .args(["probe", "serve", "--bind", "198.18.70.2:17999"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let out = Command::new("ip")
        .args(["netns", "exec", &a])
        .arg(bin)
        .args([
            "probe",
            "ping",
            "198.18.70.2:17999",
            "--count",
            "2000",
            "--warmup",
            "100",
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    // SIGINT to the server we started (by PID), which then reports and exits 0.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(server.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let status = server.wait().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["summary"]["count"], 2000);
    assert_eq!(v["summary"]["lost"], 0);
    assert!(v["summary"]["p50_us"].as_f64().unwrap() > 0.0);
    assert!(v["summary"]["p50_us"].as_f64() <= v["summary"]["p99_us"].as_f64());
    assert!(
        status.success(),
        "the server did not exit cleanly on SIGINT"
    );
}

#[test]
fn bad_sla_input_is_refused_with_its_line() {
    let (_dir, target) = temp_file(
        "sla.toml",
        "name = \"lab\"\n\n[datapath.sla.macvlan]\np50_us = 50.0\np99_us = 10.0\n",
    );
    assert_bad_input(
        nfvi()
            .args(["list", "--suite", "datapath", "--target"])
            .arg(&target),
        format!(
            "{}:3:1: datapath.sla.macvlan: p99_us (10) is below p50_us (50)",
            target.display()
        ),
    );
    nfvi()
        .args(["probe", "ping", "198.18.70.2:1", "--duration", "-3s"])
        .assert()
        .code(2);
}

#[test]
fn probe_compare_reports_paired_rounds_and_distributions_of_two_responders() {
    // Two responders on loopback: what the in-cluster client pod runs, minus the cluster.
    let bin = assert_cmd::cargo::cargo_bin!("nfvi-verify");
    let ports: Vec<u16> = (0..2)
        .map(|_| {
            std::net::UdpSocket::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port()
        })
        .collect();
    let mut servers: Vec<_> = ports
        .iter()
        .map(|p| {
            Command::new(bin)
                .args(["probe", "serve", "--bind", &format!("127.0.0.1:{p}")])
                .stderr(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let out = Command::new(bin)
        .args([
            "probe",
            "compare",
            &format!("127.0.0.1:{}", ports[0]),
            &format!("127.0.0.1:{}", ports[1]),
        ])
        .args([
            "--rounds", "4", "--block", "300", "--warmup", "50", "--format", "json",
        ])
        .output()
        .unwrap();
    for s in &mut servers {
        let _ = s.kill();
        let _ = s.wait();
    }
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for key in [
        "first_p50_us",
        "second_p50_us",
        "first_p99_us",
        "second_p99_us",
    ] {
        let series = v[key].as_array().unwrap();
        assert_eq!(series.len(), 4, "{key}");
        assert!(
            series.iter().all(|x| x.as_f64().unwrap() > 0.0),
            "{key}: {series:?}"
        );
    }
    for key in ["first_cdf_us", "second_cdf_us"] {
        let cdf: Vec<f64> = v[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect();
        assert_eq!(cdf.len(), 101, "{key}");
        assert!(
            cdf.windows(2).all(|w| w[0] <= w[1]),
            "{key} is not monotone"
        );
    }
    assert_eq!(v["lost"], serde_json::json!([0, 0]));
    // Bad input is refused with exit 2.
    assert_bad_input(
        nfvi().args([
            "probe",
            "compare",
            "127.0.0.1:1",
            "127.0.0.1:2",
            "--rounds",
            "0",
        ]),
        "invalid value '0' for '--rounds <ROUNDS>': 0 is out of range: expected 1 to 100000",
    );
}
