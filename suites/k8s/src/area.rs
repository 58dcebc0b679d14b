//! The Kubernetes area's boundary with the core: its table of the target file, the
//! kubeconfig it detects, the `--kubeconfig` flag, the run's one connection to the cluster,
//! and its checks.

use std::path::PathBuf;
use std::sync::Arc;

use nfvi_harness::area::empty_as_none;
use nfvi_harness::{
    Area, AreaConfig, Check, Flag, FlagKind, Need, Resource, Shared, Table, Target,
};
use schemars::JsonSchema;
use serde::Deserialize;
use tokio::sync::OnceCell;

use crate::cluster::{Cluster, ReadError};

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
}

impl AreaConfig for KubernetesConfig {}

impl KubernetesConfig {
    /// The kubeconfig to use: `kubeconfig`, else `KUBECONFIG` (its first file), else
    /// `~/.kube/config`; `None` when none of them names a file.
    pub fn kubeconfig_path(&self) -> Option<PathBuf> {
        if let Some(path) = &self.kubeconfig {
            return Some(PathBuf::from(path));
        }
        let env = std::env::var_os("KUBECONFIG")
            .and_then(|v| std::env::split_paths(&v).find(|p| !p.as_os_str().is_empty()));
        let home = std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".kube/config"));
        env.into_iter().chain(home).find(|p| p.is_file())
    }

    /// Why the cluster cannot be read, when no kubeconfig is there: the skip reason of
    /// every Kubernetes check.
    pub fn missing(&self) -> Option<String> {
        match self.kubeconfig_path() {
            Some(p) if p.is_file() => None,
            Some(p) => Some(format!(
                "no kubeconfig given: {} does not exist (--kubeconfig or kubernetes.kubeconfig)",
                p.display()
            )),
            None => Some(
                "no kubeconfig given: pass --kubeconfig FILE, set kubernetes.kubeconfig in the target file, or KUBECONFIG"
                    .to_owned(),
            ),
        }
    }
}

/// The need of every check that reads the cluster.
pub fn kubeconfig_need() -> Need {
    Need::resource("kubeconfig", "a kubeconfig")
}

const FLAGS: &[Flag] = &[Flag {
    long: "kubeconfig",
    table: "kubernetes",
    key: "kubeconfig",
    value_name: "FILE",
    help: "The kubeconfig of the cluster to verify (overrides kubernetes.kubeconfig and KUBECONFIG)",
    kind: FlagKind::Text,
}];

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

    fn open(&self, _target: &Target) -> Shared {
        Arc::new(Connection::default())
    }
}
