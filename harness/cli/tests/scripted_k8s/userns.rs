//! The part of a cluster `k8s.pods.user-namespaces` uses (`harness/cli/tests/k8s_userns.rs`):
//! probe pods in its namespaces (`nfvi-verify-userns-*`) that end at once, their logs (the
//! `/proc/self/uid_map` they print) and their events. What the node's kubelet and runtime
//! would print is scripted by `Spec::user_namespaces`: no node runs here, so the maps are
//! the kernel's format with values as a kubelet that gives each pod 65536 IDs hands out.
//! The namespace and its deletion are the main server's (mod.rs).

use serde_json::{Value, json};

use super::{JSON, PodStore, Request, Spec, list, status};

/// How the cluster treats a pod with `spec.hostUsers: false`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UserNs {
    /// The kubelet and the runtime support user namespaces: the pod gets a range of its own.
    Supported,
    /// The API server drops `spec.hostUsers` (the UserNamespacesSupport feature gate off):
    /// the pod runs with the node's IDs.
    Dropped,
    /// The field is kept, but the node runs the pod with the node's IDs anyway.
    Ignored,
    /// An admission webhook refuses the pod (403).
    Refused,
    /// The runtime lacks support: the pod never starts, a Warning event says why.
    RuntimeLacks,
}

/// The uid_map of a process in the node's user namespace, as the kernel prints it.
pub const IDENTITY_MAP: &str = "         0          0 4294967295\n";
/// The uid_map of a pod the kubelet gave IDs 1879113728 to 1879179263.
pub const USERNS_MAP: &str = "         0 1879113728      65536\n";
/// The message of the Warning event when the runtime lacks support (stand-in wording).
pub const RUNTIME_LACKS: &str = "Failed to create pod sandbox: rpc error: code = Unknown desc = the container runtime does not support user namespaces (hostUsers: false)";
/// The message of the admission webhook's refusal.
pub const REFUSED: &str = "admission webhook \"userns-policy.example.com\" denied the request: spec.hostUsers: false is not allowed in this cluster";

fn wants_userns(pod: &Value) -> bool {
    pod["spec"]["hostUsers"] == json!(false)
}

/// Answers pod and event requests in the check's namespaces; `None` for anything else.
pub fn respond(
    req: &Request<'_>,
    spec: &Spec,
    pods: &PodStore,
) -> Option<(u16, &'static str, Vec<u8>)> {
    let segs: Vec<&str> = req.path.trim_start_matches('/').split('/').collect();
    let ok = |code: u16, v: &Value| Some((code, JSON, v.to_string().into_bytes()));
    let ns = match segs.as_slice() {
        ["api", "v1", "namespaces", ns, ..] if ns.starts_with("nfvi-verify-userns-") => *ns,
        _ => return None,
    };
    let key = |name: &str| format!("{ns}/{name}");
    match (req.method, &segs[4..]) {
        ("POST", ["pods"]) => {
            let mut v: Value = serde_json::from_slice(req.body).unwrap_or(Value::Null);
            if wants_userns(&v) {
                match spec.user_namespaces {
                    UserNs::Refused => {
                        let name = v["metadata"]["name"].as_str().unwrap_or("");
                        return ok(
                            403,
                            &status(
                                403,
                                "Forbidden",
                                &format!("pods \"{name}\" is forbidden: {REFUSED}"),
                            ),
                        );
                    }
                    UserNs::Dropped => {
                        v["spec"].as_object_mut()?.remove("hostUsers");
                    }
                    _ => {}
                }
            }
            let name = v["metadata"]["name"].as_str().unwrap_or("").to_owned();
            v["metadata"]["namespace"] = json!(ns);
            v["metadata"]["resourceVersion"] = json!("3000");
            pods.lock().unwrap().insert(key(&name), v.clone());
            ok(201, &v)
        }
        ("GET", ["pods", name]) => {
            let Some(mut p) = pods.lock().unwrap().get(&key(name)).cloned() else {
                return ok(
                    404,
                    &status(404, "NotFound", &format!("pods \"{name}\" not found")),
                );
            };
            let starts = !(wants_userns(&p) && spec.user_namespaces == UserNs::RuntimeLacks);
            let image = p["spec"]["containers"][0]["image"].clone();
            let state = if starts {
                json!({"terminated": {"exitCode": 0, "reason": "Completed"}})
            } else {
                json!({"waiting": {"reason": "ContainerCreating"}})
            };
            p["status"] = json!({
                "phase": if starts { "Succeeded" } else { "Pending" },
                "podIP": "10.244.1.9",
                "hostIP": "192.0.2.4",
                "conditions": [{"type": "PodScheduled", "status": "True"}],
                "containerStatuses": [{"name": "probe", "image": image, "imageID": "", "ready": false, "restartCount": 0, "state": state}]
            });
            ok(200, &p)
        }
        ("GET", ["pods", name, "log"]) => {
            let Some(p) = pods.lock().unwrap().get(&key(name)).cloned() else {
                return ok(404, &status(404, "NotFound", "pods not found"));
            };
            let map = match (wants_userns(&p), spec.user_namespaces) {
                (true, UserNs::Supported) => USERNS_MAP,
                (true, UserNs::RuntimeLacks) => "",
                _ => IDENTITY_MAP,
            };
            Some((200, "text/plain", map.as_bytes().to_vec()))
        }
        ("GET", ["events"]) => {
            let name = req
                .query
                .split('&')
                .find_map(|kv| kv.strip_prefix("fieldSelector=involvedObject.name%3D"))
                .unwrap_or("")
                .to_owned();
            let userns = pods
                .lock()
                .unwrap()
                .get(&key(&name))
                .is_some_and(wants_userns);
            let mut items = vec![json!({
                "metadata": {"name": format!("{name}.1"), "namespace": ns},
                "involvedObject": {"kind": "Pod", "name": name, "namespace": ns},
                "type": "Normal", "reason": "Scheduled", "message": format!("Successfully assigned {ns}/{name}")
            })];
            if userns && spec.user_namespaces == UserNs::RuntimeLacks {
                items.push(json!({
                    "metadata": {"name": format!("{name}.2"), "namespace": ns},
                    "involvedObject": {"kind": "Pod", "name": name, "namespace": ns},
                    "type": "Warning", "reason": "FailedCreatePodSandBox", "message": RUNTIME_LACKS
                }));
            }
            ok(200, &list("EventList", "v1", items))
        }
        _ => None,
    }
}
