//! The upstream suites as the scripted API server serves them, standing in for a real API
//! server and the kubelets behind it: the e2e pod (conformance image and output sidecar) in
//! `nfvi-verify-e2e-*` namespaces, its ServiceAccount and ClusterRoleBinding, and kube-bench's
//! Jobs (one pod each, labelled `job-name`) in `nfvi-verify-bench-*`; each pod fares as the
//! [`Spec`]'s `upstream` says (succeeds with real results, never starts, hangs).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};

use serde_json::{Value, json};

use super::{JSON, Request, Spec, TOKEN, list, status};

/// How an upstream pod fares.
#[derive(Clone, Debug)]
pub enum Fate {
    /// Runs and ends; the e2e pod's sidecar prints the results, kube-bench's log its JSON.
    Succeeds,
    /// Stays Pending, its container waiting: reason and message (`ImagePullBackOff`).
    NeverStarts(&'static str, String),
    /// Runs and never ends.
    Hangs,
}

/// The upstream part of a cluster.
#[derive(Clone, Debug)]
pub struct Script {
    pub e2e: Fate,
    pub bench: Fate,
    /// What the e2e pod's results are: junit_01.xml and e2e.log.
    pub junit: Arc<Vec<u8>>,
    pub e2e_log: Arc<Vec<u8>>,
    /// kube-bench's JSON.
    pub bench_json: Arc<Vec<u8>>,
}

fn fixture(rel: &str) -> Arc<Vec<u8>> {
    static CACHE: OnceLock<Mutex<BTreeMap<String, Arc<Vec<u8>>>>> = OnceLock::new();
    let mut cache = CACHE.get_or_init(Default::default).lock().unwrap();
    cache
        .entry(rel.to_owned())
        .or_insert_with(|| {
            let path = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../tests/fixtures/evidence")
                .join(rel);
            Arc::new(std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
        })
        .clone()
}

/// The kube-bench fixtures: one whose mapped controls pass (EKS), one with a failure.
pub const BENCH_PASSING: &str = "kube-bench/eks-1.0-2021/kube-bench-report.json";
pub const BENCH_FAILING: &str = "kube-bench/newrelic-cis-1.23-k8s-1.25/kube-bench-output.json";

impl Script {
    /// A real conformance run of 1.33 (419 passed) and a passing kube-bench run.
    pub fn passing() -> Self {
        Self {
            e2e: Fate::Succeeds,
            bench: Fate::Succeeds,
            junit: fixture("k8s-e2e/cncf-v1.33-catalyst-cloud/junit_01.xml"),
            e2e_log: fixture("k8s-e2e/cncf-v1.33-catalyst-cloud/e2e.log"),
            bench_json: fixture(BENCH_PASSING),
        }
    }

    /// The e2e pod's results given inline: junit_01.xml and e2e.log.
    pub fn with_e2e(mut self, junit: &str, log: &str) -> Self {
        self.junit = Arc::new(junit.as_bytes().to_vec());
        self.e2e_log = Arc::new(log.as_bytes().to_vec());
        self
    }

    /// kube-bench's JSON from `rel` under tests/fixtures/evidence.
    pub fn with_bench(mut self, rel: &str) -> Self {
        self.bench_json = fixture(rel);
        self
    }
}

/// What the upstream part of the cluster holds, by `namespace/name`.
#[derive(Default)]
pub struct Store {
    /// Pods: the e2e pod and kube-bench's, with their environment (the sidecar's marker).
    pods: BTreeMap<String, Value>,
    bindings: BTreeMap<String, Value>,
}

pub type Upstream = Arc<Mutex<Store>>;

type Answer = Option<(u16, &'static str, Vec<u8>)>;

fn answer(code: u16, v: &Value) -> Answer {
    Some((code, JSON, v.to_string().into_bytes()))
}

fn ours(ns: &str) -> bool {
    ns.starts_with("nfvi-verify-e2e-") || ns.starts_with("nfvi-verify-bench-")
}

/// Answers the upstream suites' calls; `None` leaves the request to the rest of the server.
pub(super) fn respond(req: &Request<'_>, spec: &Spec, store: &Upstream) -> Answer {
    if req.auth != format!("Bearer {TOKEN}") || spec.refuse_all.is_some() {
        return None;
    }
    let segs: Vec<&str> = req.path.trim_start_matches('/').split('/').collect();
    let body = || serde_json::from_slice::<Value>(req.body).unwrap_or(Value::Null);
    let mut s = store.lock().unwrap();
    let script = &spec.upstream;
    match (req.method, segs.as_slice()) {
        (
            "POST",
            [
                "apis",
                "rbac.authorization.k8s.io",
                "v1",
                "clusterrolebindings",
            ],
        ) => {
            let v = body();
            let name = v["metadata"]["name"].as_str().unwrap_or("").to_owned();
            s.bindings.insert(name, v.clone());
            answer(201, &v)
        }
        (
            "DELETE",
            [
                "apis",
                "rbac.authorization.k8s.io",
                "v1",
                "clusterrolebindings",
                name,
            ],
        ) => match s.bindings.remove(*name) {
            Some(v) => answer(200, &v),
            None => answer(
                404,
                &status(404, "NotFound", "clusterrolebindings not found"),
            ),
        },
        ("DELETE", ["api", "v1", "namespaces", ns]) if ours(ns) => {
            s.pods.retain(|k, _| !k.starts_with(&format!("{ns}/")));
            answer(
                200,
                &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}, "status": {"phase": "Terminating"}}),
            )
        }
        ("POST", ["api", "v1", "namespaces", ns, "serviceaccounts"]) if ours(ns) => {
            let mut v = body();
            v["metadata"]["namespace"] = json!(ns);
            answer(201, &v)
        }
        ("POST", ["api", "v1", "namespaces", ns, "pods"]) if ours(ns) => {
            let mut v = body();
            v["metadata"]["namespace"] = json!(ns);
            let name = v["metadata"]["name"].as_str().unwrap_or("").to_owned();
            s.pods.insert(format!("{ns}/{name}"), v.clone());
            answer(201, &v)
        }
        ("POST", ["apis", "batch", "v1", "namespaces", ns, "jobs"]) if ours(ns) => {
            let mut v = body();
            v["metadata"]["namespace"] = json!(ns);
            let job = v["metadata"]["name"].as_str().unwrap_or("").to_owned();
            // The Job controller: one pod, labelled with the Job's name.
            let pod_name = format!("{job}-x7k2p");
            let pod = json!({
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": pod_name, "namespace": ns, "labels": {"job-name": job}},
                "spec": v["spec"]["template"]["spec"].clone()
            });
            s.pods.insert(format!("{ns}/{pod_name}"), pod);
            answer(201, &v)
        }
        ("GET", ["api", "v1", "namespaces", ns, "pods"]) if ours(ns) => {
            let job = req
                .query
                .split('&')
                .find_map(|kv| kv.strip_prefix("labelSelector=job-name%3D"))
                .unwrap_or("");
            let items: Vec<Value> = s
                .pods
                .iter()
                .filter(|(k, p)| {
                    k.starts_with(&format!("{ns}/")) && p["metadata"]["labels"]["job-name"] == job
                })
                .map(|(_, p)| view(p, script))
                .collect();
            answer(200, &list("PodList", "v1", items))
        }
        ("GET", ["api", "v1", "namespaces", ns, "pods", name]) if ours(ns) => {
            match s.pods.get(&format!("{ns}/{name}")) {
                Some(p) => answer(200, &view(p, script)),
                None => answer(
                    404,
                    &status(404, "NotFound", &format!("pods \"{name}\" not found")),
                ),
            }
        }
        ("GET", ["api", "v1", "namespaces", ns, "pods", name, "log"]) if ours(ns) => {
            let Some(p) = s.pods.get(&format!("{ns}/{name}")) else {
                return answer(
                    404,
                    &status(404, "NotFound", &format!("pods \"{name}\" not found")),
                );
            };
            let container = req
                .query
                .split('&')
                .find_map(|kv| kv.strip_prefix("container="))
                .unwrap_or("");
            let fate = fate(p, script);
            if let Fate::NeverStarts(reason, _) = fate {
                return answer(
                    400,
                    &status(
                        400,
                        "BadRequest",
                        &format!(
                            "container \"{container}\" in pod \"{name}\" is waiting to start: {reason}"
                        ),
                    ),
                );
            }
            let text: Vec<u8> = match container {
                "e2e" => b"I1129 e2e starting\nWill run 419 of 6731 specs\n\xe2\x80\xa2 [1.2 seconds]\n\xe2\x80\xa2 [0.8 seconds]\n".to_vec(),
                "output" if matches!(fate, Fate::Succeeds) => {
                    let mark = p["spec"]["containers"][1]["env"][0]["value"].as_str().unwrap_or("").to_owned();
                    let mut out = format!("{mark} junit_01.xml\n").into_bytes();
                    out.extend_from_slice(&script.junit);
                    out.extend_from_slice(format!("\n{mark} e2e.log\n").as_bytes());
                    out.extend_from_slice(&script.e2e_log);
                    out.extend_from_slice(format!("\n{mark} end\n").as_bytes());
                    out
                }
                "kube-bench" if matches!(fate, Fate::Succeeds) => {
                    let mut out = b"W1129 10:00:01.000000 1 util.go:1] Unable to detect the kubelet's version\n".to_vec();
                    // kube-bench --json prints one line.
                    let v: Value = serde_json::from_slice(&script.bench_json).unwrap();
                    out.extend_from_slice(v.to_string().as_bytes());
                    out.push(b'\n');
                    out
                }
                _ => Vec::new(),
            };
            Some((200, "text/plain", text))
        }
        _ => None,
    }
}

