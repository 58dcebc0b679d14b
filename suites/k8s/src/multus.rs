//! A Multus secondary network with cluster-wide IPAM, exercised end to end: in a namespace of
//! its own (`nfvi-verify-net-multus-*`), the check creates a NetworkAttachmentDefinition
//! (macvlan, whereabouts IPAM over `kubernetes.multus_range`), a responder probe pod on one
//! node and a client probe pod on another, both asking for it through the
//! `k8s.v1.cni.cncf.io/networks` annotation. It reads Multus' network-status annotation of
//! both, then the client's probes: first to the responder's default-network address (the
//! positive control), then to its secondary address. whereabouts' IPPool of the run (in
//! whereabouts' namespace, named after the run's `network_name`) is found and deleted by
//! `nfvi-verify clean` once the run is gone ([`POOL_PREFIX`]). The namespace, and with it the
//! attachment and the pods, is deleted whatever happens (registered before it exists).

use std::sync::Arc;
use std::time::Duration;

use ipnet::Ipv4Net;
use nfvi_harness::{
    Check, CheckContext, CheckMeta, CheckResult, Outcome, Severity, SkipKind, SkipReason, declare,
};
use nfvi_prober::probe::PairedBlocks;
use nfvi_reference_model::Area;
use nfvi_suite_datapath::paired::parse_paired;
use serde_json::json;

use crate::cluster::{self, Cluster};
use crate::probe_ns::ProbeNs;
use crate::probes::{PORT, pick_nodes, pod, secondary_ip, serve_args};

/// The CRD a Multus installation serves.
pub const NAD_CRD: &str = "network-attachment-definitions.k8s.cni.cncf.io";
/// The attachment the check creates (in its own namespace).
pub const NAD_NAME: &str = "nfvi-verify-secondary";

/// The check.
pub fn checks() -> Vec<Arc<dyn Check>> {
    vec![declare(
        CheckMeta::new(
            "k8s.multus.secondary-network",
            Area::K8s,
            "Pods get a secondary interface through Multus, addressed by cluster-wide IPAM (whereabouts), and reach each other over it",
        )
        .subject("in-cluster-probes")
        // Requested through an annotation (ra2.ntw.004); a second network next to the default
        // one (inf.ntw.06) through the multiplexer, which calls the macvlan and whereabouts
        // plugins through CNI (ra2.ntw.006, ra2.ntw.007); addresses from one cluster-wide
        // IPAM, distinct across nodes (ra2.ntw.015, inf.ntw.10).
        .covers(
            Severity::Must,
            &["ra2.ntw.004", "inf.ntw.06", "ra2.ntw.006", "ra2.ntw.007", "ra2.ntw.015", "inf.ntw.10"],
        )
        .needs([crate::kubeconfig_need()])
        .side_effects(
            "creates a namespace nfvi-verify-net-multus-* (label app.kubernetes.io/managed-by=nfvi-verify) holding a NetworkAttachmentDefinition nfvi-verify-secondary (macvlan on each node's kubernetes.multus_master or default-route interface, whereabouts IPAM over kubernetes.multus_range) and two probe pods attached to it on two nodes; UDP probes between them",
            "deletes the namespace, and with it the attachment and the pods, whatever the outcome (also on Ctrl-C); whereabouts keeps its IPPool of the run (nfvi-verify-multus-<host>-p<run>-*, in whereabouts' namespace, emptied when the pods go), which `nfvi-verify clean` and the next run's start remove once this run is gone",
        )
        .timeout(Duration::from_secs(600)),
        |cx| Box::pin(run(cx)),
    )
    .into_check()]
}

