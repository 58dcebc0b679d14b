//! The boundary between the core and an area (netavark's driver boundary): an area owns its
//! table of the target file, what it needs from the machine, its contribution to the
//! inventory, its per-run shared state and its checks. The core names no area; the CLI
//! registers each area with one line.
//!
//! Adding an area: implement [`Area`] in its own crate and add one line to the CLI's area
//! list. ARCHITECTURE.md walks through it.

use std::any::Any;
use std::fmt::Debug;
use std::sync::Arc;

use serde::de::DeserializeOwned;

use crate::check::{BoxFuture, Check, CheckMeta};
use crate::fleet::{FleetError, Transport};
use crate::inventory::Inventory;
use crate::leftover::{Gone, Leftover};
use crate::target::Target;

/// An area's typed configuration, as loaded from its table of the target file.
pub trait AreaConfig:
    DeserializeOwned + schemars::JsonSchema + Debug + Send + Sync + 'static
{
    /// Checks what types cannot say (ranges, known names); the error names the key.
    fn validate(&self) -> Result<(), ConfigError> {
        Ok(())
    }
}

/// A configuration, type-erased for the [`Target`]; areas read theirs back with
/// [`Target::config`].
pub trait ErasedConfig: Any + Debug + Send + Sync {}
impl<T: Any + Debug + Send + Sync> ErasedConfig for T {}

/// An area's per-run state: opened when the session starts, closed when it ends.
pub type Shared = Arc<dyn Any + Send + Sync>;

/// A problem in an area's table of the target file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// What is wrong and what was expected, naming the key (`datapath.rounds = 1 is too
    /// few: ...`).
    pub message: String,
    /// The text to point at in the file: a key (`rounds`) or a table header
    /// (`[datapath.sla.wifi]`); `None` for the table itself.
    pub at: Option<String>,
}

impl ConfigError {
    /// An error at `key` of the area's table.
    pub fn at(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            at: Some(key.into()),
        }
    }

    /// `Ok` when the rule `holds`, otherwise the error at `key` with `message`.
    pub fn ensure(
        holds: bool,
        key: impl Into<String>,
        message: impl Into<String>,
    ) -> Result<(), Self> {
        if holds {
            Ok(())
        } else {
            Err(Self::at(key, message))
        }
    }
}

/// Something an area can detect on the machine and its checks can need
/// ([`Need::Resource`](crate::Need::Resource)): a Docker socket, a kubeconfig.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    /// The resource's name, as checks name it in their needs.
    pub id: &'static str,
    /// `None` when present; otherwise why not and how to provide it (the skip reason of
    /// every check that needs it).
    pub missing: Option<String>,
}

/// One command-line flag an area offers to `run` and `list`: it sets one key of one of the
/// area's tables, over the target file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flag {
    /// The long name, without dashes (`cni-path`).
    pub long: &'static str,
    /// The table it sets a key of (`cni`).
    pub table: &'static str,
    /// The key it sets in the table (`paths`).
    pub key: &'static str,
    /// The placeholder in help (`PATHS`).
    pub value_name: &'static str,
    /// One line of help.
    pub help: &'static str,
    /// How the value becomes TOML.
    pub kind: FlagKind,
}

impl Flag {
    /// The flag as it is typed on a command line with `value`: `--long value`, or `--long`
    /// alone for a [`FlagKind::Switch`].
    pub fn typed(&self, value: &str) -> String {
        match self.kind {
            FlagKind::Switch => format!("--{}", self.long),
            _ => format!("--{} {value}", self.long),
        }
    }
}

/// How a [`Flag`]'s value becomes a TOML value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagKind {
    /// A string (a path).
    Text,
    /// A list of paths separated by `:` (as `PATH`).
    PathList,
    /// A list of names separated by `,`.
    List,
    /// A whole number.
    Integer,
    /// A flag without a value: given, it sets `true`.
    Switch,
}

