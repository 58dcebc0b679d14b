//! Other tools' result files: ginkgo JUnit (e2e, v1 and v2) and subunit2junitxml JUnit,
//! e2e.log, PRODUCT.yaml, Sonobuoy result tarballs, kube-bench JSON and subunit v2 streams.
//! Seeds are the vendored fixtures, cut to a few kilobytes (a cut is a seed too: the
//! parsers must say what is missing).

use std::path::Path;

use nfvi_fuzz::proptest::prelude::*;
use nfvi_fuzz::{DEFAULT_CASES, bytes, config, seed_file, seeds};
use nfvi_suite_evidence::ingest;

const E: &str = "tests/fixtures/evidence";

fn junit_seeds() -> Vec<Vec<u8>> {
    let mut s = seeds(&[
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites tests=\"2\" disabled=\"0\" errors=\"0\" failures=\"1\" time=\"1.5\">\n<testsuite name=\"Kubernetes e2e suite\" package=\"/\" tests=\"2\" disabled=\"0\" skipped=\"0\" errors=\"0\" failures=\"1\" time=\"1.5\" timestamp=\"2025-02-22T10:00:00\">\n<properties><property name=\"SuiteSucceeded\" value=\"false\"></property></properties>\n<testcase name=\"[sig-network] Services should serve a basic endpoint [Conformance]\" classname=\"Kubernetes e2e suite\" status=\"passed\" time=\"0.5\"></testcase>\n<testcase name=\"[sig-apps] Deployment should run [Conformance]\" classname=\"Kubernetes e2e suite\" status=\"failed\" time=\"1\"><failure message=\"boom\" type=\"failed\">&lt;x&gt;</failure><system-err>err</system-err></testcase>\n</testsuite>\n</testsuites>\n",
        "<testsuite errors=\"0\" failures=\"0\" name=\"\" tests=\"1\" time=\"2.0\"><testcase classname=\"tempest.api.compute.test_x.T\" name=\"test_y[id-0b8f1d6e,smoke]\" time=\"2.0\"><skipped>why</skipped></testcase></testsuite>",
    ]);
    s.push(seed_file(
        &format!("{E}/k8s-e2e/cncf-v1.33-catalyst-cloud/junit_01.xml"),
        6000,
    ));
    s.push(seed_file(
        &format!("{E}/tempest/mos8-tempest-2015/tempest-report.xml"),
        6000,
    ));
    s
}

proptest! {
    #![proptest_config(config(DEFAULT_CASES))]

    #[test]
    fn fuzz_junit(b in bytes(junit_seeds())) {
        let _ = ingest::parse_junit(&b);
    }

    #[test]
    fn fuzz_e2e_log(b in bytes(vec![
        seed_file(&format!("{E}/k8s-e2e/cncf-v1.33-catalyst-cloud/e2e.log"), 8041),
        seed_file(&format!("{E}/k8s-e2e/homelab-srv6-v1.32.0-2025-02-22/e2e.log"), 6000),
    ])) {
        let _ = ingest::parse_e2e_log(&b);
    }

    #[test]
    fn fuzz_product_yaml(b in bytes(vec![
        seed_file(&format!("{E}/k8s-e2e/cncf-v1.24-openstack-magnum/PRODUCT.yaml"), 4096),
        seed_file(&format!("{E}/k8s-e2e/cncf-v1.33-catalyst-cloud/PRODUCT.yaml"), 4096),
        b"vendor: &a x\nname: *a\nversion: !!binary aGk=\ntype: [[[[[[[[\n".to_vec(),
    ])) {
        let _ = ingest::parse_product(&b);
    }

    #[test]
    fn fuzz_kube_bench_json(b in bytes(vec![
        seed_file(&format!("{E}/kube-bench/eks-1.0-2021/kube-bench-report.json"), 30_000),
    ])) {
        let _ = ingest::parse_kube_bench(&b);
        let _ = ingest::ingest_kube_bench(Path::new("kube-bench.json"), &b);
    }

    #[test]
    fn fuzz_subunit_v2(b in bytes(vec![
        seed_file(&format!("{E}/tempest/tempest-calls-2016/calls.subunit"), 8000),
        seed_file(&format!("{E}/tempest/stestr-sample-failure/failure.subunit"), 8000),
    ])) {
        let _ = ingest::parse_subunit(&b);
        let _ = ingest::ingest_subunit(Path::new("x.subunit"), &b);
    }
}

proptest! {
    // Inflating a tarball per case is slower: fewer cases.
    #![proptest_config(config(64))]

    #[test]
    fn fuzz_sonobuoy_tarball(b in bytes(vec![
        seed_file(&format!("{E}/sonobuoy/aks-cmd-runner-v1.23.8/202207231508_sonobuoy_8650e677-fe8c-4d3f-87bd-7bd78b705a6b.tar.gz"), usize::MAX),
    ])) {
        let _ = ingest::ingest_sonobuoy(Path::new("sonobuoy.tar.gz"), &b);
    }

    /// The e2e JUnit with its log, as a submission directory holds them.
    #[test]
    fn fuzz_e2e_submission(j in bytes(junit_seeds()), l in bytes(vec![
        seed_file(&format!("{E}/k8s-e2e/cncf-v1.33-catalyst-cloud/e2e.log"), 8041),
    ])) {
        let _ = ingest::parse_e2e(&j, Some(&l));
    }
}
