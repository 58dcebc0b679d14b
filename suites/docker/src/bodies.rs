//! The Docker checks' bodies: they set up probe containers and networks through the Engine
//! API, observe from the harness's own thread inside the containers' namespaces
//! ([`crate::probe`]) and hand the observations to the pure judges ([`crate::judge`]).

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::time::Duration;

use nfvi_harness::process::CommandSpec;
use nfvi_harness::{CheckContext, Outcome};

use crate::checks::Kind;
use crate::engine::{Probe, Sleeper};
use crate::identity::{EngineIdentity, judge_version};
use crate::judge::{self, Listed, Mode};
use crate::probe::{self, EchoPlan, Fault, netns_inode};

/// The harness's own network namespace: the host's, where the harness runs.
const HARNESS_NETNS: &str = "/proc/self/ns/net";

/// A check's body; `Err` is what kept it from deciding. Every outcome names the engine.
pub(crate) async fn run_kind(kind: Kind, cx: &CheckContext) -> Result<Outcome, String> {
    let docker = crate::area::client(cx).await?;
    let engine = cx.shared::<crate::Engine>();
    let (id, info) = engine.identity(&docker).await?;
    // Consecutive per run, so concurrent checks take distinct lab subnets.
    let k = engine.next_probe();
    let probe = Probe::new(
        cx,
        docker.clone(),
        format!("nfv-{}-{k}", std::process::id()),
    );
    let o = match kind {
        Kind::Version => judge_version(&id, &info.min_api_version),
        Kind::Defaults => defaults(&probe, &id).await?,
        Kind::NoneLoopback => {
            let s = probe.sleeper("none", "none").await?;
            let links = probe::link_names(s.netns()).await?;
            judge::judge_none(
                &links,
                netns_inode(&s.netns())?,
                netns_inode(HARNESS_NETNS.as_ref())?,
            )
            .with_property("network mode", &s.mode)
        }
        Kind::HostInterfaces => {
            let s = probe.sleeper("host", "host").await?;
            let seen = probe::link_names(s.netns()).await?;
            let host: Vec<String> = std::fs::read_dir("/sys/class/net")
                .map_err(|e| format!("cannot list /sys/class/net: {e}"))?
                .filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect();
            judge::judge_host(
                netns_inode(&s.netns())?,
                netns_inode(HARNESS_NETNS.as_ref())?,
                &seen,
                &host,
            )
            .with_property("network mode", &s.mode)
        }
        Kind::DefaultBridge => reach_pair(&probe, "bridge", "default bridge").await?,
        Kind::UserBridgeEastWest => {
            let a = user_bridge(cx, &probe, "a", k).await?;
            reach_pair(&probe, &a, &a).await?
        }
        Kind::UserBridgeIsolation => isolation(cx, &probe, k).await?,
        Kind::MacvlanReach | Kind::MacvlanParent => macvlan(kind, cx, &probe, k).await?,
    };
    Ok(o.with_property("engine", id.label())
        .with_property("engine API version", &id.api_version))
}

/// The `k`th lab subnet of this run (`network.lab_cidr` + 200..249 in the third octet),
/// offset by the PID so two harnesses at once rarely pick the same one.
fn lab_ip(cx: &CheckContext, k: u32, host: u8) -> Result<Ipv4Addr, String> {
    let (base, _) = nfvi_harness::target::parse_ipv4_cidr(&cx.target().network.lab_cidr)
        .ok_or("network.lab_cidr is not an IPv4 network")?;
    let slot = (k + std::process::id()) % 50;
    Ok(Ipv4Addr::from(
        u32::from(base) + ((200 + slot) << 8) + u32::from(host),
    ))
}

async fn user_bridge(
    cx: &CheckContext,
    probe: &Probe<'_>,
    suffix: &str,
    k: u32,
) -> Result<String, String> {
    let (net, gw) = (lab_ip(cx, k, 0)?, lab_ip(cx, k, 1)?);
    probe
        .network(
            suffix,
            "bridge",
            &format!("{net}/24"),
            &gw.to_string(),
            HashMap::new(),
        )
        .await
}

/// Applies the test fault, if any, to the probing container (see [`Fault`]).
async fn sabotage(pinger: &Sleeper) -> Result<Option<Fault>, String> {
    let fault = Fault::from_env();
    if fault == Some(Fault::NoAddress) {
        probe::drop_addresses(pinger.netns()).await?;
    }
    Ok(fault)
}

