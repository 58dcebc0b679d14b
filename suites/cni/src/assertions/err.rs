//! CNI-ERR: how failures are reported: exit code, the error object on stdout, its keys and
//! its code.

use std::collections::BTreeMap;

use nfvi_harness::Outcome;
use serde_json::json;

use super::{cid, exec_as, exec_in, ipam_conf, meta_conf, version_env};
use crate::lab::{Exec, Lab, Netns, Stdout};
use crate::result::{validate_error, well_known_code};

/// A fixed set of invocations that must fail (bad command, missing variables, malformed
/// config, unsupported version, unusable netns), plus successful ones.
async fn error_corpus(lab: &Lab<'_>, plugin: &str) -> Result<Vec<Exec>, Outcome> {
    let ns = lab.netns().await?;
    let conf = match plugin {
        "host-local" | "static" => ipam_conf(lab, plugin, 3),
        "bridge" | "macvlan" | "ptp" | "loopback" => lab.conf_for(plugin).await?,
        _ => meta_conf(lab, plugin),
    };
    let mut out = Vec::new();
    out.push(exec_in(lab, plugin, "FROB", &ns, &conf).await);
    let mut env = lab.env("ADD", &ns, &cid(lab), "eth0");
    env.container_id = None;
    out.push(lab.exec(plugin, &env, &conf).await);
    out.push(
        lab.exec_raw(
            plugin,
            &lab.env("ADD", &ns, &cid(lab), "eth0"),
            b"{\"cniVersion\":",
        )
        .await,
    );
    let mut v = conf.clone();
    v["cniVersion"] = "9.9.9".into();
    out.push(exec_in(lab, plugin, "ADD", &ns, &v).await);
    let ghost = Netns {
        name: "nfvghost".into(),
        path: "/run/netns/nfvghost".into(),
    };
    out.push(exec_in(lab, plugin, "ADD", &ghost, &conf).await);
    out.push(
        lab.exec(
            plugin,
            &version_env("VERSION"),
            &json!({"cniVersion": "1.0.0"}),
        )
        .await,
    );
    out.push(exec_as(lab, plugin, "DEL", &ns, "nfvnever", &conf).await);
    Ok(out)
}

pub(crate) async fn err_001(lab: &Lab<'_>, plugin: &str) -> Outcome {
    judge_error_exits(&t!(error_corpus(lab, plugin).await))
}

/// What the corpus must show before anything about failures can be judged: every
/// invocation ran to an exit (a plugin that could not be started shows nothing about its
/// error reporting), and at least one failed, with an error object when `objects` is asked
/// (a check of error objects over none would pass on nothing).
fn corpus_observed(corpus: &[Exec], objects: bool) -> Result<(), Outcome> {
    if let Some(o) = corpus.iter().find_map(super::not_run) {
        return Err(o);
    }
    // A failure shows as a non-zero exit or as an error object (CNI-ERR-001 also judges
    // an error object printed with exit 0).
    let is_error_obj = |e: &Exec| e.json().is_some_and(|v| v.get("code").is_some());
    if !corpus.iter().any(|e| !e.ok() || is_error_obj(e)) {
        return Err(Outcome::error(format!(
            "none of the {} invocations of the error corpus failed, so nothing was observed about failures",
            corpus.len()
        )));
    }
    let failures: Vec<&Exec> = corpus.iter().filter(|e| !e.ok()).collect();
    if objects && !failures.iter().any(|e| e.json().is_some()) {
        return Err(Outcome::error(format!(
            "none of the {} failures printed a JSON document, so there is no error object to judge (CNI-ERR-001 reports the missing objects)",
            failures.len()
        )));
    }
    Ok(())
}

/// Failures exit non-zero with a JSON error object on stdout, and only failures print one.
fn judge_error_exits(corpus: &[Exec]) -> Outcome {
    t!(corpus_observed(corpus, false));
    let bad: Vec<String> = corpus
        .iter()
        .filter(|e| {
            let is_error_obj = e.json().is_some_and(|v| v.get("code").is_some());
            (!e.ok() && !is_error_obj) || (e.ok() && is_error_obj)
        })
        .map(Exec::describe)
        .collect();
    Outcome::pass_unless_with(
        bad,
        format!(
            "{} invocations: every failure exited non-zero with a JSON error on stdout",
            corpus.len()
        ),
        |bad| {
            format!(
                "expected non-zero exit with a JSON error object on stdout for failures only: {bad}"
            )
        },
    )
}

