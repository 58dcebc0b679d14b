//! The fleet part of `report.html`, for a run over a fleet of nodes: the nodes and why one
//! could not be verified, the node × check matrix, and the nodes' inventories with the values
//! that differ from their peers highlighted. Built here, rendered by `templates/fleet*.html`
//! (askama escapes every value).

use std::collections::HashMap;

use indexmap::IndexMap;
use nfvi_harness::Status;
use nfvi_harness::fleet::{FleetReport, NodeReport};
use nfvi_harness::inventory::Inventory;
use nfvi_harness::results::{CheckResult, RunResults, Verdict};
use nfvi_harness::truncate_chars;

use super::{Link, anchor, check_anchor, outcome_class};

/// How many checks the verdict banner names before "and N more".
const MAX_WHY: usize = 12;
/// Longest message in a matrix cell's tooltip.
const MAX_TOOLTIP: usize = 300;
/// The class of an unverified node's column.
const UNVERIFIED: &str = " unverified";

/// Everything the fleet templates show.
pub(super) struct FleetView<'a> {
    pub(super) transport: &'a str,
    pub(super) notes: &'a [String],
    /// "10 nodes, 9 verified".
    pub(super) summary: String,
    pub(super) nodes: Vec<NodeRow<'a>>,
    /// The matrix's columns: the fleet's nodes, then any node only the results name.
    pub(super) columns: Vec<Column>,
    /// Node-level checks in the matrix.
    pub(super) rows_total: usize,
    /// The matrix: the rows with a problem open, the quiet ones collapsed.
    pub(super) groups: Vec<MatrixGroup<'a>>,
    /// Per node: the facts of its inventory.
    pub(super) facts: Vec<FactsRow<'a>>,
    /// Packages and components, one column per node of the fleet.
    pub(super) packages: Vec<PackageRow>,
    /// What the banner says decided the verdict ("Failed", "Not decided"), with `why`.
    pub(super) why_label: &'static str,
    pub(super) why: Vec<Link>,
    pub(super) why_more: usize,
    /// The nodes that could not be verified, for the banner.
    pub(super) unverified: Vec<Unverified<'a>>,
}

/// A row of the nodes table.
pub(super) struct NodeRow<'a> {
    pub(super) name: &'a str,
    pub(super) anchor: String,
    pub(super) roles: String,
    pub(super) address: &'a str,
    /// The node's transport, when it is not the fleet's.
    pub(super) transport: Option<&'a str>,
    pub(super) verified: bool,
    pub(super) error: Option<&'a str>,
    pub(super) warnings: &'a [String],
    pub(super) counts: String,
}

/// A node that could not be verified.
pub(super) struct Unverified<'a> {
    pub(super) name: &'a str,
    pub(super) anchor: String,
    pub(super) error: &'a str,
}

/// A column of the matrix.
pub(super) struct Column {
    pub(super) name: String,
    pub(super) anchor: String,
    /// `" unverified"` or empty.
    pub(super) class: &'static str,
}

/// Rows of the matrix shown together; `summary` is `Some` for a collapsed group.
pub(super) struct MatrixGroup<'a> {
    pub(super) summary: Option<String>,
    pub(super) rows: Vec<MatrixRow<'a>>,
}

/// One node-level check across the nodes.
pub(super) struct MatrixRow<'a> {
    pub(super) id: &'a str,
    pub(super) title: &'a str,
    pub(super) anchor: String,
    pub(super) cells: Vec<Cell>,
}

/// One check on one node.
pub(super) struct Cell {
    pub(super) class: &'static str,
    pub(super) glyph: &'static str,
    pub(super) title: String,
    /// The check's details, when it has a result on the node.
    pub(super) href: Option<String>,
}

/// A value of an inventory, highlighted when it differs from the node's peers.
pub(super) struct Fact {
    pub(super) value: String,
    /// `differs`, `none` (no inventory) or empty.
    pub(super) class: &'static str,
    /// Why it is highlighted; empty when it is not.
    pub(super) title: String,
}

