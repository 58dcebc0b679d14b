//! The RA2 checks read through the Kubernetes API. Each judge is a pure function of what the
//! cluster answered, so the tests can feed it recorded objects; the check around it only
//! fetches (through [`Cluster`]) and words failures to read. The judges live by theme:
//! [`versions`] (versions, control plane, zones), [`api`] (served API groups), [`nodes`]
//! (node labels, hugepages, kubelet policies), [`cni`] (pod network) and [`access`]
//! (storage and access control), each with its table tests.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, Node};
use kube::api::{Api, ListParams};
use nfvi_harness::{
    Check, CheckContext, CheckError, CheckMeta, CheckResult, Outcome, Severity, declare,
};
use nfvi_reference_model::Area;

use crate::cluster::{self, Cluster, labels};

mod access;
mod api;
mod cni;
mod nodes;
mod versions;

pub(crate) use access::{anonymous, default_storage_class, rbac};
pub(crate) use api::{mandatory_groups, network_policy, no_alpha, no_beta};
pub(crate) use cni::{cni, dual_stack, multiplexer};
pub(crate) use nodes::{
    hugepages, kubelet_policy, network_intensive, node_feature_discovery, nodes_ready,
    profile_labels, reserved_cpus,
};
pub(crate) use versions::{control_plane, etcd, kubelet_skew, per_zone, server_version};

const CONTROL_PLANE_LABELS: &[&str] = &[
    "node-role.kubernetes.io/control-plane",
    "node-role.kubernetes.io/master",
];

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

pub(crate) fn condition(n: &Node, kind: &str) -> Option<String> {
    n.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == kind)
        .map(|c| c.status.clone())
}
