//! The upstream suites driven through the Kubernetes API (the e2e focus sets in the
//! conformance image, kube-bench as Jobs) against the scripted API server: pods started,
//! followed, their results read from the pods/log API and judged through the evidence path,
//! everything created deleted (also when a pod never starts, on timeout and on Ctrl-C), and
//! every call granted by the deploy file's ClusterRoles.

mod common;
mod scripted_k8s;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use common::{check, nfvi, run_to, text, write_file};
use scripted_k8s::{
    Access, BENCH_FAILING, Fate, Grants, Script, Server, Spec, TOKEN, access, kubeconfig,
};

fn scripted(change: impl FnOnce(&mut Spec)) -> (Server, tempfile::TempDir, PathBuf) {
    let mut spec = Spec::conformant(33);
    change(&mut spec);
    let server = Server::start(spec);
    let dir = tempfile::tempdir().unwrap();
    let kc = kubeconfig(dir.path(), server.port, TOKEN);
    (server, dir, kc)
}

/// `run --suite k8s --filter <filter>` with `target`; the exit code and results.json.
fn run(dir: &Path, kc: &Path, filter: &str, target: &str) -> (i32, serde_json::Value) {
    let t = write_file(dir, "t.toml", target);
    let mut cmd = nfvi();
    cmd.env_remove("KUBECONFIG").args(["run", "--suite", "k8s"]);
    for f in filter.split(',') {
        cmd.args(["--filter", f]);
    }
    run_to(
        cmd.arg("--kubeconfig").arg(kc).arg("--target").arg(&t),
        &dir.join("run"),
    )
}

/// Every namespace and ClusterRoleBinding the run created was deleted again.
fn everything_deleted(server: &Server) -> usize {
    let log = server.requests();
    let mut created = Vec::new();
    for v in server.posted("/namespaces") {
        created.push(format!(
            "DELETE /api/v1/namespaces/{}",
            v["metadata"]["name"].as_str().unwrap()
        ));
    }
    for v in server.posted("/clusterrolebindings") {
        created.push(format!(
            "DELETE /apis/rbac.authorization.k8s.io/v1/clusterrolebindings/{}",
            v["metadata"]["name"].as_str().unwrap()
        ));
    }
    for d in &created {
        assert!(
            log.iter().any(|l| l.starts_with(d.as_str())),
            "not deleted: {d}; requests: {log:?}"
        );
    }
    created.len()
}

const FAST: &str = "[kubernetes]\nupstream_start_timeout_secs = 10\nupstream_timeout_secs = 10\n";

