//! The pure judges of the probe timelines: no I/O, table-tested without a cluster.

use std::net::SocketAddr;
use std::time::Duration;

use nfvi_harness::Outcome;

use super::FAILOVER_LIMIT;
use super::Probe;

/// A probe that was not sent makes the stream's verdict an error naming why (the first
/// reason and how many), never a failure: no probe, no observation.
pub(crate) fn not_sent(probes: &[(Duration, Probe)]) -> Option<Outcome> {
    let mut unsent = probes.iter().filter_map(|p| match &p.1 {
        Probe::NotSent(why) => Some(why),
        _ => None,
    });
    let first = unsent.next()?;
    Some(Outcome::error(format!(
        "{first} ({} of {} probes not sent): the address was not probed, so nothing is judged",
        1 + unsent.count(),
        probes.len()
    )))
}

/// No external address within `deadline`: a failure, as RA2 requires LoadBalancer Services
/// to be served (ra2.ntw.020, ra2.ntw.022).
pub(crate) fn no_address(service: &str, deadline: Duration) -> Outcome {
    Outcome::fail(format!(
        "no load balancer assigned an external address to the LoadBalancer Service {service} within {} s (kubernetes.lb_timeout_secs): nothing serves LoadBalancer Services",
        deadline.as_secs()
    ))
}

/// A stream of UDP echo probes, one every [`INTERVAL`], on a thread of its own: the send
/// ra2.ntw.020: the external address answered (with the share of probes answered and the
/// median RTT); none answered: failed (the prober's own positive control passed before); a
/// probe not sent: an error ([`not_sent`]).
pub(crate) fn external(probes: &[(Duration, Probe)], peer: SocketAddr) -> Outcome {
    if probes.is_empty() {
        return Outcome::error("no probe was sent");
    }
    if let Some(e) = not_sent(probes) {
        return e;
    }
    let mut rtts: Vec<f64> = probes
        .iter()
        .filter_map(|p| match p.1 {
            Probe::Answered(d) => Some(d.as_secs_f64() * 1e6),
            _ => None,
        })
        .collect();
    if rtts.is_empty() {
        return Outcome::fail(format!(
            "the LoadBalancer Service's external address {peer} did not answer any of {} probes from outside the cluster",
            probes.len()
        ));
    }
    rtts.sort_by(f64::total_cmp);
    let med = rtts[rtts.len() / 2];
    Outcome::pass(format!(
        "the external address {peer} answers from outside the cluster: {} of {} probes answered, median RTT {med:.0} µs",
        rtts.len(),
        probes.len()
    ))
    .with_metric("RTT p50", med, "us")
}

/// ra2.ntw.022: for each deletion at `deletions[i]`, the outage is the longest stretch
/// without an answered probe from the last answer before the deletion to the first answer
/// after it (at least one probe interval). No answer after a deletion: failed, the outage
/// unbounded. The flow must have been answered before the first deletion (the positive
/// control): otherwise nothing is judged.
pub(crate) fn failover_judge(
    probes: &[(Duration, Probe)],
    deletions: &[Duration],
    interval: Duration,
) -> Outcome {
    if let Some(e) = not_sent(probes) {
        return e;
    }
    let answered: Vec<Duration> = probes
        .iter()
        .filter(|p| p.1.answered())
        .map(|p| p.0)
        .collect();
    let Some(first) = deletions.first() else {
        return Outcome::error("no backend was deleted");
    };
    if !answered.iter().any(|t| t < first) {
        return Outcome::error(
            "the Service answered no probe before the first deletion (the positive control): failover not measured",
        );
    }
    let last_sent = probes.last().map_or(Duration::ZERO, |p| p.0 + interval);
    let mut o = Outcome::pass("");
    let mut worst = Duration::ZERO;
    for (i, at) in deletions.iter().enumerate() {
        let end = deletions.get(i + 1).copied().unwrap_or(last_sent);
        // The longest silence between consecutive answers from the last one before the
        // deletion to the end of its window (the next deletion, or the end of the stream):
        // the pod goes away some time after the API call, so the outage may start later.
        let mut prev = answered
            .iter()
            .rev()
            .find(|t| *t < at)
            .copied()
            .unwrap_or(*at);
        let mut gap = interval;
        let mut seen = false;
        for t in answered.iter().filter(|t| **t >= *at && **t < end) {
            gap = gap.max(t.saturating_sub(prev));
            prev = *t;
            seen = true;
        }
        let trailing = end.saturating_sub(prev);
        if !seen || trailing >= FAILOVER_LIMIT {
            return Outcome::fail(format!(
                "after backend {} was deleted the Service did not answer again ({:.1} s of silence until the stream ended): no failover",
                i + 1,
                trailing.as_secs_f64()
            ))
            .with_property("answered probes", answered.len().to_string());
        }
        o = o.with_metric(
            format!("outage after deletion {}", i + 1),
            gap.as_secs_f64(),
            "s",
        );
        worst = worst.max(gap);
    }
    o = o.with_metric("failover", worst.as_secs_f64(), "s");
    if worst < FAILOVER_LIMIT {
        o.message = format!(
            "the load balancer failed over in {:.2} s at worst over {} backend deletions (RA2: under 5 s)",
            worst.as_secs_f64(),
            deletions.len()
        );
        o
    } else {
        let mut f = Outcome::fail(format!(
            "the load balancer took {:.2} s to fail over (RA2: under 5 s)",
            worst.as_secs_f64()
        ));
        f.evidence = o.evidence;
        f
    }
}
