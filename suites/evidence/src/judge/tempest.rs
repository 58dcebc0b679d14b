//! Tempest tests against RA1's API requirements, by the service each test exercises
//! (`src/tempest.toml`). Tests are named by their dotted id, with their `id-<uuid>` (stable when
//! tests move between modules) where Tempest gives one.

use nfvi_harness::Outcome;
use serde::Deserialize;

use crate::model::{TempestTest, TestStatus};

/// One service of the mapping.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Service {
    /// `identity`: the check is `evidence.tempest.<name>`.
    pub name: String,
    /// The check's title.
    pub title: String,
    /// The RA1 requirement.
    pub requirement: String,
    /// Dotted-id prefixes of its tests.
    pub prefixes: Vec<String>,
}

impl Service {
    /// Whether `test` exercises this service (`setUpClass (tempest.api.x....)` included).
    pub fn matches(&self, test: &TempestTest) -> bool {
        let path = test
            .id
            .split_once(" (")
            .map_or(test.id.as_str(), |(_, class)| class.trim_end_matches(')'));
        self.prefixes.iter().any(|p| path.starts_with(p.as_str()))
    }
}

#[derive(Deserialize)]
struct Mapping {
    service: Vec<Service>,
}

/// The mapping compiled in (src/tempest.toml).
pub fn services() -> Vec<Service> {
    toml::from_str::<Mapping>(include_str!("../tempest.toml"))
        .expect("src/tempest.toml is valid (a test reads it)")
        .service
}

fn named(t: &TempestTest) -> String {
    match &t.uuid {
        Some(u) if !t.id.contains(u.as_str()) => format!("{} [id-{u}]", t.id),
        _ => t.id.clone(),
    }
}

/// Judges a service on the tests of the runs given; `None` when no test exercises it (the
/// check then says which evidence to give).
pub fn service(s: &Service, tests: &[&TempestTest]) -> Option<Outcome> {
    let mine: Vec<&&TempestTest> = tests.iter().filter(|t| s.matches(t)).collect();
    if mine.is_empty() {
        return None;
    }
    let count = |st| mine.iter().filter(|t| t.status == st).count();
    let (passed, skipped) = (count(TestStatus::Passed), count(TestStatus::Skipped));
    let bad: Vec<String> = mine
        .iter()
        .filter(|t| matches!(t.status, TestStatus::Failed | TestStatus::Incomplete))
        .map(|t| {
            if t.status == TestStatus::Incomplete {
                format!("{} (never finished)", named(t))
            } else {
                named(t)
            }
        })
        .collect();
    let o = if !bad.is_empty() {
        let shown: Vec<String> = bad.iter().take(10).cloned().collect();
        Outcome::fail(format!(
            "{} of {} Tempest test(s) of {} did not pass: {}{}",
            bad.len(),
            mine.len(),
            s.requirement,
            shown.join("; "),
            if bad.len() > 10 {
                format!("; and {} more", bad.len() - 10)
            } else {
                String::new()
            }
        ))
    } else if passed == 0 {
        Outcome::error(format!(
            "every one of the {} Tempest test(s) of {} was skipped: nothing verifies it",
            mine.len(),
            s.requirement
        ))
    } else {
        Outcome::pass(format!(
            "{passed} Tempest test(s) of {} passed, {skipped} skipped",
            s.requirement
        ))
    };
    Some(
        o.with_metric("tests_passed", passed as f64, "count")
            .with_metric("tests_failed", bad.len() as f64, "count")
            .with_metric("tests_skipped", skipped as f64, "count"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use nfvi_harness::Status;

    fn t(id: &str, status: TestStatus) -> TempestTest {
        TempestTest {
            id: id.into(),
            uuid: crate::model::tempest_uuid(id),
            status,
        }
    }

    #[test]
    fn the_mapping_reads_and_names_ra1() {
        let s = services();
        assert!(
            s.iter()
                .any(|s| s.name == "identity" && s.requirement == "int.api.01@ra1")
        );
        assert!(s.iter().all(|s| s.requirement.ends_with("@ra1")));
    }

    #[test]
    fn table() {
        use TestStatus::*;
        let identity = services()
            .into_iter()
            .find(|s| s.name == "identity")
            .unwrap();
        let ok = t(
            "tempest.api.identity.v3.T.test_a[id-11111111-2222-3333-4444-555555555555,smoke]",
            Passed,
        );
        let bad = t("tempest.api.identity.v3.T.test_b[id-abc]", Failed);
        let fixture = t("setUpClass (tempest.api.identity.admin.v3.T)", Failed);
        let skipped = t("tempest.api.identity.v3.T.test_c", Skipped);
        let other = t("tempest.api.compute.T.test_d", Failed);
        let rows: Vec<(Vec<&TempestTest>, Option<Status>, &str)> = vec![
            (
                vec![&ok, &skipped, &other],
                Some(Status::Passed),
                "1 Tempest test(s) of int.api.01@ra1 passed, 1 skipped",
            ),
            (vec![&ok, &bad], Some(Status::Failed), "test_b[id-abc]"),
            (vec![&ok, &fixture], Some(Status::Failed), "setUpClass"),
            (vec![&skipped], Some(Status::Error), "skipped"),
            (vec![&other], None, ""),
        ];
        for (tests, status, text) in rows {
            let o = service(&identity, &tests);
            assert_eq!(o.as_ref().map(|o| o.status), status);
            if let Some(o) = o {
                assert!(o.message.contains(text), "{}", o.message);
            }
        }
    }
}
