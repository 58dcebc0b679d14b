//! kube-bench as its own job manifests run it (job-master.yaml, job-node.yaml): a Job with
//! hostPID and the host's configuration mounted read-only, on a control-plane node (its
//! taints tolerated) and on a worker, `--json` to the pod's log, which the harness reads
//! through the pods/log API and hands to the evidence path's kube-bench parser and judges;
//! every control goes to the run's ledger (`kube-bench:<role>`, by control number).

use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, ListParams, LogParams, PostParams};
use nfvi_harness::{Check, CheckContext, CheckMeta, CheckResult, Outcome, Severity, declare};
use nfvi_reference_model::Area;

use super::manifest::{self, BENCH_CONTAINER, BenchRole};
use super::pod::{self, Stage, Started};
use crate::area::{Connection, KubernetesConfig};
use crate::checks::{condition, is_control_plane};
use crate::cluster::{self, Cluster};

/// The requirements kube-bench's controls verify, as the evidence area's mapping
/// (suites/evidence/src/kube-bench.toml) ties them: authenticated access (anonymous auth,
/// client certificates, TLS of the API server, etcd and the kubelet) and role-based access
/// control (authorization modes, NodeRestriction, RBAC and service accounts). The scored
/// CIS summary (sec.std.001, a should) is reported with them but does not decide.
const COVERS: &[&str] = &["sec.sys.001", "sec.sys.007"];

pub(super) fn checks() -> Vec<Arc<dyn Check>> {
    [BenchRole::Master, BenchRole::Node]
        .into_iter()
        .map(|role| {
            let (id, title, where_) = match role {
                BenchRole::Master => (
                    "k8s.kube-bench.master",
                    "The CIS controls of the control plane, etcd and the RBAC policies pass (kube-bench on a control-plane node)",
                    "a control-plane node (its NoSchedule taints tolerated)",
                ),
                BenchRole::Node => (
                    "k8s.kube-bench.node",
                    "The CIS controls of a worker's kubelet pass (kube-bench on a worker)",
                    "a worker node",
                ),
            };
            declare(
                CheckMeta::new(id, Area::K8s, title)
                    .subject("kube-bench")
                    .covers(Severity::Must, COVERS)
                    .needs([crate::kubeconfig_need()])
                    .upstream("kube-bench", format!("--targets {}", role.targets()))
                    .side_effects(
                        format!("creates a namespace nfvi-verify-bench-<id> (Pod Security level privileged) holding a Job kube-bench-{} whose pod runs on {where_} with hostPID and the node's configuration directories mounted read-only", role.name()),
                        "deletes the namespace, and the Job and its pod with it, whatever the outcome (also on timeout and Ctrl-C)",
                    )
                    .timeout(Duration::from_secs(50 * 3600)),
                move |cx| Box::pin(run(cx, role)),
            )
            .into_check()
        })
        .collect()
}

/// The node to run on: the first Ready control-plane node, or the first Ready worker.
pub(crate) fn pick(nodes: &[Node], role: BenchRole) -> Option<String> {
    nodes
        .iter()
        .filter(|n| is_control_plane(n) == (role == BenchRole::Master))
        .filter(|n| condition(n, "Ready").as_deref() == Some("True"))
        .find_map(|n| n.metadata.name.clone())
}

