//! Nodes: readiness, profile labels, hugepages, kubelet policies (configz) and Node Feature
//! Discovery labels.

use k8s_openapi::api::core::v1::Node;
use nfvi_harness::{CheckResult, Outcome};
use serde_json::Value;

use super::{condition, fail_with, name_of, workers};
use crate::cluster::labels;

const PROFILE_LABELS: &[&str] = &[
    "anuket.io/profile/basic",
    "anuket.io/profile/network-intensive",
];
const NI_LABEL: &str = "anuket.io/profile/network-intensive";

/// Every node Ready.
pub(crate) fn nodes_ready(nodes: &[Node]) -> Outcome {
    if nodes.is_empty() {
        return Outcome::fail("the cluster lists no node");
    }
    let not: Vec<String> = nodes
        .iter()
        .filter(|n| condition(n, "Ready").as_deref() != Some("True"))
        .map(|n| {
            format!(
                "{} (Ready={})",
                name_of(n),
                condition(n, "Ready").unwrap_or_else(|| "unknown".to_owned())
            )
        })
        .collect();
    if !not.is_empty() {
        Outcome::fail(format!("nodes not Ready: {}", not.join(", ")))
    } else {
        Outcome::pass(format!("all {} nodes are Ready", nodes.len()))
    }
}

/// ra2.k8s.011: every worker carries `anuket.io/profile/basic` or `/network-intensive`.
pub(crate) fn profile_labels(nodes: &[Node]) -> Outcome {
    let mut o = Outcome::pass("");
    let mut unlabelled = Vec::new();
    let mut count = 0;
    for n in workers(nodes) {
        count += 1;
        let l = labels(&n.metadata);
        let profiles: Vec<&str> = PROFILE_LABELS
            .iter()
            .copied()
            .filter(|p| l.contains_key(*p))
            .collect();
        o = o.with_property(
            name_of(n),
            if profiles.is_empty() {
                "(none)".to_owned()
            } else {
                profiles.join(", ")
            },
        );
        if profiles.is_empty() {
            unlabelled.push(name_of(n));
        }
    }
    if count == 0 {
        return Outcome::fail("the cluster has no worker node");
    }
    if unlabelled.is_empty() {
        o.message = format!("all {count} workers carry an Anuket profile label");
        o
    } else {
        fail_with(
            Outcome::fail(format!(
                "workers without {} or {}: {}",
                PROFILE_LABELS[0],
                PROFILE_LABELS[1],
                unlabelled.join(", ")
            )),
            o,
        )
    }
}

/// The network-intensive workers: those labelled so, or every worker when the target's
/// profile is network-intensive and none is labelled. A skip when there are none.
pub(crate) fn network_intensive<'a>(
    nodes: &'a [Node],
    profile: &str,
) -> Result<Vec<&'a Node>, Outcome> {
    let labelled: Vec<&Node> = workers(nodes)
        .filter(|n| labels(&n.metadata).contains_key(NI_LABEL))
        .collect();
    if !labelled.is_empty() {
        return Ok(labelled);
    }
    if profile == "network-intensive" {
        return Ok(workers(nodes).collect());
    }
    Err(Outcome::not_applicable(format!(
        "no worker is labelled {NI_LABEL} and the target's profile is `{profile}`"
    )))
}

/// ra2.ch.001: network-intensive workers have `hugepages-2Mi` and `hugepages-1Gi` allocatable;
/// a skip when there are none.
pub(crate) fn hugepages(nodes: &[Node], profile: &str) -> CheckResult {
    let chosen = network_intensive(nodes, profile)?;
    let mut o = Outcome::pass("");
    let mut short = Vec::new();
    for n in &chosen {
        let alloc = n
            .status
            .as_ref()
            .and_then(|s| s.allocatable.clone())
            .unwrap_or_default();
        let get = |k: &str| {
            alloc
                .get(k)
                .map(|q| q.0.clone())
                .unwrap_or_else(|| "0".to_owned())
        };
        let (two, one) = (get("hugepages-2Mi"), get("hugepages-1Gi"));
        o = o.with_property(
            name_of(n),
            format!("hugepages-2Mi {two}, hugepages-1Gi {one}"),
        );
        let none = |q: &str| q.is_empty() || q == "0";
        if none(&two) || none(&one) {
            short.push(format!("{} (2Mi: {two}, 1Gi: {one})", name_of(n)));
        }
    }
    if chosen.is_empty() {
        return Ok(Outcome::fail("the cluster has no worker node"));
    }
    if short.is_empty() {
        o.message = format!(
            "{} network-intensive workers have both hugepage sizes allocatable",
            chosen.len()
        );
        Ok(o)
    } else {
        Ok(fail_with(
            Outcome::fail(format!(
                "workers without both hugepage sizes allocatable: {}",
                short.join(", ")
            )),
            o,
        ))
    }
}