impl FlagKind {
    /// The TOML value of `raw`.
    pub fn value(self, raw: &str) -> toml::Value {
        let list = |items: Vec<String>| {
            toml::Value::Array(items.into_iter().map(toml::Value::String).collect())
        };
        match self {
            FlagKind::Text => toml::Value::String(raw.to_owned()),
            // Kept as text when it is no number, so the table's validation names the key.
            FlagKind::Integer => raw.trim().parse::<i64>().map_or_else(
                |_| toml::Value::String(raw.to_owned()),
                toml::Value::Integer,
            ),
            FlagKind::Switch => toml::Value::Boolean(true),
            FlagKind::PathList => list(
                std::env::split_paths(raw)
                    .map(|p| p.display().to_string())
                    .collect(),
            ),
            FlagKind::List => list(
                raw.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect(),
            ),
        }
    }
}

/// One table of the target file that an area owns, with its defaults and its type.
#[derive(Clone, Copy)]
pub struct Table {
    /// The table's name in the target file (`cni`, `openstack`).
    pub name: &'static str,
    /// The commented TOML of the table, starting with its `[name]` header, whose values
    /// are the defaults; `target --example` shows it.
    pub defaults: &'static str,
    load: fn(toml::Value) -> Result<Arc<dyn ErasedConfig>, ConfigError>,
    schema: fn() -> schemars::Schema,
}

impl Table {
    /// The table `name`, read into a `T`, with the commented defaults `defaults`.
    pub fn of<T: AreaConfig>(name: &'static str, defaults: &'static str) -> Self {
        Self {
            name,
            defaults,
            load: load::<T>,
            schema: || schemars::schema_for!(T),
        }
    }

    /// Reads the table (the user's keys over the defaults).
    pub fn load(&self, value: toml::Value) -> Result<Arc<dyn ErasedConfig>, ConfigError> {
        (self.load)(value)
    }

    /// The table's JSON Schema.
    pub fn schema(&self) -> schemars::Schema {
        (self.schema)()
    }
}

