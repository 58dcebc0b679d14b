//! The assertion catalog (IDs, severity, spec section, plugins) and the checks built from it:
//! one check per assertion and plugin, with the ID `cni.<plugin>.<assertion>`.

use std::panic::Location;
use std::sync::Arc;
use std::time::Duration;

use nfvi_harness::{
    BoxFuture, Check, CheckContext, CheckMeta, CheckResult, Need, Outcome, Severity, Target,
    declare,
};
use nfvi_reference_model::Area;

use crate::assertions;
use crate::lab::Lab;

type RunFn = for<'a> fn(&'a Lab<'a>, &'a str) -> BoxFuture<'a, Outcome>;

/// One catalog assertion.
pub(crate) struct Assertion {
    pub(crate) id: &'static str,
    pub(crate) severity: Severity,
    pub(crate) spec: &'static str,
    pub(crate) title: &'static str,
    pub(crate) plugins: &'static [&'static str],
    /// Behaviour every plugin built on the reference skeleton library shares.
    pub(crate) skel: bool,
    /// The requirements a check of this assertion gives evidence for.
    pub(crate) covers: &'static [&'static str],
    /// How long a check of this assertion may take.
    pub(crate) cost: Cost,
    /// The catalog row, reported as where its checks are declared.
    at: &'static Location<'static>,
    run: RunFn,
}

/// Where it is called from: in the catalog, the row of an assertion.
#[track_caller]
const fn row() -> &'static Location<'static> {
    Location::caller()
}

/// How expensive an assertion is to run, which sets its deadline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Cost {
    /// One or a few plugin lifecycles: 60 s.
    Light,
    /// Dozens of concurrent lifecycles: 120 s.
    Heavy,
}

impl Cost {
    fn timeout(self) -> Duration {
        match self {
            Cost::Light => Duration::from_secs(60),
            Cost::Heavy => Duration::from_secs(120),
        }
    }
}

/// The requirements every non-informational CNI assertion traces to: the CNI contract RA1
/// and RA2 rely on (inf.ntw.08, ra2.ntw.002, ra2.ntw.009).
const CNI: &[&str] = &["inf.ntw.08", "ra2.ntw.002", "ra2.ntw.009"];
/// Informational assertions trace to no requirement.
const NONE: &[&str] = &[];

const ALL16: &[&str] = &[
    "bandwidth",
    "bridge",
    "dhcp",
    "firewall",
    "host-device",
    "host-local",
    "ipvlan",
    "loopback",
    "macvlan",
    "portmap",
    "ptp",
    "sbr",
    "static",
    "tuning",
    "vlan",
    "vrf",
];
const IFACE: &[&str] = &["bridge", "macvlan", "ptp"];
/// Interface plugins whose lifecycle is checked too: kernel permitting (ipvlan, vlan), with a
/// harness-made device (host-device), or skipped with the reason (dhcp needs a server).
const IFACE_ALL: &[&str] = &[
    "bridge",
    "macvlan",
    "ptp",
    "ipvlan",
    "vlan",
    "host-device",
    "dhcp",
];
const ERR_PLUGINS: &[&str] = &[
    "bridge",
    "macvlan",
    "ptp",
    "loopback",
    "host-local",
    "static",
    "tuning",
    "portmap",
    "firewall",
    "bandwidth",
];

macro_rules! assertion {
    ($id:literal, $sev:ident, $spec:literal, $title:literal, $plugins:expr, $skel:literal, $covers:expr, $cost:ident, $f:ident) => {
        Assertion {
            id: $id,
            severity: Severity::$sev,
            spec: $spec,
            title: $title,
            plugins: $plugins,
            skel: $skel,
            covers: $covers,
            cost: Cost::$cost,
            at: row(),
            run: {
                fn run<'a>(lab: &'a Lab<'a>, plugin: &'a str) -> BoxFuture<'a, Outcome> {
                    Box::pin(assertions::$f(lab, plugin))
                }
                run
            },
        }
    };
}

