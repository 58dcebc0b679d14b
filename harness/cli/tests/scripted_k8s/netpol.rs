//! The part of a cluster `k8s.network-policy.enforced` uses (`harness/cli/tests/k8s_netpol.rs`):
//! NetworkPolicies in its namespaces (`nfvi-verify-net-policy-*`), and what its one-shot
//! client probe pods (`nfvi-verify probe ping`) report. No pod network runs here: when a
//! client is created, the server decides from the NetworkPolicies of its namespace (pod
//! selectors by `matchLabels`, ingress rules `from` pod selectors, ports with TCP as the
//! default protocol, as the API defines them) whether the responder would answer it, and
//! `Spec::network_policy` says whether the network solution enforces them at all. The
//! client's phase (mod.rs `pod_view`) and log follow from that: the prober's JSON report when
//! answered, its error line when not. The namespace and its deletion are the main server's.

use std::collections::BTreeMap;
use std::sync::{Mutex, OnceLock};

use serde_json::{Value, json};

use super::{JSON, PodStore, Request, Spec, status};

/// How the cluster's network solution treats NetworkPolicies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NetPol {
    /// Enforced as written.
    Enforced,
    /// Accepted by the API and ignored by the pod network.
    Ignored,
    /// Once a policy exists in the namespace nothing reaches its pods (a broken
    /// implementation, or a path that broke).
    BlocksAll,
    /// Enforced, but a client the policy stops cannot send at all (its probes are refused
    /// locally, "Operation not permitted"): nothing is observed there.
    DeniedNotSent,
    /// No client ever gets an answer, policy or not (a pod network that does not carry the
    /// probes).
    NoPath,
}

const PREFIX: &str = "nfvi-verify-net-policy-";
/// Where the server keeps a client's fate on the stored pod.
const FATE: &str = "scripted.nfvi-verify/probe";

/// The NetworkPolicies created, by namespace (namespaces are unique per run, so one table
/// serves every server of the process).
fn policies() -> &'static Mutex<BTreeMap<String, Vec<Value>>> {
    static P: OnceLock<Mutex<BTreeMap<String, Vec<Value>>>> = OnceLock::new();
    P.get_or_init(Default::default)
}

/// Whether `selector` (`matchLabels` only; `{}` selects everything) selects `labels`.
fn selects(selector: &Value, labels: &Value) -> bool {
    if selector.get("matchExpressions").is_some() {
        return false;
    }
    selector["matchLabels"]
        .as_object()
        .into_iter()
        .flatten()
        .all(|(k, v)| labels[k.as_str()] == *v)
}

/// Whether the policies of a namespace let a pod labelled `client` reach the pods labelled
/// `target` on UDP `port`.
fn admitted(policies: &[Value], target: &Value, client: &Value, port: u64) -> bool {
    let ingress_policies: Vec<&Value> = policies
        .iter()
        .filter(|p| selects(&p["spec"]["podSelector"], target))
        .filter(|p| {
            p["spec"]["policyTypes"]
                .as_array()
                .is_none_or(|t| t.iter().any(|t| t == "Ingress"))
        })
        .collect();
    if ingress_policies.is_empty() {
        return true;
    }
    ingress_policies.iter().any(|p| {
        p["spec"]["ingress"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|rule| {
                let from = rule["from"].as_array().is_none_or(|f| {
                    f.is_empty()
                        || f.iter().any(|peer| {
                            peer.get("namespaceSelector").is_none()
                                && peer.get("ipBlock").is_none()
                                && selects(&peer["podSelector"], client)
                        })
                });
                let ports = rule["ports"].as_array().is_none_or(|ps| {
                    ps.is_empty()
                        || ps.iter().any(|p| {
                            p["protocol"].as_str().unwrap_or("TCP") == "UDP"
                                && p["port"].as_u64().is_none_or(|n| n == port)
                        })
                });
                from && ports
            })
    })
}

/// What a client's probes get: `answered`, `silent` or `not-sent`.
fn fate(spec: &Spec, policies: &[Value], responders: &[Value], client: &Value) -> &'static str {
    let port = client["spec"]["containers"][0]["args"][2]
        .as_str()
        .and_then(|a| a.rsplit(':').next()?.parse().ok())
        .unwrap_or(0);
    let labels = &client["metadata"]["labels"];
    let by_policy = responders
        .iter()
        .all(|r| admitted(policies, &r["metadata"]["labels"], labels, port));
    match spec.network_policy {
        NetPol::NoPath => "silent",
        NetPol::Ignored => "answered",
        NetPol::BlocksAll if policies.is_empty() => "answered",
        NetPol::BlocksAll => "silent",
        NetPol::Enforced if by_policy => "answered",
        NetPol::Enforced => "silent",
        NetPol::DeniedNotSent if by_policy => "answered",
        NetPol::DeniedNotSent => "not-sent",
    }
}

