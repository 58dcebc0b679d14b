//! Putting a run's results together: from the plan and the check runs, from a killed run's
//! carried-over results and the resumed part, from a journal's header and the checks that
//! finished; and judging them (waivers, requirement statuses, totals, verdict,
//! certification) by the rules in [`crate::judge`].

use chrono::{DateTime, Utc};

use super::{
    CheckResult, CheckRun, RequirementResult, Resumed, RunMeta, RunResults, SCHEMA_VERSION,
    TargetInfo, Totals, TraceStatus, Verdict,
};
use crate::cancel::CancelReason;
use crate::judge::{Certification, totals, trace_status, verdict_with_totals};
use crate::plan::Plan;
use crate::waiver::Waiver;

impl RunResults {
    /// Puts the plan and the runs together, computing statuses, totals and the verdict.
    /// Checks without a run (never started) must not occur: the runner reports every planned
    /// check exactly once, and the fleet every node-level check once per node. Node-level
    /// results follow the plan order, then the fleet's node order.
    pub fn assemble(plan: &Plan, mut runs: Vec<CheckRun>, meta: RunMeta) -> Self {
        let node_order = |node: &Option<String>| {
            meta.fleet.as_ref().and_then(|f| {
                node.as_ref()
                    .and_then(|n| f.nodes.iter().position(|r| r.node.name == *n))
            })
        };
        runs.sort_by_key(|r| (r.index, node_order(&r.node)));
        let checks: Vec<CheckResult> = runs
            .into_iter()
            .map(|run| CheckResult::of(plan, run))
            .collect();
        Self::from_parts(plan, checks, meta)
    }

    /// The results of a run that was killed and then resumed: `carried` are the results
    /// its journal kept (verbatim), `runs` those of the resumed part; together in plan
    /// order (then the fleet's node order), judged as one run.
    pub fn resumed(
        plan: &Plan,
        carried: Vec<CheckResult>,
        runs: Vec<CheckRun>,
        meta: RunMeta,
        resumed_at: DateTime<Utc>,
    ) -> Self {
        let carried_over = carried.len();
        let position = |id: &str| {
            plan.items
                .iter()
                .position(|i| i.check.meta().id == id)
                .unwrap_or(usize::MAX)
        };
        let node_order = |node: &Option<String>| {
            meta.fleet.as_ref().and_then(|f| {
                node.as_ref()
                    .and_then(|n| f.nodes.iter().position(|r| r.node.name == *n))
            })
        };
        let mut checks: Vec<CheckResult> = carried
            .into_iter()
            .chain(runs.into_iter().map(|run| CheckResult::of(plan, run)))
            .collect();
        checks.sort_by_cached_key(|c| (position(&c.id), node_order(&c.node)));
        let mut r = Self::from_parts(plan, checks, meta);
        r.resumed_from = Some(Resumed {
            carried_over,
            resumed_at,
        });
        r
    }

    /// The run before any check finished: what a journal starts with, so that a run killed
    /// before it could write results.json can still be reported ([`RunResults::recover`]).
    pub fn header(plan: &Plan, meta: RunMeta) -> Self {
        Self::from_parts(plan, Vec::new(), meta)
    }

    /// The results of a run that ended without writing them (killed, crashed): its
    /// [`RunResults::header`] and the checks that finished, judged by the same rules and
    /// marked incomplete. `finished_at` is when the last check finished.
    pub fn recover(header: Self, checks: Vec<CheckResult>) -> Self {
        Self::recover_stopped(header, checks, CancelReason::Killed, None)
    }

    /// [`RunResults::recover`] for a run that stopped for `reason`, and for a harness error
    /// (a panic) when one stopped it.
    pub fn recover_stopped(
        header: Self,
        checks: Vec<CheckResult>,
        reason: CancelReason,
        harness_error: Option<String>,
    ) -> Self {
        let mut r = header;
        r.checks = checks;
        r.finished_at = r
            .checks
            .iter()
            .filter_map(|c| {
                let start = c.started_at?;
                Some(start + chrono::Duration::milliseconds((c.duration_secs * 1000.0) as i64))
            })
            .max()
            .unwrap_or(r.started_at)
            .max(r.started_at);
        r.duration_secs = (r.finished_at - r.started_at)
            .to_std()
            .unwrap_or_default()
            .as_secs_f64();
        r.complete = false;
        r.cancel_reason = Some(reason);
        r.harness_error = harness_error;
        // The header recorded the waivers as given; they apply to the journal's results
        // as they would have to the whole run's.
        let waivers = r.waivers.take().map(|w| {
            let list: Vec<Waiver> = w.waivers.into_iter().map(|u| u.waiver).collect();
            (w.file, list)
        });
        r.judge(waivers);
        r
    }

    /// Applies the waivers, then computes statuses, totals, the verdict and the
    /// certification from the checks (the rules are in [`crate::judge`]).
    fn judge(&mut self, waivers: Option<(String, Vec<Waiver>)>) {
        self.waivers = waivers.map(|(file, list)| {
            crate::waiver::apply(
                &file,
                &list,
                &mut self.checks,
                &self.suite.unwaivable,
                self.started_at.date_naive(),
            )
        });
        for req in &mut self.requirements {
            req.status = trace_status(&req.row, &self.checks, self.strict);
        }
        self.totals = totals(&self.checks, &self.requirements, self.strict);
        self.verdict = verdict_with_totals(&self.checks, &self.totals, self.strict, self.complete);
        self.certification = crate::judge::certification(self);
    }

    fn from_parts(plan: &Plan, checks: Vec<CheckResult>, meta: RunMeta) -> Self {
        let requirements: Vec<RequirementResult> = plan
            .requirements
            .iter()
            .map(|row| RequirementResult {
                status: TraceStatus::Untested,
                row: row.clone(),
            })
            .collect();
        let complete = meta.cancel_reason.is_none();
        let mut r = Self {
            schema_version: SCHEMA_VERSION,
            tool: meta.tool,
            run_id: meta.run_id,
            suite: plan.suite.clone(),
            target: TargetInfo {
                name: plan.target.clone(),
                file: meta.target_file,
                profile: plan.profile,
            },
            strict: plan.strict,
            started_at: meta.started_at,
            finished_at: meta.finished_at,
            duration_secs: (meta.finished_at - meta.started_at)
                .to_std()
                .unwrap_or_default()
                .as_secs_f64(),
            complete,
            cancel_reason: meta.cancel_reason,
            harness_error: None,
            resumed_from: None,
            verdict: Verdict::Incomplete,
            totals: Totals::default(),
            conditions: meta.conditions,
            waivers: None,
            certification: Certification::default(),
            inventory: meta.inventory,
            fleet: meta.fleet,
            invocation: meta.invocation,
            resource_usage: meta.resource_usage,
            requirements,
            checks,
        };
        r.judge(meta.waivers);
        r
    }
}
