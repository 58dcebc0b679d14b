//! What the API shows about the pod network solution itself: that it is deployed and
//! configured as Kubernetes objects (its DaemonSet, its CRDs), and that the address pools of
//! the nodes (the infrastructure), the pods (the tenants) and the Services are apart. Read-only;
//! each judge is a pure function of the objects read, table-tested below.

use std::sync::Arc;
use std::time::Duration;

use ipnet::IpNet;
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{Node, Service};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::Api;
use nfvi_harness::{Check, CheckContext, CheckMeta, CheckResult, Outcome, Severity, declare};
use nfvi_reference_model::Area;
use serde_json::Value;

use crate::cluster::{self, Cluster};

/// Name fragments of the DaemonSets of pod network solutions (and of the multiplexers and
/// IPAM daemons that come with them), with the solution's name.
pub const SOLUTIONS: &[(&str, &str)] = &[
    ("calico", "Calico"),
    ("cilium", "Cilium"),
    ("flannel", "Flannel"),
    ("canal", "Canal"),
    ("kube-router", "kube-router"),
    ("antrea", "Antrea"),
    ("weave", "Weave Net"),
    ("ovn", "OVN-Kubernetes / Kube-OVN"),
    ("kindnet", "kindnet"),
    ("aws-node", "Amazon VPC CNI"),
    ("multus", "Multus"),
    ("whereabouts", "Whereabouts"),
    ("sriov", "SR-IOV network operator"),
];

/// API groups of the custom resources through which these solutions are configured.
pub const SOLUTION_GROUPS: &[(&str, &str)] = &[
    ("crd.projectcalico.org", "Calico"),
    ("projectcalico.org", "Calico"),
    ("operator.tigera.io", "Calico (Tigera operator)"),
    ("cilium.io", "Cilium"),
    ("crd.antrea.io", "Antrea"),
    ("kubeovn.io", "Kube-OVN"),
    ("k8s.ovn.org", "OVN-Kubernetes"),
    ("k8s.cni.cncf.io", "Network Plumbing WG (Multus)"),
    ("whereabouts.cni.cncf.io", "Whereabouts"),
    ("sriovnetwork.openshift.io", "SR-IOV network operator"),
];

#[track_caller]
fn meta(id: &str, title: &str, covers: &[&str]) -> CheckMeta {
    CheckMeta::new(id, Area::K8s, title)
        .subject("kubernetes-api")
        .covers(Severity::Must, covers)
        .needs([crate::kubeconfig_need()])
        .read_only("none: read-only API calls (list daemonsets, CRDs, nodes, ServiceCIDRs; get the default/kubernetes Service)")
        .timeout(Duration::from_secs(90))
}

/// The checks of this module.
pub fn checks() -> Vec<Arc<dyn Check>> {
    vec![
        declare(
            meta(
                "k8s.network.api-managed",
                "The pod network solution is deployed and configured through Kubernetes API objects (its DaemonSet, its CRDs)",
                &["ra2.ntw.001"],
            ),
            |cx| Box::pin(api_managed_check(cx)),
        )
        .into_check(),
        declare(
            meta(
                "k8s.network.ip-pools",
                "Node addresses, pod ranges and the Service range are separate pools, and every node's pod range is its own",
                &["inf.ntw.13"],
            ),
            |cx| Box::pin(ip_pools_check(cx)),
        )
        .into_check(),
    ]
}

async fn api_managed_check(cx: &CheckContext) -> CheckResult {
    let c = cluster::for_check(cx).await?;
    let o = api_managed(&c.daemonsets().await?, &c.crds().await?);
    Ok(o.with_property("API server", &c.server))
}

async fn ip_pools_check(cx: &CheckContext) -> CheckResult {
    let c = cluster::for_check(cx).await?;
    let nodes = c.nodes().await?;
    let svc = Api::<Service>::namespaced(c.client().clone(), "default")
        .get("kubernetes")
        .await
        .map_err(|e| c.explain("get service default/kubernetes", &e))?;
    let cluster_ips: Vec<String> = svc
        .spec
        .and_then(|s| s.cluster_ips.or_else(|| s.cluster_ip.map(|ip| vec![ip])))
        .unwrap_or_default();
    let service_cidrs = service_cidrs(&c).await?;
    let o = ip_pools(&nodes, &cluster_ips, service_cidrs.as_deref());
    Ok(o.with_property("API server", &c.server))
}

