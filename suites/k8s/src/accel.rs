//! Acceleration on the network-intensive workers (RA2 network-intensive profile), read
//! through the API: SR-IOV virtual functions a device plugin advertises (ra2.ntw.008),
//! extended resources device plugins registered at all (ra2.ntw.012, and through them the
//! DevicePlugins feature gate, ra2.k8s.007), and NetworkAttachmentDefinitions whose CNI
//! plugin can use SR-IOV, DPDK or VPP (ra2.ntw.010).
//!
//! The workers judged are those of the hugepages check ([`crate::checks::network_intensive`]):
//! labelled `anuket.io/profile/network-intensive`, or all workers when the target's profile
//! is network-intensive; with none on a basic target, the checks are not applicable. Every
//! judge is a pure function of what was read, table-tested below.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, ApiResource, DynamicObject, ListParams};
use nfvi_harness::{Check, CheckContext, CheckMeta, CheckResult, Outcome, Severity, declare};
use nfvi_reference_model::Area;
use serde_json::Value;

use crate::area::KubernetesConfig;
use crate::cluster::{self, Cluster};

/// Allocatable names the kubelet itself reports; everything else with a domain is an
/// extended resource, which on a node's status comes from a device plugin (or a hand-made
/// status patch, which the evidence would show as a resource no plugin DaemonSet serves).
const BUILT_IN: &[&str] = &["cpu", "memory", "ephemeral-storage", "pods", "storage"];
const BUILT_IN_PREFIXES: &[&str] = &["hugepages-", "attachable-volumes-", "requests.", "limits."];

/// The Kubernetes minor from which DevicePlugins is GA and can no longer be switched off.
const DEVICE_PLUGINS_LOCKED: u32 = 26;

/// One network-intensive worker as the judges see it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Worker {
    pub(crate) name: String,
    pub(crate) kubelet: String,
    /// `status.allocatable`, quantities as the API shows them.
    pub(crate) allocatable: BTreeMap<String, String>,
}

impl Worker {
    fn of(n: &Node) -> Self {
        let status = n.status.as_ref();
        Self {
            name: n.metadata.name.clone().unwrap_or_default(),
            kubelet: status
                .and_then(|s| s.node_info.as_ref())
                .map(|i| i.kubelet_version.clone())
                .unwrap_or_default(),
            allocatable: status
                .and_then(|s| s.allocatable.as_ref())
                .map(|a| a.iter().map(|(k, q)| (k.clone(), q.0.clone())).collect())
                .unwrap_or_default(),
        }
    }

    /// The allocatable resources `keep` selects with a quantity above zero, as `name=qty`.
    fn positive(&self, keep: impl Fn(&str) -> bool) -> Vec<String> {
        self.allocatable
            .iter()
            .filter(|(k, q)| keep(k) && positive(q))
            .map(|(k, q)| format!("{k}={q}"))
            .collect()
    }
}

/// Whether a quantity (`8`, `1k`, `0`, `500m`) is above zero; anything unreadable is not.
pub(crate) fn positive(q: &str) -> bool {
    let digits: String = q
        .trim()
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    let rest = &q.trim()[digits.len()..];
    let exponent = rest
        .strip_prefix(['e', 'E'])
        .map(|e| e.strip_prefix(['+', '-']).unwrap_or(e))
        .is_some_and(|e| !e.is_empty() && e.bytes().all(|b| b.is_ascii_digit()));
    let suffix_ok = exponent
        || matches!(
            rest,
            "" | "m" | "k" | "M" | "G" | "T" | "P" | "E" | "Ki" | "Mi" | "Gi" | "Ti" | "Pi" | "Ei"
        );
    suffix_ok && digits.parse::<f64>().is_ok_and(|v| v > 0.0)
}

