//! Renders N synthetic results into results.json, junit.xml, report.html and badge.svg in a
//! temporary directory and prints the wall time and the process's peak RSS. `cargo xtask
//! bench` runs it to check the 1 s / 200 MiB goal for 10,000 results.

use std::time::Instant;

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(10_000);
    let dir = std::env::temp_dir().join(format!("nfvi-render-synthetic-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let t0 = Instant::now();
    let results = nfvi_integration_tests::synthetic_results(n);
    let built = t0.elapsed();
    let t1 = Instant::now();
    nfvi_reports::write_artifacts(&results, &nfvi_reports::Artifacts::in_dir(&dir))
        .expect("write artifacts");
    let rendered = t1.elapsed();
    let size = |f: &str| std::fs::metadata(dir.join(f)).map(|m| m.len()).unwrap_or(0);
    println!(
        "bench: {n} results: plan+assemble {:.0} ms, render+write JSON/JUnit/HTML {:.0} ms, total {:.0} ms; peak RSS {:.1} MiB; results.json {:.1} MiB, junit.xml {:.1} MiB, report.html {:.1} MiB (goal: < 1000 ms, < 200 MiB)",
        built.as_secs_f64() * 1e3,
        rendered.as_secs_f64() * 1e3,
        (built + rendered).as_secs_f64() * 1e3,
        peak_rss_kib() as f64 / 1024.0,
        size("results.json") as f64 / 1048576.0,
        size("junit.xml") as f64 / 1048576.0,
        size("report.html") as f64 / 1048576.0,
    );
    let _ = std::fs::remove_dir_all(&dir);
}
