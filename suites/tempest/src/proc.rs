//! Child processes of the Tempest run (python, pip, tempest): their own process group, killed
//! whole on a deadline, on the run's cancellation, or when dropped; a clean environment
//! (no `OS_*` variable, so no password, reaches them; HOME is the run's private directory so
//! nothing is written to the operator's).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use nfvi_harness::cancel::CancelToken;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::AsyncReadExt;

/// Kills a process group when dropped.
pub struct Group(pub Option<Pid>);

impl Group {
    /// Sends `signal` to the group (gone already is fine).
    pub fn signal(&self, signal: Signal) {
        if let Some(p) = self.0 {
            let _ = killpg(p, signal);
        }
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        self.signal(Signal::SIGKILL);
    }
}

/// Variables passed through from the harness's environment: a proxy and pip's own settings
/// (an index mirror for an air-gapped site), nothing else.
fn passed_through(key: &str) -> bool {
    matches!(
        key.to_ascii_lowercase().as_str(),
        "http_proxy" | "https_proxy" | "no_proxy" | "lang" | "lc_all"
    ) || key.starts_with("PIP_")
}

/// Where `setpriv` may be (root's trusted system directories only).
const SETPRIV: [&str; 2] = ["/usr/bin/setpriv", "/bin/setpriv"];
/// Where `unshare` may be (the same).
const UNSHARE: [&str; 2] = ["/usr/bin/unshare", "/bin/unshare"];

/// `unshare`, when a PID namespace can be made here (root, and a kernel and sandbox that
/// allow it: tried once, with `true`).
fn pid_namespace() -> Option<&'static Path> {
    static FOUND: std::sync::OnceLock<Option<&'static Path>> = std::sync::OnceLock::new();
    *FOUND.get_or_init(|| {
        if !nix::unistd::geteuid().is_root() {
            return None;
        }
        let unshare = UNSHARE.iter().map(Path::new).find(|p| p.is_file())?;
        std::process::Command::new(unshare)
            .args(["--pid", "--fork", "--kill-child", "--", "/bin/true"])
            .env_clear()
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
            .then_some(unshare)
    })
}

/// A command in a clean environment: PATH with `bin` first, HOME at `home`; killed with
/// its process group when dropped. For the short commands around the run (pip, `tempest
/// init`, `--list-tests`); the run itself is [`tied`].
pub fn command(program: &Path, bin: &Path, home: &Path) -> tokio::process::Command {
    let mut c = tokio::process::Command::from(base(program, bin, home, false));
    c.kill_on_drop(true);
    c
}

/// The long `tempest run`, tied to the harness's life: a harness killed outright (SIGKILL)
/// cannot stop its children, so where util-linux's `setpriv` is (on every Debian) the child
/// runs under `setpriv --pdeathsig KILL` and the kernel kills it when the harness dies. The
/// signal reaches that one process, not Tempest's stestr workers, which would go on with
/// their current test (a server boot) until they next write to the closed pipe: as root, the
/// run also gets a PID namespace of its own (`unshare --pid --fork --kill-child`), whose
/// init dies with it, and the kernel then kills every process in it at once. No Tempest goes
/// on testing the cloud for a run that is gone. Start it with [`spawn_tied`].
pub fn tied(program: &Path, bin: &Path, home: &Path) -> std::process::Command {
    base(program, bin, home, true)
}

fn base(program: &Path, bin: &Path, home: &Path, tied: bool) -> std::process::Command {
    use std::os::unix::process::CommandExt as _;
    let setpriv = SETPRIV.iter().map(Path::new).find(|p| tied && p.is_file());
    let mut c = match setpriv {
        Some(setpriv) => {
            let mut c = std::process::Command::new(setpriv);
            c.args(["--pdeathsig", "KILL", "--"]);
            if let Some(unshare) = pid_namespace() {
                c.arg(unshare)
                    .args(["--pid", "--fork", "--kill-child", "--"]);
            }
            c.arg(program);
            c
        }
        None => std::process::Command::new(program),
    };
    c.env_clear()
        .envs(std::env::vars().filter(|(k, _)| passed_through(k)))
        .env(
            "PATH",
            format!("{}:/usr/local/bin:/usr/bin:/bin", bin.display()),
        )
        .env("HOME", home)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdin(Stdio::null())
        .process_group(0);
    c
}

type SpawnRequest = (
    std::process::Command,
    std::sync::mpsc::Sender<std::io::Result<std::process::Child>>,
);

