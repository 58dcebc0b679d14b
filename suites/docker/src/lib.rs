//! Docker networking, after libnetwork's container network model: the default networks and
//! the bridge, host, null and macvlan drivers, verified with probe containers through the
//! Engine API, against any engine that serves it (Docker, Podman's compatible service). The
//! probes run from the harness's own thread inside the containers' network namespaces, so
//! they depend neither on the image nor on the capabilities the engine grants. The engine to
//! verify on a developer machine comes from the lab crate.

#![warn(missing_docs)]

mod area;
mod bodies;
mod checks;
pub mod clean;
pub mod engine;
#[doc(hidden)]
pub mod fuzzing;
pub mod identity;
pub mod judge;
pub mod probe;
pub mod raw;

pub use area::{DockerArea, DockerConfig, Engine, client, socket_need};
pub use checks::checks;
