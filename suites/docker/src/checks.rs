//! The Docker networking checks, following libnetwork's container network model (sandbox,
//! endpoint, network; drivers bridge, host, null, macvlan), with probe containers.

use std::collections::{BTreeSet, HashMap};
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;

use nfvi_harness::process::CommandSpec;
use nfvi_harness::{
    Check, CheckContext, CheckError, CheckMeta, CheckResult, Need, Outcome, Severity, declare,
};
use nfvi_reference_model::Area;

use crate::engine::{Probe, RunOutput};

/// What the checks that start probe containers change.
const EFFECTS: &str = "starts probe containers (prefix nfv-, label io.nfvi-verify.probe) from the probe image and creates user-defined Docker networks on lab subnets; the macvlan checks also create a veth pair (prefix nfvdk) in the host namespace and a namespace holding the gateway";

/// How they undo it.
const CLEANUP: &str =
    "removes every container, network, veth and namespace it created, whatever the outcome";

/// Which body a check runs: the checks share the client, the probe and the error wording.
#[derive(Clone, Copy, Debug)]
enum Kind {
    Version,
    Defaults,
    NoneLoopback,
    HostInterfaces,
    DefaultBridge,
    UserBridgeEastWest,
    UserBridgeIsolation,
    MacvlanReach,
    MacvlanParent,
}

/// The metadata every Docker check shares; the subject is the ID's second segment.
/// `#[track_caller]`, so the check's own line is its declaration site.
#[track_caller]
fn meta(id: &str, title: &str, severity: Severity, covers: &[&str]) -> CheckMeta {
    CheckMeta::new(id, Area::Docker, title)
        .covers(severity, covers)
        .needs([crate::socket_need()])
        .subject(id.split('.').nth(1).unwrap_or("docker"))
        .timeout(Duration::from_secs(90))
}

/// Every Docker check.
pub fn checks() -> Vec<Arc<dyn Check>> {
    use Severity::{Info, Must};
    let macvlan_needs = || [Need::Root, Need::Tool("ip".into())];
    [
        declare(
            meta(
                "docker.daemon.version",
                "The Docker daemon answers and runs an OCI runtime",
                Must,
                &["ra2.crt.001"],
            ),
            |cx| Box::pin(run(Kind::Version, cx)),
        ),
        declare(
            meta(
                "docker.networks.defaults",
                "The default networks bridge, host and none exist with drivers bridge, host and null",
                Info,
                &[],
            ),
            |cx| Box::pin(run(Kind::Defaults, cx)),
        ),
        declare(
            meta(
                "docker.none.loopback-only",
                "A container on `none` has only loopback",
                Info,
                &[],
            )
            .side_effects(EFFECTS, CLEANUP),
            |cx| Box::pin(run(Kind::NoneLoopback, cx)),
        ),
        declare(
            meta(
                "docker.host.same-interfaces",
                "A container on `host` sees exactly the host's interfaces",
                Info,
                &[],
            )
            .side_effects(EFFECTS, CLEANUP),
            |cx| Box::pin(run(Kind::HostInterfaces, cx)),
        ),
        declare(
            meta(
                "docker.bridge.reach",
                "Two containers on the default bridge reach each other",
                Info,
                &[],
            )
            .side_effects(EFFECTS, CLEANUP),
            |cx| Box::pin(run(Kind::DefaultBridge, cx)),
        ),
        declare(
            meta(
                "docker.user-bridge.east-west",
                "Containers on one user-defined bridge network reach each other",
                Info,
                &[],
            )
            .side_effects(EFFECTS, CLEANUP),
            |cx| Box::pin(run(Kind::UserBridgeEastWest, cx)),
        ),
        declare(
            meta(
                "docker.user-bridge.isolation",
                "Containers on different user-defined bridge networks do not reach each other",
                Info,
                &[],
            )
            .side_effects(EFFECTS, CLEANUP),
            |cx| Box::pin(run(Kind::UserBridgeIsolation, cx)),
        ),
        declare(
            meta(
                "docker.macvlan.reach",
                "macvlan network: addresses from its subnet; containers reach each other and the gateway",
                Info,
                &[],
            )
            .side_effects(EFFECTS, CLEANUP)
            .needs(macvlan_needs()),
            |cx| Box::pin(run(Kind::MacvlanReach, cx)),
        ),
        declare(
            meta(
                "docker.macvlan.parent-unreachable",
                "macvlan network: containers cannot reach the parent's own address",
                Info,
                &[],
            )
            .side_effects(EFFECTS, CLEANUP)
            .needs(macvlan_needs()),
            |cx| Box::pin(run(Kind::MacvlanParent, cx)),
        ),
    ]
    .into_iter()
    .map(|d| d.into_check())
    .collect()
}

