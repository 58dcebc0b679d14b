//! The target file: which NFVI is under test and where its parts are. It holds the common
//! settings (name, profile, network resources) and one table per area, which the area reads
//! into its own typed configuration ([`crate::area::Table`]). Without `--target`
//! the target is the local machine with the defaults of every area.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::area::{Areas, ConfigError, ErasedConfig};

/// The common part of the commented default target file; each area's table follows it in
/// `nfvi-verify target --example`.
pub const COMMON_TARGET_TOML: &str = include_str!("default-target.toml");

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

/// How much of the upstream test suites (Tempest, Kubernetes e2e, kube-bench) a run drives.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum UpstreamLevel {
    /// None: their checks are skipped, naming `--upstream`.
    None,
    /// A short selection of each (minutes): Tempest's smoke tests, e2e conformance only.
    Smoke,
    /// What the certification requires (RC1's Tempest sets, RC2's e2e focus sets): hours on
    /// a real NFVI.
    #[default]
    Full,
}

impl UpstreamLevel {
    /// The kebab-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            UpstreamLevel::None => "none",
            UpstreamLevel::Smoke => "smoke",
            UpstreamLevel::Full => "full",
        }
    }
}

/// The NFVI under test: the settings every area shares. Each area's tables follow them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "Target")]
pub struct CommonTarget {
    /// A name for the NFVI, shown in reports.
    pub name: String,
    /// The Anuket node profile.
    pub profile: NodeProfile,
    /// Network resources the harness may use.
    pub network: NetworkTarget,
    /// How much of the upstream test suites the run drives: none, smoke or full.
    #[serde(default)]
    pub upstream: UpstreamLevel,
}

/// The NFVI under test: the common settings and each registered area's configuration.
#[derive(Clone, Debug)]
pub struct Target {
    /// A name for the NFVI, shown in reports.
    pub name: String,
    /// The Anuket node profile.
    pub profile: NodeProfile,
    /// Network resources the harness may use.
    pub network: NetworkTarget,
    /// How much of the upstream test suites the run drives (`--upstream` overrides it).
    pub upstream: UpstreamLevel,
    /// The file this target was read from, if any.
    pub file: Option<PathBuf>,
    /// On a node agent (`nfvi-verify node`): the node of the fleet it verifies, with its
    /// roles. `None` on the jump host and in runs without a fleet.
    pub node: Option<crate::fleet::NodeSpec>,
    configs: Vec<(&'static str, Arc<dyn ErasedConfig>)>,
    resolved: toml::Table,
}

/// Network resources the harness may use.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NetworkTarget {
    /// Addresses the harness may assign in namespaces and bridges it creates
    /// (198.18.0.0/15 by default, RFC 2544).
    pub lab_cidr: String,
    /// Existing interfaces the harness may attach to; empty: only interfaces it creates.
    pub interfaces: Vec<String>,
}

/// The target file cannot be used.
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
    /// The file is not a valid target.
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

/// A value given on the command line for one key of an area's table (`--cni-path`).
#[derive(Clone, Debug, PartialEq)]
pub struct Override {
    /// The area's table.
    pub area: &'static str,
    /// The key within it.
    pub key: &'static str,
    /// The value.
    pub value: toml::Value,
}

/// A CIDR (`address/prefix`) that cannot be used. Every message names the text it was given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CidrError {
    /// No `/prefix` part.
    #[error("`{text}` has no /prefix")]
    NoPrefix {
        /// The text given.
        text: String,
    },
    /// The part before the `/` is not an IPv4 or IPv6 address.
    #[error("`{text}` does not start with an IPv4 or IPv6 address")]
    Address {
        /// The text given.
        text: String,
    },
    /// The prefix is not a decimal number.
    #[error("the prefix `/{prefix}` of `{text}` is not a decimal number")]
    PrefixNotNumber {
        /// The text given.
        text: String,
        /// The part after the `/`.
        prefix: String,
    },
    /// The prefix is longer than the address family allows; it is never clamped.
    #[error(
        "the prefix /{prefix} of `{text}` is over {max}, the longest an IPv{family} prefix can be"
    )]
    PrefixTooLong {
        /// The text given.
        text: String,
        /// The part after the `/`, as given.
        prefix: String,
        /// 32 or 128.
        max: u8,
        /// 4 or 6.
        family: u8,
    },
    /// A network was expected but the address has host bits set.
    #[error("`{text}` has host bits set; the network would be {network}")]
    HostBits {
        /// The text given.
        text: String,
        /// The network the prefix selects.
        network: ipnet::IpNet,
    },
    /// An IPv4 network was expected.
    #[error("`{text}` is an IPv6 network; an IPv4 network is required")]
    NotIpv4 {
        /// The text given.
        text: String,
    },
}

