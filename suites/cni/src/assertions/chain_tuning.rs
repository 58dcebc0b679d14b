//! CNI-CHAIN, tuning: MAC and MTU set, reported and restored; sysctls inside the container
//! only; CHECK right after ADD with sysctl keys. Each run after a bridge ADD.

use nfvi_harness::Outcome;
use serde_json::json;

use super::chain_step::{bridge_then, bridge_then_as};
use super::{add_result, exec_after, exec_in, with_prev};
use crate::lab::{Exec, Lab};
use crate::netstate::Link;
use crate::result::{Result100, read_result};

/// tuning's work on eth0, seen in the kernel and the result, and undone by DEL.
struct TuningObserved {
    before: Option<Link>,
    during: Option<Link>,
    result: Result100,
    check: Exec,
    del: Exec,
    after: Option<Link>,
}

pub(crate) async fn chain_003(lab: &Lab<'_>, plugin: &str) -> Outcome {
    let ns = t!(lab.netns().await);
    let (_, prev) = t!(bridge_then(lab, &ns, &lab.version).await);
    let eth0 = async || {
        lab.links(Some(&ns))
            .await
            .map(|l| l.into_iter().find(|l| l.name == "eth0"))
    };
    let before = t!(eth0().await);
    let mac = "0e:00:00:00:34:43";
    let conf = json!({"cniVersion": lab.version, "name": "nfvnet-br", "type": plugin, "mtu": 1300, "promisc": true,
                      "runtimeConfig": {"mac": mac}, "prevResult": prev});
    let out = t!(add_result(lab, plugin, &ns, &conf, "tuning ADD").await);
    let during = t!(eth0().await);
    let check = exec_after(lab, plugin, "CHECK", &ns, &conf, &out).await;
    let del = exec_after(lab, plugin, "DEL", &ns, &conf, &out).await;
    let seen = TuningObserved {
        before,
        during,
        result: read_result(&out),
        check,
        del,
        after: t!(eth0().await),
    };
    judge_tuning(mac, 1300, &seen)
}

/// tuning set `mac` and `mtu` on eth0 and reported the MAC; CHECK and DEL succeeded and DEL
/// restored the MAC and MTU eth0 had before.
fn judge_tuning(mac: &str, mtu: u64, seen: &TuningObserved) -> Outcome {
    fn macs(l: &Option<Link>) -> Option<&String> {
        l.as_ref().map(|l| &l.mac)
    }
    fn mtus(l: &Option<Link>) -> Option<u64> {
        l.as_ref().map(|l| l.mtu)
    }
    let reported = super::add::reported_mac(&seen.result, "eth0");
    let mut p = Vec::new();
    if seen.during.as_ref().map(|l| l.mac.as_str()) != Some(mac) || reported != mac {
        p.push(format!(
            "expected MAC {mac} in the kernel and the result; kernel {:?}, result {reported:?}",
            macs(&seen.during)
        ));
    }
    if mtus(&seen.during) != Some(mtu) {
        p.push(format!("MTU is {:?}, tuning set {mtu}", mtus(&seen.during)));
    }
    if !seen.check.ok() {
        p.push(format!("CHECK: {}", seen.check.describe()));
    }
    if !seen.del.ok() {
        p.push(format!("DEL: {}", seen.del.describe()));
    }
    if macs(&seen.after) != macs(&seen.before) || mtus(&seen.after) != mtus(&seen.before) {
        p.push(format!(
            "DEL did not restore eth0: MAC {:?} -> {:?}, MTU {:?} -> {:?}",
            macs(&seen.before),
            macs(&seen.after),
            mtus(&seen.before),
            mtus(&seen.after)
        ));
    }
    Outcome::pass_unless(
        p,
        format!("tuning set MAC {mac} and MTU {mtu}, CHECK passed, DEL restored both"),
    )
}

async fn sysctl_in(lab: &Lab<'_>, ns: &str, key: &str) -> String {
    let path = format!("/proc/sys/{}", key.replace('.', "/"));
    lab.run_ok("ip", &["netns", "exec", ns, "cat", &path])
        .await
        .unwrap_or_default()
        .trim()
        .to_owned()
}

/// The arp_ignore sysctls around a tuning ADD, and the ADD of a non-net sysctl.
struct SysctlObserved {
    add: Exec,
    /// `net.ipv4.conf.eth0.arp_ignore` and `.all.` inside the container.
    container: [String; 2],
    /// `net.ipv4.conf.all.arp_ignore` of the runtime namespace before and after.
    runtime: [String; 2],
    non_net: Exec,
}

