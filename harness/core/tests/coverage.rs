//! Coverage as data (#15): the traceability matrix tells a requirement the harness observes
//! from one an upstream suite's tests cover, and from one no software test can verify (the
//! reference model says why); `upstream = "none"` skips the checks that drive upstream suites.

use std::path::Path;
use std::sync::Arc;

use nfvi_harness::plan::{self, PlanOptions};
use nfvi_harness::results::{RequirementRow, TraceStatus};
use nfvi_harness::target::UpstreamLevel;
use nfvi_harness::{
    Area, Areas, Capabilities, Check, CheckMeta, Outcome, Registry, Severity, Target, declare,
};
use nfvi_reference_model::Area as AreaId;

struct Coverage;

impl Area for Coverage {
    fn id(&self) -> &'static str {
        "coverage"
    }

    fn tables(&self) -> Vec<nfvi_harness::Table> {
        Vec::new()
    }

    fn checks(&self) -> Vec<Arc<dyn Check>> {
        let area = AreaId::new("coverage");
        vec![
            declare(
                CheckMeta::new("coverage.own", area, "observed by the harness")
                    .covers(Severity::Must, &["ra2.k8s.013", "ra2.k8s.024"]),
                |_| Box::pin(async { Ok(Outcome::pass("seen")) }),
            )
            .into_check(),
            declare(
                CheckMeta::new("coverage.e2e", area, "an upstream suite's tests")
                    .covers(Severity::Must, &["ra2.k8s.024", "ra2.stg.005"])
                    .upstream("k8s-e2e", r"\[sig-storage\]"),
                |_| Box::pin(async { Ok(Outcome::pass("seen")) }),
            )
            .into_check(),
        ]
    }
}

fn plan_at(level: Option<&str>) -> plan::Plan {
    let areas = Areas::new(vec![Arc::new(Coverage)]);
    let text = level.map_or(String::new(), |l| format!("upstream = \"{l}\"\n"));
    let target = Target::parse(Path::new("t.toml"), &text, &areas, &[]).unwrap();
    let model = nfvi_reference_model::load_embedded().unwrap();
    let registry = Registry::new(areas.checks(), &model).unwrap();
    let caps = Capabilities::detect(&target, &areas);
    let options = PlanOptions {
        suite: "all".into(),
        ..Default::default()
    };
    plan::build(&model, &registry, &target, &caps, &options).unwrap()
}

fn row<'a>(plan: &'a plan::Plan, id: &str) -> &'a RequirementRow {
    plan.requirements
        .iter()
        .find(|r| r.id.as_str() == id)
        .unwrap_or_else(|| panic!("no row {id}"))
}

#[test]
fn the_matrix_tells_own_upstream_and_untestable_coverage_apart() {
    let plan = plan_at(None);
    let kinds: Vec<(&str, &str)> = [
        "ra2.k8s.013",
        "ra2.k8s.024",
        "ra2.stg.005",
        "sec.img.002",
        "ra2.ntw.014",
    ]
    .iter()
    .map(|id| (*id, row(&plan, id).coverage()))
    .collect();
    assert_eq!(
        kinds,
        vec![
            ("ra2.k8s.013", "own"),
            ("ra2.k8s.024", "own+upstream"),
            ("ra2.stg.005", "upstream"),
            ("sec.img.002", "not-testable"),
            ("ra2.ntw.014", "none"),
        ]
    );
    assert_eq!(
        row(&plan, "ra2.stg.005").upstream,
        vec![r"coverage.e2e (k8s-e2e: \[sig-storage\])".to_owned()]
    );
    let untestable = row(&plan, "sec.img.002");
    assert!(
        untestable
            .untestable
            .as_deref()
            .is_some_and(|why| why.contains("image supply chain")),
        "{untestable:?}"
    );
    // With no check, a reason makes the requirement not testable, never untested.
    let status = |r: &RequirementRow| nfvi_harness::judge::trace_status(r, &[], false);
    assert_eq!(status(untestable), TraceStatus::NotTestable);
    assert_eq!(status(row(&plan, "ra2.ntw.014")), TraceStatus::Untested);
}

#[test]
fn upstream_none_skips_the_checks_that_drive_upstream_suites_and_only_those() {
    let full = plan_at(None);
    let none = plan_at(Some("none"));
    let skipped = |p: &plan::Plan| -> Vec<(String, Option<String>)> {
        let mut v: Vec<_> = p
            .items
            .iter()
            .map(|i| {
                let skip = match &i.decision {
                    plan::Decision::Skip(s) => Some(s.message.clone()),
                    plan::Decision::Run => None,
                };
                (i.check.meta().id.clone(), skip)
            })
            .collect();
        v.sort();
        v
    };
    assert!(skipped(&full).iter().all(|(_, s)| s.is_none()));
    let none = skipped(&none);
    assert_eq!(none[0], ("coverage.e2e".to_owned(), Some(
        "runs k8s-e2e tests, and this run drives no upstream suite (upstream = \"none\"; --upstream smoke or full runs them)".to_owned()
    )));
    assert_eq!(none[1], ("coverage.own".to_owned(), None));
    let target = Target::parse(
        Path::new("t.toml"),
        "upstream = \"smoke\"\n",
        &Areas::new(vec![]),
        &[],
    )
    .unwrap();
    assert_eq!(target.upstream, UpstreamLevel::Smoke);
}
