//! The node choice, the ports and the stopping of processes; and the whole check against a
//! stand-in transport whose "nodes" are `sh` scripts on this machine, for the outcomes a
//! real fleet rarely shows (a port taken everywhere, a probe that is not answered, output
//! that is not the report): each is an error naming the node and the cause, never a pass.

use std::collections::HashMap;
use std::process::Stdio;

use nfvi_harness::cancel::CancelToken;
use nfvi_harness::fleet::{AgentEvent, AgentRequest, NodeError, NodeReport};
use nfvi_harness::{Areas, Shares, Status, Target};
use nfvi_prober::probe::PairedBlocks;

use super::*;

fn report(nodes: &[(&str, Option<&str>, bool)]) -> FleetReport {
    FleetReport {
        transport: "ssh".into(),
        notes: vec![],
        nodes: nodes
            .iter()
            .map(|(name, address, verified)| NodeReport {
                node: NodeSpec {
                    name: (*name).to_owned(),
                    roles: vec![],
                    address: address.map(str::to_owned),
                },
                transport: "ssh".into(),
                verified: *verified,
                error: None,
                inventory: None,
                warnings: vec![],
            })
            .collect(),
    }
}

#[test]
fn two_verified_nodes_with_ip_addresses_are_picked_in_fleet_order() {
    let r = report(&[
        ("n1", Some("198.19.25.11"), false),
        ("n2", Some("compute02.lab"), true),
        ("n3", Some("198.19.25.13"), true),
        ("n4", None, true),
        ("n5", Some("198.19.25.15"), true),
        ("n6", Some("198.19.25.16"), true),
    ]);
    let (a, b) = pick(&r).unwrap();
    assert_eq!((a.node.name.as_str(), b.node.name.as_str()), ("n3", "n5"));
    assert_eq!(a.ip, "198.19.25.13".parse::<IpAddr>().unwrap());
}

#[test]
fn fewer_than_two_usable_nodes_say_why() {
    let one = report(&[("n1", Some("198.19.25.11"), true)]);
    assert_eq!(
        pick(&one).unwrap_err(),
        "a cross-node path needs two verified nodes with an IP address; of the fleet's 1 node(s), 1 qualifies"
    );
    let r = report(&[
        ("n1", Some("198.19.25.11"), false),
        ("n2", Some("compute02.lab"), true),
        ("n3", None, true),
    ]);
    assert_eq!(
        pick(&r).unwrap_err(),
        "a cross-node path needs two verified nodes with an IP address; of the fleet's 3 node(s), none qualifies, 1 could not be verified, 2 have no IP address: n2 (compute02.lab), n3"
    );
}

#[test]
fn ports_are_high_and_vary() {
    let ports: Vec<u16> = (0..50).map(|_| random_port()).collect();
    assert!(ports.iter().all(|p| (PORTS.0..=PORTS.1).contains(p)));
    let mut distinct = ports.clone();
    distinct.sort_unstable();
    distinct.dedup();
    assert!(distinct.len() > 40, "{ports:?}");
}

#[test]
fn a_process_whose_input_closes_is_stopped_and_one_that_is_gone_is_fine() {
    let slot = Mutex::new(Some(
        std::process::Command::new("cat")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    ));
    stop(&slot).unwrap();
    assert!(lock(&slot).is_none());
    stop(&slot).unwrap();
}

/// A transport whose commands are shell scripts here, by subcommand (`serve`, `compare`).
struct Scripted {
    nodes: Vec<NodeSpec>,
    scripts: HashMap<&'static str, String>,
    spawned: Mutex<Vec<(String, Vec<String>)>>,
}

