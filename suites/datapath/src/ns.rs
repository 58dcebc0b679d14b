//! Named network namespaces and work run inside one on a dedicated OS thread, on nfvi-net
//! (which creates and deletes them the way `ip netns` does, without running it). `setns`
//! changes only the calling thread, so namespace work never runs on the async runtime's
//! pooled threads. Errors are rendered whole, for the data path's `String` errors.

use std::path::{Path, PathBuf};

/// A named network namespace under /run/netns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Netns {
    /// The name (`ip netns list` shows it).
    pub name: String,
}

impl Netns {
    /// The bind-mount path.
    pub fn path(&self) -> PathBuf {
        nfvi_net::Netns::named(&self.name).path().to_owned()
    }
}

fn render(e: &(dyn std::error::Error + 'static)) -> String {
    nfvi_net::chain(e)
}

/// Creates a named namespace with `lo` down (as a fresh namespace has it).
pub fn create(name: &str) -> Result<Netns, String> {
    nfvi_net::create(name)
        .map(|ns| Netns {
            name: ns.name().to_owned(),
        })
        .map_err(|e| render(&e))
}

/// Deletes a named namespace: unmount and remove the file. The kernel frees the namespace,
/// and every link in it, once no process or mount holds it. Missing namespaces are fine.
pub fn delete(name: &str) -> Result<(), String> {
    nfvi_net::delete(name).map_err(|e| render(&e))
}

/// Runs `f` on a new thread inside the namespace at `path` and returns its result.
pub fn run_in<T, F>(path: &Path, f: F) -> Result<T, String>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, String> + Send + 'static,
{
    nfvi_net::run_in(path, f).map_err(|e| render(&e))?
}

/// Starts `f` on a new thread inside the namespace and returns its handle (for servers that
/// must run while another thread probes them).
///
/// # Panics
///
/// When no thread can be started, as [`std::thread::spawn`].
pub fn spawn_in<T, F>(path: &Path, f: F) -> std::thread::JoinHandle<Result<T, String>>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, String> + Send + 'static,
{
    nfvi_net::spawn_in_with(path, move |entered| {
        entered.map_err(|e| render(&e))?;
        f()
    })
    .unwrap_or_else(|e| panic!("{}", render(&e)))
}

/// Writes a sysctl of the namespace (for example `net/ipv4/ip_forward`).
pub fn sysctl(ns: &Netns, key: &str, value: &str) -> Result<(), String> {
    let (key, value) = (key.to_owned(), value.to_owned());
    run_in(&ns.path(), move || {
        std::fs::write(format!("/proc/sys/{key}"), value).map_err(|e| format!("sysctl {key}: {e}"))
    })
}