fn fate<'a>(pod: &Value, script: &'a Script) -> &'a Fate {
    if pod["metadata"]["labels"]["job-name"].is_string() {
        &script.bench
    } else {
        &script.e2e
    }
}

/// A pod as the API server shows it, its containers as its fate says.
fn view(pod: &Value, script: &Script) -> Value {
    let mut p = pod.clone();
    let containers: Vec<String> = p["spec"]["containers"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|c| c["name"].as_str().unwrap_or("").to_owned())
                .collect()
        })
        .unwrap_or_default();
    let (phase, state) = match fate(pod, script) {
        Fate::Succeeds => (
            "Succeeded",
            json!({"terminated": {"exitCode": 0, "reason": "Completed"}}),
        ),
        Fate::NeverStarts(reason, message) => (
            "Pending",
            json!({"waiting": {"reason": reason, "message": message}}),
        ),
        Fate::Hangs => (
            "Running",
            json!({"running": {"startedAt": "2026-11-29T10:00:00Z"}}),
        ),
    };
    let statuses: Vec<Value> = containers
        .iter()
        .map(|c| json!({"name": c, "image": "", "imageID": "", "ready": false, "restartCount": 0, "state": state}))
        .collect();
    p["metadata"]["resourceVersion"] = json!("4000");
    p["status"] = json!({"phase": phase, "containerStatuses": statuses});
    p
}
