//! The steps of `up`: the checks before anything is built (the tools are installed, the
//! names and the /24 are free, sshd's StrictModes will accept the state directory), then the
//! building itself (bridge, one namespace, veth and sshd per node, keys, `known_hosts` and
//! the Kolla-style inventory), each creation recorded in the state as it happens.

#![allow(clippy::wildcard_imports)]
use super::*;

pub(super) fn need_tools() -> Result<(), String> {
    for (tool, package) in [
        ("/usr/sbin/sshd", "openssh-server"),
        ("/usr/bin/ssh-keygen", "openssh-client"),
        ("/usr/bin/ssh-keyscan", "openssh-client"),
    ] {
        if !Path::new(tool).exists() {
            return Err(format!(
                "{tool} is missing: apt-get install {package} (or `cargo xtask deps`)"
            ));
        }
    }
    run(
        Command::new("ip").arg("-V"),
        "ip (apt-get install iproute2)",
    )
    .map(drop)
}

/// Refuses to build over anything the lab did not create: every name and the /24 must be
/// free, and the state directory new or empty.
pub(super) fn preflight(n: usize, layout: &NodesLayout) -> Result<(), String> {
    let dir = &layout.state_dir;
    if let Ok(mut entries) = fs::read_dir(dir)
        && entries.next().is_some()
    {
        return Err(format!(
            "{} exists, is not empty and holds no nodes.json: not the lab's; remove it or choose another",
            dir.display()
        ));
    }
    strict_modes_ok(dir)?;
    let bridge = layout.bridge();
    if link_exists(&bridge) {
        return Err(format!(
            "a link named {bridge} exists and the lab did not record creating it; it is left alone"
        ));
    }
    for i in 1..=n {
        let node = layout.node_name(i);
        if link_exists(&node) {
            return Err(format!(
                "node {node}: a link with that name exists and the lab did not create it"
            ));
        }
        if netns_path(&node).exists() {
            return Err(format!(
                "node {node}: a network namespace with that name exists and the lab did not create it"
            ));
        }
    }
    let subnet = layout.subnet();
    let addresses = run(
        Command::new("ip").args(["-o", "-4", "addr", "show", "to", &subnet]),
        "listing the host's addresses",
    )?;
    let routes = run(
        Command::new("ip").args(["-4", "route", "show", "root", &subnet]),
        "listing the host's routes",
    )?;
    let in_use: Vec<&str> = addresses
        .lines()
        .chain(routes.lines())
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    if !in_use.is_empty() {
        return Err(format!(
            "{subnet} is already in use on this machine: {}",
            in_use.join("; ")
        ));
    }
    Ok(())
}

/// sshd's StrictModes (kept on) refuses an `AuthorizedKeysFile` below a directory that is
/// group- or world-writable or owned by someone other than root (for example /tmp); say so
/// before building rather than have every login fail.
fn strict_modes_ok(state_dir: &Path) -> Result<(), String> {
    for dir in state_dir.ancestors().skip(1) {
        let Ok(meta) = fs::metadata(dir) else {
            continue; // created by `up`, root-owned 0700
        };
        if meta.uid() != 0 || meta.mode() & 0o022 != 0 {
            return Err(format!(
                "{} is group/world-writable or not owned by root, so the nodes' sshd (StrictModes) \
                 would refuse {}; put the state directory below root-owned, non-writable directories",
                dir.display(),
                state_dir.join("authorized_keys").display()
            ));
        }
    }
    Ok(())
}