pub(crate) async fn chain_004(lab: &Lab<'_>, plugin: &str) -> Outcome {
    let ns = t!(lab.netns().await);
    let (_, prev) = t!(bridge_then(lab, &ns, &lab.version).await);
    let rt_all_before = sysctl_in(lab, &lab.rt, "net.ipv4.conf.all.arp_ignore").await;
    let conf = json!({"cniVersion": lab.version, "name": "nfvnet-br", "type": plugin, "prevResult": prev,
                      "sysctl": {"net.ipv4.conf.IFNAME.arp_ignore": "2", "net.ipv4.conf.all.arp_ignore": "1"}});
    let add = exec_in(lab, plugin, "ADD", &ns, &conf).await;
    let eth0 = sysctl_in(lab, &ns.name, "net.ipv4.conf.eth0.arp_ignore").await;
    let all = sysctl_in(lab, &ns.name, "net.ipv4.conf.all.arp_ignore").await;
    let rt_all = sysctl_in(lab, &lab.rt, "net.ipv4.conf.all.arp_ignore").await;
    let bad = json!({"cniVersion": lab.version, "name": "nfvnet-br", "type": plugin, "prevResult": prev, "sysctl": {"kernel.hostname": "nfvpwned"}});
    let non_net = exec_in(lab, plugin, "ADD", &ns, &bad).await;
    judge_sysctls(&SysctlObserved {
        add,
        container: [eth0, all],
        runtime: [rt_all_before, rt_all],
        non_net,
    })
}

/// IFNAME is substituted, the sysctls land in the container netns only, and a non-net sysctl
/// is refused.
fn judge_sysctls(seen: &SysctlObserved) -> Outcome {
    let mut p = Vec::new();
    if !seen.add.ok() {
        p.push(format!("tuning ADD: {}", seen.add.describe()));
    }
    let [eth0, all] = &seen.container;
    if eth0 != "2" || all != "1" {
        p.push(format!(
            "inside the netns eth0 arp_ignore = {eth0:?} (want 2), all = {all:?} (want 1)"
        ));
    }
    let [rt_before, rt_after] = &seen.runtime;
    if rt_after != rt_before {
        p.push(format!(
            "the runtime namespace's all.arp_ignore changed {rt_before:?} -> {rt_after:?}"
        ));
    }
    if seen.non_net.ok() {
        p.push("a non-net sysctl (kernel.hostname) was accepted".to_owned());
    }
    Outcome::pass_unless(
        p,
        "IFNAME substituted; sysctls applied in the container netns only; kernel.hostname refused",
    )
}

pub(crate) async fn chain_012(lab: &Lab<'_>, plugin: &str) -> Outcome {
    let mut tries = Vec::new();
    for (n, key) in [
        "net.ipv4.conf.IFNAME.arp_notify",
        "net.ipv4.conf.eth0.arp_notify",
    ]
    .into_iter()
    .enumerate()
    {
        let ns = t!(lab.netns().await);
        let cid = format!("nfvsysctl{n}");
        let (_, prev) = t!(bridge_then_as(lab, &ns, &lab.version, &cid).await);
        let conf = json!({"cniVersion": lab.version, "name": "nfvnet-br", "type": plugin, "sysctl": {key: "1"}});
        let add = lab
            .exec(
                plugin,
                &lab.env("ADD", &ns, &cid, "eth0"),
                &with_prev(&conf, &prev),
            )
            .await;
        let check = match add.json().filter(|_| add.ok()) {
            Some(r) => Some(
                lab.exec(
                    plugin,
                    &lab.env("CHECK", &ns, &cid, "eth0"),
                    &with_prev(&conf, r),
                )
                .await,
            ),
            None => None,
        };
        tries.push((key, add, check));
    }
    judge_check_after_sysctl(&tries)
}

/// tuning ADD with each sysctl key succeeds and CHECK right after it (`None` when ADD failed
/// and CHECK was not run) passes.
fn judge_check_after_sysctl(tries: &[(&str, Exec, Option<Exec>)]) -> Outcome {
    let mut p = Vec::new();
    for (key, add, check) in tries {
        match check.as_ref().filter(|_| add.ok() && add.json().is_some()) {
            None => p.push(format!("ADD with {key}: {}", add.describe())),
            Some(check) if !check.ok() => p.push(format!(
                "CHECK right after ADD with {key}: {}",
                check.describe()
            )),
            Some(_) => {}
        }
    }
    Outcome::pass_unless(
        p,
        "CHECK right after ADD passed for the IFNAME placeholder and a literal key",
    )
}

