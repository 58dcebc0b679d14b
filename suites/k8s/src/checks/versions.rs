//! Versions and skew, the control plane (readiness, leader leases, etcd) and zones.

use std::collections::BTreeMap;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::apimachinery::pkg::version::Info;
use nfvi_harness::Outcome;

use super::{fail_with, is_control_plane, name_of, name_of_meta};
use crate::cluster::labels;

/// The Kubernetes minor versions RA2 names (this snapshot of RA2: 1.33).
pub const RA2_MINORS: &[u32] = &[33];

/// Most minor releases a kubelet may lag the API server (RA2 ra2.k8s.005).
pub const MAX_SKEW: u32 = 3;

const ZONE_LABEL: &str = "topology.kubernetes.io/zone";

/// Parses `1.33` / `33+` style minors.
fn minor(s: &str) -> Option<u32> {
    s.trim_end_matches('+').parse().ok()
}

/// `v1.31.4-eks-abc` → (1, 31).
fn semver_minor(v: &str) -> Option<(u32, u32)> {
    let mut it = v.trim_start_matches('v').split(['.', '-', '+']);
    Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?))
}

/// ra2.k8s.005: the server's minor is one RA2 names.
pub(crate) fn server_version(info: &Info) -> Outcome {
    let shown = format!("{} ({}.{})", info.git_version, info.major, info.minor);
    let o = match (info.major.as_str(), minor(&info.minor)) {
        ("1", Some(m)) if RA2_MINORS.contains(&m) => {
            Outcome::pass(format!("Kubernetes {shown} is a version RA2 names"))
        }
        ("1", Some(_)) => Outcome::fail(format!(
            "Kubernetes {shown}; RA2 (this snapshot) names 1.{}",
            RA2_MINORS
                .iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(", 1.")
        )),
        _ => Outcome::fail(format!(
            "GET /version reports an unparseable version {shown}"
        )),
    };
    o.with_property("server version", &info.git_version)
        .with_property("platform", &info.platform)
}

/// ra2.k8s.005: kubelets lag by at most [`MAX_SKEW`] minors and are never newer.
pub(crate) fn kubelet_skew(info: &Info, nodes: &[Node]) -> Outcome {
    let Some(server) = minor(&info.minor) else {
        return Outcome::fail(format!(
            "the server's minor version `{}` does not parse",
            info.minor
        ));
    };
    let mut o = Outcome::pass("");
    let mut bad = Vec::new();
    for n in nodes {
        let name = name_of(n);
        let kubelet = n
            .status
            .as_ref()
            .and_then(|s| s.node_info.as_ref())
            .map(|i| i.kubelet_version.clone())
            .unwrap_or_default();
        o = o.with_property(format!("kubelet {name}"), &kubelet);
        match semver_minor(&kubelet) {
            Some((1, m)) if m <= server && server - m <= MAX_SKEW => {}
            Some((1, m)) if m > server => bad.push(format!("{name} runs kubelet {kubelet}, newer than the API server 1.{server}")),
            Some((1, m)) => bad.push(format!("{name} runs kubelet {kubelet}, {} minors behind the API server 1.{server} (at most {MAX_SKEW})", server - m)),
            _ => bad.push(format!("{name} reports an unparseable kubelet version `{kubelet}`")),
        }
    }
    if nodes.is_empty() {
        return Outcome::fail("the cluster lists no node");
    }
    if bad.is_empty() {
        o.message = format!(
            "{} kubelets within {MAX_SKEW} minors of the API server 1.{server}",
            nodes.len()
        );
        o
    } else {
        fail_with(Outcome::fail(bad.join("; ")), o)
    }
}

/// ra2.k8s.012 (first meaning): `/readyz` passes, and the scheduler's and controller
/// manager's leader leases were renewed within twice their duration (plus a minute for clock
/// differences).
pub(crate) fn control_plane(readyz: &str, leases: &[Lease], now_unix: i64) -> Outcome {
    let mut o = Outcome::pass("");
    let mut problems = Vec::new();
    let failed: Vec<&str> = readyz.lines().filter(|l| l.starts_with("[-]")).collect();
    if !readyz.contains("readyz check passed") || !failed.is_empty() {
        problems.push(format!(
            "the API server is not ready: {}",
            if failed.is_empty() {
                nfvi_harness::truncate_chars(readyz.trim(), 200)
            } else {
                failed.join(", ")
            }
        ));
    } else {
        o = o.with_property("kube-apiserver", "readyz check passed");
    }
    for component in ["kube-scheduler", "kube-controller-manager"] {
        let lease = leases
            .iter()
            .find(|l| l.metadata.name.as_deref() == Some(component));
        let Some(spec) = lease.and_then(|l| l.spec.as_ref()) else {
            problems.push(format!("no `{component}` lease in kube-system: the component is not running (or not electing a leader)"));
            continue;
        };
        let holder = spec.holder_identity.clone().unwrap_or_default();
        let duration = i64::from(spec.lease_duration_seconds.unwrap_or(15));
        match &spec.renew_time {
            Some(t) => {
                let age = now_unix - t.0.as_second();
                o = o.with_property(component, format!("held by {holder}, renewed {age} s ago"));
                if age > 2 * duration + 60 {
                    problems.push(format!("{component}'s lease (holder {holder}) was last renewed {age} s ago; its duration is {duration} s"));
                }
            }
            None => problems.push(format!("{component}'s lease has never been renewed")),
        }
    }
    if problems.is_empty() {
        o.message =
            "the API server is ready; the scheduler and controller manager hold their leases"
                .to_owned();
        o
    } else {
        fail_with(Outcome::fail(problems.join("; ")), o)
    }
}

