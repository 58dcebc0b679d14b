//! Verifies every node of a multi-node NFVI from a jump host.
//!
//! - [`inventory`]: Ansible INI inventories (Kolla-Ansible's `multinode`), with host ranges,
//!   `:children`, `:vars` and the `ansible_*` connection variables.
//! - [`ssh`]: [`SshTransport`], which runs the node agent (`nfvi-verify node`) on each node
//!   through the system OpenSSH client, one master connection per node, host keys checked
//!   strictly against known_hosts.
//! - [`FleetArea`]: the `[fleet]` table and flags, the transport it offers the run, and the
//!   checks that compare the nodes of a role (kernel, packages).

#![warn(missing_docs)]

pub mod area;
pub mod checks;
pub mod inventory;
pub mod ssh;

pub use area::{FleetArea, FleetConfig};
pub use ssh::{AgentSource, SshOptions, SshTransport};
