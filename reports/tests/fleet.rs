//! The reports of a run over a fleet, and the promise that a run without one renders as
//! it did before fleets existed.

use nfvi_harness::Status;
use nfvi_harness::results::RunResults;
use nfvi_integration_tests::{
    FLEET_KERNEL, FLEET_OUTLIER_KERNEL, fleet_node_names, synthetic_fleet, synthetic_results,
};

/// The HTML of a run without a fleet, as rendered before fleet support: any change here must
/// be deliberate.
#[test]
fn html_without_fleet_is_unchanged() {
    let html = nfvi_reports::render_html(&synthetic_results(7)).unwrap();
    insta::assert_snapshot!("html_7_no_fleet", html);
}

/// Renames a node everywhere the results name it.
fn rename_node(r: &mut RunResults, from: &str, to: &str) {
    let fleet = r.fleet.as_mut().unwrap();
    for n in &mut fleet.nodes {
        if n.node.name == from {
            n.node.name = to.to_owned();
        }
    }
    for c in &mut r.checks {
        if c.node.as_deref() == Some(from) {
            c.node = Some(to.to_owned());
        }
    }
}

#[test]
fn junit_keeps_each_node_apart_and_parses() {
    let results = synthetic_fleet(4, 12);
    let xml = nfvi_reports::render_junit(&results).unwrap();
    let report = quick_junit::Report::deserialize_from_str(&xml).unwrap();
    let mut keys = Vec::new();
    let mut on_node = 0;
    for suite in &report.test_suites {
        for case in &suite.test_cases {
            let classname = case
                .classname
                .as_ref()
                .map_or("", |c| c.as_str())
                .to_owned();
            let name = case.name.as_str().to_owned();
            let node = case
                .properties
                .iter()
                .find(|p| p.name.as_str() == "node")
                .map(|p| p.value.as_str().to_owned());
            match &node {
                Some(node) => {
                    on_node += 1;
                    assert!(name.ends_with(&format!(" [{node}]")), "{name}");
                    assert!(classname.ends_with(&format!(".{node}")), "{classname}");
                    let out = case.system_out.as_ref().map_or("", |s| s.as_str());
                    assert!(out.lines().any(|l| l == format!("node: {node}")), "{out}");
                }
                None => {
                    assert!(!name.contains('['), "{name}");
                    assert_eq!(classname.matches('.').count(), 1, "{classname}");
                }
            }
            keys.push((classname, name));
        }
    }
    let node_level = results.checks.iter().filter(|c| c.node.is_some()).count();
    assert_eq!(on_node, node_level);
    assert_eq!(node_level, 4 * 12);
    let total = keys.len();
    assert_eq!(total, results.checks.len());
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), total, "testcases must be unique");
    // Names alone are unique too (GitLab keys on the name within a suite).
    let mut names: Vec<&str> = keys.iter().map(|(_, n)| n.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), total);
    // The unverified node's checks are errors naming it; nothing else is added for it.
    let errors: usize = report.test_suites.iter().map(|s| s.errors).sum();
    assert_eq!(errors, results.totals.errors + results.totals.timed_out);
    assert!(xml.contains("testcase name=\"host.synthetic.c00000 [compute03]\""));
    assert!(xml.contains("node compute03 could not be verified"));
}

#[test]
fn junit_classname_of_a_dotted_node_keeps_one_segment() {
    let mut results = synthetic_fleet(3, 2);
    rename_node(&mut results, "compute01", "compute01.example.org");
    let xml = nfvi_reports::render_junit(&results).unwrap();
    assert!(xml.contains("compute01_example_org"), "{xml}");
    assert!(xml.contains("[compute01.example.org]"));
    quick_junit::Report::deserialize_from_str(&xml).unwrap();
}