/// Parses `address/prefix` (IPv4 or IPv6) as an interface address: host bits may be set
/// (`198.18.30.2/24`). A prefix over 32 (IPv4) or 128 (IPv6) is an error, never clamped.
/// Strict where `ipnet`'s own `FromStr` only says "invalid": every error names the value.
pub fn parse_cidr(s: &str) -> Result<ipnet::IpNet, CidrError> {
    let text = || s.to_owned();
    let (addr, prefix) = s
        .split_once('/')
        .ok_or_else(|| CidrError::NoPrefix { text: text() })?;
    let addr: std::net::IpAddr = addr
        .parse()
        .map_err(|_| CidrError::Address { text: text() })?;
    if prefix.is_empty() || !prefix.bytes().all(|b| b.is_ascii_digit()) {
        return Err(CidrError::PrefixNotNumber {
            text: text(),
            prefix: prefix.to_owned(),
        });
    }
    let (max, family) = if addr.is_ipv4() { (32, 4) } else { (128, 6) };
    let too_long = || CidrError::PrefixTooLong {
        text: text(),
        prefix: prefix.to_owned(),
        max,
        family,
    };
    // All digits: a parse error is an overflow, so too long as well.
    let len: u8 = prefix.parse().map_err(|_| too_long())?;
    ipnet::IpNet::new(addr, len).map_err(|_| too_long())
}

/// Parses `address/prefix` as a network: as [`parse_cidr`], and no host bits set.
pub fn parse_network(s: &str) -> Result<ipnet::IpNet, CidrError> {
    let net = parse_cidr(s)?;
    if net.trunc() != net {
        return Err(CidrError::HostBits {
            text: s.to_owned(),
            network: net.trunc(),
        });
    }
    Ok(net)
}

/// Parses an IPv4 network (`198.18.0.0/15`): as [`parse_network`], and IPv4.
pub fn parse_ipv4_network(s: &str) -> Result<ipnet::Ipv4Net, CidrError> {
    match parse_network(s)? {
        ipnet::IpNet::V4(net) => Ok(net),
        ipnet::IpNet::V6(_) => Err(CidrError::NotIpv4 { text: s.to_owned() }),
    }
}

/// Parses `a.b.c.d/len` into the network address and prefix length; `None` unless it is a
/// network address (no host bits set) with a prefix of at most 32. [`parse_ipv4_network`]
/// says why not.
pub fn parse_ipv4_cidr(s: &str) -> Option<(Ipv4Addr, u8)> {
    parse_ipv4_network(s)
        .ok()
        .map(|n| (n.network(), n.prefix_len()))
}

impl Target {
    /// The local machine with every area's defaults.
    pub fn local(areas: &Areas) -> Self {
        Self::parse(Path::new("<embedded default target>"), "", areas, &[])
            .expect("the embedded default target is valid")
    }

    /// Reads a target file, with `overrides` from the command line over it.
    pub fn load(path: &Path, areas: &Areas, overrides: &[Override]) -> Result<Self, TargetError> {
        let text = std::fs::read_to_string(path).map_err(|source| TargetError::Read {
            path: path.to_owned(),
            source,
        })?;
        let mut target = Self::parse(path, &text, areas, overrides)?;
        target.file = Some(path.to_owned());
        Ok(target)
    }

