//! A scripted Kubernetes API server: it stands in for a cluster, which cannot run on the
//! machines this project is built on. It speaks HTTP/1.1 on loopback and answers the calls
//! the k8s area makes with objects shaped as real API servers (1.29 to 1.33) return them:
//! `/version`, discovery, nodes, the kube-system namespace (its UID) and pods, DaemonSets,
//! CRDs, StorageClasses, Leases, ClusterRoles, kubelet configz, `/readyz`, and the probe
//! pods' lifecycle (create, Running with an IP, Succeeded with a log, namespace deletion),
//! and the node agent's DaemonSet (`agents.rs`: a pod per node with a scripted log). A
//! [`Spec`] describes the cluster; tests break one knob at a time. Every request (and every
//! POSTed body) is logged for assertions; `rbac.rs` checks them against the deploy file's
//! ClusterRole. This file holds the [`Spec`], the shared request type and helpers the parts
//! use, and the main server's own answers (authentication, the fixed documents, the probe
//! pods' lifecycle and how a probe pod looks); `objects.rs` builds the fixed documents
//! (discovery, nodes, kube-system, DaemonSets, CRDs and the rest) and `server.rs` runs the
//! listener, reads each request and asks every part in turn.

#![allow(dead_code)]

mod accel;
mod agents;
mod leftovers;
mod netpol;
mod objects;
mod own;
mod rbac;
mod server;
mod upstream;
mod userns;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use objects::{readyz, rfc3339};

// Each test file uses its part.
#[allow(unused_imports)]
pub use agents::{AgentPod, AgentState};
#[allow(unused_imports)]
pub use netpol::NetPol;
#[allow(unused_imports)]
pub use objects::node_names;
#[allow(unused_imports)]
pub use rbac::{Access, Grants, access};
#[allow(unused_imports)]
pub use server::{Server, kubeconfig};
#[allow(unused_imports)]
pub use upstream::{BENCH_FAILING, BENCH_PASSING, Fate, Script};
#[allow(unused_imports)]
pub use userns::UserNs;

/// The token the scripted server accepts.
pub const TOKEN: &str = "scripted-token";

