//! LoadBalancer Services seen from outside the cluster: in a namespace of its own
//! (`nfvi-verify-net-lb-*`), two responder probe pods on two nodes and a Service of type
//! LoadBalancer (UDP `kubernetes.lb_port`) over them. Once the load balancer gives the
//! Service an external address (within `kubernetes.lb_timeout_secs`; else the check fails:
//! nothing serves Services of type LoadBalancer), nfvi-verify probes that address from where
//! it runs (the jump host, outside the cluster) with a stream of UDP echo probes, one every
//! [`INTERVAL`]. The address must lie inside `network.lab_cidr`: nothing else is ever probed
//! (loopback only with `kubernetes.lb_allow_loopback`, for tests against a scripted API
//! server). Each probe is answered, silent, or not sent (the socket refused it: no route, for
//! one); a probe not sent makes the check an error, never a failure.
//!
//! `k8s.lb.external` judges that the address answers. `k8s.lb.failover` keeps the stream
//! running while it deletes the first responder (after which the flow is on the second for
//! certain), starts a replacement, then deletes the second: the flow must move to the
//! replacement. The outage is the longest run of unanswered probes around each deletion,
//! judged against RA2's five seconds. The positive control of both, before anything is
//! judged: the same prober stream gets replies from a responder on loopback (the probes can
//! be sent and received here) and, for the failover, replies from the Service before the
//! first deletion. The namespace (pods, Service) is deleted whatever happens.

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Pod, Service};
use kube::api::{Api, DeleteParams, PostParams};
use nfvi_harness::{Check, CheckContext, CheckMeta, CheckResult, Outcome, Severity, declare};
use nfvi_reference_model::Area;
use serde_json::json;

use crate::cluster::{self, Cluster};
use crate::probes::{PORT, START_TIMEOUT, pick_nodes, pod, wait_pod};

/// One probe every this long.
pub const INTERVAL: Duration = Duration::from_millis(20);
/// RA2 ra2.ntw.022: the load balancer fails over in under five seconds.
pub const FAILOVER_LIMIT: Duration = Duration::from_secs(5);
/// Longest the stream waits for replies to resume after a deletion.
const RESUME_DEADLINE: Duration = Duration::from_secs(30);

/// The two checks.
pub fn checks() -> Vec<Arc<dyn Check>> {
    let effects = (
        "creates a namespace nfvi-verify-net-lb-* (label app.kubernetes.io/managed-by=nfvi-verify) holding two responder probe pods on two nodes and a Service of type LoadBalancer (UDP kubernetes.lb_port) over them, for which the cluster's load balancer allocates an external address; UDP probes from this machine to that address (only inside network.lab_cidr; loopback only with kubernetes.lb_allow_loopback)",
        "deletes the namespace, and with it the pods and the Service (the load balancer releases the address), whatever the outcome (also on Ctrl-C)",
    );
    vec![
        declare(
            CheckMeta::new(
                "k8s.lb.external",
                Area::K8s,
                "A LoadBalancer Service gets an external address that answers from outside the cluster",
            )
            .subject("in-cluster-probes")
            .covers(Severity::Must, &["ra2.ntw.020"])
            .needs([crate::kubeconfig_need()])
            .side_effects(effects.0, effects.1)
            .timeout(Duration::from_secs(600)),
            |cx| Box::pin(run(cx, false)),
        )
        .into_check(),
        declare(
            CheckMeta::new(
                "k8s.lb.failover",
                Area::K8s,
                "A LoadBalancer Service fails over to another backend in under five seconds when the one serving goes away",
            )
            .subject("in-cluster-probes")
            .covers(Severity::Must, &["ra2.ntw.022"])
            .needs([crate::kubeconfig_need()])
            .side_effects(
                format!("{}; deletes the responder pods one after the other and starts a replacement", effects.0),
                effects.1,
            )
            .timeout(Duration::from_secs(900)),
            |cx| Box::pin(run(cx, true)),
        )
        .into_check(),
    ]
}

