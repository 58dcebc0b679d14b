//! `nfvi-verify node`: the node agent of a run over a fleet. The jump host starts it on each
//! node (over SSH, or as a DaemonSet pod) and it runs the node-level checks there, streaming
//! results back as JSON lines (the protocol is in `nfvi_harness::fleet`).
//!
//! Standard output belongs to the protocol alone: the agent keeps a private copy of it and
//! points file descriptor 1 at standard error, so nothing a check or a child process prints
//! can corrupt the stream.

use std::collections::HashSet;
use std::io::{BufRead, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use nfvi_harness::cancel::{CancelReason, CancelSource};
use nfvi_harness::fleet::{AgentCheck, AgentEvent, AgentRequest, PROTOCOL_VERSION};
use nfvi_harness::plan::PlanOptions;
use nfvi_harness::{Capabilities, Reporter, RunEvent, RunnerBuilder, Session, Target, exit_code};

use crate::cli::NodeArgs;
use crate::error::CliError;

type CmdResult = Result<i32, CliError>;

/// The protocol's output: the original standard output, one event per line, flushed.
struct Wire(Mutex<std::fs::File>);

impl Wire {
    /// Takes standard output for the protocol and sends fd 1 to standard error, or, when
    /// `private` (a DaemonSet pod, whose log merges both streams), fds 1 and 2 to /dev/null:
    /// there nothing but the protocol may reach the log, or a line printed by anything else
    /// could pass for a result.
    fn take_stdout(private: bool) -> std::io::Result<Self> {
        let stdout = std::io::stdout();
        let _ = stdout.lock().flush();
        let copy: OwnedFd = stdout.as_fd().try_clone_to_owned()?;
        if private {
            let null = std::fs::OpenOptions::new().write(true).open("/dev/null")?;
            nix::unistd::dup2_stdout(null.as_fd())?;
            nix::unistd::dup2_stderr(null.as_fd())?;
        } else {
            nix::unistd::dup2_stdout(std::io::stderr().as_fd())?;
        }
        Ok(Self(Mutex::new(std::fs::File::from(copy))))
    }

    fn send(&self, event: &AgentEvent) {
        let mut out = self.0.lock().unwrap_or_else(|p| p.into_inner());
        // The jump host gone: nothing to tell; the closed input stops the run.
        let _ = out.write_all(event.to_line().as_bytes());
        let _ = out.flush();
    }
}

struct Stream<'a>(&'a Wire);

impl Reporter for Stream<'_> {
    fn report(&mut self, event: &RunEvent<'_>) {
        match event {
            RunEvent::CheckStarted { id, .. } => self.0.send(&AgentEvent::Started {
                id: (*id).to_owned(),
            }),
            RunEvent::CheckFinished { id, run } => {
                self.0
                    .send(&AgentEvent::Finished(Box::new(AgentCheck::from_run(
                        id, run,
                    ))));
            }
            _ => {}
        }
    }
}

/// Reads the request: the first line of standard input, or a file (the DaemonSet mounts it).
fn read_request(args: &NodeArgs) -> Result<AgentRequest, String> {
    let text = match &args.request {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read the request file `{}`: {e}", path.display()))?,
        None => {
            let mut line = String::new();
            std::io::stdin()
                .lock()
                .take(nfvi_harness::fleet::MAX_LINE_BYTES as u64)
                .read_line(&mut line)
                .map_err(|e| format!("cannot read the request on standard input: {e}"))?;
            line
        }
    };
    let request: AgentRequest = serde_json::from_str(text.trim()).map_err(|e| {
        format!("the request is not an nfvi-verify agent request ({e}); this command is started by `nfvi-verify run` on the jump host")
    })?;
    if request.protocol != PROTOCOL_VERSION {
        return Err(format!(
            "agent protocol {} requested; this agent speaks {PROTOCOL_VERSION}",
            request.protocol
        ));
    }
    let mine = env!("CARGO_PKG_VERSION");
    if request.version != mine {
        return Err(format!(
            "the jump host runs nfvi-verify {} and this node's agent is {mine}; use the same version on both",
            request.version
        ));
    }
    Ok(request)
}

