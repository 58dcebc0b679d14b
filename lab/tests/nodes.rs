//! `lab up --nodes`: real nodes (network namespaces running OpenSSH) on this machine, reached
//! with the real `ssh` client. Needs root; without it the test skips, unless CI=true.

use std::path::Path;
use std::process::{Command, Output};

use nfvi_lab::nodes::{self, NodesLayout};

/// Takes the test's nodes down however the test ends (an assertion panicking included).
struct Down<'a>(&'a NodesLayout);

impl Drop for Down<'_> {
    fn drop(&mut self) {
        if let Err(e) = nodes::down(self.0, &mut |m| eprintln!("nodes (clean-up): {m}")) {
            eprintln!("nodes (clean-up) failed: {e}");
        }
    }
}

fn ssh(layout: &NodesLayout, node: usize, command: &str) -> Output {
    ssh_command(layout, node, command)
        .output()
        .expect("ssh runs (apt-get install openssh-client)")
}

/// The real `ssh` client, trusting only the layout's known_hosts and using only its key.
fn ssh_command(layout: &NodesLayout, node: usize, command: &str) -> Command {
    let mut c = Command::new("ssh");
    c.args([
        "-F",
        "/dev/null",
        "-o",
        "BatchMode=yes",
        "-o",
        "StrictHostKeyChecking=yes",
    ])
    .arg("-o")
    .arg(format!(
        "UserKnownHostsFile={}",
        layout.known_hosts_path().display()
    ))
    .args([
        "-o",
        "GlobalKnownHostsFile=/dev/null",
        "-o",
        "IdentitiesOnly=yes",
    ])
    .args(["-o", "ConnectTimeout=5"])
    .arg("-i")
    .arg(layout.private_key_path())
    .arg(format!("root@{}", layout.node_address(node)))
    .arg(command);
    c
}

