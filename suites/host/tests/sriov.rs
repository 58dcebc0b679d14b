//! The SR-IOV host checks (host.sriov.capable-nics, host.sriov.vfs-created) against fake
//! sysfs trees laid out as the kernel lays them out (interfaces with a `device` directory,
//! `driver` and `subsystem` links, `sriov_totalvfs` and `sriov_numvfs`), and against this
//! machine's real /sys.

use std::os::unix::fs::symlink;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use nfvi_harness::cancel::CancelToken;
use nfvi_harness::target::NodeProfile;
use nfvi_harness::{CheckContext, Outcome, SkipKind, Status, Target};

const CAPABLE: &str = "host.sriov.capable-nics";
const VFS: &str = "host.sriov.vfs-created";

fn target(profile: NodeProfile) -> Target {
    let mut t = Target::local(&nfvi_harness::Areas::new(vec![Arc::new(
        nfvi_suite_host::HostArea,
    )]));
    t.profile = profile;
    t
}

async fn run(root: &Path, profile: NodeProfile, id: &str) -> Outcome {
    let checks = nfvi_suite_host::checks_with_root(root);
    let check = checks
        .iter()
        .find(|c| c.meta().id == id)
        .unwrap_or_else(|| panic!("no check {id}"));
    assert_eq!(check.meta().side_effects.split(':').next(), Some("none"));
    let cx = CheckContext::new(
        Arc::new(target(profile)),
        CancelToken::never(),
        Duration::from_secs(5),
    );
    check.run(&cx).await
}

/// An interface of /sys/class/net: `device: None` for a virtual one.
struct Iface<'a> {
    name: &'a str,
    device: Option<Device<'a>>,
}

struct Device<'a> {
    driver: &'a str,
    bus: &'a str,
    /// (sriov_totalvfs, sriov_numvfs) file contents; `None`: no SR-IOV files.
    sriov: Option<(&'a str, &'a str)>,
    vf_of: Option<&'a str>,
}

fn tree(root: &Path, ifaces: &[Iface<'_>]) {
    let class = root.join("sys/class/net");
    std::fs::create_dir_all(&class).unwrap();
    for i in ifaces {
        let dir = class.join(i.name);
        std::fs::create_dir_all(&dir).unwrap();
        let Some(d) = &i.device else { continue };
        let dev = dir.join("device");
        std::fs::create_dir_all(&dev).unwrap();
        symlink(
            format!("../../../bus/{}/drivers/{}", d.bus, d.driver),
            dev.join("driver"),
        )
        .unwrap();
        symlink(format!("../../../bus/{}", d.bus), dev.join("subsystem")).unwrap();
        if let Some((total, num)) = d.sriov {
            std::fs::write(dev.join("sriov_totalvfs"), total).unwrap();
            std::fs::write(dev.join("sriov_numvfs"), num).unwrap();
        }
        if let Some(pf) = d.vf_of {
            symlink(format!("../../{pf}/device"), dev.join("physfn")).unwrap();
        }
    }
}

fn lo() -> Iface<'static> {
    Iface {
        name: "lo",
        device: None,
    }
}

fn virtio() -> Iface<'static> {
    Iface {
        name: "eth0",
        device: Some(Device {
            driver: "virtio_net",
            bus: "virtio",
            sriov: None,
            vf_of: None,
        }),
    }
}

