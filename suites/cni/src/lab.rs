//! The per-check sandbox: a private runtime network namespace in which the plugins run, fresh
//! container namespaces, a private IPAM directory, and helpers to invoke plugins and read the
//! kernel's state. Every object is registered for cleanup before it is created.
//!
//! The lab itself starts no `ip` process (a few assertions still run `ip` to change a
//! container's state): namespaces are made and deleted in-process and the kernel's state is
//! read over netlink (nfvi-net), and plugins are forked from a thread that entered the
//! runtime namespace. `ip netns exec` would also give each plugin a private mount
//! namespace with `/sys` remounted for the runtime namespace and `/etc/netns/<name>` bound
//! over `/etc`; the plugins need neither. Traced over the whole suite they open nothing under
//! `/sys` but `/sys/kernel/mm/transparent_hugepage/hpage_pmd_size` (the Go runtime; the same
//! in every namespace), their sysctls go through `/proc/sys/net`, which follows the opening
//! thread's network namespace, and the lab creates no `/etc/netns`.

use std::io;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use nfvi_harness::check::BoxFuture;
use nfvi_harness::process::{CommandSpec, Launcher};
use nfvi_harness::target::parse_ipv4_cidr;
use nfvi_harness::{CheckContext, Outcome, bytes_to_evidence};
use nfvi_net::{IpVlanMode, NetlinkError, Rtnl};
use serde_json::{Value, json};

use crate::netstate::{self, Link, RouteEntry};

/// Prefix of every namespace and directory this area creates.
pub(crate) const PREFIX: &str = nfvi_net::names::PREFIX;

/// `EOPNOTSUPP`: the kernel's answer to a link type it has no driver for.
const EOPNOTSUPP: i32 = 95;

/// What a plugin's stdout held.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Stdout {
    Empty,
    Json(Value),
    /// Not exactly one JSON document; the text says what it was.
    Garbage(String),
}

/// One plugin invocation and what came back.
#[derive(Debug, Clone)]
pub(crate) struct Exec {
    pub(crate) plugin: String,
    pub(crate) command: String,
    pub(crate) rc: Option<i32>,
    pub(crate) stdout: Stdout,
    pub(crate) stdout_text: String,
    pub(crate) stderr: String,
    pub(crate) timed_out: bool,
}

impl Exec {
    pub(crate) fn ok(&self) -> bool {
        self.rc == Some(0) && !self.timed_out
    }

    pub(crate) fn json(&self) -> Option<&Value> {
        match &self.stdout {
            Stdout::Json(v) => Some(v),
            _ => None,
        }
    }

    /// The error code, if stdout is an error object.
    pub(crate) fn code(&self) -> Option<u64> {
        self.json()
            .and_then(|v| v.get("code"))
            .and_then(Value::as_u64)
    }

    pub(crate) fn msg(&self) -> String {
        self.json()
            .and_then(|v| v.get("msg"))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned()
    }

    /// A one-line description for messages: what was run and what came back.
    pub(crate) fn describe(&self) -> String {
        let out = match &self.stdout {
            Stdout::Empty => "empty stdout".to_owned(),
            Stdout::Json(v) => format!(
                "stdout {}",
                nfvi_harness::truncate_chars(&v.to_string(), 300)
            ),
            Stdout::Garbage(what) => format!("stdout is not one JSON document ({what})"),
        };
        let rc = if self.timed_out {
            "timed out".to_owned()
        } else {
            self.rc.map_or("killed".to_owned(), |c| format!("exit {c}"))
        };
        format!("{} {}: {rc}, {out}", self.plugin, self.command)
    }
}

