//! CNI-ENV: the environment parameters (CNI_COMMAND, CNI_CONTAINERID, CNI_NETNS, CNI_IFNAME,
//! CNI_ARGS, CNI_PATH).

use nfvi_harness::Outcome;

use super::{attach, cid, exec_as, exec_in, expect_error, net_name, only_lo, with_prev};
use crate::lab::{Exec, Lab, expect_result, expect_success};
use crate::result::{Result100, read_result};

pub(crate) async fn env_001(lab: &Lab<'_>, plugin: &str) -> Outcome {
    let ns = t!(lab.netns().await);
    let mut env = lab.env("ADD", &ns, &cid(lab), "eth0");
    env.command = None;
    let exec = lab
        .exec(plugin, &env, &t!(lab.conf_for(plugin).await))
        .await;
    t!(expect_error(
        &exec,
        "invocation without CNI_COMMAND",
        Some(4),
        Some("CNI_COMMAND")
    ));
    Outcome::pass(format!("rejected with code 4: {}", exec.msg()))
}

pub(crate) async fn env_002(lab: &Lab<'_>, plugin: &str) -> Outcome {
    let ns = t!(lab.netns().await);
    let exec = lab
        .exec(
            plugin,
            &lab.env("FROB", &ns, &cid(lab), "eth0"),
            &t!(lab.conf_for(plugin).await),
        )
        .await;
    t!(expect_error(
        &exec,
        "CNI_COMMAND=FROB",
        Some(4),
        Some("FROB")
    ));
    let left = t!(only_lo(lab, &ns).await);
    if !left.is_empty() {
        return Outcome::fail(format!(
            "the rejected command still created {left:?} in the netns"
        ));
    }
    Outcome::pass(format!("rejected with code 4: {}", exec.msg()))
}

async fn env_missing(lab: &Lab<'_>, plugin: &str, var: &str) -> Outcome {
    let ns = t!(lab.netns().await);
    let conf = t!(lab.conf_for(plugin).await);
    let mut env = lab.env("ADD", &ns, &cid(lab), "eth0");
    match var {
        "CNI_CONTAINERID" => env.container_id = None,
        "CNI_NETNS" => env.netns = None,
        _ => env.ifname = None,
    }
    let exec = lab.exec(plugin, &env, &conf).await;
    let left = t!(only_lo(lab, &ns).await);
    let reserved = lab.reservations(&net_name(&conf));
    judge_missing_var(var, &exec, &left, &reserved)
}

/// ADD without a required variable: code 4 naming it, and no links or reservations left.
fn judge_missing_var(
    var: &str,
    exec: &Exec,
    left: &[String],
    reserved: &[(String, String)],
) -> Outcome {
    t!(expect_error(
        exec,
        &format!("ADD without {var}"),
        Some(4),
        Some(var)
    ));
    if !left.is_empty() || !reserved.is_empty() {
        return Outcome::fail(format!(
            "ADD without {var} failed but left links {left:?} and reservations {reserved:?}"
        ));
    }
    Outcome::pass(format!(
        "rejected with code 4 naming {var}; nothing created"
    ))
}

pub(crate) async fn env_003(lab: &Lab<'_>, plugin: &str) -> Outcome {
    env_missing(lab, plugin, "CNI_CONTAINERID").await
}
pub(crate) async fn env_004(lab: &Lab<'_>, plugin: &str) -> Outcome {
    env_missing(lab, plugin, "CNI_NETNS").await
}
pub(crate) async fn env_005(lab: &Lab<'_>, plugin: &str) -> Outcome {
    env_missing(lab, plugin, "CNI_IFNAME").await
}

pub(crate) async fn env_006(lab: &Lab<'_>, plugin: &str) -> Outcome {
    let ns = t!(lab.netns().await);
    let conf = t!(lab.conf_for(plugin).await);
    let (command, env) = if plugin == "loopback" {
        ("ADD", lab.env("ADD", &ns, &cid(lab), "eth0").without_path())
    } else {
        (
            "DEL",
            lab.env("DEL", &ns, "nfvneveradded", "eth0").without_path(),
        )
    };
    let exec = lab.exec(plugin, &env, &conf).await;
    t!(expect_success(
        &exec,
        &format!("{command} without CNI_PATH")
    ));
    Outcome::pass(format!("{command} without CNI_PATH succeeded"))
}

