//! Errors, one enum per boundary: namespaces and their threads ([`NetnsError`]) and netlink
//! ([`NetlinkError`]). Messages are lowercase fragments without the cause; the cause is the
//! `source`, and [`chain`] renders the whole chain once, where an error leaves for a human.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

/// Creating, entering or deleting a network namespace, or running a thread in one.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NetnsError {
    /// The name is empty, holds a `/`, or lacks the project's prefix.
    #[error("invalid namespace name {0:?} (it must start with `nfv` and hold no `/`)")]
    InvalidName(String),
    /// The namespace directory could not be created or made a shared mount point.
    #[error("cannot prepare {dir} for namespace mounts")]
    RunDir {
        /// The directory.
        dir: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The namespace file could not be created (or already exists).
    #[error("cannot create {path}")]
    CreateFile {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// `unshare(CLONE_NEWNET)` failed.
    #[error("cannot create a network namespace")]
    Unshare(#[source] io::Error),
    /// The new namespace could not be bind-mounted on its file.
    #[error("cannot bind-mount the new namespace on {path}")]
    Mount {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The namespace file could not be opened.
    #[error("cannot open {path}")]
    Open {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// `setns` into the namespace failed.
    #[error("cannot enter the network namespace {path}")]
    Enter {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The namespace file could not be removed.
    #[error("cannot remove {path}")]
    Remove {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// No thread could be started.
    #[error("cannot start a namespace thread")]
    Thread(#[source] io::Error),
    /// The work run on the namespace thread panicked: `panicked at FILE:LINE:COL: MESSAGE`.
    #[error("a namespace thread {0}")]
    Panicked(String),
}

/// A netlink connection or request.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NetlinkError {
    /// The namespace or its thread.
    #[error(transparent)]
    Netns(#[from] NetnsError),
    /// The single-threaded runtime that drives the connection could not be built.
    #[error("cannot start a netlink runtime")]
    Runtime(#[source] io::Error),
    /// The netlink socket could not be opened.
    #[error("cannot open a netlink socket")]
    Socket(#[source] io::Error),
    /// No link has that name.
    #[error("no link {0}")]
    NoLink(String),
    /// The link reports no MTU.
    #[error("{0} reports no MTU")]
    NoMtu(String),
    /// The kernel refused or the request failed.
    #[error("{what}")]
    Request {
        /// What was asked, naming the objects (`veth a/b`).
        what: String,
        /// The cause.
        #[source]
        source: rtnetlink::Error,
    },
    /// A link did not reach operational state UP in time.
    #[error("{name} did not come up within {timeout:?}")]
    NotUp {
        /// The link.
        name: String,
        /// How long it was given.
        timeout: Duration,
    },
}

impl NetlinkError {
    /// The errno the kernel answered a request with, if it did (`EOPNOTSUPP` for a link type
    /// the kernel cannot create, `EEXIST`...).
    pub fn errno(&self) -> Option<i32> {
        match self {
            Self::Request {
                source: rtnetlink::Error::NetlinkError(msg),
                ..
            } => Some(msg.raw_code().abs()).filter(|c| *c != 0),
            _ => None,
        }
    }
}

/// The error and its causes, outermost first, joined with `: `.
pub fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chain_is_rendered_once() {
        let e = NetlinkError::from(NetnsError::Enter {
            path: "/run/netns/nfvx".into(),
            source: io::Error::from_raw_os_error(2),
        });
        let text = chain(&e);
        assert_eq!(
            text,
            format!(
                "cannot enter the network namespace /run/netns/nfvx: {}",
                io::Error::from_raw_os_error(2)
            )
        );
        assert_eq!(e.errno(), None);
    }
}
