//! Commands of their own on the nodes ([`Transport::spawn_agent`]): a responder or a probe
//! that a check of the whole NFVI starts after the nodes' agents have run.
//!
//! The node's master connection was closed when its agent finished, so a new one is opened
//! (strict host-key checking and every connection option as before) and kept until the
//! transport closes. The agent is put on the node as for the node agent (a fresh private
//! directory and a SHA-256-verified copy, or the installed one of this version), and the
//! command runs under [`argv::spawn_command`]'s wrapper: end of its input stops it, and
//! the copied agent's directory is removed when it ends.
//!
//! [`Transport::spawn_agent`]: nfvi_harness::fleet::Transport::spawn_agent

use std::process::{Child, Stdio};

use nfvi_harness::cancel::CancelToken;
use nfvi_harness::fleet::NodeError;

use super::{SshTransport, agent, argv, proc};

/// Starts `nfvi-verify ARGS` on node `n`, its input, output and error piped.
pub(super) fn spawn(
    t: &SshTransport,
    n: usize,
    args: &[String],
    cancel: &CancelToken,
) -> Result<Child, NodeError> {
    let conn = &t.conns[n];
    if conn.local {
        let exe = agent::local_agent(t, cancel)?;
        let root = nix::unistd::geteuid().is_root();
        let script = argv::spawn_command(
            &argv::local_become_prefix(conn, root),
            &exe.display().to_string(),
            args,
            None,
        );
        return piped(&["sh".to_owned(), "-c".to_owned(), script]).map_err(|e| {
            NodeError::new(format!(
                "cannot start `nfvi-verify {}` on this machine: {e}",
                args.join(" ")
            ))
        });
    }
    t.ensure_master(n, cancel)?;
    let (exe, dir) = agent::install(t, n, cancel)?;
    let script = argv::spawn_command(&argv::become_prefix(conn), &exe, args, dir.as_deref());
    let ssh = argv::remote(&t.opts.program, conn, &t.opts, &t.socket(n), &script);
    piped(&ssh).map_err(|e| {
        if let Some(dir) = &dir {
            agent::remove_dir(t, n, dir);
        }
        NodeError::new(format!(
            "cannot start `{}` to run nfvi-verify {} on {}: {e}",
            t.opts.program,
            args.join(" "),
            conn.endpoint()
        ))
    })
}

/// Starts `argv` in a process group of its own, every standard stream piped.
fn piped(argv: &[String]) -> std::io::Result<Child> {
    proc::command(argv)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead, BufReader, Read};
    use std::time::{Duration, Instant};

    use super::*;

    /// The wrapper run by `sh` here, as sshd runs it on a node: `sh -c PROGRAM ARGS`
    /// stands in for the agent.
    fn wrapped(program: &str, dir: Option<&str>) -> Child {
        let args = ["-c".to_owned(), program.to_owned()];
        piped(&[
            "sh".to_owned(),
            "-c".to_owned(),
            argv::spawn_command("", "sh", &args, dir),
        ])
        .unwrap()
    }

    fn alive(pid: i32) -> bool {
        // A zombie is gone for this purpose; the wrapper reaps its child anyway.
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .is_ok_and(|s| !s.rsplit(')').next().unwrap_or("").trim().starts_with('Z'))
    }

    fn wait(child: &mut Child, within: Duration) -> Option<std::process::ExitStatus> {
        proc::wait_until(child, Instant::now() + within)
    }

    #[test]
    fn closing_the_input_stops_the_command_and_removes_its_directory() {
        let scratch = tempfile::tempdir().unwrap();
        let dir = scratch.path().join("agent");
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("nfvi-verify"), "stand-in").unwrap();
        // The program says its PID, then runs until it is signalled (`exec`: the PID the
        // wrapper holds is the program's own).
        let mut child = wrapped("echo $$; exec sleep 60", Some(&dir.display().to_string()));
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        let pid: i32 = line.trim().parse().unwrap();
        assert!(alive(pid), "the program runs while the input is open");
        std::thread::sleep(Duration::from_millis(300));
        assert!(alive(pid), "and keeps running");
        drop(child.stdin.take());
        let status = wait(&mut child, Duration::from_secs(10)).expect("the wrapper ended");
        assert_eq!(status.code(), Some(143), "the program got SIGTERM");
        assert!(!alive(pid), "the program is gone");
        assert!(!dir.exists(), "the agent's directory is removed");
    }

    #[test]
    fn a_command_that_ends_by_itself_ends_the_wrapper_with_its_code_and_output() {
        let mut child = wrapped("echo hello; echo oops >&2; exit 3", None);
        let status = wait(&mut child, Duration::from_secs(10))
            .expect("the wrapper ended although its input is still open");
        assert_eq!(status.code(), Some(3));
        let mut text = String::new();
        child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(text, "hello\n");
        let mut err = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        assert_eq!(err, "oops\n");
        drop(child.stdin.take());
    }
}
