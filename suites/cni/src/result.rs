//! The CNI result, error and version objects as Rust types, the JSON Schemas generated from
//! them (checked in under `schemas/cni-*.schema.json`), and validation of raw plugin output
//! against the schema of the negotiated version plus the semantic rules the schema cannot
//! express.

use std::net::IpAddr;
use std::sync::OnceLock;

use ipnet::IpNet;
use nfvi_harness::target::parse_cidr;

use schemars::{JsonSchema, schema_for};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// An interface in a result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Interface {
    /// Interface name.
    pub name: String,
    /// Hardware address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
    /// Netns path for container interfaces; absent or empty for host interfaces.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sandbox: Option<String>,
}

/// An IP configuration in a 1.0.0 result (`version` was removed in 1.0.0).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IpConfig {
    /// Index into `interfaces`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<u32>,
    /// CIDR address.
    pub address: String,
    /// Gateway address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<String>,
}

/// An IP configuration in a 0.3.x / 0.4.0 result: `version` is required.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IpConfigV04 {
    /// "4" or "6".
    pub version: IpVersion,
    /// Index into `interfaces`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<u32>,
    /// CIDR address.
    pub address: String,
    /// Gateway address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<String>,
}

/// The `version` of an IP configuration.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub enum IpVersion {
    /// IPv4.
    #[serde(rename = "4")]
    V4,
    /// IPv6.
    #[serde(rename = "6")]
    V6,
}

/// A route.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Route {
    /// Destination CIDR.
    pub dst: String,
    /// Next hop.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gw: Option<String>,
}

/// DNS settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Dns {
    /// Name servers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nameservers: Option<Vec<String>>,
    /// Local domain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    /// Search domains.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub search: Option<Vec<String>>,
    /// Resolver options.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<Vec<String>>,
}

/// The ADD success result of spec 1.0.0.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Result100 {
    /// The version of the result, equal to the request's.
    pub cni_version: String,
    /// Interfaces created or used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interfaces: Option<Vec<Interface>>,
    /// Addresses assigned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ips: Option<Vec<IpConfig>>,
    /// Routes installed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routes: Option<Vec<Route>>,
    /// DNS settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns: Option<Dns>,
}

/// The ADD success result of spec 0.3.0 to 0.4.0.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Result040 {
    /// The version of the result.
    pub cni_version: String,
    /// Interfaces created or used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interfaces: Option<Vec<Interface>>,
    /// Addresses assigned, each with its `version`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ips: Option<Vec<IpConfigV04>>,
    /// Routes installed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routes: Option<Vec<Route>>,
    /// DNS settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns: Option<Dns>,
}

/// The error object.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ErrorObject {
    /// The protocol version in use (SHOULD per spec; the reference skeleton omits it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cni_version: Option<String>,
    /// Error code: 1-99 well-known, 100+ plugin specific.
    pub code: u32,
    /// Short message.
    pub msg: String,
    /// Longer details.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<String>,
}

/// The VERSION result.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct VersionResult {
    /// The version given on input.
    pub cni_version: String,
    /// Every spec version the plugin supports.
    pub supported_versions: Vec<String>,
}

/// The CNI schemas as (file name, pretty JSON with a trailing newline).
pub fn schemas() -> Vec<(&'static str, String)> {
    let pretty = |v: schemars::Schema| {
        let mut s = serde_json::to_string_pretty(&v).expect("schemas serialise");
        s.push('\n');
        s
    };
    vec![
        (
            "cni-result-1.0.0.schema.json",
            pretty(schema_for!(Result100)),
        ),
        (
            "cni-result-0.4.0.schema.json",
            pretty(schema_for!(Result040)),
        ),
        ("cni-error.schema.json", pretty(schema_for!(ErrorObject))),
        (
            "cni-version.schema.json",
            pretty(schema_for!(VersionResult)),
        ),
    ]
}

