//! CNI-DEL: DEL after ADD, repeated, of unknown attachments, and with parts of the
//! environment gone.

use nfvi_harness::Outcome;

use super::{
    attach, cid, exec_as, exec_in, fail_expected, meta_conf, net_name, only_lo, snapshot_diff,
    uses_ipam, with_prev,
};
use crate::lab::{Exec, Lab, Stdout, expect_success};
use crate::netstate::Link;
use crate::result::{Result100, read_result};

/// What DEL after ADD left: the invocation, the container and host links, whether the
/// address is still reserved, and the host snapshots around the attachment.
struct DelObserved {
    del: Exec,
    container_left: Vec<String>,
    host_links: Vec<Link>,
    still_reserved: bool,
    host_before_add: Vec<String>,
    host_after_del: Vec<String>,
}

pub(crate) async fn del_001(lab: &Lab<'_>, plugin: &str) -> Outcome {
    t!(lab.conf_for(plugin).await);
    let snapshot = t!(lab.host_snapshot().await);
    let a = t!(attach(lab, plugin).await);
    let del = a.exec(lab, plugin, "DEL").await;
    let container_left = t!(only_lo(lab, &a.ns).await);
    let host_links = t!(lab.links(None).await);
    let still_reserved = uses_ipam(plugin) && !lab.reservations(&net_name(&a.conf)).is_empty();
    let seen = DelObserved {
        del,
        container_left,
        host_links,
        still_reserved,
        host_before_add: snapshot,
        host_after_del: t!(lab.host_snapshot().await),
    };
    judge_del_cleanup(&read_result(&a.result), &seen)
}

/// DEL: exit 0, empty stdout, the container's interfaces and the result's host interfaces
/// gone, the address released, and the runtime namespace back to its state before ADD,
/// except for the bridge itself, which the bridge plugin creates on first use and
/// deliberately keeps.
fn judge_del_cleanup(r: &Result100, seen: &DelObserved) -> Outcome {
    let mut p = Vec::new();
    if !seen.del.ok() {
        p.push(format!("DEL: {}", seen.del.describe()));
    }
    if seen.del.stdout != Stdout::Empty {
        p.push(format!(
            "DEL printed on stdout: {}",
            seen.del.stdout_text.trim()
        ));
    }
    if !seen.container_left.is_empty() {
        p.push(format!("the netns still has {:?}", seen.container_left));
    }
    let stale: Vec<&String> = r
        .interface_list()
        .iter()
        .filter(|i| i.sandbox.is_none() && i.name != "nfvbr0" && !i.name.is_empty())
        .map(|i| &i.name)
        .filter(|n| seen.host_links.iter().any(|l| &l.name == *n))
        .collect();
    if !stale.is_empty() {
        p.push(format!("host interfaces from the result remain: {stale:?}"));
    }
    if seen.still_reserved {
        p.push("the address is still reserved".to_owned());
    }
    let [mut added, removed] = snapshot_diff(&seen.host_before_add, &seen.host_after_del);
    added.retain(|l| l.as_str() != "link nfvbr0");
    if !added.is_empty() || !removed.is_empty() {
        p.push(format!(
            "host state differs after DEL: added {added:?}, removed {removed:?}"
        ));
    }
    Outcome::pass_unless(
        p,
        "DEL: exit 0, empty stdout, interfaces gone, address released, host links, iptables and qdiscs as before",
    )
}

pub(crate) async fn del_002(lab: &Lab<'_>, plugin: &str) -> Outcome {
    let a = t!(attach(lab, plugin).await);
    let conf = with_prev(&a.conf, &a.result);
    let mut dels = Vec::new();
    for _ in 1..=3 {
        let exec = exec_in(lab, plugin, "DEL", &a.ns, &conf).await;
        let failed = !exec.ok();
        dels.push(exec);
        if failed {
            break;
        }
    }
    judge_repeated_del(&dels)
}

/// Three DELs of the same attachment all exit 0 (observation stops at the first failure).
fn judge_repeated_del(dels: &[Exec]) -> Outcome {
    for (i, exec) in (1..).zip(dels) {
        if !exec.ok() {
            return fail_expected(&format!("DEL #{i} of the same attachment"), "exit 0", exec);
        }
    }
    Outcome::pass("three DELs of the same attachment all exited 0")
}

pub(crate) async fn del_003(lab: &Lab<'_>, plugin: &str) -> Outcome {
    let ns = t!(lab.netns().await);
    let conf = match plugin {
        "bridge" | "macvlan" | "ptp" | "loopback" => t!(lab.conf_for(plugin).await),
        _ => meta_conf(lab, plugin),
    };
    let exec = exec_as(lab, plugin, "DEL", &ns, "nfvunknown", &conf).await;
    t!(expect_success(
        &exec,
        "DEL of an attachment that was never added"
    ));
    Outcome::pass("DEL of a never-added attachment exited 0")
}

pub(crate) async fn del_004(lab: &Lab<'_>, plugin: &str) -> Outcome {
    let a = t!(attach(lab, plugin).await);
    t!(lab.delete_netns(&a.ns).await);
    let exec = a.exec(lab, plugin, "DEL").await;
    let still_reserved = uses_ipam(plugin) && !lab.reservations(&net_name(&a.conf)).is_empty();
    judge_del_after_netns_gone(&exec, still_reserved)
}

