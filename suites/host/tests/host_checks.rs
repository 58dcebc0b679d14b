//! Host checks against recorded `/proc` and `/sys` trees (every outcome each check can
//! reach), and the link-type probes against this machine's real kernel.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use nfvi_harness::cancel::CancelToken;
use nfvi_harness::{CheckContext, Outcome, SkipKind, Status, Target};

fn write(root: &Path, rel: &str, text: &str) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

async fn run_with(root: &Path, target: Target, id: &str) -> Outcome {
    let checks = nfvi_suite_host::checks_with_root(root);
    let check = checks
        .iter()
        .find(|c| c.meta().id == id)
        .unwrap_or_else(|| panic!("no check {id}"));
    let cx = CheckContext::new(
        Arc::new(target),
        CancelToken::never(),
        Duration::from_secs(1),
    );
    let mut o = check.run(&cx).await;
    // The runner folds the commands a check ran into its evidence; do the same here.
    o.evidence.commands = cx.recorded_commands();
    o
}

fn local() -> Target {
    Target::local(&nfvi_harness::Areas::new(vec![Arc::new(
        nfvi_suite_host::HostArea,
    )]))
}

/// The local target with the host table changed by `f`.
fn with_host(f: impl FnOnce(&mut nfvi_suite_host::HostConfig)) -> Target {
    let mut target = local();
    let mut host = target.config::<nfvi_suite_host::HostConfig>().clone();
    f(&mut host);
    target.set_config(host);
    target
}

async fn run(root: &Path, id: &str) -> Outcome {
    run_with(root, local(), id).await
}

const VM_CPUINFO: &str = "processor\t: 0\nflags\t\t: fpu sse2 hypervisor\n\nprocessor\t: 1\nflags\t\t: fpu sse2 hypervisor\n";

#[tokio::test]
async fn hugepages_configured_missing_and_unsupported() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(
        root,
        "sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages",
        "0\n",
    );
    write(
        root,
        "sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages",
        "0\n",
    );
    let o = run(root, "host.hugepages.2mi").await;
    assert_eq!(o.status, Status::Failed);
    assert!(o.message.contains("hugepagesz=2M"), "{}", o.message);

    write(
        root,
        "sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages",
        "512\n",
    );
    write(
        root,
        "sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages",
        "500\n",
    );
    let o = run(root, "host.hugepages.2mi").await;
    assert_eq!(o.status, Status::Passed);
    assert_eq!(o.evidence.metrics["total"].value, 512.0);
    assert_eq!(o.evidence.metrics["free"].value, 500.0);

    let o = run(root, "host.hugepages.1gi").await;
    assert_eq!(o.status, Status::Failed);
    assert!(
        o.message.contains("offers no 1Gi hugepages"),
        "{}",
        o.message
    );
}

#[tokio::test]
async fn vm_sizing_applies_to_virtual_machines_only() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, "proc/cpuinfo", VM_CPUINFO);
    write(root, "proc/meminfo", "MemTotal:       24628428 kB\n");
    let o = run(root, "host.node.vcpus").await;
    assert_eq!(o.status, Status::Failed);
    assert_eq!(o.evidence.metrics["vcpus"].value, 2.0);
    let o = run(root, "host.node.memory").await;
    assert_eq!(o.status, Status::Failed);
    assert!(o.message.starts_with("25.2 GB of RAM"), "{}", o.message);

    write(root, "proc/meminfo", "MemTotal:       32827000 kB\n");
    assert_eq!(run(root, "host.node.memory").await.status, Status::Passed);

    write(
        root,
        "proc/cpuinfo",
        "processor\t: 0\nflags\t\t: fpu sse2 vmx\n",
    );
    let o = run(root, "host.node.vcpus").await;
    assert_eq!(
        (o.status, o.skip_kind()),
        (Status::Skipped, Some(SkipKind::NotApplicable))
    );
}

