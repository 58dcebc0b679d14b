//! The RA2 checks read through the Kubernetes API. Each judge is a pure function of what the
//! cluster answered, so the tests can feed it recorded objects; the check around it only
//! fetches (through [`Cluster`]) and words failures to read.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Namespace, Node, Pod};
use k8s_openapi::api::storage::v1::StorageClass;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::version::Info;
use kube::api::{Api, ListParams};
use nfvi_harness::{
    Check, CheckContext, CheckError, CheckMeta, CheckResult, Outcome, Severity, declare,
};
use nfvi_reference_model::Area;
use serde_json::Value;

use crate::cluster::{self, Cluster, GroupVersion, ReadError, labels};

/// The Kubernetes minor versions RA2 names (this snapshot of RA2: 1.33).
pub const RA2_MINORS: &[u32] = &[33];

/// Most minor releases a kubelet may lag the API server (RA2 ra2.k8s.005).
pub const MAX_SKEW: u32 = 3;

/// The API group versions RA2 chapter 6 makes mandatory, GA in every release from 1.29.
pub const MANDATORY_GROUPS: &[&str] = &[
    "v1",
    "admissionregistration.k8s.io/v1",
    "apiextensions.k8s.io/v1",
    "apps/v1",
    "authentication.k8s.io/v1",
    "authorization.k8s.io/v1",
    "autoscaling/v1",
    "autoscaling/v2",
    "batch/v1",
    "certificates.k8s.io/v1",
    "coordination.k8s.io/v1",
    "discovery.k8s.io/v1",
    "events.k8s.io/v1",
    "networking.k8s.io/v1",
    "node.k8s.io/v1",
    "policy/v1",
    "rbac.authorization.k8s.io/v1",
    "scheduling.k8s.io/v1",
    "storage.k8s.io/v1",
];

/// Beta group versions a default API server still serves for compatibility (RA2's "legacy"
/// exception): API Priority and Fairness v1beta3, served by default up to 1.31.
pub const LEGACY_BETA: &[&str] = &["flowcontrol.apiserver.k8s.io/v1beta3"];

/// The alpha group RA2 itself needs (Node Feature Discovery's CRDs).
pub const ALLOWED_ALPHA_GROUPS: &[&str] = &["nfd.k8s-sigs.io"];

/// DaemonSet names of pod network (CNI) plugins, as their manifests name them.
pub const CNI_DAEMONSETS: &[(&str, &str)] = &[
    ("calico-node", "Calico"),
    ("cilium", "Cilium"),
    ("kube-flannel-ds", "Flannel"),
    ("kube-flannel", "Flannel"),
    ("canal", "Canal"),
    ("weave-net", "Weave Net"),
    ("antrea-agent", "Antrea"),
    ("kube-ovn-cni", "Kube-OVN"),
    ("ovnkube-node", "OVN-Kubernetes"),
    ("kube-router", "kube-router"),
    ("aws-node", "Amazon VPC CNI"),
    ("kindnet", "kindnet"),
];

/// DaemonSet name fragments of CNI multiplexers.
pub const MULTIPLEXERS: &[&str] = &["multus", "danm"];

const NAD_CRD: &str = "network-attachment-definitions.k8s.cni.cncf.io";
const CONTROL_PLANE_LABELS: &[&str] = &[
    "node-role.kubernetes.io/control-plane",
    "node-role.kubernetes.io/master",
];
const PROFILE_LABELS: &[&str] = &[
    "anuket.io/profile/basic",
    "anuket.io/profile/network-intensive",
];
const NI_LABEL: &str = "anuket.io/profile/network-intensive";
const ZONE_LABEL: &str = "topology.kubernetes.io/zone";

/// Which judgement a check makes: the checks share the cluster connection and its reads.
#[derive(Clone, Copy, Debug)]
enum Kind {
    ServerVersion,
    KubeletSkew,
    ControlPlane,
    Etcd,
    ControlPlanePerZone,
    WorkersPerZone,
    AlphaApis,
    BetaApis,
    MandatoryGroups,
    NetworkPolicy,
    NodesReady,
    ProfileLabels,
    Hugepages,
    CpuManager,
    TopologyManager,
    ReservedCpus,
    Cni,
    Multiplexer,
    DualStack,
    DefaultStorageClass,
    Rbac,
    Anonymous,
    NodeFeatureDiscovery,
}

/// The metadata every API check shares. `#[track_caller]`, so the check's own line is its
/// declaration site.
#[track_caller]
fn meta(id: &str, title: &str, severity: Severity, covers: &[&str]) -> CheckMeta {
    CheckMeta::new(id, Area::K8s, title)
        .subject("kubernetes-api")
        .covers(severity, covers)
        .needs([crate::kubeconfig_need()])
        .read_only("none: read-only API calls (get, list; kubelet configz through the nodes/proxy subresource)")
        .timeout(Duration::from_secs(90))
}

