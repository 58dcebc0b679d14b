//! [`SshTransport`]: the node agent over the system OpenSSH client, the way Ansible uses it.
//!
//! Per node, one master connection (`ssh -M -N`, a child of nfvi-verify, its control socket
//! in a private directory); every later command goes through it (`ssh -S`). Host keys are
//! checked strictly against known_hosts unless `--accept-new-host-keys`; passwords are never
//! asked for (`BatchMode=yes`). The user's `~/.ssh/config`, ssh-agent and ProxyJump apply.
//!
//! Running the agent on a node: copy this binary into a private directory on the node
//! (`mktemp -d`, verified by SHA-256) or use an installed one of the same version, run
//! `nfvi-verify node` (through `sudo -n` with `ansible_become`: sudo must not ask for a
//! password), write the request line and keep its input open; closing it is the stop
//! signal. The directory is removed afterwards.
//!
//! Checks of the whole NFVI start commands of their own on the nodes
//! ([`Transport::spawn_agent`]): the agent is put on the node the same way, the command is
//! tied to its input by a small shell wrapper ([`argv::spawn_command`]), and the node's
//! master connection, reopened for it, stays until the transport closes.

mod agent;
pub mod argv;
pub mod diagnose;
mod proc;
mod spawn;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use nfvi_harness::cancel::CancelToken;
use nfvi_harness::fleet::{AgentEvent, AgentRequest, FleetError, NodeError, NodeSpec, Transport};
use nfvi_harness::results::CleanupRecord;

use crate::inventory::{Connection, Inventory};

/// Where the agent on the nodes comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentSource {
    /// Copy this binary to each node for the run (removed afterwards).
    Copy,
    /// An nfvi-verify installed on every node at this absolute path, of the same version.
    Installed(PathBuf),
}

/// How the transport reaches the nodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshOptions {
    /// Accept (and record in known_hosts) the keys of nodes known_hosts does not hold,
    /// without verification (`StrictHostKeyChecking=accept-new`). Changed keys are still
    /// refused.
    pub accept_new_host_keys: bool,
    /// Nodes verified at once.
    pub parallel: usize,
    /// Where the agent comes from.
    pub agent: AgentSource,
    /// `ConnectTimeout`, seconds.
    pub connect_timeout_secs: u64,
    /// What `nfvi-verify --version` prints for this build (`nfvi-verify 0.1.0`); an
    /// installed agent must print exactly this.
    pub expected_version: String,
    /// The ssh client, `ssh` (on PATH) unless a test says otherwise.
    pub program: String,
    /// The binary [`AgentSource::Copy`] copies to the nodes (and a local node runs);
    /// `None`: this nfvi-verify itself (`current_exe`), as a run wants. Tests put a
    /// stand-in agent here.
    pub agent_binary: Option<PathBuf>,
}

impl SshOptions {
    /// The binary a copied agent is made from.
    pub fn agent_binary(&self) -> Result<PathBuf, String> {
        match &self.agent_binary {
            Some(p) => Ok(p.clone()),
            None => std::env::current_exe()
                .map_err(|e| format!("cannot find this binary to copy it: {e}")),
        }
    }
}

/// The agent binary this process copies: its bytes and SHA-256, read once per run.
struct LocalAgent {
    bytes: Arc<Vec<u8>>,
    sha256: String,
}

/// Runs the node agent on the hosts of an Ansible inventory over SSH.
pub struct SshTransport {
    nodes: Vec<NodeSpec>,
    conns: Vec<Connection>,
    opts: SshOptions,
    /// The private directory of the control sockets and master logs; taken by close.
    control_dir: Mutex<Option<tempfile::TempDir>>,
    control_path: PathBuf,
    /// The running master of each node, by node index.
    masters: Mutex<HashMap<usize, Child>>,
    local_agent: OnceLock<Result<Arc<LocalAgent>, String>>,
    /// Nodes whose host key was accepted without verification this run.
    accepted: Mutex<Vec<String>>,
    /// Held while a master is (re)opened for [`Transport::spawn_agent`].
    connecting: Mutex<()>,
}

impl SshTransport {
    /// A transport for every host of `inventory`. Fails when a host's connection variables
    /// are wrong (an input error naming file and line), or the private control directory
    /// cannot be made.
    pub fn new(inventory: &Inventory, opts: SshOptions) -> Result<Self, FleetError> {
        let mut nodes = Vec::with_capacity(inventory.hosts.len());
        let mut conns = Vec::with_capacity(inventory.hosts.len());
        for host in &inventory.hosts {
            let conn = Connection::of(host, &inventory.file)
                .map_err(|e| FleetError::Input(e.to_string()))?;
            nodes.push(NodeSpec {
                name: host.name.clone(),
                roles: host.roles.clone(),
                address: Some(conn.address.clone()),
            });
            conns.push(conn);
        }
        let dir = control_dir().map_err(|e| {
            FleetError::Unavailable(format!(
                "cannot make a private directory for the ssh control sockets: {e}"
            ))
        })?;
        Ok(Self {
            nodes,
            conns,
            opts,
            control_path: dir.path().to_owned(),
            control_dir: Mutex::new(Some(dir)),
            masters: Mutex::new(HashMap::new()),
            local_agent: OnceLock::new(),
            accepted: Mutex::new(Vec::new()),
            connecting: Mutex::new(()),
        })
    }