/// The steps of `up`, recording each creation in `state` as it happens.
pub(super) fn build(
    n: usize,
    layout: &NodesLayout,
    state: &mut State,
    progress: &mut dyn FnMut(&str),
) -> Result<(), String> {
    let dir = &layout.state_dir;
    make_dir(dir, 0o700)?;
    save(layout, state)?;

    if !Path::new(PRIVSEP_DIR).exists() {
        make_dir(Path::new(PRIVSEP_DIR), 0o755)?;
        state.created_privsep_dir = true;
        save(layout, state)?;
    }

    keygen(&layout.private_key_path(), "nfvi-verify-lab").map_err(|e| format!("user key: {e}"))?;
    let public = read_public_key(&layout.private_key_path())?;
    write_file(
        &layout.authorized_keys_path(),
        &format!("{public}\n"),
        0o600,
    )?;

    let bridge = layout.bridge();
    let host = format!("{}/24", layout.host_address());
    progress(&format!("bridge {bridge} {host}"));
    run(
        Command::new("ip").args(["link", "add", &bridge, "type", "bridge"]),
        &format!("creating bridge {bridge}"),
    )?;
    state.bridge = Some(bridge.clone());
    save(layout, state)?;
    run(
        Command::new("ip").args(["addr", "add", &host, "dev", &bridge]),
        &format!("bridge {bridge}: adding {host}"),
    )?;
    run(
        Command::new("ip").args(["link", "set", &bridge, "up"]),
        &format!("bridge {bridge}: setting it up"),
    )?;

    let started = Instant::now();
    for i in 1..=n {
        let node = layout.node_name(i);
        let address = layout.node_address(i);
        build_node(layout, state, &node, address)
            .map_err(|e| format!("node {node} ({address}): {e}"))?;
    }
    progress(&format!(
        "{n} nodes' sshd answer ({:.1} s)",
        started.elapsed().as_secs_f64()
    ));

    // known_hosts and the inventory.
    let mut known_hosts = String::new();
    for node in &state.nodes {
        let key = read_public_key(&layout.host_key(&node.name))
            .map_err(|e| format!("node {}: {e}", node.name))?;
        known_hosts.push_str(&format!("{} {key}\n", node.address));
    }
    let files = "writing known_hosts and the inventory";
    // The lab's inventory directory is the engine's state directory: when it exists, its mode
    // is left as it is.
    if !layout.inventory_dir.is_dir() {
        make_dir(&layout.inventory_dir, 0o700).map_err(|e| format!("{files}: {e}"))?;
    }
    for (path, text) in [
        (layout.known_hosts_path(), known_hosts),
        (layout.inventory_path(), inventory_text(layout, n)),
    ] {
        if !path.starts_with(dir) {
            state.written.push(path.clone());
            save(layout, state)?;
        }
        write_file(&path, &text, 0o644).map_err(|e| format!("{files}: {e}"))?;
    }

    check_between_nodes(layout, state)?;
    progress(&format!(
        "{n} nodes up in {} ({}); inventory {}, key {}, known_hosts {}",
        layout.subnet(),
        state
            .nodes
            .iter()
            .map(|s| format!("{} {}", s.name, s.address))
            .collect::<Vec<_>>()
            .join(", "),
        layout.inventory_path().display(),
        layout.private_key_path().display(),
        layout.known_hosts_path().display(),
    ));
    Ok(())
}

/// One node: namespace, veth pair onto the bridge, addresses, host key, sshd.
fn build_node(
    layout: &NodesLayout,
    state: &mut State,
    node: &str,
    address: Ipv4Addr,
) -> Result<(), String> {
    let bridge = layout.bridge();
    run(
        Command::new("ip").args(["netns", "add", node]),
        "creating the network namespace",
    )?;
    state.nodes.push(NodeState {
        name: node.to_owned(),
        address,
        netns: true,
        veth: None,
        sshd_pid: None,
    });
    save(layout, state)?;
    // The peer is created inside the namespace directly, already named eth0.
    run(
        Command::new("ip").args([
            "link", "add", node, "type", "veth", "peer", "name", "eth0", "netns", node,
        ]),
        "creating the veth pair",
    )?;
    last(state).veth = Some(node.to_owned());
    save(layout, state)?;
    let cidr = format!("{address}/24");
    for (args, step) in [
        (
            vec!["link", "set", node, "master", &bridge],
            "attaching the veth to the bridge",
        ),
        (
            vec!["link", "set", node, "up"],
            "setting the host-side veth up",
        ),
        (
            vec!["-n", node, "addr", "add", &cidr, "dev", "eth0"],
            "adding the address to eth0",
        ),
        (
            vec!["-n", node, "link", "set", "eth0", "up"],
            "setting eth0 up",
        ),
        (vec!["-n", node, "link", "set", "lo", "up"], "setting lo up"),
    ] {
        run(Command::new("ip").args(&args), step)?;
    }
    make_dir(&layout.node_dir(node), 0o700)?;
    keygen(&layout.host_key(node), node).map_err(|e| format!("host key: {e}"))?;
    write_file(
        &layout.node_dir(node).join("sshd_config"),
        &sshd_config(layout, node, address),
        0o600,
    )?;
    let pid = start_sshd(layout, node, address)?;
    last(state).sshd_pid = Some(pid);
    save(layout, state)
}

fn last(state: &mut State) -> &mut NodeState {
    state.nodes.last_mut().expect("a node was just recorded")
}

/// The Kolla-style INI inventory: the first node is `control` and `network`, the others are
/// `compute` (a single node is in all three groups).
pub(super) fn inventory_text(layout: &NodesLayout, n: usize) -> String {
    let host = |i: usize| {
        format!(
            "{} ansible_host={}\n",
            layout.node_name(i),
            layout.node_address(i)
        )
    };
    let compute: String = if n == 1 {
        host(1)
    } else {
        (2..=n).map(host).collect()
    };
    format!(
        "# written by `nfvi-verify lab up --nodes {n}`; nodes are network namespaces on this machine\n\
         [control]\n{first}\n\
         [network]\n{first}\n\
         [compute]\n{compute}\n\
         [all:vars]\n\
         ansible_user=root\n\
         ansible_ssh_private_key_file={key}\n\
         ansible_ssh_common_args='-o UserKnownHostsFile={known_hosts}'\n",
        first = host(1),
        key = layout.private_key_path().display(),
        known_hosts = layout.known_hosts_path().display(),
    )
}
