//! Running the node agent: putting it on the node, streaming its events, stopping it.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use nfvi_harness::cancel::{CancelLevel, CancelToken};
use nfvi_harness::fleet::{AgentEvent, AgentRequest, MAX_LINE_BYTES, NodeError};

use super::proc::{self, RunError};
use super::{AgentSource, SshTransport, argv};
use crate::inventory::Connection;

/// How long a stopped agent (input closed) gets to run its cleanups and say done.
const STOP_GRACE: Duration = Duration::from_secs(30);
/// Lines of the agent's standard error kept for messages.
const STDERR_LINES: usize = 40;
/// Lines that are not events tolerated before the first event (a login script's chatter).
const NOISE_LINES: usize = 100;

/// Runs the agent on remote node `n`, whose master is up.
pub(super) fn run_remote(
    t: &SshTransport,
    n: usize,
    request: &AgentRequest,
    cancel: &CancelToken,
    events: &mut dyn FnMut(AgentEvent),
) -> Result<(), NodeError> {
    let conn = &t.conns[n];
    let endpoint = conn.endpoint();
    let (remote, preamble) = match &t.opts.agent {
        // Copied, checked and run in one session: the binary, then the request, on its input.
        AgentSource::Copy => {
            refuse_copy_as_other_user(conn)?;
            let local = t.local_agent().map_err(NodeError::new)?;
            let remote = argv::copy_and_run_command(conn, local.bytes.len(), &local.sha256);
            (remote, Some(Arc::clone(&local.bytes)))
        }
        AgentSource::Installed(_) => {
            let (agent, _) = install(t, n, cancel)?;
            (argv::agent_command(conn, &agent, None), None)
        }
    };
    let cmd = proc::command(&argv::remote(
        &t.opts.program,
        conn,
        &t.opts,
        &t.socket(n),
        &remote,
    ));
    stream(cmd, preamble, request, cancel, events, Some(&endpoint)).result
}

/// Runs the agent on the jump host itself (`ansible_connection=local`).
pub(super) fn run_local(
    t: &SshTransport,
    n: usize,
    request: &AgentRequest,
    cancel: &CancelToken,
    events: &mut dyn FnMut(AgentEvent),
) -> Result<(), NodeError> {
    let agent = local_agent(t, cancel)?;
    let root = nix::unistd::geteuid().is_root();
    let cmd = proc::command(&argv::local_agent(&t.conns[n], &agent, root));
    stream(cmd, None, request, cancel, events, None).result
}

/// The agent a node that is the jump host itself runs: this binary (or the test's
/// stand-in), or the installed one once it said it is this version.
pub(super) fn local_agent(t: &SshTransport, cancel: &CancelToken) -> Result<PathBuf, NodeError> {
    match &t.opts.agent {
        AgentSource::Copy => t.opts.agent_binary().map_err(NodeError::new),
        AgentSource::Installed(path) => {
            let argv = [path.display().to_string(), "--version".to_owned()];
            let out = proc::run(&argv, None, Duration::from_secs(30), cancel)
                .map_err(|e| NodeError::new(format!("{}: {e}", path.display())))?;
            check_version(
                &t.opts.expected_version,
                &path.display().to_string(),
                "this machine",
                &out,
            )?;
            Ok(path.clone())
        }
    }
}

