//! The per-check sandbox: a private runtime network namespace in which the plugins run, fresh
//! container namespaces, a private IPAM directory, and helpers to invoke plugins and read the
//! kernel's state. Every object is registered for cleanup before it is created.

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use nfvi_harness::process::CommandSpec;
use nfvi_harness::target::parse_ipv4_cidr;
use nfvi_harness::{CheckContext, Outcome, bytes_to_evidence};
use serde_json::{Value, json};

use crate::netstate::{self, Link, RouteEntry};

static SEQ: AtomicU32 = AtomicU32::new(0);

/// Prefix of every namespace and directory this area creates.
pub(crate) const PREFIX: &str = "nfv";

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

fn classify(text: &str) -> Stdout {
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
}

fn seq() -> u32 {
    SEQ.fetch_add(1, Ordering::Relaxed)
}

impl<'a> Lab<'a> {
    /// Creates the runtime namespace and the private directory.
    pub(crate) async fn new(cx: &'a CheckContext, version: &str) -> Result<Lab<'a>, Outcome> {
        let target = cx.target();
        let (base, _) = parse_ipv4_cidr(&target.network.lab_cidr)
            .ok_or_else(|| Outcome::error("network.lab_cidr is not an IPv4 network"))?;
        let n = seq();
        let pid = std::process::id();
        let rt = format!("{PREFIX}rt-{pid}-{n}");
        // A fresh directory with a random name, created exclusively with mode 0700: nothing
        // another local user placed in the temporary directory beforehand can be taken for
        // it (the spy plugin's directory below it is on the plugins' CNI_PATH).
        let tmp = tempfile::Builder::new()
            .prefix(&format!("{PREFIX}-cni-"))
            .tempdir()
            .map_err(|e| {
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
        let lab = Lab {
            cx,
            rt: rt.clone(),
            dir,
            cni_path: target.config::<crate::CniConfig>().search_path(),
            plugin_dirs: target.config::<crate::CniConfig>().paths.clone(),
            base: u32::from(base),
            version: version.to_owned(),
        };
        lab.run_ok("ip", &["netns", "add", &rt]).await?;
        lab.run_ok("ip", &["-n", &rt, "link", "set", "lo", "up"])
            .await?;
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

    /// A fresh container namespace, deleted at cleanup (and earlier if the check wants).
    pub(crate) async fn netns(&self) -> Result<Netns, Outcome> {
        let name = format!("{PREFIX}c-{}-{}", std::process::id(), seq());
        {
            let name = name.clone();
            self.cx
                .on_cleanup(format!("delete container netns {name}"), move || {
                    delete_netns_blocking(&name)
                });
        }
        self.run_ok("ip", &["netns", "add", &name]).await?;
        Ok(Netns {
            path: format!("/run/netns/{name}"),
            name,
        })
    }

    pub(crate) async fn delete_netns(&self, ns: &Netns) -> Result<(), Outcome> {
        self.run_ok("ip", &["netns", "del", &ns.name])
            .await
            .map(|_| ())
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
        let mut spec = CommandSpec::new("ip")
            .args(["netns", "exec", &self.rt, &path])
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
        for (k, v) in [
            ("CNI_COMMAND", &env.command),
            ("CNI_CONTAINERID", &env.container_id),
            ("CNI_NETNS", &env.netns),
            ("CNI_IFNAME", &env.ifname),
            ("CNI_ARGS", &env.args),
            ("CNI_PATH", &env.path),
        ] {
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

    pub(crate) async fn exec(&self, plugin: &str, env: &Env, conf: &Value) -> Exec {
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
                self.kernel_supports(
                    "ipvlan",
                    &[
                        "link",
                        "add",
                        "nfvkprobe",
                        "link",
                        "nfvmm0",
                        "type",
                        "ipvlan",
                    ],
                )
                .await?;
                json!({"cniVersion": self.version, "name": "nfvnet-ipvlan", "type": "ipvlan", "master": "nfvmm0",
                       "mode": "l2", "ipam": self.host_local(5)})
            }
            "vlan" => {
                self.macvlan_master().await?;
                self.kernel_supports(
                    "802.1Q VLAN",
                    &[
                        "link",
                        "add",
                        "link",
                        "nfvmm0",
                        "name",
                        "nfvkprobe",
                        "type",
                        "vlan",
                        "id",
                        "10",
                    ],
                )
                .await?;
                json!({"cniVersion": self.version, "name": "nfvnet-vlan", "type": "vlan", "master": "nfvmm0",
                       "vlanId": 10, "ipam": self.host_local(6)})
            }
            "host-device" => {
                if !self.links(None).await?.iter().any(|l| l.name == "nfvhd0") {
                    self.run_ok(
                        "ip",
                        &[
                            "-n", &self.rt, "link", "add", "nfvhd0", "type", "veth", "peer",
                            "name", "nfvhd1",
                        ],
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

    /// Whether the kernel can create a link type: a probe link in the runtime namespace, removed
    /// at once. A missing type makes the assertion not applicable, with the reason.
    pub(crate) async fn kernel_supports(&self, what: &str, args: &[&str]) -> Result<(), Outcome> {
        let mut full = vec!["-n", self.rt.as_str()];
        full.extend_from_slice(args);
        let spec = CommandSpec::new("ip")
            .args(full)
            .timeout(Duration::from_secs(10));
        let out = self
            .cx
            .command(spec)
            .await
            .map_err(|e| Outcome::error(format!("{e}: {}", e.source)))?;
        if out.success() {
            let _ = self
                .run_ok("ip", &["-n", &self.rt, "link", "del", "nfvkprobe"])
                .await;
            return Ok(());
        }
        let err = out.stderr_text();
        if err.contains("Unknown device type") || err.contains("not supported") {
            Err(Outcome::not_applicable(format!(
                "this kernel cannot create {what} links ({})",
                err.trim()
            )))
        } else {
            Err(Outcome::error(format!(
                "probing {what} support failed: {}",
                err.trim()
            )))
        }
    }

    /// The macvlan master `nfvmm0`: one end of a veth pair the harness creates in the runtime
    /// namespace (never an existing interface).
    pub(crate) async fn macvlan_master(&self) -> Result<(), Outcome> {
        if self.links(None).await?.iter().any(|l| l.name == "nfvmm0") {
            return Ok(());
        }
        self.run_ok(
            "ip",
            &[
                "-n", &self.rt, "link", "add", "nfvmm0", "type", "veth", "peer", "name", "nfvmm1",
            ],
        )
        .await?;
        self.run_ok("ip", &["-n", &self.rt, "link", "set", "nfvmm0", "up"])
            .await?;
        self.run_ok("ip", &["-n", &self.rt, "link", "set", "nfvmm1", "up"])
            .await?;
        Ok(())
    }

    fn ns_args<'b>(&'b self, ns: Option<&'b Netns>) -> [&'b str; 2] {
        ["-n", ns.map_or(self.rt.as_str(), |n| n.name.as_str())]
    }

    /// Links of a container namespace, or of the runtime namespace for `None`.
    pub(crate) async fn links(&self, ns: Option<&Netns>) -> Result<Vec<Link>, Outcome> {
        let [a, b] = self.ns_args(ns);
        let out = self
            .run_ok("ip", &[a, b, "-j", "-d", "link", "show"])
            .await?;
        netstate::parse_links(&out).map_err(Outcome::error)
    }

    pub(crate) async fn addrs(&self, ns: Option<&Netns>) -> Result<Vec<(String, String)>, Outcome> {
        let [a, b] = self.ns_args(ns);
        let out = self.run_ok("ip", &[a, b, "-j", "addr", "show"]).await?;
        netstate::parse_addrs(&out).map_err(Outcome::error)
    }

    pub(crate) async fn routes(&self, ns: Option<&Netns>) -> Result<Vec<RouteEntry>, Outcome> {
        let [a, b] = self.ns_args(ns);
        let out = self.run_ok("ip", &[a, b, "-j", "route", "show"]).await?;
        netstate::parse_routes(&out).map_err(Outcome::error)
    }

    /// Runtime-namespace state that DEL must restore: link names, iptables rules, qdiscs.
    pub(crate) async fn host_snapshot(&self) -> Result<Vec<String>, Outcome> {
        let mut lines: Vec<String> = self
            .links(None)
            .await?
            .into_iter()
            .map(|l| format!("link {}", l.name))
            .collect();
        for table in ["nat", "filter"] {
            let spec = CommandSpec::new("ip")
                .args(["netns", "exec", &self.rt, "iptables-save", "-t", table])
                .timeout(Duration::from_secs(10));
            if let Ok(out) = self.cx.command(spec).await {
                lines.extend(
                    out.stdout_text()
                        .lines()
                        .filter(|l| !l.starts_with('#') && !l.starts_with(':') && !l.is_empty())
                        .map(|l| format!("iptables {table} {l}")),
                );
            }
        }
        let spec = CommandSpec::new("ip")
            .args(["netns", "exec", &self.rt, "tc", "qdisc", "show"])
            .timeout(Duration::from_secs(10));
        if let Ok(out) = self.cx.command(spec).await {
            lines.extend(
                out.stdout_text()
                    .lines()
                    .filter(|l| !l.contains("noqueue"))
                    .map(|l| format!("tc {l}")),
            );
        }
        lines.sort();
        Ok(lines)
    }
}

/// Deletes a named netns (cleanup runs on a blocking thread, outside the runtime).
fn delete_netns_blocking(name: &str) -> Result<(), String> {
    if !std::path::Path::new("/run/netns").join(name).exists() {
        return Ok(());
    }
    let out = std::process::Command::new("ip")
        .args(["netns", "del", name])
        .output()
        .map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip netns del {name}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
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