/// Whether an allocatable name is an extended resource (`vendor.example/thing`).
pub(crate) fn is_extended(name: &str) -> bool {
    let Some((domain, _)) = name.split_once('/') else {
        return false;
    };
    let reserved = domain == "kubernetes.io" || domain.ends_with(".kubernetes.io");
    !reserved && !BUILT_IN.contains(&name) && !BUILT_IN_PREFIXES.iter().any(|p| name.starts_with(p))
}

/// A kubelet version's minor (`v1.33.4` → 33).
fn kubelet_minor(v: &str) -> Option<u32> {
    let mut it = v.trim_start_matches('v').split(['.', '-', '+']);
    (it.next()? == "1").then_some(())?;
    it.next()?.parse().ok()
}

fn name_of(m: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> String {
    format!(
        "{}/{}",
        m.namespace.as_deref().unwrap_or(""),
        m.name.as_deref().unwrap_or("")
    )
}

/// The SR-IOV device plugin's DaemonSets (label `app=sriovdp`, as its deployment manifest
/// sets, or a name that says so), with their readiness: evidence, never the judgement.
pub(crate) fn sriov_daemonsets(daemonsets: &[DaemonSet]) -> Vec<String> {
    daemonsets
        .iter()
        .filter(|d| {
            let app = d
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get("app"))
                .map(String::as_str);
            let name = d.metadata.name.as_deref().unwrap_or("");
            app == Some("sriovdp") || name.contains("sriov-device-plugin")
        })
        .map(|d| {
            let (ready, want) = d
                .status
                .as_ref()
                .map_or((0, 0), |s| (s.number_ready, s.desired_number_scheduled));
            format!("{} ({ready}/{want} ready)", name_of(&d.metadata))
        })
        .collect()
}

fn per_worker(o: Outcome, workers: &[Worker], keep: impl Fn(&str) -> bool) -> Outcome {
    workers.iter().fold(o, |o, w| {
        let found = w.positive(&keep);
        o.with_property(
            &w.name,
            if found.is_empty() {
                "none".to_owned()
            } else {
                found.join(", ")
            },
        )
    })
}

/// ra2.ntw.008: every network-intensive worker advertises at least one resource matching
/// `patterns` (`kubernetes.sriov_resources`) with a quantity above zero.
pub(crate) fn judge_sriov_plugin(
    workers: &[Worker],
    patterns: &[String],
    plugin: &Result<Vec<String>, String>,
) -> Outcome {
    let matches =
        |k: &str| is_extended(k) && patterns.iter().any(|p| nfvi_harness::glob::matches(p, k));
    let plugin_shown = match plugin {
        Ok(ds) if ds.is_empty() => "no DaemonSet labelled app=sriovdp".to_owned(),
        Ok(ds) => ds.join(", "),
        Err(e) => format!("not read: {e}"),
    };
    let evidence = |o: Outcome| {
        per_worker(o, workers, matches)
            .with_property("sriov_resources", patterns.join(", "))
            .with_property("SR-IOV device plugin DaemonSet", &plugin_shown)
    };
    if workers.is_empty() {
        return evidence(Outcome::fail("the cluster has no worker node"));
    }
    if patterns.is_empty() {
        return evidence(Outcome::error(
            "kubernetes.sriov_resources is empty, so no resource can be told to be an SR-IOV VF pool",
        ));
    }
    let missing: Vec<String> = workers
        .iter()
        .filter(|w| w.positive(matches).is_empty())
        .map(|w| {
            let other: Vec<String> = w.positive(is_extended);
            format!(
                "{} (extended resources: {})",
                w.name,
                if other.is_empty() {
                    "none".to_owned()
                } else {
                    other.join(", ")
                }
            )
        })
        .collect();
    evidence(if missing.is_empty() {
        Outcome::pass(format!(
            "{} network-intensive worker(s) advertise SR-IOV VFs: {} (device plugin: {plugin_shown})",
            workers.len(),
            workers
                .iter()
                .map(|w| format!("{} {}", w.name, w.positive(matches).join(", ")))
                .collect::<Vec<_>>()
                .join("; ")
        ))
    } else {
        Outcome::fail(format!(
            "network-intensive workers advertise no SR-IOV VF resource matching kubernetes.sriov_resources ({}): {}; deploy the SR-IOV network device plugin with a resourceList for their VFs (device plugin: {plugin_shown})",
            patterns.join(", "),
            missing.join(", ")
        ))
    })
}