pub(crate) async fn err_002(lab: &Lab<'_>, plugin: &str) -> Outcome {
    judge_error_objects(&t!(error_corpus(lab, plugin).await))
}

/// Every error object on the stdout of a failure carries `cniVersion`, an integer `code` and
/// a `msg`.
fn judge_error_objects(corpus: &[Exec]) -> Outcome {
    t!(corpus_observed(corpus, true));
    let mut p = Vec::new();
    for e in corpus.iter().filter(|e| !e.ok()) {
        if let Some(v) = e.json() {
            let mut issues = validate_error(v);
            if v.get("cniVersion").is_none() {
                issues.push("no cniVersion".to_owned());
            }
            if !issues.is_empty() {
                p.push(format!("{} {}: {}", e.command, v, issues.join(", ")));
            }
        }
    }
    Outcome::pass_unless_with(
        p,
        "every error object carries cniVersion, an integer code and msg",
        |p| format!("error objects lacking required keys: {p}"),
    )
}

pub(crate) async fn err_003(lab: &Lab<'_>, plugin: &str) -> Outcome {
    judge_error_codes(&t!(error_corpus(lab, plugin).await))
}

/// Codes below 100 are reserved: each must be a well-known one. The codes seen are kept as a
/// histogram.
fn judge_error_codes(corpus: &[Exec]) -> Outcome {
    t!(corpus_observed(corpus, true));
    let mut histogram = BTreeMap::new();
    let mut p = Vec::new();
    for e in corpus.iter().filter(|e| !e.ok()) {
        if let Some(code) = e.code() {
            *histogram.entry(code).or_insert(0u32) += 1;
            if code < 100 && well_known_code(code).is_none() {
                p.push(format!(
                    "code {code} is in the reserved range 1-99 but has no well-known meaning ({})",
                    e.msg()
                ));
            }
        }
    }
    let hist = histogram
        .iter()
        .map(|(c, n)| format!("{c}:{n}"))
        .collect::<Vec<_>>()
        .join(" ");
    Outcome::pass_unless(p, format!("codes seen: {hist}")).with_property("code histogram", hist)
}

pub(crate) async fn err_004(lab: &Lab<'_>, plugin: &str) -> Outcome {
    judge_stdout_documents(&t!(error_corpus(lab, plugin).await))
}

