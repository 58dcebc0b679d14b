//! CNI-CHK: CHECK against a live attachment, a perturbed one, and wrong parameters.

use nfvi_harness::Outcome;
use serde_json::json;

use super::chain_step::bridge_then;
use super::{
    Attached, add_result, attach, cid, exec_after, exec_in, fail_expected, net_name, with_prev,
    without,
};
use crate::lab::{Exec, Lab, Stdout, expect_result};
use crate::result::read_result;

async fn check_after(lab: &Lab<'_>, plugin: &str, a: &Attached) -> Exec {
    a.exec(lab, plugin, "CHECK").await
}

pub(crate) async fn chk_001(lab: &Lab<'_>, plugin: &str) -> Outcome {
    let a = t!(attach(lab, plugin).await);
    judge_check_right_after_add(&check_after(lab, plugin, &a).await)
}

/// CHECK right after ADD: exit 0 and nothing on stdout.
fn judge_check_right_after_add(exec: &Exec) -> Outcome {
    if exec.ok() && exec.stdout == Stdout::Empty {
        Outcome::pass("CHECK right after ADD: exit 0, no output")
    } else {
        fail_expected("CHECK right after ADD", "exit 0 and empty stdout", exec)
    }
}

pub(crate) async fn chk_002(lab: &Lab<'_>, plugin: &str) -> Outcome {
    let a = t!(attach(lab, plugin).await);
    let control = check_after(lab, plugin, &a).await;
    let exec = exec_in(lab, plugin, "CHECK", &a.ns, &a.conf).await;
    judge_check_without_prev(&control, &exec)
}

/// CHECK without prevResult must be refused; the same CHECK with prevResult (the positive
/// control, same attachment, same run) must pass, or the refusal proves nothing.
fn judge_check_without_prev(control: &Exec, exec: &Exec) -> Outcome {
    t!(judge_check_baseline("CHECK without prevResult", control));
    if let Some(o) = super::not_run(exec) {
        return o;
    }
    if exec.ok() {
        fail_expected(
            "CHECK without prevResult",
            "an error (nothing to verify against)",
            exec,
        )
    } else {
        Outcome::pass(format!(
            "refused: {} (CHECK with prevResult passed)",
            exec.msg()
        ))
    }
}

/// CHECK passes on the attachment, `perturb` breaks it, CHECK must fail.
async fn check_detects(
    lab: &Lab<'_>,
    plugin: &str,
    what: &str,
    perturb: impl AsyncFnOnce(&Attached) -> Result<(), Outcome>,
) -> Outcome {
    let a = t!(attach(lab, plugin).await);
    let before = check_after(lab, plugin, &a).await;
    t!(judge_check_baseline(what, &before));
    t!(perturb(&a).await);
    judge_check_detects(what, &check_after(lab, plugin, &a).await)
}

/// CHECK must pass before the perturbation (the positive control), or its failure
/// afterwards proves nothing.
fn judge_check_baseline(what: &str, before: &Exec) -> Result<(), Outcome> {
    if before.ok() {
        Ok(())
    } else {
        Err(Outcome::error(format!(
            "CHECK already fails before {what}, so the assertion cannot be judged: {}",
            before.describe()
        )))
    }
}

/// CHECK after the perturbation `what` must fail.
fn judge_check_detects(what: &str, after: &Exec) -> Outcome {
    if let Some(o) = super::not_run(after) {
        return o;
    }
    if after.ok() {
        fail_expected(&format!("CHECK after {what}"), "an error", after)
    } else {
        Outcome::pass(format!("CHECK noticed {what}: {}", after.msg()))
    }
}

pub(crate) async fn chk_003(lab: &Lab<'_>, plugin: &str) -> Outcome {
    check_detects(
        lab,
        plugin,
        "the container address was removed",
        async |a: &Attached| {
            let ip = read_result(&a.result).first_address().to_owned();
            lab.run_ok("ip", &["-n", &a.ns.name, "addr", "del", &ip, "dev", "eth0"])
                .await
                .map(|_| ())
        },
    )
    .await
}

