//! MTU behaviour and the latency measurement: interleaved blocks over the loopback, macvlan,
//! bridge and ptp paths, per-path percentiles, macvlan against bridge with a 95% confidence
//! interval, SLAs judged on the upper confidence bound, and the conditions of the run (CPU
//! placement, load average, steal time) recorded with it.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::Duration;

use hdrhistogram::Histogram;
use nfvi_harness::{CheckContext, Outcome, Percentiles};
use rtnetlink::packet_route::link::MacVlanMode;

use crate::ns::{self, Netns};
use crate::topology::{self, Endpoint, Lab};
use nfvi_prober::probe::{self, Mode, PingConfig};
use nfvi_prober::stats::{self, Finding};

const PORT: u16 = 17_100;

/// One measured path: who probes whom.
struct Path {
    name: &'static str,
    src: Endpoint,
    dst_ns: Netns,
    dst_ip: Ipv4Addr,
}

fn snmp_counter(ns: &Netns, field: &str) -> Result<u64, String> {
    let field = field.to_owned();
    ns::run_in(&ns.path(), move || {
        // thread-self: /proc/self/net would show the netns of the thread-group leader.
        let text =
            std::fs::read_to_string("/proc/thread-self/net/snmp").map_err(|e| e.to_string())?;
        let mut ip = text.lines().filter(|l| l.starts_with("Ip:"));
        let (head, vals) = (
            ip.next().ok_or("no Ip: header")?,
            ip.next().ok_or("no Ip: values")?,
        );
        let i = head
            .split_whitespace()
            .position(|h| h == field)
            .ok_or_else(|| format!("no {field} in /proc/net/snmp"))?;
        vals.split_whitespace()
            .nth(i)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("unreadable {field}"))
    })
}

fn ping_from(
    src: &Endpoint,
    dst: SocketAddr,
    cfg: PingConfig,
) -> Result<probe::PingResult, String> {
    ns::run_in(&src.ns.path(), move || probe::ping(dst, &cfg))
}

/// MTU: a datagram that fills the interface MTU crosses unfragmented; a larger one is
/// fragmented by the sender (counted in `FragCreates`) and still delivered.
pub(crate) fn mtu_check(lab: &Lab<'_>, path: &str) -> Result<Outcome, String> {
    let (a, b) = if path == "bridge" {
        let t = topology::bridge(lab)?;
        (t.a, t.b)
    } else {
        let mut t = topology::macvlan(lab, MacVlanMode::Bridge, 2, false)?;
        let b = t.endpoints.pop().ok_or("no macvlan endpoint")?;
        (t.endpoints.pop().ok_or("no macvlan endpoint")?, b)
    };
    let ifname = a.ifname.clone();
    let mtu = crate::nl::within(
        &a.ns,
        move |h| async move { crate::nl::mtu(&h, &ifname).await },
    )?;
    let dst = SocketAddr::V4(SocketAddrV4::new(b.ip, PORT));
    let responder = probe::start_responder(Some(&b.ns.path()), dst, false)?;
    let cfg = |payload: usize| PingConfig {
        count: 3,
        warmup: 0,
        payload,
        probe_timeout: Duration::from_millis(500),
        max_consecutive_losses: 3,
        ..Default::default()
    };
    let full = (mtu as usize).saturating_sub(28);
    let frags_before = snmp_counter(&a.ns, "FragCreates")?;
    let at_mtu = ping_from(&a, dst, cfg(full));
    let frags_at_mtu = snmp_counter(&a.ns, "FragCreates")? - frags_before;
    let above = ping_from(&a, dst, cfg(full + 100));
    let frags_above = snmp_counter(&a.ns, "FragCreates")? - frags_before - frags_at_mtu;
    responder.stop()?;
    let mut problems = Vec::new();
    if let Err(e) = &at_mtu {
        problems.push(format!(
            "a {full}-byte datagram (filling MTU {mtu}) did not cross: {e}"
        ));
    }
    if frags_at_mtu > 0 {
        problems.push(format!(
            "a datagram filling the MTU was fragmented ({frags_at_mtu} fragments)"
        ));
    }
    match (&above, frags_above) {
        (Ok(_), n) if n > 0 => {}
        (Ok(_), _) => problems.push(format!(
            "a {}-byte datagram crossed without being fragmented: the path MTU is above {mtu}",
            full + 100
        )),
        (Err(e), _) => problems.push(format!(
            "a datagram above the MTU was neither fragmented nor reported: {e}"
        )),
    }
    let o = Outcome::pass_unless(
        problems,
        format!(
            "MTU {mtu}: {full}-byte datagrams cross whole; larger ones are fragmented ({frags_above} fragments) and delivered"
        ),
    );
    Ok(o.with_metric("mtu", f64::from(mtu), "bytes").with_metric(
        "fragments_above_mtu",
        frags_above as f64,
        "count",
    ))
}

