//! `k8s.network-policy.enforced` against the scripted API server. No cluster and no pod
//! network run here: the server stands in for both. It keeps the NetworkPolicies the check
//! creates and, when a client probe pod is created, decides from them (pod selectors, the
//! ingress rule's peers and ports) whether the responder would answer it; `Spec::network_policy`
//! says whether the network solution enforces them at all (scripted_k8s/netpol.rs). The
//! client pods' phases and logs are what the prober prints in each case; the check's own
//! part (the namespace, the pods, the policy, the settle time, reading the logs, the judge,
//! the cleanup) is real.

mod common;
mod scripted_k8s;

use std::collections::BTreeSet;
use std::path::Path;

use common::{check, nfvi, run_to, text, write_file};
use scripted_k8s::{Access, Grants, NetPol, Server, Spec, TOKEN, access, kubeconfig};

const ID: &str = "k8s.network-policy.enforced";
const PROBES: &str = "[kubernetes]\nprobe_image = \"registry.example/nfvi-verify:test\"\n";

/// Runs the check against `server` with `target`; returns the exit code and its result.
fn run(server: &Server, dir: &Path, target: &str) -> (i32, serde_json::Value) {
    let kc = kubeconfig(dir, server.port, TOKEN);
    let t = write_file(dir, "t.toml", target);
    let (code, r) = run_to(
        nfvi()
            .env_remove("KUBECONFIG")
            .args(["run", "--suite", "k8s", "--filter", ID, "--kubeconfig"])
            .arg(&kc)
            .arg("--target")
            .arg(&t),
        &dir.join("run"),
    );
    (code, check(&r, ID).clone())
}

fn outcome(spec: Spec) -> (Server, serde_json::Value) {
    let server = Server::start(spec);
    let dir = tempfile::tempdir().unwrap();
    let (_, c) = run(&server, dir.path(), PROBES);
    (server, c)
}

fn expect(c: &serde_json::Value, outcome: &str, needle: &str) {
    let m = text(c, "message");
    assert_eq!(c["outcome"], outcome, "{m}");
    assert!(m.contains(needle), "`{needle}` not in: {m}");
}

