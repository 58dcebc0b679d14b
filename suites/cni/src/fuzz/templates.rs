//! What the fuzzer knows of each plugin: a valid configuration written from the plugin's
//! documented schema (containernetworking/plugins v1.1.1), the values worth trying for its
//! fields, and the keys that are pinned because they point outside the sandbox.
//!
//! Pinned keys keep the campaign inside the lab whatever the mutation: IPAM and tuning data
//! directories stay in the worker's private directory, the dhcp daemon socket is one that
//! does not exist, the firewall backend is iptables (never the host's firewalld over D-Bus),
//! tuning sysctls are namespaced keys only, `resolvConf` is never read, and IPAM types are
//! plugin names (never a path). Addresses come from 198.18.0.0/15 and 2001:2::/48.

use serde_json::{Value, json};

use super::case::Setup;
use super::case::{DIR, NETNS};

/// How a plugin is called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Creates the container interface, delegating to an IPAM plugin.
    Interface,
    /// An IPAM plugin called directly (its result is the abbreviated one).
    Ipam,
    /// Runs after an interface plugin: gets a prevResult.
    Chained,
    /// loopback: no IPAM, no prevResult.
    Loopback,
}

/// The plugins the campaign fuzzes, with their kind and what the worker sets up for them.
pub(crate) const PLUGINS: &[(&str, Kind, Setup)] = &[
    ("bandwidth", Kind::Chained, Setup::Chained),
    ("bridge", Kind::Interface, Setup::None),
    ("dhcp", Kind::Ipam, Setup::None),
    ("firewall", Kind::Chained, Setup::Chained),
    ("host-device", Kind::Interface, Setup::HostDevice),
    ("host-local", Kind::Ipam, Setup::None),
    ("ipvlan", Kind::Interface, Setup::Master),
    ("loopback", Kind::Loopback, Setup::None),
    ("macvlan", Kind::Interface, Setup::Master),
    ("portmap", Kind::Chained, Setup::Chained),
    ("ptp", Kind::Interface, Setup::None),
    ("sbr", Kind::Chained, Setup::Chained),
    ("static", Kind::Ipam, Setup::None),
    ("tuning", Kind::Chained, Setup::Chained),
    ("vlan", Kind::Interface, Setup::Master),
    ("vrf", Kind::Chained, Setup::Chained),
];

pub(crate) fn kind(plugin: &str) -> Kind {
    PLUGINS
        .iter()
        .find(|(p, _, _)| *p == plugin)
        .map_or(Kind::Interface, |(_, k, _)| *k)
}

pub(crate) fn setup(plugin: &str) -> Setup {
    PLUGINS
        .iter()
        .find(|(p, _, _)| *p == plugin)
        .map_or(Setup::None, |(_, _, s)| *s)
}

/// The versions the generator asks for: the ones Debian's 1.1.1 plugins list, and ones no
/// plugin of that release supports.
pub(crate) const VERSIONS: &[&str] = &["0.3.0", "0.3.1", "0.4.0", "1.0.0"];
pub(crate) const ODD_VERSIONS: &[&str] = &[
    "0.1.0",
    "0.2.0",
    "1.1.0",
    "2.0.0",
    "9.9.9",
    "",
    "1.0",
    "v1.0.0",
    "1.0.0.0",
    " 1.0.0",
    "1.0.0-rc1",
    "01.0.0",
    "0.4.0\u{0}",
];

/// host-local IPAM on a lab subnet, its data in the private directory.
pub(crate) fn host_local(subnet: u8, gateway: bool) -> Value {
    let mut ipam = json!({
        "type": "host-local",
        "subnet": format!("198.18.{subnet}.0/24"),
        "rangeStart": format!("198.18.{subnet}.10"),
        "rangeEnd": format!("198.18.{subnet}.200"),
        "routes": [{"dst": "0.0.0.0/0"}],
        "dataDir": format!("{DIR}/ipam"),
    });
    if gateway {
        ipam["gateway"] = format!("198.18.{subnet}.1").into();
    }
    ipam
}

/// A prevResult describing the interface the worker made for chained plugins.
pub(crate) fn prev_result(version: &str) -> Value {
    let v4 = version != "1.0.0";
    let mut ip = json!({"interface": 1, "address": "198.18.41.2/24", "gateway": "198.18.41.1"});
    if v4 {
        ip["version"] = "4".into();
    }
    json!({
        "cniVersion": version,
        "interfaces": [
            {"name": "nfvfzh0", "mac": "0e:00:00:00:41:01"},
            {"name": "eth0", "mac": "0e:00:00:00:41:02", "sandbox": NETNS},
        ],
        "ips": [ip],
        "routes": [{"dst": "0.0.0.0/0", "gw": "198.18.41.1"}],
        "dns": {"nameservers": ["198.18.41.53"]},
    })
}

