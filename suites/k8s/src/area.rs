//! The Kubernetes area's boundary with the core: its table of the target file, the
//! kubeconfig it detects, the `--kubeconfig` and `--k8s-node-agent` flags, the run's one
//! connection to the cluster, its checks, and the fleet of the cluster's nodes (the node
//! agent as a DaemonSet, [`crate::daemonset`]).

use std::sync::Arc;

use nfvi_harness::area::empty_as_none;
use nfvi_harness::fleet::{FleetError, Transport};
use nfvi_harness::{
    Area, AreaConfig, Check, ConfigError, Flag, FlagKind, Need, Resource, Shared, Table, Target,
};
use schemars::JsonSchema;
use serde::Deserialize;
use tokio::sync::OnceCell;

use crate::cluster::{Cluster, KubeconfigFiles, ReadError};
use crate::daemonset::DaemonSetTransport;
use crate::upstream::EvidencePath;

/// The `[kubernetes]` table: the cluster and the in-cluster probes.
#[derive(Clone, Debug, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KubernetesConfig {
    /// kubeconfig path; none: `KUBECONFIG`, then `~/.kube/config`. `--kubeconfig` overrides.
    #[serde(default, deserialize_with = "empty_as_none")]
    pub kubeconfig: Option<String>,
    /// Context; none for the current one.
    #[serde(default, deserialize_with = "empty_as_none")]
    pub context: Option<String>,
    /// The image with `nfvi-verify` on PATH that in-cluster latency probes run (see the
    /// README for building it); none: no in-cluster probes.
    #[serde(default, deserialize_with = "empty_as_none")]
    pub probe_image: Option<String>,
    /// Probe rounds (each an ABBA pair of blocks: same node, other node) per measurement.
    pub probe_rounds: u32,
    /// Probes per block.
    pub probe_block: u32,
    /// Secondary networks to measure as well: NetworkAttachmentDefinitions as
    /// `namespace/name` (or `name`), attached to the probe pods through Multus.
    pub probe_networks: Vec<String>,
    /// Run the node-level checks (host, CNI, data path, ...) on every node of the cluster,
    /// through the node agent as a DaemonSet started through the API. `--k8s-node-agent`
    /// sets it.
    pub node_agent: bool,
    /// The image the node agent's pods run: it holds `nfvi-verify` of this very version at
    /// `/usr/local/bin/nfvi-verify`; none: `ghcr.io/nfvi-verify/nfvi-verify:<this version>`,
    /// a placeholder to override for a registry of your own (air-gapped clusters).
    #[serde(default, deserialize_with = "empty_as_none")]
    pub agent_image: Option<String>,
    /// The namespace of the node agent's DaemonSet; created (and deleted afterwards) when it
    /// does not exist.
    pub agent_namespace: String,
    /// Longest a node's agent may take, from the DaemonSet's creation to its last result
    /// (image pull included), in seconds.
    pub agent_timeout_secs: u64,
    /// The registry the upstream suites' images come from (the conformance image and the
    /// output sidecar): `registry.k8s.io`, or a mirror of it for air-gapped clusters.
    #[serde(default = "default_registry")]
    pub upstream_registry: String,
    /// The e2e conformance image; none: `<upstream_registry>/conformance:<the server's
    /// gitVersion, v1.x.y>`, read from `/version`.
    #[serde(default, deserialize_with = "empty_as_none")]
    pub e2e_image: Option<String>,
    /// The e2e pod's output sidecar (any image with a POSIX `sh` and `cat`); none:
    /// `<upstream_registry>/e2e-test-images/busybox:1.36.1-1`.
    #[serde(default, deserialize_with = "empty_as_none")]
    pub e2e_output_image: Option<String>,
    /// Ginkgo nodes of the parallel e2e sets (`E2E_PARALLEL`); the serial sets run with 1.
    #[serde(default = "default_parallel")]
    pub e2e_parallel: u32,
    /// kube-bench's image (its Jobs on a control-plane node and on a worker).
    #[serde(default = "default_kube_bench_image")]
    pub kube_bench_image: String,
    /// Longest an upstream pod may take to start (scheduling and image pull), in seconds: a
    /// pod still Pending then is an error naming the image and the reason.
    #[serde(default = "default_start_timeout")]
    pub upstream_start_timeout_secs: u64,
    /// Longest one e2e focus set or one kube-bench Job may run, in seconds.
    #[serde(default = "default_upstream_timeout")]
    pub upstream_timeout_secs: u64,
    /// The range (IPv4 CIDR inside `network.lab_cidr`) the whereabouts IPAM of the secondary
    /// network that k8s.multus.secondary-network creates hands out; none: the last /24 of
    /// `network.lab_cidr`.
    #[serde(default, deserialize_with = "empty_as_none")]
    pub multus_range: Option<String>,
    /// The node interface that secondary network's macvlan attaches to; none: each node's
    /// default-route interface (the macvlan plugin's default).
    #[serde(default, deserialize_with = "empty_as_none")]
    pub multus_master: Option<String>,
    /// The UDP port of the LoadBalancer Service that k8s.lb.external and k8s.lb.failover
    /// create (the probe pods' echo port behind it).
    #[serde(default = "default_lb_port")]
    pub lb_port: u16,
    /// Longest the load balancer may take to give that Service an external address, in
    /// seconds; the LoadBalancer checks fail, saying so, when it gives none.
    #[serde(default = "default_lb_timeout")]
    pub lb_timeout_secs: u64,
    /// Lets the LoadBalancer checks probe a loopback external address. For tests against a
    /// scripted API server only: a real load balancer never hands out 127.0.0.1, and an API
    /// server that does would have nfvi-verify probe (and judge) a port of this machine.
    #[serde(default)]
    pub lb_allow_loopback: bool,
    /// Globs over extended resource names (`intel.com/intel_sriov_netdevice`) that name the
    /// SR-IOV VF pools a device plugin advertises; k8s.devices.sriov-plugin looks for one
    /// on every network-intensive worker.
    #[serde(default = "default_sriov_resources")]
    pub sriov_resources: Vec<String>,
    /// The IngressClass k8s.ingress.controller tests; none: the one annotated
    /// `ingressclass.kubernetes.io/is-default-class: "true"`.
    #[serde(default, deserialize_with = "empty_as_none")]
    pub ingress_class: Option<String>,
    /// The port the ingress controller serves HTTP on at the address it publishes.
    #[serde(default = "default_ingress_port")]
    pub ingress_port: u16,
    /// Longest the ingress controller may take to admit the check's Ingress (an address in
    /// its status), in seconds; the check fails, saying so, when it does not.
    #[serde(default = "default_lb_timeout")]
    pub ingress_timeout_secs: u64,
}

