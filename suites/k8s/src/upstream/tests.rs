use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use serde_json::json;

use super::e2e::Progress;
use super::manifest::{BenchRole, E2ePod, bench_job, e2e_pod};
use super::pod::{Stage, bench_json, split_output, stage};
use super::*;

fn config() -> KubernetesConfig {
    let table: toml::Value = toml::from_str(include_str!("../kubernetes.toml")).unwrap();
    table["kubernetes"].clone().try_into().unwrap()
}

#[test]
fn the_conformance_image_is_of_the_servers_version_unless_configured() {
    let mut k = config();
    let image = |k: &KubernetesConfig, v| conformance_image(k, v);
    assert_eq!(
        image(&k, Some("v1.33.4")).as_deref(),
        Some("registry.k8s.io/conformance:v1.33.4")
    );
    // Distribution suffixes are not part of the upstream tag.
    assert_eq!(
        image(&k, Some("v1.32.5+k3s1")).as_deref(),
        Some("registry.k8s.io/conformance:v1.32.5")
    );
    for bad in ["1.33.4", "v1.33", "vx.y.z", "", "v1.33.4.5"] {
        assert_eq!(image(&k, Some(bad)), None, "{bad}");
    }
    assert_eq!(image(&k, None), None);
    k.upstream_registry = "mirror.example:5000/k8s".into();
    assert_eq!(
        image(&k, Some("v1.33.4")).as_deref(),
        Some("mirror.example:5000/k8s/conformance:v1.33.4")
    );
    assert_eq!(
        output_image(&k),
        "mirror.example:5000/k8s/e2e-test-images/busybox:1.36.1-1"
    );
    k.e2e_image = Some("mirror/conformance:v1.33.0".into());
    assert_eq!(
        image(&k, None).as_deref(),
        Some("mirror/conformance:v1.33.0")
    );
}

#[test]
fn the_upstream_keys_are_validated() {
    use nfvi_harness::AreaConfig as _;
    let mut k = config();
    assert!(k.validate().is_ok());
    k.e2e_parallel = 0;
    assert_eq!(
        k.validate().unwrap_err().at.as_deref(),
        Some("e2e_parallel")
    );
    let mut k = config();
    k.kube_bench_image = "has space:1".into();
    assert_eq!(
        k.validate().unwrap_err().at.as_deref(),
        Some("kube_bench_image")
    );
    let mut k = config();
    k.upstream_registry = "registry.k8s.io/".into();
    assert_eq!(
        k.validate().unwrap_err().at.as_deref(),
        Some("upstream_registry")
    );
    let mut k = config();
    k.upstream_start_timeout_secs = 1;
    assert!(k.validate().is_err());
}