pub(crate) async fn env_007(lab: &Lab<'_>, plugin: &str) -> Outcome {
    let a = t!(attach(lab, plugin).await);
    let name = net_name(&a.conf);
    if lab.reservations(&name).is_empty() {
        return Outcome::error("ADD succeeded but host-local recorded no reservation to watch");
    }
    let mut env = lab.env("DEL", &a.ns, &cid(lab), "eth0");
    env.netns = None;
    let exec = lab.exec(plugin, &env, &with_prev(&a.conf, &a.result)).await;
    judge_del_without_netns(&exec, &lab.reservations(&name))
}

/// DEL without CNI_NETNS: exit 0 and the reservation made by ADD gone.
fn judge_del_without_netns(del: &Exec, after: &[(String, String)]) -> Outcome {
    t!(expect_success(del, "DEL without CNI_NETNS"));
    if !after.is_empty() {
        return Outcome::fail(format!(
            "DEL without CNI_NETNS exited 0 but left reservations {after:?}"
        ));
    }
    Outcome::pass("DEL without CNI_NETNS succeeded and released the address")
}

pub(crate) async fn env_008(lab: &Lab<'_>, plugin: &str) -> Outcome {
    let conf = t!(lab.conf_for(plugin).await);
    let mut accepted = Vec::new();
    for bad in ["-lead", "has/slash", "has space", "semi;colon", "ümlaut"] {
        let ns = t!(lab.netns().await);
        let exec = exec_as(lab, plugin, "ADD", &ns, bad, &conf).await;
        if exec.ok() {
            accepted.push(bad);
            let _ = exec_as(lab, plugin, "DEL", &ns, bad, &conf).await;
        }
    }
    let ns = t!(lab.netns().await);
    let good = exec_as(lab, plugin, "ADD", &ns, "A1_b.c-D", &conf).await;
    let _ = exec_as(lab, plugin, "DEL", &ns, "A1_b.c-D", &conf).await;
    judge_container_ids(&accepted, &good)
}

/// Invalid container IDs that ADD accepted, and the ADD with the valid exotic ID.
fn judge_container_ids(accepted: &[&str], good: &Exec) -> Outcome {
    if !accepted.is_empty() {
        return Outcome::fail(format!(
            "container IDs outside [A-Za-z0-9][A-Za-z0-9_.-]* were accepted: {accepted:?} (expected rejection)"
        ));
    }
    t!(expect_success(
        good,
        "ADD with the valid container ID `A1_b.c-D`"
    ));
    Outcome::pass("invalid container IDs rejected; `A1_b.c-D` accepted")
}

/// What happened to one unusable interface name: the ADD and the links left besides `lo`.
struct IfnameTry {
    name: &'static str,
    exec: Exec,
    left: Vec<String>,
}

pub(crate) async fn env_009(lab: &Lab<'_>, plugin: &str) -> Outcome {
    let conf = t!(lab.conf_for(plugin).await);
    let mut tries = Vec::new();
    for bad in ["abcdefghijklmnop", "a/b", "a:b", "a b", ".", "..", ""] {
        let ns = t!(lab.netns().await);
        let exec = lab
            .exec(plugin, &lab.env("ADD", &ns, &cid(lab), bad), &conf)
            .await;
        let left = t!(only_lo(lab, &ns).await);
        if exec.ok() {
            let _ = lab
                .exec(plugin, &lab.env("DEL", &ns, &cid(lab), bad), &conf)
                .await;
        }
        tries.push(IfnameTry {
            name: bad,
            exec,
            left,
        });
    }
    let ns = t!(lab.netns().await);
    let ok = lab
        .exec(
            plugin,
            &lab.env("ADD", &ns, &cid(lab), "abcdefghijklmno"),
            &conf,
        )
        .await;
    let present = t!(lab.links(Some(&ns)).await)
        .iter()
        .any(|l| l.name == "abcdefghijklmno");
    judge_ifnames(&tries, &ok, present)
}

/// Every unusable name must fail without residue; the 15-character name must be created.
fn judge_ifnames(tries: &[IfnameTry], longest: &Exec, longest_present: bool) -> Outcome {
    let mut problems = Vec::new();
    for t in tries {
        let bad = t.name;
        if t.exec.ok() {
            problems.push(format!("ifname {bad:?} accepted"));
        } else if !t.left.is_empty() {
            problems.push(format!("ifname {bad:?} rejected but left {:?}", t.left));
        }
    }
    if !longest.ok() || !longest_present {
        problems.push(format!(
            "the 15-character ifname was not created ({})",
            longest.describe()
        ));
    }
    Outcome::pass_unless(
        problems,
        "unusable interface names fail without residue; a 15-character name works",
    )
}

