//! `k8s.pods.user-namespaces` against the scripted API server (no cluster runs here): the
//! server stands in for the API, the kubelet and the runtime, printing the uid_map a pod
//! would see (`Spec::user_namespaces`, scripted_k8s/userns.rs). What the check creates, how
//! it reads the pods and judges them, and its cleanup are real; the maps are scripted.

mod common;
mod scripted_k8s;

use std::collections::BTreeSet;

use common::{assert_contains, check, nfvi, run_to, text, write_file};
use scripted_k8s::{Access, Grants, Server, Spec, TOKEN, UserNs, access, kubeconfig};
use serde_json::{Value, json};

const ID: &str = "k8s.pods.user-namespaces";

/// Runs the check against a 1.33 cluster that treats user namespaces as `userns`; returns
/// the server, the outcome and the message.
fn run(userns: UserNs, probe_image: bool) -> (Server, String, String) {
    let mut spec = Spec::conformant(33);
    spec.user_namespaces = userns;
    let server = Server::start(spec);
    let dir = tempfile::tempdir().unwrap();
    let kc = kubeconfig(dir.path(), server.port, TOKEN);
    let target = if probe_image {
        "[kubernetes]\nprobe_image = \"registry.example/nfvi-verify:test\"\n"
    } else {
        ""
    };
    let t = write_file(dir.path(), "t.toml", target);
    let (_, r) = run_to(
        nfvi()
            .env_remove("KUBECONFIG")
            .args(["run", "--suite", "k8s", "--filter", ID, "--kubeconfig"])
            .arg(&kc)
            .arg("--target")
            .arg(&t),
        &dir.path().join("run"),
    );
    let c = check(&r, ID);
    let (outcome, message) = (
        c["outcome"].as_str().unwrap().to_owned(),
        text(c, "message").to_owned(),
    );
    (server, outcome, message)
}

/// The namespaces the check created: each one `nfvi-verify-userns-*`, each deleted, and
/// every call granted by the ClusterRole.
fn created_deleted_and_granted(server: &Server) -> Vec<String> {
    let req = server.requests();
    let created: BTreeSet<String> = server
        .posted("/api/v1/namespaces")
        .iter()
        .map(|n| n["metadata"]["name"].as_str().unwrap().to_owned())
        .collect();
    for ns in &created {
        assert!(ns.starts_with("nfvi-verify-userns-"), "{ns}");
        assert!(
            req.iter()
                .any(|r| r.starts_with(&format!("DELETE /api/v1/namespaces/{ns}"))),
            "{ns} not deleted: {req:?}"
        );
    }
    let grants = Grants::load();
    let calls: BTreeSet<Access> = req.iter().map(|r| access(r)).collect();
    for a in &calls {
        assert!(grants.allows(a), "the ClusterRole does not grant {a:?}");
    }
    created.into_iter().collect()
}

#[test]
fn a_cluster_with_user_namespaces_passes_and_everything_is_deleted() {
    let (server, outcome, message) = run(UserNs::Supported, true);
    assert_eq!(outcome, "passed", "{message}");
    assert_contains(
        &message,
        "container root is host ID 1879113728, 65536 IDs mapped (uid_map 0 1879113728 65536)",
    );
    // Two pods on one node, the control first; only the second asks for a user namespace,
    // both print their uid_map.
    let pods: Vec<Value> = server.posted("/pods");
    assert_eq!(pods.len(), 2, "{pods:?}");
    assert_eq!(pods[0]["spec"].get("hostUsers"), None);
    assert_eq!(pods[1]["spec"]["hostUsers"], json!(false));
    assert_eq!(pods[0]["spec"]["nodeName"], pods[1]["spec"]["nodeName"]);
    for p in &pods {
        let c = &p["spec"]["containers"][0];
        assert_eq!(c["command"], json!(["cat"]));
        assert_eq!(c["args"], json!(["/proc/self/uid_map"]));
        assert_eq!(p["spec"]["restartPolicy"], "Never");
    }
    assert_eq!(created_deleted_and_granted(&server).len(), 1);
    // The logs of both pods were read.
    let logs = server
        .requests()
        .iter()
        .filter(|r| {
            r.starts_with("GET /api/v1/namespaces/nfvi-verify-userns-") && r.contains("/log")
        })
        .count();
    assert_eq!(logs, 2);
}