/// Puts the agent on node `n`: its path there, and its private directory when it was
/// copied.
pub(super) fn install(
    t: &SshTransport,
    n: usize,
    cancel: &CancelToken,
) -> Result<(String, Option<String>), NodeError> {
    let conn = &t.conns[n];
    let endpoint = conn.endpoint();
    let ssh = |remote: &str, stdin: Option<&[u8]>, timeout: u64, what: &str| {
        let argv = argv::remote(&t.opts.program, conn, &t.opts, &t.socket(n), remote);
        match proc::run(&argv, stdin, Duration::from_secs(timeout), cancel) {
            Ok(out) if out.status.success() => Ok(out),
            Ok(out) => Err(NodeError::new(format!(
                "{what} on {endpoint} failed (exit {}): {}",
                out.status
                    .code()
                    .map_or("by a signal".into(), |c| c.to_string()),
                out.last_error_line()
            ))),
            Err(RunError::Cancelled) => Err(NodeError::new(format!(
                "stopped: the run was cancelled while {what} on {endpoint}"
            ))),
            Err(e) => Err(NodeError::new(format!("{what} on {endpoint}: {e}"))),
        }
    };
    match &t.opts.agent {
        AgentSource::Installed(path) => {
            let path = path.display().to_string();
            let argv = argv::remote(
                &t.opts.program,
                conn,
                &t.opts,
                &t.socket(n),
                &argv::version_command(&path),
            );
            let out = proc::run(&argv, None, Duration::from_secs(30), cancel).map_err(|e| {
                NodeError::new(format!(
                    "asking the agent {path} on {endpoint} its version: {e}"
                ))
            })?;
            check_version(&t.opts.expected_version, &path, &endpoint, &out)?;
            Ok((path, None))
        }
        AgentSource::Copy => {
            refuse_copy_as_other_user(conn)?;
            let local = t.local_agent().map_err(NodeError::new)?;
            let made = ssh(argv::MKTEMP, None, 30, "making the agent's directory")?;
            let text = made.text();
            let mut lines = text.lines().map(str::trim);
            let (machine, dir) = (lines.next().unwrap_or(""), lines.next().unwrap_or(""));
            if !argv::is_agent_dir(dir) {
                return Err(NodeError::new(format!(
                    "making the agent's directory on {endpoint} printed {text:?}; expected a \
                     directory /tmp/nfvi-verify.XXXXXXXXXX"
                )));
            }
            let arch = std::env::consts::ARCH;
            if ["x86_64", "aarch64"].contains(&machine) && machine != arch {
                remove_dir(t, n, dir);
                return Err(NodeError::new(format!(
                    "{endpoint} is a {machine} machine and this nfvi-verify is built for {arch}; \
                     install a {machine} nfvi-verify on the nodes and set fleet.agent to its path"
                )));
            }
            let copied = ssh(
                &argv::install_command(dir),
                Some(&local.bytes),
                600,
                "copying the agent",
            );
            let verified = copied.and_then(|out| {
                let text = out.text();
                let got = text.split_whitespace().next().unwrap_or("");
                if got == local.sha256 {
                    Ok(())
                } else {
                    Err(NodeError::new(format!(
                        "the agent copied to {endpoint} is not this binary: its SHA-256 is \
                         `{got}`, expected `{}`",
                        local.sha256
                    )))
                }
            });
            if let Err(e) = verified {
                remove_dir(t, n, dir);
                return Err(e);
            }
            Ok((format!("{dir}/{}", argv::AGENT_NAME), Some(dir.to_owned())))
        }
    }
}

/// An installed agent must be this version.
fn check_version(
    expected: &str,
    path: &str,
    place: &str,
    out: &proc::Output,
) -> Result<(), NodeError> {
    let got = out.text();
    if out.status.code() == Some(127) {
        return Err(NodeError::new(format!(
            "there is no agent at {path} on {place} ({}); install nfvi-verify there or set \
             fleet.agent = \"copy\"",
            out.last_error_line()
        )));
    }
    if got != expected {
        return Err(NodeError::new(format!(
            "the agent at {path} on {place} is `{got}`, this nfvi-verify is `{expected}`; \
             install the same version on the nodes, or set fleet.agent = \"copy\""
        )));
    }
    Ok(())
}

/// Best effort: removes the agent's directory on node `n`.
pub(super) fn remove_dir(t: &SshTransport, n: usize, dir: &str) {
    let conn = &t.conns[n];
    let argv = argv::remote(
        &t.opts.program,
        conn,
        &t.opts,
        &t.socket(n),
        &argv::remove_command(dir),
    );
    match proc::run(&argv, None, Duration::from_secs(30), &CancelToken::never()) {
        Ok(out) if out.status.success() => {}
        Ok(out) => tracing::warn!(node = %conn.name, "removing {dir}: {}", out.last_error_line()),
        Err(e) => tracing::warn!(node = %conn.name, "removing {dir}: {e}"),
    }
}

/// How a stream ended.
struct Ended {
    result: Result<(), NodeError>,
    /// ssh said the connection is gone (exit 255); the message says so, the tests check it.
    #[cfg_attr(not(test), expect(dead_code, reason = "read by the tests"))]
    connection_lost: bool,
}

enum Msg {
    Line(String),
    TooLong,
    Eof,
}

/// A copied agent lives in a directory private to the login user: another become user could
/// not run it.
fn refuse_copy_as_other_user(conn: &Connection) -> Result<(), NodeError> {
    if conn.needs_sudo() && conn.become_user.as_deref().is_some_and(|u| u != "root") {
        return Err(NodeError::new(format!(
            "a copied agent cannot run as ansible_become_user `{}`: its directory is private \
             to the login user; install nfvi-verify on the nodes and set fleet.agent to its path",
            conn.become_user.as_deref().unwrap_or_default()
        )));
    }
    Ok(())
}

