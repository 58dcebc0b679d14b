//! CNI-ADD that must fail: onto an existing interface name and into a missing netns, each
//! judged on the error and on what it left behind.

use nfvi_harness::Outcome;

use super::add::mac_of;
use super::{exec_in, expect_error, net_name, not_run, uses_ipam};
use crate::lab::{Exec, Lab, Netns};
use crate::netstate::Link;

pub(crate) async fn add_004(lab: &Lab<'_>, plugin: &str) -> Outcome {
    let ns = t!(lab.netns().await);
    t!(lab
        .run_ok(
            "ip",
            &[
                "-n", &ns.name, "link", "add", "eth0", "type", "veth", "peer", "name", "nfvpeer"
            ]
        )
        .await);
    let before = mac_of(&t!(lab.links(Some(&ns)).await), "eth0");
    let host_before = t!(lab.links(None).await).len();
    let conf = t!(lab.conf_for(plugin).await);
    let host_before = if plugin == "macvlan" {
        t!(lab.links(None).await).len()
    } else {
        host_before
    };
    let exec = exec_in(lab, plugin, "ADD", &ns, &conf).await;
    let after = mac_of(&t!(lab.links(Some(&ns)).await), "eth0");
    let host_after = t!(lab.links(None).await);
    let reserved = lab.reservations(&net_name(&conf));
    // The positive control, after the observation: the same configuration ADDs into a fresh
    // namespace through the same exec path, and its reservation shows in the same reader.
    let fresh = t!(lab.netns().await);
    let add = exec_in(lab, plugin, "ADD", &fresh, &conf).await;
    let control = Control {
        reservation_seen: !uses_ipam(plugin) || !lab.reservations(&net_name(&conf)).is_empty(),
        add,
    };
    judge_add_onto_existing(
        &exec,
        [before.as_deref(), after.as_deref()],
        host_before,
        &host_after,
        &reserved,
        &control,
    )
}

/// The positive control of a refusal: the same configuration ADDs into a fresh namespace,
/// and the reservation it makes is visible.
pub(super) struct Control {
    pub(super) add: Exec,
    pub(super) reservation_seen: bool,
}

/// Without an accepted control, a refusal and "nothing left" prove nothing: the plugin may
/// not be runnable, or the readers may look in the wrong place.
fn judge_control(c: &Control) -> Result<(), Outcome> {
    if !c.add.ok() {
        return Err(Outcome::error(format!(
            "the positive control failed: the same configuration did not ADD into a fresh namespace ({}), so the refusal cannot be told from a plugin that does not work",
            c.add.describe()
        )));
    }
    if !c.reservation_seen {
        return Err(Outcome::error(
            "the positive control's ADD left no visible IPAM reservation, so \"no reservation left\" could not be observed",
        ));
    }
    Ok(())
}

/// ADD onto an existing eth0 (`macs` before and after): refused, eth0 untouched, and no host
/// veth (other than the harness's macvlan master pair) or reservation left.
fn judge_add_onto_existing(
    exec: &Exec,
    [before, after]: [Option<&str>; 2],
    host_before: usize,
    host_after: &[Link],
    reserved: &[(String, String)],
    control: &Control,
) -> Outcome {
    if let Some(o) = not_run(exec) {
        return o;
    }
    t!(judge_control(control));
    let mut p = Vec::new();
    if exec.ok() {
        p.push(format!(
            "expected an error because eth0 exists; got {}",
            exec.describe()
        ));
    }
    if after != before {
        p.push(format!(
            "the existing eth0 changed: MAC {before:?} -> {after:?}"
        ));
    }
    let extra = host_after.len().saturating_sub(host_before);
    let stray: Vec<&str> = host_after
        .iter()
        .filter(|l| l.kind.as_deref() == Some("veth") && l.name != "nfvmm0" && l.name != "nfvmm1")
        .map(|l| l.name.as_str())
        .collect();
    if !stray.is_empty() {
        p.push(format!("host veths left behind: {stray:?}"));
    }
    if !reserved.is_empty() {
        p.push(format!("IPAM reservations left: {reserved:?}"));
    }
    if p.is_empty() {
        Outcome::pass(format!(
            "rejected ({}); existing eth0 untouched; no residue",
            exec.msg()
        ))
        .with_metric("new_host_links", extra as f64, "count")
    } else {
        Outcome::fail(p.join("; "))
    }
}

pub(crate) async fn add_010(lab: &Lab<'_>, plugin: &str) -> Outcome {
    let conf = t!(lab.conf_for(plugin).await);
    let before = t!(lab.links(None).await).len();
    let ghost = Netns {
        name: "nfvdoesnotexist".into(),
        path: "/run/netns/nfvdoesnotexist".into(),
    };
    let exec = exec_in(lab, plugin, "ADD", &ghost, &conf).await;
    let after = t!(lab.links(None).await);
    let reserved = lab.reservations(&net_name(&conf));
    judge_missing_netns(&exec, before, &after, &reserved)
}

