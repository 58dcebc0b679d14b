//! kube-bench controls against the RC2 security requirements: every scored control for
//! sec.std.001, and the controls the mapping (`src/kube-bench.toml`) ties to a requirement
//! for the others. A manual control (WARN) is listed but never counts as passed.

use nfvi_harness::Outcome;
use serde::Deserialize;

use crate::model::{BenchControl, BenchStatus};

/// One requirement of the mapping.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// The requirement.
    pub id: String,
    /// The check that judges it.
    pub check: String,
    /// The check's title.
    pub title: String,
    /// Flags or settings matched in a control's test_desc (case-insensitive).
    pub desc: Vec<String>,
    /// Group descriptions matched.
    pub groups: Vec<String>,
}

impl Rule {
    /// Whether the control tests what this requirement asks.
    pub fn matches(&self, c: &BenchControl) -> bool {
        let desc = c.desc.to_ascii_lowercase();
        self.desc
            .iter()
            .any(|d| desc.contains(&d.to_ascii_lowercase()))
            || self.groups.iter().any(|g| c.group.eq_ignore_ascii_case(g))
    }
}

#[derive(Deserialize)]
struct Mapping {
    requirement: Vec<Rule>,
}

/// The mapping compiled in (src/kube-bench.toml).
pub fn rules() -> Vec<Rule> {
    toml::from_str::<Mapping>(include_str!("../kube-bench.toml"))
        .expect("src/kube-bench.toml is valid (a test reads it)")
        .requirement
}

fn short(c: &BenchControl) -> String {
    format!("{} {} ({})", c.number, c.status.as_str(), c.node_type)
}

fn named(c: &BenchControl) -> String {
    format!("{} {} ({})", c.number, c.desc, c.node_type)
}

fn with_controls(o: Outcome, judged: &[&BenchControl]) -> Outcome {
    let count = |s| judged.iter().filter(|c| c.status == s).count() as f64;
    o.with_property(
        "controls",
        judged
            .iter()
            .map(|c| short(c))
            .collect::<Vec<_>>()
            .join(", "),
    )
    .with_metric("controls_pass", count(BenchStatus::Pass), "count")
    .with_metric("controls_fail", count(BenchStatus::Fail), "count")
    .with_metric("controls_warn", count(BenchStatus::Warn), "count")
}

fn manual_note(judged: &[&BenchControl]) -> String {
    let manual: Vec<String> = judged
        .iter()
        .filter(|c| c.status == BenchStatus::Warn)
        .map(|c| c.number.clone())
        .collect();
    if manual.is_empty() {
        String::new()
    } else {
        format!(
            "; {} manual control(s) not verified by kube-bench: {}",
            manual.len(),
            manual.join(", ")
        )
    }
}

/// sec.std.001: every scored control passes.
pub fn scored(controls: &[BenchControl]) -> Outcome {
    let judged: Vec<&BenchControl> = controls.iter().filter(|c| c.scored).collect();
    if judged.is_empty() {
        return Outcome::error("the kube-bench results hold no scored control: nothing to judge");
    }
    let failed: Vec<String> = judged
        .iter()
        .filter(|c| c.status != BenchStatus::Pass)
        .map(|c| named(c))
        .collect();
    let o = Outcome::pass_unless_with(
        failed.clone(),
        format!("all {} scored CIS controls passed", judged.len()),
        |_| {
            format!(
                "{} of {} scored CIS controls did not pass: {}",
                failed.len(),
                judged.len(),
                failed.join("; ")
            )
        },
    );
    with_controls(o, &judged)
}

