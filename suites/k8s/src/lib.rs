//! The Kubernetes area of RC2: what only the Kubernetes API can show about an RA2 cluster
//! (versions and skew, control plane, served API groups, node labels and kubelet policies,
//! pod network, storage, access control), read through kube-rs with one pinned API level,
//! and in-cluster latency probes that run the prober (nfvi-prober) as pods. With
//! `kubernetes.node_agent` it also reaches every node of the cluster for the node-level
//! checks of the other areas, through the node agent as a DaemonSet ([`daemonset`]).
//!
//! Without a kubeconfig every check is skipped with the reason "no kubeconfig given". No
//! Kubernetes API server runs on the machines this project is built on: the tests run these
//! checks against a scripted API server that answers with the objects of conformant and
//! non-conformant clusters (see `harness/cli/tests/k8s.rs`).

#![warn(missing_docs)]

mod accel;
mod area;
mod checks;
mod clean;
pub mod cluster;
pub mod daemonset;
#[doc(hidden)]
pub mod fuzzing;
mod ingress;
mod lb;
mod multus;
mod netpol;
mod network;
mod probe_ns;
mod probes;
pub mod upstream;
mod userns;

pub use area::{DEFAULT_AGENT_IMAGE, K8sArea, KubernetesConfig, kubeconfig_need};
pub use daemonset::DaemonSetTransport;
pub use upstream::EvidencePath;

/// Every check of the k8s area: the API checks, the in-cluster probes (latency, the Multus
/// secondary network, LoadBalancer Services), then the upstream suites (e2e focus sets,
/// kube-bench).
pub fn checks() -> Vec<std::sync::Arc<dyn nfvi_harness::Check>> {
    let mut all = checks::checks();
    all.extend(network::checks());
    all.extend(accel::checks());
    all.extend(probes::checks());
    all.extend(multus::checks());
    all.extend(lb::checks());
    all.extend(ingress::checks());
    all.extend(netpol::checks());
    all.extend(userns::checks());
    all.extend(upstream::checks());
    all
}