/// Whether nfvi-verify may probe `ip` from this machine: inside the lab range; loopback only
/// when `allow_loopback` (`kubernetes.lb_allow_loopback`, for scripted API servers: an API
/// server reporting 127.0.0.1 would otherwise have any local echo pass the check).
pub(crate) fn may_probe(ip: IpAddr, lab_cidr: &str, allow_loopback: bool) -> bool {
    (allow_loopback && ip.is_loopback())
        || lab_cidr
            .parse::<ipnet::IpNet>()
            .is_ok_and(|lab| lab.contains(&ip))
}

async fn run(cx: &CheckContext, failover: bool) -> CheckResult {
    let k = cx.target().config::<crate::KubernetesConfig>();
    if let Some(skip) = k.without_probe_image(
        "the load balancer's backends are probe pods, which need an image with nfvi-verify on PATH",
    ) {
        return Ok(skip);
    }
    let c = cluster::for_check(cx).await?;
    let Some((a, b)) = pick_nodes(&c.nodes().await?) else {
        return Ok(Outcome::not_applicable(
            "fewer than two Ready, schedulable nodes: no second backend to fail over to",
        ));
    };
    let ns = format!("nfvi-verify-net-lb-{}", crate::upstream::short_id());
    let evidence = |o: Outcome| {
        o.with_property("API server", &c.server)
            .with_property("namespace", &ns)
            .with_property(
                "nodes",
                format!("{a} (responder-same), {b} (responder-other)"),
            )
    };
    exercise(cx, &c, &ns, (&a, &b), failover)
        .await
        .map(evidence)
        .map_err(|e| evidence(e.0).into())
}

fn responder(name: &str, node: &str, image: &str) -> Pod {
    let mut p = pod(
        name,
        node,
        image,
        vec![
            "probe".into(),
            "serve".into(),
            "--bind".into(),
            format!("0.0.0.0:{PORT}"),
        ],
        "Always",
        &[],
    );
    if let Some(l) = p.metadata.labels.as_mut() {
        l.insert("nfvi-verify/lb-backend".into(), "true".into());
    }
    p
}