/// A cluster, knob by knob.
#[derive(Clone, Debug)]
pub struct Spec {
    pub minor: u32,
    /// Control-plane nodes (with etcd and a zone each, round robin over `zones`).
    pub control_planes: usize,
    pub workers: usize,
    pub zones: Vec<String>,
    /// Worker kubelet minor lag behind the server.
    pub kubelet_lag: u32,
    pub etcd_on_worker: bool,
    pub scheduler_lease_age_secs: Option<i64>,
    pub readyz_failing: Option<String>,
    pub extra_group_versions: Vec<(String, String)>,
    pub drop_group_versions: Vec<String>,
    pub network_policies: bool,
    pub profile_labels: bool,
    pub hugepages: bool,
    pub cpu_manager: &'static str,
    pub topology_manager: &'static str,
    pub reserved_cpus: bool,
    pub cni: Option<&'static str>,
    pub multus: bool,
    pub nad_crd: bool,
    pub dual_stack: bool,
    pub default_storage_class: bool,
    pub rbac_roles: bool,
    pub anonymous_allowed: bool,
    pub nfd_labels: bool,
    pub not_ready_worker: bool,
    /// Names of things that end up in the report: hostile values go here.
    pub worker_prefix: String,
    /// Replaces the body of `GET /api/v1/nodes` (malformed answers).
    pub nodes_body: Option<(u16, &'static str, String)>,
    /// Status code for every request with this bearer token: 401 for an expired one.
    pub refuse_all: Option<u16>,
    /// Answer 403 to `list nodes`.
    pub forbid_nodes: bool,
    /// The probe client's log, and whether it succeeds.
    pub probe_log: String,
    pub probe_succeeds: bool,
    /// The probe client never finishes (for interrupting a run).
    pub probe_client_hangs: bool,
    /// The node agent's DaemonSet pods, by node: how each fares and its log. A node left
    /// out gets a pod that stays Pending (ContainerCreating).
    pub agents: BTreeMap<String, AgentPod>,
    /// The agent's namespace `nfvi-verify` exists already (the harness must leave it).
    pub agent_namespace_exists: bool,
    /// Objects killed runs left (namespaces, DaemonSets, ConfigMaps), served to label-selected
    /// lists.
    pub leftovers: Vec<Value>,
    /// `GET /version`'s gitVersion; `None`: `v1.{minor}.4`.
    pub git_version: Option<String>,
    /// The UID of the kube-system namespace (`GET /api/v1/namespaces/kube-system`).
    pub kube_system_uid: String,
    /// The upstream suites' pods (e2e, kube-bench): how they fare, what they print.
    pub upstream: Script,
    /// The external address the load balancer gives Services of type LoadBalancer; `None`:
    /// no load balancer (they stay pending).
    pub lb_ip: Option<String>,
    /// How long the stand-in backends stay silent after a backend pod is deleted.
    pub lb_failover_gap_ms: u64,
    /// Whether the stand-in backends stand behind the load balancer's address; `false`:
    /// the Service keeps the port asked for, where nothing listens (backends that never
    /// answer).
    pub lb_backends: bool,
    /// The SR-IOV network device plugin's VF pools on the workers, its DaemonSet and an
    /// `sriov` NetworkAttachmentDefinition (`accel.rs`).
    pub sriov: bool,
    /// IngressClasses (name, annotated as the default) and the address the scripted ingress
    /// controller publishes for Ingresses (`None`: it never admits them); own.rs.
    pub ingress_classes: Vec<(String, bool)>,
    pub ingress_ip: Option<String>,
    /// How the cluster treats pods with `hostUsers: false` (userns.rs).
    pub user_namespaces: UserNs,
    /// Whether the pod network enforces NetworkPolicies (netpol.rs).
    pub network_policy: NetPol,
}

impl Spec {
    /// A cluster that meets every check: 3 control-plane nodes in 3 zones with etcd, 3
    /// network-intensive workers, Calico and Multus, dual-stack, NFD.
    pub fn conformant(minor: u32) -> Self {
        Self {
            minor,
            control_planes: 3,
            workers: 3,
            zones: vec!["zone-a".into(), "zone-b".into(), "zone-c".into()],
            kubelet_lag: 0,
            etcd_on_worker: false,
            scheduler_lease_age_secs: Some(3),
            readyz_failing: None,
            extra_group_versions: Vec::new(),
            drop_group_versions: Vec::new(),
            network_policies: true,
            profile_labels: true,
            hugepages: true,
            cpu_manager: "static",
            topology_manager: "single-numa-node",
            reserved_cpus: true,
            cni: Some("calico-node"),
            multus: true,
            nad_crd: true,
            dual_stack: true,
            default_storage_class: true,
            rbac_roles: true,
            anonymous_allowed: false,
            nfd_labels: true,
            not_ready_worker: false,
            worker_prefix: "worker".into(),
            nodes_body: None,
            refuse_all: None,
            forbid_nodes: false,
            probe_log: probe_report(),
            probe_succeeds: true,
            probe_client_hangs: false,
            agents: BTreeMap::new(),
            agent_namespace_exists: false,
            leftovers: Vec::new(),
            git_version: None,
            kube_system_uid: "0b5e3c1a-6f0d-4c1e-9a57-3d2f8e41c7aa".into(),
            upstream: Script::passing(),
            lb_ip: Some("127.0.0.1".into()),
            lb_failover_gap_ms: 300,
            lb_backends: true,
            sriov: true,
            ingress_classes: vec![("nginx".into(), true), ("internal".into(), false)],
            ingress_ip: Some("127.0.0.1".into()),
            user_namespaces: UserNs::Supported,
            network_policy: NetPol::Enforced,
        }
    }
}

/// What `nfvi-verify probe compare --format json` prints for a same-node path around 21.7 µs
/// and a cross-node path around 48.2 µs: per-round medians and p99s, and each path's
/// distribution as 101 quantiles.
fn probe_report() -> String {
    let cdf = |base: f64, spread: f64| -> Vec<f64> {
        (0..=100)
            .map(|i| base + spread * (f64::from(i) / 100.0).powi(3))
            .collect()
    };
    json!({
        "block": 2000,
        "first": "10.244.1.5:7777",
        "second": "10.244.2.7:7777",
        "first_p50_us": [21.5, 21.9, 21.4, 22.0, 21.6, 21.8],
        "second_p50_us": [48.2, 47.9, 48.8, 48.1, 48.5, 47.7],
        "first_p99_us": [35.1, 36.0, 34.8, 35.5, 35.9, 35.2],
        "second_p99_us": [71.0, 69.8, 72.3, 70.4, 71.7, 70.9],
        "first_cdf_us": cdf(18.0, 30.0),
        "second_cdf_us": cdf(42.0, 45.0),
        "lost": [0, 1]
    })
    .to_string()
}

fn status(code: u16, reason: &str, message: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message, "reason": reason, "code": code})
}

