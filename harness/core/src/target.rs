//! The target file: which NFVI is under test and where its parts are. Without `--target` the
//! target is the local machine with the values of the embedded `default-target.toml`.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The commented default target file, also printed by `nfvi-verify target --example`.
pub const DEFAULT_TARGET_TOML: &str = include_str!("default-target.toml");

/// The Anuket node profile.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum NodeProfile {
    /// Basic profile.
    Basic,
    /// Network-intensive (high-performance) profile.
    NetworkIntensive,
}

impl NodeProfile {
    /// The kebab-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            NodeProfile::Basic => "basic",
            NodeProfile::NetworkIntensive => "network-intensive",
        }
    }
}

/// The NFVI under test.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Target {
    /// A name for the NFVI, shown in reports.
    pub name: String,
    /// The Anuket node profile.
    pub profile: NodeProfile,
    /// Host readiness settings.
    pub host: HostTarget,
    /// CNI plugins.
    pub cni: CniTarget,
    /// Docker Engine.
    pub docker: DockerTarget,
    /// Kubernetes cluster.
    pub kubernetes: KubernetesTarget,
    /// OpenStack cloud.
    pub openstack: OpenStackTarget,
    /// Kolla-Ansible deployment.
    pub kolla: KollaTarget,
    /// Data-path measurement settings.
    pub datapath: DatapathTarget,
    /// Network resources the harness may use.
    pub network: NetworkTarget,
    /// The file this target was read from, if any.
    #[serde(skip)]
    pub file: Option<PathBuf>,
}

/// Host readiness settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HostTarget {
    /// Oldest acceptable kernel release, `major.minor`.
    pub min_kernel: String,
    /// Package changes within this many hours are drift.
    pub drift_window_hours: u32,
    /// dpkg's log file.
    pub dpkg_log: PathBuf,
}

/// CNI settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CniTarget {
    /// Plugin directories, searched in order.
    pub paths: Vec<PathBuf>,
    /// Only these plugins; empty for all.
    pub plugins: Vec<String>,
    /// Deadline of one plugin invocation, in seconds.
    pub exec_timeout_secs: u64,
}

impl CniTarget {
    /// The plugin directories as CNI_PATH wants them: joined with `:`.
    pub fn search_path(&self) -> String {
        self.paths
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(":")
    }

    /// The first plugin binary named `plugin` in the plugin directories.
    pub fn find(&self, plugin: &str) -> Option<PathBuf> {
        self.paths
            .iter()
            .map(|d| d.join(plugin))
            .find(|p| p.is_file())
    }
}

/// Docker settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DockerTarget {
    /// The Engine API socket.
    pub socket: PathBuf,
    /// The image probe containers run.
    pub probe_image: String,
}

/// Kubernetes settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KubernetesTarget {
    /// kubeconfig path; empty: `KUBECONFIG`, then `~/.kube/config`. `--kubeconfig` overrides.
    pub kubeconfig: String,
    /// Context; empty for the current one.
    pub context: String,
    /// The image with `nfvi-verify` on PATH that in-cluster latency probes run (see the
    /// README for building it); empty: no in-cluster probes.
    pub probe_image: String,
    /// Probe rounds (each an ABBA pair of blocks: same node, other node) per measurement.
    pub probe_rounds: u32,
    /// Probes per block.
    pub probe_block: u32,
    /// Secondary networks to measure as well: NetworkAttachmentDefinitions as
    /// `namespace/name` (or `name`), attached to the probe pods through Multus.
    pub probe_networks: Vec<String>,
}

impl KubernetesTarget {
    /// The kubeconfig to use: `kubeconfig`, else `KUBECONFIG` (its first file), else
    /// `~/.kube/config`; `None` when none of them names a file.
    pub fn kubeconfig_path(&self) -> Option<PathBuf> {
        if !self.kubeconfig.is_empty() {
            return Some(PathBuf::from(&self.kubeconfig));
        }
        let env = std::env::var_os("KUBECONFIG")
            .and_then(|v| std::env::split_paths(&v).find(|p| !p.as_os_str().is_empty()));
        let home = std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".kube/config"));
        env.into_iter().chain(home).find(|p| p.is_file())
    }
}

