//! The DaemonSet transport's pure parts: the manifests, the nodes, where a pod stands, and
//! reading a hostile log. The transport against an API server is tested with a scripted one
//! in harness/cli/tests/k8s_daemonset.rs.

use futures_util::FutureExt;
use k8s_openapi::api::core::v1::Node;
use nfvi_harness::Status;
use nfvi_harness::fleet::AgentCheck;
use serde_json::{Value, json};

use super::log::Line;
use super::*;

fn pod(status: Value) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": "nfvi-verify-agent-x-abcde"},
        "spec": {"nodeName": "worker-2", "containers": []},
        "status": status
    }))
    .unwrap()
}

fn waiting(reason: &str) -> Pod {
    pod(json!({"phase": "Pending", "containerStatuses": [{
        "name": "agent", "image": "i", "imageID": "", "ready": false, "restartCount": 0,
        "state": {"waiting": {"reason": reason, "message": "Back-off pulling image \"i\""}}
    }]}))
}

#[test]
fn nodes_carry_their_roles_and_internal_address() {
    let n: Node = serde_json::from_value(json!({
        "metadata": {"name": "cp-0", "labels": {
            "node-role.kubernetes.io/control-plane": "",
            "node-role.kubernetes.io/etcd": "",
            "node-role.kubernetes.io/": "",
            "kubernetes.io/hostname": "cp-0"
        }},
        "status": {"addresses": [
            {"type": "Hostname", "address": "cp-0"},
            {"type": "InternalIP", "address": "192.0.2.1"},
            {"type": "InternalIP", "address": "2001:db8::1"}
        ]}
    }))
    .unwrap();
    let spec = node_spec(&n).unwrap();
    assert_eq!(spec.name, "cp-0");
    assert_eq!(spec.roles, ["control-plane", "etcd"]);
    assert_eq!(spec.address.as_deref(), Some("192.0.2.1"));
}

