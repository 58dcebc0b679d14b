//! A run over the nodes of a Kubernetes cluster: `run --k8s-node-agent` starts the node agent
//! as a DaemonSet through the API and reads each node's results from its pod's log. No API
//! server can run on these machines: the scripted one (scripted_k8s) stands in for it, for
//! the DaemonSet controller that makes a pod per node, and for the kubelets whose agents
//! write the scripted logs (agent event lines, as `nfvi-verify node` writes them).

mod common;
mod scripted_k8s;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{check, json_stdout, nfvi, run_to, text, write_file};
use nfvi_harness::Status;
use nfvi_harness::fleet::{AgentCheck, AgentEvent};
use scripted_k8s::{AgentPod, AgentState, Grants, Server, Spec, TOKEN, access, kubeconfig};
use serde_json::Value;

/// The host checks `--suite host` plans: they run on the nodes.
fn host_checks() -> Vec<String> {
    let plan = json_stdout(nfvi().args(["list", "--suite", "host", "--format", "json"]));
    plan["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_owned())
        .filter(|id| id.starts_with("host."))
        .collect()
}

fn finished(id: &str, status: Status, message: &str) -> String {
    AgentEvent::Finished(Box::new(AgentCheck {
        id: id.into(),
        status,
        skip_kind: None,
        message: message.into(),
        evidence: Default::default(),
        started_at: None,
        duration_secs: 0.05,
        cleanup: vec![],
    }))
    .to_line()
}

/// What an agent writes for `checks`, all passing on `node`, with its standard error (which
/// shares the pod's log) in between; `done` at the end unless `done` is false.
fn agent_log(node: &str, checks: &[String], done: bool) -> Vec<String> {
    let mut lines = vec![
        AgentEvent::Hello {
            version: env!("CARGO_PKG_VERSION").into(),
        }
        .to_line(),
        "2026-11-27T03:00:00Z  INFO nfvi_harness::session: run starting\n".to_owned(),
    ];
    for id in checks {
        lines.push(AgentEvent::Started { id: id.clone() }.to_line());
        lines.push(finished(id, Status::Passed, &format!("fine on {node}")));
    }
    if done {
        lines.push(
            AgentEvent::Done {
                cancelled: false,
                warnings: vec![],
            }
            .to_line(),
        );
    }
    lines
}

/// A scripted cluster of one control-plane node and one worker whose agents fare as
/// `agents` says (a node left out: its pod never starts).
fn cluster(
    agents: impl IntoIterator<Item = (&'static str, AgentPod)>,
    change: impl FnOnce(&mut Spec),
) -> (Server, tempfile::TempDir, PathBuf) {
    let mut spec = Spec::conformant(33);
    spec.control_planes = 1;
    spec.workers = 1;
    spec.agents = agents.into_iter().map(|(n, a)| (n.to_owned(), a)).collect();
    change(&mut spec);
    let server = Server::start(spec);
    let dir = tempfile::tempdir().unwrap();
    let kc = kubeconfig(dir.path(), server.port, TOKEN);
    (server, dir, kc)
}

/// `run --suite host --k8s-node-agent` against the scripted cluster, with `target` (TOML).
fn run(dir: &Path, kc: &Path, target: &str) -> (i32, Value) {
    let t = write_file(dir, "t.toml", target);
    run_to(
        nfvi()
            .env_remove("KUBECONFIG")
            .args(["run", "--suite", "host", "--k8s-node-agent", "--kubeconfig"])
            .arg(kc)
            .arg("--target")
            .arg(&t),
        &dir.join("run"),
    )
}

/// Each result of a node (the host checks), by (check, node): outcome and message.
fn by_node(r: &Value) -> std::collections::BTreeMap<(String, String), (String, String)> {
    r["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| text(c, "id").starts_with("host."))
        .map(|c| {
            let node = c["node"].as_str().unwrap_or_else(|| panic!("no node: {c}"));
            (
                (text(c, "id").to_owned(), node.to_owned()),
                (text(c, "outcome").to_owned(), text(c, "message").to_owned()),
            )
        })
        .collect()
}

fn deleted(server: &Server, what: &str) -> bool {
    server
        .requests()
        .iter()
        .any(|l| l.starts_with("DELETE ") && l.contains(what))
}

/// Whether the agent's namespace itself was deleted.
fn namespace_deleted(server: &Server) -> bool {
    server
        .requests()
        .iter()
        .any(|l| l.split('?').next() == Some("DELETE /api/v1/namespaces/nfvi-verify"))
}

#[test]
fn the_node_agent_runs_as_a_daemon_set_on_every_node() {
    let checks = host_checks();
    assert!(checks.iter().any(|c| c == "host.kernel.version"));
    let (server, dir, kc) = cluster(
        [
            (
                "control-plane-0",
                AgentPod::running(agent_log("control-plane-0", &checks, true)),
            ),
            (
                "worker-0",
                AgentPod::running(agent_log("worker-0", &checks, true)),
            ),
        ],
        |_| {},
    );
    let (code, r) = run(dir.path(), &kc, "");
    let results = by_node(&r);
    assert_eq!(results.len(), checks.len() * 2, "{results:?}");
    for ((id, node), (outcome, message)) in &results {
        assert_eq!(outcome, "passed", "{id} on {node}: {message}");
        assert_eq!(message, &format!("fine on {node}"));
    }
    assert_eq!(code, 0);
    let fleet = &r["fleet"];
    assert_eq!(fleet["transport"], "kubernetes");
    let nodes = fleet["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 2);
    assert_eq!(nodes[0]["name"], "control-plane-0");
    assert_eq!(nodes[0]["roles"], serde_json::json!(["control-plane"]));
    assert_eq!(nodes[0]["address"], "192.0.2.1");
    assert!(nodes.iter().all(|n| n["verified"] == true), "{nodes:?}");
    let note = fleet["notes"][0].as_str().unwrap();
    assert!(
        note.starts_with("node agent: DaemonSet nfvi-verify-agent-")
            && note.contains("in namespace nfvi-verify, image ghcr.io/nfvi-verify/nfvi-verify:"),
        "{note}"
    );

    // One request for every pod, which learns its node from the downward API.
    let cm = &server.posted("/namespaces/nfvi-verify/configmaps")[0];
    let name = cm["metadata"]["name"].as_str().unwrap().to_owned();
    assert!(name.starts_with("nfvi-verify-agent-"), "{name}");
    let request: Value =
        serde_json::from_str(cm["data"]["request.json"].as_str().unwrap()).unwrap();
    assert_eq!(request["node"]["name"], "");
    assert_eq!(request["suite"], "host");
    assert_eq!(request["checks"].as_array().unwrap().len(), checks.len());
    // The DaemonSet's pods: privileged, in the node's namespaces, on every node.
    let ds = &server.posted("/namespaces/nfvi-verify/daemonsets")[0];
    assert_eq!(ds["metadata"]["name"], name.as_str());
    let pod = &ds["spec"]["template"]["spec"];
    assert_eq!(pod["hostNetwork"], true);
    assert_eq!(pod["hostPID"], true);
    assert_eq!(
        pod["tolerations"],
        serde_json::json!([{"operator": "Exists"}])
    );
    let c = &pod["containers"][0];
    assert_eq!(c["securityContext"]["privileged"], true);
    assert_eq!(
        c["env"][0]["valueFrom"]["fieldRef"]["fieldPath"],
        "spec.nodeName"
    );
    assert_eq!(c["env"][0]["name"], "NFVI_NODE_NAME");
    assert!(
        c["args"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a == "--linger")
    );
    let mounts = c["volumeMounts"].as_array().unwrap();
    assert!(mounts.iter().all(|m| m["readOnly"] == true), "{mounts:?}");
    for path in ["/host/proc", "/host/sys", "/opt/cni/bin", "/etc/cni/net.d"] {
        assert!(mounts.iter().any(|m| m["mountPath"] == path), "{path}");
    }
    let ns = &server.posted("/api/v1/namespaces")[0];
    assert_eq!(
        ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"],
        "privileged"
    );

    // Everything is deleted at the end, the namespace too: the run created it.
    for what in [
        format!("/apis/apps/v1/namespaces/nfvi-verify/daemonsets/{name}"),
        format!("/api/v1/namespaces/nfvi-verify/configmaps/{name}"),
    ] {
        assert!(
            deleted(&server, &what),
            "{what} not deleted: {:?}",
            server.requests()
        );
    }
    assert!(namespace_deleted(&server), "{:?}", server.requests());

    // And the deploy file grants every call made.
    let grants = Grants::load();
    for request in server.requests() {
        let a = access(&request);
        assert!(
            grants.allows(&a),
            "deploy/kubernetes grants no {} {}/{} in {:?} ({request})",
            a.verb,
            a.group,
            a.resource,
            a.namespace
        );
    }
}

#[test]
fn a_pod_that_cannot_pull_its_image_fails_only_its_node_naming_it() {
    let checks = host_checks();
    let stuck = AgentPod {
        state: AgentState::Waiting(
            "ImagePullBackOff",
            "Back-off pulling image \"registry.example/nfvi-verify:test\"".into(),
        ),
        log: Vec::new(),
    };
    let (server, dir, kc) = cluster(
        [
            (
                "control-plane-0",
                AgentPod::running(agent_log("control-plane-0", &checks, true)),
            ),
            ("worker-0", stuck),
        ],
        |spec| spec.agent_namespace_exists = true,
    );
    let t0 = Instant::now();
    let (code, r) = run(
        dir.path(),
        &kc,
        "[kubernetes]\nagent_image = \"registry.example/nfvi-verify:test\"\n",
    );
    assert_eq!(code, 3, "a node that could not be verified: incomplete");
    assert!(t0.elapsed() < Duration::from_secs(60), "{:?}", t0.elapsed());
    let results = by_node(&r);
    for id in &checks {
        let (outcome, _) = &results[&(id.clone(), "control-plane-0".to_owned())];
        assert_eq!(outcome, "passed", "{id}");
        let (outcome, message) = &results[&(id.clone(), "worker-0".to_owned())];
        assert_eq!(outcome, "error", "{id}");
        assert!(
            message.starts_with("node worker-0 could not be verified: pod nfvi-verify-agent-")
                && message.contains(" on worker-0 cannot pull image registry.example/nfvi-verify:test: ImagePullBackOff"),
            "{message}"
        );
    }
    let worker = &r["fleet"]["nodes"][1];
    assert_eq!(worker["verified"], false);
    assert!(text(worker, "error").contains("ImagePullBackOff"));
    // The namespace was there before: it stays; what the run made goes.
    assert!(server.posted("/api/v1/namespaces").is_empty());
    assert!(!namespace_deleted(&server), "{:?}", server.requests());
    assert!(deleted(&server, "/daemonsets/nfvi-verify-agent-"));
    assert!(deleted(&server, "/configmaps/nfvi-verify-agent-"));
}

/// Starts `run --suite host --k8s-node-agent`, sends it SIGINT once the server has seen a
/// request starting with `at`, and waits for it to end: its exit code.
fn interrupt(server: &Server, dir: &Path, kc: &Path, at: &str) -> Option<i32> {
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin!("nfvi-verify"))
        .env("NO_COLOR", "1")
        .env("NFVI_VERIFY_NO_CLEAN", "1")
        .env_remove("KUBECONFIG")
        .args(["run", "--suite", "host", "--k8s-node-agent", "--kubeconfig"])
        .arg(kc)
        .arg("--out")
        .arg(dir.join("run"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    while !server.requests().iter().any(|l| l.starts_with(at)) {
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "no {at} in {:?}",
            server.requests()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let interrupted = Instant::now();
    let status = child.wait().unwrap();
    assert!(
        interrupted.elapsed() < Duration::from_secs(20),
        "took {:?} to stop",
        interrupted.elapsed()
    );
    status.code()
}

#[test]
fn ctrl_c_while_the_pods_start_still_deletes_the_daemon_set() {
    // No node's pod ever starts: interrupt the run while it waits for them.
    let (server, dir, kc) = cluster([], |_| {});
    let code = interrupt(
        &server,
        dir.path(),
        &kc,
        "GET /api/v1/namespaces/nfvi-verify/pods?",
    );
    assert_eq!(code, Some(3), "an interrupted run is incomplete");
    for what in [
        "/apis/apps/v1/namespaces/nfvi-verify/daemonsets/nfvi-verify-agent-",
        "/api/v1/namespaces/nfvi-verify/configmaps/nfvi-verify-agent-",
    ] {
        assert!(
            deleted(&server, what),
            "{what} not deleted after Ctrl-C: {:?}",
            server.requests()
        );
    }
    assert!(namespace_deleted(&server), "{:?}", server.requests());
    let r: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("run/results.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(r["complete"], false);
    let c = check(&r, "host.kernel.version");
    assert_eq!(c["outcome"], "skipped", "{c}");
}

#[test]
fn ctrl_c_while_the_agents_run_stops_them_and_keeps_what_they_reported() {
    // Both agents reported one check and are still at work.
    let checks = host_checks();
    let (server, dir, kc) = cluster(
        [
            (
                "control-plane-0",
                AgentPod::running(agent_log("control-plane-0", &checks[..1], false)),
            ),
            (
                "worker-0",
                AgentPod::running(agent_log("worker-0", &checks[..1], false)),
            ),
        ],
        |_| {},
    );
    let code = interrupt(
        &server,
        dir.path(),
        &kc,
        "GET /api/v1/namespaces/nfvi-verify/pods/",
    );
    assert_eq!(code, Some(3));
    let log = server.requests();
    assert!(
        deleted(&server, "/daemonsets/nfvi-verify-agent-"),
        "{log:?}"
    );
    assert!(
        deleted(&server, "/configmaps/nfvi-verify-agent-"),
        "{log:?}"
    );
    let r: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("run/results.json")).unwrap(),
    )
    .unwrap();
    let results = by_node(&r);
    for node in ["control-plane-0", "worker-0"] {
        let (outcome, m) = &results[&(checks[0].clone(), node.to_owned())];
        assert_eq!(outcome, "passed", "{node}: {m}");
        let (outcome, m) = &results[&(checks[1].clone(), node.to_owned())];
        assert_eq!(outcome, "skipped", "{node}: {m}");
    }
    for n in r["fleet"]["nodes"].as_array().unwrap() {
        assert!(text(n, "error").starts_with("the run was stopped"), "{n}");
    }
}

#[test]
fn hostile_logs_never_break_the_run_and_an_agent_that_dies_is_named() {
    let checks = host_checks();
    // Garbage, a 20 MB line, invalid UTF-8 and broken JSON around the real events.
    let mut hostile =
        b"\x00\xff\xfe\x1b[31mgarbage\n{\n{\"event\":\"finished\",\"id\":1}\nnull\n".to_vec();
    hostile.extend(std::iter::repeat_n(b'x', 20 << 20));
    hostile.extend_from_slice(b"\n\xc3\x28 not UTF-8\n");
    hostile.extend(
        agent_log("control-plane-0", &checks, true)
            .concat()
            .into_bytes(),
    );
    // The worker's agent panics half way and its container ends.
    let mut dying = agent_log("worker-0", &checks[..3], false).concat();
    dying.push_str("thread 'main' panicked at harness/cli/src/agent.rs:1:1\n");
    let (_server, dir, kc) = cluster(
        [
            (
                "control-plane-0",
                AgentPod {
                    state: AgentState::Running,
                    log: hostile,
                },
            ),
            (
                "worker-0",
                AgentPod {
                    state: AgentState::Terminated("Error", 101),
                    log: dying.into_bytes(),
                },
            ),
        ],
        |_| {},
    );
    let (code, r) = run(dir.path(), &kc, "");
    assert_eq!(code, 3);
    let results = by_node(&r);
    for (i, id) in checks.iter().enumerate() {
        let (outcome, m) = &results[&(id.clone(), "control-plane-0".to_owned())];
        assert_eq!(outcome, "passed", "{id}: {m}");
        let (outcome, m) = &results[&(id.clone(), "worker-0".to_owned())];
        if i < 3 {
            assert_eq!(outcome, "passed", "{id}: {m}");
        } else {
            assert_eq!(outcome, "error", "{id}: {m}");
            assert!(
                m.contains("on worker-0 ended before reporting all its results: its container ended (Error) with exit code 101")
                    && m.contains("thread 'main' panicked at"),
                "{m}"
            );
        }
    }
}

#[test]
fn without_a_cluster_the_node_agent_is_refused_saying_why() {
    let home = tempfile::tempdir().unwrap();
    let out = home.path().join("run");
    nfvi()
        .env_remove("KUBECONFIG")
        .env("HOME", home.path())
        .args(["run", "--suite", "host", "--k8s-node-agent", "--out"])
        .arg(&out)
        .assert()
        .code(2)
        .stderr(predicates::str::contains(
            "kubernetes.node_agent (--k8s-node-agent) runs the node-level checks through a DaemonSet and needs a cluster: no kubeconfig given",
        ));
    // A kubeconfig whose server does not answer: the fleet is unavailable.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let kc = kubeconfig(home.path(), closed, TOKEN);
    nfvi()
        .env_remove("KUBECONFIG")
        .args(["run", "--suite", "host", "--k8s-node-agent", "--kubeconfig"])
        .arg(&kc)
        .arg("--out")
        .arg(&out)
        .assert()
        .code(3)
        .stderr(predicates::str::contains(
            "cannot reach the cluster's nodes through Kubernetes: list nodes: cannot reach the API server",
        ));
}
