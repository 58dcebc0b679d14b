//! CNI fuzzing, beyond every anchor (suite `cni-fuzz`): where the catalog tries one input
//! shape per assertion, the campaign generates configurations and environments per plugin
//! from the spec and the plugins' schemas (missing, extra and wrongly typed fields, empty and
//! huge values, absent or malformed prevResult, unknown cniVersion, odd CNI_ARGS and
//! capability arguments, unicode, stdin that is not JSON), runs them against the real plugin
//! binaries in the catalog's sandbox, and judges the contract every plugin shares
//! ([`judge`]). Everything follows from the seed (`--seed`, printed in the results); each
//! finding is shrunk to the smallest input that still fails the same way and reported with
//! the exact stdin and environment and a shell line that replays it.
//!
//! - [`rng`]: the seeded generator; [`generate`] and [`templates`]: the cases;
//! - [`worker`]: the sandbox and the runtime's sequence (ADD, CHECK, DEL), residue read back;
//! - [`judge`]: the contract, a pure function; [`shrink`]: delta debugging;
//! - [`case`]: a case and its replay line; [`campaign`]: one plugin's campaign and outcome.

use std::sync::Arc;
use std::time::Duration;

use nfvi_harness::{Check, CheckMeta, ConfigError, Need, Severity, declare};
use nfvi_reference_model::Area;

use crate::CniConfig;

mod campaign;
mod case;
mod generate;
mod judge;
mod rng;
mod shrink;
mod templates;
mod worker;

/// The CNI contract the campaign gives evidence for (as the catalog's checks).
const CNI: &[&str] = &["inf.ntw.08", "ra2.ntw.002", "ra2.ntw.009"];

/// The deadline of one plugin's campaign: it waits for its turn (plugins fuzz one at a
/// time), fuzzes for its share of the budget, then shrinks its findings.
const CAMPAIGN_DEADLINE: Duration = Duration::from_secs(4 * 3600);

/// The largest budget: every campaign must end before [`CAMPAIGN_DEADLINE`].
const MAX_BUDGET: u64 = 3 * 3600;

/// `cni.fuzz_*` keys.
pub(crate) fn validate(cni: &CniConfig) -> Result<(), ConfigError> {
    ConfigError::ensure(
        (1..=MAX_BUDGET).contains(&cni.fuzz_budget),
        "fuzz_budget",
        format!(
            "cni.fuzz_budget = {}: give 1 to {MAX_BUDGET} seconds",
            cni.fuzz_budget
        ),
    )?;
    ConfigError::ensure(
        cni.fuzz_workers <= 64,
        "fuzz_workers",
        format!(
            "cni.fuzz_workers = {}: at most 64 invocations at once",
            cni.fuzz_workers
        ),
    )
}

/// One check per plugin: `cni.fuzz.<plugin>`.
pub(crate) fn checks() -> Vec<Arc<dyn Check>> {
    templates::PLUGINS
        .iter()
        .map(|(plugin, _, _)| {
            let plugin: &'static str = plugin;
            let meta = CheckMeta::new(
                format!("cni.fuzz.{plugin}"),
                Area::Cni,
                format!("Generated configurations and environments never break the CNI contract ({plugin})"),
            )
            .subject(plugin)
            .covers(Severity::Must, CNI)
            .needs([Need::Root, crate::area::plugins_need()])
            .side_effects(
                "runs the plugin thousands of times with generated input, each worker in a private runtime network namespace (where the plugin runs, so its links, iptables rules and qdiscs stay there) with a container namespace and a private directory for IPAM and tuning data; addresses from 198.18.0.0/15 and 2001:2::/48",
                "deletes every namespace and directory it created whatever the outcome; a worker whose case left something behind is replaced at once by a fresh sandbox",
            )
            .timeout(CAMPAIGN_DEADLINE);
            declare(meta, move |cx| Box::pin(campaign::run(cx, plugin)))
                .applies_if(move |target| {
                    if campaign::fuzzed(target).contains(&plugin) {
                        Ok(())
                    } else {
                        let cni = target.config::<CniConfig>();
                        Err(format!("plugin `{plugin}` is not selected (cni.plugins) or not installed in {}", cni.search_path()))
                    }
                })
                .into_check()
        })
        .collect()
}
