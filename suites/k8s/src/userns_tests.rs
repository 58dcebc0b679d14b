//! The table tests of the user-namespace check's pure parts (userns.rs).

use super::*;
use nfvi_harness::Status;
use serde_json::json;

const ID: &str = "         0          0 4294967295\n";
const USERNS_MAP: &str = "         0 1879113728      65536\n";

#[test]
fn uid_maps_parse_as_the_kernel_prints_them_and_hostile_text_is_an_error() {
    let (many, long) = ("0 1 1\n".repeat(341), "9".repeat(10_000));
    assert_eq!(parse_uid_map(ID).unwrap(), [IDENTITY]);
    assert_eq!(
        parse_uid_map(USERNS_MAP).unwrap(),
        [Extent {
            inside: 0,
            outside: 1_879_113_728,
            count: 65_536
        }]
    );
    assert_eq!(
        parse_uid_map("0 100000 1000\n\n1000 1000 1\r\n")
            .unwrap()
            .len(),
        2
    );
    for bad in [
        "",
        "\n \n",
        "0 0",
        "0 0 4294967295 7",
        "0 0 4294967296",
        "-1 0 1",
        "0 0 0",
        "4294967295 0 2",
        "0 4294967295 2",
        "cat: /proc/self/uid_map: No such file or directory",
        "0\u{0} 0 1",
        "ＯＫ ０ １",
        many.as_str(),
        long.as_str(),
    ] {
        let e = parse_uid_map(bad).unwrap_err();
        assert!(e.len() < 200, "{e}");
    }
}

#[test]
fn user_namespaces_are_judged_against_the_control_pod() {
    let printed = |s: &str| Seen::Printed(s.to_owned());
    let not_run = |w: &[&str]| Seen::NotRun(w.iter().map(|s| (*s).to_owned()).collect());
    let refused = Seen::Refused {
        code: 403,
        message: "admission webhook \"userns.example\" denied the request: hostUsers: false is not allowed".into(),
    };
    #[rustfmt::skip]
    let rows: Vec<(&str, Seen, Seen, bool, Status, &str)> = vec![
        ("own namespace", printed(ID), printed(USERNS_MAP), false, Status::Passed, "container root is host ID 1879113728, 65536 IDs"),
        ("several extents", printed(ID), printed("0 200000 1000\n1000 300000 64536\n"), false, Status::Passed, "65536 IDs mapped"),
        ("root unmapped", printed(ID), printed("1 200000 1000\n"), false, Status::Passed, "unmapped"),
        ("ignored", printed(ID), printed(ID), false, Status::Failed, "hostUsers: false was ignored"),
        ("ignored, field dropped", printed(ID), printed(ID), true, Status::Failed, "UserNamespacesSupport feature gate is off"),
        ("maps onto node root", printed(ID), printed("0 0 65536\n"), false, Status::Failed, "onto the node's root"),
        ("refused", printed(ID), refused.clone(), false, Status::Failed, "refused a pod with spec.hostUsers: false (403): admission webhook"),
        ("runtime lacks it", printed(ID), not_run(&["FailedCreatePodSandBox: the runtime does not support user namespaces"]), false, Status::Failed, "did not run, while the same image ran on the same node with default settings: FailedCreatePodSandBox"),
        ("not run, no reason", printed(ID), not_run(&[]), false, Status::Error, "neither its status nor its events"),
        ("unreadable map", printed(ID), printed("<html>"), false, Status::Error, "could not be read"),
        ("control in a userns", printed(USERNS_MAP), printed(USERNS_MAP), false, Status::Error, "does not see the node's user IDs"),
        ("control unreadable", printed(""), printed(USERNS_MAP), false, Status::Error, "control pod's /proc/self/uid_map could not be read: it is empty"),
        ("control not run", not_run(&["ErrImagePull: not found"]), not_run(&[]), false, Status::Error, "did not run, so the probe path does not work here: ErrImagePull"),
        ("control refused", refused, printed(USERNS_MAP), false, Status::Error, "refused the control pod"),
    ];
    for (name, control, userns, dropped, status, needle) in rows {
        let o = judge(&control, &userns, dropped);
        assert_eq!(o.status, status, "{name}: {}", o.message);
        assert!(o.message.contains(needle), "{name}: {}", o.message);
    }
}

