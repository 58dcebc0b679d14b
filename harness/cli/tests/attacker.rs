//! A local attacker without privileges (#14): before root runs the suites, an unprivileged
//! user plants directories, executables and symbolic links at every path in the temporary
//! directory that earlier versions used as root (their names carried only the PID and a
//! counter), at the plausible forms of today's names, and in an output directory it owns.
//! Then root runs the CNI, data-path and Docker areas, builds the lab's image root and sweeps
//! leftovers. Nothing planted may be executed, followed, written through or removed.
//!
//! The attacker is a UID and GID that no account uses: to the kernel an unprivileged user
//! like any other, and no account is added to /etc/passwd (nothing on the host to restore).
//! The runs' TMPDIR is a directory made like /tmp (mode 1777, sticky), private to the test,
//! so the plants never meet other tests' files. `NFVI_ATTACK_BIN` runs another nfvi-verify
//! binary (an older build) against the same plants.

mod common;

use std::io::Write as _;
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{is_root, require, require_lab_docker};

const VICTIM_TEXT: &str = "root's file: nothing may write here\n";

/// What the attacker places.
#[derive(Debug, Clone)]
enum Plant {
    /// A directory anyone may write into (mode 0777), owned by the attacker.
    Dir(PathBuf),
    /// An executable script that records, in the marker directory, that it was run.
    Exec(PathBuf),
    /// A symbolic link to a target.
    Link(PathBuf, PathBuf),
}

impl Plant {
    fn path(&self) -> &Path {
        match self {
            Plant::Dir(p) | Plant::Exec(p) | Plant::Link(p, _) => p,
        }
    }
}

/// The stage: a private /tmp-like directory, root's victims, the attacker and its marker.
struct Scene {
    base: tempfile::TempDir,
    tmp: PathBuf,
    /// A root-owned file (`secret`) and an empty root-owned directory (`dir`).
    victim: PathBuf,
    /// Where a planted executable writes `executed` if anyone runs it.
    marker: PathBuf,
    uid: u32,
    plants: Vec<Plant>,
}

impl Scene {
    fn new() -> Scene {
        let base = tempfile::Builder::new()
            .prefix("nfvi-attack-")
            .tempdir()
            .unwrap();
        std::fs::set_permissions(base.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let tmp = base.path().join("tmp");
        std::fs::create_dir(&tmp).unwrap();
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o1777)).unwrap();
        let victim = base.path().join("victim");
        std::fs::create_dir(&victim).unwrap();
        std::fs::write(victim.join("secret"), VICTIM_TEXT).unwrap();
        std::fs::create_dir(victim.join("dir")).unwrap();
        let uid = unused_id();
        let marker = tmp.join(".attacker");
        let mut scene = Scene {
            base,
            tmp,
            victim,
            marker: marker.clone(),
            uid,
            plants: Vec::new(),
        };
        scene.plant(vec![Plant::Dir(marker)]);
        scene
    }

    fn secret(&self) -> PathBuf {
        self.victim.join("secret")
    }

    fn victim_dir(&self) -> PathBuf {
        self.victim.join("dir")
    }

    /// Places `plants` as the attacker (a shell running under its UID and GID).
    fn plant(&mut self, plants: Vec<Plant>) {
        let payload = format!(
            "#!/bin/sh\necho \"run by uid $(id -u) as $0\" >> '{}/executed'\nexit 1\n",
            self.marker.display()
        );
        let mut script = String::from("set -e\numask 000\n");
        for p in &plants {
            let line = match p {
                Plant::Dir(d) => format!("mkdir -m 0777 '{}'\n", d.display()),
                Plant::Exec(f) => format!(
                    "printf '%s' '{payload}' > '{f}'\nchmod 0755 '{f}'\n",
                    f = f.display()
                ),
                Plant::Link(l, t) => format!("ln -s '{}' '{}'\n", t.display(), l.display()),
            };
            script.push_str(&line);
        }
        let mut sh = Command::new("/bin/sh")
            .arg("-s")
            .uid(self.uid)
            .gid(self.uid)
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .current_dir(&self.tmp)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        sh.stdin
            .take()
            .unwrap()
            .write_all(script.as_bytes())
            .unwrap();
        let out = sh.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "planting failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        self.plants.extend(plants);
    }

    /// Nothing planted was run, followed, written through, replaced or removed.
    fn assert_untouched(&self, what: &str) {
        let executed = self.marker.join("executed");
        assert!(
            !executed.exists(),
            "{what}: a planted program was executed: {}",
            std::fs::read_to_string(&executed).unwrap_or_default()
        );
        let secret = std::fs::read(self.secret()).unwrap();
        assert!(
            secret == VICTIM_TEXT.as_bytes(),
            "{what}: root wrote through a planted link into {}: it now holds {} bytes beginning {:?}",
            self.secret().display(),
            secret.len(),
            String::from_utf8_lossy(&secret[..secret.len().min(60)])
        );
        let inside: Vec<_> = std::fs::read_dir(self.victim_dir())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert!(
            inside.is_empty(),
            "{what}: root followed a planted link into {} and created {inside:?}",
            self.victim_dir().display()
        );
        for p in &self.plants {
            let m = std::fs::symlink_metadata(p.path())
                .unwrap_or_else(|e| panic!("{what}: {} was removed: {e}", p.path().display()));
            assert_eq!(
                m.uid(),
                self.uid,
                "{what}: {} changed hands",
                p.path().display()
            );
            match p {
                Plant::Dir(_) => assert!(m.is_dir(), "{what}: {p:?} replaced"),
                Plant::Exec(_) => assert!(m.is_file(), "{what}: {p:?} replaced"),
                Plant::Link(l, t) => assert_eq!(&std::fs::read_link(l).unwrap(), t, "{what}"),
            }
        }
    }

    /// What root left in the temporary directory: nothing once a run has ended.
    fn roots_leftovers(&self) -> Vec<PathBuf> {
        std::fs::read_dir(&self.tmp)
            .unwrap()
            .map(|e| e.unwrap())
            .filter(|e| e.metadata().is_ok_and(|m| m.uid() == 0))
            .map(|e| e.path())
            .collect()
    }
}

