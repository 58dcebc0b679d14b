//! Child processes for the transport: each in a process group of its own (a Ctrl-C on the
//! terminal reaches nfvi-verify, which stops the agents through their input, and not the
//! clients), killed as a group, and only before they are reaped (a PID is never signalled
//! after it could have been reused).

use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nfvi_harness::cancel::CancelToken;

/// Most bytes kept of a short command's standard output and error.
const OUTPUT_CAP: usize = 1 << 20;

/// A `Command` for `argv`, in a process group of its own.
pub fn command(argv: &[String]) -> Command {
    let mut cmd = Command::new(&argv[0]);
    cmd.args(&argv[1..]).process_group(0);
    cmd
}

/// Kills a child's process group (the child leads it), then the child itself, unless it has
/// been reaped already.
pub fn kill(child: &mut Child) {
    if matches!(child.try_wait(), Ok(None)) {
        if let Ok(pid) = i32::try_from(child.id()) {
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        let _ = child.kill();
    }
    let _ = child.wait();
}

/// Waits for `child` until `deadline`, polling; `None` when it is still running then.
pub fn wait_until(child: &mut Child, deadline: Instant) -> Option<ExitStatus> {
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() >= deadline => return None,
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(_) => return child.wait().ok(),
        }
    }
}

/// What a short command did.
#[derive(Debug)]
pub struct Output {
    /// Its exit status.
    pub status: ExitStatus,
    /// Its standard output (at most [`OUTPUT_CAP`] bytes).
    pub stdout: Vec<u8>,
    /// Its standard error, as text (at most [`OUTPUT_CAP`] bytes).
    pub stderr: String,
}

impl Output {
    /// Standard output as trimmed text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).trim().to_owned()
    }

    /// The last non-empty line of standard error, or a placeholder.
    pub fn last_error_line(&self) -> String {
        last_line(&self.stderr)
    }
}

/// The last non-empty line of `text`, or "no error output".
pub fn last_line(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty())
        .unwrap_or("no error output")
        .to_owned()
}

/// Why a short command did not give an [`Output`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunError {
    /// It could not be started.
    Spawn(String),
    /// It ran past its deadline and was killed.
    TimedOut(Duration),
    /// The run was cancelled and it was killed.
    Cancelled,
}

impl std::fmt::Display for RunError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RunError::Spawn(e) => write!(f, "cannot start it: {e}"),
            RunError::TimedOut(d) => write!(f, "it did not finish within {} s", d.as_secs()),
            RunError::Cancelled => f.write_str("stopped: the run was cancelled"),
        }
    }
}

/// Runs a short command with `stdin` written to it, under `timeout` and `cancel`.
pub fn run(
    argv: &[String],
    stdin: Option<&[u8]>,
    timeout: Duration,
    cancel: &CancelToken,
) -> Result<Output, RunError> {
    let mut cmd = command(argv);
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| RunError::Spawn(e.to_string()))?;
    let deadline = Instant::now() + timeout;
    let (mut out, mut err) = (child.stdout.take(), child.stderr.take());
    let writer_input = child.stdin.take();
    std::thread::scope(|scope| {
        if let (Some(mut pipe), Some(bytes)) = (writer_input, stdin) {
            // A child that exits early closes the pipe: the write fails, which is fine.
            scope.spawn(move || {
                let _ = pipe.write_all(bytes);
            });
        }
        let stdout = scope.spawn(move || out.as_mut().map(capped).unwrap_or_default());
        let stderr = scope.spawn(move || err.as_mut().map(capped).unwrap_or_default());
        let status = loop {
            if let Ok(Some(status)) = child.try_wait() {
                break Ok(status);
            }
            if cancel.is_cancelled() {
                kill(&mut child);
                break Err(RunError::Cancelled);
            }
            if Instant::now() >= deadline {
                kill(&mut child);
                break Err(RunError::TimedOut(timeout));
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let stdout = stdout.join().unwrap_or_default();
        let stderr = stderr.join().unwrap_or_default();
        status.map(|status| Output {
            status,
            stdout,
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
        })
    })
}

/// Reads a pipe to its end, keeping the first [`OUTPUT_CAP`] bytes.
fn capped(pipe: &mut impl Read) -> Vec<u8> {
    let mut kept = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match pipe.read(&mut buf) {
            Ok(0) | Err(_) => return kept,
            Ok(n) => {
                let room = OUTPUT_CAP.saturating_sub(kept.len());
                kept.extend_from_slice(&buf[..n.min(room)]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(s: &[&str]) -> Vec<String> {
        s.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn short_commands_run_with_input_deadline_and_cancellation() {
        let never = CancelToken::never();
        let out = run(
            &argv(&["sh", "-c", "cat; echo oops >&2; exit 3"]),
            Some(b"hello"),
            Duration::from_secs(10),
            &never,
        )
        .unwrap();
        assert_eq!(out.text(), "hello");
        assert_eq!(out.status.code(), Some(3));
        assert_eq!(out.last_error_line(), "oops");
        let started = Instant::now();
        let e = run(
            &argv(&["sh", "-c", "sleep 30 & sleep 30"]),
            None,
            Duration::from_millis(200),
            &never,
        )
        .unwrap_err();
        assert_eq!(e, RunError::TimedOut(Duration::from_millis(200)));
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the group was killed"
        );
        let (source, token) = nfvi_harness::cancel::CancelSource::new();
        source.escalate(nfvi_harness::cancel::CancelReason::Interrupt);
        let e = run(
            &argv(&["sleep", "30"]),
            None,
            Duration::from_secs(30),
            &token,
        )
        .unwrap_err();
        assert_eq!(e, RunError::Cancelled);
        assert!(matches!(
            run(
                &argv(&["/nonexistent/x"]),
                None,
                Duration::from_secs(1),
                &never
            ),
            Err(RunError::Spawn(_))
        ));
    }
}
