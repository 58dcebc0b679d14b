//! CNI-ADD, generic part: the ADD result, the netns it describes, the bridge's host side,
//! runtimeConfig.mac, two attachments of one container and MTU. ADDs that must fail are in
//! `add_refused`, behaviour of single plugins in `add_plugins`, delegation to IPAM in
//! `delegate`.

use nfvi_harness::{Outcome, Status};
use serde_json::{Value, json};

use super::{add_result, attach, cid, exec_after, exec_in};
use crate::lab::{Exec, Lab, Netns, Stdout, expect_result, expect_success};
use crate::netstate::{Link, RouteEntry, route_matches};
use crate::result::{Result100, read_result, validate_result};

pub(crate) async fn add_001(lab: &Lab<'_>, plugin: &str) -> Outcome {
    let ns = t!(lab.netns().await);
    let conf = t!(lab.conf_for(plugin).await);
    let exec = exec_in(lab, plugin, "ADD", &ns, &conf).await;
    judge_add_output(&exec, &lab.version, &ns.path)
}

/// ADD prints exactly one JSON result, valid for the request's version.
fn judge_add_output(exec: &Exec, version: &str, sandbox: &str) -> Outcome {
    if let Stdout::Garbage(what) = &exec.stdout {
        return Outcome::fail(format!(
            "ADD stdout must be exactly one JSON result; it is {what}"
        ));
    }
    let r = t!(expect_result(exec, "ADD"));
    Outcome::pass_unless_with(
        validate_result(&r, version, Some(sandbox)),
        format!("one JSON result, valid for {version}"),
        |p| format!("the result violates the {version} schema: {p}"),
    )
    .with_property("result", r)
}

/// The kernel's view of a namespace: links, addresses and routes.
pub(super) struct NsState {
    pub(super) links: Vec<Link>,
    pub(super) addrs: Vec<(String, String)>,
    pub(super) routes: Vec<RouteEntry>,
}

impl NsState {
    /// The link called `name`.
    pub(super) fn link(&self, name: &str) -> Option<&Link> {
        self.links.iter().find(|l| l.name == name)
    }
}

pub(super) async fn observe_ns(lab: &Lab<'_>, ns: &Netns) -> Result<NsState, Outcome> {
    Ok(NsState {
        links: lab.links(Some(ns)).await?,
        addrs: lab.addrs(Some(ns)).await?,
        routes: lab.routes(Some(ns)).await?,
    })
}

/// Compares a result with the container namespace: the interface, MAC, UP state, addresses,
/// routes. Returns the problems found.
pub(super) fn judge_kernel_agrees(
    r: &Result100,
    sandbox: &str,
    ifname: &str,
    k: &NsState,
) -> Vec<String> {
    let Some(link) = k.link(ifname) else {
        return vec![format!(
            "{ifname} does not exist in the netns (links: {:?})",
            k.links.iter().map(|l| &l.name).collect::<Vec<_>>()
        )];
    };
    let mut p = Vec::new();
    if !link.up {
        p.push(format!("{ifname} is not UP"));
    }
    let interfaces = r.interface_list();
    let idx = interfaces
        .iter()
        .position(|i| i.name == ifname && i.sandbox.as_deref() == Some(sandbox));
    match idx {
        None => p.push(format!(
            "the result lists no interface {ifname} with sandbox {sandbox}"
        )),
        Some(i) => {
            if let Some(mac) = interfaces[i].mac.as_deref()
                && !mac.eq_ignore_ascii_case(&link.mac)
            {
                p.push(format!("result MAC {mac} but the kernel has {}", link.mac));
            }
            for ip in r.ip_list() {
                if ip.interface.and_then(|x| usize::try_from(x).ok()) != Some(i) {
                    p.push(format!(
                        "ips entry {:?} does not point at {ifname} (index {i})",
                        ip.address
                    ));
                }
            }
        }
    }
    for ip in r.ip_list() {
        let a = ip.address.as_str();
        if !k.addrs.iter().any(|(n, x)| n == ifname && x == a) {
            p.push(format!("address {a} is not configured on {ifname}"));
        }
    }
    for route in r.route_list() {
        let dst = route.dst.as_str();
        if !k.routes.iter().any(|e| route_matches(e, dst)) {
            p.push(format!("route to {dst} is not installed"));
        }
    }
    p
}

