//! Fixtures shared by tests and benchmarks: synthetic checks and synthetic results of any
//! size, with hostile strings where a report must escape them. They stand in for nothing
//! real: they exist to load the engine and the renderers.

#![warn(missing_docs)]

use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use nfvi_harness::fleet::{FleetReport, NodeReport, NodeSpec};
use nfvi_harness::inventory::Inventory;
use nfvi_harness::outcome::{CommandRecord, Evidence, Metric};
use nfvi_harness::plan::{self, Plan, PlanOptions};
use nfvi_harness::results::{CheckRun, Invocation, RunMeta, RunResults, ToolInfo};
use nfvi_harness::{
    BoxFuture, Capabilities, Check, CheckContext, CheckMeta, Outcome, Registry, Severity, SkipKind,
    SkipReason, Status, Target,
};
use nfvi_reference_model::{Area, ReferenceModel};

mod rc2;
pub use rc2::{RC2_PLUGINS, RC2_VER_002_MESSAGE, synthetic_rc2_failing};

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
                node: None,
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
            run_id: "20261127T010000Z-synthetic".into(),
            finished_at: started + chrono::TimeDelta::seconds(30),
            inventory: inventory.seal(),
            ..synthetic_meta(started)
        },
    )
}

/// What every synthetic run shares: the tool, the start, no cancellation, no fleet.
fn synthetic_meta(started: chrono::DateTime<Utc>) -> RunMeta {
    RunMeta {
        tool: ToolInfo {
            name: "nfvi-verify".into(),
            version: "0.1.0".into(),
            git_sha: "synthetic".into(),
        },
        run_id: String::new(),
        target_file: None,
        started_at: started,
        finished_at: started,
        cancel_reason: None,
        inventory: Inventory::default(),
        fleet: None,
        invocation: Invocation {
            argv: vec![],
            reproduce: "nfvi-verify run --suite all".into(),
        },
        resource_usage: None,
        conditions: Default::default(),
        waivers: None,
    }
}

/// The kernel of every node of [`synthetic_fleet`] but the outlier.
pub const FLEET_KERNEL: &str = "6.1.0-13-amd64";

/// The kernel of the one node of [`synthetic_fleet`] that differs from its peers.
pub const FLEET_OUTLIER_KERNEL: &str = "6.1.0-9-amd64";

/// Names of the nodes of [`synthetic_fleet`]: `control01` (roles `control`, `network`), then
/// `compute01`, `compute02`, … (role `compute`).
pub fn fleet_node_names(nodes: usize) -> Vec<String> {
    (0..nodes)
        .map(|i| {
            if i == 0 {
                "control01".to_owned()
            } else {
                format!("compute{i:02}")
            }
        })
        .collect()
}

/// What [`synthetic_fleet`] says about its one unverified node (last in the fleet), with
/// [`HOSTILE`] in it.
pub fn fleet_unverified_error(node: &str) -> String {
    format!("ssh {node}: connect to host port 22: Connection refused; banner: {HOSTILE}")
}

