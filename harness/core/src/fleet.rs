//! A fleet: the nodes that node-level checks run on, the protocol between the jump host and
//! the node agent (`nfvi-verify node`) on each, and the fan-out that runs the agents.
//!
//! The core names no transport. An area that knows how to reach nodes (SSH from an Ansible
//! inventory, a Kubernetes DaemonSet) offers a [`Transport`] through [`crate::Area::transport`];
//! the run asks every area, and two offering one is an error. Which checks run on the nodes is the areas'
//! call too ([`crate::Area::node_level`]).
//!
//! The protocol is JSON lines. The jump host writes one [`AgentRequest`] line to the agent's
//! standard input and keeps it open: end of input means "stop", so a lost connection or a
//! Ctrl-C on the jump host stops the agent, which then runs its cleanups. The agent writes
//! [`AgentEvent`] lines to its standard output, ending with [`AgentEvent::Done`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::cancel::CancelToken;
use crate::inventory::Inventory;
use crate::outcome::{Evidence, Outcome, SkipKind, Status};
use crate::plan::Plan;
use crate::results::{CheckRun, CleanupRecord};

/// The version of the agent protocol; the agent refuses a request of another version.
pub const PROTOCOL_VERSION: u32 = 1;

/// Most a node's results may weigh (messages and evidence) before the rest is dropped and
/// the node is not verified: a hostile or broken agent cannot exhaust the jump host's memory.
pub const MAX_NODE_RESULT_BYTES: usize = 256 << 20;

/// Longest line the jump host accepts from an agent (a check's evidence is capped well
/// below this); a longer line is an error for that node, never an allocation without end.
pub const MAX_LINE_BYTES: usize = 16 << 20;

/// One node of the fleet.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct NodeSpec {
    /// Its name in the inventory (or the Kubernetes node name).
    pub name: String,
    /// Its roles: the inventory groups it belongs to (`control`, `compute`, …) or its
    /// Kubernetes roles.
    #[serde(default)]
    pub roles: Vec<String>,
    /// The address the jump host reaches it at, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
}

impl NodeSpec {
    /// Whether the node has a role.
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }
}

/// What the jump host asks a node agent to do: the first line on its standard input.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AgentRequest {
    /// [`PROTOCOL_VERSION`].
    pub protocol: u32,
    /// The jump host's tool version; the agent refuses another.
    pub version: String,
    /// The node the agent runs on, as the jump host knows it.
    pub node: NodeSpec,
    /// The suite.
    pub suite: String,
    /// `--filter` patterns.
    #[serde(default)]
    pub filters: Vec<String>,
    /// `--skip` patterns.
    #[serde(default)]
    pub skips: Vec<String>,
    /// The check IDs to run (the node-level checks of the jump host's plan).
    pub checks: Vec<String>,
    /// `--strict`.
    #[serde(default)]
    pub strict: bool,
    /// Checks run at once on the node.
    pub jobs: usize,
    /// `--timeout`, seconds.
    #[serde(default)]
    pub timeout_secs: Option<u64>,
    /// The target as the jump host resolved it (TOML). Secrets are never in it: they come
    /// from the environment, which the agent does not receive.
    pub target_toml: String,
}

/// One finished check, as the agent reports it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AgentCheck {
    /// Check ID.
    pub id: String,
    /// What happened.
    pub status: Status,
    /// For skips: why.
    #[serde(default)]
    pub skip_kind: Option<SkipKind>,
    /// The message.
    pub message: String,
    /// What it observed.
    #[serde(default)]
    pub evidence: Evidence,
    /// When it started.
    #[serde(default)]
    pub started_at: Option<DateTime<Utc>>,
    /// How long it ran.
    pub duration_secs: f64,
    /// Its cleanups.
    #[serde(default)]
    pub cleanup: Vec<CleanupRecord>,
}

impl AgentCheck {
    /// The agent's record of a finished check.
    pub fn from_run(id: &str, run: &CheckRun) -> Self {
        Self {
            id: id.to_owned(),
            status: run.outcome.status,
            skip_kind: run.outcome.skip_kind(),
            message: run.outcome.message.clone(),
            evidence: (*run.outcome.evidence).clone(),
            started_at: run.started_at,
            duration_secs: run.duration.as_secs_f64(),
            cleanup: run.cleanup.clone(),
        }
    }

