//! The checks: one per service, each judging its share of the run's one Tempest run.

use std::sync::Arc;
use std::time::Duration;

use nfvi_harness::{Check, CheckMeta, Severity, declare};
use nfvi_reference_model::Area;

use crate::area::TempestConfig;
use crate::run::Shared;
use crate::services::SERVICES;

/// The area's ID.
pub const AREA: Area = Area::new("tempest");

const EFFECTS: &str = "Tempest runs against the cloud: its dynamic credentials create a project and a user (named tempest-...) per test class with the admin credentials, and the tests create and delete what they test (users, roles, domains, images, volumes, networks, servers)";
const CLEANUP: &str = "Tempest deletes what each test class created at its teardown; the tempest-* users, groups, projects, roles and domains that appeared in Keystone during the run are deleted after it, also on Ctrl-C (a cleanup of the check that started the run); a run killed outright (SIGKILL) leaves them until `run --resume` of that run, which deletes those that appeared since the killed run listed Keystone (the list is in its upstream.journal) before it goes on (or `tempest cleanup`). tempest.conf and the workspace are in a private directory (0700) removed after the run; the password reaches Tempest only through its environment (OS_AUTH__ADMIN_PASSWORD, read by oslo.config), never a file";

/// The whole Tempest run must fit in a check's deadline (its own limit is
/// `tempest.timeout_minutes`, checked inside the run).
const DEADLINE: Duration = Duration::from_secs(7 * 24 * 3600);

/// Every check of the area.
pub fn checks() -> Vec<Arc<dyn Check>> {
    // The default full set of each service, as the traceability matrix shows it (a target may
    // change it: its results record the regex run).
    let defaults = crate::area::defaults().ok();
    SERVICES
        .iter()
        .map(|s| {
            let pick = |m: Option<&std::collections::BTreeMap<String, String>>| {
                m.and_then(|m| m.get(s.name))
                    .filter(|r| !r.is_empty())
                    .cloned()
            };
            let full = pick(defaults.as_ref().map(|d| &d.full));
            let exclude = pick(defaults.as_ref().map(|d| &d.exclude));
            let tests = match (full, exclude) {
                (Some(f), Some(x)) => format!("{f} minus {x}"),
                (Some(f), None) => f,
                (None, _) => s.prefixes.join(" "),
            };
            declare(
                CheckMeta::new(format!("tempest.{}", s.name), AREA, s.title)
                    .subject(s.name)
                    .covers(Severity::Must, s.covers)
                    .needs([nfvi_suite_kolla::cloud_need()])
                    .upstream("tempest", tests)
                    .side_effects(EFFECTS, CLEANUP)
                    .timeout(DEADLINE),
                move |cx| {
                    Box::pin(async move {
                        // The run's configuration is read here so that a bad table is the
                        // target's error before anything runs (Table::of), never a panic.
                        let _ = cx.target().config::<TempestConfig>();
                        let report = cx.shared::<Shared>().report(cx, s.name).await;
                        Ok(crate::judge::judge(s, &report))
                    })
                },
            )
            .into_check()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_check_runs_tempest_covers_ra1_and_states_its_effects() {
        let all = checks();
        assert_eq!(all.len(), 11);
        let identity = all[0].meta();
        assert_eq!(identity.id, "tempest.identity");
        assert_eq!(identity.covers, ["int.api.01@ra1"]);
        let up = identity.upstream.as_ref().unwrap();
        assert_eq!(up.tool, "tempest");
        assert!(
            up.tests.starts_with(r"^tempest\.api\.identity\. minus "),
            "{}",
            up.tests
        );
        for c in &all {
            let m = c.meta();
            assert!(m.id.starts_with("tempest."));
            assert!(m.upstream.is_some(), "{}", m.id);
            assert!(m.side_effects.contains("create"), "{}", m.id);
            assert!(m.cleanup.contains("private directory"), "{}", m.id);
            assert!(
                m.covers
                    .iter()
                    .all(|r| r.ends_with("@ra1") || r.starts_with("inf.") || r.starts_with("req."))
            );
        }
        let covers = |id: &str| {
            all.iter()
                .find(|c| c.meta().id == id)
                .map(|c| c.meta().covers.clone())
                .unwrap()
        };
        // Each requirement is claimed by the tests that show it, no more.
        assert_eq!(covers("tempest.network"), ["int.api.05@ra1"]);
        assert_eq!(covers("tempest.volume"), ["int.api.03@ra1"]);
        assert_eq!(covers("tempest.network-ipv6"), ["inf.nw.16"]);
        assert_eq!(covers("tempest.volume-attach"), ["inf.stg.01"]);
        assert_eq!(
            covers("tempest.object-storage"),
            ["int.api.04@ra1", "inf.stg.02"]
        );
        let covered: Vec<&str> = all
            .iter()
            .flat_map(|c| c.meta().covers.iter().map(String::as_str))
            .collect();
        for r in [
            "int.api.08@ra1",
            "int.api.09@ra1",
            "inf.nw.16",
            "inf.stg.01",
            "inf.stg.02",
            "req.inf.ntw.01",
        ] {
            assert!(covered.contains(&r), "{r}");
        }
    }
}
