//! The Kubernetes area against a scripted API server (no cluster can run on these machines):
//! conformant and non-conformant clusters of 1.29 to 1.33, unreachable, silent, refusing and
//! malformed servers, and the in-cluster probes' lifecycle.

mod common;
mod scripted_k8s;

use std::path::Path;

use common::{assert_contains, check, json_stdout, nfvi, run_to, text, write_file};
use scripted_k8s::{Access, Grants, Server, Spec, TOKEN, access, kubeconfig};

/// Runs `--suite k8s` against `kubeconfig` with `target` (TOML); returns the exit code,
/// results.json and the HTML report.
fn run(dir: &Path, kubeconfig: &Path, target: &str) -> (i32, serde_json::Value, String) {
    let t = write_file(dir, "t.toml", target);
    let out = dir.join("run");
    let mut cmd = nfvi();
    cmd.env_remove("KUBECONFIG")
        .args(["run", "--suite", "k8s", "--kubeconfig"])
        .arg(kubeconfig)
        .arg("--target")
        .arg(&t);
    if target.contains("probe_image") {
        // The Ingress check needs an HTTP stand-in for the controller: k8s_own.rs has one.
        cmd.args(["--skip", "k8s.ingress.controller"]);
    }
    let (code, r) = run_to(&mut cmd, &out);
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    (code, r, html)
}

fn outcomes(r: &serde_json::Value) -> std::collections::BTreeMap<String, (String, String)> {
    r["checks"]
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
        .collect()
}

/// A scripted API server answering as `spec`, a scratch directory, and a kubeconfig for it.
fn scripted(spec: Spec) -> (Server, tempfile::TempDir, std::path::PathBuf) {
    let server = Server::start(spec);
    let dir = tempfile::tempdir().unwrap();
    let kc = kubeconfig(dir.path(), server.port, TOKEN);
    (server, dir, kc)
}

/// [`scripted`] with a conformant Kubernetes 1.33 cluster that `change` makes otherwise.
fn scripted_conformant(
    change: impl FnOnce(&mut Spec),
) -> (Server, tempfile::TempDir, std::path::PathBuf) {
    let mut spec = Spec::conformant(33);
    change(&mut spec);
    scripted(spec)
}

const NI: &str = "profile = \"network-intensive\"\n";
/// The `[kubernetes]` table that turns the probe pods on (and lets the LoadBalancer checks
/// probe the scripted load balancer's loopback address).
const PROBES: &str =
    "[kubernetes]\nprobe_image = \"registry.example/nfvi-verify:test\"\nlb_allow_loopback = true\n";

#[test]
fn a_conformant_cluster_passes_every_check() {
    let (_server, dir, kc) = scripted(Spec::conformant(33));
    let (code, r, _) = run(dir.path(), &kc, NI);
    let o = outcomes(&r);
    for (id, (outcome, message)) in &o {
        // The probe-pod checks need kubernetes.probe_image (k8s_own.rs sets it).
        let probe_pods = [
            "k8s.datapath.pod-latency",
            "k8s.multus.secondary-network",
            "k8s.lb.external",
            "k8s.lb.failover",
            "k8s.ingress.controller",
            "k8s.pods.user-namespaces",
            "k8s.network-policy.enforced",
        ];
        // The smoke sample runs at `upstream = "smoke"` only.
        let expected = if probe_pods.contains(&id.as_str()) || id == "k8s.e2e.smoke" {
            "skipped"
        } else {
            "passed"
        };
        assert_eq!(outcome, expected, "{id}: {message}");
    }
    assert_eq!(code, 0, "{o:?}");
}

