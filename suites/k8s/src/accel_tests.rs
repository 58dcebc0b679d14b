//! The tests of [`super`] (accel.rs).

use super::*;
use nfvi_harness::Status;

fn worker(name: &str, kubelet: &str, alloc: &[(&str, &str)]) -> Worker {
    let mut allocatable: BTreeMap<String, String> = [
        ("cpu", "63"),
        ("memory", "257000000Ki"),
        ("pods", "110"),
        ("ephemeral-storage", "400Gi"),
        ("hugepages-1Gi", "16Gi"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    allocatable.extend(
        alloc
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    Worker {
        name: name.into(),
        kubelet: kubelet.into(),
        allocatable,
    }
}

fn defaults() -> Vec<String> {
    crate::area::default_sriov_resources()
}

#[test]
fn quantities_and_names() {
    for (q, want) in [
        ("8", true),
        ("0", false),
        ("", false),
        ("1k", true),
        ("500m", true),
        ("0.0", false),
        ("-1", false),
        ("8 VFs", false),
        ("NaN", false),
        ("1e3", true),
        ("1E", true),
        ("1e", false),
        ("1ex", false),
    ] {
        assert_eq!(positive(q), want, "{q:?}");
    }
    for (n, want) in [
        ("intel.com/intel_sriov_netdevice", true),
        ("cpu", false),
        ("hugepages-2Mi", false),
        ("attachable-volumes-csi-x", false),
        ("kubernetes.io/batch-cpu", false),
        ("node.kubernetes.io/x", false),
        ("xilinx.com/fpga-u250", true),
    ] {
        assert_eq!(is_extended(n), want, "{n}");
    }
    assert_eq!(kubelet_minor("v1.33.4"), Some(33));
    assert_eq!(kubelet_minor("v1.25.0-eks-1"), Some(25));
    assert_eq!(kubelet_minor("v2.1.0"), None);
    assert_eq!(kubelet_minor(""), None);
}

#[test]
fn sriov_plugin_table() {
    let vf = ("intel.com/intel_sriov_netdevice", "8");
    let dpdk = ("intel.com/intel_sriov_dpdk", "4");
    let ocp = ("openshift.io/ens1f0vfs", "16");
    let fpga = ("xilinx.com/fpga-u250", "1");
    let plugin = Ok(vec![
        "kube-system/kube-sriov-device-plugin-amd64 (3/3 ready)".to_owned(),
    ]);
    let none: Result<Vec<String>, String> = Ok(vec![]);
    type Row = (&'static str, Vec<Worker>, Vec<String>, Status, &'static str);
    let rows: Vec<Row> = vec![
        (
            "nothing observed",
            vec![],
            defaults(),
            Status::Failed,
            "no worker node",
        ),
        (
            "every worker has VFs",
            vec![
                worker("w0", "v1.33.4", &[vf]),
                worker("w1", "v1.33.4", &[dpdk, ocp]),
            ],
            defaults(),
            Status::Passed,
            "w0 intel.com/intel_sriov_netdevice=8; w1 intel.com/intel_sriov_dpdk=4, openshift.io/ens1f0vfs=16",
        ),
        (
            "one worker without",
            vec![
                worker("w0", "v1.33.4", &[vf]),
                worker("w1", "v1.33.4", &[fpga]),
            ],
            defaults(),
            Status::Failed,
            "w1 (extended resources: xilinx.com/fpga-u250=1)",
        ),
        (
            "a zero pool is no pool",
            vec![worker(
                "w0",
                "v1.33.4",
                &[("intel.com/intel_sriov_netdevice", "0")],
            )],
            defaults(),
            Status::Failed,
            "w0 (extended resources: none)",
        ),
        (
            "a pool the patterns do not name",
            vec![worker("w0", "v1.33.4", &[("example.com/vfpool", "8")])],
            defaults(),
            Status::Failed,
            "matching kubernetes.sriov_resources",
        ),
        (
            "the patterns are the operator's",
            vec![worker("w0", "v1.33.4", &[("example.com/vfpool", "8")])],
            vec!["example.com/vf*".to_owned()],
            Status::Passed,
            "example.com/vfpool=8",
        ),
        (
            "no patterns",
            vec![worker("w0", "v1.33.4", &[vf])],
            vec![],
            Status::Error,
            "kubernetes.sriov_resources is empty",
        ),
        (
            "built-in names never match a broad pattern",
            vec![worker("w0", "v1.33.4", &[])],
            vec!["*".to_owned()],
            Status::Failed,
            "w0 (extended resources: none)",
        ),
    ];
    for (what, workers, patterns, want, words) in rows {
        let o = judge_sriov_plugin(&workers, &patterns, &plugin);
        assert_eq!(o.status, want, "{what}: {}", o.message);
        assert!(
            o.message.contains(words),
            "{what}: `{words}` not in {}",
            o.message
        );
    }
    // The DaemonSet is evidence, not the judgement.
    let o = judge_sriov_plugin(&[worker("w0", "v1.33.4", &[vf])], &defaults(), &none);
    assert_eq!(o.status, Status::Passed);
    assert_eq!(
        o.evidence.properties["SR-IOV device plugin DaemonSet"],
        "no DaemonSet labelled app=sriovdp"
    );
}

#[test]
fn device_plugins_table() {
    let rows: Vec<(&str, Vec<Worker>, Status, &str)> = vec![
        ("nothing observed", vec![], Status::Failed, "no worker node"),
        (
            "an FPGA and a VF pool",
            vec![
                worker("w0", "v1.33.4", &[("xilinx.com/fpga-u250", "1")]),
                worker("w1", "v1.33.4", &[("intel.com/intel_sriov_netdevice", "8")]),
            ],
            Status::Passed,
            "the DevicePlugins feature gate is on there (GA and locked on since Kubernetes 1.26",
        ),
        (
            "only built-in resources",
            vec![worker("w0", "v1.33.4", &[])],
            Status::Failed,
            "w0 (kubelet v1.33.4: DevicePlugins is locked on)",
        ),
        (
            "an old kubelet may have the gate off",
            vec![worker("w0", "v1.25.2", &[("intel.com/qat", "0")])],
            Status::Failed,
            "DevicePlugins may be switched off with --feature-gates there",
        ),
    ];
    for (what, workers, want, words) in rows {
        let o = judge_device_plugins(&workers);
        assert_eq!(o.status, want, "{what}: {}", o.message);
        assert!(
            o.message.contains(words),
            "{what}: `{words}` not in {}",
            o.message
        );
    }
}

fn nad(name: &str, config: &str, resource: Option<&str>) -> Nad {
    Nad {
        name: name.into(),
        config: config.into(),
        resource: resource.map(str::to_owned),
    }
}

#[test]
fn accelerated_cni_table() {
    let sriov = r#"{"cniVersion":"1.0.0","name":"sriov-net","type":"sriov","vlan":100,"ipam":{"type":"whereabouts","range":"198.18.70.0/24"}}"#;
    let vpp = r#"{"cniVersion":"0.3.1","name":"u","type":"userspace","host":{"engine":"vpp","iftype":"memif"}}"#;
    let conflist = r#"{"cniVersion":"1.0.0","name":"l","plugins":[{"type":"macvlan","master":"eth0"},{"type":"tuning"}]}"#;
    let offload = r#"{"cniVersion":"0.4.0","name":"o","type":"ovs","bridge":"br-hw"}"#;
    let hostdev =
        r#"{"cniVersion":"0.4.0","name":"h","type":"host-device","pciBusID":"0000:3b:02.1"}"#;
    type Row = (&'static str, Result<Vec<Nad>, String>, Status, &'static str);
    let rows: Vec<Row> = vec![
        (
            "no Multus",
            Err(
                "the NetworkAttachmentDefinition API (k8s.cni.cncf.io/v1) is not served (404)"
                    .into(),
            ),
            Status::Failed,
            "is not served (404)",
        ),
        (
            "nothing observed",
            Ok(vec![]),
            Status::Failed,
            "no NetworkAttachmentDefinition exists",
        ),
        (
            "sriov",
            Ok(vec![nad(
                "a/s",
                sriov,
                Some("intel.com/intel_sriov_netdevice"),
            )]),
            Status::Passed,
            "a/s (sriov (SR-IOV VF))",
        ),
        (
            "vpp",
            Ok(vec![nad("a/u", vpp, None)]),
            Status::Passed,
            "a/u (userspace (vpp))",
        ),
        (
            "host-device with a PCI address",
            Ok(vec![nad("a/h", hostdev, None)]),
            Status::Passed,
            "host-device (PCI 0000:3b:02.1)",
        ),
        (
            "ovs with a VF pool",
            Ok(vec![nad("a/o", offload, Some("mellanox.com/cx6_vfs"))]),
            Status::Passed,
            "ovs with offload",
        ),
        (
            "plain ovs and macvlan",
            Ok(vec![nad("a/o", offload, None), nad("b/l", conflist, None)]),
            Status::Failed,
            "types seen: macvlan, ovs, tuning",
        ),
        (
            "hostile configs",
            Ok(vec![
                nad("x/1", "not json", None),
                nad("x/2", "[1,2]", None),
                nad("x/3", r#"{"plugins":"no"}"#, None),
                nad("x/4", r#"{"type":7}"#, None),
            ]),
            Status::Failed,
            "types seen: (no type)",
        ),
    ];
    for (what, nads, want, words) in rows {
        let o = judge_accelerated_cni(&nads);
        assert_eq!(o.status, want, "{what}: {}", o.message);
        assert!(
            o.message.contains(words),
            "{what}: `{words}` not in {}",
            o.message
        );
    }
}
