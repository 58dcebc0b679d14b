//! Same node against cross node, from the paired blocks of one probe client
//! (`nfvi-verify probe compare`, [`PairedBlocks`]): the judgement the in-cluster probe pods
//! (the Kubernetes area) and the fleet's cross-node check share. The client measured its own
//! node's responder (first) and another node's (second) in ABBA-interleaved rounds; the
//! comparison is the Hodges-Lehmann difference of the per-round medians with a bootstrap
//! 95% interval, and an SLA is judged, as in the rest of the area, on the upper 95% bound
//! of the per-round p50 or p99.

use nfvi_harness::{Outcome, Percentiles};
use nfvi_prober::probe::PairedBlocks;
use nfvi_prober::stats;

use crate::LatencySla;

/// What a paired comparison measured, for its message and evidence.
#[derive(Clone, Copy, Debug)]
pub struct PairedPaths<'a> {
    /// What is measured, for the message: `pod-to-pod`, `node-to-node`.
    pub what: &'a str,
    /// The client's node, which also holds the same-node responder.
    pub a: &'a str,
    /// The node of the cross-node responder.
    pub b: &'a str,
    /// The SLA names (`[datapath.sla.NAME]`) of the same-node and the cross-node path.
    pub sla: [&'a str; 2],
    /// Properties recorded first (which nodes, where), in order.
    pub properties: &'a [(&'a str, &'a str)],
}

/// Reads a probe client's `--format json` output. Lines before the JSON (a login script's
/// chatter) are passed over; anything else that is not the report is an error quoting it.
pub fn parse_paired(stdout: &str) -> Result<PairedBlocks, String> {
    let text = stdout.trim();
    let first = serde_json::from_str::<PairedBlocks>(text);
    let err = match first {
        Ok(p) => return Ok(p),
        Err(e) => e,
    };
    // The report starts at a line that opens an object.
    let start = text
        .match_indices('\n')
        .map(|(i, _)| i + 1)
        .find(|&i| text[i..].starts_with('{'));
    if let Some(Ok(p)) = start.map(|i| serde_json::from_str::<PairedBlocks>(&text[i..])) {
        return Ok(p);
    }
    Err(format!(
        "the probe client's output is not the expected JSON ({err}): {}",
        nfvi_harness::truncate_chars(text, 200)
    ))
}

