//! Entry points for the property targets in `fuzz/` (issue #14), not an API: the parsers of
//! credentials files, registry challenges and OpenStack API answers, reached without a
//! cloud. Each must return a value or an error for any input, never panic.

use std::collections::HashMap;

use serde_json::Value;

/// A `WWW-Authenticate` header's challenges, printed.
pub fn registry_challenges(header: &str) -> Result<String, String> {
    crate::registry::challenge::parse(header).map(|c| format!("{c:?}"))
}

/// clouds.yaml: the credentials of `cloud`, or why not.
pub fn clouds_yaml(text: &str, cloud: &str) -> Result<crate::Credentials, String> {
    crate::creds::parse_clouds_yaml(text, "clouds.yaml", cloud)
}

/// A Keystone token answer and discovery documents, through everything that reads them:
/// the catalogue (with credentials from `vars`), each endpoint's root, the version entries
/// of `doc`, and the Nova and Neutron judges on `doc`.
pub fn api_answers(token_body: &Value, doc: &Value, vars: &HashMap<String, String>) -> usize {
    let mut n = 0;
    if let Ok(creds) = crate::Credentials::from_vars(vars, "fuzz") {
        for (_, url) in crate::api::catalog_endpoints(token_body, &creds) {
            n += crate::api::endpoint_root(&url).len();
        }
    }
    n += crate::api::versions(doc).len();
    let _ = crate::api::judge_compute_services(doc, "GET /os-services");
    let _ = crate::api::judge_network_agents(doc, "GET /v2.0/agents");
    n
}