#[test]
fn every_set_is_declared_once_with_rc2s_skips() {
    let mut ids: Vec<&str> = SETS.iter().map(|s| s.check).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), SETS.len());
    let conformance = &SETS[0];
    assert_eq!(conformance.check, "k8s.e2e.conformance");
    assert_eq!(conformance.focus, r"\[Conformance\]");
    assert_eq!(
        conformance.skip,
        r"\[Serial\]|\[Disruptive\]|NoExecuteTaintManager"
    );
    assert_eq!(conformance.covers, &["gen.cnt.03", "ra2.k8s.001"]);
    assert!(!conformance.smoke);
    // The smoke sample: the sig-network conformance specs, judged as a focus set, claiming
    // nothing (a sample is no conformance run).
    let sample = &SETS[1];
    assert_eq!(sample.check, "k8s.e2e.smoke");
    assert_eq!(sample.focus, SMOKE_FOCUS);
    assert!(sample.smoke && !sample.conformance && sample.covers.is_empty());
    // Which set runs at which level, and why not.
    let table: [(&str, bool, Option<&str>); 6] = [
        ("k8s.e2e.conformance", false, None),
        (
            "k8s.e2e.conformance",
            true,
            Some("runs at --upstream full; smoke runs k8s.e2e.smoke"),
        ),
        ("k8s.e2e.smoke", true, None),
        (
            "k8s.e2e.smoke",
            false,
            Some(
                "runs at --upstream smoke only; full runs every conformance spec in k8s.e2e.conformance",
            ),
        ),
        ("k8s.e2e.sig-network", false, None),
        (
            "k8s.e2e.sig-network",
            true,
            Some(
                "upstream = \"smoke\" runs only the conformance sample (k8s.e2e.smoke); --upstream full runs the SIG focus sets",
            ),
        ),
    ];
    for (check, smoke, why) in table {
        let set = SETS.iter().find(|s| s.check == check).unwrap();
        assert_eq!(set.not_at(smoke), why, "{check} at smoke={smoke}");
    }
    // Exactly one set runs at smoke.
    assert_eq!(SETS.iter().filter(|s| s.not_at(true).is_none()).count(), 1);
    for s in &SETS[2..] {
        assert!(!s.conformance && !s.smoke);
        assert!(s.skip.contains(r"\[Conformance\]"), "{}", s.check);
        assert!(s.skip.contains(r"\[Disruptive\]"), "{}", s.check);
        // Serial specs only in the serial sets.
        assert_eq!(s.focus.contains(r"\[Serial\]"), s.serial, "{}", s.check);
        assert_eq!(!s.skip.contains(r"\[Serial\]"), s.serial, "{}", s.check);
    }
    let net = SETS
        .iter()
        .find(|s| s.check == "k8s.e2e.sig-network")
        .unwrap();
    for skipped in ["LoadBalancer", "NetworkPolicy", "Ingress", "IPv6DualStack"] {
        assert!(net.skip.contains(skipped), "{skipped}");
    }
    // What the set skips it does not claim.
    assert!(!net.covers.contains(&"ra2.k8s.014"));
    // IngressClass API specs pass without any ingress controller: no Ingress claim.
    let claims = |check: &str| SETS.iter().find(|s| s.check == check).unwrap().covers;
    assert!(claims("k8s.e2e.ingress").is_empty());
    assert!(SETS.iter().all(|s| !s.covers.contains(&"ra2.k8s.016")));
    assert!(SETS.iter().all(|s| !s.covers.contains(&"inf.ntw.16")));
    // The sig-storage skip removes default-StorageClass provisioning.
    assert_eq!(claims("k8s.e2e.sig-storage"), ["ra2.stg.005"]);
    assert!(!net.covers.contains(&"ra2.k8s.015"));
    let checks = checks();
    let e2e: Vec<_> = checks
        .iter()
        .filter(|c| c.meta().id.starts_with("k8s.e2e."))
        .collect();
    assert_eq!(e2e.len(), SETS.len());
    for c in &e2e {
        let up = c.meta().upstream.clone().unwrap();
        assert_eq!(up.tool, "k8s-e2e");
        assert!(up.tests.contains(" (skip "), "{}", up.tests);
    }
    let bench: Vec<_> = checks
        .iter()
        .filter(|c| c.meta().id.starts_with("k8s.kube-bench."))
        .map(|c| c.meta().upstream.clone().unwrap().tests)
        .collect();
    assert_eq!(
        bench,
        [
            "--targets master,controlplane,etcd,policies",
            "--targets node"
        ]
    );
}

fn pod(status: serde_json::Value) -> Pod {
    serde_json::from_value(json!({"metadata": {"name": "e2e"}, "status": status})).unwrap()
}

