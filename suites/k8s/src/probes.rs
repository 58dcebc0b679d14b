//! In-cluster latency probes: the datapath area's prober run by Kubernetes itself, so a
//! multi-node NFVI needs nothing but a kubeconfig.
//!
//! In a namespace of its own (`nfvi-verify-probe-*`, labelled
//! `app.kubernetes.io/managed-by=nfvi-verify`), the check pins a responder
//! (`nfvi-verify probe serve`) to each of two worker nodes and a client
//! (`nfvi-verify probe compare`) to the first. The client measures the same-node and the
//! cross-node pod-to-pod path in interleaved ABBA blocks over the default pod network; its
//! per-round medians come back through the pod log and go through the datapath area's
//! statistics (Hodges-Lehmann difference with a bootstrap 95% interval). The namespace, and
//! with it everything the check created, is deleted at the end, also on failure or Ctrl-C
//! (the deletion is registered before the namespace is created).

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, Node, Pod};
use kube::api::{Api, DeleteParams, LogParams, PostParams};
use kube::runtime::wait::{self, await_condition};
use kube::runtime::watcher;
use nfvi_harness::{
    Check, CheckContext, CheckError, CheckMeta, CheckResult, Outcome, Severity, declare,
};
use nfvi_prober::probe::PairedBlocks;
use nfvi_reference_model::Area;
use nfvi_suite_datapath::paired::{PairedPaths, judge_paired, parse_paired};
use nfvi_suite_datapath::{DatapathConfig, LatencySla};
use serde_json::json;

use crate::checks::{condition, is_control_plane};
use crate::cluster::{self, Cluster};

/// The label on everything the probes create.
pub const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "nfvi-verify");

/// The UDP port the responders listen on.
pub(crate) const PORT: u16 = 7777;

/// How long pods may take to start (image pull included).
pub(crate) const START_TIMEOUT: Duration = Duration::from_secs(180);

/// The in-cluster probe checks.
pub fn checks() -> Vec<Arc<dyn Check>> {
    vec![
        declare(
            CheckMeta::new(
                "k8s.datapath.pod-latency",
                Area::K8s,
                "Pod-to-pod latency over the default network, same node against cross node, measured by probe pods",
            )
            .subject("in-cluster-probes")
            .covers(Severity::Should, &[])
            .needs([crate::kubeconfig_need()])
            .side_effects(
                "creates a namespace nfvi-verify-probe-* (label app.kubernetes.io/managed-by=nfvi-verify) holding two responder pods pinned to two workers and one client pod; UDP probes between them",
                "deletes the namespace, and with it the pods, whatever the outcome (also on Ctrl-C)",
            )
            .timeout(Duration::from_secs(600)),
            |cx| Box::pin(pod_latency(cx)),
        )
        .into_check(),
    ]
}

/// Measures pod-to-pod latency; the server and the probe image go on every outcome once the
/// cluster is connected, an early one too.
async fn pod_latency(cx: &CheckContext) -> CheckResult {
    let k = cx.target().config::<crate::KubernetesConfig>();
    if let Some(skip) = k.without_probe_image("in-cluster probes need an image with nfvi-verify on PATH (the README shows how to build one)") {
        return Ok(skip);
    }
    let cluster = cluster::for_check(cx).await?;
    let evidence = |o: Outcome| {
        o.with_property("API server", &cluster.server)
            .with_property("probe image", k.probe_image.as_deref().unwrap_or_default())
    };
    measure(&cluster, cx)
        .await
        .map(evidence)
        .map_err(|CheckError(o)| evidence(o).into())
}

/// Two Ready, schedulable workers (control-plane nodes only when there are no workers).
pub(crate) fn pick_nodes(nodes: &[Node]) -> Option<(String, String)> {
    let usable = |cp: bool| -> Vec<String> {
        nodes
            .iter()
            .filter(|n| {
                let ready = condition(n, "Ready").as_deref() == Some("True");
                let schedulable = !n
                    .spec
                    .as_ref()
                    .and_then(|s| s.unschedulable)
                    .unwrap_or(false);
                is_control_plane(n) == cp && ready && schedulable
            })
            .filter_map(|n| n.metadata.name.clone())
            .collect()
    };
    let mut chosen = usable(false);
    if chosen.len() < 2 {
        chosen.extend(usable(true));
    }
    (chosen.len() >= 2).then(|| (chosen[0].clone(), chosen[1].clone()))
}