fn validator(index: usize) -> &'static jsonschema::Validator {
    static VALIDATORS: OnceLock<Vec<jsonschema::Validator>> = OnceLock::new();
    let all = VALIDATORS.get_or_init(|| {
        schemas()
            .into_iter()
            .map(|(_, text)| {
                let schema: Value = serde_json::from_str(&text).expect("generated schema is JSON");
                jsonschema::validator_for(&schema).expect("generated schema compiles")
            })
            .collect()
    });
    &all[index]
}

fn violations(index: usize, value: &Value) -> Vec<String> {
    validator(index)
        .iter_errors(value)
        .map(|e| {
            let at = e.instance_path().to_string();
            format!("{}: {e}", if at.is_empty() { "/" } else { &at })
        })
        .collect()
}

/// Which result shape a version uses.
pub fn result_schema_for(version: &str) -> Option<&'static str> {
    match version {
        "1.0.0" | "1.1.0" => Some("1.0.0"),
        "0.3.0" | "0.3.1" | "0.4.0" => Some("0.4.0"),
        _ => None,
    }
}

/// Validates an ADD result against the schema of `version`, then the semantics: every
/// `ips[].interface` indexes an existing interface, gateways lie inside their subnet, the
/// container interface's `sandbox` is the netns path. `sandbox` may be `None` for results that
/// have no container interface (IPAM results are checked with [`validate_ipam_result`]).
pub fn validate_result(value: &Value, version: &str, sandbox: Option<&str>) -> Vec<String> {
    let mut problems = match result_schema_for(version) {
        Some("1.0.0") => violations(0, value),
        Some(_) => violations(1, value),
        None => vec![format!("no result schema for version {version}")],
    };
    if value.get("cniVersion").and_then(Value::as_str) != Some(version) {
        problems.push(format!(
            "cniVersion is {}, expected the request's {version}",
            value
                .get("cniVersion")
                .map_or("missing".to_owned(), Value::to_string)
        ));
    }
    let interfaces = value
        .get("interfaces")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for ip in value
        .get("ips")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(i) = ip.get("interface").and_then(Value::as_u64)
            && i as usize >= interfaces.len()
        {
            problems.push(format!(
                "ips[].interface {i} indexes no interface ({} listed)",
                interfaces.len()
            ));
        }
        if let Some(addr) = ip.get("address").and_then(Value::as_str) {
            let gw = ip.get("gateway").and_then(Value::as_str);
            problems.extend(address_problem(addr, gw));
            // 0.3.x/0.4.0 `version` must be the address's family.
            let family = match parse_cidr(addr) {
                Ok(IpNet::V4(_)) => Some("4"),
                Ok(IpNet::V6(_)) => Some("6"),
                Err(_) => None,
            };
            if let (Some(family), Some(v)) = (family, ip.get("version").and_then(Value::as_str))
                && v != family
            {
                problems.push(format!(
                    "ips[].version is \"{v}\" but the address {addr} is IPv{family}"
                ));
            }
        }
    }
    if let Some(ns) = sandbox {
        let has = interfaces
            .iter()
            .any(|i| i.get("sandbox").and_then(Value::as_str) == Some(ns));
        if !has && !interfaces.is_empty() {
            problems.push(format!("no interface has sandbox == CNI_NETNS ({ns})"));
        }
    }
    problems
}

/// Validates an IPAM (abbreviated) result: a result without `interfaces` and without
/// `ips[].interface`.
pub fn validate_ipam_result(value: &Value, version: &str) -> Vec<String> {
    let mut problems = validate_result(value, version, None);
    if value.get("interfaces").is_some() {
        problems.push("an IPAM result must not carry `interfaces`".to_owned());
    }
    if value
        .get("ips")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .any(|ip| ip.get("interface").is_some())
    {
        problems.push("an IPAM result must not carry `ips[].interface`".to_owned());
    }
    problems
}

