//! The Tempest area's boundary with the core: its `[tempest]` table and the run's one Tempest
//! run, shared by its checks.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use nfvi_harness::area::empty_as_none;
use nfvi_harness::{Area, AreaConfig, Check, ConfigError, Shared, Table, Target};
use schemars::JsonSchema;
use serde::Deserialize;

use crate::services::{self, SERVICES};

/// The `[tempest]` table: which Tempest, where, and which tests.
#[derive(Clone, Debug, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TempestConfig {
    /// The Tempest release from PyPI (`tempest==VERSION`).
    pub version: String,
    /// A prepared virtualenv holding Tempest; none: the cached
    /// /var/cache/nfvi-verify/tempest-VERSION, created on first use.
    #[serde(default, deserialize_with = "empty_as_none")]
    pub venv: Option<String>,
    /// The interpreter that creates the virtualenv.
    pub python: String,
    /// Tempest plugins pip installs beside Tempest (`heat-tempest-plugin==2.1.0`).
    pub plugins: Vec<String>,
    /// Test workers.
    pub concurrency: u32,
    /// The whole run's deadline, in minutes.
    pub timeout_minutes: u32,
    /// Services Tempest is never told about.
    pub skip_services: Vec<String>,
    /// The image Tempest boots (`[compute] image_ref`), by ID.
    #[serde(default, deserialize_with = "empty_as_none")]
    pub image_ref: Option<String>,
    /// The flavor Tempest boots with (`[compute] flavor_ref`), by ID.
    #[serde(default, deserialize_with = "empty_as_none")]
    pub flavor_ref: Option<String>,
    /// The external network for floating IPs (`[network] public_network_id`).
    #[serde(default, deserialize_with = "empty_as_none")]
    pub public_network_id: Option<String>,
    /// Per service, the tests at `upstream = "smoke"` (a stestr regex; '' for none).
    pub smoke: BTreeMap<String, String>,
    /// Per service, the tests at `upstream = "full"`.
    pub full: BTreeMap<String, String>,
    /// Per service, the tests left out at `full`.
    pub exclude: BTreeMap<String, String>,
}

/// The defaults of the table (src/tempest.toml), as compiled in.
pub fn defaults() -> Result<TempestConfig, String> {
    let table: toml::Table = toml::from_str(include_str!("tempest.toml"))
        .map_err(|e| format!("the default [tempest] table: {e}"))?;
    table
        .get("tempest")
        .cloned()
        .ok_or("the default [tempest] table is missing")?
        .try_into()
        .map_err(|e| format!("the default [tempest] table: {e}"))
}

/// Where the cached virtualenv of a version lives.
pub const CACHE_DIR: &str = "/var/cache/nfvi-verify";

impl TempestConfig {
    /// The value of one of the keys a service may need (`image_ref`, ...).
    pub fn key(&self, key: &str) -> Option<&str> {
        match key {
            "image_ref" => self.image_ref.as_deref(),
            "flavor_ref" => self.flavor_ref.as_deref(),
            "public_network_id" => self.public_network_id.as_deref(),
            _ => None,
        }
    }

    /// The virtualenv to use, and whether nfvi-verify manages it (creates it when missing).
    pub fn venv_path(&self) -> (PathBuf, bool) {
        match &self.venv {
            Some(v) => (PathBuf::from(v), false),
            None => (
                PathBuf::from(CACHE_DIR).join(format!("tempest-{}", self.version)),
                true,
            ),
        }
    }
}

/// Whether `s` is a version pip takes literally (PEP 440 characters only, no option).
fn plain_version(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.starts_with(|c: char| c.is_ascii_digit())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '+' | '!' | '-' | '_'))
}

/// Whether `s` is one requirement (`name==1.0`, `name>=1`), never a pip option or a path.
fn plain_requirement(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 200
        && s.starts_with(|c: char| c.is_ascii_alphanumeric())
        && s.chars().all(|c| {
            c.is_ascii_alphanumeric()
                || matches!(
                    c,
                    '.' | '+' | '!' | '-' | '_' | '=' | '<' | '>' | '~' | ',' | '[' | ']'
                )
        })
}

