//! The served API groups: no alpha, no built-in beta, the mandatory groups, NetworkPolicy.

use std::collections::BTreeSet;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use nfvi_harness::Outcome;

use crate::cluster::GroupVersion;

/// The API group versions RA2 chapter 6 makes mandatory, GA in every release from 1.29.
pub const MANDATORY_GROUPS: &[&str] = &[
    "v1",
    "admissionregistration.k8s.io/v1",
    "apiextensions.k8s.io/v1",
    "apps/v1",
    "authentication.k8s.io/v1",
    "authorization.k8s.io/v1",
    "autoscaling/v1",
    "autoscaling/v2",
    "batch/v1",
    "certificates.k8s.io/v1",
    "coordination.k8s.io/v1",
    "discovery.k8s.io/v1",
    "events.k8s.io/v1",
    "networking.k8s.io/v1",
    "node.k8s.io/v1",
    "policy/v1",
    "rbac.authorization.k8s.io/v1",
    "scheduling.k8s.io/v1",
    "storage.k8s.io/v1",
];

/// Beta group versions a default API server still serves for compatibility (RA2's "legacy"
/// exception): API Priority and Fairness v1beta3, served by default up to 1.31.
pub const LEGACY_BETA: &[&str] = &["flowcontrol.apiserver.k8s.io/v1beta3"];

/// The alpha group RA2 itself needs (Node Feature Discovery's CRDs).
pub const ALLOWED_ALPHA_GROUPS: &[&str] = &["nfd.k8s-sigs.io"];

fn crd_groups(crds: &[CustomResourceDefinition]) -> BTreeSet<String> {
    crds.iter().map(|c| c.spec.group.clone()).collect()
}

/// Built-in (not CRD-defined) served group versions whose version contains `stage`.
fn built_in_with<'a>(
    discovery: &'a [GroupVersion],
    crds: &[CustomResourceDefinition],
    stage: &str,
) -> Vec<&'a GroupVersion> {
    let from_crds = crd_groups(crds);
    discovery
        .iter()
        .filter(|gv| gv.version.contains(stage) && !from_crds.contains(&gv.group))
        .collect()
}

/// The positive control of the "not served" checks: discovery shows the core group's `v1`
/// with resources, which every API server serves. Without it, "no alpha API" or "no beta
/// API" would pass on a discovery that observed nothing.
fn discovery_observed(discovery: &[GroupVersion]) -> Result<(), Outcome> {
    let core = discovery
        .iter()
        .any(|gv| gv.group.is_empty() && gv.version == "v1" && !gv.resources.is_empty());
    if core {
        Ok(())
    } else {
        Err(Outcome::error(format!(
            "API discovery returned {} group version(s) and not the core v1 every API server serves, so what is served was not observed",
            discovery.len()
        )))
    }
}

/// ra2.k8s.012 (second meaning): no alpha API served, except RA2's own (NFD). CRD-defined
/// alpha versions count too: they are served APIs.
pub(crate) fn no_alpha(discovery: &[GroupVersion], _crds: &[CustomResourceDefinition]) -> Outcome {
    if let Err(o) = discovery_observed(discovery) {
        return o;
    }
    let alpha: Vec<String> = discovery
        .iter()
        .filter(|gv| {
            gv.version.contains("alpha") && !ALLOWED_ALPHA_GROUPS.contains(&gv.group.as_str())
        })
        .map(GroupVersion::api_version)
        .collect();
    let o = Outcome::pass_if(
        alpha.is_empty(),
        format!(
            "{} group versions served, none alpha (NFD's excepted)",
            discovery.len()
        ),
        format!("alpha APIs are served: {}", alpha.join(", ")),
    );
    o.with_property(
        "served",
        discovery
            .iter()
            .map(GroupVersion::api_version)
            .collect::<Vec<_>>()
            .join(", "),
    )
}