/// A requirement through the controls its rule matches.
pub fn requirement(rule: &Rule, controls: &[BenchControl]) -> Outcome {
    let judged: Vec<&BenchControl> = controls.iter().filter(|c| rule.matches(c)).collect();
    if judged.is_empty() {
        return Outcome::error(format!(
            "none of the {} kube-bench controls given tests what {} asks (settings such as {}): run kube-bench on the control plane and the nodes",
            controls.len(),
            rule.id,
            rule.desc
                .iter()
                .take(3)
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let failed: Vec<String> = judged
        .iter()
        .filter(|c| c.status == BenchStatus::Fail)
        .map(|c| named(c))
        .collect();
    let passed = judged
        .iter()
        .filter(|c| c.status == BenchStatus::Pass)
        .count();
    let o = if !failed.is_empty() {
        Outcome::fail(format!(
            "kube-bench failed {} control(s) of {}: {}",
            failed.len(),
            rule.id,
            failed.join("; ")
        ))
    } else if passed == 0 {
        Outcome::error(format!(
            "no automated kube-bench control of {} passed or failed: only manual or informational ones ({})",
            rule.id,
            judged
                .iter()
                .map(|c| short(c))
                .collect::<Vec<_>>()
                .join(", ")
        ))
    } else {
        Outcome::pass(format!(
            "{passed} kube-bench control(s) of {} passed{}",
            rule.id,
            manual_note(&judged)
        ))
    };
    with_controls(o, &judged)
}

#[cfg(test)]
mod tests {
    use super::*;
    use nfvi_harness::Status;

    fn c(number: &str, desc: &str, group: &str, status: BenchStatus, scored: bool) -> BenchControl {
        BenchControl {
            number: number.into(),
            desc: desc.into(),
            group: group.into(),
            node_type: "master".into(),
            status,
            scored,
        }
    }

    fn rule(id: &str) -> Rule {
        rules().into_iter().find(|r| r.id == id).unwrap()
    }

    #[test]
    fn the_mapping_reads() {
        let r = rules();
        assert_eq!(r.len(), 2);
        assert!(
            r.iter()
                .all(|r| r.check.starts_with("evidence.kube-bench."))
        );
    }

    #[test]
    fn requirement_table() {
        use BenchStatus::*;
        let anon = |s| {
            c(
                "1.2.1",
                "Ensure that the --anonymous-auth argument is set to false (Manual)",
                "API Server",
                s,
                s != Warn,
            )
        };
        let authz = |s| {
            c(
                "4.2.2",
                "Ensure that the --authorization-mode argument is not set to AlwaysAllow",
                "Kubelet",
                s,
                true,
            )
        };
        let rbac = |s| {
            c(
                "5.1.3",
                "Minimize wildcard use in Roles and ClusterRoles",
                "RBAC and Service Accounts",
                s,
                false,
            )
        };
        let other = c(
            "1.2.18",
            "Ensure that the --profiling argument is set to false",
            "API Server",
            Fail,
            true,
        );
        let rows: Vec<(&str, Vec<BenchControl>, Status, &str)> = vec![
            (
                "sec.sys.001",
                vec![anon(Pass), other.clone()],
                Status::Passed,
                "1 kube-bench control",
            ),
            (
                "sec.sys.001",
                vec![anon(Fail)],
                Status::Failed,
                "--anonymous-auth",
            ),
            (
                "sec.sys.001",
                vec![anon(Warn)],
                Status::Error,
                "only manual",
            ),
            (
                "sec.sys.001",
                vec![other.clone()],
                Status::Error,
                "none of the 1",
            ),
            ("sec.sys.001", vec![], Status::Error, "none of the 0"),
            (
                "sec.sys.007",
                vec![authz(Pass), rbac(Warn)],
                Status::Passed,
                "manual control(s) not verified by kube-bench: 5.1.3",
            ),
            (
                "sec.sys.007",
                vec![authz(Pass), rbac(Fail)],
                Status::Failed,
                "5.1.3",
            ),
        ];
        for (id, controls, status, text) in rows {
            let o = requirement(&rule(id), &controls);
            assert_eq!(o.status, status, "{id}: {}", o.message);
            assert!(o.message.contains(text), "{id}: {}", o.message);
        }
    }

    #[test]
    fn scored_table() {
        use BenchStatus::*;
        let ok = c("1", "a", "g", Pass, true);
        let bad = c("2", "b", "g", Fail, true);
        let manual = c("3", "c", "g", Warn, false);
        assert_eq!(scored(&[ok.clone(), manual.clone()]).status, Status::Passed);
        let o = scored(&[ok, bad, manual.clone()]);
        assert_eq!(o.status, Status::Failed);
        assert!(o.message.contains("1 of 2"), "{}", o.message);
        assert_eq!(o.evidence.metrics["controls_fail"].value, 1.0);
        assert_eq!(scored(&[manual]).status, Status::Error);
    }
}
