//! What Tempest leaves in Keystone when a run is stopped before its classes tear down
//! (Ctrl-C, the deadline): its dynamic credentials (`tempest-<Class>-<number>` projects and
//! their users) and what the tests themselves made with `rand_name` (`tempest-user--<n>`,
//! projects, groups, roles, domains). The names present before the run are noted; after it,
//! those that appeared during it are deleted, and the evidence says which.
//!
//! A run killed outright (SIGKILL, a lost host) never gets to that sweep, so the list taken
//! before the run is also written to the run's ledger ([`SNAPSHOT`]). `run --resume` reads it
//! back and first deletes what appeared since the killed run started ([`settle_killed`]).

use nfvi_harness::ledger::{Ledger, LedgerMode, TestRecord, TestStatus};
use nfvi_suite_kolla::Secret;
use serde_json::Value;

/// Tempest's objects in Keystone, as (kind, id, name).
pub type Found = Vec<(&'static str, String, String)>;

/// The ledger stream holding the `tempest-*` objects Keystone held before the
/// run: one record per object (`projects <id>`, its name as the detail) and [`LISTED`].
pub const SNAPSHOT: &str = "tempest:keystone-before";

/// The record saying the list was taken (it may be empty).
const LISTED: &str = "listed";

/// The kinds of Keystone objects swept, in the order they are deleted (a domain last: it
/// must be disabled first, and deleting it takes what is left in it).
const KINDS: [&str; 5] = ["users", "groups", "projects", "roles", "domains"];

/// Whether a Keystone object's name is one Tempest makes: its dynamic credentials'
/// `tempest-<Class>-<digits>` (a user's followed by `-project-<role>` or `-<role>`), or a
/// test's `rand_name`, `tempest-<name>-<random number>` (`tempest-user--178632570`): a
/// segment of at least six digits (random numbers below 100000 are one in 20,000). An operator's
/// `tempest-ci-project` is neither.
pub fn tempest_made(name: &str) -> bool {
    let Some(rest) = name.strip_prefix("tempest-") else {
        return false;
    };
    let random = rest
        .split('-')
        .any(|p| p.len() >= 6 && p.chars().all(|c| c.is_ascii_digit()));
    if random
        && rest
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return true;
    }
    let mut parts = rest.split('-');
    let class = parts.next().unwrap_or("");
    let number = parts.next().unwrap_or("");
    !class.is_empty()
        && class.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !number.is_empty()
        && number.chars().all(|c| c.is_ascii_digit())
        && parts.all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
}

/// The ledger records of the list taken before the run.
pub fn snapshot(before: &Found) -> Vec<TestRecord> {
    let record = |test: String, detail: &str| TestRecord {
        stream: SNAPSHOT.to_owned(),
        test,
        status: TestStatus::Skipped,
        detail: Some(detail.to_owned()),
        secs: 0.0,
        carried_from: None,
    };
    // The `listed` record last: a write the kill tore leaves no list rather than a short one
    // (which would make objects older than the run look new).
    before
        .iter()
        .map(|(kind, id, name)| record(format!("{kind} {id}"), name))
        .chain(std::iter::once(record(
            LISTED.to_owned(),
            "the tempest-* objects in Keystone before the run",
        )))
        .collect()
}

/// The list a run wrote to its ledger, if it wrote one (an object of another kind, or a
/// record without a name, is not one the run could have listed: skipped).
pub fn from_snapshot(records: &[TestRecord]) -> Option<Found> {
    if !records.iter().any(|r| r.test == LISTED) {
        return None;
    }
    Some(
        records
            .iter()
            .filter_map(|r| {
                let (kind, id) = r.test.split_once(' ')?;
                let kind = KINDS.into_iter().find(|k| *k == kind)?;
                Some((kind, id.to_owned(), r.detail.clone()?))
            })
            .collect(),
    )
}

/// Before a run: on `--resume`, deletes the `tempest-*` objects that appeared
/// since the killed run listed Keystone (its classes never tore down, and its sweep never
/// ran) and lists `before` again; otherwise writes `before` to the ledger for a resume to
/// come. What was found and done goes to `notes`.
pub async fn settle_killed(
    http: &reqwest::Client,
    token: &Secret,
    base: &str,
    ledger: &Ledger,
    before: &mut Found,
    notes: &mut Vec<String>,
) {
    if ledger.mode() == Some(LedgerMode::Resume) {
        let Some(killed) = from_snapshot(ledger.prior(SNAPSHOT)) else {
            notes.push(
                "not looked for what the killed run left: it was killed before it listed Keystone"
                    .to_owned(),
            );
            return record(ledger, before, notes);
        };
        let (removed, failed) = remove_new(http, token, base, &killed, before).await;
        if !removed.is_empty() {
            crate::run::progress(format!(
                "removed {} object(s) the killed run left in Keystone: {}",
                removed.len(),
                removed.join(", ")
            ));
            notes.push(format!(
                "removed, left by the killed run: {}",
                removed.join(", ")
            ));
        }
        for f in failed {
            notes.push(format!("NOT removed (left by the killed run): {f}"));
        }
        match list(http, token, base).await {
            // Added to the killed run's list: a second kill's resume removes only what
            // appeared after this one started.
            Ok(now) => {
                *before = now;
                record(ledger, before, notes);
            }
            Err(e) => notes.push(format!("listing Keystone again failed: {e}")),
        }
        return;
    }
    record(ledger, before, notes);
}

