//! Data path: bridge, macvlan (private, vepa, bridge, passthru) and ptp topologies built over
//! netlink in namespaces the harness creates, the connectivity each promises, and round-trip
//! latency measured with statistics sound enough to tell bridge from macvlan.

#![warn(missing_docs)]

mod area;
mod checks;
mod latency;
pub mod nl;
pub mod ns;
pub mod topology;

pub use area::{DatapathArea, DatapathConfig, LatencySla, SLA_PATHS};
pub use checks::checks;
