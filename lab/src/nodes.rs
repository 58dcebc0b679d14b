//! `nfvi-verify lab up --nodes N`: "nodes" on this machine for the multi-node checks. Each node
//! is a network namespace running a real OpenSSH server (Debian's `openssh-server`), reached
//! from the host over a Linux bridge, the way a deployment host reaches the hosts of a Kolla
//! inventory over the management network:
//!
//! ```text
//!   host namespace                              node namespaces
//!   <prefix>br  198.19.10.1/24 ──┬── <prefix>-01 ═ eth0 198.19.10.11/24  sshd :22
//!                                ├── <prefix>-02 ═ eth0 198.19.10.12/24  sshd :22
//!                                └── …
//! ```
//!
//! The host end of each veth pair carries its node's name; the other end is `eth0` inside the
//! namespace (created there directly, so no second `eth0` ever appears next to the host's).
//! `up` writes a key pair, per-node host keys, `known_hosts` and a Kolla-style INI inventory;
//! `down` removes exactly what the state file (`nodes.json`) records, and stops only the
//! `sshd` processes whose PID came from a node's pidfile or whose network namespace is a
//! node's namespace (always checking `/proc/PID/comm`).
//!
//! Nothing here changes sysctls or firewall rules: the nodes have no default route and talk
//! only to the host and to each other, over the bridge.

use std::collections::BTreeSet;
use std::fs;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use serde::{Deserialize, Serialize};

use crate::engine::{run, running_pid};

mod create;
mod layout;
mod procs;
mod sshd;
use create::*;
use procs::*;
use sshd::*;

pub use layout::NodesLayout;

/// The most nodes `up` builds (addresses .11 to .42 of the /24).
pub const MAX_NODES: usize = 32;

/// The OpenSSH server each node runs (absolute: sshd re-executes itself and insists on it).
const SSHD: &str = "/usr/sbin/sshd";
/// sshd's privilege-separation directory (compiled into Debian's sshd).
const PRIVSEP_DIR: &str = "/run/sshd";
/// Where `ip netns add` keeps its namespace files.
const NETNS_DIR: &str = "/run/netns";
/// The longest name prefix: `<prefix>-NN` (a host-side veth) must fit in 15 characters.
const MAX_PREFIX: usize = 12;
/// How long a freshly started sshd gets to write its pidfile and answer on port 22.
const SSHD_START: Duration = Duration::from_secs(15);

/// What `up` created, saved after every step so that `down` (or `up`'s own clean-up after a
/// failure) removes exactly that.
#[derive(Debug, Default, Serialize, Deserialize)]
struct State {
    /// The node count `up` was asked for.
    count: usize,
    /// The nodes' /24.
    subnet: String,
    /// The bridge, once created.
    bridge: Option<String>,
    /// Whether the lab created sshd's privilege-separation directory (then `down` removes it).
    created_privsep_dir: bool,
    /// Files written outside the state directory (the lab's inventory and known_hosts).
    written: Vec<PathBuf>,
    /// The nodes, in order, each with what was created for it so far.
    nodes: Vec<NodeState>,
}

#[derive(Debug, Serialize, Deserialize)]
struct NodeState {
    name: String,
    address: Ipv4Addr,
    /// Whether the namespace `name` was created.
    netns: bool,
    /// The host-side veth, once created (its peer is `eth0` in the namespace).
    veth: Option<String>,
    /// The sshd listener's PID when it was last started (the pidfile is authoritative).
    sshd_pid: Option<i32>,
}