/// The arguments of a responder probe pod: `nfvi-verify probe serve` on UDP [`PORT`].
pub(crate) fn serve_args() -> Vec<String> {
    vec![
        "probe".into(),
        "serve".into(),
        "--bind".into(),
        format!("0.0.0.0:{PORT}"),
    ]
}

/// Multus' request and report annotations.
pub(crate) const NETWORKS: &str = "k8s.v1.cni.cncf.io/networks";
const NETWORK_STATUS: &str = "k8s.v1.cni.cncf.io/network-status";

pub(crate) fn pod(
    name: &str,
    node: &str,
    image: &str,
    args: Vec<String>,
    restart: &str,
    networks: &[String],
) -> Pod {
    let annotations = if networks.is_empty() {
        json!({})
    } else {
        json!({NETWORKS: networks.join(",")})
    };
    serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {MANAGED_BY.0: MANAGED_BY.1, "app.kubernetes.io/name": "nfvi-verify-probe"}, "annotations": annotations},
        "spec": {
            "nodeName": node,
            "restartPolicy": restart,
            "terminationGracePeriodSeconds": 1,
            "tolerations": [{"operator": "Exists"}],
            "containers": [{
                "name": "probe",
                "image": image,
                "command": ["nfvi-verify"],
                "args": args,
                "resources": {"requests": {"cpu": "100m", "memory": "32Mi"}, "limits": {"memory": "128Mi"}},
                "securityContext": {"allowPrivilegeEscalation": false, "runAsNonRoot": true, "runAsUser": 65534, "capabilities": {"drop": ["ALL"]}}
            }]
        }
    }))
    .expect("the probe pod manifest is a valid Pod")
}

/// Where a probe pod stands: `None` while it is still on its way, `Some(Ok)` once it is
/// Running with an IP (`want_done` false) or has finished (`want_done` true), `Some(Err)`
/// when it cannot get there (an image that does not pull, a crash loop, an early end).
fn settled(p: &Pod, want_done: bool) -> Option<Result<(), String>> {
    let name = p.metadata.name.clone().unwrap_or_default();
    let status = p.status.clone().unwrap_or_default();
    let phase = status.phase.clone().unwrap_or_default();
    let stuck = status
        .container_statuses
        .iter()
        .flatten()
        .filter_map(|s| s.state.as_ref()?.waiting.as_ref())
        .find(|w| {
            matches!(
                w.reason.as_deref(),
                Some(
                    "ErrImagePull"
                        | "ImagePullBackOff"
                        | "InvalidImageName"
                        | "CrashLoopBackOff"
                        | "CreateContainerConfigError"
                )
            )
        });
    if let Some(w) = stuck {
        return Some(Err(format!(
            "probe pod {name} cannot start: {}: {}",
            w.reason.clone().unwrap_or_default(),
            w.message.clone().unwrap_or_default()
        )));
    }
    match (want_done, phase.as_str()) {
        (false, "Running") if status.pod_ip.is_some() => Some(Ok(())),
        (true, "Succeeded" | "Failed") => Some(Ok(())),
        (false, "Succeeded" | "Failed") => Some(Err(format!(
            "probe pod {name} ended ({phase}) before it was used"
        ))),
        _ => None,
    }
}

