//! The host readiness checks.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::{HostConfig, parse_kernel_version};
use nfvi_harness::process::CommandSpec;
use nfvi_harness::{
    BoxFuture, Check, CheckContext, CheckMeta, CheckResult, Need, Outcome, Severity, declare,
};
use nfvi_reference_model::Area;

use crate::parse;

/// The host checks, reading the real `/proc` and `/sys`.
pub fn checks() -> Vec<Arc<dyn Check>> {
    checks_with_root("/")
}

/// The host checks, reading `/proc`, `/sys` and `/dev` under `root` (tests point this at a
/// recorded tree). Commands (`ip`, `unshare`, `timedatectl`) always act on the real host.
pub fn checks_with_root(root: impl Into<PathBuf>) -> Vec<Arc<dyn Check>> {
    let root = Arc::new(root.into());
    let mut out = vec![declare(
        CheckMeta::new(
            "host.kernel.version",
            Area::Host,
            "Kernel release is at least the target's minimum",
        ),
        body(&root, Kind::KernelVersion),
    )];
    for probe in LINK_PROBES {
        out.push(declare(
            CheckMeta::new(
                format!("host.kernel.link.{}", probe.name),
                Area::Host,
                format!("Kernel can create {} links", probe.what),
            )
            .covers(probe.severity, probe.covers)
            .needs([Need::Root, Need::Tool("unshare".into()), Need::Tool("ip".into())])
            .side_effects(
                "creates a throwaway network namespace (unshare --net) holding test links; nothing in the host namespace is touched",
                "the kernel deletes the namespace and its links when the probe process exits, also when it is killed",
            )
            .timeout(Duration::from_secs(20)),
            body(&root, Kind::Link(probe)),
        ));
    }
    out.extend([
        declare(
            CheckMeta::new(
                "host.virt.kvm",
                Area::Host,
                "KVM hardware-assisted virtualization is available (/dev/kvm)",
            ),
            body(&root, Kind::Kvm),
        ),
        declare(
            CheckMeta::new(
                "host.virt.nested",
                Area::Host,
                "KVM nested virtualization is enabled (kvm_intel/kvm_amd `nested`)",
            ),
            body(&root, Kind::Nested),
        ),
        declare(
            CheckMeta::new(
                "host.virt.vhost-net",
                Area::Host,
                "vhost-net in-kernel virtio-net acceleration is available",
            ),
            body(&root, Kind::VhostNet),
        ),
        declare(
            CheckMeta::new(
                "host.sysctl.ip-forward",
                Area::Host,
                "IPv4 forwarding is enabled (net.ipv4.ip_forward = 1)",
            )
            .covers(Severity::Should, &["inf.ntw.08", "ra2.ntw.002"]),
            body(&root, Kind::IpForward),
        ),
        declare(
            CheckMeta::new(
                "host.sysctl.bridge-nf-call-iptables",
                Area::Host,
                "Bridged traffic passes iptables (br_netfilter loaded, net.bridge.bridge-nf-call-iptables = 1)",
            )
            .covers(Severity::Should, &["inf.ntw.08", "ra2.ntw.002"]),
            body(&root, Kind::BridgeNf),
        ),
    ]);
    for (size_kb, label) in [(2048u64, "2Mi"), (1_048_576, "1Gi")] {
        out.push(declare(
            CheckMeta::new(
                format!("host.hugepages.{}", label.to_lowercase()),
                Area::Host,
                format!("{label} hugepages are configured"),
            )
            .covers(
                Severity::Must,
                &["ra2.ch.001", "i.cap.018", "infra.com.cfg.004"],
            ),
            body(&root, Kind::Hugepages { size_kb, label }),
        ));
    }
    out.extend([
        declare(
            CheckMeta::new(
                "host.node.vcpus",
                Area::Host,
                "A virtual-machine node has at least 16 vCPUs",
            )
            .covers(Severity::Must, &["ra2.ch.011", "e.cap.001"]),
            body(&root, Kind::Vcpus),
        ),
        declare(
            CheckMeta::new(
                "host.node.memory",
                Area::Host,
                "A virtual-machine node has at least 32 GB of RAM",
            )
            .covers(Severity::Must, &["ra2.ch.012", "e.cap.002"]),
            body(&root, Kind::Memory),
        ),
        declare(
            CheckMeta::new(
                "host.node.addresses",
                Area::Host,
                "The node has global IPv4 and IPv6 addresses",
            )
            .covers(Severity::Must, &["ra2.ch.007"])
            .needs([Need::Tool("ip".into())]),
            body(&root, Kind::Addresses),
        ),
        declare(
            CheckMeta::new(
                "host.runtime.oci-spec",
                Area::Host,
                "The node's OCI runtimes implement runtime specification 1.0 or later",
            )
            .covers(Severity::Must, &["ra2.crt.001"])
            .read_only("runs each runtime's `--version` (runc, crun, youki, runsc, kata-runtime)"),
            body(&root, Kind::OciRuntime),
        ),
        declare(
            CheckMeta::new(
                "host.clock.sync",
                Area::Host,
                "The system clock is synchronised (NTP or chrony)",
            ),
            body(&root, Kind::Clock),
        ),
        declare(
            CheckMeta::new(
                "host.packages.drift",
                Area::Host,
                "No packages changed within the drift window (dpkg log)",
            ),
            body(&root, Kind::Drift),
        ),
    ]);
    out.extend(crate::sriov::checks(&root));
    out.into_iter().map(|d| d.into_check()).collect()
}