impl Transport for Scripted {
    fn kind(&self) -> &'static str {
        "scripted"
    }

    fn nodes(&self) -> &[NodeSpec] {
        &self.nodes
    }

    fn run(
        &self,
        _node: &NodeSpec,
        _request: &AgentRequest,
        _cancel: &CancelToken,
        _events: &mut dyn FnMut(AgentEvent),
    ) -> Result<(), NodeError> {
        Err(NodeError::new("not in this test"))
    }

    fn can_spawn_agent(&self) -> bool {
        true
    }

    fn spawn_agent(
        &self,
        node: &NodeSpec,
        args: &[String],
        _cancel: &CancelToken,
    ) -> Result<Child, NodeError> {
        lock(&self.spawned).push((node.name.clone(), args.to_vec()));
        let script = self
            .scripts
            .get(args.get(1).map_or("", String::as_str))
            .ok_or_else(|| NodeError::new(format!("no script for {args:?}")))?;
        std::process::Command::new("sh")
            .args(["-c", script])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| NodeError::new(e.to_string()))
    }
}

/// A responder as `probe serve` behaves: it says it listens, echoes until its input ends.
const SERVE: &str = "echo 'nfvi-verify probe: echoing UDP on x (blocking); Ctrl-C to stop' >&2; \
                     cat >/dev/null; echo 'nfvi-verify probe: echoed 0 messages' >&2";

fn two_nodes() -> FleetReport {
    report(&[
        ("n1", Some("198.19.25.11"), true),
        ("n2", Some("198.19.25.12"), true),
    ])
}

/// Runs the check over `fleet` with `serve` and `compare` scripts.
fn check_with(fleet: FleetReport, serve: &str, compare: &str) -> (Outcome, Arc<Scripted>) {
    let areas = Areas::new(vec![Arc::new(crate::DatapathArea)]);
    let target = Arc::new(Target::local(&areas));
    let transport = Arc::new(Scripted {
        nodes: fleet.nodes.iter().map(|n| n.node.clone()).collect(),
        scripts: HashMap::from([("serve", serve.to_owned()), ("compare", compare.to_owned())]),
        spawned: Mutex::default(),
    });
    let shares = Shares::default();
    shares.set_fleet(fleet);
    shares.set_transport(transport.clone());
    let cx = CheckContext::with_shares(
        target,
        Arc::new(shares),
        CancelToken::never(),
        Duration::from_secs(1),
    );
    let o = run(&cx).unwrap_or_else(|e| e.0);
    (o, transport)
}

fn report_json() -> String {
    let p = PairedBlocks {
        first: "198.19.25.11:40000".parse().unwrap(),
        second: "198.19.25.12:40000".parse().unwrap(),
        block: 5000,
        first_p50_us: vec![12.0, 12.5, 12.2, 12.1],
        second_p50_us: vec![30.0, 30.4, 29.9, 30.2],
        lost: [0, 0],
        first_p99_us: vec![40.0, 41.0, 39.0, 40.5],
        second_p99_us: vec![90.0, 95.0, 91.0, 92.0],
        first_cdf_us: (0..=100).map(|i| 10.0 + f64::from(i)).collect(),
        second_cdf_us: (0..=100).map(|i| 25.0 + f64::from(i)).collect(),
    };
    serde_json::to_string(&p).unwrap()
}

#[test]
fn a_report_from_the_client_is_judged_with_both_distributions_and_every_command() {
    let compare = format!("printf '%s\\n' '{}'", report_json());
    let (o, t) = check_with(two_nodes(), SERVE, &compare);
    assert_eq!(o.status, Status::Passed, "{}", o.message);
    assert!(
        o.message
            .starts_with("node-to-node p50: same node (n1) 12.1 µs, cross node (n1 to n2) 30.1 µs"),
        "{}",
        o.message
    );
    let e = &o.evidence;
    assert_eq!(e.distributions.len(), 2);
    assert_eq!(e.metrics["cross-node p99"].value, 91.5);
    assert_eq!(e.metrics["same-node p99"].value, 40.25);
    assert!(e.properties["nodes"].starts_with("n1 (198.19.25.11): probe client"));
    assert_eq!(e.properties["transport"], "scripted");
    let commands: Vec<(&str, Option<i32>)> = e
        .commands
        .iter()
        .map(|c| (c.command.as_str(), c.exit_code))
        .collect();
    assert_eq!(commands.len(), 3, "{commands:?}");
    assert!(
        commands[0]
            .0
            .starts_with("on n1: nfvi-verify probe serve --bind 198.19.25.11:")
    );
    assert!(
        commands[1]
            .0
            .starts_with("on n2: nfvi-verify probe serve --bind 198.19.25.12:")
    );
    assert!(commands[2].0.contains(" --format json"), "{commands:?}");
    assert!(
        commands.iter().all(|(_, code)| *code == Some(0)),
        "{commands:?}"
    );
    assert!(e.commands[1].stderr.contains("echoed 0 messages"));
    // The client probed the two responders it was given, from the first node.
    let spawned = lock(&t.spawned);
    let (node, args) = &spawned[2];
    assert_eq!(node, "n1");
    let port = |i: usize| spawned[i].1[3].clone();
    assert_eq!((args[2].clone(), args[3].clone()), (port(0), port(1)));
}

