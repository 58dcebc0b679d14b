//! `run --waivers FILE` with the real binary: a waived failure is "waived" (still failed,
//! counted apart, no longer deciding), an expired waiver does not apply and is listed, a
//! waiver that matched nothing is listed, and a bad file is bad input (nothing runs).

mod common;

use common::*;

/// The host suite on this machine, unprivileged: a small VM fails some mandatory checks.
fn host_run(dir: &std::path::Path, waivers: Option<&std::path::Path>) -> (i32, serde_json::Value) {
    let mut cmd = nfvi();
    cmd.args(["run", "--suite", "host", "--no-progress"]);
    if let Some(w) = waivers {
        cmd.arg("--waivers").arg(w);
    }
    run_to(&mut cmd, dir)
}

fn deciding_failures(r: &serde_json::Value) -> Vec<String> {
    r["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| {
            c["outcome"] == "failed"
                && c["effective_severity"] == "must"
                && c.get("waiver").is_none()
        })
        .map(|c| c["id"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn waivers_turn_failing_musts_into_waived_and_expired_ones_do_not() {
    let tmp = tempfile::tempdir().unwrap();
    let (code, first) = host_run(&tmp.path().join("first"), None);
    let failing = deciding_failures(&first);
    assert_eq!(
        code, 1,
        "this machine fails some mandatory host checks: {failing:?}"
    );
    assert!(!failing.is_empty());
    // Waive every deciding failure but the last, whose waiver has expired.
    let (last, rest) = failing.split_last().unwrap();
    let last = last.clone();
    let mut text = String::new();
    for (i, id) in rest.iter().enumerate() {
        text.push_str(&format!(
            "[[waiver]]\nid = \"W-{i}\"\nchecks = [\"{id}\"]\nreason = \"lab VM\"\nowner = \"lab@example.com\"\nticket = \"https://tracker.example.com/LAB-{i}\"\nexpires = 2099-12-31\n\n"
        ));
    }
    text.push_str(&format!(
        "[[waiver]]\nid = \"W-old\"\nchecks = [\"{last}\"]\nreason = \"last year\"\nowner = \"lab\"\nexpires = 2020-01-01\n\n[[waiver]]\nid = \"W-unused\"\nchecks = [\"cni.*\"]\nreason = \"nothing\"\nowner = \"lab\"\nexpires = 2099-12-31\n"
    ));
    let waivers = write_file(tmp.path(), "waivers.toml", &text);
    let (code, second) = host_run(&tmp.path().join("second"), Some(&waivers));
    assert_eq!(code, 1, "the failure under an expired waiver still decides");
    for (i, id) in rest.iter().enumerate() {
        let c = check(&second, id);
        assert_eq!(c["outcome"], "failed", "a waived failure stays failed: {c}");
        assert_eq!(c["waiver"]["id"], format!("W-{i}"));
    }
    assert_eq!(check(&second, &last).get("waiver"), None);
    assert_eq!(deciding_failures(&second), std::slice::from_ref(&last));
    assert_eq!(second["totals"]["waived"], rest.len());
    // Waived failures are counted apart: neither failed nor passed.
    let outcomes = |o: &str| {
        second["checks"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["outcome"] == o)
            .count() as u64
    };
    let t = &second["totals"];
    assert_eq!(
        t["failed"].as_u64().unwrap() + t["waived"].as_u64().unwrap(),
        outcomes("failed")
    );
    assert_eq!(t["passed"].as_u64().unwrap(), outcomes("passed"));
    let uses = second["waivers"]["waivers"].as_array().unwrap();
    let by_id = |id: &str| uses.iter().find(|u| u["id"] == id).unwrap();
    assert_eq!(by_id("W-old")["expired"], true);
    assert_eq!(by_id("W-old")["expired_for"][0], last.as_str());
    assert_eq!(by_id("W-unused")["applied_to"].as_array().unwrap().len(), 0);
    // The file as used is kept with the results, and so is the resolved target.
    let kept = std::fs::read_to_string(tmp.path().join("second/waivers.toml")).unwrap();
    assert_eq!(kept, text);
    assert!(tmp.path().join("second/target.toml").exists());
    assert!(second["certification"]["certifiable"].as_bool().unwrap());

    // With the expired one renewed, the run is conformant with waivers... unless something
    // else fails; either way the last failure no longer decides.
    let renewed = text.replace("expires = 2020-01-01", "expires = 2099-12-31");
    let waivers = write_file(tmp.path(), "renewed.toml", &renewed);
    let (_, third) = host_run(&tmp.path().join("third"), Some(&waivers));
    assert!(
        deciding_failures(&third).is_empty(),
        "{:?}",
        deciding_failures(&third)
    );
    assert_eq!(third["totals"]["waived"], failing.len());
    assert_ne!(third["verdict"], "non-conformant");
}

#[test]
fn a_bad_waivers_file_is_bad_input_and_nothing_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let waivers = write_file(
        tmp.path(),
        "waivers.toml",
        "[[waiver]]\nchecks = [\"host.*\"]\nreason = \"r\"\nowner = \"o\"\nexpires = \"next year\"\n",
    );
    let out = tmp.path().join("out");
    assert_bad_input(
        nfvi()
            .args(["run", "--suite", "host", "--waivers"])
            .arg(&waivers)
            .arg("--out")
            .arg(&out),
        "waivers.toml:5:",
    );
    assert!(!out.exists(), "nothing is written for bad input");
    assert_bad_input(
        nfvi()
            .args(["run", "--suite", "host", "--waivers"])
            .arg(tmp.path().join("missing.toml")),
        "cannot read the waivers file",
    );
}

#[test]
fn a_run_selected_by_hand_is_recorded_as_not_certifiable() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, r) = run_to(
        nfvi().args([
            "run",
            "--suite",
            "host",
            "--no-progress",
            "--filter",
            "host.kernel.*",
            "--timeout",
            "30",
        ]),
        &tmp.path().join("out"),
    );
    assert_eq!(r["certification"]["certifiable"], false);
    let reasons = r["certification"]["reasons"].to_string();
    assert_contains(&reasons, "--filter host.kernel.*");
    assert_contains(&reasons, "--timeout 30");
    assert_eq!(r["conditions"]["timeout_override"], 30);
}

