//! A run's session (nextest's runner-owned lifecycle): one tokio runtime, the areas' shared
//! state opened at the start and closed at the end under a deadline, the inventory, and the
//! execution of a plan. Nothing of a run outlives its session: no global caches.

use std::any::Any;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use crate::area::{Areas, Shared};
use crate::cancel::{CancelReason, CancelSource};
use crate::fleet::{AgentRequest, FleetEvent, FleetReport, Transport};
use crate::inventory::Inventory;
use crate::plan::Plan;
use crate::results::CleanupRecord;
use crate::runner::{Reporter, RunEvent, RunOutput, RunnerBuilder};
use crate::target::Target;

/// How long an area gets to close its shared state at the end of a run.
pub const CLOSE_DEADLINE: Duration = Duration::from_secs(15);

/// The areas' shared state of one run, found by type, what the run learnt of its fleet and
/// the transport that reached it.
#[derive(Default)]
pub struct Shares {
    states: Vec<(&'static str, Shared)>,
    fleet: OnceLock<FleetReport>,
    transport: OnceLock<Arc<dyn Transport>>,
    planned: OnceLock<std::collections::HashSet<String>>,
    ledger: OnceLock<Arc<crate::ledger::Ledger>>,
}

impl std::fmt::Debug for Shares {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.states.iter().map(|(id, _)| id))
            .finish()
    }
}

impl Shares {
    /// Opens every area's shared state (cheap: areas connect lazily).
    pub fn open(areas: &Areas, target: &Target) -> Self {
        Self {
            states: areas.iter().map(|a| (a.id(), a.open(target))).collect(),
            fleet: OnceLock::new(),
            transport: OnceLock::new(),
            planned: OnceLock::new(),
            ledger: OnceLock::new(),
        }
    }

    /// Records the checks the run's plan runs (the session does when it executes a plan).
    pub fn set_planned(&self, ids: impl IntoIterator<Item = String>) {
        let _ = self.planned.set(ids.into_iter().collect());
    }

    /// Whether the plan runs `id`; true when no plan was recorded.
    pub fn planned(&self, id: &str) -> bool {
        self.planned.get().is_none_or(|p| p.contains(id))
    }

    /// Records the run's ledger of upstream tests (the command line does, with the output
    /// directory; once).
    pub fn set_ledger(&self, ledger: Arc<crate::ledger::Ledger>) {
        let _ = self.ledger.set(ledger);
    }

    /// The run's ledger; one that keeps nothing when none was set.
    pub fn ledger(&self) -> Arc<crate::ledger::Ledger> {
        self.ledger
            .get_or_init(|| Arc::new(crate::ledger::Ledger::none()))
            .clone()
    }

    /// The fleet's nodes and their inventories, once the node-level checks ran on them
    /// (checks of the whole NFVI run after them and compare the nodes).
    pub fn fleet(&self) -> Option<&FleetReport> {
        self.fleet.get()
    }

    /// Records the fleet (the session does, after the nodes ran; tests may).
    pub fn set_fleet(&self, report: FleetReport) {
        let _ = self.fleet.set(report);
    }

    /// The transport that reached the fleet, in a run over one: checks of the whole NFVI
    /// start processes on the nodes through it ([`Transport::spawn_agent`]).
    pub fn transport(&self) -> Option<&Arc<dyn Transport>> {
        self.transport.get()
    }

    /// Records the run's transport (the session does, before the nodes run; tests may).
    pub fn set_transport(&self, transport: Arc<dyn Transport>) {
        let _ = self.transport.set(transport);
    }

    /// The shared state of type `T`, if an area opened one.
    pub fn get<T: Any + Send + Sync>(&self) -> Option<Arc<T>> {
        self.states
            .iter()
            .find_map(|(_, s)| s.clone().downcast::<T>().ok())
    }
}

/// One run: the runtime, the target, the areas and their shared state.
pub struct Session {
    runtime: tokio::runtime::Runtime,
    areas: Areas,
    target: Arc<Target>,
    shares: Arc<Shares>,
}

