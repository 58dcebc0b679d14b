//! `report --from DIR` and `run --resume DIR` on the journal a killed run leaves: the journal
//! is made here from a finished run of the host suite (its header, the first results and a
//! last line cut short, as SIGKILL leaves it), so these tests need neither root nor luck
//! with timing (harness/cli/tests/crash.rs kills real runs).

mod common;

use std::path::{Path, PathBuf};

use common::*;

fn fnv(text: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

struct Killed {
    _tmp: tempfile::TempDir,
    target: PathBuf,
    dir: PathBuf,
    full: serde_json::Value,
    journal: String,
}

/// A finished host run's results, turned into the directory of the same run killed after
/// `keep` checks.
fn killed_after(keep: usize, edit_header: impl FnOnce(&mut serde_json::Value)) -> Killed {
    let tmp = tempfile::tempdir().unwrap();
    let target = write_file(tmp.path(), "target.toml", "name = \"resume-test\"\n");
    let (_, full) = run_to(
        nfvi()
            .args(["run", "--suite", "host", "--no-progress", "--target"])
            .arg(&target),
        &tmp.path().join("full"),
    );
    let resolved = stdout_text(nfvi().args(["target", "--check"]).arg(&target));
    let mut header = full.clone();
    header["checks"] = serde_json::json!([]);
    header["complete"] = true.into();
    header["journal"] = serde_json::json!({
        "target_fingerprint": fnv(&resolved),
        "filters": [],
        "skips": [],
    });
    edit_header(&mut header);
    let mut journal = format!("{header}\n");
    for c in &full["checks"].as_array().unwrap()[..keep] {
        journal.push_str(&format!("{c}\n"));
    }
    // The line the kill cut short.
    journal.push_str("{\"id\":\"host.");
    let dir = tmp.path().join("killed");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("results.journal"), &journal).unwrap();
    Killed {
        _tmp: tmp,
        target,
        dir,
        full,
        journal,
    }
}

fn ids(r: &serde_json::Value) -> Vec<String> {
    let mut v: Vec<String> = r["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_owned())
        .collect();
    v.sort();
    v
}

fn read(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("results.json")).unwrap()).unwrap()
}

#[test]
fn a_killed_run_renders_from_its_directory_and_resumes_to_a_complete_run() {
    let k = killed_after(3, |_| {});
    let said = nfvi()
        .args(["report", "--from"])
        .arg(&k.dir)
        .assert()
        .success();
    assert_contains(
        &String::from_utf8_lossy(&said.get_output().stderr),
        "interrupted (killed)",
    );
    let partial = read(&k.dir);
    assert_eq!(partial["complete"], false);
    assert_eq!(partial["cancel_reason"], "killed");
    assert_eq!(partial["checks"].as_array().unwrap().len(), 3);
    assert!(k.dir.join("report.html").exists());

    let out = nfvi()
        .args(["run", "--no-progress", "--resume"])
        .arg(&k.dir)
        .arg("--target")
        .arg(&k.target)
        .assert();
    let code = out.get_output().status.code().unwrap();
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!([0, 1, 3].contains(&code), "{code}: {stderr}");
    assert_contains(&stderr, "3 results carried over");
    let r = read(&k.dir);
    assert_eq!(r["complete"], true);
    assert_eq!(r["schema_version"], 5);
    assert_eq!(r["resumed_from"]["carried_over"], 3);
    assert_eq!(r["run_id"], k.full["run_id"], "the same run, finished");
    assert_eq!(ids(&r), ids(&k.full), "every planned check once");
    for c in &k.full["checks"].as_array().unwrap()[..3] {
        let now = r["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["id"] == c["id"])
            .unwrap();
        assert_eq!(now, c, "carried over verbatim");
    }
    assert!(
        !k.dir.join("results.journal").exists(),
        "the journal served"
    );
    assert!(k.dir.join("junit.xml").exists());

    // Finished: nothing to resume.
    assert_bad_input(
        nfvi()
            .args(["run", "--resume"])
            .arg(&k.dir)
            .arg("--target")
            .arg(&k.target),
        "the run finished",
    );
}

#[test]
fn a_resume_that_differs_from_the_killed_run_is_refused_naming_what_differs() {
    let k = killed_after(2, |_| {});
    let resume = || {
        let mut cmd = nfvi();
        cmd.args(["run", "--no-progress", "--resume"]).arg(&k.dir);
        cmd
    };
    assert_bad_input(
        resume()
            .arg("--target")
            .arg(&k.target)
            .args(["--suite", "cni"]),
        "the suite: `host` then, `cni` now",
    );
    assert_bad_input(
        resume()
            .arg("--target")
            .arg(&k.target)
            .args(["--filter", "host.kernel.*"]),
        "the filters: [] then, [\"host.kernel.*\"] now",
    );
    let other = write_file(k.dir.parent().unwrap(), "other.toml", "name = \"other\"\n");
    assert_bad_input(resume().arg("--target").arg(&other), "the target: `");
    assert_bad_input(&mut resume(), "now (give the same --target and area flags");
    // Nothing ran or was written.
    assert!(!k.dir.join("results.json").exists());
    assert_eq!(
        std::fs::read_to_string(k.dir.join("results.journal")).unwrap(),
        k.journal
    );

    let old = killed_after(2, |h| h["tool"]["version"] = "0.0.1".into());
    assert_bad_input(
        nfvi()
            .args(["run", "--resume"])
            .arg(&old.dir)
            .arg("--target")
            .arg(&old.target),
        "the tool: nfvi-verify 0.0.1",
    );
    let empty = tempfile::tempdir().unwrap();
    assert_bad_input(
        nfvi().args(["run", "--resume"]).arg(empty.path()),
        "no results.journal there",
    );
    assert_bad_input(
        nfvi().args(["report", "--from"]).arg(empty.path()),
        "neither a results.json nor a results.journal",
    );
}

#[test]
fn a_resume_without_target_takes_the_killed_runs_own() {
    let k = killed_after(2, |_| {});
    // What a run keeps beside its results: the target as it resolved it.
    let resolved = stdout_text(nfvi().args(["target", "--check"]).arg(&k.target));
    std::fs::write(k.dir.join("target.toml"), &resolved).unwrap();
    let out = nfvi()
        .args(["run", "--no-progress", "--resume"])
        .arg(&k.dir)
        .assert();
    let code = out.get_output().status.code().unwrap();
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!([0, 1, 3].contains(&code), "{code}: {stderr}");
    assert_contains(&stderr, "resuming with the killed run's target");
    assert_contains(&stderr, "2 results carried over");
    assert_eq!(read(&k.dir)["complete"], true);
}
