//! A synthetic failing RC2 run shaped like a real one on this machine: the same CNI catalog
//! assertion failing identically on 17 plugins, failures whose messages name the plugin,
//! SHOULD and MAY failures (warnings), a waiver that applies, one expired and one that
//! matches nothing, the data path's macvlan against bridge comparison with its interval and
//! distributions, and Kubernetes e2e evidence whose cluster was not matched. It stands in
//! for nothing real: it exists so that the reports' first screen and the terminal summary
//! can be tested without root.

use std::sync::Arc;
use std::time::Duration;

use chrono::{NaiveDate, TimeZone, Utc};
use nfvi_harness::inventory::Inventory;
use nfvi_harness::plan::{self, PlanOptions};
use nfvi_harness::results::{CheckRun, Invocation, RunMeta, RunResults};
use nfvi_harness::waiver::Waiver;
use nfvi_harness::{
    Capabilities, Check, CheckMeta, Outcome, Percentiles, Provenance, Registry, Severity, Target,
};
use nfvi_reference_model::Area;

use crate::Synthetic;

/// The 17 plugins of [`synthetic_rc2_failing`], in plan order.
pub const RC2_PLUGINS: [&str; 17] = [
    "bandwidth",
    "bridge",
    "dhcp",
    "dummy",
    "firewall",
    "host-device",
    "host-local",
    "ipvlan",
    "loopback",
    "macvlan",
    "portmap",
    "ptp",
    "sbr",
    "static",
    "tuning",
    "vlan",
    "vrf",
];

/// The message every plugin's `CNI-VER-002` failure carries in [`synthetic_rc2_failing`].
pub const RC2_VER_002_MESSAGE: &str = "expected the input version echoed: input 0.4.0 -> output cniVersion \"1.0.0\"; input 0.3.1 -> output cniVersion \"1.0.0\"";

const CNI_REQS: &[&str] = &["inf.ntw.08", "ra2.ntw.002", "ra2.ntw.009"];

struct Row {
    meta: CheckMeta,
    outcome: Outcome,
}

fn row(id: String, area: Area, title: &str, severity: Severity, covers: &[&str]) -> CheckMeta {
    CheckMeta::new(id, area, title).covers(severity, covers)
}

fn cni(plugin: &str, assertion: &str, title: &str, severity: Severity) -> CheckMeta {
    let covers: &[&str] = if severity == Severity::Info {
        &[]
    } else {
        CNI_REQS
    };
    row(
        format!("cni.{plugin}.{assertion}"),
        Area::Cni,
        title,
        severity,
        covers,
    )
    .subject(plugin)
}

/// Percentiles p0..p100 rising from `base` µs, with a tail.
fn percentiles(base: f64) -> Percentiles {
    let values = (0..=100)
        .map(|p| {
            let p = f64::from(p);
            base + p * 0.02 + if p > 95.0 { (p - 95.0) * 1.5 } else { 0.0 }
        })
        .collect();
    Percentiles::new(values).expect("rising percentiles")
}

