//! Inline SVG charts of a check's latency distributions: a CDF and a histogram per check,
//! every label escaped.

use nfvi_harness::results::CheckResult;

const COLOURS: [&str; 6] = [
    "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b",
];

/// CDF and density charts of the check's distributions (101 percentiles in µs each).
pub(super) fn latency_charts(c: &CheckResult) -> Vec<String> {
    use crate::badge::xml_escape;
    let series: Vec<(&str, &[f64])> = c
        .evidence
        .distributions
        .iter()
        .map(|(name, p)| (name.as_str(), p.values()))
        .collect();
    if series.is_empty() {
        return Vec::new();
    }
    // The x axis ends at the largest p99 so that millisecond preemption spikes do not squash
    // the body of the distributions; the tails are in the percentile table.
    let x_min = series
        .iter()
        .map(|(_, v)| v[0])
        .fold(f64::INFINITY, f64::min)
        .max(0.0);
    let x_max = series
        .iter()
        .map(|(_, v)| v[99])
        .fold(0.0, f64::max)
        .max(x_min + 1.0);
    let (w, h, l, b) = (560.0, 240.0, 48.0, 30.0);
    let sx = |x: f64| l + (x.clamp(x_min, x_max) - x_min) / (x_max - x_min) * (w - l - 10.0);
    let axes = |title: &str, y_label: &str| {
        let mut g = format!(
            r##"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" role="img" aria-label="{t}"><title>{t}</title><rect x="{l}" y="8" width="{pw}" height="{ph}" fill="#fff" stroke="#ccd"/>"##,
            t = xml_escape(title),
            pw = w - l - 10.0,
            ph = h - b - 8.0
        );
        for i in 0..=4 {
            let x = x_min + (x_max - x_min) * f64::from(i) / 4.0;
            g.push_str(&format!(r##"<text x="{:.1}" y="{}" font-size="10" text-anchor="middle" fill="#444">{x:.1}</text>"##, sx(x), h - b + 14.0));
        }
        g.push_str(&format!(r##"<text x="{:.1}" y="{}" font-size="10" text-anchor="middle" fill="#444">RTT (µs)</text><text x="10" y="20" font-size="10" fill="#444">{}</text>"##, l + (w - l) / 2.0, h - 4.0, xml_escape(y_label)));
        g
    };
    let legend = |g: &mut String| {
        for (i, (name, _)) in series.iter().enumerate() {
            let (c, y) = (COLOURS[i % COLOURS.len()], 14.0 + 12.0 * i as f64);
            g.push_str(&format!(
                r##"<rect x="{}" y="{y}" width="10" height="3" fill="{c}"/><text x="{}" y="{}" font-size="10" fill="#222">{}</text>"##,
                w - 110.0,
                w - 96.0,
                y + 4.0,
                xml_escape(name)
            ));
        }
    };
    let mut cdf = axes(
        "Cumulative distribution of RTT per path",
        "fraction of probes",
    );
    let sy = |p: f64| 8.0 + (1.0 - p) * (h - b - 8.0);
    for (i, (_, v)) in series.iter().enumerate() {
        let pts: Vec<String> = v
            .iter()
            .enumerate()
            .filter(|(_, x)| **x <= x_max)
            .map(|(q, x)| format!("{:.1},{:.1}", sx(*x), sy(q as f64 / 100.0)))
            .collect();
        cdf.push_str(&format!(
            r##"<polyline fill="none" stroke="{}" stroke-width="1.6" points="{}"/>"##,
            COLOURS[i % COLOURS.len()],
            pts.join(" ")
        ));
    }
    legend(&mut cdf);
    cdf.push_str("</svg>");
    // Histogram: 40 equal-width bins; the mass of each comes from the CDF, interpolated
    // between the recorded percentiles.
    let cdf_at = |v: &[f64], x: f64| -> f64 {
        match v.iter().position(|q| *q >= x) {
            None => 1.0,
            Some(0) => 0.0,
            Some(k) => {
                let (x0, x1) = (v[k - 1], v[k]);
                let frac = if x1 > x0 { (x - x0) / (x1 - x0) } else { 1.0 };
                ((k - 1) as f64 + frac) / 100.0
            }
        }
    };
    let bins = 40;
    let width = (x_max - x_min) / f64::from(bins);
    let masses: Vec<Vec<f64>> = series
        .iter()
        .map(|(_, v)| {
            (0..bins)
                .map(|k| {
                    let lo = x_min + width * f64::from(k);
                    cdf_at(v, lo + width) - cdf_at(v, lo)
                })
                .collect()
        })
        .collect();
    let peak = masses
        .iter()
        .flatten()
        .copied()
        .fold(0.0, f64::max)
        .max(f64::EPSILON);
    let mut dens = axes(
        "Histogram of RTT per path (40 bins up to the largest p99)",
        "share of probes",
    );
    for (i, m) in masses.iter().enumerate() {
        let mut pts = Vec::new();
        for (k, mass) in m.iter().enumerate() {
            let lo = x_min + width * k as f64;
            let y = 8.0 + (1.0 - mass / peak) * (h - b - 8.0);
            pts.push(format!("{:.1},{y:.1} {:.1},{y:.1}", sx(lo), sx(lo + width)));
        }
        dens.push_str(&format!(
            r##"<polyline fill="none" stroke="{}" stroke-width="1.4" points="{}"/>"##,
            COLOURS[i % COLOURS.len()],
            pts.join(" ")
        ));
    }
    legend(&mut dens);
    dens.push_str("</svg>");
    vec![cdf, dens]
}
