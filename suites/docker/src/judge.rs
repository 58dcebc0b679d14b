//! The Docker checks' judges: pure functions from what was observed to an outcome, judged by
//! the container network model's semantics rather than one engine's wording, table-tested
//! without root or an engine.

use std::collections::BTreeSet;

use nfvi_harness::Outcome;

use crate::identity::EngineIdentity;
use crate::probe::{Echo, ProbeError};

/// What one echo probe gave: an observation, or why nothing was observed.
pub type Probed = Result<Echo, ProbeError>;

fn describe(p: &Probed) -> String {
    match p {
        Ok(e) => e.summary(),
        Err(e) => format!("not sent: {e}"),
    }
}

/// A reachability check: `what` (`container A -> 198.18.200.3`) must answer.
pub fn judge_reach(what: &str, probe: &Probed) -> Outcome {
    let o = match probe {
        Ok(e) if e.answered() => Outcome::pass(format!("{what}: answers ({})", e.summary())),
        Ok(e) => Outcome::fail(format!("{what}: no answer ({})", e.summary())),
        Err(e) => Outcome::error(format!(
            "{what}: the probe could not be sent, nothing was observed: {e}"
        )),
    };
    o.with_property(format!("probe {what}"), describe(probe))
}

/// Several reachability probes that must all answer (`macvlan.reach`).
pub fn judge_all_reach(probes: &[(String, Probed)]) -> Outcome {
    let mut failed = Vec::new();
    let mut unsent = Vec::new();
    for (what, p) in probes {
        match p {
            Ok(e) if e.answered() => {}
            Ok(e) => failed.push(format!("{what}: no answer ({})", e.summary())),
            Err(e) => unsent.push(format!("{what}: the probe could not be sent: {e}")),
        }
    }
    let o = if !unsent.is_empty() {
        Outcome::error(format!("nothing observed: {}", unsent.join("; ")))
    } else if !failed.is_empty() {
        Outcome::fail(failed.join("; "))
    } else {
        Outcome::pass(
            probes
                .iter()
                .map(|(w, _)| format!("{w}: answers"))
                .collect::<Vec<_>>()
                .join("; "),
        )
    };
    probes.iter().fold(o, |o, (what, p)| {
        o.with_property(format!("probe {what}"), describe(p))
    })
}

/// A negative check ("X cannot reach Y") with its positive control: the same probe path,
/// from the same namespace, to something that must answer. Silence proves isolation only when
/// the control answered; a control that did not, or a probe that could not be sent, is an
/// error (nothing was observed), never a pass.
pub fn judge_unreachable(
    control_what: &str,
    control: &Probed,
    what: &str,
    probe: &Probed,
) -> Outcome {
    let o = match (control, probe) {
        (Err(e), _) => Outcome::error(format!(
            "the probe could not observe: its positive control ({control_what}) could not be sent: {e}"
        )),
        (Ok(c), _) if !c.answered() => Outcome::error(format!(
            "the probe could not observe: its positive control ({control_what}) got no answer through the same probe path ({}), so silence from {what} would prove nothing",
            c.summary()
        )),
        (Ok(_), Err(e)) => Outcome::error(format!(
            "{what}: the probe could not be sent, nothing was observed: {e}"
        )),
        (Ok(_), Ok(p)) if p.answered() => Outcome::fail(format!(
            "{what}: answers, expected no answer ({})",
            p.summary()
        )),
        (Ok(c), Ok(p)) => Outcome::pass(format!(
            "{what}: no answer ({}), while the positive control {control_what} answered through the same probe path ({})",
            p.summary(),
            c.summary()
        )),
    };
    o.with_property("positive control", control_what)
        .with_property("positive control result", describe(control))
        .with_property("probe", what)
        .with_property("probe result", describe(probe))
}

/// One verdict from several phases of a check (isolation before and after another network
/// comes and goes): a violation observed in any phase fails it; otherwise a phase that could
/// not observe makes it an error; it passes only when every phase passed. Each phase's
/// properties are kept under its name.
pub fn judge_phases(phases: Vec<(&str, Outcome)>) -> Outcome {
    use nfvi_harness::Status::{Error, Failed, Passed};
    if phases.is_empty() {
        return Outcome::error("no phase was probed, so nothing was observed");
    }
    // Failed first; then anything that is not a pass (an error, a skip, a timeout) is an
    // error: a phase that did not pass observed nothing the verdict may rest on.
    let worst = if phases.iter().any(|(_, o)| o.status == Failed) {
        Failed
    } else if phases.iter().any(|(_, o)| o.status != Passed) {
        Error
    } else {
        Passed
    };
    let message = phases
        .iter()
        .filter(|(_, o)| {
            worst == Passed || (o.status != Passed && (worst == Error || o.status == worst))
        })
        .map(|(name, o)| format!("{name}: {}", o.message))
        .collect::<Vec<_>>()
        .join("; ");
    let mut o = match worst {
        Failed => Outcome::fail(message),
        Error => Outcome::error(message),
        _ => Outcome::pass(message),
    };
    for (name, p) in &phases {
        for (k, v) in &p.evidence.properties {
            o = o.with_property(format!("{name}: {k}"), v);
        }
    }
    o
}

