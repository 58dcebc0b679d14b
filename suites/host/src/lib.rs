//! Host readiness of NFVI nodes: the node preparation the Kolla-Ansible and Kubernetes
//! install guides ask for, checked on the machine the harness runs on.
//!
//! Every check reads the kernel's own state (`/proc`, `/sys`, netlink through `ip`) rather
//! than configuration files, so it reports what is in force, not what was intended. The one
//! check family that changes anything, the link-type probes, does so in a throwaway network
//! namespace (`unshare --net`) that the kernel removes when the probe process exits.
//!
//! [`inventory::collect`] gathers the versions that go into every report.

#![warn(missing_docs)]

mod area;
mod checks;
#[doc(hidden)]
pub mod fuzzing;
pub mod inventory;
mod parse;
mod sriov;

pub use area::{HostArea, HostConfig, parse_kernel_version};
pub use checks::{checks, checks_with_root};