/// ra2.ntw.012 and ra2.k8s.007: every network-intensive worker has at least one extended
/// resource with a quantity above zero, which a device plugin registered with its kubelet;
/// that registration is the only proof through the API that the DevicePlugins gate is on.
pub(crate) fn judge_device_plugins(workers: &[Worker]) -> Outcome {
    let evidence = |o: Outcome| {
        workers
            .iter()
            .fold(per_worker(o, workers, is_extended), |o, w| {
                o.with_property(format!("kubelet {}", w.name), &w.kubelet)
            })
    };
    if workers.is_empty() {
        return evidence(Outcome::fail("the cluster has no worker node"));
    }
    let missing: Vec<String> = workers
        .iter()
        .filter(|w| w.positive(is_extended).is_empty())
        .map(|w| {
            let gate = match kubelet_minor(&w.kubelet) {
                Some(m) if m >= DEVICE_PLUGINS_LOCKED => "DevicePlugins is locked on".to_owned(),
                Some(_) => {
                    "DevicePlugins may be switched off with --feature-gates there".to_owned()
                }
                None => "version unreadable".to_owned(),
            };
            format!("{} (kubelet {}: {gate})", w.name, w.kubelet)
        })
        .collect();
    evidence(if missing.is_empty() {
        Outcome::pass(format!(
            "device plugins registered extended resources on all {} network-intensive worker(s), so the DevicePlugins feature gate is on there (GA and locked on since Kubernetes 1.{DEVICE_PLUGINS_LOCKED}; a registered resource is the only proof the API shows)",
            workers.len()
        ))
    } else {
        Outcome::fail(format!(
            "no device plugin registered an extended resource (FPGA, SR-IOV or another accelerator) on: {}; without one, neither the accelerators nor the DevicePlugins feature gate are observed",
            missing.join(", ")
        ))
    })
}

/// One NetworkAttachmentDefinition as the judge sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Nad {
    /// `namespace/name`.
    pub(crate) name: String,
    /// `spec.config`, the CNI configuration (a conf or a conflist), as stored.
    pub(crate) config: String,
    /// The `k8s.v1.cni.cncf.io/resourceName` annotation: the device-plugin resource the
    /// attachment's devices come from.
    pub(crate) resource: Option<String>,
}

/// Why a CNI plugin entry counts as accelerated, or `None`.
///
/// The types are the plugins' own: `sriov` (sriov-cni), `ib-sriov` (ib-sriov-cni),
/// `userspace` (userspace-cni-network-plugin: OVS-DPDK or VPP, named by `host.engine`),
/// `accelerated-bridge` (VF representors in switchdev mode), `host-device` when it moves a
/// PCI device (`pciBusID`, or a device plugin's resource: DPDK with vfio-pci), and `ovs`
/// (ovs-cni) only with a device plugin's resource (hardware offload on VFs), since plain ovs
/// plugs veths into the kernel datapath.
pub(crate) fn accelerated(plugin: &Value, resource: Option<&str>) -> Option<String> {
    let ty = plugin.get("type").and_then(Value::as_str)?;
    match ty {
        "sriov" => Some("sriov (SR-IOV VF)".to_owned()),
        "ib-sriov" => Some("ib-sriov (InfiniBand SR-IOV VF)".to_owned()),
        "accelerated-bridge" => Some("accelerated-bridge (SR-IOV switchdev)".to_owned()),
        "userspace" => {
            let engine = plugin
                .pointer("/host/engine")
                .and_then(Value::as_str)
                .unwrap_or("engine unset");
            Some(format!(
                "userspace ({})",
                nfvi_harness::truncate_chars(engine, 40)
            ))
        }
        "host-device" => {
            let pci = plugin.get("pciBusID").and_then(Value::as_str);
            match (pci, resource) {
                (Some(p), _) => Some(format!(
                    "host-device (PCI {})",
                    nfvi_harness::truncate_chars(p, 40)
                )),
                (None, Some(r)) => Some(format!(
                    "host-device ({})",
                    nfvi_harness::truncate_chars(r, 80)
                )),
                (None, None) => None,
            }
        }
        "ovs" => {
            resource.map(|r| format!("ovs with offload ({})", nfvi_harness::truncate_chars(r, 80)))
        }
        _ => None,
    }
}

