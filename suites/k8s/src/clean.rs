//! What the k8s area leaves in a cluster when its run is killed, and how `nfvi-verify clean`
//! finds it: every namespace the area creates (the probes' `nfvi-verify-probe-*`, the e2e
//! sets' `nfvi-verify-e2e-*`, kube-bench's privileged `nfvi-verify-bench-*`, the
//! LoadBalancer check's `nfvi-verify-net-lb-*`, the Multus check's `nfvi-verify-net-multus-*`, the Ingress check's
//! `nfvi-verify-net-ingress-*`, the user-namespace check's `nfvi-verify-userns-*`, the NetworkPolicy
//! check's `nfvi-verify-net-policy-*`;
//! what is in them goes with them), the e2e sets' ClusterRoleBindings to cluster-admin
//! (`nfvi-verify-e2e-*`), and the node agent's DaemonSet and ConfigMap carry the owner labels
//! ([`nfvi_harness::leftover::owner_labels`]) next to `app.kubernetes.io/managed-by`; only
//! objects with all three and one of the names the area gives, of this host and of a process
//! that is gone, are removed. whereabouts' IPPools of the Multus check carry no labels of
//! ours (whereabouts creates them): they are found by the name the check has whereabouts
//! give them, which names this host and the run's PID.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use k8s_openapi::api::rbac::v1::ClusterRoleBinding;
use kube::Resource;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams};
use nfvi_harness::Target;
use nfvi_harness::check::BoxFuture;
use nfvi_harness::leftover::{self, Gone, Leftover};
use serde_json::{Map, Value};

use crate::cluster::Cluster;
use crate::probes::MANAGED_BY;

/// How long looking at the cluster may take, all calls together: a run starts with it.
const FIND_DEADLINE: Duration = Duration::from_secs(8);

/// The labels of what the area creates: managed-by and the owner's.
pub(crate) fn labels() -> Map<String, Value> {
    let mut m = Map::new();
    m.insert(MANAGED_BY.0.to_owned(), MANAGED_BY.1.into());
    for (k, v) in leftover::owner_labels() {
        m.insert(k.to_owned(), v.into());
    }
    m
}

/// The owner of an object the area created, from its labels.
fn owner(labels: Option<&BTreeMap<String, String>>) -> Option<u32> {
    let labels = labels?;
    (labels.get(MANAGED_BY.0).map(String::as_str) == Some(MANAGED_BY.1)).then_some(())?;
    leftover::owner_of(|k| labels.get(k).map(String::as_str))
}

fn selector() -> String {
    format!(
        "{}={},{}",
        MANAGED_BY.0,
        MANAGED_BY.1,
        leftover::OWNER_LABEL
    )
}

/// The k8s area's leftovers: DaemonSets and ConfigMaps of the node agent in its namespace,
/// then the ClusterRoleBindings of the e2e sets, then the area's namespaces. Nothing without
/// a kubeconfig.
pub(crate) fn leftovers<'a>(
    target: &'a Target,
    gone: Gone<'a>,
) -> BoxFuture<'a, Result<Vec<Leftover>, String>> {
    Box::pin(async move {
        let k = target.config::<crate::KubernetesConfig>();
        let (Some(path), None) = (k.kubeconfig_path(), k.missing()) else {
            return Ok(Vec::new());
        };
        let agent_ns = k.agent_namespace.clone();
        let find = async {
            let cluster = Cluster::open(&path, k.context.as_deref(), false)
                .await
                .map_err(|e| e.message)?;
            find(&cluster, &agent_ns, gone).await
        };
        tokio::time::timeout(FIND_DEADLINE, find)
            .await
            .unwrap_or_else(|_| {
                Err(format!(
                    "the cluster did not answer within {} s",
                    FIND_DEADLINE.as_secs()
                ))
            })
    })
}

async fn find(cluster: &Cluster, agent_ns: &str, gone: Gone<'_>) -> Result<Vec<Leftover>, String> {
    let client = cluster.client().clone();
    let params = ListParams::default().labels(&selector());
    let mut found = Vec::new();
    let daemonsets = Api::<DaemonSet>::namespaced(client.clone(), agent_ns);
    let configmaps = Api::<ConfigMap>::namespaced(client.clone(), agent_ns);
    let bindings = Api::<ClusterRoleBinding>::all(client.clone());
    let namespaces = Api::<Namespace>::all(client);
    let list = |what: String| move |e: kube::Error| cluster.explain(&what, &e).message;
    let ds = daemonsets
        .list(&params)
        .await
        .map_err(list(format!("list daemonsets in namespace {agent_ns}")))?;
    found.extend(deletable(
        ds.items,
        "DaemonSet",
        AGENT_PREFIX,
        &daemonsets,
        gone,
    ));
    let cm = configmaps
        .list(&params)
        .await
        .map_err(list(format!("list configmaps in namespace {agent_ns}")))?;
    found.extend(deletable(
        cm.items,
        "ConfigMap",
        AGENT_PREFIX,
        &configmaps,
        gone,
    ));
    // Bindings first: a binding outlives the namespace of the account it binds (and keeps
    // granting cluster-admin to whoever recreates that account). Without the
    // nfvi-verify-upstream ClusterRole the account may not list them, and could not have
    // created any either.
    match bindings.list(&params).await {
        Ok(crb) => found.extend(deletable(
            crb.items,
            "ClusterRoleBinding",
            BINDING_PREFIXES,
            &bindings,
            gone,
        )),
        Err(kube::Error::Api(s)) if s.code == 403 => {}
        Err(e) => return Err(list("list clusterrolebindings".to_owned())(e)),
    }
    found.extend(pools(cluster, gone).await?);
    let ns = namespaces
        .list(&params)
        .await
        .map_err(list("list namespaces".to_owned()))?;
    found.extend(deletable(
        ns.items,
        "namespace",
        NAMESPACE_PREFIXES,
        &namespaces,
        gone,
    ));
    Ok(found)
}

