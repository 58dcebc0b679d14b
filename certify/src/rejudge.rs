//! The verdict and certifiability recomputed from a bundle's raw results, its own reference
//! model and its own waivers file, by the harness's rules (`nfvi_harness::judge::rejudge`,
//! the same code a run judges itself with), and compared with what results.json records.

use std::path::Path;

use nfvi_harness::judge;
use nfvi_harness::results::{RunResults, Verdict};
use nfvi_harness::waiver::Waivers;
use nfvi_reference_model::ReferenceModel;

/// The checks a binary declares: its version, and for each check ID the declared severity
/// and the requirements it covers.
#[derive(Clone, Debug, Default)]
pub struct Declared {
    /// The binary's version.
    pub version: String,
    /// Check ID → (declared severity, covered requirement IDs).
    pub checks: std::collections::HashMap<String, (nfvi_harness::check::Severity, Vec<String>)>,
}

/// Results of a run made by this very version must declare what this build declares: a
/// severity or a requirement list changed by hand is named. Another version may declare
/// otherwise, so nothing is compared then.
fn declared_problems(r: &RunResults, declared: &Declared) -> Vec<String> {
    if r.tool.version != declared.version {
        return Vec::new();
    }
    let mut problems = Vec::new();
    for c in &r.checks {
        match declared.checks.get(&c.id) {
            None => problems.push(format!(
                "{}: not a check of nfvi-verify {}",
                c.id, declared.version
            )),
            Some((severity, covers)) => {
                let recorded: Vec<&str> = c.requirements.iter().map(|q| q.as_str()).collect();
                if *severity != c.severity {
                    problems.push(format!(
                        "{}: recorded severity {}, nfvi-verify {} declares {}",
                        c.id, c.severity, declared.version, severity
                    ));
                }
                // The run's plan keeps a check's requirements as declared (in order).
                if recorded.iter().any(|q| !covers.iter().any(|d| d == q)) {
                    problems.push(format!(
                        "{}: records requirements it does not cover in nfvi-verify {}",
                        c.id, declared.version
                    ));
                }
            }
        }
    }
    problems.truncate(20);
    problems
}

/// What recomputing found.
#[derive(Clone, Debug, PartialEq)]
pub struct Rejudged {
    /// The verdict recomputed (kebab-case).
    pub verdict: String,
    /// Whether the run is certifiable (and conformant).
    pub certifiable: bool,
    /// Why not, one reason each.
    pub reasons: Vec<String>,
    /// Contradictions between the results, the model and the waivers (tampering, or a tool
    /// that judged by other rules).
    pub problems: Vec<String>,
    /// What each waiver did, one line each (applied, expired, matched nothing, forbidden).
    pub waivers: Vec<String>,
}

/// One line per waiver: what it excused, or why it excused nothing.
fn waiver_lines(report: &nfvi_harness::waiver::WaiverReport) -> Vec<String> {
    report
        .waivers
        .iter()
        .map(|u| {
            let w = &u.waiver;
            let who = format!(
                "{}; owner {}; expires {}{}",
                w.reason,
                w.owner,
                w.expires,
                w.ticket
                    .as_deref()
                    .map(|t| format!("; {t}"))
                    .unwrap_or_default()
            );
            if !u.forbidden_for.is_empty() {
                format!(
                    "{} FORBIDDEN by the suite for {} (not applied)",
                    w.id,
                    u.forbidden_for.join(", ")
                )
            } else if !u.applied_to.is_empty() {
                format!("{} waived {} ({who})", w.id, u.applied_to.join(", "))
            } else if u.expired {
                let what = if u.expired_for.is_empty() {
                    "named no failure".to_owned()
                } else {
                    format!("did not excuse {}", u.expired_for.join(", "))
                };
                format!("{} EXPIRED on {}: {what}", w.id, w.expires)
            } else {
                format!("{} matched no failure ({})", w.id, w.checks.join(", "))
            }
        })
        .collect()
}

