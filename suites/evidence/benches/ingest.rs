//! How long the three real conformance JUnit files (2.0 to 2.5 MB) take to parse:
//! `cargo bench -p nfvi-suite-evidence`. Skipped when the shared evidence directory is absent.

use criterion::{Criterion, criterion_group, criterion_main};

const DIR: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/fixtures/evidence/k8s-e2e"
);

fn ingest(c: &mut Criterion) {
    for run in [
        "cncf-v1.33-catalyst-cloud",
        "cncf-v1.24-openstack-magnum",
        "homelab-srv6-v1.32.0-2025-02-22",
    ] {
        let Ok(data) = std::fs::read(format!("{DIR}/{run}/junit_01.xml")) else {
            eprintln!("skipped {run}: {DIR} is absent");
            continue;
        };
        c.bench_function(&format!("junit {run} ({} bytes)", data.len()), |b| {
            b.iter(|| {
                nfvi_suite_evidence::ingest::parse_junit(std::hint::black_box(&data)).unwrap()
            })
        });
    }
}

criterion_group!(benches, ingest);
criterion_main!(benches);