/// A link type probed in a throwaway namespace.
#[derive(Clone, Copy, Debug)]
struct LinkProbe {
    name: &'static str,
    what: &'static str,
    severity: Severity,
    covers: &'static [&'static str],
    /// `ip -batch` lines; the last one creates the link type under test.
    script: &'static str,
}

const VETH_PARENT: &str = "link add nfvp0 type veth peer name nfvp1\n";

const LINK_PROBES: [LinkProbe; 6] = [
    LinkProbe {
        name: "veth",
        what: "veth pair",
        severity: Severity::Must,
        covers: &["inf.ntw.08", "ra2.ntw.002"],
        script: VETH_PARENT,
    },
    LinkProbe {
        name: "bridge",
        what: "Linux bridge",
        severity: Severity::Must,
        covers: &["inf.ntw.08", "ra2.ntw.002"],
        script: "link add nfvb0 type bridge\n",
    },
    LinkProbe {
        name: "macvlan",
        what: "macvlan",
        severity: Severity::Should,
        covers: &["inf.ntw.14", "ra2.ntw.011"],
        script: "link add nfvp0 type veth peer name nfvp1\nlink add nfvm0 link nfvp0 type macvlan mode bridge\n",
    },
    LinkProbe {
        name: "vxlan",
        what: "VXLAN overlay",
        severity: Severity::Info,
        covers: &[],
        script: "link add nfvx0 type vxlan id 42 dstport 4789\n",
    },
    LinkProbe {
        name: "ipvlan",
        what: "ipvlan",
        severity: Severity::May,
        covers: &["inf.ntw.14", "ra2.ntw.011"],
        script: "link add nfvp0 type veth peer name nfvp1\nlink add nfvi0 link nfvp0 type ipvlan mode l2\n",
    },
    LinkProbe {
        name: "vlan",
        what: "802.1Q VLAN",
        severity: Severity::Info,
        covers: &[],
        script: "link add nfvp0 type veth peer name nfvp1\nlink add link nfvp0 name nfvp0.10 type vlan id 10\n",
    },
];

#[derive(Clone, Copy, Debug)]
enum Kind {
    KernelVersion,
    Link(LinkProbe),
    Kvm,
    Nested,
    VhostNet,
    IpForward,
    BridgeNf,
    Hugepages { size_kb: u64, label: &'static str },
    Vcpus,
    Memory,
    Addresses,
    Clock,
    Drift,
    OciRuntime,
}

/// The body of a check of `kind`, reading files under `root`.
fn body(
    root: &Arc<PathBuf>,
    kind: Kind,
) -> impl for<'a> Fn(&'a CheckContext) -> BoxFuture<'a, CheckResult> + Send + Sync + 'static {
    let root = root.clone();
    move |cx| Box::pin(run(kind, root.clone(), cx))
}

