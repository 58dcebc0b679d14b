//! `nfvi-verify lab`: what the project provisions on a developer or CI machine so that the
//! areas have a real NFVI to verify: a Docker engine (`dockerd` with its bridge and pools in
//! 198.18.0.0/15), a real Keystone from PyPI, Kolla-shaped containers behind a real image
//! registry, and stand-ins for the OpenStack APIs registered in that Keystone.
//!
//! It is test environment, not product: no area depends on this crate, and it may depend on
//! the areas (the Kolla container table, the Keystone client).

#![warn(missing_docs)]

use nfvi_harness::Target;
use nfvi_suite_kolla::KollaConfig;

pub mod apis;
pub mod engine;
pub mod kolla;

/// `lab up`: the engine, then the fleet of the target's Kolla release; idempotent.
pub fn up(target: &Target, progress: &mut dyn FnMut(&str)) -> Result<(), String> {
    let release = &target.config::<KollaConfig>().release;
    engine::up(progress)?;
    kolla::up(release, progress)?;
    progress("lab is up");
    Ok(())
}

/// `lab down`: the Kolla containers and the registry first, while the daemon still answers,
/// then the engine and its state.
pub fn down(progress: &mut dyn FnMut(&str)) -> Result<(), String> {
    let fleet = kolla::down(progress);
    engine::down(progress).and(fleet)
}

/// `lab status`: one line per part.
pub fn status() -> Vec<String> {
    let mut lines = engine::status();
    if engine::daemon_answers() {
        lines.push(kolla::status());
    }
    lines
}