pub(crate) async fn add_002(lab: &Lab<'_>, plugin: &str) -> Outcome {
    let a = t!(attach(lab, plugin).await);
    let k = t!(observe_ns(lab, &a.ns).await);
    let p = judge_kernel_agrees(&read_result(&a.result), &a.ns.path, "eth0", &k);
    verdict_on_result(
        p,
        "the netns matches the result: interface UP with the result's MAC, addresses and routes",
        a.result,
    )
}

/// Passes with `pass` when the kernel agrees with the result, or fails with the problems and
/// the result as evidence.
fn verdict_on_result(problems: Vec<String>, pass: &str, result: Value) -> Outcome {
    let o = Outcome::pass_unless(problems, pass);
    if o.status == Status::Failed {
        o.with_property("result", result)
    } else {
        o
    }
}

pub(crate) async fn add_003(lab: &Lab<'_>, plugin: &str) -> Outcome {
    let a = t!(attach(lab, plugin).await);
    let host_links = t!(lab.links(None).await);
    let container = t!(lab.links(Some(&a.ns)).await)
        .into_iter()
        .find(|l| l.name == "eth0");
    let addrs = t!(lab.addrs(None).await);
    let (_, gw) = lab.subnet(0);
    let p = judge_bridge_host(
        &read_result(&a.result),
        &host_links,
        container.as_ref(),
        &addrs,
        &gw,
    );
    verdict_on_result(
        p,
        "host side: bridge and veth without sandbox, veth enslaved and peered, gateway on the bridge",
        a.result,
    )
}

/// The BR fixture's host side: bridge `nfvbr0` holding the gateway, and the result's host veth
/// (no or empty sandbox) enslaved to it and peered with the container's eth0.
fn judge_bridge_host(
    r: &Result100,
    host_links: &[Link],
    container_eth0: Option<&Link>,
    host_addrs: &[(String, String)],
    gw: &str,
) -> Vec<String> {
    let mut p = Vec::new();
    if !host_links.iter().any(|l| l.name == "nfvbr0") {
        p.push("bridge nfvbr0 does not exist on the host".to_owned());
    }
    let veth = r
        .interface_list()
        .iter()
        .filter(|i| i.sandbox.as_deref().is_none_or(str::is_empty))
        .find_map(|i| {
            host_links
                .iter()
                .find(|l| i.name == l.name && l.kind.as_deref() == Some("veth"))
        });
    match (veth, container_eth0) {
        (Some(v), Some(c)) => {
            if v.master.as_deref() != Some("nfvbr0") {
                p.push(format!(
                    "host veth {} is not enslaved to nfvbr0 (master {:?})",
                    v.name, v.master
                ));
            }
            if c.link_index != Some(v.index) {
                p.push(format!(
                    "container eth0 peer index {:?} is not host veth {} ({})",
                    c.link_index, v.name, v.index
                ));
            }
        }
        _ => p.push("the result lists no host veth that exists on the host".to_owned()),
    }
    if !host_addrs
        .iter()
        .any(|(n, x)| n == "nfvbr0" && x.starts_with(&format!("{gw}/")))
    {
        p.push(format!("isGateway is set but nfvbr0 does not hold {gw}"));
    }
    p
}

pub(super) fn mac_of(links: &[Link], name: &str) -> Option<String> {
    links.iter().find(|l| l.name == name).map(|l| l.mac.clone())
}

pub(crate) async fn add_007(lab: &Lab<'_>, plugin: &str) -> Outcome {
    let ns = t!(lab.netns().await);
    let mut conf = t!(lab.conf_for(plugin).await);
    let mac = "0e:00:00:00:30:01";
    conf["runtimeConfig"] = json!({"mac": mac});
    let exec = exec_in(lab, plugin, "ADD", &ns, &conf).await;
    let r = t!(expect_result(&exec, "ADD with runtimeConfig.mac"));
    let kernel = mac_of(&t!(lab.links(Some(&ns)).await), "eth0").unwrap_or_default();
    judge_runtime_mac(mac, &kernel, &read_result(&r))
}