/// ADD into a netns that does not exist: a JSON error, and no host veth or reservation left.
fn judge_missing_netns(
    exec: &Exec,
    host_before: usize,
    host_after: &[Link],
    reserved: &[(String, String)],
) -> Outcome {
    t!(expect_error(
        exec,
        "ADD with a CNI_NETNS that does not exist",
        None,
        None
    ));
    let stray: Vec<String> = host_after
        .iter()
        .filter(|l| l.kind.as_deref() == Some("veth") && !l.name.starts_with("nfvmm"))
        .map(|l| l.name.clone())
        .collect();
    if !stray.is_empty() || !reserved.is_empty() {
        return Outcome::fail(format!(
            "the failed ADD left host veths {stray:?} and reservations {reserved:?}"
        ))
        .with_metric("host_links_before", host_before as f64, "count");
    }
    Outcome::pass(format!("rejected ({}), no host residue", exec.msg()))
}

#[cfg(test)]
mod tests {
    use super::super::testkit::{
        assert_contains, assert_starts_with, bridge_result, err, garbage_not_started, link, ok,
        reservations,
    };
    use super::*;
    use nfvi_harness::Status;
    use serde_json::json;

    fn accepted() -> Control {
        Control {
            add: ok(bridge_result()),
            reservation_seen: true,
        }
    }

    #[test]
    fn add_onto_an_existing_interface() {
        let refused = err(
            1,
            json!({"code": 999, "msg": "container veth name \"eth0\" already exists"}),
        );
        let mac = Some("0e:00:00:00:00:01");
        let master = [
            link("lo", 1, None),
            link("nfvmm0", 2, Some("veth")),
            link("nfvmm1", 3, Some("veth")),
        ];
        let o = judge_add_onto_existing(&refused, [mac, mac], 3, &master, &[], &accepted());
        assert_eq!(o.status, Status::Passed, "{}", o.message);
        assert!(
            o.message.starts_with("rejected (container veth name"),
            "{}",
            o.message
        );
        assert_eq!(o.evidence.metrics["new_host_links"].value, 0.0);

        let leak = [link("lo", 1, None), link("vethabc", 4, Some("veth"))];
        let res = reservations(&[("198.18.30.2", "nfvcid1")]);
        let o = judge_add_onto_existing(
            &ok(bridge_result()),
            [mac, Some("0e:00:00:00:00:02")],
            1,
            &leak,
            &res,
            &accepted(),
        );
        assert_eq!(o.status, Status::Failed);
        assert_starts_with(
            &o.message,
            "expected an error because eth0 exists; got bridge ADD: exit 0",
        );
        assert_contains(
            &o.message,
            "the existing eth0 changed: MAC Some(\"0e:00:00:00:00:01\") -> Some(\"0e:00:00:00:00:02\")",
        );
        assert_contains(&o.message, "host veths left behind: [\"vethabc\"]");
        assert_contains(
            &o.message,
            "IPAM reservations left: [(\"198.18.30.2\", \"nfvcid1\")]",
        );
        // A deleted eth0 is a change too.
        let o = judge_add_onto_existing(&refused, [mac, None], 3, &master, &[], &accepted());
        assert_eq!(o.status, Status::Failed);
    }

    /// A plugin that never ran, or whose readers see nothing, makes no refusal pass.
    #[test]
    fn add_onto_an_existing_interface_needs_a_working_probe() {
        let mac = Some("0e:00:00:00:00:01");
        let not_started = garbage_not_started();
        let refused = err(1, json!({"code": 999, "msg": "exists"}));
        #[rustfmt::skip]
        let rows: &[(&str, &Exec, Control, &str)] = &[
            ("nothing observed: plugin not started", &not_started, Control { add: not_started.clone(), reservation_seen: false }, "did not run to an exit"),
            ("control failed: ADD refused everywhere", &refused, Control { add: refused.clone(), reservation_seen: false }, "the positive control failed"),
            ("control failed: reservation invisible", &refused, Control { add: ok(bridge_result()), reservation_seen: false }, "no visible IPAM reservation"),
        ];
        for (name, exec, control, part) in rows {
            let o = judge_add_onto_existing(exec, [mac, mac], 1, &[], &[], control);
            assert_eq!(o.status, Status::Error, "{name}: {}", o.message);
            assert_contains(&o.message, part);
        }
    }

    #[test]
    fn add_into_a_missing_netns() {
        let refused = err(1, json!({"code": 999, "msg": "failed to open netns"}));
        let host = [
            link("nfvmm0", 2, Some("veth")),
            link("nfvbr0", 3, Some("bridge")),
        ];
        let o = judge_missing_netns(&refused, 2, &host, &[]);
        assert_eq!(
            o.message,
            "rejected (failed to open netns), no host residue"
        );
        let o = judge_missing_netns(&ok(bridge_result()), 2, &host, &[]);
        assert_starts_with(
            &o.message,
            "ADD with a CNI_NETNS that does not exist: expected non-zero exit",
        );
        let o = judge_missing_netns(&refused, 2, &[link("veth9", 4, Some("veth"))], &[]);
        assert_eq!(o.status, Status::Failed);
        assert_eq!(o.evidence.metrics["host_links_before"].value, 2.0);
        let o = judge_missing_netns(&refused, 2, &host, &reservations(&[("198.18.30.2", "x")]));
        assert_starts_with(
            &o.message,
            "the failed ADD left host veths [] and reservations",
        );
    }
}
