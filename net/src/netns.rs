//! Named network namespaces under [`NETNS_DIR`], created and deleted the way `ip netns add`
//! and `ip netns del` do it, in-process:
//!
//! - create: make `/run/netns` a shared mount point (once), create the file `NAME`
//!   exclusively, `unshare(CLONE_NEWNET)` on a fresh thread and bind-mount that thread's
//!   namespace on the file. The mount keeps the namespace alive after the thread exits, and
//!   `ip netns list`, `ip -n NAME` and `CNI_NETNS=/run/netns/NAME` all see it.
//! - delete: lazily unmount the file and remove it. The kernel frees the namespace, and every
//!   link, address, route, rule and qdisc in it, once no mount, process, thread or socket
//!   holds it any more.
//!
//! Only names with the project's prefix are created or deleted, so a slip can never remove a
//! namespace someone else made.

use std::fs::OpenOptions;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;

use nfvi_harness::panics;

use crate::error::NetnsError;
use crate::names::PREFIX;
use crate::sys;

/// Where named network namespaces are bound (`ip netns` uses the same directory).
pub const NETNS_DIR: &str = "/run/netns";

/// A named network namespace: its name and the bind mount under [`NETNS_DIR`]. A plain
/// reference: it neither keeps the namespace alive nor deletes it (see [`NetnsGuard`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Netns {
    name: String,
    path: PathBuf,
}

impl Netns {
    /// The namespace `name` under [`NETNS_DIR`], which may or may not exist.
    pub fn named(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            path: Path::new(NETNS_DIR).join(name),
        }
    }

    /// The name (what `ip netns list` shows).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The bind mount: what `CNI_NETNS` and `setns` take.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the bind mount is there.
    pub fn exists(&self) -> bool {
        self.path.exists()
    }
}

fn check_name(name: &str) -> Result<(), NetnsError> {
    if name.starts_with(PREFIX) && !name.contains('/') && name.len() < 256 {
        Ok(())
    } else {
        Err(NetnsError::InvalidName(name.to_owned()))
    }
}

/// Creates the namespace `name` with `lo` down, as a fresh namespace has it.
pub fn create(name: &str) -> Result<Netns, NetnsError> {
    create_with(name, || ()).map(|(ns, ())| ns)
}

/// Creates the namespace `name` and runs `setup` inside it, on the thread that created it,
/// before anything else can use it (`lo` up, a netlink batch through
/// [`crate::within_current`]...). Returns the namespace and what `setup` returned; the
/// namespace stays even if `setup` reports a failure (the caller has registered its deletion),
/// but not if `setup` panics. Blocks until done: from async code use [`create_with_async`].
pub fn create_with<T, F>(name: &str, setup: F) -> Result<(Netns, T), NetnsError>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let (ns, thread) = start_create(name, setup)?;
    let made = thread
        .join()
        .map_err(|p| NetnsError::Panicked(panics::join_message(&*p)))
        .and_then(|r| r);
    finish_create(ns, made)
}

/// [`create_with`] for async callers: the task waits without blocking its thread.
pub async fn create_with_async<T, F>(name: &str, setup: F) -> Result<(Netns, T), NetnsError>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let (tx, rx) = tokio::sync::oneshot::channel();
    let (ns, thread) = start_create(name, move || {
        let _ = tx.send(setup());
    })?;
    // The thread sends after a successful unshare and mount; without a value it failed, and
    // joining it (at once, it has ended) says why.
    let made = match rx.await {
        Ok(t) => Ok(t),
        Err(_) => Err(thread
            .join()
            .map_err(|p| NetnsError::Panicked(panics::join_message(&*p)))
            .and_then(|r| r)
            .err()
            .unwrap_or_else(|| {
                NetnsError::Panicked("ended without an answer (location unknown)".into())
            })),
    };
    finish_create(ns, made)
}

/// Creates the file and starts the thread that makes the namespace and runs `setup`.
fn start_create<T, F>(
    name: &str,
    setup: F,
) -> Result<(Netns, JoinHandle<Result<T, NetnsError>>), NetnsError>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    check_name(name)?;
    let ns = Netns::named(name);
    sys::prepare_run_dir(Path::new(NETNS_DIR))?;
    // Mode 0 and exclusive, like `ip netns add`: an existing name is an error, never reused.
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o000)
        .open(ns.path())
        .map_err(|source| NetnsError::CreateFile {
            path: ns.path().to_owned(),
            source,
        })?;
    let target = ns.path().to_owned();
    let started = std::thread::Builder::new().name("nfvi-netns".into()).spawn(
        move || -> Result<T, NetnsError> {
            sys::unshare_netns()?;
            sys::bind_current_netns(&target)?;
            Ok(setup())
        },
    );
    match started {
        Ok(thread) => Ok((ns, thread)),
        Err(e) => {
            let _ = std::fs::remove_file(ns.path());
            Err(NetnsError::Thread(e))
        }
    }
}

