//! Entry points for the property targets in `fuzz/` (issue #14), not an API: API answers as
//! the API server could send them (JSON), deserialised as kube does and handed to every
//! judge that reads them. A judge must return an outcome for any answer, never panic.

use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::api::storage::v1::StorageClass;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::version::Info;
use serde_json::Value;

use crate::checks;
use crate::cluster::GroupVersion;

fn list<T: serde::de::DeserializeOwned>(v: &Value) -> Vec<T> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|x| serde_json::from_value(x.clone()).ok())
        .collect()
}

/// Every judge of nodes, the server's version and kubelet configz answers, on `answer`'s
/// `nodes`, `version`, `configs`, `leases`, `pods`, `readyz` and `now` fields; returns how
/// many judgements were made.
pub fn judge_answers(answer: &Value) -> usize {
    let nodes: Vec<Node> = list(&answer["nodes"]);
    let pods: Vec<Pod> = list(&answer["pods"]);
    let leases: Vec<Lease> = list(&answer["leases"]);
    let info: Option<Info> = serde_json::from_value(answer["version"].clone()).ok();
    let configs: Vec<(String, Value)> = answer["configs"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let readyz = answer["readyz"].as_str().unwrap_or("");
    let now = answer["now"].as_i64().unwrap_or(1_700_000_000);
    let mut n = 0;
    let mut count = |_o: &dyn std::fmt::Debug| n += 1;
    if let Some(info) = &info {
        count(&checks::server_version(info));
        count(&checks::kubelet_skew(info, &nodes));
    }
    count(&checks::control_plane(readyz, &leases, now));
    count(&checks::etcd(&pods, &nodes));
    count(&checks::per_zone(&nodes, true));
    count(&checks::per_zone(&nodes, false));
    count(&checks::nodes_ready(&nodes));
    count(&checks::profile_labels(&nodes));
    for profile in ["basic", "network-intensive", ""] {
        count(&checks::hugepages(&nodes, profile).is_ok());
    }
    count(&checks::kubelet_policy(
        &configs,
        "cpuManagerPolicy",
        "static",
    ));
    count(&checks::reserved_cpus(&configs));
    count(&checks::dual_stack(&nodes));
    count(&checks::node_feature_discovery(&nodes));
    for node in &nodes {
        count(&checks::condition(node, "Ready"));
        count(&checks::is_control_plane(node));
    }
    for pod in &pods {
        for net in ["macvlan", "default/macvlan", "a/b/c", ""] {
            count(&crate::probes::secondary_ip(pod, net));
        }
    }
    let _ = crate::probes::pick_nodes(&nodes);
    n
}

/// Every judge of discovery, CRDs, DaemonSets and storage classes, on `answer`'s
/// `discovery` (`[{group, version, resources}]`), `crds`, `daemonsets`, `classes` and
/// `cluster_roles` fields.
pub fn judge_discovery(answer: &Value) -> usize {
    let discovery: Vec<GroupVersion> = answer["discovery"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|g| GroupVersion {
            group: g["group"].as_str().unwrap_or_default().to_owned(),
            version: g["version"].as_str().unwrap_or_default().to_owned(),
            resources: list(&g["resources"]),
        })
        .collect();
    let crds: Vec<CustomResourceDefinition> = list(&answer["crds"]);
    let daemonsets: Vec<DaemonSet> = list(&answer["daemonsets"]);
    let classes: Vec<StorageClass> = list(&answer["classes"]);
    let roles: Vec<String> = list(&answer["cluster_roles"]);
    let outcomes = [
        checks::no_alpha(&discovery, &crds),
        checks::no_beta(&discovery, &crds),
        checks::mandatory_groups(&discovery),
        checks::network_policy(&discovery),
        checks::cni(&daemonsets),
        checks::multiplexer(&daemonsets, &crds),
        checks::default_storage_class(&classes),
        checks::rbac(&discovery, &roles),
    ];
    outcomes.len()
}
