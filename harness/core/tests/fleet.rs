//! A run over a fleet, with a scripted transport standing in for SSH (the real one is tested
//! with real sshd nodes in fleet/tests): every node-level check appears once per node, a
//! node that fails is named in its checks' errors, hostile agent output is ignored, and the
//! checks of the whole NFVI run after the nodes and see them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use nfvi_harness::fleet::{
    AgentCheck, AgentEvent, AgentRequest, NodeError, NodeSpec, ScriptedTransport,
};
use nfvi_harness::plan::{self, PlanOptions};
use nfvi_harness::results::{RunMeta, RunResults, Verdict};
use nfvi_harness::{
    Area, AreaConfig, Areas, Capabilities, Check, CheckMeta, ConfigError, Outcome, Registry,
    RunnerBuilder, Session, Status, Table, Target, declare,
};
use nfvi_reference_model::Area as AreaId;
use serde::Deserialize;

#[derive(Debug, Deserialize, schemars::JsonSchema)]
struct Empty {}

impl AreaConfig for Empty {
    fn validate(&self) -> Result<(), ConfigError> {
        Ok(())
    }
}

struct FleetArea;

impl Area for FleetArea {
    fn id(&self) -> &'static str {
        "fleetx"
    }

    fn tables(&self) -> Vec<Table> {
        vec![Table::of::<Empty>("fleetx", "[fleetx]\n")]
    }

    fn node_level(&self, check: &CheckMeta) -> bool {
        check.id.starts_with("fleetx.node.")
    }

    fn checks(&self) -> Vec<Arc<dyn Check>> {
        let area = AreaId::new("fleetx");
        vec![
            declare(
                CheckMeta::new("fleetx.node.kernel", area, "a node-level check"),
                |_| Box::pin(async { Ok(Outcome::error("must not run on the jump host")) }),
            )
            .into_check(),
            declare(
                CheckMeta::new("fleetx.node.sysctl", area, "another node-level check"),
                |_| Box::pin(async { Ok(Outcome::error("must not run on the jump host")) }),
            )
            .into_check(),
            declare(
                CheckMeta::new("fleetx.compare", area, "compares the nodes"),
                |cx| {
                    Box::pin(async move {
                        let fleet = cx.fleet().ok_or("no fleet")?;
                        let names: Vec<&str> =
                            fleet.nodes.iter().map(|n| n.node.name.as_str()).collect();
                        // The run's transport reaches the checks of the whole NFVI.
                        let kind = cx.transport().ok_or("no transport")?.kind();
                        Ok(Outcome::pass(format!(
                            "saw {} over {kind}",
                            names.join(",")
                        )))
                    })
                },
            )
            .into_check(),
        ]
    }
}

fn node(name: &str) -> NodeSpec {
    NodeSpec {
        name: name.to_owned(),
        roles: vec!["compute".to_owned()],
        address: Some("198.19.10.11".to_owned()),
    }
}

fn finished(id: &str, status: Status, message: &str) -> AgentEvent {
    AgentEvent::Finished(Box::new(AgentCheck {
        id: id.to_owned(),
        status,
        skip_kind: None,
        message: message.to_owned(),
        evidence: Default::default(),
        started_at: None,
        duration_secs: 0.01,
        cleanup: vec![],
    }))
}

fn done() -> AgentEvent {
    AgentEvent::Done {
        cancelled: false,
        warnings: vec![],
    }
}

/// The example area's target, its plan of suite `all`, and the plan's node-level items.
struct Fixture {
    areas: Areas,
    target: Target,
    plan: nfvi_harness::Plan,
    node_items: Vec<usize>,
}

