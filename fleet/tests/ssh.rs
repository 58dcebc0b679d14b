//! The SSH transport against real sshd nodes (the lab's network namespaces), with a stand-in
//! agent (a shell script that speaks the protocol), so that it tests the transport and not
//! the agent: the master connection, copying and verifying the agent, streaming, stopping
//! it, removing its directory, and the errors for host keys, authentication and a dead
//! node. Needs root; without it the test skips, unless CI=true.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nfvi_fleet::inventory::Inventory;
use nfvi_fleet::{AgentSource, SshOptions, SshTransport};
use nfvi_harness::cancel::{CancelReason, CancelSource, CancelToken};
use nfvi_harness::fleet::{
    AgentEvent, AgentRequest, NodeError, NodeSpec, PROTOCOL_VERSION, Transport,
};
use nfvi_lab::nodes::{self, NodesLayout};

struct Down<'a>(&'a NodesLayout);

impl Drop for Down<'_> {
    fn drop(&mut self) {
        if let Err(e) = nodes::down(self.0, &mut |m| eprintln!("nodes (clean-up): {m}")) {
            eprintln!("nodes (clean-up) failed: {e}");
        }
    }
}

fn request(checks: &[&str]) -> AgentRequest {
    AgentRequest {
        protocol: PROTOCOL_VERSION,
        version: nfvi_fleet::area::expected_version(),
        node: NodeSpec {
            name: String::new(),
            roles: vec![],
            address: None,
        },
        suite: "host".into(),
        filters: vec![],
        skips: vec![],
        checks: checks.iter().map(|c| (*c).to_owned()).collect(),
        strict: false,
        jobs: 1,
        timeout_secs: None,
        target_toml: String::new(),
    }
}

/// A stand-in agent: `--version` prints `version`; `node` records its directory in
/// `marker`, reads the request, says hello and done (for a "slow" check: only once its input
/// ends, as the real agent stops).
fn write_agent(dir: &Path, name: &str, version: &str, marker: &Path) -> PathBuf {
    let path = dir.join(name);
    let script = format!(
        r#"#!/bin/sh
case "$1" in
  --version) echo '{version}'; exit 0;;
  node) ;;
  say) shift; echo "$@"; exit 5;;
  serve) dirname "$0" >> '{marker}'; echo "$$"; exec sleep 60;;
  *) exit 2;;
esac
dirname "$0" >> '{marker}'
read -r req || exit 3
echo 'chatter from a login script'
echo '{{"event":"hello","version":"{version}"}}'
case "$req" in
  *'"slow"'*) cat >/dev/null; echo '{{"event":"done","cancelled":true}}'; exit 0;;
esac
echo '{{"event":"done","cancelled":false}}'
"#,
        marker = marker.display()
    );
    std::fs::write(&path, script).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

fn options(agent: AgentSource, binary: &Path) -> SshOptions {
    SshOptions {
        accept_new_host_keys: false,
        parallel: 2,
        agent,
        connect_timeout_secs: 5,
        expected_version: nfvi_fleet::area::expected_version(),
        program: "ssh".into(),
        agent_binary: Some(binary.to_owned()),
    }
}