/// Starts `cmd` from one thread that lives as long as the process. The parent-death signal
/// follows the thread that started the child, not the process, and the runtime's threads
/// come and go (a `block_in_place` elsewhere replaces a worker, which then ends): started
/// from one of them, a healthy run would be killed with it.
pub fn spawn_tied(cmd: std::process::Command) -> std::io::Result<std::process::Child> {
    static SPAWNER: std::sync::OnceLock<std::sync::Mutex<std::sync::mpsc::Sender<SpawnRequest>>> =
        std::sync::OnceLock::new();
    let spawner = SPAWNER.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel::<SpawnRequest>();
        std::thread::Builder::new()
            .name("nfvi-tempest-spawner".into())
            .spawn(move || {
                for (mut cmd, reply) in rx {
                    let _ = reply.send(cmd.spawn());
                }
            })
            .expect("a thread can be started");
        std::sync::Mutex::new(tx)
    });
    let (reply, answer) = std::sync::mpsc::channel();
    spawner
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .send((cmd, reply))
        .map_err(|_| std::io::Error::other("the spawner thread is gone"))?;
    answer
        .recv()
        .map_err(|_| std::io::Error::other("the spawner thread is gone"))?
}

/// What a finished command left.
pub struct Finished {
    /// Its exit code (`None`: killed by a signal).
    pub code: Option<i32>,
    /// Standard output (capped).
    pub stdout: String,
    /// Standard error, its last 4 KiB.
    pub stderr_tail: String,
}

/// The last `n` characters of `s`, on a character boundary.
pub fn tail(s: &str, n: usize) -> String {
    let skip = s.chars().count().saturating_sub(n);
    s.chars().skip(skip).collect()
}

/// Runs `cmd` to the end, its deadline or the run's cancellation; `what` names it in errors.
pub async fn run(
    mut cmd: tokio::process::Command,
    what: &str,
    deadline: Duration,
    cancel: &CancelToken,
) -> Result<Finished, String> {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot start {what}: {e}"))?;
    let group = Group(child.id().map(|id| Pid::from_raw(id as i32)));
    let (mut out, mut err) = (child.stdout.take(), child.stderr.take());
    let read = async {
        let (mut o, mut e) = (Vec::new(), Vec::new());
        let ro = async {
            if let Some(s) = out.as_mut() {
                let _ = s.take(4 << 20).read_to_end(&mut o).await;
            }
        };
        let re = async {
            if let Some(s) = err.as_mut() {
                let _ = s.read_to_end(&mut e).await;
            }
        };
        tokio::join!(ro, re);
        let status = child.wait().await;
        (status, o, e)
    };
    let (status, o, e) = tokio::select! {
        r = tokio::time::timeout(deadline, read) => r.map_err(|_| {
            group.signal(Signal::SIGKILL);
            format!("{what} did not finish within {} s; stopped", deadline.as_secs())
        })?,
        () = cancel.cancelled() => {
            group.signal(Signal::SIGTERM);
            return Err(format!("{what} was stopped: the run is being cancelled"));
        }
    };
    drop(group);
    let status = status.map_err(|e| format!("waiting for {what}: {e}"))?;
    Ok(Finished {
        code: status.code(),
        stdout: String::from_utf8_lossy(&o).into_owned(),
        stderr_tail: tail(&String::from_utf8_lossy(&e), 4096),
    })
}

