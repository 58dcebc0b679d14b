//! Kubernetes inputs: kubeconfig files (through kube's loader, merged as kubectl merges
//! `KUBECONFIG`), and the API answers the judges read (nodes, version, leases, pods with
//! Multus network-status, kubelet configz, discovery, CRDs, DaemonSets, storage classes).

use nfvi_fuzz::proptest::prelude::*;
use nfvi_fuzz::{config, json, seeds, text};
use nfvi_suite_k8s::cluster::KubeconfigFiles;
use nfvi_suite_k8s::fuzzing as k8s;
use serde_json::json as j;

const KUBECONFIG: &str = "apiVersion: v1\nkind: Config\ncurrent-context: lab\nclusters:\n- name: lab\n  cluster:\n    server: https://198.18.0.10:6443\n    certificate-authority: ca.crt\n    insecure-skip-tls-verify: false\ncontexts:\n- name: lab\n  context:\n    cluster: lab\n    user: admin\n    namespace: default\nusers:\n- name: admin\n  user:\n    token: abc\n    client-certificate: ../admin.crt\n";

fn node(name: &str) -> serde_json::Value {
    j!({
        "metadata": {"name": name, "labels": {"node-role.kubernetes.io/control-plane": "", "topology.kubernetes.io/zone": "z1", "feature.node.kubernetes.io/cpu-cpuid.AVX2": "true"}},
        "spec": {"podCIDRs": ["10.244.0.0/24", "fd00:10:244::/64"]},
        "status": {
            "conditions": [{"type": "Ready", "status": "True"}],
            "nodeInfo": {"kubeletVersion": "v1.33.1", "architecture": "amd64", "bootID": "", "containerRuntimeVersion": "containerd://1.7", "kernelVersion": "6.1", "kubeProxyVersion": "v1.33.1", "machineID": "", "operatingSystem": "linux", "osImage": "Debian", "systemUUID": ""},
            "allocatable": {"hugepages-2Mi": "1Gi", "hugepages-1Gi": "0", "cpu": "4"},
            "addresses": [{"type": "InternalIP", "address": "198.18.0.11"}, {"type": "InternalIP", "address": "fd00::11"}]
        }
    })
}

fn answers() -> serde_json::Value {
    j!({
        "nodes": [node("n1"), node("n2")],
        "version": {"major": "1", "minor": "33+", "gitVersion": "v1.33.1-eks-1", "gitCommit": "", "gitTreeState": "", "buildDate": "", "goVersion": "", "compiler": "", "platform": ""},
        "leases": [{"metadata": {"name": "kube-controller-manager", "namespace": "kube-system"}, "spec": {"holderIdentity": "n1_x", "renewTime": "2025-01-01T00:00:00.000000Z", "leaseDurationSeconds": 15}}],
        "pods": [{"metadata": {"name": "etcd-n1", "namespace": "kube-system", "labels": {"component": "etcd"}, "annotations": {"k8s.v1.cni.cncf.io/network-status": "[{\"name\":\"default/macvlan\",\"ips\":[\"198.18.5.3\",\"fd00::3\"]}]"}}, "spec": {"nodeName": "n1", "containers": []}, "status": {"phase": "Running"}}],
        "configs": {"n1": {"kubeletconfig": {"cpuManagerPolicy": "static", "reservedSystemCPUs": "0-1,3"}}},
        "readyz": "[+]ping ok\n[+]etcd ok\nreadyz check passed\n",
        "now": 1_735_689_600
    })
}

fn discovery() -> serde_json::Value {
    j!({
        "discovery": [{"group": "", "version": "v1", "resources": ["pods", "nodes"]}, {"group": "networking.k8s.io", "version": "v1", "resources": ["networkpolicies"]}, {"group": "x.io", "version": "v1alpha1", "resources": ["things"]}],
        "crds": [{"metadata": {"name": "network-attachment-definitions.k8s.cni.cncf.io"}, "spec": {"group": "k8s.cni.cncf.io", "names": {"kind": "NetworkAttachmentDefinition", "plural": "network-attachment-definitions"}, "scope": "Namespaced", "versions": [{"name": "v1", "served": true, "storage": true}]}}],
        "daemonsets": [{"metadata": {"name": "kube-multus-ds", "namespace": "kube-system"}, "spec": {"selector": {}, "template": {"spec": {"containers": [{"name": "c", "image": "ghcr.io/k8snetworkplumbingwg/multus-cni:v4"}]}}}}],
        "classes": [{"metadata": {"name": "standard", "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}}, "provisioner": "x"}],
        "cluster_roles": ["cluster-admin", "view"]
    })
}

proptest! {
    // Deserialising typed Kubernetes objects in a debug build is slow: fewer cases.
    #![proptest_config(config(128))]

    /// API answers: any node of real-looking answers replaced by any JSON value, then every
    /// judge that reads them.
    #[test]
    fn fuzz_k8s_api_answers(v in json(vec![answers()])) {
        let _ = k8s::judge_answers(&v);
    }

    #[test]
    fn fuzz_k8s_discovery(v in json(vec![discovery()])) {
        let _ = k8s::judge_discovery(&v);
    }

    /// The network-status annotation alone, as text.
    #[test]
    fn fuzz_multus_network_status(t in text(seeds(&[
        "[{\"name\":\"default/macvlan\",\"interface\":\"net1\",\"ips\":[\"198.18.5.3\",\"fd00::3\"],\"mac\":\"0a:58:0a:01:02:03\",\"default\":false}]",
    ]))) {
        let mut a = answers();
        a["pods"][0]["metadata"]["annotations"]["k8s.v1.cni.cncf.io/network-status"] = t.into();
        let _ = k8s::judge_answers(&a);
    }
}

proptest! {
    // One file write and a YAML parse per case.
    #![proptest_config(config(64))]

    /// kubeconfig files: one mutated file merged after a valid one and alone; an error
    /// names the file, never panics.
    #[test]
    fn fuzz_kubeconfig(t in text(seeds(&[KUBECONFIG]))) {
        let dir = tempfile::tempdir().expect("scratch dir");
        let good = dir.path().join("good");
        let bad = dir.path().join("bad");
        std::fs::write(&good, KUBECONFIG).expect("write");
        std::fs::write(&bad, &t).expect("write");
        let env = std::env::join_paths([&bad, &good]).expect("paths");
        let files = KubeconfigFiles::locate(None, Some(&env), None, |p| p.exists()).expect("both exist");
        if let Err(e) = files.load() {
            prop_assert!(e.contains("cannot use kubeconfig"), "{e}");
        }
        let env = std::env::join_paths([&good, &bad]).expect("paths");
        let _ = KubeconfigFiles::locate(None, Some(&env), None, |p| p.exists()).expect("both exist").load();
    }
}