/// ra2.k8s.019: no built-in beta API served, except [`LEGACY_BETA`]. Betas of CRD-defined
/// groups (add-ons such as the Gateway API) are not the API server's and are left out.
pub(crate) fn no_beta(discovery: &[GroupVersion], crds: &[CustomResourceDefinition]) -> Outcome {
    if let Err(o) = discovery_observed(discovery) {
        return o;
    }
    let beta = built_in_with(discovery, crds, "beta");
    let (legacy, bad): (Vec<&GroupVersion>, Vec<&GroupVersion>) = beta
        .into_iter()
        .partition(|gv| LEGACY_BETA.contains(&gv.api_version().as_str()));
    let list = |v: &[&GroupVersion]| {
        v.iter()
            .map(|gv| gv.api_version())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let o = Outcome::pass_if(
        bad.is_empty(),
        if legacy.is_empty() {
            "no built-in beta API is served".to_owned()
        } else {
            format!("only legacy beta APIs are served: {}", list(&legacy))
        },
        format!("built-in beta APIs are served: {}", list(&bad)),
    );
    o.with_property("legacy betas allowed", LEGACY_BETA.join(", "))
}

/// int.api.03@ra2: every group version of [`MANDATORY_GROUPS`] is served.
pub(crate) fn mandatory_groups(discovery: &[GroupVersion]) -> Outcome {
    let served: BTreeSet<String> = discovery.iter().map(GroupVersion::api_version).collect();
    let missing: Vec<&str> = MANDATORY_GROUPS
        .iter()
        .copied()
        .filter(|g| !served.contains(*g))
        .collect();
    Outcome::pass_if(
        missing.is_empty(),
        format!(
            "all {} mandatory group versions are served",
            MANDATORY_GROUPS.len()
        ),
        format!(
            "mandatory API group versions not served: {}",
            missing.join(", ")
        ),
    )
}

/// ra2.k8s.014: networking.k8s.io/v1 serves networkpolicies.
pub(crate) fn network_policy(discovery: &[GroupVersion]) -> Outcome {
    let served = discovery.iter().any(|gv| {
        gv.group == "networking.k8s.io"
            && gv.version == "v1"
            && gv.resources.iter().any(|r| r == "networkpolicies")
    });
    Outcome::pass_if(
        served,
        "networking.k8s.io/v1 serves networkpolicies",
        "networking.k8s.io/v1 networkpolicies is not served",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::{kubelet_policy, reserved_cpus};

    fn gv(group: &str, version: &str, resources: &[&str]) -> GroupVersion {
        GroupVersion {
            group: group.to_owned(),
            version: version.to_owned(),
            resources: resources.iter().map(|r| (*r).to_owned()).collect(),
        }
    }

    /// "Not served" checks pass only on a discovery that saw the core v1 (the positive
    /// control); empty or core-less discovery, and an empty kubelet list, are errors.
    #[test]
    fn negative_api_checks_need_discovery_observed() {
        use nfvi_harness::Status;
        let core = gv("", "v1", &["pods", "nodes"]);
        let apps = gv("apps", "v1", &["deployments"]);
        let alpha = gv("resource.k8s.io", "v1alpha3", &["resourceclaims"]);
        #[rustfmt::skip]
        let rows: Vec<(&str, Vec<GroupVersion>, Status, Status)> = vec![
            // (name, discovery, no_alpha, no_beta)
            ("observed, clean", vec![core.clone(), apps.clone()], Status::Passed, Status::Passed),
            ("observed, alpha served", vec![core.clone(), alpha.clone()], Status::Failed, Status::Passed),
            ("nothing observed", vec![], Status::Error, Status::Error),
            ("control failed: no core v1", vec![apps.clone(), alpha], Status::Error, Status::Error),
            ("control failed: core v1 without resources", vec![gv("", "v1", &[]), apps], Status::Error, Status::Error),
        ];
        for (name, discovery, alpha_status, beta_status) in rows {
            let o = no_alpha(&discovery, &[]);
            assert_eq!(o.status, alpha_status, "{name}: no_alpha: {}", o.message);
            let o = no_beta(&discovery, &[]);
            assert_eq!(o.status, beta_status, "{name}: no_beta: {}", o.message);
        }
        assert_eq!(
            kubelet_policy(&[], "cpuManagerPolicy", "static").status,
            Status::Error
        );
        assert_eq!(reserved_cpus(&[]).status, Status::Error);
    }
}
