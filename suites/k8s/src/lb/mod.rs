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

mod judge;
mod stream;
#[cfg(test)]
mod tests;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Pod, Service};
use kube::api::{Api, DeleteParams, PostParams};
use nfvi_harness::{Check, CheckContext, CheckMeta, CheckResult, Outcome, Severity, declare};
use nfvi_reference_model::Area;
use serde_json::json;

use crate::cluster::{self, Cluster};
use crate::probe_ns::ProbeNs;
use crate::probes::{PORT, pick_nodes, pod, serve_args};

pub(crate) use judge::{external, failover_judge, no_address, not_sent};
pub(crate) use stream::Probe;
use stream::{Stream, control_on_loopback};

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
    let mut p = pod(name, node, image, serve_args(), "Always", &[]);
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
    let space = ProbeNs::create(cx, c, ns).await?;
    let image = k.probe_image.as_deref().unwrap_or_default();
    for (name, node) in [("responder-same", a), ("responder-other", b)] {
        space.create_pod(&responder(name, node, image)).await?;
    }
    for name in ["responder-same", "responder-other"] {
        space.running(name).await?;
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
    let services: Api<Service> = space.api();
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
        space
            .pods()
            .delete(
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
            space.start(&responder(name, node, image)).await?;
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