/// A node's row in the inventory table.
pub(super) struct FactsRow<'a> {
    pub(super) name: &'a str,
    pub(super) anchor: String,
    pub(super) roles: String,
    /// Kernel, OS, architecture, CPUs, memory, hypervisor; empty without an inventory.
    pub(super) cells: Vec<Fact>,
    pub(super) fingerprint: &'a str,
}

/// A package or component across the nodes.
pub(super) struct PackageRow {
    pub(super) name: String,
    pub(super) component: bool,
    pub(super) cells: Vec<Fact>,
}

/// The HTML id of a node's row in the nodes table.
pub(super) fn node_anchor(name: &str) -> String {
    anchor("node", name)
}

/// The HTML id of a node-level check's row in the matrix.
pub(super) fn matrix_anchor(id: &str) -> String {
    anchor("fleet", id)
}

fn glyph(c: &CheckResult, strict: bool) -> &'static str {
    match c.outcome {
        Status::Passed => "✓",
        Status::Failed if c.waiver.is_some() => "w",
        Status::Failed if c.is_warning(strict) => "!",
        Status::Failed => "✗",
        Status::Error => "⚠",
        Status::TimedOut => "◷",
        Status::Skipped => "–",
    }
}

/// "12 passed, 1 failed, 2 skipped": the areas' counts, without the zeros.
fn counts<'c>(checks: impl Iterator<Item = &'c CheckResult>) -> String {
    let (mut p, mut f, mut e, mut s) = (0, 0, 0, 0);
    for c in checks {
        match c.outcome {
            Status::Passed => p += 1,
            Status::Failed => f += 1,
            Status::Error | Status::TimedOut => e += 1,
            Status::Skipped => s += 1,
        }
    }
    let parts: Vec<String> = [(p, "passed"), (f, "failed"), (e, "error"), (s, "skipped")]
        .into_iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, what)| format!("{n} {what}"))
        .collect();
    if parts.is_empty() {
        "no node-level check".to_owned()
    } else {
        parts.join(", ")
    }
}

/// The fleet part of the report, or `None` for a run without a fleet.
pub(super) fn view(r: &RunResults) -> Option<FleetView<'_>> {
    let fleet = r.fleet.as_ref()?;
    let strict = r.strict;

    // Node-level results by check (plan order) and node.
    let mut by_check: IndexMap<&str, HashMap<&str, &CheckResult>> = IndexMap::new();
    let mut by_node: HashMap<&str, Vec<&CheckResult>> = HashMap::new();
    for c in &r.checks {
        if let Some(node) = c.node.as_deref() {
            by_check
                .entry(c.id.as_str())
                .or_default()
                .entry(node)
                .or_insert(c);
            by_node.entry(node).or_default().push(c);
        }
    }

    let mut columns: Vec<Column> = fleet
        .nodes
        .iter()
        .map(|n| Column {
            name: n.node.name.clone(),
            anchor: node_anchor(&n.node.name),
            class: if n.verified { "" } else { UNVERIFIED },
        })
        .collect();
    for c in &r.checks {
        if let Some(node) = c.node.as_deref()
            && !columns.iter().any(|col| col.name == node)
        {
            columns.push(Column {
                name: node.to_owned(),
                anchor: node_anchor(node),
                class: "",
            });
        }
    }

    let nodes = fleet
        .nodes
        .iter()
        .map(|n| NodeRow {
            name: &n.node.name,
            anchor: node_anchor(&n.node.name),
            roles: n.node.roles.join(", "),
            address: n.node.address.as_deref().unwrap_or("—"),
            transport: (n.transport != fleet.transport).then_some(n.transport.as_str()),
            verified: n.verified,
            error: n
                .error
                .as_deref()
                .or((!n.verified).then_some("not verified, no cause recorded")),
            warnings: &n.warnings,
            counts: counts(
                by_node
                    .get(n.node.name.as_str())
                    .into_iter()
                    .flatten()
                    .copied(),
            ),
        })
        .collect();

    let groups = matrix(&by_check, &columns, strict);
    let (why_label, why, why_more) = why(r, fleet);
    Some(FleetView {
        transport: &fleet.transport,
        notes: &fleet.notes,
        summary: format!(
            "{} node{}, {} verified",
            fleet.nodes.len(),
            if fleet.nodes.len() == 1 { "" } else { "s" },
            fleet.nodes.iter().filter(|n| n.verified).count()
        ),
        nodes,
        columns,
        rows_total: by_check.len(),
        groups,
        facts: facts(fleet),
        packages: packages(fleet),
        why_label,
        why,
        why_more,
        unverified: fleet
            .unverified()
            .map(|n| Unverified {
                name: &n.node.name,
                anchor: node_anchor(&n.node.name),
                error: n.error.as_deref().unwrap_or("no cause recorded"),
            })
            .collect(),
    })
}

