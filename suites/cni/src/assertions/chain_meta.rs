//! CNI-CHAIN, meta plugins' host effects: portmap DNAT, firewall rules and bandwidth shaping,
//! each run after a bridge ADD and judged on the kernel state it leaves after ADD, CHECK and
//! two DELs. tuning is in `chain_tuning`.

use nfvi_harness::Outcome;
use serde_json::{Value, json};

use super::chain_step::bridge_then;
use super::{add_result, exec_in, with_prev};
use crate::lab::{Exec, Lab, Netns};
use crate::netstate::Link;
use crate::result::{Result100, read_result};

/// CHECK with the ADD result, then DEL twice (a repeated DEL must succeed as well), with a
/// look at the host after the first DEL.
struct Teardown<T> {
    check: Exec,
    dels: [Exec; 2],
    between: T,
}

async fn check_then_delete_twice<T>(
    lab: &Lab<'_>,
    plugin: &str,
    ns: &Netns,
    conf: &Value,
    between: impl AsyncFnOnce() -> Result<T, Outcome>,
) -> Result<Teardown<T>, Outcome> {
    let check = exec_in(lab, plugin, "CHECK", ns, conf).await;
    let d1 = exec_in(lab, plugin, "DEL", ns, conf).await;
    let between = between().await?;
    let d2 = exec_in(lab, plugin, "DEL", ns, conf).await;
    Ok(Teardown {
        check,
        dels: [d1, d2],
        between,
    })
}

/// CHECK and both DELs succeed.
fn teardown_problems<T>(t: &Teardown<T>) -> Vec<String> {
    let mut p = Vec::new();
    if !t.check.ok() {
        p.push(format!("CHECK: {}", t.check.describe()));
    }
    let [d1, d2] = &t.dels;
    if !d1.ok() || !d2.ok() {
        p.push(format!(
            "DEL: {}; second DEL: {}",
            d1.describe(),
            d2.describe()
        ));
    }
    p
}

async fn iptables(lab: &Lab<'_>, table: &str) -> Result<String, Outcome> {
    lab.run_ok(
        "ip",
        &["netns", "exec", &lab.rt, "iptables-save", "-t", table],
    )
    .await
}

/// What a meta plugin that writes iptables rules did, run after a bridge ADD: the container
/// address, the iptables `table` after its ADD, and its teardown with the table after the
/// first DEL. `conf` makes the plugin's configuration from the bridge result.
async fn iptables_lifecycle(
    lab: &Lab<'_>,
    plugin: &str,
    table: &str,
    conf: impl FnOnce(&Value) -> Value,
) -> Result<(String, String, Teardown<String>), Outcome> {
    let ns = lab.netns().await?;
    let (_, prev) = bridge_then(lab, &ns, &lab.version).await?;
    let conf = conf(&prev);
    let out = add_result(lab, plugin, &ns, &conf, &format!("{plugin} ADD")).await?;
    let after_add = iptables(lab, table).await?;
    let teardown = check_then_delete_twice(lab, plugin, &ns, &with_prev(&conf, &out), async || {
        iptables(lab, table).await
    })
    .await?;
    Ok((
        read_result(&prev).first_ip().to_owned(),
        after_add,
        teardown,
    ))
}

pub(crate) async fn chain_005(lab: &Lab<'_>, plugin: &str) -> Outcome {
    let conf = |prev: &Value| {
        json!({"cniVersion": lab.version, "name": "nfvnet-br", "type": plugin, "snat": true, "prevResult": prev,
            "runtimeConfig": {"portMappings": [{"hostPort": 18080, "containerPort": 80, "protocol": "tcp"}, {"hostPort": 18053, "containerPort": 53, "protocol": "udp"}]}})
    };
    let (ip, nat, teardown) = t!(iptables_lifecycle(lab, plugin, "nat", conf).await);
    judge_portmap(&ip, &nat, &teardown)
}

/// portmap: DNAT 18080 -> ip:80 and 18053 -> ip:53 after ADD, CHECK and two DELs succeed,
/// and no DNAT rule for the container is left after the first DEL.
fn judge_portmap(ip: &str, nat: &str, teardown: &Teardown<String>) -> Outcome {
    let mut p = Vec::new();
    for (port, to) in [("18080", format!("{ip}:80")), ("18053", format!("{ip}:53"))] {
        if !nat.lines().any(|l| {
            l.contains("DNAT") && l.contains(&format!("--dport {port}")) && l.contains(&to)
        }) {
            p.push(format!("no DNAT rule for port {port} to {to}"));
        }
    }
    p.extend(teardown_problems(teardown));
    if teardown
        .between
        .lines()
        .any(|l| l.contains("DNAT") && l.contains(ip))
    {
        p.push("DNAT rules remain after DEL".to_owned());
    }
    Outcome::pass_unless(
        p,
        format!(
            "DNAT 18080->{ip}:80 and 18053->{ip}:53 installed, CHECK passed, DEL removed them, second DEL ok"
        ),
    )
}

