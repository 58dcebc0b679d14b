//! `nfvi-verify clean`, and the same at the start of every run: removes what runs that were
//! killed (SIGKILL, a crash, a power cut) left behind. The areas find their own
//! ([`nfvi_harness::Area::leftovers`]: containers, networks, links, pods); this module adds
//! network namespaces and private scratch directories whose names carry the process ID of a
//! run that is gone. Nothing of a process that still runs is touched, nor a namespace any
//! process is in, nor a directory that is not a private directory (0700) of this user.

use std::collections::HashSet;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use nfvi_harness::check::BoxFuture;
use nfvi_harness::exit_code;
use nfvi_harness::leftover::{self, Cleaned, Leftover};

use crate::error::CliError;

const NETNS_DIR: &str = "/run/netns";

const CANNOT_LOOK: &str = "cannot look for leftovers of area ";

/// The PID in a namespace name the harness gave (`nfvrt-<pid>-<n>`, `nfvd<pid>-<n>-<role>`):
/// the first digits, right after the prefix, followed by `-<digits>`. The lab's nodes
/// (`nfvnode-01`) have no such sequence number and are not matched.
pub fn netns_pid(name: &str) -> Option<u32> {
    let rest = name.strip_prefix("nfv")?;
    let start = rest.find(|c: char| c.is_ascii_digit())?;
    // Only the prefixes the harness gives, so that an operator's `nfv-tenant-3000-1` is never
    // taken for a run's: CNI runtime and container namespaces (`nfvrt-`, `nfvc-`), netstate's
    // (`nfvnst-`), the tests' (`nfvnt-`), the data path's (`nfvd<pid>-`, `nfvdr<role>-`) and
    // the Docker macvlan gateway (`nfv-<pid>-<k>-gw`).
    let prefix = &rest[..start];
    let known = matches!(prefix, "rt-" | "c-" | "nst-" | "nt-" | "d")
        || (prefix == "-" && name.ends_with("-gw"))
        || prefix
            .strip_prefix("dr")
            .and_then(|r| r.strip_suffix('-'))
            .is_some_and(|role| role.chars().all(|c| c.is_ascii_lowercase()));
    if !known {
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
    !leftover::owner_gone(pid)
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
        // Every thread's, not only the main thread's: a run's threads enter namespaces.
        .flat_map(|e| {
            let tasks: Vec<PathBuf> = std::fs::read_dir(e.path().join("task"))
                .into_iter()
                .flatten()
                .flatten()
                .map(|t| t.path().join("ns/net"))
                .collect();
            std::iter::once(e.path().join("ns/net")).chain(tasks)
        })
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| (m.dev(), m.ino()))
        .collect()
}

/// A name and the PID of the process that made it.
type Owned<T> = (T, u32);

/// What a killed run left on this machine outside any area: stale namespaces (names) and
/// scratch directories.
pub fn stale(netns_dir: &Path, temp_dir: &Path) -> (Vec<Owned<String>>, Vec<Owned<PathBuf>>) {
    let in_use = namespaces_in_use();
    let mut namespaces: Vec<Owned<String>> = std::fs::read_dir(netns_dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let pid = netns_pid(&name)?;
            let busy =
                std::fs::metadata(e.path()).is_ok_and(|m| in_use.contains(&(m.dev(), m.ino())));
            (!alive(pid) && !busy).then_some((name, pid))
        })
        .collect();
    namespaces.sort();
    let me = nix::unistd::geteuid().as_raw();
    let mut dirs: Vec<Owned<PathBuf>> = std::fs::read_dir(temp_dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let pid = scratch_pid(&name)?;
            // Never through a link, never someone else's, only what private_dir makes.
            let private = std::fs::symlink_metadata(e.path()).is_ok_and(|m| {
                m.file_type().is_dir() && m.uid() == me && m.mode() & 0o777 == 0o700
            });
            (private && !alive(pid)).then(|| (e.path(), pid))
        })
        .collect();
    dirs.sort();
    (namespaces, dirs)
}

/// [`stale`] as leftovers, each with its removal.
fn local_leftovers(netns_dir: &Path, temp_dir: &Path) -> Vec<Leftover> {
    let (namespaces, dirs) = stale(netns_dir, temp_dir);
    let blocking = |f: Box<dyn FnOnce() -> Result<(), String> + Send>| -> BoxFuture<'static, Result<(), String>> {
        Box::pin(async move {
            tokio::task::spawn_blocking(f)
                .await
                .unwrap_or_else(|e| Err(e.to_string()))
        })
    };
    let mut out = Vec::new();
    for (name, pid) in namespaces {
        let n = name.clone();
        out.push(Leftover::new("network namespace", name, pid, move || {
            blocking(Box::new(move || {
                nfvi_net::netns::delete(&n).map_err(|e| crate::chain(&e))
            }))
        }));
    }
    for (dir, pid) in dirs {
        let d = dir.clone();
        out.push(Leftover::new(
            "scratch directory",
            dir.display().to_string(),
            pid,
            move || {
                blocking(Box::new(move || {
                    // Gone already (another run's sweep got there first) is the goal too.
                    match std::fs::remove_dir_all(&d) {
                        Ok(()) => Ok(()),
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                        Err(_) if !d.exists() => Ok(()),
                        Err(e) => Err(e.to_string()),
                    }
                }))
            },
        ));
    }
    out
}