/// The matrix rows, grouped: rows where something did not pass (open), rows that only
/// passed or were skipped, rows that passed on every node (both collapsed).
fn matrix<'a>(
    by_check: &IndexMap<&'a str, HashMap<&'a str, &'a CheckResult>>,
    columns: &[Column],
    strict: bool,
) -> Vec<MatrixGroup<'a>> {
    let (mut problems, mut quiet, mut passed) = (Vec::new(), Vec::new(), Vec::new());
    for (&id, on) in by_check {
        let cells: Vec<Cell> = columns
            .iter()
            .map(|col| match on.get(col.name.as_str()) {
                Some(c) => {
                    let (class, label) = outcome_class(c, strict);
                    Cell {
                        class,
                        glyph: glyph(c, strict),
                        title: truncate_chars(
                            &format!("{}: {label}: {}", col.name, c.message),
                            MAX_TOOLTIP,
                        ),
                        href: Some(check_anchor(c)),
                    }
                }
                None => Cell {
                    class: "none",
                    glyph: "",
                    title: format!("{}: no result on this node", col.name),
                    href: None,
                },
            })
            .collect();
        let first = on.values().next();
        let row = MatrixRow {
            id,
            title: first.map_or("", |c| c.title.as_str()),
            anchor: matrix_anchor(id),
            cells,
        };
        // An unverified node's errors are its cause's, named once in the nodes table and
        // the banner: they do not hold a row open. Its other results do.
        let judged = || {
            row.cells
                .iter()
                .zip(columns)
                .filter(|(cell, col)| !(col.class == UNVERIFIED && cell.class == "error"))
                .map(|(cell, _)| cell.class)
        };
        if judged().all(|class| class == "pass") {
            passed.push(row);
        } else if judged().all(|class| class == "pass" || class == "skip") {
            quiet.push(row);
        } else {
            problems.push(row);
        }
    }
    let plural = |n: usize| if n == 1 { "check" } else { "checks" };
    let every = if columns.iter().any(|c| c.class == UNVERIFIED) {
        "every verified node"
    } else {
        "every node"
    };
    let mut groups = vec![MatrixGroup {
        summary: None,
        rows: problems,
    }];
    if !quiet.is_empty() {
        groups.push(MatrixGroup {
            summary: Some(format!(
                "{} {} passed or were skipped on {every}",
                quiet.len(),
                plural(quiet.len())
            )),
            rows: quiet,
        });
    }
    if !passed.is_empty() {
        groups.push(MatrixGroup {
            summary: Some(format!(
                "{} {} passed on {every}",
                passed.len(),
                plural(passed.len())
            )),
            rows: passed,
        });
    }
    groups
}