fn default_ingress_port() -> u16 {
    80
}

/// The SR-IOV network device plugin's default prefix (`intel.com`) with the resource names
/// its examples use, the OpenShift SR-IOV operator's prefix, and any name saying sriov.
pub(crate) fn default_sriov_resources() -> Vec<String> {
    [
        "intel.com/*sriov*",
        "openshift.io/*",
        "mellanox.com/*",
        "nvidia.com/*sriov*",
        "*/*sriov*",
    ]
    .map(str::to_owned)
    .to_vec()
}

fn default_lb_port() -> u16 {
    7777
}
fn default_lb_timeout() -> u64 {
    120
}

fn default_registry() -> String {
    "registry.k8s.io".to_owned()
}
fn default_parallel() -> u32 {
    10
}
fn default_kube_bench_image() -> String {
    crate::upstream::DEFAULT_KUBE_BENCH_IMAGE.to_owned()
}
fn default_start_timeout() -> u64 {
    300
}
fn default_upstream_timeout() -> u64 {
    10_800
}

/// The repository of the default node agent image; the tag is this tool's version.
pub const DEFAULT_AGENT_IMAGE: &str = "ghcr.io/nfvi-verify/nfvi-verify";

impl AreaConfig for KubernetesConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        let ns = &self.agent_namespace;
        let label = !ns.is_empty()
            && ns.len() <= 63
            && ns
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !ns.starts_with('-')
            && !ns.ends_with('-');
        ConfigError::ensure(
            label,
            "agent_namespace",
            format!(
                "kubernetes.agent_namespace = {ns:?} is not a namespace name: lower-case letters, digits and `-`, at most 63, starting and ending with a letter or digit"
            ),
        )?;
        ConfigError::ensure(
            (10..=86_400).contains(&self.agent_timeout_secs),
            "agent_timeout_secs",
            format!(
                "kubernetes.agent_timeout_secs = {} is out of range: 10 to 86400 seconds",
                self.agent_timeout_secs
            ),
        )?;
        ConfigError::ensure(
            (1..=3_600).contains(&self.lb_timeout_secs),
            "lb_timeout_secs",
            format!(
                "kubernetes.lb_timeout_secs = {} is out of range: 1 to 3600 seconds",
                self.lb_timeout_secs
            ),
        )?;
        ConfigError::ensure(
            (1..=3_600).contains(&self.ingress_timeout_secs),
            "ingress_timeout_secs",
            format!(
                "kubernetes.ingress_timeout_secs = {} is out of range: 1 to 3600 seconds",
                self.ingress_timeout_secs
            ),
        )?;
        ConfigError::ensure(
            self.ingress_port != 0,
            "ingress_port",
            "kubernetes.ingress_port = 0 is not a port: 1 to 65535",
        )?;
        if let Some(c) = &self.ingress_class {
            let name = !c.is_empty()
                && c.len() <= 253
                && c.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.'
                });
            ConfigError::ensure(
                name,
                "ingress_class",
                format!(
                    "kubernetes.ingress_class = {c:?} is not an IngressClass name: lower-case letters, digits, `-` and `.`"
                ),
            )?;
        }
        if let Some(r) = &self.multus_range {
            // Whether it lies inside network.lab_cidr is judged by k8s.multus.secondary-network
            // (`multus::range`), which sees both tables; here only its form.
            let net = r.trim().parse::<ipnet::Ipv4Net>();
            ConfigError::ensure(
                net.is_ok_and(|n| n.prefix_len() <= 30),
                "multus_range",
                format!(
                    "kubernetes.multus_range = {r:?} is not an IPv4 network of at least 4 addresses such as \"198.18.60.0/24\" (inside network.lab_cidr)"
                ),
            )?;
        }
        crate::upstream::validate(self)
    }
}

