//! Statistics helpers: the RTT histogram, its summary and its quantiles.

use std::time::Duration;

use hdrhistogram::Histogram;

use super::Summary;

/// A histogram for RTTs from 1 ns to 60 s with 3 significant digits.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("valid histogram bounds")
}

/// Summarises a histogram.
pub fn summarize(h: &Histogram<u64>, lost: u64, warmup: u64, elapsed: Duration) -> Summary {
    let us = |ns: u64| ns as f64 / 1000.0;
    Summary {
        count: h.len(),
        lost,
        warmup_discarded: warmup,
        min_us: us(h.min()),
        p50_us: us(h.value_at_quantile(0.50)),
        p90_us: us(h.value_at_quantile(0.90)),
        p99_us: us(h.value_at_quantile(0.99)),
        p999_us: us(h.value_at_quantile(0.999)),
        max_us: us(h.max()),
        mean_us: h.mean() / 1000.0,
        stddev_us: h.stdev() / 1000.0,
        elapsed_secs: elapsed.as_secs_f64(),
    }
}

/// Quantiles 0, 0.01, ..., 1 of an RTT histogram (nanoseconds), in µs: 101 points.
pub fn quantiles_us(h: &Histogram<u64>) -> Vec<f64> {
    (0..=100)
        .map(|i| h.value_at_quantile(f64::from(i) / 100.0) as f64 / 1000.0)
        .collect()
}