/// The outcome of one comparison: same node (first) against cross node (second), with the
/// SLAs `slas` of those paths when the target sets them. Series that are uneven, too short
/// or not positive numbers are an error, never a measurement.
pub fn judge_paired(
    p: &PairedBlocks,
    paths: &PairedPaths<'_>,
    slas: [Option<&LatencySla>; 2],
) -> Outcome {
    let (a, b) = (paths.a, paths.b);
    let n = p.first_p50_us.len();
    let sane = |v: &[f64]| v.iter().all(|x| x.is_finite() && *x > 0.0);
    if n < 2 || p.second_p50_us.len() != n || !sane(&p.first_p50_us) || !sane(&p.second_p50_us) {
        return Outcome::error(format!(
            "the probe client reported {} and {} block medians, or values that are not positive numbers; expected two equal series of at least 2",
            p.first_p50_us.len(),
            p.second_p50_us.len()
        ));
    }
    let c = stats::compare(&p.first_p50_us, &p.second_p50_us);
    let (same, cross) = (
        stats::median(&p.first_p50_us),
        stats::median(&p.second_p50_us),
    );
    let finding = match c.finding {
        stats::Finding::FirstFaster => "same node is faster",
        stats::Finding::SecondFaster => "cross node is faster",
        stats::Finding::NoSignificantDifference => "no significant difference",
    };
    let mut o = Outcome::pass(format!(
        "{} p50: same node ({a}) {same:.1} µs, cross node ({a} to {b}) {cross:.1} µs; same − cross = {:.1} µs (95% CI {:.1} to {:.1}): {finding}",
        paths.what, c.difference_us, c.ci_low_us, c.ci_high_us
    ))
    .with_metric("same-node p50", same, "us")
    .with_metric("cross-node p50", cross, "us")
    .with_metric("same minus cross", c.difference_us, "us")
    .with_metric("difference CI low", c.ci_low_us, "us")
    .with_metric("difference CI high", c.ci_high_us, "us");
    for (k, v) in paths.properties {
        o = o.with_property(*k, v);
    }
    o = o
        .with_property("rounds x block", format!("{n} x {}", p.block))
        .with_property("lost", format!("same {} / cross {}", p.lost[0], p.lost[1]));
    o.evidence.samples.insert(
        "same-node block p50 (us)".to_owned(),
        p.first_p50_us.clone(),
    );
    o.evidence.samples.insert(
        "cross-node block p50 (us)".to_owned(),
        p.second_p50_us.clone(),
    );
    // The whole distributions, which the HTML report draws.
    for (name, cdf) in [
        ("same node", &p.first_cdf_us),
        ("cross node", &p.second_cdf_us),
    ] {
        match Percentiles::new(cdf.clone()) {
            Ok(p) => o = o.with_distribution(name, p),
            // Kept as raw numbers, with why they are not drawn.
            Err(why) => {
                o.evidence
                    .samples
                    .insert(format!("percentiles:{name}"), cdf.clone());
                o = o.with_property(format!("{name} distribution"), why);
            }
        }
    }
    let mut missed = Vec::new();
    let series = [
        (paths.sla[0], &p.first_p50_us, &p.first_p99_us),
        (paths.sla[1], &p.second_p50_us, &p.second_p99_us),
    ];
    for ((path, p50s, p99s), sla) in series.into_iter().zip(slas) {
        let Some(sla) = sla else { continue };
        for (what, limit, blocks) in [("p50", sla.p50_us, p50s), ("p99", sla.p99_us, p99s)] {
            let Some(limit) = limit else { continue };
            if blocks.len() < 2 {
                missed.push(format!("{path} {what}: the client reported no per-round {what} to judge against the SLA of {limit} us"));
                continue;
            }
            let (_, upper) = stats::bootstrap_ci(blocks, stats::median, 0.95, 4000);
            o = o.with_property(
                format!("SLA {path} {what}"),
                format!("upper 95% bound {upper:.1} us against {limit} us"),
            );
            if upper > limit {
                missed.push(format!(
                    "{path} {what}: the upper 95% bound {upper:.1} us exceeds the SLA of {limit} us"
                ));
            }
        }
    }
    if missed.is_empty() {
        o
    } else {
        let mut f = Outcome::fail(format!(
            "latency SLA missed: {}. {}",
            missed.join("; "),
            o.message
        ));
        f.evidence = o.evidence;
        f
    }
}

#[cfg(test)]
mod tests {
    use nfvi_harness::Status;

    use super::*;

    fn paired(first: Vec<f64>, second: Vec<f64>) -> PairedBlocks {
        PairedBlocks {
            first: "198.19.25.11:40000".parse().unwrap(),
            second: "198.19.25.12:40001".parse().unwrap(),
            block: 1000,
            first_p99_us: first.iter().map(|v| v * 3.0).collect(),
            second_p99_us: second.iter().map(|v| v * 3.0).collect(),
            first_p50_us: first,
            second_p50_us: second,
            lost: [0, 2],
            first_cdf_us: (0..=100).map(f64::from).collect(),
            second_cdf_us: (0..=100).map(|i| f64::from(i) * 2.0).collect(),
        }
    }

