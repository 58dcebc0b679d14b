//! `nfvi-verify clean` against a scripted API server (no cluster runs on these machines):
//! every namespace kind the k8s area creates (probes, e2e sets, kube-bench, LoadBalancer,
//! Multus), the e2e sets' ClusterRoleBindings to cluster-admin and the node agent's DaemonSet
//! and ConfigMap of a run whose process is gone are deleted; those of a live process, of
//! another host, without the harness's labels or with a name it does not give are not; and
//! every call `clean` makes is granted by deploy/kubernetes.

mod common;
mod scripted_k8s;

use common::{assert_contains, nfvi, write_file};
use scripted_k8s::{Grants, Server, Spec, TOKEN, access, kubeconfig};
use serde_json::{Value, json};

/// Where a PID means this process, as the harness writes it in `io.nfvi-verify.owner-host`
/// (this test shares the harness's machine, boot and PID namespace).
fn host() -> String {
    nfvi_harness::leftover::owner_host()
}

fn object(kind: &str, ns: Option<&str>, name: &str, labels: Value) -> Value {
    let mut o = json!({"kind": kind, "metadata": {"name": name, "labels": labels}});
    if let Some(ns) = ns {
        o["metadata"]["namespace"] = ns.into();
    }
    o
}

fn owned(pid: u32, host: &str) -> Value {
    json!({
        "app.kubernetes.io/managed-by": "nfvi-verify",
        "io.nfvi-verify.owner": pid.to_string(),
        "io.nfvi-verify.owner-host": host,
    })
}

/// The namespaces the k8s area creates besides the probes'.
const KINDS: [&str; 5] = [
    "nfvi-verify-e2e-",
    "nfvi-verify-bench-",
    "nfvi-verify-net-lb-",
    "nfvi-verify-net-multus-",
    "nfvi-verify-net-ingress-",
];