    /// The options it was made with.
    pub fn options(&self) -> &SshOptions {
        &self.opts
    }

    /// How each node is reached, in node order.
    pub fn connections(&self) -> &[Connection] {
        &self.conns
    }

    fn socket(&self, n: usize) -> PathBuf {
        self.control_path.join(format!("n{n}"))
    }

    fn log(&self, n: usize) -> PathBuf {
        self.control_path.join(format!("n{n}.log"))
    }

    fn masters(&self) -> std::sync::MutexGuard<'_, HashMap<usize, Child>> {
        self.masters.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts node `n`'s master and waits until it answers `-O check`, or fails.
    fn connect(&self, n: usize, cancel: &CancelToken) -> Result<(), NodeError> {
        let conn = &self.conns[n];
        let socket = self.socket(n);
        let log_path = self.log(n);
        let log = std::fs::File::create(&log_path)
            .map_err(|e| NodeError::new(format!("cannot create {}: {e}", log_path.display())))?;
        let argv = argv::master(&self.opts.program, conn, &self.opts, &socket);
        let child = proc::command(&argv)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| NodeError::new(format!("cannot start `{}`: {e}", self.opts.program)))?;
        self.masters().insert(n, child);
        let check = argv::control(&self.opts.program, conn, &self.opts, &socket, "check");
        // ConnectTimeout bounds each hop; a jump host adds some.
        let patience = Duration::from_secs(self.opts.connect_timeout_secs.saturating_mul(3) + 20);
        let deadline = Instant::now() + patience;
        loop {
            let exited = match self.masters().get_mut(&n).map(Child::try_wait) {
                Some(Ok(None)) => None,
                Some(Ok(Some(status))) => Some(status.code()),
                Some(Err(_)) | None => Some(None),
            };
            if let Some(code) = exited {
                self.masters().remove(&n);
                let stderr = std::fs::read_to_string(&log_path).unwrap_or_default();
                return Err(diagnose::connect_error(conn, &stderr, code, || {
                    diagnose::offered_fingerprints(conn, cancel)
                }));
            }
            if cancel.is_cancelled() {
                let _ = self.stop_master(n);
                return Err(NodeError::new(
                    "stopped: the run was cancelled while connecting",
                ));
            }
            if Instant::now() >= deadline {
                let _ = self.stop_master(n);
                return Err(NodeError::new(format!(
                    "connecting to {} did not finish within {} s",
                    conn.endpoint(),
                    patience.as_secs()
                )));
            }
            // The socket appears once the master is authenticated; `-O check` confirms.
            if socket.exists()
                && proc::run(&check, None, Duration::from_secs(5), cancel)
                    .is_ok_and(|o| o.status.success())
            {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let log = std::fs::read_to_string(&log_path).unwrap_or_default();
        if log.contains("Permanently added") {
            self.accepted
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(conn.name.clone());
        }
        Ok(())
    }

    /// Opens node `n`'s master unless it is running (for commands after the node's agent
    /// run, which closed it); a master that died is reaped first.
    fn ensure_master(&self, n: usize, cancel: &CancelToken) -> Result<(), NodeError> {
        let _one_at_a_time = self.connecting.lock().unwrap_or_else(|p| p.into_inner());
        if self.master_alive(n) {
            return Ok(());
        }
        if let Err(e) = self.stop_master(n) {
            tracing::warn!(node = %self.conns[n].name, "{e}");
        }
        self.connect(n, cancel)
    }

    /// The index of `node` in the inventory.
    fn index(&self, node: &NodeSpec) -> Result<usize, NodeError> {
        self.nodes
            .iter()
            .position(|s| s.name == node.name)
            .ok_or_else(|| NodeError::new(format!("node `{}` is not in the inventory", node.name)))
    }

    /// Whether node `n`'s master is still running.
    fn master_alive(&self, n: usize) -> bool {
        self.masters()
            .get_mut(&n)
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Ends node `n`'s master: `-O exit`, then kills it if it is still there. Returns an
    /// error when it had to be killed.
    fn stop_master(&self, n: usize) -> Result<(), String> {
        let Some(mut child) = self.masters().remove(&n) else {
            return Ok(());
        };
        let conn = &self.conns[n];
        if matches!(child.try_wait(), Ok(None)) {
            let exit = argv::control(
                &self.opts.program,
                conn,
                &self.opts,
                &self.socket(n),
                "exit",
            );
            let _ = proc::run(&exit, None, Duration::from_secs(5), &CancelToken::never());
        }
        let result = match proc::wait_until(&mut child, Instant::now() + Duration::from_secs(3)) {
            Some(_) => Ok(()),
            None => Err(format!(
                "the master connection to {} did not exit when asked; killed",
                conn.endpoint()
            )),
        };
        proc::kill(&mut child);
        let _ = std::fs::remove_file(self.socket(n));
        let _ = std::fs::remove_file(self.log(n));
        result
    }

    /// Ends every master and removes the control directory.
    fn close_all(&self) -> Vec<CleanupRecord> {
        let mut records = Vec::new();
        let running: Vec<usize> = self.masters().keys().copied().collect();
        for n in running {
            records.push(CleanupRecord {
                action: format!(
                    "close the ssh master connection to {} ({})",
                    self.conns[n].name,
                    self.conns[n].endpoint()
                ),
                error: self.stop_master(n).err(),
            });
        }
        if let Some(dir) = self
            .control_dir
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            let path = dir.path().display().to_string();
            records.push(CleanupRecord {
                action: format!("remove the ssh control directory {path}"),
                error: dir.close().err().map(|e| e.to_string()),
            });
        }
        records
    }

    /// This binary and its SHA-256, read once.
    fn local_agent(&self) -> Result<Arc<LocalAgent>, String> {
        self.local_agent
            .get_or_init(|| {
                let exe = self.opts.agent_binary()?;
                let bytes = std::fs::read(&exe)
                    .map_err(|e| format!("cannot read {} to copy it: {e}", exe.display()))?;
                let digest = ring::digest::digest(&ring::digest::SHA256, &bytes);
                let sha256 = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
                Ok(Arc::new(LocalAgent {
                    bytes: Arc::new(bytes),
                    sha256,
                }))
            })
            .clone()
    }
}

/// A private directory for control sockets: short, since a socket path has at most 108
/// bytes and ssh adds a suffix while it makes one; in /tmp when `TMPDIR` is long or odd.
fn control_dir() -> std::io::Result<tempfile::TempDir> {
    let dir = nfvi_harness::scratch::private_dir("nfvi-ssh-")?;
    let usable = |p: &Path| {
        let s = p.to_string_lossy();
        s.len() <= 60 && !s.contains(|c: char| c.is_whitespace() || "%\"'\\".contains(c))
    };
    if usable(dir.path()) {
        return Ok(dir);
    }
    use std::os::unix::fs::PermissionsExt;
    tempfile::Builder::new()
        .prefix("nfvi-ssh-")
        .permissions(std::fs::Permissions::from_mode(0o700))
        .tempdir_in("/tmp")
}

impl Transport for SshTransport {
    fn kind(&self) -> &'static str {
        "ssh"
    }