/// A valid configuration of `plugin` at `version` (without prevResult).
pub(crate) fn config(plugin: &str, version: &str) -> Value {
    let mut c = json!({"cniVersion": version, "name": "nfvfuzz", "type": plugin});
    let extra = match plugin {
        "bridge" => json!({"bridge": "nfvfzbr0", "isGateway": true, "isDefaultGateway": false,
            "forceAddress": false, "ipMasq": false, "mtu": 1500, "hairpinMode": false,
            "promiscMode": false, "vlan": 0, "macspoofchk": false, "ipam": host_local(42, true)}),
        "macvlan" => {
            json!({"master": "nfvmm0", "mode": "bridge", "mtu": 1500, "ipam": host_local(43, true)})
        }
        "ipvlan" => {
            json!({"master": "nfvmm0", "mode": "l2", "mtu": 1500, "ipam": host_local(44, true)})
        }
        "vlan" => {
            json!({"master": "nfvmm0", "vlanId": 10, "mtu": 1500, "ipam": host_local(45, true)})
        }
        "ptp" => json!({"ipMasq": false, "mtu": 1500, "ipam": host_local(46, false)}),
        "host-device" => json!({"device": "nfvhd0", "ipam": host_local(47, true)}),
        "host-local" => json!({"ipam": host_local(48, true)}),
        "static" => json!({"ipam": {"type": "static",
            "addresses": [{"address": "198.18.49.2/24", "gateway": "198.18.49.1"}],
            "routes": [{"dst": "0.0.0.0/0", "gw": "198.18.49.1"}],
            "dns": {"nameservers": ["198.18.49.53"], "domain": "nfv.example", "search": ["nfv.example"]}}}),
        "dhcp" => {
            json!({"ipam": {"type": "dhcp", "daemonSocketPath": format!("{DIR}/no-dhcp.sock")}})
        }
        "tuning" => {
            json!({"mtu": 1400, "mac": "0e:00:00:00:41:42", "promisc": false, "allmulti": false,
            "txQLen": 1000, "sysctl": {"net.ipv4.conf.eth0.arp_notify": "1"}})
        }
        "portmap" => json!({"snat": true, "markMasqBit": 13, "masqAll": false,
            "capabilities": {"portMappings": true},
            "runtimeConfig": {"portMappings": [{"hostPort": 18080, "containerPort": 80, "protocol": "tcp"}]}}),
        "firewall" => json!({"backend": "iptables", "iptablesAdminChainName": "NFV-FZ-ADMIN"}),
        "bandwidth" => json!({"ingressRate": 8_000_000, "ingressBurst": 800_000,
            "egressRate": 4_000_000, "egressBurst": 400_000,
            "runtimeConfig": {"bandwidth": {"ingressRate": 8_000_000, "ingressBurst": 800_000}}}),
        "sbr" => json!({}),
        "vrf" => json!({"vrfname": "nfvfzvrf", "table": 1042}),
        _ => json!({}),
    };
    if let (Some(c), Some(extra)) = (c.as_object_mut(), extra.as_object()) {
        c.extend(extra.clone());
    }
    c
}

/// Values worth trying for a known key, beyond the generic mutations (wrong types, empty,
/// huge, unicode).
pub(crate) fn interesting(key: &str) -> Vec<Value> {
    let v = |items: &[Value]| items.to_vec();
    match key {
        "mtu" | "txQLen" | "vlan" | "vlanId" | "table" | "markMasqBit" | "hostPort"
        | "containerPort" | "interface" => v(&[
            json!(0),
            json!(-1),
            json!(1),
            json!(67),
            json!(4094),
            json!(4095),
            json!(65535),
            json!(65536),
            json!(2_147_483_647_i64),
            json!(4_294_967_296_i64),
            json!(9_223_372_036_854_775_807_i64),
            json!(1e300),
            json!(1.5),
        ]),
        "ingressRate" | "ingressBurst" | "egressRate" | "egressBurst" => v(&[
            json!(0),
            json!(1),
            json!(-1),
            json!(u64::MAX),
            json!(4_294_967_296_i64),
            json!(1e19),
        ]),
        "mode" => v(&[
            json!("bridge"),
            json!("private"),
            json!("vepa"),
            json!("passthru"),
            json!("source"),
            json!("l2"),
            json!("l3"),
            json!("l3s"),
            json!("BRIDGE"),
            json!("nope"),
        ]),
        "subnet" | "address" | "dst" => v(&[
            json!("198.18.50.0/24"),
            json!("198.18.50.0/31"),
            json!("198.18.50.0/32"),
            json!("198.18.50.0/33"),
            json!("198.18.50.300/24"),
            json!("198.18.50.0"),
            json!("2001:2:0:50::/64"),
            json!("2001:2:0:50::/128"),
            json!("/24"),
            json!("198.18.50.2/24/24"),
            json!("::/0"),
            json!("0.0.0.0/0"),
        ]),
        "gateway" | "gw" | "rangeStart" | "rangeEnd" | "hostIP" => v(&[
            json!("198.18.50.1"),
            json!("198.18.51.1"),
            json!("198.18.50.255"),
            json!("198.18.50.0"),
            json!("2001:2:0:50::1"),
            json!("198.18.50"),
            json!("1.2.3.4.5"),
        ]),
        "mac" | "hwaddr" => v(&[
            json!("0e:00:00:00:00:01"),
            json!("ff:ff:ff:ff:ff:ff"),
            json!("01:00:5e:00:00:01"),
            json!("00:00:00:00:00:00"),
            json!("0e:00:00:00:00"),
            json!("zz:zz:zz:zz:zz:zz"),
            json!("0e-00-00-00-00-01"),
            json!("0e:00:00:00:00:01:02:03"),
        ]),
        "protocol" => v(&[
            json!("tcp"),
            json!("udp"),
            json!("sctp"),
            json!("TCP"),
            json!("icmp"),
            json!(""),
        ]),
        "master" | "device" | "bridge" | "vrfname" => v(&[
            json!("nfvmm0"),
            json!("nfvhd0"),
            json!("nfvfzh0"),
            json!("lo"),
            json!("nfvnothere"),
            json!("abcdefghijklmnop"),
            json!("a b"),
            json!("a/b"),
            json!("."),
            json!(".."),
        ]),
        "type" => v(&[
            json!("host-local"),
            json!("static"),
            json!("nfvnoplugin"),
            json!("loopback"),
            json!("bridge"),
            json!("HOST-LOCAL"),
        ]),
        "cniVersion" => VERSIONS
            .iter()
            .chain(ODD_VERSIONS)
            .map(|s| json!(s))
            .chain([json!(1), json!(null), json!(["1.0.0"])])
            .collect(),
        _ => Vec::new(),
    }
}