impl AreaConfig for TempestConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        ConfigError::ensure(
            plain_version(&self.version),
            "version",
            format!(
                "tempest.version `{}` is not a release number (such as 47.0.0)",
                self.version
            ),
        )?;
        ConfigError::ensure(
            (1..=64).contains(&self.concurrency),
            "concurrency",
            format!(
                "tempest.concurrency = {} is out of range: 1 to 64 workers",
                self.concurrency
            ),
        )?;
        ConfigError::ensure(
            (1..=7 * 24 * 60).contains(&self.timeout_minutes),
            "timeout_minutes",
            format!(
                "tempest.timeout_minutes = {} is out of range: 1 to 10080 (a week)",
                self.timeout_minutes
            ),
        )?;
        ConfigError::ensure(
            !self.python.trim().is_empty() && !self.python.starts_with('-'),
            "python",
            "tempest.python must name an interpreter (python3)",
        )?;
        if let Some(p) = self.plugins.iter().find(|p| !plain_requirement(p)) {
            return Err(ConfigError::at(
                "plugins",
                format!(
                    "tempest.plugins holds `{p}`: expected a requirement such as heat-tempest-plugin==2.1.0 (no pip option, path or URL)"
                ),
            ));
        }
        for key in ["image_ref", "flavor_ref", "public_network_id"] {
            if let Some(v) = self.key(key) {
                ConfigError::ensure(
                    v.len() <= 255 && v.chars().all(|c| c.is_ascii_graphic() && c != '$'),
                    key,
                    format!(
                        "tempest.{key} must be an ID (at most 255 printable characters, no blank)"
                    ),
                )?;
            }
        }
        let names: Vec<&str> = SERVICES.iter().map(|s| s.name).collect();
        for (key, map) in [
            ("smoke", &self.smoke),
            ("full", &self.full),
            ("exclude", &self.exclude),
        ] {
            if let Some(k) = map.keys().find(|k| services::by_name(k).is_none()) {
                return Err(ConfigError::at(
                    key,
                    format!(
                        "tempest.{key}.{k} names no service; the services are {}",
                        names.join(", ")
                    ),
                ));
            }
            if let Some((k, _)) = map.iter().find(|(_, v)| v.contains('\n') || v.len() > 4096) {
                return Err(ConfigError::at(
                    key,
                    format!("tempest.{key}.{k} must be one regex on one line (at most 4096 bytes)"),
                ));
            }
        }
        if let Some(s) = self
            .skip_services
            .iter()
            .find(|s| services::by_name(s).is_none())
        {
            return Err(ConfigError::at(
                "skip_services",
                format!(
                    "tempest.skip_services names `{s}`, which is no service; the services are {}",
                    names.join(", ")
                ),
            ));
        }
        Ok(())
    }
}

/// Tempest, driven against the OpenStack cloud under test.
pub struct TempestArea;

impl Area for TempestArea {
    fn id(&self) -> &'static str {
        "tempest"
    }

    fn tables(&self) -> Vec<Table> {
        vec![Table::of::<TempestConfig>(
            "tempest",
            include_str!("tempest.toml"),
        )]
    }

    fn checks(&self) -> Vec<Arc<dyn Check>> {
        crate::checks::checks()
    }

    fn open(&self, _target: &Target) -> Shared {
        Arc::new(crate::run::Shared::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defaults() -> TempestConfig {
        super::defaults().unwrap()
    }

    #[test]
    fn defaults_read_and_cover_every_service() {
        let c = defaults();
        c.validate().unwrap();
        assert_eq!(c.version, "47.0.0");
        assert_eq!(
            c.venv_path(),
            (PathBuf::from("/var/cache/nfvi-verify/tempest-47.0.0"), true)
        );
        for s in SERVICES {
            assert!(c.full.contains_key(s.name), "{}", s.name);
            assert!(c.smoke.contains_key(s.name), "{}", s.name);
            assert!(c.exclude.contains_key(s.name), "{}", s.name);
        }
    }

    #[test]
    fn hostile_values_are_refused_naming_the_key() {
        type Edit = fn(&mut TempestConfig);
        let rows: Vec<(Edit, &str)> = vec![
            (|c| c.version = "--index-url=http://x".into(), "version"),
            (|c| c.version = "47.0.0 evil".into(), "version"),
            (|c| c.concurrency = 0, "concurrency"),
            (|c| c.timeout_minutes = 0, "timeout_minutes"),
            (|c| c.plugins = vec!["-e git+http://x".into()], "plugins"),
            (|c| c.plugins = vec!["/tmp/x.whl".into()], "plugins"),
            (
                |c| {
                    c.full.insert("nova".into(), "x".into());
                },
                "full",
            ),
            (
                |c| {
                    c.smoke.insert("identity".into(), "a\nb".into());
                },
                "smoke",
            ),
            (|c| c.skip_services = vec!["swift".into()], "skip_services"),
            (|c| c.image_ref = Some("a b".into()), "image_ref"),
            (|c| c.flavor_ref = Some("1\n[auth]".into()), "flavor_ref"),
        ];
        for (edit, key) in rows {
            let mut c = defaults();
            edit(&mut c);
            let e = c.validate().unwrap_err();
            assert_eq!(e.at.as_deref(), Some(key), "{e:?}");
        }
        let mut c = defaults();
        c.plugins = vec!["heat-tempest-plugin==2.1.0".into()];
        c.validate().unwrap();
    }
}
