//! The fleet-wide checks: nodes that share a role should be alike. They run on the jump host
//! after the nodes (cluster-level), reading what each node's agent reported
//! (`cx.fleet()`), and judge with pure functions.
//!
//! Roles are inventory groups, and a Kolla inventory puts the same hosts in many groups
//! (`control`, `nova`, `neutron-server`, ...): groups with the same nodes are compared once,
//! under the name of a group that lists its hosts itself (`control`) when there is one.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

use nfvi_harness::fleet::FleetReport;
use nfvi_harness::{Check, CheckContext, CheckMeta, CheckResult, Outcome, Severity, declare};
use nfvi_reference_model::Area;

use crate::area::FleetConfig;
use crate::inventory::Inventory;

/// The fleet area's ID.
pub const AREA: Area = Area::new("fleet");

/// Node lists in messages stop after this many names.
const LIST_NAMES: usize = 10;

/// What a comparison looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Aspect {
    /// The kernel release.
    Kernel,
    /// The versions of the inventory's packages.
    Packages,
}

/// One node as a comparison sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    /// Its name.
    pub node: String,
    /// Its roles.
    pub roles: Vec<String>,
    /// What it runs (item → version), `None` when its agent reported no inventory.
    pub values: Option<BTreeMap<String, String>>,
}

/// Roles with the same nodes, compared once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleSet {
    /// The role it is named after.
    pub label: String,
    /// Every role with these nodes, sorted.
    pub roles: Vec<String>,
    /// The nodes, in fleet order.
    pub nodes: Vec<String>,
}

/// Observes `aspect` of every node the fleet reported and judges it per role.
fn compare(cx: &CheckContext, aspect: Aspect) -> CheckResult {
    let fleet = cx.fleet().ok_or("the run reached no fleet to compare")?;
    let direct = direct_groups(cx.target().config::<FleetConfig>());
    Ok(judge(aspect, &observe(fleet, aspect), &direct))
}

/// The checks of the fleet area.
pub fn checks() -> Vec<Arc<dyn Check>> {
    // No requirement of the reference model's catalogue says that the nodes of a role must
    // be alike: the host area's kernel and package checks cover none either. Declared
    // SHOULD with no requirement, the checks are reported and weigh as informative until the
    // catalogue holds one that fits; claiming an unrelated one would be dishonest.
    let applies = |t: &nfvi_harness::Target| {
        if t.config::<FleetConfig>().inventory.is_some() {
            Ok(())
        } else {
            Err("the run verifies no fleet (no fleet.inventory, no --inventory)".to_owned())
        }
    };
    vec![
        declare(
            CheckMeta::new(
                "fleet.nodes.kernel",
                AREA,
                "Nodes that share a role run the same kernel release",
            )
            .covers(Severity::Should, &[])
            .read_only("none: compares what the nodes' agents reported"),
            |cx| Box::pin(async move { compare(cx, Aspect::Kernel) }),
        )
        .applies_if(applies)
        .into_check(),
        declare(
            CheckMeta::new(
                "fleet.nodes.packages",
                AREA,
                "Nodes that share a role run the same versions of the NFVI's packages",
            )
            .covers(Severity::Should, &[])
            .read_only("none: compares what the nodes' agents reported"),
            |cx| Box::pin(async move { compare(cx, Aspect::Packages) }),
        )
        .applies_if(applies)
        .into_check(),
    ]
}

/// The groups that list hosts themselves in the run's inventory (to name role sets by);
/// empty when it cannot be read again.
fn direct_groups(config: &FleetConfig) -> BTreeSet<String> {
    config
        .inventory
        .as_deref()
        .and_then(|p| Inventory::load(Path::new(p)).ok())
        .map(|i| i.hosts.into_iter().flat_map(|h| h.direct_groups).collect())
        .unwrap_or_default()
}