    /// The outcome it carries. A skip without a kind, or a kind on anything but a skip, is
    /// taken as the agent said it as far as it can be: the status wins.
    fn outcome(&self) -> Outcome {
        let mut outcome = match (self.status, self.skip_kind) {
            (Status::Skipped, kind) => Outcome::skip(crate::outcome::SkipReason {
                kind: kind.unwrap_or(SkipKind::NotApplicable),
                message: self.message.clone(),
            }),
            (Status::Passed, _) => Outcome::pass(self.message.clone()),
            (Status::Failed, _) => Outcome::fail(self.message.clone()),
            (Status::Error, _) => Outcome::error(self.message.clone()),
            (Status::TimedOut, _) => Outcome::timed_out(self.message.clone()),
        };
        *outcome.evidence = self.evidence.clone();
        outcome
    }
}

/// One line of the agent's standard output.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum AgentEvent {
    /// The agent accepted the request.
    Hello {
        /// Its tool version.
        version: String,
    },
    /// What the node is made of.
    Inventory {
        /// The node's inventory, sealed.
        inventory: Box<Inventory>,
    },
    /// A check started.
    Started {
        /// Its ID.
        id: String,
    },
    /// A check finished or was skipped.
    Finished(Box<AgentCheck>),
    /// The agent is done; nothing follows.
    Done {
        /// Why the node's run stopped early, if it did.
        #[serde(default)]
        cancelled: bool,
        /// Errors closing the node's session.
        #[serde(default)]
        warnings: Vec<String>,
    },
    /// The agent cannot run the request (bad request, other version, bad target).
    Fatal {
        /// Why.
        message: String,
    },
}

impl AgentEvent {
    /// The event as one line of JSON, with its newline.
    pub fn to_line(&self) -> String {
        let mut s = serde_json::to_string(self).expect("agent events serialise");
        s.push('\n');
        s
    }

    /// Reads one line. Hostile or broken input is an error naming what was wrong, never a
    /// panic.
    pub fn parse(line: &str) -> Result<Self, String> {
        serde_json::from_str(line).map_err(|e| {
            format!(
                "the node agent wrote a line that is not an agent event ({e}): {}",
                crate::truncate_chars(line, 200)
            )
        })
    }
}

/// A node could not be verified, or not completely.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct NodeError {
    /// What went wrong, naming the cause (the node is named by the caller).
    pub message: String,
}

impl NodeError {
    /// An error with a message.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }
}

/// A fleet cannot be reached.
#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    /// The fleet's description is wrong (an inventory that does not parse): exit code 2.
    #[error("{0}")]
    Input(String),
    /// The fleet cannot be reached at all (no `ssh` client, no cluster): exit code 3.
    #[error("{0}")]
    Unavailable(String),
}

/// A way to run the node agent on the nodes of a fleet.
pub trait Transport: Send + Sync {
    /// `ssh`, `kubernetes`.
    fn kind(&self) -> &'static str;

    /// The nodes, in the order the reports show them.
    fn nodes(&self) -> &[NodeSpec];

    /// How many nodes are verified at once.
    fn parallel(&self) -> usize {
        4
    }

    /// Runs the agent on `node` with `request`, handing each event to `events` as it
    /// arrives. Returns when the agent said [`AgentEvent::Done`] (Ok) or when the node could
    /// not be verified to the end (Err, naming the cause). When `cancel` fires it stops the
    /// agent (closing its input), waits for its cleanups for a bounded time, and returns.
    fn run(
        &self,
        node: &NodeSpec,
        request: &AgentRequest,
        cancel: &CancelToken,
        events: &mut dyn FnMut(AgentEvent),
    ) -> Result<(), NodeError>;

    /// Facts a reviewer must know about how nodes were reached (host-key policy, …),
    /// recorded in the results.
    fn notes(&self) -> Vec<String> {
        Vec::new()
    }

    /// Releases what the transport holds for the run (connections), under a deadline.
    fn close(&self) -> Vec<CleanupRecord> {
        Vec::new()
    }

    /// Whether [`Transport::spawn_agent`] can run commands on the nodes; checks of the whole
    /// NFVI that need it are not applicable over a transport that cannot.
    fn can_spawn_agent(&self) -> bool {
        false
    }

