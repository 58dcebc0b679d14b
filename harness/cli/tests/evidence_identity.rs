//! The evidence's cluster identity against the cluster the kubeconfig points at, end to end:
//! the real binary (`run --suite evidence --kubeconfig`) reads the vendored real result files
//! and asks the scripted API server (it stands in for a cluster, which cannot run here) for
//! `GET /version` and the kube-system namespace. Evidence of this cluster is marked verified,
//! evidence of another is refused naming both values, and evidence that records nothing is
//! judged but left unverified (which the certification notes).

mod common;
mod scripted_k8s;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{assert_contains, check, evidence_dir, nfvi, require, run_to, succeed, text};
use scripted_k8s::{Server, Spec, TOKEN, kubeconfig};

/// magnum's e2e.log records `kube-apiserver version: v1.24.1`.
fn magnum() -> PathBuf {
    evidence_dir().join("k8s-e2e/cncf-v1.24-openstack-magnum/junit_01.xml")
}

/// kube-bench's `detected_version` is `1.25`.
fn newrelic() -> PathBuf {
    evidence_dir().join("kube-bench/newrelic-cis-1.23-k8s-1.25/kube-bench-output.json")
}

/// Records neither a version (its e2e.log has no `kube-apiserver version`) nor a UID.
fn catalyst() -> PathBuf {
    evidence_dir().join("k8s-e2e/cncf-v1.33-catalyst-cloud/junit_01.xml")
}

/// The kube-system UID and server version the AKS Sonobuoy tarball records.
const AKS_UID: &str = "9cc08c21-1e7f-4304-bfdc-2ea2e9c65ddc";
const AKS_VERSION: &str = "v1.23.8";

/// A Sonobuoy tarball that records a kube-system UID and holds an e2e run: the real AKS
/// tarball has no e2e plugin (so no check judges it), so this one is composed of its real
/// serverversion.json, namespaces, meta/config.json and meta/run.log, with the catalyst
/// conformance JUnit as the e2e plugin's result. Packed by the system's GNU tar.
fn composed_sonobuoy(dir: &Path) -> Option<PathBuf> {
    let has_tar = Command::new("tar")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !require("GNU tar (to compose a Sonobuoy tarball)", has_tar) {
        return None;
    }
    let aks = evidence_dir().join("sonobuoy/aks-cmd-runner-v1.23.8/202207231508_sonobuoy_8650e677-fe8c-4d3f-87bd-7bd78b705a6b.tar.gz");
    let tree = dir.join("tree");
    let junit = "plugins/e2e/results/global/junit_01.xml";
    let members = [
        "serverversion.json",
        "resources/cluster/core_v1_namespaces.json",
        "meta/config.json",
        "meta/run.log",
    ];
    std::fs::create_dir_all(tree.join("plugins/e2e/results/global")).unwrap();
    succeed(
        Command::new("tar")
            .arg("-xzf")
            .arg(&aks)
            .arg("-C")
            .arg(&tree)
            .args(members),
    );
    std::fs::copy(catalyst(), tree.join(junit)).unwrap();
    let out = dir.join("sonobuoy-composed.tar.gz");
    succeed(
        Command::new("tar")
            .arg("-czf")
            .arg(&out)
            .arg("-C")
            .arg(&tree)
            .args(members)
            .arg(junit),
    );
    Some(out)
}

/// A scripted cluster answering `GET /version` with `git_version` and the kube-system UID
/// `uid`.
fn cluster(minor: u32, git_version: &str, uid: &str) -> Server {
    let mut spec = Spec::conformant(minor);
    spec.git_version = Some(git_version.to_owned());
    spec.kube_system_uid = uid.to_owned();
    Server::start(spec)
}

/// `run --suite evidence --kubeconfig` (for `server`) with `evidence`, any age accepted, no
/// other kubeconfig anywhere; the exit code and results.json.
fn run(dir: &Path, server: &Server, evidence: &Path) -> (i32, serde_json::Value) {
    let kc = kubeconfig(dir, server.port, TOKEN);
    run_to(
        nfvi()
            .env("HOME", dir)
            .env_remove("KUBECONFIG")
            .args(["run", "--suite", "evidence", "--evidence-max-age", "0"])
            .arg("--kubeconfig")
            .arg(&kc)
            .arg("--evidence")
            .arg(evidence),
        &dir.join("out"),
    )
}

