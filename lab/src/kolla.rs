//! The lab's Kolla-shaped containers: one per container of the release's all-in-one default
//! set, named as Kolla-Ansible names them, on host networking, with Kolla's image labels, and
//! with health checks this project wrote that test something real:
//!
//! - containers that serve a port run a small HTTP server (busybox `httpd`) on 127.0.0.1 at
//!   the Kolla port and check it, as `healthcheck_curl`/`healthcheck_listen` do;
//! - RPC services (`healthcheck_port PROC 5672` in Kolla) are healthy only while `rabbitmq`
//!   answers, so stopping `rabbitmq` cascades as it does in a real deployment;
//! - `keystone` checks the lab's real Keystone (`/healthcheck` on 127.0.0.1:5000), which runs
//!   on the host from PyPI, not inside the container;
//! - `keystone_fernet` checks the real fernet key repository, mounted read-only.
//!
//! Nothing else behind them is OpenStack: they exist so that the container checks judge real
//! containers, and stopping or breaking one shows in the report.
//!
//! Their images come from the lab's private registry (Debian's `docker-registry`, on
//! 127.0.0.1:4000 as Kolla's `docker_registry`), pushed there from the probe image, so the
//! registry checks look at a real registry holding exactly what the fleet runs.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::engine::{self as lab, docker, run};

use crate::apis as lab_api;
use nfvi_suite_kolla::services::{self, Health, Service};

/// The label that marks the fleet's containers, so `down` removes exactly them.
pub const FLEET_LABEL: &str = "io.nfvi-verify.lab=kolla-fleet";

/// The `kolla_version` label the fleet's images carry.
pub const LAB_KOLLA_VERSION: &str = "nfvi-verify-lab";

/// Kolla's default maintainer label.
const MAINTAINER: &str = "Kolla Project (https://launchpad.net/kolla)";

/// The lab registry's address (Kolla's `docker_registry` port), loopback only.
pub const REGISTRY: &str = "127.0.0.1:4000";

/// The image reference for a service, shaped like Kolla's
/// `<docker_registry>/openstack.kolla/<image>:<release>-<distro>-<version>`.
fn image_ref(image: &str, release: &str) -> String {
    format!("{REGISTRY}/openstack.kolla/{image}:{release}-busybox")
}

fn registry_dir() -> PathBuf {
    Path::new(lab::STATE_DIR).join("registry")
}

fn registry_pidfile() -> PathBuf {
    Path::new(lab::RUN_DIR).join("registry.pid")
}

/// The PID of the registry the lab started, if it still runs.
fn registry_pid() -> Option<i32> {
    lab::running_pid(&registry_pidfile(), "docker-registry")
}

fn registry_answers() -> bool {
    lab::http_get_status(REGISTRY, "/v2/") == Some(200)
}