fn fixture() -> Fixture {
    let areas = Areas::new(vec![Arc::new(FleetArea)]);
    let target = Target::parse(std::path::Path::new("t.toml"), "", &areas, &[]).unwrap();
    let model = nfvi_reference_model::load_embedded().unwrap();
    let registry = Registry::new(areas.checks(), &model).unwrap();
    let caps = Capabilities::detect(&target, &areas);
    let plan = plan::build(
        &model,
        &registry,
        &target,
        &caps,
        &PlanOptions {
            suite: "all".into(),
            ..Default::default()
        },
    )
    .unwrap();
    let node_items = (0..plan.items.len())
        .filter(|&i| areas.node_level(plan.items[i].check.meta()))
        .collect();
    Fixture {
        areas,
        target,
        plan,
        node_items,
    }
}

/// The request the jump host would send, before the fan-out names the node and the checks.
fn template(target_toml: String, jobs: usize) -> AgentRequest {
    AgentRequest {
        protocol: nfvi_harness::fleet::PROTOCOL_VERSION,
        version: "0.1.0".into(),
        node: node(""),
        suite: "all".into(),
        filters: vec![],
        skips: vec![],
        checks: vec![],
        strict: false,
        jobs,
        timeout_secs: None,
        target_toml,
    }
}

#[test]
fn every_node_level_check_is_reported_once_per_node_and_failures_name_the_node() {
    let Fixture {
        areas,
        target,
        plan,
        ..
    } = fixture();

    let mut scripts = HashMap::new();
    scripts.insert(
        "compute01".to_owned(),
        (
            vec![
                AgentEvent::Hello {
                    version: "x".into(),
                },
                AgentEvent::Started {
                    id: "fleetx.node.kernel".into(),
                },
                finished("fleetx.node.kernel", Status::Passed, "6.1"),
                // Hostile or confused agents: a check not asked for, a second report.
                finished("fleetx.compare", Status::Passed, "not mine to report"),
                finished("fleetx.node.kernel", Status::Failed, "a second report"),
                finished("fleetx.node.sysctl", Status::Failed, "ip_forward = 0"),
                done(),
            ],
            Ok(()),
        ),
    );
    scripts.insert(
        "compute02".to_owned(),
        (
            vec![finished("fleetx.node.kernel", Status::Passed, "6.1")],
            Err(NodeError::new(
                "the connection to 198.19.10.12 was lost mid-run (ssh exit 255)",
            )),
        ),
    );
    scripts.insert(
        "compute03".to_owned(),
        (
            vec![AgentEvent::Fatal {
                message: "the jump host runs 9.9 and this node's agent is 0.1".into(),
            }],
            Ok(()),
        ),
    );
    let requests = Arc::new(Mutex::new(Vec::new()));
    let transport = ScriptedTransport {
        nodes: vec![node("compute01"), node("compute02"), node("compute03")],
        scripts,
        requests: requests.clone(),
    };
    let template = template(target.resolved_toml(), 2);

    let session = Session::open(areas, target, 2).unwrap();
    let mut runs = Vec::new();
    let mut collect = Collect(&mut runs);
    let (output, fleet) = session.execute_fleet(
        &plan,
        RunnerBuilder::default().handle_signals(false),
        Arc::new(transport),
        &template,
        &mut collect,
    );
    session.close();

    // Each agent was asked for exactly the node-level checks, as its own node.
    let requests = requests.lock().unwrap();
    assert_eq!(requests.len(), 3);
    for r in requests.iter() {
        assert_eq!(r.checks, ["fleetx.node.kernel", "fleetx.node.sysctl"]);
        assert!(r.node.name.starts_with("compute"));
    }

    assert_eq!(output.runs.len(), 2 * 3 + 1, "{:#?}", output.runs);
    assert_eq!(runs.len(), output.runs.len(), "the reporter saw every run");
    let results = RunResults::assemble(
        &plan,
        output.runs,
        RunMeta {
            tool: nfvi_harness::results::ToolInfo {
                name: "t".into(),
                version: "0".into(),
                git_sha: "0".into(),
            },
            run_id: "r".into(),
            target_file: None,
            started_at: chrono::Utc::now(),
            finished_at: chrono::Utc::now(),
            cancel_reason: None,
            inventory: Default::default(),
            fleet: Some(fleet.clone()),
            invocation: Default::default(),
            resource_usage: None,
            conditions: Default::default(),
            waivers: None,
        },
    );
    let row = |id: &str, node: Option<&str>| {
        results
            .checks
            .iter()
            .find(|c| c.id == id && c.node.as_deref() == node)
            .unwrap_or_else(|| panic!("no {id} on {node:?}"))
    };
    assert_eq!(
        row("fleetx.node.kernel", Some("compute01")).outcome,
        Status::Passed
    );
    assert_eq!(
        row("fleetx.node.sysctl", Some("compute01")).message,
        "ip_forward = 0"
    );
    let lost = row("fleetx.node.sysctl", Some("compute02"));
    assert_eq!(lost.outcome, Status::Error);
    assert!(
        lost.message.contains("node compute02") && lost.message.contains("lost mid-run"),
        "{}",
        lost.message
    );
    assert_eq!(
        row("fleetx.node.kernel", Some("compute02")).outcome,
        Status::Passed
    );
    let refused = row("fleetx.node.kernel", Some("compute03"));
    assert!(refused.message.contains("refused"), "{}", refused.message);
    assert_eq!(
        row("fleetx.compare", None).message,
        "saw compute01,compute02,compute03 over scripted",
        "the whole-NFVI check ran after the nodes and saw them"
    );
    // Node-level results in plan order, then node order.
    let order: Vec<(String, Option<String>)> = results
        .checks
        .iter()
        .map(|c| (c.id.clone(), c.node.clone()))
        .collect();
    assert_eq!(
        order[0],
        ("fleetx.node.kernel".into(), Some("compute01".into()))
    );
    assert_eq!(
        order[2],
        ("fleetx.node.kernel".into(), Some("compute03".into()))
    );

    let verified: Vec<bool> = fleet.nodes.iter().map(|n| n.verified).collect();
    assert_eq!(verified, [true, false, false]);
    assert_eq!(fleet.unverified().count(), 2);
    // These checks cover no requirement: the errors of the unverified nodes decide.
    assert_eq!(results.verdict, Verdict::Incomplete);
}