#[cfg(test)]
mod tests {
    use super::super::testkit::{assert_starts_with, link, ok, ok_empty, refused};
    use super::*;
    use nfvi_harness::Status;

    fn eth0(mac: &str, mtu: u64) -> Option<Link> {
        let mut l = link("eth0", 2, Some("veth"));
        mac.clone_into(&mut l.mac);
        l.mtu = mtu;
        Some(l)
    }

    #[test]
    fn tuning_sets_reports_and_restores() {
        let mac = "0e:00:00:00:34:43";
        let seen = |during, reported: &str, after| TuningObserved {
            before: eth0("0e:00:00:00:00:01", 1500),
            during,
            result: read_result(&json!({"interfaces": [{"name": "eth0", "mac": reported}]})),
            check: ok_empty(),
            del: ok_empty(),
            after,
        };
        let good = seen(eth0(mac, 1300), mac, eth0("0e:00:00:00:00:01", 1500));
        assert_eq!(
            judge_tuning(mac, 1300, &good).message,
            "tuning set MAC 0e:00:00:00:34:43 and MTU 1300, CHECK passed, DEL restored both"
        );
        let o = judge_tuning(
            mac,
            1300,
            &seen(eth0(mac, 1500), "0e:00:00:00:00:01", eth0(mac, 1300)),
        );
        assert_eq!(
            o.message,
            [
                "expected MAC 0e:00:00:00:34:43 in the kernel and the result; kernel Some(\"0e:00:00:00:34:43\"), result \"0e:00:00:00:00:01\"",
                "MTU is Some(1500), tuning set 1300",
                "DEL did not restore eth0: MAC Some(\"0e:00:00:00:00:01\") -> Some(\"0e:00:00:00:34:43\"), MTU Some(1500) -> Some(1300)",
            ]
            .join("; ")
        );
        let mut failing = seen(eth0(mac, 1300), mac, eth0("0e:00:00:00:00:01", 1500));
        failing.check = refused("x");
        failing.del = refused("x");
        let o = judge_tuning(mac, 1300, &failing);
        assert!(
            o.message.starts_with("CHECK: bridge ADD: exit 1")
                && o.message.contains("; DEL: bridge ADD: exit 1"),
            "{}",
            o.message
        );
        assert_eq!(
            judge_tuning(mac, 1300, &seen(None, mac, None)).status,
            Status::Failed
        );
    }

    #[test]
    fn sysctls_land_in_the_container_only() {
        let seen = |add, c: [&str; 2], r: [&str; 2], non_net| SysctlObserved {
            add,
            container: c.map(str::to_owned),
            runtime: r.map(str::to_owned),
            non_net,
        };
        let o = judge_sysctls(&seen(ok(json!({})), ["2", "1"], ["0", "0"], refused("x")));
        assert_eq!(o.status, Status::Passed, "{}", o.message);
        let o = judge_sysctls(&seen(refused("x"), ["0", ""], ["0", "1"], ok(json!({}))));
        assert_eq!(
            o.message.split("; ").skip(1).collect::<Vec<_>>(),
            [
                "inside the netns eth0 arp_ignore = \"0\" (want 2), all = \"\" (want 1)",
                "the runtime namespace's all.arp_ignore changed \"0\" -> \"1\"",
                "a non-net sysctl (kernel.hostname) was accepted",
            ]
        );
        assert_starts_with(&o.message, "tuning ADD: bridge ADD: exit 1");
    }

    #[test]
    fn check_right_after_a_sysctl_add() {
        let key = "net.ipv4.conf.IFNAME.arp_notify";
        let added = || ok(json!({"cniVersion": "1.0.0"}));
        assert_eq!(
            judge_check_after_sysctl(&[(key, added(), Some(ok_empty()))]).status,
            Status::Passed
        );
        let o = judge_check_after_sysctl(&[
            (key, added(), Some(refused("x"))),
            ("net.ipv4.conf.eth0.arp_notify", refused("x"), None),
        ]);
        assert_eq!(
            o.message,
            "CHECK right after ADD with net.ipv4.conf.IFNAME.arp_notify: bridge ADD: exit 1, stdout {\"code\":999,\"msg\":\"x\"}; ADD with net.ipv4.conf.eth0.arp_notify: bridge ADD: exit 1, stdout {\"code\":999,\"msg\":\"x\"}"
        );
        assert_eq!(
            judge_check_after_sysctl(&[(key, ok_empty(), Some(ok_empty()))]).status,
            Status::Failed,
            "an ADD without a result"
        );
    }
}