async fn run(cx: &CheckContext, role: BenchRole) -> CheckResult {
    let k = cx.target().config::<KubernetesConfig>();
    let c = cluster::for_check(cx).await?;
    let Some(evidence) = cx.shared::<Connection>().evidence.clone() else {
        return Err("this build hands the k8s area no evidence path (K8sArea::with_evidence): kube-bench's results could not be judged".into());
    };
    let nodes = c.nodes().await?;
    let Some(node) = pick(&nodes, role) else {
        return Ok(Outcome::not_applicable(match role {
            BenchRole::Master => {
                "no Ready control-plane node is visible (a managed control plane?): kube-bench's master targets cannot run on it"
            }
            BenchRole::Node => "no Ready worker node: kube-bench's node target has nowhere to run",
        }));
    };
    let shared = cx.shared::<Connection>();
    let _turn = tokio::select! {
        turn = shared.upstream.lock() => turn,
        () = cx.cancel().cancelled() => return Err("the run was stopped before kube-bench's turn came".into()),
    };
    let ns = format!("nfvi-verify-bench-{}", super::short_id());
    let job = format!("kube-bench-{}", role.name());
    let evidence_of = |o: Outcome| {
        o.with_property("node", &node)
            .with_property("image", &k.kube_bench_image)
            .with_property("targets", role.targets())
            .with_property("namespace", &ns)
    };
    let log = match collect(cx, &c, k, role, &ns, &job, &node).await {
        Ok(log) => log,
        Err(o) => return Err(evidence_of(o).into()),
    };
    let Some(json) = pod::bench_json(&log) else {
        let tail = String::from_utf8_lossy(&log);
        return Err(evidence_of(Outcome::error(format!(
            "kube-bench on {node} printed no JSON: {}",
            nfvi_harness::truncate_chars(tail.trim(), 400)
        )))
        .into());
    };
    let source = format!("pod of job {ns}/{job} on node {node}");
    let mut o = evidence_of(evidence.kube_bench(&source, json));
    // Every control to the run's ledger (kube-bench:<role>, by control number). A rerun runs
    // the Job again (minutes): its controls replace the carried ones.
    let records = super::rerun::bench_records(role.name(), json);
    if let Err(e) = cx.ledger().append(&records) {
        tracing::warn!(error = %e, "cannot write the upstream ledger");
        o = o.with_property(
            "kube-bench.ledger",
            format!("the controls' ledger could not be written ({e})"),
        );
    }
    Ok(o)
}

/// Creates the Job, waits for its pod to start (the start deadline) and to end (the overall
/// timeout), and returns the pod's log.
async fn collect(
    cx: &CheckContext,
    c: &Arc<Cluster>,
    k: &KubernetesConfig,
    role: BenchRole,
    ns: &str,
    job: &str,
    node: &str,
) -> Result<Vec<u8>, Outcome> {
    pod::namespace(cx, c, ns, true).await.map_err(|e| e.0)?;
    let client = c.client().clone();
    Api::<Job>::namespaced(client.clone(), ns)
        .create(
            &PostParams::default(),
            &manifest::bench_job(job, role, node, &k.kube_bench_image),
        )
        .await
        .map_err(|e| c.explain(&format!("create job {ns}/{job}"), &e).outcome())?;
    let pods: Api<Pod> = Api::namespaced(client, ns);
    let selector = ListParams::default().labels(&format!("job-name={job}"));
    let get = || async {
        pods.list(&selector)
            .await
            .map(|l| l.items.into_iter().next())
            .map_err(|e| {
                c.explain(&format!("list pods of job {ns}/{job}"), &e)
                    .message
            })
    };
    let what = format!("kube-bench's pod of job {ns}/{job} on {node}");
    let start = Duration::from_secs(k.upstream_start_timeout_secs);
    let pod = match pod::wait_started(cx, &what, &k.kube_bench_image, BENCH_CONTAINER, start, get)
        .await
        .map_err(|e| e.0)?
    {
        Started::Yes(p) => p,
        Started::No(why) => return Err(Outcome::error(why)),
    };
    let name = pod.metadata.name.clone().unwrap_or_default();
    let started = Instant::now();
    let timeout = Duration::from_secs(k.upstream_timeout_secs);
    loop {
        let p = pods
            .get_opt(&name)
            .await
            .map_err(|e| c.explain(&format!("get pod {ns}/{name}"), &e).outcome())?
            .ok_or_else(|| Outcome::error(format!("{what} was deleted before it ended")))?;
        match pod::stage(&p, BENCH_CONTAINER) {
            Stage::Ended(..) => break,
            Stage::Failed(why) => return Err(Outcome::error(format!("{what} failed: {why}"))),
            _ => {}
        }
        if started.elapsed() >= timeout {
            return Err(Outcome::error(format!(
                "{what} did not end within {} s (kubernetes.upstream_timeout_secs)",
                timeout.as_secs()
            )));
        }
        pod::stopped_or_sleep(cx, &what).await.map_err(|e| e.0)?;
    }
    let params = LogParams {
        container: Some(BENCH_CONTAINER.to_owned()),
        ..LogParams::default()
    };
    pods.logs(&name, &params)
        .await
        .map(String::into_bytes)
        .map_err(|e| {
            c.explain(&format!("get the log of pod {ns}/{name}"), &e)
                .outcome()
        })
}