/// Starts Debian's docker-registry on 127.0.0.1:4000 with its storage in the lab's state.
fn registry_up(progress: &mut dyn FnMut(&str)) -> Result<(), String> {
    if registry_pid().is_some() && registry_answers() {
        progress(&format!("registry {REGISTRY} is running"));
        return Ok(());
    }
    if registry_answers() {
        return Err(format!(
            "something the lab did not start answers on {REGISTRY}; stop it or free the port"
        ));
    }
    let bin = Path::new("/usr/bin/docker-registry");
    if !bin.exists() {
        return Err(
            "/usr/bin/docker-registry is missing: apt-get install docker-registry (or `cargo xtask deps`)"
                .to_owned(),
        );
    }
    let dir = registry_dir();
    std::fs::create_dir_all(dir.join("data")).map_err(|e| e.to_string())?;
    std::fs::create_dir_all(lab::RUN_DIR).map_err(|e| e.to_string())?;
    let config = dir.join("config.yml");
    std::fs::write(
        &config,
        format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {REGISTRY}\n",
            dir.join("data").display()
        ),
    )
    .map_err(|e| format!("cannot write {}: {e}", config.display()))?;
    let log = std::fs::File::create(dir.join("registry.log")).map_err(|e| e.to_string())?;
    use std::os::unix::process::CommandExt;
    let child = Command::new(bin)
        .arg("serve")
        .arg(&config)
        .stdin(Stdio::null())
        .stdout(log.try_clone().map_err(|e| e.to_string())?)
        .stderr(log)
        .process_group(0)
        .spawn()
        .map_err(|e| format!("cannot start docker-registry: {e}"))?;
    std::fs::write(registry_pidfile(), child.id().to_string()).map_err(|e| e.to_string())?;
    let t0 = Instant::now();
    while !registry_answers() {
        if t0.elapsed() > Duration::from_secs(30) {
            return Err(format!(
                "docker-registry did not answer on {REGISTRY} within 30 s; see {}",
                dir.join("registry.log").display()
            ));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    progress(&format!(
        "registry {REGISTRY} (docker-registry, pid {}) is up",
        child.id()
    ));
    Ok(())
}

/// Stops the registry the lab started, by its PID.
fn registry_down(progress: &mut dyn FnMut(&str)) -> Result<(), String> {
    if let Some(pid) = registry_pid() {
        lab::stop_pid(
            pid,
            nix::sys::signal::Signal::SIGTERM,
            "docker-registry",
            Duration::from_secs(15),
        )?;
        progress(&format!("registry stopped (pid {pid})"));
    }
    let _ = std::fs::remove_file(registry_pidfile());
    Ok(())
}

/// Tags the probe image for every image the set needs and pushes it to the lab registry.
fn publish(set: &[Service], release: &str, progress: &mut dyn FnMut(&str)) -> Result<(), String> {
    let mut images: Vec<&str> = set.iter().map(|s| s.image).collect();
    images.sort_unstable();
    images.dedup();
    for image in &images {
        let r = image_ref(image, release);
        run(
            &mut docker(&["tag", lab::PROBE_IMAGE, &r]),
            &format!("tagging {r}"),
        )?;
        run(&mut docker(&["push", "-q", &r]), &format!("pushing {r}"))?;
    }
    progress(&format!(
        "registry {REGISTRY} holds {} Kolla images at tag {release}-busybox",
        images.len()
    ));
    Ok(())
}

/// The command a container runs and its health test (`None`: no health check, as in Kolla).
fn shape(s: &Service) -> (String, Option<String>) {
    let forever = "exec sleep 2147483647".to_owned();
    // An HTTP GET through busybox nc, judged on the status line like `healthcheck_curl`
    // (busybox-static's wget crashes in its resolver, even for a literal address).
    let http = |port: u16, path: &str| {
        Some(format!(
            "r=$(printf 'GET {path} HTTP/1.0\\r\\nHost: 127.0.0.1\\r\\n\\r\\n' | nc -w 3 127.0.0.1 {port} | busybox head -n 1); echo \"127.0.0.1:{port}{path} $r\"; case \"$r\" in *' 200 '*) exit 0;; esac; exit 1"
        ))
    };
    match s.health {
        Health::Serves(port) => (
            lab_api::api_command(s.container)
                .or_else(|| lab_api::dashboard_command(s.container))
                .unwrap_or_else(|| format!(
                "busybox mkdir -p /tmp/www && echo ok > /tmp/www/index.html && exec busybox httpd -f -p 127.0.0.1:{port} -h /tmp/www"
            )),
            http(port, "/"),
        ),
        // RPC services report in through heartbeats while their dependency answers.
        Health::NeedsPort(port) if port == services::RABBITMQ => (
            lab_api::heartbeat_command(s.container, port),
            http(port, "/"),
        ),
        Health::NeedsPort(port) => (forever, http(port, "/")),
        Health::Keystone => (forever, http(5000, "/healthcheck")),
        Health::Fernet => (
            forever,
            Some("busybox test -s /etc/keystone/fernet-keys/0".to_owned()),
        ),
        Health::None => (forever, None),
    }
}

fn state_of(name: &str) -> Option<String> {
    let out = docker(&["inspect", "--format", "{{.State.Status}}", name])
        .stderr(Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

fn start(s: &Service, release: &str) -> Result<(), String> {
    let image = image_ref(s.image, release);
    let (command, test) = shape(s);
    // Kolla's `build-date` format.
    let build_date = chrono::Utc::now().format("%Y%m%d").to_string();
    let labels = [
        format!("maintainer={MAINTAINER}"),
        format!("name={}", s.image),
        format!("kolla_version={LAB_KOLLA_VERSION}"),
        format!("build-date={build_date}"),
        FLEET_LABEL.to_owned(),
    ];
    let fernet = format!(
        "{}:/etc/keystone/fernet-keys:ro",
        lab::fernet_keys_dir().display()
    );
    let mut args: Vec<&str> = vec![
        "run",
        "-d",
        "--name",
        s.container,
        "--network",
        "host",
        "--restart",
        "no",
    ];
    for l in &labels {
        args.extend(["--label", l]);
    }
    if s.health == Health::Fernet {
        args.extend(["-v", &fernet]);
    }
    let mounts = lab_api::mounts(s.container, &command);
    for m in &mounts {
        args.extend(["-v", m]);
    }
    if let Some(test) = &test {
        // Kolla's defaults are 30 s / 30 s / 3 / 5 s; the lab probes every 5 s so that a
        // stopped dependency shows within seconds.
        args.extend([
            "--health-cmd",
            test,
            "--health-interval",
            "5s",
            "--health-timeout",
            "5s",
            "--health-retries",
            "3",
            "--health-start-period",
            "5s",
        ]);
    }
    args.extend([image.as_str(), "sh", "-c", &command]);
    run(&mut docker(&args), &format!("starting {}", s.container)).map(drop)
}

/// Starts every missing or stopped container of the release's default set and waits until
/// none is still `starting`; idempotent.
pub fn up(release: &str, progress: &mut dyn FnMut(&str)) -> Result<(), String> {
    let set = services::default_set(release)?;
    registry_up(progress)?;
    publish(&set, release, progress)?;
    for dir in [lab_api::heartbeat_dir(), lab_api::stacks_dir()] {
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let mut started = 0;
    for s in &set {
        match state_of(s.container).as_deref() {
            Some("running") => continue,
            Some(_) => {
                run(
                    &mut docker(&["rm", "-f", s.container]),
                    &format!("removing the stopped {}", s.container),
                )?;
            }
            None => {}
        }
        start(s, release)?;
        started += 1;
    }
    progress(&format!(
        "Kolla {release} containers: {started} started, {} already running",
        set.len() - started
    ));
    let t0 = Instant::now();
    loop {
        let out = run(
            &mut docker(&[
                "ps",
                "--filter",
                &format!("label={FLEET_LABEL}"),
                "--filter",
                "health=starting",
                "--format",
                "{{.Names}}",
            ]),
            "listing starting containers",
        )?;
        if out.trim().is_empty() {
            break;
        }
        if t0.elapsed() > Duration::from_secs(90) {
            return Err(format!(
                "Kolla containers still starting after 90 s: {}",
                out.split_whitespace().collect::<Vec<_>>().join(", ")
            ));
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let unhealthy = run(
        &mut docker(&[
            "ps",
            "--filter",
            &format!("label={FLEET_LABEL}"),
            "--filter",
            "health=unhealthy",
            "--format",
            "{{.Names}}",
        ]),
        "listing unhealthy containers",
    )?;
    if unhealthy.trim().is_empty() {
        progress(&format!(
            "Kolla containers healthy after {:.1} s",
            t0.elapsed().as_secs_f64()
        ));
        let names: Vec<&str> = set.iter().map(|s| s.container).collect();
        lab_api::register(&names, progress)
    } else {
        Err(format!(
            "Kolla containers unhealthy after start: {}",
            unhealthy.split_whitespace().collect::<Vec<_>>().join(", ")
        ))
    }
}

/// Removes the fleet's containers (found by label) and its image tags, and stops the registry.
pub fn down(progress: &mut dyn FnMut(&str)) -> Result<(), String> {
    let result = if lab::daemon_answers() {
        fleet_down(progress)
    } else {
        Ok(())
    };
    registry_down(progress).and(result)
}

fn fleet_down(progress: &mut dyn FnMut(&str)) -> Result<(), String> {
    lab::remove_labelled(FLEET_LABEL, "Kolla", progress)?;
    let tags = run(
        &mut docker(&[
            "images",
            "--format",
            "{{.Repository}}:{{.Tag}}",
            &format!("{REGISTRY}/openstack.kolla/*"),
        ]),
        "listing the Kolla image tags",
    )?;
    let tags: Vec<&str> = tags.split_whitespace().collect();
    if !tags.is_empty() {
        let mut args = vec!["rmi"];
        args.extend(&tags);
        run(&mut docker(&args), "removing the Kolla image tags")?;
    }
    Ok(())
}

/// One line: how many fleet containers run and how many are healthy.
pub fn status() -> String {
    let count = |extra: &[&str]| -> usize {
        let label = format!("label={FLEET_LABEL}");
        let mut args = vec!["ps", "-q", "--filter", &label];
        args.extend(extra);
        run(&mut docker(&args), "ps").map_or(0, |o| o.split_whitespace().count())
    };
    format!(
        "Kolla containers: {} running, {} healthy, {} unhealthy; registry {REGISTRY}: {}",
        count(&[]),
        count(&["--filter", "health=healthy"]),
        count(&["--filter", "health=unhealthy"]),
        match (registry_pid(), registry_answers()) {
            (Some(p), true) => format!("answers, pid {p}"),
            (_, true) => "answers (not started by the lab)".to_owned(),
            _ => "not running".to_owned(),
        }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_check_what_the_container_serves() {
        let svc = |container, health| Service {
            container,
            image: "x",
            health,
        };
        let (cmd, test) = shape(&svc("glance_api", Health::Serves(9292)));
        assert!(cmd.contains("httpd -p 127.0.0.1:9292"), "{cmd}");
        assert!(cmd.contains("v2/images"), "{cmd}");
        let (cmd, _) = shape(&svc("haproxy", Health::Serves(61313)));
        assert!(cmd.contains("httpd -f -p 127.0.0.1:61313"), "{cmd}");
        let test = test.unwrap();
        assert!(test.contains("nc -w 3 127.0.0.1 9292"), "{test}");
        assert!(test.contains("GET / HTTP/1.0"), "{test}");
        assert!(shape(&svc("cron", Health::None)).1.is_none());
        let (cmd, test) = shape(&svc("nova_compute", Health::NeedsPort(5672)));
        assert!(test.unwrap().contains(":5672/"));
        assert!(cmd.contains("touch /heartbeats/nova-compute"), "{cmd}");
    }
}