#[test]
fn the_daemon_set_runs_a_privileged_agent_on_every_node() {
    let ds =
        serde_json::to_value(daemon_set_manifest("nfvi-verify-agent-x", "ns", "img:1")).unwrap();
    let spec = &ds["spec"]["template"]["spec"];
    assert_eq!(spec["hostNetwork"], true);
    assert_eq!(spec["hostPID"], true);
    assert_eq!(spec["tolerations"], json!([{"operator": "Exists"}]));
    assert_eq!(spec["automountServiceAccountToken"], false);
    let c = &spec["containers"][0];
    assert_eq!(c["image"], "img:1");
    assert_eq!(c["securityContext"]["privileged"], true);
    assert_eq!(c["command"], json!(["/usr/local/bin/nfvi-verify"]));
    assert_eq!(
        c["args"],
        json!([
            "node",
            "--request",
            "/etc/nfvi-verify/request.json",
            "--linger"
        ])
    );
    assert_eq!(
        c["env"][0],
        json!({"name": "NFVI_NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}})
    );
    let mounts = c["volumeMounts"].as_array().unwrap();
    assert!(mounts.iter().all(|m| m["readOnly"] == true), "{mounts:?}");
    let paths: Vec<&str> = mounts
        .iter()
        .map(|m| m["mountPath"].as_str().unwrap())
        .collect();
    assert_eq!(
        paths,
        [
            "/etc/nfvi-verify",
            "/host/proc",
            "/host/sys",
            "/opt/cni/bin",
            "/etc/cni/net.d"
        ]
    );
    assert!(mounts.iter().all(|m| m.get("mountPropagation").is_none()));
    let selector = &ds["spec"]["selector"]["matchLabels"];
    assert_eq!(selector[INSTANCE], "nfvi-verify-agent-x");
    for (k, v) in selector.as_object().unwrap() {
        assert_eq!(&ds["spec"]["template"]["metadata"]["labels"][k], v);
    }
}

#[test]
fn a_pod_is_ready_starting_or_stuck_with_its_reason() {
    let running = pod(json!({"phase": "Running", "containerStatuses": [{
        "name": "agent", "image": "i", "imageID": "", "ready": true, "restartCount": 0,
        "state": {"running": {}}
    }]}));
    assert_eq!(progress(&running, "img"), Progress::Ready);
    assert_eq!(
        progress(&waiting("ContainerCreating"), "img"),
        Progress::Starting("ContainerCreating".into())
    );
    assert_eq!(
        progress(&pod(json!({"phase": "Pending"})), "img"),
        Progress::Starting("Pending".into())
    );
    for reason in ["ErrImagePull", "ImagePullBackOff", "InvalidImageName"] {
        let Progress::Stuck(why) = progress(&waiting(reason), "registry.example/x:1") else {
            panic!("{reason} is stuck");
        };
        assert!(
            why.starts_with(&format!("cannot pull image registry.example/x:1: {reason}")),
            "{why}"
        );
    }
    let crashing = pod(json!({"phase": "Running", "containerStatuses": [{
        "name": "agent", "image": "i", "imageID": "", "ready": false, "restartCount": 4,
        "state": {"waiting": {"reason": "CrashLoopBackOff"}},
        "lastState": {"terminated": {"exitCode": 2, "reason": "Error"}}
    }]}));
    assert_eq!(
        progress(&crashing, "img"),
        Progress::Stuck(
            "keeps crashing: CrashLoopBackOff, last ended (Error) with exit code 2".into()
        )
    );
    let unschedulable = pod(json!({"phase": "Pending", "conditions": [{
        "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
        "message": "0/3 nodes are available: 1 Insufficient cpu."
    }]}));
    let Progress::Stuck(why) = progress(&unschedulable, "img") else {
        panic!("unschedulable is stuck")
    };
    assert!(why.contains("Insufficient cpu"), "{why}");
    // The container's end, after its log stopped.
    let ended = pod(json!({"phase": "Running", "containerStatuses": [{
        "name": "agent", "image": "i", "imageID": "", "ready": false, "restartCount": 0,
        "state": {"terminated": {"exitCode": 137, "reason": "OOMKilled", "signal": 9}}
    }]}));
    let Container::Ended(how) = container_state(&ended) else {
        panic!("ended")
    };
    assert_eq!(how, "ended (OOMKilled) with exit code 137, signal 9");
}

fn finished(id: &str) -> String {
    AgentEvent::Finished(Box::new(AgentCheck {
        id: id.into(),
        status: Status::Passed,
        skip_kind: None,
        message: "ok".into(),
        evidence: Default::default(),
        started_at: None,
        duration_secs: 0.1,
        cleanup: vec![],
    }))
    .to_line()
}

fn done() -> String {
    AgentEvent::Done {
        cancelled: false,
        warnings: vec![],
    }
    .to_line()
}

/// Every line of `data`, read `chunk` bytes at a time with `cap`.
fn lines(data: &[u8], chunk: usize, cap: usize) -> Vec<Line> {
    let mut source = futures_util::io::BufReader::with_capacity(chunk, data);
    let mut reader = LineReader::new(cap);
    let mut out = Vec::new();
    while let Some(line) = reader.next(&mut source).now_or_never().unwrap().unwrap() {
        out.push(line);
    }
    out
}

#[test]
fn lines_are_split_whatever_the_chunks_and_long_ones_are_dropped() {
    let data = b"one\n\ntwo-is-longer\nthree";
    for chunk in [1, 2, 3, 7, 64] {
        let got = lines(data, chunk, 8);
        let text: Vec<(&[u8], Option<usize>, bool)> = got
            .iter()
            .map(|l| (l.bytes.as_slice(), l.too_long, l.complete))
            .collect();
        assert_eq!(
            text,
            [
                (&b"one"[..], None, true),
                (&b""[..], None, true),
                (&b""[..], Some(13), true),
                (&b"three"[..], None, false),
            ],
            "chunks of {chunk}"
        );
    }
}

#[test]
fn a_hostile_log_never_panics_and_the_events_in_it_still_count() {
    let asked = vec![
        "host.kernel.version".to_owned(),
        "host.node.vcpus".to_owned(),
    ];
    let mut data = Vec::new();
    data.extend_from_slice(b"\x00\xff\xfe garbage \x1b[31m\n{\n{\"event\":\"nope\"}\nnull\n");
    data.extend(std::iter::repeat_n(b'x', 20 << 20));
    data.push(b'\n');
    data.extend_from_slice(b"\xc3\x28{\"event\":\"done\"}\n");
    data.extend_from_slice(finished("host.kernel.version").as_bytes());
    data.extend_from_slice(b"panicked at src/main.rs\r\n");
    data.extend_from_slice(finished("host.node.vcpus").as_bytes());
    data.extend_from_slice(done().as_bytes());
    let mut state = LogState::new("worker-1", "pod-a", &asked);
    let mut seen = Vec::new();
    let mut end = None;
    for line in lines(&data, 8192, MAX_LINE_BYTES) {
        assert!(line.bytes.len() <= MAX_LINE_BYTES);
        if let Some(e) = state.line(line, &mut |e| seen.push(e)) {
            end = Some(e);
            break;
        }
    }
    assert_eq!(
        end,
        Some(Ok(())),
        "every asked-for result came despite the skipped line"
    );
    assert_eq!(seen.len(), 3);
    let out = state.last_output();
    assert!(out.contains("(a line of 20971520 bytes"), "{out}");
    assert!(out.contains("\"panicked at src/main.rs\""), "{out}");
    assert!(
        !out.contains("garbage"),
        "only the last few lines are kept: {out}"
    );

    // The same skipped line with a result missing at `done` is an error that says so.
    // A reader whose cap drops both results but not `done`.
    let cap = done().len() + 5;
    assert!(finished("host.node.vcpus").len() > cap);
    let mut state = LogState::new("worker-1", "pod-a", &asked);
    let mut last = None;
    for line in lines(&data, 8192, cap) {
        if let Some(e) = state.line(line, &mut |_| {}) {
            last = Some(e);
            break;
        }
    }
    let e = last.unwrap().unwrap_err();
    assert!(e.message.contains("line(s) longer than"), "{}", e.message);
    assert!(
        e.message.contains("2 result(s) are missing"),
        "{}",
        e.message
    );
}

#[test]
fn a_fatal_event_ends_the_node_naming_the_pod() {
    let asked = vec![];
    let mut state = LogState::new("worker-1", "pod-a", &asked);
    let line = Line {
        bytes: AgentEvent::Fatal {
            message: "the jump host runs nfvi-verify 9.9.9".into(),
        }
        .to_line()
        .trim_end()
        .as_bytes()
        .to_vec(),
        too_long: None,
        complete: true,
    };
    let e = state.line(line, &mut |_| {}).unwrap().unwrap_err();
    assert_eq!(
        e.message,
        "the node agent in pod pod-a on worker-1 refused to run: the jump host runs nfvi-verify 9.9.9"
    );
}

#[test]
fn the_agent_settings_are_validated_naming_the_key() {
    use nfvi_harness::AreaConfig;
    let config = |ns: &str, secs: u64| -> KubernetesConfig {
        serde_json::from_value(json!({
            "probe_rounds": 6, "probe_block": 2000, "probe_networks": [],
            "node_agent": true, "agent_namespace": ns, "agent_timeout_secs": secs
        }))
        .unwrap()
    };
    assert!(config("nfvi-verify", 900).validate().is_ok());
    for ns in ["", "Upper", "-x", "x-", "a_b", &"a".repeat(64)] {
        let e = config(ns, 900).validate().unwrap_err();
        assert_eq!(e.at.as_deref(), Some("agent_namespace"), "{ns}");
    }
    let e = config("x", 1).validate().unwrap_err();
    assert_eq!(e.at.as_deref(), Some("agent_timeout_secs"));
    assert_eq!(
        config("x", 900).agent_image(),
        format!(
            "ghcr.io/nfvi-verify/nfvi-verify:{}",
            env!("CARGO_PKG_VERSION")
        )
    );
}
