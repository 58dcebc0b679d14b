//! What the DaemonSet transport sends and reads: the namespace, ConfigMap and DaemonSet it
//! creates, the nodes as the fleet knows them, and where an agent pod stands.

use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Node, Pod};
use nfvi_harness::fleet::NodeSpec;
use serde_json::{Value, json};

use crate::probes::MANAGED_BY;

/// The `app.kubernetes.io/name` label of the agent's objects.
pub const APP: (&str, &str) = ("app.kubernetes.io/name", "nfvi-verify-agent");
/// The run label: the DaemonSet's name, unique to the run.
pub const INSTANCE: &str = "app.kubernetes.io/instance";
/// The agent's container.
pub(crate) const CONTAINER: &str = "agent";
/// Where the image holds the agent.
const AGENT_BINARY: &str = "/usr/local/bin/nfvi-verify";
/// Where the pod mounts the ConfigMap, and its key.
const REQUEST_DIR: &str = "/etc/nfvi-verify";
const REQUEST_KEY: &str = "request.json";
/// The node's directories the agent sees, read-only: (volume, host path, mount path, type).
/// `/run/netns` is left out: the CNI checks make their namespaces in the pod's own mount
/// namespace, and reading the host's is not needed.
const HOST_MOUNTS: &[(&str, &str, &str, &str)] = &[
    ("host-proc", "/proc", "/host/proc", "Directory"),
    ("host-sys", "/sys", "/host/sys", "Directory"),
    ("cni-bin", "/opt/cni/bin", "/opt/cni/bin", ""),
    ("cni-conf", "/etc/cni/net.d", "/etc/cni/net.d", ""),
];

/// A node as the fleet knows it: its name, its roles (`node-role.kubernetes.io/<role>`
/// labels) and its first InternalIP.
pub(crate) fn node_spec(n: &Node) -> Option<NodeSpec> {
    let name = n.metadata.name.clone()?;
    let mut roles: Vec<String> = crate::cluster::labels(&n.metadata)
        .keys()
        .filter_map(|k| k.strip_prefix("node-role.kubernetes.io/"))
        .filter(|r| !r.is_empty())
        .map(str::to_owned)
        .collect();
    roles.sort();
    let address = n
        .status
        .as_ref()
        .and_then(|s| s.addresses.as_ref())
        .and_then(|a| a.iter().find(|a| a.type_ == "InternalIP"))
        .map(|a| a.address.clone());
    Some(NodeSpec {
        name,
        roles,
        address,
    })
}

fn labels(instance: &str) -> Value {
    Value::Object(
        crate::clean::labels()
            .into_iter()
            .chain([
                (APP.0.into(), APP.1.into()),
                (INSTANCE.into(), instance.into()),
            ])
            .collect(),
    )
}

/// The namespace, admitting privileged pods (Pod Security Admission).
pub(crate) fn namespace_manifest(name: &str) -> Namespace {
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": name, "labels": {
            MANAGED_BY.0: MANAGED_BY.1,
            "pod-security.kubernetes.io/enforce": "privileged",
        }}
    }))
    .expect("a valid Namespace")
}

pub(crate) fn config_map_manifest(name: &str, namespace: &str, request: &str) -> ConfigMap {
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace, "labels": labels(name)},
        "data": {REQUEST_KEY: request}
    }))
    .expect("a valid ConfigMap")
}

/// The DaemonSet: one privileged agent pod per node, every taint tolerated.
pub(crate) fn daemon_set_manifest(name: &str, namespace: &str, image: &str) -> DaemonSet {
    let mut mounts = vec![json!({"name": "request", "mountPath": REQUEST_DIR, "readOnly": true})];
    let mut volumes = vec![json!({"name": "request", "configMap": {"name": name}})];
    for (volume, host, path, kind) in HOST_MOUNTS {
        mounts.push(json!({"name": volume, "mountPath": path, "readOnly": true}));
        let mut host_path = json!({"path": host});
        if !kind.is_empty() {
            host_path["type"] = json!(kind);
        }
        volumes.push(json!({"name": volume, "hostPath": host_path}));
    }
    serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "DaemonSet",
        "metadata": {"name": name, "namespace": namespace, "labels": labels(name)},
        "spec": {
            "selector": {"matchLabels": {APP.0: APP.1, INSTANCE: name}},
            "updateStrategy": {"type": "OnDelete"},
            "template": {
                "metadata": {"labels": labels(name)},
                "spec": {
                    "hostNetwork": true,
                    "hostPID": true,
                    "dnsPolicy": "ClusterFirstWithHostNet",
                    "automountServiceAccountToken": false,
                    "enableServiceLinks": false,
                    "terminationGracePeriodSeconds": 60,
                    "tolerations": [{"operator": "Exists"}],
                    "containers": [{
                        "name": CONTAINER,
                        "image": image,
                        "imagePullPolicy": "IfNotPresent",
                        "command": [AGENT_BINARY],
                        // --linger: after `done` the agent waits for SIGTERM, so the DaemonSet
                        // does not start it again.
                        "args": ["node", "--request", format!("{REQUEST_DIR}/{REQUEST_KEY}"), "--linger"],
                        "env": [{"name": "NFVI_NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}],
                        // Root whatever the image's USER: the node-level checks need it.
                        "securityContext": {"privileged": true, "runAsUser": 0},
                        "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}},
                        "volumeMounts": mounts
                    }],
                    "volumes": volumes
                }
            }
        }
    }))
    .expect("a valid DaemonSet")
}

