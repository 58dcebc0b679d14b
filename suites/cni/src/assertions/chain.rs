//! CNI-CHAIN, whole chain: the CHAIN fixture (bridge -> tuning -> portmap -> firewall ->
//! bandwidth) run by the harness as the runtime ([`Runtime`]). Single plugins with a
//! prevResult are in `chain_step`.

use nfvi_harness::Outcome;
use serde_json::{Value, json};

use super::{cid, only_lo, snapshot_diff};
use crate::lab::Lab;
use crate::result::{Result100, read_result, validate_result};
use crate::runtime::{Attachment, Runtime, Step};

/// The CHAIN fixture: bridge -> tuning -> portmap -> firewall -> bandwidth, with the
/// capability arguments a kubelet would offer.
fn chain_list(lab: &Lab<'_>) -> (Value, Value) {
    let mut ipam = lab.host_local(4);
    ipam.as_object_mut().expect("object").remove("routes");
    let list = json!({
        "cniVersion": lab.version, "name": "nfvchain",
        "plugins": [
            {"type": "bridge", "bridge": "nfvbr1", "isGateway": true, "isDefaultGateway": true, "ipam": ipam},
            {"type": "tuning", "capabilities": {"mac": true}, "sysctl": {"net.ipv4.conf.IFNAME.arp_notify": "1"}},
            {"type": "portmap", "capabilities": {"portMappings": true}, "snat": true},
            {"type": "firewall", "backend": "iptables"},
            {"type": "bandwidth", "capabilities": {"bandwidth": true}}
        ]
    });
    let caps = json!({
        "mac": "0e:00:00:00:34:42",
        "portMappings": [
            {"hostPort": 18080, "containerPort": 80, "protocol": "tcp"},
            {"hostPort": 18053, "containerPort": 53, "protocol": "udp"}
        ],
        "bandwidth": {"ingressRate": 8_000_000, "ingressBurst": 800_000, "egressRate": 4_000_000, "egressBurst": 400_000},
        "unknownCapability": {"ignored": true}
    });
    (list, caps)
}

async fn chain_attachment(lab: &Lab<'_>, caps: Value) -> Result<Attachment, Outcome> {
    Ok(Attachment {
        container_id: cid(lab),
        ns: lab.netns().await?,
        ifname: "eth0".to_owned(),
        capability_args: caps,
    })
}

/// The MAC tuning sets from the CHAIN fixture's capability arguments.
const CHAIN_MAC: &str = "0e:00:00:00:34:42";

pub(crate) async fn chain_001(lab: &Lab<'_>, _plugin: &str) -> Outcome {
    let (list, caps) = chain_list(lab);
    let att = t!(chain_attachment(lab, caps).await);
    let rt = Runtime::new(lab);
    let (last, steps) = match rt.add(&list, &att).await {
        Ok(v) => v,
        Err(e) => {
            return Outcome::fail(format!(
                "chain ADD: expected every plugin to succeed; {}",
                e.describe()
            ));
        }
    };
    let _ = rt.del(&list, &att).await;
    // The harness is the runtime here: its requests must follow CNI-RT-003, or the verdict on
    // the plugins means nothing.
    t!(judge_chain_requests(&steps, &lab.version));
    judge_chain_results(&steps, &last, &lab.version, &att.ns.path)
}

/// The requests the harness sent follow CNI-RT-003: no `capabilities`, the list's version and
/// name, and `runtimeConfig` with only declared capabilities (tuning declares `mac`).
/// Otherwise the harness is at fault: an error.
fn judge_chain_requests(steps: &[Step], version: &str) -> Result<(), Outcome> {
    for s in steps {
        let declared_mac = s.request["type"] == "tuning";
        let rc = &s.request["runtimeConfig"];
        if s.request.get("capabilities").is_some()
            || s.request["cniVersion"] != version
            || s.request["name"] != "nfvchain"
            || rc.get("unknownCapability").is_some()
            || (declared_mac != rc.get("mac").is_some())
        {
            return Err(Outcome::error(format!(
                "the harness built a request that breaks CNI-RT-003: {}",
                s.request
            )));
        }
    }
    Ok(())
}