#[test]
fn a_port_taken_everywhere_is_an_error_naming_the_node() {
    let (o, t) = check_with(
        two_nodes(),
        "echo 'error: cannot bind the responder to x: Address in use (os error 98)' >&2; exit 2",
        "exit 0",
    );
    assert_eq!(o.status, Status::Error);
    assert!(
        o.message.starts_with("`nfvi-verify probe serve --bind 198.19.25.11:")
            && o.message.ends_with(
                "` on n1 ended before it listened (exit 2): error: cannot bind the responder to x: Address in use (os error 98)"
            ),
        "{}",
        o.message
    );
    // Three ports were tried, each a process in the evidence; nothing on the second node.
    assert_eq!(lock(&t.spawned).len(), BIND_ATTEMPTS);
    assert_eq!(o.evidence.commands.len(), BIND_ATTEMPTS);
    assert!(lock(&t.spawned).iter().all(|(node, _)| node == "n1"));
}

#[test]
fn a_probe_that_is_not_answered_or_says_nothing_useful_is_an_error() {
    let (o, _) = check_with(
        two_nodes(),
        SERVE,
        "echo 'error: round 0, peer 198.19.25.12:40000: 198.19.25.12:40000 did not answer 10 probes in a row' >&2; exit 3",
    );
    assert_eq!(o.status, Status::Error);
    assert_eq!(
        o.message,
        "the probe client on n1 failed (exit 3): error: round 0, peer 198.19.25.12:40000: 198.19.25.12:40000 did not answer 10 probes in a row"
    );
    assert_eq!(
        o.evidence.commands.len(),
        3,
        "the responders are evidence too"
    );
    let (o, _) = check_with(two_nodes(), SERVE, "echo 'hello'");
    assert_eq!(o.status, Status::Error);
    assert!(
        o.message
            .starts_with("on n1: the probe client's output is not the expected JSON"),
        "{}",
        o.message
    );
    let (o, _) = check_with(two_nodes(), "exit 0", "exit 0");
    assert_eq!(o.status, Status::Error);
    assert!(
        o.message
            .ends_with("ended before it listened (exit 0): no error output"),
        "{}",
        o.message
    );
}

#[test]
fn without_a_fleet_or_with_one_node_there_is_nothing_to_measure() {
    let (o, t) = check_with(
        report(&[
            ("n1", Some("198.19.25.11"), true),
            ("n2", Some("198.19.25.12"), false),
        ]),
        SERVE,
        "exit 0",
    );
    assert_eq!(o.status, Status::Skipped);
    assert!(
        o.message.contains("1 could not be verified"),
        "{}",
        o.message
    );
    assert!(lock(&t.spawned).is_empty(), "nothing was started");
    let areas = Areas::new(vec![Arc::new(crate::DatapathArea)]);
    let cx = CheckContext::new(
        Arc::new(Target::local(&areas)),
        CancelToken::never(),
        Duration::from_secs(1),
    );
    let o = run(&cx).unwrap_or_else(|e| e.0);
    assert_eq!(o.status, Status::Skipped);
    assert!(
        o.message.starts_with("the run verifies no fleet"),
        "{}",
        o.message
    );
}