/// Whether the server scripts this pod's end (a client of the check, on a server whose
/// clients finish).
fn scripted(p: &Value, spec: &Spec) -> Option<&'static str> {
    let fate = p["metadata"]["annotations"][FATE].as_str()?;
    if spec.probe_client_hangs || !spec.probe_succeeds {
        return None;
    }
    Some(match fate {
        "answered" => "answered",
        "not-sent" => "not-sent",
        _ => "silent",
    })
}

/// The phase of a client pod of the check (`None`: the main server's own rule).
pub fn phase(p: &Value, spec: &Spec) -> Option<&'static str> {
    scripted(p, spec).map(|f| {
        if f == "answered" {
            "Succeeded"
        } else {
            "Failed"
        }
    })
}

/// Answers NetworkPolicy creation and the clients' creation and logs in the check's
/// namespaces; `None` for anything else.
pub fn respond(
    req: &Request<'_>,
    spec: &Spec,
    pods: &PodStore,
) -> Option<(u16, &'static str, Vec<u8>)> {
    let segs: Vec<&str> = req.path.trim_start_matches('/').split('/').collect();
    let ok = |code: u16, v: &Value| Some((code, JSON, v.to_string().into_bytes()));
    match (req.method, segs.as_slice()) {
        (
            "POST",
            [
                "apis",
                "networking.k8s.io",
                "v1",
                "namespaces",
                ns,
                "networkpolicies",
            ],
        ) => {
            if !spec.network_policies {
                return ok(
                    404,
                    &status(
                        404,
                        "NotFound",
                        "the server could not find the requested resource",
                    ),
                );
            }
            let mut v: Value = serde_json::from_slice(req.body).unwrap_or(Value::Null);
            v["metadata"]["namespace"] = json!(ns);
            policies()
                .lock()
                .unwrap()
                .entry((*ns).to_owned())
                .or_default()
                .push(v.clone());
            ok(201, &v)
        }
        ("POST", ["api", "v1", "namespaces", ns, "pods"]) if ns.starts_with(PREFIX) => {
            let mut v: Value = serde_json::from_slice(req.body).unwrap_or(Value::Null);
            let name = v["metadata"]["name"].as_str().unwrap_or("").to_owned();
            v["metadata"]["namespace"] = json!(ns);
            let mut store = pods.lock().unwrap();
            if name.starts_with("client") {
                let responders: Vec<Value> = store
                    .iter()
                    .filter(|(k, _)| {
                        k.strip_prefix(&format!("{ns}/"))
                            .is_some_and(|n| !n.starts_with("client"))
                    })
                    .map(|(_, p)| p.clone())
                    .collect();
                let policies = policies()
                    .lock()
                    .unwrap()
                    .get(*ns)
                    .cloned()
                    .unwrap_or_default();
                let f = fate(spec, &policies, &responders, &v);
                v["metadata"]["annotations"][FATE] = json!(f);
            }
            store.insert(format!("{ns}/{name}"), v.clone());
            ok(201, &v)
        }
        ("GET", ["api", "v1", "namespaces", ns, "pods", name, "log"]) if ns.starts_with(PREFIX) => {
            let store = pods.lock().unwrap();
            let p = store.get(&format!("{ns}/{name}"))?;
            let fate = scripted(p, spec)?;
            let peer = p["spec"]["containers"][0]["args"][2]
                .as_str()
                .unwrap_or("")
                .to_owned();
            Some((200, "text/plain", log(fate, &peer).into_bytes()))
        }
        _ => None,
    }
}

/// What `nfvi-verify probe ping <peer> --count 20 --warmup 0 --format json` prints: its JSON
/// report when answered, its error line (on stderr, in the pod log too) when not.
fn log(fate: &str, peer: &str) -> String {
    match fate {
        "answered" => serde_json::to_string_pretty(&json!({
            "peer": peer, "mode": "blocking", "proto": "udp",
            "summary": {"count": 20, "lost": 0, "warmup_discarded": 0, "min_us": 38.2, "p50_us": 44.9, "p90_us": 51.3, "p99_us": 63.0, "p999_us": 63.0, "max_us": 63.0, "mean_us": 45.8, "stddev_us": 4.1, "elapsed_secs": 0.0011}
        }))
        .unwrap() + "\n",
        "not-sent" => format!("error: send to {peer}: Operation not permitted (os error 1)\n"),
        _ => format!(
            "error: {peer} did not answer 10 probes in a row (200 ms each): unreachable or not running a responder\n"
        ),
    }
}
