//! What the machine the harness runs on can do, detected once before planning.

use std::path::{Path, PathBuf};

use crate::check::Need;
use crate::target::Target;

/// Detected capabilities. Each field answers one [`Need`].
#[derive(Clone, Debug, Default)]
pub struct Capabilities {
    /// Effective UID 0.
    pub root: bool,
    /// `PATH` directories, for tool lookups.
    pub path: Vec<PathBuf>,
    /// The Docker socket exists.
    pub docker_socket: bool,
    /// A kubeconfig was found.
    pub kubeconfig: Option<PathBuf>,
    /// OpenStack credentials were found (target cloud or `OS_AUTH_URL`).
    pub openstack: bool,
    /// CNI plugin directories that hold at least one file.
    pub cni_dirs: Vec<PathBuf>,
}

impl Capabilities {
    /// Looks at the machine and the target.
    pub fn detect(target: &Target) -> Self {
        let path = std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).collect())
            .unwrap_or_default();
        let kubeconfig = target.kubernetes.kubeconfig_path();
        let cni_dirs = target
            .cni
            .paths
            .iter()
            .filter(|d| std::fs::read_dir(d).is_ok_and(|mut r| r.next().is_some()))
            .cloned()
            .collect();
        Self {
            root: nix::unistd::geteuid().is_root(),
            path,
            docker_socket: target.docker.socket.exists(),
            kubeconfig,
            // A named cloud counts: the check itself reports a missing or broken clouds.yaml.
            openstack: std::env::var_os("OS_AUTH_URL").is_some()
                || std::env::var_os("OS_CLOUD").is_some_and(|c| !c.is_empty())
                || !target.openstack.cloud.is_empty()
                || (!target.openstack.openrc.is_empty()
                    && std::path::Path::new(&target.openstack.openrc).is_file()),
            cni_dirs,
        }
    }

    /// Whether `tool` is an executable on `PATH`.
    pub fn has_tool(&self, tool: &str) -> bool {
        self.path.iter().any(|dir| is_executable(&dir.join(tool)))
    }

    /// `None` if the need is met, otherwise why not and how to fix it.
    pub fn missing(&self, need: &Need, target: &Target) -> Option<String> {
        let ok = match need {
            Need::Root => self.root,
            Need::Tool(t) => self.has_tool(t),
            Need::DockerSocket => self.docker_socket,
            Need::Kubeconfig => self.kubeconfig.as_ref().is_some_and(|p| p.is_file()),
            Need::OpenStackCloud => self.openstack,
            Need::CniPlugins => !self.cni_dirs.is_empty(),
        };
        if ok {
            return None;
        }
        Some(match need {
            Need::Root => "needs root (effective UID 0); run nfvi-verify as root".to_owned(),
            Need::Tool(t) => format!("needs `{t}` on PATH; install it (for example with apt)"),
            Need::DockerSocket => format!(
                "no Docker socket at {}; start dockerd or set docker.socket in the target file",
                target.docker.socket.display()
            ),
            Need::Kubeconfig => match &self.kubeconfig {
                Some(p) => format!(
                    "no kubeconfig given: {} does not exist (--kubeconfig or kubernetes.kubeconfig)",
                    p.display()
                ),
                None => "no kubeconfig given: pass --kubeconfig FILE, set kubernetes.kubeconfig in the target file, or KUBECONFIG".to_owned(),
            },
            Need::OpenStackCloud => {
                "no OpenStack credentials: source an openrc (OS_AUTH_URL), name a cloud (OS_CLOUD or openstack.cloud), set openstack.openrc in the target file, or run `nfvi-verify lab up`"
                    .to_owned()
            }
            Need::CniPlugins => format!(
                "no CNI plugins in {}; install containernetworking-plugins or set cni.paths",
                target.cni.search_path()
            ),
        })
    }
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    p.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_needs_say_how_to_fix_them() {
        let caps = Capabilities::default();
        let target = Target::local();
        assert!(caps.missing(&Need::Root, &target).unwrap().contains("root"));
        let tool = caps.missing(&Need::Tool("ip".into()), &target).unwrap();
        assert!(tool.contains("`ip`"), "{tool}");
    }

    #[test]
    fn tools_are_found_on_path() {
        let caps = Capabilities {
            path: vec!["/bin".into(), "/usr/bin".into()],
            ..Default::default()
        };
        assert!(caps.has_tool("sh"));
        assert!(!caps.has_tool("nfvi-no-such-tool"));
    }
}
