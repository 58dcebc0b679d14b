//! CNI-IPAM, reservations: IPAM plugins run directly (host-local, static) and as delegates of
//! interface plugins; the abbreviated result, reservation files, DEL and CHECK. Allocation
//! (requests, exhaustion, concurrency) is in `ipam_alloc`.

use nfvi_harness::Outcome;

use super::{add_result, attach, cid, exec_after, exec_as, exec_in, ipam_conf, net_name};
use crate::lab::{Exec, Lab, expect_result, expect_success};
use crate::result::{read_result, validate_ipam_result};

/// host-local reservation files: (address, content).
type Reservations = [(String, String)];

pub(crate) async fn ipam_001(lab: &Lab<'_>, plugin: &str) -> Outcome {
    let ns = t!(lab.netns().await);
    let conf = ipam_conf(lab, plugin, 3);
    let r = t!(add_result(lab, plugin, &ns, &conf, "IPAM ADD").await);
    Outcome::pass_unless(
        validate_ipam_result(&r, &lab.version),
        "abbreviated result: ips without interface, no interfaces",
    )
    .with_property("result", r)
}

pub(crate) async fn ipam_002(lab: &Lab<'_>, plugin: &str) -> Outcome {
    let ns = t!(lab.netns().await);
    let conf = ipam_conf(lab, plugin, 3);
    let r = t!(expect_result(
        &lab.exec(plugin, &lab.env("ADD", &ns, "nfvi2", "eth3"), &conf)
            .await,
        "host-local ADD"
    ));
    let held = lab.reservations("nfvnet-ipam");
    let del = lab
        .exec(plugin, &lab.env("DEL", &ns, "nfvi2", "eth3"), &conf)
        .await;
    let after = lab.reservations("nfvnet-ipam");
    judge_reservation(read_result(&r).first_ip(), &held, &del, &after)
}

/// host-local ADD for container `nfvi2`, ifname `eth3`: a reservation file for the address
/// naming both, removed by DEL.
fn judge_reservation(ip: &str, held: &Reservations, del: &Exec, after: &Reservations) -> Outcome {
    let Some((_, content)) = held.iter().find(|(a, _)| a == ip) else {
        return Outcome::fail(format!("no reservation file for {ip}; files: {held:?}"));
    };
    if !(content.contains("nfvi2") && content.contains("eth3")) {
        return Outcome::fail(format!(
            "the reservation for {ip} holds {content:?}, expected the container ID and ifname"
        ));
    }
    t!(expect_success(del, "host-local DEL"));
    if after.iter().any(|(a, _)| a == ip) {
        return Outcome::fail(format!("DEL left the reservation for {ip}"));
    }
    Outcome::pass(format!(
        "reservation {ip} recorded container ID and ifname; removed on DEL"
    ))
}

pub(crate) async fn ipam_005(lab: &Lab<'_>, plugin: &str) -> Outcome {
    let ns = t!(lab.netns().await);
    let conf = ipam_conf(lab, plugin, 3);
    let never = exec_as(lab, plugin, "DEL", &ns, "nfvnever", &conf).await;
    let _ = exec_in(lab, plugin, "ADD", &ns, &conf).await;
    let mut dels = Vec::new();
    for _ in 1..=2 {
        dels.push(exec_in(lab, plugin, "DEL", &ns, &conf).await);
    }
    let mut env = lab.env("DEL", &ns, &cid(lab), "eth0");
    env.netns = None;
    let without_netns = lab.exec(plugin, &env, &conf).await;
    judge_repeated_dels(&never, &dels, &without_netns)
}

/// DEL of a never-allocated container, repeated DELs and DEL without CNI_NETNS all succeed.
fn judge_repeated_dels(never: &Exec, repeated: &[Exec], without_netns: &Exec) -> Outcome {
    let mut p = Vec::new();
    if !never.ok() {
        p.push(format!(
            "DEL of a never-allocated container: {}",
            never.describe()
        ));
    }
    for (i, d) in (1..).zip(repeated) {
        if !d.ok() {
            p.push(format!("DEL #{i}: {}", d.describe()));
        }
    }
    if !without_netns.ok() {
        p.push(format!(
            "DEL without CNI_NETNS: {}",
            without_netns.describe()
        ));
    }
    Outcome::pass_unless_with(
        p,
        "DEL of a never-allocated address, repeated DEL and DEL without netns all succeed",
        |p| format!("expected every DEL to succeed: {p}"),
    )
}

