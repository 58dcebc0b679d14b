//! The acceleration parts of a scripted cluster ([`Spec`]'s `sriov`), for
//! `harness/cli/tests/k8s_accel.rs`: with it, every worker advertises the SR-IOV network
//! device plugin's VF pools (`intel.com/intel_sriov_netdevice`, `intel.com/intel_sriov_dpdk`)
//! in its allocatable resources, the plugin's DaemonSet runs in kube-system (labelled
//! `app=sriovdp`, as its deployment manifest labels it), and an `sriov` attachment exists;
//! with Multus and its CRD, the NetworkAttachmentDefinitions are listed (a macvlan one
//! always). No device or plugin runs: these are the objects a cluster with them shows.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::{Spec, list};

/// The NetworkAttachmentDefinition list path (all namespaces).
pub const NADS: &str = "/apis/k8s.cni.cncf.io/v1/network-attachment-definitions";

fn nad(ns: &str, name: &str, config: Value, resource: Option<&str>) -> Value {
    let mut meta = json!({"name": name, "namespace": ns, "uid": format!("uid-nad-{name}"), "resourceVersion": "300"});
    if let Some(r) = resource {
        meta["annotations"] = json!({"k8s.v1.cni.cncf.io/resourceName": r});
    }
    json!({"apiVersion": "k8s.cni.cncf.io/v1", "kind": "NetworkAttachmentDefinition", "metadata": meta, "spec": {"config": config.to_string()}})
}

/// Adds what `spec` says to the server's documents.
pub(super) fn documents(spec: &Spec, d: &mut BTreeMap<String, Value>) {
    if spec.sriov {
        if let Some(items) = d
            .get_mut("/api/v1/nodes")
            .and_then(|l| l["items"].as_array_mut())
        {
            for n in items.iter_mut().filter(|n| {
                n["metadata"]["labels"]["node-role.kubernetes.io/control-plane"].is_null()
            }) {
                let a = &mut n["status"]["allocatable"];
                a["intel.com/intel_sriov_netdevice"] = json!("8");
                a["intel.com/intel_sriov_dpdk"] = json!("4");
            }
        }
        let workers = spec.workers;
        if let Some(items) = d
            .get_mut("/apis/apps/v1/daemonsets")
            .and_then(|l| l["items"].as_array_mut())
        {
            items.push(json!({"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "kube-sriov-device-plugin-amd64", "namespace": "kube-system", "labels": {"tier": "node", "app": "sriovdp"}}, "spec": {"selector": {"matchLabels": {"name": "sriov-device-plugin"}}, "template": {"metadata": {"labels": {"name": "sriov-device-plugin", "app": "sriovdp"}}, "spec": {"containers": [{"name": "kube-sriovdp", "image": "ghcr.io/k8snetworkplumbingwg/sriov-network-device-plugin:latest-amd64"}]}}}, "status": {"currentNumberScheduled": workers, "desiredNumberScheduled": workers, "numberMisscheduled": 0, "numberReady": workers}}));
        }
    }
    if spec.multus && spec.nad_crd {
        let mut nads = vec![nad(
            "default",
            "macvlan-net",
            json!({"cniVersion": "1.0.0", "name": "macvlan-net", "plugins": [{"type": "macvlan", "master": "eth1", "mode": "bridge", "ipam": {"type": "whereabouts", "range": "198.18.61.0/24"}}, {"type": "tuning"}]}),
            None,
        )];
        if spec.sriov {
            nads.push(nad(
                "cnf",
                "sriov-net",
                json!({"cniVersion": "1.0.0", "name": "sriov-net", "type": "sriov", "vlan": 100, "spoofchk": "on", "ipam": {"type": "whereabouts", "range": "198.18.62.0/24"}}),
                Some("intel.com/intel_sriov_netdevice"),
            ));
        }
        d.insert(
            NADS.into(),
            list(
                "NetworkAttachmentDefinitionList",
                "k8s.cni.cncf.io/v1",
                nads,
            ),
        );
    }
}