fn record(ledger: &Ledger, before: &Found, notes: &mut Vec<String>) {
    if let Err(e) = ledger.append(&snapshot(before)) {
        notes.push(format!(
            "the list of Keystone's tempest-* objects was not written to the ledger (a resume could not remove what a kill leaves): {e}"
        ));
    }
}

/// The `tempest-*` objects of Keystone, as (kind, id, name).
pub async fn list(http: &reqwest::Client, token: &Secret, base: &str) -> Result<Found, String> {
    let mut out = Vec::new();
    for kind in KINDS {
        let url = format!("{base}/{kind}");
        let resp = http
            .get(&url)
            .header("X-Auth-Token", token.expose())
            .send()
            .await
            .map_err(|e| format!("GET {url}: {}", nfvi_harness::error_with_causes(&e)))?;
        let status = resp.status();
        if !status.is_success() {
            return Err(format!("GET {url} answered {status}"));
        }
        let v: Value = resp.json().await.map_err(|e| format!("GET {url}: {e}"))?;
        for x in v[kind].as_array().into_iter().flatten() {
            let (Some(id), Some(name)) = (x["id"].as_str(), x["name"].as_str()) else {
                continue;
            };
            if tempest_made(name) {
                out.push((kind, id.to_owned(), name.to_owned()));
            }
        }
    }
    Ok(out)
}

/// Deletes those of `now` that `before` did not hold (in [`KINDS`]' order; a domain is
/// disabled first, as Keystone requires); returns the names deleted and the deletions that
/// failed.
pub async fn remove_new(
    http: &reqwest::Client,
    token: &Secret,
    base: &str,
    before: &[(&'static str, String, String)],
    now: &[(&'static str, String, String)],
) -> (Vec<String>, Vec<String>) {
    let (mut removed, mut failed) = (Vec::new(), Vec::new());
    let mut new: Vec<&(&str, String, String)> = now
        .iter()
        .filter(|x| !before.iter().any(|b| b.1 == x.1))
        .collect();
    new.sort_by_key(|x| KINDS.iter().position(|k| *k == x.0));
    for (kind, id, name) in new {
        let url = format!("{base}/{kind}/{id}");
        let enabled = |on: bool| {
            http.patch(&url)
                .header("X-Auth-Token", token.expose())
                .json(&serde_json::json!({"domain": {"enabled": on}}))
                .send()
        };
        if *kind == "domains" {
            // A refusal shows in the DELETE's answer below.
            let _ = enabled(false).await;
        }
        let answer = http
            .delete(&url)
            .header("X-Auth-Token", token.expose())
            .send()
            .await;
        if *kind == "domains" && !answer.as_ref().is_ok_and(|r| r.status().is_success()) {
            // Not deleted: not left disabled either (its users could not log in).
            let _ = enabled(true).await;
        }
        match answer {
            Ok(r) if r.status().is_success() || r.status().as_u16() == 404 => {
                removed.push(format!("{} {name}", kind.trim_end_matches('s')));
            }
            Ok(r) => failed.push(format!("DELETE {url} ({name}) answered {}", r.status())),
            Err(e) => failed.push(format!(
                "DELETE {url} ({name}): {}",
                nfvi_harness::error_with_causes(&e)
            )),
        }
    }
    (removed, failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_before_the_run_survives_the_ledger_and_nothing_else_reads_as_it() {
        let before: Found = vec![
            ("projects", "p1".into(), "tempest-A-1".into()),
            ("users", "u1".into(), "tempest-A-1-admin".into()),
        ];
        let records = snapshot(&before);
        assert!(records.iter().all(|r| r.stream == SNAPSHOT));
        assert_eq!(from_snapshot(&records), Some(before));
        // An empty list is a list (nothing to keep), not a missing one.
        assert_eq!(from_snapshot(&snapshot(&Vec::new())), Some(Vec::new()));
        // No "listed" record: the killed run never listed Keystone.
        assert_eq!(from_snapshot(&records[..records.len() - 1]), None);
        // Records a hostile or damaged ledger may hold are skipped, not trusted or panicked on.
        let mut odd = snapshot(&Vec::new());
        for test in ["services s1", "projects", "users u2"] {
            odd.push(TestRecord {
                test: test.into(),
                detail: None,
                ..records[1].clone()
            });
        }
        assert_eq!(from_snapshot(&odd), Some(Vec::new()));
    }

    #[test]
    fn only_the_names_dynamic_credentials_make_are_tempests() {
        for n in [
            "tempest-EndPointsTestJSON-941276058",
            "tempest-EndPointsTestJSON-941276058-project-admin",
            "tempest-DomainsTestJSON-859768487-project-member",
            "tempest-TestNetworkBasicOps-1",
            "tempest-user--178632570",
            "tempest-project--1790709689",
            "tempest-test_domain-1046573434",
        ] {
            assert!(tempest_made(n), "{n}");
        }
        for n in [
            "admin",
            "tempest",
            "tempest-",
            "tempest-ci-project",
            "tempest-Class-",
            "tempest-Class-12a",
            "tempest-Class-1--x",
            "my-tempest-Class-1",
            "tempest-a b-12345",
        ] {
            assert!(!tempest_made(n), "{n}");
        }
    }
}