/// Where an agent pod stands while it starts.
#[derive(Debug, PartialEq)]
pub(crate) enum Progress {
    /// Its container runs, or has ended: its log can be read.
    Ready,
    /// On its way (scheduled, pulling, creating).
    Starting(String),
    /// Stuck, and why (worded to follow "pod NAME on NODE").
    Stuck(String),
}

pub(crate) fn progress(p: &Pod, image: &str) -> Progress {
    let status = p.status.clone().unwrap_or_default();
    let container = status
        .container_statuses
        .iter()
        .flatten()
        .find(|c| c.name == CONTAINER);
    if let Some(state) = container.and_then(|c| c.state.as_ref()) {
        if state.running.is_some() || state.terminated.is_some() {
            return Progress::Ready;
        }
        if let Some(w) = &state.waiting {
            let reason = w.reason.clone().unwrap_or_default();
            let message = w
                .message
                .as_deref()
                .map(|m| format!(" ({})", nfvi_harness::truncate_chars(m, 300)))
                .unwrap_or_default();
            return match reason.as_str() {
                "ErrImagePull" | "ImagePullBackOff" | "InvalidImageName" | "ErrImageNeverPull" => {
                    Progress::Stuck(format!("cannot pull image {image}: {reason}{message}"))
                }
                "CrashLoopBackOff" => {
                    let last = container
                        .and_then(|c| c.last_state.as_ref()?.terminated.as_ref())
                        .map(|t| format!(", last {}", terminated(t)))
                        .unwrap_or_default();
                    Progress::Stuck(format!("keeps crashing: {reason}{last}{message}"))
                }
                "CreateContainerConfigError" | "CreateContainerError" | "RunContainerError" => {
                    Progress::Stuck(format!("cannot start its container: {reason}{message}"))
                }
                _ => Progress::Starting(if reason.is_empty() {
                    "waiting".into()
                } else {
                    reason
                }),
            };
        }
    }
    if status.phase.as_deref() == Some("Failed") {
        return Progress::Stuck(format!(
            "failed: {} {}",
            status.reason.unwrap_or_default(),
            status.message.unwrap_or_default()
        ));
    }
    let unschedulable = status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == "PodScheduled" && c.status == "False");
    if let Some(c) = unschedulable {
        return Progress::Stuck(format!(
            "cannot be scheduled: {}: {}",
            c.reason.clone().unwrap_or_default(),
            c.message.clone().unwrap_or_default()
        ));
    }
    Progress::Starting(status.phase.unwrap_or_else(|| "Pending".into()))
}

fn terminated(t: &k8s_openapi::api::core::v1::ContainerStateTerminated) -> String {
    let mut s = format!(
        "ended ({}) with exit code {}",
        t.reason.as_deref().unwrap_or("terminated"),
        t.exit_code
    );
    if let Some(signal) = t.signal {
        s.push_str(&format!(", signal {signal}"));
    }
    if let Some(m) = t.message.as_deref().filter(|m| !m.is_empty()) {
        s.push_str(&format!(": {}", nfvi_harness::truncate_chars(m, 300)));
    }
    s
}

/// How the agent's container stands after its log ended.
pub(crate) enum Container {
    Running,
    Ended(String),
    Gone,
    Unknown(String),
}

pub(crate) fn container_state(p: &Pod) -> Container {
    let status = p.status.clone().unwrap_or_default();
    let Some(c) = status
        .container_statuses
        .iter()
        .flatten()
        .find(|c| c.name == CONTAINER)
    else {
        return Container::Unknown("no status for the agent's container".into());
    };
    let state = c.state.clone().unwrap_or_default();
    // Restarted after an end: the end is in the last state.
    let ended = state
        .terminated
        .as_ref()
        .or_else(|| c.last_state.as_ref()?.terminated.as_ref());
    match ended {
        Some(t) => Container::Ended(terminated(t)),
        None if state.running.is_some() => Container::Running,
        None => Container::Unknown("waiting".into()),
    }
}

/// The newest pod of the DaemonSet on `node` that is not being deleted.
pub(crate) fn pod_on<'a>(pods: &'a [Pod], node: &str) -> Option<&'a Pod> {
    pods.iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter(|p| p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(node))
        .max_by_key(|p| p.metadata.creation_timestamp.as_ref().map(|t| t.0))
}