#[tokio::test]
async fn kvm_and_nested_virtualization() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, "proc/cpuinfo", "processor\t: 0\nflags\t\t: fpu vmx\n");
    let o = run(root, "host.virt.kvm").await;
    assert_eq!(o.status, Status::Failed);
    assert!(
        o.message.contains("load kvm_intel or kvm_amd"),
        "{}",
        o.message
    );
    write(root, "dev/kvm", "");
    write(root, "sys/module/kvm_intel/parameters/nested", "N\n");
    assert_eq!(run(root, "host.virt.kvm").await.status, Status::Passed);
    let o = run(root, "host.virt.nested").await;
    assert_eq!(o.status, Status::Failed);
    assert!(o.message.contains("nested=1"), "{}", o.message);
    write(root, "sys/module/kvm_intel/parameters/nested", "Y\n");
    assert_eq!(run(root, "host.virt.nested").await.status, Status::Passed);

    let empty = tempfile::tempdir().unwrap();
    let o = run(empty.path(), "host.virt.nested").await;
    assert_eq!(o.skip_kind(), Some(SkipKind::NotApplicable));
}

#[tokio::test]
async fn vhost_net_says_how_to_get_it() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, "proc/sys/kernel/osrelease", "6.1.0-test\n");
    write(
        root,
        "lib/modules/6.1.0-test/modules.dep",
        "kernel/drivers/vhost/vhost_net.ko: kernel/drivers/vhost/vhost.ko\n",
    );
    write(root, "lib/modules/6.1.0-test/modules.builtin", "");
    let o = run(root, "host.virt.vhost-net").await;
    assert_eq!(o.status, Status::Failed);
    assert!(o.message.contains("modprobe vhost_net"), "{}", o.message);
    write(root, "dev/vhost-net", "");
    assert_eq!(
        run(root, "host.virt.vhost-net").await.status,
        Status::Passed
    );
}

#[tokio::test]
async fn forwarding_and_bridge_netfilter_sysctls() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, "proc/sys/net/ipv4/ip_forward", "0\n");
    let o = run(root, "host.sysctl.ip-forward").await;
    assert_eq!(o.status, Status::Failed);
    assert!(
        o.message.contains("sysctl -w net.ipv4.ip_forward=1"),
        "{}",
        o.message
    );
    write(root, "proc/sys/net/ipv4/ip_forward", "1\n");
    assert_eq!(
        run(root, "host.sysctl.ip-forward").await.status,
        Status::Passed
    );

    let o = run(root, "host.sysctl.bridge-nf-call-iptables").await;
    assert_eq!(o.status, Status::Failed);
    assert!(o.message.contains("modprobe br_netfilter"), "{}", o.message);
    write(root, "proc/sys/net/bridge/bridge-nf-call-iptables", "1\n");
    assert_eq!(
        run(root, "host.sysctl.bridge-nf-call-iptables")
            .await
            .status,
        Status::Passed
    );

    let empty = tempfile::tempdir().unwrap();
    assert_eq!(
        run(empty.path(), "host.sysctl.ip-forward").await.status,
        Status::Error
    );
}

#[tokio::test]
async fn kernel_version_against_the_target_minimum() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, "proc/sys/kernel/osrelease", "4.14.0-old\n");
    assert_eq!(
        run(root, "host.kernel.version").await.status,
        Status::Failed
    );
    write(root, "proc/sys/kernel/osrelease", "6.1.0-13-amd64\n");
    assert_eq!(
        run(root, "host.kernel.version").await.status,
        Status::Passed
    );
    let target = with_host(|h| h.min_kernel = "6.2".into());
    assert_eq!(
        run_with(root, target, "host.kernel.version").await.status,
        Status::Failed
    );
}