/// [`check_detects`] with `ip <args>` run in the container netns as the perturbation.
async fn check_detects_ip(lab: &Lab<'_>, plugin: &str, what: &str, args: &[&str]) -> Outcome {
    check_detects(lab, plugin, what, async |a: &Attached| {
        let argv: Vec<&str> = ["-n", a.ns.name.as_str()]
            .iter()
            .chain(args)
            .copied()
            .collect();
        lab.run_ok("ip", &argv).await.map(|_| ())
    })
    .await
}

pub(crate) async fn chk_004(lab: &Lab<'_>, plugin: &str) -> Outcome {
    let what = "the default route was removed";
    check_detects_ip(lab, plugin, what, &["route", "del", "default"]).await
}

pub(crate) async fn chk_005(lab: &Lab<'_>, plugin: &str) -> Outcome {
    let what = "the container interface was deleted";
    check_detects_ip(lab, plugin, what, &["link", "del", "eth0"]).await
}

pub(crate) async fn chk_006(lab: &Lab<'_>, plugin: &str) -> Outcome {
    check_detects(
        lab,
        plugin,
        "the host veth was detached from the bridge",
        async |a: &Attached| {
            let r = read_result(&a.result);
            let veth = r
                .interface_list()
                .iter()
                .find(|i| i.sandbox.is_none() && i.name != "nfvbr0")
                .map_or("", |i| i.name.as_str());
            lab.run_ok("ip", &["-n", &lab.rt, "link", "set", veth, "nomaster"])
                .await
                .map(|_| ())
        },
    )
    .await
}

pub(crate) async fn chk_007(lab: &Lab<'_>, plugin: &str) -> Outcome {
    check_detects(
        lab,
        plugin,
        "the IPAM reservation was removed",
        async |a: &Attached| {
            let held = lab.reservations(&net_name(&a.conf));
            if held.is_empty() {
                return Err(Outcome::error(
                    "no IPAM reservation is visible, so there is none to remove",
                ));
            }
            for (ip, _) in held {
                std::fs::remove_file(lab.dir.join("ipam").join(net_name(&a.conf)).join(ip))
                    .map_err(|e| Outcome::error(e.to_string()))?;
            }
            Ok(())
        },
    )
    .await
}

pub(crate) async fn chk_008(lab: &Lab<'_>, plugin: &str) -> Outcome {
    let what = "the container MAC was changed";
    let args = ["link", "set", "eth0", "address", "0e:00:00:00:3f:3f"];
    check_detects_ip(lab, plugin, what, &args).await
}

pub(crate) async fn chk_009(lab: &Lab<'_>, plugin: &str) -> Outcome {
    let ns = t!(lab.netns().await);
    let conf = without(&t!(lab.conf_for(plugin).await), "ipam");
    let r = t!(add_result(lab, plugin, &ns, &conf, "L2-only ADD").await);
    let exec = exec_after(lab, plugin, "CHECK", &ns, &conf, &r).await;
    if exec.ok() {
        Outcome::pass("CHECK after an L2-only ADD exited 0")
    } else {
        fail_expected("CHECK after an L2-only ADD", "exit 0", &exec)
    }
}