/// Runs a check's body; when it could not decide, says so if the daemon went away during
/// the run.
async fn run(kind: Kind, cx: &CheckContext) -> CheckResult {
    run_kind(kind, cx).await.map_err(|e| {
        let socket = &cx.target().config::<crate::DockerConfig>().socket;
        let gone = std::os::unix::net::UnixStream::connect(socket).is_err_and(|e| {
            matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
            )
        });
        CheckError::from(if gone {
            format!(
                "{e}; the Docker daemon at {} no longer answers (stopped during the run?)",
                socket.display()
            )
        } else {
            e
        })
    })
}

fn lab_ip(cx: &CheckContext, k: u32, host: u8) -> Result<Ipv4Addr, String> {
    let (base, _) = nfvi_harness::target::parse_ipv4_cidr(&cx.target().network.lab_cidr)
        .ok_or("network.lab_cidr is not an IPv4 network")?;
    Ok(Ipv4Addr::from(
        u32::from(base) + ((200 + k % 50) << 8) + u32::from(host),
    ))
}

fn with_run(o: Outcome, r: &RunOutput) -> Outcome {
    let mut o = o;
    o.evidence
        .commands
        .push(nfvi_harness::outcome::CommandRecord {
            command: r.command.clone(),
            exit_code: i32::try_from(r.exit_code).ok(),
            stdout: r.output.clone(),
            stderr: String::new(),
            duration_secs: 0.0,
        });
    o
}

fn link_names(ip_o_link: &str) -> BTreeSet<String> {
    ip_o_link
        .lines()
        .filter_map(|l| l.split(": ").nth(1))
        .map(|n| n.split('@').next().unwrap_or(n).to_owned())
        .collect()
}

/// Expects a ping from a fresh container to `ip` to succeed (`reach`) or fail.
async fn ping(
    probe: &Probe<'_>,
    suffix: &str,
    network: &str,
    ip: &str,
    reach: bool,
    what: &str,
) -> Result<Outcome, String> {
    let r = probe
        .run(suffix, network, &["/bin/ping", "-c", "2", "-W", "2", ip])
        .await?;
    let got = r.exit_code == 0;
    let word = |b: bool| if b { "reachable" } else { "unreachable" };
    let o = Outcome::pass_if(
        got == reach,
        format!("{what}: {} as expected", word(got)),
        format!("{what}: expected {}, observed {}", word(reach), word(got)),
    );
    Ok(with_run(
        o.with_property("expected", word(reach))
            .with_property("observed", word(got)),
        &r,
    ))
}