#[rustfmt::skip]
pub(crate) static CATALOG: &[Assertion] = &[
    assertion!("CNI-ENV-001", Should, "§2 Parameters; §5 error code 4", "Invocation without CNI_COMMAND is rejected with code 4", &["bridge"], true, CNI, Light, env_001),
    assertion!("CNI-ENV-002", Must, "§2 CNI operations; §5 error code 4", "Unknown CNI_COMMAND fails with code 4 naming the command", &["bridge"], true, CNI, Light, env_002),
    assertion!("CNI-ENV-003", Must, "§2 ADD required environment; §5 code 4", "ADD without CNI_CONTAINERID fails with code 4; nothing created", &["bridge"], true, CNI, Light, env_003),
    assertion!("CNI-ENV-004", Must, "§2 ADD required environment; §5 code 4", "ADD without CNI_NETNS fails with code 4", &["bridge"], true, CNI, Light, env_004),
    assertion!("CNI-ENV-005", Must, "§2 ADD required environment; §5 code 4", "ADD without CNI_IFNAME fails with code 4", &["bridge"], true, CNI, Light, env_005),
    assertion!("CNI-ENV-006", Must, "§2 ADD/DEL/CHECK optional CNI_PATH", "A plugin that delegates nothing accepts ADD/DEL without CNI_PATH", &["loopback", "bridge"], true, CNI, Light, env_006),
    assertion!("CNI-ENV-007", Must, "§2 DEL: CNI_NETNS optional", "DEL without CNI_NETNS succeeds and releases the address", &["bridge"], false, CNI, Light, env_007),
    assertion!("CNI-ENV-008", Should, "§2 Parameters (CNI_CONTAINERID format)", "Invalid container IDs are rejected; valid exotic IDs accepted", &["bridge"], true, CNI, Light, env_008),
    assertion!("CNI-ENV-009", Must, "§2 Parameters: CNI_IFNAME", "Unusable interface names fail without residue", &["bridge", "macvlan"], false, CNI, Light, env_009),
    assertion!("CNI-ENV-010", Info, "§2 CNI_ARGS; CONVENTIONS", "Unknown CNI_ARGS keys rejected unless IgnoreUnknown=1", &["bridge"], true, NONE, Light, env_010),
    assertion!("CNI-ENV-011", Should, "CONVENTIONS CNI_ARGS IP", "CNI_ARGS IP=<addr> requests a specific address", &["bridge"], false, CNI, Light, env_011),
    assertion!("CNI-CONF-001", Should, "§5 error code 6", "Malformed JSON is rejected with code 6", &["bridge", "host-local", "macvlan", "ptp"], true, CNI, Light, conf_001),
    assertion!("CNI-CONF-002", Should, "§1 name required; §5 code 7", "A config without name is rejected with code 7", &["bridge"], true, CNI, Light, conf_002),
    assertion!("CNI-CONF-003", Should, "§1 name grammar; §5 code 7", "Network names with invalid characters are rejected with code 7", &["bridge"], true, CNI, Light, conf_003),
    assertion!("CNI-CONF-004", Info, "§1 plugins may define additional fields", "Unknown vendor keys are tolerated", &["bridge"], false, NONE, Light, conf_004),
    assertion!("CNI-CONF-005", Info, "§5 Version; libcni decoder", "A config without cniVersion is treated as 0.1.0", &["bridge"], true, NONE, Light, conf_005),
    assertion!("CNI-CONF-006", Should, "§5 error code 6", "Empty stdin for ADD fails with a decode error", &["bridge"], true, CNI, Light, conf_006),
    assertion!("CNI-VER-001", Must, "§2 VERSION; §5 VERSION success", "VERSION exits 0 with {cniVersion, supportedVersions}", ALL16, true, CNI, Light, ver_001),
    assertion!("CNI-VER-002", Must, "§5 VERSION success: cniVersion is the input's", "VERSION echoes the input cniVersion", ALL16, true, CNI, Light, ver_002),
    assertion!("CNI-VER-003", Must, "§2 VERSION: only CNI_COMMAND required", "VERSION works with only CNI_COMMAND and empty stdin", ALL16, true, CNI, Light, ver_003),
    assertion!("CNI-VER-004", Must, "§1 Version considerations; §5 code 1", "ADD at an unsupported cniVersion fails with code 1, no side effects", &["bridge", "macvlan", "ptp", "host-local"], true, CNI, Light, ver_004),
    assertion!("CNI-VER-005", Must, "§5 ADD success cniVersion; per-version result schema", "Results carry the request's version and match that version's schema", IFACE, false, CNI, Light, ver_005),
    assertion!("CNI-VER-006", Must, "0.4.0: CHECK introduced in 0.4.0", "CHECK below 0.4.0 fails with code 1", &["bridge"], true, CNI, Light, ver_006),
    assertion!("CNI-VER-007", Must, "§1 Version considerations (plugins support subsets)", "A version missing from supportedVersions is rejected with code 1", &["firewall", "bandwidth", "vrf"], true, CNI, Light, ver_007),
    assertion!("CNI-VER-008", Info, "1.1.0 §2 GC / STATUS", "GC and STATUS answer consistently with supportedVersions", ALL16, true, NONE, Light, ver_008),
    assertion!("CNI-ADD-001", Must, "§2 ADD; §5 ADD success", "ADD prints exactly one JSON result valid for the version", IFACE_ALL, false, CNI, Light, add_001),
    assertion!("CNI-ADD-002", Must, "§5 ADD success interfaces/ips/routes", "The netns matches the result: interface, UP, MAC, sandbox, addresses, routes", IFACE_ALL, false, CNI, Light, add_002),
    assertion!("CNI-ADD-003", Must, "§5 interfaces.sandbox; bridge plugin", "Host side: bridge and veth without sandbox, veth enslaved and peered, gateway on the bridge", &["bridge"], false, CNI, Light, add_003),
    assertion!("CNI-ADD-004", Must, "§2 ADD: existing CNI_IFNAME must be an error", "ADD onto an existing CNI_IFNAME fails and leaves it untouched", IFACE, false, CNI, Light, add_004),
    assertion!("CNI-ADD-005", Must, "§4 delegated plugins: same environment, complete config", "The IPAM plugin is found via CNI_PATH and gets identical CNI_* variables and the complete configuration", &["bridge"], false, CNI, Light, add_005),
    assertion!("CNI-ADD-006", Should, "§4 on a failed delegate: error returned, DEL run", "A failing IPAM ADD: code propagated, stderr forwarded, IPAM DEL called, no residue", IFACE, false, CNI, Light, add_006),
    assertion!("CNI-ADD-007", Should, "CONVENTIONS capability mac; §3 runtimeConfig", "runtimeConfig.mac sets and reports the container MAC", &["bridge", "macvlan"], false, CNI, Light, add_007),
    assertion!("CNI-ADD-008", Must, "§2 ADD; §3 same container, different ifname", "Two attachments of one container coexist; DEL of one leaves the other", &["bridge"], false, CNI, Light, add_008),
    assertion!("CNI-ADD-009", Should, "bridge plugin mtu", "bridge mtu applies to the container interface and the host veth", &["bridge"], false, CNI, Light, add_009),
    assertion!("CNI-ADD-010", Must, "§2 ADD (netns must be usable)", "ADD into a missing netns fails without host residue", &["bridge", "macvlan", "ptp", "loopback"], false, CNI, Light, add_010),
    assertion!("CNI-ADD-011", Must, "macvlan plugin; §5 ADD success", "macvlan interface of the configured master and mode, matching the result", &["macvlan"], false, CNI, Light, add_011),
    assertion!("CNI-ADD-012", Must, "ptp plugin; §5 ADD success", "ptp: veth pair and a host /32 route to the container", &["ptp"], false, CNI, Light, add_012),
    assertion!("CNI-ADD-013", Must, "loopback plugin; §5 ADD success", "loopback brings lo up and reports it with 127.0.0.1/8", &["loopback"], false, CNI, Light, add_013),
    assertion!("CNI-ADD-014", Info, "§5 ADD success dns; 0.4.0 ips and dns as IPAM returned", "bridge copies plugin-level dns; IPAM dns reaches the result", &["bridge"], false, NONE, Light, add_014),
    assertion!("CNI-ADD-015", Should, "bridge ipMasq; §1 well-known key ipMasq", "ipMasq installs a per-container masquerade chain, removed on DEL", &["bridge"], false, CNI, Light, add_015),
    assertion!("CNI-ADD-016", Should, "§4 delegated stderr goes to the caller's stderr", "The delegate's stderr is forwarded on success and on failure", &["bridge"], false, CNI, Light, add_016),
    assertion!("CNI-IPAM-001", Must, "§5 delegated plugins: abbreviated result", "IPAM plugins return the abbreviated result", &["host-local", "static"], false, CNI, Light, ipam_001),
    assertion!("CNI-IPAM-002", Must, "host-local; §2 DEL", "host-local persists a reservation with container ID and ifname and removes it on DEL", &["host-local"], false, CNI, Light, ipam_002),
    assertion!("CNI-IPAM-003", Should, "CONVENTIONS ips capability and args.cni.ips", "Requested IPs are honoured; an unsatisfiable request fails without leaking", &["host-local", "static"], false, CNI, Light, ipam_003),
    assertion!("CNI-IPAM-004", Must, "host-local; §5 Error", "Range exhaustion fails with a JSON error; releasing makes room again", &["host-local"], false, CNI, Light, ipam_004),
    assertion!("CNI-IPAM-005", Must, "§2 DEL: accept multiple DELs", "IPAM DEL is idempotent", &["host-local", "static"], false, CNI, Light, ipam_005),
    assertion!("CNI-IPAM-006", Must, "§3 Lifecycle: concurrent execution across containers", "40 concurrent ADDs get 40 distinct addresses; concurrent DELs release all", &["host-local"], false, CNI, Heavy, ipam_006),
    assertion!("CNI-IPAM-007", Should, "§2 CHECK: missing reservations are errors", "host-local CHECK passes while reserved, fails after release", &["host-local"], false, CNI, Light, ipam_007),
    assertion!("CNI-IPAM-008", Must, "§4 delegated plugins on DEL", "The main plugin's DEL releases the IPAM reservation", IFACE_ALL, false, CNI, Light, ipam_008),
    assertion!("CNI-IPAM-009", Info, "§2 ADD: no second ADD for the same attachment", "host-local refuses a second ADD for the same container and ifname", &["host-local"], false, NONE, Light, ipam_009),
    assertion!("CNI-DEL-001", Must, "§2 DEL", "DEL after ADD: exit 0, no output, interfaces gone, address released", IFACE_ALL, false, CNI, Light, del_001),
    assertion!("CNI-DEL-002", Must, "§2 DEL: accept multiple DEL calls", "Repeated DEL of the same attachment exits 0", &["bridge", "macvlan", "ptp", "loopback", "ipvlan", "vlan", "host-device"], false, CNI, Light, del_002),
    assertion!("CNI-DEL-003", Must, "§2 DEL: success when resources are missing", "DEL of a never-added attachment exits 0", ERR_PLUGINS, false, CNI, Light, del_003),
    assertion!("CNI-DEL-004", Should, "§2 DEL: success when the netns is gone", "DEL after the netns was deleted exits 0 and releases the address", &["bridge", "macvlan", "ptp", "loopback"], false, CNI, Light, del_004),
    assertion!("CNI-DEL-005", Should, "§2 DEL: best effort", "macvlan DEL succeeds after its master disappeared", &["macvlan"], false, CNI, Light, del_005),
    assertion!("CNI-DEL-006", Should, "1.1.0 §2 DEL: empty prevResult", "DEL without prevResult after a real ADD cleans up", IFACE, false, CNI, Light, del_006),
    assertion!("CNI-DEL-007", Info, "§2 DEL best effort", "DEL with CNI_NETNS pointing at a regular file", &["bridge", "macvlan"], false, NONE, Light, del_007),
    assertion!("CNI-DEL-008", Info, "§2 DEL output", "A successful DEL prints nothing", &["bridge", "macvlan", "ptp", "loopback"], false, NONE, Light, del_008),
    assertion!("CNI-DEL-009", Must, "§2 DEL: optional CNI_PATH", "DEL without CNI_PATH for a live attachment", &["bridge", "macvlan", "ptp", "loopback"], true, CNI, Light, del_009),
    assertion!("CNI-CHK-001", Must, "§2 CHECK", "CHECK right after ADD exits 0 with no output", &["bridge", "macvlan", "ptp", "loopback", "ipvlan", "vlan", "host-device"], false, CNI, Light, chk_001),
    assertion!("CNI-CHK-002", Must, "§2 CHECK: must consult prevResult", "CHECK without prevResult fails", IFACE, false, CNI, Light, chk_002),
    assertion!("CNI-CHK-003", Should, "§2 CHECK: missing address is an error", "CHECK fails after the container address is removed", IFACE, false, CNI, Light, chk_003),
    assertion!("CNI-CHK-004", Should, "§2 CHECK: missing route is an error", "CHECK fails after the default route is removed", IFACE, false, CNI, Light, chk_004),
    assertion!("CNI-CHK-005", Should, "§2 CHECK: missing interface is an error", "CHECK fails after the container interface is deleted", IFACE, false, CNI, Light, chk_005),
    assertion!("CNI-CHK-006", Should, "§2 CHECK: host-side resources", "bridge CHECK fails after the host veth leaves the bridge", &["bridge"], false, CNI, Light, chk_006),
    assertion!("CNI-CHK-007", Should, "§2 CHECK: delegated CHECK", "CHECK fails when the IPAM reservation is gone", IFACE, false, CNI, Light, chk_007),
    assertion!("CNI-CHK-008", Should, "§2 CHECK: MAC consistency", "CHECK fails when the container MAC no longer matches", IFACE, false, CNI, Light, chk_008),
    assertion!("CNI-CHK-009", Must, "§2 CHECK: any valid configuration", "CHECK after an L2-only ADD exits 0", &["bridge", "macvlan"], false, CNI, Light, chk_009),
    assertion!("CNI-CHK-011", Should, "§2 CHECK: same parameters as ADD", "CHECK with parameters not matching the attachment fails", &["bridge"], false, CNI, Light, chk_011),
    assertion!("CNI-CHK-010", Must, "§2 CHECK: later chained plugins may modify resources", "bridge CHECK accepts the final chain result in which tuning changed the MAC", &["bridge"], false, CNI, Light, chk_010),
    assertion!("CNI-CHAIN-001", Must, "§3 Adding an attachment; §5 prevResult with modifications", "5-plugin chain ADD: every step valid; the final result is prevResult plus the plugins' own changes", &["chain"], false, CNI, Light, chain_001),
    assertion!("CNI-CHAIN-002", Must, "§5 no changes: output equals prevResult", "Meta plugins that change nothing in the result echo prevResult", &["tuning", "portmap", "firewall", "bandwidth"], false, CNI, Light, chain_002),
    assertion!("CNI-CHAIN-003", Must, "CONVENTIONS mac capability; §5 result reflects changes", "tuning sets MAC and MTU, reports them, and DEL restores them", &["tuning"], false, CNI, Light, chain_003),
    assertion!("CNI-CHAIN-004", Should, "tuning sysctl; §2 ADD", "tuning sysctls apply inside the container netns only; non-net sysctls refused", &["tuning"], false, CNI, Light, chain_004),
    assertion!("CNI-CHAIN-005", Must, "CONVENTIONS portMappings; §2 DEL undoes changes", "portmap DNAT rules installed, checked, removed; second DEL ok", &["portmap"], false, CNI, Light, chain_005),
    assertion!("CNI-CHAIN-006", Should, "CONVENTIONS chained plugins", "Meta plugins run first fail cleanly or pass through", &["portmap", "tuning", "firewall", "bandwidth"], false, CNI, Light, chain_006),
    assertion!("CNI-CHAIN-007", Should, "firewall plugin; §2 CHECK/DEL", "firewall rules for the container installed, checked, removed; DEL twice ok", &["firewall"], false, CNI, Light, chain_007),
    assertion!("CNI-CHAIN-008", Should, "CONVENTIONS bandwidth; §5 host interfaces in the result", "bandwidth shapes with tbf and an ifb listed in the result; DEL removes the ifb", &["bandwidth"], false, CNI, Light, chain_008),
    assertion!("CNI-CHAIN-009", Must, "§3 Deleting (reverse order, cached result); §3 Checking", "Full chain CHECK passes and reverse DEL leaves the host exactly as before", &["chain"], false, CNI, Light, chain_009),
    assertion!("CNI-CHAIN-010", Must, "§5 prevResult across versions", "A 0.4.0 chain gets a 0.4.0-shaped result back", &["tuning", "portmap"], false, CNI, Light, chain_010),
    assertion!("CNI-CHAIN-011", Info, "§3 capabilities must not be set (plugin tolerance)", "A stray capabilities key and unknown runtimeConfig keys are tolerated", &["tuning", "portmap"], false, NONE, Light, chain_011),
    assertion!("CNI-CHAIN-012", Must, "§2 CHECK right after ADD", "tuning CHECK right after ADD with IFNAME and literal sysctl keys", &["tuning"], false, CNI, Light, chain_012),
    assertion!("CNI-CHAIN-013", Must, "§2 ADD: handle prevResult; §5 output prevResult with modifications", "Interface plugins second in a chain keep prevResult's entries", &["bridge", "macvlan", "ptp", "loopback"], false, CNI, Light, chain_013),
    assertion!("POD-MULTI-IF", Must, "RA2 ra2.ntw.003 / RM e.cap.004", "A pod sandbox gets the default interface plus 5 extra interfaces from bridge, macvlan and ptp networks", &["pod"], false, &["ra2.ntw.003", "e.cap.004"], Light, pod_multi_interface),
    assertion!("POD-DUAL-STACK", Must, "RA2 inf.ntw.04 / ra2.ntw.013", "A dual-stack attachment gets IPv4 and IPv6 configured with default routes", &["pod"], false, &["inf.ntw.04", "ra2.ntw.013"], Light, pod_dual_stack),
    assertion!("POD-NATLESS", Must, "RA2 ra2.ntw.011 / inf.ntw.14", "NAT-less egress on macvlan: a peer sees the pod's own source address", &["pod"], false, &["ra2.ntw.011", "inf.ntw.14"], Light, pod_natless_egress),
    assertion!("CNI-ERR-001", Must, "§2 Errors; §5 Error", "Every failure exits non-zero with a JSON error on stdout", ERR_PLUGINS, true, CNI, Light, err_001),
    assertion!("CNI-ERR-002", Should, "§5 Error: cniVersion, code, msg", "Error objects carry cniVersion, an integer code and msg", ERR_PLUGINS, true, CNI, Light, err_002),
    assertion!("CNI-ERR-003", Must, "§5 Error codes: 1-99 reserved", "Error codes are well-known with their meaning, or 100 and above", ERR_PLUGINS, true, CNI, Light, err_003),
    assertion!("CNI-ERR-004", Must, "§2 Overview: stdout carries the result", "stdout is empty or exactly one JSON document", ERR_PLUGINS, true, CNI, Light, err_004),
    assertion!("CNI-CONC-001", Must, "§3 Lifecycle: concurrency across containers", "16 concurrent ADDs and DELs of distinct containers", &["bridge", "macvlan"], false, CNI, Heavy, conc_001),
];

