//! The topologies, built over netlink in namespaces this module creates and registers for
//! deletion before creating them. Deleting a namespace deletes every link in it, so teardown
//! cannot miss a veth, bridge or macvlan. Macvlan parents are always veths made here.

use std::net::Ipv4Addr;

use nfvi_harness::CheckContext;
use rtnetlink::packet_route::link::MacVlanMode;

use crate::nl;
use crate::ns::{self, Netns};

/// Allocates namespaces for one check and remembers them for cleanup.
pub struct Lab<'a> {
    cx: &'a CheckContext,
    pub(crate) tag: String,
    base: u32,
}

/// An endpoint: a namespace and its address on the path under test.
#[derive(Clone, Debug)]
pub struct Endpoint {
    /// Its namespace.
    pub ns: Netns,
    /// Its address.
    pub ip: Ipv4Addr,
    /// The interface carrying it.
    pub ifname: String,
}

impl<'a> Lab<'a> {
    /// A lab for one check; `lab_cidr` gives the address range.
    pub fn new(cx: &'a CheckContext) -> Result<Self, String> {
        let (base, _) = nfvi_harness::target::parse_ipv4_cidr(&cx.target().network.lab_cidr)
            .ok_or("network.lab_cidr is not an IPv4 network")?;
        let tag = nfvi_net::unique("nfvd");
        Ok(Self {
            cx,
            tag,
            base: u32::from(base),
        })
    }

    /// A namespace named `<tag>-<role>`, deleted at cleanup, with `lo` up.
    pub fn netns(&self, role: &str) -> Result<Netns, String> {
        let name = format!("{}-{role}", self.tag);
        {
            let name = name.clone();
            self.cx
                .on_cleanup(format!("delete netns {name}"), move || ns::delete(&name));
        }
        let ns = ns::create(&name)?;
        nl::within(&ns, |h| async move { nl::up(&h, "lo").await })?;
        Ok(ns)
    }

    /// Address `host` of lab subnet `k` (a /24).
    pub fn ip(&self, k: u32, host: u8) -> Ipv4Addr {
        Ipv4Addr::from(self.base + ((60 + k) << 8) + u32::from(host))
    }

    /// A veth whose end `inner` (named `ifname`) is in `ns` with `ip/prefix`, and whose other
    /// end, `outer`, is moved into `to` and left down.
    fn veth_into(
        &self,
        ns: &Netns,
        ifname: &str,
        ip: Ipv4Addr,
        prefix: u8,
        outer: &str,
        to: &Netns,
    ) -> Result<(), String> {
        let (ifname, outer, to) = (ifname.to_owned(), outer.to_owned(), to.clone());
        nl::within(ns, move |h| async move {
            nl::veth(&h, &ifname, &outer).await?;
            nl::move_to(&h, &outer, &to).await?;
            nl::addr(&h, &ifname, ip, prefix).await?;
            nl::up(&h, &ifname).await
        })
    }
}

/// Two (or three) endpoints on Linux bridges in a switch namespace, as Docker's default
/// bridge and the CNI bridge plugin wire them: `a` and `b` on `br0`, `c` on `br1`.
pub struct BridgeTopo {
    /// On br0.
    pub a: Endpoint,
    /// On br0.
    pub b: Endpoint,
    /// On br1, same subnet.
    pub c: Endpoint,
}

/// Builds [`BridgeTopo`].
pub fn bridge(lab: &Lab<'_>) -> Result<BridgeTopo, String> {
    let sw = lab.netns("sw")?;
    nl::within(&sw, |h| async move {
        for br in ["br0", "br1"] {
            nl::bridge(&h, br).await?;
            nl::up(&h, br).await?;
        }
        Ok(())
    })?;
    let mut eps = Vec::new();
    for (i, br) in [(1u8, "br0"), (2, "br0"), (3, "br1")] {
        let ns = lab.netns(&format!("e{i}"))?;
        let ip = lab.ip(0, i);
        let port = format!("p{i}");
        lab.veth_into(&ns, "eth0", ip, 24, &port, &sw)?;
        let br = br.to_owned();
        nl::within(&sw, move |h| async move {
            nl::enslave(&h, &port, &br).await?;
            nl::up(&h, &port).await
        })?;
        eps.push(Endpoint {
            ns,
            ip,
            ifname: "eth0".into(),
        });
    }
    nl::within(&sw, |h| async move {
        for br in ["br0", "br1"] {
            nl::wait_oper_up(&h, br, std::time::Duration::from_secs(5)).await?;
        }
        Ok(())
    })?;
    let c = eps.pop().expect("3");
    let b = eps.pop().expect("2");
    let a = eps.pop().expect("1");
    Ok(BridgeTopo { a, b, c })
}

