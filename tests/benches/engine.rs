//! Criterion benchmarks of the engine and the reports at 10,000 checks: plan building, and
//! rendering each artifact.

use criterion::{Criterion, criterion_group, criterion_main};
use nfvi_integration_tests::{synthetic_plan, synthetic_results};

fn benches(c: &mut Criterion) {
    let model = nfvi_reference_model::load_embedded().unwrap();
    let mut g = c.benchmark_group("10k");
    g.sample_size(10);
    g.bench_function("plan", |b| b.iter(|| synthetic_plan(&model, 10_000)));
    let results = synthetic_results(10_000);
    g.bench_function("json", |b| b.iter(|| results.to_json()));
    g.bench_function("junit", |b| {
        b.iter(|| nfvi_reports::render_junit(&results).unwrap())
    });
    g.bench_function("html", |b| {
        b.iter(|| nfvi_reports::render_html(&results).unwrap())
    });
    g.finish();
    c.bench_function("model/load_embedded", |b| {
        b.iter(nfvi_reference_model::load_embedded)
    });
    // The prober records every RTT; the goal is under 100 ns per sample.
    let mut h = nfvi_prober::probe::new_histogram();
    let mut v: u64 = 12_345;
    c.bench_function("probe/histogram_record", |b| {
        b.iter(|| {
            v = v.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1) % 50_000_000 + 1;
            h.record(std::hint::black_box(v)).unwrap();
        })
    });
    let medians: Vec<f64> = (0..12).map(|i| 20.0 + f64::from(i % 5)).collect();
    c.bench_function("stats/compare_12_rounds", |b| {
        b.iter(|| nfvi_prober::stats::compare(&medians, &medians))
    });
}

criterion_group!(engine, benches);
criterion_main!(engine);