    fn nodes(&self) -> &[NodeSpec] {
        &self.nodes
    }

    fn parallel(&self) -> usize {
        self.opts.parallel.max(1)
    }

    fn run(
        &self,
        node: &NodeSpec,
        request: &AgentRequest,
        cancel: &CancelToken,
        events: &mut dyn FnMut(AgentEvent),
    ) -> Result<(), NodeError> {
        let n = self.index(node)?;
        if self.conns[n].local {
            return agent::run_local(self, n, request, cancel, events);
        }
        self.connect(n, cancel)?;
        let result = agent::run_remote(self, n, request, cancel, events);
        if let Err(e) = self.stop_master(n) {
            tracing::warn!(node = %node.name, "{e}");
        }
        result
    }

    fn notes(&self) -> Vec<String> {
        let mut notes = vec![if self.opts.accept_new_host_keys {
            "host keys: --accept-new-host-keys was used: keys of nodes not in known_hosts were \
             accepted without verification (changed keys were still refused)"
                .to_owned()
        } else {
            "host keys checked strictly against known_hosts".to_owned()
        }];
        let accepted = self.accepted.lock().unwrap_or_else(|p| p.into_inner());
        if !accepted.is_empty() {
            notes.push(format!(
                "host keys accepted without verification and added to known_hosts: {}",
                accepted.join(", ")
            ));
        }
        notes.push(match &self.opts.agent {
            AgentSource::Copy => "agent: this nfvi-verify binary, copied to each node for the \
                                  run (SHA-256 verified) and removed afterwards"
                .to_owned(),
            AgentSource::Installed(p) => format!(
                "agent: {} installed on each node, checked to be {}",
                p.display(),
                self.opts.expected_version
            ),
        });
        notes
    }

    fn close(&self) -> Vec<CleanupRecord> {
        self.close_all()
    }

    fn can_spawn_agent(&self) -> bool {
        true
    }

    /// Through a master connection opened for it (kept until [`Transport::close`]), the
    /// agent copied to a fresh private directory (removed when the command ends) or the
    /// installed one; on a local node, directly.
    fn spawn_agent(
        &self,
        node: &NodeSpec,
        args: &[String],
        cancel: &CancelToken,
    ) -> Result<Child, NodeError> {
        let n = self.index(node)?;
        spawn::spawn(self, n, args, cancel)
    }
}

impl Drop for SshTransport {
    fn drop(&mut self) {
        let _ = self.close_all();
    }
}
