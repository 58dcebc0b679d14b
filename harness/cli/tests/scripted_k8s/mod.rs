//! A scripted Kubernetes API server: it stands in for a cluster, which cannot run on the
//! machines this project is built on. It speaks HTTP/1.1 on loopback and answers the calls
//! the k8s area makes with objects shaped as real API servers (1.29 to 1.33) return them:
//! `/version`, discovery, nodes, the kube-system namespace (its UID) and pods, DaemonSets,
//! CRDs, StorageClasses, Leases, ClusterRoles, kubelet configz, `/readyz`, and the probe
//! pods' lifecycle (create, Running with an IP, Succeeded with a log, namespace deletion),
//! and the node agent's DaemonSet (`agents.rs`: a pod per node with a scripted log). A
//! [`Spec`] describes the cluster; tests break one knob at a time. Every request (and every
//! POSTed body) is logged for assertions; `rbac.rs` checks them against the deploy file's
//! ClusterRole.

#![allow(dead_code)]

mod accel;
mod agents;
mod leftovers;
mod netpol;
mod own;
mod rbac;
mod upstream;
mod userns;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

// Each test file uses its part.
#[allow(unused_imports)]
pub use agents::{AgentPod, AgentState};
#[allow(unused_imports)]
pub use netpol::NetPol;
#[allow(unused_imports)]
pub use rbac::{Access, Grants, access};
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

/// The group versions a default API server of this minor serves, with a few resources each.
fn group_versions(spec: &Spec) -> Vec<(String, String, Vec<&'static str>)> {
    let mut gvs: Vec<(String, String, Vec<&'static str>)> = vec![
        (
            "".into(),
            "v1".into(),
            vec!["namespaces", "nodes", "pods", "services", "configmaps"],
        ),
        (
            "admissionregistration.k8s.io".into(),
            "v1".into(),
            vec!["validatingwebhookconfigurations"],
        ),
        (
            "apiextensions.k8s.io".into(),
            "v1".into(),
            vec!["customresourcedefinitions"],
        ),
        (
            "apps".into(),
            "v1".into(),
            vec!["deployments", "daemonsets", "statefulsets"],
        ),
        (
            "authentication.k8s.io".into(),
            "v1".into(),
            vec!["tokenreviews"],
        ),
        (
            "authorization.k8s.io".into(),
            "v1".into(),
            vec!["subjectaccessreviews"],
        ),
        (
            "autoscaling".into(),
            "v1".into(),
            vec!["horizontalpodautoscalers"],
        ),
        (
            "autoscaling".into(),
            "v2".into(),
            vec!["horizontalpodautoscalers"],
        ),
        ("batch".into(), "v1".into(), vec!["jobs", "cronjobs"]),
        (
            "certificates.k8s.io".into(),
            "v1".into(),
            vec!["certificatesigningrequests"],
        ),
        ("coordination.k8s.io".into(), "v1".into(), vec!["leases"]),
        (
            "discovery.k8s.io".into(),
            "v1".into(),
            vec!["endpointslices"],
        ),
        ("events.k8s.io".into(), "v1".into(), vec!["events"]),
        (
            "flowcontrol.apiserver.k8s.io".into(),
            "v1".into(),
            vec!["flowschemas"],
        ),
        (
            "networking.k8s.io".into(),
            "v1".into(),
            match (spec.network_policies, spec.minor >= 33) {
                (true, true) => vec!["networkpolicies", "ingresses", "servicecidrs"],
                (true, false) => vec!["networkpolicies", "ingresses"],
                (false, true) => vec!["ingresses", "servicecidrs"],
                (false, false) => vec!["ingresses"],
            },
        ),
        ("node.k8s.io".into(), "v1".into(), vec!["runtimeclasses"]),
        ("policy".into(), "v1".into(), vec!["poddisruptionbudgets"]),
        (
            "rbac.authorization.k8s.io".into(),
            "v1".into(),
            vec!["clusterroles", "roles"],
        ),
        (
            "scheduling.k8s.io".into(),
            "v1".into(),
            vec!["priorityclasses"],
        ),
        (
            "storage.k8s.io".into(),
            "v1".into(),
            vec!["storageclasses", "csidrivers"],
        ),
    ];
    // API Priority and Fairness v1beta3 is still served by default up to 1.31.
    if spec.minor <= 31 {
        gvs.push((
            "flowcontrol.apiserver.k8s.io".into(),
            "v1beta3".into(),
            vec!["flowschemas"],
        ));
    }
    if spec.multus && spec.nad_crd {
        gvs.push((
            "k8s.cni.cncf.io".into(),
            "v1".into(),
            vec!["network-attachment-definitions"],
        ));
    }
    if spec.nfd_labels {
        gvs.push((
            "nfd.k8s-sigs.io".into(),
            "v1alpha1".into(),
            vec!["nodefeaturerules"],
        ));
    }
    for (g, v) in &spec.extra_group_versions {
        gvs.push((g.clone(), v.clone(), vec!["things"]));
    }
    gvs.retain(|(g, v, _)| {
        let gv = if g.is_empty() {
            v.clone()
        } else {
            format!("{g}/{v}")
        };
        !spec.drop_group_versions.contains(&gv)
    });
    gvs
}

