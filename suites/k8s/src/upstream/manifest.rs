//! What the upstream checks create: a namespace per run, the e2e pod's ServiceAccount and its
//! ClusterRoleBinding to cluster-admin, the e2e pod (conformance image and output sidecar),
//! and kube-bench's Jobs. Every object carries the owner labels (`nfvi-verify clean`).

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Namespace, Pod, ServiceAccount};
use k8s_openapi::api::rbac::v1::ClusterRoleBinding;
use serde_json::{Value, json};

/// The e2e pod's containers.
pub(crate) const E2E_CONTAINER: &str = "e2e";
pub(crate) const OUTPUT_CONTAINER: &str = "output";
/// kube-bench's container.
pub(crate) const BENCH_CONTAINER: &str = "kube-bench";
/// The e2e pod's name and its service account's.
pub(crate) const E2E_POD: &str = "e2e";
pub(crate) const E2E_ACCOUNT: &str = "nfvi-verify-e2e";
/// Where the conformance image writes its results (`RESULTS_DIR`), an emptyDir both
/// containers mount.
pub(crate) const RESULTS_DIR: &str = "/tmp/results";

fn labels() -> Value {
    Value::Object(crate::clean::labels())
}

/// A namespace of the run; `privileged` admits kube-bench's hostPID, hostPath pods (Pod
/// Security Admission).
pub(crate) fn namespace(name: &str, privileged: bool) -> Namespace {
    let mut labels = crate::clean::labels();
    if privileged {
        labels.insert(
            "pod-security.kubernetes.io/enforce".into(),
            "privileged".into(),
        );
    }
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": name, "labels": labels}
    }))
    .expect("a valid Namespace")
}

pub(crate) fn service_account(namespace: &str) -> ServiceAccount {
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "ServiceAccount",
        "metadata": {"name": E2E_ACCOUNT, "namespace": namespace, "labels": labels()}
    }))
    .expect("a valid ServiceAccount")
}

/// cluster-admin for the e2e pod's account. Hydrophone (pkg/conformance/deploy.go) and the
/// image's own example (test/conformance/image/conformance-e2e.yaml of kubernetes/kubernetes)
/// bind a ClusterRole of their own: every verb on every resource of every group, and GET on
/// /metrics, /logs and /logs/*. The built-in cluster-admin grants all of that (and every
/// non-resource URL); binding it needs no right to create a ClusterRole with every verb
/// (which RBAC's escalation check would demand of the harness's own account).
pub(crate) fn cluster_role_binding(name: &str, namespace: &str) -> ClusterRoleBinding {
    serde_json::from_value(json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": {"name": name, "labels": labels()},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
        "subjects": [{"kind": "ServiceAccount", "name": E2E_ACCOUNT, "namespace": namespace}]
    }))
    .expect("a valid ClusterRoleBinding")
}

/// The output sidecar's script: waits for the `done` file the conformance image writes when
/// the suite ends, then prints junit_01.xml and e2e.log between marker lines.
fn output_script() -> String {
    format!(
        "while [ ! -f {RESULTS_DIR}/done ]; do sleep 5; done; \
         echo \"$MARK junit_01.xml\"; cat {RESULTS_DIR}/junit_01.xml; echo; \
         echo \"$MARK e2e.log\"; cat {RESULTS_DIR}/e2e.log; echo; \
         echo \"$MARK end\""
    )
}

/// What the e2e pod runs.
pub(crate) struct E2ePod<'a> {
    pub(crate) image: &'a str,
    pub(crate) output_image: &'a str,
    pub(crate) focus: &'a str,
    pub(crate) skip: &'a str,
    pub(crate) parallel: u32,
    /// The marker the sidecar puts before each file.
    pub(crate) mark: &'a str,
}

/// Where a pod's service account token, CA and namespace are mounted (in-cluster config).
pub(crate) const TOKEN_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

/// The restricted security context Hydrophone gives both containers of its pod
/// (pkg/conformance/deploy.go of kubernetes-sigs/hydrophone): non-root as nobody (65534),
/// no privilege escalation, every capability dropped, the runtime's default seccomp profile.
/// The conformance image's go-runner writes its results into the emptyDir (mode 0777) as
/// that user.
fn restricted() -> Value {
    json!({
        "allowPrivilegeEscalation": false,
        "capabilities": {"drop": ["ALL"]},
        "runAsNonRoot": true,
        "runAsUser": 65534,
        "seccompProfile": {"type": "RuntimeDefault"}
    })
}

