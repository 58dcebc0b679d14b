//! POD-*: pod-level requirements RC2 leaves untested: several interfaces per pod, dual stack,
//! and NAT-less egress.

use std::collections::BTreeSet;

use nfvi_harness::Outcome;
use serde_json::{Value, json};

use super::{add_result, cid, exec_after, only_lo, with_prev};
use crate::lab::{Exec, Lab, Netns, expect_result};
use crate::result::{Result100, read_result};

/// A pod sandbox as a kubelet with a multiplexer would build it: loopback, the default network
/// and five extra networks from different plugins.
pub(crate) async fn pod_multi_interface(lab: &Lab<'_>, _plugin: &str) -> Outcome {
    let sandbox = t!(lab.netns().await);
    t!(lab.macvlan_master().await);
    t!(lab
        .run_ok(
            "ip",
            &[
                "-n", &lab.rt, "link", "add", "nfvmm2", "type", "veth", "peer", "name", "nfvmm3"
            ]
        )
        .await);
    t!(lab
        .run_ok("ip", &["-n", &lab.rt, "link", "set", "nfvmm2", "up"])
        .await);
    let ipam = |k: u32| {
        let mut i = lab.host_local(k);
        i.as_object_mut().expect("object").remove("routes");
        i
    };
    let v = lab.version.clone();
    // (plugin, interface, configuration)
    #[rustfmt::skip]
    let nets: Vec<(&str, &str, Value)> = vec![
        ("loopback", "lo", json!({"cniVersion": v, "name": "nfvpod-lo", "type": "loopback"})),
        ("bridge", "eth0", json!({"cniVersion": v, "name": "nfvpod-default", "type": "bridge", "bridge": "nfvbr0", "isGateway": true, "isDefaultGateway": true, "ipam": ipam(10)})),
        ("macvlan", "net1", json!({"cniVersion": v, "name": "nfvpod-mv1", "type": "macvlan", "master": "nfvmm0", "mode": "bridge", "ipam": ipam(11)})),
        ("ptp", "net2", json!({"cniVersion": v, "name": "nfvpod-ptp1", "type": "ptp", "ipam": ipam(12)})),
        ("bridge", "net3", json!({"cniVersion": v, "name": "nfvpod-br2", "type": "bridge", "bridge": "nfvbr2", "ipam": ipam(13)})),
        ("macvlan", "net4", json!({"cniVersion": v, "name": "nfvpod-mv2", "type": "macvlan", "master": "nfvmm2", "mode": "private", "ipam": ipam(14)})),
        ("ptp", "net5", json!({"cniVersion": v, "name": "nfvpod-ptp2", "type": "ptp", "ipam": ipam(15)})),
    ];
    let mut results = Vec::new();
    for (plugin, ifname, conf) in &nets {
        let exec = lab
            .exec(plugin, &lab.env("ADD", &sandbox, &cid(lab), ifname), conf)
            .await;
        results.push(t!(expect_result(
            &exec,
            &format!("{plugin} ADD of {ifname}")
        )));
    }
    let addrs = t!(lab.addrs(Some(&sandbox)).await);
    let mut dels = Vec::new();
    for ((plugin, ifname, conf), r) in nets.iter().zip(&results).rev() {
        let exec = lab
            .exec(
                plugin,
                &lab.env("DEL", &sandbox, &cid(lab), ifname),
                &with_prev(conf, r),
            )
            .await;
        dels.push((*ifname, exec));
    }
    let left = t!(only_lo(lab, &sandbox).await);
    // Loopback's 127.0.0.1 is not a pod address: the others are judged.
    let attached: Vec<(&str, Result100)> = nets
        .iter()
        .zip(&results)
        .skip(1)
        .map(|((_, ifname, _), r)| (*ifname, read_result(r)))
        .collect();
    judge_pod_interfaces(&attached, &addrs, &dels, &left)
}

