//! Processes and namespaces of the lab's nodes: finding what runs in a node's network
//! namespace, and stopping it by PID, checked by start time, never by name.

#![allow(clippy::wildcard_imports)]
use super::*;

pub(super) fn link_exists(name: &str) -> bool {
    Path::new("/sys/class/net").join(name).exists()
}

pub(super) fn netns_path(name: &str) -> PathBuf {
    Path::new(NETNS_DIR).join(name)
}

/// The identity (device, inode) of a network namespace file (`/run/netns/X`, `/proc/P/ns/net`).
pub(super) fn netns_id(path: &Path) -> Option<(u64, u64)> {
    fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

/// A process as `/proc/PID/stat` shows it: enough to follow a process tree, and to recognise
/// the same process again before signalling it a second time (a re-used PID has another start
/// time).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Proc {
    pub(super) pid: i32,
    pub(super) ppid: i32,
    /// Start time in clock ticks since boot (field 22 of /proc/PID/stat).
    pub(super) start: u64,
    pub(super) comm: String,
    pub(super) zombie: bool,
    pub(super) netns: Option<(u64, u64)>,
}

impl Proc {
    pub(super) fn read(pid: i32) -> Option<Self> {
        let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // `pid (comm) state ppid …`: comm may hold spaces and parentheses, so split at the
        // last `)`.
        let (head, rest) = stat.rsplit_once(')')?;
        let fields: Vec<&str> = rest.split_whitespace().collect();
        Some(Self {
            pid,
            ppid: fields.get(1)?.parse().ok()?,
            start: fields.get(19)?.parse().ok()?,
            comm: head.split_once('(')?.1.to_owned(),
            zombie: *fields.first()? == "Z",
            netns: netns_id(Path::new(&format!("/proc/{pid}/ns/net"))),
        })
    }

    /// Whether this very process (same PID and start time) still runs: a zombie has exited
    /// (its parent may be an init that never reaps).
    fn alive(&self) -> bool {
        Self::read(self.pid).is_some_and(|now| now.start == self.start && !now.zombie)
    }
}

pub(super) fn all_processes() -> Vec<Proc> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(Proc::read)
        .collect()
}

/// Every live process whose network namespace is `ns`.
pub(super) fn processes_in(ns: (u64, u64)) -> Vec<Proc> {
    all_processes()
        .into_iter()
        .filter(|p| p.netns == Some(ns) && !p.zombie)
        .collect()
}

/// Whether any process named `sshd` runs on the machine (in any namespace).
pub(super) fn any_sshd_running() -> bool {
    all_processes()
        .iter()
        .any(|p| p.comm == "sshd" && !p.zombie)
}

/// Stops `procs` (processes of one of the lab's nodes, identified by the caller): SIGTERM,
/// then SIGKILL to those that are still the same processes after 5 s.
pub(super) fn terminate(procs: &[Proc], what: &str) -> Result<(), String> {
    let signal_all = |sig: Signal| {
        for p in procs.iter().filter(|p| p.alive()) {
            // A process that exited in between is fine.
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(p.pid), sig);
        }
    };
    let wait = |within: Duration| {
        let start = Instant::now();
        while procs.iter().any(Proc::alive) {
            if start.elapsed() > within {
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        true
    };
    signal_all(Signal::SIGTERM);
    if wait(Duration::from_secs(5)) {
        return Ok(());
    }
    signal_all(Signal::SIGKILL);
    if wait(Duration::from_secs(5)) {
        return Ok(());
    }
    let left: Vec<String> = procs
        .iter()
        .filter(|p| p.alive())
        .map(|p| format!("{} (pid {})", p.comm, p.pid))
        .collect();
    Err(format!("{what}: did not stop: {}", left.join(", ")))
}

/// Stops a node's sshd: the listener (the PID in its pidfile, if that process is sshd), every
/// other sshd process in the node's namespace (sessions outlive the listener), and what those
/// started in the namespace (the commands the sessions run, which would otherwise outlive
/// them: a dead node runs nothing). Returns the PIDs stopped.
pub(super) fn stop_node_sshds(layout: &NodesLayout, node: &str) -> Result<Vec<i32>, String> {
    let ns = netns_id(&netns_path(node));
    let mut stopped = Vec::new();
    // A connection accepted while stopping starts one more session: look again (bounded).
    for _ in 0..3 {
        let listener = running_pid(&layout.pidfile(node), "sshd");
        let procs = all_processes();
        let mut targets: Vec<Proc> = procs
            .iter()
            .filter(|p| {
                !p.zombie
                    && p.comm == "sshd"
                    && (Some(p.pid) == listener || (ns.is_some() && p.netns == ns))
            })
            .cloned()
            .collect();
        // Their descendants in the same namespace, found before any of them is signalled
        // (afterwards they would be reparented and no longer recognisable).
        let mut i = 0;
        while i < targets.len() {
            let (parent, parent_ns) = (targets[i].pid, targets[i].netns);
            let children: Vec<Proc> = procs
                .iter()
                .filter(|p| {
                    p.ppid == parent
                        && !p.zombie
                        && p.netns == parent_ns
                        && !targets.iter().any(|t| t.pid == p.pid)
                })
                .cloned()
                .collect();
            targets.extend(children);
            i += 1;
        }
        if targets.is_empty() {
            break;
        }
        terminate(&targets, &format!("node {node}: stopping sshd"))?;
        stopped.extend(targets.iter().map(|p| p.pid));
    }
    let _ = fs::remove_file(layout.pidfile(node));
    Ok(stopped)
}