    const NODES: PairedPaths<'static> = PairedPaths {
        what: "node-to-node",
        a: "n1",
        b: "n2",
        sla: ["fleet-same-node", "fleet-cross-node"],
        properties: &[("nodes", "n1 and n2")],
    };

    #[test]
    fn both_distributions_and_the_difference_are_evidence() {
        let p = paired(vec![10.0, 10.5, 10.2, 10.1], vec![20.0, 20.4, 19.9, 20.2]);
        let o = judge_paired(&p, &NODES, [None, None]);
        assert_eq!(o.status, Status::Passed, "{}", o.message);
        assert!(
            o.message.starts_with(
                "node-to-node p50: same node (n1) 10.1 µs, cross node (n1 to n2) 20.1 µs"
            ),
            "{}",
            o.message
        );
        assert!(o.message.ends_with("same node is faster"), "{}", o.message);
        let e = &o.evidence;
        assert_eq!(
            e.distributions.keys().collect::<Vec<_>>(),
            ["same node", "cross node"]
        );
        assert_eq!(
            e.properties.keys().next().map(String::as_str),
            Some("nodes")
        );
        assert_eq!(e.properties["lost"], "same 0 / cross 2");
        assert!((e.metrics["cross-node p50"].value - 20.1).abs() < 1e-9);
    }

    #[test]
    fn slas_are_judged_on_the_upper_bound_of_the_per_round_p99() {
        let p = paired(vec![10.0, 10.5, 10.2, 10.1], vec![20.0, 20.4, 19.9, 20.2]);
        // Cross-node p99s are about 60 µs: an SLA of 50 is missed, one of 100 is met.
        let tight = LatencySla {
            p50_us: Some(25.0),
            p99_us: Some(50.0),
        };
        let o = judge_paired(&p, &NODES, [None, Some(&tight)]);
        assert_eq!(o.status, Status::Failed);
        assert!(
            o.message
                .starts_with("latency SLA missed: fleet-cross-node p99: the upper 95% bound ")
                && o.message
                    .contains(" us exceeds the SLA of 50 us. node-to-node p50: "),
            "{}",
            o.message
        );
        assert_eq!(
            o.evidence.distributions.len(),
            2,
            "a failure keeps the evidence"
        );
        let loose = LatencySla {
            p50_us: Some(25.0),
            p99_us: Some(100.0),
        };
        let o = judge_paired(&p, &NODES, [Some(&loose), Some(&loose)]);
        assert_eq!(o.status, Status::Passed, "{}", o.message);
        assert!(
            o.evidence.properties["SLA fleet-cross-node p99"].ends_with("against 100 us"),
            "{:?}",
            o.evidence.properties
        );
    }

    #[test]
    fn nonsense_is_an_error_and_a_bad_distribution_is_kept_raw() {
        let e = |p| judge_paired(&p, &NODES, [None, None]).status;
        assert_eq!(e(paired(vec![1.0], vec![2.0])), Status::Error);
        assert_eq!(e(paired(vec![1.0, 2.0], vec![2.0])), Status::Error);
        assert_eq!(
            e(paired(vec![1.0, f64::NAN], vec![2.0, 2.0])),
            Status::Error
        );
        let mut p = paired(vec![1.0, 1.1], vec![2.0, 2.1]);
        p.second_cdf_us = vec![3.0, 2.0];
        let o = judge_paired(&p, &NODES, [None, None]);
        assert_eq!(o.status, Status::Passed);
        assert_eq!(o.evidence.distributions.len(), 1);
        assert!(o.evidence.samples.contains_key("percentiles:cross node"));
    }

    #[test]
    fn the_report_is_read_past_chatter_and_garbage_is_quoted() {
        let p = paired(vec![10.0, 10.5], vec![20.0, 20.4]);
        let json = serde_json::to_string_pretty(&p).unwrap();
        assert_eq!(parse_paired(&json).unwrap(), p);
        assert_eq!(
            parse_paired(&format!("welcome to n1\n{json}\n")).unwrap(),
            p
        );
        let e = parse_paired("error: n2 did not answer").unwrap_err();
        assert!(
            e.starts_with("the probe client's output is not the expected JSON (")
                && e.ends_with("): error: n2 did not answer"),
            "{e}"
        );
        assert!(parse_paired("").is_err());
        assert!(parse_paired("{\"first\": 1}").is_err());
    }
}
