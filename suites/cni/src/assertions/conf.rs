//! CNI-CONF: the network configuration a plugin is given on stdin.

use nfvi_harness::Outcome;
use serde_json::{Value, json};

use super::{cid, exec_in, expect_error, ipam_or_plugin_conf, without};
use crate::lab::{Exec, Lab, Netns, expect_result};

async fn add_with_stdin(
    lab: &Lab<'_>,
    plugin: &str,
    stdin: &[u8],
) -> Result<(Netns, Exec), Outcome> {
    let ns = lab.netns().await?;
    if plugin == "macvlan" {
        lab.macvlan_master().await?;
    }
    let exec = lab
        .exec_raw(plugin, &lab.env("ADD", &ns, &cid(lab), "eth0"), stdin)
        .await;
    Ok((ns, exec))
}

pub(crate) async fn conf_001(lab: &Lab<'_>, plugin: &str) -> Outcome {
    let (_, exec) = t!(add_with_stdin(lab, plugin, br#"{"cniVersion": "1.0.0", "name": "#).await);
    t!(expect_error(
        &exec,
        "ADD with truncated JSON",
        Some(6),
        None
    ));
    Outcome::pass("truncated JSON rejected with code 6")
}

pub(crate) async fn conf_002(lab: &Lab<'_>, plugin: &str) -> Outcome {
    let conf = without(&ipam_or_plugin_conf(lab, plugin), "name");
    let (_, exec) = t!(add_with_stdin(lab, plugin, conf.to_string().as_bytes()).await);
    t!(expect_error(
        &exec,
        "ADD of a config without `name`",
        Some(7),
        None
    ));
    Outcome::pass("config without name rejected with code 7")
}

/// Whether an ADD was refused with code 7 (invalid network config).
fn refused_as_invalid_config(exec: &Exec) -> bool {
    !exec.ok() && exec.code() == Some(7)
}

pub(crate) async fn conf_003(lab: &Lab<'_>, plugin: &str) -> Outcome {
    let mut tries = Vec::new();
    for bad in ["bad/name", "-lead", "sp ace"] {
        let mut conf = ipam_or_plugin_conf(lab, plugin);
        conf["name"] = bad.into();
        let (ns, exec) = t!(add_with_stdin(lab, plugin, conf.to_string().as_bytes()).await);
        if !refused_as_invalid_config(&exec) {
            let _ = exec_in(lab, plugin, "DEL", &ns, &conf).await;
        }
        tries.push((bad, exec));
    }
    judge_network_names(&tries)
}

/// Every invalid network name must be refused with code 7.
fn judge_network_names(tries: &[(&str, Exec)]) -> Outcome {
    let accepted: Vec<String> = tries
        .iter()
        .filter(|(_, exec)| !refused_as_invalid_config(exec))
        .map(|(bad, exec)| format!("{bad:?}: {}", exec.describe()))
        .collect();
    Outcome::pass_unless_with(
        accepted,
        "invalid network names rejected with code 7",
        |p| format!("expected code 7 for invalid network names; got {p}"),
    )
}

pub(crate) async fn conf_004(lab: &Lab<'_>, plugin: &str) -> Outcome {
    let mut conf = t!(lab.conf_for(plugin).await);
    conf["keyA"] = json!(["x", 1]);
    conf["x-vendor"] = json!({"nested": true});
    let (_, exec) = t!(add_with_stdin(lab, plugin, conf.to_string().as_bytes()).await);
    t!(expect_result(&exec, "ADD with unknown vendor keys"));
    Outcome::pass("unknown vendor keys tolerated")
}

pub(crate) async fn conf_005(lab: &Lab<'_>, plugin: &str) -> Outcome {
    let conf = without(&t!(lab.conf_for(plugin).await), "cniVersion");
    let (_, exec) = t!(add_with_stdin(lab, plugin, conf.to_string().as_bytes()).await);
    let result = t!(expect_result(&exec, "ADD without cniVersion"));
    judge_legacy_version(result)
}

/// A config without `cniVersion` is 0.1.0: the result must be a legacy (0.1.0/0.2.0) one.
fn judge_legacy_version(result: Value) -> Outcome {
    let v = result
        .get("cniVersion")
        .and_then(Value::as_str)
        .unwrap_or("missing")
        .to_owned();
    if v == "0.1.0" || v == "0.2.0" {
        Outcome::pass(format!("treated as legacy: result cniVersion {v}"))
            .with_property("result", result)
    } else {
        Outcome::fail(format!(
            "expected a legacy (0.1.0) result; result cniVersion is {v}"
        ))
        .with_property("result", result)
    }
}

pub(crate) async fn conf_006(lab: &Lab<'_>, plugin: &str) -> Outcome {
    let (_, exec) = t!(add_with_stdin(lab, plugin, b"").await);
    t!(expect_error(&exec, "ADD with empty stdin", None, None));
    Outcome::pass(format!(
        "empty stdin rejected (code {})",
        exec.code().unwrap_or(0)
    ))
}

#[cfg(test)]
mod tests {
    use super::super::testkit::{
        assert_contains, assert_ends_with, assert_starts_with, err, garbage, ok, refused,
    };
    use super::*;
    use nfvi_harness::Status;

    #[test]
    fn invalid_network_names_need_code_7() {
        let seven = || err(1, json!({"code": 7, "msg": "invalid name"}));
        let o = judge_network_names(&[("bad/name", seven()), ("-lead", seven())]);
        assert_eq!(o.status, Status::Passed, "{}", o.message);
        let o = judge_network_names(&[
            ("bad/name", seven()),
            ("-lead", ok(json!({"cniVersion": "1.0.0"}))),
            ("sp ace", refused("x")),
            ("x", garbage(1, Some("panic"))),
        ]);
        assert_eq!(o.status, Status::Failed);
        assert_starts_with(
            &o.message,
            "expected code 7 for invalid network names; got \"-lead\": bridge ADD: exit 0",
        );
        assert_contains(&o.message, "\"sp ace\": bridge ADD: exit 1");
        assert!(!o.message.contains("bad/name"), "{}", o.message);
        assert_contains(&o.message, "\"x\": ");
    }

    #[test]
    fn a_config_without_version_is_legacy() {
        for (v, status, needle) in [
            (
                json!("0.1.0"),
                Status::Passed,
                "treated as legacy: result cniVersion 0.1.0",
            ),
            (json!("0.2.0"), Status::Passed, "cniVersion 0.2.0"),
            (json!("1.0.0"), Status::Failed, "result cniVersion is 1.0.0"),
            (json!(1), Status::Failed, "result cniVersion is missing"),
        ] {
            let o = judge_legacy_version(json!({"cniVersion": v}));
            assert_eq!(o.status, status, "{v}: {}", o.message);
            assert!(o.message.contains(needle), "{v}: {}", o.message);
            assert!(o.evidence.properties.contains_key("result"));
        }
        let o = judge_legacy_version(json!({}));
        assert_ends_with(&o.message, "is missing");
    }
}
