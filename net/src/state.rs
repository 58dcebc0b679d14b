//! What the kernel reports about a namespace, typed: links, addresses and routes, read over
//! rtnetlink (see [`crate::Rtnl::links`] and its siblings). The conversions from netlink
//! messages are pure functions, and the text forms follow iproute2's, so what a check prints
//! reads like `ip` output and compares with configuration written the same way.

use std::net::IpAddr;

use rtnetlink::packet_route::AddressFamily;
use rtnetlink::packet_route::address::{AddressAttribute, AddressMessage};
use rtnetlink::packet_route::link::{
    InfoData, InfoIpVlan, InfoIpVtap, InfoMacVlan, InfoMacVtap, IpVlanMode, LinkAttribute,
    LinkFlags, LinkInfo, LinkLayerType, LinkMessage, MacVlanMode,
};
use rtnetlink::packet_route::route::{
    RouteAddress, RouteAttribute, RouteFlags, RouteHeader, RouteMessage,
};

/// An IP version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// IPv4.
    V4,
    /// IPv6.
    V6,
}

/// A link (network interface) as the kernel reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// The ifindex.
    pub index: u32,
    /// The name.
    pub name: String,
    /// Administratively up (`IFF_UP`).
    pub up: bool,
    /// The MTU.
    pub mtu: u32,
    /// The link-layer address as iproute2 prints it (`4e:9a:8d:c6:bc:b2`); `None` when the
    /// link has none.
    pub mac: Option<String>,
    /// The link type (`veth`, `bridge`, `macvlan`...); `None` for links without one (`lo`,
    /// physical NICs).
    pub kind: Option<String>,
    /// The macvlan, macvtap, ipvlan or ipvtap mode (`bridge`, `l2`...).
    pub mode: Option<String>,
    /// `IFLA_LINK`: the veth peer's or the lower device's ifindex.
    pub link: Option<u32>,
    /// `IFLA_LINK_NETNSID`: set when that peer or lower device lives in another namespace
    /// (and [`Link::link`] is an index there).
    pub link_netnsid: Option<i32>,
    /// The controller's (bridge, bond, VRF) ifindex.
    pub master_index: Option<u32>,
    /// The controller's name, when it is in the same namespace (it always is).
    pub master: Option<String>,
}

impl Link {
    /// The peer's or lower device's ifindex when it lives in another namespace: what
    /// `ip -j link` reports as `link_index`.
    pub fn peer_index_elsewhere(&self) -> Option<u32> {
        self.link.filter(|i| *i != 0 && self.link_netnsid.is_some())
    }
}

