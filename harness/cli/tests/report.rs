//! The reviewer-first report, as a reviewer meets it: `nfvi-verify report --from` renders a
//! failing RC2 run whose verdict and first deciding failure are on the first screen of a
//! 1366×768 browser window (measured in headless Chromium), and a failing run's terminal
//! summary fits in 25 lines.

mod common;

use std::path::Path;

use common::{chromium, chromium_load_sized, nfvi, require};
use nfvi_integration_tests::synthetic_rc2_failing;

const WIDTH: u32 = 1366;
const HEIGHT: u32 = 768;

/// Measures, in a copy of the report, where the verdict and the first deciding failure end:
/// a script (only in the copy; the report itself has none) writes their bounding boxes'
/// bottoms and the viewport into attributes of `<body>`, which `--dump-dom` shows.
fn measure(browser: &str, report: &Path) -> (f64, f64, String) {
    let html = std::fs::read_to_string(report).unwrap();
    assert!(!html.contains("<script"), "the report itself runs nothing");
    let probe = r#"<script>
(function () {
  var b = document.body;
  var v = document.querySelector('.banner .verdict');
  var f = document.querySelector('table.deciding tr.fold');
  b.setAttribute('data-verdict-bottom', v ? v.getBoundingClientRect().bottom : -1);
  b.setAttribute('data-failure-bottom', f ? f.getBoundingClientRect().bottom : -1);
  b.setAttribute('data-viewport', window.innerWidth + 'x' + window.innerHeight);
})();
</script>"#;
    let copy = tempfile::Builder::new().suffix(".html").tempfile().unwrap();
    std::fs::write(
        copy.path(),
        html.replace("</body>", &format!("{probe}</body>")),
    )
    .unwrap();
    let (dom, _) = chromium_load_sized(browser, copy.path(), Some((WIDTH, HEIGHT)));
    let attr = |name: &str| -> String {
        let at = dom
            .find(&format!("{name}=\""))
            .unwrap_or_else(|| panic!("{name} not set: the probe did not run"));
        let rest = &dom[at + name.len() + 2..];
        rest[..rest.find('"').unwrap()].to_owned()
    };
    (
        attr("data-verdict-bottom").parse().unwrap(),
        attr("data-failure-bottom").parse().unwrap(),
        attr("data-viewport"),
    )
}

#[test]
fn the_verdict_and_the_first_deciding_failure_are_on_the_first_screen() {
    let Some(browser) = chromium() else {
        require("chromium (apt install chromium)", false);
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("results.json");
    std::fs::write(&json, synthetic_rc2_failing().to_json()).unwrap();
    nfvi()
        .args(["report", "--from"])
        .arg(&json)
        .assert()
        .success();
    let report = dir.path().join("report.html");
    let html = std::fs::read_to_string(&report).unwrap();
    assert!(html.contains("<div class=\"verdict\">not conformant</div>"));
    assert!(html.contains(">cni.CNI-VER-002</a>"));
    let (verdict, failure, viewport) = measure(browser, &report);
    eprintln!(
        "viewport {viewport}: verdict bottom {verdict} px, first deciding failure bottom {failure} px"
    );
    // The window is the size asked for, or the measure says nothing. Chromium keeps part of
    // a 1366×768 window for itself (its viewport here is 1366×625, as a desktop browser's on
    // such a screen): both must fit in what the page gets, which is stricter than 768.
    let (w, h) = viewport.split_once('x').unwrap();
    let (w, h): (u32, u32) = (w.parse().unwrap(), h.parse().unwrap());
    assert_eq!(w, WIDTH, "{viewport}");
    assert!(h > 500 && h <= HEIGHT, "{viewport}");
    for (what, bottom) in [("verdict", verdict), ("first deciding failure", failure)] {
        assert!(bottom > 0.0, "{what} not found");
        assert!(
            bottom <= f64::from(h),
            "{what} ends at {bottom} px, below the first screen ({viewport})"
        );
        assert!(bottom <= f64::from(HEIGHT));
    }
    assert!(verdict < failure);
}

/// The lines of the summary a run printed last on stderr: from the blank line before the
/// verdict to the end.
fn summary(stderr: &str) -> Vec<&str> {
    let lines: Vec<&str> = stderr.lines().collect();
    let verdict = lines
        .iter()
        .rposition(|l| {
            ["CONFORMANT", "NOT CONFORMANT", "INCOMPLETE"]
                .iter()
                .any(|v| l.starts_with(&format!("{v}:")) || l.starts_with(&format!("{v} with")))
        })
        .unwrap_or_else(|| panic!("no verdict line: {stderr}"));
    assert_eq!(lines[verdict - 1], "", "a blank line before the verdict");
    lines[verdict - 1..].to_vec()
}

#[test]
fn a_failing_run_prints_its_summary_in_25_lines_deciding_failures_first() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let output = nfvi()
        .args(["run", "--suite", "host", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let code = output.status.code().unwrap();
    let results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    assert_eq!(
        code, 1,
        "this machine fails some mandatory host checks: {stderr}"
    );
    let lines = summary(&stderr);
    eprintln!("{}", lines.join("\n"));
    assert!(
        lines.len() <= 25,
        "{} lines: {}",
        lines.len(),
        lines.join("\n")
    );
    assert!(
        lines[1].starts_with("NOT CONFORMANT: suite host"),
        "{}",
        lines[1]
    );
    assert!(lines[2].contains(" checks: ") && lines[2].contains("mandatory requirements:"));
    // Each deciding failure is there, under its requirement, before the paths.
    let report = lines
        .iter()
        .position(|l| l.starts_with("  report:  "))
        .expect("the report's path");
    assert_eq!(report, lines.len() - 1);
    for c in results["checks"].as_array().unwrap() {
        let deciding = c["outcome"] == "failed" && c["effective_severity"] == "must";
        if deciding {
            let id = c["id"].as_str().unwrap();
            let at = lines
                .iter()
                .position(|l| l.trim_start().starts_with(&format!("{id}:")))
                .unwrap_or_else(|| panic!("{id} missing: {}", lines.join("\n")));
            assert!(at < report);
            let req = c["requirements"][0].as_str().unwrap();
            assert!(
                lines[..at]
                    .iter()
                    .any(|l| l.starts_with(&format!("  failed {req} "))),
                "{id} is not under {req}"
            );
        }
    }
    for path in ["results:", "junit:", "log:", "report:"] {
        assert!(
            lines.iter().any(|l| l.trim_start().starts_with(path)),
            "{path}"
        );
    }
}