/// The MAC eth0 reports in a result, or `""`.
pub(super) fn reported_mac<'r>(r: &'r Result100, ifname: &str) -> &'r str {
    r.interface_list()
        .iter()
        .find(|i| i.name == ifname)
        .and_then(|i| i.mac.as_deref())
        .unwrap_or("")
}

/// runtimeConfig.mac = `mac`: set on eth0 in the kernel and reported in the result.
fn judge_runtime_mac(mac: &str, kernel: &str, r: &Result100) -> Outcome {
    let reported = reported_mac(r, "eth0");
    Outcome::pass_if(
        kernel == mac && reported == mac,
        format!("container MAC set to {mac} and reported"),
        format!("expected MAC {mac}; the kernel has {kernel}, the result reports {reported:?}"),
    )
}

pub(crate) async fn add_008(lab: &Lab<'_>, plugin: &str) -> Outcome {
    let ns = t!(lab.netns().await);
    let conf = t!(lab.conf_for(plugin).await);
    let r0 = t!(add_result(lab, plugin, &ns, &conf, "ADD eth0").await);
    let r1 = t!(expect_result(
        &lab.exec(plugin, &lab.env("ADD", &ns, &cid(lab), "net1"), &conf)
            .await,
        "ADD net1"
    ));
    let del = exec_after(lab, plugin, "DEL", &ns, &conf, &r0).await;
    let links = t!(lab.links(Some(&ns)).await);
    let addrs = t!(lab.addrs(Some(&ns)).await);
    judge_two_attachments([&read_result(&r0), &read_result(&r1)], &del, &links, &addrs)
}

/// eth0 and net1 of one container: distinct addresses, and after DEL of eth0, eth0 gone and
/// net1 intact with its address.
fn judge_two_attachments(
    [r0, r1]: [&Result100; 2],
    del_eth0: &Exec,
    links: &[Link],
    addrs: &[(String, String)],
) -> Outcome {
    let (ip0, ip1) = (r0.first_address(), r1.first_address());
    if ip0 == ip1 {
        return Outcome::fail(format!("eth0 and net1 got the same address {ip0}"));
    }
    t!(expect_success(del_eth0, "DEL eth0"));
    if links.iter().any(|l| l.name == "eth0")
        || !links.iter().any(|l| l.name == "net1")
        || !addrs.iter().any(|(n, a)| n == "net1" && a == ip1)
    {
        return Outcome::fail(
            "after DEL of eth0, expected eth0 gone and net1 intact with its address".to_owned(),
        )
        .with_property(
            "links",
            links
                .iter()
                .map(|l| l.name.clone())
                .collect::<Vec<_>>()
                .join(","),
        );
    }
    Outcome::pass(format!(
        "eth0 {ip0} and net1 {ip1} coexisted; DEL eth0 left net1 intact"
    ))
}

pub(crate) async fn add_009(lab: &Lab<'_>, plugin: &str) -> Outcome {
    let ns = t!(lab.netns().await);
    let mut conf = t!(lab.conf_for(plugin).await);
    conf["mtu"] = 1400.into();
    let r = t!(add_result(lab, plugin, &ns, &conf, "ADD with mtu 1400").await);
    let container = t!(lab.links(Some(&ns)).await)
        .into_iter()
        .find(|l| l.name == "eth0")
        .map(|l| l.mtu);
    let host = t!(lab.links(None).await);
    judge_mtu(&read_result(&r), container, &host)
}

/// The names of the result's host interfaces: those without a sandbox.
pub(super) fn host_interfaces(r: &Result100) -> Vec<&str> {
    r.interface_list()
        .iter()
        .filter(|i| i.sandbox.is_none())
        .map(|i| i.name.as_str())
        .collect()
}

