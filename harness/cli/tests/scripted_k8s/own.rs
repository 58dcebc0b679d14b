//! The parts of a cluster the own network checks use (`harness/cli/tests/k8s_own.rs`):
//! NetworkAttachmentDefinitions, whose whereabouts range the server then hands secondary
//! addresses from (standing in for Multus and whereabouts); Services of type LoadBalancer,
//! given `Spec::lb_ip` as their external address (standing in for the load balancer); and
//! deletion of probe pods; IngressClasses (`Spec::ingress_classes`) and Ingresses, given
//! `Spec::ingress_ip` as their address (standing in for the ingress controller; the HTTP
//! behind that address is the test's own server on loopback, k8s_own.rs). With `lb_ip` set, the server also runs a real UDP echo responder
//! on 127.0.0.1 (`Server::lb_port`) standing in for the Service's backends behind the load
//! balancer: deleting a backend pod silences it for `Spec::lb_failover_gap_ms`, as a load
//! balancer does until it fails over to the other backend. No cluster data path is here:
//! the probes from the jump host reach that local process, said so in the tests.

use std::collections::BTreeMap;
use std::net::UdpSocket;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::{JSON, PodStore, Request, Spec, status};

/// The ranges of the NetworkAttachmentDefinitions created, by `namespace/name` (namespaces
/// are unique per run, so one table serves every server of the process).
fn ranges() -> &'static Mutex<BTreeMap<String, String>> {
    static R: OnceLock<Mutex<BTreeMap<String, String>>> = OnceLock::new();
    R.get_or_init(Default::default)
}

/// The secondary address the scripted whereabouts gives pod `host` (5 or 7) on network `net`
/// of namespace `ns`: from the attachment's range when the run created it, else
/// `198.18.{60 + i}.{host}`.
pub fn secondary_address(ns: &str, net: &str, i: usize, host: u8) -> String {
    let key = if net.contains('/') {
        net.to_owned()
    } else {
        format!("{ns}/{net}")
    };
    if let Some(r) = ranges().lock().unwrap().get(&key)
        && let Some((addr, len)) = r.split_once('/')
        && let (Ok(a), Ok(len)) = (addr.parse::<std::net::Ipv4Addr>(), len.parse::<u32>())
        && len <= 30
    {
        let base = u32::from(a) & (u32::MAX << (32 - len));
        return std::net::Ipv4Addr::from(base + u32::from(host)).to_string();
    }
    format!("198.18.{}.{host}", 60 + i)
}

/// The stand-in backends of the load balancer: an echo responder on loopback, silenced for
/// a while after each backend deletion.
pub struct LbResponder {
    pub port: u16,
    silent_until: Arc<Mutex<Option<Instant>>>,
}

impl LbResponder {
    pub fn start() -> Self {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = sock.local_addr().unwrap().port();
        let silent_until: Arc<Mutex<Option<Instant>>> = Arc::default();
        let s = silent_until.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 2048];
            while let Ok((n, from)) = sock.recv_from(&mut buf) {
                let silent = s.lock().unwrap().is_some_and(|t| Instant::now() < t);
                if !silent {
                    let _ = sock.send_to(&buf[..n], from);
                }
            }
        });
        Self { port, silent_until }
    }

    fn silence(&self, d: Duration) {
        *self.silent_until.lock().unwrap() = Some(Instant::now() + d);
    }
}

/// Services created, by `namespace/name`, and Ingresses, by `ingresses/namespace/name`.
pub type Services = Arc<Mutex<BTreeMap<String, Value>>>;