/// Every API check of the area.
pub fn checks() -> Vec<Arc<dyn Check>> {
    use Severity::{Must, Should};
    [
        declare(
            meta(
                "k8s.version.server",
                "The API server runs a Kubernetes version RA2 names",
                Must,
                &["ra2.k8s.005"],
            ),
            |cx| Box::pin(run(Kind::ServerVersion, cx)),
        ),
        declare(
            meta(
                "k8s.version.kubelet-skew",
                "Every kubelet is at most three minor releases behind the API server, never ahead",
                Must,
                &["ra2.k8s.005"],
            ),
            |cx| Box::pin(run(Kind::KubeletSkew, cx)),
        ),
        declare(
            meta(
                "k8s.control-plane.components",
                "The API server is ready, and the scheduler and controller manager hold their leader leases",
                Must,
                &["ra2.k8s.012#1"],
            ),
            |cx| Box::pin(run(Kind::ControlPlane, cx)),
        ),
        declare(
            meta(
                "k8s.control-plane.etcd",
                "etcd runs 3, 5 or 7 members, none on a worker node",
                Must,
                &["ra2.k8s.002"],
            ),
            |cx| Box::pin(run(Kind::Etcd, cx)),
        ),
        declare(
            meta(
                "k8s.topology.control-plane-per-zone",
                "Every zone has a control-plane node",
                Must,
                &["ra2.k8s.003"],
            ),
            |cx| Box::pin(run(Kind::ControlPlanePerZone, cx)),
        ),
        declare(
            meta(
                "k8s.topology.workers-per-zone",
                "Every zone has a worker node",
                Must,
                &["ra2.k8s.004"],
            ),
            |cx| Box::pin(run(Kind::WorkersPerZone, cx)),
        ),
        declare(
            meta(
                "k8s.api.no-alpha",
                "No alpha API is served, except those RA2 needs (Node Feature Discovery)",
                Must,
                &["ra2.k8s.012#2"],
            ),
            |cx| Box::pin(run(Kind::AlphaApis, cx)),
        ),
        declare(
            meta(
                "k8s.api.no-beta",
                "No built-in beta API is served, except legacy ones",
                Must,
                &["ra2.k8s.019"],
            ),
            |cx| Box::pin(run(Kind::BetaApis, cx)),
        ),
        declare(
            meta(
                "k8s.api.mandatory-groups",
                "Every API group RA2 makes mandatory is served at its GA version",
                Must,
                &["int.api.01@ra2", "int.api.03@ra2"],
            ),
            |cx| Box::pin(run(Kind::MandatoryGroups, cx)),
        ),
        declare(
            meta(
                "k8s.api.network-policy",
                "The NetworkPolicy API is served (networking.k8s.io/v1 networkpolicies)",
                Must,
                &["ra2.k8s.014"],
            ),
            |cx| Box::pin(run(Kind::NetworkPolicy, cx)),
        ),
        declare(
            meta(
                "k8s.nodes.ready",
                "Every node is Ready",
                Should,
                &[],
            ),
            |cx| Box::pin(run(Kind::NodesReady, cx)),
        ),
        declare(
            meta(
                "k8s.nodes.profile-labels",
                "Every worker node carries an anuket.io/profile label",
                Must,
                &["ra2.k8s.011"],
            ),
            |cx| Box::pin(run(Kind::ProfileLabels, cx)),
        ),
        declare(
            meta(
                "k8s.nodes.hugepages",
                "Network-intensive workers have 2 MiB and 1 GiB hugepages allocatable",
                Must,
                &["ra2.ch.001"],
            ),
            |cx| Box::pin(run(Kind::Hugepages, cx)),
        ),
        declare(
            meta(
                "k8s.kubelet.cpu-manager",
                "Network-intensive workers run the static CPU manager policy (kubelet configz)",
                Must,
                &["ra2.k8s.009", "ra2.k8s.006"],
            ),
            |cx| Box::pin(run(Kind::CpuManager, cx)),
        ),
        declare(
            meta(
                "k8s.kubelet.topology-manager",
                "Network-intensive workers run the single-numa-node topology manager policy (kubelet configz)",
                Must,
                &["ra2.k8s.006"],
            ),
            |cx| Box::pin(run(Kind::TopologyManager, cx)),
        ),
        declare(
            meta(
                "k8s.kubelet.reserved-cpus",
                "Every worker's kubelet reserves CPUs for system and Kubernetes daemons",
                Must,
                &["ra2.k8s.008", "i.cap.014"],
            ),
            |cx| Box::pin(run(Kind::ReservedCpus, cx)),
        ),
        declare(
            meta(
                "k8s.network.cni",
                "The default pod network is a CNI plugin, not kubenet",
                Must,
                &["ra2.ntw.002"],
            ),
            |cx| Box::pin(run(Kind::Cni, cx)),
        ),
        declare(
            meta(
                "k8s.network.multiplexer",
                "A CNI multiplexer comes with the NetworkAttachmentDefinition CRD (Network Plumbing WG v1)",
                Must,
                &["ra2.ntw.016"],
            ),
            |cx| Box::pin(run(Kind::Multiplexer, cx)),
        ),
        declare(
            meta(
                "k8s.network.dual-stack",
                "Every node has IPv4 and IPv6 pod ranges (or addresses)",
                Must,
                &["ra2.k8s.010", "inf.ntw.04"],
            ),
            |cx| Box::pin(run(Kind::DualStack, cx)),
        ),
        declare(
            meta(
                "k8s.storage.default-class",
                "A default StorageClass exists",
                Must,
                &["ra2.stg.010"],
            ),
            |cx| Box::pin(run(Kind::DefaultStorageClass, cx)),
        ),
        declare(
            meta(
                "k8s.security.rbac",
                "RBAC authorisation is served, with the bootstrap cluster roles",
                Must,
                &["sec.sys.007"],
            ),
            |cx| Box::pin(run(Kind::Rbac, cx)),
        ),
        declare(
            meta(
                "k8s.security.anonymous-refused",
                "Anonymous requests cannot list namespaces",
                Must,
                &["sec.sys.001"],
            ),
            |cx| Box::pin(run(Kind::Anonymous, cx)),
        ),
        declare(
            meta(
                "k8s.nodes.feature-discovery",
                "Node Feature Discovery labels the nodes (feature.node.kubernetes.io/*)",
                Must,
                &["ra2.ch.018"],
            ),
            |cx| Box::pin(run(Kind::NodeFeatureDiscovery, cx)),
        ),
    ]
    .into_iter()
    .map(|d| d.into_check())
    .collect()
}

