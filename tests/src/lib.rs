//! Fixtures shared by tests and benchmarks: synthetic checks and synthetic results of any
//! size, with hostile strings where a report must escape them. They stand in for nothing
//! real: they exist to load the engine and the renderers.

#![warn(missing_docs)]

use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use nfvi_harness::inventory::Inventory;
use nfvi_harness::outcome::{CommandRecord, Evidence, Metric};
use nfvi_harness::plan::{self, Plan, PlanOptions};
use nfvi_harness::results::{CheckRun, Invocation, RunMeta, RunResults, ToolInfo};
use nfvi_harness::{
    BoxFuture, Capabilities, Check, CheckContext, CheckMeta, Outcome, Registry, Severity, SkipKind,
    SkipReason, Status, Target,
};
use nfvi_reference_model::{Area, ReferenceModel};

/// A string that breaks naive HTML, XML and JSON writers.
pub const HOSTILE: &str =
    "<script>document.title='PWNED'</script> & \"quotes\" \u{1b}[31mansi\u{1b}[0m \u{7}bell";

/// Requirement IDs the synthetic checks cycle through.
const COVERS: &[&[&str]] = &[
    &["ra2.ch.011"],
    &["ra2.ntw.002", "inf.ntw.08"],
    &["ra2.ch.001"],
    &[],
    &["sec.sys.001"],
];

struct Synthetic(CheckMeta);

impl Check for Synthetic {
    fn meta(&self) -> &CheckMeta {
        &self.0
    }

    fn run<'a>(&'a self, _cx: &'a CheckContext) -> BoxFuture<'a, Outcome> {
        Box::pin(async { Outcome::pass("synthetic") })
    }
}

/// `n` synthetic checks spread over every area.
pub fn synthetic_checks(n: usize) -> Vec<Arc<dyn Check>> {
    (0..n)
        .map(|i| {
            let area = Area::ALL[i % Area::ALL.len()];
            let meta = CheckMeta::new(
                format!("{area}.synthetic.c{i:05}"),
                area,
                format!("synthetic check {i}"),
            )
            .covers(Severity::Must, COVERS[i % COVERS.len()]);
            Arc::new(Synthetic(meta)) as Arc<dyn Check>
        })
        .collect()
}

/// A plan of `n` synthetic checks for suite `all`.
pub fn synthetic_plan(model: &ReferenceModel, n: usize) -> Plan {
    let registry = Registry::new(synthetic_checks(n), model).expect("synthetic checks are valid");
    plan::build(
        model,
        &registry,
        &Target::local(&Default::default()),
        &Capabilities::default(),
        &PlanOptions {
            suite: "all".into(),
            ..Default::default()
        },
    )
    .expect("suite all exists")
}

/// Results of `n` synthetic checks with every outcome, evidence with commands and metrics,
/// and [`HOSTILE`] in messages and output.
pub fn synthetic_results(n: usize) -> RunResults {
    let model = nfvi_reference_model::load_embedded().expect("embedded model");
    let plan = synthetic_plan(&model, n);
    let started = Utc.with_ymd_and_hms(2026, 11, 27, 1, 0, 0).unwrap();
    let runs = (0..plan.items.len())
        .map(|index| {
            let mut outcome = match index % 7 {
                0..=2 => Outcome::pass("observed what the requirement asks"),
                3 => Outcome::fail(format!("plugin said {HOSTILE}")),
                4 => Outcome::error("could not decide: daemon unreachable"),
                5 => Outcome::timed_out("timed out: did not finish within 1m0s"),
                _ => Outcome::skip(SkipReason {
                    kind: SkipKind::MissingCapability,
                    message: "needs root".into(),
                }),
            };
            if outcome.status != Status::Skipped {
                let mut ev = Evidence::default();
                ev.properties
                    .insert("observed".into(), format!("value {index}"));
                ev.metrics.insert(
                    "rtt_p99".into(),
                    Metric {
                        value: 42.0 + index as f64,
                        unit: "us".into(),
                    },
                );
                ev.commands.push(CommandRecord {
                    command: "ip -j addr show".into(),
                    exit_code: Some(0),
                    stdout: format!("[{{\"ifname\":\"eth{index}\"}}] {HOSTILE}"),
                    stderr: String::new(),
                    duration_secs: 0.004,
                });
                outcome = outcome.with_evidence(ev);
            }
            CheckRun {
                index,
                outcome,
                started_at: Some(started + chrono::TimeDelta::milliseconds(index as i64)),
                duration: Duration::from_millis(3),
                cleanup: Vec::new(),
            }
        })
        .collect();
    let mut inventory = Inventory {
        hostname: "node-1".into(),
        kernel: "6.1.0-13-amd64".into(),
        os: "Debian GNU/Linux 12 (bookworm)".into(),
        arch: "x86_64".into(),
        cpus: 2,
        memory_bytes: 24 << 30,
        ..Default::default()
    };
    inventory.packages.insert(
        "containernetworking-plugins".into(),
        "1.1.1+ds1-3+b9".into(),
    );
    RunResults::assemble(
        &plan,
        runs,
        RunMeta {
            tool: ToolInfo {
                name: "nfvi-verify".into(),
                version: "0.1.0".into(),
                git_sha: "synthetic".into(),
            },
            run_id: "20261127T010000Z-synthetic".into(),
            target_file: None,
            started_at: started,
            finished_at: started + chrono::TimeDelta::seconds(30),
            cancel_reason: None,
            inventory: inventory.seal(),
            invocation: Invocation {
                argv: vec![],
                reproduce: "nfvi-verify run --suite all".into(),
            },
            resource_usage: None,
        },
    )
}
