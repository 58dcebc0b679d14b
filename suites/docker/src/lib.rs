//! Docker networking, after libnetwork's container network model: the default networks and
//! the bridge, host, null and macvlan drivers, verified with probe containers through the
//! Engine API. The engine to verify on a developer machine comes from the lab crate.

#![warn(missing_docs)]

mod area;
mod checks;
pub mod engine;

pub use area::{DockerArea, DockerConfig, Engine, client, socket_need};
pub use checks::checks;