/// Every step's result is valid; the final result keeps the bridge result's ips, routes and
/// interfaces, adds exactly one interface (bandwidth's ifb), and shows tuning's MAC on eth0.
fn judge_chain_results(steps: &[Step], last: &Value, version: &str, sandbox: &str) -> Outcome {
    let mut p = Vec::new();
    for s in steps {
        let r = s.exec.json().cloned().unwrap_or_default();
        for problem in validate_result(&r, version, Some(sandbox)) {
            p.push(format!("{}: {problem}", s.exec.plugin));
        }
    }
    let first = steps
        .first()
        .and_then(|s| s.exec.json())
        .unwrap_or(&Value::Null);
    if first.get("ips") != last.get("ips") || first.get("routes") != last.get("routes") {
        p.push("ips or routes changed between the bridge result and the final result".to_owned());
    }
    let (first, final_) = (read_result(first), read_result(last));
    let (n0, n1) = (first.interface_names(), final_.interface_names());
    if !n0.iter().all(|n| n1.contains(n)) {
        p.push(format!(
            "interfaces of the bridge result were dropped: {n0:?} -> {n1:?}"
        ));
    }
    let added: Vec<&String> = n1.iter().filter(|n| !n0.contains(n)).collect();
    if added.len() != 1 {
        p.push(format!(
            "expected exactly one added interface (bandwidth's ifb), found {added:?}"
        ));
    }
    let mac = super::add::reported_mac(&final_, "eth0");
    if mac != CHAIN_MAC {
        p.push(format!(
            "the final result's eth0 MAC is {mac:?}, tuning set {CHAIN_MAC}"
        ));
    }
    if p.is_empty() {
        Outcome::pass(format!(
            "5-plugin chain: every step valid; final result adds {added:?} and tuning's MAC"
        ))
        .with_property("final result", last)
    } else {
        Outcome::fail(p.join("; "))
    }
}

/// What CHECK and DEL of the whole chain did and left.
struct ChainTeardown {
    /// The fixture container's ID: a host object naming it is a leak.
    container_id: String,
    /// The bridge's (first) result of the chain ADD.
    first_result: Result100,
    check_error: Option<String>,
    del_error: Option<String>,
    host_before: Vec<String>,
    host_after: Vec<String>,
    reservations: Vec<(String, String)>,
    container_left: Vec<String>,
    cached_after_del: bool,
    /// The positive controls, read while the attachment was live through the readers that
    /// judge the teardown: its reservations and the container's links other than `lo`.
    live_reservations: usize,
    live_links: usize,
}

pub(crate) async fn chain_009(lab: &Lab<'_>, _plugin: &str) -> Outcome {
    let (list, caps) = chain_list(lab);
    let att = t!(chain_attachment(lab, caps).await);
    let rt = Runtime::new(lab);
    let host_before = t!(lab.host_snapshot().await);
    let first_result = match rt.add(&list, &att).await {
        Ok((_, steps)) => steps[0].exec.json().cloned().unwrap_or_default(),
        Err(e) => return Outcome::fail(format!("chain ADD: {}", e.describe())),
    };
    let live_reservations = lab.reservations("nfvchain").len();
    let live_links = t!(only_lo(lab, &att.ns).await).len();
    let check_error = rt.check(&list, &att).await.err().map(|e| e.describe());
    let del_error = rt.del(&list, &att).await.err().map(|e| e.describe());
    let seen = ChainTeardown {
        container_id: att.container_id.clone(),
        first_result: read_result(&first_result),
        check_error,
        del_error,
        host_before,
        host_after: t!(lab.host_snapshot().await),
        reservations: lab.reservations("nfvchain"),
        container_left: t!(only_lo(lab, &att.ns).await),
        cached_after_del: rt.cached(&list, &att).is_some(),
        live_reservations,
        live_links,
    };
    judge_chain_teardown(&seen)
}