    /// Parses a target file's text (named `path` in messages): the user's keys over every
    /// area's defaults, each area's table read by its area.
    pub fn parse(
        path: &Path,
        text: &str,
        areas: &Areas,
        overrides: &[Override],
    ) -> Result<Self, TargetError> {
        let invalid = |offset: usize, message: String| {
            let at = nfvi_reference_model::Location::from_offset("", text, offset);
            TargetError::Invalid {
                path: path.to_owned(),
                line: at.line,
                column: at.column,
                message,
            }
        };
        let locate = |at: Option<&str>| {
            at.and_then(|needle| {
                if needle.starts_with('[') {
                    text.find(needle)
                } else {
                    find_key(text, needle)
                }
            })
            .unwrap_or(0)
        };
        let mut user: toml::Table = toml::from_str(text).map_err(|e| {
            invalid(
                e.span().map_or(0, |s| s.start),
                e.message().trim_end().to_owned(),
            )
        })?;
        for o in overrides {
            let table = user
                .entry(o.area)
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            if let toml::Value::Table(t) = table {
                t.insert(o.key.to_owned(), o.value.clone());
            }
        }
        let mut merged: toml::Table =
            toml::from_str(&areas.default_target()).expect("the areas' default tables are TOML");
        merge(&mut merged, user);
        let resolved = merged.clone();
        let mut configs = Vec::new();
        for table in areas.tables() {
            let value = merged
                .remove(table.name)
                .unwrap_or_else(|| toml::Value::Table(toml::Table::new()));
            let config = table
                .load(value)
                .map_err(|ConfigError { message, at }| invalid(locate(at.as_deref()), message))?;
            configs.push((table.name, config));
        }
        let common: CommonTarget = toml::Value::Table(merged).try_into().map_err(|e: toml::de::Error| {
            let mut message = e.message().trim_end().to_owned();
            let key = crate::area::key_in_message(&message);
            if message.starts_with("unknown field") {
                let ids: Vec<&str> = areas.tables().iter().map(|t| t.name).collect();
                message = format!(
                    "unknown table or key `{}`; expected name, profile, upstream, [network] or one of the areas' tables ({})",
                    key.as_deref().unwrap_or("?"),
                    ids.join(", ")
                );
            }
            invalid(locate(key.as_deref()), message)
        })?;
        if let Err(e) = parse_ipv4_network(&common.network.lab_cidr) {
            return Err(invalid(
                locate(Some("lab_cidr")),
                format!("network.lab_cidr is not an IPv4 network such as \"198.18.0.0/15\": {e}"),
            ));
        }
        Ok(Self {
            name: common.name,
            profile: common.profile,
            network: common.network,
            upstream: common.upstream,
            file: None,
            node: None,
            configs,
            resolved,
        })
    }

    /// Sets how much of the upstream suites the run drives (`--upstream`), in the resolved
    /// target too.
    pub fn set_upstream(&mut self, level: UpstreamLevel) {
        self.upstream = level;
        self.resolved
            .insert("upstream".to_owned(), level.as_str().into());
    }

    /// The whole target as TOML, every default filled in: what the run used.
    pub fn resolved_toml(&self) -> String {
        toml::to_string(&self.resolved).unwrap_or_default()
    }

    /// The configuration of the area whose type is `T`.
    ///
    /// # Panics
    ///
    /// When no registered area has a configuration of that type: a check of an area that
    /// was not registered with the target, which is a defect of this build.
    pub fn config<T: ErasedConfig>(&self) -> &T {
        self.try_config().unwrap_or_else(|| {
            panic!(
                "no area with a {} is registered",
                std::any::type_name::<T>()
            )
        })
    }

    /// The configuration of the area whose type is `T`, if one is registered.
    pub fn try_config<T: ErasedConfig>(&self) -> Option<&T> {
        self.configs
            .iter()
            .find_map(|(_, c)| (&**c as &dyn std::any::Any).downcast_ref::<T>())
    }

