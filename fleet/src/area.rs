//! The fleet area's boundary with the core: the `[fleet]` table and its flags, the SSH
//! transport it offers a run whose target names an inventory, and the checks that compare
//! the nodes.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use nfvi_harness::area::empty_as_none;
use nfvi_harness::fleet::{FleetError, Transport};
use nfvi_harness::{Area, AreaConfig, Check, ConfigError, Flag, FlagKind, Table, Target};
use schemars::JsonSchema;
use serde::Deserialize;

use crate::inventory::Inventory;
use crate::ssh::{AgentSource, SshOptions, SshTransport};

/// The `[fleet]` table: the nodes to verify from this jump host, and how to reach them.
#[derive(Clone, Debug, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FleetConfig {
    /// An Ansible INI inventory of the nodes; none: only this machine is verified.
    #[serde(default, deserialize_with = "empty_as_none")]
    pub inventory: Option<String>,
    /// Accept the host keys of nodes known_hosts does not hold, without verification.
    pub accept_new_host_keys: bool,
    /// Nodes verified at once, 1 to 256.
    pub parallel: usize,
    /// `copy` (this binary, copied to each node for the run) or the absolute path of an
    /// nfvi-verify of this version installed on every node.
    pub agent: String,
    /// ssh's ConnectTimeout, seconds (1 to 300).
    pub connect_timeout_secs: u64,
}

impl AreaConfig for FleetConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        ConfigError::ensure(
            (1..=256).contains(&self.parallel),
            "parallel",
            format!(
                "fleet.parallel = {} is out of range: 1 to 256 nodes at once",
                self.parallel
            ),
        )?;
        ConfigError::ensure(
            !self.agent.chars().any(char::is_control),
            "agent",
            "fleet.agent holds a control character; expected \"copy\" or an absolute path",
        )?;
        ConfigError::ensure(
            self.agent == "copy" || Path::new(&self.agent).is_absolute(),
            "agent",
            format!(
                "fleet.agent = {:?} is neither \"copy\" nor an absolute path of an installed \
                 nfvi-verify",
                self.agent
            ),
        )?;
        ConfigError::ensure(
            (1..=300).contains(&self.connect_timeout_secs),
            "connect_timeout_secs",
            format!(
                "fleet.connect_timeout_secs = {} is out of range: 1 to 300 seconds",
                self.connect_timeout_secs
            ),
        )?;
        ConfigError::ensure(
            self.inventory.as_deref().is_none_or(|i| !i.contains('\0')),
            "inventory",
            "fleet.inventory holds a NUL character; expected a file path",
        )
    }
}

impl FleetConfig {
    /// Where the agent comes from.
    pub fn agent_source(&self) -> AgentSource {
        if self.agent == "copy" {
            AgentSource::Copy
        } else {
            AgentSource::Installed(PathBuf::from(&self.agent))
        }
    }
}

/// What `nfvi-verify --version` prints for this build; an installed agent must print it.
/// This crate's version is the workspace's, the CLI's.
pub fn expected_version() -> String {
    format!("nfvi-verify {}", env!("CARGO_PKG_VERSION"))
}

const FLAGS: &[Flag] = &[
    Flag {
        long: "inventory",
        table: "fleet",
        key: "inventory",
        value_name: "FILE",
        help: "Verify every node of this Ansible INI inventory over ssh (overrides fleet.inventory)",
        kind: FlagKind::Text,
    },
    Flag {
        long: "nodes-parallel",
        table: "fleet",
        key: "parallel",
        value_name: "N",
        help: "Nodes of the inventory verified at once (overrides fleet.parallel)",
        kind: FlagKind::Integer,
    },
    Flag {
        long: "accept-new-host-keys",
        table: "fleet",
        key: "accept_new_host_keys",
        value_name: "",
        help: "Accept host keys of nodes known_hosts does not hold, without verification; recorded in the results (sets fleet.accept_new_host_keys)",
        kind: FlagKind::Switch,
    },
];

/// The fleet area: every node of an Ansible inventory, reached over ssh.
pub struct FleetArea;