/// DEL after the netns was deleted: exit 0 and the address released.
fn judge_del_after_netns_gone(del: &Exec, still_reserved: bool) -> Outcome {
    t!(expect_success(del, "DEL after the netns was deleted"));
    if still_reserved {
        return Outcome::fail(
            "DEL after the netns was deleted exited 0 but did not release the address",
        );
    }
    Outcome::pass("DEL with a stale CNI_NETNS exited 0 and released the address")
}

pub(crate) async fn del_005(lab: &Lab<'_>, plugin: &str) -> Outcome {
    let a = t!(attach(lab, plugin).await);
    t!(lab
        .run_ok("ip", &["-n", &lab.rt, "link", "del", "nfvmm0"])
        .await);
    let exec = a.exec(lab, plugin, "DEL").await;
    t!(expect_success(
        &exec,
        "macvlan DEL after its master disappeared"
    ));
    Outcome::pass("DEL succeeded after the master was deleted")
}

pub(crate) async fn del_006(lab: &Lab<'_>, plugin: &str) -> Outcome {
    let a = t!(attach(lab, plugin).await);
    let exec = exec_in(lab, plugin, "DEL", &a.ns, &a.conf).await;
    let left = t!(only_lo(lab, &a.ns).await);
    let res = lab.reservations(&net_name(&a.conf));
    judge_del_without_prev(&exec, &left, &res)
}

/// DEL without prevResult after a real ADD: exit 0, no links, no reservations.
fn judge_del_without_prev(del: &Exec, left: &[String], res: &[(String, String)]) -> Outcome {
    t!(expect_success(del, "DEL without prevResult"));
    if !left.is_empty() || !res.is_empty() {
        return Outcome::fail(format!(
            "DEL without prevResult exited 0 but left {left:?} and reservations {res:?}"
        ));
    }
    Outcome::pass("DEL without prevResult exited 0 and cleaned up")
}

pub(crate) async fn del_007(lab: &Lab<'_>, plugin: &str) -> Outcome {
    let a = t!(attach(lab, plugin).await);
    let file = lab.dir.join("not-a-netns");
    if let Err(e) = std::fs::write(&file, b"") {
        return Outcome::error(format!("cannot create {}: {e}", file.display()));
    }
    let mut env = lab.env("DEL", &a.ns, &cid(lab), "eth0");
    env.netns = Some(file.display().to_string());
    let exec = lab.exec(plugin, &env, &with_prev(&a.conf, &a.result)).await;
    let res = lab.reservations(&net_name(&a.conf));
    judge_del_with_file_netns(&exec, &res)
}

/// DEL with CNI_NETNS naming a regular file: best effort, so exit 0 and the address released.
fn judge_del_with_file_netns(del: &Exec, res: &[(String, String)]) -> Outcome {
    Outcome::pass_if(
        del.ok() && res.is_empty(),
        "DEL with CNI_NETNS pointing at a regular file exited 0 and released the address",
        format!(
            "expected a best-effort DEL (exit 0, address released); got {}, reservations {res:?}",
            del.describe()
        ),
    )
}

pub(crate) async fn del_008(lab: &Lab<'_>, plugin: &str) -> Outcome {
    let a = t!(attach(lab, plugin).await);
    let exec = a.exec(lab, plugin, "DEL").await;
    judge_del_silent(&exec)
}

/// A successful DEL prints nothing.
fn judge_del_silent(del: &Exec) -> Outcome {
    t!(expect_success(del, "DEL"));
    Outcome::pass_if(
        del.stdout == Stdout::Empty,
        "successful DEL printed nothing",
        format!("successful DEL printed {}", del.stdout_text.trim()),
    )
}

pub(crate) async fn del_009(lab: &Lab<'_>, plugin: &str) -> Outcome {
    let a = t!(attach(lab, plugin).await);
    let env = lab.env("DEL", &a.ns, &cid(lab), "eth0").without_path();
    let exec = lab.exec(plugin, &env, &with_prev(&a.conf, &a.result)).await;
    let res = lab.reservations(&net_name(&a.conf));
    judge_del_without_path(&exec, uses_ipam(plugin), &res)
}

/// DEL without CNI_PATH of a live attachment exits 0 and, when the plugin delegates to IPAM,
/// still releases the reservation.
fn judge_del_without_path(del: &Exec, uses_ipam: bool, res: &[(String, String)]) -> Outcome {
    t!(expect_success(
        del,
        "DEL without CNI_PATH for a live attachment"
    ));
    if uses_ipam && !res.is_empty() {
        return Outcome::fail(format!(
            "DEL without CNI_PATH exited 0 but the IPAM reservation {res:?} was not released"
        ));
    }
    Outcome::pass("DEL without CNI_PATH succeeded")
}

#[cfg(test)]
mod tests {
    use super::super::testkit::{
        assert_starts_with, bridge_result, err, link, ok, ok_empty, refused, reservations,
    };
    use super::*;
    use nfvi_harness::Status;
    use serde_json::json;

