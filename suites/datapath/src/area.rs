//! The data-path area's boundary with the core: its table of the target file (with the
//! latency SLAs), its checks.

use std::collections::BTreeMap;
use std::sync::Arc;

use nfvi_harness::{Area, AreaConfig, Check, ConfigError, Table};
use schemars::JsonSchema;
use serde::Deserialize;

/// The `[datapath]` table: how latency is measured, and the SLAs it is judged by.
#[derive(Clone, Debug, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DatapathConfig {
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
    /// CPU to pin prober threads to in blocking and paced modes; absent: no pinning (the
    /// `-1` of older target files means the same).
    #[serde(default, deserialize_with = "cpu_or_none")]
    #[schemars(with = "Option<i64>")]
    pub pin_cpu: Option<usize>,
    /// Kernel receive timestamps in blocking and paced modes.
    pub kernel_timestamps: bool,
    /// Latency SLAs per path: loopback, macvlan, bridge, ptp, the in-cluster probes'
    /// pod-same-node and pod-cross-node, and a fleet's fleet-same-node and fleet-cross-node
    /// (between the nodes' own addresses).
    #[serde(default)]
    pub sla: BTreeMap<String, LatencySla>,
}

/// A CPU number, or none for absent or -1.
fn cpu_or_none<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<usize>, D::Error> {
    match Option::<i64>::deserialize(d)? {
        None | Some(-1) => Ok(None),
        Some(n) => usize::try_from(n).map(Some).map_err(|_| {
            serde::de::Error::custom(format!(
                "pin_cpu = {n} is not a CPU number (0, 1, ...; leave it out for no pinning)"
            ))
        }),
    }
}

/// A latency SLA of one path, in microseconds.
#[derive(Clone, Debug, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LatencySla {
    /// Upper bound for the median RTT.
    #[serde(default)]
    pub p50_us: Option<f64>,
    /// Upper bound for the 99th percentile RTT.
    #[serde(default)]
    pub p99_us: Option<f64>,
}

/// The paths an SLA can name.
pub const SLA_PATHS: &[&str] = &[
    "loopback",
    "macvlan",
    "bridge",
    "ptp",
    "pod-same-node",
    "pod-cross-node",
    "fleet-same-node",
    "fleet-cross-node",
];

