//! CNI-CONC: concurrent ADDs and DELs of distinct containers, and the tally both this group
//! and CNI-IPAM-006 judge.

use std::collections::BTreeSet;

use nfvi_harness::Outcome;

use super::{exec_as, join_all, net_name, with_prev};
use crate::lab::{Exec, Lab};
use crate::result::read_result;

/// What a burst of concurrent ADDs followed by concurrent DELs left behind.
#[derive(Debug)]
pub(super) struct Tally {
    /// The failed ADDs, described.
    failed: Vec<String>,
    /// Distinct first addresses among the ADD results.
    distinct: usize,
    del_failed: usize,
    /// Reservations visible between the ADDs and the DELs: the positive control of `left`.
    live: usize,
    /// Reservations left after the DELs.
    left: usize,
}

impl Tally {
    pub(super) fn of(adds: &[Exec], dels: &[Exec], live: usize, left: usize) -> Self {
        let distinct: BTreeSet<String> = adds
            .iter()
            .filter_map(Exec::json)
            .map(|v| read_result(v).first_address().to_owned())
            .filter(|a| !a.is_empty())
            .collect();
        Tally {
            failed: adds
                .iter()
                .filter(|e| !e.ok())
                .map(Exec::describe)
                .collect(),
            distinct: distinct.len(),
            del_failed: dels.iter().filter(|e| !e.ok()).count(),
            live,
            left,
        }
    }
}

/// `n` concurrent ADDs all succeed with `n` distinct addresses, and the DELs all succeed and
/// release every reservation: passes with `pass`, or fails saying what was `expected` and
/// what was seen.
/// "No reservation left" counts only if the same reader saw the live ones: fewer visible
/// reservations than distinct addresses handed out is an error, never a clean release.
pub(super) fn judge_concurrency(n: usize, t: &Tally, pass: &str, expected: &str) -> Outcome {
    if t.failed.is_empty() && t.live < t.distinct {
        return Outcome::error(format!(
            "only {} of {} reservations were visible while the attachments were live, so their release could not be observed",
            t.live, t.distinct
        ));
    }
    Outcome::pass_if(
        t.failed.is_empty() && t.distinct == n && t.del_failed == 0 && t.left == 0,
        pass,
        format!(
            "{expected}; {} ADDs failed ({}), {} distinct addresses, {} DELs failed, {} reservations left",
            t.failed.len(),
            t.failed.first().cloned().unwrap_or_default(),
            t.distinct,
            t.del_failed,
            t.left
        ),
    )
}

pub(crate) async fn conc_001(lab: &Lab<'_>, plugin: &str) -> Outcome {
    let conf = t!(lab.conf_for(plugin).await);
    let mut spaces = Vec::new();
    for _ in 0..16 {
        spaces.push(t!(lab.netns().await));
    }
    let adds = spaces.iter().enumerate().map(|(i, ns)| {
        let conf = &conf;
        async move { exec_as(lab, plugin, "ADD", ns, &format!("nfvconc{i}"), conf).await }
    });
    let results = join_all(adds).await;
    let live = lab.reservations(&net_name(&conf)).len();
    let dels = spaces.iter().enumerate().zip(&results).map(|((i, ns), r)| {
        let conf = r
            .json()
            .map_or_else(|| conf.clone(), |r| with_prev(&conf, r));
        async move { exec_as(lab, plugin, "DEL", ns, &format!("nfvconc{i}"), &conf).await }
    });
    let dels = join_all(dels).await;
    let left = lab.reservations(&net_name(&conf)).len();
    judge_concurrency(
        16,
        &Tally::of(&results, &dels, live, left),
        "16 concurrent ADDs succeeded with 16 distinct addresses; 16 concurrent DELs cleaned up",
        "expected 16 successes with distinct addresses and a clean release",
    )
}

#[cfg(test)]
mod tests {
    use super::super::testkit::{err, ok, ok_empty};
    use super::*;
    use nfvi_harness::Status;
    use serde_json::json;

    fn add(host: u32) -> Exec {
        ok(json!({"cniVersion": "1.0.0", "ips": [{"address": format!("198.18.34.{host}/24")}]}))
    }

    /// (name, ADDs, DELs, reservations left, expected complaint or `None` for a pass).
    type Row = (
        &'static str,
        Vec<Exec>,
        Vec<Exec>,
        usize,
        Option<&'static str>,
    );

    #[test]
    fn concurrent_adds_need_distinct_addresses_and_a_clean_release() {
        let refused = || err(1, json!({"code": 11, "msg": "try again later"}));
        let dels = || vec![ok_empty(), ok_empty(), ok_empty()];
        #[rustfmt::skip]
        let rows: Vec<Row> = vec![
            ("clean", vec![add(2), add(3), add(4)], dels(), 0, None),
            ("duplicate address", vec![add(2), add(2), add(4)], dels(), 0,
             Some("0 ADDs failed (), 2 distinct addresses, 0 DELs failed, 0 reservations left")),
            ("an ADD failed", vec![add(2), refused(), add(4)], dels(), 0,
             Some("1 ADDs failed (bridge ADD: exit 1, stdout {\"code\":11,\"msg\":\"try again later\"}), 2 distinct addresses")),
            ("a DEL failed", vec![add(2), add(3), add(4)], vec![ok_empty(), refused(), ok_empty()], 0, Some("1 DELs failed")),
            ("a reservation leaked", vec![add(2), add(3), add(4)], dels(), 1, Some("1 reservations left")),
        ];
        for (name, adds, dels, left, want) in rows {
            let o = judge_concurrency(3, &Tally::of(&adds, &dels, 3, left), "clean", "expected 3");
            match want {
                None => assert_eq!(o.message, "clean", "{name}"),
                Some(needle) => {
                    assert_eq!(o.status, Status::Failed, "{name}");
                    assert!(
                        o.message.starts_with("expected 3; "),
                        "{name}: {}",
                        o.message
                    );
                    assert!(o.message.contains(needle), "{name}: {}", o.message);
                }
            }
        }
    }

    /// A reader that did not see the live reservations makes "none left" undecidable.
    #[test]
    fn a_clean_release_needs_the_live_reservations_observed() {
        let adds = [add(2), add(3), add(4)];
        let dels = [ok_empty(), ok_empty(), ok_empty()];
        for live in [0, 2] {
            let o = judge_concurrency(3, &Tally::of(&adds, &dels, live, 0), "clean", "expected 3");
            assert_eq!(o.status, Status::Error, "{live} visible: {}", o.message);
        }
        let o = judge_concurrency(3, &Tally::of(&adds, &dels, 3, 0), "clean", "expected 3");
        assert_eq!(o.status, Status::Passed);
    }
}
