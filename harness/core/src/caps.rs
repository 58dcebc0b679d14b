//! What the machine the harness runs on can do, detected once before planning: root, the
//! tools on `PATH`, and the resources each area detects.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::area::Areas;
use crate::check::Need;
use crate::target::Target;

/// Detected capabilities. Each field answers one kind of [`Need`].
#[derive(Clone, Debug, Default)]
pub struct Capabilities {
    /// Effective UID 0.
    pub root: bool,
    /// `PATH` directories, for tool lookups.
    pub path: Vec<PathBuf>,
    /// The areas' resources: `None` when present, otherwise why not.
    pub resources: HashMap<String, Option<String>>,
}

impl Capabilities {
    /// Looks at the machine, and asks every area what it finds for the target.
    pub fn detect(target: &Target, areas: &Areas) -> Self {
        let path = std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).collect())
            .unwrap_or_default();
        let resources = areas
            .iter()
            .flat_map(|a| a.resources(target))
            .map(|r| (r.id.to_owned(), r.missing))
            .collect();
        Self {
            root: nix::unistd::geteuid().is_root(),
            path,
            resources,
        }
    }

    /// Whether `tool` is an executable on `PATH`.
    pub fn has_tool(&self, tool: &str) -> bool {
        self.path.iter().any(|dir| is_executable(&dir.join(tool)))
    }

    /// `None` if the need is met, otherwise why not and how to fix it.
    pub fn missing(&self, need: &Need) -> Option<String> {
        match need {
            Need::Root if self.root => None,
            Need::Root => Some("needs root (effective UID 0); run nfvi-verify as root".to_owned()),
            Need::Tool(t) if self.has_tool(t) => None,
            Need::Tool(t) => Some(format!(
                "needs `{t}` on PATH; install it (for example with apt)"
            )),
            Need::Resource { id, description } => match self.resources.get(id) {
                Some(missing) => missing.clone(),
                None => Some(format!(
                    "needs {description}, which no registered area detects (resource `{id}`)"
                )),
            },
        }
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
        let mut caps = Capabilities::default();
        assert!(caps.missing(&Need::Root).unwrap().contains("root"));
        let tool = caps.missing(&Need::Tool("ip".into())).unwrap();
        assert!(tool.contains("`ip`"), "{tool}");
        let socket = Need::resource("socket", "a socket");
        assert!(
            caps.missing(&socket)
                .unwrap()
                .contains("no registered area")
        );
        caps.resources
            .insert("socket".into(), Some("no socket at /x; start it".into()));
        assert_eq!(
            caps.missing(&socket).as_deref(),
            Some("no socket at /x; start it")
        );
        caps.resources.insert("socket".into(), None);
        assert_eq!(caps.missing(&socket), None);
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