/// An area of verification: host readiness, CNI, data path, Docker, Kolla, Kubernetes.
pub trait Area: Send + Sync + 'static {
    /// The area's ID: the first segment of its check IDs.
    fn id(&self) -> &'static str;

    /// The tables of the target file the area owns (usually one, named like the area).
    /// Checks read them with [`Target::config`].
    fn tables(&self) -> Vec<Table>;

    /// Command-line flags that set keys of the area's tables.
    fn flags(&self) -> &'static [Flag] {
        &[]
    }

    /// What the machine offers the area's checks, looked at once before planning.
    fn resources(&self, _target: &Target) -> Vec<Resource> {
        Vec::new()
    }

    /// The area's checks, in the order `list` shows them.
    fn checks(&self) -> Vec<Arc<dyn Check>>;

    /// Runs a helper program the area builds into the binary, when the process was started
    /// under its name (`argv0`'s file name, through a symbolic link): the CNI area's recording
    /// IPAM plugin is `nfvspy`. Returns its exit code, or `None` to carry on as nfvi-verify.
    fn helper_main(&self, _argv0: &str) -> Option<i32> {
        None
    }

    /// Adds what the area knows about the NFVI's make-up to the inventory.
    fn inventory<'a>(
        &'a self,
        _target: &'a Target,
        _inventory: &'a mut Inventory,
    ) -> BoxFuture<'a, ()> {
        Box::pin(async {})
    }

    /// The state the area's checks share for one run (one client, one token, caches). It
    /// must be cheap: connect lazily, on first use by a check.
    fn open(&self, _target: &Target) -> Shared {
        Arc::new(())
    }

    /// Ends the run's shared state; the session gives it a deadline.
    fn close(&self, _shared: Shared) -> BoxFuture<'static, Result<(), String>> {
        Box::pin(async { Ok(()) })
    }

    /// Whether `check` (one of this area's) verifies a node rather than the whole NFVI: in a
    /// run over a fleet it runs on every node, through the node agent.
    fn node_level(&self, _check: &CheckMeta) -> bool {
        false
    }

    /// The fleet this area can reach for the target (an SSH inventory, a DaemonSet), if the
    /// target asks for one. Two areas offering one for the same target is an error.
    fn transport(&self, _target: &Target) -> Result<Option<Arc<dyn Transport>>, FleetError> {
        Ok(None)
    }

    /// What this area's checks created in runs whose process is gone (`gone(pid)` says so),
    /// found through the target's APIs and the machine, each with its removal, in the order
    /// to remove them (containers before their networks). Only what carries the harness's
    /// owner marks ([`crate::leftover`]): never anything else. `nfvi-verify clean` and the
    /// start of every run remove what this returns; an `Err` says why the area could not look
    /// (the other areas still clean).
    fn leftovers<'a>(
        &'a self,
        _target: &'a Target,
        _gone: Gone<'a>,
    ) -> BoxFuture<'a, Result<Vec<Leftover>, String>> {
        Box::pin(async { Ok(Vec::new()) })
    }

    /// Every container image the area's checks may pull for `target` (upstream suites, probe
    /// and agent images), with the target's registries, so that an operator can mirror them
    /// (`nfvi-verify images`). An image whose tag depends on the NFVI and cannot be resolved
    /// says so in place of the tag (`<cluster version>`).
    fn images<'a>(&'a self, _target: &'a Target) -> BoxFuture<'a, Vec<String>> {
        Box::pin(async { Vec::new() })
    }

    /// Reads and validates the files the target names for this area (evidence of other
    /// tools, for example) before anything runs, on the machine `run` was started on only
    /// (never on the nodes of a fleet, which do not have them). An error is bad input: the
    /// run does not start, and the message names the file and the position in it.
    fn preflight(&self, _target: &Target) -> Result<(), String> {
        Ok(())
    }
}

/// For optional settings: an empty string, which older target files used for "none", reads
/// as `None`, like a key left out. Use with `#[serde(default, deserialize_with = ...)]`.
pub fn empty_as_none<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    use serde::Deserialize as _;
    Ok(Option::<String>::deserialize(d)?.filter(|s| !s.is_empty()))
}

/// Reads a typed configuration from an area's table.
pub fn load<T: AreaConfig>(table: toml::Value) -> Result<Arc<dyn ErasedConfig>, ConfigError> {
    let config: T = table.try_into().map_err(|e: toml::de::Error| {
        let message = e.message().trim_end().to_owned();
        let at = key_in_message(&message);
        ConfigError { message, at }
    })?;
    config.validate()?;
    Ok(Arc::new(config))
}

/// The first `quoted` name in a TOML error message (`unknown field `min_kernal``).
pub(crate) fn key_in_message(message: &str) -> Option<String> {
    let start = message.find('`')? + 1;
    let len = message[start..].find('`')?;
    Some(message[start..start + len].to_owned())
}

/// The areas of this build, in registration order.
#[derive(Clone, Default)]
pub struct Areas(Vec<Arc<dyn Area>>);

impl Areas {
    /// The areas, in order.
    ///
    /// # Panics
    ///
    /// When two areas share an ID or a table name, a table is named like a common setting,
    /// or a table's defaults do not start with its own header: defects of the build, found
    /// at start-up.
    pub fn new(areas: Vec<Arc<dyn Area>>) -> Self {
        let mut seen: Vec<&str> = vec!["name", "profile", "network"];
        for area in &areas {
            for table in area.tables() {
                assert!(
                    !seen.contains(&table.name),
                    "area `{}`: table `{}` is taken",
                    area.id(),
                    table.name
                );
                assert!(
                    table
                        .defaults
                        .trim_start()
                        .starts_with(&format!("[{}]", table.name)),
                    "area `{}`: the defaults of table `{}` must start with `[{}]`",
                    area.id(),
                    table.name,
                    table.name
                );
                seen.push(table.name);
            }
        }
        let mut ids: Vec<&str> = areas.iter().map(|a| a.id()).collect();
        ids.sort_unstable();
        assert!(
            ids.windows(2).all(|w| w[0] != w[1]),
            "two areas share an ID: {ids:?}"
        );
        Self(areas)
    }

