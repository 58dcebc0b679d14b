//! Running external commands the way every check must: in their own process group, with a
//! deadline, with output read under a size cap, and killed (the whole group) on timeout,
//! cancellation or drop. A [`Launcher`] decides which thread forks the command, and so the
//! namespaces it starts in.

use std::io;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

use crate::cancel::{CancelLevel, CancelToken};
use crate::outcome::CommandRecord;
use crate::text::bytes_to_evidence;

/// The default cap on what is kept of each of stdout and stderr.
pub const DEFAULT_OUTPUT_CAP: usize = 1 << 20;

/// Starts commands from a thread of its choosing. A child begins life in the namespaces of
/// the thread that forked it, so a launcher whose thread has entered a network namespace
/// starts commands in that namespace, without `ip netns exec` in between. Everything else
/// (process group, deadline, output caps, kill on cancel) stays as for any command.
pub trait Launcher: Send + Sync + std::fmt::Debug {
    /// Runs `fork` (which starts the command) on the launcher's thread; resolves once it ran,
    /// or with why it could not (the thread could not enter its namespace).
    fn launch(&self, fork: Box<dyn FnOnce() + Send>) -> crate::BoxFuture<'static, io::Result<()>>;

    /// What the evidence shows in front of the command line (`[netns nfvrt-1-2]`).
    fn label(&self) -> String;
}

/// A command to run.
#[derive(Clone, Debug)]
pub struct CommandSpec {
    program: String,
    args: Vec<String>,
    env: Vec<(String, String)>,
    clear_env: bool,
    stdin: Option<Vec<u8>>,
    timeout: Duration,
    output_cap: usize,
    launcher: Option<Arc<dyn Launcher>>,
}

impl CommandSpec {
    /// A command with a 30 s deadline and a 1 MiB output cap.
    pub fn new(program: impl Into<String>) -> Self {
        Self {
            program: program.into(),
            args: Vec::new(),
            env: Vec::new(),
            clear_env: false,
            stdin: None,
            timeout: Duration::from_secs(30),
            output_cap: DEFAULT_OUTPUT_CAP,
            launcher: None,
        }
    }

    /// Appends arguments.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Sets an environment variable.
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Starts from an empty environment (plus what [`CommandSpec::env`] sets), so nothing of
    /// the harness's own environment leaks into the command.
    pub fn env_clear(mut self) -> Self {
        self.clear_env = true;
        self
    }

    /// Feeds bytes on stdin.
    pub fn stdin(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.stdin = Some(bytes.into());
        self
    }

    /// Sets the deadline.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets the cap on kept output per stream.
    pub fn output_cap(mut self, bytes: usize) -> Self {
        self.output_cap = bytes;
        self
    }

    /// Starts the command through `launcher` (in its namespace) instead of from the calling
    /// thread.
    pub fn launcher(mut self, launcher: Arc<dyn Launcher>) -> Self {
        self.launcher = Some(launcher);
        self
    }

    /// The command line, quoted for reading, after the launcher's label if there is one.
    pub fn display(&self) -> String {
        let line = self.command_line();
        match &self.launcher {
            Some(l) => format!("{} {line}", l.label()),
            None => line,
        }
    }