/// Every CNI check: one per catalog assertion and plugin it applies to.
pub fn checks() -> Vec<Arc<dyn Check>> {
    let mut out = Vec::new();
    for a in CATALOG {
        for plugin in a.plugins {
            let meta = CheckMeta::new(format!("cni.{plugin}.{}", a.id), Area::Cni, a.title)
                .declared_at(a.at)
                .subject(*plugin)
                .covers(a.severity, a.covers)
                .needs([Need::Root, Need::Tool("ip".into()), crate::area::plugins_need()])
                .side_effects(
                    "creates a private runtime network namespace (plugins run in it, so their bridges, veths, iptables rules and qdiscs stay there), fresh container namespaces, and a private IPAM directory under the temp dir; addresses from network.lab_cidr",
                    "deletes every namespace it created (which removes all plugin-made links, rules and qdiscs) and the private directory, whatever the outcome",
                )
                .timeout(a.cost.timeout());
            let check = declare(meta, move |cx| Box::pin(run(a, plugin, cx)))
                .applies_if(move |target| applicable(plugin, target));
            out.push(check.into_check());
        }
    }
    out
}

/// The plugins of the CHAIN fixture; the pseudo-plugin `chain` needs all of them.
pub(crate) const CHAIN: &[&str] = &["bridge", "tuning", "portmap", "firewall", "bandwidth"];

