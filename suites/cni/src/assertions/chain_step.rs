//! CNI-CHAIN, one step: a single plugin run with a prevResult (mostly after a bridge ADD),
//! the way a runtime runs the second and later plugins of a list, judged on the result it
//! passes on. What the meta plugins do to the host is in `chain_meta` and
//! `chain_tuning`.

use nfvi_harness::Outcome;
use serde_json::{Value, json};

use super::{add_result, cid, exec_after, exec_as, exec_in, fail_expected, meta_conf, with_prev};
use crate::lab::{Exec, Lab, Netns, expect_result};
use crate::result::{Result100, read_result, validate_error, validate_result};

pub(super) async fn bridge_then(
    lab: &Lab<'_>,
    ns: &Netns,
    version: &str,
) -> Result<(Value, Value), Outcome> {
    bridge_then_as(lab, ns, version, &cid(lab)).await
}

/// A bridge ADD at `version` for container `cid`: (its config, its result).
pub(super) async fn bridge_then_as(
    lab: &Lab<'_>,
    ns: &Netns,
    version: &str,
    cid: &str,
) -> Result<(Value, Value), Outcome> {
    let mut conf = lab.bridge_conf();
    conf["cniVersion"] = version.into();
    let r = expect_result(
        &exec_as(lab, "bridge", "ADD", ns, cid, &conf).await,
        "bridge ADD",
    )?;
    Ok((conf, r))
}

/// A meta plugin's configuration on the BR fixture's network.
fn noop_conf(lab: &Lab<'_>, plugin: &str) -> Value {
    let mut c = meta_conf(lab, plugin);
    c["name"] = "nfvnet-br".into();
    c
}

pub(crate) async fn chain_002(lab: &Lab<'_>, plugin: &str) -> Outcome {
    let ns = t!(lab.netns().await);
    let (_, prev) = t!(bridge_then(lab, &ns, &lab.version).await);
    let conf = with_prev(&noop_conf(lab, plugin), &prev);
    let out = t!(add_result(
        lab,
        plugin,
        &ns,
        &conf,
        &format!("{plugin} ADD with prevResult")
    )
    .await);
    let _ = exec_in(lab, plugin, "DEL", &ns, &conf).await;
    judge_echo(&out, &prev)
}

/// A plugin that changes nothing in the result outputs prevResult, byte for byte as JSON.
fn judge_echo(out: &Value, prev: &Value) -> Outcome {
    Outcome::pass_if(
        out == prev,
        "the result equals prevResult",
        format!("expected prevResult echoed unchanged; got {out}, prevResult {prev}"),
    )
}

pub(crate) async fn chain_006(lab: &Lab<'_>, plugin: &str) -> Outcome {
    let ns = t!(lab.netns().await);
    let conf = meta_conf(lab, plugin);
    let exec = exec_in(lab, plugin, "ADD", &ns, &conf).await;
    judge_first_in_chain(plugin, &exec, &lab.version)
}

/// A meta plugin run first (no prevResult) fails with a valid error object or passes a valid
/// result through.
fn judge_first_in_chain(plugin: &str, exec: &Exec, version: &str) -> Outcome {
    let clean_error = !exec.ok() && exec.json().is_some_and(|v| validate_error(v).is_empty());
    let pass_through = exec.ok()
        && exec
            .json()
            .is_some_and(|v| validate_result(v, version, None).is_empty());
    if clean_error || pass_through {
        Outcome::pass(if clean_error {
            format!("failed cleanly: {}", exec.msg())
        } else {
            "passed through a valid result".to_owned()
        })
    } else {
        fail_expected(
            &format!("{plugin} as the first plugin"),
            "a JSON error or a valid pass-through result",
            exec,
        )
    }
}

pub(crate) async fn chain_010(lab: &Lab<'_>, plugin: &str) -> Outcome {
    let ns = t!(lab.netns().await);
    let (_, prev) = t!(bridge_then(lab, &ns, "0.4.0").await);
    let mut conf = noop_conf(lab, plugin);
    conf["cniVersion"] = "0.4.0".into();
    let out = t!(expect_result(
        &exec_after(lab, plugin, "ADD", &ns, &conf, &prev).await,
        "ADD at 0.4.0 with a 0.4.0 prevResult"
    ));
    let p = validate_result(&out, "0.4.0", Some(&ns.path));
    let _ = exec_after(lab, plugin, "DEL", &ns, &conf, &out).await;
    Outcome::pass_unless_with(
        p,
        "the 0.4.0 chain got a 0.4.0-shaped result (ips[].version present)",
        |p| format!("expected a 0.4.0 result: {p}"),
    )
}

pub(crate) async fn chain_011(lab: &Lab<'_>, plugin: &str) -> Outcome {
    let ns = t!(lab.netns().await);
    let (_, prev) = t!(bridge_then(lab, &ns, &lab.version).await);
    let mut conf = with_prev(&noop_conf(lab, plugin), &prev);
    conf["capabilities"] = json!({"mac": true, "portMappings": true});
    let rc = conf
        .get("runtimeConfig")
        .cloned()
        .unwrap_or_else(|| json!({}));
    let mut rc = rc;
    rc["nfvUnknownKey"] = json!({"x": 1});
    conf["runtimeConfig"] = rc;
    let exec = exec_in(lab, plugin, "ADD", &ns, &conf).await;
    let _ = exec_in(lab, plugin, "DEL", &ns, &conf).await;
    if exec.ok() {
        Outcome::pass("a stray capabilities key and an unknown runtimeConfig key were tolerated")
    } else {
        fail_expected(
            "ADD with a stray capabilities key and unknown runtimeConfig",
            "exit 0",
            &exec,
        )
    }
}