/// Runs the body of a check of `kind`; the bodies that always decide return an [`Outcome`].
async fn run(kind: Kind, root: Arc<PathBuf>, cx: &CheckContext) -> CheckResult {
    let fs = Fs(&root);
    match kind {
        Kind::KernelVersion => kernel_version(&fs, cx).await,
        Kind::Link(probe) => link_probe(probe, cx).await,
        Kind::Kvm => Ok(kvm(&fs).await),
        Kind::Nested => Ok(nested(&fs).await),
        Kind::VhostNet => Ok(vhost_net(&fs).await),
        Kind::IpForward => ip_forward(&fs).await,
        Kind::BridgeNf => bridge_nf(&fs).await,
        Kind::Hugepages { size_kb, label } => hugepages(&fs, size_kb, label).await,
        Kind::Vcpus => vcpus(&fs).await,
        Kind::Memory => memory(&fs).await,
        Kind::Addresses => addresses(cx).await,
        Kind::Clock => Ok(clock(cx).await),
        Kind::Drift => Ok(drift(&fs, cx).await),
        Kind::OciRuntime => Ok(oci_runtime(cx).await),
    }
}

/// Reads kernel files under the configured root.
struct Fs<'a>(&'a Path);

impl Fs<'_> {
    fn path(&self, p: &str) -> PathBuf {
        self.0.join(p.trim_start_matches('/'))
    }

    async fn read(&self, p: &str) -> std::io::Result<String> {
        tokio::fs::read_to_string(self.path(p)).await
    }

    async fn exists(&self, p: &str) -> bool {
        tokio::fs::try_exists(self.path(p)).await.unwrap_or(false)
    }

    async fn dir_names(&self, p: &str) -> Vec<String> {
        let mut names = Vec::new();
        if let Ok(mut rd) = tokio::fs::read_dir(self.path(p)).await {
            while let Ok(Some(e)) = rd.next_entry().await {
                names.push(e.file_name().to_string_lossy().into_owned());
            }
        }
        names.sort();
        names
    }

    /// Reads a file the check cannot decide without; an unreadable file is an error outcome.
    async fn require(&self, p: &str) -> Result<String, Outcome> {
        self.read(p)
            .await
            .map_err(|e| Outcome::error(format!("cannot read {p}: {e}")))
    }
}

/// `a, b` or `none`.
fn list_or_none<S: AsRef<str>>(items: &[S], sep: &str) -> String {
    if items.is_empty() {
        "none".to_owned()
    } else {
        items
            .iter()
            .map(AsRef::as_ref)
            .collect::<Vec<_>>()
            .join(sep)
    }
}

async fn kernel_version(fs: &Fs<'_>, cx: &CheckContext) -> CheckResult {
    let release = fs
        .require("/proc/sys/kernel/osrelease")
        .await?
        .trim()
        .to_owned();
    let min = &cx.target().config::<HostConfig>().min_kernel;
    let (Some(have), Some(want)) = (parse_kernel_version(&release), parse_kernel_version(min))
    else {
        return Err(format!("cannot parse kernel release `{release}`").into());
    };
    let o = if have >= want {
        Outcome::pass(format!("kernel {release} is at least {min}"))
    } else {
        Outcome::fail(format!(
            "kernel {release} is older than the minimum {min}; upgrade the kernel or lower host.min_kernel in the target file"
        ))
    };
    Ok(o.with_property("kernel", &release)
        .with_property("minimum", min))
}

