use nfvi_harness::{SkipKind, Status};

use super::*;

fn node(name: &str, roles: &[&str], values: Option<&[(&str, &str)]>) -> Observed {
    Observed {
        node: name.to_owned(),
        roles: roles.iter().map(|r| (*r).to_owned()).collect(),
        values: values.map(|v| {
            v.iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        }),
    }
}

fn kernel(name: &str, roles: &[&str], release: &str) -> Observed {
    node(name, roles, Some(&[("kernel", release)]))
}

fn direct(groups: &[&str]) -> BTreeSet<String> {
    groups.iter().map(|g| (*g).to_owned()).collect()
}

#[test]
fn kernels_are_judged_by_majority_ties_and_outliers() {
    let none = direct(&[]);
    for (nodes, status, want) in [
        (
            vec![
                kernel("compute01", &["compute"], "6.1.0-21"),
                kernel("compute02", &["compute"], "6.1.0-21"),
                kernel("compute03", &["compute"], "6.1.0-18"),
            ],
            Status::Failed,
            "nodes of the same role differ in kernel release: compute: compute03 runs kernel \
             6.1.0-18 where compute01, compute02 run 6.1.0-21.",
        ),
        (
            vec![
                kernel("c1", &["compute"], "6.1.0-21"),
                kernel("c2", &["compute"], "6.1.0-18"),
            ],
            Status::Failed,
            "nodes of the same role differ in kernel release: compute: no majority: c2 runs \
             kernel 6.1.0-18 vs c1 runs kernel 6.1.0-21.",
        ),
        (
            vec![
                kernel("c1", &["compute"], "A"),
                kernel("c2", &["compute"], "A"),
                kernel("c3", &["compute"], "A"),
                kernel("c4", &["compute"], "B"),
                kernel("c5", &["compute"], "C"),
            ],
            Status::Failed,
            "nodes of the same role differ in kernel release: compute: c4 runs kernel B, and c5 \
             runs kernel C where c1, c2, c3 run A.",
        ),
        (
            vec![
                kernel("ctl1", &["control"], "6.1.0-21"),
                kernel("ctl2", &["control"], "6.1.0-21"),
                kernel("cmp1", &["compute"], "6.8.0-1"),
                kernel("cmp2", &["compute"], "6.8.0-1"),
            ],
            Status::Passed,
            "the nodes of each role run the same kernel release: compute (2 nodes), control (2 \
             nodes).",
        ),
        (
            vec![
                kernel("ctl1", &["control"], "6.1.0-21"),
                kernel("cmp1", &["compute"], "6.8.0-1"),
            ],
            Status::Skipped,
            "no role has two nodes with an inventory: there is nothing to compare.",
        ),
        (
            vec![
                kernel("c1", &["compute"], "A"),
                kernel("c2", &["compute"], "A"),
                node("c3", &["compute"], None),
            ],
            // Alike as far as seen, but a node was not seen: undecided, never a pass.
            Status::Error,
            "the compared nodes of each role run the same kernel release (compute (2 nodes)), \
             but not every node could be compared. Not compared (their agents reported no \
             inventory): c3.",
        ),
        (
            vec![
                kernel("c1", &["compute"], "A"),
                node("c2", &["compute"], None),
            ],
            Status::Skipped,
            "no role has two nodes with an inventory: there is nothing to compare. Not \
             compared (their agents reported no inventory): c2.",
        ),
        (vec![], Status::Skipped, "no role has two nodes"),
    ] {
        let o = judge(Aspect::Kernel, &nodes, &none);
        assert_eq!(o.status, status, "{}", o.message);
        assert!(o.message.starts_with(want), "{}\nwant: {want}", o.message);
        if status == Status::Skipped {
            assert_eq!(o.skip_kind(), Some(SkipKind::NotApplicable));
        }
    }
}