/// The conformance container's environment, as the image's go-runner reads it
/// (test/conformance/image/go-runner/const.go and cmd.go of kubernetes/kubernetes):
/// E2E_FOCUS and E2E_SKIP become ginkgo's `--focus`/`--skip`, E2E_PROVIDER the suite's
/// `--provider` (`skeleton`, as Hydrophone sets it), RESULTS_DIR its `--report-dir` (where
/// e2e.test writes junit_01.xml, and where go-runner tees e2e.log and writes `done`).
/// E2E_PARALLEL is read only as `y`/`Y`/`true` (ginkgo's `--p`, its own choice of process
/// count): a number there is ignored and the suite runs serially, so the ginkgo processes go
/// through E2E_EXTRA_GINKGO_ARGS as `--procs=N`, as Hydrophone passes them. E2E_VERBOSITY
/// and E2E_USE_GO_RUNNER are not read by go-runner; they are set as the image's Dockerfile
/// and Hydrophone set them, for the run_e2e.sh of older images.
pub(crate) fn e2e_env(p: &E2ePod<'_>) -> Value {
    let mut env = vec![
        json!({"name": "E2E_FOCUS", "value": p.focus}),
        json!({"name": "E2E_SKIP", "value": p.skip}),
        json!({"name": "E2E_PROVIDER", "value": "skeleton"}),
        json!({"name": "E2E_USE_GO_RUNNER", "value": "true"}),
        json!({"name": "E2E_VERBOSITY", "value": "4"}),
        json!({"name": "RESULTS_DIR", "value": RESULTS_DIR}),
    ];
    if p.parallel > 1 {
        env.push(
            json!({"name": "E2E_EXTRA_GINKGO_ARGS", "value": format!("--procs={}", p.parallel)}),
        );
    }
    Value::Array(env)
}

/// The e2e pod, as Hydrophone builds it (pkg/conformance/deploy.go of
/// kubernetes-sigs/hydrophone): the conformance image run by its own ENTRYPOINT
/// (`kubeconformance`, the go-runner: test/conformance/image/Dockerfile; `/gorunner` is a
/// deprecated copy), the focus, skip and parallelism in its environment ([`e2e_env`]), the
/// results in an emptyDir at /tmp/results, both containers under [`restricted`], every taint
/// tolerated. Hydrophone's output container sleeps and the results are copied out with exec;
/// here the sidecar prints them to its log once go-runner writes `done` (it writes it last,
/// also when the suite failed: go-runner's main.go, `defer saveResults`), so no exec is
/// needed. The account's token is bound to cluster-admin, so it is not mounted into every
/// container (`automountServiceAccountToken: false`): a projected volume like the default
/// one (token, the cluster's CA as ca.crt, the namespace) is mounted read-only into the
/// conformance container only; the output sidecar gets none.
pub(crate) fn e2e_pod(p: &E2ePod<'_>) -> Pod {
    let results = json!({"name": "results", "mountPath": RESULTS_DIR});
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": E2E_POD, "labels": labels()},
        "spec": {
            "serviceAccountName": E2E_ACCOUNT,
            "automountServiceAccountToken": false,
            "restartPolicy": "Never",
            "tolerations": [{"operator": "Exists"}],
            "containers": [
                {
                    "name": E2E_CONTAINER, "image": p.image, "imagePullPolicy": "IfNotPresent",
                    "env": e2e_env(p),
                    "securityContext": restricted(),
                    "volumeMounts": [
                        results.clone(),
                        {"name": "kube-api-access", "mountPath": TOKEN_DIR, "readOnly": true}
                    ]
                },
                {
                    "name": OUTPUT_CONTAINER, "image": p.output_image, "imagePullPolicy": "IfNotPresent",
                    "command": ["/bin/sh", "-c", output_script()],
                    "env": [{"name": "MARK", "value": p.mark}],
                    "securityContext": restricted(),
                    "volumeMounts": [results],
                    "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"memory": "64Mi"}}
                }
            ],
            "volumes": [
                {"name": "results", "emptyDir": {}},
                {"name": "kube-api-access", "projected": {"defaultMode": 420, "sources": [
                    {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                    {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                    {"downwardAPI": {"items": [
                        {"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}
                    ]}}
                ]}}
            ]
        }
    }))
    .expect("a valid Pod")
}

/// Which kube-bench run: on a control-plane node (`master`, with the control plane's,
/// etcd's and the policies' targets) or on a worker (`node`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BenchRole {
    Master,
    Node,
}