/// What each node of the fleet reported for `aspect`.
pub fn observe(fleet: &FleetReport, aspect: Aspect) -> Vec<Observed> {
    fleet
        .nodes
        .iter()
        .map(|n| Observed {
            node: n.node.name.clone(),
            roles: n.node.roles.clone(),
            values: n.inventory.as_ref().map(|inv| match aspect {
                Aspect::Kernel => BTreeMap::from([("kernel".to_owned(), inv.kernel.clone())]),
                Aspect::Packages => inv
                    .packages
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            }),
        })
        .collect()
}

/// Groups the roles of `nodes` by the nodes they hold; each set is named after its first
/// role in `direct` (groups that list hosts themselves), else its first role.
pub fn role_sets(nodes: &[Observed], direct: &BTreeSet<String>) -> Vec<RoleSet> {
    let mut members: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, n) in nodes.iter().enumerate() {
        for role in &n.roles {
            let list = members.entry(role.as_str()).or_default();
            if list.last() != Some(&i) {
                list.push(i);
            }
        }
    }
    let mut sets: BTreeMap<Vec<usize>, Vec<String>> = BTreeMap::new();
    for (role, list) in members {
        sets.entry(list).or_default().push(role.to_owned());
    }
    let mut out: Vec<RoleSet> = sets
        .into_iter()
        .map(|(list, roles)| RoleSet {
            label: roles
                .iter()
                .find(|r| direct.contains(*r))
                .unwrap_or(&roles[0])
                .clone(),
            roles,
            nodes: list.iter().map(|i| nodes[*i].node.clone()).collect(),
        })
        .collect();
    out.sort_by(|a, b| a.label.cmp(&b.label));
    out
}

/// Nodes that share a role must show the same value of every item of `aspect`: the
/// majority value is the reference and each other value is named with its nodes; without a
/// majority every value is named. Nodes without an inventory are listed as not compared.
/// When no role has two nodes with an inventory, there is nothing to compare: not
/// applicable.
pub fn judge(aspect: Aspect, nodes: &[Observed], direct: &BTreeSet<String>) -> Outcome {
    let by_name: BTreeMap<&str, &Observed> = nodes.iter().map(|n| (n.node.as_str(), n)).collect();
    // A node without an inventory cannot be compared, and is never counted as alike; nor is
    // one that reported an empty value (a kernel release or package version it could not
    // read): two blanks agreeing is not two nodes observed alike.
    fn observed(n: &Observed) -> Option<&BTreeMap<String, String>> {
        n.values
            .as_ref()
            .filter(|v| !v.values().any(|x| x.trim().is_empty()))
    }
    let not_compared: Vec<&str> = nodes
        .iter()
        .filter(|n| observed(n).is_none())
        .map(|n| n.node.as_str())
        .collect();
    let not_compared_note = if not_compared.is_empty() {
        String::new()
    } else {
        format!(
            " Not compared (their agents reported no {}): {}.",
            "inventory",
            names(&not_compared)
        )
    };
    let mut problems = Vec::new();
    let mut compared = Vec::new();
    for set in role_sets(nodes, direct) {
        let with: Vec<(&str, &BTreeMap<String, String>)> = set
            .nodes
            .iter()
            .filter_map(|n| Some((n.as_str(), observed(by_name.get(n.as_str())?)?)))
            .collect();
        if with.len() < 2 {
            continue;
        }
        compared.push(format!("{} ({} nodes)", set.label, with.len()));
        let items: BTreeSet<&String> = with.iter().flat_map(|(_, v)| v.keys()).collect();
        for item in items {
            let mut groups: BTreeMap<Option<&str>, Vec<&str>> = BTreeMap::new();
            for (node, values) in &with {
                groups
                    .entry(values.get(item).map(String::as_str))
                    .or_default()
                    .push(node);
            }
            if groups.len() > 1 {
                problems.push(format!("{}: {}", set.label, differ(aspect, item, groups)));
            }
        }
    }
    let what = match aspect {
        Aspect::Kernel => "kernel release",
        Aspect::Packages => "package versions",
    };
    // Nothing to compare is not "alike": nodes whose package manager the inventory does not
    // read (dpkg-query found no package, as on an RPM-based node) report no versions at all.
    let seen_items = nodes
        .iter()
        .filter_map(observed)
        .any(|values| !values.is_empty());
    if !compared.is_empty() && !seen_items {
        return Outcome::not_applicable(format!(
            "no node reported any {}: there is nothing to compare (the inventory reads \
             packages through dpkg-query).{not_compared_note}",
            match aspect {
                Aspect::Kernel => "kernel release",
                Aspect::Packages => "package version",
            }
        ));
    }
    if compared.is_empty() {
        return Outcome::not_applicable(format!(
            "no role has two nodes with an inventory: there is nothing to compare.{not_compared_note}"
        ));
    }
    let outcome = if problems.is_empty() && !not_compared.is_empty() {
        // Alike as far as seen, but not every node was seen: undecided, not a pass.
        Outcome::error(format!(
            "the compared nodes of each role run the same {what} ({}), but not every node \
             could be compared.{not_compared_note}",
            compared.join(", ")
        ))
    } else if problems.is_empty() {
        Outcome::pass(format!(
            "the nodes of each role run the same {what}: {}.{not_compared_note}",
            compared.join(", ")
        ))
    } else {
        Outcome::fail(format!(
            "nodes of the same role differ in {what}: {}.{not_compared_note}",
            problems.join("; ")
        ))
    };
    outcome.with_property("roles compared", compared.join(", "))
}

