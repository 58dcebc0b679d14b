//! OpenStack API sanity, the sequence Kolla-Ansible's post-deploy checks and RC1's
//! healthcheck walk: identity version discovery, a password token scoped to a project, its
//! validation, the catalog, and for every catalog endpoint of the chosen interface, version
//! discovery and one read-only list call. One token serves the whole run. Passwords and
//! tokens never reach results, logs, JUnit or HTML: evidence holds URLs and status codes.
//!
//! The container half inspects every container the Kolla release's all-in-one set (or the
//! target's list) calls for through the Docker Engine API: running, healthy, host networking,
//! Kolla's labels, no restart loop.
//!
//! Credentials come from the `OS_*` environment (an `admin-openrc.sh` that was sourced) or
//! from the target's `openstack.openrc` file (by default the one `nfvi-verify lab up` writes).

#![warn(missing_docs)]

mod api;
mod area;
mod containers;
mod creds;
#[doc(hidden)]
pub mod fuzzing;
mod http;
mod registry;
pub mod services;

pub use area::{KollaArea, KollaConfig, OpenStackConfig, cloud_need};
pub use creds::{Credentials, Secret, parse_openrc};

/// A client with the credentials' TLS settings, a project-scoped token and the project's id,
/// for tools beside the checks (the lab registers its services with them).
pub async fn project_token(
    creds: &Credentials,
) -> Result<(reqwest::Client, Secret, String), String> {
    let http = http::client(&creds.tls)?;
    let (token, project) = api::issue_token(&http, creds).await?;
    Ok((http, token, project))
}

/// As [`project_token`], with Keystone's token body (the catalog) instead of the project id,
/// for areas that drive other tools against the same cloud (Tempest). A refused password is
/// an error naming the user, where the credentials came from and the HTTP status.
pub async fn project_session(
    creds: &Credentials,
) -> Result<(reqwest::Client, Secret, serde_json::Value), String> {
    let http = http::client(&creds.tls)?;
    let session = api::issue_session(&http, creds).await?;
    Ok((http, session.0, session.1))
}

/// The catalog's endpoints of the credentials' interface and region, as (type, URL).
pub fn catalog_endpoints(
    token_body: &serde_json::Value,
    creds: &Credentials,
) -> Vec<(String, String)> {
    api::catalog_endpoints(token_body, creds)
}

/// Every check of the kolla area: containers, registry, then the OpenStack APIs.
pub fn checks() -> Vec<std::sync::Arc<dyn nfvi_harness::Check>> {
    let mut all = containers::checks();
    all.extend(registry::checks());
    all.extend(api::checks());
    all
}