fn rows() -> Vec<Row> {
    use Severity::*;
    let mut rows = vec![
        Row {
            meta: row(
                "host.node.vcpus".into(),
                Area::Host,
                "A VM node has enough vCPUs",
                Must,
                &["ra2.ch.011", "e.cap.001"],
            ),
            outcome: Outcome::fail("2 vCPUs, RA2 asks for at least 16 on a VM node; resize the VM"),
        },
        Row {
            meta: row(
                "host.node.memory".into(),
                Area::Host,
                "A VM node has enough memory",
                Must,
                &["ra2.ch.012", "e.cap.002"],
            ),
            outcome: Outcome::fail(
                "25.3 GB of RAM, RA2 asks for at least 32 GB on a VM node; resize the VM",
            ),
        },
        Row {
            meta: row(
                "host.kernel.version".into(),
                Area::Host,
                "Kernel is recent enough",
                Info,
                &[],
            ),
            outcome: Outcome::pass("kernel 6.1.0-13-amd64"),
        },
        Row {
            meta: row(
                "host.hugepages.2mi".into(),
                Area::Host,
                "2 MiB hugepages are configured",
                May,
                &["ra2.ch.001"],
            ),
            outcome: Outcome::fail(
                "no 2Mi hugepages configured: reserve them with `hugepagesz=2M hugepages=N`",
            ),
        },
    ];
    for p in RC2_PLUGINS {
        rows.push(Row {
            meta: cni(
                p,
                "CNI-VER-002",
                "VERSION echoes the input cniVersion",
                Must,
            ),
            outcome: Outcome::fail(RC2_VER_002_MESSAGE),
        });
        rows.push(Row {
            meta: cni(p, "CNI-ADD-001", "ADD returns a valid result", Must),
            outcome: Outcome::pass(format!("{p} ADD: exit 0, a valid result")),
        });
    }
    for p in ["bridge", "macvlan", "ptp", "loopback"] {
        rows.push(Row {
            meta: cni(p, "CNI-DEL-009", "DEL without CNI_PATH for a live attachment", Must),
            outcome: Outcome::fail(format!(
                "DEL without CNI_PATH for a live attachment: expected exit 0; got {p} DEL: exit 1, stdout {{\"code\":4,\"msg\":\"required env variables [CNI_PATH] missing\"}}"
            )),
        });
    }
    rows.push(Row {
        meta: cni("host-device", "CNI-DEL-002", "A second DEL of one attachment succeeds", Must),
        outcome: Outcome::fail("DEL #2 of the same attachment: expected exit 0; got host-device DEL: exit 1, stdout {\"code\":999,\"msg\":\"failed to find \\\"eth0\\\": Link not found\"}"),
    });
    rows.push(Row {
        meta: cni("bridge", "CNI-CHK-009", "CHECK after an L2-only ADD", Must),
        outcome: Outcome::fail("CHECK after an L2-only ADD: expected exit 0; got bridge CHECK: exit 1, stdout {\"code\":999,\"msg\":\"no plugin name provided\"}"),
    });
    for p in [
        "bridge",
        "macvlan",
        "ptp",
        "loopback",
        "host-local",
        "static",
        "tuning",
        "portmap",
        "firewall",
        "bandwidth",
    ] {
        rows.push(Row {
            meta: cni(p, "CNI-ERR-002", "Error objects carry the required keys", Should),
            outcome: Outcome::fail("error objects lacking required keys: FROB {\"code\":4,\"msg\":\"unknown CNI_COMMAND: FROB\"}: no cniVersion"),
        });
    }
    rows.push(Row {
        meta: cni(
            "bridge",
            "CNI-ADD-014",
            "DNS from IPAM is in the result",
            Info,
        ),
        outcome: Outcome::fail("the DNS host-local returned is not in the bridge result ({})"),
    });
    rows.push(Row {
        meta: row(
            "datapath.bridge.east-west".into(),
            Area::Datapath,
            "Endpoints on one bridge reach each other",
            Should,
            &["inf.ntw.08", "ra2.ntw.002"],
        )
        .subject("bridge"),
        outcome: Outcome::pass("198.18.60.1 -> 198.18.60.2 on one bridge: reachable as expected"),
    });
    let mut latency = Outcome::pass("macvlan is faster than bridge: macvlan - bridge = -2.77 us (95% CI -2.82 to -2.58) over 6 rounds; median block p50 in us: loopback 7.9, macvlan 9.0, bridge 11.7")
        .with_metric("macvlan.p50", 8.98, "us")
        .with_metric("bridge.p50", 11.74, "us")
        .with_metric("macvlan-minus-bridge", -2.77, "us")
        .with_metric("macvlan-minus-bridge.ci95-low", -2.82, "us")
        .with_metric("macvlan-minus-bridge.ci95-high", -2.58, "us")
        .with_property("finding", "macvlan is faster than bridge")
        .with_property("method", "6 rounds of interleaved blocks (ABBA order); Hodges-Lehmann estimate of macvlan - bridge with a 95% percentile bootstrap interval");
    for (name, base) in [("loopback", 7.1), ("macvlan", 8.2), ("bridge", 10.9)] {
        latency = latency.with_distribution(name, percentiles(base));
    }
    rows.push(Row {
        meta: row(
            "datapath.latency.macvlan-vs-bridge".into(),
            Area::Datapath,
            "Round-trip latency of loopback, macvlan and bridge paths, and macvlan against bridge with a 95% confidence interval",
            Info,
            &[],
        )
        .subject("latency"),
        outcome: latency,
    });
    let mut e2e = Outcome::pass("the Kubernetes e2e conformance run passed 402 of 402 tests");
    e2e.evidence.provenance.push(Provenance {
        tool: "kubernetes-e2e".into(),
        tool_version: Some("v1.31.2".into()),
        file: "/srv/evidence/junit_01.xml".into(),
        sha256: "9f2c7e6a0b1d4c3e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e".into(),
        members: Vec::new(),
        run_at: Some(Utc.with_ymd_and_hms(2026, 11, 26, 22, 10, 0).unwrap()),
        run_at_source: Some("file".into()),
        identity: Some("Kubernetes v1.31.2".into()),
        identity_verified: false,
    });
    rows.push(Row {
        meta: row(
            "k8s.evidence.e2e-conformance".into(),
            Area::K8s,
            "The Kubernetes e2e conformance run passed",
            Must,
            &["gen.cnt.03"],
        ),
        outcome: e2e,
    });
    rows
}

