//! Waivers as data: a TOML file (`run --waivers FILE`) that names failures a certification
//! accepts for now, each with a reason, an owner and an expiry date.
//!
//! A waived failure stays a failure: its outcome is `failed`, it carries the waiver that
//! excused it, and it is counted apart (`totals.waived`); it no longer decides the verdict.
//! Only failures are waived, never errors or timeouts (those say the harness could not
//! decide, which no waiver changes). A waiver past its expiry date does not apply; one that
//! would cover a check of a requirement the suite declares `unwaivable` does not apply
//! either, and makes the run not certifiable. Both, and waivers that matched nothing, are
//! listed in results.json and every report.
//!
//! ```toml
//! [[waiver]]
//! id = "W-17"                          # optional; default "waiver-<n>" by position
//! checks = ["cni.CNI-VER-002"]         # globs over check IDs or covered requirement IDs
//! node = "worker-*"                    # optional glob: only on these nodes
//! subject = "bridge"                   # optional glob: only for this plugin/container
//! reason = "plugin 1.1.1 prints no cniVersion list; fixed in 1.2"
//! owner = "netops@example.com"
//! ticket = "https://tracker.example.com/NFVI-1234"   # optional
//! expires = 2027-03-31                 # a TOML date; the waiver holds through that day
//! ```

use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::glob;
use crate::outcome::Status;
use crate::results::CheckResult;

/// The file as written.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WaiversFile {
    /// The waivers, in the order they are tried.
    #[serde(default)]
    pub waiver: Vec<WaiverEntry>,
}

/// One waiver as written.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WaiverEntry {
    /// A name for reports; default `waiver-<n>` (1-based position in the file).
    #[serde(default)]
    pub id: Option<String>,
    /// Globs (`*` any run, `?` one character) over check IDs or the requirement IDs a check
    /// covers, as `--filter` takes them.
    pub checks: Vec<String>,
    /// Only results on a node matching this glob.
    #[serde(default)]
    pub node: Option<String>,
    /// Only results about a subject (plugin, container) matching this glob.
    #[serde(default)]
    pub subject: Option<String>,
    /// Why the failure is accepted.
    pub reason: String,
    /// Who answers for it.
    pub owner: String,
    /// Where it is tracked (an http or https URL).
    #[serde(default)]
    pub ticket: Option<String>,
    /// The last day it applies, a TOML date such as `2027-03-31`.
    #[schemars(with = "String")]
    pub expires: toml::value::Datetime,
}

/// A validated waiver.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Waiver {
    /// Its name.
    pub id: String,
    /// Globs over check or requirement IDs.
    pub checks: Vec<String>,
    /// Node glob.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// Subject glob.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// Why.
    pub reason: String,
    /// Who.
    pub owner: String,
    /// Tracking URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ticket: Option<String>,
    /// Last day it applies.
    pub expires: NaiveDate,
}

impl Waiver {
    /// Whether it names this result (whatever its outcome, expiry or the suite's rules).
    pub fn covers(&self, c: &CheckResult) -> bool {
        let named = self.checks.iter().any(|p| {
            glob::matches(p, &c.id) || c.requirements.iter().any(|r| glob::matches(p, r.as_str()))
        });
        let on = |pattern: &Option<String>, value: &Option<String>| match pattern {
            None => true,
            Some(p) => value.as_deref().is_some_and(|v| glob::matches(p, v)),
        };
        named && on(&self.node, &c.node) && on(&self.subject, &c.subject)
    }

    /// Whether it has expired on `day`.
    pub fn expired_on(&self, day: NaiveDate) -> bool {
        day > self.expires
    }
}

/// A waivers file, read and validated.
#[derive(Clone, Debug, PartialEq)]
pub struct Waivers {
    /// The file.
    pub file: PathBuf,
    /// Its bytes' SHA-256 is not computed here (the core has no hash); the bytes are kept so
    /// the run can copy the file as used next to its results.
    pub text: String,
    /// The waivers, in file order.
    pub waivers: Vec<Waiver>,
}

