//! The lab on Podman (`lab up --engine podman`): Debian's Podman 4.3 serving the Docker Engine
//! API (`podman system service`) on the lab's socket, /var/run/docker.sock, as Debian's
//! `podman-docker` package arranges it. Everything else of the lab (the probe image, the
//! registry, the Kolla-shaped fleet, Keystone) is then built through that API exactly as on
//! dockerd, so the docker and kolla areas and their tests run unchanged against either engine.
//!
//! The host is left alone: Podman reads its configuration from files the lab writes under
//! its state directory (`CONTAINERS_CONF`, `CONTAINERS_STORAGE_CONF`,
//! `CONTAINERS_REGISTRIES_CONF`), so its storage, its network definitions (netavark, default
//! network 198.18.160.0/24, pools 198.18.176.0/20) and its registry settings live there, not
//! in /etc/containers or /var/lib/containers. The firewall chains netavark adds are put back
//! by [`crate::host_state`] like dockerd's.
//!
//! Health checks: Podman runs a container's health check from a systemd timer
//! (`podman healthcheck run`), and this machine has no systemd, so without help every health
//! status would stay `starting`. The lab's health ticker (`nfvi-verify lab health-ticker`, a
//! process the lab starts and stops by PID) does what those timers do: it runs
//! `podman healthcheck run` for each running container that has a health check, at that
//! container's own interval. On a host with systemd (as Kolla deploys it) it is not needed;
//! the areas read health through the API either way.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::engine::{RUN_DIR, SOCKET, STATE_DIR, daemon_answers, run, running_pid};

/// The lab's Podman configuration and storage.
fn dir() -> PathBuf {
    Path::new(STATE_DIR).join("podman")
}

fn service_pidfile() -> PathBuf {
    Path::new(RUN_DIR).join("podman.pid")
}

fn ticker_pidfile() -> PathBuf {
    Path::new(RUN_DIR).join("podman-health.pid")
}

/// The PID of the Podman service the lab started, if it still runs.
pub fn our_service() -> Option<i32> {
    running_pid(&service_pidfile(), "podman")
}

fn our_ticker() -> Option<i32> {
    running_pid(&ticker_pidfile(), "nfvi-verify")
}

