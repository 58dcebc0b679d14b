//! CNI conformance: the harness acts as the container runtime, executes the real CNI plugin
//! binaries against real network namespaces, and judges them by the CNI specification with
//! the kernel as the oracle.
//!
//! Every check is one assertion of the catalog (`CNI-ENV-*`, `CNI-CONF-*`, `CNI-VER-*`,
//! `CNI-ADD-*`, `CNI-IPAM-*`, `CNI-DEL-*`, `CNI-CHK-*`, `CNI-CHAIN-*`, `CNI-ERR-*`,
//! `CNI-CONC-*`) applied to one plugin, with the check ID `cni.<plugin>.<assertion>`.
//!
//! Isolation: each check gets its own "runtime" network namespace, in which the plugins run
//! (forked from a thread inside it), so every host-side object a plugin creates (bridges,
//! veths, iptables rules, qdiscs) lives there and disappears with it; container namespaces
//! are fresh per lifecycle; IPAM state goes to a private directory. Addresses come from the
//! target's lab range (198.18.0.0/15 by default). Teardown is registered before anything is
//! created. Namespaces and the kernel's state are handled in-process (nfvi-net), not by `ip`.

#![warn(missing_docs)]

mod area;
mod assertions;
mod catalog;
mod fuzz;
#[doc(hidden)]
pub mod fuzzing;
mod lab;
mod netstate;
mod nsthread;
pub mod result;
mod runtime;
pub mod spy;

pub use area::{CniArea, CniConfig, plugins_need};
/// Every check of the area: the assertion catalog's, then the fuzzing campaign's (suite
/// `cni-fuzz`, left out of the other suites).
pub fn checks() -> Vec<std::sync::Arc<dyn nfvi_harness::Check>> {
    let mut all = catalog::checks();
    all.extend(fuzz::checks());
    all
}