fn read(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// (steal, total) jiffies from /proc/stat.
fn cpu_jiffies() -> (u64, u64) {
    let stat = read("/proc/stat");
    let fields: Vec<u64> = stat
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    (fields.get(7).copied().unwrap_or(0), fields.iter().sum())
}

/// The latency measurement and comparison.
pub(crate) fn latency_check(lab: &Lab<'_>, cx: &CheckContext) -> Result<Outcome, String> {
    let dp = cx.target().config::<crate::DatapathConfig>();
    let mode: Mode = dp.mode.parse()?;
    let lo = topology::loopback(lab)?;
    let mut mv = topology::macvlan(lab, MacVlanMode::Bridge, 2, false)?;
    let br = topology::bridge(lab)?;
    let pt = topology::ptp(lab)?;
    let mv_b = mv.endpoints.pop().ok_or("no macvlan endpoint")?;
    let mv_a = mv.endpoints.pop().ok_or("no macvlan endpoint")?;
    let mut paths = vec![
        Path {
            name: "loopback",
            dst_ns: lo.ns.clone(),
            dst_ip: lo.ip,
            src: lo,
        },
        Path {
            name: "macvlan",
            dst_ns: mv_b.ns.clone(),
            dst_ip: mv_b.ip,
            src: mv_a,
        },
        Path {
            name: "bridge",
            dst_ns: br.b.ns.clone(),
            dst_ip: br.b.ip,
            src: br.a,
        },
        Path {
            name: "ptp",
            dst_ns: pt.b.ns.clone(),
            dst_ip: pt.b.ip,
            src: pt.a,
        },
    ];
    // The same kinds of path as a pod gets them from the CNI plugins, where installed.
    for (name, a, b) in topology::cni_paths(lab)?.pairs {
        paths.push(Path {
            name,
            dst_ns: b.ns.clone(),
            dst_ip: b.ip,
            src: a,
        });
    }
    let paths = paths;
    let mut hist: Vec<Histogram<u64>> = paths.iter().map(|_| probe::new_histogram()).collect();
    let mut medians: Vec<Vec<f64>> = vec![Vec::new(); paths.len()];
    let mut p99s: Vec<Vec<f64>> = vec![Vec::new(); paths.len()];
    let mut lost = vec![0u64; paths.len()];
    let mut cpus = std::collections::BTreeSet::new();
    let (steal0, total0) = cpu_jiffies();
    let load_before = read("/proc/loadavg").trim().to_owned();
    let cancel = cx.cancel().clone();
    for round in 0..dp.rounds {
        let mut order: Vec<usize> = (0..paths.len()).collect();
        if round % 2 == 1 {
            order.reverse();
        }
        for i in order {
            if cancel.is_cancelled() {
                return Err("interrupted during the latency measurement".to_owned());
            }
            let p = &paths[i];
            let dst = SocketAddr::V4(SocketAddrV4::new(p.dst_ip, PORT));
            let pin = dp.pin_cpu.filter(|_| mode != Mode::Spin);
            let responder = probe::start_responder_on(
                Some(&p.dst_ns.path()),
                dst,
                mode == Mode::Spin,
                probe::Proto::Udp,
                pin,
            )?;
            let cfg = PingConfig {
                count: dp.block_probes,
                warmup: dp.warmup,
                mode,
                interval: Duration::from_millis(1),
                kernel_rx_timestamps: dp.kernel_timestamps && mode != Mode::Spin,
                ..Default::default()
            };
            let src = p.src.clone();
            let result = ns::run_in(&src.ns.path(), move || {
                if let Some(cpu) = pin {
                    probe::pin_current_thread(cpu)?;
                }
                let cpu = nix::sched::sched_getcpu().unwrap_or(usize::MAX);
                probe::ping(dst, &cfg).map(|r| (r, cpu))
            });
            responder.stop()?;
            let (r, cpu) = result.map_err(|e| format!("{} path, round {round}: {e}", p.name))?;
            cpus.insert(cpu);
            medians[i].push(r.summary.p50_us);
            p99s[i].push(r.summary.p99_us);
            lost[i] += r.summary.lost;
            hist[i].add(&r.histogram).map_err(|e| e.to_string())?;
        }
    }
    let (steal1, total1) = cpu_jiffies();
    let steal_pct = 100.0 * (steal1.saturating_sub(steal0)) as f64
        / (total1.saturating_sub(total0)).max(1) as f64;

    let mut o = Outcome::pass("");
    let mut sla_failures = Vec::new();
    for (i, p) in paths.iter().enumerate() {
        let s = probe::summarize(&hist[i], lost[i], 0, Duration::ZERO);
        for (k, v) in [
            ("p50", s.p50_us),
            ("p90", s.p90_us),
            ("p99", s.p99_us),
            ("p99.9", s.p999_us),
            ("mean", s.mean_us),
            ("stddev", s.stddev_us),
            ("min", s.min_us),
            ("max", s.max_us),
        ] {
            o = o.with_metric(format!("{}.{k}", p.name), (v * 100.0).round() / 100.0, "us");
        }
        o = o
            .with_metric(format!("{}.samples", p.name), s.count as f64, "count")
            .with_metric(format!("{}.lost", p.name), s.lost as f64, "count");
        let quantiles = probe::quantiles_us(&hist[i]);
        match Percentiles::new(quantiles.clone()) {
            Ok(cdf) => o = o.with_distribution(p.name, cdf),
            // Kept as raw numbers, with why they are not drawn.
            Err(why) => {
                o.evidence
                    .samples
                    .insert(format!("percentiles:{}", p.name), quantiles);
                o = o.with_property(format!("{} distribution", p.name), why);
            }
        }
        o.evidence
            .samples
            .insert(format!("block-medians:{}", p.name), medians[i].clone());
        if let Some(sla) = dp.sla.get(p.name) {
            for (what, limit, blocks) in [
                ("p50", sla.p50_us, &medians[i]),
                ("p99", sla.p99_us, &p99s[i]),
            ] {
                if let Some(limit) = limit {
                    let (_, upper) = stats::bootstrap_ci(blocks, stats::median, 0.95, 4000);
                    o = o.with_property(
                        format!("SLA {} {what}", p.name),
                        format!("upper 95% bound {upper:.1} us against {limit} us"),
                    );
                    if upper > limit {
                        sla_failures.push(format!("{} {what}: the upper 95% bound {upper:.1} us exceeds the SLA of {limit} us", p.name));
                    }
                }
            }
        }
    }
    let cmp = stats::compare(&medians[1], &medians[2]);
    let noise = stats::cv(&medians[0]);
    let finding = match cmp.finding {
        Finding::FirstFaster => "macvlan is faster than bridge",
        Finding::SecondFaster => "macvlan is slower than bridge",
        Finding::NoSignificantDifference => "no significant difference between macvlan and bridge",
    };
    o = o
        .with_metric("macvlan-minus-bridge", (cmp.difference_us * 100.0).round() / 100.0, "us")
        .with_metric("macvlan-minus-bridge.ci95-low", (cmp.ci_low_us * 100.0).round() / 100.0, "us")
        .with_metric("macvlan-minus-bridge.ci95-high", (cmp.ci_high_us * 100.0).round() / 100.0, "us")
        .with_metric("loopback block-median cv", (noise * 1000.0).round() / 1000.0, "ratio")
        .with_metric("steal", (steal_pct * 100.0).round() / 100.0, "%")
        .with_property("finding", finding)
        .with_property("method", format!(
            "{} rounds of interleaved blocks (ABBA order), {} probes per block after {} warm-up, {} mode; per-block medians; Hodges-Lehmann estimate of macvlan - bridge over paired rounds with a 95% percentile bootstrap interval",
            dp.rounds, dp.block_probes, dp.warmup, dp.mode
        ))
        .with_property("client cpus", format!("{cpus:?}"))
        .with_property(
            "receive time",
            if dp.kernel_timestamps && mode != Mode::Spin { "kernel software timestamp (SO_TIMESTAMPNS)" } else { "user space, after the wake-up" },
        )
        .with_property(
            "pinning",
            match dp.pin_cpu { Some(cpu) if mode != Mode::Spin => format!("client and responder pinned to CPU {cpu}"), _ => "none (placement recorded)".to_owned() },
        )
        .with_property("load average before", load_before)
        .with_property("load average after", read("/proc/loadavg").trim());
    let p50s = paths
        .iter()
        .zip(&medians)
        .map(|(p, m)| format!("{} {:.1}", p.name, stats::median(m)))
        .collect::<Vec<_>>()
        .join(", ");
    let summary = format!(
        "{finding}: macvlan - bridge = {:+.2} us (95% CI {:+.2} to {:+.2}) over {} rounds; median block p50 in us: {p50s}",
        cmp.difference_us, cmp.ci_low_us, cmp.ci_high_us, cmp.rounds,
    );
    if let (Some(cb), Some(cm)) = (
        paths.iter().position(|p| p.name == "cni-bridge"),
        paths.iter().position(|p| p.name == "cni-macvlan"),
    ) {
        let c = stats::compare(&medians[cm], &medians[cb]);
        o = o
            .with_metric(
                "cni-macvlan-minus-cni-bridge",
                (c.difference_us * 100.0).round() / 100.0,
                "us",
            )
            .with_metric(
                "cni-macvlan-minus-cni-bridge.ci95-low",
                (c.ci_low_us * 100.0).round() / 100.0,
                "us",
            )
            .with_metric(
                "cni-macvlan-minus-cni-bridge.ci95-high",
                (c.ci_high_us * 100.0).round() / 100.0,
                "us",
            );
    }
    if noise > dp.noise_cv_limit {
        let mut e = Outcome::error(format!(
            "inconclusive: the loopback baseline is too noisy (block-median CV {:.2} > {}); rerun on a quieter machine. Measured: {summary}",
            noise, dp.noise_cv_limit
        ));
        e.evidence = o.evidence;
        return Ok(e);
    }
    if !sla_failures.is_empty() {
        let mut f = Outcome::fail(format!(
            "latency SLA missed: {}. {summary}",
            sla_failures.join("; ")
        ));
        f.evidence = o.evidence;
        return Ok(f);
    }
    o.message = summary;
    Ok(o)
}
