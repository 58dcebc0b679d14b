//! The Docker area against the local lab (`nfvi-verify lab up`, which `cargo xtask ci` runs
//! before the tests), against Podman's Docker-compatible service when env
//! `NFVI_PODMAN_SOCKET` names its socket, and what happens without a daemon or when the probe
//! cannot observe.

mod common;

use std::process::Command;

use common::{
    assert_contains, json_stdout, nfvi, require, require_lab_docker, temp_file, text, write_file,
};

/// Probe containers and networks of run `pid` (their owner label) that the engine at
/// `socket` still holds; other tests' runs at the same time are not counted.
fn probe_leftovers_on(socket: &std::path::Path, pid: &str) -> (String, String) {
    let list = |args: &[&str]| {
        String::from_utf8_lossy(
            &Command::new("docker")
                .env("DOCKER_HOST", format!("unix://{}", socket.display()))
                .args(args)
                .output()
                .unwrap()
                .stdout,
        )
        .trim()
        .to_owned()
    };
    let owner = format!("label=io.nfvi-verify.owner={pid}");
    (
        list(&[
            "ps",
            "-aq",
            "--filter",
            "label=io.nfvi-verify.probe",
            "--filter",
            &owner,
        ]),
        list(&[
            "network",
            "ls",
            "-q",
            "--filter",
            "label=io.nfvi-verify.probe",
            "--filter",
            &owner,
        ]),
    )
}

/// The PID of the run behind `r`, read from its macvlan checks' parent veth (`nfvdk<pid>-<c>`).
fn run_pid(r: &serde_json::Value) -> String {
    r["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|c| c["evidence"]["properties"]["parent"].as_str())
        .and_then(|p| p.strip_prefix("nfvdk")?.split('-').next())
        .unwrap_or_else(|| panic!("no macvlan parent in {}", r["checks"]))
        .to_owned()
}

/// Host objects the macvlan checks of run `pid` created (`nfvdk<pid>-*` veths, `nfv-<pid>-*-gw`
/// namespaces) that are still there; other tests' runs at the same time are not counted.
fn host_leftovers(pid: &str) -> Vec<String> {
    let out = |args: &[&str]| {
        String::from_utf8_lossy(&Command::new("ip").args(args).output().unwrap().stdout)
            .into_owned()
    };
    let mut left: Vec<String> = out(&["-o", "link"])
        .lines()
        .filter_map(|l| l.split(": ").nth(1))
        .filter(|n| n.starts_with(&format!("nfvdk{pid}-")))
        .map(str::to_owned)
        .collect();
    left.extend(
        out(&["netns", "list"])
            .lines()
            .filter_map(|l| l.split_whitespace().next())
            .filter(|n| n.starts_with(&format!("nfv-{pid}-")) && n.ends_with("-gw"))
            .map(str::to_owned),
    );
    left
}

/// The Podman service named by `NFVI_PODMAN_SOCKET`: `None` (skipped, saying why) when the
/// variable is unset; a failure under CI when it is set but does not answer.
fn podman_socket() -> Option<std::path::PathBuf> {
    let Some(socket) = std::env::var_os("NFVI_PODMAN_SOCKET") else {
        eprintln!(
            "SKIPPED: NFVI_PODMAN_SOCKET is not set (point it at a `podman system service` socket)"
        );
        return None;
    };
    let socket = std::path::PathBuf::from(socket);
    let answers = Command::new("docker")
        .env("DOCKER_HOST", format!("unix://{}", socket.display()))
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success());
    if answers {
        return Some(socket);
    }
    assert!(
        std::env::var("CI").map_or(true, |v| v != "true"),
        "NFVI_PODMAN_SOCKET={} is set but the socket does not answer",
        socket.display()
    );
    eprintln!(
        "SKIPPED: NFVI_PODMAN_SOCKET={} does not answer",
        socket.display()
    );
    None
}

/// The lab's engine is dockerd: CI runs this file a second time on `lab up --engine podman`
/// (`NFVI_LAB_ENGINE=podman`), where the tests about dockerd itself are skipped, saying so, and
/// the Podman tests (`NFVI_PODMAN_SOCKET`) verify the suite against the same socket.
fn require_lab_dockerd() -> bool {
    if std::env::var("NFVI_LAB_ENGINE").as_deref() == Ok("podman") {
        eprintln!(
            "SKIPPED: the lab runs Podman (NFVI_LAB_ENGINE=podman); this test is about dockerd"
        );
        return false;
    }
    require_lab_docker()
}