impl BenchRole {
    pub(crate) fn name(self) -> &'static str {
        match self {
            BenchRole::Master => "master",
            BenchRole::Node => "node",
        }
    }

    /// kube-bench's `--targets`: on a control-plane node its own targets and `policies`
    /// (RBAC and service accounts, section 5), which RA2's access control needs.
    pub(crate) fn targets(self) -> &'static str {
        match self {
            BenchRole::Master => "master,controlplane,etcd,policies",
            BenchRole::Node => "node",
        }
    }

    /// The host paths kube-bench reads, mounted read-only (as job-master.yaml and
    /// job-node.yaml mount them): (volume, host path, mount path).
    fn mounts(self) -> &'static [(&'static str, &'static str, &'static str)] {
        // job.yaml of aquasecurity/kube-bench (v0.7.1) mounts these read-only, /var/lib/cni
        // among them (the CNI checks of the node section read it); job-master.yaml and
        // job-node.yaml mount subsets of them.
        const COMMON: &[(&str, &str, &str)] = &[
            ("var-lib-cni", "/var/lib/cni", "/var/lib/cni"),
            ("var-lib-kubelet", "/var/lib/kubelet", "/var/lib/kubelet"),
            ("etc-systemd", "/etc/systemd", "/etc/systemd"),
            ("lib-systemd", "/lib/systemd/", "/lib/systemd/"),
            ("etc-kubernetes", "/etc/kubernetes", "/etc/kubernetes"),
            ("usr-bin", "/usr/bin", "/usr/local/mount-from-host/bin"),
            ("etc-cni-netd", "/etc/cni/net.d/", "/etc/cni/net.d/"),
            ("opt-cni-bin", "/opt/cni/bin/", "/opt/cni/bin/"),
        ];
        const MASTER: &[(&str, &str, &str)] = &[
            ("var-lib-cni", "/var/lib/cni", "/var/lib/cni"),
            ("var-lib-etcd", "/var/lib/etcd", "/var/lib/etcd"),
            ("var-lib-kubelet", "/var/lib/kubelet", "/var/lib/kubelet"),
            (
                "var-lib-kube-scheduler",
                "/var/lib/kube-scheduler",
                "/var/lib/kube-scheduler",
            ),
            (
                "var-lib-kube-controller-manager",
                "/var/lib/kube-controller-manager",
                "/var/lib/kube-controller-manager",
            ),
            ("etc-systemd", "/etc/systemd", "/etc/systemd"),
            ("lib-systemd", "/lib/systemd/", "/lib/systemd/"),
            ("srv-kubernetes", "/srv/kubernetes", "/srv/kubernetes"),
            ("etc-kubernetes", "/etc/kubernetes", "/etc/kubernetes"),
            ("usr-bin", "/usr/bin", "/usr/local/mount-from-host/bin"),
            ("etc-cni-netd", "/etc/cni/net.d/", "/etc/cni/net.d/"),
            ("opt-cni-bin", "/opt/cni/bin/", "/opt/cni/bin/"),
        ];
        match self {
            BenchRole::Master => MASTER,
            BenchRole::Node => COMMON,
        }
    }
}

/// kube-bench's Job on `node` (by its hostname label): hostPID, the host's configuration
/// read-only, `--json` to its log; on a control-plane node its taints tolerated.
pub(crate) fn bench_job(name: &str, role: BenchRole, node: &str, image: &str) -> Job {
    let mut mounts = Vec::new();
    let mut volumes = Vec::new();
    for (volume, host, path) in role.mounts() {
        mounts.push(json!({"name": volume, "mountPath": path, "readOnly": true}));
        volumes.push(json!({"name": volume, "hostPath": {"path": host}}));
    }
    let tolerations = match role {
        BenchRole::Master => json!([
            {"key": "node-role.kubernetes.io/control-plane", "operator": "Exists", "effect": "NoSchedule"},
            {"key": "node-role.kubernetes.io/master", "operator": "Exists", "effect": "NoSchedule"}
        ]),
        BenchRole::Node => json!([]),
    };
    serde_json::from_value(json!({
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": name, "labels": labels()},
        "spec": {
            "backoffLimit": 0,
            "ttlSecondsAfterFinished": 3600,
            "template": {
                "metadata": {"labels": labels()},
                "spec": {
                    "hostPID": true,
                    "restartPolicy": "Never",
                    "automountServiceAccountToken": false,
                    "nodeSelector": {"kubernetes.io/hostname": node},
                    "tolerations": tolerations,
                    "containers": [{
                        "name": BENCH_CONTAINER, "image": image, "imagePullPolicy": "IfNotPresent",
                        "command": ["kube-bench", "run", "--targets", role.targets(), "--json"],
                        "volumeMounts": mounts
                    }],
                    "volumes": volumes
                }
            }
        }
    }))
    .expect("a valid Job")
}