/// What stdout held: empty, one JSON document, or not that (the catalog's and the fuzzer's
/// one classification).
pub(crate) fn classify(text: &str) -> Stdout {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Stdout::Empty;
    }
    let mut stream = serde_json::Deserializer::from_str(trimmed).into_iter::<Value>();
    match (stream.next(), stream.next()) {
        (Some(Ok(v)), None) => Stdout::Json(v),
        (Some(Ok(_)), Some(_)) => Stdout::Garbage("more than one JSON document".to_owned()),
        (Some(Err(e)), _) => Stdout::Garbage(format!("not JSON: {e}")),
        (None, _) => Stdout::Empty,
    }
}

/// The CNI_* environment of one invocation. `None` leaves a variable unset.
#[derive(Debug, Clone)]
pub(crate) struct Env {
    pub(crate) command: Option<String>,
    pub(crate) container_id: Option<String>,
    pub(crate) netns: Option<String>,
    pub(crate) ifname: Option<String>,
    pub(crate) args: Option<String>,
    pub(crate) path: Option<String>,
}

impl Env {
    /// The CNI_* variables by name, as a plugin receives them (absent ones are `None`).
    pub(crate) fn vars(&self) -> [(&'static str, &Option<String>); 6] {
        [
            ("CNI_COMMAND", &self.command),
            ("CNI_CONTAINERID", &self.container_id),
            ("CNI_NETNS", &self.netns),
            ("CNI_IFNAME", &self.ifname),
            ("CNI_ARGS", &self.args),
            ("CNI_PATH", &self.path),
        ]
    }

    pub(crate) fn without_path(mut self) -> Self {
        self.path = None;
        self
    }
}

/// A container network namespace.
#[derive(Debug, Clone)]
pub(crate) struct Netns {
    pub(crate) name: String,
    pub(crate) path: String,
}

/// Starts commands inside a network namespace: forked from a fresh thread that entered it.
#[derive(Debug)]
struct InNetns {
    name: String,
    path: PathBuf,
}

impl Launcher for InNetns {
    fn launch(&self, fork: Box<dyn FnOnce() + Send>) -> BoxFuture<'static, io::Result<()>> {
        let path = self.path.clone();
        Box::pin(async move {
            nfvi_net::in_netns(path, fork)
                .await
                .map_err(|e| io::Error::other(nfvi_net::chain(&e)))
        })
    }

    fn label(&self) -> String {
        format!("[netns {}]", self.name)
    }
}

/// A link type whose kernel support [`Lab::kernel_supports`] probes.
#[derive(Debug, Clone, Copy)]
pub(crate) enum LinkProbe {
    IpVlan,
    Vlan,
}

/// The sandbox of one check.
pub(crate) struct Lab<'a> {
    pub(crate) cx: &'a CheckContext,
    /// The runtime namespace plugins run in.
    pub(crate) rt: String,
    /// Private directory (IPAM dataDir lives below it).
    pub(crate) dir: PathBuf,
    cni_path: String,
    plugin_dirs: Vec<PathBuf>,
    base: u32,
    pub(crate) version: String,
    /// Starts plugins (and the tools that read its iptables rules and qdiscs) in `rt`.
    launcher: Arc<InNetns>,
}

/// An error outcome for a netlink failure, its whole chain in the message.
fn netlink_error(e: &NetlinkError) -> Outcome {
    Outcome::error(nfvi_net::chain(e))
}

