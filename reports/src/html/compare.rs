//! Comparisons a check measured (the data-path area's macvlan against bridge latency): an
//! estimate of a difference with its 95% confidence interval, shown in the area's section
//! without expanding anything, with a small interval figure.
//!
//! A check records a comparison as metrics: `<name>` with `<name>.ci95-low` and
//! `<name>.ci95-high` (`macvlan-minus-bridge`), or, for a paired comparison, one metric
//! named `… minus …` with `difference CI low` and `difference CI high`.

use nfvi_harness::results::CheckResult;

use crate::badge::xml_escape;

/// One comparison, ready to show.
pub(crate) struct Comparison {
    /// `macvlan − bridge`.
    pub name: String,
    /// `-2.77 µs`.
    pub estimate: String,
    /// `-2.82 to -2.58 µs`.
    pub interval: String,
    /// What the interval says: a difference, or none that is significant.
    pub reading: String,
    /// A number line with zero, the interval and the estimate (escaped SVG).
    pub figure: String,
}

fn unit(u: &str) -> &str {
    match u {
        "us" => "µs",
        other => other,
    }
}

fn figure(name: &str, est: f64, lo: f64, hi: f64, unit: &str) -> String {
    let (w, h, pad) = (300.0, 44.0, 36.0);
    // The axis spans the interval and zero, with a margin.
    let (min, max) = (lo.min(est).min(0.0), hi.max(est).max(0.0));
    let margin = ((max - min) * 0.08).max(f64::EPSILON);
    let (min, max) = (min - margin, max + margin);
    let x = |v: f64| pad + (v - min) / (max - min) * (w - 2.0 * pad);
    let colour = if lo > 0.0 || hi < 0.0 {
        "#0b5cad"
    } else {
        "#5b6670"
    };
    format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" role="img" aria-label="{t}"><title>{t}</title><line x1="{pad}" y1="20" x2="{r}" y2="20" stroke="#ccd"/><line x1="{z:.1}" y1="8" x2="{z:.1}" y2="32" stroke="#888" stroke-dasharray="3,2"/><text x="{z:.1}" y="42" font-size="9" text-anchor="middle" fill="#444">0</text><rect x="{l:.1}" y="15" width="{cw:.1}" height="10" fill="{colour}" fill-opacity="0.25" stroke="{colour}"/><circle cx="{e:.1}" cy="20" r="3.5" fill="{colour}"/><text x="{lt:.1}" y="23" font-size="9" text-anchor="end" fill="#444">{lo:.2}</text><text x="{ht:.1}" y="23" font-size="9" text-anchor="start" fill="#444">{hi:.2}</text></svg>"##,
        t = xml_escape(&format!(
            "{name}: {est:.2} {unit}, 95% confidence interval {lo:.2} to {hi:.2} {unit}"
        )),
        r = w - pad,
        z = x(0.0),
        l = x(lo),
        cw = (x(hi) - x(lo)).max(1.0),
        e = x(est),
        lt = x(lo) - 3.0,
        ht = x(hi) + 3.0,
    )
}

/// The comparisons a check's metrics hold, in the order it recorded them.
pub(crate) fn comparisons(c: &CheckResult) -> Vec<Comparison> {
    let m = &c.evidence.metrics;
    let mut found = Vec::new();
    let mut push = |name: &str, est: &nfvi_harness::Metric, lo: f64, hi: f64| {
        if !(est.value.is_finite() && lo.is_finite() && hi.is_finite()) {
            return;
        }
        let u = unit(&est.unit);
        let pretty = name.replace("-minus-", " − ").replace(" minus ", " − ");
        let (a, b) = pretty
            .split_once(" − ")
            .unwrap_or(("the first", "the second"));
        let time = matches!(u, "µs" | "ms" | "s" | "ns");
        let (less, more) = if time {
            ("faster", "slower")
        } else {
            ("lower", "higher")
        };
        let reading = if lo > 0.0 {
            format!("{a} is {more} than {b}: the whole interval is above 0")
        } else if hi < 0.0 {
            format!("{a} is {less} than {b}: the whole interval is below 0")
        } else {
            "no significant difference: the interval contains 0".to_owned()
        };
        found.push(Comparison {
            figure: figure(&pretty, est.value, lo, hi, u),
            estimate: format!("{:+.2} {u}", est.value),
            interval: format!("{lo:+.2} to {hi:+.2} {u}"),
            reading,
            name: pretty,
        });
    };
    for (name, est) in m {
        if name.ends_with(".ci95-low") || name.ends_with(".ci95-high") {
            continue;
        }
        let low = m.get(&format!("{name}.ci95-low"));
        let high = m.get(&format!("{name}.ci95-high"));
        if let (Some(lo), Some(hi)) = (low, high) {
            push(name, est, lo.value, hi.value);
        } else if name.contains(" minus ")
            && let (Some(lo), Some(hi)) = (m.get("difference CI low"), m.get("difference CI high"))
        {
            push(name, est, lo.value, hi.value);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use nfvi_harness::Metric;

    use super::*;

    fn check(metrics: &[(&str, f64)]) -> CheckResult {
        let mut c: CheckResult = serde_json::from_value(serde_json::json!({
            "id": "datapath.latency.x", "title": "t", "area": "datapath", "requirements": [],
            "severity": "info", "effective_severity": "info", "outcome": "passed",
            "message": "", "duration_secs": 0.0, "needs": [], "side_effects": "",
            "cleanup_policy": ""
        }))
        .unwrap();
        for (k, v) in metrics {
            c.evidence.metrics.insert(
                (*k).to_owned(),
                Metric {
                    value: *v,
                    unit: "us".into(),
                },
            );
        }
        c
    }

    #[test]
    fn comparisons_are_found_in_both_spellings() {
        let c = check(&[
            ("bridge.p50", 11.7),
            ("macvlan-minus-bridge", -2.77),
            ("macvlan-minus-bridge.ci95-low", -2.82),
            ("macvlan-minus-bridge.ci95-high", -2.58),
            ("lonely-minus-x", 1.0),
        ]);
        let found = comparisons(&c);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].name, "macvlan − bridge");
        assert_eq!(found[0].estimate, "-2.77 µs");
        assert_eq!(found[0].interval, "-2.82 to -2.58 µs");
        assert_eq!(
            found[0].reading,
            "macvlan is faster than bridge: the whole interval is below 0"
        );
        let c = check(&[
            ("same minus cross", 0.4),
            ("difference CI low", -0.1),
            ("difference CI high", 0.9),
        ]);
        let found = comparisons(&c);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].name, "same − cross");
        assert!(found[0].reading.starts_with("no significant"));
        // Nothing to compare, and a value that is not a number, give nothing.
        assert!(comparisons(&check(&[("p50", 1.0)])).is_empty());
        let c = check(&[
            ("a-minus-b", f64::NAN),
            ("a-minus-b.ci95-low", 0.0),
            ("a-minus-b.ci95-high", 1.0),
        ]);
        assert!(comparisons(&c).is_empty());
    }
}