#[test]
fn verify_recomputes_the_waivers_of_a_bundle_and_reports_applied_and_expired_ones() {
    if !require(
        "ssh-keygen (openssh-client)",
        std::path::Path::new("/usr/bin/ssh-keygen").exists(),
    ) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (_, first) = host_run(&tmp.path().join("first"), None);
    let failing = deciding_failures(&first);
    let (last, rest) = failing
        .split_last()
        .expect("this machine fails mandatory host checks");
    let mut text = String::new();
    for id in rest {
        text.push_str(&format!(
            "[[waiver]]\nchecks = [\"{id}\"]\nreason = \"lab VM\"\nowner = \"lab\"\nexpires = 2099-12-31\n\n"
        ));
    }
    text.push_str(&format!(
        "[[waiver]]\nid = \"W-old\"\nchecks = [\"{last}\"]\nreason = \"last year\"\nowner = \"lab\"\nexpires = 2020-01-01\n"
    ));
    let waivers = write_file(tmp.path(), "waivers.toml", &text);
    let run = tmp.path().join("run");
    host_run(&run, Some(&waivers));
    let (key, signers) = signing_key(tmp.path(), "lab@example.com");
    let bundle = tmp.path().join("B.tar.gz");
    bundle_run(&run, &key, &bundle);
    let out = nfvi()
        .arg("verify")
        .arg(&bundle)
        .arg("--allowed-signers")
        .arg(&signers)
        .assert()
        .code(1);
    let text = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    assert_contains(&text, "waiver-1 waived");
    assert_contains(
        &text,
        &format!("W-old EXPIRED on 2020-01-01: did not excuse {last}"),
    );
    assert_contains(&text, "VALID BUT NOT CERTIFIABLE");
    assert!(!text.contains("TAMPERED"), "{text}");
}