fn load(layout: &NodesLayout) -> Result<Option<State>, String> {
    let path = layout.state_file();
    match fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| format!("cannot parse {}: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

fn save(layout: &NodesLayout, state: &State) -> Result<(), String> {
    let path = layout.state_file();
    let text = serde_json::to_string_pretty(state).expect("the state serialises");
    // Write, then rename: a crash never leaves a truncated state file behind.
    let tmp = path.with_extension("json.tmp");
    write_file(&tmp, &text, 0o600)?;
    fs::rename(&tmp, &path).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Writes `text` to `path` with `mode` (the mode applies to a file that already exists, too).
fn write_file(path: &Path, text: &str, mode: u32) -> Result<(), String> {
    let what = |e: std::io::Error| format!("cannot write {}: {e}", path.display());
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)
        .map_err(what)?;
    f.set_permissions(fs::Permissions::from_mode(mode))
        .map_err(what)?;
    f.write_all(text.as_bytes()).map_err(what)
}

/// Creates `dir` (and missing parents) and gives it `mode`.
fn make_dir(dir: &Path, mode: u32) -> Result<(), String> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(mode)
        .create(dir)
        .and_then(|()| fs::set_permissions(dir, fs::Permissions::from_mode(mode)))
        .map_err(|e| format!("cannot create {}: {e}", dir.display()))
}

/// `up`: `n` nodes as `layout` describes; idempotent for the same `n`, rebuilt for another.
/// On failure everything created so far is removed again and the error names the step.
pub fn up(n: usize, layout: &NodesLayout, progress: &mut dyn FnMut(&str)) -> Result<(), String> {
    if !(1..=MAX_NODES).contains(&n) {
        return Err(format!("the lab builds 1 to {MAX_NODES} nodes, not {n}"));
    }
    layout.validate()?;
    if !nix::unistd::geteuid().is_root() {
        return Err("the lab's nodes need root (network namespaces, a bridge, sshd)".to_owned());
    }
    need_tools()?;
    if let Some(state) = load(layout)? {
        let running = node_pids(layout).len();
        if state.count == n && state.subnet == layout.subnet() && running == n {
            progress(&format!(
                "nodes already up: {n} in {}; inventory {}",
                layout.subnet(),
                layout.inventory_path().display()
            ));
            return Ok(());
        }
        progress(&format!(
            "{} nodes are recorded ({running} sshd running); taking them down before building {n}",
            state.count
        ));
        down(layout, progress)?;
    }
    preflight(n, layout)?;
    let mut state = State {
        count: n,
        subnet: layout.subnet(),
        ..State::default()
    };
    match build(n, layout, &mut state, progress) {
        Ok(()) => Ok(()),
        Err(e) => {
            progress(&format!("{e}; removing what was created so far"));
            match teardown(layout, &state, progress) {
                failures if failures.is_empty() => Err(e),
                failures => Err(format!(
                    "{e}; the clean-up failed too: {}",
                    failures.join("; ")
                )),
            }
        }
    }
}

/// `down`: removes what the state file records (sshd processes, namespaces, veths, the
/// bridge, the files, the state directory, /run/sshd if the lab created it). Succeeds when
/// nothing is up; goes on past individual failures and reports them all (then the state file
/// stays, so that `down` can be run again).
pub fn down(layout: &NodesLayout, progress: &mut dyn FnMut(&str)) -> Result<(), String> {
    let Some(state) = load(layout)? else {
        progress("no nodes are up");
        return Ok(());
    };
    progress(&format!(
        "taking down {} nodes in {}",
        state.nodes.len(),
        state.subnet
    ));
    let failures = teardown(layout, &state, progress);
    if failures.is_empty() {
        progress("nodes are down");
        Ok(())
    } else {
        Err(format!(
            "taking the nodes down: {}; the state stays in {} for another `down`",
            failures.join("; "),
            layout.state_file().display()
        ))
    }
}

/// Removes what `state` records; returns the failures (empty: all gone, state dir included).
fn teardown(layout: &NodesLayout, state: &State, progress: &mut dyn FnMut(&str)) -> Vec<String> {
    let mut failures = Vec::new();
    // Every sshd first, so that no node's process keeps another node's namespace mounted.
    for node in &state.nodes {
        match stop_node_sshds(layout, &node.name) {
            Ok(pids) if !pids.is_empty() => progress(&format!(
                "node {}: stopped sshd and its sessions (pids {pids:?})",
                node.name
            )),
            Ok(_) => {}
            Err(e) => failures.push(e),
        }
    }
    for node in state.nodes.iter().rev() {
        let name = &node.name;
        // Deleting the host end removes the pair, whatever still runs in the namespace.
        if let Some(veth) = &node.veth
            && link_exists(veth)
            && let Err(e) = run(
                Command::new("ip").args(["link", "del", veth]),
                &format!("node {name}: deleting veth {veth}"),
            )
        {
            failures.push(e);
        }
        if node.netns && netns_path(name).exists() {
            if let Some(ns) = netns_id(&netns_path(name)) {
                let left: Vec<String> = processes_in(ns)
                    .into_iter()
                    .map(|p| format!("{} (pid {})", p.comm, p.pid))
                    .collect();
                if !left.is_empty() {
                    // Not ours to kill: reported; the namespace lives on until they exit.
                    failures.push(format!(
                        "node {name}: processes the lab did not start still run in its namespace: {}",
                        left.join(", ")
                    ));
                }
            }
            if let Err(e) = run(
                Command::new("ip").args(["netns", "del", name]),
                &format!("node {name}: deleting the network namespace"),
            ) {
                failures.push(e);
            }
        }
    }
    if let Some(bridge) = &state.bridge
        && link_exists(bridge)
        && let Err(e) = run(
            Command::new("ip").args(["link", "del", bridge]),
            &format!("deleting bridge {bridge}"),
        )
    {
        failures.push(e);
    }
    for path in &state.written {
        match fs::remove_file(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                failures.push(format!("cannot remove {}: {e}", path.display()))
            }
            _ => {}
        }
    }
    if state.created_privsep_dir {
        if any_sshd_running() {
            progress(&format!(
                "{PRIVSEP_DIR} (created by the lab) stays: another sshd runs on this machine"
            ));
        } else {
            match fs::remove_dir(PRIVSEP_DIR) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    failures.push(format!("cannot remove {PRIVSEP_DIR}: {e}"))
                }
                _ => {}
            }
        }
    }
    if failures.is_empty()
        && layout.state_dir.exists()
        && let Err(e) = fs::remove_dir_all(&layout.state_dir)
    {
        failures.push(format!("cannot remove {}: {e}", layout.state_dir.display()));
    }
    failures
}