/// A UID (used as the GID too) that no account and no file in the scene has: an unprivileged
/// user to the kernel.
fn unused_id() -> u32 {
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    let group = std::fs::read_to_string("/etc/group").unwrap_or_default();
    let taken = |text: &str, id: u32| {
        text.lines()
            .any(|l| l.split(':').nth(2) == Some(id.to_string().as_str()))
    };
    (61000..65000)
        .map(|i| i + std::process::id() % 1000)
        .find(|&i| !taken(&passwd, i) && !taken(&group, i))
        .expect("a free UID")
}

/// The binary under attack: this build's, or `NFVI_ATTACK_BIN`.
fn binary() -> PathBuf {
    std::env::var_os("NFVI_ATTACK_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_nfvi-verify")))
}

/// A root run of nfvi-verify held at the starting line: its PID is known (the attacker
/// plants for it) before it has done anything.
struct Gated {
    child: std::process::Child,
}

impl Gated {
    fn spawn(scene: &Scene, args: &[&str]) -> Gated {
        let child = Command::new("/bin/sh")
            .arg("-c")
            .arg("read _ && exec \"$0\" \"$@\"")
            .arg(binary())
            .args(args)
            .env("TMPDIR", &scene.tmp)
            .env("NO_COLOR", "1")
            .env("NFVI_VERIFY_NO_CLEAN", "1")
            .env_remove("CI")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        Gated { child }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Lets the run start and waits for it (at most `limit`); its exit code and stderr.
    fn release(mut self, limit: Duration) -> (i32, String) {
        self.child.stdin.take().unwrap().write_all(b"go\n").unwrap();
        let t0 = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                let out = self.child.wait_with_output().unwrap();
                let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
                return (status.code().unwrap_or(-1), stderr);
            }
            if t0.elapsed() > limit {
                let _ = self.child.kill();
                panic!("the run did not end within {limit:?}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// The names older versions gave the CNI area's per-check directory (`nfv-cni-<pid>-<n>`),
/// each made ready to be taken for it: a spy plugin directory holding the attacker's
/// program and links where the area wrote files.
fn old_cni_plants(s: &Scene, pid: u32, checks: u32) -> Vec<Plant> {
    let mut out = Vec::new();
    for n in 0..checks {
        let d = s.tmp.join(format!("nfv-cni-{pid}-{n}"));
        out.push(Plant::Dir(d.clone()));
        out.push(Plant::Dir(d.join("spybin")));
        out.push(Plant::Exec(d.join("spybin/nfvspy")));
        for f in ["spy.jsonl", "resolv.conf", "not-a-netns"] {
            out.push(Plant::Link(d.join(f), s.secret()));
        }
        for f in ["ipam", "results"] {
            out.push(Plant::Link(d.join(f), s.victim_dir()));
        }
    }
    // Today's names begin the same way and end in random characters; the forms without them.
    for name in [
        format!("nfv-cni-{pid}"),
        format!("nfv-cni-{pid}-"),
        format!("nfv-cni-{pid}-{pid}-"),
    ] {
        out.push(Plant::Link(s.tmp.join(name), s.victim_dir()));
    }
    out
}

/// The data path's host-local state directory of older versions (`nfvd<pid>-<n>-ipam`) and
/// today's prefix (`nfvd<pid>-<n>-ipam-<pid>-`), each a link to root's directory.
fn datapath_plants(s: &Scene, pid: u32) -> Vec<Plant> {
    let mut out = Vec::new();
    for n in 0..64 {
        for name in [
            format!("nfvd{}-{n}-ipam", pid % 100_000),
            format!("nfvd{pid}-{n}-ipam"),
            format!("nfvd{pid}-{n}-ipam-{pid}-"),
        ] {
            if !out.iter().any(|p: &Plant| p.path() == s.tmp.join(&name)) {
                out.push(Plant::Link(s.tmp.join(name), s.victim_dir()));
            }
        }
    }
    out
}

/// The lab's image root of older versions (`nfvi-lab-rootfs-<pid>/bin/busybox`, copied into
/// as root) and today's prefix, in `tmp`.
fn lab_plants(s: &Scene, tmp: &Path, pid: u32) -> Vec<Plant> {
    let root = tmp.join(format!("nfvi-lab-rootfs-{pid}"));
    vec![
        Plant::Dir(root.clone()),
        Plant::Dir(root.join("bin")),
        Plant::Link(root.join("bin/busybox"), s.secret()),
        Plant::Link(root.join("bin/sh"), s.secret()),
        Plant::Link(tmp.join(format!("nfvi-lab-rootfs-{pid}-")), s.victim_dir()),
    ]
}

fn results(dir: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(dir.join("results.json")).expect("results.json written");
    serde_json::from_str(&text).unwrap()
}

fn outcomes<'a>(r: &'a serde_json::Value, part: &str) -> Vec<(&'a str, &'a str)> {
    r["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["id"].as_str().is_some_and(|i| i.contains(part)))
        .map(|c| (c["id"].as_str().unwrap(), c["outcome"].as_str().unwrap()))
        .collect()
}

fn prerequisites() -> bool {
    require(
        "root (the attacker is another user; root runs the suites)",
        is_root(),
    )
}

#[test]
fn cni_runs_take_nothing_an_unprivileged_user_planted() {
    if !prerequisites() {
        return;
    }
    let mut s = Scene::new();
    let out = s.base.path().join("out");
    let run = Gated::spawn(
        &s,
        &[
            "run",
            "--suite",
            "cni",
            "--no-progress",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    let plants = old_cni_plants(&s, run.pid(), 400);
    s.plant(plants);
    let (code, stderr) = run.release(Duration::from_secs(900));
    assert!([0, 1].contains(&code), "exit {code}: {stderr}");
    s.assert_untouched("run --suite cni");
    let r = results(&out);
    // The runs exercised the paths: the checks that put the recording plugin on CNI_PATH ran.
    let spy: Vec<_> = outcomes(&r, "CNI-ADD-005");
    assert!(!spy.is_empty(), "no CNI-ADD-005 in {r}");
    assert!(
        spy.iter().all(|(_, o)| *o == "passed"),
        "the recording plugin's checks did not pass: {spy:?}"
    );
    assert_eq!(s.roots_leftovers(), Vec::<PathBuf>::new());
}

#[test]
fn data_path_runs_take_nothing_an_unprivileged_user_planted() {
    if !prerequisites() {
        return;
    }
    let mut s = Scene::new();
    let target = s.base.path().join("quick.toml");
    std::fs::write(
        &target,
        "[datapath]\nblock_probes = 2000\nrounds = 2\nwarmup = 200\nnoise_cv_limit = 5.0\n",
    )
    .unwrap();
    let out = s.base.path().join("out");
    let run = Gated::spawn(
        &s,
        &[
            "run",
            "--suite",
            "datapath",
            "--no-progress",
            "--filter",
            "datapath.latency.*",
            "--target",
            target.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
    );
    let plants = datapath_plants(&s, run.pid());
    s.plant(plants);
    let (code, stderr) = run.release(Duration::from_secs(600));
    // 3: incomplete, as any filtered run is.
    assert!([0, 1, 3].contains(&code), "exit {code}: {stderr}");
    s.assert_untouched("run --suite datapath");
    let r = results(&out);
    let lat = common::check(&r, "datapath.latency.macvlan-vs-bridge");
    // The CNI-made paths (host-local's state in the private directory) were measured.
    let metrics = lat["evidence"]["metrics"].as_object().expect("metrics");
    assert!(
        metrics.keys().any(|k| k.starts_with("cni-")),
        "no CNI-made path was measured: {:?}",
        metrics.keys().collect::<Vec<_>>()
    );
    assert_eq!(s.roots_leftovers(), Vec::<PathBuf>::new());
}

#[test]
fn docker_runs_take_nothing_an_unprivileged_user_planted() {
    if !prerequisites() || !require_lab_docker() {
        return;
    }
    let mut s = Scene::new();
    let out = s.base.path().join("out");
    let run = Gated::spawn(
        &s,
        &[
            "run",
            "--suite",
            "docker",
            "--no-progress",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    let pid = run.pid();
    let mut plants = lab_plants(&s, &s.tmp, pid);
    plants.extend(datapath_plants(&s, pid));
    s.plant(plants);
    let (code, stderr) = run.release(Duration::from_secs(600));
    assert!([0, 1].contains(&code), "exit {code}: {stderr}");
    s.assert_untouched("run --suite docker");
    let r = results(&out);
    assert!(
        outcomes(&r, "docker.")
            .iter()
            .filter(|(_, o)| *o == "passed")
            .count()
            >= 5,
        "the Docker area did not run: {r}"
    );
    assert_eq!(s.roots_leftovers(), Vec::<PathBuf>::new());
}

#[test]
fn the_labs_image_root_takes_nothing_an_unprivileged_user_planted() {
    if !prerequisites()
        || !require(
            "busybox-static (/bin/busybox)",
            Path::new("/bin/busybox").exists(),
        )
    {
        return;
    }
    // Built in this process, in the real temporary directory, for this process's PID.
    let mut s = Scene::new();
    let tmp = std::env::temp_dir();
    let plants = lab_plants(&s, &tmp, std::process::id());
    s.plant(plants.clone());
    let built = nfvi_lab::engine::probe_rootfs();
    let check = std::panic::catch_unwind(|| {
        s.assert_untouched("the lab's image root");
        let root = built.as_ref().expect("the image root is built");
        let busybox = root.path().join("bin/busybox");
        let m = std::fs::symlink_metadata(&busybox).unwrap();
        assert!(m.is_file(), "bin/busybox is not a file of its own");
        assert_eq!(m.len(), std::fs::metadata("/bin/busybox").unwrap().len());
        assert_eq!(m.uid(), 0);
        let mode = std::fs::metadata(root.path()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700, "{mode:o}");
    });
    // The plants are in the real temporary directory: removed whatever happened.
    for p in plants.iter().rev() {
        match p {
            Plant::Dir(d) => {
                let _ = std::fs::remove_dir(d);
            }
            _ => {
                let _ = std::fs::remove_file(p.path());
            }
        }
    }
    if let Err(e) = check {
        std::panic::resume_unwind(e);
    }
}

#[test]
fn an_output_directory_another_user_controls_is_refused() {
    if !prerequisites() {
        return;
    }
    let mut s = Scene::new();
    let out = s.tmp.join("results");
    let run = Gated::spawn(
        &s,
        &[
            "run",
            "--suite",
            "cni",
            "--filter",
            "cni.bridge.CNI-ENV-001",
            "--no-progress",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    let pid = run.pid();
    let mut plants = vec![Plant::Dir(out.clone())];
    for name in [
        "junit.xml",
        "report.html",
        "badge.svg",
        "nfvi-verify.log",
        "target.toml",
    ] {
        plants.push(Plant::Link(out.join(name), s.secret()));
        plants.push(Plant::Link(
            out.join(format!(".{name}.tmp-{pid}")),
            s.secret(),
        ));
    }
    plants.push(Plant::Link(
        out.join(format!(".results.json.tmp-{pid}")),
        s.secret(),
    ));
    s.plant(plants);
    let (code, stderr) = run.release(Duration::from_secs(300));
    s.assert_untouched("run --out <a directory another user owns>");
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains(&format!("belongs to uid {}", s.uid)),
        "{stderr}"
    );
    assert!(!out.join("results.json").exists());
}

#[test]
fn clean_leaves_what_another_user_planted_alone() {
    if !prerequisites() {
        return;
    }
    let mut s = Scene::new();
    // PIDs of processes that are gone: the names of a killed run's scratch directories.
    let dead = (4_000_000..4_194_304)
        .find(|p| !Path::new(&format!("/proc/{p}")).exists())
        .unwrap();
    let plants = vec![
        Plant::Dir(s.tmp.join(format!("nfv-cni-{dead}-a1b2c3"))),
        Plant::Link(s.tmp.join(format!("nfv-cni-{dead}-d4e5f6")), s.victim_dir()),
        Plant::Link(
            s.tmp.join(format!("nfvd{dead}-1-ipam-{dead}-x9y8z7")),
            s.victim_dir(),
        ),
        Plant::Link(
            s.tmp.join(format!("nfvi-ssh-{dead}-q1w2e3")),
            s.victim_dir(),
        ),
    ];
    s.plant(plants);
    std::fs::write(s.victim_dir().join("keep"), "").unwrap();
    // The control: a real leftover, root's private directory of the same dead run.
    let own = tempfile::Builder::new()
        .prefix(&format!("nfv-cni-{dead}-"))
        .permissions(std::fs::Permissions::from_mode(0o700))
        .tempdir_in(&s.tmp)
        .unwrap();
    let own_name = own
        .path()
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let out = common::nfvi()
        .args(["clean", "--dry-run"])
        .env("TMPDIR", &s.tmp)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains(&own_name),
        "the control: a dead run's own directory is listed:\n{text}"
    );
    let planted: Vec<_> = text
        .lines()
        .filter(|l| l.contains(&dead.to_string()) && !l.contains(&own_name))
        .collect();
    assert!(
        planted.is_empty(),
        "clean would remove what another user planted: {planted:?}"
    );
    std::fs::remove_file(s.victim_dir().join("keep")).unwrap();
    s.assert_untouched("clean --dry-run");
}

/// The output path as given is walked: a symbolic link on it that another user owns (or that
/// lies in their directory) is refused, so they cannot re-point it between the check and the
/// writes; nothing is created under their directory; a link root made is followed.
#[test]
fn an_output_path_through_another_users_link_is_refused_and_nothing_is_created() {
    if !prerequisites() {
        return;
    }
    let mut s = Scene::new();
    let roots = s.base.path().join("roots");
    std::fs::create_dir(&roots).unwrap();
    let theirs = s.tmp.join("theirs");
    s.plant(vec![
        Plant::Link(s.tmp.join("evil-link"), roots.clone()),
        Plant::Dir(theirs.clone()),
        Plant::Link(theirs.join("inner"), roots.clone()),
    ]);
    let run = |out: &Path| {
        common::nfvi()
            .args([
                "run",
                "--suite",
                "cni",
                "--filter",
                "cni.bridge.CNI-ENV-001",
                "--no-progress",
                "--out",
            ])
            .arg(out)
            .env("TMPDIR", &s.tmp)
            .output()
            .unwrap()
    };
    for (out, why) in [
        (
            s.tmp.join("evil-link"),
            format!("is a symbolic link that uid {} owns", s.uid),
        ),
        (theirs.join("inner"), format!("belongs to uid {}", s.uid)),
        (theirs.join("new/sub"), format!("belongs to uid {}", s.uid)),
    ] {
        let o = run(&out);
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{}: {stderr}", out.display());
        assert!(stderr.contains(&why), "{}: {stderr}", out.display());
        assert_eq!(
            std::fs::read_dir(&roots).unwrap().count(),
            0,
            "{}",
            out.display()
        );
    }
    assert!(
        !theirs.join("new").exists(),
        "root created a directory under another user's"
    );
    s.assert_untouched("run --out through another user's link");
    // The control: a link root made, in the same sticky directory, is followed.
    let own = s.tmp.join("root-link");
    std::os::unix::fs::symlink(&roots, &own).unwrap();
    let o = run(&own);
    assert!(
        matches!(o.status.code(), Some(0 | 1 | 3)),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(roots.join("results.json").exists());
}