/// Restores the keys that must never leave the sandbox; called after every mutation.
pub(crate) fn pin(plugin: &str, conf: &mut Value) {
    let Some(obj) = conf.as_object_mut() else {
        return;
    };
    match plugin {
        "tuning" => {
            obj.insert("dataDir".into(), format!("{DIR}/tuning").into());
            if let Some(sysctl) = obj.get_mut("sysctl").and_then(Value::as_object_mut) {
                // Only keys of the container's own namespace: a non-namespaced net sysctl
                // written from the container would change the host.
                let keys: Vec<String> = sysctl.keys().cloned().collect();
                for (i, k) in keys.into_iter().enumerate() {
                    if !SYSCTLS.contains(&k.as_str()) {
                        let v = sysctl.remove(&k).unwrap_or(Value::Null);
                        sysctl.insert(SYSCTLS[i % SYSCTLS.len()].to_owned(), v);
                    }
                }
            }
        }
        "firewall" => {
            obj.insert("backend".into(), "iptables".into());
        }
        _ => {}
    }
    obj.remove("resolvConf");
    if let Some(ipam) = obj.get_mut("ipam").and_then(Value::as_object_mut) {
        pin_ipam(ipam);
    }
}

fn pin_ipam(ipam: &mut serde_json::Map<String, Value>) {
    let safe = ipam
        .get("type")
        .and_then(Value::as_str)
        .is_some_and(|t| !t.contains('/') && !t.contains(".."));
    if !safe && ipam.contains_key("type") {
        ipam.insert("type".into(), "nfvnoplugin".into());
    }
    ipam.insert("dataDir".into(), format!("{DIR}/ipam").into());
    ipam.insert(
        "daemonSocketPath".into(),
        format!("{DIR}/no-dhcp.sock").into(),
    );
    ipam.remove("resolvConf");
}

/// Namespaced sysctls tuning may write in the container.
const SYSCTLS: &[&str] = &[
    "net.ipv4.conf.eth0.arp_notify",
    "net.ipv4.conf.eth0.rp_filter",
    "net.ipv4.conf.IFNAME.arp_ignore",
    "net.ipv6.conf.eth0.disable_ipv6",
    "net/ipv4/conf/eth0/forwarding",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_is_an_object_naming_its_plugin() {
        for (plugin, _, _) in PLUGINS {
            let c = config(plugin, "1.0.0");
            assert_eq!(c["type"], *plugin);
            assert_eq!(c["cniVersion"], "1.0.0");
        }
        assert!(prev_result("0.4.0")["ips"][0]["version"] == "4");
        assert!(prev_result("1.0.0")["ips"][0].get("version").is_none());
    }

    #[test]
    fn pinning_keeps_the_sandbox() {
        let mut c = json!({"type": "bridge", "resolvConf": "/etc/resolv.conf",
            "ipam": {"type": "../../bin/sh", "dataDir": "/var/lib/cni"}});
        pin("bridge", &mut c);
        assert_eq!(c["ipam"]["type"], "nfvnoplugin");
        assert_eq!(c["ipam"]["dataDir"], "@DIR@/ipam");
        assert!(c.get("resolvConf").is_none());
        let mut t =
            json!({"sysctl": {"net.core.rmem_max": "1", "net.ipv4.conf.eth0.rp_filter": "0"}});
        pin("tuning", &mut t);
        let keys: Vec<&String> = t["sysctl"].as_object().unwrap().keys().collect();
        assert!(
            keys.iter().all(|k| SYSCTLS.contains(&k.as_str())),
            "{keys:?}"
        );
        assert_eq!(t["dataDir"], "@DIR@/tuning");
        let mut f = json!({"backend": "firewalld"});
        pin("firewall", &mut f);
        assert_eq!(f["backend"], "iptables");
    }
}