/// Stops the run when standard input ends: the jump host closed it, was interrupted, or
/// lost the connection.
fn stop_on_end_of_input(source: CancelSource) {
    std::thread::Builder::new()
        .name("nfvi-agent-stdin".into())
        .spawn(move || {
            // Detached (nothing joins it): a panic is caught here, said on standard error
            // (which the jump host quotes) and stops the run, which could no longer be stopped.
            let watched = nfvi_harness::panics::catch(|| {
                let mut sink = [0u8; 512];
                let mut stdin = std::io::stdin().lock();
                loop {
                    match stdin.read(&mut sink) {
                        Ok(0) | Err(_) => break,
                        Ok(_) => {}
                    }
                }
            });
            match watched {
                Ok(()) => source.escalate(CancelReason::Interrupt),
                Err(p) => {
                    let _ = writeln!(
                        std::io::stderr(),
                        "nfvi-verify: the agent's input watcher panicked {p}; stopping the run"
                    );
                    source.escalate(CancelReason::Panic);
                }
            }
        })
        .expect("a thread starts");
}

pub fn node(args: &NodeArgs) -> CmdResult {
    let wire = Wire::take_stdout(args.request.is_some())
        .map_err(|e| CliError::Incomplete(format!("cannot set up the agent's output: {e}")))?;
    let fatal = |message: String| {
        wire.send(&AgentEvent::Fatal {
            message: message.clone(),
        });
        Err(CliError::bad_input(message))
    };
    let mut request = match read_request(args) {
        Ok(r) => r,
        Err(e) => return fatal(e),
    };
    // A DaemonSet's pods share one request: each learns its node from the downward API.
    if request.node.name.is_empty() {
        request.node.name = std::env::var("NFVI_NODE_NAME")
            .ok()
            .filter(|n| !n.is_empty())
            .or_else(|| {
                std::fs::read_to_string("/proc/sys/kernel/hostname")
                    .ok()
                    .map(|h| h.trim().to_owned())
            })
            .unwrap_or_default();
    }
    let areas = nfvi_verify::areas();
    let mut target = match Target::parse(
        Path::new("<target from the jump host>"),
        &request.target_toml,
        &areas,
        &[],
    ) {
        Ok(t) => t,
        Err(e) => return fatal(crate::chain(&e)),
    };
    target.node = Some(request.node.clone());
    let model = match nfvi_reference_model::load_embedded() {
        Ok(m) => m,
        Err(e) => return fatal(crate::chain(&e)),
    };
    let registry = match nfvi_harness::Registry::new(areas.checks(), &model) {
        Ok(r) => r,
        Err(e) => return fatal(crate::chain(&e)),
    };
    let caps = Capabilities::detect(&target, &areas);
    let options = PlanOptions {
        suite: request.suite.clone(),
        filters: request.filters.clone(),
        skips: request.skips.clone(),
        only: Some(request.checks.iter().cloned().collect::<HashSet<_>>()),
        strict: request.strict,
    };
    let plan = match nfvi_harness::plan::build(&model, &registry, &target, &caps, &options) {
        Ok(p) => p,
        Err(e) => return fatal(crate::chain(&e)),
    };
    wire.send(&AgentEvent::Hello {
        version: env!("CARGO_PKG_VERSION").to_owned(),
    });

    let session = Session::open(areas, target, request.jobs)
        .map_err(|e| CliError::Incomplete(format!("cannot start the run's runtime: {e}")))?;
    wire.send(&AgentEvent::Inventory {
        inventory: Box::new(session.inventory()),
    });
    let (source, _) = CancelSource::new();
    if args.request.is_none() {
        stop_on_end_of_input(source.clone());
    }
    let options = RunnerBuilder::default()
        .jobs(request.jobs)
        .timeout_override(request.timeout_secs.map(Duration::from_secs))
        .cancel_source(source);
    let output = session.execute(&plan, options, &mut Stream(&wire));
    let warnings = session
        .close()
        .into_iter()
        .filter_map(|r| r.error.map(|e| format!("{}: {e}", r.action)))
        .collect();
    wire.send(&AgentEvent::Done {
        cancelled: output.cancel_reason.is_some(),
        warnings,
    });
    if args.linger && output.cancel_reason.is_none() {
        linger();
    }
    Ok(exit_code::CONFORMANT)
}

/// Waits for SIGTERM or SIGINT (the pod being deleted).
fn linger() {
    use nix::sys::signal::{SigSet, Signal};
    let mut set = SigSet::empty();
    set.add(Signal::SIGTERM);
    set.add(Signal::SIGINT);
    // Blocked first, so a signal arriving before the wait is not lost; the runtime's own
    // handlers are gone with the session.
    if set.thread_block().is_ok() {
        let _ = set.wait();
    }
}