pub(crate) async fn chain_007(lab: &Lab<'_>, plugin: &str) -> Outcome {
    let conf = |prev: &Value| json!({"cniVersion": lab.version, "name": "nfvnet-br", "type": plugin, "backend": "iptables", "prevResult": prev});
    let (ip, filter, teardown) = t!(iptables_lifecycle(lab, plugin, "filter", conf).await);
    judge_firewall(&ip, &filter, &teardown)
}

/// firewall: a CNI- filter rule names the container address after ADD, CHECK and two DELs
/// succeed, and no rule names it after the first DEL.
fn judge_firewall(ip: &str, filter: &str, teardown: &Teardown<String>) -> Outcome {
    let mut p = Vec::new();
    if !filter.lines().any(|l| l.contains("CNI-") && l.contains(ip)) {
        p.push(format!("no CNI-FORWARD rule mentions {ip}"));
    }
    p.extend(teardown_problems(teardown));
    if teardown.between.lines().any(|l| l.contains(ip)) {
        p.push(format!("rules for {ip} remain after DEL"));
    }
    Outcome::pass_unless(
        p,
        format!("CNI-FORWARD rules for {ip} installed, checked and removed; DEL twice ok"),
    )
}

pub(crate) async fn chain_008(lab: &Lab<'_>, plugin: &str) -> Outcome {
    let ns = t!(lab.netns().await);
    let (_, prev) = t!(bridge_then(lab, &ns, &lab.version).await);
    let conf = json!({"cniVersion": lab.version, "name": "nfvnet-br", "type": plugin, "prevResult": prev,
        "runtimeConfig": {"bandwidth": {"ingressRate": 8_000_000, "ingressBurst": 800_000, "egressRate": 4_000_000, "egressBurst": 400_000}}});
    let out = t!(add_result(lab, plugin, &ns, &conf, "bandwidth ADD").await);
    let qdiscs = t!(lab
        .run_ok("ip", &["netns", "exec", &lab.rt, "tc", "qdisc", "show"])
        .await);
    let links = t!(lab.links(None).await);
    let teardown =
        t!(
            check_then_delete_twice(lab, plugin, &ns, &with_prev(&conf, &out), async || lab
                .links(None)
                .await)
            .await
        );
    judge_bandwidth(
        [&read_result(&prev), &read_result(&out)],
        &qdiscs,
        &links,
        &teardown,
    )
}

