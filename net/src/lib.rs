//! Linux network plumbing shared by the areas that build networks of their own (CNI, data
//! path): named network namespaces created and deleted the way `ip netns` does it but without
//! running `ip`, work and child processes run inside a namespace from a dedicated thread,
//! rtnetlink reads (links, addresses, routes) and the writes the areas need, and unique names
//! for everything the harness creates.
//!
//! Namespaces are thread-local state: `setns` and `unshare` change only the calling thread,
//! so everything here that enters or creates a namespace does it on a fresh OS thread that it
//! owns, never on a thread of the async runtime's pools. A netlink socket belongs to the
//! namespace of the thread that opened it; a child process starts in the namespace of the
//! thread that forked it.
//!
//! - [`netns`]: [`Netns`], [`create`], [`create_with`], [`delete`] and [`NetnsGuard`].
//! - [`thread`]: [`run_in`], [`spawn_in`], [`spawn_in_with`], [`in_netns`] and
//!   [`spawn_command_in`].
//! - [`rtnl`]: [`Rtnl`], a netlink connection inside a namespace, through [`within`] and
//!   [`within_async`].
//! - [`state`]: what the kernel reports, typed: [`Link`], [`Address`], [`Route`].
//! - [`names`]: [`unique`] names with the project's prefix.

#![warn(missing_docs)]

mod error;
pub mod names;
pub mod netns;
pub mod rtnl;
pub mod state;
mod sys;
pub mod thread;

pub use error::{NetlinkError, NetnsError, chain};
pub use names::unique;
pub use netns::{NETNS_DIR, Netns, NetnsGuard, create, create_with, create_with_async, delete};
pub use rtnl::{Rtnl, within, within_async, within_current};
pub use state::{Address, Family, Link, Route};
pub use thread::{in_netns, run_in, spawn_command_in, spawn_in, spawn_in_with};

/// The link types and modes of the messages [`Rtnl`] builds, for callers that pass them.
pub use rtnetlink::packet_route::link::{IpVlanMode, MacVlanMode};