/// The whereabouts range: `multus_range`, else the last /24 of `lab_cidr`; it must be an
/// IPv4 network inside `lab_cidr`.
pub(crate) fn range(configured: Option<&str>, lab_cidr: &str) -> Result<Ipv4Net, String> {
    let lab: Ipv4Net = lab_cidr
        .parse()
        .map_err(|_| format!("network.lab_cidr {lab_cidr:?} is not an IPv4 network"))?;
    let net = match configured {
        Some(s) => s.trim().parse::<Ipv4Net>().map_err(|_| {
            format!(
                "kubernetes.multus_range = {s:?} is not an IPv4 network such as \"198.18.60.0/24\""
            )
        })?,
        None => {
            let last = u32::from(lab.broadcast());
            let len = lab.prefix_len().max(24);
            Ipv4Net::new(std::net::Ipv4Addr::from(last), len)
                .map_err(|e| e.to_string())?
                .trunc()
        }
    };
    if !lab.contains(&net) {
        return Err(format!(
            "kubernetes.multus_range {net} is not inside network.lab_cidr {lab}: nfvi-verify hands out lab addresses only"
        ));
    }
    Ok(net)
}

/// The start of the `network_name` of the whereabouts IPAM the check configures. whereabouts
/// names the IPPool it creates (in its own namespace, without our labels) after it:
/// `<network_name>-<range with . and / as ->` (`IPPoolName` in whereabouts'
/// pkg/storage/kubernetes/ipam.go), so `nfvi-verify clean` finds the pools of runs that are
/// gone by name: [`POOL_PREFIX`], this host's marker, `-p`, the run's PID.
pub(crate) const POOL_PREFIX: &str = "nfvi-verify-multus-";

/// This host's owner marker ([`nfvi_harness::leftover::owner_host`]) as it can stand in an
/// object name: lower case, `_` as `-`.
pub(crate) fn pool_host() -> String {
    nfvi_harness::leftover::owner_host()
        .to_ascii_lowercase()
        .replace('_', "-")
}

/// The whereabouts `network_name` of one run: the owner (host and PID) and the run's id.
pub(crate) fn network_name(run: &str) -> String {
    format!("{POOL_PREFIX}{}-p{run}", pool_host())
}

/// The PID of the run that made the IPPool `name` on this host, if the name is one the check
/// gives ([`network_name`]).
pub(crate) fn pool_owner(name: &str) -> Option<u32> {
    let rest = name.strip_prefix(&format!("{POOL_PREFIX}{}-p", pool_host()))?;
    let pid: u32 = rest.split('-').next()?.parse().ok()?;
    (pid != 0).then_some(pid)
}

/// The NetworkAttachmentDefinition: macvlan (bridge mode) with whereabouts over `range`,
/// its pool named after `network_name`.
pub(crate) fn nad(range: Ipv4Net, master: Option<&str>, network_name: &str) -> serde_json::Value {
    let mut cni = json!({
        "cniVersion": "0.3.1",
        "name": NAD_NAME,
        "type": "macvlan",
        "mode": "bridge",
        "ipam": {"type": "whereabouts", "range": range.to_string(), "network_name": network_name}
    });
    if let Some(m) = master {
        cni["master"] = json!(m);
    }
    json!({
        "apiVersion": "k8s.cni.cncf.io/v1",
        "kind": "NetworkAttachmentDefinition",
        "metadata": {"name": NAD_NAME, "labels": crate::clean::labels()},
        "spec": {"config": cni.to_string()}
    })
}

async fn run(cx: &CheckContext) -> CheckResult {
    let k = cx.target().config::<crate::KubernetesConfig>();
    if let Some(skip) = k.without_probe_image("the secondary network is exercised by probe pods, which need an image with nfvi-verify on PATH") {
        return Ok(skip);
    }
    let c = cluster::for_check(cx).await?;
    let crds = c.crds().await?;
    if !crds
        .iter()
        .any(|d| d.metadata.name.as_deref() == Some(NAD_CRD))
    {
        return Ok(Outcome::skip(SkipReason {
            kind: SkipKind::NotApplicable,
            message: format!(
                "the {NAD_CRD} CRD is not installed: the cluster has no Multus secondary networks to test"
            ),
        }));
    }
    let range = range(k.multus_range.as_deref(), &cx.target().network.lab_cidr)?;
    let Some((a, b)) = pick_nodes(&c.nodes().await?) else {
        return Ok(Outcome::not_applicable(
            "fewer than two Ready, schedulable nodes: no cross-node secondary path to test",
        ));
    };
    let run_id = crate::upstream::short_id();
    let ns = format!("nfvi-verify-net-multus-{run_id}");
    let o = exercise(cx, &c, &ns, range, (&a, &b), &network_name(&run_id)).await;
    let evidence = |o: Outcome| {
        o.with_property("API server", &c.server)
            .with_property("namespace", &ns)
            .with_property("range", range.to_string())
            .with_property("nodes", format!("{a} (client), {b} (responder)"))
    };
    o.map(evidence).map_err(|e| evidence(e.0).into())
}