async fn link_probe(probe: LinkProbe, cx: &CheckContext) -> CheckResult {
    let spec = CommandSpec::new("unshare")
        .args(["--net", "--", "ip", "-batch", "-"])
        .stdin(probe.script)
        .timeout(Duration::from_secs(10));
    let out = cx
        .command(spec)
        .await
        .map_err(|e| format!("{e}: {}", e.source))?;
    if out.success() {
        return Ok(Outcome::pass(format!(
            "created a {} link in a throwaway namespace",
            probe.what
        ))
        .with_property("link_type", probe.name));
    }
    let stderr = out.stderr_text();
    // These are the kernel's answers when the link type is not built in and has no module.
    if stderr.contains("Unknown device type") || stderr.contains("Operation not supported") {
        Ok(Outcome::fail(format!(
            "this kernel cannot create {} links (`{}`); enable CONFIG_{} or load its module",
            probe.what,
            stderr.lines().next().unwrap_or("").trim(),
            match probe.name {
                "vlan" => "VLAN_8021Q".to_owned(),
                other => other.to_uppercase(),
            }
        ))
        .with_property("link_type", probe.name))
    } else {
        Err(format!(
            "the probe failed for a reason other than a missing link type: {}",
            stderr.trim()
        )
        .into())
    }
}

async fn kvm(fs: &Fs<'_>) -> Outcome {
    let cpuinfo = fs.read("/proc/cpuinfo").await.unwrap_or_default();
    let flags = parse::cpu_flags(&cpuinfo);
    let hw: Vec<&str> = flags
        .iter()
        .copied()
        .filter(|f| *f == "vmx" || *f == "svm")
        .collect();
    let modules: Vec<String> = fs
        .dir_names("/sys/module")
        .await
        .into_iter()
        .filter(|m| m.starts_with("kvm"))
        .collect();
    let dev = fs.exists("/dev/kvm").await;
    let o = if dev {
        Outcome::pass(format!(
            "/dev/kvm is present (KVM modules: {})",
            if modules.is_empty() {
                "built in".to_owned()
            } else {
                modules.join(", ")
            }
        ))
    } else if hw.is_empty() {
        Outcome::fail(
            "no /dev/kvm and the CPU shows no vmx/svm flag: enable VT-x/AMD-V in firmware, or nested virtualization on the hypervisor running this node",
        )
    } else {
        Outcome::fail(format!(
            "the CPU has {} but /dev/kvm is missing: load kvm_intel or kvm_amd (modprobe)",
            hw.join(",")
        ))
    };
    o.with_property("cpu_virtualization_flags", list_or_none(&hw, ","))
        .with_property("kvm_modules", modules.join(","))
        .with_property("dev_kvm", dev)
}

async fn nested(fs: &Fs<'_>) -> Outcome {
    for module in ["kvm_intel", "kvm_amd"] {
        let p = format!("/sys/module/{module}/parameters/nested");
        if let Ok(v) = fs.read(&p).await {
            let v = v.trim().to_owned();
            let on = matches!(v.as_str(), "Y" | "y" | "1");
            let o = if on {
                Outcome::pass(format!("{module} nested = {v}"))
            } else {
                Outcome::fail(format!(
                    "{module} nested = {v}: set `options {module} nested=1` in /etc/modprobe.d and reload the module"
                ))
            };
            return o.with_property("module", module).with_property("nested", v);
        }
    }
    let modules: Vec<String> = fs
        .dir_names("/sys/module")
        .await
        .into_iter()
        .filter(|m| m.starts_with("kvm"))
        .collect();
    Outcome::not_applicable(format!(
        "neither kvm_intel nor kvm_amd is loaded (KVM modules here: {}), so there is no nested setting to read",
        list_or_none(&modules, ", ")
    ))
}

async fn vhost_net(fs: &Fs<'_>) -> Outcome {
    if fs.exists("/dev/vhost-net").await {
        return Outcome::pass("/dev/vhost-net is present").with_property("dev_vhost_net", true);
    }
    let release = fs
        .read("/proc/sys/kernel/osrelease")
        .await
        .unwrap_or_default()
        .trim()
        .to_owned();
    let modules_dir = format!("/lib/modules/{release}");
    let listed = |file: &'static str| {
        let p = format!("{modules_dir}/{file}");
        async move { fs.read(&p).await.map(|t| t.contains("vhost_net.ko")) }
    };
    let (builtin, loadable) = (listed("modules.builtin").await, listed("modules.dep").await);
    let hint = match (builtin, loadable) {
        (_, Ok(true)) => "the vhost_net module exists: `modprobe vhost_net`".to_owned(),
        (Ok(true), _) => {
            "vhost_net is built in but /dev/vhost-net is missing: check devtmpfs/udev".to_owned()
        }
        (Err(_), Err(_)) => format!(
            "and {modules_dir} does not exist, so no module can be loaded: use a kernel with CONFIG_VHOST_NET"
        ),
        _ => {
            "and this kernel has no vhost_net module: use a kernel with CONFIG_VHOST_NET".to_owned()
        }
    };
    Outcome::fail(format!("no /dev/vhost-net; {hint}")).with_property("dev_vhost_net", false)
}