#[test]
fn the_docker_suite_passes_against_the_lab_and_leaves_nothing() {
    if !require_lab_dockerd() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    nfvi()
        .args(["run", "--suite", "docker", "--out"])
        .arg(&out)
        .assert()
        .code(0);
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    let checks = r["checks"].as_array().unwrap();
    assert_eq!(checks.len(), 9);
    for c in checks {
        assert_eq!(c["outcome"], "passed", "{}: {}", c["id"], c["message"]);
    }
    for c in checks {
        let engine = c["evidence"]["properties"]["engine"].as_str().unwrap_or("");
        assert!(engine.starts_with("Docker "), "{}: {engine:?}", c["id"]);
    }
    assert!(
        text(&r["inventory"]["components"], "container-engine").starts_with("Docker "),
        "{}",
        r["inventory"]["components"]
    );
    // Observed from inside the container's namespace over netlink, not with the image's `ip`.
    let none = common::check(&r, "docker.none.loopback-only");
    assert_eq!(none["evidence"]["properties"]["links"], "lo", "{none}");
    // The negative checks carry their positive control, which answered.
    for id in [
        "docker.user-bridge.isolation",
        "docker.macvlan.parent-unreachable",
    ] {
        let p = &common::check(&r, id)["evidence"]["properties"];
        let controls: Vec<&str> = p
            .as_object()
            .unwrap()
            .iter()
            .filter(|(k, _)| k.ends_with("positive control result"))
            .map(|(_, v)| v.as_str().unwrap())
            .collect();
        assert!(!controls.is_empty(), "{id}: {p}");
        for c in controls {
            assert!(!c.contains(" 0 reply"), "{id}: control {c}");
        }
    }
    assert_eq!(
        probe_leftovers_on(std::path::Path::new("/var/run/docker.sock"), &run_pid(&r)),
        (String::new(), String::new()),
        "probe containers or networks left behind"
    );
    assert_eq!(
        host_leftovers(&run_pid(&r)),
        Vec::<String>::new(),
        "macvlan veths or gateway namespaces left behind"
    );
}

