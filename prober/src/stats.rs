//! Statistics for comparing paths. Per-packet RTTs are autocorrelated, so packets are not
//! independent replicates: the unit of replication is a block (a run of probes on one path),
//! blocks of the compared paths are interleaved (ABBA) so that slow phases of the machine hit
//! both, and the comparison is over paired per-round differences of block medians: a
//! Hodges-Lehmann estimate with a percentile bootstrap confidence interval.

use serde::Serialize;

/// The median of a sample (NaN for an empty one).
pub fn median(values: &[f64]) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// The Hodges-Lehmann location estimate: the median of all Walsh averages.
pub fn hodges_lehmann(values: &[f64]) -> f64 {
    let mut walsh = Vec::with_capacity(values.len() * (values.len() + 1) / 2);
    for i in 0..values.len() {
        for j in i..values.len() {
            walsh.push((values[i] + values[j]) / 2.0);
        }
    }
    median(&walsh)
}

/// Coefficient of variation.
pub fn cv(values: &[f64]) -> f64 {
    let n = values.len() as f64;
    if n < 2.0 {
        return 0.0;
    }
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
    var.sqrt() / mean.abs().max(f64::EPSILON)
}

/// A small deterministic generator (xorshift64*), so that a report can be reproduced.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// A percentile bootstrap confidence interval of `stat` over resampled `values`.
pub fn bootstrap_ci(
    values: &[f64],
    stat: fn(&[f64]) -> f64,
    level: f64,
    iterations: usize,
) -> (f64, f64) {
    if values.len() < 2 {
        let v = values.first().copied().unwrap_or(f64::NAN);
        return (v, v);
    }
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut stats: Vec<f64> = (0..iterations)
        .map(|_| {
            let resample: Vec<f64> = (0..values.len())
                .map(|_| values[rng.below(values.len())])
                .collect();
            stat(&resample)
        })
        .collect();
    stats.sort_by(f64::total_cmp);
    let alpha = (1.0 - level) / 2.0;
    let at = |q: f64| stats[((q * (stats.len() - 1) as f64).round() as usize).min(stats.len() - 1)];
    (at(alpha), at(1.0 - alpha))
}

/// Which path is faster.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Finding {
    /// The first path is faster (its RTT is lower) with 95% confidence.
    FirstFaster,
    /// The second path is faster with 95% confidence.
    SecondFaster,
    /// The interval includes zero.
    NoSignificantDifference,
}

/// The comparison of two paths from paired per-round block medians.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Comparison {
    /// Rounds (paired differences).
    pub rounds: usize,
    /// Hodges-Lehmann estimate of first − second, µs.
    pub difference_us: f64,
    /// 95% confidence interval, µs.
    pub ci_low_us: f64,
    /// 95% confidence interval, µs.
    pub ci_high_us: f64,
    /// The finding.
    pub finding: Finding,
}

/// Compares paired per-round medians of two paths (`first[i]` and `second[i]` come from the
/// same round).
pub fn compare(first: &[f64], second: &[f64]) -> Comparison {
    let diffs: Vec<f64> = first.iter().zip(second).map(|(a, b)| a - b).collect();
    let (lo, hi) = bootstrap_ci(&diffs, hodges_lehmann, 0.95, 4000);
    let finding = if hi < 0.0 {
        Finding::FirstFaster
    } else if lo > 0.0 {
        Finding::SecondFaster
    } else {
        Finding::NoSignificantDifference
    };
    Comparison {
        rounds: diffs.len(),
        difference_us: hodges_lehmann(&diffs),
        ci_low_us: lo,
        ci_high_us: hi,
        finding,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_and_hodges_lehmann() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(hodges_lehmann(&[1.0, 2.0, 3.0]), 2.0);
        // One wild value moves the mean but barely the estimate.
        assert!((hodges_lehmann(&[1.0, 1.1, 0.9, 1.0, 50.0]) - 1.05).abs() < 0.1);
    }

    #[test]
    fn a_consistent_difference_is_found_and_noise_is_not() {
        let bridge = [24.1, 25.0, 23.8, 24.6, 25.2, 24.0];
        let macvlan = [20.9, 21.5, 20.7, 21.2, 21.9, 20.8];
        let c = compare(&macvlan, &bridge);
        assert_eq!(c.finding, Finding::FirstFaster);
        assert!(
            c.ci_high_us < 0.0 && (c.difference_us + 3.3).abs() < 0.5,
            "{c:?}"
        );
        let a = [21.0, 23.0, 20.0, 22.5, 21.5, 22.0];
        let b = [22.0, 21.0, 22.5, 20.5, 22.0, 21.5];
        assert_eq!(compare(&a, &b).finding, Finding::NoSignificantDifference);
    }

    #[test]
    fn cv_of_constant_is_zero() {
        assert_eq!(cv(&[5.0, 5.0, 5.0]), 0.0);
        assert!(cv(&[1.0, 3.0]) > 0.5);
    }
}
