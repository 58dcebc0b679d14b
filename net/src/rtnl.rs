//! rtnetlink inside a namespace: [`within`] (blocking) and [`within_async`] start a thread
//! that enters the namespace, opens a netlink socket there (it stays bound to that namespace)
//! and drives it on its own single-threaded runtime while the caller's batch runs; the
//! thread, socket and runtime are gone when the batch returns, so nothing keeps the namespace
//! alive afterwards. [`Rtnl`] offers the reads and writes the areas need, each error naming
//! the objects involved.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use futures_util::TryStreamExt;
use rtnetlink::packet_route::link::{IpVlanMode, LinkAttribute, LinkMessage, MacVlanMode, State};
use rtnetlink::{
    Handle, LinkBridge, LinkBridgePort, LinkIpVlan, LinkMacVlan, LinkUnspec, LinkVeth, LinkVlan,
    RouteMessageBuilder,
};

use crate::error::{NetlinkError, NetnsError};
use crate::state::{self, Address, Family, Link, Route};
use crate::thread;

/// A netlink (rtnetlink) connection bound to one namespace.
pub struct Rtnl {
    handle: Handle,
}

/// Runs `batch` with a connection inside the namespace at `path` and waits for it (a
/// blocking call: from async code use [`within_async`]).
pub fn within<T, F, Fut>(path: &Path, batch: F) -> Result<T, NetlinkError>
where
    T: Send + 'static,
    F: FnOnce(Rtnl) -> Fut + Send + 'static,
    Fut: Future<Output = T>,
{
    thread::run_in(path, move || within_current(batch))?
}

/// Runs `batch` with a connection inside the namespace at `path`; the calling task waits
/// without blocking its thread.
pub async fn within_async<T, F, Fut>(path: impl Into<PathBuf>, batch: F) -> Result<T, NetlinkError>
where
    T: Send + 'static,
    F: FnOnce(Rtnl) -> Fut + Send + 'static,
    Fut: Future<Output = T>,
{
    thread::in_netns(path, move || within_current(batch)).await?
}

/// Runs `batch` with a connection in the calling thread's namespace, on a runtime of its own.
/// For threads the caller owns (the setup of [`crate::create_with`], a namespace thread);
/// it panics on a thread that already runs an async runtime.
pub fn within_current<T, F, Fut>(batch: F) -> Result<T, NetlinkError>
where
    F: FnOnce(Rtnl) -> Fut,
    Fut: Future<Output = T>,
{
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(NetlinkError::Runtime)?;
    rt.block_on(async move {
        let (connection, handle, _) = rtnetlink::new_connection().map_err(NetlinkError::Socket)?;
        let driver = tokio::spawn(connection);
        let out = batch(Rtnl { handle }).await;
        driver.abort();
        Ok(out)
    })
}

fn request(what: impl Into<String>) -> impl FnOnce(rtnetlink::Error) -> NetlinkError {
    let what = what.into();
    move |source| NetlinkError::Request { what, source }
}

impl Rtnl {
    /// The rtnetlink handle, for requests this type does not wrap.
    pub fn handle(&self) -> &Handle {
        &self.handle
    }

    async fn link_message(&self, name: &str) -> Result<LinkMessage, NetlinkError> {
        let mut links = self
            .handle
            .link()
            .get()
            .match_name(name.to_owned())
            .execute();
        match links.try_next().await {
            Ok(Some(link)) => Ok(link),
            Ok(None) => Err(NetlinkError::NoLink(name.to_owned())),
            // The kernel answers a lookup of a missing name with ENODEV.
            Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code().abs() == 19 => {
                Err(NetlinkError::NoLink(name.to_owned()))
            }
            Err(e) => Err(request(format!("looking up {name}"))(e)),
        }
    }

    /// The ifindex of `name`.
    pub async fn index(&self, name: &str) -> Result<u32, NetlinkError> {
        Ok(self.link_message(name).await?.header.index)
    }

    /// The MTU of `name`.
    pub async fn mtu(&self, name: &str) -> Result<u32, NetlinkError> {
        self.link_message(name)
            .await?
            .attributes
            .iter()
            .find_map(|a| match a {
                LinkAttribute::Mtu(m) => Some(*m),
                _ => None,
            })
            .ok_or_else(|| NetlinkError::NoMtu(name.to_owned()))
    }