impl<'a> Lab<'a> {
    /// Creates the runtime namespace and the private directory.
    pub(crate) async fn new(cx: &'a CheckContext, version: &str) -> Result<Lab<'a>, Outcome> {
        let target = cx.target();
        let (base, _) = parse_ipv4_cidr(&target.network.lab_cidr)
            .ok_or_else(|| Outcome::error("network.lab_cidr is not an IPv4 network"))?;
        let rt = nfvi_net::unique(&format!("{PREFIX}rt-"));
        // A fresh directory with a random name, created exclusively with mode 0700: nothing
        // another local user placed in the temporary directory beforehand can be taken for
        // it (the spy plugin's directory below it is on the plugins' CNI_PATH).
        let tmp = nfvi_harness::scratch::private_dir(&format!("{PREFIX}-cni-")).map_err(|e| {
            Outcome::error(format!(
                "cannot create a private directory in {}: {e}",
                std::env::temp_dir().display()
            ))
        })?;
        let dir = tmp.path().to_owned();
        {
            let rt = rt.clone();
            cx.on_cleanup(
                format!("delete runtime netns {rt} and {}", dir.display()),
                move || {
                    let _ = tmp.close();
                    delete_netns_blocking(&rt)
                },
            );
        }
        let launcher = Arc::new(InNetns {
            name: rt.clone(),
            path: nfvi_net::Netns::named(&rt).path().to_owned(),
        });
        let lab = Lab {
            cx,
            rt: rt.clone(),
            dir,
            cni_path: target.config::<crate::CniConfig>().search_path(),
            plugin_dirs: target.config::<crate::CniConfig>().paths.clone(),
            base: u32::from(base),
            version: version.to_owned(),
            launcher,
        };
        // `lo` up on the creating thread, before any plugin can run there.
        let (_, lo) = nfvi_net::create_with_async(&rt, || {
            nfvi_net::within_current(|h: Rtnl| async move { h.set_up("lo").await })
        })
        .await
        .map_err(|e| Outcome::error(nfvi_net::chain(&e)))?;
        lo.and_then(|r| r).map_err(|e| netlink_error(&e))?;
        Ok(lab)
    }

    /// Runs a command that must succeed; failure is an error outcome (the harness could not
    /// set up), naming the command and its stderr.
    pub(crate) async fn run_ok(&self, program: &str, args: &[&str]) -> Result<String, Outcome> {
        let spec = CommandSpec::new(program)
            .args(args.iter().copied())
            .timeout(Duration::from_secs(10));
        let display = spec.display();
        match self.cx.command(spec).await {
            Ok(out) if out.success() => Ok(out.stdout_text()),
            Ok(out) => Err(Outcome::error(format!(
                "`{display}` failed: {}",
                out.stderr_text().trim()
            ))),
            Err(e) => Err(Outcome::error(format!("{e}: {}", e.source))),
        }
    }

    /// The same lab with another fixture version.
    pub(crate) fn with_version(self, version: &str) -> Self {
        Self {
            version: version.to_owned(),
            ..self
        }
    }

    /// The absolute path of a plugin binary.
    pub(crate) fn plugin_path(&self, plugin: &str) -> Option<PathBuf> {
        self.plugin_dirs
            .iter()
            .map(|d| d.join(plugin))
            .find(|p| p.is_file())
    }

    /// A fresh container namespace (`lo` down, as `ip netns add` leaves it), deleted at
    /// cleanup (and earlier if the check wants).
    pub(crate) async fn netns(&self) -> Result<Netns, Outcome> {
        let name = nfvi_net::unique(&format!("{PREFIX}c-"));
        {
            let name = name.clone();
            self.cx
                .on_cleanup(format!("delete container netns {name}"), move || {
                    delete_netns_blocking(&name)
                });
        }
        let (ns, ()) = nfvi_net::create_with_async(&name, || ())
            .await
            .map_err(|e| Outcome::error(nfvi_net::chain(&e)))?;
        Ok(Netns {
            path: ns.path().display().to_string(),
            name,
        })
    }

    pub(crate) async fn delete_netns(&self, ns: &Netns) -> Result<(), Outcome> {
        delete_netns_blocking(&ns.name).map_err(Outcome::error)
    }

    /// The default environment for a command against a container.
    pub(crate) fn env(&self, command: &str, ns: &Netns, container_id: &str, ifname: &str) -> Env {
        Env {
            command: Some(command.to_owned()),
            container_id: Some(container_id.to_owned()),
            netns: Some(ns.path.clone()),
            ifname: Some(ifname.to_owned()),
            args: None,
            path: Some(self.cni_path.clone()),
        }
    }

    /// Executes a plugin inside the runtime namespace with exactly `env` (plus PATH) and
    /// `stdin`.
    pub(crate) async fn exec_raw(&self, plugin: &str, env: &Env, stdin: &[u8]) -> Exec {
        let path = self
            .plugin_path(plugin)
            .map_or_else(|| plugin.to_owned(), |p| p.display().to_string());
        let mut spec = CommandSpec::new(path)
            .launcher(self.launcher.clone())
            .env_clear()
            .env(
                "PATH",
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            )
            .stdin(stdin.to_vec())
            .timeout(Duration::from_secs(
                self.cx
                    .target()
                    .config::<crate::CniConfig>()
                    .exec_timeout_secs
                    .max(1),
            ))
            .output_cap(1 << 20);
        for (k, v) in env.vars() {
            if let Some(v) = v {
                spec = spec.env(k, v.as_str());
            }
        }
        let command = env
            .command
            .clone()
            .unwrap_or_else(|| "(no CNI_COMMAND)".to_owned());
        match self.cx.command(spec).await {
            Ok(out) => {
                let stdout_text = bytes_to_evidence(&out.stdout);
                Exec {
                    plugin: plugin.to_owned(),
                    command,
                    rc: out.exit_code,
                    stdout: classify(&stdout_text),
                    stdout_text,
                    stderr: out.stderr_text(),
                    timed_out: out.timed_out,
                }
            }
            Err(e) => Exec {
                plugin: plugin.to_owned(),
                command,
                rc: None,
                stdout: Stdout::Empty,
                stdout_text: String::new(),
                stderr: format!("{e}: {}", e.source),
                timed_out: false,
            },
        }
    }

    ///
    /// tuning keeps its backup of an interface's original MAC and MTU in a file on the host
    /// (`/run/cni/tuning/<container ID>_<ifname>.json` unless `dataDir` says otherwise),
    /// which only its DEL removes; most checks end by deleting the namespace instead. So a
    /// tuning configuration without a `dataDir` gets the lab's private directory, and the
    /// backups go with it.
    pub(crate) async fn exec(&self, plugin: &str, env: &Env, conf: &Value) -> Exec {
        let mut conf = conf.clone();
        if plugin == "tuning"
            && let Some(c) = conf.as_object_mut()
            && !c.contains_key("dataDir")
        {
            c.insert(
                "dataDir".to_owned(),
                self.dir.join("tuning").display().to_string().into(),
            );
        }
        self.exec_raw(plugin, env, conf.to_string().as_bytes())
            .await
    }

    /// Subnet number `k` of the lab range, as (`a.b.c.0/24`, gateway `a.b.c.1`).
    pub(crate) fn subnet(&self, k: u32) -> (String, String) {
        let net = Ipv4Addr::from(self.base + ((30 + k) << 8));
        let gw = Ipv4Addr::from(u32::from(net) + 1);
        (format!("{net}/24"), gw.to_string())
    }

    pub(crate) fn ipam_dir(&self) -> String {
        self.dir.join("ipam").display().to_string()
    }

    /// host-local reservation files of network `name`: (address, content).
    pub(crate) fn reservations(&self, name: &str) -> Vec<(String, String)> {
        let dir = self.dir.join("ipam").join(name);
        let mut out: Vec<(String, String)> = std::fs::read_dir(&dir)
            .into_iter()
            .flatten()
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.parse::<std::net::IpAddr>().is_ok())
            .map(|n| {
                let content = std::fs::read_to_string(dir.join(&n)).unwrap_or_default();
                (n, content)
            })
            .collect();
        out.sort();
        out
    }