/// Validates an error object.
pub fn validate_error(value: &Value) -> Vec<String> {
    violations(2, value)
}

/// Validates a VERSION result.
pub fn validate_version(value: &Value) -> Vec<String> {
    violations(3, value)
}

impl Result100 {
    /// The interfaces, or none when the result lists none.
    pub(crate) fn interface_list(&self) -> &[Interface] {
        self.interfaces.as_deref().unwrap_or_default()
    }

    /// The IP configurations, or none.
    pub(crate) fn ip_list(&self) -> &[IpConfig] {
        self.ips.as_deref().unwrap_or_default()
    }

    /// The routes, or none.
    pub(crate) fn route_list(&self) -> &[Route] {
        self.routes.as_deref().unwrap_or_default()
    }

    /// The address of the first IP configuration with its prefix, or `""`.
    pub(crate) fn first_address(&self) -> &str {
        self.ip_list().first().map_or("", |ip| ip.address.as_str())
    }

    /// The address of the first IP configuration without its prefix, or `""`.
    pub(crate) fn first_ip(&self) -> &str {
        self.first_address().split('/').next().unwrap_or_default()
    }

    /// The names of the interfaces, in result order.
    pub(crate) fn interface_names(&self) -> Vec<String> {
        self.interface_list()
            .iter()
            .filter(|i| !i.name.is_empty())
            .map(|i| i.name.clone())
            .collect()
    }
}

/// Reads an ADD result of any version into the 1.0.0 shape, leniently, so that a judge can
/// look at what a plugin said before (or without) deciding whether it said it validly: unknown
/// keys and `ips[].version` are ignored, a field of the wrong type reads as absent (a missing
/// string as `""`), and every array entry is kept so `ips[].interface` indexes stay right.
/// Validity is [`validate_result`]'s question.
pub(crate) fn read_result(value: &Value) -> Result100 {
    let text = |v: &Value, key: &str| v.get(key).and_then(Value::as_str).map(str::to_owned);
    let list = |key: &str| value.get(key).and_then(Value::as_array);
    Result100 {
        cni_version: text(value, "cniVersion").unwrap_or_default(),
        interfaces: list("interfaces").map(|a| {
            a.iter()
                .map(|i| Interface {
                    name: text(i, "name").unwrap_or_default(),
                    mac: text(i, "mac"),
                    sandbox: text(i, "sandbox"),
                })
                .collect()
        }),
        ips: list("ips").map(|a| {
            a.iter()
                .map(|ip| IpConfig {
                    interface: ip
                        .get("interface")
                        .and_then(Value::as_u64)
                        .and_then(|i| u32::try_from(i).ok()),
                    address: text(ip, "address").unwrap_or_default(),
                    gateway: text(ip, "gateway"),
                })
                .collect()
        }),
        routes: list("routes").map(|a| {
            a.iter()
                .map(|r| Route {
                    dst: text(r, "dst").unwrap_or_default(),
                    gw: text(r, "gw"),
                })
                .collect()
        }),
        dns: value.get("dns").filter(|d| d.is_object()).map(|d| {
            let strings = |key: &str| {
                d.get(key).and_then(Value::as_array).map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect()
                })
            };
            Dns {
                nameservers: strings("nameservers"),
                domain: text(d, "domain"),
                search: strings("search"),
                options: strings("options"),
            }
        }),
    }
}

