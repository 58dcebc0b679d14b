//! The acceleration checks of the k8s area (k8s.devices.sriov-plugin, k8s.devices.plugins,
//! k8s.network.accelerated-cni) against a scripted API server (no cluster, and no SR-IOV
//! device, can run on these machines): a network-intensive cluster with the SR-IOV network
//! device plugin's VF pools and an `sriov` attachment, the same without them, without
//! Multus, and a basic cluster, where they do what the hugepages check does. They run in
//! `--suite rc2`, whose mandatory requirements they cover.

mod common;
mod scripted_k8s;

use std::collections::BTreeMap;
use std::path::Path;

use common::{nfvi, run_to, text, write_file};
use scripted_k8s::{Grants, Server, Spec, TOKEN, access, kubeconfig};

const CHECKS: [&str; 3] = [
    "k8s.devices.sriov-plugin",
    "k8s.devices.plugins",
    "k8s.network.accelerated-cni",
];
const HUGEPAGES: &str = "k8s.nodes.hugepages";
const NI: &str = "profile = \"network-intensive\"\n";
const BASIC: &str = "profile = \"basic\"\n";

/// (outcome, skip kind, effective severity, message) by check ID.
type Outcomes = BTreeMap<String, (String, String, String, String)>;

/// Runs the three checks and the hugepages one against a scripted cluster as `change`
/// makes it, with `target` (TOML); returns the exit code, the outcomes and the server.
fn run(change: impl FnOnce(&mut Spec), target: &str) -> (i32, Outcomes, Server) {
    let mut spec = Spec::conformant(33);
    change(&mut spec);
    let server = Server::start(spec);
    let dir = tempfile::tempdir().unwrap();
    let kc = kubeconfig(dir.path(), server.port, TOKEN);
    let (code, r) = run_in(dir.path(), &kc, target);
    let o = r["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                text(c, "id").to_owned(),
                (
                    text(c, "outcome").to_owned(),
                    c["skip_kind"].as_str().unwrap_or("").to_owned(),
                    text(c, "effective_severity").to_owned(),
                    text(c, "message").to_owned(),
                ),
            )
        })
        .collect();
    (code, o, server)
}

fn run_in(dir: &Path, kc: &Path, target: &str) -> (i32, serde_json::Value) {
    let t = write_file(dir, "t.toml", target);
    let mut cmd = nfvi();
    cmd.env_remove("KUBECONFIG")
        .args(["run", "--suite", "rc2", "--kubeconfig"])
        .arg(kc)
        .arg("--target")
        .arg(&t);
    for f in CHECKS.iter().chain([&HUGEPAGES]) {
        cmd.args(["--filter", f]);
    }
    run_to(&mut cmd, &dir.join("run"))
}

fn expect(o: &Outcomes, id: &str, outcome: &str, needles: &[&str]) {
    let (got, _, _, message) = &o[id];
    assert_eq!(got, outcome, "{id}: {message}");
    for n in needles {
        assert!(message.contains(n), "{id}: `{n}` not in: {message}");
    }
}

#[test]
fn a_network_intensive_cluster_with_sriov_passes() {
    let (code, o, server) = run(|_| {}, NI);
    assert_eq!(o.len(), 4, "{o:?}");
    expect(
        &o,
        "k8s.devices.sriov-plugin",
        "passed",
        &[
            "3 network-intensive worker(s) advertise SR-IOV VFs: worker-0 intel.com/intel_sriov_dpdk=4, intel.com/intel_sriov_netdevice=8",
            "device plugin: kube-system/kube-sriov-device-plugin-amd64 (3/3 ready)",
        ],
    );
    expect(
        &o,
        "k8s.devices.plugins",
        "passed",
        &["on all 3 network-intensive worker(s), so the DevicePlugins feature gate is on there"],
    );
    expect(
        &o,
        "k8s.network.accelerated-cni",
        "passed",
        &[
            "1 NetworkAttachmentDefinition(s) use an accelerated CNI plugin: cnf/sriov-net (sriov (SR-IOV VF))",
        ],
    );
    for id in CHECKS {
        assert_eq!(
            o[id].2, "must",
            "{id} decides on a network-intensive target"
        );
    }
    assert_eq!(code, 0, "{o:?}");
    // Every request they made is one the deploy file's ClusterRole grants.
    let grants = Grants::load();
    let calls: Vec<String> = server.requests();
    assert!(
        calls
            .iter()
            .any(|r| r.starts_with("GET /apis/k8s.cni.cncf.io/v1/network-attachment-definitions")),
        "{calls:?}"
    );
    for r in &calls {
        assert!(
            grants.allows(&access(r)),
            "the ClusterRole does not grant {r}"
        );
    }
}