    /// host-local IPAM section on subnet `k`.
    pub(crate) fn host_local(&self, k: u32) -> Value {
        let (subnet, gw) = self.subnet(k);
        json!({"type": "host-local", "subnet": subnet, "gateway": gw, "routes": [{"dst": "0.0.0.0/0"}], "dataDir": self.ipam_dir()})
    }

    /// The BR fixture: bridge `nfvbr0` with host-local on subnet 0.
    pub(crate) fn bridge_conf(&self) -> Value {
        // isDefaultGateway installs the default route itself, so the IPAM section has none.
        let mut ipam = self.host_local(0);
        ipam.as_object_mut().expect("object").remove("routes");
        json!({"cniVersion": self.version, "name": "nfvnet-br", "type": "bridge", "bridge": "nfvbr0",
               "isGateway": true, "isDefaultGateway": true, "ipam": ipam})
    }

    /// The MV fixture: macvlan on the harness-made veth `nfvmm0`, host-local on subnet 1.
    pub(crate) fn macvlan_conf(&self) -> Value {
        json!({"cniVersion": self.version, "name": "nfvnet-mv", "type": "macvlan", "master": "nfvmm0",
               "mode": "bridge", "ipam": self.host_local(1)})
    }

    /// The PTP fixture.
    pub(crate) fn ptp_conf(&self) -> Value {
        let mut ipam = self.host_local(2);
        ipam.as_object_mut().expect("object").remove("gateway");
        json!({"cniVersion": self.version, "name": "nfvnet-ptp", "type": "ptp", "ipam": ipam})
    }