struct Collect<'a>(&'a mut Vec<(String, Option<String>)>);

impl nfvi_harness::Reporter for Collect<'_> {
    fn report(&mut self, event: &nfvi_harness::RunEvent<'_>) {
        if let nfvi_harness::RunEvent::CheckFinished { id, run } = event {
            self.0.push(((*id).to_owned(), run.node.clone()));
        }
    }
}

#[test]
fn nodes_the_run_never_reached_report_every_check_as_interrupted() {
    let Fixture {
        plan, node_items, ..
    } = fixture();
    let names: Vec<String> = (1..=6).map(|i| format!("compute{i:02}")).collect();
    let transport = ScriptedTransport {
        nodes: names.iter().map(|n| node(n)).collect(),
        scripts: HashMap::new(),
        requests: Arc::default(),
    };
    let template = template(String::new(), 1);
    // Ctrl-C before any node started.
    let (source, token) = nfvi_harness::cancel::CancelSource::new();
    source.escalate(nfvi_harness::cancel::CancelReason::Interrupt);
    let mut failed = Vec::new();
    let (runs, report) = nfvi_harness::fleet::fan_out(
        &transport,
        &plan,
        &node_items,
        &template,
        &token,
        &mut |e| {
            if let nfvi_harness::fleet::FleetEvent::NodeFailed { node, .. } = e {
                failed.push(node.to_owned());
            }
        },
    );
    assert!(
        transport.requests.lock().unwrap().is_empty(),
        "no node was asked"
    );
    assert_eq!(runs.len(), node_items.len() * names.len(), "{runs:#?}");
    for run in &runs {
        assert_eq!(
            run.outcome.skip_kind(),
            Some(nfvi_harness::SkipKind::Interrupted)
        );
    }
    // Workers report in whatever order they finish.
    failed.sort();
    assert_eq!(failed, names);
    assert!(report.nodes.iter().all(|n| !n.verified));
}

