//! Collects the host's part of the target inventory: the node's identity and the versions of
//! what runs the NFVI (kernel, OS, networking and container packages). Every report carries it.

use std::time::Duration;

use indexmap::IndexMap;
use nfvi_harness::cancel::CancelToken;
use nfvi_harness::inventory::Inventory;
use nfvi_harness::process::{self, CommandSpec};

use crate::parse;

/// Packages whose versions describe an NFVI node; only installed ones are recorded.
const PACKAGES: &[&str] = &[
    "linux-image-amd64",
    "linux-image-arm64",
    "iproute2",
    "iptables",
    "nftables",
    "containernetworking-plugins",
    "docker.io",
    "docker-ce",
    "containerd",
    "containerd.io",
    "runc",
    "cri-o",
    "kubelet",
    "kubeadm",
    "kubectl",
    "openvswitch-switch",
    "qemu-system-x86",
    "libvirt-daemon",
    "chrony",
    "systemd-timesyncd",
    "docker-registry",
];

async fn output(spec: CommandSpec) -> Option<(String, String)> {
    let out = process::run(
        &spec.timeout(Duration::from_secs(5)),
        &CancelToken::never(),
        Duration::from_secs(1),
    )
    .await
    .ok()?;
    Some((out.stdout_text(), out.stderr_text()))
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or("").trim().to_owned()
}

/// Fills in the local node: identity, kernel, OS, CPUs, memory, hypervisor, the versions of
/// the NFVI packages and of `dockerd`. Never fails: what cannot be read is left empty. The
/// other areas add their own components (the Docker engine, the CNI plugins).
pub async fn collect(inventory: &mut Inventory) {
    let read =
        |p: &'static str| async move { tokio::fs::read_to_string(p).await.unwrap_or_default() };
    let cpuinfo = read("/proc/cpuinfo").await;
    let os_release = read("/etc/os-release").await;
    let os = os_release
        .lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .map(|v| v.trim_matches('"').to_owned())
        .unwrap_or_default();
    let hypervisor = parse::cpu_flags(&cpuinfo).contains(&"hypervisor").then(|| {
        let vendor = std::fs::read_to_string("/sys/class/dmi/id/sys_vendor").unwrap_or_default();
        if vendor.trim().is_empty() {
            "unknown hypervisor".to_owned()
        } else {
            vendor.trim().to_owned()
        }
    });

    let mut packages = IndexMap::new();
    if let Some((stdout, _)) = output(
        CommandSpec::new("dpkg-query")
            .args(["-W", "-f", "${Package}\t${Version}\t${db:Status-Abbrev}\n"])
            .args(PACKAGES.iter().copied()),
    )
    .await
    {
        for line in stdout.lines() {
            let mut f = line.split('\t');
            if let (Some(p), Some(v), Some(status)) = (f.next(), f.next(), f.next())
                && status.starts_with("ii")
            {
                packages.insert(p.to_owned(), v.to_owned());
            }
        }
    }

    if let Some((stdout, _)) = output(CommandSpec::new("dockerd").args(["--version"])).await
        && !stdout.is_empty()
    {
        inventory
            .components
            .insert("dockerd".to_owned(), first_line(&stdout));
    }

    let meminfo = read("/proc/meminfo").await;
    inventory.hostname = read("/proc/sys/kernel/hostname").await.trim().to_owned();
    inventory.kernel = read("/proc/sys/kernel/osrelease").await.trim().to_owned();
    inventory.os = os;
    inventory.arch = std::env::consts::ARCH.to_owned();
    inventory.cpus = parse::cpu_count(&cpuinfo);
    inventory.memory_bytes = parse::meminfo_bytes(&meminfo, "MemTotal").unwrap_or(0);
    inventory.hypervisor = hypervisor;
    inventory.packages.extend(packages);
}