#[test]
fn a_containers_stage_comes_from_the_pod_status() {
    let waiting = pod(json!({"phase": "Pending", "containerStatuses": [
        {"name": "e2e", "image": "x", "imageID": "", "ready": false, "restartCount": 0,
         "state": {"waiting": {"reason": "ImagePullBackOff", "message": "Back-off pulling image \"registry.k8s.io/conformance:v1.33.4\""}}}
    ]}));
    assert_eq!(
        stage(&waiting, "e2e"),
        Stage::Waiting(
            "ImagePullBackOff: Back-off pulling image \"registry.k8s.io/conformance:v1.33.4\""
                .into()
        )
    );
    let unscheduled = pod(json!({"phase": "Pending", "conditions": [
        {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": "0/3 nodes are available: 3 Insufficient cpu."}
    ]}));
    assert_eq!(
        stage(&unscheduled, "e2e"),
        Stage::Waiting("Unschedulable: 0/3 nodes are available: 3 Insufficient cpu.".into())
    );
    let ended = pod(json!({"phase": "Failed", "containerStatuses": [
        {"name": "e2e", "image": "x", "imageID": "", "ready": false, "restartCount": 0,
         "state": {"terminated": {"exitCode": 1, "reason": "Error"}}}
    ]}));
    assert_eq!(stage(&ended, "e2e"), Stage::Ended(1, "Error".into()));
    let evicted = pod(json!({"phase": "Failed", "reason": "Evicted", "message": "low on memory"}));
    assert_eq!(
        stage(&evicted, "e2e"),
        Stage::Failed("Evicted: low on memory".into())
    );
    assert_eq!(
        stage(&pod(json!({})), "e2e"),
        Stage::Waiting("Pending".into())
    );
}

#[test]
fn the_sidecars_output_splits_into_junit_and_log() {
    let m = "=== nfvi-verify 1";
    let log = format!(
        "{m} junit_01.xml\n<testsuites/>\n\n{m} e2e.log\nWill run 1 of 2 specs\nSUCCESS!\n\n{m} end\n"
    );
    let (junit, e2e) = split_output(log.as_bytes(), m).unwrap();
    assert_eq!(junit, b"<testsuites/>\n\n");
    assert_eq!(e2e.unwrap(), b"Will run 1 of 2 specs\nSUCCESS!\n\n");
    // Truncated, empty, hostile.
    let cut = format!("{m} junit_01.xml\n<testsuites>\n");
    assert!(
        split_output(cut.as_bytes(), m)
            .unwrap_err()
            .contains("truncated")
    );
    let empty = format!("{m} junit_01.xml\n\n{m} e2e.log\n{m} end\n");
    assert!(
        split_output(empty.as_bytes(), m)
            .unwrap_err()
            .contains("no junit")
    );
    assert!(split_output(b"\xff\xfe garbage", m).is_err());
    assert!(split_output(b"", m).is_err());
    // Another run's marker is content.
    let other = format!("=== nfvi-verify 2 end\n{m} junit_01.xml\n<x/>\n{m} end\n");
    assert_eq!(split_output(other.as_bytes(), m).unwrap().0, b"<x/>\n");
}

#[test]
fn kube_bench_json_is_found_among_its_warnings() {
    let log = b"W1129 warning: no config\n{\"Controls\":[]}\n\nI1129 done\n";
    assert_eq!(bench_json(log).unwrap(), b"{\"Controls\":[]}");
    assert_eq!(bench_json(b"no json here"), None);
    let pretty = b"W warn\n{\n  \"Controls\": []\n}\n";
    assert_eq!(bench_json(pretty).unwrap(), b"{\n  \"Controls\": []\n}");
}

#[test]
fn progress_counts_specs_and_estimates_what_is_left() {
    let mut p = Progress::default();
    assert_eq!(p.summary(), "the suite is starting (no spec ended yet)");
    assert_eq!(
        p.eta(Duration::from_secs(60), Some(Duration::from_secs(600))),
        "; ETA 9:00"
    );
    assert_eq!(p.eta(Duration::from_secs(60), None), "");
    for l in [
        "Will run 4 of 7000 specs",
        "• [1.2 seconds]",
        "•",
        "• [FAILED] [3.0 seconds]",
        "S",
        "not a spec",
    ] {
        p.line(l);
    }
    assert_eq!(p.summary(), "3 of 4 specs ended, 1 failed");
    assert_eq!(p.eta(Duration::from_secs(30), None), "; ETA 0:10");
}

#[test]
fn the_manifests_are_as_hydrophone_and_kube_bench_make_them() {
    let p = e2e_pod(&E2ePod {
        image: "registry.k8s.io/conformance:v1.33.4",
        output_image: "registry.k8s.io/e2e-test-images/busybox:1.36.1-1",
        focus: r"\[Conformance\]",
        skip: r"\[Serial\]",
        parallel: 10,
        mark: "=== m",
    });
    let v = serde_json::to_value(&p).unwrap();
    let c = &v["spec"]["containers"];
    assert_eq!(v["spec"]["serviceAccountName"], "nfvi-verify-e2e");
    let env = c[0]["env"].as_array().unwrap();
    let get = |k: &str| env.iter().find(|e| e["name"] == k).unwrap()["value"].clone();
    assert_eq!(get("E2E_FOCUS"), r"\[Conformance\]");
    assert_eq!(get("E2E_SKIP"), r"\[Serial\]");
    // go-runner reads E2E_PARALLEL only as y/Y/true (ginkgo's --p): the process count goes
    // through E2E_EXTRA_GINKGO_ARGS, as Hydrophone passes it.
    assert!(env.iter().all(|e| e["name"] != "E2E_PARALLEL"), "{env:?}");
    assert_eq!(get("E2E_EXTRA_GINKGO_ARGS"), "--procs=10");
    assert_eq!(get("RESULTS_DIR"), "/tmp/results");
    // The image's ENTRYPOINT (kubeconformance), not the deprecated /gorunner copy.
    assert!(c[0].get("command").is_none(), "{}", c[0]);
    for container in c.as_array().unwrap() {
        let sc = &container["securityContext"];
        assert_eq!(sc["runAsNonRoot"], true, "{container}");
        assert_eq!(sc["allowPrivilegeEscalation"], false);
        assert_eq!(sc["capabilities"]["drop"], json!(["ALL"]));
        assert_eq!(sc["seccompProfile"]["type"], "RuntimeDefault");
    }
    assert_eq!(v["spec"]["tolerations"], json!([{"operator": "Exists"}]));
    let serial = serde_json::to_value(e2e_pod(&E2ePod {
        parallel: 1,
        image: "i",
        output_image: "o",
        focus: "f",
        skip: "s",
        mark: "m",
    }))
    .unwrap();
    let serial_env = serial["spec"]["containers"][0]["env"].to_string();
    assert!(
        !serial_env.contains("E2E_EXTRA_GINKGO_ARGS") && !serial_env.contains("E2E_PARALLEL"),
        "one ginkgo process: {serial_env}"
    );
    assert_eq!(c[1]["volumeMounts"][0]["mountPath"], "/tmp/results");
    assert!(v["spec"]["volumes"][0]["emptyDir"].is_object());
    let j = serde_json::to_value(bench_job(
        "kube-bench-master",
        BenchRole::Master,
        "cp-0",
        "kb:1",
    ))
    .unwrap();
    let spec = &j["spec"]["template"]["spec"];
    assert_eq!(spec["hostPID"], true);
    assert_eq!(spec["nodeSelector"]["kubernetes.io/hostname"], "cp-0");
    let mounts = spec["containers"][0]["volumeMounts"].as_array().unwrap();
    assert!(mounts.iter().all(|m| m["readOnly"] == true));
    assert!(mounts.iter().any(|m| m["mountPath"] == "/var/lib/etcd"));
    // As kube-bench's job.yaml: /var/lib/cni too, /usr/bin where kube-bench looks for it.
    assert!(mounts.iter().any(|m| m["mountPath"] == "/var/lib/cni"));
    assert!(
        mounts
            .iter()
            .any(|m| m["mountPath"] == "/usr/local/mount-from-host/bin")
    );
    assert_eq!(
        spec["containers"][0]["command"],
        json!([
            "kube-bench",
            "run",
            "--targets",
            "master,controlplane,etcd,policies",
            "--json"
        ])
    );
}

/// The sets beyond RC2 select real spec names: a literal part of each focus is found in the
/// JUnit of real runs vendored under tests/fixtures/evidence/k8s-e2e (the 1.33 one).
#[test]
fn the_sets_beyond_rc2_match_real_spec_names() {
    let junit = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/evidence/k8s-e2e/cncf-v1.33-catalyst-cloud/junit_01.xml"
    ))
    .unwrap();
    #[rustfmt::skip]
    let rows = [
        ("k8s.e2e.network-policy", "[Feature:NetworkPolicy]", "[Feature:NetworkPolicy]", 40),
        ("k8s.e2e.load-balancer", "[sig-network] LoadBalancers", "[sig-network] LoadBalancers", 10),
        ("k8s.e2e.ingress", "[sig-network] Ingress", "[sig-network] IngressClass [Feature:Ingress]", 3),
        ("k8s.e2e.sidecar-containers", "[Feature:SidecarContainers]", "[Feature:SidecarContainers]", 20),
        ("k8s.e2e.user-namespaces", "[Feature:UserNamespacesSupport]", "[Feature:UserNamespacesSupport]", 4),
    ];
    for (check, literal, needle, at_least) in rows {
        let set = SETS.iter().find(|s| s.check == check).unwrap();
        let escaped = literal.replace('[', r"\[").replace(']', r"\]");
        assert!(
            set.focus.contains(&escaped),
            "{check}: {} lacks {escaped}",
            set.focus
        );
        let n = junit.matches(needle).count();
        assert!(n >= at_least, "{check}: {needle} names {n} specs");
        // Ingress is informational: its specs show the IngressClass API, not a controller.
        assert_eq!(set.covers.is_empty(), check == "k8s.e2e.ingress", "{check}");
    }
}