/// The CNI plugin entries of a conf (`{type}`) or conflist (`{plugins: [...]}`); `Err` when
/// the text is not a JSON object.
fn plugins(config: &str) -> Result<Vec<Value>, String> {
    let v: Value = serde_json::from_str(config).map_err(|e| format!("not JSON: {e}"))?;
    if !v.is_object() {
        return Err("not a JSON object".to_owned());
    }
    Ok(match v.get("plugins").and_then(Value::as_array) {
        Some(list) => list.clone(),
        None => vec![v],
    })
}

/// ra2.ntw.010: at least one NetworkAttachmentDefinition uses an accelerated CNI plugin;
/// `nads` is `Err(reason)` when the NetworkAttachmentDefinition API is not served.
pub(crate) fn judge_accelerated_cni(nads: &Result<Vec<Nad>, String>) -> Outcome {
    let nads = match nads {
        Ok(n) => n,
        Err(why) => {
            return Outcome::fail(format!(
                "no accelerated CNI plugin can be attached: {why}; deploy Multus with the NetworkAttachmentDefinition CRD and SR-IOV, DPDK or VPP attachments"
            ));
        }
    };
    let mut o = Outcome::pass("");
    let mut found = Vec::new();
    let mut seen_types = std::collections::BTreeSet::new();
    for nad in nads {
        let shown = match plugins(&nad.config) {
            Err(e) => format!("config unreadable ({e})"),
            Ok(list) => {
                let mut parts = Vec::new();
                for p in &list {
                    let ty = p.get("type").and_then(Value::as_str).unwrap_or("(no type)");
                    let ty = nfvi_harness::truncate_chars(ty, 40);
                    seen_types.insert(ty.clone());
                    match accelerated(p, nad.resource.as_deref()) {
                        Some(why) => {
                            found.push(format!("{} ({why})", nad.name));
                            parts.push(why);
                        }
                        None => parts.push(ty),
                    }
                }
                parts.join(", ")
            }
        };
        o = o.with_property(format!("nad {}", nad.name), shown);
    }
    if !found.is_empty() {
        o.message = format!(
            "{} NetworkAttachmentDefinition(s) use an accelerated CNI plugin: {}",
            found.len(),
            found.join(", ")
        );
        return o;
    }
    let mut f = Outcome::fail(if nads.is_empty() {
        "no NetworkAttachmentDefinition exists in any namespace, so no SR-IOV, DPDK or VPP CNI plugin is deployed for workloads".to_owned()
    } else {
        format!(
            "none of the {} NetworkAttachmentDefinition(s) uses an SR-IOV, DPDK or VPP CNI plugin (sriov, ib-sriov, userspace, accelerated-bridge, host-device with a PCI device, ovs with offload); types seen: {}",
            nads.len(),
            seen_types.into_iter().collect::<Vec<_>>().join(", ")
        )
    });
    f.evidence = o.evidence;
    f
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    SriovPlugin,
    DevicePlugins,
    AcceleratedCni,
}

#[track_caller]
fn meta(id: &str, title: &str, covers: &[&str]) -> CheckMeta {
    CheckMeta::new(id, Area::K8s, title)
        .subject("kubernetes-api")
        .covers(Severity::Must, covers)
        .needs([crate::kubeconfig_need()])
        .read_only(
            "none: read-only API calls (list nodes, daemonsets, network-attachment-definitions)",
        )
        .timeout(Duration::from_secs(90))
}