pub fn respond(
    req: &Request<'_>,
    spec: &Spec,
    pods: &PodStore,
    services: &Services,
    lb: Option<&LbResponder>,
) -> Option<(u16, &'static str, Vec<u8>)> {
    let segs: Vec<&str> = req.path.trim_start_matches('/').split('/').collect();
    let ok = |code: u16, v: &Value| Some((code, JSON, v.to_string().into_bytes()));
    match (req.method, segs.as_slice()) {
        (
            "POST",
            [
                "apis",
                "k8s.cni.cncf.io",
                "v1",
                "namespaces",
                ns,
                "network-attachment-definitions",
            ],
        ) => {
            let v: Value = serde_json::from_slice(req.body).unwrap_or(Value::Null);
            let name = v["metadata"]["name"].as_str().unwrap_or("").to_owned();
            let cfg: Value = serde_json::from_str(v["spec"]["config"].as_str().unwrap_or("{}"))
                .unwrap_or(Value::Null);
            if let Some(r) = cfg["ipam"]["range"].as_str() {
                ranges()
                    .lock()
                    .unwrap()
                    .insert(format!("{ns}/{name}"), r.to_owned());
            }
            ok(201, &v)
        }
        ("POST", ["api", "v1", "namespaces", ns, "services"]) => {
            let mut v: Value = serde_json::from_slice(req.body).unwrap_or(Value::Null);
            let name = v["metadata"]["name"].as_str().unwrap_or("").to_owned();
            v["metadata"]["namespace"] = json!(ns);
            v["spec"]["clusterIP"] = json!("10.96.100.10");
            // The stand-in backends listen on a port of their own: the Service is stored with
            // it (a real server keeps the port asked for; the check reads it back either way).
            // Without backends the port asked for stays, and nothing listens there.
            if let (Some(lb), true) = (lb, spec.lb_backends) {
                v["spec"]["ports"][0]["port"] = json!(lb.port);
            }
            services
                .lock()
                .unwrap()
                .insert(format!("{ns}/{name}"), v.clone());
            ok(201, &v)
        }
        ("GET", ["api", "v1", "namespaces", ns, "services", name]) if *ns != "default" => {
            let Some(mut v) = services
                .lock()
                .unwrap()
                .get(&format!("{ns}/{name}"))
                .cloned()
            else {
                return ok(404, &status(404, "NotFound", "services not found"));
            };
            v["status"] = match &spec.lb_ip {
                Some(ip) => json!({"loadBalancer": {"ingress": [{"ip": ip, "ipMode": "VIP"}]}}),
                None => json!({"loadBalancer": {}}),
            };
            ok(200, &v)
        }
        // The ingress controller's part: its IngressClasses, and an address for every
        // Ingress (stored next to the Services, under `ingresses/`).
        ("GET", ["apis", "networking.k8s.io", "v1", "ingressclasses"]) => {
            let items: Vec<Value> = spec
                .ingress_classes
                .iter()
                .map(|(name, default)| {
                    let mut m = json!({"name": name});
                    if *default {
                        m["annotations"] =
                            json!({"ingressclass.kubernetes.io/is-default-class": "true"});
                    }
                    json!({"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass", "metadata": m, "spec": {"controller": "k8s.io/ingress-nginx"}})
                })
                .collect();
            ok(
                200,
                &json!({"apiVersion": "networking.k8s.io/v1", "kind": "IngressClassList", "metadata": {}, "items": items}),
            )
        }
        (
            "POST",
            [
                "apis",
                "networking.k8s.io",
                "v1",
                "namespaces",
                ns,
                "ingresses",
            ],
        ) => {
            let mut v: Value = serde_json::from_slice(req.body).unwrap_or(Value::Null);
            let name = v["metadata"]["name"].as_str().unwrap_or("").to_owned();
            v["metadata"]["namespace"] = json!(ns);
            services
                .lock()
                .unwrap()
                .insert(format!("ingresses/{ns}/{name}"), v.clone());
            ok(201, &v)
        }
        (
            "GET",
            [
                "apis",
                "networking.k8s.io",
                "v1",
                "namespaces",
                ns,
                "ingresses",
                name,
            ],
        ) => {
            let Some(mut v) = services
                .lock()
                .unwrap()
                .get(&format!("ingresses/{ns}/{name}"))
                .cloned()
            else {
                return ok(404, &status(404, "NotFound", "ingresses not found"));
            };
            v["status"] = match &spec.ingress_ip {
                Some(ip) => json!({"loadBalancer": {"ingress": [{"ip": ip}]}}),
                None => json!({"loadBalancer": {}}),
            };
            ok(200, &v)
        }
        // whereabouts' IPPools, as killed runs left them (`Spec::leftovers` of kind IPPool).
        ("GET", ["apis", "whereabouts.cni.cncf.io", "v1alpha1", "ippools"]) => {
            let items: Vec<Value> = spec
                .leftovers
                .iter()
                .filter(|o| o["kind"] == "IPPool")
                .cloned()
                .collect();
            ok(
                200,
                &json!({"apiVersion": "whereabouts.cni.cncf.io/v1alpha1", "kind": "IPPoolList", "metadata": {}, "items": items}),
            )
        }
        (
            "DELETE",
            [
                "apis",
                "whereabouts.cni.cncf.io",
                "v1alpha1",
                "namespaces",
                ns,
                "ippools",
                name,
            ],
        ) => match spec.leftovers.iter().find(|o| {
            o["kind"] == "IPPool"
                && o["metadata"]["name"] == *name
                && o["metadata"]["namespace"] == *ns
        }) {
            Some(p) => ok(200, p),
            None => ok(404, &status(404, "NotFound", "ippools not found")),
        },
        ("DELETE", ["api", "v1", "namespaces", ns, "pods", name]) => {
            let gone = pods.lock().unwrap().remove(&format!("{ns}/{name}"));
            if gone.is_none() {
                return ok(404, &status(404, "NotFound", "pods not found"));
            }
            if let Some(lb) = lb {
                lb.silence(Duration::from_millis(spec.lb_failover_gap_ms));
            }
            ok(200, &gone.unwrap())
        }
        _ => None,
    }
}