fn rfc3339(secs_ago: i64) -> String {
    (chrono::Utc::now() - chrono::Duration::seconds(secs_ago.max(0)))
        .format("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string()
}

fn node(spec: &Spec, name: &str, cp: bool, i: usize) -> Value {
    let zone = &spec.zones[i % spec.zones.len()];
    let mut labels = json!({
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
        "topology.kubernetes.io/zone": zone,
    });
    if cp {
        labels["node-role.kubernetes.io/control-plane"] = json!("");
    } else {
        if spec.profile_labels {
            labels["anuket.io/profile/network-intensive"] = json!("true");
        }
        if spec.nfd_labels {
            labels["feature.node.kubernetes.io/cpu-cpuid.AVX512F"] = json!("true");
            labels["feature.node.kubernetes.io/kernel-version.major"] = json!("6");
        }
    }
    let lag = if cp { 0 } else { spec.kubelet_lag };
    let kubelet = format!("v1.{}.4", spec.minor - lag);
    let n = i as u32 + 1;
    let (cidrs, addrs) = if spec.dual_stack {
        (
            json!([format!("10.244.{n}.0/24"), format!("fd00:10:244:{n}::/64")]),
            json!([{"type": "InternalIP", "address": format!("192.0.2.{n}")}, {"type": "InternalIP", "address": format!("2001:db8::{n}")}, {"type": "Hostname", "address": name}]),
        )
    } else {
        (
            json!([format!("10.244.{n}.0/24")]),
            json!([{"type": "InternalIP", "address": format!("192.0.2.{n}")}, {"type": "Hostname", "address": name}]),
        )
    };
    let mut allocatable =
        json!({"cpu": "63", "memory": "257000000Ki", "pods": "110", "ephemeral-storage": "400Gi"});
    if spec.hugepages && !cp {
        allocatable["hugepages-2Mi"] = json!("2Gi");
        allocatable["hugepages-1Gi"] = json!("16Gi");
    } else {
        allocatable["hugepages-2Mi"] = json!("0");
        allocatable["hugepages-1Gi"] = json!("0");
    }
    let ready = !(spec.not_ready_worker && !cp && i == spec.control_planes);
    json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "uid": format!("uid-{name}"), "labels": labels, "creationTimestamp": rfc3339(86_400)},
        "spec": {"podCIDR": cidrs[0], "podCIDRs": cidrs, "taints": if cp { json!([{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}]) } else { json!([]) }},
        "status": {
            "capacity": {"cpu": "64", "memory": "263000000Ki", "pods": "110"},
            "allocatable": allocatable,
            "conditions": [
                {"type": "MemoryPressure", "status": "False", "lastHeartbeatTime": rfc3339(10), "lastTransitionTime": rfc3339(86_000), "reason": "KubeletHasSufficientMemory", "message": "ok"},
                {"type": "Ready", "status": if ready { "True" } else { "False" }, "lastHeartbeatTime": rfc3339(10), "lastTransitionTime": rfc3339(86_000), "reason": if ready { "KubeletReady" } else { "KubeletNotReady" }, "message": "kubelet is posting ready status"}
            ],
            "addresses": addrs,
            "nodeInfo": {"machineID": "m", "systemUUID": "s", "bootID": "b", "kernelVersion": "6.1.0-28-amd64", "osImage": "Debian GNU/Linux 12 (bookworm)", "containerRuntimeVersion": "containerd://1.7.24", "kubeletVersion": kubelet, "kubeProxyVersion": kubelet, "operatingSystem": "linux", "architecture": "amd64"}
        }
    })
}