async fn sysctl_is_one(fs: &Fs<'_>, path: &str, name: &str, fix: &str) -> CheckResult {
    let v = fs.require(path).await?;
    Ok(if v.trim() == "1" {
        Outcome::pass(format!("{name} = 1")).with_property(name, 1)
    } else {
        Outcome::fail(format!("{name} = {}; {fix}", v.trim())).with_property(name, v.trim())
    })
}

async fn ip_forward(fs: &Fs<'_>) -> CheckResult {
    sysctl_is_one(
        fs,
        "/proc/sys/net/ipv4/ip_forward",
        "net.ipv4.ip_forward",
        "pods cannot be routed; set it with `sysctl -w net.ipv4.ip_forward=1` and persist it in /etc/sysctl.d",
    )
    .await
}

async fn bridge_nf(fs: &Fs<'_>) -> CheckResult {
    let path = "/proc/sys/net/bridge/bridge-nf-call-iptables";
    if !fs.exists(path).await {
        return Ok(Outcome::fail(
            "br_netfilter is not loaded, so bridged pod traffic bypasses iptables (Services, NetworkPolicy): `modprobe br_netfilter` and list it in /etc/modules-load.d",
        )
        .with_property("br_netfilter", "not loaded"));
    }
    sysctl_is_one(
        fs,
        path,
        "net.bridge.bridge-nf-call-iptables",
        "set it with `sysctl -w net.bridge.bridge-nf-call-iptables=1` and persist it in /etc/sysctl.d",
    )
    .await
}

async fn hugepages(fs: &Fs<'_>, size_kb: u64, label: &str) -> CheckResult {
    let dir = format!("/sys/kernel/mm/hugepages/hugepages-{size_kb}kB");
    if !fs.exists(&dir).await {
        return Ok(Outcome::fail(format!(
            "the kernel offers no {label} hugepages ({dir} is missing); the CPU or kernel does not support this page size"
        )));
    }
    let read_num = |name: &'static str| {
        let p = format!("{dir}/{name}");
        async move {
            fs.read(&p)
                .await
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok())
        }
    };
    let (Some(total), free) = (
        read_num("nr_hugepages").await,
        read_num("free_hugepages").await,
    ) else {
        return Err(format!("cannot read {dir}/nr_hugepages").into());
    };
    let o = if total > 0 {
        Outcome::pass(format!("{total} {label} hugepages configured"))
    } else {
        Outcome::fail(format!(
            "no {label} hugepages configured: reserve them with `hugepagesz={label_k} hugepages=N` on the kernel command line or write N to {dir}/nr_hugepages",
            label_k = if size_kb == 2048 { "2M" } else { "1G" }
        ))
    };
    let o = o.with_metric("total", total as f64, "pages");
    Ok(match free {
        Some(f) => o.with_metric("free", f as f64, "pages"),
        None => o,
    })
}

/// Whether the node is a virtual machine, and what says so.
/// `/proc/cpuinfo` unreadable, or without a flags line, is an error: "bare metal" would
/// then be a conclusion drawn from nothing.
async fn hypervisor(fs: &Fs<'_>) -> Result<Option<String>, Outcome> {
    let cpuinfo = fs.require("/proc/cpuinfo").await?;
    if parse::cpu_flags(&cpuinfo).is_empty() {
        return Err(Outcome::error(
            "/proc/cpuinfo shows no CPU flags, so whether the node is a virtual machine was not observed",
        ));
    }
    Ok(hypervisor_from(fs, &cpuinfo).await)
}

