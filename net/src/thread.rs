//! Work inside a network namespace, on a fresh OS thread that enters it, does the work and
//! exits. Never on a pooled thread (the async runtime's workers, `spawn_blocking`): a thread
//! that entered a namespace stays in it, and whatever ran on it next would too.
//!
//! What the thread creates keeps the namespace: a socket it opens stays bound to it after
//! the thread is gone, and a process it starts begins life there, without `ip netns exec`.

use std::io;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::thread::JoinHandle;

use nfvi_harness::panics;

use crate::error::NetnsError;
use crate::sys;

fn builder() -> std::thread::Builder {
    std::thread::Builder::new().name("nfvi-netns".into())
}

/// Starts `f` on a new thread inside the namespace at `path`; the handle yields what `f`
/// returned, or why the thread could not enter.
pub fn spawn_in<T, F>(path: &Path, f: F) -> Result<JoinHandle<Result<T, NetnsError>>, NetnsError>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    spawn_in_with(path, move |entered| entered.map(|()| f()))
}

/// Starts `f` on a new thread that enters the namespace at `path` first and hands `f` the
/// outcome: on `Err` the thread is still in the caller's namespace and `f` should only report
/// it. For handles of the caller's own type (a thread that may or may not switch namespace).
pub fn spawn_in_with<T, F>(path: &Path, f: F) -> Result<JoinHandle<T>, NetnsError>
where
    T: Send + 'static,
    F: FnOnce(Result<(), NetnsError>) -> T + Send + 'static,
{
    let path = path.to_owned();
    builder()
        .spawn(move || f(sys::enter_netns(&path)))
        .map_err(NetnsError::Thread)
}

/// Runs `f` on a new thread inside the namespace at `path` and waits for it (a blocking
/// call: from async code use [`in_netns`]).
pub fn run_in<T, F>(path: &Path, f: F) -> Result<T, NetnsError>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    spawn_in(path, f)?
        .join()
        .map_err(|p| NetnsError::Panicked(panics::join_message(&*p)))?
}

/// Runs `f` on a new thread inside the namespace at `path`; the calling task waits without
/// blocking its thread.
pub async fn in_netns<T, F>(path: impl Into<PathBuf>, f: F) -> Result<T, NetnsError>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let path = path.into();
    let (tx, rx) = tokio::sync::oneshot::channel();
    builder()
        .spawn(move || {
            // Caught here, on its own thread, where the hook recorded where it panicked.
            let result = sys::enter_netns(&path).and_then(|()| {
                panics::catch(f).map_err(|p| NetnsError::Panicked(format!("panicked {p}")))
            });
            let _ = tx.send(result);
        })
        .map_err(NetnsError::Thread)?;
    // The thread always sends; only a panic outside `f` (in sending) drops the sender.
    rx.await.map_err(|_| {
        NetnsError::Panicked("panicked (location unknown): it ended without an answer".into())
    })?
}

/// Starts `command` inside the namespace at `path`: forked from a thread that entered it, the
/// child begins life there. Unlike `ip netns exec`, nothing else changes: no private mount
/// namespace, `/sys` not remounted, no `/etc/netns/NAME` bind mounts.
pub fn spawn_command_in(path: &Path, mut command: Command) -> io::Result<Child> {
    run_in(path, move || command.spawn()).map_err(|e| io::Error::other(crate::chain(&e)))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_namespace_is_reported_with_its_path() {
        let err = run_in(Path::new("/run/netns/nfv-no-such-namespace"), || ()).unwrap_err();
        assert!(
            crate::chain(&err).starts_with("cannot open /run/netns/nfv-no-such-namespace: "),
            "{}",
            crate::chain(&err)
        );
    }

    /// `panicked at net/src/thread.rs:LINE:` and the message, or `None` without
    /// CAP_SYS_ADMIN (setns is refused even into one's own namespace).
    fn panicked_at(err: NetnsError, line: u32, message: &str) -> Option<()> {
        let text = crate::chain(&err);
        if matches!(err, NetnsError::Enter { .. }) {
            eprintln!("SKIPPED: setns needs CAP_SYS_ADMIN ({text})");
            return None;
        }
        let at = format!("a namespace thread panicked at {}:{line}:", file!());
        assert!(
            text.starts_with(&at) && text.ends_with(&format!(": {message}")),
            "{text}"
        );
        Some(())
    }

    #[test]
    fn a_panic_on_a_namespace_thread_names_where() {
        nfvi_harness::panics::install_chained();
        let here = PathBuf::from("/proc/thread-self/ns/net");
        let line = line!() + 1;
        let err = run_in(&here, || panic!("boom in run_in")).unwrap_err();
        if panicked_at(err, line, "boom in run_in").is_none() {
            return;
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let line = line!() + 2;
        let err = runtime
            .block_on(in_netns(here, || panic!("boom in in_netns")))
            .unwrap_err();
        panicked_at(err, line, "boom in in_netns");
    }

    #[test]
    fn the_work_runs_and_its_value_comes_back() {
        // The calling thread's own namespace, reachable without privileges.
        let here = PathBuf::from("/proc/thread-self/ns/net");
        match run_in(&here, || 6 * 7) {
            Ok(v) => assert_eq!(v, 42),
            // Without CAP_SYS_ADMIN setns is refused even into one's own namespace.
            Err(NetnsError::Enter { .. }) => eprintln!("SKIPPED: setns needs CAP_SYS_ADMIN"),
            Err(e) => panic!("{}", crate::chain(&e)),
        }
    }
}
