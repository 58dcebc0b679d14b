//! CNI-IPAM, allocation: requested addresses, range exhaustion and concurrent allocation.

use nfvi_harness::Outcome;
use serde_json::json;

use super::conc::{Tally, judge_concurrency};
use super::{exec_as, ipam_conf, join_all};
use crate::lab::{Exec, Lab};
use crate::result::read_result;

/// host-local reservation files: (address, content).
type Reservations = [(String, String)];

/// One address request: what it was, the address wanted (`None`: unsatisfiable), the ADD, and
/// the reservations naming its container afterwards.
struct IpRequest {
    what: &'static str,
    want: Option<String>,
    exec: Exec,
    leaked: usize,
}

pub(crate) async fn ipam_003(lab: &Lab<'_>, plugin: &str) -> Outcome {
    let ns = t!(lab.netns().await);
    let (subnet, _) = lab.subnet(3);
    let at = |host: u8| subnet.replace(".0/24", &format!(".{host}"));
    let base = ipam_conf(lab, plugin, 3);
    let mut cases = Vec::new();
    if plugin == "host-local" {
        let mut rc = base.clone();
        rc["runtimeConfig"] = json!({"ips": [at(66)]});
        cases.push(("runtimeConfig.ips", rc, Some(at(66))));
        let mut args = base.clone();
        args["args"] = json!({"cni": {"ips": [at(67)]}});
        cases.push(("args.cni.ips", args, Some(at(67))));
        let mut out = base.clone();
        out["runtimeConfig"] = json!({"ips": ["198.19.250.1"]});
        cases.push(("an out-of-range request", out, None));
    } else {
        let mut rc = json!({"cniVersion": lab.version, "name": "nfvnet-static", "capabilities": {"ips": true},
                            "ipam": {"type": "static", "routes": [{"dst": "0.0.0.0/0"}]}});
        rc["runtimeConfig"] = json!({"ips": [format!("{}/24", at(68))]});
        cases.push(("runtimeConfig.ips", rc, Some(at(68))));
    }
    let mut requests = Vec::new();
    for (i, (what, conf, want)) in cases.into_iter().enumerate() {
        let cid = format!("nfvreq{i}");
        let exec = exec_as(lab, plugin, "ADD", &ns, &cid, &conf).await;
        // For a satisfiable request the count is the reader's positive control; for an
        // unsatisfiable one it is the leak.
        let leaked = lab
            .reservations("nfvnet-ipam")
            .into_iter()
            .filter(|(_, c)| c.contains(&cid))
            .count();
        requests.push(IpRequest {
            what,
            want,
            exec,
            leaked,
        });
    }
    judge_ip_requests(&requests, plugin == "host-local")
}

/// Satisfiable requests get the address asked for; an unsatisfiable one fails and reserves
/// nothing. With a reservation store (`tracked`: host-local), "reserves nothing" counts only
/// if the same reader saw the reservation of a satisfied request.
fn judge_ip_requests(requests: &[IpRequest], tracked: bool) -> Outcome {
    let mut p = Vec::new();
    for IpRequest {
        what,
        want,
        exec,
        leaked,
    } in requests
    {
        match want {
            Some(ip) => {
                let got = exec
                    .json()
                    .map_or(String::new(), |v| read_result(v).first_address().to_owned());
                if !exec.ok() || !got.starts_with(&format!("{ip}/")) {
                    p.push(format!("{what} asked for {ip}: {}", exec.describe()));
                }
            }
            None => {
                if exec.ok() || *leaked > 0 {
                    p.push(format!(
                        "{what} should fail without a reservation: {}, {leaked} reservations",
                        exec.describe()
                    ));
                }
            }
        }
    }
    // Only a pass needs the control: what was seen wrong stands.
    let satisfied_seen = requests
        .iter()
        .any(|r| r.want.is_some() && r.exec.ok() && r.leaked > 0);
    if p.is_empty() && tracked && requests.iter().any(|r| r.want.is_none()) && !satisfied_seen {
        return Outcome::error(
            "no reservation of a satisfied request was visible in the IPAM directory, so \"the unsatisfiable request reserved nothing\" could not be observed",
        );
    }
    Outcome::pass_unless(
        p,
        "requested addresses honoured; an unsatisfiable request failed without leaking",
    )
}

pub(crate) async fn ipam_004(lab: &Lab<'_>, plugin: &str) -> Outcome {
    let (subnet, _) = lab.subnet(3);
    let tiny = subnet.replace(".0/24", ".16/30");
    let gw = subnet.replace(".0/24", ".17");
    let conf = json!({"cniVersion": lab.version, "name": "nfvnet-tiny",
        "ipam": {"type": "host-local", "subnet": tiny, "gateway": gw, "dataDir": lab.ipam_dir()}});
    let ns = t!(lab.netns().await);
    let a = exec_as(lab, plugin, "ADD", &ns, "nfva", &conf).await;
    let b = exec_as(lab, plugin, "ADD", &ns, "nfvb", &conf).await;
    let held = lab.reservations("nfvnet-tiny");
    let _ = exec_as(lab, plugin, "DEL", &ns, "nfva", &conf).await;
    let c = exec_as(lab, plugin, "ADD", &ns, "nfvc", &conf).await;
    judge_exhaustion(&tiny, [&a, &b, &c], &held)
}