/// OpenStack settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OpenStackTarget {
    /// openrc file with `export OS_*=...` lines.
    pub openrc: String,
    /// Cloud name in clouds.yaml; empty: the openrc (OS_CLOUD in the environment overrides).
    pub cloud: String,
    /// clouds.yaml path; empty for openstacksdk's search path.
    pub clouds_yaml: String,
    /// Catalog interface to check (`internal` or `public`); empty: the credentials' own
    /// (`OS_INTERFACE`, `interface` in clouds.yaml), else `internal`.
    pub interface: String,
    /// PEM CA bundle to trust besides the platform's roots (Kolla's
    /// `kolla_admin_openrc_cacert`); empty: `OS_CACERT` or `cacert` in clouds.yaml.
    pub cacert: String,
    /// Accept any TLS certificate. Recorded in every API result; never the default.
    pub insecure: bool,
    /// The Horizon dashboard's URL (Kolla serves it on the VIP, port 80 or 443); empty: not
    /// checked (edge deployments without Horizon).
    pub dashboard_url: String,
}

/// The Kolla-Ansible releases whose container tables the kolla area knows.
pub const KOLLA_RELEASES: &[&str] = &["2024.1", "2025.1", "2025.2", "2026.1", "master"];

/// Kolla-Ansible deployment settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KollaTarget {
    /// The `openstack_release` deployed; selects the container table.
    pub release: String,
    /// Containers expected on this host; empty for the release's all-in-one default set.
    pub containers: Vec<String>,
    /// A container that died this many times or more within `flap_window_minutes` is flapping.
    pub flap_restarts: u32,
    /// How far back the Docker event log is read for restarts.
    pub flap_window_minutes: u32,
    /// The image registry (Kolla's `docker_registry`) as a URL; empty: not checked.
    pub registry: String,
    /// The image namespace in the registry (Kolla's `docker_namespace`).
    pub image_namespace: String,
    /// The image tag every service needs (Kolla's `openstack_tag`).
    pub image_tag: String,
    /// User for a registry that asks for credentials (Kolla's `docker_registry_username`);
    /// the password comes from `NFVI_REGISTRY_PASSWORD`, never from the file. Empty: the
    /// `auths` entry of Docker's config.json, if any.
    pub registry_username: String,
    /// PEM CA bundle for a registry with a private CA; empty: the platform's roots.
    pub registry_cacert: String,
}

/// Data-path measurement settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DatapathTarget {
    /// blocking, spin or paced.
    pub mode: String,
    /// Probes per block.
    pub block_probes: u64,
    /// Rounds of interleaved blocks.
    pub rounds: u32,
    /// Warm-up probes per block.
    pub warmup: u64,
    /// Loopback block-median CV above which a comparison is inconclusive.
    pub noise_cv_limit: f64,
    /// CPU to pin prober threads to in blocking and paced modes; -1 for none.
    pub pin_cpu: i32,
    /// Kernel receive timestamps in blocking and paced modes.
    pub kernel_timestamps: bool,
    /// Latency SLAs per path: loopback, macvlan, bridge, ptp, and the in-cluster probes'
    /// pod-same-node and pod-cross-node.
    #[serde(default)]
    pub sla: std::collections::BTreeMap<String, LatencySla>,
}

/// A latency SLA of one path, in microseconds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LatencySla {
    /// Upper bound for the median RTT.
    #[serde(default)]
    pub p50_us: Option<f64>,
    /// Upper bound for the 99th percentile RTT.
    #[serde(default)]
    pub p99_us: Option<f64>,
}

/// Network resources the harness may use.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NetworkTarget {
    /// The IPv4 range for addresses the harness assigns.
    pub lab_cidr: String,
    /// Existing interfaces the harness may attach to.
    pub interfaces: Vec<String>,
}

/// A target file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    /// The file cannot be read.
    #[error("cannot read target file `{}`", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid or has unknown or missing keys.
    #[error("{}:{line}:{column}: {message}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What is wrong and what was expected.
        message: String,
    },
}

/// Parses an IPv4 CIDR such as `198.18.0.0/15`.
pub fn parse_ipv4_cidr(s: &str) -> Option<(Ipv4Addr, u8)> {
    let (addr, len) = s.split_once('/')?;
    let addr: Ipv4Addr = addr.parse().ok()?;
    let len: u8 = len.parse().ok().filter(|l| *l <= 32)?;
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
    (u32::from(addr) & !mask == 0).then_some((addr, len))
}