pub(crate) async fn chk_011(lab: &Lab<'_>, plugin: &str) -> Outcome {
    let a = t!(attach(lab, plugin).await);
    let mut altered = a.result.clone();
    if let Some(ifs) = altered["interfaces"].as_array_mut() {
        for i in ifs.iter_mut().filter(|i| i["sandbox"].is_string()) {
            i["sandbox"] = "/run/netns/nfvelsewhere".into();
        }
    }
    let cases = [
        (
            "prevResult sandbox altered",
            lab.env("CHECK", &a.ns, &cid(lab), "eth0"),
            with_prev(&a.conf, &altered),
        ),
        (
            "CNI_IFNAME=eth9",
            lab.env("CHECK", &a.ns, &cid(lab), "eth9"),
            with_prev(&a.conf, &a.result),
        ),
        (
            "another CNI_CONTAINERID",
            lab.env("CHECK", &a.ns, "nfvother", "eth0"),
            with_prev(&a.conf, &a.result),
        ),
    ];
    let control = check_after(lab, plugin, &a).await;
    let mut checks = Vec::new();
    for (what, env, conf) in cases {
        checks.push((what, lab.exec(plugin, &env, &conf).await));
    }
    judge_mismatched_checks(&control, &checks)
}

/// Every CHECK with parameters that do not match the attachment must fail, while the
/// matching CHECK (the positive control) passes; CHECKs that did not run judge nothing.
fn judge_mismatched_checks(control: &Exec, checks: &[(&str, Exec)]) -> Outcome {
    t!(judge_check_baseline("the mismatched CHECKs", control));
    if checks.is_empty() {
        return Outcome::error("no mismatched CHECK was run: nothing observed");
    }
    if let Some(o) = checks.iter().find_map(|(_, e)| super::not_run(e)) {
        return o;
    }
    let accepted: Vec<&str> = checks
        .iter()
        .filter(|(_, exec)| exec.ok())
        .map(|(what, _)| *what)
        .collect();
    Outcome::pass_if(
        accepted.is_empty(),
        "CHECK with parameters that do not match the attachment failed every time",
        format!(
            "expected CHECK to fail, but it passed for: {}",
            accepted.join(", ")
        ),
    )
}

pub(crate) async fn chk_010(lab: &Lab<'_>, plugin: &str) -> Outcome {
    let ns = t!(lab.netns().await);
    let (conf, prev) = t!(bridge_then(lab, &ns, &lab.version).await);
    let tuning = json!({"cniVersion": lab.version, "name": "nfvnet-br", "type": "tuning", "runtimeConfig": {"mac": "0e:00:00:00:34:44"}});
    let fin = t!(expect_result(
        &exec_after(lab, "tuning", "ADD", &ns, &tuning, &prev).await,
        "tuning ADD (mac)"
    ));
    let check = exec_after(lab, plugin, "CHECK", &ns, &conf, &fin).await;
    let tcheck = exec_after(lab, "tuning", "CHECK", &ns, &tuning, &fin).await;
    judge_check_final_result(&check, &tcheck)
}