/// Runs a check against the run's cluster; the server and user go on every outcome once the
/// cluster is connected, an early one too.
async fn run(kind: Kind, cx: &CheckContext) -> CheckResult {
    let cluster = cluster::for_check(cx).await?;
    let evidence = |o: Outcome| {
        o.with_property("API server", &cluster.server)
            .with_property("kubeconfig user", &cluster.user)
    };
    judge(kind, &cluster, cx)
        .await
        .map(evidence)
        .map_err(|CheckError(o)| evidence(o).into())
}

/// Reads what a check of `kind` needs and judges it.
async fn judge(kind: Kind, c: &Cluster, cx: &CheckContext) -> CheckResult {
    Ok(match kind {
        Kind::ServerVersion => server_version(&c.version().await?),
        Kind::KubeletSkew => kubelet_skew(&c.version().await?, &c.nodes().await?),
        Kind::ControlPlane => {
            let ready = c.readyz().await?;
            control_plane(&ready, &c.leases().await?, chrono::Utc::now().timestamp())
        }
        Kind::Etcd => etcd(&c.system_pods().await?, &c.nodes().await?),
        Kind::ControlPlanePerZone => per_zone(&c.nodes().await?, true),
        Kind::WorkersPerZone => per_zone(&c.nodes().await?, false),
        Kind::AlphaApis => no_alpha(&c.discovery().await?, &c.crds().await?),
        Kind::BetaApis => no_beta(&c.discovery().await?, &c.crds().await?),
        Kind::MandatoryGroups => mandatory_groups(&c.discovery().await?),
        Kind::NetworkPolicy => network_policy(&c.discovery().await?),
        Kind::NodesReady => nodes_ready(&c.nodes().await?),
        Kind::ProfileLabels => profile_labels(&c.nodes().await?),
        Kind::Hugepages => hugepages(&c.nodes().await?, cx.target().profile.as_str())?,
        Kind::CpuManager | Kind::TopologyManager | Kind::ReservedCpus => {
            let nodes = c.nodes().await?;
            let chosen: Vec<&Node> = match kind {
                Kind::ReservedCpus => workers(&nodes).collect(),
                _ => network_intensive(&nodes, cx.target().profile.as_str())?,
            };
            if chosen.is_empty() {
                return Ok(Outcome::fail("the cluster has no worker node"));
            }
            let mut configs = Vec::new();
            for n in chosen {
                let name = name_of(n);
                configs.push((name.clone(), c.configz(&name).await?));
            }
            match kind {
                Kind::CpuManager => kubelet_policy(&configs, "cpuManagerPolicy", "static"),
                Kind::TopologyManager => {
                    kubelet_policy(&configs, "topologyManagerPolicy", "single-numa-node")
                }
                _ => reserved_cpus(&configs),
            }
        }
        Kind::Cni => cni(&c.daemonsets().await?),
        Kind::Multiplexer => multiplexer(&c.daemonsets().await?, &c.crds().await?),
        Kind::DualStack => dual_stack(&c.nodes().await?),
        Kind::DefaultStorageClass => default_storage_class(&c.storage_classes().await?),
        Kind::Rbac => {
            let names: Vec<String> = c
                .cluster_roles()
                .await?
                .iter()
                .map(|r| name_of_meta(&r.metadata))
                .collect();
            rbac(&c.discovery().await?, &names)
        }
        Kind::Anonymous => {
            // The positive control: the same server accepts the kubeconfig's credentials.
            let control = c
                .nodes()
                .await
                .map(|n| n.len())
                .map_err(|e| e.message.clone());
            let anon = c.anonymous().await?;
            let r = Api::<Namespace>::all(anon.client().clone())
                .list(&ListParams::default().limit(1))
                .await;
            anonymous(
                control,
                r.map(|l| l.items.len()).map_err(|e| match &e {
                    kube::Error::Api(s) => Ok(s.code),
                    _ => Err(anon.explain("list namespaces without credentials", &e)),
                }),
            )?
        }
        Kind::NodeFeatureDiscovery => node_feature_discovery(&c.nodes().await?),
    })
}