/// The environment that points Podman at the lab's own configuration.
pub fn env() -> [(&'static str, PathBuf); 3] {
    [
        ("CONTAINERS_CONF", dir().join("containers.conf")),
        ("CONTAINERS_STORAGE_CONF", dir().join("storage.conf")),
        ("CONTAINERS_REGISTRIES_CONF", dir().join("registries.conf")),
    ]
}

/// A `podman` command with the lab's configuration.
pub fn podman(args: &[&str]) -> Command {
    let mut c = Command::new("podman");
    c.envs(env()).args(args);
    c
}

/// The three configuration files, as text.
fn config_files(dir: &Path) -> [(&'static str, String); 3] {
    let d = dir.display();
    [
        (
            "containers.conf",
            // default_ulimits: this sandbox refuses to hand the host's rlimits to containers.
            format!(
                "[containers]\ndefault_ulimits = []\n\n[network]\nnetwork_backend = \"netavark\"\n\
                 network_config_dir = \"{d}/networks\"\ndefault_subnet = \"198.18.160.0/24\"\n\
                 default_subnet_pools = [{{\"base\" = \"198.18.176.0/20\", \"size\" = 24}}]\n\n\
                 [engine]\ntmp_dir = \"{d}/tmp\"\n"
            ),
        ),
        (
            "storage.conf",
            format!(
                "[storage]\ndriver = \"overlay\"\ngraphroot = \"{d}/storage\"\nrunroot = \"{d}/run\"\n"
            ),
        ),
        (
            // The lab's registry is plain HTTP on loopback, as dockerd allows for 127.0.0.0/8.
            "registries.conf",
            format!(
                "unqualified-search-registries = []\n\n[[registry]]\nlocation = \"{}\"\ninsecure = true\n",
                crate::kolla::REGISTRY
            ),
        ),
    ]
}

/// Starts `podman system service` on the lab's socket and the health ticker; the caller
/// has checked that nothing answers there yet.
pub fn start(progress: &mut dyn FnMut(&str)) -> Result<(), String> {
    crate::engine::need("podman", "podman")?;
    // netavark names the default network's bridge podman0 and would put the lab's address on
    // one the host's own Podman made; the lab only ever removes a podman0 it created.
    if Path::new("/sys/class/net/podman0").exists() {
        return Err(
            "a podman0 bridge already exists (the host's own Podman?): the lab's Podman would attach its network to it; remove it or use `lab up` (dockerd)"
                .to_owned(),
        );
    }
    let dir = dir();
    for sub in ["networks", "tmp", "storage", "run"] {
        std::fs::create_dir_all(dir.join(sub))
            .map_err(|e| format!("cannot create {}: {e}", dir.join(sub).display()))?;
    }
    std::fs::create_dir_all(RUN_DIR).map_err(|e| format!("cannot create {RUN_DIR}: {e}"))?;
    for (name, text) in config_files(&dir) {
        let path = dir.join(name);
        nfvi_harness::results::write_atomic(&path, text.as_bytes())
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    // Before netavark touches the firewall and sysctls: `down` puts them back.
    crate::host_state::save(Path::new(STATE_DIR))?;
    // A socket file left by a daemon that is gone would make the service fail to bind.
    if Path::new(SOCKET).exists() {
        let _ = std::fs::remove_file(SOCKET);
    }
    let log = std::fs::File::create(dir.join("service.log")).map_err(|e| e.to_string())?;
    progress(
        "starting podman system service (default network 198.18.160.0/24, pools 198.18.176.0/20)",
    );
    use std::os::unix::process::CommandExt;
    let child = podman(&["system", "service", "--time=0", &format!("unix://{SOCKET}")])
        .stdin(Stdio::null())
        .stdout(log.try_clone().map_err(|e| e.to_string())?)
        .stderr(log)
        .process_group(0)
        .spawn()
        .map_err(|e| format!("cannot start podman system service: {e}"))?;
    std::fs::write(service_pidfile(), child.id().to_string()).map_err(|e| e.to_string())?;
    let start = Instant::now();
    while !daemon_answers() {
        if start.elapsed() > Duration::from_secs(60) {
            return Err(format!(
                "podman system service did not answer within 60 s; see {}",
                dir.join("service.log").display()
            ));
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    progress(&format!(
        "podman system service is up after {:.1} s (pid {})",
        start.elapsed().as_secs_f64(),
        child.id()
    ));
    start_ticker(progress)
}

fn start_ticker(progress: &mut dyn FnMut(&str)) -> Result<(), String> {
    if our_ticker().is_some() {
        return Ok(());
    }
    let exe = std::env::current_exe().map_err(|e| format!("cannot find nfvi-verify: {e}"))?;
    let log = std::fs::File::create(dir().join("health-ticker.log")).map_err(|e| e.to_string())?;
    use std::os::unix::process::CommandExt;
    let child = Command::new(exe)
        .args(["lab", "health-ticker"])
        .stdin(Stdio::null())
        .stdout(log.try_clone().map_err(|e| e.to_string())?)
        .stderr(log)
        .process_group(0)
        .spawn()
        .map_err(|e| format!("cannot start the health ticker: {e}"))?;
    std::fs::write(ticker_pidfile(), child.id().to_string()).map_err(|e| e.to_string())?;
    progress(&format!(
        "health ticker (pid {}) runs Podman's health checks in place of systemd's timers",
        child.id()
    ));
    Ok(())
}

/// Removes every container and network in the lab's Podman storage (all of it is the lab's),
/// then stops the ticker and the service the lab started, by PID.
pub fn stop(progress: &mut dyn FnMut(&str)) -> Result<(), String> {
    if let Some(pid) = our_ticker() {
        crate::engine::stop_pid(
            pid,
            nix::sys::signal::Signal::SIGTERM,
            "health ticker",
            Duration::from_secs(10),
        )?;
    }
    let _ = std::fs::remove_file(ticker_pidfile());
    if dir().join("containers.conf").exists() {
        let left = run(&mut podman(&["ps", "-aq"]), "listing Podman containers")?;
        let ids: Vec<&str> = left.split_whitespace().collect();
        if !ids.is_empty() {
            let mut args = vec!["rm", "-f", "-t", "1"];
            args.extend(&ids);
            run(&mut podman(&args), "removing Podman containers")?;
            progress(&format!("removed {} Podman containers", ids.len()));
        }
        // Removing a network deletes its bridge and netavark's rules for it.
        let nets = run(
            &mut podman(&["network", "ls", "--format", "{{.Name}}"]),
            "listing Podman networks",
        )?;
        for n in nets.split_whitespace().filter(|n| *n != "podman") {
            run(
                &mut podman(&["network", "rm", "-f", n]),
                "removing a Podman network",
            )?;
        }
    }
    match our_service() {
        Some(pid) => {
            progress(&format!(
                "stopping podman system service (pid {pid}, started by the lab)"
            ));
            crate::engine::stop_pid(
                pid,
                nix::sys::signal::Signal::SIGTERM,
                "podman system service",
                Duration::from_secs(30),
            )?;
            let _ = std::fs::remove_file(SOCKET);
            // netavark's default bridge; the lab's Podman created it.
            let _ = Command::new("ip")
                .args(["link", "del", "podman0"])
                .stderr(Stdio::null())
                .status();
            progress("podman system service stopped");
        }
        None => progress("no lab Podman service to stop"),
    }
    let _ = std::fs::remove_file(service_pidfile());
    // Podman keeps per-boot state at fixed paths (netavark's and aardvark's under
    // /run/containers, runc's under /run/runc); remove what the lab's Podman made.
    for (path, note) in RUN_PATHS {
        if dir().join(note).exists() {
            let _ = std::fs::remove_dir_all(path);
            let _ = std::fs::remove_file(dir().join(note));
        }
    }
    Ok(())
}

/// Fixed per-boot paths Podman creates, and the note that says the lab's Podman made them.
const RUN_PATHS: [(&str, &str); 2] = [
    ("/run/containers", "created-run-containers"),
    ("/run/runc", "created-run-runc"),
];

/// Notes, before the service first starts, which of [`RUN_PATHS`] do not exist yet.
pub fn note_run_paths() -> Result<(), String> {
    std::fs::create_dir_all(dir()).map_err(|e| e.to_string())?;
    for (path, note) in RUN_PATHS {
        if !Path::new(path).exists() {
            std::fs::write(dir().join(note), b"")
                .map_err(|e| format!("cannot write the lab's Podman notes: {e}"))?;
        }
    }
    Ok(())
}

/// `nfvi-verify lab health-ticker`: runs `podman healthcheck run` for every running container
/// with a health check, each at its own interval (what systemd's per-container timers do),
/// until the service stops answering for 30 s or the process is stopped.
pub fn health_ticker() -> Result<(), String> {
    let mut due: HashMap<String, (Duration, Instant)> = HashMap::new();
    let mut silent_since: Option<Instant> = None;
    loop {
        let running = match run(
            &mut crate::engine::docker(&["ps", "-q", "--no-trunc"]),
            "ps",
        ) {
            Ok(out) => {
                silent_since = None;
                out.split_whitespace()
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            }
            Err(_) => {
                let since = *silent_since.get_or_insert_with(Instant::now);
                if since.elapsed() > Duration::from_secs(30) {
                    return Err("the Podman service stopped answering".to_owned());
                }
                std::thread::sleep(Duration::from_secs(1));
                continue;
            }
        };
        due.retain(|id, _| running.contains(id));
        for id in &running {
            if due.contains_key(id) {
                continue;
            }
            let format = "{{if .Config.Healthcheck}}{{.Config.Healthcheck.Interval}}{{end}}";
            let interval = run(
                &mut crate::engine::docker(&["inspect", "--format", format, id]),
                "inspect",
            )
            .ok()
            .and_then(|s| parse_interval(s.trim()));
            // No health check: never due (an hour, looked at again if it restarts).
            let interval = interval.unwrap_or(Duration::from_secs(3600));
            due.insert(id.clone(), (interval, Instant::now()));
        }
        let now = Instant::now();
        let ready: Vec<String> = due
            .iter()
            .filter(|(_, (interval, at))| *at <= now && *interval < Duration::from_secs(3600))
            .map(|(id, _)| id.clone())
            .collect();
        let mut children = Vec::new();
        for id in ready {
            if let Some((interval, at)) = due.get_mut(&id) {
                *at = now + *interval;
            }
            if let Ok(child) = podman(&["healthcheck", "run", &id])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
            {
                children.push(child);
            }
        }
        for mut c in children {
            let _ = c.wait();
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// A Go duration as `docker inspect` prints it (`5s`, `1m0s`, `500ms`) or nanoseconds.
fn parse_interval(s: &str) -> Option<Duration> {
    if s.is_empty() || s == "0s" || s == "0" {
        // No interval given: the engine's default, 30 s.
        return (!s.is_empty()).then_some(Duration::from_secs(30));
    }
    if let Ok(ns) = s.parse::<u64>() {
        return Some(Duration::from_nanos(ns)).filter(|d| !d.is_zero());
    }
    let mut total = Duration::ZERO;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit() && c != '.')?;
        let value: f64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let secs = match &rest[..unit_len] {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 1e-3,
            "us" | "µs" => 1e-6,
            "ns" => 1e-9,
            _ => return None,
        };
        total += Duration::try_from_secs_f64(value * secs).ok()?;
        rest = &rest[unit_len..];
    }
    Some(total).filter(|d| !d.is_zero())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations_are_read_as_inspect_prints_them() {
        for (text, want) in [
            ("5s", Some(Duration::from_secs(5))),
            ("1m0s", Some(Duration::from_secs(60))),
            ("1m30s", Some(Duration::from_secs(90))),
            ("500ms", Some(Duration::from_millis(500))),
            ("1000000000", Some(Duration::from_secs(1))),
            ("0s", Some(Duration::from_secs(30))),
            ("", None),
            ("5x", None),
            ("s", None),
        ] {
            assert_eq!(parse_interval(text), want, "{text:?}");
        }
    }

    #[test]
    fn podman_is_pointed_at_the_labs_own_files_only() {
        let files = config_files(Path::new("/var/lib/nfvi-verify/lab/podman"));
        let all: String = files.iter().map(|(_, t)| t.as_str()).collect();
        assert!(all.contains("graphroot = \"/var/lib/nfvi-verify/lab/podman/storage\""));
        assert!(all.contains("network_config_dir = \"/var/lib/nfvi-verify/lab/podman/networks\""));
        assert!(!all.contains("/etc/containers") && !all.contains("/var/lib/containers"));
        assert!(all.contains("198.18.160.0/24") && !all.contains("10.88."));
        for (name, text) in &files {
            if name.ends_with(".conf") {
                toml::from_str::<toml::Value>(text).unwrap_or_else(|e| panic!("{name}: {e}"));
            }
        }
    }
}
