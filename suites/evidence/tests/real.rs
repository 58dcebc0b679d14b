//! Every real tool output in the shared evidence directory parses with the counts its README
//! states, after its SHA-256 is checked. Skipped when the directory is absent; a failure when
//! CI=true (CI provides it).

mod common;
use common::present;

use std::path::Path;

use nfvi_suite_evidence::ingest::{self, sha256_hex};
use nfvi_suite_evidence::model::{BenchStatus, Flavor, Ingested, Report, TestStatus};

/// (path, sha256) as the README lists them.
const FILES: &[(&str, &str)] = &[
    (
        "k8s-e2e/cncf-v1.33-catalyst-cloud/junit_01.xml",
        "e1ff8dce24897f1b035d255aba18556611cd54943777ee7ae5382d9df5ce35ee",
    ),
    (
        "k8s-e2e/cncf-v1.33-catalyst-cloud/e2e.log",
        "ce0e0271476a5038d9029af832ca41f5aa37ac5f3b56d886830ba5c268df3ebf",
    ),
    (
        "k8s-e2e/cncf-v1.33-catalyst-cloud/PRODUCT.yaml",
        "b17d69c80fc8dc45855bf91cb258f895c5b1791b3014477da1db2f11b7815429",
    ),
    (
        "k8s-e2e/cncf-v1.24-openstack-magnum/junit_01.xml",
        "624c1c928afe58a8052053abf066d03d1040e65e2fe8802599c822588de8bf74",
    ),
    (
        "k8s-e2e/cncf-v1.24-openstack-magnum/e2e.log",
        "209ce0d2f5f34c7c066529bcc99a4900b7a594f221d98928a70a719d1e36333a",
    ),
    (
        "k8s-e2e/cncf-v1.24-openstack-magnum/PRODUCT.yaml",
        "885bcd21fdd52fe9162300d7a8b2b3bdb6c96a8f2a405ca3e2934ca77ec9daf2",
    ),
    (
        "k8s-e2e/homelab-srv6-v1.32.0-2025-02-22/junit_01.xml",
        "251b9740a5a970ccee86dfbe48ebbe4ed1d5cd06c527c8da6b6140ae2f82c877",
    ),
    (
        "k8s-e2e/homelab-srv6-v1.32.0-2025-02-22/e2e.log",
        "1ad188278df19ee41bb63f1f9878181b387b3762ebd8192186be60dae32a4b56",
    ),
    (
        "sonobuoy/aks-cmd-runner-v1.23.8/202207231508_sonobuoy_8650e677-fe8c-4d3f-87bd-7bd78b705a6b.tar.gz",
        "a33050014b2c14afe8b549a67e486db8049974ed8dd560dafa4d78989ac3575e",
    ),
    (
        "sonobuoy/sonobuoy-testdata-v0.9/results-0.9.tar.gz",
        "a0123301d3f0d097c8bfec118748050229ce13cad9ecef283185cbb93f738672",
    ),
    (
        "kube-bench/newrelic-cis-1.23-k8s-1.25/kube-bench-output.json",
        "04a828bbfe88bb35b9662f54893c791f7810ebb05324fe15bfe7d8adefbcf292",
    ),
    (
        "kube-bench/eks-1.0-2021/kube-bench-report.json",
        "04ff47098e4837d33d8759f2d0d864e1d8791f4c2bc73950a8d995455ffdd92a",
    ),
    (
        "tempest/tempest-calls-2016/calls.subunit",
        "75d2cf8c7850fa37f7f4e88398de86f67a83fc37247d3c3fbc2d25e5b2bb056c",
    ),
    (
        "tempest/mos8-tempest-2015/tempest-report.xml",
        "a046f657d076ddee48769f8626c92cf19a94de773171b3189b1f112f7c74a14a",
    ),
    (
        "tempest/stestr-sample-failure/failure.subunit",
        "1fb2707837d9c10c3128b774292b756809d74c4b47bbcce7fc94dd56fc3770d6",
    ),
];