#[test]
fn a_node_that_sends_more_than_its_budget_is_not_verified_and_the_rest_is_dropped() {
    let Fixture {
        plan, node_items, ..
    } = fixture();
    let big = "x".repeat(10_000);
    let mut scripts = HashMap::new();
    scripts.insert(
        "compute01".to_owned(),
        (
            vec![
                finished("fleetx.node.kernel", Status::Passed, "small"),
                finished("fleetx.node.sysctl", Status::Passed, &big),
                done(),
            ],
            Ok(()),
        ),
    );
    let transport = ScriptedTransport {
        nodes: vec![node("compute01")],
        scripts,
        requests: Arc::default(),
    };
    let template = template(String::new(), 1);
    let (_, token) = nfvi_harness::cancel::CancelSource::new();
    let (runs, report) = nfvi_harness::fleet::fan_out_within(
        5_000,
        &transport,
        &plan,
        &node_items,
        &template,
        &token,
        &mut |_| {},
    );
    assert_eq!(runs.len(), 2);
    let sysctl = runs
        .iter()
        .find(|r| plan.items[r.index].check.meta().id == "fleetx.node.sysctl")
        .unwrap();
    assert_eq!(
        sysctl.outcome.status,
        Status::Error,
        "the oversized report was dropped"
    );
    assert!(!sysctl.outcome.message.contains(&big[..100]));
    assert!(!report.nodes[0].verified);
    assert!(
        report.nodes[0]
            .error
            .as_deref()
            .unwrap()
            .contains("more than 5000 bytes"),
        "{:?}",
        report.nodes[0].error
    );
}

/// Panics at the first check result it hears.
struct PanicsAtFirstResult(usize);

impl nfvi_harness::Reporter for PanicsAtFirstResult {
    fn report(&mut self, event: &nfvi_harness::RunEvent<'_>) {
        if let nfvi_harness::RunEvent::CheckFinished { .. } = event {
            self.0 += 1;
            panic!("scripted reporter panic");
        }
    }
}

#[test]
fn a_reporter_that_panics_while_the_nodes_run_stops_the_run_and_hears_nothing_more() {
    let Fixture {
        areas,
        target,
        plan,
        ..
    } = fixture();
    let names = ["compute01", "compute02"];
    let scripts = names
        .iter()
        .map(|n| {
            (
                (*n).to_owned(),
                (
                    vec![
                        finished("fleetx.node.kernel", Status::Passed, "6.1"),
                        finished("fleetx.node.sysctl", Status::Passed, "1"),
                        done(),
                    ],
                    Ok(()),
                ),
            )
        })
        .collect();
    let transport = ScriptedTransport {
        nodes: names.iter().map(|n| node(n)).collect(),
        scripts,
        requests: Arc::default(),
    };
    let template = template(target.resolved_toml(), 1);
    let session = Session::open(areas, target, 2).unwrap();
    let mut reporter = PanicsAtFirstResult(0);
    let (output, _) = session.execute_fleet(
        &plan,
        RunnerBuilder::default().handle_signals(false),
        Arc::new(transport),
        &template,
        &mut reporter,
    );
    session.close();
    // Caught, once: the run is stopped for it, and every planned result is still there.
    assert_eq!(reporter.0, 1);
    let p = output.panic.expect("the reporter's panic is recorded");
    assert!(p.to_string().contains("scripted reporter panic"), "{p}");
    assert_eq!(
        output.cancel_reason,
        Some(nfvi_harness::cancel::CancelReason::Panic)
    );
    let whole = plan.items.len() - 2; // the two node-level checks run per node instead
    assert_eq!(
        output.runs.len(),
        whole + 2 * names.len(),
        "{:#?}",
        output.runs
    );
}