fn name_of_meta(m: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> String {
    m.name.clone().unwrap_or_default()
}

fn name_of(n: &Node) -> String {
    name_of_meta(&n.metadata)
}

/// Parses `1.33` / `33+` style minors.
fn minor(s: &str) -> Option<u32> {
    s.trim_end_matches('+').parse().ok()
}

/// `v1.31.4-eks-abc` → (1, 31).
fn semver_minor(v: &str) -> Option<(u32, u32)> {
    let mut it = v.trim_start_matches('v').split(['.', '-', '+']);
    Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?))
}

pub(crate) fn is_control_plane(n: &Node) -> bool {
    let l = labels(&n.metadata);
    CONTROL_PLANE_LABELS.iter().any(|k| l.contains_key(*k))
}

fn workers(nodes: &[Node]) -> impl Iterator<Item = &Node> {
    nodes.iter().filter(|n| !is_control_plane(n))
}

fn fail_with(mut o: Outcome, evidence: Outcome) -> Outcome {
    o.evidence = evidence.evidence;
    o
}

/// ra2.k8s.005: the server's minor is one RA2 names.
pub(crate) fn server_version(info: &Info) -> Outcome {
    let shown = format!("{} ({}.{})", info.git_version, info.major, info.minor);
    let o = match (info.major.as_str(), minor(&info.minor)) {
        ("1", Some(m)) if RA2_MINORS.contains(&m) => {
            Outcome::pass(format!("Kubernetes {shown} is a version RA2 names"))
        }
        ("1", Some(_)) => Outcome::fail(format!(
            "Kubernetes {shown}; RA2 (this snapshot) names 1.{}",
            RA2_MINORS
                .iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(", 1.")
        )),
        _ => Outcome::fail(format!(
            "GET /version reports an unparseable version {shown}"
        )),
    };
    o.with_property("server version", &info.git_version)
        .with_property("platform", &info.platform)
}

/// ra2.k8s.005: kubelets lag by at most [`MAX_SKEW`] minors and are never newer.
pub(crate) fn kubelet_skew(info: &Info, nodes: &[Node]) -> Outcome {
    let Some(server) = minor(&info.minor) else {
        return Outcome::fail(format!(
            "the server's minor version `{}` does not parse",
            info.minor
        ));
    };
    let mut o = Outcome::pass("");
    let mut bad = Vec::new();
    for n in nodes {
        let name = name_of(n);
        let kubelet = n
            .status
            .as_ref()
            .and_then(|s| s.node_info.as_ref())
            .map(|i| i.kubelet_version.clone())
            .unwrap_or_default();
        o = o.with_property(format!("kubelet {name}"), &kubelet);
        match semver_minor(&kubelet) {
            Some((1, m)) if m <= server && server - m <= MAX_SKEW => {}
            Some((1, m)) if m > server => bad.push(format!("{name} runs kubelet {kubelet}, newer than the API server 1.{server}")),
            Some((1, m)) => bad.push(format!("{name} runs kubelet {kubelet}, {} minors behind the API server 1.{server} (at most {MAX_SKEW})", server - m)),
            _ => bad.push(format!("{name} reports an unparseable kubelet version `{kubelet}`")),
        }
    }
    if nodes.is_empty() {
        return Outcome::fail("the cluster lists no node");
    }
    if bad.is_empty() {
        o.message = format!(
            "{} kubelets within {MAX_SKEW} minors of the API server 1.{server}",
            nodes.len()
        );
        o
    } else {
        fail_with(Outcome::fail(bad.join("; ")), o)
    }
}

/// ra2.k8s.012 (first meaning): `/readyz` passes, and the scheduler's and controller
/// manager's leader leases were renewed within twice their duration (plus a minute for clock
/// differences).
pub(crate) fn control_plane(readyz: &str, leases: &[Lease], now_unix: i64) -> Outcome {
    let mut o = Outcome::pass("");
    let mut problems = Vec::new();
    let failed: Vec<&str> = readyz.lines().filter(|l| l.starts_with("[-]")).collect();
    if !readyz.contains("readyz check passed") || !failed.is_empty() {
        problems.push(format!(
            "the API server is not ready: {}",
            if failed.is_empty() {
                nfvi_harness::truncate_chars(readyz.trim(), 200)
            } else {
                failed.join(", ")
            }
        ));
    } else {
        o = o.with_property("kube-apiserver", "readyz check passed");
    }
    for component in ["kube-scheduler", "kube-controller-manager"] {
        let lease = leases
            .iter()
            .find(|l| l.metadata.name.as_deref() == Some(component));
        let Some(spec) = lease.and_then(|l| l.spec.as_ref()) else {
            problems.push(format!("no `{component}` lease in kube-system: the component is not running (or not electing a leader)"));
            continue;
        };
        let holder = spec.holder_identity.clone().unwrap_or_default();
        let duration = i64::from(spec.lease_duration_seconds.unwrap_or(15));
        match &spec.renew_time {
            Some(t) => {
                let age = now_unix - t.0.as_second();
                o = o.with_property(component, format!("held by {holder}, renewed {age} s ago"));
                if age > 2 * duration + 60 {
                    problems.push(format!("{component}'s lease (holder {holder}) was last renewed {age} s ago; its duration is {duration} s"));
                }
            }
            None => problems.push(format!("{component}'s lease has never been renewed")),
        }
    }
    if problems.is_empty() {
        o.message =
            "the API server is ready; the scheduler and controller manager hold their leases"
                .to_owned();
        o
    } else {
        fail_with(Outcome::fail(problems.join("; ")), o)
    }
}

