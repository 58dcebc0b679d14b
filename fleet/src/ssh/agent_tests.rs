//! The event stream against stand-in agents (`sh -c` scripts), no ssh needed.

use nfvi_harness::cancel::{CancelReason, CancelSource};
use nfvi_harness::fleet::{NodeSpec, PROTOCOL_VERSION};

use super::*;

fn request() -> AgentRequest {
    AgentRequest {
        protocol: PROTOCOL_VERSION,
        version: "nfvi-verify 0.1.0".into(),
        node: NodeSpec {
            name: "compute01".into(),
            roles: vec!["compute".into()],
            address: None,
        },
        suite: "host".into(),
        filters: vec![],
        skips: vec![],
        checks: vec!["host.kernel.version".into()],
        strict: false,
        jobs: 1,
        timeout_secs: None,
        target_toml: "name = \"t\"\n".into(),
    }
}

const HELLO: &str = r#"{"event":"hello","version":"nfvi-verify 0.1.0"}"#;
const DONE: &str = r#"{"event":"done","cancelled":false}"#;

fn agent(script: &str) -> Command {
    proc::command(&["sh".to_owned(), "-c".to_owned(), script.to_owned()])
}

fn run_with(
    script: &str,
    cancel: &CancelToken,
    endpoint: Option<&str>,
) -> (Ended, Vec<AgentEvent>) {
    let mut seen = Vec::new();
    let ended = stream(
        agent(script),
        None,
        &request(),
        cancel,
        &mut |e| seen.push(e),
        endpoint,
    );
    (ended, seen)
}

fn run(script: &str) -> (Result<(), NodeError>, Vec<AgentEvent>) {
    let (ended, seen) = run_with(script, &CancelToken::never(), None);
    (ended.result, seen)
}

#[test]
fn a_well_behaved_agent_gets_the_request_and_its_events_are_handed_on() {
    // The agent echoes the node of the request back in its hello, then waits for the end
    // of its input after done (as the real agent does not need to, but may).
    let script = format!(
        r#"read -r req
case "$req" in *'"name":"compute01"'*) ;; *) echo "bad request: $req" >&2; exit 9;; esac
echo 'login banner chatter is not an event'
echo '{HELLO}'
echo '{DONE}'
cat >/dev/null
exit 0"#
    );
    let (result, seen) = run(&format!("echo 'motd line'\n{script}"));
    result.unwrap();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert!(matches!(seen[1], AgentEvent::Done { .. }));
}

