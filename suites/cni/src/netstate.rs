//! Kernel state read back over netlink (nfvi-net): links, addresses and routes of a
//! namespace, in the shapes and text forms `ip -j` gives them (which is what the lab read
//! before, and what results and configurations are written in). This is the oracle plugin
//! results are compared with.

/// A link as the kernel reports it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Link {
    pub(crate) name: String,
    pub(crate) index: u64,
    /// For veth and macvlan: the peer's or lower device's ifindex, when that device is in
    /// another namespace (`ip -j link`'s `link_index`).
    pub(crate) link_index: Option<u64>,
    pub(crate) up: bool,
    pub(crate) mtu: u64,
    pub(crate) mac: String,
    pub(crate) kind: Option<String>,
    pub(crate) master: Option<String>,
    /// macvlan/ipvlan mode.
    pub(crate) mode: Option<String>,
}

/// The lab's view of links read over netlink.
pub(crate) fn links(links: Vec<nfvi_net::Link>) -> Vec<Link> {
    links
        .into_iter()
        .map(|l| Link {
            index: u64::from(l.index),
            link_index: l.peer_index_elsewhere().map(u64::from),
            up: l.up,
            mtu: u64::from(l.mtu),
            mac: l.mac.unwrap_or_default(),
            kind: l.kind,
            master: l.master,
            mode: l.mode,
            name: l.name,
        })
        .collect()
}

/// (interface, "addr/prefix") pairs.
pub(crate) fn addrs(addrs: Vec<nfvi_net::Address>) -> Vec<(String, String)> {
    addrs
        .into_iter()
        .map(|a| {
            let cidr = a.cidr();
            (a.ifname, cidr)
        })
        .collect()
}

/// A route: destination ("default" or a CIDR), gateway and device.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RouteEntry {
    pub(crate) dst: String,
    pub(crate) gateway: Option<String>,
    pub(crate) dev: Option<String>,
}

/// The lab's view of routes read over netlink.
pub(crate) fn routes(routes: Vec<nfvi_net::Route>) -> Vec<RouteEntry> {
    routes
        .into_iter()
        .map(|r| RouteEntry {
            dst: r.dst_text(),
            gateway: r.gateway.map(|g| g.to_string()),
            dev: r.dev,
        })
        .collect()
}

/// Whether a route matches a result route `dst` (with `0.0.0.0/0` meaning `default`).
pub(crate) fn route_matches(entry: &RouteEntry, dst: &str) -> bool {
    entry.dst == dst || (matches!(dst, "0.0.0.0/0" | "::/0") && entry.dst == "default")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn netlink_links_read_as_ip_showed_them() {
        let l = nfvi_net::Link {
            index: 2,
            name: "eth0".into(),
            up: true,
            mtu: 1500,
            mac: Some("4e:9a:8d:c6:bc:b2".into()),
            kind: Some("macvlan".into()),
            mode: Some("bridge".into()),
            link: Some(3),
            link_netnsid: Some(0),
            master_index: None,
            master: None,
        };
        let same_ns = nfvi_net::Link {
            link_netnsid: None,
            mac: None,
            ..l.clone()
        };
        let got = links(vec![l, same_ns]);
        assert_eq!(got[0].link_index, Some(3));
        assert_eq!(got[0].mode.as_deref(), Some("bridge"));
        assert_eq!(got[1].link_index, None, "a peer in the same namespace");
        assert_eq!(got[1].mac, "");
        let r = routes(vec![nfvi_net::Route {
            dst: None,
            prefix_len: 0,
            gateway: Some("198.18.30.1".parse().unwrap()),
            oif: Some(2),
            dev: Some("eth0".into()),
        }]);
        assert!(route_matches(&r[0], "0.0.0.0/0"));
        assert_eq!(r[0].gateway.as_deref(), Some("198.18.30.1"));
    }
}

/// The netlink reading against `ip -j` (iproute2, what the lab used before) on namespaces
/// wired like the lab's: they must agree field for field, in order. Needs root and `ip`.
#[cfg(test)]
mod against_iproute2 {
    use super::*;
    use serde_json::Value;
    use std::net::{IpAddr, Ipv4Addr};

    fn parse_links(json: &str) -> Vec<Link> {
        let v: Value = serde_json::from_str(json).unwrap();
        v.as_array()
            .into_iter()
            .flatten()
            .map(|l| Link {
                name: l["ifname"].as_str().unwrap_or_default().to_owned(),
                index: l["ifindex"].as_u64().unwrap_or_default(),
                link_index: l["link_index"].as_u64(),
                up: l["flags"]
                    .as_array()
                    .is_some_and(|f| f.iter().any(|x| x == "UP")),
                mtu: l["mtu"].as_u64().unwrap_or_default(),
                mac: l["address"].as_str().unwrap_or_default().to_owned(),
                kind: l["linkinfo"]["info_kind"].as_str().map(str::to_owned),
                master: l["master"].as_str().map(str::to_owned),
                mode: l["linkinfo"]["info_data"]["mode"]
                    .as_str()
                    .map(str::to_owned),
            })
            .collect()
    }