/// Each attachment's address is configured on its interface and used once; the DELs in
/// reverse order succeed and leave only `lo`.
fn judge_pod_interfaces(
    attached: &[(&str, Result100)],
    addrs: &[(String, String)],
    dels: &[(&str, Exec)],
    left: &[String],
) -> Outcome {
    let mut p = Vec::new();
    let mut seen = BTreeSet::new();
    for (ifname, r) in attached {
        let a = r.first_address();
        if !addrs.iter().any(|(n, x)| n == ifname && x == a) {
            p.push(format!("{ifname} does not carry its address {a}"));
        }
        if !seen.insert(a) {
            p.push(format!("address {a} is used twice"));
        }
    }
    for (ifname, exec) in dels {
        if !exec.ok() {
            p.push(format!(
                "DEL of {ifname} (reverse order): {}",
                exec.describe()
            ));
        }
    }
    if !left.is_empty() {
        p.push(format!("interfaces left after removing all: {left:?}"));
    }
    let extra = attached.len().saturating_sub(1);
    if p.is_empty() {
        Outcome::pass(format!("the pod had lo, eth0 and {extra} extra interfaces from bridge, macvlan and ptp networks with distinct addresses; all removed in reverse order"))
            .with_metric("extra_interfaces", extra as f64, "count")
    } else {
        Outcome::fail(p.join("; "))
    }
}

/// Dual stack: IPv4 from the lab range and IPv6 from the IPv6 benchmarking range
/// 2001:2::/48 (RFC 5180), both configured on one attachment.
pub(crate) async fn pod_dual_stack(lab: &Lab<'_>, _plugin: &str) -> Outcome {
    let ns = t!(lab.netns().await);
    let (v4, gw4) = lab.subnet(16);
    let conf = json!({"cniVersion": lab.version, "name": "nfvpod-ds", "type": "bridge", "bridge": "nfvbr0", "isGateway": true,
        "ipam": {"type": "host-local", "dataDir": lab.ipam_dir(),
                 "ranges": [[{"subnet": v4, "gateway": gw4}], [{"subnet": "2001:2:0:1::/64", "gateway": "2001:2:0:1::1"}]],
                 "routes": [{"dst": "0.0.0.0/0"}, {"dst": "::/0"}]}});
    let r = t!(add_result(lab, "bridge", &ns, &conf, "dual-stack ADD").await);
    let addrs = t!(lab.addrs(Some(&ns)).await);
    let routes6 = t!(lab
        .run_ok("ip", &["-n", &ns.name, "-6", "-j", "route", "show"])
        .await);
    // IPv4 reachability of the gateway; IPv6 is verified as configuration only, because the
    // lab sends traffic to 198.18.0.0/15 and nowhere else.
    let gw_answers = t!(reaches(lab, &ns, &gw4).await);
    let _ = exec_after(lab, "bridge", "DEL", &ns, &conf, &r).await;
    let seen = DualStack {
        result: read_result(&r),
        addrs,
        routes6,
        gw4,
        gw_answers,
    };
    judge_dual_stack(&seen).with_property(
        "ipv6 reachability",
        "not sent: the lab's traffic rule allows only 198.18.0.0/15; IPv6 checked as configuration",
    )
}

/// What a dual-stack attachment looked like.
struct DualStack {
    result: Result100,
    /// The pod's addresses.
    addrs: Vec<(String, String)>,
    /// `ip -6 -j route show` in the pod.
    routes6: String,
    gw4: String,
    /// Whether the IPv4 gateway answered ARP from the pod.
    gw_answers: bool,
}

