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

/// The value of `key` in os-release(5) text: `KEY=VALUE` lines whose values are shell-quoted,
/// unquoted here through shlex. A line the shell would reject (an unterminated quote) or that
/// is more than one word is skipped, as are comments and other lines; the last assignment wins.
pub(crate) fn os_release_value(text: &str, key: &str) -> Option<String> {
    text.lines()
        .filter_map(|l| l.trim().split_once('='))
        .filter(|(k, _)| *k == key)
        .filter_map(|(_, v)| match shlex::split(v).as_deref() {
            Some([value]) => Some(value.clone()),
            Some([]) => Some(String::new()),
            _ => None,
        })
        .next_back()
}

/// Fills in the local node: identity, kernel, OS, CPUs, memory, hypervisor, the versions of
/// the NFVI packages and of `dockerd`. Never fails: what cannot be read is left empty. The
/// other areas add their own components (the Docker engine, the CNI plugins).
pub async fn collect(inventory: &mut Inventory) {
    let read =
        |p: &'static str| async move { tokio::fs::read_to_string(p).await.unwrap_or_default() };
    let cpuinfo = read("/proc/cpuinfo").await;
    let os_release = read("/etc/os-release").await;
    let os = os_release_value(&os_release, "PRETTY_NAME").unwrap_or_default();
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

#[cfg(test)]
mod tests {
    use super::os_release_value;

    #[test]
    fn os_release_values_are_unquoted_as_the_shell_does() {
        let text = concat!(
            "# os-release\n",
            "NAME=\"Debian GNU/Linux\"\n",
            "ID=debian\n",
            "VERSION='12 (bookworm)'\n",
            "PRETTY_NAME=\"Ubuntu \\\"Noble\\\" 24.04 \\$HOME \\`x\\`\"\n",
            "VARIANT='it'\\''s'\n",
            "BUILD_ID=a\\ b\n",
            "VERSION_CODENAME=\n",
            "BROKEN=\"unterminated\n",
            "SPLIT=two words\n",
            "ID_LIKE=\"\"\n",
        );
        let get = |k| os_release_value(text, k);
        assert_eq!(get("NAME").as_deref(), Some("Debian GNU/Linux"));
        assert_eq!(get("ID").as_deref(), Some("debian"));
        assert_eq!(get("VERSION").as_deref(), Some("12 (bookworm)"));
        assert_eq!(
            get("PRETTY_NAME").as_deref(),
            Some("Ubuntu \"Noble\" 24.04 $HOME `x`")
        );
        assert_eq!(get("VARIANT").as_deref(), Some("it's"));
        assert_eq!(get("BUILD_ID").as_deref(), Some("a b"));
        assert_eq!(get("VERSION_CODENAME").as_deref(), Some(""));
        assert_eq!(get("ID_LIKE").as_deref(), Some(""));
        assert_eq!(get("BROKEN"), None);
        assert_eq!(get("SPLIT"), None);
        assert_eq!(get("ABSENT"), None);
        // A later valid line wins over a broken one; hostile text never panics.
        assert_eq!(
            os_release_value("PRETTY_NAME='a\nPRETTY_NAME=b\n", "PRETTY_NAME").as_deref(),
            Some("b")
        );
        for hostile in [
            "=",
            "PRETTY_NAME=\\",
            "PRETTY_NAME=\"\\",
            "\u{0}=\u{0}",
            "PRETTY_NAME=\u{fffd}'",
        ] {
            let _ = os_release_value(hostile, "PRETTY_NAME");
        }
    }
}