/// A default network as `GET /networks` lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listed {
    /// Its name.
    pub name: String,
    /// Its driver.
    pub driver: String,
}

/// Whether a network mode the engine does not list works (a container started with it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Not tried (the network is listed).
    NotTried,
    /// A container ran with the mode; how that was verified.
    Works(String),
    /// It did not; why.
    Broken(String),
}

/// `docker.networks.defaults`. libnetwork lists `bridge`, `host` and `none` (drivers
/// bridge, host, null); Podman lists `bridge` and has host and none as network modes. A
/// listed default with another driver, a missing `bridge`, a default Docker does not list,
/// or a mode that does not work fails; Podman's modes pass, saying so.
pub fn judge_defaults(
    engine: &EngineIdentity,
    listed: &[Listed],
    modes: &[(&str, Mode)],
) -> Outcome {
    let mut problems = Vec::new();
    let mut notes = Vec::new();
    let mut props = Vec::new();
    for (name, driver) in [("bridge", "bridge"), ("host", "host"), ("none", "null")] {
        let mode = modes
            .iter()
            .find(|(n, _)| *n == name)
            .map_or(&Mode::NotTried, |(_, m)| m);
        match listed.iter().find(|n| n.name == name) {
            Some(n) if n.driver == driver => {
                props.push((name, format!("listed, driver {driver}")));
            }
            Some(n) => problems.push(format!(
                "network {name} has driver {:?}, expected {driver}",
                n.driver
            )),
            None if name == "bridge" || engine.lists_host_and_none() => {
                problems.push(format!(
                    "no network {name} (libnetwork creates bridge, host and none at start)"
                ));
            }
            None => match mode {
                Mode::Works(how) => {
                    notes.push(name);
                    props.push((name, format!("a network mode, not a listed network: {how}")));
                }
                Mode::Broken(why) => problems.push(format!(
                    "{} lists no network {name} and its network mode {name} does not work: {why}",
                    engine.label()
                )),
                Mode::NotTried => problems.push(format!(
                    "{} lists no network {name} and its network mode was not verified",
                    engine.label()
                )),
            },
        }
    }
    let pass = if notes.is_empty() {
        "bridge, host and none exist with drivers bridge, host and null".to_owned()
    } else {
        format!(
            "bridge is listed with driver bridge; {} {} network modes on {}, not listed networks (the engine's legitimate difference from libnetwork), and {} verified to work",
            notes.join(" and "),
            if notes.len() > 1 { "are" } else { "is a" },
            engine.label(),
            if notes.len() > 1 {
                "both were"
            } else {
                "it was"
            }
        )
    };
    let o = Outcome::pass_unless(problems, pass);
    props.into_iter().fold(o, |o, (name, v)| {
        o.with_property(format!("network {name}"), v)
    })
}

/// Whether a link is another container's or a concurrent check's, which come and go between
/// two listings.
fn transient(name: &str) -> bool {
    ["veth", "br-", "nfvdk", "podman", "nfv"]
        .iter()
        .any(|p| name.starts_with(p))
        && name != "podman0"
}

/// `docker.none.loopback-only`: the container's own namespace holds only `lo`. An empty
/// listing observed nothing (every namespace has `lo`).
pub fn judge_none(links: &[String], container_ns: u64, harness_ns: u64) -> Outcome {
    let names: BTreeSet<&str> = links.iter().map(String::as_str).collect();
    let o = if names.is_empty() {
        Outcome::error(
            "the listing of the container's namespace returned no link at all, not even lo: nothing was observed",
        )
    } else if container_ns == harness_ns {
        Outcome::fail(format!(
            "the container on none shares the host's network namespace (net:[{container_ns}])"
        ))
    } else if names == BTreeSet::from(["lo"]) {
        Outcome::pass(format!(
            "only lo, in a namespace of its own (net:[{container_ns}]), listed over netlink from inside it"
        ))
    } else {
        Outcome::fail(format!(
            "expected only lo on the none network; the container's namespace has {names:?}"
        ))
    };
    o.with_property("links", links.join(", "))
        .with_property("container namespace", format!("net:[{container_ns}]"))
        .with_property("harness namespace", format!("net:[{harness_ns}]"))
}