/// bandwidth: a tbf qdisc on the host, an ifb device added to the result (`prev` -> `out`)
/// that exists on the host, CHECK and two DELs succeed, and the ifb is gone after the first
/// DEL.
fn judge_bandwidth(
    [prev, out]: [&Result100; 2],
    qdiscs: &str,
    host_links: &[Link],
    teardown: &Teardown<Vec<Link>>,
) -> Outcome {
    let before = prev.interface_names();
    let added: Vec<String> = out
        .interface_names()
        .into_iter()
        .filter(|n| !before.contains(n))
        .collect();
    let mut p = Vec::new();
    if !qdiscs.contains("tbf") {
        p.push("no tbf qdisc in the runtime namespace".to_owned());
    }
    let ifb = added.iter().find(|n| {
        host_links
            .iter()
            .any(|l| &&l.name == n && l.kind.as_deref() == Some("ifb"))
    });
    if ifb.is_none() {
        p.push(format!(
            "no ifb device added to the result and present on the host (added: {added:?})"
        ));
    }
    p.extend(teardown_problems(teardown));
    if let Some(ifb) = ifb
        && teardown.between.iter().any(|l| &l.name == ifb)
    {
        p.push(format!("ifb {ifb} remains after DEL"));
    }
    if p.is_empty() {
        Outcome::pass(format!(
            "tbf on the host veth, ifb {} in the result, removed on DEL; DEL twice ok",
            ifb.map_or("", |s| s)
        ))
        .with_property("qdiscs", qdiscs)
    } else {
        Outcome::fail(p.join("; ")).with_property("qdiscs", qdiscs)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::{assert_starts_with, link, ok_empty, refused};
    use super::*;
    use nfvi_harness::Status;

    fn teardown<T>(between: T) -> Teardown<T> {
        Teardown {
            check: ok_empty(),
            dels: [ok_empty(), ok_empty()],
            between,
        }
    }

    #[test]
    fn teardown_needs_check_and_both_dels() {
        assert!(teardown_problems(&teardown(())).is_empty());
        let mut t = teardown(());
        t.check = refused("x");
        t.dels[1] = refused("x");
        let p = teardown_problems(&t);
        assert_eq!(p.len(), 2);
        assert!(p[0].starts_with("CHECK: bridge ADD: exit 1"), "{p:?}");
        assert!(
            p[1].starts_with(
                "DEL: bridge ADD: exit 0, empty stdout; second DEL: bridge ADD: exit 1"
            ),
            "{p:?}"
        );
    }

    const NAT: &str = "-A CNI-DN-1 -p tcp -m tcp --dport 18080 -j DNAT --to-destination 198.18.30.2:80\n-A CNI-DN-1 -p udp -m udp --dport 18053 -j DNAT --to-destination 198.18.30.2:53\n";

    #[test]
    fn portmap_dnat_rules_come_and_go() {
        let ip = "198.18.30.2";
        let o = judge_portmap(ip, NAT, &teardown(String::new()));
        assert_eq!(
            o.message,
            "DNAT 18080->198.18.30.2:80 and 18053->198.18.30.2:53 installed, CHECK passed, DEL removed them, second DEL ok"
        );
        let o = judge_portmap(
            ip,
            &NAT.replace("18053", "18054"),
            &teardown(NAT.to_owned()),
        );
        assert_eq!(
            o.message,
            "no DNAT rule for port 18053 to 198.18.30.2:53; DNAT rules remain after DEL"
        );
        let o = judge_portmap("198.18.30.3", NAT, &teardown(String::new()));
        assert_starts_with(&o.message, "no DNAT rule for port 18080 to 198.18.30.3:80");
        let mut t = teardown(String::new());
        t.check = refused("x");
        assert!(judge_portmap(ip, NAT, &t).message.starts_with("CHECK: "));
    }

    #[test]
    fn firewall_rules_come_and_go() {
        let ip = "198.18.30.2";
        let filter = "-A CNI-FORWARD -d 198.18.30.2/32 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n";
        assert_eq!(
            judge_firewall(ip, filter, &teardown(String::new())).status,
            Status::Passed
        );
        let o = judge_firewall(
            ip,
            "-A FORWARD -d 198.18.30.2/32 -j ACCEPT\n",
            &teardown(filter.to_owned()),
        );
        assert_eq!(
            o.message,
            "no CNI-FORWARD rule mentions 198.18.30.2; rules for 198.18.30.2 remain after DEL"
        );
    }

    #[test]
    fn bandwidth_adds_an_ifb_and_removes_it() {
        let prev = read_result(
            &json!({"interfaces": [{"name": "veth1"}, {"name": "eth0", "sandbox": "/x"}]}),
        );
        let out = read_result(
            &json!({"interfaces": [{"name": "veth1"}, {"name": "eth0", "sandbox": "/x"}, {"name": "bwp1"}]}),
        );
        let tbf = "qdisc tbf 1: dev veth1 root refcnt 2 rate 8Mbit burst 100Kb lat 25ms\n";
        let host = [link("veth1", 3, Some("veth")), link("bwp1", 4, Some("ifb"))];
        let o = judge_bandwidth([&prev, &out], tbf, &host, &teardown(vec![]));
        assert_eq!(
            o.message,
            "tbf on the host veth, ifb bwp1 in the result, removed on DEL; DEL twice ok"
        );
        assert_eq!(o.evidence.properties["qdiscs"], tbf);
        let o = judge_bandwidth([&prev, &out], tbf, &host, &teardown(host.to_vec()));
        assert_eq!(o.message, "ifb bwp1 remains after DEL");
        let o = judge_bandwidth(
            [&prev, &prev],
            "qdisc noqueue 0: dev lo\n",
            &host,
            &teardown(vec![]),
        );
        assert_eq!(
            o.message,
            "no tbf qdisc in the runtime namespace; no ifb device added to the result and present on the host (added: [])"
        );
        let not_ifb = [link("bwp1", 4, Some("dummy"))];
        assert_eq!(
            judge_bandwidth([&prev, &out], tbf, &not_ifb, &teardown(vec![])).status,
            Status::Failed
        );
    }
}