/// Keeps the namespace if it was made, removes every trace of it otherwise.
fn finish_create<T>(ns: Netns, made: Result<T, NetnsError>) -> Result<(Netns, T), NetnsError> {
    match made {
        Ok(t) => Ok((ns, t)),
        Err(e) => {
            sys::detach(ns.path());
            let _ = std::fs::remove_file(ns.path());
            Err(e)
        }
    }
}

/// Deletes the namespace `name`: unmount and remove its file, as `ip netns del` does. A
/// namespace that is not there is fine (deletion is idempotent, so cleanups can always run).
pub fn delete(name: &str) -> Result<(), NetnsError> {
    check_name(name)?;
    let path = Path::new(NETNS_DIR).join(name);
    sys::detach(&path);
    match std::fs::remove_file(&path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(NetnsError::Remove { path, source }),
    }
}

/// A namespace deleted when the guard is dropped (errors on drop are ignored: call
/// [`NetnsGuard::delete`] to see them, or [`NetnsGuard::keep`] to keep the namespace).
#[derive(Debug)]
pub struct NetnsGuard {
    ns: Option<Netns>,
}

impl NetnsGuard {
    /// Creates `name` (as [`create`]) and guards it.
    pub fn create(name: &str) -> Result<Self, NetnsError> {
        create(name).map(Self::new)
    }

    /// Guards an existing namespace.
    pub fn new(ns: Netns) -> Self {
        Self { ns: Some(ns) }
    }

    /// The namespace.
    pub fn netns(&self) -> &Netns {
        self.ns
            .as_ref()
            .expect("a guard holds its namespace until dropped")
    }

    /// Deletes the namespace now and reports how that went.
    pub fn delete(mut self) -> Result<(), NetnsError> {
        match self.ns.take() {
            Some(ns) => delete(ns.name()),
            None => Ok(()),
        }
    }

    /// Disarms the guard: the namespace stays.
    pub fn keep(mut self) -> Netns {
        self.ns
            .take()
            .expect("a guard holds its namespace until dropped")
    }
}

impl std::ops::Deref for NetnsGuard {
    type Target = Netns;

    fn deref(&self) -> &Netns {
        self.netns()
    }
}

impl Drop for NetnsGuard {
    fn drop(&mut self) {
        if let Some(ns) = self.ns.take() {
            let _ = delete(ns.name());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_our_names_are_touched() {
        for bad in ["", "eth0", "default", "nfv/../x", "../nfvx"] {
            assert!(
                matches!(delete(bad), Err(NetnsError::InvalidName(_))),
                "{bad:?}"
            );
            assert!(
                matches!(create(bad), Err(NetnsError::InvalidName(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn a_panic_while_creating_names_where_and_leaves_no_namespace() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("SKIPPED: creating a namespace needs root");
            return;
        }
        nfvi_harness::panics::install_chained();
        let name = crate::unique("nfvpanic-");
        let line = line!() + 1;
        let err = create_with(&name, || panic!("boom in setup")).unwrap_err();
        let text = crate::chain(&err);
        let at = format!("a namespace thread panicked at {}:{line}:", file!());
        assert!(text.starts_with(&at), "{text}");
        assert!(text.ends_with(": boom in setup"), "{text}");
        assert!(!Netns::named(&name).exists(), "{name} left behind");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let line = line!() + 2;
        let err = runtime
            .block_on(create_with_async(&name, || panic!("boom in async setup")))
            .unwrap_err();
        let text = crate::chain(&err);
        let at = format!("a namespace thread panicked at {}:{line}:", file!());
        assert!(text.starts_with(&at), "{text}");
        assert!(!Netns::named(&name).exists(), "{name} left behind");
    }

    #[test]
    fn deleting_a_missing_namespace_is_fine() {
        delete(&crate::unique("nfvmissing-")).unwrap();
    }
}
