//! The data-path checks: connectivity semantics of each topology, MTU, NAT-less egress and
//! the latency comparison.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::sync::Arc;
use std::time::Duration;

use nfvi_harness::{Check, CheckContext, CheckMeta, CheckResult, Need, Outcome, Severity, declare};
use nfvi_reference_model::Area;
use rtnetlink::packet_route::link::MacVlanMode;

use crate::ns::Netns;
use crate::topology::{self, Endpoint, Lab};

use crate::reach::{Control, PORT, judge_isolated, judge_reachable, probe};

/// The positive control of an isolation check: `src` reaches `ip` in `ns`, which must answer.
fn control(what: String, src: &Endpoint, ns: &Netns, ip: Ipv4Addr) -> Result<Control, String> {
    Ok(Control {
        what,
        seen: probe(&src.ns, ns, ip)?,
    })
}

/// The second control of an isolation check: the destination's responder answers a probe
/// from its own namespace, so the silence is the path's and not a dead responder's.
fn target_alive(ns: &Netns, ip: Ipv4Addr) -> Result<Control, String> {
    Ok(Control {
        what: format!("{ip} from its own namespace"),
        seen: probe(ns, ns, ip)?,
    })
}

/// The source address `dst` sees for a datagram `src` sends to it.
pub(crate) fn source_seen(
    src: &Endpoint,
    dst_ns: &Netns,
    dst_ip: Ipv4Addr,
) -> Result<Ipv4Addr, String> {
    let bind = SocketAddr::V4(SocketAddrV4::new(dst_ip, PORT));
    let listener = crate::ns::spawn_in(&dst_ns.path(), move || {
        let s = UdpSocket::bind(bind).map_err(|e| format!("bind {bind}: {e}"))?;
        s.set_read_timeout(Some(Duration::from_secs(3)))
            .map_err(|e| e.to_string())?;
        let mut buf = [0u8; 64];
        let (_, from) = s
            .recv_from(&mut buf)
            .map_err(|e| format!("nothing arrived at {bind}: {e}"))?;
        match from {
            SocketAddr::V4(v4) => Ok(*v4.ip()),
            SocketAddr::V6(v6) => Err(format!("unexpected IPv6 source {v6}")),
        }
    });
    std::thread::sleep(Duration::from_millis(100));
    crate::ns::run_in(&src.ns.path(), move || {
        let s = UdpSocket::bind("0.0.0.0:0").map_err(|e| e.to_string())?;
        for _ in 0..3 {
            s.send_to(b"nfvi-verify source probe", bind)
                .map_err(|e| e.to_string())?;
            std::thread::sleep(Duration::from_millis(30));
        }
        Ok(())
    })?;
    listener
        .join()
        .map_err(|p| format!("the listener {}", nfvi_harness::panics::join_message(&*p)))?
}