/// ra2.k8s.002: etcd members (kube-system pods labelled `component=etcd`) number 3, 5 or 7,
/// all on control-plane nodes.
pub(crate) fn etcd(pods: &[Pod], nodes: &[Node]) -> Outcome {
    let members: Vec<&Pod> = pods
        .iter()
        .filter(|p| labels(&p.metadata).get("component").map(String::as_str) == Some("etcd"))
        .collect();
    if members.is_empty() {
        return Outcome::not_applicable(
            "etcd is not visible as kube-system pods (external etcd or a managed control plane): ra2.k8s.002 needs the deployment's own evidence",
        );
    }
    let mut o = Outcome::pass("");
    let mut on_workers = Vec::new();
    for p in &members {
        let node = p
            .spec
            .as_ref()
            .and_then(|s| s.node_name.clone())
            .unwrap_or_default();
        let cp = nodes
            .iter()
            .any(|n| name_of(n) == node && is_control_plane(n));
        o = o.with_property(
            name_of_meta(&p.metadata),
            format!(
                "on {node}{}",
                if cp { " (control plane)" } else { " (worker)" }
            ),
        );
        if !cp {
            on_workers.push(format!("{} on {node}", name_of_meta(&p.metadata)));
        }
    }
    let n = members.len();
    let mut problems = Vec::new();
    if ![3, 5, 7].contains(&n) {
        problems.push(format!("etcd has {n} member(s); RA2 asks for 3, 5 or 7"));
    }
    if !on_workers.is_empty() {
        problems.push(format!(
            "etcd members on worker nodes: {}",
            on_workers.join(", ")
        ));
    }
    if problems.is_empty() {
        o.message = format!("{n} etcd members, all on control-plane nodes");
        o
    } else {
        fail_with(Outcome::fail(problems.join("; ")), o)
    }
}

/// ra2.k8s.003 / ra2.k8s.004: every zone (`topology.kubernetes.io/zone`; unlabelled nodes form
/// one zone) has a control-plane node, or a worker.
pub(crate) fn per_zone(nodes: &[Node], control_plane: bool) -> Outcome {
    let mut zones: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for n in nodes {
        let zone = labels(&n.metadata)
            .get(ZONE_LABEL)
            .cloned()
            .unwrap_or_else(|| "(unlabelled)".to_owned());
        let e = zones.entry(zone).or_default();
        if is_control_plane(n) {
            e.0 += 1;
        } else {
            e.1 += 1;
        }
    }
    if zones.is_empty() {
        return Outcome::fail("the cluster lists no node");
    }
    let what = if control_plane {
        "control-plane node"
    } else {
        "worker node"
    };
    let mut o = Outcome::pass("");
    let mut missing = Vec::new();
    for (zone, (cp, w)) in &zones {
        o = o.with_property(
            format!("zone {zone}"),
            format!("{cp} control-plane, {w} worker"),
        );
        if (if control_plane { *cp } else { *w }) == 0 {
            missing.push(zone.clone());
        }
    }
    if missing.is_empty() {
        o.message = format!("each of {} zone(s) has a {what}", zones.len());
        o
    } else {
        fail_with(
            Outcome::fail(format!("zone(s) without a {what}: {}", missing.join(", "))),
            o,
        )
    }
}

fn crd_groups(crds: &[CustomResourceDefinition]) -> BTreeSet<String> {
    crds.iter().map(|c| c.spec.group.clone()).collect()
}

/// Built-in (not CRD-defined) served group versions whose version contains `stage`.
fn built_in_with<'a>(
    discovery: &'a [GroupVersion],
    crds: &[CustomResourceDefinition],
    stage: &str,
) -> Vec<&'a GroupVersion> {
    let from_crds = crd_groups(crds);
    discovery
        .iter()
        .filter(|gv| gv.version.contains(stage) && !from_crds.contains(&gv.group))
        .collect()
}

/// The positive control of the "not served" checks: discovery shows the core group's `v1`
/// with resources, which every API server serves. Without it, "no alpha API" or "no beta
/// API" would pass on a discovery that observed nothing.
fn discovery_observed(discovery: &[GroupVersion]) -> Result<(), Outcome> {
    let core = discovery
        .iter()
        .any(|gv| gv.group.is_empty() && gv.version == "v1" && !gv.resources.is_empty());
    if core {
        Ok(())
    } else {
        Err(Outcome::error(format!(
            "API discovery returned {} group version(s) and not the core v1 every API server serves, so what is served was not observed",
            discovery.len()
        )))
    }
}