/// A waivers file that cannot be used: what is wrong, where, and what was expected.
#[derive(Debug, thiserror::Error)]
#[error("{}:{line}: {message}", file.display())]
pub struct WaiverError {
    /// The file.
    pub file: PathBuf,
    /// 1-based line (1 when the problem is the whole file).
    pub line: usize,
    /// What is wrong and what was expected.
    pub message: String,
}

impl Waivers {
    /// Reads and validates a waivers file.
    pub fn load(path: &Path) -> Result<Self, WaiverError> {
        let text = std::fs::read_to_string(path).map_err(|e| WaiverError {
            file: path.to_owned(),
            line: 1,
            message: format!("cannot read the waivers file: {e}"),
        })?;
        Self::parse(path, &text)
    }

    /// Parses and validates waivers from `text`; `path` names it in messages.
    pub fn parse(path: &Path, text: &str) -> Result<Self, WaiverError> {
        let line_of = |offset: usize| text[..offset.min(text.len())].matches('\n').count() + 1;
        let err = |line: usize, message: String| WaiverError {
            file: path.to_owned(),
            line,
            message,
        };
        let file: WaiversFile = toml::from_str(text).map_err(|e| {
            err(
                e.span().map_or(1, |s| line_of(s.start)),
                format!(
                    "{}; expected [[waiver]] tables with checks, reason, owner, expires (and optionally id, node, subject, ticket)",
                    e.message().trim_end()
                ),
            )
        })?;
        // Lines of the `[[waiver]]` headers, so that a problem in one names where it is.
        let headers: Vec<usize> = text
            .lines()
            .enumerate()
            .filter(|(_, l)| l.trim_start().starts_with("[[waiver]]"))
            .map(|(i, _)| i + 1)
            .collect();
        let mut waivers: Vec<Waiver> = Vec::with_capacity(file.waiver.len());
        for (n, w) in file.waiver.into_iter().enumerate() {
            let line = headers.get(n).copied().unwrap_or(1);
            let id = w.id.unwrap_or_else(|| format!("waiver-{}", n + 1));
            let bad = |m: &str| err(line, format!("waiver `{id}`: {m}"));
            if w.checks.is_empty() || w.checks.iter().any(|p| p.trim().is_empty()) {
                return Err(bad(
                    "`checks` must list at least one non-empty glob over check or requirement IDs",
                ));
            }
            if w.reason.trim().is_empty() {
                return Err(bad("`reason` must say why the failure is accepted"));
            }
            if w.owner.trim().is_empty() {
                return Err(bad("`owner` must name who answers for it"));
            }
            if let Some(t) = &w.ticket
                && !(t.starts_with("https://") || t.starts_with("http://"))
            {
                return Err(bad(&format!(
                    "`ticket = \"{t}\"` is not an http(s) URL; expected something like https://tracker.example.com/NFVI-1234"
                )));
            }
            let expires = match (w.expires.date, w.expires.time) {
                (Some(d), None) => {
                    NaiveDate::from_ymd_opt(i32::from(d.year), u32::from(d.month), u32::from(d.day))
                }
                _ => None,
            }
            .ok_or_else(|| {
                bad(&format!(
                    "`expires = {}` is not a date; expected a TOML date such as 2027-03-31",
                    w.expires
                ))
            })?;
            if waivers.iter().any(|o| o.id == id) {
                return Err(bad("the same `id` is used twice"));
            }
            waivers.push(Waiver {
                id,
                checks: w.checks,
                node: w.node,
                subject: w.subject,
                reason: w.reason,
                owner: w.owner,
                ticket: w.ticket,
                expires,
            });
        }
        Ok(Self {
            file: path.to_owned(),
            text: text.to_owned(),
            waivers,
        })
    }
}

/// A waiver as a result carries it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct AppliedWaiver {
    /// The waiver's ID.
    pub id: String,
    /// Why.
    pub reason: String,
    /// Who.
    pub owner: String,
    /// Tracking URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ticket: Option<String>,
    /// Last day it applies.
    pub expires: NaiveDate,
}

