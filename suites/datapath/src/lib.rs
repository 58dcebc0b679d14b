//! Data path: bridge, macvlan (private, vepa, bridge, passthru) and ptp topologies built over
//! netlink in namespaces the harness creates, the connectivity each promises, and round-trip
//! latency measured with statistics sound enough to tell bridge from macvlan; in a run over
//! a fleet, the same statistics between two nodes over their own network
//! (`datapath.fleet.cross-node`).

#![warn(missing_docs)]

mod area;
mod checks;
mod cross_node;
mod latency;
pub mod nl;
pub mod ns;
pub mod paired;
mod reach;
pub mod topology;

pub use area::{DatapathArea, DatapathConfig, LatencySla, SLA_PATHS};
pub use checks::checks;