/// Waits with kube's `await_condition` (a watch on the one pod) until [`settled`] says the
/// pod got where it should or cannot, or `deadline` passes.
pub(crate) async fn wait_pod(
    pods: &Api<Pod>,
    c: &Cluster,
    name: &str,
    want_done: bool,
    deadline: Duration,
) -> Result<Pod, Outcome> {
    let cond = move |p: Option<&Pod>| p.is_some_and(|p| settled(p, want_done).is_some());
    match tokio::time::timeout(deadline, await_condition(pods.clone(), name, cond)).await {
        Ok(Ok(Some(p))) => match settled(&p, want_done) {
            Some(Err(why)) => Err(Outcome::error(why)),
            _ => Ok(p),
        },
        Ok(Ok(None)) => Err(Outcome::error(format!(
            "probe pod {name} was deleted while the check waited for it"
        ))),
        Ok(Err(wait::Error::ProbeFailed(e))) => Err(match e {
            watcher::Error::InitialListFailed(k)
            | watcher::Error::WatchStartFailed(k)
            | watcher::Error::WatchFailed(k) => {
                c.explain(&format!("watch pod {name}"), &k).outcome()
            }
            other => Outcome::error(format!("watch pod {name}: {other}")),
        }),
        Err(_) => {
            let phase = pods
                .get(name)
                .await
                .ok()
                .and_then(|p| p.status?.phase)
                .unwrap_or_else(|| "unknown".to_owned());
            Err(Outcome::error(format!(
                "probe pod {name} is still {phase} after {} s",
                deadline.as_secs()
            )))
        }
    }
}

async fn measure(c: &Arc<Cluster>, cx: &CheckContext) -> CheckResult {
    let k = cx.target().config::<crate::KubernetesConfig>();
    let nodes = c.nodes().await?;
    let Some((a, b)) = pick_nodes(&nodes) else {
        return Ok(Outcome::not_applicable(
            "fewer than two Ready, schedulable nodes: there is no cross-node path to measure",
        ));
    };
    let ns = format!(
        "nfvi-verify-probe-{}-{}",
        std::process::id(),
        chrono::Utc::now().timestamp() % 100_000
    );
    // Registered before the namespace exists, run whatever happens, through the run's
    // client on the run's runtime.
    let ns_for_cleanup = ns.clone();
    let cluster = c.clone();
    cx.on_cleanup_async(format!("delete namespace {ns}"), async move {
        match Api::<Namespace>::all(cluster.client().clone())
            .delete(&ns_for_cleanup, &DeleteParams::foreground())
            .await
        {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
            Err(e) => Err(cluster
                .explain(&format!("delete namespace {ns_for_cleanup}"), &e)
                .message),
        }
    });
    let namespace: Namespace = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": ns, "labels": crate::clean::labels()}
    }))
    .expect("a valid Namespace");
    Api::<Namespace>::all(c.client().clone())
        .create(&PostParams::default(), &namespace)
        .await
        .map_err(|e| c.explain(&format!("create namespace {ns}"), &e))?;
    let pods: Api<Pod> = Api::namespaced(c.client().clone(), &ns);
    let serve = |node: &str, name: &str| {
        pod(
            name,
            node,
            k.probe_image.as_deref().unwrap_or_default(),
            serve_args(),
            "Always",
            &k.probe_networks,
        )
    };
    for (name, node) in [("responder-same", &a), ("responder-other", &b)] {
        pods.create(&PostParams::default(), &serve(node, name))
            .await
            .map_err(|e| c.explain(&format!("create pod {ns}/{name}"), &e))?;
    }
    let mut responders = Vec::new();
    for name in ["responder-same", "responder-other"] {
        responders.push(wait_pod(&pods, c, name, false, START_TIMEOUT).await?);
    }
    let (rounds, block) = (k.probe_rounds.max(2), k.probe_block.max(100));
    // The default network first, then each secondary network by the responders' addresses on
    // it (from Multus' network-status).
    let mut targets = vec![(
        "default network".to_owned(),
        responders
            .iter()
            .map(|p| p.status.clone().and_then(|s| s.pod_ip).unwrap_or_default())
            .collect::<Vec<_>>(),
    )];
    for net in &k.probe_networks {
        let mut ips = Vec::new();
        for p in &responders {
            ips.push(secondary_ip(p, net)?);
        }
        targets.push((net.clone(), ips));
    }
    let mut results = Vec::new();
    for (i, (net, ips)) in targets.iter().enumerate() {
        let name = if i == 0 {
            "client".to_owned()
        } else {
            format!("client-{i}")
        };
        let client = pod(
            &name,
            &a,
            k.probe_image.as_deref().unwrap_or_default(),
            vec![
                "probe".into(),
                "compare".into(),
                format!("{}:{PORT}", ips[0]),
                format!("{}:{PORT}", ips[1]),
                "--rounds".into(),
                rounds.to_string(),
                "--block".into(),
                block.to_string(),
                "--format".into(),
                "json".into(),
            ],
            "Never",
            if i == 0 {
                &[]
            } else {
                std::slice::from_ref(net)
            },
        );
        pods.create(&PostParams::default(), &client)
            .await
            .map_err(|e| c.explain(&format!("create pod {ns}/{name}"), &e))?;
        // Generous: a 100 µs RTT per probe, both paths, plus start-up.
        let budget =
            START_TIMEOUT + Duration::from_micros(u64::from(rounds) * u64::from(block) * 2 * 100);
        let done = wait_pod(&pods, c, &name, true, budget).await?;
        let logs = pods
            .logs(&name, &LogParams::default())
            .await
            .map_err(|e| c.explain(&format!("get the log of pod {ns}/{name}"), &e))?;
        let phase = done.status.and_then(|s| s.phase).unwrap_or_default();
        if phase != "Succeeded" {
            return Err(format!(
                "the probe client on the {net} failed: {}",
                nfvi_harness::truncate_chars(logs.trim(), 300)
            )
            .into());
        }
        let paired = parse_paired(&logs).map_err(|e| format!("on the {net}: {e}"))?;
        results.push((net.clone(), paired));
    }
    let (_, default) = &results[0];
    let sla = &cx.target().config::<DatapathConfig>().sla;
    let slas = [sla.get("pod-same-node"), sla.get("pod-cross-node")];
    let mut o = judge(default, &a, &b, &ns, slas);
    for (net, paired) in &results[1..] {
        let sub = judge(paired, &a, &b, &ns, [None, None]);
        if sub.status != nfvi_harness::Status::Passed {
            return Err(format!("{net}: {}", sub.message).into());
        }
        o = o.with_property(net.as_str(), &sub.message);
        for (k, m) in &sub.evidence.metrics {
            o = o.with_metric(format!("{net} {k}"), m.value, &m.unit);
        }
        for (k, v) in &sub.evidence.samples {
            o.evidence.samples.insert(format!("{net} {k}"), v.clone());
        }
    }
    if results.len() > 1 {
        o.message = format!(
            "{} (and {} secondary network(s), in the evidence)",
            o.message,
            results.len() - 1
        );
    }
    Ok(o)
}