/// Chain CHECK passes and reverse DEL leaves nothing of the attachment. Anything left that
/// names the attachment (its address, container ID or host interfaces) is a leak. Shared
/// infrastructure the plugins create on first use and keep for the next container (the
/// bridge, the CNI-FORWARD and CNI-HOSTPORT-* base chains) is recorded but allowed, like the
/// bridge itself.
fn judge_chain_teardown(seen: &ChainTeardown) -> Outcome {
    if seen.live_reservations == 0 || seen.live_links == 0 {
        return Outcome::error(format!(
            "while the chain was attached the readers saw {} reservation(s) and {} container interface(s) besides lo, so \"nothing left\" after DEL would prove nothing",
            seen.live_reservations, seen.live_links
        ));
    }
    let mut p = Vec::new();
    if let Some(e) = &seen.check_error {
        p.push(format!("chain CHECK (list order): {e}"));
    }
    if let Some(e) = &seen.del_error {
        p.push(format!("chain DEL (reverse order): {e}"));
    }
    let mut markers: Vec<String> = seen
        .first_result
        .interface_names()
        .into_iter()
        .filter(|n| n != "eth0" && n != "nfvbr1")
        .collect();
    markers.push(seen.container_id.clone());
    markers.push(seen.first_result.first_ip().to_owned());
    let [added, removed] = snapshot_diff(&seen.host_before, &seen.host_after);
    let leaked: Vec<&&String> = added
        .iter()
        .filter(|l| {
            markers
                .iter()
                .any(|m| !m.is_empty() && l.contains(m.as_str()))
        })
        .collect();
    if !leaked.is_empty() || !removed.is_empty() {
        p.push(format!(
            "host state of the attachment survived DEL: {leaked:?}; removed: {removed:?}"
        ));
    }
    let shared: Vec<&&String> = added.iter().filter(|l| !leaked.contains(l)).collect();
    if !seen.reservations.is_empty() {
        p.push(format!("IPAM reservations left: {:?}", seen.reservations));
    }
    if !seen.container_left.is_empty() {
        p.push(format!(
            "container netns still has {:?}",
            seen.container_left
        ));
    }
    if seen.cached_after_del {
        p.push("the runtime's cached result survived a successful DEL".to_owned());
    }
    let o = Outcome::pass_unless(
        p,
        "chain CHECK passed; reverse DEL removed every rule, qdisc, link and reservation of the attachment",
    );
    o.with_property(
        "shared infrastructure kept after DEL",
        format!("{shared:?}"),
    )
}

#[cfg(test)]
mod tests {
    use super::super::testkit::{
        assert_contains, assert_ends_with, assert_starts_with, err, named, ok,
    };
    use super::*;
    use nfvi_harness::Status;

    const NS: &str = "/run/netns/nfvc-9";

    fn bridge_result() -> Value {
        json!({"cniVersion": "1.0.0",
            "interfaces": [{"name": "nfvbr1", "mac": "aa:00:00:00:00:01"}, {"name": "veth1", "mac": "aa:00:00:00:00:02"},
                           {"name": "eth0", "mac": "0e:00:00:00:00:03", "sandbox": NS}],
            "ips": [{"interface": 2, "address": "198.18.34.2/24", "gateway": "198.18.34.1"}],
            "routes": [{"dst": "0.0.0.0/0", "gw": "198.18.34.1"}]})
    }