#[test]
fn an_agent_that_ends_without_done_is_an_error_with_its_last_words() {
    let (result, _) = run(&format!(
        "read -r req; echo '{HELLO}'; echo 'first' >&2; echo 'disk full' >&2; exit 3"
    ));
    assert_eq!(
        result.unwrap_err().message,
        "the node agent ended without saying it was done (exit 3): disk full"
    );
    let (result, _) = run("exit 127");
    assert!(
        result
            .unwrap_err()
            .message
            .starts_with("the agent could not be started (exit 127)"),
    );
    let (result, _) =
        run(r#"read -r req; echo '{"event":"fatal","message":"protocol 2"}'; exit 1"#);
    assert_eq!(
        result.unwrap_err().message,
        "the node agent refused to run: protocol 2"
    );
    let (result, _) = run("echo 'sudo: a password is required' >&2; exit 1");
    assert!(
        result
            .unwrap_err()
            .message
            .starts_with("sudo asks for a password")
    );
}

#[test]
fn a_lost_connection_is_named() {
    let (ended, _) = run_with(
        &format!(
            "read -r req; echo '{HELLO}'; echo 'Connection to 198.19.10.12 closed by remote host.' >&2; exit 255"
        ),
        &CancelToken::never(),
        Some("198.19.10.12:22"),
    );
    assert!(ended.connection_lost);
    assert_eq!(
        ended.result.unwrap_err().message,
        "the connection to 198.19.10.12:22 was lost mid-run (ssh exit 255): Connection to \
         198.19.10.12 closed by remote host."
    );
}

#[test]
fn garbage_after_the_first_event_and_overlong_lines_are_errors() {
    let (result, _) = run(&format!(
        "read -r req; echo '{HELLO}'; echo 'not json'; cat >/dev/null; echo '{DONE}'"
    ));
    let e = result.unwrap_err().message;
    assert!(
        e.starts_with("the node agent wrote a line that is not an agent event"),
        "{e}"
    );
    let (result, _) = run(&format!(
        "read -r req; echo '{HELLO}'; head -c {} /dev/zero | tr '\\0' a; echo; cat >/dev/null; echo '{DONE}'",
        MAX_LINE_BYTES + 10
    ));
    assert_eq!(
        result.unwrap_err().message,
        format!("the node agent wrote a line longer than {MAX_LINE_BYTES} bytes")
    );
}

#[test]
fn cancelling_closes_the_input_and_the_agent_cleans_up() {
    let (source, token) = CancelSource::new();
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("cleaned");
    // The agent runs until its input ends, then "cleans up" and says done.
    let script = format!(
        "read -r req; echo '{HELLO}'; cat >/dev/null; touch '{}'; echo '{{\"event\":\"done\",\"cancelled\":true}}'",
        marker.display()
    );
    let canceller = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        source.escalate(CancelReason::Interrupt);
        source
    });
    let started = Instant::now();
    let (ended, seen) = run_with(&script, &token, None);
    let _source = canceller.join().unwrap();
    assert_eq!(
        ended.result.unwrap_err().message,
        "stopped: the run was cancelled"
    );
    assert!(marker.exists(), "the agent ran its cleanup");
    assert!(matches!(
        seen.last(),
        Some(AgentEvent::Done {
            cancelled: true,
            ..
        })
    ));
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[test]
fn a_second_interrupt_kills_an_agent_that_does_not_stop() {
    let (source, token) = CancelSource::new();
    let script = format!("read -r req; echo '{HELLO}'; exec 0<&-; sleep 60 & sleep 60");
    let canceller = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        source.escalate(CancelReason::Interrupt);
        std::thread::sleep(Duration::from_millis(300));
        source.escalate(CancelReason::Interrupt);
        source
    });
    let started = Instant::now();
    let (ended, _) = run_with(&script, &token, None);
    let _source = canceller.join().unwrap();
    let e = ended.result.unwrap_err().message;
    assert!(
        e.starts_with("stopped: the run was cancelled, and the agent did not finish"),
        "{e}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "killed, not waited for"
    );
}

#[test]
fn installed_agents_must_be_this_version() {
    let out = |code: i32, stdout: &str| proc::Output {
        status: std::os::unix::process::ExitStatusExt::from_raw(code << 8),
        stdout: stdout.as_bytes().to_vec(),
        stderr: "sh: 1: /opt/nv: not found\n".into(),
    };
    check_version(
        "nfvi-verify 0.1.0",
        "/opt/nv",
        "n1:22",
        &out(0, "nfvi-verify 0.1.0\n"),
    )
    .unwrap();
    let e = check_version(
        "nfvi-verify 0.1.0",
        "/opt/nv",
        "n1:22",
        &out(0, "nfvi-verify 0.0.9\n"),
    )
    .unwrap_err();
    assert_eq!(
        e.message,
        "the agent at /opt/nv on n1:22 is `nfvi-verify 0.0.9`, this nfvi-verify is \
         `nfvi-verify 0.1.0`; install the same version on the nodes, or set fleet.agent = \"copy\""
    );
    let e = check_version("nfvi-verify 0.1.0", "/opt/nv", "n1:22", &out(127, "")).unwrap_err();
    assert!(
        e.message
            .starts_with("there is no agent at /opt/nv on n1:22"),
        "{e}"
    );
}