    /// Replaces the configuration of type `T` (tests tune one setting this way).
    pub fn set_config<T: ErasedConfig>(&mut self, config: T) {
        for (_, c) in &mut self.configs {
            if (&**c as &dyn std::any::Any).is::<T>() {
                *c = Arc::new(config);
                return;
            }
        }
        panic!(
            "no area with a {} is registered",
            std::any::type_name::<T>()
        );
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
    use crate::area::{Area, AreaConfig, Table};
    use crate::check::Check;

    /// A small area with one table, as an area crate declares it.
    #[derive(Debug, Deserialize, JsonSchema)]
    #[serde(deny_unknown_fields)]
    struct DemoConfig {
        min_kernel: String,
        window_hours: u32,
    }

    impl AreaConfig for DemoConfig {
        fn validate(&self) -> Result<(), ConfigError> {
            ConfigError::ensure(
                self.window_hours > 0,
                "window_hours",
                "demo.window_hours = 0: expected at least 1",
            )
        }
    }

    struct Demo;

    impl Area for Demo {
        fn id(&self) -> &'static str {
            "demo"
        }
        fn tables(&self) -> Vec<Table> {
            vec![Table::of::<DemoConfig>(
                "demo",
                "[demo]\n# Oldest kernel.\nmin_kernel = \"4.19\"\nwindow_hours = 24\n",
            )]
        }
        fn checks(&self) -> Vec<Arc<dyn Check>> {
            Vec::new()
        }
    }

    fn areas() -> Areas {
        Areas::new(vec![Arc::new(Demo)])
    }

    fn parse(text: &str) -> Result<Target, TargetError> {
        Target::parse(Path::new("t.toml"), text, &areas(), &[])
    }

    #[test]
    fn the_default_target_is_the_local_machine() {
        let t = Target::local(&areas());
        assert_eq!(t.name, "local");
        assert_eq!(t.profile, NodeProfile::Basic);
        assert_eq!(t.network.lab_cidr, "198.18.0.0/15");
        assert_eq!(t.config::<DemoConfig>().min_kernel, "4.19");
    }

    #[test]
    fn partial_files_layer_over_the_defaults() {
        let t = parse("name = \"lab\"\n[demo]\nmin_kernel = \"5.10\"\n").unwrap();
        assert_eq!(t.name, "lab");
        assert_eq!(t.config::<DemoConfig>().min_kernel, "5.10");
        assert_eq!(t.config::<DemoConfig>().window_hours, 24);
    }

    #[test]
    fn command_line_overrides_win_over_the_file() {
        let over = Override {
            area: "demo",
            key: "min_kernel",
            value: toml::Value::String("6.1".into()),
        };
        let t = Target::parse(
            Path::new("t.toml"),
            "[demo]\nmin_kernel = \"5.10\"\n",
            &areas(),
            &[over],
        )
        .unwrap();
        assert_eq!(t.config::<DemoConfig>().min_kernel, "6.1");
    }

    #[test]
    fn unknown_keys_name_the_line() {
        let err = parse("name = \"lab\"\n\n[demo]\nmin_kernal = \"5.10\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("t.toml:4:1: unknown field `min_kernal`"),
            "{err}"
        );
        let err = parse("name = \"lab\"\n[dmeo]\nx = 1\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("unknown table or key `dmeo`") && err.contains("(demo)"),
            "{err}"
        );
    }

    #[test]
    fn an_area_s_validation_names_its_key() {
        let err = parse("[demo]\nwindow_hours = 0\n").unwrap_err().to_string();
        assert!(
            err.starts_with("t.toml:2:1: demo.window_hours = 0"),
            "{err}"
        );
    }

    #[test]
    fn syntax_errors_name_the_line() {
        let err = parse("name = \"lab\"\nprofile = \n").unwrap_err();
        assert!(err.to_string().starts_with("t.toml:2:"), "{err}");
    }