/// ra2.k8s.006 / ra2.k8s.009: a kubelet configz field has the wanted value on every node.
pub(crate) fn kubelet_policy(configs: &[(String, Value)], field: &str, wanted: &str) -> Outcome {
    if configs.is_empty() {
        return Outcome::error(format!(
            "no kubelet configuration was read, so {field} was not observed"
        ));
    }
    let mut o = Outcome::pass("");
    let mut wrong = Vec::new();
    for (node, cfg) in configs {
        // The kubelet leaves a default out of configz: cpuManagerPolicy `none`, topology `none`.
        let got = cfg.get(field).and_then(Value::as_str).unwrap_or("none");
        o = o.with_property(node, format!("{field}: {got}"));
        if got != wanted {
            wrong.push(format!("{node} ({got})"));
        }
    }
    if wrong.is_empty() {
        o.message = format!("{field} is `{wanted}` on {} node(s)", configs.len());
        o
    } else {
        fail_with(
            Outcome::fail(format!(
                "{field} is not `{wanted}` on: {}",
                wrong.join(", ")
            )),
            o,
        )
    }
}

/// ra2.k8s.008: `reservedSystemCPUs`, or a CPU amount in `kubeReserved` or `systemReserved`.
pub(crate) fn reserved_cpus(configs: &[(String, Value)]) -> Outcome {
    if configs.is_empty() {
        return Outcome::error(
            "no kubelet configuration was read, so CPU reservations were not observed",
        );
    }
    let mut o = Outcome::pass("");
    let mut none = Vec::new();
    for (node, cfg) in configs {
        let list = cfg
            .get("reservedSystemCPUs")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty());
        let kube = cfg.pointer("/kubeReserved/cpu").and_then(Value::as_str);
        let system = cfg.pointer("/systemReserved/cpu").and_then(Value::as_str);
        let shown = match (list, kube, system) {
            (Some(l), _, _) => format!("reservedSystemCPUs {l}"),
            (None, None, None) => {
                none.push(node.clone());
                "nothing reserved".to_owned()
            }
            (None, k, s) => format!(
                "kubeReserved cpu {}, systemReserved cpu {}",
                k.unwrap_or("-"),
                s.unwrap_or("-")
            ),
        };
        o = o.with_property(node, shown);
    }
    if none.is_empty() {
        o.message = format!("{} kubelet(s) reserve CPUs", configs.len());
        o
    } else {
        fail_with(
            Outcome::fail(format!(
                "kubelets that reserve no CPU (reservedSystemCPUs, kubeReserved or systemReserved): {}",
                none.join(", ")
            )),
            o,
        )
    }
}

/// ra2.ch.018: NFD's labels (`feature.node.kubernetes.io/...`) on the workers.
pub(crate) fn node_feature_discovery(nodes: &[Node]) -> Outcome {
    let mut o = Outcome::pass("");
    let mut without = Vec::new();
    let mut count = 0;
    for n in workers(nodes) {
        count += 1;
        let k = labels(&n.metadata)
            .keys()
            .filter(|k| k.starts_with("feature.node.kubernetes.io/"))
            .count();
        o = o.with_property(name_of(n), format!("{k} NFD labels"));
        if k == 0 {
            without.push(name_of(n));
        }
    }
    if count == 0 {
        return Outcome::fail("the cluster has no worker node");
    }
    if without.is_empty() {
        o.message = format!("NFD labels all {count} workers");
        o
    } else {
        fail_with(
            Outcome::fail(format!(
                "workers without Node Feature Discovery labels: {}",
                without.join(", ")
            )),
            o,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubelet_policies_default_to_none_when_configz_leaves_them_out() {
        let configs = vec![
            (
                "a".to_owned(),
                serde_json::json!({"cpuManagerPolicy": "static"}),
            ),
            ("b".to_owned(), serde_json::json!({})),
        ];
        let o = kubelet_policy(&configs, "cpuManagerPolicy", "static");
        assert_eq!(o.status, nfvi_harness::Status::Failed);
        assert!(o.message.contains("b (none)"), "{}", o.message);
        let o = reserved_cpus(&[(
            "a".to_owned(),
            serde_json::json!({"kubeReserved": {"cpu": "500m"}}),
        )]);
        assert_eq!(o.status, nfvi_harness::Status::Passed, "{}", o.message);
    }
}