impl Area for FleetArea {
    fn id(&self) -> &'static str {
        "fleet"
    }

    fn tables(&self) -> Vec<Table> {
        vec![Table::of::<FleetConfig>(
            "fleet",
            include_str!("fleet.toml"),
        )]
    }

    fn flags(&self) -> &'static [Flag] {
        FLAGS
    }

    fn checks(&self) -> Vec<Arc<dyn Check>> {
        crate::checks::checks()
    }

    /// With `fleet.inventory`, its hosts, reached over ssh.
    fn transport(&self, target: &Target) -> Result<Option<Arc<dyn Transport>>, FleetError> {
        let config = target.config::<FleetConfig>();
        let Some(path) = config.inventory.as_deref() else {
            return Ok(None);
        };
        let inventory =
            Inventory::load(Path::new(path)).map_err(|e| FleetError::Input(e.to_string()))?;
        if inventory.hosts.is_empty() {
            return Err(FleetError::Input(format!(
                "{path}: the inventory names no hosts; expected [group] sections of host lines"
            )));
        }
        if find_on_path("ssh").is_none() {
            return Err(FleetError::Unavailable(
                "the inventory's nodes are reached with the OpenSSH client, and `ssh` is not on \
                 PATH; install openssh-client"
                    .to_owned(),
            ));
        }
        let transport = SshTransport::new(&inventory, options(config))?;
        Ok(Some(Arc::new(transport)))
    }
}

/// The transport's options from the table.
pub fn options(config: &FleetConfig) -> SshOptions {
    SshOptions {
        accept_new_host_keys: config.accept_new_host_keys,
        parallel: config.parallel,
        agent: config.agent_source(),
        connect_timeout_secs: config.connect_timeout_secs,
        expected_version: expected_version(),
        program: "ssh".to_owned(),
        agent_binary: None,
    }
}

fn find_on_path(program: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(program))
            .find(|p| {
                p.metadata()
                    .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            })
    })
}

#[cfg(test)]
mod tests {
    use nfvi_harness::target::Override;

    use super::*;

    fn parse(text: &str, overrides: &[Override]) -> Result<Target, String> {
        let areas = nfvi_harness::Areas::new(vec![Arc::new(FleetArea)]);
        Target::parse(Path::new("t.toml"), text, &areas, overrides).map_err(|e| e.to_string())
    }

    #[test]
    fn the_table_has_defaults_and_is_checked() {
        let t = parse("", &[]).unwrap();
        let c = t.config::<FleetConfig>();
        assert_eq!(
            (
                c.inventory.as_deref(),
                c.accept_new_host_keys,
                c.parallel,
                c.agent.as_str()
            ),
            (None, false, 16, "copy")
        );
        assert_eq!(c.connect_timeout_secs, 10);
        assert_eq!(c.agent_source(), AgentSource::Copy);
        let t = parse(
            "[fleet]\ninventory = \"\"\nagent = \"/usr/local/bin/nfvi-verify\"\n",
            &[],
        )
        .unwrap();
        assert_eq!(t.config::<FleetConfig>().inventory, None);
        assert_eq!(
            t.config::<FleetConfig>().agent_source(),
            AgentSource::Installed("/usr/local/bin/nfvi-verify".into())
        );
        for (text, want) in [
            (
                "[fleet]\nparallel = 0\n",
                "t.toml:2:1: fleet.parallel = 0 is out of range",
            ),
            (
                "[fleet]\nparallel = 300\n",
                "fleet.parallel = 300 is out of range",
            ),
            (
                "[fleet]\nagent = \"bin/nv\"\n",
                "fleet.agent = \"bin/nv\" is neither",
            ),
            (
                "[fleet]\nconnect_timeout_secs = 0\n",
                "fleet.connect_timeout_secs = 0",
            ),
            ("[fleet]\ninventroy = \"x\"\n", "unknown field `inventroy`"),
        ] {
            let e = parse(text, &[]).unwrap_err();
            assert!(e.contains(want), "{text:?}: {e}");
        }
    }

