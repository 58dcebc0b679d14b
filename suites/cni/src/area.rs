//! The CNI area's boundary with the core: its table of the target file, the plugin
//! directories it detects, its flags, its checks and the plugins' own version lines for the
//! inventory.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use nfvi_harness::cancel::CancelToken;
use nfvi_harness::check::BoxFuture;
use nfvi_harness::inventory::Inventory;
use nfvi_harness::process::{self, CommandSpec};
use nfvi_harness::{
    Area, AreaConfig, Check, ConfigError, Flag, FlagKind, Need, Resource, Table, Target,
};
use schemars::JsonSchema;
use serde::Deserialize;

/// The `[cni]` table: where the plugins are and which to verify.
#[derive(Clone, Debug, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CniConfig {
    /// Plugin directories, searched in order.
    pub paths: Vec<PathBuf>,
    /// Only these plugins; empty for all.
    pub plugins: Vec<String>,
    /// Deadline of one plugin invocation, in seconds.
    pub exec_timeout_secs: u64,
    /// Seed of the `cni-fuzz` campaign; absent: one from the clock, printed in the results.
    #[serde(default)]
    pub fuzz_seed: Option<u64>,
    /// Seconds of fuzzing per run of the `cni-fuzz` suite, split evenly among the plugins.
    pub fuzz_budget: u64,
    /// Plugin invocations the fuzzer runs at once; 0: twice the number of CPUs.
    pub fuzz_workers: usize,
}

impl AreaConfig for CniConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        ConfigError::ensure(
            self.exec_timeout_secs > 0,
            "exec_timeout_secs",
            "cni.exec_timeout_secs = 0: a plugin needs at least 1 second",
        )?;
        crate::fuzz::validate(self)
    }
}

impl CniConfig {
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

/// The need of every check that executes plugins.
pub fn plugins_need() -> Need {
    Need::resource("cni-plugins", "CNI plugins")
}

const FLAGS: &[Flag] = &[
    Flag {
        long: "cni-path",
        table: "cni",
        key: "paths",
        value_name: "DIRS",
        help: "CNI plugin directories, `:`-separated (overrides cni.paths)",
        kind: FlagKind::PathList,
    },
    Flag {
        long: "cni-plugins",
        table: "cni",
        key: "plugins",
        value_name: "NAMES",
        help: "Only these CNI plugins, comma-separated (overrides cni.plugins)",
        kind: FlagKind::List,
    },
    Flag {
        long: "seed",
        table: "cni",
        key: "fuzz_seed",
        value_name: "N",
        help: "Seed of the cni-fuzz campaign (overrides cni.fuzz_seed; default: from the clock)",
        kind: FlagKind::Integer,
    },
    Flag {
        long: "fuzz-budget",
        table: "cni",
        key: "fuzz_budget",
        value_name: "SECONDS",
        help: "Seconds of CNI fuzzing per run, split among the plugins (overrides cni.fuzz_budget)",
        kind: FlagKind::Integer,
    },
];

/// The CNI conformance area.
pub struct CniArea;

impl Area for CniArea {
    fn id(&self) -> &'static str {
        "cni"
    }

    /// The CNI plugins and their configuration are installed on each node.
    fn node_level(&self, _check: &nfvi_harness::CheckMeta) -> bool {
        true
    }

    fn tables(&self) -> Vec<Table> {
        vec![Table::of::<CniConfig>("cni", include_str!("cni.toml"))]
    }

    fn flags(&self) -> &'static [Flag] {
        FLAGS
    }

    fn resources(&self, target: &Target) -> Vec<Resource> {
        let cni = target.config::<CniConfig>();
        let found = cni
            .paths
            .iter()
            .any(|d| std::fs::read_dir(d).is_ok_and(|mut r| r.next().is_some()));
        vec![Resource {
            id: "cni-plugins",
            missing: (!found).then(|| {
                format!(
                    "no CNI plugins in {}; install containernetworking-plugins or set cni.paths",
                    cni.search_path()
                )
            }),
        }]
    }

    fn checks(&self) -> Vec<Arc<dyn Check>> {
        crate::checks()
    }

    fn helper_main(&self, argv0: &str) -> Option<i32> {
        (argv0 == crate::spy::SPY_NAME).then(crate::spy::run)
    }

    fn inventory<'a>(
        &'a self,
        target: &'a Target,
        inventory: &'a mut Inventory,
    ) -> BoxFuture<'a, ()> {
        Box::pin(about_lines(target.config::<CniConfig>(), inventory))
    }
}

/// Each plugin's own version line: run without CNI_COMMAND, a plugin built on the reference
/// library prints its "about" line ("CNI bridge plugin v1.1.1") and exits.
async fn about_lines(cni: &CniConfig, inventory: &mut Inventory) {
    for dir in &cni.paths {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        let mut names: Vec<_> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
        names.sort();
        for plugin in names.into_iter().take(64) {
            let name = plugin
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let key = format!("cni/{name}");
            if inventory.components.contains_key(&key) {
                continue;
            }
            let spec = CommandSpec::new(plugin.to_string_lossy()).timeout(Duration::from_secs(5));
            let Ok(out) = process::run(&spec, &CancelToken::never(), Duration::from_secs(1)).await
            else {
                continue;
            };
            let about = format!("{}\n{}", out.stdout_text(), out.stderr_text());
            if let Some(line) = about
                .lines()
                .find(|l| l.contains("CNI") && l.contains("plugin"))
            {
                inventory.components.insert(key, line.trim().to_owned());
            }
        }
    }
}