/// The acceleration checks.
pub(crate) fn checks() -> Vec<Arc<dyn Check>> {
    [
        declare(
            meta(
                "k8s.devices.sriov-plugin",
                "Network-intensive workers advertise SR-IOV virtual functions through a device plugin",
                &["ra2.ntw.008"],
            ),
            |cx| Box::pin(run(Kind::SriovPlugin, cx)),
        ),
        declare(
            meta(
                "k8s.devices.plugins",
                "Device plugins register accelerator resources on network-intensive workers (DevicePlugins feature gate on)",
                &["ra2.ntw.012", "ra2.k8s.007"],
            ),
            |cx| Box::pin(run(Kind::DevicePlugins, cx)),
        ),
        declare(
            meta(
                "k8s.network.accelerated-cni",
                "A NetworkAttachmentDefinition uses an SR-IOV, DPDK or VPP CNI plugin",
                &["ra2.ntw.010"],
            ),
            |cx| Box::pin(run(Kind::AcceleratedCni, cx)),
        ),
    ]
    .into_iter()
    .map(|d| d.into_check())
    .collect()
}

async fn run(kind: Kind, cx: &CheckContext) -> CheckResult {
    let c = cluster::for_check(cx).await?;
    let evidence = |o: Outcome| {
        o.with_property("API server", &c.server)
            .with_property("kubeconfig user", &c.user)
    };
    judge(kind, &c, cx)
        .await
        .map(evidence)
        .map_err(|nfvi_harness::CheckError(o)| evidence(o).into())
}

async fn judge(kind: Kind, c: &Cluster, cx: &CheckContext) -> CheckResult {
    let nodes = c.nodes().await?;
    let chosen = crate::checks::network_intensive(&nodes, cx.target().profile.as_str())?;
    let workers: Vec<Worker> = chosen.into_iter().map(Worker::of).collect();
    Ok(match kind {
        Kind::SriovPlugin => {
            let plugin = c
                .daemonsets()
                .await
                .map(|d| sriov_daemonsets(&d))
                .map_err(|e| e.message);
            let k = cx.target().config::<KubernetesConfig>();
            judge_sriov_plugin(&workers, &k.sriov_resources, &plugin)
        }
        Kind::DevicePlugins => judge_device_plugins(&workers),
        Kind::AcceleratedCni => {
            if workers.is_empty() {
                return Ok(Outcome::fail("the cluster has no worker node"));
            }
            judge_accelerated_cni(&list_nads(c).await?)
        }
    })
}

/// Every NetworkAttachmentDefinition; `Ok(Err(why))` when the API is not served (404: no
/// Multus CRD), an error outcome for any other failure to read.
async fn list_nads(c: &Cluster) -> Result<Result<Vec<Nad>, String>, Outcome> {
    let ar = ApiResource {
        group: "k8s.cni.cncf.io".into(),
        version: "v1".into(),
        api_version: "k8s.cni.cncf.io/v1".into(),
        kind: "NetworkAttachmentDefinition".into(),
        plural: "network-attachment-definitions".into(),
    };
    let api: Api<DynamicObject> = Api::all_with(c.client().clone(), &ar);
    let what = "list network-attachment-definitions (all namespaces)";
    match api.list(&ListParams::default()).await {
        Ok(list) => Ok(Ok(list
            .items
            .into_iter()
            .map(|o| Nad {
                name: name_of(&o.metadata),
                config: o
                    .data
                    .pointer("/spec/config")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned(),
                resource: o
                    .metadata
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get("k8s.v1.cni.cncf.io/resourceName"))
                    .cloned(),
            })
            .collect())),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(Err(
            "the NetworkAttachmentDefinition API (k8s.cni.cncf.io/v1) is not served (404): Multus or its CRD is not installed".to_owned(),
        )),
        Err(e) => Err(c.explain(what, &e).outcome()),
    }
}

#[cfg(test)]
#[path = "accel_tests.rs"]
mod tests;
