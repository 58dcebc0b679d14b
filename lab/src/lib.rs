//! `nfvi-verify lab`: what the project provisions on a developer or CI machine so that the
//! areas have a real NFVI to verify: a Docker API engine (`dockerd`, or Podman's service with
//! `--engine podman`, with bridges and pools in 198.18.0.0/15), a real Keystone from PyPI, Kolla-shaped containers behind a real image
//! registry, stand-ins for the OpenStack APIs registered in that Keystone, and optionally
//! "nodes": network namespaces on this machine, each running a real OpenSSH server.
//!
//! It is test environment, not product: no area depends on this crate, and it may depend on
//! the areas (the Kolla container table, the Keystone client).

#![warn(missing_docs)]

use nfvi_harness::Target;
use nfvi_suite_kolla::KollaConfig;

pub mod apis;
pub mod engine;
pub mod host_state;
pub mod kolla;
pub mod nodes;
pub mod podman;

pub use engine::Engine;

/// `lab up`: the engine, then the fleet of the target's Kolla release, then (`--nodes N`)
/// `nodes` SSH nodes ([`nodes::NodesLayout::lab`]); idempotent.
pub fn up(
    target: &Target,
    engine: Engine,
    nodes: Option<usize>,
    progress: &mut dyn FnMut(&str),
) -> Result<(), String> {
    let release = &target.config::<KollaConfig>().release;
    engine::up(engine, progress)?;
    kolla::up(release, progress)?;
    if let Some(n) = nodes {
        nodes::up(n, &nodes::NodesLayout::lab(), progress)?;
    }
    progress("lab is up");
    Ok(())
}

/// `lab down`: the nodes first (their state lives below the engine's state directory, which
/// the engine removes), then the Kolla containers and the registry, while the daemon still
/// answers, then the engine and its state. Goes on past a failure and reports the first.
pub fn down(progress: &mut dyn FnMut(&str)) -> Result<(), String> {
    let nodes = nodes::down(&nodes::NodesLayout::lab(), progress);
    let fleet = kolla::down(progress);
    nodes.and(engine::down(progress)).and(fleet)
}

/// `lab status`: one line per part.
pub fn status() -> Vec<String> {
    let mut lines = engine::status();
    if engine::daemon_answers() {
        lines.push(kolla::status());
    }
    lines.push(nodes::status(&nodes::NodesLayout::lab()));
    lines
}