/// Runs `cmd` (the agent, through ssh when `endpoint` is given), writes `preamble` (a copied
/// agent's bytes) and the request line to its input from a thread of its own, keeps the
/// input open, and hands every event to `events` until it ends.
fn stream(
    mut cmd: Command,
    preamble: Option<Arc<Vec<u8>>>,
    request: &AgentRequest,
    cancel: &CancelToken,
    events: &mut dyn FnMut(AgentEvent),
    endpoint: Option<&str>,
) -> Ended {
    let fail = |message: String| Ended {
        result: Err(NodeError::new(message)),
        connection_lost: false,
    };
    let line = match serde_json::to_string(request) {
        Ok(mut l) => {
            l.push('\n');
            l
        }
        Err(e) => return fail(format!("cannot write the agent's request: {e}")),
    };
    let mut child = match cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => return fail(format!("cannot start the agent's command: {e}")),
    };
    let (tx, rx) = mpsc::channel();
    if let Some(out) = child.stdout.take() {
        std::thread::spawn(move || read_lines(BufReader::new(out), &tx));
    }
    let tail = Arc::new(Mutex::new(VecDeque::new()));
    let (tail_done, tail_read) = mpsc::channel::<()>();
    if let Some(err) = child.stderr.take() {
        let tail = Arc::clone(&tail);
        std::thread::spawn(move || {
            keep_tail(BufReader::new(err), &tail);
            let _ = tail_done.send(());
        });
    }
    // The writer holds the input open until `close` is dropped: that is the stop signal.
    // Writing a copied agent may take a while on a slow link; the loop below stays
    // responsive to cancellation meanwhile (killing the command ends a blocked write).
    let (close_tx, close_rx) = mpsc::channel::<()>();
    let mut close = Some(close_tx);
    if let Some(mut pipe) = child.stdin.take() {
        std::thread::spawn(move || {
            // A failed write means the command already ended; its exit says why.
            let _ = preamble
                .map_or(Ok(()), |bytes| pipe.write_all(&bytes))
                .and_then(|()| pipe.write_all(line.as_bytes()))
                .and_then(|()| pipe.flush());
            let _ = close_rx.recv();
        });
    }

    let (mut done, mut cancelled, mut killed, mut seen_event) = (false, false, false, false);
    let (mut fatal, mut failure): (Option<String>, Option<String>) = (None, None);
    let mut stop_by: Option<Instant> = None;
    let mut noise = 0;
    loop {
        let mut stop = false;
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(Msg::Line(l)) if l.trim().is_empty() => {}
            Ok(Msg::Line(l)) => match AgentEvent::parse(&l) {
                Ok(event) => {
                    seen_event = true;
                    match &event {
                        AgentEvent::Done { .. } => {
                            done = true;
                            stop = true;
                        }
                        AgentEvent::Fatal { message } => fatal = Some(message.clone()),
                        _ => {}
                    }
                    events(event);
                }
                Err(_) if !seen_event && noise < NOISE_LINES => {
                    noise += 1;
                    tracing::debug!("not an agent event, before the first one: {l}");
                }
                Err(e) => {
                    failure.get_or_insert(e);
                    stop = true;
                }
            },
            Ok(Msg::TooLong) => {
                failure.get_or_insert(format!(
                    "the node agent wrote a line longer than {MAX_LINE_BYTES} bytes"
                ));
                stop = true;
            }
            Ok(Msg::Eof) | Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {}
        }
        // A Ctrl-C after the agent said done changes nothing: the node is complete.
        if cancel.is_cancelled() && !cancelled && !done {
            cancelled = true;
            stop = true;
        }
        if stop {
            // Closing the agent's input is the stop signal; it then cleans up and says done.
            close = None;
            stop_by.get_or_insert(Instant::now() + STOP_GRACE);
        }
        let overdue = stop_by.is_some_and(|d| Instant::now() >= d);
        if !killed && (overdue || cancel.level() >= CancelLevel::Hard) {
            proc::kill(&mut child);
            killed = true;
        }
    }
    drop(close);
    let deadline = stop_by.unwrap_or_else(|| Instant::now() + STOP_GRACE);
    let status = match proc::wait_until(&mut child, deadline) {
        Some(s) => Some(s),
        None => {
            proc::kill(&mut child);
            killed = true;
            child.try_wait().ok().flatten()
        }
    };
    let code = status.and_then(|s| s.code());
    // Its last words, once the pipe ends (not longer than a moment: something it started
    // may hold the pipe open).
    let _ = tail_read.recv_timeout(Duration::from_secs(2));
    let stderr: Vec<String> = tail
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .cloned()
        .collect();
    let last = stderr
        .iter()
        .rev()
        .find(|l| !l.trim().is_empty())
        .map_or("no error output".to_owned(), |l| l.trim().to_owned());
    let connection_lost = endpoint.is_some() && code == Some(255);
    // Set only when the cancellation came before the agent's done.
    let message = if cancelled {
        Some(if killed {
            format!(
                "stopped: the run was cancelled, and the agent did not finish its cleanups \
                 within {} s, so its connection was killed",
                STOP_GRACE.as_secs()
            )
        } else {
            "stopped: the run was cancelled".to_owned()
        })
    } else if failure.is_some() {
        failure
    } else if done {
        None
    } else if let Some(m) = fatal {
        Some(format!("the node agent refused to run: {m}"))
    } else if stderr.iter().any(|l| l.contains("must have a tty")) {
        Some(
            "sudo wants a terminal (`Defaults requiretty`): ansible_become needs sudo without a \
             tty for the login user"
                .to_owned(),
        )
    } else if stderr
        .iter()
        .any(|l| l.contains("a password is required") || l.contains("a terminal is required"))
    {
        Some(
            "sudo asks for a password: ansible_become needs sudo without a password (NOPASSWD) \
             for the login user"
                .to_owned(),
        )
    } else if let (Some(endpoint), true) = (endpoint, connection_lost) {
        Some(format!(
            "the connection to {endpoint} was lost mid-run (ssh exit 255): {last}"
        ))
    } else {
        Some(match code {
            Some(c @ (126 | 127)) => format!(
                "the agent could not be started (exit {c}): {last}; a copied agent needs a /tmp \
                 that allows execution, else install nfvi-verify on the nodes and set fleet.agent"
            ),
            Some(c) => {
                format!("the node agent ended without saying it was done (exit {c}): {last}")
            }
            None => format!("the node agent's command was killed by a signal: {last}"),
        })
    };
    Ended {
        result: message.map_or(Ok(()), |m| Err(NodeError::new(m))),
        connection_lost,
    }
}