/// Which topology a check builds and what it asks of it: the checks share the lab.
#[derive(Clone, Copy, Debug)]
enum Kind {
    BridgeEastWest,
    BridgeIsolation,
    MacvlanBridgeEastWest,
    MacvlanParentUnreachable,
    MacvlanGateway,
    MacvlanPrivateIsolation,
    MacvlanVepaNoHairpin,
    MacvlanVepaHairpin,
    MacvlanPassthruSingle,
    NatlessEgress,
    Mtu(&'static str),
    Latency,
}

/// The metadata every data-path check shares; the topology (the ID's second segment) is the
/// subject, as the report groups the connectivity matrix by it. `#[track_caller]`, so the
/// check's own line is its declaration site.
#[track_caller]
fn meta(id: &str, title: &str, severity: Severity, covers: &[&str]) -> CheckMeta {
    CheckMeta::new(id, Area::Datapath, title)
        .subject(id.split('.').nth(1).unwrap_or("datapath"))
        .covers(severity, covers)
        .needs([Need::Root])
        .side_effects(
            "creates network namespaces (prefix nfvd), veth pairs, Linux bridges and macvlan sub-interfaces of veths it made, over netlink; addresses from network.lab_cidr; UDP probes only between those namespaces",
            "deletes every namespace it created, which removes every link in them, whatever the outcome",
        )
        .timeout(Duration::from_secs(60))
}

/// Every data-path check.
pub fn checks() -> Vec<Arc<dyn Check>> {
    use Severity::{Info, Must, Should};
    let pod = &["inf.ntw.08", "ra2.ntw.002"];
    let natless = &["ra2.ntw.011", "inf.ntw.14"];
    [
        declare(
            meta(
                "datapath.bridge.east-west",
                "Endpoints on one bridge reach each other",
                Should,
                pod,
            ),
            |cx| Box::pin(run(Kind::BridgeEastWest, cx)),
        ),
        declare(
            meta(
                "datapath.bridge.isolation",
                "Endpoints on different bridges do not reach each other",
                Should,
                pod,
            ),
            |cx| Box::pin(run(Kind::BridgeIsolation, cx)),
        ),
        declare(
            meta(
                "datapath.macvlan-bridge.east-west",
                "macvlan bridge mode: sub-interfaces of one parent reach each other",
                Should,
                natless,
            ),
            |cx| Box::pin(run(Kind::MacvlanBridgeEastWest, cx)),
        ),
        declare(
            meta(
                "datapath.macvlan-bridge.parent-unreachable",
                "macvlan: a sub-interface cannot reach its parent's own address",
                Info,
                &[],
            ),
            |cx| Box::pin(run(Kind::MacvlanParentUnreachable, cx)),
        ),
        declare(
            meta(
                "datapath.macvlan-bridge.gateway",
                "macvlan: the external gateway is reachable (south-north)",
                Should,
                natless,
            ),
            |cx| Box::pin(run(Kind::MacvlanGateway, cx)),
        ),
        declare(
            meta(
                "datapath.macvlan-private.isolation",
                "macvlan private mode: no east-west, even through a hairpinning switch",
                Info,
                &[],
            ),
            |cx| Box::pin(run(Kind::MacvlanPrivateIsolation, cx)),
        ),
        declare(
            meta(
                "datapath.macvlan-vepa.no-hairpin",
                "macvlan vepa mode: no east-west without a hairpinning switch",
                Info,
                &[],
            ),
            |cx| Box::pin(run(Kind::MacvlanVepaNoHairpin, cx)),
        ),
        declare(
            meta(
                "datapath.macvlan-vepa.hairpin",
                "macvlan vepa mode: east-west through a hairpinning (802.1Qbg) switch",
                Info,
                &[],
            ),
            |cx| Box::pin(run(Kind::MacvlanVepaHairpin, cx)),
        ),
        declare(
            meta(
                "datapath.macvlan-passthru.single",
                "macvlan passthru mode: only one sub-interface per parent",
                Info,
                &[],
            ),
            |cx| Box::pin(run(Kind::MacvlanPassthruSingle, cx)),
        ),
        declare(
            meta(
                "datapath.natless-egress",
                "NAT-less egress: the gateway sees the endpoint's own source address",
                Must,
                natless,
            ),
            |cx| Box::pin(run(Kind::NatlessEgress, cx)),
        ),
        declare(
            meta(
                "datapath.mtu.bridge",
                "The bridge path carries full-size datagrams and fragments larger ones",
                Info,
                &[],
            ),
            |cx| Box::pin(run(Kind::Mtu("bridge"), cx)),
        ),
        declare(
            meta(
                "datapath.mtu.macvlan",
                "The macvlan path carries full-size datagrams and fragments larger ones",
                Info,
                &[],
            ),
            |cx| Box::pin(run(Kind::Mtu("macvlan"), cx)),
        ),
        declare(
            meta(
                "datapath.latency.macvlan-vs-bridge",
                "Round-trip latency of loopback, macvlan, bridge and ptp paths, and macvlan against bridge with a 95% confidence interval",
                Info,
                &[],
            )
            .timeout(Duration::from_secs(240)),
            |cx| Box::pin(run(Kind::Latency, cx)),
        ),
        crate::cross_node::declared(),
    ]
    .into_iter()
    .map(|d| d.into_check())
    .collect()
}

/// Runs a check. Topology work and probing block on OS threads in namespaces; the runtime is
/// told so.
async fn run(kind: Kind, cx: &CheckContext) -> CheckResult {
    tokio::task::block_in_place(|| run_blocking(kind, cx))
}

fn run_blocking(kind: Kind, cx: &CheckContext) -> CheckResult {
    let lab = Lab::new(cx)?;
    Ok(match kind {
        Kind::BridgeEastWest => {
            let t = topology::bridge(&lab)?;
            judge_reachable(
                &format!("{} -> {} on one bridge", t.a.ip, t.b.ip),
                &probe(&t.a.ns, &t.b.ns, t.b.ip)?,
            )
        }
        Kind::BridgeIsolation => {
            let t = topology::bridge(&lab)?;
            let controls = [
                control(
                    format!("{} -> {} on the same bridge", t.a.ip, t.b.ip),
                    &t.a,
                    &t.b.ns,
                    t.b.ip,
                )?,
                target_alive(&t.c.ns, t.c.ip)?,
            ];
            judge_isolated(
                &format!("{} on br0 -> {} on br1", t.a.ip, t.c.ip),
                &probe(&t.a.ns, &t.c.ns, t.c.ip)?,
                &controls,
            )
        }
        Kind::MacvlanBridgeEastWest => {
            let t = topology::macvlan(&lab, MacVlanMode::Bridge, 2, false)?;
            let (a, b) = (&t.endpoints[0], &t.endpoints[1]);
            judge_reachable(
                &format!("macvlan {} -> {}", a.ip, b.ip),
                &probe(&a.ns, &b.ns, b.ip)?,
            )
        }
        Kind::MacvlanParentUnreachable => {
            let t = topology::macvlan(&lab, MacVlanMode::Bridge, 1, false)?;
            let ep = &t.endpoints[0];
            let controls = [
                control(
                    format!("{} -> gateway {}", ep.ip, t.gateway),
                    ep,
                    &t.ext,
                    t.gateway,
                )?,
                target_alive(&t.host, t.parent_ip)?,
            ];
            judge_isolated(
                &format!("macvlan {} -> parent {}", ep.ip, t.parent_ip),
                &probe(&ep.ns, &t.host, t.parent_ip)?,
                &controls,
            )
        }
        Kind::MacvlanGateway => {
            let t = topology::macvlan(&lab, MacVlanMode::Bridge, 1, false)?;
            judge_reachable(
                &format!("macvlan {} -> gateway {}", t.endpoints[0].ip, t.gateway),
                &probe(&t.endpoints[0].ns, &t.ext, t.gateway)?,
            )
        }
        Kind::MacvlanPrivateIsolation => {
            let t = topology::macvlan(&lab, MacVlanMode::Private, 2, true)?;
            isolated_siblings(&t, "private macvlan", "via a hairpinning switch")?
        }
        Kind::MacvlanVepaNoHairpin => {
            let t = topology::macvlan(&lab, MacVlanMode::Vepa, 2, false)?;
            isolated_siblings(&t, "vepa macvlan", "without hairpin")?
        }
        Kind::MacvlanVepaHairpin => {
            let t = topology::macvlan(&lab, MacVlanMode::Vepa, 2, true)?;
            let (a, b) = (&t.endpoints[0], &t.endpoints[1]);
            judge_reachable(
                &format!(
                    "vepa macvlan {} -> {} through a hairpinning switch",
                    a.ip, b.ip
                ),
                &probe(&a.ns, &b.ns, b.ip)?,
            )
        }
        Kind::MacvlanPassthruSingle => {
            let t = topology::macvlan(&lab, MacVlanMode::Passthrough, 2, false)?;
            if t.endpoints.len() == 1 && t.refused.len() == 1 {
                Outcome::pass(format!(
                    "the second passthru sub-interface was refused: {}",
                    t.refused[0]
                ))
            } else {
                Outcome::fail(format!(
                    "expected exactly one passthru sub-interface per parent; {} were created",
                    t.endpoints.len()
                ))
            }
        }
        Kind::NatlessEgress => {
            let t = topology::macvlan(&lab, MacVlanMode::Bridge, 1, false)?;
            let ep = &t.endpoints[0];
            let seen = source_seen(ep, &t.ext, t.gateway)?;
            let o = if seen == ep.ip {
                Outcome::pass(format!(
                    "the gateway saw the endpoint's own address {seen}: no NAT"
                ))
            } else {
                Outcome::fail(format!(
                    "the gateway saw {seen}, the endpoint is {}: the path translates addresses",
                    ep.ip
                ))
            };
            o.with_property("endpoint", ep.ip)
                .with_property("source seen by the gateway", seen)
        }
        Kind::Mtu(path) => crate::latency::mtu_check(&lab, path)?,
        Kind::Latency => crate::latency::latency_check(&lab, cx)?,
    })
}

/// Two sub-interfaces of one parent that must not reach each other; the controls: the first
/// reaches the external gateway through the same parent, and the second's responder answers.
fn isolated_siblings(t: &topology::MacvlanTopo, what: &str, how: &str) -> Result<Outcome, String> {
    let [a, b] = [&t.endpoints[0], &t.endpoints[1]];
    let controls = [
        control(
            format!("{} -> gateway {}", a.ip, t.gateway),
            a,
            &t.ext,
            t.gateway,
        )?,
        target_alive(&b.ns, b.ip)?,
    ];
    Ok(judge_isolated(
        &format!("{what} {} -> {} {how}", a.ip, b.ip),
        &probe(&a.ns, &b.ns, b.ip)?,
        &controls,
    ))
}