/// The pod's address on a secondary network, from Multus' network-status annotation
/// (`name` matches `namespace/name` entries too).
pub(crate) fn secondary_ip(p: &Pod, net: &str) -> Result<String, String> {
    let pod = p.metadata.name.clone().unwrap_or_default();
    let status = p
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(NETWORK_STATUS))
        .ok_or_else(|| format!("pod {pod} has no {NETWORK_STATUS} annotation: is Multus running, and does the NetworkAttachmentDefinition {net} exist?"))?;
    let entries: Vec<serde_json::Value> = serde_json::from_str(status)
        .map_err(|e| format!("pod {pod}'s {NETWORK_STATUS} is not a JSON list: {e}"))?;
    let short = net.rsplit('/').next().unwrap_or(net);
    entries
        .iter()
        .find(|e| {
            let n = e["name"].as_str().unwrap_or("");
            n == net || n.rsplit('/').next() == Some(short) && !net.contains('/')
        })
        .and_then(|e| {
            e["ips"]
                .as_array()?
                .iter()
                .find_map(|ip| ip.as_str().filter(|s| !s.contains(':')))
                .map(str::to_owned)
        })
        .ok_or_else(|| {
            format!(
                "pod {pod} has no IPv4 address on network {net} (network-status: {})",
                nfvi_harness::truncate_chars(status, 200)
            )
        })
}