/// Results of a run over a synthetic fleet of `nodes` nodes (see [`fleet_node_names`]):
/// `checks_per_node` node-level checks ran on every node, and three checks of the whole
/// NFVI ran once. Most node-level results pass; some fail, error, time out or are skipped
/// on some nodes. With two or more nodes the last one could not be verified (its checks are
/// errors naming it, its report has [`fleet_unverified_error`] and no inventory); with three
/// or more `compute01` runs [`FLEET_OUTLIER_KERNEL`] and another `docker-ce` where its peers
/// run [`FLEET_KERNEL`].
pub fn synthetic_fleet(nodes: usize, checks_per_node: usize) -> RunResults {
    let model = nfvi_reference_model::load_embedded().expect("embedded model");
    let wide = 3;
    let plan = synthetic_plan(&model, checks_per_node + wide);
    let node_items = checks_per_node.min(plan.items.len());
    let started = Utc.with_ymd_and_hms(2026, 11, 27, 1, 0, 0).unwrap();
    let names = fleet_node_names(nodes);
    let unverified = (nodes >= 2).then(|| nodes - 1);
    let outlier = (nodes >= 3).then_some(1);
    let mut runs = Vec::new();
    for index in 0..plan.items.len() {
        let at = Some(started + chrono::TimeDelta::milliseconds(index as i64));
        if index >= node_items {
            let outcome = if index % 2 == 0 {
                Outcome::pass("the NFVI-wide check passed")
            } else {
                Outcome::fail(format!("the API said {HOSTILE}"))
            };
            runs.push(CheckRun {
                index,
                node: None,
                outcome,
                started_at: at,
                duration: Duration::from_millis(5),
                cleanup: Vec::new(),
            });
            continue;
        }
        for (n, name) in names.iter().enumerate() {
            let outcome = if Some(n) == unverified {
                Outcome::error(format!(
                    "node {name} could not be verified: {}",
                    fleet_unverified_error(name)
                ))
            } else if index % 9 == 8 {
                Outcome::skip(SkipReason {
                    kind: SkipKind::NotApplicable,
                    message: "not applicable to this node".into(),
                })
            } else if Some(n) == outlier && index % 25 == 0 {
                Outcome::fail(format!(
                    "kernel {FLEET_OUTLIER_KERNEL} is older than required"
                ))
            } else {
                match (index * 7 + n * 3) % 83 {
                    3 => Outcome::fail(format!("observed {HOSTILE}")),
                    11 => Outcome::error("could not decide: the agent's probe failed"),
                    19 => Outcome::timed_out("timed out: did not finish within 1m0s"),
                    _ => Outcome::pass("observed what the requirement asks"),
                }
            };
            runs.push(CheckRun {
                index,
                node: Some(name.clone()),
                outcome,
                started_at: at,
                duration: Duration::from_millis(3),
                cleanup: Vec::new(),
            });
        }
    }
    let reports = names
        .iter()
        .enumerate()
        .map(|(n, name)| {
            let roles = if n == 0 {
                vec!["control".to_owned(), "network".to_owned()]
            } else {
                vec!["compute".to_owned()]
            };
            let inventory = (Some(n) != unverified).then(|| {
                let mut inv = Inventory {
                    hostname: name.clone(),
                    kernel: if Some(n) == outlier {
                        FLEET_OUTLIER_KERNEL
                    } else {
                        FLEET_KERNEL
                    }
                    .into(),
                    os: "Debian GNU/Linux 12 (bookworm)".into(),
                    arch: "x86_64".into(),
                    cpus: if n == 0 { 16 } else { 64 },
                    memory_bytes: if n == 0 { 64 << 30 } else { 256 << 30 },
                    ..Default::default()
                };
                let docker = if Some(n) == outlier {
                    "24.0.5"
                } else {
                    "24.0.7"
                };
                inv.packages.insert("docker-ce".into(), docker.into());
                inv.packages.insert(
                    "containernetworking-plugins".into(),
                    "1.1.1+ds1-3+b9".into(),
                );
                inv.packages
                    .insert("openvswitch-switch".into(), "3.1.0-2".into());
                inv.components.insert("docker".into(), docker.into());
                inv.seal()
            });
            NodeReport {
                node: NodeSpec {
                    name: name.clone(),
                    roles,
                    address: Some(format!("10.0.0.{}", n + 10)),
                },
                transport: "ssh".into(),
                verified: Some(n) != unverified,
                error: (Some(n) == unverified).then(|| fleet_unverified_error(name)),
                inventory,
                warnings: Vec::new(),
            }
        })
        .collect();
    let mut inventory = Inventory {
        hostname: "jump-host".into(),
        kernel: FLEET_KERNEL.into(),
        os: "Debian GNU/Linux 12 (bookworm)".into(),
        arch: "x86_64".into(),
        cpus: 2,
        memory_bytes: 8 << 30,
        ..Default::default()
    };
    inventory
        .packages
        .insert("openssh-client".into(), "1:9.2p1-2+deb12u3".into());
    RunResults::assemble(
        &plan,
        runs,
        RunMeta {
            run_id: "20261127T010000Z-synthetic-fleet".into(),
            target_file: Some("fleet.toml".into()),
            finished_at: started + chrono::TimeDelta::seconds(90),
            inventory: inventory.seal(),
            fleet: Some(FleetReport {
                transport: "ssh".into(),
                notes: vec![
                    "host keys: known_hosts of the jump host; unknown keys are refused".into(),
                ],
                nodes: reports,
            }),
            invocation: Invocation {
                argv: vec![],
                reproduce: "nfvi-verify run --suite all --target fleet.toml".into(),
            },
            ..synthetic_meta(started)
        },
    )
}

/// This process's network namespaces and the `nfv*` links of the machine's namespace, sorted:
/// what a test compares before and after, to show nothing was left behind.
pub fn host_state() -> (Vec<String>, Vec<String>) {
    let pid = format!("-{}-", std::process::id());
    let list = |args: &[&str]| {
        let out = std::process::Command::new("ip")
            .args(args)
            .output()
            .expect("ip runs");
        let mut v: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
            .filter(|n| n.starts_with("nfv"))
            .collect();
        if args[0] == "netns" {
            v.retain(|n| n.contains(&pid));
        }
        v.sort();
        v
    };
    (list(&["netns", "list"]), list(&["-o", "link", "show"]))
}
