//! Link, address and route configuration over rtnetlink, inside a given namespace: each
//! batch runs on a dedicated thread that has entered the namespace, with its own
//! single-threaded runtime and netlink socket (a netlink socket belongs to the namespace of
//! the thread that opened it).

use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::AsRawFd;

use futures_util::TryStreamExt;
use rtnetlink::packet_route::link::{LinkAttribute, MacVlanMode};
use rtnetlink::{Handle, LinkBridge, LinkMacVlan, LinkUnspec, LinkVeth, RouteMessageBuilder};

use crate::ns::{self, Netns};

/// Runs a netlink batch inside `ns`.
pub fn within<T, F, Fut>(ns: &Netns, f: F) -> Result<T, String>
where
    T: Send + 'static,
    F: FnOnce(Handle) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    ns::run_in(&ns.path(), move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        rt.block_on(async move {
            let (conn, handle, _) =
                rtnetlink::new_connection().map_err(|e| format!("netlink socket: {e}"))?;
            tokio::spawn(conn);
            f(handle).await
        })
    })
}

fn err(what: &str, e: rtnetlink::Error) -> String {
    format!("{what}: {e}")
}

/// The index of a link by name.
pub async fn index(h: &Handle, name: &str) -> Result<u32, String> {
    let mut links = h.link().get().match_name(name.to_owned()).execute();
    match links.try_next().await {
        Ok(Some(link)) => Ok(link.header.index),
        Ok(None) => Err(format!("no link {name}")),
        Err(e) => Err(err(&format!("looking up {name}"), e)),
    }
}

/// The MTU of a link.
pub async fn mtu(h: &Handle, name: &str) -> Result<u32, String> {
    let mut links = h.link().get().match_name(name.to_owned()).execute();
    let link = links
        .try_next()
        .await
        .map_err(|e| err(name, e))?
        .ok_or_else(|| format!("no link {name}"))?;
    link.attributes
        .iter()
        .find_map(|a| {
            if let LinkAttribute::Mtu(m) = a {
                Some(*m)
            } else {
                None
            }
        })
        .ok_or_else(|| format!("{name} reports no MTU"))
}

/// A veth pair `a` and `b`.
pub async fn veth(h: &Handle, a: &str, b: &str) -> Result<(), String> {
    h.link()
        .add(LinkVeth::new(a, b).build())
        .execute()
        .await
        .map_err(|e| err(&format!("veth {a}/{b}"), e))
}

/// A Linux bridge.
pub async fn bridge(h: &Handle, name: &str) -> Result<(), String> {
    h.link()
        .add(LinkBridge::new(name).build())
        .execute()
        .await
        .map_err(|e| err(&format!("bridge {name}"), e))
}

/// A macvlan sub-interface of `parent` in `mode`.
pub async fn macvlan(
    h: &Handle,
    name: &str,
    parent: &str,
    mode: MacVlanMode,
) -> Result<(), String> {
    let parent = index(h, parent).await?;
    h.link()
        .add(LinkMacVlan::new(name, parent, mode).build())
        .execute()
        .await
        .map_err(|e| err(&format!("macvlan {name}"), e))
}

/// Sets a link up.
pub async fn up(h: &Handle, name: &str) -> Result<(), String> {
    let i = index(h, name).await?;
    h.link()
        .set(LinkUnspec::new_with_index(i).up().build())
        .execute()
        .await
        .map_err(|e| err(&format!("set {name} up"), e))
}

/// Sets the MTU of a link.
pub async fn set_mtu(h: &Handle, name: &str, mtu: u32) -> Result<(), String> {
    let i = index(h, name).await?;
    h.link()
        .set(LinkUnspec::new_with_index(i).mtu(mtu).build())
        .execute()
        .await
        .map_err(|e| err(&format!("set {name} mtu"), e))
}

/// Enslaves `name` to bridge `master`.
pub async fn enslave(h: &Handle, name: &str, master: &str) -> Result<(), String> {
    let (i, m) = (index(h, name).await?, index(h, master).await?);
    h.link()
        .set(LinkUnspec::new_with_index(i).controller(m).build())
        .execute()
        .await
        .map_err(|e| err(&format!("enslave {name} to {master}"), e))
}

/// Moves `name` into namespace `to`.
pub async fn move_to(h: &Handle, name: &str, to: &Netns) -> Result<(), String> {
    let i = index(h, name).await?;
    let file = std::fs::File::open(to.path())
        .map_err(|e| format!("cannot open {}: {e}", to.path().display()))?;
    h.link()
        .set(
            LinkUnspec::new_with_index(i)
                .setns_by_fd(file.as_raw_fd())
                .build(),
        )
        .execute()
        .await
        .map_err(|e| err(&format!("move {name} to {}", to.name), e))
}

/// Adds an IPv4 address to a link.
pub async fn addr(h: &Handle, name: &str, ip: Ipv4Addr, prefix: u8) -> Result<(), String> {
    let i = index(h, name).await?;
    h.address()
        .add(i, IpAddr::V4(ip), prefix)
        .execute()
        .await
        .map_err(|e| err(&format!("address {ip}/{prefix} on {name}"), e))
}

/// A route to `dst/prefix` via `gw`.
pub async fn route(h: &Handle, dst: Ipv4Addr, prefix: u8, gw: Ipv4Addr) -> Result<(), String> {
    let msg = RouteMessageBuilder::<Ipv4Addr>::new()
        .destination_prefix(dst, prefix)
        .gateway(gw)
        .build();
    h.route()
        .add(msg)
        .execute()
        .await
        .map_err(|e| err(&format!("route {dst}/{prefix} via {gw}"), e))
}

/// A route to `dst/prefix` straight out of `dev` (for /32 host routes).
pub async fn route_dev(h: &Handle, dst: Ipv4Addr, prefix: u8, dev: &str) -> Result<(), String> {
    let i = index(h, dev).await?;
    let msg = RouteMessageBuilder::<Ipv4Addr>::new()
        .destination_prefix(dst, prefix)
        .output_interface(i)
        .build();
    h.route()
        .add(msg)
        .execute()
        .await
        .map_err(|e| err(&format!("route {dst}/{prefix} dev {dev}"), e))
}

/// Turns hairpin mode on for bridge port `port` (frames may leave by the port they came in
/// on, as an 802.1Qbg reflective relay does for VEPA).
pub async fn hairpin(h: &Handle, port: &str) -> Result<(), String> {
    let i = index(h, port).await?;
    h.link()
        .set_port(rtnetlink::LinkBridgePort::new(i).hairpin(true).build())
        .execute()
        .await
        .map_err(|e| err(&format!("hairpin on {port}"), e))
}

/// Waits until `name` reports operational state UP (a bridge does once a port forwards), so
/// that the first probes are not lost to a port still coming up.
pub async fn wait_oper_up(
    h: &Handle,
    name: &str,
    timeout: std::time::Duration,
) -> Result<(), String> {
    use rtnetlink::packet_route::link::State;
    let start = std::time::Instant::now();
    loop {
        let mut links = h.link().get().match_name(name.to_owned()).execute();
        let link = links
            .try_next()
            .await
            .map_err(|e| err(name, e))?
            .ok_or_else(|| format!("no link {name}"))?;
        let up = link
            .attributes
            .iter()
            .any(|a| matches!(a, LinkAttribute::OperState(State::Up)));
        if up {
            return Ok(());
        }
        if start.elapsed() > timeout {
            return Err(format!("{name} did not come up within {timeout:?}"));
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}
