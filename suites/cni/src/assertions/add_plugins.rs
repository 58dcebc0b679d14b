//! CNI-ADD, plugin-specific part: macvlan, ptp and loopback attachments, bridge DNS and
//! ipMasq.

use nfvi_harness::Outcome;
use serde_json::{Value, json};

use super::add::{NsState, host_interfaces, judge_kernel_agrees, observe_ns};
use super::{add_result, attach, cid, exec_after, exec_as};
use crate::lab::{Exec, Lab, expect_result, expect_success};
use crate::netstate::{Link, RouteEntry};
use crate::result::{Result100, read_result};

pub(crate) async fn add_011(lab: &Lab<'_>, plugin: &str) -> Outcome {
    let a = t!(attach(lab, plugin).await);
    let k = t!(observe_ns(lab, &a.ns).await);
    let master = t!(lab.links(None).await)
        .into_iter()
        .find(|l| l.name == "nfvmm0");
    judge_macvlan(&read_result(&a.result), &a.ns.path, &k, master.as_ref())
}

/// The MV fixture: eth0 agrees with the result, is a bridge-mode macvlan of the master
/// `nfvmm0`, and is the result's only interface.
fn judge_macvlan(r: &Result100, sandbox: &str, k: &NsState, master: Option<&Link>) -> Outcome {
    let mut p = judge_kernel_agrees(r, sandbox, "eth0", k);
    match (k.link("eth0"), master) {
        (Some(l), Some(m)) => {
            if l.kind.as_deref() != Some("macvlan") {
                p.push(format!("eth0 is {:?}, not macvlan", l.kind));
            }
            if l.mode.as_deref() != Some("bridge") {
                p.push(format!("macvlan mode is {:?}, configured bridge", l.mode));
            }
            if l.link_index != Some(m.index) {
                p.push(format!(
                    "lower device index {:?} is not the master nfvmm0 ({})",
                    l.link_index, m.index
                ));
            }
        }
        _ => p.push("eth0 or the master nfvmm0 is missing".to_owned()),
    }
    let n = r.interface_list().len();
    if n != 1 {
        p.push(format!(
            "the result lists {n} interfaces, expected exactly 1"
        ));
    }
    Outcome::pass_unless(
        p,
        "eth0 is a bridge-mode macvlan of nfvmm0 matching the result",
    )
}

/// What a ptp attachment looked like: the container, the host routes, DEL and the host after.
struct PtpObserved {
    container: NsState,
    host_routes: Vec<RouteEntry>,
    del: Exec,
    host_routes_after: Vec<RouteEntry>,
    host_links_after: Vec<Link>,
}

pub(crate) async fn add_012(lab: &Lab<'_>, plugin: &str) -> Outcome {
    let a = t!(attach(lab, plugin).await);
    let container = t!(observe_ns(lab, &a.ns).await);
    let host_routes = t!(lab.routes(None).await);
    let del = a.exec(lab, plugin, "DEL").await;
    let seen = PtpObserved {
        container,
        host_routes,
        del,
        host_routes_after: t!(lab.routes(None).await),
        host_links_after: t!(lab.links(None).await),
    };
    judge_ptp(&read_result(&a.result), &a.ns.path, &seen)
}

/// ptp: eth0 agrees with the result, the host has a /32 route to the container address via
/// the result's host veth, and DEL removes both.
fn judge_ptp(r: &Result100, sandbox: &str, seen: &PtpObserved) -> Outcome {
    let mut p = judge_kernel_agrees(r, sandbox, "eth0", &seen.container);
    let ip = r.first_ip();
    let host_veth = host_interfaces(r).first().copied().unwrap_or_default();
    if !seen
        .host_routes
        .iter()
        .any(|e| e.dst == ip && e.dev.as_deref() == Some(host_veth))
    {
        p.push(format!("no host /32 route to {ip} via {host_veth}"));
    }
    t!(expect_success(&seen.del, "DEL"));
    if seen.host_routes_after.iter().any(|e| e.dst == ip)
        || seen.host_links_after.iter().any(|l| l.name == host_veth)
    {
        p.push(format!(
            "after DEL the host veth {host_veth} or the route to {ip} remains"
        ));
    }
    Outcome::pass_unless(
        p,
        format!("veth pair with host route {ip}/32 via {host_veth}; gone after DEL"),
    )
}