    #[test]
    fn wrong_types_and_values_are_explained() {
        let err = parse("profile = \"fast\"\n").unwrap_err().to_string();
        assert!(
            err.contains("basic") && err.contains("network-intensive"),
            "{err}"
        );
        let err = parse("[network]\nlab_cidr = \"198.18.0.1/15\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("t.toml:2:1: network.lab_cidr"), "{err}");
    }

    #[test]
    fn the_example_is_assembled_from_the_areas() {
        let text = areas().default_target();
        assert!(text.starts_with("# nfvi-verify target file"), "{text}");
        assert!(text.contains("[network]") && text.contains("[demo]\n# Oldest kernel."));
        let schema = areas().target_schema().to_value();
        assert!(schema["properties"]["demo"]["properties"]["min_kernel"].is_object());
    }

    #[test]
    fn cidrs_parse() {
        assert_eq!(
            parse_ipv4_cidr("198.18.0.0/15"),
            Some((Ipv4Addr::new(198, 18, 0, 0), 15))
        );
        assert_eq!(parse_ipv4_cidr("198.19.0.0/15"), None);
        assert_eq!(parse_ipv4_cidr("198.18.0.0/33"), None);
        assert_eq!(parse_ipv4_cidr("2001:2::/48"), None);
    }

    /// Every row: text, what `parse_cidr` gives (`Ok(prefix)` or a part of the error), and
    /// whether it is a network (no host bits).
    #[test]
    fn cidrs_of_both_families_parse_or_name_the_bad_value() {
        let rows: &[(&str, Result<u8, &str>, bool)] = &[
            ("198.18.30.2/24", Ok(24), false),
            ("198.18.0.0/15", Ok(15), true),
            ("0.0.0.0/0", Ok(0), true),
            ("198.18.30.2/32", Ok(32), true),
            (
                "198.18.30.2/33",
                Err("prefix /33 of `198.18.30.2/33` is over 32"),
                false,
            ),
            (
                "198.18.30.2/255",
                Err("/255 of `198.18.30.2/255` is over 32"),
                false,
            ),
            (
                "198.18.30.2/256",
                Err("/256 of `198.18.30.2/256` is over 32"),
                false,
            ),
            ("198.18.30.2/99999999999999999999", Err("is over 32"), false),
            ("2001:2:0:30::2/64", Ok(64), false),
            ("2001:2::/48", Ok(48), true),
            ("::/0", Ok(0), true),
            ("2001:2::1/128", Ok(128), true),
            (
                "2001:2::1/129",
                Err("prefix /129 of `2001:2::1/129` is over 128, the longest an IPv6"),
                false,
            ),
            ("2001:2::1/200", Err("is over 128"), false),
            ("198.18.30.2", Err("`198.18.30.2` has no /prefix"), false),
            (
                "198.18.30.300/24",
                Err("does not start with an IPv4 or IPv6 address"),
                false,
            ),
            ("/24", Err("does not start with"), false),
            ("198.18.30.2/", Err("prefix `/` of"), false),
            ("198.18.30.2/+8", Err("prefix `/+8` of"), false),
            ("198.18.30.2/-1", Err("not a decimal number"), false),
            ("198.18.30.2/24/24", Err("prefix `/24/24`"), false),
            ("2001:2::1%eth0/64", Err("does not start with"), false),
            ("", Err("no /prefix"), false),
        ];
        for (text, want, network) in rows {
            match (parse_cidr(text), want) {
                (Ok(net), Ok(len)) => {
                    assert_eq!(net.prefix_len(), *len, "{text}");
                    assert_eq!(net.to_string(), *text, "{text}");
                    assert_eq!(parse_network(text).is_ok(), *network, "{text}");
                }
                (Err(e), Err(part)) => {
                    assert!(e.to_string().contains(part), "{text}: {e}");
                    assert_eq!(parse_network(text), Err(e), "{text}");
                }
                (got, _) => panic!("{text}: {got:?}"),
            }
        }
        let e = parse_network("198.18.30.2/24").unwrap_err().to_string();
        assert!(
            e.contains("host bits") && e.contains("198.18.30.0/24"),
            "{e}"
        );
        let e = parse_ipv4_network("2001:2::/48").unwrap_err().to_string();
        assert!(e.contains("`2001:2::/48` is an IPv6 network"), "{e}");
    }

    #[test]
    fn a_lab_cidr_with_a_bad_prefix_is_refused_with_its_value() {
        for (value, part) in [
            ("198.18.0.0/33", "/33 of `198.18.0.0/33` is over 32"),
            ("198.18.0.0/300", "/300 of `198.18.0.0/300` is over 32"),
            (
                "198.18.0.1/15",
                "host bits set; the network would be 198.18.0.0/15",
            ),
            ("2001:2::/48", "IPv6 network"),
        ] {
            let err = parse(&format!("[network]\nlab_cidr = \"{value}\"\n"))
                .unwrap_err()
                .to_string();
            assert!(err.starts_with("t.toml:2:1: network.lab_cidr"), "{err}");
            assert!(err.contains(part), "{value}: {err}");
        }
    }
}