pub(crate) async fn env_010(lab: &Lab<'_>, plugin: &str) -> Outcome {
    let conf = t!(lab.conf_for(plugin).await);
    let conf = &conf;
    let run = |args: &'static str| async move {
        let ns = lab.netns().await?;
        let mut env = lab.env("ADD", &ns, &cid(lab), "eth0");
        env.args = Some(args.to_owned());
        let exec = lab.exec(plugin, &env, conf).await;
        let _ = exec_in(lab, plugin, "DEL", &ns, conf).await;
        Ok::<_, Outcome>(exec)
    };
    let unknown = t!(run("K8S_POD_NAME=x;FOO=bar").await);
    let ignored = t!(run("IgnoreUnknown=1;K8S_POD_NAME=x;FOO=bar").await);
    let malformed = t!(run("garbage-without-equals").await);
    judge_cni_args(&unknown, &ignored, &malformed)
}

/// Unknown CNI_ARGS keys rejected, accepted with IgnoreUnknown=1; malformed CNI_ARGS rejected.
fn judge_cni_args(unknown: &Exec, ignored: &Exec, malformed: &Exec) -> Outcome {
    let o = Outcome::pass_if(
        !unknown.ok() && ignored.ok() && !malformed.ok(),
        "unknown CNI_ARGS keys rejected unless IgnoreUnknown=1; malformed CNI_ARGS rejected",
        format!(
            "expected unknown keys rejected, IgnoreUnknown=1 accepted, malformed rejected; got: unknown {}, ignore-unknown {}, malformed {}",
            unknown.describe(),
            ignored.describe(),
            malformed.describe()
        ),
    );
    o.with_property("unknown keys", unknown.describe())
        .with_property("IgnoreUnknown=1", ignored.describe())
}

pub(crate) async fn env_011(lab: &Lab<'_>, plugin: &str) -> Outcome {
    let ns = t!(lab.netns().await);
    let conf = t!(lab.conf_for(plugin).await);
    let (subnet, _) = lab.subnet(0);
    let want = subnet.replace(".0/24", ".77");
    let mut env = lab.env("ADD", &ns, &cid(lab), "eth0");
    env.args = Some(format!("IgnoreUnknown=1;IP={want}"));
    let exec = lab.exec(plugin, &env, &conf).await;
    let result = t!(expect_result(&exec, "ADD with CNI_ARGS IP="));
    let addrs = t!(lab.addrs(Some(&ns)).await);
    judge_requested_ip(&want, &read_result(&result), &addrs)
}