impl AreaConfig for DatapathConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        ConfigError::ensure(
            matches!(self.mode.as_str(), "blocking" | "spin" | "paced"),
            "mode",
            format!(
                "datapath.mode `{}` is not one of blocking, spin, paced",
                self.mode
            ),
        )?;
        ConfigError::ensure(
            self.rounds >= 2,
            "rounds",
            format!(
                "datapath.rounds = {} is too few: at least 2 rounds are needed for a comparison",
                self.rounds
            ),
        )?;
        ConfigError::ensure(
            self.block_probes >= 100,
            "block_probes",
            format!(
                "datapath.block_probes = {} is too few: at least 100",
                self.block_probes
            ),
        )?;
        // NaN fails the comparison too.
        ConfigError::ensure(
            self.noise_cv_limit > 0.0,
            "noise_cv_limit",
            format!(
                "datapath.noise_cv_limit = {} must be positive",
                self.noise_cv_limit
            ),
        )?;
        for (path, sla) in &self.sla {
            // SLA problems point at their table header.
            let at = format!("[datapath.sla.{path}]");
            let bad = |v: Option<f64>| v.is_some_and(|v| !v.is_finite() || v <= 0.0);
            ConfigError::ensure(
                SLA_PATHS.contains(&path.as_str()),
                &at,
                format!(
                    "datapath.sla.{path}: unknown path; expected one of {}",
                    SLA_PATHS.join(", ")
                ),
            )?;
            ConfigError::ensure(
                !bad(sla.p50_us) && !bad(sla.p99_us),
                &at,
                format!("datapath.sla.{path}: SLA values must be positive numbers of microseconds"),
            )?;
            if let (Some(p50), Some(p99)) = (sla.p50_us, sla.p99_us)
                && p99 < p50
            {
                return Err(ConfigError::at(
                    at,
                    format!(
                        "datapath.sla.{path}: p99_us ({p99}) is below p50_us ({p50}), which no distribution satisfies"
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// The data-path area.
pub struct DatapathArea;

impl Area for DatapathArea {
    fn id(&self) -> &'static str {
        "datapath"
    }

    /// The data paths are built and measured inside one node; the cross-node path of a
    /// fleet is measured between two nodes, from the jump host.
    fn node_level(&self, check: &nfvi_harness::CheckMeta) -> bool {
        check.id != crate::cross_node::ID
    }

    fn tables(&self) -> Vec<Table> {
        vec![Table::of::<DatapathConfig>(
            "datapath",
            include_str!("datapath.toml"),
        )]
    }

    fn checks(&self) -> Vec<Arc<dyn Check>> {
        crate::checks()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nfvi_harness::{Areas, Target};

    fn parse(text: &str) -> Result<Target, String> {
        let areas = Areas::new(vec![Arc::new(DatapathArea)]);
        Target::parse(std::path::Path::new("t.toml"), text, &areas, &[]).map_err(|e| e.to_string())
    }

    #[test]
    fn impossible_slas_are_refused() {
        let err = parse("[datapath.sla.macvlan]\np50_us = 50.0\np99_us = 10.0\n").unwrap_err();
        assert!(err.contains("p99_us (10) is below p50_us (50)"), "{err}");
        assert!(err.starts_with("t.toml:1:1:"), "{err}");
        let err = parse("[datapath.sla.wifi]\np50_us = 5.0\n").unwrap_err();
        assert!(err.contains("unknown path"), "{err}");
        let err = parse("[datapath.sla.bridge]\np50_us = -1.0\n").unwrap_err();
        assert!(err.contains("positive"), "{err}");
        let err = parse("[datapath.sla.bridge]\np50 = 1.0\n").unwrap_err();
        assert!(err.contains("unknown field `p50`"), "{err}");
        let t = parse("[datapath.sla.bridge]\np50_us = 40.0\n").unwrap();
        assert_eq!(
            t.config::<DatapathConfig>().sla["bridge"].p50_us,
            Some(40.0)
        );
    }

    #[test]
    fn only_the_cross_node_check_runs_on_the_jump_host() {
        let checks = crate::checks();
        let on_jump_host: Vec<&str> = checks
            .iter()
            .map(|c| c.meta())
            .filter(|m| !DatapathArea.node_level(m))
            .map(|m| m.id.as_str())
            .collect();
        assert_eq!(on_jump_host, ["datapath.fleet.cross-node"]);
        assert!(checks.len() > 2);
        let t = parse("[datapath.sla.fleet-cross-node]\np99_us = 400.0\n").unwrap();
        assert_eq!(
            t.config::<DatapathConfig>().sla["fleet-cross-node"].p99_us,
            Some(400.0)
        );
    }

    #[test]
    fn pinning_is_a_cpu_or_nothing() {
        let cpu = |text: &str| parse(text).map(|t| t.config::<DatapathConfig>().pin_cpu);
        assert_eq!(cpu(""), Ok(None));
        assert_eq!(cpu("[datapath]\npin_cpu = -1\n"), Ok(None));
        assert_eq!(cpu("[datapath]\npin_cpu = 1\n"), Ok(Some(1)));
        let err = cpu("[datapath]\npin_cpu = -3\n").unwrap_err();
        assert!(err.contains("not a CPU number"), "{err}");
    }

    #[test]
    fn measurement_settings_are_checked() {
        let err = parse("[datapath]\nmode = \"fast\"\n").unwrap_err();
        assert!(err.starts_with("t.toml:2:1: datapath.mode `fast`"), "{err}");
        let err = parse("[datapath]\nrounds = 1\n").unwrap_err();
        assert!(err.contains("at least 2 rounds"), "{err}");
    }
}