/// Macvlan endpoints on a veth parent whose far end sits in an "external switch" namespace
/// holding the gateway address on a bridge.
pub struct MacvlanTopo {
    /// Sub-interfaces moved into their own namespaces.
    pub endpoints: Vec<Endpoint>,
    /// The namespace holding the parent (the node).
    pub host: Netns,
    /// The parent's own address.
    pub parent_ip: Ipv4Addr,
    /// The switch namespace.
    pub ext: Netns,
    /// The gateway address on the switch.
    pub gateway: Ipv4Addr,
    /// Errors creating further sub-interfaces (passthru accepts only one).
    pub refused: Vec<String>,
}

/// The kernel's name of a macvlan mode.
pub fn mode_name(mode: MacVlanMode) -> &'static str {
    match mode {
        MacVlanMode::Private => "private",
        MacVlanMode::Vepa => "vepa",
        MacVlanMode::Bridge => "bridge",
        MacVlanMode::Passthrough => "passthru",
        _ => "other",
    }
}

/// Builds [`MacvlanTopo`] with `count` sub-interfaces in `mode`, hairpin on the switch port
/// when asked.
pub fn macvlan(
    lab: &Lab<'_>,
    mode: MacVlanMode,
    count: u8,
    hairpin: bool,
) -> Result<MacvlanTopo, String> {
    let ext = lab.netns("ext")?;
    let host = lab.netns("host")?;
    let (gateway, parent_ip) = (lab.ip(1, 1), lab.ip(1, 254));
    nl::within(&ext, move |h| async move {
        nl::bridge(&h, "sw0").await?;
        nl::addr(&h, "sw0", gateway, 24).await?;
        nl::up(&h, "sw0").await
    })?;
    lab.veth_into(&host, "par", parent_ip, 24, "uplink", &ext)?;
    nl::within(&ext, move |h| async move {
        nl::enslave(&h, "uplink", "sw0").await?;
        if hairpin {
            nl::hairpin(&h, "uplink").await?;
        }
        nl::up(&h, "uplink").await?;
        nl::wait_oper_up(&h, "sw0", std::time::Duration::from_secs(5)).await
    })?;
    let mut endpoints = Vec::new();
    let mut refused = Vec::new();
    for i in 1..=count {
        let ns = lab.netns(&format!("m{i}"))?;
        let ip = lab.ip(1, 10 + i);
        let name = format!("mv{i}");
        let (n2, ns2) = (name.clone(), ns.clone());
        let created = nl::within(&host, move |h| async move {
            nl::macvlan(&h, &n2, "par", mode).await?;
            nl::move_to(&h, &n2, &ns2).await
        });
        match created {
            Ok(()) => {
                let n3 = name.clone();
                nl::within(&ns, move |h| async move {
                    nl::addr(&h, &n3, ip, 24).await?;
                    nl::up(&h, &n3).await
                })?;
                endpoints.push(Endpoint {
                    ns,
                    ip,
                    ifname: name,
                });
            }
            Err(e) => refused.push(e),
        }
    }
    Ok(MacvlanTopo {
        endpoints,
        host,
        parent_ip,
        ext,
        gateway,
        refused,
    })
}

/// Two endpoints routed through a router namespace over /30 veth links, as the CNI ptp
/// plugin wires a pod to its host.
pub struct PtpTopo {
    /// First endpoint.
    pub a: Endpoint,
    /// Second endpoint.
    pub b: Endpoint,
}

/// Builds [`PtpTopo`].
pub fn ptp(lab: &Lab<'_>) -> Result<PtpTopo, String> {
    let router = lab.netns("rt")?;
    ns::sysctl(&router, "net/ipv4/ip_forward", "1")?;
    let mut eps = Vec::new();
    for i in 0..2u8 {
        let ns = lab.netns(&format!("r{i}"))?;
        let (gw, ip) = (lab.ip(2, 4 * i + 1), lab.ip(2, 4 * i + 2));
        let port = format!("r{i}");
        lab.veth_into(&ns, "eth0", ip, 30, &port, &router)?;
        nl::within(&router, move |h| async move {
            nl::addr(&h, &port, gw, 30).await?;
            nl::up(&h, &port).await
        })?;
        nl::within(&ns, move |h| async move {
            nl::route(&h, Ipv4Addr::UNSPECIFIED, 0, gw).await
        })?;
        eps.push(Endpoint {
            ns,
            ip,
            ifname: "eth0".into(),
        });
    }
    let b = eps.pop().expect("2");
    let a = eps.pop().expect("1");
    Ok(PtpTopo { a, b })
}

/// One namespace whose loopback stands in for host networking.
pub fn loopback(lab: &Lab<'_>) -> Result<Endpoint, String> {
    let ns = lab.netns("lo")?;
    Ok(Endpoint {
        ns,
        ip: Ipv4Addr::LOCALHOST,
        ifname: "lo".into(),
    })
}

