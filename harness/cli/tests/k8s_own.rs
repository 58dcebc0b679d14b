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
    // whereabouts names its IPPool after network_name: the run's owner, for `clean`.
    let pool = cfg["ipam"]["network_name"].as_str().unwrap();
    let pid = pool.rsplit_once("-p").unwrap().1.split('-').next().unwrap();
    assert!(
        pool.starts_with("nfvi-verify-multus-") && pid.parse::<u32>().is_ok_and(|p| p > 0),
        "{pool}"
    );
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
    // Slow failover, no Multus, no known network plugin (nor the SR-IOV device plugin, which
    // would count as a network solution managed through the API).
    let mut spec = Spec::conformant(33);
    spec.lb_failover_gap_ms = 6_000;
    spec.cni = None;
    spec.multus = false;
    spec.sriov = false;
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

/// How the test's stand-in for the ingress controller's HTTP side answers.
#[derive(Clone, Copy, PartialEq)]
enum Controller {
    /// The backend's answer (the token the check gave its responder pod) for the Ingress's
    /// host only, 404 for any other: a controller that routes by host.
    Routes,
    /// The backend's answer for any host.
    IgnoresHost,
}

/// A tiny HTTP server on loopback standing in for the ingress controller's data path (no
/// cluster runs here): it reads what the check asked the scripted API server for (the
/// Ingress's host, the responder pod's token) and answers as `how` says. Returns its port.
fn controller(server: &Server, how: Controller) -> u16 {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let posted = server.posted.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            let mut host = String::new();
            loop {
                let mut l = String::new();
                if reader.read_line(&mut l).unwrap_or(0) == 0 || l.trim().is_empty() {
                    break;
                }
                if let Some(h) = l.strip_prefix("Host:") {
                    host = h.trim().to_owned();
                }
            }
            let posted = posted.lock().unwrap().clone();
            let find = |suffix: &str, name: &str| {
                posted
                    .iter()
                    .filter(|(p, v)| p.ends_with(suffix) && v["metadata"]["name"] == name)
                    .map(|(_, v)| v.clone())
                    .next_back()
                    .unwrap_or_default()
            };
            let ingress_host =
                find("/ingresses", "nfvi-verify-ingress")["spec"]["rules"][0]["host"]
                    .as_str()
                    .unwrap_or("")
                    .to_owned();
            let token = find("/pods", "nfvi-verify-ingress")["spec"]["containers"][0]["args"][0]
                .as_str()
                .unwrap_or("")
                .to_owned();
            let (status, body) = if how == Controller::IgnoresHost || host == ingress_host {
                ("200 OK", token)
            } else {
                ("404 Not Found", "default backend - 404".to_owned())
            };
            let mut out = conn;
            let _ = write!(
                out,
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    port
}

/// Runs k8s.ingress.controller with its HTTP port at `port`; its outcome and message.
fn run_ingress(server: &Server, dir: &Path, port: u16) -> (String, String) {
    let kc = kubeconfig(dir, server.port, TOKEN);
    let target = format!(
        "[kubernetes]\nprobe_image = \"registry.example/nfvi-verify:test\"\nlb_allow_loopback = true\ningress_port = {port}\ningress_timeout_secs = 3\n"
    );
    let t = write_file(dir, "t.toml", &target);
    let (_, r) = run_to(
        nfvi()
            .env_remove("KUBECONFIG")
            .args([
                "run",
                "--suite",
                "k8s",
                "--filter",
                "k8s.ingress.controller",
            ])
            .arg("--kubeconfig")
            .arg(&kc)
            .arg("--target")
            .arg(&t),
        &dir.join("run"),
    );
    let c = &r["checks"][0];
    assert_eq!(c["id"], "k8s.ingress.controller", "{c}");
    (
        c["outcome"].as_str().unwrap().to_owned(),
        text(c, "message").to_owned(),
    )
}

/// Every namespace the run created was deleted; how many there were.
fn namespaces_deleted(server: &Server) -> usize {
    let req = server.requests();
    let created: BTreeSet<String> = server
        .posted("/api/v1/namespaces")
        .iter()
        .map(|n| n["metadata"]["name"].as_str().unwrap().to_owned())
        .collect();
    for ns in &created {
        assert!(ns.starts_with("nfvi-verify-net-ingress-"), "{ns}");
        assert!(
            req.iter()
                .any(|r| r.starts_with(&format!("DELETE /api/v1/namespaces/{ns}"))),
            "{ns} not deleted: {req:?}"
        );
    }
    created.len()
}

#[test]
fn an_ingress_routed_by_host_to_its_service_passes_and_everything_is_deleted() {
    let server = Server::start(Spec::conformant(33));
    let port = controller(&server, Controller::Routes);
    let dir = tempfile::tempdir().unwrap();
    let (outcome, m) = run_ingress(&server, dir.path(), port);
    assert_eq!(outcome, "passed", "{m}");
    assert!(
        m.contains(".nfvi-verify.invalid to the Ingress's Service (answered with its token) and another host elsewhere (HTTP 404 without it)"),
        "{m}"
    );
    // The default IngressClass, a host of this run, path / to the Service.
    let ing = &server.posted("/ingresses")[0];
    assert_eq!(ing["spec"]["ingressClassName"], "nginx");
    let host = ing["spec"]["rules"][0]["host"].as_str().unwrap();
    assert!(host.ends_with(".nfvi-verify.invalid"), "{host}");
    assert_eq!(
        ing["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"],
        "nfvi-verify-ingress"
    );
    assert_eq!(namespaces_deleted(&server), 1);
    let grants = Grants::load();
    for a in server.requests().iter().map(|r| access(r)) {
        assert!(grants.allows(&a), "the ClusterRole does not grant {a:?}");
    }
    // Two runs never share a host or a token.
    let server2 = Server::start(Spec::conformant(33));
    let port2 = controller(&server2, Controller::Routes);
    let dir2 = tempfile::tempdir().unwrap();
    assert_eq!(run_ingress(&server2, dir2.path(), port2).0, "passed");
    let token = |s: &Server| {
        s.posted("/pods")[0]["spec"]["containers"][0]["args"][0]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert_ne!(token(&server), token(&server2));
    assert_ne!(
        server2.posted("/ingresses")[0]["spec"]["rules"][0]["host"],
        ing["spec"]["rules"][0]["host"]
    );
}

#[test]
fn an_ingress_not_served_or_not_routed_by_host_fails_and_an_unsent_request_is_an_error() {
    // No IngressClass: no controller; nothing is created.
    let mut spec = Spec::conformant(33);
    spec.ingress_classes.clear();
    let server = Server::start(spec);
    let dir = tempfile::tempdir().unwrap();
    let (outcome, m) = run_ingress(&server, dir.path(), 1);
    assert_eq!(outcome, "failed", "{m}");
    assert!(m.contains("no ingress controller is installed"), "{m}");
    assert_eq!(namespaces_deleted(&server), 0);
    // Two defaults and no kubernetes.ingress_class: which one to test is for the operator.
    let mut spec = Spec::conformant(33);
    spec.ingress_classes = vec![("a".into(), true), ("b".into(), true)];
    let server = Server::start(spec);
    let dir = tempfile::tempdir().unwrap();
    let (outcome, m) = run_ingress(&server, dir.path(), 1);
    assert_eq!(outcome, "error", "{m}");
    assert!(m.contains("set kubernetes.ingress_class"), "{m}");
    // The controller never publishes an address.
    let mut spec = Spec::conformant(33);
    spec.ingress_ip = None;
    let server = Server::start(spec);
    let dir = tempfile::tempdir().unwrap();
    let (outcome, m) = run_ingress(&server, dir.path(), 1);
    assert_eq!(outcome, "failed", "{m}");
    assert!(
        m.contains("the controller never admitted the Ingress")
            && m.contains("within 3 s (kubernetes.ingress_timeout_secs)"),
        "{m}"
    );
    assert_eq!(namespaces_deleted(&server), 1);
    // A controller that answers with the backend for any host.
    let server = Server::start(Spec::conformant(33));
    let port = controller(&server, Controller::IgnoresHost);
    let dir = tempfile::tempdir().unwrap();
    let (outcome, m) = run_ingress(&server, dir.path(), port);
    assert_eq!(outcome, "failed", "{m}");
    assert!(m.contains("it does not route by host"), "{m}");
    assert_eq!(namespaces_deleted(&server), 1);
    // Nothing listens at the address: the request is not sent, an error.
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = free.local_addr().unwrap().port();
    drop(free);
    let server = Server::start(Spec::conformant(33));
    let dir = tempfile::tempdir().unwrap();
    let (outcome, m) = run_ingress(&server, dir.path(), port);
    assert_eq!(outcome, "error", "{m}");
    assert!(
        m.contains("was not sent (could not connect to 127.0.0.1:")
            && m.contains("nothing is judged"),
        "{m}"
    );
    assert_eq!(namespaces_deleted(&server), 1);
}

/// kubernetes.multus_range outside network.lab_cidr is bad input: refused before anything
/// runs (exit 2), naming both keys, with or without a cluster to run on.
#[test]
fn a_multus_range_outside_the_lab_range_is_refused_before_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let t = write_file(
        dir.path(),
        "t.toml",
        "[network]\nlab_cidr = \"198.18.0.0/16\"\n[kubernetes]\nmultus_range = \"198.19.60.0/24\"\n",
    );
    let out = nfvi()
        .env_remove("KUBECONFIG")
        .args([
            "run",
            "--suite",
            "k8s",
            "--filter",
            "k8s.multus.*",
            "--target",
        ])
        .arg(&t)
        .arg("--out")
        .arg(dir.path().join("run"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(
            "kubernetes.multus_range 198.19.60.0/24 is not inside network.lab_cidr 198.18.0.0/16"
        ),
        "{stderr}"
    );
    assert!(!dir.path().join("run").join("results.json").exists());
    // Inside the lab range: the run goes on (the check skips without a kubeconfig).
    let t = write_file(
        dir.path(),
        "t.toml",
        "[network]\nlab_cidr = \"198.18.0.0/16\"\n[kubernetes]\nmultus_range = \"198.18.60.0/24\"\n",
    );
    let out = nfvi()
        .env_remove("KUBECONFIG")
        .env("HOME", dir.path())
        .args([
            "run",
            "--suite",
            "k8s",
            "--filter",
            "k8s.multus.*",
            "--target",
        ])
        .arg(&t)
        .arg("--out")
        .arg(dir.path().join("run2"))
        .output()
        .unwrap();
    assert_ne!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