#[test]
fn without_sriov_each_check_fails_naming_the_reason() {
    let (code, o, _server) = run(|s| s.sriov = false, NI);
    expect(
        &o,
        "k8s.devices.sriov-plugin",
        "failed",
        &[
            "advertise no SR-IOV VF resource matching kubernetes.sriov_resources (intel.com/*sriov*",
            "worker-0 (extended resources: none), worker-1 (extended resources: none), worker-2",
            "device plugin: no DaemonSet labelled app=sriovdp",
        ],
    );
    expect(
        &o,
        "k8s.devices.plugins",
        "failed",
        &[
            "no device plugin registered an extended resource (FPGA, SR-IOV or another accelerator) on: worker-0 (kubelet v1.33.4: DevicePlugins is locked on)",
        ],
    );
    expect(
        &o,
        "k8s.network.accelerated-cni",
        "failed",
        &[
            "none of the 1 NetworkAttachmentDefinition(s) uses an SR-IOV, DPDK or VPP CNI plugin",
            "types seen: macvlan, tuning",
        ],
    );
    assert_eq!(code, 1);
}

#[test]
fn an_operator_names_its_own_vf_pools() {
    // The scripted pools are intel.com/intel_sriov_*: patterns that miss them fail, and the
    // failure lists what the workers do advertise.
    let target = format!("{NI}[kubernetes]\nsriov_resources = [\"example.com/vf-*\"]\n");
    let (_, o, _server) = run(|_| {}, &target);
    expect(
        &o,
        "k8s.devices.sriov-plugin",
        "failed",
        &[
            "worker-0 (extended resources: intel.com/intel_sriov_dpdk=4, intel.com/intel_sriov_netdevice=8)",
        ],
    );
    let target = format!("{NI}[kubernetes]\nsriov_resources = [\"intel.com/intel_sriov_dpdk\"]\n");
    let (_, o, _server) = run(|_| {}, &target);
    expect(
        &o,
        "k8s.devices.sriov-plugin",
        "passed",
        &["intel.com/intel_sriov_dpdk=4"],
    );
}

#[test]
fn without_multus_the_cni_check_fails_saying_so() {
    let (_, o, _server) = run(|s| s.multus = false, NI);
    expect(
        &o,
        "k8s.network.accelerated-cni",
        "failed",
        &[
            "the NetworkAttachmentDefinition API (k8s.cni.cncf.io/v1) is not served (404): Multus or its CRD is not installed",
        ],
    );
    // The device plugin's resources do not depend on Multus.
    expect(&o, "k8s.devices.sriov-plugin", "passed", &[]);
}

#[test]
fn on_a_basic_cluster_they_do_what_the_hugepages_check_does() {
    let (code, o, server) = run(
        |s| {
            s.profile_labels = false;
            s.sriov = false;
            s.hugepages = false;
        },
        BASIC,
    );
    let huge = &o[HUGEPAGES];
    assert_eq!(
        (huge.0.as_str(), huge.1.as_str()),
        ("skipped", "not-applicable"),
        "{huge:?}"
    );
    for id in CHECKS {
        let (outcome, kind, effective, message) = &o[id];
        assert_eq!(
            (outcome.as_str(), kind.as_str(), effective.as_str()),
            (huge.0.as_str(), huge.1.as_str(), huge.2.as_str()),
            "{id}: {message}"
        );
        assert!(
            message.starts_with("no worker is labelled anuket.io/profile/network-intensive and the target's profile is `basic`"),
            "{id}: {message}"
        );
    }
    // Nothing failed (not 1), and nothing was verified either: conformance by omission is
    // not conformance, so the run is incomplete (3), as with the hugepages check alone.
    assert_eq!(code, 3, "{o:?}");
    // Not applicable after looking: the nodes were read.
    assert!(
        server
            .requests()
            .iter()
            .any(|r| r.starts_with("GET /api/v1/nodes"))
    );
}

#[test]
fn without_a_kubeconfig_they_are_skipped_as_the_other_k8s_checks() {
    let dir = tempfile::tempdir().unwrap();
    let t = write_file(dir.path(), "t.toml", NI);
    let mut cmd = nfvi();
    cmd.env_remove("KUBECONFIG")
        .env("HOME", dir.path())
        .args(["run", "--suite", "rc2", "--target"])
        .arg(&t);
    for f in CHECKS.iter().chain([&HUGEPAGES]) {
        cmd.args(["--filter", f]);
    }
    let (_, r) = run_to(&mut cmd, &dir.path().join("run"));
    let huge = common::check(&r, HUGEPAGES);
    for id in CHECKS {
        let c = common::check(&r, id);
        assert_eq!(c["outcome"], "skipped", "{id}");
        assert_eq!(c["skip_kind"], huge["skip_kind"], "{id}");
        assert!(
            text(c, "message").contains("no kubeconfig given"),
            "{id}: {c}"
        );
    }
}