/// Each recorded node whose sshd listener runs, with the listener's PID (from its pidfile,
/// checked to be sshd).
pub fn node_pids(layout: &NodesLayout) -> Vec<(String, i32)> {
    load(layout)
        .ok()
        .flatten()
        .map(|state| {
            state
                .nodes
                .iter()
                .filter_map(|n| {
                    Some((
                        n.name.clone(),
                        running_pid(&layout.pidfile(&n.name), "sshd")?,
                    ))
                })
                .collect()
        })
        .unwrap_or_default()
}

fn recorded_node<'a>(state: &'a mut State, node: &str) -> Result<&'a mut NodeState, String> {
    state
        .nodes
        .iter_mut()
        .find(|n| n.name == node)
        .ok_or_else(|| format!("node {node}: not one of the lab's nodes"))
}

/// Simulates a node dying: stops its sshd listener and every sshd process in its namespace
/// (by PID, each checked to be sshd). The namespace and its address stay.
pub fn stop_sshd(layout: &NodesLayout, node: &str) -> Result<(), String> {
    let mut state = load(layout)?.ok_or_else(|| format!("node {node}: no nodes are up"))?;
    recorded_node(&mut state, node)?.sshd_pid = None;
    stop_node_sshds(layout, node).map_err(|e| format!("node {node}: stopping sshd: {e}"))?;
    save(layout, &state)
}

/// Gives a node a new host key and restarts its sshd listener (known_hosts is not updated, so
/// clients that check host keys now refuse the node).
pub fn rotate_host_key(layout: &NodesLayout, node: &str) -> Result<(), String> {
    let mut state = load(layout)?.ok_or_else(|| format!("node {node}: no nodes are up"))?;
    let address = recorded_node(&mut state, node)?.address;
    if let Some(listener) = running_pid(&layout.pidfile(node), "sshd").and_then(Proc::read) {
        terminate(
            &[listener],
            &format!("node {node}: stopping the sshd listener"),
        )?;
    }
    let key = layout.host_key(node);
    for path in [key.clone(), PathBuf::from(format!("{}.pub", key.display()))] {
        match fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(format!(
                    "node {node}: cannot remove {}: {e}",
                    path.display()
                ));
            }
            _ => {}
        }
    }
    keygen(&key, node).map_err(|e| format!("node {node}: new host key: {e}"))?;
    let pid = start_sshd(layout, node, address).map_err(|e| format!("node {node}: {e}"))?;
    recorded_node(&mut state, node)?.sshd_pid = Some(pid);
    save(layout, &state)
}