impl KubernetesConfig {
    /// The kubeconfig files to read: `kubeconfig` (one file), else the entries of
    /// For a check whose probe pods need `probe_image`: not applicable, saying `why` they need
    /// it, when no image is set and there is a cluster to run them on (without one, the
    /// check's kubeconfig need skips it first).
    pub(crate) fn without_probe_image(&self, why: &str) -> Option<nfvi_harness::Outcome> {
        (self.probe_image.is_none() && self.kubeconfig_path().is_some()).then(|| {
            nfvi_harness::Outcome::not_applicable(format!(
                "kubernetes.probe_image is not set: {why}"
            ))
        })
    }

    /// `KUBECONFIG` that exist, merged in order as kubectl merges them, else
    /// `~/.kube/config`; `None` when none of them names a file ([`KubernetesConfig::missing`]
    /// says why).
    pub fn kubeconfig_path(&self) -> Option<KubeconfigFiles> {
        self.kubeconfig_files().ok()
    }

    fn kubeconfig_files(&self) -> Result<KubeconfigFiles, String> {
        KubeconfigFiles::locate(
            self.kubeconfig.as_deref(),
            std::env::var_os("KUBECONFIG").as_deref(),
            std::env::var_os("HOME").as_deref(),
            |p| p.exists(),
        )
    }

    /// The node agent's image: `agent_image`, else [`DEFAULT_AGENT_IMAGE`] tagged with this
    /// version.
    pub fn agent_image(&self) -> String {
        self.agent_image
            .clone()
            .unwrap_or_else(|| format!("{DEFAULT_AGENT_IMAGE}:{}", env!("CARGO_PKG_VERSION")))
    }

    /// Why the cluster cannot be read, when no kubeconfig is there: the skip reason of
    /// every Kubernetes check.
    pub fn missing(&self) -> Option<String> {
        self.kubeconfig_files().err()
    }
}

/// The need of every check that reads the cluster.
pub fn kubeconfig_need() -> Need {
    Need::resource("kubeconfig", "a kubeconfig")
}

const FLAGS: &[Flag] = &[
    Flag {
        long: "kubeconfig",
        table: "kubernetes",
        key: "kubeconfig",
        value_name: "FILE",
        help: "The kubeconfig of the cluster to verify (overrides kubernetes.kubeconfig and KUBECONFIG)",
        kind: FlagKind::Text,
    },
    Flag {
        long: "k8s-node-agent",
        table: "kubernetes",
        key: "node_agent",
        value_name: "",
        help: "Run the node-level checks on every node of the cluster, through a DaemonSet of the node agent (sets kubernetes.node_agent)",
        kind: FlagKind::Switch,
    },
];

/// The run's connection to the cluster: read and connected once, on first use.
#[derive(Default)]
pub(crate) struct Connection {
    pub(crate) cluster: OnceCell<Result<Arc<Cluster>, ReadError>>,
    /// Where the upstream suites' results go: the evidence area's parsers and judges.
    pub(crate) evidence: Option<Arc<dyn EvidencePath>>,
    /// Held by an upstream suite while it runs: the e2e sets (and kube-bench) run one after
    /// another, as RC2 runs them, never side by side on the cluster.
    pub(crate) upstream: tokio::sync::Mutex<()>,
}

/// The Kubernetes area of RA2. [`K8sArea::default`] has no evidence path: its upstream
/// checks (e2e, kube-bench) then end in an error saying so; the CLI hands it the evidence
/// area's with [`K8sArea::with_evidence`].
#[derive(Clone, Default)]
pub struct K8sArea {
    evidence: Option<Arc<dyn EvidencePath>>,
}