/// Runs the docker suite against `socket`, narrowed by `filters`, with `env` set.
fn run_suite(
    socket: &std::path::Path,
    filters: &[&str],
    env: &[(&str, &str)],
) -> (i32, serde_json::Value) {
    let dir = tempfile::tempdir().unwrap();
    let target = write_file(
        dir.path(),
        "t.toml",
        format!("[docker]\nsocket = \"{}\"\n", socket.display()),
    );
    let mut cmd = nfvi();
    cmd.args(["run", "--suite", "docker", "--target"])
        .arg(&target);
    for f in filters {
        cmd.args(["--filter", f]);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    common::run_to(&mut cmd, &dir.path().join("run"))
}

/// Against Podman 4.x's Docker-compatible service: no failure that is Podman's legitimate
/// difference (host and none are modes; the default bridge's key is `podman`; NET_RAW is not
/// granted), every check decides, and nothing is left behind.
#[test]
fn the_docker_suite_against_podman_judges_cnm_semantics_and_leaves_nothing() {
    let Some(socket) = podman_socket() else {
        return;
    };
    let (_, r) = run_suite(&socket, &[], &[]);
    let checks = r["checks"].as_array().unwrap();
    assert_eq!(checks.len(), 9);
    for c in checks {
        let id = c["id"].as_str().unwrap();
        let engine = c["evidence"]["properties"]["engine"].as_str().unwrap_or("");
        assert!(engine.starts_with("Podman "), "{id}: {engine:?}");
        // Inter-network isolation may really fail (netavark 1.4 drops its isolation jump when
        // any isolated network's last container goes); every other check passes.
        if id == "docker.user-bridge.isolation" {
            assert!(
                c["outcome"] == "passed" || c["outcome"] == "failed",
                "{id}: {c}"
            );
        } else {
            assert_eq!(c["outcome"], "passed", "{id}: {}", c["message"]);
        }
    }
    assert!(
        text(&r["inventory"]["components"], "container-engine").starts_with("Podman "),
        "{}",
        r["inventory"]["components"]
    );
    let defaults = common::check(&r, "docker.networks.defaults");
    assert_contains(text(defaults, "message"), "network modes on Podman");
    let bridge = common::check(&r, "docker.bridge.reach");
    let keys = bridge["evidence"]["properties"].to_string();
    assert_contains(&keys, "network key \\\"podman\\\"");
    assert_eq!(
        probe_leftovers_on(&socket, &run_pid(&r)),
        (String::new(), String::new()),
        "probe containers or networks left behind on Podman"
    );
    assert_eq!(host_leftovers(&run_pid(&r)), Vec::<String>::new());
}

/// Both negative checks, with the probe's ability to observe taken away (the probing
/// container's addresses dropped; the positive control aimed at an address nobody holds):
/// neither passes, each says nothing was observed, on every engine at hand.
#[test]
fn the_isolation_checks_do_not_pass_when_the_probe_cannot_observe() {
    if !require_lab_docker() {
        return;
    }
    let mut sockets = vec![std::path::PathBuf::from("/var/run/docker.sock")];
    sockets.extend(podman_socket());
    for socket in &sockets {
        for fault in ["no-address", "silent-control"] {
            let (code, r) = run_suite(
                socket,
                &[
                    "docker.user-bridge.isolation",
                    "docker.macvlan.parent-unreachable",
                ],
                &[("NFVI_VERIFY_DOCKER_FAULT", fault)],
            );
            let checks = r["checks"].as_array().unwrap();
            assert_eq!(checks.len(), 2, "{}", r["checks"]);
            for c in checks {
                let at = format!("{} with {fault} on {}", c["id"], socket.display());
                assert_eq!(c["outcome"], "error", "{at}: {}", c["message"]);
                let m = text(c, "message");
                assert!(
                    m.contains("could not observe") || m.contains("could not be sent"),
                    "{at}: {m}"
                );
                assert!(
                    c["evidence"]["properties"]["test fault"].is_string(),
                    "{at}"
                );
            }
            assert_eq!(code, 3, "errors make the run incomplete");
            assert_eq!(host_leftovers(&run_pid(&r)), Vec::<String>::new());
            assert_eq!(
                probe_leftovers_on(socket, &run_pid(&r)),
                (String::new(), String::new())
            );
        }
    }
}

#[test]
fn without_a_daemon_the_docker_checks_skip_naming_the_socket() {
    let (_dir, target) = temp_file(
        "t.toml",
        "[docker]\nsocket = \"/nonexistent/docker.sock\"\n",
    );
    let plan = json_stdout(
        nfvi()
            .args(["list", "--suite", "docker", "--format", "json", "--target"])
            .arg(&target),
    );
    for c in plan["checks"].as_array().unwrap() {
        assert_eq!(c["decision"], "skip", "{}", c["id"]);
        assert_contains(text(c, "reason"), "/nonexistent/docker.sock");
    }
}

/// Runs `nfvi-verify run --suite docker` against `socket` as `uid` (root when `None`),
/// narrowed by `filter`; returns the exit code and results.json.
fn run_against(
    socket: &std::path::Path,
    filter: &str,
    uid: Option<u32>,
) -> (i32, serde_json::Value) {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let target = write_file(
        dir.path(),
        "t.toml",
        format!("[docker]\nsocket = \"{}\"\n", socket.display()),
    );
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    // Writable for the unprivileged user a run is started as; root refuses (rightly) to write
    // into a directory every user can write to, so root's runs keep it 0755.
    if uid.is_some() {
        std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o777)).unwrap();
    }
    let bin = assert_cmd::cargo::cargo_bin!("nfvi-verify");
    let mut cmd = match uid {
        Some(uid) => {
            let mut c = Command::new("setpriv");
            c.arg(format!("--reuid={uid}"))
                .arg(format!("--regid={uid}"))
                .arg("--clear-groups")
                .arg(bin);
            c
        }
        None => Command::new(bin),
    };
    let status = cmd
        .env("NO_COLOR", "1")
        .env_remove("CI")
        .args(["run", "--suite", "docker", "--filter", filter, "--target"])
        .arg(&target)
        .arg("--out")
        .arg(out.join("run"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    let r = std::fs::read_to_string(out.join("run/results.json")).unwrap();
    (status.code().unwrap(), serde_json::from_str(&r).unwrap())
}

#[test]
fn a_socket_the_user_may_not_open_is_an_error_naming_it_and_its_owner() {
    if !require(
        "root (to run the harness as nobody)",
        nix::unistd::geteuid().is_root(),
    ) {
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let socket = dir.path().join("docker.sock");
    // Root's socket, mode 0660 as dockerd makes it; nobody is not in its group.
    let _listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o660)).unwrap();
    let (code, r) = run_against(&socket, "docker.*", Some(65534));
    assert_eq!(code, 3, "undecided, not a failure of the NFVI");
    let checks = r["checks"].as_array().unwrap();
    assert_eq!(checks.len(), 9, "every check is reported");
    // The checks that probe from inside a container's namespace need root (setns, raw
    // sockets), which nobody lacks: they skip saying so. The two API-only checks error.
    for c in checks.iter().filter(|c| c["outcome"] == "skipped") {
        assert_contains(text(c, "message"), "root");
    }
    let errors: Vec<_> = checks
        .iter()
        .filter(|c| c["outcome"] != "skipped")
        .collect();
    assert!(errors.len() >= 2, "{}", r["checks"]);
    for c in errors {
        assert_eq!(c["outcome"], "error", "{}", c["id"]);
        let m = text(c, "message");
        assert!(
            m.contains(&format!(
                "permission denied on the Docker socket {}",
                socket.display()
            )) && m.contains("uid 65534")
                && m.contains("mode 660"),
            "{m}"
        );
        assert!(!m.contains("no longer answers"), "{m}");
    }
}

