//! CNI-VER: VERSION, version negotiation and per-version result shapes.

use nfvi_harness::Outcome;
use serde_json::{Value, json};

use super::{exec_after, exec_in, expect_error, ipam_or_plugin_conf, only_lo, version_env};
use crate::lab::{Exec, Lab, expect_result};
use crate::result::{validate_result, validate_version};

/// The result of VERSION with `input` as the configuration's cniVersion.
async fn version_result(lab: &Lab<'_>, plugin: &str, input: &str) -> Result<Value, Outcome> {
    let exec = lab
        .exec(
            plugin,
            &version_env("VERSION"),
            &json!({"cniVersion": input}),
        )
        .await;
    expect_result(&exec, "VERSION")
}

pub(crate) async fn supported_versions(
    lab: &Lab<'_>,
    plugin: &str,
) -> Result<Vec<String>, Outcome> {
    Ok(supported_list(&version_result(lab, plugin, "1.0.0").await?))
}

/// The string entries of a VERSION result's `supportedVersions`, in order.
fn supported_list(version_result: &Value) -> Vec<String> {
    version_result
        .get("supportedVersions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str().map(str::to_owned))
        .collect()
}

/// The candidates `supported` does (`listed`) or does not list, in candidate order.
fn filter_listed<'v>(candidates: &[&'v str], supported: &[String], listed: bool) -> Vec<&'v str> {
    candidates
        .iter()
        .copied()
        .filter(|v| supported.iter().any(|s| s == v) == listed)
        .collect()
}

pub(crate) async fn ver_001(lab: &Lab<'_>, plugin: &str) -> Outcome {
    let v = t!(version_result(lab, plugin, "1.0.0").await);
    let problems = validate_version(&v);
    if problems.is_empty() {
        Outcome::pass(format!("supportedVersions {}", v["supportedVersions"]))
            .with_property("version", v)
    } else {
        Outcome::fail(format!(
            "VERSION output does not match the schema: {}",
            problems.join("; ")
        ))
    }
}

pub(crate) async fn ver_002(lab: &Lab<'_>, plugin: &str) -> Outcome {
    let mut seen = Vec::new();
    for input in ["0.4.0", "0.3.1"] {
        seen.push((input, t!(version_result(lab, plugin, input).await)));
    }
    judge_version_echo(&seen)
}

/// VERSION answers with the input's `cniVersion`: (input version, VERSION result) pairs.
fn judge_version_echo(seen: &[(&str, Value)]) -> Outcome {
    let wrong: Vec<String> = seen
        .iter()
        .filter_map(|(input, v)| {
            let echoed = v.get("cniVersion").unwrap_or(&Value::Null);
            (echoed != input).then(|| format!("input {input} -> output cniVersion {echoed}"))
        })
        .collect();
    Outcome::pass_unless_with(wrong, "VERSION echoes the input cniVersion", |wrong| {
        format!("expected the input version echoed: {wrong}")
    })
}

pub(crate) async fn ver_003(lab: &Lab<'_>, plugin: &str) -> Outcome {
    let exec = lab.exec_raw(plugin, &version_env("VERSION"), b"").await;
    let v = t!(expect_result(&exec, "VERSION with empty stdin"));
    Outcome::pass_unless(
        validate_version(&v),
        "VERSION works with only CNI_COMMAND and empty stdin",
    )
}

pub(crate) async fn ver_004(lab: &Lab<'_>, plugin: &str) -> Outcome {
    let supported = t!(supported_versions(lab, plugin).await);
    let mut tries = Vec::new();
    for v in filter_listed(&["1.1.0", "2.0.0"], &supported, false) {
        let ns = t!(lab.netns().await);
        let mut conf = ipam_or_plugin_conf(lab, plugin);
        if plugin == "macvlan" {
            t!(lab.macvlan_master().await);
        }
        conf["cniVersion"] = v.into();
        let exec = exec_in(lab, plugin, "ADD", &ns, &conf).await;
        let left = t!(only_lo(lab, &ns).await);
        tries.push((v, exec, left));
    }
    judge_unsupported_versions(&tries)
}

