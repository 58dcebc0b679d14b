//! `nfvi-verify clean`: removes what runs that were killed (SIGKILL, a crash, a power cut)
//! left behind: network namespaces and private scratch directories whose names carry the
//! process ID of a run that is gone. Nothing of a process that still runs is touched, nor a
//! namespace any process is in, nor a directory that is not a private directory (0700)
//! of this user.

use std::collections::HashSet;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use nfvi_harness::exit_code;

use crate::error::CliError;

const NETNS_DIR: &str = "/run/netns";

/// The PID in a namespace name the harness gave (`nfvrt-<pid>-<n>`, `nfvd<pid>-<n>-<role>`):
/// the first digits, right after the prefix, followed by `-<digits>`. The lab's nodes
/// (`nfvnode-01`) have no such sequence number and are not matched.
pub fn netns_pid(name: &str) -> Option<u32> {
    let rest = name.strip_prefix("nfv")?;
    let start = rest.find(|c: char| c.is_ascii_digit())?;
    if !rest[..start]
        .chars()
        .all(|c| c.is_ascii_lowercase() || c == '-')
    {
        return None;
    }
    let digits = &rest[start..];
    let end = digits
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(digits.len());
    let after = digits[end..].strip_prefix('-')?;
    let seq_end = after
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(after.len());
    if seq_end == 0 || !(seq_end == after.len() || after[seq_end..].starts_with('-')) {
        return None;
    }
    digits[..end].parse().ok()
}

/// The PID in a scratch directory's name (`<prefix><pid>-<random>`, starting with `nfv`).
pub fn scratch_pid(name: &str) -> Option<u32> {
    if !name.starts_with("nfv") {
        return None;
    }
    let mut parts = name.rsplit('-');
    let random = parts.next()?;
    let pid = parts.next()?;
    if random.is_empty() || !random.chars().all(|c| c.is_ascii_alphanumeric()) {
        return None;
    }
    if pid.is_empty() || !pid.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    pid.parse().ok()
}

fn alive(pid: u32) -> bool {
    Path::new("/proc").join(pid.to_string()).exists()
}

/// The network namespaces processes are in now (device and inode of `/proc/PID/ns/net`).
fn namespaces_in_use() -> HashSet<(u64, u64)> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
        })
        .filter_map(|e| std::fs::metadata(e.path().join("ns/net")).ok())
        .map(|m| (m.dev(), m.ino()))
        .collect()
}

/// What a killed run left: stale namespaces (names) and scratch directories.
pub fn leftovers(netns_dir: &Path, temp_dir: &Path) -> (Vec<String>, Vec<PathBuf>) {
    let in_use = namespaces_in_use();
    let mut namespaces: Vec<String> = std::fs::read_dir(netns_dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let pid = netns_pid(&name)?;
            let busy =
                std::fs::metadata(e.path()).is_ok_and(|m| in_use.contains(&(m.dev(), m.ino())));
            (!alive(pid) && !busy).then_some(name)
        })
        .collect();
    namespaces.sort();
    let me = nix::unistd::geteuid().as_raw();
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(temp_dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let Some(pid) = scratch_pid(&name) else {
                return false;
            };
            // Never through a link, never someone else's, only what private_dir makes.
            let private = std::fs::symlink_metadata(e.path()).is_ok_and(|m| {
                m.file_type().is_dir() && m.uid() == me && m.mode() & 0o777 == 0o700
            });
            private && !alive(pid)
        })
        .map(|e| e.path())
        .collect();
    dirs.sort();
    (namespaces, dirs)
}

pub fn clean(dry_run: bool) -> Result<i32, CliError> {
    let (namespaces, dirs) = leftovers(Path::new(NETNS_DIR), &std::env::temp_dir());
    if namespaces.is_empty() && dirs.is_empty() {
        eprintln!("nothing to clean: no namespace or scratch directory of a run that is gone");
        return Ok(exit_code::CONFORMANT);
    }
    let verb = if dry_run { "would remove" } else { "removing" };
    let mut failed = Vec::new();
    for name in &namespaces {
        eprintln!("{verb} network namespace {name}");
        if !dry_run && let Err(e) = nfvi_net::netns::delete(name) {
            failed.push(format!("namespace {name}: {}", crate::chain(&e)));
        }
    }
    for dir in &dirs {
        eprintln!("{verb} scratch directory {}", dir.display());
        if !dry_run && let Err(e) = std::fs::remove_dir_all(dir) {
            failed.push(format!("{}: {e}", dir.display()));
        }
    }
    if failed.is_empty() {
        Ok(exit_code::CONFORMANT)
    } else {
        Err(CliError::Incomplete(format!(
            "could not remove: {}",
            failed.join("; ")
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_names_the_harness_gives_carry_a_pid() {
        assert_eq!(netns_pid("nfvrt-1234-5"), Some(1234));
        assert_eq!(netns_pid("nfvc-77-0"), Some(77));
        assert_eq!(netns_pid("nfvd1234-5-client"), Some(1234));
        // The lab's and the benches' nodes, and what is not ours.
        assert_eq!(netns_pid("nfvnode-01"), None);
        assert_eq!(netns_pid("nfvrt-1234"), None);
        assert_eq!(netns_pid("cni-1234-5"), None);
        assert_eq!(netns_pid("nfvX1234-5"), None);
        assert_eq!(netns_pid("nfv-1234-x"), None);
        assert_eq!(scratch_pid("nfv-cni-1234-Ab3xYz"), Some(1234));
        assert_eq!(scratch_pid("nfvd99-3-ipam-1234-q9Z"), Some(1234));
        assert_eq!(scratch_pid("nfv-cni-Ab3xYz"), None);
        assert_eq!(scratch_pid("other-1234-Ab3xYz"), None);
        assert_eq!(scratch_pid("nfv-cni-1234-"), None);
    }
}