/// `compute03 runs kernel 6.1.0-18 where compute01, compute02 run 6.1.0-21`.
fn differ(aspect: Aspect, item: &str, groups: BTreeMap<Option<&str>, Vec<&str>>) -> String {
    let mut groups: Vec<(Option<&str>, Vec<&str>)> = groups.into_iter().collect();
    // Most nodes first; equal counts by value.
    groups.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then(a.0.cmp(&b.0)));
    let thing = |value: Option<&str>| match (aspect, value) {
        (Aspect::Kernel, Some(v)) => format!("kernel {v}"),
        (Aspect::Packages, Some(v)) => format!("{item} {v}"),
        (_, None) => format!("no {item}"),
    };
    let runs = |nodes: &[&str], value: Option<&str>| {
        let verb = match (value, nodes.len()) {
            (None, 1) => "has",
            (None, _) => "have",
            (Some(_), 1) => "runs",
            (Some(_), _) => "run",
        };
        format!("{} {verb} {}", names(nodes), thing(value))
    };
    if groups[0].1.len() > groups[1].1.len() {
        let (reference, majority) = &groups[0];
        let outliers: Vec<String> = groups[1..].iter().map(|(v, n)| runs(n, *v)).collect();
        let verb = if majority.len() == 1 { "runs" } else { "run" };
        let reference = match reference {
            Some(v) => (*v).to_owned(),
            None => format!("no {item}"),
        };
        let verb = if reference.starts_with("no ") {
            if majority.len() == 1 { "has" } else { "have" }
        } else {
            verb
        };
        format!(
            "{} where {} {verb} {reference}",
            outliers.join(", and "),
            names(majority)
        )
    } else {
        let all: Vec<String> = groups.iter().map(|(v, n)| runs(n, *v)).collect();
        format!("no majority: {}", all.join(" vs "))
    }
}

/// `a, b, c` (and `and N more` past [`LIST_NAMES`]).
fn names(nodes: &[&str]) -> String {
    if nodes.len() <= LIST_NAMES {
        nodes.join(", ")
    } else {
        format!(
            "{} and {} more",
            nodes[..LIST_NAMES].join(", "),
            nodes.len() - LIST_NAMES
        )
    }
}

#[cfg(test)]
#[path = "checks_tests.rs"]
mod tests;