/// `bin/<name>` of a virtualenv.
pub fn venv_bin(venv: &Path, name: &str) -> PathBuf {
    venv.join("bin").join(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_proxies_and_pip_settings_pass() {
        for k in ["http_proxy", "HTTPS_PROXY", "no_proxy", "PIP_INDEX_URL"] {
            assert!(passed_through(k), "{k}");
        }
        for k in [
            "OS_PASSWORD",
            "OS_AUTH_URL",
            "HOME",
            "PYTHONPATH",
            "LD_PRELOAD",
        ] {
            assert!(!passed_through(k), "{k}");
        }
        assert_eq!(tail("héllo", 3), "llo");
    }

    #[tokio::test]
    async fn a_command_past_its_deadline_is_stopped() {
        let home = std::env::temp_dir();
        let mut c = command(Path::new("/bin/sh"), Path::new("/bin"), &home);
        c.args(["-c", "sleep 30"]);
        let e = run(
            c,
            "sleep",
            Duration::from_millis(200),
            &CancelToken::never(),
        )
        .await
        .err()
        .unwrap();
        assert!(e.contains("did not finish within"), "{e}");
        let mut c = command(Path::new("/bin/sh"), Path::new("/bin"), &home);
        c.args(["-c", "echo $HOME; echo ${OS_PASSWORD:-none}; exit 3"]);
        let f = run(c, "sh", Duration::from_secs(5), &CancelToken::never())
            .await
            .unwrap();
        assert_eq!(f.code, Some(3));
        assert_eq!(f.stdout, format!("{}\nnone\n", home.display()));
    }

    /// Starts a tied `sleep 30` from a thread that then ends (as a runtime worker that
    /// `block_in_place` replaced does) and says whether the child is still alive a moment
    /// later: `through_spawner` as the run starts it, or directly from that thread.
    fn survives_the_thread_that_asked(through_spawner: bool) -> bool {
        let pid = std::thread::spawn(move || {
            let mut c = tied(
                Path::new("/bin/sleep"),
                Path::new("/bin"),
                &std::env::temp_dir(),
            );
            c.arg("30");
            let child = if through_spawner {
                spawn_tied(c).unwrap()
            } else {
                c.spawn().unwrap()
            };
            // Time for setpriv to set the signal before this thread ends.
            std::thread::sleep(Duration::from_millis(300));
            child.id()
        })
        .join()
        .unwrap();
        let alive = || {
            std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
                !s.rsplit(')')
                    .next()
                    .unwrap_or("")
                    .trim_start()
                    .starts_with('Z')
            })
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(2);
        while alive() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let still = alive();
        let _ = nix::sys::signal::kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
        let _ = nix::sys::wait::waitpid(Pid::from_raw(pid as i32), None);
        still
    }

    #[test]
    fn a_tied_run_outlives_runtime_threads_and_only_the_process() {
        if !SETPRIV.iter().any(|p| Path::new(p).is_file()) {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI machines have util-linux's setpriv"
            );
            eprintln!("skipped: no setpriv here");
            return;
        }
        // The parent-death signal is armed: started from a thread that ends, the child dies
        // (the harness's own death is tested end to end in harness/cli/tests/tempest.rs).
        assert!(
            !survives_the_thread_that_asked(false),
            "the parent-death signal was not set"
        );
        // Through the spawner, a thread that asked and ended does not take the run with it.
        assert!(
            survives_the_thread_that_asked(true),
            "a Tempest run died with a thread of the runtime"
        );
    }

    /// The processes below `top`, from /proc's parent links.
    fn descendants(top: u32) -> Vec<u32> {
        let parent = |pid: u32| -> Option<u32> {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            stat.rsplit(')')
                .next()?
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()
        };
        let all: Vec<u32> = std::fs::read_dir("/proc")
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
            .collect();
        let mut found = vec![top];
        loop {
            let more: Vec<u32> = all
                .iter()
                .copied()
                .filter(|p| !found.contains(p) && parent(*p).is_some_and(|q| found.contains(&q)))
                .collect();
            if more.is_empty() {
                break;
            }
            found.extend(more);
        }
        found.retain(|p| *p != top);
        found
    }

    #[test]
    fn as_root_the_workers_of_a_tied_run_die_with_it() {
        if pid_namespace().is_none() {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI runs as root where PID namespaces can be made"
            );
            eprintln!("skipped: no PID namespace can be made here (not root?)");
            return;
        }
        // A run whose "workers" are its children, as stestr's are Tempest's.
        let mut c = tied(
            Path::new("/bin/sh"),
            Path::new("/bin"),
            &std::env::temp_dir(),
        );
        c.args(["-c", "sleep 30 & sleep 30 & wait"]);
        let mut child = spawn_tied(c).unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        let mut below = descendants(child.id());
        while below.len() < 3 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
            below = descendants(child.id());
        }
        // unshare's init (sh) and its two sleeps.
        assert!(below.len() >= 3, "{below:?}");
        // The harness's death, as the tied process sees it: SIGKILL.
        child.kill().unwrap();
        child.wait().unwrap();
        let gone = |p: &u32| {
            std::fs::read_to_string(format!("/proc/{p}/stat")).map_or(true, |s| {
                s.rsplit(')')
                    .next()
                    .unwrap_or("")
                    .trim_start()
                    .starts_with('Z')
            })
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(2);
        while !below.iter().all(gone) && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let left: Vec<&u32> = below.iter().filter(|p| !gone(p)).collect();
        for p in &left {
            let _ = nix::sys::signal::kill(Pid::from_raw(**p as i32), Signal::SIGKILL);
        }
        assert!(left.is_empty(), "workers {left:?} outlived the tied run");
    }
}
