//! Kernel state read back with `ip -j` (netlink, through iproute2): links, addresses and
//! routes of a namespace. This is the oracle plugin results are compared with.

use serde_json::Value;

/// A link as the kernel reports it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Link {
    pub(crate) name: String,
    pub(crate) index: u64,
    /// For veth and macvlan: the peer's or lower device's ifindex.
    pub(crate) link_index: Option<u64>,
    pub(crate) up: bool,
    pub(crate) mtu: u64,
    pub(crate) mac: String,
    pub(crate) kind: Option<String>,
    pub(crate) master: Option<String>,
    /// macvlan/ipvlan mode.
    pub(crate) mode: Option<String>,
}

pub(crate) fn parse_links(json: &str) -> Result<Vec<Link>, String> {
    let v: Value =
        serde_json::from_str(json).map_err(|e| format!("cannot parse `ip -j link`: {e}"))?;
    Ok(v.as_array()
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
        .collect())
}

/// (interface, "addr/prefix") pairs.
pub(crate) fn parse_addrs(json: &str) -> Result<Vec<(String, String)>, String> {
    let v: Value =
        serde_json::from_str(json).map_err(|e| format!("cannot parse `ip -j addr`: {e}"))?;
    Ok(v.as_array()
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
                    (
                        name.clone(),
                        format!(
                            "{}/{}",
                            a["local"].as_str().unwrap_or_default(),
                            a["prefixlen"]
                        ),
                    )
                })
        })
        .collect())
}

/// A route: destination ("default" or a CIDR), gateway and device.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RouteEntry {
    pub(crate) dst: String,
    pub(crate) gateway: Option<String>,
    pub(crate) dev: Option<String>,
}

pub(crate) fn parse_routes(json: &str) -> Result<Vec<RouteEntry>, String> {
    let v: Value =
        serde_json::from_str(json).map_err(|e| format!("cannot parse `ip -j route`: {e}"))?;
    Ok(v.as_array()
        .into_iter()
        .flatten()
        .map(|r| RouteEntry {
            dst: r["dst"].as_str().unwrap_or_default().to_owned(),
            gateway: r["gateway"].as_str().map(str::to_owned),
            dev: r["dev"].as_str().map(str::to_owned),
        })
        .collect())
}

/// Whether a route matches a result route `dst` (with `0.0.0.0/0` meaning `default`).
pub(crate) fn route_matches(entry: &RouteEntry, dst: &str) -> bool {
    entry.dst == dst || (matches!(dst, "0.0.0.0/0" | "::/0") && entry.dst == "default")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_addrs_routes() {
        let links = parse_links(r#"[{"ifindex":2,"link_index":3,"ifname":"eth0","flags":["BROADCAST","UP"],"mtu":1500,"address":"4e:9a:8d:c6:bc:b2","linkinfo":{"info_kind":"macvlan","info_data":{"mode":"bridge"}}}]"#).unwrap();
        assert_eq!(links[0].kind.as_deref(), Some("macvlan"));
        assert_eq!(links[0].mode.as_deref(), Some("bridge"));
        assert!(links[0].up);
        let addrs = parse_addrs(
            r#"[{"ifname":"eth0","addr_info":[{"local":"198.18.30.2","prefixlen":24}]}]"#,
        )
        .unwrap();
        assert_eq!(addrs, [("eth0".to_owned(), "198.18.30.2/24".to_owned())]);
        let routes =
            parse_routes(r#"[{"dst":"default","gateway":"198.18.30.1","dev":"eth0"}]"#).unwrap();
        assert!(route_matches(&routes[0], "0.0.0.0/0"));
    }
}
