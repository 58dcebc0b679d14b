//! OpenStack API sanity, the sequence Kolla-Ansible's post-deploy checks and RC1's
//! healthcheck walk: identity version discovery, a password token scoped to a project, its
//! validation, the catalog, and for every catalog endpoint of the chosen interface, version
//! discovery and one read-only list call. One token serves the whole run. Passwords and
//! tokens never reach results, logs, JUnit or HTML: evidence holds URLs and status codes.
//!
//! Credentials come from the `OS_*` environment (an `admin-openrc.sh` that was sourced) or
//! from the target's `openstack.openrc` file (by default the one `nfvi-verify lab up` writes).

#![warn(missing_docs)]

mod api;
mod creds;

pub use api::checks;
pub use creds::Credentials;