/// ADD at each unsupported version (version, ADD, links left): code 1 and nothing created.
fn judge_unsupported_versions(tries: &[(&str, Exec, Vec<String>)]) -> Outcome {
    if tries.is_empty() {
        return Outcome::not_applicable(
            "the plugin lists every candidate version (1.1.0, 2.0.0) as supported, so there is none to reject",
        );
    }
    let mut problems = Vec::new();
    for (v, exec, left) in tries {
        if let Err(o) = expect_error(
            exec,
            &format!("ADD at unsupported version {v}"),
            Some(1),
            None,
        ) {
            problems.push(o.message);
        }
        if !left.is_empty() {
            problems.push(format!("ADD at {v} left {left:?}"));
        }
    }
    Outcome::pass_unless(
        problems,
        "unsupported versions rejected with code 1, nothing created",
    )
}

/// One ADD at a supported version: the version, the netns path and what came back.
struct VersionedAdd {
    version: &'static str,
    sandbox: String,
    exec: Exec,
}

pub(crate) async fn ver_005(lab: &Lab<'_>, plugin: &str) -> Outcome {
    let supported = t!(supported_versions(lab, plugin).await);
    let mut adds = Vec::new();
    for v in filter_listed(&["0.3.0", "0.3.1", "0.4.0", "1.0.0"], &supported, true) {
        let ns = t!(lab.netns().await);
        let mut conf = t!(lab.conf_for(plugin).await);
        conf["cniVersion"] = v.into();
        let exec = exec_in(lab, plugin, "ADD", &ns, &conf).await;
        if let Some(r) = exec.json().filter(|_| exec.ok()) {
            let _ = exec_after(lab, plugin, "DEL", &ns, &conf, r).await;
        }
        adds.push(VersionedAdd {
            version: v,
            sandbox: ns.path.clone(),
            exec,
        });
    }
    judge_versioned_results(&adds)
}

/// Each result carries its request's version and matches that version's schema.
fn judge_versioned_results(adds: &[VersionedAdd]) -> Outcome {
    if adds.is_empty() {
        return Outcome::error(
            "the plugin lists none of 0.3.0, 0.3.1, 0.4.0 and 1.0.0 in supportedVersions, so no result was observed",
        );
    }
    let mut problems = Vec::new();
    for a in adds {
        let v = a.version;
        match expect_result(&a.exec, &format!("ADD at {v}")) {
            Ok(r) => {
                for p in validate_result(&r, v, Some(&a.sandbox)) {
                    problems.push(format!("{v}: {p}"));
                }
            }
            Err(o) => problems.push(o.message),
        }
    }
    let tried: Vec<&str> = adds.iter().map(|a| a.version).collect();
    Outcome::pass_unless(
        problems,
        format!(
            "results match the schema of each version: {}",
            tried.join(", ")
        ),
    )
}

pub(crate) async fn ver_006(lab: &Lab<'_>, plugin: &str) -> Outcome {
    let ns = t!(lab.netns().await);
    let mut conf = t!(lab.conf_for(plugin).await);
    conf["cniVersion"] = "0.3.1".into();
    let add = exec_in(lab, plugin, "ADD", &ns, &conf).await;
    let r = t!(expect_result(&add, "ADD at 0.3.1"));
    let check = exec_after(lab, plugin, "CHECK", &ns, &conf, &r).await;
    t!(expect_error(&check, "CHECK at 0.3.1", Some(1), None));
    Outcome::pass("CHECK below 0.4.0 rejected with code 1")
}

/// The newest old version the plugin does not list, if any.
fn unlisted_old_version(supported: &[String]) -> Option<&'static str> {
    filter_listed(&["0.3.1", "0.3.0", "0.2.0", "0.1.0"], supported, false)
        .first()
        .copied()
}

pub(crate) async fn ver_007(lab: &Lab<'_>, plugin: &str) -> Outcome {
    let supported = t!(supported_versions(lab, plugin).await);
    let Some(old) = unlisted_old_version(&supported) else {
        return Outcome::not_applicable(
            "the plugin supports every older version, so there is none to reject",
        );
    };
    let ns = t!(lab.netns().await);
    let conf = json!({"cniVersion": old, "name": "nfvnet-old", "type": plugin,
        "prevResult": {"cniVersion": old, "interfaces": [{"name": "eth0", "sandbox": ns.path}],
                       "ips": [{"version": "4", "interface": 0, "address": "198.18.30.2/24"}]}});
    let exec = exec_in(lab, plugin, "ADD", &ns, &conf).await;
    t!(expect_error(
        &exec,
        &format!("ADD at {old}, which VERSION does not list"),
        Some(1),
        None
    ));
    Outcome::pass(format!(
        "version {old} (not in supportedVersions) rejected with code 1"
    ))
}