    /// Iterates over the areas.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<dyn Area>> {
        self.0.iter()
    }

    /// Whether a check runs on every node of a fleet (its area says so).
    pub fn node_level(&self, check: &CheckMeta) -> bool {
        self.get(check.area.as_str())
            .is_some_and(|a| a.node_level(check))
    }

    /// The fleet the target asks for; `None` when the run verifies only the machine it runs
    /// on. Two areas offering one (an inventory and a DaemonSet) is an error: the run would
    /// verify the nodes twice, or silently not as asked.
    pub fn transport(&self, target: &Target) -> Result<Option<Arc<dyn Transport>>, FleetError> {
        let mut offered: Vec<(&'static str, Arc<dyn Transport>)> = Vec::new();
        for area in self.iter() {
            if let Some(t) = area.transport(target)? {
                offered.push((area.id(), t));
            }
        }
        match offered.len() {
            0 => Ok(None),
            1 => Ok(offered.pop().map(|(_, t)| t)),
            _ => Err(FleetError::Input(format!(
                "the target asks for more than one way to reach the nodes ({}); choose one",
                offered
                    .iter()
                    .map(|(id, t)| format!("{} through the {id} area", t.kind()))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
        }
    }

    /// Every area's [`Area::preflight`], in order; the first error stops.
    pub fn preflight(&self, target: &Target) -> Result<(), String> {
        self.iter().try_for_each(|a| a.preflight(target))
    }

    /// The area with this ID.
    pub fn get(&self, id: &str) -> Option<&Arc<dyn Area>> {
        self.0.iter().find(|a| a.id() == id)
    }

    /// Every check of every area, in order.
    pub fn checks(&self) -> Vec<Arc<dyn Check>> {
        self.0.iter().flat_map(|a| a.checks()).collect()
    }

    /// Every flag of every area.
    pub fn flags(&self) -> impl Iterator<Item = &'static Flag> + '_ {
        self.0.iter().flat_map(|a| a.flags().iter())
    }

    /// Every table of every area, in order.
    pub fn tables(&self) -> Vec<Table> {
        self.0.iter().flat_map(|a| a.tables()).collect()
    }

    /// The default target file: the common settings, then each area's tables.
    pub fn default_target(&self) -> String {
        let mut text = crate::target::COMMON_TARGET_TOML.to_owned();
        for table in self.tables() {
            text.push('\n');
            text.push_str(table.defaults.trim_end());
            text.push('\n');
        }
        text
    }

    /// The JSON Schema of the whole target file: the common settings and every table.
    pub fn target_schema(&self) -> schemars::Schema {
        let mut root = schemars::schema_for!(crate::target::CommonTarget).to_value();
        for table in self.tables() {
            let mut sub = table.schema().to_value();
            let Some(obj) = sub.as_object_mut() else {
                continue;
            };
            obj.remove("$schema");
            // The table's own definitions move up next to the root's.
            if let Some(serde_json::Value::Object(defs)) = obj.remove("$defs") {
                let all = root.as_object_mut().and_then(|r| {
                    r.entry("$defs")
                        .or_insert_with(|| serde_json::json!({}))
                        .as_object_mut()
                });
                if let Some(all) = all {
                    all.extend(defs);
                }
            }
            root["properties"][table.name] = sub;
            if let Some(required) = root["required"].as_array_mut() {
                required.push(table.name.into());
            }
        }
        schemars::Schema::try_from(root).expect("a schema object")
    }
}