/// bridge `mtu` 1400: on the container's eth0 and on the result's host veth.
fn judge_mtu(r: &Result100, container: Option<u64>, host_links: &[Link]) -> Outcome {
    let host_veth = host_interfaces(r);
    let host = host_links
        .iter()
        .find(|l| host_veth.contains(&l.name.as_str()) && l.kind.as_deref() == Some("veth"))
        .map(|l| l.mtu);
    Outcome::pass_if(
        container == Some(1400) && host == Some(1400),
        "mtu 1400 applied to the container interface and the host veth",
        format!("expected MTU 1400 on both ends; container {container:?}, host veth {host:?}"),
    )
}

#[cfg(test)]
mod tests {
    use super::super::testkit::{
        NS, addrs, agreeing_ns, assert_contains, assert_ends_with, assert_starts_with,
        bridge_result, garbage, link, ok, ok_empty,
    };
    use super::*;
    use nfvi_harness::Status;
    use serde_json::json;

    #[test]
    fn add_output_must_be_one_valid_result() {
        let good = ok(bridge_result());
        let o = judge_add_output(&good, "1.0.0", NS);
        assert_eq!(o.status, Status::Passed, "{}", o.message);
        assert!(o.evidence.properties.contains_key("result"));
        let o = judge_add_output(&garbage(0, Some("log line")), "1.0.0", NS);
        assert_eq!(
            o.message,
            "ADD stdout must be exactly one JSON result; it is not JSON: log line"
        );
        let o = judge_add_output(&ok_empty(), "1.0.0", NS);
        assert_starts_with(&o.message, "ADD: expected exit 0 and a JSON result");
        let o = judge_add_output(&good, "1.0.0", "/run/netns/other");
        assert_eq!(o.status, Status::Failed);
        assert_contains(&o.message, "no interface has sandbox == CNI_NETNS");
        let o = judge_add_output(&good, "0.4.0", NS);
        assert_starts_with(&o.message, "the result violates the 0.4.0 schema");
    }

    #[test]
    fn the_kernel_must_agree_with_the_result() {
        let r = read_result(&bridge_result());
        assert_eq!(
            judge_kernel_agrees(&r, NS, "eth0", &agreeing_ns()),
            Vec::<String>::new()
        );

        let mut down = agreeing_ns();
        down.links[1].up = false;
        down.links[1].mac = "0e:00:00:00:00:99".into();
        let mut bare = agreeing_ns();
        bare.addrs.pop();
        bare.routes.remove(0);
        let mut gone = agreeing_ns();
        gone.links.pop();
        let mut misindexed = bridge_result();
        misindexed["ips"][0]["interface"] = 0.into();
        #[rustfmt::skip]
        let rows: Vec<(&str, Result100, &str, NsState, Vec<&str>)> = vec![
            ("down, other MAC", r.clone(), NS, down, vec!["eth0 is not UP", "result MAC 0E:00:00:00:00:03 but the kernel has 0e:00:00:00:00:99"]),
            ("address and route missing", r.clone(), NS, bare, vec!["address 198.18.30.2/24 is not configured on eth0", "route to 0.0.0.0/0 is not installed"]),
            ("interface missing", r.clone(), NS, gone, vec!["eth0 does not exist in the netns (links: [\"lo\"])"]),
            ("other sandbox", r.clone(), "/run/netns/x", agreeing_ns(), vec!["the result lists no interface eth0 with sandbox /run/netns/x"]),
            ("ips points elsewhere", read_result(&misindexed), NS, agreeing_ns(), vec!["ips entry \"198.18.30.2/24\" does not point at eth0 (index 2)"]),
        ];
        for (name, r, sandbox, k, want) in rows {
            assert_eq!(judge_kernel_agrees(&r, sandbox, "eth0", &k), want, "{name}");
        }
    }