    fn command_line(&self) -> String {
        std::iter::once(&self.program)
            .chain(&self.args)
            .map(|a| {
                if !a.is_empty()
                    && a.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,@%+".contains(&b))
                {
                    a.clone()
                } else {
                    format!("'{}'", a.replace('\'', r"'\''"))
                }
            })
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// What a finished command produced.
#[derive(Clone, Debug)]
pub struct CommandOutput {
    /// The exit code; `None` if a signal ended it.
    pub exit_code: Option<i32>,
    /// Standard output, up to the cap.
    pub stdout: Vec<u8>,
    /// Standard error, up to the cap.
    pub stderr: Vec<u8>,
    /// Bytes of output beyond the cap that were read and dropped (both streams).
    pub dropped_bytes: u64,
    /// The deadline passed and the group was killed.
    pub timed_out: bool,
    /// Cancellation stopped the command.
    pub cancelled: bool,
    /// Wall-clock time.
    pub duration: Duration,
}

impl CommandOutput {
    /// Exit code 0 and not stopped.
    pub fn success(&self) -> bool {
        self.exit_code == Some(0) && !self.timed_out && !self.cancelled
    }

    /// Stdout as evidence text.
    pub fn stdout_text(&self) -> String {
        bytes_to_evidence(&self.stdout)
    }

    /// Stderr as evidence text.
    pub fn stderr_text(&self) -> String {
        bytes_to_evidence(&self.stderr)
    }

    /// The evidence record of this run of `spec`.
    pub fn record(&self, spec: &CommandSpec) -> CommandRecord {
        let mut stderr = self.stderr_text();
        if self.timed_out {
            stderr.push_str(&format!(
                "\n[killed: deadline of {:?} passed]",
                spec.timeout
            ));
        }
        if self.cancelled {
            stderr.push_str("\n[killed: run cancelled]");
        }
        if self.dropped_bytes > 0 {
            stderr.push_str(&format!(
                "\n[{} bytes of output beyond the cap dropped]",
                self.dropped_bytes
            ));
        }
        CommandRecord {
            command: spec.display(),
            exit_code: self.exit_code,
            stdout: self.stdout_text(),
            stderr,
            duration_secs: self.duration.as_secs_f64(),
        }
    }
}

/// A command that could not be started.
#[derive(Debug, thiserror::Error)]
#[error("failed to start `{program}`")]
pub struct CommandError {
    /// The program.
    pub program: String,
    /// The cause.
    #[source]
    pub source: io::Error,
}

/// Kills the process group when dropped, so nothing a command started outlives it, even if
/// the future running it is dropped on timeout or cancellation.
struct GroupGuard(Option<Pid>);

impl GroupGuard {
    fn signal(&self, signal: Signal) {
        if let Some(pgid) = self.0 {
            // ESRCH means the group is already gone, which is the goal.
            let _ = killpg(pgid, signal);
        }
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        self.signal(Signal::SIGKILL);
    }
}

async fn read_capped(mut stream: impl AsyncRead + Unpin, cap: usize) -> (Vec<u8>, u64) {
    let mut kept = Vec::new();
    let mut dropped = 0u64;
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let room = cap.saturating_sub(kept.len());
                let take = room.min(n);
                kept.extend_from_slice(&buf[..take]);
                dropped += (n - take) as u64;
            }
        }
    }
    (kept, dropped)
}

/// Forks `cmd` on the launcher's thread. The fork registers the child with this runtime (for
/// reaping), so the thread enters the runtime's context first.
async fn launch(
    launcher: &dyn Launcher,
    mut cmd: tokio::process::Command,
) -> io::Result<tokio::process::Child> {
    let runtime = tokio::runtime::Handle::current();
    let (tx, rx) = tokio::sync::oneshot::channel();
    launcher
        .launch(Box::new(move || {
            let _entered = runtime.enter();
            let _ = tx.send(cmd.spawn());
        }))
        .await?;
    rx.await
        .map_err(|_| io::Error::other("the launcher dropped the command unstarted"))?
}

