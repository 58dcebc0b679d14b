//! Storage and access control: the default StorageClass, RBAC, anonymous requests.

use k8s_openapi::api::storage::v1::StorageClass;
use nfvi_harness::Outcome;

use super::name_of_meta;
use crate::cluster::{GroupVersion, ReadError};

/// ra2.stg.010: a StorageClass is marked default.
pub(crate) fn default_storage_class(classes: &[StorageClass]) -> Outcome {
    let default = classes.iter().find(|c| {
        let a = c.metadata.annotations.clone().unwrap_or_default();
        [
            "storageclass.kubernetes.io/is-default-class",
            "storageclass.beta.kubernetes.io/is-default-class",
        ]
        .iter()
        .any(|k| a.get(*k).map(String::as_str) == Some("true"))
    });
    let names: Vec<String> = classes
        .iter()
        .map(|c| format!("{} ({})", name_of_meta(&c.metadata), c.provisioner))
        .collect();
    let o = match default {
        Some(c) => Outcome::pass(format!(
            "default StorageClass {} ({})",
            name_of_meta(&c.metadata),
            c.provisioner
        )),
        None if classes.is_empty() => Outcome::fail("no StorageClass exists"),
        None => Outcome::fail(format!(
            "no StorageClass is marked default among: {}",
            names.join(", ")
        )),
    };
    o.with_property("storage classes", names.join(", "))
}

/// sec.sys.007: rbac.authorization.k8s.io/v1 is served and the RBAC authoriser's bootstrap
/// roles exist.
pub(crate) fn rbac(discovery: &[GroupVersion], cluster_roles: &[String]) -> Outcome {
    let served = discovery
        .iter()
        .any(|gv| gv.api_version() == "rbac.authorization.k8s.io/v1");
    let bootstrap = ["cluster-admin", "system:basic-user", "system:discovery"];
    let missing: Vec<&str> = bootstrap
        .iter()
        .copied()
        .filter(|r| !cluster_roles.iter().any(|c| c == r))
        .collect();
    if !served {
        Outcome::fail("rbac.authorization.k8s.io/v1 is not served: RBAC authorisation is off")
    } else if !missing.is_empty() {
        Outcome::fail(format!(
            "the RBAC bootstrap cluster roles are missing: {}",
            missing.join(", ")
        ))
    } else {
        Outcome::pass(format!(
            "RBAC is served with {} cluster roles, the bootstrap ones included",
            cluster_roles.len()
        ))
    }
}

/// sec.sys.001: listing namespaces without credentials is refused (401 or 403). `Ok(n)`: the
/// listing worked; `Err(Ok(code))`: the server's refusal; `Err(Err(_))`: no answer.
/// ra2.k8s.010-style: anonymous access refused. A refusal (401/403) counts only next to the
/// positive control `control`, an authenticated read of the same server (the node count, or
/// why it failed): a server that refuses every caller, or a wrong server, refuses anonymous
/// requests too, and proves nothing.
pub(crate) fn anonymous(
    control: Result<usize, String>,
    result: Result<usize, Result<u16, ReadError>>,
) -> Result<Outcome, Outcome> {
    if let (Err(why), Err(Ok(401 | 403))) = (&control, &result) {
        return Err(Outcome::error(format!(
            "the anonymous request was refused, but the same server did not answer an authenticated read either ({why}), so the refusal proves nothing"
        )));
    }
    match result {
        Ok(n) => Ok(Outcome::fail(format!(
            "an anonymous request listed namespaces ({n} returned): anonymous access is open"
        ))),
        Err(Ok(code @ (401 | 403))) => Ok(Outcome::pass(format!(
            "an anonymous list of namespaces is refused ({code})"
        ))),
        Err(Ok(code)) => Ok(Outcome::fail(format!(
            "an anonymous list of namespaces answered {code}; expected 401 or 403"
        ))),
        Err(Err(e)) => Err(e.outcome()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anonymous_access_outcomes() {
        assert_eq!(
            anonymous(Ok(1), Ok(3)).unwrap().status,
            nfvi_harness::Status::Failed
        );
        assert_eq!(
            anonymous(Ok(1), Err(Ok(401))).unwrap().status,
            nfvi_harness::Status::Passed
        );
        assert_eq!(
            anonymous(Ok(1), Err(Ok(500))).unwrap().status,
            nfvi_harness::Status::Failed
        );
        // Control failed: the server refuses authenticated reads too, so a refusal of the
        // anonymous one observed nothing.
        for code in [401, 403] {
            let o =
                anonymous(Err("list nodes: 401 Unauthorized".into()), Err(Ok(code))).unwrap_err();
            assert_eq!(o.status, nfvi_harness::Status::Error, "{}", o.message);
        }
        // Open anonymous access is observed whatever the control says.
        assert_eq!(
            anonymous(Err("x".into()), Ok(2)).unwrap().status,
            nfvi_harness::Status::Failed
        );
    }
}