async fn exercise(
    cx: &CheckContext,
    c: &Arc<Cluster>,
    ns: &str,
    range: Ipv4Net,
    (a, b): (&str, &str),
    network_name: &str,
) -> CheckResult {
    let k = cx.target().config::<crate::KubernetesConfig>();
    let space = ProbeNs::create(cx, c, ns).await?;
    let path = format!("/apis/k8s.cni.cncf.io/v1/namespaces/{ns}/network-attachment-definitions");
    let body = serde_json::to_vec(&nad(range, k.multus_master.as_deref(), network_name))
        .map_err(|e| format!("encode the NetworkAttachmentDefinition: {e}"))?;
    let req = http::Request::post(&path)
        .header("Content-Type", "application/json")
        .body(body)
        .map_err(|e| format!("build POST {path}: {e}"))?;
    let _: serde_json::Value = c.client().request(req).await.map_err(|e| {
        c.explain(
            &format!("create network-attachment-definition {ns}/{NAD_NAME}"),
            &e,
        )
    })?;
    let image = k.probe_image.as_deref().unwrap_or_default();
    let nets = [NAD_NAME.to_owned()];
    let serve = pod("responder-other", b, image, serve_args(), "Always", &nets);
    let responder = space.start(&serve).await?;
    let default_ip = responder
        .status
        .as_ref()
        .and_then(|s| s.pod_ip.clone())
        .unwrap_or_default();
    let responder_ip = secondary_ip(&responder, NAD_NAME);
    let Ok(target) = responder_ip.clone() else {
        return Ok(judge(
            range,
            responder_ip,
            Err("not started".into()),
            &Probe::NotRun,
        ));
    };
    let client = pod(
        "client",
        a,
        image,
        vec![
            "probe".into(),
            "compare".into(),
            format!("{default_ip}:{PORT}"),
            format!("{target}:{PORT}"),
            "--rounds".into(),
            "2".into(),
            "--block".into(),
            "100".into(),
            "--format".into(),
            "json".into(),
        ],
        "Never",
        &nets,
    );
    space.create_pod(&client).await?;
    let (done, logs) = space.finished("client").await?;
    let succeeded = done.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Succeeded");
    let probe = if succeeded {
        match parse_paired(&logs) {
            Ok(p) => Probe::Paired(p),
            Err(e) => return Err(format!("the probe client's report: {e}").into()),
        }
    } else {
        Probe::Failed {
            log: logs,
            default_ip,
        }
    };
    Ok(judge(
        range,
        responder_ip,
        secondary_ip(&done, NAD_NAME),
        &probe,
    ))
}

/// What the client pod's probes showed.
#[derive(Debug)]
pub(crate) enum Probe {
    /// Not run (a pod had no secondary address to probe).
    NotRun,
    /// Both paths measured: the default network (first), the secondary one (second).
    Paired(PairedBlocks),
    /// The client failed: its log, and the responder's default-network address (the
    /// positive control's target).
    Failed { log: String, default_ip: String },
}

