//! Panics are defects of nfvi-verify, never silent: a panic hook notes where each one
//! happened (file:line:col, message, thread) and logs it, and [`catch`] and [`catch_future`]
//! turn a panic into a [`Panic`] that names its location, for the runner (a check's or a
//! cleanup's panic is the check's error) and the binary (any other panic is a harness error,
//! and a run still writes what it observed). A panic no `catch` will see (on a thread of its
//! own, a detached task) is printed by the hook as one line; a thread's panic that its joiner
//! receives is named with its location by [`join_message`].
//!
//! The workspace builds with `panic = "unwind"` (the default: there is no `[profile]` section
//! in the root Cargo.toml). With `panic = "abort"` none of this could run; a test
//! (`panics_unwind_in_this_build`) fails if that ever changes.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::panic::{AssertUnwindSafe, PanicHookInfo};
use std::pin::Pin;
use std::sync::{Mutex, Once};
use std::task::{Context, Poll};

/// A panic, as the hook saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Panic {
    /// `file:line:col` of the panic, when known (the hook was installed and saw it).
    pub location: Option<String>,
    /// Its message.
    pub message: String,
    /// The thread it happened on, when the thread has a name.
    pub thread: Option<String>,
}

impl fmt::Display for Panic {
    /// `at src/x.rs:1:2: message`, to follow "panicked".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.location {
            Some(l) => write!(f, "at {l}: {}", self.message),
            None => write!(f, "(location unknown): {}", self.message),
        }
    }
}

impl Panic {
    /// A panic known only by its payload (one resumed without the hook seeing it).
    fn from_payload(payload: &(dyn std::any::Any + Send)) -> Self {
        Self {
            location: None,
            message: payload_message(payload),
            thread: std::thread::current().name().map(str::to_owned),
        }
    }
}

thread_local! {
    /// The last panic on this thread: the hook runs on the panicking thread just before it
    /// unwinds, so a [`catch`] on the same thread finds its own panic here.
    static LAST: RefCell<Option<Panic>> = const { RefCell::new(None) };
    /// How many [`catch`]es this thread is inside: their panics are reported by whoever
    /// catches them, the others by the hook.
    static CATCHING: Cell<u32> = const { Cell::new(0) };
}

/// The last panics on any thread, newest last, for a panic carried to another thread (a
/// joined thread's payload resumed there) and recognised by its message.
static RECENT: Mutex<VecDeque<Panic>> = Mutex::new(VecDeque::new());

/// How many panics [`RECENT`] keeps.
const RECENT_KEPT: usize = 16;

static INSTALL: Once = Once::new();

/// Installs the hook for the binary: every panic is recorded and logged (`tracing`, the run's
/// log). A panic inside [`catch`] or [`catch_future`] prints nothing on the terminal, where
/// the progress display is: whoever catches it reports it, with its location. Any other
/// (on a thread of its own, in a task nothing catches) prints one line on standard error,
/// `nfvi-verify: panic at FILE:LINE:COL: MESSAGE (thread NAME)`, so that none goes unseen.
/// With `RUST_BACKTRACE` set (not `0`) the previous hook runs instead, for every panic, and
/// prints it with its backtrace. Only the first install (this or [`install_chained`]) takes
/// effect.
pub fn install() {
    let backtrace = std::env::var_os("RUST_BACKTRACE").is_some_and(|v| v != "0");
    install_with(backtrace);
}

/// Installs the hook keeping the previous one (it still prints): for tests and embedders,
/// which get panic locations from the runner without losing their own panic output. The
/// runner calls it, so a binary that wants [`install`] calls that first.
pub fn install_chained() {
    install_with(true);
}

fn install_with(chain: bool) {
    INSTALL.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let panic = record(info);
            // The log's writer is never held while a panic can happen inside it, so logging
            // here cannot deadlock on it.
            tracing::error!(
                thread = panic.thread.as_deref().unwrap_or("<unnamed>"),
                location = panic.location.as_deref().unwrap_or("<unknown>"),
                what = %panic.message,
                "panic (a defect of nfvi-verify)"
            );
            if chain {
                previous(info);
            } else if CATCHING.with(Cell::get) == 0 {
                print_uncaught(&panic);
            }
        }));
    });
}

/// The hook's line for a panic nothing catches. Written once, and never a panic itself (a
/// panic in the hook aborts the process).
fn print_uncaught(panic: &Panic) {
    use std::io::Write as _;
    let line = format!(
        "nfvi-verify: panic at {}: {} (thread {})\n",
        panic.location.as_deref().unwrap_or("<unknown>"),
        panic.message.replace('\n', " "),
        panic.thread.as_deref().unwrap_or("<unnamed>")
    );
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

fn record(info: &PanicHookInfo<'_>) -> Panic {
    let panic = Panic {
        location: info
            .location()
            .map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column())),
        message: payload_message(info.payload()),
        thread: std::thread::current().name().map(str::to_owned),
    };
    LAST.with(|l| *l.borrow_mut() = Some(panic.clone()));
    let mut recent = RECENT.lock().unwrap_or_else(|e| e.into_inner());
    if recent.len() == RECENT_KEPT {
        recent.pop_front();
    }
    recent.push_back(panic.clone());
    panic
}

/// The panic that `payload` belongs to: this thread's last one, or else the latest one
/// anywhere, when its message is the payload's (a payload resumed without a new panic keeps
/// its first location); otherwise the payload alone.
fn identify(payload: &(dyn std::any::Any + Send)) -> Panic {
    let message = payload_message(payload);
    let here = LAST
        .with(|l| l.borrow_mut().take())
        .filter(|p| p.message == message);
    here.or_else(|| recent(&message))
        .unwrap_or_else(|| Panic::from_payload(payload))
}