fn provenance(c: &serde_json::Value) -> &Vec<serde_json::Value> {
    c["evidence"]["provenance"]
        .as_array()
        .unwrap_or_else(|| panic!("no provenance in {c}"))
}

/// The certification's reasons (absent when it is certifiable).
fn reasons(r: &serde_json::Value) -> Vec<String> {
    r["certification"]["reasons"]
        .as_array()
        .map(|a| a.iter().map(|v| v.as_str().unwrap().to_owned()).collect())
        .unwrap_or_default()
}

/// Whether a certification reason names `file`: by its path when it is the only one, by
/// its file name in a list of several.
fn names(reason: &str, file: &Path) -> bool {
    let name = file.file_name().unwrap().to_str().unwrap();
    reason.contains(file.to_str().unwrap())
        || reason
            .rsplit(": ")
            .next()
            .is_some_and(|list| list.split(", ").any(|n| n == name))
}

/// Asserts the certification does not say any of `files` was not matched (here, with the
/// whole suite run as it is, nothing else stands in its way but the mandatory requirements
/// the scripted cluster leaves unobserved, their checks skipped).
#[track_caller]
fn matched_in_certification(r: &serde_json::Value, files: &[&str]) {
    let others: Vec<String> = reasons(r)
        .into_iter()
        .filter(|x| !x.contains("mandatory requirement(s) were not observed"))
        .collect();
    assert!(others.is_empty(), "{}", r["certification"]);
    for reason in reasons(r) {
        if reason.contains("was not matched") {
            for f in files {
                assert!(!names(&reason, Path::new(f)), "{f} unmatched: {reason}");
            }
        }
    }
}

#[test]
fn evidence_of_this_cluster_is_verified() {
    // An e2e run of Kubernetes v1.24.1 (its e2e.log says so) against a v1.24.1 cluster.
    let tmp = tempfile::tempdir().unwrap();
    let server = cluster(24, "v1.24.1", "any");
    let (_, r) = run(tmp.path(), &server, &magnum());
    let c = check(&r, "evidence.k8s.conformance");
    assert_eq!(text(c, "outcome"), "passed", "{c}");
    assert_contains(
        text(c, "message"),
        "identity verified: Kubernetes v1.24.1 = v1.24.1",
    );
    let p = provenance(c);
    assert_eq!(p.len(), 3, "junit_01.xml, e2e.log, PRODUCT.yaml: {p:?}");
    for p in p {
        assert_eq!(p["identity_verified"], true, "{p}");
        assert_eq!(text(p, "identity"), "Kubernetes v1.24.1");
    }
    let junit = magnum();
    matched_in_certification(&r, &[junit.to_str().unwrap()]);
    let seen = server.requests();
    assert!(seen.contains(&"GET /version".to_owned()), "{seen:?}");
    // The run records no UID: the namespace is not read.
    assert!(
        !seen.iter().any(|s| s.contains("namespaces/kube-system")),
        "{seen:?}"
    );

    // kube-bench detected 1.25 (major.minor only): matches a v1.25.9 cluster.
    let tmp = tempfile::tempdir().unwrap();
    let server = cluster(25, "v1.25.9", "any");
    let bench = newrelic();
    let (_, r) = run(tmp.path(), &server, &bench);
    for id in [
        "evidence.kube-bench.cis",
        "evidence.kube-bench.authentication",
        "evidence.kube-bench.rbac",
    ] {
        let c = check(&r, id);
        assert_ne!(text(c, "outcome"), "error", "{c}");
        assert_contains(
            text(c, "message"),
            "identity verified: Kubernetes 1.25 = v1.25.9",
        );
        assert_eq!(provenance(c)[0]["identity_verified"], true, "{c}");
    }
    matched_in_certification(&r, &[bench.to_str().unwrap()]);

    // A Sonobuoy tarball recording the cluster's version and kube-system UID: both compared.
    let tmp = tempfile::tempdir().unwrap();
    let Some(tarball) = composed_sonobuoy(tmp.path()) else {
        return;
    };
    let server = cluster(23, AKS_VERSION, AKS_UID);
    let (_, r) = run(tmp.path(), &server, &tarball);
    let c = check(&r, "evidence.k8s.conformance");
    assert_eq!(text(c, "outcome"), "passed", "{c}");
    assert_contains(
        text(c, "message"),
        &format!(
            "identity verified: Kubernetes {AKS_VERSION} = {AKS_VERSION}, kube-system uid {AKS_UID}"
        ),
    );
    let p = &provenance(c)[0];
    assert_eq!(p["identity_verified"], true, "{p}");
    assert_eq!(text(p, "tool"), "sonobuoy");
    assert_eq!(
        text(p, "identity"),
        format!("Kubernetes {AKS_VERSION}, cluster kube-system uid {AKS_UID}")
    );
    matched_in_certification(&r, &[tarball.to_str().unwrap()]);
    let seen = server.requests();
    assert!(
        seen.contains(&"GET /api/v1/namespaces/kube-system".to_owned()),
        "{seen:?}"
    );
}