/// What became of one waiver in a run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct WaiverUse {
    /// The waiver.
    #[serde(flatten)]
    pub waiver: Waiver,
    /// The results it excused (`check-id` or `check-id [node]`, with `(subject)`).
    pub applied_to: Vec<String>,
    /// Failures it named but did not excuse because it had expired.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub expired_for: Vec<String>,
    /// Failures it named but could not excuse: they cover a requirement the suite declares
    /// unwaivable.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub forbidden_for: Vec<String>,
    /// Whether it had expired on the day of the run.
    pub expired: bool,
}

impl WaiverUse {
    /// Whether it named no failure at all.
    pub fn unmatched(&self) -> bool {
        self.applied_to.is_empty() && self.expired_for.is_empty() && self.forbidden_for.is_empty()
    }
}

/// The waivers of a run: the file and what each waiver did.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct WaiverReport {
    /// The file as given.
    pub file: String,
    /// The day expiry was judged on (the run's start, UTC).
    pub judged_on: NaiveDate,
    /// Every waiver of the file, in order.
    pub waivers: Vec<WaiverUse>,
}

impl WaiverReport {
    /// Waivers past their expiry date.
    pub fn expired(&self) -> impl Iterator<Item = &WaiverUse> {
        self.waivers.iter().filter(|w| w.expired)
    }

    /// Waivers that named no failure.
    pub fn unmatched(&self) -> impl Iterator<Item = &WaiverUse> {
        self.waivers.iter().filter(|w| w.unmatched())
    }

    /// Waivers that tried to excuse an unwaivable requirement.
    pub fn forbidden(&self) -> impl Iterator<Item = &WaiverUse> {
        self.waivers.iter().filter(|w| !w.forbidden_for.is_empty())
    }
}

/// How a result is named in waiver lists.
pub fn result_name(c: &CheckResult) -> String {
    let mut s = c.id.clone();
    if let Some(node) = &c.node {
        s.push_str(&format!(" [{node}]"));
    }
    if let Some(subject) = &c.subject {
        s.push_str(&format!(" ({subject})"));
    }
    s
}

/// Applies `waivers` (from `file`) to the failures among `checks` (setting
/// [`CheckResult::waiver`]) and reports what each waiver did. Every other result is left
/// alone, and any waiver a result carried before is removed first, so applying twice gives
/// the same result. `unwaivable` are the suite's globs over requirement IDs; `day` is the
/// day expiry is judged on.
pub fn apply(
    file: &str,
    waivers: &[Waiver],
    checks: &mut [CheckResult],
    unwaivable: &[String],
    day: NaiveDate,
) -> WaiverReport {
    let mut uses: Vec<WaiverUse> = waivers
        .iter()
        .map(|w| WaiverUse {
            waiver: w.clone(),
            applied_to: Vec::new(),
            expired_for: Vec::new(),
            forbidden_for: Vec::new(),
            expired: w.expired_on(day),
        })
        .collect();
    for c in checks.iter_mut() {
        c.waiver = None;
        if c.outcome != Status::Failed {
            continue;
        }
        let forbidden = c
            .requirements
            .iter()
            .any(|r| unwaivable.iter().any(|p| glob::matches(p, r.as_str())));
        // The first waiver in force that names the failure excuses it; failing that, the
        // first that names it records why it could not.
        let covering: Vec<usize> = (0..uses.len())
            .filter(|&i| uses[i].waiver.covers(c))
            .collect();
        let Some(&first) = covering.first() else {
            continue;
        };
        let name = result_name(c);
        let in_force = covering.iter().copied().find(|&i| !uses[i].expired);
        match (forbidden, in_force) {
            (true, _) => uses[first].forbidden_for.push(name),
            (false, None) => uses[first].expired_for.push(name),
            (false, Some(i)) => {
                let u = &mut uses[i];
                u.applied_to.push(name);
                c.waiver = Some(AppliedWaiver {
                    id: u.waiver.id.clone(),
                    reason: u.waiver.reason.clone(),
                    owner: u.waiver.owner.clone(),
                    ticket: u.waiver.ticket.clone(),
                    expires: u.waiver.expires,
                });
            }
        }
    }
    WaiverReport {
        file: file.to_owned(),
        judged_on: day,
        waivers: uses,
    }
}
