//! The Docker area's probe path against real engines: the lab's dockerd
//! (/var/run/docker.sock) and, when env `NFVI_PODMAN_SOCKET` names one, Podman's
//! Docker-compatible service. The probe runs from the test's own thread inside a container's
//! namespace, so it works on Podman, whose default capabilities omit NET_RAW; and every way
//! of taking its ability to observe away (no address, a namespace that is gone, a silent
//! positive control) makes the negative checks' judge an error, never a pass.
//!
//! Needs root (setns, raw sockets). Skips saying why without root or an engine; under
//! `CI=true` a missing dockerd or root fails, and so does a `NFVI_PODMAN_SOCKET` that is set
//! but does not answer (unset, the Podman rows are skipped with a reason).

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bollard::Docker;
use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::{CreateContainerOptions, RemoveContainerOptions};
use nfvi_harness::Status;
use nfvi_suite_docker::engine::endpoint_address;
use nfvi_suite_docker::judge::{judge_reach, judge_unreachable};
use nfvi_suite_docker::probe::{self, EchoPlan, ProbeError};

const IMAGE: &str = "nfvi-verify/busybox:lab";

fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// Whether `present`; otherwise skips saying why, or fails under CI.
fn require(what: &str, present: bool) -> bool {
    if present {
        return true;
    }
    assert!(
        !ci(),
        "prerequisite missing under CI: {what} (.ci/run should have provided it)"
    );
    eprintln!("SKIPPED: prerequisite missing: {what}");
    false
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

async fn answers(socket: &Path) -> Option<Docker> {
    let docker = nfvi_suite_docker::engine::connect(socket).await.ok()?;
    tokio::time::timeout(Duration::from_secs(5), docker.ping())
        .await
        .ok()?
        .ok()?;
    Some(docker)
}

/// The engines to test: dockerd always (skipped, or failed under CI, when it does not
/// answer); Podman when `NFVI_PODMAN_SOCKET` is set.
async fn engines() -> Vec<(&'static str, Docker)> {
    let mut out = Vec::new();
    if !require(
        "root (setns and raw sockets)",
        nix::unistd::geteuid().is_root(),
    ) {
        return out;
    }
    let dockerd = answers(Path::new("/var/run/docker.sock")).await;
    if let Some(d) = dockerd {
        out.push(("dockerd", d));
    } else {
        require(
            "the lab's Docker daemon on /var/run/docker.sock (run `nfvi-verify lab up`)",
            false,
        );
    }
    match std::env::var_os("NFVI_PODMAN_SOCKET") {
        None => eprintln!(
            "SKIPPED (Podman rows): NFVI_PODMAN_SOCKET is not set (point it at a `podman system service` socket)"
        ),
        Some(socket) => match answers(Path::new(&socket)).await {
            Some(d) => out.push(("podman", d)),
            None if ci() => panic!(
                "NFVI_PODMAN_SOCKET={} is set but the socket does not answer",
                PathBuf::from(&socket).display()
            ),
            None => eprintln!(
                "SKIPPED (Podman rows): NFVI_PODMAN_SOCKET={} does not answer",
                PathBuf::from(&socket).display()
            ),
        },
    }
    out
}

/// A sleeper's process and address on the default bridge.
struct Started {
    pid: i64,
    ip: Option<Ipv4Addr>,
}

async fn start(docker: &Docker, name: &str, network: &str) -> Started {
    let mut labels = nfvi_suite_docker::clean::labels();
    labels.insert("io.nfvi-verify.test".into(), "observe".into());
    docker
        .create_container(
            Some(CreateContainerOptions {
                name: Some(name.to_owned()),
                ..Default::default()
            }),
            ContainerCreateBody {
                image: Some(IMAGE.to_owned()),
                cmd: Some(vec!["/bin/sleep".into(), "120".into()]),
                labels: Some(labels),
                host_config: Some(HostConfig {
                    network_mode: Some(network.to_owned()),
                    ..Default::default()
                }),
                ..Default::default()
            },
        )
        .await
        .unwrap_or_else(|e| panic!("creating {name}: {e}"));
    docker
        .start_container(name, None)
        .await
        .unwrap_or_else(|e| panic!("starting {name}: {e}"));
    let info = docker.inspect_container(name, None).await.unwrap();
    let networks: Vec<(String, String)> = info
        .network_settings
        .and_then(|s| s.networks)
        .unwrap_or_default()
        .into_iter()
        .map(|(k, e)| (k, e.ip_address.unwrap_or_default()))
        .collect();
    Started {
        pid: info.state.and_then(|s| s.pid).unwrap_or(0),
        ip: endpoint_address(&networks, network).map(|(_, ip)| ip),
    }
}

async fn remove(docker: &Docker, names: &[String]) {
    for n in names {
        let _ = docker
            .remove_container(
                n,
                Some(RemoveContainerOptions {
                    force: true,
                    ..Default::default()
                }),
            )
            .await;
    }
}

/// Runs `body` with two sleepers on the default bridge of each engine, and removes them
/// whatever happens (a panic in `body` is re-raised after).
fn with_pair<F, Fut>(test: &str, body: F)
where
    F: Fn(&'static str, Docker, Started, Started, Vec<String>) -> Fut
        + Send
        + Sync
        + Copy
        + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let rt = runtime();
    rt.block_on(async move {
        for (engine, docker) in engines().await {
            let names: Vec<String> = ["a", "b"]
                .iter()
                .map(|s| format!("nfv-{}-{test}-{s}", std::process::id()))
                .collect();
            let d = docker.clone();
            let n = names.clone();
            let run = tokio::spawn(async move {
                let a = start(&d, &n[0], "bridge").await;
                let b = start(&d, &n[1], "bridge").await;
                body(engine, d, a, b, n).await;
            })
            .await;
            remove(&docker, &names).await;
            if let Err(e) = run {
                eprintln!("failed against {engine}");
                std::panic::resume_unwind(e.into_panic());
            }
        }
    });
}

#[test]
fn a_probe_from_a_containers_namespace_sees_its_peer_whatever_its_capabilities() {
    with_pair("reach", |engine, _, a, b, _| async move {
        let to = b.ip.expect("b has an address on the default bridge");
        let p = probe::echo(probe::netns_of(a.pid), to, EchoPlan::default()).await;
        let e = p.clone().unwrap_or_else(|e| panic!("{engine}: {e}"));
        assert!(e.answered(), "{engine}: {}", e.summary());
        assert_eq!(Some(e.source), a.ip, "{engine}: sent from a's own address");
        assert_eq!(judge_reach("a -> b", &p).status, Status::Passed);
    });
}

#[test]
fn without_an_address_the_probe_is_an_error_and_no_negative_check_passes() {
    with_pair("noaddr", |engine, _, a, b, _| async move {
        let to = b.ip.expect("b has an address");
        let dropped = probe::drop_addresses(probe::netns_of(a.pid)).await.unwrap();
        assert!(dropped >= 1, "{engine}: a had an address to drop");
        let control = probe::echo(probe::netns_of(a.pid), to, EchoPlan::default()).await;
        assert!(
            matches!(
                control,
                Err(ProbeError::NoRoute { .. } | ProbeError::NoAddress { .. })
            ),
            "{engine}: {control:?}"
        );
        let target = Ipv4Addr::new(198, 18, 255, 77);
        let p = probe::echo(probe::netns_of(a.pid), target, EchoPlan::default()).await;
        assert!(p.is_err(), "{engine}: {p:?}");
        // The judge both isolation checks use: nothing observed is an error, never a pass.
        let o = judge_unreachable("a -> peer b", &control, "a -> other network", &p);
        assert_eq!(o.status, Status::Error, "{engine}: {}", o.message);
        assert_eq!(judge_reach("a -> b", &control).status, Status::Error);
    });
}

#[test]
fn a_silent_control_makes_the_negative_judge_an_error() {
    with_pair("silent", |engine, _, a, b, _| async move {
        let own = a.ip.expect("a has an address");
        // An address of a's subnet that nobody holds, so that the control is silent. A fixed
        // address is not enough: tests run beside each other, and Podman once gave .250 to
        // another test's container (CI, 2026-11-30). Candidates below a's (allocators that go
        // on from the last address leave those alone; one that takes the lowest free goes
        // there first, hence the second probe): an address silent to both probes is used.
        let mut silent = None;
        for k in 2..60u32 {
            let host = (u32::from(own) & 0xff).wrapping_sub(k) & 0xff;
            if host < 2 || host == 255 {
                continue;
            }
            let candidate = Ipv4Addr::from(u32::from(own) & 0xffff_ff00 | host);
            if Some(candidate) == b.ip {
                continue;
            }
            let control = probe::echo(probe::netns_of(a.pid), candidate, EchoPlan::default()).await;
            let c = control.clone().unwrap_or_else(|e| panic!("{engine}: {e}"));
            if c.answered() {
                eprintln!(
                    "{engine}: {candidate} is held ({}); trying another",
                    c.summary()
                );
                continue;
            }
            let p = probe::echo(probe::netns_of(a.pid), candidate, EchoPlan::default()).await;
            if p.as_ref().is_ok_and(|e| e.answered()) {
                eprintln!("{engine}: {candidate} was taken between the probes; trying another");
                continue;
            }
            silent = Some((control, p));
            break;
        }
        let (control, p) = silent.expect("an address of a's subnet nobody holds");
        let o = judge_unreachable("a -> nobody", &control, "a -> nobody", &p);
        assert_eq!(o.status, Status::Error, "{engine}: {}", o.message);
        assert!(o.message.contains("could not observe"), "{}", o.message);
    });
}

#[test]
fn a_container_whose_namespace_is_gone_is_an_error() {
    with_pair("gone", |engine, docker, a, b, names| async move {
        docker
            .remove_container(
                &names[0],
                Some(RemoveContainerOptions {
                    force: true,
                    ..Default::default()
                }),
            )
            .await
            .unwrap();
        // The process is gone once the engine has removed the container.
        for _ in 0..50 {
            if !probe::netns_of(a.pid).exists() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let r = probe::echo(probe::netns_of(a.pid), b.ip.unwrap(), EchoPlan::default()).await;
        assert!(
            matches!(r, Err(ProbeError::Enter { .. })),
            "{engine}: {r:?}"
        );
        let o = judge_unreachable("a -> b", &r, "a -> c", &r);
        assert_eq!(o.status, Status::Error);
    });
}

/// Without an engine: a namespace with only loopback has no route to a lab address, and the
/// probe says so instead of reporting silence.
#[test]
fn a_namespace_without_a_route_is_an_error_not_unreachable() {
    if !require("root (namespaces)", nix::unistd::geteuid().is_root()) {
        return;
    }
    let name = format!("nfvdo{}", std::process::id());
    let ns = nfvi_net::NetnsGuard::create(&name).unwrap();
    let path = ns.netns().path().to_owned();
    let r = runtime().block_on(probe::echo(
        path,
        Ipv4Addr::new(198, 18, 255, 77),
        EchoPlan::default(),
    ));
    ns.delete().unwrap();
    assert!(matches!(r, Err(ProbeError::NoRoute { .. })), "{r:?}");
}