/// A check's body; `Err` is what kept it from deciding.
async fn run_kind(kind: Kind, cx: &CheckContext) -> Result<Outcome, String> {
    let docker = crate::area::client(cx).await?;
    // Consecutive per run, so concurrent checks take distinct lab subnets (k % 50).
    let k = cx.shared::<crate::Engine>().next_probe();
    let probe = Probe::new(
        cx,
        docker.clone(),
        format!("nfv-{}-{k}", std::process::id() % 100_000),
    );
    match kind {
        Kind::Version => {
            let v = docker
                .version()
                .await
                .map_err(|e| format!("GET /version: {e}"))?;
            let components: Vec<String> = v
                .components
                .clone()
                .unwrap_or_default()
                .iter()
                .map(|c| format!("{} {}", c.name, c.version))
                .collect();
            let oci = components
                .iter()
                .any(|c| c.starts_with("runc") || c.starts_with("crun"));
            let o = Outcome::pass_if(
                oci,
                format!(
                    "Docker {} (API {}) with an OCI runtime",
                    v.version.clone().unwrap_or_default(),
                    v.api_version.clone().unwrap_or_default()
                ),
                format!(
                    "the daemon reports no OCI runtime component (runc or crun): {components:?}"
                ),
            );
            Ok(
                o.with_property("server version", v.version.unwrap_or_default())
                    .with_property("API version", v.api_version.unwrap_or_default())
                    .with_property("minimum API version", v.min_api_version.unwrap_or_default())
                    .with_property("components", components.join(", ")),
            )
        }
        Kind::Defaults => {
            let nets = docker
                .list_networks(None)
                .await
                .map_err(|e| format!("GET /networks: {e}"))?;
            let mut missing = Vec::new();
            let mut o = Outcome::pass("bridge, host and none exist with their drivers");
            for (name, driver) in [("bridge", "bridge"), ("host", "host"), ("none", "null")] {
                match nets.iter().find(|n| n.name.as_deref() == Some(name)) {
                    Some(n) if n.driver.as_deref() == Some(driver) => {
                        o = o.with_property(format!("network {name}"), format!("driver {driver}"));
                    }
                    Some(n) => missing.push(format!(
                        "{name} has driver {:?}, expected {driver}",
                        n.driver
                    )),
                    None => missing.push(format!("no network {name}")),
                }
            }
            Ok(if missing.is_empty() {
                o
            } else {
                Outcome::fail(missing.join("; "))
            })
        }
        Kind::NoneLoopback => {
            let r = probe
                .run("none", "none", &["/bin/ip", "-o", "link"])
                .await?;
            let names = link_names(&r.output);
            let o = Outcome::pass_if(
                names == BTreeSet::from(["lo".to_owned()]),
                "only lo",
                format!("expected only lo on the none network; the container has {names:?}"),
            );
            Ok(with_run(o, &r))
        }
        Kind::HostInterfaces => {
            let r = probe
                .run("host", "host", &["/bin/ip", "-o", "link"])
                .await?;
            let seen = link_names(&r.output);
            let host: BTreeSet<String> = std::fs::read_dir("/sys/class/net")
                .map_err(|e| format!("cannot list /sys/class/net: {e}"))?
                .filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect();
            // Links of other containers and of concurrent checks (veth*, br-*, nfvdk*) come
            // and go between the two listings; they are left out of the comparison.
            let transient = |n: &String| {
                n.starts_with("veth") || n.starts_with("br-") || n.starts_with("nfvdk")
            };
            let seen: BTreeSet<String> = seen.into_iter().filter(|n| !transient(n)).collect();
            let host: BTreeSet<String> = host.into_iter().filter(|n| !transient(n)).collect();
            let o = Outcome::pass_if(
                seen == host,
                format!("the container sees the host's {} interfaces", host.len()),
                format!(
                    "the container's interfaces differ from the host's: only in the container {:?}, only on the host {:?}",
                    seen.difference(&host).collect::<Vec<_>>(),
                    host.difference(&seen).collect::<Vec<_>>()
                ),
            );
            Ok(with_run(o, &r))
        }
        Kind::DefaultBridge => {
            let ip = probe.sleeper("target", "bridge").await?;
            ping(
                &probe,
                "pinger",
                "bridge",
                &ip,
                true,
                &format!("default bridge container -> {ip}"),
            )
            .await
        }
        Kind::UserBridgeEastWest => {
            let (net, gw) = (lab_ip(cx, k, 0)?, lab_ip(cx, k, 1)?);
            let a = probe
                .network(
                    "a",
                    "bridge",
                    &format!("{net}/24"),
                    &gw.to_string(),
                    HashMap::new(),
                )
                .await?;
            let ip = probe.sleeper("target", &a).await?;
            ping(
                &probe,
                "pinger",
                &a,
                &ip,
                true,
                &format!("{a}: container -> {ip}"),
            )
            .await
        }
        Kind::UserBridgeIsolation => {
            let (na, ga) = (lab_ip(cx, k, 0)?, lab_ip(cx, k, 1)?);
            let (nb, gb) = (lab_ip(cx, k + 25, 0)?, lab_ip(cx, k + 25, 1)?);
            let a = probe
                .network(
                    "a",
                    "bridge",
                    &format!("{na}/24"),
                    &ga.to_string(),
                    HashMap::new(),
                )
                .await?;
            let b = probe
                .network(
                    "b",
                    "bridge",
                    &format!("{nb}/24"),
                    &gb.to_string(),
                    HashMap::new(),
                )
                .await?;
            let ip = probe.sleeper("target", &b).await?;
            ping(
                &probe,
                "pinger",
                &a,
                &ip,
                false,
                &format!("{a} -> container on {b} ({ip})"),
            )
            .await
        }
        Kind::MacvlanReach | Kind::MacvlanParent => macvlan(kind, cx, &probe, k).await,
    }
}