    /// The LO fixture.
    pub(crate) fn loopback_conf(&self) -> Value {
        json!({"cniVersion": self.version, "name": "nfvlo", "type": "loopback"})
    }

    /// The fixture config of an interface plugin; creates the macvlan master when needed.
    pub(crate) async fn conf_for(&self, plugin: &str) -> Result<Value, Outcome> {
        Ok(match plugin {
            "bridge" => self.bridge_conf(),
            "macvlan" => {
                self.macvlan_master().await?;
                self.macvlan_conf()
            }
            "ptp" => self.ptp_conf(),
            "loopback" => self.loopback_conf(),
            "ipvlan" => {
                self.macvlan_master().await?;
                self.kernel_supports("ipvlan", LinkProbe::IpVlan).await?;
                json!({"cniVersion": self.version, "name": "nfvnet-ipvlan", "type": "ipvlan", "master": "nfvmm0",
                       "mode": "l2", "ipam": self.host_local(5)})
            }
            "vlan" => {
                self.macvlan_master().await?;
                self.kernel_supports("802.1Q VLAN", LinkProbe::Vlan).await?;
                json!({"cniVersion": self.version, "name": "nfvnet-vlan", "type": "vlan", "master": "nfvmm0",
                       "vlanId": 10, "ipam": self.host_local(6)})
            }
            "host-device" => {
                if !self.links(None).await?.iter().any(|l| l.name == "nfvhd0") {
                    self.rtnl(
                        None,
                        |h| async move { h.add_veth("nfvhd0", "nfvhd1").await },
                    )
                    .await?;
                }
                json!({"cniVersion": self.version, "name": "nfvnet-hostdev", "type": "host-device", "device": "nfvhd0",
                       "ipam": self.host_local(7)})
            }
            "dhcp" => {
                return Err(Outcome::not_applicable(
                    "the dhcp plugin needs its daemon (`dhcp daemon`) and a DHCP server on the network; the lab provides neither",
                ));
            }
            other => {
                return Err(Outcome::error(format!(
                    "no fixture configuration for plugin `{other}`"
                )));
            }
        })
    }