/// The ServiceCIDR objects' ranges, where the API serves them (networking.k8s.io v1 from
/// 1.33, v1beta1 in 1.31 and 1.32); `None` when it does not.
async fn service_cidrs(c: &Cluster) -> Result<Option<Vec<String>>, nfvi_harness::CheckError> {
    let discovery = c.discovery().await?;
    let Some(gv) = ["v1", "v1beta1"].iter().find_map(|v| {
        discovery
            .iter()
            .find(|gv| {
                gv.group == "networking.k8s.io"
                    && gv.version == *v
                    && gv.resources.iter().any(|r| r == "servicecidrs")
            })
            .map(|gv| gv.api_version())
    }) else {
        return Ok(None);
    };
    let path = format!("/apis/{gv}/servicecidrs");
    let req = http::Request::get(&path)
        .body(Vec::new())
        .map_err(|e| format!("build GET {path}: {e}"))?;
    let list: Value = c
        .client()
        .request(req)
        .await
        .map_err(|e| c.explain(&format!("list servicecidrs ({gv})"), &e))?;
    Ok(Some(
        list["items"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|i| i["spec"]["cidrs"].as_array().cloned().unwrap_or_default())
            .filter_map(|c| c.as_str().map(str::to_owned))
            .collect(),
    ))
}