pub(crate) async fn ipam_007(lab: &Lab<'_>, plugin: &str) -> Outcome {
    let ns = t!(lab.netns().await);
    let conf = ipam_conf(lab, plugin, 3);
    let r = t!(add_result(lab, plugin, &ns, &conf, "ADD").await);
    let live = exec_after(lab, plugin, "CHECK", &ns, &conf, &r).await;
    let _ = exec_in(lab, plugin, "DEL", &ns, &conf).await;
    let gone = exec_after(lab, plugin, "CHECK", &ns, &conf, &r).await;
    judge_check_tracks_reservation(&live, &gone)
}

/// CHECK passes while the address is reserved and fails once DEL released it.
fn judge_check_tracks_reservation(live: &Exec, released: &Exec) -> Outcome {
    Outcome::pass_if(
        live.ok() && !released.ok(),
        "CHECK passes for a live reservation and fails once it is released",
        format!(
            "expected CHECK to pass while reserved and fail after DEL; live: {}, after DEL: {}",
            live.describe(),
            released.describe()
        ),
    )
}

pub(crate) async fn ipam_008(lab: &Lab<'_>, plugin: &str) -> Outcome {
    let a = t!(attach(lab, plugin).await);
    let name = net_name(&a.conf);
    let before = lab.reservations(&name);
    let del = a.exec(lab, plugin, "DEL").await;
    judge_del_releases(&before, &del, &lab.reservations(&name))
}

/// The main plugin's DEL releases the reservation its ADD made through IPAM.
fn judge_del_releases(before: &Reservations, del: &Exec, after: &Reservations) -> Outcome {
    let Some((ip, _)) = before.first() else {
        return Outcome::fail("ADD succeeded but no host-local reservation exists");
    };
    t!(expect_success(del, "DEL"));
    Outcome::pass_if(
        after.is_empty(),
        format!("DEL released {ip}"),
        format!("DEL left reservations {after:?}"),
    )
}

pub(crate) async fn ipam_009(lab: &Lab<'_>, plugin: &str) -> Outcome {
    let ns = t!(lab.netns().await);
    let conf = ipam_conf(lab, plugin, 3);
    let first = t!(add_result(lab, plugin, &ns, &conf, "first ADD").await);
    let second = exec_in(lab, plugin, "ADD", &ns, &conf).await;
    let held = lab.reservations("nfvnet-ipam");
    judge_second_add(read_result(&first).first_ip(), &second, &held)
}

