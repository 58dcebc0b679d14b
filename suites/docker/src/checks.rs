//! The Docker networking checks, following libnetwork's container network model (sandbox,
//! endpoint, network; drivers bridge, host, null, macvlan), with probe containers.

use std::sync::Arc;
use std::time::Duration;

use nfvi_harness::{
    Check, CheckContext, CheckError, CheckMeta, CheckResult, Need, Severity, declare,
};
use nfvi_reference_model::Area;

/// What every check that starts probe containers changes.
const CONTAINERS: &str = "starts probe containers running `sleep` from the probe image (prefix nfv-, label io.nfvi-verify.probe) and probes from the harness's own thread inside their network namespaces (/proc/PID/ns/net: ICMP echo over a raw socket, netlink reads); nothing else runs in the containers";

/// What the user-defined network checks add.
const NETWORKS: &str = "; creates user-defined bridge networks (prefix nfv-) on lab subnets of network.lab_cidr (isolation also creates and removes a third one mid-check)";

/// What the macvlan checks add.
const MACVLAN: &str = "; creates a veth pair (prefix nfvdk) in the host namespace (parent-unreachable also gives its host end a /32 lab address), a namespace (prefix nfv-, suffix -gw) holding the gateway on the veth's far end, and a macvlan network (prefix nfv-) on the veth";

/// How they undo it.
const CLEANUP: &str =
    "removes every container, network, veth and namespace it created, whatever the outcome";

/// Which body a check runs: the checks share the client, the probe and the error wording.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Kind {
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
    // Entering a container's namespace (setns) and a raw ICMP socket need root; so do the
    // macvlan checks' veth and namespace.
    let in_netns = || [Need::Root];
    let macvlan_needs = || [Need::Root, Need::Tool("ip".into())];
    let effects = |extra: &str| format!("{CONTAINERS}{extra}");
    [
        declare(
            meta(
                "docker.daemon.version",
                "The container engine answers and runs an OCI runtime",
                Must,
                &["ra2.crt.001"],
            ),
            |cx| Box::pin(run(Kind::Version, cx)),
        ),
        declare(
            meta(
                "docker.networks.defaults",
                "The default networks bridge, host and none exist with drivers bridge, host and null (on Podman, host and none as network modes)",
                Info,
                &[],
            )
            .side_effects(
                "on an engine that lists no host or none network (Podman), starts a probe container (prefix nfv-, label io.nfvi-verify.probe) with each such network mode to verify it; as root, reads the container's namespace from the harness's own thread",
                CLEANUP,
            ),
            |cx| Box::pin(run(Kind::Defaults, cx)),
        ),
        declare(
            meta(
                "docker.none.loopback-only",
                "A container on `none` has a namespace of its own with only loopback",
                Info,
                &[],
            )
            .side_effects(CONTAINERS, CLEANUP)
            .needs(in_netns()),
            |cx| Box::pin(run(Kind::NoneLoopback, cx)),
        ),
        declare(
            meta(
                "docker.host.same-interfaces",
                "A container on `host` is in the host's namespace and sees exactly its interfaces",
                Info,
                &[],
            )
            .side_effects(CONTAINERS, CLEANUP)
            .needs(in_netns()),
            |cx| Box::pin(run(Kind::HostInterfaces, cx)),
        ),
        declare(
            meta(
                "docker.bridge.reach",
                "Two containers on the default bridge reach each other",
                Info,
                &[],
            )
            .side_effects(CONTAINERS, CLEANUP)
            .needs(in_netns()),
            |cx| Box::pin(run(Kind::DefaultBridge, cx)),
        ),
        declare(
            meta(
                "docker.user-bridge.east-west",
                "Containers on one user-defined bridge network reach each other",
                Info,
                &[],
            )
            .side_effects(effects(NETWORKS), CLEANUP)
            .needs(in_netns()),
            |cx| Box::pin(run(Kind::UserBridgeEastWest, cx)),
        ),
        declare(
            meta(
                "docker.user-bridge.isolation",
                "Containers on different user-defined bridge networks do not reach each other (with a positive control on the same network)",
                Info,
                &[],
            )
            .side_effects(effects(NETWORKS), CLEANUP)
            .needs(in_netns()),
            |cx| Box::pin(run(Kind::UserBridgeIsolation, cx)),
        ),
        declare(
            meta(
                "docker.macvlan.reach",
                "macvlan network: addresses from its subnet; containers reach each other and the gateway",
                Info,
                &[],
            )
            .side_effects(effects(MACVLAN), CLEANUP)
            .needs(macvlan_needs()),
            |cx| Box::pin(run(Kind::MacvlanReach, cx)),
        ),
        declare(
            meta(
                "docker.macvlan.parent-unreachable",
                "macvlan network: containers cannot reach the parent's own address (with the gateway as positive control)",
                Info,
                &[],
            )
            .side_effects(effects(MACVLAN), CLEANUP)
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
    crate::bodies::run_kind(kind, cx).await.map_err(|e| {
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
