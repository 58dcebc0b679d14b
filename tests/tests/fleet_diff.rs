//! `diff` keys a fleet's results by check and node: a check that regresses on one node is
//! that one change, not a confusion of the same ID on every node.

use nfvi_harness::Status;

#[test]
fn a_regression_on_one_node_is_reported_for_that_node() {
    let old = nfvi_integration_tests::synthetic_fleet(3, 5);
    let mut new = old.clone();
    let victim = new
        .checks
        .iter_mut()
        .filter(|c| c.node.is_some() && c.outcome == Status::Passed)
        .nth(4)
        .expect("a passed node-level check");
    victim.outcome = Status::Failed;
    let want = format!("{} [{}]", victim.id, victim.node.as_deref().unwrap());
    let d = nfvi_harness::diff::diff(&old, &new);
    assert!(d.added.is_empty() && d.removed.is_empty(), "{d:?}");
    assert_eq!(d.changed.len(), 1, "{d:?}");
    assert_eq!(d.changed[0].id, want);
    assert!(d.changed[0].regression);
    assert!(d.has_regression());
}
