//! The OpenSSH side of the lab's nodes: keys, sshd's configuration, starting it in a node's
//! namespace, and checking that the nodes reach each other.

#![allow(clippy::wildcard_imports)]
use super::*;

/// `ssh-keygen -q -t ed25519 -N '' -C COMMENT -f PATH` (0600 private key, .pub next to it).
pub(super) fn keygen(path: &Path, comment: &str) -> Result<(), String> {
    run(
        Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f"])
            .arg(path),
        &format!("ssh-keygen {}", path.display()),
    )?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o600))
        .map_err(|e| format!("cannot chmod {}: {e}", path.display()))
}

/// `ssh-ed25519 AAAA…` from the `.pub` next to a private key (without its comment).
pub(super) fn read_public_key(private: &Path) -> Result<String, String> {
    let path = PathBuf::from(format!("{}.pub", private.display()));
    let text =
        fs::read_to_string(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut fields = text.split_whitespace();
    match (fields.next(), fields.next()) {
        (Some(kind), Some(key)) => Ok(format!("{kind} {key}")),
        _ => Err(format!("{} holds no public key", path.display())),
    }
}

/// Whether root's password is locked with `!` in /etc/shadow: without PAM, sshd then refuses
/// root even with a key ("account is locked"), so PAM is used for that case only.
pub(super) fn root_locked() -> bool {
    fs::read_to_string("/etc/shadow")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("root:").map(|r| r.starts_with('!')))
        })
        .unwrap_or(false)
}

pub(super) fn sshd_config(layout: &NodesLayout, node: &str, address: Ipv4Addr) -> String {
    let node_dir = layout.node_dir(node);
    let pam = if root_locked() {
        "# root's password is locked with `!`: without PAM sshd would refuse root even with a key\n\
         UsePAM yes"
    } else {
        "UsePAM no"
    };
    format!(
        "# Written by `nfvi-verify lab up --nodes`: node {node} (network namespace {node}).\n\
         ListenAddress {address}:22\n\
         AddressFamily inet\n\
         HostKey {host_key}\n\
         PidFile {pidfile}\n\
         AuthorizedKeysFile {authorized_keys}\n\
         PermitRootLogin prohibit-password\n\
         PubkeyAuthentication yes\n\
         PasswordAuthentication no\n\
         KbdInteractiveAuthentication no\n\
         {pam}\n\
         StrictModes yes\n\
         # No AcceptEnv line: no client environment is passed in.\n\
         Subsystem sftp internal-sftp\n\
         MaxSessions 32\n\
         MaxStartups 64\n\
         LogLevel VERBOSE\n\
         PrintMotd no\n\
         PrintLastLog no\n\
         X11Forwarding no\n",
        host_key = layout.host_key(node).display(),
        pidfile = node_dir.join("sshd.pid").display(),
        authorized_keys = layout.authorized_keys_path().display(),
    )
}

/// Starts the node's sshd inside its namespace and waits until its pidfile names a running
/// sshd and port 22 answers with an SSH banner (from the host, over the bridge).
pub(super) fn start_sshd(
    layout: &NodesLayout,
    node: &str,
    address: Ipv4Addr,
) -> Result<i32, String> {
    let pidfile = layout.pidfile(node);
    let log = layout.sshd_log(node);
    let _ = fs::remove_file(&pidfile);
    let log_tail = || {
        let text = fs::read_to_string(&log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(5)..].join(" | ")
    };
    // sshd checks its configuration and keys, then daemonises (stdio to /dev/null), so `ip`
    // returns once the daemon runs; with -E, its errors go to the log.
    run(
        Command::new("ip")
            .args(["netns", "exec", node, SSHD, "-f"])
            .arg(layout.node_dir(node).join("sshd_config"))
            .arg("-E")
            .arg(&log),
        "starting sshd",
    )
    .map_err(|e| format!("{e} {}", log_tail()))?;
    let start = Instant::now();
    loop {
        if let Some(pid) = running_pid(&pidfile, "sshd")
            && ssh_banner(address)
        {
            return Ok(pid);
        }
        if start.elapsed() > SSHD_START {
            return Err(format!(
                "sshd did not answer on {address}:22 within {} s; log {}: {}",
                SSHD_START.as_secs(),
                log.display(),
                log_tail()
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Whether `address:22` answers with an SSH banner.
pub(super) fn ssh_banner(address: Ipv4Addr) -> bool {
    let Ok(mut s) =
        TcpStream::connect_timeout(&SocketAddr::from((address, 22)), Duration::from_secs(1))
    else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let mut head = [0u8; 8];
    s.read_exact(&mut head).is_ok() && head.starts_with(b"SSH-2.0-")
}

/// From the first node's namespace, scan every other node's host key: proves that the nodes
/// reach each other over the bridge and that each answers with the key in known_hosts.
pub(super) fn check_between_nodes(layout: &NodesLayout, state: &State) -> Result<(), String> {
    let Some((first, others)) = state.nodes.split_first() else {
        return Ok(());
    };
    if others.is_empty() {
        return Ok(());
    }
    let expected: BTreeSet<String> = fs::read_to_string(layout.known_hosts_path())
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.starts_with(&first.address.to_string()))
        .map(str::to_owned)
        .collect();
    let out = Command::new("ip")
        .args([
            "netns",
            "exec",
            &first.name,
            "ssh-keyscan",
            "-T",
            "5",
            "-t",
            "ed25519",
        ])
        .args(others.iter().map(|o| o.address.to_string()))
        .output()
        .map_err(|e| format!("node {}: ssh-keyscan: {e}", first.name))?;
    let seen: BTreeSet<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .collect();
    let missing: Vec<&String> = expected.difference(&seen).collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(format!(
        "node {}: the other nodes do not answer over the bridge with their host keys (missing: {}){}",
        first.name,
        missing
            .iter()
            .map(|l| l.split_whitespace().next().unwrap_or(""))
            .collect::<Vec<_>>()
            .join(", "),
        bridge_filter_hint()
    ))
}

/// Why traffic between the nodes might be dropped on a host the lab does not reconfigure.
pub(super) fn bridge_filter_hint() -> String {
    let bridged_through_iptables =
        fs::read_to_string("/proc/sys/net/bridge/bridge-nf-call-iptables")
            .is_ok_and(|v| v.trim() == "1");
    if !bridged_through_iptables {
        return String::new();
    }
    let drop = Command::new("iptables")
        .args(["-S", "FORWARD"])
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("-P FORWARD DROP"));
    format!(
        "; br_netfilter is loaded with net.bridge.bridge-nf-call-iptables=1{}, so traffic \
         between the nodes passes the host's iptables FORWARD chain and may be dropped there; \
         the lab changes no firewall rules or sysctls: allow the nodes' subnet in FORWARD, or \
         set net.bridge.bridge-nf-call-iptables=0",
        if drop {
            " and the FORWARD policy is DROP"
        } else {
            ""
        }
    )
}