/// The result holds an IPv4 and an IPv6 address, both on eth0, the pod has an IPv6 default
/// route, and the IPv4 gateway answers.
fn judge_dual_stack(seen: &DualStack) -> Outcome {
    let ips: Vec<&str> = seen
        .result
        .ip_list()
        .iter()
        .map(|i| i.address.as_str())
        .filter(|a| !a.is_empty())
        .collect();
    let mut p = Vec::new();
    if !ips.iter().any(|a| a.contains(':')) || !ips.iter().any(|a| !a.contains(':')) {
        p.push(format!("the result does not hold both families: {ips:?}"));
    }
    for a in &ips {
        if !seen.addrs.iter().any(|(n, x)| n == "eth0" && x == a) {
            p.push(format!("{a} is not configured on eth0"));
        }
    }
    if !seen.routes6.contains("\"default\"") {
        p.push("no IPv6 default route in the pod".to_owned());
    }
    if !seen.gw_answers {
        p.push(format!(
            "the IPv4 gateway {} does not answer ARP from the pod",
            seen.gw4
        ));
    }
    Outcome::pass_unless(
        p,
        format!(
            "dual-stack attachment: {} configured with default routes for both families; IPv4 gateway reachable",
            ips.join(" and ")
        ),
    )
}

/// NAT-less egress: a peer on the far side of the macvlan master sees the pod's own address.
pub(crate) async fn pod_natless_egress(lab: &Lab<'_>, _plugin: &str) -> Outcome {
    let pod = t!(lab.netns().await);
    let peer = t!(lab.netns().await);
    t!(lab.macvlan_master().await);
    // The far end of the master's veth becomes the external peer (the gateway of the subnet).
    let (_, gw) = lab.subnet(1);
    t!(lab
        .run_ok(
            "ip",
            &["-n", &lab.rt, "link", "set", "nfvmm1", "netns", &peer.name]
        )
        .await);
    t!(lab
        .run_ok(
            "ip",
            &[
                "-n",
                &peer.name,
                "addr",
                "add",
                &format!("{gw}/24"),
                "dev",
                "nfvmm1"
            ]
        )
        .await);
    t!(lab
        .run_ok("ip", &["-n", &peer.name, "link", "set", "nfvmm1", "up"])
        .await);
    t!(lab
        .run_ok("ip", &["-n", &peer.name, "link", "set", "lo", "up"])
        .await);
    let conf = lab.macvlan_conf();
    let r = t!(add_result(lab, "macvlan", &pod, &conf, "macvlan ADD").await);
    let bind = format!("{gw}:17999");
    let listener = {
        let bind = bind.clone();
        crate::nsthread::in_netns(peer.path.clone(), move || {
            let sock = std::net::UdpSocket::bind(&bind).map_err(|e| format!("bind {bind}: {e}"))?;
            sock.set_read_timeout(Some(std::time::Duration::from_secs(5)))
                .map_err(|e| e.to_string())?;
            let mut buf = [0u8; 64];
            match sock.recv_from(&mut buf) {
                Ok((_, from)) => Ok(Some(from.ip().to_string())),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    Ok(None)
                }
                Err(e) => Err(format!("receive: {e}")),
            }
        })
    };
    let sender = crate::nsthread::in_netns(pod.path.clone(), move || {
        // Give the listener time to bind before the first datagram.
        std::thread::sleep(std::time::Duration::from_millis(200));
        let sock = std::net::UdpSocket::bind("0.0.0.0:0").map_err(|e| e.to_string())?;
        for _ in 0..3 {
            sock.send_to(b"nfvi-verify natless probe", &bind)
                .map_err(|e| format!("send: {e}"))?;
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        Ok(())
    });
    let (seen, sent) = tokio::join!(listener, sender);
    let _ = exec_after(lab, "macvlan", "DEL", &pod, &conf, &r).await;
    judge_natless(read_result(&r).first_ip(), seen, sent)
}

