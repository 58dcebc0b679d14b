//! The node agent's DaemonSet as the scripted API server serves it, standing in for a real
//! API server and the DaemonSet controller and kubelets behind it: creating the DaemonSet
//! makes one pod per node at once, each faring as the [`Spec`]'s `agents` says (running with
//! a log, stuck pulling its image, ended); the ConfigMap, the namespace and their deletion.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use super::{JSON, Request, Spec, TOKEN, list, node_names, rfc3339, status};

/// How one node's agent pod fares, and what its log holds.
#[derive(Clone, Debug)]
pub struct AgentPod {
    pub state: AgentState,
    pub log: Vec<u8>,
}

/// Where an agent pod's container stands.
#[derive(Clone, Debug)]
pub enum AgentState {
    /// Running: its log is served (and ends where the script ends).
    Running,
    /// Waiting to start: reason and message (`ImagePullBackOff`, `Back-off pulling ...`).
    Waiting(&'static str, String),
    /// Ended: reason and exit code.
    Terminated(&'static str, i32),
}

impl AgentPod {
    /// A running agent whose log is `lines`.
    pub fn running(lines: impl IntoIterator<Item = String>) -> Self {
        Self {
            state: AgentState::Running,
            log: lines.into_iter().collect::<String>().into_bytes(),
        }
    }
}

/// What the agent's part of the cluster holds.
#[derive(Default)]
pub struct Store {
    namespaces: BTreeSet<String>,
    config_maps: BTreeMap<String, Value>,
    daemon_sets: BTreeMap<String, Value>,
    /// By `namespace/name`: the node and the pod.
    pods: BTreeMap<String, (String, Value)>,
}

pub type Agents = Arc<Mutex<Store>>;

type Answer = Option<(u16, &'static str, Vec<u8>)>;

fn answer(code: u16, v: &Value) -> Answer {
    Some((code, JSON, v.to_string().into_bytes()))
}

fn not_found(what: &str) -> Answer {
    answer(404, &status(404, "NotFound", &format!("{what} not found")))
}

/// Answers the agent's calls; `None` leaves the request to the rest of the server (which
/// also refuses bad credentials).
pub(super) fn respond(req: &Request<'_>, spec: &Spec, agents: &Agents) -> Answer {
    if req.auth != format!("Bearer {TOKEN}") || spec.refuse_all.is_some() {
        return None;
    }
    let segs: Vec<&str> = req.path.trim_start_matches('/').split('/').collect();
    let mut store = agents.lock().unwrap();
    let body = || serde_json::from_slice::<Value>(req.body).unwrap_or(Value::Null);
    match (req.method, segs.as_slice()) {
        ("POST", ["api", "v1", "namespaces"]) => {
            let name = body()["metadata"]["name"].as_str().unwrap_or("").to_owned();
            store.namespaces.insert(name);
            None // the rest of the server answers
        }
        // kube-system is the rest of the server's (its UID identifies the cluster).
        ("GET", ["api", "v1", "namespaces", "kube-system"]) => None,
        ("GET", ["api", "v1", "namespaces", ns]) => {
            let exists = store.namespaces.contains(*ns)
                || (spec.agent_namespace_exists && *ns == "nfvi-verify");
            if exists {
                answer(
                    200,
                    &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}, "status": {"phase": "Active"}}),
                )
            } else {
                not_found(&format!("namespaces \"{ns}\""))
            }
        }
        ("POST", ["api", "v1", "namespaces", ns, "configmaps"]) => {
            let mut v = body();
            v["metadata"]["namespace"] = json!(ns);
            let name = v["metadata"]["name"].as_str().unwrap_or("").to_owned();
            store.config_maps.insert(format!("{ns}/{name}"), v.clone());
            answer(201, &v)
        }
        ("DELETE", ["api", "v1", "namespaces", ns, "configmaps", name]) => {
            match store.config_maps.remove(&format!("{ns}/{name}")) {
                Some(v) => answer(200, &v),
                None => not_found(&format!("configmaps \"{name}\"")),
            }
        }
        ("POST", ["apis", "apps", "v1", "namespaces", ns, "daemonsets"]) => {
            let mut v = body();
            v["metadata"]["namespace"] = json!(ns);
            let name = v["metadata"]["name"].as_str().unwrap_or("").to_owned();
            // The DaemonSet controller: one pod per node, every taint tolerated.
            for (i, (node, _)) in node_names(spec).iter().enumerate() {
                let pod_name = format!("{name}-n{i:04}");
                let mut pod_spec = v["spec"]["template"]["spec"].clone();
                pod_spec["nodeName"] = json!(node);
                let pod = json!({
                    "apiVersion": "v1", "kind": "Pod",
                    "metadata": {"name": pod_name, "namespace": ns, "labels": v["spec"]["template"]["metadata"]["labels"], "creationTimestamp": rfc3339(600), "uid": format!("uid-{pod_name}")},
                    "spec": pod_spec
                });
                store
                    .pods
                    .insert(format!("{ns}/{pod_name}"), (node.clone(), pod));
            }
            store.daemon_sets.insert(format!("{ns}/{name}"), v.clone());
            answer(201, &v)
        }
        ("DELETE", ["apis", "apps", "v1", "namespaces", ns, "daemonsets", name]) => {
            let Some(v) = store.daemon_sets.remove(&format!("{ns}/{name}")) else {
                return not_found(&format!("daemonsets.apps \"{name}\""));
            };
            let prefix = format!("{ns}/{name}-");
            store.pods.retain(|k, _| !k.starts_with(&prefix));
            answer(200, &v)
        }
        ("GET", ["api", "v1", "namespaces", ns, "pods"])
            if !ns.starts_with("nfvi-verify-probe-")
                && !ns.starts_with("nfvi-verify-net-")
                && *ns != "kube-system" =>
        {
            let items: Vec<Value> = store
                .pods
                .iter()
                .filter(|(k, _)| k.starts_with(&format!("{ns}/")))
                .map(|(_, (node, p))| view(p, spec.agents.get(node)))
                .collect();
            answer(200, &list("PodList", "v1", items))
        }
        ("GET", ["api", "v1", "namespaces", ns, "pods", name])
            if name.starts_with("nfvi-verify-agent-") =>
        {
            match store.pods.get(&format!("{ns}/{name}")) {
                Some((node, p)) => answer(200, &view(p, spec.agents.get(node))),
                None => not_found(&format!("pods \"{name}\"")),
            }
        }
        ("GET", ["api", "v1", "namespaces", ns, "pods", name, "log"])
            if name.starts_with("nfvi-verify-agent-") =>
        {
            let Some((node, _)) = store.pods.get(&format!("{ns}/{name}")) else {
                return not_found(&format!("pods \"{name}\""));
            };
            match spec.agents.get(node) {
                Some(AgentPod {
                    state: AgentState::Running | AgentState::Terminated(..),
                    log,
                }) => Some((200, "text/plain", log.clone())),
                other => {
                    let reason = match other {
                        Some(AgentPod {
                            state: AgentState::Waiting(reason, _),
                            ..
                        }) => reason,
                        _ => "ContainerCreating",
                    };
                    answer(
                        400,
                        &status(
                            400,
                            "BadRequest",
                            &format!(
                                "container \"agent\" in pod \"{name}\" is waiting to start: {reason}"
                            ),
                        ),
                    )
                }
            }
        }
        _ => None,
    }
}