/// ra2.k8s.002: etcd members (kube-system pods labelled `component=etcd`) number 3, 5 or 7,
/// all on control-plane nodes.
pub(crate) fn etcd(pods: &[Pod], nodes: &[Node]) -> Outcome {
    let members: Vec<&Pod> = pods
        .iter()
        .filter(|p| labels(&p.metadata).get("component").map(String::as_str) == Some("etcd"))
        .collect();
    if members.is_empty() {
        return Outcome::not_applicable(
            "etcd is not visible as kube-system pods (external etcd or a managed control plane): ra2.k8s.002 needs the deployment's own evidence",
        );
    }
    let mut o = Outcome::pass("");
    let mut on_workers = Vec::new();
    for p in &members {
        let node = p
            .spec
            .as_ref()
            .and_then(|s| s.node_name.clone())
            .unwrap_or_default();
        let cp = nodes
            .iter()
            .any(|n| name_of(n) == node && is_control_plane(n));
        o = o.with_property(
            name_of_meta(&p.metadata),
            format!(
                "on {node}{}",
                if cp { " (control plane)" } else { " (worker)" }
            ),
        );
        if !cp {
            on_workers.push(format!("{} on {node}", name_of_meta(&p.metadata)));
        }
    }
    let n = members.len();
    let mut problems = Vec::new();
    if ![3, 5, 7].contains(&n) {
        problems.push(format!("etcd has {n} member(s); RA2 asks for 3, 5 or 7"));
    }
    if !on_workers.is_empty() {
        problems.push(format!(
            "etcd members on worker nodes: {}",
            on_workers.join(", ")
        ));
    }
    if problems.is_empty() {
        o.message = format!("{n} etcd members, all on control-plane nodes");
        o
    } else {
        fail_with(Outcome::fail(problems.join("; ")), o)
    }
}

/// ra2.k8s.003 / ra2.k8s.004: every zone (`topology.kubernetes.io/zone`; unlabelled nodes form
/// one zone) has a control-plane node, or a worker.
pub(crate) fn per_zone(nodes: &[Node], control_plane: bool) -> Outcome {
    let mut zones: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for n in nodes {
        let zone = labels(&n.metadata)
            .get(ZONE_LABEL)
            .cloned()
            .unwrap_or_else(|| "(unlabelled)".to_owned());
        let e = zones.entry(zone).or_default();
        if is_control_plane(n) {
            e.0 += 1;
        } else {
            e.1 += 1;
        }
    }
    if zones.is_empty() {
        return Outcome::fail("the cluster lists no node");
    }
    let what = if control_plane {
        "control-plane node"
    } else {
        "worker node"
    };
    let mut o = Outcome::pass("");
    let mut missing = Vec::new();
    for (zone, (cp, w)) in &zones {
        o = o.with_property(
            format!("zone {zone}"),
            format!("{cp} control-plane, {w} worker"),
        );
        if (if control_plane { *cp } else { *w }) == 0 {
            missing.push(zone.clone());
        }
    }
    if missing.is_empty() {
        o.message = format!("each of {} zone(s) has a {what}", zones.len());
        o
    } else {
        fail_with(
            Outcome::fail(format!("zone(s) without a {what}: {}", missing.join(", "))),
            o,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_as_distributions_print_them() {
        assert_eq!(semver_minor("v1.33.4"), Some((1, 33)));
        assert_eq!(semver_minor("v1.31.4-eks-a1b2c3"), Some((1, 31)));
        assert_eq!(semver_minor("v1.30.2+k3s1"), Some((1, 30)));
        assert_eq!(semver_minor("garbage"), None);
        assert_eq!(minor("33+"), Some(33));
        assert_eq!(minor("x"), None);
    }
}