/// Judges the secondary network: both pods have an address on it, inside `range`, distinct;
/// the client reached the responder over it. A probe failure counts against the secondary
/// network only when the default-network path (probed first, the positive control) worked.
pub(crate) fn judge(
    range: Ipv4Net,
    responder: Result<String, String>,
    client: Result<String, String>,
    probe: &Probe,
) -> Outcome {
    let mut wrong = Vec::new();
    let mut addrs = Vec::new();
    for (who, r) in [("responder", &responder), ("client", &client)] {
        match r {
            Ok(ip) => match ip.parse::<std::net::Ipv4Addr>() {
                Ok(a) if range.contains(&a) => addrs.push(a),
                Ok(_) => wrong.push(format!(
                    "the {who}'s secondary address {ip} is not from the cluster-wide range {range}"
                )),
                Err(_) => wrong.push(format!(
                    "the {who}'s secondary address {ip:?} is not an IPv4 address"
                )),
            },
            Err(why) if matches!(probe, Probe::NotRun) && who == "client" => {
                let _ = why;
            }
            Err(why) => wrong.push(format!("the {who} got no secondary interface: {why}")),
        }
    }
    if addrs.len() == 2 && addrs[0] == addrs[1] {
        wrong.push(format!(
            "both pods got {}: the IPAM is not coordinated across nodes",
            addrs[0]
        ));
    }
    if !wrong.is_empty() {
        return Outcome::fail(wrong.join("; "));
    }
    let shown = |r: &Result<String, String>| r.clone().unwrap_or_default();
    let o = match probe {
        Probe::NotRun => Outcome::error("the probes did not run"),
        Probe::Paired(p) => {
            let answered = |lost: u64| lost < p.block.saturating_mul(p.first_p50_us.len() as u64);
            if p.first_p50_us.is_empty() || !answered(p.lost[0]) {
                Outcome::error(
                    "the probe client reported no reply over the default network (the positive control): the probe path did not work",
                )
            } else if p.second_p50_us.is_empty() || !answered(p.lost[1]) {
                Outcome::fail("the client's probes over the secondary network got no reply")
            } else {
                let med = nfvi_prober::stats::median(&p.second_p50_us);
                Outcome::pass(format!(
                    "both pods got a secondary interface from the cluster-wide range {range} ({} and {}, distinct) and reach each other over it (median RTT {med:.1} µs)",
                    shown(&responder),
                    shown(&client)
                ))
                .with_metric("secondary RTT p50", med, "us")
            }
        }
        Probe::Failed { log, default_ip } => {
            let log_short = nfvi_harness::truncate_chars(log.trim(), 300);
            let target = shown(&responder);
            if !default_ip.is_empty() && log.contains(&format!("{default_ip}:")) {
                Outcome::error(format!(
                    "the probe client could not reach the responder over the default network either (the positive control), so the secondary network was not judged: {log_short}"
                ))
            } else if !target.is_empty() && log.contains(&format!("{target}:")) {
                Outcome::fail(format!(
                    "the client cannot reach the responder over the secondary network ({target}), while the default network answered: {log_short}"
                ))
            } else {
                Outcome::error(format!("the probe client failed: {log_short}"))
            }
        }
    };
    o.with_property("responder secondary address", shown(&responder))
        .with_property("client secondary address", shown(&client))
}

#[cfg(test)]
mod tests {
    use super::*;
    use nfvi_harness::Status;

    fn paired(second_lost: u64) -> PairedBlocks {
        serde_json::from_value(json!({
            "block": 100, "first": "10.244.2.7:7777", "second": "198.18.60.7:7777",
            "first_p50_us": [40.0, 41.0], "second_p50_us": [30.0, 31.0], "lost": [0, second_lost]
        }))
        .unwrap()
    }