    /// The final result: tuning's MAC on eth0 and bandwidth's ifb appended.
    fn final_result() -> Value {
        let mut r = bridge_result();
        r["interfaces"][2]["mac"] = CHAIN_MAC.into();
        r["interfaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({"name": "bwp1"}));
        r
    }

    fn step(plugin: &str, request: Value, result: Value) -> Step {
        let mut exec = named(ok(result), "ADD", "");
        plugin.clone_into(&mut exec.plugin);
        Step { request, exec }
    }

    fn request(kind: &str) -> Value {
        let mut r = json!({"cniVersion": "1.0.0", "name": "nfvchain", "type": kind});
        if kind == "tuning" {
            r["runtimeConfig"] = json!({"mac": CHAIN_MAC});
        }
        r
    }

    fn steps() -> Vec<Step> {
        vec![
            step("bridge", request("bridge"), bridge_result()),
            step("tuning", request("tuning"), final_result()),
            step("bandwidth", request("bandwidth"), final_result()),
        ]
    }

    #[test]
    fn the_harness_requests_follow_the_runtime_rules() {
        assert!(judge_chain_requests(&steps(), "1.0.0").is_ok());
        assert_eq!(
            judge_chain_requests(&steps(), "0.4.0").unwrap_err().status,
            Status::Error
        );
        let mut caps = request("portmap");
        caps["capabilities"] = json!({"portMappings": true});
        let mut undeclared = request("bridge");
        undeclared["runtimeConfig"] = json!({"mac": CHAIN_MAC});
        let mut tuning_without_mac = request("tuning");
        tuning_without_mac["runtimeConfig"] = json!({});
        let mut unknown = request("bandwidth");
        unknown["runtimeConfig"] = json!({"unknownCapability": {}});
        let mut renamed = request("firewall");
        renamed["name"] = "other".into();
        for bad in [caps, undeclared, tuning_without_mac, unknown, renamed] {
            let e =
                judge_chain_requests(&[step("x", bad.clone(), json!({}))], "1.0.0").unwrap_err();
            assert!(
                e.message
                    .starts_with("the harness built a request that breaks CNI-RT-003"),
                "{bad}"
            );
        }
    }

    #[test]
    fn the_final_result_is_prev_result_plus_the_plugins_changes() {
        let o = judge_chain_results(&steps(), &final_result(), "1.0.0", NS);
        assert_eq!(o.status, Status::Passed, "{}", o.message);
        assert_eq!(
            o.message,
            "5-plugin chain: every step valid; final result adds [\"bwp1\"] and tuning's MAC"
        );

        let mut moved = final_result();
        moved["ips"][0]["address"] = "198.18.34.3/24".into();
        moved["interfaces"].as_array_mut().unwrap().remove(1);
        moved["interfaces"][1]["mac"] = "0e:00:00:00:00:03".into();
        moved["ips"][0]["interface"] = 1.into();
        let o = judge_chain_results(&steps()[..1], &moved, "1.0.0", NS);
        assert_eq!(
            o.message.split("; ").collect::<Vec<_>>(),
            [
                "ips or routes changed between the bridge result and the final result",
                "interfaces of the bridge result were dropped: [\"nfvbr1\", \"veth1\", \"eth0\"] -> [\"nfvbr1\", \"eth0\", \"bwp1\"]",
                "the final result's eth0 MAC is \"0e:00:00:00:00:03\", tuning set 0e:00:00:00:34:42",
            ]
        );
        let o = judge_chain_results(&steps(), &bridge_result(), "1.0.0", NS);
        assert_contains(
            &o.message,
            "expected exactly one added interface (bandwidth's ifb), found []",
        );
        let mut broken = steps();
        broken[1].exec = named(err(0, json!({"cniVersion": "0.4.0"})), "ADD", "");
        broken[1].exec.plugin = "tuning".into();
        let o = judge_chain_results(&broken, &final_result(), "1.0.0", NS);
        assert_starts_with(&o.message, "tuning: ");
    }

    fn clean_teardown() -> ChainTeardown {
        let lines = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        ChainTeardown {
            container_id: "nfvcid1".into(),
            first_result: read_result(&bridge_result()),
            check_error: None,
            del_error: None,
            host_before: lines(&["link lo"]),
            host_after: lines(&["link lo", "link nfvbr1", "iptables filter -N CNI-FORWARD"]),
            reservations: vec![],
            container_left: vec![],
            cached_after_del: false,
            live_reservations: 1,
            live_links: 1,
        }
    }

    /// Readers that saw nothing of the live attachment make the teardown undecidable.
    #[test]
    fn chain_teardown_needs_the_live_attachment_observed() {
        for (reservations, links) in [(0, 1), (1, 0), (0, 0)] {
            let seen = ChainTeardown {
                live_reservations: reservations,
                live_links: links,
                ..clean_teardown()
            };
            let o = judge_chain_teardown(&seen);
            assert_eq!(
                o.status,
                Status::Error,
                "{reservations}/{links}: {}",
                o.message
            );
        }
    }

    #[test]
    fn chain_teardown_leaves_only_shared_infrastructure() {
        let o = judge_chain_teardown(&clean_teardown());
        assert_eq!(o.status, Status::Passed, "{}", o.message);
        assert_eq!(
            o.evidence.properties["shared infrastructure kept after DEL"],
            "[\"link nfvbr1\", \"iptables filter -N CNI-FORWARD\"]"
        );

        let mut leaky = clean_teardown();
        leaky
            .host_after
            .push("iptables nat -A CNI-HOSTPORT-DNAT -d 198.18.34.2/32 -j DNAT".into());
        leaky.host_after.push("link veth1".into());
        leaky
            .host_after
            .push("iptables filter -A CNI-ADMIN -m comment --comment nfvcid1".into());
        leaky.host_before.push("link gone0".into());
        let o = judge_chain_teardown(&leaky);
        assert_eq!(o.status, Status::Failed);
        assert_starts_with(
            &o.message,
            "host state of the attachment survived DEL: [\"iptables nat -A CNI-HOSTPORT-DNAT",
        );
        assert_contains(&o.message, "\"link veth1\", \"iptables filter -A CNI-ADMIN");
        assert_ends_with(&o.message, "removed: [\"link gone0\"]");

        let mut failed = clean_teardown();
        failed.check_error = Some("tuning CHECK: exit 1".into());
        failed.del_error = Some("runtime refused: x".into());
        failed.reservations = vec![("198.18.34.2".into(), "nfvcid1".into())];
        failed.container_left = vec!["eth0".into()];
        failed.cached_after_del = true;
        assert_eq!(
            judge_chain_teardown(&failed)
                .message
                .split("; ")
                .collect::<Vec<_>>(),
            [
                "chain CHECK (list order): tuning CHECK: exit 1",
                "chain DEL (reverse order): runtime refused: x",
                "IPAM reservations left: [(\"198.18.34.2\", \"nfvcid1\")]",
                "container netns still has [\"eth0\"]",
                "the runtime's cached result survived a successful DEL",
            ]
        );
    }
}