/// The pods created in the check's namespace, by name, in order.
fn pods_created(server: &Server) -> Vec<String> {
    server
        .posted("/pods")
        .iter()
        .filter(|p| p["metadata"]["labels"]["role"].is_string())
        .map(|p| p["metadata"]["name"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn an_enforcing_cluster_passes_and_everything_is_deleted() {
    let (server, c) = outcome(Spec::conformant(33));
    expect(&c, "passed", "NetworkPolicy is enforced");
    expect(&c, "passed", "role=denied client's probes go unanswered");
    assert_eq!(
        c["requirements"],
        serde_json::json!(["ra2.ntw.014", "infra.net.cfg.004"])
    );
    // A responder, then a client of each role before and after the policy.
    assert_eq!(
        pods_created(&server),
        [
            "responder",
            "client-allowed-before",
            "client-denied-before",
            "client-allowed-after",
            "client-denied-after"
        ]
    );
    let clients = server.posted("/pods");
    let args = &clients[1]["spec"]["containers"][0]["args"];
    assert_eq!(args[1], "ping");
    assert_eq!(args[2], "10.244.1.5:7777", "the responder's pod IP");
    // The policy: the responder, ingress from role=allowed only, UDP.
    let policies = server.posted("/networkpolicies");
    assert_eq!(policies.len(), 1);
    let p = &policies[0]["spec"];
    assert_eq!(p["podSelector"]["matchLabels"]["role"], "responder");
    assert_eq!(
        p["ingress"][0]["from"][0]["podSelector"]["matchLabels"]["role"],
        "allowed"
    );
    assert_eq!(p["ingress"][0]["ports"][0]["protocol"], "UDP");
    // The policy came after the first round of clients and before the second.
    let req = server.requests();
    let at = |needle: &str| req.iter().position(|r| r.contains(needle)).unwrap();
    assert!(at("/pods/client-denied-before/log") < at("/networkpolicies"));
    assert!(at("/networkpolicies") < at("client-allowed-after"));
    // The namespace is deleted, through the cleanup registered for it.
    let ns = server.posted("/api/v1/namespaces")[0]["metadata"]["name"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(ns.starts_with("nfvi-verify-net-policy-"), "{ns}");
    assert!(
        req.iter()
            .any(|r| r.starts_with(&format!("DELETE /api/v1/namespaces/{ns}"))),
        "namespace not deleted: {req:?}"
    );
    assert_eq!(c["cleanup"][0]["action"], format!("delete namespace {ns}"));
    assert!(c["cleanup"][0].get("error").is_none_or(|e| e.is_null()));
    assert_eq!(c["evidence"]["properties"]["namespace"], ns.as_str());
    // The ClusterRole grants every call the check made.
    let grants = Grants::load();
    let calls: BTreeSet<Access> = req.iter().map(|r| access(r)).collect();
    assert!(calls.iter().any(|a| a.resource == "networkpolicies"));
    for a in &calls {
        assert!(grants.allows(a), "the ClusterRole does not grant {a:?}");
    }
}

#[test]
fn a_pod_network_that_ignores_network_policies_fails() {
    let mut spec = Spec::conformant(33);
    spec.network_policy = NetPol::Ignored;
    let (server, c) = outcome(spec);
    expect(
        &c,
        "failed",
        "NetworkPolicy is not enforced (the pod network ignores it)",
    );
    expect(
        &c,
        "failed",
        "role=denied client still got 20 of 20 probes answered",
    );
    assert!(
        server
            .requests()
            .iter()
            .any(|r| r.starts_with("DELETE /api/v1/namespaces/nfvi-verify-net-policy-"))
    );
}

#[test]
fn probes_not_sent_or_failed_controls_are_errors_never_a_verdict() {
    // The denied client cannot send after the policy: its silence would look like
    // enforcement, but nothing was observed.
    let mut spec = Spec::conformant(33);
    spec.network_policy = NetPol::DeniedNotSent;
    let (_, c) = outcome(spec);
    expect(
        &c,
        "error",
        "the denied client's probes after the NetworkPolicy could not be sent",
    );
    expect(&c, "error", "Operation not permitted");
    // Nothing answers even before a policy: the positive control fails, and no policy is
    // created.
    let mut spec = Spec::conformant(33);
    spec.network_policy = NetPol::NoPath;
    let (server, c) = outcome(spec);
    expect(&c, "error", "positive control of the probe path");
    assert!(server.posted("/networkpolicies").is_empty());
    assert_eq!(pods_created(&server).len(), 3, "no second round");
    // The policy silences the allowed client too: the control after the policy fails.
    let mut spec = Spec::conformant(33);
    spec.network_policy = NetPol::BlocksAll;
    let (_, c) = outcome(spec);
    expect(
        &c,
        "error",
        "the allowed client got no answer either (the positive control after the policy)",
    );
    // A client that fails without the prober's report (the main server's failing client).
    let mut spec = Spec::conformant(33);
    spec.probe_succeeds = false;
    let (_, c) = outcome(spec);
    expect(&c, "error", "did not report");
}

#[test]
fn no_network_policy_api_fails_and_no_probe_image_skips() {
    let mut spec = Spec::conformant(33);
    spec.network_policies = false;
    let (server, c) = outcome(spec);
    expect(&c, "failed", "networkpolicies is not served");
    assert!(server.posted("/pods").is_empty(), "nothing created");
    let server = Server::start(Spec::conformant(33));
    let dir = tempfile::tempdir().unwrap();
    let (_, c) = run(&server, dir.path(), "");
    expect(&c, "skipped", "kubernetes.probe_image is not set");
}