#[tokio::test]
async fn package_drift_within_the_window() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let log = root.join("var/log/dpkg.log");
    let target = with_host(|h| h.dpkg_log = "/var/log/dpkg.log".into());
    write(
        root,
        "var/log/dpkg.log",
        "2020-01-01 00:00:00 upgrade docker.io:amd64 1 2\n",
    );
    let o = run_with(root, target.clone(), "host.packages.drift").await;
    assert_eq!(o.status, Status::Passed);

    let recent = (chrono::Local::now() - chrono::TimeDelta::hours(1)).format("%Y-%m-%d %H:%M:%S");
    std::fs::write(
        &log,
        format!("{recent} upgrade docker.io:amd64 20.10.24 20.10.25\n"),
    )
    .unwrap();
    let o = run_with(root, target.clone(), "host.packages.drift").await;
    assert_eq!(o.status, Status::Failed);
    assert_eq!(o.evidence.metrics["changed_packages"].value, 1.0);
    let (key, value) = o.evidence.properties.first().unwrap();
    assert!(key.ends_with("docker.io:amd64"), "{key}");
    assert_eq!(value, "upgrade 20.10.24 -> 20.10.25");

    let target = with_host(|h| {
        h.dpkg_log = "/var/log/dpkg.log".into();
        h.drift_window_hours = 0;
    });
    assert_eq!(
        run_with(root, target, "host.packages.drift").await.status,
        Status::Passed
    );
}

/// The drift check's probe (reading the dpkg log) removed: an empty log, or one in a format
/// the parser does not read, shows no change because nothing was observed. Neither may pass.
#[tokio::test]
async fn package_drift_does_not_pass_on_a_log_it_cannot_read() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let target = with_host(|h| h.dpkg_log = "/var/log/dpkg.log".into());
    for (name, text) in [
        ("empty log", ""),
        (
            "unreadable format",
            "22/09/2026 04:51 upgrade docker.io 1 2\nnot a dpkg line\n",
        ),
    ] {
        write(root, "var/log/dpkg.log", text);
        let o = run_with(root, target.clone(), "host.packages.drift").await;
        assert_eq!(o.status, Status::Error, "{name}: {}", o.message);
        assert!(
            o.message.contains("package changes were not observed"),
            "{name}: {}",
            o.message
        );
    }
}

/// "Bare metal, so not applicable" needs /proc/cpuinfo read: unreadable or flagless, the
/// VM floors are errors, never skipped or passed.
#[tokio::test]
async fn vm_floors_need_cpuinfo_observed() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    for id in ["host.node.vcpus", "host.node.memory"] {
        let o = run(root, id).await;
        assert_eq!(
            o.status,
            Status::Error,
            "{id} without cpuinfo: {}",
            o.message
        );
    }
    write(root, "proc/cpuinfo", "processor\t: 0\n");
    let o = run(root, "host.node.vcpus").await;
    assert_eq!(o.status, Status::Error, "flagless cpuinfo: {}", o.message);
}

/// The probes act on this machine's kernel. A missing link type must fail (the NFVI lacks a
/// feature), never error; veth and bridge exist in every kernel that runs containers.
#[tokio::test]
async fn link_probes_on_the_real_kernel() {
    if !nix::unistd::geteuid().is_root() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must run the host tests as root"
        );
        eprintln!("SKIPPED link_probes_on_the_real_kernel: needs root for unshare --net");
        return;
    }
    let root = Path::new("/");
    for id in ["host.kernel.link.veth", "host.kernel.link.bridge"] {
        let o = run(root, id).await;
        assert_eq!(o.status, Status::Passed, "{id}: {}", o.message);
        assert_eq!(o.evidence.commands.len(), 1);
        assert!(
            o.evidence.commands[0]
                .command
                .starts_with("unshare --net -- ip -batch -")
        );
    }
    for id in [
        "host.kernel.link.macvlan",
        "host.kernel.link.vxlan",
        "host.kernel.link.ipvlan",
        "host.kernel.link.vlan",
    ] {
        let o = run(root, id).await;
        assert!(
            matches!(o.status, Status::Passed | Status::Failed),
            "{id}: {:?} {}",
            o.status,
            o.message
        );
        if o.status == Status::Failed {
            assert!(o.message.contains("cannot create"), "{}", o.message);
        }
    }
    // Nothing leaked into the host namespace.
    let links = std::fs::read_dir("/sys/class/net").unwrap();
    for l in links {
        let name = l.unwrap().file_name().to_string_lossy().into_owned();
        assert!(
            !name.starts_with("nfv"),
            "probe link {name} leaked into the host namespace"
        );
    }
}