    /// Starts `nfvi-verify ARGS` on `node` as a command of its own (not the node agent's
    /// protocol), for checks of the whole NFVI that need a process on a node (a responder,
    /// a probe), and returns the local process that carries it, with its standard input,
    /// output and error piped.
    ///
    /// The command's life is tied to that process: when its standard input closes (the
    /// caller drops it, the process is killed, the connection is lost), the command on the
    /// node is stopped (SIGTERM) and whatever the transport put on the node for it is
    /// removed. A command that ends on its own ends the process, with its exit code. The
    /// caller owns the process: it must close its input and reap it (register that as a
    /// cleanup before calling).
    fn spawn_agent(
        &self,
        node: &NodeSpec,
        args: &[String],
        cancel: &CancelToken,
    ) -> Result<std::process::Child, NodeError> {
        let _ = (args, cancel);
        Err(NodeError::new(format!(
            "this transport ({}) cannot run commands on nodes (node {})",
            self.kind(),
            node.name
        )))
    }
}

/// One node in results.json.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct NodeReport {
    /// The node.
    #[serde(flatten)]
    pub node: NodeSpec,
    /// How it was reached (`ssh`, `kubernetes`).
    pub transport: String,
    /// Every node-level check ran on it to the end.
    pub verified: bool,
    /// Why it could not be verified (completely).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// What it is made of, as its agent reported it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inventory: Option<Inventory>,
    /// Warnings of the agent (closing its session).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// The fleet as a run saw it: how nodes were reached, and each node.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct FleetReport {
    /// `ssh`, `kubernetes`.
    pub transport: String,
    /// Facts about how nodes were reached (host-key policy, …).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// Every node, in inventory order.
    pub nodes: Vec<NodeReport>,
}

impl FleetReport {
    /// The nodes that could not be verified completely.
    pub fn unverified(&self) -> impl Iterator<Item = &NodeReport> {
        self.nodes.iter().filter(|n| !n.verified)
    }
}

/// What a node run reports as it goes: for the console.
pub enum FleetEvent<'a> {
    /// A node-level check started on a node.
    Started {
        /// The node.
        node: &'a str,
        /// Plan index.
        index: usize,
    },
    /// A node-level check finished on a node.
    Finished {
        /// The node.
        node: &'a str,
        /// What happened.
        run: &'a CheckRun,
    },
    /// A node could not be verified (completely).
    NodeFailed {
        /// The node.
        node: &'a str,
        /// Why.
        error: &'a str,
    },
}