fn list(kind: &str, api_version: &str, items: Vec<Value>) -> Value {
    json!({"kind": kind, "apiVersion": api_version, "metadata": {"resourceVersion": "1000"}, "items": items})
}

/// Probe pods created so far, by namespace and name.
pub(crate) type PodStore = Arc<Mutex<BTreeMap<String, Value>>>;

const JSON: &str = "application/json";

/// One request as the server read it.
struct Request<'a> {
    method: &'a str,
    path: &'a str,
    query: &'a str,
    auth: &'a str,
    body: &'a [u8],
}

fn respond(
    req: &Request<'_>,
    docs: &BTreeMap<String, Value>,
    spec: &Spec,
    pods: &PodStore,
) -> (u16, &'static str, String) {
    let Request {
        method,
        path,
        query,
        auth,
        body,
    } = *req;
    let authed = auth == format!("Bearer {TOKEN}");
    if !authed {
        // Anonymous: refused, unless the cluster leaves it open for namespaces.
        if spec.anonymous_allowed && method == "GET" && path == "/api/v1/namespaces" {
            return (200, JSON, docs[path].to_string());
        }
        return (
            401,
            JSON,
            status(401, "Unauthorized", "Unauthorized").to_string(),
        );
    }
    if let Some(code) = spec.refuse_all {
        return (
            code,
            JSON,
            status(code, "Unauthorized", "Unauthorized").to_string(),
        );
    }
    if spec.forbid_nodes && path.starts_with("/api/v1/nodes") {
        return (403, JSON, status(403, "Forbidden", r#"nodes is forbidden: User "system:serviceaccount:ci:viewer" cannot list resource "nodes" in API group "" at the cluster scope"#).to_string());
    }
    if let (true, Some((code, ctype, text))) = (path == "/api/v1/nodes", &spec.nodes_body) {
        return (*code, ctype, text.clone());
    }
    if path == "/readyz" {
        return (200, "text/plain; charset=utf-8", readyz(spec));
    }
    // The probe pods' lifecycle.
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match (method, segs.as_slice()) {
        ("POST", ["api", "v1", "namespaces"]) => {
            let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
            return (201, JSON, v.to_string());
        }
        ("DELETE", ["api", "v1", "namespaces", ns]) => {
            pods.lock()
                .unwrap()
                .retain(|k, _| !k.starts_with(&format!("{ns}/")));
            return (200, JSON, json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}, "status": {"phase": "Terminating"}}).to_string());
        }
        ("POST", ["api", "v1", "namespaces", ns, "pods"]) => {
            let mut v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
            let name = v["metadata"]["name"].as_str().unwrap_or("").to_owned();
            v["metadata"]["namespace"] = json!(ns);
            pods.lock()
                .unwrap()
                .insert(format!("{ns}/{name}"), v.clone());
            return (201, JSON, v.to_string());
        }
        ("GET", ["api", "v1", "namespaces", ns, "pods", name, "log"]) => {
            return match pods.lock().unwrap().get(&format!("{ns}/{name}")) {
                Some(_) if spec.probe_succeeds => (200, "text/plain", spec.probe_log.clone()),
                Some(_) => (
                    200,
                    "text/plain",
                    "error: round 0, peer 10.244.1.5:7777: no reply within 200 ms\n".to_owned(),
                ),
                None => (
                    404,
                    JSON,
                    status(404, "NotFound", "pods not found").to_string(),
                ),
            };
        }
        ("GET", ["api", "v1", "namespaces", ns, "pods", name]) => {
            let mut store = pods.lock().unwrap();
            let Some(p) = store.get_mut(&format!("{ns}/{name}")) else {
                return (
                    404,
                    JSON,
                    status(404, "NotFound", &format!("pods \"{name}\" not found")).to_string(),
                );
            };
            pod_view(p, name, spec);
            return (200, JSON, p.to_string());
        }
        // kube's await_condition: a list and then watches, filtered to one pod by name.
        ("GET", ["api", "v1", "namespaces", ns, "pods"])
            if ns.starts_with("nfvi-verify-probe-") || ns.starts_with("nfvi-verify-net-") =>
        {
            let name = query
                .split('&')
                .find_map(|kv| kv.strip_prefix("fieldSelector=metadata.name%3D"))
                .unwrap_or("")
                .to_owned();
            let pod = {
                let mut store = pods.lock().unwrap();
                store.get_mut(&format!("{ns}/{name}")).map(|p| {
                    pod_view(p, &name, spec);
                    p.clone()
                })
            };
            if query
                .split('&')
                .any(|kv| kv == "watch=true" || kv == "watch=1")
            {
                // One event per watch, then the stream ends and the watcher watches again.
                std::thread::sleep(std::time::Duration::from_millis(300));
                let events = pod
                    .map(|p| format!("{}\n", json!({"type": "MODIFIED", "object": p})))
                    .unwrap_or_default();
                return (200, JSON, events);
            }
            // A pod is still Pending when first listed, as a real one is while it is
            // scheduled and its image pulled: the harness has to watch it.
            let pending = pod.map(|mut p| {
                p["status"] = json!({"phase": "Pending"});
                p
            });
            return (
                200,
                JSON,
                list("PodList", "v1", pending.into_iter().collect()).to_string(),
            );
        }
        _ => {}
    }
    match docs.get(path) {
        Some(v) if method == "GET" => (200, JSON, v.to_string()),
        _ => (
            404,
            JSON,
            status(
                404,
                "NotFound",
                &format!("the server could not find the requested resource ({method} {path})"),
            )
            .to_string(),
        ),
    }
}