pub(crate) async fn chain_013(lab: &Lab<'_>, plugin: &str) -> Outcome {
    let ns = t!(lab.netns().await);
    let conf = t!(lab.conf_for(plugin).await);
    let prev = json!({"cniVersion": lab.version,
        "interfaces": [{"name": "nfvprev0", "mac": "0e:00:00:00:39:01", "sandbox": ns.path}],
        "ips": [{"interface": 0, "address": "198.18.39.201/24", "gateway": "198.18.39.1"}],
        "routes": [{"dst": "198.18.38.0/24", "gw": "198.18.39.1"}],
        "dns": {"nameservers": ["198.18.39.53"], "search": ["nfv.example"]}});
    let out = t!(expect_result(
        &lab.exec(
            plugin,
            &lab.env("ADD", &ns, &cid(lab), "net1"),
            &with_prev(&conf, &prev)
        )
        .await,
        &format!("{plugin} ADD as the second plugin")
    ));
    match judge_prev_result_kept(&read_result(&out)) {
        Ok(()) => Outcome::pass("prevResult interfaces, ips, routes and dns kept in the output"),
        Err(p) => Outcome::fail(p).with_property("result", out),
    }
}

/// An interface plugin second in a chain keeps prevResult's interface `nfvprev0`, address
/// 198.18.39.201/24, route 198.18.38.0/24 and nameserver 198.18.39.53 in its output.
fn judge_prev_result_kept(out: &Result100) -> Result<(), String> {
    let mut p = Vec::new();
    if !out.interface_names().iter().any(|n| n == "nfvprev0") {
        p.push("the prevResult interface nfvprev0 is missing".to_owned());
    }
    if !out
        .ip_list()
        .iter()
        .any(|i| i.address == "198.18.39.201/24")
    {
        p.push("the prevResult address 198.18.39.201/24 is missing".to_owned());
    }
    if !out.route_list().iter().any(|r| r.dst == "198.18.38.0/24") {
        p.push("the prevResult route 198.18.38.0/24 is missing".to_owned());
    }
    if out
        .dns
        .as_ref()
        .and_then(|d| d.nameservers.as_ref())
        .is_none_or(|n| !n.iter().any(|x| x == "198.18.39.53"))
    {
        p.push("the prevResult DNS nameserver is missing".to_owned());
    }
    if p.is_empty() {
        Ok(())
    } else {
        Err(p.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::{err, garbage, ok, ok_empty};
    use super::*;
    use nfvi_harness::Status;

    #[test]
    fn a_plugin_that_changes_nothing_echoes_prev_result() {
        let prev = json!({"cniVersion": "1.0.0", "ips": [{"address": "198.18.30.2/24"}]});
        assert_eq!(judge_echo(&prev, &prev).status, Status::Passed);
        let mut changed = prev.clone();
        changed["dns"] = json!({});
        let o = judge_echo(&changed, &prev);
        assert_eq!(
            o.message,
            "expected prevResult echoed unchanged; got {\"cniVersion\":\"1.0.0\",\"dns\":{},\"ips\":[{\"address\":\"198.18.30.2/24\"}]}, prevResult {\"cniVersion\":\"1.0.0\",\"ips\":[{\"address\":\"198.18.30.2/24\"}]}"
        );
    }

    #[test]
    fn first_in_chain_fails_cleanly_or_passes_through() {
        let no_prev = err(
            1,
            json!({"code": 7, "msg": "must be called as chained plugin"}),
        );
        let o = judge_first_in_chain("portmap", &no_prev, "1.0.0");
        assert_eq!(
            o.message,
            "failed cleanly: must be called as chained plugin"
        );
        let o = judge_first_in_chain("tuning", &ok(json!({"cniVersion": "1.0.0"})), "1.0.0");
        assert_eq!(o.message, "passed through a valid result");
        #[rustfmt::skip]
        let rows = [
            ("empty error", garbage(1, None)),
            ("error without msg", err(1, json!({"code": 7}))),
            ("invalid pass-through", ok(json!({"cniVersion": "0.4.0"}))),
            ("silent success", ok_empty()),
        ];
        for (name, exec) in rows {
            let o = judge_first_in_chain("bandwidth", &exec, "1.0.0");
            assert_eq!(o.status, Status::Failed, "{name}");
            assert!(o.message.starts_with("bandwidth as the first plugin: expected a JSON error or a valid pass-through result"), "{name}: {}", o.message);
        }
    }

    #[test]
    fn a_second_interface_plugin_keeps_prev_result() {
        let kept = json!({"cniVersion": "1.0.0",
            "interfaces": [{"name": "nfvprev0"}, {"name": "net1", "sandbox": "/run/netns/x"}],
            "ips": [{"interface": 0, "address": "198.18.39.201/24"}, {"interface": 1, "address": "198.18.30.2/24"}],
            "routes": [{"dst": "198.18.38.0/24", "gw": "198.18.39.1"}],
            "dns": {"nameservers": ["198.18.39.53"]}});
        assert_eq!(judge_prev_result_kept(&read_result(&kept)), Ok(()));
        let replaced = json!({"cniVersion": "1.0.0", "interfaces": [{"name": "net1"}],
            "ips": [{"interface": 0, "address": "198.18.30.2/24"}], "dns": {}});
        assert_eq!(
            judge_prev_result_kept(&read_result(&replaced)),
            Err("the prevResult interface nfvprev0 is missing; the prevResult address 198.18.39.201/24 is missing; the prevResult route 198.18.38.0/24 is missing; the prevResult DNS nameserver is missing".to_owned())
        );
        let mut other_dns = kept.clone();
        other_dns["dns"]["nameservers"] = json!(["198.18.39.54"]);
        assert_eq!(
            judge_prev_result_kept(&read_result(&other_dns)),
            Err("the prevResult DNS nameserver is missing".to_owned())
        );
    }
}