impl Session {
    /// Starts a session with `workers` runtime threads (2 to 8) and opens the areas' state.
    pub fn open(areas: Areas, target: Target, workers: usize) -> std::io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers.clamp(2, 8))
            .enable_all()
            .thread_name("nfvi-runner")
            .build()?;
        let shares = Arc::new(Shares::open(&areas, &target));
        Ok(Self {
            runtime,
            areas,
            target: Arc::new(target),
            shares,
        })
    }

    /// The target.
    pub fn target(&self) -> &Arc<Target> {
        &self.target
    }

    /// Runs a future on the session's runtime (for commands that are not a plan).
    pub fn block_on<F: std::future::Future>(&self, future: F) -> F::Output {
        self.runtime.block_on(future)
    }

    /// What every area knows of the NFVI's make-up, sealed with its fingerprint.
    pub fn inventory(&self) -> Inventory {
        self.runtime.block_on(async {
            let mut inventory = Inventory::default();
            for area in self.areas.iter() {
                area.inventory(&self.target, &mut inventory).await;
            }
            inventory.seal()
        })
    }

    /// Executes a plan with the runner's options; checks see the session's shared state.
    pub fn execute(
        &self,
        plan: &Plan,
        options: RunnerBuilder,
        reporter: &mut dyn Reporter,
    ) -> RunOutput {
        self.shares.set_planned(planned(plan));
        let runner = options
            .shares(self.shares.clone())
            .build(plan, self.target.clone());
        self.runtime.block_on(runner.run(reporter))
    }

    /// The run's shared state (to record its ledger before [`Self::execute`]).
    pub fn shares(&self) -> &Arc<Shares> {
        &self.shares
    }

    /// Executes a plan over a fleet: the node-level checks on every node through
    /// `transport` first (each node's agent asked with `template`), then the checks of the
    /// whole NFVI here, which can compare the nodes ([`Shares::fleet`]) and start
    /// processes on them through the same transport ([`Shares::transport`]). One
    /// cancellation covers both: a signal during the node phase stops the agents and starts
    /// nothing after it.
    pub fn execute_fleet(
        &self,
        plan: &Plan,
        options: RunnerBuilder,
        transport: Arc<dyn Transport>,
        template: &AgentRequest,
        reporter: &mut dyn Reporter,
    ) -> (RunOutput, FleetReport) {
        let (source, token) = CancelSource::new();
        let listener = {
            let _guard = self.runtime.enter();
            crate::runner::spawn_signal_listener(source.clone())
        };
        let node_items: Vec<usize> = (0..plan.items.len())
            .filter(|&i| self.areas.node_level(plan.items[i].check.meta()))
            .collect();
        let mut template = template.clone();
        template.checks = node_items
            .iter()
            .map(|&i| plan.items[i].check.meta().id.clone())
            .collect();
        // One guard for both phases: a reporter's panic while the nodes run cancels them (as
        // a signal would), and the reporter hears nothing more.
        let mut guarded = crate::runner::Guarded::new(reporter, source.clone());
        guarded.report(&RunEvent::RunStarted {
            plan,
            results: plan.items.len()
                + node_items.len() * transport.nodes().len().saturating_sub(1),
        });
        self.shares.set_transport(transport.clone());
        self.shares.set_planned(planned(plan));
        let (remote, report) = crate::fleet::fan_out(
            transport.as_ref(),
            plan,
            &node_items,
            &template,
            &token,
            &mut |event| match event {
                FleetEvent::Started { index, .. } => {
                    guarded.report(&RunEvent::CheckStarted {
                        index,
                        id: &plan.items[index].check.meta().id,
                    });
                }
                FleetEvent::Finished { run, .. } => {
                    guarded.report(&RunEvent::CheckFinished {
                        id: &plan.items[run.index].check.meta().id,
                        run,
                    });
                }
                FleetEvent::NodeFailed { node, error } => {
                    tracing::warn!(node, error, "node not verified");
                    guarded.report(&RunEvent::NodeFailed { node, error });
                }
            },
        );
        self.shares.set_fleet(report.clone());
        let runner = options
            .shares(self.shares.clone())
            .cancel_source(source)
            .handle_signals(false)
            .elsewhere(node_items)
            .announce(false)
            .build(plan, self.target.clone());
        let mut output = self.runtime.block_on(runner.run(&mut guarded));
        listener.abort();
        if let Some(p) = guarded.panic.take() {
            output.panic.get_or_insert(p);
            output.cancel_reason = Some(CancelReason::Panic);
        }
        output.runs.extend(remote);
        (output, report)
    }

    /// Closes every area's shared state, each under [`CLOSE_DEADLINE`], and reports what
    /// could not be closed.
    pub fn close(self) -> Vec<CleanupRecord> {
        let Session {
            runtime,
            areas,
            shares,
            ..
        } = self;
        let states: Vec<(&'static str, Shared)> = match Arc::try_unwrap(shares) {
            Ok(shares) => shares.states,
            // A check task still holds it (a leaked clone): close what we can see.
            Err(shared) => shared.states.clone(),
        };
        let records = runtime.block_on(async {
            let mut records = Vec::new();
            for (id, state) in states {
                let Some(area) = areas.get(id) else { continue };
                let error = match tokio::time::timeout(CLOSE_DEADLINE, area.close(state)).await {
                    Ok(Ok(())) => None,
                    Ok(Err(e)) => Some(e),
                    Err(_) => Some(format!(
                        "did not close within {} s",
                        CLOSE_DEADLINE.as_secs()
                    )),
                };
                records.push(CleanupRecord {
                    action: format!("close the {id} area's shared state"),
                    error,
                });
            }
            records
        });
        // A blocking cleanup past its deadline may still run; the run's results must not
        // wait for it.
        runtime.shutdown_timeout(CLOSE_DEADLINE);
        records
    }
}

/// The IDs of the checks a plan runs.
fn planned(plan: &Plan) -> Vec<String> {
    plan.items
        .iter()
        .filter(|i| matches!(i.decision, crate::plan::Decision::Run))
        .map(|i| i.check.meta().id.clone())
        .collect()
}