fn with_fault(o: Outcome, fault: Option<Fault>) -> Outcome {
    match fault {
        Some(f) => o.with_property("test fault", format!("{f:?}")),
        None => o,
    }
}

/// The echo probe from inside `from`'s namespace to `to`.
async fn echo(from: &Sleeper, to: Ipv4Addr) -> judge::Probed {
    probe::echo(from.netns(), to, EchoPlan::default()).await
}

fn endpoint_property(o: Outcome, s: &Sleeper) -> Outcome {
    match &s.endpoint {
        Some((key, ip)) => o.with_property(
            format!("container {}", s.name),
            format!("{ip} (network key {key:?})"),
        ),
        None => o,
    }
}

/// Two containers on `network`: one probes the other.
async fn reach_pair(probe: &Probe<'_>, network: &str, shown: &str) -> Result<Outcome, String> {
    let target = probe.sleeper("target", network).await?;
    let pinger = probe.sleeper("pinger", network).await?;
    let to = target.address(network)?;
    let fault = sabotage(&pinger).await?;
    let p = echo(&pinger, to).await;
    let o = judge::judge_reach(&format!("{shown}: container -> container {to}"), &p);
    let o = with_fault(o, fault);
    Ok(endpoint_property(endpoint_property(o, &pinger), &target))
}

/// A container on network a probes a peer on a (the positive control) and a container on
/// network b (which must not answer); then a third network gets a container and loses it
/// again, as other checks' and users' networks do, and both probes are repeated: isolation
/// must hold through that too (netavark 1.4 drops its isolation jump when any isolated
/// network's last container goes).
async fn isolation(cx: &CheckContext, probe: &Probe<'_>, k: u32) -> Result<Outcome, String> {
    let a = user_bridge(cx, probe, "a", k).await?;
    let b = user_bridge(cx, probe, "b", k + 25).await?;
    let target = probe.sleeper("target", &b).await?;
    let peer = probe.sleeper("peer", &a).await?;
    let pinger = probe.sleeper("pinger", &a).await?;
    let (to, mut control_to) = (target.address(&b)?, peer.address(&a)?);
    let fault = sabotage(&pinger).await?;
    if fault == Some(Fault::SilentControl) {
        control_to = lab_ip(cx, k, 250)?;
    }
    let control_what = format!("{a}: container -> peer {control_to} on the same network");
    let what = format!("{a} -> container {to} on {b}");
    let control = echo(&pinger, control_to).await;
    let p = echo(&pinger, to).await;
    let before = judge::judge_unreachable(&control_what, &control, &what, &p);
    let c = user_bridge(cx, probe, "c", k + 37).await?;
    let churn = probe.sleeper("churn", &c).await?;
    probe.remove(&churn.name, &c).await?;
    let control = echo(&pinger, control_to).await;
    let p = echo(&pinger, to).await;
    let after = judge::judge_unreachable(&control_what, &control, &what, &p);
    let steady_passed = before.status == nfvi_harness::Status::Passed;
    let mut o = judge::judge_phases(vec![("steady", before), ("after churn", after)]);
    if steady_passed && o.status == nfvi_harness::Status::Failed {
        o.message.push_str(
            "; isolation held until another network's last container and the network were removed, and not after",
        );
    }
    let o = with_fault(o, fault).with_property(
        "churn",
        format!(
            "between the two phases a container was started on a third network {c}, then it and the network were removed"
        ),
    );
    Ok([&pinger, &peer, &target]
        .into_iter()
        .fold(o, endpoint_property))
}

/// `docker.networks.defaults`: the listed networks, and the modes an engine does not list
/// verified with a container each.
async fn defaults(probe: &Probe<'_>, id: &EngineIdentity) -> Result<Outcome, String> {
    let nets = tokio::time::timeout(Duration::from_secs(30), probe.docker().list_networks(None))
        .await
        .map_err(|_| "GET /networks: no answer within 30s".to_owned())?
        .map_err(|e| format!("GET /networks: {e}"))?;
    let listed: Vec<Listed> = nets
        .iter()
        .map(|n| Listed {
            name: n.name.clone().unwrap_or_default(),
            driver: n.driver.clone().unwrap_or_default(),
        })
        .collect();
    let mut modes = Vec::new();
    if !id.lists_host_and_none() {
        for mode in ["host", "none"] {
            if !listed.iter().any(|n| n.name == mode) {
                modes.push((mode, verify_mode(probe, mode).await));
            }
        }
    }
    Ok(judge::judge_defaults(id, &listed, &modes).with_property(
        "listed networks",
        listed
            .iter()
            .map(|n| format!("{} ({})", n.name, n.driver))
            .collect::<Vec<_>>()
            .join(", "),
    ))
}

