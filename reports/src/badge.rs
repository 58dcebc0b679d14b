//! The conformance badge: a shields-style SVG naming the suite version and the verdict,
//! with the waivers a conformant verdict rests on ("conformant with 2 waivers").

use nfvi_harness::results::{RunResults, Verdict};

/// Escapes text for SVG/XML content and attributes.
pub(crate) fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if (c as u32) < 0x20 && c != '\n' && c != '\t' => {}
            c => out.push(c),
        }
    }
    out
}

/// The badge text and colour for a verdict.
pub(crate) fn verdict_label(verdict: Verdict) -> (&'static str, &'static str) {
    match verdict {
        Verdict::Conformant => ("conformant", "#2e7d32"),
        Verdict::NonConformant => ("not conformant", "#c62828"),
        Verdict::Incomplete => ("incomplete", "#ef6c00"),
    }
}

/// An SVG badge: `<suite version> | <verdict>`, the verdict with its waivers.
pub fn badge_svg(results: &RunResults) -> String {
    let left = format!("nfvi-verify {}", results.suite.version);
    let (_, colour) = verdict_label(results.verdict);
    let right = crate::triage::verdict_words(results);
    // Approximate text widths (Verdana 11px averages about 6.5 px per character).
    let lw = 12 + (left.chars().count() as u32 * 13).div_ceil(2);
    let rw = 12 + (right.chars().count() as u32 * 13).div_ceil(2);
    let w = lw + rw;
    let (left, right) = (xml_escape(&left), xml_escape(&right));
    format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="20" role="img" aria-label="{left}: {right}"><title>{left}: {right}</title><rect width="{lw}" height="20" fill="#555"/><rect x="{lw}" width="{rw}" height="20" fill="{colour}"/><g fill="#fff" font-family="Verdana,DejaVu Sans,sans-serif" font-size="11" text-anchor="middle"><text x="{lx}" y="14">{left}</text><text x="{rx}" y="14">{right}</text></g></svg>"##,
        lx = lw / 2,
        rx = lw + rw / 2,
    )
}