#[test]
fn e2e_sets_and_kube_bench_run_collect_ingest_and_clean_up() {
    let (server, dir, kc) = scripted(|_| {});
    let (code, r) = run(dir.path(), &kc, "k8s.e2e.*,k8s.kube-bench.*", "");
    let ids: Vec<&str> = r["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    // 16 e2e sets (the 10 first ones and network-policy, load-balancer, ingress,
    // sidecar-containers and user-namespaces, added with the own network checks, and the
    // smoke sample, which runs at smoke only) and the 2 kube-bench targets.
    assert_eq!(ids.len(), 18, "{ids:?}");
    for id in ids {
        let c = check(&r, id);
        let want = if id == "k8s.e2e.smoke" {
            "skipped"
        } else {
            "passed"
        };
        assert_eq!(c["outcome"], want, "{id}: {}", text(c, "message"));
    }
    assert!(
        text(check(&r, "k8s.e2e.smoke"), "message").contains("runs at --upstream smoke only"),
        "{}",
        check(&r, "k8s.e2e.smoke")["message"]
    );
    assert_eq!(code, 0);
    let c = check(&r, "k8s.e2e.conformance");
    assert!(
        text(c, "message").contains("conformance run passed: 419 [Conformance]"),
        "{}",
        c["message"]
    );
    let props = &c["evidence"]["properties"];
    assert_eq!(props["image"], "registry.k8s.io/conformance:v1.33.4");
    assert_eq!(props["focus"], r"\[Conformance\]");
    assert!(
        props["progress"].as_str().unwrap().contains("of 419 specs"),
        "{props}"
    );
    let prov = c["evidence"]["provenance"].as_array().unwrap();
    assert_eq!(prov.len(), 2, "junit_01.xml and e2e.log: {prov:?}");
    assert_eq!(prov[0]["identity_verified"], true);
    assert_eq!(prov[0]["sha256"].as_str().unwrap().len(), 64);
    let bench = check(&r, "k8s.kube-bench.master");
    assert_eq!(bench["evidence"]["properties"]["node"], "control-plane-0");
    assert_eq!(
        check(&r, "k8s.kube-bench.node")["evidence"]["properties"]["node"],
        "worker-0"
    );
    // The e2e pod as Hydrophone makes it, bound to cluster-admin.
    let pods = server.posted("/pods");
    let e2e = pods
        .iter()
        .find(|p| p["metadata"]["name"] == "e2e")
        .unwrap();
    assert_eq!(
        e2e["spec"]["containers"][0]["image"],
        "registry.k8s.io/conformance:v1.33.4"
    );
    // The cluster-admin token is mounted into the conformance container only, never into the
    // output sidecar (no automount; a projected volume as the default one).
    assert_eq!(e2e["spec"]["automountServiceAccountToken"], false, "{e2e}");
    let token_dir = "/var/run/secrets/kubernetes.io/serviceaccount";
    let mounts = |c: &serde_json::Value| -> Vec<String> {
        c["volumeMounts"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|m| m["mountPath"].as_str().unwrap_or("").to_owned())
            .collect()
    };
    let containers = e2e["spec"]["containers"].as_array().unwrap();
    assert_eq!(containers.len(), 2);
    assert!(
        mounts(&containers[0]).iter().any(|m| m == token_dir),
        "{e2e}"
    );
    assert!(
        mounts(&containers[1])
            .iter()
            .all(|m| !m.starts_with("/var/run/secrets")),
        "the output sidecar gets no token: {e2e}"
    );
    let volume = e2e["spec"]["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "kube-api-access")
        .unwrap();
    let sources = volume["projected"]["sources"].to_string();
    for part in [
        "serviceAccountToken",
        "\"ca.crt\"",
        "\"namespace\"",
        "metadata.namespace",
    ] {
        assert!(sources.contains(part), "{part} in {sources}");
    }
    let binding = &server.posted("/clusterrolebindings")[0];
    assert_eq!(binding["roleRef"]["name"], "cluster-admin");
    let jobs = server.posted("/jobs");
    assert_eq!(jobs.len(), 2);
    assert_eq!(jobs[0]["spec"]["template"]["spec"]["hostPID"], true);
    // 15 sets and 2 Jobs, each in a namespace of its own; 15 bindings.
    assert_eq!(everything_deleted(&server), 32);
    // Every call is granted by the deploy file's ClusterRoles.
    let grants = Grants::load();
    let calls: BTreeSet<Access> = server.requests().iter().map(|r| access(r)).collect();
    for a in &calls {
        assert!(
            grants.allows(a),
            "not granted: {} {}/{}",
            a.verb,
            a.group,
            a.resource
        );
    }
    assert!(
        calls
            .iter()
            .any(|a| a.resource == "clusterrolebindings" && a.verb == "create")
    );
    assert!(calls.iter().any(|a| a.resource == "pods/log"));
    assert!(
        calls
            .iter()
            .any(|a| a.resource == "jobs" && a.verb == "create")
    );
}

#[test]
fn smoke_runs_the_conformance_sample_only() {
    let (server, dir, kc) = scripted(|_| {});
    let (_, r) = run(dir.path(), &kc, "k8s.e2e.*", "upstream = \"smoke\"\n");
    // A sample is no conformance run: the conformance check (gen.cnt.03, ra2.k8s.001) is
    // skipped, never passed by ~70 of ~420 conformance specs.
    let conf = check(&r, "k8s.e2e.conformance");
    assert_eq!(conf["outcome"], "skipped", "{}", conf["message"]);
    assert!(
        text(conf, "message").contains("runs at --upstream full; smoke runs k8s.e2e.smoke"),
        "{}",
        conf["message"]
    );
    let c = check(&r, "k8s.e2e.smoke");
    assert_eq!(c["outcome"], "passed", "{}", c["message"]);
    assert!(
        text(c, "message").starts_with("smoke sample"),
        "{}",
        c["message"]
    );
    assert_eq!(
        c["evidence"]["properties"]["focus"],
        r"\[sig-network\].*\[Conformance\]"
    );
    let net = check(&r, "k8s.e2e.sig-network");
    assert_eq!(net["outcome"], "skipped");
    assert_eq!(server.posted("/pods").len(), 1);
    everything_deleted(&server);
}

#[test]
fn a_failing_kube_bench_control_fails_its_requirement() {
    let (server, dir, kc) = scripted(|s| s.upstream = Script::passing().with_bench(BENCH_FAILING));
    let (code, r) = run(dir.path(), &kc, "k8s.kube-bench.master", "");
    let c = check(&r, "k8s.kube-bench.master");
    assert_eq!(c["outcome"], "failed", "{}", c["message"]);
    assert!(text(c, "message").contains("1.2.6"), "{}", c["message"]);
    assert_eq!(code, 1);
    // Every control is in the run's ledger by number, the failed one with its reason.
    let controls = ledger(&dir.path().join("run"));
    assert!(controls.len() > 20, "{}", controls.len());
    assert!(controls.iter().all(|r| r["stream"] == "kube-bench:master"));
    let failed = controls.iter().find(|r| r["test"] == "1.2.6").unwrap();
    assert_eq!(failed["status"], "failed", "{failed}");
    everything_deleted(&server);
}

#[test]
fn a_pod_that_never_starts_is_an_error_naming_image_and_reason() {
    let why = "Back-off pulling image \"registry.k8s.io/conformance:v1.33.4\"".to_owned();
    let (server, dir, kc) = scripted(|s| {
        s.upstream.e2e = Fate::NeverStarts("ImagePullBackOff", why.clone());
        s.upstream.bench = Fate::NeverStarts("ErrImagePull", "not found".into());
    });
    let (code, r) = run(
        dir.path(),
        &kc,
        "k8s.e2e.conformance,k8s.kube-bench.node",
        FAST,
    );
    let c = check(&r, "k8s.e2e.conformance");
    assert_eq!(c["outcome"], "error", "{}", c["message"]);
    let m = text(c, "message");
    assert!(
        m.contains("(image registry.k8s.io/conformance:v1.33.4) did not start within 10 s"),
        "{m}"
    );
    assert!(
        m.contains("ImagePullBackOff: Back-off pulling image"),
        "{m}"
    );
    let b = check(&r, "k8s.kube-bench.node");
    assert!(
        text(b, "message").contains("docker.io/aquasec/kube-bench:v0.6.10"),
        "{}",
        b["message"]
    );
    assert!(
        text(b, "message").contains("ErrImagePull"),
        "{}",
        b["message"]
    );
    assert_eq!(code, 3);
    assert_eq!(everything_deleted(&server), 3);
}

#[test]
fn a_set_that_runs_too_long_times_out_and_is_deleted() {
    let (server, dir, kc) = scripted(|s| s.upstream.e2e = Fate::Hangs);
    let (code, r) = run(dir.path(), &kc, "k8s.e2e.conformance", FAST);
    let c = check(&r, "k8s.e2e.conformance");
    assert_eq!(c["outcome"], "error", "{}", c["message"]);
    let m = text(c, "message");
    assert!(
        m.contains("did not finish within 10 s (kubernetes.upstream_timeout_secs)"),
        "{m}"
    );
    assert!(
        m.contains("of 419 specs ended"),
        "progress from the e2e log: {m}"
    );
    assert_eq!(code, 3);
    assert_eq!(everything_deleted(&server), 2);
}

#[test]
fn ctrl_c_while_following_deletes_everything_and_writes_results() {
    let (server, dir, kc) = scripted(|s| s.upstream.e2e = Fate::Hangs);
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin!("nfvi-verify"))
        .env("NO_COLOR", "1")
        .env("NFVI_VERIFY_NO_CLEAN", "1")
        .env_remove("KUBECONFIG")
        .args([
            "run",
            "--suite",
            "k8s",
            "--filter",
            "k8s.e2e.conformance",
            "--kubeconfig",
        ])
        .arg(&kc)
        .arg("--out")
        .arg(dir.path().join("run"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let t0 = std::time::Instant::now();
    // Interrupt it while it follows the running pod.
    while !server
        .requests()
        .iter()
        .any(|l| l.contains("/pods/e2e/log"))
    {
        assert!(
            t0.elapsed().as_secs() < 30,
            "the e2e pod was never followed"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    std::thread::sleep(std::time::Duration::from_millis(700));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(3), "an interrupted run is incomplete");
    assert_eq!(everything_deleted(&server), 2);
    let r: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("run/results.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(r["complete"], false);
    let c = check(&r, "k8s.e2e.conformance");
    assert_ne!(c["outcome"], "passed");
}

/// A ginkgo v2 JUnit of the `[sig-network]` specs given as (name, status).
fn junit(cases: &[(&str, &str)]) -> String {
    let failed = cases.iter().filter(|c| c.1 == "failed").count();
    let mut x = format!(
        "<testsuites><testsuite name=\"Kubernetes e2e suite\" tests=\"{}\" failures=\"{failed}\" errors=\"0\">\n",
        cases.len()
    );
    for (name, status) in cases {
        let child = match *status {
            "failed" => "<failure type=\"failed\">[FAILED] expected 200, got 503</failure>",
            "skipped" => "<skipped message=\"skipped\"></skipped>",
            _ => "",
        };
        x.push_str(&format!(
            "<testcase name=\"[It] {name}\" classname=\"Kubernetes e2e suite\" status=\"{status}\" time=\"2\">{child}</testcase>\n"
        ));
    }
    x + "</testsuite></testsuites>\n"
}

/// The records of a run's ledger, after its header line (which run, which target).
fn ledger(dir: &Path) -> Vec<serde_json::Value> {
    let mut lines: Vec<serde_json::Value> = std::fs::read_to_string(dir.join("upstream.journal"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        !lines.is_empty() && lines[0]["ledger"] == 1 && lines[0]["run_id"].is_string(),
        "the ledger opens with its header: {lines:?}"
    );
    lines.remove(0);
    lines
}

/// `--rerun-failed` runs a set again without the specs that passed before (added to its skip,
/// escaped and anchored), judges the union, and says how many were carried over; every spec
/// of both runs is in their ledgers.
#[test]
fn rerun_failed_skips_the_passed_specs_and_judges_the_union() {
    const ONE: &str = "[sig-network] Services should serve a basic endpoint (TCP)";
    const TWO: &str = "[sig-network] DNS should resolve [Conformance]";
    const THREE: &str = "[sig-network] Services should be reachable via NodePort";
    let first = junit(&[(ONE, "passed"), (TWO, "passed"), (THREE, "failed")]);
    let (server, dir, kc) = scripted(|s| {
        s.upstream = Script::passing().with_e2e(
            &first,
            "Ran 3 of 7000 Specs in 60 seconds\nFAIL! -- 2 Passed | 1 Failed | 0 Pending | 6997 Skipped\n",
        );
    });
    let (code, r) = run(dir.path(), &kc, "k8s.e2e.sig-network", "");
    let c = check(&r, "k8s.e2e.sig-network");
    assert_eq!(c["outcome"], "failed", "{}", c["message"]);
    assert_eq!(code, 1);
    let old = ledger(&dir.path().join("run"));
    let got: Vec<(&str, &str, &str)> = old
        .iter()
        .map(|r| {
            (
                r["stream"].as_str().unwrap(),
                r["test"].as_str().unwrap(),
                r["status"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("k8s-e2e:sig-network", ONE, "passed"),
            ("k8s-e2e:sig-network", TWO, "passed"),
            ("k8s-e2e:sig-network", THREE, "failed"),
        ]
    );
    assert!(
        old[2]["detail"].as_str().unwrap().contains("expected 200"),
        "{}",
        old[2]
    );
    everything_deleted(&server);
    drop(server);

    // The rerun: the scripted cluster's suite skips what it was told to and passes the rest.
    let second = junit(&[(ONE, "skipped"), (TWO, "skipped"), (THREE, "passed")]);
    let (server, _dir2, kc2) = scripted(|s| {
        s.upstream = Script::passing().with_e2e(
            &second,
            "Ran 1 of 7000 Specs in 20 seconds\nSUCCESS! -- 1 Passed | 0 Failed | 0 Pending | 6999 Skipped\n",
        );
    });
    // The same target (its fingerprint names the kubeconfig's path): the new cluster's
    // kubeconfig at the old path, or nothing would be carried over.
    std::fs::copy(&kc2, &kc).unwrap();
    let t = write_file(dir.path(), "t.toml", "");
    let mut cmd = nfvi();
    cmd.env_remove("KUBECONFIG")
        .args(["run", "--suite", "k8s", "--filter", "k8s.e2e.sig-network"])
        .arg("--rerun-failed")
        .arg(dir.path().join("run/results.json"))
        .arg("--kubeconfig")
        .arg(&kc)
        .arg("--target")
        .arg(&t);
    let (code, r) = run_to(&mut cmd, &dir.path().join("rerun"));
    let c = check(&r, "k8s.e2e.sig-network");
    assert_eq!(c["outcome"], "passed", "{}", c["message"]);
    assert_eq!(code, 0);
    assert!(
        text(c, "message").contains("3 spec(s) passed"),
        "the union is judged: {}",
        c["message"]
    );
    let props = &c["evidence"]["properties"];
    assert!(
        props["e2e.carried_over"]
            .as_str()
            .unwrap()
            .starts_with("2 spec(s) carried over from run "),
        "{props}"
    );
    // The pod's skip: the set's own and the passed specs, escaped and anchored.
    let pod = &server.posted("/pods")[0];
    let env = pod["spec"]["containers"][0]["env"].as_array().unwrap();
    let skip = env.iter().find(|e| e["name"] == "E2E_SKIP").unwrap()["value"]
        .as_str()
        .unwrap();
    assert!(
        skip.ends_with(r"|(?:^| )(?:\[sig-network\] Services should serve a basic endpoint \(TCP\)|\[sig-network\] DNS should resolve \[Conformance\])$"),
        "{skip}"
    );
    assert!(skip.starts_with(r"\[Disruptive\]"), "{skip}");
    // Its ledger: the two carried over (marked), then the one this run passed.
    let new = ledger(&dir.path().join("rerun"));
    let got: Vec<(&str, &str, bool)> = new
        .iter()
        .map(|r| {
            (
                r["test"].as_str().unwrap(),
                r["status"].as_str().unwrap(),
                r.get("carried_from").is_some(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (ONE, "passed", true),
            (TWO, "passed", true),
            (THREE, "passed", false)
        ]
    );
    everything_deleted(&server);
}

/// A set that failed with every spec passed (its log's verdict, not a spec's) is not passed
/// by `--rerun-failed` on the carried results alone: the rerun runs no spec, and says so.
#[test]
fn a_rerun_that_runs_no_spec_is_an_error() {
    const ONE: &str = "[sig-network] DNS should resolve [Conformance]";
    let (server, dir, kc) = scripted(|s| {
        s.upstream = Script::passing().with_e2e(
            &junit(&[(ONE, "passed")]),
            "Ran 1 of 7000 Specs in 60 seconds\nFAIL! -- 1 Passed | 0 Failed | 0 Pending | 6999 Skipped\n",
        );
    });
    let (_, r) = run(dir.path(), &kc, "k8s.e2e.sig-network", "");
    let c = check(&r, "k8s.e2e.sig-network");
    assert_ne!(c["outcome"], "passed", "{}", c["message"]);
    drop(server);
    let (server, _dir2, kc2) = scripted(|s| {
        s.upstream = Script::passing().with_e2e(
            &junit(&[(ONE, "skipped")]),
            "Ran 0 of 7000 Specs in 1 seconds\nSUCCESS! -- 0 Passed | 0 Failed | 0 Pending | 7000 Skipped\n",
        );
    });
    std::fs::copy(&kc2, &kc).unwrap();
    let t = write_file(dir.path(), "t.toml", "");
    let mut cmd = nfvi();
    cmd.env_remove("KUBECONFIG")
        .args(["run", "--suite", "k8s", "--filter", "k8s.e2e.sig-network"])
        .arg("--rerun-failed")
        .arg(dir.path().join("run/results.json"))
        .arg("--kubeconfig")
        .arg(&kc)
        .arg("--target")
        .arg(&t);
    let (code, r) = run_to(&mut cmd, &dir.path().join("rerun"));
    let c = check(&r, "k8s.e2e.sig-network");
    assert_eq!(c["outcome"], "error", "{}", c["message"]);
    assert_ne!(code, 0);
    assert!(
        text(c, "message").starts_with(
            "nothing was re-run: every spec of k8s.e2e.sig-network had passed in run "
        ),
        "{}",
        c["message"]
    );
    // Nothing observed: the ledger holds only the carried spec.
    let new = ledger(&dir.path().join("rerun"));
    assert_eq!(new.len(), 1, "{new:?}");
    assert!(new[0].get("carried_from").is_some(), "{}", new[0]);
    everything_deleted(&server);
}