/// Runs `spec` to completion, deadline or cancellation. On a graceful cancel the group gets
/// SIGTERM, then SIGKILL after `grace`; on a hard cancel or the deadline, SIGKILL at once.
pub async fn run(
    spec: &CommandSpec,
    cancel: &CancelToken,
    grace: Duration,
) -> Result<CommandOutput, CommandError> {
    let started = Instant::now();
    let mut cmd = tokio::process::Command::new(&spec.program);
    if spec.clear_env {
        cmd.env_clear();
    }
    cmd.args(&spec.args)
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .stdin(if spec.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let spawned = match &spec.launcher {
        None => cmd.spawn(),
        Some(launcher) => launch(launcher.as_ref(), cmd).await,
    };
    let mut child = spawned.map_err(|source| CommandError {
        program: spec.program.clone(),
        source,
    })?;
    let guard = GroupGuard(child.id().map(|id| Pid::from_raw(id as i32)));

    if let (Some(bytes), Some(mut stdin)) = (spec.stdin.clone(), child.stdin.take()) {
        tokio::spawn(async move {
            // A command that exits without reading its input is not an error here.
            let _ = stdin.write_all(&bytes).await;
        });
    }
    let stdout = child.stdout.take().expect("stdout is piped");
    let stderr = child.stderr.take().expect("stderr is piped");
    let collect = async {
        tokio::join!(
            read_capped(stdout, spec.output_cap),
            read_capped(stderr, spec.output_cap),
            child.wait()
        )
    };
    tokio::pin!(collect);
    let deadline = tokio::time::sleep(spec.timeout);
    tokio::pin!(deadline);
    let grace_end = tokio::time::sleep(Duration::MAX / 4);
    tokio::pin!(grace_end);
    let (mut timed_out, mut cancelled, mut killed) = (false, false, false);
    let ((out, out_dropped), (err, err_dropped), status) = loop {
        tokio::select! {
            res = &mut collect => break res,
            () = &mut deadline, if !timed_out && !killed => {
                guard.signal(Signal::SIGKILL);
                timed_out = true;
                killed = true;
            }
            () = cancel.cancelled(), if !cancelled => {
                guard.signal(Signal::SIGTERM);
                cancelled = true;
                grace_end.as_mut().reset(tokio::time::Instant::now() + grace);
            }
            () = &mut grace_end, if cancelled && !killed => {
                guard.signal(Signal::SIGKILL);
                killed = true;
            }
            () = cancel.reached(CancelLevel::Hard), if !killed => {
                guard.signal(Signal::SIGKILL);
                cancelled = true;
                killed = true;
            }
        }
    };
    drop(guard);
    Ok(CommandOutput {
        exit_code: status.ok().and_then(|s| s.code()),
        stdout: out,
        stderr: err,
        dropped_bytes: out_dropped + err_dropped,
        timed_out,
        cancelled,
        duration: started.elapsed(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cancel::{CancelReason, CancelSource};

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn output_and_exit_code_are_captured() {
        let out = rt()
            .block_on(run(
                &CommandSpec::new("sh").args(["-c", "printf 'a\\377b'; echo err >&2; exit 3"]),
                &CancelToken::never(),
                Duration::from_secs(1),
            ))
            .unwrap();
        assert_eq!(out.exit_code, Some(3));
        assert_eq!(out.stdout_text(), "a\\xffb");
        assert_eq!(out.stderr_text(), "err\n");
        assert!(!out.success());
    }

    #[test]
    fn a_hanging_command_and_its_children_are_killed_at_the_deadline() {
        let start = Instant::now();
        let out = rt()
            .block_on(run(
                // The background sleep holds the pipe open: only a group kill ends it.
                &CommandSpec::new("sh")
                    .args(["-c", "sleep 30 & sleep 30"])
                    .timeout(Duration::from_millis(200)),
                &CancelToken::never(),
                Duration::from_secs(1),
            ))
            .unwrap();
        assert!(out.timed_out);
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{:?}",
            start.elapsed()
        );
        assert!(
            out.record(&CommandSpec::new("sh"))
                .stderr
                .contains("deadline")
        );
    }

    #[test]
    fn output_beyond_the_cap_is_dropped_not_kept() {
        let out = rt()
            .block_on(run(
                &CommandSpec::new("sh")
                    .args(["-c", "head -c 3000000 /dev/zero"])
                    .output_cap(1000),
                &CancelToken::never(),
                Duration::from_secs(1),
            ))
            .unwrap();
        assert_eq!(out.stdout.len(), 1000);
        assert_eq!(out.dropped_bytes, 3_000_000 - 1000);
    }

    #[test]
    fn graceful_cancel_sends_sigterm_first() {
        let (source, token) = CancelSource::new();
        let out = rt().block_on(async {
            let spec = CommandSpec::new("sh").args([
                "-c",
                "trap 'echo got-term; exit 7' TERM; while :; do sleep 0.05; done",
            ]);
            let handle = tokio::spawn({
                let token = token.clone();
                async move { run(&spec, &token, Duration::from_secs(5)).await }
            });
            tokio::time::sleep(Duration::from_millis(300)).await;
            source.escalate(CancelReason::Interrupt);
            handle.await.unwrap().unwrap()
        });
        assert!(out.cancelled);
        assert_eq!(out.exit_code, Some(7));
        assert_eq!(out.stdout_text(), "got-term\n");
    }

    #[test]
    fn a_missing_program_is_an_error_naming_it() {
        let err = rt()
            .block_on(run(
                &CommandSpec::new("/nonexistent/nfvi-tool"),
                &CancelToken::never(),
                Duration::from_secs(1),
            ))
            .unwrap_err();
        assert_eq!(err.to_string(), "failed to start `/nonexistent/nfvi-tool`");
    }

    /// Runs the fork on a thread of its own, as a namespace launcher does.
    #[derive(Debug)]
    struct OwnThread;

    impl Launcher for OwnThread {
        fn launch(
            &self,
            fork: Box<dyn FnOnce() + Send>,
        ) -> crate::BoxFuture<'static, io::Result<()>> {
            Box::pin(async move {
                let (tx, rx) = tokio::sync::oneshot::channel();
                std::thread::spawn(move || {
                    fork();
                    let _ = tx.send(());
                });
                rx.await.map_err(io::Error::other)
            })
        }

        fn label(&self) -> String {
            "[own thread]".into()
        }
    }

    #[test]
    fn a_launched_command_keeps_deadline_and_output() {
        let spec = CommandSpec::new("sh")
            .args(["-c", "echo $$; sleep 30"])
            .timeout(Duration::from_millis(300))
            .launcher(Arc::new(OwnThread));
        assert_eq!(spec.display(), "[own thread] sh -c 'echo $$; sleep 30'");
        let out = rt()
            .block_on(run(&spec, &CancelToken::never(), Duration::from_secs(1)))
            .unwrap();
        assert!(out.timed_out);
        assert!(
            out.stdout_text().trim().parse::<u32>().is_ok(),
            "{:?}",
            out.stdout_text()
        );
    }

    #[test]
    fn display_quotes_what_needs_quoting() {
        let spec = CommandSpec::new("ip").args(["-j", "addr", "it's here"]);
        assert_eq!(spec.display(), r"ip -j addr 'it'\''s here'");
    }
}