/// The PIDs of the processes in a node's namespace.
fn pids_in(layout: &NodesLayout, node: usize) -> String {
    let out = Command::new("ip")
        .args(["netns", "pids", &layout.node_name(node)])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// No namespace, veth, bridge or state directory of `layout`'s two nodes is left.
fn assert_gone(layout: &NodesLayout) {
    for i in 1..=2 {
        let name = layout.node_name(i);
        assert!(!Path::new("/run/netns").join(&name).exists(), "{name}");
        assert!(!Path::new("/sys/class/net").join(&name).exists(), "{name}");
    }
    assert!(!Path::new("/sys/class/net").join(layout.bridge()).exists());
    assert!(!layout.state_dir.exists());
}

/// Whether `pid` is a live (not zombie) sshd.
fn runs_sshd(pid: i32) -> bool {
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let state = stat.rsplit_once(')').map(|(_, rest)| rest.trim_start());
    comm.trim() == "sshd" && !state.is_some_and(|s| s.starts_with('Z'))
}

#[test]
fn nodes_are_namespaces_running_a_real_sshd() {
    if !nix::unistd::geteuid().is_root() {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "CI=true: this test needs root"
        );
        eprintln!("SKIP: the lab's nodes need root (network namespaces, a bridge, sshd)");
        return;
    }
    // The state directory must lie below root-owned directories that nobody else can write:
    // the nodes' sshd keeps StrictModes on, which refuses an authorized_keys below /tmp.
    let dir = tempfile::Builder::new()
        .prefix("nfvi-nodes-test-")
        .tempdir_in("/run")
        .expect("a private directory in /run");
    let pid = std::process::id();
    let layout = NodesLayout::private(
        dir.path(),
        [198, 19, 11 + u8::try_from(pid % 9).expect("< 9")],
        &format!("nt{pid}"),
    );
    let mut log = |m: &str| eprintln!("nodes: {m}");

    // A failed `up` leaves nothing behind: here the inventory cannot be written, after both
    // nodes (namespaces, veths, sshd) and the bridge were built.
    let mut broken = NodesLayout::private(dir.path(), layout.subnet_base, &format!("nf{pid}"));
    broken.inventory_dir = "/proc/nfvi-verify-cannot-create-this".into();
    let failed = Down(&broken);
    let e = nodes::up(2, &broken, &mut log).unwrap_err();
    assert!(e.contains("writing known_hosts and the inventory"), "{e}");
    assert!(nodes::node_pids(&broken).is_empty());
    assert_gone(&broken);
    drop(failed);

    let guard = Down(&layout);
    nodes::up(2, &layout, &mut log).expect("two nodes come up");

    // Idempotent for the same count.
    let mut said = Vec::new();
    nodes::up(2, &layout, &mut |m| said.push(m.to_owned())).unwrap();
    assert!(said.iter().any(|m| m.contains("already up")), "{said:?}");

    // Each node answers over SSH, and the command runs inside that node's namespace.
    let pids = nodes::node_pids(&layout);
    assert_eq!(pids.len(), 2, "{pids:?}");
    for i in 1..=2 {
        let out = ssh(&layout, i, "ip -o addr show eth0");
        assert!(out.status.success(), "node {i}: {}", text(&out));
        let address = format!("inet {}/24", layout.node_address(i));
        assert!(text(&out).contains(&address), "node {i}: {}", text(&out));
    }

    // The inventory names both nodes in Kolla's groups, with absolute paths.
    let inventory = std::fs::read_to_string(layout.inventory_path()).unwrap();
    for want in [
        "[control]".to_owned(),
        "[network]".to_owned(),
        "[compute]".to_owned(),
        "[all:vars]".to_owned(),
        "ansible_user=root".to_owned(),
        format!(
            "{} ansible_host={}",
            layout.node_name(1),
            layout.node_address(1)
        ),
        format!(
            "{} ansible_host={}",
            layout.node_name(2),
            layout.node_address(2)
        ),
        format!(
            "ansible_ssh_private_key_file={}",
            layout.private_key_path().display()
        ),
        format!("UserKnownHostsFile={}", layout.known_hosts_path().display()),
    ] {
        assert!(
            inventory.contains(&want),
            "{want} missing from\n{inventory}"
        );
    }
    let key_mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(layout.private_key_path())
            .unwrap()
            .permissions(),
    );
    assert_eq!(key_mode & 0o777, 0o600);

    // A node dies in the middle of a session: the session and what it runs end with it;
    // node 1 no longer answers, node 2 still does.
    let mut session = ssh_command(&layout, 1, "sleep 120")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    while !pids_in(&layout, 1).lines().any(|pid| {
        std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "sleep")
    }) {
        assert!(start.elapsed().as_secs() < 10, "the session never started");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    nodes::stop_sshd(&layout, &layout.node_name(1)).unwrap();
    assert_eq!(pids_in(&layout, 1), "", "processes left in node 1");
    let start = std::time::Instant::now();
    while session.try_wait().unwrap().is_none() {
        assert!(
            start.elapsed().as_secs() < 10,
            "the ssh session outlived the node"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let out = ssh(&layout, 1, "true");
    assert!(
        !out.status.success(),
        "node 1 still answers: {}",
        text(&out)
    );
    let out = ssh(&layout, 2, "true");
    assert!(out.status.success(), "node 2: {}", text(&out));
    assert_eq!(nodes::node_pids(&layout).len(), 1);

    // A node's host key changes: the client refuses it.
    nodes::rotate_host_key(&layout, &layout.node_name(2)).unwrap();
    let out = ssh(&layout, 2, "true");
    assert!(!out.status.success(), "node 2 was accepted: {}", text(&out));
    assert!(
        text(&out).contains("REMOTE HOST IDENTIFICATION HAS CHANGED")
            || text(&out).contains("Host key verification failed"),
        "{}",
        text(&out)
    );

    // Down removes everything it created, processes included.
    let listener = nodes::node_pids(&layout);
    drop(guard);
    assert_gone(&layout);
    for (node, pid) in listener {
        assert!(!runs_sshd(pid), "{node}'s sshd {pid} still runs");
    }
    assert!(nodes::node_pids(&layout).is_empty());
    // And down is fine with nothing up.
    nodes::down(&layout, &mut log).unwrap();
}

#[test]
fn a_node_count_outside_1_to_32_is_refused() {
    let layout = NodesLayout::private(Path::new("/nonexistent"), [198, 19, 11], "nx");
    for n in [0, 33] {
        let e = nodes::up(n, &layout, &mut |_| {}).unwrap_err();
        assert!(e.contains("1 to 32"), "{e}");
    }
}