#[test]
fn older_minors_fail_only_the_version_check() {
    for minor in 29..=32 {
        let (_server, dir, kc) = scripted(Spec::conformant(minor));
        let (code, r, _) = run(dir.path(), &kc, NI);
        assert_eq!(code, 1, "1.{minor}");
        let o = outcomes(&r);
        let failed: Vec<&String> = o
            .iter()
            .filter(|(_, (s, _))| s != "passed" && s != "skipped")
            .map(|(id, _)| id)
            .collect();
        assert_eq!(failed, ["k8s.version.server"], "1.{minor}: {o:?}");
        assert!(
            o["k8s.version.server"].1.contains(&format!("v1.{minor}.4")),
            "{:?}",
            o["k8s.version.server"]
        );
        let beta = &o["k8s.api.no-beta"].1;
        if minor <= 31 {
            assert!(
                beta.contains(
                    "only legacy beta APIs are served: flowcontrol.apiserver.k8s.io/v1beta3"
                ),
                "1.{minor}: {beta}"
            );
        } else {
            assert_eq!(beta, "no built-in beta API is served");
        }
    }
}

#[test]
fn a_non_conformant_cluster_fails_each_check_naming_what_is_wrong() {
    let (_server, dir, kc) = scripted_conformant(|spec| {
        spec.kubelet_lag = 4;
        spec.control_planes = 2;
        spec.zones = vec!["zone-a".into(), "zone-b".into(), "zone-c".into()];
        spec.etcd_on_worker = true;
        spec.scheduler_lease_age_secs = Some(900);
        spec.readyz_failing = Some("etcd".into());
        spec.extra_group_versions = vec![
            ("resource.k8s.io".into(), "v1alpha3".into()),
            ("storage.k8s.io".into(), "v1beta1".into()),
        ];
        spec.drop_group_versions = vec!["policy/v1".into()];
        spec.network_policies = false;
        spec.profile_labels = false;
        spec.hugepages = false;
        spec.cpu_manager = "none";
        spec.topology_manager = "best-effort";
        spec.reserved_cpus = false;
        spec.cni = None;
        spec.nad_crd = false;
        spec.dual_stack = false;
        spec.default_storage_class = false;
        spec.rbac_roles = false;
        spec.anonymous_allowed = true;
        spec.nfd_labels = false;
        spec.not_ready_worker = true;
    });
    let (code, r, _) = run(dir.path(), &kc, NI);
    assert_eq!(code, 1);
    let o = outcomes(&r);
    let expect = |id: &str, outcome: &str, needles: &[&str]| {
        let (got, message) = &o[id];
        assert_eq!(got, outcome, "{id}: {message}");
        for n in needles {
            assert!(message.contains(n), "{id}: `{n}` not in: {message}");
        }
    };
    expect("k8s.version.server", "passed", &[]);
    expect(
        "k8s.version.kubelet-skew",
        "failed",
        &["worker-0 runs kubelet v1.29.4, 4 minors behind the API server 1.33 (at most 3)"],
    );
    expect(
        "k8s.control-plane.components",
        "failed",
        &[
            "the API server is not ready: [-]etcd failed",
            "kube-scheduler's lease (holder control-plane-1_3c4d) was last renewed 9",
        ],
    );
    expect(
        "k8s.control-plane.etcd",
        "failed",
        &[
            "etcd has 2 member(s); RA2 asks for 3, 5 or 7",
            "etcd members on worker nodes: etcd-worker-0 on worker-0",
        ],
    );
    expect(
        "k8s.topology.control-plane-per-zone",
        "failed",
        &["zone(s) without a control-plane node: zone-c"],
    );
    expect("k8s.topology.workers-per-zone", "passed", &[]);
    expect(
        "k8s.api.no-alpha",
        "failed",
        &["alpha APIs are served: resource.k8s.io/v1alpha3"],
    );
    expect(
        "k8s.api.no-beta",
        "failed",
        &["built-in beta APIs are served: storage.k8s.io/v1beta1"],
    );
    expect(
        "k8s.api.mandatory-groups",
        "failed",
        &["not served: policy/v1"],
    );
    expect(
        "k8s.api.network-policy",
        "failed",
        &["networkpolicies is not served"],
    );
    expect(
        "k8s.nodes.ready",
        "failed",
        &["nodes not Ready: worker-0 (Ready=False)"],
    );
    expect(
        "k8s.nodes.profile-labels",
        "failed",
        &[
            "workers without anuket.io/profile/basic or anuket.io/profile/network-intensive: worker-0, worker-1, worker-2",
        ],
    );
    expect(
        "k8s.nodes.hugepages",
        "failed",
        &["worker-0 (2Mi: 0, 1Gi: 0)"],
    );
    expect(
        "k8s.kubelet.cpu-manager",
        "failed",
        &["cpuManagerPolicy is not `static` on: worker-0 (none)"],
    );
    expect(
        "k8s.kubelet.topology-manager",
        "failed",
        &["topologyManagerPolicy is not `single-numa-node` on: worker-0 (best-effort)"],
    );
    expect(
        "k8s.kubelet.reserved-cpus",
        "failed",
        &["reserve no CPU", "worker-0, worker-1, worker-2"],
    );
    expect(
        "k8s.network.cni",
        "error",
        &["no DaemonSet of a known CNI plugin", "kube-proxy"],
    );
    expect(
        "k8s.network.multiplexer",
        "failed",
        &[
            "kube-multus-ds runs but the network-attachment-definitions.k8s.cni.cncf.io CRD is missing",
        ],
    );
    expect(
        "k8s.network.dual-stack",
        "failed",
        &["nodes without both IPv4 and IPv6: control-plane-0 (podCIDRs: 10.244.1.0/24)"],
    );
    expect(
        "k8s.storage.default-class",
        "failed",
        &["no StorageClass is marked default among: local-path (rancher.io/local-path)"],
    );
    expect(
        "k8s.security.rbac",
        "failed",
        &[
            "bootstrap cluster roles are missing: cluster-admin, system:basic-user, system:discovery",
        ],
    );
    expect(
        "k8s.security.anonymous-refused",
        "failed",
        &["an anonymous request listed namespaces"],
    );
    expect(
        "k8s.nodes.feature-discovery",
        "failed",
        &["workers without Node Feature Discovery labels: worker-0"],
    );
}

