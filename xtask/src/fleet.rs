//! `cargo xtask bench fleet`: `run --suite host` over 1, 3 and 10 real sshd nodes (network
//! namespaces on this machine, from `nfvi_lab::nodes`), release build, the agent copied to
//! each node and verified by SHA-256 as in a real fleet. Prints the median wall time of each
//! size and its ratio to one node (goals: 3 nodes <= 1.5x, 10 nodes <= 3x).

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use nfvi_lab::nodes::{self, NodesLayout};

use crate::{cargo, ms, repo, run};

/// Takes the nodes down when the bench ends, also on error or panic.
struct Nodes(NodesLayout);

impl Drop for Nodes {
    fn drop(&mut self) {
        if let Err(e) = nodes::down(&self.0, &mut |_| {}) {
            eprintln!("bench: taking the nodes down: {e}");
        }
    }
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

pub fn bench_fleet() -> Result<()> {
    run(cargo().args(["build", "--release", "--quiet", "--package", "nfvi-verify"]))?;
    let bin = repo().join("target/release/nfvi-verify");
    let size = std::fs::metadata(&bin)?.len();
    eprintln!(
        "bench: agent binary {:.1} MiB, copied to every node and checked by SHA-256",
        size as f64 / (1 << 20) as f64
    );
    // The agent as a real fleet gets it (copied, checked by SHA-256), and installed on the
    // nodes (the lab's nodes share this file system, so the release binary is there).
    // A random file created exclusively (0600), never a name someone could plant a link at.
    let mut target = tempfile::Builder::new()
        .prefix("nfvi-bench-fleet-")
        .suffix(".toml")
        .tempfile()?;
    std::io::Write::write_all(
        &mut target,
        format!("[fleet]\nagent = \"{}\"\n", bin.display()).as_bytes(),
    )?;
    let installed = target.path().to_owned();
    let mut rows: Vec<(usize, &str, Duration)> = Vec::new();
    for n in [1usize, 3, 10] {
        // Not under /tmp: sshd's StrictModes refuses keys below a world-writable directory.
        let state = tempfile::Builder::new()
            .prefix("nfvi-bench-fleet-")
            .tempdir_in("/run")?;
        let layout = NodesLayout::private(
            state.path(),
            [198, 19, 20],
            &format!("nfvb{}", std::process::id() % 10_000),
        );
        let guard = Nodes(layout);
        nodes::up(n, &guard.0, &mut |m| eprintln!("bench: {m}")).map_err(|e| anyhow::anyhow!(e))?;
        for mode in ["copy", "installed"] {
            let mut times = Vec::new();
            for round in 0..5 {
                let out = state.path().join(format!("run-{mode}-{round}"));
                let mut cmd = Command::new(&bin);
                cmd.args(["run", "--suite", "host", "--no-progress", "--inventory"])
                    .arg(guard.0.inventory_path())
                    .arg("--out")
                    .arg(&out);
                if mode == "installed" {
                    cmd.arg("--target").arg(&installed);
                }
                let t = Instant::now();
                let status = cmd.stdout(Stdio::null()).stderr(Stdio::null()).status()?;
                let wall = t.elapsed();
                // 0 or 1: the nodes were verified (this machine may fail host checks); 3 is not.
                if !matches!(status.code(), Some(0 | 1)) {
                    bail!(
                        "run --suite host over {n} nodes exited {status}; see {}/nfvi-verify.log",
                        out.display()
                    );
                }
                times.push(wall);
            }
            let m = median(times);
            eprintln!(
                "bench: run --suite host over {n} node(s), agent {mode}: median {:.0} ms of 5",
                ms(m)
            );
            rows.push((n, mode, m));
        }
        drop(guard);
    }
    drop(target);
    let mut missed = false;
    for (n, mode, m) in &rows {
        let one = rows
            .iter()
            .find(|(k, md, _)| *k == 1 && md == mode)
            .map_or(1.0, |r| r.2.as_secs_f64());
        let ratio = m.as_secs_f64() / one;
        let goal = match n {
            1 => None,
            3 => Some(1.5),
            _ => Some(3.0),
        };
        let verdict = match goal {
            None => String::new(),
            Some(g) if ratio <= g => format!(" (goal <= {g}x: met)"),
            Some(g) => {
                missed = true;
                format!(" (goal <= {g}x: MISSED)")
            }
        };
        eprintln!(
            "bench: {n:>2} nodes, agent {mode:<9}: {:>6.0} ms, {ratio:.2}x one node{verdict}",
            ms(*m)
        );
    }
    if missed {
        eprintln!(
            "bench: the lab's nodes share this machine's CPUs: each node's sshd, agent and \
             copy run on the same cores as the others"
        );
    }
    Ok(())
}