fn name(m: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> String {
    format!(
        "{}/{}",
        m.namespace.as_deref().unwrap_or("-"),
        m.name.as_deref().unwrap_or("")
    )
}

/// ra2.ntw.001: the network solution shows as API objects: a DaemonSet of a known solution
/// (the plugin deployed and run by Kubernetes), its CRDs (configured through the API), or
/// both. A DaemonSet list without any of them leaves the question open (an unknown plugin,
/// or one installed outside Kubernetes), an error naming what was seen; an empty one (not even
/// kube-proxy or the plugin) observed nothing.
pub(crate) fn api_managed(daemonsets: &[DaemonSet], crds: &[CustomResourceDefinition]) -> Outcome {
    if daemonsets.is_empty() && crds.is_empty() {
        return Outcome::error(
            "the cluster lists no DaemonSet and no CRD: nothing of a pod network solution was observed",
        );
    }
    let ds: Vec<String> = daemonsets
        .iter()
        .filter_map(|d| {
            let n = d.metadata.name.as_deref().unwrap_or("");
            SOLUTIONS
                .iter()
                .find(|(frag, _)| n.contains(frag))
                .map(|(_, sol)| format!("{sol} (DaemonSet {})", name(&d.metadata)))
        })
        .collect();
    let groups: Vec<String> = crds
        .iter()
        .filter_map(|c| {
            let g = c.spec.group.as_str();
            SOLUTION_GROUPS
                .iter()
                .find(|(grp, _)| g == *grp)
                .map(|(_, sol)| format!("{sol} ({})", c.metadata.name.as_deref().unwrap_or("")))
        })
        .collect();
    let shown = |v: &[String]| {
        if v.is_empty() {
            "none".to_owned()
        } else {
            v.join(", ")
        }
    };
    let o = match (ds.is_empty(), groups.is_empty()) {
        (false, false) => Outcome::pass(format!(
            "the network solution runs as {} and is configured through the custom resources {}",
            ds.join(", "),
            groups.join(", ")
        )),
        (false, true) => Outcome::pass(format!(
            "the network solution runs as {}, deployed and managed through the API (it defines no custom resources)",
            ds.join(", ")
        )),
        (true, false) => Outcome::pass(format!(
            "the network solution is configured through the custom resources {}",
            groups.join(", ")
        )),
        (true, true) => Outcome::error(format!(
            "no DaemonSet or CRD of a known network solution ({}); cannot tell whether the pod network is managed through the API. DaemonSets: {}",
            SOLUTIONS
                .iter()
                .map(|(f, _)| *f)
                .collect::<Vec<_>>()
                .join(", "),
            daemonsets
                .iter()
                .map(|d| name(&d.metadata))
                .collect::<Vec<_>>()
                .join(", ")
        )),
    };
    o.with_property("network DaemonSets", shown(&ds))
        .with_property("network CRDs", shown(&groups))
}

/// A pool of addresses and who holds it.
struct Pool {
    owner: String,
    net: IpNet,
}

fn host_net(ip: &str) -> Option<IpNet> {
    ip.trim().parse::<std::net::IpAddr>().ok().map(IpNet::from)
}

fn overlaps(a: &IpNet, b: &IpNet) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

/// inf.ntw.13: the infrastructure's addresses (the nodes' InternalIP and ExternalIP), the
/// tenants' (each node's podCIDRs) and the Services' (the ServiceCIDRs where served; else the
/// `kubernetes` Service's ClusterIPs, which lie in the Service range) do not overlap, and no
/// two nodes share pod ranges. Without any pod range the pools were not observed (a plugin
/// with its own IPAM leaves node.spec.podCIDRs unused): an error saying so.
pub(crate) fn ip_pools(
    nodes: &[Node],
    cluster_ips: &[String],
    service_cidrs: Option<&[String]>,
) -> Outcome {
    if nodes.is_empty() {
        return Outcome::error("the cluster lists no node: no address pool was observed");
    }
    let mut bad = Vec::new();
    let mut hosts = Vec::new();
    let mut pods = Vec::new();
    for n in nodes {
        let node = n.metadata.name.clone().unwrap_or_default();
        for a in n
            .status
            .as_ref()
            .and_then(|s| s.addresses.clone())
            .unwrap_or_default()
        {
            if a.type_ == "InternalIP" || a.type_ == "ExternalIP" {
                match host_net(&a.address) {
                    Some(net) => hosts.push(Pool {
                        owner: format!("node {node} {}", a.type_),
                        net,
                    }),
                    None => bad.push(format!("node {node}: {} {:?}", a.type_, a.address)),
                }
            }
        }
        for c in n
            .spec
            .as_ref()
            .and_then(|s| s.pod_cidrs.clone())
            .unwrap_or_default()
        {
            match c.trim().parse::<IpNet>() {
                Ok(net) => pods.push(Pool {
                    owner: format!("node {node} podCIDR"),
                    net,
                }),
                Err(_) => bad.push(format!("node {node}: podCIDR {c:?}")),
            }
        }
    }
    let (texts, service_what): (Vec<(String, String)>, &str) = match service_cidrs {
        Some(cidrs) if !cidrs.is_empty() => (
            cidrs
                .iter()
                .map(|c| (format!("ServiceCIDR {c}"), c.clone()))
                .collect(),
            "ServiceCIDRs",
        ),
        _ => (
            cluster_ips
                .iter()
                .map(|ip| (format!("Service kubernetes ClusterIP {ip}"), ip.clone()))
                .collect(),
            "the kubernetes Service's ClusterIP",
        ),
    };
    let mut services = Vec::new();
    for (owner, text) in texts {
        match text
            .trim()
            .parse::<IpNet>()
            .ok()
            .or_else(|| host_net(&text))
        {
            Some(net) => services.push(Pool { owner, net }),
            None => bad.push(format!("{service_what}: {text:?}")),
        }
    }
    if !bad.is_empty() {
        return Outcome::error(format!("unreadable addresses: {}", bad.join("; ")));
    }
    if pods.is_empty() {
        return Outcome::error(
            "no node has spec.podCIDRs: the pod pool is managed by the network plugin's own IPAM and was not observed through the API",
        );
    }
    if services.is_empty() {
        return Outcome::error(
            "neither a ServiceCIDR nor the kubernetes Service's ClusterIP was read: the Service pool was not observed",
        );
    }
    let mut clashes = Vec::new();
    for (i, p) in pods.iter().enumerate() {
        for q in &pods[i + 1..] {
            if overlaps(&p.net, &q.net) {
                clashes.push(format!(
                    "{} {} overlaps {} {}",
                    p.owner, p.net, q.owner, q.net
                ));
            }
        }
        for s in &services {
            if overlaps(&p.net, &s.net) {
                clashes.push(format!("{} {} overlaps {}", p.owner, p.net, s.owner));
            }
        }
        for h in &hosts {
            if overlaps(&p.net, &h.net) {
                clashes.push(format!(
                    "{} {} holds {} {}",
                    p.owner,
                    p.net,
                    h.owner,
                    h.net.addr()
                ));
            }
        }
    }
    for s in &services {
        for h in &hosts {
            if overlaps(&s.net, &h.net) {
                clashes.push(format!("{} holds {} {}", s.owner, h.owner, h.net.addr()));
            }
        }
    }
    let list = |v: &[Pool]| {
        v.iter()
            .map(|p| p.net.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let o = if clashes.is_empty() {
        Outcome::pass(format!(
            "{} node addresses, {} pod ranges (one per node and family) and the Service range ({service_what}) are disjoint",
            hosts.len(),
            pods.len()
        ))
    } else {
        Outcome::fail(format!("address pools overlap: {}", clashes.join("; ")))
    };
    o.with_property("node addresses", list(&hosts))
        .with_property("pod ranges", list(&pods))
        .with_property(format!("Service range ({service_what})"), list(&services))
}

#[cfg(test)]
mod tests {
    use super::*;
    use nfvi_harness::Status;
    use serde_json::json;

    fn node(name: &str, ips: &[&str], cidrs: &[&str]) -> Node {
        let addrs: Vec<Value> = ips
            .iter()
            .map(|a| json!({"type": "InternalIP", "address": a}))
            .collect();
        serde_json::from_value(json!({"metadata": {"name": name}, "spec": {"podCIDRs": cidrs}, "status": {"addresses": addrs}})).unwrap()
    }

    #[test]
    fn address_pools_are_judged_disjoint_or_overlapping() {
        let good = || {
            vec![
                node(
                    "a",
                    &["192.0.2.1"],
                    &["10.244.1.0/24", "fd00:10:244:1::/64"],
                ),
                node("b", &["192.0.2.2"], &["10.244.2.0/24"]),
            ]
        };
        let ip = vec!["10.96.0.1".to_owned()];
        let cidrs = vec!["10.96.0.0/12".to_owned()];
        type Row<'a> = (
            &'a str,
            Vec<Node>,
            Vec<String>,
            Option<Vec<String>>,
            Status,
            &'a str,
        );
        #[rustfmt::skip]
        let rows: Vec<Row> = vec![
            ("disjoint, ServiceCIDR", good(), ip.clone(), Some(cidrs.clone()), Status::Passed, "3 pod ranges"),
            ("disjoint, ClusterIP only", good(), ip.clone(), None, Status::Passed, "kubernetes Service's ClusterIP"),
            ("two nodes share a pod range", vec![node("a", &["192.0.2.1"], &["10.244.0.0/16"]), node("b", &["192.0.2.2"], &["10.244.2.0/24"])], ip.clone(), None, Status::Failed, "node a podCIDR 10.244.0.0/16 overlaps node b podCIDR"),
            ("pods inside the Service range", vec![node("a", &["192.0.2.1"], &["10.96.5.0/24"])], ip.clone(), Some(cidrs.clone()), Status::Failed, "overlaps ServiceCIDR 10.96.0.0/12"),
            ("node address in the pod range", vec![node("a", &["10.244.1.9"], &["10.244.1.0/24"])], ip.clone(), None, Status::Failed, "holds node a InternalIP 10.244.1.9"),
            ("node address in the Service range", vec![node("a", &["10.100.0.1"], &["10.244.1.0/24"])], ip.clone(), Some(cidrs.clone()), Status::Failed, "ServiceCIDR 10.96.0.0/12 holds node a"),
            ("no pod ranges", vec![node("a", &["192.0.2.1"], &[])], ip.clone(), None, Status::Error, "no node has spec.podCIDRs"),
            ("no nodes", vec![], ip.clone(), None, Status::Error, "no node"),
            ("no Service range", good(), vec![], None, Status::Error, "Service pool was not observed"),
            ("hostile pod range", vec![node("a", &["192.0.2.1"], &["<script>"])], ip.clone(), None, Status::Error, "unreadable"),
            ("hostile ClusterIP", good(), vec!["nope".into()], None, Status::Error, "unreadable"),
        ];
        for (name, nodes, ips, cidrs, status, needle) in rows {
            let o = ip_pools(&nodes, &ips, cidrs.as_deref());
            assert_eq!(o.status, status, "{name}: {}", o.message);
            assert!(o.message.contains(needle), "{name}: {}", o.message);
        }
    }

    fn ds(ns: &str, name: &str) -> DaemonSet {
        serde_json::from_value(json!({"metadata": {"name": name, "namespace": ns}})).unwrap()
    }

    fn crd(name: &str, group: &str) -> CustomResourceDefinition {
        serde_json::from_value(json!({"metadata": {"name": name}, "spec": {"group": group, "names": {"plural": "x", "kind": "X"}, "scope": "Cluster", "versions": []}})).unwrap()
    }

    #[test]
    fn the_network_solution_is_found_as_api_objects() {
        let proxy = ds("kube-system", "kube-proxy");
        type Row<'a> = (
            &'a str,
            Vec<DaemonSet>,
            Vec<CustomResourceDefinition>,
            Status,
            &'a str,
        );
        #[rustfmt::skip]
        let rows: Vec<Row> = vec![
            ("Calico with CRDs", vec![proxy.clone(), ds("calico-system", "calico-node")], vec![crd("ippools.crd.projectcalico.org", "crd.projectcalico.org")], Status::Passed, "Calico (DaemonSet calico-system/calico-node)"),
            ("Flannel, no CRDs", vec![proxy.clone(), ds("kube-flannel", "kube-flannel-ds")], vec![], Status::Passed, "defines no custom resources"),
            ("Cilium by CRDs only", vec![proxy.clone()], vec![crd("ciliumnetworkpolicies.cilium.io", "cilium.io")], Status::Passed, "custom resources Cilium"),
            ("Multus and OVN", vec![ds("kube-system", "kube-multus-ds"), ds("ovn-kubernetes", "ovnkube-node")], vec![], Status::Passed, "Multus (DaemonSet kube-system/kube-multus-ds)"),
            ("an unknown plugin", vec![proxy.clone(), ds("kube-system", "acme-net")], vec![crd("widgets.example.com", "example.com")], Status::Error, "kube-system/acme-net"),
            ("nothing listed", vec![], vec![], Status::Error, "nothing of a pod network solution"),
        ];
        for (name, d, c, status, needle) in rows {
            let o = api_managed(&d, &c);
            assert_eq!(o.status, status, "{name}: {}", o.message);
            assert!(o.message.contains(needle), "{name}: {}", o.message);
        }
    }
}