    #[test]
    fn bridge_host_side() {
        let r = read_result(&bridge_result());
        let bridge = link("nfvbr0", 5, Some("bridge"));
        let mut veth = link("veth1", 6, Some("veth"));
        veth.master = Some("nfvbr0".into());
        let mut eth0 = link("eth0", 2, Some("veth"));
        eth0.link_index = Some(6);
        let gw = addrs(&[("nfvbr0", "198.18.30.1/24")]);
        let host = vec![bridge.clone(), veth.clone()];
        assert!(judge_bridge_host(&r, &host, Some(&eth0), &gw, "198.18.30.1").is_empty());

        let mut loose = veth.clone();
        loose.master = None;
        let mut other_peer = eth0.clone();
        other_peer.link_index = Some(9);
        let p = judge_bridge_host(&r, &[loose], Some(&other_peer), &[], "198.18.30.1");
        assert_eq!(
            p,
            [
                "bridge nfvbr0 does not exist on the host",
                "host veth veth1 is not enslaved to nfvbr0 (master None)",
                "container eth0 peer index Some(9) is not host veth veth1 (6)",
                "isGateway is set but nfvbr0 does not hold 198.18.30.1",
            ]
        );
        // A host interface in the result that is no veth on the host does not count.
        let p = judge_bridge_host(
            &r,
            &[bridge, link("veth1", 6, Some("dummy"))],
            Some(&eth0),
            &gw,
            "198.18.30.1",
        );
        assert_eq!(p, ["the result lists no host veth that exists on the host"]);
    }

    #[test]
    fn runtime_mac() {
        let mac = "0e:00:00:00:30:01";
        let with = |m: &str| {
            read_result(&json!({"cniVersion": "1.0.0", "interfaces": [{"name": "eth0", "mac": m}]}))
        };
        assert_eq!(
            judge_runtime_mac(mac, mac, &with(mac)).status,
            Status::Passed
        );
        let o = judge_runtime_mac(mac, "0e:00:00:00:00:09", &with(mac));
        assert_eq!(o.status, Status::Failed);
        let o = judge_runtime_mac(
            mac,
            mac,
            &read_result(&json!({"interfaces": [{"name": "eth0"}]})),
        );
        assert_eq!(
            o.message,
            "expected MAC 0e:00:00:00:30:01; the kernel has 0e:00:00:00:30:01, the result reports \"\""
        );
    }

    #[test]
    fn two_attachments_of_one_container() {
        let res = |a: &str| read_result(&json!({"ips": [{"address": a}]}));
        let (r0, r1) = (res("198.18.30.2/24"), res("198.18.30.3/24"));
        let after = [link("lo", 1, None), link("net1", 3, Some("veth"))];
        let net1 = addrs(&[("net1", "198.18.30.3/24")]);
        let o = judge_two_attachments([&r0, &r1], &ok_empty(), &after, &net1);
        assert_eq!(
            o.message,
            "eth0 198.18.30.2/24 and net1 198.18.30.3/24 coexisted; DEL eth0 left net1 intact"
        );
        let o = judge_two_attachments([&r0, &r0], &ok_empty(), &after, &net1);
        assert_eq!(
            o.message,
            "eth0 and net1 got the same address 198.18.30.2/24"
        );
        let o = judge_two_attachments([&r0, &r1], &garbage(1, None), &after, &net1);
        assert_starts_with(&o.message, "DEL eth0: expected exit 0");
        let both = [link("eth0", 2, Some("veth")), link("net1", 3, Some("veth"))];
        let o = judge_two_attachments([&r0, &r1], &ok_empty(), &both, &net1);
        assert_eq!(o.status, Status::Failed);
        assert_eq!(o.evidence.properties["links"], "eth0,net1");
        let o = judge_two_attachments([&r0, &r1], &ok_empty(), &after, &[]);
        assert_eq!(o.status, Status::Failed, "net1 lost its address");
    }

    #[test]
    fn mtu_on_both_ends() {
        let r = read_result(&bridge_result());
        let mut veth = link("veth1", 6, Some("veth"));
        veth.mtu = 1400;
        let o = judge_mtu(
            &r,
            Some(1400),
            &[link("nfvbr0", 5, Some("bridge")), veth.clone()],
        );
        assert_eq!(o.status, Status::Passed, "{}", o.message);
        let o = judge_mtu(&r, Some(1500), &[veth]);
        assert_eq!(
            o.message,
            "expected MTU 1400 on both ends; container Some(1500), host veth Some(1400)"
        );
        let o = judge_mtu(&r, Some(1400), &[link("veth1", 6, Some("veth"))]);
        assert_eq!(o.status, Status::Failed);
        let o = judge_mtu(&r, Some(1400), &[]);
        assert_ends_with(&o.message, "host veth None");
    }
}
