//! `cargo xtask bench cni-fuzz`: the `cni-fuzz` suite against the installed plugins (release
//! build, seed 1, the default budget), and the figure the issue sets a goal for: plugin
//! invocations per second (at least 100 on a 2-CPU machine), overall and per plugin, from the
//! campaign's own metrics in results.json.

use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Result, bail};

use super::{cargo, repo, run};

pub(crate) fn bench_cni_fuzz() -> Result<()> {
    run(cargo().args(["build", "--release", "--quiet", "--package", "nfvi-verify"]))?;
    let scratch = tempfile::Builder::new()
        .prefix("nfvi-bench-cni-fuzz-")
        .tempdir()?;
    let out = scratch.path().join("run");
    let t = Instant::now();
    let status = Command::new(repo().join("target/release/nfvi-verify"))
        .args([
            "run",
            "--suite",
            "cni-fuzz",
            "--seed",
            "1",
            "--no-progress",
            "--out",
        ])
        .arg(&out)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()?;
    let wall = t.elapsed().as_secs_f64();
    if !matches!(status.code(), Some(0 | 1 | 3)) {
        bail!("the cni-fuzz run did not complete ({status})");
    }
    let results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json"))?)?;
    let (mut calls, mut secs, mut findings) = (0.0, 0.0, 0.0);
    for c in results["checks"].as_array().into_iter().flatten() {
        let m = &c["evidence"]["metrics"];
        let (Some(n), Some(rate)) = (
            m["invocations"]["value"].as_f64(),
            m["invocations per second"]["value"].as_f64(),
        ) else {
            continue;
        };
        calls += n;
        secs += if rate > 0.0 { n / rate } else { 0.0 };
        findings += m["findings"]["value"].as_f64().unwrap_or(0.0);
        eprintln!(
            "bench: {:<22} {n:>6.0} invocations, {rate:>5.0}/s, {} finding(s)",
            c["id"].as_str().unwrap_or("?"),
            m["findings"]["value"].as_f64().unwrap_or(0.0)
        );
    }
    let rate = if secs > 0.0 { calls / secs } else { 0.0 };
    eprintln!(
        "bench: cni-fuzz: {calls:.0} plugin invocations in {secs:.1} s of fuzzing, {rate:.0}/s (goal >= 100/s); {findings:.0} finding(s); {wall:.1} s wall with shrinking"
    );
    Ok(())
}