    /// Whether the kernel can create a link type: a probe link on `nfvmm0` in the runtime
    /// namespace, removed at once. A missing type (the kernel answers `EOPNOTSUPP`, "Unknown
    /// device type") makes the assertion not applicable, with the reason.
    pub(crate) async fn kernel_supports(
        &self,
        what: &str,
        probe: LinkProbe,
    ) -> Result<(), Outcome> {
        let made = self
            .within(None, move |h| async move {
                let made = match probe {
                    LinkProbe::IpVlan => h.add_ipvlan("nfvkprobe", "nfvmm0", IpVlanMode::L2).await,
                    LinkProbe::Vlan => h.add_vlan("nfvkprobe", "nfvmm0", 10).await,
                };
                if made.is_ok() {
                    let _ = h.delete_link("nfvkprobe").await;
                }
                made
            })
            .await?;
        match made {
            Ok(()) => Ok(()),
            Err(e) if e.errno() == Some(EOPNOTSUPP) => Err(Outcome::not_applicable(format!(
                "this kernel cannot create {what} links ({})",
                nfvi_net::chain(&e)
            ))),
            Err(e) => Err(Outcome::error(format!(
                "probing {what} support failed: {}",
                nfvi_net::chain(&e)
            ))),
        }
    }

    /// The macvlan master `nfvmm0`: one end of a veth pair the harness creates in the runtime
    /// namespace (never an existing interface).
    pub(crate) async fn macvlan_master(&self) -> Result<(), Outcome> {
        if self.links(None).await?.iter().any(|l| l.name == "nfvmm0") {
            return Ok(());
        }
        self.rtnl(None, |h| async move {
            h.add_veth("nfvmm0", "nfvmm1").await?;
            h.set_up("nfvmm0").await?;
            h.set_up("nfvmm1").await
        })
        .await
    }

    /// The bind mount of a container namespace, or of the runtime namespace for `None`.
    fn ns_path(&self, ns: Option<&Netns>) -> PathBuf {
        match ns {
            Some(n) => PathBuf::from(&n.path),
            None => nfvi_net::Netns::named(&self.rt).path().to_owned(),
        }
    }

    /// Runs a netlink batch in a container namespace, or in the runtime namespace for
    /// `None`; the batch's own result comes back as it is.
    async fn within<T, F, Fut>(&self, ns: Option<&Netns>, batch: F) -> Result<T, Outcome>
    where
        T: Send + 'static,
        F: FnOnce(Rtnl) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = T>,
    {
        nfvi_net::within_async(self.ns_path(ns), batch)
            .await
            .map_err(|e| netlink_error(&e))
    }

    /// [`Lab::within`] for a batch whose failure is an error outcome.
    async fn rtnl<T, F, Fut>(&self, ns: Option<&Netns>, batch: F) -> Result<T, Outcome>
    where
        T: Send + 'static,
        F: FnOnce(Rtnl) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = Result<T, NetlinkError>>,
    {
        self.within(ns, batch).await?.map_err(|e| netlink_error(&e))
    }

    /// Links of a container namespace, or of the runtime namespace for `None`.
    pub(crate) async fn links(&self, ns: Option<&Netns>) -> Result<Vec<Link>, Outcome> {
        let links = self.rtnl(ns, |h| async move { h.links().await }).await?;
        Ok(netstate::links(links))
    }

    /// (interface, "addr/prefix") pairs, IPv4 and IPv6, in `ip addr` order.
    pub(crate) async fn addrs(&self, ns: Option<&Netns>) -> Result<Vec<(String, String)>, Outcome> {
        let addrs = self
            .rtnl(ns, |h| async move { h.addresses().await })
            .await?;
        Ok(netstate::addrs(addrs))
    }

    /// The IPv4 routes of the main table.
    pub(crate) async fn routes(&self, ns: Option<&Netns>) -> Result<Vec<RouteEntry>, Outcome> {
        let routes = self
            .rtnl(ns, |h| async move { h.routes(nfvi_net::Family::V4).await })
            .await?;
        Ok(netstate::routes(routes))
    }

