//! The Linux system calls behind namespaces, through nix's safe wrappers. Everything that
//! changes the calling thread's namespace is here, and is only ever called on a thread this
//! crate started for the purpose.

use std::fs::File;
use std::io;
use std::os::fd::AsFd;
use std::os::unix::fs::DirBuilderExt;
use std::path::Path;
use std::sync::Mutex;

use nix::errno::Errno;
use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sched::{CloneFlags, setns, unshare};

use crate::error::NetnsError;

/// Moves the calling thread into the network namespace bound at `path`.
pub(crate) fn enter_netns(path: &Path) -> Result<(), NetnsError> {
    let file = File::open(path).map_err(|source| NetnsError::Open {
        path: path.to_owned(),
        source,
    })?;
    setns(file.as_fd(), CloneFlags::CLONE_NEWNET).map_err(|e| NetnsError::Enter {
        path: path.to_owned(),
        source: e.into(),
    })
}

/// Moves the calling thread into a new, empty network namespace.
pub(crate) fn unshare_netns() -> Result<(), NetnsError> {
    unshare(CloneFlags::CLONE_NEWNET).map_err(|e| NetnsError::Unshare(e.into()))
}

/// Bind-mounts the calling thread's network namespace on `target`, which keeps it alive
/// after the thread exits. `/proc/thread-self` is `/proc/self/task/<tid>`: the thread's own
/// namespace, not the process's (`ip netns add` can use `/proc/self`, being single-threaded).
pub(crate) fn bind_current_netns(target: &Path) -> Result<(), NetnsError> {
    mount(
        Some("/proc/thread-self/ns/net"),
        target,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .map_err(|e| NetnsError::Mount {
        path: target.to_owned(),
        source: e.into(),
    })
}

/// Lazily unmounts `path`; not being a mount point is fine.
pub(crate) fn detach(path: &Path) {
    let _ = umount2(path, MntFlags::MNT_DETACH);
}

/// Whether [`prepare_run_dir`] has succeeded in this process.
static PREPARED: Mutex<bool> = Mutex::new(false);

/// Creates `dir` and makes it a shared mount point, as `ip netns add` does, so that the
/// namespace mounts below it propagate between mount namespaces and unmounting one (delete)
/// unmounts it everywhere, which lets the kernel free the namespace. Once per process; a
/// directory that already is a shared mount point (any earlier `ip netns add` made it one) is
/// left as it is.
pub(crate) fn prepare_run_dir(dir: &Path) -> Result<(), NetnsError> {
    let mut prepared = PREPARED.lock().unwrap_or_else(|e| e.into_inner());
    if *prepared {
        return Ok(());
    }
    let fail = |source: io::Error| NetnsError::RunDir {
        dir: dir.to_owned(),
        source,
    };
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(dir)
        .map_err(fail)?;
    let mut made_mount_point = false;
    loop {
        match mount(
            None::<&str>,
            dir,
            Some("none"),
            MsFlags::MS_SHARED | MsFlags::MS_REC,
            None::<&str>,
        ) {
            Ok(()) => break,
            // Not a mount point yet: bind it on itself, then share it.
            Err(Errno::EINVAL) if !made_mount_point => {
                mount(
                    Some(dir),
                    dir,
                    Some("none"),
                    MsFlags::MS_BIND | MsFlags::MS_REC,
                    None::<&str>,
                )
                .map_err(|e| fail(e.into()))?;
                made_mount_point = true;
            }
            Err(e) => return Err(fail(e.into())),
        }
    }
    *prepared = true;
    Ok(())
}
