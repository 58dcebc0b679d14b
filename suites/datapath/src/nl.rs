//! Link, address and route configuration over rtnetlink, inside a given namespace, on
//! nfvi-net: each batch runs on a dedicated thread that has entered the namespace, with its
//! own single-threaded runtime and netlink socket (a netlink socket belongs to the namespace
//! of the thread that opened it). Errors are rendered whole, for the data path's `String`
//! errors.

use std::net::{IpAddr, Ipv4Addr};

use nfvi_net::{MacVlanMode, NetlinkError, Rtnl};

use crate::ns::Netns;

fn render(e: NetlinkError) -> String {
    nfvi_net::chain(&e)
}

/// Runs a netlink batch inside `ns`.
pub fn within<T, F, Fut>(ns: &Netns, f: F) -> Result<T, String>
where
    T: Send + 'static,
    F: FnOnce(Rtnl) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    nfvi_net::within(&ns.path(), f).map_err(render)?
}

/// The index of a link by name.
pub async fn index(h: &Rtnl, name: &str) -> Result<u32, String> {
    h.index(name).await.map_err(render)
}

/// The MTU of a link.
pub async fn mtu(h: &Rtnl, name: &str) -> Result<u32, String> {
    h.mtu(name).await.map_err(render)
}

/// A veth pair `a` and `b`.
pub async fn veth(h: &Rtnl, a: &str, b: &str) -> Result<(), String> {
    h.add_veth(a, b).await.map_err(render)
}

/// A Linux bridge.
pub async fn bridge(h: &Rtnl, name: &str) -> Result<(), String> {
    h.add_bridge(name).await.map_err(render)
}

/// A macvlan sub-interface of `parent` in `mode`.
pub async fn macvlan(h: &Rtnl, name: &str, parent: &str, mode: MacVlanMode) -> Result<(), String> {
    h.add_macvlan(name, parent, mode).await.map_err(render)
}

/// Sets a link up.
pub async fn up(h: &Rtnl, name: &str) -> Result<(), String> {
    h.set_up(name).await.map_err(render)
}

/// Sets the MTU of a link.
pub async fn set_mtu(h: &Rtnl, name: &str, mtu: u32) -> Result<(), String> {
    h.set_mtu(name, mtu).await.map_err(render)
}

/// Enslaves `name` to bridge `master`.
pub async fn enslave(h: &Rtnl, name: &str, master: &str) -> Result<(), String> {
    h.set_master(name, master).await.map_err(render)
}

/// Moves `name` into namespace `to`.
pub async fn move_to(h: &Rtnl, name: &str, to: &Netns) -> Result<(), String> {
    h.set_netns(name, &to.path()).await.map_err(render)
}

/// Adds an IPv4 address to a link.
pub async fn addr(h: &Rtnl, name: &str, ip: Ipv4Addr, prefix: u8) -> Result<(), String> {
    h.add_address(name, IpAddr::V4(ip), prefix)
        .await
        .map_err(render)
}

/// A route to `dst/prefix` via `gw`.
pub async fn route(h: &Rtnl, dst: Ipv4Addr, prefix: u8, gw: Ipv4Addr) -> Result<(), String> {
    h.add_route_via(dst, prefix, gw).await.map_err(render)
}

/// A route to `dst/prefix` straight out of `dev` (for /32 host routes).
pub async fn route_dev(h: &Rtnl, dst: Ipv4Addr, prefix: u8, dev: &str) -> Result<(), String> {
    h.add_route_dev(dst, prefix, dev).await.map_err(render)
}

/// Turns hairpin mode on for bridge port `port` (frames may leave by the port they came in
/// on, as an 802.1Qbg reflective relay does for VEPA).
pub async fn hairpin(h: &Rtnl, port: &str) -> Result<(), String> {
    h.set_hairpin(port, true).await.map_err(render)
}

/// Waits until `name` reports operational state UP (a bridge does once a port forwards), so
/// that the first probes are not lost to a port still coming up.
pub async fn wait_oper_up(
    h: &Rtnl,
    name: &str,
    timeout: std::time::Duration,
) -> Result<(), String> {
    h.wait_oper_up(name, timeout).await.map_err(render)
}
