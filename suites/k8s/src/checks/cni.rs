//! The pod network: the CNI plugin, a CNI multiplexer with its CRD, dual stack.

use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::Node;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use nfvi_harness::Outcome;

use super::{fail_with, name_of, name_of_meta};

/// DaemonSet names of pod network (CNI) plugins, as their manifests name them.
pub const CNI_DAEMONSETS: &[(&str, &str)] = &[
    ("calico-node", "Calico"),
    ("cilium", "Cilium"),
    ("kube-flannel-ds", "Flannel"),
    ("kube-flannel", "Flannel"),
    ("canal", "Canal"),
    ("weave-net", "Weave Net"),
    ("antrea-agent", "Antrea"),
    ("kube-ovn-cni", "Kube-OVN"),
    ("ovnkube-node", "OVN-Kubernetes"),
    ("kube-router", "kube-router"),
    ("aws-node", "Amazon VPC CNI"),
    ("kindnet", "kindnet"),
];

/// DaemonSet name fragments of CNI multiplexers.
pub const MULTIPLEXERS: &[&str] = &["multus", "danm"];

const NAD_CRD: &str = "network-attachment-definitions.k8s.cni.cncf.io";

fn ds_name(d: &DaemonSet) -> String {
    name_of_meta(&d.metadata)
}

/// ra2.ntw.002: a known CNI plugin's DaemonSet runs. Without one, the question stays open
/// (an unknown plugin is possible), and the DaemonSets are listed for the reviewer.
pub(crate) fn cni(daemonsets: &[DaemonSet]) -> Outcome {
    let found: Vec<String> = daemonsets
        .iter()
        .filter_map(|d| {
            let name = ds_name(d);
            CNI_DAEMONSETS
                .iter()
                .find(|(n, _)| name == *n)
                .map(|(_, plugin)| {
                    let ready = d.status.as_ref().map_or(0, |s| s.number_ready);
                    let want = d.status.as_ref().map_or(0, |s| s.desired_number_scheduled);
                    format!(
                        "{plugin} ({}/{name}, {ready}/{want} ready)",
                        d.metadata.namespace.clone().unwrap_or_default()
                    )
                })
        })
        .collect();
    if found.is_empty() {
        Outcome::error(format!(
            "no DaemonSet of a known CNI plugin ({}); cannot tell which plugin implements the pod network. DaemonSets: {}",
            CNI_DAEMONSETS
                .iter()
                .map(|(n, _)| *n)
                .collect::<Vec<_>>()
                .join(", "),
            daemonsets
                .iter()
                .map(ds_name)
                .collect::<Vec<_>>()
                .join(", ")
        ))
    } else {
        Outcome::pass(format!("the pod network is {}", found.join("; ")))
    }
}

/// ra2.ntw.016 (conditional): when a multiplexer runs, the NetworkAttachmentDefinition CRD is
/// served at v1.
pub(crate) fn multiplexer(daemonsets: &[DaemonSet], crds: &[CustomResourceDefinition]) -> Outcome {
    let mux: Vec<String> = daemonsets
        .iter()
        .map(ds_name)
        .filter(|n| MULTIPLEXERS.iter().any(|m| n.contains(m)))
        .collect();
    if mux.is_empty() {
        return Outcome::not_applicable(
            "no CNI multiplexer (Multus, DANM) runs; ra2.ntw.016 applies only with one",
        );
    }
    let crd = crds
        .iter()
        .find(|c| c.metadata.name.as_deref() == Some(NAD_CRD));
    let v1 = crd.is_some_and(|c| c.spec.versions.iter().any(|v| v.name == "v1" && v.served));
    let o = match (crd, v1) {
        (Some(_), true) => Outcome::pass(format!(
            "{} runs and {NAD_CRD} is served at v1",
            mux.join(", ")
        )),
        (Some(_), false) => Outcome::fail(format!("{NAD_CRD} exists but does not serve v1")),
        (None, _) => Outcome::fail(format!(
            "{} runs but the {NAD_CRD} CRD is missing",
            mux.join(", ")
        )),
    };
    o.with_property("multiplexer", mux.join(", "))
}

/// ra2.k8s.010 / inf.ntw.04: every node has pod ranges (else InternalIPs) of both families.
pub(crate) fn dual_stack(nodes: &[Node]) -> Outcome {
    if nodes.is_empty() {
        return Outcome::fail("the cluster lists no node");
    }
    let mut o = Outcome::pass("");
    let mut single = Vec::new();
    for n in nodes {
        let cidrs = n
            .spec
            .as_ref()
            .and_then(|s| s.pod_cidrs.clone())
            .unwrap_or_default();
        let (what, items) = if cidrs.is_empty() {
            let addrs: Vec<String> = n
                .status
                .as_ref()
                .and_then(|s| s.addresses.clone())
                .unwrap_or_default()
                .into_iter()
                .filter(|a| a.type_ == "InternalIP")
                .map(|a| a.address)
                .collect();
            ("InternalIPs", addrs)
        } else {
            ("podCIDRs", cidrs)
        };
        let v6 = items.iter().any(|c| c.contains(':'));
        let v4 = items.iter().any(|c| c.contains('.') && !c.contains(':'));
        o = o.with_property(name_of(n), format!("{what}: {}", items.join(", ")));
        if !(v4 && v6) {
            single.push(format!("{} ({what}: {})", name_of(n), items.join(", ")));
        }
    }
    if single.is_empty() {
        o.message = format!("all {} nodes are dual-stack", nodes.len());
        o
    } else {
        fail_with(
            Outcome::fail(format!(
                "nodes without both IPv4 and IPv6: {}",
                single.join("; ")
            )),
            o,
        )
    }
}