pub(crate) async fn add_013(lab: &Lab<'_>, plugin: &str) -> Outcome {
    let ns = t!(lab.netns().await);
    let conf = lab.loopback_conf();
    let exec = lab
        .exec(plugin, &lab.env("ADD", &ns, &cid(lab), "eth7"), &conf)
        .await;
    let r = t!(expect_result(&exec, "loopback ADD"));
    let lo = t!(lab.links(Some(&ns)).await)
        .into_iter()
        .find(|l| l.name == "lo");
    judge_loopback(&read_result(&r), lo.as_ref(), &ns.path).with_property("result", r)
}

/// loopback: lo is UP and the result lists it with the sandbox and 127.0.0.1/8.
fn judge_loopback(r: &Result100, lo: Option<&Link>, sandbox: &str) -> Outcome {
    let mut p = Vec::new();
    if !lo.is_some_and(|l| l.up) {
        p.push("lo is not UP".to_owned());
    }
    if !r
        .interface_list()
        .iter()
        .any(|i| i.name == "lo" && i.sandbox.as_deref() == Some(sandbox))
    {
        p.push("the result does not list lo with the sandbox".to_owned());
    }
    if !r.ip_list().iter().any(|i| i.address == "127.0.0.1/8") {
        p.push("the result does not list 127.0.0.1/8".to_owned());
    }
    Outcome::pass_unless(p, "lo UP; result lists lo with the sandbox and 127.0.0.1/8")
}

pub(crate) async fn add_014(lab: &Lab<'_>, plugin: &str) -> Outcome {
    let resolv = lab.dir.join("resolv.conf");
    if let Err(e) = std::fs::write(&resolv, "nameserver 198.18.39.53\nsearch nfv.example\n") {
        return Outcome::error(format!("cannot write {}: {e}", resolv.display()));
    }
    let mut ipam = lab.host_local(3);
    ipam.as_object_mut().expect("object").remove("routes");
    ipam["resolvConf"] = resolv.display().to_string().into();
    let ns = t!(lab.netns().await);
    let direct = json!({"cniVersion": lab.version, "name": "nfvnet-dns", "ipam": ipam});
    let ipam_result = t!(expect_result(
        &exec_as(lab, "host-local", "ADD", &ns, "nfvdns0", &direct).await,
        "host-local ADD with resolvConf"
    ));
    let mut plugin_dns = lab.bridge_conf();
    plugin_dns["ipam"] = ipam.clone();
    plugin_dns["dns"] = json!({"nameservers": ["198.18.39.54"]});
    let ns1 = t!(lab.netns().await);
    let with_plugin_dns = t!(expect_result(
        &exec_as(lab, plugin, "ADD", &ns1, "nfvdns1", &plugin_dns).await,
        "bridge ADD with plugin-level dns"
    ));
    let mut only_ipam = lab.bridge_conf();
    only_ipam["ipam"] = ipam;
    let ns2 = t!(lab.netns().await);
    let with_ipam_dns = t!(expect_result(
        &exec_as(lab, plugin, "ADD", &ns2, "nfvdns2", &only_ipam).await,
        "bridge ADD with IPAM dns only"
    ));
    judge_dns(
        dns_of(&with_plugin_dns),
        dns_of(&with_ipam_dns),
        dns_of(&ipam_result),
    )
}

/// A result's `dns` block as JSON (`null` when absent): compared and shown verbatim.
fn dns_of(result: &Value) -> &Value {
    result.get("dns").unwrap_or(&Value::Null)
}

/// bridge copies the plugin-level `dns` (198.18.39.54) into its result, and with IPAM DNS only
/// its result carries exactly the DNS the IPAM plugin returned.
fn judge_dns(with_plugin_dns: &Value, with_ipam_dns: &Value, from_ipam: &Value) -> Outcome {
    let mut p = Vec::new();
    if with_plugin_dns.get("nameservers") != Some(&json!(["198.18.39.54"])) {
        p.push(format!(
            "the plugin-level dns block was not copied: {with_plugin_dns}"
        ));
    }
    if with_ipam_dns != from_ipam {
        p.push(format!("the DNS host-local returned ({from_ipam}) is not in the bridge result ({with_ipam_dns}); 0.4.0 says they should match"));
    }
    let o = Outcome::pass_unless(p, "plugin-level dns copied; IPAM dns propagated");
    o.with_property("host-local dns", from_ipam.to_string())
        .with_property("bridge dns (IPAM only)", with_ipam_dns.to_string())
}