/// The source address the peer saw is the pod's own address. `seen` is what the peer's
/// listener got (`None`: nothing arrived in time), `sent` whether the pod's datagrams left
/// its socket. A probe that could not be sent, or a peer that could not listen, observed
/// nothing: an error, never a verdict.
fn judge_natless(
    pod_ip: &str,
    seen: Result<Option<String>, String>,
    sent: Result<(), String>,
) -> Outcome {
    match (seen, sent) {
        (_, Err(e)) => Outcome::error(format!(
            "the probe could not be sent from the pod, so nothing was observed: {e}"
        )),
        (Err(e), Ok(())) => Outcome::error(format!(
            "the peer could not listen, so nothing was observed: {e}"
        )),
        (Ok(Some(src)), Ok(())) if src == pod_ip => Outcome::pass(format!(
            "the peer saw the pod's own address {pod_ip} as source: no NAT on the macvlan path"
        )),
        (Ok(Some(src)), Ok(())) => Outcome::fail(format!(
            "the peer saw source {src}, the pod's address is {pod_ip}: the egress path translates addresses"
        )),
        (Ok(None), Ok(())) => Outcome::fail(
            "the probe did not get through: the pod sent three datagrams and none reached the peer",
        ),
    }
}

/// Whether `ip` answers ARP from inside `ns`: a datagram to its discard port makes the kernel
/// resolve it, and the neighbour entry shows whether a reply came. Only lab addresses are
/// ever probed.
async fn reaches(lab: &Lab<'_>, ns: &Netns, ip: &str) -> Result<bool, Outcome> {
    let target = format!("{ip}:9");
    let sent = crate::nsthread::in_netns(ns.path.clone(), move || {
        let sock = std::net::UdpSocket::bind("0.0.0.0:0").map_err(|e| e.to_string())?;
        // The first datagram must leave: its failure (no route, no address) means that
        // nothing can be observed. Later ones may meet EHOSTUNREACH once ARP has failed,
        // which is the observation itself.
        sock.send_to(b"nfvi-verify reachability probe", &target)
            .map_err(|e| format!("send to {target}: {e}"))?;
        for _ in 0..2 {
            std::thread::sleep(std::time::Duration::from_millis(100));
            let _ = sock.send_to(b"nfvi-verify reachability probe", &target);
        }
        Ok(())
    })
    .await;
    if let Err(e) = sent {
        return Err(Outcome::error(format!(
            "the ARP probe of {ip} could not be sent from the pod, so its reachability was not observed: {e}"
        )));
    }
    let neigh = lab
        .run_ok("ip", &["-n", &ns.name, "neigh", "show", ip])
        .await?;
    Ok(neigh_resolved(&neigh))
}

/// Whether `ip neigh show <ip>` shows a resolved neighbour.
fn neigh_resolved(neigh: &str) -> bool {
    neigh.contains("lladdr") && !neigh.contains("FAILED") && !neigh.contains("INCOMPLETE")
}

#[cfg(test)]
mod tests {
    use super::super::testkit::{addrs, assert_starts_with, ok_empty, refused};
    use super::*;
    use nfvi_harness::Status;

    fn with_address(a: &str) -> Result100 {
        read_result(&json!({"ips": [{"address": a}]}))
    }

    #[test]
    fn every_pod_interface_has_its_own_address_and_goes_away() {
        let attached = [
            ("eth0", with_address("198.18.40.2/24")),
            ("net1", with_address("198.18.41.2/24")),
            ("net2", with_address("198.18.42.2/32")),
        ];
        let on = addrs(&[
            ("eth0", "198.18.40.2/24"),
            ("net1", "198.18.41.2/24"),
            ("net2", "198.18.42.2/32"),
        ]);
        let dels = [
            ("net2", ok_empty()),
            ("net1", ok_empty()),
            ("eth0", ok_empty()),
        ];
        let o = judge_pod_interfaces(&attached, &on, &dels, &[]);
        assert_eq!(o.status, Status::Passed, "{}", o.message);
        assert_starts_with(&o.message, "the pod had lo, eth0 and 2 extra interfaces");
        assert_eq!(o.evidence.metrics["extra_interfaces"].value, 2.0);

        let dup = [
            ("eth0", with_address("198.18.40.2/24")),
            ("net1", with_address("198.18.40.2/24")),
        ];
        let dels = [("net1", refused("x")), ("eth0", ok_empty())];
        let o = judge_pod_interfaces(
            &dup,
            &addrs(&[("eth0", "198.18.40.2/24")]),
            &dels,
            &["net1".to_owned()],
        );
        assert_eq!(
            o.message
                .split("; ")
                .map(|s| s.split(':').next().unwrap_or_default())
                .collect::<Vec<_>>(),
            [
                "net1 does not carry its address 198.18.40.2/24",
                "address 198.18.40.2/24 is used twice",
                "DEL of net1 (reverse order)",
                "interfaces left after removing all",
            ]
        );
    }