/// ra2.k8s.012 (second meaning): no alpha API served, except RA2's own (NFD). CRD-defined
/// alpha versions count too: they are served APIs.
pub(crate) fn no_alpha(discovery: &[GroupVersion], _crds: &[CustomResourceDefinition]) -> Outcome {
    if let Err(o) = discovery_observed(discovery) {
        return o;
    }
    let alpha: Vec<String> = discovery
        .iter()
        .filter(|gv| {
            gv.version.contains("alpha") && !ALLOWED_ALPHA_GROUPS.contains(&gv.group.as_str())
        })
        .map(GroupVersion::api_version)
        .collect();
    let o = Outcome::pass_if(
        alpha.is_empty(),
        format!(
            "{} group versions served, none alpha (NFD's excepted)",
            discovery.len()
        ),
        format!("alpha APIs are served: {}", alpha.join(", ")),
    );
    o.with_property(
        "served",
        discovery
            .iter()
            .map(GroupVersion::api_version)
            .collect::<Vec<_>>()
            .join(", "),
    )
}

/// ra2.k8s.019: no built-in beta API served, except [`LEGACY_BETA`]. Betas of CRD-defined
/// groups (add-ons such as the Gateway API) are not the API server's and are left out.
pub(crate) fn no_beta(discovery: &[GroupVersion], crds: &[CustomResourceDefinition]) -> Outcome {
    if let Err(o) = discovery_observed(discovery) {
        return o;
    }
    let beta = built_in_with(discovery, crds, "beta");
    let (legacy, bad): (Vec<&GroupVersion>, Vec<&GroupVersion>) = beta
        .into_iter()
        .partition(|gv| LEGACY_BETA.contains(&gv.api_version().as_str()));
    let list = |v: &[&GroupVersion]| {
        v.iter()
            .map(|gv| gv.api_version())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let o = Outcome::pass_if(
        bad.is_empty(),
        if legacy.is_empty() {
            "no built-in beta API is served".to_owned()
        } else {
            format!("only legacy beta APIs are served: {}", list(&legacy))
        },
        format!("built-in beta APIs are served: {}", list(&bad)),
    );
    o.with_property("legacy betas allowed", LEGACY_BETA.join(", "))
}

/// int.api.03@ra2: every group version of [`MANDATORY_GROUPS`] is served.
pub(crate) fn mandatory_groups(discovery: &[GroupVersion]) -> Outcome {
    let served: BTreeSet<String> = discovery.iter().map(GroupVersion::api_version).collect();
    let missing: Vec<&str> = MANDATORY_GROUPS
        .iter()
        .copied()
        .filter(|g| !served.contains(*g))
        .collect();
    Outcome::pass_if(
        missing.is_empty(),
        format!(
            "all {} mandatory group versions are served",
            MANDATORY_GROUPS.len()
        ),
        format!(
            "mandatory API group versions not served: {}",
            missing.join(", ")
        ),
    )
}

/// ra2.k8s.014: networking.k8s.io/v1 serves networkpolicies.
pub(crate) fn network_policy(discovery: &[GroupVersion]) -> Outcome {
    let served = discovery.iter().any(|gv| {
        gv.group == "networking.k8s.io"
            && gv.version == "v1"
            && gv.resources.iter().any(|r| r == "networkpolicies")
    });
    Outcome::pass_if(
        served,
        "networking.k8s.io/v1 serves networkpolicies",
        "networking.k8s.io/v1 networkpolicies is not served",
    )
}

pub(crate) fn condition(n: &Node, kind: &str) -> Option<String> {
    n.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == kind)
        .map(|c| c.status.clone())
}

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

fn ds_name(d: &DaemonSet) -> String {
    name_of_meta(&d.metadata)
}

/// ra2.ntw.002: a known CNI plugin's DaemonSet runs. Without one, the question stays open
/// (an unknown plugin is possible), and the DaemonSets are listed for the reviewer.
pub(crate) fn cni(daemonsets: &[DaemonSet]) -> Outcome {
    let found: Vec<String> = daemonsets
        .iter()
        .filter_map(|d| {
            let name = ds_name(d);
            CNI_DAEMONSETS
                .iter()
                .find(|(n, _)| name == *n)
                .map(|(_, plugin)| {
                    let ready = d.status.as_ref().map_or(0, |s| s.number_ready);
                    let want = d.status.as_ref().map_or(0, |s| s.desired_number_scheduled);
                    format!(
                        "{plugin} ({}/{name}, {ready}/{want} ready)",
                        d.metadata.namespace.clone().unwrap_or_default()
                    )
                })
        })
        .collect();
    if found.is_empty() {
        Outcome::error(format!(
            "no DaemonSet of a known CNI plugin ({}); cannot tell which plugin implements the pod network. DaemonSets: {}",
            CNI_DAEMONSETS
                .iter()
                .map(|(n, _)| *n)
                .collect::<Vec<_>>()
                .join(", "),
            daemonsets
                .iter()
                .map(ds_name)
                .collect::<Vec<_>>()
                .join(", ")
        ))
    } else {
        Outcome::pass(format!("the pod network is {}", found.join("; ")))
    }
}

