//! Where the lab's nodes are built and under which names: [`NodesLayout`] gives the bridge,
//! the namespaces and veths, the nodes' addresses in their /24, and the paths of the keys,
//! sshd files, state file and inventory, and checks all of them before anything is created.

#![allow(clippy::wildcard_imports)]
use super::*;

/// Where and under which names the nodes are built. [`NodesLayout::lab`] is what
/// `nfvi-verify lab` uses; tests build a private one (their own state directory, /24 and
/// prefix) with [`NodesLayout::private`] so that they never touch the lab's nodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodesLayout {
    /// Keys, sshd configurations, pidfiles, logs and the state file (`nodes.json`).
    pub state_dir: PathBuf,
    /// The first three octets of the nodes' /24, which must lie in 198.18.0.0/15: the host
    /// takes `.1` on the bridge, node `i` (from 1) takes `.(10 + i)`.
    pub subnet_base: [u8; 3],
    /// Names the bridge (`<prefix>br`), the namespaces and host-side veths (`<prefix>-01` …).
    pub name_prefix: String,
    /// Where the inventory and `known_hosts` are written.
    pub inventory_dir: PathBuf,
}

impl NodesLayout {
    /// The lab's nodes: state in /var/lib/nfvi-verify/lab/nodes, 198.19.10.0/24, `nfvnode-NN`,
    /// the inventory and `known_hosts` next to the lab's other files in /var/lib/nfvi-verify/lab.
    pub fn lab() -> Self {
        Self {
            state_dir: Path::new(crate::engine::STATE_DIR).join("nodes"),
            subnet_base: [198, 19, 10],
            name_prefix: "nfvnode".to_owned(),
            inventory_dir: PathBuf::from(crate::engine::STATE_DIR),
        }
    }

    /// A private layout (for tests): everything, the inventory included, under `state_dir`.
    pub fn private(state_dir: &Path, subnet_base: [u8; 3], name_prefix: &str) -> Self {
        Self {
            state_dir: state_dir.to_owned(),
            subnet_base,
            name_prefix: name_prefix.to_owned(),
            inventory_dir: state_dir.to_owned(),
        }
    }

    /// The Linux bridge in the host namespace.
    pub fn bridge(&self) -> String {
        format!("{}br", self.name_prefix)
    }

    /// Node `i` (from 1): the name of its namespace, its host-side veth and its inventory host.
    pub fn node_name(&self, i: usize) -> String {
        format!("{}-{i:02}", self.name_prefix)
    }

    /// Node `i`'s address (from 1): `.(10 + i)` of the /24.
    pub fn node_address(&self, i: usize) -> Ipv4Addr {
        let [a, b, c] = self.subnet_base;
        Ipv4Addr::new(a, b, c, u8::try_from(10 + i).unwrap_or(u8::MAX))
    }

    /// The host's address on the bridge: `.1`.
    pub fn host_address(&self) -> Ipv4Addr {
        let [a, b, c] = self.subnet_base;
        Ipv4Addr::new(a, b, c, 1)
    }

    /// The nodes' /24, e.g. `198.19.10.0/24`.
    pub fn subnet(&self) -> String {
        let [a, b, c] = self.subnet_base;
        format!("{a}.{b}.{c}.0/24")
    }

    /// The Kolla-style INI inventory.
    pub fn inventory_path(&self) -> PathBuf {
        self.inventory_dir.join("inventory")
    }

    /// The nodes' host keys, one `<address> ssh-ed25519 AAAA…` line per node.
    pub fn known_hosts_path(&self) -> PathBuf {
        self.inventory_dir.join("known_hosts")
    }

    /// The private key that logs in as root on every node (its public half is authorised).
    pub fn private_key_path(&self) -> PathBuf {
        self.state_dir.join("id_ed25519")
    }

    /// The `AuthorizedKeysFile` of every node's sshd.
    pub fn authorized_keys_path(&self) -> PathBuf {
        self.state_dir.join("authorized_keys")
    }

    /// A node's own directory: host key, sshd_config, pidfile, log.
    pub fn node_dir(&self, node: &str) -> PathBuf {
        self.state_dir.join(node)
    }

    pub(super) fn state_file(&self) -> PathBuf {
        self.state_dir.join("nodes.json")
    }

    pub(super) fn pidfile(&self, node: &str) -> PathBuf {
        self.node_dir(node).join("sshd.pid")
    }

    pub(super) fn sshd_log(&self, node: &str) -> PathBuf {
        self.node_dir(node).join("sshd.log")
    }

    pub(super) fn host_key(&self, node: &str) -> PathBuf {
        self.node_dir(node).join("ssh_host_ed25519_key")
    }

    /// Checks the addresses and names before anything is created.
    pub fn validate(&self) -> Result<(), String> {
        let [a, b, _] = self.subnet_base;
        if a != 198 || !(18..=19).contains(&b) {
            return Err(format!(
                "the nodes' subnet {} is outside 198.18.0.0/15, the only range the lab uses",
                self.subnet()
            ));
        }
        let p = &self.name_prefix;
        if p.is_empty()
            || p.len() > MAX_PREFIX
            || !p.starts_with(|c: char| c.is_ascii_lowercase())
            || !p
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        {
            return Err(format!(
                "node name prefix `{p}`: 1 to {MAX_PREFIX} lowercase letters and digits, starting \
                 with a letter (interface names are limited to 15 characters)"
            ));
        }
        for (what, dir) in [
            ("state", &self.state_dir),
            ("inventory", &self.inventory_dir),
        ] {
            if !dir.is_absolute() {
                return Err(format!(
                    "the nodes' {what} directory {} must be an absolute path",
                    dir.display()
                ));
            }
        }
        Ok(())
    }
}
