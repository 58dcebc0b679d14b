//! Docker networking, after libnetwork's container network model: the default networks and
//! the bridge, host, null and macvlan drivers, verified with probe containers through the
//! Engine API; and the local lab (`nfvi-verify lab`) that provides a Docker engine to verify.

#![warn(missing_docs)]

mod checks;
pub mod engine;
pub mod lab;

pub use checks::checks;