/// Asserts `id` is an error refusing the evidence as another cluster's, naming `values`,
/// with the provenance attached but unverified.
#[track_caller]
fn refused(r: &serde_json::Value, id: &str, values: &[&str]) {
    let c = check(r, id);
    assert_eq!(text(c, "outcome"), "error", "{c}");
    let m = text(c, "message");
    assert!(
        m.starts_with("refused: evidence of another cluster"),
        "{id}: {m}"
    );
    for v in values {
        assert_contains(m, v);
    }
    let p = provenance(c);
    assert!(!p.is_empty());
    assert!(p.iter().all(|p| p["identity_verified"] == false), "{p:?}");
}

#[test]
fn evidence_of_another_cluster_is_refused_naming_both() {
    let tmp = tempfile::tempdir().unwrap();
    let server = cluster(33, "v1.33.4", "any");
    let (code, r) = run(tmp.path(), &server, &magnum());
    assert_ne!(code, 0);
    refused(&r, "evidence.k8s.conformance", &["v1.24.1", "v1.33.4"]);
    let junit = magnum();
    assert!(
        reasons(&r)
            .iter()
            .any(|s| s.contains("was not matched") && names(s, &junit)),
        "{:?}",
        reasons(&r)
    );

    // Same minor, another patch release: another cluster.
    let tmp = tempfile::tempdir().unwrap();
    let server = cluster(24, "v1.24.2", "any");
    let (_, r) = run(tmp.path(), &server, &magnum());
    refused(&r, "evidence.k8s.conformance", &["v1.24.1", "v1.24.2"]);

    let tmp = tempfile::tempdir().unwrap();
    let server = cluster(33, "v1.33.4", "any");
    let (_, r) = run(tmp.path(), &server, &newrelic());
    for id in [
        "evidence.kube-bench.cis",
        "evidence.kube-bench.authentication",
    ] {
        refused(&r, id, &["1.25", "v1.33.4"]);
    }

    // The same version, another kube-system UID.
    let tmp = tempfile::tempdir().unwrap();
    let Some(tarball) = composed_sonobuoy(tmp.path()) else {
        return;
    };
    let other = "5f3e9a0b-2c7d-4e18-b6a4-0d9c1e2f3a4b";
    let server = cluster(23, AKS_VERSION, other);
    let (_, r) = run(tmp.path(), &server, &tarball);
    refused(&r, "evidence.k8s.conformance", &[AKS_UID, other]);
}

#[test]
fn evidence_that_records_nothing_is_judged_unverified() {
    let tmp = tempfile::tempdir().unwrap();
    let server = cluster(33, "v1.33.4", "any");
    let junit = catalyst();
    let (_, r) = run(tmp.path(), &server, &junit);
    let c = check(&r, "evidence.k8s.conformance");
    assert_eq!(text(c, "outcome"), "passed", "{c}");
    assert_contains(
        text(c, "message"),
        "records neither the cluster's Kubernetes version nor its UID",
    );
    let p = provenance(c);
    assert!(!p.is_empty());
    assert!(p.iter().all(|p| p["identity_verified"] == false), "{p:?}");
    assert!(
        reasons(&r)
            .iter()
            .any(|s| s.contains("was not matched") && names(s, &junit)),
        "{:?}",
        reasons(&r)
    );
    // Nothing to compare: the cluster is not asked.
    let seen = server.requests();
    assert!(!seen.contains(&"GET /version".to_owned()), "{seen:?}");
}