#[test]
fn without_a_kubeconfig_every_check_is_skipped_saying_so() {
    let home = tempfile::tempdir().unwrap();
    let plan = json_stdout(
        nfvi()
            .env_remove("KUBECONFIG")
            .env("HOME", home.path())
            .args(["list", "--suite", "rc2", "--format", "json"]),
    );
    let k8s: Vec<&serde_json::Value> = plan["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["id"].as_str().unwrap().starts_with("k8s."))
        .collect();
    // 35 API and probe checks (with the acceleration checks, accel.rs, the Ingress, the
    // user-namespace and the NetworkPolicy probes), 15 e2e focus sets and the smoke sample,
    // 2 kube-bench Jobs.
    assert_eq!(k8s.len(), 53);
    for c in k8s {
        assert_eq!(c["decision"], "skip", "{}", c["id"]);
        assert!(
            text(c, "reason").starts_with("no kubeconfig given"),
            "{}",
            c["reason"]
        );
    }
    // A kubeconfig that is not there is named.
    let plan = json_stdout(nfvi().env("HOME", home.path()).args([
        "list",
        "--suite",
        "k8s",
        "--format",
        "json",
        "--kubeconfig",
        "/nonexistent/kubeconfig",
    ]));
    let reason = plan["checks"][0]["reason"].as_str().unwrap().to_owned();
    assert!(
        reason.contains("/nonexistent/kubeconfig does not exist"),
        "{reason}"
    );
}

#[test]
fn kubeconfig_entries_are_merged_as_kubectl_merges_them() {
    // The first file names the current context; the context, the scripted server and the
    // credentials are in the second, whose own current context (`decoy`) must lose.
    let (_server, dir, kc) = scripted(Spec::conformant(33));
    let second = std::fs::read_to_string(&kc)
        .unwrap()
        .replace("current-context: scripted", "current-context: decoy");
    let b = write_file(dir.path(), "b", second);
    let a = write_file(
        dir.path(),
        "a",
        "apiVersion: v1\nkind: Config\ncurrent-context: scripted\n",
    );
    let t = write_file(dir.path(), "t.toml", NI);
    let home = tempfile::tempdir().unwrap();
    let run = |kubeconfig: std::ffi::OsString, out: &str| {
        run_to(
            nfvi()
                .env("KUBECONFIG", kubeconfig)
                .env("HOME", home.path())
                .args(["run", "--suite", "k8s", "--target"])
                .arg(&t),
            &dir.path().join(out),
        )
    };
    let missing = dir.path().join("absent");
    let (code, r) = run(std::env::join_paths([&a, &missing, &b]).unwrap(), "merged");
    let o = outcomes(&r);
    assert_eq!(o["k8s.version.server"].0, "passed", "{o:?}");
    assert_eq!(code, 0, "{o:?}");
    // The first file alone has no such context: an error naming it.
    let (code, r) = run(a.clone().into_os_string(), "first");
    let o = outcomes(&r);
    assert_eq!(code, 3, "{o:?}");
    assert_eq!(o["k8s.version.server"].0, "error", "{o:?}");
    assert_contains(
        &o["k8s.version.server"].1,
        &format!("cannot use kubeconfig {}", a.display()),
    );
}

#[test]
fn unreachable_silent_and_refusing_servers_are_errors_that_say_why_within_bounded_time() {
    // Nothing listens on the port.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let kc = kubeconfig(dir.path(), closed, TOKEN);
    let t0 = std::time::Instant::now();
    let (code, r, _) = run(dir.path(), &kc, NI);
    assert_eq!(code, 3);
    // The checks that run probe pods skip before they reach for the cluster when no probe
    // image is set (NI sets none), all alike; every other check is an error naming why.
    let needs_probe_image = [
        "k8s.datapath.pod-latency",
        "k8s.lb.external",
        "k8s.lb.failover",
        "k8s.multus.secondary-network",
        "k8s.ingress.controller",
        "k8s.pods.user-namespaces",
        "k8s.network-policy.enforced",
    ];
    let o = outcomes(&r);
    for id in needs_probe_image {
        let (outcome, message) = &o[id];
        assert_eq!(outcome, "skipped", "{id}: {message}");
        assert!(
            message.starts_with("kubernetes.probe_image is not set"),
            "{id}: {message}"
        );
    }
    // The smoke sample does not run at the default level (full): skipped before the cluster.
    let (outcome, message) = &o["k8s.e2e.smoke"];
    assert_eq!(outcome, "skipped", "{message}");
    for (id, (outcome, message)) in o {
        if needs_probe_image.contains(&id.as_str()) || id == "k8s.e2e.smoke" {
            continue;
        }
        assert_eq!(outcome, "error", "{id}: {message}");
        assert!(
            message.contains(&format!(
                "cannot reach the API server at http://127.0.0.1:{closed}/"
            )),
            "{id}: {message}"
        );
    }
    assert!(t0.elapsed().as_secs() < 30, "took {:?}", t0.elapsed());

    // A server that accepts and never answers: the read deadline ends it.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let held: Vec<_> = silent.incoming().flatten().collect();
        drop(held);
    });
    let dir = tempfile::tempdir().unwrap();
    let kc = kubeconfig(dir.path(), port, TOKEN);
    let t0 = std::time::Instant::now();
    let (code, r, _) = run(dir.path(), &kc, NI);
    assert_eq!(code, 3);
    let o = outcomes(&r);
    assert_eq!(o["k8s.version.server"].0, "error");
    assert!(
        o["k8s.version.server"]
            .1
            .contains("did not answer within 15 s"),
        "{:?}",
        o["k8s.version.server"]
    );
    assert!(t0.elapsed().as_secs() < 90, "took {:?}", t0.elapsed());

    // An expired token: 401 for everything, naming the user.
    let (_server, dir, kc) = scripted_conformant(|spec| {
        spec.refuse_all = Some(401);
    });
    let (code, r, _) = run(dir.path(), &kc, NI);
    assert_eq!(code, 3);
    let m = &outcomes(&r)["k8s.nodes.ready"].1;
    assert!(
        m.contains("refused the credentials of user `nfvi-verify` (401")
            && m.contains("expired token"),
        "{m}"
    );
}