pub(crate) async fn add_015(lab: &Lab<'_>, plugin: &str) -> Outcome {
    let ns = t!(lab.netns().await);
    let mut conf = t!(lab.conf_for(plugin).await);
    conf["ipMasq"] = true.into();
    let r = t!(add_result(lab, plugin, &ns, &conf, "ADD with ipMasq").await);
    let rt = lab.rt.clone();
    let nat_args = ["netns", "exec", rt.as_str(), "iptables-save", "-t", "nat"];
    let before = t!(lab.run_ok("ip", &nat_args).await);
    let del = exec_after(lab, plugin, "DEL", &ns, &conf, &r).await;
    let after = t!(lab.run_ok("ip", &nat_args).await);
    judge_masquerade(read_result(&r).first_ip(), &before, &del, &after)
}

/// ipMasq: `iptables-save -t nat` after ADD has a CNI- rule naming the container address `ip`,
/// DEL succeeds, and after it no rule names the address.
fn judge_masquerade(ip: &str, nat_after_add: &str, del: &Exec, nat_after_del: &str) -> Outcome {
    let has_chain = nat_after_add
        .lines()
        .any(|l| l.contains(ip) && l.contains("CNI-"));
    t!(expect_success(del, "DEL"));
    let left = nat_after_del.lines().filter(|l| l.contains(ip)).count();
    Outcome::pass_if(
        has_chain && left == 0,
        format!("a CNI- masquerade chain for {ip} was installed and removed on DEL"),
        format!(
            "expected a CNI- masquerade rule for {ip} after ADD and none after DEL; installed: {has_chain}, rules left after DEL: {left}"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::super::testkit::{
        NS, agreeing_ns, assert_ends_with, assert_starts_with, bridge_result, garbage, link,
        ok_empty, refused, route,
    };
    use super::*;
    use nfvi_harness::Status;

    fn macvlan_result() -> Value {
        json!({"cniVersion": "1.0.0", "interfaces": [{"name": "eth0", "mac": "0e:00:00:00:00:03", "sandbox": NS}],
               "ips": [{"interface": 0, "address": "198.18.30.2/24"}]})
    }

    fn macvlan_ns(kind: &str, mode: &str, lower: u64) -> NsState {
        let mut k = agreeing_ns();
        k.links[1].kind = Some(kind.into());
        k.links[1].mode = Some(mode.into());
        k.links[1].link_index = Some(lower);
        k
    }

    #[test]
    fn macvlan_of_the_master() {
        let r = read_result(&macvlan_result());
        let master = link("nfvmm0", 7, Some("veth"));
        let o = judge_macvlan(&r, NS, &macvlan_ns("macvlan", "bridge", 7), Some(&master));
        assert_eq!(o.status, Status::Passed, "{}", o.message);
        let o = judge_macvlan(&r, NS, &macvlan_ns("ipvlan", "private", 8), Some(&master));
        assert_eq!(
            o.message,
            "eth0 is Some(\"ipvlan\"), not macvlan; macvlan mode is Some(\"private\"), configured bridge; lower device index Some(8) is not the master nfvmm0 (7)"
        );
        let o = judge_macvlan(&r, NS, &macvlan_ns("macvlan", "bridge", 7), None);
        assert_eq!(o.message, "eth0 or the master nfvmm0 is missing");
        let o = judge_macvlan(
            &read_result(&bridge_result()),
            NS,
            &macvlan_ns("macvlan", "bridge", 7),
            Some(&master),
        );
        assert_ends_with(
            &o.message,
            "the result lists 3 interfaces, expected exactly 1",
        );
    }

    fn ptp_result() -> Value {
        json!({"cniVersion": "1.0.0",
               "interfaces": [{"name": "veth9"}, {"name": "eth0", "mac": "0e:00:00:00:00:03", "sandbox": NS}],
               "ips": [{"interface": 1, "address": "198.18.30.2/24"}], "routes": [{"dst": "0.0.0.0/0"}]})
    }

    fn ptp_seen(del: Exec, after_routes: Vec<RouteEntry>, after_links: Vec<Link>) -> PtpObserved {
        PtpObserved {
            container: agreeing_ns(),
            host_routes: vec![route("198.18.30.2", Some("veth9"))],
            del,
            host_routes_after: after_routes,
            host_links_after: after_links,
        }
    }

    #[test]
    fn ptp_host_route_and_cleanup() {
        let r = read_result(&ptp_result());
        let o = judge_ptp(
            &r,
            NS,
            &ptp_seen(ok_empty(), vec![], vec![link("lo", 1, None)]),
        );
        assert_eq!(
            o.message,
            "veth pair with host route 198.18.30.2/32 via veth9; gone after DEL"
        );
        let mut no_route = ptp_seen(ok_empty(), vec![], vec![]);
        no_route.host_routes = vec![route("198.18.30.2", Some("eth9"))];
        let o = judge_ptp(&r, NS, &no_route);
        assert_eq!(o.message, "no host /32 route to 198.18.30.2 via veth9");
        let o = judge_ptp(
            &r,
            NS,
            &ptp_seen(ok_empty(), vec![route("198.18.30.2", None)], vec![]),
        );
        assert_eq!(
            o.message,
            "after DEL the host veth veth9 or the route to 198.18.30.2 remains"
        );
        let o = judge_ptp(
            &r,
            NS,
            &ptp_seen(ok_empty(), vec![], vec![link("veth9", 3, Some("veth"))]),
        );
        assert_eq!(o.status, Status::Failed);
        let o = judge_ptp(&r, NS, &ptp_seen(garbage(1, None), vec![], vec![]));
        assert_starts_with(&o.message, "DEL: expected exit 0");
    }

    #[test]
    fn loopback_result() {
        let good = read_result(
            &json!({"interfaces": [{"name": "lo", "sandbox": NS}], "ips": [{"interface": 0, "address": "127.0.0.1/8"}]}),
        );
        let lo = link("lo", 1, None);
        assert_eq!(judge_loopback(&good, Some(&lo), NS).status, Status::Passed);
        let mut down = lo.clone();
        down.up = false;
        assert_eq!(
            judge_loopback(&good, Some(&down), NS).message,
            "lo is not UP"
        );
        assert_eq!(judge_loopback(&good, None, NS).message, "lo is not UP");
        let o = judge_loopback(
            &read_result(&json!({"interfaces": [{"name": "lo"}]})),
            Some(&lo),
            NS,
        );
        assert_eq!(
            o.message,
            "the result does not list lo with the sandbox; the result does not list 127.0.0.1/8"
        );
    }

    #[test]
    fn dns_reaches_the_result() {
        let ipam = json!({"nameservers": ["198.18.39.53"], "search": ["nfv.example"]});
        let plugin = json!({"nameservers": ["198.18.39.54"]});
        let o = judge_dns(&plugin, &ipam, &ipam);
        assert_eq!(o.status, Status::Passed, "{}", o.message);
        assert_eq!(o.evidence.properties["host-local dns"], ipam.to_string());
        let o = judge_dns(&Value::Null, &Value::Null, &ipam);
        assert_eq!(
            o.message,
            "the plugin-level dns block was not copied: null; the DNS host-local returned ({\"nameservers\":[\"198.18.39.53\"],\"search\":[\"nfv.example\"]}) is not in the bridge result (null); 0.4.0 says they should match"
        );
        let o = judge_dns(
            &json!({"nameservers": ["198.18.39.54", "x"]}),
            &json!({}),
            &json!({}),
        );
        assert_starts_with(&o.message, "the plugin-level dns block was not copied");
        assert_eq!(
            dns_of(&json!({"dns": {"domain": "x"}})),
            &json!({"domain": "x"})
        );
        assert_eq!(dns_of(&json!({})), &Value::Null);
    }

    #[test]
    fn masquerade_chain_lives_as_long_as_the_attachment() {
        let ip = "198.18.30.2";
        let nat = "-A POSTROUTING -s 198.18.30.2/32 -m comment --comment \"name: nfvnet-br\" -j CNI-abc\n-A CNI-abc -d 198.18.30.0/24 -j ACCEPT\n";
        let o = judge_masquerade(ip, nat, &ok_empty(), "-A POSTROUTING -j KUBE\n");
        assert_eq!(
            o.message,
            "a CNI- masquerade chain for 198.18.30.2 was installed and removed on DEL"
        );
        let o = judge_masquerade(
            ip,
            "-A POSTROUTING -s 198.18.30.2/32 -j MASQUERADE\n",
            &ok_empty(),
            "",
        );
        assert_ends_with(&o.message, "installed: false, rules left after DEL: 0");
        let o = judge_masquerade(ip, nat, &ok_empty(), nat);
        assert_ends_with(&o.message, "installed: true, rules left after DEL: 1");
        let o = judge_masquerade(ip, nat, &refused("x"), "");
        assert_starts_with(&o.message, "DEL: expected exit 0");
    }
}