/// ra2.ntw.016 (conditional): when a multiplexer runs, the NetworkAttachmentDefinition CRD is
/// served at v1.
pub(crate) fn multiplexer(daemonsets: &[DaemonSet], crds: &[CustomResourceDefinition]) -> Outcome {
    let mux: Vec<String> = daemonsets
        .iter()
        .map(ds_name)
        .filter(|n| MULTIPLEXERS.iter().any(|m| n.contains(m)))
        .collect();
    if mux.is_empty() {
        return Outcome::not_applicable(
            "no CNI multiplexer (Multus, DANM) runs; ra2.ntw.016 applies only with one",
        );
    }
    let crd = crds
        .iter()
        .find(|c| c.metadata.name.as_deref() == Some(NAD_CRD));
    let v1 = crd.is_some_and(|c| c.spec.versions.iter().any(|v| v.name == "v1" && v.served));
    let o = match (crd, v1) {
        (Some(_), true) => Outcome::pass(format!(
            "{} runs and {NAD_CRD} is served at v1",
            mux.join(", ")
        )),
        (Some(_), false) => Outcome::fail(format!("{NAD_CRD} exists but does not serve v1")),
        (None, _) => Outcome::fail(format!(
            "{} runs but the {NAD_CRD} CRD is missing",
            mux.join(", ")
        )),
    };
    o.with_property("multiplexer", mux.join(", "))
}

/// ra2.k8s.010 / inf.ntw.04: every node has pod ranges (else InternalIPs) of both families.
pub(crate) fn dual_stack(nodes: &[Node]) -> Outcome {
    if nodes.is_empty() {
        return Outcome::fail("the cluster lists no node");
    }
    let mut o = Outcome::pass("");
    let mut single = Vec::new();
    for n in nodes {
        let cidrs = n
            .spec
            .as_ref()
            .and_then(|s| s.pod_cidrs.clone())
            .unwrap_or_default();
        let (what, items) = if cidrs.is_empty() {
            let addrs: Vec<String> = n
                .status
                .as_ref()
                .and_then(|s| s.addresses.clone())
                .unwrap_or_default()
                .into_iter()
                .filter(|a| a.type_ == "InternalIP")
                .map(|a| a.address)
                .collect();
            ("InternalIPs", addrs)
        } else {
            ("podCIDRs", cidrs)
        };
        let v6 = items.iter().any(|c| c.contains(':'));
        let v4 = items.iter().any(|c| c.contains('.') && !c.contains(':'));
        o = o.with_property(name_of(n), format!("{what}: {}", items.join(", ")));
        if !(v4 && v6) {
            single.push(format!("{} ({what}: {})", name_of(n), items.join(", ")));
        }
    }
    if single.is_empty() {
        o.message = format!("all {} nodes are dual-stack", nodes.len());
        o
    } else {
        fail_with(
            Outcome::fail(format!(
                "nodes without both IPv4 and IPv6: {}",
                single.join("; ")
            )),
            o,
        )
    }
}

/// ra2.stg.010: a StorageClass is marked default.
pub(crate) fn default_storage_class(classes: &[StorageClass]) -> Outcome {
    let default = classes.iter().find(|c| {
        let a = c.metadata.annotations.clone().unwrap_or_default();
        [
            "storageclass.kubernetes.io/is-default-class",
            "storageclass.beta.kubernetes.io/is-default-class",
        ]
        .iter()
        .any(|k| a.get(*k).map(String::as_str) == Some("true"))
    });
    let names: Vec<String> = classes
        .iter()
        .map(|c| format!("{} ({})", name_of_meta(&c.metadata), c.provisioner))
        .collect();
    let o = match default {
        Some(c) => Outcome::pass(format!(
            "default StorageClass {} ({})",
            name_of_meta(&c.metadata),
            c.provisioner
        )),
        None if classes.is_empty() => Outcome::fail("no StorageClass exists"),
        None => Outcome::fail(format!(
            "no StorageClass is marked default among: {}",
            names.join(", ")
        )),
    };
    o.with_property("storage classes", names.join(", "))
}

/// sec.sys.007: rbac.authorization.k8s.io/v1 is served and the RBAC authoriser's bootstrap
/// roles exist.
pub(crate) fn rbac(discovery: &[GroupVersion], cluster_roles: &[String]) -> Outcome {
    let served = discovery
        .iter()
        .any(|gv| gv.api_version() == "rbac.authorization.k8s.io/v1");
    let bootstrap = ["cluster-admin", "system:basic-user", "system:discovery"];
    let missing: Vec<&str> = bootstrap
        .iter()
        .copied()
        .filter(|r| !cluster_roles.iter().any(|c| c == r))
        .collect();
    if !served {
        Outcome::fail("rbac.authorization.k8s.io/v1 is not served: RBAC authorisation is off")
    } else if !missing.is_empty() {
        Outcome::fail(format!(
            "the RBAC bootstrap cluster roles are missing: {}",
            missing.join(", ")
        ))
    } else {
        Outcome::pass(format!(
            "RBAC is served with {} cluster roles, the bootstrap ones included",
            cluster_roles.len()
        ))
    }
}