    #[test]
    fn flags_set_the_table() {
        let flag = |long: &str| FLAGS.iter().find(|f| f.long == long).unwrap();
        let set = |long: &str, raw: &str| Override {
            area: "fleet",
            key: flag(long).key,
            value: flag(long).kind.value(raw),
        };
        let t = parse(
            "",
            &[
                set("inventory", "/etc/kolla/multinode"),
                set("nodes-parallel", "16"),
                set("accept-new-host-keys", ""),
            ],
        )
        .unwrap();
        let c = t.config::<FleetConfig>();
        assert_eq!(c.inventory.as_deref(), Some("/etc/kolla/multinode"));
        assert_eq!(c.parallel, 16);
        assert!(c.accept_new_host_keys);
        let e = parse("", &[set("nodes-parallel", "many")]).unwrap_err();
        assert!(e.contains("many"), "{e}");
    }

    #[test]
    fn the_transport_follows_the_inventory() {
        assert!(
            FleetArea
                .transport(&parse("", &[]).unwrap())
                .unwrap()
                .is_none()
        );
        let dir = tempfile::tempdir().unwrap();
        let target = |file: &Path| {
            let text = format!("[fleet]\ninventory = {:?}\n", file.display().to_string());
            parse(&text, &[]).unwrap()
        };
        let bad = dir.path().join("bad.ini");
        std::fs::write(&bad, "[compute]\ncompute[04:01]\n").unwrap();
        let e = FleetArea.transport(&target(&bad)).err().unwrap();
        assert!(matches!(e, FleetError::Input(_)));
        assert!(e.to_string().ends_with("bad.ini:2: host range `compute[04:01]` runs backwards; expected [start:end] with start <= end"), "{e}");
        let empty = dir.path().join("empty.ini");
        std::fs::write(&empty, "[compute]\n[all:vars]\nansible_user=kolla\n").unwrap();
        let e = FleetArea.transport(&target(&empty)).err().unwrap();
        assert!(e.to_string().contains("names no hosts"), "{e}");
        let missing = dir.path().join("missing.ini");
        let e = FleetArea.transport(&target(&missing)).err().unwrap();
        assert!(e.to_string().contains("missing.ini: cannot read it"), "{e}");
        if find_on_path("ssh").is_some() {
            let good = dir.path().join("good.ini");
            std::fs::write(
                &good,
                "[control]\nctl[1:2] ansible_host=198.19.10.1\n[compute]\ncmp1\n",
            )
            .unwrap();
            let t = FleetArea.transport(&target(&good)).unwrap().unwrap();
            assert_eq!(t.kind(), "ssh");
            assert_eq!(t.parallel(), 16);
            let names: Vec<&str> = t.nodes().iter().map(|n| n.name.as_str()).collect();
            assert_eq!(names, ["ctl1", "ctl2", "cmp1"]);
            assert_eq!(t.nodes()[0].roles, ["control"]);
            assert_eq!(t.nodes()[0].address.as_deref(), Some("198.19.10.1"));
            assert_eq!(
                t.notes()[0],
                "host keys checked strictly against known_hosts"
            );
            let records = t.close();
            assert!(records.iter().all(|r| r.error.is_none()), "{records:?}");
        }
    }

    #[test]
    fn checks_are_cluster_level_and_need_a_fleet() {
        let checks = FleetArea.checks();
        let ids: Vec<&str> = checks.iter().map(|c| c.meta().id.as_str()).collect();
        assert_eq!(ids, ["fleet.nodes.kernel", "fleet.nodes.packages"]);
        for c in &checks {
            assert!(!FleetArea.node_level(c.meta()));
            assert!(c.applicable(&parse("", &[]).unwrap()).is_err());
            let t = parse("[fleet]\ninventory = \"inv.ini\"\n", &[]).unwrap();
            assert!(c.applicable(&t).is_ok());
        }
        assert_eq!(
            expected_version(),
            format!("nfvi-verify {}", env!("CARGO_PKG_VERSION"))
        );
    }
}