async fn hypervisor_from(fs: &Fs<'_>, cpuinfo: &str) -> Option<String> {
    if parse::cpu_flags(cpuinfo).contains(&"hypervisor") {
        let vendor = fs
            .read("/sys/class/dmi/id/sys_vendor")
            .await
            .unwrap_or_default();
        let vendor = vendor.trim();
        return Some(if vendor.is_empty() {
            "cpu flag `hypervisor`".to_owned()
        } else {
            vendor.to_owned()
        });
    }
    None
}

async fn vcpus(fs: &Fs<'_>) -> CheckResult {
    let Some(vm) = hypervisor(fs).await? else {
        return Ok(Outcome::not_applicable(
            "the node is bare metal (no `hypervisor` CPU flag); RA2 sets the vCPU floor for VM nodes only",
        ));
    };
    let cpuinfo = fs.require("/proc/cpuinfo").await?;
    let n = parse::cpu_count(&cpuinfo);
    let o = if n >= 16 {
        Outcome::pass(format!("{n} vCPUs (VM: {vm})"))
    } else {
        Outcome::fail(format!(
            "{n} vCPUs, RA2 asks for at least 16 on a VM node; resize the VM"
        ))
    };
    Ok(o.with_metric("vcpus", f64::from(n), "count")
        .with_property("hypervisor", vm))
}

async fn memory(fs: &Fs<'_>) -> CheckResult {
    let Some(vm) = hypervisor(fs).await? else {
        return Ok(Outcome::not_applicable(
            "the node is bare metal (no `hypervisor` CPU flag); RA2 sets the memory floor for VM nodes only",
        ));
    };
    let meminfo = fs.require("/proc/meminfo").await?;
    let bytes = parse::meminfo_bytes(&meminfo, "MemTotal").ok_or("no MemTotal in /proc/meminfo")?;
    // RA2 says 32 GB. MemTotal excludes memory the kernel reserves at boot, so a VM given
    // 32 GiB shows a little less; decimal gigabytes keep such a VM on the right side.
    let floor = 32_000_000_000u64;
    let gb = bytes as f64 / 1e9;
    let o = if bytes >= floor {
        Outcome::pass(format!("{gb:.1} GB of RAM (VM: {vm})"))
    } else {
        Outcome::fail(format!(
            "{gb:.1} GB of RAM, RA2 asks for at least 32 GB on a VM node; resize the VM"
        ))
    };
    Ok(o.with_metric("memory", bytes as f64, "bytes")
        .with_property("hypervisor", vm))
}

async fn addresses(cx: &CheckContext) -> CheckResult {
    let out = cx
        .command(CommandSpec::new("ip").args(["-j", "addr", "show"]))
        .await
        .map_err(|e| format!("{e}: {}", e.source))?;
    if !out.success() {
        return Err(format!("`ip -j addr show` failed: {}", out.stderr_text().trim()).into());
    }
    let addrs = parse::global_addresses(&out.stdout_text())?;
    let of = |family: &str| -> Vec<String> {
        addrs
            .iter()
            .filter(|a| a.family == family)
            .map(|a| format!("{} on {}", a.addr, a.ifname))
            .collect()
    };
    let (v4, v6) = (of("inet"), of("inet6"));
    let missing: Vec<&str> = [("IPv4", v4.is_empty()), ("IPv6", v6.is_empty())]
        .into_iter()
        .filter(|(_, m)| *m)
        .map(|(f, _)| f)
        .collect();
    let o = if missing.is_empty() {
        Outcome::pass("the node has global IPv4 and IPv6 addresses")
    } else {
        Outcome::fail(format!(
            "no global {} address on any interface; dual-stack pods need both families on the node",
            missing.join(" or ")
        ))
    };
    Ok(o.with_property("ipv4", list_or_none(&v4, ", "))
        .with_property("ipv6", list_or_none(&v6, ", ")))
}