/// What the banner names as the cause of the verdict: the deciding failures of a
/// non-conformant run, or the undecided checks of an incomplete one (leaving out those of
/// nodes that could not be verified: the banner names those nodes with their cause).
fn why(r: &RunResults, fleet: &FleetReport) -> (&'static str, Vec<Link>, usize) {
    let unverified: Vec<&str> = fleet.unverified().map(|n| n.node.name.as_str()).collect();
    let label = match r.verdict {
        Verdict::Conformant => return ("", Vec::new(), 0),
        Verdict::NonConformant => "Failed",
        Verdict::Incomplete => "Not decided",
    };
    let pick = |c: &CheckResult| match r.verdict {
        Verdict::NonConformant => c.decides_non_conformance(r.strict),
        _ => {
            matches!(c.outcome, Status::Error | Status::TimedOut)
                && !c.node.as_deref().is_some_and(|n| unverified.contains(&n))
        }
    };
    let picked: Vec<&CheckResult> = r.checks.iter().filter(|c| pick(c)).collect();
    let links = picked
        .iter()
        .take(MAX_WHY)
        .map(|c| Link {
            anchor: check_anchor(c),
            text: match &c.node {
                Some(node) => format!("{} on {node}", c.id),
                None => c.id.clone(),
            },
            class: outcome_class(c, r.strict).0,
        })
        .collect();
    (label, links, picked.len().saturating_sub(MAX_WHY))
}

/// Marks, for each node, whether its value differs from the majority of the nodes that
/// share one of its roles (nodes without roles are peers of each other). `values[i]` is
/// `None` for a node without an inventory, which is left out. A group without a single most
/// common value marks every node in it whose value is not shared by the whole group.
fn outliers(nodes: &[NodeReport], values: &[Option<String>]) -> Vec<String> {
    let roles = |n: &NodeReport| -> Vec<String> {
        if n.node.roles.is_empty() {
            vec![String::new()]
        } else {
            n.node.roles.clone()
        }
    };
    let mut out = vec![String::new(); nodes.len()];
    for (i, node) in nodes.iter().enumerate() {
        let Some(mine) = &values[i] else { continue };
        let mut why = Vec::new();
        for role in roles(node) {
            let peers: Vec<&str> = nodes
                .iter()
                .zip(values)
                .filter(|(n, v)| v.is_some() && roles(n).contains(&role))
                .filter_map(|(_, v)| v.as_deref())
                .collect();
            if peers.len() < 2 {
                continue;
            }
            let mut tally: IndexMap<&str, usize> = IndexMap::new();
            for v in &peers {
                *tally.entry(v).or_default() += 1;
            }
            if tally.len() < 2 {
                continue;
            }
            let top = tally.values().copied().max().unwrap_or(0);
            let leaders: Vec<&str> = tally
                .iter()
                .filter(|(_, n)| **n == top)
                .map(|(v, _)| *v)
                .collect();
            let group = if role.is_empty() {
                "the nodes without a role".to_owned()
            } else {
                format!("role {role}")
            };
            if leaders.len() > 1 {
                why.push(format!(
                    "{group}: no majority, {} values on {} nodes",
                    tally.len(),
                    peers.len()
                ));
            } else if leaders[0] != mine {
                why.push(format!(
                    "differs from {group}: {} on {top} of {} nodes",
                    leaders[0],
                    peers.len()
                ));
            }
        }
        out[i] = why.join("; ");
    }
    out
}

/// Cells of one inventory field across the nodes, highlighted against their peers.
fn field(nodes: &[NodeReport], value: impl Fn(&Inventory) -> Option<String>) -> Vec<Fact> {
    let values: Vec<Option<String>> = nodes
        .iter()
        .map(|n| {
            n.inventory
                .as_ref()
                .map(|inv| value(inv).unwrap_or_else(|| "—".to_owned()))
        })
        .collect();
    let why = outliers(nodes, &values);
    values
        .into_iter()
        .zip(why)
        .map(|(v, title)| match v {
            None => Fact {
                value: "—".to_owned(),
                class: "none",
                title: "no inventory".to_owned(),
            },
            Some(value) => Fact {
                value,
                class: if title.is_empty() { "" } else { "differs" },
                title,
            },
        })
        .collect()
}

fn gib(bytes: u64) -> String {
    format!("{:.1} GiB", bytes as f64 / (1u64 << 30) as f64)
}