/// Node names: control-plane-0.., then workers.
pub fn node_names(spec: &Spec) -> Vec<(String, bool)> {
    (0..spec.control_planes)
        .map(|i| (format!("control-plane-{i}"), true))
        .chain((0..spec.workers).map(|i| (format!("{}-{i}", spec.worker_prefix), false)))
        .collect()
}

fn documents(spec: &Spec) -> BTreeMap<String, Value> {
    let mut d = BTreeMap::new();
    let git = spec
        .git_version
        .clone()
        .unwrap_or_else(|| format!("v1.{}.4", spec.minor));
    d.insert("/version".into(), json!({"major": "1", "minor": spec.minor.to_string(), "gitVersion": git, "gitCommit": "0123456789abcdef", "gitTreeState": "clean", "buildDate": "2025-05-15T08:00:00Z", "goVersion": "go1.24.2", "compiler": "gc", "platform": "linux/amd64"}));
    let gvs = group_versions(spec);
    d.insert("/api".into(), json!({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "192.0.2.1:6443"}]}));
    let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (g, v, resources) in &gvs {
        let gv = if g.is_empty() {
            v.clone()
        } else {
            format!("{g}/{v}")
        };
        let path = if g.is_empty() {
            format!("/api/{v}")
        } else {
            format!("/apis/{gv}")
        };
        let res: Vec<Value> = resources
            .iter()
            .map(|r| json!({"name": r, "singularName": "", "namespaced": true, "kind": "Thing", "verbs": ["get", "list"]}))
            .chain(std::iter::once(json!({"name": format!("{}/status", resources[0]), "singularName": "", "namespaced": true, "kind": "Thing", "verbs": ["get"]})))
            .collect();
        d.insert(path, json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": res}));
        if !g.is_empty() {
            groups.entry(g.clone()).or_default().push(v.clone());
        }
    }
    let group_list: Vec<Value> = groups
        .iter()
        .map(|(g, vs)| {
            let versions: Vec<Value> = vs
                .iter()
                .map(|v| json!({"groupVersion": format!("{g}/{v}"), "version": v}))
                .collect();
            json!({"name": g, "versions": versions, "preferredVersion": versions[0]})
        })
        .collect();
    d.insert(
        "/apis".into(),
        json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": group_list}),
    );

    let names = node_names(spec);
    let nodes: Vec<Value> = names
        .iter()
        .enumerate()
        .map(|(i, (n, cp))| node(spec, n, *cp, i))
        .collect();
    d.insert("/api/v1/nodes".into(), list("NodeList", "v1", nodes));
    for (n, cp) in &names {
        let kubelet = if *cp {
            json!({"cpuManagerPolicy": "none", "topologyManagerPolicy": "none"})
        } else {
            let mut k = json!({"cpuManagerPolicy": spec.cpu_manager, "topologyManagerPolicy": spec.topology_manager, "cgroupDriver": "systemd"});
            if spec.reserved_cpus {
                k["reservedSystemCPUs"] = json!("0-1");
            }
            // The kubelet leaves defaults out of configz.
            if spec.cpu_manager == "none" {
                k.as_object_mut().unwrap().remove("cpuManagerPolicy");
            }
            k
        };
        d.insert(
            format!("/api/v1/nodes/{n}/proxy/configz"),
            json!({"kubeletconfig": kubelet}),
        );
    }
    let mut pods = Vec::new();
    let workers: Vec<&String> = names.iter().filter(|(_, cp)| !cp).map(|(n, _)| n).collect();
    for (i, (n, _)) in names.iter().filter(|(_, cp)| *cp).enumerate() {
        let on = if spec.etcd_on_worker && i == 0 {
            workers[0].clone()
        } else {
            n.clone()
        };
        pods.push(json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": format!("etcd-{on}"), "namespace": "kube-system", "labels": {"component": "etcd", "tier": "control-plane"}}, "spec": {"nodeName": on, "containers": [{"name": "etcd", "image": "registry.k8s.io/etcd:3.5.21-0"}]}, "status": {"phase": "Running"}}));
        pods.push(json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": format!("kube-apiserver-{n}"), "namespace": "kube-system", "labels": {"component": "kube-apiserver", "tier": "control-plane"}}, "spec": {"nodeName": n, "containers": [{"name": "kube-apiserver", "image": "registry.k8s.io/kube-apiserver"}]}, "status": {"phase": "Running"}}));
    }
    d.insert(
        "/api/v1/namespaces/kube-system/pods".into(),
        list("PodList", "v1", pods),
    );
    let mut ds = Vec::new();
    let mk_ds = |name: &str, ns: &str| json!({"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": name, "namespace": ns}, "spec": {"selector": {"matchLabels": {"k8s-app": name}}, "template": {"metadata": {"labels": {"k8s-app": name}}, "spec": {"containers": [{"name": name, "image": format!("example/{name}")}]}}}, "status": {"currentNumberScheduled": names.len(), "desiredNumberScheduled": names.len(), "numberMisscheduled": 0, "numberReady": names.len()}});
    ds.push(mk_ds("kube-proxy", "kube-system"));
    if let Some(cni) = spec.cni {
        ds.push(mk_ds(cni, "kube-system"));
    }
    if spec.multus {
        ds.push(mk_ds("kube-multus-ds", "kube-system"));
    }
    if spec.nfd_labels {
        ds.push(mk_ds("nfd-worker", "node-feature-discovery"));
    }
    d.insert(
        "/apis/apps/v1/daemonsets".into(),
        list("DaemonSetList", "apps/v1", ds),
    );
    let mut crds = Vec::new();
    let mk_crd = |name: &str, group: &str, plural: &str, version: &str| json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition", "metadata": {"name": name}, "spec": {"group": group, "names": {"plural": plural, "kind": "Thing"}, "scope": "Namespaced", "versions": [{"name": version, "served": true, "storage": true}]}});
    if spec.multus && spec.nad_crd {
        crds.push(mk_crd(
            "network-attachment-definitions.k8s.cni.cncf.io",
            "k8s.cni.cncf.io",
            "network-attachment-definitions",
            "v1",
        ));
    }
    if spec.nfd_labels {
        crds.push(mk_crd(
            "nodefeaturerules.nfd.k8s-sigs.io",
            "nfd.k8s-sigs.io",
            "nodefeaturerules",
            "v1alpha1",
        ));
    }
    d.insert(
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions".into(),
        list(
            "CustomResourceDefinitionList",
            "apiextensions.k8s.io/v1",
            crds,
        ),
    );
    let mut classes = vec![
        json!({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": "local-path"}, "provisioner": "rancher.io/local-path", "reclaimPolicy": "Delete", "volumeBindingMode": "WaitForFirstConsumer"}),
    ];
    if spec.default_storage_class {
        classes.push(json!({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": "ceph-rbd", "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}}, "provisioner": "rbd.csi.ceph.com", "reclaimPolicy": "Delete"}));
    }
    d.insert(
        "/apis/storage.k8s.io/v1/storageclasses".into(),
        list("StorageClassList", "storage.k8s.io/v1", classes),
    );
    let mut leases = vec![
        json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "kube-controller-manager", "namespace": "kube-system"}, "spec": {"holderIdentity": "control-plane-0_1a2b", "leaseDurationSeconds": 15, "acquireTime": rfc3339(80_000), "renewTime": rfc3339(2), "leaseTransitions": 3}}),
    ];
    if let Some(age) = spec.scheduler_lease_age_secs {
        leases.push(json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "kube-scheduler", "namespace": "kube-system"}, "spec": {"holderIdentity": "control-plane-1_3c4d", "leaseDurationSeconds": 15, "acquireTime": rfc3339(80_000), "renewTime": rfc3339(age), "leaseTransitions": 2}}));
    }
    d.insert(
        "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases".into(),
        list("LeaseList", "coordination.k8s.io/v1", leases),
    );
    let mut roles = vec![
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "view"}, "rules": []}),
    ];
    if spec.rbac_roles {
        for r in ["cluster-admin", "system:basic-user", "system:discovery"] {
            roles.push(json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": r}, "rules": []}));
        }
    }
    d.insert(
        "/apis/rbac.authorization.k8s.io/v1/clusterroles".into(),
        list("ClusterRoleList", "rbac.authorization.k8s.io/v1", roles),
    );
    d.insert(
        "/api/v1/namespaces/kube-system".into(),
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "kube-system", "uid": spec.kube_system_uid, "resourceVersion": "4", "creationTimestamp": rfc3339(86_400), "labels": {"kubernetes.io/metadata.name": "kube-system"}}, "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}),
    );
    d.insert(
        "/api/v1/namespaces/default/services/kubernetes".into(),
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "kubernetes", "namespace": "default"}, "spec": {"type": "ClusterIP", "clusterIP": "10.96.0.1", "clusterIPs": ["10.96.0.1"], "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": 6443}]}}),
    );
    d.insert(
        "/apis/networking.k8s.io/v1/servicecidrs".into(),
        list("ServiceCIDRList", "networking.k8s.io/v1", vec![json!({"apiVersion": "networking.k8s.io/v1", "kind": "ServiceCIDR", "metadata": {"name": "kubernetes"}, "spec": {"cidrs": ["10.96.0.0/12"]}})]),
    );
    d.insert(
        "/api/v1/namespaces".into(),
        list(
            "NamespaceList",
            "v1",
            vec![json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "default"}})],
        ),
    );
    accel::documents(spec, &mut d);
    d
}