/// A second ADD for the same container and ifname is refused and the first reservation
/// (`ip`) is the only one.
fn judge_second_add(ip: &str, second: &Exec, held: &Reservations) -> Outcome {
    Outcome::pass_if(
        !second.ok() && held.len() == 1 && held[0].0 == ip,
        format!(
            "second ADD refused ({}); first reservation {ip} kept",
            second.msg()
        ),
        format!(
            "expected the second ADD refused and only {ip} reserved; got {} and reservations {held:?}",
            second.describe()
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::super::testkit::{addr, ok_empty, refused, reservations};
    use super::*;
    use nfvi_harness::Status;

    /// (name, reservations after ADD, DEL, reservations after DEL, status, message start).
    type Row = (
        &'static str,
        Vec<(String, String)>,
        Exec,
        Vec<(String, String)>,
        Status,
        &'static str,
    );

    #[test]
    fn reservations_name_the_attachment_and_go_with_del() {
        let ip = "198.18.33.2";
        let held = reservations(&[("198.18.33.2", "nfvi2\r\neth3")]);
        #[rustfmt::skip]
        let rows: Vec<Row> = vec![
            ("clean", held.clone(), ok_empty(), vec![], Status::Passed, "reservation 198.18.33.2 recorded container ID and ifname; removed on DEL"),
            ("no file", reservations(&[("198.18.33.3", "x")]), ok_empty(), vec![], Status::Failed, "no reservation file for 198.18.33.2; files: [(\"198.18.33.3\", \"x\")]"),
            ("no ifname", reservations(&[("198.18.33.2", "nfvi2")]), ok_empty(), vec![], Status::Failed, "the reservation for 198.18.33.2 holds \"nfvi2\", expected the container ID and ifname"),
            ("DEL failed", held.clone(), refused("x"), vec![], Status::Failed, "host-local DEL: expected exit 0"),
            ("DEL kept it", held.clone(), ok_empty(), held.clone(), Status::Failed, "DEL left the reservation for 198.18.33.2"),
        ];
        for (name, held, del, after, status, needle) in rows {
            let o = judge_reservation(ip, &held, &del, &after);
            assert_eq!(o.status, status, "{name}: {}", o.message);
            assert!(o.message.starts_with(needle), "{name}: {}", o.message);
        }
    }

    #[test]
    fn every_ipam_del_succeeds() {
        let o = judge_repeated_dels(&ok_empty(), &[ok_empty(), ok_empty()], &ok_empty());
        assert_eq!(o.status, Status::Passed);
        let o = judge_repeated_dels(&refused("a"), &[ok_empty(), refused("b")], &refused("c"));
        // The successful DEL #1 is not mentioned.
        assert_eq!(
            o.message,
            [
                "expected every DEL to succeed: DEL of a never-allocated container: bridge ADD: exit 1, stdout {\"code\":999,\"msg\":\"a\"}",
                "DEL #2: bridge ADD: exit 1, stdout {\"code\":999,\"msg\":\"b\"}",
                "DEL without CNI_NETNS: bridge ADD: exit 1, stdout {\"code\":999,\"msg\":\"c\"}",
            ]
            .join("; ")
        );
    }

    #[test]
    fn check_follows_the_reservation() {
        assert_eq!(
            judge_check_tracks_reservation(&ok_empty(), &refused("gone")).status,
            Status::Passed
        );
        assert_eq!(
            judge_check_tracks_reservation(&ok_empty(), &ok_empty()).status,
            Status::Failed
        );
        assert_eq!(
            judge_check_tracks_reservation(&refused("x"), &refused("gone")).status,
            Status::Failed
        );
    }

    #[test]
    fn main_plugin_del_releases_the_reservation() {
        let held = reservations(&[("198.18.30.2", "nfvcid1")]);
        assert_eq!(
            judge_del_releases(&held, &ok_empty(), &[]).message,
            "DEL released 198.18.30.2"
        );
        assert_eq!(
            judge_del_releases(&[], &ok_empty(), &[]).message,
            "ADD succeeded but no host-local reservation exists"
        );
        assert!(
            judge_del_releases(&held, &refused("x"), &[])
                .message
                .starts_with("DEL: expected exit 0")
        );
        assert!(
            judge_del_releases(&held, &ok_empty(), &held)
                .message
                .starts_with("DEL left reservations")
        );
    }

    #[test]
    fn a_second_add_for_the_same_attachment_is_refused() {
        let held = reservations(&[("198.18.33.2", "nfvcid1\neth0")]);
        let dup = refused("duplicate allocation");
        assert_eq!(
            judge_second_add("198.18.33.2", &dup, &held).message,
            "second ADD refused (duplicate allocation); first reservation 198.18.33.2 kept"
        );
        assert_eq!(
            judge_second_add("198.18.33.2", &addr("198.18.33.3/24"), &held).status,
            Status::Failed
        );
        let two = reservations(&[("198.18.33.2", "a"), ("198.18.33.3", "a")]);
        assert_eq!(
            judge_second_add("198.18.33.2", &dup, &two).status,
            Status::Failed
        );
        assert_eq!(
            judge_second_add("198.18.33.3", &dup, &held).status,
            Status::Failed
        );
    }
}