fn facts(fleet: &FleetReport) -> Vec<FactsRow<'_>> {
    let nodes = &fleet.nodes;
    let columns: [Vec<Fact>; 6] = [
        field(nodes, |i| Some(i.kernel.clone())),
        field(nodes, |i| Some(i.os.clone())),
        field(nodes, |i| Some(i.arch.clone())),
        field(nodes, |i| Some(i.cpus.to_string())),
        field(nodes, |i| Some(gib(i.memory_bytes))),
        field(nodes, |i| {
            Some(i.hypervisor.clone().unwrap_or_else(|| "none".to_owned()))
        }),
    ];
    let mut columns = columns.map(Vec::into_iter);
    nodes
        .iter()
        .map(|n| {
            let cells: Vec<Fact> = columns.iter_mut().filter_map(Iterator::next).collect();
            FactsRow {
                name: &n.node.name,
                anchor: node_anchor(&n.node.name),
                roles: n.node.roles.join(", "),
                cells: if n.inventory.is_some() {
                    cells
                } else {
                    Vec::new()
                },
                fingerprint: n.inventory.as_ref().map_or("", |i| i.fingerprint.as_str()),
            }
        })
        .collect()
}

fn packages(fleet: &FleetReport) -> Vec<PackageRow> {
    let nodes = &fleet.nodes;
    let mut names: IndexMap<(bool, &str), ()> = IndexMap::new();
    for inv in nodes.iter().filter_map(|n| n.inventory.as_ref()) {
        for k in inv.packages.keys() {
            names.insert((false, k), ());
        }
    }
    for inv in nodes.iter().filter_map(|n| n.inventory.as_ref()) {
        for k in inv.components.keys() {
            names.insert((true, k), ());
        }
    }
    names
        .keys()
        .map(|&(component, name)| PackageRow {
            name: name.to_owned(),
            component,
            cells: field(nodes, |i| {
                if component {
                    i.components.get(name).cloned()
                } else {
                    i.packages.get(name).cloned()
                }
            }),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use nfvi_harness::fleet::NodeSpec;

    use super::*;

    fn node(name: &str, roles: &[&str]) -> NodeReport {
        NodeReport {
            node: NodeSpec {
                name: name.into(),
                roles: roles.iter().map(|r| (*r).to_owned()).collect(),
                address: None,
            },
            transport: "ssh".into(),
            verified: true,
            error: None,
            inventory: Some(Inventory::default()),
            warnings: Vec::new(),
        }
    }

    fn v(s: &str) -> Option<String> {
        Some(s.to_owned())
    }

    #[test]
    fn the_odd_one_of_a_role_is_marked_and_roles_are_judged_apart() {
        let nodes = [
            node("c1", &["compute"]),
            node("c2", &["compute"]),
            node("c3", &["compute"]),
            node("k1", &["control"]),
            node("k2", &["control"]),
        ];
        // The control nodes agree with each other; their value differs from compute's.
        let out = outliers(&nodes, &[v("6.1"), v("5.10"), v("6.1"), v("5.4"), v("5.4")]);
        assert_eq!(out[0], "");
        assert!(
            out[1].contains("differs from role compute: 6.1 on 2 of 3"),
            "{out:?}"
        );
        assert_eq!(out[2], "");
        assert_eq!(out[3], "");
        assert_eq!(out[4], "");
    }

    #[test]
    fn a_tie_marks_both_sides_and_a_missing_inventory_is_left_out() {
        let nodes = [
            node("a", &[]),
            node("b", &[]),
            node("c", &[]),
            node("d", &[]),
        ];
        let out = outliers(&nodes, &[v("1"), v("2"), None, v("2")]);
        assert!(out[0].contains("differs"), "{out:?}");
        assert_eq!(out[1], "");
        assert_eq!(out[2], "");
        let out = outliers(&nodes, &[v("1"), v("2"), None, None]);
        assert!(out[0].contains("no majority") && out[1].contains("no majority"));
    }

    #[test]
    fn a_lone_node_of_a_role_is_never_an_outlier() {
        let nodes = [node("a", &["control"]), node("b", &["compute"])];
        assert_eq!(outliers(&nodes, &[v("1"), v("2")]), ["", ""]);
    }
}