#[test]
fn html_shows_the_fleet_the_matrix_and_the_inventories() {
    let results = synthetic_fleet(5, 18);
    let html = nfvi_reports::render_html(&results).unwrap();
    for section in [
        r#"<h2 id="fleet">Fleet</h2>"#,
        r#"id="node-check-matrix""#,
        r#"<table class="matrix">"#,
        r#"<h2 id="node-inventories">"#,
        "checks passed on every verified node</summary>",
    ] {
        assert!(html.contains(section), "{section}");
    }
    for name in fleet_node_names(5) {
        assert!(html.contains(&format!(r#"<tr id="node-{name}""#)), "{name}");
        assert!(html.contains(&format!("<code>{name}</code>")), "{name}");
    }
    // The fleet section comes before the totals, under the verdict.
    assert!(html.find(r#"id="fleet""#).unwrap() < html.find(r#"id="totals""#).unwrap());
    // The unverified node: its row, its cause in the failure colour, the banner.
    assert!(html.contains(r#"<tr id="node-compute04" class="unverified">"#));
    assert!(html.contains(r#"<span class="node-error">ssh compute04: connect to host port 22"#));
    assert!(html.contains("could not be verified</strong>: ssh compute04"));
    // Failures name their node, in the banner and in the per-check list.
    assert!(html.contains(" on compute01</a>"), "banner");
    assert!(html.contains(r#"<span class="on-node">on <strong>compute01</strong></span>"#));
    // One details block per node-level result, each with its own anchor.
    assert!(html.contains(r#"id="check-host.synthetic.c00000--compute02""#));
    // The kernel outlier is highlighted; its peers are not.
    assert!(html.contains(&format!(
        r#"<td class="differs" title="differs from role compute: {FLEET_KERNEL} on 2 of 3 nodes">{FLEET_OUTLIER_KERNEL}</td>"#
    )));
    assert!(html.contains(&format!("<td class=\"\">{FLEET_KERNEL}</td>")));
    // A failed cell carries the message as its tooltip.
    assert!(html.contains(r#"<td class="c fail" title="compute01: failed: kernel"#));
}

#[test]
fn html_requirement_links_go_to_the_matrix_row() {
    let results = synthetic_fleet(3, 6);
    let html = nfvi_reports::render_html(&results).unwrap();
    let id = results
        .checks
        .iter()
        .find(|c| c.node.is_some())
        .unwrap()
        .id
        .clone();
    assert!(html.contains(&format!(r##"href="#fleet-{id}""##)), "{id}");
    assert!(html.contains(&format!(r#"<tr id="fleet-{id}">"#)));
}

#[test]
fn html_escapes_hostile_node_names_and_errors() {
    let mut results = synthetic_fleet(4, 6);
    let hostile = "<script>alert('node')</script>";
    rename_node(&mut results, "compute01", hostile);
    let fleet = results.fleet.as_mut().unwrap();
    fleet.notes.push("<script>alert('note')</script>".into());
    fleet.transport = "<b>ssh</b>".into();
    let html = nfvi_reports::render_html(&results).unwrap();
    assert!(!html.contains("<script"), "a script element came through");
    assert!(!html.contains("<b>ssh"), "markup came through");
    assert!(
        html.contains("&#60;script&#62;alert(&#39;node&#39;)&#60;/script&#62;")
            || html.contains("&lt;script&gt;alert("),
        "the node name is shown, escaped"
    );
    // The unverified node's error carries HOSTILE; it is shown, escaped.
    assert!(html.contains("banner: &"), "the error is shown");
    // Anchors made from the name are fragment-safe.
    assert!(html.contains(r#"id="node-_script_alert__node____script_""#));
}

/// Ids of the node-level checks that passed on every node but `except`.
fn passed_everywhere(results: &RunResults, except: &str) -> usize {
    let mut ids: Vec<&str> = results
        .checks
        .iter()
        .filter(|c| c.node.is_some())
        .map(|c| c.id.as_str())
        .collect();
    ids.dedup();
    ids.into_iter()
        .filter(|id| {
            results
                .checks
                .iter()
                .filter(|c| c.id == *id && c.node.as_deref() != Some(except))
                .all(|c| c.outcome == Status::Passed)
        })
        .count()
}

#[test]
fn html_with_ten_nodes_and_three_hundred_checks_stays_compact() {
    let results = synthetic_fleet(10, 300);
    let html = nfvi_reports::render_html(&results).unwrap();
    assert_eq!(
        results.checks.iter().filter(|c| c.node.is_some()).count(),
        3000
    );
    // Rows where every node passed are collapsed, and counted; the unverified node's
    // errors (its cause, named above) do not hold them open.
    let n = passed_everywhere(&results, "compute09");
    assert!(n > 100, "{n}");
    assert!(html.contains(&format!(
        r#"<details class="group"><summary>{n} checks passed on every verified node</summary>"#
    )));
    assert!(html.len() < 8 << 20, "{} bytes", html.len());
}

#[test]
fn html_collapses_rows_that_passed_on_every_node() {
    // Without an unverified node the summary says "every node".
    let mut results = synthetic_fleet(4, 30);
    results.fleet.as_mut().unwrap().nodes.pop();
    results
        .checks
        .retain(|c| c.node.as_deref() != Some("compute03"));
    let n = passed_everywhere(&results, "");
    assert!(n > 0);
    let html = nfvi_reports::render_html(&results).unwrap();
    assert!(
        html.contains(&format!(
            r#"<details class="group"><summary>{n} checks passed on every node</summary>"#
        )),
        "{n}"
    );
}