/// Runs the agent on every node of `transport`, at most `transport.parallel()` at once,
/// for the plan items in `node_items` (plan indices). Every (node, item) pair gets exactly
/// one [`CheckRun`]: the agent's, or an error naming the node and why it could not be
/// verified, or an interrupted skip when the run was cancelled before the node started.
pub fn fan_out(
    transport: &dyn Transport,
    plan: &Plan,
    node_items: &[usize],
    template: &AgentRequest,
    cancel: &CancelToken,
    on_event: &mut dyn FnMut(FleetEvent<'_>),
) -> (Vec<CheckRun>, FleetReport) {
    fan_out_within(
        MAX_NODE_RESULT_BYTES,
        transport,
        plan,
        node_items,
        template,
        cancel,
        on_event,
    )
}

/// [`fan_out`] with another budget per node than [`MAX_NODE_RESULT_BYTES`] (for tests).
#[doc(hidden)]
pub fn fan_out_within(
    budget: usize,
    transport: &dyn Transport,
    plan: &Plan,
    node_items: &[usize],
    template: &AgentRequest,
    cancel: &CancelToken,
    on_event: &mut dyn FnMut(FleetEvent<'_>),
) -> (Vec<CheckRun>, FleetReport) {
    let by_id: HashMap<&str, usize> = node_items
        .iter()
        .map(|&i| (plan.items[i].check.meta().id.as_str(), i))
        .collect();
    let nodes = transport.nodes();
    let next = Mutex::new(0usize);
    let (tx, rx) = mpsc::channel::<(usize, NodeMessage)>();
    let workers = transport.parallel().clamp(1, nodes.len().max(1));

    let mut runs = Vec::new();
    let mut reports: Vec<NodeReport> = nodes
        .iter()
        .map(|n| NodeReport {
            node: n.clone(),
            transport: transport.kind().to_owned(),
            verified: false,
            error: None,
            inventory: None,
            warnings: Vec::new(),
        })
        .collect();
    let mut seen: Vec<Vec<bool>> = vec![vec![false; plan.items.len()]; nodes.len()];
    let mut received: Vec<usize> = vec![0; nodes.len()];

    std::thread::scope(|scope| {
        for _ in 0..workers {
            let tx = tx.clone();
            let next = &next;
            scope.spawn(move || {
                loop {
                    let n = {
                        let mut guard = next.lock().unwrap_or_else(|p| p.into_inner());
                        let n = *guard;
                        *guard += 1;
                        n
                    };
                    let Some(node) = nodes.get(n) else { break };
                    if cancel.is_cancelled() {
                        // Accounted for like a node that failed: each of its checks
                        // is reported, as interrupted.
                        let stopped =
                            NodeError::new("the run was stopped before this node started");
                        let _ = tx.send((n, NodeMessage::End(Err(stopped))));
                        continue;
                    }
                    let mut request = template.clone();
                    request.node = node.clone();
                    let result = transport.run(node, &request, cancel, &mut |event| {
                        let _ = tx.send((n, NodeMessage::Event(event)));
                    });
                    let _ = tx.send((n, NodeMessage::End(result)));
                }
            });
        }
        drop(tx);

        // The calling thread turns events into check runs and reports them as they come.
        for (n, message) in rx {
            let name = nodes[n].name.as_str();
            let report = &mut reports[n];
            match message {
                NodeMessage::Event(AgentEvent::Inventory { inventory }) => {
                    report.inventory = Some(*inventory);
                }
                NodeMessage::Event(AgentEvent::Started { id }) => {
                    if let Some(&index) = by_id.get(id.as_str()) {
                        on_event(FleetEvent::Started { node: name, index });
                    }
                }
                NodeMessage::Event(AgentEvent::Finished(check)) => {
                    // What one node may make this process keep: past the budget its
                    // results are dropped, and its unreported checks become errors.
                    let size = check.message.len()
                        + serde_json::to_vec(&check.evidence).map_or(0, |v| v.len());
                    received[n] = received[n].saturating_add(size);
                    if received[n] > budget {
                        if report.error.is_none() {
                            report.error = Some(format!(
                                "the node agent sent more than {budget} bytes of results; the \
                                 rest was dropped"
                            ));
                        }
                        continue;
                    }
                    let Some(&index) = by_id.get(check.id.as_str()) else {
                        tracing::warn!(node = name, id = %check.id, "the agent reported a check that was not asked for; ignored");
                        continue;
                    };
                    if std::mem::replace(&mut seen[n][index], true) {
                        tracing::warn!(node = name, id = %check.id, "the agent reported a check twice; the first report stands");
                        continue;
                    }
                    let run = CheckRun {
                        index,
                        node: Some(name.to_owned()),
                        outcome: check.outcome(),
                        started_at: check.started_at,
                        duration: duration_from_secs(check.duration_secs),
                        cleanup: check.cleanup,
                    };
                    on_event(FleetEvent::Finished {
                        node: name,
                        run: &run,
                    });
                    runs.push(run);
                }
                NodeMessage::Event(AgentEvent::Done {
                    cancelled,
                    warnings,
                }) => {
                    report.warnings = warnings;
                    if cancelled && report.error.is_none() {
                        report.error = Some("the run was stopped before the node finished".into());
                    }
                }
                NodeMessage::Event(AgentEvent::Fatal { message }) => {
                    report.error = Some(format!("the node agent refused to run: {message}"));
                }
                NodeMessage::Event(AgentEvent::Hello { .. }) => {}
                NodeMessage::End(result) => {
                    if let Err(e) = result
                        && report.error.is_none()
                    {
                        report.error = Some(e.message);
                    }
                    // Every asked-for check this node did not report is accounted for.
                    let missing: Vec<usize> = node_items
                        .iter()
                        .copied()
                        .filter(|&i| !seen[n][i])
                        .collect();
                    if report.error.is_none() && !missing.is_empty() {
                        report.error = Some(format!(
                            "the node agent ended without reporting {} of the checks asked for",
                            missing.len()
                        ));
                    }
                    report.verified = report.error.is_none();
                    if let Some(error) = &report.error {
                        on_event(FleetEvent::NodeFailed { node: name, error });
                    }
                    for index in missing {
                        seen[n][index] = true;
                        let outcome = if cancel.is_cancelled() {
                            Outcome::skip(crate::outcome::SkipReason {
                                kind: SkipKind::Interrupted,
                                message: format!(
                                    "not run on node {name}: the run was stopped first"
                                ),
                            })
                        } else {
                            Outcome::error(format!(
                                "node {name} could not be verified: {}",
                                report.error.as_deref().unwrap_or("no report")
                            ))
                        };
                        let run = CheckRun {
                            index,
                            node: Some(name.to_owned()),
                            outcome,
                            started_at: None,
                            duration: Duration::ZERO,
                            cleanup: Vec::new(),
                        };
                        on_event(FleetEvent::Finished {
                            node: name,
                            run: &run,
                        });
                        runs.push(run);
                    }
                }
            }
        }
    });
    let report = FleetReport {
        transport: transport.kind().to_owned(),
        notes: transport.notes(),
        nodes: reports,
    };
    (runs, report)
}

enum NodeMessage {
    Event(AgentEvent),
    End(Result<(), NodeError>),
}

fn duration_from_secs(secs: f64) -> Duration {
    // Hostile input (negative, NaN, enormous) becomes zero or a day, never a panic.
    Duration::try_from_secs_f64(secs.clamp(0.0, 86_400.0)).unwrap_or_default()
}

/// A transport for tests: each node answers with a script of events, or fails.
pub struct ScriptedTransport {
    /// The nodes.
    pub nodes: Vec<NodeSpec>,
    /// Per node name: the events to deliver, then the result.
    pub scripts: HashMap<String, (Vec<AgentEvent>, Result<(), NodeError>)>,
    /// The requests the transport saw.
    pub requests: Arc<Mutex<Vec<AgentRequest>>>,
}

impl Transport for ScriptedTransport {
    fn kind(&self) -> &'static str {
        "scripted"
    }

    fn nodes(&self) -> &[NodeSpec] {
        &self.nodes
    }

    fn run(
        &self,
        node: &NodeSpec,
        request: &AgentRequest,
        _cancel: &CancelToken,
        events: &mut dyn FnMut(AgentEvent),
    ) -> Result<(), NodeError> {
        self.requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(request.clone());
        let Some((script, result)) = self.scripts.get(&node.name) else {
            return Err(NodeError::new("no script for this node"));
        };
        for e in script {
            events(e.clone());
        }
        result.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_lines_are_errors_not_panics() {
        for line in [
            "",
            "{",
            "null",
            r#"{"event":"finished"}"#,
            r#"{"event":"finished","id":1}"#,
            r#"{"event":"nope"}"#,
            "\u{0}\u{ffff}",
        ] {
            assert!(AgentEvent::parse(line).is_err(), "{line:?}");
        }
        let done = AgentEvent::Done {
            cancelled: false,
            warnings: vec![],
        };
        assert_eq!(AgentEvent::parse(done.to_line().trim()).unwrap(), done);
    }

    #[test]
    fn a_transport_runs_no_commands_unless_it_says_so() {
        let t = ScriptedTransport {
            nodes: vec![],
            scripts: HashMap::new(),
            requests: Arc::default(),
        };
        let node = NodeSpec {
            name: "compute01".into(),
            roles: vec![],
            address: None,
        };
        assert!(!t.can_spawn_agent());
        let e = t
            .spawn_agent(&node, &["--version".to_owned()], &CancelToken::never())
            .unwrap_err();
        assert_eq!(
            e.message,
            "this transport (scripted) cannot run commands on nodes (node compute01)"
        );
    }

    #[test]
    fn hostile_durations_never_panic() {
        for s in [f64::NAN, -1.0, f64::INFINITY, 1e300] {
            let _ = duration_from_secs(s);
        }
        assert_eq!(duration_from_secs(1.5), Duration::from_millis(1500));
    }
}