/// whereabouts' IPPools of the Multus check's runs that are gone: whereabouts creates them
/// (in its own namespace, without our labels), named after the `network_name` the check
/// gives ([`crate::multus::pool_owner`]). Without whereabouts (404) or without the grant
/// (403) there is nothing to find.
async fn pools(cluster: &Cluster, gone: Gone<'_>) -> Result<Vec<Leftover>, String> {
    let gvk = GroupVersionKind::gvk("whereabouts.cni.cncf.io", "v1alpha1", "IPPool");
    let ar = ApiResource::from_gvk_with_plural(&gvk, "ippools");
    let all = Api::<DynamicObject>::all_with(cluster.client().clone(), &ar);
    let items = match all.list(&ListParams::default()).await {
        Ok(l) => l.items,
        Err(kube::Error::Api(s)) if s.code == 404 || s.code == 403 => return Ok(Vec::new()),
        Err(e) => return Err(cluster.explain("list whereabouts ippools", &e).message),
    };
    Ok(items
        .into_iter()
        .filter_map(|p| {
            let name = p.metadata.name.clone()?;
            let ns = p.metadata.namespace.clone()?;
            let pid = crate::multus::pool_owner(&name).filter(|&pid| gone(pid))?;
            let api = Api::<DynamicObject>::namespaced_with(cluster.client().clone(), &ns, &ar);
            Some(Leftover::new(
                "whereabouts IPPool",
                format!("{ns}/{name}"),
                pid,
                move || {
                    Box::pin(async move {
                        match api.delete(&name, &DeleteParams::background()).await {
                            Ok(_) => Ok(()),
                            Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
                            Err(e) => Err(format!("delete whereabouts IPPool {name}: {e}")),
                        }
                    })
                },
            ))
        })
        .collect())
}

/// The names the area gives its agent objects, its namespaces and its ClusterRoleBindings:
/// labels alone are not enough to delete something (anyone allowed to label a namespace could
/// have it deleted).
const AGENT_PREFIX: &[&str] = &["nfvi-verify-agent-"];
const NAMESPACE_PREFIXES: &[&str] = &[
    "nfvi-verify-probe-",
    "nfvi-verify-e2e-",
    "nfvi-verify-bench-",
    "nfvi-verify-net-lb-",
    "nfvi-verify-net-multus-",
    "nfvi-verify-net-ingress-",
    crate::netpol::NS_PREFIX,
    crate::userns::NAMESPACE_PREFIX,
];
const BINDING_PREFIXES: &[&str] = &["nfvi-verify-e2e-"];

fn deletable<K>(
    items: Vec<K>,
    kind: &'static str,
    prefixes: &[&str],
    api: &Api<K>,
    gone: Gone<'_>,
) -> Vec<Leftover>
where
    K: Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + 'static,
{
    items
        .into_iter()
        .filter_map(|item| {
            let meta = item.meta();
            let pid = owner(meta.labels.as_ref()).filter(|&p| gone(p))?;
            let name = meta
                .name
                .clone()
                .filter(|n| prefixes.iter().any(|p| n.starts_with(p)))?;
            let api = api.clone();
            let shown = match &meta.namespace {
                Some(ns) => format!("{ns}/{name}"),
                None => name.clone(),
            };
            Some(Leftover::new(kind, shown, pid, move || {
                Box::pin(async move {
                    match api.delete(&name, &DeleteParams::background()).await {
                        Ok(_) => Ok(()),
                        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
                        Err(e) => Err(format!("delete {kind} {name}: {e}")),
                    }
                })
            }))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_labelled_objects_of_this_host_have_an_owner() {
        let mine: BTreeMap<String, String> = labels()
            .into_iter()
            .map(|(k, v)| (k, v.as_str().unwrap().to_owned()))
            .collect();
        assert_eq!(owner(Some(&mine)), Some(std::process::id()));
        let mut other = mine.clone();
        other.insert(MANAGED_BY.0.into(), "someone-else".into());
        assert_eq!(owner(Some(&other)), None);
        let mut elsewhere = mine.clone();
        elsewhere.insert(leftover::OWNER_HOST_LABEL.into(), "elsewhere".into());
        assert_eq!(owner(Some(&elsewhere)), None);
        assert_eq!(owner(None), None);
    }
}