/// sec.sys.001: listing namespaces without credentials is refused (401 or 403). `Ok(n)`: the
/// listing worked; `Err(Ok(code))`: the server's refusal; `Err(Err(_))`: no answer.
/// ra2.k8s.010-style: anonymous access refused. A refusal (401/403) counts only next to the
/// positive control `control`, an authenticated read of the same server (the node count, or
/// why it failed): a server that refuses every caller, or a wrong server, refuses anonymous
/// requests too, and proves nothing.
pub(crate) fn anonymous(
    control: Result<usize, String>,
    result: Result<usize, Result<u16, ReadError>>,
) -> Result<Outcome, Outcome> {
    if let (Err(why), Err(Ok(401 | 403))) = (&control, &result) {
        return Err(Outcome::error(format!(
            "the anonymous request was refused, but the same server did not answer an authenticated read either ({why}), so the refusal proves nothing"
        )));
    }
    match result {
        Ok(n) => Ok(Outcome::fail(format!(
            "an anonymous request listed namespaces ({n} returned): anonymous access is open"
        ))),
        Err(Ok(code @ (401 | 403))) => Ok(Outcome::pass(format!(
            "an anonymous list of namespaces is refused ({code})"
        ))),
        Err(Ok(code)) => Ok(Outcome::fail(format!(
            "an anonymous list of namespaces answered {code}; expected 401 or 403"
        ))),
        Err(Err(e)) => Err(e.outcome()),
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
    fn versions_parse_as_distributions_print_them() {
        assert_eq!(semver_minor("v1.33.4"), Some((1, 33)));
        assert_eq!(semver_minor("v1.31.4-eks-a1b2c3"), Some((1, 31)));
        assert_eq!(semver_minor("v1.30.2+k3s1"), Some((1, 30)));
        assert_eq!(semver_minor("garbage"), None);
        assert_eq!(minor("33+"), Some(33));
        assert_eq!(minor("x"), None);
    }

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

    fn gv(group: &str, version: &str, resources: &[&str]) -> GroupVersion {
        GroupVersion {
            group: group.to_owned(),
            version: version.to_owned(),
            resources: resources.iter().map(|r| (*r).to_owned()).collect(),
        }
    }

    /// "Not served" checks pass only on a discovery that saw the core v1 (the positive
    /// control); empty or core-less discovery, and an empty kubelet list, are errors.
    #[test]
    fn negative_api_checks_need_discovery_observed() {
        use nfvi_harness::Status;
        let core = gv("", "v1", &["pods", "nodes"]);
        let apps = gv("apps", "v1", &["deployments"]);
        let alpha = gv("resource.k8s.io", "v1alpha3", &["resourceclaims"]);
        #[rustfmt::skip]
        let rows: Vec<(&str, Vec<GroupVersion>, Status, Status)> = vec![
            // (name, discovery, no_alpha, no_beta)
            ("observed, clean", vec![core.clone(), apps.clone()], Status::Passed, Status::Passed),
            ("observed, alpha served", vec![core.clone(), alpha.clone()], Status::Failed, Status::Passed),
            ("nothing observed", vec![], Status::Error, Status::Error),
            ("control failed: no core v1", vec![apps.clone(), alpha], Status::Error, Status::Error),
            ("control failed: core v1 without resources", vec![gv("", "v1", &[]), apps], Status::Error, Status::Error),
        ];
        for (name, discovery, alpha_status, beta_status) in rows {
            let o = no_alpha(&discovery, &[]);
            assert_eq!(o.status, alpha_status, "{name}: no_alpha: {}", o.message);
            let o = no_beta(&discovery, &[]);
            assert_eq!(o.status, beta_status, "{name}: no_beta: {}", o.message);
        }
        assert_eq!(
            kubelet_policy(&[], "cpuManagerPolicy", "static").status,
            Status::Error
        );
        assert_eq!(reserved_cpus(&[]).status, Status::Error);
    }

    #[test]
    fn anonymous_access_outcomes() {
        assert_eq!(
            anonymous(Ok(1), Ok(3)).unwrap().status,
            nfvi_harness::Status::Failed
        );
        assert_eq!(
            anonymous(Ok(1), Err(Ok(401))).unwrap().status,
            nfvi_harness::Status::Passed
        );
        assert_eq!(
            anonymous(Ok(1), Err(Ok(500))).unwrap().status,
            nfvi_harness::Status::Failed
        );
        // Control failed: the server refuses authenticated reads too, so a refusal of the
        // anonymous one observed nothing.
        for code in [401, 403] {
            let o =
                anonymous(Err("list nodes: 401 Unauthorized".into()), Err(Ok(code))).unwrap_err();
            assert_eq!(o.status, nfvi_harness::Status::Error, "{}", o.message);
        }
        // Open anonymous access is observed whatever the control says.
        assert_eq!(
            anonymous(Err("x".into()), Ok(2)).unwrap().status,
            nfvi_harness::Status::Failed
        );
    }
}