#[test]
fn reasons_come_from_the_status_and_the_warning_events() {
    let p: Pod = serde_json::from_value(json!({
        "metadata": {"name": "uid-map-userns"},
        "status": {
            "phase": "Pending",
            "conditions": [{"type": "PodScheduled", "status": "True"}],
            "containerStatuses": [{"name": "probe", "image": "i", "imageID": "", "ready": false, "restartCount": 0,
                "state": {"waiting": {"reason": "ContainerCreating"}}}]
        }
    }))
    .unwrap();
    let events: Vec<Event> = serde_json::from_value(json!([
        {"metadata": {"name": "a"}, "involvedObject": {"name": "uid-map-userns"}, "type": "Normal", "reason": "Scheduled", "message": "assigned"},
        {"metadata": {"name": "b"}, "involvedObject": {"name": "uid-map-userns"}, "type": "Warning", "reason": "FailedCreatePodSandBox", "message": "Failed to create pod sandbox: user namespaces are not supported"},
        {"metadata": {"name": "c"}, "involvedObject": {"name": "uid-map-userns"}, "type": "Warning", "reason": "FailedCreatePodSandBox", "message": "Failed to create pod sandbox: user namespaces are not supported"}
    ]))
    .unwrap();
    let w = warning_events(&events);
    assert_eq!(
        w,
        ["FailedCreatePodSandBox: Failed to create pod sandbox: user namespaces are not supported"]
    );
    assert!(about_userns(&w[0]));
    assert!(!about_userns("FailedScheduling: 0/3 nodes are available"));
    assert_eq!(not_run_reasons(&p, &w), w);
    let failed: Pod = serde_json::from_value(json!({
        "status": {"phase": "Failed", "reason": "UnexpectedAdmissionError", "message": "Pod was rejected",
            "containerStatuses": [{"name": "probe", "image": "i", "imageID": "", "ready": false, "restartCount": 0,
                "state": {"terminated": {"exitCode": 128, "reason": "StartError", "message": "idmapped mounts are not supported"}}}]}
    }))
    .unwrap();
    let why = not_run_reasons(&failed, &[]);
    assert_eq!(
        why,
        [
            "UnexpectedAdmissionError: Pod was rejected",
            "container exited with 128 (StartError: idmapped mounts are not supported)"
        ]
    );
    assert_eq!(not_run_reasons(&Pod::default(), &[]), Vec::<String>::new());
}

#[test]
fn the_pods_read_their_uid_map_on_one_node_and_only_one_asks_for_a_user_namespace() {
    let p = uid_map_pod(USERNS, "worker-1", "img:1", Some(false));
    let spec = p.spec.unwrap();
    assert_eq!(spec.host_users, Some(false));
    assert_eq!(spec.node_name.as_deref(), Some("worker-1"));
    assert_eq!(spec.restart_policy.as_deref(), Some("Never"));
    let c = &spec.containers[0];
    assert_eq!(c.command.as_deref(), Some(&["cat".to_owned()][..]));
    assert_eq!(
        c.args.as_deref(),
        Some(&["/proc/self/uid_map".to_owned()][..])
    );
    let control = uid_map_pod(CONTROL, "worker-1", "img:1", None);
    assert_eq!(control.spec.unwrap().host_users, None);
    let node = |name: &str, ready: &str, cp: bool| -> Node {
        let mut labels = serde_json::Map::new();
        if cp {
            labels.insert("node-role.kubernetes.io/control-plane".into(), json!(""));
        }
        serde_json::from_value(json!({
            "metadata": {"name": name, "labels": labels},
            "status": {"conditions": [{"type": "Ready", "status": ready}]}
        }))
        .unwrap()
    };
    assert_eq!(
        pick_node(&[
            node("cp-1", "True", true),
            node("w-1", "False", false),
            node("w-2", "True", false)
        ]),
        Some("w-2".into())
    );
    assert_eq!(
        pick_node(&[node("cp-1", "True", true)]),
        Some("cp-1".into())
    );
    assert_eq!(pick_node(&[node("w-1", "Unknown", false)]), None);
}