/// Sends each line of `out`, at most [`MAX_LINE_BYTES`] long; after a longer one, the rest
/// is read and dropped so the agent can still finish.
fn read_lines(mut out: impl BufRead, tx: &mpsc::Sender<Msg>) {
    loop {
        let mut buf = Vec::new();
        let limit = MAX_LINE_BYTES as u64 + 1;
        match out.by_ref().take(limit).read_until(b'\n', &mut buf) {
            Ok(0) | Err(_) => break,
            Ok(_) if buf.last() != Some(&b'\n') && buf.len() > MAX_LINE_BYTES => {
                let _ = tx.send(Msg::TooLong);
                let _ = std::io::copy(&mut out, &mut std::io::sink());
                break;
            }
            Ok(_) => {
                if buf.last() == Some(&b'\n') {
                    buf.pop();
                }
                if tx
                    .send(Msg::Line(String::from_utf8_lossy(&buf).into_owned()))
                    .is_err()
                {
                    let _ = std::io::copy(&mut out, &mut std::io::sink());
                    break;
                }
            }
        }
    }
    let _ = tx.send(Msg::Eof);
}

/// Keeps the last [`STDERR_LINES`] lines of `err` (each cut at 1,000 characters).
fn keep_tail(mut err: impl BufRead, tail: &Mutex<VecDeque<String>>) {
    loop {
        let mut buf = Vec::new();
        match err.by_ref().take(64 << 10).read_until(b'\n', &mut buf) {
            Ok(0) | Err(_) => return,
            Ok(_) => {
                let line = String::from_utf8_lossy(&buf);
                let line = nfvi_harness::truncate_chars(line.trim_end(), 1000);
                let mut tail = tail.lock().unwrap_or_else(|p| p.into_inner());
                if tail.len() == STDERR_LINES {
                    tail.pop_front();
                }
                tail.push_back(line);
            }
        }
    }
}

#[cfg(test)]
#[path = "agent_tests.rs"]
mod tests;