/// ra2.crt.001: every OCI runtime on the node says which runtime specification it implements
/// (`spec: 1.0.2-dev` in `runc --version`), and it is 1.0 or later.
async fn oci_runtime(cx: &CheckContext) -> Outcome {
    let mut seen = Vec::new();
    for name in parse::OCI_RUNTIMES {
        let out = cx
            .command(
                CommandSpec::new(*name)
                    .args(["--version"])
                    .timeout(Duration::from_secs(5)),
            )
            .await;
        let answer = match out {
            Err(e) if e.source.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => Err(format!("cannot run `{name} --version`: {}", e.source)),
            Ok(o) if !o.success() => Err(format!(
                "`{name} --version` failed: {}",
                o.stderr_text().trim()
            )),
            Ok(o) => Ok(o.stdout_text()),
        };
        seen.push(((*name).to_owned(), answer));
    }
    parse::judge_oci_runtimes(&seen)
}

async fn clock(cx: &CheckContext) -> Outcome {
    let short = Duration::from_secs(5);
    let timedatectl = cx
        .command(
            CommandSpec::new("timedatectl")
                .args(["show", "-p", "NTPSynchronized", "--value"])
                .timeout(short),
        )
        .await;
    if let Ok(out) = &timedatectl
        && out.success()
    {
        let v = out.stdout_text().trim().to_owned();
        return if v == "yes" {
            Outcome::pass("systemd-timesyncd or another NTP client reports the clock synchronised")
        } else {
            Outcome::fail(format!(
                "timedatectl reports NTPSynchronized={v}: enable an NTP client (systemd-timesyncd, chrony) and check it reaches its servers"
            ))
        }
        .with_property("source", "timedatectl");
    }
    let chrony = cx
        .command(
            CommandSpec::new("chronyc")
                .args(["-n", "tracking"])
                .timeout(short),
        )
        .await;
    if let Ok(out) = &chrony
        && out.success()
    {
        let text = out.stdout_text();
        let leap = text
            .lines()
            .find(|l| l.starts_with("Leap status"))
            .unwrap_or("")
            .to_owned();
        return if leap.contains("Normal") {
            Outcome::pass("chrony reports the clock synchronised")
        } else {
            Outcome::fail(format!("chrony is not synchronised ({})", leap.trim()))
        }
        .with_property("source", "chronyc");
    }
    Outcome::fail(
        "no time synchronisation service answered (tried `timedatectl` and `chronyc`): install and start chrony or systemd-timesyncd; clusters need agreeing clocks for certificates, etcd and logs",
    )
}

async fn drift(fs: &Fs<'_>, cx: &CheckContext) -> Outcome {
    let host = cx.target().config::<HostConfig>();
    let log = host.dpkg_log.to_string_lossy().into_owned();
    let mut text = String::new();
    let mut read_any = false;
    for p in [format!("{log}.1"), log.clone()] {
        if let Ok(t) = fs.read(&p).await {
            text.push_str(&t);
            read_any = true;
        }
    }
    if !read_any {
        return Outcome::not_applicable(format!(
            "no dpkg log at {log}: not a dpkg-based system, or the log was removed"
        ));
    }
    // The positive control: the log holds entries this parser reads. An empty log, or one in
    // a format it does not read, shows no change because nothing was observed.
    if parse::dpkg_entries(&text) == 0 {
        return Outcome::error(format!(
            "{log} holds no dpkg entry this check can read ({} bytes), so package changes were not observed",
            text.len()
        ));
    }
    let now = chrono::Local::now().naive_local();
    let since = parse::window_start(now, host.drift_window_hours);
    let changes = parse::dpkg_changes(&text, since);
    let window = format!("{} h", host.drift_window_hours);
    if changes.is_empty() {
        return Outcome::pass(format!(
            "no package installed, upgraded or removed in the last {window}"
        ))
        .with_metric("changed_packages", 0.0, "count");
    }
    let mut o = Outcome::fail(format!(
        "{} package change(s) in the last {window}: compare with the last known-good inventory; roll back with `apt install pkg=old-version`",
        changes.len()
    ))
    .with_metric("changed_packages", changes.len() as f64, "count");
    for c in changes.iter().rev().take(200) {
        o = o.with_property(
            format!("{} {}", c.when.format("%Y-%m-%d %H:%M:%S"), c.package),
            format!("{} {} -> {}", c.action, c.old, c.new),
        );
    }
    o
}