/// `docker.host.same-interfaces`: the container is in the host's network namespace, so it
/// sees exactly the host's interfaces.
pub fn judge_host(
    container_ns: u64,
    harness_ns: u64,
    container_links: &[String],
    host_links: &[String],
) -> Outcome {
    let keep = |l: &[String]| -> BTreeSet<String> {
        l.iter().filter(|n| !transient(n)).cloned().collect()
    };
    let (seen, host) = (keep(container_links), keep(host_links));
    let o = if container_links.is_empty() {
        Outcome::error(
            "the listing of the container's namespace returned no link at all, not even lo: nothing was observed",
        )
    } else if container_ns != harness_ns {
        Outcome::fail(format!(
            "the container on host has a network namespace of its own (net:[{container_ns}], the host's is net:[{harness_ns}]); only in the container {:?}, only on the host {:?}",
            seen.difference(&host).collect::<Vec<_>>(),
            host.difference(&seen).collect::<Vec<_>>()
        ))
    } else {
        Outcome::pass(format!(
            "the container is in the host's network namespace (net:[{container_ns}]) and sees its {} interfaces",
            container_links.len()
        ))
    };
    o.with_property("container links", container_links.join(", "))
        .with_property("container namespace", format!("net:[{container_ns}]"))
        .with_property("host namespace", format!("net:[{harness_ns}]"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::{EngineKind, OciRuntime};
    use nfvi_harness::Status;
    use std::net::Ipv4Addr;
    use std::time::Duration;

    fn echo(replies: u32) -> Probed {
        Ok(Echo {
            target: Ipv4Addr::new(198, 18, 200, 3),
            source: Ipv4Addr::new(198, 18, 200, 2),
            sent: 3.max(replies),
            replies,
            rtt: (replies > 0).then_some(Duration::from_micros(80)),
            icmp_errors: vec![],
            unresolved: 0,
        })
    }

    fn unsent() -> Probed {
        Err(ProbeError::NoAddress {
            target: Ipv4Addr::new(198, 18, 200, 3),
        })
    }

    fn not_entered() -> Probed {
        Err(ProbeError::Enter {
            path: "/proc/1234/ns/net".into(),
            reason: "no such file".into(),
        })
    }

    /// The isolation checks (user-bridge and macvlan parent) share this judge: every row
    /// where the probe could not observe is an error, never a pass.
    #[test]
    fn a_negative_check_passes_only_when_its_control_answered() {
        let table: &[(&str, Probed, Probed, Status)] = &[
            ("isolated", echo(1), echo(0), Status::Passed),
            ("not isolated", echo(1), echo(1), Status::Failed),
            ("control silent", echo(0), echo(0), Status::Error),
            (
                "control silent, probe answers",
                echo(0),
                echo(1),
                Status::Error,
            ),
            ("control not sent", unsent(), echo(0), Status::Error),
            (
                "namespace not entered",
                not_entered(),
                not_entered(),
                Status::Error,
            ),
            ("probe not sent", echo(1), unsent(), Status::Error),
            ("probe not entered", echo(1), not_entered(), Status::Error),
        ];
        for check in ["user-bridge.isolation", "macvlan.parent-unreachable"] {
            for (what, control, probe, want) in table {
                let o = judge_unreachable("peer", control, "target", probe);
                assert_eq!(o.status, *want, "{check}, {what}: {}", o.message);
                assert!(
                    o.evidence
                        .properties
                        .contains_key("positive control result")
                );
                assert!(o.evidence.properties.contains_key("probe result"));
                if *want == Status::Error && control.as_ref().is_ok_and(|c| !c.answered()) {
                    assert!(o.message.contains("could not observe"), "{}", o.message);
                }
            }
        }
    }

    #[test]
    fn a_violation_in_any_phase_fails_and_silence_without_control_is_an_error() {
        let u = |c: Probed, p: Probed| judge_unreachable("peer", &c, "target", &p);
        let table: Vec<(&str, Outcome, Outcome, Status)> = vec![
            (
                "both isolated",
                u(echo(1), echo(0)),
                u(echo(1), echo(0)),
                Status::Passed,
            ),
            (
                "leaks after churn",
                u(echo(1), echo(0)),
                u(echo(1), echo(1)),
                Status::Failed,
            ),
            (
                "leaks before, blind after",
                u(echo(1), echo(1)),
                u(echo(0), echo(0)),
                Status::Failed,
            ),
            (
                "blind after churn",
                u(echo(1), echo(0)),
                u(echo(0), echo(0)),
                Status::Error,
            ),
            (
                "not sent before",
                u(unsent(), unsent()),
                u(echo(1), echo(0)),
                Status::Error,
            ),
        ];
        for (what, a, b, want) in table {
            let o = judge_phases(vec![("before", a), ("after", b)]);
            assert_eq!(o.status, want, "{what}: {}", o.message);
            assert!(
                o.evidence.properties.contains_key("after: probe result"),
                "{what}"
            );
        }
    }

    #[test]
    fn a_reach_probe_that_was_not_sent_is_an_error_not_a_failure() {
        assert_eq!(judge_reach("a -> b", &echo(1)).status, Status::Passed);
        assert_eq!(judge_reach("a -> b", &echo(0)).status, Status::Failed);
        assert_eq!(judge_reach("a -> b", &unsent()).status, Status::Error);
        let all = |v: Vec<Probed>| {
            judge_all_reach(
                &v.into_iter()
                    .enumerate()
                    .map(|(i, p)| (format!("p{i}"), p))
                    .collect::<Vec<_>>(),
            )
            .status
        };
        assert_eq!(all(vec![echo(1), echo(2)]), Status::Passed);
        assert_eq!(all(vec![echo(1), echo(0)]), Status::Failed);
        assert_eq!(all(vec![echo(0), unsent()]), Status::Error);
    }

    fn engine(kind: EngineKind) -> EngineIdentity {
        EngineIdentity {
            kind,
            version: "4.3.1".into(),
            api_version: "1.41".into(),
            runtime: Some(OciRuntime {
                name: "runc".into(),
                version: "1.1.5".into(),
            }),
            components: vec![],
        }
    }

    fn listed(v: &[(&str, &str)]) -> Vec<Listed> {
        v.iter()
            .map(|(n, d)| Listed {
                name: (*n).into(),
                driver: (*d).into(),
            })
            .collect()
    }

    #[test]
    fn default_networks_are_judged_by_engine_semantics() {
        use EngineKind::{Docker, Podman};
        let all = listed(&[("bridge", "bridge"), ("host", "host"), ("none", "null")]);
        let bridge_only = listed(&[("bridge", "bridge")]);
        let works = |n| (n, Mode::Works("a container ran with it".into()));
        type Row = (
            &'static str,
            EngineKind,
            Vec<Listed>,
            Vec<(&'static str, Mode)>,
            Status,
        );
        let table: Vec<Row> = vec![
            (
                "docker lists all three",
                Docker,
                all.clone(),
                vec![],
                Status::Passed,
            ),
            (
                "docker without host and none",
                Docker,
                bridge_only.clone(),
                vec![works("host"), works("none")],
                Status::Failed,
            ),
            (
                "podman: modes that work",
                Podman,
                bridge_only.clone(),
                vec![works("host"), works("none")],
                Status::Passed,
            ),
            (
                "podman: a mode that does not work",
                Podman,
                bridge_only.clone(),
                vec![works("host"), ("none", Mode::Broken("refused".into()))],
                Status::Failed,
            ),
            (
                "podman: a mode not verified",
                Podman,
                bridge_only.clone(),
                vec![works("host")],
                Status::Failed,
            ),
            (
                "podman without bridge",
                Podman,
                vec![],
                vec![works("host"), works("none")],
                Status::Failed,
            ),
            (
                "a wrong driver",
                Docker,
                listed(&[("bridge", "macvlan"), ("host", "host"), ("none", "null")]),
                vec![],
                Status::Failed,
            ),
            (
                "podman listing all three",
                Podman,
                all,
                vec![],
                Status::Passed,
            ),
        ];
        for (what, kind, listed, modes, want) in table {
            let o = judge_defaults(&engine(kind), &listed, &modes);
            assert_eq!(o.status, want, "{what}: {}", o.message);
        }
        let o = judge_defaults(
            &engine(Podman),
            &bridge_only,
            &[works("host"), works("none")],
        );
        assert!(
            o.message.contains("network modes on Podman 4.3.1"),
            "{}",
            o.message
        );
        assert!(o.evidence.properties["network host"].starts_with("a network mode"));
    }

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn none_is_its_own_namespace_with_only_loopback() {
        assert_eq!(judge_none(&names(&["lo"]), 2, 1).status, Status::Passed);
        assert_eq!(
            judge_none(&names(&["lo", "eth0"]), 2, 1).status,
            Status::Failed
        );
        assert_eq!(judge_none(&names(&["lo"]), 1, 1).status, Status::Failed);
        assert_eq!(judge_none(&[], 2, 1).status, Status::Error);
    }

    #[test]
    fn host_is_the_hosts_namespace() {
        let host = names(&["lo", "eth0", "docker0"]);
        assert_eq!(judge_host(1, 1, &host, &host).status, Status::Passed);
        let o = judge_host(2, 1, &names(&["lo", "eth0"]), &host);
        assert_eq!(o.status, Status::Failed);
        assert!(o.message.contains("docker0"), "{}", o.message);
        assert_eq!(judge_host(1, 1, &[], &host).status, Status::Error);
    }
}