/// A stand-in for the daemon's socket that forwards to the lab's daemon until the harness
/// first asks to create a container, then goes away for good, as a daemon stopped mid-run
/// does (the create never reaches the real daemon, so nothing is left behind).
fn socket_that_stops(dir: &std::path::Path) -> std::path::PathBuf {
    use std::io::{Read, Write};
    use std::os::unix::net::{UnixListener, UnixStream};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let path = dir.join("docker.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let stopped = Arc::new(AtomicBool::new(false));
    let socket = path.clone();
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            if stopped.load(Ordering::SeqCst) {
                break;
            }
            let Ok(daemon) = UnixStream::connect("/var/run/docker.sock") else {
                break;
            };
            let (stopped, socket) = (stopped.clone(), socket.clone());
            let (mut c_in, mut d_out) = (client.try_clone().unwrap(), daemon.try_clone().unwrap());
            std::thread::spawn(move || {
                let mut buf = [0u8; 65536];
                while let Ok(n) = c_in.read(&mut buf) {
                    let chunk = &buf[..n];
                    if n == 0 || chunk.windows(18).any(|w| w == b"/containers/create") {
                        if n > 0 {
                            stopped.store(true, Ordering::SeqCst);
                            let _ = std::fs::remove_file(&socket);
                        }
                        let _ = c_in.shutdown(std::net::Shutdown::Both);
                        let _ = d_out.shutdown(std::net::Shutdown::Both);
                        return;
                    }
                    if d_out.write_all(chunk).is_err() {
                        return;
                    }
                }
            });
            let (mut d_in, mut c_out) = (daemon, client);
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut d_in, &mut c_out);
                let _ = c_out.shutdown(std::net::Shutdown::Both);
            });
        }
    });
    path
}

#[test]
fn a_daemon_that_stops_mid_run_gives_errors_naming_it_and_the_run_finishes() {
    if !require_lab_dockerd() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let socket = socket_that_stops(dir.path());
    let t0 = std::time::Instant::now();
    let (code, r) = run_against(&socket, "docker.*", None);
    assert!(
        t0.elapsed() < std::time::Duration::from_secs(120),
        "no hang"
    );
    assert_eq!(code, 3, "{}", r["checks"]);
    let checks = r["checks"].as_array().unwrap();
    assert_eq!(checks.len(), 9, "every check is reported");
    // Checks run concurrently, so which ones finish before the stop varies; every error
    // says the daemon went away, and some got past connecting before it did.
    let gone: Vec<_> = checks
        .iter()
        .filter(|c| c["outcome"] == "error")
        .map(|c| text(c, "message"))
        .collect();
    assert!(!gone.is_empty(), "{}", r["checks"]);
    assert!(
        gone.iter().any(|m| m.starts_with("creating container")),
        "the daemon answered before it stopped: {gone:?}"
    );
    for m in &gone {
        assert!(
            m.contains(&format!(
                "the Docker daemon at {} no longer answers",
                socket.display()
            )),
            "{m}"
        );
    }
    assert!(
        checks.iter().all(|c| c["outcome"] != "failed"),
        "a gone daemon fails nothing: {}",
        r["checks"]
    );
}
