//! The host area's boundary with the core: its table of the target file, its checks and
//! its part of the inventory (the node itself and the versions of what runs the NFVI).

use std::path::PathBuf;
use std::sync::Arc;

use nfvi_harness::check::BoxFuture;
use nfvi_harness::inventory::Inventory;
use nfvi_harness::{Area, AreaConfig, Check, ConfigError, Table, Target};
use schemars::JsonSchema;
use serde::Deserialize;

/// The `[host]` table: host readiness settings.
#[derive(Clone, Debug, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HostConfig {
    /// Oldest acceptable kernel release, `major.minor`.
    pub min_kernel: String,
    /// Package changes within this many hours are drift.
    pub drift_window_hours: u32,
    /// dpkg's log file.
    pub dpkg_log: PathBuf,
}

impl AreaConfig for HostConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        ConfigError::ensure(
            parse_kernel_version(&self.min_kernel).is_some(),
            "min_kernel",
            format!(
                "host.min_kernel `{}` is not a kernel release such as \"4.19\"",
                self.min_kernel
            ),
        )
    }
}

/// `(major, minor)` of a kernel release such as `6.1.0-18-amd64`.
pub fn parse_kernel_version(s: &str) -> Option<(u32, u32)> {
    let mut parts = s.split(|c: char| !c.is_ascii_digit());
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

/// The host readiness area.
pub struct HostArea;

impl Area for HostArea {
    fn id(&self) -> &'static str {
        "host"
    }

    /// Every host check verifies the node it runs on.
    fn node_level(&self, _check: &nfvi_harness::CheckMeta) -> bool {
        true
    }

    fn tables(&self) -> Vec<Table> {
        vec![Table::of::<HostConfig>("host", include_str!("host.toml"))]
    }

    fn checks(&self) -> Vec<Arc<dyn Check>> {
        crate::checks()
    }

    fn inventory<'a>(
        &'a self,
        _target: &'a Target,
        inventory: &'a mut Inventory,
    ) -> BoxFuture<'a, ()> {
        Box::pin(crate::inventory::collect(inventory))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Target, String> {
        let areas = nfvi_harness::Areas::new(vec![Arc::new(HostArea)]);
        Target::parse(std::path::Path::new("t.toml"), text, &areas, &[]).map_err(|e| e.to_string())
    }

    #[test]
    fn the_host_table_is_read_and_checked() {
        let t = parse("[host]\nmin_kernel = \"5.10\"\n").unwrap();
        assert_eq!(t.config::<HostConfig>().min_kernel, "5.10");
        assert_eq!(t.config::<HostConfig>().drift_window_hours, 24);
        let err = parse("[host]\nmin_kernel = \"six\"\n").unwrap_err();
        assert!(
            err.starts_with("t.toml:2:1: host.min_kernel `six`"),
            "{err}"
        );
    }

    #[test]
    fn kernel_versions_parse() {
        assert_eq!(parse_kernel_version("6.18.44-fc-v669"), Some((6, 18)));
        assert_eq!(parse_kernel_version("six"), None);
    }
}