/// The latest panic on any thread with this message.
fn recent(message: &str) -> Option<Panic> {
    RECENT
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .rev()
        .find(|p| p.message == message)
        .cloned()
}

/// The panic a joined thread's (or task's) payload belongs to, with its location as the
/// hook saw it on that thread (the payload alone when the hook did not see it).
pub fn joined(payload: &(dyn std::any::Any + Send)) -> Panic {
    let message = payload_message(payload);
    recent(&message).unwrap_or_else(|| Panic {
        thread: None,
        ..Panic::from_payload(payload)
    })
}

/// `panicked at FILE:LINE:COL: MESSAGE` for a joined thread's panic payload, to follow what
/// panicked in an error ("the responder panicked at ..."). For every `join()` that gets a
/// payload instead of dropping it.
pub fn join_message(payload: &(dyn std::any::Any + Send)) -> String {
    format!("panicked {}", joined(payload))
}

/// Logs the panic of a thread whose joiner cannot report it (a `Drop`): `what` names it.
pub fn log_joined(what: &str, payload: &(dyn std::any::Any + Send)) {
    tracing::error!("{what} {}", join_message(payload));
}

/// Runs `f`; a panic in it comes back as a [`Panic`] naming its location (and the hook
/// prints nothing for it: the caller reports it).
pub fn catch<R>(f: impl FnOnce() -> R) -> Result<R, Panic> {
    struct Inside;
    impl Drop for Inside {
        fn drop(&mut self) {
            CATCHING.with(|c| c.set(c.get().saturating_sub(1)));
        }
    }
    LAST.with(|l| l.borrow_mut().take());
    CATCHING.with(|c| c.set(c.get().saturating_add(1)));
    let inside = Inside;
    let caught = std::panic::catch_unwind(AssertUnwindSafe(f));
    drop(inside);
    caught.map_err(|payload| identify(&*payload))
}

/// A panic payload's message.
pub fn payload_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(non-string panic payload)".to_owned())
}

/// A future whose panics come back as a [`Panic`] naming their location.
pub struct CatchPanic<F> {
    inner: Pin<Box<F>>,
}

/// Wraps `f` so that a panic while it is polled resolves it to `Err(Panic)`.
pub fn catch_future<F: Future>(f: F) -> CatchPanic<F> {
    CatchPanic { inner: Box::pin(f) }
}

impl<F: Future> Future for CatchPanic<F> {
    type Output = Result<F::Output, Panic>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = self.inner.as_mut();
        match catch(|| inner.poll(cx)) {
            Ok(Poll::Ready(v)) => Poll::Ready(Ok(v)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(p) => Poll::Ready(Err(p)),
        }
    }
}

/// The environment variable of [`inject`].
pub const FAULT_ENV: &str = "NFVI_VERIFY_PANIC";

/// Test-only fault injection, compiled into every build and inert unless the environment
/// variable `NFVI_VERIFY_PANIC` names `point` (never set in a real run): panics there, so
/// that tests can see a panic outside a check handled as a real one would be. The panic's
/// location is the caller's. The points: `command` (any command, before it starts),
/// `check-finished` (`run`: a reporter, when the first check's result was reported),
/// `after-checks` (`run`: every check and cleanup ran, no result is written yet), `run-one`
/// (the runner, after a check and its cleanups, outside the check) and `save-results`
/// (`run`: saving the results of a run that panicked). Several points are separated by
/// commas.
#[track_caller]
pub fn inject(point: &str) {
    let named = std::env::var_os(FAULT_ENV)
        .is_some_and(|v| v.to_str().is_some_and(|v| v.split(',').any(|p| p == point)));
    if named {
        panic!("injected panic ({FAULT_ENV}={point})");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panics_unwind_in_this_build() {
        // Everything in this module needs unwinding; `panic = "abort"` in a profile of the
        // root Cargo.toml would make every panic end the process without a word.
        const {
            assert!(
                cfg!(panic = "unwind"),
                "nfvi-verify must be built with panic = \"unwind\""
            );
        }
        let manifest = include_str!("../../../Cargo.toml");
        assert!(
            !manifest
                .lines()
                .any(|l| l.trim_start().starts_with("panic") && l.contains("abort")),
            "the workspace must not set panic = \"abort\""
        );
    }

    #[test]
    fn a_caught_panic_names_its_location_and_message() {
        install_chained();
        let line = line!() + 1;
        let err = catch(|| panic!("boom {}", 7)).unwrap_err();
        assert_eq!(err.message, "boom 7");
        let location = err.location.clone().unwrap();
        assert!(
            location.starts_with(&format!("{}:{line}:", file!())),
            "{location}"
        );
        assert_eq!(err.to_string(), format!("at {location}: boom 7"));
        assert_eq!(catch(|| 5).unwrap(), 5);
    }

    #[test]
    fn a_resumed_payload_keeps_the_location_of_its_first_panic() {
        install_chained();
        let line = line!() + 2;
        let joined = std::thread::spawn(|| {
            panic!("in a thread");
        })
        .join()
        .unwrap_err();
        let err = catch(|| std::panic::resume_unwind(joined)).unwrap_err();
        assert_eq!(err.message, "in a thread");
        assert!(
            err.location
                .as_deref()
                .is_some_and(|l| l.starts_with(&format!("{}:{line}:", file!()))),
            "{err:?}"
        );
        // A payload no panic hook saw has no location, and says so.
        let err = catch(|| std::panic::resume_unwind(Box::new("never seen"))).unwrap_err();
        assert_eq!(err.location, None);
        assert_eq!(err.to_string(), "(location unknown): never seen");
    }
}