/// Recomputes the verdict and certifiability of `r` with `model` (the bundle's own) and
/// `waivers` (the text of the bundle's waivers.toml, if it has one).
pub fn rejudge(
    r: &RunResults,
    model: Result<&ReferenceModel, &str>,
    waivers: Option<&[u8]>,
    declared: Option<&Declared>,
) -> Rejudged {
    let mut problems = Vec::new();
    let mut reasons = Vec::new();
    let failed = |problems: Vec<String>| Rejudged {
        verdict: "unknown".to_owned(),
        certifiable: false,
        reasons: Vec::new(),
        problems,
        waivers: Vec::new(),
    };
    let model = match model {
        Ok(m) => m,
        Err(e) => {
            return failed(vec![format!(
                "the bundle's reference model does not load: {e}"
            )]);
        }
    };
    let Some(suite) = model.suite(&r.suite.name) else {
        return failed(vec![format!(
            "the bundle's reference model has no suite `{}`",
            r.suite.name
        )]);
    };
    if suite.version != r.suite.version {
        reasons.push(format!(
            "the run's suite version {} differs from the bundle's model ({})",
            r.suite.version, suite.version
        ));
    }
    let parsed = match (waivers, &r.waivers) {
        (None, None) => None,
        (None, Some(w)) => {
            return failed(vec![format!(
                "results.json records waivers from {} but the bundle has no waivers.toml",
                w.file
            )]);
        }
        (Some(_), None) => {
            return failed(vec![
                "the bundle has a waivers.toml but results.json records no waivers".to_owned(),
            ]);
        }
        (Some(bytes), Some(recorded)) => {
            let text = String::from_utf8_lossy(bytes);
            match Waivers::parse(Path::new("waivers.toml"), &text) {
                Ok(w) => Some((recorded.file.clone(), w.waivers)),
                Err(e) => return failed(vec![format!("the bundle's {e}")]),
            }
        }
    };
    let j = judge::rejudge(
        r,
        model,
        suite,
        parsed
            .as_ref()
            .map(|(file, list)| (file.as_str(), list.as_slice())),
    );
    problems.extend(j.problems.iter().cloned());
    if let Some(d) = declared {
        problems.extend(declared_problems(r, d));
    }
    if j.verdict != r.verdict {
        problems.push(format!(
            "results.json records the verdict {}, its checks give {}",
            r.verdict.as_str(),
            j.verdict.as_str()
        ));
    }
    if j.totals != r.totals {
        problems.push(format!(
            "results.json records totals that its checks do not give (recorded {:?}, recomputed {:?})",
            r.totals, j.totals
        ));
    }
    let differing: Vec<String> = r
        .requirements
        .iter()
        .zip(&j.statuses)
        .filter(|(q, (_, s))| q.status != *s)
        .map(|(q, (id, s))| {
            format!(
                "{id}: recorded {}, recomputed {}",
                q.status.as_str(),
                s.as_str()
            )
        })
        .collect();
    if !differing.is_empty() {
        problems.push(format!(
            "requirement statuses differ: {}",
            differing.join("; ")
        ));
    }
    if j.waivers != r.waivers {
        problems.push(
            "the waivers results.json records are not what applying the bundle's waivers.toml gives"
                .to_owned(),
        );
    }
    // The reason for unobserved mandatory requirements is recomputed from the statuses
    // checked above, and counts below whatever the bundle records: a bundle signed before
    // the rule is judged by it, not called tampered.
    let other = |c: &judge::Certification| -> Vec<String> {
        c.reasons
            .iter()
            .filter(|x| !x.contains(judge::UNOBSERVED))
            .cloned()
            .collect()
    };
    let (recorded, recomputed) = (other(&r.certification), other(&j.certification));
    if r.certification.certifiable != r.certification.reasons.is_empty() {
        problems.push(format!(
            "results.json records certifiable = {} with {} reason(s) it is not",
            r.certification.certifiable,
            r.certification.reasons.len()
        ));
    } else if recorded.is_empty() != recomputed.is_empty() {
        problems.push(format!(
            "results.json records certifiable = {}, its conditions give {}",
            r.certification.certifiable, j.certification.certifiable
        ));
    } else if recorded != recomputed {
        problems.push(format!(
            "results.json records other reasons it is not certifiable ({}) than its conditions give ({})",
            r.certification.reasons.join("; "),
            j.certification.reasons.join("; ")
        ));
    }
    if j.verdict != Verdict::Conformant {
        reasons.push(format!("the verdict is {}", j.verdict.as_str()));
    }
    reasons.extend(j.certification.reasons.iter().cloned());
    Rejudged {
        verdict: j.verdict.as_str().to_owned(),
        certifiable: reasons.is_empty() && problems.is_empty(),
        reasons,
        problems,
        waivers: j.waivers.as_ref().map(waiver_lines).unwrap_or_default(),
    }
}