pub(crate) async fn ver_008(lab: &Lab<'_>, plugin: &str) -> Outcome {
    let supported = t!(supported_versions(lab, plugin).await);
    let has_11 = supported.iter().any(|s| s == "1.1.0");
    let mut answers = Vec::new();
    for cmd in ["GC", "STATUS"] {
        let conf = json!({"cniVersion": if has_11 { "1.1.0" } else { "1.0.0" }, "name": "nfvnet-gc", "type": plugin,
                          "cni.dev/attachments": [], "cni.dev/valid-attachments": []});
        answers.push((cmd, lab.exec(plugin, &version_env(cmd), &conf).await));
    }
    judge_gc_status(has_11, &answers)
}

/// GC and STATUS succeed when the plugin lists 1.1.0 and fail with a JSON error otherwise.
fn judge_gc_status(has_11: bool, answers: &[(&str, Exec)]) -> Outcome {
    let mut seen = Vec::new();
    let mut problems = Vec::new();
    for (cmd, exec) in answers {
        seen.push(exec.describe());
        let fine = if has_11 {
            exec.ok()
        } else {
            !exec.ok() && exec.json().is_some()
        };
        if !fine {
            problems.push(format!(
                "{cmd}: expected {}; got {}",
                if has_11 {
                    "success (the plugin lists 1.1.0)"
                } else {
                    "a JSON error (the plugin does not list 1.1.0)"
                },
                exec.describe()
            ));
        }
    }
    Outcome::pass_unless(
        problems,
        format!(
            "GC/STATUS answered consistently with supportedVersions: {}",
            seen.join("; ")
        ),
    )
    .with_property("supports 1.1.0", has_11)
}

#[cfg(test)]
mod tests {
    use super::super::testkit::{
        assert_contains, assert_ends_with, assert_starts_with, err, garbage, ok, ok_empty,
    };
    use super::*;
    use nfvi_harness::Status;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn supported_versions_are_the_string_entries() {
        let v = json!({"cniVersion": "1.0.0", "supportedVersions": ["0.3.1", 4, "1.0.0"]});
        assert_eq!(supported_list(&v), ["0.3.1", "1.0.0"]);
        assert!(supported_list(&json!({"cniVersion": "1.0.0"})).is_empty());
    }

    #[test]
    fn version_selection() {
        let skel = strings(&["0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0"]);
        assert_eq!(
            filter_listed(&["1.1.0", "2.0.0"], &skel, false),
            ["1.1.0", "2.0.0"]
        );
        assert_eq!(
            filter_listed(&["0.3.0", "0.4.0", "1.1.0"], &skel, true),
            ["0.3.0", "0.4.0"]
        );
        assert_eq!(unlisted_old_version(&skel), None);
        let modern = strings(&["0.4.0", "1.0.0"]);
        assert_eq!(unlisted_old_version(&modern), Some("0.3.1"));
        assert_eq!(
            unlisted_old_version(&strings(&["0.3.1", "1.0.0"])),
            Some("0.3.0")
        );
    }

    #[test]
    fn version_must_be_echoed() {
        let o = judge_version_echo(&[
            ("0.4.0", json!({"cniVersion": "0.4.0"})),
            ("0.3.1", json!({"cniVersion": "0.3.1"})),
        ]);
        assert_eq!(o.status, Status::Passed);
        let o = judge_version_echo(&[
            ("0.4.0", json!({"cniVersion": "1.0.0"})),
            ("0.3.1", json!({})),
        ]);
        assert_eq!(o.status, Status::Failed);
        assert_eq!(
            o.message,
            "expected the input version echoed: input 0.4.0 -> output cniVersion \"1.0.0\"; input 0.3.1 -> output cniVersion null"
        );
    }