    /// Creates a link from a message built with rtnetlink's builders; `what` names it in
    /// errors.
    pub async fn add_link(&self, message: LinkMessage, what: &str) -> Result<(), NetlinkError> {
        self.handle
            .link()
            .add(message)
            .execute()
            .await
            .map_err(request(what))
    }

    /// A veth pair `a` and `b`, both down.
    pub async fn add_veth(&self, a: &str, b: &str) -> Result<(), NetlinkError> {
        self.add_link(LinkVeth::new(a, b).build(), &format!("veth {a}/{b}"))
            .await
    }

    /// A Linux bridge.
    pub async fn add_bridge(&self, name: &str) -> Result<(), NetlinkError> {
        self.add_link(LinkBridge::new(name).build(), &format!("bridge {name}"))
            .await
    }

    /// A macvlan sub-interface of `parent` in `mode`.
    pub async fn add_macvlan(
        &self,
        name: &str,
        parent: &str,
        mode: MacVlanMode,
    ) -> Result<(), NetlinkError> {
        let parent = self.index(parent).await?;
        self.add_link(
            LinkMacVlan::new(name, parent, mode).build(),
            &format!("macvlan {name}"),
        )
        .await
    }

    /// An ipvlan sub-interface of `parent` in `mode`.
    pub async fn add_ipvlan(
        &self,
        name: &str,
        parent: &str,
        mode: IpVlanMode,
    ) -> Result<(), NetlinkError> {
        let parent = self.index(parent).await?;
        self.add_link(
            LinkIpVlan::new(name, parent, mode).build(),
            &format!("ipvlan {name}"),
        )
        .await
    }

    /// An 802.1Q VLAN `id` on `parent`.
    pub async fn add_vlan(&self, name: &str, parent: &str, id: u16) -> Result<(), NetlinkError> {
        let parent = self.index(parent).await?;
        self.add_link(
            LinkVlan::new(name, parent, id).build(),
            &format!("vlan {name}"),
        )
        .await
    }

    /// Deletes the link `name`.
    pub async fn delete_link(&self, name: &str) -> Result<(), NetlinkError> {
        let i = self.index(name).await?;
        self.handle
            .link()
            .del(i)
            .execute()
            .await
            .map_err(request(format!("delete {name}")))
    }

    async fn set(
        &self,
        name: &str,
        what: &str,
        f: impl FnOnce(u32) -> LinkMessage,
    ) -> Result<(), NetlinkError> {
        let i = self.index(name).await?;
        self.handle
            .link()
            .set(f(i))
            .execute()
            .await
            .map_err(request(format!("{what} {name}")))
    }

    /// Sets `name` administratively up.
    pub async fn set_up(&self, name: &str) -> Result<(), NetlinkError> {
        self.set(name, "set up", |i| {
            LinkUnspec::new_with_index(i).up().build()
        })
        .await
    }

    /// Sets the MTU of `name`.
    pub async fn set_mtu(&self, name: &str, mtu: u32) -> Result<(), NetlinkError> {
        self.set(name, "set mtu of", |i| {
            LinkUnspec::new_with_index(i).mtu(mtu).build()
        })
        .await
    }

    /// Enslaves `name` to the bridge (or bond, VRF) `master`.
    pub async fn set_master(&self, name: &str, master: &str) -> Result<(), NetlinkError> {
        let m = self.index(master).await?;
        self.set(name, &format!("enslave to {master}:"), |i| {
            LinkUnspec::new_with_index(i).controller(m).build()
        })
        .await
    }

    /// Moves `name` into the namespace at `to`.
    pub async fn set_netns(&self, name: &str, to: &Path) -> Result<(), NetlinkError> {
        let file = std::fs::File::open(to).map_err(|source| NetnsError::Open {
            path: to.to_owned(),
            source,
        })?;
        self.set(name, &format!("move to {}:", to.display()), |i| {
            LinkUnspec::new_with_index(i)
                .setns_by_fd(file.as_raw_fd())
                .build()
        })
        .await
    }