/// Parses `major.minor` (and ignores anything after).
pub fn parse_kernel_version(s: &str) -> Option<(u32, u32)> {
    let mut parts = s.split(|c: char| !c.is_ascii_digit());
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

impl Target {
    /// The local machine with the embedded defaults.
    pub fn local() -> Self {
        Self::parse(
            Path::new("<embedded default-target.toml>"),
            DEFAULT_TARGET_TOML,
        )
        .expect("the embedded default target is valid")
    }

    /// Reads a target file. Keys it leaves out take the embedded defaults.
    pub fn load(path: &Path) -> Result<Self, TargetError> {
        let text = std::fs::read_to_string(path).map_err(|source| TargetError::Read {
            path: path.to_owned(),
            source,
        })?;
        let mut target = Self::parse(path, &text)?;
        target.file = Some(path.to_owned());
        Ok(target)
    }

    /// Parses target text, layering it over the defaults.
    pub fn parse(path: &Path, text: &str) -> Result<Self, TargetError> {
        let invalid = |offset: usize, message: String| {
            let at = nfvi_reference_model::Location::from_offset("", text, offset);
            TargetError::Invalid {
                path: path.to_owned(),
                line: at.line,
                column: at.column,
                message,
            }
        };
        let user: toml::Table = toml::from_str(text).map_err(|e| {
            invalid(
                e.span().map_or(0, |s| s.start),
                e.message().trim_end().to_owned(),
            )
        })?;
        // Layer the user's table over the defaults, then deserialise once with
        // deny_unknown_fields; the user's spans are used for messages by re-parsing on error.
        let mut merged: toml::Table =
            toml::from_str(DEFAULT_TARGET_TOML).expect("the embedded default target is TOML");
        merge(&mut merged, user);
        let target: Target = merged.try_into().map_err(|e: toml::de::Error| {
            // Find the offending key in the user's text to point at the right line.
            let message = e.message().trim_end().to_owned();
            let offset = key_in_message(&message)
                .and_then(|k| find_key(text, &k))
                .unwrap_or(0);
            invalid(offset, message)
        })?;
        if parse_ipv4_cidr(&target.network.lab_cidr).is_none() {
            let offset = find_key(text, "lab_cidr").unwrap_or(0);
            return Err(invalid(
                offset,
                format!(
                    "network.lab_cidr `{}` is not an IPv4 network such as \"198.18.0.0/15\"",
                    target.network.lab_cidr
                ),
            ));
        }
        if parse_kernel_version(&target.host.min_kernel).is_none() {
            let offset = find_key(text, "min_kernel").unwrap_or(0);
            return Err(invalid(
                offset,
                format!(
                    "host.min_kernel `{}` is not a kernel release such as \"4.19\"",
                    target.host.min_kernel
                ),
            ));
        }
        if !KOLLA_RELEASES.contains(&target.kolla.release.as_str()) {
            let offset = find_key(text, "release").unwrap_or(0);
            return Err(invalid(
                offset,
                format!(
                    "kolla.release `{}` is not a release the container tables cover ({})",
                    target.kolla.release,
                    KOLLA_RELEASES.join(", ")
                ),
            ));
        }
        let dp = &target.datapath;
        let dp_error = if !matches!(dp.mode.as_str(), "blocking" | "spin" | "paced") {
            Some((
                "mode",
                format!(
                    "datapath.mode `{}` is not one of blocking, spin, paced",
                    dp.mode
                ),
            ))
        } else if dp.rounds < 2 {
            Some((
                "rounds",
                format!(
                    "datapath.rounds = {} is too few: at least 2 rounds are needed for a comparison",
                    dp.rounds
                ),
            ))
        } else if dp.block_probes < 100 {
            Some((
                "block_probes",
                format!(
                    "datapath.block_probes = {} is too few: at least 100",
                    dp.block_probes
                ),
            ))
        } else if dp.noise_cv_limit.is_nan() || dp.noise_cv_limit <= 0.0 {
            Some((
                "noise_cv_limit",
                format!(
                    "datapath.noise_cv_limit = {} must be positive",
                    dp.noise_cv_limit
                ),
            ))
        } else {
            dp.sla.iter().find_map(|(path, sla)| {
                let bad = |v: Option<f64>| v.is_some_and(|v| !v.is_finite() || v <= 0.0);
                if !matches!(path.as_str(), "loopback" | "macvlan" | "bridge" | "ptp" | "pod-same-node" | "pod-cross-node") {
                    Some(("sla", format!("datapath.sla.{path}: unknown path; expected loopback, macvlan, bridge, ptp, pod-same-node or pod-cross-node")))
                } else if bad(sla.p50_us) || bad(sla.p99_us) {
                    Some(("sla", format!("datapath.sla.{path}: SLA values must be positive numbers of microseconds")))
                } else if let (Some(p50), Some(p99)) = (sla.p50_us, sla.p99_us)
                    && p99 < p50
                {
                    Some(("sla", format!("datapath.sla.{path}: p99_us ({p99}) is below p50_us ({p50}), which no distribution satisfies")))
                } else {
                    None
                }
            })
        };
        if let Some((key, message)) = dp_error {
            // SLA problems point at their table header, the others at their key.
            let offset = if key == "sla" {
                message
                    .strip_prefix("datapath.sla.")
                    .and_then(|m| m.split(':').next())
                    .and_then(|path| text.find(&format!("[datapath.sla.{path}]")))
            } else {
                find_key(text, key)
            };
            return Err(invalid(offset.unwrap_or(0), message));
        }
        Ok(target)
    }
}

fn merge(base: &mut toml::Table, over: toml::Table) {
    for (key, value) in over {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

fn key_in_message(message: &str) -> Option<String> {
    let start = message.find('`')? + 1;
    let len = message[start..].find('`')?;
    Some(message[start..start + len].to_owned())
}

fn find_key(text: &str, key: &str) -> Option<usize> {
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim_start();
        if let Some(rest) = trimmed.strip_prefix(key)
            && rest.trim_start().starts_with('=')
        {
            return Some(offset + (line.len() - trimmed.len()));
        }
        offset += line.len();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_target_is_the_local_machine() {
        let t = Target::local();
        assert_eq!(t.name, "local");
        assert_eq!(t.profile, NodeProfile::Basic);
        assert_eq!(t.network.lab_cidr, "198.18.0.0/15");
    }

    #[test]
    fn partial_files_layer_over_the_defaults() {
        let t = Target::parse(
            Path::new("t.toml"),
            "name = \"lab\"\n[host]\nmin_kernel = \"5.10\"\n",
        )
        .unwrap();
        assert_eq!(t.name, "lab");
        assert_eq!(t.host.min_kernel, "5.10");
        assert_eq!(t.host.drift_window_hours, 24);
    }

    #[test]
    fn unknown_keys_name_the_line() {
        let err = Target::parse(
            Path::new("t.toml"),
            "name = \"lab\"\n\n[host]\nmin_kernal = \"5.10\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.starts_with("t.toml:4:1: unknown field `min_kernal`"),
            "{err}"
        );
    }

    #[test]
    fn syntax_errors_name_the_line() {
        let err = Target::parse(Path::new("t.toml"), "name = \"lab\"\nprofile = \n").unwrap_err();
        assert!(err.to_string().starts_with("t.toml:2:"), "{err}");
    }

    #[test]
    fn wrong_types_and_values_are_explained() {
        let err = Target::parse(Path::new("t.toml"), "profile = \"fast\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("basic") && err.contains("network-intensive"),
            "{err}"
        );
        let err = Target::parse(
            Path::new("t.toml"),
            "[network]\nlab_cidr = \"198.18.0.1/15\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(err.starts_with("t.toml:2:1: network.lab_cidr"), "{err}");
    }

    #[test]
    fn impossible_slas_are_refused() {
        let err = Target::parse(
            Path::new("t.toml"),
            "[datapath.sla.macvlan]\np50_us = 50.0\np99_us = 10.0\n",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("p99_us (10) is below p50_us (50)"), "{err}");
        let err = Target::parse(Path::new("t.toml"), "[datapath.sla.wifi]\np50_us = 5.0\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown path"), "{err}");
        let err = Target::parse(
            Path::new("t.toml"),
            "[datapath.sla.bridge]\np50_us = -1.0\n",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("positive"), "{err}");
        let err = Target::parse(Path::new("t.toml"), "[datapath.sla.bridge]\np50 = 1.0\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown field `p50`"), "{err}");
        assert!(
            Target::parse(
                Path::new("t.toml"),
                "[datapath.sla.bridge]\np50_us = 40.0\n"
            )
            .is_ok()
        );
    }

    #[test]
    fn cidrs_and_kernel_versions_parse() {
        assert_eq!(
            parse_ipv4_cidr("198.18.0.0/15"),
            Some((Ipv4Addr::new(198, 18, 0, 0), 15))
        );
        assert_eq!(parse_ipv4_cidr("198.19.0.0/15"), None);
        assert_eq!(parse_kernel_version("6.18.44-fc-v669"), Some((6, 18)));
        assert_eq!(parse_kernel_version("six"), None);
    }
}