    #[test]
    fn unsupported_versions_need_code_1_and_no_residue() {
        let one = || err(1, json!({"code": 1, "msg": "incompatible CNI versions"}));
        let o = judge_unsupported_versions(&[("1.1.0", one(), vec![]), ("2.0.0", one(), vec![])]);
        assert_eq!(o.status, Status::Passed, "{}", o.message);
        let o = judge_unsupported_versions(&[(
            "2.0.0",
            err(1, json!({"code": 7, "msg": "x"})),
            vec!["eth0".into()],
        )]);
        assert_eq!(o.status, Status::Failed);
        assert_starts_with(
            &o.message,
            "ADD at unsupported version 2.0.0: expected non-zero exit and a JSON error with code 1",
        );
        assert_ends_with(&o.message, "; ADD at 2.0.0 left [\"eth0\"]");
        // Nothing to try (the plugin lists every candidate): not applicable, never a pass.
        let o = judge_unsupported_versions(&[]);
        assert_eq!(
            o.skip_kind(),
            Some(nfvi_harness::SkipKind::NotApplicable),
            "{o:?}"
        );
    }

    #[test]
    fn results_are_judged_by_their_versions_schema() {
        let sandbox = "/run/netns/x";
        let v100 = json!({"cniVersion": "1.0.0", "interfaces": [{"name": "eth0", "sandbox": sandbox}],
                          "ips": [{"interface": 0, "address": "198.18.30.2/24", "gateway": "198.18.30.1"}]});
        let v040 = json!({"cniVersion": "0.4.0", "interfaces": [{"name": "eth0", "sandbox": sandbox}],
                          "ips": [{"version": "4", "interface": 0, "address": "198.18.30.2/24"}]});
        let add = |version, exec| VersionedAdd {
            version,
            sandbox: sandbox.to_owned(),
            exec,
        };
        let o = judge_versioned_results(&[
            add("0.4.0", ok(v040.clone())),
            add("1.0.0", ok(v100.clone())),
        ]);
        assert_eq!(o.status, Status::Passed, "{}", o.message);
        assert_eq!(
            o.message,
            "results match the schema of each version: 0.4.0, 1.0.0"
        );
        // A 1.0.0-shaped result (no ips[].version) returned for a 0.4.0 request.
        let mut downgraded = v100.clone();
        downgraded["cniVersion"] = "0.4.0".into();
        let o = judge_versioned_results(&[add("0.4.0", ok(downgraded))]);
        assert_eq!(o.status, Status::Failed);
        assert_starts_with(&o.message, "0.4.0: ");
        // The 1.0.0 request answered with a 0.4.0 result: wrong version and a stray key.
        let o = judge_versioned_results(&[add("1.0.0", ok(v040))]);
        assert_contains(
            &o.message,
            "cniVersion is \"0.4.0\", expected the request's 1.0.0",
        );
        let o = judge_versioned_results(&[add("0.3.0", garbage(1, None))]);
        assert_starts_with(
            &o.message,
            "ADD at 0.3.0: expected exit 0 and a JSON result",
        );
        // Nothing observed (no listed version tried): an error, never a pass.
        assert_eq!(judge_versioned_results(&[]).status, Status::Error);
    }

    #[test]
    fn gc_and_status_follow_supported_versions() {
        let error = || err(1, json!({"code": 1, "msg": "unsupported"}));
        #[rustfmt::skip]
        let rows = [
            (true, [ok_empty(), ok_empty()], Status::Passed, "GC/STATUS answered consistently"),
            (false, [error(), error()], Status::Passed, "GC/STATUS answered consistently"),
            (true, [ok_empty(), error()], Status::Failed, "STATUS: expected success (the plugin lists 1.1.0)"),
            (false, [ok_empty(), error()], Status::Failed, "GC: expected a JSON error (the plugin does not list 1.1.0)"),
            (false, [garbage(1, None), error()], Status::Failed, "GC: expected a JSON error"),
        ];
        for (has_11, [gc, status], want, needle) in rows {
            let o = judge_gc_status(has_11, &[("GC", gc), ("STATUS", status)]);
            assert_eq!(o.status, want, "{has_11}: {}", o.message);
            assert_starts_with(&o.message, needle);
            assert_eq!(o.evidence.properties["supports 1.1.0"], has_11.to_string());
        }
    }
}
