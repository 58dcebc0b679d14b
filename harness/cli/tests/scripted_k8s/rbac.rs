//! What deploy/kubernetes/nfvi-verify-clusterrole.yaml grants, and the access each request
//! the scripted API server saw needs: the tests prove every call the harness makes is
//! granted (a real API server would answer 403 otherwise).

use std::path::Path;

use serde_json::Value;

/// The access one request needs: a verb on a resource of an API group (in a namespace), or
/// `get` on a non-resource URL (group `non-resource`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Access {
    pub verb: String,
    pub group: String,
    pub resource: String,
    /// The namespace of a namespaced request.
    pub namespace: Option<String>,
}

/// The access a request (`METHOD /path?query`, as the server logs it) needs.
pub fn access(request: &str) -> Access {
    let (method, target) = request.split_once(' ').unwrap();
    let path = target.split('?').next().unwrap();
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let non_resource = || Access {
        verb: "get".into(),
        group: "non-resource".into(),
        resource: path.to_owned(),
        namespace: None,
    };
    let (group, rest): (String, &[&str]) = match segs.as_slice() {
        ["api", "v1", rest @ ..] => (String::new(), rest),
        ["apis", g, _v, rest @ ..] => ((*g).to_owned(), rest),
        _ => return non_resource(),
    };
    let (resource, named, namespace) = match rest {
        [] => return non_resource(),
        ["namespaces", ns, r, _, sub] => (format!("{r}/{sub}"), true, Some(*ns)),
        ["namespaces", ns, r, _] => ((*r).to_owned(), true, Some(*ns)),
        ["namespaces", ns, r] => ((*r).to_owned(), false, Some(*ns)),
        [r, _, sub, ..] => (format!("{r}/{sub}"), true, None),
        [r, _] => ((*r).to_owned(), true, None),
        [r] => ((*r).to_owned(), false, None),
    };
    let watch = target
        .split('?')
        .nth(1)
        .is_some_and(|q| q.split('&').any(|kv| kv == "watch=true"));
    let verb = match (method, named) {
        ("GET", _) if watch => "watch",
        ("GET", true) => "get",
        ("GET", false) => "list",
        ("POST", _) => "create",
        ("DELETE", _) => "delete",
        (m, _) => panic!("unexpected method {m}"),
    };
    Access {
        verb: verb.into(),
        group,
        resource,
        namespace: namespace.map(str::to_owned),
    }
}

/// The rules of the deploy file: the ClusterRole's everywhere, each bound Role's in its
/// namespace.
pub struct Grants {
    cluster: Vec<Value>,
    namespaced: Vec<(String, Vec<Value>)>,
}

fn strs(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| a.iter().map(|s| s.as_str().unwrap().to_owned()).collect())
        .unwrap_or_default()
}

impl Grants {
    /// Reads deploy/kubernetes/nfvi-verify-clusterrole.yaml.
    pub fn load() -> Self {
        let text = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../deploy/kubernetes/nfvi-verify-clusterrole.yaml"),
        )
        .unwrap();
        let docs: Vec<Value> = text
            .split("\n---\n")
            .map(|doc| serde_norway::from_str::<Value>(doc).unwrap())
            .collect();
        let rules = |d: &Value| d["rules"].as_array().cloned().unwrap_or_default();
        // Every ClusterRole a ClusterRoleBinding binds (the read-only one, the upstream one).
        let cluster_bound = |role: &Value| {
            docs.iter().any(|b| {
                b["kind"] == "ClusterRoleBinding"
                    && b["roleRef"]["kind"] == "ClusterRole"
                    && b["roleRef"]["name"] == role["metadata"]["name"]
            })
        };
        let cluster: Vec<Value> = docs
            .iter()
            .filter(|d| d["kind"] == "ClusterRole" && cluster_bound(d))
            .flat_map(rules)
            .collect();
        assert!(!cluster.is_empty(), "a bound ClusterRole");
        let bound = |role: &Value| {
            docs.iter().any(|b| {
                b["kind"] == "RoleBinding"
                    && b["metadata"]["namespace"] == role["metadata"]["namespace"]
                    && b["roleRef"]["kind"] == "Role"
                    && b["roleRef"]["name"] == role["metadata"]["name"]
            })
        };
        let namespaced = docs
            .iter()
            .filter(|d| d["kind"] == "Role" && bound(d))
            .map(|d| {
                let ns = d["metadata"]["namespace"].as_str().unwrap().to_owned();
                (ns, rules(d))
            })
            .collect();
        Self {
            cluster,
            namespaced,
        }
    }

    /// Whether the deploy file grants `a`.
    pub fn allows(&self, a: &Access) -> bool {
        let grants = |r: &Value| {
            if !strs(&r["verbs"]).contains(&a.verb) {
                return false;
            }
            if a.group == "non-resource" {
                return strs(&r["nonResourceURLs"]).iter().any(|u| {
                    *u == a.resource
                        || u.strip_suffix('*')
                            .is_some_and(|p| a.resource.starts_with(p))
                });
            }
            strs(&r["apiGroups"]).contains(&a.group) && strs(&r["resources"]).contains(&a.resource)
        };
        self.cluster.iter().any(grants)
            || self
                .namespaced
                .iter()
                .any(|(ns, rules)| a.namespace.as_deref() == Some(ns) && rules.iter().any(grants))
    }
}
