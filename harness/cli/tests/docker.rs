//! The Docker area against the local lab (`nfvi-verify lab up`, which `cargo xtask ci` runs
//! before the tests), and what happens without a daemon.

mod common;

use std::process::Command;

use common::{
    assert_contains, json_stdout, nfvi, require, require_lab_docker, temp_file, text, write_file,
};

fn probe_leftovers() -> (String, String) {
    let list = |args: &[&str]| {
        String::from_utf8_lossy(&Command::new("docker").args(args).output().unwrap().stdout)
            .trim()
            .to_owned()
    };
    (
        list(&["ps", "-aq", "--filter", "label=io.nfvi-verify.probe"]),
        list(&[
            "network",
            "ls",
            "-q",
            "--filter",
            "label=io.nfvi-verify.probe",
        ]),
    )
}

#[test]
fn the_docker_suite_passes_against_the_lab_and_leaves_nothing() {
    if !require_lab_docker() {
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
    let none = checks
        .iter()
        .find(|c| c["id"] == "docker.none.loopback-only")
        .unwrap();
    assert!(
        none["evidence"]["commands"][0]["stdout"]
            .as_str()
            .unwrap()
            .contains("lo:")
    );
    assert_eq!(
        probe_leftovers(),
        (String::new(), String::new()),
        "probe containers or networks left behind"
    );
    let links = String::from_utf8_lossy(
        &Command::new("ip")
            .args(["-o", "link"])
            .output()
            .unwrap()
            .stdout,
    )
    .into_owned();
    assert!(
        !links.contains("nfvdk"),
        "a macvlan parent veth was left behind"
    );
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
    std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o777)).unwrap();
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
    // The macvlan checks need CAP_NET_ADMIN, which nobody lacks: they skip saying so.
    let errors: Vec<_> = checks
        .iter()
        .filter(|c| c["outcome"] != "skipped")
        .collect();
    assert!(errors.len() >= 7, "{}", r["checks"]);
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
    if !require_lab_docker() {
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
