//! `nfvi-verify lab up | down | status`: a local Docker engine to verify, built from Debian's
//! packages. `up` starts `dockerd` with its bridge and address pools in 198.18.0.0/15 and its
//! state under /var/lib/nfvi-verify/lab, and imports the probe image from Debian's
//! busybox-static; `down` removes what `up` and the checks created and stops the daemon it
//! started (by the PID in its pidfile), never one it did not start.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

/// Where the lab keeps its state.
pub const STATE_DIR: &str = "/var/lib/nfvi-verify/lab";
/// Where the lab keeps its runtime files (pidfile, exec root).
pub const RUN_DIR: &str = "/run/nfvi-verify/lab";
/// The socket the lab's daemon listens on (the standard one, so Kolla-style tools find it).
pub const SOCKET: &str = "/var/run/docker.sock";
/// The probe image the lab provides.
pub const PROBE_IMAGE: &str = "nfvi-verify/busybox:lab";

fn pidfile() -> PathBuf {
    Path::new(RUN_DIR).join("dockerd.pid")
}

/// A `docker` CLI command against the lab's socket.
pub fn docker(args: &[&str]) -> Command {
    let mut c = Command::new("docker");
    c.args(["-H", &format!("unix://{SOCKET}")]).args(args);
    c
}

/// Whether a Docker daemon answers on the lab's socket.
pub fn daemon_answers() -> bool {
    Path::new(SOCKET).exists()
        && docker(&["version", "--format", "{{.Server.Version}}"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
}

/// The PID in `pidfile`, if that process still runs the program `comm`.
pub fn running_pid(pidfile: &Path, comm: &str) -> Option<i32> {
    let pid: i32 = std::fs::read_to_string(pidfile).ok()?.trim().parse().ok()?;
    let actual = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
    (actual.trim() == comm).then_some(pid)
}

/// The PID of the daemon the lab started, if it is still running.
fn our_daemon() -> Option<i32> {
    running_pid(&pidfile(), "dockerd")
}

pub(crate) fn need(tool: &str, package: &str) -> Result<(), String> {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
        .unwrap_or(false);
    if found {
        Ok(())
    } else {
        Err(format!(
            "`{tool}` is not installed: apt-get install {package} (or `cargo xtask deps`)"
        ))
    }
}

/// Runs a command and returns its stdout, or its stderr as the error, prefixed with `what`.
pub fn run(c: &mut Command, what: &str) -> Result<String, String> {
    let out = c.output().map_err(|e| format!("{what}: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "{what}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// The container engine the lab runs behind its Docker API socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    /// Docker's `dockerd` (Debian's docker.io).
    Docker,
    /// Podman's Docker-compatible service (`podman system service`).
    Podman,
}

impl Engine {
    /// Its name, as `--engine` takes it and the lab's state records it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Docker => "docker",
            Self::Podman => "podman",
        }
    }
}

fn engine_file() -> PathBuf {
    Path::new(STATE_DIR).join("engine")
}

/// The engine the lab started, as recorded by `up`.
pub fn recorded_engine() -> Option<Engine> {
    match std::fs::read_to_string(engine_file()).ok()?.trim() {
        "docker" => Some(Engine::Docker),
        "podman" => Some(Engine::Podman),
        _ => None,
    }
}

/// Brings the lab up on `engine`; idempotent.
pub fn up(engine: Engine, progress: &mut dyn FnMut(&str)) -> Result<(), String> {
    if !nix_is_root() {
        return Err(format!(
            "the lab needs root (it starts {})",
            match engine {
                Engine::Docker => "dockerd",
                Engine::Podman => "podman system service",
            }
        ));
    }
    need("docker", "docker.io")?;
    if let Some(running) = recorded_engine().filter(|e| *e != engine)
        && (our_daemon().is_some() || crate::podman::our_service().is_some())
    {
        return Err(format!(
            "the lab is up on {}; run `nfvi-verify lab down` before `lab up --engine {}`",
            running.name(),
            engine.name()
        ));
    }
    if !Path::new("/bin/busybox").exists() {
        return Err(
            "/bin/busybox is missing: apt-get install busybox-static (or `cargo xtask deps`)"
                .to_owned(),
        );
    }
    if daemon_answers() {
        if our_daemon().is_some() {
            progress("dockerd (started by the lab) is running");
        } else if crate::podman::our_service().is_some() {
            progress("podman system service (started by the lab) is running");
        } else if engine == Engine::Podman {
            return Err(format!(
                "a Docker API daemon the lab did not start answers on {SOCKET}; `lab up --engine podman` serves Podman there, so stop that daemon first"
            ));
        } else {
            progress(
                "a Docker daemon the lab did not start answers on /var/run/docker.sock; using it as it is",
            );
        }
    } else if engine == Engine::Podman {
        std::fs::create_dir_all(STATE_DIR)
            .map_err(|e| format!("cannot create {STATE_DIR}: {e}"))?;
        std::fs::write(engine_file(), "podman\n").map_err(|e| e.to_string())?;
        crate::podman::note_run_paths()?;
        crate::podman::start(progress)?;
    } else {
        need("dockerd", "docker.io")?;
        for dir in [STATE_DIR, RUN_DIR] {
            std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {dir}: {e}"))?;
        }
        let config = serde_json::json!({
            "bip": "198.18.128.1/24",
            "default-address-pools": [{"base": "198.18.144.0/20", "size": 24}],
            "data-root": format!("{STATE_DIR}/docker"),
            "exec-root": format!("{RUN_DIR}/docker"),
            "pidfile": pidfile().display().to_string(),
            "hosts": [format!("unix://{SOCKET}")],
        });
        let config_path = Path::new(STATE_DIR).join("daemon.json");
        std::fs::write(
            &config_path,
            serde_json::to_string_pretty(&config).expect("json"),
        )
        .map_err(|e| format!("cannot write {}: {e}", config_path.display()))?;
        std::fs::write(engine_file(), "docker\n").map_err(|e| e.to_string())?;
        // Before dockerd touches the firewall and sysctls: `down` puts them back.
        crate::host_state::save(Path::new(STATE_DIR))?;
        let log = std::fs::File::create(Path::new(STATE_DIR).join("dockerd.log"))
            .map_err(|e| e.to_string())?;
        progress("starting dockerd (bridge 198.18.128.1/24, address pools 198.18.144.0/20)");
        use std::os::unix::process::CommandExt;
        Command::new("dockerd")
            .arg("--config-file")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log)
            .process_group(0)
            .spawn()
            .map_err(|e| format!("cannot start dockerd: {e}"))?;
        let start = Instant::now();
        while !daemon_answers() {
            if start.elapsed() > Duration::from_secs(60) {
                return Err(format!(
                    "dockerd did not answer within 60 s; see {STATE_DIR}/dockerd.log"
                ));
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        progress(&format!(
            "dockerd is up after {:.1} s",
            start.elapsed().as_secs_f64()
        ));
    }
    let have_image = docker(&["image", "inspect", PROBE_IMAGE])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if have_image {
        progress(&format!("probe image {PROBE_IMAGE} present"));
    } else {
        progress(&format!(
            "importing {PROBE_IMAGE} from /bin/busybox (busybox-static; no registry needed)"
        ));
        let root = probe_rootfs()?;
        let tar = Command::new("tar")
            .arg("-C")
            .arg(root.path())
            .args(["-c", "."])
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("tar: {e}"))?;
        let result = run(
            docker(&["import", "-", PROBE_IMAGE]).stdin(tar.stdout.expect("piped")),
            "docker import",
        );
        let _ = root.close();
        result?;
    }
    keystone_up(progress)?;
    progress(&format!(
        "Docker API socket {SOCKET} ({}), probe image {PROBE_IMAGE}, Keystone {KEYSTONE_URL}, credentials {OPENRC}",
        recorded_engine().map_or("an engine the lab did not start", Engine::name)
    ));
    Ok(())
}

/// The probe image's root file system: busybox and its applets in a private directory (random
/// name, created exclusively, 0700), removed when the directory is dropped. Nothing another
/// local user placed in the temporary directory beforehand is written through or packed into
/// the image.
pub fn probe_rootfs() -> Result<tempfile::TempDir, String> {
    let root = nfvi_harness::scratch::private_dir("nfvi-lab-rootfs-")
        .map_err(|e| format!("cannot create a private directory for the rootfs: {e}"))?;
    let bin = root.path().join("bin");
    std::fs::create_dir(&bin).map_err(|e| e.to_string())?;
    std::fs::copy("/bin/busybox", bin.join("busybox"))
        .map_err(|e| format!("cannot copy /bin/busybox: {e}"))?;
    for applet in [
        "sh", "ip", "ping", "sleep", "cat", "ls", "ifconfig", "nc", "hostname", "wget", "echo",
    ] {
        std::os::unix::fs::symlink("busybox", bin.join(applet)).map_err(|e| e.to_string())?;
    }
    Ok(root)
}

/// Removes probe leftovers and, if the lab started the daemon, stops it and removes its state.
pub fn down(progress: &mut dyn FnMut(&str)) -> Result<(), String> {
    keystone_down(progress)?;
    if daemon_answers() {
        remove_labelled("io.nfvi-verify.probe", "probe", progress)?;
        let nets = run(
            &mut docker(&[
                "network",
                "ls",
                "-q",
                "--filter",
                "label=io.nfvi-verify.probe",
            ]),
            "listing probe networks",
        )?;
        for n in nets.split_whitespace() {
            run(
                &mut docker(&["network", "rm", n]),
                "removing a probe network",
            )?;
        }
    }
    crate::podman::stop(progress)?;
    match our_daemon() {
        Some(pid) => {
            progress(&format!("stopping dockerd (pid {pid}, started by the lab)"));
            stop_pid(pid, Signal::SIGTERM, "dockerd", Duration::from_secs(30))?;
            // dockerd leaves its default bridge behind; the lab created it, so it goes too.
            let _ = Command::new("ip")
                .args(["link", "del", "docker0"])
                .stderr(Stdio::null())
                .status();
            progress("dockerd stopped");
        }
        None if recorded_engine() == Some(Engine::Podman) => {}
        None => {
            progress("no lab daemon to stop (none was started by the lab, or it is already down)")
        }
    }
    // With no lab daemon running, what it changed on the host goes back as it was; the saved
    // state stays (and so does the lab's directory) if that fails, for the next `down`.
    if our_daemon().is_none() && crate::podman::our_service().is_none() {
        crate::host_state::restore(Path::new(STATE_DIR), progress)?;
    }
    // No lab daemon runs now, so its state can go, including what a crashed run left:
    // dockerd leaves a namespace bind mount (exec-root/netns/default) behind.
    if Path::new(STATE_DIR).exists() || Path::new(RUN_DIR).exists() {
        unmount_under(RUN_DIR);
        unmount_under(STATE_DIR);
        for dir in [STATE_DIR, RUN_DIR] {
            if Path::new(dir).exists() {
                std::fs::remove_dir_all(dir).map_err(|e| format!("cannot remove {dir}: {e}"))?;
            }
        }
        progress("lab state removed");
    }
    // The parents exist only for the lab; remove them when empty.
    for dir in ["/var/lib/nfvi-verify", "/run/nfvi-verify"] {
        let _ = std::fs::remove_dir(dir);
    }
    progress("lab is down");
    Ok(())
}

/// Removes every container (running or not) carrying `label`; `what` names them in messages.
pub fn remove_labelled(
    label: &str,
    what: &str,
    progress: &mut dyn FnMut(&str),
) -> Result<(), String> {
    let ids = run(
        &mut docker(&["ps", "-aq", "--filter", &format!("label={label}")]),
        &format!("listing {what} containers"),
    )?;
    let ids: Vec<&str> = ids.split_whitespace().collect();
    if !ids.is_empty() {
        let mut args = vec!["rm", "-f"];
        args.extend(&ids);
        run(&mut docker(&args), &format!("removing {what} containers"))?;
        progress(&format!("removed {} {what} containers", ids.len()));
    }
    Ok(())
}

/// One line per fact about the lab.
pub fn status() -> Vec<String> {
    vec![
        format!(
            "keystone {KEYSTONE_URL}: {}",
            match (
                keystone_pid(),
                http_get_status("127.0.0.1:5000", "/healthcheck")
            ) {
                (Some(p), Some(200)) => format!("healthy, uwsgi pid {p}"),
                (Some(p), _) =>
                    format!("uwsgi pid {p} running but /healthcheck does not answer 200"),
                (None, _) => "not running".to_owned(),
            }
        ),
        format!(
            "docker socket {SOCKET}: {}",
            if daemon_answers() {
                "answers"
            } else {
                "no daemon"
            }
        ),
        format!(
            "lab daemon: {}",
            match (our_daemon(), crate::podman::our_service()) {
                (Some(p), _) => format!("dockerd running, pid {p}"),
                (None, Some(p)) => format!("podman system service running, pid {p}"),
                (None, None) => "not running".to_owned(),
            }
        ),
        format!(
            "probe image {PROBE_IMAGE}: {}",
            if daemon_answers()
                && docker(&["image", "inspect", PROBE_IMAGE])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success())
            {
                "present"
            } else {
                "absent"
            }
        ),
    ]
}

/// Lazily unmounts every mount point below `dir` (deepest first).
fn unmount_under(dir: &str) {
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut points: Vec<&str> = mounts
        .lines()
        .filter_map(|l| l.split_whitespace().nth(4))
        .filter(|p| p.starts_with(dir))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for p in points {
        let _ = nix::mount::umount2(p, nix::mount::MntFlags::MNT_DETACH);
    }
}

fn nix_is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Where the lab's Keystone lives.
fn keystone_dir() -> PathBuf {
    Path::new(STATE_DIR).join("keystone")
}

/// The lab Keystone's fernet key repository (the `keystone_fernet` container mounts it).
pub fn fernet_keys_dir() -> PathBuf {
    keystone_dir().join("data").join("fernet-keys")
}

/// The openrc the lab writes, the way Kolla's post-deploy writes `admin-openrc.sh`.
pub const OPENRC: &str = "/var/lib/nfvi-verify/lab/admin-openrc.sh";

/// The clouds.yaml the lab writes (cloud `kolla-admin`), as Kolla's post-deploy does.
pub const CLOUDS_YAML: &str = "/var/lib/nfvi-verify/lab/clouds.yaml";

/// Keystone's address in the lab: loopback only.
pub const KEYSTONE_URL: &str = "http://127.0.0.1:5000";

/// The status code of a plain HTTP GET, or `None` when nothing answers (2 s to connect, 5 s
/// to answer).
pub fn http_get_status(host_port: &str, path: &str) -> Option<u16> {
    use std::io::{Read, Write};
    let mut s =
        std::net::TcpStream::connect_timeout(&host_port.parse().ok()?, Duration::from_secs(2))
            .ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {host_port}\r\n\r\n").ok()?;
    let mut head = [0u8; 64];
    let n = s.read(&mut head).ok()?;
    String::from_utf8_lossy(&head[..n])
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn keystone_pid() -> Option<i32> {
    // The PID must still be uWSGI's: a reused PID belongs to someone else and is never
    // signalled.
    running_pid(&keystone_dir().join("uwsgi.pid"), "uwsgi")
}

/// A real Keystone from PyPI on 127.0.0.1:5000: SQLite, fernet tokens, uWSGI; idempotent.
pub fn keystone_up(progress: &mut dyn FnMut(&str)) -> Result<(), String> {
    let dir = keystone_dir();
    let (venv, data) = (dir.join("venv"), dir.join("data"));
    if keystone_pid().is_some() && http_get_status("127.0.0.1:5000", "/healthcheck") == Some(200) {
        progress("keystone is running");
        return Ok(());
    }
    if !venv.join("bin/keystone-manage").exists() || !venv.join("bin/uwsgi").exists() {
        progress("installing keystone and uwsgi from PyPI into the lab's venv (about a minute)");
        run(
            Command::new("/usr/bin/python3")
                .arg("-m")
                .arg("venv")
                .arg(&venv),
            "python3 -m venv (apt-get install python3-venv)",
        )?;
        run(
            Command::new(venv.join("bin/pip")).args(["install", "-q", "keystone", "uwsgi"]),
            "pip install keystone uwsgi (needs gcc and python3-dev for uwsgi)",
        )?;
    }
    for sub in ["fernet-keys", "credential-keys", "log"] {
        std::fs::create_dir_all(data.join(sub)).map_err(|e| e.to_string())?;
    }
    let conf = data.join("keystone.conf");
    let d = data.display();
    std::fs::write(
        &conf,
        format!(
            "[DEFAULT]\nuse_stderr = false\nlog_file = {d}/log/keystone.log\n\n[database]\nconnection = sqlite:///{d}/keystone.db\n\n\
             [token]\nprovider = fernet\nexpiration = 3600\n\n[fernet_tokens]\nkey_repository = {d}/fernet-keys\nmax_active_keys = 3\n\n\
             [fernet_receipts]\nkey_repository = {d}/fernet-keys\n\n[credential]\nkey_repository = {d}/credential-keys\n\n\
             [cache]\nenabled = true\nbackend = dogpile.cache.memory\n"
        ),
    )
    .map_err(|e| e.to_string())?;
    let manage = |args: &[&str]| {
        let mut c = Command::new(venv.join("bin/keystone-manage"));
        c.arg("--config-file")
            .arg(&conf)
            .args(args)
            .env("PYTHONWARNINGS", "ignore");
        run(
            &mut c,
            &format!("keystone-manage {}", args.first().unwrap_or(&"")),
        )
    };
    let marker = data.join(".bootstrapped");
    if !marker.exists() {
        progress(
            "keystone: db_sync, fernet and credential keys, bootstrap of admin / admin project / RegionOne",
        );
        // A fresh random password per lab, kept only in the 0600 openrc.
        let password = std::fs::read_to_string("/proc/sys/kernel/random/uuid")
            .map_err(|e| format!("cannot get a random password: {e}"))?
            .trim()
            .to_owned();
        manage(&["db_sync"])?;
        for setup in ["fernet_setup", "credential_setup"] {
            manage(&[setup, "--keystone-user", "root", "--keystone-group", "root"])?;
        }
        manage(&[
            "bootstrap",
            "--bootstrap-password",
            &password,
            "--bootstrap-username",
            "admin",
            "--bootstrap-project-name",
            "admin",
            "--bootstrap-role-name",
            "admin",
            "--bootstrap-service-name",
            "keystone",
            "--bootstrap-region-id",
            "RegionOne",
            "--bootstrap-internal-url",
            &format!("{KEYSTONE_URL}/v3"),
            "--bootstrap-public-url",
            &format!("{KEYSTONE_URL}/v3"),
        ])?;
        let openrc = format!(
            "# Written by `nfvi-verify lab up`, the way Kolla's post-deploy writes admin-openrc.sh.\n\
             export OS_AUTH_URL={KEYSTONE_URL}/v3\nexport OS_USERNAME=admin\nexport OS_PASSWORD='{password}'\n\
             export OS_PROJECT_NAME=admin\nexport OS_USER_DOMAIN_NAME=Default\nexport OS_PROJECT_DOMAIN_NAME=Default\n\
             export OS_REGION_NAME=RegionOne\nexport OS_INTERFACE=internal\nexport OS_IDENTITY_API_VERSION=3\n"
        );
        let clouds = format!(
            "# Written by `nfvi-verify lab up`, the way Kolla's post-deploy writes clouds.yaml.\n\
             clouds:\n  kolla-admin:\n    auth:\n      auth_url: {KEYSTONE_URL}/v3\n      username: admin\n      password: '{password}'\n\
             \x20     project_name: admin\n      user_domain_name: Default\n      project_domain_name: Default\n\
             \x20   region_name: RegionOne\n    interface: internal\n    identity_api_version: 3\n"
        );
        for (path, text) in [(OPENRC, &openrc), (CLOUDS_YAML, &clouds)] {
            use std::os::unix::fs::OpenOptionsExt;
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(path)
                .map_err(|e| format!("cannot write {path}: {e}"))?;
            std::io::Write::write_all(&mut f, text.as_bytes()).map_err(|e| e.to_string())?;
        }
        std::fs::write(&marker, b"").map_err(|e| e.to_string())?;
    }
    progress("keystone: starting uWSGI on 127.0.0.1:5000");
    run(
        Command::new(venv.join("bin/uwsgi"))
            .args([
                "--http-socket",
                "127.0.0.1:5000",
                "--module",
                "keystone.wsgi.api:application",
                "--virtualenv",
            ])
            .arg(&venv)
            .args([
                "--master",
                "--processes",
                "1",
                "--threads",
                "1",
                "--lazy-apps",
                "--need-app",
                "--die-on-term",
            ])
            .arg("--env")
            .arg(format!("OS_KEYSTONE_CONFIG_FILES={}", conf.display()))
            .arg("--pidfile")
            .arg(keystone_dir().join("uwsgi.pid"))
            .arg("--daemonize2")
            .arg(data.join("log/uwsgi.log"))
            .env("OS_KEYSTONE_CONFIG_FILES", &conf)
            .env("PYTHONWARNINGS", "ignore"),
        "starting uwsgi",
    )?;
    let start = Instant::now();
    while http_get_status("127.0.0.1:5000", "/healthcheck") != Some(200) {
        if start.elapsed() > Duration::from_secs(90) {
            return Err(format!(
                "keystone did not answer /healthcheck within 90 s; see {}/log/uwsgi.log",
                data.display()
            ));
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    progress(&format!(
        "keystone is up after {:.1} s; credentials in {OPENRC}",
        start.elapsed().as_secs_f64()
    ));
    Ok(())
}

/// Stops the Keystone the lab started (SIGINT to its uWSGI master, by pidfile).
pub fn keystone_down(progress: &mut dyn FnMut(&str)) -> Result<(), String> {
    if let Some(pid) = keystone_pid() {
        progress(&format!(
            "stopping keystone (uwsgi pid {pid}, started by the lab)"
        ));
        // uWSGI's master shuts down gracefully on SIGINT.
        stop_pid(pid, Signal::SIGINT, "keystone", Duration::from_secs(20))?;
    }
    Ok(())
}

/// Sends `signal` to `pid` (a process the lab started, `what`) and waits until it is gone.
pub(crate) fn stop_pid(
    pid: i32,
    signal: Signal,
    what: &str,
    within: Duration,
) -> Result<(), String> {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), signal)
        .map_err(|e| format!("cannot stop {what} {pid}: {e}"))?;
    let start = Instant::now();
    while Path::new(&format!("/proc/{pid}")).exists() {
        if start.elapsed() > within {
            return Err(format!(
                "{what} {pid} did not stop within {} s",
                within.as_secs()
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}