/// `chain` and `pod` name fixtures that use several plugins, not a plugin binary.
fn is_pseudo(plugin: &str) -> bool {
    matches!(plugin, "chain" | "pod")
}

/// The plugin binaries a check runs: its plugin, or every plugin of a pseudo-plugin fixture.
fn needed_plugins(plugin: &'static str) -> Vec<&'static str> {
    match plugin {
        "chain" => CHAIN.to_vec(),
        "pod" => vec!["bridge", "macvlan", "ptp", "loopback", "host-local"],
        _ => vec![plugin],
    }
}

fn plugin_exists(target: &Target, plugin: &'static str) -> bool {
    needed_plugins(plugin)
        .iter()
        .all(|p| target.config::<crate::CniConfig>().find(p).is_some())
}

/// Whether the plugins a check runs are selected (`cni.plugins`) and installed.
fn applicable(plugin: &'static str, target: &Target) -> Result<(), String> {
    let cni = target.config::<crate::CniConfig>();
    let needed = needed_plugins(plugin);
    let filtered: Vec<&&str> = needed
        .iter()
        .filter(|p| !cni.plugins.is_empty() && !cni.plugins.iter().any(|q| q == **p))
        .collect();
    if !filtered.is_empty() {
        return Err(format!(
            "plugin {} not in cni.plugins",
            filtered
                .iter()
                .map(|p| format!("`{p}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if !plugin_exists(target, plugin) {
        let dirs = cni.search_path();
        return Err(format!("plugin `{plugin}` is not installed in {dirs}"));
    }
    Ok(())
}

/// Runs one assertion for one plugin in a fresh lab, at the fixture version the plugin
/// supports (1.0.0 when it can, else the highest it lists).
async fn run(a: &'static Assertion, plugin: &'static str, cx: &CheckContext) -> CheckResult {
    let lab = Lab::new(cx, "1.0.0").await?;
    let probe = if is_pseudo(plugin) { "bridge" } else { plugin };
    let version = match assertions::supported_versions(&lab, probe).await {
        Ok(v) if v.iter().any(|s| s == "1.0.0") => "1.0.0".to_owned(),
        Ok(v) => v.last().cloned().unwrap_or_else(|| "1.0.0".to_owned()),
        Err(o) if a.id.starts_with("CNI-VER") => return Err(o.into()),
        Err(_) => "1.0.0".to_owned(),
    };
    let lab = lab.with_version(&version);
    let outcome = (a.run)(&lab, plugin).await;
    Ok(outcome
        .with_property("plugin", plugin)
        .with_property("assertion", a.id)
        .with_property("spec", a.spec)
        .with_property(
            "tier",
            if a.skel {
                "skel: behaviour shared by every plugin built on the CNI reference skeleton library"
            } else {
                "plugin"
            },
        )
        .with_property("negotiated cniVersion", version))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_check_reports_its_catalog_row_as_its_declaration() {
        let lines: std::collections::BTreeSet<u32> = checks()
            .iter()
            .map(|c| c.meta().declared_at)
            .inspect(|at| assert!(at.file().ends_with("catalog.rs"), "{at}"))
            .map(|at| at.line())
            .collect();
        assert_eq!(lines.len(), CATALOG.len(), "one line per row");
    }

    #[test]
    fn coverage_and_cost_are_columns() {
        let row = |id: &str| CATALOG.iter().find(|a| a.id == id).unwrap();
        assert_eq!(row("POD-NATLESS").covers, ["ra2.ntw.011", "inf.ntw.14"]);
        assert!(row("CNI-CONF-004").covers.is_empty(), "informational");
        assert_eq!(row("CNI-DEL-001").covers, CNI);
        assert_eq!(row("CNI-IPAM-006").cost, Cost::Heavy);
        assert_eq!(row("CNI-DEL-001").cost, Cost::Light);
    }
}