#[test]
fn a_cluster_that_ignores_host_users_false_fails() {
    // The node runs the pod with its own IDs although the field was kept.
    let (server, outcome, message) = run(UserNs::Ignored, true);
    assert_eq!(outcome, "failed", "{message}");
    assert_contains(
        &message,
        "hostUsers: false was ignored: the pod sees the node's user IDs (uid_map 0 0 4294967295)",
    );
    assert!(!message.contains("feature gate"), "{message}");
    assert_eq!(created_deleted_and_granted(&server).len(), 1);
    // The API server dropped the field: the gate is named.
    let (server, outcome, message) = run(UserNs::Dropped, true);
    assert_eq!(outcome, "failed", "{message}");
    assert_contains(&message, "UserNamespacesSupport feature gate is off");
    assert_eq!(created_deleted_and_granted(&server).len(), 1);
}

#[test]
fn a_pod_refused_or_not_started_fails_with_the_reason_given() {
    let (server, outcome, message) = run(UserNs::Refused, true);
    assert_eq!(outcome, "failed", "{message}");
    assert_contains(
        &message,
        "the API server refused a pod with spec.hostUsers: false (403): pods \"uid-map-userns\" is forbidden: admission webhook \"userns-policy.example.com\" denied the request",
    );
    assert_eq!(created_deleted_and_granted(&server).len(), 1);
    // Admitted, but the runtime lacks support: the kubelet's Warning event is the reason,
    // and the check does not wait out the start deadline for it.
    let t0 = std::time::Instant::now();
    let (server, outcome, message) = run(UserNs::RuntimeLacks, true);
    assert_eq!(outcome, "failed", "{message}");
    assert_contains(
        &message,
        "was admitted but did not run, while the same image ran on the same node with default settings: FailedCreatePodSandBox: Failed to create pod sandbox: rpc error: code = Unknown desc = the container runtime does not support user namespaces",
    );
    assert!(t0.elapsed().as_secs() < 60, "took {:?}", t0.elapsed());
    assert_eq!(created_deleted_and_granted(&server).len(), 1);
}

#[test]
fn without_a_probe_image_the_check_is_skipped_before_it_creates_anything() {
    let (server, outcome, message) = run(UserNs::Supported, false);
    assert_eq!(outcome, "skipped", "{message}");
    assert_contains(&message, "kubernetes.probe_image is not set");
    assert!(created_deleted_and_granted(&server).is_empty());
}

#[test]
fn clean_removes_the_namespace_of_a_dead_run() {
    let dead = {
        let mut c = std::process::Command::new("true").spawn().unwrap();
        c.wait().unwrap();
        c.id()
    };
    let owned = |pid: u32| {
        json!({
            "app.kubernetes.io/managed-by": "nfvi-verify",
            "io.nfvi-verify.owner": pid.to_string(),
            "io.nfvi-verify.owner-host": nfvi_harness::leftover::owner_host(),
        })
    };
    let ns = |name: &str, pid: u32| json!({"kind": "Namespace", "metadata": {"name": name, "labels": owned(pid)}});
    let mut spec = Spec::conformant(33);
    spec.leftovers = vec![
        ns("nfvi-verify-userns-dead", dead),
        ns("nfvi-verify-userns-live", std::process::id()),
    ];
    let server = Server::start(spec);
    let dir = tempfile::tempdir().unwrap();
    let kc = kubeconfig(dir.path(), server.port, TOKEN);
    let target = write_file(
        dir.path(),
        "t.toml",
        format!("[kubernetes]\nkubeconfig = \"{}\"\n", kc.display()),
    );
    let out = nfvi()
        .env_remove("KUBECONFIG")
        .args(["clean", "--dry-run", "--target"])
        .arg(&target)
        .assert()
        .success();
    let said = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert_contains(
        &said,
        &format!("would remove namespace nfvi-verify-userns-dead (of process {dead})"),
    );
    assert!(!said.contains("nfvi-verify-userns-live"), "{said}");
}
