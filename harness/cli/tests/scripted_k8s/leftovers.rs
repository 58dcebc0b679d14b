//! What killed runs left in the scripted cluster ([`Spec`]'s `leftovers`: namespaces,
//! ClusterRoleBindings, DaemonSets and ConfigMaps with their labels), served to label-selected
//! lists as an API server selects them, for `nfvi-verify clean`; deleting a planted
//! ClusterRoleBinding succeeds.

use serde_json::Value;

use super::{JSON, Request, Spec, TOKEN, list};

type Answer = Option<(u16, &'static str, Vec<u8>)>;

fn decode(s: &str) -> String {
    s.replace("%2F", "/")
        .replace("%3D", "=")
        .replace("%2C", ",")
        .replace("%21", "!")
}

/// Whether `labels` match a selector of `key=value` and `key` (exists) terms.
fn selects(selector: &str, labels: &Value) -> bool {
    selector
        .split(',')
        .filter(|t| !t.is_empty())
        .all(|term| match term.split_once('=') {
            Some((k, v)) => labels[k].as_str() == Some(v),
            None => !labels[term].is_null(),
        })
}

/// Answers label-selected lists of namespaces, ClusterRoleBindings, DaemonSets and
/// ConfigMaps, and deletions of planted ClusterRoleBindings; `None` leaves the request to the
/// rest of the server.
pub(super) fn respond(req: &Request<'_>, spec: &Spec) -> Answer {
    if req.auth != format!("Bearer {TOKEN}") {
        return None;
    }
    if req.method == "DELETE" {
        let name = req
            .path
            .strip_prefix("/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/")?;
        let planted = spec
            .leftovers
            .iter()
            .find(|o| o["kind"] == "ClusterRoleBinding" && o["metadata"]["name"] == name)?;
        return Some((200, JSON, planted.to_string().into_bytes()));
    }
    if req.method != "GET" {
        return None;
    }
    let selector = req
        .query
        .split('&')
        .find_map(|kv| kv.strip_prefix("labelSelector="))
        .map(decode)?;
    let segs: Vec<&str> = req.path.trim_start_matches('/').split('/').collect();
    let (kind, namespace, list_kind, api) = match segs.as_slice() {
        ["api", "v1", "namespaces"] => ("Namespace", None, "NamespaceList", "v1"),
        ["api", "v1", "namespaces", ns, "configmaps"] => {
            ("ConfigMap", Some(*ns), "ConfigMapList", "v1")
        }
        [
            "apis",
            "rbac.authorization.k8s.io",
            "v1",
            "clusterrolebindings",
        ] => (
            "ClusterRoleBinding",
            None,
            "ClusterRoleBindingList",
            "rbac.authorization.k8s.io/v1",
        ),
        ["apis", "apps", "v1", "namespaces", ns, "daemonsets"] => {
            ("DaemonSet", Some(*ns), "DaemonSetList", "apps/v1")
        }
        _ => return None,
    };
    let items: Vec<Value> = spec
        .leftovers
        .iter()
        .filter(|o| o["kind"] == kind)
        .filter(|o| namespace.is_none_or(|ns| o["metadata"]["namespace"] == ns))
        .filter(|o| selects(&selector, &o["metadata"]["labels"]))
        .cloned()
        .collect();
    Some((
        200,
        JSON,
        list(list_kind, api, items).to_string().into_bytes(),
    ))
}
