//! The scripted cluster's fixed objects, built once from the [`Spec`] when the server starts:
//! `/version`, API discovery (the group versions a default API server of the minor serves),
//! the nodes and their kubelet configz, the kube-system namespace, pods and Leases,
//! DaemonSets, CRDs, StorageClasses, ClusterRoles, Services and ServiceCIDRs (with the
//! accelerator objects of `accel.rs`), and the `/readyz` report.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::{Spec, accel, list};

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

pub(super) fn rfc3339(secs_ago: i64) -> String {
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

pub(super) fn documents(spec: &Spec) -> BTreeMap<String, Value> {
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

pub(super) fn readyz(spec: &Spec) -> String {
    let mut s = String::from("[+]ping ok\n[+]log ok\n");
    match &spec.readyz_failing {
        Some(c) => s.push_str(&format!("[-]{c} failed: reason withheld\nreadyz check failed\n")),
        None => s.push_str("[+]etcd ok\n[+]informer-sync ok\n[+]poststarthook/start-apiextensions-controllers ok\nreadyz check passed\n"),
    }
    s
}