async fn exercise(
    cx: &CheckContext,
    c: &Arc<Cluster>,
    ns: &str,
    (a, b): (&str, &str),
    failover: bool,
) -> CheckResult {
    let k = cx.target().config::<crate::KubernetesConfig>();
    let lab = cx.target().network.lab_cidr.clone();
    // The positive control of the prober itself, before anything is created.
    control_on_loopback().map_err(|e| format!("positive control: {e}"))?;
    crate::upstream::pod::namespace(cx, c, ns, false).await?;
    let image = k.probe_image.as_deref().unwrap_or_default();
    let pods: Api<Pod> = Api::namespaced(c.client().clone(), ns);
    for (name, node) in [("responder-same", a), ("responder-other", b)] {
        pods.create(&PostParams::default(), &responder(name, node, image))
            .await
            .map_err(|e| c.explain(&format!("create pod {ns}/{name}"), &e))?;
    }
    for name in ["responder-same", "responder-other"] {
        wait_pod(&pods, c, name, false, START_TIMEOUT).await?;
    }
    let svc: Service = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "nfvi-verify-lb", "labels": crate::clean::labels()},
        "spec": {
            "type": "LoadBalancer",
            "selector": {"nfvi-verify/lb-backend": "true"},
            "ports": [{"name": "echo", "protocol": "UDP", "port": k.lb_port, "targetPort": PORT}]
        }
    }))
    .map_err(|e| format!("the Service manifest: {e}"))?;
    let services: Api<Service> = Api::namespaced(c.client().clone(), ns);
    services
        .create(&PostParams::default(), &svc)
        .await
        .map_err(|e| c.explain(&format!("create service {ns}/nfvi-verify-lb"), &e))?;
    let deadline = Duration::from_secs(k.lb_timeout_secs);
    let started = Instant::now();
    let (ip, port) = loop {
        let s = services
            .get("nfvi-verify-lb")
            .await
            .map_err(|e| c.explain(&format!("get service {ns}/nfvi-verify-lb"), &e))?;
        let s_ports = s
            .spec
            .as_ref()
            .and_then(|sp| sp.ports.as_ref())
            .and_then(|p| p.first())
            .and_then(|p| u16::try_from(p.port).ok());
        let ingress = s
            .status
            .and_then(|s| s.load_balancer)
            .and_then(|l| l.ingress)
            .unwrap_or_default();
        if let Some(ip) = ingress.iter().find_map(|i| i.ip.clone()) {
            // The port as the server stored the Service (the one asked for).
            let port = s_ports.unwrap_or(k.lb_port);
            break (ip, port);
        }
        if let Some(host) = ingress.iter().find_map(|i| i.hostname.clone()) {
            return Err(format!(
                "the load balancer gave a hostname ({host}) and no address: nfvi-verify probes only addresses it can check against network.lab_cidr"
            )
            .into());
        }
        if started.elapsed() >= deadline {
            // RA2 requires LoadBalancer Services to be served: none served is a failure.
            return Ok(no_address(&format!("{ns}/nfvi-verify-lb"), deadline));
        }
        crate::upstream::pod::stopped_or_sleep(cx, "k8s.lb (waiting for an external address)")
            .await?;
    };
    let addr: IpAddr = ip
        .parse()
        .map_err(|_| format!("the load balancer's address {ip:?} is not an IP address"))?;
    if !may_probe(addr, &lab, k.lb_allow_loopback) {
        let why = if addr.is_loopback() {
            format!(
                "the load balancer's address {addr} is loopback: probing it would judge a port of this machine, not the cluster (kubernetes.lb_allow_loopback is for tests against a scripted API server only)"
            )
        } else {
            format!(
                "the load balancer's address {addr} lies outside network.lab_cidr ({lab}): nfvi-verify probes only lab addresses; widen network.lab_cidr to the load balancer's pool to test it"
            )
        };
        return Err(why.into());
    }
    let peer = SocketAddr::new(addr, port);
    let stream = Stream::start(peer).map_err(|e| format!("probe {peer}: {e}"))?;
    // Replies before anything else happens.
    let warm = stream
        .wait_reply_after(Duration::ZERO, Duration::from_secs(10))
        .await;
    if !failover {
        // A couple of seconds of probes: the share answered goes into the evidence.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let o = external(&stream.stop(), peer);
        return Ok(o.with_property("external address", peer.to_string()));
    }
    if warm.is_none() {
        let probes = stream.stop();
        if let Some(e) = not_sent(&probes) {
            return Ok(e);
        }
        return Err(format!(
            "the Service's external address {peer} never answered, so failover could not be measured (k8s.lb.external judges reachability)"
        )
        .into());
    }
    let mut deletions = Vec::new();
    for (gone, replacement) in [
        ("responder-same", Some(("responder-same-2", a))),
        ("responder-other", None),
    ] {
        let at = stream.now();
        pods.delete(
            gone,
            &DeleteParams {
                grace_period_seconds: Some(0),
                ..DeleteParams::default()
            },
        )
        .await
        .map_err(|e| c.explain(&format!("delete pod {ns}/{gone}"), &e))?;
        deletions.push((gone, at));
        // Long enough after the deletion to see an outage of the limit's length that starts
        // once the pod is really gone (a second or so after the API call).
        stream
            .wait_reply_after(
                at + FAILOVER_LIMIT + Duration::from_secs(1),
                RESUME_DEADLINE,
            )
            .await;
        if let Some((name, node)) = replacement {
            pods.create(&PostParams::default(), &responder(name, node, image))
                .await
                .map_err(|e| c.explain(&format!("create pod {ns}/{name}"), &e))?;
            wait_pod(&pods, c, name, false, START_TIMEOUT).await?;
            // Its endpoint is programmed; give the load balancer a moment as well.
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    }
    let probes = stream.stop();
    if let Some(e) = not_sent(&probes) {
        return Ok(e.with_property("external address", peer.to_string()));
    }
    let at: Vec<Duration> = deletions.iter().map(|(_, t)| *t).collect();
    Ok(failover_judge(&probes, &at, INTERVAL).with_property("external address", peer.to_string()))
}