    fn lines(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    fn clean() -> DelObserved {
        DelObserved {
            del: ok_empty(),
            container_left: vec![],
            host_links: vec![link("lo", 1, None), link("nfvbr0", 2, Some("bridge"))],
            still_reserved: false,
            host_before_add: lines(&["link lo", "iptables nat -A POSTROUTING -j X"]),
            host_after_del: lines(&["link lo", "link nfvbr0", "iptables nat -A POSTROUTING -j X"]),
        }
    }

    #[test]
    fn del_restores_the_host_except_the_bridge() {
        let r = read_result(&bridge_result());
        let o = judge_del_cleanup(&r, &clean());
        assert_eq!(o.status, Status::Passed, "{}", o.message);

        let mut dirty = clean();
        dirty.del = ok(json!({"cniVersion": "1.0.0"}));
        dirty.container_left = lines(&["eth0"]);
        dirty.host_links.push(link("veth1", 3, Some("veth")));
        dirty.still_reserved = true;
        dirty.host_after_del = lines(&[
            "link lo",
            "link nfvbr0",
            "link veth1",
            "tc qdisc tbf 1: dev veth1",
        ]);
        let o = judge_del_cleanup(&r, &dirty);
        assert_eq!(
            o.message.split("; ").collect::<Vec<_>>(),
            [
                "DEL printed on stdout: {\"cniVersion\":\"1.0.0\"}",
                "the netns still has [\"eth0\"]",
                "host interfaces from the result remain: [\"veth1\"]",
                "the address is still reserved",
                "host state differs after DEL: added [\"link veth1\", \"tc qdisc tbf 1: dev veth1\"], removed [\"iptables nat -A POSTROUTING -j X\"]",
            ]
        );
        let mut failed = clean();
        failed.del = refused("x");
        let o = judge_del_cleanup(&r, &failed);
        assert_starts_with(&o.message, "DEL: bridge ADD: exit 1");
        assert!(
            o.message.contains("DEL printed on stdout"),
            "an error object on stdout is output too"
        );
    }

    #[test]
    fn repeated_del() {
        assert_eq!(
            judge_repeated_del(&[ok_empty(), ok_empty(), ok_empty()]).status,
            Status::Passed
        );
        let o = judge_repeated_del(&[
            ok_empty(),
            err(1, json!({"code": 999, "msg": "Link not found"})),
        ]);
        assert_starts_with(
            &o.message,
            "DEL #2 of the same attachment: expected exit 0; got bridge ADD: exit 1",
        );
    }

    #[test]
    fn del_variants_release_the_address() {
        let res = reservations(&[("198.18.30.2", "nfvcid1")]);
        let failed = err(
            4,
            json!({"code": 4, "msg": "required env variables [CNI_PATH] missing"}),
        );
        assert_eq!(
            judge_del_after_netns_gone(&ok_empty(), false).status,
            Status::Passed
        );
        assert_eq!(
            judge_del_after_netns_gone(&ok_empty(), true).message,
            "DEL after the netns was deleted exited 0 but did not release the address"
        );
        assert_eq!(
            judge_del_after_netns_gone(&failed, false).status,
            Status::Failed
        );

        assert_eq!(
            judge_del_without_prev(&ok_empty(), &[], &[]).status,
            Status::Passed
        );
        let o = judge_del_without_prev(&ok_empty(), &lines(&["eth0"]), &res);
        assert_eq!(
            o.message,
            "DEL without prevResult exited 0 but left [\"eth0\"] and reservations [(\"198.18.30.2\", \"nfvcid1\")]"
        );

        assert_eq!(
            judge_del_with_file_netns(&ok_empty(), &[]).status,
            Status::Passed
        );
        assert_eq!(
            judge_del_with_file_netns(&ok_empty(), &res).status,
            Status::Failed
        );
        assert!(judge_del_with_file_netns(&failed, &[]).message.starts_with(
            "expected a best-effort DEL (exit 0, address released); got bridge ADD: exit 4"
        ));

        assert_eq!(
            judge_del_without_path(&ok_empty(), true, &[]).status,
            Status::Passed
        );
        assert_eq!(
            judge_del_without_path(&ok_empty(), false, &res).status,
            Status::Passed,
            "no IPAM, nothing to release"
        );
        assert!(
            judge_del_without_path(&ok_empty(), true, &res)
                .message
                .contains("the IPAM reservation [(\"198.18.30.2\", \"nfvcid1\")] was not released")
        );
        let o = judge_del_without_path(&failed, true, &[]);
        assert_starts_with(
            &o.message,
            "DEL without CNI_PATH for a live attachment: expected exit 0; got bridge ADD: exit 4",
        );
    }

    #[test]
    fn del_prints_nothing() {
        assert_eq!(judge_del_silent(&ok_empty()).status, Status::Passed);
        assert_eq!(
            judge_del_silent(&ok(json!({"a": 1}))).message,
            "successful DEL printed {\"a\":1}"
        );
        assert_eq!(judge_del_silent(&err(1, json!({}))).status, Status::Failed);
    }
}
