//! Named network namespaces created and deleted the way `ip netns` does it (a bind mount of
//! a new namespace on `/run/netns/<name>`), without shelling out, and work run inside one on a
//! dedicated OS thread. `setns` changes only the calling thread, so namespace work never runs
//! on the async runtime's pooled threads.

use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sched::{CloneFlags, setns, unshare};

const NETNS_DIR: &str = "/run/netns";

/// A named network namespace under /run/netns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Netns {
    /// The name (`ip netns list` shows it).
    pub name: String,
}

impl Netns {
    /// The bind-mount path.
    pub fn path(&self) -> PathBuf {
        Path::new(NETNS_DIR).join(&self.name)
    }
}

/// Creates a named namespace with `lo` down (as a fresh namespace has it).
pub fn create(name: &str) -> Result<Netns, String> {
    std::fs::create_dir_all(NETNS_DIR).map_err(|e| format!("cannot create {NETNS_DIR}: {e}"))?;
    let path = Path::new(NETNS_DIR).join(name);
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    let target = path.clone();
    let made = std::thread::spawn(move || -> Result<(), String> {
        unshare(CloneFlags::CLONE_NEWNET).map_err(|e| format!("unshare(CLONE_NEWNET): {e}"))?;
        mount(
            Some("/proc/thread-self/ns/net"),
            &target,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(|e| format!("bind-mounting the namespace on {}: {e}", target.display()))
    })
    .join()
    .map_err(|_| "the namespace thread panicked".to_owned())?;
    if let Err(e) = made {
        let _ = std::fs::remove_file(&path);
        return Err(e);
    }
    Ok(Netns {
        name: name.to_owned(),
    })
}

/// Deletes a named namespace: unmount and remove the file. The kernel frees the namespace,
/// and every link in it, once no process or mount holds it. Missing namespaces are fine.
pub fn delete(name: &str) -> Result<(), String> {
    let path = Path::new(NETNS_DIR).join(name);
    if !path.exists() {
        return Ok(());
    }
    let _ = umount2(&path, MntFlags::MNT_DETACH);
    std::fs::remove_file(&path).map_err(|e| format!("cannot remove {}: {e}", path.display()))
}

/// Runs `f` on a new thread inside the namespace at `path` and returns its result.
pub fn run_in<T, F>(path: &Path, f: F) -> Result<T, String>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, String> + Send + 'static,
{
    let path = path.to_owned();
    std::thread::Builder::new()
        .name("nfvi-netns".into())
        .spawn(move || {
            let file = std::fs::File::open(&path)
                .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
            setns(file.as_fd(), CloneFlags::CLONE_NEWNET)
                .map_err(|e| format!("setns into {}: {e}", path.display()))?;
            f()
        })
        .map_err(|e| format!("cannot start a namespace thread: {e}"))?
        .join()
        .map_err(|_| "a namespace thread panicked".to_owned())?
}

/// Starts `f` on a new thread inside the namespace and returns its handle (for servers that
/// must run while another thread probes them).
pub fn spawn_in<T, F>(path: &Path, f: F) -> std::thread::JoinHandle<Result<T, String>>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, String> + Send + 'static,
{
    let path = path.to_owned();
    std::thread::spawn(move || {
        let file = std::fs::File::open(&path)
            .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        setns(file.as_fd(), CloneFlags::CLONE_NEWNET)
            .map_err(|e| format!("setns into {}: {e}", path.display()))?;
        f()
    })
}

/// Writes a sysctl of the namespace (for example `net/ipv4/ip_forward`).
pub fn sysctl(ns: &Netns, key: &str, value: &str) -> Result<(), String> {
    let (key, value) = (key.to_owned(), value.to_owned());
    run_in(&ns.path(), move || {
        std::fs::write(format!("/proc/sys/{key}"), value).map_err(|e| format!("sysctl {key}: {e}"))
    })
}