/// The outcome of one in-cluster comparison: same node (first) against cross node (second),
/// with the datapath SLAs `pod-same-node` and `pod-cross-node` when the target sets them
/// (judged, as in the datapath area, on the upper 95% bound of the per-round p50 and p99).
pub(crate) fn judge(
    p: &PairedBlocks,
    a: &str,
    b: &str,
    ns: &str,
    slas: [Option<&LatencySla>; 2],
) -> Outcome {
    let nodes = format!("{a} (client, responder-same), {b} (responder-other)");
    let paths = PairedPaths {
        what: "pod-to-pod",
        a,
        b,
        sla: ["pod-same-node", "pod-cross-node"],
        properties: &[("nodes", &nodes), ("namespace", ns)],
    };
    judge_paired(p, &paths, slas)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paired(first: Vec<f64>, second: Vec<f64>) -> PairedBlocks {
        PairedBlocks {
            first: "10.0.0.1:7777".parse().unwrap(),
            second: "10.0.0.2:7777".parse().unwrap(),
            block: 100,
            first_p50_us: first,
            second_p50_us: second,
            lost: [0, 0],
            first_p99_us: Vec::new(),
            second_p99_us: Vec::new(),
            first_cdf_us: Vec::new(),
            second_cdf_us: Vec::new(),
        }
    }

    #[test]
    fn secondary_addresses_come_from_multus_network_status() {
        let pod = |status: Option<&str>| -> Pod {
            let mut annotations = serde_json::Map::new();
            if let Some(s) = status {
                annotations.insert(NETWORK_STATUS.to_owned(), json!(s));
            }
            serde_json::from_value(
                json!({"metadata": {"name": "responder-same", "annotations": annotations}}),
            )
            .unwrap()
        };
        let status = r#"[{"name":"cbr0","interface":"eth0","ips":["10.244.1.5"],"default":true},{"name":"lab/macvlan-lab","interface":"net1","ips":["fd00::5","198.18.60.5"]}]"#;
        assert_eq!(
            secondary_ip(&pod(Some(status)), "lab/macvlan-lab").unwrap(),
            "198.18.60.5"
        );
        assert_eq!(
            secondary_ip(&pod(Some(status)), "macvlan-lab").unwrap(),
            "198.18.60.5"
        );
        let e = secondary_ip(&pod(Some(status)), "other/macvlan-lab").unwrap_err();
        assert!(
            e.contains("no IPv4 address on network other/macvlan-lab"),
            "{e}"
        );
        let e = secondary_ip(&pod(None), "lab/macvlan-lab").unwrap_err();
        assert!(e.contains("is Multus running"), "{e}");
        let e = secondary_ip(&pod(Some("{not json")), "x").unwrap_err();
        assert!(e.contains("not a JSON list"), "{e}");
    }

    #[test]
    fn uneven_or_nonsense_series_are_errors_not_measurements() {
        let e = |p| judge(&p, "a", "b", "ns", [None, None]).status;
        assert_eq!(e(paired(vec![1.0], vec![2.0])), nfvi_harness::Status::Error);
        assert_eq!(
            e(paired(vec![1.0, 2.0], vec![2.0])),
            nfvi_harness::Status::Error
        );
        assert_eq!(
            e(paired(vec![1.0, f64::NAN], vec![2.0, 2.0])),
            nfvi_harness::Status::Error
        );
        assert_eq!(
            e(paired(vec![1.0, -1.0], vec![2.0, 2.0])),
            nfvi_harness::Status::Error
        );
        let good = paired(vec![10.0, 10.5, 10.2, 10.1], vec![20.0, 20.4, 19.9, 20.2]);
        let o = judge(&good, "a", "b", "ns", [None, None]);
        assert_eq!(o.status, nfvi_harness::Status::Passed);
        assert!(o.message.contains("same node is faster"), "{}", o.message);
        // An SLA on the cross-node p50 that the measurement misses, and one it meets.
        let tight = LatencySla {
            p50_us: Some(15.0),
            p99_us: None,
        };
        let loose = LatencySla {
            p50_us: Some(50.0),
            p99_us: None,
        };
        let o = judge(&good, "a", "b", "ns", [Some(&loose), Some(&tight)]);
        assert_eq!(o.status, nfvi_harness::Status::Failed);
        assert!(
            o.message
                .starts_with("latency SLA missed: pod-cross-node p50: the upper 95% bound 20."),
            "{}",
            o.message
        );
        assert!(!o.message.contains("pod-same-node p50"), "{}", o.message);
        // A p99 SLA needs per-round p99s, which this (older) report lacks.
        let p99 = LatencySla {
            p50_us: None,
            p99_us: Some(100.0),
        };
        let o = judge(&good, "a", "b", "ns", [Some(&p99), None]);
        assert!(
            o.message.contains("reported no per-round p99"),
            "{}",
            o.message
        );
    }
}