    #[test]
    fn the_range_is_the_configured_one_or_the_last_24_of_the_lab_inside_it() {
        let lab = "198.18.0.0/15";
        assert_eq!(range(None, lab).unwrap().to_string(), "198.19.255.0/24");
        assert_eq!(
            range(Some("198.18.60.0/24"), lab).unwrap().to_string(),
            "198.18.60.0/24"
        );
        assert_eq!(
            range(None, "198.18.7.0/28").unwrap().to_string(),
            "198.18.7.0/28"
        );
        assert!(
            range(Some("10.0.0.0/24"), lab)
                .unwrap_err()
                .contains("not inside")
        );
        assert!(
            range(Some("<x>"), lab)
                .unwrap_err()
                .contains("not an IPv4 network")
        );
        let name = network_name("4242-17-0");
        assert_eq!(pool_owner(&format!("{name}-198-18-60-0-24")), Some(4242));
        assert_eq!(
            pool_owner("nfvi-verify-multus-elsewhere-p4242-17-0-198-18-60-0-24"),
            None
        );
        assert_eq!(pool_owner("198-18-60-0-24"), None);
        assert_eq!(
            pool_owner(&format!("{POOL_PREFIX}{}-p0-1-0", pool_host())),
            None
        );
        assert!(
            name.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.'),
            "{name}"
        );
        let nad = nad("198.18.60.0/24".parse().unwrap(), Some("ens2f0"), &name);
        let cfg: serde_json::Value =
            serde_json::from_str(nad["spec"]["config"].as_str().unwrap()).unwrap();
        assert_eq!(cfg["ipam"]["type"], "whereabouts");
        assert_eq!(cfg["ipam"]["range"], "198.18.60.0/24");
        assert_eq!(cfg["master"], "ens2f0");
        assert_eq!(cfg["ipam"]["network_name"], name.as_str());
    }

    #[test]
    fn secondary_networks_are_judged_on_addresses_and_reachability() {
        let r: Ipv4Net = "198.18.60.0/24".parse().unwrap();
        let ok = |s: &str| Ok::<String, String>(s.to_owned());
        let failed = |log: &str| Probe::Failed {
            log: log.to_owned(),
            default_ip: "10.244.2.7".into(),
        };
        type Addr = Result<String, String>;
        #[rustfmt::skip]
        let rows: Vec<(&str, Addr, Addr, Probe, Status, &str)> = vec![
            ("good", ok("198.18.60.7"), ok("198.18.60.5"), Probe::Paired(paired(0)), Status::Passed, "distinct"),
            ("some loss is still reach", ok("198.18.60.7"), ok("198.18.60.5"), Probe::Paired(paired(150)), Status::Passed, "reach each other"),
            ("secondary silent", ok("198.18.60.7"), ok("198.18.60.5"), Probe::Paired(paired(200)), Status::Failed, "got no reply"),
            ("same address twice", ok("198.18.60.7"), ok("198.18.60.7"), Probe::Paired(paired(0)), Status::Failed, "not coordinated"),
            ("outside the range", ok("198.18.61.7"), ok("198.18.60.5"), Probe::Paired(paired(0)), Status::Failed, "not from the cluster-wide range"),
            ("no interface", Err("no network-status".into()), Err("x".into()), Probe::NotRun, Status::Failed, "the responder got no secondary interface"),
            ("hostile address", ok("<b>"), ok("198.18.60.5"), Probe::Paired(paired(0)), Status::Failed, "not an IPv4 address"),
            ("secondary unreachable", ok("198.18.60.7"), ok("198.18.60.5"), failed("error: round 0, peer 198.18.60.7:7777: no reply within 200 ms"), Status::Failed, "while the default network answered"),
            ("control failed", ok("198.18.60.7"), ok("198.18.60.5"), failed("error: round 0, peer 10.244.2.7:7777: no reply within 200 ms"), Status::Error, "positive control"),
            ("client crashed", ok("198.18.60.7"), ok("198.18.60.5"), failed("exec format error"), Status::Error, "probe client failed"),
        ];
        for (name, resp, client, probe, status, needle) in rows {
            let o = judge(r, resp, client, &probe);
            assert_eq!(o.status, status, "{name}: {}", o.message);
            assert!(o.message.contains(needle), "{name}: {}", o.message);
        }
    }
}