/// `lab status`: one line about the nodes.
pub fn status(layout: &NodesLayout) -> String {
    match load(layout) {
        Err(e) => format!("nodes: {e}"),
        Ok(None) => "nodes: none".to_owned(),
        Ok(Some(state)) => {
            let running = node_pids(layout);
            let listed: Vec<String> = state
                .nodes
                .iter()
                .map(|n| match running.iter().find(|(name, _)| *name == n.name) {
                    Some((_, pid)) => format!("{} {} sshd pid {pid}", n.name, n.address),
                    None => format!("{} {} sshd not running", n.name, n.address),
                })
                .collect();
            format!(
                "nodes: {} of {} with sshd running, in {} ({}); inventory {}",
                running.len(),
                state.count,
                state.subnet,
                listed.join(", "),
                layout.inventory_path().display()
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout() -> NodesLayout {
        NodesLayout::private(Path::new("/run/x"), [198, 19, 11], "nt42")
    }

    #[test]
    fn names_and_addresses() {
        let l = NodesLayout::lab();
        assert_eq!(l.bridge(), "nfvnodebr");
        assert_eq!(l.node_name(3), "nfvnode-03");
        assert_eq!(l.node_address(1), Ipv4Addr::new(198, 19, 10, 11));
        assert_eq!(l.node_address(MAX_NODES), Ipv4Addr::new(198, 19, 10, 42));
        assert_eq!(l.host_address(), Ipv4Addr::new(198, 19, 10, 1));
        assert_eq!(
            l.inventory_path(),
            Path::new("/var/lib/nfvi-verify/lab/inventory")
        );
        assert_eq!(
            l.known_hosts_path(),
            Path::new("/var/lib/nfvi-verify/lab/known_hosts")
        );
        assert_eq!(
            l.private_key_path(),
            Path::new("/var/lib/nfvi-verify/lab/nodes/id_ed25519")
        );
        l.validate().unwrap();
        // The longest prefix still gives interface names of at most 15 characters.
        let long = NodesLayout::private(Path::new("/run/x"), [198, 19, 11], "abcdefghijkl");
        long.validate().unwrap();
        assert!(long.node_name(MAX_NODES).len() <= 15 && long.bridge().len() <= 15);
    }

    #[test]
    fn layouts_outside_the_lab_range_or_with_bad_names_are_refused() {
        let mut l = layout();
        l.subnet_base = [10, 0, 0];
        assert!(l.validate().unwrap_err().contains("198.18.0.0/15"));
        for prefix in ["", "abcdefghijklm", "Node", "n-1", "1n"] {
            let mut l = layout();
            l.name_prefix = prefix.to_owned();
            assert!(l.validate().is_err(), "{prefix}");
        }
        let l = NodesLayout::private(Path::new("relative"), [198, 19, 11], "nt");
        assert!(l.validate().is_err());
    }

    #[test]
    fn inventory_groups() {
        let text = inventory_text(&layout(), 3);
        assert_eq!(
            text,
            "# written by `nfvi-verify lab up --nodes 3`; nodes are network namespaces on this machine\n\
             [control]\nnt42-01 ansible_host=198.19.11.11\n\n\
             [network]\nnt42-01 ansible_host=198.19.11.11\n\n\
             [compute]\nnt42-02 ansible_host=198.19.11.12\nnt42-03 ansible_host=198.19.11.13\n\n\
             [all:vars]\nansible_user=root\nansible_ssh_private_key_file=/run/x/id_ed25519\n\
             ansible_ssh_common_args='-o UserKnownHostsFile=/run/x/known_hosts'\n"
        );
        // A single node is in every group.
        let one = inventory_text(&layout(), 1);
        assert_eq!(one.matches("nt42-01 ansible_host=198.19.11.11").count(), 3);
    }

    #[test]
    fn sshd_config_is_locked_down() {
        let c = sshd_config(&layout(), "nt42-01", Ipv4Addr::new(198, 19, 11, 11));
        for line in [
            "ListenAddress 198.19.11.11:22",
            "HostKey /run/x/nt42-01/ssh_host_ed25519_key",
            "PidFile /run/x/nt42-01/sshd.pid",
            "AuthorizedKeysFile /run/x/authorized_keys",
            "PermitRootLogin prohibit-password",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "StrictModes yes",
            "Subsystem sftp internal-sftp",
            "MaxSessions 32",
            "MaxStartups 64",
            "LogLevel VERBOSE",
        ] {
            assert!(c.lines().any(|l| l == line), "{line} missing from\n{c}");
        }
        assert!(!c.lines().any(|l| l.starts_with("AcceptEnv")), "{c}");
    }
}
