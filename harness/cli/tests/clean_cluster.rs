//! `nfvi-verify clean` against a scripted API server (no cluster runs on these machines):
//! the probe namespaces and the node agent's DaemonSet and ConfigMap of a run whose process
//! is gone are deleted; those of a live process, of another host, or without the
//! harness's labels are not.

mod common;
mod scripted_k8s;

use common::{assert_contains, nfvi, write_file};
use scripted_k8s::{Server, Spec, TOKEN, kubeconfig};
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
        "would remove ConfigMap nfvi-verify/nfvi-verify-agent-dead",
    );
    for kept in [
        "-live",
        "-away",
        "someone-elses",
        "production",
        "-container",
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
    assert_eq!(
        d,
        [
            "DELETE /api/v1/namespaces/nfvi-verify-probe-dead",
            "DELETE /api/v1/namespaces/nfvi-verify/configmaps/nfvi-verify-agent-dead",
            "DELETE /apis/apps/v1/namespaces/nfvi-verify/daemonsets/nfvi-verify-agent-dead",
        ]
        .map(|p| p.to_owned())
        .to_vec(),
        "exactly what the dead run left"
    );
}