/// stdout is empty or exactly one JSON document, every time.
fn judge_stdout_documents(corpus: &[Exec]) -> Outcome {
    if corpus.is_empty() {
        return Outcome::error("the error corpus is empty: nothing observed");
    }
    if let Some(o) = corpus.iter().find_map(super::not_run) {
        return o;
    }
    let bad: Vec<String> = corpus
        .iter()
        .filter(|e| matches!(e.stdout, Stdout::Garbage(_)))
        .map(Exec::describe)
        .collect();
    Outcome::pass_unless(
        bad,
        format!(
            "{} invocations: stdout was empty or one JSON document each time",
            corpus.len()
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::super::testkit::{err, garbage, garbage_not_started, named, ok, ok_empty};
    use super::*;
    use nfvi_harness::Status;

    fn skel_error(code: u64) -> Exec {
        err(1, json!({"code": code, "msg": "m"}))
    }

    fn full_error(code: u64) -> Exec {
        err(1, json!({"cniVersion": "1.0.0", "code": code, "msg": "m"}))
    }

    #[test]
    fn failures_and_only_failures_print_error_objects() {
        let version = ok(json!({"cniVersion": "1.0.0", "supportedVersions": ["1.0.0"]}));
        let good = [skel_error(4), version.clone(), ok_empty()];
        assert_eq!(
            judge_error_exits(&good).message,
            "3 invocations: every failure exited non-zero with a JSON error on stdout"
        );
        #[rustfmt::skip]
        let rows = [
            ("failure with empty stdout", garbage(1, None)),
            ("failure with text", garbage(1, Some("panic: x"))),
            ("failure with a result", err(1, json!({"cniVersion": "1.0.0"}))),
            ("success with an error object", ok(json!({"code": 4, "msg": "x"}))),
        ];
        for (name, bad) in rows {
            let o = judge_error_exits(&[skel_error(4), bad]);
            assert_eq!(o.status, Status::Failed, "{name}");
            assert!(o.message.starts_with("expected non-zero exit with a JSON error object on stdout for failures only: bridge ADD"), "{name}: {}", o.message);
        }
    }

    #[test]
    fn error_objects_need_version_code_and_msg() {
        assert_eq!(
            judge_error_objects(&[full_error(4), ok(json!({})), garbage(1, None)]).status,
            Status::Passed
        );
        let o = judge_error_objects(&[named(skel_error(4), "FROB", "")]);
        assert_eq!(
            o.message,
            "error objects lacking required keys: FROB {\"code\":4,\"msg\":\"m\"}: no cniVersion"
        );
        let o = judge_error_objects(&[err(1, json!({"cniVersion": "1.0.0", "code": "4"}))]);
        assert_eq!(o.status, Status::Failed);
        assert!(!o.message.contains("no cniVersion"), "{}", o.message);
    }

    #[test]
    fn reserved_codes_must_be_well_known() {
        let o = judge_error_codes(&[
            skel_error(4),
            skel_error(4),
            skel_error(7),
            skel_error(999),
            ok(json!({"code": 12})),
        ]);
        assert_eq!(o.status, Status::Passed, "{}", o.message);
        assert_eq!(o.message, "codes seen: 4:2 7:1 999:1");
        assert_eq!(o.evidence.properties["code histogram"], "4:2 7:1 999:1");
        let o = judge_error_codes(&[skel_error(12), skel_error(100)]);
        assert_eq!(
            o.message,
            "code 12 is in the reserved range 1-99 but has no well-known meaning (m)"
        );
        assert_eq!(o.evidence.properties["code histogram"], "12:1 100:1");
        assert_eq!(
            judge_error_codes(&[skel_error(50), skel_error(11)]).status,
            Status::Passed
        );
    }

    /// Every judge of the corpus errors when nothing was observed: an empty corpus, a plugin
    /// that never ran, no failure at all, or failures without any error object.
    #[test]
    fn nothing_observed_is_an_error_for_every_judge() {
        let version = ok(json!({"cniVersion": "1.0.0", "supportedVersions": ["1.0.0"]}));
        #[rustfmt::skip]
        let rows: Vec<(&str, Vec<Exec>, [bool; 4])> = vec![
            // (judged by ERR-001, -002, -003, -004: true = must be an error)
            ("empty corpus", vec![], [true, true, true, true]),
            ("plugin not started", vec![garbage_not_started(), version.clone()], [true, true, true, true]),
            ("no failure", vec![version.clone(), ok_empty()], [true, true, true, false]),
            ("failures without objects", vec![garbage(1, None), version.clone()], [false, true, true, false]),
        ];
        // An error object printed with exit 0 is a failure observed (and judged by ERR-001).
        let o = judge_error_exits(&[ok(json!({"code": 4, "msg": "x"})), version.clone()]);
        assert_eq!(o.status, Status::Failed, "{}", o.message);
        type Judge = fn(&[Exec]) -> Outcome;
        let judges: [(&str, Judge); 4] = [
            ("exits", judge_error_exits),
            ("objects", judge_error_objects),
            ("codes", judge_error_codes),
            ("documents", judge_stdout_documents),
        ];
        for (name, corpus, errors) in &rows {
            for ((judge, f), error) in judges.iter().zip(errors) {
                let o = f(corpus);
                assert_eq!(o.status == Status::Error, *error, "{name}, {judge}: {o:?}");
            }
        }
    }

    #[test]
    fn stdout_is_at_most_one_document() {
        assert_eq!(
            judge_stdout_documents(&[ok_empty(), skel_error(4)]).message,
            "2 invocations: stdout was empty or one JSON document each time"
        );
        let o = judge_stdout_documents(&[ok_empty(), garbage(0, Some("{} {}"))]);
        assert_eq!(
            o.message,
            "bridge ADD: exit 0, stdout is not one JSON document (not JSON: {} {})"
        );
    }
}
