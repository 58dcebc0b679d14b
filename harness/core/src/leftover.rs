//! What runs that were killed (SIGKILL, a crash, a power cut) left behind, and how it goes.
//!
//! Everything the harness creates carries its owner's process ID: in its name (namespaces,
//! scratch directories, links) or in the labels [`OWNER_LABEL`] and [`OWNER_HOST_LABEL`]
//! (containers, networks, pods, Kubernetes namespaces). Each area finds what it created
//! whose owner is gone ([`crate::Area::leftovers`]) and says how to remove it; `nfvi-verify
//! clean` and the start of every run remove what the areas find, and never anything whose
//! owner still runs (a process ID the machine shows, a zombie included, counts as running).

use std::time::Duration;

use crate::area::Areas;
use crate::check::BoxFuture;
use crate::target::Target;

/// The label holding the owner's process ID on what the harness creates through an API
/// (containers, networks, pods, Kubernetes namespaces).
pub const OWNER_LABEL: &str = "io.nfvi-verify.owner";

/// The label holding the owner's host name ([`owner_host`]) next to [`OWNER_LABEL`]: a
/// process ID means something on one machine only, and an engine or a cluster may be
/// shared by runs on several.
pub const OWNER_HOST_LABEL: &str = "io.nfvi-verify.owner-host";

/// How long one area may take to find its leftovers.
pub const FIND_DEADLINE: Duration = Duration::from_secs(15);

/// How long removing one leftover may take.
pub const REMOVE_DEADLINE: Duration = Duration::from_secs(30);

/// Whether the process that owned something is gone (the predicate areas get).
pub type Gone<'a> = &'a (dyn Fn(u32) -> bool + Send + Sync);

type Remove = Box<dyn FnOnce() -> BoxFuture<'static, Result<(), String>> + Send>;

/// One thing a run whose process is gone left behind, with the way to remove it.
pub struct Leftover {
    /// What it is: `container`, `network`, `link`, `network namespace`...
    pub kind: &'static str,
    /// Its name (or ID), as the user would look for it.
    pub name: String,
    /// The process ID of the run that created it.
    pub owner: u32,
    remove: Remove,
}

impl std::fmt::Debug for Leftover {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {} (owner {})", self.kind, self.name, self.owner)
    }
}

impl std::fmt::Display for Leftover {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {} (of process {})", self.kind, self.name, self.owner)
    }
}