fn checked(d: &Path, rel: &str) -> Ingested {
    let path = d.join(rel);
    let (_, sha) = FILES.iter().find(|(p, _)| *p == rel).expect("listed");
    assert_eq!(
        &sha256_hex(&std::fs::read(&path).unwrap()),
        sha,
        "{rel} changed"
    );
    ingest::ingest(&path).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

#[test]
fn every_listed_file_is_untouched() {
    let d = common::evidence_dir();
    for (rel, sha) in FILES {
        if !present(&d, rel) {
            continue;
        }
        assert_eq!(
            &sha256_hex(&std::fs::read(d.join(rel)).unwrap()),
            sha,
            "{rel}"
        );
    }
}

fn e2e(i: &Ingested) -> &nfvi_suite_evidence::model::E2eRun {
    match &i.report {
        Report::E2e(r) => r,
        other => panic!("not e2e: {other:?}"),
    }
}

#[test]
fn conformance_runs() {
    let d = common::evidence_dir();
    let cat = checked(&d, "k8s-e2e/cncf-v1.33-catalyst-cloud/junit_01.xml");
    let r = e2e(&cat);
    assert_eq!(r.flavor, Some(Flavor::GinkgoV2));
    assert_eq!((r.passed, r.failed.len(), r.skipped), (419, 0, 6312));
    assert_eq!(r.conformance_passed, 419);
    assert_eq!(r.log.as_ref().unwrap().summary.unwrap().passed, 419);
    assert_eq!(
        r.product.as_ref().unwrap().vendor.as_deref(),
        Some("Catalyst Cloud")
    );
    assert_eq!(cat.run_at_source, "file");
    assert_eq!(
        cat.run_at.unwrap().to_rfc3339(),
        "2025-05-09T00:25:58+00:00"
    );
    assert_eq!(cat.provenance.len(), 3, "junit, e2e.log, PRODUCT.yaml");
    assert!(
        cat.provenance
            .iter()
            .all(|p| p.file.starts_with('/') && p.sha256.len() == 64)
    );
    assert_eq!(
        nfvi_suite_evidence::judge::e2e::conformance(r).status,
        nfvi_harness::Status::Passed
    );

    let home = checked(&d, "k8s-e2e/homelab-srv6-v1.32.0-2025-02-22/junit_01.xml");
    let r = e2e(&home);
    assert_eq!((r.passed, r.failed.len(), r.skipped), (409, 2, 6211));
    assert!(
        r.failed
            .iter()
            .all(|f| f.starts_with("[sig-scheduling] SchedulerPredicates [Serial]"))
    );
    let o = nfvi_suite_evidence::judge::e2e::conformance(r);
    assert_eq!(o.status, nfvi_harness::Status::Failed);
    assert!(
        o.message.contains("validates resource limits of pods"),
        "{}",
        o.message
    );

    // The submission directory ingests as its junit_01.xml.
    let mag = ingest::ingest(&d.join("k8s-e2e/cncf-v1.24-openstack-magnum")).unwrap();
    let r = e2e(&mag);
    assert_eq!(r.flavor, Some(Flavor::GinkgoV1));
    assert_eq!((r.passed, r.failed.len(), r.skipped), (356, 0, 6609));
    assert_eq!(mag.recorded.k8s_version.as_deref(), Some("v1.24.1"));
    assert_eq!(mag.provenance[0].tool_version.as_deref(), Some("v1.24.1"));
    assert_eq!(mag.run_at_source, "mtime");
    assert_eq!(
        nfvi_suite_evidence::judge::e2e::conformance(r).status,
        nfvi_harness::Status::Passed
    );
}

#[test]
fn sonobuoy_tarballs() {
    let d = common::evidence_dir();
    if !present(&d, "sonobuoy/sonobuoy-testdata-v0.9/results-0.9.tar.gz") {
        return;
    }
    let old = checked(&d, "sonobuoy/sonobuoy-testdata-v0.9/results-0.9.tar.gz");
    let r = e2e(&old);
    assert_eq!((r.passed, r.failed.len(), r.skipped), (1, 0, 692));
    assert_eq!(old.recorded.k8s_version.as_deref(), Some("v1.8.4"));
    assert_eq!(old.provenance[0].tool_version.as_deref(), Some("v0.9.0"));
    assert_eq!(
        old.run_at.unwrap().to_rfc3339(),
        "2017-12-21T16:14:15+00:00"
    );
    let members = &old.provenance[0].members;
    assert!(
        members.iter().all(|m| !m.starts_with("resources/ns/")),
        "{members:?}"
    );
    assert!(
        members.contains(&"plugins/e2e/results/junit_01.xml".to_owned()),
        "{members:?}"
    );
    // A focused run of 1 spec, 148 conformance specs skipped: not a conformance run.
    let o = nfvi_suite_evidence::judge::e2e::conformance(r);
    assert_eq!(o.status, nfvi_harness::Status::Error, "{}", o.message);

    let aks = checked(
        &d,
        "sonobuoy/aks-cmd-runner-v1.23.8/202207231508_sonobuoy_8650e677-fe8c-4d3f-87bd-7bd78b705a6b.tar.gz",
    );
    let Report::Nothing(why) = &aks.report else {
        panic!("{:?}", aks.report)
    };
    assert!(
        why.contains("without the e2e plugin") && why.contains("cmd-runner"),
        "{why}"
    );
    assert_eq!(aks.recorded.k8s_version.as_deref(), Some("v1.23.8"));
    assert_eq!(
        aks.recorded.cluster_uid.as_deref(),
        Some("9cc08c21-1e7f-4304-bfdc-2ea2e9c65ddc")
    );
    assert_eq!(aks.provenance[0].tool_version.as_deref(), Some("v0.56.8"));
}

#[test]
fn kube_bench_results() {
    let d = common::evidence_dir();
    for (rel, totals, version) in [
        (
            "kube-bench/newrelic-cis-1.23-k8s-1.25/kube-bench-output.json",
            [61, 12, 52, 0],
            Some("1.25"),
        ),
        (
            "kube-bench/eks-1.0-2021/kube-bench-report.json",
            [14, 0, 1, 0],
            None,
        ),
    ] {
        let i = checked(&d, rel);
        let Report::KubeBench(r) = &i.report else {
            panic!()
        };
        assert_eq!(r.totals(), totals, "{rel}");
        assert_eq!(i.recorded.k8s_version.as_deref(), version);
        assert!(r.controls.iter().any(|c| c.status == BenchStatus::Pass));
    }
}

#[test]
fn tempest_results() {
    let d = common::evidence_dir();
    for (rel, passed, failed, skipped) in [
        ("tempest/tempest-calls-2016/calls.subunit", 2, 0, 0),
        ("tempest/stestr-sample-failure/failure.subunit", 62, 1, 0),
        ("tempest/mos8-tempest-2015/tempest-report.xml", 1448, 16, 65),
    ] {
        let i = checked(&d, rel);
        let Report::Tempest(r) = &i.report else {
            panic!()
        };
        let got = (
            r.count(TestStatus::Passed),
            r.count(TestStatus::Failed),
            r.count(TestStatus::Skipped),
        );
        assert_eq!(got, (passed, failed, skipped), "{rel}");
        if rel.ends_with(".subunit") {
            assert_eq!(i.run_at_source, "file", "{rel}");
        }
    }
}

#[test]
fn functest_logs_are_not_a_supported_kind() {
    let d = common::evidence_dir();
    for f in [
        "functest/dovetail-2016-results/dovetail.log",
        "functest/dovetail-2016-results/functest.log",
    ] {
        let e = ingest::ingest(&d.join(f)).unwrap_err().to_string();
        assert!(
            e.contains("not a supported kind") && e.contains("accepted:"),
            "{e}"
        );
    }
}
