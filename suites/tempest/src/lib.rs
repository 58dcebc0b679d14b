//! Tempest, for real: RC1's Tempest test sets driven against the OpenStack cloud under test.
//!
//! nfvi-verify creates and caches a virtualenv with a pinned Tempest from PyPI (or uses the
//! operator's), writes tempest.conf from the kolla area's credentials (clouds.yaml, `OS_*`,
//! openrc; CA bundle; interface) into a private directory, tells Tempest only about the
//! services the catalog offers that are real OpenStack APIs (a token-validating endpoint; the
//! lab's stand-ins are not), runs the selected sets once per nfvi-verify run with progress,
//! and judges each service's share of the subunit stream (decoded by the evidence area's
//! parser) against the RA1 requirements it verifies.

#![warn(missing_docs)]

mod area;
mod checks;
pub mod cloud;
pub mod collect;
pub mod conf;
pub mod judge;
pub mod leftovers;
mod proc;
pub mod run;
pub mod services;
mod stream;
mod venv;

pub use area::{CACHE_DIR, TempestArea, TempestConfig};
pub use venv::install_pinned;