    fn parse_addrs(json: &str) -> Vec<(String, String)> {
        let v: Value = serde_json::from_str(json).unwrap();
        v.as_array()
            .into_iter()
            .flatten()
            .flat_map(|l| {
                let name = l["ifname"].as_str().unwrap_or_default().to_owned();
                l["addr_info"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                    .into_iter()
                    .map(move |a| {
                        let local = a["local"].as_str().unwrap_or_default();
                        (name.clone(), format!("{local}/{}", a["prefixlen"]))
                    })
            })
            .collect()
    }

    fn parse_routes(json: &str) -> Vec<RouteEntry> {
        let v: Value = serde_json::from_str(json).unwrap();
        v.as_array()
            .into_iter()
            .flatten()
            .map(|r| RouteEntry {
                dst: r["dst"].as_str().unwrap_or_default().to_owned(),
                gateway: r["gateway"].as_str().map(str::to_owned),
                dev: r["dev"].as_str().map(str::to_owned),
            })
            .collect()
    }

    fn ip(ns: &str, args: &[&str]) -> String {
        let out = std::process::Command::new("ip")
            .args(["-n", ns, "-j"])
            .args(args)
            .output()
            .expect("ip runs");
        assert!(
            out.status.success(),
            "ip {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn prerequisites() -> bool {
        let root = nfvi_net::run_in(std::path::Path::new("/proc/self/ns/net"), || ()).is_ok();
        let ip = std::process::Command::new("ip").arg("-V").output().is_ok();
        if root && ip {
            return true;
        }
        assert!(
            std::env::var_os("CI").is_none(),
            "prerequisite missing under CI: root ({root}) and iproute2 ({ip})"
        );
        eprintln!("SKIPPED: needs root ({root}) and iproute2 ({ip})");
        false
    }

    /// A namespace (prefix `nfvnst`) without automatic IPv6 link-local addresses, which the
    /// kernel adds when a carrier comes up, in the background, and would make two reads differ.
    fn namespace() -> nfvi_net::NetnsGuard {
        let (ns, ()) = nfvi_net::create_with(&nfvi_net::unique("nfvnst-"), || {
            std::fs::write("/proc/sys/net/ipv6/conf/default/addr_gen_mode", "1").unwrap();
        })
        .unwrap();
        nfvi_net::NetnsGuard::new(ns)
    }

    #[test]
    fn links_addresses_and_routes_agree_with_ip() {
        if !prerequisites() {
            return;
        }
        let (rt, pod) = (namespace(), namespace());
        let pod_path = pod.path().to_owned();
        nfvi_net::within(rt.path(), move |h: nfvi_net::Rtnl| async move {
            h.set_up("lo").await?;
            // A bridge with a veth port, the other end in the pod (as the bridge plugin).
            h.add_bridge("nfvbr0").await?;
            h.add_veth("nfvveth0", "eth0").await?;
            h.set_master("nfvveth0", "nfvbr0").await?;
            h.set_netns("eth0", &pod_path).await?;
            h.set_up("nfvveth0").await?;
            h.set_up("nfvbr0").await?;
            h.add_address("nfvbr0", IpAddr::V4(Ipv4Addr::new(198, 18, 30, 1)), 24)
                .await?;
            // A macvlan whose master stays here, moved into the pod (as the macvlan plugin).
            h.add_veth("nfvmm0", "nfvmm1").await?;
            h.set_up("nfvmm0").await?;
            h.add_macvlan("net1", "nfvmm0", nfvi_net::MacVlanMode::Bridge)
                .await?;
            h.set_netns("net1", &pod_path).await?;
            h.add_route_dev(Ipv4Addr::new(198, 18, 32, 2), 32, "nfvveth0")
                .await
        })
        .unwrap()
        .unwrap();
        nfvi_net::within(pod.path(), |h: nfvi_net::Rtnl| async move {
            h.set_up("eth0").await?;
            h.set_up("net1").await?;
            h.set_mtu("net1", 1400).await?;
            h.add_address("eth0", IpAddr::V4(Ipv4Addr::new(198, 18, 30, 2)), 24)
                .await?;
            h.add_address("eth0", "fd00:198:18::2".parse().unwrap(), 64)
                .await?;
            h.add_address("net1", IpAddr::V4(Ipv4Addr::new(198, 18, 31, 2)), 24)
                .await?;
            h.add_route_via(Ipv4Addr::UNSPECIFIED, 0, Ipv4Addr::new(198, 18, 30, 1))
                .await
        })
        .unwrap()
        .unwrap();
        for ns in [&rt, &pod] {
            let (l, a, r) = nfvi_net::within(ns.path(), |h: nfvi_net::Rtnl| async move {
                Ok::<_, nfvi_net::NetlinkError>((
                    h.links().await?,
                    h.addresses().await?,
                    h.routes(nfvi_net::Family::V4).await?,
                ))
            })
            .unwrap()
            .unwrap();
            let name = ns.name();
            assert_eq!(
                links(l),
                parse_links(&ip(name, &["-d", "link", "show"])),
                "{name}"
            );
            assert_eq!(
                addrs(a),
                parse_addrs(&ip(name, &["addr", "show"])),
                "{name}"
            );
            assert_eq!(
                routes(r),
                parse_routes(&ip(name, &["route", "show"])),
                "{name}"
            );
        }
        // What the assertions rely on, spelled out.
        let l = nfvi_net::within(
            pod.path(),
            |h: nfvi_net::Rtnl| async move { h.links().await },
        )
        .unwrap()
        .unwrap();
        let pod_links = links(l);
        let eth0 = pod_links.iter().find(|l| l.name == "eth0").unwrap();
        let net1 = pod_links.iter().find(|l| l.name == "net1").unwrap();
        assert!(eth0.link_index.is_some() && net1.link_index.is_some());
        assert_eq!((net1.mode.as_deref(), net1.mtu), (Some("bridge"), 1400));
    }
}