/// What is wrong with an `ips[]` entry's CIDR `addr` and, when given, its gateway `gw`:
/// the address must parse (IPv4 or IPv6, prefix at most 32 or 128, never clamped), and the
/// gateway must be an address of the same family inside the subnet, and (IPv4 up to /30)
/// neither its network nor its broadcast address. IPv6 has no broadcast address and its
/// all-zero host address is the subnet-router anycast address, a router's own: allowed.
/// Every gateway placement problem says "is outside the subnet" (the fuzz judge leaves
/// those to the configuration).
fn address_problem(addr: &str, gw: Option<&str>) -> Option<String> {
    let net = match parse_cidr(addr) {
        Ok(net) => net,
        Err(e) => return Some(format!("ips[].address: {e}")),
    };
    let gw_text = gw?;
    let Ok(gw) = gw_text.parse::<IpAddr>() else {
        return Some(format!(
            "ips[].gateway `{gw_text}` is not an IPv4 or IPv6 address"
        ));
    };
    let outside = |why: &str| {
        Some(format!(
            "gateway {gw_text} is outside the subnet of {addr}{why}"
        ))
    };
    let v4_hosts = |v4: ipnet::Ipv4Net| v4.prefix_len() <= 30;
    match (net, gw) {
        (IpNet::V4(_), IpAddr::V6(_)) => outside(" (an IPv6 gateway for an IPv4 address)"),
        (IpNet::V6(_), IpAddr::V4(_)) => outside(" (an IPv4 gateway for an IPv6 address)"),
        _ if !net.contains(&gw) => outside(""),
        (IpNet::V4(v4), _) if v4_hosts(v4) && gw == v4.network() => {
            outside(" (it is the network address, not a host)")
        }
        (IpNet::V4(v4), _) if v4_hosts(v4) && gw == v4.broadcast() => {
            outside(" (it is the broadcast address, not a host)")
        }
        _ => None,
    }
}