/// A pod as the API server shows it: its container as the node's script says, or still
/// being created when the script leaves the node out.
fn view(pod: &Value, script: Option<&AgentPod>) -> Value {
    let mut p = pod.clone();
    let image = p["spec"]["containers"][0]["image"].clone();
    let (phase, state, ready) = match script.map(|s| &s.state) {
        Some(AgentState::Running) => (
            "Running",
            json!({"running": {"startedAt": rfc3339(590)}}),
            true,
        ),
        Some(AgentState::Terminated(reason, code)) => (
            "Running",
            json!({"terminated": {"exitCode": code, "reason": reason, "startedAt": rfc3339(590), "finishedAt": rfc3339(1)}}),
            false,
        ),
        Some(AgentState::Waiting(reason, message)) => (
            "Pending",
            json!({"waiting": {"reason": reason, "message": message}}),
            false,
        ),
        None => (
            "Pending",
            json!({"waiting": {"reason": "ContainerCreating"}}),
            false,
        ),
    };
    p["metadata"]["resourceVersion"] = json!("3000");
    p["status"] = json!({
        "phase": phase,
        "hostIP": "192.0.2.9",
        "containerStatuses": [{"name": "agent", "image": image, "imageID": "", "ready": ready, "restartCount": 0, "state": state}]
    });
    p
}