/// A probe pod as the API server shows it: responders Running with an IP, clients finished
/// (or still Running when the spec says they hang), Multus' network-status for the networks
/// the pod asked for.
fn pod_view(p: &mut Value, name: &str, spec: &Spec) {
    let ip = if name.contains("other") {
        "10.244.2.7"
    } else {
        "10.244.1.5"
    };
    let phase = match (
        name.starts_with("client"),
        spec.probe_client_hangs,
        spec.probe_succeeds,
    ) {
        (false, _, _) | (true, true, _) => "Running",
        (true, false, true) => "Succeeded",
        (true, false, false) => "Failed",
    };
    let phase = netpol::phase(p, spec).unwrap_or(phase);
    p["metadata"]["resourceVersion"] = json!("2000");
    p["status"] =
        json!({"phase": phase, "podIP": ip, "podIPs": [{"ip": ip}], "hostIP": "192.0.2.4"});
    // Multus reports every attachment, the default network first.
    let requested = p["metadata"]["annotations"]["k8s.v1.cni.cncf.io/networks"]
        .as_str()
        .map(str::to_owned);
    if let Some(nets) = requested {
        let second = if name.contains("other") { 7 } else { 5 };
        let mut status = vec![
            json!({"name": "k8s-pod-network", "interface": "eth0", "ips": [ip], "default": true}),
        ];
        let ns = p["metadata"]["namespace"].as_str().unwrap_or("").to_owned();
        for (i, net) in nets.split(',').enumerate() {
            let ip = own::secondary_address(&ns, net, i, second);
            status.push(json!({"name": net, "interface": format!("net{}", i + 1), "ips": [ip], "mac": "02:00:00:00:00:01"}));
        }
        p["metadata"]["annotations"]["k8s.v1.cni.cncf.io/network-status"] =
            json!(serde_json::to_string(&status).unwrap());
    }
}