impl K8sArea {
    /// The area, ingesting the upstream suites' results through `evidence`.
    pub fn with_evidence(evidence: Arc<dyn EvidencePath>) -> Self {
        Self {
            evidence: Some(evidence),
        }
    }
}

impl Area for K8sArea {
    fn id(&self) -> &'static str {
        "k8s"
    }

    fn tables(&self) -> Vec<Table> {
        vec![Table::of::<KubernetesConfig>(
            "kubernetes",
            include_str!("kubernetes.toml"),
        )]
    }

    fn flags(&self) -> &'static [Flag] {
        FLAGS
    }

    fn resources(&self, target: &Target) -> Vec<Resource> {
        vec![Resource {
            id: "kubeconfig",
            missing: target.config::<KubernetesConfig>().missing(),
        }]
    }

    fn checks(&self) -> Vec<Arc<dyn Check>> {
        crate::checks()
    }

    fn leftovers<'a>(
        &'a self,
        target: &'a Target,
        gone: nfvi_harness::leftover::Gone<'a>,
    ) -> nfvi_harness::BoxFuture<'a, Result<Vec<nfvi_harness::leftover::Leftover>, String>> {
        crate::clean::leftovers(target, gone)
    }

    fn open(&self, _target: &Target) -> Shared {
        Arc::new(Connection {
            cluster: OnceCell::new(),
            evidence: self.evidence.clone(),
            upstream: tokio::sync::Mutex::new(()),
        })
    }

    /// The images the upstream suites pull (conformance, its output sidecar, kube-bench),
    /// then the probe and node agent images.
    fn images<'a>(&'a self, target: &'a Target) -> nfvi_harness::BoxFuture<'a, Vec<String>> {
        Box::pin(crate::upstream::images(target))
    }

    /// `kubernetes.multus_range`, when set, lies inside `network.lab_cidr`: checked before
    /// anything runs (exit 2 naming both), not when k8s.multus.secondary-network starts.
    fn preflight(&self, target: &Target) -> Result<(), String> {
        let k = target.config::<KubernetesConfig>();
        match &k.multus_range {
            Some(r) => crate::multus::range(Some(r), &target.network.lab_cidr).map(|_| ()),
            None => Ok(()),
        }
    }

    /// With `kubernetes.node_agent`, the cluster's nodes, reached through a DaemonSet of the
    /// node agent.
    fn transport(&self, target: &Target) -> Result<Option<Arc<dyn Transport>>, FleetError> {
        let k = target.config::<KubernetesConfig>();
        if !k.node_agent {
            return Ok(None);
        }
        let transport: Arc<dyn Transport> = Arc::new(DaemonSetTransport::connect(k)?);
        Ok(Some(transport))
    }
}

#[cfg(test)]
mod tests {
    use nfvi_harness::AreaConfig as _;

    use super::KubernetesConfig;

    fn config() -> KubernetesConfig {
        let table: toml::Value = toml::from_str(include_str!("kubernetes.toml")).unwrap();
        table["kubernetes"].clone().try_into().unwrap()
    }

    #[test]
    fn the_own_network_keys_are_validated_naming_the_key() {
        let k = config();
        assert!(k.validate().is_ok(), "{:?}", k.validate());
        #[rustfmt::skip]
        let rows: &[(&str, Option<&str>, u64, Option<&str>)] = &[
            ("defaults", None, 120, None),
            ("a /24", Some("198.18.60.0/24"), 120, None),
            ("a /30", Some(" 198.18.60.4/30 "), 1, None),
            ("no timeout", None, 0, Some("lb_timeout_secs")),
            ("over an hour", None, 3_601, Some("lb_timeout_secs")),
            ("not a network", Some("lab"), 120, Some("multus_range")),
            ("an address", Some("198.18.60.1"), 120, Some("multus_range")),
            ("IPv6", Some("fd00::/64"), 120, Some("multus_range")),
            ("too small", Some("198.18.60.0/31"), 120, Some("multus_range")),
            ("hostile", Some("198.18.60.0/24\n[x]"), 120, Some("multus_range")),
        ];
        for &(name, range, timeout, key) in rows {
            let mut k = config();
            k.multus_range = range.map(str::to_owned);
            k.lb_timeout_secs = timeout;
            let got = k.validate();
            assert_eq!(
                got.as_ref().err().and_then(|e| e.at.as_deref()),
                key,
                "{name}: {got:?}"
            );
            if let (Err(e), Some(key)) = (&got, key) {
                assert!(
                    e.message.contains(&format!("kubernetes.{key}")),
                    "{name}: {e:?}"
                );
            }
        }
    }
}