#[test]
fn a_forbidden_read_names_the_missing_permission_and_the_rest_still_runs() {
    let (_server, dir, kc) = scripted_conformant(|spec| {
        spec.forbid_nodes = true;
    });
    let (code, r, _) = run(dir.path(), &kc, NI);
    assert_eq!(code, 3);
    let o = outcomes(&r);
    let (outcome, m) = &o["k8s.nodes.profile-labels"];
    assert_eq!(outcome, "error");
    assert!(
        m.starts_with("list nodes: permission missing for user `nfvi-verify`"),
        "{m}"
    );
    assert!(
        m.contains(r#"cannot list resource \"nodes\""#)
            || m.contains(r#"cannot list resource "nodes""#),
        "{m}"
    );
    assert!(m.contains("nfvi-verify-clusterrole.yaml"), "{m}");
    for id in [
        "k8s.version.server",
        "k8s.api.mandatory-groups",
        "k8s.storage.default-class",
    ] {
        assert_eq!(o[id].0, "passed", "{id}: {}", o[id].1);
    }
}

#[test]
fn malformed_and_hostile_answers_are_errors_or_escaped_text() {
    for (status, ctype, body, needle) in [
        (
            200,
            "text/html",
            "<html><body>Login required</body></html>".to_owned(),
            "not the expected object",
        ),
        (
            200,
            "application/json",
            r#"{"kind":"NodeList","apiVersion":"v1","items":[{"metadata":{"name":"x""#.to_owned(),
            "not the expected object",
        ),
        (
            200,
            "application/json",
            r#"{"kind":"NodeList","apiVersion":"v1","items":"not a list"}"#.to_owned(),
            "not the expected object",
        ),
        (
            502,
            "text/plain",
            "upstream connect error".to_owned(),
            "502",
        ),
    ] {
        let (_server, dir, kc) = scripted_conformant(|spec| {
            spec.nodes_body = Some((status, ctype, body));
        });
        let (code, r, _) = run(dir.path(), &kc, NI);
        assert_eq!(code, 3);
        let (outcome, m) = &outcomes(&r)["k8s.nodes.ready"];
        assert_eq!(outcome, "error", "{m}");
        assert!(m.starts_with("list nodes: ") && m.contains(needle), "{m}");
    }
    // Names chosen to break a report: they show as text.
    let (_server, dir, kc) = scripted_conformant(|spec| {
        spec.worker_prefix = "<script>alert(1)</script>w".into();
        spec.profile_labels = false;
    });
    let (_, r, html) = run(dir.path(), &kc, NI);
    assert!(
        outcomes(&r)["k8s.nodes.profile-labels"]
            .1
            .contains("<script>alert(1)</script>w-0")
    );
    assert!(
        !html.contains("<script>alert(1)"),
        "a node name reached the HTML unescaped"
    );
    let at = html.find("alert(1)").expect("the name is in the report");
    assert!(
        html.contains("&#60;script&#62;alert(1)"),
        "the name shows as escaped text: {}",
        &html[at.saturating_sub(60)..at + 40]
    );
}

#[test]
fn probe_pods_measure_same_against_cross_node_and_their_namespace_is_deleted() {
    let (server, dir, kc) = scripted(Spec::conformant(33));
    let target = format!("{NI}{PROBES}");
    let (code, r, _) = run(dir.path(), &kc, &target);
    assert_eq!(code, 0);
    let c = check(&r, "k8s.datapath.pod-latency");
    assert_eq!(c["outcome"], "passed", "{}", c["message"]);
    let m = text(c, "message");
    assert!(
        m.contains("same node (worker-0) 21.7 µs, cross node (worker-0 to worker-1) 48.2 µs"),
        "{m}"
    );
    assert!(m.contains("same node is faster"), "{m}");
    assert_eq!(
        c["evidence"]["samples"]["cross-node block p50 (us)"]
            .as_array()
            .unwrap()
            .len(),
        6
    );
    let log = server.requests();
    let created: Vec<&String> = log
        .iter()
        .filter(|l| {
            l.starts_with("POST /api/v1/namespaces/nfvi-verify-probe-") && l.contains("/pods")
        })
        .collect();
    assert_eq!(created.len(), 3, "{log:?}");
    let ns = created[0].split('/').nth(4).unwrap().to_owned();
    assert!(ns.starts_with("nfvi-verify-probe-"));
    assert!(
        log.iter()
            .any(|l| l.starts_with(&format!("DELETE /api/v1/namespaces/{ns}"))),
        "namespace not deleted: {log:?}"
    );
    assert_eq!(c["cleanup"][0]["action"], format!("delete namespace {ns}"));
    assert!(
        c["cleanup"][0].get("error").is_none_or(|e| e.is_null()),
        "{}",
        c["cleanup"]
    );

    // A client that fails: an error with its output, and the namespace still goes.
    let (server, dir, kc) = scripted_conformant(|spec| {
        spec.probe_succeeds = false;
    });
    let (code, r, _) = run(dir.path(), &kc, &target);
    assert_eq!(code, 3);
    let c = check(&r, "k8s.datapath.pod-latency");
    assert_eq!(c["outcome"], "error");
    assert_contains(
        text(c, "message"),
        "the probe client on the default network failed: error: round 0",
    );
    assert!(
        server
            .requests()
            .iter()
            .any(|l| l.starts_with("DELETE /api/v1/namespaces/nfvi-verify-probe-"))
    );
}

#[test]
fn the_cluster_role_grants_every_call_the_harness_makes() {
    let grants = Grants::load();
    let (server, dir, kc) = scripted(Spec::conformant(33));
    let target = format!("{NI}{PROBES}");
    let (code, _, _) = run(dir.path(), &kc, &target);
    assert_eq!(code, 0);
    let calls: std::collections::BTreeSet<Access> =
        server.requests().iter().map(|r| access(r)).collect();
    assert!(calls.len() > 15, "{calls:?}");
    for a in &calls {
        // The anonymous probe asks with no credentials on purpose: it needs no grant.
        if a.resource == "namespaces" && a.verb == "list" {
            continue;
        }
        assert!(
            grants.allows(a),
            "the ClusterRole does not grant {} {}/{}",
            a.verb,
            a.group,
            a.resource
        );
    }
}

#[test]
fn ctrl_c_during_the_probes_still_deletes_their_namespace() {
    let (server, dir, kc) = scripted_conformant(|spec| {
        spec.probe_client_hangs = true;
    });
    let t = write_file(dir.path(), "t.toml", PROBES);
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin!("nfvi-verify"))
        .env("NO_COLOR", "1")
        .env("NFVI_VERIFY_NO_CLEAN", "1")
        .env_remove("KUBECONFIG")
        .args([
            "run",
            "--suite",
            "k8s",
            "--filter",
            "k8s.datapath.*",
            "--kubeconfig",
        ])
        .arg(&kc)
        .arg("--target")
        .arg(&t)
        .arg("--out")
        .arg(dir.path().join("run"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let t0 = std::time::Instant::now();
    // The harness watches the running client (kube's await_condition): interrupt it there.
    while !server
        .requests()
        .iter()
        .any(|l| l.contains("watch=true") && l.contains("fieldSelector=metadata.name%3Dclient"))
    {
        assert!(
            t0.elapsed().as_secs() < 30,
            "the client pod was never watched ({} requests)",
            server.requests().len()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(3), "an interrupted run is incomplete");
    let log = server.requests();
    assert!(
        log.iter()
            .any(|l| l.starts_with("DELETE /api/v1/namespaces/nfvi-verify-probe-")),
        "the probes' namespace was not deleted after Ctrl-C: {log:?}"
    );
    let r: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("run/results.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(r["complete"], false);
}

#[test]
fn probes_also_measure_a_secondary_network_by_its_multus_address() {
    let (server, dir, kc) = scripted(Spec::conformant(33));
    let target = format!("{NI}{PROBES}probe_networks = [\"default/macvlan-lab\"]\n");
    let (code, r, _) = run(dir.path(), &kc, &target);
    let c = check(&r, "k8s.datapath.pod-latency");
    assert_eq!(c["outcome"], "passed", "{}", c["message"]);
    assert_eq!(code, 0);
    assert_contains(text(c, "message"), "and 1 secondary network(s)");
    assert!(
        c["evidence"]["properties"]["default/macvlan-lab"]
            .as_str()
            .unwrap()
            .contains("same node is faster")
    );
    assert!(c["evidence"]["metrics"]["default/macvlan-lab cross-node p50"].is_object());
    let log = server.requests();
    let pods = log
        .iter()
        .filter(|l| {
            l.starts_with("POST /api/v1/namespaces/nfvi-verify-probe-") && l.contains("/pods?")
        })
        .count();
    assert_eq!(pods, 4, "two responders, a client per network: {log:?}");
    assert!(
        log.iter().any(|l| l.contains("/pods/client-1/log")),
        "a client on the secondary network: {log:?}"
    );
    assert!(
        log.iter()
            .any(|l| l.contains("fieldSelector=metadata.name%3Dclient-1")),
        "pods are awaited through kube's watcher (list and watch by name): {log:?}"
    );
}

#[test]
fn a_zone_without_workers_fails_naming_it() {
    let (_server, dir, kc) = scripted_conformant(|spec| {
        // Control planes in zone-a, -b, -c; the one worker lands in zone-a.
        spec.workers = 1;
    });
    let (code, r, _) = run(dir.path(), &kc, NI);
    assert_eq!(code, 1);
    let o = outcomes(&r);
    assert_eq!(
        o["k8s.topology.workers-per-zone"],
        (
            "failed".to_owned(),
            "zone(s) without a worker node: zone-b, zone-c".to_owned()
        )
    );
    assert_eq!(o["k8s.topology.control-plane-per-zone"].0, "passed");
}

#[test]
fn pod_latency_is_judged_against_the_target_sla_and_drawn_in_the_report() {
    let (_server, dir, kc) = scripted(Spec::conformant(33));
    let target = format!(
        "{NI}{PROBES}[datapath.sla.pod-same-node]\np50_us = 30.0\np99_us = 40.0\n[datapath.sla.pod-cross-node]\np50_us = 30.0\n"
    );
    let (code, r, html) = run(dir.path(), &kc, &target);
    // An informational check: a missed SLA is a warning, not a verdict.
    assert_eq!(code, 0);
    let c = check(&r, "k8s.datapath.pod-latency");
    assert_eq!(c["outcome"], "failed");
    let m = text(c, "message");
    assert!(
        m.starts_with("latency SLA missed: pod-cross-node p50: the upper 95% bound 48."),
        "{m}"
    );
    assert!(
        !m.contains("pod-same-node"),
        "the same-node path meets its SLA: {m}"
    );
    assert!(
        c["evidence"]["properties"]["SLA pod-same-node p99"]
            .as_str()
            .unwrap()
            .contains("against 40 us")
    );
    assert_eq!(
        c["evidence"]["distributions"]["cross node"]
            .as_array()
            .unwrap()
            .len(),
        101
    );
    assert!(
        html.contains("aria-label") && html.contains("cross node"),
        "the distributions are drawn"
    );
}
