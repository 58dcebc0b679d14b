//! An area added from outside the core: everything it needs is in its own code (here, this
//! file) plus one registration line, and the session gives its checks their table, their
//! resource, their shared state (opened once, closed at the end) and async cleanups.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use nfvi_harness::plan::{self, PlanOptions};
use nfvi_harness::{
    Area, AreaConfig, Areas, BoxFuture, Capabilities, Check, CheckMeta, ConfigError, Need, Outcome,
    Registry, Reporter, Resource, RunEvent, RunnerBuilder, Session, Shared, Status, Table, Target,
    declare,
};
use nfvi_reference_model::Area as AreaId;
use schemars::JsonSchema;
use serde::Deserialize;

// ---- the example area: its crate would hold exactly this ------------------------------------

/// The `[example]` table.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct ExampleConfig {
    /// How many pings a check expects.
    pings: u32,
}

impl AreaConfig for ExampleConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        ConfigError::ensure(
            self.pings > 0,
            "pings",
            "example.pings = 0: expected at least 1",
        )
    }
}

/// The run's shared state: counts how often it was used and whether it was closed.
#[derive(Default)]
struct Pinger {
    used: AtomicUsize,
}

static CLOSED: AtomicUsize = AtomicUsize::new(0);

struct ExampleArea;

impl Area for ExampleArea {
    fn id(&self) -> &'static str {
        "example"
    }

    fn tables(&self) -> Vec<Table> {
        vec![Table::of::<ExampleConfig>(
            "example",
            "[example]\n# How many pings each check expects.\npings = 3\n",
        )]
    }

    fn resources(&self, _target: &Target) -> Vec<Resource> {
        vec![
            Resource {
                id: "example-pinger",
                missing: None,
            },
            Resource {
                id: "example-ponger",
                missing: Some("no ponger here; start one".to_owned()),
            },
        ]
    }

    fn checks(&self) -> Vec<Arc<dyn Check>> {
        let area = AreaId::new("example");
        vec![
            declare(
                CheckMeta::new("example.ping", area, "the pinger pings")
                    .needs([Need::resource("example-pinger", "a pinger")]),
                |cx| {
                    Box::pin(async move {
                        let want = cx.target().config::<ExampleConfig>().pings;
                        let pinger = cx.shared::<Pinger>();
                        pinger.used.fetch_add(1, Ordering::SeqCst);
                        cx.on_cleanup_async("stop pinging", async { Ok(()) });
                        Ok(Outcome::pass(format!("{want} pings")))
                    })
                },
            )
            .into_check(),
            declare(
                CheckMeta::new("example.pong", area, "the ponger pongs")
                    .needs([Need::resource("example-ponger", "a ponger")]),
                |_| Box::pin(async { Ok(Outcome::pass("pong")) }),
            )
            .into_check(),
        ]
    }

    fn open(&self, _target: &Target) -> Shared {
        Arc::new(Pinger::default())
    }

    fn close(&self, shared: Shared) -> BoxFuture<'static, Result<(), String>> {
        Box::pin(async move {
            let pinger = shared.downcast::<Pinger>().map_err(|_| "not mine")?;
            CLOSED.store(pinger.used.load(Ordering::SeqCst), Ordering::SeqCst);
            Ok(())
        })
    }
}

// ---- the registration line, and a run through the session -----------------------------------

struct Finished(Vec<(String, Status, String)>);

impl Reporter for Finished {
    fn report(&mut self, event: &RunEvent<'_>) {
        if let RunEvent::CheckFinished { id, run } = event {
            self.0.push((
                (*id).to_owned(),
                run.outcome.status,
                run.outcome.message.clone(),
            ));
        }
    }
}

#[test]
fn an_area_added_outside_the_core_is_configured_planned_run_and_closed() {
    let areas = Areas::new(vec![Arc::new(ExampleArea)]);

    // Its table is part of the target file, checked by the area.
    let example = areas.default_target();
    assert!(example.contains("[example]\n# How many pings"), "{example}");
    let err = Target::parse(Path::new("t.toml"), "[example]\npings = 0\n", &areas, &[])
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("t.toml:2:1: example.pings = 0"), "{err}");
    let target = Target::parse(Path::new("t.toml"), "[example]\npings = 5\n", &areas, &[]).unwrap();

    // The `all` suite takes its checks; its resources decide what runs.
    let model = nfvi_reference_model::load_embedded().unwrap();
    let registry = Registry::new(areas.checks(), &model).unwrap();
    let caps = Capabilities::detect(&target, &areas);
    let options = PlanOptions {
        suite: "all".into(),
        ..Default::default()
    };
    let plan = plan::build(&model, &registry, &target, &caps, &options).unwrap();
    assert_eq!(plan.items.len(), 2);

    let session = Session::open(areas, target, 2).unwrap();
    let mut finished = Finished(Vec::new());
    let out = session.execute(
        &plan,
        RunnerBuilder::default().handle_signals(false),
        &mut finished,
    );
    finished.0.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        finished.0,
        vec![
            ("example.ping".into(), Status::Passed, "5 pings".into()),
            (
                "example.pong".into(),
                Status::Skipped,
                "no ponger here; start one".into()
            ),
        ]
    );
    let ping = out
        .runs
        .iter()
        .find(|r| r.outcome.status == Status::Passed)
        .unwrap();
    assert_eq!(ping.cleanup.len(), 1);
    assert!(ping.cleanup[0].error.is_none());

    let closed = session.close();
    assert_eq!(closed.len(), 1);
    assert!(closed[0].error.is_none(), "{:?}", closed[0].error);
    assert_eq!(
        CLOSED.load(Ordering::SeqCst),
        1,
        "the shared state was used once and closed"
    );
}