/// Pods wired by the real CNI plugins the way a kubelet would: a runtime namespace (the
/// node) in which the plugins run, and pod namespaces attached by ADD. Returns the two pods
/// of each plugin's network as endpoints.
pub struct CniPaths {
    /// (path name, client pod, server pod).
    pub pairs: Vec<(&'static str, Endpoint, Endpoint)>,
}

fn plugin_path(cx: &CheckContext, plugin: &str) -> Option<std::path::PathBuf> {
    cx.target()
        .config::<nfvi_suite_cni::CniConfig>()
        .find(plugin)
}

/// Runs one CNI ADD in `runtime` and returns the pod's IPv4 address from the result.
fn cni_add(
    cx: &CheckContext,
    runtime: &Netns,
    pod: &Netns,
    plugin: &str,
    conf: &serde_json::Value,
) -> Result<Ipv4Addr, String> {
    use std::io::Write;
    let path = plugin_path(cx, plugin).ok_or_else(|| format!("CNI plugin {plugin} not found"))?;
    let cni_path = cx
        .target()
        .config::<nfvi_suite_cni::CniConfig>()
        .search_path();
    // Forked from a thread inside the runtime namespace: the plugin starts there, as under
    // `ip netns exec` but without its private mount namespace (the plugins need none).
    let mut command = std::process::Command::new(&path);
    command
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .env("CNI_COMMAND", "ADD")
        .env("CNI_CONTAINERID", &pod.name)
        .env("CNI_NETNS", pod.path())
        .env("CNI_IFNAME", "eth0")
        .env("CNI_PATH", cni_path)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = nfvi_net::spawn_command_in(&runtime.path(), command)
        .map_err(|e| format!("cannot run {plugin}: {e}"))?;
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(conf.to_string().as_bytes())
        .map_err(|e| e.to_string())?;
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    let result: serde_json::Value = serde_json::from_slice(&out.stdout).map_err(|_| {
        format!(
            "{plugin} ADD printed no JSON: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })?;
    if !out.status.success() {
        return Err(format!("{plugin} ADD failed: {result}"));
    }
    result["ips"][0]["address"]
        .as_str()
        .and_then(|a| a.split('/').next())
        .and_then(|a| a.parse().ok())
        .ok_or_else(|| format!("{plugin} ADD returned no IPv4 address: {result}"))
}

/// Builds pods on the bridge, macvlan and ptp plugins (those installed). Pods are deleted
/// with their namespaces; the runtime namespace takes every host-side object with it; IPAM
/// state lives in a private directory removed at cleanup.
pub fn cni_paths(lab: &Lab<'_>) -> Result<CniPaths, String> {
    let cx = lab.cx;
    if plugin_path(cx, "host-local").is_none() {
        return Ok(CniPaths { pairs: Vec::new() });
    }
    let runtime = lab.netns("cnirt")?;
    ns::sysctl(&runtime, "net/ipv4/ip_forward", "1")?;
    // host-local's state directory: random name, created exclusively, mode 0700.
    let tmp = nfvi_harness::scratch::private_dir(&format!("{}-ipam-", lab.tag))
        .map_err(|e| format!("cannot create a private IPAM directory: {e}"))?;
    let dir = tmp.path().to_owned();
    cx.on_cleanup(format!("remove {}", dir.display()), move || {
        tmp.close().map_err(|e| e.to_string())
    });
    // The macvlan master: a veth pair made here, both ends up, in the runtime namespace.
    nl::within(&runtime, |h| async move {
        nl::veth(&h, "cnimm0", "cnimm1").await?;
        nl::up(&h, "cnimm0").await?;
        nl::up(&h, "cnimm1").await
    })?;
    let ipam = |k: u32| {
        let net = lab.ip(10 + k, 0);
        serde_json::json!({"type": "host-local", "subnet": format!("{net}/24"), "dataDir": dir.display().to_string()})
    };
    let nets: [(&'static str, &'static str, serde_json::Value); 3] = [
        (
            "cni-bridge",
            "bridge",
            serde_json::json!({"cniVersion": "0.4.0", "name": "nfvd-br", "type": "bridge", "bridge": "cnibr0", "ipam": ipam(0)}),
        ),
        (
            "cni-macvlan",
            "macvlan",
            serde_json::json!({"cniVersion": "0.4.0", "name": "nfvd-mv", "type": "macvlan", "master": "cnimm0", "mode": "bridge", "ipam": ipam(1)}),
        ),
        (
            "cni-ptp",
            "ptp",
            serde_json::json!({"cniVersion": "0.4.0", "name": "nfvd-ptp", "type": "ptp", "ipam": ipam(2)}),
        ),
    ];
    let mut pairs = Vec::new();
    for (name, plugin, conf) in nets {
        if plugin_path(cx, plugin).is_none() {
            continue;
        }
        let mut pods = Vec::new();
        for i in 0..2 {
            let pod = lab.netns(&format!("{plugin}{i}"))?;
            let ip = cni_add(cx, &runtime, &pod, plugin, &conf)?;
            pods.push(Endpoint {
                ns: pod,
                ip,
                ifname: "eth0".into(),
            });
        }
        let b = pods.pop().expect("2");
        let a = pods.pop().expect("1");
        pairs.push((name, a, b));
    }
    Ok(CniPaths { pairs })
}