fn readyz(spec: &Spec) -> String {
    let mut s = String::from("[+]ping ok\n[+]log ok\n");
    match &spec.readyz_failing {
        Some(c) => s.push_str(&format!("[-]{c} failed: reason withheld\nreadyz check failed\n")),
        None => s.push_str("[+]etcd ok\n[+]informer-sync ok\n[+]poststarthook/start-apiextensions-controllers ok\nreadyz check passed\n"),
    }
    s
}

/// A running scripted server.
pub struct Server {
    pub port: u16,
    /// The UDP port of the load balancer's stand-in backends on 127.0.0.1 (0: none).
    pub lb_port: u16,
    pub log: Arc<Mutex<Vec<String>>>,
    /// The body of every POST, by path.
    pub posted: Arc<Mutex<Vec<(String, Value)>>>,
}

/// Probe pods created so far, by namespace and name.
pub(crate) type PodStore = Arc<Mutex<BTreeMap<String, Value>>>;

impl Server {
    /// Starts answering as `spec` describes.
    pub fn start(spec: Spec) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let log = Arc::new(Mutex::new(Vec::new()));
        let docs = Arc::new(documents(&spec));
        let spec = Arc::new(spec);
        let pods: PodStore = Arc::default();
        let agents: agents::Agents = Arc::default();
        let posted: Posted = Arc::default();
        let upstream: upstream::Upstream = Arc::default();
        let lb = Arc::new(spec.lb_ip.as_ref().map(|_| own::LbResponder::start()));
        let lb_port = lb.as_ref().as_ref().map_or(0, |r| r.port);
        let services: own::Services = Arc::default();
        let (l, b) = (log.clone(), posted.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let (docs, spec, log, pods) = (docs.clone(), spec.clone(), l.clone(), pods.clone());
                let (agents, posted, upstream) = (agents.clone(), b.clone(), upstream.clone());
                let (services, lb) = (services.clone(), lb.clone());
                std::thread::spawn(move || {
                    let stores = Stores {
                        pods: &pods,
                        agents: &agents,
                        posted: &posted,
                        upstream: &upstream,
                        services: &services,
                        lb: lb.as_ref().as_ref(),
                    };
                    serve_conn(conn, &docs, &spec, &log, &stores)
                });
            }
        });
        Self {
            port,
            lb_port,
            log,
            posted,
        }
    }

    /// Requests seen, as `METHOD /path?query`.
    pub fn requests(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// The bodies POSTed to paths ending in `suffix` (`/daemonsets`).
    pub fn posted(&self, suffix: &str) -> Vec<Value> {
        self.posted
            .lock()
            .unwrap()
            .iter()
            .filter(|(p, _)| p.ends_with(suffix))
            .map(|(_, v)| v.clone())
            .collect()
    }
}