/// bridge and tuning CHECK both accept the final chain result, in which tuning changed the MAC.
fn judge_check_final_result(bridge: &Exec, tuning: &Exec) -> Outcome {
    Outcome::pass_if(
        bridge.ok() && tuning.ok(),
        "bridge and tuning CHECK accept the final result with tuning's MAC",
        format!(
            "expected both CHECKs to pass with the final chain result; bridge: {}, tuning: {}",
            bridge.describe(),
            tuning.describe()
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::super::testkit::{
        assert_starts_with, err, garbage_not_started, named, ok, ok_empty,
    };
    use super::*;
    use nfvi_harness::Status;

    fn refused() -> Exec {
        named(
            err(
                1,
                json!({"code": 999, "msg": "Interface eth0 Mac doesn't match"}),
            ),
            "CHECK",
            "",
        )
    }

    #[test]
    fn check_right_after_add_is_silent_success() {
        assert_eq!(
            judge_check_right_after_add(&ok_empty()).status,
            Status::Passed
        );
        let o = judge_check_right_after_add(&ok(json!({"cniVersion": "1.0.0"})));
        assert_starts_with(
            &o.message,
            "CHECK right after ADD: expected exit 0 and empty stdout; got bridge ADD: exit 0, stdout",
        );
        assert_eq!(
            judge_check_right_after_add(&refused()).status,
            Status::Failed
        );
    }

    #[test]
    fn check_must_notice_a_perturbation_it_did_not_see_before() {
        let what = "the container MAC was changed";
        assert!(judge_check_baseline(what, &ok_empty()).is_ok());
        let e = judge_check_baseline(what, &refused()).unwrap_err();
        assert_eq!(e.status, Status::Error);
        assert_starts_with(
            &e.message,
            "CHECK already fails before the container MAC was changed, so the assertion cannot be judged: bridge CHECK: exit 1",
        );
        let o = judge_check_detects(what, &refused());
        assert_eq!(
            o.message,
            "CHECK noticed the container MAC was changed: Interface eth0 Mac doesn't match"
        );
        let o = judge_check_detects(what, &ok_empty());
        assert_eq!(o.status, Status::Failed);
        assert_starts_with(
            &o.message,
            "CHECK after the container MAC was changed: expected an error",
        );
    }

    #[test]
    fn mismatched_parameters_must_fail_check() {
        let o = judge_mismatched_checks(
            &ok_empty(),
            &[
                ("CNI_IFNAME=eth9", refused()),
                ("another CNI_CONTAINERID", refused()),
            ],
        );
        assert_eq!(o.status, Status::Passed);
        let o = judge_mismatched_checks(
            &ok_empty(),
            &[
                ("prevResult sandbox altered", ok_empty()),
                ("CNI_IFNAME=eth9", refused()),
                ("another CNI_CONTAINERID", ok_empty()),
            ],
        );
        assert_eq!(
            o.message,
            "expected CHECK to fail, but it passed for: prevResult sandbox altered, another CNI_CONTAINERID"
        );
    }

    /// Refusals count only next to an accepted control, and only from a plugin that ran.
    #[test]
    fn refused_checks_need_a_passing_control_and_a_running_plugin() {
        let not_started = garbage_not_started();
        type Row<'a> = (&'a str, Exec, Vec<(&'a str, Exec)>, &'a str);
        #[rustfmt::skip]
        let rows: &[Row] = &[
            ("control failed", refused(), vec![("CNI_IFNAME=eth9", refused())], "CHECK already fails before the mismatched CHECKs"),
            ("nothing observed: not started", ok_empty(), vec![("CNI_IFNAME=eth9", not_started.clone())], "did not run to an exit"),
            ("nothing observed: no case", ok_empty(), vec![], "no mismatched CHECK was run"),
        ];
        for (name, control, checks, part) in rows {
            let o = judge_mismatched_checks(control, checks);
            assert_eq!(o.status, Status::Error, "{name}: {}", o.message);
            assert!(o.message.contains(part), "{name}: {}", o.message);
        }
        // CHECK without prevResult: refused next to a passing CHECK with it.
        let o = judge_check_without_prev(&ok_empty(), &refused());
        assert_eq!(o.status, Status::Passed, "{}", o.message);
        let o = judge_check_without_prev(&refused(), &refused());
        assert_eq!(o.status, Status::Error, "control failed: {}", o.message);
        let o = judge_check_without_prev(&ok_empty(), &not_started);
        assert_eq!(o.status, Status::Error, "not started: {}", o.message);
        let o = judge_check_without_prev(&ok_empty(), &ok_empty());
        assert_eq!(o.status, Status::Failed);
        // A perturbation judged on a CHECK that never ran is no detection.
        assert_eq!(judge_check_detects("x", &not_started).status, Status::Error);
    }

    #[test]
    fn both_checks_accept_the_final_result() {
        assert_eq!(
            judge_check_final_result(&ok_empty(), &ok_empty()).status,
            Status::Passed
        );
        let o = judge_check_final_result(&refused(), &ok_empty());
        assert_starts_with(
            &o.message,
            "expected both CHECKs to pass with the final chain result; bridge: bridge CHECK: exit 1",
        );
        assert_eq!(
            judge_check_final_result(&ok_empty(), &refused()).status,
            Status::Failed
        );
    }
}