/// CNI_ARGS IP=`want`: the address is in the result and configured in the netns.
fn judge_requested_ip(want: &str, result: &Result100, addrs: &[(String, String)]) -> Outcome {
    let got: Vec<String> = result.ip_list().iter().map(|i| i.address.clone()).collect();
    let prefix = format!("{want}/");
    if got.iter().any(|a| a.starts_with(&prefix))
        && addrs.iter().any(|(_, a)| a.starts_with(&prefix))
    {
        Outcome::pass(format!("requested {want} was assigned and configured"))
    } else {
        Outcome::fail(format!(
            "requested IP={want}; result has {got:?}, netns has {addrs:?}"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::{
        addrs, assert_contains, assert_starts_with, err, garbage, ok, ok_empty, reservations,
    };
    use super::*;
    use nfvi_harness::Status;
    use serde_json::json;

    /// (name, ADD, links left, reservations left, expected status, part of the message).
    type Row<'a> = (
        &'a str,
        &'a Exec,
        &'a [String],
        &'a [(String, String)],
        Status,
        &'a str,
    );

    #[test]
    fn a_missing_variable_must_be_code_4_naming_it_without_residue() {
        let named = err(
            1,
            json!({"code": 4, "msg": "required env variables [CNI_NETNS] missing"}),
        );
        let res = reservations(&[("198.18.30.2", "nfvcid1\neth0")]);
        let links = vec!["eth0".to_owned()];
        #[rustfmt::skip]
        let rows: &[Row] = &[
            ("clean rejection", &named, &[], &[], Status::Passed, "rejected with code 4 naming CNI_NETNS"),
            ("other code", &err(1, json!({"code": 7, "msg": "CNI_NETNS"})), &[], &[], Status::Failed, "expected non-zero exit"),
            ("accepted", &ok(json!({"cniVersion": "1.0.0"})), &[], &[], Status::Failed, "expected non-zero exit"),
            ("link left", &named, &links, &[], Status::Failed, "left links [\"eth0\"] and reservations []"),
            ("reservation left", &named, &[], &res, Status::Failed, "reservations [(\"198.18.30.2\""),
        ];
        for (name, exec, left, reserved, status, needle) in rows {
            let o = judge_missing_var("CNI_NETNS", exec, left, reserved);
            assert_eq!(o.status, *status, "{name}: {}", o.message);
            assert!(o.message.contains(needle), "{name}: {}", o.message);
        }
    }

    #[test]
    fn del_without_netns_must_release_the_reservation() {
        let held = reservations(&[("198.18.30.2", "nfvcid1")]);
        let o = judge_del_without_netns(&ok_empty(), &[]);
        assert_eq!(o.status, Status::Passed, "{}", o.message);
        let o = judge_del_without_netns(&ok_empty(), &held);
        assert_eq!(o.status, Status::Failed);
        assert_contains(&o.message, "left reservations");
        let o = judge_del_without_netns(&err(1, json!({"code": 4, "msg": "x"})), &[]);
        assert_eq!(o.status, Status::Failed);
        assert_starts_with(&o.message, "DEL without CNI_NETNS: expected exit 0");
    }

    #[test]
    fn container_ids() {
        let o = judge_container_ids(&[], &ok(json!({})));
        assert_eq!(o.status, Status::Passed);
        let o = judge_container_ids(&["has space"], &ok(json!({})));
        assert_eq!(o.status, Status::Failed);
        assert_contains(&o.message, "[\"has space\"]");
        let o = judge_container_ids(&[], &err(1, json!({"code": 4, "msg": "x"})));
        assert_eq!(o.status, Status::Failed);
        assert_contains(&o.message, "`A1_b.c-D`: expected exit 0");
    }

    #[test]
    fn unusable_ifnames_fail_without_residue() {
        let rejected = |name| IfnameTry {
            name,
            exec: garbage(1, None),
            left: vec![],
        };
        let good = [rejected("a/b"), rejected("")];
        let o = judge_ifnames(&good, &ok(json!({})), true);
        assert_eq!(o.status, Status::Passed, "{}", o.message);
        let leaky = [
            IfnameTry {
                name: "a:b",
                exec: ok(json!({})),
                left: vec![],
            },
            IfnameTry {
                name: ".",
                exec: garbage(1, None),
                left: vec!["eth0".into()],
            },
        ];
        let o = judge_ifnames(&leaky, &ok(json!({})), true);
        assert_eq!(
            o.message,
            "ifname \"a:b\" accepted; ifname \".\" rejected but left [\"eth0\"]"
        );
        let o = judge_ifnames(&good, &ok(json!({})), false);
        assert_eq!(o.status, Status::Failed);
        assert_starts_with(&o.message, "the 15-character ifname was not created");
    }

    #[test]
    fn cni_args_ignore_unknown() {
        let (yes, no) = (ok(json!({})), err(1, json!({"code": 1, "msg": "x"})));
        #[rustfmt::skip]
        let rows = [
            (&no, &yes, &no, Status::Passed),
            (&yes, &yes, &no, Status::Failed),
            (&no, &no, &no, Status::Failed),
            (&no, &yes, &yes, Status::Failed),
        ];
        for (i, (unknown, ignored, malformed, status)) in rows.into_iter().enumerate() {
            let o = judge_cni_args(unknown, ignored, malformed);
            assert_eq!(o.status, status, "row {i}: {}", o.message);
            assert!(o.evidence.properties.contains_key("IgnoreUnknown=1"));
        }
    }

    #[test]
    fn a_requested_ip_must_be_in_the_result_and_the_netns() {
        let want = "198.18.30.77";
        let r = |a: &str| read_result(&json!({"cniVersion": "1.0.0", "ips": [{"address": a}]}));
        let there = addrs(&[("eth0", "198.18.30.77/24")]);
        let other = addrs(&[("eth0", "198.18.30.2/24")]);
        assert_eq!(
            judge_requested_ip(want, &r("198.18.30.77/24"), &there).status,
            Status::Passed
        );
        let o = judge_requested_ip(want, &r("198.18.30.2/24"), &other);
        assert_eq!(o.status, Status::Failed);
        assert_contains(&o.message, "result has [\"198.18.30.2/24\"]");
        assert_eq!(
            judge_requested_ip(want, &r("198.18.30.77/24"), &other).status,
            Status::Failed
        );
        // A longer address with the wanted one as prefix is not the wanted one.
        assert_eq!(
            judge_requested_ip(want, &r("198.18.30.770/24"), &there).status,
            Status::Failed
        );
    }
}