    fn dual(ips: &[&str], on_eth0: &[&str], routes6: &str, gw_answers: bool) -> DualStack {
        DualStack {
            result: read_result(
                &json!({"ips": ips.iter().map(|a| json!({"address": a})).collect::<Vec<_>>()}),
            ),
            addrs: on_eth0
                .iter()
                .map(|a| ("eth0".to_owned(), (*a).to_owned()))
                .collect(),
            routes6: routes6.to_owned(),
            gw4: "198.18.46.1".to_owned(),
            gw_answers,
        }
    }

    #[test]
    fn dual_stack_needs_both_families_routes_and_a_gateway() {
        let both = ["198.18.46.2/24", "2001:2:0:1::2/64"];
        let default6 = r#"[{"dst":"default","gateway":"2001:2:0:1::1","dev":"eth0"}]"#;
        let o = judge_dual_stack(&dual(&both, &both, default6, true));
        assert_eq!(
            o.message,
            "dual-stack attachment: 198.18.46.2/24 and 2001:2:0:1::2/64 configured with default routes for both families; IPv4 gateway reachable"
        );
        let o = judge_dual_stack(&dual(&both[..1], &both[..1], "[]", false));
        assert_eq!(
            o.message,
            "the result does not hold both families: [\"198.18.46.2/24\"]; no IPv6 default route in the pod; the IPv4 gateway 198.18.46.1 does not answer ARP from the pod"
        );
        let o = judge_dual_stack(&dual(&both, &both[..1], default6, true));
        assert_eq!(o.message, "2001:2:0:1::2/64 is not configured on eth0");
    }

    #[test]
    fn natless_egress_keeps_the_pod_address() {
        let ip = "198.18.31.2";
        assert_eq!(
            judge_natless(ip, Ok(Some(ip.to_owned())), Ok(())).status,
            Status::Passed
        );
        let o = judge_natless(ip, Ok(Some("198.18.31.1".to_owned())), Ok(()));
        assert_eq!(
            o.message,
            "the peer saw source 198.18.31.1, the pod's address is 198.18.31.2: the egress path translates addresses"
        );
        let o = judge_natless(ip, Ok(None), Ok(()));
        assert_eq!(
            o.message,
            "the probe did not get through: the pod sent three datagrams and none reached the peer"
        );
        assert_eq!(o.status, Status::Failed);
        // Nothing observed: the pod could not send (no route, no address, setns failed), or
        // the peer could not listen. Errors, whatever the other side says.
        let o = judge_natless(
            ip,
            Ok(Some(ip.to_owned())),
            Err("send: Network is unreachable".to_owned()),
        );
        assert_eq!(o.status, Status::Error, "{}", o.message);
        let o = judge_natless(ip, Ok(None), Err("cannot enter the namespace".to_owned()));
        assert_eq!(o.status, Status::Error, "{}", o.message);
        let o = judge_natless(ip, Err("bind 198.18.31.1:17999: in use".to_owned()), Ok(()));
        assert_eq!(o.status, Status::Error, "{}", o.message);
    }

    #[test]
    fn neighbour_states() {
        assert!(neigh_resolved(
            "198.18.46.1 dev eth0 lladdr 0e:00:00:00:00:01 REACHABLE"
        ));
        assert!(!neigh_resolved("198.18.46.1 dev eth0 INCOMPLETE"));
        assert!(!neigh_resolved("198.18.46.1 dev eth0 FAILED"));
        assert!(!neigh_resolved(""));
    }
}