type Posted = Arc<Mutex<Vec<(String, Value)>>>;

/// What the server keeps between requests.
struct Stores<'a> {
    pods: &'a PodStore,
    agents: &'a agents::Agents,
    posted: &'a Posted,
    upstream: &'a upstream::Upstream,
    services: &'a own::Services,
    lb: Option<&'a own::LbResponder>,
}

fn serve_conn(
    conn: TcpStream,
    docs: &BTreeMap<String, Value>,
    spec: &Spec,
    log: &Mutex<Vec<String>>,
    stores: &Stores<'_>,
) {
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut out = conn;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let (method, target) = (
            parts.next().unwrap_or("").to_owned(),
            parts.next().unwrap_or("").to_owned(),
        );
        let mut length = 0usize;
        let mut auth = String::new();
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                match k.to_ascii_lowercase().as_str() {
                    "content-length" => length = v.trim().parse().unwrap_or(0),
                    "authorization" => auth = v.trim().to_owned(),
                    _ => {}
                }
            }
        }
        let mut body = vec![0u8; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        log.lock().unwrap().push(format!("{method} {target}"));
        let path = target.split('?').next().unwrap_or("").to_owned();
        if method == "POST" {
            let v = serde_json::from_slice(&body).unwrap_or(Value::Null);
            stores.posted.lock().unwrap().push((path.clone(), v));
        }
        let query = target.split_once('?').map_or("", |(_, q)| q).to_owned();
        let req = Request {
            method: &method,
            path: &path,
            query: &query,
            auth: &auth,
            body: &body,
        };
        let answer = leftovers::respond(&req, spec)
            .or_else(|| {
                (auth == format!("Bearer {TOKEN}"))
                    .then(|| {
                        own::respond(&req, spec, stores.pods, stores.services, stores.lb)
                            .or_else(|| userns::respond(&req, spec, stores.pods))
                            .or_else(|| netpol::respond(&req, spec, stores.pods))
                    })
                    .flatten()
            })
            .or_else(|| upstream::respond(&req, spec, stores.upstream))
            .or_else(|| agents::respond(&req, spec, stores.agents));
        let (code, ctype, text) = match answer {
            Some(answer) => answer,
            None => {
                let (code, ctype, text) = respond(&req, docs, spec, stores.pods);
                (code, ctype, text.into_bytes())
            }
        };
        let head = format!(
            "HTTP/1.1 {code} X\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nAudit-Id: scripted\r\n\r\n",
            text.len()
        );
        if out
            .write_all(head.as_bytes())
            .and_then(|()| out.write_all(&text))
            .is_err()
        {
            return;
        }
    }
}

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

/// A kubeconfig for a server on loopback with `token`.
pub fn kubeconfig(dir: &std::path::Path, port: u16, token: &str) -> std::path::PathBuf {
    let path = dir.join("kubeconfig");
    std::fs::write(
        &path,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: scripted\n  cluster:\n    server: http://127.0.0.1:{port}\ncontexts:\n- name: scripted\n  context:\n    cluster: scripted\n    user: nfvi-verify\ncurrent-context: scripted\nusers:\n- name: nfvi-verify\n  user:\n    token: {token}\n"
        ),
    )
    .unwrap();
    path
}