/// Starts a container with network mode `mode` and says how it was seen to work: the engine
/// records the mode, and as root its namespace is the host's (host) or one of its own with
/// only `lo` (none).
async fn verify_mode(probe: &Probe<'_>, mode: &str) -> Mode {
    let s = match probe.sleeper(&format!("mode-{mode}"), mode).await {
        Ok(s) => s,
        Err(e) => return Mode::Broken(e),
    };
    if s.mode != mode {
        return Mode::Broken(format!(
            "the engine recorded network mode {:?} for a container started with {mode}",
            s.mode
        ));
    }
    if !nix::unistd::geteuid().is_root() {
        return Mode::Works(format!(
            "a container started with it and the engine recorded mode {mode} (its namespace not read: needs root)"
        ));
    }
    let (own, host) = match (netns_inode(&s.netns()), netns_inode(HARNESS_NETNS.as_ref())) {
        (Ok(own), Ok(host)) => (own, host),
        (Err(e), _) | (_, Err(e)) => return Mode::Broken(e),
    };
    match mode {
        "host" if own == host => Mode::Works(format!(
            "a container started with it runs in the host's namespace net:[{host}]"
        )),
        "host" => Mode::Broken(format!(
            "the container's namespace net:[{own}] is not the host's net:[{host}]"
        )),
        _ => match probe::link_names(s.netns()).await {
            Ok(links) if own != host && links == ["lo"] => Mode::Works(format!(
                "a container started with it has a namespace of its own (net:[{own}]) with only lo"
            )),
            Ok(links) => Mode::Broken(format!(
                "the container's namespace net:[{own}] (host net:[{host}]) has links {links:?}"
            )),
            Err(e) => Mode::Broken(e),
        },
    }
}

async fn macvlan(
    kind: Kind,
    cx: &CheckContext,
    probe: &Probe<'_>,
    k: u32,
) -> Result<Outcome, String> {
    let (net, gw, parent_ip) = (lab_ip(cx, k, 0)?, lab_ip(cx, k, 1)?, lab_ip(cx, k, 254)?);
    let parent = crate::clean::link_name(k);
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
        // A way back to the containers through the parent, so that if macvlan let a request
        // reach the parent's address the host could answer it (without this route its answer
        // would follow the default route, and silence would prove nothing). It goes with the
        // veth.
        ip(s(&["route", "add", &format!("{net}/24"), "dev", &parent])).await?;
    }
    let opts = HashMap::from([("parent".to_owned(), parent.clone())]);
    let m = probe
        .network("mv", "macvlan", &format!("{net}/24"), &gw.to_string(), opts)
        .await?;
    let pinger = probe.sleeper("pinger", &m).await?;
    let fault = sabotage(&pinger).await?;
    let o = if matches!(kind, Kind::MacvlanParent) {
        // The gateway sits on the parent's wire: the same path the parent's address would
        // be reached by, so it answering shows the probe can observe from this container.
        let control_to = if fault == Some(Fault::SilentControl) {
            lab_ip(cx, k, 250)?
        } else {
            gw
        };
        let control = echo(&pinger, control_to).await;
        let p = echo(&pinger, parent_ip).await;
        judge::judge_unreachable(
            &format!("macvlan container -> gateway {control_to} beyond parent {parent}"),
            &control,
            &format!("macvlan container -> parent {parent}'s own address {parent_ip}"),
            &p,
        )
    } else {
        let target = probe.sleeper("target", &m).await?;
        let to = target.address(&m)?;
        let in_subnet = u32::from(to) >> 8 == u32::from(net) >> 8;
        let probes = vec![
            (
                format!("macvlan container -> container {to}"),
                echo(&pinger, to).await,
            ),
            (
                format!("macvlan container -> gateway {gw}"),
                echo(&pinger, gw).await,
            ),
        ];
        let o = judge::judge_all_reach(&probes);
        let o = match o.status {
            _ if in_subnet => o,
            nfvi_harness::Status::Error => o,
            status => {
                let also = if status == nfvi_harness::Status::Passed {
                    String::new()
                } else {
                    format!("; {}", o.message)
                };
                Outcome::fail(format!("container address {to} is not in {net}/24{also}"))
                    .with_evidence(*o.evidence)
            }
        };
        endpoint_property(o, &target)
    };
    Ok(endpoint_property(with_fault(o, fault), &pinger)
        .with_property("parent", parent)
        .with_property("subnet", format!("{net}/24")))
}