/// The prober on loopback: the prober crate's echo responder and the same stream.
fn control_on_loopback() -> Result<(), String> {
    let sock = UdpSocket::bind("127.0.0.1:0").map_err(|e| format!("bind 127.0.0.1: {e}"))?;
    let addr = sock.local_addr().map_err(|e| e.to_string())?;
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let responder = std::thread::spawn(move || nfvi_prober::probe::serve(&sock, &flag, false));
    let stream = Stream::start(addr)?;
    let until = Instant::now() + Duration::from_secs(2);
    while Instant::now() < until && !stream.answered() {
        std::thread::sleep(INTERVAL);
    }
    let probes = stream.stop();
    stop.store(true, Ordering::Relaxed);
    let served = responder
        .join()
        .map_err(|_| "the loopback responder panicked".to_owned())?;
    if let Some(e) = not_sent(&probes) {
        return Err(e.message);
    }
    if probes.iter().any(|p| p.1.answered()) {
        Ok(())
    } else {
        Err(format!(
            "no reply from the prober's own responder on {addr} within 2 s ({} probes sent, {served:?} echoed): probes cannot be sent and received on this machine",
            probes.len()
        ))
    }
}

/// What became of one probe.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Probe {
    /// Answered after this round trip.
    Answered(Duration),
    /// Sent; no answer (yet).
    Silent,
    /// The socket refused to send it (no route to the address, for one): nothing was
    /// observed, so it is never counted as unanswered.
    NotSent(String),
}

impl Probe {
    fn answered(&self) -> bool {
        matches!(self, Probe::Answered(_))
    }

    /// What a send's result makes of a probe to `peer`. ECONNREFUSED reports the ICMP port
    /// unreachable an earlier probe drew: the address answered that nothing listens there,
    /// which is the Service's silence, not the prober's fault.
    fn of_send(r: std::io::Result<usize>, peer: SocketAddr) -> Self {
        match r {
            Ok(_) => Probe::Silent,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => Probe::Silent,
            Err(e) => Probe::NotSent(format!("could not send to {peer}: {e}")),
        }
    }
}

