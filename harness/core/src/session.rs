//! A run's session (nextest's runner-owned lifecycle): one tokio runtime, the areas' shared
//! state opened at the start and closed at the end under a deadline, the inventory, and the
//! execution of a plan. Nothing of a run outlives its session: no global caches.

use std::any::Any;
use std::sync::Arc;
use std::time::Duration;

use crate::area::{Areas, Shared};
use crate::inventory::Inventory;
use crate::plan::Plan;
use crate::results::CleanupRecord;
use crate::runner::{Reporter, RunOutput, RunnerBuilder};
use crate::target::Target;

/// How long an area gets to close its shared state at the end of a run.
pub const CLOSE_DEADLINE: Duration = Duration::from_secs(15);

/// The areas' shared state of one run, found by type.
#[derive(Default)]
pub struct Shares(Vec<(&'static str, Shared)>);

impl std::fmt::Debug for Shares {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|(id, _)| id))
            .finish()
    }
}

impl Shares {
    /// Opens every area's shared state (cheap: areas connect lazily).
    pub fn open(areas: &Areas, target: &Target) -> Self {
        Self(areas.iter().map(|a| (a.id(), a.open(target))).collect())
    }

    /// The shared state of type `T`, if an area opened one.
    pub fn get<T: Any + Send + Sync>(&self) -> Option<Arc<T>> {
        self.0
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
        let runner = options
            .shares(self.shares.clone())
            .build(plan, self.target.clone());
        self.runtime.block_on(runner.run(reporter))
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
            Ok(Shares(states)) => states,
            // A check task still holds it (a leaked clone): close what we can see.
            Err(shared) => shared.0.clone(),
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