fn pf(name: &'static str, total: &'static str, num: &'static str) -> Iface<'static> {
    Iface {
        name,
        device: Some(Device {
            driver: "ice",
            bus: "pci",
            sriov: Some((total, num)),
            vf_of: None,
        }),
    }
}

fn assert_not_applicable(o: &Outcome) {
    assert_eq!(
        (o.status, o.skip_kind()),
        (Status::Skipped, Some(SkipKind::NotApplicable)),
        "{}",
        o.message
    );
}

#[tokio::test]
async fn a_node_with_vfs_passes_both() {
    let dir = tempfile::tempdir().unwrap();
    let vf = Iface {
        name: "ens1f0v0",
        device: Some(Device {
            driver: "iavf",
            bus: "pci",
            sriov: None,
            vf_of: Some("ens1f0"),
        }),
    };
    tree(
        dir.path(),
        &[
            lo(),
            virtio(),
            pf("ens1f0", "128\n", "8\n"),
            pf("ens1f1", "128\n", "0\n"),
            vf,
        ],
    );
    for profile in [NodeProfile::NetworkIntensive, NodeProfile::Basic] {
        let o = run(dir.path(), profile, CAPABLE).await;
        assert_eq!(o.status, Status::Passed, "{}", o.message);
        assert!(
            o.message
                .starts_with("2 SR-IOV-capable NIC(s): ens1f0 (ice on pci, 8 of 128 VFs created)"),
            "{}",
            o.message
        );
        assert_eq!(
            o.evidence.properties["nic ens1f0v0"],
            "ens1f0v0 (iavf on pci, a VF itself, no SR-IOV (no sriov_totalvfs))"
        );
        let o = run(dir.path(), profile, VFS).await;
        assert_eq!(o.status, Status::Passed, "{}", o.message);
        assert_eq!(o.evidence.metrics["vfs_created"].value, 8.0);
    }
}

#[tokio::test]
async fn capable_nics_without_vfs_fail_only_the_vf_check() {
    let dir = tempfile::tempdir().unwrap();
    tree(dir.path(), &[lo(), pf("ens1f0", "64\n", "0\n")]);
    let ni = NodeProfile::NetworkIntensive;
    assert_eq!(run(dir.path(), ni, CAPABLE).await.status, Status::Passed);
    let o = run(dir.path(), ni, VFS).await;
    assert_eq!(o.status, Status::Failed, "{}", o.message);
    assert!(
        o.message
            .contains("ens1f0 (ice on pci, 0 of 64 VFs created)")
            && o.message
                .contains("/sys/class/net/ens1f0/device/sriov_numvfs"),
        "{}",
        o.message
    );
    assert_not_applicable(&run(dir.path(), NodeProfile::Basic, VFS).await);
}

/// This VM's shape: one virtio NIC, loopback, no SR-IOV anywhere.
#[tokio::test]
async fn a_virtio_only_node_fails_on_network_intensive_and_does_not_apply_on_basic() {
    let dir = tempfile::tempdir().unwrap();
    tree(dir.path(), &[lo(), virtio()]);
    for id in [CAPABLE, VFS] {
        let o = run(dir.path(), NodeProfile::NetworkIntensive, id).await;
        assert_eq!(o.status, Status::Failed, "{id}: {}", o.message);
        assert!(
            o.message
                .contains("eth0 (virtio_net on virtio, no SR-IOV (no sriov_totalvfs))"),
            "{id}: {}",
            o.message
        );
        let o = run(dir.path(), NodeProfile::Basic, id).await;
        assert_not_applicable(&o);
        assert!(
            o.message.contains("this target's profile is `basic`"),
            "{}",
            o.message
        );
    }
}

#[tokio::test]
async fn no_physical_nic_is_named_as_such() {
    let dir = tempfile::tempdir().unwrap();
    tree(dir.path(), &[lo()]);
    let o = run(dir.path(), NodeProfile::NetworkIntensive, CAPABLE).await;
    assert_eq!(o.status, Status::Failed);
    assert!(
        o.message
            .starts_with("no physical NIC: /sys/class/net holds only lo (virtual)"),
        "{}",
        o.message
    );
}

#[tokio::test]
async fn unreadable_sysfs_is_an_error_never_a_pass() {
    // No /sys/class/net at all.
    let dir = tempfile::tempdir().unwrap();
    for profile in [NodeProfile::NetworkIntensive, NodeProfile::Basic] {
        for id in [CAPABLE, VFS] {
            let o = run(dir.path(), profile, id).await;
            assert_eq!(o.status, Status::Error, "{id}");
            assert!(
                o.message.starts_with("cannot list /sys/class/net"),
                "{}",
                o.message
            );
        }
    }
    // Garbage in the count files.
    tree(dir.path(), &[pf("ens1f0", "lots\n", "0\n")]);
    let o = run(dir.path(), NodeProfile::NetworkIntensive, CAPABLE).await;
    assert_eq!(o.status, Status::Error, "{}", o.message);
    assert!(
        o.message
            .contains("sriov_totalvfs is not a count: \"lots\""),
        "{}",
        o.message
    );
}

/// This machine's own /sys: whatever it holds, the checks decide from it (no error), and
/// they pass only where a NIC shows `sriov_totalvfs` > 0.
#[tokio::test]
async fn this_machines_sysfs() {
    let capable = std::fs::read_dir("/sys/class/net")
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read_to_string(e.path().join("device/sriov_totalvfs")).ok())
        .any(|t| t.trim().parse::<u32>().is_ok_and(|n| n > 0));
    let o = run(Path::new("/"), NodeProfile::NetworkIntensive, CAPABLE).await;
    let want = if capable {
        Status::Passed
    } else {
        Status::Failed
    };
    assert_eq!(o.status, want, "{}", o.message);
    eprintln!(
        "{CAPABLE} here (network-intensive): {:?} {}",
        o.status, o.message
    );
    let o = run(Path::new("/"), NodeProfile::Basic, VFS).await;
    assert_ne!(o.status, Status::Error, "{}", o.message);
    eprintln!("{VFS} here (basic): {:?} {}", o.status, o.message);
}