/// Formats a link-layer address as iproute2's `ll_addr_n2a` does: dotted or colon IP for
/// tunnels, lowercase colon-separated hex otherwise.
pub fn format_ll_addr(bytes: &[u8], link_type: LinkLayerType) -> String {
    let tunnel4 = matches!(
        link_type,
        LinkLayerType::Tunnel | LinkLayerType::Sit | LinkLayerType::Ipgre
    );
    let tunnel6 = matches!(link_type, LinkLayerType::Tunnel6 | LinkLayerType::Ip6gre);
    if let (true, Ok(v4)) = (tunnel4, <[u8; 4]>::try_from(bytes)) {
        return std::net::Ipv4Addr::from(v4).to_string();
    }
    if let (true, Ok(v6)) = (tunnel6, <[u8; 16]>::try_from(bytes)) {
        return std::net::Ipv6Addr::from(v6).to_string();
    }
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn macvlan_mode(mode: &MacVlanMode) -> String {
    match mode {
        MacVlanMode::Private => "private".into(),
        MacVlanMode::Vepa => "vepa".into(),
        MacVlanMode::Bridge => "bridge".into(),
        MacVlanMode::Passthrough => "passthru".into(),
        MacVlanMode::Source => "source".into(),
        MacVlanMode::Other(v) => format!("{v}"),
        _ => "unknown".into(),
    }
}

fn ipvlan_mode(mode: &IpVlanMode) -> String {
    match mode {
        IpVlanMode::L2 => "l2".into(),
        IpVlanMode::L3 => "l3".into(),
        IpVlanMode::L3S => "l3s".into(),
        IpVlanMode::Other(v) => format!("{v}"),
        _ => "unknown".into(),
    }
}

fn info_mode(data: &InfoData) -> Option<String> {
    match data {
        InfoData::MacVlan(nlas) => nlas.iter().find_map(|n| match n {
            InfoMacVlan::Mode(m) => Some(macvlan_mode(m)),
            _ => None,
        }),
        InfoData::MacVtap(nlas) => nlas.iter().find_map(|n| match n {
            InfoMacVtap::Mode(m) => Some(macvlan_mode(m)),
            _ => None,
        }),
        InfoData::IpVlan(nlas) => nlas.iter().find_map(|n| match n {
            InfoIpVlan::Mode(m) => Some(ipvlan_mode(m)),
            _ => None,
        }),
        InfoData::IpVtap(nlas) => nlas.iter().find_map(|n| match n {
            InfoIpVtap::Mode(m) => Some(ipvlan_mode(m)),
            _ => None,
        }),
        _ => None,
    }
}

/// A link from an `RTM_NEWLINK` message; the controller's name is left to
/// [`resolve_masters`].
pub(crate) fn link_from(msg: &LinkMessage) -> Link {
    let mut link = Link {
        index: msg.header.index,
        name: String::new(),
        up: msg.header.flags.contains(LinkFlags::Up),
        mtu: 0,
        mac: None,
        kind: None,
        mode: None,
        link: None,
        link_netnsid: None,
        master_index: None,
        master: None,
    };
    for attr in &msg.attributes {
        match attr {
            LinkAttribute::IfName(n) => link.name.clone_from(n),
            LinkAttribute::Mtu(m) => link.mtu = *m,
            LinkAttribute::Address(a) => {
                link.mac = Some(format_ll_addr(a, msg.header.link_layer_type));
            }
            LinkAttribute::Link(i) => link.link = Some(*i),
            LinkAttribute::LinkNetNsId(id) => link.link_netnsid = Some(*id),
            LinkAttribute::Controller(i) => link.master_index = Some(*i),
            LinkAttribute::LinkInfo(infos) => {
                for info in infos {
                    match info {
                        LinkInfo::Kind(k) => link.kind = Some(k.to_string()),
                        LinkInfo::Data(d) => link.mode = info_mode(d),
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    link
}

/// Fills in the controllers' names (iproute2 prints `if<N>` for one it does not know).
pub(crate) fn resolve_masters(links: &mut [Link]) {
    let names: Vec<(u32, String)> = links.iter().map(|l| (l.index, l.name.clone())).collect();
    for l in links.iter_mut() {
        l.master = l.master_index.map(|m| {
            names
                .iter()
                .find(|(i, _)| *i == m)
                .map_or_else(|| format!("if{m}"), |(_, n)| n.clone())
        });
    }
}

/// An address on a link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    /// The link's ifindex.
    pub index: u32,
    /// The link's name.
    pub ifname: String,
    /// The local address (`IFA_LOCAL`, else `IFA_ADDRESS`, as iproute2 shows it).
    pub ip: IpAddr,
    /// The prefix length.
    pub prefix_len: u8,
}

impl Address {
    /// `198.18.30.2/24`.
    pub fn cidr(&self) -> String {
        format!("{}/{}", self.ip, self.prefix_len)
    }
}

/// (ifindex, local address, prefix length) of an `RTM_NEWADDR` message.
pub(crate) fn address_from(msg: &AddressMessage) -> Option<(u32, IpAddr, u8)> {
    let local = msg.attributes.iter().find_map(|a| match a {
        AddressAttribute::Local(ip) => Some(*ip),
        _ => None,
    });
    let address = msg.attributes.iter().find_map(|a| match a {
        AddressAttribute::Address(ip) => Some(*ip),
        _ => None,
    });
    local
        .or(address)
        .map(|ip| (msg.header.index, ip, msg.header.prefix_len))
}

/// Addresses in the order `ip addr` lists them: by link, in link order, then as dumped.
pub(crate) fn addresses_by_link(links: &[Link], addrs: &[(u32, IpAddr, u8)]) -> Vec<Address> {
    links
        .iter()
        .flat_map(|l| {
            addrs
                .iter()
                .filter(move |(i, _, _)| *i == l.index)
                .map(move |(i, ip, p)| Address {
                    index: *i,
                    ifname: l.name.clone(),
                    ip: *ip,
                    prefix_len: *p,
                })
        })
        .collect()
}

/// A route of the main table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The destination; `None` with prefix 0 is the default route.
    pub dst: Option<IpAddr>,
    /// The destination's prefix length.
    pub prefix_len: u8,
    /// The gateway.
    pub gateway: Option<IpAddr>,
    /// The output link's ifindex.
    pub oif: Option<u32>,
    /// The output link's name.
    pub dev: Option<String>,
}

impl Route {
    /// The destination as `ip route` prints it: `default`, an address for a host route,
    /// otherwise `address/prefix`.
    pub fn dst_text(&self) -> String {
        match self.dst {
            None if self.prefix_len == 0 => "default".into(),
            None => format!("0/{}", self.prefix_len),
            Some(ip) => {
                let host = if ip.is_ipv4() { 32 } else { 128 };
                if self.prefix_len == host {
                    ip.to_string()
                } else {
                    format!("{ip}/{}", self.prefix_len)
                }
            }
        }
    }
}

fn route_ip(a: &RouteAddress) -> Option<IpAddr> {
    match a {
        RouteAddress::Inet(v4) => Some(IpAddr::V4(*v4)),
        RouteAddress::Inet6(v6) => Some(IpAddr::V6(*v6)),
        _ => None,
    }
}

/// A route of the main table from an `RTM_NEWROUTE` message, as `ip route show` lists them:
/// `None` for routes of other tables and for cached clones.
pub(crate) fn route_from(msg: &RouteMessage, family: Family) -> Option<Route> {
    let want = match family {
        Family::V4 => AddressFamily::Inet,
        Family::V6 => AddressFamily::Inet6,
    };
    if msg.header.address_family != want || msg.header.flags.contains(RouteFlags::Cloned) {
        return None;
    }
    let table = msg
        .attributes
        .iter()
        .find_map(|a| match a {
            RouteAttribute::Table(t) => Some(*t),
            _ => None,
        })
        .unwrap_or(u32::from(msg.header.table));
    if table != u32::from(RouteHeader::RT_TABLE_MAIN) {
        return None;
    }
    let mut route = Route {
        dst: None,
        prefix_len: msg.header.destination_prefix_length,
        gateway: None,
        oif: None,
        dev: None,
    };
    for attr in &msg.attributes {
        match attr {
            RouteAttribute::Destination(a) => route.dst = route_ip(a),
            RouteAttribute::Gateway(a) => route.gateway = route_ip(a),
            RouteAttribute::Oif(i) => route.oif = Some(*i),
            _ => {}
        }
    }
    Some(route)
}

/// Fills in the output links' names (`if<N>` for an unknown one, as iproute2 prints it).
pub(crate) fn resolve_devs(routes: &mut [Route], links: &[Link]) {
    for r in routes.iter_mut() {
        r.dev = r.oif.map(|i| {
            links
                .iter()
                .find(|l| l.index == i)
                .map_or_else(|| format!("if{i}"), |l| l.name.clone())
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtnetlink::packet_route::link::InfoKind;
    use std::net::Ipv4Addr;

    fn link_msg(index: u32, name: &str, attrs: Vec<LinkAttribute>) -> LinkMessage {
        let mut m = LinkMessage::default();
        m.header.index = index;
        m.header.link_layer_type = LinkLayerType::Ether;
        m.header.flags = LinkFlags::Up | LinkFlags::Broadcast;
        m.attributes.push(LinkAttribute::IfName(name.into()));
        m.attributes.extend(attrs);
        m
    }

    #[test]
    fn links_read_like_ip_shows_them() {
        let mv = link_msg(
            2,
            "eth0",
            vec![
                LinkAttribute::Mtu(1500),
                LinkAttribute::Address(vec![0x4e, 0x9a, 0x8d, 0xc6, 0xbc, 0xb2]),
                LinkAttribute::Link(3),
                LinkAttribute::LinkNetNsId(0),
                LinkAttribute::LinkInfo(vec![
                    LinkInfo::Kind(InfoKind::MacVlan),
                    LinkInfo::Data(InfoData::MacVlan(vec![InfoMacVlan::Mode(
                        MacVlanMode::Bridge,
                    )])),
                ]),
            ],
        );
        let port = link_msg(
            4,
            "veth1",
            vec![
                LinkAttribute::Link(5),
                LinkAttribute::Controller(6),
                LinkAttribute::LinkInfo(vec![LinkInfo::Kind(InfoKind::Veth)]),
            ],
        );
        let br = link_msg(6, "nfvbr0", vec![]);
        let mut links: Vec<Link> = [mv, port, br].iter().map(link_from).collect();
        resolve_masters(&mut links);
        let l = &links[0];
        assert_eq!(l.mac.as_deref(), Some("4e:9a:8d:c6:bc:b2"));
        assert_eq!(l.kind.as_deref(), Some("macvlan"));
        assert_eq!(l.mode.as_deref(), Some("bridge"));
        assert!(l.up);
        assert_eq!(l.peer_index_elsewhere(), Some(3));
        // A peer in the same namespace is not `link_index` for ip, and has no netnsid.
        assert_eq!(links[1].peer_index_elsewhere(), None);
        assert_eq!(links[1].master.as_deref(), Some("nfvbr0"));
        assert_eq!(links[2].master, None);
    }

    #[test]
    fn tunnel_addresses_are_ips() {
        assert_eq!(
            format_ll_addr(&[198, 18, 0, 1], LinkLayerType::Ipgre),
            "198.18.0.1"
        );
        assert_eq!(
            format_ll_addr(&[0; 6], LinkLayerType::Loopback),
            "00:00:00:00:00:00"
        );
    }

    #[test]
    fn addresses_follow_link_order() {
        let links: Vec<Link> = [link_msg(1, "lo", vec![]), link_msg(2, "eth0", vec![])]
            .iter()
            .map(link_from)
            .collect();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let addrs = addresses_by_link(
            &links,
            &[
                (2, ip("198.18.30.2"), 24),
                (1, ip("127.0.0.1"), 8),
                (2, ip("fe80::1"), 64),
            ],
        );
        let got: Vec<(String, String)> =
            addrs.iter().map(|a| (a.ifname.clone(), a.cidr())).collect();
        assert_eq!(
            got,
            [
                ("lo".to_owned(), "127.0.0.1/8".to_owned()),
                ("eth0".to_owned(), "198.18.30.2/24".to_owned()),
                ("eth0".to_owned(), "fe80::1/64".to_owned())
            ]
        );
    }

    #[test]
    fn routes_of_the_main_table_print_like_ip() {
        let mut m = RouteMessage::default();
        m.header.address_family = AddressFamily::Inet;
        m.header.table = RouteHeader::RT_TABLE_MAIN;
        m.attributes
            .push(RouteAttribute::Gateway(RouteAddress::Inet(Ipv4Addr::new(
                198, 18, 30, 1,
            ))));
        m.attributes.push(RouteAttribute::Oif(2));
        let default = route_from(&m, Family::V4).unwrap();
        assert_eq!(default.dst_text(), "default");
        let mut host = m.clone();
        host.header.destination_prefix_length = 32;
        host.attributes
            .push(RouteAttribute::Destination(RouteAddress::Inet(
                Ipv4Addr::new(198, 18, 32, 2),
            )));
        let mut routes = vec![default, route_from(&host, Family::V4).unwrap()];
        assert_eq!(routes[1].dst_text(), "198.18.32.2");
        resolve_devs(&mut routes, &[link_from(&link_msg(2, "eth0", vec![]))]);
        assert_eq!(routes[0].dev.as_deref(), Some("eth0"));
        let mut local = m.clone();
        local.header.table = 255;
        assert_eq!(route_from(&local, Family::V4), None);
        assert_eq!(route_from(&m, Family::V6), None);
    }
}