async fn macvlan(
    kind: Kind,
    cx: &CheckContext,
    probe: &Probe<'_>,
    k: u32,
) -> Result<Outcome, String> {
    let (net, gw, parent_ip) = (lab_ip(cx, k, 0)?, lab_ip(cx, k, 1)?, lab_ip(cx, k, 254)?);
    let parent = format!("nfvdk{}", k % 10_000);
    let peer = format!("{parent}p");
    let gwns = format!("{}-gw", probe.tag);
    let ip = |args: Vec<String>| async move {
        let spec = CommandSpec::new("ip")
            .args(args)
            .timeout(Duration::from_secs(10));
        let display = spec.display();
        match cx.command(spec).await {
            Ok(o) if o.success() => Ok(()),
            Ok(o) => Err(format!("`{display}` failed: {}", o.stderr_text().trim())),
            Err(e) => Err(format!("{e}: {}", e.source)),
        }
    };
    {
        let (parent, gwns) = (parent.clone(), gwns.clone());
        cx.on_cleanup(
            format!("delete veth {parent} and netns {gwns}"),
            move || {
                let _ = std::process::Command::new("ip")
                    .args(["link", "del", &parent])
                    .status();
                let _ = std::process::Command::new("ip")
                    .args(["netns", "del", &gwns])
                    .status();
                Ok(())
            },
        );
    }
    let s = |v: &[&str]| v.iter().map(|x| (*x).to_owned()).collect::<Vec<_>>();
    ip(s(&["netns", "add", &gwns])).await?;
    ip(s(&[
        "link", "add", &parent, "type", "veth", "peer", "name", &peer,
    ]))
    .await?;
    ip(s(&["link", "set", &peer, "netns", &gwns])).await?;
    ip(s(&[
        "-n",
        &gwns,
        "addr",
        "add",
        &format!("{gw}/24"),
        "dev",
        &peer,
    ]))
    .await?;
    ip(s(&["-n", &gwns, "link", "set", &peer, "up"])).await?;
    ip(s(&["link", "set", &parent, "up"])).await?;
    if matches!(kind, Kind::MacvlanParent) {
        ip(s(&[
            "addr",
            "add",
            &format!("{parent_ip}/32"),
            "dev",
            &parent,
        ]))
        .await?;
    }
    let opts = HashMap::from([("parent".to_owned(), parent.clone())]);
    let m = probe
        .network("mv", "macvlan", &format!("{net}/24"), &gw.to_string(), opts)
        .await?;
    if matches!(kind, Kind::MacvlanParent) {
        return ping(
            probe,
            "pinger",
            &m,
            &parent_ip.to_string(),
            false,
            &format!("macvlan container -> parent {parent} ({parent_ip})"),
        )
        .await;
    }
    let target = probe.sleeper("target", &m).await?;
    let in_subnet = target
        .parse::<Ipv4Addr>()
        .is_ok_and(|a| u32::from(a) >> 8 == u32::from(net) >> 8);
    let peer_reach = ping(
        probe,
        "pinger",
        &m,
        &target,
        true,
        &format!("macvlan container -> {target}"),
    )
    .await?;
    let gw_reach = ping(
        probe,
        "gwpinger",
        &m,
        &gw.to_string(),
        true,
        &format!("macvlan container -> gateway {gw}"),
    )
    .await?;
    let mut problems = Vec::new();
    if !in_subnet {
        problems.push(format!("container address {target} is not in {net}/24"));
    }
    for o in [&peer_reach, &gw_reach] {
        if o.status != nfvi_harness::Status::Passed {
            problems.push(o.message.clone());
        }
    }
    let mut o = Outcome::pass_unless(
        problems,
        format!("address {target} from {net}/24; containers reach each other and the gateway {gw}"),
    );
    o.evidence
        .commands
        .extend(peer_reach.evidence.commands.clone());
    o.evidence
        .commands
        .extend(gw_reach.evidence.commands.clone());
    Ok(o.with_property("parent", parent)
        .with_property("container address", target))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every check names its own line as its declaration site, not a shared helper's: an
    /// error message pointing at a check must lead to that check.
    #[test]
    fn every_check_reports_its_own_declaration_site() {
        let all = checks();
        let mut seen = std::collections::BTreeMap::new();
        for c in &all {
            let at = c.meta().declared_at;
            assert!(at.file().ends_with("checks.rs"), "{}: {at}", c.meta().id);
            if let Some(other) = seen.insert(at.line(), c.meta().id.clone()) {
                panic!(
                    "{} and {other} both report {at} as their declaration site",
                    c.meta().id
                );
            }
        }
        assert_eq!(seen.len(), all.len());
    }
}