/// Each probe's send time since the start of its stream, and what became of it.
type Timeline = Vec<(Duration, Probe)>;

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
/// time of each since the start, and its RTT when answered.
struct Stream {
    start: Instant,
    stop: Arc<AtomicBool>,
    seen: Arc<std::sync::Mutex<Timeline>>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl Stream {
    fn start(peer: SocketAddr) -> Result<Self, String> {
        let bind: SocketAddr = if peer.is_ipv4() {
            "0.0.0.0:0"
        } else {
            "[::]:0"
        }
        .parse()
        .expect("an address");
        let sock = UdpSocket::bind(bind).map_err(|e| format!("bind a UDP socket: {e}"))?;
        sock.connect(peer)
            .map_err(|e| format!("connect to {peer}: {e}"))?;
        sock.set_read_timeout(Some(Duration::from_millis(2)))
            .map_err(|e| e.to_string())?;
        let start = Instant::now();
        let stop = Arc::new(AtomicBool::new(false));
        let seen: Arc<std::sync::Mutex<Timeline>> = Arc::default();
        let (flag, log) = (stop.clone(), seen.clone());
        let handle = std::thread::spawn(move || {
            let mut buf = [0u8; 64];
            let mut seq: u64 = 0;
            while !flag.load(Ordering::Relaxed) {
                let sent = start.elapsed();
                let probe = Probe::of_send(sock.send(&seq.to_be_bytes()), peer);
                if let Ok(mut l) = log.lock() {
                    l.push((sent, probe));
                }
                seq += 1;
                let next = start + sent + INTERVAL;
                while Instant::now() < next {
                    if let Ok(n) = sock.recv(&mut buf)
                        && n >= 8
                    {
                        let mut b = [0u8; 8];
                        b.copy_from_slice(&buf[..8]);
                        let s = u64::from_be_bytes(b) as usize;
                        if let Ok(mut l) = log.lock()
                            && let Some(entry) = l.get_mut(s)
                            && entry.1 == Probe::Silent
                        {
                            entry.1 = Probe::Answered(start.elapsed().saturating_sub(entry.0));
                        }
                    }
                }
            }
        });
        Ok(Self {
            start,
            stop,
            seen,
            handle: Some(handle),
        })
    }

    fn now(&self) -> Duration {
        self.start.elapsed()
    }

    fn answered(&self) -> bool {
        self.seen
            .lock()
            .is_ok_and(|l| l.iter().any(|p| p.1.answered()))
    }

    /// Waits until a probe sent after `after` is answered, at most `deadline`; returns when.
    async fn wait_reply_after(&self, after: Duration, deadline: Duration) -> Option<Duration> {
        let until = Instant::now() + deadline;
        while Instant::now() < until {
            let hit = self.seen.lock().ok().and_then(|l| {
                l.iter()
                    .find(|p| p.0 >= after && p.1.answered())
                    .map(|p| p.0)
            });
            if hit.is_some() {
                return hit;
            }
            tokio::time::sleep(INTERVAL).await;
        }
        None
    }

    fn stop(mut self) -> Timeline {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
        self.seen.lock().map(|l| l.clone()).unwrap_or_default()
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use nfvi_harness::Status;

    /// Probes every 20 ms over `secs`, unanswered inside the `silent` windows (ms).
    fn timeline(secs: u64, silent: &[(u64, u64)]) -> Timeline {
        (0..secs * 50)
            .map(|i| {
                let ms = i * 20;
                let lost = silent.iter().any(|(a, b)| ms >= *a && ms < *b);
                (
                    Duration::from_millis(ms),
                    if lost {
                        Probe::Silent
                    } else {
                        Probe::Answered(Duration::from_micros(300))
                    },
                )
            })
            .collect()
    }

    #[test]
    fn failover_is_the_longest_silence_around_each_deletion() {
        let ms = Duration::from_millis;
        let at = [ms(2000), ms(8000)];
        #[rustfmt::skip]
        let rows: Vec<(&str, Timeline, Vec<Duration>, Status, &str)> = vec![
            ("no silence", timeline(12, &[]), at.to_vec(), Status::Passed, "0.02 s at worst"),
            ("1.5 s then 0.4 s", timeline(12, &[(2100, 3600), (8000, 8400)]), at.to_vec(), Status::Passed, "1.52 s at worst"),
            ("6 s silence", timeline(16, &[(8000, 14000)]), at.to_vec(), Status::Failed, "took 6.02 s"),
            ("never again", timeline(12, &[(8000, 12000)]), at.to_vec(), Status::Failed, "did not answer again"),
            ("silent from the start", timeline(12, &[(0, 12000)]), at.to_vec(), Status::Error, "positive control"),
            ("no deletion", timeline(2, &[]), vec![], Status::Error, "no backend"),
        ];
        for (name, probes, dels, status, needle) in rows {
            let o = failover_judge(&probes, &dels, INTERVAL);
            assert_eq!(o.status, status, "{name}: {}", o.message);
            assert!(o.message.contains(needle), "{name}: {}", o.message);
        }
    }

    #[test]
    fn the_external_address_is_judged_on_answers_and_only_lab_addresses_are_probed() {
        let peer: SocketAddr = "198.18.100.10:7777".parse().unwrap();
        assert_eq!(external(&timeline(1, &[]), peer).status, Status::Passed);
        let o = external(&timeline(1, &[(0, 1000)]), peer);
        assert_eq!(o.status, Status::Failed);
        assert!(
            o.message.contains("did not answer any of 50 probes"),
            "{}",
            o.message
        );
        assert_eq!(external(&[], peer).status, Status::Error);
        let lab = "198.18.0.0/15";
        // (address, loopback allowed, may probe)
        for (ip, allow, ok) in [
            ("198.18.100.10", false, true),
            ("198.19.255.1", false, true),
            // Loopback only for tests against a scripted API server.
            ("127.0.0.1", false, false),
            ("::1", false, false),
            ("127.0.0.1", true, true),
            ("::1", true, true),
            ("10.0.0.1", true, false),
            ("8.8.8.8", false, false),
            ("198.20.0.1", true, false),
        ] {
            assert_eq!(
                may_probe(ip.parse().unwrap(), lab, allow),
                ok,
                "{ip} allow_loopback={allow}"
            );
        }
        assert!(!may_probe("10.0.0.1".parse().unwrap(), "garbage", true));
    }

    /// Three answers per probe: answered, silent, not sent. A probe not sent is an error of
    /// both judges, never a failure.
    #[test]
    fn a_probe_that_could_not_be_sent_is_an_error_never_a_failure() {
        let peer: SocketAddr = "198.18.100.10:7777".parse().unwrap();
        let unreachable = std::io::Error::from_raw_os_error(101); // ENETUNREACH
        let refused = std::io::Error::from_raw_os_error(111); // ECONNREFUSED
        assert_eq!(Probe::of_send(Ok(8), peer), Probe::Silent);
        assert_eq!(Probe::of_send(Err(refused), peer), Probe::Silent);
        let p = Probe::of_send(Err(unreachable), peer);
        let Probe::NotSent(why) = &p else {
            panic!("{p:?}")
        };
        assert!(
            why.starts_with("could not send to 198.18.100.10:7777: Network is unreachable"),
            "{why}"
        );
        let mut unsent = timeline(1, &[(0, 1000)]);
        for e in unsent.iter_mut().skip(10) {
            e.1 = p.clone();
        }
        type Judge = fn(&Timeline) -> Outcome;
        let judges: [(&str, Judge); 2] = [
            ("external", |t| {
                external(t, "198.18.100.10:7777".parse().unwrap())
            }),
            ("failover", |t| {
                failover_judge(t, &[Duration::from_millis(200)], INTERVAL)
            }),
        ];
        for (name, judge) in judges {
            let o = judge(&unsent);
            assert_eq!(o.status, Status::Error, "{name}: {}", o.message);
            assert!(
                o.message.contains("could not send to 198.18.100.10:7777")
                    && o.message.contains("(40 of 50 probes not sent)"),
                "{name}: {}",
                o.message
            );
        }
        // Silent but sent: the external judge fails.
        assert_eq!(
            external(&timeline(1, &[(0, 1000)]), peer).status,
            Status::Failed
        );
    }

    #[test]
    fn no_external_address_is_a_failure() {
        let o = no_address("ns/nfvi-verify-lb", Duration::from_secs(120));
        assert_eq!(o.status, Status::Failed, "{}", o.message);
        assert!(
            o.message.starts_with("no load balancer assigned an external address to the LoadBalancer Service ns/nfvi-verify-lb within 120 s"),
            "{}",
            o.message
        );
        assert!(o.message.ends_with("nothing serves LoadBalancer Services"));
    }

    /// The stream and the prober's responder, on loopback: the positive control works.
    #[test]
    fn the_probe_stream_gets_answers_from_the_probers_responder_on_loopback() {
        control_on_loopback().unwrap();
    }
}