impl Leftover {
    /// A leftover that `remove` removes (a removal that finds it gone already succeeds).
    pub fn new<F>(kind: &'static str, name: impl Into<String>, owner: u32, remove: F) -> Self
    where
        F: FnOnce() -> BoxFuture<'static, Result<(), String>> + Send + 'static,
    {
        Self {
            kind,
            name: name.into(),
            owner,
            remove: Box::new(remove),
        }
    }

    /// Removes it, under [`REMOVE_DEADLINE`].
    pub async fn remove(self) -> Result<(), String> {
        match tokio::time::timeout(REMOVE_DEADLINE, (self.remove)()).await {
            Ok(r) => r,
            Err(_) => Err(format!(
                "not removed within {} s",
                REMOVE_DEADLINE.as_secs()
            )),
        }
    }
}

/// Whether process `pid` is gone from this machine: no `/proc/PID` (a zombie still has one,
/// so a killed run that its parent has not reaped yet keeps what it made until then).
pub fn owner_gone(pid: u32) -> bool {
    pid != 0 && !std::path::Path::new("/proc").join(pid.to_string()).exists()
}

/// Where this process's ID means this process, as a label value (at most 63 of
/// `[A-Za-z0-9._-]`): the machine's name (at most 40 characters), the first 8 hex digits of
/// this boot's ID and the inode of this PID namespace. Runs on two machines with one name, in
/// a container with its own PID namespace next to the host, or before a reboot, never take
/// each other's process IDs for their own: the value of [`OWNER_HOST_LABEL`].
pub fn owner_host() -> String {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let name: String = name.trim().chars().take(40).collect();
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap_or_default();
    let boot: String = boot
        .chars()
        .filter(char::is_ascii_hexdigit)
        .take(8)
        .collect();
    let pidns = std::fs::read_link("/proc/self/ns/pid")
        .ok()
        .and_then(|l| {
            let l = l.to_string_lossy().into_owned();
            l.strip_prefix("pid:[")?
                .strip_suffix(']')
                .map(str::to_owned)
        })
        .unwrap_or_default();
    label_value(&format!("{name}-{boot}-{pidns}"))
}

fn label_value(raw: &str) -> String {
    let v: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .take(63)
        .collect();
    // A label value starts and ends with an alphanumeric character.
    let v = v.trim_matches(|c: char| !c.is_ascii_alphanumeric());
    if v.is_empty() {
        "unknown".to_owned()
    } else {
        v.to_owned()
    }
}

/// The labels that mark what this process creates as its own: its ID and its host.
pub fn owner_labels() -> [(&'static str, String); 2] {
    [
        (OWNER_LABEL, std::process::id().to_string()),
        (OWNER_HOST_LABEL, owner_host()),
    ]
}

/// The owner in a pair of labels, when they name a process of this machine: `None` for
/// objects without them, of another host, or with a value that is no process ID.
pub fn owner_of<'a>(mut label: impl FnMut(&str) -> Option<&'a str>) -> Option<u32> {
    let pid: u32 = label(OWNER_LABEL)?.parse().ok()?;
    (label(OWNER_HOST_LABEL)? == owner_host() && pid != 0).then_some(pid)
}

/// What every area finds, each under [`FIND_DEADLINE`]: the leftovers, and for each area that
/// could not look, why (`area: error`).
pub async fn find(areas: &Areas, target: &Target, gone: Gone<'_>) -> (Vec<Leftover>, Vec<String>) {
    let mut found = Vec::new();
    let mut errors = Vec::new();
    for area in areas.iter() {
        match tokio::time::timeout(FIND_DEADLINE, area.leftovers(target, gone)).await {
            Ok(Ok(mut l)) => found.append(&mut l),
            Ok(Err(e)) => errors.push(format!("{}: {e}", area.id())),
            Err(_) => errors.push(format!(
                "{}: no answer within {} s",
                area.id(),
                FIND_DEADLINE.as_secs()
            )),
        }
    }
    (found, errors)
}

/// What a clean did.
#[derive(Debug, Default)]
pub struct Cleaned {
    /// What was removed (or, in a dry run, would be).
    pub removed: Vec<String>,
    /// What could not be looked at or removed, and why.
    pub failed: Vec<String>,
}

/// Removes `leftovers` in order (or, when `dry_run`, only lists them), calling `progress` with
/// each before it goes.
pub async fn remove_all(
    leftovers: Vec<Leftover>,
    dry_run: bool,
    progress: &mut dyn FnMut(&Leftover),
) -> Cleaned {
    let mut cleaned = Cleaned::default();
    for l in leftovers {
        progress(&l);
        let what = l.to_string();
        if dry_run {
            cleaned.removed.push(what);
            continue;
        }
        match l.remove().await {
            Ok(()) => cleaned.removed.push(what),
            Err(e) => cleaned.failed.push(format!("{what}: {e}")),
        }
    }
    cleaned
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owners_are_read_from_labels_of_this_host_only() {
        let host = owner_host();
        let labels = |pid: &'static str, h: String| {
            move |k: &str| match k {
                OWNER_LABEL => Some(pid),
                OWNER_HOST_LABEL => Some(Box::leak(h.clone().into_boxed_str()) as &str),
                _ => None,
            }
        };
        assert_eq!(owner_of(labels("1234", host.clone())), Some(1234));
        assert_eq!(owner_of(labels("1234", "elsewhere".into())), None);
        assert_eq!(owner_of(labels("12x", host.clone())), None);
        assert_eq!(owner_of(labels("0", host)), None);
        assert_eq!(owner_of(|_| None), None);
        assert_eq!(label_value("a b.c"), "a_b.c");
        assert_eq!(label_value("-x-"), "x");
        assert_eq!(label_value("é"), "unknown");
        assert_eq!(label_value(&"a".repeat(80)).len(), 63);
    }

    #[test]
    fn this_process_runs_and_pid_zero_is_nobody_to_judge() {
        assert!(!owner_gone(std::process::id()));
        assert!(!owner_gone(0));
        assert!(owner_gone(u32::MAX));
    }

    #[tokio::test]
    async fn a_dry_run_removes_nothing_and_failures_are_reported() {
        let removed = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let make = |fail: bool| {
            let removed = removed.clone();
            Leftover::new("thing", "t", 7, move || {
                Box::pin(async move {
                    removed.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    if fail { Err("busy".into()) } else { Ok(()) }
                })
            })
        };
        let dry = remove_all(vec![make(false), make(true)], true, &mut |_| {}).await;
        assert_eq!(dry.removed.len(), 2);
        assert_eq!(removed.load(std::sync::atomic::Ordering::SeqCst), 0);
        let real = remove_all(vec![make(false), make(true)], false, &mut |_| {}).await;
        assert_eq!(real.removed, ["thing t (of process 7)"]);
        assert_eq!(real.failed, ["thing t (of process 7): busy"]);
    }
}