    /// Runtime-namespace state that DEL must restore: link names, iptables rules, qdiscs.
    /// A tool that fails, or a dump without its table header (iptables) or without `lo`'s
    /// qdisc (tc; `lo` is up in every runtime namespace), is an error: an empty dump would
    /// make "nothing left" pass without observing anything.
    pub(crate) async fn host_snapshot(&self) -> Result<Vec<String>, Outcome> {
        let mut lines: Vec<String> = self
            .links(None)
            .await?
            .into_iter()
            .map(|l| format!("link {}", l.name))
            .collect();
        for table in ["nat", "filter"] {
            let spec = CommandSpec::new("iptables-save")
                .args(["-t", table])
                .launcher(self.launcher.clone())
                .timeout(Duration::from_secs(10));
            let text = self.snapshot_tool(spec).await?;
            if !text.lines().any(|l| l.trim() == format!("*{table}")) {
                return Err(Outcome::error(format!(
                    "`iptables-save -t {table}` printed no `*{table}` table, so the rules were not observed"
                )));
            }
            lines.extend(
                text.lines()
                    .filter(|l| !l.starts_with('#') && !l.starts_with(':') && !l.is_empty())
                    .map(|l| format!("iptables {table} {l}")),
            );
        }
        let spec = CommandSpec::new("tc")
            .args(["qdisc", "show"])
            .launcher(self.launcher.clone())
            .timeout(Duration::from_secs(10));
        let text = self.snapshot_tool(spec).await?;
        if !text.contains("dev lo ") {
            return Err(Outcome::error(
                "`tc qdisc show` listed no qdisc of lo, so the qdiscs were not observed",
            ));
        }
        lines.extend(
            text.lines()
                .filter(|l| !l.contains("noqueue"))
                .map(|l| format!("tc {l}")),
        );
        lines.sort();
        Ok(lines)
    }

    /// The output of a snapshot tool; a tool that cannot start or fails is an error outcome.
    async fn snapshot_tool(&self, spec: CommandSpec) -> Result<String, Outcome> {
        let display = spec.display();
        match self.cx.command(spec).await {
            Ok(out) if out.success() => Ok(out.stdout_text()),
            Ok(out) => Err(Outcome::error(format!(
                "`{display}` failed, so the runtime namespace was not observed: {}",
                out.stderr_text().trim()
            ))),
            Err(e) => Err(Outcome::error(format!(
                "{e}: {}; the runtime namespace was not observed",
                e.source
            ))),
        }
    }
}

/// Deletes a named netns as `ip netns del` does, in-process; one that is not there is fine.
/// Cleanups run it on a blocking thread, outside the runtime.
fn delete_netns_blocking(name: &str) -> Result<(), String> {
    nfvi_net::delete(name).map_err(|e| nfvi_net::chain(&e))
}

/// Asserts that an invocation succeeded with JSON on stdout; otherwise a failure naming
/// what was expected and what was seen.
pub(crate) fn expect_result(exec: &Exec, what: &str) -> Result<Value, Outcome> {
    match (exec.ok(), exec.json()) {
        (true, Some(v)) => Ok(v.clone()),
        _ => Err(Outcome::fail(format!(
            "{what}: expected exit 0 and a JSON result; got {}",
            exec.describe()
        ))
        .with_property("stderr", &exec.stderr)),
    }
}

/// Asserts that an invocation succeeded (stdout not inspected).
pub(crate) fn expect_success(exec: &Exec, what: &str) -> Result<(), Outcome> {
    if exec.ok() {
        Ok(())
    } else {
        Err(
            Outcome::fail(format!("{what}: expected exit 0; got {}", exec.describe()))
                .with_property("stderr", &exec.stderr),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stdout_is_classified() {
        assert_eq!(classify(""), Stdout::Empty);
        assert_eq!(classify(" \n"), Stdout::Empty);
        assert!(matches!(classify("{\"a\":1}"), Stdout::Json(_)));
        assert!(matches!(classify("{} {}"), Stdout::Garbage(_)));
        assert!(matches!(classify("log line\n{}"), Stdout::Garbage(_)));
    }
}