/// Finds and removes (or, when `dry_run`, lists) what runs whose process is gone left: the
/// areas' leftovers first (containers, networks, links, pods), then namespaces and scratch
/// directories. `progress` sees each before it goes.
pub async fn sweep(
    areas: &nfvi_harness::Areas,
    target: &nfvi_harness::Target,
    dry_run: bool,
    progress: &mut dyn FnMut(&Leftover),
) -> Cleaned {
    let gone = |pid: u32| leftover::owner_gone(pid);
    let (mut found, errors) = leftover::find(areas, target, &gone).await;
    found.extend(local_leftovers(Path::new(NETNS_DIR), &std::env::temp_dir()));
    let mut cleaned = leftover::remove_all(found, dry_run, progress).await;
    cleaned
        .failed
        .extend(errors.into_iter().map(|e| format!("{CANNOT_LOOK}{e}")));
    cleaned
}

/// `nfvi-verify clean [--dry-run] [--target FILE]`.
pub fn clean(args: &crate::cli::CleanArgs) -> Result<i32, CliError> {
    let areas = nfvi_verify::areas();
    let target = match args.target.as_deref() {
        Some(p) => nfvi_harness::Target::load(p, &areas, &[])?,
        None => nfvi_harness::Target::local(&areas),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Incomplete(format!("cannot start a runtime: {e}")))?;
    let verb = if args.dry_run {
        "would remove"
    } else {
        "removing"
    };
    let cleaned = runtime.block_on(sweep(&areas, &target, args.dry_run, &mut |l| {
        eprintln!("{verb} {l}");
    }));
    if cleaned.removed.is_empty() && cleaned.failed.is_empty() {
        eprintln!("nothing to clean: nothing of a run whose process is gone");
    }
    if cleaned.failed.is_empty() {
        Ok(exit_code::CONFORMANT)
    } else {
        Err(CliError::Incomplete(format!(
            "could not clean: {}",
            cleaned.failed.join("; ")
        )))
    }
}

/// The start of every run: removes what runs whose process is gone left, says so in one line,
/// and never fails the run (what could not be removed is a warning). Off with `--no-clean`
/// or `NFVI_VERIFY_NO_CLEAN=1`.
pub fn before_run(session: &nfvi_harness::Session, areas: &nfvi_harness::Areas) {
    let cleaned = session.block_on(sweep(areas, session.target(), false, &mut |l| {
        tracing::info!(leftover = %l, "removing what a killed run left");
    }));
    if !cleaned.removed.is_empty() {
        eprintln!(
            "nfvi-verify: removed {} leftover(s) of killed runs: {}",
            cleaned.removed.len(),
            summarise(&cleaned.removed)
        );
    }
    for f in &cleaned.failed {
        // An engine or cluster the run may not even use, unreachable: the log says so, and
        // `nfvi-verify clean` would too.
        if f.starts_with(CANNOT_LOOK) {
            tracing::warn!("{f}");
        } else {
            eprintln!("warning: {f}");
        }
    }
}

/// `3 containers, 1 network, 2 network namespaces` from "kind name (of process N)" lines.
fn summarise(removed: &[String]) -> String {
    let mut counts: Vec<(String, usize)> = Vec::new();
    for r in removed {
        let kind = kind_of(r);
        match counts.iter_mut().find(|(k, _)| *k == kind) {
            Some((_, n)) => *n += 1,
            None => counts.push((kind, 1)),
        }
    }
    counts
        .into_iter()
        .map(|(k, n)| match (n, k.strip_suffix('y')) {
            (1, _) => format!("1 {k}"),
            (_, Some(stem)) => format!("{n} {stem}ies"),
            _ => format!("{n} {k}s"),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn kind_of(line: &str) -> String {
    const KINDS: &[&str] = &[
        "network namespace",
        "scratch directory",
        "container",
        "network",
        "link",
        "pod",
        "namespace",
    ];
    KINDS
        .iter()
        .find(|k| line.starts_with(&format!("{k} ")))
        .map_or_else(
            || line.split(' ').next().unwrap_or_default().to_owned(),
            |k| (*k).to_owned(),
        )
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
        assert_eq!(netns_pid("nfv-1234-7-gw"), Some(1234));
        assert_eq!(netns_pid("nfvdrsrc-1234-7"), Some(1234));
        // Plausible operator namespaces on an NFV host.
        assert_eq!(netns_pid("nfv-tenant-3000-1"), None);
        assert_eq!(netns_pid("nfvi-vnf-512-2"), None);
        assert_eq!(netns_pid("nfvvrf-3000-1"), None);
        assert_eq!(scratch_pid("nfv-cni-1234-Ab3xYz"), Some(1234));
        assert_eq!(scratch_pid("nfvd99-3-ipam-1234-q9Z"), Some(1234));
        assert_eq!(scratch_pid("nfv-cni-Ab3xYz"), None);
        assert_eq!(scratch_pid("other-1234-Ab3xYz"), None);
        assert_eq!(scratch_pid("nfv-cni-1234-"), None);
    }
}