/// Well-known error codes and their meaning (spec §5).
pub fn well_known_code(code: u64) -> Option<&'static str> {
    Some(match code {
        1 => "incompatible CNI version",
        2 => "unsupported field in network configuration",
        3 => "container unknown or does not exist",
        4 => "invalid necessary environment variables",
        5 => "I/O failure",
        6 => "failed to decode content",
        7 => "invalid network config",
        11 => "try again later",
        50 => "plugin not available",
        51 => "plugin not available, limited connectivity",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_good_1_0_0_result_validates() {
        let r = json!({"cniVersion":"1.0.0","interfaces":[{"name":"br"},{"name":"eth0","mac":"0e:00:00:00:00:01","sandbox":"/run/netns/x"}],
            "ips":[{"interface":1,"address":"198.18.30.2/24","gateway":"198.18.30.1"}],"routes":[{"dst":"0.0.0.0/0"}],"dns":{}});
        assert!(validate_result(&r, "1.0.0", Some("/run/netns/x")).is_empty());
    }

    #[test]
    fn version_field_rules_differ_between_0_4_0_and_1_0_0() {
        let with_version =
            json!({"cniVersion":"1.0.0","ips":[{"version":"4","address":"198.18.30.2/24"}]});
        assert!(!validate_result(&with_version, "1.0.0", None).is_empty());
        let old = json!({"cniVersion":"0.4.0","ips":[{"address":"198.18.30.2/24"}]});
        assert!(!validate_result(&old, "0.4.0", None).is_empty());
        let old_ok =
            json!({"cniVersion":"0.4.0","ips":[{"version":"4","address":"198.18.30.2/24"}]});
        assert!(validate_result(&old_ok, "0.4.0", None).is_empty());
    }

    #[test]
    fn semantic_errors_are_found() {
        let r = json!({"cniVersion":"1.0.0","interfaces":[{"name":"eth0","sandbox":"/run/netns/other"}],
            "ips":[{"interface":3,"address":"198.18.30.2/24","gateway":"198.18.31.1"}]});
        let p = validate_result(&r, "1.0.0", Some("/run/netns/x"));
        assert_eq!(p.len(), 3, "{p:?}");
        let ipam = json!({"cniVersion":"1.0.0","interfaces":[],"ips":[{"interface":0,"address":"198.18.30.2/24"}]});
        assert!(validate_ipam_result(&ipam, "1.0.0").len() >= 2);
    }

    #[test]
    fn results_of_any_version_read_leniently() {
        let r = read_result(
            &json!({"cniVersion":"0.4.0","interfaces":[{"name":"br","x":1},"junk",{"name":"eth0","sandbox":"/run/netns/x","mac":"0e:00:00:00:00:01"}],
            "ips":[{"version":"4","interface":2,"address":"198.18.30.2/24","gateway":"198.18.30.1"},{"address":7}],
            "routes":[{"dst":"0.0.0.0/0"}],"dns":{"nameservers":["198.18.39.53",1],"search":["a"]}}),
        );
        assert_eq!(r.cni_version, "0.4.0");
        assert_eq!(
            r.interface_list().len(),
            3,
            "entries of the wrong type keep their index"
        );
        assert_eq!(r.interface_names(), ["br", "eth0"]);
        assert_eq!(
            r.interface_list()[2].sandbox.as_deref(),
            Some("/run/netns/x")
        );
        assert_eq!(r.ip_list()[0].interface, Some(2));
        assert_eq!(r.first_address(), "198.18.30.2/24");
        assert_eq!(r.first_ip(), "198.18.30.2");
        assert_eq!(r.ip_list()[1].address, "");
        assert_eq!(r.route_list()[0].dst, "0.0.0.0/0");
        let dns = r.dns.expect("dns read");
        assert_eq!(dns.nameservers, Some(vec!["198.18.39.53".to_owned()]));
        assert_eq!(dns.domain, None);
        let empty = read_result(&json!({"cniVersion":"1.0.0"}));
        assert!(empty.interface_list().is_empty() && empty.ip_list().is_empty());
        assert_eq!(empty.first_ip(), "");
        assert_eq!(read_result(&json!("garbage")).cni_version, "");
    }

    /// Rows: address, gateway, `None` when valid or a part of the one problem expected.
    #[test]
    fn gateways_are_judged_in_their_subnet_for_both_families() {
        let rows: &[(&str, Option<&str>, Option<&str>)] = &[
            // IPv4: inside, outside, network and broadcast, point-to-point and host routes.
            ("198.18.30.2/24", Some("198.18.30.1"), None),
            ("198.18.30.2/24", Some("198.18.30.254"), None),
            ("198.18.30.2/24", None, None),
            (
                "198.18.30.2/24",
                Some("198.18.31.1"),
                Some("gateway 198.18.31.1 is outside the subnet of 198.18.30.2/24"),
            ),
            (
                "198.18.30.2/24",
                Some("198.18.30.0"),
                Some("(it is the network address, not a host)"),
            ),
            (
                "198.18.30.2/24",
                Some("198.18.30.255"),
                Some("(it is the broadcast address, not a host)"),
            ),
            (
                "198.18.30.2/30",
                Some("198.18.30.3"),
                Some("broadcast address"),
            ),
            ("198.18.30.2/31", Some("198.18.30.3"), None),
            (
                "198.18.30.2/31",
                Some("198.18.30.4"),
                Some("is outside the subnet"),
            ),
            ("198.18.30.2/32", Some("198.18.30.2"), None),
            (
                "198.18.30.2/32",
                Some("198.18.30.1"),
                Some("is outside the subnet"),
            ),
            ("0.0.0.0/0", Some("198.18.30.1"), None),
            // IPv6: inside, outside, the subnet-router anycast address is a router's own.
            ("2001:2:0:30::2/64", Some("2001:2:0:30::1"), None),
            (
                "2001:2:0:30::2/64",
                Some("2001:2:0:30:ffff:ffff:ffff:ffff"),
                None,
            ),
            ("2001:2:0:30::2/64", Some("2001:2:0:30::"), None),
            (
                "2001:2:0:30::2/64",
                Some("fe80::1"),
                Some("gateway fe80::1 is outside the subnet of 2001:2:0:30::2/64"),
            ),
            (
                "2001:2:0:30::2/64",
                Some("2001:2:0:31::1"),
                Some("is outside the subnet"),
            ),
            (
                "2001:2:0:30::2/128",
                Some("2001:2:0:30::1"),
                Some("is outside the subnet"),
            ),
            ("2001:2:0:30::2/127", Some("2001:2:0:30::3"), None),
            ("::/0", Some("2001:2::1"), None),
            // Mismatched families.
            (
                "198.18.30.2/24",
                Some("2001:2:0:30::1"),
                Some("(an IPv6 gateway for an IPv4 address)"),
            ),
            (
                "2001:2:0:30::2/64",
                Some("198.18.30.1"),
                Some("(an IPv4 gateway for an IPv6 address)"),
            ),
            (
                "::ffff:198.18.30.2/120",
                Some("198.18.30.1"),
                Some("an IPv4 gateway for an IPv6"),
            ),
            // Bad prefixes are errors naming the value, never clamped.
            (
                "198.18.30.2/33",
                Some("198.18.30.1"),
                Some("the prefix /33 of `198.18.30.2/33` is over 32"),
            ),
            (
                "198.18.30.2/40",
                None,
                Some("/40 of `198.18.30.2/40` is over 32"),
            ),
            (
                "2001:2:0:30::2/129",
                Some("2001:2:0:30::1"),
                Some("the prefix /129 of `2001:2:0:30::2/129` is over 128"),
            ),
            (
                "198.18.30.2/99999999999999999999999",
                None,
                Some("is over 32"),
            ),
            (
                "198.18.30.2/x",
                Some("198.18.30.1"),
                Some("prefix `/x` of `198.18.30.2/x` is not a decimal number"),
            ),
            (
                "198.18.30.2",
                Some("198.18.30.1"),
                Some("`198.18.30.2` has no /prefix"),
            ),
            (
                "198.18.30.300/24",
                None,
                Some("does not start with an IPv4 or IPv6 address"),
            ),
            ("", None, Some("has no /prefix")),
            // A gateway that is no address.
            (
                "198.18.30.2/24",
                Some("198.18.30"),
                Some("ips[].gateway `198.18.30` is not an IPv4 or IPv6 address"),
            ),
            (
                "2001:2:0:30::2/64",
                Some("2001:2:0:30::1%eth0"),
                Some("is not an IPv4 or IPv6 address"),
            ),
        ];
        for (addr, gw, want) in rows {
            let mut ip = json!({"address": addr});
            if let Some(gw) = gw {
                ip["gateway"] = json!(gw);
            }
            let r = json!({"cniVersion": "1.0.0", "ips": [ip]});
            let p = validate_result(&r, "1.0.0", None);
            match want {
                None => assert!(p.is_empty(), "{addr} {gw:?}: {p:?}"),
                Some(part) => {
                    assert_eq!(p.len(), 1, "{addr} {gw:?}: {p:?}");
                    assert!(p[0].contains(part), "{addr} {gw:?}: {p:?}");
                }
            }
        }
    }

    #[test]
    fn a_0_4_0_version_must_be_the_address_family() {
        let r = |v: &str, addr: &str| {
            let r = json!({"cniVersion": "0.4.0", "ips": [{"version": v, "address": addr}]});
            validate_result(&r, "0.4.0", None)
        };
        assert!(r("4", "198.18.30.2/24").is_empty());
        assert!(r("6", "2001:2:0:30::2/64").is_empty());
        let p = r("6", "198.18.30.2/24");
        assert_eq!(
            p,
            ["ips[].version is \"6\" but the address 198.18.30.2/24 is IPv4"]
        );
        assert_eq!(r("4", "2001:2:0:30::2/64").len(), 1);
    }

    #[test]
    fn error_objects_need_code_and_msg() {
        assert!(validate_error(&json!({"code":4,"msg":"x"})).is_empty());
        assert!(!validate_error(&json!({"code":"4","msg":"x"})).is_empty());
        assert!(!validate_error(&json!({"msg":"x"})).is_empty());
    }
}