/// A /30 with its gateway has one free address: the first ADD succeeds, the second fails
/// with a JSON error leaving one reservation, and after DEL of the first a third succeeds.
fn judge_exhaustion(tiny: &str, [a, b, c]: [&Exec; 3], held: &Reservations) -> Outcome {
    let mut p = Vec::new();
    if !a.ok() {
        p.push(format!(
            "the first ADD in {tiny} should succeed: {}",
            a.describe()
        ));
    }
    if b.ok() || b.json().is_none() {
        p.push(format!(
            "ADD in the exhausted range should fail with a JSON error: {}",
            b.describe()
        ));
    }
    if held.len() != 1 {
        p.push(format!(
            "expected one reservation after exhaustion, found {held:?}"
        ));
    }
    if !c.ok() {
        p.push(format!(
            "after releasing one address ADD should succeed: {}",
            c.describe()
        ));
    }
    Outcome::pass_unless(
        p,
        format!(
            "{tiny} exhausted with a JSON error ({}); freed address reused",
            b.msg()
        ),
    )
}

pub(crate) async fn ipam_006(lab: &Lab<'_>, plugin: &str) -> Outcome {
    let ns = t!(lab.netns().await);
    let conf = ipam_conf(lab, plugin, 4);
    let run = |command: &'static str| {
        let (conf, ns) = (&conf, &ns);
        (0..40).map(move |i| async move {
            lab.exec(
                plugin,
                &lab.env(command, ns, &format!("nfvconc{i}"), "eth0"),
                conf,
            )
            .await
        })
    };
    let adds = join_all(run("ADD")).await;
    let live = lab.reservations("nfvnet-ipam").len();
    let dels = join_all(run("DEL")).await;
    let left = lab.reservations("nfvnet-ipam").len();
    judge_concurrency(
        40,
        &Tally::of(&adds, &dels, live, left),
        "40 concurrent ADDs got 40 distinct addresses; 40 concurrent DELs released all",
        "expected 40 distinct addresses and a clean release",
    )
}

#[cfg(test)]
mod tests {
    use super::super::testkit::{
        addr, assert_starts_with, garbage, ok_empty, refused, reservations,
    };
    use super::*;
    use nfvi_harness::Status;

    #[test]
    fn requested_addresses() {
        let req = |what, want: Option<&str>, exec, leaked| IpRequest {
            what,
            want: want.map(str::to_owned),
            exec,
            leaked,
        };
        let good = [
            req(
                "runtimeConfig.ips",
                Some("198.18.33.66"),
                addr("198.18.33.66/24"),
                1,
            ),
            req(
                "an out-of-range request",
                None,
                refused("no IP addresses available"),
                0,
            ),
        ];
        assert_eq!(judge_ip_requests(&good, true).status, Status::Passed);
        // The reader saw no reservation of the satisfied request: "none leaked" is blind.
        let blind = [
            req(
                "runtimeConfig.ips",
                Some("198.18.33.66"),
                addr("198.18.33.66/24"),
                0,
            ),
            req(
                "an out-of-range request",
                None,
                refused("none available"),
                0,
            ),
        ];
        assert_eq!(judge_ip_requests(&blind, true).status, Status::Error);
        // static keeps no reservations: nothing to read, nothing required.
        assert_eq!(judge_ip_requests(&blind[..1], false).status, Status::Passed);
        let bad = [
            req(
                "runtimeConfig.ips",
                Some("198.18.33.66"),
                addr("198.18.33.2/24"),
                0,
            ),
            req(
                "args.cni.ips",
                Some("198.18.33.67"),
                addr("198.18.33.670/24"),
                0,
            ),
            req("an out-of-range request", None, refused("x"), 1),
        ];
        let o = judge_ip_requests(&bad, true);
        let parts: Vec<&str> = o.message.split("; ").collect();
        assert_eq!(parts.len(), 3, "{}", o.message);
        assert!(
            parts[0].starts_with("runtimeConfig.ips asked for 198.18.33.66: bridge ADD: exit 0")
        );
        assert!(parts[2].starts_with(
            "an out-of-range request should fail without a reservation: bridge ADD: exit 1"
        ));
        assert!(parts[2].ends_with(", 1 reservations"));
        let o = judge_ip_requests(&[req("x", Some("198.18.33.9"), refused("y"), 0)], true);
        assert_eq!(o.status, Status::Failed);
    }

    #[test]
    fn range_exhaustion() {
        let tiny = "198.18.33.16/30";
        let one = reservations(&[("198.18.33.18", "nfva")]);
        let full = refused("no IP addresses available in range set");
        let o = judge_exhaustion(tiny, [&ok_empty(), &full, &ok_empty()], &one);
        assert_eq!(
            o.message,
            "198.18.33.16/30 exhausted with a JSON error (no IP addresses available in range set); freed address reused"
        );
        let o = judge_exhaustion(tiny, [&ok_empty(), &ok_empty(), &ok_empty()], &one);
        assert_starts_with(
            &o.message,
            "ADD in the exhausted range should fail with a JSON error",
        );
        let o = judge_exhaustion(
            tiny,
            [&ok_empty(), &garbage(1, Some("panic")), &ok_empty()],
            &one,
        );
        assert_eq!(o.status, Status::Failed, "an error without a JSON object");
        let o = judge_exhaustion(tiny, [&full, &full, &full], &[]);
        let parts: Vec<&str> = o.message.split("; ").collect();
        assert_eq!(parts.len(), 3, "{}", o.message);
        assert_eq!(
            parts[1],
            "expected one reservation after exhaustion, found []"
        );
    }
}
