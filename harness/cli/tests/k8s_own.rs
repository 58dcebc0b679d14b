//! The k8s area's own network checks against the scripted API server: the network solution
//! as API objects, the address pools, a Multus secondary network with cluster-wide IPAM, and
//! LoadBalancer reachability and failover. No cluster runs here: the server stands in for the
//! API, Multus and whereabouts (it hands out addresses from the attachment's range) and the
//! load balancer (it gives Services the address `Spec::lb_ip`); the LoadBalancer data path is
//! a real UDP echo process on 127.0.0.1 (`Server::lb_port`) standing in for the backend pods,
//! silenced for a while when a backend is deleted: the probes from this machine, the
//! outage measurement and the judgement are real, the cluster's data path is not.

mod common;
mod scripted_k8s;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use common::{nfvi, run_to, text, write_file};
use scripted_k8s::{Access, Grants, Server, Spec, TOKEN, access, kubeconfig};

const OWN: &[&str] = &[
    "--filter",
    "k8s.network.api-managed",
    "--filter",
    "k8s.network.ip-pools",
    "--filter",
    "k8s.multus.*",
    "--filter",
    "k8s.lb.*",
];

/// Runs the own network checks with `extra` in the `[kubernetes]` table (the probe image is
/// set, and the loopback address of the scripted load balancer may be probed); returns the
/// exit code and each check's outcome and message.
fn run(server: &Server, dir: &Path, extra: &str) -> (i32, BTreeMap<String, (String, String)>) {
    let kc = kubeconfig(dir, server.port, TOKEN);
    let target = format!(
        "[kubernetes]\nprobe_image = \"registry.example/nfvi-verify:test\"\nlb_port = {}\nlb_timeout_secs = 10\n{}{extra}",
        server.lb_port,
        if extra.contains("lb_allow_loopback") {
            ""
        } else {
            "lb_allow_loopback = true\n"
        }
    );
    let t = write_file(dir, "t.toml", &target);
    let out = dir.join("run");
    let (code, r) = run_to(
        nfvi()
            .env_remove("KUBECONFIG")
            .args(["run", "--suite", "k8s"])
            .args(OWN)
            .arg("--kubeconfig")
            .arg(&kc)
            .arg("--target")
            .arg(&t),
        &out,
    );
    let o = r["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["id"].as_str().unwrap().to_owned(),
                (
                    c["outcome"].as_str().unwrap().to_owned(),
                    text(c, "message").to_owned(),
                ),
            )
        })
        .collect();
    (code, o)
}

fn expect(o: &BTreeMap<String, (String, String)>, id: &str, outcome: &str, needle: &str) {
    let (got, message) = &o[id];
    assert_eq!(got, outcome, "{id}: {message}");
    assert!(
        message.contains(needle),
        "{id}: `{needle}` not in: {message}"
    );
}

