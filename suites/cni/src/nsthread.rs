//! Running a closure inside a network namespace on a dedicated OS thread. A socket belongs to
//! the namespace of the thread that creates it, and `setns` changes only the calling thread,
//! so this never touches the async runtime's pooled threads: a fresh thread enters the
//! namespace, does its work and exits.

use std::os::fd::AsFd;

use nix::sched::{CloneFlags, setns};
use tokio::sync::oneshot;

/// Runs `f` in the network namespace at `netns_path` on a new thread.
pub(crate) async fn in_netns<T, F>(netns_path: String, f: F) -> Result<T, String>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, String> + Send + 'static,
{
    let (tx, rx) = oneshot::channel();
    std::thread::Builder::new()
        .name("nfvi-netns".into())
        .spawn(move || {
            let result = (|| {
                let file = std::fs::File::open(&netns_path)
                    .map_err(|e| format!("cannot open {netns_path}: {e}"))?;
                setns(file.as_fd(), CloneFlags::CLONE_NEWNET)
                    .map_err(|e| format!("setns into {netns_path}: {e}"))?;
                f()
            })();
            let _ = tx.send(result);
        })
        .map_err(|e| format!("cannot start a namespace thread: {e}"))?;
    rx.await
        .map_err(|_| "the namespace thread died".to_owned())?
}