#[test]
fn packages_name_the_package_and_missing_ones() {
    let o = judge(
        Aspect::Packages,
        &[
            node(
                "c1",
                &["compute"],
                Some(&[("openvswitch-switch", "3.1.2"), ("docker.io", "26.1")]),
            ),
            node(
                "c2",
                &["compute"],
                Some(&[("openvswitch-switch", "3.1.2"), ("docker.io", "26.1")]),
            ),
            node("c3", &["compute"], Some(&[("openvswitch-switch", "3.1.0")])),
        ],
        &direct(&[]),
    );
    assert_eq!(o.status, Status::Failed);
    assert_eq!(
        o.message,
        "nodes of the same role differ in package versions: compute: c3 has no docker.io where \
         c1, c2 run 26.1; compute: c3 runs openvswitch-switch 3.1.0 where c1, c2 run 3.1.2."
    );
    let o = judge(
        Aspect::Packages,
        &[
            node("c1", &["compute"], Some(&[])),
            node("c2", &["compute"], Some(&[])),
            node("c3", &["compute"], Some(&[("x", "1")])),
        ],
        &direct(&[]),
    );
    assert_eq!(
        o.message,
        "nodes of the same role differ in package versions: compute: c3 runs x 1 where c1, c2 \
         have no x."
    );
    // RPM-based nodes: dpkg-query reports nothing anywhere. Nothing compared is no pass.
    let o = judge(
        Aspect::Packages,
        &[
            node("c1", &["compute"], Some(&[])),
            node("c2", &["compute"], Some(&[])),
        ],
        &direct(&[]),
    );
    assert_eq!(
        o.skip_kind(),
        Some(SkipKind::NotApplicable),
        "{}",
        o.message
    );
    assert!(
        o.message
            .starts_with("no node reported any package version"),
        "{}",
        o.message
    );
}

#[test]
fn roles_with_the_same_nodes_are_compared_once_under_a_direct_group() {
    let roles = ["baremetal", "control", "neutron-server", "nova"];
    let nodes = vec![
        kernel("ctl1", &roles, "A"),
        kernel("ctl2", &roles, "A"),
        kernel("ctl3", &roles, "B"),
    ];
    let sets = role_sets(&nodes, &direct(&["control"]));
    assert_eq!(sets.len(), 1);
    assert_eq!(sets[0].label, "control");
    assert_eq!(sets[0].roles, roles);
    assert_eq!(sets[0].nodes, ["ctl1", "ctl2", "ctl3"]);
    let o = judge(Aspect::Kernel, &nodes, &direct(&["control"]));
    assert_eq!(
        o.message,
        "nodes of the same role differ in kernel release: control: ctl3 runs kernel B where \
         ctl1, ctl2 run A."
    );
    // Without knowing the direct groups, the first name.
    assert_eq!(role_sets(&nodes, &direct(&[]))[0].label, "baremetal");
    // A superset role is a set of its own.
    let nodes = vec![
        kernel("ctl1", &["baremetal", "control"], "A"),
        kernel("cmp1", &["baremetal", "compute"], "A"),
    ];
    let sets = role_sets(&nodes, &direct(&["compute", "control"]));
    let labels: Vec<&str> = sets.iter().map(|s| s.label.as_str()).collect();
    assert_eq!(labels, ["baremetal", "compute", "control"]);
}

#[test]
fn long_node_lists_are_cut() {
    let mut nodes: Vec<Observed> = (1..=15)
        .map(|i| kernel(&format!("c{i:02}"), &["compute"], "A"))
        .collect();
    nodes.push(kernel("c16", &["compute"], "B"));
    let o = judge(Aspect::Kernel, &nodes, &direct(&[]));
    assert!(
        o.message.contains(
            "c16 runs kernel B where c01, c02, c03, c04, c05, c06, c07, c08, c09, c10 and 5 more run A"
        ),
        "{}",
        o.message
    );
}

/// Values that were not observed (a blank kernel release) never make nodes alike: with
/// them only, there is nothing compared; next to observed nodes, the run is undecided.
#[test]
fn blank_values_are_not_observations() {
    let none = direct(&[]);
    let o = judge(
        Aspect::Kernel,
        &[
            kernel("c1", &["compute"], ""),
            kernel("c2", &["compute"], " "),
        ],
        &none,
    );
    assert_eq!(o.skip_kind(), Some(SkipKind::NotApplicable), "{o:?}");
    let o = judge(
        Aspect::Kernel,
        &[
            kernel("c1", &["compute"], "6.1.0-21"),
            kernel("c2", &["compute"], "6.1.0-21"),
            kernel("c3", &["compute"], ""),
        ],
        &none,
    );
    assert_eq!(o.status, Status::Error, "{}", o.message);
    assert!(o.message.contains("Not compared"), "{}", o.message);
}