fn inventory(dir: &Path, layout: &NodesLayout, key: &Path, known_hosts: &Path) -> Inventory {
    let text = format!(
        "[control]\n{n1} ansible_host={a1}\n[compute]\n{n2} ansible_host={a2}\n\
         [all:vars]\nansible_user=root\nansible_ssh_private_key_file={key}\n\
         ansible_ssh_common_args='-o UserKnownHostsFile={known} -o GlobalKnownHostsFile=/dev/null'\n",
        n1 = layout.node_name(1),
        a1 = layout.node_address(1),
        n2 = layout.node_name(2),
        a2 = layout.node_address(2),
        key = key.display(),
        known = known_hosts.display(),
    );
    let path = dir.join(format!("inventory-{}", rand_suffix()));
    std::fs::write(&path, text).unwrap();
    Inventory::load(&path).unwrap()
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

fn run(
    t: &SshTransport,
    node: usize,
    checks: &[&str],
    cancel: &CancelToken,
) -> (Result<(), NodeError>, Vec<AgentEvent>) {
    let spec = t.nodes()[node].clone();
    let mut seen = Vec::new();
    let result = t.run(&spec, &request(checks), cancel, &mut |e| seen.push(e));
    (result, seen)
}

/// Every directory the stand-in agent ran from is gone.
fn assert_removed(marker: &Path) {
    let dirs = std::fs::read_to_string(marker).unwrap_or_default();
    for d in dirs.lines().filter(|d| d.starts_with("/tmp/nfvi-verify.")) {
        assert!(!Path::new(d).exists(), "{d} was left on the node");
    }
}

fn wait_for(child: &mut std::process::Child, within: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(Instant::now() < deadline, "still running after {within:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `spawn_agent` after the node's agent ran (which closed its master): a command that ends
/// by itself gives its output and code; one that does not is stopped by closing its input,
/// and its copied agent is removed either way.
fn spawned_commands_end_with_their_input(t: &SshTransport, marker: &Path) {
    use std::io::{BufRead, BufReader, Read};
    let never = CancelToken::never();
    assert!(t.can_spawn_agent());
    let node = t.nodes()[1].clone();
    let args = |a: &[&str]| a.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    let mut said = t
        .spawn_agent(&node, &args(&["say", "it's", "done"]), &never)
        .unwrap();
    assert_eq!(wait_for(&mut said, Duration::from_secs(30)).code(), Some(5));
    let mut out = String::new();
    said.stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    assert_eq!(out, "it's done\n");

    let mut served = t.spawn_agent(&node, &args(&["serve"]), &never).unwrap();
    let mut line = String::new();
    BufReader::new(served.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let pid = line.trim().to_owned();
    assert!(!pid.is_empty(), "the command said its PID");
    // The node is a namespace of this machine: its processes are visible here.
    let proc_dir = Path::new("/proc").join(&pid);
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        proc_dir.exists(),
        "the command runs while its input is open"
    );
    drop(served.stdin.take());
    let status = wait_for(&mut served, Duration::from_secs(20));
    assert_eq!(status.code(), Some(143), "SIGTERM ended it");
    assert!(!proc_dir.exists(), "the command {pid} is gone");
    assert_removed(marker);
    assert!(
        std::fs::read_to_string(marker)
            .unwrap()
            .lines()
            .filter(|l| l.starts_with("/tmp/nfvi-verify."))
            .count()
            >= 3,
        "the stand-in ran from a copy"
    );
}

#[test]
fn the_transport_runs_the_agent_on_real_sshd_nodes() {
    if !nix::unistd::geteuid().is_root() || !Path::new("/usr/sbin/sshd").exists() {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "CI=true: this test needs root and sshd"
        );
        eprintln!("SKIP: sshd nodes need root and /usr/sbin/sshd");
        return;
    }
    // Below /run: the nodes' sshd keeps StrictModes on, which refuses keys below /tmp.
    let dir = tempfile::Builder::new()
        .prefix("nfvi-fleet-test-")
        .tempdir_in("/run")
        .unwrap();
    let pid = std::process::id();
    let layout = NodesLayout::private(
        &dir.path().join("nodes"),
        [198, 18, 200 + u8::try_from(pid % 50).unwrap()],
        &format!("fl{pid}"),
    );
    let _down = Down(&layout);
    nodes::up(2, &layout, &mut |m| eprintln!("nodes: {m}")).expect("two nodes come up");
    let files = dir.path();
    let marker = files.join("ran-in");
    let agent = write_agent(
        files,
        "agent",
        &nfvi_fleet::area::expected_version(),
        &marker,
    );
    let never = CancelToken::never();
    let good = inventory(
        files,
        &layout,
        &layout.private_key_path(),
        &layout.known_hosts_path(),
    );

    // Copied, verified, run, removed; the login chatter before the first event is ignored.
    let t = SshTransport::new(&good, options(AgentSource::Copy, &agent)).unwrap();
    for node in 0..2 {
        let (result, seen) = run(&t, node, &["host.kernel.version"], &never);
        result.unwrap();
        assert!(
            matches!(
                seen.as_slice(),
                [
                    AgentEvent::Hello { .. },
                    AgentEvent::Done {
                        cancelled: false,
                        ..
                    }
                ]
            ),
            "{seen:?}"
        );
    }
    let ran = std::fs::read_to_string(&marker).unwrap();
    assert_eq!(
        ran.lines()
            .filter(|l| l.starts_with("/tmp/nfvi-verify."))
            .count(),
        2,
        "{ran}"
    );
    assert_removed(&marker);
    spawned_commands_end_with_their_input(&t, &marker);
    assert_eq!(
        t.notes()[0],
        "host keys checked strictly against known_hosts"
    );
    let records = t.close();
    assert!(records.iter().all(|r| r.error.is_none()), "{records:?}");

    // Cancelled: the agent's input closes, it says done (cancelled), the run says stopped,
    // and its directory is removed.
    let t = SshTransport::new(&good, options(AgentSource::Copy, &agent)).unwrap();
    let (source, token) = CancelSource::new();
    let canceller = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(2));
        source.escalate(CancelReason::Interrupt);
        source
    });
    let started = Instant::now();
    let (result, seen) = run(&t, 0, &["slow"], &token);
    let _source = canceller.join().unwrap();
    assert_eq!(
        result.unwrap_err().message,
        "stopped: the run was cancelled"
    );
    assert!(
        matches!(
            seen.last(),
            Some(AgentEvent::Done {
                cancelled: true,
                ..
            })
        ),
        "{seen:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(20));
    assert_removed(&marker);
    drop(t);

    // An installed agent of this version runs where it is; another version is refused.
    let t = SshTransport::new(
        &good,
        options(AgentSource::Installed(agent.clone()), &agent),
    )
    .unwrap();
    run(&t, 0, &["x"], &never).0.unwrap();
    let old = write_agent(files, "old-agent", "nfvi-verify 0.0.1", &marker);
    let t = SshTransport::new(&good, options(AgentSource::Installed(old.clone()), &agent)).unwrap();
    let e = run(&t, 0, &["x"], &never).0.unwrap_err().message;
    assert!(
        e.contains("is `nfvi-verify 0.0.1`, this nfvi-verify is `nfvi-verify "),
        "{e}"
    );

    // A node known_hosts does not hold: refused with its fingerprint, unless new keys are
    // accepted (which the notes then say).
    let empty = files.join(format!("known_hosts-{}", rand_suffix()));
    std::fs::write(&empty, "").unwrap();
    let unknown = inventory(files, &layout, &layout.private_key_path(), &empty);
    let t = SshTransport::new(&unknown, options(AgentSource::Copy, &agent)).unwrap();
    let e = run(&t, 0, &["x"], &never).0.unwrap_err().message;
    let endpoint = format!("{}:22", layout.node_address(1));
    assert!(
        e.starts_with(&format!(
            "host key of {endpoint} is not in known_hosts (offered ED25519 SHA256:"
        )),
        "{e}"
    );
    let mut accept = options(AgentSource::Copy, &agent);
    accept.accept_new_host_keys = true;
    let t = SshTransport::new(&unknown, accept).unwrap();
    run(&t, 0, &["x"], &never).0.unwrap();
    let notes = t.notes();
    assert!(
        notes[0].starts_with("host keys: --accept-new-host-keys was used"),
        "{notes:?}"
    );
    assert!(notes[1].contains(&layout.node_name(1)), "{notes:?}");

    // A key the nodes do not accept.
    let wrong = files.join("wrong_key");
    let keygen = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&wrong)
        .status()
        .unwrap();
    assert!(keygen.success());
    let denied = inventory(files, &layout, &wrong, &layout.known_hosts_path());
    let t = SshTransport::new(&denied, options(AgentSource::Copy, &agent)).unwrap();
    let e = run(&t, 0, &["x"], &never).0.unwrap_err().message;
    assert!(
        e.starts_with(&format!("authentication as `root` failed on {endpoint}")),
        "{e}"
    );

    // A node whose host key changed, then a node whose sshd is gone.
    let endpoint2 = format!("{}:22", layout.node_address(2));
    nodes::rotate_host_key(&layout, &layout.node_name(2)).unwrap();
    let t = SshTransport::new(&good, options(AgentSource::Copy, &agent)).unwrap();
    let e = run(&t, 1, &["x"], &never).0.unwrap_err().message;
    assert!(
        e.starts_with(&format!(
            "host key of {endpoint2} has CHANGED: it now offers ED25519 SHA256:"
        )),
        "{e}"
    );
    assert!(
        e.contains(&format!("ssh-keygen -R '{}'", layout.node_address(2))),
        "{e}"
    );
    nodes::stop_sshd(&layout, &layout.node_name(2)).unwrap();
    let e = run(&t, 1, &["x"], &never).0.unwrap_err().message;
    assert_eq!(
        e,
        format!("{endpoint2} refused the connection: is sshd running and listening there?")
    );
    let records = t.close();
    assert!(records.iter().all(|r| r.error.is_none()), "{records:?}");
}

#[test]
fn a_local_node_runs_the_agent_without_ssh() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("ran-in");
    let agent = write_agent(
        dir.path(),
        "agent",
        &nfvi_fleet::area::expected_version(),
        &marker,
    );
    let path = dir.path().join("inventory");
    std::fs::write(&path, "[deployment]\nlocalhost ansible_connection=local\n").unwrap();
    let inv = Inventory::load(&path).unwrap();
    let t = SshTransport::new(&inv, options(AgentSource::Copy, &agent)).unwrap();
    let (result, seen) = run(&t, 0, &["x"], &CancelToken::never());
    result.unwrap();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(
        std::fs::read_to_string(&marker).unwrap().trim(),
        dir.path().display().to_string()
    );
}