#[test]
fn clean_deletes_what_a_dead_run_left_in_the_cluster_and_nothing_else() {
    // A process that has ended: its PID is gone.
    let dead = {
        let mut c = std::process::Command::new("true").spawn().unwrap();
        c.wait().unwrap();
        c.id()
    };
    let me = std::process::id();
    let h = host();
    let mut spec = Spec::conformant(33);
    spec.leftovers = vec![
        object("Namespace", None, "nfvi-verify-probe-dead", owned(dead, &h)),
        object("Namespace", None, "nfvi-verify-probe-live", owned(me, &h)),
        object(
            "ClusterRoleBinding",
            None,
            "nfvi-verify-e2e-dead",
            owned(dead, &h),
        ),
        object(
            "ClusterRoleBinding",
            None,
            "nfvi-verify-e2e-live",
            owned(me, &h),
        ),
        // An operator's binding that happens to carry the labels: not a name the harness gives.
        object("ClusterRoleBinding", None, "nfvi-verify", owned(dead, &h)),
        object(
            "ClusterRoleBinding",
            None,
            "nfvi-verify-e2e-away",
            owned(dead, "elsewhere"),
        ),
        object(
            "Namespace",
            None,
            "nfvi-verify-probe-away",
            owned(dead, "elsewhere"),
        ),
        // Labelled as ours by someone who may label namespaces, but not a name the harness
        // gives: labels alone never make something deletable.
        object("Namespace", None, "production", owned(dead, &h)),
        // The same machine name in another PID namespace (a container next to the host):
        // its process IDs are not ours.
        object(
            "Namespace",
            None,
            "nfvi-verify-probe-container",
            owned(dead, &format!("{}-1", h.rsplit_once('-').unwrap().0)),
        ),
        object(
            "Namespace",
            None,
            "someone-elses",
            json!({"io.nfvi-verify.owner": dead.to_string(), "io.nfvi-verify.owner-host": h}),
        ),
        object(
            "DaemonSet",
            Some("nfvi-verify"),
            "nfvi-verify-agent-dead",
            owned(dead, &h),
        ),
        object(
            "ConfigMap",
            Some("nfvi-verify"),
            "nfvi-verify-agent-dead",
            owned(dead, &h),
        ),
        object(
            "DaemonSet",
            Some("nfvi-verify"),
            "nfvi-verify-agent-live",
            owned(me, &h),
        ),
    ];
    for kind in KINDS {
        spec.leftovers.extend([
            object("Namespace", None, &format!("{kind}dead"), owned(dead, &h)),
            object("Namespace", None, &format!("{kind}live"), owned(me, &h)),
            object(
                "Namespace",
                None,
                &format!("{kind}away"),
                owned(dead, "elsewhere"),
            ),
        ]);
    }
    // whereabouts' IPPools of the Multus check: no labels of ours, named after the
    // network_name the check gives (host marker, `-p`, PID); only the dead run's of this host.
    let pool_host = h.to_ascii_lowercase().replace('_', "-");
    let pool = |pid: u32, host: &str| {
        let name = format!("nfvi-verify-multus-{host}-p{pid}-17-0-198-19-255-0-24");
        json!({"kind": "IPPool", "metadata": {"name": name, "namespace": "kube-system"}})
    };
    spec.leftovers.extend([
        pool(dead, &pool_host),
        pool(me, &pool_host),
        pool(dead, "elsewhere"),
        json!({"kind": "IPPool", "metadata": {"name": "198-18-60-0-24", "namespace": "kube-system"}}),
    ]);
    let server = Server::start(spec);
    let dir = tempfile::tempdir().unwrap();
    let kc = kubeconfig(dir.path(), server.port, TOKEN);
    let target = write_file(
        dir.path(),
        "t.toml",
        format!("[kubernetes]\nkubeconfig = \"{}\"\n", kc.display()),
    );
    let clean = |dry: bool| {
        let mut cmd = nfvi();
        cmd.env_remove("KUBECONFIG")
            .arg("clean")
            .arg("--target")
            .arg(&target);
        if dry {
            cmd.arg("--dry-run");
        }
        let out = cmd.assert().success();
        String::from_utf8_lossy(&out.get_output().stderr).into_owned()
    };
    let deletes = || -> Vec<String> {
        server
            .requests()
            .into_iter()
            .filter(|r| r.starts_with("DELETE"))
            .map(|r| r.trim_end_matches('?').to_owned())
            .collect()
    };

    let said = clean(true);
    assert_contains(
        &said,
        &format!("would remove namespace nfvi-verify-probe-dead (of process {dead})"),
    );
    assert_contains(
        &said,
        "would remove DaemonSet nfvi-verify/nfvi-verify-agent-dead",
    );
    assert_contains(
        &said,
        &format!("would remove ClusterRoleBinding nfvi-verify-e2e-dead (of process {dead})"),
    );
    for kind in KINDS {
        assert_contains(
            &said,
            &format!("would remove namespace {kind}dead (of process {dead})"),
        );
    }
    assert_contains(
        &said,
        "would remove ConfigMap nfvi-verify/nfvi-verify-agent-dead",
    );
    let dead_pool =
        format!("kube-system/nfvi-verify-multus-{pool_host}-p{dead}-17-0-198-19-255-0-24");
    assert_contains(
        &said,
        &format!("would remove whereabouts IPPool {dead_pool} (of process {dead})"),
    );
    assert_eq!(said.matches("IPPool").count(), 1, "{said}");
    for kept in [
        "-live",
        "-away",
        "someone-elses",
        "production",
        "-container",
        "ClusterRoleBinding nfvi-verify ",
    ] {
        assert!(
            !said.contains(kept),
            "{kept} is not the harness's to remove: {said}"
        );
    }
    assert!(
        deletes().is_empty(),
        "a dry run deletes nothing: {:?}",
        deletes()
    );

    clean(false);
    let mut d = deletes();
    d.sort();
    let mut expected: Vec<String> = [
        "DELETE /api/v1/namespaces/nfvi-verify-probe-dead",
        "DELETE /api/v1/namespaces/nfvi-verify/configmaps/nfvi-verify-agent-dead",
        "DELETE /apis/apps/v1/namespaces/nfvi-verify/daemonsets/nfvi-verify-agent-dead",
        "DELETE /apis/rbac.authorization.k8s.io/v1/clusterrolebindings/nfvi-verify-e2e-dead",
    ]
    .map(|p| p.to_owned())
    .to_vec();
    expected.push(format!(
        "DELETE /apis/whereabouts.cni.cncf.io/v1alpha1/namespaces/{}",
        dead_pool.replacen('/', "/ippools/", 1)
    ));
    expected.extend(
        KINDS
            .iter()
            .map(|k| format!("DELETE /api/v1/namespaces/{k}dead")),
    );
    expected.sort();
    assert_eq!(d, expected, "exactly what the dead run left");

    // deploy/kubernetes grants every call `clean` made (a real API server answers 403
    // otherwise).
    let grants = Grants::load();
    for r in server.requests() {
        let a = access(&r);
        assert!(grants.allows(&a), "{r} needs {a:?}, not granted");
    }
}