/// A failing RC2 run (see the module doc): 17 identical `CNI-VER-002` failures, 4
/// `CNI-DEL-009` failures naming their plugin, two host MUST failures, warnings, the waiver
/// `W-17` excusing `cni.host-device.CNI-DEL-002`, the expired `W-OLD` (it names
/// `cni.bridge.CNI-CHK-009`, which still fails) and `W-NONE`, which matches nothing.
pub fn synthetic_rc2_failing() -> RunResults {
    let model = nfvi_reference_model::load_embedded().expect("embedded model");
    let mut outcomes = std::collections::HashMap::new();
    let checks: Vec<Arc<dyn Check>> = rows()
        .into_iter()
        .map(|r| {
            outcomes.insert(r.meta.id.clone(), r.outcome);
            Arc::new(Synthetic(r.meta)) as Arc<dyn Check>
        })
        .collect();
    let registry = Registry::new(checks, &model).expect("synthetic rc2 checks are valid");
    let plan = plan::build(
        &model,
        &registry,
        &Target::local(&Default::default()),
        &Capabilities::default(),
        &PlanOptions {
            suite: "rc2".into(),
            ..Default::default()
        },
    )
    .expect("suite rc2 exists");
    let started = Utc.with_ymd_and_hms(2026, 11, 27, 1, 0, 0).unwrap();
    let runs = plan
        .items
        .iter()
        .enumerate()
        .map(|(index, item)| CheckRun {
            index,
            node: None,
            outcome: outcomes
                .remove(&item.check.meta().id)
                .expect("one outcome per check"),
            started_at: Some(started + chrono::TimeDelta::milliseconds(index as i64)),
            duration: Duration::from_millis(4),
            cleanup: Vec::new(),
        })
        .collect();
    let waiver = |id: &str, checks: &[&str], reason: &str, expires: (i32, u32, u32)| Waiver {
        id: id.into(),
        checks: checks.iter().map(|c| (*c).to_owned()).collect(),
        node: None,
        subject: None,
        reason: reason.into(),
        owner: "netops@example.com".into(),
        ticket: Some(format!("https://tracker.example.com/{id}")),
        expires: NaiveDate::from_ymd_opt(expires.0, expires.1, expires.2).unwrap(),
    };
    let waivers = vec![
        waiver(
            "W-17",
            &["cni.host-device.CNI-DEL-002"],
            "host-device 1.1.1 forgets the moved link on a second DEL; fixed in 1.2",
            (2027, 3, 31),
        ),
        waiver(
            "W-OLD",
            &["cni.*.CNI-CHK-009"],
            "accepted for the 2026 pilot",
            (2026, 10, 1),
        ),
        waiver(
            "W-NONE",
            &["k8s.nothing.*"],
            "a waiver for a check that no longer exists",
            (2027, 1, 1),
        ),
    ];
    let inventory = Inventory {
        hostname: "node-1".into(),
        kernel: "6.1.0-13-amd64".into(),
        os: "Debian GNU/Linux 12 (bookworm)".into(),
        arch: "x86_64".into(),
        cpus: 2,
        memory_bytes: 24 << 30,
        ..Default::default()
    };
    RunResults::assemble(
        &plan,
        runs,
        RunMeta {
            run_id: "20261127T010000Z-synthetic-rc2".into(),
            finished_at: started + chrono::TimeDelta::seconds(240),
            inventory: inventory.seal(),
            invocation: Invocation {
                argv: vec![],
                reproduce: "nfvi-verify run --suite rc2 --waivers waivers.toml".into(),
            },
            waivers: Some(("waivers.toml".into(), waivers)),
            ..crate::synthetic_meta(started)
        },
    )
}