    /// Turns hairpin mode on or off for bridge port `port` (frames may leave by the port they
    /// came in on, as an 802.1Qbg reflective relay does for VEPA).
    pub async fn set_hairpin(&self, port: &str, on: bool) -> Result<(), NetlinkError> {
        let i = self.index(port).await?;
        self.handle
            .link()
            .set_port(LinkBridgePort::new(i).hairpin(on).build())
            .execute()
            .await
            .map_err(request(format!("hairpin on {port}")))
    }

    /// Adds `ip/prefix` to `name`.
    pub async fn add_address(
        &self,
        name: &str,
        ip: IpAddr,
        prefix: u8,
    ) -> Result<(), NetlinkError> {
        let i = self.index(name).await?;
        self.handle
            .address()
            .add(i, ip, prefix)
            .execute()
            .await
            .map_err(request(format!("address {ip}/{prefix} on {name}")))
    }

    /// A route to `dst/prefix` via `gateway`.
    pub async fn add_route_via(
        &self,
        dst: Ipv4Addr,
        prefix: u8,
        gateway: Ipv4Addr,
    ) -> Result<(), NetlinkError> {
        let msg = RouteMessageBuilder::<Ipv4Addr>::new()
            .destination_prefix(dst, prefix)
            .gateway(gateway)
            .build();
        self.handle
            .route()
            .add(msg)
            .execute()
            .await
            .map_err(request(format!("route {dst}/{prefix} via {gateway}")))
    }

    /// A route to `dst/prefix` straight out of `dev` (for /32 host routes).
    pub async fn add_route_dev(
        &self,
        dst: Ipv4Addr,
        prefix: u8,
        dev: &str,
    ) -> Result<(), NetlinkError> {
        let i = self.index(dev).await?;
        let msg = RouteMessageBuilder::<Ipv4Addr>::new()
            .destination_prefix(dst, prefix)
            .output_interface(i)
            .build();
        self.handle
            .route()
            .add(msg)
            .execute()
            .await
            .map_err(request(format!("route {dst}/{prefix} dev {dev}")))
    }

    /// Waits until `name` reports operational state UP (a bridge does once a port forwards).
    pub async fn wait_oper_up(&self, name: &str, timeout: Duration) -> Result<(), NetlinkError> {
        let start = Instant::now();
        loop {
            let link = self.link_message(name).await?;
            if link
                .attributes
                .iter()
                .any(|a| matches!(a, LinkAttribute::OperState(State::Up)))
            {
                return Ok(());
            }
            if start.elapsed() > timeout {
                return Err(NetlinkError::NotUp {
                    name: name.to_owned(),
                    timeout,
                });
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Every link of the namespace, in the kernel's order.
    pub async fn links(&self) -> Result<Vec<Link>, NetlinkError> {
        let messages: Vec<LinkMessage> = self
            .handle
            .link()
            .get()
            .execute()
            .try_collect()
            .await
            .map_err(request("listing links"))?;
        let mut links: Vec<Link> = messages.iter().map(state::link_from).collect();
        state::resolve_masters(&mut links);
        Ok(links)
    }

    /// Every address of the namespace (IPv4 and IPv6), grouped by link as `ip addr` lists
    /// them.
    pub async fn addresses(&self) -> Result<Vec<Address>, NetlinkError> {
        let links = self.links().await?;
        let messages: Vec<_> = self
            .handle
            .address()
            .get()
            .execute()
            .try_collect()
            .await
            .map_err(request("listing addresses"))?;
        let raw: Vec<_> = messages.iter().filter_map(state::address_from).collect();
        Ok(state::addresses_by_link(&links, &raw))
    }

    /// The routes of the main table, as `ip route show` (`ip -6 route show`) lists them.
    pub async fn routes(&self, family: Family) -> Result<Vec<Route>, NetlinkError> {
        let links = self.links().await?;
        let filter = match family {
            Family::V4 => RouteMessageBuilder::<Ipv4Addr>::new().build(),
            Family::V6 => RouteMessageBuilder::<std::net::Ipv6Addr>::new().build(),
        };
        let messages: Vec<_> = self
            .handle
            .route()
            .get(filter)
            .execute()
            .try_collect()
            .await
            .map_err(request("listing routes"))?;
        let mut routes: Vec<Route> = messages
            .iter()
            .filter_map(|m| state::route_from(m, family))
            .collect();
        state::resolve_devs(&mut routes, &links);
        Ok(routes)
    }
}
