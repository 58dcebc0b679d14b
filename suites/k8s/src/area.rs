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
        )
    }
}

impl KubernetesConfig {
    /// The kubeconfig files to read: `kubeconfig` (one file), else the entries of
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
}

/// The Kubernetes area of RA2.
pub struct K8sArea;

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
        Arc::new(Connection::default())
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