#[test]
fn a_conformant_cluster_passes_the_own_network_checks_and_everything_is_deleted() {
    let server = Server::start(Spec::conformant(33));
    let dir = tempfile::tempdir().unwrap();
    let (_, o) = run(&server, dir.path(), "multus_range = \"198.18.60.0/24\"\n");
    assert_eq!(o.len(), 5, "{o:?}");
    expect(
        &o,
        "k8s.network.api-managed",
        "passed",
        "Calico (DaemonSet kube-system/calico-node)",
    );
    expect(
        &o,
        "k8s.network.ip-pools",
        "passed",
        "Service range (ServiceCIDRs) are disjoint",
    );
    expect(
        &o,
        "k8s.multus.secondary-network",
        "passed",
        "cluster-wide range 198.18.60.0/24 (198.18.60.7 and 198.18.60.5, distinct)",
    );
    expect(
        &o,
        "k8s.lb.external",
        "passed",
        "answers from outside the cluster",
    );
    // The stand-in backends are silent 0.3 s after each deletion.
    expect(&o, "k8s.lb.failover", "passed", "failed over in 0.3");
    // A filtered run leaves the suite's other requirements untested, so the exit code says
    // nothing here; the outcomes do.
    let req = server.requests();
    // The attachment asked for whereabouts over the configured range, the pods for it.
    let nads = server.posted("/network-attachment-definitions");
    assert_eq!(nads.len(), 1);
    let cfg: serde_json::Value =
        serde_json::from_str(nads[0]["spec"]["config"].as_str().unwrap()).unwrap();
    assert_eq!(cfg["ipam"]["type"], "whereabouts");
    assert_eq!(cfg["ipam"]["range"], "198.18.60.0/24");
    let svcs = server.posted("/services");
    assert_eq!(svcs.len(), 2, "one Service per LoadBalancer check");
    assert_eq!(svcs[0]["spec"]["type"], "LoadBalancer");
    // Both backends deleted and one replaced, in the failover check.
    assert_eq!(
        req.iter()
            .filter(
                |r| r.starts_with("DELETE /api/v1/namespaces/nfvi-verify-net-lb-")
                    && r.contains("/pods/")
            )
            .count(),
        2,
        "{req:?}"
    );
    // Every namespace created is deleted.
    let created: BTreeSet<String> = server
        .posted("/api/v1/namespaces")
        .iter()
        .map(|n| n["metadata"]["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(created.len(), 3, "{created:?}");
    for ns in &created {
        assert!(
            req.iter()
                .any(|r| r.starts_with(&format!("DELETE /api/v1/namespaces/{ns}"))),
            "{ns} not deleted"
        );
    }
    // The ClusterRole grants every call.
    let grants = Grants::load();
    let calls: BTreeSet<Access> = req.iter().map(|r| access(r)).collect();
    for a in &calls {
        assert!(grants.allows(a), "the ClusterRole does not grant {a:?}");
    }
}

#[test]
fn each_own_network_check_fails_or_skips_naming_why() {
    // Slow failover, no Multus, no known network plugin.
    let mut spec = Spec::conformant(33);
    spec.lb_failover_gap_ms = 6_000;
    spec.cni = None;
    spec.multus = false;
    let server = Server::start(spec);
    let dir = tempfile::tempdir().unwrap();
    let (_, o) = run(&server, dir.path(), "");
    // Without Multus and a known plugin: the question stays open, an error naming the DaemonSets.
    expect(
        &o,
        "k8s.network.api-managed",
        "error",
        "kube-system/kube-proxy",
    );
    expect(
        &o,
        "k8s.multus.secondary-network",
        "skipped",
        "network-attachment-definitions.k8s.cni.cncf.io CRD is not installed",
    );
    expect(&o, "k8s.lb.external", "passed", "answers");
    expect(&o, "k8s.lb.failover", "failed", "took 6.");
    // No load balancer: RA2 requires LoadBalancer Services to be served, so a failure
    // naming it (never a skip that leaves the run conformant).
    let mut spec = Spec::conformant(31);
    spec.lb_ip = None;
    let server = Server::start(spec);
    let dir = tempfile::tempdir().unwrap();
    let (_, o) = run(&server, dir.path(), "");
    for id in ["k8s.lb.external", "k8s.lb.failover"] {
        expect(
            &o,
            id,
            "failed",
            "no load balancer assigned an external address to the LoadBalancer Service",
        );
        expect(
            &o,
            id,
            "failed",
            "within 10 s (kubernetes.lb_timeout_secs): nothing serves LoadBalancer Services",
        );
    }
    // 1.31 serves no ServiceCIDR: the kubernetes Service's ClusterIP stands for the range.
    expect(
        &o,
        "k8s.network.ip-pools",
        "passed",
        "the kubernetes Service's ClusterIP",
    );
    // The default range is the last /24 of the lab range: the scripted whereabouts hands
    // addresses from it.
    expect(
        &o,
        "k8s.multus.secondary-network",
        "passed",
        "198.19.255.0/24",
    );
}

#[test]
fn a_load_balancer_address_outside_the_lab_range_is_never_probed() {
    let mut spec = Spec::conformant(33);
    spec.lb_ip = Some("203.0.113.7".into());
    let server = Server::start(spec);
    let dir = tempfile::tempdir().unwrap();
    let (_, o) = run(&server, dir.path(), "");
    for id in ["k8s.lb.external", "k8s.lb.failover"] {
        expect(&o, id, "error", "203.0.113.7 lies outside network.lab_cidr");
    }
    // An API server reporting 127.0.0.1 (with a live echo behind it): refused unless the
    // target allows loopback, which only tests against a scripted API server do; else any
    // local echo would pass the check.
    let server = Server::start(Spec::conformant(33));
    let dir = tempfile::tempdir().unwrap();
    let (_, o) = run(&server, dir.path(), "lb_allow_loopback = false\n");
    for id in ["k8s.lb.external", "k8s.lb.failover"] {
        expect(
            &o,
            id,
            "error",
            "the load balancer's address 127.0.0.1 is loopback",
        );
    }
    // An address with nothing behind it (a free port on loopback): no answer is a failure,
    // after the prober's own loopback control passed.
    let mut spec = Spec::conformant(33);
    spec.lb_ip = Some("127.0.0.1".into());
    spec.lb_backends = false;
    let server = Server::start(spec);
    let dir = tempfile::tempdir().unwrap();
    // A port nobody listens on, on loopback.
    let free = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = free.local_addr().unwrap().port();
    drop(free);
    let kc = kubeconfig(dir.path(), server.port, TOKEN);
    let t = write_file(
        dir.path(),
        "t.toml",
        format!(
            "[kubernetes]\nprobe_image = \"r/x:1\"\nlb_port = {port}\nlb_allow_loopback = true\n"
        ),
    );
    let (_, r) = run_to(
        nfvi()
            .env_remove("KUBECONFIG")
            .args([
                "run",
                "--suite",
                "k8s",
                "--filter",
                "k8s.lb.external",
                "--kubeconfig",
            ])
            .arg(&kc)
            .arg("--target")
            .arg(&t),
        &dir.path().join("run2"),
    );
    let c = &r["checks"][0];
    assert_eq!(c["outcome"], "failed", "{c}");
    assert!(text(c, "message").contains("did not answer any of"), "{c}");
}
